/*
 * check_merkle.c - unit tests for merkle.c.
 *
 * The fixed vectors are the RFC 6962 reference set shared by the
 * certificate-transparency, trillian and transparency-dev/merkle test
 * suites (proof/verify_test.go in the last); the roots were also
 * recomputed with an independent Python hashlib implementation.  Beyond
 * them, every proof is compared with a direct transcription of the
 * recursive definitions in RFC 6962 §2.1, and every verification is made
 * to fail for tampered inputs, since a verifier that accepts everything
 * would pass the positive tests alone.
 *
 * Proofs are copied into heap buffers of exactly npath entries before they
 * are verified, so AddressSanitizer or valgrind catch any read past the
 * end of a path.
 */

#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lianban.h"
#include "check_util.h"

#define NLEAVES		300

/* RFC 6962 reference leaf inputs, as hex. */
static const char *rfc_leaf_hex[8] = {
	"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
	"606162636465666768696a6b6c6d6e6f",
};

/* SHA-256 roots of the first n reference leaves, n = 1..8. */
static const char *rfc_root_hex[8] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct rfc_proof {
	uint64_t	 a;		/* leaf index, or first size */
	uint64_t	 b;		/* tree size, or second size */
	size_t		 n;
	const char	*p[3];
};

/* Leaf indices are 0-based here; the Go source lists them 1-based. */
static const struct rfc_proof rfc_inclusion[] = {
	{ 0, 1, 0, { NULL } },
	{ 0, 8, 3, {
	    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 5, 8, 3, {
	    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 3, 1, {
	    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125" } },
	{ 1, 5, 3, {
	    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
};

static const struct rfc_proof rfc_consistency[] = {
	{ 1, 1, 0, { NULL } },
	{ 1, 8, 3, {
	    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 6, 8, 3, {
	    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 5, 2, {
	    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
	{ 6, 7, 3, {
	    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
	    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
};

/* Leaf hashes served to the proof functions through merkle_leaf_fn. */
struct leafset {
	const uint8_t	(*ls_leaf)[32];
	uint64_t	  ls_n;
	uint64_t	  ls_fail_at;	/* UINT64_MAX: never fail */
};

/* A leafset of the first n of leaves (an array of 32-byte hashes) that never fails. */
static void
leafset_init(struct leafset *ls, const void *leaves, uint64_t n)
{
	ls->ls_leaf = leaves;
	ls->ls_n = n;
	ls->ls_fail_at = UINT64_MAX;
}

static int
leafset_get(void *arg, uint64_t idx, uint8_t out[32])
{
	const struct leafset	*ls = arg;

	if (idx >= ls->ls_n || idx == ls->ls_fail_at)
		return -1;
	memcpy(out, ls->ls_leaf[idx], 32);
	return 0;
}

/* Serves the same leaf for any index, so only range checks can fail. */
static int
any_leaf(void *arg, uint64_t idx, uint8_t out[32])
{
	(void)arg;
	(void)idx;
	memset(out, 0x11, 32);
	return 0;
}

static void
unhex(const char *s, uint8_t *out, size_t len)
{
	size_t		i;
	unsigned int	v;

	ck_assert_uint_eq(strlen(s), len * 2);
	for (i = 0; i < len; i++) {
		ck_assert_int_eq(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void
ck_hash_eq(const uint8_t got[32], const char *want_hex)
{
	uint8_t	want[32];

	unhex(want_hex, want, 32);
	ck_assert_mem_eq(got, want, 32);
}

static void
rfc_leaves(uint8_t leaves[8][32])
{
	uint8_t	data[16];
	size_t	i, len;

	for (i = 0; i < 8; i++) {
		len = strlen(rfc_leaf_hex[i]) / 2;
		unhex(rfc_leaf_hex[i], data, len);
		merkle_leaf_hash(MK_SHA256, data, len, leaves[i]);
	}
}

/*
 * The RFC 6962 test leaves, the expected path of vector v in want, and a
 * leafset over the first v->b leaves (the tree the vector's proof is of).
 */
static void
rfc_vector(const struct rfc_proof *v, uint8_t leaves[8][32], uint8_t want[3][32],
    struct leafset *ls)
{
	size_t	i;

	rfc_leaves(leaves);
	for (i = 0; i < v->n; i++)
		unhex(v->p[i], want[i], 32);
	leafset_init(ls, leaves, v->b);
}

static void
make_leaves(enum mk_hash h, uint8_t (*leaves)[32], size_t n)
{
	char	buf[32];
	size_t	i;
	int	len;

	for (i = 0; i < n; i++) {
		len = snprintf(buf, sizeof(buf), "leaf %zu", i);
		merkle_leaf_hash(h, buf, (size_t)len, leaves[i]);
	}
}

/* A heap copy of exactly n entries, so overreads hit a redzone. */
static void *
path_dup(const void *path, size_t n)
{
	void	*p;

	p = malloc(n == 0 ? 32 : n * 32);
	ck_assert_ptr_nonnull(p);
	if (n > 0)
		memcpy(p, path, n * 32);
	return p;
}

/*
 * Direct transcriptions of RFC 6962 §2.1: MTH, PATH and SUBPROOF, written
 * recursively as the RFC states them, over an in-memory leaf array.
 */
static uint64_t
ref_split(uint64_t n)
{
	uint64_t	k = 1;

	while (2 * k < n)
		k *= 2;
	return k;
}

static void
ref_mth(enum mk_hash h, const uint8_t (*d)[32], uint64_t n, uint8_t out[32])
{
	uint8_t		l[32], r[32];
	uint64_t	k;

	if (n == 0) {
		merkle_hash(h, NULL, 0, out);
		return;
	}
	if (n == 1) {
		memcpy(out, d[0], 32);
		return;
	}
	k = ref_split(n);
	ref_mth(h, d, k, l);
	ref_mth(h, d + k, n - k, r);
	merkle_node_hash(h, l, r, out);
}

static size_t
ref_path(enum mk_hash h, uint64_t m, const uint8_t (*d)[32], uint64_t n,
    uint8_t (*out)[32])
{
	uint64_t	k;
	size_t		c;

	if (n <= 1)
		return 0;
	k = ref_split(n);
	if (m < k) {
		c = ref_path(h, m, d, k, out);
		ref_mth(h, d + k, n - k, out[c]);
	} else {
		c = ref_path(h, m - k, d + k, n - k, out);
		ref_mth(h, d, k, out[c]);
	}
	return c + 1;
}

static size_t
ref_subproof(enum mk_hash h, uint64_t m, const uint8_t (*d)[32], uint64_t n,
    bool b, uint8_t (*out)[32])
{
	uint64_t	k;
	size_t		c;

	if (m == n) {
		if (b)
			return 0;
		ref_mth(h, d, n, out[0]);
		return 1;
	}
	k = ref_split(n);
	if (m <= k) {
		c = ref_subproof(h, m, d, k, b, out);
		ref_mth(h, d + k, n - k, out[c]);
	} else {
		c = ref_subproof(h, m - k, d + k, n - k, false, out);
		ref_mth(h, d, k, out[c]);
	}
	return c + 1;
}

static int
popcount64(uint64_t v)
{
	int	n = 0;

	for (; v != 0; v &= v - 1)
		n++;
	return n;
}

/* Known answers for the two digests, including the empty string. */
START_TEST(test_hash_kat)
{
	uint8_t	out[32];

	merkle_hash(MK_SM3, "abc", 3, out);
	ck_hash_eq(out,
	    "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
	merkle_hash(MK_SM3, "", 0, out);
	ck_hash_eq(out,
	    "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b");
	merkle_hash(MK_SHA256, "abc", 3, out);
	ck_hash_eq(out,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	merkle_hash(MK_SHA256, "", 0, out);
	ck_hash_eq(out,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

/* Leaf and node hashes carry their domain-separation prefixes. */
START_TEST(test_leaf_node_hash)
{
	static const enum mk_hash hs[] = { MK_SHA256, MK_SM3 };
	uint8_t	buf[65], a[32], b[32], n1[32], n2[32], plain[32];
	size_t	i;

	merkle_leaf_hash(MK_SHA256, "", 0, a);
	ck_hash_eq(a,
	    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
	merkle_leaf_hash(MK_SHA256, "\0", 1, b);
	ck_hash_eq(b,
	    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7");
	merkle_node_hash(MK_SHA256, a, b, n1);
	ck_hash_eq(n1,
	    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125");

	for (i = 0; i < NELEM(hs); i++) {
		merkle_leaf_hash(hs[i], "xyz", 3, a);
		buf[0] = 0x00;
		memcpy(buf + 1, "xyz", 3);
		merkle_hash(hs[i], buf, 4, plain);
		ck_assert_mem_eq(a, plain, 32);
		merkle_hash(hs[i], "xyz", 3, plain);
		ck_assert_mem_ne(a, plain, 32);

		merkle_leaf_hash(hs[i], "uvw", 3, b);
		merkle_node_hash(hs[i], a, b, n1);
		buf[0] = 0x01;
		memcpy(buf + 1, a, 32);
		memcpy(buf + 33, b, 32);
		merkle_hash(hs[i], buf, 65, plain);
		ck_assert_mem_eq(n1, plain, 32);
		merkle_node_hash(hs[i], b, a, n2);
		ck_assert_mem_ne(n1, n2, 32);

		/* The output may alias either input. */
		memcpy(n2, a, 32);
		merkle_node_hash(hs[i], n2, b, n2);
		ck_assert_mem_eq(n1, n2, 32);
		memcpy(n2, b, 32);
		merkle_node_hash(hs[i], a, n2, n2);
		ck_assert_mem_eq(n1, n2, 32);
	}
}
END_TEST

START_TEST(test_empty_tree)
{
	static const enum mk_hash hs[] = { MK_SHA256, MK_SM3 };
	struct merkle_cr	cr;
	struct leafset		ls = { NULL, 0, UINT64_MAX };
	uint8_t			want[32], out[32];
	size_t			i;

	for (i = 0; i < NELEM(hs); i++) {
		merkle_hash(hs[i], "", 0, want);
		memset(out, 0xa5, sizeof(out));
		merkle_root(hs[i], NULL, 0, out);
		ck_assert_mem_eq(out, want, 32);
		merkle_cr_init(&cr);
		ck_assert_uint_eq(cr.cr_size, 0);
		ck_assert_int_eq(cr.cr_n, 0);
		memset(out, 0xa5, sizeof(out));
		merkle_cr_root(hs[i], &cr, out);
		ck_assert_mem_eq(out, want, 32);
		memset(out, 0xa5, sizeof(out));
		ck_assert_int_eq(merkle_subtree(hs[i], leafset_get, &ls, 0, 0,
		    out), 0);
		ck_assert_mem_eq(out, want, 32);
	}
}
END_TEST

/* Reference roots for sizes 1..8, by every route to a root. */
START_TEST(test_rfc_roots)
{
	uint8_t			leaves[8][32], out[32];
	struct merkle_cr	cr;
	struct leafset		ls;
	uint64_t		n;

	rfc_leaves(leaves);
	leafset_init(&ls, leaves, 8);
	merkle_cr_init(&cr);
	for (n = 1; n <= 8; n++) {
		merkle_root(MK_SHA256, (const uint8_t (*)[32])leaves, n, out);
		ck_hash_eq(out, rfc_root_hex[n - 1]);
		merkle_cr_append(MK_SHA256, &cr, leaves[n - 1]);
		merkle_cr_root(MK_SHA256, &cr, out);
		ck_hash_eq(out, rfc_root_hex[n - 1]);
		ck_assert_int_eq(merkle_subtree(MK_SHA256, leafset_get, &ls,
		    0, n, out), 0);
		ck_hash_eq(out, rfc_root_hex[n - 1]);
	}
}
END_TEST

/*
 * Every probe below must fail.  The list follows the corruptions applied
 * by the transparency-dev verifier tests.
 */
static void
inclusion_probes(const uint8_t leaf[32], uint64_t idx, uint64_t size,
    const uint8_t (*proof)[32], size_t n, const uint8_t root[32])
{
	uint8_t	(*p)[32], wrong[32], empty[32], some[32];
	size_t	i;

	merkle_hash(MK_SHA256, "", 0, empty);
	unhex("abacaba000000000000000000000000000000000000000000060061e00123456",
	    some, 32);
	memcpy(wrong, leaf, 32);
	wrong[31] ^= 1;

	p = path_dup(proof, n);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx, size,
	    (const uint8_t (*)[32])p, n, root), 0);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx - 1, size,
	    (const uint8_t (*)[32])p, n, root), -1);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx + 1, size,
	    (const uint8_t (*)[32])p, n, root), -1);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx ^ 2, size,
	    (const uint8_t (*)[32])p, n, root), -1);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx, size * 2,
	    (const uint8_t (*)[32])p, n, root), -1);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx, size / 2,
	    (const uint8_t (*)[32])p, n, root), -1);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, wrong, idx, size,
	    (const uint8_t (*)[32])p, n, root), -1);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx, size,
	    (const uint8_t (*)[32])p, n, empty), -1);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx, size,
	    (const uint8_t (*)[32])p, n, some), -1);
	free(p);

	/* One entry too many, at the end and at the front. */
	p = malloc((n + 1) * 32);
	ck_assert_ptr_nonnull(p);
	if (n > 0)
		memcpy(p, proof, n * 32);
	memset(p[n], 0, 32);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx, size,
	    (const uint8_t (*)[32])p, n + 1, root), -1);
	ck_assert_int_eq(merkle_root_from_path(MK_SHA256, leaf, idx, size,
	    (const uint8_t (*)[32])p, n + 1, wrong), -1);
	memcpy(p[n], root, 32);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx, size,
	    (const uint8_t (*)[32])p, n + 1, root), -1);
	memset(p[0], 0, 32);
	if (n > 0)
		memcpy(p + 1, proof, n * 32);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx, size,
	    (const uint8_t (*)[32])p, n + 1, root), -1);
	memcpy(p[0], root, 32);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx, size,
	    (const uint8_t (*)[32])p, n + 1, root), -1);
	free(p);

	/* One bit flipped in each entry. */
	for (i = 0; i < n; i++) {
		p = path_dup(proof, n);
		p[i][0] ^= 8;
		ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx,
		    size, (const uint8_t (*)[32])p, n, root), -1);
		free(p);
	}
	if (n > 0) {
		p = path_dup(proof, n - 1);
		ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx,
		    size, (const uint8_t (*)[32])p, n - 1, root), -1);
		free(p);
	}
	if (n > 1) {
		/* An extra entry inserted after the first. */
		p = malloc((n + 1) * 32);
		ck_assert_ptr_nonnull(p);
		memcpy(p[0], proof[0], 32);
		memcpy(p[1], some, 32);
		memcpy(p + 2, proof + 1, (n - 1) * 32);
		ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaf, idx,
		    size, (const uint8_t (*)[32])p, n + 1, root), -1);
		free(p);
	}
}

