/*
 * http_journal.c - the auditor's side of the HTTP API (docs/contract.md §8): the
 * signed checkpoint, raw leaves, record queries and RFC 9162 proofs.
 *
 * Every read touches LMDB, so it runs on a worker, never on the event loop.
 * Back on the loop, the read itself is journaled: one "audit-read" record
 * per answered call, and the answer leaves only after the commit that holds
 * that record, exactly as an exchange's answer waits for its records.  An
 * auditor can therefore not look at the journal without the journal saying
 * so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "gateway.h"

#define LEAVES_PER_CALL		1000
#define RECORDS_PER_CALL	1000

enum jq_kind {
	JQ_CHECKPOINT,
	JQ_LEAVES,
	JQ_RECORDS,
	JQ_INCLUSION,
	JQ_CONSISTENCY
};

/*
 * The routes, the "item" their audit-read records carry, and the names of
 * their two numeric parameters (the range of leaves, the proof's sizes).
 */
struct jq_route {
	const char	*jp_path;
	enum jq_kind	 jp_kind;
	const char	*jp_name;
	const char	*jp_a, *jp_b;
};

static const struct jq_route jq_routes[] = {
	{ "/v1/journal/checkpoint",	  JQ_CHECKPOINT,  "checkpoint",	 NULL,	  NULL },
	{ "/v1/journal/leaves",		  JQ_LEAVES,	  "leaves",	 "start", "end" },
	{ "/v1/journal/records",	  JQ_RECORDS,	  "records",	 NULL,	  NULL },
	{ "/v1/journal/proof/inclusion",  JQ_INCLUSION,	  "inclusion",	 "seq",	  "size" },
	{ "/v1/journal/proof/consistency", JQ_CONSISTENCY, "consistency", "first", "second" },
};

/* One auditor read: parsed on the loop, run on a worker, journaled, answered. */
struct jread {
	struct gw		*rd_gw;
	struct evhttp_request	*rd_req;
	const struct jq_route	*rd_route;
	char			 rd_auditor[LB_ID_MAX];
	bool			 rd_gateway;	/* asked by a node of the cluster */
	bool			 rd_cluster;	/* records: answer for the whole cluster */
	uint64_t		 rd_a, rd_b;	/* the route's jp_a and jp_b */
	bool			 rd_upto;	/* checkpoint: max_size (rd_a) given */
	struct journal_filter	 rd_filter;
	msgpack_zone		 rd_zone;
	msgpack_object		 rd_list;	/* leaves or records being filled */
	uint32_t		 rd_n;
	msgpack_object		 rd_body;
	enum lb_err		 rd_err;
	char			 rd_msg[160];
};

/* A string parameter of at most bufsz - 1 bytes; "" when absent. */
static bool
jq_str(const struct evkeyvalq *q, const char *name, char *buf, size_t bufsz)
{
	const char	*s = evhttp_find_header(q, name);

	buf[0] = '\0';
	if (s == NULL)
		return true;
	return s[0] != '\0' && strlcpy_chk(buf, s, bufsz) == 0;
}

static int
jread_leaf(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct jread	*rd = arg;
	uint64_t	 i = seq - rd->rd_a;

	if (seq < rd->rd_a || seq >= rd->rd_b)
		return -1;
	rd->rd_list.via.array.ptr[i] = mpk_bindup(&rd->rd_zone, rec, len);
	rd->rd_n++;
	return 0;
}

static int
jread_record(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct jread	*rd = arg;

	if (rd->rd_n >= rd->rd_list.via.array.size)
		return -1;
	journal_record_show(&rd->rd_zone, seq, rec, len,
	    &rd->rd_list.via.array.ptr[rd->rd_n++]);
	return 0;
}

static void
jread_fail(struct jread *rd, enum lb_err e, const char *msg)
{
	rd->rd_err = e;
	snprintf(rd->rd_msg, sizeof(rd->rd_msg), "%s", msg);
}

/* A list of hashes as a list of bin. */
static msgpack_object
jread_path(struct jread *rd, uint8_t path[][32], size_t n)
{
	msgpack_object	a = mpk_array(&rd->rd_zone, (uint32_t)n);
	size_t		i;

	for (i = 0; i < n; i++)
		a.via.array.ptr[i] = mpk_bindup(&rd->rd_zone, path[i], 32);
	return a;
}

