/*
 * journal.c - the audit journal (DESIGN §7).
 *
 * Every record is a leaf of one RFC 6962 Merkle tree kept in LMDB.  A single
 * writer thread owns all writes: callers on event loops queue operations and
 * return at once; the writer takes everything queued, puts it in one write
 * transaction (group commit), signs a checkpoint for the new tree (while
 * more work waits, at most one a second; the tree a burst ends with is always
 * signed, see journal_wait), commits, and only then reports completion back
 * to each caller's loop.  One transaction per batch means one fsync per
 * batch instead of one per exchange, which is what lets the journal keep up
 * with the gateway while still acknowledging nothing that is not on disk.
 *
 * Named databases:
 *   rec   seq (8 bytes BE)       -> canonical record bytes
 *   leaf  seq (8 bytes BE)       -> SHA-256(0x00 || record), for proofs
 *   node  last seq (8 bytes BE) || level (1 byte)
 *                                -> root of the perfect subtree of 2^level
 *                                   leaves ending at that seq, for proofs
 *   ckpt  tree size (8 bytes BE) -> checkpoint envelope
 *   meta  "cr"                   -> size (8 bytes BE) || compact range peaks
 *         "latest"               -> the newest checkpoint envelope
 *   jti   jti (16 bytes)         -> keep_until, unix seconds (8 bytes BE)
 *   ix    tag || len || value || seq (8 bytes BE) -> empty
 *   rev   'j' || jti, or 's' || subject pseudonym || bundle
 *                                -> revoked_at || keep_until (8 bytes BE each)
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
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <lmdb.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "lianban.h"

#define JOURNAL_MAP_DEFAULT	((size_t)1 << 30)
/* Growth stops here; past it appends fail with journal_unavailable. */
#define JOURNAL_MAP_MAX		(SIZE_MAX / 4)
/* Records (and claims) queued at most; beyond it callers see -1 (503). */
#define JOURNAL_QUEUE_MAX	(8 * JOURNAL_BATCH_MAX)
/* jti entries examined per expiry pass, and the pause between passes. */
#define JOURNAL_EXPIRE_SCAN	1024
#define JOURNAL_EXPIRE_EVERY_MS	1000
/* Leaves per transaction when the node database is built at open. */
#define JOURNAL_NODE_BATCH	(1u << 17)
#define JNODE_KEY_LEN		9
/* Records a query examines at most per call; the cursor resumes from there. */
#define JOURNAL_QUERY_SCAN	20000
#define JOURNAL_QUERY_LIMIT	1000
/* Under load, one checkpoint per this interval is enough (DESIGN §7). */
#define JOURNAL_CKPT_EVERY_US	1000000
#define JOURNAL_HMAC_MIN	16

enum jop_type {
	JOP_APPEND,
	JOP_CLAIM
};

/* One queued operation; owned by the queue, then the writer, then the loop. */
struct jop {
	struct jop		*jo_next;
	enum jop_type		 jo_type;
	struct event_base	*jo_base;
	journal_done_fn		 jo_done;
	journal_claim_fn	 jo_claim;
	void			*jo_arg;
	int			 jo_status;
	uint64_t		 jo_first_seq;
	uint8_t			 jo_jti[16];
	uint64_t		 jo_keep_until;
	size_t			 jo_n;
	struct jrec		 jo_recs[];
};

struct journal {
	MDB_env			*j_env;
	MDB_dbi			 j_rec, j_leaf, j_ckpt, j_meta, j_jti, j_ix;
	MDB_dbi			 j_rev;		/* consent revocations */
	MDB_dbi			 j_node;	/* perfect subtrees, for proofs */
	char			 j_origin[LB_ID_MAX];
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

	/* Committed size, readable from any thread without a lock. */
	_Atomic uint64_t	 j_size;

	/* Writer-only state. */
	pthread_t		 j_writer;
	uint64_t		 j_ckpt_size;	/* size of the newest checkpoint */
	uint64_t		 j_tmax;	/* largest t_ms committed (the 't' index) */
	uint64_t		 j_ckpt_mono_us;	/* last attempt at signing one */
	uint64_t		 j_expire_ms;	/* last expiry pass */
	uint8_t			 j_expire_key[16]; /* where the next pass resumes */
	bool			 j_expire_resume;
};

static const char *const jkind_names[] = {
	[JK_EXCHANGE] = "exchange",
	[JK_ITEM] = "item",
	[JK_DENY] = "deny",
	[JK_ADAPTER] = "adapter",
	[JK_POLICY] = "policy",
	[JK_AUDIT_READ] = "audit-read",
	[JK_REVOKE] = "revoke",
};

static void
be64_put(uint8_t b[8], uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		b[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t
be64_get(const uint8_t b[8])
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	return v;
}

static int
popcount64(uint64_t v)
{
	int n = 0;

	for (; v != 0; v &= v - 1)
		n++;
	return n;
}

/* The nodes a leaf completes: one per trailing one bit of its seq. */
static unsigned
trailing_ones64(uint64_t v)
{
	unsigned n = 0;

	for (; (v & 1) != 0; v >>= 1)
		n++;
	return n;
}

const char *
journal_kind_name(enum jkind k)
{
	if ((unsigned)k >= sizeof(jkind_names) / sizeof(jkind_names[0]))
		return NULL;
	return jkind_names[k];
}

/* Adds a string field unless it is empty; the string is borrowed. */
static void
jrec_put_str(struct mpk_map *m, const char *key, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n > 0)
		mpk_map_put(m, key, mpk_strn(s, n));
}

static void
jrec_put_bin(struct mpk_map *m, const char *key, bool has, const uint8_t *p, size_t n)
{
	if (has)
		mpk_map_put(m, key, mpk_bin(p, n));
}

int
journal_record_pack(const struct jrec *r, uint64_t seq, msgpack_sbuffer *out)
{
	msgpack_zone z;
	struct mpk_map m;
	const char *kind;
	int ret = -1;

	if ((kind = journal_kind_name(r->jr_kind)) == NULL)
		return -1;
	if (!msgpack_zone_init(&z, 1024))
		return -1;
	/* Every field of DESIGN §7 and of registry changes; mpk_pack sorts the keys. */
	mpk_map_init(&m, &z, 22);
	mpk_map_put(&m, "seq", mpk_uint(seq));
	mpk_map_put(&m, "t_ms", mpk_uint(r->jr_t_ms));
	mpk_map_put(&m, "kind", mpk_str(kind));
	jrec_put_bin(&m, "exch", r->jr_has_exch, r->jr_exch, sizeof(r->jr_exch));
	jrec_put_str(&m, "consumer", r->jr_consumer, sizeof(r->jr_consumer));
	jrec_put_str(&m, "dept", r->jr_dept, sizeof(r->jr_dept));
	jrec_put_str(&m, "item", r->jr_item, sizeof(r->jr_item));
	jrec_put_str(&m, "bundle", r->jr_bundle, sizeof(r->jr_bundle));
	jrec_put_bin(&m, "subject", r->jr_has_subject, r->jr_subject, sizeof(r->jr_subject));
	jrec_put_bin(&m, "actor", r->jr_has_actor, r->jr_actor, sizeof(r->jr_actor));
	jrec_put_str(&m, "rel", r->jr_rel, sizeof(r->jr_rel));
	jrec_put_bin(&m, "consent", r->jr_has_consent, r->jr_consent, sizeof(r->jr_consent));
	jrec_put_str(&m, "decision", r->jr_decision, sizeof(r->jr_decision));
	jrec_put_str(&m, "code", r->jr_code, sizeof(r->jr_code));
	jrec_put_bin(&m, "doc", r->jr_has_doc, r->jr_doc, sizeof(r->jr_doc));
	jrec_put_bin(&m, "claim", r->jr_has_claim, r->jr_claim, sizeof(r->jr_claim));
	if (r->jr_has_latency)
		mpk_map_put(&m, "latency_us", mpk_int(r->jr_latency_us));
	jrec_put_str(&m, "id", r->jr_id, sizeof(r->jr_id));
	jrec_put_str(&m, "op", r->jr_op, sizeof(r->jr_op));
	jrec_put_str(&m, "principal", r->jr_principal, sizeof(r->jr_principal));
	if (r->jr_has_version)
		mpk_map_put(&m, "version", mpk_uint(r->jr_version));
	jrec_put_bin(&m, "spec", r->jr_has_spec, r->jr_spec, sizeof(r->jr_spec));
	if (mpk_pack(&m.mm_obj, out, false) == -1)
		goto done;
	ret = 0;
done:
	msgpack_zone_destroy(&z);
	return ret;
}

