/*
 * check_config.c - unit tests for the configuration snapshot
 * (gateway/daemon/config.c): the repository's policies and adapter specs
 * loaded with a demo PKI, the look-ups exchanges make, refusals that name
 * the broken file, registry entries and changes on top of the files, and
 * how a snapshot is installed and reloaded.  The daemon's reloads on
 * SIGHUP and registry changes are tested end to end by tests/it_*.py.
 */
#include <glob.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "gateway.h"
#include "check_util.h"

static char		 tdir[64];	/* everything the tests write */
static char		 pki[128];	/* tdir/pki, made once by certs/mkdemo */
static struct gw_config	 gc;		/* each test's, with a data directory of its own */
static struct registry	*rg;		/* that directory's registry */

static const char *
srcdir(void)
{
	const char	*d = getenv("LB_SRCDIR");

	if (d != NULL && d[0] != '\0')
		return d;
	return LB_SRCDIR;
}

static void
setup(void)
{
	char	data[128];

	memset(&gc, 0, sizeof(gc));
	snprintf(data, sizeof(data), "%s/data.XXXXXX", tdir);
	ck_assert_ptr_nonnull(mkdtemp(data));
	snprintf(gc.gc_data, sizeof(gc.gc_data), "%s", data);
	snprintf(gc.gc_certs, sizeof(gc.gc_certs), "%s", pki);
	snprintf(gc.gc_policies, sizeof(gc.gc_policies), "%s/policies", srcdir());
	snprintf(gc.gc_adapters, sizeof(gc.gc_adapters), "%s/adapters/specs", srcdir());
	snprintf(gc.gc_id, sizeof(gc.gc_id), "check-config");
	gc.gc_workers = 1;
	rg = check_registry_open(gc.gc_data);
}

static void
teardown(void)
{
	registry_close(rg);
	rg = NULL;
}

static struct snapshot *
load(void)
{
	struct snapshot	*sn;
	char		 err[1024] = "";

	sn = snapshot_load(&gc, rg, err, sizeof(err));
	ck_assert_msg(sn != NULL, "snapshot_load: %s", err);
	return sn;
}

/* Loads what must fail, and returns its sentence in err. */
static void
load_fails(char *err, size_t errlen)
{
	struct snapshot	*sn;

	err[0] = '\0';
	sn = snapshot_load(&gc, rg, err, errlen);
	ck_assert_msg(sn == NULL, "snapshot_load succeeded");
	ck_assert(err[0] != '\0');
}

static size_t
count_json(const char *dir)
{
	glob_t	g;
	char	pat[600];
	size_t	n;

	snprintf(pat, sizeof(pat), "%s/*.json", dir);
	ck_assert_int_eq(glob(pat, 0, NULL, &g), 0);
	n = g.gl_pathc;
	globfree(&g);
	return n;
}

/* A new directory under tdir, its path in buf. */
static void
new_dir(char *buf, size_t bufsz, const char *name)
{
	snprintf(buf, bufsz, "%s/%s.XXXXXX", tdir, name);
	ck_assert_ptr_nonnull(mkdtemp(buf));
}

/* Writes dir/name with text. */
static void
put_file(const char *dir, const char *name, const char *text)
{
	char	path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(file_write(path, text, strlen(text), 0600), 0);
}

/* The text of a file of the repository (malloc'ed, NUL-terminated). */
static char *
repo_file(const char *rel)
{
	char	 path[512];
	uint8_t	*buf;
	size_t	 len;
	char	*s;

	snprintf(path, sizeof(path), "%s/%s", srcdir(), rel);
	ck_assert_int_eq(file_read(path, 1 << 20, &buf, &len), 0);
	ck_assert_ptr_nonnull(s = malloc(len + 1));
	memcpy(s, buf, len);
	s[len] = '\0';
	free(buf);
	return s;
}

