/*
 * check_util.h - helpers shared by the Check unit tests (tests/check_*.c),
 * linked into every one of them as tests/libcheckutil.la.
 *
 * A helper that can go wrong fails the running test with a message instead of
 * returning an error, so that a test reads as the steps it takes.  Each one
 * must therefore be called from the test's own thread (Check reports a failure
 * from the process that runs the test).
 */
#ifndef CHECK_UTIL_H
#define CHECK_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <check.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

struct journal;
struct journal_config;
struct registry;
struct reg_head;

/* The number of elements of an array (not of a pointer). */
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* The origin (gateway id) of the journals check_journal_config describes. */
#define CHECK_ORIGIN	"lianban-test"

/* The pseudonym (HMAC) key of those journals, for tests that recompute one. */
extern const uint8_t	check_hmac_key[32];

/*
 * Runs every test of the suite (the runner takes it over) and returns the
 * exit status of the test program: EXIT_SUCCESS when none failed.
 */
int		 check_run(Suite *);

/* The source tree: $LB_SRCDIR (set by make check) or the one the tests were built from. */
const char	*check_srcdir(void);

/* Fails the test, showing both byte strings in hex, when they differ. */
void		 ck_bytes_eq(const void *got, size_t gotlen, const void *want,
		    size_t wantlen);

/*
 * A version 3 certificate of key with the given serial, valid from a day ago
 * to a day ahead.  subject lists its name entries in the one-line form
 * "/O=lianban/CN=nhc".  With ca_key NULL the certificate is self-signed;
 * otherwise ca_key signs it and ca_cert's subject is its issuer.  is_ca adds
 * a critical basicConstraints CA:TRUE.  Ed25519 signs without a digest, any
 * other key with SHA-256.  The caller owns the certificate (X509_free).
 */
X509		*check_cert(EVP_PKEY *key, const char *subject, long serial, EVP_PKEY *ca_key,
		    X509 *ca_cert, bool is_ca);

/*
 * Runs the loop of base until *done (counted by callbacks on that loop)
 * reaches want or ms milliseconds passed, whichever comes first.  It looks
 * every millisecond, so tests can time what the loop did; the caller asserts
 * on *done afterwards.
 */
void		 check_run_until(struct event_base *, const int *done, int want, int ms);

/*
 * Fills cfg for a test journal in dir: origin CHECK_ORIGIN, checkpoints
 * signed by key with certificate cert, pseudonyms keyed by check_hmac_key,
 * the default map size.  cfg points at the arguments, which must outlive
 * the journal_open that uses it.
 */
void		 check_journal_config(struct journal_config *cfg, const char *dir,
		    EVP_PKEY *key, X509 *cert);

/*
 * Opens the journal check_journal_config describes, with the initial map
 * size given (0: the default), or fails the test with journal_open's
 * sentence.  The caller closes it (journal_close).
 */
struct journal	*check_journal_open(const char *dir, EVP_PKEY *key, X509 *cert,
		    size_t map_size);

/*
 * Removes dir and everything below it (links are removed, not followed).
 * Returns 0, or -1 when something could not be removed.
 */
int		 check_rm_tree(const char *dir);
/*
 * A registry head as a department's change leaves it: version, disabled,
 * the owning dept, principal "department:DEPT" and a time derived from the
 * version (so heads of different versions differ in every field).
 */
struct reg_head	 check_reg_head(uint64_t version, bool disabled, const char *dept);
/* The registry of dir, opened; the test fails when it cannot be. */
struct registry	*check_registry_open(const char *dir);

#endif /* CHECK_UTIL_H */
