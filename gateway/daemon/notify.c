/*
 * notify.c - what the service manager hears from lianband: the sd_notify
 * protocol of systemd's Type=notify services (systemd/lianband.service).
 *
 * systemd names a datagram socket in $NOTIFY_SOCKET; lianband says READY=1
 * once it listens, RELOADING=1 and READY=1 around a SIGHUP reload,
 * STOPPING=1 when asked to stop, and a STATUS= line (what "systemctl status"
 * shows) with the journal's size and the work in flight, every
 * NOTIFY_STATUS_S seconds and after each reload.  Without $NOTIFY_SOCKET,
 * or built without libsystemd, every call does nothing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#define NOTIFY_BUILT	true
#else
#define NOTIFY_BUILT	false
#endif

#include "gateway.h"

struct notify {
	struct event	*nt_timer;	/* the periodic STATUS= line */
	bool		 nt_refused;	/* the last reload kept the running configuration */
	bool		 nt_failed;	/* a message could not be sent */
};

/* Sends one message of newline-separated "KEY=value" assignments. */
static void notify_send(struct notify *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
notify_send(struct notify *nt, const char *fmt, ...)
{
#ifdef HAVE_LIBSYSTEMD
	char	msg[512];
	va_list	ap;
	int	r;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/*
	 * A manager that cannot be told is no reason to stop serving: the
	 * gateway goes on, and logs the first failure only, since the STATUS=
	 * lines would repeat it every few seconds.
	 */
	if ((r = sd_notify(0, msg)) < 0 && !nt->nt_failed) {
		log_warnx("sd_notify to %s: %s; further failures are not logged",
		    getenv("NOTIFY_SOCKET"), strerror(-r));
		nt->nt_failed = true;
	}
#else
	(void)nt;
	(void)fmt;
#endif
}

/* The STATUS= line: where it listens, the journal's size, the work in flight. */
static void
notify_status(struct gw *gw)
{
	notify_send(gw->gw_notify, "STATUS=%s %s; journal %llu records; %d in flight%s",
	    gw->gw_stopping ? "stopping, was listening on" : "listening on", gw->gw_bound,
	    (unsigned long long)journal_size(gw->gw_journal), loops_inflight(gw),
	    gw->gw_notify->nt_refused ?
	    "; last reload refused, running configuration kept (see the log)" : "");
}

static void
notify_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	notify_status(arg);
}

int
notify_start(struct gw *gw)
{
	struct timeval	 tv = { NOTIFY_STATUS_S, 0 };
	struct notify	*nt = NULL;
	int		 ret = -1;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return 0;
	if (!NOTIFY_BUILT) {
		log_warnx("NOTIFY_SOCKET is set, but lianband was built without libsystemd "
		    "and cannot say READY=1: run it as Type=exec, or rebuild it with "
		    "libsystemd-dev installed");
		return 0;
	}
	if ((nt = calloc(1, sizeof(*nt))) == NULL ||
	    (nt->nt_timer = event_new(gw->gw_base, -1, EV_PERSIST, notify_on_timer,
	    gw)) == NULL || event_add(nt->nt_timer, &tv) != 0)
		goto done;
	gw->gw_notify = nt;
	nt = NULL;
	notify_send(gw->gw_notify, "READY=1");
	notify_status(gw);
	ret = 0;
done:
	if (nt != NULL) {
		if (nt->nt_timer != NULL)
			event_free(nt->nt_timer);
		free(nt);
	}
	return ret;
}

void
notify_reloading(struct gw *gw)
{
	if (gw->gw_notify == NULL)
		return;
	/* MONOTONIC_USEC lets a Type=notify-reload manager match this reload to its signal. */
	notify_send(gw->gw_notify, "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)now_us_mono());
}

void
notify_reloaded(struct gw *gw, bool installed)
{
	if (gw->gw_notify == NULL)
		return;
	gw->gw_notify->nt_refused = !installed;
	/* Once stopping, READY=1 would tell the manager the stop was called off. */
	if (!gw->gw_stopping)
		notify_send(gw->gw_notify, "READY=1");
	notify_status(gw);
}

void
notify_stopping(struct gw *gw)
{
	if (gw->gw_notify == NULL)
		return;
	notify_send(gw->gw_notify, "STOPPING=1");
	notify_status(gw);
}

void
notify_free(struct gw *gw)
{
	if (gw->gw_notify == NULL)
		return;
	event_free(gw->gw_notify->nt_timer);
	free(gw->gw_notify);
	gw->gw_notify = NULL;
}