void
journal_pseudonym(const struct journal *j, const char *id, uint8_t out[32])
{
	unsigned int len = 32;

	/*
	 * HMAC-SHA256 fails only when OpenSSL cannot allocate.  A zeroed or
	 * partial pseudonym would silently merge citizens in the journal, so
	 * treat it like any other allocation failure of the daemon.
	 */
	if (HMAC(EVP_sha256(), j->j_hmac, (int)j->j_hmac_len, (const unsigned char *)id,
	    strlen(id), out, &len) == NULL || len != 32) {
		log_warnx("journal: HMAC-SHA256 failed");
		abort();
	}
}

uint64_t
journal_size(struct journal *j)
{
	return atomic_load(&j->j_size);
}

/*
 * Reader transactions.  MDB_NOTLS lets any thread run them; the shared lock
 * keeps the writer from resizing the map underneath them.
 */
static int
journal_rtxn_begin(struct journal *j, MDB_txn **txn)
{
	int rc;

	pthread_rwlock_rdlock(&j->j_resize);
	if ((rc = mdb_txn_begin(j->j_env, NULL, MDB_RDONLY, txn)) != 0) {
		pthread_rwlock_unlock(&j->j_resize);
		log_warnx("journal: read transaction: %s", mdb_strerror(rc));
		*txn = NULL;
		return -1;
	}
	return 0;
}

static void
journal_rtxn_end(struct journal *j, MDB_txn *txn)
{
	if (txn == NULL)
		return;
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&j->j_resize);
}

/* Number of records visible to txn. */
static int
journal_txn_size(struct journal *j, MDB_txn *txn, uint64_t *size)
{
	MDB_stat st;

	if (mdb_stat(txn, j->j_rec, &st) != 0)
		return -1;
	*size = st.ms_entries;
	return 0;
}

/* Decodes the payload of a checkpoint envelope. */
static int
journal_ckpt_decode(const void *buf, size_t len, uint64_t *size, uint8_t root[32],
    uint64_t *t_ms)
{
	msgpack_zone z;
	struct envelope env;
	const char *why;
	const uint8_t *p;
	size_t n;
	int ret = -1;

	if (!msgpack_zone_init(&z, 1024))
		return -1;
	if (envelope_parse(buf, len, &z, "checkpoint", &env, &why) == -1)
		goto done;
	if (mpk_get_u64(&env.env_claims, "size", size) == -1 ||
	    mpk_get_u64(&env.env_claims, "t_ms", t_ms) == -1 ||
	    mpk_get_bytes(&env.env_claims, "root", &z, &p, &n) == -1 || n != 32)
		goto done;
	memcpy(root, p, 32);
	ret = 0;
done:
	msgpack_zone_destroy(&z);
	return ret;
}

int
journal_checkpoint(struct journal *j, uint8_t **env, size_t *envlen, uint64_t *size,
    uint8_t root[32], uint64_t *t_ms)
{
	MDB_txn *txn = NULL;
	MDB_val k = { 6, "latest" }, v;
	uint8_t *copy = NULL;
	int ret = -1;

	if (journal_rtxn_begin(j, &txn) == -1)
		goto done;
	if (mdb_get(txn, j->j_meta, &k, &v) != 0)
		goto done;
	if (journal_ckpt_decode(v.mv_data, v.mv_size, size, root, t_ms) == -1)
		goto done;
	if ((copy = malloc(v.mv_size)) == NULL)
		goto done;
	memcpy(copy, v.mv_data, v.mv_size);
	*env = copy;
	*envlen = v.mv_size;
	copy = NULL;
	ret = 0;
done:
	journal_rtxn_end(j, txn);
	free(copy);
	return ret;
}

int
journal_leaves(struct journal *j, uint64_t start, uint64_t end, journal_leaf_cb fn, void *arg)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	MDB_cursor_op op = MDB_SET_KEY;
	uint8_t kb[8];
	uint64_t seq, size;
	int ret = -1;

	if (start > end)
		return -1;
	if (journal_rtxn_begin(j, &txn) == -1)
		goto done;
	if (journal_txn_size(j, txn, &size) == -1 || end > size)
		goto done;
	if (mdb_cursor_open(txn, j->j_rec, &cur) != 0)
		goto done;
	be64_put(kb, start);
	k.mv_data = kb;
	k.mv_size = sizeof(kb);
	for (seq = start; seq < end; seq++, op = MDB_NEXT) {
		/* Records are dense from 0, so the cursor must land on seq. */
		if (mdb_cursor_get(cur, &k, &v, op) != 0 || k.mv_size != 8 ||
		    be64_get(k.mv_data) != seq)
			goto done;
		if (fn(arg, seq, v.mv_data, v.mv_size) != 0)
			goto done;
	}
	ret = 0;
done:
	if (cur != NULL)
		mdb_cursor_close(cur);
	journal_rtxn_end(j, txn);
	return ret;
}

/* Leaf and node hashes for the merkle_*_nodes callbacks, read inside one transaction. */
struct jleafrd {
	MDB_txn		*lr_txn;
	MDB_dbi		 lr_dbi;
	MDB_dbi		 lr_node;
};

/* Node index of level (>= 1) covers seqs up to ((index + 1) << level) - 1. */
static void
journal_node_key(uint8_t kb[JNODE_KEY_LEN], unsigned level, uint64_t index)
{
	be64_put(kb, ((index + 1) << level) - 1);
	kb[8] = (uint8_t)level;
}

static int
journal_leaf_read(void *arg, uint64_t idx, uint8_t out[32])
{
	struct jleafrd *lr = arg;
	uint8_t kb[8];
	MDB_val k = { sizeof(kb), kb }, v;

	be64_put(kb, idx);
	if (mdb_get(lr->lr_txn, lr->lr_dbi, &k, &v) != 0 || v.mv_size != 32)
		return -1;
	memcpy(out, v.mv_data, 32);
	return 0;
}

static int
journal_node_read(void *arg, unsigned level, uint64_t index, uint8_t out[32])
{
	struct jleafrd *lr = arg;
	uint8_t kb[JNODE_KEY_LEN];
	MDB_val k = { sizeof(kb), kb }, v;
	int rc;

	if (level == 0 || level > 63)
		return -1;
	journal_node_key(kb, level, index);
	if ((rc = mdb_get(lr->lr_txn, lr->lr_node, &k, &v)) == MDB_NOTFOUND)
		return 1;
	if (rc != 0 || v.mv_size != 32)
		return -1;
	memcpy(out, v.mv_data, 32);
	return 0;
}

int
journal_inclusion(struct journal *j, uint64_t seq, uint64_t size, uint8_t path[][32],
    size_t *npath)
{
	struct jleafrd lr = { NULL, 0, 0 };
	uint64_t have;
	int ret = -1;

	if (seq >= size)
		return -1;
	if (journal_rtxn_begin(j, &lr.lr_txn) == -1)
		goto done;
	lr.lr_dbi = j->j_leaf;
	lr.lr_node = j->j_node;
	if (journal_txn_size(j, lr.lr_txn, &have) == -1 || size > have)
		goto done;
	if (merkle_inclusion_proof_nodes(MK_SHA256, journal_leaf_read, journal_node_read, &lr,
	    seq, size, path, npath) == -1)
		goto done;
	ret = 0;
done:
	journal_rtxn_end(j, lr.lr_txn);
	return ret;
}

int
journal_consistency(struct journal *j, uint64_t first, uint64_t second, uint8_t path[][32],
    size_t *npath)
{
	struct jleafrd lr = { NULL, 0, 0 };
	uint64_t have;
	int ret = -1;

	if (first > second)
		return -1;
	if (journal_rtxn_begin(j, &lr.lr_txn) == -1)
		goto done;
	lr.lr_dbi = j->j_leaf;
	lr.lr_node = j->j_node;
	if (journal_txn_size(j, lr.lr_txn, &have) == -1 || second > have)
		goto done;
	if (merkle_consistency_proof_nodes(MK_SHA256, journal_leaf_read, journal_node_read,
	    &lr, first, second, path, npath) == -1)
		goto done;
	ret = 0;
done:
	journal_rtxn_end(j, lr.lr_txn);
	return ret;
}

