/*
 * check_journal.c - unit tests of the journal (docs/contract.md §7): record packing,
 * group commit from many threads, checkpoints, proofs, reopening, jti claims,
 * revocations and map growth, against a real LMDB environment in a temporary
 * directory.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <lmdb.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>

#include "lianban.h"
#include "check_util.h"

static char		 tparent[64];	/* removed by main, even after failures */
static char		 tdir[128];
static EVP_PKEY		*tkey;
static X509		*tcert;
static struct event_base *tbase;
static struct journal	*tj;

/* Completions, counted on the loop thread. */
static int		 ndone;

struct appctx {
	struct jrec	*ap_recs;
	size_t		 ap_n;
	int		 ap_status;
	uint64_t	 ap_first;
};

struct claimctx {
	int		 cl_status;
};

static void
on_append(void *arg, int status, uint64_t first)
{
	struct appctx *ap = arg;

	ap->ap_status = status;
	ap->ap_first = first;
	ndone++;
}

static void
on_claim(void *arg, int status, uint64_t first)
{
	struct claimctx *cl = arg;

	(void)first;
	cl->cl_status = status;
	ndone++;
}

static void
count_done(void *arg)
{
	(void)arg;
	ndone++;
}

/*
 * Claims a jti as a request does, its claim committed alone: reserved, then
 * written by the writer.  cl_status is the reservation's refusal (1, 2) or
 * the commit's status; each counts one completion, on the loop.
 */
static int
claim_jti(const uint8_t jti[16], uint64_t keep, struct claimctx *cl)
{
	struct jclaim c;
	int st;

	if ((st = journal_jti_reserve(tj, jti, keep)) != 0) {
		cl->cl_status = st;
		return loop_post(tbase, count_done, NULL);
	}
	memcpy(c.jl_jti, jti, sizeof(c.jl_jti));
	c.jl_keep_until = keep;
	return journal_append_claims(tj, tbase, NULL, 0, &c, 1, on_claim, cl);
}

/* Runs the loop until want completions arrived; a minute is the limit. */
static void
run_until(int want)
{
	check_run_until(tbase, &ndone, want, 60 * 1000);
	ck_assert_int_eq(ndone, want);
}

/* The journal of the running test, in its directory, signed by its key. */
static struct journal *
open_journal(size_t map_size)
{
	return check_journal_open(tdir, tkey, tcert, map_size);
}

static void
setup(void)
{
	/* A subdirectory, so that journal_open's mkdir is exercised. */
	snprintf(tdir, sizeof(tdir), "%s/t.XXXXXX", tparent);
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	strcat(tdir, "/db");
	ck_assert_ptr_nonnull(tkey = EVP_EC_gen("P-256"));
	tcert = check_cert(tkey, "/CN=journal checkpoint", 1, NULL, NULL, false);
	tbase = event_base_new();
	ck_assert_ptr_nonnull(tbase);
	ndone = 0;
	tj = NULL;
}

static void
teardown(void)
{
	char *slash;

	journal_close(tj);
	tj = NULL;
	event_base_free(tbase);
	EVP_PKEY_free(tkey);
	X509_free(tcert);
	/* The mkdtemp directory, db and all. */
	if ((slash = strrchr(tdir, '/')) != NULL)
		*slash = '\0';
	(void)check_rm_tree(tdir);
}

static void
fill_rec(struct jrec *r, uint64_t t, unsigned who)
{
	memset(r, 0, sizeof(*r));
	r->jr_kind = (enum jkind)(t % 6);
	r->jr_t_ms = 1700000000000ULL + t;
	snprintf(r->jr_consumer, sizeof(r->jr_consumer), "consumer-%u", who);
	if (t % 2 == 0) {
		r->jr_has_exch = true;
		memcpy(r->jr_exch, &t, sizeof(t));
		snprintf(r->jr_dept, sizeof(r->jr_dept), "nhc");
		snprintf(r->jr_item, sizeof(r->jr_item), "birth_medical_certificate");
		snprintf(r->jr_decision, sizeof(r->jr_decision), "allow");
		snprintf(r->jr_code, sizeof(r->jr_code), "ok");
	}
	if (t % 3 == 0) {
		r->jr_has_latency = true;
		r->jr_latency_us = (int64_t)(t * 7);
	}
}

/* Appends n records in one op and waits for its completion. */
static uint64_t
append_wait(uint64_t tag, size_t n)
{
	struct appctx ap = { 0 };
	struct jrec *recs;
	size_t i;

	recs = calloc(n, sizeof(*recs));
	ck_assert_ptr_nonnull(recs);
	for (i = 0; i < n; i++)
		fill_rec(&recs[i], tag + i, 1);
	ck_assert_int_eq(journal_append(tj, tbase, recs, n, on_append, &ap), 0);
	run_until(ndone + 1);
	ck_assert_int_eq(ap.ap_status, 0);
	free(recs);
	return ap.ap_first;
}

/* Leaf hashes and record bytes of [0, size), read back through journal_leaves. */
struct readback {
	uint8_t		(*rb_leaves)[32];
	uint8_t		**rb_recs;
	size_t		 *rb_lens;
	uint64_t	 rb_n;
};

static int
readback_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct readback *rb = arg;

	if (seq != rb->rb_n)
		return -1;
	merkle_leaf_hash(MK_SHA256, rec, len, rb->rb_leaves[seq]);
	if (rb->rb_recs != NULL) {
		rb->rb_recs[seq] = malloc(len);
		memcpy(rb->rb_recs[seq], rec, len);
		rb->rb_lens[seq] = len;
	}
	rb->rb_n++;
	return 0;
}

static void
readback(struct readback *rb, uint64_t size, bool keep)
{
	memset(rb, 0, sizeof(*rb));
	rb->rb_leaves = calloc(size + 1, 32);
	if (keep) {
		rb->rb_recs = calloc(size + 1, sizeof(*rb->rb_recs));
		rb->rb_lens = calloc(size + 1, sizeof(*rb->rb_lens));
	}
	ck_assert_int_eq(journal_leaves(tj, 0, size, readback_cb, rb), 0);
	ck_assert_uint_eq(rb->rb_n, size);
}

static void
readback_free(struct readback *rb)
{
	uint64_t i;

	if (rb->rb_recs != NULL)
		for (i = 0; i < rb->rb_n; i++)
			free(rb->rb_recs[i]);
	free(rb->rb_recs);
	free(rb->rb_lens);
	free(rb->rb_leaves);
}