/*
 * The latest checkpoint; with max_size, the newest one of at most that many
 * records and its compact range ("peaks"), where a journal archive starts
 * or ends (docs/audit.md).
 */
static int
jread_checkpoint(struct jread *rd, struct mpk_map *m)
{
	struct journal		*j = rd->rd_gw->gw_journal;
	struct journal_ckpt	 ck;
	char			 msg[128];
	int			 rc;

	memset(&ck, 0, sizeof(ck));
	/*
	 * The latest checkpoint always exists (journal_open signs the empty
	 * tree), so failing to read it is the journal's failure; only an older
	 * one of at most max_size records may be missing.
	 */
	if (rd->rd_upto)
		rc = journal_checkpoint_upto(j, rd->rd_a, &ck);
	else
		rc = journal_checkpoint(j, &ck.jk_env, &ck.jk_envlen, &ck.jk_size, ck.jk_root,
		    &ck.jk_t_ms) == 0 ? 0 : -1;
	if (rc == 1) {
		snprintf(msg, sizeof(msg), "the journal has no checkpoint of at most %llu "
		    "records", (unsigned long long)rd->rd_a);
		jread_fail(rd, LB_E_NOT_FOUND, msg);
		return -1;
	}
	if (rc != 0) {
		jread_fail(rd, LB_E_JOURNAL_UNAVAILABLE, "the journal's checkpoint could not be "
		    "read");
		return -1;
	}
	mpk_map_put(m, "size", mpk_uint(ck.jk_size));
	mpk_map_put(m, "root", mpk_bindup(&rd->rd_zone, ck.jk_root, 32));
	mpk_map_put(m, "t_ms", mpk_uint(ck.jk_t_ms));
	mpk_map_put(m, "envelope", mpk_bindup(&rd->rd_zone, ck.jk_env, ck.jk_envlen));
	if (rd->rd_upto)
		mpk_map_put(m, "peaks", jread_path(rd, ck.jk_peaks, ck.jk_npeaks));
	free(ck.jk_env);
	return 0;
}

static void
jread_work(void *arg)
{
	struct jread	*rd = arg;
	struct journal	*j = rd->rd_gw->gw_journal;
	struct mpk_map	 m;
	uint8_t		 path[MK_MAX_PATH][32];
	size_t		 npath;
	uint64_t	 next;
	bool		 more;
	int		 rc;

	mpk_map_init(&m, &rd->rd_zone, 5);
	switch (rd->rd_route->jp_kind) {
	case JQ_CHECKPOINT:
		if (jread_checkpoint(rd, &m) != 0)
			return;
		break;
	case JQ_LEAVES:
		rd->rd_list = mpk_array(&rd->rd_zone, (uint32_t)(rd->rd_b - rd->rd_a));
		if (rd->rd_b > rd->rd_a &&
		    journal_leaves(j, rd->rd_a, rd->rd_b, jread_leaf, rd) != 0) {
			jread_fail(rd, LB_E_JOURNAL_UNAVAILABLE, "the journal could not be read");
			return;
		}
		mpk_map_put(&m, "leaves", rd->rd_list);
		mpk_map_put(&m, rd->rd_route->jp_a, mpk_uint(rd->rd_a));
		mpk_map_put(&m, rd->rd_route->jp_b, mpk_uint(rd->rd_b));
		break;
	case JQ_RECORDS:
		rd->rd_list = mpk_array(&rd->rd_zone, (uint32_t)rd->rd_filter.jf_limit);
		if (journal_query(j, &rd->rd_filter, jread_record, rd, &more, &next) != 0) {
			jread_fail(rd, LB_E_JOURNAL_UNAVAILABLE, "the journal could not be read");
			return;
		}
		rd->rd_list.via.array.size = rd->rd_n;
		mpk_map_put(&m, "records", rd->rd_list);
		mpk_map_put(&m, "next", more ? mpk_uint(next) : mpk_nil());
		break;
	case JQ_INCLUSION:
	case JQ_CONSISTENCY:
		rc = rd->rd_route->jp_kind == JQ_INCLUSION ?
		    journal_inclusion(j, rd->rd_a, rd->rd_b, path, &npath) :
		    journal_consistency(j, rd->rd_a, rd->rd_b, path, &npath);
		if (rc != 0) {
			jread_fail(rd, LB_E_JOURNAL_UNAVAILABLE, "the proof could not be read");
			return;
		}
		mpk_map_put(&m, rd->rd_route->jp_a, mpk_uint(rd->rd_a));
		mpk_map_put(&m, rd->rd_route->jp_b, mpk_uint(rd->rd_b));
		mpk_map_put(&m, "path", jread_path(rd, path, npath));
		break;
	}
	rd->rd_body = m.mm_obj;
}

