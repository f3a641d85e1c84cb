/*
 * revocation.c - POST /v1/revocations: withdrawing consent (docs/consent.md).
 *
 * A revocation names one token (its jti) or every token a citizen gave for
 * a bundle up to now (subject and bundle).  An admin sends the fields as
 * they are; a face-auth authority sends them inside an envelope of typ
 * "revocation" signed with its consent key, through any authenticated
 * client: there the signature, not the client, is the authority.
 *
 *	PARSE	decode the body				(loop)
 *	VERIFY	check a signed revocation's envelope	(worker thread)
 *	STORE	the revocation with its "revoke" record, in one commit
 *							(journal writer)
 *	REPLY	answer once both are committed
 *
 * A token is looked up in the revocations right before its jti is claimed
 * (consent_admit, for an exchange and the access report alike), so a
 * revoked token is refused with consent_revoked and its jti is never
 * consumed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>

#include "cluster.h"

#define RV_ENVELOPE_MAX	(16 * 1024)
/*
 * How long a revocation must be kept: a token lives at most
 * LB_CONSENT_LIFETIME_MAX seconds and is accepted LB_SKEW_S beyond its
 * exp, and its iat may lie LB_SKEW_S in the future.
 */
#define RV_KEEP_S	(LB_CONSENT_LIFETIME_MAX + 2 * LB_SKEW_S)

struct revocation {
	struct gw		*rv_gw;
	struct evhttp_request	*rv_req;
	struct snapshot		*rv_snap;
	struct principal	 rv_pr;
	uint8_t			*rv_env;	/* signed request, or NULL */
	size_t			 rv_env_len;
	bool			 rv_by_jti;
	uint8_t			 rv_jti[16];
	char			 rv_subject[LB_SUBJECT_MAX];
	char			 rv_bundle[LB_ID_MAX];
	char			 rv_authority[LB_ID_MAX];	/* who signed it */
	int64_t			 rv_now;
	int64_t			 rv_at;		/* in force for tokens issued up to then */
	struct lb_outcome	 rv_out;	/* the first failure, or LB_OK */
	uint8_t			 rv_key[JOURNAL_REVOKE_KEY_MAX];	/* journal_revoke_key */
	size_t			 rv_keylen;
	uint64_t		 rv_seq;	/* the "revoke" record */
};

/* Records the revocation's failure; the first one is the one reported. */
#define rv_fail(rv, e, ...)	lb_outcome_fail(&(rv)->rv_out, (e), __VA_ARGS__)

static void
rv_free(struct revocation *rv)
{
	free(rv->rv_env);
	snapshot_unref(rv->rv_snap);
	rv->rv_gw->gw_inflight--;
	free(rv);
}

/*
 * The revocation fields of a map: exactly one of jti, or subject with
 * bundle.  Other keys are allowed only where extra says so.
 */