int
journal_root_at(struct journal *j, uint64_t size, uint8_t root[32])
{
	struct jleafrd lr = { NULL, 0, 0 };
	struct merkle_cr cr;
	uint8_t kb[8];
	MDB_val k = { sizeof(kb), kb }, v;
	uint64_t have, csize, t_ms;
	int ret = -1;

	if (journal_rtxn_begin(j, &lr.lr_txn) == -1)
		goto done;
	lr.lr_dbi = j->j_leaf;
	lr.lr_node = j->j_node;
	if (journal_txn_size(j, lr.lr_txn, &have) == -1 || size > have)
		goto done;
	if (size == 0) {
		merkle_root(MK_SHA256, NULL, 0, root);
		ret = 0;
		goto done;
	}
	/* A signed checkpoint of that size already holds the root. */
	be64_put(kb, size);
	if (mdb_get(lr.lr_txn, j->j_ckpt, &k, &v) == 0 &&
	    journal_ckpt_decode(v.mv_data, v.mv_size, &csize, root, &t_ms) == 0 &&
	    csize == size) {
		ret = 0;
		goto done;
	}
	/* So does the committed compact range, when size is the current size. */
	pthread_mutex_lock(&j->j_mtx);
	cr = j->j_cr;
	pthread_mutex_unlock(&j->j_mtx);
	if (cr.cr_size == size) {
		merkle_cr_root(MK_SHA256, &cr, root);
		ret = 0;
		goto done;
	}
	if (merkle_subtree_nodes(MK_SHA256, journal_leaf_read, journal_node_read, &lr, 0, size,
	    root) == -1)
		goto done;
	ret = 0;
done:
	journal_rtxn_end(j, lr.lr_txn);
	return ret;
}

/* Indexes. */

#define JIX_KEY_MAX	(2 + 255 + 8)

/* tag || len || value || seq; the key's length. */
static size_t
journal_ix_key(uint8_t key[JIX_KEY_MAX], char tag, const void *val, size_t len, uint64_t seq)
{
	key[0] = (uint8_t)tag;
	key[1] = (uint8_t)len;
	memcpy(key + 2, val, len);
	be64_put(key + 2 + len, seq);
	return 2 + len + 8;
}

static int
journal_ix_put(struct journal *j, MDB_txn *txn, char tag, const void *val, size_t len,
    uint64_t seq)
{
	uint8_t kb[JIX_KEY_MAX];
	MDB_val k, v = { 0, NULL };

	if (len == 0)
		return 0;
	if (len > 255)
		return EINVAL;
	k.mv_data = kb;
	k.mv_size = journal_ix_key(kb, tag, val, len, seq);
	return mdb_put(txn, j->j_ix, &k, &v, 0);
}

/* The index entries of one record; t_ms feeds the running maximum. */
static int
journal_ix_record(struct journal *j, MDB_txn *txn, uint64_t seq, const uint8_t *subject,
    const char *consumer, const char *dept, const char *item, uint64_t t_ms, uint64_t *tmax)
{
	uint8_t tb[8];
	int rc;

	if (subject != NULL && (rc = journal_ix_put(j, txn, 's', subject, 32, seq)) != 0)
		return rc;
	if ((rc = journal_ix_put(j, txn, 'c', consumer, strlen(consumer), seq)) != 0 ||
	    (rc = journal_ix_put(j, txn, 'd', dept, strlen(dept), seq)) != 0 ||
	    (rc = journal_ix_put(j, txn, 'i', item, strlen(item), seq)) != 0)
		return rc;
	if (t_ms > *tmax)
		*tmax = t_ms;
	be64_put(tb, *tmax);
	return journal_ix_put(j, txn, 't', tb, sizeof(tb), seq);
}

/*
 * Indexes records [from, size) from their stored bytes: a journal written
 * before the indexes existed gets them when it is opened.
 */
static int
journal_ix_rebuild(struct journal *j, MDB_txn *txn, uint64_t from, uint64_t size)
{
	MDB_val k, v;
	msgpack_zone z;
	msgpack_object rec;
	const msgpack_object *o;
	uint8_t kb[8];
	char consumer[LB_ID_MAX], dept[LB_ID_MAX], item[LB_ITEM_MAX];
	const uint8_t *subject;
	uint64_t seq, t_ms;
	int rc = 0;

	if (!msgpack_zone_init(&z, 4096))
		return ENOMEM;
	for (seq = from; seq < size; seq++) {
		be64_put(kb, seq);
		k.mv_data = kb;
		k.mv_size = sizeof(kb);
		if ((rc = mdb_get(txn, j->j_rec, &k, &v)) != 0)
			break;
		msgpack_zone_clear(&z);
		if (mpk_unpack(v.mv_data, v.mv_size, &z, &rec) != 0 ||
		    mpk_get_u64(&rec, "t_ms", &t_ms) != 0) {
			rc = EINVAL;
			break;
		}
		consumer[0] = dept[0] = item[0] = '\0';
		(void)mpk_get_str(&rec, "consumer", consumer, sizeof(consumer));
		(void)mpk_get_str(&rec, "dept", dept, sizeof(dept));
		(void)mpk_get_str(&rec, "item", item, sizeof(item));
		subject = NULL;
		if ((o = mpk_get(&rec, "subject")) != NULL && o->type == MSGPACK_OBJECT_BIN &&
		    o->via.bin.size == 32)
			subject = (const uint8_t *)o->via.bin.ptr;
		if ((rc = journal_ix_record(j, txn, seq, subject, consumer, dept, item, t_ms,
		    &j->j_tmax)) != 0)
			break;
	}
	msgpack_zone_destroy(&z);
	return rc;
}

/* Whether the decoded record rec passes every filter of f. */
static bool
journal_match(const struct journal_filter *f, const msgpack_object *rec)
{
	const msgpack_object *o;
	uint64_t t_ms;

	if (f->jf_has_subject && ((o = mpk_get(rec, "subject")) == NULL ||
	    o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != 32 ||
	    memcmp(o->via.bin.ptr, f->jf_subject, 32) != 0))
		return false;
	if (f->jf_consumer[0] != '\0' && !mpk_str_eq(mpk_get(rec, "consumer"), f->jf_consumer))
		return false;
	if (f->jf_dept[0] != '\0' && !mpk_str_eq(mpk_get(rec, "dept"), f->jf_dept))
		return false;
	if (f->jf_item[0] != '\0' && !mpk_str_eq(mpk_get(rec, "item"), f->jf_item))
		return false;
	if (mpk_get_u64(rec, "t_ms", &t_ms) != 0 || t_ms < f->jf_since_ms ||
	    (f->jf_until_ms != 0 && t_ms >= f->jf_until_ms))
		return false;
	return true;
}

