/*
 * cryptolimit.c - the machine's limits an exchange cannot beat, measured in
 * process: how many consent-token verifications (ES256, SM2) and seal
 * signatures (ES256, SM2) one core does per second through the core
 * library's envelope code, and how long one fdatasync takes on a given
 * directory's file system.  bench/load/run prints "exchanges/s if crypto
 * were the only cost" from these: one token verification per exchange,
 * on every core.
 *
 *   cryptolimit [--seconds S] [--fsync-dir DIR] [--fsyncs N]
 *
 * Prints one JSON line.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "lianban.h"

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A fresh key of the curve named (P-256 or SM2). */
static EVP_PKEY *
climit_key(const char *curve)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, strcmp(curve, "SM2") == 0 ? "SM2" : "EC", curve);
}

/*
 * Signatures and verifications per second on this thread for the tbs bytes
 * of a consent token's size, through envelope_sig_create and
 * envelope_sig_check as the gateway's workers use them.
 */
static int
climit_rates(const char *curve, enum lb_alg alg, double secs, double *signs, double *verifies)
{
	EVP_PKEY	*key = climit_key(curve);
	uint8_t		 tbs[400], *sig = NULL;
	size_t		 siglen = 0;
	double		 t0, t;
	long		 n;
	int		 ret = -1;

	if (key == NULL)
		goto done;
	memset(tbs, 0xa5, sizeof(tbs));
	for (n = 0, t0 = now_s(); (t = now_s()) - t0 < secs; n++) {
		free(sig);
		sig = NULL;
		if (envelope_sig_create(key, tbs, sizeof(tbs), &sig, &siglen) != 0)
			goto done;
	}
	*signs = (double)n / (t - t0);
	for (n = 0, t0 = now_s(); (t = now_s()) - t0 < secs; n++)
		if (envelope_sig_check(key, alg, tbs, sizeof(tbs), sig, siglen) != 0)
			goto done;
	*verifies = (double)n / (t - t0);
	ret = 0;
done:
	ERR_clear_error();
	free(sig);
	EVP_PKEY_free(key);
	return ret;
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * The median time of n 4 KiB writes each followed by fdatasync, in ms, in a
 * file made in dir and removed afterwards: what one durable commit costs at
 * least on that file system.
 */
static int
climit_fsync(const char *dir, int n, double *median_ms)
{
	char	 path[4096], buf[4096];
	double	*t = NULL, t0;
	int	 fd = -1, i, ret = -1;

	snprintf(path, sizeof(path), "%s/cryptolimit.XXXXXX", dir);
	if ((fd = mkstemp(path)) < 0 || (t = calloc((size_t)n, sizeof(*t))) == NULL)
		goto done;
	memset(buf, 'x', sizeof(buf));
	for (i = 0; i < n; i++) {
		t0 = now_s();
		if (pwrite(fd, buf, sizeof(buf), (off_t)(i % 16) * (off_t)sizeof(buf)) !=
		    (ssize_t)sizeof(buf) || fdatasync(fd) != 0)
			goto done;
		t[i] = (now_s() - t0) * 1e3;
	}
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	*median_ms = t[n / 2];
	ret = 0;
done:
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	free(t);
	return ret;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "fsync-dir", required_argument, NULL, 'f' },
		{ "fsyncs", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*dir = NULL;
	double		 secs = 1, es_sign = 0, es_verify = 0, sm_sign = 0, sm_verify = 0;
	double		 fsync_ms = -1;
	long		 cores = sysconf(_SC_NPROCESSORS_ONLN);
	int		 ch, nfsync = 200;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': secs = atof(optarg); break;
		case 'f': dir = optarg; break;
		case 'n': nfsync = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: cryptolimit [--seconds S] [--fsync-dir DIR] "
			    "[--fsyncs N]\n");
			return 2;
		}
	}
	if (secs <= 0 || nfsync < 1 || cores < 1) {
		fprintf(stderr, "cryptolimit: bad option value\n");
		return 2;
	}
	if (climit_rates("P-256", LB_ALG_ES256, secs, &es_sign, &es_verify) != 0 ||
	    climit_rates("SM2", LB_ALG_SM2, secs, &sm_sign, &sm_verify) != 0) {
		fprintf(stderr, "cryptolimit: signing or verifying failed\n");
		return 1;
	}
	if (dir != NULL && climit_fsync(dir, nfsync, &fsync_ms) != 0) {
		fprintf(stderr, "cryptolimit: cannot time fdatasync in %s\n", dir);
		return 1;
	}
	printf("{\"cryptolimit\":1,\"cores\":%ld,\"es256_sign_per_core\":%.0f,"
	    "\"es256_verify_per_core\":%.0f,\"sm2_sign_per_core\":%.0f,"
	    "\"sm2_verify_per_core\":%.0f,\"es256_exchanges_limit\":%.0f,"
	    "\"sm2_exchanges_limit\":%.0f,\"fdatasync_ms\":%.3f}\n", cores, es_sign, es_verify,
	    sm_sign, sm_verify, es_verify * (double)cores, sm_verify * (double)cores, fsync_ms);
	return 0;
}