/* Checks the latest checkpoint against a root recomputed from every leaf. */
static void
check_checkpoint(uint64_t want_size, uint8_t root_out[32])
{
	struct readback rb;
	msgpack_zone z;
	struct envelope env;
	const char *why = NULL;
	uint8_t *buf = NULL, root[32], recomputed[32], kid[32];
	const uint8_t *p;
	size_t len, n;
	uint64_t size, t_ms, v;
	char origin[LB_ID_MAX];

	ck_assert_int_eq(journal_checkpoint(tj, &buf, &len, &size, root, &t_ms), 0);
	ck_assert_uint_eq(size, want_size);
	readback(&rb, size, false);
	merkle_root(MK_SHA256, (const uint8_t (*)[32])rb.rb_leaves, size, recomputed);
	ck_assert_mem_eq(root, recomputed, 32);
	readback_free(&rb);

	msgpack_zone_init(&z, 1024);
	ck_assert_msg(envelope_parse(buf, len, &z, "checkpoint", &env, &why) == 0,
	    "envelope_parse: %s", why);
	ck_assert_int_eq(env.env_alg, LB_ALG_ES256);
	ck_assert_int_eq(envelope_verify(&env, X509_get0_pubkey(tcert)), 0);
	ck_assert_int_eq(key_id_cert(tcert, kid), 0);
	ck_assert_mem_eq(env.env_kid, kid, 32);
	ck_assert_int_eq(mpk_get_str(&env.env_claims, "origin", origin, sizeof(origin)), 0);
	ck_assert_str_eq(origin, CHECK_ORIGIN);
	ck_assert_int_eq(mpk_get_u64(&env.env_claims, "size", &v), 0);
	ck_assert_uint_eq(v, want_size);
	ck_assert_int_eq(mpk_get_u64(&env.env_claims, "t_ms", &v), 0);
	ck_assert_uint_eq(v, t_ms);
	ck_assert_int_eq(mpk_get_bytes(&env.env_claims, "root", &z, &p, &n), 0);
	ck_assert_uint_eq(n, 32);
	ck_assert_mem_eq(p, root, 32);
	ck_assert_uint_eq(env.env_claims.via.map.size, 4);
	msgpack_zone_destroy(&z);

	/* A flipped signature byte must not verify: the check can fail. */
	buf[len - 1] ^= 1;
	msgpack_zone_init(&z, 1024);
	ck_assert_int_eq(envelope_parse(buf, len, &z, "checkpoint", &env, &why), 0);
	ck_assert_int_ne(envelope_verify(&env, X509_get0_pubkey(tcert)), 0);
	msgpack_zone_destroy(&z);
	free(buf);
	if (root_out != NULL)
		memcpy(root_out, root, 32);
}

START_TEST(test_pack_exact)
{
	static const uint8_t want[] = {
		0x88,						/* map of 8 */
		0xa4, 'c', 'o', 'd', 'e',
		0xaf, 'c', 'o', 'n', 's', 'e', 'n', 't', '_', 'e', 'x', 'p', 'i', 'r', 'e', 'd',
		0xa8, 'c', 'o', 'n', 's', 'u', 'm', 'e', 'r',
		0xa2, 'c', '1',
		0xa8, 'd', 'e', 'c', 'i', 's', 'i', 'o', 'n',
		0xa4, 'd', 'e', 'n', 'y',
		0xa4, 'e', 'x', 'c', 'h',
		0xc4, 0x10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
		0xa4, 'k', 'i', 'n', 'd',
		0xa4, 'd', 'e', 'n', 'y',
		0xaa, 'l', 'a', 't', 'e', 'n', 'c', 'y', '_', 'u', 's',
		0xcc, 250,					/* uint8 */
		0xa3, 's', 'e', 'q',
		0x05,						/* fixint */
		0xa4, 't', '_', 'm', 's',
		0xcf, 0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,	/* 1700000000000 */
	};
	struct jrec r;
	msgpack_sbuffer sb;
	int i;

	memset(&r, 0, sizeof(r));
	r.jr_kind = JK_DENY;
	r.jr_t_ms = 1700000000000ULL;
	r.jr_has_exch = true;
	for (i = 0; i < 16; i++)
		r.jr_exch[i] = (uint8_t)i;
	r.jr_has_latency = true;
	r.jr_latency_us = 250;
	strcpy(r.jr_consumer, "c1");
	strcpy(r.jr_decision, "deny");
	strcpy(r.jr_code, "consent_expired");
	/* Set but not flagged, or empty: all omitted. */
	memset(r.jr_subject, 0xee, sizeof(r.jr_subject));
	strcpy(r.jr_rel, "");

	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(journal_record_pack(&r, 5, &sb), 0);
	ck_assert_uint_eq(sb.size, sizeof(want));
	ck_assert_mem_eq(sb.data, want, sizeof(want));
	ck_assert(mpk_is_canonical(sb.data, sb.size));
	msgpack_sbuffer_destroy(&sb);

	/* kind, seq and t_ms are always there, even at zero. */
	memset(&r, 0, sizeof(r));
	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(journal_record_pack(&r, 0, &sb), 0);
	{
		static const uint8_t min[] = {
			0x83,
			0xa4, 'k', 'i', 'n', 'd', 0xa8, 'e', 'x', 'c', 'h', 'a', 'n', 'g', 'e',
			0xa3, 's', 'e', 'q', 0x00,
			0xa4, 't', '_', 'm', 's', 0x00,
		};
		ck_assert_uint_eq(sb.size, sizeof(min));
		ck_assert_mem_eq(sb.data, min, sizeof(min));
	}
	msgpack_sbuffer_destroy(&sb);

	/* An unknown kind is refused and leaves the buffer alone. */
	r.jr_kind = (enum jkind)42;
	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(journal_record_pack(&r, 0, &sb), -1);
	ck_assert_uint_eq(sb.size, 0);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_pack_all_fields)
{
	static const char *const order[] = {
		"actor", "bundle", "claim", "code", "consent", "consumer", "decision", "dept",
		"doc", "exch", "item", "kind", "latency_us", "rel", "seq", "subject", "t_ms",
	};
	struct jrec r;
	msgpack_sbuffer sb;
	msgpack_zone z;
	msgpack_object o;
	int64_t lat;
	uint32_t i;

	memset(&r, 0, sizeof(r));
	r.jr_kind = JK_AUDIT_READ;
	r.jr_t_ms = 1;
	r.jr_has_exch = r.jr_has_subject = r.jr_has_actor = r.jr_has_consent = true;
	r.jr_has_doc = r.jr_has_claim = r.jr_has_latency = true;
	r.jr_latency_us = -3;
	strcpy(r.jr_consumer, "newborn");
	strcpy(r.jr_dept, "psb");
	strcpy(r.jr_item, "household_register");
	strcpy(r.jr_bundle, "newborn");
	strcpy(r.jr_rel, "guardian");
	strcpy(r.jr_decision, "allow");
	strcpy(r.jr_code, "ok");

	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(journal_record_pack(&r, 1ULL << 40, &sb), 0);
	ck_assert(mpk_is_canonical(sb.data, sb.size));
	msgpack_zone_init(&z, 1024);
	ck_assert_int_eq(mpk_unpack(sb.data, sb.size, &z, &o), 0);
	ck_assert_int_eq(o.type, MSGPACK_OBJECT_MAP);
	ck_assert_uint_eq(o.via.map.size, 17);
	for (i = 0; i < 17; i++)
		ck_assert(mpk_str_eq(&o.via.map.ptr[i].key, order[i]));
	ck_assert(mpk_str_eq(mpk_get(&o, "kind"), "audit-read"));
	ck_assert_int_eq(mpk_get_i64(&o, "latency_us", &lat), 0);
	ck_assert_int_eq(lat, -3);
	ck_assert_uint_eq(mpk_get(&o, "subject")->via.bin.size, 32);
	ck_assert_uint_eq(mpk_get(&o, "exch")->via.bin.size, 16);
	msgpack_zone_destroy(&z);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_empty)
{
	uint8_t *buf = NULL, root[32], want[32];
	size_t len;
	uint64_t size, t_ms;

	tj = open_journal(0);
	ck_assert_uint_eq(journal_size(tj), 0);
	/* The empty tree is signed when the journal is created. */
	merkle_hash(MK_SHA256, "", 0, want);
	ck_assert_int_eq(journal_checkpoint(tj, &buf, &len, &size, root, &t_ms), 0);
	ck_assert_uint_eq(size, 0);
	ck_assert_mem_eq(root, want, 32);
	free(buf);
	ck_assert_int_eq(journal_root_at(tj, 0, root), 0);
	ck_assert_mem_eq(root, want, 32);
	ck_assert_int_eq(journal_root_at(tj, 1, root), -1);
	ck_assert_int_eq(journal_leaves(tj, 0, 1, readback_cb, NULL), -1);
}
END_TEST

/* Many threads append at once; the loop thread collects the completions. */
#define NTHREADS	8
#define OPS_PER_THREAD	150

