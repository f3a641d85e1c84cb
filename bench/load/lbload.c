/*
 * lbload.c - the load generator of bench/load: keeps C keep-alive
 * connections (HTTPS with a client certificate, or plain HTTP) busy with
 * POST /v1/exchanges, each request carrying a consent token of its own, or
 * with one fixed request to any URL, and reports throughput and latency.
 *
 * Every token is minted before the timed part, so signing them costs the
 * measurement nothing.  Two modes: a closed loop (each connection sends its
 * next request when the answer to the last one has arrived) and a fixed
 * rate (requests are scheduled at R per second over the connections, and a
 * request's latency counts from its scheduled time, so a server that falls
 * behind is charged for the wait of the requests queued behind the slow one
 * instead of hiding it).  docs/performance.md describes the method.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lianban.h"

#define LBL_HEAD_MAX	(64 * 1024)
#define LBL_BODY_MAX	(16 * 1024 * 1024)
#define LBL_ERR_MAX	512
#define LBL_CONNS_MAX	4096

/* The newborn of adapters/data/families.json and the items of its bundle. */
#define LBL_SUBJECT	"110105202601010115"
static const char *const lbl_bundle_items[] = {
	"birth_medical_certificate", "vaccination_record", "household_register",
	"medical_insurance", "social_security_card"
};
#define LBL_BUNDLE_N	(sizeof(lbl_bundle_items) / sizeof(lbl_bundle_items[0]))

enum lbl_kind { LBL_ONE, LBL_BUNDLE, LBL_GENERIC };
static const char *const lbl_kind_names[] = { "one", "bundle", "generic" };

/*
 * The latency histogram, log-linear in nanoseconds: values below 128 have
 * a slot each, then every power of two is split into 64 slots, so a
 * percentile is off by less than 1/64 of its value whatever the range.
 */
#define HIST_SUB	64
#define HIST_SLOTS	(2 * HIST_SUB + 58 * HIST_SUB)
struct lbl_hist {
	uint64_t	h_slot[HIST_SLOTS];
	uint64_t	h_n, h_max;
};

struct lbl_conf {
	const char	*lc_url, *lc_cert, *lc_key, *lc_ca, *lc_certs, *lc_label;
	const char	*lc_method, *lc_body, *lc_alg, *lc_subject, *lc_bundle, *lc_azp;
	char		 lc_host[256], lc_port[8], lc_path[1024];
	bool		 lc_tls;
	enum lbl_kind	 lc_kind;
	int		 lc_conns, lc_threads;
	double		 lc_duration, lc_warmup, lc_rate, lc_ttl;
	size_t		 lc_tokens;
};

/* One request's bytes, head and body, sent with one write. */
struct lbl_req {
	char	*rq_buf;
	size_t	 rq_len;
};

enum lbl_state { CN_CONNECTING, CN_IDLE, CN_HEAD, CN_BODY, CN_CHUNK_SIZE, CN_CHUNK_DATA,
	CN_CHUNK_END, CN_TRAILER };

struct lbl_run;
struct lbl_conn {
	struct lbl_run		*cn_run;
	int			 cn_id;
	struct bufferevent	*cn_bev;
	struct event		*cn_timer;
	enum lbl_state		 cn_state;
	int			 cn_status;
	bool			 cn_close, cn_chunked;
	size_t			 cn_left;	/* body or chunk bytes still to come */
	struct evbuffer		*cn_body;
	uint64_t		 cn_start_ns;	/* when the request counts from */
	uint64_t		 cn_k;		/* requests this connection scheduled */
};

struct lbl_run {
	struct lbl_conf		*r_conf;
	struct event_base	*r_base;
	SSL_CTX			*r_ctx;
	struct sockaddr_storage	 r_addr;
	socklen_t		 r_addrlen;
	struct lbl_req		*r_reqs;
	size_t			 r_nreqs, r_next;
	struct lbl_conn		*r_conns;
	struct event		*r_phase;
	uint64_t		 r_t0, r_tmeasure, r_tend, r_tstop;
	int			 r_phase_no;	/* 0 warm-up, 1 measuring, 2 draining, 3 done */
	int			 r_pending;	/* open loop: measured requests not answered */
	struct lbl_hist		 r_hist;
	uint64_t		 r_ok, r_err, r_reconnects, r_timeouts;
	bool			 r_exhausted;
	int			 r_first_status;
	char			 r_first_err[LBL_ERR_MAX];
};

static void	conn_start(struct lbl_conn *);
static void	conn_send(struct lbl_conn *);

static uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
hist_add(struct lbl_hist *h, uint64_t v)
{
	unsigned	msb, shift;
	size_t		i;

	if (v < 2 * HIST_SUB)
		i = (size_t)v;
	else {
		msb = 63u - (unsigned)__builtin_clzll(v);
		shift = msb - 6;
		i = 2 * HIST_SUB + (size_t)(shift - 1) * HIST_SUB + (size_t)((v >> shift) - HIST_SUB);
		if (i >= HIST_SLOTS)
			i = HIST_SLOTS - 1;
	}
	h->h_slot[i]++;
	h->h_n++;
	if (v > h->h_max)
		h->h_max = v;
}

/* The middle of slot i's range of values. */
static double
hist_value(size_t i)
{
	unsigned	shift;
	uint64_t	lo;

	if (i < 2 * HIST_SUB)
		return (double)i;
	shift = (unsigned)((i - 2 * HIST_SUB) / HIST_SUB) + 1;
	lo = ((uint64_t)((i - 2 * HIST_SUB) % HIST_SUB) + HIST_SUB) << shift;
	return (double)lo + (double)((uint64_t)1 << shift) / 2;
}

