/*
 * trust.c - the trust store: face-auth authorities whose consent tokens are
 * accepted, the seal roots, and the journal checkpoint certificate.
 *
 * A store is immutable once loaded; SIGHUP loads a new one and swaps it in,
 * so readers never see a half-loaded store.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509_vfy.h>

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
