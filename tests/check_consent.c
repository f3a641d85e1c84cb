/*
 * check_consent.c - unit tests for consent tokens (docs/contract.md §5,
 * gateway/lib/consent.c) and the bundle policies they are checked against
 * (docs/consent.md, gateway/lib/policy.c).
 *
 * A face-auth authority is made here: a P-256 key, a self-signed
 * certificate with CN "faceauth", and a trust store holding it.  Tokens are
 * issued the way an authority would, as canonical claims signed in a
 * "consent" envelope, and each test changes one claim (or the request) to
 * reach one outcome of consent_verify.  The order tests build tokens that
 * fail several checks at once, since the contract fixes which failure is
 * reported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "lianban.h"
#include "check_util.h"

#define NOW		INT64_C(1767225600)	/* 2026-01-01T00:00:00Z */
#define GATEWAY		"lianban-demo"
#define CONSUMER	"newborn"
#define SUBJECT		"110105202601030012"
#define MOTHER		"110105199203154526"
#define BMC		"birth_medical_certificate"
#define HHR		"household_registration"

static const char policy_json[] =
    "{\"bundle\": \"newborn\", \"name\": \"新生儿出生一件事\","
    " \"purpose\": \"Register a newborn in one application.\","
    " \"consumers\": [\"newborn\"],"
    " \"assurance\": {\"amr\": [\"face\"], \"min_liveness\": 900, \"min_match\": 900},"
    " \"guardian\": {\"allowed\": true},"
    " \"items\": ["
    "  {\"item\": \"birth_medical_certificate\", \"dept\": \"nhc\","
    "   \"fields\": [\"birth_date\", \"mother_name\", \"father_name\"]},"
    "  {\"item\": \"household_registration\", \"dept\": \"psb\", \"fields\": [\"address\"]}]}";

static EVP_PKEY			*auth_key, *rogue_key;
static X509			*auth_cert;
static uint8_t			 auth_kid[32], rogue_kid[32];
static struct trust_authority	 auth;
static struct trust		 trust;
static struct policy		*policy;

/* The claims of one token; NULL strings and negative counts are left out. */
struct claims {
	const char	*iss, *aud, *sub, *act, *rel, *azp, *bundle;
	const char	*items[4];
	int		 nitems;
	const char	*amr[4];
	int		 namr;
	int64_t		 liveness, match, iat, exp;
	uint8_t		 jti[20];
	size_t		 jtilen;
	const char	*omit;		/* a claim to leave out */
	const char	*typ;		/* envelope typ */
	EVP_PKEY	*key;		/* signer */
	const uint8_t	*kid;
};

/* A token that passes every check for the default request. */
static void
claims_default(struct claims *c)
{
	memset(c, 0, sizeof(*c));
	c->iss = "faceauth";
	c->aud = GATEWAY;
	c->sub = SUBJECT;
	c->act = SUBJECT;
	c->rel = "self";
	c->azp = CONSUMER;
	c->bundle = "newborn";
	c->items[0] = BMC;
	c->items[1] = HHR;
	c->nitems = 2;
	c->amr[0] = "face";
	c->namr = 1;
	c->liveness = 950;
	c->match = 960;
	c->iat = NOW - 10;
	c->exp = NOW + 290;
	memcpy(c->jti, "\x01\x23\x45\x67\x89\xab\xcd\xef\xfe\xdc\xba\x98\x76\x54\x32\x10", 16);
	c->jtilen = 16;
	c->typ = "consent";
	c->key = auth_key;
	c->kid = auth_kid;
}

static void
put_str(struct mpk_map *m, const struct claims *c, const char *name, const char *v)
{
	if (v != NULL && (c->omit == NULL || strcmp(c->omit, name) != 0))
		mpk_map_put(m, name, mpk_str(v));
}

static void
put_int(struct mpk_map *m, const struct claims *c, const char *name, int64_t v)
{
	if (c->omit == NULL || strcmp(c->omit, name) != 0)
		mpk_map_put(m, name, mpk_int(v));
}

static void
put_list(struct mpk_map *m, msgpack_zone *z, const struct claims *c, const char *name,
    const char *const *v, int n)
{
	msgpack_object	a;
	int		i;

	if (n < 0 || (c->omit != NULL && strcmp(c->omit, name) == 0))
		return;
	a = mpk_array(z, (uint32_t)n);
	for (i = 0; i < n; i++)
		a.via.array.ptr[i] = mpk_str(v[i]);
	mpk_map_put(m, name, a);
}

/* Issues the token of c: canonical claims in an envelope; *out is initialized here. */
static void
issue(const struct claims *c, msgpack_sbuffer *out)
{
	msgpack_zone	z;
	msgpack_sbuffer	claims;
	struct mpk_map	m;

	msgpack_zone_init(&z, 2048);
	msgpack_sbuffer_init(&claims);
	mpk_map_init(&m, &z, 16);
	put_str(&m, c, "iss", c->iss);
	put_str(&m, c, "aud", c->aud);
	put_str(&m, c, "sub", c->sub);
	put_str(&m, c, "act", c->act);
	put_str(&m, c, "rel", c->rel);
	put_str(&m, c, "azp", c->azp);
	put_str(&m, c, "bundle", c->bundle);
	put_list(&m, &z, c, "items", c->items, c->nitems);
	put_list(&m, &z, c, "amr", c->amr, c->namr);
	put_int(&m, c, "liveness", c->liveness);
	put_int(&m, c, "match", c->match);
	put_int(&m, c, "iat", c->iat);
	put_int(&m, c, "exp", c->exp);
	if (c->omit == NULL || strcmp(c->omit, "jti") != 0)
		mpk_map_put(&m, "jti", mpk_bin(c->jti, c->jtilen));
	ck_assert_int_eq(mpk_pack(&m.mm_obj, &claims, false), 0);
	msgpack_sbuffer_init(out);
	ck_assert_int_eq(envelope_sign(c->key, c->kid, c->typ, NULL, 0, claims.data,
	    claims.size, out), 0);
	msgpack_sbuffer_destroy(&claims);
	msgpack_zone_destroy(&z);
}

/* The request of a consumer for the items of the default token. */
struct request {
	char			 rq_items[4][LB_ITEM_MAX];
	struct consent_ask	 rq_ask;
};

static void
request_default(struct request *r)
{
	memset(r, 0, sizeof(*r));
	strcpy(r->rq_items[0], BMC);
	strcpy(r->rq_items[1], HHR);
	r->rq_ask.ca_aud = GATEWAY;
	r->rq_ask.ca_consumer = CONSUMER;
	r->rq_ask.ca_bundle = "newborn";
	r->rq_ask.ca_subject = SUBJECT;
	r->rq_ask.ca_items = (const char (*)[LB_ITEM_MAX])r->rq_items;
	r->rq_ask.ca_nitems = 2;
	r->rq_ask.ca_policy = policy;
	r->rq_ask.ca_now = NOW;
}

/*
 * Checks an outcome of consent_verify: the code, and a message that is a
 * sentence on failure and empty on success.
 */
