/*
 * check_loops.c - unit tests for what the event loops share (loops.c,
 * docs/performance.md): the sealer batches claims of several loops and
 * completes each on the loop it came from, and the rate buckets give out
 * exactly their tokens when loops take them at the same time.  Run under
 * ThreadSanitizer (CFLAGS=-fsanitize=thread) they also show the locking.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "gateway.h"
#include "check_util.h"

#define NLOOPS		3
#define PER_LOOP	8

/* One claim of a loop, and the thread its completion ran on. */
struct lclaim {
	struct seal_req	 lc_sr;
	uint8_t		*lc_claim;
	size_t		 lc_claim_len;
	pthread_t	 lc_ran_on;
	struct tloop	*lc_loop;
};

/* A stand-in for one event loop: its base, thread and claims. */
struct tloop {
	struct event_base	*tl_base;
	pthread_t		 tl_thread;
	pthread_t		 tl_self;	/* set by the thread itself */
	struct sealer		*tl_sealer;
	const struct seal_key	*tl_key;
	struct lclaim		 tl_claims[PER_LOOP];
	int			 tl_done;	/* this loop's thread only */
	int			 tl_wrong;	/* completions on another thread */
};

static void
lclaim_done(void *arg, struct seal_req *sr)
{
	struct lclaim	*lc = arg;

	lc->lc_ran_on = pthread_self();
	if (!pthread_equal(lc->lc_ran_on, lc->lc_loop->tl_self) || sr->sr_status != 0)
		lc->lc_loop->tl_wrong++;
	lc->lc_loop->tl_done++;
}

static void *
tloop_main(void *arg)
{
	struct tloop	*tl = arg;
	struct seal_req	*r;
	msgpack_sbuffer	 sb;
	uint8_t		 doc[32], exch[16];
	int		 i;

	tl->tl_self = pthread_self();
	sealer_expect(tl->tl_sealer);
	for (i = 0; i < PER_LOOP; i++) {
		struct lclaim *lc = &tl->tl_claims[i];

		memset(doc, 'a' + i, sizeof(doc));
		memset(exch, i, sizeof(exch));
		msgpack_sbuffer_init(&sb);
		if (seal_claim_pack(tl->tl_key, "birth_medical_certificate", doc, sizeof(doc),
		    exch, now_ms() / 1000, &sb) != 0)
			abort();
		lc->lc_claim_len = sb.size;
		lc->lc_claim = (uint8_t *)msgpack_sbuffer_release(&sb);
		lc->lc_loop = tl;
		lc->lc_sr.sr_key = tl->tl_key;
		lc->lc_sr.sr_claim = lc->lc_claim;
		lc->lc_sr.sr_claim_len = lc->lc_claim_len;
		lc->lc_sr.sr_done = lclaim_done;
		lc->lc_sr.sr_arg = lc;
		lc->lc_sr.sr_base = tl->tl_base;
		r = &lc->lc_sr;
		sealer_submit(tl->tl_sealer, &r, 1);
	}
	sealer_unexpect(tl->tl_sealer);
	check_run_until(tl->tl_base, &tl->tl_done, PER_LOOP, 10000);
	return NULL;
}

/*
 * Three loops submit claims at once to one sealer whose window is long:
 * they are signed once no loop expects more, and every claim completes on
 * its own loop's thread, never on the sealer's or another loop's.
 */
