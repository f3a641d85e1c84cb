/*
 * trust.c - the trust store: face-auth authorities whose consent tokens are
 * accepted, the seal roots, the journal checkpoint certificate, and the CAs
 * and CRLs of client certificates.
 *
 * A store is immutable once loaded; SIGHUP loads a new one and swaps it in,
 * so readers never see a half-loaded store.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "lianban.h"

#define TRUST_MAX_AUTHORITIES	64

/* One face-auth authority certificate of DIR/trust/consent. */
static int
trust_add_authority(void *arg, const char *path, char *err, size_t errlen)
{
	struct trust		*t = arg;
	struct trust_authority	*ta = &t->t_auth[t->t_nauth];

	if (cert_load(path, &ta->ta_cert, err, errlen) != 0)
		return -1;
	t->t_nauth++;
	if (cert_subject_field(ta->ta_cert, NID_commonName, ta->ta_name,
	    sizeof(ta->ta_name)) != 0 || key_id_cert(ta->ta_cert, ta->ta_kid) != 0) {
		snprintf(err, errlen, "%s: certificate has no usable CN or key", path);
		return -1;
	}
	return 0;
}

static int
trust_load_authorities(struct trust *t, const char *certsdir, char *err, size_t errlen)
{
	char	dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/trust/consent", certsdir);
	if ((t->t_auth = calloc(TRUST_MAX_AUTHORITIES, sizeof(*t->t_auth))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return dir_each(dir, ".pem", TRUST_MAX_AUTHORITIES, trust_add_authority, t, err,
	    errlen);
}

struct trust *
trust_load(const char *certsdir, char *err, size_t errlen)
{
	struct trust	*t;
	char		 path[PATH_MAX];
	X509		*root = NULL;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (trust_load_authorities(t, certsdir, err, errlen) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/seal-root.pem", certsdir);
	if (cert_load(path, &root, err, errlen) != 0)
		goto fail;
	if ((t->t_seal_roots = X509_STORE_new()) == NULL ||
	    X509_STORE_add_cert(t->t_seal_roots, root) != 1) {
		snprintf(err, errlen, "%s: cannot add to the seal root store", path);
		goto fail;
	}
	X509_free(root);
	root = NULL;
	snprintf(path, sizeof(path), "%s/journal/checkpoint.pem", certsdir);
	if (cert_load(path, &t->t_ckpt_cert, err, errlen) != 0)
		goto fail;
	return t;
fail:
	X509_free(root);
	trust_free(t);
	return NULL;
}

void
trust_free(struct trust *t)
{
	size_t	i;

	if (t == NULL)
		return;
	for (i = 0; i < t->t_nauth; i++)
		X509_free(t->t_auth[i].ta_cert);
	free(t->t_auth);
	X509_STORE_free(t->t_seal_roots);
	X509_free(t->t_ckpt_cert);
	X509_STORE_free(t->t_clients);
	sk_X509_NAME_pop_free(t->t_client_names, X509_NAME_free);
	free(t);
}

const struct trust_authority *
trust_authority(const struct trust *t, const uint8_t kid[32])
{
	size_t	i;

	for (i = 0; i < t->t_nauth; i++)
		if (memcmp(t->t_auth[i].ta_kid, kid, 32) == 0)
			return &t->t_auth[i];
	return NULL;
}

int
trust_authority_usable(const struct trust_authority *ta, int64_t when, const char **why)
{
	uint32_t	ku;
	time_t		t = (time_t)when;
	int		cmp;

	/*
	 * Without a key usage extension any use is allowed (RFC 5280 4.2.1.3);
	 * with one, it must name digitalSignature.  A certificate whose
	 * extensions do not parse reports no usage at all.
	 */
	ku = X509_get_key_usage(ta->ta_cert);
	if (ku != UINT32_MAX && (ku & KU_DIGITAL_SIGNATURE) == 0) {
		*why = "its certificate's key usage does not include digitalSignature";
		return -1;
	}
	/* Both ends belong to the validity period (RFC 5280 4.1.2.5); -2 is an error. */
	if ((cmp = ASN1_TIME_cmp_time_t(X509_get0_notBefore(ta->ta_cert), t)) > 0 ||
	    cmp == -2) {
		*why = "its certificate is not yet valid";
		return -1;
	}
	if ((cmp = ASN1_TIME_cmp_time_t(X509_get0_notAfter(ta->ta_cert), t)) < 0) {
		*why = "its certificate has expired";
		return -1;
	}
	return 0;
}

/*
 * Every certificate and CRL of the PEM file path.  When optional and the
 * file does not exist, *out is NULL and that is no error.
 */
static int
trust_read_pem(const char *path, bool optional, STACK_OF(X509_INFO) **out, char *err,
    size_t errlen)
{
	BIO	*bio;

	*out = NULL;
	if ((bio = BIO_new_file(path, "r")) == NULL) {
		if (optional && errno == ENOENT) {
			ERR_clear_error();
			return 0;
		}
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	*out = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (*out == NULL) {
		snprintf(err, errlen, "%s: not a PEM file of certificates or CRLs", path);
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* The CA of cas that signed crl, or NULL. */
static X509 *
trust_crl_issuer(STACK_OF(X509_INFO) *cas, X509_CRL *crl)
{
	X509_INFO	*xi;
	int		 i;

	for (i = 0; i < sk_X509_INFO_num(cas); i++) {
		xi = sk_X509_INFO_value(cas, i);
		if (xi->x509 != NULL &&
		    X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(xi->x509)) == 0 &&
		    X509_CRL_verify(crl, X509_get0_pubkey(xi->x509)) == 1)
			return xi->x509;
	}
	ERR_clear_error();
	return NULL;
}

/*
 * Adds the CRLs of crls, each signed by a CA of cas, and checks that every
 * CA has one.  A CRL past its next update is loaded all the same (it
 * refuses every certificate of its CA, which is what a stale CRL should
 * do), with a warning, so that a reload is the way out.
 */
static int
trust_add_crls(struct trust *t, STACK_OF(X509_INFO) *cas, STACK_OF(X509_INFO) *crls,
    const char *crlfile, char *err, size_t errlen)
{
	X509_INFO		*xi, *ca;
	const ASN1_TIME		*next;
	char			 who[256];
	int			 i, k;
	bool			 found;

	for (i = 0; i < sk_X509_INFO_num(crls); i++) {
		xi = sk_X509_INFO_value(crls, i);
		if (xi->crl == NULL)
			continue;
		if (trust_crl_issuer(cas, xi->crl) == NULL) {
			snprintf(err, errlen, "%s: a CRL is not signed by a client CA", crlfile);
			return -1;
		}
		if (X509_STORE_add_crl(t->t_clients, xi->crl) != 1) {
			snprintf(err, errlen, "%s: cannot add a CRL", crlfile);
			return -1;
		}
		t->t_ncrls++;
		next = X509_CRL_get0_nextUpdate(xi->crl);
		if (next != NULL && X509_cmp_current_time(next) <= 0) {
			X509_NAME_oneline(X509_CRL_get_issuer(xi->crl), who, sizeof(who));
			log_warnx("%s: the CRL of %s is past its next update: every client "
			    "certificate of that CA is refused until a new CRL is loaded",
			    crlfile, who);
		}
	}
	for (k = 0; k < sk_X509_INFO_num(cas); k++) {
		ca = sk_X509_INFO_value(cas, k);
		if (ca->x509 == NULL)
			continue;
		found = false;
		for (i = 0; i < sk_X509_INFO_num(crls) && !found; i++) {
			xi = sk_X509_INFO_value(crls, i);
			found = xi->crl != NULL && trust_crl_issuer(cas, xi->crl) == ca->x509;
		}
		if (!found) {
			X509_NAME_oneline(X509_get_subject_name(ca->x509), who, sizeof(who));
			snprintf(err, errlen, "%s: holds no CRL of the client CA %s", crlfile, who);
			return -1;
		}
	}
	if (X509_STORE_set_flags(t->t_clients, X509_V_FLAG_CRL_CHECK) != 1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int
trust_load_clients(struct trust *t, const char *cafile, const char *crlfile,
    bool crl_optional, char *err, size_t errlen)
{
	STACK_OF(X509_INFO)	*cas = NULL, *crls = NULL;
	X509_INFO		*xi;
	X509_NAME		*name = NULL;
	int			 i, ret = -1;

	if ((t->t_clients = X509_STORE_new()) == NULL ||
	    (t->t_client_names = sk_X509_NAME_new_null()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	if (trust_read_pem(cafile, false, &cas, err, errlen) != 0)
		goto done;
	for (i = 0; i < sk_X509_INFO_num(cas); i++) {
		xi = sk_X509_INFO_value(cas, i);
		if (xi->x509 == NULL)
			continue;
		if (X509_STORE_add_cert(t->t_clients, xi->x509) != 1 ||
		    (name = X509_NAME_dup(X509_get_subject_name(xi->x509))) == NULL ||
		    sk_X509_NAME_push(t->t_client_names, name) <= 0) {
			snprintf(err, errlen, "%s: cannot add a client CA", cafile);
			goto done;
		}
		name = NULL;
	}
	if (sk_X509_NAME_num(t->t_client_names) == 0) {
		snprintf(err, errlen, "%s: holds no certificate", cafile);
		goto done;
	}
	if (crlfile != NULL && trust_read_pem(crlfile, crl_optional, &crls, err, errlen) != 0)
		goto done;
	if (crls != NULL && trust_add_crls(t, cas, crls, crlfile, err, errlen) != 0)
		goto done;
	ret = 0;
done:
	X509_NAME_free(name);
	sk_X509_INFO_pop_free(cas, X509_INFO_free);
	sk_X509_INFO_pop_free(crls, X509_INFO_free);
	return ret;
}

int
trust_client_check(const struct trust *t, X509 *cert, STACK_OF(X509) *chain, char *why,
    size_t whylen)
{
	X509_STORE_CTX	*xc = NULL;
	int		 ret = -1;

	if (t->t_clients == NULL) {
		snprintf(why, whylen, "no client CA is loaded");
		goto done;
	}
	/* "ssl_client": the purpose and trust libssl uses for a client's certificate. */
	if ((xc = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(xc, t->t_clients, cert, chain) != 1 ||
	    X509_STORE_CTX_set_default(xc, "ssl_client") != 1) {
		snprintf(why, whylen, "out of memory");
		goto done;
	}
	if (X509_verify_cert(xc) != 1) {
		snprintf(why, whylen, "%s",
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(xc)));
		goto done;
	}
	ret = 0;
done:
	X509_STORE_CTX_free(xc);
	ERR_clear_error();
	return ret;
}
