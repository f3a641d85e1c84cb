/*
 * journal_restore.c - opening the journal, and closing it.
 *
 * Opening trusts nothing it finds: the compact range of the committed tree
 * is checked against the records and leaves actually stored, a damaged
 * journal is refused rather than extended into a different tree, and what
 * an older or interrupted run left undone is rebuilt before the writer
 * starts: index entries of records that have none, and the stored perfect
 * subtrees of the "node" database (journal_impl.h), which must then give
 * the committed root.
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

#include "journal_impl.h"

/* The nodes a leaf completes: one per trailing one bit of its seq. */
static unsigned
trailing_ones64(uint64_t v)
{
	unsigned n = 0;

	for (; (v & 1) != 0; v >>= 1)
		n++;
	return n;
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
	uint8_t kb[JSEQ_KEY_LEN];
	char consumer[LB_ID_MAX], dept[LB_ID_MAX], item[LB_ITEM_MAX];
	const uint8_t *subject;
	uint64_t seq, t_ms;
	int rc = 0;

	if (!msgpack_zone_init(&z, 4096))
		return ENOMEM;
	for (seq = from; seq < size; seq++) {
		k = journal_seq_key(kb, seq);
		if ((rc = mdb_get(txn, j->j_rec, &k, &v)) != 0)
			break;
		msgpack_zone_clear(&z);
		/* An older version may have stored text it did not check. */
		if (mpk_unpack_stored(v.mv_data, v.mv_size, &z, &rec) != 0 ||
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
		    o->via.bin.size == JHASH_LEN)
			subject = (const uint8_t *)o->via.bin.ptr;
		if ((rc = journal_ix_record(j, txn, seq, subject, consumer, dept, item, t_ms,
		    &j->j_tmax)) != 0)
			break;
	}
	msgpack_zone_destroy(&z);
	return rc;
}

/*
 * Reads the committed tree of txn: the compact range of meta "cr" (empty
 * when there is none yet), which the numbers of records and leaves must
 * match, and the size and root of the latest checkpoint, which may not
 * cover more.  Returns 0, an LMDB error, or EINVAL with the damage in why.
 */
