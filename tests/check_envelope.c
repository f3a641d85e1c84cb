/*
 * check_envelope.c - unit tests for the signed envelope of docs/contract.md §4
 * (gateway/lib/envelope.c) and the key ids of gateway/lib/keys.c.
 *
 * The bytes the contract fixes (protected header, tbs, envelope) are built
 * here by hand from the msgpack specification, and signatures are checked
 * both ways against a second implementation written directly on OpenSSL's
 * EVP interface: what lianban signs must verify there, and what is signed
 * there must verify in lianban.  For SM2 the Z value of GB/T 32918.2 is
 * also computed by hand, so a wrong distinguishing ID cannot hide behind
 * the same OpenSSL call on both sides.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "lianban.h"
#include "check_util.h"

#define NALG		3

/* The three algorithms of the contract, indexed by the loop tests. */
static const struct {
	enum lb_alg	 alg;
	const char	*name;
} algs[NALG] = {
	{ LB_ALG_ES256, "ES256" },
	{ LB_ALG_EDDSA, "EdDSA" },
	{ LB_ALG_SM2, "SM2" },
};

static EVP_PKEY	*keys[NALG];
static uint8_t	 kids[NALG][32];

/* The payload every test signs: {"n": 1, "s": "hello"}. */
static const uint8_t payload[] = { 0x82, 0xa1, 'n', 0x01, 0xa1, 's', 0xa5, 'h', 'e', 'l', 'l',
    'o' };

static EVP_PKEY *
gen_key(enum lb_alg alg)
{
	EVP_PKEY	*k = NULL;

	switch (alg) {
	case LB_ALG_ES256:
		k = EVP_EC_gen("P-256");
		break;
	case LB_ALG_EDDSA:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	case LB_ALG_SM2:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
		break;
	default:
		break;
	}
	ck_assert_ptr_nonnull(k);
	return k;
}

static void
keys_setup(void)
{
	int	i;

	for (i = 0; i < NALG; i++) {
		keys[i] = gen_key(algs[i].alg);
		ck_assert_int_eq(key_id_pkey(keys[i], kids[i]), 0);
	}
}

static void
keys_teardown(void)
{
	int	i;

	for (i = 0; i < NALG; i++) {
		EVP_PKEY_free(keys[i]);
		keys[i] = NULL;
	}
}

/*
 * Hand-built msgpack, independent of mpk.c and msgpack-c's packer.
 */

struct hbuf {
	uint8_t	*hb_p;
	size_t	 hb_len, hb_cap;
};

static void
hb_put(struct hbuf *b, const void *p, size_t n)
{
	if (b->hb_len + n > b->hb_cap) {
		b->hb_cap = (b->hb_len + n) * 2 + 64;
		ck_assert_ptr_nonnull(b->hb_p = realloc(b->hb_p, b->hb_cap));
	}
	if (n > 0)
		memcpy(b->hb_p + b->hb_len, p, n);
	b->hb_len += n;
}

static void
hb_byte(struct hbuf *b, uint8_t c)
{
	hb_put(b, &c, 1);
}

/* Shortest bin header (the envelope's parts are never above 64 KiB here). */
static void
hb_bin(struct hbuf *b, const void *p, size_t n)
{
	if (n < 256) {
		hb_byte(b, 0xc4);
		hb_byte(b, (uint8_t)n);
	} else {
		ck_assert_uint_lt(n, 65536);
		hb_byte(b, 0xc5);
		hb_byte(b, (uint8_t)(n >> 8));
		hb_byte(b, (uint8_t)n);
	}
	hb_put(b, p, n);
}

/* A fixstr. */
static void
hb_str(struct hbuf *b, const char *s)
{
	size_t	n = strlen(s);

	ck_assert_uint_lt(n, 32);
	hb_byte(b, (uint8_t)(0xa0 | n));
	hb_put(b, s, n);
}

static void
hb_free(struct hbuf *b)
{
	free(b->hb_p);
	memset(b, 0, sizeof(*b));
}

/* tbs = [ "lianban/1", bin protected, bin payload ] */
static void
hand_tbs(struct hbuf *b, const void *prot, size_t plen, const void *pay, size_t paylen)
{
	hb_byte(b, 0x93);
	hb_byte(b, 0xa9);
	hb_put(b, "lianban/1", 9);
	hb_bin(b, prot, plen);
	hb_bin(b, pay, paylen);
}

/* The entries "alg", "kid", "typ" of a protected map, in canonical order. */
static void
hand_prot_entries(struct hbuf *b, const char *alg, const uint8_t *kid, size_t kidlen,
    const char *typ)
{
	hb_str(b, "alg");
	hb_str(b, alg);
	hb_str(b, "kid");
	hb_bin(b, kid, kidlen);
	hb_str(b, "typ");
	hb_str(b, typ);
}

/* The protected map {"alg", "kid", "typ"} in canonical order. */
static void
hand_prot(struct hbuf *b, const char *alg, const uint8_t *kid, size_t kidlen,
    const char *typ)
{
	hb_byte(b, 0x83);
	hand_prot_entries(b, alg, kid, kidlen, typ);
}

static void
hand_env(struct hbuf *b, const void *prot, size_t plen, const void *pay, size_t paylen,
    const void *sig, size_t siglen)
{
	hb_byte(b, 0x93);
	hb_bin(b, prot, plen);
	hb_bin(b, pay, paylen);
	hb_bin(b, sig, siglen);
}

/*
 * A second signer and verifier on plain EVP calls.
 */

