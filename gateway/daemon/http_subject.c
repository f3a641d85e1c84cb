/*
 * http_subject.c - the citizen's access report (docs/contract.md §8):
 * GET /v1/subjects/me/accesses.
 *
 * A consumer (the citizen's own app) presents, in the Lianban-Consent
 * header, a consent token the citizen obtained by face authentication for
 * the bundle "access_report" with rel "self".  The token names the citizen
 * (sub); nothing in the request does, so nobody can ask for another
 * person's history.  The report lists every journal record about that
 * citizen (the journal's subject index, keyed by the pseudonym), newest
 * first.
 *
 * The request moves through the same stages as an exchange:
 *
 *	VERIFY	consent_admit against the access_report policy:	(worker)
 *		the token's checks, then the revocation list;
 *		the token's jti reserved in memory
 *	CLAIM	refuse a token used before			(loop)
 *	READ	the subject's records				(worker)
 *	JOURNAL	one "audit-read" record about the citizen,	(journal writer)
 *		with the jti, in one commit
 *	REPLY	only after that record is committed
 *
 * A refused request is journaled as a "deny" record and answered after its
 * commit too.  The deny record names the citizen only when the token's
 * signature held: an unverified sub must not write into anyone's history.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "cluster.h"

#define ACCESS_BUNDLE		"access_report"
#define ACCESS_ITEM		"access_report"	/* the pseudo item of the policy */
#define ACCESS_HEADER		"Lianban-Consent"
#define ACCESS_TOKEN_MAX	(16 * 1024)	/* decoded envelope bytes */
#define ACCESS_LIMIT_MAX	1000
#define ACCESS_LIMIT_DEFAULT	100
/* One report being made; lives from the route to the answer. */
struct access {
	struct gw		*rep_gw;
	struct evhttp_request	*rep_req;
	struct snapshot		*rep_snap;
	const struct policy	*rep_policy;
	char			 rep_consumer[LB_ID_MAX];
	uint8_t			*rep_token;
	size_t			 rep_token_len;
	struct consent		 rep_cs;
	int			 rep_claim;	/* what journal_jti_reserve said */
	bool			 rep_reserved;	/* holds the jti until access_finish */
	int64_t			 rep_now;
	size_t			 rep_limit;
	bool			 rep_has_before;
	uint64_t		 rep_before;	/* only records with seq < before */
	bool			 rep_cluster;	/* answer for the whole cluster (cluster_read.c) */
	uint8_t			 rep_subject[32];	/* the citizen's pseudonym, once read */
	struct lb_outcome	 rep_out;	/* the first failure, or LB_OK */
	/* The page: at most rep_limit records below the cursor, newest first. */
	uint8_t			**rep_rec;
	size_t			*rep_rec_len;
	uint64_t		*rep_seq;
	size_t			 rep_n;
	msgpack_zone		 rep_zone;
	msgpack_object		 rep_body;
};

static void	access_claim(struct access *);
static void	access_finish(struct access *);

static void
access_free(struct access *rep)
{
	size_t	i;

	if (rep->rep_rec != NULL)
		for (i = 0; i < rep->rep_limit; i++)
			free(rep->rep_rec[i]);
	free(rep->rep_rec);
	free(rep->rep_rec_len);
	free(rep->rep_seq);
	free(rep->rep_token);
	if (rep->rep_reserved)
		journal_jti_release(rep->rep_gw->gw_journal, rep->rep_cs.cs_jti);
	if (rep->rep_snap != NULL)
		snapshot_unref(rep->rep_snap);
	OPENSSL_cleanse(&rep->rep_cs, sizeof(rep->rep_cs));
	msgpack_zone_destroy(&rep->rep_zone);
	rep->rep_gw->gw_inflight--;
	free(rep);
}

/*
 * The token is admitted like an exchange's, against the access_report
 * policy and for the subject it names itself; the report then goes only to
 * the citizen in person.
 */
