/*
 * journal_party.c - who acted for a citizen, for the access report
 * (docs/consent.md, "What the citizen sees of an agent").
 *
 * Journal records name people only by pseudonym (HMAC of their id), so that
 * the Merkle log, which auditors copy and keep, never holds an ID number.
 * A citizen whose certificates an agent fetched should still learn who that
 * was.  This table, in the journal's LMDB environment but outside the log
 * (like the indexes), maps an agent's pseudonym to the id masked to its
 * first 6 and last 4 characters and the name the delegation record gives:
 * enough for the citizen to recognise their agent, not a full id number.
 * It is written like everything else there, by the writer thread in its
 * group commits; entries are small and few (one per agent), and are kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "journal_impl.h"

void
journal_party_mask(const char *act, char out[LB_SUBJECT_MAX])
{
	size_t	n = strnlen(act, LB_SUBJECT_MAX - 1), i;

	/* Too short to show both ends without giving most of it away: mask all. */
	for (i = 0; i < n; i++)
		out[i] = n > 10 && (i < 6 || i >= n - 4) ? act[i] : '*';
	out[n] = '\0';
}

int
journal_party_note(struct journal *j, const char *act, const char *name)
{
	struct jop	*op;
	char		 masked[LB_SUBJECT_MAX];
	size_t		 alen = strlen(act), nlen = strlen(name);

	if (alen == 0 || alen >= LB_SUBJECT_MAX)
		return -1;
	/* Cut the name at a character boundary of its UTF-8. */
	if (nlen > JOURNAL_PARTY_NAME_MAX - 1) {
		nlen = JOURNAL_PARTY_NAME_MAX - 1;
		while (nlen > 0 && ((unsigned char)name[nlen] & 0xc0) == 0x80)
			nlen--;
	}
	journal_party_mask(act, masked);
	if ((op = journal_op_new(JOP_PARTY, NULL, NULL, 0)) == NULL)
		return -1;
	journal_pseudonym(j, act, op->jo_party_key);
	memcpy(op->jo_party_val, masked, alen + 1);
	memcpy(op->jo_party_val + alen + 1, name, nlen);
	op->jo_party_len = alen + 1 + nlen;
	return journal_op_queue(j, op, 1);
}

int
journal_party_store(struct journal *j, MDB_txn *txn, struct jop *op)
{
	MDB_val	k = { JHASH_LEN, op->jo_party_key }, v = { op->jo_party_len, op->jo_party_val };

	return mdb_put(txn, j->j_party, &k, &v, 0);
}

int
journal_party_get(struct journal *j, const uint8_t actor[32], char id[LB_SUBJECT_MAX],
    char name[JOURNAL_PARTY_NAME_MAX])
{
	MDB_txn		*txn;
	MDB_val		 k = { JHASH_LEN, (void *)(uintptr_t)actor }, v;
	const char	*p, *nul;
	size_t		 ilen, nlen;
	int		 rc, ret = -1;

	if (journal_rtxn_begin(j, &txn) == -1)
		return -1;
	if ((rc = mdb_get(txn, j->j_party, &k, &v)) == MDB_NOTFOUND) {
		ret = 0;
		goto done;
	}
	if (rc != 0 || v.mv_size > JPARTY_VAL_MAX)
		goto done;
	p = v.mv_data;
	if ((nul = memchr(p, '\0', v.mv_size)) == NULL ||
	    (ilen = (size_t)(nul - p)) >= LB_SUBJECT_MAX ||
	    (nlen = v.mv_size - ilen - 1) >= JOURNAL_PARTY_NAME_MAX)
		goto done;
	memcpy(id, p, ilen + 1);
	memcpy(name, nul + 1, nlen);
	name[nlen] = '\0';
	ret = 1;
done:
	journal_rtxn_end(j, txn);
	return ret;
}
