/*
 * exchange.c - POST /v1/exchanges: one consented, sealed, journaled exchange.
 *
 * An exchange moves through these states, each finished by a callback on
 * the event loop:
 *
 *	CONSENT	verify every subject's consent token,	(worker thread)
 *		that it was not revoked, and reserve
 *		its jti in memory
 *	CLAIM	refuse the tokens used before		(loop)
 *	RELATION fetch and check the record that proves	(HTTP client, worker)
 *		the relation of the person acting to the
 *		subject: guardian, legal representative, agent
 *	FETCH	query the departments in parallel	(libevent HTTP client)
 *	SEAL	translate, minimize			(worker thread)
 *		then seal, in batches shared with	(sealer.c, workers)
 *		other exchanges
 *	JOURNAL	append the records with the reserved	(journal writer)
 *		jtis, wait for their one commit
 *	REPLY	answer the consumer
 *
 * A verification (POST /v1/verifications, verification.c) is the same
 * machine with one item per predicate: its SEAL step evaluates the
 * predicate on the translated record and seals the attestation of the
 * answer instead of the record, and its records are of kind "verify".
 *
 * The answer leaves only after the commit that holds the exchange's
 * records, so an acknowledged exchange is never missing from the journal.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "cluster.h"

#define EX_TOKEN_MAX	(16 * 1024)

enum ex_state {
	EX_CONSENT,
	EX_CLAIM,
	EX_RELATION,
	EX_FETCH,
	EX_SEAL,
	EX_JOURNAL,
	EX_REPLY
};

static const char *const ex_state_names[] = {
	"consent", "claim", "relation", "fetch", "seal", "journal", "reply"
};

struct exchange;
struct ex_subject;

struct ex_item {
	struct exchange			*it_ex;
	struct ex_subject		*it_su;
	char				 it_item[LB_ITEM_MAX];
	const struct policy_item	*it_pi;
	const struct adapter		*it_ad;
	const struct seal_key		*it_seal;
	enum lb_err			 it_status;
	char				 it_msg[256];
	uint8_t				*it_body;
	size_t				 it_body_len;
	bool				 it_fetched;	/* body came with the relation proof */
	msgpack_object			 it_doc;
	uint8_t				*it_doc_bytes;
	size_t				 it_doc_len;
	uint8_t				 it_doc_hash[32];
	uint8_t				*it_claim;
	size_t				 it_claim_len;
	uint8_t				 it_claim_hash[32];
	uint8_t				*it_receipt;
	size_t				 it_receipt_len;
	struct seal_req			 it_sr;
	uint64_t			 it_seq;
	uint64_t			 it_t0_us;
	int64_t				 it_latency_us;
	/* Verifications: the predicate this item answers (NULL in an exchange). */
	const struct predicate		*it_pred;
	struct ex_item			*it_same;	/* fetched by this earlier item */
	bool				 it_result;
};

struct ex_subject {
	char			 su_id[LB_SUBJECT_MAX];
	uint8_t			*su_token;	/* in ex_zone */
	size_t			 su_token_len;
	/* The pseudonyms of sub and act, made once for all the subject's records. */
	bool			 su_pseud_done;
	uint8_t			 su_pseud_sub[32], su_pseud_act[32];
	struct consent		 su_cs;		/* cs_trusted: claims usable */
	int			 su_claim;	/* what journal_jti_reserve said */
	bool			 su_reserved;	/* holds the jti until ex_journal */
	enum lb_err		 su_status;
	char			 su_msg[256];
	struct ex_item		*su_items;
	size_t			 su_nitems;
	struct predicate	*su_preds;	/* a verification's, one per item */
	uint64_t		 su_seq;	/* its deny record, when denied */
	/* rel other than "self": the record that proves the relation */
	enum policy_rel		 su_rel;
	bool			 su_rel_ok;
	char			 su_agent_name[JOURNAL_PARTY_NAME_MAX];	/* from the delegation */
	size_t			 su_proof_next;	/* next policy proof to try */
	const struct policy_proof *su_proof;	/* the one fetched this round */
	const struct adapter	*su_proof_ad;
	uint8_t			*su_proof_body;
	size_t			 su_proof_len;
	const struct policy_proof *su_proof_last;	/* last one asked for */
	const char		*su_proof_dept;
	char			 su_proof_why[200];
	/* Every proof record asked of a department, each journaled. */
	struct ex_proof_try {
		const struct policy_proof *pt_proof;
		const char		*pt_dept;
		enum lb_err		 pt_status;	/* ok: it proved the relation */
		bool			 pt_reused;	/* served as a requested item too */
		int64_t			 pt_latency_us;
		uint64_t		 pt_t0_us;
	}			 su_tried[POLICY_MAX_PROOFS];
	size_t			 su_ntried;
};

struct exchange {
	struct gw		*ex_gw;
	struct evhttp_request	*ex_req;
	struct snapshot		*ex_snap;
	struct principal	 ex_pr;
	const struct policy	*ex_policy;
	char			 ex_bundle[LB_ID_MAX];
	struct lb_outcome	 ex_out;	/* a failure of the whole request */
	uint8_t			 ex_id[16];
	char			 ex_idtxt[24];
	msgpack_zone		 ex_zone;
	struct ex_subject	*ex_subj;	/* ex_nsubj of them, in ex_zone */
	size_t			 ex_nsubj;
	int			 ex_pending;
	enum ex_state		 ex_state;
	uint64_t		 ex_t0_us;
	int64_t			 ex_now;
	uint64_t		 ex_exch_seq;
	bool			 ex_expected;	/* announced to the sealer */
	size_t			 ex_proofs;	/* relation proofs fetched this round */
	bool			 ex_refused;	/* refused as a whole: one deny record */
	bool			 ex_verify;	/* a verification, not an exchange */
};

