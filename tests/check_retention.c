/*
 * check_retention.c - unit tests of what keeps the journal beyond the
 * running daemon: the data directory's lock and backup
 * (gateway/daemon/datadir.c), journal_inspect on a backup's copy, and
 * journal_checkpoint_upto, where journal archives start and end.  The
 * daemon and lianctl on top of them are tested by tests/it_datalock.py,
 * tests/it_backup.py and tests/it_archive.py.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>

#include "gateway.h"
#include "check_util.h"

/* Appends of these sizes, one commit (and so one checkpoint) each. */
static const size_t	batches[] = { 1, 2, 3, 5, 8, 13, 21, 1 };
#define NRECORDS	54	/* their sum */

static char		 tdir[64];
static int		 ndone;

static void
on_append(void *arg, int status, uint64_t first)
{
	(void)first;
	*(int *)arg = status;
	ndone++;
}

/* A journal in dir holding NRECORDS records, appended in the batches above. */
static struct journal *
journal_filled(const char *dir, EVP_PKEY *key, X509 *cert, struct event_base *base)
{
	struct journal	*j = check_journal_open(dir, key, cert, 0);
	struct jrec	 recs[32];
	uint64_t	 t = 0;
	size_t		 b, i;
	int		 status;

	for (b = 0; b < NELEM(batches); b++) {
		memset(recs, 0, sizeof(recs));
		for (i = 0; i < batches[b]; i++, t++) {
			recs[i].jr_kind = JK_AUDIT_READ;
			recs[i].jr_t_ms = 1700000000000ULL + t;
			snprintf(recs[i].jr_item, sizeof(recs[i].jr_item), "leaves");
		}
		status = -2;
		ck_assert_int_eq(journal_append(j, base, recs, batches[b], on_append, &status), 0);
		check_run_until(base, &ndone, ndone + 1, 60 * 1000);
		ck_assert_int_eq(status, 0);
	}
	ck_assert_uint_eq(journal_size(j), NRECORDS);
	return j;
}

static int
leaf_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	merkle_leaf_hash(MK_SHA256, rec, len, ((uint8_t (*)[32])arg)[seq]);
	return 0;
}

/* The size and root a checkpoint's envelope signs, its signature checked. */
static void
ckpt_payload(const struct journal_ckpt *ck, X509 *cert, uint64_t *size, uint8_t root[32])
{
	msgpack_zone	 z;
	struct envelope	 env;
	const uint8_t	*p;
	const char	*why;
	size_t		 n;

	msgpack_zone_init(&z, 1024);
	ck_assert_msg(envelope_parse(ck->jk_env, ck->jk_envlen, &z, "checkpoint", &env,
	    &why) == 0, "%s", why);
	ck_assert_int_eq(envelope_verify(&env, X509_get0_pubkey(cert)), 0);
	ck_assert_int_eq(mpk_get_u64(&env.env_claims, "size", size), 0);
	ck_assert_int_eq(mpk_get_bytes(&env.env_claims, "root", &z, &p, &n), 0);
	ck_assert_uint_eq(n, 32);
	memcpy(root, p, 32);
	msgpack_zone_destroy(&z);
}

/*
 * Every max_size answers the newest checkpoint at or below it, and its
 * compact range gives the root of the first records recomputed here.
 */
START_TEST(test_checkpoint_upto)
{
	struct event_base	*base = event_base_new();
	struct journal_ckpt	 ck;
	struct merkle_cr	 cr;
	EVP_PKEY		*key = EVP_EC_gen("P-256");
	X509			*cert = check_cert(key, "/CN=journal checkpoint", 1, NULL, NULL,
				    false);
	struct journal		*j;
	uint8_t			 leaves[NRECORDS][32], root[32];
	uint64_t		 max, want, sum, size;
	size_t			 b;
	char			 dir[128];

	snprintf(dir, sizeof(dir), "%s/upto", tdir);
	j = journal_filled(dir, key, cert, base);
	ck_assert_int_eq(journal_leaves(j, 0, NRECORDS, leaf_cb, leaves), 0);
	for (max = 0; max <= NRECORDS + 3; max++) {
		for (want = 0, sum = 0, b = 0; b < NELEM(batches); b++)
			if ((sum += batches[b]) <= max)
				want = sum;
		/* want 0: the empty tree, which journal_open signed. */
		ck_assert_int_eq(journal_checkpoint_upto(j, max, &ck), 0);
		ck_assert_uint_eq(ck.jk_size, want);
		merkle_root(MK_SHA256, (const uint8_t (*)[32])leaves, want, root);
		ck_bytes_eq(ck.jk_root, 32, root, 32);
		ck_assert_uint_eq(ck.jk_npeaks, (size_t)__builtin_popcountll(want));
		ck_assert_int_eq(merkle_cr_set(&cr, want, (const uint8_t (*)[32])ck.jk_peaks,
		    ck.jk_npeaks), 0);
		merkle_cr_root(MK_SHA256, &cr, root);
		ck_bytes_eq(root, 32, ck.jk_root, 32);
		/* The envelope is the signed checkpoint of that size. */
		ckpt_payload(&ck, cert, &size, root);
		ck_assert_uint_eq(size, want);
		ck_bytes_eq(root, 32, ck.jk_root, 32);
		free(ck.jk_env);
	}
	ck_assert_int_eq(journal_checkpoint_upto(j, UINT64_MAX, &ck), 0);
	ck_assert_uint_eq(ck.jk_size, NRECORDS);
	free(ck.jk_env);
	journal_close(j);
	event_base_free(base);
	X509_free(cert);
	EVP_PKEY_free(key);
}
END_TEST

