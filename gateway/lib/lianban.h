/*
 * lianban.h - internal interfaces of the lianban gateway core.
 *
 * One section per source file, in the order data flows through an
 * exchange (see docs/architecture.md).  Functions return 0 on success and
 * -1 on failure unless their comment says otherwise; results travel
 * through out-parameters.  Ownership is stated where it is not obvious.
 */
#ifndef LIANBAN_H
#define LIANBAN_H

#include <sys/types.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

struct event_base;

#define LB_ID_MAX	64	/* department, consumer, adapter, bundle ids */
/* A checkpoint origin: GATEWAY_ID, or GATEWAY_ID/NODE_ID in a cluster. */
#define LB_ORIGIN_MAX	(2 * LB_ID_MAX)
#define LB_SUBJECT_MAX	64	/* resident ID numbers and other subject ids */
#define LB_ITEM_MAX	64	/* item type names */
#define LB_URL_MAX	512
#define LB_BODY_MAX	(1024 * 1024)	/* largest API request body */
#define LB_DEPT_BODY_MAX (4 * 1024 * 1024) /* largest department answer */
#define LB_MAX_SUBJECTS	16	/* subjects in one exchange request */
#define LB_MAX_ITEMS	32	/* items per subject */
#define LB_MSGPACK_DEPTH 16	/* deepest nesting accepted from outside */
#define LB_PROTOCOL	"lianban/1"
#define LB_SKEW_S	60	/* allowed clock skew for consent tokens */
#define LB_CONSENT_LIFETIME_MAX 600

/* errors.c */
enum lb_err {
	LB_OK = 0,
	LB_E_BAD_REQUEST,
	LB_E_TOO_LARGE,
	LB_E_UNAUTHENTICATED,
	LB_E_FORBIDDEN_ROLE,
	LB_E_NOT_FOUND,
	LB_E_METHOD_NOT_ALLOWED,
	LB_E_UNKNOWN_BUNDLE,
	LB_E_ITEM_NOT_IN_POLICY,
	LB_E_CONSENT_MISSING,
	LB_E_CONSENT_MALFORMED,
	LB_E_CONSENT_BAD_SIGNATURE,
	LB_E_CONSENT_UNTRUSTED_ISSUER,
	LB_E_CONSENT_WRONG_AUDIENCE,
	LB_E_CONSENT_WRONG_CONSUMER,
	LB_E_CONSENT_EXPIRED,
	LB_E_CONSENT_NOT_YET_VALID,
	LB_E_CONSENT_WRONG_BUNDLE,
	LB_E_CONSENT_ITEM_NOT_COVERED,
	LB_E_ASSURANCE_TOO_LOW,
	LB_E_CONSENT_REPLAYED,
	LB_E_CONSENT_REVOKED,
	LB_E_GUARDIAN_UNVERIFIED,
	LB_E_NO_ADAPTER,
	LB_E_DEPARTMENT_UNAVAILABLE,
	LB_E_DEPARTMENT_TIMEOUT,
	LB_E_DEPARTMENT_BAD_RESPONSE,
	LB_E_SUBJECT_MISMATCH,
	LB_E_RATE_LIMITED,
	LB_E_JOURNAL_UNAVAILABLE,
	LB_E_AGENT_UNVERIFIED,
	LB_E_PREDICATE_NOT_ALLOWED,
	LB_E_INTERNAL,
	LB_E_CONSENT_STORE_UNAVAILABLE,	/* a cluster's etcd did not answer */
	LB_E__COUNT
};
/*
 * The outcome of a request, or of one part of it: LB_OK until the first
 * failure, which is the one reported.
 */
