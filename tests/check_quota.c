/*
 * check_quota.c - unit tests for the limits on what one client or one
 * department can make the gateway store: token buckets per (scope, who)
 * and their counts of refusals (gateway/lib/policy.c), and the registry's
 * removal of old versions and usage per department
 * (gateway/daemon/registry.c).  The daemon's behaviour on top of them is
 * tested by tests/it_attack_flood.py and tests/it_attack_registry.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "gateway.h"
#include "check_util.h"

#define SEC	1000000ULL

/* What policy_rates_drain reported, in order. */
struct drained {
	size_t		dr_n;
	char		dr_scope[4][LB_ID_MAX];	/* "" for the buckets given away */
	char		dr_who[4][LB_ID_MAX];
	uint64_t	dr_count[4];
};

static void
drained_one(void *arg, const char *scope, const char *who, uint64_t refused)
{
	struct drained	*d = arg;

	ck_assert_uint_lt(d->dr_n, 4);
	snprintf(d->dr_scope[d->dr_n], LB_ID_MAX, "%s", scope != NULL ? scope : "");
	snprintf(d->dr_who[d->dr_n], LB_ID_MAX, "%s", who != NULL ? who : "");
	ck_assert((scope == NULL) == (who == NULL));
	d->dr_count[d->dr_n++] = refused;
}

/* The count reported for (scope, who), 0 when none was. */
static uint64_t
drained_count(const struct drained *d, const char *scope, const char *who)
{
	size_t	i;

	for (i = 0; i < d->dr_n; i++)
		if (strcmp(d->dr_scope[i], scope) == 0 && strcmp(d->dr_who[i], who) == 0)
			return d->dr_count[i];
	return 0;
}

/* A client is its role and id together: each pair has its own bucket. */
START_TEST(test_buckets_per_scope_and_who)
{
	struct policy_rates	*rt;

	ck_assert_ptr_nonnull(rt = policy_rates_new(8));
	ck_assert_int_eq(policy_bucket_take(rt, "consumer", "a", 1, 2, SEC), 0);
	ck_assert_int_eq(policy_bucket_take(rt, "consumer", "a", 1, 2, SEC), 0);
	ck_assert_int_eq(policy_bucket_take(rt, "consumer", "a", 1, 2, SEC), -1);
	ck_assert_int_eq(policy_bucket_take(rt, "auditor", "a", 1, 2, SEC), 0);
	ck_assert_int_eq(policy_bucket_take(rt, "consumer", "b", 1, 2, SEC), 0);
	/* A second later one token is back, not more. */
	ck_assert_int_eq(policy_bucket_take(rt, "consumer", "a", 1, 2, 2 * SEC), 0);
	ck_assert_int_eq(policy_bucket_take(rt, "consumer", "a", 1, 2, 2 * SEC), -1);
	/* No rate: no limit. */
	ck_assert_int_eq(policy_bucket_take(rt, "consumer", "a", 0, 0, 2 * SEC), 0);
	policy_rates_free(rt);
}
END_TEST

/* Every refusal is reported once, by bucket, and the counts start again. */
START_TEST(test_refusals_are_drained)
{
	struct policy_rates	*rt;
	struct drained		 d;
	int			 i;

	ck_assert_ptr_nonnull(rt = policy_rates_new(8));
	for (i = 0; i < 4; i++)
		policy_bucket_take(rt, "consumer", "mallory", 1, 1, SEC);
	policy_bucket_take(rt, "department", "psb", 1, 1, SEC);
	policy_bucket_take(rt, "department", "psb", 1, 1, SEC);
	policy_bucket_take(rt, "consumer", "newborn", 1, 1, SEC);
	memset(&d, 0, sizeof(d));
	policy_rates_drain(rt, drained_one, &d);
	ck_assert_uint_eq(d.dr_n, 2);
	ck_assert_uint_eq(drained_count(&d, "consumer", "mallory"), 3);
	ck_assert_uint_eq(drained_count(&d, "department", "psb"), 1);
	memset(&d, 0, sizeof(d));
	policy_rates_drain(rt, drained_one, &d);
	ck_assert_uint_eq(d.dr_n, 0);
	policy_rates_free(rt);
}
END_TEST

/* A bucket given to a newcomer hands its unreported refusals on, unnamed. */
START_TEST(test_refusals_of_a_replaced_bucket_are_kept)
{
	struct policy_rates	*rt;
	struct drained		 d;

	ck_assert_ptr_nonnull(rt = policy_rates_new(1));
	ck_assert_int_eq(policy_bucket_take(rt, "consumer", "a", 1, 1, SEC), 0);
	ck_assert_int_eq(policy_bucket_take(rt, "consumer", "a", 1, 1, SEC), -1);
	ck_assert_int_eq(policy_bucket_take(rt, "consumer", "a", 1, 1, SEC), -1);
	ck_assert_int_eq(policy_bucket_take(rt, "consumer", "b", 1, 1, SEC), 0);
	memset(&d, 0, sizeof(d));
	policy_rates_drain(rt, drained_one, &d);
	ck_assert_uint_eq(d.dr_n, 1);
	ck_assert_uint_eq(drained_count(&d, "", ""), 2);
	policy_rates_free(rt);
}
END_TEST

