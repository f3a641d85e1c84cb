/*
 * check_keyfile.c - files that hold secrets (gateway/lib/keys.c:
 * key_file_read, key_load): a key readable by group or others is refused,
 * and the file whose mode is checked is the file that is read.
 *
 * The second property is tested by making the race deterministic: this
 * program defines stat() itself, and the armed call swaps a group-readable
 * key in under the path just after a stat of the private one.  A loader
 * that checks the path with stat and then opens it reads the swapped-in
 * key; one that checks the opened descriptor (fstat) never calls stat.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "lianban.h"
#include "check_util.h"

static char	 tdir[64];
static char	 swap_path[128];	/* armed: the path whose stat swaps the file */
static char	 swap_with[128];	/* the file renamed onto it */
static int	 swaps;

/*
 * stat(2) for the whole program: the real answer, and once armed, the
 * file at swap_path is replaced right after it was looked at.
 */
int
stat(const char *restrict path, struct stat *restrict st)
{
	int	rc = fstatat(AT_FDCWD, path, st, 0);

	if (swap_path[0] != '\0' && strcmp(path, swap_path) == 0) {
		if (rename(swap_with, swap_path) == 0)
			swaps++;
		swap_path[0] = '\0';
	}
	return rc;
}

/* Writes key as PEM to dir/name with mode; returns the path in buf. */
static void
write_key(EVP_PKEY *key, const char *name, mode_t mode, char *buf, size_t bufsz)
{
	FILE	*fp;
	int	 fd;

	snprintf(buf, bufsz, "%s/%s", tdir, name);
	(void)unlink(buf);
	ck_assert_int_ge(fd = open(buf, O_WRONLY | O_CREAT | O_EXCL, 0600), 0);
	ck_assert_ptr_nonnull(fp = fdopen(fd, "w"));
	ck_assert_int_eq(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL), 1);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(chmod(buf, mode), 0);
}

static void
setup(void)
{
	snprintf(tdir, sizeof(tdir), "/tmp/check_keyfile.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	swap_path[0] = '\0';
	swaps = 0;
}

static void
teardown(void)
{
	(void)check_rm_tree(tdir);
}

START_TEST(test_mode_refused)
{
	static const mode_t	 modes[] = { 0640, 0604, 0660, 0610, 0601, 0644 };
	EVP_PKEY		*key, *got;
	char			 path[128], err[512];
	size_t			 i;

	ck_assert_ptr_nonnull(key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	for (i = 0; i < NELEM(modes); i++) {
		write_key(key, "k.pem", modes[i], path, sizeof(path));
		got = NULL;
		err[0] = '\0';
		ck_assert_msg(key_load(path, &got, err, sizeof(err)) == -1, "mode %03o loaded",
		    (unsigned)modes[i]);
		ck_assert_ptr_null(got);
		ck_assert_msg(strstr(err, "readable by group or others") != NULL, "%s", err);
		ck_assert_ptr_nonnull(strstr(err, "chmod 600"));
	}
	for (i = 0; i < 2; i++) {
		write_key(key, "k.pem", i == 0 ? 0600 : 0400, path, sizeof(path));
		ck_assert_int_eq(key_load(path, &got, err, sizeof(err)), 0);
		ck_assert_int_eq(EVP_PKEY_eq(got, key), 1);
		EVP_PKEY_free(got);
	}
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_checked_file_is_read_file)
{
	EVP_PKEY	*mine, *theirs, *got = NULL;
	char		 path[128], err[512];
	int		 rc;

	ck_assert_ptr_nonnull(mine = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	ck_assert_ptr_nonnull(theirs = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	write_key(mine, "key.pem", 0600, path, sizeof(path));
	write_key(theirs, "other.pem", 0644, swap_with, sizeof(swap_with));
	snprintf(swap_path, sizeof(swap_path), "%s", path);
	err[0] = '\0';
	rc = key_load(path, &got, err, sizeof(err));
	/* Refusing is right too; loading a key whose mode was not checked is not. */
	ck_assert_msg(rc == -1 || EVP_PKEY_eq(got, mine) == 1, "loaded the group-readable key "
	    "swapped in after the mode check (%d swap)", swaps);
	EVP_PKEY_free(got);
	EVP_PKEY_free(mine);
	EVP_PKEY_free(theirs);
}
END_TEST

START_TEST(test_secret_file)
{
	uint8_t	*buf = NULL;
	size_t	 len = 0;
	char	 path[128], err[512];
	int	 fd;

	snprintf(path, sizeof(path), "%s/hmac.key", tdir);
	ck_assert_int_ge(fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640), 0);
	ck_assert_int_eq(write(fd, "00ff\n", 5), 5);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(key_file_read(path, "the journal's pseudonym key", 4096, &buf, &len, err,
	    sizeof(err)), -1);
	ck_assert_ptr_null(buf);
	ck_assert_msg(strstr(err, "the journal's pseudonym key is readable by group or others "
	    "(mode 640)") != NULL, "%s", err);
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(key_file_read(path, "the journal's pseudonym key", 4096, &buf, &len, err,
	    sizeof(err)), 0);
	ck_bytes_eq(buf, len, "00ff\n", 5);
	free(buf);
	/* Too large, and missing: the reason, with the path. */
	ck_assert_int_eq(key_file_read(path, "x", 4, &buf, &len, err, sizeof(err)), -1);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(key_file_read(path, "x", 4096, &buf, &len, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, path) != NULL && strstr(err, "No such file") != NULL, "%s",
	    err);
}
END_TEST

static Suite *
keyfile_suite(void)
{
	Suite	*s = suite_create("keyfile");
	TCase	*tc = tcase_create("mode");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_mode_refused);
	tcase_add_test(tc, test_checked_file_is_read_file);
	tcase_add_test(tc, test_secret_file);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(keyfile_suite());
}