/* The value at quantile q in milliseconds, never above the maximum seen. */
static double
hist_ms(const struct lbl_hist *h, double q)
{
	uint64_t	rank, seen = 0;
	size_t		i;
	double		v;

	if (h->h_n == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->h_n);
	if ((double)rank < q * (double)h->h_n || rank == 0)
		rank++;
	for (i = 0; i < HIST_SLOTS; i++) {
		seen += h->h_slot[i];
		if (seen >= rank)
			break;
	}
	v = hist_value(i);
	if (v > (double)h->h_max)
		v = (double)h->h_max;
	return v / 1e6;
}

/*
 * Tokens
 */
struct lbl_mint {
	struct lbl_conf	*mt_conf;
	struct lbl_req	*mt_reqs;
	size_t		 mt_from, mt_to;
	EVP_PKEY	*mt_key;
	const uint8_t	*mt_kid;
	const char	*mt_iss;
	int		 mt_ret;
};

/* The claims of one consent token (docs/contract.md §5), as lianctl consent issue makes them. */
static int
mint_token(const struct lbl_mint *mt, msgpack_sbuffer *env)
{
	const struct lbl_conf	*c = mt->mt_conf;
	msgpack_zone		 z;
	msgpack_sbuffer		 payload;
	msgpack_object		 items, amr;
	struct mpk_map		 m;
	uint8_t			 jti[16];
	int64_t			 iat = (int64_t)time(NULL);
	size_t			 i, n = c->lc_kind == LBL_BUNDLE ? LBL_BUNDLE_N : 1;
	int			 ret = -1;

	msgpack_zone_init(&z, 1024);
	msgpack_sbuffer_init(&payload);
	if (RAND_bytes(jti, sizeof(jti)) != 1)
		goto done;
	items = mpk_array(&z, (uint32_t)n);
	for (i = 0; i < n; i++)
		items.via.array.ptr[i] = mpk_str(lbl_bundle_items[i]);
	amr = mpk_array(&z, 1);
	amr.via.array.ptr[0] = mpk_str("face");
	mpk_map_init(&m, &z, 14);
	mpk_map_put(&m, "iss", mpk_str(mt->mt_iss));
	mpk_map_put(&m, "aud", mpk_str("lianban-demo"));
	mpk_map_put(&m, "sub", mpk_str(c->lc_subject));
	mpk_map_put(&m, "act", mpk_str(c->lc_subject));
	mpk_map_put(&m, "rel", mpk_str("self"));
	mpk_map_put(&m, "azp", mpk_str(c->lc_azp));
	mpk_map_put(&m, "bundle", mpk_str(c->lc_bundle));
	mpk_map_put(&m, "items", items);
	mpk_map_put(&m, "amr", amr);
	mpk_map_put(&m, "liveness", mpk_int(990));
	mpk_map_put(&m, "match", mpk_int(985));
	mpk_map_put(&m, "iat", mpk_int(iat));
	mpk_map_put(&m, "exp", mpk_int(iat + (int64_t)c->lc_ttl));
	mpk_map_put(&m, "jti", mpk_bin(jti, sizeof(jti)));
	if (mpk_pack(&m.mm_obj, &payload, false) != 0 ||
	    envelope_sign(mt->mt_key, mt->mt_kid, "consent", NULL, 0, payload.data, payload.size,
	    env) != 0)
		goto done;
	ret = 0;
done:
	msgpack_sbuffer_destroy(&payload);
	msgpack_zone_destroy(&z);
	return ret;
}

/* Builds the whole request (head and JSON body) of one exchange around a fresh token. */
static int
mint_request(const struct lbl_mint *mt, struct lbl_req *rq)
{
	const struct lbl_conf	*c = mt->mt_conf;
	msgpack_sbuffer		 env;
	char			*tok = NULL, items[256], body[8192];
	size_t			 i, n = c->lc_kind == LBL_BUNDLE ? LBL_BUNDLE_N : 1, off = 0;
	int			 blen, hlen, ret = -1;

	msgpack_sbuffer_init(&env);
	if (mint_token(mt, &env) != 0 || (tok = b64url_encode(env.data, env.size)) == NULL)
		goto done;
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(items + off, sizeof(items) - off, "%s\"%s\"",
		    i > 0 ? "," : "", lbl_bundle_items[i]);
	blen = snprintf(body, sizeof(body), "{\"bundle\":\"%s\",\"requests\":[{\"subject\":\"%s\","
	    "\"items\":[%s],\"consent\":\"%s\"}]}", c->lc_bundle, c->lc_subject, items, tok);
	if (blen < 0 || (size_t)blen >= sizeof(body))
		goto done;
	rq->rq_len = (size_t)blen + 512;
	if ((rq->rq_buf = malloc(rq->rq_len)) == NULL)
		goto done;
	hlen = snprintf(rq->rq_buf, 512, "POST %s HTTP/1.1\r\nHost: %s:%s\r\n"
	    "Content-Type: application/json\r\nAccept: application/json\r\n"
	    "Content-Length: %d\r\n\r\n", c->lc_path, c->lc_host, c->lc_port, blen);
	if (hlen < 0 || hlen >= 512)
		goto done;
	memcpy(rq->rq_buf + hlen, body, (size_t)blen);
	rq->rq_len = (size_t)hlen + (size_t)blen;
	ret = 0;
done:
	free(tok);
	msgpack_sbuffer_destroy(&env);
	return ret;
}

static void *
mint_thread(void *arg)
{
	struct lbl_mint	*mt = arg;
	size_t		 i;

	mt->mt_ret = 0;
	for (i = mt->mt_from; i < mt->mt_to; i++)
		if (mint_request(mt, &mt->mt_reqs[i]) != 0) {
			mt->mt_ret = -1;
			break;
		}
	return NULL;
}

/*
 * Mints c->lc_tokens requests on c->lc_threads threads, signed with the
 * demo face-auth authority of the algorithm asked for.  The caller frees
 * *reqs (each rq_buf, then the array).
 */