struct appender {
	unsigned	 at_id;
	struct appctx	 at_ops[OPS_PER_THREAD];
	int		 at_failed;
};

static void *
appender_main(void *arg)
{
	struct appender *at = arg;
	struct appctx *ap;
	size_t i, k;

	for (i = 0; i < OPS_PER_THREAD; i++) {
		ap = &at->at_ops[i];
		ap->ap_n = 1 + i % 3;
		ap->ap_status = 99;
		ap->ap_recs = calloc(ap->ap_n, sizeof(*ap->ap_recs));
		for (k = 0; k < ap->ap_n; k++)
			fill_rec(&ap->ap_recs[k], at->at_id * 100000 + i * 3 + k, at->at_id);
		if (journal_append(tj, tbase, ap->ap_recs, ap->ap_n, on_append, ap) != 0)
			at->at_failed++;
	}
	return NULL;
}

static int
cmp_first(const void *a, const void *b)
{
	const struct appctx *x = *(struct appctx *const *)a, *y = *(struct appctx *const *)b;

	return (x->ap_first > y->ap_first) - (x->ap_first < y->ap_first);
}

START_TEST(test_concurrent_appends)
{
	static struct appender at[NTHREADS];
	struct appctx *all[NTHREADS * OPS_PER_THREAD];
	pthread_t th[NTHREADS];
	struct readback rb;
	msgpack_sbuffer sb;
	uint64_t next = 0;
	size_t i, k, nall = 0;

	tj = open_journal(0);
	memset(at, 0, sizeof(at));
	for (i = 0; i < NTHREADS; i++) {
		at[i].at_id = (unsigned)i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, appender_main, &at[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(at[i].at_failed, 0);
	}
	run_until(NTHREADS * OPS_PER_THREAD);

	/* Every op succeeded and the ops tile [0, total) without gaps. */
	for (i = 0; i < NTHREADS; i++)
		for (k = 0; k < OPS_PER_THREAD; k++) {
			ck_assert_int_eq(at[i].at_ops[k].ap_status, 0);
			all[nall++] = &at[i].at_ops[k];
		}
	qsort(all, nall, sizeof(all[0]), cmp_first);
	for (i = 0; i < nall; i++) {
		ck_assert_uint_eq(all[i]->ap_first, next);
		next += all[i]->ap_n;
	}
	ck_assert_uint_eq(journal_size(tj), next);

	/* The stored leaves are exactly the canonical packing of each record. */
	readback(&rb, next, true);
	msgpack_sbuffer_init(&sb);
	for (i = 0; i < nall; i++)
		for (k = 0; k < all[i]->ap_n; k++) {
			uint64_t seq = all[i]->ap_first + k;

			msgpack_sbuffer_clear(&sb);
			ck_assert_int_eq(journal_record_pack(&all[i]->ap_recs[k], seq, &sb), 0);
			ck_assert_uint_eq(rb.rb_lens[seq], sb.size);
			ck_assert_mem_eq(rb.rb_recs[seq], sb.data, sb.size);
			ck_assert(mpk_is_canonical(rb.rb_recs[seq], rb.rb_lens[seq]));
		}
	msgpack_sbuffer_destroy(&sb);
	readback_free(&rb);

	/* Ordering within one thread's ops follows its call order. */
	for (i = 0; i < NTHREADS; i++)
		for (k = 1; k < OPS_PER_THREAD; k++)
			ck_assert_uint_gt(at[i].at_ops[k].ap_first, at[i].at_ops[k - 1].ap_first);

	check_checkpoint(next, NULL);
	for (i = 0; i < NTHREADS; i++)
		for (k = 0; k < OPS_PER_THREAD; k++)
			free(at[i].at_ops[k].ap_recs);
}
END_TEST

START_TEST(test_reopen_and_proofs)
{
	uint8_t root1[32], root2[32], root[32], r1[32], r2[32];
	uint8_t path[MK_MAX_PATH][32];
	struct readback rb;
	uint64_t first, size, s1, s2, seq;
	size_t npath;
	int i;

	tj = open_journal(0);
	for (i = 0; i < 5; i++)
		append_wait((uint64_t)i * 10, 7 + (size_t)i);	/* 7+8+9+10+11 = 45 */
	ck_assert_uint_eq(journal_size(tj), 45);
	check_checkpoint(45, root1);
	journal_close(tj);

	/* Reopening continues the same tree: no rewrite, no gap. */
	tj = open_journal(0);
	ck_assert_uint_eq(journal_size(tj), 45);
	check_checkpoint(45, root);
	ck_assert_mem_eq(root, root1, 32);
	ck_assert_int_eq(journal_root_at(tj, 45, root), 0);
	ck_assert_mem_eq(root, root1, 32);
	first = append_wait(1000, 1);
	ck_assert_uint_eq(first, 45);
	first = append_wait(2000, 54);
	ck_assert_uint_eq(first, 46);
	size = journal_size(tj);
	ck_assert_uint_eq(size, 100);
	check_checkpoint(100, root2);

	/* Consistency from the size before the restart to now. */
	ck_assert_int_eq(journal_consistency(tj, 45, 100, path, &npath), 0);
	ck_assert_int_eq(merkle_verify_consistency(MK_SHA256, 45, 100, root1, root2,
	    (const uint8_t (*)[32])path, npath), 0);
	path[0][0] ^= 1;
	ck_assert_int_ne(merkle_verify_consistency(MK_SHA256, 45, 100, root1, root2,
	    (const uint8_t (*)[32])path, npath), 0);

	/* Consistency and roots between many pairs of sizes. */
	readback(&rb, size, false);
	for (s1 = 1; s1 <= size; s1 += 7)
		for (s2 = s1; s2 <= size; s2 += 13) {
			ck_assert_int_eq(journal_root_at(tj, s1, r1), 0);
			ck_assert_int_eq(journal_root_at(tj, s2, r2), 0);
			merkle_root(MK_SHA256, (const uint8_t (*)[32])rb.rb_leaves, s2, root);
			ck_assert_mem_eq(r2, root, 32);
			ck_assert_int_eq(journal_consistency(tj, s1, s2, path, &npath), 0);
			ck_assert_int_eq(merkle_verify_consistency(MK_SHA256, s1, s2, r1, r2,
			    (const uint8_t (*)[32])path, npath), 0);
		}

	/* Inclusion of every leaf in the full tree, and in a smaller one. */
	for (seq = 0; seq < size; seq++) {
		ck_assert_int_eq(journal_inclusion(tj, seq, size, path, &npath), 0);
		ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, rb.rb_leaves[seq], seq, size,
		    (const uint8_t (*)[32])path, npath, root2), 0);
		if (seq < 45) {
			ck_assert_int_eq(journal_inclusion(tj, seq, 45, path, &npath), 0);
			ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, rb.rb_leaves[seq],
			    seq, 45, (const uint8_t (*)[32])path, npath, root1), 0);
		}
	}
	/* A proof for one leaf does not prove its neighbour. */
	ck_assert_int_eq(journal_inclusion(tj, 3, size, path, &npath), 0);
	ck_assert_int_ne(merkle_verify_inclusion(MK_SHA256, rb.rb_leaves[4], 3, size,
	    (const uint8_t (*)[32])path, npath, root2), 0);
	readback_free(&rb);

	/* Nothing beyond the committed tree. */
	ck_assert_int_eq(journal_inclusion(tj, size, size, path, &npath), -1);
	ck_assert_int_eq(journal_inclusion(tj, 0, size + 1, path, &npath), -1);
	ck_assert_int_eq(journal_consistency(tj, 50, 40, path, &npath), -1);
	ck_assert_int_eq(journal_consistency(tj, 1, size + 1, path, &npath), -1);
	ck_assert_int_eq(journal_root_at(tj, size + 1, root), -1);
	ck_assert_int_eq(journal_leaves(tj, 0, size + 1, readback_cb, NULL), -1);
}
END_TEST