static void	su_why(struct ex_subject *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	ex_claim(struct exchange *);
static void	ex_relation(struct exchange *);
static void	ex_fetch(struct exchange *);
static void	ex_seal(struct exchange *);
static void	ex_journal(struct exchange *);
static void	ex_reply(struct exchange *);

static void
ex_enter(struct exchange *ex, enum ex_state st)
{
	log_debug("exchange %s: %s -> %s", ex->ex_idtxt, ex_state_names[ex->ex_state],
	    ex_state_names[st]);
	ex->ex_state = st;
}

static void
ex_free(struct exchange *ex)
{
	size_t	i, j;

	for (i = 0; i < ex->ex_nsubj; i++) {
		struct ex_subject *su = &ex->ex_subj[i];

		for (j = 0; j < su->su_nitems; j++) {
			free(su->su_items[j].it_body);
			free(su->su_items[j].it_doc_bytes);
			free(su->su_items[j].it_claim);
			free(su->su_items[j].it_receipt);
		}
		free(su->su_preds);
		/* Never journaled (the exchange failed as a whole): the token stays unused. */
		if (su->su_reserved)
			journal_jti_release(ex->ex_gw->gw_journal, su->su_cs.cs_jti);
		free(su->su_proof_body);
	}
	if (ex->ex_expected)
		sealer_unexpect(ex->ex_gw->gw_sealer);
	snapshot_unref(ex->ex_snap);
	msgpack_zone_destroy(&ex->ex_zone);
	ex->ex_gw->gw_inflight--;
	free(ex);
}

/* Fails the whole request: the answer is this failure alone, without results. */
static void
ex_abort(struct exchange *ex, enum lb_err e, const char *msg)
{
	lb_outcome_fail(&ex->ex_out, e, "%s", msg);
	ex_reply(ex);
}

/* Runs work(ex) on a worker thread, then done(ex) on the loop. */
static void
ex_work(struct exchange *ex, void (*work)(void *), void (*done)(void *))
{
	if (workers_submit(ex->ex_gw->gw_workers, ex->ex_gw->gw_base, work, done, ex) != 0)
		ex_abort(ex, LB_E_INTERNAL, "the gateway is shutting down");
}

static void
su_deny(struct ex_subject *su, enum lb_err e, const char *msg)
{
	size_t	i;

	if (su->su_status != LB_OK)
		return;		/* the first failure is the one reported */
	su->su_status = e;
	snprintf(su->su_msg, sizeof(su->su_msg), "%s", msg);
	for (i = 0; i < su->su_nitems; i++) {
		su->su_items[i].it_status = e;
		snprintf(su->su_items[i].it_msg, sizeof(su->su_items[i].it_msg), "%s", msg);
	}
}

/* Notes why a relation proof failed; the last reason is the one reported. */
static void
su_why(struct ex_subject *su, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(su->su_proof_why, sizeof(su->su_proof_why), fmt, ap);
	va_end(ap);
}

static void
it_fail(struct ex_item *it, enum lb_err e, const char *msg)
{
	if (it->it_status != LB_OK)
		return;
	it->it_status = e;
	snprintf(it->it_msg, sizeof(it->it_msg), "%s", msg);
}

/*
 * A verification's subject: one item per predicate, several of which may
 * ask about the same record (it is fetched once, see ex_fetch).
 */
static int
ex_parse_predicates(struct exchange *ex, struct ex_subject *su, const msgpack_object *r,
    uint32_t i)
{
	char	err[256];
	size_t	j, n;

	if (predicate_parse(mpk_get(r, "predicates"), &ex->ex_zone, &su->su_preds, &n, err,
	    sizeof(err)) != 0) {
		lb_outcome_fail(&ex->ex_out, LB_E_BAD_REQUEST, "requests[%u]: %s", i, err);
		return -1;
	}
	su->su_items = mpk_zalloc(&ex->ex_zone, n * sizeof(*su->su_items));
	memset(su->su_items, 0, n * sizeof(*su->su_items));
	ex->ex_nsubj = i + 1;
	for (j = 0; j < n; j++) {
		struct ex_item *it = &su->su_items[j];

		memcpy(it->it_item, su->su_preds[j].pd_item, sizeof(it->it_item));
		it->it_pred = &su->su_preds[j];
		it->it_ex = ex;
		it->it_su = su;
	}
	su->su_nitems = n;
	return 0;
}

/*
 * Decodes the request body.  Structural errors fail the whole request with
 * bad_request before anything is journaled: such a request names no
 * exchange a citizen could ask about.
 */
static int
ex_parse(struct exchange *ex, const msgpack_object *body, msgpack_zone *z)
{
	const msgpack_object	*reqs, *r, *items, *tok;
	const uint8_t		*p;
	size_t			 n;
	uint32_t		 i, j, k;

#define BAD(...) do { lb_outcome_fail(&ex->ex_out, LB_E_BAD_REQUEST, __VA_ARGS__); \
	return -1; } while (0)
	if (body->type != MSGPACK_OBJECT_MAP)
		BAD("the request body must be an object with bundle and requests");
	if (mpk_get_str(body, "bundle", ex->ex_bundle, sizeof(ex->ex_bundle)) != 0 ||
	    ex->ex_bundle[0] == '\0')
		BAD("\"bundle\" must be a non-empty string of at most %d bytes", LB_ID_MAX - 1);
	if ((reqs = mpk_get(body, "requests")) == NULL || reqs->type != MSGPACK_OBJECT_ARRAY ||
	    reqs->via.array.size == 0)
		BAD("\"requests\" must be a non-empty array");
	if (reqs->via.array.size > LB_MAX_SUBJECTS)
		BAD("at most %d subjects per exchange", LB_MAX_SUBJECTS);
	/*
	 * The subjects and their items live in the exchange's zone, as many as
	 * asked for: one arena for the exchange, zeroed as far as it is used.
	 */
	ex->ex_subj = mpk_zalloc(&ex->ex_zone, reqs->via.array.size * sizeof(*ex->ex_subj));
	memset(ex->ex_subj, 0, reqs->via.array.size * sizeof(*ex->ex_subj));
	for (i = 0; i < reqs->via.array.size; i++) {
		struct ex_subject *su = &ex->ex_subj[i];

		r = &reqs->via.array.ptr[i];
		if (r->type != MSGPACK_OBJECT_MAP)
			BAD("requests[%u] must be an object", i);
		if (mpk_get_str(r, "subject", su->su_id, sizeof(su->su_id)) != 0 ||
		    su->su_id[0] == '\0')
			BAD("requests[%u].subject must be a non-empty string of at most %d bytes",
			    i, LB_SUBJECT_MAX - 1);
		if (ex->ex_verify) {
			if (ex_parse_predicates(ex, su, r, i) != 0)
				return -1;
			goto token;
		}
		if ((items = mpk_get(r, "items")) == NULL || items->type != MSGPACK_OBJECT_ARRAY ||
		    items->via.array.size == 0 || items->via.array.size > LB_MAX_ITEMS)
			BAD("requests[%u].items must list 1 to %d item types", i, LB_MAX_ITEMS);
		su->su_items = mpk_zalloc(&ex->ex_zone, items->via.array.size *
		    sizeof(*su->su_items));
		memset(su->su_items, 0, items->via.array.size * sizeof(*su->su_items));
		ex->ex_nsubj = i + 1;
		for (j = 0; j < items->via.array.size; j++) {
			struct ex_item *it = &su->su_items[j];

			if (mpk_obj_str(&items->via.array.ptr[j], it->it_item,
			    sizeof(it->it_item)) != 0 || it->it_item[0] == '\0')
				BAD("requests[%u].items[%u] must be a short string", i, j);
			for (k = 0; k < j; k++)
				if (strcmp(su->su_items[k].it_item, it->it_item) == 0)
					BAD("requests[%u] asks for item \"%s\" twice", i,
					    it->it_item);
			it->it_ex = ex;
			it->it_su = su;
			su->su_nitems = j + 1;
		}
token:
		if ((tok = mpk_get(r, "consent")) == NULL || tok->type == MSGPACK_OBJECT_NIL) {
			su_deny(su, LB_E_CONSENT_MISSING, "no consent token was given for "
			    "this subject");
			continue;
		}
		if (mpk_obj_bytes(tok, z, &p, &n) != 0 || n == 0 || n > EX_TOKEN_MAX) {
			su_deny(su, LB_E_CONSENT_MALFORMED, "consent must be an envelope "
			    "(msgpack bin, or base64url without padding in JSON)");
			continue;
		}
		/* The body's zone ends with this call; the exchange's own lasts. */
		su->su_token = mpk_zalloc(&ex->ex_zone, n);
		memcpy(su->su_token, p, n);
		su->su_token_len = n;
		SHA256(p, n, su->su_cs.cs_hash);
	}
#undef BAD
	return 0;
}