static void
jread_free(struct jread *rd)
{
	rd->rd_gw->gw_inflight--;
	msgpack_zone_destroy(&rd->rd_zone);
	free(rd);
}

/* The audit-read record is durable: now the answer may go. */
static void
jread_logged(void *arg, int status, uint64_t first_seq)
{
	struct jread	*rd = arg;

	(void)first_seq;
	if (status != 0)
		http_error(rd->rd_req, LB_E_JOURNAL_UNAVAILABLE, "the journal could not record "
		    "this read, so its answer is withheld");
	else if (rd->rd_cluster)
		cluster_records(rd->rd_gw, rd->rd_req, &rd->rd_body);
	else
		http_reply(rd->rd_req, 200, &rd->rd_body);
	jread_free(rd);
}

static void
jread_done(void *arg)
{
	struct jread	*rd = arg;
	struct jrec	 rec;

	if (rd->rd_err != LB_OK) {
		http_error(rd->rd_req, rd->rd_err, "%s", rd->rd_msg);
		jread_free(rd);
		return;
	}
	/*
	 * A node witnessing this one reads the checkpoint and consistency
	 * proofs every second: tree hashes, nothing about anyone.  Journaling
	 * those reads would grow the journal by itself, each new checkpoint
	 * asking to be witnessed again, so they are answered unrecorded
	 * (docs/audit.md).  A node's read of records is journaled like any.
	 */
	if (rd->rd_gateway && (rd->rd_route->jp_kind == JQ_CHECKPOINT ||
	    rd->rd_route->jp_kind == JQ_CONSISTENCY)) {
		http_reply(rd->rd_req, 200, &rd->rd_body);
		jread_free(rd);
		return;
	}
	/*
	 * docs/contract.md §7 has no field for an auditor, so the auditor is the record's
	 * actor (a pseudonym, like every person in the journal), the endpoint
	 * is its item, and a records query for one citizen names that citizen
	 * as its subject: the citizen's access report shows the auditor too.
	 */
	memset(&rec, 0, sizeof(rec));
	rec.jr_kind = JK_AUDIT_READ;
	rec.jr_t_ms = now_ms();
	rec.jr_has_actor = true;
	journal_pseudonym(rd->rd_gw->gw_journal, rd->rd_auditor, rec.jr_actor);
	if (rd->rd_route->jp_kind == JQ_RECORDS && rd->rd_filter.jf_has_subject) {
		rec.jr_has_subject = true;
		memcpy(rec.jr_subject, rd->rd_filter.jf_subject, 32);
	}
	snprintf(rec.jr_item, sizeof(rec.jr_item), "%s", rd->rd_route->jp_name);
	snprintf(rec.jr_decision, sizeof(rec.jr_decision), "allow");
	snprintf(rec.jr_code, sizeof(rec.jr_code), "ok");
	log_event(LB_LOG_INFO, "audit_read", "auditor", rd->rd_auditor, "route",
	    rd->rd_route->jp_name, NULL);
	if (journal_append(rd->rd_gw->gw_journal, rd->rd_gw->gw_base, &rec, 1, jread_logged,
	    rd) != 0) {
		http_error(rd->rd_req, LB_E_JOURNAL_UNAVAILABLE, "the journal cannot record "
		    "this read now; try again");
		jread_free(rd);
	}
}

/* The route's two decimal parameters, which may be required. */
static int
jread_pair(const struct jread *rd, const struct evkeyvalq *q, bool required, uint64_t *a,
    uint64_t *b, bool *has_b, char *err, size_t errlen)
{
	const struct jq_route	*rt = rd->rd_route;
	bool			 has_a;

	if (!http_query_u64(q, rt->jp_a, a, &has_a) || !http_query_u64(q, rt->jp_b, b, has_b) ||
	    (required && (!has_a || !*has_b))) {
		snprintf(err, errlen, "%s and %s %s", rt->jp_a, rt->jp_b, required ?
		    "are required decimal integers" : "must be decimal integers");
		return -1;
	}
	return 0;
}

