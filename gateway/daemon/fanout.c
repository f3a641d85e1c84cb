/*
 * fanout.c - asynchronous HTTP and HTTPS requests from the gateway to
 * department systems, with a keep-alive connection pool per department
 * endpoint and a timeout per request.
 *
 * Every request of an exchange is sent at once; libevent multiplexes them,
 * so a bundle costs about as long as its slowest department.
 *
 * https endpoints are mutual TLS: the gateway checks the department server's
 * certificate against the department servers' CA (CERTS/departments/ca.pem)
 * and the endpoint's host name, and presents its own client identity
 * (CERTS/gateway-client.pem and .key).  The TLS context is made once, at
 * start; without those files https endpoints fail with a message that names
 * them, and http endpoints keep working.
 *
 * A connection that was closed, by the department or after a failure, is
 * never given another request: libevent 2.1 would reconnect it by reusing
 * the bufferevent, and an SSL bufferevent cannot start a second handshake
 * on its spent SSL object.  Such a connection leaves the pool once its last
 * request is finished, and the next request opens a fresh one.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "gateway.h"

#define POOL_CONNS	32	/* connections per department endpoint, at most */

struct pool;

/* One connection of a pool. */
struct pconn {
	struct evhttp_connection *pc_conn;
	struct fanout		 *pc_fo;
	unsigned		  pc_busy;	/* requests sent on it, unanswered */
	bool			  pc_dead;	/* closed or failed: takes no new request */
	bool			  pc_answered;	/* an answer came back on it */
	bool			  pc_tls_started; /* the TLS handshake began */
	bool			  pc_tls_done;	/* our side of it ended */
	char			  pc_tls_why[160]; /* the first TLS failure seen */
};

struct pool {
	char			  pl_host[256];
	int			  pl_port;
	bool			  pl_tls;
	struct pconn		 *pl_conns[POOL_CONNS];
	size_t			  pl_nconns;
	TAILQ_ENTRY(pool)	  pl_entry;
};

struct fanout {
	struct event_base	*fo_base;
	SSL_CTX			*fo_tls;	/* NULL: https endpoints are refused */
	char			 fo_tls_why[PATH_MAX + 128]; /* why fo_tls is NULL */
	struct event		*fo_reap;	/* frees dead, idle connections */
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
	struct pconn		*fe_pc;		/* the connection, NULL when refused */
	char			 fe_refused[192];	/* why it was never sent */
};

/*
 * What the handshake went through, recorded as it happens: libevent clears
 * the SSL object when it resets a failed connection, before the request's
 * callback could ask it.
 */
static int
fanout_tls_verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL		*ssl;
	struct pconn	*pc;

	if (!ok && (ssl = X509_STORE_CTX_get_ex_data(xs,
	    SSL_get_ex_data_X509_STORE_CTX_idx())) != NULL &&
	    (pc = SSL_get_app_data(ssl)) != NULL && pc->pc_tls_why[0] == '\0')
		snprintf(pc->pc_tls_why, sizeof(pc->pc_tls_why), "certificate verify "
		    "failed: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(xs)));
	return ok;
}