START_TEST(test_sealer_completes_claims_on_their_loop)
{
	struct event_base	*main_base;
	struct workers		*w;
	struct sealer		*s;
	struct seal_key		 sk;
	struct tloop		 loops[NLOOPS];
	uint64_t		 batches, nclaims;
	int			 i, j;

	ck_assert_ptr_nonnull(main_base = event_base_new());
	ck_assert_ptr_nonnull(w = workers_new(2));
	memset(&sk, 0, sizeof(sk));
	snprintf(sk.sk_id, sizeof(sk.sk_id), "nhc");
	snprintf(sk.sk_dept, sizeof(sk.sk_dept), "nhc");
	ck_assert_ptr_nonnull(sk.sk_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
	sk.sk_cert = check_cert(sk.sk_key, "/O=nhc/CN=nhc", 1, NULL, NULL, false);
	sk.sk_alg = LB_ALG_ES256;
	sk.sk_hash = MK_SHA256;
	ck_assert_int_eq(key_id_cert(sk.sk_cert, sk.sk_kid), 0);
	ck_assert_ptr_nonnull(s = sealer_new(main_base, w, 10 * 1000000, 256));
	memset(loops, 0, sizeof(loops));
	/* Held until every loop has started, so that their claims may meet in a batch. */
	sealer_expect(s);
	for (i = 0; i < NLOOPS; i++) {
		ck_assert_ptr_nonnull(loops[i].tl_base = event_base_new());
		loops[i].tl_sealer = s;
		loops[i].tl_key = &sk;
	}
	for (i = 0; i < NLOOPS; i++)
		ck_assert_int_eq(pthread_create(&loops[i].tl_thread, NULL, tloop_main,
		    &loops[i]), 0);
	sealer_unexpect(s);
	for (i = 0; i < NLOOPS; i++)
		pthread_join(loops[i].tl_thread, NULL);
	for (i = 0; i < NLOOPS; i++) {
		ck_assert_int_eq(loops[i].tl_done, PER_LOOP);
		ck_assert_int_eq(loops[i].tl_wrong, 0);
		for (j = 0; j < PER_LOOP; j++) {
			ck_assert_ptr_nonnull(loops[i].tl_claims[j].lc_sr.sr_receipt);
			free(loops[i].tl_claims[j].lc_sr.sr_receipt);
			free(loops[i].tl_claims[j].lc_claim);
		}
	}
	sealer_stats(s, &batches, &nclaims);
	ck_assert_uint_eq(nclaims, NLOOPS * PER_LOOP);
	ck_assert_uint_le(batches, NLOOPS * PER_LOOP);
	sealer_free(s);
	workers_free(w);
	event_base_loop(main_base, EVLOOP_NONBLOCK);
	for (i = 0; i < NLOOPS; i++)
		event_base_free(loops[i].tl_base);
	event_base_free(main_base);
	seal_key_clear(&sk);
}
END_TEST

#define BURST	500

struct taker {
	struct policy_rates	*tk_rates;
	int			 tk_taken;
};

static void *
taker_main(void *arg)
{
	struct taker	*tk = arg;
	int		 i;

	/* One instant: no refill, so the burst is all there is. */
	for (i = 0; i < BURST; i++)
		if (policy_bucket_take(tk->tk_rates, "newborn", "newborn", 1, BURST,
		    1000000) == 0)
			tk->tk_taken++;
	return NULL;
}

struct refused {
	uint64_t	rf_count;
};

static void
count_refused(void *arg, const char *scope, const char *who, uint64_t refused)
{
	struct refused	*rf = arg;

	ck_assert_ptr_nonnull(scope);
	ck_assert_str_eq(who, "newborn");
	rf->rf_count += refused;
}

/*
 * Loops take tokens of one (bundle, consumer) bucket at the same time:
 * exactly burst of them are given, and every other take is counted once
 * as a refusal.
 */
START_TEST(test_rate_bucket_shared_by_loops)
{
	struct policy_rates	*rt;
	struct taker		 tk[NLOOPS];
	pthread_t		 t[NLOOPS];
	struct refused		 rf = { 0 };
	int			 i, taken = 0;

	ck_assert_ptr_nonnull(rt = policy_rates_new(16));
	for (i = 0; i < NLOOPS; i++) {
		tk[i].tk_rates = rt;
		tk[i].tk_taken = 0;
		ck_assert_int_eq(pthread_create(&t[i], NULL, taker_main, &tk[i]), 0);
	}
	for (i = 0; i < NLOOPS; i++) {
		pthread_join(t[i], NULL);
		taken += tk[i].tk_taken;
	}
	ck_assert_int_eq(taken, BURST);
	policy_rates_drain(rt, count_refused, &rf);
	ck_assert_uint_eq(rf.rf_count, (uint64_t)(NLOOPS - 1) * BURST);
	policy_rates_free(rt);
}
END_TEST

static Suite *
loops_suite(void)
{
	Suite	*su = suite_create("loops");
	TCase	*tc = tcase_create("shared");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_sealer_completes_claims_on_their_loop);
	tcase_add_test(tc, test_rate_bucket_shared_by_loops);
	suite_add_tcase(su, tc);
	return su;
}

int
main(void)
{
	log_init("check_loops", 0);
	if (evthread_use_pthreads() != 0)
		return 1;
	return check_run(loops_suite());
}
