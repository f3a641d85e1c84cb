/*
 * http_journal.c - the auditor's side of the HTTP API (DESIGN §8): the
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

/* The routes, and the "item" their audit-read records carry. */
static const struct {
	const char	*jp_path;
	enum jq_kind	 jp_kind;
	const char	*jp_name;
} jq_routes[] = {
	{ "/v1/journal/checkpoint",		JQ_CHECKPOINT,	"checkpoint" },
	{ "/v1/journal/leaves",			JQ_LEAVES,	"leaves" },
	{ "/v1/journal/records",		JQ_RECORDS,	"records" },
	{ "/v1/journal/proof/inclusion",	JQ_INCLUSION,	"inclusion" },
	{ "/v1/journal/proof/consistency",	JQ_CONSISTENCY,	"consistency" },
};

/* One auditor read: parsed on the loop, run on a worker, journaled, answered. */
struct jread {
	struct gw		*jr_gw;
	struct evhttp_request	*jr_req;
	enum jq_kind		 jr_kind;
	const char		*jr_name;
	char			 jr_auditor[LB_ID_MAX];
	uint64_t		 jr_a, jr_b;	/* start/end, seq/size or first/second */
	struct journal_filter	 jr_filter;
	msgpack_zone		 jr_zone;
	msgpack_object		 jr_list;	/* leaves or records being filled */
	uint32_t		 jr_n;
	msgpack_object		 jr_body;
	enum lb_err		 jr_err;
	char			 jr_msg[160];
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
	struct jread	*jr = arg;
	uint64_t	 i = seq - jr->jr_a;

	if (seq < jr->jr_a || seq >= jr->jr_b)
		return -1;
	jr->jr_list.via.array.ptr[i] = mpk_bindup(&jr->jr_zone, rec, len);
	jr->jr_n++;
	return 0;
}

static int
jread_record(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct jread	*jr = arg;
	struct mpk_map	 m;
	msgpack_object	 dec;

	if (jr->jr_n >= jr->jr_list.via.array.size ||
	    mpk_unpack(rec, len, &jr->jr_zone, &dec) != 0)
		return -1;
	mpk_map_init(&m, &jr->jr_zone, 3);
	mpk_map_put(&m, "seq", mpk_uint(seq));
	mpk_map_put(&m, "leaf", mpk_bindup(&jr->jr_zone, rec, len));
	mpk_map_put(&m, "record", dec);
	jr->jr_list.via.array.ptr[jr->jr_n++] = m.mm_obj;
	return 0;
}

static void
jread_fail(struct jread *jr, enum lb_err e, const char *msg)
{
	jr->jr_err = e;
	snprintf(jr->jr_msg, sizeof(jr->jr_msg), "%s", msg);
}

/* A proof path as a list of bin. */
static msgpack_object
jread_path(struct jread *jr, uint8_t path[][32], size_t n)
{
	msgpack_object	a = mpk_array(&jr->jr_zone, (uint32_t)n);
	size_t		i;

	for (i = 0; i < n; i++)
		a.via.array.ptr[i] = mpk_bindup(&jr->jr_zone, path[i], 32);
	return a;
}

