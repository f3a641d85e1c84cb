/*
 * merkle.c - RFC 6962 / RFC 9162 Merkle trees over SHA-256 or SM3.
 *
 * The journal and every seal batch are Merkle trees in the sense of
 * RFC 6962 §2.1: a leaf is hashed as H(0x00 || d), an interior node as
 * H(0x01 || left || right), and a tree of n leaves splits after the
 * largest power of two smaller than n.  The two prefixes keep a leaf hash
 * from ever being passed off as a node hash, which is what stops a second
 * preimage built from interior nodes.
 *
 * Trees are never held in memory.  The writer keeps a compact range (one
 * peak per perfect subtree) and proofs read leaf hashes, and the roots of
 * perfect subtrees when the caller stores them, through callbacks, so the
 * journal decides where leaves and nodes live.  The only shared state is the
 * pair of digest methods, fetched once and read-only afterwards; every
 * function may therefore run on any number of threads at once.
 */

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lianban.h"

#define MK_LEN		32	/* both SHA-256 and SM3 */
#define MK_LEAF_PREFIX	0x00
#define MK_NODE_PREFIX	0x01

static pthread_once_t	 merkle_md_once = PTHREAD_ONCE_INIT;
static EVP_MD		*merkle_md_sha256;
static EVP_MD		*merkle_md_sm3;

static _Noreturn void	 merkle_fatal(const char *);
static void		 merkle_md_init(void);
static EVP_MD		*merkle_md_fetch(const char *);
static const EVP_MD	*merkle_md(enum mk_hash);
static void		 merkle_digest(enum mk_hash, const void *, size_t,
			    const void *, size_t, const void *, size_t,
			    uint8_t [MK_LEN]);
static uint64_t		 merkle_split(uint64_t);
static int		 merkle_perfect(enum mk_hash, merkle_leaf_fn,
			    merkle_node_fn, void *, unsigned, uint64_t,
			    uint8_t [MK_LEN]);
static int		 merkle_popcount(uint64_t);
static int		 merkle_path(enum mk_hash, merkle_leaf_fn,
			    merkle_node_fn, void *, uint64_t, uint64_t, int,
			    uint8_t [][32], size_t *);
static int		 merkle_climb(uint64_t *, uint64_t *);

/*
 * The hashing interfaces return nothing, so a digest that cannot be
 * computed has no honest way out: a made-up hash would end up in a signed
 * checkpoint or seal.  Stopping the process is the only safe answer, and
 * it only happens when OpenSSL itself is unusable.
 */
static _Noreturn void
merkle_fatal(const char *what)
{
	fprintf(stderr, "lianban: merkle: %s\n", what);
	abort();
}

static EVP_MD *
merkle_md_fetch(const char *name)
{
	EVP_MD	*md;

	if ((md = EVP_MD_fetch(NULL, name, NULL)) == NULL)
		return NULL;
	/* Proof entries are fixed at 32 bytes; anything else cannot be used. */
	if (EVP_MD_get_size(md) != MK_LEN) {
		EVP_MD_free(md);
		return NULL;
	}
	return md;
}

/*
 * Fetching is done once: an explicit fetch per hash would take the
 * provider store lock on every node, and the fetched methods are
 * reference-counted objects that OpenSSL allows many threads to share.
 * A missing SM3 provider only matters to callers that ask for SM3.
 */
static void
merkle_md_init(void)
{
	merkle_md_sha256 = merkle_md_fetch("SHA2-256");
	merkle_md_sm3 = merkle_md_fetch("SM3");
}

static const EVP_MD *
merkle_md(enum mk_hash h)
{
	const EVP_MD	*md = NULL;

	if (pthread_once(&merkle_md_once, merkle_md_init) != 0)
		merkle_fatal("pthread_once failed");
	switch (h) {
	case MK_SHA256:
		md = merkle_md_sha256;
		break;
	case MK_SM3:
		md = merkle_md_sm3;
		break;
	}
	if (md == NULL)
		merkle_fatal("digest unavailable");
	return md;
}

/*
 * Hashes the concatenation of up to three pieces without copying them
 * into one buffer.  The output is written only by the final step, so out
 * may alias any input.
 */