static void
fanout_tls_info_cb(const SSL *ssl, int where, int ret)
{
	struct pconn	*pc;

	int		 fd, on = 1;

	if ((pc = SSL_get_app_data(ssl)) == NULL)
		return;
	/*
	 * A request leaves in more than one TLS record; without TCP_NODELAY
	 * the last one can wait for the department's delayed ACK.
	 */
	if ((where & SSL_CB_HANDSHAKE_START) && !pc->pc_tls_started &&
	    (fd = SSL_get_fd(ssl)) >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (where & SSL_CB_HANDSHAKE_START)
		pc->pc_tls_started = true;
	if (where & SSL_CB_HANDSHAKE_DONE)
		pc->pc_tls_done = true;
	if ((where & SSL_CB_ALERT) && (where & SSL_CB_READ) && pc->pc_tls_why[0] == '\0' &&
	    (ret >> 8) == SSL3_AL_FATAL)
		snprintf(pc->pc_tls_why, sizeof(pc->pc_tls_why), "the department sent "
		    "alert \"%s\"", SSL_alert_desc_string_long(ret));
}

/*
 * The client side of department TLS: TLS 1.2 or later, the department
 * server's certificate verified against departments/ca.pem, and the
 * gateway's client certificate.  On failure why says which file is wrong.
 */
static SSL_CTX *
fanout_tls(const char *certs, char *why, size_t whylen)
{
	SSL_CTX		*ctx;
	EVP_PKEY	*key = NULL;
	char		 path[PATH_MAX], err[384];

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(why, whylen, "cannot create a TLS context");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, fanout_tls_verify_cb);
	SSL_CTX_set_info_callback(ctx, fanout_tls_info_cb);
	snprintf(path, sizeof(path), "%s/departments/ca.pem", certs);
	if (SSL_CTX_load_verify_file(ctx, path) != 1) {
		snprintf(why, whylen, "%s: cannot load the CA of department servers", path);
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/gateway-client.pem", certs);
	if (SSL_CTX_use_certificate_chain_file(ctx, path) != 1) {
		snprintf(why, whylen, "%s: cannot use as the gateway's client certificate",
		    path);
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/gateway-client.key", certs);
	if (key_load(path, &key, err, sizeof(err)) != 0) {
		snprintf(why, whylen, "%s", err);
		goto fail;
	}
	/* The context keeps its own reference; ours goes now. */
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(why, whylen, "%s: does not match gateway-client.pem", path);
		goto fail;
	}
	EVP_PKEY_free(key);
	ERR_clear_error();
	return ctx;
fail:
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

static void
fanout_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fanout	*fo = arg;
	struct pool	*pl;
	struct pconn	*pc;
	size_t		 i, n;

	(void)fd;
	(void)what;
	TAILQ_FOREACH(pl, &fo->fo_pools, pl_entry) {
		for (i = n = 0; i < pl->pl_nconns; i++) {
			pc = pl->pl_conns[i];
			if (!pc->pc_dead || pc->pc_busy > 0) {
				pl->pl_conns[n++] = pc;
				continue;
			}
			evhttp_connection_set_closecb(pc->pc_conn, NULL, NULL);
			evhttp_connection_free(pc->pc_conn);
			free(pc);
		}
		pl->pl_nconns = n;
	}
}

/*
 * Takes a connection out of service.  It is freed from the loop, not here:
 * this runs inside libevent's callbacks of that very connection.
 */
static void
fanout_conn_kill(struct pconn *pc)
{
	pc->pc_dead = true;
	if (pc->pc_busy == 0)
		event_active(pc->pc_fo->fo_reap, EV_TIMEOUT, 1);
}

static void
fanout_conn_closed_cb(struct evhttp_connection *conn, void *arg)
{
	(void)conn;
	fanout_conn_kill(arg);
}

struct fanout *
fanout_new(struct event_base *base, const char *certs)
{
	struct fanout	*fo;

	if ((fo = calloc(1, sizeof(*fo))) == NULL)
		return NULL;
	fo->fo_base = base;
	TAILQ_INIT(&fo->fo_pools);
	if ((fo->fo_reap = event_new(base, -1, 0, fanout_reap_cb, fo)) == NULL) {
		free(fo);
		return NULL;
	}
	if (certs == NULL)
		snprintf(fo->fo_tls_why, sizeof(fo->fo_tls_why), "no certificate directory");
	else if ((fo->fo_tls = fanout_tls(certs, fo->fo_tls_why,
	    sizeof(fo->fo_tls_why))) == NULL)
		log_warnx("department TLS: %s; https department endpoints will fail",
		    fo->fo_tls_why);
	return fo;
}

void
fanout_free(struct fanout *fo)
{
	struct pool	*pl;
	size_t		 i;

	if (fo == NULL)
		return;
	while ((pl = TAILQ_FIRST(&fo->fo_pools)) != NULL) {
		TAILQ_REMOVE(&fo->fo_pools, pl, pl_entry);
		for (i = 0; i < pl->pl_nconns; i++) {
			evhttp_connection_set_closecb(pl->pl_conns[i]->pc_conn, NULL, NULL);
			evhttp_connection_free(pl->pl_conns[i]->pc_conn);
			free(pl->pl_conns[i]);
		}
		free(pl);
	}
	event_free(fo->fo_reap);
	SSL_CTX_free(fo->fo_tls);
	free(fo);
}

/*
 * A new TLS connection: the server certificate must name host (a DNS name,
 * also sent as SNI, or an IP address literal).
 */
static struct evhttp_connection *
fanout_tls_conn(struct fanout *fo, struct pconn *pc, const char *host, int port)
{
	struct evhttp_connection	*conn;
	struct bufferevent		*bev;
	SSL				*ssl;

	if ((ssl = SSL_new(fo->fo_tls)) == NULL)
		return NULL;
	if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1 &&
	    (SSL_set1_host(ssl, host) != 1 || SSL_set_tlsext_host_name(ssl, host) != 1)) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	ERR_clear_error();
	/* pc outlives ssl: it is freed after its connection. */
	SSL_set_app_data(ssl, pc);
	/* The bufferevent owns ssl from here, even when it fails. */
	bev = bufferevent_openssl_socket_new(fo->fo_base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL)
		return NULL;
	/*
	 * Answers carry their length, so a department that closes without
	 * close_notify after answering loses nothing.
	 */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	if ((conn = evhttp_connection_base_bufferevent_new(fo->fo_base, NULL, bev, host,
	    (unsigned short)port)) == NULL)
		bufferevent_free(bev);
	return conn;
}

