/*
 * keys.c - private keys and certificates from PEM files, and handles to
 * private keys that stay in a PKCS#11 token.
 *
 * Private keys are read once; the PEM text is wiped as soon as it has been
 * decoded, and EVP_PKEY_free wipes the key itself when it is released.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

/*
 * PKCS#11 keys go through the libp11 engine ("pkcs11"), the one way to a
 * token that OpenSSL 3.0 on Debian 12 offers; the ENGINE interface is
 * deprecated in OpenSSL 3 but still supported.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "lianban.h"

#define KEY_FILE_MAX	(64 * 1024)
#define KEY_URI_MAX	2048

int
key_file_read(const char *path, const char *what, size_t max, uint8_t **buf, size_t *len,
    char *err, size_t errlen)
{
	mode_t	mode;

	/*
	 * The mode comes from the descriptor read: a stat of the path before
	 * the open could check one file and read another swapped in between.
	 */
	if (file_read_mode(path, max, buf, len, &mode) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (mode & (S_IRWXG | S_IRWXO)) {
		OPENSSL_cleanse(*buf, *len);
		free(*buf);
		*buf = NULL;
		snprintf(err, errlen, "%s: %s is readable by group or others (mode %03o); "
		    "chmod 600 it", path, what, (unsigned)(mode & 0777));
		return -1;
	}
	return 0;
}

int
key_load(const char *path, EVP_PKEY **key, char *err, size_t errlen)
{
	uint8_t		*pem = NULL;
	size_t		 len = 0;
	BIO		*bio = NULL;
	int		 ret = -1;

	*key = NULL;
	if (key_file_read(path, "private key", KEY_FILE_MAX, &pem, &len, err, errlen) == -1)
		goto done;
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

/*
 * The engine is loaded once, with the PKCS#11 module of the first token
 * key, and kept for the life of the process: keys loaded through it hold
 * references to it, and a reload loads their successors through it too.
 */
static pthread_mutex_t	 p11_lock = PTHREAD_MUTEX_INITIALIZER;
static ENGINE		*p11_engine;
static char		 p11_module[KEY_URI_MAX];

/*
 * Copies the query attribute "name=" of a (at most n bytes) to out;
 * 0 when a is not that attribute, 1 when copied, -1 when it does not fit or
 * is %-encoded (not supported).
 */
static int
p11_attr(const char *a, size_t n, const char *name, char *out, size_t outlen)
{
	size_t	k = strlen(name);

	if (n <= k || strncmp(a, name, k) != 0)
		return 0;
	if (n - k >= outlen || memchr(a + k, '%', n - k) != NULL)
		return -1;
	memcpy(out, a + k, n - k);
	out[n - k] = '\0';
	return 1;
}

/*
 * Splits the "module-path" and "pin-value" query attributes out of uri: the
 * engine takes the module and the PIN as control commands, and a URI the
 * engine sees may end up in its error messages, which must not show the PIN.
 */
static int
p11_split_uri(const char *uri, char *rest, size_t restlen, char *module, size_t modlen,
    char *pin, size_t pinlen)
{
	const char	*q, *a, *end;
	size_t		 n, o, plen;
	int		 m, p;

	module[0] = pin[0] = '\0';
	if (strlen(uri) >= restlen)
		return -1;
	plen = (q = strchr(uri, '?')) != NULL ? (size_t)(q - uri) : strlen(uri);
	memcpy(rest, uri, plen);
	rest[plen] = '\0';
	/* The PIN belongs in the query; in the path the engine would print it. */
	if (strstr(rest, "pin-value=") != NULL)
		return -1;
	if (q == NULL)
		return 0;
	o = plen;
	for (a = q + 1; *a != '\0'; a = *end != '\0' ? end + 1 : end) {
		if ((end = strchr(a, '&')) == NULL)
			end = a + strlen(a);
		n = (size_t)(end - a);
		if ((m = p11_attr(a, n, "module-path=", module, modlen)) < 0 ||
		    (p = p11_attr(a, n, "pin-value=", pin, pinlen)) < 0)
			return -1;
		if (m || p)
			continue;
		rest[o] = o == plen ? '?' : '&';
		o++;
		memcpy(rest + o, a, n);
		o += n;
	}
	rest[o] = '\0';
	return 0;
}

/* Returns the initialised engine for module (p11_lock held). */
static ENGINE *
p11_engine_get(const char *module, char *err, size_t errlen)
{
	ENGINE	*e;

	if (p11_engine != NULL) {
		if (module[0] != '\0' && strcmp(module, p11_module) != 0) {
			snprintf(err, errlen, "PKCS#11 module %s differs from %s, loaded "
			    "before; one process uses one module", module, p11_module);
			return NULL;
		}
		return p11_engine;
	}
	ENGINE_load_builtin_engines();
	if ((e = ENGINE_by_id("pkcs11")) == NULL) {
		snprintf(err, errlen, "the OpenSSL pkcs11 engine is not installed "
		    "(Debian package libengine-pkcs11-openssl)");
		return NULL;
	}
	if ((module[0] != '\0' && ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0) != 1) ||
	    ENGINE_init(e) != 1) {
		snprintf(err, errlen, "the pkcs11 engine cannot load the PKCS#11 module %s",
		    module[0] != '\0' ? module : "(default)");
		ENGINE_free(e);
		return NULL;
	}
	/* The functional reference from ENGINE_init keeps it; drop the structural one. */
	ENGINE_free(e);
	p11_engine = e;
	snprintf(p11_module, sizeof(p11_module), "%s", module);
	return e;
}

int
key_load_pkcs11(const char *uri, EVP_PKEY **key, char *err, size_t errlen)
{
	char	 rest[KEY_URI_MAX], module[KEY_URI_MAX], pin[256];
	ENGINE	*e;
	int	 ret = -1;

	*key = NULL;
	if (strncmp(uri, "pkcs11:", 7) != 0 ||
	    p11_split_uri(uri, rest, sizeof(rest), module, sizeof(module), pin,
	    sizeof(pin)) != 0) {
		snprintf(err, errlen, "not a usable pkcs11: URI (pin-value and module-path "
		    "go in the query, after \"?\", without %%-encoding)");
		goto done;
	}
	pthread_mutex_lock(&p11_lock);
	if ((e = p11_engine_get(module, err, errlen)) != NULL) {
		/*
		 * The engine keeps a copy of the PIN to log in again when the token
		 * asks; a "pin-source" in the URI takes precedence over it.
		 */
		if (pin[0] != '\0' && ENGINE_ctrl_cmd_string(e, "PIN", pin, 0) != 1)
			snprintf(err, errlen, "the pkcs11 engine does not take the PIN");
		else if ((*key = ENGINE_load_private_key(e, rest, NULL, NULL)) == NULL)
			snprintf(err, errlen, "no private key in the PKCS#11 token for this "
			    "URI (wrong token, object or PIN?)");
	}
	pthread_mutex_unlock(&p11_lock);
	if (*key != NULL)
		ret = 0;
done:
	ERR_clear_error();
	OPENSSL_cleanse(rest, sizeof(rest));
	OPENSSL_cleanse(pin, sizeof(pin));
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
	if ((idx = X509_NAME_get_index_by_NID(name, nid, -1)) < 0 ||
	    X509_NAME_get_index_by_NID(name, nid, idx) >= 0)
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