static void
merkle_digest(enum mk_hash h, const void *a, size_t alen, const void *b,
    size_t blen, const void *c, size_t clen, uint8_t out[MK_LEN])
{
	const EVP_MD	*md;
	EVP_MD_CTX	*ctx;
	unsigned int	 outlen = 0;

	md = merkle_md(h);
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		merkle_fatal("EVP_MD_CTX_new failed");
	if (EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
	    (alen > 0 && EVP_DigestUpdate(ctx, a, alen) != 1) ||
	    (blen > 0 && EVP_DigestUpdate(ctx, b, blen) != 1) ||
	    (clen > 0 && EVP_DigestUpdate(ctx, c, clen) != 1) ||
	    EVP_DigestFinal_ex(ctx, out, &outlen) != 1 || outlen != MK_LEN)
		merkle_fatal("digest failed");
	EVP_MD_CTX_free(ctx);
}

/*
 * The largest power of two strictly smaller than n (n >= 2): the k of
 * RFC 6962 §2.1.  Doubling while k < n - k cannot overflow, unlike
 * testing 2k < n, because k stays below n.
 */
static uint64_t
merkle_split(uint64_t n)
{
	uint64_t	k = 1;

	while (k < n - k)
		k <<= 1;
	return k;
}

static int
merkle_popcount(uint64_t v)
{
	int	n = 0;

	for (; v != 0; v &= v - 1)
		n++;
	return n;
}

void
merkle_hash(enum mk_hash h, const void *data, size_t len, uint8_t out[32])
{
	merkle_digest(h, data, len, NULL, 0, NULL, 0, out);
}

void
merkle_leaf_hash(enum mk_hash h, const void *data, size_t len,
    uint8_t out[32])
{
	static const uint8_t	prefix = MK_LEAF_PREFIX;

	merkle_digest(h, &prefix, 1, data, len, NULL, 0, out);
}

void
merkle_node_hash(enum mk_hash h, const uint8_t l[32], const uint8_t r[32],
    uint8_t out[32])
{
	static const uint8_t	prefix = MK_NODE_PREFIX;

	merkle_digest(h, &prefix, 1, l, MK_LEN, r, MK_LEN, out);
}

/*
 * Folding the leaves through a compact range gives MTH without recursion
 * and in O(log n) memory, whatever n is.
 */
void
merkle_root(enum mk_hash h, const uint8_t (*leaves)[32], uint64_t n,
    uint8_t out[32])
{
	struct merkle_cr	cr;
	uint64_t		i;

	merkle_cr_init(&cr);
	for (i = 0; i < n; i++)
		merkle_cr_append(h, &cr, leaves[i]);
	merkle_cr_root(h, &cr, out);
}

void
merkle_cr_init(struct merkle_cr *cr)
{
	memset(cr, 0, sizeof(*cr));
}

/*
 * The peaks are the perfect subtrees of the tree, one per set bit of its
 * size, largest first.  A new leaf is a perfect subtree of height 0; every
 * trailing one bit of the old size is a peak of the same height as the
 * node being carried, so the two merge, exactly like a binary increment.
 * Each merge completes one perfect subtree, which is handed back in nodes
 * (when not NULL) for callers that store them.
 */
int
merkle_cr_append_nodes(enum mk_hash h, struct merkle_cr *cr,
    const uint8_t leaf[32], uint8_t nodes[][32])
{
	uint8_t		node[MK_LEN];
	uint64_t	s;
	int		level = 0;

	/*
	 * A peak count that disagrees with the size would make the merge
	 * loop index outside cr_peak; a size of 2^64 - 1 cannot grow.
	 */
	if (cr->cr_size == UINT64_MAX ||
	    cr->cr_n != merkle_popcount(cr->cr_size))
		merkle_fatal("inconsistent compact range");

	memcpy(node, leaf, MK_LEN);
	for (s = cr->cr_size; (s & 1) != 0; s >>= 1) {
		cr->cr_n--;
		merkle_node_hash(h, cr->cr_peak[cr->cr_n], node, node);
		if (nodes != NULL)
			memcpy(nodes[level], node, MK_LEN);
		level++;
	}
	memcpy(cr->cr_peak[cr->cr_n], node, MK_LEN);
	cr->cr_n++;
	cr->cr_size++;
	return level;
}

int
merkle_cr_set(struct merkle_cr *cr, uint64_t size, const uint8_t peaks[][32],
    size_t n)
{
	if (n != (size_t)merkle_popcount(size))
		return -1;
	merkle_cr_init(cr);
	if (n > 0)
		memcpy(cr->cr_peak, peaks, n * MK_LEN);
	cr->cr_n = (int)n;
	cr->cr_size = size;
	return 0;
}

void
merkle_cr_append(enum mk_hash h, struct merkle_cr *cr, const uint8_t leaf[32])
{
	merkle_cr_append_nodes(h, cr, leaf, NULL);
}

