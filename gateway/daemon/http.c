/*
 * http.c - the HTTPS front: TLS with client certificates, the principal of
 * each request, routing, body decoding and JSON/msgpack answers (docs/contract.md §8).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "gateway.h"

#define HTTP_TIMEOUT_S		30

static const char *
http_method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:	return "GET";
	case EVHTTP_REQ_POST:	return "POST";
	case EVHTTP_REQ_PUT:	return "PUT";
	case EVHTTP_REQ_DELETE:	return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_PATCH:	return "PATCH";
	default:		return "?";
	}
}

static bool
http_wants_msgpack(struct evhttp_request *req)
{
	const char	*accept;

	accept = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
	return accept != NULL && strstr(accept, "application/msgpack") != NULL;
}

/*
 * An answer that could not be encoded (or memory ran out) is this JSON
 * error instead, never an empty or HTML one, and the log says which answer
 * it replaced.
 */
static void
http_reply_unencodable(struct evhttp_request *req, int status, const char *as)
{
	static const char	 body[] = "{\"error\":{\"code\":\"internal_error\","
	    "\"message\":\"the gateway could not encode its answer\"}}\n";
	struct evkeyvalq	*hdrs = evhttp_request_get_output_headers(req);
	struct evbuffer		*buf;

	log_warnx("%s %s: the answer (status %d) could not be encoded as %s; answered "
	    "500 internal_error", http_method_name(evhttp_request_get_command(req)),
	    evhttp_request_get_uri(req), status, as);
	evhttp_remove_header(hdrs, "Content-Type");
	evhttp_add_header(hdrs, "Content-Type", "application/json; charset=utf-8");
	evhttp_add_header(hdrs, "Cache-Control", "no-store");
	if ((buf = evbuffer_new()) != NULL)
		evbuffer_add(buf, body, sizeof(body) - 1);
	evhttp_send_reply(req, 500, "Internal Server Error", buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

/*
 * An answer up to one TLS record's worth of plaintext is sent with one
 * SSL_write: bufferevent_openssl writes each piece of its output buffer
 * separately (a record and a write(2) each), and evhttp puts the head and
 * the body in pieces of their own.  Joining them costs a copy of a few
 * kilobytes, less than a record and a system call; larger answers are left
 * as they are, and so is a buffer a slow client has let grow.
 */
#define HTTP_JOIN_MAX	16384

/* Frees an answer's text once libevent has sent it. */
static void
http_reply_free(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)(uintptr_t)data);
}

/*
 * The answer is encoded straight from its objects into one malloc'ed text
 * (JSON by the streaming encoder, no tree; msgpack by mpk_pack) that the
 * body buffer takes by reference: no copy, and one piece to write.
 */
void
http_reply(struct evhttp_request *req, int status, const msgpack_object *body)
{
	struct evkeyvalq	*hdrs = evhttp_request_get_output_headers(req);
	struct evbuffer		*buf;
	struct mpk_jbuf		 jb = { 0 };
	msgpack_sbuffer		 sb;
	const char		*as, *ctype;
	char			*data;
	size_t			 len;
	struct evhttp_connection *conn;
	struct bufferevent	*bev = NULL;
	struct evbuffer		*out;
	bool			 sent = false;

	msgpack_sbuffer_init(&sb);
	if (http_wants_msgpack(req)) {
		as = "msgpack";
		ctype = "application/msgpack";
		if (mpk_pack(body, &sb, false) != 0)
			goto done;
		len = sb.size;
		data = msgpack_sbuffer_release(&sb);
	} else {
		as = "JSON";
		ctype = "application/json; charset=utf-8";
		if (mpk_json_append(body, &jb) != 0 || mpk_jbuf_put(&jb, "\n", 1) != 0)
			goto done;
		len = jb.jb_len;
		data = jb.jb_data;
		jb.jb_data = NULL;
	}
	as = "anything (out of memory)";
	if ((buf = evbuffer_new()) == NULL) {
		free(data);
		goto done;
	}
	if (evbuffer_add_reference(buf, data, len, http_reply_free, NULL) != 0) {
		free(data);
		evbuffer_free(buf);
		goto done;
	}
	evhttp_add_header(hdrs, "Content-Type", ctype);
	evhttp_add_header(hdrs, "Cache-Control", "no-store");
	/* Held, so that it outlives a connection that fails inside the call. */
	if ((conn = evhttp_request_get_connection(req)) != NULL &&
	    (bev = evhttp_connection_get_bufferevent(conn)) != NULL)
		bufferevent_incref(bev);
	evhttp_send_reply(req, status, NULL, buf);
	evbuffer_free(buf);
	if (bev != NULL) {
		if (evbuffer_get_length(out = bufferevent_get_output(bev)) <= HTTP_JOIN_MAX)
			evbuffer_pullup(out, -1);
		bufferevent_decref(bev);
	}
	sent = true;
done:
	msgpack_sbuffer_destroy(&sb);
	free(jb.jb_data);
	if (!sent)
		http_reply_unencodable(req, status, as);
}

