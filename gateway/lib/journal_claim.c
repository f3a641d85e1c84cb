/*
 * journal_claim.c - consent jti claims: a reservation in memory, then one
 * durable write together with the records of the request that used the token.
 *
 * A token authorizes one request (docs/contract.md §5).  Its jti used to be
 * committed on its own before the request went on, and the request's records
 * in a second commit: two fdatasyncs on the critical path of every exchange.
 * Now the jti is reserved in a set of pending jtis, consulted together with
 * the committed jti table, and written into the table by the same group commit
 * that holds the request's records (journal_append_claims).  The writer drops
 * the reservation once that commit has returned, whatever its outcome: on
 * success the table holds the jti, on failure nobody does and the request is
 * answered journal_unavailable, having released nothing.
 *
 * Why one reservation wins: journal_jti_reserve first inserts the jti into the
 * pending set (under jq_mtx, a memory operation only), then reads the
 * committed table with no lock held.  Take a second request with the same
 * jti.  If its insert came while the first reservation was pending, it saw
 * it.  If it came after the writer dropped that reservation, the writer had
 * already committed the jti, so the second request's read transaction, begun
 * after its insert, sees the committed entry.  If it came before the first
 * insert, the first request is the one that loses.  Either way exactly one
 * of them proceeds, without a lock held across a read of LMDB.
 *
 * A crash between the reservation and the commit loses the reservation with
 * the request: nothing was answered, nothing released, and the token may be
 * presented again after the restart (docs/consent.md).
 */
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "journal_impl.h"

static size_t
journal_pending_bucket(const uint8_t jti[JJTI_LEN])
{
	uint64_t	h = 0;
	int		i;

	/*
	 * A jti is chosen by an authority whose signature was checked before it
	 * is reserved; mixing all its bytes is enough to spread even counters.
	 */
	for (i = 0; i < JJTI_LEN; i++)
		h = (h ^ jti[i]) * 0x100000001b3ULL;
	return (size_t)(h >> 32) & (JPENDING_BUCKETS - 1);
}

void
journal_pending_init(struct jpending *jq)
{
	pthread_mutex_init(&jq->jq_mtx, NULL);
	memset(jq->jq_bucket, 0, sizeof(jq->jq_bucket));
	jq->jq_n = 0;
}

void
journal_pending_free(struct jpending *jq)
{
	struct jpend	*p, *next;
	size_t		 i;

	for (i = 0; i < JPENDING_BUCKETS; i++)
		for (p = jq->jq_bucket[i]; p != NULL; p = next) {
			next = p->jp_next;
			free(p);
		}
	pthread_mutex_destroy(&jq->jq_mtx);
}

int
journal_pending_add(struct jpending *jq, const uint8_t jti[JJTI_LEN])
{
	struct jpend	*p, *np;
	size_t		 b = journal_pending_bucket(jti);
	int		 ret = 1;

	/* Allocated before the lock, so that only memory is touched under it. */
	if ((np = malloc(sizeof(*np))) == NULL)
		return -1;
	memcpy(np->jp_jti, jti, JJTI_LEN);
	pthread_mutex_lock(&jq->jq_mtx);
	for (p = jq->jq_bucket[b]; p != NULL; p = p->jp_next)
		if (memcmp(p->jp_jti, jti, JJTI_LEN) == 0)
			goto done;
	np->jp_next = jq->jq_bucket[b];
	jq->jq_bucket[b] = np;
	jq->jq_n++;
	np = NULL;
	ret = 0;
done:
	pthread_mutex_unlock(&jq->jq_mtx);
	free(np);
	return ret;
}

void
journal_pending_del(struct jpending *jq, const uint8_t jti[JJTI_LEN])
{
	struct jpend	**pp, *p = NULL;

	pthread_mutex_lock(&jq->jq_mtx);
	for (pp = &jq->jq_bucket[journal_pending_bucket(jti)]; *pp != NULL;
	    pp = &(*pp)->jp_next)
		if (memcmp((*pp)->jp_jti, jti, JJTI_LEN) == 0) {
			p = *pp;
			*pp = p->jp_next;
			jq->jq_n--;
			break;
		}
	pthread_mutex_unlock(&jq->jq_mtx);
	free(p);
}

