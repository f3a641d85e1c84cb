/*
 * check_claim.c - unit tests of consent jti claims (journal_claim.c): the
 * reservation set in memory, its release, the one group commit that holds a
 * claim with its records, a failed commit, and many threads racing for the
 * same jtis while the writer commits and releases them.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <check.h>
#include <event2/event.h>

#include "lianban.h"
#include "check_util.h"

static char		 tparent[64];	/* removed by main, even after failures */
static char		 tdir[128];
static EVP_PKEY		*tkey;
static X509		*tcert;
static struct event_base *tbase;
static struct journal	*tj;
static int		 ndone;		/* completions, counted on the loop */

struct donectx {
	int		 dc_status;
	uint64_t	 dc_first;
};

static void
on_done(void *arg, int status, uint64_t first)
{
	struct donectx *dc = arg;

	dc->dc_status = status;
	dc->dc_first = first;
	ndone++;
}

static void
setup(void)
{
	snprintf(tdir, sizeof(tdir), "%s/t.XXXXXX", tparent);
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	ck_assert_ptr_nonnull(tkey = EVP_EC_gen("P-256"));
	tcert = check_cert(tkey, "/CN=journal checkpoint", 1, NULL, NULL, false);
	ck_assert_ptr_nonnull(tbase = event_base_new());
	tj = check_journal_open(tdir, tkey, tcert, 0);
	ndone = 0;
}

static void
teardown(void)
{
	journal_close(tj);
	tj = NULL;
	event_base_free(tbase);
	EVP_PKEY_free(tkey);
	X509_free(tcert);
	(void)check_rm_tree(tdir);
}

static void
jti_of(uint8_t jti[16], unsigned n)
{
	memset(jti, 0xa5, 16);
	jti[0] = (uint8_t)(n >> 24);
	jti[1] = (uint8_t)(n >> 16);
	jti[2] = (uint8_t)(n >> 8);
	jti[3] = (uint8_t)n;
}

static struct jclaim
claim_of(const uint8_t jti[16], uint64_t keep)
{
	struct jclaim c;

	memcpy(c.jl_jti, jti, sizeof(c.jl_jti));
	c.jl_keep_until = keep;
	return c;
}

static void
rec_of(struct jrec *r, const char *item)
{
	memset(r, 0, sizeof(*r));
	r->jr_kind = JK_ITEM;
	r->jr_t_ms = (uint64_t)time(NULL) * 1000;
	snprintf(r->jr_consumer, sizeof(r->jr_consumer), "newborn");
	snprintf(r->jr_item, sizeof(r->jr_item), "%s", item);
	snprintf(r->jr_decision, sizeof(r->jr_decision), "allow");
	snprintf(r->jr_code, sizeof(r->jr_code), "ok");
}

static uint64_t
pending(void)
{
	struct journal_stats js;

	journal_stats(tj, &js);
	return js.js_jti_pending;
}

/* A reservation is held in memory until it is released or committed. */
START_TEST(test_reserve_release)
{
	uint64_t keep = (uint64_t)time(NULL) + 600;
	uint8_t a[16], b[16];

	jti_of(a, 1);
	jti_of(b, 2);
	ck_assert_int_eq(journal_jti_reserve(tj, a, keep), 0);
	ck_assert_int_eq(journal_jti_reserve(tj, a, keep), 1);
	ck_assert_int_eq(journal_jti_reserve(tj, b, keep), 0);
	ck_assert_uint_eq(pending(), 2);
	/* Given back (a request that failed as a whole), the token is unused again. */
	journal_jti_release(tj, a);
	ck_assert_uint_eq(pending(), 1);
	ck_assert_int_eq(journal_jti_reserve(tj, a, keep), 0);
	/* A token kept until a time already past is refused, not reserved. */
	jti_of(a, 3);
	ck_assert_int_eq(journal_jti_reserve(tj, a, (uint64_t)time(NULL) - 1), 2);
	ck_assert_uint_eq(pending(), 2);
	/* Releasing what is not held changes nothing. */
	journal_jti_release(tj, a);
	ck_assert_uint_eq(pending(), 2);
}
END_TEST