int
journal_query(struct journal *j, const struct journal_filter *f, journal_leaf_cb fn, void *arg,
    bool *more, uint64_t *next)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	MDB_cursor_op op = MDB_SET_RANGE, step;
	msgpack_zone z;
	msgpack_object rec;
	uint8_t kb[JIX_KEY_MAX], tb[8], prefix[JIX_KEY_MAX];
	size_t plen = 0, limit, found = 0, scanned = 0;
	uint64_t start, seq, last = 0;
	bool have_last = false;
	int rc, ret = -1;

	*more = false;
	*next = 0;
	limit = f->jf_limit == 0 || f->jf_limit > JOURNAL_QUERY_LIMIT ? JOURNAL_QUERY_LIMIT :
	    f->jf_limit;
	if (f->jf_has_after && f->jf_after == UINT64_MAX)
		return 0;
	start = f->jf_has_after ? f->jf_after + 1 : 0;
	if (!msgpack_zone_init(&z, 4096))
		return -1;
	if (journal_rtxn_begin(j, &txn) == -1)
		goto done;
	if (mdb_cursor_open(txn, j->j_ix, &cur) != 0)
		goto done;
	/* No record before the first whose running maximum reaches since_ms. */
	if (f->jf_since_ms > 0) {
		be64_put(tb, f->jf_since_ms);
		k.mv_data = kb;
		k.mv_size = journal_ix_key(kb, 't', tb, sizeof(tb), 0);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND || (rc == 0 && (k.mv_size != 2 + 8 + 8 ||
		    ((uint8_t *)k.mv_data)[0] != 't'))) {
			ret = 0;
			goto done;
		}
		if (rc != 0)
			goto done;
		seq = be64_get((uint8_t *)k.mv_data + 10);
		if (seq > start)
			start = seq;
	}
	/* Drive by the most selective index asked for, else by the records. */
	if (f->jf_has_subject)
		plen = journal_ix_key(prefix, 's', f->jf_subject, 32, 0) - 8;
	else if (f->jf_item[0] != '\0')
		plen = journal_ix_key(prefix, 'i', f->jf_item, strlen(f->jf_item), 0) - 8;
	else if (f->jf_consumer[0] != '\0')
		plen = journal_ix_key(prefix, 'c', f->jf_consumer, strlen(f->jf_consumer), 0) - 8;
	else if (f->jf_dept[0] != '\0')
		plen = journal_ix_key(prefix, 'd', f->jf_dept, strlen(f->jf_dept), 0) - 8;
	if (plen == 0) {
		mdb_cursor_close(cur);
		cur = NULL;
		if (mdb_cursor_open(txn, j->j_rec, &cur) != 0)
			goto done;
		be64_put(kb, start);
		k.mv_data = kb;
		k.mv_size = 8;
	} else {
		memcpy(kb, prefix, plen);
		be64_put(kb + plen, start);
		k.mv_data = kb;
		k.mv_size = plen + 8;
	}
	step = f->jf_newest_first ? MDB_PREV : MDB_NEXT;
	if (f->jf_newest_first) {
		/* Start below the first key at or above the bound, or at the end. */
		be64_put(kb + plen, f->jf_has_before ? f->jf_before : UINT64_MAX);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc != 0 && rc != MDB_NOTFOUND)
			goto done;
		op = rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV;
	}
	for (;; op = step) {
		if ((rc = mdb_cursor_get(cur, &k, &v, op)) == MDB_NOTFOUND)
			break;
		if (rc != 0)
			goto done;
		if (plen == 0) {
			if (k.mv_size != 8)
				goto done;
			seq = be64_get(k.mv_data);
		} else {
			if (k.mv_size != plen + 8 || memcmp(k.mv_data, prefix, plen) != 0)
				break;
			seq = be64_get((uint8_t *)k.mv_data + plen);
		}
		if (f->jf_newest_first ? seq < start : f->jf_has_before && seq >= f->jf_before)
			break;
		if (found == limit || scanned == JOURNAL_QUERY_SCAN) {
			/* There is more to look at: the next page resumes after last. */
			*more = have_last;
			break;
		}
		scanned++;
		if (plen != 0) {
			be64_put(tb, seq);
			k.mv_data = tb;
			k.mv_size = sizeof(tb);
			if (mdb_get(txn, j->j_rec, &k, &v) != 0)
				goto done;
		}
		msgpack_zone_clear(&z);
		if (mpk_unpack(v.mv_data, v.mv_size, &z, &rec) != 0)
			goto done;
		if (journal_match(f, &rec)) {
			if (fn(arg, seq, v.mv_data, v.mv_size) != 0)
				goto done;
			found++;
		}
		last = seq;
		have_last = true;
	}
	*next = last;
	ret = 0;
done:
	if (cur != NULL)
		mdb_cursor_close(cur);
	journal_rtxn_end(j, txn);
	msgpack_zone_destroy(&z);
	return ret;
}

/* Queueing, from any thread. */

static int
journal_enqueue(struct journal *j, struct jop *op, size_t weight)
{
	int ret = -1;

	pthread_mutex_lock(&j->j_mtx);
	if (j->j_closing || j->j_queued + weight > JOURNAL_QUEUE_MAX)
		goto done;
	op->jo_next = NULL;
	*j->j_tail = op;
	j->j_tail = &op->jo_next;
	j->j_queued += weight;
	pthread_cond_signal(&j->j_cond);
	ret = 0;
done:
	pthread_mutex_unlock(&j->j_mtx);
	return ret;
}

int
journal_append(struct journal *j, struct event_base *base, const struct jrec *recs, size_t n,
    journal_done_fn fn, void *arg)
{
	struct jop *op = NULL;
	size_t i;
	int ret = -1;

	if (n == 0 || n > JOURNAL_BATCH_MAX)
		goto done;
	/* Refuse bad records here so that one cannot fail a whole group commit. */
	for (i = 0; i < n; i++)
		if (journal_kind_name(recs[i].jr_kind) == NULL)
			goto done;
	if ((op = calloc(1, sizeof(*op) + n * sizeof(recs[0]))) == NULL)
		goto done;
	op->jo_type = JOP_APPEND;
	op->jo_base = base;
	op->jo_done = fn;
	op->jo_arg = arg;
	op->jo_n = n;
	memcpy(op->jo_recs, recs, n * sizeof(recs[0]));
	if (journal_enqueue(j, op, n) == -1)
		goto done;
	op = NULL;
	ret = 0;
done:
	free(op);
	return ret;
}

int
journal_jti_claim(struct journal *j, struct event_base *base, const uint8_t jti[16],
    uint64_t keep_until, journal_claim_fn fn, void *arg)
{
	struct jop *op = NULL;
	int ret = -1;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		goto done;
	op->jo_type = JOP_CLAIM;
	op->jo_base = base;
	op->jo_claim = fn;
	op->jo_arg = arg;
	memcpy(op->jo_jti, jti, 16);
	op->jo_keep_until = keep_until;
	if (journal_enqueue(j, op, 1) == -1)
		goto done;
	op = NULL;
	ret = 0;
done:
	free(op);
	return ret;
}

/* The writer thread. */

static int
journal_put_claim(struct journal *j, MDB_txn *txn, struct jop *op)
{
	uint8_t vb[8];
	MDB_val k = { 16, op->jo_jti }, v = { sizeof(vb), vb };
	int rc;

	/*
	 * A claim that arrives after the time its jti would be kept until is
	 * refused: expiry may already have removed the first claim of the
	 * same token, and the insert would then let a replay through.  The
	 * token was valid when checked, but has expired on its way here.
	 */
	if (op->jo_keep_until < now_ms() / 1000) {
		op->jo_status = 2;
		return 0;
	}
	be64_put(vb, op->jo_keep_until);
	/*
	 * The insert itself is the replay check: of two claims of one jti,
	 * even inside one transaction, only the first put succeeds.
	 */
	rc = mdb_put(txn, j->j_jti, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		op->jo_status = 1;
		return 0;
	}
	if (rc == 0)
		op->jo_status = 0;
	return rc;
}

/* Stores the n perfect subtrees that the leaf just appended to cr completed. */
static int
journal_put_nodes(struct journal *j, MDB_txn *txn, const struct merkle_cr *cr,
    const uint8_t nodes[][32], int n)
{
	uint8_t kb[JNODE_KEY_LEN];
	MDB_val k = { sizeof(kb), kb }, v;
	int l, rc;

	for (l = 1; l <= n; l++) {
		journal_node_key(kb, (unsigned)l, (cr->cr_size >> l) - 1);
		v.mv_data = (void *)(uintptr_t)nodes[l - 1];
		v.mv_size = 32;
		if ((rc = mdb_put(txn, j->j_node, &k, &v, MDB_APPEND)) != 0)
			return rc;
	}
	return 0;
}

static int
journal_put_recs(struct journal *j, MDB_txn *txn, struct jop *op, struct merkle_cr *cr,
    uint64_t *tmax, msgpack_sbuffer *sb)
{
	const struct jrec *r;
	uint8_t kb[8], leaf[32], nodes[64][32];
	MDB_val k = { sizeof(kb), kb }, v;
	size_t i;
	int n, rc;

	op->jo_first_seq = cr->cr_size;
	for (i = 0; i < op->jo_n; i++) {
		r = &op->jo_recs[i];
		msgpack_sbuffer_clear(sb);
		if (journal_record_pack(r, cr->cr_size, sb) == -1)
			return EINVAL;
		be64_put(kb, cr->cr_size);
		v.mv_data = sb->data;
		v.mv_size = sb->size;
		/* Seqs only grow, so MDB_APPEND both checks that and saves page splits. */
		if ((rc = mdb_put(txn, j->j_rec, &k, &v, MDB_APPEND)) != 0)
			return rc;
		merkle_leaf_hash(MK_SHA256, sb->data, sb->size, leaf);
		v.mv_data = leaf;
		v.mv_size = sizeof(leaf);
		if ((rc = mdb_put(txn, j->j_leaf, &k, &v, MDB_APPEND)) != 0)
			return rc;
		if ((rc = journal_ix_record(j, txn, cr->cr_size,
		    r->jr_has_subject ? r->jr_subject : NULL, r->jr_consumer, r->jr_dept,
		    r->jr_item, r->jr_t_ms, tmax)) != 0)
			return rc;
		n = merkle_cr_append_nodes(MK_SHA256, cr, leaf, nodes);
		if ((rc = journal_put_nodes(j, txn, cr, (const uint8_t (*)[32])nodes, n)) != 0)
			return rc;
	}
	op->jo_status = 0;
	return 0;
}

