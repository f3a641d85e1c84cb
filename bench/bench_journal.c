/*
 * bench_journal.c - durable journal appends per second: group commit
 * against one commit per record, in the same run (docs/performance.md).
 *
 * Group commit: several producer threads append concurrently, one record
 * per journal_append, each keeping a window of appends in flight, as the
 * gateway's loops do with the exchanges they serve.  The single writer
 * thread takes whatever is queued into one LMDB write transaction.
 *
 * One commit per record: one producer waits for each append to complete
 * before it queues the next, so every transaction (and every fsync) holds
 * exactly one record.
 *
 * Both modes go through the same journal code on a fresh LMDB directory per
 * round (under $TMPDIR, default /tmp), with fsync on every commit; a record
 * counts only when its completion reported it durable.  The figures are
 * medians of several rounds.
 *
 * With -x N, one group-commit round fills a journal of -n records and then
 * times N inclusion proofs (random seq, full tree), N consistency proofs
 * (random first size to the full tree) and N roots of random sizes, as the
 * auditor API serves them; it prints the median and the 99th percentile.
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lianban.h"

#define BENCH_ROUNDS_MAX	99
#define BENCH_PRODUCERS_MAX	64
#define BENCH_WINDOW_MAX	4096

struct bench_opts {
	int		 bo_rounds;
	int		 bo_producers;
	int		 bo_window;
	long		 bo_group_n;	/* records per group-commit round */
	long		 bo_single_n;	/* records per one-commit-per-record round */
	const char	*bo_tmp;
	long		 bo_proofs;	/* -x: proofs of each kind timed, 0 = none */
};

static void	proofs_report(struct journal *, const char *, const struct bench_opts *);

static EVP_PKEY		*bkey;
static X509		*bcert;
static uint8_t		 bhmac[32];

