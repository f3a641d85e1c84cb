/*
 * fanout.c - asynchronous HTTP and HTTPS requests from the gateway to
 * department systems, with a keep-alive connection pool per department
 * address and a timeout per request.
 *
 * Every request of an exchange is sent at once; libevent multiplexes them,
 * so a bundle costs about as long as its slowest department.
 *
 * A fetch resolves the endpoint's host itself, without blocking the loop
 * (evdns, which also reads /etc/hosts), and connects to the address it got:
 * a DNS name is resolved once per request, an IP literal (IPv4, bracketed
 * IPv6, IPv4-mapped IPv6) is used as it is.  For an adapter registered
 * through the API every address is first checked against the operator's
 * endpoint list (egress.c), and the connection goes to exactly the address
 * checked, so a department's DNS cannot point the gateway elsewhere.  The Host header is the URL's
 * host and port as written, and over TLS the certificate is checked for
 * the URL's host (sent as SNI when it is a name, never for an IP literal).
 *
 * Ownership of a fetch.  libevent may call a request's callbacks before the
 * call that started it returns: evhttp_make_request runs the completion of
 * every request of a connection that fails to connect at once, and
 * evdns_getaddrinfo answers literals and /etc/hosts names on the spot.  So
 * a fetch never completes inside such a callback: fanout_fetch_end records
 * the outcome and activates the fetch's own event, and the caller's
 * callback runs from the loop, after every function that still holds the
 * fetch has returned.  The fetch is freed once its outcome was delivered
 * and the resolver no longer holds it (a resolution cut short by the
 * timeout answers later, with EVUTIL_EAI_CANCEL).  The HTTP request is
 * owned by the fetch (evhttp_request_own), so libevent never frees it
 * behind the fetch's back, whichever way the request ends.
 *
 * https endpoints are mutual TLS: the gateway checks the department server's
 * certificate against the department servers' CA (CERTS/departments/ca.pem)
 * and the endpoint's host, and presents its own client identity
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
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "gateway.h"

#define POOL_CONNS	32	/* connections per department address, at most */
#define ADDR_TEXT_MAX	64	/* an IPv6 address as text, with room to spare */

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

/*
 * The connections to one address and port.  Over TLS the pool is also the
 * name the certificate is checked for: two hosts that resolve to one
 * address do not share a TLS connection.
 */
struct pool {
	char			  pl_addr[ADDR_TEXT_MAX];
	char			  pl_name[256];	/* TLS: the endpoint's host; else "" */
	int			  pl_port;
	bool			  pl_tls;
	struct pconn		 *pl_conns[POOL_CONNS];
	size_t			  pl_nconns;
	TAILQ_ENTRY(pool)	  pl_entry;
};

struct fanout {
	struct event_base	*fo_base;
	struct evdns_base	*fo_dns;
	SSL_CTX			*fo_tls;	/* NULL: https endpoints are refused */
	char			 fo_tls_why[PATH_MAX + 128]; /* why fo_tls is NULL */
	struct event		*fo_reap;	/* frees dead, idle connections */
	TAILQ_HEAD(, pool)	 fo_pools;
};

struct fetch {
	struct fanout		*fe_fo;
	const struct egress	*fe_eg;		/* the endpoint list; NULL: any address */
	struct endpoint		 fe_ep;		/* where the request goes */
	char			 fe_target[LB_URL_MAX];	/* its path and query */
	char			 fe_dept[LB_ID_MAX];
	char			 fe_adapter[LB_ID_MAX];
	fanout_cb		 fe_cb;
	void			*fe_arg;
	uint64_t		 fe_t0_us;	/* when fanout_fetch was called */
	struct event		*fe_timer;	/* the adapter's timeout */
	struct event		*fe_done;	/* delivers the outcome from the loop */
	/* Who holds the fetch besides the loop. */
	bool			 fe_resolving;	/* the resolver: its callback is due */
	struct evdns_getaddrinfo_request *fe_dns; /* cancels it; NULL once answered */
	bool			 fe_sent;	/* the HTTP client: fe_req is queued */
	struct evhttp_request	*fe_req;	/* the fetch's own (evhttp_request_own) */
	struct pconn		*fe_pc;		/* the connection fe_req went to */
	enum evhttp_request_error fe_error;
	bool			 fe_errored;
	/* The outcome, once fe_finished. */
	bool			 fe_finished;
	bool			 fe_delivered;	/* fe_cb has run */
	enum lb_err		 fe_result;
	uint8_t			*fe_body;	/* malloc'ed, NUL-terminated */
	size_t			 fe_len;
	char			 fe_msg[512];
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
	struct pool	*pl, *next;
	struct pconn	*pc;
	size_t		 i, n;

