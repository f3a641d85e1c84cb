/*
 * seal.c - electronic seals (docs/contract.md §6).
 *
 * A department's seal vouches for documents in batches: each document gets
 * a claim, the claims are leaves of an RFC 6962 tree, and one signature over
 * the root (a "seal-batch" envelope) covers them all.  A receipt carries the
 * claim, its inclusion path and the envelope, so anyone can check a document
 * offline with the seal root certificate alone.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509_vfy.h>

#include "lianban.h"

#define SEAL_BATCH_MAX	4096

#define SEAL_URI_MAX	2048

/*
 * Reads the PKCS#11 URI of a seal kept in a token: one line, which may hold
 * the token PIN, so the file must not be readable by group or others.
 */
static int
seal_uri_load(const char *path, char *uri, size_t urilen, char *err, size_t errlen)
{
	uint8_t		*text = NULL;
	size_t		 len = 0;
	int		 ret = -1;

	if (key_file_read(path, "a PKCS#11 URI that may hold a PIN", SEAL_URI_MAX, &text, &len,
	    err, errlen) == -1)
		goto done;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
	    text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= urilen || memchr(text, '\0', len) != NULL ||
	    memchr(text, '\n', len) != NULL || strncmp((char *)text, "pkcs11:", 7) != 0) {
		snprintf(err, errlen, "%s: not one line holding a pkcs11: URI", path);
		goto done;
	}
	memcpy(uri, text, len);
	uri[len] = '\0';
	ret = 0;
done:
	if (text != NULL) {
		OPENSSL_cleanse(text, len);
		free(text);
	}
	return ret;
}