/*
 * Checks proofs and roots against leaves read back from the journal: every
 * inclusion for sizes up to 70, then a spread of sizes, indices and pairs.
 */
static void
check_proofs(uint64_t size)
{
	uint8_t path[MK_MAX_PATH][32], r1[32], r2[32], want[32];
	struct readback rb;
	uint64_t s1, s2, seq;
	size_t npath;

	readback(&rb, size, false);
	for (s2 = 1; s2 <= size; s2 += s2 < 70 ? 1 : 1 + s2 / 8) {
		ck_assert_int_eq(journal_root_at(tj, s2, r2), 0);
		merkle_root(MK_SHA256, (const uint8_t (*)[32])rb.rb_leaves, s2, want);
		ck_assert_mem_eq(r2, want, 32);
		for (seq = 0; seq < s2; seq += s2 < 70 ? 1 : 1 + s2 / 11) {
			ck_assert_int_eq(journal_inclusion(tj, seq, s2, path, &npath), 0);
			ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, rb.rb_leaves[seq],
			    seq, s2, (const uint8_t (*)[32])path, npath, r2), 0);
		}
		ck_assert_int_eq(journal_inclusion(tj, s2 - 1, s2, path, &npath), 0);
		ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, rb.rb_leaves[s2 - 1],
		    s2 - 1, s2, (const uint8_t (*)[32])path, npath, r2), 0);
		for (s1 = 1; s1 <= s2; s1 += 1 + s2 / 9) {
			ck_assert_int_eq(journal_root_at(tj, s1, r1), 0);
			ck_assert_int_eq(journal_consistency(tj, s1, s2, path, &npath), 0);
			ck_assert_int_eq(merkle_verify_consistency(MK_SHA256, s1, s2, r1, r2,
			    (const uint8_t (*)[32])path, npath), 0);
		}
	}
	readback_free(&rb);
}

/*
 * Opens the journal's LMDB directly, behind the closed journal's back, and
 * begins a transaction (flags: 0, or MDB_RDONLY for both).
 */
