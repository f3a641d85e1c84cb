/*
 * bench_seal.c - seals per second with batch seals against one signature
 * per document, for ES256, SM2 and EdDSA (docs/contract.md §6).
 *
 * Both variants run the same code the gateway's workers run (seal_claim_pack
 * for every document, then seal_batch) on one thread, interleaved in every
 * round so that a noisy machine slows both alike; the figures are medians
 * of the rounds.  "batch N" seals N documents with one signature, "single"
 * calls seal_batch once per document (a batch of one).  One receipt of each
 * variant is verified with seal_verify, so a broken seal cannot look fast.
 *
 * With --pkcs11 URI --cert PEM --root PEM it measures one seal whose key
 * stays in a PKCS#11 token (docs/seals.md) instead of the generated keys.
 *
 * usage: bench_seal [--rounds N] [--batch N] [--docs N] [--alg ES256|SM2|EdDSA]
 *        bench_seal [--rounds N] [--batch N] [--docs N] --pkcs11 URI --cert PEM --root PEM
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lianban.h"

#define ROUNDS_MAX	101
#define DOC_LEN		640	/* about the size of a canonical certificate document */
#define BATCH_MAX	1024

struct alg_case {
	const char	*ac_name;
	const char	*ac_type;	/* EVP_PKEY_Q_keygen arguments */
	const char	*ac_param;
	enum lb_alg	 ac_alg;
};

static const struct alg_case cases[] = {
	{ "ES256",	"EC",		"P-256",	LB_ALG_ES256 },
	{ "SM2",	"SM2",		NULL,		LB_ALG_SM2 },
	{ "EdDSA",	"ED25519",	NULL,		LB_ALG_EDDSA },
};
#define NCASES	(sizeof(cases) / sizeof(cases[0]))

static void
die(const char *what)
{
	fprintf(stderr, "bench_seal: %s\n", what);
	exit(1);
}

/* A seal key of department "nhc" whose certificate root signs (P-256). */
static void
make_seal(const struct alg_case *ac, EVP_PKEY *root, X509 *rootcert, struct seal_key *sk)
{
	X509		*c;
	X509_NAME	*nm;

	memset(sk, 0, sizeof(*sk));
	snprintf(sk->sk_id, sizeof(sk->sk_id), "nhc-bench");
	snprintf(sk->sk_dept, sizeof(sk->sk_dept), "nhc");
	if (ac->ac_param != NULL)
		sk->sk_key = EVP_PKEY_Q_keygen(NULL, NULL, ac->ac_type, ac->ac_param);
	else
		sk->sk_key = EVP_PKEY_Q_keygen(NULL, NULL, ac->ac_type);
	if (sk->sk_key == NULL || (c = X509_new()) == NULL)
		die("cannot make a key");
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 2);
	X509_gmtime_adj(X509_getm_notBefore(c), -86400);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400);
	nm = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"nhc", -1,
	    -1, 0);
	X509_set_issuer_name(c, X509_get_subject_name(rootcert));
	X509_set_pubkey(c, sk->sk_key);
	if (X509_sign(c, root, EVP_sha256()) <= 0)
		die("cannot sign a seal certificate");
	sk->sk_cert = c;
	if ((sk->sk_alg = envelope_alg_of_key(sk->sk_key)) != ac->ac_alg)
		die("the key is not of the expected algorithm");
	sk->sk_hash = sk->sk_alg == LB_ALG_SM2 ? MK_SM3 : MK_SHA256;
	if (key_id_cert(c, sk->sk_kid) != 0)
		die("cannot compute kid");
}

static X509 *
make_root(EVP_PKEY *key)
{
	X509		*c;
	X509_NAME	*nm;
	X509_EXTENSION	*ext;

	if ((c = X509_new()) == NULL)
		die("out of memory");
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
	X509_gmtime_adj(X509_getm_notBefore(c), -86400);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400);
	nm = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
	    (const unsigned char *)"bench seal root", -1, -1, 0);
	X509_set_issuer_name(c, nm);
	X509_set_pubkey(c, key);
	if ((ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
	    "critical,CA:TRUE")) == NULL || X509_add_ext(c, ext, -1) != 1)
		die("cannot mark the root as a CA");
	X509_EXTENSION_free(ext);
	if (X509_sign(c, key, EVP_sha256()) <= 0)
		die("cannot sign the root");
	return c;
}

/*
 * Seals ndocs documents in batches of batch; keeps the first receipt in
 * *first (caller frees).  Returns seals per second.
 */
