/*
 * journal.c - the audit journal (docs/contract.md §7): its writer thread.
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
 * Queued operations are record appends, with the consent jtis they claim
 * (journal_claim.c), and consent revocations (journal_revoke.c); the
 * databases and their layouts are described in journal_impl.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lmdb.h>
#include <openssl/hmac.h>

#include "journal_impl.h"

static const char *const jkind_names[] = {
	[JK_EXCHANGE] = "exchange",
	[JK_ITEM] = "item",
	[JK_DENY] = "deny",
	[JK_ADAPTER] = "adapter",
	[JK_POLICY] = "policy",
	[JK_AUDIT_READ] = "audit-read",
	[JK_REVOKE] = "revoke",
	[JK_VERIFY] = "verify",
};

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
	/*
	 * Every field of docs/contract.md §7, of registry changes and of refusal counts;
	 * mpk_pack sorts the keys.
	 */
	mpk_map_init(&m, &z, 24);
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
	if (r->jr_has_count)
		mpk_map_put(&m, "count", mpk_uint(r->jr_count));
	if (r->jr_pred_field[0] != '\0') {
		struct mpk_map pm;

		mpk_map_init(&pm, &z, 2);
		jrec_put_str(&pm, "field", r->jr_pred_field, sizeof(r->jr_pred_field));
		jrec_put_str(&pm, "op", r->jr_pred_op, sizeof(r->jr_pred_op));
		mpk_map_put(&m, "predicate", pm.mm_obj);
	}
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
	unsigned int len = JHASH_LEN;

	/*
	 * HMAC-SHA256 fails only when OpenSSL cannot allocate.  A zeroed or
	 * partial pseudonym would silently merge citizens in the journal, so
	 * treat it like any other allocation failure of the daemon.
	 */
	if (HMAC(EVP_sha256(), j->j_hmac, (int)j->j_hmac_len, (const unsigned char *)id,
	    strlen(id), out, &len) == NULL || len != JHASH_LEN) {
		log_warnx("journal: HMAC-SHA256 failed");
		abort();
	}
}

uint64_t
journal_size(struct journal *j)
{
	return atomic_load(&j->j_size);
}

void
journal_map_note(struct journal *j)
{
	MDB_envinfo info;
	MDB_stat st;

	if (mdb_env_info(j->j_env, &info) != 0 || mdb_env_stat(j->j_env, &st) != 0)
		return;
	atomic_store(&j->j_map_size, info.me_mapsize);
	atomic_store(&j->j_map_used, (uint64_t)(info.me_last_pgno + 1) * st.ms_psize);
}

size_t
journal_map_limit(struct journal *j)
{
	size_t max = atomic_load(&j->j_map_max);

	return max == 0 || max > JOURNAL_MAP_MAX ? JOURNAL_MAP_MAX : max;
}

void
journal_state(struct journal *j, struct journal_state *js)
{
	uint64_t limit = journal_map_limit(j), size = atomic_load(&j->j_map_size);

	js->js_failing = atomic_load(&j->j_failing);
	js->js_map_used = atomic_load(&j->j_map_used);
	/* A map already larger than the limit (it never shrinks) is the limit. */
	js->js_map_limit = size > limit ? size : limit;
}

void
journal_set_map_max(struct journal *j, size_t max)
{
	atomic_store(&j->j_map_max, max);
	/*
	 * A journal that failed only for want of room can commit again once
	 * its map may grow: say so now rather than at the next commit, which
	 * a balancer that waits for readiness would never send.
	 */
	if (atomic_load(&j->j_failing_full) && journal_map_limit(j) > atomic_load(&j->j_map_size))
		atomic_store(&j->j_failing, false);
}

void
journal_stats(struct journal *j, struct journal_stats *js)
{
	MDB_stat	st = { 0 };
	MDB_txn		*txn;

	memset(js, 0, sizeof(*js));
	js->js_size = atomic_load(&j->j_size);
	js->js_commits = atomic_load(&j->j_st_commits);
	js->js_failures = atomic_load(&j->j_st_failures);
	js->js_records = atomic_load(&j->j_st_records);
	js->js_commit_us = atomic_load(&j->j_st_commit_us);
	js->js_sync_us = atomic_load(&j->j_st_sync_us);
	/* As the writer noted them after its last commit (journal_map_note). */
	js->js_map_size = atomic_load(&j->j_map_size);
	js->js_map_used = atomic_load(&j->j_map_used);
	js->js_jti_pending = journal_pending_count(&j->j_pending);
	if (journal_rtxn_begin(j, &txn) != 0)
		return;
	/* Counts kept by LMDB in the trees' roots: no scan. */
	if (mdb_stat(txn, j->j_jti, &st) == 0)
		js->js_jti = st.ms_entries;
	journal_rtxn_end(j, txn);
}

/* Indexes. */