START_TEST(test_rfc_inclusion)
{
	const struct rfc_proof	*v = &rfc_inclusion[_i];
	uint8_t			 leaves[8][32], want[3][32], root[32];
	uint8_t			 path[MK_MAX_PATH][32], out[32];
	struct leafset		 ls;
	size_t			 n;

	rfc_vector(v, leaves, want, &ls);
	unhex(rfc_root_hex[v->b - 1], root, 32);

	ck_assert_int_eq(merkle_inclusion_proof(MK_SHA256, leafset_get, &ls,
	    v->a, v->b, path, &n), 0);
	ck_assert_uint_eq(n, v->n);
	if (n > 0)
		ck_assert_mem_eq(path, want, n * 32);
	ck_assert_int_eq(merkle_root_from_path(MK_SHA256, leaves[v->a], v->a,
	    v->b, (const uint8_t (*)[32])want, v->n, out), 0);
	ck_assert_mem_eq(out, root, 32);
	inclusion_probes(leaves[v->a], v->a, v->b,
	    (const uint8_t (*)[32])want, v->n, root);
}
END_TEST

static int
verify_cons_dup(uint64_t m, uint64_t n, const uint8_t r1[32],
    const uint8_t r2[32], const uint8_t (*proof)[32], size_t np)
{
	uint8_t	(*p)[32];
	int	rv;

	p = path_dup(proof, np);
	rv = merkle_verify_consistency(MK_SHA256, m, n, r1, r2,
	    (const uint8_t (*)[32])p, np);
	free(p);
	return rv;
}