/* A seal whose key is in a token, its certificate and the root that issued it. */
static void
load_token_seal(const char *uri, const char *certpath, const char *rootpath,
    X509_STORE *roots, struct seal_key *sk)
{
	char	err[512];

	memset(sk, 0, sizeof(*sk));
	snprintf(sk->sk_id, sizeof(sk->sk_id), "token-bench");
	if (cert_load(certpath, &sk->sk_cert, err, sizeof(err)) != 0 ||
	    key_load_pkcs11(uri, &sk->sk_key, err, sizeof(err)) != 0)
		die(err);
	if (X509_STORE_load_file(roots, rootpath) != 1)
		die("cannot load the --root certificate");
	if ((sk->sk_alg = envelope_alg_of_key(sk->sk_key)) == LB_ALG_NONE ||
	    cert_subject_field(sk->sk_cert, NID_commonName, sk->sk_dept,
	    sizeof(sk->sk_dept)) != 0 || key_id_cert(sk->sk_cert, sk->sk_kid) != 0)
		die("the token key or its certificate is not usable for a seal");
	sk->sk_hash = sk->sk_alg == LB_ALG_SM2 ? MK_SM3 : MK_SHA256;
}

/* Medians of both variants for one seal key; returns the ratio. */
static double
measure(const char *name, const struct seal_key *sk, uint8_t (*docs)[DOC_LEN], size_t ndocs,
    size_t nsingle, size_t batch, size_t rounds, X509_STORE *roots);

static double
run(const struct seal_key *sk, uint8_t (*docs)[DOC_LEN], size_t ndocs, size_t batch,
    uint8_t **first, size_t *firstlen)
{
	msgpack_sbuffer	 sb[BATCH_MAX];
	const uint8_t	*claims[BATCH_MAX];
	size_t		 lens[BATCH_MAX], rlens[BATCH_MAX];
	uint8_t		*receipts[BATCH_MAX], exch[16];
	uint64_t	 t0, t1, iat = now_ms() / 1000;
	size_t		 done, n, i;

	memset(exch, 0x5a, sizeof(exch));
	t0 = now_us_mono();
	for (done = 0; done < ndocs; done += n) {
		n = ndocs - done < batch ? ndocs - done : batch;
		for (i = 0; i < n; i++) {
			msgpack_sbuffer_init(&sb[i]);
			if (seal_claim_pack(sk, "birth_medical_certificate", docs[done + i],
			    DOC_LEN, exch, iat, &sb[i]) != 0)
				die("seal_claim_pack failed");
			claims[i] = (const uint8_t *)sb[i].data;
			lens[i] = sb[i].size;
		}
		if (seal_batch(sk, claims, lens, n, iat, receipts, rlens) != 0)
			die("seal_batch failed");
		for (i = 0; i < n; i++) {
			if (done == 0 && i == 0 && *first == NULL) {
				*first = receipts[i];
				*firstlen = rlens[i];
			} else
				free(receipts[i]);
			msgpack_sbuffer_destroy(&sb[i]);
		}
	}
	t1 = now_us_mono();
	return (double)ndocs * 1e6 / (double)(t1 - t0 ? t1 - t0 : 1);
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
check_receipt(const uint8_t *rc, size_t len, const uint8_t *doc, X509_STORE *roots,
    const char *what)
{
	struct seal_verdict	v;
	char			err[512];

	if (seal_verify(rc, len, doc, DOC_LEN, roots, &v, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_seal: %s receipt does not verify: %s\n", what, err);
		exit(1);
	}
}

static size_t
arg_size(const char *s, size_t lo, size_t hi, const char *what)
{
	char		*end;
	unsigned long	 v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "bench_seal: %s must be %zu..%zu\n", what, lo, hi);
		exit(2);
	}
	return v;
}

static double
measure(const char *name, const struct seal_key *sk, uint8_t (*docs)[DOC_LEN], size_t ndocs,
    size_t nsingle, size_t batch, size_t rounds, X509_STORE *roots)
{
	double	 vb[ROUNDS_MAX], vs[ROUNDS_MAX], mb, ms;
	uint8_t	*rb = NULL, *rs = NULL;
	size_t	 lb = 0, ls = 0, r;

	for (r = 0; r < rounds; r++) {
		vb[r] = run(sk, docs, ndocs, batch, &rb, &lb);
		vs[r] = run(sk, docs, nsingle, 1, &rs, &ls);
	}
	check_receipt(rb, lb, docs[0], roots, "batched");
	check_receipt(rs, ls, docs[0], roots, "single");
	free(rb);
	free(rs);
	mb = median(vb, rounds);
	ms = median(vs, rounds);
	printf("%-6s %14.0f %14.0f %7.1fx\n", name, mb, ms, mb / ms);
	return mb / ms;
}

