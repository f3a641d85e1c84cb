/*
 * consent.c - verification and admission of consent tokens (docs/contract.md §5).
 *
 * The checks run in the contract's order and stop at the first failure, so
 * the code journaled for a refused request is the same one every other
 * implementation of the contract would report.  consent_admit is the one
 * path a token takes before its jti is claimed, for an exchange and for
 * the access report alike.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "lianban.h"

static int
consent_strings(const msgpack_object *o, char *dst, size_t width, size_t max, size_t *n)
{
	uint32_t	i;

	if (o == NULL || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > max)
		return -1;
	for (i = 0; i < o->via.array.size; i++)
		if (mpk_obj_str(&o->via.array.ptr[i], dst + i * width, width) != 0)
			return -1;
	*n = o->via.array.size;
	return 0;
}

/* Decodes the claims map; -1 when a field is missing or of the wrong type. */
static int
consent_decode(const msgpack_object *c, struct consent *cs, const char **field)
{
	const msgpack_object	*o;
	enum policy_rel		 rel;

#define STR(name, dst) do { *field = name; \
	if (mpk_get_str(c, name, dst, sizeof(dst)) != 0) return -1; } while (0)
#define INT(name, dst) do { *field = name; \
	if (mpk_get_i64(c, name, &dst) != 0) return -1; } while (0)
	STR("iss", cs->cs_iss);
	STR("aud", cs->cs_aud);
	STR("sub", cs->cs_sub);
	STR("act", cs->cs_act);
	STR("rel", cs->cs_rel);
	STR("azp", cs->cs_azp);
	STR("bundle", cs->cs_bundle);
	INT("liveness", cs->cs_liveness);
	INT("match", cs->cs_match);
	INT("iat", cs->cs_iat);
	INT("exp", cs->cs_exp);
#undef STR
#undef INT
	*field = "items";
	if (consent_strings(mpk_get(c, "items"), &cs->cs_items[0][0], LB_ITEM_MAX,
	    LB_MAX_ITEMS, &cs->cs_nitems) != 0)
		return -1;
	*field = "amr";
	if (consent_strings(mpk_get(c, "amr"), &cs->cs_amr[0][0], sizeof(cs->cs_amr[0]),
	    CONSENT_MAX_AMR, &cs->cs_namr) != 0)
		return -1;
	*field = "jti";
	if ((o = mpk_get(c, "jti")) == NULL || o->type != MSGPACK_OBJECT_BIN ||
	    o->via.bin.size != 16)
		return -1;
	memcpy(cs->cs_jti, o->via.bin.ptr, 16);
	*field = "rel";
	if (strcmp(cs->cs_rel, "self") != 0 && relation_from_name(cs->cs_rel, &rel) != 0)
		return -1;
	*field = "liveness/match";
	if (cs->cs_liveness < 0 || cs->cs_liveness > 1000 || cs->cs_match < 0 ||
	    cs->cs_match > 1000)
		return -1;
	return 0;
}

/* True when the token lists item among the items the citizen agreed to share. */
static bool
consent_covers(const struct consent *cs, const char *item)
{
	size_t	i;

	for (i = 0; i < cs->cs_nitems; i++)
		if (strcmp(cs->cs_items[i], item) == 0)
			return true;
	return false;
}