size_t
journal_pending_count(struct jpending *jq)
{
	size_t	n;

	pthread_mutex_lock(&jq->jq_mtx);
	n = jq->jq_n;
	pthread_mutex_unlock(&jq->jq_mtx);
	return n;
}

int
journal_jti_reserve(struct journal *j, const uint8_t jti[16], uint64_t keep_until)
{
	MDB_txn	*txn;
	MDB_val	 k = { JJTI_LEN, (void *)(uintptr_t)jti }, v;
	int	 rc, ret = -1;

	/*
	 * A token kept until a time already past is refused: expiry may have
	 * removed the committed jti of its first use, and the table would then
	 * let a replay through.  The token was valid when checked, but has
	 * expired on its way here.
	 */
	if (keep_until < now_ms() / 1000)
		return 2;
	/* The insert first, the read after it: see the comment at the top. */
	if ((rc = journal_pending_add(&j->j_pending, jti)) != 0)
		return rc;
	if (journal_rtxn_begin(j, &txn) != 0)
		goto done;
	rc = mdb_get(txn, j->j_jti, &k, &v);
	journal_rtxn_end(j, txn);
	if (rc == 0)
		ret = 1;
	else if (rc == MDB_NOTFOUND)
		ret = 0;
done:
	if (ret != 0)
		journal_pending_del(&j->j_pending, jti);
	return ret;
}

void
journal_jti_release(struct journal *j, const uint8_t jti[16])
{
	journal_pending_del(&j->j_pending, jti);
}

int
journal_append_claims(struct journal *j, struct event_base *base, const struct jrec *recs,
    size_t n, const struct jclaim *claims, size_t nclaims, journal_done_fn fn, void *arg)
{
	struct jop	*op = NULL;
	size_t		 i;
	int		 ret = -1;

	if (n + nclaims == 0 || n > JOURNAL_BATCH_MAX || nclaims > JOURNAL_CLAIMS_MAX)
		goto done;
	/* Refuse bad records here so that one cannot fail a whole group commit. */
	for (i = 0; i < n; i++)
		if (journal_kind_name(recs[i].jr_kind) == NULL)
			goto done;
	if ((op = journal_op_new(JOP_APPEND, base, arg, n)) == NULL)
		goto done;
	op->jo_done = fn;
	if (n > 0)
		memcpy(op->jo_recs, recs, n * sizeof(recs[0]));
	if (nclaims > 0)
		memcpy(op->jo_claims, claims, nclaims * sizeof(claims[0]));
	op->jo_nclaims = nclaims;
	ret = journal_op_queue(j, op, n + nclaims);
	/* Queued, the writer owns op and drops its reservations after the commit. */
	op = NULL;
done:
	free(op);
	if (ret != 0)
		for (i = 0; i < nclaims; i++)
			journal_jti_release(j, claims[i].jl_jti);
	return ret;
}

int
journal_put_claims(struct journal *j, MDB_txn *txn, const struct jop *op)
{
	uint8_t	vb[JJTI_VAL_LEN];
	MDB_val	k, v = { sizeof(vb), vb };
	size_t	i;
	int	rc;

	for (i = 0; i < op->jo_nclaims; i++) {
		k.mv_size = JJTI_LEN;
		k.mv_data = (void *)(uintptr_t)op->jo_claims[i].jl_jti;
		journal_u64_put(vb, op->jo_claims[i].jl_keep_until);
		/*
		 * The reservation made sure that no entry exists.  Should one be
		 * there all the same, the reservation has already decided who
		 * proceeds: the table keeps the first entry, the records commit.
		 */
		rc = mdb_put(txn, j->j_jti, &k, &v, MDB_NOOVERWRITE);
		if (rc == MDB_KEYEXIST)
			log_warnx("journal: a reserved consent jti was already recorded");
		else if (rc != 0)
			return rc;
	}
	return 0;
}

void
journal_claims_done(struct journal *j, const struct jop *batch)
{
	const struct jop	*op;
	size_t			 i;

	for (op = batch; op != NULL; op = op->jo_next)
		for (i = 0; i < op->jo_nclaims; i++)
			journal_pending_del(&j->j_pending, op->jo_claims[i].jl_jti);
}