static void
ck_outcome(enum lb_err e, const char *msg, size_t msgsz, enum lb_err want)
{
	size_t	n = strlen(msg);

	ck_assert_msg(e == want, "consent_verify: got %s (%s), want %s", lb_err_code(e), msg,
	    lb_err_code(want));
	if (want == LB_OK) {
		ck_assert_uint_eq(n, 0);
		return;
	}
	ck_assert_msg(n >= 12 && n < msgsz - 1, "message \"%s\" is not a sentence", msg);
	ck_assert_msg(strchr(msg, ' ') != NULL && strchr(msg, '\n') == NULL,
	    "message \"%s\" is not one sentence", msg);
}

static enum lb_err
verify_buf(const void *buf, size_t len, const struct request *r, struct consent *cs,
    char *msg, size_t msgsz)
{
	struct consent	local;

	memset(msg, 'Z', msgsz);
	msg[msgsz - 1] = '\0';
	return consent_verify(&trust, buf, len, &r->rq_ask, cs != NULL ? cs : &local, msg,
	    msgsz);
}

static void
ck_verify_buf(const void *buf, size_t len, const struct request *r, enum lb_err want,
    struct consent *cs)
{
	char		msg[512];
	enum lb_err	e;

	e = verify_buf(buf, len, r, cs, msg, sizeof(msg));
	ck_outcome(e, msg, sizeof(msg), want);
}

/* Issues c and verifies it; the token is released before any assertion. */
static void
ck_verify(const struct claims *c, const struct request *r, enum lb_err want)
{
	msgpack_sbuffer	tok;
	char		msg[512];
	enum lb_err	e;

	issue(c, &tok);
	e = verify_buf(tok.data, tok.size, r, NULL, msg, sizeof(msg));
	msgpack_sbuffer_destroy(&tok);
	ck_outcome(e, msg, sizeof(msg), want);
}

static struct policy *
parse_policy_text(const char *txt, char *err, size_t errlen)
{
	static struct policy	 sentinel;
	msgpack_zone		 z;
	msgpack_object		 o;
	struct policy		*po = &sentinel;	/* policy_parse must reset it */

	msgpack_zone_init(&z, 4096);
	ck_assert_msg(mpk_from_json(txt, strlen(txt), &z, &o, err, errlen) == 0, "%s", err);
	err[0] = '\0';
	if (policy_parse(&o, &po, err, errlen) != 0)
		ck_assert_ptr_null(po);
	msgpack_zone_destroy(&z);
	return po;
}

static void
setup(void)
{
	char	err[256];

	ck_assert_ptr_nonnull(auth_key = EVP_EC_gen("P-256"));
	ck_assert_ptr_nonnull(rogue_key = EVP_EC_gen("P-256"));
	auth_cert = check_cert(auth_key, "/OU=authority/CN=faceauth", 1, NULL, NULL, false);
	/*
	 * The authority's certificate must be valid at the clock of the
	 * request (NOW, a fixed date) and of the journal tests (the real
	 * clock), so it is valid from the day before NOW to a year after
	 * whichever is later.
	 */
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notBefore(auth_cert), NOW - 86400));
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notAfter(auth_cert),
	    (time(NULL) > NOW ? time(NULL) : NOW) + 365 * 86400));
	ck_assert_int_gt(X509_sign(auth_cert, auth_key, EVP_sha256()), 0);
	ck_assert_int_eq(key_id_pkey(rogue_key, rogue_kid), 0);

	memset(&auth, 0, sizeof(auth));
	strcpy(auth.ta_name, "faceauth");
	auth.ta_cert = auth_cert;
	ck_assert_int_eq(key_id_cert(auth_cert, auth.ta_kid), 0);
	memcpy(auth_kid, auth.ta_kid, 32);
	/* The name the store would read from the certificate. */
	ck_assert_int_eq(cert_subject_field(auth_cert, NID_commonName, err, sizeof(err)), 0);
	ck_assert_str_eq(err, auth.ta_name);

	memset(&trust, 0, sizeof(trust));
	trust.t_auth = &auth;
	trust.t_nauth = 1;
	ck_assert_ptr_nonnull(policy = parse_policy_text(policy_json, err, sizeof(err)));
}

static void
teardown(void)
{
	policy_free(policy);
	policy = NULL;
	X509_free(auth_cert);
	EVP_PKEY_free(auth_key);
	EVP_PKEY_free(rogue_key);
	auth_cert = NULL;
	auth_key = rogue_key = NULL;
}

/*
 * Outcomes
 */

START_TEST(test_ok)
{
	struct claims	c;
	struct request	r;
	struct consent	cs;
	msgpack_sbuffer	tok;
	uint8_t		hash[32];

	claims_default(&c);
	request_default(&r);
	issue(&c, &tok);
	ck_verify_buf(tok.data, tok.size, &r, LB_OK, &cs);
	ck_assert_str_eq(cs.cs_iss, "faceauth");
	ck_assert_str_eq(cs.cs_aud, GATEWAY);
	ck_assert_str_eq(cs.cs_sub, SUBJECT);
	ck_assert_str_eq(cs.cs_act, SUBJECT);
	ck_assert_str_eq(cs.cs_rel, "self");
	ck_assert_str_eq(cs.cs_azp, CONSUMER);
	ck_assert_str_eq(cs.cs_bundle, "newborn");
	ck_assert_uint_eq(cs.cs_nitems, 2);
	ck_assert_str_eq(cs.cs_items[0], BMC);
	ck_assert_str_eq(cs.cs_items[1], HHR);
	ck_assert_uint_eq(cs.cs_namr, 1);
	ck_assert_str_eq(cs.cs_amr[0], "face");
	ck_assert(cs.cs_liveness == 950 && cs.cs_match == 960);
	ck_assert(cs.cs_iat == NOW - 10 && cs.cs_exp == NOW + 290);
	ck_assert_mem_eq(cs.cs_jti, c.jti, 16);
	SHA256((const uint8_t *)tok.data, tok.size, hash);
	ck_assert_mem_eq(cs.cs_hash, hash, 32);
	msgpack_sbuffer_destroy(&tok);

	/* A request for a subset of the consented items. */
	r.rq_ask.ca_nitems = 1;
	ck_verify(&c, &r, LB_OK);
}
END_TEST

START_TEST(test_ok_guardian)
{
	struct claims	c;
	struct request	r;

	/* The guardian proof is checked later, against the birth certificate. */
	claims_default(&c);
	c.rel = "guardian";
	c.act = MOTHER;
	request_default(&r);
	ck_verify(&c, &r, LB_OK);
}
END_TEST