static EVP_MD_CTX *
ref_ctx(EVP_PKEY *key, enum lb_alg alg, const char *sm2_id, EVP_PKEY_CTX **own)
{
	EVP_MD_CTX	*md;

	*own = NULL;
	ck_assert_ptr_nonnull(md = EVP_MD_CTX_new());
	if (alg == LB_ALG_SM2) {
		ck_assert_ptr_nonnull(*own = EVP_PKEY_CTX_new(key, NULL));
		ck_assert_int_eq(EVP_PKEY_CTX_set1_id(*own, sm2_id, strlen(sm2_id)), 1);
		EVP_MD_CTX_set_pkey_ctx(md, *own);
	}
	return md;
}

static const EVP_MD *
ref_md(enum lb_alg alg)
{
	switch (alg) {
	case LB_ALG_ES256:
		return EVP_sha256();
	case LB_ALG_SM2:
		return EVP_sm3();
	default:
		return NULL;
	}
}

static int
ref_verify_id(EVP_PKEY *key, enum lb_alg alg, const char *sm2_id, const void *tbs,
    size_t tbslen, const uint8_t *sig, size_t siglen)
{
	EVP_PKEY_CTX	*pctx;
	EVP_MD_CTX	*md;
	int		 ok;

	md = ref_ctx(key, alg, sm2_id, &pctx);
	ok = EVP_DigestVerifyInit(md, NULL, ref_md(alg), NULL, key) == 1 &&
	    EVP_DigestVerify(md, sig, siglen, tbs, tbslen) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(pctx);
	return ok ? 0 : -1;
}

static int
ref_verify(EVP_PKEY *key, enum lb_alg alg, const void *tbs, size_t tbslen,
    const uint8_t *sig, size_t siglen)
{
	return ref_verify_id(key, alg, LB_SM2_ID, tbs, tbslen, sig, siglen);
}

/* Signs tbs; *sig is malloc'ed. */
static void
ref_sign(EVP_PKEY *key, enum lb_alg alg, const void *tbs, size_t tbslen, uint8_t **sig,
    size_t *siglen)
{
	EVP_PKEY_CTX	*pctx;
	EVP_MD_CTX	*md;

	md = ref_ctx(key, alg, LB_SM2_ID, &pctx);
	ck_assert_int_eq(EVP_DigestSignInit(md, NULL, ref_md(alg), NULL, key), 1);
	ck_assert_int_eq(EVP_DigestSign(md, NULL, siglen, tbs, tbslen), 1);
	ck_assert_ptr_nonnull(*sig = malloc(*siglen));
	ck_assert_int_eq(EVP_DigestSign(md, *sig, siglen, tbs, tbslen), 1);
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(pctx);
}

/* An envelope of the given protected bytes over payload, signed by ref_sign. */
static void
ref_envelope(struct hbuf *env, int k, const void *prot, size_t plen, const void *pay,
    size_t paylen)
{
	struct hbuf	 tbs = { 0 };
	uint8_t		*sig;
	size_t		 siglen;

	hand_tbs(&tbs, prot, plen, pay, paylen);
	ref_sign(keys[k], algs[k].alg, tbs.hb_p, tbs.hb_len, &sig, &siglen);
	hand_env(env, prot, plen, pay, paylen, sig, siglen);
	free(sig);
	hb_free(&tbs);
}

/* envelope_sign with the test payload; the result is in *sb. */
static void
sign_env(int k, const char *typ, X509 *const *x5c, size_t n, msgpack_sbuffer *sb)
{
	msgpack_sbuffer_init(sb);
	ck_assert_int_eq(envelope_sign(keys[k], kids[k], typ, x5c, n, payload,
	    sizeof(payload), sb), 0);
}

/* Parses and verifies with keys[k]; 0 only when both succeed. */
static int
parse_verify(const void *buf, size_t len, const char *typ, EVP_PKEY *key, int *stage)
{
	msgpack_zone	 z;
	struct envelope	 env;
	const char	*why = NULL;
	int		 ret = -1;

	msgpack_zone_init(&z, 2048);
	*stage = 0;
	if (envelope_parse(buf, len, &z, typ, &env, &why) != 0) {
		ck_assert_msg(why != NULL && strlen(why) > 5, "refusal without a reason");
		goto done;
	}
	ck_assert_ptr_null(why);
	*stage = 1;
	if (envelope_verify(&env, key) != 0)
		goto done;
	*stage = 2;
	ret = 0;
done:
	msgpack_zone_destroy(&z);
	return ret;
}

/* Refused by envelope_parse, whatever the signature. */
static void
ck_parse_refused(const void *buf, size_t len, const char *typ, const char *what)
{
	msgpack_zone	 z;
	struct envelope	 env;
	const char	*why = NULL;

	msgpack_zone_init(&z, 2048);
	ck_assert_msg(envelope_parse(buf, len, &z, typ, &env, &why) == -1, "accepted: %s",
	    what);
	ck_assert_msg(why != NULL && strlen(why) > 5, "no reason given for: %s", what);
	msgpack_zone_destroy(&z);
}

/*
 * The test payload in a "consent" envelope signed by keys[0] under the
 * hand-built protected header prot is refused; prot is emptied for the
 * next header.
 */
static void
ck_prot_refused(struct hbuf *prot, const char *what)
{
	struct hbuf	env = { 0 };

	ref_envelope(&env, 0, prot->hb_p, prot->hb_len, payload, sizeof(payload));
	ck_parse_refused(env.hb_p, env.hb_len, "consent", what);
	hb_free(prot);
	hb_free(&env);
}