START_TEST(test_load_repository)
{
	struct snapshot		*sn = load();
	const struct policy	*po;
	const struct adapter	*ad;
	const struct seal_key	*sk;
	size_t			 i, j, nseals = 0;

	ck_assert_uint_eq(sn->sn_npolicies, count_json(gc.gc_policies));
	ck_assert_uint_eq(sn->sn_nadapters, count_json(gc.gc_adapters));
	ck_assert_uint_gt(sn->sn_trust->t_nauth, 0);
	ck_assert_int_eq(sn->sn_refs, 1);
	/* Every file is version 1 until the registry says otherwise. */
	for (i = 0; i < sn->sn_npolicies; i++)
		ck_assert_uint_eq(sn->sn_policies[i]->po_version, 1);
	for (i = 0; i < sn->sn_nadapters; i++) {
		ad = sn->sn_adapters[i];
		ck_assert_uint_eq(ad->ad_version, 1);
		ck_assert(!ad->ad_disabled);
		/* Each adapter's seal is loaded once, and it is its department's. */
		ck_assert_ptr_nonnull(sk = snapshot_seal(sn, ad->ad_seal));
		ck_assert_str_eq(sk->sk_dept, ad->ad_dept);
		for (j = 0; j < i; j++)
			if (strcmp(sn->sn_adapters[j]->ad_seal, ad->ad_seal) == 0)
				break;
		if (j == i)
			nseals++;
	}
	ck_assert_uint_eq(sn->sn_nseals, nseals);
	ck_assert_ptr_nonnull(po = snapshot_policy(sn, "newborn"));
	ck_assert_str_eq(po->po_bundle, "newborn");
	ck_assert_ptr_nonnull(snapshot_policy(sn, "access_report"));
	ck_assert_ptr_null(snapshot_policy(sn, "no-such-bundle"));
	ck_assert_ptr_null(snapshot_policy(sn, ""));
	snapshot_unref(sn);
}
END_TEST

START_TEST(test_adapter_lookups)
{
	struct snapshot		*sn = load();
	const struct adapter	*ad;

	ck_assert_ptr_nonnull(ad = snapshot_adapter_for(sn, "nhc", "birth_medical_certificate"));
	ck_assert_str_eq(ad->ad_id, "nhc-birth");
	ck_assert_ptr_eq(snapshot_adapter(sn, "nhc-birth"), ad);
	/* The item of another department, an item nobody serves, a dept that is not there. */
	ck_assert_ptr_null(snapshot_adapter_for(sn, "psb", "birth_medical_certificate"));
	ck_assert_ptr_null(snapshot_adapter_for(sn, "nhc", "no_such_item"));
	ck_assert_ptr_null(snapshot_adapter_for(sn, "nobody", "birth_medical_certificate"));
	ck_assert_ptr_null(snapshot_adapter(sn, "no-such-adapter"));
	/* One department with two adapters: each item goes to the one that serves it. */
	ck_assert_ptr_nonnull(ad = snapshot_adapter(sn, "psb-idcard"));
	ck_assert_ptr_eq(snapshot_adapter_for(sn, "psb", ad->ad_items[0]), ad);
	ck_assert_ptr_nonnull(ad = snapshot_adapter(sn, "psb-household"));
	ck_assert_ptr_eq(snapshot_adapter_for(sn, "psb", ad->ad_items[0]), ad);
	ck_assert_ptr_null(snapshot_seal(sn, "no-such-seal"));
	snapshot_unref(sn);
}
END_TEST