/* Admits each subject's token (worker thread). */
static void
ex_consent_work(void *arg)
{
	struct exchange		*ex = arg;
	struct consent_ask	 ask = {
		.ca_aud = ex->ex_gw->gw_conf.gc_id,
		.ca_consumer = ex->ex_pr.pr_id,
		.ca_bundle = ex->ex_bundle,
		.ca_policy = ex->ex_policy,
		.ca_now = ex->ex_now
	};
	char			 (*names)[LB_ITEM_MAX];
	char			 msg[256];
	enum lb_err		 e;
	size_t			 i, j;

	for (i = 0; i < ex->ex_nsubj; i++) {
		struct ex_subject *su = &ex->ex_subj[i];

		if (su->su_status != LB_OK)
			continue;
		if ((names = calloc(su->su_nitems, sizeof(*names))) == NULL) {
			su_deny(su, LB_E_INTERNAL, "out of memory");
			continue;
		}
		for (j = 0; j < su->su_nitems; j++)
			memcpy(names[j], su->su_items[j].it_item, LB_ITEM_MAX);
		ask.ca_subject = su->su_id;
		ask.ca_items = (const char (*)[LB_ITEM_MAX])names;
		ask.ca_nitems = su->su_nitems;
		e = consent_admit(ex->ex_snap->sn_trust, ex->ex_gw->gw_journal, &ask, su->su_token,
		    su->su_token_len, &su->su_cs, msg, sizeof(msg));
		if (e != LB_OK)
			su_deny(su, e, msg);
		else {
			su->su_claim = journal_jti_reserve(ex->ex_gw->gw_journal,
			    su->su_cs.cs_jti, su->su_cs.cs_keep_until);
			su->su_reserved = su->su_claim == 0;
		}
		free(names);
	}
}

static void
ex_consent_done(void *arg)
{
	ex_claim(arg);
}

static void
ex_claim_done(void *arg, int status)
{
	struct ex_subject	*su = arg;
	struct exchange		*ex = su->su_items[0].it_ex;
	const char		*msg;
	enum lb_err		 e;

	if ((e = consent_claim_error(status, &msg)) != LB_OK)
		su_deny(su, e, msg);
	if (--ex->ex_pending == 0)
		ex_relation(ex);
}

/*
 * Each token authorizes one exchange: its jti was reserved on the worker
 * (journal_jti_reserve: of every request with that jti, in flight or
 * committed, only the first wins) and is written by the commit that holds
 * the exchange's records, so the claim costs no commit of its own.
 */
static void
ex_claim(struct exchange *ex)
{
	size_t	i;

	ex_enter(ex, EX_CLAIM);
	ex->ex_pending = 1;	/* held until every claim is decided */
	for (i = 0; i < ex->ex_nsubj; i++) {
		struct ex_subject *su = &ex->ex_subj[i];

		if (su->su_status != LB_OK)
			continue;
		ex->ex_pending++;
		/*
		 * A cluster claims on etcd too, for every node at once
		 * (cluster.c); the reservation here keeps this node's own
		 * journal consistent and is written with the records.
		 */
		if (ex->ex_gw->gw_cluster != NULL && su->su_claim == 0) {
			if (cluster_jti_claim(ex->ex_gw->gw_cluster, ex->ex_gw->gw_base,
			    su->su_cs.cs_jti, su->su_cs.cs_keep_until, ex_claim_done, su) != 0) {
				ex->ex_pending--;
				su_deny(su, LB_E_CONSENT_STORE_UNAVAILABLE, "the consent store "
				    "cannot be asked");
			}
			continue;
		}
		ex_claim_done(su, su->su_claim);
	}
	if (--ex->ex_pending == 0)
		ex_relation(ex);
}

/*
 * Consent by someone else (docs/contract.md §5, last step).  The token says act is
 * sub's guardian, legal representative or agent; the gateway believes it
 * only when a record the policy names for that relation, fetched for the
 * subject through the normal adapter path, lists act in one of the
 * policy's fields (and, for an agent, is a delegation in force for the
 * bundle: relation_proven).  Proofs are tried in policy order, one round
 * each, until one proves the relation; until then no other item of the
 * subject is fetched.
 */
static const struct adapter *
ex_proof_adapter(const struct exchange *ex, const struct policy_proof *pp)
{
	const char	*dept;

	if ((dept = policy_proof_dept(ex->ex_policy, pp)) == NULL)
		return NULL;
	return snapshot_adapter_for(ex->ex_snap, dept, pp->pp_item);
}

static void
ex_relation_work(void *arg)
{
	struct exchange		*ex = arg;
	msgpack_object		 doc;
	enum lb_err		 e;
	char			 err[256];
	size_t			 i;

	for (i = 0; i < ex->ex_nsubj; i++) {
		struct ex_subject *su = &ex->ex_subj[i];
		const struct policy_proof *pp = su->su_proof;

		if (pp == NULL || su->su_proof_body == NULL || su->su_status != LB_OK)
			continue;
		if ((e = translate(su->su_proof_ad, pp->pp_item, su->su_id, su->su_proof_body,
		    su->su_proof_len, &ex->ex_zone, &doc, err, sizeof(err))) != LB_OK) {
			su->su_tried[su->su_ntried - 1].pt_status = e;
			su_why(su, "the %s record could not be read: %s", pp->pp_item, err);
			continue;
		}
		su->su_rel_ok = relation_proven(su->su_rel, pp, &doc, su->su_cs.cs_act,
		    ex->ex_bundle, ex->ex_now, err, sizeof(err));
		if (!su->su_rel_ok) {
			su->su_tried[su->su_ntried - 1].pt_status = relation_error(su->su_rel);
			su_why(su, "%s", err);
		} else if (su->su_rel == POLICY_REL_AGENT)
			relation_field(&doc, "agent_name", su->su_agent_name,
			    sizeof(su->su_agent_name));
	}
}

