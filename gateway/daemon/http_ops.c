/*
 * http_ops.c - GET /v1/ops/summary?hours=N (admin): the platform's traffic
 * over the last hours, for the console's operations view.
 *
 * The summary is derived from the journal: the time index finds the first
 * record of the window, and the records are walked from the newest down.
 * Per minute it counts exchanges by bundle ("exchange" records), department
 * fetches by department ("item" records, and the "verify" records of
 * verifications) and outcomes by result code (those and "deny" records); per department the latency percentiles and errors of
 * its fetches; and the denial reasons ("deny" records by code).
 *
 * The cost of one request is bounded: at most OPS_SCAN_MAX records are
 * read, on a worker.  When the window holds more, the newest OPS_SCAN_MAX
 * are counted and the answer says so ("complete": false, and
 * "covered_from_ms" the time of the oldest record counted).  The answer
 * holds counts only, no record and no pseudonym, so it is not journaled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gateway.h"

#define OPS_SCAN_MAX		100000	/* records read per request at most */
#define OPS_HOURS_MAX		24
#define OPS_HOURS_DEFAULT	3
#define OPS_MINUTE_MS		60000
#define OPS_KEYS_MAX		32	/* series of one dimension; more go to "other" */
#define OPS_OTHER		"other"

/* One named series of per-minute counts. */
struct ops_series {
	char		 os_key[LB_ID_MAX];
	uint32_t	*os_counts;		/* op_minutes of them */
	uint64_t	 os_total;
	/* Department fetches only: their errors and latencies. */
	uint64_t	 os_errors;
	int64_t		*os_lat;
	size_t		 os_nlat, os_caplat;
};

struct ops_dim {
	struct ops_series	od_series[OPS_KEYS_MAX + 1];	/* + "other" */
	size_t			od_n;
	uint64_t		od_total;
};

struct ops_read {
	struct gw		*op_gw;
	struct evhttp_request	*op_req;
	uint64_t		 op_since_ms, op_until_ms;
	size_t			 op_minutes;
	size_t			 op_scanned;
	bool			 op_complete;
	uint64_t		 op_oldest_ms;
	struct ops_dim		 op_bundles, op_depts, op_codes, op_denials;
	msgpack_zone		 op_scratch;	/* one record at a time */
	msgpack_zone		 op_zone;	/* the answer */
	msgpack_object		 op_body;
	bool			 op_failed;
	char			 op_msg[128];
};

static void
ops_dim_free(struct ops_dim *od)
{
	size_t	i;

	for (i = 0; i < od->od_n; i++) {
		free(od->od_series[i].os_counts);
		free(od->od_series[i].os_lat);
	}
}

static void
ops_free(struct ops_read *op)
{
	ops_dim_free(&op->op_bundles);
	ops_dim_free(&op->op_depts);
	ops_dim_free(&op->op_codes);
	ops_dim_free(&op->op_denials);
	msgpack_zone_destroy(&op->op_scratch);
	msgpack_zone_destroy(&op->op_zone);
	op->op_gw->gw_inflight--;
	free(op);
}

/* The series of key in od, made on first use; NULL when out of memory. */
static struct ops_series *
ops_series(struct ops_read *op, struct ops_dim *od, const msgpack_object *key)
{
	struct ops_series	*os;
	char			 k[LB_ID_MAX];
	size_t			 i;

	if (key == NULL || mpk_obj_str(key, k, sizeof(k)) != 0 || k[0] == '\0')
		snprintf(k, sizeof(k), "%s", OPS_OTHER);
	for (i = 0; i < od->od_n; i++)
		if (strcmp(od->od_series[i].os_key, k) == 0)
			return &od->od_series[i];
	/* The last slot is "other", for keys beyond the first OPS_KEYS_MAX. */
	if (od->od_n >= OPS_KEYS_MAX) {
		for (i = 0; i < od->od_n; i++)
			if (strcmp(od->od_series[i].os_key, OPS_OTHER) == 0)
				return &od->od_series[i];
		snprintf(k, sizeof(k), "%s", OPS_OTHER);
	}
	os = &od->od_series[od->od_n];
	if ((os->os_counts = calloc(op->op_minutes, sizeof(*os->os_counts))) == NULL)
		return NULL;
	snprintf(os->os_key, sizeof(os->os_key), "%s", k);
	od->od_n++;
	return os;
}

/* Counts one record at minute m of the window in od's series of key. */
static struct ops_series *
ops_count(struct ops_read *op, struct ops_dim *od, const msgpack_object *key, size_t m)
{
	struct ops_series	*os;

	if ((os = ops_series(op, od, key)) == NULL)
		return NULL;
	os->os_counts[m]++;
	os->os_total++;
	od->od_total++;
	return os;
}

