/*
 * peer.c - the other nodes of a cluster (docs/cluster.md): the --peers
 * list and an HTTPS client that asks a peer's API as this node.
 *
 * A node presents its own client certificate, CERTS/clients/gateway-NODE
 * (OU gateway, CN NODE), and checks the peer's server certificate against
 * the platform CA (CERTS/client-ca.pem, which issues server.pem) and the
 * peer's address.  Peers are named by IP address, so that asking one never
 * waits for a name server on the loop.
 *
 * Each request has a connection of its own, made on the event base the
 * caller runs on and freed once the request is done: nothing of the client
 * is shared between threads but its TLS context, which OpenSSL lets every
 * thread use.  So the witness timer and the request handlers of any event
 * loop may ask peers at the same time.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "gateway.h"

#define PEER_TIMEOUT_S		5
#define PEER_BODY_MAX		(16 * 1024 * 1024)

struct peer_client {
	SSL_CTX		*pcl_tls;
};

/* One request to a peer, from peer_get to its callback. */
struct peer_req {
	peer_cb		 prq_cb;
	void		*prq_arg;
	char		 prq_node[LB_ID_MAX];
	struct event_base *prq_base;
	struct evhttp_connection *prq_conn;
	enum evhttp_request_error prq_err;
	bool		 prq_failed;
};

