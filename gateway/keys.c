/*
 * keys.c - private keys and certificates from PEM files.
 *
 * Private keys are read once; the PEM text is wiped as soon as it has been
 * decoded, and EVP_PKEY_free wipes the key itself when it is released.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "lianban.h"

#define KEY_FILE_MAX	(64 * 1024)

int
key_load(const char *path, EVP_PKEY **key, char *err, size_t errlen)
{
	struct stat	 st;
	uint8_t		*pem = NULL;
	size_t		 len = 0;
	BIO		*bio = NULL;
	int		 ret = -1;

	*key = NULL;
	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "%s: private key is readable by group or others "
		    "(mode %03o); chmod 600 it", path, (unsigned)(st.st_mode & 0777));
		goto done;
	}
	if (file_read(path, KEY_FILE_MAX, &pem, &len) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
	    (*key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "%s: not a PEM private key", path);
		goto done;
	}
	ret = 0;
done:
	BIO_free(bio);
	if (pem != NULL) {
		OPENSSL_cleanse(pem, len);
		free(pem);
	}
	return ret;
}

int
cert_load(const char *path, X509 **cert, char *err, size_t errlen)
{
	BIO	*bio;

	*cert = NULL;
	if ((bio = BIO_new_file(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	*cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (*cert == NULL) {
		snprintf(err, errlen, "%s: not a PEM certificate", path);
		return -1;
	}
	return 0;
}

int
key_id_pkey(EVP_PKEY *pkey, uint8_t kid[32])
{
	unsigned char	*der = NULL;
	int		 len, ret = -1;

	if ((len = i2d_PUBKEY(pkey, &der)) <= 0)
		return -1;
	if (EVP_Digest(der, (size_t)len, kid, NULL, EVP_sha256(), NULL) == 1)
		ret = 0;
	OPENSSL_free(der);
	return ret;
}

int
key_id_cert(X509 *cert, uint8_t kid[32])
{
	EVP_PKEY	*pkey;

	/* X509_get0_pubkey does not transfer ownership. */
	if ((pkey = X509_get0_pubkey(cert)) == NULL)
		return -1;
	return key_id_pkey(pkey, kid);
}

int
cert_subject_field(X509 *cert, int nid, char *buf, size_t bufsz)
{
	X509_NAME	*name;
	X509_NAME_ENTRY	*ent;
	ASN1_STRING	*s;
	unsigned char	*utf8 = NULL;
	int		 idx, len, ret = -1;

	if ((name = X509_get_subject_name(cert)) == NULL)
		return -1;
	if ((idx = X509_NAME_get_index_by_NID(name, nid, -1)) < 0)
		return -1;
	if ((ent = X509_NAME_get_entry(name, idx)) == NULL ||
	    (s = X509_NAME_ENTRY_get_data(ent)) == NULL)
		return -1;
	if ((len = ASN1_STRING_to_UTF8(&utf8, s)) < 0)
		return -1;
	if ((size_t)len < bufsz && memchr(utf8, '\0', (size_t)len) == NULL) {
		memcpy(buf, utf8, (size_t)len);
		buf[len] = '\0';
		ret = 0;
	}
	OPENSSL_free(utf8);
	return ret;
}
