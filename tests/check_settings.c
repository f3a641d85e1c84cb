/*
 * check_settings.c - unit tests for the settings of lianband
 * (gateway/daemon/settings.c): the embedded defaults of the build tree,
 * lianband.conf read with inih, the command line over the file, every
 * refusal naming the file and line, --print-config read back as a config
 * file, what SIGHUP may change, and the hints of start errors.  The daemon
 * itself is tested with config files by tests/it_config.py.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "gateway.h"
#include "check_util.h"

static char	tdir[64];	/* every file the tests write */

/* Writes text to tdir/name; returns the path (static, one at a time). */
static const char *
write_file(const char *name, const char *text, size_t len)
{
	static char	 path[128];
	FILE		*f;

	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

static const char *
write_conf(const char *text)
{
	return write_file("lianband.conf", text, strlen(text));
}

/*
 * Parses the command line argv (NULL-terminated, without the program's
 * name) and loads the settings into gc; returns settings_load's result
 * with its sentence in err.
 */
static int
load(const char *const *argv, struct gw_config *gc, char *err, size_t errlen)
{
	char		*av[32];
	struct settings	*st;
	int		 ac = 0, rc;

	av[ac++] = (char *)"lianband";
	while (argv != NULL && *argv != NULL && ac < (int)NELEM(av) - 1)
		av[ac++] = (char *)*argv++;
	av[ac] = NULL;
	ck_assert_int_eq(settings_args(ac, av, &st), 0);
	err[0] = '\0';
	rc = settings_load(st, gc, err, errlen);
	settings_free(st);
	return rc;
}

/* The settings of the config file path, which must load. */
static void
load_conf(const char *path, struct gw_config *gc)
{
	const char	*argv[] = { "--config", path, NULL };
	char		 err[1024];

	ck_assert_msg(load(argv, gc, err, sizeof(err)) == 0, "%s", err);
}

/* The config file text must be refused with a sentence that holds want. */
static void
refused(const char *text, const char *want)
{
	struct gw_config	 gc;
	const char		*argv[] = { "--config", NULL, NULL };
	char			 err[1024];

	argv[1] = write_conf(text);
	ck_assert_int_eq(load(argv, &gc, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, want) != NULL, "\"%s\" does not say \"%s\"", err, want);
}

START_TEST(test_defaults_of_the_build_tree)
{
	struct gw_config	gc;
	char			err[1024];
	size_t			i;

	ck_assert_int_eq(load(NULL, &gc, err, sizeof(err)), 0);
	ck_assert_str_eq(gc.gc_listen, "127.0.0.1:8443");
	ck_assert_str_eq(gc.gc_data, "var");
	ck_assert_str_eq(gc.gc_certs, "certs/demo");
	ck_assert_str_eq(gc.gc_policies, "policies");
	ck_assert_str_eq(gc.gc_adapters, "adapters/specs");
	ck_assert_str_eq(gc.gc_endpoints, "adapters/endpoints.json");
	ck_assert(!gc.gc_endpoints_given);
	ck_assert_str_eq(gc.gc_id, "lianban-demo");
	ck_assert_int_eq(gc.gc_workers, 2);
	ck_assert_uint_eq(gc.gc_seal_window_us, SEALER_WINDOW_US);
	ck_assert_uint_eq(gc.gc_seal_batch, SEALER_MAX_BATCH);
	ck_assert_uint_eq(gc.gc_client_rate, THROTTLE_RATE_DEFAULT);
	ck_assert_uint_eq(gc.gc_client_burst, THROTTLE_BURST_DEFAULT);
	ck_assert_uint_eq(gc.gc_reg_ids, REG_QUOTA_IDS);
	ck_assert_uint_eq(gc.gc_reg_versions, REG_QUOTA_VERSIONS);
	ck_assert_uint_eq(gc.gc_reg_bytes, REG_QUOTA_BYTES);
	ck_assert_int_eq(gc.gc_shutdown_grace, 30);
	ck_assert_int_eq(gc.gc_verbose, 0);
	/* No config file is read from the build tree unless one is named. */
	ck_assert_str_eq(gc.gc_file, "");
	for (i = 0; i < SETTINGS_MAX; i++)
		ck_assert_int_eq(gc.gc_from[i], SETTINGS_FROM_DEFAULT);
}
END_TEST

START_TEST(test_file_sets_every_kind_of_value)
{
	struct gw_config	gc;
	char			want[256];

	load_conf(write_conf(
	    "# the gateway of a test\n"
	    "listen = 127.0.0.1:9443\n"
	    "data = /var/lib/x\n"
	    "certs = pki\n"
	    "\n"
	    "; a comment of the other kind\n"
	    "endpoints = ../endpoints.json\n"
	    "id = gw-test\n"
	    "workers = 7\n"
	    "seal-window = 5\n"
	    "client-rate=10\n"
	    "registry-bytes = 1073741824\n"
	    "verbose = yes\n"), &gc);
	ck_assert_str_eq(gc.gc_listen, "127.0.0.1:9443");
	ck_assert_str_eq(gc.gc_data, "/var/lib/x");
	/* A relative path of the file is taken from the file's folder. */
	snprintf(want, sizeof(want), "%s/pki", tdir);
	ck_assert_str_eq(gc.gc_certs, want);
	snprintf(want, sizeof(want), "%s/../endpoints.json", tdir);
	ck_assert_str_eq(gc.gc_endpoints, want);
	ck_assert(gc.gc_endpoints_given);
	ck_assert_str_eq(gc.gc_policies, "policies");
	ck_assert_str_eq(gc.gc_id, "gw-test");
	ck_assert_int_eq(gc.gc_workers, 7);
	ck_assert_uint_eq(gc.gc_seal_window_us, 5000);
	ck_assert_uint_eq(gc.gc_client_rate, 10);
	ck_assert_uint_eq(gc.gc_reg_bytes, (uint64_t)1 << 30);
	ck_assert_int_eq(gc.gc_verbose, 1);
	snprintf(want, sizeof(want), "%s/lianband.conf", tdir);
	ck_assert_str_eq(gc.gc_file, want);
	/* listen is the table's first setting, on line 2 of the file. */
	ck_assert_int_eq(gc.gc_from[0], 2);
}
END_TEST

START_TEST(test_command_line_overrides_the_file)
{
	struct gw_config	 gc;
	const char		*argv[] = { "--workers", "5", "--config", NULL, "-v",
				    "--certs", "rel/pki", NULL };
	char			 err[1024];

	argv[3] = write_conf("workers = 3\nclient-burst = 9\nverbose = no\ncerts = x\n");
	ck_assert_msg(load(argv, &gc, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(gc.gc_workers, 5);
	ck_assert_int_eq(gc.gc_verbose, 1);
	ck_assert_uint_eq(gc.gc_client_burst, 9);
	/* A path of the command line stays relative to the working directory. */
	ck_assert_str_eq(gc.gc_certs, "rel/pki");
}
END_TEST

START_TEST(test_refusals_name_the_line)
{
	char	big[512];

	refused("listen = 127.0.0.1:1\n\nworkrs = 3\n", "lianband.conf:3: unknown key \"workrs\"");
	refused("workers = 65\n", "lianband.conf:1: workers must be 1 to 64, not \"65\"");
	refused("workers = 2x\n", ":1: workers must be 1 to 64");
	refused("workers = -1\n", ":1: workers must be 1 to 64");
	refused("workers = +3\n", ":1: workers must be 1 to 64");
	refused("seal-window = 1001\n", ":1: seal-window must be 0 to 1000 ms");
	refused("registry-bytes = 99999999999999999999\n", ":1: registry-bytes must be 1024 to");
	refused("verbose = maybe\n", ":1: verbose must be yes or no, not \"maybe\"");
	refused("data =\n", ":1: data needs a value");
	refused("id = a\nid = b\n", ":2: id is set twice (also on line 1)");
	refused("# fine\n[gateway]\nlisten = 127.0.0.1:1\n", ":3: lianband.conf has no sections");
	refused("listen 127.0.0.1\n", ":1: not a KEY = VALUE line");
	/* The first of two errors is the one reported, whichever kind it is. */
	refused("x = 1\nnot a setting\n", ":1: unknown key \"x\"");
	refused("workers = 2\nno equals sign\nx = 1\n", ":2: not a KEY = VALUE line");
	/* Command-line-only options are no keys. */
	refused("config = /etc/x\n", ":1: unknown key \"config\"");
	refused("help = yes\n", ":1: unknown key \"help\"");
	memset(big, 'a', sizeof(big));
	memcpy(big, "id = ", 5);
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	refused(big, ":1: the line is longer than");
}
END_TEST

START_TEST(test_a_nul_byte_is_refused)
{
	struct gw_config	 gc;
	const char		*argv[] = { "--config", NULL, NULL };
	char			 err[1024];

	argv[1] = write_file("lianband.conf", "workers = 3\nid = a\0b\n", 20);
	ck_assert_int_eq(load(argv, &gc, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, ":2: the line holds a NUL byte") != NULL, "%s", err);
}
END_TEST

START_TEST(test_a_missing_file_is_refused)
{
	struct gw_config	 gc;
	const char		*argv[] = { "--config", "/nonexistent/lianband.conf", NULL };
	char			 err[1024];

	ck_assert_int_eq(load(argv, &gc, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "/nonexistent/lianband.conf: cannot read: No such file or "
	    "directory");
}
END_TEST

START_TEST(test_wrong_command_line_values_are_usage_errors)
{
	char		*bad[][3] = {
		{ "lianband", "--workers", "0" },
		{ "lianband", "--seal-batch", "" },
		{ "lianband", "--data", "" },
		{ "lianband", "--no-such-option", "1" },
		{ "lianband", "extra", "operand" },
	};
	struct settings	*st;
	size_t		 i;

	for (i = 0; i < NELEM(bad); i++) {
		ck_assert_int_eq(settings_args(3, bad[i], &st), -1);
		ck_assert_ptr_null(st);
	}
}
END_TEST

/* --print-config writes a config file that gives back the same settings. */
START_TEST(test_print_config_reads_back)
{
	struct gw_config	 a, b;
	const char		*path;
	char			 text[4096], again[4096];
	FILE			*f;
	size_t			 n, m;

	load_conf(write_conf("client-rate = 77\nid = printed\nendpoints =\nverbose = on\n"), &a);
	ck_assert_str_eq(a.gc_endpoints, "");
	ck_assert_ptr_nonnull(f = fmemopen(text, sizeof(text), "w"));
	settings_print(f, &a);
	fclose(f);
	path = write_file("printed.conf", text, strlen(text));
	load_conf(path, &b);
	ck_assert_str_eq(b.gc_id, "printed");
	ck_assert_uint_eq(b.gc_client_rate, 77);
	ck_assert_int_eq(b.gc_verbose, 1);
	ck_assert_str_eq(b.gc_endpoints, "");
	ck_assert(b.gc_endpoints_given);
	ck_assert_ptr_nonnull(f = fmemopen(again, sizeof(again), "w"));
	settings_print(f, &b);
	fclose(f);
	/* The same lines but the first, which names the file. */
	n = strcspn(text, "\n");
	m = strcspn(again, "\n");
	ck_assert_str_eq(text + n, again + m);
}
END_TEST

START_TEST(test_merge_takes_only_what_may_change_live)
{
	struct gw_config	run, next;

	load_conf(write_conf("listen = 127.0.0.1:1\nworkers = 2\nclient-rate = 5\n"
	    "policies = /p1\n"), &run);
	load_conf(write_conf("listen = 127.0.0.1:2\nworkers = 3\nclient-rate = 6\n"
	    "policies = /p2\nregistry-ids = 9\nseal-batch = 4\n"), &next);
	settings_merge(&run, &next);
	ck_assert_str_eq(run.gc_listen, "127.0.0.1:1");
	ck_assert_int_eq(run.gc_workers, 2);
	ck_assert_uint_eq(run.gc_client_rate, 6);
	ck_assert_str_eq(run.gc_policies, "/p2");
	ck_assert_uint_eq(run.gc_reg_ids, 9);
	ck_assert_uint_eq(run.gc_seal_batch, 4);
}
END_TEST

START_TEST(test_hints_name_the_setting_and_its_origin)
{
	struct gw_config	 gc;
	const char		*argv[] = { "--config", NULL, "--policies", "/srv/pol", NULL };
	char			 err[1024], hint[2048], want[256];

	argv[1] = write_conf("# line 1\ncerts = /srv/pki\n");
	ck_assert_msg(load(argv, &gc, err, sizeof(err)) == 0, "%s", err);
	/* The message starts with a file of certs: certs, from the file's line 2. */
	settings_hint(&gc, "data", "/srv/pki/trust/consent: No such file or directory", hint,
	    sizeof(hint));
	snprintf(want, sizeof(want), "or set certs in %s/lianband.conf or --certs (now "
	    "/srv/pki, from %s/lianband.conf line 2)", tdir, tdir);
	ck_assert_msg(strstr(hint, want) != NULL, "%s", hint);
	ck_assert_msg(strstr(hint, "certs/mkdemo") != NULL, "%s", hint);
	settings_hint(&gc, "certs", "/srv/pol/x.json: not JSON", hint, sizeof(hint));
	ck_assert_msg(strstr(hint, "set policies in") != NULL, "%s", hint);
	ck_assert_msg(strstr(hint, "from the command line") != NULL, "%s", hint);
	/* /srv/pkix is not below /srv/pki: the fallback names the setting. */
	settings_hint(&gc, "data", "/srv/pkix: gone", hint, sizeof(hint));
	ck_assert_msg(strstr(hint, "set data in") != NULL, "%s", hint);
	ck_assert_msg(strstr(hint, "the default") != NULL, "%s", hint);
}
END_TEST

static Suite *
settings_suite(void)
{
	Suite	*su = suite_create("settings");
	TCase	*tc = tcase_create("settings");

	tcase_add_test(tc, test_defaults_of_the_build_tree);
	tcase_add_test(tc, test_file_sets_every_kind_of_value);
	tcase_add_test(tc, test_command_line_overrides_the_file);
	tcase_add_test(tc, test_refusals_name_the_line);
	tcase_add_test(tc, test_a_nul_byte_is_refused);
	tcase_add_test(tc, test_a_missing_file_is_refused);
	tcase_add_test(tc, test_wrong_command_line_values_are_usage_errors);
	tcase_add_test(tc, test_print_config_reads_back);
	tcase_add_test(tc, test_merge_takes_only_what_may_change_live);
	tcase_add_test(tc, test_hints_name_the_setting_and_its_origin);
	suite_add_tcase(su, tc);
	return su;
}

int
main(void)
{
	int	failed;

	log_init("check_settings", 0);
	snprintf(tdir, sizeof(tdir), "/tmp/check_settings.XXXXXX");
	if (mkdtemp(tdir) == NULL)
		return 1;
	failed = check_run(settings_suite());
	if (check_rm_tree(tdir) != 0)
		fprintf(stderr, "check_settings: could not remove %s\n", tdir);
	return failed;
}
