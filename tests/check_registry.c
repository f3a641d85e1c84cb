/*
 * check_registry.c - unit tests for the registry's LMDB store
 * (gateway/daemon/registry.c): heads and versions, the walk the snapshot loader
 * makes, and the refusals that keep a version from being overwritten.
 * The daemon's behaviour on top of it is tested by tests/it_registry.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "gateway.h"
#include "check_util.h"

static char		 tdir[64];
static struct registry	*rg_open;	/* each test's, opened by reg_setup */

static void
reg_setup(void)
{
	rg_open = check_registry_open(tdir);
}

static void
reg_teardown(void)
{
	registry_close(rg_open);
	rg_open = NULL;
}

static struct registry *
reg(void)
{
	return rg_open;
}

static void
put(enum reg_kind k, const char *id, const struct reg_head *h, const char *spec)
{
	char	err[256] = "";

	ck_assert_msg(registry_put(reg(), k, id, h, (const uint8_t *)spec,
	    spec != NULL ? strlen(spec) : 0, err, sizeof(err)) == 0, "registry_put: %s", err);
}

/* What registry_each saw, in order. */
struct seen {
	size_t	se_n;
	char	se_ids[8][LB_ID_MAX];
	char	se_specs[8][64];		/* "" for no stored spec */
	struct reg_head se_heads[8];
};

static int
seen_one(void *arg, const char *id, const struct reg_head *h, const uint8_t *spec,
    size_t len)
{
	struct seen	*s = arg;

	ck_assert_uint_lt(s->se_n, 8);
	snprintf(s->se_ids[s->se_n], sizeof(s->se_ids[s->se_n]), "%s", id);
	if (spec != NULL)
		snprintf(s->se_specs[s->se_n], sizeof(s->se_specs[s->se_n]), "%.*s", (int)len, spec);
	else
		s->se_specs[s->se_n][0] = '\0';
	s->se_heads[s->se_n] = *h;
	s->se_n++;
	return 0;
}

START_TEST(test_head_round_trip)
{
	struct reg_head	h = check_reg_head(3, false, "nhc"), got;
	bool		found = true;

	ck_assert_int_eq(registry_head(reg(), REG_ADAPTER, "rt-a", &got, &found), 0);
	ck_assert(!found);
	put(REG_ADAPTER, "rt-a", &h, "spec three");
	ck_assert_int_eq(registry_head(reg(), REG_ADAPTER, "rt-a", &got, &found), 0);
	ck_assert(found);
	ck_assert_uint_eq(got.rh_version, 3);
	ck_assert(!got.rh_disabled);
	ck_assert_str_eq(got.rh_dept, "nhc");
	ck_assert_str_eq(got.rh_principal, "department:nhc");
	ck_assert_uint_eq(got.rh_t_ms, h.rh_t_ms);
	/* Kinds are separate name spaces. */
	ck_assert_int_eq(registry_head(reg(), REG_POLICY, "rt-a", &got, &found), 0);
	ck_assert(!found);
}
END_TEST

START_TEST(test_each_gives_the_current_version)
{
	struct reg_head	h1 = check_reg_head(1, false, "psb"), h2 = check_reg_head(2, false, "psb");
	struct reg_head	off = check_reg_head(2, true, "psb"), filedis = check_reg_head(1, true, "mca");
	struct reg_head	ph = check_reg_head(4, false, "");
	struct seen	s;
	char		err[256] = "";

	put(REG_ADAPTER, "ea-b", &h1, "b one");
	put(REG_ADAPTER, "ea-b", &h2, "b two");
	put(REG_ADAPTER, "ea-a", &h1, "a one");
	put(REG_ADAPTER, "ea-a", &h2, "a two");
	put(REG_ADAPTER, "ea-a", &off, NULL);		/* disabled at version 2 */
	put(REG_ADAPTER, "ea-c", &filedis, NULL);	/* a file adapter disabled */
	put(REG_POLICY, "ea-p", &ph, "policy four");

	memset(&s, 0, sizeof(s));
	ck_assert_msg(registry_each(reg(), REG_ADAPTER, seen_one, &s, err, sizeof(err)) == 0,
	    "%s", err);
	/* Other tests' ids may be there too; look at this test's only. */
	{
		size_t	i, k = 0;
		const char *want_ids[] = { "ea-a", "ea-b", "ea-c" };
		const char *want_specs[] = { "a two", "b two", "" };
		bool want_dis[] = { true, false, true };

		for (i = 0; i < s.se_n; i++) {
			if (strncmp(s.se_ids[i], "ea-", 3) != 0)
				continue;
			ck_assert_uint_lt(k, 3);
			ck_assert_str_eq(s.se_ids[i], want_ids[k]);
			ck_assert_str_eq(s.se_specs[i], want_specs[k]);
			ck_assert(s.se_heads[i].rh_disabled == want_dis[k]);
			k++;
		}
		ck_assert_uint_eq(k, 3);
	}
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(registry_each(reg(), REG_POLICY, seen_one, &s, err, sizeof(err)), 0);
	ck_assert_uint_eq(s.se_n, 1);
	ck_assert_str_eq(s.se_ids[0], "ea-p");
	ck_assert_str_eq(s.se_specs[0], "policy four");
	ck_assert_uint_eq(s.se_heads[0].rh_version, 4);
}
END_TEST

