/*
 * loops.c - the event loops that serve the API (docs/performance.md).
 *
 * One loop is one thread with its own event base, HTTPS front and
 * department connection pools, so that every core can serve.  The loops'
 * listeners share the port with SO_REUSEPORT: the kernel spreads the new
 * connections among them, and a connection stays on the loop that
 * accepted it.  Each loop runs on a copy of the main thread's struct gw
 * whose own fields (base, front, fan-out, in-flight count, stopping flag)
 * are its own; a request handler therefore reaches its loop's base and
 * pools through the gw it is given, as with a single loop, and what the
 * loops share (workers, journal, sealer, snapshot, rate buckets) through
 * pointers and the main gw.
 *
 * The main thread keeps the signals, the metrics listener and the service
 * manager.  It stops the loops at SIGTERM (each closes its listener on its
 * own thread, then drains), hands them the settings a SIGHUP changed, and
 * once they have drained ends their dispatch and joins them.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "gateway.h"

struct loops {
	int			 ls_n;
	struct gw		*ls_gw;		/* ls_n copies of the main gw */
	pthread_t		*ls_threads;
	int			 ls_started;	/* threads created, to join */
	atomic_int		 ls_serving;	/* loops dispatching and not stopped */
};

/* The settings of one SIGHUP on their way to one loop. */
struct loops_conf {
	struct gw		*lc_gw;
	struct gw_config	 lc_conf;
};

/* On the loop, first thing: it serves from now on. */
static void
loops_serving_cb(void *arg)
{
	struct gw	*lg = arg;

	atomic_fetch_add(&gw_main_of(lg)->gw_loops->ls_serving, 1);
}

