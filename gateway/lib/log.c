/*
 * log.c - structured log lines: one line per event, with its time (RFC 3339,
 * UTC, milliseconds), level, event name and fields, as logfmt or JSON, on
 * stderr or to syslog, so that a log collector parses every line the same
 * way.  log_msg (util.c) hands its lines here as event "message" unless the
 * format is the plain text of old.  What goes into a field is the caller's
 * choice: lianband never passes a subject's ID or a document's content.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "lianban.h"

#define LOG_LINE_MAX	8192	/* a line is cut here */
#define LOG_MSG_MAX	1024	/* the text of a log_msg line is cut here */

static const char	*log_prog = "lianban";
static atomic_int	 log_verbose;	/* every thread reads it; SIGHUP may change it */
static atomic_int	 log_fmt;	/* enum log_format */
static atomic_bool	 log_syslog;

static const char *const log_level_names[] = {
	[LB_LOG_INFO] = "info",
	[LB_LOG_WARN] = "warning",
	[LB_LOG_DEBUG] = "debug",
	[LB_LOG_ERROR] = "error",
};

void
log_init(const char *prog, int verbose)
{
	log_prog = prog;
	log_set_verbose(verbose);
}

void
log_set_verbose(int verbose)
{
	atomic_store(&log_verbose, verbose);
}

int
log_set_format(const char *name)
{
	if (strcmp(name, "text") == 0)
		atomic_store(&log_fmt, LB_LOGF_TEXT);
	else if (strcmp(name, "logfmt") == 0)
		atomic_store(&log_fmt, LB_LOGF_LOGFMT);
	else if (strcmp(name, "json") == 0)
		atomic_store(&log_fmt, LB_LOGF_JSON);
	else
		return -1;
	return 0;
}

enum log_format
log_format(void)
{
	return (enum log_format)atomic_load(&log_fmt);
}

int
log_set_target(const char *name)
{
	if (strcmp(name, "stderr") == 0) {
		atomic_store(&log_syslog, false);
		return 0;
	}
	if (strcmp(name, "syslog") != 0)
		return -1;
	openlog(log_prog, LOG_PID, LOG_DAEMON);
	atomic_store(&log_syslog, true);
	return 0;
}

/* Appends to buf (of size len, *n used) without ever overrunning it. */
static void
log_put(char *buf, size_t len, size_t *n, const char *s, size_t slen)
{
	if (*n + slen >= len)
		slen = *n + 1 < len ? len - *n - 1 : 0;
	memcpy(buf + *n, s, slen);
	*n += slen;
	buf[*n] = '\0';
}

/*
 * One value: JSON always quotes; logfmt (and text) only when it holds a
 * space, '=', '"' or nothing.  Control characters and bytes that are not
 * UTF-8 are escaped, so that no field can start a line of its own or break
 * a parser.
 */
static void
log_put_value(char *buf, size_t len, size_t *n, const char *v, bool json)
{
	size_t		 i, vlen = strlen(v);
	bool		 quote = json || vlen == 0, utf8 = utf8_valid(v, vlen);
	char		 esc[8];
	unsigned char	 c;

	for (i = 0; i < vlen && !quote; i++)
		if (v[i] == ' ' || v[i] == '=' || v[i] == '"' || (unsigned char)v[i] < 0x20 ||
		    (!utf8 && (unsigned char)v[i] >= 0x80))
			quote = true;
	if (quote)
		log_put(buf, len, n, "\"", 1);
	for (i = 0; i < vlen; i++) {
		c = (unsigned char)v[i];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			log_put(buf, len, n, esc, 2);
		} else if (c == '\n')
			log_put(buf, len, n, "\\n", 2);
		else if (c < 0x20 || c == 0x7f || (!utf8 && c >= 0x80)) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			log_put(buf, len, n, esc, strlen(esc));
		} else
			log_put(buf, len, n, (const char *)&c, 1);
	}
	if (quote)
		log_put(buf, len, n, "\"", 1);
}