/*
 * The parameters of a records query that a cluster adds: in a cluster-wide
 * query, after is the cursor of every node (cluster.c); a node asking for a
 * citizen's access report names the citizen by pseudonym (subject_hmac,
 * base64url of 32 bytes) and pages newest first (before), so that the raw
 * id never leaves the node the citizen reached.
 */
static int
jread_cluster_parse(struct jread *rd, const struct evkeyvalq *q, const char *subject,
    char *err, size_t errlen)
{
	struct journal_filter	*f = &rd->rd_filter;
	const char		*after = evhttp_find_header(q, "after"),
				*hm = evhttp_find_header(q, "subject_hmac"), *o;
	uint8_t			*raw = NULL;
	size_t			 rawlen = 0;

	if (rd->rd_cluster && after != NULL && cluster_cursor(after,
	    rd->rd_gw->gw_conf.gc_node, &f->jf_after, &f->jf_has_after) != 0) {
		snprintf(err, errlen, "in a cluster, after is the cursor the last page's next "
		    "gave (NODE:SEQ,...)");
		return -1;
	}
	if (!rd->rd_gateway) {
		if (hm != NULL || evhttp_find_header(q, "before") != NULL ||
		    evhttp_find_header(q, "order") != NULL) {
			snprintf(err, errlen, "subject_hmac, before and order are for the nodes of "
			    "a cluster (role gateway)");
			return -1;
		}
		return 0;
	}
	if (hm != NULL) {
		if (subject[0] != '\0' || strlen(hm) != 43 || b64url_decode(hm, 43, &raw,
		    &rawlen) != 0 || rawlen != 32) {
			free(raw);
			snprintf(err, errlen, "subject_hmac is the subject's pseudonym in base64url "
			    "(32 bytes), instead of subject");
			return -1;
		}
		f->jf_has_subject = true;
		memcpy(f->jf_subject, raw, 32);
		free(raw);
	}
	if (!http_query_u64(q, "before", &f->jf_before, &f->jf_has_before)) {
		snprintf(err, errlen, "before must be a decimal integer");
		return -1;
	}
	if ((o = evhttp_find_header(q, "order")) != NULL && strcmp(o, "newest") != 0) {
		snprintf(err, errlen, "order can only be newest");
		return -1;
	}
	if (f->jf_has_before || o != NULL) {
		if (f->jf_has_after) {
			snprintf(err, errlen, "after and before do not go together");
			return -1;
		}
		f->jf_newest_first = true;
	}
	return 0;
}