static int
journal_put_cr(struct journal *j, MDB_txn *txn, const struct merkle_cr *cr)
{
	uint8_t buf[8 + sizeof(cr->cr_peak)];
	MDB_val k = { 2, "cr" }, v = { 8 + (size_t)cr->cr_n * 32, buf };

	be64_put(buf, cr->cr_size);
	memcpy(buf + 8, cr->cr_peak, (size_t)cr->cr_n * 32);
	return mdb_put(txn, j->j_meta, &k, &v, 0);
}

/*
 * Removes a bounded number of expired jti entries, resuming where the last
 * pass stopped, so a large replay table never makes one commit slow.
 */
static int
journal_expire(struct journal *j, MDB_txn *txn)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	MDB_cursor_op op;
	uint8_t last[16];
	bool have = false;
	uint64_t now = now_ms(), now_s = now / 1000;
	int n, rc;

	if (now - j->j_expire_ms < JOURNAL_EXPIRE_EVERY_MS)
		return 0;
	j->j_expire_ms = now;
	if ((rc = mdb_cursor_open(txn, j->j_jti, &cur)) != 0)
		goto done;
	k.mv_data = j->j_expire_key;
	k.mv_size = sizeof(j->j_expire_key);
	op = j->j_expire_resume ? MDB_SET_RANGE : MDB_FIRST;
	for (n = 0; n < JOURNAL_EXPIRE_SCAN; n++) {
		if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0)
			break;
		/* After a delete, MDB_NEXT yields the entry that followed it. */
		op = MDB_NEXT;
		if (k.mv_size == sizeof(last)) {
			memcpy(last, k.mv_data, sizeof(last));
			have = true;
		}
		if (v.mv_size == 8 && be64_get(v.mv_data) < now_s &&
		    (rc = mdb_cursor_del(cur, 0)) != 0)
			goto done;
	}
	if (rc == MDB_NOTFOUND) {
		/* Reached the end: the next pass starts from the beginning. */
		j->j_expire_resume = false;
		rc = 0;
	} else if (rc == 0 && have) {
		/* The first key >= last is where this pass stopped. */
		memcpy(j->j_expire_key, last, sizeof(last));
		j->j_expire_resume = true;
	}
done:
	if (cur != NULL)
		mdb_cursor_close(cur);
	return rc;
}

/* Whether this commit should carry a checkpoint (DESIGN §7: at most 1/s under load). */
static bool
journal_ckpt_wanted(struct journal *j)
{
	bool more;

	pthread_mutex_lock(&j->j_mtx);
	more = j->j_head != NULL;
	pthread_mutex_unlock(&j->j_mtx);
	return !more || j->j_ckpt_size == 0 ||
	    now_us_mono() - j->j_ckpt_mono_us >= JOURNAL_CKPT_EVERY_US;
}

/*
 * Signs a checkpoint for cr and stores it.  *did_sign is false when signing
 * failed: the records still commit (they matter more than the checkpoint,
 * and the next commit signs again), so that is logged, not returned.
 */
static int
journal_put_ckpt(struct journal *j, MDB_txn *txn, const struct merkle_cr *cr, bool *did_sign)
{
	msgpack_zone *z;
	struct mpk_map m;
	msgpack_sbuffer payload, env;
	uint8_t root[32], kb[8];
	MDB_val k, v;
	int rc = 0;

	*did_sign = false;
	msgpack_sbuffer_init(&payload);
	msgpack_sbuffer_init(&env);
	if ((z = msgpack_zone_new(256)) == NULL) {
		log_warnx("journal: checkpoint %llu not signed: out of memory",
		    (unsigned long long)cr->cr_size);
		goto done;
	}
	merkle_cr_root(MK_SHA256, cr, root);
	mpk_map_init(&m, z, 4);
	mpk_map_put(&m, "origin", mpk_str(j->j_origin));
	mpk_map_put(&m, "size", mpk_uint(cr->cr_size));
	mpk_map_put(&m, "root", mpk_bin(root, sizeof(root)));
	mpk_map_put(&m, "t_ms", mpk_uint(now_ms()));
	if (mpk_pack(&m.mm_obj, &payload, false) == -1 ||
	    envelope_sign(j->j_key, j->j_kid, "checkpoint", NULL, 0, payload.data,
	    payload.size, &env) == -1) {
		log_warnx("journal: checkpoint %llu not signed",
		    (unsigned long long)cr->cr_size);
		goto done;
	}
	be64_put(kb, cr->cr_size);
	k.mv_data = kb;
	k.mv_size = sizeof(kb);
	v.mv_data = env.data;
	v.mv_size = env.size;
	if ((rc = mdb_put(txn, j->j_ckpt, &k, &v, 0)) != 0)
		goto done;
	k.mv_data = "latest";
	k.mv_size = 6;
	if ((rc = mdb_put(txn, j->j_meta, &k, &v, 0)) != 0)
		goto done;
	*did_sign = true;
done:
	if (z != NULL)
		msgpack_zone_free(z);
	msgpack_sbuffer_destroy(&payload);
	msgpack_sbuffer_destroy(&env);
	return rc;
}

/*
 * One attempt at committing a batch.  Returns 0, MDB_MAP_FULL (nothing was
 * written; grow and retry) or another error.  In-memory state changes only
 * after mdb_txn_commit returned, so a failed attempt leaves no trace.
 */
static int
journal_txn(struct journal *j, struct jop *batch)
{
	MDB_txn *txn = NULL;
	msgpack_sbuffer sb;
	struct merkle_cr cr = j->j_cr;
	struct jop *op;
	uint64_t tmax = j->j_tmax;
	bool ckpt = false;
	int rc;

	msgpack_sbuffer_init(&sb);
	if ((rc = mdb_txn_begin(j->j_env, NULL, 0, &txn)) != 0)
		goto done;
	/* Queue order is commit order: claims and appends interleave as queued. */
	for (op = batch; op != NULL; op = op->jo_next) {
		if (op->jo_type == JOP_CLAIM)
			rc = journal_put_claim(j, txn, op);
		else
			rc = journal_put_recs(j, txn, op, &cr, &tmax, &sb);
		if (rc != 0)
			goto done;
	}
	if ((rc = journal_expire(j, txn)) != 0)
		goto done;
	if (cr.cr_size != j->j_cr.cr_size && (rc = journal_put_cr(j, txn, &cr)) != 0)
		goto done;
	if (cr.cr_size > j->j_ckpt_size && journal_ckpt_wanted(j)) {
		/*
		 * The attempt counts even if signing or the commit fails: the
		 * writer then retries a second later rather than at once.
		 */
		j->j_ckpt_mono_us = now_us_mono();
		if ((rc = journal_put_ckpt(j, txn, &cr, &ckpt)) != 0)
			goto done;
	}
	/*
	 * LMDB syncs data and meta pages before this returns (no MDB_NOSYNC):
	 * the records are durable once it succeeds, which is what every
	 * completion below promises.  The transaction is gone either way.
	 */
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0)
		goto done;
	j->j_tmax = tmax;
	if (ckpt)
		j->j_ckpt_size = cr.cr_size;
	pthread_mutex_lock(&j->j_mtx);
	j->j_cr = cr;
	pthread_mutex_unlock(&j->j_mtx);
	atomic_store(&j->j_size, cr.cr_size);
done:
	if (txn != NULL)
		mdb_txn_abort(txn);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* Doubles the map.  No transaction of this process may be open meanwhile. */
static int
journal_grow(struct journal *j)
{
	MDB_envinfo info = { 0 };
	size_t size;
	int rc;

	if ((rc = mdb_env_info(j->j_env, &info)) != 0)
		goto done;
	if (info.me_mapsize > JOURNAL_MAP_MAX / 2) {
		rc = ENOSPC;
		goto done;
	}
	size = info.me_mapsize * 2;
	pthread_rwlock_wrlock(&j->j_resize);
	rc = mdb_env_set_mapsize(j->j_env, size);
	pthread_rwlock_unlock(&j->j_resize);
	if (rc == 0)
		log_info("journal: map grown to %zu bytes", size);
done:
	if (rc != 0)
		log_warnx("journal: cannot grow the map of %zu bytes: %s", info.me_mapsize,
		    mdb_strerror(rc));
	return rc == 0 ? 0 : -1;
}

static void
journal_commit(struct journal *j, struct jop *batch)
{
	struct jop *op;
	int rc;

	while ((rc = journal_txn(j, batch)) == MDB_MAP_FULL)
		if (journal_grow(j) == -1)
			break;
	if (rc == 0)
		return;
	log_warnx("journal: commit failed: %s", mdb_strerror(rc));
	for (op = batch; op != NULL; op = op->jo_next)
		op->jo_status = -1;
}