START_TEST(test_malformed_garbage)
{
	struct claims	 c;
	struct request	 r;
	msgpack_sbuffer	 tok;
	uint8_t		*cut;

	request_default(&r);
	ck_verify_buf("not a token at all", 18, &r, LB_E_CONSENT_MALFORMED, NULL);
	ck_verify_buf("\xc1", 1, &r, LB_E_CONSENT_MALFORMED, NULL);
	ck_verify_buf("", 0, &r, LB_E_CONSENT_MALFORMED, NULL);
	ck_verify_buf("\x93\xc4\x00\xc4\x00\xc4\x00", 7, &r, LB_E_CONSENT_MALFORMED, NULL);

	/* A real token cut short, in an exact-size buffer. */
	claims_default(&c);
	issue(&c, &tok);
	ck_assert_ptr_nonnull(cut = malloc(tok.size - 1));
	memcpy(cut, tok.data, tok.size - 1);
	ck_verify_buf(cut, tok.size - 1, &r, LB_E_CONSENT_MALFORMED, NULL);
	free(cut);
	msgpack_sbuffer_destroy(&tok);
}
END_TEST

static const char *const claim_names[] = {
	"iss", "aud", "sub", "act", "rel", "azp", "bundle", "items", "amr", "liveness",
	"match", "iat", "exp", "jti",
};

START_TEST(test_malformed_missing_claim)
{
	struct claims	c;
	struct request	r;

	claims_default(&c);
	c.omit = claim_names[_i];
	request_default(&r);
	ck_verify(&c, &r, LB_E_CONSENT_MALFORMED);
}
END_TEST

START_TEST(test_malformed_claims)
{
	struct claims	c;
	struct request	r;

	request_default(&r);

	claims_default(&c);
	c.jtilen = 15;
	ck_verify(&c, &r, LB_E_CONSENT_MALFORMED);
	c.jtilen = 17;
	ck_verify(&c, &r, LB_E_CONSENT_MALFORMED);
	c.jtilen = 0;
	ck_verify(&c, &r, LB_E_CONSENT_MALFORMED);

	claims_default(&c);
	c.rel = "friend";
	ck_verify(&c, &r, LB_E_CONSENT_MALFORMED);

	claims_default(&c);
	c.liveness = 1001;
	ck_verify(&c, &r, LB_E_CONSENT_MALFORMED);
	claims_default(&c);
	c.match = -1;
	ck_verify(&c, &r, LB_E_CONSENT_MALFORMED);
}
END_TEST

START_TEST(test_malformed_claim_types)
{
	struct claims	 c;
	struct request	 r;
	msgpack_zone	 z;
	msgpack_sbuffer	 claims, tok;
	struct mpk_map	 m;
	int		 variant;

	/* Claims of the wrong msgpack type, built directly. */
	request_default(&r);
	claims_default(&c);
	for (variant = 0; variant < 4; variant++) {
		msgpack_zone_init(&z, 2048);
		mpk_map_init(&m, &z, 16);
		c.omit = variant == 0 ? "liveness" : variant == 1 ? "items" :
		    variant == 2 ? "jti" : "iat";
		put_str(&m, &c, "iss", c.iss);
		put_str(&m, &c, "aud", c.aud);
		put_str(&m, &c, "sub", c.sub);
		put_str(&m, &c, "act", c.act);
		put_str(&m, &c, "rel", c.rel);
		put_str(&m, &c, "azp", c.azp);
		put_str(&m, &c, "bundle", c.bundle);
		put_list(&m, &z, &c, "items", c.items, c.nitems);
		put_list(&m, &z, &c, "amr", c.amr, c.namr);
		put_int(&m, &c, "liveness", c.liveness);
		put_int(&m, &c, "match", c.match);
		put_int(&m, &c, "iat", c.iat);
		put_int(&m, &c, "exp", c.exp);
		if (variant != 2)
			mpk_map_put(&m, "jti", mpk_bin(c.jti, 16));
		switch (variant) {
		case 0:
			mpk_map_put(&m, "liveness", mpk_str("950"));
			break;
		case 1:
			mpk_map_put(&m, "items", mpk_str(BMC));
			break;
		case 2:		/* the base64url text of a jti is not a jti */
			mpk_map_put(&m, "jti", mpk_str("ASNFZ4mrze_-3LqYdlQyEA"));
			break;
		case 3:
			mpk_map_put(&m, "iat", mpk_bool(true));
			break;
		}
		msgpack_sbuffer_init(&claims);
		ck_assert_int_eq(mpk_pack(&m.mm_obj, &claims, false), 0);
		msgpack_sbuffer_init(&tok);
		ck_assert_int_eq(envelope_sign(auth_key, auth_kid, "consent", NULL, 0,
		    claims.data, claims.size, &tok), 0);
		ck_verify_buf(tok.data, tok.size, &r, LB_E_CONSENT_MALFORMED, NULL);
		msgpack_sbuffer_destroy(&tok);
		msgpack_sbuffer_destroy(&claims);
		msgpack_zone_destroy(&z);
	}
}
END_TEST

START_TEST(test_malformed_typ)
{
	struct claims	c;
	struct request	r;

	claims_default(&c);
	c.typ = "checkpoint";
	request_default(&r);
	ck_verify(&c, &r, LB_E_CONSENT_MALFORMED);
	c.typ = "seal-batch";
	ck_verify(&c, &r, LB_E_CONSENT_MALFORMED);
}
END_TEST

START_TEST(test_untrusted_issuer)
{
	struct claims	c;
	struct request	r;

	request_default(&r);
	/* Signed by a key the store does not hold, under its own kid. */
	claims_default(&c);
	c.key = rogue_key;
	c.kid = rogue_kid;
	ck_verify(&c, &r, LB_E_CONSENT_UNTRUSTED_ISSUER);

	/* Signed by the authority, but naming another issuer. */
	claims_default(&c);
	c.iss = "otherauth";
	ck_verify(&c, &r, LB_E_CONSENT_UNTRUSTED_ISSUER);
	c.iss = "faceaut";
	ck_verify(&c, &r, LB_E_CONSENT_UNTRUSTED_ISSUER);
	c.iss = "faceauth ";
	ck_verify(&c, &r, LB_E_CONSENT_UNTRUSTED_ISSUER);
}
END_TEST

START_TEST(test_bad_signature)
{
	struct claims	 c;
	struct request	 r;
	msgpack_sbuffer	 tok;
	msgpack_zone	 z;
	struct envelope	 env;
	const char	*why;
	size_t		 off;

	request_default(&r);
	claims_default(&c);
	issue(&c, &tok);
	/* Flip a byte in the middle of the signature (inside r or s of the DER). */
	msgpack_zone_init(&z, 2048);
	ck_assert_int_eq(envelope_parse(tok.data, tok.size, &z, "consent", &env, &why), 0);
	off = tok.size - env.env_sig_len / 2;
	msgpack_zone_destroy(&z);
	tok.data[off] ^= 0x40;
	ck_verify_buf(tok.data, tok.size, &r, LB_E_CONSENT_BAD_SIGNATURE, NULL);
	tok.data[off] ^= 0x40;
	ck_verify_buf(tok.data, tok.size, &r, LB_OK, NULL);
	msgpack_sbuffer_destroy(&tok);

	/* Signed by another key that claims the authority's kid. */
	claims_default(&c);
	c.key = rogue_key;
	ck_verify(&c, &r, LB_E_CONSENT_BAD_SIGNATURE);
}
END_TEST