static int
rv_fields(struct revocation *rv, const msgpack_object *m, msgpack_zone *z,
    const char *const *extra)
{
	const msgpack_object	*k;
	const uint8_t		*p;
	size_t			 n, e;
	uint32_t		 i;
	bool			 subj;

	if (m->type != MSGPACK_OBJECT_MAP) {
		rv_fail(rv, LB_E_BAD_REQUEST, "a revocation must be an object");
		return -1;
	}
	for (i = 0; i < m->via.map.size; i++) {
		k = &m->via.map.ptr[i].key;
		if (mpk_str_eq(k, "jti") || mpk_str_eq(k, "subject") || mpk_str_eq(k, "bundle"))
			continue;
		for (e = 0; extra != NULL && extra[e] != NULL; e++)
			if (mpk_str_eq(k, extra[e]))
				break;
		if (extra == NULL || extra[e] == NULL) {
			rv_fail(rv, LB_E_BAD_REQUEST, "a revocation takes jti, or subject and "
			    "bundle%s", extra != NULL ? ", plus iat (and iss, aud)" : "");
			return -1;
		}
	}
	subj = mpk_get(m, "subject") != NULL || mpk_get(m, "bundle") != NULL;
	if (mpk_get(m, "jti") != NULL) {
		if (subj || mpk_get_bytes(m, "jti", z, &p, &n) != 0 || n != 16) {
			rv_fail(rv, LB_E_BAD_REQUEST, "\"jti\" must be 16 bytes (bin, or "
			    "base64url in JSON), without subject or bundle");
			return -1;
		}
		rv->rv_by_jti = true;
		memcpy(rv->rv_jti, p, 16);
		return 0;
	}
	if (mpk_get_str(m, "subject", rv->rv_subject, sizeof(rv->rv_subject)) != 0 ||
	    rv->rv_subject[0] == '\0' ||
	    mpk_get_str(m, "bundle", rv->rv_bundle, sizeof(rv->rv_bundle)) != 0 ||
	    rv->rv_bundle[0] == '\0') {
		rv_fail(rv, LB_E_BAD_REQUEST, "a revocation needs \"jti\", or \"subject\" and "
		    "\"bundle\" (non-empty strings of at most %d bytes)", LB_ID_MAX - 1);
		return -1;
	}
	return 0;
}

/* Checks a signed revocation (worker thread). */
static void
rv_verify(void *arg)
{
	static const char *const extra[] = { "iat", "iss", "aud", NULL };
	struct revocation		*rv = arg;
	const struct trust_authority	*ta;
	struct envelope			 env;
	msgpack_zone			 z;
	const char			*why;
	char				 s[LB_ID_MAX];
	int64_t				 iat;

	msgpack_zone_init(&z, 1024);
	if (envelope_parse(rv->rv_env, rv->rv_env_len, &z, "revocation", &env, &why) != 0) {
		rv_fail(rv, LB_E_BAD_REQUEST, "the revocation envelope is malformed: %s", why);
		goto done;
	}
	if ((ta = trust_authority(rv->rv_snap->sn_trust, env.env_kid)) == NULL) {
		rv_fail(rv, LB_E_CONSENT_UNTRUSTED_ISSUER, "the revocation is signed by a key "
		    "that is not a trusted face-auth authority");
		goto done;
	}
	if (trust_authority_usable(ta, rv->rv_now, &why) != 0) {
		rv_fail(rv, LB_E_CONSENT_UNTRUSTED_ISSUER, "the revocation is signed by "
		    "authority %s, but %s", ta->ta_name, why);
		goto done;
	}
	if (envelope_verify(&env, X509_get0_pubkey(ta->ta_cert)) != 0) {
		rv_fail(rv, LB_E_CONSENT_BAD_SIGNATURE, "the revocation signature does not "
		    "verify with the key of authority %s", ta->ta_name);
		goto done;
	}
	if (rv_fields(rv, &env.env_claims, &z, extra) != 0)
		goto done;
	if (mpk_get_i64(&env.env_claims, "iat", &iat) != 0 ||
	    iat < rv->rv_now - RV_KEEP_S || iat > rv->rv_now + LB_SKEW_S) {
		rv_fail(rv, LB_E_BAD_REQUEST, "a signed revocation needs an \"iat\" within "
		    "the last %d seconds", RV_KEEP_S);
		goto done;
	}
	/*
	 * A signed revocation covers what the authority knew when it signed,
	 * so relaying it again later cannot reach consent given since.
	 */
	rv->rv_at = iat < rv->rv_now ? iat : rv->rv_now;
	if (mpk_get(&env.env_claims, "iss") != NULL &&
	    (mpk_get_str(&env.env_claims, "iss", s, sizeof(s)) != 0 ||
	    strcmp(s, ta->ta_name) != 0)) {
		rv_fail(rv, LB_E_CONSENT_UNTRUSTED_ISSUER, "the revocation names another "
		    "issuer than its signer %s", ta->ta_name);
		goto done;
	}
	if (mpk_get(&env.env_claims, "aud") != NULL &&
	    (mpk_get_str(&env.env_claims, "aud", s, sizeof(s)) != 0 ||
	    strcmp(s, rv->rv_gw->gw_conf.gc_id) != 0)) {
		rv_fail(rv, LB_E_CONSENT_WRONG_AUDIENCE, "the revocation is for another "
		    "gateway");
		goto done;
	}
	snprintf(rv->rv_authority, sizeof(rv->rv_authority), "%s", ta->ta_name);
done:
	msgpack_zone_destroy(&z);
}

