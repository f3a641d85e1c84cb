/*
 * etcd.c - an etcd v3 client over the JSON gateway every etcd member
 * serves next to gRPC (POST /v3/kv/txn, /v3/kv/range, /v3/lease/grant,
 * /v3/watch ...: protobuf messages as JSON, bytes in base64, int64 as
 * decimal strings, false and 0 left out).
 *
 * The client has a thread of its own running an event loop with libevent's
 * HTTP client, so that callers on any thread (the event loops of the
 * daemon, the etcd thread itself) hand a call over under a lock and get
 * the answer posted back to their loop.  Calls go to one member, the one
 * in use; when it cannot be reached, times out or says it has no leader,
 * the call moves on to the next member until its deadline.  A member that
 * failed is left for the next one, so every call after it skips it too.
 *
 * Each member gets a few keep-alive connections: libevent sends one request
 * at a time on a connection, and consent claims of many exchanges are in
 * flight at once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

#include "cluster.h"

#define ETCD_CONNS		8	/* keep-alive connections per member */
#define ETCD_STREAM_S		(24 * 3600)	/* a watch may be idle this long */
#define ETCD_ANSWER_MAX		(64 << 20)	/* bytes of one answer */
#define ETCD_LINE_MAX		(16 << 20)	/* bytes of one streamed message */
#define ETCD_ROUND_PAUSE_MS	100	/* between two rounds of every member */

static const char *const etcd_op_names[ETCD_OP_N] = {
	"range", "txn", "put", "lease", "watch"
};
static const char *const etcd_status_names[] = { "ok", "refused", "unavailable" };
/* Seconds, from a loopback answer to the deadline. */
static const double etcd_bounds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5
};
#define ETCD_NBOUNDS	(sizeof(etcd_bounds) / sizeof(etcd_bounds[0]))

struct etcd_member {
	char			 em_host[128];
	uint16_t		 em_port;
	char			 em_hostport[140];	/* the Host header */
	struct evhttp_connection *em_conns[ETCD_CONNS];
	int			 em_busy[ETCD_CONNS];	/* requests under way on each */
};

struct etcd_call {
	struct etcd		*ec_etcd;
	enum etcd_op		 ec_op;
	char			 ec_path[64];
	char			*ec_body;
	uint64_t		 ec_t0_us;
	uint64_t		 ec_deadline_us;
	struct event_base	*ec_base;
	etcd_done_fn		 ec_fn;
	void			*ec_arg;
	size_t			 ec_member, ec_conn;	/* where it was sent */
	size_t			 ec_tries;		/* members that failed it */
	/* a stream */
	etcd_line_fn		 ec_line;
	etcd_end_fn		 ec_end;
	struct evhttp_connection *ec_sconn;
	struct evbuffer		*ec_acc;	/* a message not complete yet */
	bool			 ec_ended;
	/* the outcome */
	enum etcd_status	 ec_status;
	json_t			*ec_res;
	char			 ec_msg[200];
	struct etcd_call	*ec_next;		/* handed over, under et_lock */
	struct etcd_call	*ec_lprev, *ec_lnext;	/* et_live */
};

struct etcd {
	pthread_t		 et_thread;
	bool			 et_started;
	struct event_base	*et_base;
	struct event		*et_wake;
	pthread_mutex_t		 et_lock;
	struct etcd_call	*et_head, *et_tail;	/* handed over, under et_lock */
	bool			 et_stop;
	struct etcd_member	 et_members[ETCD_ENDPOINTS_MAX];
	size_t			 et_nmembers;
	size_t			 et_cur;		/* the member in use (etcd thread) */
	/*
	 * Calls the thread has taken and not yet handed back (etcd thread):
	 * etcd_free frees them, for their requests die with the connections.
	 */
	struct etcd_call	*et_live;
	/* counters for the metrics, any thread */
	_Atomic uint64_t	 et_count[ETCD_OP_N][3];
	_Atomic uint64_t	 et_bucket[ETCD_OP_N][ETCD_NBOUNDS + 1];
	_Atomic uint64_t	 et_sum_us[ETCD_OP_N];
};

static void	etcd_send(struct etcd_call *);

static void
etcd_resend(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	etcd_send(arg);
}