START_TEST(test_wrong_audience)
{
	struct claims	c;
	struct request	r;

	claims_default(&c);
	c.aud = "lianban-prod";
	request_default(&r);
	ck_verify(&c, &r, LB_E_CONSENT_WRONG_AUDIENCE);
}
END_TEST

START_TEST(test_wrong_consumer)
{
	struct claims	c;
	struct request	r;

	claims_default(&c);
	request_default(&r);
	r.rq_ask.ca_consumer = "school_enrollment";
	ck_verify(&c, &r, LB_E_CONSENT_WRONG_CONSUMER);
	request_default(&r);
	c.azp = "newborn2";
	ck_verify(&c, &r, LB_E_CONSENT_WRONG_CONSUMER);
}
END_TEST

START_TEST(test_expired)
{
	struct claims	c;
	struct request	r;

	request_default(&r);
	claims_default(&c);
	r.rq_ask.ca_now = c.exp + LB_SKEW_S + 1;
	ck_verify(&c, &r, LB_E_CONSENT_EXPIRED);
	r.rq_ask.ca_now = c.exp + 86400;
	ck_verify(&c, &r, LB_E_CONSENT_EXPIRED);

	/* A lifetime over 600 s is refused even while the token is current. */
	request_default(&r);
	claims_default(&c);
	c.iat = NOW - 1;
	c.exp = c.iat + LB_CONSENT_LIFETIME_MAX + 1;
	ck_verify(&c, &r, LB_E_CONSENT_EXPIRED);
	c.exp = c.iat + 86400;
	ck_verify(&c, &r, LB_E_CONSENT_EXPIRED);
}
END_TEST

START_TEST(test_not_yet_valid)
{
	struct claims	c;
	struct request	r;

	request_default(&r);
	claims_default(&c);
	c.iat = NOW + LB_SKEW_S + 1;
	c.exp = c.iat + 300;
	ck_verify(&c, &r, LB_E_CONSENT_NOT_YET_VALID);
	c.iat = NOW + 3600;
	c.exp = c.iat + 300;
	ck_verify(&c, &r, LB_E_CONSENT_NOT_YET_VALID);
}
END_TEST

START_TEST(test_time_boundaries)
{
	struct claims	c;
	struct request	r;

	/* Exactly 60 s after exp: still accepted. */
	request_default(&r);
	claims_default(&c);
	r.rq_ask.ca_now = c.exp + LB_SKEW_S;
	ck_verify(&c, &r, LB_OK);

	/* Issued exactly 60 s in the future: accepted. */
	request_default(&r);
	claims_default(&c);
	c.iat = NOW + LB_SKEW_S;
	c.exp = c.iat + 300;
	ck_verify(&c, &r, LB_OK);

	/* A lifetime of exactly 600 s: accepted. */
	claims_default(&c);
	c.iat = NOW - 100;
	c.exp = c.iat + LB_CONSENT_LIFETIME_MAX;
	ck_verify(&c, &r, LB_OK);
}
END_TEST

/*
 * iat and exp are signed 64-bit claims; the window arithmetic must hold for
 * every value a signed token can carry, including ones near the ends of
 * the range, where exp - iat, exp + skew and iat - skew leave int64_t.
 */
START_TEST(test_time_lifetime_extreme)
{
	struct claims	c;
	struct request	r;

	/*
	 * exp - iat is about 2^63 s, far above the 600 s cap: a token valid
	 * for a year must not pass because the difference wraps negative.
	 */
	request_default(&r);
	claims_default(&c);
	c.iat = INT64_MIN + 1000;
	c.exp = NOW + 365 * 86400;
	r.rq_ask.ca_now = NOW + 180 * 86400;
	ck_verify(&c, &r, LB_E_CONSENT_EXPIRED);
}
END_TEST

START_TEST(test_time_far_future)
{
	struct claims	c;
	struct request	r;

	/* A short-lived token from the far future is not yet valid. */
	request_default(&r);
	claims_default(&c);
	c.exp = INT64_MAX;
	c.iat = INT64_MAX - 100;
	ck_verify(&c, &r, LB_E_CONSENT_NOT_YET_VALID);
}
END_TEST

START_TEST(test_time_far_past)
{
	struct claims	c;
	struct request	r;

	/* A short-lived token from the far past is expired. */
	request_default(&r);
	claims_default(&c);
	c.iat = INT64_MIN;
	c.exp = INT64_MIN + 100;
	ck_verify(&c, &r, LB_E_CONSENT_EXPIRED);
}
END_TEST

START_TEST(test_wrong_bundle)
{
	struct claims	c;
	struct request	r;

	claims_default(&c);
	c.bundle = "retirement";
	request_default(&r);
	ck_verify(&c, &r, LB_E_CONSENT_WRONG_BUNDLE);
}
END_TEST

START_TEST(test_item_not_covered)
{
	struct claims	c;
	struct request	r;

	/* The policy has household_registration; the citizen did not agree to it. */
	claims_default(&c);
	c.nitems = 1;
	request_default(&r);
	ck_verify(&c, &r, LB_E_CONSENT_ITEM_NOT_COVERED);
	c.nitems = 0;
	r.rq_ask.ca_nitems = 1;
	ck_verify(&c, &r, LB_E_CONSENT_ITEM_NOT_COVERED);
}
END_TEST

START_TEST(test_item_not_in_policy)
{
	struct claims	c;
	struct request	r;

	/* The token covers marriage_certificate, the newborn policy does not. */
	claims_default(&c);
	c.items[2] = "marriage_certificate";
	c.nitems = 3;
	request_default(&r);
	strcpy(r.rq_items[2], "marriage_certificate");
	r.rq_ask.ca_nitems = 3;
	ck_verify(&c, &r, LB_E_ITEM_NOT_IN_POLICY);

	/*
	 * An item outside the policy, asked before an item the token does not
	 * cover: every item is checked against the token before any against
	 * the policy (docs/contract.md §5), so the token's gap is the answer.
	 */
	claims_default(&c);
	c.items[0] = "marriage_certificate";
	c.nitems = 1;
	request_default(&r);
	strcpy(r.rq_items[0], "marriage_certificate");
	ck_verify(&c, &r, LB_E_CONSENT_ITEM_NOT_COVERED);
}
END_TEST

START_TEST(test_assurance_too_low)
{
	struct claims	c;
	struct request	r;

	request_default(&r);
	claims_default(&c);
	c.liveness = 899;
	ck_verify(&c, &r, LB_E_ASSURANCE_TOO_LOW);
	c.liveness = 900;
	ck_verify(&c, &r, LB_OK);

	claims_default(&c);
	c.match = 899;
	ck_verify(&c, &r, LB_E_ASSURANCE_TOO_LOW);
	c.match = 900;
	ck_verify(&c, &r, LB_OK);

	claims_default(&c);
	c.amr[0] = "pwd";
	ck_verify(&c, &r, LB_E_ASSURANCE_TOO_LOW);
	c.namr = 0;
	ck_verify(&c, &r, LB_E_ASSURANCE_TOO_LOW);
	c.amr[0] = "pwd";
	c.amr[1] = "face";
	c.namr = 2;
	ck_verify(&c, &r, LB_OK);
}
END_TEST