static int
journal_ix_put(struct journal *j, MDB_txn *txn, enum jix_tag tag, const void *val, size_t len,
    uint64_t seq)
{
	uint8_t kb[JIX_KEY_MAX];
	MDB_val k, v = { 0, NULL };

	if (len == 0)
		return 0;
	if (len > JIX_VALUE_MAX)
		return EINVAL;
	k.mv_data = kb;
	k.mv_size = journal_ix_key(kb, tag, val, len, seq);
	return mdb_put(txn, j->j_ix, &k, &v, 0);
}

int
journal_ix_record(struct journal *j, MDB_txn *txn, uint64_t seq, const uint8_t *subject,
    const char *consumer, const char *dept, const char *item, uint64_t t_ms, uint64_t *tmax)
{
	uint8_t tb[JU64_LEN];
	int rc;

	if (subject != NULL &&
	    (rc = journal_ix_put(j, txn, JIX_SUBJECT, subject, JHASH_LEN, seq)) != 0)
		return rc;
	if ((rc = journal_ix_put(j, txn, JIX_CONSUMER, consumer, strlen(consumer), seq)) != 0 ||
	    (rc = journal_ix_put(j, txn, JIX_DEPT, dept, strlen(dept), seq)) != 0 ||
	    (rc = journal_ix_put(j, txn, JIX_ITEM, item, strlen(item), seq)) != 0)
		return rc;
	if (t_ms > *tmax)
		*tmax = t_ms;
	journal_u64_put(tb, *tmax);
	return journal_ix_put(j, txn, JIX_TIME, tb, sizeof(tb), seq);
}

/* Queueing, from any thread. */

struct jop *
journal_op_new(enum jop_type type, struct event_base *base, void *arg, size_t n)
{
	struct jop *op;

	if ((op = calloc(1, sizeof(*op) + n * sizeof(op->jo_recs[0]))) == NULL)
		return NULL;
	op->jo_type = type;
	op->jo_base = base;
	op->jo_arg = arg;
	op->jo_n = n;
	return op;
}

int
journal_op_queue(struct journal *j, struct jop *op, size_t weight)
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
	op = NULL;
	ret = 0;
done:
	pthread_mutex_unlock(&j->j_mtx);
	free(op);
	return ret;
}

int
journal_append(struct journal *j, struct event_base *base, const struct jrec *recs, size_t n,
    journal_done_fn fn, void *arg)
{
	if (n == 0)
		return -1;
	return journal_append_claims(j, base, recs, n, NULL, 0, fn, arg);
}

/* The writer thread. */

int
journal_put_nodes(struct journal *j, MDB_txn *txn, const struct merkle_cr *cr,
    const uint8_t nodes[][32], int n)
{
	uint8_t kb[JNODE_KEY_LEN];
	MDB_val k, v;
	int l, rc;

	for (l = 1; l <= n; l++) {
		k = journal_node_key(kb, (unsigned)l, (cr->cr_size >> l) - 1);
		v.mv_data = (void *)(uintptr_t)nodes[l - 1];
		v.mv_size = JHASH_LEN;
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
	uint8_t kb[JSEQ_KEY_LEN], leaf[JHASH_LEN], nodes[64][JHASH_LEN];
	MDB_val k, v;
	size_t i;
	int n, rc;

	op->jo_first_seq = cr->cr_size;
	for (i = 0; i < op->jo_n; i++) {
		r = &op->jo_recs[i];
		msgpack_sbuffer_clear(sb);
		if (journal_record_pack(r, cr->cr_size, sb) == -1)
			return EINVAL;
		k = journal_seq_key(kb, cr->cr_size);
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
	uint8_t buf[JCR_VAL_MAX];
	MDB_val k = journal_meta_key(JMETA_CR), v = { 0, buf };

	v.mv_size = journal_cr_put(buf, cr);
	return mdb_put(txn, j->j_meta, &k, &v, 0);
}

/*
 * Removes a bounded number of expired entries, resuming where the last pass
 * over the same database stopped, so a large table never makes one commit
 * slow and every entry is reached in turn.
 */
int
journal_sweep(MDB_txn *txn, MDB_dbi dbi, struct jsweep *sw, journal_keep_fn keep,
    uint64_t now_s)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	MDB_cursor_op op;
	uint8_t last[sizeof(sw->js_key)];
	size_t lastlen = 0;
	uint64_t until;
	int n, rc;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		goto done;
	k.mv_data = sw->js_key;
	k.mv_size = sw->js_keylen;
	op = sw->js_resume ? MDB_SET_RANGE : MDB_FIRST;
	for (n = 0; n < JOURNAL_EXPIRE_SCAN; n++) {
		if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0)
			break;
		/* After a delete, MDB_NEXT yields the entry that followed it. */
		op = MDB_NEXT;
		if (k.mv_size > 0 && k.mv_size <= sizeof(last)) {
			memcpy(last, k.mv_data, k.mv_size);
			lastlen = k.mv_size;
		}
		if (keep(&v, &until) == 0 && until < now_s &&
		    (rc = mdb_cursor_del(cur, 0)) != 0)
			goto done;
	}
	if (rc == MDB_NOTFOUND) {
		/* Reached the end: the next pass starts from the beginning. */
		sw->js_resume = false;
		rc = 0;
	} else if (rc == 0 && lastlen > 0) {
		/* The first key >= last is where this pass stopped. */
		memcpy(sw->js_key, last, lastlen);
		sw->js_keylen = lastlen;
		sw->js_resume = true;
	}
done:
	if (cur != NULL)
		mdb_cursor_close(cur);
	return rc;
}