START_TEST(test_broken_policy_is_named)
{
	char	dir[128], err[1024];
	char	*newborn = repo_file("policies/newborn.json");

	new_dir(dir, sizeof(dir), "policies");
	snprintf(gc.gc_policies, sizeof(gc.gc_policies), "%s", dir);
	put_file(dir, "a-newborn.json", newborn);
	put_file(dir, "zz-broken.json", "{ \"bundle\": \"broken\", ");
	load_fails(err, sizeof(err));
	ck_assert_msg(strstr(err, "zz-broken.json") != NULL, "%s", err);

	/* Well-formed JSON that is not a policy. */
	put_file(dir, "zz-broken.json", "{ \"bundle\": 7 }");
	load_fails(err, sizeof(err));
	ck_assert_msg(strstr(err, "zz-broken.json") != NULL, "%s", err);

	/* The same bundle twice. */
	put_file(dir, "zz-broken.json", newborn);
	load_fails(err, sizeof(err));
	ck_assert_msg(strstr(err, "zz-broken.json") != NULL &&
	    strstr(err, "defined twice") != NULL, "%s", err);

	/* Files that are not *.json are not read. */
	snprintf(err, sizeof(err), "%s/zz-broken.json", dir);
	ck_assert_int_eq(unlink(err), 0);
	put_file(dir, "notes.txt", "{ not json");
	put_file(dir, ".json", "{ not json");
	snapshot_unref(load());
	free(newborn);
}
END_TEST

START_TEST(test_broken_adapter_and_dirs)
{
	char	 dir[128], err[1024], *spec, *p;

	/* An adapter that names the seal of another department. */
	spec = repo_file("adapters/specs/nhc-birth.json");
	ck_assert_ptr_nonnull(p = strstr(spec, "\"seal\": \"nhc\""));
	memcpy(p, "\"seal\": \"cdc\"", 13);
	new_dir(dir, sizeof(dir), "adapters");
	snprintf(gc.gc_adapters, sizeof(gc.gc_adapters), "%s", dir);
	put_file(dir, "nhc-birth.json", spec);
	load_fails(err, sizeof(err));
	ck_assert_msg(strstr(err, "nhc-birth.json") != NULL &&
	    strstr(err, "of another department") != NULL, "%s", err);
	/* A seal the PKI does not have. */
	memcpy(p, "\"seal\": \"zzz\"", 13);
	put_file(dir, "nhc-birth.json", spec);
	load_fails(err, sizeof(err));
	ck_assert_msg(strstr(err, "nhc-birth.json") != NULL, "%s", err);
	free(spec);

	/* Directories that are not there are named. */
	snprintf(gc.gc_adapters, sizeof(gc.gc_adapters), "%s/no-such-dir", tdir);
	load_fails(err, sizeof(err));
	ck_assert_msg(strstr(err, "no-such-dir") != NULL, "%s", err);
	snprintf(gc.gc_adapters, sizeof(gc.gc_adapters), "%s/adapters/specs", srcdir());
	snprintf(gc.gc_certs, sizeof(gc.gc_certs), "%s/no-such-pki", tdir);
	load_fails(err, sizeof(err));
	ck_assert_msg(strstr(err, "no-such-pki") != NULL, "%s", err);
}
END_TEST

START_TEST(test_registry_overrides_files)
{
	struct snapshot		*sn = load(), *sn2;
	const struct policy	*po = snapshot_policy(sn, "newborn");
	const struct adapter	*ad;
	struct reg_head		 ph = check_reg_head(3, false, ""), ah = check_reg_head(2, true, "nhc");
	char			 err[256] = "";

	ck_assert_int_eq(registry_put(rg, REG_POLICY, "newborn", &ph, po->po_spec,
	    po->po_spec_len, err, sizeof(err)), 0);
	/* A file adapter disabled through the API has a head and no stored spec. */
	ck_assert_int_eq(registry_put(rg, REG_ADAPTER, "nhc-birth", &ah, NULL, 0, err,
	    sizeof(err)), 0);
	sn2 = load();
	ck_assert_uint_eq(snapshot_policy(sn2, "newborn")->po_version, 3);
	ck_assert_uint_eq(snapshot_policy(sn2, "retirement")->po_version, 1);
	ck_assert_uint_eq(sn2->sn_npolicies, sn->sn_npolicies);
	ck_assert_ptr_nonnull(ad = snapshot_adapter(sn2, "nhc-birth"));
	ck_assert(ad->ad_disabled);
	ck_assert_uint_eq(ad->ad_version, 2);
	ck_assert_ptr_null(snapshot_adapter_for(sn2, "nhc", "birth_medical_certificate"));
	/* The snapshot loaded before is immutable. */
	ck_assert(!snapshot_adapter(sn, "nhc-birth")->ad_disabled);
	snapshot_unref(sn2);
	snapshot_unref(sn);
}
END_TEST