char *
etcd_b64(const void *p, size_t n)
{
	char	*out;

	if ((out = malloc(4 * ((n + 2) / 3) + 1)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

int
etcd_unb64(const json_t *s, uint8_t **out, size_t *outlen)
{
	const char	*t;
	size_t		 n, pad = 0;
	int		 len;

	*out = NULL;
	if (s == NULL) {	/* the gateway leaves empty bytes out */
		if ((*out = calloc(1, 1)) == NULL)
			return -1;
		*outlen = 0;
		return 0;
	}
	if (!json_is_string(s) || (n = json_string_length(s)) % 4 != 0)
		return -1;
	t = json_string_value(s);
	if (n > 0 && t[n - 1] == '=')
		pad++;
	if (n > 1 && t[n - 2] == '=')
		pad++;
	if ((*out = malloc(n / 4 * 3 + 1)) == NULL)
		return -1;
	/* EVP_DecodeBlock counts the padding as zero bytes: take them off. */
	if ((len = EVP_DecodeBlock(*out, (const unsigned char *)t, (int)n)) < 0 ||
	    (size_t)len < pad) {
		free(*out);
		*out = NULL;
		return -1;
	}
	*outlen = (size_t)len - pad;
	(*out)[*outlen] = '\0';
	return 0;
}

int64_t
etcd_int(const json_t *obj, const char *key)
{
	const json_t	*v = json_object_get(obj, key);

	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	return 0;
}

static void
etcd_call_free(struct etcd_call *ec)
{
	if (ec == NULL)
		return;
	free(ec->ec_body);
	json_decref(ec->ec_res);
	if (ec->ec_acc != NULL)
		evbuffer_free(ec->ec_acc);
	if (ec->ec_sconn != NULL)
		evhttp_connection_free(ec->ec_sconn);
	free(ec);
}

static void
etcd_live_add(struct etcd_call *ec)
{
	struct etcd	*et = ec->ec_etcd;

	ec->ec_lprev = NULL;
	ec->ec_lnext = et->et_live;
	if (et->et_live != NULL)
		et->et_live->ec_lprev = ec;
	et->et_live = ec;
}

static void
etcd_live_del(struct etcd_call *ec)
{
	if (ec->ec_lprev != NULL)
		ec->ec_lprev->ec_lnext = ec->ec_lnext;
	else if (ec->ec_etcd->et_live == ec)
		ec->ec_etcd->et_live = ec->ec_lnext;
	if (ec->ec_lnext != NULL)
		ec->ec_lnext->ec_lprev = ec->ec_lprev;
	ec->ec_lprev = ec->ec_lnext = NULL;
}

/* A call the thread has taken ends without an answer to anyone (etcd thread). */
static void
etcd_call_drop(void *arg)
{
	struct etcd_call	*ec = arg;

	etcd_live_del(ec);
	etcd_call_free(ec);
}

/* On the caller's loop: the call's outcome reaches its owner. */
static void
etcd_deliver(void *arg)
{
	struct etcd_call	*ec = arg;

	ec->ec_fn(ec->ec_arg, ec->ec_status, ec->ec_res, ec->ec_msg);
	etcd_call_free(ec);
}

static void
etcd_count(struct etcd *et, enum etcd_op op, enum etcd_status st, uint64_t us)
{
	size_t	b;

	for (b = 0; b < ETCD_NBOUNDS && (double)us / 1e6 > etcd_bounds[b]; b++)
		;
	atomic_fetch_add(&et->et_count[op][st], 1);
	atomic_fetch_add(&et->et_bucket[op][b], 1);
	atomic_fetch_add(&et->et_sum_us[op], us);
}

/* Ends a (non-streaming) call with its status set (etcd thread). */
static void
etcd_finish(struct etcd_call *ec)
{
	etcd_live_del(ec);
	etcd_count(ec->ec_etcd, ec->ec_op, ec->ec_status, now_us_mono() - ec->ec_t0_us);
	if (ec->ec_base == NULL) {
		etcd_deliver(ec);
		return;
	}
	if (loop_post(ec->ec_base, etcd_deliver, ec) != 0) {
		/* The caller's loop is gone: the daemon is exiting. */
		log_warnx("etcd: an answer to %s could not be handed back", ec->ec_path);
		etcd_call_free(ec);
	}
}

/*
 * The member of ec failed it: the next one is in use from now on (unless
 * another call moved on already), and ec is sent there while its deadline
 * lasts.
 */
static void
etcd_next_member(struct etcd_call *ec, const char *why)
{
	struct etcd	*et = ec->ec_etcd;

	if (et->et_cur == ec->ec_member) {
		et->et_cur = (et->et_cur + 1) % et->et_nmembers;
		log_debug("etcd: %s:%u: %s; now using %s", et->et_members[ec->ec_member].em_host,
		    et->et_members[ec->ec_member].em_port, why,
		    et->et_members[et->et_cur].em_hostport);
	}
	if (now_us_mono() >= ec->ec_deadline_us) {
		ec->ec_status = ETCD_UNAVAILABLE;
		snprintf(ec->ec_msg, sizeof(ec->ec_msg), "no etcd member answered in time (last: "
		    "%s)", why);
		etcd_finish(ec);
		return;
	}
	/*
	 * Members that refuse connections fail a call at once: after a round
	 * of all of them it waits a little rather than spin until its deadline.
	 */
	if (++ec->ec_tries % et->et_nmembers == 0) {
		struct timeval	pause = { 0, ETCD_ROUND_PAUSE_MS * 1000 };

		if (event_base_once(et->et_base, -1, EV_TIMEOUT, etcd_resend, ec, &pause) == 0)
			return;
	}
	etcd_send(ec);
}

/* The answer body as JSON; NULL when it is not. */
static json_t *
etcd_parse(struct evbuffer *b)
{
	size_t	n = evbuffer_get_length(b);

	if (n == 0 || n > ETCD_ANSWER_MAX)
		return NULL;
	return json_loadb((const char *)evbuffer_pullup(b, -1), n, 0, NULL);
}

/*
 * The gRPC codes that mean "ask another member": Unavailable (no leader,
 * stopping), DeadlineExceeded (a request timed out in raft), Unknown (the
 * gateway lost its own connection to the member).
 */
static bool
etcd_retryable(int http, const json_t *res)
{
	int64_t	code = res != NULL ? etcd_int(res, "code") : 0;

	if (res == NULL || !json_is_object(res))
		return true;
	return code == 14 || code == 4 || code == 2 || http == 502 || http == 503 ||
	    http == 504;
}

static void
etcd_answer(struct evhttp_request *req, void *arg)
{
	struct etcd_call	*ec = arg;
	struct etcd_member	*em = &ec->ec_etcd->et_members[ec->ec_member];
	json_t			*res;
	int			 code;
	char			 why[160];

	em->em_busy[ec->ec_conn]--;
	code = req != NULL ? evhttp_request_get_response_code(req) : 0;
	if (code == 0) {
		etcd_next_member(ec, "no answer (connection failed or timed out)");
		return;
	}
	res = etcd_parse(evhttp_request_get_input_buffer(req));
	if (code == 200 && res != NULL) {
		ec->ec_status = ETCD_OK;
		ec->ec_res = res;
		etcd_finish(ec);
		return;
	}
	if (etcd_retryable(code, res)) {
		snprintf(why, sizeof(why), "HTTP %d: %s", code,
		    res != NULL && json_is_string(json_object_get(res, "error")) ?
		    json_string_value(json_object_get(res, "error")) : "not etcd's answer");
		json_decref(res);
		etcd_next_member(ec, why);
		return;
	}
	ec->ec_status = ETCD_REFUSED;
	ec->ec_res = res;
	snprintf(ec->ec_msg, sizeof(ec->ec_msg), "etcd refused %s: %s", ec->ec_path,
	    json_is_string(json_object_get(res, "error")) ?
	    json_string_value(json_object_get(res, "error")) : "(no reason)");
	etcd_finish(ec);
}

/* The request of ec for em, its body and headers set; NULL without memory. */
static struct evhttp_request *
etcd_request(struct etcd_call *ec, struct etcd_member *em,
    void (*cb)(struct evhttp_request *, void *))
{
	struct evhttp_request	*req;
	struct evkeyvalq	*h;

	if ((req = evhttp_request_new(cb, ec)) == NULL)
		return NULL;
	h = evhttp_request_get_output_headers(req);
	if (evhttp_add_header(h, "Host", em->em_hostport) != 0 ||
	    evhttp_add_header(h, "Content-Type", "application/json") != 0 ||
	    evbuffer_add(evhttp_request_get_output_buffer(req), ec->ec_body,
	    strlen(ec->ec_body)) != 0) {
		evhttp_request_free(req);
		return NULL;
	}
	return req;
}

/* A connection to em made for this client's loop; NULL without memory. */
static struct evhttp_connection *
etcd_connect(struct etcd *et, struct etcd_member *em, int timeout_s)
{
	struct evhttp_connection	*conn;

	if ((conn = evhttp_connection_base_new(et->et_base, NULL, em->em_host,
	    em->em_port)) == NULL)
		return NULL;
	evhttp_connection_set_retries(conn, 0);
	if (timeout_s > 0)
		evhttp_connection_set_timeout(conn, timeout_s);
	return conn;
}

/* Sends ec to the member in use, on its least busy connection (etcd thread). */
static void
etcd_send(struct etcd_call *ec)
{
	struct etcd		*et = ec->ec_etcd;
	struct etcd_member	*em = &et->et_members[et->et_cur];
	struct evhttp_request	*req = NULL;
	struct timeval		 tv;
	uint64_t		 left, now = now_us_mono();
	size_t			 i, best = 0;

	ec->ec_member = et->et_cur;
	for (i = 1; i < ETCD_CONNS; i++)
		if (em->em_busy[i] < em->em_busy[best])
			best = i;
	ec->ec_conn = best;
	if (em->em_conns[best] == NULL &&
	    (em->em_conns[best] = etcd_connect(et, em, 0)) == NULL)
		goto fail;
	/* One member gets ETCD_TRY_MS of the deadline, so that the next gets a turn. */
	left = ec->ec_deadline_us > now ? ec->ec_deadline_us - now : 0;
	if (left > (uint64_t)ETCD_TRY_MS * 1000)
		left = (uint64_t)ETCD_TRY_MS * 1000;
	if (left < 50000)
		left = 50000;
	tv.tv_sec = (time_t)(left / 1000000);
	tv.tv_usec = (suseconds_t)(left % 1000000);
	evhttp_connection_set_timeout_tv(em->em_conns[best], &tv);
	if ((req = etcd_request(ec, em, etcd_answer)) == NULL)
		goto fail;
	if (evhttp_make_request(em->em_conns[best], req, EVHTTP_REQ_POST, ec->ec_path) != 0)
		goto fail;	/* evhttp freed req */
	em->em_busy[best]++;
	return;
fail:
	ec->ec_status = ETCD_UNAVAILABLE;
	snprintf(ec->ec_msg, sizeof(ec->ec_msg), "cannot make a request to %s",
	    em->em_hostport);
	etcd_finish(ec);
}

/* A stream ends once: its owner hears why, and the next member is in use. */
static void
etcd_stream_end(struct etcd_call *ec, const char *why)
{
	struct etcd	*et = ec->ec_etcd;

	if (ec->ec_ended)
		return;
	ec->ec_ended = true;
	if (et->et_cur == ec->ec_member)
		et->et_cur = (et->et_cur + 1) % et->et_nmembers;
	etcd_count(et, ETCD_OP_WATCH, ETCD_UNAVAILABLE, 0);
	ec->ec_end(ec->ec_arg, why);
}

/* Splits what arrived of a stream into its messages, one JSON object a line. */
static void
etcd_stream_chunk(struct evhttp_request *req, void *arg)
{
	struct etcd_call	*ec = arg;
	struct evbuffer		*in = evhttp_request_get_input_buffer(req);
	struct evbuffer_ptr	 nl;
	json_t			*res;
	size_t			 n;

	evbuffer_add_buffer(ec->ec_acc, in);
	for (;;) {
		nl = evbuffer_search(ec->ec_acc, "\n", 1, NULL);
		if (nl.pos < 0)
			break;
		n = (size_t)nl.pos;
		res = json_loadb((const char *)evbuffer_pullup(ec->ec_acc, (ev_ssize_t)n), n, 0,
		    NULL);
		evbuffer_drain(ec->ec_acc, n + 1);
		if (res == NULL) {
			log_warnx("etcd: a watch message is not JSON; ignored");
			continue;
		}
		ec->ec_line(ec->ec_arg, res);
		json_decref(res);
	}
	if (evbuffer_get_length(ec->ec_acc) > ETCD_LINE_MAX) {
		log_warnx("etcd: a watch message exceeds %d bytes; the stream is dropped",
		    ETCD_LINE_MAX);
		evbuffer_drain(ec->ec_acc, evbuffer_get_length(ec->ec_acc));
	}
}

/* The whole stream's answer: it closed (or never opened). */
static void
etcd_stream_done(struct evhttp_request *req, void *arg)
{
	struct etcd_call	*ec = arg;
	char			 why[64];

	snprintf(why, sizeof(why), "the stream closed (HTTP %d)",
	    req != NULL ? evhttp_request_get_response_code(req) : 0);
	etcd_stream_end(ec, why);
	/*
	 * The connection cannot be freed from inside its own callback; it
	 * goes with the call, from the loop.
	 */
	if (loop_post(ec->ec_etcd->et_base, etcd_call_drop, ec) != 0)
		log_warnx("etcd: a closed stream could not be freed");
}

static void
etcd_stream_open(struct etcd_call *ec)
{
	struct etcd		*et = ec->ec_etcd;
	struct etcd_member	*em = &et->et_members[et->et_cur];
	struct evhttp_request	*req;

	ec->ec_member = et->et_cur;
	if ((ec->ec_sconn = etcd_connect(et, em, ETCD_STREAM_S)) == NULL ||
	    (req = etcd_request(ec, em, etcd_stream_done)) == NULL) {
		etcd_stream_end(ec, "cannot make the request");
		etcd_call_drop(ec);
		return;
	}
	evhttp_request_set_chunked_cb(req, etcd_stream_chunk);
	if (evhttp_make_request(ec->ec_sconn, req, EVHTTP_REQ_POST, ec->ec_path) != 0) {
		etcd_stream_end(ec, "cannot send the request");
		etcd_call_drop(ec);
		return;
	}
	etcd_count(et, ETCD_OP_WATCH, ETCD_OK, 0);
}

/* Takes the calls handed over and starts them (etcd thread). */
static void
etcd_wake(evutil_socket_t fd, short what, void *arg)
{
	struct etcd		*et = arg;
	struct etcd_call	*ec, *next;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&et->et_lock);
	ec = et->et_head;
	et->et_head = et->et_tail = NULL;
	pthread_mutex_unlock(&et->et_lock);
	for (; ec != NULL; ec = next) {
		next = ec->ec_next;
		ec->ec_next = NULL;
		etcd_live_add(ec);
		if (ec->ec_line != NULL)
			etcd_stream_open(ec);
		else
			etcd_send(ec);
	}
}

static void *
etcd_main(void *arg)
{
	struct etcd	*et = arg;

	event_base_loop(et->et_base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* Parses one http://HOST:PORT of the list into em. */
static int
etcd_member_parse(struct etcd_member *em, const char *url, size_t len, char *err,
    size_t errlen)
{
	const char	*p = url, *colon;
	char		 port[8];
	size_t		 hl;
	long		 v;
	char		*end;
	int		 whole = (int)len;	/* the entry as listed, for the messages */

	if (len > 7 && strncmp(p, "http://", 7) == 0) {
		p += 7;
		len -= 7;
	}
	while (len > 0 && p[len - 1] == '/')
		len--;
	colon = memrchr(p, ':', len);
	if (colon == NULL || (hl = (size_t)(colon - p)) == 0 || hl >= sizeof(em->em_host) ||
	    len - hl - 1 == 0 || len - hl - 1 >= sizeof(port)) {
		snprintf(err, errlen, "etcd: \"%.*s\" is not http://HOST:PORT", whole, url);
		return -1;
	}
	memcpy(em->em_host, p, hl);
	em->em_host[hl] = '\0';
	memcpy(port, colon + 1, len - hl - 1);
	port[len - hl - 1] = '\0';
	v = strtol(port, &end, 10);
	if (*end != '\0' || v <= 0 || v > 65535) {
		snprintf(err, errlen, "etcd: \"%.*s\" has no valid port", whole, url);
		return -1;
	}
	em->em_port = (uint16_t)v;
	/* The Host header is the list's HOST:PORT (ports as typed stay as typed). */
	memcpy(em->em_hostport, p, len);
	em->em_hostport[len] = '\0';
	return 0;
}

/* Parses the member list urls into et's members. */
static int
etcd_members(struct etcd *et, const char *urls, char *err, size_t errlen)
{
	const char	*p = urls, *comma;
	size_t		 len;

	while (*p != '\0') {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len > 0) {
			if (et->et_nmembers == ETCD_ENDPOINTS_MAX) {
				snprintf(err, errlen, "etcd: more than %d members listed",
				    ETCD_ENDPOINTS_MAX);
				return -1;
			}
			if (strncmp(p, "https://", 8) == 0) {
				snprintf(err, errlen, "etcd: \"%.*s\": only http:// members are "
				    "supported (keep etcd's client port on a private network)",
				    (int)len, p);
				return -1;
			}
			if (etcd_member_parse(&et->et_members[et->et_nmembers], p, len, err,
			    errlen) != 0)
				return -1;
			et->et_nmembers++;
		}
		p += len + (comma != NULL ? 1 : 0);
	}
	if (et->et_nmembers == 0) {
		snprintf(err, errlen, "etcd: no member listed");
		return -1;
	}
	return 0;
}

int
etcd_urls_check(const char *urls, char *err, size_t errlen)
{
	struct etcd	*et;
	int		 ret;

	if ((et = calloc(1, sizeof(*et))) == NULL) {
		snprintf(err, errlen, "etcd: out of memory");
		return -1;
	}
	ret = etcd_members(et, urls, err, errlen);
	free(et);
	return ret;
}

struct etcd *
etcd_new(const char *urls, char *err, size_t errlen)
{
	struct etcd	*et, *ret = NULL;

	if ((et = calloc(1, sizeof(*et))) == NULL) {
		snprintf(err, errlen, "etcd: out of memory");
		return NULL;
	}
	pthread_mutex_init(&et->et_lock, NULL);
	if (etcd_members(et, urls, err, errlen) != 0)
		goto done;
	if ((et->et_base = event_base_new()) == NULL ||
	    (et->et_wake = event_new(et->et_base, -1, 0, etcd_wake, et)) == NULL) {
		snprintf(err, errlen, "etcd: cannot set up the client's event loop");
		goto done;
	}
	if (pthread_create(&et->et_thread, NULL, etcd_main, et) != 0) {
		snprintf(err, errlen, "etcd: cannot start the client's thread");
		goto done;
	}
	et->et_started = true;
	ret = et;
done:
	if (ret == NULL)
		etcd_free(et);
	return ret;
}

void
etcd_free(struct etcd *et)
{
	struct etcd_call	*ec, *next;
	size_t			 i, k;

	if (et == NULL)
		return;
	if (et->et_started) {
		pthread_mutex_lock(&et->et_lock);
		et->et_stop = true;
		pthread_mutex_unlock(&et->et_lock);
		event_base_loopbreak(et->et_base);
		pthread_join(et->et_thread, NULL);
	}
	for (ec = et->et_head; ec != NULL; ec = next) {
		next = ec->ec_next;
		etcd_call_free(ec);
	}
	/* Freeing a connection frees its requests without calling back. */
	for (i = 0; i < et->et_nmembers; i++)
		for (k = 0; k < ETCD_CONNS; k++)
			if (et->et_members[i].em_conns[k] != NULL)
				evhttp_connection_free(et->et_members[i].em_conns[k]);
	while (et->et_live != NULL)
		etcd_call_drop(et->et_live);
	if (et->et_wake != NULL)
		event_free(et->et_wake);
	if (et->et_base != NULL)
		event_base_free(et->et_base);
	pthread_mutex_destroy(&et->et_lock);
	free(et);
}

/* Hands ec to the client's thread; -1 (ec freed) when it is stopping. */
static int
etcd_queue(struct etcd *et, struct etcd_call *ec)
{
	pthread_mutex_lock(&et->et_lock);
	if (et->et_stop) {
		pthread_mutex_unlock(&et->et_lock);
		etcd_call_free(ec);
		return -1;
	}
	if (et->et_tail != NULL)
		et->et_tail->ec_next = ec;
	else
		et->et_head = ec;
	et->et_tail = ec;
	pthread_mutex_unlock(&et->et_lock);
	/* event_active takes the base's lock and wakes its loop from any thread. */
	event_active(et->et_wake, EV_TIMEOUT, 0);
	return 0;
}

static struct etcd_call *
etcd_call_new(struct etcd *et, const char *path, json_t *body)
{
	struct etcd_call	*ec;

	if ((ec = calloc(1, sizeof(*ec))) == NULL ||
	    (ec->ec_body = json_dumps(body, JSON_COMPACT)) == NULL) {
		free(ec);
		json_decref(body);
		return NULL;
	}
	json_decref(body);
	ec->ec_etcd = et;
	snprintf(ec->ec_path, sizeof(ec->ec_path), "%s", path);
	return ec;
}

int
etcd_call(struct etcd *et, struct event_base *base, enum etcd_op op, const char *path,
    json_t *body, unsigned timeout_ms, etcd_done_fn fn, void *arg)
{
	struct etcd_call	*ec;

	if ((ec = etcd_call_new(et, path, body)) == NULL)
		return -1;
	ec->ec_op = op;
	ec->ec_base = base;
	ec->ec_fn = fn;
	ec->ec_arg = arg;
	ec->ec_t0_us = now_us_mono();
	ec->ec_deadline_us = ec->ec_t0_us + (uint64_t)timeout_ms * 1000;
	return etcd_queue(et, ec);
}

int
etcd_stream(struct etcd *et, const char *path, json_t *body, etcd_line_fn line,
    etcd_end_fn end, void *arg)
{
	struct etcd_call	*ec;

	if ((ec = etcd_call_new(et, path, body)) == NULL)
		return -1;
	ec->ec_op = ETCD_OP_WATCH;
	ec->ec_line = line;
	ec->ec_end = end;
	ec->ec_arg = arg;
	if ((ec->ec_acc = evbuffer_new()) == NULL) {
		etcd_call_free(ec);
		return -1;
	}
	return etcd_queue(et, ec);
}

void
etcd_metrics(struct etcd *et, struct evbuffer *out)
{
	uint64_t	cum;
	size_t		op, s, b;

	evbuffer_add_printf(out, "# HELP lianban_etcd_requests_total calls to etcd, by operation "
	    "and result (watch: streams opened as ok, closed as unavailable)\n"
	    "# TYPE lianban_etcd_requests_total counter\n");
	for (op = 0; op < ETCD_OP_N; op++)
		for (s = 0; s < 3; s++)
			evbuffer_add_printf(out, "lianban_etcd_requests_total{op=\"%s\","
			    "result=\"%s\"} %llu\n", etcd_op_names[op], etcd_status_names[s],
			    (unsigned long long)atomic_load(&et->et_count[op][s]));
	evbuffer_add_printf(out, "# HELP lianban_etcd_request_seconds time from a call to etcd "
	    "to its outcome, failovers included\n"
	    "# TYPE lianban_etcd_request_seconds histogram\n");
	for (op = 0; op < ETCD_OP_WATCH; op++) {
		cum = 0;
		for (b = 0; b < ETCD_NBOUNDS; b++) {
			cum += atomic_load(&et->et_bucket[op][b]);
			evbuffer_add_printf(out, "lianban_etcd_request_seconds_bucket{op=\"%s\","
			    "le=\"%g\"} %llu\n", etcd_op_names[op], etcd_bounds[b],
			    (unsigned long long)cum);
		}
		cum += atomic_load(&et->et_bucket[op][ETCD_NBOUNDS]);
		evbuffer_add_printf(out, "lianban_etcd_request_seconds_bucket{op=\"%s\","
		    "le=\"+Inf\"} %llu\n", etcd_op_names[op], (unsigned long long)cum);
		evbuffer_add_printf(out, "lianban_etcd_request_seconds_sum{op=\"%s\"} %.6f\n",
		    etcd_op_names[op], (double)atomic_load(&et->et_sum_us[op]) / 1e6);
		evbuffer_add_printf(out, "lianban_etcd_request_seconds_count{op=\"%s\"} %llu\n",
		    etcd_op_names[op], (unsigned long long)cum);
	}
}