static int
journal_tree_read(MDB_txn *txn, MDB_dbi rec, MDB_dbi leaf, MDB_dbi meta,
    struct merkle_cr *cr, uint64_t *ckpt_size, uint8_t ckpt_root[32], char *why,
    size_t whylen)
{
	MDB_stat rst, lst;
	MDB_val k = journal_meta_key(JMETA_CR), v;
	uint64_t t_ms;
	int rc;

	merkle_cr_init(cr);
	*ckpt_size = 0;
	if ((rc = mdb_stat(txn, rec, &rst)) != 0 || (rc = mdb_stat(txn, leaf, &lst)) != 0)
		return rc;
	if ((rc = mdb_get(txn, meta, &k, &v)) == 0) {
		if (journal_cr_get(&v, cr) == -1) {
			snprintf(why, whylen, "malformed compact range");
			return EINVAL;
		}
	} else if (rc != MDB_NOTFOUND)
		return rc;
	if (rst.ms_entries != cr->cr_size || lst.ms_entries != cr->cr_size) {
		snprintf(why, whylen, "tree size %llu but %zu records and %zu leaves",
		    (unsigned long long)cr->cr_size, rst.ms_entries, lst.ms_entries);
		return EINVAL;
	}
	k = journal_meta_key(JMETA_LATEST);
	if ((rc = mdb_get(txn, meta, &k, &v)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (journal_ckpt_decode(v.mv_data, v.mv_size, ckpt_size, ckpt_root, &t_ms) == -1 ||
	    *ckpt_size > cr->cr_size) {
		snprintf(why, whylen, "malformed latest checkpoint");
		return EINVAL;
	}
	return 0;
}

/*
 * Opens the databases and restores the tree from meta "cr", checking it
 * against the records actually stored, so a damaged journal is refused
 * rather than extended into a different tree.
 */
static int
journal_restore(struct journal *j, char *err, size_t errlen)
{
	static const char *const names[JOURNAL_NDBS] = { "rec", "leaf", "ckpt", "meta", "jti",
	    "ix", "rev", "node", "party", "witness" };
	MDB_dbi *const dbis[JOURNAL_NDBS] = { &j->j_rec, &j->j_leaf, &j->j_ckpt, &j->j_meta, &j->j_jti,
	    &j->j_ix, &j->j_rev, &j->j_node, &j->j_party, &j->j_wit };
	static const uint8_t tmax_all[JU64_LEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff };
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t root[JHASH_LEN], tk[JIX_KEY_MAX];
	uint64_t size, last, indexed = 0;
	char why[128] = "";
	size_t i;
	bool signed_empty = false;
	int rc, ret = -1;

	if ((rc = mdb_txn_begin(j->j_env, NULL, 0, &txn)) != 0)
		goto done;
	for (i = 0; i < JOURNAL_NDBS; i++)
		if ((rc = mdb_dbi_open(txn, names[i], MDB_CREATE, dbis[i])) != 0)
			goto done;
	if ((rc = journal_tree_read(txn, j->j_rec, j->j_leaf, j->j_meta, &j->j_cr,
	    &j->j_ckpt_size, root, why, sizeof(why))) != 0)
		goto done;
	size = j->j_cr.cr_size;
	if (size > 0) {
		/* Dense from 0 and counted right means the last key is size - 1. */
		if ((rc = mdb_cursor_open(txn, j->j_rec, &cur)) != 0 ||
		    (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) != 0)
			goto done;
		if (journal_number_get(&k, &last) != 0 || last != size - 1) {
			snprintf(why, sizeof(why), "records are not numbered 0 to %llu",
			    (unsigned long long)size - 1);
			goto done;
		}
		mdb_cursor_close(cur);
		cur = NULL;
		/*
		 * The last 't' entry names the last indexed record and the
		 * running maximum; records after it (none, unless the journal
		 * predates its indexes) are indexed now.  It is the entry
		 * before the largest 't' key there can be.
		 */
		if ((rc = mdb_cursor_open(txn, j->j_ix, &cur)) != 0)
			goto done;
		k.mv_data = tk;
		k.mv_size = journal_ix_key(tk, JIX_TIME, tmax_all, sizeof(tmax_all), UINT64_MAX);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		rc = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV) :
		    mdb_cursor_get(cur, &k, &v, MDB_LAST);
		if (rc == 0 && journal_ix_time_get(&k, &j->j_tmax, &last) == 0)
			indexed = last + 1;
		else if (rc != 0 && rc != MDB_NOTFOUND)
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
	if (size == 0) {
		/*
		 * A new journal (or an empty one of an older version) signs the
		 * RFC 6962 empty tree at once, size 0 with the SHA-256 of the
		 * empty string as its root, so that an auditor finds a signed
		 * checkpoint before the first record too.  A failed signature
		 * is logged and leaves the journal as it was.
		 */
		k = journal_meta_key(JMETA_LATEST);
		if ((rc = mdb_get(txn, j->j_meta, &k, &v)) == MDB_NOTFOUND)
			rc = journal_put_ckpt(j, txn, &j->j_cr, &signed_empty);
		if (rc != 0)
			goto done;
	}
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
	struct jleafrd lr = { j, NULL };
	struct merkle_cr cr;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	MDB_cursor_op op = MDB_SET_KEY;
	uint8_t kb[JSEQ_KEY_LEN], peaks[64][JHASH_LEN], nodes[64][JHASH_LEN];
	uint64_t from = 0, last, seq, end;
	uint64_t added = 0;
	unsigned level;
	size_t np = 0;
	int n, rc;

	*more = false;
	if ((rc = mdb_txn_begin(j->j_env, NULL, 0, &lr.lr_txn)) != 0)
		goto done;
	if ((rc = mdb_cursor_open(lr.lr_txn, j->j_node, &cur)) != 0)
		goto done;
	if ((rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) == 0) {
		if (journal_node_key_get(&k, &from, &level) != 0 || from >= size) {
			snprintf(why, whylen,
			    "the node database names leaves beyond the tree");
			rc = EINVAL;
			goto done;
		}
		/*
		 * Seq from completes one node per trailing one bit.  If its
		 * highest one is there, so is the rest; otherwise its nodes
		 * are removed and it is done again.
		 */
		if (level == trailing_ones64(from))
			from++;
		else {
			for (last = from; rc == 0 && last == from; ) {
				if ((rc = mdb_cursor_del(cur, 0)) != 0 ||
				    (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) != 0)
					break;
				if (journal_node_key_get(&k, &last, &level) != 0) {
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
	if (journal_peaks_read(&lr, from, peaks, &np) != 0) {
		snprintf(why, whylen, "the node database lacks a node below seq %llu",
		    (unsigned long long)from);
		rc = EINVAL;
		goto done;
	}
	/* One peak per set bit of from was read, so the range fits. */
	(void)merkle_cr_set(&cr, from, (const uint8_t (*)[32])peaks, np);

	end = size - from > JOURNAL_NODE_BATCH ? from + JOURNAL_NODE_BATCH : size;
	if ((rc = mdb_cursor_open(lr.lr_txn, j->j_leaf, &cur)) != 0)
		goto done;
	k = journal_seq_key(kb, from);
	for (seq = from; seq < end; seq++, op = MDB_NEXT) {
		if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0 ||
		    journal_number_get(&k, &last) != 0 || last != seq ||
		    v.mv_size != JHASH_LEN) {
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
	struct jleafrd lr = { j, NULL };
	uint8_t want[JHASH_LEN], got[JHASH_LEN];
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

int
journal_inspect(const char *dir, struct journal_info *ji, char *err, size_t errlen)
{
	static const char *const names[] = { "rec", "leaf", "meta" };
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi[3];
	struct merkle_cr cr;
	uint8_t root[JHASH_LEN], croot[JHASH_LEN];
	char why[128] = "";
	size_t i;
	int rc;

	memset(ji, 0, sizeof(*ji));
	/* MDB_NOLOCK: nobody else has the copy open, and it gets no lock file. */
	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(env, JOURNAL_NDBS)) != 0 ||
	    (rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK, 0600)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0)
		goto done;
	for (i = 0; i < 3; i++)
		if ((rc = mdb_dbi_open(txn, names[i], 0, &dbi[i])) != 0)
			goto done;
	if ((rc = journal_tree_read(txn, dbi[0], dbi[1], dbi[2], &cr, &ji->ji_ckpt_size, croot,
	    why, sizeof(why))) != 0)
		goto done;
	ji->ji_size = cr.cr_size;
	merkle_cr_root(MK_SHA256, &cr, root);
	if (ji->ji_ckpt_size == cr.cr_size && cr.cr_size > 0 &&
	    memcmp(root, croot, sizeof(root)) != 0) {
		snprintf(why, sizeof(why), "the tree's root is not the one its latest "
		    "checkpoint signed");
		rc = EINVAL;
	}
done:
	if (rc != 0)
		snprintf(err, errlen, "journal %s: %s", dir, why[0] != '\0' ? why :
		    mdb_strerror(rc));
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (env != NULL)
		mdb_env_close(env);
	return rc == 0 ? 0 : -1;
}

static int
journal_env_open(struct journal *j, const struct journal_config *cfg, char *err,
    size_t errlen)
{
	struct stat sb;
	size_t size = cfg->jc_map_size != 0 ? cfg->jc_map_size : JOURNAL_MAP_DEFAULT;
	int rc;

	/* A map that may not grow as large as the default starts at its limit. */
	if (cfg->jc_map_max != 0 && cfg->jc_map_max < size)
		size = cfg->jc_map_max;
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
	if ((rc = mdb_env_set_maxdbs(j->j_env, JOURNAL_NDBS)) != 0 ||
	    (rc = mdb_env_set_mapsize(j->j_env, size)) != 0)
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
	journal_pending_free(&j->j_pending);
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
	journal_pending_init(&j->j_pending);
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
	atomic_store(&j->j_map_max, cfg->jc_map_max);

	if (journal_env_open(j, cfg, err, errlen) == -1 ||
	    journal_restore(j, err, errlen) == -1 ||
	    journal_nodes_build(j, err, errlen) == -1)
		goto done;
	journal_map_note(j);

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