int
seal_key_load(const char *certsdir, const char *id, struct seal_key *sk, char *err,
    size_t errlen)
{
	char	path[PATH_MAX], uri[SEAL_URI_MAX], why[256];
	int	ret = -1;

	memset(sk, 0, sizeof(*sk));
	if (strlcpy_chk(sk->sk_id, id, sizeof(sk->sk_id)) != 0 || strchr(id, '/') != NULL) {
		snprintf(err, errlen, "bad seal id \"%s\"", id);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/seals/%s.pem", certsdir, id);
	if (cert_load(path, &sk->sk_cert, err, errlen) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/seals/%s.pkcs11", certsdir, id);
	if (access(path, F_OK) == 0) {
		if (seal_uri_load(path, uri, sizeof(uri), err, errlen) != 0)
			goto fail;
		if (key_load_pkcs11(uri, &sk->sk_key, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "seal %s (%s): %s", id, path, why);
			goto fail;
		}
		sk->sk_token = true;
	} else {
		snprintf(path, sizeof(path), "%s/seals/%s.key", certsdir, id);
		if (key_load(path, &sk->sk_key, err, errlen) != 0)
			goto fail;
	}
	if (X509_check_private_key(sk->sk_cert, sk->sk_key) != 1) {
		snprintf(err, errlen, "seal %s: key does not match its certificate", id);
		goto fail;
	}
	if ((sk->sk_alg = envelope_alg_of_key(sk->sk_key)) == LB_ALG_NONE) {
		snprintf(err, errlen, "seal %s: key type is not ES256, EdDSA or SM2", id);
		goto fail;
	}
	sk->sk_hash = sk->sk_alg == LB_ALG_SM2 ? MK_SM3 : MK_SHA256;
	if (cert_subject_field(sk->sk_cert, NID_commonName, sk->sk_dept,
	    sizeof(sk->sk_dept)) != 0 || key_id_cert(sk->sk_cert, sk->sk_kid) != 0) {
		snprintf(err, errlen, "seal %s: certificate has no usable CN", id);
		goto fail;
	}
	ret = 0;
fail:
	OPENSSL_cleanse(uri, sizeof(uri));
	if (ret != 0)
		seal_key_clear(sk);
	return ret;
}

void
seal_key_clear(struct seal_key *sk)
{
	EVP_PKEY_free(sk->sk_key);	/* wipes the private key */
	X509_free(sk->sk_cert);
	memset(sk, 0, sizeof(*sk));
}

int
seal_claim_pack(const struct seal_key *sk, const char *item, const void *doc, size_t doclen,
    const uint8_t exch[16], uint64_t iat, msgpack_sbuffer *out)
{
	msgpack_zone	z;
	struct mpk_map	m;
	uint8_t		digest[32];
	int		ret;

	merkle_hash(sk->sk_hash, doc, doclen, digest);
	msgpack_zone_init(&z, 512);
	mpk_map_init(&m, &z, 6);
	mpk_map_put(&m, "seal", mpk_str(sk->sk_id));
	mpk_map_put(&m, "iss", mpk_str(sk->sk_dept));
	mpk_map_put(&m, "item", mpk_str(item));
	mpk_map_put(&m, "doc", mpk_bin(digest, 32));
	mpk_map_put(&m, "exch", mpk_bin(exch, 16));
	mpk_map_put(&m, "iat", mpk_uint(iat));
	ret = mpk_pack(&m.mm_obj, out, false);
	msgpack_zone_destroy(&z);
	return ret;
}

/*
 * The whole tree of a batch, level by level: level 0 holds the leaves, and
 * each level above pairs the nodes of the one below, an unpaired last node
 * moving up unchanged.  This builds the RFC 6962 tree (whose left subtree
 * is always the largest complete one) with n - 1 node hashes, and every
 * inclusion path is read off the levels instead of being recomputed from
 * the leaves, so a batch of n costs O(n log n), not O(n^2).
 */
struct seal_tree {
	uint8_t		(*st_node)[32];		/* all levels, bottom first */
	size_t		  st_off[MK_MAX_PATH + 1];	/* first node of each level */
	size_t		  st_cnt[MK_MAX_PATH + 1];	/* nodes in each level */
	size_t		  st_levels;
};

static int
seal_tree_build(enum mk_hash h, struct seal_tree *t, const uint8_t *const *claims,
    const size_t *claim_lens, size_t n)
{
	size_t	total = 0, c, l, i;
	uint8_t	(*lo)[32], (*up)[32];

	memset(t, 0, sizeof(*t));
	for (c = n; ; c = (c + 1) / 2) {
		if (t->st_levels > MK_MAX_PATH)
			return -1;
		t->st_off[t->st_levels] = total;
		t->st_cnt[t->st_levels++] = c;
		total += c;
		if (c == 1)
			break;
	}
	if ((t->st_node = calloc(total, 32)) == NULL)
		return -1;
	for (i = 0; i < n; i++)
		merkle_leaf_hash(h, claims[i], claim_lens[i], t->st_node[i]);
	for (l = 1; l < t->st_levels; l++) {
		lo = t->st_node + t->st_off[l - 1];
		up = t->st_node + t->st_off[l];
		for (i = 0; i + 1 < t->st_cnt[l - 1]; i += 2)
			merkle_node_hash(h, lo[i], lo[i + 1], up[i / 2]);
		if (t->st_cnt[l - 1] % 2)
			memcpy(up[i / 2], lo[i], 32);
	}
	return 0;
}

/* The inclusion path of leaf idx, bottom up (RFC 9162 §2.1.3.1 order). */
static size_t
seal_tree_path(const struct seal_tree *t, size_t idx, uint8_t path[][32])
{
	size_t	l, n = 0;

	for (l = 0; l + 1 < t->st_levels; l++, idx /= 2)
		if ((idx ^ 1) < t->st_cnt[l])
			memcpy(path[n++], t->st_node[t->st_off[l] + (idx ^ 1)], 32);
	return n;
}

int
seal_batch(const struct seal_key *sk, const uint8_t *const *claims, const size_t *claim_lens,
    size_t n, uint64_t iat, uint8_t **receipts, size_t *receipt_lens)
{
	struct seal_tree st = { 0 };
	msgpack_zone	 z;
	msgpack_sbuffer	 payload, env, rc;
	struct mpk_map	 m, r;
	msgpack_object	 path;
	uint8_t		 root[32], proof[MK_MAX_PATH][32];
	size_t		 i, j, npath;
	int		 ret = -1;

	msgpack_zone_init(&z, 4096);
	msgpack_sbuffer_init(&payload);
	msgpack_sbuffer_init(&env);
	msgpack_sbuffer_init(&rc);
	for (i = 0; i < n; i++)
		receipts[i] = NULL;
	if (n == 0 || n > SEAL_BATCH_MAX ||
	    seal_tree_build(sk->sk_hash, &st, claims, claim_lens, n) != 0)
		goto done;
	memcpy(root, st.st_node[st.st_off[st.st_levels - 1]], 32);

	mpk_map_init(&m, &z, 5);
	mpk_map_put(&m, "root", mpk_bin(root, 32));
	mpk_map_put(&m, "size", mpk_uint(n));
	mpk_map_put(&m, "iat", mpk_uint(iat));
	mpk_map_put(&m, "seal", mpk_str(sk->sk_id));
	mpk_map_put(&m, "iss", mpk_str(sk->sk_dept));
	if (mpk_pack(&m.mm_obj, &payload, false) != 0 ||
	    envelope_sign(sk->sk_key, sk->sk_kid, "seal-batch", &sk->sk_cert, 1,
	    payload.data, payload.size, &env) != 0)
		goto done;

	for (i = 0; i < n; i++) {
		npath = seal_tree_path(&st, i, proof);
		path = mpk_array(&z, (uint32_t)npath);
		for (j = 0; j < npath; j++)
			path.via.array.ptr[j] = mpk_bin(proof[j], 32);
		mpk_map_init(&r, &z, 4);
		mpk_map_put(&r, "claim", mpk_bin(claims[i], claim_lens[i]));
		mpk_map_put(&r, "index", mpk_uint(i));
		mpk_map_put(&r, "path", path);
		mpk_map_put(&r, "batch", mpk_bin(env.data, env.size));
		rc.size = 0;
		if (mpk_pack(&r.mm_obj, &rc, false) != 0 ||
		    (receipts[i] = malloc(rc.size)) == NULL)
			goto done;
		memcpy(receipts[i], rc.data, rc.size);
		receipt_lens[i] = rc.size;
	}
	ret = 0;
done:
	if (ret != 0)
		for (i = 0; i < n; i++) {
			free(receipts[i]);
			receipts[i] = NULL;
		}
	free(st.st_node);
	msgpack_sbuffer_destroy(&payload);
	msgpack_sbuffer_destroy(&env);
	msgpack_sbuffer_destroy(&rc);
	msgpack_zone_destroy(&z);
	return ret;
}

/*
 * Chains cert to one of roots, as of the unix time at; *why names what
 * failed ("certificate has expired", ...), from OpenSSL's static strings.
 */
static int
seal_chain_ok(X509 *cert, X509_STORE *roots, uint64_t at, const char **why, char *root,
    size_t rootlen)
{
	X509_STORE_CTX	*ctx;
	STACK_OF(X509)	*chain;
	int		 ok = 0;

	*why = "out of memory";
	if ((ctx = X509_STORE_CTX_new()) == NULL)
		return 0;
	if (X509_STORE_CTX_init(ctx, roots, cert, NULL) == 1) {
		X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)at);
		ok = X509_verify_cert(ctx) == 1;
		/* The chain is owned by ctx; its last certificate is the root. */
		if (ok && (chain = X509_STORE_CTX_get0_chain(ctx)) != NULL &&
		    sk_X509_num(chain) > 0)
			X509_NAME_oneline(X509_get_subject_name(sk_X509_value(chain,
			    sk_X509_num(chain) - 1)), root, (int)rootlen);
		if (!ok)
			*why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
	}
	X509_STORE_CTX_free(ctx);
	return ok;
}

