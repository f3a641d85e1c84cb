/*
 * envelope.c - the signed envelope of docs/contract.md §4, shared by consent tokens,
 * seal batches and journal checkpoints.
 *
 *	envelope = [ protected: bin, payload: bin, signature: bin ]
 *	tbs      = [ "lianban/1", protected: bin, payload: bin ]
 *
 * Signing and verification are CPU work and run on worker threads.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>

#include "lianban.h"

#define ENV_MAX_X5C	4

static const char *const alg_names[] = {
	[LB_ALG_NONE] = "none",
	[LB_ALG_ES256] = "ES256",
	[LB_ALG_EDDSA] = "EdDSA",
	[LB_ALG_SM2] = "SM2",
};

const char *
envelope_alg_name(enum lb_alg alg)
{
	if ((unsigned)alg > LB_ALG_SM2)
		return "none";
	return alg_names[alg];
}

enum lb_alg
envelope_alg_from_name(const char *name)
{
	int	i;

	for (i = LB_ALG_ES256; i <= LB_ALG_SM2; i++)
		if (strcmp(alg_names[i], name) == 0)
			return (enum lb_alg)i;
	return LB_ALG_NONE;
}

enum lb_alg
envelope_alg_of_key(EVP_PKEY *key)
{
	char	group[64];

	if (key == NULL)
		return LB_ALG_NONE;
	if (EVP_PKEY_is_a(key, "SM2"))
		return LB_ALG_SM2;
	if (EVP_PKEY_is_a(key, "ED25519"))
		return LB_ALG_EDDSA;
	if (EVP_PKEY_is_a(key, "EC") &&
	    EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) == 1) {
		if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
			return LB_ALG_ES256;
		if (strcmp(group, "SM2") == 0)
			return LB_ALG_SM2;
	}
	return LB_ALG_NONE;
}

/*
 * Prepares md for signing or verifying with the rules of alg: SHA-256 for
 * ES256, no pre-hash for Ed25519, SM3 with the distinguishing ID for SM2.
 */
static int
sig_init(EVP_MD_CTX *md, EVP_PKEY *key, enum lb_alg alg, bool sign)
{
	EVP_PKEY_CTX	*pctx = NULL;
	const EVP_MD	*digest = NULL;
	int		 ok;

	switch (alg) {
	case LB_ALG_ES256:
		digest = EVP_sha256();
		break;
	case LB_ALG_EDDSA:
		break;
	case LB_ALG_SM2:
		digest = EVP_sm3();
		break;
	default:
		return -1;
	}
	/* The key context made here belongs to md and is freed with it. */
	if (sign)
		ok = EVP_DigestSignInit(md, &pctx, digest, NULL, key);
	else
		ok = EVP_DigestVerifyInit(md, &pctx, digest, NULL, key);
	if (ok != 1)
		return -1;
	/* SM2's Z value includes the ID; it is computed at the first update. */
	if (alg == LB_ALG_SM2 &&
	    EVP_PKEY_CTX_set1_id(pctx, LB_SM2_ID, strlen(LB_SM2_ID)) != 1)
		return -1;
	return 0;
}

int
envelope_sig_create(EVP_PKEY *key, const void *tbs, size_t tbslen, uint8_t **sig,
    size_t *siglen)
{
	EVP_MD_CTX	*md;
	uint8_t		*buf = NULL;
	size_t		 len = 0;
	int		 ret = -1;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (sig_init(md, key, envelope_alg_of_key(key), true) != 0)
		goto done;
	if (EVP_DigestSign(md, NULL, &len, tbs, tbslen) != 1 ||
	    (buf = malloc(len)) == NULL ||
	    EVP_DigestSign(md, buf, &len, tbs, tbslen) != 1)
		goto done;
	*sig = buf;
	*siglen = len;
	buf = NULL;
	ret = 0;
done:
	free(buf);
	EVP_MD_CTX_free(md);
	return ret;
}