static void
log_put_field(char *buf, size_t len, size_t *n, const char *key, const char *val,
    enum log_format f)
{
	if (f == LB_LOGF_JSON) {
		log_put(buf, len, n, ",", 1);
		log_put_value(buf, len, n, key, true);
		log_put(buf, len, n, ":", 1);
		log_put_value(buf, len, n, val, true);
		return;
	}
	log_put(buf, len, n, " ", 1);
	log_put(buf, len, n, key, strlen(key));
	log_put(buf, len, n, "=", 1);
	log_put_value(buf, len, n, val, false);
}

/* Now as RFC 3339 in UTC with milliseconds: 2026-12-02T16:10:39.123Z. */
static void
log_timestamp(char *buf, size_t len)
{
	struct timespec	ts;
	struct tm	tm;
	size_t		n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000) % 1000);
}

/* Writes one finished line (without its newline) where the log goes. */
static void
log_write(enum log_level level, char *line, size_t n, size_t len)
{
	static const int prio[] = {
		[LB_LOG_INFO] = LOG_INFO,
		[LB_LOG_WARN] = LOG_WARNING,
		[LB_LOG_DEBUG] = LOG_DEBUG,
		[LB_LOG_ERROR] = LOG_ERR,
	};

	if (atomic_load(&log_syslog)) {
		syslog(prio[level], "%s", line);
		return;
	}
	/* One write per line so lines of several threads never interleave. */
	if (n + 1 >= len)
		n = len - 2;
	line[n++] = '\n';
	line[n] = '\0';
	(void)fputs(line, stderr);
}

void
log_eventv(enum log_level level, const char *event, va_list ap)
{
	char			 line[LOG_LINE_MAX], ts[40];
	const char		*k, *v;
	va_list			 first;
	enum log_format		 f = log_format();
	size_t			 n = 0;

	if (level == LB_LOG_DEBUG && !atomic_load(&log_verbose))
		return;
	line[0] = '\0';
	if (f == LB_LOGF_TEXT) {
		/*
		 * The text of old: "prog: [warning: ]MSG" for an event whose
		 * first field is msg (every log_msg line, and the events that
		 * replaced a line of text), else "prog: [warning: ]event
		 * key=value ...".
		 */
		log_put(line, sizeof(line), &n, log_prog, strlen(log_prog));
		log_put(line, sizeof(line), &n, ": ", 2);
		if (level != LB_LOG_INFO) {
			log_put(line, sizeof(line), &n, log_level_names[level],
			    strlen(log_level_names[level]));
			log_put(line, sizeof(line), &n, ": ", 2);
		}
		va_copy(first, ap);
		k = va_arg(first, const char *);
		if (k != NULL && strcmp(k, "msg") == 0) {
			v = va_arg(first, const char *);
			log_put(line, sizeof(line), &n, v != NULL ? v : "", v != NULL ? strlen(v) : 0);
			va_end(first);
			log_write(level, line, n, sizeof(line));
			return;
		}
		va_end(first);
		log_put(line, sizeof(line), &n, event, strlen(event));
	} else {
		log_timestamp(ts, sizeof(ts));
		if (f == LB_LOGF_JSON)
			log_put(line, sizeof(line), &n, "{\"ts\":", 6);
		else
			log_put(line, sizeof(line), &n, "ts=", 3);
		log_put_value(line, sizeof(line), &n, ts, f == LB_LOGF_JSON);
		log_put_field(line, sizeof(line), &n, "level", log_level_names[level], f);
		log_put_field(line, sizeof(line), &n, "event", event, f);
	}
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		log_put_field(line, sizeof(line), &n, k, v != NULL ? v : "", f);
	}
	if (f == LB_LOGF_JSON) {
		/* A line cut at the limit still closes its object. */
		if (n + 2 >= sizeof(line))
			n = sizeof(line) - 3;
		line[n++] = '}';
		line[n] = '\0';
	}
	log_write(level, line, n, sizeof(line));
}

void
log_event(enum log_level level, const char *event, ...)
{
	va_list	ap;

	va_start(ap, event);
	log_eventv(level, event, ap);
	va_end(ap);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char	msg[LOG_MSG_MAX];
	va_list	ap;

	if (level == LB_LOG_DEBUG && !atomic_load(&log_verbose))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_event(level, LOG_EV_MESSAGE, "msg", msg, NULL);
}
