/*
 * check_trust.c - what makes a certificate usable (trust.c, keys.c): an
 * authority's certificate inside its validity period and allowed to sign,
 * a client certificate of the client CA and not in its CRL, and subject
 * names that are read only when they are there exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "lianban.h"
#include "check_util.h"

#define T0	INT64_C(1767225600)	/* 2026-01-01T00:00:00Z */

/* A self-signed authority certificate valid [from, to], with the key usage ku (NULL: none). */
static X509 *
authority(EVP_PKEY *key, int64_t from, int64_t to, const char *ku)
{
	X509		*x = check_cert(key, "/CN=auth", 7, NULL, NULL, false);
	X509_EXTENSION	*ext;

	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)from));
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)to));
	if (ku != NULL) {
		ck_assert_ptr_nonnull(ext = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage,
		    (char *)ku));
		ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
	return x;
}

START_TEST(test_authority_validity)
{
	struct trust_authority	 ta;
	EVP_PKEY		*key;
	const char		*why = NULL;

	ck_assert_ptr_nonnull(key = EVP_EC_gen("P-256"));
	memset(&ta, 0, sizeof(ta));
	ta.ta_cert = authority(key, T0, T0 + 1000, "critical,digitalSignature");
	/* Both ends of the validity period count as inside it. */
	ck_assert_int_eq(trust_authority_usable(&ta, T0, &why), 0);
	ck_assert_int_eq(trust_authority_usable(&ta, T0 + 1000, &why), 0);
	ck_assert_int_eq(trust_authority_usable(&ta, T0 - 1, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "not yet valid"));
	ck_assert_int_eq(trust_authority_usable(&ta, T0 + 1001, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "expired"));
	X509_free(ta.ta_cert);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_authority_key_usage)
{
	static const struct {
		const char	*ku;
		int		 want;
	} cases[] = {
		{ NULL, 0 },
		{ "critical,digitalSignature", 0 },
		{ "digitalSignature,nonRepudiation", 0 },
		{ "critical,nonRepudiation", -1 },
		{ "critical,keyCertSign,cRLSign", -1 },
		{ "keyEncipherment", -1 },
	};
	struct trust_authority	 ta;
	EVP_PKEY		*key;
	const char		*why = NULL;
	size_t			 i;

	ck_assert_ptr_nonnull(key = EVP_EC_gen("P-256"));
	for (i = 0; i < NELEM(cases); i++) {
		memset(&ta, 0, sizeof(ta));
		ta.ta_cert = authority(key, T0 - 10, T0 + 10, cases[i].ku);
		ck_assert_msg(trust_authority_usable(&ta, T0, &why) == cases[i].want,
		    "key usage %s", cases[i].ku != NULL ? cases[i].ku : "(none)");
		if (cases[i].want != 0)
			ck_assert_ptr_nonnull(strstr(why, "digitalSignature"));
		X509_free(ta.ta_cert);
	}
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_subject_field_once)
{
	EVP_PKEY	*key;
	X509		*x;
	char		 buf[64];

	ck_assert_ptr_nonnull(key = EVP_EC_gen("P-256"));
	x = check_cert(key, "/OU=consumer/CN=newborn", 1, NULL, NULL, false);
	ck_assert_int_eq(cert_subject_field(x, NID_organizationalUnitName, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "consumer");
	ck_assert_int_eq(cert_subject_field(x, NID_commonName, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "newborn");
	ck_assert_int_eq(cert_subject_field(x, NID_organizationName, buf, sizeof(buf)), -1);
	X509_free(x);
	x = check_cert(key, "/OU=consumer/OU=admin/CN=newborn", 1, NULL, NULL, false);
	ck_assert_int_eq(cert_subject_field(x, NID_organizationalUnitName, buf, sizeof(buf)), -1);
	ck_assert_int_eq(cert_subject_field(x, NID_commonName, buf, sizeof(buf)), 0);
	X509_free(x);
	x = check_cert(key, "/OU=consumer/CN=newborn/CN=ops", 1, NULL, NULL, false);
	ck_assert_int_eq(cert_subject_field(x, NID_commonName, buf, sizeof(buf)), -1);
	X509_free(x);
	EVP_PKEY_free(key);
}
END_TEST

/* Writes the PEM of what write_fn writes to dir/name, whose path goes to path. */
static void
pem_file(const char *dir, const char *name, int (*write_fn)(BIO *, void *), void *obj,
    char *path, size_t pathsz)
{
	BIO	*bio;

	snprintf(path, pathsz, "%s/%s", dir, name);
	ck_assert_ptr_nonnull(bio = BIO_new_file(path, "w"));
	ck_assert_int_eq(write_fn(bio, obj), 1);
	BIO_free(bio);
}

static int
write_cert(BIO *bio, void *x)
{
	return PEM_write_bio_X509(bio, x);
}

static int
write_crl(BIO *bio, void *crl)
{
	return PEM_write_bio_X509_CRL(bio, crl);
}

/* A CRL of ca (signed with key) revoking the serials of revoked, valid for a day. */
static X509_CRL *
crl_of(X509 *ca, EVP_PKEY *key, const long *revoked, size_t n)
{
	X509_CRL	*crl;
	X509_REVOKED	*r;
	ASN1_INTEGER	*serial;
	ASN1_TIME	*t;
	size_t		 i;

	ck_assert_ptr_nonnull(crl = X509_CRL_new());
	ck_assert_int_eq(X509_CRL_set_version(crl, 1), 1);
	ck_assert_int_eq(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)), 1);
	ck_assert_ptr_nonnull(t = X509_gmtime_adj(NULL, -60));
	ck_assert_int_eq(X509_CRL_set1_lastUpdate(crl, t), 1);
	ASN1_TIME_free(t);
	ck_assert_ptr_nonnull(t = X509_gmtime_adj(NULL, 86400));
	ck_assert_int_eq(X509_CRL_set1_nextUpdate(crl, t), 1);
	ASN1_TIME_free(t);
	ck_assert_ptr_nonnull(t = X509_gmtime_adj(NULL, -30));
	for (i = 0; i < n; i++) {
		ck_assert_ptr_nonnull(r = X509_REVOKED_new());
		ck_assert_ptr_nonnull(serial = ASN1_INTEGER_new());
		ck_assert_int_eq(ASN1_INTEGER_set(serial, revoked[i]), 1);
		ck_assert_int_eq(X509_REVOKED_set_serialNumber(r, serial), 1);
		ck_assert_int_eq(X509_REVOKED_set_revocationDate(r, t), 1);
		ck_assert_int_eq(X509_CRL_add0_revoked(crl, r), 1);
		ASN1_INTEGER_free(serial);
	}
	ASN1_TIME_free(t);
	ck_assert_int_gt(X509_CRL_sign(crl, key, EVP_sha256()), 0);
	return crl;
}