int
envelope_sig_check(EVP_PKEY *key, enum lb_alg alg, const void *tbs, size_t tbslen,
    const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX	*md;
	int		 ret = -1;

	if (envelope_alg_of_key(key) != alg)
		return -1;
	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (sig_init(md, key, alg, false) == 0 &&
	    EVP_DigestVerify(md, sig, siglen, tbs, tbslen) == 1)
		ret = 0;
	EVP_MD_CTX_free(md);
	return ret;
}

int
envelope_tbs(const void *prot, size_t plen, const void *payload, size_t paylen,
    uint8_t **tbs, size_t *tbslen)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_pack_array(&pk, 3) != 0 ||
	    msgpack_pack_str(&pk, strlen(LB_PROTOCOL)) != 0 ||
	    msgpack_pack_str_body(&pk, LB_PROTOCOL, strlen(LB_PROTOCOL)) != 0 ||
	    msgpack_pack_bin(&pk, plen) != 0 ||
	    msgpack_pack_bin_body(&pk, prot, plen) != 0 ||
	    msgpack_pack_bin(&pk, paylen) != 0 ||
	    msgpack_pack_bin_body(&pk, payload, paylen) != 0) {
		msgpack_sbuffer_destroy(&sb);
		return -1;
	}
	*tbslen = sb.size;
	*tbs = (uint8_t *)msgpack_sbuffer_release(&sb);
	return 0;
}

int
envelope_sign(EVP_PKEY *key, const uint8_t kid[32], const char *typ, X509 *const *x5c,
    size_t nx5c, const void *payload, size_t payload_len, msgpack_sbuffer *out)
{
	msgpack_zone	 z;
	msgpack_sbuffer	 prot;
	msgpack_packer	 pk;
	struct mpk_map	 m;
	msgpack_object	 chain;
	uint8_t		*tbs = NULL, *sig = NULL, *der;
	size_t		 tbslen, siglen, i;
	enum lb_alg	 alg;
	int		 len, ret = -1;

	msgpack_zone_init(&z, 2048);
	msgpack_sbuffer_init(&prot);
	if ((alg = envelope_alg_of_key(key)) == LB_ALG_NONE || nx5c > ENV_MAX_X5C)
		goto done;
	mpk_map_init(&m, &z, 4);
	mpk_map_put(&m, "alg", mpk_str(envelope_alg_name(alg)));
	mpk_map_put(&m, "kid", mpk_bin(kid, 32));
	mpk_map_put(&m, "typ", mpk_str(typ));
	if (nx5c > 0) {
		chain = mpk_array(&z, (uint32_t)nx5c);
		for (i = 0; i < nx5c; i++) {
			der = NULL;
			if ((len = i2d_X509(x5c[i], &der)) <= 0)
				goto done;
			chain.via.array.ptr[i] = mpk_bindup(&z, der, (size_t)len);
			OPENSSL_free(der);
		}
		mpk_map_put(&m, "x5c", chain);
	}
	if (mpk_pack(&m.mm_obj, &prot, false) != 0)
		goto done;
	if (envelope_tbs(prot.data, prot.size, payload, payload_len, &tbs, &tbslen) != 0 ||
	    envelope_sig_create(key, tbs, tbslen, &sig, &siglen) != 0)
		goto done;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	if (msgpack_pack_array(&pk, 3) != 0 ||
	    msgpack_pack_bin(&pk, prot.size) != 0 ||
	    msgpack_pack_bin_body(&pk, prot.data, prot.size) != 0 ||
	    msgpack_pack_bin(&pk, payload_len) != 0 ||
	    msgpack_pack_bin_body(&pk, payload, payload_len) != 0 ||
	    msgpack_pack_bin(&pk, siglen) != 0 ||
	    msgpack_pack_bin_body(&pk, sig, siglen) != 0)
		goto done;
	ret = 0;
done:
	free(tbs);
	free(sig);
	msgpack_sbuffer_destroy(&prot);
	msgpack_zone_destroy(&z);
	return ret;
}

int
envelope_parse(const void *buf, size_t len, msgpack_zone *z, const char *want_typ,
    struct envelope *env, const char **why)
{
	msgpack_object		 top, prot;
	const msgpack_object	*parts, *v;
	char			 alg[16];
	uint32_t		 i;