static void
raw_txn(MDB_env **env, MDB_txn **txn, unsigned int flags)
{
	ck_assert_int_eq(mdb_env_create(env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(*env, 8), 0);
	ck_assert_int_eq(mdb_env_open(*env, tdir, flags, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(*env, NULL, flags, txn), 0);
}

/* The node database, as an older gateway or a crash would leave it. */
static void
raw_open(MDB_env **env, MDB_txn **txn, MDB_dbi *node)
{
	raw_txn(env, txn, 0);
	ck_assert_int_eq(mdb_dbi_open(*txn, "node", 0, node), 0);
}

/* Stored nodes: one per completed perfect subtree above the leaves. */
static size_t
node_count(void)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi node;
	MDB_stat st;

	raw_open(&env, &txn, &node);
	ck_assert_int_eq(mdb_stat(txn, node, &st), 0);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return st.ms_entries;
}

static uint64_t
tree_nodes(uint64_t size)
{
	uint64_t n = size, v;

	for (v = size; v != 0; v &= v - 1)
		n--;
	return n;
}

/*
 * The writer stores every node in the commit of its leaves, across batches
 * of every size and across reopening, and proofs built from them verify.
 */
START_TEST(test_proofs_from_nodes)
{
	uint64_t tag = 0;
	size_t n;

	tj = open_journal(0);
	for (n = 1; n <= 20; n++) {
		append_wait(tag, n);	/* 1 + 2 + ... + 20 = 210 */
		tag += n;
	}
	check_proofs(journal_size(tj));
	journal_close(tj);
	tj = NULL;
	ck_assert_uint_eq(node_count(), tree_nodes(210));

	tj = open_journal(0);
	append_wait(tag, 1);
	append_wait(tag + 1, 300);
	append_wait(tag + 301, 2);
	ck_assert_uint_eq(journal_size(tj), 513);
	check_proofs(513);
	journal_close(tj);
	tj = NULL;
	ck_assert_uint_eq(node_count(), tree_nodes(513));
}
END_TEST

/*
 * A journal without the node database (written before it existed) gets it
 * built at open; so does one whose build stopped part way.  Either way the
 * nodes match what the writer would have stored and proofs verify.
 */
START_TEST(test_nodes_rebuilt)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi node;
	MDB_cursor *cur;
	MDB_val k, v;
	int i;

	tj = open_journal(0);
	append_wait(0, 333);
	journal_close(tj);
	tj = NULL;
	ck_assert_uint_eq(node_count(), tree_nodes(333));

	raw_open(&env, &txn, &node);
	ck_assert_int_eq(mdb_drop(txn, node, 1), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	tj = open_journal(0);
	ck_assert_uint_eq(journal_size(tj), 333);
	check_proofs(333);
	ck_assert_uint_eq(append_wait(333, 40), 333);
	check_proofs(373);
	journal_close(tj);
	tj = NULL;
	ck_assert_uint_eq(node_count(), tree_nodes(373));

	/*
	 * The last 100 nodes lost, as by a build that never finished; the cut
	 * may fall between the nodes of one seq.
	 */
	raw_open(&env, &txn, &node);
	ck_assert_int_eq(mdb_cursor_open(txn, node, &cur), 0);
	for (i = 0; i < 100; i++) {
		ck_assert_int_eq(mdb_cursor_get(cur, &k, &v, MDB_LAST), 0);
		ck_assert_int_eq(mdb_cursor_del(cur, 0), 0);
	}
	mdb_cursor_close(cur);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	ck_assert_uint_eq(node_count(), tree_nodes(373) - 100);

	tj = open_journal(0);
	check_proofs(373);
	journal_close(tj);
	tj = NULL;
	ck_assert_uint_eq(node_count(), tree_nodes(373));
}
END_TEST

/*
 * Proofs come from the stored nodes, not from the leaves: a node altered
 * behind the journal's back yields a proof that fails to verify.  A stored
 * peak that disagrees with the tree is caught at open.
 */
START_TEST(test_nodes_used)
{
	struct journal_config cfg;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi node;
	/* Level 2, seqs 4..7: inside the peak of 64 leaves, never a peak itself. */
	uint8_t kb[9] = { 0, 0, 0, 0, 0, 0, 0, 7, 2 }, bad[32];
	MDB_val k = { sizeof(kb), kb }, v = { sizeof(bad), bad };
	uint8_t path[MK_MAX_PATH][32], root[32];
	struct readback rb;
	size_t npath;
	char err[256] = "";

	check_journal_config(&cfg, tdir, tkey, tcert);
	tj = open_journal(0);
	append_wait(0, 100);
	readback(&rb, 100, false);
	ck_assert_int_eq(journal_root_at(tj, 100, root), 0);
	journal_close(tj);
	tj = NULL;

	memset(bad, 0x5a, sizeof(bad));
	raw_open(&env, &txn, &node);
	ck_assert_int_eq(mdb_put(txn, node, &k, &v, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	tj = open_journal(0);
	ck_assert_int_eq(journal_inclusion(tj, 0, 100, path, &npath), 0);
	ck_assert_int_ne(merkle_verify_inclusion(MK_SHA256, rb.rb_leaves[0], 0, 100,
	    (const uint8_t (*)[32])path, npath, root), 0);
	/* Leaf 8's path does not pass through the altered node. */
	ck_assert_int_eq(journal_inclusion(tj, 8, 100, path, &npath), 0);
	ck_assert_int_eq(merkle_verify_inclusion(MK_SHA256, rb.rb_leaves[8], 8, 100,
	    (const uint8_t (*)[32])path, npath, root), 0);
	journal_close(tj);
	tj = NULL;
	readback_free(&rb);

	/* Now the peak of the first 64 leaves. */
	kb[7] = 63;
	kb[8] = 6;
	raw_open(&env, &txn, &node);
	ck_assert_int_eq(mdb_put(txn, node, &k, &v, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	ck_assert_ptr_null(journal_open(&cfg, err, sizeof(err)));
	ck_assert_msg(strstr(err, "node database disagrees") != NULL, "err: %s", err);
}
END_TEST

/* The stored tree is checked against the stored records at open. */
START_TEST(test_reopen_refuses_inconsistent)
{
	struct journal_config cfg;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint8_t kb[8] = { 0, 0, 0, 0, 0, 0, 0, 4 };
	MDB_val k = { sizeof(kb), kb };
	char err[256] = "";

	check_journal_config(&cfg, tdir, tkey, tcert);
	tj = open_journal(0);
	append_wait(0, 5);
	journal_close(tj);
	tj = NULL;

	/* Lose the last record behind the journal's back. */
	raw_txn(&env, &txn, 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "rec", 0, &dbi), 0);
	ck_assert_int_eq(mdb_del(txn, dbi, &k, NULL), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	ck_assert_ptr_null(journal_open(&cfg, err, sizeof(err)));
	ck_assert_msg(strstr(err, "4 records") != NULL, "err: %s", err);
}
END_TEST

/*
 * A commit under load may skip its checkpoint; if the gateway then stops
 * before the next one, reopening must sign the unsigned tail by itself.
 */
START_TEST(test_reopen_signs_tail)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi ckpt, meta;
	uint8_t kb[8] = { 0, 0, 0, 0, 0, 0, 0, 10 };
	MDB_val k = { sizeof(kb), kb }, v, latest = { 6, "latest" };
	uint8_t *buf = NULL, root[32], want[32];
	size_t len;
	uint64_t size = 0, t_ms;
	int i;

	tj = open_journal(0);
	append_wait(0, 10);
	append_wait(100, 15);
	journal_close(tj);
	tj = NULL;

	/* Put the checkpoint of size 10 back as the latest one. */
	raw_txn(&env, &txn, 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "ckpt", 0, &ckpt), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	ck_assert_int_eq(mdb_get(txn, ckpt, &k, &v), 0);
	ck_assert_int_eq(mdb_put(txn, meta, &latest, &v, 0), 0);
	kb[7] = 25;
	ck_assert_int_eq(mdb_del(txn, ckpt, &k, NULL), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	tj = open_journal(0);
	ck_assert_uint_eq(journal_size(tj), 25);
	for (i = 0; i < 5000 && size != 25; i++) {
		ck_assert_int_eq(journal_checkpoint(tj, &buf, &len, &size, root, &t_ms), 0);
		free(buf);
		if (size != 25)
			usleep(1000);
	}
	check_checkpoint(25, root);
	ck_assert_int_eq(journal_root_at(tj, 25, want), 0);
	ck_assert_mem_eq(root, want, 32);
}
END_TEST

START_TEST(test_jti)
{
	enum { NJTI = 64, NBURST = 400 };
	static struct claimctx first[NJTI], second[NJTI], again[NJTI], fresh;
	static struct appctx burst[NBURST];
	struct jrec r;
	uint8_t jti[16];
	uint64_t keep = (uint64_t)time(NULL) + 3600;
	int i, want = 0;

	tj = open_journal(0);
	fill_rec(&r, 1, 1);
	/*
	 * A burst of appends keeps the writer busy, so each first claim is
	 * still a reservation, not yet committed, when its second comes.
	 */
	for (i = 0; i < NBURST; i++, want++)
		ck_assert_int_eq(journal_append(tj, tbase, &r, 1, on_append, &burst[i]), 0);
	for (i = 0; i < NJTI; i++) {
		memset(jti, i, sizeof(jti));
		ck_assert_int_eq(claim_jti(jti, keep, &first[i]), 0);
		ck_assert_int_eq(claim_jti(jti, keep, &second[i]), 0);
		want += 2;
	}
	run_until(want);
	for (i = 0; i < NJTI; i++) {
		/* The first reservation wins, the second meets it in memory. */
		ck_assert_int_eq(first[i].cl_status, 0);
		ck_assert_int_eq(second[i].cl_status, 1);
	}
	for (i = 0; i < NBURST; i++)
		ck_assert_int_eq(burst[i].ap_status, 0);

	/* Across batches, and across a restart, the jti stays claimed. */
	journal_close(tj);
	tj = open_journal(0);
	for (i = 0; i < NJTI; i++) {
		memset(jti, i, sizeof(jti));
		ck_assert_int_eq(claim_jti(jti, keep, &again[i]), 0);
		want++;
	}
	memset(jti, 0xff, sizeof(jti));
	ck_assert_int_eq(claim_jti(jti, keep, &fresh), 0);
	want++;
	run_until(want);
	for (i = 0; i < NJTI; i++)
		ck_assert_int_eq(again[i].cl_status, 1);
	ck_assert_int_eq(fresh.cl_status, 0);
	/* Claims alone add no records. */
	ck_assert_uint_eq(journal_size(tj), NBURST);
}
END_TEST

/* Expired entries go, a bounded number per pass; live ones stay. */
enum { NOLD = 2500, NLIVE = 20, NPASS = 5 };

/*
 * Claims NOLD jtis kept until old_keep and NLIVE kept for an hour, the live
 * ones spread among them.
 */
static int
claim_mix(struct claimctx *old, struct claimctx *live, uint64_t now, uint64_t old_keep)
{
	uint8_t jti[16] = { 0 };
	int i, no = 0, nl = 0;

	for (i = 0; i < NOLD + NLIVE; i++) {
		jti[0] = (uint8_t)(i >> 8);
		jti[1] = (uint8_t)i;
		if (i % 126 == 0 && nl < NLIVE)
			ck_assert_int_eq(claim_jti(jti, now + 3600, &live[nl++]), 0);
		else
			ck_assert_int_eq(claim_jti(jti, old_keep, &old[no++]), 0);
	}
	ck_assert_int_eq(no, NOLD);
	ck_assert_int_eq(nl, NLIVE);
	return NOLD + NLIVE;
}

START_TEST(test_jti_expiry)
{
	static struct claimctx old[NOLD], live[NLIVE], reold[NOLD], relive[NLIVE], late;
	uint64_t now = (uint64_t)time(NULL);
	uint8_t jti[16];
	int i;

	tj = open_journal(0);
	/* A claim already past its keep time is refused, not stored. */
	memset(jti, 0xee, sizeof(jti));
	ck_assert_int_eq(claim_jti(jti, now - 10, &late), 0);
	run_until(ndone + 1);
	ck_assert_int_eq(late.cl_status, 2);
	/* The first commit runs the first expiry pass; let it happen on nothing. */
	append_wait(0, 1);
	run_until(ndone + claim_mix(old, live, now, now + 1));
	for (i = 0; i < NLIVE; i++)
		ck_assert_int_eq(live[i].cl_status, 0);
	for (i = 0; i < NOLD; i++)
		ck_assert_int_eq(old[i].cl_status, 0);

	/* One pass per second scans at most 1024 entries: several are needed. */
	for (i = 0; i < NPASS; i++) {
		usleep(1100 * 1000);
		append_wait(10 + (uint64_t)i, 1);
	}
	/* Claimed again, the expired ones are new; the live ones are replays. */
	run_until(ndone + claim_mix(reold, relive, now, now + 3600));
	for (i = 0; i < NLIVE; i++)
		ck_assert_int_eq(relive[i].cl_status, 1);
	for (i = 0; i < NOLD; i++)
		ck_assert_msg(reold[i].cl_status == 0, "expired jti %d still claimed", i);
}
END_TEST

START_TEST(test_map_growth)
{
	enum { NOPS = 250, PER_OP = 20 };
	static struct appctx ops[NOPS];
	struct jrec recs[PER_OP];
	int i, k;

	/* 64 KiB holds a few hundred records; 5000 force several doublings. */
	tj = open_journal(64 * 1024);
	for (i = 0; i < NOPS; i++) {
		for (k = 0; k < PER_OP; k++)
			fill_rec(&recs[k], (uint64_t)(i * PER_OP + k), 3);
		ck_assert_int_eq(journal_append(tj, tbase, recs, PER_OP, on_append, &ops[i]), 0);
	}
	run_until(NOPS);
	for (i = 0; i < NOPS; i++) {
		ck_assert_int_eq(ops[i].ap_status, 0);
		if (i > 0)
			ck_assert_uint_eq(ops[i].ap_first, ops[i - 1].ap_first + PER_OP);
	}
	ck_assert_uint_eq(journal_size(tj), NOPS * PER_OP);
	check_checkpoint(NOPS * PER_OP, NULL);

	/* Reopened with the small size, LMDB maps the data file and growth resumes. */
	journal_close(tj);
	tj = open_journal(64 * 1024);
	ck_assert_uint_eq(journal_size(tj), NOPS * PER_OP);
	ck_assert_uint_eq(append_wait(0, 1), NOPS * PER_OP);
	check_checkpoint(NOPS * PER_OP + 1, NULL);
}
END_TEST

/*
 * A commit that cannot reach the disk fails every op of its batch with -1
 * and leaves nothing behind: the next commit continues at the same seq.
 */
START_TEST(test_commit_failure)
{
	static struct appctx big, small;
	struct jrec *recs;
	struct rlimit old, lim;
	struct stat st;
	char path[256];
	void (*oldsig)(int);
	int i;

	tj = open_journal(0);
	append_wait(0, 10);
	recs = calloc(JOURNAL_BATCH_MAX, sizeof(*recs));
	ck_assert_ptr_nonnull(recs);
	for (i = 0; i < JOURNAL_BATCH_MAX; i++)
		fill_rec(&recs[i], (uint64_t)i, 4);

	/* The data file may not grow: writing the new pages fails with EFBIG. */
	snprintf(path, sizeof(path), "%s/data.mdb", tdir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size;
	oldsig = signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	ck_assert_int_eq(journal_append(tj, tbase, recs, JOURNAL_BATCH_MAX, on_append, &big), 0);
	run_until(ndone + 1);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, oldsig);
	ck_assert_int_eq(big.ap_status, -1);
	ck_assert_uint_eq(journal_size(tj), 10);

	ck_assert_int_eq(journal_append(tj, tbase, recs, 100, on_append, &small), 0);
	run_until(ndone + 1);
	ck_assert_int_eq(small.ap_status, 0);
	ck_assert_uint_eq(small.ap_first, 10);
	check_checkpoint(110, NULL);
	journal_close(tj);
	tj = open_journal(0);
	ck_assert_uint_eq(journal_size(tj), 110);
	free(recs);
}
END_TEST

/*
 * The cadence test keeps the queue filled from the writer thread: each
 * completion queues the batch CAD_QUEUED places behind its own before the
 * writer takes the next one.  Every commit but the first and the last thus
 * finds work waiting, however slowly the test's own thread is scheduled.
 */
enum { CAD_OPS = 16, CAD_QUEUED = 6 };
static struct appctx	 cad_ops[CAD_OPS];
static const struct jrec *cad_recs;
static pthread_mutex_t	 cad_mtx = PTHREAD_MUTEX_INITIALIZER;
static atomic_int	 cad_done, cad_refused;

static void
on_append_refill(void *arg, int status, uint64_t first)
{
	struct appctx *ap = arg;
	int next = (int)(ap - cad_ops) + CAD_QUEUED;

	ap->ap_status = status;
	ap->ap_first = first;
	/* Held by the test until it has queued the first batches, in order. */
	pthread_mutex_lock(&cad_mtx);
	if (next < CAD_OPS && journal_append(tj, NULL, cad_recs, JOURNAL_BATCH_MAX,
	    on_append_refill, &cad_ops[next]) != 0)
		atomic_fetch_add(&cad_refused, 1);
	pthread_mutex_unlock(&cad_mtx);
	atomic_fetch_add(&cad_done, 1);
}

/*
 * The writer's cadence (docs/contract.md §7): the first commit signs, a commit that
 * finds more work queued signs only when a second has passed since the last
 * signature, and the commit that empties the queue signs at once, so the
 * tree it ends with is signed by the time the last append completes.  The
 * bound on the signatures stored therefore follows from the time the commits
 * took: the first and the last, plus one for every whole second.  A writer
 * that signed more often fails it unless its commits were that slow.
 */
START_TEST(test_ckpt_cadence)
{
	struct jrec *recs;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi ckpt;
	MDB_cursor *cur;
	MDB_stat st;
	MDB_val k, v;
	uint8_t *buf = NULL, root[32];
	size_t len;
	uint64_t size, t_ms, total = (uint64_t)CAD_OPS * JOURNAL_BATCH_MAX, t0, elapsed_us, most;
	int i;

	tj = open_journal(0);
	recs = calloc(JOURNAL_BATCH_MAX, sizeof(*recs));
	ck_assert_ptr_nonnull(recs);
	for (i = 0; i < JOURNAL_BATCH_MAX; i++)
		fill_rec(&recs[i], (uint64_t)i, 5);
	/* Full batches, CAD_QUEUED of them queued until the last ones. */
	cad_recs = recs;
	atomic_store(&cad_done, 0);
	atomic_store(&cad_refused, 0);
	t0 = now_us_mono();
	pthread_mutex_lock(&cad_mtx);
	for (i = 0; i < CAD_QUEUED; i++)
		if (journal_append(tj, NULL, recs, JOURNAL_BATCH_MAX, on_append_refill,
		    &cad_ops[i]) != 0)
			atomic_fetch_add(&cad_refused, 1);
	pthread_mutex_unlock(&cad_mtx);
	for (i = 0; i < 60 * 1000 && atomic_load(&cad_done) < CAD_OPS; i++)
		usleep(1000);
	elapsed_us = now_us_mono() - t0;
	ck_assert_int_eq(atomic_load(&cad_refused), 0);
	ck_assert_int_eq(atomic_load(&cad_done), CAD_OPS);
	for (i = 0; i < CAD_OPS; i++) {
		ck_assert_int_eq(cad_ops[i].ap_status, 0);
		ck_assert_uint_eq(cad_ops[i].ap_first, (uint64_t)i * JOURNAL_BATCH_MAX);
	}
	/* No waiting: the commit that emptied the queue signed its tree. */
	ck_assert_int_eq(journal_checkpoint(tj, &buf, &len, &size, root, &t_ms), 0);
	free(buf);
	ck_assert_uint_eq(size, total);
	check_checkpoint(total, NULL);
	journal_close(tj);
	tj = NULL;
	free(recs);

	most = 2 + elapsed_us / 1000000;
	raw_txn(&env, &txn, MDB_RDONLY);
	ck_assert_int_eq(mdb_dbi_open(txn, "ckpt", 0, &ckpt), 0);
	ck_assert_int_eq(mdb_stat(txn, ckpt, &st), 0);
	/* The empty tree's checkpoint was signed by journal_open, not the writer. */
	ck_assert_uint_ge(st.ms_entries, 1);
	st.ms_entries--;
	ck_assert_msg(st.ms_entries >= 2 && st.ms_entries <= most,
	    "%zu checkpoints for %d commits in %llu ms, at most %llu allowed", st.ms_entries,
	    CAD_OPS, (unsigned long long)(elapsed_us / 1000), (unsigned long long)most);
	/* The newest stored checkpoint is the one of the whole tree. */
	ck_assert_int_eq(mdb_cursor_open(txn, ckpt, &cur), 0);
	ck_assert_int_eq(mdb_cursor_get(cur, &k, &v, MDB_LAST), 0);
	ck_assert_uint_eq(k.mv_size, 8);
	for (size = 0, i = 0; i < 8; i++)
		size = (size << 8) | ((uint8_t *)k.mv_data)[i];
	ck_assert_uint_eq(size, total);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(env);
}
END_TEST

/*
 * A commit may skip its checkpoint because more work is queued; when that
 * work then fails to commit, nothing follows it, and the writer must sign
 * the committed tree by itself within about a second.  The data file's size
 * limit lets the queued records (X, then a small A) commit and makes the big
 * batch behind them (B) fail.
 */
START_TEST(test_ckpt_after_failed_commit)
{
	static struct appctx x, a, b;
	struct jrec *recs;
	struct rlimit old, lim;
	struct stat st;
	char path[256];
	void (*oldsig)(int);
	uint8_t *buf = NULL, root[32];
	size_t len;
	off_t before, grown;
	uint64_t size = 0, t_ms, want;
	int i;

	tj = open_journal(0);
	recs = calloc(JOURNAL_BATCH_MAX, sizeof(*recs));
	ck_assert_ptr_nonnull(recs);
	for (i = 0; i < JOURNAL_BATCH_MAX; i++)
		fill_rec(&recs[i], (uint64_t)i, 6);
	snprintf(path, sizeof(path), "%s/data.mdb", tdir);
	append_wait(0, 10);
	/* How much one full batch grows the file. */
	ck_assert_int_eq(stat(path, &st), 0);
	before = st.st_size;
	ck_assert_int_eq(journal_append(tj, tbase, recs, JOURNAL_BATCH_MAX, on_append, &x), 0);
	run_until(ndone + 1);
	ck_assert_int_eq(stat(path, &st), 0);
	grown = st.st_size - before;
	ck_assert_int_gt(grown, 0);

	/* Room for one more full batch and a small one, not for two full ones. */
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)(st.st_size + grown + grown / 2);
	oldsig = signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	ck_assert_int_eq(journal_append(tj, tbase, recs, JOURNAL_BATCH_MAX, on_append, &x), 0);
	ck_assert_int_eq(journal_append(tj, tbase, recs, 10, on_append, &a), 0);
	ck_assert_int_eq(journal_append(tj, tbase, recs, JOURNAL_BATCH_MAX, on_append, &b), 0);
	run_until(ndone + 3);
	ck_assert_int_eq(x.ap_status, 0);
	ck_assert_int_eq(a.ap_status, 0);
	ck_assert_int_eq(b.ap_status, -1);
	want = 10 + 2 * JOURNAL_BATCH_MAX + 10;
	ck_assert_uint_eq(journal_size(tj), want);

	/* No more appends: the writer signs what it has (give it 10 s). */
	for (i = 0; i < 1000 && size != want; i++) {
		ck_assert_int_eq(journal_checkpoint(tj, &buf, &len, &size, root, &t_ms), 0);
		free(buf);
		if (size != want)
			usleep(10000);
	}
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, oldsig);
	check_checkpoint(want, NULL);
	free(recs);
}
END_TEST

/* journal_close commits what was queued; the loop still hears about it. */
START_TEST(test_close_drains)
{
	enum { NOPS = 300 };
	static struct appctx ops[NOPS];
	struct jrec r;
	int i;

	tj = open_journal(0);
	for (i = 0; i < NOPS; i++) {
		fill_rec(&r, (uint64_t)i, 2);
		ck_assert_int_eq(journal_append(tj, tbase, &r, 1, on_append, &ops[i]), 0);
	}
	journal_close(tj);
	tj = NULL;
	run_until(NOPS);
	for (i = 0; i < NOPS; i++) {
		ck_assert_int_eq(ops[i].ap_status, 0);
		ck_assert_uint_eq(ops[i].ap_first, (uint64_t)i);
	}
	tj = open_journal(0);
	ck_assert_uint_eq(journal_size(tj), NOPS);
	check_checkpoint(NOPS, NULL);
}
END_TEST

static atomic_int writer_side;

static void
on_append_writer(void *arg, int status, uint64_t first)
{
	(void)arg;
	(void)first;
	if (status == 0)
		atomic_fetch_add(&writer_side, 1);
}

/* Seqs a query returns, in the order it returns them. */
struct seqs {
	uint64_t	sq_v[64];
	size_t		sq_n;
};

static int
seqs_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct seqs *sq = arg;

	(void)rec;
	(void)len;
	ck_assert_uint_lt(sq->sq_n, 64);
	sq->sq_v[sq->sq_n++] = seq;
	return 0;
}

static void
query_expect(const struct journal_filter *f, bool want_more, const uint64_t *want,
    size_t nwant)
{
	struct seqs sq = { .sq_n = 0 };
	bool more;
	uint64_t next;
	size_t i;

	ck_assert_int_eq(journal_query(tj, f, seqs_cb, &sq, &more, &next), 0);
	ck_assert_uint_eq(sq.sq_n, nwant);
	for (i = 0; i < nwant; i++)
		ck_assert_uint_eq(sq.sq_v[i], want[i]);
	ck_assert(more == want_more);
	if (want_more)
		ck_assert_uint_eq(next, want[nwant - 1]);
}

/* Queries walk an index, or the records, either way, within their bounds. */
START_TEST(test_query_directions)
{
	struct journal_filter f;

	tj = open_journal(0);
	ck_assert_uint_eq(append_wait(0, 50), 0);	/* even seqs are nhc's */

	memset(&f, 0, sizeof(f));
	snprintf(f.jf_dept, sizeof(f.jf_dept), "nhc");
	f.jf_limit = 5;
	query_expect(&f, true, (const uint64_t[]){ 0, 2, 4, 6, 8 }, 5);
	f.jf_has_after = true;
	f.jf_after = 8;
	query_expect(&f, true, (const uint64_t[]){ 10, 12, 14, 16, 18 }, 5);

	/* Newest first, paged by "before". */
	memset(&f, 0, sizeof(f));
	snprintf(f.jf_dept, sizeof(f.jf_dept), "nhc");
	f.jf_limit = 5;
	f.jf_newest_first = true;
	query_expect(&f, true, (const uint64_t[]){ 48, 46, 44, 42, 40 }, 5);
	f.jf_has_before = true;
	f.jf_before = 40;
	query_expect(&f, true, (const uint64_t[]){ 38, 36, 34, 32, 30 }, 5);
	f.jf_before = 3;
	query_expect(&f, false, (const uint64_t[]){ 2, 0 }, 2);
	f.jf_before = 0;
	query_expect(&f, false, NULL, 0);
	/* ... and not below "after". */
	f.jf_before = 49;
	f.jf_has_after = true;
	f.jf_after = 44;
	query_expect(&f, false, (const uint64_t[]){ 48, 46 }, 2);

	/* Forward with an upper bound. */
	memset(&f, 0, sizeof(f));
	snprintf(f.jf_dept, sizeof(f.jf_dept), "nhc");
	f.jf_has_before = true;
	f.jf_before = 9;
	query_expect(&f, false, (const uint64_t[]){ 0, 2, 4, 6, 8 }, 5);

	/* No index: the records themselves, newest first. */
	memset(&f, 0, sizeof(f));
	f.jf_limit = 3;
	f.jf_newest_first = true;
	query_expect(&f, true, (const uint64_t[]){ 49, 48, 47 }, 3);
	f.jf_has_before = true;
	f.jf_before = 2;
	query_expect(&f, false, (const uint64_t[]){ 1, 0 }, 2);
}
END_TEST

START_TEST(test_append_rejects)
{
	struct jrec r[2];
	int i;

	tj = open_journal(0);
	fill_rec(&r[0], 0, 0);
	fill_rec(&r[1], 1, 0);
	ck_assert_int_eq(journal_append(tj, tbase, r, 0, on_append, NULL), -1);
	ck_assert_int_eq(journal_append(tj, tbase, r, JOURNAL_BATCH_MAX + 1, on_append, NULL),
	    -1);
	r[1].jr_kind = (enum jkind)99;
	ck_assert_int_eq(journal_append(tj, tbase, r, 2, on_append, NULL), -1);

	/* Without a base the completion runs on the writer thread. */
	atomic_store(&writer_side, 0);
	ck_assert_int_eq(journal_append(tj, NULL, r, 1, on_append_writer, NULL), 0);
	for (i = 0; i < 5000 && atomic_load(&writer_side) == 0; i++)
		usleep(1000);
	ck_assert_int_eq(atomic_load(&writer_side), 1);
	ck_assert_uint_eq(journal_size(tj), 1);
}
END_TEST

/* The kind of the one record it is called for. */
static int
kind_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	char *kind = arg;
	msgpack_zone z;
	msgpack_object o;

	(void)seq;
	ck_assert(msgpack_zone_init(&z, 1024));
	ck_assert_int_eq(mpk_unpack(rec, len, &z, &o), 0);
	ck_assert_int_eq(mpk_get_str(&o, "kind", kind, 16), 0);
	msgpack_zone_destroy(&z);
	return 0;
}

/*
 * The writer stores a revocation with its record in one commit, in queue
 * order with appends; an older revocation of the same key changes nothing.
 */
START_TEST(test_revoke)
{
	static struct appctx before, rv, after, older;
	struct jrec r, rec;
	uint8_t key[JOURNAL_REVOKE_KEY_MAX], jti[16];
	size_t keylen;
	uint64_t at, now = (uint64_t)time(NULL);
	char kind[16];

	tj = open_journal(0);
	ck_assert_uint_eq(append_wait(0, 3), 0);
	memset(jti, 5, sizeof(jti));
	ck_assert_int_eq(journal_revoke_key(tj, jti, NULL, NULL, key, &keylen), 0);
	ck_assert_int_eq(journal_revoked(tj, key, keylen, &at), 0);
	memset(&r, 0, sizeof(r));
	r.jr_kind = JK_REVOKE;
	r.jr_t_ms = now * 1000;
	snprintf(r.jr_op, sizeof(r.jr_op), "jti");
	fill_rec(&rec, 7, 2);
	ck_assert_int_eq(journal_append(tj, tbase, &rec, 1, on_append, &before), 0);
	ck_assert_int_eq(journal_revoke(tj, tbase, key, keylen, now, now + 720, &r, on_append,
	    &rv), 0);
	ck_assert_int_eq(journal_append(tj, tbase, &rec, 1, on_append, &after), 0);
	run_until(ndone + 3);
	ck_assert_int_eq(before.ap_status, 0);
	ck_assert_int_eq(rv.ap_status, 0);
	ck_assert_int_eq(after.ap_status, 0);
	ck_assert_uint_eq(before.ap_first, 3);
	ck_assert_uint_eq(rv.ap_first, 4);
	ck_assert_uint_eq(after.ap_first, 5);
	ck_assert_int_eq(journal_leaves(tj, 4, 5, kind_cb, kind), 0);
	ck_assert_str_eq(kind, "revoke");
	ck_assert_int_eq(journal_revoked(tj, key, keylen, &at), 1);
	ck_assert_uint_eq(at, now);

	/* Without a record nothing is appended; the older time does not win. */
	ck_assert_int_eq(journal_revoke(tj, tbase, key, keylen, now - 100, now + 620, NULL,
	    on_append, &older), 0);
	run_until(ndone + 1);
	ck_assert_int_eq(older.ap_status, 0);
	ck_assert_uint_eq(journal_size(tj), 6);
	journal_close(tj);
	tj = open_journal(0);
	ck_assert_int_eq(journal_revoked(tj, key, keylen, &at), 1);
	ck_assert_uint_eq(at, now);

	/* Refused before they are queued. */
	ck_assert_int_eq(journal_revoke(tj, tbase, key, 0, now, now, NULL, on_append, NULL), -1);
	ck_assert_int_eq(journal_revoke(tj, tbase, key, JOURNAL_REVOKE_KEY_MAX + 1, now, now,
	    NULL, on_append, NULL), -1);
	r.jr_kind = (enum jkind)99;
	ck_assert_int_eq(journal_revoke(tj, tbase, key, keylen, now, now, &r, on_append, NULL),
	    -1);
}
END_TEST

START_TEST(test_pseudonym)
{
	struct journal_config cfg;
	EVP_PKEY *other;
	uint8_t a[32], b[32], want[32];
	unsigned int len = 32;
	char err[256] = "";
	const char *id = "110101201801010012";

	tj = open_journal(0);
	journal_pseudonym(tj, id, a);
	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), check_hmac_key, sizeof(check_hmac_key),
	    (const unsigned char *)id, strlen(id), want, &len));
	ck_assert_mem_eq(a, want, 32);
	journal_pseudonym(tj, "110101201801010020", b);
	ck_assert_mem_ne(a, b, 32);
	journal_close(tj);
	tj = NULL;

	/* A short pseudonym key would make ID numbers guessable. */
	check_journal_config(&cfg, tdir, tkey, tcert);
	cfg.jc_hmac_key_len = 8;
	ck_assert_ptr_null(journal_open(&cfg, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "16 bytes"));
	/* A key that does not belong to the certificate is refused. */
	cfg.jc_hmac_key_len = sizeof(check_hmac_key);
	other = EVP_EC_gen("P-256");
	cfg.jc_ckpt_key = other;
	ck_assert_ptr_null(journal_open(&cfg, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "does not match"));
	EVP_PKEY_free(other);
}
END_TEST