/* The control of ck_prot_refused: that envelope parses and verifies. */
static void
ck_prot_verifies(struct hbuf *prot)
{
	struct hbuf	env = { 0 };
	int		stage;

	ref_envelope(&env, 0, prot->hb_p, prot->hb_len, payload, sizeof(payload));
	ck_assert_int_eq(parse_verify(env.hb_p, env.hb_len, "consent", keys[0], &stage), 0);
	hb_free(prot);
	hb_free(&env);
}

/*
 * Tests
 */

START_TEST(test_sign_parse_verify)
{
	msgpack_sbuffer	 sb;
	msgpack_zone	 z;
	struct envelope	 env;
	const char	*why = "unset";
	int64_t		 n;
	char		 s[8];

	ck_assert_int_eq(envelope_alg_of_key(keys[_i]), algs[_i].alg);
	ck_assert_str_eq(envelope_alg_name(algs[_i].alg), algs[_i].name);
	ck_assert_int_eq(envelope_alg_from_name(algs[_i].name), algs[_i].alg);

	sign_env(_i, "consent", NULL, 0, &sb);
	msgpack_zone_init(&z, 2048);
	ck_assert_int_eq(envelope_parse(sb.data, sb.size, &z, "consent", &env, &why), 0);
	ck_assert_ptr_null(why);
	ck_assert_int_eq(env.env_alg, algs[_i].alg);
	ck_bytes_eq(env.env_kid, 32, kids[_i], 32);
	ck_assert_str_eq(env.env_typ, "consent");
	ck_bytes_eq(env.env_payload, env.env_payload_len, payload, sizeof(payload));
	ck_assert_int_eq(env.env_x5c.type, MSGPACK_OBJECT_NIL);
	ck_assert_int_eq(mpk_get_i64(&env.env_claims, "n", &n), 0);
	ck_assert(n == 1);
	ck_assert_int_eq(mpk_get_str(&env.env_claims, "s", s, sizeof(s)), 0);
	ck_assert_str_eq(s, "hello");
	ck_assert_int_eq(envelope_verify(&env, keys[_i]), 0);
	if (algs[_i].alg == LB_ALG_EDDSA)
		ck_assert_uint_eq(env.env_sig_len, 64);
	else
		ck_assert_uint_eq(env.env_sig[0], 0x30);	/* DER SEQUENCE */
	msgpack_zone_destroy(&z);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_protected_bytes)
{
	msgpack_sbuffer	 sb;
	msgpack_zone	 z;
	struct envelope	 env;
	struct hbuf	 want = { 0 }, whole = { 0 };
	const char	*why;

	sign_env(_i, "consent", NULL, 0, &sb);
	msgpack_zone_init(&z, 2048);
	ck_assert_int_eq(envelope_parse(sb.data, sb.size, &z, "consent", &env, &why), 0);

	if (algs[_i].alg == LB_ALG_ES256) {
		/* Written out byte by byte, as in the contract. */
		static const uint8_t head[] = { 0x83, 0xa3, 'a', 'l', 'g', 0xa5, 'E', 'S', '2',
		    '5', '6', 0xa3, 'k', 'i', 'd', 0xc4, 0x20 };
		static const uint8_t tail[] = { 0xa3, 't', 'y', 'p', 0xa7, 'c', 'o', 'n', 's',
		    'e', 'n', 't' };

		hb_put(&want, head, sizeof(head));
		hb_put(&want, kids[_i], 32);
		hb_put(&want, tail, sizeof(tail));
		ck_assert_uint_eq(want.hb_len, 61);
	} else
		hand_prot(&want, algs[_i].name, kids[_i], 32, "consent");
	ck_bytes_eq(env.env_prot, env.env_prot_len, want.hb_p, want.hb_len);

	/* The whole envelope is [bin, bin, bin] with shortest headers. */
	hand_env(&whole, want.hb_p, want.hb_len, payload, sizeof(payload), env.env_sig,
	    env.env_sig_len);
	ck_bytes_eq(sb.data, sb.size, whole.hb_p, whole.hb_len);
	hb_free(&want);
	hb_free(&whole);
	msgpack_zone_destroy(&z);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_tbs_bytes)
{
	static const uint8_t prot[] = { 0x81, 0xa1, 'a', 0x01 };
	static const uint8_t want[] = { 0x93, 0xa9, 'l', 'i', 'a', 'n', 'b', 'a', 'n', '/', '1',
	    0xc4, 0x04, 0x81, 0xa1, 'a', 0x01, 0xc4, 0x03, 0x91, 0x05, 0x06 };
	uint8_t		*tbs, big[300];
	size_t		 len;
	struct hbuf	 hb = { 0 };

	ck_assert_int_eq(envelope_tbs(prot, sizeof(prot), "\x91\x05\x06", 3, &tbs, &len), 0);
	ck_bytes_eq(tbs, len, want, sizeof(want));
	free(tbs);

	/* A payload past 255 bytes takes a bin16 header: c5 01 2c. */
	memset(big, 0x07, sizeof(big));
	ck_assert_int_eq(envelope_tbs(prot, sizeof(prot), big, sizeof(big), &tbs, &len), 0);
	ck_assert_uint_eq(len, 17 + 3 + sizeof(big));
	ck_bytes_eq(tbs + 17, 3, "\xc5\x01\x2c", 3);
	hand_tbs(&hb, prot, sizeof(prot), big, sizeof(big));
	ck_bytes_eq(tbs, len, hb.hb_p, hb.hb_len);
	free(tbs);
	hb_free(&hb);

	/* Empty parts still carry their headers. */
	ck_assert_int_eq(envelope_tbs(prot, 0, big, 0, &tbs, &len), 0);
	ck_bytes_eq(tbs, len, "\x93\xa9" "lianban/1" "\xc4\x00\xc4\x00", 15);
	free(tbs);
}
END_TEST