/* Letters, digits, '-', '_' and '.', 1 to LB_ID_MAX - 1 of them. */
bool
peer_id_ok(const char *s, size_t n)
{
	size_t	i;

	if (n == 0 || n >= LB_ID_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

/* One NODE_ID=HOST:PORT of n bytes at s into pe. */
static int
peers_one(const char *s, size_t n, struct peer *pe, char *err, size_t errlen)
{
	const char	*eq = memchr(s, '=', n);
	char		 host[256], why[160];
	struct netaddr	 addr;
	bool		 bracketed, literal;
	int		 port;

	if (eq == NULL || !peer_id_ok(s, (size_t)(eq - s))) {
		snprintf(err, errlen, "\"%.*s\" is not NODE_ID=HOST:PORT with a node id of "
		    "letters, digits, '-', '_' and '.'", (int)n, s);
		return -1;
	}
	memcpy(pe->pe_node, s, (size_t)(eq - s));
	pe->pe_node[eq - s] = '\0';
	eq++;
	if (endpoint_hostport(eq, n - (size_t)(eq - s), host, sizeof(host), &bracketed, &port,
	    why, sizeof(why)) != 0 || endpoint_host(host, bracketed, &literal, &addr, why,
	    sizeof(why)) != 0) {
		snprintf(err, errlen, "peer %s: %s", pe->pe_node, why);
		return -1;
	}
	if (!literal) {
		snprintf(err, errlen, "peer %s: the host must be an IP address, not the name "
		    "\"%s\"", pe->pe_node, host);
		return -1;
	}
	if (port <= 0 || port > 65535) {
		snprintf(err, errlen, "peer %s: a port from 1 to 65535 is required", pe->pe_node);
		return -1;
	}
	/* An IP address as text fits: at most 45 characters. */
	if (strlcpy_chk(pe->pe_host, host, sizeof(pe->pe_host)) != 0) {
		snprintf(err, errlen, "peer %s: the address is too long", pe->pe_node);
		return -1;
	}
	pe->pe_port = port;
	return 0;
}

int
peers_parse(const char *list, const char *self, struct peer **out, size_t *nout, char *err,
    size_t errlen)
{
	struct peer	*pe = NULL;
	const char	*p = list, *comma;
	size_t		 n = 0, i, len;
	int		 ret = -1;

	*out = NULL;
	*nout = 0;
	if (list[0] == '\0')
		return 0;
	if (self == NULL || self[0] == '\0') {
		snprintf(err, errlen, "peers are given but this node has no id (--node)");
		return -1;
	}
	if ((pe = calloc(PEERS_MAX, sizeof(*pe))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (;;) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n == PEERS_MAX) {
			snprintf(err, errlen, "more than %d peers", PEERS_MAX);
			goto done;
		}
		if (peers_one(p, len, &pe[n], err, errlen) != 0)
			goto done;
		if (strcmp(pe[n].pe_node, self) == 0) {
			snprintf(err, errlen, "peer %s is this node itself (--node)", self);
			goto done;
		}
		for (i = 0; i < n; i++)
			if (strcmp(pe[i].pe_node, pe[n].pe_node) == 0) {
				snprintf(err, errlen, "peer %s is named twice", pe[n].pe_node);
				goto done;
			}
		n++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*out = pe;
	*nout = n;
	pe = NULL;
	ret = 0;
done:
	free(pe);
	return ret;
}

bool
peer_listed(const struct gw *gw, const char *node)
{
	size_t	i;

	for (i = 0; i < gw->gw_npeers; i++)
		if (strcmp(gw->gw_peers[i].pe_node, node) == 0)
			return true;
	return false;
}

struct peer_client *
peer_client_new(const char *certs, const char *node, char *err, size_t errlen)
{
	struct peer_client	*pcl = NULL;
	EVP_PKEY		*key = NULL;
	char			 path[PATH_MAX], why[384];
	int			 ok = 0;

	if ((pcl = calloc(1, sizeof(*pcl))) == NULL ||
	    (pcl->pcl_tls = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(pcl->pcl_tls, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot create a TLS context for the peers");
		goto done;
	}
	SSL_CTX_set_options(pcl->pcl_tls, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(pcl->pcl_tls, SSL_VERIFY_PEER, NULL);
	snprintf(path, sizeof(path), "%s/client-ca.pem", certs);
	if (SSL_CTX_load_verify_file(pcl->pcl_tls, path) != 1) {
		snprintf(err, errlen, "%s: cannot load the CA of the peers' certificates", path);
		goto done;
	}
	snprintf(path, sizeof(path), "%s/clients/gateway-%s.pem", certs, node);
	if (SSL_CTX_use_certificate_chain_file(pcl->pcl_tls, path) != 1) {
		snprintf(err, errlen, "%s: cannot use as this node's client certificate "
		    "(OU=gateway, CN=%s)", path, node);
		goto done;
	}
	snprintf(path, sizeof(path), "%s/clients/gateway-%s.key", certs, node);
	if (key_load(path, &key, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s", why);
		goto done;
	}
	if (SSL_CTX_use_PrivateKey(pcl->pcl_tls, key) != 1 ||
	    SSL_CTX_check_private_key(pcl->pcl_tls) != 1) {
		snprintf(err, errlen, "%s: does not match gateway-%s.pem", path, node);
		goto done;
	}
	ok = 1;
done:
	/* The context keeps its own reference of the key. */
	EVP_PKEY_free(key);
	ERR_clear_error();
	if (!ok) {
		peer_client_free(pcl);
		pcl = NULL;
	}
	return pcl;
}

void
peer_client_free(struct peer_client *pcl)
{
	if (pcl == NULL)
		return;
	SSL_CTX_free(pcl->pcl_tls);
	free(pcl);
}

static void
peer_req_error(enum evhttp_request_error e, void *arg)
{
	struct peer_req	*prq = arg;

	prq->prq_err = e;
	prq->prq_failed = true;
}

static const char *
peer_err_text(enum evhttp_request_error e)
{
	switch (e) {
	case EVREQ_HTTP_TIMEOUT:
		return "timed out";
	case EVREQ_HTTP_EOF:
		return "closed the connection";
	case EVREQ_HTTP_INVALID_HEADER:
		return "answered a malformed head";
	case EVREQ_HTTP_BUFFER_ERROR:
		return "could not be read";
	case EVREQ_HTTP_REQUEST_CANCEL:
		return "was cancelled";
	case EVREQ_HTTP_DATA_TOO_LONG:
		return "answered too much";
	}
	return "failed";
}

static void
peer_conn_free(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evhttp_connection_free(arg);
}

static void
peer_req_done(struct evhttp_request *req, void *arg)
{
	struct peer_req	*prq = arg;
	struct evbuffer	*in;
	char		 msg[160];
	const uint8_t	*body;
	size_t		 len;
	int		 code;

	code = req != NULL ? evhttp_request_get_response_code(req) : 0;
	if (code == 0) {
		snprintf(msg, sizeof(msg), "peer %s cannot be reached: the request %s",
		    prq->prq_node, prq->prq_failed ? peer_err_text(prq->prq_err) :
		    "failed (connection or TLS)");
		prq->prq_cb(prq->prq_arg, 0, NULL, 0, msg);
	} else {
		in = evhttp_request_get_input_buffer(req);
		len = evbuffer_get_length(in);
		body = len > 0 ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
		snprintf(msg, sizeof(msg), "peer %s answered %d", prq->prq_node, code);
		prq->prq_cb(prq->prq_arg, code, body, body != NULL ? len : 0, msg);
	}
	/*
	 * The connection goes once libevent is done with it, after this call.
	 * Not evhttp_connection_free_on_completion: libevent 2.1 forgets it
	 * when the connection itself fails (refused, TLS), and leaks it.
	 */
	if (event_base_once(prq->prq_base, -1, EV_TIMEOUT, peer_conn_free, prq->prq_conn,
	    &(struct timeval){ 0, 0 }) != 0)
		log_warnx("peer %s: a finished connection could not be freed", prq->prq_node);
	free(prq);
}

int
peer_get(struct peer_client *pcl, struct event_base *base, const struct peer *pe,
    const char *target, peer_cb cb, void *arg)
{
	struct peer_req			*prq = NULL;
	struct evhttp_connection	*conn = NULL;
	struct evhttp_request		*req = NULL;
	struct bufferevent		*bev;
	struct evkeyvalq		*h;
	SSL				*ssl = NULL;
	char				 hostport[80];

	if ((prq = calloc(1, sizeof(*prq))) == NULL)
		goto fail;
	prq->prq_cb = cb;
	prq->prq_arg = arg;
	snprintf(prq->prq_node, sizeof(prq->prq_node), "%s", pe->pe_node);
	if ((ssl = SSL_new(pcl->pcl_tls)) == NULL ||
	    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), pe->pe_host) != 1)
		goto fail;
	/* The bufferevent owns ssl from here, even when it fails. */
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	ssl = NULL;
	if (bev == NULL)
		goto fail;
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	if ((conn = evhttp_connection_base_bufferevent_new(base, NULL, bev, pe->pe_host,
	    (unsigned short)pe->pe_port)) == NULL) {
		bufferevent_free(bev);
		goto fail;
	}
	evhttp_connection_set_timeout(conn, PEER_TIMEOUT_S);
	evhttp_connection_set_retries(conn, 0);
	evhttp_connection_set_max_body_size(conn, PEER_BODY_MAX);
	prq->prq_base = base;
	prq->prq_conn = conn;
	if ((req = evhttp_request_new(peer_req_done, prq)) == NULL)
		goto fail;
	evhttp_request_set_error_cb(req, peer_req_error);
	h = evhttp_request_get_output_headers(req);
	snprintf(hostport, sizeof(hostport), strchr(pe->pe_host, ':') != NULL ? "[%s]:%d" :
	    "%s:%d", pe->pe_host, pe->pe_port);
	evhttp_add_header(h, "Host", hostport);
	evhttp_add_header(h, "Accept", "application/msgpack");
	evhttp_add_header(h, "Connection", "close");
	/*
	 * evhttp owns req from here and calls peer_req_done exactly once; when
	 * it refuses the request at once, req is out of its queue and ours.
	 */
	if (evhttp_make_request(conn, req, EVHTTP_REQ_GET, target) != 0)
		goto fail;
	return 0;
fail:
	ERR_clear_error();
	SSL_free(ssl);
	if (req != NULL)
		evhttp_request_free(req);
	if (conn != NULL)
		evhttp_connection_free(conn);
	free(prq);
	return -1;
}