/* Consistency corruptions from the transparency-dev verifier tests. */
static void
consistency_probes(uint64_t m, uint64_t n, const uint8_t r1[32],
    const uint8_t r2[32], const uint8_t (*proof)[32], size_t np)
{
	uint8_t	(*p)[32], wrong[32];
	size_t	i;

	ck_assert_int_eq(verify_cons_dup(m, n, r1, r2, proof, np), 0);
	if (np == 0)
		return;

	memset(wrong, 0x5a, sizeof(wrong));
	ck_assert_int_eq(verify_cons_dup(m - 1, n, r1, r2, proof, np), -1);
	ck_assert_int_eq(verify_cons_dup(m + 1, n, r1, r2, proof, np), -1);
	ck_assert_int_eq(verify_cons_dup(m ^ 2, n, r1, r2, proof, np), -1);
	ck_assert_int_eq(verify_cons_dup(m, n * 2, r1, r2, proof, np), -1);
	ck_assert_int_eq(verify_cons_dup(m, n / 2, r1, r2, proof, np), -1);
	ck_assert_int_eq(verify_cons_dup(m, n, wrong, r2, proof, np), -1);
	ck_assert_int_eq(verify_cons_dup(m, n, r1, wrong, proof, np), -1);
	ck_assert_int_eq(verify_cons_dup(m, n, r2, r1, proof, np), -1);
	ck_assert_int_eq(verify_cons_dup(m, n, r1, r2, proof, 0), -1);
	ck_assert_int_eq(verify_cons_dup(m, n, r1, r2, proof, np - 1), -1);

	p = malloc((np + 1) * 32);
	ck_assert_ptr_nonnull(p);
	memcpy(p, proof, np * 32);
	memset(p[np], 0, 32);
	ck_assert_int_eq(verify_cons_dup(m, n, r1, r2,
	    (const uint8_t (*)[32])p, np + 1), -1);
	memcpy(p[np], r1, 32);
	ck_assert_int_eq(verify_cons_dup(m, n, r1, r2,
	    (const uint8_t (*)[32])p, np + 1), -1);
	memcpy(p[np], r2, 32);
	ck_assert_int_eq(verify_cons_dup(m, n, r1, r2,
	    (const uint8_t (*)[32])p, np + 1), -1);
	memcpy(p + 1, proof, np * 32);
	memset(p[0], 0, 32);
	ck_assert_int_eq(verify_cons_dup(m, n, r1, r2,
	    (const uint8_t (*)[32])p, np + 1), -1);
	memcpy(p[0], r1, 32);
	ck_assert_int_eq(verify_cons_dup(m, n, r1, r2,
	    (const uint8_t (*)[32])p, np + 1), -1);
	memcpy(p[0], r2, 32);
	ck_assert_int_eq(verify_cons_dup(m, n, r1, r2,
	    (const uint8_t (*)[32])p, np + 1), -1);
	memcpy(p[0], proof[0], 32);
	ck_assert_int_eq(verify_cons_dup(m, n, r1, r2,
	    (const uint8_t (*)[32])p, np + 1), -1);
	free(p);

	for (i = 0; i < np; i++) {
		p = path_dup(proof, np);
		p[i][0] ^= 16;
		ck_assert_int_eq(verify_cons_dup(m, n, r1, r2,
		    (const uint8_t (*)[32])p, np), -1);
		free(p);
	}
}