/*
 * A connection to host:port for one more request: an idle one of the pool,
 * else a new one while the pool has room, else the least busy (libevent
 * queues requests on a busy connection).  The pool bounds the parallelism
 * per department endpoint as well as reusing connections.
 */
static struct pconn *
fanout_conn(struct fanout *fo, const char *host, int port, bool tls)
{
	struct pconn	*pc, *best = NULL;
	struct pool	*pl;
	size_t		 i;

	TAILQ_FOREACH(pl, &fo->fo_pools, pl_entry)
		if (pl->pl_port == port && pl->pl_tls == tls && strcmp(pl->pl_host, host) == 0)
			break;
	if (pl == NULL) {
		if ((pl = calloc(1, sizeof(*pl))) == NULL ||
		    strlcpy_chk(pl->pl_host, host, sizeof(pl->pl_host)) != 0) {
			free(pl);
			return NULL;
		}
		pl->pl_port = port;
		pl->pl_tls = tls;
		TAILQ_INSERT_TAIL(&fo->fo_pools, pl, pl_entry);
	}
	for (i = 0; i < pl->pl_nconns; i++) {
		pc = pl->pl_conns[i];
		if (!pc->pc_dead && (best == NULL || pc->pc_busy < best->pc_busy))
			best = pc;
	}
	if (best != NULL && (best->pc_busy == 0 || pl->pl_nconns == POOL_CONNS))
		return best;
	if (pl->pl_nconns == POOL_CONNS)
		return NULL;	/* every slot holds a closed connection still busy */
	if ((pc = calloc(1, sizeof(*pc))) == NULL)
		return NULL;
	pc->pc_fo = fo;
	if (tls)
		pc->pc_conn = fanout_tls_conn(fo, pc, host, port);
	else
		pc->pc_conn = evhttp_connection_base_new(fo->fo_base, NULL, host,
		    (unsigned short)port);
	if (pc->pc_conn == NULL) {
		free(pc);
		return NULL;
	}
	evhttp_connection_set_retries(pc->pc_conn, 0);
	evhttp_connection_set_max_body_size(pc->pc_conn, LB_DEPT_BODY_MAX);
	evhttp_connection_set_max_headers_size(pc->pc_conn, 64 * 1024);
	evhttp_connection_set_closecb(pc->pc_conn, fanout_conn_closed_cb, pc);
	pl->pl_conns[pl->pl_nconns++] = pc;
	return pc;
}