int
seal_verify(const uint8_t *receipt, size_t len, const uint8_t *doc, size_t doclen,
    X509_STORE *roots, struct seal_verdict *v, char *err, size_t errlen)
{
	msgpack_zone		 z;
	msgpack_object		 rc, claim;
	struct envelope		 env;
	const msgpack_object	*o;
	const uint8_t		*cbytes, *ebytes, *dg, *ex, *der, *proot;
	size_t			 clen, elen, n, i;
	uint8_t			 digest[32], leaf[32], root[32], kid[32];
	uint8_t			 (*path)[32] = NULL;
	const char		*why;
	enum mk_hash		 h;
	uint64_t		 index, size;
	X509			*cert = NULL;
	int			 ret = -1;

	memset(v, 0, sizeof(*v));
	msgpack_zone_init(&z, 4096);
#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto done; } while (0)
	if (mpk_unpack(receipt, len, &z, &rc) != 0 || rc.type != MSGPACK_OBJECT_MAP)
		FAIL("receipt is not a msgpack map");
	if (mpk_get_bytes(&rc, "claim", &z, &cbytes, &clen) != 0 ||
	    mpk_get_bytes(&rc, "batch", &z, &ebytes, &elen) != 0 ||
	    mpk_get_u64(&rc, "index", &index) != 0 ||
	    (o = mpk_get(&rc, "path")) == NULL || o->type != MSGPACK_OBJECT_ARRAY)
		FAIL("receipt lacks claim, index, path or batch");
	if ((n = o->via.array.size) > MK_MAX_PATH || (path = calloc(n ? n : 1, 32)) == NULL)
		FAIL("receipt path is too long");
	for (i = 0; i < n; i++) {
		const uint8_t	*p;
		size_t		 pl;

		if (mpk_obj_bytes(&o->via.array.ptr[i], &z, &p, &pl) != 0 || pl != 32)
			FAIL("receipt path entry %zu is not 32 bytes", i);
		memcpy(path[i], p, 32);
	}
	if (envelope_parse(ebytes, elen, &z, "seal-batch", &env, &why) != 0)
		FAIL("batch envelope: %s", why);
	h = env.env_alg == LB_ALG_SM2 ? MK_SM3 : MK_SHA256;
	snprintf(v->sv_hash, sizeof(v->sv_hash), "%s", h == MK_SM3 ? "SM3" : "SHA-256");
	snprintf(v->sv_alg, sizeof(v->sv_alg), "%s", envelope_alg_name(env.env_alg));

	if (!mpk_is_canonical(cbytes, clen) || mpk_unpack(cbytes, clen, &z, &claim) != 0 ||
	    claim.type != MSGPACK_OBJECT_MAP)
		FAIL("claim is not a canonical msgpack map");
	if (mpk_get_str(&claim, "seal", v->sv_seal, sizeof(v->sv_seal)) != 0 ||
	    mpk_get_str(&claim, "iss", v->sv_iss, sizeof(v->sv_iss)) != 0 ||
	    mpk_get_str(&claim, "item", v->sv_item, sizeof(v->sv_item)) != 0 ||
	    mpk_get_u64(&claim, "iat", &v->sv_iat) != 0 ||
	    mpk_get_bytes(&claim, "doc", &z, &dg, &n) != 0 || n != 32 ||
	    mpk_get_bytes(&claim, "exch", &z, &ex, &elen) != 0 || elen != 16)
		FAIL("claim lacks seal, iss, item, iat, doc or exch");
	memcpy(v->sv_exch, ex, 16);

	merkle_hash(h, doc, doclen, digest);
	if (CRYPTO_memcmp(digest, dg, 32) != 0)
		FAIL("document digest does not match the claim: the document was changed");

	if (mpk_get_u64(&env.env_claims, "size", &size) != 0 ||
	    mpk_get_bytes(&env.env_claims, "root", &z, &proot, &n) != 0 || n != 32)
		FAIL("batch payload lacks size or root");
	if (!mpk_str_eq(mpk_get(&env.env_claims, "seal"), v->sv_seal) ||
	    !mpk_str_eq(mpk_get(&env.env_claims, "iss"), v->sv_iss))
		FAIL("batch seal or issuer differs from the claim's");
	v->sv_index = index;
	v->sv_size = size;
	merkle_leaf_hash(h, cbytes, clen, leaf);
	if (merkle_root_from_path(h, leaf, index, size, (const uint8_t (*)[32])path,
	    o->via.array.size, root) != 0 || CRYPTO_memcmp(root, proot, 32) != 0)
		FAIL("Merkle path does not lead to the batch root: claim or path was changed");

	if (env.env_x5c.type != MSGPACK_OBJECT_ARRAY)
		FAIL("batch envelope carries no seal certificate (x5c)");
	der = (const uint8_t *)env.env_x5c.via.array.ptr[0].via.bin.ptr;
	if ((cert = d2i_X509(NULL, &der, env.env_x5c.via.array.ptr[0].via.bin.size)) == NULL)
		FAIL("seal certificate in x5c is not DER");
	if (key_id_cert(cert, kid) != 0 || memcmp(kid, env.env_kid, 32) != 0)
		FAIL("kid does not name the certificate in x5c");
	if (envelope_verify(&env, X509_get0_pubkey(cert)) != 0)
		FAIL("batch signature does not verify with the seal certificate");
	X509_NAME_oneline(X509_get_subject_name(cert), v->sv_signer, sizeof(v->sv_signer));
	if (!seal_chain_ok(cert, roots, v->sv_iat, &why, v->sv_root, sizeof(v->sv_root)))
		FAIL("seal certificate does not chain to a trusted seal root at iat (%s)", why);
	{
		char	cn[LB_ID_MAX] = "";

		if (cert_subject_field(cert, NID_commonName, cn, sizeof(cn)) != 0 ||
		    strcmp(cn, v->sv_iss) != 0)
			FAIL("seal certificate belongs to \"%s\", not to issuer \"%s\"",
			    cn, v->sv_iss);
	}
#undef FAIL
	ret = 0;
done:
	X509_free(cert);
	free(path);
	msgpack_zone_destroy(&z);
	return ret;
}