START_TEST(test_a_version_is_written_once)
{
	struct reg_head	h = check_reg_head(1, false, "edu"), h2 = check_reg_head(1, false, "cdc"), got;
	bool		found;
	char		err[256] = "";

	put(REG_ADAPTER, "wo-a", &h, "first");
	ck_assert_int_eq(registry_put(reg(), REG_ADAPTER, "wo-a", &h2,
	    (const uint8_t *)"second", 6, err, sizeof(err)), -1);
	ck_assert(err[0] != '\0');
	/* The failed transaction left the head alone too. */
	ck_assert_int_eq(registry_head(reg(), REG_ADAPTER, "wo-a", &got, &found), 0);
	ck_assert(found);
	ck_assert_str_eq(got.rh_dept, "edu");
}
END_TEST

START_TEST(test_bad_ids_and_room)
{
	struct reg_head	h = check_reg_head(1, false, "nhc"), got;
	char		id[LB_ID_MAX + 8], err[256] = "";
	bool		found = true;

	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	ck_assert_int_eq(registry_put(reg(), REG_ADAPTER, id, &h, (const uint8_t *)"s", 1,
	    err, sizeof(err)), -1);
	ck_assert_int_eq(registry_put(reg(), REG_ADAPTER, "", &h, (const uint8_t *)"s", 1,
	    err, sizeof(err)), -1);
	ck_assert_int_eq(registry_head(reg(), REG_ADAPTER, id, &got, &found), 0);
	ck_assert(!found);
	ck_assert(registry_has_room(reg(), 4096, 0));
	ck_assert(!registry_has_room(reg(), (size_t)1 << 30, 0));
}
END_TEST

/* The handle is the registry's only state: what one stored, the next one reads. */
START_TEST(test_reopen_keeps_what_was_stored)
{
	struct reg_head	h = check_reg_head(2, true, "mca"), got;
	bool		found = false;

	put(REG_ADAPTER, "ro-a", &h, NULL);
	reg_teardown();
	reg_setup();
	ck_assert_int_eq(registry_head(reg(), REG_ADAPTER, "ro-a", &got, &found), 0);
	ck_assert(found);
	ck_assert_uint_eq(got.rh_version, 2);
	ck_assert(got.rh_disabled);
	ck_assert_str_eq(got.rh_dept, "mca");
}
END_TEST

static Suite *
registry_suite(void)
{
	Suite	*su = suite_create("registry");
	TCase	*tc = tcase_create("store");

	tcase_add_checked_fixture(tc, reg_setup, reg_teardown);
	tcase_add_test(tc, test_head_round_trip);
	tcase_add_test(tc, test_each_gives_the_current_version);
	tcase_add_test(tc, test_a_version_is_written_once);
	tcase_add_test(tc, test_bad_ids_and_room);
	tcase_add_test(tc, test_reopen_keeps_what_was_stored);
	suite_add_tcase(su, tc);
	return su;
}

int
main(void)
{
	int	status;

	log_init("check_registry", 0);
	snprintf(tdir, sizeof(tdir), "/tmp/check_registry.XXXXXX");
	if (mkdtemp(tdir) == NULL)
		return 1;
	status = check_run(registry_suite());
	(void)check_rm_tree(tdir);
	return status;
}