static void
fanout_fetch_finish(struct fetch *fe, enum lb_err e, const uint8_t *body, size_t len,
    const char *msg)
{
	event_free(fe->fe_timer);
	if (fe->fe_pc != NULL && --fe->fe_pc->pc_busy == 0 && fe->fe_pc->pc_dead)
		event_active(fe->fe_fo->fo_reap, EV_TIMEOUT, 1);
	fe->fe_cb(fe->fe_arg, e, body, len, msg);
	free(fe);
}

/*
 * Why a TLS connection failed, or "" when TLS is not the reason.  With
 * TLS 1.3 the client's side of the handshake ends before the server has
 * checked the client certificate: a server that refuses it closes a
 * connection that looked established, often with a reset that swallows its
 * alert.
 */
static void
fanout_fetch_tls_why(struct pconn *pc, char *why, size_t whylen)
{
	struct bufferevent	*bev;
	const char		*reason = NULL;
	unsigned long		 e;

	why[0] = '\0';
	if ((bev = evhttp_connection_get_bufferevent(pc->pc_conn)) == NULL ||
	    bufferevent_openssl_get_ssl(bev) == NULL)
		return;
	/* libevent records SSL_get_error()'s code and OpenSSL's queue. */
	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		if (ERR_GET_LIB(e) != 0 && reason == NULL)
			reason = ERR_reason_error_string(e);
	if (pc->pc_tls_why[0] != '\0')
		snprintf(why, whylen, "%s", pc->pc_tls_why);
	else if (reason != NULL)
		snprintf(why, whylen, "%s", reason);
	else if (pc->pc_answered || !pc->pc_tls_started)
		return;
	else if (pc->pc_tls_done)
		snprintf(why, whylen, "the department closed the connection after the "
		    "handshake; it may not accept the gateway's client certificate");
	else
		snprintf(why, whylen, "the department closed the connection");
}

static void
fanout_fetch_error_cb(enum evhttp_request_error err, void *arg)
{
	struct fetch	*fe = arg;

	fe->fe_error = err;
	fe->fe_errored = true;
}