START_TEST(test_assurance_policy_amr)
{
	struct claims	 c;
	struct request	 r;
	struct policy	*po;
	char		 err[256];
	static const char strict[] =
	    "{\"bundle\": \"newborn\", \"name\": \"n\", \"consumers\": [\"newborn\"],"
	    " \"assurance\": {\"amr\": [\"face\", \"sms\"], \"min_liveness\": 0,"
	    " \"min_match\": 0},"
	    " \"items\": [{\"item\": \"birth_medical_certificate\", \"dept\": \"nhc\","
	    " \"fields\": []}]}";

	/* A policy may require more methods than face. */
	ck_assert_ptr_nonnull(po = parse_policy_text(strict, err, sizeof(err)));
	request_default(&r);
	r.rq_ask.ca_policy = po;
	r.rq_ask.ca_nitems = 1;
	claims_default(&c);
	ck_verify(&c, &r, LB_E_ASSURANCE_TOO_LOW);
	c.amr[1] = "sms";
	c.namr = 2;
	ck_verify(&c, &r, LB_OK);
	policy_free(po);
}
END_TEST

START_TEST(test_subject_mismatch)
{
	struct claims	c;
	struct request	r;

	claims_default(&c);
	request_default(&r);
	r.rq_ask.ca_subject = "110105202601030020";
	ck_verify(&c, &r, LB_E_SUBJECT_MISMATCH);
}
END_TEST

START_TEST(test_self_act_differs)
{
	struct claims	c;
	struct request	r;

	claims_default(&c);
	c.act = MOTHER;
	request_default(&r);
	ck_verify(&c, &r, LB_E_CONSENT_MALFORMED);
}
END_TEST

/*
 * Order of the checks (docs/contract.md §5)
 */

START_TEST(test_order_consumer_before_time)
{
	struct claims	c;
	struct request	r;

	claims_default(&c);
	c.azp = "school_enrollment";
	request_default(&r);
	r.rq_ask.ca_now = c.exp + 3600;
	ck_verify(&c, &r, LB_E_CONSENT_WRONG_CONSUMER);
}
END_TEST

START_TEST(test_order_audience_before_consumer)
{
	struct claims	c;
	struct request	r;

	claims_default(&c);
	c.aud = "elsewhere";
	c.azp = "school_enrollment";
	request_default(&r);
	r.rq_ask.ca_now = c.exp + 3600;
	ck_verify(&c, &r, LB_E_CONSENT_WRONG_AUDIENCE);
}
END_TEST

/* Every later check fails too; a bad signature is still what is reported. */
START_TEST(test_order_signature_first)
{
	struct claims	 c;
	struct request	 r;
	msgpack_sbuffer	 tok;

	claims_default(&c);
	c.iss = "otherauth";
	c.aud = "elsewhere";
	c.azp = "school_enrollment";
	c.bundle = "retirement";
	c.nitems = 0;
	c.amr[0] = "pwd";
	c.liveness = 1;
	c.match = 1;
	c.sub = "someone_else";
	c.rel = "friend";
	c.jtilen = 3;
	request_default(&r);
	r.rq_ask.ca_now = c.exp + 3600;
	issue(&c, &tok);
	tok.data[tok.size - 10] ^= 0x01;
	ck_verify_buf(tok.data, tok.size, &r, LB_E_CONSENT_BAD_SIGNATURE, NULL);
	msgpack_sbuffer_destroy(&tok);
}
END_TEST

/*
 * A token that fails every check; fixing the reported failure each time
 * walks the checks in the contract's order down to success.
 */
START_TEST(test_order_ladder)
{
	static const enum lb_err steps[] = {
		LB_E_CONSENT_UNTRUSTED_ISSUER, LB_E_CONSENT_WRONG_AUDIENCE,
		LB_E_CONSENT_WRONG_CONSUMER, LB_E_CONSENT_EXPIRED, LB_E_CONSENT_NOT_YET_VALID,
		LB_E_CONSENT_WRONG_BUNDLE, LB_E_CONSENT_ITEM_NOT_COVERED,
		LB_E_ITEM_NOT_IN_POLICY, LB_E_ASSURANCE_TOO_LOW, LB_E_SUBJECT_MISMATCH,
		LB_E_CONSENT_MALFORMED, LB_OK,
	};
	struct claims	c;
	struct request	r;
	size_t		i;

	claims_default(&c);
	request_default(&r);
	c.iss = "otherauth";
	c.aud = "elsewhere";
	c.azp = "school_enrollment";
	c.exp = c.iat + 3600;			/* lifetime too long */
	c.bundle = "retirement";
	c.items[1] = "marriage_certificate";	/* HHR not covered */
	c.liveness = 10;
	c.act = MOTHER;				/* rel self, act != sub */
	r.rq_ask.ca_subject = "110105202601030020";
	strcpy(r.rq_items[2], "marriage_certificate");
	r.rq_ask.ca_nitems = 3;
	for (i = 0; i < NELEM(steps); i++) {
		ck_verify(&c, &r, steps[i]);
		switch (steps[i]) {
		case LB_E_CONSENT_UNTRUSTED_ISSUER:
			c.iss = "faceauth";
			break;
		case LB_E_CONSENT_WRONG_AUDIENCE:
			c.aud = GATEWAY;
			break;
		case LB_E_CONSENT_WRONG_CONSUMER:
			c.azp = CONSUMER;
			break;
		case LB_E_CONSENT_EXPIRED:
			/* Now issued in the future, with a valid lifetime. */
			c.iat = NOW + 600;
			c.exp = c.iat + 300;
			break;
		case LB_E_CONSENT_NOT_YET_VALID:
			claims_default(&c);
			c.items[1] = "marriage_certificate";
			c.liveness = 10;
			c.act = MOTHER;
			c.bundle = "retirement";
			break;
		case LB_E_CONSENT_WRONG_BUNDLE:
			c.bundle = "newborn";
			break;
		case LB_E_CONSENT_ITEM_NOT_COVERED:
			c.items[1] = HHR;
			c.items[2] = "marriage_certificate";
			c.nitems = 3;
			break;
		case LB_E_ITEM_NOT_IN_POLICY:
			r.rq_ask.ca_nitems = 2;
			break;
		case LB_E_ASSURANCE_TOO_LOW:
			c.liveness = 950;
			break;
		case LB_E_SUBJECT_MISMATCH:
			r.rq_ask.ca_subject = SUBJECT;
			break;
		case LB_E_CONSENT_MALFORMED:
			c.act = SUBJECT;
			break;
		default:
			break;
		}
	}
}
END_TEST

START_TEST(test_order_malformed_claims_after_signature)
{
	struct claims	c;
	struct request	r;

	/* A missing claim is found once the signature is known good ... */
	claims_default(&c);
	c.omit = "jti";
	c.aud = "elsewhere";
	request_default(&r);
	ck_verify(&c, &r, LB_E_CONSENT_MALFORMED);
	/* ... but an untrusted signer is reported before the claims are read. */
	c.key = rogue_key;
	c.kid = rogue_kid;
	ck_verify(&c, &r, LB_E_CONSENT_UNTRUSTED_ISSUER);
}
END_TEST