struct lb_outcome {
	enum lb_err	oc_code;
	char		oc_msg[256];
};
/* Records a failure in oc unless oc holds one already; later ones are ignored. */
void		 lb_outcome_fail(struct lb_outcome *oc, enum lb_err, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
/* The wire code ("consent_expired") and the HTTP status of an error. */
const char	*lb_err_code(enum lb_err);
int		 lb_err_status(enum lb_err);

/* log.c */
void		 log_init(const char *prog, int verbose);
/* Debug lines are written only while verbose (log_init, log_set_verbose). */
void		 log_set_verbose(int verbose);
enum log_level {
	LB_LOG_INFO,
	LB_LOG_WARN,
	LB_LOG_DEBUG,
	LB_LOG_ERROR	/* the program cannot go on: a start that fails */
};
/*
 * How lines look: text is "prog: [warning: | debug: | error: ]message";
 * logfmt and JSON lines carry ts (RFC 3339, UTC, milliseconds), level,
 * event and the event's fields.
 */
enum log_format {
	LB_LOGF_TEXT,
	LB_LOGF_LOGFMT,
	LB_LOGF_JSON
};
/* "text" (the default), "logfmt" or "json"; -1 for anything else. */
int		 log_set_format(const char *name);
enum log_format	 log_format(void);
/* "stderr" (the default) or "syslog" (facility daemon); -1 for anything else. */
int		 log_set_target(const char *name);
/* One line as the event "message" with the field msg; any thread. */
void		 log_msg(enum log_level, const char *, ...) __attribute__((format(printf, 2, 3)));
#define log_info(...)	log_msg(LB_LOG_INFO, __VA_ARGS__)
#define log_warnx(...)	log_msg(LB_LOG_WARN, __VA_ARGS__)
#define log_debug(...)	log_msg(LB_LOG_DEBUG, __VA_ARGS__)
#define log_errx(...)	log_msg(LB_LOG_ERROR, __VA_ARGS__)
#define LOG_EV_MESSAGE	"message"
/*
 * One event: its name, then pairs of field name and text value, ended by
 * NULL; any thread.  Fields never carry a subject's ID or a document's
 * content.  Text lines show them as "prog: event key=value ...", or only
 * the value of the first field when that is msg.
 */
void		 log_event(enum log_level, const char *event, ...)
		    __attribute__((sentinel));
void		 log_eventv(enum log_level, const char *event, va_list ap);
uint64_t	 now_ms(void);
uint64_t	 now_us_mono(void);
/* Base64url without padding.  The result is malloc'ed and NUL-terminated. */
char		*b64url_encode(const void *, size_t);
/* The same text into out, which has room for (len + 2) / 3 * 4 + 1 bytes; its length. */
size_t		 b64url_encode_to(const void *in, size_t len, char *out);
/* Accepts base64url without padding; the result is malloc'ed. */
int		 b64url_decode(const char *, size_t, uint8_t **, size_t *);
void		 hex_encode(const void *, size_t, char *out /* 2n+1 */);
int		 hex_decode(const char *, size_t, uint8_t *out, size_t outlen);
/*
 * Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF,
 * and no NUL, which C consumers of text could not carry and JSON parsers
 * (jansson among them) refuse as \u0000.  Every text that enters lianban
 * from outside passes this check (mpk_unpack, the translators).
 */
bool		 utf8_valid(const void *s, size_t n);
/* Reads a whole file of at most max bytes; *buf is malloc'ed. */
int		 file_read(const char *path, size_t max, uint8_t **buf, size_t *len);
/* file_read that also gives the mode of the very file read (fstat of its descriptor). */
int		 file_read_mode(const char *path, size_t max, uint8_t **buf, size_t *len,
		    mode_t *mode);
/* Writes a file atomically (tmp + rename) with the given mode. */
int		 file_write(const char *path, const void *, size_t, int mode);
/* buf = a "/" b; -1 when it does not fit. */
int		 path_join(char *buf, size_t bufsz, const char *a, const char *b);
/* Copies a NUL-terminated string; -1 when it does not fit. */
int		 strlcpy_chk(char *dst, const char *src, size_t dstsize);
/*
 * Calls fn with the path of every file of dir whose name ends in suffix
 * (and is longer than it), in name order; more than max such files is an
 * error.  The walk stops at the first fn that fails, whose err is kept as
 * it is; the other failures get a sentence naming dir.  path is valid only
 * during the call.
 */
typedef int	(*dir_each_fn)(void *arg, const char *path, char *err, size_t errlen);
int		 dir_each(const char *dir, const char *suffix, size_t max, dir_each_fn fn,
		    void *arg, char *err, size_t errlen);

/* keys.c: key and certificate files */
/*
 * Loads a PEM private key.  Refuses a key file that is group or world
 * readable.  The caller owns *key and frees it with EVP_PKEY_free (which
 * wipes the key material).
 */
int		 key_load(const char *path, EVP_PKEY **key, char *err, size_t errlen);
/*
 * Reads a file that holds a secret (what names it in messages: "private
 * key", ...) of at most max bytes into malloc'ed *buf, NUL-terminated;
 * the caller wipes (OPENSSL_cleanse) and frees it.  The file must not be
 * readable, writable or executable by group or others, as the descriptor
 * read says (fstat), so the file checked is the file read.  -1 with a
 * sentence naming path in err.
 */
int		 key_file_read(const char *path, const char *what, size_t max, uint8_t **buf,
		    size_t *len, char *err, size_t errlen);
int		 cert_load(const char *path, X509 **cert, char *err, size_t errlen);
/*
 * Loads a handle to a private key that stays in a PKCS#11 token, named by
 * an RFC 7512 URI (with "module-path" naming the token's PKCS#11 module and
 * "pin-value" or "pin-source" its PIN); signing with *key runs in the
 * token.  The key material is never read into this process.
 */
int		 key_load_pkcs11(const char *uri, EVP_PKEY **key, char *err, size_t errlen);
/* kid = SHA-256 of the DER SubjectPublicKeyInfo (docs/contract.md §4). */
int		 key_id_cert(X509 *, uint8_t kid[32]);
int		 key_id_pkey(EVP_PKEY *, uint8_t kid[32]);
/*
 * Copies the CN / OU (nid) of the certificate subject.  -1 when the subject
 * has none, has it more than once (an ambiguous name is refused, never
 * read as its first value), or it does not fit buf as a C string.
 */
int		 cert_subject_field(X509 *, int nid, char *buf, size_t bufsz);

/* mpk.c: canonical msgpack (docs/contract.md §3) on msgpack-c objects */
/*
 * Every object built here lives in a msgpack_zone; allocation failure in a
 * zone is fatal, as with most daemons' allocators.  Strings and binaries
 * passed to mpk_str/mpk_bin are borrowed, not copied: they must outlive the
 * object.  Use mpk_strdup/mpk_bindup to copy into the zone.
 */
void		*mpk_zalloc(msgpack_zone *, size_t);
msgpack_object	 mpk_nil(void);
msgpack_object	 mpk_bool(bool);
msgpack_object	 mpk_uint(uint64_t);
msgpack_object	 mpk_int(int64_t);
msgpack_object	 mpk_str(const char *);
msgpack_object	 mpk_strn(const char *, size_t);
msgpack_object	 mpk_bin(const void *, size_t);
msgpack_object	 mpk_strdup(msgpack_zone *, const char *, size_t);
msgpack_object	 mpk_bindup(msgpack_zone *, const void *, size_t);
/* An array of n elements (all nil) whose storage is in the zone. */
msgpack_object	 mpk_array(msgpack_zone *, uint32_t n);

/* A map under construction: up to cap entries, in any order. */
struct mpk_map {
	msgpack_object	mm_obj;
	uint32_t	mm_cap;
};
void		 mpk_map_init(struct mpk_map *, msgpack_zone *, uint32_t cap);
/* Adds key (borrowed) -> v; aborts when the map is full (a programming error). */
void		 mpk_map_put(struct mpk_map *, const char *key, msgpack_object v);

/*
 * Appends the canonical encoding of o to out: shortest headers, map keys
 * sorted by their bytes.  Fails on non-string map keys, duplicate keys and
 * floats (unless allow_float).
 */
int		 mpk_pack(const msgpack_object *o, msgpack_sbuffer *out, bool allow_float);
/*
 * Decodes exactly one object from buf (trailing bytes are an error) after
 * checking that every container count fits the remaining input and nesting
 * stays within LB_MSGPACK_DEPTH, so nothing is allocated on a lie, and that
 * every str (map keys included) is text that utf8_valid accepts, so that
 * whatever is decoded can be shown as JSON.  The object borrows from z (not
 * from buf).
 */
int		 mpk_unpack(const void *buf, size_t len, msgpack_zone *z, msgpack_object *out);
/*
 * mpk_unpack without the text check, for bytes lianban itself stored that an
 * older version may have written from unchecked input (journal records).
 * Never for input from outside; a str of the result may not be UTF-8, so
 * show it only through journal_record_show or after mpk_json_able.
 */
int		 mpk_unpack_stored(const void *buf, size_t len, msgpack_zone *z,
		    msgpack_object *out);
/*
 * True when buf is one msgpack object without trailing bytes in canonical
 * form (shortest headers, sorted unique str keys, no floats).  Whether its
 * text is UTF-8 is mpk_unpack's question, not this one's.
 */
bool		 mpk_is_canonical(const void *buf, size_t len);
/*
 * JSON <-> msgpack objects.  From JSON (mpk_json.c, in one pass into z; an
 * object or an array, no key twice, nesting within LB_MSGPACK_DEPTH):
 * integers stay integers, reals are refused, strings stay strings (binary
 * fields arrive as base64url strings; see mpk_obj_bytes).  To JSON: bin becomes base64url.  The text returned by
 * mpk_to_json is malloc'ed.
 */
int		 mpk_from_json(const char *txt, size_t len, msgpack_zone *z, msgpack_object *out,
		    char *err, size_t errlen);
char		*mpk_to_json(const msgpack_object *o, bool pretty);
/*
 * True when mpk_to_json can show o: its text is UTF-8, its map keys are
 * str, its integers fit in int64 and it holds no ext value.
 */
bool		 mpk_json_able(const msgpack_object *o);
/*
 * mpk_json.c: JSON text written straight from the objects.  A growing
 * buffer (zero it to start); jb_data is malloc'ed and the caller's to free,
 * even after a failure.
 */
struct mpk_jbuf {
	char		*jb_data;
	size_t		 jb_len, jb_cap;
};
int		 mpk_jbuf_put(struct mpk_jbuf *, const void *, size_t);
/*
 * Appends the text mpk_to_json(o, false) returns (compact, keys sorted),
 * without building a tree; -1 where it returns NULL or memory runs out
 * (jb then holds a partial text).
 */
int		 mpk_json_append(const msgpack_object *o, struct mpk_jbuf *jb);
/* Map look-up by string key; NULL when absent or map is not a map. */
const msgpack_object *mpk_get(const msgpack_object *map, const char *key);
bool		 mpk_str_eq(const msgpack_object *o, const char *s);
/* Copies a str object into buf; -1 when not a str, too long, or holds NUL. */
int		 mpk_obj_str(const msgpack_object *o, char *buf, size_t bufsz);
int		 mpk_get_str(const msgpack_object *map, const char *key, char *buf, size_t bufsz);
int		 mpk_obj_u64(const msgpack_object *o, uint64_t *v);
int		 mpk_get_u64(const msgpack_object *map, const char *key, uint64_t *v);
int		 mpk_obj_i64(const msgpack_object *o, int64_t *v);
int		 mpk_get_i64(const msgpack_object *map, const char *key, int64_t *v);
/* bin, or a base64url str (from JSON) decoded into the zone. */
int		 mpk_obj_bytes(const msgpack_object *o, msgpack_zone *z, const uint8_t **p, size_t *n);
int		 mpk_get_bytes(const msgpack_object *map, const char *key, msgpack_zone *z,
		    const uint8_t **p, size_t *n);
/* Packs o canonically into a fresh buffer; *buf is malloc'ed. */
int		 mpk_pack_alloc(const msgpack_object *o, uint8_t **buf, size_t *len);

/* envelope.c: the signed envelope (docs/contract.md §4) */
enum lb_alg {
	LB_ALG_NONE = 0,
	LB_ALG_ES256,
	LB_ALG_EDDSA,
	LB_ALG_SM2
};
#define LB_SM2_ID	"1234567812345678"
const char	*envelope_alg_name(enum lb_alg);
enum lb_alg	 envelope_alg_from_name(const char *);
/* The algorithm a key signs with: P-256 -> ES256, Ed25519 -> EdDSA, SM2 -> SM2. */
enum lb_alg	 envelope_alg_of_key(EVP_PKEY *);
/*
 * Signs payload (canonical msgpack bytes) as an envelope of type typ and
 * appends the envelope's msgpack bytes to out.  x5c, when nx5c > 0, is
 * embedded, signer first.  Runs on worker threads, never the event loop.
 */
int		 envelope_sign(EVP_PKEY *key, const uint8_t kid[32], const char *typ,
		    X509 *const *x5c, size_t nx5c, const void *payload, size_t payload_len,
		    msgpack_sbuffer *out);
/* Raw signature over the tbs bytes with the rules of alg (also used by tests). */
int		 envelope_sig_create(EVP_PKEY *, const void *tbs, size_t, uint8_t **sig, size_t *siglen);
int		 envelope_sig_check(EVP_PKEY *, enum lb_alg, const void *tbs, size_t,
		    const uint8_t *sig, size_t siglen);

struct envelope {
	enum lb_alg	 env_alg;
	uint8_t		 env_kid[32];
	char		 env_typ[16];
	const uint8_t	*env_prot;		/* protected bytes (in the zone) */
	size_t		 env_prot_len;
	const uint8_t	*env_payload;		/* payload bytes (in the zone) */
	size_t		 env_payload_len;
	const uint8_t	*env_sig;
	size_t		 env_sig_len;
	msgpack_object	 env_x5c;		/* array of bin, or nil when absent */
	msgpack_object	 env_claims;		/* decoded payload map */
};
/*
 * Parses an envelope and checks its structure: array of three bin, canonical
 * protected map with a known alg, a 32-byte kid, typ equal to want_typ (when
 * not NULL), canonical payload map, no trailing bytes.  Does not verify the
 * signature.  On failure *why is a static sentence.  Everything in env lives
 * in z.
 */
int		 envelope_parse(const void *buf, size_t len, msgpack_zone *z, const char *want_typ,
		    struct envelope *env, const char **why);
/* Verifies env's signature with pub, whose algorithm must match env_alg. */
int		 envelope_verify(const struct envelope *env, EVP_PKEY *pub);
/* The to-be-signed bytes for a protected/payload pair; *tbs is malloc'ed. */
int		 envelope_tbs(const void *prot, size_t plen, const void *payload, size_t paylen,
		    uint8_t **tbs, size_t *tbslen);

/* merkle.c: RFC 6962 / RFC 9162 Merkle trees */
enum mk_hash {
	MK_SHA256 = 0,
	MK_SM3
};
#define MK_MAX_PATH	64
void		 merkle_hash(enum mk_hash, const void *, size_t, uint8_t out[32]);
/* SHA-256(0x00 || data) */
void		 merkle_leaf_hash(enum mk_hash, const void *data, size_t len, uint8_t out[32]);
/* SHA-256(0x01 || left || right) */
void		 merkle_node_hash(enum mk_hash, const uint8_t l[32], const uint8_t r[32], uint8_t out[32]);
/* Root of n leaf hashes; the root of the empty tree is the hash of "". */
void		 merkle_root(enum mk_hash, const uint8_t (*leaves)[32], uint64_t n, uint8_t out[32]);

/*
 * The compact range of a growing tree: the roots of its perfect subtrees,
 * largest first (one per set bit of size).  Appending is O(log n).
 */
struct merkle_cr {
	uint64_t	cr_size;
	int		cr_n;
	uint8_t		cr_peak[64][32];
};
void		 merkle_cr_init(struct merkle_cr *);
void		 merkle_cr_append(enum mk_hash, struct merkle_cr *, const uint8_t leaf[32]);
void		 merkle_cr_root(enum mk_hash, const struct merkle_cr *, uint8_t out[32]);
/*
 * Sets cr to the tree of size leaves with the n peaks given (largest first,
 * copied), as stored by a caller; -1, and cr unchanged, unless n is the
 * number of peaks such a tree has (one per set bit of size).
 */
int		 merkle_cr_set(struct merkle_cr *, uint64_t size, const uint8_t peaks[][32],
		    size_t n);
/*
 * merkle_cr_append that also returns the perfect subtrees the leaf completed:
 * nodes[l - 1] (when nodes is not NULL; it holds 64 hashes) is the root of the
 * 2^l leaves ending with this one, for l = 1 .. the returned count.  That node
 * is number (size_after >> l) - 1 of level l.
 */
int		 merkle_cr_append_nodes(enum mk_hash, struct merkle_cr *, const uint8_t leaf[32],
		    uint8_t nodes[][32]);

/* Reads leaf hash idx into out; returns 0 or -1. */
typedef int	(*merkle_leaf_fn)(void *arg, uint64_t idx, uint8_t out[32]);
/*
 * Hash of the subtree [start, start + len) read through fn (RFC 6962 MTH);
 * used for proofs.  Proof arrays hold at most MK_MAX_PATH hashes.
 */
int		 merkle_subtree(enum mk_hash, merkle_leaf_fn, void *, uint64_t start, uint64_t len,
		    uint8_t out[32]);
int		 merkle_inclusion_proof(enum mk_hash, merkle_leaf_fn, void *, uint64_t idx,
		    uint64_t size, uint8_t path[][32], size_t *npath);
int		 merkle_consistency_proof(enum mk_hash, merkle_leaf_fn, void *, uint64_t first,
		    uint64_t second, uint8_t path[][32], size_t *npath);
/*
 * Reads the stored root of perfect subtree number index of level (>= 1): the
 * 2^level leaves from index << level on.  Returns 0, 1 when that node is not
 * stored (it is then computed from the level below, down to leaves), or -1.
 */
typedef int	(*merkle_node_fn)(void *arg, unsigned level, uint64_t index, uint8_t out[32]);
/*
 * The same results as merkle_subtree and the proofs above, reading stored
 * perfect subtrees through node_fn (NULL: leaves only).  With every complete
 * node stored a subtree costs O(log n) reads and a proof O(log^2 n).  Both fn
 * and node_fn receive arg.
 */
int		 merkle_subtree_nodes(enum mk_hash, merkle_leaf_fn, merkle_node_fn, void *,
		    uint64_t start, uint64_t len, uint8_t out[32]);
int		 merkle_inclusion_proof_nodes(enum mk_hash, merkle_leaf_fn, merkle_node_fn, void *,
		    uint64_t idx, uint64_t size, uint8_t path[][32], size_t *npath);
int		 merkle_consistency_proof_nodes(enum mk_hash, merkle_leaf_fn, merkle_node_fn,
		    void *, uint64_t first, uint64_t second, uint8_t path[][32], size_t *npath);
/* RFC 9162 §2.1.3.2: 0 when the path proves leaf idx in a tree of size with root. */
int		 merkle_verify_inclusion(enum mk_hash, const uint8_t leaf[32], uint64_t idx,
		    uint64_t size, const uint8_t path[][32], size_t npath, const uint8_t root[32]);
/* RFC 9162 §2.1.4.2 */
int		 merkle_verify_consistency(enum mk_hash, uint64_t first, uint64_t second,
		    const uint8_t root1[32], const uint8_t root2[32], const uint8_t path[][32],
		    size_t npath);
/* Root from a leaf, its index and a path (used by the inclusion check). */
int		 merkle_root_from_path(enum mk_hash, const uint8_t leaf[32], uint64_t idx,
		    uint64_t size, const uint8_t path[][32], size_t npath, uint8_t out[32]);

/* worker.c: crypto and parsing off the event loop */
struct workers;
struct workers	*workers_new(int nthreads);
/* Runs the queued jobs, then joins the threads. */
void		 workers_free(struct workers *);
/*
 * Runs work(arg) on a worker thread, then done(arg) on base's event loop.
 * done may be NULL.
 */
int		 workers_submit(struct workers *, struct event_base *base,
		    void (*work)(void *), void (*done)(void *), void *arg);
/* Jobs waiting for a thread now (metrics); any thread. */
size_t		 workers_queued(struct workers *);
/* Runs fn(arg) on base's loop; safe from any thread (libevent locking on). */
int		 loop_post(struct event_base *base, void (*fn)(void *), void *arg);

/*
 * journal.c, journal_read.c, journal_restore.c, journal_revoke.c: the audit
 * journal (docs/contract.md §7)
 */
enum jkind {
	JK_EXCHANGE = 0,
	JK_ITEM,
	JK_DENY,
	JK_ADAPTER,
	JK_POLICY,
	JK_AUDIT_READ,
	JK_REVOKE,
	JK_VERIFY
};
const char	*journal_kind_name(enum jkind);

/* One journal record.  Fields whose has_ flag is false are omitted. */
struct jrec {
	enum jkind	jr_kind;
	uint64_t	jr_t_ms;
	bool		jr_has_exch, jr_has_subject, jr_has_actor, jr_has_consent;
	bool		jr_has_doc, jr_has_claim, jr_has_latency;
	uint8_t		jr_exch[16];
	uint8_t		jr_subject[32];
	uint8_t		jr_actor[32];
	uint8_t		jr_consent[32];
	uint8_t		jr_doc[32];
	uint8_t		jr_claim[32];
	int64_t		jr_latency_us;
	char		jr_consumer[LB_ID_MAX];	/* "" = omitted, likewise below */
	char		jr_dept[LB_ID_MAX];
	char		jr_item[LB_ITEM_MAX];
	char		jr_bundle[LB_ID_MAX];
	char		jr_rel[16];
	char		jr_decision[8];		/* "allow" / "deny" */
	char		jr_code[40];		/* error code or "ok" */
	/* Adapter and policy changes: what changed, to which version, by whom. */
	char		jr_id[LB_ID_MAX];	/* "id": adapter id */
	char		jr_op[16];		/* "op": "put" / "disable" */
	char		jr_principal[16 + LB_ID_MAX];	/* "principal": "role:id" */
	bool		jr_has_version, jr_has_spec;
	uint64_t	jr_version;		/* "version" */
	uint8_t		jr_spec[32];		/* "spec": SHA-256 of the canonical spec */
	/* Refusals journaled together rather than one record each. */
	bool		jr_has_count;
	uint64_t	jr_count;		/* "count" */
	/*
	 * Verification answers: "predicate": {"field", "op"}, never its value,
	 * which may be another person's id.
	 */
	char		jr_pred_field[LB_ITEM_MAX];	/* "" = no predicate */
	char		jr_pred_op[16];
};
/* Canonical record bytes for seq (appended to out). */
int		 journal_record_pack(const struct jrec *, uint64_t seq, msgpack_sbuffer *out);

struct journal;
struct consent;
/* Most records one journal_append may carry, and one group commit holds. */
#define JOURNAL_BATCH_MAX 8192
struct journal_config {
	const char	*jc_dir;		/* LMDB directory, created (0700) if missing */
	const char	*jc_origin;		/* gateway id, or GATEWAY_ID/NODE_ID */
	EVP_PKEY	*jc_ckpt_key;		/* checkpoint signing key (the journal takes a reference) */
	X509		*jc_ckpt_cert;		/* its certificate (likewise) */
	const uint8_t	*jc_hmac_key;		/* pseudonym key (copied), at least 16 bytes */
	size_t		 jc_hmac_key_len;
	size_t		 jc_map_size;		/* initial LMDB map size, 0 = 1 GiB; grows by doubling */
	size_t		 jc_map_max;		/* up to this many bytes; 0 = no limit of its own */
};
/*
 * Opens (or creates) the journal, checks the stored tree against the stored
 * records, and starts the writer thread.  Fails with a sentence in err.
 */
struct journal	*journal_open(const struct journal_config *, char *err, size_t errlen);
/* What a journal directory holds (journal_inspect). */
struct journal_info {
	uint64_t	ji_size;		/* records, the size of the committed tree */
	uint64_t	ji_ckpt_size;		/* what the latest checkpoint covers */
};
/*
 * Reads the journal in dir without opening it for writing: the size of its
 * committed tree, checked against the numbers of records and leaves stored,
 * and of its latest checkpoint, whose root must be the tree's when both are
 * of one size.  For a copy no process uses (a backup): it takes no LMDB
 * lock.  Fails with a sentence in err.
 */
int		 journal_inspect(const char *dir, struct journal_info *, char *err,
		    size_t errlen);
/*
 * Commits everything queued, joins the writer and closes LMDB.  Completions
 * of the last commits are posted to their loops, which must still run them.
 */
void		 journal_close(struct journal *);
/*
 * HMAC-SHA256(journal key, id): the pseudonym stored for subjects and actors.
 * Aborts if OpenSSL cannot allocate, like any allocation failure.
 */
void		 journal_pseudonym(const struct journal *, const char *id, uint8_t out[32]);

/*
 * Completion of an append, on the event loop of the base given: status 0
 * when the records are durable (first_seq is the seq of recs[0], the others
 * follow), -1 when the journal could not commit them.
 */
typedef void	(*journal_done_fn)(void *arg, int status, uint64_t first_seq);
/*
 * Queues n records (copied; 1 <= n <= JOURNAL_BATCH_MAX) for the writer
 * thread's next group commit.  Returns -1, and fn is never called, when a
 * record has an unknown kind, the queue is full or the journal is closing.
 * With a NULL base fn runs on the writer thread; fn may be NULL.
 */
int		 journal_append(struct journal *, struct event_base *, const struct jrec *recs,
		    size_t n, journal_done_fn, void *arg);
/*
 * Consent jti claims (journal_claim.c).  A token serves one request: its jti
 * is reserved in memory, atomically within the process, and written to the
 * journal's jti table (kept until keep_until, unix seconds) by the group
 * commit that holds the request's records, so one fdatasync covers both.
 *
 * journal_jti_reserve returns 0 when the jti is reserved now: the caller
 * holds the reservation until it hands it to journal_append_claims or gives
 * it back with journal_jti_release.  1: the jti was used before (committed,
 * or reserved by a request in flight); 2: keep_until has passed (the token
 * expired on its way: refuse it); -1: the journal could not be read.  Any
 * thread; it reads LMDB, so call it on a worker.
 */
int		 journal_jti_reserve(struct journal *, const uint8_t jti[16], uint64_t keep_until);
void		 journal_jti_release(struct journal *, const uint8_t jti[16]);
/* A reserved jti to write with records; the most one append carries. */
struct jclaim {
	uint8_t		jl_jti[16];
	uint64_t	jl_keep_until;
};
#define JOURNAL_CLAIMS_MAX LB_MAX_SUBJECTS
/*
 * journal_append with the reserved jtis of claims (0 <= nclaims <=
 * JOURNAL_CLAIMS_MAX; n may be 0 when nclaims is not) written in the same
 * transaction.  From the call on the journal owns the reservations: it drops
 * them once that transaction committed or failed (fn's status), or at once
 * when it returns -1.
 */
int		 journal_append_claims(struct journal *, struct event_base *,
		    const struct jrec *recs, size_t n, const struct jclaim *claims,
		    size_t nclaims, journal_done_fn, void *arg);
/* Number of records committed. */
uint64_t	 journal_size(struct journal *);
/* What the writer has done since journal_open (metrics); any thread. */
struct journal_stats {
	uint64_t	js_size;	/* journal_size */
	uint64_t	js_commits;	/* group commits that succeeded */
	uint64_t	js_failures;	/* and that failed */
	uint64_t	js_records;	/* records they committed */
	uint64_t	js_commit_us;	/* time in them, from begin to durable */
	uint64_t	js_sync_us;	/* of that, in mdb_txn_commit (its fsync) */
	uint64_t	js_map_used;	/* bytes of the map in use */
	uint64_t	js_map_size;	/* bytes of the map */
	uint64_t	js_jti;		/* consent jti kept against replay */
	uint64_t	js_jti_pending;	/* and reserved, awaiting their commit */
};
void		 journal_stats(struct journal *, struct journal_stats *);
/*
 * Whether the journal can take records (readiness, any thread): the last
 * commit failed (appends see -1 until one succeeds), and how much of the
 * most the map may grow to is in use.
 */
struct journal_state {
	bool		js_failing;
	uint64_t	js_map_used;	/* bytes */
	uint64_t	js_map_limit;	/* bytes: the growth limit, or the map if larger */
};
void		 journal_state(struct journal *, struct journal_state *);
/* Changes jc_map_max (a reload); the next commit that needs room grows to it. */
void		 journal_set_map_max(struct journal *, size_t max);
/*
 * Consent revocations (POST /v1/revocations), kept in the journal's LMDB
 * environment.  key is 'j' || jti (17 bytes) or 's' || subject pseudonym ||
 * bundle; a token matches a subject revocation when its iat is at or
 * before revoked_at.
 *
 * journal_revoke queues a revocation (kept until keep_until, unix seconds)
 * for the writer thread, with rec (copied; NULL for none), the record that
 * says who revoked what: both are stored in one group commit, so the
 * revocation is in force exactly when its record is durable.  A stored
 * revocation time only moves forward; an older revocation of the same key
 * changes nothing and still succeeds.  The commit also removes a few
 * expired revocations.  fn runs as for journal_append (first_seq: rec's
 * seq when there is one), in queue order with appends and claims.  Returns
 * -1, and fn is never called, for a key of bad length, a record of unknown
 * kind, a full queue or a closing journal.
 *
 * journal_revoked returns 1 when a matching revocation exists (*revoked_at
 * set), 0 when none, -1 on failure.  Any thread.
 */
#define JOURNAL_REVOKE_KEY_MAX	(1 + 32 + LB_ID_MAX)
int		 journal_revoke(struct journal *, struct event_base *, const uint8_t *key,
		    size_t keylen, uint64_t revoked_at, uint64_t keep_until,
		    const struct jrec *rec, journal_done_fn fn, void *arg);
int		 journal_revoked(struct journal *, const uint8_t *key, size_t keylen,
		    uint64_t *revoked_at);
/* The revocation key of a jti (when not NULL) or of (subject, bundle). */
int		 journal_revoke_key(const struct journal *, const uint8_t *jti,
		    const char *subject, const char *bundle,
		    uint8_t key[JOURNAL_REVOKE_KEY_MAX], size_t *keylen);
/*
 * Parties: who acted for a citizen, kept outside the Merkle log in the
 * journal's LMDB environment so that the access report can name an agent
 * while the records hold only the actor's pseudonym.  journal_party_note
 * queues, for the writer thread, act's pseudonym -> {"id": act masked to
 * its first 6 and last 4 characters, "name": name (cut to
 * JOURNAL_PARTY_NAME_MAX - 1 bytes; "" for none)}; it is stored in the
 * next group commit, in queue order with the records appended after it,
 * and replaces an older entry.  Nothing is called back: -1 when it could
 * not be queued (full queue, closing journal, act not 1 to
 * LB_SUBJECT_MAX - 1 bytes).  journal_party_get reads the entry of an
 * actor pseudonym into id and name: 1 when there is one, 0 when none, -1
 * on failure.  Any thread.
 */
#define JOURNAL_PARTY_NAME_MAX	128
int		 journal_party_note(struct journal *, const char *act, const char *name);
int		 journal_party_get(struct journal *, const uint8_t actor[32],
		    char id[LB_SUBJECT_MAX], char name[JOURNAL_PARTY_NAME_MAX]);
/* act masked to its first 6 and last 4 characters ("110101********1234"). */
void		 journal_party_mask(const char *act, char out[LB_SUBJECT_MAX]);
/*
 * LB_OK, or consent_revoked when the token or the citizen's consent to its
 * bundle (up to its iat) was revoked; journal_unavailable when the list
 * cannot be read.  Reads LMDB: workers, not the loop.
 */
enum lb_err	 journal_revoke_check(struct journal *, const struct consent *, char *msg,
		    size_t msglen);
/*
 * The latest signed checkpoint: *env is malloc'ed envelope bytes.  A new
 * journal signs its empty tree (size 0, root SHA-256 of "") when it is
 * opened, so -1 means the journal cannot be read, or signing failed while
 * it is still empty.  Any thread.
 */
int		 journal_checkpoint(struct journal *, uint8_t **env, size_t *envlen, uint64_t *size,
		    uint8_t root[32], uint64_t *t_ms);
/*
 * A stored signed checkpoint, and the compact range of the tree it signs:
 * its peaks, the roots of the perfect subtrees the first jk_size records
 * make, largest first (one per set bit of jk_size), from which the records
 * after them can be hashed into any later tree (journal archives).
 */
struct journal_ckpt {
	uint8_t		*jk_env;		/* malloc'ed envelope bytes */
	size_t		 jk_envlen;
	uint64_t	 jk_size;
	uint8_t		 jk_root[32];
	uint64_t	 jk_t_ms;
	uint8_t		 jk_peaks[64][32];
	size_t		 jk_npeaks;
};
/*
 * The newest stored checkpoint of at most max_size records (every signed
 * checkpoint is kept, by size) with its compact range, read from the stored
 * subtrees and checked against the signed root.  0; 1 when no checkpoint is
 * that small; -1 when the journal cannot be read or disagrees with it.  The
 * caller frees ck->jk_env.  Any thread.
 */
int		 journal_checkpoint_upto(struct journal *, uint64_t max_size,
		    struct journal_ckpt *ck);
/*
 * Calls fn for the record bytes of seq in [start, end), all from one read
 * transaction; rec is valid only during the call.  A non-zero return from fn
 * stops the walk and makes journal_leaves return -1, as does end beyond the
 * committed size.  fn must not call back into the journal.  Any thread.
 */
typedef int	(*journal_leaf_cb)(void *arg, uint64_t seq, const void *rec, size_t len);
int		 journal_leaves(struct journal *, uint64_t start, uint64_t end, journal_leaf_cb,
		    void *arg);
/*
 * RFC 9162 proofs over the committed tree, read in one transaction; path
 * holds MK_MAX_PATH hashes.  -1 for sizes beyond the committed size, seq >=
 * size, or first > second.  Any thread.
 */
int		 journal_inclusion(struct journal *, uint64_t seq, uint64_t size,
		    uint8_t path[][32], size_t *npath);
int		 journal_consistency(struct journal *, uint64_t first, uint64_t second,
		    uint8_t path[][32], size_t *npath);
/*
 * Root of the tree of the first size records: O(log size) stored nodes (a
 * signed checkpoint or the compact range when size is one of theirs).  Any
 * thread.
 */
int		 journal_root_at(struct journal *, uint64_t size, uint8_t root[32]);
/*
 * A records query (GET /v1/journal/records).  Every filter that is set must
 * match: the subject pseudonym, consumer, department, item, kind and result
 * code ("" = any) and since_ms <= t_ms < until_ms (until_ms 0 = no bound).  Only records
 * after seq jf_after (when jf_has_after) and before seq jf_before (when
 * jf_has_before) are considered.  jf_newest_first walks from the newest
 * record down.
 */
struct journal_filter {
	bool		jf_has_subject;
	uint8_t		jf_subject[32];
	char		jf_consumer[LB_ID_MAX];
	char		jf_dept[LB_ID_MAX];
	char		jf_item[LB_ITEM_MAX];
	char		jf_kind[16];		/* "kind", e.g. "deny" */
	char		jf_code[40];		/* "code", e.g. "ok" */
	uint64_t	jf_since_ms, jf_until_ms;
	bool		jf_has_after;
	uint64_t	jf_after;
	bool		jf_has_before;
	uint64_t	jf_before;
	bool		jf_newest_first;
	size_t		jf_limit;		/* 0 or above 1000: 1000 */
};
/*
 * Calls fn, in seq order (descending with jf_newest_first), for the
 * matching records, at most jf_limit of them, all from one read transaction
 * through the indexes the writer keeps.  A call examines a bounded number
 * of records: when it stops with more to examine, *more is true and *next
 * is the seq to pass as jf_after (jf_before when newest first) to go on.
 * fn is as for journal_leaves.  Any thread.
 */
int		 journal_query(struct journal *, const struct journal_filter *, journal_leaf_cb fn,
		    void *arg, bool *more, uint64_t *next);
/*
 * Decodes stored record bytes into *dec (in z) for showing them.  NULL when
 * the record can be shown as JSON; otherwise a sentence saying why not
 * (static text), with *dec the record decoded without the text check, or
 * nil when even that fails.  Such records come only from journals written
 * by versions that did not check text at decode time.
 */
const char	*journal_record_decode(const void *rec, size_t len, msgpack_zone *z,
		    msgpack_object *dec);
/*
 * One record as GET /v1/journal/records and lianctl journal pull show it,
 * built in z (rec is copied): {"seq", "leaf": the record bytes, "record":
 * the decoded map}, or, for a record JSON cannot show (journal_record_decode),
 * {"seq", "leaf", "record_raw": the same bytes, "record_error": the
 * sentence}, so that one such record never fails a read (docs/audit.md).
 */
void		 journal_record_show(msgpack_zone *z, uint64_t seq, const void *rec, size_t len,
		    msgpack_object *out);
/*
 * journal_witness.c: what a node of a cluster keeps about its peers' journals
 * (docs/audit.md), in a named database of the journal's environment, outside
 * the Merkle log: the last checkpoint of each peer it verified, its
 * cosignatures and the evidence of inconsistent checkpoints.  Keys are a
 * one-byte tag and what follows (witness.c defines them), values are bytes.
 * journal_witness_put queues the pair for the writer, which stores it in its
 * next group commit; fn runs as for journal_append (first_seq is 0).  -1
 * when the key or value is empty or too long, the queue is full or the
 * journal is closing.
 */
#define JOURNAL_WITNESS_KEY_MAX	256
#define JOURNAL_WITNESS_VAL_MAX	(64 * 1024)
int		 journal_witness_put(struct journal *, struct event_base *, const uint8_t *key,
		    size_t keylen, const uint8_t *val, size_t vallen, journal_done_fn fn,
		    void *arg);
/*
 * Calls fn for each stored pair whose key starts with prefix, in key order,
 * from one read transaction; key and val are valid only during the call.  A
 * non-zero return from fn stops the walk (the return is then 0).  -1 when
 * the journal cannot be read.  Any thread.
 */
typedef int	(*journal_witness_fn)(void *arg, const uint8_t *key, size_t keylen,
		    const uint8_t *val, size_t vallen);
int		 journal_witness_each(struct journal *, const uint8_t *prefix, size_t prefixlen,
		    journal_witness_fn fn, void *arg);

/* cosign.c: checkpoints of a cluster's nodes and their cosignatures (docs/audit.md) */
#define COSIGN_TYP	"cosignature"
/* A checkpoint's payload, once its envelope verified. */
struct ckpt_view {
	char		cv_origin[LB_ORIGIN_MAX];
	uint64_t	cv_size;
	uint8_t		cv_root[32];
	uint64_t	cv_t_ms;
};
/* A cosignature's payload: witness saw origin's tree of size records with root. */
struct cosig {
	char		co_origin[LB_ORIGIN_MAX];
	uint64_t	co_size;
	uint8_t		co_root[32];
	uint64_t	co_t_ms;		/* when the witness signed */
	char		co_witness[LB_ORIGIN_MAX];
};
/*
 * Checks a checkpoint envelope: typ "checkpoint", signed by cert's key, the
 * signature verifies, the payload is exactly {origin, size, root, t_ms}.
 * -1 with a sentence in err.
 */
int		 cosign_ckpt_check(const uint8_t *env, size_t len, X509 *cert, struct ckpt_view *,
		    char *err, size_t errlen);
/* Signs co as a cosignature envelope, appended to out.  Workers, not the loop. */
int		 cosign_make(EVP_PKEY *key, const uint8_t kid[32], const struct cosig *co,
		    msgpack_sbuffer *out);
/*
 * Checks a cosignature envelope like a checkpoint's (typ "cosignature", the
 * payload exactly {origin, size, root, t_ms, witness}, witness not origin)
 * and decodes it into *co.  Whether it names the right checkpoint is the
 * caller's to compare.  -1 with a sentence in err.
 */
int		 cosign_check(const uint8_t *env, size_t len, X509 *cert, struct cosig *co,
		    char *err, size_t errlen);
/* The checkpoint origin of a gateway: GATEWAY_ID, or GATEWAY_ID/NODE_ID with a node. */
int		 cosign_origin(const char *gateway, const char *node, char *out, size_t outlen);

/*
 * translate_spec.c, translate.c: adapter specs and the mapping of department
 * answers to canonical documents (docs/contract.md §6, §9).  The source formats, the
 * conversions and the template engine behind them are declared in
 * translate_impl.h, private to the translate files.
 */
enum src_format {
	SRC_JSON = 1,
	SRC_XML,
	SRC_CSV,
	SRC_FIXED,
	SRC_MSGPACK
};
#define LB_SEL_MAX	256	/* one source selector: JSON pointer, XPath, column, ... */

/*
 * The optional record selector of multi-record answers (docs/formats.md):
 * the record whose key equals the requested subject is the one translated,
 * and field selectors are relative to it.  The syntax of both selectors
 * belongs to the format: for JSON, rs_list points to an array and rs_key
 * into each of its elements; for XML rs_list is an XPath of the record
 * elements; for CSV and fixed-width records rs_key names a column or field.
 */
struct src_record {
	bool		 rs_set;
	char		 rs_list[LB_SEL_MAX];
	char		 rs_key[LB_SEL_MAX];
};

/* An XML namespace prefix the adapter's XPath selectors use ("namespaces"). */
#define SRC_NS_MAX	16
struct src_ns {
	char		 xn_prefix[LB_ID_MAX];
	char		 xn_uri[LB_SEL_MAX];
};

struct mapping;		/* opaque: the compiled document templates of an adapter */
struct adapter {
	char		 ad_id[LB_ID_MAX];
	char		 ad_dept[LB_ID_MAX];
	char		 ad_items[LB_MAX_ITEMS][LB_ITEM_MAX];
	size_t		 ad_nitems;
	char		 ad_endpoint[LB_URL_MAX];	/* with {subject} (and {item}) */
	unsigned	 ad_timeout_ms;
	enum src_format	 ad_format;
	char		 ad_encoding[16];		/* utf-8, gbk, gb18030 */
	char		 ad_seal[LB_ID_MAX];		/* seal id used for its documents */
	struct src_record ad_record;			/* rs_set false: one record */
	struct src_ns	 ad_ns[SRC_NS_MAX];		/* xml: declared prefixes */
	size_t		 ad_nns;
	char		 ad_delim;			/* csv: field delimiter, default ',' */
	uint64_t	 ad_version;			/* set by the registry */
	bool		 ad_disabled;
	bool		 ad_registered;			/* through the API (config.c): its
							   endpoint obeys the endpoint list */
	struct mapping	*ad_map;
	uint8_t		*ad_spec;			/* canonical msgpack of the spec */
	size_t		 ad_spec_len;
};
/*
 * Compiles an adapter spec (docs/formats.md) given as a msgpack
 * map (from a JSON file or an API body).  *out is owned by the caller; the
 * adapter borrows nothing from spec.  On failure err holds a sentence meant
 * for the department's developer.
 */
int		 adapter_parse(const msgpack_object *spec, struct adapter **out, char *err,
		    size_t errlen);
void		 adapter_free(struct adapter *);
bool		 adapter_serves(const struct adapter *, const char *item);
/*
 * The department URL for one (subject, item) into buf: {subject} and {item}
 * are replaced, percent-encoded (RFC 3986 unreserved characters are kept).
 * -1 when the subject is empty or too long, or the URL does not fit.
 */
int		 adapter_url(const struct adapter *, const char *item, const char *subject,
		    char *buf, size_t bufsz);
/* "json", "xml", "csv", "fixed", "msgpack" */
const char	*src_format_name(enum src_format);
/*
 * Translates a department answer into the canonical document of item for
 * subject (docs/contract.md §6).  Returns LB_OK, LB_E_DEPARTMENT_BAD_RESPONSE (malformed,
 * oversized, wrongly encoded, a required field missing) or
 * LB_E_SUBJECT_MISMATCH (holder.id is not subject), with a sentence in err;
 * LB_E_NO_ADAPTER when the adapter does not serve item, LB_E_INTERNAL when
 * memory runs out.  Messages never
 * quote values from the answer.  The document lives in z (nothing in it
 * points into the adapter or body).  Thread-safe: the adapter is read only.
 */
enum lb_err	 translate(const struct adapter *, const char *item, const char *subject,
		    const void *body, size_t len, msgpack_zone *z, msgpack_object *doc,
		    char *err, size_t errlen);

/*
 * endpoint.c: where a department endpoint points (docs/formats.md).  The
 * adapter specs, the fan-out and the operator's endpoint list share it, so
 * the host a spec was checked for is the host the gateway connects to.
 */
struct sockaddr;
/* An IP address; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is IPv4. */
struct netaddr {
	int		na_family;		/* AF_INET or AF_INET6 */
	uint8_t		na_bytes[16];		/* network order; IPv4 in the first 4 */
};
struct endpoint {
	bool		ep_tls;			/* https */
	char		ep_host[256];		/* a DNS name (lower case) or the IP address
						   as written, without brackets */
	bool		ep_literal;		/* ep_host is an IP address: ep_addr */
	struct netaddr	ep_addr;
	int		ep_port;		/* as written, else 80 or 443 */
	char		ep_authority[264];	/* host[:port] as written: the Host header */
	size_t		ep_path;		/* where the path or query starts in the URL */
};
/*
 * Parses the scheme and authority of an http:// or https:// URL: a DNS name,
 * a dotted IPv4 address or a bracketed IPv6 address, and an optional port;
 * user information is refused.  The rest of the URL is not read.  err (may
 * be NULL) gets a sentence.
 */
int		 endpoint_parse(const char *url, struct endpoint *, char *err,
		    size_t errlen);
/*
 * Splits the len bytes at s, "HOST", "HOST:PORT", "[HOST]" or "[HOST]:PORT",
 * into host (NUL-terminated, without brackets) and *port (0 when none).
 */
int		 endpoint_hostport(const char *s, size_t len, char *host, size_t hostsz,
		    bool *bracketed, int *port, char *err, size_t errlen);
/*
 * What host is: an IP address (*literal, in addr; a bracketed host must be
 * IPv6) or a DNS name, lower-cased in place.
 */
int		 endpoint_host(char *host, bool bracketed, bool *literal, struct netaddr *addr,
		    char *err, size_t errlen);
/* The address of an AF_INET or AF_INET6 socket address; -1 for other families. */
int		 endpoint_addr_from(const struct sockaddr *, struct netaddr *);
/* The address as text, without brackets ("::1", "127.0.0.1"). */
int		 endpoint_addr_text(const struct netaddr *, char *buf, size_t bufsz);
/* True when a lies in the network net/prefix of its own family. */
bool		 endpoint_addr_in(const struct netaddr *a, const struct netaddr *net,
		    unsigned prefix);

/* trust.c: trusted certificates (docs/security.md, §12) */
struct trust_authority {
	char		 ta_name[LB_ID_MAX];	/* authority id = the certificate's CN */
	X509		*ta_cert;
	uint8_t		 ta_kid[32];
};
struct trust {
	struct trust_authority	*t_auth;	/* face-auth authorities (consent) */
	size_t			 t_nauth;
	X509_STORE		*t_seal_roots;
	X509			*t_ckpt_cert;
	/* Client certificates (trust_load_clients); NULL until loaded. */
	X509_STORE		*t_clients;	/* the client CAs, and their CRLs */
	STACK_OF(X509_NAME)	*t_client_names; /* the CAs' subjects, for the handshake */
	size_t			 t_ncrls;	/* CRLs in t_clients (0: no CRL check) */
};
/* Loads DIR/trust/consent/ *.pem, DIR/seal-root.pem, DIR/journal/checkpoint.pem. */
struct trust	*trust_load(const char *certsdir, char *err, size_t errlen);
void		 trust_free(struct trust *);
/*
 * Loads the CAs of client certificates (every certificate of the PEM file
 * cafile) into t, and the CRLs of the PEM file crlfile when it is not NULL:
 * each CRL must be signed by one of those CAs and each CA needs one, and
 * then every client certificate is checked against them (X509_V_FLAG_CRL_
 * CHECK).  With crl_optional a crlfile that does not exist means no CRL.
 */
int		 trust_load_clients(struct trust *, const char *cafile, const char *crlfile,
		    bool crl_optional, char *err, size_t errlen);
/*
 * Whether cert (with chain, the untrusted certificates the peer sent, or
 * NULL) is a client certificate of the CAs of t, valid now, for TLS client
 * authentication, and not revoked by their CRLs.  On -1 why says why.
 */
int		 trust_client_check(const struct trust *, X509 *cert, STACK_OF(X509) *chain,
		    char *why, size_t whylen);
const struct trust_authority *trust_authority(const struct trust *, const uint8_t kid[32]);
/*
 * Whether an authority's certificate may sign at unix time when: inside its
 * validity period, and with a key usage extension, if it has one, that
 * allows digitalSignature.  On -1 *why is a phrase ("expired", ...).
 */
int		 trust_authority_usable(const struct trust_authority *, int64_t when,
		    const char **why);

/*
 * subject_id.c: the ids a subject may have.  Each takes a NUL-terminated
 * string and checks its length, characters and check character.
 */
#define SUBJECT_ID_LEN	18	/* both kinds of id */
/* A resident ID number (GB 11643): 17 digits and a check digit or X. */
bool		 subject_id_resident(const char *id);
/* A unified social credit code (GB 32100): 18 characters of 0-9 A-Y without I O S V Z. */
bool		 subject_id_uscc(const char *id);
/*
 * The date of birth in digits 7 to 14 of a resident ID number of 18
 * characters whose first 17 are digits; -1 when there is no real date
 * from 1900 there.
 */
int		 subject_id_birth(const char *id, int *y, int *m, int *d);
/*
 * An enterprise: a valid unified social credit code that is not shaped
 * like a resident ID number (17 digits, a digit or X, a date of birth in
 * digits 7 to 14).  A code of digits alone could be either; a person, even
 * with a mistyped ID number, is never taken for an enterprise.
 */
bool		 subject_id_enterprise(const char *id);

/* policy.c: bundle policies (docs/consent.md) */
#define POLICY_MAX_FIELDS	48
#define POLICY_MAX_CONSUMERS	16
#define POLICY_MAX_PROOFS	4
#define POLICY_MAX_AMR		8	/* methods an assurance may require */
#define POLICY_AMR_LEN		16	/* bytes of a method name ("face"), NUL included */
/*
 * A record that proves a relation (guardian, legal representative, agent):
 * one of fields names the person acting for the subject.
 */
struct policy_proof {
	char	pp_item[LB_ITEM_MAX];
	char	pp_dept[LB_ID_MAX];	/* "" = the department the policy names for the item */
	char	pp_fields[4][LB_ITEM_MAX];
	size_t	pp_nfields;
};
/*
 * The relations a consent token's rel may name besides "self", each
 * proven by a record the policy names (docs/consent.md).
 */
enum policy_rel {
	POLICY_REL_GUARDIAN,	/* act is the guardian of the minor sub */
	POLICY_REL_LEGAL_REP,	/* act is the legal representative of the enterprise sub */
	POLICY_REL_AGENT,	/* act applies for sub under a recorded delegation */
	POLICY_REL__COUNT
};
struct policy_relation {
	bool			rl_allowed;
	struct policy_proof	rl_proofs[POLICY_MAX_PROOFS];
	size_t			rl_nproofs;
};
struct policy_item {
	char	pi_item[LB_ITEM_MAX];
	char	pi_dept[LB_ID_MAX];
	char	pi_fields[POLICY_MAX_FIELDS][LB_ITEM_MAX];	/* released "fields" keys */
	size_t	pi_nfields;
	/*
	 * "verify": the fields a verification may ask about, each with the
	 * operators allowed on it (a bit 1 << enum pred_op each); a field may
	 * be verifiable without being released.
	 */
	char	pi_vfields[POLICY_MAX_FIELDS][LB_ITEM_MAX];
	unsigned pi_vops[POLICY_MAX_FIELDS];
	size_t	pi_nvfields;
};
struct policy {
	char			po_bundle[LB_ID_MAX];
	char			po_name[128];
	char			po_purpose[512];
	char			po_consumers[POLICY_MAX_CONSUMERS][LB_ID_MAX];
	size_t			po_nconsumers;
	struct policy_item	po_items[LB_MAX_ITEMS];
	size_t			po_nitems;
	char			po_amr[POLICY_MAX_AMR][POLICY_AMR_LEN];
	size_t			po_namr;
	int64_t			po_min_liveness, po_min_match;
	uint64_t		po_version;	/* set by the registry; files are 1 */
	/* The policy's "guardian", "legal_rep" and "agent" sections. */
	struct policy_relation	po_rel[POLICY_REL__COUNT];
	/* Token bucket per consumer; 0 = no limit. */
	uint32_t		po_rate_per_s;
	uint32_t		po_rate_burst;
	uint8_t			*po_spec;	/* canonical msgpack of the policy */
	size_t			 po_spec_len;
};
/*
 * Compiles a policy spec (docs/consent.md) given as a msgpack
 * map.  *out is owned by the caller (policy_free); it borrows nothing from
 * spec.  On failure err holds a sentence meant for the policy's author.
 */
int		 policy_parse(const msgpack_object *, struct policy **, char *err, size_t errlen);
void		 policy_free(struct policy *);
/* The policy's entry of item; NULL when the bundle does not contain it. */
const struct policy_item *policy_item(const struct policy *, const char *item);
bool		 policy_allows_consumer(const struct policy *, const char *consumer);
/*
 * Whether a face authentication is sure enough for the bundle: amr (namr
 * method names) holds "face" and every method the policy requires, and the
 * liveness and match scores reach its minimums.  LB_OK, or
 * assurance_too_low with a sentence in msg.
 */
enum lb_err	 policy_assurance(const struct policy *, const char (*amr)[POLICY_AMR_LEN],
		    size_t namr, int64_t liveness, int64_t match, char *msg, size_t msglen);
/*
 * The department a guardian proof is asked of: the proof's own "dept", else
 * the one the policy names for its item (policy_parse makes sure there is
 * one).  Never whichever department happens to serve an item of that name.
 */
const char	*policy_proof_dept(const struct policy *, const struct policy_proof *);
/*
 * True when the canonical document doc (the proof record, translated) names
 * act in one of the proof's fields: the relation is proven.
 */
bool		 policy_proof_names(const struct policy_proof *, const msgpack_object *doc,
		    const char *act);
/*
 * Data minimization: a copy of doc in z whose "fields" keeps only the keys
 * the policy releases for the item.
 */
msgpack_object	 policy_minimize(const struct policy_item *, const msgpack_object *doc,
		    msgpack_zone *z);
/*
 * Rate limits: a table of token buckets, one per (scope, who) seen
 * recently -- (bundle, consumer) for a policy's rate_limit, (role, client
 * id) for the daemon's limit per client -- the least recently used given
 * to a newcomer when all nbuckets are taken.  A table is the daemon's
 * state (struct gw owns it, policy_rates_free frees it).  Any thread:
 * a table's mutex is held for one bucket's arithmetic, and the drain's
 * callbacks run after it is released.
 */
struct policy_rates;
struct policy_rates *policy_rates_new(size_t nbuckets);
void		 policy_rates_free(struct policy_rates *);
/*
 * Takes one token from the (scope, who) bucket, refilled at per_s tokens a
 * second up to burst since its last use; now_us is a monotonic clock in
 * microseconds (now_us_mono()).  0 when a token was taken or per_s is 0
 * (no limit), -1 when the bucket is empty: the refusal is counted for
 * policy_rates_drain.  scope and who are cut to LB_ID_MAX - 1 bytes.
 */
int		 policy_bucket_take(struct policy_rates *, const char *scope, const char *who,
		    uint32_t per_s, uint32_t burst, uint64_t now_us);
/*
 * Reports the refusals counted since the last drain: fn once per bucket
 * that refused, with its scope, who and count, then once with scope and
 * who NULL for the refusals of buckets that were given to newcomers
 * meanwhile.  The counts start again from 0.
 */
typedef void	(*policy_refused_fn)(void *arg, const char *scope, const char *who,
		    uint64_t refused);
void		 policy_rates_drain(struct policy_rates *, policy_refused_fn, void *arg);
/*
 * policy_bucket_take for po's rate_limit: the (bundle, consumer) bucket.
 * 0 when a token was taken or the policy sets no limit, -1 when the
 * bucket is empty.
 */
int		 policy_rate_take(struct policy_rates *, const struct policy *,
		    const char *consumer, uint64_t now_us);
/*
 * From now on policy_rate_take allows each bucket 1/n of the policy's rate
 * and burst (at least 1 a second): the share of one of n cluster nodes
 * (docs/cluster.md).  n 0 or 1: the whole limit, the default.
 */
void		 policy_rates_share(struct policy_rates *, unsigned n);
/*
 * The checks of a request before any consent is verified, in the order of
 * docs/consent.md: the bundle's policy is loaded (po not NULL, else
 * unknown_bundle), it lists consumer (else forbidden_role), and a token of
 * its rate limit is taken (else rate_limited).  LB_OK, or the failure
 * with a sentence in msg that names bundle (as requested) and consumer.
 */
enum lb_err	 policy_admit(struct policy_rates *, const struct policy *po, const char *bundle,
		    const char *consumer, uint64_t now_us, char *msg, size_t msglen);

/*
 * relation.c: the relations a consent token may claim besides "self", and
 * what proves each (docs/consent.md).  Pure functions: any thread.
 */
/* "guardian", "legal_rep" or "agent": the token's rel and the policy's key. */
const char	*relation_name(enum policy_rel);
/* The relation a token's rel names; -1 for "self" and anything unknown. */
int		 relation_from_name(const char *rel, enum policy_rel *out);
/*
 * The code of an unproven relation: guardian_unverified for a guardian,
 * agent_unverified for a legal representative or an agent (the person
 * acting for the subject is not proven).
 */
enum lb_err	 relation_error(enum policy_rel);
/* The journal "op" of a proof record read: "guardian_proof", ... */
const char	*relation_proof_op(enum policy_rel);
/*
 * What the subject's id alone decides before any record is fetched: a
 * guardian consents only for a minor (the date of birth in a resident ID
 * number, counted in China's calendar day, UTC+8, at now).  true, or false
 * with a sentence in msg.
 */
bool		 relation_subject_ok(enum policy_rel, const char *sub, int64_t now, char *msg,
		    size_t msglen);
/*
 * Whether doc, the translated proof record pp fetched for the subject,
 * proves the relation: it names act in one of pp's fields (policy_proof_names)
 * and, for an agent, it is a delegation in force for bundle on China's
 * calendar day at now: fields "status" "active", "valid_from" <= today <=
 * "valid_until" (YYYY-MM-DD) and bundle among "bundles" (an array of
 * strings, or one string of ids separated by commas or spaces).  A record
 * with a "status" must say "active" for a legal representative too.  true,
 * or false with a sentence in why.
 */
bool		 relation_proven(enum policy_rel, const struct policy_proof *pp,
		    const msgpack_object *doc, const char *act, const char *bundle, int64_t now,
		    char *why, size_t whylen);
/*
 * The text of fields.key of doc into out, cut to at most outlen - 1 bytes
 * at a character boundary of its UTF-8; "" without one.
 */
void		 relation_field(const msgpack_object *doc, const char *key, char *out,
		    size_t outlen);

/*
 * predicate.c: verification predicates (docs/api.md, "Verifications"): what
 * a consumer asks about a record instead of fetching it, the policy's
 * permission for it, and the sealed attestation of its answer.
 */
#define PRED_MAX	32	/* predicates per subject of one request */
#define PRED_SET_MAX	64	/* values of one "in" set */
#define PRED_TEXT_MAX	256	/* bytes of one text value */
#define PRED_YEARS_MAX	150	/* largest "years" of age_at_least */
enum pred_op {
	PRED_EQ = 0,
	PRED_NE,
	PRED_IN,
	PRED_GE,
	PRED_LE,
	PRED_AGE_AT_LEAST,
	PRED__COUNT
};
/* "eq", ... for an operator; NULL when out of range. */
const char	*predicate_op_name(enum pred_op);
/* The operator named name; -1 when it is none of them. */
int		 predicate_op_from_name(const char *name);
/*
 * One predicate of a request.  pd_value is a copy in the zone given to
 * predicate_parse: an integer or text (eq, ne; ge, le take an integer or a
 * date YYYY-MM-DD), an array of 1 to PRED_SET_MAX integers and texts (in),
 * or the map {"years", "on"} (age_at_least).
 */
struct predicate {
	char		pd_item[LB_ITEM_MAX];
	char		pd_field[LB_ITEM_MAX];
	enum pred_op	pd_op;
	msgpack_object	pd_value;
};
/*
 * Parses the request's "predicates" list o: 1 to PRED_MAX maps that hold
 * exactly item, field, op and value.  *out is malloc'ed (the caller frees
 * it); its values live in z.  -1 with a sentence naming the bad entry in
 * err (the request's bad_request).
 */
int		 predicate_parse(const msgpack_object *o, msgpack_zone *z, struct predicate **out,
		    size_t *n, char *err, size_t errlen);
/* True when s is a calendar date YYYY-MM-DD (years 0001 to 9999). */
bool		 predicate_date_ok(const char *s, size_t len);
/*
 * The policy's permission (its item's "verify" rules): LB_OK, or
 * predicate_not_allowed with a sentence in msg.  An item the bundle does not
 * contain is LB_OK here: the consent check refuses it as item_not_in_policy.
 */
enum lb_err	 predicate_allowed(const struct policy *, const struct predicate *, char *msg,
		    size_t msglen);
/* {"field", "op", "value"}: the predicate as an attestation states it (in z). */
msgpack_object	 predicate_object(const struct predicate *, msgpack_zone *z);
/*
 * Evaluates pd against the canonical document doc (translated, not yet
 * minimized: a verifiable field need not be released).  A field the record
 * does not hold makes the predicate false.  Types are exact: an integer
 * compares only with an integer, a date only with a text field that is a
 * date; a field of another type fails with bad_request and a sentence in
 * err that names the field, never its value.
 */
enum lb_err	 predicate_eval(const struct predicate *pd, const msgpack_object *doc,
		    bool *result, char *err, size_t errlen);
/*
 * The attestation of docs/contract.md §8: {"type": "attestation", "item",
 * "predicate", "result", "holder": {"id": subject}, "issuer": {"dept"},
 * "iat"}, built in z (strings borrowed from pd, subject and dept).
 */
msgpack_object	 predicate_attestation(const struct predicate *pd, bool result,
		    const char *subject, const char *dept, uint64_t iat, msgpack_zone *z);

/* consent.c: consent tokens (docs/contract.md §5) */
#define CONSENT_MAX_AMR	8
struct consent {
	char		cs_iss[LB_ID_MAX];
	char		cs_aud[LB_ID_MAX];
	char		cs_sub[LB_SUBJECT_MAX];
	char		cs_act[LB_SUBJECT_MAX];
	char		cs_rel[16];
	char		cs_azp[LB_ID_MAX];
	char		cs_bundle[LB_ID_MAX];
	char		cs_items[LB_MAX_ITEMS][LB_ITEM_MAX];
	size_t		cs_nitems;
	char		cs_amr[CONSENT_MAX_AMR][POLICY_AMR_LEN];
	size_t		cs_namr;
	int64_t		cs_liveness, cs_match, cs_iat, cs_exp;
	uint8_t		cs_jti[16];
	uint8_t		cs_hash[32];	/* SHA-256 of the envelope bytes */
	/* Set by consent_admit. */
	bool		cs_trusted;	/* the authority signed well-formed claims */
	uint64_t	cs_keep_until;	/* unix seconds the jti claim is kept */
};
/* What the request asks, against which the token is checked. */
struct consent_ask {
	const char		 *ca_aud;	/* this gateway's id */
	const char		 *ca_consumer;	/* the mTLS consumer id */
	const char		 *ca_bundle;
	const char		 *ca_subject;	/* NULL: the one the token names */
	const char		(*ca_items)[LB_ITEM_MAX];
	size_t			  ca_nitems;
	const struct policy	 *ca_policy;
	int64_t			  ca_now;	/* unix seconds */
};
/*
 * Verifies a consent envelope in the order of docs/contract.md §5 up to, not
 * including, the jti replay check (which needs the journal) and the
 * guardian proof.  Returns LB_OK or the first failure's code with a sentence
 * in msg.  CPU work: call it on a worker thread.
 */
enum lb_err	 consent_verify(const struct trust *, const void *env, size_t len,
		    const struct consent_ask *, struct consent *, char *msg, size_t msglen);
/*
 * The one admission of a consent token, for an exchange's subject and for
 * the access report alike: consent_verify against ask, then, last before
 * the jti claim so that a revoked token's jti stays unused, the revocation
 * list (journal_revoke_check).  Returns LB_OK or the first failure with a
 * sentence in msg.  Either way cs_trusted tells whether the claims in cs
 * may name people in the journal (the signature held over well-formed
 * claims); on LB_OK cs_keep_until is the keep_until of the token's jti
 * claim (exp + LB_SKEW_S).  CPU work and LMDB reads: call it on a worker.
 */
enum lb_err	 consent_admit(const struct trust *, struct journal *, const struct consent_ask *,
		    const void *env, size_t len, struct consent *cs, char *msg, size_t msglen);
/*
 * What a journal_jti_reserve or cluster_jti_claim status means for the
 * request: LB_OK (0, reserved or claimed now), consent_replayed (1),
 * consent_expired (2), consent_store_unavailable (3: a cluster's etcd did
 * not answer, cluster.c) or journal_unavailable,
 * with *msg a static sentence ("" for LB_OK).
 */
enum lb_err	 consent_claim_error(int status, const char **msg);

/* seal.c: electronic seals (docs/contract.md §6) */
struct seal_key {
	char		 sk_id[LB_ID_MAX];	/* seal id, e.g. "nhc" or "nhc-sm2" */
	char		 sk_dept[LB_ID_MAX];	/* department (the certificate's CN) */
	EVP_PKEY	*sk_key;
	X509		*sk_cert;
	uint8_t		 sk_kid[32];
	enum lb_alg	 sk_alg;
	enum mk_hash	 sk_hash;		/* SM3 for SM2 seals, else SHA-256 */
	bool		 sk_token;		/* the key stays in a PKCS#11 token */
};
/*
 * Loads DIR/seals/ID.pem and the private key: from the PKCS#11 token named
 * by the URI in DIR/seals/ID.pkcs11 when that file exists, else from
 * DIR/seals/ID.key.
 */
int		 seal_key_load(const char *certsdir, const char *id, struct seal_key *,
		    char *err, size_t errlen);
void		 seal_key_clear(struct seal_key *);
/* The seal claim of one document (canonical bytes appended to out). */
int		 seal_claim_pack(const struct seal_key *, const char *item, const void *doc,
		    size_t doclen, const uint8_t exch[16], uint64_t iat, msgpack_sbuffer *out);
/*
 * Seals n claims with one signature: the Merkle root of their leaves goes
 * into a "seal-batch" envelope, and receipts[i] (malloc'ed) proves claim i.
 * CPU work: call it on a worker thread.
 */
int		 seal_batch(const struct seal_key *, const uint8_t *const *claims,
		    const size_t *claim_lens, size_t n, uint64_t iat, uint8_t **receipts,
		    size_t *receipt_lens);
/* What an offline verification established. */
struct seal_verdict {
	char		sv_seal[LB_ID_MAX];
	char		sv_iss[LB_ID_MAX];
	char		sv_item[LB_ITEM_MAX];
	char		sv_alg[16];
	char		sv_signer[256];		/* seal certificate subject */
	char		sv_root[256];		/* the seal root it chains to */
	char		sv_hash[8];		/* "SHA-256", or "SM3" for SM2 seals */
	uint64_t	sv_iat;
	uint64_t	sv_index, sv_size;
	uint8_t		sv_exch[16];
};
/*
 * Verifies a receipt against the document bytes and a store of seal roots,
 * offline (docs/contract.md §6).  err names the first check that failed.
 */
int		 seal_verify(const uint8_t *receipt, size_t len, const uint8_t *doc,
		    size_t doclen, X509_STORE *roots, struct seal_verdict *, char *err,
		    size_t errlen);

#endif /* LIANBAN_H */