static int
mint_all(struct lbl_conf *c, struct lbl_req **reqs)
{
	struct lbl_mint	 mt[64];
	pthread_t	 th[64];
	EVP_PKEY	*key = NULL;
	X509		*cert = NULL;
	uint8_t		 kid[32];
	char		 kpath[1024], cpath[1024], iss[256], err[256];
	const char	*name = strcmp(c->lc_alg, "sm2") == 0 ? "faceauth-sm2" :
			    strcmp(c->lc_alg, "eddsa") == 0 ? "faceauth-ed" : "faceauth";
	int		 i, nth = c->lc_threads, started = 0, ret = -1;

	*reqs = NULL;
	snprintf(kpath, sizeof(kpath), "%s/authorities/%s.key", c->lc_certs, name);
	snprintf(cpath, sizeof(cpath), "%s/trust/consent/%s.pem", c->lc_certs, name);
	if (key_load(kpath, &key, err, sizeof(err)) != 0 || cert_load(cpath, &cert, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "lbload: %s\n", err);
		goto done;
	}
	if (key_id_cert(cert, kid) != 0 ||
	    cert_subject_field(cert, NID_commonName, iss, sizeof(iss)) != 0) {
		fprintf(stderr, "lbload: %s: no key id or CN\n", cpath);
		goto done;
	}
	if ((*reqs = calloc(c->lc_tokens, sizeof(**reqs))) == NULL)
		goto done;
	if (nth < 1)
		nth = 1;
	if (nth > 64)
		nth = 64;
	for (i = 0; i < nth; i++) {
		mt[i] = (struct lbl_mint){ .mt_conf = c, .mt_reqs = *reqs, .mt_key = key,
		    .mt_kid = kid, .mt_iss = iss,
		    .mt_from = c->lc_tokens * (size_t)i / (size_t)nth,
		    .mt_to = c->lc_tokens * (size_t)(i + 1) / (size_t)nth };
		if (pthread_create(&th[i], NULL, mint_thread, &mt[i]) != 0)
			break;
		started++;
	}
	ret = started == nth ? 0 : -1;
	for (i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		if (mt[i].mt_ret != 0)
			ret = -1;
	}
	if (ret != 0)
		fprintf(stderr, "lbload: minting the consent tokens failed\n");
done:
	ERR_clear_error();
	EVP_PKEY_free(key);
	X509_free(cert);
	return ret;
}

/*
 * Answers
 */

/*
 * Whether a 200 answer is an exchange whose every result is served: as
 * many results with "status":"ok" as the request asked items, and no
 * error.  A substring count is enough because the gateway writes compact
 * JSON and no demo document has a field of that name and value; it keeps
 * the generator's own work per answer small next to the server's.
 */
static bool
answer_ok(const struct lbl_conf *c, const char *body, size_t len)
{
	static const char	okpat[] = "\"status\":\"ok\"";
	const char		*p = body, *end = body + len, *q;
	size_t			 n = 0, want = c->lc_kind == LBL_BUNDLE ? LBL_BUNDLE_N : 1;

	if (c->lc_kind == LBL_GENERIC)
		return true;
	if (len < 14 || memcmp(body, "{\"exchange\":", 12) != 0 ||
	    memmem(body, len, "\"error\":", 8) != NULL)
		return false;
	while ((q = memmem(p, (size_t)(end - p), okpat, sizeof(okpat) - 1)) != NULL) {
		n++;
		p = q + sizeof(okpat) - 1;
	}
	return n == want;
}

/*
 * The results of an exchange answer that were not served, as compact JSON
 * (subject, item, status, message), or NULL when there are none to show.
 * The caller frees it.
 */
static char *
answer_failed(const char *body, size_t len)
{
	json_t		*doc, *res, *bad, *x;
	size_t		 i;
	char		*s = NULL;

	if ((doc = json_loadb(body, len, 0, NULL)) == NULL)
		return NULL;
	bad = json_array();
	res = json_object_get(doc, "results");
	for (i = 0; bad != NULL && i < json_array_size(res); i++) {
		x = json_array_get(res, i);
		if (strcmp(json_string_value(json_object_get(x, "status")) != NULL ?
		    json_string_value(json_object_get(x, "status")) : "", "ok") == 0)
			continue;
		json_array_append_new(bad, json_pack("{s:O?, s:O?, s:O?, s:O?}", "subject",
		    json_object_get(x, "subject"), "item", json_object_get(x, "item"), "status",
		    json_object_get(x, "status"), "message", json_object_get(x, "message")));
	}
	if (json_array_size(bad) > 0)
		s = json_dumps(bad, JSON_COMPACT);
	json_decref(bad);
	json_decref(doc);
	return s;
}