/* Hands a proven proof's body to the requested item it also is, if any. */
static void
ex_proof_reuse(struct ex_subject *su)
{
	size_t	j;

	for (j = 0; j < su->su_nitems; j++) {
		struct ex_item *it = &su->su_items[j];

		/* Not to a predicate the policy refused: that record would hide the read. */
		if (strcmp(it->it_item, su->su_proof->pp_item) != 0 || it->it_status != LB_OK)
			continue;
		if (strcmp(policy_item(it->it_ex->ex_policy, it->it_item)->pi_dept,
		    su->su_proof_ad->ad_dept) != 0)
			return;
		it->it_body = su->su_proof_body;
		it->it_body_len = su->su_proof_len;
		it->it_fetched = true;
		it->it_t0_us = su->su_tried[su->su_ntried - 1].pt_t0_us;
		it->it_latency_us = su->su_tried[su->su_ntried - 1].pt_latency_us;
		su->su_tried[su->su_ntried - 1].pt_reused = true;
		su->su_proof_body = NULL;
		return;
	}
}

static void
ex_relation_done(void *arg)
{
	struct exchange	*ex = arg;
	size_t		 i;

	for (i = 0; i < ex->ex_nsubj; i++) {
		struct ex_subject *su = &ex->ex_subj[i];

		if (su->su_proof == NULL)
			continue;
		if (su->su_rel_ok && su->su_status == LB_OK)
			ex_proof_reuse(su);
		free(su->su_proof_body);
		su->su_proof_body = NULL;
		su->su_proof = NULL;
	}
	/* The next round tries the next proof of the subjects still unproven. */
	ex_relation(ex);
}

static void
ex_relation_round(struct exchange *ex)
{
	if (ex->ex_proofs == 0) {
		ex_fetch(ex);
		return;
	}
	ex_work(ex, ex_relation_work, ex_relation_done);
}

/*
 * Keeps a copy of a department's answer, which is valid only during the
 * fanout callback; NUL-terminated for the parsers that read text.  -1 when
 * memory runs out.
 */
static int
ex_keep_answer(const uint8_t *body, size_t len, uint8_t **out, size_t *outlen)
{
	if ((*out = malloc(len + 1)) == NULL)
		return -1;
	memcpy(*out, body, len);
	(*out)[len] = '\0';
	*outlen = len;
	return 0;
}

static void
ex_proof_fetched(void *arg, enum lb_err e, const uint8_t *body, size_t len, const char *msg)
{
	struct ex_subject	*su = arg;
	struct exchange		*ex = su->su_items[0].it_ex;
	struct ex_proof_try	*pt = &su->su_tried[su->su_ntried - 1];

	pt->pt_latency_us = (int64_t)(now_us_mono() - pt->pt_t0_us);
	pt->pt_status = e;
	if (e != LB_OK)
		su_why(su, "the %s record could not be fetched: %s", su->su_proof->pp_item, msg);
	else if (ex_keep_answer(body, len, &su->su_proof_body, &su->su_proof_len) != 0)
		su_why(su, "out of memory");
	if (--ex->ex_pending == 0)
		ex_relation_round(ex);
}

/* Starts the fetch of su's next proof, or denies su when none is left. */
static void
ex_relation_next(struct exchange *ex, struct ex_subject *su)
{
	const struct policy_relation	*rl = &ex->ex_policy->po_rel[su->su_rel];
	const struct policy_proof	*pp;
	const struct adapter		*ad;
	const char			*name = relation_name(su->su_rel);
	enum lb_err			 code = relation_error(su->su_rel);
	char				 msg[256];

	if (!rl->rl_allowed) {
		snprintf(msg, sizeof(msg), "bundle \"%s\" does not accept consent given by "
		    "someone else as %s", ex->ex_policy->po_bundle, name);
		su_deny(su, code, msg);
		return;
	}
	if (rl->rl_nproofs == 0) {
		snprintf(msg, sizeof(msg), "bundle \"%s\" names no record that proves a "
		    "%s relation, so none can be accepted", ex->ex_policy->po_bundle, name);
		su_deny(su, code, msg);
		return;
	}
	if (su->su_proof_next == 0 && !relation_subject_ok(su->su_rel, su->su_id, ex->ex_now,
	    msg, sizeof(msg))) {
		su_deny(su, code, msg);
		return;
	}
	while (su->su_proof_next < rl->rl_nproofs) {
		pp = &rl->rl_proofs[su->su_proof_next++];
		if ((ad = ex_proof_adapter(ex, pp)) == NULL) {
			if (su->su_proof_why[0] == '\0')
				su_why(su, "no department adapter serves the %s record",
				    pp->pp_item);
			continue;
		}
		su->su_proof = su->su_proof_last = pp;
		su->su_proof_ad = ad;
		su->su_proof_dept = ad->ad_dept;
		su->su_tried[su->su_ntried] = (struct ex_proof_try){ .pt_proof = pp,
		    .pt_dept = ad->ad_dept, .pt_status = LB_OK, .pt_t0_us = now_us_mono() };
		ex->ex_pending++;
		if (fanout_fetch(ex->ex_gw->gw_fanout, snapshot_egress_for(ex->ex_snap, ad), ad,
		    pp->pp_item, su->su_id, ex_proof_fetched, su) == 0) {
			su->su_ntried++;
			ex->ex_proofs++;
			return;
		}
		ex->ex_pending--;
		su->su_proof = NULL;
		su_why(su, "the %s record could not be requested", pp->pp_item);
	}
	snprintf(msg, sizeof(msg), "the %s relation is not proven: %s", name,
	    su->su_proof_why[0] != '\0' ? su->su_proof_why : "no proof record");
	su_deny(su, code, msg);
}

static void
ex_relation(struct exchange *ex)
{
	size_t	i;

	if (ex->ex_state != EX_RELATION)
		ex_enter(ex, EX_RELATION);
	ex->ex_proofs = 0;
	ex->ex_pending = 1;	/* held until every proof fetch is started */
	for (i = 0; i < ex->ex_nsubj; i++) {
		struct ex_subject *su = &ex->ex_subj[i];

		if (su->su_status == LB_OK && !su->su_rel_ok &&
		    relation_from_name(su->su_cs.cs_rel, &su->su_rel) == 0)
			ex_relation_next(ex, su);
	}
	if (--ex->ex_pending == 0)
		ex_relation_round(ex);
}

static void
ex_fetch_done(void *arg, enum lb_err e, const uint8_t *body, size_t len, const char *msg)
{
	struct ex_item	*it = arg;
	struct exchange	*ex = it->it_ex;

	it->it_latency_us = (int64_t)(now_us_mono() - it->it_t0_us);
	/* The department's message stays out of the log: it may quote the subject. */
	if (e != LB_OK)
		log_event(LB_LOG_WARN, "department_failure", "exchange", ex->ex_idtxt,
		    "dept", it->it_ad->ad_dept, "adapter", it->it_ad->ad_id,
		    "item", it->it_item, "code", lb_err_code(e), NULL);
	if (e != LB_OK)
		it_fail(it, e, msg);
	else if (ex_keep_answer(body, len, &it->it_body, &it->it_body_len) != 0)
		it_fail(it, LB_E_INTERNAL, "out of memory");
	if (--ex->ex_pending == 0)
		ex_seal(ex);
}