enum lb_err
consent_verify(const struct trust *t, const void *buf, size_t len,
    const struct consent_ask *ask, struct consent *cs, char *msg, size_t msglen)
{
	const struct trust_authority	*ta;
	const struct policy		*po = ask->ca_policy;
	struct envelope			 env;
	msgpack_zone			 z;
	const char			*why;
	enum lb_err			 e;
	size_t				 i;

	memset(cs, 0, sizeof(*cs));
	SHA256(buf, len, cs->cs_hash);
	msgpack_zone_init(&z, 2048);
#define DENY(code, ...) do { e = (code); snprintf(msg, msglen, __VA_ARGS__); goto done; } while (0)
	if (envelope_parse(buf, len, &z, "consent", &env, &why) != 0)
		DENY(LB_E_CONSENT_MALFORMED, "consent token is malformed: %s", why);
	if ((ta = trust_authority(t, env.env_kid)) == NULL)
		DENY(LB_E_CONSENT_UNTRUSTED_ISSUER, "consent token is signed by a key (kid) "
		    "that is not a trusted face-auth authority");
	if (trust_authority_usable(ta, ask->ca_now, &why) != 0)
		DENY(LB_E_CONSENT_UNTRUSTED_ISSUER, "consent token is signed by authority %s, "
		    "but %s", ta->ta_name, why);
	if (envelope_verify(&env, X509_get0_pubkey(ta->ta_cert)) != 0)
		DENY(LB_E_CONSENT_BAD_SIGNATURE, "consent token signature does not verify "
		    "with the key of authority %s", ta->ta_name);
	if (consent_decode(&env.env_claims, cs, &why) != 0)
		DENY(LB_E_CONSENT_MALFORMED, "consent claim \"%s\" is missing or invalid", why);
	if (strcmp(cs->cs_iss, ta->ta_name) != 0)
		DENY(LB_E_CONSENT_UNTRUSTED_ISSUER, "consent token names issuer \"%s\" but "
		    "is signed by authority \"%s\"", cs->cs_iss, ta->ta_name);
	if (strcmp(cs->cs_aud, ask->ca_aud) != 0)
		DENY(LB_E_CONSENT_WRONG_AUDIENCE, "consent token is for gateway \"%s\", "
		    "this is \"%s\"", cs->cs_aud, ask->ca_aud);
	if (strcmp(cs->cs_azp, ask->ca_consumer) != 0)
		DENY(LB_E_CONSENT_WRONG_CONSUMER, "consent token was issued to consumer "
		    "\"%s\", not to \"%s\"", cs->cs_azp, ask->ca_consumer);
	/*
	 * Claims are attacker-chosen 64-bit integers: compare without
	 * arithmetic on them that could overflow.  ca_now is a sane clock.
	 */
	if (cs->cs_exp <= cs->cs_iat ||
	    (uint64_t)cs->cs_exp - (uint64_t)cs->cs_iat > LB_CONSENT_LIFETIME_MAX)
		DENY(LB_E_CONSENT_EXPIRED, "consent lifetime (exp - iat) must be 1 to %d "
		    "seconds", LB_CONSENT_LIFETIME_MAX);
	if (cs->cs_exp < ask->ca_now - LB_SKEW_S)
		DENY(LB_E_CONSENT_EXPIRED, "consent token expired %llu s ago",
		    (unsigned long long)((uint64_t)ask->ca_now - (uint64_t)cs->cs_exp));
	if (cs->cs_iat > ask->ca_now + LB_SKEW_S)
		DENY(LB_E_CONSENT_NOT_YET_VALID, "consent token is issued %llu s in the future",
		    (unsigned long long)((uint64_t)cs->cs_iat - (uint64_t)ask->ca_now));
	/* Now that iat is near the clock, the authority must also have been valid then. */
	if (trust_authority_usable(ta, cs->cs_iat, &why) != 0)
		DENY(LB_E_CONSENT_UNTRUSTED_ISSUER, "consent token was issued by authority %s "
		    "at a time when %s", ta->ta_name, why);
	if (strcmp(cs->cs_bundle, ask->ca_bundle) != 0)
		DENY(LB_E_CONSENT_WRONG_BUNDLE, "consent token is for bundle \"%s\", the "
		    "request is for \"%s\"", cs->cs_bundle, ask->ca_bundle);
	/* Every requested item against the token first, then against the policy. */
	for (i = 0; i < ask->ca_nitems; i++)
		if (!consent_covers(cs, ask->ca_items[i]))
			DENY(LB_E_CONSENT_ITEM_NOT_COVERED, "the citizen did not consent to "
			    "share item \"%s\"", ask->ca_items[i]);
	for (i = 0; i < ask->ca_nitems; i++)
		if (policy_item(po, ask->ca_items[i]) == NULL)
			DENY(LB_E_ITEM_NOT_IN_POLICY, "item \"%s\" is not part of bundle \"%s\"",
			    ask->ca_items[i], po->po_bundle);
	if ((e = policy_assurance(po, (const char (*)[POLICY_AMR_LEN])cs->cs_amr, cs->cs_namr,
	    cs->cs_liveness, cs->cs_match, msg, msglen)) != LB_OK)
		goto done;
	if (ask->ca_subject != NULL && strcmp(cs->cs_sub, ask->ca_subject) != 0)
		DENY(LB_E_SUBJECT_MISMATCH, "consent token is for another subject than the "
		    "one requested");
	if (strcmp(cs->cs_rel, "self") == 0 && strcmp(cs->cs_act, cs->cs_sub) != 0)
		DENY(LB_E_CONSENT_MALFORMED, "rel is \"self\" but act differs from sub");
	/*
	 * An enterprise acts only through its legal representative, and only
	 * an enterprise has one: the subject's kind and rel must agree.
	 */
	if (strcmp(cs->cs_rel, "legal_rep") == 0 && !subject_id_enterprise(cs->cs_sub))
		DENY(LB_E_CONSENT_MALFORMED, "rel is \"legal_rep\" but sub is not a valid "
		    "unified social credit code (GB 32100, with its check character)");
	if (strcmp(cs->cs_rel, "legal_rep") != 0 && subject_id_enterprise(cs->cs_sub))
		DENY(LB_E_CONSENT_MALFORMED, "sub is an enterprise's unified social credit "
		    "code, for which only rel \"legal_rep\" is accepted");
#undef DENY
	e = LB_OK;
	msg[0] = '\0';
done:
	msgpack_zone_destroy(&z);
	return e;
}

enum lb_err
consent_admit(const struct trust *t, struct journal *j, const struct consent_ask *ask,
    const void *buf, size_t len, struct consent *cs, char *msg, size_t msglen)
{
	enum lb_err	e;

	e = consent_verify(t, buf, len, ask, cs, msg, msglen);
	if (e == LB_OK)
		e = journal_revoke_check(j, cs, msg, msglen);
	/*
	 * Claims are usable for the journal once the authority's signature held
	 * over well-formed claims of that authority: a later refusal (audience,
	 * time, assurance, revocation, ...) still names the citizen in its
	 * record, a forged or garbled token never does.
	 */
	cs->cs_trusted = e != LB_E_CONSENT_MALFORMED && e != LB_E_CONSENT_UNTRUSTED_ISSUER &&
	    e != LB_E_CONSENT_BAD_SIGNATURE;
	if (e == LB_OK)
		cs->cs_keep_until = (uint64_t)cs->cs_exp + LB_SKEW_S;
	return e;
}

enum lb_err
consent_claim_error(int status, const char **msg)
{
	switch (status) {
	case 0:
		*msg = "";
		return LB_OK;
	case 1:
		*msg = "this consent token was already used";
		return LB_E_CONSENT_REPLAYED;
	case 2:
		*msg = "the consent token expired before it could be recorded";
		return LB_E_CONSENT_EXPIRED;
	default:
		*msg = "the journal could not record the consent token";
		return LB_E_JOURNAL_UNAVAILABLE;
	}
}