void
http_error(struct evhttp_request *req, enum lb_err e, const char *fmt, ...)
{
	msgpack_zone	z;
	struct mpk_map	top, err;
	char		msg[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	msgpack_zone_init(&z, 1024);
	mpk_map_init(&err, &z, 2);
	mpk_map_put(&err, "code", mpk_str(lb_err_code(e)));
	mpk_map_put(&err, "message", mpk_str(msg));
	mpk_map_init(&top, &z, 1);
	mpk_map_put(&top, "error", err.mm_obj);
	http_reply(req, lb_err_status(e), &top.mm_obj);
	msgpack_zone_destroy(&z);
}

/*
 * What a TLS connection remembers across its requests, in its SSL's
 * ex_data (gw_ssl_conn); freed with the SSL.
 */
struct http_conn {
	/*
	 * gw_snap_gen + 1 of the configuration under which the peer's
	 * certificate last verified; 0 until it has.  Another value means a
	 * reload came in between (a new CA or CRL), and it is verified again.
	 */
	uint64_t		 hc_trusted_gen;
	bool			 hc_refusal_logged;	/* one log line per connection */
	struct http_guard	*hc_guard;	/* the connection's request framing */
	struct gw		*hc_gw;		/* the loop that accepted it, for its count */
};

/*
 * CRYPTO_EX_free of gw_ssl_conn: runs when the SSL bufferevent frees its
 * SSL, before its input buffer goes, so the guard can leave that buffer.
 */
static void
http_conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct http_conn	*hc = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (hc == NULL)
		return;
	http_guard_free(hc->hc_guard);
	if (hc->hc_gw != NULL)
		atomic_fetch_sub(&hc->hc_gw->gw_conns, 1);
	free(hc);
}

static SSL *
http_ssl(struct evhttp_request *req)
{
	struct evhttp_connection	*conn;
	struct bufferevent		*bev;

	if ((conn = evhttp_request_get_connection(req)) == NULL ||
	    (bev = evhttp_connection_get_bufferevent(conn)) == NULL)
		return NULL;
	return bufferevent_openssl_get_ssl(bev);
}