/*
 * The earlier item of su that fetches the record item j asks about, so that
 * predicates about one record cost one query; NULL when there is none.
 */
static struct ex_item *
ex_fetched_by(struct ex_subject *su, size_t j)
{
	size_t	k;

	for (k = 0; k < j; k++)
		if (su->su_items[k].it_status == LB_OK && su->su_items[k].it_same == NULL &&
		    strcmp(su->su_items[k].it_item, su->su_items[j].it_item) == 0)
			return &su->su_items[k];
	return NULL;
}

static void
ex_fetch(struct exchange *ex)
{
	char	msg[256];
	size_t	i, j;

	ex_enter(ex, EX_FETCH);
	/* Its claims will reach the sealer; a lone claim of another exchange may wait for them. */
	sealer_expect(ex->ex_gw->gw_sealer);
	ex->ex_expected = true;
	ex->ex_pending = 1;
	for (i = 0; i < ex->ex_nsubj; i++) {
		struct ex_subject *su = &ex->ex_subj[i];

		if (su->su_status != LB_OK)
			continue;
		for (j = 0; j < su->su_nitems; j++) {
			struct ex_item *it = &su->su_items[j];

			if (it->it_status != LB_OK)
				continue;	/* a predicate the policy refused */
			it->it_pi = policy_item(ex->ex_policy, it->it_item);
			it->it_ad = snapshot_adapter_for(ex->ex_snap, it->it_pi->pi_dept,
			    it->it_item);
			if (it->it_ad == NULL) {
				snprintf(msg, sizeof(msg), "department %s has no adapter for "
				    "item \"%s\"", it->it_pi->pi_dept, it->it_item);
				it_fail(it, LB_E_NO_ADAPTER, msg);
				continue;
			}
			it->it_seal = snapshot_seal(ex->ex_snap, it->it_ad->ad_seal);
			if (it->it_fetched)
				continue;	/* fetched once, as the relation proof */
			if ((it->it_same = ex_fetched_by(su, j)) != NULL)
				continue;	/* another predicate about the same record */
			it->it_t0_us = now_us_mono();
			ex->ex_pending++;
			if (fanout_fetch(ex->ex_gw->gw_fanout, snapshot_egress_for(ex->ex_snap,
			    it->it_ad), it->it_ad, it->it_item, su->su_id, ex_fetch_done,
			    it) != 0) {
				ex->ex_pending--;
				it_fail(it, LB_E_DEPARTMENT_UNAVAILABLE, "the department "
				    "endpoint could not be used");
			}
		}
	}
	if (--ex->ex_pending == 0)
		ex_seal(ex);
}

/* Translates, minimizes and packs one item's answer (worker thread). */
static void
ex_translate_item(struct exchange *ex, struct ex_item *it)
{
	msgpack_sbuffer	sb;
	msgpack_object	doc;
	char		err[256];
	enum lb_err	e;
	struct ex_item	*src = it->it_same != NULL ? it->it_same : it;

	if (src->it_body == NULL) {
		/* The fetch this item shares failed: its failure is this one's. */
		it_fail(it, src->it_status, src->it_msg);
		return;
	}
	e = translate(it->it_ad, it->it_item, it->it_su->su_id, src->it_body, src->it_body_len,
	    &ex->ex_zone, &doc, err, sizeof(err));
	if (e != LB_OK) {
		it_fail(it, e, err);
		return;
	}
	if (it->it_pred == NULL)
		it->it_doc = policy_minimize(it->it_pi, &doc, &ex->ex_zone);
	else if ((e = verification_attest(it->it_pred, &doc, it->it_su->su_id,
	    it->it_ad->ad_dept, (uint64_t)ex->ex_now, &ex->ex_zone, &it->it_doc, &it->it_result,
	    err, sizeof(err))) != LB_OK) {
		it_fail(it, e, err);
		return;
	}
	if (mpk_pack_alloc(&it->it_doc, &it->it_doc_bytes, &it->it_doc_len) != 0) {
		it_fail(it, LB_E_DEPARTMENT_BAD_RESPONSE, "the translated document cannot be "
		    "encoded canonically");
		return;
	}
	SHA256(it->it_doc_bytes, it->it_doc_len, it->it_doc_hash);
	msgpack_sbuffer_init(&sb);
	if (seal_claim_pack(it->it_seal, it->it_item, it->it_doc_bytes, it->it_doc_len,
	    ex->ex_id, (uint64_t)ex->ex_now, &sb) != 0) {
		msgpack_sbuffer_destroy(&sb);
		it_fail(it, LB_E_INTERNAL, "the seal claim could not be built");
		return;
	}
	it->it_claim_len = sb.size;
	it->it_claim = (uint8_t *)msgpack_sbuffer_release(&sb);
	SHA256(it->it_claim, it->it_claim_len, it->it_claim_hash);
}

static void
ex_seal_work(void *arg)
{
	struct exchange	*ex = arg;
	size_t		 i, j;

	for (i = 0; i < ex->ex_nsubj; i++)
		for (j = 0; j < ex->ex_subj[i].su_nitems; j++) {
			struct ex_item *it = &ex->ex_subj[i].su_items[j];

			if (it->it_status == LB_OK)
				ex_translate_item(ex, it);
		}
}

static void
ex_sealed(void *arg, struct seal_req *sr)
{
	struct ex_item	*it = arg;
	struct exchange	*ex = it->it_ex;

	if (sr->sr_status != 0)
		it_fail(it, LB_E_INTERNAL, "the seal could not be applied");
	else {
		it->it_receipt = sr->sr_receipt;
		it->it_receipt_len = sr->sr_receipt_len;
	}
	if (--ex->ex_pending == 0)
		ex_journal(ex);
}

/*
 * The documents are translated: their claims go to the sealer, which signs
 * them in batches shared with other exchanges (loop thread).
 */
static void
ex_seal_done(void *arg)
{
	struct exchange	 *ex = arg;
	struct seal_req	**reqs;
	size_t		  i, j, n = 0, total = 0;

	for (i = 0; i < ex->ex_nsubj; i++)
		total += ex->ex_subj[i].su_nitems;
	if ((reqs = calloc(total, sizeof(*reqs))) == NULL) {
		ex_abort(ex, LB_E_INTERNAL, "out of memory");
		return;
	}
	for (i = 0; i < ex->ex_nsubj; i++)
		for (j = 0; j < ex->ex_subj[i].su_nitems; j++) {
			struct ex_item *it = &ex->ex_subj[i].su_items[j];

			if (ex->ex_subj[i].su_status != LB_OK || it->it_status != LB_OK)
				continue;
			it->it_sr.sr_key = it->it_seal;
			it->it_sr.sr_claim = it->it_claim;
			it->it_sr.sr_claim_len = it->it_claim_len;
			it->it_sr.sr_done = ex_sealed;
			it->it_sr.sr_arg = it;
			it->it_sr.sr_base = ex->ex_gw->gw_base;
			reqs[n++] = &it->it_sr;
		}
	ex->ex_pending = 1 + (int)n;	/* held until every claim is queued */
	sealer_submit(ex->ex_gw->gw_sealer, reqs, n);
	free(reqs);
	ex->ex_expected = false;
	sealer_unexpect(ex->ex_gw->gw_sealer);
	if (--ex->ex_pending == 0)
		ex_journal(ex);
}