START_TEST(test_flipped_bytes)
{
	static const uint8_t masks[] = { 0x01, 0x80, 0xff };
	msgpack_sbuffer	 sb;
	msgpack_zone	 z;
	struct envelope	 env;
	const char	*why;
	uint8_t		*mut;
	size_t		 pos, m, prot_off, pay_off, sig_off;
	int		 stage, at_verify[3] = { 0, 0, 0 }, region;

	sign_env(_i, "consent", NULL, 0, &sb);
	msgpack_zone_init(&z, 2048);
	ck_assert_int_eq(envelope_parse(sb.data, sb.size, &z, "consent", &env, &why), 0);
	/* All three parts are below 256 bytes: 0x93, then c4 len before each. */
	prot_off = 3;
	pay_off = prot_off + env.env_prot_len + 2;
	sig_off = pay_off + env.env_payload_len + 2;
	ck_assert_uint_eq(sig_off + env.env_sig_len, sb.size);
	msgpack_zone_destroy(&z);

	ck_assert_ptr_nonnull(mut = malloc(sb.size));
	for (pos = 0; pos < sb.size; pos++) {
		for (m = 0; m < NELEM(masks); m++) {
			memcpy(mut, sb.data, sb.size);
			mut[pos] ^= masks[m];
			ck_assert_msg(parse_verify(mut, sb.size, "consent", keys[_i], &stage) == -1,
			    "%s: byte %zu ^ 0x%02x accepted", algs[_i].name, pos, masks[m]);
			region = pos >= sig_off ? 2 : pos >= pay_off ? 1 : pos >= prot_off ? 0 : -1;
			if (stage == 1 && region >= 0)
				at_verify[region]++;
		}
	}
	/* Each part had flips that parsed and were caught by the signature alone. */
	ck_assert_int_gt(at_verify[0], 0);
	ck_assert_int_gt(at_verify[1], 0);
	ck_assert_int_gt(at_verify[2], 0);
	/* The untouched envelope still passes, so the refusals are the flips'. */
	ck_assert_int_eq(parse_verify(sb.data, sb.size, "consent", keys[_i], &stage), 0);
	free(mut);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_wrong_typ)
{
	msgpack_sbuffer	 sb;
	msgpack_zone	 z;
	struct envelope	 env;
	const char	*why;
	int		 stage;

	sign_env(0, "seal-batch", NULL, 0, &sb);
	ck_parse_refused(sb.data, sb.size, "consent", "seal-batch as consent");
	ck_parse_refused(sb.data, sb.size, "checkpoint", "seal-batch as checkpoint");
	ck_parse_refused(sb.data, sb.size, "seal-batc", "typ prefix");
	ck_assert_int_eq(parse_verify(sb.data, sb.size, "seal-batch", keys[0], &stage), 0);
	msgpack_zone_init(&z, 2048);
	ck_assert_int_eq(envelope_parse(sb.data, sb.size, &z, NULL, &env, &why), 0);
	ck_assert_str_eq(env.env_typ, "seal-batch");
	msgpack_zone_destroy(&z);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_unknown_alg)
{
	static const char *const bad[] = { "RS256", "none", "es256", "ES256 ", "ES384", "", "Ed25519" };
	struct hbuf	prot = { 0 };
	size_t		i;

	for (i = 0; i < NELEM(bad); i++) {
		hand_prot(&prot, bad[i], kids[0], 32, "consent");
		ck_prot_refused(&prot, bad[i]);
	}
	ck_assert_int_eq(envelope_alg_from_name("RS256"), LB_ALG_NONE);
	ck_assert_int_eq(envelope_alg_from_name("none"), LB_ALG_NONE);

	/* The control: the same construction with "ES256" passes. */
	hand_prot(&prot, "ES256", kids[0], 32, "consent");
	ck_prot_verifies(&prot);
}
END_TEST

START_TEST(test_kid_shape)
{
	static const size_t lens[] = { 0, 16, 31, 33, 64 };
	uint8_t		kid[64];
	struct hbuf	prot = { 0 };
	size_t		i;

	memset(kid, 0x5a, sizeof(kid));
	for (i = 0; i < NELEM(lens); i++) {
		hand_prot(&prot, "ES256", kid, lens[i], "consent");
		ck_prot_refused(&prot, "kid of wrong length");
	}

	/* A kid of 32 bytes, but as str: {"alg", "kid": str8(32), "typ"}. */
	hb_byte(&prot, 0x83);
	hb_str(&prot, "alg");
	hb_str(&prot, "ES256");
	hb_str(&prot, "kid");
	hb_byte(&prot, 0xd9);
	hb_byte(&prot, 32);
	hb_put(&prot, "01234567890123456789012345678901", 32);
	hb_str(&prot, "typ");
	hb_str(&prot, "consent");
	ck_prot_refused(&prot, "kid as str");

	/* No kid at all. */
	hb_byte(&prot, 0x82);
	hb_str(&prot, "alg");
	hb_str(&prot, "ES256");
	hb_str(&prot, "typ");
	hb_str(&prot, "consent");
	ck_prot_refused(&prot, "kid missing");
}
END_TEST