START_TEST(test_rfc_consistency)
{
	const struct rfc_proof	*v = &rfc_consistency[_i];
	uint8_t			 leaves[8][32], want[3][32], r1[32], r2[32];
	uint8_t			 path[MK_MAX_PATH][32];
	struct leafset		 ls;
	size_t			 n;

	rfc_vector(v, leaves, want, &ls);
	unhex(rfc_root_hex[v->a - 1], r1, 32);
	unhex(rfc_root_hex[v->b - 1], r2, 32);

	ck_assert_int_eq(merkle_consistency_proof(MK_SHA256, leafset_get, &ls,
	    v->a, v->b, path, &n), 0);
	ck_assert_uint_eq(n, v->n);
	if (n > 0)
		ck_assert_mem_eq(path, want, n * 32);
	consistency_probes(v->a, v->b, r1, r2, (const uint8_t (*)[32])want,
	    v->n);
}
END_TEST

/*
 * Every index of every tree of 1..70 leaves, for both digests: the proof
 * matches RFC 6962 PATH, verifies against merkle_root, and fails once a
 * byte of any entry, the index or the size is wrong.
 */
START_TEST(test_inclusion_all)
{
	enum mk_hash	  h = _i == 0 ? MK_SHA256 : MK_SM3;
	uint8_t		(*leaves)[32], (*p)[32], (*roots)[32];
	uint8_t		  path[MK_MAX_PATH][32], ref[MK_MAX_PATH][32], out[32];
	struct leafset	  ls;
	uint64_t	  size, idx;
	size_t		  n, i;

	leaves = calloc(141, 32);
	roots = calloc(142, 32);
	ck_assert_ptr_nonnull(leaves);
	ck_assert_ptr_nonnull(roots);
	make_leaves(h, leaves, 141);
	for (size = 0; size <= 141; size++)
		merkle_root(h, (const uint8_t (*)[32])leaves, size, roots[size]);
	leafset_init(&ls, leaves, 141);

	for (size = 1; size <= 70; size++) {
		for (idx = 0; idx < size; idx++) {
			ck_assert_int_eq(merkle_inclusion_proof(h, leafset_get,
			    &ls, idx, size, path, &n), 0);
			ck_assert_uint_eq(n, ref_path(h, idx,
			    (const uint8_t (*)[32])leaves, size, ref));
			if (n > 0)
				ck_assert_mem_eq(path, ref, n * 32);

			p = path_dup((const uint8_t (*)[32])path, n);
			ck_assert_int_eq(merkle_verify_inclusion(h, leaves[idx],
			    idx, size, (const uint8_t (*)[32])p, n,
			    roots[size]), 0);
			ck_assert_int_eq(merkle_root_from_path(h, leaves[idx],
			    idx, size, (const uint8_t (*)[32])p, n, out), 0);
			ck_assert_mem_eq(out, roots[size], 32);

			/* A different leaf at the same place. */
			ck_assert_int_eq(merkle_verify_inclusion(h,
			    leaves[idx + 1], idx, size,
			    (const uint8_t (*)[32])p, n, roots[size]), -1);
			/* Wrong index, with the leaf and root unchanged. */
			if (idx > 0)
				ck_assert_int_eq(merkle_verify_inclusion(h,
				    leaves[idx], idx - 1, size,
				    (const uint8_t (*)[32])p, n,
				    roots[size]), -1);
			ck_assert_int_eq(merkle_verify_inclusion(h, leaves[idx],
			    idx + 1, size, (const uint8_t (*)[32])p, n,
			    roots[size]), -1);
			/*
			 * Wrong size.  Against the genuine root of the other
			 * size the proof must fail; against its own root a
			 * doubled size must fail on the path's shape alone.
			 */
			ck_assert_int_eq(merkle_verify_inclusion(h, leaves[idx],
			    idx, size + 1, (const uint8_t (*)[32])p, n,
			    roots[size + 1]), -1);
			if (size - 1 > idx)
				ck_assert_int_eq(merkle_verify_inclusion(h,
				    leaves[idx], idx, size - 1,
				    (const uint8_t (*)[32])p, n,
				    roots[size - 1]), -1);
			ck_assert_int_eq(merkle_verify_inclusion(h, leaves[idx],
			    idx, size * 2, (const uint8_t (*)[32])p, n,
			    roots[size]), -1);
			ck_assert_int_eq(merkle_verify_inclusion(h, leaves[idx],
			    idx, size * 2, (const uint8_t (*)[32])p, n,
			    roots[size * 2]), -1);
			/* A flipped byte in each entry. */
			for (i = 0; i < n; i++) {
				p[i][i % 32] ^= 0x40;
				ck_assert_int_eq(merkle_verify_inclusion(h,
				    leaves[idx], idx, size,
				    (const uint8_t (*)[32])p, n,
				    roots[size]), -1);
				p[i][i % 32] ^= 0x40;
			}
			free(p);
		}
	}
	free(leaves);
	free(roots);
}
END_TEST

/*
 * Every 1 <= m <= n <= 40: the proof matches RFC 6962 PROOF, verifies,
 * and fails once tampered with.  Equal sizes give an empty proof.
 */