static void
ex_seal(struct exchange *ex)
{
	ex_enter(ex, EX_SEAL);
	ex_work(ex, ex_seal_work, ex_seal_done);
}

static void
ex_record_common(struct exchange *ex, struct ex_subject *su, struct jrec *r)
{
	struct journal	*j = ex->ex_gw->gw_journal;

	memset(r, 0, sizeof(*r));
	r->jr_t_ms = now_ms();
	r->jr_has_exch = true;
	memcpy(r->jr_exch, ex->ex_id, 16);
	snprintf(r->jr_consumer, sizeof(r->jr_consumer), "%s", ex->ex_pr.pr_id);
	snprintf(r->jr_bundle, sizeof(r->jr_bundle), "%s", ex->ex_bundle);
	if (su == NULL)
		return;
	if (!su->su_pseud_done) {
		journal_pseudonym(j, su->su_id, su->su_pseud_sub);
		if (su->su_cs.cs_trusted)
			journal_pseudonym(j, su->su_cs.cs_act, su->su_pseud_act);
		su->su_pseud_done = true;
	}
	r->jr_has_subject = true;
	memcpy(r->jr_subject, su->su_pseud_sub, 32);
	if (su->su_token != NULL) {
		r->jr_has_consent = true;
		memcpy(r->jr_consent, su->su_cs.cs_hash, 32);
	}
	if (su->su_cs.cs_trusted) {
		r->jr_has_actor = true;
		memcpy(r->jr_actor, su->su_pseud_act, 32);
		snprintf(r->jr_rel, sizeof(r->jr_rel), "%s", su->su_cs.cs_rel);
	}
}

static void
ex_journal_done(void *arg, int status, uint64_t first_seq)
{
	struct exchange	*ex = arg;
	uint64_t	 seq = first_seq;
	size_t		 i, j;

	if (status != 0) {
		ex_abort(ex, LB_E_JOURNAL_UNAVAILABLE, "the journal could not commit this "
		    "exchange; nothing was released");
		return;
	}
	if (ex->ex_refused) {
		/* Its one record answers for every subject. */
		for (i = 0; i < ex->ex_nsubj; i++)
			ex->ex_subj[i].su_seq = first_seq;
		ex->ex_exch_seq = first_seq;
		ex_reply(ex);
		return;
	}
	/* Seqs follow the order in which ex_journal queued the records. */
	for (i = 0; i < ex->ex_nsubj; i++) {
		struct ex_subject *su = &ex->ex_subj[i];

		for (j = 0; j < su->su_ntried; j++)
			seq += !su->su_tried[j].pt_reused;	/* relation proofs first */
		if (su->su_status != LB_OK) {
			su->su_seq = seq++;
			continue;
		}
		for (j = 0; j < su->su_nitems; j++)
			su->su_items[j].it_seq = seq++;
	}
	ex->ex_exch_seq = seq;
	ex_reply(ex);
}

/*
 * One record per relation proof read and not requested as an item, one per
 * denied subject, one per item of a consented subject, and one for the
 * exchange as a whole.
 */
static void
ex_journal(struct exchange *ex)
{
	struct jrec	*recs, *r;
	struct jclaim	 claims[LB_MAX_SUBJECTS];
	enum lb_err	 first = LB_OK;
	size_t		 i, j, n = 1, nclaims = 0;
	bool		 any_ok = false;

	ex_enter(ex, EX_JOURNAL);
	for (i = 0; i < ex->ex_nsubj; i++) {
		n += ex->ex_subj[i].su_status != LB_OK ? 1 : ex->ex_subj[i].su_nitems;
		for (j = 0; j < ex->ex_subj[i].su_ntried; j++)
			n += !ex->ex_subj[i].su_tried[j].pt_reused;
	}
	if ((recs = calloc(n, sizeof(*recs))) == NULL) {
		ex_abort(ex, LB_E_JOURNAL_UNAVAILABLE, "out of memory");
		return;
	}
	r = recs;
	for (i = 0; i < ex->ex_nsubj; i++) {
		struct ex_subject *su = &ex->ex_subj[i];

		/*
		 * Queued before the records, so committed no later: the citizen's
		 * access report can name the agent of every record that says
		 * rel "agent".  Losing it loses only that name, never a record.
		 */
		if (su->su_rel_ok && su->su_rel == POLICY_REL_AGENT)
			(void)journal_party_note(ex->ex_gw->gw_journal, su->su_cs.cs_act,
			    su->su_agent_name);

		/*
		 * A proof record read from a department is an access to the
		 * child's data: journaled, unless it also is a requested item
		 * with its own record below.
		 */
		for (j = 0; j < su->su_ntried; j++) {
			const struct ex_proof_try *pt = &su->su_tried[j];

			if (pt->pt_reused)
				continue;
			ex_record_common(ex, su, r);
			r->jr_kind = JK_ITEM;
			snprintf(r->jr_op, sizeof(r->jr_op), "%s", relation_proof_op(su->su_rel));
			snprintf(r->jr_item, sizeof(r->jr_item), "%s", pt->pt_proof->pp_item);
			snprintf(r->jr_dept, sizeof(r->jr_dept), "%s", pt->pt_dept);
			snprintf(r->jr_decision, sizeof(r->jr_decision), "%s",
			    pt->pt_status == LB_OK ? "allow" : "deny");
			snprintf(r->jr_code, sizeof(r->jr_code), "%s", lb_err_code(pt->pt_status));
			r->jr_has_latency = true;
			r->jr_latency_us = pt->pt_latency_us;
			r++;
		}
		if (su->su_status != LB_OK) {
			ex_record_common(ex, su, r);
			r->jr_kind = JK_DENY;
			snprintf(r->jr_decision, sizeof(r->jr_decision), "deny");
			/* A refused relation still caused one query: name its record. */
			if (su->su_proof_last != NULL) {
				snprintf(r->jr_item, sizeof(r->jr_item), "%s",
				    su->su_proof_last->pp_item);
				snprintf(r->jr_dept, sizeof(r->jr_dept), "%s", su->su_proof_dept);
			}
			snprintf(r->jr_code, sizeof(r->jr_code), "%s", lb_err_code(su->su_status));
			if (first == LB_OK)
				first = su->su_status;
			r++;
			continue;
		}
		for (j = 0; j < su->su_nitems; j++) {
			struct ex_item *it = &su->su_items[j];

			ex_record_common(ex, su, r);
			r->jr_kind = JK_ITEM;
			if (it->it_pred != NULL)
				verification_record(it->it_pred, r);
			snprintf(r->jr_item, sizeof(r->jr_item), "%s", it->it_item);
			snprintf(r->jr_dept, sizeof(r->jr_dept), "%s", it->it_pi->pi_dept);
			snprintf(r->jr_decision, sizeof(r->jr_decision), "%s",
			    it->it_status == LB_OK ? "allow" : "deny");
			snprintf(r->jr_code, sizeof(r->jr_code), "%s", lb_err_code(it->it_status));
			if (it->it_status == LB_OK) {
				any_ok = true;
				r->jr_has_doc = r->jr_has_claim = true;
				memcpy(r->jr_doc, it->it_doc_hash, 32);
				memcpy(r->jr_claim, it->it_claim_hash, 32);
			} else if (first == LB_OK)
				first = it->it_status;
			if (it->it_t0_us != 0) {
				r->jr_has_latency = true;
				r->jr_latency_us = it->it_latency_us;
			}
			r++;
		}
	}
	ex_record_common(ex, NULL, r);
	r->jr_kind = JK_EXCHANGE;
	snprintf(r->jr_decision, sizeof(r->jr_decision), "%s", any_ok ? "allow" : "deny");
	snprintf(r->jr_code, sizeof(r->jr_code), "%s", lb_err_code(any_ok ? LB_OK : first));
	r->jr_has_latency = true;
	r->jr_latency_us = (int64_t)(now_us_mono() - ex->ex_t0_us);
	/*
	 * Every reserved jti is used up, whatever its subject's outcome (a
	 * guardian not proven, a department that failed): the token was
	 * valid and this request was its one use.
	 */
	for (i = 0; i < ex->ex_nsubj; i++) {
		struct ex_subject *su = &ex->ex_subj[i];

		if (!su->su_reserved)
			continue;
		memcpy(claims[nclaims].jl_jti, su->su_cs.cs_jti, sizeof(claims[0].jl_jti));
		claims[nclaims++].jl_keep_until = su->su_cs.cs_keep_until;
		su->su_reserved = false;	/* the journal's from here */
	}
	if (journal_append_claims(ex->ex_gw->gw_journal, ex->ex_gw->gw_base, recs, n, claims,
	    nclaims, ex_journal_done, ex) != 0) {
		ex_abort(ex, LB_E_JOURNAL_UNAVAILABLE, "the journal is not accepting records");
	}
	free(recs);
}