static void
rv_reply(struct revocation *rv)
{
	msgpack_zone		 z;
	struct mpk_map		 m;
	uint64_t		 seq = rv->rv_seq;

	msgpack_zone_init(&z, 512);
	mpk_map_init(&m, &z, 5);
	mpk_map_put(&m, "revoked", mpk_str(rv->rv_by_jti ? "jti" : "subject"));
	if (rv->rv_by_jti)
		mpk_map_put(&m, "jti", mpk_bin(rv->rv_jti, 16));
	else
		mpk_map_put(&m, "bundle", mpk_str(rv->rv_bundle));
	mpk_map_put(&m, "revoked_at", mpk_uint((uint64_t)rv->rv_at));
	mpk_map_put(&m, "journal_seq", mpk_uint(seq));
	http_reply(rv->rv_req, 200, &m.mm_obj);
	msgpack_zone_destroy(&z);
	log_info("revocation of %s by %s %s", rv->rv_by_jti ? "a token" : "a subject's consent",
	    rv->rv_authority[0] != '\0' ? "authority" : rv->rv_pr.pr_role,
	    rv->rv_authority[0] != '\0' ? rv->rv_authority : rv->rv_pr.pr_id);
	rv_free(rv);
}

/* A cluster's other nodes have the revocation once etcd holds it (cluster.c). */
static void
rv_published(void *arg, int status)
{
	struct revocation	*rv = arg;

	if (status != 0) {
		http_error(rv->rv_req, LB_E_CONSENT_STORE_UNAVAILABLE, "the revocation is in "
		    "force on this node and journaled as record %llu, but the other nodes of "
		    "the cluster could not be told: etcd did not answer; send it again",
		    (unsigned long long)rv->rv_seq);
		rv_free(rv);
		return;
	}
	rv_reply(rv);
}

static void
rv_journaled(void *arg, int status, uint64_t seq)
{
	struct revocation	*rv = arg;

	if (status != 0) {
		http_error(rv->rv_req, LB_E_JOURNAL_UNAVAILABLE, "the revocation could not be "
		    "stored");
		rv_free(rv);
		return;
	}
	rv->rv_seq = seq;
	if (rv->rv_gw->gw_cluster == NULL) {
		rv_reply(rv);
		return;
	}
	if (cluster_revoke(rv->rv_gw->gw_cluster, rv->rv_gw->gw_base, rv->rv_key, rv->rv_keylen,
	    (uint64_t)rv->rv_at, (uint64_t)rv->rv_at + RV_KEEP_S, rv_published, rv) != 0)
		rv_published(rv, -1);
}

/*
 * Stores the revocation and its record in one commit of the journal writer,
 * so a revocation in force is always journaled.  The record names what was
 * revoked ("op"), by whom ("principal") and, for a subject, the subject's
 * pseudonym and the bundle; never a raw id or jti.
 */