/* Runs on the caller's loop (or on the writer when there is none). */
static void
journal_op_done(void *arg)
{
	struct jop *op = arg;

	if (op->jo_type == JOP_APPEND && op->jo_done != NULL)
		op->jo_done(op->jo_arg, op->jo_status, op->jo_first_seq);
	else if (op->jo_type == JOP_CLAIM && op->jo_claim != NULL)
		op->jo_claim(op->jo_arg, op->jo_status);
	free(op);
}

static void
journal_post(struct jop *batch)
{
	struct jop *op, *next;

	for (op = batch; op != NULL; op = next) {
		next = op->jo_next;
		if (op->jo_base == NULL)
			journal_op_done(op);
		else if (loop_post(op->jo_base, journal_op_done, op) == -1) {
			/* The caller never hears back; its request times out. */
			log_warnx("journal: cannot post a completion");
			free(op);
		}
	}
}

/* Detaches the queued operations, up to JOURNAL_BATCH_MAX records. */
static struct jop *
journal_take(struct journal *j)
{
	struct jop *batch = j->j_head, **tail = &j->j_head, *op;
	size_t n = 0, w;

	while ((op = *tail) != NULL) {
		w = op->jo_type == JOP_APPEND ? op->jo_n : 1;
		if (n > 0 && n + w > JOURNAL_BATCH_MAX)
			break;
		n += w;
		tail = &op->jo_next;
	}
	j->j_head = *tail;
	*tail = NULL;
	if (j->j_head == NULL)
		j->j_tail = &j->j_head;
	j->j_queued -= n;
	return batch;
}

/*
 * Waits, with j_mtx held, until there is work: queued operations, or a
 * committed tree that has gone unsigned for a second.  A commit under load
 * skips its checkpoint when more work is queued, and the next commit signs;
 * but if that next commit fails (or signing did), nothing would follow, so
 * the writer wakes by itself to sign the tree it has.  On closing it tries
 * once more, so the journal a restart finds is signed.
 */
static void
journal_wait(struct journal *j, bool *final)
{
	struct timespec ts;
	uint64_t now, due;
	int rc = 0;

	while (j->j_head == NULL && !j->j_ckpt_due) {
		if (j->j_cr.cr_size <= j->j_ckpt_size) {
			if (j->j_closing)
				return;
			pthread_cond_wait(&j->j_cond, &j->j_mtx);
			continue;
		}
		if (j->j_closing) {
			j->j_ckpt_due = !*final;
			*final = true;
			return;
		}
		now = now_us_mono();
		due = j->j_ckpt_mono_us + JOURNAL_CKPT_EVERY_US;
		if (now >= due || rc == ETIMEDOUT) {
			j->j_ckpt_due = true;
			return;
		}
		/* The condition variable runs on CLOCK_MONOTONIC (journal_open). */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)((due - now) / 1000000);
		ts.tv_nsec += (long)((due - now) % 1000000) * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		rc = pthread_cond_timedwait(&j->j_cond, &j->j_mtx, &ts);
	}
}

static void *
journal_writer(void *arg)
{
	struct journal *j = arg;
	struct jop *batch;
	bool final = false;

	for (;;) {
		pthread_mutex_lock(&j->j_mtx);
		journal_wait(j, &final);
		if (j->j_head == NULL && !j->j_ckpt_due) {
			/* Closing, and everything accepted is committed. */
			pthread_mutex_unlock(&j->j_mtx);
			break;
		}
		batch = journal_take(j);
		j->j_ckpt_due = false;
		pthread_mutex_unlock(&j->j_mtx);

		journal_commit(j, batch);
		journal_post(batch);
	}
	return NULL;
}

/* Opening and closing. */

/*
 * Opens the databases and restores the tree from meta "cr", checking it
 * against the records actually stored, so a damaged journal is refused
 * rather than extended into a different tree.
 */
static int
journal_restore(struct journal *j, char *err, size_t errlen)
{
	static const char *const names[] = { "rec", "leaf", "ckpt", "meta", "jti", "ix",
	    "rev", "node" };
	MDB_dbi *const dbis[] = { &j->j_rec, &j->j_leaf, &j->j_ckpt, &j->j_meta, &j->j_jti,
	    &j->j_ix, &j->j_rev, &j->j_node };
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_stat rst, lst;
	MDB_val k = { 2, "cr" }, v;
	uint8_t root[32], tk[JIX_KEY_MAX];
	uint64_t size = 0, csize, t_ms, indexed = 0;
	char why[128] = "";
	size_t i;
	int rc, ret = -1;

	if ((rc = mdb_txn_begin(j->j_env, NULL, 0, &txn)) != 0)
		goto done;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((rc = mdb_dbi_open(txn, names[i], MDB_CREATE, dbis[i])) != 0)
			goto done;
	if ((rc = mdb_stat(txn, j->j_rec, &rst)) != 0 ||
	    (rc = mdb_stat(txn, j->j_leaf, &lst)) != 0)
		goto done;
	merkle_cr_init(&j->j_cr);
	if ((rc = mdb_get(txn, j->j_meta, &k, &v)) == 0) {
		size = v.mv_size >= 8 ? be64_get(v.mv_data) : 0;
		if (v.mv_size != 8 + (size_t)popcount64(size) * 32) {
			snprintf(why, sizeof(why), "malformed compact range");
			goto done;
		}
		j->j_cr.cr_size = size;
		j->j_cr.cr_n = popcount64(size);
		memcpy(j->j_cr.cr_peak, (uint8_t *)v.mv_data + 8, v.mv_size - 8);
	} else if (rc != MDB_NOTFOUND)
		goto done;
	if (rst.ms_entries != size || lst.ms_entries != size) {
		snprintf(why, sizeof(why), "tree size %llu but %zu records and %zu leaves",
		    (unsigned long long)size, rst.ms_entries, lst.ms_entries);
		goto done;
	}
	if (size > 0) {
		/* Dense from 0 and counted right means the last key is size - 1. */
		if ((rc = mdb_cursor_open(txn, j->j_rec, &cur)) != 0 ||
		    (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) != 0)
			goto done;
		if (k.mv_size != 8 || be64_get(k.mv_data) != size - 1) {
			snprintf(why, sizeof(why), "records are not numbered 0 to %llu",
			    (unsigned long long)size - 1);
			goto done;
		}
		mdb_cursor_close(cur);
		cur = NULL;
		/*
		 * The last 't' entry names the last indexed record and the
		 * running maximum; records after it (none, unless the journal
		 * predates its indexes) are indexed now.
		 */
		if ((rc = mdb_cursor_open(txn, j->j_ix, &cur)) != 0)
			goto done;
		memset(tk, 0xff, 2 + 8 + 8);
		tk[0] = 't';
		tk[1] = 8;
		k.mv_data = tk;
		k.mv_size = 2 + 8 + 8;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		rc = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV) :
		    mdb_cursor_get(cur, &k, &v, MDB_LAST);
		if (rc == 0 && k.mv_size == 2 + 8 + 8 && ((uint8_t *)k.mv_data)[0] == 't') {
			j->j_tmax = be64_get((uint8_t *)k.mv_data + 2);
			indexed = be64_get((uint8_t *)k.mv_data + 10) + 1;
		} else if (rc != 0 && rc != MDB_NOTFOUND)
			goto done;
		mdb_cursor_close(cur);
		cur = NULL;
		if (indexed > size) {
			snprintf(why, sizeof(why), "the index names records beyond the tree");
			goto done;
		}
		if (indexed < size) {
			log_info("journal: indexing records %llu to %llu",
			    (unsigned long long)indexed, (unsigned long long)size - 1);
			if ((rc = journal_ix_rebuild(j, txn, indexed, size)) != 0)
				goto done;
		}
	}
	k.mv_data = "latest";
	k.mv_size = 6;
	if ((rc = mdb_get(txn, j->j_meta, &k, &v)) == 0) {
		if (journal_ckpt_decode(v.mv_data, v.mv_size, &csize, root, &t_ms) == -1 ||
		    csize > size) {
			snprintf(why, sizeof(why), "malformed latest checkpoint");
			goto done;
		}
		j->j_ckpt_size = csize;
	} else if (rc != MDB_NOTFOUND)
		goto done;
	/* A commit that skipped its checkpoint may have been the last one. */
	j->j_ckpt_due = size > j->j_ckpt_size;
	/* The handles opened here become usable by all transactions on commit. */
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0)
		goto done;
	atomic_store(&j->j_size, size);
	ret = 0;