START_TEST(test_registry_entry_that_no_longer_loads)
{
	struct snapshot		*sn = load(), *sn2;
	const struct policy	*po = snapshot_policy(sn, "newborn");
	struct reg_head		 ph = check_reg_head(4, false, ""), ah = check_reg_head(2, false, "nhc");
	static const uint8_t	 junk[] = { 0xc1, 0xc1 };	/* never msgpack */
	char			 err[256] = "";

	ck_assert_int_eq(registry_put(rg, REG_POLICY, "newborn", &ph, junk, sizeof(junk), err,
	    sizeof(err)), 0);
	/* An adapter id whose stored spec is a policy. */
	ck_assert_int_eq(registry_put(rg, REG_ADAPTER, "nhc-birth", &ah, po->po_spec,
	    po->po_spec_len, err, sizeof(err)), 0);
	sn2 = load();
	/* The policy is left out: the file's stays. */
	ck_assert_uint_eq(snapshot_policy(sn2, "newborn")->po_version, 1);
	/* The adapter is left out, and the file's of the same id is not brought back. */
	ck_assert(snapshot_adapter(sn2, "nhc-birth")->ad_disabled);
	ck_assert_ptr_null(snapshot_adapter_for(sn2, "nhc", "birth_medical_certificate"));
	snapshot_unref(sn2);
	snapshot_unref(sn);
}
END_TEST

START_TEST(test_load_with_change)
{
	struct snapshot		*sn = load(), *sn2;
	const struct policy	*po = snapshot_policy(sn, "newborn"), *other;
	struct reg_head		 ah = check_reg_head(2, true, "nhc"), ph = check_reg_head(5, false, "");
	struct reg_change	 chg;
	char			 err[512] = "";

	memset(&chg, 0, sizeof(chg));
	chg.rc_kind = REG_ADAPTER;
	chg.rc_id = "nhc-birth";
	chg.rc_head = &ah;
	sn2 = snapshot_load_with(&gc, rg, &chg, err, sizeof(err));
	ck_assert_msg(sn2 != NULL, "%s", err);
	ck_assert(snapshot_adapter(sn2, "nhc-birth")->ad_disabled);
	ck_assert_ptr_null(snapshot_adapter_for(sn2, "nhc", "birth_medical_certificate"));
	snapshot_unref(sn2);

	chg.rc_kind = REG_POLICY;
	chg.rc_id = "newborn";
	chg.rc_head = &ph;
	chg.rc_spec = po->po_spec;
	chg.rc_spec_len = po->po_spec_len;
	sn2 = snapshot_load_with(&gc, rg, &chg, err, sizeof(err));
	ck_assert_msg(sn2 != NULL, "%s", err);
	ck_assert_uint_eq(snapshot_policy(sn2, "newborn")->po_version, 5);
	snapshot_unref(sn2);

	/* A spec for another bundle than the change's id does not load. */
	ck_assert_ptr_nonnull(other = snapshot_policy(sn, "retirement"));
	chg.rc_spec = other->po_spec;
	chg.rc_spec_len = other->po_spec_len;
	err[0] = '\0';
	ck_assert_ptr_null(snapshot_load_with(&gc, rg, &chg, err, sizeof(err)));
	ck_assert_msg(strstr(err, "retirement") != NULL, "%s", err);

	/* A change is only loaded, never stored: the registry is as it was. */
	sn2 = load();
	ck_assert_uint_eq(snapshot_policy(sn2, "newborn")->po_version, 1);
	ck_assert(!snapshot_adapter(sn2, "nhc-birth")->ad_disabled);
	snapshot_unref(sn2);
	snapshot_unref(sn);
}
END_TEST