	(void)fd;
	(void)what;
	for (pl = TAILQ_FIRST(&fo->fo_pools); pl != NULL; pl = next) {
		next = TAILQ_NEXT(pl, pl_entry);
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
		/* Names resolve to new addresses over time; their empty pools go. */
		if (n == 0) {
			TAILQ_REMOVE(&fo->fo_pools, pl, pl_entry);
			free(pl);
		}
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

/*
 * The resolver reads /etc/resolv.conf and /etc/hosts once; without
 * resolv.conf it still answers from /etc/hosts.  It keeps the loop alive
 * only while it has a question out.
 */
static struct evdns_base *
fanout_dns(struct event_base *base)
{
	struct evdns_base	*dns;

	if ((dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE)) != NULL)
		return dns;
	log_warnx("department endpoints: no name servers (/etc/resolv.conf); names are "
	    "looked up in /etc/hosts only");
	if ((dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE)) != NULL)
		(void)evdns_base_load_hosts(dns, NULL);
	return dns;
}

struct fanout *
fanout_new(struct event_base *base, const char *certs)
{
	struct fanout	*fo;

	if ((fo = calloc(1, sizeof(*fo))) == NULL)
		return NULL;
	fo->fo_base = base;
	TAILQ_INIT(&fo->fo_pools);
	if ((fo->fo_reap = event_new(base, -1, 0, fanout_reap_cb, fo)) == NULL ||
	    (fo->fo_dns = fanout_dns(base)) == NULL) {
		if (fo->fo_reap != NULL)
			event_free(fo->fo_reap);
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
	/*
	 * Questions still out (a resolution a timeout cut short) are answered
	 * with an error, so their fetches are freed when the loop runs them.
	 */
	evdns_base_free(fo->fo_dns, 1);
	event_free(fo->fo_reap);
	SSL_CTX_free(fo->fo_tls);
	free(fo);
}

int
fanout_nameserver(struct fanout *fo, const char *nameserver)
{
	if (evdns_base_clear_nameservers_and_suspend(fo->fo_dns) != 0 ||
	    evdns_base_nameserver_ip_add(fo->fo_dns, nameserver) != 0 ||
	    evdns_base_resume(fo->fo_dns) != 0)
		return -1;
	return 0;
}

/*
 * A new TLS connection to addr for the endpoint ep: the server certificate
 * must name ep's host, a DNS name (also sent as SNI) or an IP address (the
 * one connected to; RFC 6066 sends no SNI for it).
 */
static struct evhttp_connection *
fanout_tls_conn(struct fanout *fo, struct pconn *pc, const struct endpoint *ep,
    const char *addr)
{
	struct evhttp_connection	*conn;
	struct bufferevent		*bev;
	SSL				*ssl;
	int				 ok;

	if ((ssl = SSL_new(fo->fo_tls)) == NULL)
		return NULL;
	if (ep->ep_literal)
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), addr);
	else
		ok = SSL_set1_host(ssl, ep->ep_host) == 1 &&
		    SSL_set_tlsext_host_name(ssl, ep->ep_host) == 1;
	if (ok != 1) {
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
	if ((conn = evhttp_connection_base_bufferevent_new(fo->fo_base, NULL, bev, addr,
	    (unsigned short)ep->ep_port)) == NULL)
		bufferevent_free(bev);
	return conn;
}

