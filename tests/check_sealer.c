/*
 * check_sealer.c - unit tests for batch sealing across exchanges
 * (gateway/daemon/sealer.c): when a batch is cut (idle gateway, window, size
 * limit, per key), that its claims share one signed envelope with distinct
 * leaf indices, and that every receipt verifies offline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/x509.h>

#include "gateway.h"
#include "check_util.h"

#define NCLAIMS	16

static struct event_base	*base;
static struct workers		*workers;
static struct seal_key		 key_a, key_b;
static X509_STORE		*roots;

/* One claim waiting in a test, and what its completion brought. */
struct tclaim {
	struct seal_req	 tc_sr;
	uint8_t		 tc_doc[32];
	uint8_t		*tc_claim;
	size_t		 tc_claim_len;
	int		 tc_done;
	uint64_t	 tc_done_us;
};
static struct tclaim	claims[NCLAIMS];
static int		ndone;

/*
 * A P-256 seal of department "nhc" whose self-signed certificate is its own
 * root; O= tells the roots of the two test keys apart.
 */
static void
make_key(struct seal_key *sk, const char *id)
{
	char	subject[128];

	memset(sk, 0, sizeof(*sk));
	snprintf(sk->sk_id, sizeof(sk->sk_id), "%s", id);
	snprintf(sk->sk_dept, sizeof(sk->sk_dept), "nhc");
	ck_assert_ptr_nonnull(sk->sk_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
	snprintf(subject, sizeof(subject), "/O=%s/CN=nhc", id);
	sk->sk_cert = check_cert(sk->sk_key, subject, 1, NULL, NULL, false);
	sk->sk_alg = LB_ALG_ES256;
	sk->sk_hash = MK_SHA256;
	ck_assert_int_eq(key_id_cert(sk->sk_cert, sk->sk_kid), 0);
	X509_STORE_add_cert(roots, sk->sk_cert);
}

static void
setup(void)
{
	ck_assert_ptr_nonnull(base = event_base_new());
	ck_assert_ptr_nonnull(workers = workers_new(2));
	ck_assert_ptr_nonnull(roots = X509_STORE_new());
	make_key(&key_a, "nhc");
	make_key(&key_b, "nhc-2");
	memset(claims, 0, sizeof(claims));
	ndone = 0;
}

static void
teardown(void)
{
	size_t	i;

	workers_free(workers);
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
	for (i = 0; i < NCLAIMS; i++) {
		free(claims[i].tc_claim);
		free(claims[i].tc_sr.sr_receipt);
	}
	seal_key_clear(&key_a);
	seal_key_clear(&key_b);
	X509_STORE_free(roots);
}

static void
claim_done(void *arg, struct seal_req *sr)
{
	struct tclaim	*tc = arg;

	ck_assert_ptr_eq(sr, &tc->tc_sr);
	ck_assert_int_eq(tc->tc_done, 0);
	tc->tc_done = 1;
	tc->tc_done_us = now_us_mono();
	ndone++;
}

/* Prepares claim i of key sk (a document of its own) without submitting it. */
static struct seal_req *
claim(int i, const struct seal_key *sk)
{
	struct tclaim	*tc = &claims[i];
	msgpack_sbuffer	 sb;
	uint8_t		 exch[16];

	memset(tc->tc_doc, 'a' + i, sizeof(tc->tc_doc));
	memset(exch, i, sizeof(exch));
	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(seal_claim_pack(sk, "birth_medical_certificate", tc->tc_doc,
	    sizeof(tc->tc_doc), exch, now_ms() / 1000, &sb), 0);
	tc->tc_claim_len = sb.size;
	tc->tc_claim = (uint8_t *)msgpack_sbuffer_release(&sb);
	tc->tc_sr.sr_key = sk;
	tc->tc_sr.sr_claim = tc->tc_claim;
	tc->tc_sr.sr_claim_len = tc->tc_claim_len;
	tc->tc_sr.sr_done = claim_done;
	tc->tc_sr.sr_arg = tc;
	return &tc->tc_sr;
}

static void
submit(struct sealer *s, int from, int to, const struct seal_key *sk)
{
	struct seal_req	*r;
	int		 i;

	for (i = from; i < to; i++) {
		r = claim(i, sk);
		sealer_submit(s, &r, 1);
	}
}

/* The batch envelope bytes of a receipt, copied into buf. */
static size_t
receipt_batch(const struct tclaim *tc, uint8_t *buf, size_t bufsz)
{
	msgpack_zone	 z;
	msgpack_object	 o;
	const uint8_t	*p;
	size_t		 n;

	msgpack_zone_init(&z, 1024);
	ck_assert_int_eq(mpk_unpack(tc->tc_sr.sr_receipt, tc->tc_sr.sr_receipt_len, &z, &o), 0);
	ck_assert_int_eq(mpk_get_bytes(&o, "batch", &z, &p, &n), 0);
	ck_assert_uint_le(n, bufsz);
	memcpy(buf, p, n);
	msgpack_zone_destroy(&z);
	return n;
}

/*
 * Claims [from, to) completed as one batch of their own: same envelope,
 * leaf i - from of to - from, and each receipt verifies for its document.
 */
static void
assert_one_batch(int from, int to)
{
	struct seal_verdict	v;
	uint8_t			first[4096], env[4096];
	size_t			flen = 0, elen;
	char			err[256];
	int			i;

	for (i = from; i < to; i++) {
		struct tclaim *tc = &claims[i];

		ck_assert_int_eq(tc->tc_done, 1);
		ck_assert_int_eq(tc->tc_sr.sr_status, 0);
		ck_assert_uint_eq(tc->tc_sr.sr_index, (uint64_t)(i - from));
		ck_assert_uint_eq(tc->tc_sr.sr_size, (uint64_t)(to - from));
		elen = receipt_batch(tc, env, sizeof(env));
		if (i == from) {
			memcpy(first, env, elen);
			flen = elen;
		} else {
			ck_assert_uint_eq(elen, flen);
			ck_assert_mem_eq(env, first, elen);
		}
		ck_assert_msg(seal_verify(tc->tc_sr.sr_receipt, tc->tc_sr.sr_receipt_len,
		    tc->tc_doc, sizeof(tc->tc_doc), roots, &v, err, sizeof(err)) == 0,
		    "claim %d: %s", i, err);
		ck_assert_uint_eq(v.sv_index, (uint64_t)(i - from));
		ck_assert_uint_eq(v.sv_size, (uint64_t)(to - from));
	}
}

START_TEST(test_idle_claim_is_signed_at_once)
{
	struct sealer	*s;
	uint64_t	 t0, batches, nclaims;

	/* A window of 10 s: only the idle rule can make this finish quickly. */
	ck_assert_ptr_nonnull(s = sealer_new(base, workers, 10 * 1000000, 256));
	t0 = now_us_mono();
	submit(s, 0, 1, &key_a);
	check_run_until(base, &ndone, 1, 5000);
	ck_assert_int_eq(ndone, 1);
	ck_assert_uint_lt(claims[0].tc_done_us - t0, 1000000);
	assert_one_batch(0, 1);
	sealer_stats(s, &batches, &nclaims);
	ck_assert_uint_eq(batches, 1);
	ck_assert_uint_eq(nclaims, 1);
	sealer_free(s);
}
END_TEST

START_TEST(test_claims_wait_for_expected_exchange)
{
	struct sealer	*s;
	struct seal_req	*r[3];
	int		 i;

	ck_assert_ptr_nonnull(s = sealer_new(base, workers, 10 * 1000000, 256));
	/* Exchange B is still fetching; exchange A's claims wait for it. */
	sealer_expect(s);
	sealer_expect(s);
	for (i = 0; i < 3; i++)
		r[i] = claim(i, &key_a);
	sealer_submit(s, r, 3);
	sealer_unexpect(s);		/* A is done submitting */
	check_run_until(base, &ndone, 1, 100);
	ck_assert_int_eq(ndone, 0);
	submit(s, 3, 5, &key_a);	/* B's claims ... */
	sealer_unexpect(s);		/* ... and B is done: nothing left to wait for */
	check_run_until(base, &ndone, 5, 5000);
	ck_assert_int_eq(ndone, 5);
	assert_one_batch(0, 5);
	sealer_free(s);
}
END_TEST

START_TEST(test_window_cuts_the_batch)
{
	struct sealer	*s;
	uint64_t	 t0;

	ck_assert_ptr_nonnull(s = sealer_new(base, workers, 50 * 1000, 256));
	sealer_expect(s);		/* an exchange that never comes */
	t0 = now_us_mono();
	submit(s, 0, 2, &key_a);
	check_run_until(base, &ndone, 2, 5000);
	ck_assert_int_eq(ndone, 2);
	ck_assert_uint_ge(claims[0].tc_done_us - t0, 45 * 1000);
	ck_assert_uint_lt(claims[0].tc_done_us - t0, 4000 * 1000);
	assert_one_batch(0, 2);
	/* A claim after the cut opens a new window and a new batch. */
	submit(s, 2, 3, &key_a);
	check_run_until(base, &ndone, 3, 5000);
	assert_one_batch(2, 3);
	sealer_unexpect(s);
	sealer_free(s);
}
END_TEST

START_TEST(test_size_limit_cuts_the_batch)
{
	struct sealer	*s;
	uint64_t	 batches, nclaims;

	ck_assert_ptr_nonnull(s = sealer_new(base, workers, 10 * 1000000, 4));
	sealer_expect(s);
	submit(s, 0, 10, &key_a);
	check_run_until(base, &ndone, 8, 5000);
	ck_assert_int_eq(ndone, 8);
	assert_one_batch(0, 4);
	assert_one_batch(4, 8);
	sealer_unexpect(s);
	check_run_until(base, &ndone, 10, 5000);
	assert_one_batch(8, 10);
	sealer_stats(s, &batches, &nclaims);
	ck_assert_uint_eq(batches, 3);
	ck_assert_uint_eq(nclaims, 10);
	sealer_free(s);
}
END_TEST

START_TEST(test_one_batch_per_key)
{
	struct sealer	*s;
	struct seal_req	*r[4];
	uint8_t		 ea[4096], eb[4096];
	size_t		 la, lb;

	ck_assert_ptr_nonnull(s = sealer_new(base, workers, 10 * 1000000, 256));
	r[0] = claim(0, &key_a);
	r[1] = claim(2, &key_b);
	r[2] = claim(1, &key_a);
	r[3] = claim(3, &key_b);
	sealer_submit(s, r, 4);
	check_run_until(base, &ndone, 4, 5000);
	ck_assert_int_eq(ndone, 4);
	assert_one_batch(0, 2);
	assert_one_batch(2, 4);
	la = receipt_batch(&claims[0], ea, sizeof(ea));
	lb = receipt_batch(&claims[2], eb, sizeof(eb));
	ck_assert(la != lb || memcmp(ea, eb, la) != 0);
	sealer_free(s);
}
END_TEST

START_TEST(test_free_signs_waiting_claims)
{
	struct sealer	*s;

	ck_assert_ptr_nonnull(s = sealer_new(base, workers, 10 * 1000000, 256));
	sealer_expect(s);
	submit(s, 0, 3, &key_a);
	sealer_free(s);		/* the batch finishes after the sealer is gone */
	check_run_until(base, &ndone, 3, 5000);
	ck_assert_int_eq(ndone, 3);
	assert_one_batch(0, 3);
}
END_TEST

/*
 * seal_batch and seal_verify for one algorithm, outside the sealer: a seal
 * of that algorithm under a P-256 CA, batches of many sizes.
 */
static const struct {
	const char	*ka_type, *ka_param, *ka_hash;
	enum lb_alg	 ka_alg;
} kinds[] = {
	{ "EC",		"P-256",	"SHA-256",	LB_ALG_ES256 },
	{ "SM2",	NULL,		"SM3",		LB_ALG_SM2 },
	{ "ED25519",	NULL,		"SHA-256",	LB_ALG_EDDSA },
};

START_TEST(test_batch_sizes_verify)
{
	static const size_t	 sizes[] = { 1, 2, 3, 5, 7, 8, 13, 64, 100, 255, 256 };
	EVP_PKEY		*ca;
	X509			*cacert;
	X509_STORE		*store;
	struct seal_key		 sk;
	struct seal_verdict	 v;
	msgpack_sbuffer		 sb[256];
	const uint8_t		*cl[256];
	size_t			 cll[256], rl[256], z, i, n;
	uint8_t			*rc[256], docs[256][40], exch[16] = { 7 };
	char			 err[512];

	ck_assert_ptr_nonnull(ca = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
	cacert = check_cert(ca, "/CN=check seal root", 1, NULL, NULL, true);
	ck_assert_ptr_nonnull(store = X509_STORE_new());
	X509_STORE_add_cert(store, cacert);

	memset(&sk, 0, sizeof(sk));
	snprintf(sk.sk_id, sizeof(sk.sk_id), "nhc-x");
	snprintf(sk.sk_dept, sizeof(sk.sk_dept), "nhc");
	if (kinds[_i].ka_param != NULL)
		sk.sk_key = EVP_PKEY_Q_keygen(NULL, NULL, kinds[_i].ka_type, kinds[_i].ka_param);
	else
		sk.sk_key = EVP_PKEY_Q_keygen(NULL, NULL, kinds[_i].ka_type);
	ck_assert_ptr_nonnull(sk.sk_key);
	sk.sk_cert = check_cert(sk.sk_key, "/CN=nhc", 2, ca, cacert, false);
	sk.sk_alg = envelope_alg_of_key(sk.sk_key);
	ck_assert_int_eq(sk.sk_alg, kinds[_i].ka_alg);
	sk.sk_hash = sk.sk_alg == LB_ALG_SM2 ? MK_SM3 : MK_SHA256;
	ck_assert_int_eq(key_id_cert(sk.sk_cert, sk.sk_kid), 0);

	for (i = 0; i < 256; i++) {
		memset(docs[i], (int)i, sizeof(docs[i]));
		msgpack_sbuffer_init(&sb[i]);
		ck_assert_int_eq(seal_claim_pack(&sk, "birth_medical_certificate", docs[i],
		    sizeof(docs[i]), exch, now_ms() / 1000, &sb[i]), 0);
		cl[i] = (const uint8_t *)sb[i].data;
		cll[i] = sb[i].size;
	}
	for (z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		n = sizes[z];
		ck_assert_int_eq(seal_batch(&sk, cl, cll, n, now_ms() / 1000, rc, rl), 0);
		for (i = 0; i < n; i++) {
			ck_assert_msg(seal_verify(rc[i], rl[i], docs[i], sizeof(docs[i]), store,
			    &v, err, sizeof(err)) == 0, "size %zu leaf %zu: %s", n, i, err);
			ck_assert_uint_eq(v.sv_index, i);
			ck_assert_uint_eq(v.sv_size, n);
			ck_assert_str_eq(v.sv_hash, kinds[_i].ka_hash);
			ck_assert_str_eq(v.sv_alg, envelope_alg_name(kinds[_i].ka_alg));
			ck_assert_str_eq(v.sv_root, "/CN=check seal root");
			/* Another document's bytes fail on the digest. */
			ck_assert_int_ne(seal_verify(rc[i], rl[i], docs[(i + 1) % 256],
			    sizeof(docs[0]), store, &v, err, sizeof(err)), 0);
			ck_assert_ptr_nonnull(strstr(err, "document digest does not match"));
			free(rc[i]);
		}
	}
	for (i = 0; i < 256; i++)
		msgpack_sbuffer_destroy(&sb[i]);
	seal_key_clear(&sk);
	X509_STORE_free(store);
	X509_free(cacert);
	EVP_PKEY_free(ca);
}
END_TEST

/* Receipt paths equal the RFC 6962 inclusion proofs of the Merkle module. */
static int
leaf_at(void *arg, uint64_t idx, uint8_t out[32])
{
	memcpy(out, ((uint8_t (*)[32])arg)[idx], 32);
	return 0;
}

START_TEST(test_batch_paths_are_rfc6962_proofs)
{
	msgpack_sbuffer		 sb[37];
	const uint8_t		*cl[37];
	size_t			 cll[37], rl[37], i, j, n = 37, np;
	uint8_t			*rc[37], exch[16] = { 1 }, doc[8] = { 0 };
	uint8_t			 leaves[37][32], proof[MK_MAX_PATH][32];
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*path;
	const uint8_t		*p;
	size_t			 pl;

	for (i = 0; i < n; i++) {
		doc[0] = (uint8_t)i;
		msgpack_sbuffer_init(&sb[i]);
		ck_assert_int_eq(seal_claim_pack(&key_a, "item", doc, sizeof(doc), exch, 1, &sb[i]),
		    0);
		cl[i] = (const uint8_t *)sb[i].data;
		cll[i] = sb[i].size;
		merkle_leaf_hash(MK_SHA256, cl[i], cll[i], leaves[i]);
	}
	ck_assert_int_eq(seal_batch(&key_a, cl, cll, n, 1, rc, rl), 0);
	for (i = 0; i < n; i++) {
		msgpack_zone_init(&z, 4096);
		ck_assert_int_eq(mpk_unpack(rc[i], rl[i], &z, &o), 0);
		ck_assert_ptr_nonnull(path = mpk_get(&o, "path"));
		ck_assert_int_eq(merkle_inclusion_proof(MK_SHA256, leaf_at, leaves, i, n, proof,
		    &np), 0);
		ck_assert_uint_eq(path->via.array.size, np);
		for (j = 0; j < np; j++) {
			ck_assert_int_eq(mpk_obj_bytes(&path->via.array.ptr[j], &z, &p, &pl), 0);
			ck_assert_uint_eq(pl, 32);
			ck_assert_mem_eq(p, proof[j], 32);
		}
		msgpack_zone_destroy(&z);
		free(rc[i]);
		msgpack_sbuffer_destroy(&sb[i]);
	}
}
END_TEST

static Suite *
sealer_suite(void)
{
	Suite	*su = suite_create("sealer");
	TCase	*tc = tcase_create("batching");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_idle_claim_is_signed_at_once);
	tcase_add_test(tc, test_claims_wait_for_expected_exchange);
	tcase_add_test(tc, test_window_cuts_the_batch);
	tcase_add_test(tc, test_size_limit_cuts_the_batch);
	tcase_add_test(tc, test_one_batch_per_key);
	tcase_add_test(tc, test_free_signs_waiting_claims);
	tcase_add_test(tc, test_batch_paths_are_rfc6962_proofs);
	suite_add_tcase(su, tc);

	tc = tcase_create("algorithms");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_batch_sizes_verify, 0, sizeof(kinds) / sizeof(kinds[0]));
	suite_add_tcase(su, tc);
	return su;
}

int
main(void)
{
	log_init("check_sealer", 0);
	return check_run(sealer_suite());
}