START_TEST(test_trailing_bytes)
{
	msgpack_sbuffer	 sb;
	uint8_t		*twice;
	int		 stage;

	sign_env(_i, "consent", NULL, 0, &sb);
	ck_assert_int_eq(parse_verify(sb.data, sb.size, "consent", keys[_i], &stage), 0);
	msgpack_sbuffer_write(&sb, "\x00", 1);
	ck_parse_refused(sb.data, sb.size, "consent", "one trailing byte");
	ck_parse_refused(sb.data, sb.size - 2, "consent", "one byte short");
	ck_assert_ptr_nonnull(twice = malloc(2 * (sb.size - 1)));
	memcpy(twice, sb.data, sb.size - 1);
	memcpy(twice + sb.size - 1, sb.data, sb.size - 1);
	ck_parse_refused(twice, 2 * (sb.size - 1), "consent", "envelope twice");
	free(twice);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_noncanonical_protected)
{
	struct hbuf	prot = { 0 }, env = { 0 };
	int		variant, stage;

	for (variant = 0; variant < 5; variant++) {
		switch (variant) {
		case 0:		/* keys unsorted: kid, alg, typ */
			hb_byte(&prot, 0x83);
			hb_str(&prot, "kid");
			hb_bin(&prot, kids[0], 32);
			hb_str(&prot, "alg");
			hb_str(&prot, "ES256");
			hb_str(&prot, "typ");
			hb_str(&prot, "consent");
			break;
		case 1:		/* alg as str8 */
			hb_byte(&prot, 0x83);
			hb_str(&prot, "alg");
			hb_put(&prot, "\xd9\x05" "ES256", 7);
			hb_str(&prot, "kid");
			hb_bin(&prot, kids[0], 32);
			hb_str(&prot, "typ");
			hb_str(&prot, "consent");
			break;
		case 2:		/* kid as bin16 */
			hb_byte(&prot, 0x83);
			hb_str(&prot, "alg");
			hb_str(&prot, "ES256");
			hb_str(&prot, "kid");
			hb_put(&prot, "\xc5\x00\x20", 3);
			hb_put(&prot, kids[0], 32);
			hb_str(&prot, "typ");
			hb_str(&prot, "consent");
			break;
		case 3:		/* map16 header for three entries */
			hb_put(&prot, "\xde\x00\x03", 3);
			hand_prot_entries(&prot, "ES256", kids[0], 32, "consent");
			break;
		case 4:		/* duplicate typ */
			hb_byte(&prot, 0x84);
			hand_prot_entries(&prot, "ES256", kids[0], 32, "consent");
			hb_str(&prot, "typ");
			hb_str(&prot, "consent");
			break;
		}
		ref_envelope(&env, 0, prot.hb_p, prot.hb_len, payload, sizeof(payload));
		ck_assert_msg(parse_verify(env.hb_p, env.hb_len, "consent", keys[0], &stage) == -1 &&
		    stage == 0, "non-canonical protected variant %d accepted", variant);
		hb_free(&prot);
		hb_free(&env);
	}
}
END_TEST

START_TEST(test_extra_protected_field)
{
	struct hbuf	prot = { 0 };

	hb_byte(&prot, 0x84);
	hb_str(&prot, "alg");
	hb_str(&prot, "ES256");
	hb_str(&prot, "crit");
	hb_byte(&prot, 0x90);
	hb_str(&prot, "kid");
	hb_bin(&prot, kids[0], 32);
	hb_str(&prot, "typ");
	hb_str(&prot, "consent");
	ck_prot_refused(&prot, "crit field");

	hand_prot(&prot, "ES256", kids[0], 32, "consent");
	prot.hb_p[0] = 0x84;
	hb_str(&prot, "zzz");
	hb_byte(&prot, 0x01);
	ck_prot_refused(&prot, "zzz field");

	/* Control: the three known fields alone verify. */
	hand_prot(&prot, "ES256", kids[0], 32, "consent");
	ck_prot_verifies(&prot);
}
END_TEST

START_TEST(test_bad_structure)
{
	struct hbuf	 prot = { 0 }, env = { 0 };
	uint8_t		 sig[513];
	static const uint8_t unsorted[] = { 0x82, 0xa1, 's', 0x01, 0xa1, 'n', 0x02 };

	hand_prot(&prot, "ES256", kids[0], 32, "consent");
	memset(sig, 0x30, sizeof(sig));

	/* Payload that is not a canonical map. */
	ref_envelope(&env, 0, prot.hb_p, prot.hb_len, unsorted, sizeof(unsorted));
	ck_parse_refused(env.hb_p, env.hb_len, "consent", "unsorted payload");
	hb_free(&env);
	ref_envelope(&env, 0, prot.hb_p, prot.hb_len, "\x91\x01", 2);
	ck_parse_refused(env.hb_p, env.hb_len, "consent", "payload array");
	hb_free(&env);
	ref_envelope(&env, 0, prot.hb_p, prot.hb_len, "", 0);
	ck_parse_refused(env.hb_p, env.hb_len, "consent", "empty payload");
	hb_free(&env);

	/* Signatures of impossible length. */
	hand_env(&env, prot.hb_p, prot.hb_len, payload, sizeof(payload), sig, 0);
	ck_parse_refused(env.hb_p, env.hb_len, "consent", "empty signature");
	hb_free(&env);
	hand_env(&env, prot.hb_p, prot.hb_len, payload, sizeof(payload), sig, sizeof(sig));
	ck_parse_refused(env.hb_p, env.hb_len, "consent", "513-byte signature");
	hb_free(&env);

	/* Not an array of three bin. */
	hb_byte(&env, 0x92);
	hb_bin(&env, prot.hb_p, prot.hb_len);
	hb_bin(&env, payload, sizeof(payload));
	ck_parse_refused(env.hb_p, env.hb_len, "consent", "two parts");
	hb_free(&env);
	hb_byte(&env, 0x94);
	hb_bin(&env, prot.hb_p, prot.hb_len);
	hb_bin(&env, payload, sizeof(payload));
	hb_bin(&env, sig, 64);
	hb_bin(&env, sig, 64);
	ck_parse_refused(env.hb_p, env.hb_len, "consent", "four parts");
	hb_free(&env);
	hb_byte(&env, 0x93);
	hb_bin(&env, prot.hb_p, prot.hb_len);
	hb_byte(&env, 0xac);		/* payload as str */
	hb_put(&env, payload, sizeof(payload));
	hb_bin(&env, sig, 64);
	ck_parse_refused(env.hb_p, env.hb_len, "consent", "payload as str");
	hb_free(&env);
	ck_parse_refused("\x80", 1, "consent", "a map");
	ck_parse_refused("garbage!", 8, "consent", "garbage");
	ck_parse_refused("", 0, "consent", "nothing");
	hb_free(&prot);
}
END_TEST