/*
 * In an RFC 6962 tree the right spine splits off the peaks one after
 * another, largest first, so the root is the peaks hashed together from
 * the smallest (rightmost) upwards.
 */
void
merkle_cr_root(enum mk_hash h, const struct merkle_cr *cr, uint8_t out[32])
{
	uint8_t	r[MK_LEN];
	int	i;

	if (cr->cr_n < 0 || cr->cr_n > 64)
		merkle_fatal("inconsistent compact range");
	if (cr->cr_n == 0) {
		merkle_hash(h, "", 0, out);
		return;
	}
	memcpy(r, cr->cr_peak[cr->cr_n - 1], MK_LEN);
	for (i = cr->cr_n - 2; i >= 0; i--)
		merkle_node_hash(h, cr->cr_peak[i], r, r);
	memcpy(out, r, MK_LEN);
}

/*
 * MTH(D[start:start + len]) is the root of those leaves taken as a tree
 * of their own, so a fresh compact range over them yields it, reading
 * every leaf once and never recursing.
 */
int
merkle_subtree(enum mk_hash h, merkle_leaf_fn fn, void *arg, uint64_t start,
    uint64_t len, uint8_t out[32])
{
	struct merkle_cr	cr;
	uint8_t			leaf[MK_LEN];
	uint64_t		i;

	if (fn == NULL || out == NULL || len > UINT64_MAX - start)
		return -1;
	merkle_cr_init(&cr);
	for (i = 0; i < len; i++) {
		if (fn(arg, start + i, leaf) == -1)
			return -1;
		merkle_cr_append(h, &cr, leaf);
	}
	merkle_cr_root(h, &cr, out);
	return 0;
}

/*
 * Root of the perfect subtree of 2^level leaves starting at leaf start.
 * A stored node answers at once when the subtree is aligned (start a
 * multiple of 2^level, the only subtrees a store can hold); otherwise, or
 * when the node is absent, the two halves are asked in turn, so only the
 * missing parts are ever rebuilt from leaves.  The recursion is at most
 * level (< 64) deep.
 */
static int
merkle_perfect(enum mk_hash h, merkle_leaf_fn fn, merkle_node_fn node_fn,
    void *arg, unsigned level, uint64_t start, uint8_t out[MK_LEN])
{
	uint8_t		l[MK_LEN], r[MK_LEN];
	uint64_t	half;
	int		rc;

	if (level == 0)
		return fn(arg, start, out) == -1 ? -1 : 0;
	if ((start & (((uint64_t)1 << level) - 1)) == 0) {
		if ((rc = node_fn(arg, level, start >> level, out)) == 0)
			return 0;
		if (rc != 1)
			return -1;
	}
	half = (uint64_t)1 << (level - 1);
	if (merkle_perfect(h, fn, node_fn, arg, level - 1, start, l) == -1 ||
	    merkle_perfect(h, fn, node_fn, arg, level - 1, start + half,
	    r) == -1)
		return -1;
	merkle_node_hash(h, l, r, out);
	return 0;
}

/*
 * The same MTH as merkle_subtree, from the peaks of the range: one
 * perfect subtree per set bit of len, largest first.  Walking the bits
 * from the smallest takes the peaks right to left, which is the order the
 * root folds them in, so no peak needs to be kept.  In the ranges RFC 6962
 * proofs ask for every peak is aligned, and with every node stored this
 * reads at most one node per bit of len.
 */
int
merkle_subtree_nodes(enum mk_hash h, merkle_leaf_fn fn,
    merkle_node_fn node_fn, void *arg, uint64_t start, uint64_t len,
    uint8_t out[32])
{
	uint8_t		peak[MK_LEN], r[MK_LEN];
	uint64_t	end;
	unsigned	b;
	int		first = 1;

	if (node_fn == NULL)
		return merkle_subtree(h, fn, arg, start, len, out);
	if (fn == NULL || out == NULL || len > UINT64_MAX - start)
		return -1;
	if (len == 0) {
		merkle_hash(h, "", 0, out);
		return 0;
	}
	end = start + len;
	for (b = 0; b < 64; b++) {
		if ((len & ((uint64_t)1 << b)) == 0)
			continue;
		end -= (uint64_t)1 << b;
		if (merkle_perfect(h, fn, node_fn, arg, b, end, peak) == -1)
			return -1;
		if (first)
			memcpy(r, peak, MK_LEN);
		else
			merkle_node_hash(h, peak, r, r);
		first = 0;
	}
	memcpy(out, r, MK_LEN);
	return 0;
}