START_TEST(test_install_generation_and_refs)
{
	struct gw	 gw;
	struct snapshot	*a = load(), *b = load();

	memset(&gw, 0, sizeof(gw));
	gw.gw_loop = pthread_self();
	snapshot_install(&gw, a);
	ck_assert_ptr_eq(gw.gw_snap, a);
	ck_assert_uint_eq(gw.gw_snap_gen, 1);
	ck_assert_int_eq(a->sn_refs, 1);
	/* An exchange starts with a and keeps it across the next install. */
	snapshot_ref(a);
	ck_assert_int_eq(a->sn_refs, 2);
	snapshot_install(&gw, b);
	ck_assert_ptr_eq(gw.gw_snap, b);
	ck_assert_uint_eq(gw.gw_snap_gen, 2);
	ck_assert_int_eq(a->sn_refs, 1);
	ck_assert_int_eq(b->sn_refs, 1);
	ck_assert_ptr_nonnull(snapshot_policy(a, "newborn"));
	snapshot_unref(a);		/* the exchange ends: a goes */
	snapshot_unref(NULL);		/* nothing to drop is fine */
	snapshot_unref(gw.gw_snap);
}
END_TEST

/* Many references taken and dropped, like an exchange's, by one event loop. */
static void *
ref_elsewhere(void *arg)
{
	struct gw	*gw = arg;
	struct snapshot	*sn;
	uint64_t	 gen;
	int		 i;

	for (i = 0; i < 20000; i++) {
		sn = snapshot_current(gw, &gen);
		ck_assert_uint_ge(gen, 1);
		snapshot_unref(sn);
	}
	return NULL;
}

/*
 * Every event loop takes references to the running snapshot while another
 * installs the next: the counts stay exact, and each snapshot goes once
 * its last holder drops it (the sanitizer builds see a leak or a double
 * free otherwise).
 */
START_TEST(test_refs_from_many_loops)
{
	struct gw	 gw;
	struct snapshot	*sn;
	pthread_t	 t[4];
	int		 i;

	memset(&gw, 0, sizeof(gw));
	pthread_mutex_init(&gw.gw_lock, NULL);
	snapshot_install(&gw, load());
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, ref_elsewhere, &gw), 0);
	for (i = 0; i < 3; i++)
		snapshot_install(&gw, load());
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ck_assert_uint_eq(gw.gw_snap_gen, 4);
	sn = snapshot_current(&gw, NULL);
	ck_assert_int_eq(sn->sn_refs, 2);
	snapshot_unref(sn);
	snapshot_unref(gw.gw_snap);
	pthread_mutex_destroy(&gw.gw_lock);
}
END_TEST

/* A gateway with what snapshot_reload uses: a loop, a worker, the registry. */
static struct gw	 rgw;
struct reload_seen {
	int			 ld_calls;
	const struct snapshot	*ld_sn;
	char			 ld_err[512];
};
static struct reload_seen	 seen;

static void
reload_setup(void)
{
	setup();
	memset(&rgw, 0, sizeof(rgw));
	memset(&seen, 0, sizeof(seen));
	rgw.gw_conf = gc;
	rgw.gw_loop = pthread_self();
	rgw.gw_registry = rg;
	ck_assert_ptr_nonnull(rgw.gw_base = event_base_new());
	ck_assert_ptr_nonnull(rgw.gw_workers = workers_new(1));
	snapshot_install(&rgw, load());
}

static void
reload_teardown(void)
{
	workers_free(rgw.gw_workers);
	event_base_loop(rgw.gw_base, EVLOOP_NONBLOCK);
	snapshot_unref(rgw.gw_snap);
	event_base_free(rgw.gw_base);
	teardown();
}

static void
reload_done(void *arg, const struct snapshot *sn, const char *err)
{
	struct reload_seen	*ld = arg;

	ld->ld_calls++;
	ld->ld_sn = sn;
	snprintf(ld->ld_err, sizeof(ld->ld_err), "%s", err != NULL ? err : "");
}

