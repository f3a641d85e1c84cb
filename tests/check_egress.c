/*
 * check_egress.c - unit tests for the operator's endpoint list
 * (gateway/daemon/egress.c): the file format and its refusals, the
 * registration rule (a listed name, or an address inside a listed
 * network) and the rule every resolved address obeys (special addresses
 * only through a network entry inside their range).  The daemon's use of
 * them is tested end to end by tests/it_attack_ssrf.py.
 */
#include <sys/socket.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "gateway.h"
#include "check_util.h"

static char	tdir[64];

/* Writes text to a file of tdir and returns its path (static storage). */
static const char *
write_file(const char *text)
{
	static char	path[128];
	FILE		*f;

	snprintf(path, sizeof(path), "%s/endpoints.json", tdir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

static struct egress *
load(const char *text)
{
	struct egress	*eg;
	char		 err[512];

	eg = egress_load(write_file(text), false, err, sizeof(err));
	ck_assert_msg(eg != NULL, "%s", err);
	return eg;
}

static const char list[] = "{\"departments\": {"
    "\"nhc\": [\"127.0.0.1:8701\", \"[::1]\", \"10.1.0.0/16:443\", \"0.0.0.0/0\","
    " \"dept.example\", \"API.dept.example:8443\", \"[fd00:1::/32]\"],"
    "\"cdc\": []}}";

/* Registration: the endpoint's host as the department wrote it. */
struct reg_case {
	const char	*rc_dept;
	const char	*rc_url;
	bool		 rc_ok;
};

static const struct reg_case reg_cases[] = {
	{ "nhc", "http://127.0.0.1:8701/x?id={subject}", true },
	{ "nhc", "http://127.0.0.1:8702/x?id={subject}", false },	/* another port */
	{ "nhc", "http://127.0.0.2:8701/x?id={subject}", false },	/* loopback, unlisted */
	{ "nhc", "http://[::ffff:127.0.0.1]:8701/x?id={subject}", true },
	{ "nhc", "http://[::ffff:127.0.0.1]:80/x?id={subject}", false },
	{ "nhc", "http://[::1]:1/x?id={subject}", true },		/* any port */
	{ "nhc", "http://[0::1]/x?id={subject}", true },
	{ "nhc", "http://10.1.2.3:443/x?id={subject}", true },
	{ "nhc", "http://10.1.2.3/x?id={subject}", false },
	{ "nhc", "http://10.2.0.1:443/x?id={subject}", false },	/* private, unlisted */
	{ "nhc", "http://169.254.169.254/latest/meta-data/{subject}", false },
	{ "nhc", "http://[::ffff:169.254.169.254]/x?id={subject}", false },
	{ "nhc", "http://[::ffff:a9fe:a9fe]/x?id={subject}", false },
	{ "nhc", "http://0.0.0.0:8701/x?id={subject}", false },
	{ "nhc", "http://255.255.255.255/x?id={subject}", false },
	{ "nhc", "http://224.0.0.1/x?id={subject}", false },
	{ "nhc", "http://8.8.8.8/x?id={subject}", true },		/* public, in 0.0.0.0/0 */
	{ "nhc", "http://[2001:db8::1]/x?id={subject}", false },	/* no IPv6 network */
	{ "nhc", "http://[fd00:1:2::3]/x?id={subject}", true },	/* private, listed */
	{ "nhc", "http://[fd00:2::3]/x?id={subject}", false },
	{ "nhc", "http://[fe80::1]/x?id={subject}", false },
	{ "nhc", "http://[::]/x?id={subject}", false },
	{ "nhc", "http://dept.example/x?id={subject}", true },
	{ "nhc", "https://DEPT.Example:9/x?id={subject}", true },
	{ "nhc", "https://api.dept.example:8443/x?id={subject}", true },
	{ "nhc", "https://api.dept.example/x?id={subject}", false },
	{ "nhc", "http://other.example/x?id={subject}", false },
	{ "nhc", "http://localhost:8701/x?id={subject}", false },	/* names are listed by name */
	{ "cdc", "http://8.8.8.8/x?id={subject}", false },
	{ "cdc", "http://dept.example/x?id={subject}", false },
	{ "edu", "http://dept.example/x?id={subject}", false },	/* not in the file */
};

START_TEST(test_registration)
{
	const struct reg_case	*rc = &reg_cases[_i];
	struct egress		*eg = load(list);
	struct adapter		 ad;
	char			 err[512] = "";
	int			 rv;

	memset(&ad, 0, sizeof(ad));
	snprintf(ad.ad_dept, sizeof(ad.ad_dept), "%s", rc->rc_dept);
	snprintf(ad.ad_endpoint, sizeof(ad.ad_endpoint), "%s", rc->rc_url);
	rv = egress_check_adapter(eg, &ad, err, sizeof(err));
	ck_assert_msg(rv == (rc->rc_ok ? 0 : -1), "%s %s: %d %s", rc->rc_dept, rc->rc_url, rv,
	    err);
	if (!rc->rc_ok)
		ck_assert_msg(strstr(err, "endpoint list for department") != NULL, "%s", err);
	egress_free(eg);
}
END_TEST

/* Each request: every address the host stands for. */
struct addr_case {
	const char	*ac_url;	/* the endpoint (its host and port) */
	const char	*ac_addr;	/* one address it resolved to */
	bool		 ac_ok;
	const char	*ac_why;	/* in the refusal */
};

static const struct addr_case addr_cases[] = {
	{ "http://dept.example/", "93.184.216.34", true, NULL },
	/* A listed name that resolves to a special address: DNS rebinding. */
	{ "http://dept.example/", "127.0.0.1", false, "loopback" },
	{ "http://dept.example/", "169.254.169.254", false, "link-local" },
	{ "http://dept.example/", "10.9.9.9", false, "private" },
	{ "http://dept.example/", "::1", true, NULL },		/* [::1] is listed */
	{ "http://dept.example/", "fe80::1", false, "link-local" },
	{ "http://dept.example/", "2001:db8::1", true, NULL },	/* public, through the name */
	{ "http://dept.example:8701/", "127.0.0.1", true, NULL },	/* 127.0.0.1:8701 is listed */
	{ "http://dept.example:443/", "10.1.0.5", true, NULL },
	{ "http://other.example/", "8.8.8.8", true, NULL },		/* inside 0.0.0.0/0 */
	{ "http://other.example/", "2001:db8::1", false, "2001:db8::1" },
	{ "http://other.example/", "100.64.0.1", false, "carrier-grade" },
	{ "http://127.0.0.1:8701/", "127.0.0.1", true, NULL },
	{ "http://127.0.0.1:8702/", "127.0.0.1", false, "loopback" },
};

START_TEST(test_resolved_addresses)
{
	const struct addr_case	*ac = &addr_cases[_i];
	struct egress		*eg = load(list);
	struct endpoint		 ep;
	struct netaddr		 a;
	char			 err[512] = "";
	int			 rv;

	ck_assert_int_eq(endpoint_parse(ac->ac_url, &ep, NULL, 0), 0);
	memset(&a, 0, sizeof(a));
	a.na_family = strchr(ac->ac_addr, ':') != NULL ? AF_INET6 : AF_INET;
	ck_assert_int_eq(inet_pton(a.na_family, ac->ac_addr, a.na_bytes), 1);
	rv = egress_check_addr(eg, "nhc", &ep, &a, err, sizeof(err));
	ck_assert_msg(rv == (ac->ac_ok ? 0 : -1), "%s -> %s: %d %s", ac->ac_url, ac->ac_addr,
	    rv, err);
	if (!ac->ac_ok)
		ck_assert_msg(strstr(err, ac->ac_why) != NULL, "%s", err);
	/* Another department lists nothing. */
	ck_assert_int_eq(egress_check_addr(eg, "cdc", &ep, &a, err, sizeof(err)), -1);
	egress_free(eg);
}
END_TEST

/* Files that are refused, with a word the sentence must hold. */
struct bad_case {
	const char	*bc_text;
	const char	*bc_why;
};

static const struct bad_case bad_cases[] = {
	{ "[]", "departments" },
	{ "{\"departments\": {}, \"other\": 1}", "departments" },
	{ "{\"departments\": []}", "department ids" },
	{ "{\"departments\": {\"nhc\": \"127.0.0.1\"}}", "nhc" },
	{ "{\"departments\": {\"nhc\": [1]}}", "non-empty string" },
	{ "{\"departments\": {\"nhc\": [\"\"]}}", "non-empty string" },
	{ "{\"departments\": {\"nhc\": [\"10.0.0.1/33\"]}}", "0 to 32" },
	{ "{\"departments\": {\"nhc\": [\"10.0.0.1/8\"]}}", "bits set past /8" },
	{ "{\"departments\": {\"nhc\": [\"10.0.0.0/x\"]}}", "0 to 32" },
	{ "{\"departments\": {\"nhc\": [\"[fd00::/129]\"]}}", "0 to 128" },
	{ "{\"departments\": {\"nhc\": [\"[10.0.0.1]\"]}}", "IPv6" },
	{ "{\"departments\": {\"nhc\": [\"[::ffff:10.0.0.1]\"]}}", "without brackets" },
	{ "{\"departments\": {\"nhc\": [\"::1\"]}}", "brackets" },
	{ "{\"departments\": {\"nhc\": [\"host.example/8\"]}}", "prefix length" },
	{ "{\"departments\": {\"nhc\": [\"host.example:0\"]}}", "port" },
	{ "{\"departments\": {\"nhc\": [\"host.example:99999\"]}}", "port" },
	{ "{\"departments\": {\"nhc\": [\"ho st.example\"]}}", "DNS name" },
	{ "{\"departments\": {\"nhc\": [\"127.1\"]}}", "IPv4" },
	{ "{\"departments\": {\"nhc\": [\"user@host.example\"]}}", "DNS name" },
	{ "not json", "endpoints.json" },
};

START_TEST(test_refused_files)
{
	const struct bad_case	*bc = &bad_cases[_i];
	struct egress		*eg;
	char			 err[512] = "";

	eg = egress_load(write_file(bc->bc_text), false, err, sizeof(err));
	ck_assert_msg(eg == NULL, "%s was accepted", bc->bc_text);
	ck_assert_msg(strstr(err, bc->bc_why) != NULL && strstr(err, "endpoints.json") != NULL,
	    "%s: %s", bc->bc_text, err);
}
END_TEST

START_TEST(test_too_many_entries)
{
	char		*text;
	size_t		 i, off;
	struct egress	*eg;
	char		 err[512] = "";

	ck_assert_ptr_nonnull(text = malloc(64 * 1024));
	off = (size_t)snprintf(text, 64 * 1024, "{\"departments\": {\"nhc\": [");
	for (i = 0; i < 257; i++)
		off += (size_t)snprintf(text + off, 64 * 1024 - off, "%s\"10.0.%zu.%zu\"",
		    i > 0 ? "," : "", i / 256, i % 256);
	snprintf(text + off, 64 * 1024 - off, "]}}");
	eg = egress_load(write_file(text), false, err, sizeof(err));
	free(text);
	ck_assert_ptr_null(eg);
	ck_assert_msg(strstr(err, "at most 256") != NULL, "%s", err);
}
END_TEST

/* No list at all allows nothing; a file named on the command line must exist. */
START_TEST(test_missing_file)
{
	struct egress	*eg;
	struct adapter	 ad;
	char		 path[128], err[512] = "";

	snprintf(path, sizeof(path), "%s/no-such-file.json", tdir);
	ck_assert_ptr_null(egress_load(path, false, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "no-such-file.json"));
	ck_assert_ptr_nonnull(eg = egress_load(path, true, err, sizeof(err)));
	memset(&ad, 0, sizeof(ad));
	snprintf(ad.ad_dept, sizeof(ad.ad_dept), "nhc");
	snprintf(ad.ad_endpoint, sizeof(ad.ad_endpoint), "http://8.8.8.8/x?id={subject}");
	ck_assert_int_eq(egress_check_adapter(eg, &ad, err, sizeof(err)), -1);
	egress_free(eg);
	ck_assert_ptr_nonnull(eg = egress_load("", false, err, sizeof(err)));
	ck_assert_int_eq(egress_check_adapter(eg, &ad, err, sizeof(err)), -1);
	egress_free(eg);
}
END_TEST

/* The demo list of the source tree loads and lets every department reach the simulator. */
START_TEST(test_demo_list)
{
	static const char	*depts[] = { "psb", "nhc", "mca", "cdc", "nhsa", "hrss", "mnr",
				    "mohurd", "samr", "edu" };
	struct egress		*eg;
	struct adapter		 ad;
	char			 path[512], err[512] = "";
	size_t			 i;

	snprintf(path, sizeof(path), "%s/adapters/endpoints.json", check_srcdir());
	ck_assert_msg((eg = egress_load(path, false, err, sizeof(err))) != NULL, "%s", err);
	memset(&ad, 0, sizeof(ad));
	for (i = 0; i < NELEM(depts); i++) {
		snprintf(ad.ad_dept, sizeof(ad.ad_dept), "%s", depts[i]);
		snprintf(ad.ad_endpoint, sizeof(ad.ad_endpoint),
		    "http://127.0.0.1:8701/x?id={subject}");
		ck_assert_msg(egress_check_adapter(eg, &ad, err, sizeof(err)) == 0, "%s", err);
		snprintf(ad.ad_endpoint, sizeof(ad.ad_endpoint),
		    "http://127.0.0.1:22/x?id={subject}");
		ck_assert_int_eq(egress_check_adapter(eg, &ad, err, sizeof(err)), -1);
	}
	egress_free(eg);
}
END_TEST

static Suite *
egress_suite(void)
{
	Suite	*su = suite_create("egress");
	TCase	*tc = tcase_create("rules");

	tcase_add_loop_test(tc, test_registration, 0, NELEM(reg_cases));
	tcase_add_loop_test(tc, test_resolved_addresses, 0, NELEM(addr_cases));
	suite_add_tcase(su, tc);
	tc = tcase_create("file");
	tcase_add_loop_test(tc, test_refused_files, 0, NELEM(bad_cases));
	tcase_add_test(tc, test_too_many_entries);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_demo_list);
	suite_add_tcase(su, tc);
	return su;
}

int
main(void)
{
	int	rc;

	log_init("check_egress", 0);
	snprintf(tdir, sizeof(tdir), "/tmp/check_egress.XXXXXX");
	if (mkdtemp(tdir) == NULL)
		return EXIT_FAILURE;
	rc = check_run(egress_suite());
	check_rm_tree(tdir);
	return rc;
}