static void
jread_work(void *arg)
{
	struct jread	*jr = arg;
	struct journal	*j = jr->jr_gw->gw_journal;
	struct mpk_map	 m;
	uint8_t		*env, root[32], path[MK_MAX_PATH][32];
	size_t		 envlen, npath;
	uint64_t	 size, t_ms, next;
	bool		 more;

	mpk_map_init(&m, &jr->jr_zone, 4);
	switch (jr->jr_kind) {
	case JQ_CHECKPOINT:
		if (journal_checkpoint(j, &env, &envlen, &size, root, &t_ms) != 0) {
			jread_fail(jr, LB_E_NOT_FOUND, "the journal has no checkpoint yet");
			return;
		}
		mpk_map_put(&m, "size", mpk_uint(size));
		mpk_map_put(&m, "root", mpk_bindup(&jr->jr_zone, root, 32));
		mpk_map_put(&m, "t_ms", mpk_uint(t_ms));
		mpk_map_put(&m, "envelope", mpk_bindup(&jr->jr_zone, env, envlen));
		free(env);
		break;
	case JQ_LEAVES:
		jr->jr_list = mpk_array(&jr->jr_zone, (uint32_t)(jr->jr_b - jr->jr_a));
		if (jr->jr_b > jr->jr_a &&
		    journal_leaves(j, jr->jr_a, jr->jr_b, jread_leaf, jr) != 0) {
			jread_fail(jr, LB_E_JOURNAL_UNAVAILABLE, "the journal could not be read");
			return;
		}
		mpk_map_put(&m, "leaves", jr->jr_list);
		mpk_map_put(&m, "start", mpk_uint(jr->jr_a));
		mpk_map_put(&m, "end", mpk_uint(jr->jr_b));
		break;
	case JQ_RECORDS:
		jr->jr_list = mpk_array(&jr->jr_zone, (uint32_t)jr->jr_filter.jf_limit);
		if (journal_query(j, &jr->jr_filter, jread_record, jr, &more, &next) != 0) {
			jread_fail(jr, LB_E_JOURNAL_UNAVAILABLE, "the journal could not be read");
			return;
		}
		jr->jr_list.via.array.size = jr->jr_n;
		mpk_map_put(&m, "records", jr->jr_list);
		mpk_map_put(&m, "next", more ? mpk_uint(next) : mpk_nil());
		break;
	case JQ_INCLUSION:
		if (journal_inclusion(j, jr->jr_a, jr->jr_b, path, &npath) != 0) {
			jread_fail(jr, LB_E_JOURNAL_UNAVAILABLE, "the proof could not be read");
			return;
		}
		mpk_map_put(&m, "seq", mpk_uint(jr->jr_a));
		mpk_map_put(&m, "size", mpk_uint(jr->jr_b));
		mpk_map_put(&m, "path", jread_path(jr, path, npath));
		break;
	case JQ_CONSISTENCY:
		if (journal_consistency(j, jr->jr_a, jr->jr_b, path, &npath) != 0) {
			jread_fail(jr, LB_E_JOURNAL_UNAVAILABLE, "the proof could not be read");
			return;
		}
		mpk_map_put(&m, "first", mpk_uint(jr->jr_a));
		mpk_map_put(&m, "second", mpk_uint(jr->jr_b));
		mpk_map_put(&m, "path", jread_path(jr, path, npath));
		break;
	}
	jr->jr_body = m.mm_obj;
}

static void
jread_free(struct jread *jr)
{
	jr->jr_gw->gw_inflight--;
	msgpack_zone_destroy(&jr->jr_zone);
	free(jr);
}

/* The audit-read record is durable: now the answer may go. */
static void
jread_logged(void *arg, int status, uint64_t first_seq)
{
	struct jread	*jr = arg;

	(void)first_seq;
	if (status != 0)
		http_error(jr->jr_req, LB_E_JOURNAL_UNAVAILABLE, "the journal could not record "
		    "this read, so its answer is withheld");
	else
		http_reply(jr->jr_req, 200, &jr->jr_body);
	jread_free(jr);
}

static void
jread_done(void *arg)
{
	struct jread	*jr = arg;
	struct jrec	 rec;

	if (jr->jr_err != LB_OK) {
		http_error(jr->jr_req, jr->jr_err, "%s", jr->jr_msg);
		jread_free(jr);
		return;
	}
	/*
	 * DESIGN §7 has no field for an auditor, so the auditor is the record's
	 * actor (a pseudonym, like every person in the journal), the endpoint
	 * is its item, and a records query for one citizen names that citizen
	 * as its subject: the citizen's access report shows the auditor too.
	 */
	memset(&rec, 0, sizeof(rec));
	rec.jr_kind = JK_AUDIT_READ;
	rec.jr_t_ms = now_ms();
	rec.jr_has_actor = true;
	journal_pseudonym(jr->jr_gw->gw_journal, jr->jr_auditor, rec.jr_actor);
	if (jr->jr_kind == JQ_RECORDS && jr->jr_filter.jf_has_subject) {
		rec.jr_has_subject = true;
		memcpy(rec.jr_subject, jr->jr_filter.jf_subject, 32);
	}
	snprintf(rec.jr_item, sizeof(rec.jr_item), "%s", jr->jr_name);
	snprintf(rec.jr_decision, sizeof(rec.jr_decision), "allow");
	snprintf(rec.jr_code, sizeof(rec.jr_code), "ok");
	if (journal_append(jr->jr_gw->gw_journal, jr->jr_gw->gw_base, &rec, 1, jread_logged,
	    jr) != 0) {
		http_error(jr->jr_req, LB_E_JOURNAL_UNAVAILABLE, "the journal cannot record "
		    "this read now; try again");
		jread_free(jr);
	}
}