START_TEST(test_consistency_all)
{
	enum mk_hash	  h = _i == 0 ? MK_SHA256 : MK_SM3;
	uint8_t		  leaves[41][32], roots[42][32];
	uint8_t		  path[MK_MAX_PATH][32], ref[MK_MAX_PATH][32];
	uint8_t		(*p)[32];
	struct leafset	  ls;
	uint64_t	  m, n;
	size_t		  np, i;

	make_leaves(h, leaves, 41);
	for (n = 0; n <= 41; n++)
		merkle_root(h, (const uint8_t (*)[32])leaves, n, roots[n]);
	leafset_init(&ls, leaves, 41);

	for (n = 1; n <= 40; n++) {
		for (m = 1; m <= n; m++) {
			ck_assert_int_eq(merkle_consistency_proof(h,
			    leafset_get, &ls, m, n, path, &np), 0);
			ck_assert_uint_eq(np, ref_subproof(h, m,
			    (const uint8_t (*)[32])leaves, n, true, ref));
			if (np > 0)
				ck_assert_mem_eq(path, ref, np * 32);

			p = path_dup((const uint8_t (*)[32])path, np);
			ck_assert_int_eq(merkle_verify_consistency(h, m, n,
			    roots[m], roots[n], (const uint8_t (*)[32])p, np),
			    0);
			if (m == n) {
				ck_assert_uint_eq(np, 0);
				ck_assert_int_eq(merkle_verify_consistency(h,
				    m, n, roots[m], roots[m + 1],
				    (const uint8_t (*)[32])p, 0), -1);
				free(p);
				continue;
			}
			ck_assert_uint_gt(np, 0);

			for (i = 0; i < np; i++) {
				p[i][(i * 7) % 32] ^= 0x01;
				ck_assert_int_eq(merkle_verify_consistency(h,
				    m, n, roots[m], roots[n],
				    (const uint8_t (*)[32])p, np), -1);
				p[i][(i * 7) % 32] ^= 0x01;
			}
			ck_assert_int_eq(merkle_verify_consistency(h, m, n,
			    roots[m], roots[n], (const uint8_t (*)[32])p,
			    np - 1), -1);
			ck_assert_int_eq(merkle_verify_consistency(h, m, n,
			    roots[n], roots[m], (const uint8_t (*)[32])p, np),
			    -1);
			ck_assert_int_eq(merkle_verify_consistency(h, m, n,
			    roots[m - 1], roots[n], (const uint8_t (*)[32])p,
			    np), -1);
			ck_assert_int_eq(merkle_verify_consistency(h, m, n,
			    roots[m], roots[n + 1], (const uint8_t (*)[32])p,
			    np), -1);
			/* The genuine roots of neighbouring sizes. */
			ck_assert_int_eq(merkle_verify_consistency(h, m + 1, n,
			    roots[m + 1], roots[n], (const uint8_t (*)[32])p,
			    np), -1);
			ck_assert_int_eq(merkle_verify_consistency(h, m, n + 1,
			    roots[m], roots[n + 1], (const uint8_t (*)[32])p,
			    np), -1);
			free(p);

			/* One entry too many. */
			p = malloc((np + 1) * 32);
			ck_assert_ptr_nonnull(p);
			memcpy(p, path, np * 32);
			memcpy(p[np], roots[n], 32);
			ck_assert_int_eq(merkle_verify_consistency(h, m, n,
			    roots[m], roots[n], (const uint8_t (*)[32])p,
			    np + 1), -1);
			free(p);
		}
	}
}
END_TEST

/*
 * Appending one leaf at a time keeps one peak per set bit of the size and
 * the same root as merkle_root and the recursive MTH, for both digests.
 */
START_TEST(test_compact_range)
{
	enum mk_hash		  h = _i == 0 ? MK_SHA256 : MK_SM3;
	uint8_t			(*leaves)[32];
	uint8_t			  a[32], b[32], c[32];
	struct merkle_cr	  cr;
	uint64_t		  size;

	leaves = calloc(NLEAVES, 32);
	ck_assert_ptr_nonnull(leaves);
	make_leaves(h, leaves, NLEAVES);
	merkle_cr_init(&cr);
	for (size = 0; size <= NLEAVES; size++) {
		if (size > 0)
			merkle_cr_append(h, &cr, leaves[size - 1]);
		ck_assert_uint_eq(cr.cr_size, size);
		ck_assert_int_eq(cr.cr_n, popcount64(size));
		merkle_cr_root(h, &cr, a);
		merkle_root(h, (const uint8_t (*)[32])leaves, size, b);
		ref_mth(h, (const uint8_t (*)[32])leaves, size, c);
		ck_assert_mem_eq(a, b, 32);
		ck_assert_mem_eq(a, c, 32);
	}
	free(leaves);
}
END_TEST

/*
 * Stored perfect subtrees, as a journal keeps them: level l >= 1 holds the
 * roots merkle_cr_append_nodes handed back, ns_n >> l of them.  ns_drop
 * makes some nodes absent (the proof must then rebuild them from below) and
 * ns_fail_level makes reads of one level fail.  Reads are counted, so the
 * tests can tell a proof that used the nodes from one that read every leaf.
 */
#define NS_BIG		65537

enum ns_drop {
	NS_KEEP_ALL,
	NS_DROP_SOME,	/* every node whose index is 1 mod 3 */
	NS_DROP_ALL
};

struct nodeset {
	struct leafset	  ns_ls;
	uint8_t		(*ns_node[64])[32];
	uint64_t	  ns_n;
	enum ns_drop	  ns_drop;
	unsigned	  ns_fail_level;	/* 0: never fail */
	uint64_t	  ns_reads;
	uint64_t	  ns_unaligned;		/* reads that name no stored node */
};

static int
nodeset_leaf(void *arg, uint64_t idx, uint8_t out[32])
{
	struct nodeset	*ns = arg;

	ns->ns_reads++;
	return leafset_get(&ns->ns_ls, idx, out);
}

static int
nodeset_node(void *arg, unsigned level, uint64_t index, uint8_t out[32])
{
	struct nodeset	*ns = arg;

	ns->ns_reads++;
	if (level == 0 || level >= 64 || index >= (ns->ns_n >> level)) {
		ns->ns_unaligned++;
		return 1;
	}
	if (level == ns->ns_fail_level)
		return -1;
	if (ns->ns_drop == NS_DROP_ALL ||
	    (ns->ns_drop == NS_DROP_SOME && index % 3 == 1))
		return 1;
	memcpy(out, ns->ns_node[level][index], 32);
	return 0;
}

/*
 * Builds the node store of n leaves with merkle_cr_append_nodes, checking
 * every node it reports against the recursive MTH of its leaves.
 */
static void
nodeset_init(struct nodeset *ns, enum mk_hash h, const uint8_t (*leaves)[32],
    uint64_t n)
{
	struct merkle_cr	cr;
	uint8_t			nodes[64][32], ref[32];
	uint64_t		i, idx;
	int			c, l;

	memset(ns, 0, sizeof(*ns));
	leafset_init(&ns->ns_ls, leaves, n);
	ns->ns_n = n;
	for (l = 1; l < 64 && (n >> l) > 0; l++) {
		ns->ns_node[l] = calloc(n >> l, 32);
		ck_assert_ptr_nonnull(ns->ns_node[l]);
	}
	merkle_cr_init(&cr);
	for (i = 0; i < n; i++) {
		c = merkle_cr_append_nodes(h, &cr, leaves[i], nodes);
		/* Leaf i completes one node per trailing one bit of i. */
		ck_assert_int_eq(c, __builtin_ctzll(~i));
		for (l = 1; l <= c; l++) {
			idx = (cr.cr_size >> l) - 1;
			if (n <= 4096) {
				ref_mth(h, leaves + (idx << l), (uint64_t)1 << l,
				    ref);
				ck_assert_mem_eq(nodes[l - 1], ref, 32);
			}
			memcpy(ns->ns_node[l][idx], nodes[l - 1], 32);
		}
		/* The top one is the new last peak. */
		if (c > 0)
			ck_assert_mem_eq(nodes[c - 1], cr.cr_peak[cr.cr_n - 1],
			    32);
	}
}