/*
 * The walk both proofs make: from the tree [0, size) down towards leaf idx,
 * taking at each split the root of the half that does not hold it, then
 * those roots leaf-first into path.  to_leaf walks down to the leaf itself
 * (PATH).  Otherwise the walk stops at the first subtree that ends with
 * leaf idx, where the old tree of idx + 1 leaves stops splitting off
 * (SUBPROOF); if the walk ever went right, the old root is not a node of
 * the new tree and that subtree's own root comes first in the proof.
 */
static int
merkle_path(enum mk_hash h, merkle_leaf_fn fn, merkle_node_fn node_fn,
    void *arg, uint64_t idx, uint64_t size, int to_leaf, uint8_t path[][32],
    size_t *npath)
{
	uint8_t		sib[MK_MAX_PATH][MK_LEN];
	uint64_t	lo = 0, n = size, k;
	size_t		cnt = 0, i, off = 0;

	while (to_leaf ? n > 1 : idx != n - 1) {
		if (cnt == MK_MAX_PATH)
			return -1;
		k = merkle_split(n);
		if (idx < k) {
			if (merkle_subtree_nodes(h, fn, node_fn, arg, lo + k,
			    n - k, sib[cnt]) == -1)
				return -1;
			n = k;
		} else {
			if (merkle_subtree_nodes(h, fn, node_fn, arg, lo, k,
			    sib[cnt]) == -1)
				return -1;
			lo += k;
			idx -= k;
			n -= k;
		}
		cnt++;
	}
	if (!to_leaf && lo != 0) {
		if (cnt == MK_MAX_PATH)
			return -1;
		if (merkle_subtree_nodes(h, fn, node_fn, arg, lo, n,
		    path[0]) == -1)
			return -1;
		off = 1;
	}
	for (i = 0; i < cnt; i++)
		memcpy(path[off + i], sib[cnt - 1 - i], MK_LEN);
	*npath = off + cnt;
	return 0;
}

/*
 * RFC 6962 §2.1.1 PATH(m, D[n]).  The recursion there descends towards
 * leaf m and, at each split, appends the root of the half that does not
 * hold m after the path of the half that does.  Walking down iteratively
 * finds those siblings root-first, so they are stored in reverse to give
 * the leaf-first order of the RFC.
 */
int
merkle_inclusion_proof(enum mk_hash h, merkle_leaf_fn fn, void *arg,
    uint64_t idx, uint64_t size, uint8_t path[][32], size_t *npath)
{
	return merkle_inclusion_proof_nodes(h, fn, NULL, arg, idx, size, path,
	    npath);
}

int
merkle_inclusion_proof_nodes(enum mk_hash h, merkle_leaf_fn fn,
    merkle_node_fn node_fn, void *arg, uint64_t idx, uint64_t size,
    uint8_t path[][32], size_t *npath)
{
	if (fn == NULL || path == NULL || npath == NULL || idx >= size)
		return -1;
	return merkle_path(h, fn, node_fn, arg, idx, size, 1, path, npath);
}

/*
 * RFC 6962 §2.1.2 PROOF(m, D[n]) = SUBPROOF(m, D[n], true), unrolled like
 * merkle_inclusion_proof.  While m <= k the old tree still lies in the
 * left half and the right half's root is a sibling; once m > k the left
 * half is a complete subtree of the old tree, so the old root is no
 * longer a node of the new tree and the final subtree's own root must be
 * sent too (the "b = false" case).  That root comes first in the proof.
 * When it is not needed the old tree is a complete subtree of the new one
 * and the verifier already holds its root.
 */
int
merkle_consistency_proof(enum mk_hash h, merkle_leaf_fn fn, void *arg,
    uint64_t first, uint64_t second, uint8_t path[][32], size_t *npath)
{
	return merkle_consistency_proof_nodes(h, fn, NULL, arg, first, second,
	    path, npath);
}

int
merkle_consistency_proof_nodes(enum mk_hash h, merkle_leaf_fn fn,
    merkle_node_fn node_fn, void *arg, uint64_t first, uint64_t second,
    uint8_t path[][32], size_t *npath)
{
	if (fn == NULL || path == NULL || npath == NULL || first == 0 ||
	    first > second)
		return -1;
	return merkle_path(h, fn, node_fn, arg, first - 1, second, 0, path,
	    npath);
}

/*
 * One level of the verification walks of RFC 9162 (§2.1.3.2, §2.1.4.2):
 * 1 when the next path entry is a left sibling, because the node at fn is
 * a right child or the last node of its level (which then climbs, unpaired,
 * until it is a right child); 0 when the entry is a right sibling.  fn and
 * sn move up past that entry.
 */
