/*
 * http_ready.c - readiness: GET /v1/ready answers whether the gateway can
 * serve exchanges now, for load balancers and orchestrators that route
 * traffic only to ready instances.  Unlike the liveness of /v1/health it is
 * 503 while the journal cannot commit (an exchange would then fail with
 * journal_unavailable), while its map is near the limit it may grow to,
 * while the configuration of the last SIGHUP failed to load (the gateway
 * runs on an older one than its operator wrote), until every event loop
 * serves, and while the daemon drains for its exit.  It reads a few flags and atomics: as cheap as
 * health, and like it answered without a client certificate.
 */
#include <event2/http.h>

#include "cluster.h"

const char *
ready_reason(struct gw *gw)
{
	struct journal_state	js;
	struct gw		*mg = gw_main_of(gw);

	if (gw->gw_stopping || mg->gw_stopping)
		return "the gateway is draining for shutdown";
	if (!loops_serving(mg))
		return "an event loop is not serving yet";
	journal_state(gw->gw_journal, &js);
	if (js.js_failing)
		return "the journal cannot commit";
	if (js.js_map_limit > 0 &&
	    js.js_map_used > js.js_map_limit / 100 * READY_MAP_PERCENT)
		return "the journal's map is near full";
	if (mg->gw_reload_failed)
		return "the configuration failed to load on the last reload";
	return cluster_ready(gw->gw_cluster);
}

void
http_ready(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	msgpack_zone	 z;
	struct mpk_map	 m;
	const char	*why = ready_reason(gw);

	(void)pr;
	(void)path;
	msgpack_zone_init(&z, 256);
	mpk_map_init(&m, &z, 2);
	mpk_map_put(&m, "status", mpk_str(why == NULL ? "ready" : "not_ready"));
	if (why != NULL)
		mpk_map_put(&m, "reason", mpk_str(why));
	http_reply(req, why == NULL ? 200 : 503, &m.mm_obj);
	msgpack_zone_destroy(&z);
}