static Suite *
journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc;

	tc = tcase_create("pack");
	tcase_add_test(tc, test_pack_exact);
	tcase_add_test(tc, test_pack_all_fields);
	suite_add_tcase(s, tc);

	tc = tcase_create("lmdb");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_concurrent_appends);
	tcase_add_test(tc, test_reopen_and_proofs);
	tcase_add_test(tc, test_proofs_from_nodes);
	tcase_add_test(tc, test_nodes_rebuilt);
	tcase_add_test(tc, test_nodes_used);
	tcase_add_test(tc, test_reopen_refuses_inconsistent);
	tcase_add_test(tc, test_reopen_signs_tail);
	tcase_add_test(tc, test_jti);
	tcase_add_test(tc, test_jti_expiry);
	tcase_add_test(tc, test_map_growth);
	tcase_add_test(tc, test_commit_failure);
	tcase_add_test(tc, test_ckpt_cadence);
	tcase_add_test(tc, test_ckpt_after_failed_commit);
	tcase_add_test(tc, test_close_drains);
	tcase_add_test(tc, test_append_rejects);
	tcase_add_test(tc, test_query_directions);
	tcase_add_test(tc, test_revoke);
	tcase_add_test(tc, test_pseudonym);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	/* Completions are posted to the loop from the writer thread. */
	if (evthread_use_pthreads() != 0)
		return EXIT_FAILURE;
	snprintf(tparent, sizeof(tparent), "/tmp/check_journal.XXXXXX");
	if (mkdtemp(tparent) == NULL)
		return EXIT_FAILURE;
	sr = srunner_create(journal_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	(void)check_rm_tree(tparent);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
