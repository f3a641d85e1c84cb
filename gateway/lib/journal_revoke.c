/*
 * journal_revoke.c - consent revocations (docs/consent.md), kept in the
 * journal's LMDB environment so that they survive a restart.
 *
 * A revocation is written like everything else in that environment: queued
 * for the writer thread and stored in its next group commit, together with
 * the "revoke" record that says who revoked what.  The revocation is
 * therefore in force exactly when its record is durable, and it costs no
 * fsync of its own.  Look-ups are read transactions on any thread.
 *
 * Keys are 'j' || jti for one token and 's' || subject pseudonym || bundle
 * for a citizen's consent to a bundle; the value is revoked_at ||
 * keep_until (journal_impl.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "journal_impl.h"

int
journal_revoke_key(const struct journal *j, const uint8_t *jti, const char *subject,
    const char *bundle, uint8_t key[JOURNAL_REVOKE_KEY_MAX], size_t *keylen)
{
	size_t	blen;

	if (jti != NULL) {
		key[0] = JREV_TAG_JTI;
		memcpy(key + JREV_TAG_LEN, jti, JJTI_LEN);
		*keylen = JREV_JTI_KEY_LEN;
		return 0;
	}
	if (subject == NULL || bundle == NULL || (blen = strlen(bundle)) == 0 ||
	    blen >= LB_ID_MAX)
		return -1;
	key[0] = JREV_TAG_SUBJECT;
	journal_pseudonym(j, subject, key + JREV_TAG_LEN);
	memcpy(key + JREV_BUNDLE_OFF, bundle, blen);
	*keylen = JREV_BUNDLE_OFF + blen;
	return 0;
}

int
journal_revoke(struct journal *j, struct event_base *base, const uint8_t *key, size_t keylen,
    uint64_t revoked_at, uint64_t keep_until, const struct jrec *rec, journal_done_fn fn,
    void *arg)
{
	struct jop	*op;

	if (keylen == 0 || keylen > JOURNAL_REVOKE_KEY_MAX)
		return -1;
	/* Refuse a bad record here so that it cannot fail a whole group commit. */
	if (rec != NULL && journal_kind_name(rec->jr_kind) == NULL)
		return -1;
	if ((op = journal_op_new(JOP_REVOKE, base, arg, rec != NULL ? 1 : 0)) == NULL)
		return -1;
	op->jo_done = fn;
	memcpy(op->jo_rev_key, key, keylen);
	op->jo_rev_keylen = keylen;
	op->jo_revoked_at = revoked_at;
	op->jo_keep_until = keep_until;
	if (rec != NULL)
		op->jo_recs[0] = *rec;
	/* It counts once, with the one record it may carry. */
	return journal_op_queue(j, op, 1);
}

/* The keep_until of a revocation value, for journal_sweep. */
static int
journal_revoke_keep(const MDB_val *v, uint64_t *keep_until)
{
	return journal_rev_val_get(v, NULL, keep_until);
}

int
journal_revoke_store(struct journal *j, MDB_txn *txn, struct jop *op, bool sweep)
{
	MDB_val		k = { op->jo_rev_keylen, op->jo_rev_key }, v, old;
	uint8_t		vb[JREV_VAL_LEN];
	uint64_t	old_at;
	int		rc;

	if (sweep && (rc = journal_sweep(txn, j->j_rev, &j->j_rev_sweep, journal_revoke_keep,
	    now_ms() / 1000)) != 0)
		return rc;
	/*
	 * A later revocation of the same key covers more tokens: keep the
	 * latest, and never let an older one (a replay) shrink it.
	 */
	if ((rc = mdb_get(txn, j->j_rev, &k, &old)) == 0 &&
	    journal_rev_val_get(&old, &old_at, NULL) == 0 && old_at >= op->jo_revoked_at)
		return 0;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	journal_rev_val_put(vb, op->jo_revoked_at, op->jo_keep_until);
	v.mv_size = sizeof(vb);
	v.mv_data = vb;
	return mdb_put(txn, j->j_rev, &k, &v, 0);
}

int
journal_revoked(struct journal *j, const uint8_t *key, size_t keylen, uint64_t *revoked_at)
{
	MDB_txn	*txn;
	MDB_val	 k = { keylen, (void *)(uintptr_t)key }, v;
	int	 rc, ret = -1;

	if (keylen == 0 || keylen > JOURNAL_REVOKE_KEY_MAX)
		return -1;
	if (journal_rtxn_begin(j, &txn) == -1)
		return -1;
	if ((rc = mdb_get(txn, j->j_rev, &k, &v)) == MDB_NOTFOUND)
		ret = 0;
	else if (rc == 0 && journal_rev_val_get(&v, revoked_at, NULL) == 0)
		ret = 1;
	journal_rtxn_end(j, txn);
	return ret;
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
