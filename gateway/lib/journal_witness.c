/*
 * journal_witness.c - a cluster node's notes about its peers' journals
 * (docs/audit.md, "A cluster's journals"), kept in the journal's LMDB
 * environment (named database "witness") so that a restart keeps the last
 * checkpoint of each peer that the node verified, and with it the node's
 * memory of what each peer's journal said.
 *
 * The notes are not records: they are outside the Merkle log, like jti
 * claims and revocations, and written the same way, queued for the writer
 * thread and stored in its next group commit (no fsync of their own).
 */
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "journal_impl.h"

int
journal_witness_put(struct journal *j, struct event_base *base, const uint8_t *key,
    size_t keylen, const uint8_t *val, size_t vallen, journal_done_fn fn, void *arg)
{
	struct jop	*op;
	size_t		 room;

	if (keylen == 0 || keylen > JOURNAL_WITNESS_KEY_MAX || vallen == 0 ||
	    vallen > JOURNAL_WITNESS_VAL_MAX)
		return -1;
	/*
	 * The pair travels in the operation's own allocation, in the room of
	 * as many records as it needs, so that the writer frees it with the
	 * operation like any other.
	 */
	room = (keylen + vallen + sizeof(struct jrec) - 1) / sizeof(struct jrec);
	if ((op = journal_op_new(JOP_WITNESS, base, arg, room)) == NULL)
		return -1;
	op->jo_n = 0;
	op->jo_done = fn;
	op->jo_wit = (uint8_t *)op->jo_recs;
	memcpy(op->jo_wit, key, keylen);
	memcpy(op->jo_wit + keylen, val, vallen);
	op->jo_wit_keylen = keylen;
	op->jo_wit_vallen = vallen;
	return journal_op_queue(j, op, 1);
}

int
journal_witness_store(struct journal *j, MDB_txn *txn, struct jop *op)
{
	MDB_val	k = { op->jo_wit_keylen, op->jo_wit },
		v = { op->jo_wit_vallen, op->jo_wit + op->jo_wit_keylen };

	return mdb_put(txn, j->j_wit, &k, &v, 0);
}

int
journal_witness_each(struct journal *j, const uint8_t *prefix, size_t prefixlen,
    journal_witness_fn fn, void *arg)
{
	MDB_txn		*txn;
	MDB_cursor	*cur = NULL;
	MDB_val		 k = { prefixlen, (void *)(uintptr_t)prefix }, v;
	int		 rc, ret = -1;

	if (journal_rtxn_begin(j, &txn) == -1)
		return -1;
	if (mdb_cursor_open(txn, j->j_wit, &cur) != 0)
		goto done;
	rc = prefixlen > 0 ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) :
	    mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < prefixlen || memcmp(k.mv_data, prefix, prefixlen) != 0)
			break;
		if (fn(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size) != 0)
			break;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto done;
	ret = 0;
done:
	if (cur != NULL)
		mdb_cursor_close(cur);
	journal_rtxn_end(j, txn);
	return ret;
}
