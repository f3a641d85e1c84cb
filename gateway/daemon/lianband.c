/*
 * lianband - the lianban data-exchange gateway daemon.
 *
 * Runs on embedded defaults with no arguments (DESIGN §12).  One event loop
 * serves HTTPS and talks to the departments; a worker pool signs and
 * verifies; one journal writer thread commits the audit log.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <openssl/crypto.h>

#include "gateway.h"

#define SHUTDOWN_GRACE_S	30

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: lianband [options]\n"
	    "\n"
	    "The lianban data-exchange gateway.  With no options it runs the demo\n"
	    "platform on its embedded defaults.\n"
	    "\n"
	    "  --listen HOST:PORT   HTTPS address (default 127.0.0.1:8443; port 0 picks one)\n"
	    "  --data DIR           LMDB journal directory (default ./var)\n"
	    "  --certs DIR          PKI directory made by certs/mkdemo (default certs/demo)\n"
	    "  --policies DIR       bundle policies, *.json (default policies)\n"
	    "  --adapters DIR       adapter specs, *.json (default adapters/specs)\n"
	    "  --endpoints FILE     hosts and networks each department's adapters registered\n"
	    "                       through the API may reach (default adapters/endpoints.json;\n"
	    "                       without it they reach none)\n"
	    "  --id GATEWAY_ID      gateway id, the consent audience (default lianban-demo)\n"
	    "  --crl FILE           CRLs (PEM) of the client CA, checked for every client\n"
	    "                       certificate and reloaded on SIGHUP (default\n"
	    "                       CERTS/client-ca.crl when it exists)\n"
	    "  --workers N          crypto worker threads (default 2)\n"
	    "  --seal-window MS     how long seal claims wait for others to share their\n"
	    "                       batch signature while exchanges are in flight\n"
	    "                       (default 2; 0 signs every claim alone)\n"
	    "  --seal-batch N       claims per seal batch at most (1 to 256, default 256)\n"
	    "  --client-rate N      requests per second of each client certificate\n"
	    "                       (1 to 1000000, default 200)\n"
	    "  --client-burst N     requests a client may send at once (default 2000)\n"
	    "  --registry-ids N     adapter ids each department may register (default 32)\n"
	    "  --registry-versions N\n"
	    "                       versions of an id the registry keeps; older ones\n"
	    "                       are removed, their hashes stay in the journal\n"
	    "                       (default 16)\n"
	    "  --registry-bytes N   bytes of specs each department may store in the\n"
	    "                       registry (default 67108864, 64 MiB)\n"
	    "  --console DIR        the audit console's files, served at /console/\n"
	    "                       (default ./console, else the installed copy)\n"
	    "  --backup DEST        copy the journal and registry of --data into the new\n"
	    "                       directory DEST while a daemon may be running, then exit\n"
	    "  -v, --verbose        log every exchange state transition\n"
	    "  -V, --version        print the version and exit\n"
	    "  -h, --help           this text\n"
	    "\n"
	    "Signals: SIGHUP reloads trust (the client CA and CRL too), policies, adapters\n"
	    "and the endpoint list; SIGTERM and SIGINT finish the exchanges in flight,\n"
	    "commit the journal and exit.\n");
}

/* A whole decimal number in [lo, hi], nothing before or after it. */
static int
parse_int(const char *s, long lo, long hi, int *out)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int
parse_args(int argc, char **argv, struct gw_config *gc)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "data", required_argument, NULL, 'd' },
		{ "certs", required_argument, NULL, 'c' },
		{ "policies", required_argument, NULL, 'p' },
		{ "adapters", required_argument, NULL, 'a' },
		{ "endpoints", required_argument, NULL, 'e' },
		{ "id", required_argument, NULL, 'i' },
		{ "crl", required_argument, NULL, 'K' },
		{ "workers", required_argument, NULL, 'w' },
		{ "seal-window", required_argument, NULL, 'W' },
		{ "seal-batch", required_argument, NULL, 'B' },
		{ "client-rate", required_argument, NULL, 'R' },
		{ "client-burst", required_argument, NULL, 'U' },
		{ "registry-ids", required_argument, NULL, 'I' },
		{ "registry-versions", required_argument, NULL, 'N' },
		{ "registry-bytes", required_argument, NULL, 'Y' },
		{ "console", required_argument, NULL, 'C' },
		{ "backup", required_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char	*dst;
	size_t	 dstsize;
	int	 ch, n;

	snprintf(gc->gc_listen, sizeof(gc->gc_listen), "127.0.0.1:8443");
	snprintf(gc->gc_data, sizeof(gc->gc_data), "var");
	snprintf(gc->gc_certs, sizeof(gc->gc_certs), "certs/demo");
	snprintf(gc->gc_policies, sizeof(gc->gc_policies), "policies");
	snprintf(gc->gc_adapters, sizeof(gc->gc_adapters), "adapters/specs");
	snprintf(gc->gc_endpoints, sizeof(gc->gc_endpoints), "adapters/endpoints.json");
	snprintf(gc->gc_id, sizeof(gc->gc_id), "lianban-demo");
	/* Run from the source tree, its console; otherwise the installed one. */
	snprintf(gc->gc_console, sizeof(gc->gc_console), "%s",
	    access("console/index.html", R_OK) == 0 ? "console" : LB_CONSOLE_DIR);
	gc->gc_workers = 2;
	gc->gc_seal_window_us = SEALER_WINDOW_US;
	gc->gc_seal_batch = SEALER_MAX_BATCH;
	gc->gc_client_rate = THROTTLE_RATE_DEFAULT;
	gc->gc_client_burst = THROTTLE_BURST_DEFAULT;
	gc->gc_reg_ids = REG_QUOTA_IDS;
	gc->gc_reg_versions = REG_QUOTA_VERSIONS;
	gc->gc_reg_bytes = REG_QUOTA_BYTES;
	while ((ch = getopt_long(argc, argv, "vVh", opts, NULL)) != -1) {
		dst = NULL;
		switch (ch) {
		case 'l': dst = gc->gc_listen; dstsize = sizeof(gc->gc_listen); break;
		case 'd': dst = gc->gc_data; dstsize = sizeof(gc->gc_data); break;
		case 'c': dst = gc->gc_certs; dstsize = sizeof(gc->gc_certs); break;
		case 'p': dst = gc->gc_policies; dstsize = sizeof(gc->gc_policies); break;
		case 'a': dst = gc->gc_adapters; dstsize = sizeof(gc->gc_adapters); break;
		case 'e':
			dst = gc->gc_endpoints;
			dstsize = sizeof(gc->gc_endpoints);
			gc->gc_endpoints_given = true;
			break;
		case 'i': dst = gc->gc_id; dstsize = sizeof(gc->gc_id); break;
		case 'C': dst = gc->gc_console; dstsize = sizeof(gc->gc_console); break;
		case 'K': dst = gc->gc_crl; dstsize = sizeof(gc->gc_crl); break;
		case 'k': dst = gc->gc_backup; dstsize = sizeof(gc->gc_backup); break;
		case 'w':
			if (parse_int(optarg, 1, 64, &n) != 0) {
				fprintf(stderr, "lianband: --workers must be 1 to 64\n");
				return -1;
			}
			gc->gc_workers = n;
			break;
		case 'W':
			if (parse_int(optarg, 0, 1000, &n) != 0) {
				fprintf(stderr, "lianband: --seal-window must be 0 to 1000 ms\n");
				return -1;
			}
			gc->gc_seal_window_us = (unsigned)n * 1000;
			break;
		case 'B':
			if (parse_int(optarg, 1, SEALER_MAX_BATCH, &n) != 0) {
				fprintf(stderr, "lianband: --seal-batch must be 1 to %d\n",
				    SEALER_MAX_BATCH);
				return -1;
			}
			gc->gc_seal_batch = (unsigned)n;
			break;
		case 'R':
		case 'U':
			if (parse_int(optarg, 1, 1000000, &n) != 0) {
				fprintf(stderr, "lianband: --client-%s must be 1 to 1000000\n",
				    ch == 'R' ? "rate" : "burst");
				return -1;
			}
			*(ch == 'R' ? &gc->gc_client_rate : &gc->gc_client_burst) = (uint32_t)n;
			break;
		case 'I':
			if (parse_int(optarg, 1, REG_QUOTA_IDS_MAX, &n) != 0) {
				fprintf(stderr, "lianband: --registry-ids must be 1 to %d\n",
				    REG_QUOTA_IDS_MAX);
				return -1;
			}
			gc->gc_reg_ids = (unsigned)n;
			break;
		case 'N':
			if (parse_int(optarg, 1, 1000000, &n) != 0) {
				fprintf(stderr, "lianband: --registry-versions must be 1 to 1000000\n");
				return -1;
			}
			gc->gc_reg_versions = (unsigned)n;
			break;
		case 'Y':
			if (parse_int(optarg, 1024, 1 << 30, &n) != 0) {
				fprintf(stderr, "lianband: --registry-bytes must be 1024 to %d\n",
				    1 << 30);
				return -1;
			}
			gc->gc_reg_bytes = (uint64_t)n;
			break;
		case 'v':
			gc->gc_verbose = 1;
			break;
		case 'V':
			printf("lianband %s\n", PACKAGE_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
		if (dst != NULL && strlcpy_chk(dst, optarg, dstsize) != 0) {
			fprintf(stderr, "lianband: argument too long: %s\n", optarg);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "lianband: unexpected argument: %s\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

/* The journal's pseudonym key: 64 hex characters in a private file. */
static int
load_hmac_key(const char *certs, uint8_t key[32], char *err, size_t errlen)
{
	char		 path[PATH_MAX];
	uint8_t		*buf = NULL;
	size_t		 len;
	int		 ret = -1;

	snprintf(path, sizeof(path), "%s/journal/hmac.key", certs);
	if (key_file_read(path, "the journal's pseudonym key", 4096, &buf, &len, err,
	    errlen) != 0)
		goto done;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		len--;
	if (hex_decode((const char *)buf, len, key, 32) != 0) {
		snprintf(err, errlen, "%s: must hold 64 hex characters", path);
		goto done;
	}
	ret = 0;
done:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	return ret;
}

static void
on_reload(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	config_sighup(arg);
}

static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct gw		*gw = arg;
	static unsigned		 ticks;

	(void)fd;
	(void)what;
	if (gw->gw_inflight == 0 || ++ticks > SHUTDOWN_GRACE_S * 10) {
		if (gw->gw_inflight > 0)
			log_warnx("%d exchanges still in flight after %d s; exiting",
			    gw->gw_inflight, SHUTDOWN_GRACE_S);
		event_base_loopexit(gw->gw_base, NULL);
	}
}

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct gw		*gw = arg;
	struct timeval		 tv = { 0, 100000 };

	(void)what;
	if (gw->gw_stopping)
		return;
	log_info("signal %d: finishing %d exchanges in flight", (int)sig, gw->gw_inflight);
	gw->gw_stopping = true;
	notify_stopping(gw);
	/* No new connections; the ones open finish what they asked. */
	if (gw->gw_listener != NULL)
		evhttp_del_accept_socket(gw->gw_http, gw->gw_listener);
	gw->gw_listener = NULL;
	if ((gw->gw_drain = event_new(gw->gw_base, -1, EV_PERSIST, on_drain, gw)) == NULL ||
	    event_add(gw->gw_drain, &tv) != 0)
		event_base_loopexit(gw->gw_base, NULL);
}

int
main(int argc, char **argv)
{
	struct gw		 gw;
	struct snapshot		*sn;
	struct journal_config	 jc;
	struct event		*ev_term = NULL, *ev_int = NULL, *ev_hup = NULL;
	uint8_t			 hmac[32];
	char			 err[PATH_MAX + 512] = "", path[PATH_MAX];
	int			 ret = 1;

	memset(&gw, 0, sizeof(gw));
	gw.gw_loop = pthread_self();
	if (parse_args(argc, argv, &gw.gw_conf) != 0)
		return 2;
	log_init("lianband", gw.gw_conf.gc_verbose);
	/* A backup is its own process next to the daemon (datadir.c). */
	if (gw.gw_conf.gc_backup[0] != '\0')
		return datadir_backup_main(&gw.gw_conf);
	gw.gw_lockfd = -1;
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() != 0 || (gw.gw_base = event_base_new()) == NULL) {
		log_warnx("cannot set up the event loop");
		return 1;
	}
	if ((gw.gw_lockfd = datadir_lock(gw.gw_conf.gc_data, err, sizeof(err))) == -1) {
		log_warnx("%s", err);
		goto done;
	}
	if ((gw.gw_registry = registry_open(gw.gw_conf.gc_data, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		goto done;
	}
	registry_keep(gw.gw_registry, gw.gw_conf.gc_reg_versions);
	if ((sn = snapshot_load(&gw.gw_conf, gw.gw_registry, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		goto done;
	}
	snapshot_install(&gw, sn);
	snprintf(path, sizeof(path), "%s/journal/checkpoint.key", gw.gw_conf.gc_certs);
	if (key_load(path, &gw.gw_ckpt_key, err, sizeof(err)) != 0) {
		log_warnx("%s", err);
		goto done;
	}
	gw.gw_ckpt_cert = X509_dup(gw.gw_snap->sn_trust->t_ckpt_cert);
	if (gw.gw_ckpt_cert == NULL || X509_check_private_key(gw.gw_ckpt_cert,
	    gw.gw_ckpt_key) != 1) {
		log_warnx("%s: does not match journal/checkpoint.pem", path);
		goto done;
	}
	if (load_hmac_key(gw.gw_conf.gc_certs, hmac, err, sizeof(err)) != 0) {
		log_warnx("%s", err);
		goto done;
	}
	memset(&jc, 0, sizeof(jc));
	jc.jc_dir = gw.gw_conf.gc_data;
	jc.jc_origin = gw.gw_conf.gc_id;
	jc.jc_ckpt_key = gw.gw_ckpt_key;
	jc.jc_ckpt_cert = gw.gw_ckpt_cert;
	jc.jc_hmac_key = hmac;
	jc.jc_hmac_key_len = sizeof(hmac);
	gw.gw_journal = journal_open(&jc, err, sizeof(err));
	OPENSSL_cleanse(hmac, sizeof(hmac));
	if (gw.gw_journal == NULL) {
		log_warnx("journal: %s", err);
		goto done;
	}
	if ((gw.gw_workers = workers_new(gw.gw_conf.gc_workers)) == NULL ||
	    (gw.gw_fanout = fanout_new(gw.gw_base, gw.gw_conf.gc_certs)) == NULL ||
	    (gw.gw_sealer = sealer_new(gw.gw_base, gw.gw_workers, gw.gw_conf.gc_seal_window_us,
	    gw.gw_conf.gc_seal_batch)) == NULL ||
	    (gw.gw_rates = policy_rates_new(GW_RATE_BUCKETS)) == NULL ||
	    (gw.gw_throttle = throttle_new(&gw, gw.gw_conf.gc_client_rate,
	    gw.gw_conf.gc_client_burst)) == NULL) {
		log_warnx("cannot start worker threads");
		goto done;
	}
	if (console_load(gw.gw_conf.gc_console, &gw.gw_console, err, sizeof(err)) != 0) {
		log_warnx("%s", err);
		goto done;
	}
	if (http_start(&gw, err, sizeof(err)) != 0) {
		log_warnx("%s", err[0] ? err : "cannot start the HTTPS listener");
		goto done;
	}
	ev_term = evsignal_new(gw.gw_base, SIGTERM, on_stop, &gw);
	ev_int = evsignal_new(gw.gw_base, SIGINT, on_stop, &gw);
	ev_hup = evsignal_new(gw.gw_base, SIGHUP, on_reload, &gw);
	if (ev_term == NULL || ev_int == NULL || ev_hup == NULL || evsignal_add(ev_term, NULL) ||
	    evsignal_add(ev_int, NULL) || evsignal_add(ev_hup, NULL)) {
		log_warnx("cannot install signal handlers");
		goto done;
	}
	if (gw.gw_console == NULL)
		log_info("console: %s not found; /console/ answers 404", gw.gw_conf.gc_console);
	else
		log_info("console: %zu files from %s at /console/", console_nfiles(gw.gw_console),
		    gw.gw_conf.gc_console);
	log_info("gateway %s: %zu authorities, %zu policies, %zu adapters, %zu client CRLs, "
	    "journal of %llu records in %s", gw.gw_conf.gc_id, gw.gw_snap->sn_trust->t_nauth,
	    gw.gw_snap->sn_npolicies, gw.gw_snap->sn_nadapters, gw.gw_snap->sn_trust->t_ncrls,
	    (unsigned long long)journal_size(gw.gw_journal), gw.gw_conf.gc_data);
	fprintf(stderr, "listening on %s\n", gw.gw_bound);
	fflush(stderr);
	if (notify_start(&gw) != 0) {
		log_warnx("cannot start the service manager's status updates");
		goto done;
	}
	event_base_dispatch(gw.gw_base);
	log_info("stopped; journal holds %llu records",
	    (unsigned long long)journal_size(gw.gw_journal));
	/* Requests abandoned after the grace period make the exit a failure. */
	ret = gw.gw_inflight == 0 ? 0 : 1;
	/* Refusals counted since the last summary are journaled before it closes. */
	throttle_flush(&gw);
done:
	http_stop(&gw);
	fanout_free(gw.gw_fanout);
	sealer_free(gw.gw_sealer);
	workers_free(gw.gw_workers);
	if (gw.gw_journal != NULL)
		journal_close(gw.gw_journal);
	/*
	 * Run what the journal and the workers posted while they drained.  Not
	 * when requests were abandoned after the grace period: their
	 * completions would reach the HTTP front, the fan-out and the sealer
	 * freed above.  Their records are committed all the same; only the
	 * answers are lost, as in a crash, and no client saw them acknowledged.
	 */
	if (gw.gw_base != NULL && gw.gw_inflight == 0)
		event_base_loop(gw.gw_base, EVLOOP_NONBLOCK);
	snapshot_unref(gw.gw_snap);
	policy_rates_free(gw.gw_rates);
	throttle_free(gw.gw_throttle);
	registry_close(gw.gw_registry);
	EVP_PKEY_free(gw.gw_ckpt_key);
	X509_free(gw.gw_ckpt_cert);
	console_free(gw.gw_console);
	notify_free(&gw);
	if (gw.gw_drain != NULL)
		event_free(gw.gw_drain);
	if (ev_term != NULL)
		event_free(ev_term);
	if (ev_int != NULL)
		event_free(ev_int);
	if (ev_hup != NULL)
		event_free(ev_hup);
	if (gw.gw_base != NULL)
		event_base_free(gw.gw_base);
	/* Last: the directory is free once nothing of this process uses it. */
	datadir_unlock(gw.gw_lockfd);
	return ret;
}