static void
nodeset_free(struct nodeset *ns)
{
	int	l;

	for (l = 0; l < 64; l++)
		free(ns->ns_node[l]);
}

/* Reads at most one item per bit of each subtree size: (log2 n + 1)^2. */
static uint64_t
nodeset_budget(uint64_t size)
{
	uint64_t	b = 1;

	while (size > 1) {
		size >>= 1;
		b++;
	}
	return b * b;
}

/*
 * A path read through stored nodes equals the leaf-only one (want), and
 * with every node stored it took at most budget reads.
 */
static void
ck_nodes_path(const struct nodeset *ns, const uint8_t (*path)[32], size_t n,
    const uint8_t (*want)[32], size_t nw, uint64_t budget)
{
	ck_assert_uint_eq(n, nw);
	if (n > 0)
		ck_assert_mem_eq(path, want, n * 32);
	if (ns->ns_drop == NS_KEEP_ALL)
		ck_assert_uint_le(ns->ns_reads, budget);
	ck_assert_uint_eq(ns->ns_unaligned, 0);
}

static void
check_nodes_inclusion(enum mk_hash h, struct nodeset *ns, uint64_t idx,
    uint64_t size)
{
	uint8_t		path[MK_MAX_PATH][32], want[MK_MAX_PATH][32];
	size_t		n, nw;

	ck_assert_int_eq(merkle_inclusion_proof(h, leafset_get, &ns->ns_ls,
	    idx, size, want, &nw), 0);
	ns->ns_reads = 0;
	ck_assert_int_eq(merkle_inclusion_proof_nodes(h, nodeset_leaf,
	    nodeset_node, ns, idx, size, path, &n), 0);
	ck_nodes_path(ns, (const uint8_t (*)[32])path, n, (const uint8_t (*)[32])want, nw,
	    nodeset_budget(size));
}

static void
check_nodes_consistency(enum mk_hash h, struct nodeset *ns, uint64_t first,
    uint64_t second)
{
	uint8_t		path[MK_MAX_PATH][32], want[MK_MAX_PATH][32];
	size_t		n, nw;

	ck_assert_int_eq(merkle_consistency_proof(h, leafset_get, &ns->ns_ls,
	    first, second, want, &nw), 0);
	ns->ns_reads = 0;
	ck_assert_int_eq(merkle_consistency_proof_nodes(h, nodeset_leaf,
	    nodeset_node, ns, first, second, path, &n), 0);
	ck_nodes_path(ns, (const uint8_t (*)[32])path, n, (const uint8_t (*)[32])want, nw,
	    nodeset_budget(second) + nodeset_budget(second));
}

/*
 * Proofs and subtree roots read through stored nodes equal the leaf-only
 * ones for every size 1..NLEAVES (every index and first size up to 100,
 * a spread beyond), with all, some or none of the nodes stored.  With all
 * stored they stay within O(log^2 n) reads.
 */
START_TEST(test_nodes_small)
{
	enum mk_hash	  h = _i / 3 == 0 ? MK_SHA256 : MK_SM3;
	uint8_t		(*leaves)[32];
	uint8_t		  a[32], b[32];
	struct nodeset	  ns;
	uint64_t	  size, x, start, len;

	leaves = calloc(NLEAVES, 32);
	ck_assert_ptr_nonnull(leaves);
	make_leaves(h, leaves, NLEAVES);
	nodeset_init(&ns, h, (const uint8_t (*)[32])leaves, NLEAVES);
	ns.ns_drop = (enum ns_drop)(_i % 3);
	for (size = 1; size <= NLEAVES; size++) {
		for (x = 0; x < size; x += size <= 100 ? 1 : 1 + size / 23) {
			check_nodes_inclusion(h, &ns, x, size);
			check_nodes_consistency(h, &ns, x + 1, size);
		}
		check_nodes_inclusion(h, &ns, size - 1, size);
		check_nodes_consistency(h, &ns, size - 1 > 0 ? size - 1 : 1,
		    size);
		/* Arbitrary ranges, aligned or not, including empty ones. */
		for (start = 0; start < size; start += 1 + size / 9) {
			len = size - start;
			ck_assert_int_eq(merkle_subtree(h, leafset_get,
			    &ns.ns_ls, start, len, a), 0);
			ck_assert_int_eq(merkle_subtree_nodes(h, nodeset_leaf,
			    nodeset_node, &ns, start, len, b), 0);
			ck_assert_mem_eq(a, b, 32);
		}
		ck_assert_int_eq(merkle_subtree(h, leafset_get, &ns.ns_ls,
		    size, 0, a), 0);
		ck_assert_int_eq(merkle_subtree_nodes(h, nodeset_leaf,
		    nodeset_node, &ns, size, 0, b), 0);
		ck_assert_mem_eq(a, b, 32);
	}
	nodeset_free(&ns);
	free(leaves);
}
END_TEST

/* Larger trees, a few indices each, and a failing node read. */
START_TEST(test_nodes_large)
{
	static const uint64_t	  sizes[] = { 511, 512, 513, 1000, 4095, 4096,
	    4097, 40000, NS_BIG };
	uint8_t			(*leaves)[32];
	uint8_t			  path[MK_MAX_PATH][32], a[32], b[32];
	struct nodeset		  ns;
	uint64_t		  size, x;
	size_t			  i, n;

	leaves = calloc(NS_BIG, 32);
	ck_assert_ptr_nonnull(leaves);
	make_leaves(MK_SHA256, leaves, NS_BIG);
	nodeset_init(&ns, MK_SHA256, (const uint8_t (*)[32])leaves, NS_BIG);
	for (i = 0; i < NELEM(sizes); i++) {
		size = sizes[i];
		for (x = 0; x < size; x += 1 + size / 5) {
			check_nodes_inclusion(MK_SHA256, &ns, x, size);
			check_nodes_consistency(MK_SHA256, &ns, x + 1, size);
		}
		check_nodes_inclusion(MK_SHA256, &ns, size - 1, size);
		check_nodes_consistency(MK_SHA256, &ns, size - 1, size);
		merkle_root(MK_SHA256, (const uint8_t (*)[32])leaves, size, a);
		ck_assert_int_eq(merkle_subtree_nodes(MK_SHA256, nodeset_leaf,
		    nodeset_node, &ns, 0, size, b), 0);
		ck_assert_mem_eq(a, b, 32);
	}
	/* A failing read is an error, never a hash made up from the rest. */
	ns.ns_fail_level = 3;
	ck_assert_int_eq(merkle_inclusion_proof_nodes(MK_SHA256, nodeset_leaf,
	    nodeset_node, &ns, 0, 1000, path, &n), -1);
	ck_assert_int_eq(merkle_consistency_proof_nodes(MK_SHA256,
	    nodeset_leaf, nodeset_node, &ns, 3, 1000, path, &n), -1);
	ck_assert_int_eq(merkle_subtree_nodes(MK_SHA256, nodeset_leaf,
	    nodeset_node, &ns, 0, 1000, a), -1);
	ns.ns_fail_level = 0;
	ns.ns_ls.ls_fail_at = 7;
	ns.ns_drop = NS_DROP_ALL;
	ck_assert_int_eq(merkle_subtree_nodes(MK_SHA256, nodeset_leaf,
	    nodeset_node, &ns, 0, 1000, a), -1);
	nodeset_free(&ns);
	free(leaves);
}
END_TEST

