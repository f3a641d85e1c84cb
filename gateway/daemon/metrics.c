/*
 * metrics.c - the daemon's counters and histograms, served in the
 * Prometheus text exposition format at GET /metrics of a plaintext
 * listener of its own (--metrics HOST:PORT, off unless given).
 *
 * The daemon has one set of metrics, kept here for the process: the hooks
 * (exchange.c, fanout.c, sealer.c, http.c, config.c) run on every event
 * loop and on the workers, so one mutex guards the series; it is held for
 * a look-up and an addition, or while the text is written into memory,
 * never across I/O.  What other threads own (the journal writer, the
 * workers' queue, the loops' counters) is read through their accessors
 * when Prometheus scrapes.  Label values come from the configuration and client
 * certificates, never from a request's subject or an exchange id; each
 * family keeps at most METRICS_SERIES_MAX label sets, and what comes after
 * is counted in one whose every label is "other", so that no client can
 * grow the daemon's memory or Prometheus's index without bound.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "cluster.h"

#define METRICS_SERIES_MAX	256	/* label sets of a family */
#define METRICS_LABELS_MAX	3
#define METRICS_BUCKETS_MAX	12

struct metrics_family {
	const char	*mf_name;
	const char	*mf_type;		/* counter, histogram */
	const char	*mf_help;
	const char	*mf_labels[METRICS_LABELS_MAX];	/* NULL-terminated */
	const double	*mf_bounds;		/* histogram: upper bounds */
	size_t		 mf_nbounds;
};

struct metrics_series {
	char		 ms_values[METRICS_LABELS_MAX][LB_ID_MAX];
	uint64_t	 ms_count;		/* counter value, or observations */
	double		 ms_sum;
	uint64_t	 ms_buckets[METRICS_BUCKETS_MAX];	/* not cumulative */
};

struct metrics_set {
	struct metrics_series	*mt_series;
	size_t			 mt_n, mt_cap;
};

/* Seconds: from a loopback answer to a department's timeout. */
static const double metrics_latency[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10
};
/* Claims in one seal batch, up to SEALER_MAX_BATCH. */
static const double metrics_batch[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256 };

static const struct metrics_family metrics_families[METRICS_N] = {
	[METRICS_EXCHANGES] = { "lianban_exchanges_total", "counter",
	    "exchanges answered, by bundle, consumer and result code (ok: at least one item "
	    "served)", { "bundle", "consumer", "code" }, NULL, 0 },
	[METRICS_ITEMS] = { "lianban_exchange_items_total", "counter",
	    "item results of exchanges, by bundle, consumer and result code",
	    { "bundle", "consumer", "code" }, NULL, 0 },
	[METRICS_DENIALS] = { "lianban_denials_total", "counter",
	    "subjects or whole exchanges refused before any department was asked, by code",
	    { "code" }, NULL, 0 },
	[METRICS_DEPT_REQUESTS] = { "lianban_department_requests_total", "counter",
	    "requests to departments, by department and outcome code", { "department", "code" },
	    NULL, 0 },
	[METRICS_DEPT_LATENCY] = { "lianban_department_request_seconds", "histogram",
	    "time from sending a request to a department to its outcome", { "department" },
	    metrics_latency, sizeof(metrics_latency) / sizeof(metrics_latency[0]) },
	[METRICS_SEAL_BATCH] = { "lianban_seal_batch_claims", "histogram",
	    "claims signed together in one seal batch, by algorithm", { "alg" },
	    metrics_batch, sizeof(metrics_batch) / sizeof(metrics_batch[0]) },
	[METRICS_SEAL_SIGN] = { "lianban_seal_sign_seconds", "histogram",
	    "time a worker took to sign one seal batch, by algorithm", { "alg" },
	    metrics_latency, sizeof(metrics_latency) / sizeof(metrics_latency[0]) },
	[METRICS_TLS_FAILURES] = { "lianban_tls_failures_total", "counter",
	    "requests refused for their client certificate, by reason", { "reason" }, NULL, 0 },
	[METRICS_RELOADS] = { "lianban_reloads_total", "counter",
	    "configuration reloads (SIGHUP and registry changes), by result", { "result" },
	    NULL, 0 },
	[METRICS_REGISTRY] = { "lianban_registry_changes_total", "counter",
	    "changes stored through the registry API, by kind (adapter, policy) and operation", { "kind", "operation" },
	    NULL, 0 },
	[METRICS_WITNESS_INCONSISTENT] = { "lianban_witness_inconsistent_total", "counter",
	    "checkpoints of a peer found inconsistent with one it showed before, by peer",
	    { "peer" }, NULL, 0 },
	[METRICS_WITNESS_COSIGNED] = { "lianban_witness_cosigned_total", "counter",
	    "checkpoints of a peer verified and cosigned, by peer", { "peer" }, NULL, 0 },
};