/* Runs the loop until cond holds or five seconds passed. */
#define RUN_UNTIL(cond) do {						\
	uint64_t	deadline_ = now_us_mono() + 5000000;		\
	struct timeval	tick_ = { 0, 1000 };				\
									\
	while (!(cond) && now_us_mono() < deadline_) {			\
		event_base_loopexit(rgw.gw_base, &tick_);		\
		event_base_dispatch(rgw.gw_base);			\
	}								\
} while (0)

START_TEST(test_reload_loads_and_installs)
{
	struct snapshot	*before = rgw.gw_snap;

	snapshot_reload(&rgw, NULL, 0, reload_done, &seen);
	ck_assert_int_eq(seen.ld_calls, 0);	/* the load runs on the worker */
	RUN_UNTIL(seen.ld_calls > 0);
	ck_assert_int_eq(seen.ld_calls, 1);
	ck_assert_ptr_nonnull(seen.ld_sn);
	ck_assert_ptr_eq(seen.ld_sn, rgw.gw_snap);
	ck_assert_ptr_ne(rgw.gw_snap, before);
	ck_assert_uint_eq(rgw.gw_snap_gen, 2);
}
END_TEST

START_TEST(test_reload_of_a_current_snapshot_installs_it_at_once)
{
	struct snapshot	*sn = load();

	snapshot_reload(&rgw, sn, rgw.gw_snap_gen, reload_done, &seen);
	ck_assert_int_eq(seen.ld_calls, 1);
	ck_assert_ptr_eq(rgw.gw_snap, sn);
	ck_assert_ptr_eq(seen.ld_sn, sn);
	ck_assert_uint_eq(rgw.gw_snap_gen, 2);
}
END_TEST

/*
 * A registry change's snapshot was loaded, then another install (SIGHUP)
 * came in between: the change's snapshot would undo it, so it is thrown
 * away and the configuration loaded again, with the change that the
 * registry now holds.
 */
START_TEST(test_reload_overtaken_loads_again)
{
	struct snapshot		*stale = load(), *other = load();
	uint64_t		 gen = rgw.gw_snap_gen;
	const struct policy	*po = snapshot_policy(stale, "newborn");
	struct reg_head		 ph = check_reg_head(7, false, "");
	char			 err[256] = "";

	snapshot_install(&rgw, other);		/* the install that overtakes */
	ck_assert_int_eq(registry_put(rg, REG_POLICY, "newborn", &ph, po->po_spec,
	    po->po_spec_len, err, sizeof(err)), 0);
	snapshot_reload(&rgw, stale, gen, reload_done, &seen);
	ck_assert_int_eq(seen.ld_calls, 0);
	RUN_UNTIL(seen.ld_calls > 0);
	ck_assert_int_eq(seen.ld_calls, 1);
	ck_assert_ptr_eq(seen.ld_sn, rgw.gw_snap);
	ck_assert_ptr_ne(rgw.gw_snap, other);
	ck_assert_uint_eq(snapshot_policy(rgw.gw_snap, "newborn")->po_version, 7);
	ck_assert_uint_eq(rgw.gw_snap_gen, gen + 2);
}
END_TEST

START_TEST(test_reload_overtaken_while_stopping_installs_nothing)
{
	struct snapshot	*stale = load(), *running;
	uint64_t	 gen = rgw.gw_snap_gen;

	snapshot_install(&rgw, load());
	running = rgw.gw_snap;
	rgw.gw_stopping = true;
	snapshot_reload(&rgw, stale, gen, reload_done, &seen);
	ck_assert_int_eq(seen.ld_calls, 1);
	ck_assert_ptr_null(seen.ld_sn);
	ck_assert_msg(strstr(seen.ld_err, "stopping") != NULL, "%s", seen.ld_err);
	ck_assert_ptr_eq(rgw.gw_snap, running);
	ck_assert_uint_eq(rgw.gw_snap_gen, gen + 1);
}
END_TEST