/*
 * A request refused as a whole before any consent was read (an unknown
 * bundle, a consumer the policy does not list, the bundle's rate limit)
 * is one "deny" record, however many subjects it names.  The record names
 * none of them: nothing the request says about a citizen was verified, and
 * a record per subject would let one refused request write seventeen.
 */
static void
ex_journal_refusal(struct exchange *ex, enum lb_err e)
{
	struct jrec	r;

	ex_enter(ex, EX_JOURNAL);
	ex->ex_refused = true;
	ex_record_common(ex, NULL, &r);
	r.jr_kind = JK_DENY;
	snprintf(r.jr_decision, sizeof(r.jr_decision), "deny");
	snprintf(r.jr_code, sizeof(r.jr_code), "%s", lb_err_code(e));
	if (journal_append(ex->ex_gw->gw_journal, ex->ex_gw->gw_base, &r, 1, ex_journal_done,
	    ex) != 0)
		ex_abort(ex, LB_E_JOURNAL_UNAVAILABLE, "the journal is not accepting records");
}

static msgpack_object
ex_result(struct exchange *ex, struct ex_subject *su, struct ex_item *it)
{
	msgpack_zone	*z = &ex->ex_zone;
	struct mpk_map	 m;
	msgpack_object	 seal;
	enum lb_err	 e = su->su_status != LB_OK ? su->su_status : it->it_status;

	if (it->it_pred != NULL)
		return verification_result(z, su->su_id, it->it_pred, e, su->su_status != LB_OK ?
		    su->su_msg : it->it_msg, su->su_status != LB_OK ? su->su_seq : it->it_seq,
		    it->it_result, &it->it_doc, it->it_doc_bytes, it->it_doc_len, it->it_receipt,
		    it->it_receipt_len);
	mpk_map_init(&m, z, 8);
	mpk_map_put(&m, "subject", mpk_str(su->su_id));
	mpk_map_put(&m, "item", mpk_str(it->it_item));
	mpk_map_put(&m, "status", mpk_str(lb_err_code(e)));
	mpk_map_put(&m, "journal_seq", mpk_uint(su->su_status != LB_OK ? su->su_seq :
	    it->it_seq));
	if (e != LB_OK) {
		mpk_map_put(&m, "message", mpk_str(su->su_status != LB_OK ? su->su_msg :
		    it->it_msg));
		return m.mm_obj;
	}
	mpk_map_put(&m, "document", it->it_doc);
	mpk_map_put(&m, "document_bytes", mpk_bin(it->it_doc_bytes, it->it_doc_len));
	if (mpk_unpack(it->it_receipt, it->it_receipt_len, z, &seal) == 0)
		mpk_map_put(&m, "seal", seal);
	return m.mm_obj;
}

/*
 * The log's event of an answered exchange: its id, consumer, bundle, how
 * many items it asked for, how many of them ended in each result (ok or an
 * error code, "ok:2,department_unavailable:1") and its latency; never a
 * subject or a document.  result is "served" when any item was, else the
 * code the request failed with.
 */
static void
ex_log(const struct exchange *ex, size_t nitems, const size_t counts[LB_E__COUNT],
    const char *result)
{
	char	results[512] = "", items[24], ms[24];
	size_t	e, n = 0;

	for (e = 0; e < LB_E__COUNT; e++)
		if (counts[e] > 0 && n < sizeof(results))
			n += (size_t)snprintf(results + n, sizeof(results) - n, "%s%s:%zu",
			    n > 0 ? "," : "", lb_err_code((enum lb_err)e), counts[e]);
	snprintf(items, sizeof(items), "%zu", nitems);
	snprintf(ms, sizeof(ms), "%.3f", (double)(now_us_mono() - ex->ex_t0_us) / 1000.0);
	log_event(LB_LOG_INFO, "exchange", "id", ex->ex_idtxt, "consumer", ex->ex_pr.pr_id,
	    "bundle", ex->ex_bundle, "items", items, "results", results, "result", result,
	    "latency_ms", ms, NULL);
}

/*
 * Counts the answered exchange: its result (ok when an item was served),
 * each item's, and the refusals before any department was asked.  The
 * bundle label is the requested one only when a policy names it, so that
 * a consumer cannot make up label values.
 */
