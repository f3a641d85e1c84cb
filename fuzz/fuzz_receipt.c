/*
 * fuzz_receipt.c - the verifiers a relying party runs on what the gateway
 * hands out: seal receipts (seal_verify, docs/contract.md §6), journal checkpoints
 * (the "checkpoint" envelope, docs/contract.md §7) and RFC 9162 inclusion and
 * consistency proofs.
 *
 * Byte 0 picks the verifier (mod 3):
 *   0: the rest is a seal receipt for the fixed document DOC, checked
 *      against an in-memory seal root;
 *   1: the rest is a checkpoint envelope, parsed, verified with the
 *      checkpoint key and its payload read;
 *   2: the rest is a proof: idx (8 bytes), size (8), then 32-byte hashes,
 *      checked as an inclusion proof of leaf DOC and as a consistency
 *      proof from idx to size.
 * With LB_FUZZ_SEEDS=DIR the target writes valid seeds of each kind.
 */
#include "fuzz_common.h"

static const char	 DOC[] = "\x83\xa4type\xa4test\xa6number\xa1" "1\xa6holder\xa1x";
static X509_STORE	*ROOTS;
static EVP_PKEY		*CKPT;
static struct seal_key	 SK;

static void
be64(uint8_t *p, uint64_t v)
{
	int	i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void
seed_with(const char *name, uint8_t mode, const void *buf, size_t len)
{
	uint8_t	*b;

	if ((b = malloc(len + 1)) == NULL)
		abort();
	b[0] = mode;
	memcpy(b + 1, buf, len);
	fuzz_seed(name, b, len + 1);
	free(b);
}

static void
write_seeds(void)
{
	static const uint8_t	 exch[16] = { 7 };
	msgpack_sbuffer		 sb[3], ck;
	const uint8_t		*claims[3];
	size_t			 lens[3], rlens[3], i, np;
	uint8_t			*receipts[3], leaves[5][32], path[MK_MAX_PATH][32];
	uint8_t			 proof[16 + MK_MAX_PATH * 32];
	msgpack_zone		 z;
	struct mpk_map		 m;
	uint8_t			 root[32];
	char			 name[64];

	for (i = 0; i < 3; i++) {
		msgpack_sbuffer_init(&sb[i]);
		if (seal_claim_pack(&SK, "birth_medical_certificate", DOC, sizeof(DOC) - 1, exch,
		    FUZZ_NOW + i, &sb[i]) != 0)
			abort();
		claims[i] = (const uint8_t *)sb[i].data;
		lens[i] = sb[i].size;
	}
	if (seal_batch(&SK, claims, lens, 3, FUZZ_NOW, receipts, rlens) != 0)
		abort();
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "receipt-%zu", i);
		seed_with(name, 0, receipts[i], rlens[i]);
		free(receipts[i]);
		msgpack_sbuffer_destroy(&sb[i]);
	}
	for (i = 0; i < 5; i++)
		merkle_leaf_hash(MK_SHA256, &i, sizeof(i), leaves[i]);
	merkle_root(MK_SHA256, (const uint8_t (*)[32])leaves, 5, root);
	msgpack_zone_init(&z, 1024);
	mpk_map_init(&m, &z, 4);
	mpk_map_put(&m, "origin", mpk_str("lianban-demo"));
	mpk_map_put(&m, "size", mpk_uint(5));
	mpk_map_put(&m, "root", mpk_bin(root, 32));
	mpk_map_put(&m, "t_ms", mpk_uint((uint64_t)FUZZ_NOW * 1000));
	msgpack_sbuffer_init(&sb[0]);
	msgpack_sbuffer_init(&ck);
	if (mpk_pack(&m.mm_obj, &sb[0], false) != 0 ||
	    envelope_sign(CKPT, SK.sk_kid, "checkpoint", NULL, 0, sb[0].data, sb[0].size,
	    &ck) != 0)
		abort();
	seed_with("checkpoint", 1, ck.data, ck.size);
	msgpack_sbuffer_destroy(&sb[0]);
	msgpack_sbuffer_destroy(&ck);
	msgpack_zone_destroy(&z);
	/* Inclusion of leaf 2 in the tree of 5 (the hashes of proofs are arbitrary). */
	for (i = 0; i < 3; i++) {
		memset(path[i], (int)i + 1, 32);
	}
	np = 3;
	be64(proof, 2);
	be64(proof + 8, 5);
	memcpy(proof + 16, path, np * 32);
	seed_with("proof-2-of-5", 2, proof, 16 + np * 32);
	be64(proof, 3);
	be64(proof + 8, 7);
	seed_with("proof-3-to-7", 2, proof, 16 + np * 32);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	EVP_PKEY	*rootkey;
	X509		*root;

	(void)argc;
	(void)argv;
	rootkey = fuzz_key(0x11);
	root = fuzz_cert(rootkey, "seal-root", NULL, NULL, true, 1);
	if ((ROOTS = X509_STORE_new()) == NULL || X509_STORE_add_cert(ROOTS, root) != 1)
		abort();
	snprintf(SK.sk_id, sizeof(SK.sk_id), "nhc");
	snprintf(SK.sk_dept, sizeof(SK.sk_dept), "nhc");
	SK.sk_key = fuzz_key(0x22);
	SK.sk_cert = fuzz_cert(SK.sk_key, "nhc", root, rootkey, false, 2);
	SK.sk_alg = LB_ALG_EDDSA;
	SK.sk_hash = MK_SHA256;
	if (key_id_cert(SK.sk_cert, SK.sk_kid) != 0)
		abort();
	CKPT = SK.sk_key;
	X509_free(root);
	EVP_PKEY_free(rootkey);
	write_seeds();
	return 0;
}