START_TEST(test_reload_failure_keeps_the_running_snapshot)
{
	struct snapshot	*running = rgw.gw_snap;

	snprintf(rgw.gw_conf.gc_policies, sizeof(rgw.gw_conf.gc_policies), "%s/no-such-dir",
	    tdir);
	snapshot_reload(&rgw, NULL, 0, reload_done, &seen);
	RUN_UNTIL(seen.ld_calls > 0);
	ck_assert_int_eq(seen.ld_calls, 1);
	ck_assert_ptr_null(seen.ld_sn);
	ck_assert_msg(strstr(seen.ld_err, "no-such-dir") != NULL, "%s", seen.ld_err);
	ck_assert_ptr_eq(rgw.gw_snap, running);
	ck_assert_uint_eq(rgw.gw_snap_gen, 1);
}
END_TEST

/* Signals while a load runs ask for one more load after it, not one each. */
START_TEST(test_sighups_coalesce)
{
	config_sighup(&rgw);
	ck_assert(rgw.gw_sighup.sh_running);
	ck_assert_int_eq(rgw.gw_inflight, 1);
	config_sighup(&rgw);
	config_sighup(&rgw);
	ck_assert(rgw.gw_sighup.sh_again);
	ck_assert_int_eq(rgw.gw_inflight, 1);
	RUN_UNTIL(!rgw.gw_sighup.sh_running && rgw.gw_inflight == 0);
	ck_assert(!rgw.gw_sighup.sh_again);
	ck_assert_int_eq(rgw.gw_inflight, 0);
	ck_assert_uint_eq(rgw.gw_snap_gen, 3);	/* the first install and two loads */
}
END_TEST

static Suite *
config_suite(bool forking)
{
	Suite	*su = suite_create("config");
	TCase	*tc = tcase_create("load");
	TCase	*ti = tcase_create("install");
	TCase	*tr = tcase_create("reload");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_load_repository);
	tcase_add_test(tc, test_adapter_lookups);
	tcase_add_test(tc, test_broken_policy_is_named);
	tcase_add_test(tc, test_broken_adapter_and_dirs);
	tcase_add_test(tc, test_registry_overrides_files);
	tcase_add_test(tc, test_registry_entry_that_no_longer_loads);
	tcase_add_test(tc, test_load_with_change);
	suite_add_tcase(su, tc);

	tcase_add_checked_fixture(ti, setup, teardown);
	tcase_set_timeout(ti, 30);
	tcase_add_test(ti, test_install_generation_and_refs);
	tcase_add_test(ti, test_refs_from_many_loops);
	(void)forking;
	suite_add_tcase(su, ti);

	tcase_add_checked_fixture(tr, reload_setup, reload_teardown);
	tcase_set_timeout(tr, 30);
	tcase_add_test(tr, test_reload_loads_and_installs);
	tcase_add_test(tr, test_reload_of_a_current_snapshot_installs_it_at_once);
	tcase_add_test(tr, test_reload_overtaken_loads_again);
	tcase_add_test(tr, test_reload_overtaken_while_stopping_installs_nothing);
	tcase_add_test(tr, test_reload_failure_keeps_the_running_snapshot);
	tcase_add_test(tr, test_sighups_coalesce);
	suite_add_tcase(su, tr);
	return su;
}

int
main(void)
{
	const char	*fork_env = getenv("CK_FORK");
	char		 cmd[512];
	int		 failed;

	log_init("check_config", 0);
	snprintf(tdir, sizeof(tdir), "/tmp/check_config.XXXXXX");
	if (mkdtemp(tdir) == NULL)
		return 1;
	snprintf(pki, sizeof(pki), "%s/pki", tdir);
	snprintf(cmd, sizeof(cmd), "'%s/certs/mkdemo' '%s' >/dev/null", srcdir(), pki);
	if (system(cmd) != 0) {
		fprintf(stderr, "check_config: %s failed\n", cmd);
		return 1;
	}
	failed = check_run(config_suite(fork_env == NULL || strcmp(fork_env, "no") != 0));
	if (check_rm_tree(tdir) != 0)
		fprintf(stderr, "check_config: could not remove %s\n", tdir);
	return failed;
}
