/*
 * journal_impl.h - what the files of the journal share: the handle, the
 * queue of the writer thread and the layout of every LMDB key and value.
 * The rest of lianban sees the journal only through lianban.h.
 *
 *	journal.c		the writer: queue, group commit, checkpoints
 *	journal_claim.c		consent jti claims: reserved in memory, written
 *				with the records of the request that used them
 *	journal_read.c		read transactions, records and queries, proofs
 *	journal_restore.c	opening (checks, rebuilt indexes and nodes) and closing
 *	journal_revoke.c	the consent revocation store
 *	journal_party.c		who acted for a citizen, as the access report shows them
 *
 * Named databases (every number is big-endian, so keys sort by value):
 *   rec   seq (8 bytes)          -> canonical record bytes
 *   leaf  seq (8 bytes)          -> SHA-256(0x00 || record), for proofs
 *   node  last seq (8 bytes) || level (1 byte)
 *                                -> root of the perfect subtree of 2^level
 *                                   leaves ending at that seq, for proofs
 *   ckpt  tree size (8 bytes)    -> checkpoint envelope
 *   meta  "cr"                   -> size (8 bytes) || compact range peaks
 *         "latest"               -> the newest checkpoint envelope
 *   jti   jti (16 bytes)         -> keep_until, unix seconds (8 bytes)
 *   ix    tag || len || value || seq (8 bytes) -> empty
 *   rev   'j' || jti, or 's' || subject pseudonym || bundle
 *                                -> revoked_at || keep_until (8 bytes each)
 *   party actor pseudonym (32)   -> masked id || 0x00 || name (UTF-8)
 *
 * The "ix" database indexes records for auditors' queries.  Its tags are
 * 's' (subject pseudonym), 'c' (consumer), 'd' (department), 'i' (item) and
 * 't', whose value is the largest t_ms of the records up to and including
 * seq.  Record times follow the callers' clocks and are not quite in seq
 * order; their running maximum is, so the 't' entries are in seq order too
 * and a seek to since_ms finds the first record that can be that recent.
 * Index entries are written in the transaction that writes their record,
 * so an index never names a record that is not there.
 *
 * The "node" database holds every completed perfect subtree above the
 * leaves, so any subtree a proof needs is O(log n) reads instead of one read
 * per leaf.  A leaf completes the nodes it merges into the compact range, all
 * ending at its own seq, so keying by last seq then level makes every write
 * an append (MDB_APPEND: no page splits, full pages).  They are written in
 * the transaction that writes their leaf and cannot disagree with the tree.
 *
 * Every key and value is built and taken apart by the helpers below, never
 * by offsets written out where it is used.
 */
#ifndef JOURNAL_IMPL_H
#define JOURNAL_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <lmdb.h>

#include "lianban.h"

#define JOURNAL_MAP_DEFAULT	((size_t)1 << 30)
/* Growth stops here; past it appends fail with journal_unavailable. */
#define JOURNAL_MAP_MAX		(SIZE_MAX / 4)
/* Records, claims and revocations queued at most; beyond it callers see -1 (503). */
#define JOURNAL_QUEUE_MAX	(8 * JOURNAL_BATCH_MAX)
/* Entries examined per expiry pass, and the pause between jti passes. */
#define JOURNAL_EXPIRE_SCAN	1024
#define JOURNAL_EXPIRE_EVERY_MS	1000
/* Leaves per transaction when the node database is built at open. */
#define JOURNAL_NODE_BATCH	(1u << 17)
/* Records a query examines at most per call; the cursor resumes from there. */
#define JOURNAL_QUERY_SCAN	20000
#define JOURNAL_QUERY_LIMIT	1000
/* Under load, one checkpoint per this interval is enough (docs/contract.md §7). */
#define JOURNAL_CKPT_EVERY_US	1000000
#define JOURNAL_HMAC_MIN	16
/* The named databases: rec, leaf, ckpt, meta, jti, ix, rev, node, party, witness. */
#define JOURNAL_NDBS		10
/* A party value: masked id, NUL, name of at most JOURNAL_PARTY_NAME_MAX - 1 bytes. */
#define JPARTY_VAL_MAX		256