/* How often nid is in cert's subject. */
static int
http_name_count(X509 *cert, int nid)
{
	X509_NAME	*name = X509_get_subject_name(cert);
	int		 n = 0, i = -1;

	while ((i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0)
		n++;
	return n;
}

/* A refused certificate, once per connection: who, and why. */
static void
http_refusal_log(struct evhttp_request *req, struct http_conn *hc, X509 *peer,
    const char *why)
{
	struct evhttp_connection	*conn = evhttp_request_get_connection(req);
	BIO				*bio = NULL;
	char				*addr = NULL, subject[256] = "", client[80];
	char				 msg[1024];
	ev_uint16_t			 port = 0;
	int				 n;

	if (hc != NULL) {
		if (hc->hc_refusal_logged)
			return;
		hc->hc_refusal_logged = true;
	}
	if (conn != NULL)
		evhttp_connection_get_peer(conn, &addr, &port);
	/* RFC 2253 escapes what the subject could hide in a log line. */
	if (peer != NULL && (bio = BIO_new(BIO_s_mem())) != NULL &&
	    X509_NAME_print_ex(bio, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_read(bio, subject, sizeof(subject) - 1)) > 0)
		subject[n] = '\0';
	BIO_free(bio);
	snprintf(client, sizeof(client), "%s:%u", addr != NULL ? addr : "?", (unsigned)port);
	snprintf(msg, sizeof(msg), "client %s refused (401 unauthenticated): %s%s%s%s", client,
	    why, peer != NULL ? " (certificate \"" : "", subject, peer != NULL ? "\")" : "");
	log_event(LB_LOG_WARN, "tls_refused", "msg", msg, "client", client, "reason", why,
	    "certificate", subject, NULL);
}

/*
 * The principal is the client certificate: OU is the role, CN the id, each
 * exactly once.  The handshake only collects the certificate; here it is
 * verified against the client CAs and CRLs of the running configuration,
 * once per connection and again after a reload, so that a revocation
 * reaches connections kept alive and resumed TLS sessions (whose handshake
 * verified nothing) alike.  An unknown certificate gets a readable 401
 * instead of a bare TLS alert; why it was refused is logged.
 */
static int
http_principal(struct gw *gw, struct evhttp_request *req, struct principal *pr)
{
	struct http_conn	*hc = NULL;
	struct snapshot		*sn;
	SSL			*ssl;
	X509			*peer = NULL;
	char			 why[256];
	const char		*reason = "no_tls";	/* why, as a bounded metrics label */
	uint64_t		 gen;
	int			 ret = -1, rc;

	memset(pr, 0, sizeof(*pr));
	snprintf(why, sizeof(why), "no TLS connection");
	if ((ssl = http_ssl(req)) == NULL ||
	    (hc = SSL_get_ex_data(ssl, gw->gw_ssl_conn)) == NULL)
		goto done;
	reason = "no_certificate";
	if ((peer = SSL_get0_peer_certificate(ssl)) == NULL) {
		snprintf(why, sizeof(why), "no client certificate");
		goto done;
	}
	reason = "untrusted_certificate";
	/* A load of the generation; the snapshot is taken only when it changed. */
	if (hc->hc_trusted_gen != gw_main_of(gw)->gw_snap_gen + 1) {
		sn = snapshot_current(gw, &gen);
		rc = trust_client_check(sn->sn_trust, peer, SSL_get_peer_cert_chain(ssl), why,
		    sizeof(why));
		snapshot_unref(sn);
		if (rc != 0)
			goto done;
		hc->hc_trusted_gen = gen + 1;
	}
	reason = "bad_role";
	if (cert_subject_field(peer, NID_organizationalUnitName, pr->pr_role,
	    sizeof(pr->pr_role)) != 0) {
		snprintf(why, sizeof(why), "the certificate names %s OU",
		    http_name_count(peer, NID_organizationalUnitName) > 1 ? "more than one" :
		    "no usable");
		goto done;
	}
	reason = "bad_id";
	if (cert_subject_field(peer, NID_commonName, pr->pr_id, sizeof(pr->pr_id)) != 0) {
		snprintf(why, sizeof(why), "the certificate names %s CN",
		    http_name_count(peer, NID_commonName) > 1 ? "more than one" : "no usable");
		goto done;
	}
	/* "gateway": a node of the cluster, which only the routes naming it admit. */
	if (strcmp(pr->pr_role, "department") != 0 && strcmp(pr->pr_role, "consumer") != 0 &&
	    strcmp(pr->pr_role, "auditor") != 0 && strcmp(pr->pr_role, "admin") != 0 &&
	    strcmp(pr->pr_role, "gateway") != 0) {
		reason = "bad_role";
		snprintf(why, sizeof(why), "OU is not a role of the gateway");
		goto done;
	}
	ret = 0;
done:
	if (ret != 0) {
		metrics_count(METRICS_TLS_FAILURES, 1, &reason);
		http_refusal_log(req, hc, peer, why);
	}
	return ret;
}

/* Decodes a JSON or msgpack request body into z. */
int
http_body(struct evhttp_request *req, msgpack_zone *z, msgpack_object *out, char *err,
    size_t errlen)
{
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);
	const char	*ct;
	size_t		 len = evbuffer_get_length(in);
	unsigned char	*p;

	ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	if (len == 0) {
		snprintf(err, errlen, "the request needs a body");
		return -1;
	}
	if ((p = evbuffer_pullup(in, -1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (ct != NULL && strncasecmp(ct, "application/msgpack", 19) == 0) {
		if (mpk_unpack(p, len, z, out) != 0) {
			snprintf(err, errlen, "the body is not one well-formed msgpack value "
			    "whose text is UTF-8");
			return -1;
		}
		return 0;
	}
	if (ct != NULL && strncasecmp(ct, "application/json", 16) != 0) {
		snprintf(err, errlen, "Content-Type must be application/json or "
		    "application/msgpack");
		return -1;
	}
	return mpk_from_json((const char *)p, len, z, out, err, errlen);
}

static void
http_health(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	msgpack_zone		 z;
	struct mpk_map		 m;
	struct journal_state	 js;
	const char		*why = ready_reason(gw);

	(void)pr;
	(void)path;
	journal_state(gw->gw_journal, &js);
	msgpack_zone_init(&z, 256);
	/* Liveness stays 200; the body says what readiness would (http_ready.c). */
	mpk_map_init(&m, &z, 7);
	mpk_map_put(&m, "status", mpk_str(gw->gw_stopping ? "stopping" : "ok"));
	mpk_map_put(&m, "journal_size", mpk_uint(journal_size(gw->gw_journal)));
	mpk_map_put(&m, "ready", mpk_bool(why == NULL));
	if (why != NULL)
		mpk_map_put(&m, "reason", mpk_str(why));
	mpk_map_put(&m, "journal_failing", mpk_bool(js.js_failing));
	mpk_map_put(&m, "journal_map_used", mpk_uint(js.js_map_used));
	mpk_map_put(&m, "journal_map_limit", mpk_uint(js.js_map_limit));
	http_reply(req, 200, &m.mm_obj);
	msgpack_zone_destroy(&z);
}

/*
 * The routes.  A request's path picks the first row that matches it; the
 * rows of that same path then say which methods it takes, and the row of
 * the request's method who may call it and what answers.  Order matters
 * only where paths overlap ("/v1/adapters/" is a list before it is an id).
 */
enum http_match {
	HM_EXACT,	/* the path itself */
	HM_UNDER,	/* any path that starts with it; the handler gets the path */
	HM_ID		/* it, then an id (the handler's argument): no id is a 400 */
};

typedef void	(*http_handler)(struct gw *, struct evhttp_request *, const struct principal *,
		    const char *arg);
/* Requests with a body: the handler gets it decoded (z is freed after the call). */
typedef void	(*http_body_handler)(struct gw *, struct evhttp_request *,
		    const struct principal *, msgpack_zone *z, const msgpack_object *body);

struct http_route {
	const char		*rt_path;
	enum http_match		 rt_match;
	enum evhttp_cmd_type	 rt_method;
	bool			 rt_public;	/* answered without a client certificate */
	const char		*rt_roles[2];	/* who may call it; none: anyone authenticated */
	const char		*rt_what;	/* HM_ID: what the id names, for the 400 */
	http_handler		 rt_fn;
	http_body_handler	 rt_body_fn;	/* instead of rt_fn */
};

static const struct http_route http_routes[] = {
	{ "/v1/health", HM_EXACT, EVHTTP_REQ_GET, true, { NULL }, NULL,
	    http_health, NULL },
	{ "/v1/ready", HM_EXACT, EVHTTP_REQ_GET, true, { NULL }, NULL,
	    http_ready, NULL },
	{ "/v1/exchanges", HM_EXACT, EVHTTP_REQ_POST, false, { "consumer" }, NULL,
	    NULL, exchange_start },
	{ "/v1/verifications", HM_EXACT, EVHTTP_REQ_POST, false, { "consumer" }, NULL,
	    NULL, verification_start },
	/* Any role: revocation_start checks it, since authorities sign through any client. */
	{ "/v1/revocations", HM_EXACT, EVHTTP_REQ_POST, false, { NULL }, NULL,
	    NULL, revocation_start },
	/* The console's rows (http_console.c, http_ops.c); ahead of "/v1/journal/". */
	{ "/v1/journal/certificate", HM_EXACT, EVHTTP_REQ_GET, false, { "auditor" }, NULL,
	    http_console_certificate, NULL },
	{ "/v1/ops/summary", HM_EXACT, EVHTTP_REQ_GET, false, { "admin" }, NULL,
	    http_ops_summary, NULL },
	{ "/console", HM_EXACT, EVHTTP_REQ_GET, false, { NULL }, NULL,
	    http_console_redirect, NULL },
	{ "/console/", HM_UNDER, EVHTTP_REQ_GET, false, { NULL }, NULL,
	    http_console, NULL },
	/* A cluster's nodes read each other's journals as role "gateway" (witness.c). */
	{ "/v1/journal/witness", HM_EXACT, EVHTTP_REQ_GET, false, { "auditor", "gateway" }, NULL,
	    http_witness, NULL },
	{ "/v1/journal/cosignatures", HM_EXACT, EVHTTP_REQ_GET, false, { "auditor", "gateway" },
	    NULL, http_cosignatures, NULL },
	{ "/v1/journal/checkpoints", HM_EXACT, EVHTTP_REQ_GET, false, { "auditor", "gateway" },
	    NULL, cluster_checkpoints, NULL },
	{ "/v1/journal/", HM_UNDER, EVHTTP_REQ_GET, false, { "auditor", "gateway" }, NULL,
	    http_journal, NULL },
	{ "/v1/subjects/", HM_UNDER, EVHTTP_REQ_GET, false, { "consumer" }, NULL,
	    http_subject, NULL },
	{ "/v1/adapters", HM_EXACT, EVHTTP_REQ_GET, false, { "department", "admin" }, NULL,
	    http_admin_adapters, NULL },
	{ "/v1/adapters/", HM_EXACT, EVHTTP_REQ_GET, false, { "department", "admin" }, NULL,
	    http_admin_adapters, NULL },
	{ "/v1/adapters/", HM_ID, EVHTTP_REQ_GET, false, { "department", "admin" },
	    "an adapter id", http_admin_adapter_get, NULL },
	{ "/v1/adapters/", HM_ID, EVHTTP_REQ_PUT, false, { "department" },
	    "an adapter id", http_admin_adapter_put, NULL },
	{ "/v1/adapters/", HM_ID, EVHTTP_REQ_DELETE, false, { "department" },
	    "an adapter id", http_admin_adapter_disable, NULL },
	{ "/v1/policies", HM_EXACT, EVHTTP_REQ_GET, false, { NULL }, NULL,
	    http_admin_policies, NULL },
	{ "/v1/policies/", HM_EXACT, EVHTTP_REQ_GET, false, { NULL }, NULL,
	    http_admin_policies, NULL },
	{ "/v1/policies/", HM_ID, EVHTTP_REQ_GET, false, { NULL },
	    "a bundle id", http_admin_policy_get, NULL },
	{ "/v1/policies/", HM_ID, EVHTTP_REQ_PUT, false, { "admin" },
	    "a bundle id", http_admin_policy_put, NULL },
};
#define HTTP_NROUTES	(sizeof(http_routes) / sizeof(http_routes[0]))

static bool
http_route_matches(const struct http_route *rt, const char *path)
{
	size_t	n = strlen(rt->rt_path);

	if (rt->rt_match == HM_EXACT)
		return strcmp(path, rt->rt_path) == 0;
	return strncmp(path, rt->rt_path, n) == 0;
}

/* Letters, digits, '-', '_' and '.', 1 to LB_ID_MAX - 1 of them. */
static bool
http_id_ok(const char *s)
{
	return peer_id_ok(s, strlen(s));
}

/*
 * The row of rt's path for method, or NULL; then buf lists the methods
 * that path takes ("GET, PUT or DELETE").
 */
static const struct http_route *
http_route_method(const struct http_route *rt, enum evhttp_cmd_type method, char *buf,
    size_t bufsz)
{
	const struct http_route	*o, *end = http_routes + HTTP_NROUTES;
	size_t			 n = 0, k = 0;

	for (o = rt; o < end; o++)
		if (o->rt_match == rt->rt_match && strcmp(o->rt_path, rt->rt_path) == 0) {
			if (o->rt_method == method)
				return o;
			n++;
		}
	buf[0] = '\0';
	for (o = rt; o < end; o++)
		if (o->rt_match == rt->rt_match && strcmp(o->rt_path, rt->rt_path) == 0) {
			k++;
			snprintf(buf + strlen(buf), bufsz - strlen(buf), "%s%s",
			    k == 1 ? "" : k == n ? " or " : ", ", http_method_name(o->rt_method));
		}
	return NULL;
}

/* True when pr has one of rt's roles; answers 403 otherwise. */
static bool
http_role(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const struct http_route *rt)
{
	const char	*a = rt->rt_roles[0], *b = rt->rt_roles[1];

	/* A cluster node's certificate opens only the routes that name its role. */
	if (a == NULL && strcmp(pr->pr_role, "gateway") == 0) {
		http_error(req, LB_E_FORBIDDEN_ROLE, "the gateway role reads journals and "
		    "witnesses only; your certificate is gateway %s", pr->pr_id);
		return false;
	}
	/* And only the nodes this one names as its peers (peer.c). */
	if (strcmp(pr->pr_role, "gateway") == 0 && !peer_listed(gw, pr->pr_id)) {
		http_error(req, LB_E_FORBIDDEN_ROLE, "gateway %s is not a peer of this node "
		    "(--peers)", pr->pr_id);
		return false;
	}
	if (a == NULL || strcmp(pr->pr_role, a) == 0 || (b != NULL && strcmp(pr->pr_role, b) == 0))
		return true;
	http_error(req, LB_E_FORBIDDEN_ROLE, "this call is for the %s%s%s role; your "
	    "certificate is %s %s", a, b != NULL ? " or " : "", b != NULL ? b : "",
	    pr->pr_role, pr->pr_id);
	return false;
}

static void
http_run(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const struct http_route *rt, const char *arg)
{
	msgpack_zone	z;
	msgpack_object	body;
	char		err[256];

	if (rt->rt_fn != NULL) {
		rt->rt_fn(gw, req, pr, arg);
		return;
	}
	msgpack_zone_init(&z, 8192);
	if (http_body(req, &z, &body, err, sizeof(err)) != 0)
		http_error(req, LB_E_BAD_REQUEST, "%s", err);
	else
		rt->rt_body_fn(gw, req, pr, &z, &body);
	msgpack_zone_destroy(&z);
}

/*
 * Answers leave in more than one write (TLS records, headers and body);
 * without TCP_NODELAY the last one can wait for the client's delayed ACK.
 */
static void
http_nodelay(struct evhttp_request *req)
{
	struct evhttp_connection	*conn;
	evutil_socket_t			 fd;
	int				 on = 1;

	if ((conn = evhttp_request_get_connection(req)) != NULL &&
	    (fd = bufferevent_getfd(evhttp_connection_get_bufferevent(conn))) >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

/*
 * Whether the request came through its connection's guard whole; when the
 * guard refused it (its size, its framing, its method) the refusal is
 * answered here and the connection closes after it.
 */
static bool
http_guarded(struct gw *gw, struct evhttp_request *req)
{
	struct http_conn		*hc = NULL;
	struct evhttp_connection	*conn;
	SSL				*ssl;
	enum lb_err			 e;
	char				 msg[160], *addr = NULL, client[80], line[320];
	ev_uint16_t			 port = 0;

	if ((ssl = http_ssl(req)) != NULL)
		hc = SSL_get_ex_data(ssl, gw->gw_ssl_conn);
	if (hc == NULL || hc->hc_guard == NULL) {
		e = LB_E_INTERNAL;
		snprintf(msg, sizeof(msg), "the gateway could not set this connection up");
	} else if ((e = http_guard_verdict(hc->hc_guard, msg, sizeof(msg))) == LB_OK)
		return true;
	if ((conn = evhttp_request_get_connection(req)) != NULL)
		evhttp_connection_get_peer(conn, &addr, &port);
	snprintf(client, sizeof(client), "%s:%u", addr != NULL ? addr : "?", (unsigned)port);
	snprintf(line, sizeof(line), "client %s: request refused (%d %s): %s", client,
	    lb_err_status(e), lb_err_code(e), msg);
	log_event(LB_LOG_INFO, "request_refused", "msg", line, "client", client, "code",
	    lb_err_code(e), "reason", msg, NULL);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	http_error(req, e, "%s", msg);
	return false;
}

/*
 * Every request: the route, then (but for public routes) the client
 * certificate and its rate limit, the id of the path, the method and the
 * role, in that order.
 */
static void
http_route(struct evhttp_request *req, void *arg)
{
	struct gw		 *gw = arg;
	struct principal	  pr;
	const struct http_route	 *rt = NULL, *mrt;
	const char		 *path, *rest;
	char			  methods[64];
	size_t			  i;

	atomic_fetch_add(&gw->gw_requests, 1);
	http_nodelay(req);
	if (!http_guarded(gw, req))
		return;
	path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (path == NULL)
		path = "/";
	for (i = 0; i < HTTP_NROUTES && rt == NULL; i++)
		if (http_route_matches(&http_routes[i], path))
			rt = &http_routes[i];
	if (rt == NULL || !rt->rt_public) {
		if (http_principal(gw, req, &pr) != 0) {
			http_error(req, LB_E_UNAUTHENTICATED, "a client certificate issued by "
			    "the platform CA, with OU department, consumer, auditor or admin, is "
			    "required");
			return;
		}
		if (gw->gw_stopping) {
			http_error(req, LB_E_INTERNAL, "the gateway is shutting down");
			return;
		}
		/* Before any handler, so before anything is journaled. */
		if (!throttle_admit(gw, req, &pr))
			return;
	}
	if (rt == NULL) {
		http_error(req, LB_E_NOT_FOUND, "no such API route: %s", path);
		return;
	}
	rest = path;
	if (rt->rt_match == HM_ID) {
		rest = path + strlen(rt->rt_path);
		if (!http_id_ok(rest)) {
			http_error(req, LB_E_BAD_REQUEST, "%s is 1 to %d letters, digits, '-', "
			    "'_' or '.'", rt->rt_what, LB_ID_MAX - 1);
			return;
		}
	}
	if ((mrt = http_route_method(rt, evhttp_request_get_command(req), methods,
	    sizeof(methods))) == NULL) {
		http_error(req, LB_E_METHOD_NOT_ALLOWED, "use %s %s", methods, path);
		return;
	}
	if (rt->rt_public)
		http_run(gw, req, NULL, mrt, rest);
	else if (http_role(gw, req, &pr, mrt))
		http_run(gw, req, &pr, mrt, rest);
}

bool
http_query_u64(const struct evkeyvalq *q, const char *name, uint64_t *v, bool *present)
{
	const char	*s = evhttp_find_header(q, name);
	char		*end;

	*present = s != NULL;
	if (s == NULL)
		return true;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/*
 * The client CA names the handshake asks for are those of the running
 * configuration; a reload may have changed them.  They are set on each
 * connection's SSL rather than on gw_ssl, which every loop's handshakes
 * read at the same time and which must therefore not change.
 */
static void
http_ca_names(struct gw *gw, SSL *ssl)
{
	struct snapshot		*sn = snapshot_current(gw, NULL);
	STACK_OF(X509_NAME)	*names;

	if ((names = SSL_dup_CA_list(sn->sn_trust->t_client_names)) != NULL)
		SSL_set_client_CA_list(ssl, names);
	snapshot_unref(sn);
}

/*
 * A new connection's TLS bufferevent, with its struct http_conn and guard.
 * When the guard cannot be made the connection still gets TLS (a NULL here
 * would make evhttp speak plaintext), and http_route refuses its requests.
 */
static struct bufferevent *
http_bevcb(struct event_base *base, void *arg)
{
	struct gw		*gw = arg;
	struct bufferevent	*bev = NULL;
	struct http_conn	*hc = NULL, *conn;
	SSL			*ssl = NULL;

	if ((hc = calloc(1, sizeof(*hc))) == NULL || (ssl = SSL_new(gw->gw_ssl)) == NULL ||
	    SSL_set_ex_data(ssl, gw->gw_ssl_conn, hc) != 1)
		goto done;
	http_ca_names(gw, ssl);
	conn = hc;
	hc = NULL;
	conn->hc_gw = gw;
	atomic_fetch_add(&gw->gw_accepted, 1);
	atomic_fetch_add(&gw->gw_conns, 1);
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev != NULL) {
		ssl = NULL;
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		conn->hc_guard = http_guard_new(bev);
	}
done:
	free(hc);
	SSL_free(ssl);
	return bev;
}

/*
 * The handshake collects the client's certificate (and its proof of the
 * key) and verifies nothing: http_principal does, against the trust of the
 * configuration running when a request comes.  The error recorded says so
 * to anyone who would ask SSL_get_verify_result.
 */
static int
http_cert_collect(X509_STORE_CTX *xc, void *arg)
{
	(void)arg;
	X509_STORE_CTX_set_error(xc, X509_V_ERR_APPLICATION_VERIFICATION);
	return 1;
}

static SSL_CTX *
http_tls(const struct gw_config *gc, char *err, size_t errlen)
{
	static const unsigned char	 sid_ctx[] = "lianban";
	SSL_CTX				*ctx;
	EVP_PKEY			*key = NULL;
	char				 path[PATH_MAX];

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	snprintf(path, sizeof(path), "%s/server.pem", gc->gc_certs);
	if (SSL_CTX_use_certificate_chain_file(ctx, path) != 1) {
		snprintf(err, errlen, "%s: cannot use as the server certificate", path);
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/server.key", gc->gc_certs);
	if (key_load(path, &key, err, errlen) != 0)
		goto fail;
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "%s: does not match server.pem", path);
		goto fail;
	}
	EVP_PKEY_free(key);
	key = NULL;
	/*
	 * Client certificates are asked for but checked by http_principal,
	 * against the client CA and CRL of the running configuration (config.c
	 * loads them with the rest of the trust); the CA names sent come from
	 * there too (http_ca_names).  Sessions may be resumed: a resumed
	 * session's certificate is checked like a new one, so resumption never
	 * outlives a revocation.
	 */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, http_cert_collect, NULL);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	return ctx;
fail:
	if (err[0] == '\0')
		snprintf(err, errlen, "TLS setup failed: %s",
		    ERR_reason_error_string(ERR_get_error()));
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return NULL;
}

int
http_bound_name(struct evhttp_bound_socket *bs, char *buf, size_t len)
{
	struct sockaddr_storage	ss;
	socklen_t		sslen = sizeof(ss);
	char			addr[INET6_ADDRSTRLEN];

	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sslen) != 0)
		return -1;
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
		snprintf(buf, len, "[%s]:%d", addr, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
		snprintf(buf, len, "%s:%d", addr, ntohs(((struct sockaddr_in *)&ss)->sin_port));
	}
	return 0;
}

/* gc_listen's host (brackets removed) and port; -1 with a sentence in err. */
static int
http_listen_addr(const struct gw_config *gc, char *host, size_t hostlen, long *port,
    char *err, size_t errlen)
{
	char	*colon;
	size_t	 n;

	if (strlcpy_chk(host, gc->gc_listen, hostlen) != 0 ||
	    (colon = strrchr(host, ':')) == NULL) {
		snprintf(err, errlen, "--listen wants HOST:PORT, not \"%s\"", gc->gc_listen);
		return -1;
	}
	*colon = '\0';
	*port = strtol(colon + 1, NULL, 10);
	if (*port < 0 || *port > 65535) {
		snprintf(err, errlen, "--listen port out of range");
		return -1;
	}
	if (host[0] == '[' && (n = strlen(host)) > 1 && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	return 0;
}

int
http_start(struct gw *gw, char *err, size_t errlen)
{
	char	host[128];
	long	port;

	err[0] = '\0';
	if (http_listen_addr(&gw->gw_conf, host, sizeof(host), &port, err, errlen) != 0)
		return -1;
	if ((gw->gw_ssl = http_tls(&gw->gw_conf, err, errlen)) == NULL)
		return -1;
	if ((gw->gw_ssl_conn = SSL_get_ex_new_index(0, NULL, NULL, NULL, http_conn_free)) < 0)
		return -1;
	return 0;
}

/*
 * A fixed port someone else listens on must fail the start, but sockets
 * with SO_REUSEPORT of the same user would share it silently: a bind
 * without that option tells first.
 */
static int
http_port_free(const struct sockaddr *sa, socklen_t salen)
{
	evutil_socket_t	fd;
	int		one = 1, ret = -1;

	if ((fd = socket(sa->sa_family, SOCK_STREAM, 0)) < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
	    bind(fd, sa, salen) == 0)
		ret = 0;
	evutil_closesocket(fd);
	return ret;
}

/* A listening socket of host:port with SO_REUSEPORT, on gw_base; NULL on failure. */
static struct evconnlistener *
http_listener(struct gw *gw, const char *host, long port)
{
	struct evutil_addrinfo	 hints, *ai = NULL;
	struct evconnlistener	*lev = NULL;
	char			 portstr[8];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_PASSIVE;
	snprintf(portstr, sizeof(portstr), "%ld", port);
	if (evutil_getaddrinfo(host[0] != '\0' ? host : NULL, portstr, &hints, &ai) != 0 ||
	    ai == NULL)
		goto done;
	if (gw->gw_index == 0 && port != 0 && http_port_free(ai->ai_addr,
	    (socklen_t)ai->ai_addrlen) != 0)
		goto done;
	lev = evconnlistener_new_bind(gw->gw_base, NULL, NULL, LEV_OPT_REUSEABLE |
	    LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128,
	    ai->ai_addr, (int)ai->ai_addrlen);
done:
	if (ai != NULL)
		evutil_freeaddrinfo(ai);
	return lev;
}

int
http_front(struct gw *gw, int port, char *err, size_t errlen)
{
	struct evconnlistener	*lev;
	char			 host[128];
	long			 cport;

	err[0] = '\0';
	if (http_listen_addr(&gw->gw_conf, host, sizeof(host), &cport, err, errlen) != 0)
		return -1;
	if (port >= 0)
		cport = port;
	if ((gw->gw_http = evhttp_new(gw->gw_base)) == NULL)
		return -1;
	evhttp_set_bevcb(gw->gw_http, http_bevcb, gw);
	evhttp_set_gencb(gw->gw_http, http_route, gw);
	/*
	 * The guard (http_guard.c) bounds heads and bodies and checks methods
	 * before evhttp sees a request, and answers in JSON; evhttp's own
	 * limits, a little wider, only back it up.
	 */
	evhttp_set_max_body_size(gw->gw_http, LB_BODY_MAX);
	evhttp_set_max_headers_size(gw->gw_http, 2 * HTTP_GUARD_HEAD_MAX);
	evhttp_set_timeout(gw->gw_http, HTTP_TIMEOUT_S);
	evhttp_set_allowed_methods(gw->gw_http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	if ((lev = http_listener(gw, host, cport)) == NULL ||
	    (gw->gw_listener = evhttp_bind_listener(gw->gw_http, lev)) == NULL) {
		if (lev != NULL)
			evconnlistener_free(lev);
		snprintf(err, errlen, "cannot listen on %s", gw->gw_conf.gc_listen);
		return -1;
	}
	return http_bound_name(gw->gw_listener, gw->gw_bound, sizeof(gw->gw_bound));
}

void
http_stop(struct gw *gw)
{
	if (gw->gw_http != NULL)
		evhttp_free(gw->gw_http);
	gw->gw_http = NULL;
	/* The loops' copies share the main thread's context. */
	if (gw->gw_main == NULL) {
		SSL_CTX_free(gw->gw_ssl);
		gw->gw_ssl = NULL;
	}
}