static void
checkpoint(const uint8_t *buf, size_t len)
{
	msgpack_zone	 z;
	struct envelope	 env;
	const char	*why;
	const uint8_t	*root;
	size_t		 rlen;
	uint64_t	 size, t_ms;
	char		 origin[LB_ID_MAX];

	msgpack_zone_init(&z, 2048);
	if (envelope_parse(buf, len, &z, "checkpoint", &env, &why) != 0)
		goto done;
	/* Auditors read checkpoints as JSON: the payload has a JSON form. */
	fuzz_json_back(&env.env_claims, true);
	if (envelope_verify(&env, CKPT) == 0 &&
	    mpk_get_str(&env.env_claims, "origin", origin, sizeof(origin)) == 0 &&
	    mpk_get_u64(&env.env_claims, "size", &size) == 0 &&
	    mpk_get_u64(&env.env_claims, "t_ms", &t_ms) == 0)
		(void)mpk_get_bytes(&env.env_claims, "root", &z, &root, &rlen);
done:
	msgpack_zone_destroy(&z);
}

static void
proofs(const uint8_t *buf, size_t len)
{
	uint8_t		path[MK_MAX_PATH][32], leaf[32], root[32], root2[32];
	uint64_t	idx, size;
	size_t		npath;

	if (len < 16)
		return;
	idx = get64(buf);
	size = get64(buf + 8);
	npath = (len - 16) / 32;
	if (npath > MK_MAX_PATH)
		npath = MK_MAX_PATH;
	memcpy(path, buf + 16, npath * 32);
	merkle_leaf_hash(MK_SHA256, DOC, sizeof(DOC) - 1, leaf);
	memset(root, 0xab, sizeof(root));
	memset(root2, 0xcd, sizeof(root2));
	/* The root a path leads to must itself pass the inclusion check. */
	if (merkle_root_from_path(MK_SHA256, leaf, idx, size, (const uint8_t (*)[32])path,
	    npath, root) == 0 &&
	    merkle_verify_inclusion(MK_SHA256, leaf, idx, size, (const uint8_t (*)[32])path,
	    npath, root) != 0)
		abort();
	(void)merkle_verify_consistency(MK_SHA256, idx, size, root, root2,
	    (const uint8_t (*)[32])path, npath);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seal_verdict	v;
	char			err[256];

	if (size < 1 || size > 256 * 1024)
		return 0;
	switch (data[0] % 3) {
	case 0:
		(void)seal_verify(data + 1, size - 1, (const uint8_t *)DOC, sizeof(DOC) - 1, ROOTS,
		    &v, err, sizeof(err));
		break;
	case 1:
		checkpoint(data + 1, size - 1);
		break;
	case 2:
		proofs(data + 1, size - 1);
		break;
	}
	return 0;
}