/*
 * One commit per request: the claim and the records land in one
 * transaction, so 100 sequential requests cost 100 commits (one fdatasync
 * each), not 200.  The reservation is gone after each, the table holds the
 * jti, and the token stays used across a restart.
 */
START_TEST(test_one_commit)
{
	enum { NREQ = 100, NREC = 3 };
	static struct donectx dc[NREQ];
	struct journal_stats before, js;
	struct jrec recs[NREC];
	struct jclaim c;
	uint64_t keep = (uint64_t)time(NULL) + 600;
	uint8_t jti[16];
	int i, k;

	for (k = 0; k < NREC; k++)
		rec_of(&recs[k], k == NREC - 1 ? "" : "birth_medical_certificate");
	journal_stats(tj, &before);
	for (i = 0; i < NREQ; i++) {
		jti_of(jti, (unsigned)i);
		ck_assert_int_eq(journal_jti_reserve(tj, jti, keep), 0);
		c = claim_of(jti, keep);
		ck_assert_int_eq(journal_append_claims(tj, tbase, recs, NREC, &c, 1, on_done,
		    &dc[i]), 0);
		check_run_until(tbase, &ndone, i + 1, 60 * 1000);
		ck_assert_int_eq(ndone, i + 1);
		ck_assert_int_eq(dc[i].dc_status, 0);
		journal_stats(tj, &js);
		ck_assert_uint_eq(js.js_jti, before.js_jti + (uint64_t)i + 1);
		ck_assert_uint_eq(js.js_size, before.js_size + (uint64_t)(i + 1) * NREC);
		ck_assert_uint_eq(js.js_jti_pending, 0);
		/* Committed, the jti refuses a second use. */
		ck_assert_int_eq(journal_jti_reserve(tj, jti, keep), 1);
	}
	journal_stats(tj, &js);
	printf("check_claim: %d requests, %llu commits\n", NREQ,
	    (unsigned long long)(js.js_commits - before.js_commits));
	ck_assert_uint_eq(js.js_commits - before.js_commits, NREQ);
	journal_close(tj);
	tj = check_journal_open(tdir, tkey, tcert, 0);
	for (i = 0; i < NREQ; i++) {
		jti_of(jti, (unsigned)i);
		ck_assert_int_eq(journal_jti_reserve(tj, jti, keep), 1);
	}
	jti_of(jti, NREQ);
	ck_assert_int_eq(journal_jti_reserve(tj, jti, keep), 0);
}
END_TEST

/*
 * A failed commit writes neither the records nor the claim; its
 * reservation is dropped, and the token may be presented again.
 */
START_TEST(test_failed_commit)
{
	static struct donectx big, small;
	struct jrec *recs;
	struct jclaim c, many[JOURNAL_CLAIMS_MAX + 1];
	struct rlimit old, lim;
	struct stat st;
	char path[256];
	void (*oldsig)(int);
	uint64_t keep = (uint64_t)time(NULL) + 600;
	uint8_t jti[16];
	int i;

	ck_assert_ptr_nonnull(recs = calloc(JOURNAL_BATCH_MAX, sizeof(*recs)));
	for (i = 0; i < JOURNAL_BATCH_MAX; i++)
		rec_of(&recs[i], "birth_medical_certificate");
	jti_of(jti, 7);
	ck_assert_int_eq(journal_jti_reserve(tj, jti, keep), 0);
	c = claim_of(jti, keep);
	/* The data file may not grow: writing the new pages fails with EFBIG. */
	snprintf(path, sizeof(path), "%s/data.mdb", tdir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size;
	oldsig = signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	ck_assert_int_eq(journal_append_claims(tj, tbase, recs, JOURNAL_BATCH_MAX, &c, 1,
	    on_done, &big), 0);
	check_run_until(tbase, &ndone, 1, 60 * 1000);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, oldsig);
	ck_assert_int_eq(ndone, 1);
	ck_assert_int_eq(big.dc_status, -1);
	ck_assert_uint_eq(journal_size(tj), 0);
	ck_assert_uint_eq(pending(), 0);
	/* Nothing was acknowledged: the token is unused, and now claimed for good. */
	ck_assert_int_eq(journal_jti_reserve(tj, jti, keep), 0);
	ck_assert_int_eq(journal_append_claims(tj, tbase, recs, 1, &c, 1, on_done, &small), 0);
	check_run_until(tbase, &ndone, 2, 60 * 1000);
	ck_assert_int_eq(small.dc_status, 0);
	ck_assert_int_eq(journal_jti_reserve(tj, jti, keep), 1);
	/* Refused at the door (no record, no claim), the reservation goes at once. */
	jti_of(jti, 8);
	ck_assert_int_eq(journal_jti_reserve(tj, jti, keep), 0);
	for (i = 0; i < JOURNAL_CLAIMS_MAX + 1; i++)
		many[i] = claim_of(jti, keep);
	ck_assert_int_eq(journal_append_claims(tj, tbase, NULL, 0, many, JOURNAL_CLAIMS_MAX + 1,
	    on_done, &small), -1);
	ck_assert_uint_eq(pending(), 0);
	free(recs);
}
END_TEST

