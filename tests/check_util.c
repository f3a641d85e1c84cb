/*
 * check_util.c - helpers shared by the Check unit tests (check_util.h says
 * what each one does and who owns what it returns).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <check.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gateway.h"
#include "check_util.h"

/* How much of two differing byte strings a failure shows. */
#define CHECK_SHOW_BYTES	64

const uint8_t check_hmac_key[32] = {
	0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
	0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
	0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
};

int
check_run(Suite *s)
{
	SRunner	*sr;
	int	 failed;

	/*
	 * Journal completions, revocations and worker results are posted to a
	 * test's loop from other threads, as in the daemon.
	 */
	if (evthread_use_pthreads() != 0)
		return EXIT_FAILURE;
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

const char *
check_srcdir(void)
{
	const char	*d = getenv("LB_SRCDIR");

	return d != NULL && d[0] != '\0' ? d : LB_SRCDIR;
}

void
ck_bytes_eq(const void *got, size_t gotlen, const void *want, size_t wantlen)
{
	char	gh[2 * CHECK_SHOW_BYTES + 1], wh[2 * CHECK_SHOW_BYTES + 1];

	if (gotlen == wantlen && memcmp(got, want, wantlen) == 0)
		return;
	hex_encode(got, gotlen < CHECK_SHOW_BYTES ? gotlen : CHECK_SHOW_BYTES, gh);
	hex_encode(want, wantlen < CHECK_SHOW_BYTES ? wantlen : CHECK_SHOW_BYTES, wh);
	ck_abort_msg("bytes differ: got %zu bytes %s..., want %zu bytes %s...",
	    gotlen, gh, wantlen, wh);
}

/* Adds the entries of a one-line name ("/O=lianban/CN=nhc") to name. */
static void
check_name_add(X509_NAME *name, const char *oneline)
{
	char	 buf[256], *entry, *value, *save = NULL;

	ck_assert_uint_lt(strlen(oneline), sizeof(buf));
	strcpy(buf, oneline);
	for (entry = strtok_r(buf, "/", &save); entry != NULL; entry = strtok_r(NULL, "/", &save)) {
		value = strchr(entry, '=');
		ck_assert_msg(value != NULL, "no '=' in the name entry %s of %s", entry, oneline);
		*value++ = '\0';
		ck_assert_msg(X509_NAME_add_entry_by_txt(name, entry, MBSTRING_UTF8,
		    (const unsigned char *)value, -1, -1, 0) == 1, "name entry %s of %s", entry,
		    oneline);
	}
}

X509 *
check_cert(EVP_PKEY *key, const char *subject, long serial, EVP_PKEY *ca_key, X509 *ca_cert,
    bool is_ca)
{
	EVP_PKEY	*signer = ca_key != NULL ? ca_key : key;
	X509		*x;
	X509_NAME	*name;
	X509_EXTENSION	*ext;

	ck_assert_ptr_nonnull(x = X509_new());
	ck_assert_int_eq(X509_set_version(x, 2), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -86400));
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	ck_assert_int_eq(X509_set_pubkey(x, key), 1);
	name = X509_get_subject_name(x);
	check_name_add(name, subject);
	ck_assert_int_eq(X509_set_issuer_name(x, ca_key != NULL ?
	    X509_get_subject_name(ca_cert) : name), 1);
	if (is_ca) {
		ck_assert_ptr_nonnull(ext = X509V3_EXT_conf_nid(NULL, NULL,
		    NID_basic_constraints, "critical,CA:TRUE"));
		ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	/* Ed25519 hashes inside the signature: X509_sign takes no digest for it. */
	ck_assert_int_gt(X509_sign(x, signer, EVP_PKEY_is_a(signer, "ED25519") ? NULL :
	    EVP_sha256()), 0);
	return x;
}

void
check_run_until(struct event_base *base, const int *done, int want, int ms)
{
	uint64_t	deadline = now_us_mono() + (uint64_t)ms * 1000;
	struct timeval	tick = { 0, 1000 };

	/* The loop is left every tick, so a completion posted late is not missed. */
	while (*done < want && now_us_mono() < deadline) {
		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
	}
}

void
check_journal_config(struct journal_config *cfg, const char *dir, EVP_PKEY *key, X509 *cert)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->jc_dir = dir;
	cfg->jc_origin = CHECK_ORIGIN;
	cfg->jc_ckpt_key = key;
	cfg->jc_ckpt_cert = cert;
	cfg->jc_hmac_key = check_hmac_key;
	cfg->jc_hmac_key_len = sizeof(check_hmac_key);
}

struct journal *
check_journal_open(const char *dir, EVP_PKEY *key, X509 *cert, size_t map_size)
{
	struct journal_config	 cfg;
	struct journal		*j;
	char			 err[256] = "";

	check_journal_config(&cfg, dir, key, cert);
	cfg.jc_map_size = map_size;
	j = journal_open(&cfg, err, sizeof(err));
	ck_assert_msg(j != NULL, "journal_open: %s", err);
	return j;
}

static int
check_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
check_rm_tree(const char *dir)
{
	/* Depth first, so that every directory is empty when its turn comes. */
	return nftw(dir, check_rm_entry, 8, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

struct reg_head
check_reg_head(uint64_t version, bool disabled, const char *dept)
{
	struct reg_head	h;

	memset(&h, 0, sizeof(h));
	h.rh_version = version;
	h.rh_disabled = disabled;
	h.rh_t_ms = 1700000000000ULL + version;
	snprintf(h.rh_dept, sizeof(h.rh_dept), "%s", dept);
	snprintf(h.rh_principal, sizeof(h.rh_principal), "department:%s", dept);
	return h;
}

struct registry *
check_registry_open(const char *dir)
{
	struct registry	*rg;
	char		 err[256] = "";

	rg = registry_open(dir, err, sizeof(err));
	ck_assert_msg(rg != NULL, "registry_open %s: %s", dir, err);
	return rg;
}
