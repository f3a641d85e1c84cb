/*
 * http_subject.c - the citizen's access report (DESIGN §8):
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
 *	VERIFY	consent_verify against the access_report policy,	(worker)
 *		then the revocation list
 *	CLAIM	the token's jti, once				(journal writer)
 *	READ	the subject's records				(worker)
 *	JOURNAL	one "audit-read" record about the citizen	(journal writer)
 *	REPLY	only after that record is committed
 *
 * A refused request is journaled as a "deny" record and answered after its
 * commit too.  The deny record names the citizen only when the token's
 * signature held: an unverified sub must not write into anyone's history.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "gateway.h"

#define ACCESS_BUNDLE		"access_report"
#define ACCESS_ITEM		"access_report"	/* the pseudo item of the policy */
#define ACCESS_HEADER		"Lianban-Consent"
#define ACCESS_TOKEN_MAX	(16 * 1024)	/* decoded envelope bytes */
#define ACCESS_LIMIT_MAX	1000
#define ACCESS_LIMIT_DEFAULT	100
/* One report being made; lives from the route to the answer. */
struct access {
	struct gw		*ac_gw;
	struct evhttp_request	*ac_req;
	struct snapshot		*ac_snap;
	const struct policy	*ac_policy;
	char			 ac_consumer[LB_ID_MAX];
	uint8_t			*ac_token;
	size_t			 ac_token_len;
	struct consent		 ac_cs;
	bool			 ac_cs_valid;	/* the signature held: claims usable */
	int64_t			 ac_now;
	size_t			 ac_limit;
	bool			 ac_has_before;
	uint64_t		 ac_before;	/* only records with seq < before */
	enum lb_err		 ac_err;
	char			 ac_msg[256];
	/* The page: at most ac_limit records below the cursor, newest first. */
	uint8_t			**ac_rec;
	size_t			*ac_rec_len;
	uint64_t		*ac_seq;
	size_t			 ac_n;
	msgpack_zone		 ac_zone;
	msgpack_object		 ac_body;
};

static void	access_claim(struct access *);
static void	access_finish(struct access *);

static void
access_free(struct access *ac)
{
	size_t	i;

	if (ac->ac_rec != NULL)
		for (i = 0; i < ac->ac_limit; i++)
			free(ac->ac_rec[i]);
	free(ac->ac_rec);
	free(ac->ac_rec_len);
	free(ac->ac_seq);
	free(ac->ac_token);
	if (ac->ac_snap != NULL)
		snapshot_unref(ac->ac_snap);
	OPENSSL_cleanse(&ac->ac_cs, sizeof(ac->ac_cs));
	msgpack_zone_destroy(&ac->ac_zone);
	ac->ac_gw->gw_inflight--;
	free(ac);
}