done:
	if (ret == -1)
		snprintf(err, errlen, "journal: %s", why[0] != '\0' ? why : mdb_strerror(rc));
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	return ret;
}

/*
 * One transaction of journal_nodes_build.  Nodes are stored in seq order, so
 * every seq before the last stored node's has all its nodes; the build
 * resumes after that seq (or at it, when only some of its nodes are there),
 * rebuilds the compact range at that point from the stored peaks, and adds
 * the nodes of up to JOURNAL_NODE_BATCH more leaves.  *built counts the
 * nodes written; *more is false once every leaf up to size is covered.
 */
static int
journal_nodes_batch(struct journal *j, uint64_t size, uint64_t *built, bool *more,
    char *why, size_t whylen)
{
	struct jleafrd lr = { NULL, 0, 0 };
	struct merkle_cr cr;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	MDB_cursor_op op = MDB_SET_KEY;
	uint8_t kb[8], nodes[64][32];
	uint64_t from = 0, seq, end, pos = 0;
	uint64_t added = 0;
	int b, n, rc;

	*more = false;
	if ((rc = mdb_txn_begin(j->j_env, NULL, 0, &lr.lr_txn)) != 0)
		goto done;
	lr.lr_dbi = j->j_leaf;
	lr.lr_node = j->j_node;
	if ((rc = mdb_cursor_open(lr.lr_txn, j->j_node, &cur)) != 0)
		goto done;
	if ((rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) == 0) {
		if (k.mv_size != JNODE_KEY_LEN || be64_get(k.mv_data) >= size) {
			snprintf(why, whylen,
			    "the node database names leaves beyond the tree");
			rc = EINVAL;
			goto done;
		}
		from = be64_get(k.mv_data);
		/*
		 * Seq from completes one node per trailing one bit.  If its
		 * highest one is there, so is the rest; otherwise its nodes
		 * are removed and it is done again.
		 */
		if (((uint8_t *)k.mv_data)[8] == trailing_ones64(from))
			from++;
		else {
			while (rc == 0 && be64_get(k.mv_data) == from) {
				if ((rc = mdb_cursor_del(cur, 0)) != 0 ||
				    (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) != 0)
					break;
				if (k.mv_size != JNODE_KEY_LEN) {
					rc = EINVAL;
					goto done;
				}
			}
			if (rc != 0 && rc != MDB_NOTFOUND)
				goto done;
		}
	} else if (rc != MDB_NOTFOUND)
		goto done;
	mdb_cursor_close(cur);
	cur = NULL;
	rc = 0;
	if (from >= size)
		goto done;

	/* The peaks of the first from leaves are stored nodes (or one leaf). */
	merkle_cr_init(&cr);
	for (b = 63; b >= 0; b--) {
		if ((from & ((uint64_t)1 << b)) == 0)
			continue;
		if (b == 0)
			rc = journal_leaf_read(&lr, pos, cr.cr_peak[cr.cr_n]);
		else
			rc = journal_node_read(&lr, (unsigned)b, pos >> b,
			    cr.cr_peak[cr.cr_n]);
		if (rc != 0) {
			snprintf(why, whylen, "the node database lacks a node below seq %llu",
			    (unsigned long long)from);
			rc = EINVAL;
			goto done;
		}
		cr.cr_n++;
		pos += (uint64_t)1 << b;
	}
	cr.cr_size = from;

	end = size - from > JOURNAL_NODE_BATCH ? from + JOURNAL_NODE_BATCH : size;
	if ((rc = mdb_cursor_open(lr.lr_txn, j->j_leaf, &cur)) != 0)
		goto done;
	be64_put(kb, from);
	k.mv_data = kb;
	k.mv_size = sizeof(kb);
	for (seq = from; seq < end; seq++, op = MDB_NEXT) {
		if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0 || k.mv_size != 8 ||
		    be64_get(k.mv_data) != seq || v.mv_size != 32) {
			snprintf(why, whylen, "leaf %llu is missing or malformed",
			    (unsigned long long)seq);
			rc = rc != 0 ? rc : EINVAL;
			goto done;
		}
		n = merkle_cr_append_nodes(MK_SHA256, &cr, v.mv_data, nodes);
		if ((rc = journal_put_nodes(j, lr.lr_txn, &cr, (const uint8_t (*)[32])nodes,
		    n)) != 0)
			goto done;
		added += (uint64_t)n;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	if (added == 0 && end == size)
		goto done;
	rc = mdb_txn_commit(lr.lr_txn);
	lr.lr_txn = NULL;
	if (rc != 0)
		goto done;
	*built += added;
	*more = end < size;
done:
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (lr.lr_txn != NULL)
		mdb_txn_abort(lr.lr_txn);
	return rc;
}

/*
 * Journals written before the node database existed, or whose node database
 * is behind the tree, get their nodes built here, in batches of one
 * transaction each so that a large journal never needs one huge transaction
 * and an interrupted build resumes where it stopped.  Afterwards the stored
 * nodes must give the root of the committed compact range, or the journal is
 * refused like any other damage.  Runs before the writer starts.
 */
static int
journal_nodes_build(struct journal *j, char *err, size_t errlen)
{
	struct jleafrd lr = { NULL, 0, 0 };
	uint8_t want[32], got[32];
	uint64_t size = j->j_cr.cr_size, built = 0;
	char why[128] = "";
	bool more = true;
	int rc = 0, ret = -1;

	while (more) {
		rc = journal_nodes_batch(j, size, &built, &more, why, sizeof(why));
		if (rc == MDB_MAP_FULL) {
			if (journal_grow(j) == -1)
				goto done;
			more = true;
		} else if (rc != 0)
			goto done;
	}
	if (built > 0)
		log_info("journal: built %llu tree nodes for %llu records",
		    (unsigned long long)built, (unsigned long long)size);
	if ((rc = mdb_txn_begin(j->j_env, NULL, MDB_RDONLY, &lr.lr_txn)) != 0)
		goto done;
	lr.lr_dbi = j->j_leaf;
	lr.lr_node = j->j_node;
	merkle_cr_root(MK_SHA256, &j->j_cr, want);
	if (merkle_subtree_nodes(MK_SHA256, journal_leaf_read, journal_node_read, &lr, 0,
	    size, got) == -1 || memcmp(want, got, sizeof(want)) != 0) {
		snprintf(why, sizeof(why), "the node database disagrees with the tree");
		goto done;
	}
	ret = 0;
done:
	if (lr.lr_txn != NULL)
		mdb_txn_abort(lr.lr_txn);
	if (ret == -1)
		snprintf(err, errlen, "journal: %s", why[0] != '\0' ? why : mdb_strerror(rc));
	return ret;
}

static int
journal_env_open(struct journal *j, const struct journal_config *cfg, char *err,
    size_t errlen)
{
	struct stat sb;
	int rc;

	if (mkdir(cfg->jc_dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "journal: mkdir %s: %s", cfg->jc_dir, strerror(errno));
		return -1;
	}
	if (stat(cfg->jc_dir, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "journal: %s is not a directory", cfg->jc_dir);
		return -1;
	}
	if ((rc = mdb_env_create(&j->j_env)) != 0)
		goto fail;
	if ((rc = mdb_env_set_maxdbs(j->j_env, 8)) != 0 ||
	    (rc = mdb_env_set_mapsize(j->j_env, cfg->jc_map_size != 0 ?
	    cfg->jc_map_size : JOURNAL_MAP_DEFAULT)) != 0)
		goto fail;
	/*
	 * MDB_NOTLS ties reader slots to transactions rather than threads, so
	 * proofs and checkpoints can be read from any loop or worker.  No
	 * MDB_NOSYNC / MDB_NOMETASYNC: a commit must be on disk.
	 */
	if ((rc = mdb_env_open(j->j_env, cfg->jc_dir, MDB_NOTLS, 0600)) != 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "journal: %s: %s", cfg->jc_dir, mdb_strerror(rc));
	return -1;
}

static void
journal_free(struct journal *j)
{
	if (j->j_env != NULL)
		mdb_env_close(j->j_env);
	if (j->j_hmac != NULL) {
		OPENSSL_cleanse(j->j_hmac, j->j_hmac_len);
		free(j->j_hmac);
	}
	EVP_PKEY_free(j->j_key);
	X509_free(j->j_cert);
	pthread_rwlock_destroy(&j->j_resize);
	pthread_cond_destroy(&j->j_cond);
	pthread_mutex_destroy(&j->j_mtx);
	free(j);
}