/*
 * Policies
 */

START_TEST(test_policy_parse)
{
	msgpack_zone		 z;
	msgpack_object		 o;
	msgpack_sbuffer		 sb;
	char			 err[256];
	const struct policy_item *pi;

	ck_assert_str_eq(policy->po_bundle, "newborn");
	ck_assert_str_eq(policy->po_name, "新生儿出生一件事");
	ck_assert_str_eq(policy->po_purpose, "Register a newborn in one application.");
	ck_assert_uint_eq(policy->po_nconsumers, 1);
	ck_assert_str_eq(policy->po_consumers[0], "newborn");
	ck_assert_uint_eq(policy->po_namr, 1);
	ck_assert_str_eq(policy->po_amr[0], "face");
	ck_assert(policy->po_min_liveness == 900 && policy->po_min_match == 900);
	ck_assert(policy->po_rel[POLICY_REL_GUARDIAN].rl_allowed);
	ck_assert_uint_eq(policy->po_nitems, 2);
	ck_assert_ptr_nonnull(pi = policy_item(policy, BMC));
	ck_assert_str_eq(pi->pi_dept, "nhc");
	ck_assert_uint_eq(pi->pi_nfields, 3);
	ck_assert_str_eq(pi->pi_fields[0], "birth_date");
	ck_assert_str_eq(pi->pi_fields[2], "father_name");
	ck_assert_ptr_nonnull(pi = policy_item(policy, HHR));
	ck_assert_str_eq(pi->pi_dept, "psb");
	ck_assert_ptr_null(policy_item(policy, "marriage_certificate"));
	ck_assert(policy_allows_consumer(policy, "newborn"));
	ck_assert(!policy_allows_consumer(policy, "newbor"));
	ck_assert(!policy_allows_consumer(policy, "school_enrollment"));

	/* po_spec is the canonical msgpack of the policy as given. */
	msgpack_zone_init(&z, 4096);
	ck_assert_int_eq(mpk_from_json(policy_json, strlen(policy_json), &z, &o, err,
	    sizeof(err)), 0);
	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(mpk_pack(&o, &sb, false), 0);
	ck_assert_uint_eq(policy->po_spec_len, sb.size);
	ck_assert_mem_eq(policy->po_spec, sb.data, sb.size);
	ck_assert(mpk_is_canonical(policy->po_spec, policy->po_spec_len));
	msgpack_sbuffer_destroy(&sb);
	msgpack_zone_destroy(&z);
}
END_TEST

static const struct {
	const char	*what;
	const char	*json;
} bad_policies[] = {
	{ "unknown field", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}],"
	    " \"ratelimit\": 5}" },
	{ "duplicate item", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []},"
	    " {\"item\": \"j\", \"dept\": \"d\", \"fields\": []},"
	    " {\"item\": \"i\", \"dept\": \"e\", \"fields\": []}]}" },
	{ "missing dept", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"fields\": []}]}" },
	{ "unknown item field", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": [], \"x\": 1}]}" },
	{ "unknown assurance field", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0, \"x\": 1},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}]}" },
	{ "liveness above 1000", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 1001, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}]}" },
	{ "no items", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": []}" },
	{ "bad bundle id", "{\"bundle\": \"New Born\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}]}" },
	{ "consumers not a list", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": \"c\","
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}]}" },
	{ "no assurance", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}]}" },
	{ "guardian not an object", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"guardian\": true,"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}]}" },
	{ "rate_limit of zero", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}],"
	    " \"rate_limit\": {\"per_second\": 0, \"burst\": 1}}" },
	{ "rate_limit unknown key", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}],"
	    " \"rate_limit\": {\"per_second\": 1, \"per_minute\": 1}}" },
	{ "rate_limit not an object", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}],"
	    " \"rate_limit\": 20}" },
	{ "rate_limit negative burst", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}],"
	    " \"rate_limit\": {\"per_second\": 1, \"burst\": -1}}" },
	{ "guardian unknown key", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}],"
	    " \"guardian\": {\"allowed\": true, \"proof\": []}}" },
	{ "guardian proofs not a list", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}],"
	    " \"guardian\": {\"allowed\": true, \"proofs\": {}}}" },
	{ "guardian proof without fields", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}],"
	    " \"guardian\": {\"allowed\": true, \"proofs\": [{\"item\": \"i\", \"fields\": []}]}}" },
	{ "guardian proof without item", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}],"
	    " \"guardian\": {\"allowed\": true, \"proofs\": [{\"fields\": [\"f\"]}]}}" },
	{ "guardian proof unknown key", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}],"
	    " \"guardian\": {\"allowed\": true, \"proofs\": [{\"item\": \"i\", \"fields\": [\"f\"], \"x\": 1}]}}" },
	{ "too many guardian proofs", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}],"
	    " \"guardian\": {\"allowed\": true, \"proofs\": [{\"item\": \"i\", \"fields\": [\"f\"]}, {\"item\": \"i\", \"fields\": [\"f\"]}, {\"item\": \"i\", \"fields\": [\"f\"]}, {\"item\": \"i\", \"fields\": [\"f\"]}, {\"item\": \"i\", \"fields\": [\"f\"]}]}}" },
	{ "guardian proof of an item from no named department", "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}],"
	    " \"guardian\": {\"allowed\": true, \"proofs\": [{\"item\": \"other\", \"fields\": [\"f\"]}]}}" },
	{ "not an object", "[1, 2]" },
};

/* The guardian proofs and rate limit of docs/consent.md. */
START_TEST(test_policy_guardian_rate)
{
	static const char txt[] =
	    "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [\"c\"],"
	    " \"assurance\": {\"amr\": [\"face\"], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"guardian\": {\"allowed\": true, \"proofs\": ["
	    "  {\"item\": \"birth_medical_certificate\", \"fields\": [\"mother_id\", \"father_id\"]},"
	    "  {\"item\": \"household_register\", \"dept\": \"psb\", \"fields\": [\"father_id\"]}]},"
	    " \"rate_limit\": {\"per_second\": 20, \"burst\": 40},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []},"
	    "  {\"item\": \"birth_medical_certificate\", \"dept\": \"nhc\", \"fields\": []}]}";
	static const char noproofs[] =
	    "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [],"
	    " \"assurance\": {\"amr\": [], \"min_liveness\": 0, \"min_match\": 0},"
	    " \"guardian\": {\"allowed\": true}, \"rate_limit\": {\"per_second\": 5},"
	    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": []}]}";
	char		 err[256];
	struct policy	*po;

	ck_assert_ptr_nonnull(po = parse_policy_text(txt, err, sizeof(err)));
	ck_assert(po->po_rel[POLICY_REL_GUARDIAN].rl_allowed);
	ck_assert_uint_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_nproofs, 2);
	ck_assert_str_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[0].pp_item, "birth_medical_certificate");
	ck_assert_str_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[0].pp_dept, "");
	ck_assert_uint_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[0].pp_nfields, 2);
	ck_assert_str_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[0].pp_fields[0], "mother_id");
	ck_assert_str_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[0].pp_fields[1], "father_id");
	ck_assert_str_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[1].pp_dept, "psb");
	ck_assert_uint_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[1].pp_nfields, 1);
	ck_assert_uint_eq(po->po_rate_per_s, 20);
	ck_assert_uint_eq(po->po_rate_burst, 40);
	policy_free(po);

	/* Allowed without proofs parses; the exchange refuses every guardian. */
	ck_assert_ptr_nonnull(po = parse_policy_text(noproofs, err, sizeof(err)));
	ck_assert(po->po_rel[POLICY_REL_GUARDIAN].rl_allowed);
	ck_assert_uint_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_nproofs, 0);
	ck_assert_uint_eq(po->po_rate_per_s, 5);
	ck_assert_uint_eq(po->po_rate_burst, 5);	/* burst defaults to the rate */
	policy_free(po);

	/* The shared fixture has no rate limit: 0 means none. */
	ck_assert_uint_eq(policy->po_rate_per_s, 0);
}
END_TEST