START_TEST(test_wrong_key)
{
	msgpack_sbuffer	 sb;
	EVP_PKEY	*other;
	int		 k, stage;

	sign_env(_i, "consent", NULL, 0, &sb);
	for (k = 0; k < NALG; k++) {
		if (k == _i)
			continue;
		ck_assert_msg(parse_verify(sb.data, sb.size, "consent", keys[k], &stage) == -1 &&
		    stage == 1, "%s envelope verified with a %s key", algs[_i].name,
		    algs[k].name);
	}
	/* Another key of the same algorithm. */
	other = gen_key(algs[_i].alg);
	ck_assert_int_eq(parse_verify(sb.data, sb.size, "consent", other, &stage), -1);
	ck_assert_int_eq(stage, 1);
	EVP_PKEY_free(other);
	ck_assert_int_eq(parse_verify(sb.data, sb.size, "consent", keys[_i], &stage), 0);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_unsupported_keys)
{
	EVP_PKEY	*p384, *rsa;
	msgpack_sbuffer	 sb;
	uint8_t		 kid[32] = { 0 };

	ck_assert_ptr_nonnull(p384 = EVP_EC_gen("P-384"));
	ck_assert_ptr_nonnull(rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
	ck_assert_int_eq(envelope_alg_of_key(p384), LB_ALG_NONE);
	ck_assert_int_eq(envelope_alg_of_key(rsa), LB_ALG_NONE);
	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(envelope_sign(p384, kid, "consent", NULL, 0, payload, sizeof(payload),
	    &sb), -1);
	ck_assert_int_eq(envelope_sign(rsa, kid, "consent", NULL, 0, payload, sizeof(payload),
	    &sb), -1);
	msgpack_sbuffer_destroy(&sb);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(rsa);
}
END_TEST

START_TEST(test_x5c)
{
	X509		*certs[5];
	msgpack_sbuffer	 sb;
	msgpack_zone	 z;
	struct envelope	 env;
	const char	*why;
	const uint8_t	*p;
	X509		*back;
	uint8_t		*der;
	int		 derlen, i, stage;
	struct hbuf	 prot = { 0 }, e = { 0 };
	/* ES256 and EdDSA keys sign their certificates with X509_sign. */
	int		 k = _i;

	for (i = 0; i < 5; i++)
		certs[i] = check_cert(keys[k], i == 0 ? "/CN=signer" : "/CN=ca", i + 1, NULL, NULL,
		    false);
	sign_env(k, "seal-batch", certs, 2, &sb);
	msgpack_zone_init(&z, 4096);
	ck_assert_int_eq(envelope_parse(sb.data, sb.size, &z, "seal-batch", &env, &why), 0);
	ck_assert_int_eq(envelope_verify(&env, keys[k]), 0);
	ck_assert_int_eq(env.env_x5c.type, MSGPACK_OBJECT_ARRAY);
	ck_assert_uint_eq(env.env_x5c.via.array.size, 2);
	for (i = 0; i < 2; i++) {
		const msgpack_object *c = &env.env_x5c.via.array.ptr[i];

		der = NULL;
		ck_assert_int_gt(derlen = i2d_X509(certs[i], &der), 0);
		ck_assert_int_eq(c->type, MSGPACK_OBJECT_BIN);
		ck_bytes_eq(c->via.bin.ptr, c->via.bin.size, der, (size_t)derlen);
		OPENSSL_free(der);
		p = (const uint8_t *)c->via.bin.ptr;
		ck_assert_ptr_nonnull(back = d2i_X509(NULL, &p, c->via.bin.size));
		ck_assert_int_eq(X509_cmp(back, certs[i]), 0);
		X509_free(back);
	}
	/* "x5c" sorts last: the protected map is {alg, kid, typ, x5c}. */
	ck_assert_uint_eq(env.env_prot[0], 0x84);
	hand_prot(&prot, algs[k].name, kids[k], 32, "seal-batch");
	ck_bytes_eq(env.env_prot + 1, prot.hb_len - 1, prot.hb_p + 1, prot.hb_len - 1);
	ck_bytes_eq(env.env_prot + prot.hb_len, 5, "\xa3x5c\x92", 5);
	hb_free(&prot);
	msgpack_zone_destroy(&z);
	msgpack_sbuffer_destroy(&sb);

	/* At most four certificates. */
	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(envelope_sign(keys[k], kids[k], "seal-batch", certs, 5, payload,
	    sizeof(payload), &sb), -1);
	msgpack_sbuffer_destroy(&sb);
	sign_env(k, "seal-batch", certs, 4, &sb);
	ck_assert_int_eq(parse_verify(sb.data, sb.size, "seal-batch", keys[k], &stage), 0);
	msgpack_sbuffer_destroy(&sb);

	/* Hand-built x5c values that must be refused: [], [str], five entries. */
	for (i = 0; i < 3; i++) {
		hand_prot(&prot, algs[k].name, kids[k], 32, "seal-batch");
		prot.hb_p[0] = 0x84;
		hb_str(&prot, "x5c");
		if (i == 0)
			hb_byte(&prot, 0x90);
		else if (i == 1) {
			hb_byte(&prot, 0x91);
			hb_str(&prot, "cert");
		} else {
			hb_byte(&prot, 0x95);
			for (derlen = 0; derlen < 5; derlen++)
				hb_bin(&prot, "c", 1);
		}
		ref_envelope(&e, k, prot.hb_p, prot.hb_len, payload, sizeof(payload));
		ck_parse_refused(e.hb_p, e.hb_len, "seal-batch", "bad x5c");
		hb_free(&prot);
		hb_free(&e);
	}
	for (i = 0; i < 5; i++)
		X509_free(certs[i]);
}
END_TEST

/*
 * SM2's Z value (GB/T 32918.2 §5.5) by hand: SM3(ENTL || ID || a || b ||
 * xG || yG || xA || yA), with the curve constants of GB/T 32918.5.
 */
static void
sm2_z(EVP_PKEY *key, const char *id, uint8_t z[32])
{
	static const char *const curve_hex =
	    "fffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffc"
	    "28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93"
	    "32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7"
	    "bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0";
	uint8_t		 curve[128], pub[65], entl[2];
	size_t		 publen = 0, idlen = strlen(id);
	EVP_MD_CTX	*md;

	ck_assert_int_eq(hex_decode(curve_hex, 256, curve, sizeof(curve)), 0);
	ck_assert_int_eq(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pub,
	    sizeof(pub), &publen), 1);
	ck_assert_uint_eq(publen, 65);
	ck_assert_uint_eq(pub[0], 0x04);
	entl[0] = (uint8_t)((idlen * 8) >> 8);
	entl[1] = (uint8_t)(idlen * 8);
	ck_assert_ptr_nonnull(md = EVP_MD_CTX_new());
	ck_assert_int_eq(EVP_DigestInit_ex(md, EVP_sm3(), NULL), 1);
	ck_assert_int_eq(EVP_DigestUpdate(md, entl, 2), 1);
	ck_assert_int_eq(EVP_DigestUpdate(md, id, idlen), 1);
	ck_assert_int_eq(EVP_DigestUpdate(md, curve, sizeof(curve)), 1);
	ck_assert_int_eq(EVP_DigestUpdate(md, pub + 1, 64), 1);
	ck_assert_int_eq(EVP_DigestFinal_ex(md, z, NULL), 1);
	EVP_MD_CTX_free(md);
}