/* A producer's window: completions (on the writer thread) hand slots back. */
struct producer {
	pthread_t		 pr_thread;
	struct journal		*pr_j;
	pthread_mutex_t		 pr_mtx;
	pthread_cond_t		 pr_cond;
	int			 pr_inflight;
	int			 pr_window;
	long			 pr_n;
	long			 pr_done;
	long			 pr_failed;
	unsigned		 pr_id;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
make_key(void)
{
	X509_NAME *name;
	size_t i;

	if ((bkey = EVP_EC_gen("P-256")) == NULL || (bcert = X509_new()) == NULL)
		return -1;
	X509_set_version(bcert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(bcert), 1);
	X509_gmtime_adj(X509_getm_notBefore(bcert), -60);
	X509_gmtime_adj(X509_getm_notAfter(bcert), 86400);
	name = X509_get_subject_name(bcert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"bench checkpoint", -1, -1, 0);
	X509_set_issuer_name(bcert, name);
	X509_set_pubkey(bcert, bkey);
	if (X509_sign(bcert, bkey, EVP_sha256()) <= 0)
		return -1;
	for (i = 0; i < sizeof(bhmac); i++)
		bhmac[i] = (uint8_t)(0x5a ^ i);
	return 0;
}

/* An item record as the gateway writes it for one served certificate. */
static void
fill_rec(struct jrec *r, unsigned who, uint64_t n)
{
	memset(r, 0, sizeof(*r));
	r->jr_kind = JK_ITEM;
	r->jr_t_ms = now_ms();
	r->jr_has_exch = r->jr_has_subject = r->jr_has_actor = r->jr_has_consent = true;
	r->jr_has_doc = r->jr_has_claim = r->jr_has_latency = true;
	memcpy(r->jr_exch, &n, sizeof(n));
	memcpy(r->jr_exch + 8, &who, sizeof(who));
	memset(r->jr_subject, (int)(n % 251), sizeof(r->jr_subject));
	memcpy(r->jr_subject, &n, sizeof(n));
	memset(r->jr_actor, (int)(n % 241), sizeof(r->jr_actor));
	memset(r->jr_consent, (int)(n % 239), sizeof(r->jr_consent));
	memset(r->jr_doc, (int)(n % 233), sizeof(r->jr_doc));
	memset(r->jr_claim, (int)(n % 229), sizeof(r->jr_claim));
	r->jr_latency_us = (int64_t)(1000 + n % 5000);
	snprintf(r->jr_consumer, sizeof(r->jr_consumer), "newborn");
	snprintf(r->jr_dept, sizeof(r->jr_dept), "%s", (n & 1) ? "nhc" : "psb");
	snprintf(r->jr_item, sizeof(r->jr_item), "%s", (n & 1) ?
	    "birth_medical_certificate" : "household_register");
	snprintf(r->jr_bundle, sizeof(r->jr_bundle), "newborn");
	snprintf(r->jr_rel, sizeof(r->jr_rel), "guardian");
	snprintf(r->jr_decision, sizeof(r->jr_decision), "allow");
	snprintf(r->jr_code, sizeof(r->jr_code), "ok");
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static struct journal *
bench_open(const char *dir)
{
	struct journal_config cfg = {
		.jc_dir = dir,
		.jc_origin = "lianban-bench",
		.jc_ckpt_key = bkey,
		.jc_ckpt_cert = bcert,
		.jc_hmac_key = bhmac,
		.jc_hmac_key_len = sizeof(bhmac),
	};
	char err[256] = "";
	struct journal *j;

	if ((j = journal_open(&cfg, err, sizeof(err))) == NULL)
		fprintf(stderr, "bench_journal: %s\n", err);
	return j;
}

/*
 * Runs on the journal writer thread (no event base): frees a window slot.
 * The producer is woken only when half its window is free, so that waking
 * it costs the writer little (a loop's completions are batched the same way).
 */
static void
on_done(void *arg, int status, uint64_t first)
{
	struct producer *pr = arg;

	(void)first;
	pthread_mutex_lock(&pr->pr_mtx);
	pr->pr_inflight--;
	if (status == 0)
		pr->pr_done++;
	else
		pr->pr_failed++;
	if (pr->pr_inflight == pr->pr_window / 2 || pr->pr_inflight == 0)
		pthread_cond_signal(&pr->pr_cond);
	pthread_mutex_unlock(&pr->pr_mtx);
}

static void *
producer_main(void *arg)
{
	struct producer *pr = arg;
	struct jrec r;
	uint64_t n;
	long i;

	/* One record made up front; each append changes its exchange id and subject. */
	fill_rec(&r, pr->pr_id, 0);
	for (i = 0; i < pr->pr_n; i++) {
		n = (uint64_t)i;
		memcpy(r.jr_exch, &n, sizeof(n));
		memcpy(r.jr_subject, &n, sizeof(n));
		r.jr_subject[8] = (uint8_t)pr->pr_id;
		pthread_mutex_lock(&pr->pr_mtx);
		while (pr->pr_inflight >= pr->pr_window)
			pthread_cond_wait(&pr->pr_cond, &pr->pr_mtx);
		pr->pr_inflight++;
		pthread_mutex_unlock(&pr->pr_mtx);
		/* A full queue refuses the append (503 in the gateway); retry. */
		while (journal_append(pr->pr_j, NULL, &r, 1, on_done, pr) == -1)
			usleep(100);
	}
	pthread_mutex_lock(&pr->pr_mtx);
	while (pr->pr_inflight > 0)
		pthread_cond_wait(&pr->pr_cond, &pr->pr_mtx);
	pthread_mutex_unlock(&pr->pr_mtx);
	return NULL;
}

/*
 * One round: nprod producers, each with the given window, n records in all.
 * Returns durable records per second, or a negative value on failure.
 */
static double
bench_round(const struct bench_opts *o, int nprod, int window, long n, bool proofs)
{
	struct producer pr[BENCH_PRODUCERS_MAX];
	struct journal *j = NULL;
	char dir[512];
	double t0, t1, rate = -1;
	long done = 0, failed = 0;
	int i, started = 0;

	snprintf(dir, sizeof(dir), "%s/bench_journal.XXXXXX", o->bo_tmp);
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "bench_journal: mkdtemp %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if ((j = bench_open(dir)) == NULL)
		goto done;
	memset(pr, 0, sizeof(pr));
	t0 = now_s();
	for (i = 0; i < nprod; i++) {
		pr[i].pr_j = j;
		pr[i].pr_id = (unsigned)i;
		pr[i].pr_window = window;
		pr[i].pr_n = n / nprod + (i < n % nprod ? 1 : 0);
		pthread_mutex_init(&pr[i].pr_mtx, NULL);
		pthread_cond_init(&pr[i].pr_cond, NULL);
		if (pthread_create(&pr[i].pr_thread, NULL, producer_main, &pr[i]) != 0)
			break;
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(pr[i].pr_thread, NULL);
	t1 = now_s();
	for (i = 0; i < nprod; i++) {
		done += pr[i].pr_done;
		failed += pr[i].pr_failed;
		pthread_cond_destroy(&pr[i].pr_cond);
		pthread_mutex_destroy(&pr[i].pr_mtx);
	}
	if (started != nprod || failed != 0 || done != n || journal_size(j) != (uint64_t)n) {
		fprintf(stderr, "bench_journal: %ld of %ld records committed, %ld failed\n",
		    done, n, failed);
		goto done;
	}
	rate = (double)n / (t1 - t0);
	if (proofs)
		proofs_report(j, dir, o);
done:
	journal_close(j);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return rate;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* 64-bit xorshift: the same indices on every run. */
static uint64_t
next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void
print_times(const char *what, double *us, long n)
{
	double med;

	med = median(us, (int)n);
	printf("%-22s median %10.1f us   p99 %10.1f us   (%ld calls)\n", what, med,
	    us[(long)((double)(n - 1) * 0.99)], n);
}

/* Times proofs and roots over the journal just filled (-x). */
static void
proofs_report(struct journal *j, const char *dir, const struct bench_opts *o)
{
	uint8_t path[MK_MAX_PATH][32], root[32];
	char file[600];
	struct stat sb;
	uint64_t size = journal_size(j), x = 88172645463325252ULL, a;
	size_t npath;
	double *us, t0;
	long i, bad = 0;

	if ((us = calloc((size_t)o->bo_proofs, sizeof(*us))) == NULL)
		return;
	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	printf("journal of %llu records, data.mdb %lld bytes\n", (unsigned long long)size,
	    stat(file, &sb) == 0 ? (long long)sb.st_size : -1LL);
	for (i = 0; i < o->bo_proofs; i++) {
		a = next_rand(&x) % size;
		t0 = now_s();
		bad += journal_inclusion(j, a, size, path, &npath) != 0;
		us[i] = (now_s() - t0) * 1e6;
	}
	print_times("inclusion", us, o->bo_proofs);
	for (i = 0; i < o->bo_proofs; i++) {
		a = 1 + next_rand(&x) % size;
		t0 = now_s();
		bad += journal_consistency(j, a, size, path, &npath) != 0;
		us[i] = (now_s() - t0) * 1e6;
	}
	print_times("consistency", us, o->bo_proofs);
	for (i = 0; i < o->bo_proofs; i++) {
		a = 1 + next_rand(&x) % size;
		t0 = now_s();
		bad += journal_root_at(j, a, root) != 0;
		us[i] = (now_s() - t0) * 1e6;
	}
	print_times("root at a random size", us, o->bo_proofs);
	if (bad != 0)
		printf("%ld calls failed\n", bad);
	free(us);
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_journal [-r rounds] [-p producers] [-w window] "
	    "[-n group-records] [-s single-records] [-t tmpdir] [-x proofs]\n");
	exit(2);
}

static long
num_arg(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < lo || v > hi)
		usage();
	return v;
}

int
main(int argc, char **argv)
{
	struct bench_opts o = { 5, 4, 512, 200000, 400, NULL, 0 };
	double group[BENCH_ROUNDS_MAX], single[BENCH_ROUNDS_MAX], g, s;
	int c, i;

	if ((o.bo_tmp = getenv("TMPDIR")) == NULL || o.bo_tmp[0] == '\0')
		o.bo_tmp = "/tmp";
	while ((c = getopt(argc, argv, "r:p:w:n:s:t:x:")) != -1) {
		switch (c) {
		case 'r':
			o.bo_rounds = (int)num_arg(optarg, 1, BENCH_ROUNDS_MAX);
			break;
		case 'p':
			o.bo_producers = (int)num_arg(optarg, 1, BENCH_PRODUCERS_MAX);
			break;
		case 'w':
			o.bo_window = (int)num_arg(optarg, 1, BENCH_WINDOW_MAX);
			break;
		case 'n':
			o.bo_group_n = num_arg(optarg, 1, 100000000);
			break;
		case 's':
			o.bo_single_n = num_arg(optarg, 1, 10000000);
			break;
		case 't':
			o.bo_tmp = optarg;
			break;
		case 'x':
			o.bo_proofs = num_arg(optarg, 1, 1000000);
			break;
		default:
			usage();
		}
	}
	if (make_key() == -1) {
		fprintf(stderr, "bench_journal: cannot make the checkpoint key\n");
		return 1;
	}
	if (o.bo_proofs > 0) {
		printf("journal proofs: %ld records appended by group commit under %s\n",
		    o.bo_group_n, o.bo_tmp);
		if (bench_round(&o, o.bo_producers, o.bo_window, o.bo_group_n, true) < 0)
			return 1;
		EVP_PKEY_free(bkey);
		X509_free(bcert);
		return 0;
	}
	printf("journal appends, fsync on every commit, LMDB under %s\n", o.bo_tmp);
	printf("group commit: %d producers x window %d, %ld records per round\n",
	    o.bo_producers, o.bo_window, o.bo_group_n);
	printf("one commit per record: 1 producer, window 1, %ld records per round\n",
	    o.bo_single_n);
	printf("%-6s %18s %18s\n", "round", "group rec/s", "per-record rec/s");
	for (i = 0; i < o.bo_rounds; i++) {
		group[i] = bench_round(&o, o.bo_producers, o.bo_window, o.bo_group_n, false);
		single[i] = bench_round(&o, 1, 1, o.bo_single_n, false);
		if (group[i] < 0 || single[i] < 0)
			return 1;
		printf("%-6d %18.0f %18.0f\n", i + 1, group[i], single[i]);
		fflush(stdout);
	}
	g = median(group, o.bo_rounds);
	s = median(single, o.bo_rounds);
	printf("median: group commit %.0f records/s, one commit per record %.0f records/s, "
	    "ratio %.1fx\n", g, s, g / s);
	EVP_PKEY_free(bkey);
	X509_free(bcert);
	return 0;
}