/*
 * The revocation list (journal_revoke.c): a jti revocation
 * matches that token only, a subject revocation the citizen's tokens for
 * that bundle issued up to it, entries survive a reopen, and expired ones
 * are dropped.
 */
/* The completion of journal_revoke, on the test's loop. */
struct revwait {
	struct event_base	*rw_base;
	int			 rw_status;
	bool			 rw_done;
};

static void
on_revoked(void *arg, int status, uint64_t seq)
{
	struct revwait	*rw = arg;

	(void)seq;
	rw->rw_status = status;
	rw->rw_done = true;
	event_base_loopbreak(rw->rw_base);
}

/*
 * Stores a revocation through the journal writer and runs a loop until it
 * is committed: the status of the commit, or -1 when it was not queued.
 */
static int
revoke_wait(struct journal *j, const uint8_t *key, size_t keylen, uint64_t at,
    uint64_t keep_until)
{
	struct timeval	 limit = { 60, 0 };
	struct revwait	 rw = { NULL, -1, false };

	rw.rw_base = event_base_new();
	ck_assert_ptr_nonnull(rw.rw_base);
	if (journal_revoke(j, rw.rw_base, key, keylen, at, keep_until, NULL, on_revoked,
	    &rw) == 0) {
		event_base_loopexit(rw.rw_base, &limit);
		event_base_loop(rw.rw_base, EVLOOP_NO_EXIT_ON_EMPTY);
		ck_assert_msg(rw.rw_done, "journal_revoke never completed");
	}
	event_base_free(rw.rw_base);
	return rw.rw_done ? rw.rw_status : -1;
}

START_TEST(test_revocation_store)
{
	char		 tdir[] = "/tmp/check_consent.XXXXXX", dir[64], msg[256];
	struct journal	*j;
	struct consent	 cs;
	uint8_t		 key[JOURNAL_REVOKE_KEY_MAX], other[16] = { 9 };
	size_t		 keylen;
	uint64_t	 at, now = (uint64_t)time(NULL);

	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(dir, sizeof(dir), "%s/j", tdir);
	j = check_journal_open(dir, auth_key, auth_cert, 1 << 20);
	memset(&cs, 0, sizeof(cs));
	memset(cs.cs_jti, 7, sizeof(cs.cs_jti));
	strcpy(cs.cs_sub, SUBJECT);
	strcpy(cs.cs_bundle, "newborn");
	cs.cs_iat = (int64_t)now - 10;
	ck_assert_int_eq(journal_revoke_check(j, &cs, msg, sizeof(msg)), LB_OK);

	/* One token by its jti; another jti is not touched. */
	ck_assert_int_eq(journal_revoke_key(j, cs.cs_jti, NULL, NULL, key, &keylen), 0);
	ck_assert_uint_eq(keylen, 17);
	ck_assert_int_eq(revoke_wait(j, key, keylen, now, now + 720), 0);
	ck_assert_int_eq(journal_revoke_check(j, &cs, msg, sizeof(msg)), LB_E_CONSENT_REVOKED);
	memcpy(cs.cs_jti, other, sizeof(other));
	ck_assert_int_eq(journal_revoke_check(j, &cs, msg, sizeof(msg)), LB_OK);

	/* The citizen's consent to the bundle, up to now; later consent stands. */
	ck_assert_int_eq(journal_revoke_key(j, NULL, SUBJECT, "newborn", key, &keylen), 0);
	ck_assert_int_eq(revoke_wait(j, key, keylen, now, now + 720), 0);
	ck_assert_int_eq(journal_revoke_check(j, &cs, msg, sizeof(msg)), LB_E_CONSENT_REVOKED);
	ck_assert(strstr(msg, "newborn") != NULL);
	cs.cs_iat = (int64_t)now;
	ck_assert_int_eq(journal_revoke_check(j, &cs, msg, sizeof(msg)), LB_E_CONSENT_REVOKED);
	cs.cs_iat = (int64_t)now + 1;
	ck_assert_int_eq(journal_revoke_check(j, &cs, msg, sizeof(msg)), LB_OK);
	cs.cs_iat = (int64_t)now - 10;
	strcpy(cs.cs_bundle, "school_enrollment");
	ck_assert_int_eq(journal_revoke_check(j, &cs, msg, sizeof(msg)), LB_OK);
	strcpy(cs.cs_bundle, "newborn");
	strcpy(cs.cs_sub, MOTHER);
	ck_assert_int_eq(journal_revoke_check(j, &cs, msg, sizeof(msg)), LB_OK);
	strcpy(cs.cs_sub, SUBJECT);

	/* Bounds. */
	ck_assert_int_eq(journal_revoke(j, NULL, key, 0, now, now, NULL, NULL, NULL), -1);
	ck_assert_int_eq(journal_revoke(j, NULL, key, JOURNAL_REVOKE_KEY_MAX + 1, now, now, NULL,
	    NULL, NULL), -1);
	ck_assert_int_eq(journal_revoke_key(j, NULL, SUBJECT, "", key, &keylen), -1);

	/* Durable across a reopen. */
	journal_close(j);
	j = check_journal_open(dir, auth_key, auth_cert, 1 << 20);
	ck_assert_int_eq(journal_revoke_check(j, &cs, msg, sizeof(msg)), LB_E_CONSENT_REVOKED);
	ck_assert_int_eq(journal_revoke_key(j, NULL, SUBJECT, "newborn", key, &keylen), 0);
	ck_assert_int_eq(journal_revoked(j, key, keylen, &at), 1);
	ck_assert_uint_eq(at, now);

	/* An older revocation of the same key (a replay) does not shrink it. */
	ck_assert_int_eq(revoke_wait(j, key, keylen, now - 100, now + 620), 0);
	ck_assert_int_eq(journal_revoked(j, key, keylen, &at), 1);
	ck_assert_uint_eq(at, now);

	/* An entry past keep_until goes with the next revocation stored. */
	ck_assert_int_eq(journal_revoke_key(j, NULL, MOTHER, "newborn", key, &keylen), 0);
	ck_assert_int_eq(revoke_wait(j, key, keylen, now - 1000, now - 1), 0);
	ck_assert_int_eq(journal_revoke_key(j, other, NULL, NULL, key, &keylen), 0);
	ck_assert_int_eq(revoke_wait(j, key, keylen, now, now + 720), 0);
	ck_assert_int_eq(journal_revoke_key(j, NULL, MOTHER, "newborn", key, &keylen), 0);
	ck_assert_int_eq(journal_revoked(j, key, keylen, &at), 0);
	journal_close(j);

	ck_assert_int_eq(check_rm_tree(tdir), 0);
}
END_TEST

