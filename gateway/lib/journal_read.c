/*
 * journal_read.c - reading the journal from any thread: the latest
 * checkpoint, records by seq, auditors' record queries through the indexes,
 * RFC 9162 inclusion and consistency proofs from the stored leaves and
 * perfect subtrees (journal_impl.h describes them), and a record as the API
 * shows it.
 *
 * Every read is one LMDB read transaction, so what one call returns is one
 * committed state of the journal however the writer goes on meanwhile.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "journal_impl.h"

/*
 * Reader transactions.  MDB_NOTLS lets any thread run them; the shared lock
 * keeps the writer from resizing the map underneath them.
 */
int
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

void
journal_rtxn_end(struct journal *j, MDB_txn *txn)
{
	if (txn == NULL)
		return;
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&j->j_resize);
}

/*
 * A read transaction that sees at least size records: -1, and none left
 * open, when fewer are committed.
 */
static int
journal_rtxn_upto(struct journal *j, MDB_txn **txn, uint64_t size)
{
	MDB_stat st;

	if (journal_rtxn_begin(j, txn) == -1)
		return -1;
	if (mdb_stat(*txn, j->j_rec, &st) != 0 || size > st.ms_entries) {
		journal_rtxn_end(j, *txn);
		*txn = NULL;
		return -1;
	}
	return 0;
}