static void
rv_store(void *arg)
{
	struct revocation	*rv = arg;
	struct journal		*j = rv->rv_gw->gw_journal;
	struct jrec		 r;
	uint8_t			*key = rv->rv_key;
	size_t			*keylen = &rv->rv_keylen;

	if (rv->rv_out.oc_code == LB_OK && journal_revoke_key(j, rv->rv_by_jti ? rv->rv_jti : NULL,
	    rv->rv_subject, rv->rv_bundle, key, keylen) != 0)
		rv_fail(rv, LB_E_BAD_REQUEST, "the revocation names no token");
	if (rv->rv_out.oc_code != LB_OK) {
		http_error(rv->rv_req, rv->rv_out.oc_code, "%s", rv->rv_out.oc_msg);
		rv_free(rv);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.jr_kind = JK_REVOKE;
	r.jr_t_ms = now_ms();
	if (!rv->rv_by_jti) {
		r.jr_has_subject = true;
		journal_pseudonym(j, rv->rv_subject, r.jr_subject);
		snprintf(r.jr_bundle, sizeof(r.jr_bundle), "%s", rv->rv_bundle);
	}
	snprintf(r.jr_op, sizeof(r.jr_op), "%s", rv->rv_by_jti ? "jti" : "subject");
	/* Who revoked: the signing authority, else the admin. Ids fit; role:id is cut if not. */
	if (snprintf(r.jr_principal, sizeof(r.jr_principal), "%s:%s",
	    rv->rv_authority[0] != '\0' ? "authority" : rv->rv_pr.pr_role,
	    rv->rv_authority[0] != '\0' ? rv->rv_authority : rv->rv_pr.pr_id) >=
	    (int)sizeof(r.jr_principal))
		log_debug("revocation: principal name shortened in the journal");
	snprintf(r.jr_decision, sizeof(r.jr_decision), "allow");
	snprintf(r.jr_code, sizeof(r.jr_code), "ok");
	if (journal_revoke(j, rv->rv_gw->gw_base, key, *keylen, (uint64_t)rv->rv_at,
	    (uint64_t)rv->rv_at + RV_KEEP_S, &r, rv_journaled, rv) != 0) {
		http_error(rv->rv_req, LB_E_JOURNAL_UNAVAILABLE, "the revocation could not be "
		    "stored: the journal is not accepting records");
		rv_free(rv);
	}
}

void
revocation_start(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    msgpack_zone *z, const msgpack_object *body)
{
	struct revocation	*rv;
	const msgpack_object	*o;
	const uint8_t		*p;
	size_t			 n;

	if ((rv = calloc(1, sizeof(*rv))) == NULL) {
		http_error(req, LB_E_INTERNAL, "out of memory");
		return;
	}
	gw->gw_inflight++;
	rv->rv_gw = gw;
	rv->rv_req = req;
	rv->rv_pr = *pr;
	rv->rv_snap = snapshot_current(gw, NULL);
	rv->rv_now = (int64_t)(now_ms() / 1000);
	rv->rv_at = rv->rv_now;
	if (body->type == MSGPACK_OBJECT_MAP && (o = mpk_get(body, "revocation")) != NULL) {
		/* Signed by an authority: any authenticated client may carry it. */
		if (body->via.map.size != 1 || mpk_obj_bytes(o, z, &p, &n) != 0 || n == 0 ||
		    n > RV_ENVELOPE_MAX)
			rv_fail(rv, LB_E_BAD_REQUEST, "\"revocation\" must be the only field "
			    "and an envelope of at most %d bytes (base64url in JSON)",
			    RV_ENVELOPE_MAX);
		else if ((rv->rv_env = malloc(n)) == NULL)
			rv_fail(rv, LB_E_INTERNAL, "out of memory");
		else {
			memcpy(rv->rv_env, p, n);
			rv->rv_env_len = n;
		}
	} else if (strcmp(pr->pr_role, "admin") != 0)
		rv_fail(rv, LB_E_FORBIDDEN_ROLE, "an unsigned revocation is for the admin role; "
		    "an authority signs its revocation as an envelope of typ \"revocation\"");
	else
		rv_fields(rv, body, z, NULL);
	/* Only a signed revocation has a signature to check off the loop. */
	if (rv->rv_out.oc_code != LB_OK || rv->rv_env == NULL) {
		rv_store(rv);
		return;
	}
	if (workers_submit(gw->gw_workers, gw->gw_base, rv_verify, rv_store, rv) != 0) {
		http_error(req, LB_E_INTERNAL, "the gateway is shutting down");
		rv_free(rv);
	}
}