static void
fanout_fetch_done_cb(struct evhttp_request *req, void *arg)
{
	struct fetch	*fe = arg;
	struct evbuffer	*in;
	uint8_t		*body = NULL;
	char		 msg[512], why[256];
	size_t		 len;
	int		 code;

	fe->fe_req = NULL;
	if (req == NULL || (code = evhttp_request_get_response_code(req)) == 0) {
		/* Whatever went wrong, the connection is not trusted again. */
		fanout_fetch_tls_why(fe->fe_pc, why, sizeof(why));
		fanout_conn_kill(fe->fe_pc);
		if (fe->fe_errored && fe->fe_error == EVREQ_HTTP_DATA_TOO_LONG) {
			snprintf(msg, sizeof(msg), "department %s sent an answer larger than "
			    "%d bytes", fe->fe_dept, LB_DEPT_BODY_MAX);
			fanout_fetch_finish(fe, LB_E_DEPARTMENT_BAD_RESPONSE, NULL, 0, msg);
		} else if (why[0] != '\0') {
			snprintf(msg, sizeof(msg), "department %s: TLS handshake failed: %s",
			    fe->fe_dept, why);
			fanout_fetch_finish(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
		} else {
			snprintf(msg, sizeof(msg), "department %s could not be reached",
			    fe->fe_dept);
			fanout_fetch_finish(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
		}
		return;
	}
	fe->fe_pc->pc_answered = true;
	if (code >= 500) {
		snprintf(msg, sizeof(msg), "department %s answered HTTP %d", fe->fe_dept, code);
		fanout_fetch_finish(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
		return;
	}
	if (code == 404) {
		snprintf(msg, sizeof(msg), "department %s has no record for this subject",
		    fe->fe_dept);
		fanout_fetch_finish(fe, LB_E_DEPARTMENT_BAD_RESPONSE, NULL, 0, msg);
		return;
	}
	if (code != 200) {
		snprintf(msg, sizeof(msg), "department %s answered HTTP %d", fe->fe_dept, code);
		fanout_fetch_finish(fe, LB_E_DEPARTMENT_BAD_RESPONSE, NULL, 0, msg);
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	if ((body = malloc(len + 1)) == NULL) {
		fanout_fetch_finish(fe, LB_E_INTERNAL, NULL, 0, "out of memory");
		return;
	}
	evbuffer_remove(in, body, len);
	body[len] = '\0';
	fanout_fetch_finish(fe, LB_OK, body, len, NULL);
	free(body);
}

static void
fanout_fetch_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch	*fe = arg;
	char		 msg[128];

	(void)fd;
	(void)what;
	/* A refused request never left: its timer only reports why. */
	if (fe->fe_pc == NULL) {
		fanout_fetch_finish(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, fe->fe_refused);
		return;
	}
	/*
	 * Cancelling means libevent will not call fanout_fetch_done_cb for it; it
	 * resets the connection when the request was on the wire.
	 */
	if (fe->fe_req != NULL)
		evhttp_cancel_request(fe->fe_req);
	fe->fe_req = NULL;
	fanout_conn_kill(fe->fe_pc);
	snprintf(msg, sizeof(msg), "department %s did not answer in time", fe->fe_dept);
	fanout_fetch_finish(fe, LB_E_DEPARTMENT_TIMEOUT, NULL, 0, msg);
}

int
fanout_fetch(struct fanout *fo, const struct adapter *ad, const char *item,
    const char *subject, fanout_cb cb, void *arg)
{
	struct evhttp_uri		*uri = NULL;
	struct fetch			*fe = NULL;
	struct timeval			 tv;
	char				 url[LB_URL_MAX], target[LB_URL_MAX];
	const char			*host, *path, *query, *scheme;
	bool				 tls;
	int				 port, ret = -1;

	if (adapter_url(ad, item, subject, url, sizeof(url)) != 0 ||
	    (uri = evhttp_uri_parse(url)) == NULL ||
	    (host = evhttp_uri_get_host(uri)) == NULL ||
	    (scheme = evhttp_uri_get_scheme(uri)) == NULL)
		goto done;
	if (strcmp(scheme, "http") == 0)
		tls = false;
	else if (strcmp(scheme, "https") == 0)
		tls = true;
	else
		goto done;
	if ((port = evhttp_uri_get_port(uri)) == -1)
		port = tls ? 443 : 80;
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
	if ((fe->fe_timer = evtimer_new(fo->fo_base, fanout_fetch_timeout_cb, fe)) == NULL)
		goto done;
	if (tls && fo->fo_tls == NULL) {
		/*
		 * Reported from the loop: cb runs after this call, as always.
		 * The start-up log says which file is missing or wrong.
		 */
		snprintf(fe->fe_refused, sizeof(fe->fe_refused), "department %s: https "
		    "endpoints need departments/ca.pem and gateway-client.pem/.key in "
		    "the certificate directory", fe->fe_dept);
		tv.tv_sec = 0;
		tv.tv_usec = 0;
		evtimer_add(fe->fe_timer, &tv);
		fe = NULL;
		ret = 0;
		goto done;
	}
	if ((fe->fe_pc = fanout_conn(fo, host, port, tls)) == NULL ||
	    (fe->fe_req = evhttp_request_new(fanout_fetch_done_cb, fe)) == NULL)
		goto done;
	evhttp_request_set_error_cb(fe->fe_req, fanout_fetch_error_cb);
	evhttp_add_header(evhttp_request_get_output_headers(fe->fe_req), "Host", host);
	evhttp_add_header(evhttp_request_get_output_headers(fe->fe_req), "Accept", "*/*");
	evhttp_add_header(evhttp_request_get_output_headers(fe->fe_req), "User-Agent",
	    "lianban/" PACKAGE_VERSION);
	fe->fe_pc->pc_busy++;
	if (evhttp_make_request(fe->fe_pc->pc_conn, fe->fe_req, EVHTTP_REQ_GET, target) != 0) {
		/* libevent frees the request when make_request fails. */
		fe->fe_req = NULL;
		fe->fe_pc->pc_busy--;
		fanout_conn_kill(fe->fe_pc);
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