static char		 tdir[64];
static struct registry	*rg;

static void
reg_setup(void)
{
	snprintf(tdir, sizeof(tdir), "/tmp/check_quota.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	rg = check_registry_open(tdir);
}

static void
reg_teardown(void)
{
	registry_close(rg);
	rg = NULL;
	(void)check_rm_tree(tdir);
}

/* Stores spec as version v of adapter id of dept. */
static void
put(const char *id, const char *dept, uint64_t v, const char *spec)
{
	struct reg_head	h = check_reg_head(v, false, dept);
	char		err[256] = "";

	ck_assert_msg(registry_put(rg, REG_ADAPTER, id, &h, (const uint8_t *)spec,
	    strlen(spec), err, sizeof(err)) == 0, "registry_put: %s", err);
}

static void
usage(const char *dept, const char *id, size_t ids, uint64_t bytes, uint64_t freed)
{
	struct reg_usage	u;

	ck_assert_int_eq(registry_usage(rg, REG_ADAPTER, dept, id, &u), 0);
	ck_assert_uint_eq(u.ru_ids, ids);
	ck_assert_uint_eq(u.ru_bytes, bytes);
	ck_assert_uint_eq(u.ru_freed, freed);
}

static int
each_spec(void *arg, const char *id, const struct reg_head *h, const uint8_t *spec,
    size_t len)
{
	char	*out = arg;

	(void)id;
	(void)h;
	snprintf(out, 16, "%.*s", (int)len, (const char *)spec);
	return 0;
}

/* Without a keep every version stays. */
START_TEST(test_registry_keeps_every_version_by_default)
{
	put("a", "psb", 1, "1");
	put("a", "psb", 2, "22");
	put("a", "psb", 3, "333");
	usage("psb", "a", 1, 6, 0);
}
END_TEST

/*
 * With a keep of 2 a third version removes the first: the bytes are those
 * of the two newest, the current one is still served, and one more
 * version would free the older of them.
 */
START_TEST(test_registry_removes_the_oldest_versions)
{
	char	current[16] = "", err[256] = "";

	registry_keep(rg, 2);
	put("a", "psb", 1, "1");
	usage("psb", "a", 1, 1, 0);
	put("a", "psb", 2, "22");
	usage("psb", "a", 1, 3, 1);
	put("a", "psb", 3, "333");
	put("a", "psb", 4, "4444");
	put("a", "psb", 5, "55555");
	usage("psb", "a", 1, 9, 4);
	ck_assert_int_eq(registry_each(rg, REG_ADAPTER, each_spec, current, err, sizeof(err)),
	    0);
	ck_assert_str_eq(current, "55555");
	/* A smaller keep applies from the next version on. */
	registry_keep(rg, 1);
	put("a", "psb", 6, "666666");
	usage("psb", "a", 1, 6, 6);
}
END_TEST

/* A department's usage is its own ids' versions, of the kind asked. */
START_TEST(test_registry_usage_per_department)
{
	struct reg_head	ph = check_reg_head(1, false, "");
	char		err[256] = "";

	put("a", "psb", 1, "1");
	put("b", "psb", 1, "22");
	put("ab", "psb", 1, "333");
	put("c", "mca", 1, "4444");
	ck_assert_int_eq(registry_put(rg, REG_POLICY, "a", &ph, (const uint8_t *)"55555", 5, err,
	    sizeof(err)), 0);
	usage("psb", "new", 3, 6, 0);
	usage("mca", "c", 1, 4, 0);
	usage("edu", "a", 0, 0, 0);
}
END_TEST

static Suite *
quota_suite(void)
{
	Suite	*su = suite_create("quota");
	TCase	*tc = tcase_create("buckets");

	tcase_add_test(tc, test_buckets_per_scope_and_who);
	tcase_add_test(tc, test_refusals_are_drained);
	tcase_add_test(tc, test_refusals_of_a_replaced_bucket_are_kept);
	suite_add_tcase(su, tc);
	tc = tcase_create("registry");
	tcase_add_checked_fixture(tc, reg_setup, reg_teardown);
	tcase_add_test(tc, test_registry_keeps_every_version_by_default);
	tcase_add_test(tc, test_registry_removes_the_oldest_versions);
	tcase_add_test(tc, test_registry_usage_per_department);
	suite_add_tcase(su, tc);
	return su;
}

int
main(void)
{
	log_init("check_quota", 0);
	return check_run(quota_suite());
}