/* The same data under the two digests must give unrelated trees. */
START_TEST(test_sm3_tree)
{
	uint8_t	ls[5][32], lm[5][32], rs[32], rm[32];
	size_t	i;

	for (i = 0; i < 5; i++) {
		merkle_leaf_hash(MK_SHA256, &i, sizeof(i), ls[i]);
		merkle_leaf_hash(MK_SM3, &i, sizeof(i), lm[i]);
		ck_assert_mem_ne(ls[i], lm[i], 32);
	}
	merkle_root(MK_SHA256, (const uint8_t (*)[32])ls, 5, rs);
	merkle_root(MK_SM3, (const uint8_t (*)[32])lm, 5, rm);
	ck_assert_mem_ne(rs, rm, 32);
	merkle_hash(MK_SM3, "", 0, rm);
	merkle_hash(MK_SHA256, "", 0, rs);
	ck_assert_mem_ne(rs, rm, 32);
}
END_TEST

START_TEST(test_bad_args)
{
	uint8_t		  leaves[16][32], root[32], out[32];
	uint8_t		  path[MK_MAX_PATH + 1][32];
	uint8_t		(*big)[32];
	struct leafset	  ls;
	size_t		  n = 12345;

	make_leaves(MK_SHA256, leaves, 16);
	merkle_root(MK_SHA256, (const uint8_t (*)[32])leaves, 16, root);
	leafset_init(&ls, leaves, 16);

	/* Inclusion: index outside the tree, empty tree, missing pieces. */
	ck_assert_int_eq(merkle_inclusion_proof(MK_SHA256, leafset_get, &ls,
	    16, 16, path, &n), -1);
	ck_assert_int_eq(merkle_inclusion_proof(MK_SHA256, leafset_get, &ls,
	    0, 0, path, &n), -1);
	ck_assert_int_eq(merkle_inclusion_proof(MK_SHA256, NULL, &ls,
	    0, 4, path, &n), -1);
	ck_assert_int_eq(merkle_inclusion_proof(MK_SHA256, leafset_get, &ls,
	    0, 4, path, NULL), -1);
	ck_assert_uint_eq(n, 12345);

	/* Consistency: sizes out of order or zero. */
	ck_assert_int_eq(merkle_consistency_proof(MK_SHA256, leafset_get, &ls,
	    5, 4, path, &n), -1);
	ck_assert_int_eq(merkle_consistency_proof(MK_SHA256, leafset_get, &ls,
	    0, 4, path, &n), -1);
	ck_assert_int_eq(merkle_consistency_proof(MK_SHA256, leafset_get, &ls,
	    0, 0, path, &n), -1);
	ck_assert_uint_eq(n, 12345);

	/* A leaf that cannot be read fails the whole operation. */
	ls.ls_fail_at = 9;
	ck_assert_int_eq(merkle_subtree(MK_SHA256, leafset_get, &ls, 0, 16,
	    out), -1);
	ck_assert_int_eq(merkle_inclusion_proof(MK_SHA256, leafset_get, &ls,
	    2, 16, path, &n), -1);
	ck_assert_int_eq(merkle_consistency_proof(MK_SHA256, leafset_get, &ls,
	    3, 16, path, &n), -1);
	ck_assert_uint_eq(n, 12345);
	ls.ls_fail_at = UINT64_MAX;
	ck_assert_int_eq(merkle_subtree(MK_SHA256, leafset_get, &ls, 0, 9,
	    out), 0);
	/* A tree larger than the leaves behind the callback. */
	ck_assert_int_eq(merkle_inclusion_proof(MK_SHA256, leafset_get, &ls,
	    2, 17, path, &n), -1);
	ck_assert_int_eq(merkle_subtree(MK_SHA256, leafset_get, &ls, 10, 7,
	    out), -1);
	/* start + len beyond 2^64, with a callback that never refuses. */
	ck_assert_int_eq(merkle_subtree(MK_SHA256, any_leaf, NULL,
	    UINT64_MAX, 2, out), -1);
	ck_assert_int_eq(merkle_subtree(MK_SHA256, any_leaf, NULL,
	    UINT64_MAX - 1, 2, out), -1);
	ck_assert_int_eq(merkle_subtree(MK_SHA256, any_leaf, NULL,
	    UINT64_MAX - 2, 2, out), 0);
	ck_assert_int_eq(merkle_subtree(MK_SHA256, NULL, &ls, 0, 1, out), -1);

	/* Verification: index and sizes out of range. */
	ck_assert_int_eq(merkle_inclusion_proof(MK_SHA256, leafset_get, &ls,
	    3, 16, path, &n), 0);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaves[3], 3, 16,
	    (const uint8_t (*)[32])path, n, root), 0);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaves[3], 16, 16,
	    (const uint8_t (*)[32])path, n, root), -1);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaves[3], 0, 0,
	    (const uint8_t (*)[32])path, 0, root), -1);
	ck_assert_int_eq(merkle_root_from_path(MK_SHA256, leaves[3], 3, 3,
	    (const uint8_t (*)[32])path, n, out), -1);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaves[3], 3, 16,
	    NULL, n, root), -1);
	ck_assert_int_eq(merkle_verify_consistency(MK_SHA256, 0, 16, root, root,
	    (const uint8_t (*)[32])path, 0), -1);
	ck_assert_int_eq(merkle_verify_consistency(MK_SHA256, 17, 16, root,
	    root, (const uint8_t (*)[32])path, 0), -1);
	ck_assert_int_eq(merkle_verify_consistency(MK_SHA256, 4, 16, root,
	    root, NULL, 2), -1);
	/* Equal sizes with equal roots but a non-empty path. */
	ck_assert_int_eq(merkle_verify_consistency(MK_SHA256, 16, 16, root,
	    root, (const uint8_t (*)[32])path, 1), -1);
	ck_assert_int_eq(merkle_verify_consistency(MK_SHA256, 16, 16, root,
	    root, NULL, 0), 0);

	/*
	 * Paths longer than MK_MAX_PATH are refused before any entry is
	 * read, even for sizes whose real paths are far shorter.
	 */
	big = calloc(MK_MAX_PATH + 1, 32);
	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(merkle_root_from_path(MK_SHA256, leaves[0], 0,
	    UINT64_MAX, (const uint8_t (*)[32])big, MK_MAX_PATH + 1, out), -1);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, leaves[0], 0,
	    UINT64_MAX, (const uint8_t (*)[32])big, MK_MAX_PATH + 1, root), -1);
	ck_assert_int_eq(merkle_verify_consistency(MK_SHA256, 3, UINT64_MAX,
	    root, root, (const uint8_t (*)[32])big, MK_MAX_PATH + 1), -1);
	/* The largest tree takes exactly MK_MAX_PATH entries to its root. */
	ck_assert_int_eq(merkle_root_from_path(MK_SHA256, leaves[0], 0,
	    UINT64_MAX, (const uint8_t (*)[32])big, MK_MAX_PATH, out), 0);
	ck_assert_int_eq(merkle_root_from_path(MK_SHA256, leaves[0], 0,
	    UINT64_MAX, (const uint8_t (*)[32])big, MK_MAX_PATH - 1, out), -1);
	free(big);
}
END_TEST