/* Key and value layouts. */
#define JU64_LEN		8	/* a big-endian number */
#define JHASH_LEN		32	/* a leaf or node hash, a pseudonym */
#define JSEQ_KEY_LEN		JU64_LEN	/* rec, leaf, ckpt */
#define JNODE_KEY_LEN		(JU64_LEN + 1)	/* last seq || level */
#define JMETA_CR		"cr"
#define JMETA_LATEST		"latest"
/* meta "cr": size || up to 64 peaks. */
#define JCR_VAL_MAX		(JU64_LEN + 64 * JHASH_LEN)
#define JJTI_LEN		16
#define JJTI_VAL_LEN		JU64_LEN	/* keep_until */
/* ix: tag || len || value || seq; a value holds 1 to 255 bytes. */
#define JIX_HDR_LEN		2
#define JIX_VALUE_MAX		255
#define JIX_KEY_MAX		(JIX_HDR_LEN + JIX_VALUE_MAX + JU64_LEN)
enum jix_tag {
	JIX_SUBJECT = 's',
	JIX_CONSUMER = 'c',
	JIX_DEPT = 'd',
	JIX_ITEM = 'i',
	JIX_TIME = 't'		/* value: running maximum of t_ms (8 bytes) */
};
#define JIX_TIME_KEY_LEN	(JIX_HDR_LEN + JU64_LEN + JU64_LEN)
/* rev: tag || jti, or tag || pseudonym || bundle (JOURNAL_REVOKE_KEY_MAX). */
#define JREV_TAG_JTI		'j'
#define JREV_TAG_SUBJECT	's'
#define JREV_TAG_LEN		1
#define JREV_JTI_KEY_LEN	(JREV_TAG_LEN + JJTI_LEN)
#define JREV_BUNDLE_OFF		(JREV_TAG_LEN + JHASH_LEN)
#define JREV_VAL_LEN		(2 * JU64_LEN)	/* revoked_at || keep_until */
_Static_assert(JREV_BUNDLE_OFF + LB_ID_MAX - 1 <= JOURNAL_REVOKE_KEY_MAX,
    "a revocation key of the longest bundle id fits");