static void
access_verify_work(void *arg)
{
	struct access		*rep = arg;
	static const char	 items[1][LB_ITEM_MAX] = { ACCESS_ITEM };
	const struct consent_ask ask = {
		.ca_aud = rep->rep_gw->gw_conf.gc_id,
		.ca_consumer = rep->rep_consumer,
		.ca_bundle = ACCESS_BUNDLE,
		.ca_subject = NULL,
		.ca_items = items,
		.ca_nitems = 1,
		.ca_policy = rep->rep_policy,
		.ca_now = rep->rep_now
	};
	char			 msg[256];
	enum lb_err		 e;
	enum policy_rel		 rel;

	e = consent_admit(rep->rep_snap->sn_trust, rep->rep_gw->gw_journal, &ask, rep->rep_token,
	    rep->rep_token_len, &rep->rep_cs, msg, sizeof(msg));
	if (e != LB_OK)
		lb_outcome_fail(&rep->rep_out, e, "%s", msg);
	else if (relation_from_name(rep->rep_cs.cs_rel, &rel) == 0)
		lb_outcome_fail(&rep->rep_out, relation_error(rel), "the access report is "
		    "only given to the citizen in person (rel \"self\")");
	else {
		rep->rep_claim = journal_jti_reserve(rep->rep_gw->gw_journal, rep->rep_cs.cs_jti,
		    rep->rep_cs.cs_keep_until);
		rep->rep_reserved = rep->rep_claim == 0;
	}
}

static void
access_verify_done(void *arg)
{
	struct access	*rep = arg;

	if (rep->rep_out.oc_code != LB_OK)
		access_finish(rep);
	else
		access_claim(rep);
}

static void access_read_done(void *);
static void access_read_work(void *);

static void
access_claimed(void *arg, int status)
{
	struct access	*rep = arg;
	const char	*msg;
	enum lb_err	 e;

	if ((e = consent_claim_error(status, &msg)) != LB_OK)
		lb_outcome_fail(&rep->rep_out, e, "%s", msg);
	if (rep->rep_out.oc_code != LB_OK) {
		access_finish(rep);
		return;
	}
	if (workers_submit(rep->rep_gw->gw_workers, rep->rep_gw->gw_base, access_read_work,
	    access_read_done, rep) != 0) {
		lb_outcome_fail(&rep->rep_out, LB_E_INTERNAL, "the gateway is shutting down");
		access_finish(rep);
	}
}

/*
 * One token, one report: the jti is claimed like an exchange's, reserved
 * on the worker and written with the report's record.
 */
static void
access_claim(struct access *rep)
{
	/* A cluster claims on etcd too, for every node at once (cluster.c). */
	if (rep->rep_gw->gw_cluster != NULL && rep->rep_claim == 0) {
		if (cluster_jti_claim(rep->rep_gw->gw_cluster, rep->rep_gw->gw_base,
		    rep->rep_cs.cs_jti, rep->rep_cs.cs_keep_until, access_claimed, rep) != 0) {
			lb_outcome_fail(&rep->rep_out, LB_E_CONSENT_STORE_UNAVAILABLE, "the "
			    "consent store cannot be asked");
			access_finish(rep);
		}
		return;
	}
	access_claimed(rep, rep->rep_claim);
}

/* Adds one record to the page, newest first (worker thread). */
static int
access_collect(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct access	*rep = arg;

	if (rep->rep_n == rep->rep_limit || (rep->rep_rec[rep->rep_n] = malloc(len)) == NULL)
		return -1;
	memcpy(rep->rep_rec[rep->rep_n], rec, len);
	rep->rep_rec_len[rep->rep_n] = len;
	rep->rep_seq[rep->rep_n++] = seq;
	return 0;
}

/*
 * A verification's record: which field of the record was asked about, with
 * which operator ({"field", "op"}; the journal never holds the value).
 */
static void
access_predicate(const msgpack_object *o, msgpack_zone *z, struct mpk_map *m)
{
	static const char *const keys[] = { "field", "op" };
	const msgpack_object	*v;
	struct mpk_map		 p;
	size_t			 i;

	mpk_map_init(&p, z, 2);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((v = mpk_get(o, keys[i])) != NULL && v->type == MSGPACK_OBJECT_STR &&
		    utf8_valid(v->via.str.ptr, v->via.str.size))
			mpk_map_put(&p, keys[i], *v);
	mpk_map_put(m, "predicate", p.mm_obj);
}

/*
 * A report entry: what a citizen wants to know, from one record.  A record
 * that JSON cannot show (written by an older version from unchecked text)
 * keeps the fields that are text and is flagged with its bytes, as an
 * auditor sees it (journal_record_show), so that it never fails the report.
 */