int
main(int argc, char **argv)
{
	size_t		 rounds = 7, batch = 256, ndocs = 4096, nsingle, c, i;
	const char	*only = NULL, *p11uri = NULL, *p11cert = NULL, *p11root = NULL;
	uint8_t		(*docs)[DOC_LEN];
	double		 sm2_ratio = 0;
	EVP_PKEY	*rootkey;
	X509		*rootcert;
	X509_STORE	*roots;
	int		 a, bad = 0;

	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--rounds") == 0 && a + 1 < argc)
			rounds = arg_size(argv[++a], 1, ROUNDS_MAX, "--rounds");
		else if (strcmp(argv[a], "--batch") == 0 && a + 1 < argc)
			batch = arg_size(argv[++a], 2, BATCH_MAX, "--batch");
		else if (strcmp(argv[a], "--docs") == 0 && a + 1 < argc)
			ndocs = arg_size(argv[++a], 16, 1 << 20, "--docs");
		else if (strcmp(argv[a], "--alg") == 0 && a + 1 < argc)
			only = argv[++a];
		else if (strcmp(argv[a], "--pkcs11") == 0 && a + 1 < argc)
			p11uri = argv[++a];
		else if (strcmp(argv[a], "--cert") == 0 && a + 1 < argc)
			p11cert = argv[++a];
		else if (strcmp(argv[a], "--root") == 0 && a + 1 < argc)
			p11root = argv[++a];
		else
			goto usage;
	}
	if ((p11uri != NULL) != (p11cert != NULL) || (p11uri != NULL) != (p11root != NULL))
		goto usage;
	/* One signature per document is slow: an eighth of the documents suffice. */
	nsingle = ndocs / 8;
	if ((docs = malloc(ndocs * sizeof(*docs))) == NULL)
		die("out of memory");
	for (i = 0; i < ndocs; i++) {
		memset(docs[i], 0xa0, DOC_LEN);
		memcpy(docs[i], &i, sizeof(i));
	}
	if ((rootkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL)
		die("cannot make the root key");
	rootcert = make_root(rootkey);
	if ((roots = X509_STORE_new()) == NULL || X509_STORE_add_cert(roots, rootcert) != 1)
		die("cannot make the root store");

	printf("bench_seal: %zu rounds; batch %zu: %zu documents, single: %zu documents "
	    "per round; one thread\n", rounds, batch, ndocs, nsingle);
	printf("%-6s %14s %14s %8s\n", "alg", "batch seals/s", "single seals/s", "ratio");
	if (p11uri != NULL) {
		struct seal_key	 sk;

		load_token_seal(p11uri, p11cert, p11root, roots, &sk);
		measure("token", &sk, docs, ndocs, nsingle, batch, rounds, roots);
		seal_key_clear(&sk);
	}
	for (c = 0; c < NCASES && p11uri == NULL; c++) {
		struct seal_key	 sk;
		double		 ratio;

		if (only != NULL && strcmp(only, cases[c].ac_name) != 0)
			continue;
		make_seal(&cases[c], rootkey, rootcert, &sk);
		ratio = measure(cases[c].ac_name, &sk, docs, ndocs, nsingle, batch, rounds, roots);
		if (cases[c].ac_alg == LB_ALG_SM2)
			sm2_ratio = ratio;
		seal_key_clear(&sk);
	}
	if (sm2_ratio > 0) {
		printf("SM2 batching / single: %.1fx (requirement: at least 5x) %s\n", sm2_ratio,
		    sm2_ratio >= 5 ? "ok" : "NOT MET");
		bad = sm2_ratio < 5;
	}
	X509_STORE_free(roots);
	X509_free(rootcert);
	EVP_PKEY_free(rootkey);
	free(docs);
	return bad;
usage:
	fprintf(stderr, "usage: bench_seal [--rounds N] [--batch N] [--docs N] "
	    "[--alg ES256|SM2|EdDSA]\n"
	    "       bench_seal [--rounds N] [--batch N] [--docs N] --pkcs11 URI "
	    "--cert PEM --root PEM\n");
	return 2;
}
