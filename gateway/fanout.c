/*
 * fanout.c - asynchronous HTTP requests from the gateway to department
 * systems, with a keep-alive connection pool per department endpoint and a
 * timeout per request.
 *
 * Every request of an exchange is sent at once; libevent multiplexes them,
 * so a bundle costs about as long as its slowest department.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gateway.h"

#define POOL_CONNS	32	/* connections per department endpoint, at most */

struct pool {
	char			  pl_host[256];
	int			  pl_port;
	struct evhttp_connection *pl_conns[POOL_CONNS];
	unsigned		  pl_busy[POOL_CONNS];	/* requests sent on each, unanswered */
	size_t			  pl_nconns;
	TAILQ_ENTRY(pool)	  pl_entry;
};

struct fanout {
	struct event_base	*fo_base;
	TAILQ_HEAD(, pool)	 fo_pools;
};

struct fetch {
	struct fanout		*fe_fo;
	struct evhttp_request	*fe_req;
	struct event		*fe_timer;
	fanout_cb		 fe_cb;
	void			*fe_arg;
	enum evhttp_request_error fe_error;
	bool			 fe_errored;
	char			 fe_dept[LB_ID_MAX];
	struct pool		*fe_pool;	/* the connection's pool and slot */
	size_t			 fe_slot;
};

struct fanout *
fanout_new(struct event_base *base)
{
	struct fanout	*fo;

	if ((fo = calloc(1, sizeof(*fo))) == NULL)
		return NULL;
	fo->fo_base = base;
	TAILQ_INIT(&fo->fo_pools);
	return fo;
}

void
fanout_free(struct fanout *fo)
{
	struct pool	*pl;
	int		 i;

	if (fo == NULL)
		return;
	while ((pl = TAILQ_FIRST(&fo->fo_pools)) != NULL) {
		TAILQ_REMOVE(&fo->fo_pools, pl, pl_entry);
		for (i = 0; i < (int)pl->pl_nconns; i++)
			evhttp_connection_free(pl->pl_conns[i]);
		free(pl);
	}
	free(fo);
}

/*
 * A connection to host:port for one more request: an idle one of the pool,
 * else a new one while the pool has room, else the least busy (libevent
 * queues requests on a busy connection).  The pool bounds the parallelism
 * per department endpoint as well as reusing connections.
 */
static struct evhttp_connection *
fanout_conn(struct fanout *fo, const char *host, int port, struct pool **plp,
    size_t *slot)
{
	struct evhttp_connection *conn;
	struct pool		 *pl;
	size_t			  i, best = 0;

	TAILQ_FOREACH(pl, &fo->fo_pools, pl_entry)
		if (pl->pl_port == port && strcmp(pl->pl_host, host) == 0)
			break;
	if (pl == NULL) {
		if ((pl = calloc(1, sizeof(*pl))) == NULL ||
		    strlcpy_chk(pl->pl_host, host, sizeof(pl->pl_host)) != 0) {
			free(pl);
			return NULL;
		}
		pl->pl_port = port;
		TAILQ_INSERT_TAIL(&fo->fo_pools, pl, pl_entry);
	}
	for (i = 0; i < pl->pl_nconns; i++)
		if (pl->pl_busy[i] < pl->pl_busy[best])
			best = i;
	if (pl->pl_nconns > 0 && (pl->pl_busy[best] == 0 || pl->pl_nconns == POOL_CONNS)) {
		*plp = pl;
		*slot = best;
		return pl->pl_conns[best];
	}
	conn = evhttp_connection_base_new(fo->fo_base, NULL, host, (unsigned short)port);
	if (conn == NULL)
		return NULL;
	evhttp_connection_set_retries(conn, 0);
	evhttp_connection_set_max_body_size(conn, LB_DEPT_BODY_MAX);
	evhttp_connection_set_max_headers_size(conn, 64 * 1024);
	*plp = pl;
	*slot = pl->pl_nconns;
	pl->pl_conns[pl->pl_nconns++] = conn;
	return conn;
}

static void
fetch_finish(struct fetch *fe, enum lb_err e, const uint8_t *body, size_t len,
    const char *msg)
{
	event_free(fe->fe_timer);
	fe->fe_pool->pl_busy[fe->fe_slot]--;
	fe->fe_cb(fe->fe_arg, e, body, len, msg);
	free(fe);
}

static void
fetch_error_cb(enum evhttp_request_error err, void *arg)
{
	struct fetch	*fe = arg;

	fe->fe_error = err;
	fe->fe_errored = true;
}