static pthread_mutex_t		 metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_set	 metrics_sets[METRICS_N];	/* under metrics_lock */
static struct evhttp		*metrics_http;

/* The series of family f with values, or with every value "other" when other; NULL: none. */
static struct metrics_series *
metrics_find(enum metrics_id f, const char *const *values, bool other)
{
	const struct metrics_family	*mf = &metrics_families[f];
	struct metrics_set		*mt = &metrics_sets[f];
	struct metrics_series		*ms;
	size_t				 i, k;

	for (i = 0; i < mt->mt_n; i++) {
		ms = &mt->mt_series[i];
		for (k = 0; k < METRICS_LABELS_MAX && mf->mf_labels[k] != NULL; k++)
			if (strncmp(ms->ms_values[k], other ? "other" : values[k],
			    sizeof(ms->ms_values[k]) - 1) != 0)
				break;
		if (k == METRICS_LABELS_MAX || mf->mf_labels[k] == NULL)
			return ms;
	}
	return NULL;
}

/* The series of family f with values, made when missing; NULL without memory. */
static struct metrics_series *
metrics_series(enum metrics_id f, const char *const *values)
{
	const struct metrics_family	*mf = &metrics_families[f];
	struct metrics_set		*mt = &metrics_sets[f];
	struct metrics_series		*ms, *grown;
	size_t				 k;
	bool				 other = false;

	if ((ms = metrics_find(f, values, false)) != NULL)
		return ms;
	/* Past the cap, new label sets share the family's one "other" series. */
	if (mt->mt_n >= METRICS_SERIES_MAX) {
		other = true;
		if ((ms = metrics_find(f, values, true)) != NULL)
			return ms;
	}
	if (mt->mt_n == mt->mt_cap) {
		size_t cap = mt->mt_cap == 0 ? 16 : mt->mt_cap * 2;

		if ((grown = realloc(mt->mt_series, cap * sizeof(*grown))) == NULL)
			return NULL;
		mt->mt_series = grown;
		mt->mt_cap = cap;
	}
	ms = &mt->mt_series[mt->mt_n++];
	memset(ms, 0, sizeof(*ms));
	for (k = 0; k < METRICS_LABELS_MAX && mf->mf_labels[k] != NULL; k++)
		snprintf(ms->ms_values[k], sizeof(ms->ms_values[k]), "%s",
		    other ? "other" : values[k]);
	return ms;
}

void
metrics_count(enum metrics_id f, uint64_t n, const char *const *values)
{
	struct metrics_series	*ms;

	pthread_mutex_lock(&metrics_lock);
	if ((ms = metrics_series(f, values)) != NULL)
		ms->ms_count += n;
	pthread_mutex_unlock(&metrics_lock);
}

void
metrics_observe(enum metrics_id f, double v, const char *const *values)
{
	const struct metrics_family	*mf = &metrics_families[f];
	struct metrics_series		*ms;
	size_t				 b;

	pthread_mutex_lock(&metrics_lock);
	if ((ms = metrics_series(f, values)) != NULL) {
		ms->ms_count++;
		ms->ms_sum += v;
		for (b = 0; b < mf->mf_nbounds && v > mf->mf_bounds[b]; b++)
			;
		if (b < mf->mf_nbounds)
			ms->ms_buckets[b]++;
	}
	pthread_mutex_unlock(&metrics_lock);
}

/*
 * A label value as the exposition format quotes it.  Control characters
 * and bytes beyond ASCII (a certificate's CN need not be UTF-8, which the
 * format requires) are written as "_".
 */