START_TEST(test_client_crl)
{
	static const long	 revoked[] = { 11 };
	struct trust		 t;
	EVP_PKEY		*cakey, *other, *key;
	X509			*ca, *fake_ca, *good, *bad;
	X509_CRL		*crl, *foreign;
	char			 dir[] = "/tmp/check_trust.XXXXXX", err[512], why[256];
	char			 cafile[512], crlfile[512], foreignfile[512];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_ptr_nonnull(cakey = EVP_EC_gen("P-256"));
	ck_assert_ptr_nonnull(other = EVP_EC_gen("P-256"));
	ck_assert_ptr_nonnull(key = EVP_EC_gen("P-256"));
	ca = check_cert(cakey, "/CN=client CA", 1, NULL, NULL, true);
	good = check_cert(key, "/OU=consumer/CN=a", 10, cakey, ca, false);
	bad = check_cert(key, "/OU=consumer/CN=b", 11, cakey, ca, false);
	pem_file(dir, "ca.pem", write_cert, ca, cafile, sizeof(cafile));

	/* Without a CRL both verify. */
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(trust_client_check(&t, good, NULL, why, sizeof(why)), -1);
	ck_assert_int_eq(trust_load_clients(&t, cafile, NULL, false, err, sizeof(err)), 0);
	ck_assert_uint_eq(t.t_ncrls, 0);
	ck_assert_int_eq(trust_client_check(&t, good, NULL, why, sizeof(why)), 0);
	ck_assert_int_eq(trust_client_check(&t, bad, NULL, why, sizeof(why)), 0);
	X509_STORE_free(t.t_clients);
	sk_X509_NAME_pop_free(t.t_client_names, X509_NAME_free);

	/* An optional CRL that is not there is no CRL; a required one is an error. */
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(trust_load_clients(&t, cafile, "/nonexistent/x.crl", true, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(t.t_ncrls, 0);
	X509_STORE_free(t.t_clients);
	sk_X509_NAME_pop_free(t.t_client_names, X509_NAME_free);
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(trust_load_clients(&t, cafile, "/nonexistent/x.crl", false, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x.crl"));
	X509_STORE_free(t.t_clients);
	sk_X509_NAME_pop_free(t.t_client_names, X509_NAME_free);

	/* With the CRL the revoked serial is refused, the other still verifies. */
	crl = crl_of(ca, cakey, revoked, NELEM(revoked));
	pem_file(dir, "ca.crl", write_crl, crl, crlfile, sizeof(crlfile));
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(trust_load_clients(&t, cafile, crlfile, false, err, sizeof(err)), 0);
	ck_assert_uint_eq(t.t_ncrls, 1);
	ck_assert_int_eq(trust_client_check(&t, good, NULL, why, sizeof(why)), 0);
	ck_assert_int_eq(trust_client_check(&t, bad, NULL, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "certificate revoked");
	/* A certificate of another CA. */
	fake_ca = check_cert(other, "/CN=client CA", 1, NULL, NULL, true);
	X509_free(good);
	good = check_cert(key, "/OU=consumer/CN=a", 10, other, fake_ca, false);
	ck_assert_int_eq(trust_client_check(&t, good, NULL, why, sizeof(why)), -1);
	X509_STORE_free(t.t_clients);
	sk_X509_NAME_pop_free(t.t_client_names, X509_NAME_free);

	/* A CRL with the CA's name but another key's signature is refused at load. */
	foreign = crl_of(fake_ca, other, revoked, NELEM(revoked));
	pem_file(dir, "foreign.crl", write_crl, foreign, foreignfile, sizeof(foreignfile));
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(trust_load_clients(&t, cafile, foreignfile, false, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "not signed by a client CA"));
	X509_STORE_free(t.t_clients);
	sk_X509_NAME_pop_free(t.t_client_names, X509_NAME_free);
	/* A CRL file that is not PEM. */
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(trust_load_clients(&t, cafile, cafile, false, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "holds no CRL"));
	X509_STORE_free(t.t_clients);
	sk_X509_NAME_pop_free(t.t_client_names, X509_NAME_free);

	unlink(cafile);
	unlink(crlfile);
	unlink(foreignfile);
	rmdir(dir);
	X509_CRL_free(crl);
	X509_CRL_free(foreign);
	X509_free(ca);
	X509_free(fake_ca);
	X509_free(good);
	X509_free(bad);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(other);
	EVP_PKEY_free(key);
}
END_TEST

static Suite *
trust_suite(void)
{
	Suite	*s = suite_create("trust");
	TCase	*tc;

	tc = tcase_create("authorities");
	tcase_add_test(tc, test_authority_validity);
	tcase_add_test(tc, test_authority_key_usage);
	suite_add_tcase(s, tc);

	tc = tcase_create("clients");
	tcase_add_test(tc, test_subject_field_once);
	tcase_add_test(tc, test_client_crl);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(trust_suite());
}