static void
fetch_done_cb(struct evhttp_request *req, void *arg)
{
	struct fetch	*fe = arg;
	struct evbuffer	*in;
	uint8_t		*body = NULL;
	char		 msg[160];
	size_t		 len;
	int		 code;

	fe->fe_req = NULL;
	if (req == NULL || (code = evhttp_request_get_response_code(req)) == 0) {
		if (fe->fe_errored && fe->fe_error == EVREQ_HTTP_DATA_TOO_LONG) {
			snprintf(msg, sizeof(msg), "department %s sent an answer larger than "
			    "%d bytes", fe->fe_dept, LB_DEPT_BODY_MAX);
			fetch_finish(fe, LB_E_DEPARTMENT_BAD_RESPONSE, NULL, 0, msg);
		} else {
			snprintf(msg, sizeof(msg), "department %s could not be reached",
			    fe->fe_dept);
			fetch_finish(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
		}
		return;
	}
	if (code >= 500) {
		snprintf(msg, sizeof(msg), "department %s answered HTTP %d", fe->fe_dept, code);
		fetch_finish(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
		return;
	}
	if (code == 404) {
		snprintf(msg, sizeof(msg), "department %s has no record for this subject",
		    fe->fe_dept);
		fetch_finish(fe, LB_E_DEPARTMENT_BAD_RESPONSE, NULL, 0, msg);
		return;
	}
	if (code != 200) {
		snprintf(msg, sizeof(msg), "department %s answered HTTP %d", fe->fe_dept, code);
		fetch_finish(fe, LB_E_DEPARTMENT_BAD_RESPONSE, NULL, 0, msg);
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	if ((body = malloc(len + 1)) == NULL) {
		fetch_finish(fe, LB_E_INTERNAL, NULL, 0, "out of memory");
		return;
	}
	evbuffer_remove(in, body, len);
	body[len] = '\0';
	fetch_finish(fe, LB_OK, body, len, NULL);
	free(body);
}

static void
fetch_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch	*fe = arg;
	char		 msg[128];

	(void)fd;
	(void)what;
	/* Cancelling means libevent will not call fetch_done_cb for it. */
	if (fe->fe_req != NULL)
		evhttp_cancel_request(fe->fe_req);
	fe->fe_req = NULL;
	snprintf(msg, sizeof(msg), "department %s did not answer in time", fe->fe_dept);
	fetch_finish(fe, LB_E_DEPARTMENT_TIMEOUT, NULL, 0, msg);
}

int
fanout_fetch(struct fanout *fo, const struct adapter *ad, const char *item,
    const char *subject, fanout_cb cb, void *arg)
{
	struct evhttp_uri		*uri = NULL;
	struct evhttp_connection	*conn;
	struct fetch			*fe = NULL;
	struct timeval			 tv;
	char				 url[LB_URL_MAX], target[LB_URL_MAX];
	const char			*host, *path, *query;
	int				 port, ret = -1;

	if (adapter_url(ad, item, subject, url, sizeof(url)) != 0 ||
	    (uri = evhttp_uri_parse(url)) == NULL ||
	    (host = evhttp_uri_get_host(uri)) == NULL ||
	    evhttp_uri_get_scheme(uri) == NULL ||
	    strcmp(evhttp_uri_get_scheme(uri), "http") != 0)
		goto done;
	if ((port = evhttp_uri_get_port(uri)) == -1)
		port = 80;
	path = evhttp_uri_get_path(uri);
	query = evhttp_uri_get_query(uri);
	if (snprintf(target, sizeof(target), "%s%s%s", path && *path ? path : "/",
	    query ? "?" : "", query ? query : "") >= (int)sizeof(target))
		goto done;
	if ((fe = calloc(1, sizeof(*fe))) == NULL)
		goto done;
	fe->fe_fo = fo;
	fe->fe_cb = cb;
	fe->fe_arg = arg;
	snprintf(fe->fe_dept, sizeof(fe->fe_dept), "%s", ad->ad_dept);
	if ((conn = fanout_conn(fo, host, port, &fe->fe_pool, &fe->fe_slot)) == NULL ||
	    (fe->fe_timer = evtimer_new(fo->fo_base, fetch_timeout_cb, fe)) == NULL ||
	    (fe->fe_req = evhttp_request_new(fetch_done_cb, fe)) == NULL)
		goto done;
	evhttp_request_set_error_cb(fe->fe_req, fetch_error_cb);
	evhttp_add_header(evhttp_request_get_output_headers(fe->fe_req), "Host", host);
	evhttp_add_header(evhttp_request_get_output_headers(fe->fe_req), "Accept", "*/*");
	evhttp_add_header(evhttp_request_get_output_headers(fe->fe_req), "User-Agent",
	    "lianban/" PACKAGE_VERSION);
	fe->fe_pool->pl_busy[fe->fe_slot]++;
	if (evhttp_make_request(conn, fe->fe_req, EVHTTP_REQ_GET, target) != 0) {
		/* libevent frees the request when make_request fails. */
		fe->fe_pool->pl_busy[fe->fe_slot]--;
		fe->fe_req = NULL;
		goto done;
	}
	tv.tv_sec = ad->ad_timeout_ms / 1000;
	tv.tv_usec = (ad->ad_timeout_ms % 1000) * 1000;
	evtimer_add(fe->fe_timer, &tv);
	fe = NULL;
	ret = 0;
done:
	if (fe != NULL) {
		if (fe->fe_req != NULL)
			evhttp_request_free(fe->fe_req);
		if (fe->fe_timer != NULL)
			event_free(fe->fe_timer);
		free(fe);
	}
	if (uri != NULL)
		evhttp_uri_free(uri);
	return ret;
}