static void
metrics_put_value(struct evbuffer *out, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(out, "\\%c", *v);
		else if ((unsigned char)*v < 0x20 || (unsigned char)*v >= 0x7f)
			evbuffer_add(out, "_", 1);
		else
			evbuffer_add(out, v, 1);
	}
}

/* {a="x",b="y"[,le="..."]}, or nothing when there are no labels. */
static void
metrics_put_labels(struct evbuffer *out, const struct metrics_family *mf,
    const struct metrics_series *ms, const char *le)
{
	size_t	k;
	bool	any = false;

	for (k = 0; k < METRICS_LABELS_MAX && mf->mf_labels[k] != NULL; k++) {
		evbuffer_add_printf(out, "%s%s=\"", any ? "," : "{", mf->mf_labels[k]);
		metrics_put_value(out, ms->ms_values[k]);
		evbuffer_add(out, "\"", 1);
		any = true;
	}
	if (le != NULL) {
		evbuffer_add_printf(out, "%sle=\"%s\"", any ? "," : "{", le);
		any = true;
	}
	if (any)
		evbuffer_add(out, "}", 1);
}

static void
metrics_put_family(struct evbuffer *out, enum metrics_id f)
{
	const struct metrics_family	*mf = &metrics_families[f];
	const struct metrics_set	*mt = &metrics_sets[f];
	const struct metrics_series	*ms;
	char				 le[32];
	uint64_t			 cum;
	size_t				 i, b;

	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", mf->mf_name, mf->mf_help,
	    mf->mf_name, mf->mf_type);
	for (i = 0; i < mt->mt_n; i++) {
		ms = &mt->mt_series[i];
		if (mf->mf_bounds == NULL) {
			evbuffer_add_printf(out, "%s", mf->mf_name);
			metrics_put_labels(out, mf, ms, NULL);
			evbuffer_add_printf(out, " %llu\n", (unsigned long long)ms->ms_count);
			continue;
		}
		for (cum = 0, b = 0; b < mf->mf_nbounds; b++) {
			cum += ms->ms_buckets[b];
			snprintf(le, sizeof(le), "%g", mf->mf_bounds[b]);
			evbuffer_add_printf(out, "%s_bucket", mf->mf_name);
			metrics_put_labels(out, mf, ms, le);
			evbuffer_add_printf(out, " %llu\n", (unsigned long long)cum);
		}
		evbuffer_add_printf(out, "%s_bucket", mf->mf_name);
		metrics_put_labels(out, mf, ms, "+Inf");
		evbuffer_add_printf(out, " %llu\n%s_sum", (unsigned long long)ms->ms_count,
		    mf->mf_name);
		metrics_put_labels(out, mf, ms, NULL);
		evbuffer_add_printf(out, " %.9g\n%s_count", ms->ms_sum, mf->mf_name);
		metrics_put_labels(out, mf, ms, NULL);
		evbuffer_add_printf(out, " %llu\n", (unsigned long long)ms->ms_count);
	}
}

/* One sample of a metric without labels, with its HELP and TYPE lines. */
static void
metrics_put_one(struct evbuffer *out, const char *name, const char *type, const char *help,
    double v)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name,
	    type, name, v);
}