/* Checks the query of rd's route; on failure the sentence is in err. */
static int
jread_parse(struct jread *rd, const struct evkeyvalq *q, char *err, size_t errlen)
{
	struct journal_filter	*f = &rd->rd_filter;
	char			 subject[LB_SUBJECT_MAX];
	uint64_t		 size = journal_size(rd->rd_gw->gw_journal), a = 0, b = 0, lim = 0;
	bool			 has_b, has_lim, has_since, has_until;

	switch (rd->rd_route->jp_kind) {
	case JQ_CHECKPOINT:
		if (!http_query_u64(q, "max_size", &a, &rd->rd_upto)) {
			snprintf(err, errlen, "max_size must be a decimal integer");
			return -1;
		}
		break;
	case JQ_LEAVES:
		if (jread_pair(rd, q, false, &a, &b, &has_b, err, errlen) != 0)
			return -1;
		if (!has_b)
			b = size;
		if (a > b || b > size) {
			snprintf(err, errlen, "need 0 <= start <= end <= %llu (the journal size)",
			    (unsigned long long)size);
			return -1;
		}
		if (b - a > LEAVES_PER_CALL)
			b = a + LEAVES_PER_CALL;
		break;
	case JQ_RECORDS:
		if (!jq_str(q, "subject", subject, sizeof(subject)) ||
		    !jq_str(q, "consumer", f->jf_consumer, sizeof(f->jf_consumer)) ||
		    !jq_str(q, "dept", f->jf_dept, sizeof(f->jf_dept)) ||
		    !jq_str(q, "item", f->jf_item, sizeof(f->jf_item))) {
			snprintf(err, errlen, "subject, consumer, dept and item must be "
			    "non-empty and at most %d bytes", LB_ID_MAX - 1);
			return -1;
		}
		if (!jq_str(q, "kind", f->jf_kind, sizeof(f->jf_kind)) ||
		    !jq_str(q, "code", f->jf_code, sizeof(f->jf_code))) {
			snprintf(err, errlen, "kind and code must be non-empty and at most %zu "
			    "and %zu bytes", sizeof(f->jf_kind) - 1, sizeof(f->jf_code) - 1);
			return -1;
		}
		if (!http_query_u64(q, "since_ms", &f->jf_since_ms, &has_since) ||
		    !http_query_u64(q, "until_ms", &f->jf_until_ms, &has_until) ||
		    (!rd->rd_cluster && !http_query_u64(q, "after", &f->jf_after,
		    &f->jf_has_after)) ||
		    !http_query_u64(q, "limit", &lim, &has_lim)) {
			snprintf(err, errlen, "since_ms, until_ms, after and limit must be "
			    "decimal integers");
			return -1;
		}
		if (has_until && f->jf_until_ms <= f->jf_since_ms) {
			snprintf(err, errlen, "until_ms must be after since_ms");
			return -1;
		}
		if (has_lim && (lim == 0 || lim > RECORDS_PER_CALL)) {
			snprintf(err, errlen, "limit must be from 1 to %d", RECORDS_PER_CALL);
			return -1;
		}
		f->jf_limit = has_lim ? (size_t)lim : 100;
		if (jread_cluster_parse(rd, q, subject, err, errlen) != 0)
			return -1;
		if (subject[0] != '\0') {
			f->jf_has_subject = true;
			journal_pseudonym(rd->rd_gw->gw_journal, subject, f->jf_subject);
			OPENSSL_cleanse(subject, sizeof(subject));
		}
		break;
	case JQ_INCLUSION:
		if (jread_pair(rd, q, true, &a, &b, &has_b, err, errlen) != 0)
			return -1;
		if (a >= b || b > size) {
			snprintf(err, errlen, "need seq < size <= %llu (the journal size)",
			    (unsigned long long)size);
			return -1;
		}
		break;
	case JQ_CONSISTENCY:
		if (jread_pair(rd, q, true, &a, &b, &has_b, err, errlen) != 0)
			return -1;
		if (a == 0 || a > b || b > size) {
			snprintf(err, errlen, "need 1 <= first <= second <= %llu (the journal "
			    "size)", (unsigned long long)size);
			return -1;
		}
		break;
	}
	rd->rd_a = a;
	rd->rd_b = b;
	return 0;
}

void
http_journal(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	struct evkeyvalq	 q;
	struct jread		*rd;
	const char		*query;
	char			 err[160];
	size_t			 i;
	int			 rc;

	for (i = 0; i < sizeof(jq_routes) / sizeof(jq_routes[0]); i++)
		if (strcmp(path, jq_routes[i].jp_path) == 0)
			break;
	if (i == sizeof(jq_routes) / sizeof(jq_routes[0])) {
		http_error(req, LB_E_NOT_FOUND, "no such API route: %s", path);
		return;
	}
	if ((rd = calloc(1, sizeof(*rd))) == NULL) {
		http_error(req, LB_E_INTERNAL, "out of memory");
		return;
	}
	rd->rd_gw = gw;
	rd->rd_req = req;
	rd->rd_route = &jq_routes[i];
	snprintf(rd->rd_auditor, sizeof(rd->rd_auditor), "%s", pr->pr_id);
	rd->rd_gateway = strcmp(pr->pr_role, "gateway") == 0;
	rd->rd_cluster = rd->rd_route->jp_kind == JQ_RECORDS && cluster_wanted(gw, req);
	TAILQ_INIT(&q);
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (query != NULL && evhttp_parse_query_str(query, &q) != 0) {
		free(rd);
		http_error(req, LB_E_BAD_REQUEST, "the query string is malformed");
		return;
	}
	rc = jread_parse(rd, &q, err, sizeof(err));
	evhttp_clear_headers(&q);
	if (rc != 0) {
		free(rd);
		http_error(req, LB_E_BAD_REQUEST, "%s", err);
		return;
	}
	msgpack_zone_init(&rd->rd_zone, 8192);
	gw->gw_inflight++;
	if (workers_submit(gw->gw_workers, gw->gw_base, jread_work, jread_done, rd) != 0) {
		http_error(req, LB_E_INTERNAL, "the gateway is shutting down");
		jread_free(rd);
	}
}