static void
ex_metrics(struct exchange *ex, enum lb_err code)
{
	const char	*v[3];
	size_t		 i, j;

	v[0] = ex->ex_policy != NULL ? ex->ex_bundle : "unknown";
	v[1] = ex->ex_pr.pr_id;
	v[2] = lb_err_code(code);
	metrics_count(METRICS_EXCHANGES, 1, v);
	if (ex->ex_out.oc_code != LB_OK) {
		metrics_count(METRICS_DENIALS, 1, &v[2]);
		return;
	}
	for (i = 0; i < ex->ex_nsubj; i++) {
		struct ex_subject *su = &ex->ex_subj[i];

		if (su->su_status != LB_OK) {
			v[2] = lb_err_code(su->su_status);
			metrics_count(METRICS_DENIALS, 1, &v[2]);
		}
		for (j = 0; j < su->su_nitems; j++) {
			v[2] = lb_err_code(su->su_status != LB_OK ? su->su_status :
			    su->su_items[j].it_status);
			metrics_count(METRICS_ITEMS, 1, v);
		}
	}
}

static void
ex_reply(struct exchange *ex)
{
	struct mpk_map	 m, err;
	msgpack_object	 results;
	enum lb_err	 first = LB_OK;
	size_t		 i, j, n = 0, k = 0;
	bool		 any_ok = false, first_consent = false;
	const char	*msg = "";
	int		 status;
	size_t		 counts[LB_E__COUNT] = { 0 };

	ex_enter(ex, EX_REPLY);
	if (ex->ex_out.oc_code != LB_OK) {
		ex_metrics(ex, ex->ex_out.oc_code);
		http_error(ex->ex_req, ex->ex_out.oc_code, "%s", ex->ex_out.oc_msg);
		ex_log(ex, 0, counts, lb_err_code(ex->ex_out.oc_code));
		ex_free(ex);
		return;
	}
	for (i = 0; i < ex->ex_nsubj; i++)
		n += ex->ex_subj[i].su_nitems;
	results = mpk_array(&ex->ex_zone, (uint32_t)n);
	for (i = 0; i < ex->ex_nsubj; i++) {
		struct ex_subject *su = &ex->ex_subj[i];

		for (j = 0; j < su->su_nitems; j++) {
			struct ex_item *it = &su->su_items[j];
			enum lb_err e = su->su_status != LB_OK ? su->su_status : it->it_status;

			results.via.array.ptr[k++] = ex_result(ex, su, it);
			if ((unsigned)e < LB_E__COUNT)
				counts[e]++;
			if (e == LB_OK)
				any_ok = true;
			else if (first == LB_OK) {
				first = e;
				first_consent = su->su_status != LB_OK;
				msg = su->su_status != LB_OK ? su->su_msg : it->it_msg;
			}
		}
	}
	mpk_map_init(&m, &ex->ex_zone, 4);
	mpk_map_put(&m, "exchange", mpk_bin(ex->ex_id, 16));
	mpk_map_put(&m, "results", results);
	mpk_map_put(&m, "journal_seq", mpk_uint(ex->ex_exch_seq));
	if (!any_ok) {
		/* Nothing could be served: the request fails with its first reason. */
		mpk_map_init(&err, &ex->ex_zone, 2);
		mpk_map_put(&err, "code", mpk_str(lb_err_code(first)));
		mpk_map_put(&err, "message", mpk_str(msg));
		mpk_map_put(&m, "error", err.mm_obj);
		/*
		 * A token for another subject than the one requested is the
		 * consumer's mistake, not a department's: 403, not 502.
		 */
		status = first == LB_E_SUBJECT_MISMATCH && first_consent ? 403 :
		    lb_err_status(first);
		http_reply(ex->ex_req, status, &m.mm_obj);
	} else
		http_reply(ex->ex_req, 200, &m.mm_obj);
	ex_metrics(ex, any_ok ? LB_OK : first);
	ex_log(ex, n, counts, any_ok ? "served" : lb_err_code(first));
	ex_free(ex);
}

/*
 * A verification's predicates the policy does not allow fail alone, before
 * any department is asked; each is journaled with its code.
 */
static void
ex_predicates_allowed(struct exchange *ex)
{
	char	msg[256];
	size_t	i, j;
	enum lb_err e;

	for (i = 0; i < ex->ex_nsubj; i++)
		for (j = 0; j < ex->ex_subj[i].su_nitems; j++) {
			struct ex_item *it = &ex->ex_subj[i].su_items[j];

			it->it_pi = policy_item(ex->ex_policy, it->it_item);
			if ((e = predicate_allowed(ex->ex_policy, it->it_pred, msg,
			    sizeof(msg))) != LB_OK)
				it_fail(it, e, msg);
		}
}

void
exchange_start(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    msgpack_zone *z, const msgpack_object *body)
{
	exchange_begin(gw, req, pr, z, body, false);
}

void
exchange_begin(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    msgpack_zone *z, const msgpack_object *body, bool verify)
{
	struct exchange	*ex;
	size_t		 i;
	char		 msg[256], *idtxt;
	enum lb_err	 e;

	if ((ex = calloc(1, sizeof(*ex))) == NULL) {
		http_error(req, LB_E_INTERNAL, "out of memory");
		return;
	}
	gw->gw_inflight++;
	ex->ex_gw = gw;
	ex->ex_verify = verify;
	ex->ex_req = req;
	ex->ex_pr = *pr;
	ex->ex_snap = snapshot_current(gw, NULL);
	msgpack_zone_init(&ex->ex_zone, 16384);
	ex->ex_t0_us = now_us_mono();
	ex->ex_now = (int64_t)(now_ms() / 1000);
	if (RAND_bytes(ex->ex_id, sizeof(ex->ex_id)) != 1) {
		ex_abort(ex, LB_E_INTERNAL, "no randomness for an exchange id");
		return;
	}
	/* In the log as in the answer's "exchange": base64url, one form everywhere. */
	if ((idtxt = b64url_encode(ex->ex_id, sizeof(ex->ex_id))) == NULL) {
		ex_abort(ex, LB_E_INTERNAL, "out of memory");
		return;
	}
	snprintf(ex->ex_idtxt, sizeof(ex->ex_idtxt), "%s", idtxt);
	free(idtxt);
	if (ex_parse(ex, body, z) != 0) {
		ex_reply(ex);
		return;
	}
	/*
	 * A denial of the whole bundle is every subject's result.  A subject
	 * already refused keeps its own reason, except when the rate limit
	 * refuses the request: that is the reason for all of them.
	 */
	ex->ex_policy = snapshot_policy(ex->ex_snap, ex->ex_bundle);
	e = policy_admit(gw->gw_rates, ex->ex_policy, ex->ex_bundle, pr->pr_id, now_us_mono(),
	    msg, sizeof(msg));
	ex_enter(ex, EX_CONSENT);
	if (e != LB_OK) {
		for (i = 0; i < ex->ex_nsubj; i++) {
			if (e == LB_E_RATE_LIMITED)
				ex->ex_subj[i].su_status = LB_OK;
			su_deny(&ex->ex_subj[i], e, msg);
		}
		ex_journal_refusal(ex, e);
		return;
	}
	if (ex->ex_verify)
		ex_predicates_allowed(ex);
	ex_work(ex, ex_consent_work, ex_consent_done);
}