/* The gauges and the journal's numbers, read now. */
static void
metrics_put_state(struct evbuffer *out, struct gw *gw)
{
	struct journal_stats	js;

	evbuffer_add_printf(out, "# HELP lianban_build_info the version of lianband\n"
	    "# TYPE lianban_build_info gauge\nlianban_build_info{version=\"%s\"} 1\n",
	    PACKAGE_VERSION);
	metrics_put_one(out, "lianban_exchanges_in_flight", "gauge",
	    "exchanges received and not yet answered", loops_inflight(gw));
	metrics_put_one(out, "lianban_worker_queue_depth", "gauge",
	    "jobs waiting for a worker thread", (double)workers_queued(gw->gw_workers));
	if (gw->gw_journal == NULL)
		return;
	journal_stats(gw->gw_journal, &js);
	metrics_put_one(out, "lianban_journal_tree_size", "gauge",
	    "records in the journal's committed tree", (double)js.js_size);
	metrics_put_one(out, "lianban_journal_commits_total", "counter",
	    "group commits of the journal writer", (double)js.js_commits);
	metrics_put_one(out, "lianban_journal_commit_failures_total", "counter",
	    "group commit attempts that failed (a full map, grown and retried, counts too)", (double)js.js_failures);
	metrics_put_one(out, "lianban_journal_commit_seconds_total", "counter",
	    "time spent in group commits, fsync included", js.js_commit_us / 1e6);
	metrics_put_one(out, "lianban_journal_fsync_seconds_total", "counter",
	    "time spent making commits durable (the LMDB commit and its fsync)",
	    js.js_sync_us / 1e6);
	metrics_put_one(out, "lianban_journal_records_committed_total", "counter",
	    "records committed; divided by the commits, the records per commit",
	    (double)js.js_records);
	metrics_put_one(out, "lianban_journal_map_used_bytes", "gauge",
	    "bytes of the journal's LMDB map in use", (double)js.js_map_used);
	metrics_put_one(out, "lianban_journal_map_size_bytes", "gauge",
	    "bytes of the journal's LMDB map", (double)js.js_map_size);
	metrics_put_one(out, "lianban_replay_store_entries", "gauge",
	    "consent token ids kept against replay until they expire", (double)js.js_jti);
}

void
metrics_render(struct evbuffer *out, struct gw *gw)
{
	size_t	f;

	if (gw != NULL) {
		metrics_put_state(out, gw);
		cluster_metrics(gw->gw_cluster, out);
		loops_metrics(out, gw);
	}
	pthread_mutex_lock(&metrics_lock);
	for (f = 0; f < METRICS_N; f++)
		metrics_put_family(out, (enum metrics_id)f);
	pthread_mutex_unlock(&metrics_lock);
}

static void
metrics_route(struct evhttp_request *req, void *arg)
{
	struct gw	*gw = arg;
	struct evbuffer	*out;
	const char	*path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

	if (path == NULL || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, HTTP_BADMETHOD, NULL);
		return;
	}
	if ((out = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	metrics_render(out, gw);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", out);
	evbuffer_free(out);
}

int
metrics_start(struct gw *gw, char *err, size_t errlen)
{
	struct evhttp_bound_socket	*bs;
	char				 host[128], bound[160], *colon, *end;
	long				 port;

	if (gw->gw_conf.gc_metrics[0] == '\0')
		return 0;
	if (strlcpy_chk(host, gw->gw_conf.gc_metrics, sizeof(host)) != 0 ||
	    (colon = strrchr(host, ':')) == NULL) {
		snprintf(err, errlen, "--metrics wants HOST:PORT, not \"%s\"",
		    gw->gw_conf.gc_metrics);
		return -1;
	}
	*colon = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535) {
		snprintf(err, errlen, "--metrics port out of range: \"%s\"", gw->gw_conf.gc_metrics);
		return -1;
	}
	if ((metrics_http = evhttp_new(gw->gw_base)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	evhttp_set_gencb(metrics_http, metrics_route, gw);
	/* Other methods reach metrics_route, which answers 405 rather than evhttp's 501. */
	evhttp_set_allowed_methods(metrics_http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_max_body_size(metrics_http, 0);
	evhttp_set_timeout(metrics_http, 30);
	if ((bs = evhttp_bind_socket_with_handle(metrics_http, host, (ev_uint16_t)port)) ==
	    NULL || http_bound_name(bs, bound, sizeof(bound)) != 0) {
		snprintf(err, errlen, "cannot listen on %s", gw->gw_conf.gc_metrics);
		evhttp_free(metrics_http);
		metrics_http = NULL;
		return -1;
	}
	/* With port 0 the kernel picked one: the log says which. */
	log_info("metrics: http://%s/metrics", bound);
	return 0;
}

void
metrics_stop(void)
{
	size_t	f;

	if (metrics_http != NULL)
		evhttp_free(metrics_http);
	metrics_http = NULL;
	pthread_mutex_lock(&metrics_lock);
	for (f = 0; f < METRICS_N; f++) {
		free(metrics_sets[f].mt_series);
		memset(&metrics_sets[f], 0, sizeof(metrics_sets[f]));
	}
	pthread_mutex_unlock(&metrics_lock);
}