/* Keeps the first error's status and body (for a 200, the results not served). */
static void
run_first_error(struct lbl_run *r, int status, const char *body, size_t len)
{
	char	*failed = NULL;
	size_t	 i;

	if (r->r_first_status != 0 || r->r_first_err[0] != '\0')
		return;
	r->r_first_status = status;
	if (status == 200 && (failed = answer_failed(body, len)) != NULL) {
		body = failed;
		len = strlen(failed);
	}
	/* Cut on a character boundary: the report is JSON, so UTF-8 only. */
	if (len >= sizeof(r->r_first_err)) {
		len = sizeof(r->r_first_err) - 1;
		while (len > 0 && ((unsigned char)body[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(r->r_first_err, body, len);
	r->r_first_err[len] = '\0';
	for (i = 0; i < len; i++)
		if ((unsigned char)r->r_first_err[i] < 0x20 ||
		    (unsigned char)r->r_first_err[i] == 0x7f)
			r->r_first_err[i] = ' ';
	if (!utf8_valid(r->r_first_err, len))
		snprintf(r->r_first_err, sizeof(r->r_first_err), "(%zu bytes, not UTF-8)", len);
	free(failed);
}

/* Whether the run takes this completion into its figures. */
static bool
run_counts(struct lbl_run *r, const struct lbl_conn *cn)
{
	if (r->r_conf->lc_rate > 0)
		return cn->cn_start_ns >= r->r_tmeasure && cn->cn_start_ns < r->r_tend;
	return r->r_phase_no == 1;
}

static void
run_done_one(struct lbl_run *r, struct lbl_conn *cn, bool ok, int status, const char *body,
    size_t len)
{
	if (!run_counts(r, cn))
		return;
	if (r->r_conf->lc_rate > 0)
		r->r_pending--;
	if (ok) {
		r->r_ok++;
		hist_add(&r->r_hist, now_ns() - cn->cn_start_ns);
	} else {
		r->r_err++;
		run_first_error(r, status, body, len);
	}
	if (r->r_phase_no == 2 && r->r_pending <= 0)
		event_base_loopbreak(r->r_base);
}

/* The answer is complete: judge it, then send the next request or close. */
static void
conn_answer(struct lbl_conn *cn)
{
	struct lbl_run	*r = cn->cn_run;
	size_t		 len = evbuffer_get_length(cn->cn_body);
	const char	*body = len > 0 ? (const char *)evbuffer_pullup(cn->cn_body, -1) : "";
	bool		 ok = cn->cn_status == 200 && answer_ok(r->r_conf, body, len);

	run_done_one(r, cn, ok, cn->cn_status, body, len);
	evbuffer_drain(cn->cn_body, len);
	cn->cn_state = CN_IDLE;
	if (cn->cn_close) {
		bufferevent_free(cn->cn_bev);
		cn->cn_bev = NULL;
		r->r_reconnects++;
		conn_start(cn);
		return;
	}
	conn_send(cn);
}

/* The status line and headers of an answer; 0 when parsed, -1 when malformed. */
static int
conn_head(struct lbl_conn *cn, char *head)
{
	char	*line, *save = NULL, *v;
	int	 first = 1;

	cn->cn_status = 0;
	cn->cn_close = false;
	cn->cn_chunked = false;
	cn->cn_left = 0;
	for (line = strtok_r(head, "\r\n", &save); line != NULL;
	    line = strtok_r(NULL, "\r\n", &save)) {
		if (first) {
			first = 0;
			if (strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12)
				return -1;
			cn->cn_status = atoi(line + 9);
			if (strncmp(line, "HTTP/1.0", 8) == 0)
				cn->cn_close = true;
			continue;
		}
		if ((v = strchr(line, ':')) == NULL)
			continue;
		*v++ = '\0';
		v += strspn(v, " \t");
		if (strcasecmp(line, "Content-Length") == 0)
			cn->cn_left = strtoul(v, NULL, 10);
		else if (strcasecmp(line, "Transfer-Encoding") == 0 && strcasestr(v, "chunked"))
			cn->cn_chunked = true;
		else if (strcasecmp(line, "Connection") == 0 && strcasestr(v, "close"))
			cn->cn_close = true;
	}
	return cn->cn_status > 0 && cn->cn_left <= LBL_BODY_MAX ? 0 : -1;
}

/* Moves what has come of the body or chunk to cn_body; true once all of it is there. */
static bool
conn_take(struct lbl_conn *cn, struct evbuffer *in)
{
	size_t	n = evbuffer_get_length(in);

	if (n > cn->cn_left)
		n = cn->cn_left;
	evbuffer_remove_buffer(in, cn->cn_body, n);
	cn->cn_left -= n;
	return cn->cn_left == 0;
}

/* Parses what has arrived; returns -1 when the connection must go. */
static int
conn_parse(struct lbl_conn *cn)
{
	struct evbuffer		*in = bufferevent_get_input(cn->cn_bev);
	struct evbuffer_ptr	 p;
	char			*line, head[LBL_HEAD_MAX + 1];
	size_t			 n;

	for (;;) {
		switch (cn->cn_state) {
		case CN_HEAD:
			p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
			if (p.pos < 0)
				return evbuffer_get_length(in) > LBL_HEAD_MAX ? -1 : 0;
			if ((size_t)p.pos + 4 > LBL_HEAD_MAX)
				return -1;
			n = (size_t)p.pos + 4;
			evbuffer_remove(in, head, n);
			head[n] = '\0';
			if (conn_head(cn, head) != 0)
				return -1;
			cn->cn_state = cn->cn_chunked ? CN_CHUNK_SIZE : CN_BODY;
			break;
		case CN_BODY:
			if (!conn_take(cn, in))
				return 0;
			conn_answer(cn);
			return cn->cn_bev == NULL ? 1 : 0;
		case CN_CHUNK_SIZE:
			if ((line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF)) == NULL)
				return evbuffer_get_length(in) > 64 ? -1 : 0;
			cn->cn_left = strtoul(line, NULL, 16);
			free(line);
			if (cn->cn_left > LBL_BODY_MAX)
				return -1;
			cn->cn_state = cn->cn_left == 0 ? CN_TRAILER : CN_CHUNK_DATA;
			break;
		case CN_CHUNK_DATA:
			if (!conn_take(cn, in))
				return 0;
			cn->cn_state = CN_CHUNK_END;
			break;
		case CN_CHUNK_END:
		case CN_TRAILER:
			if ((line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF)) == NULL)
				return 0;
			n = strlen(line);
			free(line);
			if (cn->cn_state == CN_CHUNK_END)
				cn->cn_state = CN_CHUNK_SIZE;
			else if (n == 0) {
				conn_answer(cn);
				return cn->cn_bev == NULL ? 1 : 0;
			}
			break;
		default:
			/* Bytes with no request in flight. */
			return evbuffer_get_length(in) > 0 ? -1 : 0;
		}
	}
}

/* A failed connection: its request (if any) is an error, and a new one replaces it. */
static void
conn_fail(struct lbl_conn *cn, const char *why)
{
	struct lbl_run	*r = cn->cn_run;
	struct timeval	 tv = { 0, 100000 };
	bool		 connecting = cn->cn_state == CN_CONNECTING;

	if (!connecting && cn->cn_state != CN_IDLE)
		run_done_one(r, cn, false, 0, why, strlen(why));
	else if (connecting && r->r_phase_no == 1) {
		r->r_err++;
		run_first_error(r, 0, why, strlen(why));
	}
	if (cn->cn_bev != NULL)
		bufferevent_free(cn->cn_bev);
	cn->cn_bev = NULL;
	cn->cn_state = CN_CONNECTING;
	evbuffer_drain(cn->cn_body, evbuffer_get_length(cn->cn_body));
	r->r_reconnects++;
	/* A server that refuses connections is not hammered in a tight loop. */
	if (connecting)
		evtimer_add(cn->cn_timer, &tv);
	else
		conn_start(cn);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct lbl_conn	*cn = arg;

	(void)bev;
	if (conn_parse(cn) < 0)
		conn_fail(cn, "malformed answer");
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct lbl_conn	*cn = arg;
	unsigned long	 e;
	char		 why[LBL_ERR_MAX];
	int		 fd, one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		fd = (int)bufferevent_getfd(bev);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		cn->cn_state = CN_IDLE;
		conn_send(cn);
		return;
	}
	if ((e = bufferevent_get_openssl_error(bev)) != 0)
		snprintf(why, sizeof(why), "TLS: %s", ERR_reason_error_string(e));
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed by the server");
	else
		snprintf(why, sizeof(why), "connection error: %s", strerror(errno));
	conn_fail(cn, why);
}

/* Opens the connection; the first request goes out once it is connected. */
static void
conn_start(struct lbl_conn *cn)
{
	struct lbl_run		*r = cn->cn_run;
	struct lbl_conf		*c = r->r_conf;
	struct in6_addr		 a6;
	SSL			*ssl;

	cn->cn_state = CN_CONNECTING;
	if (c->lc_tls) {
		if ((ssl = SSL_new(r->r_ctx)) == NULL)
			goto fail;
		if (inet_pton(AF_INET, c->lc_host, &a6) == 1 ||
		    inet_pton(AF_INET6, c->lc_host, &a6) == 1)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->lc_host);
		else {
			SSL_set_tlsext_host_name(ssl, c->lc_host);
			SSL_set1_host(ssl, c->lc_host);
		}
		cn->cn_bev = bufferevent_openssl_socket_new(r->r_base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (cn->cn_bev == NULL) {
			SSL_free(ssl);
			goto fail;
		}
		bufferevent_openssl_set_allow_dirty_shutdown(cn->cn_bev, 1);
	} else if ((cn->cn_bev = bufferevent_socket_new(r->r_base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		goto fail;
	bufferevent_setcb(cn->cn_bev, conn_read_cb, NULL, conn_event_cb, cn);
	bufferevent_enable(cn->cn_bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(cn->cn_bev, (struct sockaddr *)&r->r_addr,
	    (int)r->r_addrlen) != 0) {
		bufferevent_free(cn->cn_bev);
		cn->cn_bev = NULL;
		goto fail;
	}
	return;
fail:
	fprintf(stderr, "lbload: cannot open a connection\n");
	event_base_loopbreak(r->r_base);
}

/* The bytes of the next request, or NULL when the minted tokens ran out. */
static const struct lbl_req *
run_take(struct lbl_run *r)
{
	if (r->r_conf->lc_kind == LBL_GENERIC)
		return &r->r_reqs[0];
	if (r->r_next >= r->r_nreqs) {
		if (!r->r_exhausted && r->r_phase_no <= 1) {
			r->r_exhausted = true;
			r->r_tstop = now_ns();
			event_base_loopbreak(r->r_base);
		}
		return NULL;
	}
	return &r->r_reqs[r->r_next++];
}

/* This connection's k-th slot of the fixed rate. */
static uint64_t
conn_slot_ns(const struct lbl_conn *cn, uint64_t k)
{
	const struct lbl_run	*r = cn->cn_run;
	double			 at = ((double)k * r->r_conf->lc_conns + cn->cn_id) /
				    r->r_conf->lc_rate;

	return r->r_t0 + (uint64_t)(at * 1e9);
}

/* A slot of the fixed rate has come, or a connection that failed may try again. */
static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lbl_conn	*cn = arg;

	(void)fd;
	(void)what;
	if (cn->cn_bev == NULL)
		conn_start(cn);
	else
		conn_send(cn);
}

/*
 * Sends the next request when the connection is free: at once in the
 * closed loop; at its scheduled time at a fixed rate (at once if that time
 * has passed, the latency still counting from it).
 */
static void
conn_send(struct lbl_conn *cn)
{
	struct lbl_run		*r = cn->cn_run;
	const struct lbl_req	*rq;
	uint64_t		 t = now_ns(), at;
	struct timeval		 tv;

	if (cn->cn_state != CN_IDLE || (r->r_phase_no >= 2 && r->r_conf->lc_rate <= 0))
		return;
	if (r->r_conf->lc_rate > 0) {
		at = conn_slot_ns(cn, cn->cn_k);
		if (at >= r->r_tend)
			return;
		if (at > t) {
			tv.tv_sec = (time_t)((at - t) / 1000000000u);
			tv.tv_usec = (suseconds_t)((at - t) % 1000000000u / 1000);
			evtimer_add(cn->cn_timer, &tv);
			return;
		}
		cn->cn_start_ns = at;
	} else
		cn->cn_start_ns = t;
	if ((rq = run_take(r)) == NULL)
		return;
	if (r->r_conf->lc_rate > 0) {
		cn->cn_k++;
		if (cn->cn_start_ns >= r->r_tmeasure)
			r->r_pending++;
	}
	cn->cn_state = CN_HEAD;
	bufferevent_write(cn->cn_bev, rq->rq_buf, rq->rq_len);
}

/* Warm-up over, then measuring over, then (fixed rate) the drain bound. */
static void
run_phase_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lbl_run	*r = arg;
	struct timeval	 tv;
	uint64_t	 t;
	double		 drain;

	(void)fd;
	(void)what;
	if (r->r_phase_no == 0) {
		/* At a fixed rate the window is the schedule's, set at the start. */
		r->r_phase_no = 1;
		if (r->r_conf->lc_rate <= 0) {
			r->r_tmeasure = now_ns();
			r->r_tend = r->r_tmeasure + (uint64_t)(r->r_conf->lc_duration * 1e9);
		}
		t = now_ns();
		t = r->r_tend > t ? r->r_tend - t : 0;
		tv.tv_sec = (time_t)(t / 1000000000u);
		tv.tv_usec = (suseconds_t)(t % 1000000000u / 1000);
		evtimer_add(r->r_phase, &tv);
	} else if (r->r_phase_no == 1) {
		r->r_tstop = now_ns();
		r->r_phase_no = 2;
		if (r->r_conf->lc_rate <= 0 || r->r_pending <= 0) {
			event_base_loopbreak(r->r_base);
			return;
		}
		/* Requests scheduled in time but still unanswered get this long. */
		drain = r->r_conf->lc_duration > 10 ? r->r_conf->lc_duration : 10;
		tv.tv_sec = (time_t)drain;
		tv.tv_usec = 0;
		evtimer_add(r->r_phase, &tv);
	} else {
		r->r_timeouts = (uint64_t)r->r_pending;
		r->r_err += (uint64_t)r->r_pending;
		run_first_error(r, 0, "no answer before the drain deadline", 35);
		event_base_loopbreak(r->r_base);
	}
}

/*
 * Set-up
 */
static int
conf_url(struct lbl_conf *c)
{
	const char	*p = c->lc_url, *host, *slash, *colon;
	size_t		 n;

	if (strncmp(p, "https://", 8) == 0) {
		c->lc_tls = true;
		p += 8;
	} else if (strncmp(p, "http://", 7) == 0)
		p += 7;
	else
		return -1;
	host = p;
	slash = strchr(p, '/');
	if (slash == NULL)
		slash = p + strlen(p);
	if (*host == '[') {
		if ((colon = strchr(host, ']')) == NULL || colon > slash)
			return -1;
		n = (size_t)(colon - host - 1);
		host++;
		colon = colon[1] == ':' ? colon + 1 : NULL;
	} else {
		colon = memchr(host, ':', (size_t)(slash - host));
		n = (size_t)((colon != NULL ? colon : slash) - host);
	}
	if (n == 0 || n >= sizeof(c->lc_host))
		return -1;
	memcpy(c->lc_host, host, n);
	c->lc_host[n] = '\0';
	if (colon != NULL) {
		n = (size_t)(slash - colon - 1);
		if (n == 0 || n >= sizeof(c->lc_port))
			return -1;
		memcpy(c->lc_port, colon + 1, n);
		c->lc_port[n] = '\0';
	} else
		snprintf(c->lc_port, sizeof(c->lc_port), "%s", c->lc_tls ? "443" : "80");
	snprintf(c->lc_path, sizeof(c->lc_path), "%s", *slash != '\0' ? slash : "/");
	return 0;
}

static int
run_resolve(struct lbl_run *r)
{
	struct addrinfo	 hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int		 ret = -1;

	if (getaddrinfo(r->r_conf->lc_host, r->r_conf->lc_port, &hints, &ai) != 0 || ai == NULL) {
		fprintf(stderr, "lbload: cannot resolve %s\n", r->r_conf->lc_host);
		goto done;
	}
	memcpy(&r->r_addr, ai->ai_addr, ai->ai_addrlen);
	r->r_addrlen = ai->ai_addrlen;
	ret = 0;
done:
	if (ai != NULL)
		freeaddrinfo(ai);
	return ret;
}

static int
run_tls(struct lbl_run *r)
{
	struct lbl_conf	*c = r->r_conf;

	if ((r->r_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return -1;
	SSL_CTX_set_min_proto_version(r->r_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(r->r_ctx, SSL_VERIFY_PEER, NULL);
	if (c->lc_ca != NULL && SSL_CTX_load_verify_locations(r->r_ctx, c->lc_ca, NULL) != 1) {
		fprintf(stderr, "lbload: cannot read the CA %s\n", c->lc_ca);
		return -1;
	}
	if (c->lc_cert != NULL && (SSL_CTX_use_certificate_chain_file(r->r_ctx, c->lc_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(r->r_ctx, c->lc_key, SSL_FILETYPE_PEM) != 1)) {
		fprintf(stderr, "lbload: cannot use the client certificate %s with key %s\n",
		    c->lc_cert, c->lc_key);
		return -1;
	}
	return 0;
}

/* The one request of the generic mode, reused for every send. */
static int
run_generic(struct lbl_run *r)
{
	struct lbl_conf	*c = r->r_conf;
	uint8_t		*body = NULL;
	size_t		 blen = 0, hlen;
	int		 n, ret = -1;

	if (c->lc_body != NULL && file_read(c->lc_body, LBL_BODY_MAX, &body, &blen) != 0) {
		fprintf(stderr, "lbload: cannot read %s\n", c->lc_body);
		goto done;
	}
	if ((r->r_reqs = calloc(1, sizeof(*r->r_reqs))) == NULL ||
	    (r->r_reqs[0].rq_buf = malloc(blen + 1024)) == NULL)
		goto done;
	r->r_nreqs = 1;
	n = snprintf(r->r_reqs[0].rq_buf, 1024, "%s %s HTTP/1.1\r\nHost: %s:%s\r\n%s"
	    "Content-Length: %zu\r\n\r\n", c->lc_method, c->lc_path, c->lc_host, c->lc_port,
	    body != NULL ? "Content-Type: application/json\r\n" : "", blen);
	if (n < 0 || n >= 1024)
		goto done;
	hlen = (size_t)n;
	if (blen > 0)
		memcpy(r->r_reqs[0].rq_buf + hlen, body, blen);
	r->r_reqs[0].rq_len = hlen + blen;
	ret = 0;
done:
	free(body);
	return ret;
}

static double
load1(void)
{
	FILE	*f = fopen("/proc/loadavg", "r");
	double	 v = -1;

	if (f != NULL) {
		if (fscanf(f, "%lf", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* One human line, then the machine line (one JSON object), on stdout. */
static void
run_report(struct lbl_run *r, double mint_s)
{
	struct lbl_conf	*c = r->r_conf;
	double		 secs = (double)(r->r_tstop - r->r_tmeasure) / 1e9, rps, items;
	double		 la = load1();
	json_t		*o;
	char		*s;

	/* At a fixed rate the window is the schedule's, however long the drain took. */
	if (c->lc_rate > 0)
		secs = c->lc_duration;
	rps = secs > 0 ? (double)r->r_ok / secs : 0;
	items = rps * (c->lc_kind == LBL_BUNDLE ? LBL_BUNDLE_N : 1);
	printf("%s: %s %s c=%d: %llu ok, %llu errors in %.1f s: %.0f req/s, %.0f items/s, "
	    "p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms, load %.2f%s\n",
	    c->lc_label, lbl_kind_names[c->lc_kind], c->lc_rate > 0 ? "rate" : "closed",
	    c->lc_conns, (unsigned long long)r->r_ok,
	    (unsigned long long)r->r_err, secs, rps, items, hist_ms(&r->r_hist, 0.5),
	    hist_ms(&r->r_hist, 0.99), hist_ms(&r->r_hist, 0.999), (double)r->r_hist.h_max / 1e6,
	    la, r->r_exhausted ? " (tokens ran out)" : "");
	if (r->r_first_status != 0 || r->r_first_err[0] != '\0')
		printf("%s: first error: status %d: %s\n", c->lc_label, r->r_first_status,
		    r->r_first_err);
	o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:f, s:f, "
	    "s:f, s:f, s:f, s:f, s:f, s:b, s:f, s:i, s:s}",
	    "lbload", "1", "label", c->lc_label, "kind", lbl_kind_names[c->lc_kind],
	    "mode", c->lc_rate > 0 ? "rate" : "closed", "conns", c->lc_conns,
	    "rate", c->lc_rate, "duration", secs, "warmup", c->lc_warmup,
	    "requests", (json_int_t)r->r_ok, "errors", (json_int_t)r->r_err,
	    "reconnects", (json_int_t)r->r_reconnects, "timeouts", (json_int_t)r->r_timeouts,
	    "rps", rps, "items_per_s", items,
	    "p50_ms", hist_ms(&r->r_hist, 0.5), "p99_ms", hist_ms(&r->r_hist, 0.99),
	    "p999_ms", hist_ms(&r->r_hist, 0.999), "max_ms", (double)r->r_hist.h_max / 1e6,
	    "load1", la, "tokens_exhausted", r->r_exhausted, "mint_s", mint_s,
	    "first_error_status", r->r_first_status, "first_error", r->r_first_err);
	if (o != NULL && (s = json_dumps(o, JSON_COMPACT)) != NULL) {
		printf("%s\n", s);
		free(s);
	}
	json_decref(o);
	fflush(stdout);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: lbload --url URL [options]\n"
	    "  --url URL           https://HOST:PORT/PATH or http://HOST:PORT/PATH\n"
	    "  --kind K            one (one newborn item per exchange, the default), bundle (the\n"
	    "                      newborn's 5 items from 5 departments), generic (--method, --body)\n"
	    "  --connections C     keep-alive connections, one request in flight each (default 16)\n"
	    "  --duration S        measured seconds (default 10)\n"
	    "  --warmup S          unmeasured seconds first (default 2)\n"
	    "  --rate R            fixed rate, requests/s over all connections (default: closed loop)\n"
	    "  --tokens N          consent tokens to mint before the run (default 20000)\n"
	    "  --alg A             es256 (default), sm2 or eddsa: the authority that signs them\n"
	    "  --certs DIR         the demo PKI: authorities/, trust/consent/ (default certs/demo)\n"
	    "  --cert PEM --key KEY  client certificate; --ca PEM the CA the server's chains to\n"
	    "  --method M --body FILE  generic mode's request (default GET, no body)\n"
	    "  --subject ID --bundle B --azp C  the exchange (default the demo newborn)\n"
	    "  --ttl S             tokens' lifetime (default 300)\n"
	    "  --mint-threads N    threads that mint (default the number of cores)\n"
	    "  --label NAME        names the run in its report lines\n");
}

static int
conf_parse(struct lbl_conf *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' }, { "kind", required_argument, NULL, 'k' },
		{ "connections", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' }, { "rate", required_argument, NULL, 'R' },
		{ "tokens", required_argument, NULL, 'n' }, { "alg", required_argument, NULL, 'a' },
		{ "certs", required_argument, NULL, 'P' }, { "cert", required_argument, NULL, 'C' },
		{ "key", required_argument, NULL, 'K' }, { "ca", required_argument, NULL, 'A' },
		{ "method", required_argument, NULL, 'm' }, { "body", required_argument, NULL, 'b' },
		{ "subject", required_argument, NULL, 's' },
		{ "bundle", required_argument, NULL, 'B' }, { "azp", required_argument, NULL, 'z' },
		{ "ttl", required_argument, NULL, 't' },
		{ "mint-threads", required_argument, NULL, 'T' },
		{ "label", required_argument, NULL, 'l' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	long	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int	ch, i;

	*c = (struct lbl_conf){ .lc_conns = 16, .lc_duration = 10, .lc_warmup = 2,
	    .lc_tokens = 20000, .lc_alg = "es256", .lc_certs = "certs/demo", .lc_method = "GET",
	    .lc_subject = LBL_SUBJECT, .lc_bundle = "newborn", .lc_azp = "newborn",
	    .lc_ttl = 300, .lc_threads = ncpu > 0 ? (int)ncpu : 1, .lc_label = "lbload" };
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'u': c->lc_url = optarg; break;
		case 'k':
			for (i = 0; i < 3 && strcmp(optarg, lbl_kind_names[i]) != 0; i++)
				;
			if (i == 3)
				return -1;
			c->lc_kind = (enum lbl_kind)i;
			break;
		case 'c': c->lc_conns = atoi(optarg); break;
		case 'd': c->lc_duration = atof(optarg); break;
		case 'w': c->lc_warmup = atof(optarg); break;
		case 'R': c->lc_rate = atof(optarg); break;
		case 'n': c->lc_tokens = strtoul(optarg, NULL, 10); break;
		case 'a': c->lc_alg = optarg; break;
		case 'P': c->lc_certs = optarg; break;
		case 'C': c->lc_cert = optarg; break;
		case 'K': c->lc_key = optarg; break;
		case 'A': c->lc_ca = optarg; break;
		case 'm': c->lc_method = optarg; break;
		case 'b': c->lc_body = optarg; break;
		case 's': c->lc_subject = optarg; break;
		case 'B': c->lc_bundle = optarg; break;
		case 'z': c->lc_azp = optarg; break;
		case 't': c->lc_ttl = atof(optarg); break;
		case 'T': c->lc_threads = atoi(optarg); break;
		case 'l': c->lc_label = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (optind != argc || c->lc_url == NULL || conf_url(c) != 0) {
		fprintf(stderr, "lbload: --url https://HOST:PORT/PATH or http://... is required\n");
		return -1;
	}
	if (c->lc_conns < 1 || c->lc_conns > LBL_CONNS_MAX || c->lc_duration <= 0 ||
	    c->lc_warmup < 0 || c->lc_rate < 0 || c->lc_ttl < 1 ||
	    (c->lc_kind != LBL_GENERIC && c->lc_tokens == 0) ||
	    (strcmp(c->lc_alg, "es256") != 0 && strcmp(c->lc_alg, "sm2") != 0 &&
	    strcmp(c->lc_alg, "eddsa") != 0) || ((c->lc_cert == NULL) != (c->lc_key == NULL))) {
		fprintf(stderr, "lbload: bad option value (see --help)\n");
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct lbl_conf	 c;
	struct lbl_run	 r = { .r_conf = &c };
	struct event_config *cfg = NULL;
	struct timeval	 tv;
	uint64_t	 t;
	double		 mint_s = 0;
	size_t		 i;
	int		 ret = 1;

	if (conf_parse(&c, argc, argv) != 0) {
		usage(stderr);
		return 2;
	}
	if (run_resolve(&r) != 0 || (c.lc_tls && run_tls(&r) != 0))
		goto done;
	t = now_ns();
	if (c.lc_kind == LBL_GENERIC) {
		if (run_generic(&r) != 0)
			goto done;
	} else {
		if (mint_all(&c, &r.r_reqs) != 0)
			goto done;
		r.r_nreqs = c.lc_tokens;
	}
	mint_s = (double)(now_ns() - t) / 1e9;
	/*
	 * A fixed rate needs timers that fire when due: the precise timer
	 * (timerfd) instead of epoll's millisecond timeout.
	 */
	if ((cfg = event_config_new()) == NULL ||
	    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) != 0 ||
	    (r.r_base = event_base_new_with_config(cfg)) == NULL ||
	    (r.r_conns = calloc((size_t)c.lc_conns, sizeof(*r.r_conns))) == NULL ||
	    (r.r_phase = evtimer_new(r.r_base, run_phase_cb, &r)) == NULL)
		goto done;
	r.r_t0 = now_ns();
	r.r_tmeasure = r.r_t0 + (uint64_t)(c.lc_warmup * 1e9);
	r.r_tend = c.lc_rate > 0 ? r.r_tmeasure + (uint64_t)(c.lc_duration * 1e9) : UINT64_MAX;
	for (i = 0; i < (size_t)c.lc_conns; i++) {
		r.r_conns[i] = (struct lbl_conn){ .cn_run = &r, .cn_id = (int)i };
		if ((r.r_conns[i].cn_body = evbuffer_new()) == NULL ||
		    (r.r_conns[i].cn_timer = evtimer_new(r.r_base, conn_timer_cb,
		    &r.r_conns[i])) == NULL)
			goto done;
		conn_start(&r.r_conns[i]);
	}
	tv.tv_sec = (time_t)c.lc_warmup;
	tv.tv_usec = (suseconds_t)((c.lc_warmup - (double)tv.tv_sec) * 1e6);
	evtimer_add(r.r_phase, &tv);
	event_base_dispatch(r.r_base);
	if (r.r_phase_no == 0) {
		/* The warm-up used up the tokens, or no connection could open. */
		r.r_tmeasure = r.r_tstop = now_ns();
	}
	if (r.r_tstop == 0)
		r.r_tstop = now_ns();
	r.r_phase_no = 3;
	run_report(&r, mint_s);
	ret = r.r_ok > 0 ? 0 : 1;
done:
	if (r.r_conns != NULL)
		for (i = 0; i < (size_t)c.lc_conns; i++) {
			if (r.r_conns[i].cn_bev != NULL)
				bufferevent_free(r.r_conns[i].cn_bev);
			if (r.r_conns[i].cn_timer != NULL)
				event_free(r.r_conns[i].cn_timer);
			if (r.r_conns[i].cn_body != NULL)
				evbuffer_free(r.r_conns[i].cn_body);
		}
	free(r.r_conns);
	for (i = 0; i < r.r_nreqs; i++)
		free(r.r_reqs[i].rq_buf);
	if (r.r_reqs != NULL && r.r_nreqs == 0)
		free(r.r_reqs[0].rq_buf);
	free(r.r_reqs);
	if (r.r_phase != NULL)
		event_free(r.r_phase);
	if (r.r_base != NULL)
		event_base_free(r.r_base);
	if (cfg != NULL)
		event_config_free(cfg);
	SSL_CTX_free(r.r_ctx);
	return ret;
}