static int
ops_latency(struct ops_series *os, int64_t us)
{
	int64_t	*p;
	size_t	 cap;

	if (os->os_nlat == os->os_caplat) {
		cap = os->os_caplat == 0 ? 64 : os->os_caplat * 2;
		if ((p = realloc(os->os_lat, cap * sizeof(*p))) == NULL)
			return -1;
		os->os_lat = p;
		os->os_caplat = cap;
	}
	os->os_lat[os->os_nlat++] = us;
	return 0;
}

/* One record of the window (worker thread). */
static int
ops_record(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct ops_read		*op = arg;
	struct ops_series	*os;
	msgpack_object		 r;
	const msgpack_object	*kind, *code;
	uint64_t		 t_ms;
	int64_t			 us;
	size_t			 m;

	(void)seq;
	msgpack_zone_clear(&op->op_scratch);
	if (mpk_unpack(rec, len, &op->op_scratch, &r) != 0)
		return -1;
	/* journal_query hands over only records of the window; this is a guard. */
	if (mpk_get_u64(&r, "t_ms", &t_ms) != 0 || t_ms < op->op_since_ms)
		return 0;
	op->op_scanned++;
	if (op->op_oldest_ms == 0 || t_ms < op->op_oldest_ms)
		op->op_oldest_ms = t_ms;
	if ((m = (size_t)((t_ms - op->op_since_ms) / OPS_MINUTE_MS)) >= op->op_minutes)
		m = op->op_minutes - 1;
	kind = mpk_get(&r, "kind");
	code = mpk_get(&r, "code");
	if (mpk_str_eq(kind, "exchange")) {
		if (ops_count(op, &op->op_bundles, mpk_get(&r, "bundle"), m) == NULL)
			return -1;
	} else if (mpk_str_eq(kind, "item") || mpk_str_eq(kind, "verify")) {
		if ((os = ops_count(op, &op->op_depts, mpk_get(&r, "dept"), m)) == NULL ||
		    ops_count(op, &op->op_codes, code, m) == NULL)
			return -1;
		if (!mpk_str_eq(code, "ok"))
			os->os_errors++;
		if (mpk_get_i64(&r, "latency_us", &us) == 0 && ops_latency(os, us) != 0)
			return -1;
	} else if (mpk_str_eq(kind, "deny")) {
		if (ops_count(op, &op->op_codes, code, m) == NULL ||
		    ops_count(op, &op->op_denials, code, m) == NULL)
			return -1;
	}
	return 0;
}