/* Decodes the payload of a checkpoint envelope. */
int
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
	    mpk_get_bytes(&env.env_claims, "root", &z, &p, &n) == -1 || n != JHASH_LEN)
		goto done;
	memcpy(root, p, JHASH_LEN);
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
	MDB_val k = journal_meta_key(JMETA_LATEST), v;
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
	uint8_t kb[JSEQ_KEY_LEN];
	uint64_t seq, got;
	int ret = -1;

	if (start > end)
		return -1;
	if (journal_rtxn_upto(j, &txn, end) == -1)
		goto done;
	if (mdb_cursor_open(txn, j->j_rec, &cur) != 0)
		goto done;
	k = journal_seq_key(kb, start);
	for (seq = start; seq < end; seq++, op = MDB_NEXT) {
		/* Records are dense from 0, so the cursor must land on seq. */
		if (mdb_cursor_get(cur, &k, &v, op) != 0 ||
		    journal_number_get(&k, &got) != 0 || got != seq)
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

int
journal_leaf_read(void *arg, uint64_t idx, uint8_t out[32])
{
	struct jleafrd *lr = arg;
	uint8_t kb[JSEQ_KEY_LEN];
	MDB_val k = journal_seq_key(kb, idx), v;

	if (mdb_get(lr->lr_txn, lr->lr_j->j_leaf, &k, &v) != 0 || v.mv_size != JHASH_LEN)
		return -1;
	memcpy(out, v.mv_data, JHASH_LEN);
	return 0;
}

int
journal_node_read(void *arg, unsigned level, uint64_t index, uint8_t out[32])
{
	struct jleafrd *lr = arg;
	uint8_t kb[JNODE_KEY_LEN];
	MDB_val k, v;
	int rc;

	if (level == 0 || level > 63)
		return -1;
	k = journal_node_key(kb, level, index);
	if ((rc = mdb_get(lr->lr_txn, lr->lr_j->j_node, &k, &v)) == MDB_NOTFOUND)
		return 1;
	if (rc != 0 || v.mv_size != JHASH_LEN)
		return -1;
	memcpy(out, v.mv_data, JHASH_LEN);
	return 0;
}

int
journal_peaks_read(struct jleafrd *lr, uint64_t size, uint8_t peaks[][32], size_t *npeaks)
{
	uint64_t pos = 0;
	size_t n = 0;
	int b, rc;

	for (b = 63; b >= 0; b--) {
		if ((size & ((uint64_t)1 << b)) == 0)
			continue;
		/* A perfect subtree of one leaf is the leaf; larger ones are nodes. */
		rc = b == 0 ? journal_leaf_read(lr, pos, peaks[n]) :
		    journal_node_read(lr, (unsigned)b, pos >> b, peaks[n]);
		if (rc != 0)
			return -1;
		n++;
		pos += (uint64_t)1 << b;
	}
	*npeaks = n;
	return 0;
}

int
journal_checkpoint_upto(struct journal *j, uint64_t max_size, struct journal_ckpt *ck)
{
	struct jleafrd lr = { j, NULL };
	struct merkle_cr cr;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t kb[JSEQ_KEY_LEN], root[JHASH_LEN];
	uint64_t size;
	int rc, ret = -1;

	memset(ck, 0, sizeof(*ck));
	if (journal_rtxn_begin(j, &lr.lr_txn) == -1)
		goto done;
	if (mdb_cursor_open(lr.lr_txn, j->j_ckpt, &cur) != 0)
		goto done;
	/* The last key at or below max_size: the one before the first above it. */
	rc = MDB_NOTFOUND;
	if (max_size < UINT64_MAX) {
		k = journal_seq_key(kb, max_size + 1);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	}
	if (rc == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == MDB_NOTFOUND) {
		ret = 1;
		goto done;
	}
	if (rc != 0 || journal_number_get(&k, &size) != 0 ||
	    journal_ckpt_decode(v.mv_data, v.mv_size, &ck->jk_size, ck->jk_root,
	    &ck->jk_t_ms) != 0 || ck->jk_size != size)
		goto done;
	if ((ck->jk_env = malloc(v.mv_size)) == NULL)
		goto done;
	memcpy(ck->jk_env, v.mv_data, v.mv_size);
	ck->jk_envlen = v.mv_size;
	/* The stored subtrees must give the root the checkpoint signed. */
	if (journal_peaks_read(&lr, size, ck->jk_peaks, &ck->jk_npeaks) != 0 ||
	    merkle_cr_set(&cr, size, (const uint8_t (*)[32])ck->jk_peaks, ck->jk_npeaks) != 0)
		goto done;
	merkle_cr_root(MK_SHA256, &cr, root);
	if (memcmp(root, ck->jk_root, JHASH_LEN) != 0) {
		log_warnx("journal: the stored subtrees of the first %llu records disagree "
		    "with their signed checkpoint", (unsigned long long)size);
		goto done;
	}
	ret = 0;
done:
	if (cur != NULL)
		mdb_cursor_close(cur);
	journal_rtxn_end(j, lr.lr_txn);
	if (ret != 0) {
		free(ck->jk_env);
		ck->jk_env = NULL;
	}
	return ret;
}

/* merkle_inclusion_proof_nodes or merkle_consistency_proof_nodes. */
typedef int	(*journal_proof_fn)(enum mk_hash, merkle_leaf_fn, merkle_node_fn, void *,
		    uint64_t, uint64_t, uint8_t [][32], size_t *);

/* A proof whose second size argument is size, read in one transaction. */
static int
journal_proof(struct journal *j, journal_proof_fn proof, uint64_t a, uint64_t size,
    uint8_t path[][32], size_t *npath)
{
	struct jleafrd lr = { j, NULL };
	int ret;

	if (journal_rtxn_upto(j, &lr.lr_txn, size) == -1)
		return -1;
	ret = proof(MK_SHA256, journal_leaf_read, journal_node_read, &lr, a, size, path, npath);
	journal_rtxn_end(j, lr.lr_txn);
	return ret == 0 ? 0 : -1;
}

int
journal_inclusion(struct journal *j, uint64_t seq, uint64_t size, uint8_t path[][32],
    size_t *npath)
{
	if (seq >= size)
		return -1;
	return journal_proof(j, merkle_inclusion_proof_nodes, seq, size, path, npath);
}

int
journal_consistency(struct journal *j, uint64_t first, uint64_t second, uint8_t path[][32],
    size_t *npath)
{
	if (first > second)
		return -1;
	return journal_proof(j, merkle_consistency_proof_nodes, first, second, path, npath);
}

int
journal_root_at(struct journal *j, uint64_t size, uint8_t root[32])
{
	struct jleafrd lr = { j, NULL };
	struct merkle_cr cr;
	uint8_t kb[JSEQ_KEY_LEN];
	MDB_val k = journal_seq_key(kb, size), v;
	uint64_t csize, t_ms;
	int ret = -1;

	if (journal_rtxn_upto(j, &lr.lr_txn, size) == -1)
		goto done;
	if (size == 0) {
		merkle_root(MK_SHA256, NULL, 0, root);
		ret = 0;
		goto done;
	}
	/* A signed checkpoint of that size already holds the root. */
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

/* Record queries. */

/* Whether the decoded record rec passes every filter of f. */
static bool
journal_match(const struct journal_filter *f, const msgpack_object *rec)
{
	const msgpack_object *o;
	uint64_t t_ms;

	if (f->jf_has_subject && ((o = mpk_get(rec, "subject")) == NULL ||
	    o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != JHASH_LEN ||
	    memcmp(o->via.bin.ptr, f->jf_subject, JHASH_LEN) != 0))
		return false;
	if (f->jf_consumer[0] != '\0' && !mpk_str_eq(mpk_get(rec, "consumer"), f->jf_consumer))
		return false;
	if (f->jf_dept[0] != '\0' && !mpk_str_eq(mpk_get(rec, "dept"), f->jf_dept))
		return false;
	if (f->jf_item[0] != '\0' && !mpk_str_eq(mpk_get(rec, "item"), f->jf_item))
		return false;
	if (f->jf_kind[0] != '\0' && !mpk_str_eq(mpk_get(rec, "kind"), f->jf_kind))
		return false;
	if (f->jf_code[0] != '\0' && !mpk_str_eq(mpk_get(rec, "code"), f->jf_code))
		return false;
	if (mpk_get_u64(rec, "t_ms", &t_ms) != 0 || t_ms < f->jf_since_ms ||
	    (f->jf_until_ms != 0 && t_ms >= f->jf_until_ms))
		return false;
	return true;
}

/*
 * The prefix of the index to walk for f, in prefix: the most selective
 * filter asked for.  0 when there is none and the records themselves are
 * walked.
 */
static size_t
journal_query_index(const struct journal_filter *f, uint8_t prefix[JIX_KEY_MAX])
{
	if (f->jf_has_subject)
		return journal_ix_prefix(prefix, JIX_SUBJECT, f->jf_subject, JHASH_LEN);
	if (f->jf_item[0] != '\0')
		return journal_ix_prefix(prefix, JIX_ITEM, f->jf_item, strlen(f->jf_item));
	if (f->jf_consumer[0] != '\0')
		return journal_ix_prefix(prefix, JIX_CONSUMER, f->jf_consumer,
		    strlen(f->jf_consumer));
	if (f->jf_dept[0] != '\0')
		return journal_ix_prefix(prefix, JIX_DEPT, f->jf_dept, strlen(f->jf_dept));
	return 0;
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
	uint8_t kb[JIX_KEY_MAX], tb[JU64_LEN], prefix[JIX_KEY_MAX];
	size_t plen, limit, found = 0, scanned = 0;
	uint64_t start, seq, tmax, last = 0;
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
		journal_u64_put(tb, f->jf_since_ms);
		k.mv_data = kb;
		k.mv_size = journal_ix_key(kb, JIX_TIME, tb, sizeof(tb), 0);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND ||
		    (rc == 0 && journal_ix_time_get(&k, &tmax, &seq) == -1)) {
			ret = 0;
			goto done;
		}
		if (rc != 0)
			goto done;
		if (seq > start)
			start = seq;
	}
	/* The key walked is prefix || seq: an index entry, or a record when plen is 0. */
	if ((plen = journal_query_index(f, prefix)) == 0) {
		mdb_cursor_close(cur);
		cur = NULL;
		if (mdb_cursor_open(txn, j->j_rec, &cur) != 0)
			goto done;
	}
	memcpy(kb, prefix, plen);
	journal_u64_put(kb + plen, start);
	k.mv_data = kb;
	k.mv_size = plen + JU64_LEN;
	step = f->jf_newest_first ? MDB_PREV : MDB_NEXT;
	if (f->jf_newest_first) {
		/* Start below the first key at or above the bound, or at the end. */
		journal_u64_put(kb + plen, f->jf_has_before ? f->jf_before : UINT64_MAX);
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
		if (k.mv_size != plen + JU64_LEN || memcmp(k.mv_data, prefix, plen) != 0) {
			/* Past the entries of the index value; among records, damage. */
			if (plen == 0)
				goto done;
			break;
		}
		seq = journal_seq_after(&k, plen);
		if (f->jf_newest_first ? seq < start : f->jf_has_before && seq >= f->jf_before)
			break;
		if (found == limit || scanned == JOURNAL_QUERY_SCAN) {
			/* There is more to look at: the next page resumes after last. */
			*more = have_last;
			break;
		}
		scanned++;
		if (plen != 0) {
			k = journal_seq_key(tb, seq);
			if (mdb_get(txn, j->j_rec, &k, &v) != 0)
				goto done;
		}
		msgpack_zone_clear(&z);
		/* Filters look at what an older version may have stored unchecked. */
		if (mpk_unpack_stored(v.mv_data, v.mv_size, &z, &rec) != 0)
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

/*
 * Records as the API shows them.  Whatever the writer appends today came
 * through mpk_unpack or was made by the gateway, so its text is UTF-8; a
 * journal written by a version that did not check text may hold records
 * JSON cannot show, and each of those is flagged alone rather than failing
 * every read that includes it.
 */
const char *
journal_record_decode(const void *rec, size_t len, msgpack_zone *z, msgpack_object *dec)
{
	if (mpk_unpack(rec, len, z, dec) == 0)
		return mpk_json_able(dec) ? NULL : "the record holds a value that JSON cannot "
		    "show";
	if (mpk_unpack_stored(rec, len, z, dec) != 0) {
		*dec = mpk_nil();
		return "the record is not one msgpack value";
	}
	return "the record holds text that is not valid UTF-8 (or holds a NUL character)";
}

void
journal_record_show(msgpack_zone *z, uint64_t seq, const void *rec, size_t len,
    msgpack_object *out)
{
	struct mpk_map	 m;
	msgpack_object	 leaf = mpk_bindup(z, rec, len), dec;
	const char	*why;

	why = journal_record_decode(rec, len, z, &dec);
	mpk_map_init(&m, z, 4);
	mpk_map_put(&m, "seq", mpk_uint(seq));
	mpk_map_put(&m, "leaf", leaf);
	if (why == NULL)
		mpk_map_put(&m, "record", dec);
	else {
		mpk_map_put(&m, "record_raw", leaf);
		mpk_map_put(&m, "record_error", mpk_str(why));
	}
	*out = m.mm_obj;
}
