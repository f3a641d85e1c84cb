/*
 * lianband - the lianban data-exchange gateway daemon.
 *
 * Runs on embedded defaults with no arguments (docs/contract.md §12).  Event loops
 * (loops.c, one per core by default) serve HTTPS and talk to the
 * departments; a worker pool signs and verifies; one journal writer thread
 * commits the audit log.  The main thread keeps the signals, the metrics
 * listener and the service manager.
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

#include "cluster.h"

/* A start that cannot go on: the reason, and what to change (settings_hint). */
static void
start_error(const struct gw *gw, const char *setting, const char *msg)
{
	char	hint[2 * PATH_MAX];

	settings_hint(&gw->gw_conf, setting, msg, hint, sizeof(hint));
	log_errx("%s%s%s", msg, hint[0] != '\0' ? "; " : "", hint);
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
	if (loops_inflight(gw) == 0 || ++ticks > (unsigned)gw->gw_conf.gc_shutdown_grace * 10) {
		if (loops_inflight(gw) > 0)
			log_warnx("%d exchanges still in flight after %d s; exiting",
			    loops_inflight(gw), gw->gw_conf.gc_shutdown_grace);
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
	log_info("signal %d: finishing %d exchanges in flight", (int)sig, loops_inflight(gw));
	gw->gw_stopping = true;
	notify_stopping(gw);
	witness_stop(gw);
	/* No new connections; the ones open finish what they asked, on every loop. */
	loops_stop(gw);
	if ((gw->gw_drain = event_new(gw->gw_base, -1, EV_PERSIST, on_drain, gw)) == NULL ||
	    event_add(gw->gw_drain, &tv) != 0)
		event_base_loopexit(gw->gw_base, NULL);
}

int
main(int argc, char **argv)
{
	struct gw		 gw;
	struct settings		*st = NULL;
	struct snapshot		*sn, *cur;
	struct journal_config	 jc;
	struct event		*ev_term = NULL, *ev_int = NULL, *ev_hup = NULL;
	uint8_t			 hmac[32];
	char			 err[PATH_MAX + 512] = "", path[PATH_MAX];
	int			 ret = 1;

	memset(&gw, 0, sizeof(gw));
	gw.gw_lockfd = -1;
	gw.gw_loop = pthread_self();
	gw.gw_index = -1;
	pthread_mutex_init(&gw.gw_lock, NULL);
	log_init("lianband", 0);
	switch (settings_args(argc, argv, &st)) {
	case 0:
		break;
	case 1:
		return 0;
	default:
		return 2;
	}
	gw.gw_settings = st;
	if (settings_load(st, &gw.gw_conf, err, sizeof(err)) != 0) {
		log_errx("%s", err);
		goto done;
	}
	if (settings_print_only(st)) {
		settings_print(stdout, &gw.gw_conf);
		ret = fflush(stdout) == 0 ? 0 : 1;
		goto done;
	}
	log_set_verbose(gw.gw_conf.gc_verbose);
	if (log_set_format(gw.gw_conf.gc_log_format) != 0) {
		start_error(&gw, "log-format", "log-format must be text, logfmt or json");
		goto done;
	}
	if (log_set_target(gw.gw_conf.gc_log_target) != 0) {
		start_error(&gw, "log-target", "log-target must be stderr or syslog");
		goto done;
	}
	if (gw.gw_conf.gc_file[0] != '\0')
		log_info("settings: %s", gw.gw_conf.gc_file);
	if (cosign_origin(gw.gw_conf.gc_id, gw.gw_conf.gc_node, gw.gw_origin,
	    sizeof(gw.gw_origin)) != 0 || (gw.gw_conf.gc_node[0] != '\0' &&
	    !peer_id_ok(gw.gw_conf.gc_node, strlen(gw.gw_conf.gc_node)))) {
		start_error(&gw, "node", "the node id must be letters, digits, '-', '_' and '.'");
		goto done;
	}
	if (peers_parse(gw.gw_conf.gc_peers, gw.gw_conf.gc_node, &gw.gw_peers, &gw.gw_npeers,
	    err, sizeof(err)) != 0) {
		start_error(&gw, "peers", err);
		goto done;
	}
	if (cluster_settings_check(&gw.gw_conf, err, sizeof(err)) != 0) {
		start_error(&gw, gw.gw_conf.gc_node[0] == '\0' ? "node" : "etcd", err);
		goto done;
	}
	/* A backup is its own process next to the daemon (datadir.c). */
	if (settings_backup(st) != NULL) {
		snprintf(gw.gw_conf.gc_backup, sizeof(gw.gw_conf.gc_backup), "%s",
		    settings_backup(st));
		ret = datadir_backup_main(&gw.gw_conf);
		goto done;
	}
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() != 0 || (gw.gw_base = event_base_new()) == NULL) {
		log_errx("cannot set up the event loop");
		goto done;
	}
	if ((gw.gw_lockfd = datadir_lock(gw.gw_conf.gc_data, err, sizeof(err))) == -1) {
		start_error(&gw, "data", err);
		goto done;
	}
	if ((gw.gw_registry = registry_open(gw.gw_conf.gc_data, err, sizeof(err))) == NULL) {
		start_error(&gw, "data", err);
		goto done;
	}
	registry_keep(gw.gw_registry, gw.gw_conf.gc_reg_versions);
	if ((sn = snapshot_load(&gw.gw_conf, gw.gw_registry, err, sizeof(err))) == NULL) {
		start_error(&gw, "certs", err);
		goto done;
	}
	snapshot_install(&gw, sn);
	snprintf(path, sizeof(path), "%s/journal/checkpoint.key", gw.gw_conf.gc_certs);
	if (key_load(path, &gw.gw_ckpt_key, err, sizeof(err)) != 0) {
		start_error(&gw, "certs", err);
		goto done;
	}
	gw.gw_ckpt_cert = X509_dup(gw.gw_snap->sn_trust->t_ckpt_cert);
	if (gw.gw_ckpt_cert == NULL || X509_check_private_key(gw.gw_ckpt_cert,
	    gw.gw_ckpt_key) != 1) {
		snprintf(err, sizeof(err), "%s: does not match journal/checkpoint.pem", path);
		start_error(&gw, "certs", err);
		goto done;
	}
	if (load_hmac_key(gw.gw_conf.gc_certs, hmac, err, sizeof(err)) != 0) {
		start_error(&gw, "certs", err);
		goto done;
	}
	if (gw.gw_npeers > 0 && (gw.gw_peer_client = peer_client_new(gw.gw_conf.gc_certs,
	    gw.gw_conf.gc_node, err, sizeof(err))) == NULL) {
		start_error(&gw, "peers", err);
		goto done;
	}
	memset(&jc, 0, sizeof(jc));
	jc.jc_dir = gw.gw_conf.gc_data;
	jc.jc_origin = gw.gw_origin;
	jc.jc_ckpt_key = gw.gw_ckpt_key;
	jc.jc_ckpt_cert = gw.gw_ckpt_cert;
	jc.jc_hmac_key = hmac;
	jc.jc_hmac_key_len = sizeof(hmac);
	jc.jc_map_max = gw.gw_conf.gc_journal_map_max;
	gw.gw_journal = journal_open(&jc, err, sizeof(err));
	OPENSSL_cleanse(hmac, sizeof(hmac));
	if (gw.gw_journal == NULL) {
		start_error(&gw, "data", err);
		goto done;
	}
	if ((gw.gw_workers = workers_new(gw.gw_conf.gc_workers)) == NULL ||
	    (gw.gw_sealer = sealer_new(gw.gw_base, gw.gw_workers, gw.gw_conf.gc_seal_window_us,
	    gw.gw_conf.gc_seal_batch)) == NULL ||
	    (gw.gw_rates = policy_rates_new(GW_RATE_BUCKETS)) == NULL ||
	    (gw.gw_throttle = throttle_new(&gw, gw.gw_conf.gc_client_rate,
	    gw.gw_conf.gc_client_burst)) == NULL) {
		log_errx("cannot start worker threads");
		goto done;
	}
	if (cluster_start(&gw, &gw.gw_cluster, err, sizeof(err)) != 0) {
		start_error(&gw, gw.gw_conf.gc_node[0] == '\0' ? "node" : "etcd", err);
		goto done;
	}
	if (console_load(gw.gw_conf.gc_console, &gw.gw_console, err, sizeof(err)) != 0) {
		start_error(&gw, "console", err);
		goto done;
	}
	if (http_start(&gw, err, sizeof(err)) != 0 || loops_start(&gw, err, sizeof(err)) != 0) {
		start_error(&gw, "listen", err[0] ? err : "cannot start the HTTPS listener");
		goto done;
	}
	if (metrics_start(&gw, err, sizeof(err)) != 0) {
		start_error(&gw, "metrics", err);
		goto done;
	}
	if (witness_start(&gw, err, sizeof(err)) != 0) {
		start_error(&gw, "peers", err);
		goto done;
	}
	ev_term = evsignal_new(gw.gw_base, SIGTERM, on_stop, &gw);
	ev_int = evsignal_new(gw.gw_base, SIGINT, on_stop, &gw);
	ev_hup = evsignal_new(gw.gw_base, SIGHUP, on_reload, &gw);
	if (ev_term == NULL || ev_int == NULL || ev_hup == NULL || evsignal_add(ev_term, NULL) ||
	    evsignal_add(ev_int, NULL) || evsignal_add(ev_hup, NULL)) {
		log_errx("cannot install signal handlers");
		goto done;
	}
	if (gw.gw_console == NULL)
		log_info("console: %s not found; /console/ answers 404", gw.gw_conf.gc_console);
	else
		log_info("console: %zu files from %s at /console/", console_nfiles(gw.gw_console),
		    gw.gw_conf.gc_console);
	/* The loops run: a registry change may install another snapshot meanwhile. */
	cur = snapshot_current(&gw, NULL);
	log_info("gateway %s: %zu authorities, %zu policies, %zu adapters, %zu client CRLs, "
	    "journal of %llu records in %s", gw.gw_conf.gc_id, cur->sn_trust->t_nauth,
	    cur->sn_npolicies, cur->sn_nadapters, cur->sn_trust->t_ncrls,
	    (unsigned long long)journal_size(gw.gw_journal), gw.gw_conf.gc_data);
	snapshot_unref(cur);
	/* docs/contract.md §12: harnesses wait for this text, also inside a structured line. */
	if (log_format() == LB_LOGF_TEXT)
		fprintf(stderr, "listening on %s\n", gw.gw_bound);
	else {
		snprintf(err, sizeof(err), "listening on %s", gw.gw_bound);
		log_event(LB_LOG_INFO, "start", "msg", err, "listen", gw.gw_bound,
		    "version", PACKAGE_VERSION, NULL);
	}
	fflush(stderr);
	if (notify_start(&gw) != 0) {
		log_warnx("cannot start the service manager's status updates");
		goto done;
	}
	event_base_dispatch(gw.gw_base);
	loops_exit(&gw);
	log_info("stopped; journal holds %llu records",
	    (unsigned long long)journal_size(gw.gw_journal));
	/* Requests abandoned after the grace period make the exit a failure. */
	ret = loops_inflight(&gw) == 0 ? 0 : 1;
	/* Refusals counted since the last summary are journaled before it closes. */
	throttle_flush(&gw);
done:
	loops_exit(&gw);
	loops_close(&gw);
	http_stop(&gw);
	/* Its calls in flight never complete: the loops have stopped. */
	cluster_stop(gw.gw_cluster);
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
	if (gw.gw_base != NULL && loops_inflight(&gw) == 0)
		event_base_loop(gw.gw_base, EVLOOP_NONBLOCK);
	loops_free(&gw, loops_inflight(&gw) == 0);
	/* After the completions above: they count in the metrics too. */
	metrics_stop();
	witness_free(&gw);
	peer_client_free(gw.gw_peer_client);
	free(gw.gw_peers);
	cluster_free(gw.gw_cluster);
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
	settings_free(st);
	/* Last: the directory is free once nothing of this process uses it. */
	datadir_unlock(gw.gw_lockfd);
	pthread_mutex_destroy(&gw.gw_lock);
	return ret;
}