static inline void
journal_u64_put(uint8_t b[JU64_LEN], uint64_t v)
{
	int	i;

	for (i = JU64_LEN - 1; i >= 0; i--) {
		b[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t
journal_u64_get(const uint8_t b[JU64_LEN])
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < JU64_LEN; i++)
		v = (v << 8) | b[i];
	return v;
}

/* The key of seq (or of a tree size) in kb, as an MDB_val that points at kb. */
static inline MDB_val
journal_seq_key(uint8_t kb[JSEQ_KEY_LEN], uint64_t seq)
{
	MDB_val	k = { JSEQ_KEY_LEN, kb };

	journal_u64_put(kb, seq);
	return k;
}

/*
 * The number a key or value of one number holds: the seq of a rec or leaf
 * key, the size of a ckpt key, the keep_until of a jti value.  -1 for one
 * of another size.
 */
static inline int
journal_number_get(const MDB_val *v, uint64_t *n)
{
	if (v->mv_size != JU64_LEN)
		return -1;
	*n = journal_u64_get(v->mv_data);
	return 0;
}

/* Node index of level (>= 1) covers seqs up to ((index + 1) << level) - 1. */
static inline MDB_val
journal_node_key(uint8_t kb[JNODE_KEY_LEN], unsigned level, uint64_t index)
{
	MDB_val	k = { JNODE_KEY_LEN, kb };

	journal_u64_put(kb, ((index + 1) << level) - 1);
	kb[JU64_LEN] = (uint8_t)level;
	return k;
}

static inline int
journal_node_key_get(const MDB_val *k, uint64_t *last, unsigned *level)
{
	if (k->mv_size != JNODE_KEY_LEN)
		return -1;
	*last = journal_u64_get(k->mv_data);
	*level = ((const uint8_t *)k->mv_data)[JU64_LEN];
	return 0;
}

/* A meta key: JMETA_CR or JMETA_LATEST. */
static inline MDB_val
journal_meta_key(const char *name)
{
	MDB_val	k = { strlen(name), (void *)(uintptr_t)name };

	return k;
}

/* The value of meta "cr" in buf; its length. */
static inline size_t
journal_cr_put(uint8_t buf[JCR_VAL_MAX], const struct merkle_cr *cr)
{
	journal_u64_put(buf, cr->cr_size);
	memcpy(buf + JU64_LEN, cr->cr_peak, (size_t)cr->cr_n * JHASH_LEN);
	return JU64_LEN + (size_t)cr->cr_n * JHASH_LEN;
}

/* The compact range of meta "cr"; -1 when the peaks do not fit the size. */
static inline int
journal_cr_get(const MDB_val *v, struct merkle_cr *cr)
{
	const uint8_t	*p = v->mv_data;

	if (v->mv_size < JU64_LEN || (v->mv_size - JU64_LEN) % JHASH_LEN != 0)
		return -1;
	return merkle_cr_set(cr, journal_u64_get(p), (const uint8_t (*)[32])(p + JU64_LEN),
	    (v->mv_size - JU64_LEN) / JHASH_LEN);
}

/*
 * The part of an index key before its seq: tag || len || value (len <=
 * JIX_VALUE_MAX).  Returns its length.
 */
static inline size_t
journal_ix_prefix(uint8_t key[JIX_KEY_MAX], enum jix_tag tag, const void *val, size_t len)
{
	key[0] = (uint8_t)tag;
	key[1] = (uint8_t)len;
	memcpy(key + JIX_HDR_LEN, val, len);
	return JIX_HDR_LEN + len;
}

/* A whole index key: the prefix, then seq.  Returns its length. */
static inline size_t
journal_ix_key(uint8_t key[JIX_KEY_MAX], enum jix_tag tag, const void *val, size_t len,
    uint64_t seq)
{
	size_t	plen = journal_ix_prefix(key, tag, val, len);

	journal_u64_put(key + plen, seq);
	return plen + JU64_LEN;
}

/*
 * The seq that ends a key of plen bytes of prefix: an index key, or a rec
 * key when plen is 0.  The caller has checked the key's length.
 */
static inline uint64_t
journal_seq_after(const MDB_val *k, size_t plen)
{
	return journal_u64_get((const uint8_t *)k->mv_data + plen);
}

/* The running maximum of t_ms and the seq of a 't' key; -1 for another key. */
static inline int
journal_ix_time_get(const MDB_val *k, uint64_t *tmax, uint64_t *seq)
{
	const uint8_t	*p = k->mv_data;

	if (k->mv_size != JIX_TIME_KEY_LEN || p[0] != JIX_TIME || p[1] != JU64_LEN)
		return -1;
	*tmax = journal_u64_get(p + JIX_HDR_LEN);
	*seq = journal_u64_get(p + JIX_HDR_LEN + JU64_LEN);
	return 0;
}

static inline void
journal_rev_val_put(uint8_t vb[JREV_VAL_LEN], uint64_t revoked_at, uint64_t keep_until)
{
	journal_u64_put(vb, revoked_at);
	journal_u64_put(vb + JU64_LEN, keep_until);
}

/* Either out-parameter may be NULL; -1 for a value of another size. */
static inline int
journal_rev_val_get(const MDB_val *v, uint64_t *revoked_at, uint64_t *keep_until)
{
	if (v->mv_size != JREV_VAL_LEN)
		return -1;
	if (revoked_at != NULL)
		*revoked_at = journal_u64_get(v->mv_data);
	if (keep_until != NULL)
		*keep_until = journal_u64_get((const uint8_t *)v->mv_data + JU64_LEN);
	return 0;
}

enum jop_type {
	JOP_APPEND,
	JOP_REVOKE,
	JOP_PARTY,
	JOP_WITNESS
};

/*
 * One queued operation; owned by the queue, then the writer, then the loop.
 * An append carries jo_n records and the jo_nclaims reserved jtis written
 * with them; a revocation its key and times and at most one record,
 * committed with it.
 */
struct jop {
	struct jop		*jo_next;
	enum jop_type		 jo_type;
	struct event_base	*jo_base;
	journal_done_fn		 jo_done;
	void			*jo_arg;
	int			 jo_status;
	uint64_t		 jo_first_seq;
	struct jclaim		 jo_claims[JOURNAL_CLAIMS_MAX];
	size_t			 jo_nclaims;
	uint64_t		 jo_keep_until;	/* revocations */
	uint8_t			 jo_rev_key[JOURNAL_REVOKE_KEY_MAX];
	size_t			 jo_rev_keylen;
	uint64_t		 jo_revoked_at;
	uint8_t			 jo_party_key[JHASH_LEN];	/* parties */
	uint8_t			 jo_party_val[JPARTY_VAL_MAX];
	size_t			 jo_party_len;
	uint8_t			*jo_wit;	/* witness pairs: key then value, in jo_recs' room */
	size_t			 jo_wit_keylen, jo_wit_vallen;
	size_t			 jo_n;
	struct jrec		 jo_recs[];
};

/*
 * Where the next bounded expiry pass over one database resumes: a large
 * table never makes one commit slow, and every entry is reached in turn.
 */
struct jsweep {
	uint8_t			 js_key[JOURNAL_REVOKE_KEY_MAX];
	size_t			 js_keylen;
	bool			 js_resume;
};
/* The keep_until of a value of the swept database; -1 when malformed. */
typedef int	(*journal_keep_fn)(const MDB_val *v, uint64_t *keep_until);

/*
 * The consent jtis reserved and not yet committed (journal_claim.c): a hash
 * set guarded by jq_mtx, which is held only to look up, insert or remove an
 * entry, never across a read or write of LMDB.
 */
#define JPENDING_BUCKETS	1024	/* a power of two */
struct jpend {
	struct jpend		*jp_next;
	uint8_t			 jp_jti[JJTI_LEN];
};
struct jpending {
	pthread_mutex_t		 jq_mtx;
	struct jpend		*jq_bucket[JPENDING_BUCKETS];
	size_t			 jq_n;
};

struct journal {
	MDB_env			*j_env;
	MDB_dbi			 j_rec, j_leaf, j_ckpt, j_meta, j_jti, j_ix;
	MDB_dbi			 j_rev;		/* consent revocations */
	MDB_dbi			 j_node;	/* perfect subtrees, for proofs */
	MDB_dbi			 j_party;	/* who acted for citizens (journal_party.c) */
	MDB_dbi			 j_wit;		/* a cluster node's witness state (journal_witness.c) */
	char			 j_origin[LB_ORIGIN_MAX];
	EVP_PKEY		*j_key;
	X509			*j_cert;
	uint8_t			 j_kid[32];
	uint8_t			*j_hmac;
	size_t			 j_hmac_len;

	/*
	 * mdb_env_set_mapsize must not run while any transaction of this
	 * process is open.  Readers hold this lock shared for the life of their
	 * read transactions; the writer takes it exclusive only to grow the map.
	 */
	pthread_rwlock_t	 j_resize;

	/* The queue, guarded by j_mtx. */
	pthread_mutex_t		 j_mtx;
	pthread_cond_t		 j_cond;
	struct jop		*j_head, **j_tail;
	size_t			 j_queued;	/* records and claims waiting */
	bool			 j_closing;
	bool			 j_ckpt_due;	/* committed tree has no checkpoint */
	/* The committed compact range: written by the writer under j_mtx. */
	struct merkle_cr	 j_cr;

	/* Reserved jtis, from any thread (journal_claim.c). */
	struct jpending		 j_pending;

	/* Committed size, readable from any thread without a lock. */
	_Atomic uint64_t	 j_size;
	/*
	 * What readiness asks (journal_state), likewise: the growth limit of
	 * the map (0: JOURNAL_MAP_MAX), its size and the bytes in use after
	 * the last commit, and whether that commit failed (and why).
	 */
	_Atomic size_t		 j_map_max;
	_Atomic uint64_t	 j_map_size;
	_Atomic uint64_t	 j_map_used;
	_Atomic bool		 j_failing;
	_Atomic bool		 j_failing_full;	/* and failed for want of room */
	/* journal_stats: written by the writer, read by any thread. */
	_Atomic uint64_t	 j_st_commits, j_st_failures, j_st_records;
	_Atomic uint64_t	 j_st_commit_us, j_st_sync_us;

	/* Writer-only state. */
	pthread_t		 j_writer;
	uint64_t		 j_ckpt_size;	/* size of the newest checkpoint */
	uint64_t		 j_tmax;	/* largest t_ms committed (the 't' index) */
	uint64_t		 j_ckpt_mono_us;	/* last attempt at signing one */
	uint64_t		 j_expire_ms;	/* last jti expiry pass */
	struct jsweep		 j_jti_sweep;
	struct jsweep		 j_rev_sweep;
};

/*
 * Leaf and node hashes for the merkle_*_nodes callbacks, read inside one
 * transaction that the reader owns.
 */
struct jleafrd {
	struct journal		*lr_j;
	MDB_txn			*lr_txn;
};

/* journal.c */
void		*journal_writer(void *j);
/* Notes the map's size and use for journal_state (the writer, or journal_open). */
void		 journal_map_note(struct journal *);
/* The most the map may grow to now. */
size_t		 journal_map_limit(struct journal *);
/* A new operation with room for n records, zeroed but for these fields. */
struct jop	*journal_op_new(enum jop_type, struct event_base *, void *arg, size_t n);
/*
 * Queues op for the writer, which owns it from here; weight is the number
 * of records and claims it counts for.  On -1 (the queue is full or the
 * journal is closing) op is freed and its completion never runs.
 */
int		 journal_op_queue(struct journal *, struct jop *op, size_t weight);
/* The index entries of one record; t_ms feeds the running maximum *tmax. */
int		 journal_ix_record(struct journal *, MDB_txn *, uint64_t seq,
		    const uint8_t *subject, const char *consumer, const char *dept,
		    const char *item, uint64_t t_ms, uint64_t *tmax);
/* Stores the n perfect subtrees that the leaf just appended to cr completed. */
int		 journal_put_nodes(struct journal *, MDB_txn *, const struct merkle_cr *cr,
		    const uint8_t nodes[][32], int n);
/*
 * Signs the checkpoint of the tree cr and stores it as the latest, in txn.
 * *did_sign is false when signing failed (logged; the caller's records still
 * commit); the return is an LMDB error of the stores.
 */
int		 journal_put_ckpt(struct journal *, MDB_txn *, const struct merkle_cr *cr,
		    bool *did_sign);
/* Removes expired entries of dbi, at most JOURNAL_EXPIRE_SCAN examined. */
int		 journal_sweep(MDB_txn *, MDB_dbi, struct jsweep *, journal_keep_fn,
		    uint64_t now_s);
/* Doubles the map.  No transaction of this process may be open meanwhile. */
int		 journal_grow(struct journal *);

/* journal_claim.c */
void		 journal_pending_init(struct jpending *);
void		 journal_pending_free(struct jpending *);
/* 0: jti inserted; 1: it was there already; -1: out of memory. */
int		 journal_pending_add(struct jpending *, const uint8_t jti[JJTI_LEN]);
void		 journal_pending_del(struct jpending *, const uint8_t jti[JJTI_LEN]);
size_t		 journal_pending_count(struct jpending *);
/* Writes the reserved jtis of an append into the jti table, in txn (writer). */
int		 journal_put_claims(struct journal *, MDB_txn *, const struct jop *op);
/*
 * Drops the reservations of every append of a batch whose transaction has
 * committed or failed for good (writer), before their completions run.
 */
void		 journal_claims_done(struct journal *, const struct jop *batch);

/* journal_read.c */
/* A read transaction, from any thread; ended by journal_rtxn_end. */
int		 journal_rtxn_begin(struct journal *, MDB_txn **);
void		 journal_rtxn_end(struct journal *, MDB_txn *);
/* Decodes the payload of a checkpoint envelope. */
int		 journal_ckpt_decode(const void *buf, size_t len, uint64_t *size,
		    uint8_t root[32], uint64_t *t_ms);
/* merkle_leaf_fn and merkle_node_fn over a struct jleafrd. */
int		 journal_leaf_read(void *lr, uint64_t idx, uint8_t out[32]);
int		 journal_node_read(void *lr, unsigned level, uint64_t index, uint8_t out[32]);
/*
 * The compact range of the first size records, from the stored leaves and
 * nodes of lr's transaction: one peak per set bit of size, largest first
 * (at most 64).  -1 when one is missing.
 */
int		 journal_peaks_read(struct jleafrd *lr, uint64_t size, uint8_t peaks[][32],
		    size_t *npeaks);

/* journal_revoke.c */
/*
 * Stores the revocation of op (writer thread), after a pass over expired
 * revocations when sweep is set (the first revocation of a transaction).
 * Returns an LMDB error or 0.
 */
int		 journal_revoke_store(struct journal *, MDB_txn *, struct jop *op, bool sweep);

/* journal_party.c */
/* Stores the party of op (writer thread).  Returns an LMDB error or 0. */
int		 journal_party_store(struct journal *, MDB_txn *, struct jop *op);
/* journal_witness.c */
/* Stores the witness pair of op (writer thread); an LMDB error or 0. */
int		 journal_witness_store(struct journal *, MDB_txn *, struct jop *op);

#endif /* JOURNAL_IMPL_H */