static int
merkle_climb(uint64_t *fn, uint64_t *sn)
{
	int	left = (*fn & 1) != 0 || *fn == *sn;

	if (left)
		while (*fn != 0 && (*fn & 1) == 0) {
			*fn >>= 1;
			*sn >>= 1;
		}
	*fn >>= 1;
	*sn >>= 1;
	return left;
}

/*
 * RFC 9162 §2.1.3.2.  fn walks up from the leaf and sn from the last
 * leaf; sn reaching 0 marks the root.  Each path entry is a left sibling
 * when the current node is a right child (LSB(fn) set) or is the last
 * node of its level, whose missing right sibling makes it climb levels
 * unpaired until it becomes a right child.  A path with entries left once
 * sn is 0 is too long; sn above 0 at the end means it is too short.  Both
 * are rejected, and no entry past npath is ever read.
 */
int
merkle_root_from_path(enum mk_hash h, const uint8_t leaf[32], uint64_t idx,
    uint64_t size, const uint8_t path[][32], size_t npath, uint8_t out[32])
{
	uint8_t		r[MK_LEN];
	uint64_t	fn, sn;
	size_t		i;

	if (leaf == NULL || out == NULL || idx >= size ||
	    npath > MK_MAX_PATH || (npath > 0 && path == NULL))
		return -1;
	fn = idx;
	sn = size - 1;
	memcpy(r, leaf, MK_LEN);
	for (i = 0; i < npath; i++) {
		if (sn == 0)
			return -1;
		if (merkle_climb(&fn, &sn))
			merkle_node_hash(h, path[i], r, r);
		else
			merkle_node_hash(h, r, path[i], r);
	}
	if (sn != 0)
		return -1;
	memcpy(out, r, MK_LEN);
	return 0;
}

/* Roots and paths are public values, so memcmp's early exit leaks nothing. */
int
merkle_verify_inclusion(enum mk_hash h, const uint8_t leaf[32], uint64_t idx,
    uint64_t size, const uint8_t path[][32], size_t npath,
    const uint8_t root[32])
{
	uint8_t	r[MK_LEN];

	if (root == NULL ||
	    merkle_root_from_path(h, leaf, idx, size, path, npath, r) == -1)
		return -1;
	return memcmp(r, root, MK_LEN) == 0 ? 0 : -1;
}

/*
 * RFC 9162 §2.1.4.2.  The RFC only covers 0 < first < second; equal sizes
 * are consistent exactly when the roots match and nothing else is sent.
 * A first size of 0 is refused like the other malformed requests.
 *
 * When first is a power of two the old tree is a complete subtree of the
 * new one and the proof leaves its root out; the RFC prepends first_hash.
 * Here that entry is root1 and the path is read from index 0, so the
 * caller's array is never copied or extended.  fr rebuilds the old root
 * from the entries left of the boundary, sr the new root from all of them.
 */
int
merkle_verify_consistency(enum mk_hash h, uint64_t first, uint64_t second,
    const uint8_t root1[32], const uint8_t root2[32], const uint8_t path[][32],
    size_t npath)
{
	uint8_t		fr[MK_LEN], sr[MK_LEN];
	uint64_t	fn, sn;
	size_t		i;

	if (root1 == NULL || root2 == NULL || first == 0 || first > second ||
	    npath > MK_MAX_PATH || (npath > 0 && path == NULL))
		return -1;
	if (first == second) {
		if (npath != 0)
			return -1;
		return memcmp(root1, root2, MK_LEN) == 0 ? 0 : -1;
	}
	if (npath == 0)
		return -1;

	if ((first & (first - 1)) == 0) {
		memcpy(fr, root1, MK_LEN);
		i = 0;
	} else {
		memcpy(fr, path[0], MK_LEN);
		i = 1;
	}
	memcpy(sr, fr, MK_LEN);
	fn = first - 1;
	sn = second - 1;
	while ((fn & 1) != 0) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < npath; i++) {
		if (sn == 0)
			return -1;
		if (merkle_climb(&fn, &sn)) {
			merkle_node_hash(h, path[i], fr, fr);
			merkle_node_hash(h, path[i], sr, sr);
		} else
			merkle_node_hash(h, sr, path[i], sr);
	}
	if (sn != 0 || memcmp(fr, root1, MK_LEN) != 0 ||
	    memcmp(sr, root2, MK_LEN) != 0)
		return -1;
	return 0;
}