/* Checks the query of jr's route; on failure the sentence is in err. */
static int
jread_parse(struct jread *jr, const struct evkeyvalq *q, char *err, size_t errlen)
{
	struct journal_filter	*f = &jr->jr_filter;
	char			 subject[LB_SUBJECT_MAX];
	uint64_t		 size = journal_size(jr->jr_gw->gw_journal), a = 0, b = 0, lim = 0;
	bool			 has_a, has_b, has_lim, has_since, has_until;

	switch (jr->jr_kind) {
	case JQ_CHECKPOINT:
		return 0;
	case JQ_LEAVES:
		if (!http_query_u64(q, "start", &a, &has_a) || !http_query_u64(q, "end", &b, &has_b)) {
			snprintf(err, errlen, "start and end must be decimal integers");
			return -1;
		}
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
		if (!http_query_u64(q, "since_ms", &f->jf_since_ms, &has_since) ||
		    !http_query_u64(q, "until_ms", &f->jf_until_ms, &has_until) ||
		    !http_query_u64(q, "after", &f->jf_after, &f->jf_has_after) ||
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
		if (subject[0] != '\0') {
			f->jf_has_subject = true;
			journal_pseudonym(jr->jr_gw->gw_journal, subject, f->jf_subject);
			OPENSSL_cleanse(subject, sizeof(subject));
		}
		break;
	case JQ_INCLUSION:
		if (!http_query_u64(q, "seq", &a, &has_a) || !http_query_u64(q, "size", &b, &has_b) ||
		    !has_a || !has_b) {
			snprintf(err, errlen, "seq and size are required decimal integers");
			return -1;
		}
		if (a >= b || b > size) {
			snprintf(err, errlen, "need seq < size <= %llu (the journal size)",
			    (unsigned long long)size);
			return -1;
		}
		break;
	case JQ_CONSISTENCY:
		if (!http_query_u64(q, "first", &a, &has_a) || !http_query_u64(q, "second", &b, &has_b) ||
		    !has_a || !has_b) {
			snprintf(err, errlen, "first and second are required decimal integers");
			return -1;
		}
		if (a == 0 || a > b || b > size) {
			snprintf(err, errlen, "need 1 <= first <= second <= %llu (the journal "
			    "size)", (unsigned long long)size);
			return -1;
		}
		break;
	}
	jr->jr_a = a;
	jr->jr_b = b;
	return 0;
}

void
http_journal(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	struct evkeyvalq	 q;
	struct jread		*jr;
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
	if ((jr = calloc(1, sizeof(*jr))) == NULL) {
		http_error(req, LB_E_INTERNAL, "out of memory");
		return;
	}
	jr->jr_gw = gw;
	jr->jr_req = req;
	jr->jr_kind = jq_routes[i].jp_kind;
	jr->jr_name = jq_routes[i].jp_name;
	snprintf(jr->jr_auditor, sizeof(jr->jr_auditor), "%s", pr->pr_id);
	TAILQ_INIT(&q);
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (query != NULL && evhttp_parse_query_str(query, &q) != 0) {
		free(jr);
		http_error(req, LB_E_BAD_REQUEST, "the query string is malformed");
		return;
	}
	rc = jread_parse(jr, &q, err, sizeof(err));
	evhttp_clear_headers(&q);
	if (rc != 0) {
		free(jr);
		http_error(req, LB_E_BAD_REQUEST, "%s", err);
		return;
	}
	msgpack_zone_init(&jr->jr_zone, 8192);
	gw->gw_inflight++;
	if (workers_submit(gw->gw_workers, gw->gw_base, jread_work, jread_done, jr) != 0) {
		http_error(req, LB_E_INTERNAL, "the gateway is shutting down");
		jread_free(jr);
	}
}