/*
 * A connection to addr (an address literal, which libevent connects to
 * without a look-up) for one more request to ep: an idle one of the pool,
 * else a new one while the pool has room, else the least busy (libevent
 * queues requests on a busy connection).  The pool bounds the parallelism
 * per department address as well as reusing connections.
 */
static struct pconn *
fanout_conn(struct fanout *fo, const struct endpoint *ep, const char *addr)
{
	struct pconn	*pc, *best = NULL;
	struct pool	*pl;
	const char	*name = ep->ep_tls ? ep->ep_host : "";
	size_t		 i;

	TAILQ_FOREACH(pl, &fo->fo_pools, pl_entry)
		if (pl->pl_port == ep->ep_port && pl->pl_tls == ep->ep_tls &&
		    strcmp(pl->pl_addr, addr) == 0 && strcmp(pl->pl_name, name) == 0)
			break;
	if (pl == NULL) {
		if ((pl = calloc(1, sizeof(*pl))) == NULL ||
		    strlcpy_chk(pl->pl_addr, addr, sizeof(pl->pl_addr)) != 0 ||
		    strlcpy_chk(pl->pl_name, name, sizeof(pl->pl_name)) != 0) {
			free(pl);
			return NULL;
		}
		pl->pl_port = ep->ep_port;
		pl->pl_tls = ep->ep_tls;
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
	if (ep->ep_tls)
		pc->pc_conn = fanout_tls_conn(fo, pc, ep, addr);
	else
		pc->pc_conn = evhttp_connection_base_new(fo->fo_base, NULL, addr,
		    (unsigned short)ep->ep_port);
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
fanout_fetch_free(struct fetch *fe)
{
	if (fe->fe_timer != NULL)
		event_free(fe->fe_timer);
	if (fe->fe_done != NULL)
		event_free(fe->fe_done);
	if (fe->fe_req != NULL)
		evhttp_request_free(fe->fe_req);
	free(fe->fe_body);
	free(fe);
}

/* Frees fe once its outcome is delivered and nobody else holds it. */
static void
fanout_fetch_release(struct fetch *fe)
{
	if (fe->fe_delivered && !fe->fe_resolving && !fe->fe_sent)
		fanout_fetch_free(fe);
}

/* Counts the outcome of fe and its latency for its department. */
static void
fanout_metrics(const struct fetch *fe)
{
	const char	*v[2] = { fe->fe_dept, lb_err_code(fe->fe_result) };

	metrics_count(METRICS_DEPT_REQUESTS, 1, v);
	metrics_observe(METRICS_DEPT_LATENCY, (double)(now_us_mono() - fe->fe_t0_us) / 1e6, v);
}

/* The loop's turn: the caller learns the outcome. */
static void
fanout_fetch_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch	*fe = arg;

	(void)fd;
	(void)what;
	fe->fe_delivered = true;
	fanout_metrics(fe);
	fe->fe_cb(fe->fe_arg, fe->fe_result, fe->fe_body, fe->fe_len,
	    fe->fe_result == LB_OK ? NULL : fe->fe_msg);
	fanout_fetch_release(fe);
}

/*
 * Records the outcome of fe, the first one only, and hands it to the loop.
 * body, when not NULL, is malloc'ed and becomes the fetch's.  Safe inside
 * any libevent callback: nothing is freed here.
 */
static void
fanout_fetch_end(struct fetch *fe, enum lb_err e, uint8_t *body, size_t len,
    const char *msg)
{
	if (fe->fe_finished) {
		free(body);
		return;
	}
	fe->fe_finished = true;
	fe->fe_result = e;
	fe->fe_body = body;
	fe->fe_len = len;
	snprintf(fe->fe_msg, sizeof(fe->fe_msg), "%s", msg != NULL ? msg : "");
	evtimer_del(fe->fe_timer);
	event_active(fe->fe_done, EV_TIMEOUT, 1);
}

/* libevent is done with fe_req: the connection has one request less. */
static void
fanout_fetch_unsend(struct fetch *fe)
{
	struct pconn	*pc = fe->fe_pc;

	fe->fe_sent = false;
	if (--pc->pc_busy == 0 && pc->pc_dead)
		event_active(fe->fe_fo->fo_reap, EV_TIMEOUT, 1);
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

/*
 * The answer, or req NULL (or without a status) when the request failed.
 * May run inside evhttp_make_request or evhttp_cancel_request.
 */
static void
fanout_fetch_done_cb(struct evhttp_request *req, void *arg)
{
	struct fetch	*fe = arg;
	struct evbuffer	*in;
	uint8_t		*body;
	char		 msg[512], why[256];
	size_t		 len;
	int		 code;

	fanout_fetch_unsend(fe);
	if (req == NULL || (code = evhttp_request_get_response_code(req)) == 0) {
		/* Whatever went wrong, the connection is not trusted again. */
		fanout_fetch_tls_why(fe->fe_pc, why, sizeof(why));
		fanout_conn_kill(fe->fe_pc);
		if (fe->fe_errored && fe->fe_error == EVREQ_HTTP_DATA_TOO_LONG) {
			snprintf(msg, sizeof(msg), "department %s sent an answer larger than "
			    "%d bytes", fe->fe_dept, LB_DEPT_BODY_MAX);
			fanout_fetch_end(fe, LB_E_DEPARTMENT_BAD_RESPONSE, NULL, 0, msg);
		} else if (why[0] != '\0') {
			snprintf(msg, sizeof(msg), "department %s: TLS handshake failed: %s",
			    fe->fe_dept, why);
			fanout_fetch_end(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
		} else {
			snprintf(msg, sizeof(msg), "department %s could not be reached",
			    fe->fe_dept);
			fanout_fetch_end(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
		}
		return;
	}
	fe->fe_pc->pc_answered = true;
	if (code >= 500) {
		snprintf(msg, sizeof(msg), "department %s answered HTTP %d", fe->fe_dept, code);
		fanout_fetch_end(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
		return;
	}
	if (code == 404) {
		snprintf(msg, sizeof(msg), "department %s has no record for this subject",
		    fe->fe_dept);
		fanout_fetch_end(fe, LB_E_DEPARTMENT_BAD_RESPONSE, NULL, 0, msg);
		return;
	}
	if (code != 200) {
		snprintf(msg, sizeof(msg), "department %s answered HTTP %d", fe->fe_dept, code);
		fanout_fetch_end(fe, LB_E_DEPARTMENT_BAD_RESPONSE, NULL, 0, msg);
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	if ((body = malloc(len + 1)) == NULL) {
		fanout_fetch_end(fe, LB_E_INTERNAL, NULL, 0, "out of memory");
		return;
	}
	evbuffer_remove(in, body, len);
	body[len] = '\0';
	fanout_fetch_end(fe, LB_OK, body, len, NULL);
}

static void
fanout_fetch_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch	*fe = arg;
	char		 msg[128];

	(void)fd;
	(void)what;
	if (fe->fe_sent) {
		/*
		 * Cancelling means libevent will not call fanout_fetch_done_cb
		 * for it; it resets the connection when the request was on the
		 * wire.  The request stays the fetch's to free.
		 */
		evhttp_cancel_request(fe->fe_req);
		fanout_fetch_unsend(fe);
		fanout_conn_kill(fe->fe_pc);
	}
	snprintf(msg, sizeof(msg), "department %s did not answer in time", fe->fe_dept);
	fanout_fetch_end(fe, LB_E_DEPARTMENT_TIMEOUT, NULL, 0, msg);
	/* Its answer, EVUTIL_EAI_CANCEL, comes later and releases the fetch. */
	if (fe->fe_resolving && fe->fe_dns != NULL)
		evdns_getaddrinfo_cancel(fe->fe_dns);
}

/* Sends the request to addr, the address fe's host stands for. */
static void
fanout_fetch_send(struct fetch *fe, const struct netaddr *addr)
{
	struct evkeyvalq	*h;
	char			 text[ADDR_TEXT_MAX], msg[256];

	if (endpoint_addr_text(addr, text, sizeof(text)) != 0 ||
	    (fe->fe_pc = fanout_conn(fe->fe_fo, &fe->fe_ep, text)) == NULL ||
	    (fe->fe_req = evhttp_request_new(fanout_fetch_done_cb, fe)) == NULL) {
		snprintf(msg, sizeof(msg), "department %s: no connection to its endpoint could "
		    "be opened", fe->fe_dept);
		fanout_fetch_end(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
		return;
	}
	evhttp_request_own(fe->fe_req);
	evhttp_request_set_error_cb(fe->fe_req, fanout_fetch_error_cb);
	h = evhttp_request_get_output_headers(fe->fe_req);
	evhttp_add_header(h, "Host", fe->fe_ep.ep_authority);
	evhttp_add_header(h, "Accept", "*/*");
	evhttp_add_header(h, "User-Agent", "lianban/" PACKAGE_VERSION);
	fe->fe_pc->pc_busy++;
	fe->fe_sent = true;
	/*
	 * A connection that fails at once completes its requests, this one
	 * included, before the call returns; fanout_fetch_done_cb then has
	 * ended the fetch.  -1 means libevent did not take the request.
	 */
	if (evhttp_make_request(fe->fe_pc->pc_conn, fe->fe_req, EVHTTP_REQ_GET,
	    fe->fe_target) != 0 && fe->fe_sent) {
		fanout_fetch_unsend(fe);
		fanout_conn_kill(fe->fe_pc);
		snprintf(msg, sizeof(msg), "department %s: the request could not be sent",
		    fe->fe_dept);
		fanout_fetch_end(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
	}
}

/*
 * True when the endpoint list lets fe reach a; otherwise the fetch ends as
 * department_unavailable and the log names the address refused.  The
 * caller's message does not: the department's resolution is its own.
 */
static bool
fanout_fetch_allowed(struct fetch *fe, const struct netaddr *a)
{
	char	why[512], msg[256];

	if (fe->fe_eg == NULL ||
	    egress_check_addr(fe->fe_eg, fe->fe_dept, &fe->fe_ep, a, why, sizeof(why)) == 0)
		return true;
	log_warnx("adapter \"%s\" of %s: %s; request refused", fe->fe_adapter, fe->fe_dept,
	    why);
	snprintf(msg, sizeof(msg), "department %s: its endpoint is an address the gateway may "
	    "not reach (the operator's endpoint list)", fe->fe_dept);
	fanout_fetch_end(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
	return false;
}

/*
 * The resolver's answer for fe's host; may run inside evdns_getaddrinfo.
 * Every address is checked, not only the one connected to, so a name
 * that mixes allowed and forbidden addresses is refused whatever order
 * its answers come in.
 */
static void
fanout_fetch_resolved_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct fetch		*fe = arg;
	struct evutil_addrinfo	*ai;
	struct netaddr		 addr, a;
	char			 msg[384];
	bool			 found = false;

	fe->fe_resolving = false;
	fe->fe_dns = NULL;
	if (fe->fe_finished) {
		/* Timed out meanwhile. */
		fanout_fetch_release(fe);
		goto done;
	}
	if (result != 0) {
		snprintf(msg, sizeof(msg), "department %s: its endpoint's host %s cannot be "
		    "resolved: %s", fe->fe_dept, fe->fe_ep.ep_host, evutil_gai_strerror(result));
		fanout_fetch_end(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
		goto done;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_addr == NULL || endpoint_addr_from(ai->ai_addr, &a) != 0)
			continue;
		if (!fanout_fetch_allowed(fe, &a))
			goto done;
		if (!found)
			addr = a;
		found = true;
	}
	if (!found) {
		snprintf(msg, sizeof(msg), "department %s: its endpoint's host %s has no IP "
		    "address", fe->fe_dept, fe->fe_ep.ep_host);
		fanout_fetch_end(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
		goto done;
	}
	fanout_fetch_send(fe, &addr);
done:
	if (res != NULL)
		evutil_freeaddrinfo(res);
}

/* An IP literal is its own address; a name is asked of the resolver. */
static void
fanout_fetch_resolve(struct fetch *fe)
{
	struct evutil_addrinfo			 hints;
	struct evdns_getaddrinfo_request	*q;
	char					 msg[384];

	if (fe->fe_ep.ep_literal) {
		if (fanout_fetch_allowed(fe, &fe->fe_ep.ep_addr))
			fanout_fetch_send(fe, &fe->fe_ep.ep_addr);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	fe->fe_resolving = true;
	q = evdns_getaddrinfo(fe->fe_fo->fo_dns, fe->fe_ep.ep_host, NULL, &hints,
	    fanout_fetch_resolved_cb, fe);
	/* NULL: it has answered already, unless it could not ask at all. */
	if (fe->fe_resolving && q != NULL)
		fe->fe_dns = q;
	else if (fe->fe_resolving) {
		fe->fe_resolving = false;
		snprintf(msg, sizeof(msg), "department %s: its endpoint's host %s cannot be "
		    "resolved", fe->fe_dept, fe->fe_ep.ep_host);
		fanout_fetch_end(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
	}
}

int
fanout_fetch(struct fanout *fo, const struct egress *eg, const struct adapter *ad,
    const char *item, const char *subject, fanout_cb cb, void *arg)
{
	struct fetch	*fe = NULL;
	struct timeval	 tv;
	char		 url[LB_URL_MAX], msg[256];
	const char	*rest;
	int		 ret = -1;

	if ((fe = calloc(1, sizeof(*fe))) == NULL ||
	    adapter_url(ad, item, subject, url, sizeof(url)) != 0 ||
	    endpoint_parse(url, &fe->fe_ep, NULL, 0) != 0)
		goto done;
	rest = url + fe->fe_ep.ep_path;
	if (snprintf(fe->fe_target, sizeof(fe->fe_target), "%s%s", *rest == '/' ? "" : "/",
	    rest) >= (int)sizeof(fe->fe_target))
		goto done;
	fe->fe_fo = fo;
	fe->fe_eg = eg;
	fe->fe_cb = cb;
	fe->fe_arg = arg;
	fe->fe_t0_us = now_us_mono();
	snprintf(fe->fe_dept, sizeof(fe->fe_dept), "%s", ad->ad_dept);
	snprintf(fe->fe_adapter, sizeof(fe->fe_adapter), "%s", ad->ad_id);
	if ((fe->fe_timer = evtimer_new(fo->fo_base, fanout_fetch_timeout_cb, fe)) == NULL ||
	    (fe->fe_done = event_new(fo->fo_base, -1, 0, fanout_fetch_deliver_cb, fe)) == NULL)
		goto done;
	tv.tv_sec = ad->ad_timeout_ms / 1000;
	tv.tv_usec = (ad->ad_timeout_ms % 1000) * 1000;
	if (evtimer_add(fe->fe_timer, &tv) != 0)
		goto done;
	/* From here the fetch ends through fanout_fetch_end, and cb runs on the loop. */
	ret = 0;
	if (fe->fe_ep.ep_tls && fo->fo_tls == NULL) {
		/* The start-up log says which file is missing or wrong. */
		snprintf(msg, sizeof(msg), "department %s: https endpoints need "
		    "departments/ca.pem and gateway-client.pem/.key in the certificate "
		    "directory", fe->fe_dept);
		fanout_fetch_end(fe, LB_E_DEPARTMENT_UNAVAILABLE, NULL, 0, msg);
	} else
		fanout_fetch_resolve(fe);
	fe = NULL;
done:
	if (fe != NULL)
		fanout_fetch_free(fe);
	return ret;
}
