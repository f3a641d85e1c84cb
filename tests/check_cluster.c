/*
 * check_cluster.c - unit tests for the parts of a cluster node that need no
 * etcd running (gateway/daemon/etcd.c, cluster.c, and the split of rate
 * limits in gateway/lib/policy.c): base64 as etcd's JSON gateway writes it,
 * the member list, and a jti claim that fails closed when no member
 * answers.  tests/it_cluster.py and tests/it_cluster_faults.py run the real
 * thing against a 3-member etcd cluster.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "cluster.h"
#include "check_util.h"

#define SEC	1000000ULL

START_TEST(test_base64_round_trips)
{
	static const char *const std[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==" };
	const uint8_t	 in[] = "foob";
	char		*t;
	uint8_t		*out;
	size_t		 n, len;
	json_t		*s;

	for (n = 0; n < 5; n++) {
		ck_assert_ptr_nonnull(t = etcd_b64(in, n));
		ck_assert_str_eq(t, std[n]);
		s = json_string(t);
		ck_assert_int_eq(etcd_unb64(s, &out, &len), 0);
		ck_bytes_eq(out, len, in, n);
		free(out);
		json_decref(s);
		free(t);
	}
	/* The gateway leaves empty bytes out: an absent value is "". */
	ck_assert_int_eq(etcd_unb64(NULL, &out, &len), 0);
	ck_assert_uint_eq(len, 0);
	free(out);
	s = json_string("Zm9");
	ck_assert_int_eq(etcd_unb64(s, &out, &len), -1);
	json_decref(s);
	s = json_integer(4);
	ck_assert_int_eq(etcd_unb64(s, &out, &len), -1);
	json_decref(s);
}
END_TEST

START_TEST(test_int64_as_strings)
{
	json_t	*o = json_pack("{s:s,s:i}", "revision", "9007199254740993", "n", 7);

	ck_assert_int_eq(etcd_int(o, "revision"), 9007199254740993LL);
	ck_assert_int_eq(etcd_int(o, "n"), 7);
	ck_assert_int_eq(etcd_int(o, "absent"), 0);
	json_decref(o);
}
END_TEST

START_TEST(test_member_lists)
{
	char	err[256];

	ck_assert_int_eq(etcd_urls_check("http://127.0.0.1:2379", err, sizeof(err)), 0);
	ck_assert_int_eq(etcd_urls_check("http://a:1,http://b:2/,c:3", err, sizeof(err)), 0);
	ck_assert_int_eq(etcd_urls_check("", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "no member"));
	ck_assert_int_eq(etcd_urls_check("https://a:2379", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "only http://"));
	ck_assert_int_eq(etcd_urls_check("http://a:1,http://b", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "\"http://b\""));
	ck_assert_int_eq(etcd_urls_check("http://a:0", err, sizeof(err)), -1);
	ck_assert_int_eq(etcd_urls_check("http://a:65536", err, sizeof(err)), -1);
	ck_assert_int_eq(etcd_urls_check("http://a:1x", err, sizeof(err)), -1);
	ck_assert_int_eq(etcd_urls_check("a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8,a:9", err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "more than 8"));
}
END_TEST

START_TEST(test_rate_limits_split_across_nodes)
{
	struct policy_rates	*rt = policy_rates_new(8);
	struct policy		*po = calloc(1, sizeof(*po));
	uint64_t		 now = 100 * SEC;
	int			 i;

	ck_assert_ptr_nonnull(rt);
	ck_assert_ptr_nonnull(po);
	snprintf(po->po_bundle, sizeof(po->po_bundle), "b");
	po->po_rate_per_s = 30;
	po->po_rate_burst = 30;
	policy_rates_share(rt, 3);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(policy_rate_take(rt, po, "c", now), 0);
	ck_assert_int_eq(policy_rate_take(rt, po, "c", now), -1);
	/* A tenth of a second refills one token of the 10 a second left to this node. */
	ck_assert_int_eq(policy_rate_take(rt, po, "c", now + SEC / 10), 0);
	ck_assert_int_eq(policy_rate_take(rt, po, "c", now + SEC / 10), -1);
	/* Alone again: the whole limit. */
	policy_rates_share(rt, 1);
	for (i = 0; i < 20; i++)
		ck_assert_int_eq(policy_rate_take(rt, po, "d", now), 0);
	free(po);
	policy_rates_free(rt);
}
END_TEST

struct claimed {
	int	cd_done;
	int	cd_status;
};

static void
claimed(void *arg, int status)
{
	struct claimed	*cd = arg;

	cd->cd_status = status;
	cd->cd_done++;
}

/* A claim no etcd member answers is refused as unavailable: the cluster fails closed. */
START_TEST(test_claim_fails_closed)
{
	struct gw	 gw;
	struct cluster	*cl = NULL;
	struct claimed	 cd = { 0, -2 };
	uint8_t		 jti[16] = { 1 };
	char		 err[256];

	memset(&gw, 0, sizeof(gw));
	ck_assert_ptr_nonnull(gw.gw_base = event_base_new());
	gw.gw_loop = pthread_self();
	snprintf(gw.gw_conf.gc_id, sizeof(gw.gw_conf.gc_id), "g");
	/* Port 1 of loopback: every connection is refused at once. */
	snprintf(gw.gw_conf.gc_etcd, sizeof(gw.gw_conf.gc_etcd), "http://127.0.0.1:1");
	ck_assert_int_eq(cluster_start(&gw, &cl, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "node"));
	snprintf(gw.gw_conf.gc_node, sizeof(gw.gw_conf.gc_node), "n1");
	ck_assert_int_eq(cluster_start(&gw, &cl, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(cl);
	ck_assert_ptr_nonnull(strstr(cluster_ready(cl), "not been read"));
	ck_assert_int_eq(cluster_jti_claim(cl, gw.gw_base, jti, now_ms() / 1000 + 60, claimed,
	    &cd), 0);
	check_run_until(gw.gw_base, &cd.cd_done, 1, (ETCD_TIMEOUT_MS + 3000) * 2);
	ck_assert_int_eq(cd.cd_done, 1);
	ck_assert_int_eq(cd.cd_status, CLUSTER_CLAIM_UNAVAILABLE);
	ck_assert_ptr_nonnull(cluster_ready(cl));
	/* An expired token is refused as expired, without asking etcd. */
	ck_assert_int_eq(cluster_jti_claim(cl, gw.gw_base, jti, now_ms() / 1000 - 1, claimed,
	    &cd), 0);
	check_run_until(gw.gw_base, &cd.cd_done, 2, 5000);
	ck_assert_int_eq(cd.cd_status, 2);
	cluster_stop(cl);
	event_base_loop(gw.gw_base, EVLOOP_NONBLOCK);
	cluster_free(cl);
	event_base_free(gw.gw_base);
}
END_TEST

static Suite *
cluster_suite(void)
{
	Suite	*su = suite_create("cluster");
	TCase	*tc = tcase_create("etcd");

	tcase_add_test(tc, test_base64_round_trips);
	tcase_add_test(tc, test_int64_as_strings);
	tcase_add_test(tc, test_member_lists);
	tcase_add_test(tc, test_rate_limits_split_across_nodes);
	tcase_add_test(tc, test_claim_fails_closed);
	/* The claim waits for its whole deadline. */
	tcase_set_timeout(tc, 60);
	suite_add_tcase(su, tc);
	return su;
}

int
main(void)
{
	log_init("check_cluster", 0);
	/* The client's thread and the test's loop hand work to each other. */
	if (evthread_use_pthreads() != 0)
		return EXIT_FAILURE;
	return check_run(cluster_suite());
}