static void *
loops_main(void *arg)
{
	struct gw	*lg = arg;
	char		 name[16];

	lg->gw_loop = pthread_self();
	/* top -H and debuggers show which thread is which loop. */
	snprintf(name, sizeof(name), "lianband-loop%d", lg->gw_index);
	pthread_setname_np(lg->gw_loop, name);
	if (loop_post(lg->gw_base, loops_serving_cb, lg) != 0)
		log_warnx("loop %d: cannot say it serves; readiness stays 503", lg->gw_index);
	/*
	 * Not on empty: after the listener has closed, a loop whose requests
	 * wait for a worker or the journal has no event of its own until their
	 * completions come.  loops_exit ends it.
	 */
	event_base_loop(lg->gw_base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* The number of loops gc_loops asks for. */
static int
loops_count(const struct gw_config *gc)
{
	long	n = gc->gc_loops;

	if (n <= 0 && (n = sysconf(_SC_NPROCESSORS_ONLN)) < 1)
		n = 1;
	return n > LOOPS_MAX ? LOOPS_MAX : (int)n;
}

/* A copy of the main gw for loop i: its own fields start afresh. */
static int
loops_copy(struct gw *gw, struct gw *lg, int i, char *err, size_t errlen)
{
	memcpy(lg, gw, sizeof(*lg));
	lg->gw_main = gw;
	lg->gw_loops = NULL;
	lg->gw_index = i;
	atomic_init(&lg->gw_accepted, 0);
	atomic_init(&lg->gw_requests, 0);
	atomic_init(&lg->gw_conns, 0);
	atomic_init(&lg->gw_inflight, 0);
	atomic_init(&lg->gw_stopping, false);
	atomic_init(&lg->gw_reload_failed, false);
	/* Shared state is the main gw's: a copy that used it would read it stale. */
	lg->gw_snap = NULL;
	atomic_init(&lg->gw_snap_gen, 0);
	memset(&lg->gw_admin, 0, sizeof(lg->gw_admin));
	memset(&lg->gw_sighup, 0, sizeof(lg->gw_sighup));
	lg->gw_notify = NULL;
	lg->gw_drain = NULL;
	lg->gw_http = NULL;
	lg->gw_listener = NULL;
	if ((lg->gw_base = event_base_new()) == NULL ||
	    (lg->gw_fanout = fanout_new(lg->gw_base, gw->gw_conf.gc_certs)) == NULL) {
		snprintf(err, errlen, "cannot set up event loop %d", i);
		return -1;
	}
	return 0;
}

int
loops_start(struct gw *gw, char *err, size_t errlen)
{
	struct loops	*ls;
	const char	*colon;
	int		 i, n = loops_count(&gw->gw_conf), port = -1;

	if ((ls = calloc(1, sizeof(*ls))) == NULL ||
	    (ls->ls_gw = calloc((size_t)n, sizeof(*ls->ls_gw))) == NULL ||
	    (ls->ls_threads = calloc((size_t)n, sizeof(*ls->ls_threads))) == NULL) {
		if (ls != NULL)
			free(ls->ls_gw);
		free(ls);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	atomic_init(&ls->ls_serving, 0);
	gw->gw_loops = ls;
	/* The first loop binds gc_listen; with port 0 the others take the port it got. */
	for (i = 0; i < n; i++) {
		ls->ls_n = i + 1;
		if (loops_copy(gw, &ls->ls_gw[i], i, err, errlen) != 0 ||
		    http_front(&ls->ls_gw[i], port, err, errlen) != 0)
			return -1;
		if (i == 0) {
			memcpy(gw->gw_bound, ls->ls_gw[0].gw_bound, sizeof(gw->gw_bound));
			if ((colon = strrchr(gw->gw_bound, ':')) == NULL) {
				snprintf(err, errlen, "cannot tell the port bound");
				return -1;
			}
			port = atoi(colon + 1);
		}
	}
	for (i = 0; i < n; i++) {
		if (pthread_create(&ls->ls_threads[i], NULL, loops_main, &ls->ls_gw[i]) != 0) {
			snprintf(err, errlen, "cannot start the thread of event loop %d", i);
			return -1;
		}
		ls->ls_started++;
	}
	log_info("%d event loops serve the API", n);
	return 0;
}

/* On the loop: no new connections; the ones open finish what they asked. */
static void
loops_stop_cb(void *arg)
{
	struct gw	*lg = arg;

	if (lg->gw_stopping)
		return;
	lg->gw_stopping = true;
	if (lg->gw_listener != NULL)
		evhttp_del_accept_socket(lg->gw_http, lg->gw_listener);
	lg->gw_listener = NULL;
	atomic_fetch_sub(&gw_main_of(lg)->gw_loops->ls_serving, 1);
}

void
loops_stop(struct gw *gw)
{
	struct loops	*ls = gw->gw_loops;
	int		 i;

	for (i = 0; ls != NULL && i < ls->ls_started; i++)
		if (loop_post(ls->ls_gw[i].gw_base, loops_stop_cb, &ls->ls_gw[i]) != 0)
			log_warnx("loop %d: cannot ask it to stop listening", i);
}

int
loops_inflight(struct gw *gw)
{
	struct loops	*ls = gw->gw_loops;
	int		 i, n = gw->gw_inflight;

	for (i = 0; ls != NULL && i < ls->ls_n; i++)
		n += ls->ls_gw[i].gw_inflight;
	return n;
}

bool
loops_serving(struct gw *gw)
{
	struct loops	*ls = gw_main_of(gw)->gw_loops;

	return ls == NULL || atomic_load(&ls->ls_serving) == ls->ls_n;
}

/* On the loop: the settings a SIGHUP changed, for its next requests. */
static void
loops_settings_cb(void *arg)
{
	struct loops_conf	*lc = arg;

	settings_merge(&lc->lc_gw->gw_conf, &lc->lc_conf);
	free(lc);
}

void
loops_settings(struct gw *gw)
{
	struct loops		*ls = gw->gw_loops;
	struct loops_conf	*lc;
	int			 i;

	for (i = 0; ls != NULL && i < ls->ls_started; i++) {
		if ((lc = malloc(sizeof(*lc))) == NULL) {
			log_warnx("loop %d: out of memory; it keeps its settings", i);
			continue;
		}
		lc->lc_gw = &ls->ls_gw[i];
		lc->lc_conf = gw->gw_conf;
		if (loop_post(lc->lc_gw->gw_base, loops_settings_cb, lc) != 0) {
			log_warnx("loop %d: cannot hand it the new settings", i);
			free(lc);
		}
	}
}

void
loops_exit(struct gw *gw)
{
	struct loops	*ls = gw->gw_loops;
	int		 i;

	if (ls == NULL)
		return;
	for (i = 0; i < ls->ls_started; i++)
		event_base_loopexit(ls->ls_gw[i].gw_base, NULL);
	for (i = 0; i < ls->ls_started; i++)
		pthread_join(ls->ls_threads[i], NULL);
	ls->ls_started = 0;
}

void
loops_close(struct gw *gw)
{
	struct loops	*ls = gw->gw_loops;
	int		 i;

	for (i = 0; ls != NULL && i < ls->ls_n; i++) {
		http_stop(&ls->ls_gw[i]);
		fanout_free(ls->ls_gw[i].gw_fanout);
		ls->ls_gw[i].gw_fanout = NULL;
	}
}

void
loops_free(struct gw *gw, bool run)
{
	struct loops	*ls = gw->gw_loops;
	int		 i;

	if (ls == NULL)
		return;
	for (i = 0; i < ls->ls_n; i++) {
		if (ls->ls_gw[i].gw_base == NULL)
			continue;
		if (run)
			event_base_loop(ls->ls_gw[i].gw_base, EVLOOP_NONBLOCK);
		event_base_free(ls->ls_gw[i].gw_base);
	}
	free(ls->ls_gw);
	free(ls->ls_threads);
	free(ls);
	gw->gw_loops = NULL;
}

/* What loops_family renders of each loop. */
enum loops_value {
	LV_CONNS = 0,
	LV_ACCEPTED,
	LV_REQUESTS
};

/* One family of a value per loop. */
static void
loops_family(struct evbuffer *out, struct loops *ls, const char *name, const char *type,
    const char *help, enum loops_value which)
{
	const struct gw		*lg;
	unsigned long long	 v;
	int			 i;

	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (i = 0; i < ls->ls_n; i++) {
		lg = &ls->ls_gw[i];
		if (which == LV_CONNS)
			v = (unsigned long long)atomic_load(&lg->gw_conns);
		else if (which == LV_ACCEPTED)
			v = (unsigned long long)atomic_load(&lg->gw_accepted);
		else
			v = (unsigned long long)atomic_load(&lg->gw_requests);
		evbuffer_add_printf(out, "%s{loop=\"%d\"} %llu\n", name, i, v);
	}
}

void
loops_metrics(struct evbuffer *out, struct gw *gw)
{
	struct loops	*ls = gw->gw_loops;

	if (ls == NULL)
		return;
	evbuffer_add_printf(out, "# HELP lianban_loops event loops serving the API\n"
	    "# TYPE lianban_loops gauge\nlianban_loops %d\n", ls->ls_n);
	loops_family(out, ls, "lianban_loop_connections", "gauge",
	    "TLS connections open on each event loop", LV_CONNS);
	loops_family(out, ls, "lianban_loop_connections_accepted_total", "counter",
	    "TLS connections each event loop accepted", LV_ACCEPTED);
	loops_family(out, ls, "lianban_loop_requests_total", "counter",
	    "requests each event loop routed", LV_REQUESTS);
}