/*
 * Many threads make their first hash at the same moment, so the one-time
 * digest fetch is raced (each test runs in a fresh process when Check
 * forks), and all of them must agree with a single-threaded run.
 */
#define NTHREADS	8
#define TLEAVES		257

struct tjob {
	pthread_barrier_t	*tj_barrier;
	uint8_t			  tj_root[2][32];
	uint8_t			  tj_cr[2][32];
	int			  tj_ok;
};

static void *
thread_main(void *arg)
{
	struct tjob		*tj = arg;
	static const enum mk_hash hs[2] = { MK_SHA256, MK_SM3 };
	uint8_t			 (*leaves)[32];
	uint8_t			  path[MK_MAX_PATH][32];
	struct merkle_cr	  cr;
	struct leafset		  ls;
	size_t			  i, j, n;

	pthread_barrier_wait(tj->tj_barrier);
	tj->tj_ok = 1;
	if ((leaves = calloc(TLEAVES, 32)) == NULL) {
		tj->tj_ok = 0;
		return NULL;
	}
	for (i = 0; i < 2; i++) {
		make_leaves(hs[i], leaves, TLEAVES);
		merkle_root(hs[i], (const uint8_t (*)[32])leaves, TLEAVES,
		    tj->tj_root[i]);
		merkle_cr_init(&cr);
		for (j = 0; j < TLEAVES; j++)
			merkle_cr_append(hs[i], &cr, leaves[j]);
		merkle_cr_root(hs[i], &cr, tj->tj_cr[i]);
		leafset_init(&ls, leaves, TLEAVES);
		for (j = 0; j < TLEAVES; j += 37) {
			if (merkle_inclusion_proof(hs[i], leafset_get, &ls, j,
			    TLEAVES, path, &n) == -1 ||
			    merkle_verify_inclusion(hs[i], leaves[j], j,
			    TLEAVES, (const uint8_t (*)[32])path, n,
			    tj->tj_root[i]) == -1)
				tj->tj_ok = 0;
		}
	}
	free(leaves);
	return NULL;
}

START_TEST(test_threads)
{
	static const enum mk_hash hs[2] = { MK_SHA256, MK_SM3 };
	pthread_t		 tid[NTHREADS];
	pthread_barrier_t	 barrier;
	struct tjob		 job[NTHREADS];
	uint8_t			(*leaves)[32], want[32];
	size_t			 i, t;

	ck_assert_int_eq(pthread_barrier_init(&barrier, NULL, NTHREADS), 0);
	for (t = 0; t < NTHREADS; t++) {
		memset(&job[t], 0, sizeof(job[t]));
		job[t].tj_barrier = &barrier;
		ck_assert_int_eq(pthread_create(&tid[t], NULL, thread_main,
		    &job[t]), 0);
	}
	for (t = 0; t < NTHREADS; t++)
		ck_assert_int_eq(pthread_join(tid[t], NULL), 0);
	pthread_barrier_destroy(&barrier);

	leaves = calloc(TLEAVES, 32);
	ck_assert_ptr_nonnull(leaves);
	for (i = 0; i < 2; i++) {
		make_leaves(hs[i], leaves, TLEAVES);
		ref_mth(hs[i], (const uint8_t (*)[32])leaves, TLEAVES, want);
		for (t = 0; t < NTHREADS; t++) {
			ck_assert_int_eq(job[t].tj_ok, 1);
			ck_assert_mem_eq(job[t].tj_root[i], want, 32);
			ck_assert_mem_eq(job[t].tj_cr[i], want, 32);
		}
	}
	free(leaves);
}
END_TEST

static Suite *
merkle_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("merkle");

	tc = tcase_create("hash");
	tcase_add_test(tc, test_hash_kat);
	tcase_add_test(tc, test_leaf_node_hash);
	tcase_add_test(tc, test_empty_tree);
	tcase_add_test(tc, test_sm3_tree);
	suite_add_tcase(s, tc);

	tc = tcase_create("rfc6962");
	tcase_add_test(tc, test_rfc_roots);
	tcase_add_loop_test(tc, test_rfc_inclusion, 0, NELEM(rfc_inclusion));
	tcase_add_loop_test(tc, test_rfc_consistency, 0,
	    NELEM(rfc_consistency));
	suite_add_tcase(s, tc);

	/* Generous limits: these run slowly under valgrind. */
	tc = tcase_create("exhaustive");
	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, test_inclusion_all, 0, 2);
	tcase_add_loop_test(tc, test_consistency_all, 0, 2);
	tcase_add_loop_test(tc, test_compact_range, 0, 2);
	tcase_add_loop_test(tc, test_nodes_small, 0, 6);
	tcase_add_test(tc, test_nodes_large);
	suite_add_tcase(s, tc);

	tc = tcase_create("args");
	tcase_add_test(tc, test_bad_args);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	return check_run(merkle_suite());
}