START_TEST(test_policy_errors)
{
	char		 err[256];
	struct policy	*po;

	po = parse_policy_text(bad_policies[_i].json, err, sizeof(err));
	ck_assert_msg(po == NULL, "accepted policy with %s", bad_policies[_i].what);
	ck_assert_msg(strlen(err) > 10, "no error sentence for %s", bad_policies[_i].what);
}
END_TEST

START_TEST(test_policy_minimize)
{
	static const char doc_json[] =
	    "{\"type\": \"birth_medical_certificate\", \"number\": \"Q110000123\","
	    " \"holder\": {\"id\": \"110105202601030012\", \"name\": \"王小明\"},"
	    " \"issuer\": {\"dept\": \"nhc\", \"name\": \"妇幼保健院\"},"
	    " \"issued\": \"2026-01-05\","
	    " \"fields\": {\"birth_date\": \"2026-01-03\", \"mother_name\": \"李华\","
	    " \"mother_id\": \"110105199203154526\", \"weight_g\": 3250,"
	    " \"father_name\": \"王强\"}}";
	static const char want_json[] =
	    "{\"type\": \"birth_medical_certificate\", \"number\": \"Q110000123\","
	    " \"holder\": {\"id\": \"110105202601030012\", \"name\": \"王小明\"},"
	    " \"issuer\": {\"dept\": \"nhc\", \"name\": \"妇幼保健院\"},"
	    " \"issued\": \"2026-01-05\","
	    " \"fields\": {\"birth_date\": \"2026-01-03\", \"mother_name\": \"李华\","
	    " \"father_name\": \"王强\"}}";
	msgpack_zone		 z;
	msgpack_object		 doc, want, min;
	msgpack_sbuffer		 before, got, exp;
	char			 err[256];
	const struct policy_item *pi;

	msgpack_zone_init(&z, 4096);
	ck_assert_int_eq(mpk_from_json(doc_json, strlen(doc_json), &z, &doc, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(mpk_from_json(want_json, strlen(want_json), &z, &want, err,
	    sizeof(err)), 0);
	msgpack_sbuffer_init(&before);
	msgpack_sbuffer_init(&got);
	msgpack_sbuffer_init(&exp);
	ck_assert_int_eq(mpk_pack(&doc, &before, false), 0);

	ck_assert_ptr_nonnull(pi = policy_item(policy, BMC));
	min = policy_minimize(pi, &doc, &z);
	ck_assert_int_eq(mpk_pack(&min, &got, false), 0);
	ck_assert_int_eq(mpk_pack(&want, &exp, false), 0);
	ck_assert_uint_eq(got.size, exp.size);
	ck_assert_mem_eq(got.data, exp.data, exp.size);
	ck_assert_uint_eq(mpk_get(&min, "fields")->via.map.size, 3);
	ck_assert_ptr_null(mpk_get(mpk_get(&min, "fields"), "mother_id"));
	ck_assert_ptr_null(mpk_get(mpk_get(&min, "fields"), "weight_g"));
	ck_assert_ptr_nonnull(mpk_get(&min, "holder"));
	ck_assert_ptr_nonnull(mpk_get(&min, "issued"));

	/* The original document is left as it was. */
	msgpack_sbuffer_destroy(&got);
	msgpack_sbuffer_init(&got);
	ck_assert_int_eq(mpk_pack(&doc, &got, false), 0);
	ck_assert_uint_eq(got.size, before.size);
	ck_assert_mem_eq(got.data, before.data, before.size);

	/* An item releasing only "address" empties the fields of this document. */
	ck_assert_ptr_nonnull(pi = policy_item(policy, HHR));
	min = policy_minimize(pi, &doc, &z);
	ck_assert_uint_eq(mpk_get(&min, "fields")->type, MSGPACK_OBJECT_MAP);
	ck_assert_uint_eq(mpk_get(&min, "fields")->via.map.size, 0);
	ck_assert_uint_eq(min.via.map.size, 6);

	msgpack_sbuffer_destroy(&before);
	msgpack_sbuffer_destroy(&got);
	msgpack_sbuffer_destroy(&exp);
	msgpack_zone_destroy(&z);
}
END_TEST

static Suite *
consent_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("consent");

	tc = tcase_create("outcomes");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_ok);
	tcase_add_test(tc, test_ok_guardian);
	tcase_add_test(tc, test_malformed_garbage);
	tcase_add_loop_test(tc, test_malformed_missing_claim, 0, NELEM(claim_names));
	tcase_add_test(tc, test_malformed_claims);
	tcase_add_test(tc, test_malformed_claim_types);
	tcase_add_test(tc, test_malformed_typ);
	tcase_add_test(tc, test_untrusted_issuer);
	tcase_add_test(tc, test_bad_signature);
	tcase_add_test(tc, test_wrong_audience);
	tcase_add_test(tc, test_wrong_consumer);
	tcase_add_test(tc, test_expired);
	tcase_add_test(tc, test_not_yet_valid);
	tcase_add_test(tc, test_time_boundaries);
	tcase_add_test(tc, test_time_lifetime_extreme);
	tcase_add_test(tc, test_time_far_future);
	tcase_add_test(tc, test_time_far_past);
	tcase_add_test(tc, test_wrong_bundle);
	tcase_add_test(tc, test_item_not_covered);
	tcase_add_test(tc, test_item_not_in_policy);
	tcase_add_test(tc, test_assurance_too_low);
	tcase_add_test(tc, test_assurance_policy_amr);
	tcase_add_test(tc, test_subject_mismatch);
	tcase_add_test(tc, test_self_act_differs);
	suite_add_tcase(s, tc);

	tc = tcase_create("order");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_order_consumer_before_time);
	tcase_add_test(tc, test_order_audience_before_consumer);
	tcase_add_test(tc, test_order_signature_first);
	tcase_add_test(tc, test_order_ladder);
	tcase_add_test(tc, test_order_malformed_claims_after_signature);
	suite_add_tcase(s, tc);

	tc = tcase_create("policy");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_policy_parse);
	tcase_add_test(tc, test_policy_guardian_rate);
	tcase_add_test(tc, test_revocation_store);
	tcase_add_loop_test(tc, test_policy_errors, 0, NELEM(bad_policies));
	tcase_add_test(tc, test_policy_minimize);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	return check_run(consent_suite());
}