void
subject_access_entry(struct journal *j, msgpack_zone *z, uint64_t seq, const uint8_t *rec,
    size_t len, msgpack_object *out)
{
	static const char *const fields[] = { "kind", "op", "consumer", "bundle", "item",
	    "dept", "decision", "code", "rel" };
	msgpack_object	 dec;
	const msgpack_object *o;
	const char	*why;
	struct mpk_map	 m, agent;
	char		 id[LB_SUBJECT_MAX], name[JOURNAL_PARTY_NAME_MAX];
	size_t		 i;

	why = journal_record_decode(rec, len, z, &dec);
	mpk_map_init(&m, z, 17);
	mpk_map_put(&m, "seq", mpk_uint(seq));
	if ((o = mpk_get(&dec, "t_ms")) != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		mpk_map_put(&m, "t_ms", *o);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if ((o = mpk_get(&dec, fields[i])) != NULL && o->type == MSGPACK_OBJECT_STR &&
		    utf8_valid(o->via.str.ptr, o->via.str.size))
			mpk_map_put(&m, fields[i], *o);
	if ((o = mpk_get(&dec, "exch")) != NULL && o->type == MSGPACK_OBJECT_BIN)
		mpk_map_put(&m, "exchange", *o);
	/* Who acted for the citizen: the agent as journal_party_note kept them. */
	if ((o = mpk_get(&dec, "rel")) != NULL && mpk_str_eq(o, "agent") &&
	    (o = mpk_get(&dec, "actor")) != NULL && o->type == MSGPACK_OBJECT_BIN &&
	    o->via.bin.size == 32 && j != NULL && journal_party_get(j,
	    (const uint8_t *)o->via.bin.ptr, id, name) == 1 &&
	    utf8_valid(id, strlen(id)) && utf8_valid(name, strlen(name))) {
		mpk_map_init(&agent, z, 2);
		mpk_map_put(&agent, "id", mpk_strdup(z, id, strlen(id)));
		mpk_map_put(&agent, "name", mpk_strdup(z, name, strlen(name)));
		mpk_map_put(&m, "agent", agent.mm_obj);
	}
	if ((o = mpk_get(&dec, "predicate")) != NULL)
		access_predicate(o, z, &m);
	if (why != NULL) {
		mpk_map_put(&m, "record_raw", mpk_bindup(z, rec, len));
		mpk_map_put(&m, "record_error", mpk_str(why));
	}
	*out = m.mm_obj;
}

static void
access_read_work(void *arg)
{
	struct access		*rep = arg;
	struct journal_filter	 f;
	struct mpk_map		 m;
	msgpack_object		 list;
	bool			 more;
	uint64_t		 next;
	size_t			 i;

	if ((rep->rep_rec = calloc(rep->rep_limit, sizeof(*rep->rep_rec))) == NULL ||
	    (rep->rep_rec_len = calloc(rep->rep_limit, sizeof(*rep->rep_rec_len))) == NULL ||
	    (rep->rep_seq = calloc(rep->rep_limit, sizeof(*rep->rep_seq))) == NULL) {
		lb_outcome_fail(&rep->rep_out, LB_E_INTERNAL, "out of memory");
		return;
	}
	/*
	 * The subject index walked from the newest record down: a page costs
	 * its own records, however long the citizen's history.
	 */
	memset(&f, 0, sizeof(f));
	f.jf_has_subject = true;
	journal_pseudonym(rep->rep_gw->gw_journal, rep->rep_cs.cs_sub, f.jf_subject);
	memcpy(rep->rep_subject, f.jf_subject, 32);
	f.jf_newest_first = true;
	f.jf_has_before = rep->rep_has_before;
	f.jf_before = rep->rep_before;
	do {
		f.jf_limit = rep->rep_limit - rep->rep_n;
		if (journal_query(rep->rep_gw->gw_journal, &f, access_collect, rep, &more,
		    &next) != 0) {
			lb_outcome_fail(&rep->rep_out, LB_E_JOURNAL_UNAVAILABLE, "the journal could "
			    "not be read");
			return;
		}
		f.jf_has_before = true;
		f.jf_before = next;
	} while (more && rep->rep_n < rep->rep_limit);
	list = mpk_array(&rep->rep_zone, (uint32_t)rep->rep_n);
	for (i = 0; i < rep->rep_n; i++)
		subject_access_entry(rep->rep_gw->gw_journal, &rep->rep_zone, rep->rep_seq[i],
		    rep->rep_rec[i], rep->rep_rec_len[i], &list.via.array.ptr[i]);
	mpk_map_init(&m, &rep->rep_zone, 2);
	mpk_map_put(&m, "accesses", list);
	/* Older records remain: the next page ends before the oldest one shown. */
	mpk_map_put(&m, "next", more && rep->rep_n > 0 ? mpk_uint(rep->rep_seq[rep->rep_n - 1]) :
	    mpk_nil());
	rep->rep_body = m.mm_obj;
}

static void
access_read_done(void *arg)
{
	access_finish(arg);
}

/* The record of the read (or of its refusal) is durable: now answer. */
static void
access_logged(void *arg, int status, uint64_t first_seq)
{
	struct access	*rep = arg;

	(void)first_seq;
	if (status != 0)
		http_error(rep->rep_req, LB_E_JOURNAL_UNAVAILABLE, "the journal could not record "
		    "this read, so its answer is withheld");
	else if (rep->rep_out.oc_code != LB_OK)
		http_error(rep->rep_req, rep->rep_out.oc_code, "%s", rep->rep_out.oc_msg);
	else if (rep->rep_cluster)
		cluster_accesses(rep->rep_gw, rep->rep_req, &rep->rep_body, rep->rep_subject);
	else
		http_reply(rep->rep_req, 200, &rep->rep_body);
	access_free(rep);
}

/*
 * Journals the outcome: an "audit-read" record about the citizen when the
 * report was made, a "deny" record otherwise.
 */
static void
access_finish(struct access *rep)
{
	struct journal	*j = rep->rep_gw->gw_journal;
	struct jrec	 rec;
	struct jclaim	 claim;
	size_t		 nclaims = 0;

	memset(&rec, 0, sizeof(rec));
	rec.jr_kind = rep->rep_out.oc_code == LB_OK ? JK_AUDIT_READ : JK_DENY;
	rec.jr_t_ms = now_ms();
	snprintf(rec.jr_consumer, sizeof(rec.jr_consumer), "%s", rep->rep_consumer);
	snprintf(rec.jr_bundle, sizeof(rec.jr_bundle), "%s", ACCESS_BUNDLE);
	snprintf(rec.jr_item, sizeof(rec.jr_item), "%s", ACCESS_ITEM);
	if (rep->rep_token != NULL) {
		rec.jr_has_consent = true;
		memcpy(rec.jr_consent, rep->rep_cs.cs_hash, 32);
	}
	if (rep->rep_cs.cs_trusted) {
		rec.jr_has_subject = rec.jr_has_actor = true;
		journal_pseudonym(j, rep->rep_cs.cs_sub, rec.jr_subject);
		journal_pseudonym(j, rep->rep_cs.cs_act, rec.jr_actor);
		snprintf(rec.jr_rel, sizeof(rec.jr_rel), "%s", rep->rep_cs.cs_rel);
	}
	snprintf(rec.jr_decision, sizeof(rec.jr_decision), "%s",
	    rep->rep_out.oc_code == LB_OK ? "allow" : "deny");
	snprintf(rec.jr_code, sizeof(rec.jr_code), "%s", lb_err_code(rep->rep_out.oc_code));
	log_event(LB_LOG_INFO, "audit_read", "consumer", rep->rep_consumer, "route",
	    ACCESS_ITEM, "code", rec.jr_code, NULL);
	/* A reserved jti is used up, even when the read failed after it. */
	if (rep->rep_reserved) {
		memcpy(claim.jl_jti, rep->rep_cs.cs_jti, sizeof(claim.jl_jti));
		claim.jl_keep_until = rep->rep_cs.cs_keep_until;
		rep->rep_reserved = false;	/* the journal's from here */
		nclaims = 1;
	}
	if (journal_append_claims(j, rep->rep_gw->gw_base, &rec, 1, &claim, nclaims,
	    access_logged, rep) != 0) {
		http_error(rep->rep_req, LB_E_JOURNAL_UNAVAILABLE, "the journal cannot record "
		    "this read now; try again");
		access_free(rep);
	}
}

/* Reads limit and before; -1 with a sentence in err. */
static int
access_query(struct access *rep, struct evhttp_request *req, char *err, size_t errlen)
{
	struct evkeyvalq	 q;
	const char		*query, *before;
	uint64_t		 lim = 0;
	bool			 has_lim;
	int			 ret = -1;

	TAILQ_INIT(&q);
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (query != NULL && evhttp_parse_query_str(query, &q) != 0) {
		snprintf(err, errlen, "the query string is malformed");
		return -1;
	}
	if (rep->rep_cluster && (before = evhttp_find_header(&q, "before")) != NULL &&
	    cluster_cursor(before, rep->rep_gw->gw_conf.gc_node, &rep->rep_before,
	    &rep->rep_has_before) != 0) {
		snprintf(err, errlen, "in a cluster, before is the cursor the last page's next "
		    "gave (NODE:SEQ,...)");
		goto done;
	}
	if (!http_query_u64(&q, "limit", &lim, &has_lim) || (!rep->rep_cluster &&
	    !http_query_u64(&q, "before", &rep->rep_before, &rep->rep_has_before))) {
		snprintf(err, errlen, "limit and before must be decimal integers");
		goto done;
	}
	if (has_lim && (lim == 0 || lim > ACCESS_LIMIT_MAX)) {
		snprintf(err, errlen, "limit must be from 1 to %d", ACCESS_LIMIT_MAX);
		goto done;
	}
	rep->rep_limit = has_lim ? (size_t)lim : ACCESS_LIMIT_DEFAULT;
	ret = 0;
done:
	evhttp_clear_headers(&q);
	return ret;
}

/* The token of the Lianban-Consent header: base64url of the envelope. */
static void
access_token(struct access *rep, struct evhttp_request *req)
{
	const char	*h;
	size_t		 hlen;

	h = evhttp_find_header(evhttp_request_get_input_headers(req), ACCESS_HEADER);
	if (h == NULL || h[0] == '\0') {
		lb_outcome_fail(&rep->rep_out, LB_E_CONSENT_MISSING, "the %s header must carry "
		    "the citizen's consent token for bundle \"%s\"", ACCESS_HEADER, ACCESS_BUNDLE);
		return;
	}
	hlen = strlen(h);
	if (hlen > (ACCESS_TOKEN_MAX / 3 + 1) * 4 ||
	    b64url_decode(h, hlen, &rep->rep_token, &rep->rep_token_len) != 0 ||
	    rep->rep_token_len == 0 || rep->rep_token_len > ACCESS_TOKEN_MAX) {
		free(rep->rep_token);
		rep->rep_token = NULL;
		lb_outcome_fail(&rep->rep_out, LB_E_CONSENT_MALFORMED, "the %s header must be a "
		    "consent envelope in base64url without padding, at most %d bytes decoded",
		    ACCESS_HEADER, ACCESS_TOKEN_MAX);
		return;
	}
	SHA256(rep->rep_token, rep->rep_token_len, rep->rep_cs.cs_hash);
}

void
http_subject(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	struct access	*rep;
	char		 err[160], msg[256];
	enum lb_err	 e;

	if (strcmp(path, "/v1/subjects/me/accesses") != 0) {
		http_error(req, LB_E_NOT_FOUND, "no such API route: %s", path);
		return;
	}
	if ((rep = calloc(1, sizeof(*rep))) == NULL) {
		http_error(req, LB_E_INTERNAL, "out of memory");
		return;
	}
	rep->rep_gw = gw;
	rep->rep_req = req;
	rep->rep_cluster = cluster_wanted(gw, req);
	snprintf(rep->rep_consumer, sizeof(rep->rep_consumer), "%s", pr->pr_id);
	if (access_query(rep, req, err, sizeof(err)) != 0) {
		free(rep);
		http_error(req, LB_E_BAD_REQUEST, "%s", err);
		return;
	}
	msgpack_zone_init(&rep->rep_zone, 8192);
	gw->gw_inflight++;
	rep->rep_now = (int64_t)(now_ms() / 1000);
	rep->rep_snap = snapshot_current(gw, NULL);
	rep->rep_policy = snapshot_policy(rep->rep_snap, ACCESS_BUNDLE);
	/* The access_report policy's consumers and rate limit apply as to any bundle. */
	if ((e = policy_admit(gw->gw_rates, rep->rep_policy, ACCESS_BUNDLE, pr->pr_id,
	    now_us_mono(), msg, sizeof(msg))) != LB_OK)
		lb_outcome_fail(&rep->rep_out, e, "%s", msg);
	else
		access_token(rep, req);
	if (rep->rep_out.oc_code != LB_OK) {
		access_finish(rep);
		return;
	}
	if (workers_submit(gw->gw_workers, gw->gw_base, access_verify_work,
	    access_verify_done, rep) != 0) {
		lb_outcome_fail(&rep->rep_out, LB_E_INTERNAL, "the gateway is shutting down");
		access_finish(rep);
	}
}