static int
ops_cmp_i64(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile p of the sorted v[0..n-1], n > 0. */
static int64_t
ops_percentile(const int64_t *v, size_t n, unsigned p)
{
	size_t	rank = (n * p + 99) / 100;

	return v[rank == 0 ? 0 : rank - 1];
}

/* {"total": n, "series": {key: [count per minute]}} */
static msgpack_object
ops_dim_obj(struct ops_read *op, const struct ops_dim *od)
{
	struct mpk_map	 top, series;
	msgpack_object	 a;
	size_t		 i, k;

	mpk_map_init(&series, &op->op_zone, (uint32_t)od->od_n);
	for (i = 0; i < od->od_n; i++) {
		a = mpk_array(&op->op_zone, (uint32_t)op->op_minutes);
		for (k = 0; k < op->op_minutes; k++)
			a.via.array.ptr[k] = mpk_uint(od->od_series[i].os_counts[k]);
		mpk_map_put(&series, od->od_series[i].os_key, a);
	}
	mpk_map_init(&top, &op->op_zone, 2);
	mpk_map_put(&top, "total", mpk_uint(od->od_total));
	mpk_map_put(&top, "series", series.mm_obj);
	return top.mm_obj;
}

/* [{"dept", "items", "errors", "p50_us", "p90_us", "p99_us", "max_us"}] */
static msgpack_object
ops_depts_obj(struct ops_read *op)
{
	struct ops_series	*os;
	struct mpk_map		 m;
	msgpack_object		 a = mpk_array(&op->op_zone, (uint32_t)op->op_depts.od_n);
	size_t			 i;

	for (i = 0; i < op->op_depts.od_n; i++) {
		os = &op->op_depts.od_series[i];
		mpk_map_init(&m, &op->op_zone, 7);
		mpk_map_put(&m, "dept", mpk_str(os->os_key));
		mpk_map_put(&m, "items", mpk_uint(os->os_total));
		mpk_map_put(&m, "errors", mpk_uint(os->os_errors));
		if (os->os_nlat > 0) {
			qsort(os->os_lat, os->os_nlat, sizeof(*os->os_lat), ops_cmp_i64);
			mpk_map_put(&m, "p50_us", mpk_int(ops_percentile(os->os_lat, os->os_nlat, 50)));
			mpk_map_put(&m, "p90_us", mpk_int(ops_percentile(os->os_lat, os->os_nlat, 90)));
			mpk_map_put(&m, "p99_us", mpk_int(ops_percentile(os->os_lat, os->os_nlat, 99)));
			mpk_map_put(&m, "max_us", mpk_int(os->os_lat[os->os_nlat - 1]));
		}
		a.via.array.ptr[i] = m.mm_obj;
	}
	return a;
}

/* {code: count} */
static msgpack_object
ops_denials_obj(struct ops_read *op)
{
	struct mpk_map	m;
	size_t		i;

	mpk_map_init(&m, &op->op_zone, (uint32_t)op->op_denials.od_n);
	for (i = 0; i < op->op_denials.od_n; i++)
		mpk_map_put(&m, op->op_denials.od_series[i].os_key,
		    mpk_uint(op->op_denials.od_series[i].os_total));
	return m.mm_obj;
}

static void
ops_work(void *arg)
{
	struct ops_read		*op = arg;
	struct journal_filter	 f;
	struct mpk_map		 m;
	bool			 more = false;
	uint64_t		 next;

	/* The newest records first: a scan cut short still shows the last minutes. */
	memset(&f, 0, sizeof(f));
	f.jf_since_ms = op->op_since_ms;
	f.jf_until_ms = op->op_until_ms;
	f.jf_newest_first = true;
	do {
		f.jf_limit = OPS_SCAN_MAX - op->op_scanned;
		if (journal_query(op->op_gw->gw_journal, &f, ops_record, op, &more, &next) != 0) {
			op->op_failed = true;
			snprintf(op->op_msg, sizeof(op->op_msg), "the journal could not be read");
			return;
		}
		f.jf_has_before = true;
		f.jf_before = next;
	} while (more && op->op_scanned < OPS_SCAN_MAX);
	op->op_complete = !more;
	mpk_map_init(&m, &op->op_zone, 13);
	mpk_map_put(&m, "since_ms", mpk_uint(op->op_since_ms));
	mpk_map_put(&m, "until_ms", mpk_uint(op->op_until_ms));
	mpk_map_put(&m, "minute_ms", mpk_uint(OPS_MINUTE_MS));
	mpk_map_put(&m, "minutes", mpk_uint(op->op_minutes));
	mpk_map_put(&m, "scanned", mpk_uint(op->op_scanned));
	mpk_map_put(&m, "scan_limit", mpk_uint(OPS_SCAN_MAX));
	mpk_map_put(&m, "complete", mpk_bool(op->op_complete));
	mpk_map_put(&m, "covered_from_ms", mpk_uint(op->op_complete || op->op_oldest_ms == 0 ?
	    op->op_since_ms : op->op_oldest_ms));
	mpk_map_put(&m, "exchanges", ops_dim_obj(op, &op->op_bundles));
	mpk_map_put(&m, "items", ops_dim_obj(op, &op->op_depts));
	mpk_map_put(&m, "codes", ops_dim_obj(op, &op->op_codes));
	mpk_map_put(&m, "departments", ops_depts_obj(op));
	mpk_map_put(&m, "denials", ops_denials_obj(op));
	op->op_body = m.mm_obj;
}

static void
ops_done(void *arg)
{
	struct ops_read	*op = arg;

	if (op->op_failed)
		http_error(op->op_req, LB_E_JOURNAL_UNAVAILABLE, "%s", op->op_msg);
	else
		http_reply(op->op_req, 200, &op->op_body);
	ops_free(op);
}

void
http_ops_summary(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	struct evkeyvalq	 q;
	struct ops_read		*op;
	const char		*query;
	uint64_t		 hours = OPS_HOURS_DEFAULT, now;
	bool			 has_hours, ok;

	(void)pr;
	(void)path;
	TAILQ_INIT(&q);
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (query != NULL && evhttp_parse_query_str(query, &q) != 0) {
		http_error(req, LB_E_BAD_REQUEST, "the query string is malformed");
		return;
	}
	ok = http_query_u64(&q, "hours", &hours, &has_hours);
	evhttp_clear_headers(&q);
	if (!ok || hours == 0 || hours > OPS_HOURS_MAX) {
		http_error(req, LB_E_BAD_REQUEST, "hours must be a whole number from 1 to %d",
		    OPS_HOURS_MAX);
		return;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		http_error(req, LB_E_INTERNAL, "out of memory");
		return;
	}
	op->op_gw = gw;
	op->op_req = req;
	/* Whole minutes, the last one the current minute. */
	now = now_ms();
	op->op_minutes = (size_t)hours * 60;
	op->op_until_ms = now + 1;
	op->op_since_ms = (now / OPS_MINUTE_MS - (op->op_minutes - 1)) * OPS_MINUTE_MS;
	msgpack_zone_init(&op->op_scratch, 4096);
	msgpack_zone_init(&op->op_zone, 65536);
	gw->gw_inflight++;
	if (workers_submit(gw->gw_workers, gw->gw_base, ops_work, ops_done, op) != 0) {
		http_error(req, LB_E_INTERNAL, "the gateway is shutting down");
		ops_free(op);
	}
}