/* Expired jti entries go in passes at most once a second. */
static int
journal_jti_expire(struct journal *j, MDB_txn *txn)
{
	uint64_t now = now_ms();

	if (now - j->j_expire_ms < JOURNAL_EXPIRE_EVERY_MS)
		return 0;
	j->j_expire_ms = now;
	return journal_sweep(txn, j->j_jti, &j->j_jti_sweep, journal_number_get, now / 1000);
}

/*
 * Whether this commit should carry a checkpoint (docs/contract.md §7: at
 * most one a second under load).
 */
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
int
journal_put_ckpt(struct journal *j, MDB_txn *txn, const struct merkle_cr *cr, bool *did_sign)
{
	msgpack_zone *z;
	struct mpk_map m;
	msgpack_sbuffer payload, env;
	uint8_t root[JHASH_LEN], kb[JSEQ_KEY_LEN];
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
	k = journal_seq_key(kb, cr->cr_size);
	v.mv_data = env.data;
	v.mv_size = env.size;
	if ((rc = mdb_put(txn, j->j_ckpt, &k, &v, 0)) != 0)
		goto done;
	k = journal_meta_key(JMETA_LATEST);
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
	bool ckpt = false, revoked = false;
	uint64_t t0 = now_us_mono(), t1;
	int rc;

	msgpack_sbuffer_init(&sb);
	if ((rc = mdb_txn_begin(j->j_env, NULL, 0, &txn)) != 0)
		goto done;
	/* Queue order is commit order: operations of every kind interleave as queued. */
	for (op = batch; op != NULL; op = op->jo_next) {
		switch (op->jo_type) {
		case JOP_REVOKE:
			/* The revocation and its record (if any) commit together. */
			rc = journal_revoke_store(j, txn, op, !revoked);
			revoked = true;
			if (rc == 0)
				rc = journal_put_recs(j, txn, op, &cr, &tmax, &sb);
			break;
		case JOP_APPEND:
			/* The jtis the records' request used, in the same commit. */
			rc = journal_put_claims(j, txn, op);
			if (rc == 0)
				rc = journal_put_recs(j, txn, op, &cr, &tmax, &sb);
			break;
		case JOP_PARTY:
			rc = journal_party_store(j, txn, op);
			break;
		case JOP_WITNESS:
			rc = journal_witness_store(j, txn, op);
			break;
		}
		if (rc != 0)
			goto done;
	}
	if ((rc = journal_jti_expire(j, txn)) != 0)
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
	t1 = now_us_mono();
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0)
		goto done;
	atomic_fetch_add(&j->j_st_sync_us, now_us_mono() - t1);
	atomic_fetch_add(&j->j_st_commit_us, now_us_mono() - t0);
	atomic_fetch_add(&j->j_st_commits, 1);
	atomic_fetch_add(&j->j_st_records, cr.cr_size - j->j_cr.cr_size);
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
	if (rc != 0)
		atomic_fetch_add(&j->j_st_failures, 1);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

int
journal_grow(struct journal *j)
{
	MDB_envinfo info = { 0 };
	size_t size, limit = journal_map_limit(j);
	int rc;

	if ((rc = mdb_env_info(j->j_env, &info)) != 0)
		goto done;
	if (info.me_mapsize >= limit) {
		rc = ENOSPC;
		goto done;
	}
	size = info.me_mapsize > limit / 2 ? limit : info.me_mapsize * 2;
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
	/*
	 * Committed, the jti table holds the claims, and new readers see it;
	 * failed, nothing holds them and their requests fail.  Either way the
	 * reservations have done their work.
	 */
	journal_claims_done(j, batch);
	journal_map_note(j);
	atomic_store(&j->j_failing_full, rc == MDB_MAP_FULL);
	atomic_store(&j->j_failing, rc != 0);
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

	if (op->jo_done != NULL)
		op->jo_done(op->jo_arg, op->jo_status, op->jo_first_seq);
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
		/* A revocation counts once, with the one record it may carry. */
		w = op->jo_type == JOP_APPEND ? op->jo_n + op->jo_nclaims : 1;
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

void *
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