	memset(env, 0, sizeof(*env));
	env->env_x5c = mpk_nil();
	*why = "envelope is not a msgpack array of three byte strings";
	if (mpk_unpack(buf, len, z, &top) != 0) {
		*why = "envelope is not one well-formed msgpack value (or has trailing bytes)";
		return -1;
	}
	if (top.type != MSGPACK_OBJECT_ARRAY || top.via.array.size != 3)
		return -1;
	parts = top.via.array.ptr;
	for (i = 0; i < 3; i++)
		if (parts[i].type != MSGPACK_OBJECT_BIN)
			return -1;
	env->env_prot = (const uint8_t *)parts[0].via.bin.ptr;
	env->env_prot_len = parts[0].via.bin.size;
	env->env_payload = (const uint8_t *)parts[1].via.bin.ptr;
	env->env_payload_len = parts[1].via.bin.size;
	env->env_sig = (const uint8_t *)parts[2].via.bin.ptr;
	env->env_sig_len = parts[2].via.bin.size;

	if (!mpk_is_canonical(env->env_prot, env->env_prot_len) ||
	    mpk_unpack(env->env_prot, env->env_prot_len, z, &prot) != 0 ||
	    prot.type != MSGPACK_OBJECT_MAP) {
		*why = "protected header is not a canonical msgpack map with UTF-8 text";
		return -1;
	}
	for (i = 0; i < prot.via.map.size; i++) {
		const msgpack_object *k = &prot.via.map.ptr[i].key;

		if (!mpk_str_eq(k, "alg") && !mpk_str_eq(k, "kid") && !mpk_str_eq(k, "typ") &&
		    !mpk_str_eq(k, "x5c")) {
			*why = "protected header has an unknown field";
			return -1;
		}
	}
	if (mpk_get_str(&prot, "alg", alg, sizeof(alg)) != 0 ||
	    (env->env_alg = envelope_alg_from_name(alg)) == LB_ALG_NONE) {
		*why = "unknown or missing alg";
		return -1;
	}
	if ((v = mpk_get(&prot, "kid")) == NULL || v->type != MSGPACK_OBJECT_BIN ||
	    v->via.bin.size != 32) {
		*why = "kid must be 32 bytes";
		return -1;
	}
	memcpy(env->env_kid, v->via.bin.ptr, 32);
	if (mpk_get_str(&prot, "typ", env->env_typ, sizeof(env->env_typ)) != 0) {
		*why = "missing typ";
		return -1;
	}
	if (want_typ != NULL && strcmp(env->env_typ, want_typ) != 0) {
		*why = "envelope typ is not the one expected here";
		return -1;
	}
	if ((v = mpk_get(&prot, "x5c")) != NULL) {
		if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size == 0 ||
		    v->via.array.size > ENV_MAX_X5C) {
			*why = "x5c must be an array of 1 to 4 certificates";
			return -1;
		}
		for (i = 0; i < v->via.array.size; i++)
			if (v->via.array.ptr[i].type != MSGPACK_OBJECT_BIN) {
				*why = "x5c entries must be DER certificates";
				return -1;
			}
		env->env_x5c = *v;
	}
	if (!mpk_is_canonical(env->env_payload, env->env_payload_len) ||
	    mpk_unpack(env->env_payload, env->env_payload_len, z, &env->env_claims) != 0 ||
	    env->env_claims.type != MSGPACK_OBJECT_MAP) {
		*why = "payload is not a canonical msgpack map with UTF-8 text";
		return -1;
	}
	if (env->env_sig_len == 0 || env->env_sig_len > 512) {
		*why = "signature has an impossible length";
		return -1;
	}
	*why = NULL;
	return 0;
}

int
envelope_verify(const struct envelope *env, EVP_PKEY *pub)
{
	uint8_t	*tbs = NULL;
	size_t	 tbslen;
	int	 ret = -1;

	if (envelope_tbs(env->env_prot, env->env_prot_len, env->env_payload,
	    env->env_payload_len, &tbs, &tbslen) != 0)
		return -1;
	ret = envelope_sig_check(pub, env->env_alg, tbs, tbslen, env->env_sig, env->env_sig_len);
	free(tbs);
	return ret;
}
