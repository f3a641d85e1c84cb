/*
 * fuzz_common.h - what the libFuzzer targets share: deterministic keys and
 * certificates made in memory (so a target needs no demo PKI and its seeds
 * stay valid from run to run), and the writing of seed files.
 *
 * Ed25519 signatures are deterministic, so a certificate or envelope made
 * here from a fixed seed is the same bytes on every run: the seeds a target
 * writes with LB_FUZZ_SEEDS=DIR keep verifying when they are fuzzed later.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lianban.h"

/* 2026-01-01T00:00:00Z: the fixed "now" of the targets. */
#define FUZZ_NOW	1767225600

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An Ed25519 key from a one-byte seed pattern; aborts on failure. */
static inline EVP_PKEY *
fuzz_key(uint8_t pattern)
{
	uint8_t		 seed[32];
	EVP_PKEY	*k;

	memset(seed, pattern, sizeof(seed));
	if ((k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed))) ==
	    NULL)
		abort();
	return k;
}

/*
 * A certificate for key with subject CN=cn, signed by issuer_key under
 * issuer (NULL: self-signed), valid 2025-01-01 to 2036-01-01; ca adds
 * basicConstraints CA:TRUE.  Aborts on failure.
 */
static inline X509 *
fuzz_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool ca,
    long serial)
{
	X509		*c;
	X509_NAME	*n;
	X509_EXTENSION	*ext;

	if ((c = X509_new()) == NULL || X509_set_version(c, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(c), serial) != 1 ||
	    ASN1_TIME_set_string(X509_getm_notBefore(c), "20250101000000Z") != 1 ||
	    ASN1_TIME_set_string(X509_getm_notAfter(c), "20360101000000Z") != 1)
		abort();
	n = X509_get_subject_name(c);
	if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
	    -1, 0) != 1 ||
	    X509_set_issuer_name(c, issuer != NULL ? X509_get_subject_name(issuer) : n) != 1 ||
	    X509_set_pubkey(c, key) != 1)
		abort();
	if (ca) {
		if ((ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
		    "critical,CA:TRUE")) == NULL || X509_add_ext(c, ext, -1) != 1)
			abort();
		X509_EXTENSION_free(ext);
		if ((ext = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage,
		    "critical,keyCertSign,cRLSign")) == NULL || X509_add_ext(c, ext, -1) != 1)
			abort();
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(c, issuer_key != NULL ? issuer_key : key, NULL) == 0)
		abort();
	return c;
}

/* True when o, or anything in it (map keys too), is one that pred picks. */
static inline bool
fuzz_any(const msgpack_object *o, bool (*pred)(const msgpack_object *))
{
	uint32_t	i;

	if (pred(o))
		return true;
	if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (i = 0; i < o->via.array.size; i++)
			if (fuzz_any(&o->via.array.ptr[i], pred))
				return true;
	} else if (o->type == MSGPACK_OBJECT_MAP) {
		for (i = 0; i < o->via.map.size; i++)
			if (fuzz_any(&o->via.map.ptr[i].key, pred) ||
			    fuzz_any(&o->via.map.ptr[i].val, pred))
				return true;
	}
	return false;
}

/* An integer above INT64_MAX, which jansson cannot carry. */
static inline bool
fuzz_big_int(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 > INT64_MAX;
}

/* A str that is not text as mpk_unpack wants it (UTF-8 without NUL). */
static inline bool
fuzz_not_text(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_STR && !utf8_valid(o->via.str.ptr, o->via.str.size);
}

/*
 * What a target accepted encodes to JSON and back: when o has a canonical
 * form at all (str keys, no duplicates, no floats, no ext), its JSON text
 * decodes (mpk_from_json) to an object with the same JSON text (a JSON
 * text is an object or an array: a scalar only needs its JSON form).  Only an
 * integer above INT64_MAX may keep o from JSON, and only where big_ints
 * says so (request bodies and token claims; never a document the gateway
 * hands out).  Aborts when the property fails.
 */
static inline void
fuzz_json_back(const msgpack_object *o, bool big_ints)
{
	msgpack_zone	 z;
	msgpack_object	 back;
	uint8_t		*bytes;
	size_t		 len;
	char		*j1, *j2 = NULL, err[256];

	if (mpk_pack_alloc(o, &bytes, &len) != 0)
		return;
	free(bytes);
	if ((j1 = mpk_to_json(o, false)) == NULL) {
		if (big_ints && fuzz_any(o, fuzz_big_int))
			return;
		fprintf(stderr, "an accepted value has no JSON form\n");
		abort();
	}
	msgpack_zone_init(&z, 4096);
	if ((o->type == MSGPACK_OBJECT_MAP || o->type == MSGPACK_OBJECT_ARRAY) &&
	    (mpk_from_json(j1, strlen(j1), &z, &back, err, sizeof(err)) != 0 ||
	    (j2 = mpk_to_json(&back, false)) == NULL || strcmp(j1, j2) != 0)) {
		fprintf(stderr, "an accepted value does not come back from its JSON %s\n", j1);
		abort();
	}
	free(j2);
	free(j1);
	msgpack_zone_destroy(&z);
}

/* Writes one seed file DIR/name when LB_FUZZ_SEEDS=DIR is set. */
static inline void
fuzz_seed(const char *name, const void *buf, size_t len)
{
	const char	*dir = getenv("LB_FUZZ_SEEDS");
	char		 path[1024];
	FILE		*fp;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "wb")) == NULL || fwrite(buf, 1, len, fp) != len ||
	    fclose(fp) != 0) {
		fprintf(stderr, "cannot write %s\n", path);
		abort();
	}
}

/*
 * A request body as the HTTP front decodes it: byte 0 even, the rest is
 * JSON; odd, msgpack.  The object lives in z.  0, or -1 when it does not
 * decode (or size is 0).
 */
static inline int
fuzz_decode_body(const uint8_t *data, size_t size, msgpack_zone *z, msgpack_object *o)
{
	char	err[256];

	if (size < 1)
		return -1;
	if ((data[0] & 1) == 0)
		return mpk_from_json((const char *)data + 1, size - 1, z, o, err, sizeof(err));
	return mpk_unpack(data + 1, size - 1, z, o);
}

#endif /* FUZZ_COMMON_H */