/* Verifies a signature over a precomputed digest (no hashing by OpenSSL). */
static int
verify_digest(EVP_PKEY *key, const EVP_MD *mdtype, const uint8_t *dgst, size_t dlen,
    const uint8_t *sig, size_t siglen)
{
	EVP_PKEY_CTX	*c;
	int		 ok;

	ck_assert_ptr_nonnull(c = EVP_PKEY_CTX_new(key, NULL));
	ck_assert_int_eq(EVP_PKEY_verify_init(c), 1);
	if (mdtype != NULL)
		ck_assert_int_gt(EVP_PKEY_CTX_set_signature_md(c, mdtype), 0);
	ok = EVP_PKEY_verify(c, sig, siglen, dgst, dlen) == 1;
	EVP_PKEY_CTX_free(c);
	return ok ? 0 : -1;
}

START_TEST(test_independent_verify)
{
	msgpack_sbuffer	 sb;
	msgpack_zone	 z;
	struct envelope	 env;
	struct hbuf	 tbs = { 0 }, prot = { 0 }, mine = { 0 };
	const char	*why;
	uint8_t		 dgst[32], zv[32];
	EVP_MD_CTX	*md;
	int		 stage;

	sign_env(_i, "consent", NULL, 0, &sb);
	msgpack_zone_init(&z, 2048);
	ck_assert_int_eq(envelope_parse(sb.data, sb.size, &z, "consent", &env, &why), 0);
	hand_tbs(&tbs, env.env_prot, env.env_prot_len, env.env_payload, env.env_payload_len);

	/* lianban's signature verifies on plain EVP over the hand-built tbs. */
	ck_assert_int_eq(ref_verify(keys[_i], algs[_i].alg, tbs.hb_p, tbs.hb_len, env.env_sig,
	    env.env_sig_len), 0);
	switch (algs[_i].alg) {
	case LB_ALG_ES256:
		/* DER ECDSA over SHA-256(tbs), checked on the digest itself. */
		SHA256(tbs.hb_p, tbs.hb_len, dgst);
		ck_assert_int_eq(verify_digest(keys[_i], EVP_sha256(), dgst, 32, env.env_sig,
		    env.env_sig_len), 0);
		dgst[0] ^= 1;
		ck_assert_int_eq(verify_digest(keys[_i], EVP_sha256(), dgst, 32, env.env_sig,
		    env.env_sig_len), -1);
		break;
	case LB_ALG_EDDSA:
		/* Ed25519 signs tbs itself: a SHA-256 pre-hash must not verify. */
		SHA256(tbs.hb_p, tbs.hb_len, dgst);
		ck_assert_int_eq(ref_verify(keys[_i], LB_ALG_EDDSA, dgst, 32, env.env_sig,
		    env.env_sig_len), -1);
		break;
	case LB_ALG_SM2:
		/* e = SM3(Z || tbs) with Z from the contract's ID, computed by hand. */
		sm2_z(keys[_i], LB_SM2_ID, zv);
		ck_assert_ptr_nonnull(md = EVP_MD_CTX_new());
		ck_assert_int_eq(EVP_DigestInit_ex(md, EVP_sm3(), NULL), 1);
		ck_assert_int_eq(EVP_DigestUpdate(md, zv, 32), 1);
		ck_assert_int_eq(EVP_DigestUpdate(md, tbs.hb_p, tbs.hb_len), 1);
		ck_assert_int_eq(EVP_DigestFinal_ex(md, dgst, NULL), 1);
		EVP_MD_CTX_free(md);
		ck_assert_int_eq(verify_digest(keys[_i], NULL, dgst, 32, env.env_sig,
		    env.env_sig_len), 0);
		/* Another ID gives another Z, and the signature no longer verifies. */
		ck_assert_int_eq(ref_verify_id(keys[_i], LB_ALG_SM2, "1234567812345679", tbs.hb_p,
		    tbs.hb_len, env.env_sig, env.env_sig_len), -1);
		ck_assert_int_eq(ref_verify_id(keys[_i], LB_ALG_SM2, "ALICE123@YAHOO.COM",
		    tbs.hb_p, tbs.hb_len, env.env_sig, env.env_sig_len), -1);
		break;
	default:
		ck_abort();
	}

	/* And the other way: a signature made on plain EVP verifies in lianban. */
	hand_prot(&prot, algs[_i].name, kids[_i], 32, "consent");
	ref_envelope(&mine, _i, prot.hb_p, prot.hb_len, payload, sizeof(payload));
	ck_assert_int_eq(parse_verify(mine.hb_p, mine.hb_len, "consent", keys[_i], &stage), 0);
	/* Same header, same payload: the envelopes differ only in the signature. */
	ck_assert_uint_eq(prot.hb_len, env.env_prot_len);
	ck_bytes_eq(prot.hb_p, prot.hb_len, env.env_prot, env.env_prot_len);
	hb_free(&tbs);
	hb_free(&prot);
	hb_free(&mine);
	msgpack_zone_destroy(&z);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_sig_create_check)
{
	uint8_t	*sig;
	size_t	 siglen;
	int	 k;

	ck_assert_int_eq(envelope_sig_create(keys[_i], "tbs", 3, &sig, &siglen), 0);
	ck_assert_int_eq(ref_verify(keys[_i], algs[_i].alg, "tbs", 3, sig, siglen), 0);
	ck_assert_int_eq(envelope_sig_check(keys[_i], algs[_i].alg, "tbs", 3, sig, siglen), 0);
	ck_assert_int_eq(envelope_sig_check(keys[_i], algs[_i].alg, "tbt", 3, sig, siglen), -1);
	for (k = 0; k < NALG; k++)
		if (k != _i)
			ck_assert_int_eq(envelope_sig_check(keys[_i], algs[k].alg, "tbs", 3, sig,
			    siglen), -1);
	ck_assert_int_eq(envelope_sig_check(keys[_i], LB_ALG_NONE, "tbs", 3, sig, siglen), -1);
	free(sig);
}
END_TEST