/*
 * A backup of a data directory: a copy of both environments whose journal
 * journal_inspect reads back, and which opens as a journal again.
 */
START_TEST(test_backup)
{
	struct event_base	*base = event_base_new();
	struct datadir_copy	 dc;
	struct journal_info	 ji;
	struct registry		*rg;
	struct reg_head		 h = check_reg_head(1, false, "nhc");
	struct stat		 st;
	EVP_PKEY		*key = EVP_EC_gen("P-256");
	X509			*cert = check_cert(key, "/CN=journal checkpoint", 1, NULL, NULL,
				    false);
	struct journal		*j;
	char			 data[128], dest[160], path[256], err[1024];
	bool			 found;

	snprintf(data, sizeof(data), "%s/data", tdir);
	j = journal_filled(data, key, cert, base);
	journal_close(j);
	rg = check_registry_open(data);
	ck_assert_int_eq(registry_put(rg, REG_ADAPTER, "nhc-birth", &h, (const uint8_t *)"\x80",
	    1, err, sizeof(err)), 0);
	registry_close(rg);

	snprintf(dest, sizeof(dest), "%s/backup", tdir);
	ck_assert_msg(datadir_backup(data, dest, &dc, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(dc.dc_journal.ji_size, NRECORDS);
	ck_assert_uint_eq(dc.dc_journal.ji_ckpt_size, NRECORDS);
	ck_assert_uint_gt(dc.dc_journal_bytes, 0);
	ck_assert_uint_gt(dc.dc_registry_bytes, 0);
	ck_assert_int_eq(stat(dest, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/data.mdb", dest);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	/* The copy took no lock file of its own. */
	snprintf(path, sizeof(path), "%s/lock.mdb", dest);
	ck_assert_int_eq(access(path, F_OK), -1);

	/* The copy is a data directory: the journal opens, the registry holds the head. */
	ck_assert_int_eq(journal_inspect(dest, &ji, err, sizeof(err)), 0);
	ck_assert_uint_eq(ji.ji_size, NRECORDS);
	j = check_journal_open(dest, key, cert, 0);
	ck_assert_uint_eq(journal_size(j), NRECORDS);
	journal_close(j);
	rg = check_registry_open(dest);
	ck_assert_int_eq(registry_head(rg, REG_ADAPTER, "nhc-birth", &h, &found), 0);
	ck_assert(found);
	registry_close(rg);

	/* A second backup into it is refused, and leaves it as it was. */
	ck_assert_int_eq(datadir_backup(data, dest, &dc, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not empty"));
	ck_assert_int_eq(journal_inspect(dest, &ji, err, sizeof(err)), 0);
	/* A directory that holds no environment: what was made is removed. */
	snprintf(path, sizeof(path), "%s/none", tdir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(dest, sizeof(dest), "%s/backup-2", tdir);
	ck_assert_int_eq(datadir_backup(path, dest, &dc, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "no LMDB environment"));
	ck_assert_int_eq(access(dest, F_OK), -1);
	/* Nor does journal_inspect find a journal there. */
	ck_assert_int_eq(journal_inspect(path, &ji, err, sizeof(err)), -1);

	event_base_free(base);
	X509_free(cert);
	EVP_PKEY_free(key);
}
END_TEST

/* The lock is exclusive, names its holder, and is free again once released. */
START_TEST(test_lock)
{
	char	dir[128], err[1024], want[64];
	int	fd, fd2;

	snprintf(dir, sizeof(dir), "%s/locked/data", tdir);
	/* Only the last level is made. */
	ck_assert_int_eq(datadir_lock(dir, err, sizeof(err)), -1);
	snprintf(dir, sizeof(dir), "%s/locked", tdir);
	fd = datadir_lock(dir, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	/* flock locks belong to open files, so even this process is refused. */
	ck_assert_int_eq(datadir_lock(dir, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "(pid %ld holds", (long)getpid());
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);
	ck_assert_ptr_nonnull(strstr(err, dir));
	datadir_unlock(fd);
	fd2 = datadir_lock(dir, err, sizeof(err));
	ck_assert_msg(fd2 >= 0, "%s", err);
	datadir_unlock(fd2);
}
END_TEST

static Suite *
retention_suite(void)
{
	Suite	*s = suite_create("retention");
	TCase	*tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_checkpoint_upto);
	tcase_add_test(tc, test_backup);
	tcase_add_test(tc, test_lock);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	int	rc;

	snprintf(tdir, sizeof(tdir), "/tmp/check_retention.XXXXXX");
	if (mkdtemp(tdir) == NULL)
		return EXIT_FAILURE;
	rc = check_run(retention_suite());
	(void)check_rm_tree(tdir);
	return rc;
}