struct journal *
journal_open(const struct journal_config *cfg, char *err, size_t errlen)
{
	struct journal *j = NULL, *ret = NULL;
	pthread_rwlockattr_t ra;
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	snprintf(err, errlen, "journal: out of memory");
	if (cfg->jc_dir == NULL || cfg->jc_origin == NULL || cfg->jc_ckpt_key == NULL ||
	    cfg->jc_ckpt_cert == NULL || cfg->jc_hmac_key == NULL) {
		snprintf(err, errlen, "journal: incomplete configuration");
		return NULL;
	}
	if (cfg->jc_hmac_key_len < JOURNAL_HMAC_MIN || cfg->jc_hmac_key_len > INT_MAX) {
		snprintf(err, errlen, "journal: the pseudonym key must be at least %d bytes",
		    JOURNAL_HMAC_MIN);
		return NULL;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	pthread_mutex_init(&j->j_mtx, NULL);
	/* The writer's timed waits must not jump with the wall clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->j_cond, &ca);
	pthread_condattr_destroy(&ca);
	/*
	 * glibc prefers readers by default; with a steady stream of auditor
	 * reads the writer could then wait forever to grow the map.
	 */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&j->j_resize, &ra);
	pthread_rwlockattr_destroy(&ra);
	j->j_tail = &j->j_head;

	if (strlcpy_chk(j->j_origin, cfg->jc_origin, sizeof(j->j_origin)) == -1 ||
	    j->j_origin[0] == '\0') {
		snprintf(err, errlen, "journal: bad gateway id");
		goto done;
	}
	if (X509_check_private_key(cfg->jc_ckpt_cert, cfg->jc_ckpt_key) != 1) {
		snprintf(err, errlen, "journal: checkpoint key does not match its certificate");
		goto done;
	}
	if (key_id_cert(cfg->jc_ckpt_cert, j->j_kid) == -1) {
		snprintf(err, errlen, "journal: cannot derive the checkpoint key id");
		goto done;
	}
	if (EVP_PKEY_up_ref(cfg->jc_ckpt_key) != 1)
		goto done;
	j->j_key = cfg->jc_ckpt_key;
	if (X509_up_ref(cfg->jc_ckpt_cert) != 1)
		goto done;
	j->j_cert = cfg->jc_ckpt_cert;
	if ((j->j_hmac = malloc(cfg->jc_hmac_key_len)) == NULL)
		goto done;
	memcpy(j->j_hmac, cfg->jc_hmac_key, cfg->jc_hmac_key_len);
	j->j_hmac_len = cfg->jc_hmac_key_len;

	if (journal_env_open(j, cfg, err, errlen) == -1 ||
	    journal_restore(j, err, errlen) == -1 ||
	    journal_nodes_build(j, err, errlen) == -1)
		goto done;

	/*
	 * Signals are for the event loop; keeping them off the writer means a
	 * commit's fsync is never interrupted on their account.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&j->j_writer, NULL, journal_writer, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "journal: writer thread: %s", strerror(rc));
		goto done;
	}
	ret = j;
	j = NULL;
done:
	if (j != NULL)
		journal_free(j);
	return ret;
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	/* New work is refused from here; queued work still commits. */
	pthread_mutex_lock(&j->j_mtx);
	j->j_closing = true;
	pthread_cond_signal(&j->j_cond);
	pthread_mutex_unlock(&j->j_mtx);
	pthread_join(j->j_writer, NULL);
	journal_free(j);
}

/* Consent revocations. */

/* Removes up to JOURNAL_EXPIRE_SCAN revocations whose keep_until has passed. */
static int
journal_revoke_expire(struct journal *j, MDB_txn *txn, uint64_t now_s)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int n, rc;

	if ((rc = mdb_cursor_open(txn, j->j_rev, &cur)) != 0)
		return rc;
	for (n = 0; n < JOURNAL_EXPIRE_SCAN; n++) {
		if ((rc = mdb_cursor_get(cur, &k, &v, n == 0 ? MDB_FIRST : MDB_NEXT)) != 0)
			break;
		if (v.mv_size == 16 && be64_get((const uint8_t *)v.mv_data + 8) < now_s &&
		    (rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
journal_revoke_put(struct journal *j, const uint8_t *key, size_t keylen, uint64_t revoked_at,
    uint64_t keep_until)
{
	MDB_txn *txn = NULL;
	MDB_val k = { keylen, (void *)(uintptr_t)key }, v, old;
	uint8_t vb[16];
	int rc;

	if (keylen == 0 || keylen > JOURNAL_REVOKE_KEY_MAX)
		return -1;
	be64_put(vb, revoked_at);
	be64_put(vb + 8, keep_until);
	v.mv_size = sizeof(vb);
	v.mv_data = vb;
	/*
	 * A write transaction of its own: LMDB serializes it with the writer
	 * thread's.  The shared lock keeps the map from being resized under it.
	 */
	pthread_rwlock_rdlock(&j->j_resize);
	if ((rc = mdb_txn_begin(j->j_env, NULL, 0, &txn)) != 0)
		goto done;
	if ((rc = journal_revoke_expire(j, txn, now_ms() / 1000)) != 0)
		goto done;
	/*
	 * A later revocation of the same key covers more tokens: keep the
	 * latest, and never let an older one (a replay) shrink it.
	 */
	if ((rc = mdb_get(txn, j->j_rev, &k, &old)) == 0 && old.mv_size == 16 &&
	    be64_get(old.mv_data) >= revoked_at) {
		rc = 0;
		goto done;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto done;
	if ((rc = mdb_put(txn, j->j_rev, &k, &v, 0)) != 0)
		goto done;
	rc = mdb_txn_commit(txn);
	txn = NULL;
done:
	if (txn != NULL)
		mdb_txn_abort(txn);
	pthread_rwlock_unlock(&j->j_resize);
	if (rc != 0)
		log_warnx("journal: revocation not stored: %s", mdb_strerror(rc));
	return rc == 0 ? 0 : -1;
}

int
journal_revoked(struct journal *j, const uint8_t *key, size_t keylen, uint64_t *revoked_at)
{
	MDB_txn *txn;
	MDB_val k = { keylen, (void *)(uintptr_t)key }, v;
	int rc, ret = -1;

	if (keylen == 0 || keylen > JOURNAL_REVOKE_KEY_MAX)
		return -1;
	if (journal_rtxn_begin(j, &txn) == -1)
		return -1;
	if ((rc = mdb_get(txn, j->j_rev, &k, &v)) == MDB_NOTFOUND)
		ret = 0;
	else if (rc == 0 && v.mv_size == 16) {
		*revoked_at = be64_get(v.mv_data);
		ret = 1;
	}
	journal_rtxn_end(j, txn);
	return ret;
}

int
journal_revoke_key(const struct journal *j, const uint8_t *jti, const char *subject,
    const char *bundle, uint8_t key[JOURNAL_REVOKE_KEY_MAX], size_t *keylen)
{
	size_t	blen;

	if (jti != NULL) {
		key[0] = 'j';
		memcpy(key + 1, jti, 16);
		*keylen = 17;
		return 0;
	}
	if (subject == NULL || bundle == NULL || (blen = strlen(bundle)) == 0 ||
	    blen >= LB_ID_MAX)
		return -1;
	key[0] = 's';
	journal_pseudonym(j, subject, key + 1);
	memcpy(key + 33, bundle, blen);
	*keylen = 33 + blen;
	return 0;
}

enum lb_err
journal_revoke_check(struct journal *j, const struct consent *cs, char *msg, size_t msglen)
{
	uint8_t		key[JOURNAL_REVOKE_KEY_MAX];
	size_t		keylen;
	uint64_t	at;
	int		r;

	journal_revoke_key(j, cs->cs_jti, NULL, NULL, key, &keylen);
	if ((r = journal_revoked(j, key, keylen, &at)) == 1) {
		snprintf(msg, msglen, "this consent token was revoked");
		return LB_E_CONSENT_REVOKED;
	}
	if (r == 0 && (r = journal_revoke_key(j, NULL, cs->cs_sub, cs->cs_bundle, key,
	    &keylen)) == 0 && (r = journal_revoked(j, key, keylen, &at)) == 1) {
		if (cs->cs_iat >= 0 && (uint64_t)cs->cs_iat > at)
			return LB_OK;	/* consent given again after the revocation */
		snprintf(msg, msglen, "the citizen revoked the consent to bundle \"%s\" "
		    "given up to this token", cs->cs_bundle);
		return LB_E_CONSENT_REVOKED;
	}
	if (r != 0) {
		snprintf(msg, msglen, "the revocation list cannot be read");
		return LB_E_JOURNAL_UNAVAILABLE;
	}
	return LB_OK;
}