static void
access_fail(struct access *ac, enum lb_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
access_fail(struct access *ac, enum lb_err e, const char *fmt, ...)
{
	va_list	ap;

	if (ac->ac_err != LB_OK)
		return;		/* the first failure is the one reported */
	ac->ac_err = e;
	va_start(ap, fmt);
	vsnprintf(ac->ac_msg, sizeof(ac->ac_msg), fmt, ap);
	va_end(ap);
}

/*
 * The sub a token claims, read before verification only to fill the
 * consent_ask; consent_verify then checks the token against it, so an
 * answer is never given for a sub the signature does not cover.
 */
static int
access_claimed_sub(const struct access *ac, char *sub, size_t subsz)
{
	struct envelope	 env;
	msgpack_zone	 z;
	const char	*why;
	int		 ret = -1;

	msgpack_zone_init(&z, 2048);
	if (envelope_parse(ac->ac_token, ac->ac_token_len, &z, "consent", &env, &why) == 0 &&
	    mpk_get_str(&env.env_claims, "sub", sub, subsz) == 0 && sub[0] != '\0')
		ret = 0;
	msgpack_zone_destroy(&z);
	return ret;
}

static void
access_verify_work(void *arg)
{
	struct access		*ac = arg;
	struct consent_ask	 ask;
	static const char	 items[1][LB_ITEM_MAX] = { ACCESS_ITEM };
	char			 sub[LB_SUBJECT_MAX], msg[256];
	enum lb_err		 e;

	if (access_claimed_sub(ac, sub, sizeof(sub)) != 0)
		sub[0] = '\0';	/* consent_verify names the defect */
	memset(&ask, 0, sizeof(ask));
	ask.ca_aud = ac->ac_gw->gw_conf.gc_id;
	ask.ca_consumer = ac->ac_consumer;
	ask.ca_bundle = ACCESS_BUNDLE;
	ask.ca_subject = sub;
	ask.ca_items = items;
	ask.ca_nitems = 1;
	ask.ca_policy = ac->ac_policy;
	ask.ca_now = ac->ac_now;
	e = consent_verify(ac->ac_snap->sn_trust, ac->ac_token, ac->ac_token_len, &ask,
	    &ac->ac_cs, msg, sizeof(msg));
	/* Last before the jti claim, as for an exchange. */
	if (e == LB_OK)
		e = journal_revoke_check(ac->ac_gw->gw_journal, &ac->ac_cs, msg, sizeof(msg));
	ac->ac_cs_valid = e == LB_OK || (e != LB_E_CONSENT_MALFORMED &&
	    e != LB_E_CONSENT_UNTRUSTED_ISSUER && e != LB_E_CONSENT_BAD_SIGNATURE);
	if (e != LB_OK)
		access_fail(ac, e, "%s", msg);
	else if (strcmp(ac->ac_cs.cs_rel, "self") != 0)
		access_fail(ac, LB_E_GUARDIAN_UNVERIFIED, "the access report is only given "
		    "to the citizen in person (rel \"self\")");
	OPENSSL_cleanse(sub, sizeof(sub));
}

static void
access_verify_done(void *arg)
{
	struct access	*ac = arg;

	if (ac->ac_err != LB_OK)
		access_finish(ac);
	else
		access_claim(ac);
}

static void access_read_done(void *);
static void access_read_work(void *);

static void
access_claimed(void *arg, int status)
{
	struct access	*ac = arg;

	if (status == 1)
		access_fail(ac, LB_E_CONSENT_REPLAYED, "this consent token was already used");
	else if (status == 2)
		access_fail(ac, LB_E_CONSENT_EXPIRED, "the consent token expired before it could "
		    "be recorded");
	else if (status != 0)
		access_fail(ac, LB_E_JOURNAL_UNAVAILABLE, "the journal could not record the "
		    "consent token");
	if (ac->ac_err != LB_OK) {
		access_finish(ac);
		return;
	}
	if (workers_submit(ac->ac_gw->gw_workers, ac->ac_gw->gw_base, access_read_work,
	    access_read_done, ac) != 0) {
		access_fail(ac, LB_E_INTERNAL, "the gateway is shutting down");
		access_finish(ac);
	}
}

/* One token, one report: the jti is claimed like an exchange's. */
static void
access_claim(struct access *ac)
{
	if (journal_jti_claim(ac->ac_gw->gw_journal, ac->ac_gw->gw_base, ac->ac_cs.cs_jti,
	    (uint64_t)(ac->ac_cs.cs_exp + LB_SKEW_S), access_claimed, ac) != 0) {
		access_fail(ac, LB_E_JOURNAL_UNAVAILABLE, "the journal is not accepting "
		    "records");
		access_finish(ac);
	}
}

/* Adds one record to the page, newest first (worker thread). */
static int
access_collect(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct access	*ac = arg;

	if (ac->ac_n == ac->ac_limit || (ac->ac_rec[ac->ac_n] = malloc(len)) == NULL)
		return -1;
	memcpy(ac->ac_rec[ac->ac_n], rec, len);
	ac->ac_rec_len[ac->ac_n] = len;
	ac->ac_seq[ac->ac_n++] = seq;
	return 0;
}

/* A report entry: what a citizen wants to know, from one record. */
static int
access_entry(struct access *ac, uint64_t seq, const uint8_t *rec, size_t len,
    msgpack_object *out)
{
	static const char *const fields[] = { "kind", "op", "consumer", "bundle", "item",
	    "dept", "decision", "code", "rel" };
	msgpack_zone	*z = &ac->ac_zone;
	msgpack_object	 dec;
	const msgpack_object *o;
	struct mpk_map	 m;
	size_t		 i;

	if (mpk_unpack(rec, len, z, &dec) != 0 || dec.type != MSGPACK_OBJECT_MAP)
		return -1;
	mpk_map_init(&m, z, 13);
	mpk_map_put(&m, "seq", mpk_uint(seq));
	if ((o = mpk_get(&dec, "t_ms")) != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		mpk_map_put(&m, "t_ms", *o);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if ((o = mpk_get(&dec, fields[i])) != NULL && o->type == MSGPACK_OBJECT_STR)
			mpk_map_put(&m, fields[i], *o);
	if ((o = mpk_get(&dec, "exch")) != NULL && o->type == MSGPACK_OBJECT_BIN)
		mpk_map_put(&m, "exchange", *o);
	*out = m.mm_obj;
	return 0;
}

static void
access_read_work(void *arg)
{
	struct access		*ac = arg;
	struct journal_filter	 f;
	struct mpk_map		 m;
	msgpack_object		 list;
	bool			 more;
	uint64_t		 next;
	size_t			 i;

	if ((ac->ac_rec = calloc(ac->ac_limit, sizeof(*ac->ac_rec))) == NULL ||
	    (ac->ac_rec_len = calloc(ac->ac_limit, sizeof(*ac->ac_rec_len))) == NULL ||
	    (ac->ac_seq = calloc(ac->ac_limit, sizeof(*ac->ac_seq))) == NULL) {
		access_fail(ac, LB_E_INTERNAL, "out of memory");
		return;
	}
	/*
	 * The subject index walked from the newest record down: a page costs
	 * its own records, however long the citizen's history.
	 */
	memset(&f, 0, sizeof(f));
	f.jf_has_subject = true;
	journal_pseudonym(ac->ac_gw->gw_journal, ac->ac_cs.cs_sub, f.jf_subject);
	f.jf_newest_first = true;
	f.jf_has_before = ac->ac_has_before;
	f.jf_before = ac->ac_before;
	do {
		f.jf_limit = ac->ac_limit - ac->ac_n;
		if (journal_query(ac->ac_gw->gw_journal, &f, access_collect, ac, &more,
		    &next) != 0) {
			access_fail(ac, LB_E_JOURNAL_UNAVAILABLE, "the journal could not be read");
			return;
		}
		f.jf_has_before = true;
		f.jf_before = next;
	} while (more && ac->ac_n < ac->ac_limit);
	list = mpk_array(&ac->ac_zone, (uint32_t)ac->ac_n);
	for (i = 0; i < ac->ac_n; i++)
		if (access_entry(ac, ac->ac_seq[i], ac->ac_rec[i], ac->ac_rec_len[i],
		    &list.via.array.ptr[i]) != 0) {
			access_fail(ac, LB_E_JOURNAL_UNAVAILABLE, "a journal record could not "
			    "be decoded");
			return;
		}
	mpk_map_init(&m, &ac->ac_zone, 2);
	mpk_map_put(&m, "accesses", list);
	/* Older records remain: the next page ends before the oldest one shown. */
	mpk_map_put(&m, "next", more && ac->ac_n > 0 ? mpk_uint(ac->ac_seq[ac->ac_n - 1]) :
	    mpk_nil());
	ac->ac_body = m.mm_obj;
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
	struct access	*ac = arg;

	(void)first_seq;
	if (status != 0)
		http_error(ac->ac_req, LB_E_JOURNAL_UNAVAILABLE, "the journal could not record "
		    "this read, so its answer is withheld");
	else if (ac->ac_err != LB_OK)
		http_error(ac->ac_req, ac->ac_err, "%s", ac->ac_msg);
	else
		http_reply(ac->ac_req, 200, &ac->ac_body);
	access_free(ac);
}

/*
 * Journals the outcome: an "audit-read" record about the citizen when the
 * report was made, a "deny" record otherwise.
 */
static void
access_finish(struct access *ac)
{
	struct journal	*j = ac->ac_gw->gw_journal;
	struct jrec	 rec;

	memset(&rec, 0, sizeof(rec));
	rec.jr_kind = ac->ac_err == LB_OK ? JK_AUDIT_READ : JK_DENY;
	rec.jr_t_ms = now_ms();
	snprintf(rec.jr_consumer, sizeof(rec.jr_consumer), "%s", ac->ac_consumer);
	snprintf(rec.jr_bundle, sizeof(rec.jr_bundle), "%s", ACCESS_BUNDLE);
	snprintf(rec.jr_item, sizeof(rec.jr_item), "%s", ACCESS_ITEM);
	if (ac->ac_token != NULL) {
		rec.jr_has_consent = true;
		memcpy(rec.jr_consent, ac->ac_cs.cs_hash, 32);
	}
	if (ac->ac_cs_valid) {
		rec.jr_has_subject = rec.jr_has_actor = true;
		journal_pseudonym(j, ac->ac_cs.cs_sub, rec.jr_subject);
		journal_pseudonym(j, ac->ac_cs.cs_act, rec.jr_actor);
		snprintf(rec.jr_rel, sizeof(rec.jr_rel), "%s", ac->ac_cs.cs_rel);
	}
	snprintf(rec.jr_decision, sizeof(rec.jr_decision), "%s",
	    ac->ac_err == LB_OK ? "allow" : "deny");
	snprintf(rec.jr_code, sizeof(rec.jr_code), "%s", lb_err_code(ac->ac_err));
	if (journal_append(j, ac->ac_gw->gw_base, &rec, 1, access_logged, ac) != 0) {
		http_error(ac->ac_req, LB_E_JOURNAL_UNAVAILABLE, "the journal cannot record "
		    "this read now; try again");
		access_free(ac);
	}
}

/* Reads limit and before; -1 with a sentence in err. */
static int
access_query(struct access *ac, struct evhttp_request *req, char *err, size_t errlen)
{
	struct evkeyvalq	 q;
	const char		*query;
	uint64_t		 lim = 0;
	bool			 has_lim;
	int			 ret = -1;

	TAILQ_INIT(&q);
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (query != NULL && evhttp_parse_query_str(query, &q) != 0) {
		snprintf(err, errlen, "the query string is malformed");
		return -1;
	}
	if (!http_query_u64(&q, "limit", &lim, &has_lim) ||
	    !http_query_u64(&q, "before", &ac->ac_before, &ac->ac_has_before)) {
		snprintf(err, errlen, "limit and before must be decimal integers");
		goto done;
	}
	if (has_lim && (lim == 0 || lim > ACCESS_LIMIT_MAX)) {
		snprintf(err, errlen, "limit must be from 1 to %d", ACCESS_LIMIT_MAX);
		goto done;
	}
	ac->ac_limit = has_lim ? (size_t)lim : ACCESS_LIMIT_DEFAULT;
	ret = 0;
done:
	evhttp_clear_headers(&q);
	return ret;
}

/* The token of the Lianban-Consent header: base64url of the envelope. */
static void
access_token(struct access *ac, struct evhttp_request *req)
{
	const char	*h;
	size_t		 hlen;

	h = evhttp_find_header(evhttp_request_get_input_headers(req), ACCESS_HEADER);
	if (h == NULL || h[0] == '\0') {
		access_fail(ac, LB_E_CONSENT_MISSING, "the %s header must carry the citizen's "
		    "consent token for bundle \"%s\"", ACCESS_HEADER, ACCESS_BUNDLE);
		return;
	}
	hlen = strlen(h);
	if (hlen > (ACCESS_TOKEN_MAX / 3 + 1) * 4 ||
	    b64url_decode(h, hlen, &ac->ac_token, &ac->ac_token_len) != 0 ||
	    ac->ac_token_len == 0 || ac->ac_token_len > ACCESS_TOKEN_MAX) {
		free(ac->ac_token);
		ac->ac_token = NULL;
		access_fail(ac, LB_E_CONSENT_MALFORMED, "the %s header must be a consent "
		    "envelope in base64url without padding, at most %d bytes decoded",
		    ACCESS_HEADER, ACCESS_TOKEN_MAX);
		return;
	}
	SHA256(ac->ac_token, ac->ac_token_len, ac->ac_cs.cs_hash);
}

void
http_subject(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	struct access	*ac;
	char		 err[160];

	if (strcmp(path, "/v1/subjects/me/accesses") != 0) {
		http_error(req, LB_E_NOT_FOUND, "no such API route: %s", path);
		return;
	}
	if ((ac = calloc(1, sizeof(*ac))) == NULL) {
		http_error(req, LB_E_INTERNAL, "out of memory");
		return;
	}
	ac->ac_gw = gw;
	ac->ac_req = req;
	snprintf(ac->ac_consumer, sizeof(ac->ac_consumer), "%s", pr->pr_id);
	if (access_query(ac, req, err, sizeof(err)) != 0) {
		free(ac);
		http_error(req, LB_E_BAD_REQUEST, "%s", err);
		return;
	}
	msgpack_zone_init(&ac->ac_zone, 8192);
	gw->gw_inflight++;
	ac->ac_now = (int64_t)(now_ms() / 1000);
	ac->ac_snap = gw->gw_snap;
	snapshot_ref(ac->ac_snap);
	if ((ac->ac_policy = snapshot_policy(ac->ac_snap, ACCESS_BUNDLE)) == NULL)
		access_fail(ac, LB_E_UNKNOWN_BUNDLE, "no bundle policy \"%s\" is loaded",
		    ACCESS_BUNDLE);
	else if (!policy_allows_consumer(ac->ac_policy, pr->pr_id))
		access_fail(ac, LB_E_FORBIDDEN_ROLE, "consumer %s may not use bundle \"%s\"",
		    pr->pr_id, ACCESS_BUNDLE);
	else if (!ex_rate_ok(ac->ac_policy, pr->pr_id))
		access_fail(ac, LB_E_RATE_LIMITED, "consumer %s exceeds the rate limit of "
		    "bundle \"%s\" (%u per second, burst %u)", pr->pr_id, ACCESS_BUNDLE,
		    ac->ac_policy->po_rate_per_s, ac->ac_policy->po_rate_burst);
	else
		access_token(ac, req);
	if (ac->ac_err != LB_OK) {
		access_finish(ac);
		return;
	}
	if (workers_submit(gw->gw_workers, gw->gw_base, access_verify_work,
	    access_verify_done, ac) != 0) {
		access_fail(ac, LB_E_INTERNAL, "the gateway is shutting down");
		access_finish(ac);
	}
}