/*
 * Threads race for the same jtis while each winner's claim commits at once
 * and the writer drops the reservation: whether a loser comes while the
 * winner is pending or after its commit, it loses.  Exactly one winner per
 * jti, however the threads interleave with the writer.
 */
enum { RACE_THREADS = 4, RACE_JTIS = 400 };
static _Atomic int	race_wins[RACE_JTIS];
static _Atomic int	race_commits, race_failures;

static void
race_done(void *arg, int status, uint64_t first)
{
	(void)arg;
	(void)first;
	if (status == 0)
		atomic_fetch_add(&race_commits, 1);
	else
		atomic_fetch_add(&race_failures, 1);
}

static void *
race_main(void *arg)
{
	uintptr_t t = (uintptr_t)arg;
	uint64_t keep = (uint64_t)time(NULL) + 600;
	struct jclaim c;
	uint8_t jti[16];
	unsigned i, n;
	int st;

	for (i = 0; i < RACE_JTIS; i++) {
		/* Each thread walks the jtis from another start. */
		n = (unsigned)((i + t * RACE_JTIS / RACE_THREADS) % RACE_JTIS);
		jti_of(jti, n);
		st = journal_jti_reserve(tj, jti, keep);
		if (st == 0) {
			atomic_fetch_add(&race_wins[n], 1);
			c = claim_of(jti, keep);
			/* With no base, the completion runs on the writer. */
			if (journal_append_claims(tj, NULL, NULL, 0, &c, 1, race_done, NULL) != 0)
				atomic_fetch_add(&race_failures, 1);
		} else if (st != 1)
			atomic_fetch_add(&race_failures, 1);
	}
	return NULL;
}

START_TEST(test_race)
{
	pthread_t th[RACE_THREADS];
	uint64_t keep = (uint64_t)time(NULL) + 600;
	struct timespec ts = { 0, 1000000 };
	uint8_t jti[16];
	uintptr_t t;
	int i;

	for (t = 0; t < RACE_THREADS; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, race_main, (void *)t), 0);
	for (t = 0; t < RACE_THREADS; t++)
		pthread_join(th[t], NULL);
	for (i = 0; i < 60000 && atomic_load(&race_commits) < RACE_JTIS; i++)
		nanosleep(&ts, NULL);
	ck_assert_int_eq(atomic_load(&race_failures), 0);
	ck_assert_int_eq(atomic_load(&race_commits), RACE_JTIS);
	for (i = 0; i < RACE_JTIS; i++) {
		ck_assert_msg(atomic_load(&race_wins[i]) == 1, "jti %d won %d times", i,
		    atomic_load(&race_wins[i]));
		jti_of(jti, (unsigned)i);
		ck_assert_int_eq(journal_jti_reserve(tj, jti, keep), 1);
	}
	ck_assert_uint_eq(pending(), 0);
}
END_TEST

static Suite *
claim_suite(void)
{
	Suite *s = suite_create("claim");
	TCase *tc = tcase_create("reservations");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_reserve_release);
	tcase_add_test(tc, test_one_commit);
	tcase_add_test(tc, test_failed_commit);
	tcase_add_test(tc, test_race);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	int rc;

	snprintf(tparent, sizeof(tparent), "/tmp/check_claim.XXXXXX");
	if (mkdtemp(tparent) == NULL)
		return EXIT_FAILURE;
	rc = check_run(claim_suite());
	(void)check_rm_tree(tparent);
	return rc;
}