START_TEST(test_key_id)
{
	unsigned char	*der = NULL;
	uint8_t		 want[32], got[32], fromcert[32];
	int		 len, k;
	X509		*cert;

	ck_assert_int_gt(len = i2d_PUBKEY(keys[_i], &der), 0);
	SHA256(der, (size_t)len, want);
	OPENSSL_free(der);
	ck_assert_int_eq(key_id_pkey(keys[_i], got), 0);
	ck_bytes_eq(got, 32, want, 32);
	for (k = 0; k < NALG; k++)
		if (k != _i)
			ck_assert(memcmp(kids[k], got, 32) != 0);
	if (algs[_i].alg != LB_ALG_SM2) {
		cert = check_cert(keys[_i], "/CN=faceauth", 7, NULL, NULL, false);
		ck_assert_int_eq(key_id_cert(cert, fromcert), 0);
		ck_bytes_eq(fromcert, 32, want, 32);
		X509_free(cert);
	}
}
END_TEST

static Suite *
envelope_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("envelope");

	tc = tcase_create("sign");
	tcase_add_checked_fixture(tc, keys_setup, keys_teardown);
	tcase_add_loop_test(tc, test_sign_parse_verify, 0, NALG);
	tcase_add_loop_test(tc, test_protected_bytes, 0, NALG);
	tcase_add_test(tc, test_tbs_bytes);
	tcase_add_loop_test(tc, test_sig_create_check, 0, NALG);
	tcase_add_loop_test(tc, test_key_id, 0, NALG);
	tcase_add_test(tc, test_unsupported_keys);
	tcase_add_loop_test(tc, test_x5c, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("refuse");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, keys_setup, keys_teardown);
	tcase_add_loop_test(tc, test_flipped_bytes, 0, NALG);
	tcase_add_test(tc, test_wrong_typ);
	tcase_add_test(tc, test_unknown_alg);
	tcase_add_test(tc, test_kid_shape);
	tcase_add_loop_test(tc, test_trailing_bytes, 0, NALG);
	tcase_add_test(tc, test_noncanonical_protected);
	tcase_add_test(tc, test_extra_protected_field);
	tcase_add_test(tc, test_bad_structure);
	tcase_add_loop_test(tc, test_wrong_key, 0, NALG);
	suite_add_tcase(s, tc);

	tc = tcase_create("independent");
	tcase_add_checked_fixture(tc, keys_setup, keys_teardown);
	tcase_add_loop_test(tc, test_independent_verify, 0, NALG);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	return check_run(envelope_suite());
}
