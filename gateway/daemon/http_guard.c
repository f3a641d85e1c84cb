/*
 * http_guard.c - the request framing in front of evhttp.
 *
 * libevent 2.1's HTTP server answers every request it refuses itself (a
 * body over the limit, a malformed request line or header, a method it does
 * not take) with an HTML page, and offers no hook before it does.  So each
 * connection's decrypted bytes pass through a guard first: it holds a
 * request's head until it is complete, checks it, and hands evhttp a
 * normalized one (the request line and headers it accepted, the body's
 * length as one Content-Length); a chunked body is decoded here, bounded,
 * and handed over with its length.  A request the guard refuses reaches
 * evhttp as a small synthetic one that closes the connection, and its
 * verdict is what http.c answers, as the API's JSON error, when evhttp
 * delivers that request.  Everything after a refused request is dropped.
 *
 * The guard sees the bytes first because it is a callback of the SSL
 * bufferevent's input buffer, which runs when the bytes are added, before
 * the bufferevent's read callback runs evhttp's parser.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "gateway.h"

/* What evhttp is given instead of a refused request. */
static const char http_guard_refused[] = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";

enum http_guard_state {
	GS_HEAD,	/* holding a request head until it is complete */
	GS_CHUNKED,	/* decoding a chunked body until its last chunk */
	GS_PASS,	/* evhttp reads the request handed over; until it delivers it */
	GS_DISCARD	/* a request was refused; nothing more is read */
};

struct http_guard {
	struct evbuffer		*gd_in;		/* the bufferevent's input: evhttp reads it */
	struct evbuffer_cb_entry *gd_cb;
	enum http_guard_state	 gd_state;
	bool			 gd_busy;	/* our own changes of gd_in are not input */
	struct evbuffer		*gd_hold;	/* bytes received, not yet handed over */
	size_t			 gd_scan;	/* GS_HEAD: gd_hold is searched from here */
	bool			 gd_started;	/* GS_HEAD: a request line was seen */
	struct evbuffer		*gd_head;	/* GS_CHUNKED: the normalized head */
	struct evbuffer		*gd_body;	/* GS_CHUNKED: the decoded body */
	struct http_chunked	 gd_chunked;
	enum lb_err		 gd_verdict;	/* of the request handed over last */
	char			 gd_msg[160];
};

/* RFC 9110 tchar: the characters of a method or a header name. */
static bool
http_guard_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A header value's bytes: visible ASCII, space, tab and obs-text; no control characters. */
static bool
http_guard_vchar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool
http_guard_ows(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * The request line: METHOD SP TARGET SP HTTP/1.x, a method this API can
 * route and an origin-form target of visible ASCII.  Written to out with
 * CRLF when it holds; otherwise hh says why.  The methods are those evhttp
 * reads a body of whenever a request has one: HEAD, TRACE and CONNECT are
 * not among them (evhttp would take a HEAD request's body for the next
 * request), and this API has no use for them.
 */
static void
http_guard_request_line(const char *s, size_t n, struct evbuffer *out, struct http_head *hh)
{
	static const char *const methods[] = { "GET", "POST", "PUT", "DELETE", "OPTIONS",
	    "PATCH", NULL };
	const char	*sp1, *sp2, *version;
	size_t		 mlen, tlen, i;

	hh->hh_err = LB_E_BAD_REQUEST;
	if ((sp1 = memchr(s, ' ', n)) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - s))) == NULL) {
		snprintf(hh->hh_msg, sizeof(hh->hh_msg), "the request line is not METHOD "
		    "TARGET HTTP/1.1");
		return;
	}
	mlen = (size_t)(sp1 - s);
	tlen = (size_t)(sp2 - sp1 - 1);
	version = sp2 + 1;
	/* A path, not "//" (evhttp would read an authority there). */
	if (mlen == 0 || mlen > 16 || tlen == 0 || sp1[1] != '/' ||
	    (tlen > 1 && sp1[2] == '/')) {
		snprintf(hh->hh_msg, sizeof(hh->hh_msg), "the request line is not METHOD "
		    "/PATH HTTP/1.1");
		return;
	}
	for (i = 0; i < mlen; i++)
		if (s[i] < 'A' || s[i] > 'Z') {
			snprintf(hh->hh_msg, sizeof(hh->hh_msg), "the method is not a word "
			    "in capitals");
			return;
		}
	for (i = 0; i < tlen; i++)
		if ((unsigned char)sp1[1 + i] < 0x21 || (unsigned char)sp1[1 + i] > 0x7e) {
			snprintf(hh->hh_msg, sizeof(hh->hh_msg), "the request target holds a "
			    "byte that is not visible ASCII; percent-encode it");
			return;
		}
	if ((size_t)(s + n - version) != 8 || (memcmp(version, "HTTP/1.1", 8) != 0 &&
	    memcmp(version, "HTTP/1.0", 8) != 0)) {
		snprintf(hh->hh_msg, sizeof(hh->hh_msg), "the protocol is not HTTP/1.1 or "
		    "HTTP/1.0");
		return;
	}
	for (i = 0; methods[i] != NULL; i++)
		if (strlen(methods[i]) == mlen && memcmp(methods[i], s, mlen) == 0)
			break;
	if (methods[i] == NULL) {
		hh->hh_err = LB_E_METHOD_NOT_ALLOWED;
		snprintf(hh->hh_msg, sizeof(hh->hh_msg), "method %.*s is not one of this API",
		    (int)mlen, s);
		return;
	}
	hh->hh_err = LB_OK;
	evbuffer_add(out, s, n);
	evbuffer_add(out, "\r\n", 2);
}

/* A Content-Length value: 1 to 18 digits. */
static int
http_guard_length(const char *v, size_t n, uint64_t *len)
{
	size_t	i;

	if (n == 0 || n > 18)
		return -1;
	for (*len = 0, i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		*len = *len * 10 + (uint64_t)(v[i] - '0');
	}
	return 0;
}

/*
 * One header line NAME: VALUE.  Content-Length and Transfer-Encoding are
 * taken into hh (the caller writes the body's framing); the others go to
 * out as NAME: VALUE CRLF, the value without surrounding white space.
 */
static void
http_guard_header(const char *s, size_t n, struct evbuffer *out, struct http_head *hh,
    bool *seen_length, bool *seen_te)
{
	const char	*colon, *v, *e;
	size_t		 nlen, i;
	uint64_t	 len;

	hh->hh_err = LB_E_BAD_REQUEST;
	if (http_guard_ows(s[0])) {
		snprintf(hh->hh_msg, sizeof(hh->hh_msg), "folded header lines are not accepted");
		return;
	}
	if ((colon = memchr(s, ':', n)) == NULL || colon == s) {
		snprintf(hh->hh_msg, sizeof(hh->hh_msg), "a header line is not NAME: VALUE");
		return;
	}
	nlen = (size_t)(colon - s);
	for (i = 0; i < nlen; i++)
		if (!http_guard_tchar((unsigned char)s[i])) {
			snprintf(hh->hh_msg, sizeof(hh->hh_msg), "a header name holds a "
			    "character that is not allowed");
			return;
		}
	for (v = colon + 1, e = s + n; v < e; v++)
		if (!http_guard_vchar((unsigned char)*v)) {
			snprintf(hh->hh_msg, sizeof(hh->hh_msg), "a header value holds a "
			    "control character");
			return;
		}
	for (v = colon + 1; v < e && http_guard_ows(*v); v++)
		;
	while (e > v && http_guard_ows(e[-1]))
		e--;
	hh->hh_err = LB_OK;
	if (nlen == 14 && strncasecmp(s, "Content-Length", 14) == 0) {
		if (http_guard_length(v, (size_t)(e - v), &len) != 0 ||
		    (*seen_length && len != hh->hh_length)) {
			hh->hh_err = LB_E_BAD_REQUEST;
			snprintf(hh->hh_msg, sizeof(hh->hh_msg), "Content-Length is not one "
			    "decimal number");
			return;
		}
		*seen_length = true;
		hh->hh_length = len;
		return;
	}
	/* evhttp would answer any other expectation with its own 417 page. */
	if (nlen == 6 && strncasecmp(s, "Expect", 6) == 0 &&
	    (e - v != 12 || strncasecmp(v, "100-continue", 12) != 0)) {
		hh->hh_err = LB_E_BAD_REQUEST;
		snprintf(hh->hh_msg, sizeof(hh->hh_msg), "the only expectation accepted is "
		    "100-continue");
		return;
	}
	if (nlen == 17 && strncasecmp(s, "Transfer-Encoding", 17) == 0) {
		if (*seen_te || e - v != 7 || strncasecmp(v, "chunked", 7) != 0) {
			hh->hh_err = LB_E_BAD_REQUEST;
			snprintf(hh->hh_msg, sizeof(hh->hh_msg), "the only Transfer-Encoding "
			    "accepted is chunked");
			return;
		}
		*seen_te = true;
		return;
	}
	evbuffer_add(out, s, nlen);
	evbuffer_add(out, ": ", 2);
	evbuffer_add(out, v, (size_t)(e - v));
	evbuffer_add(out, "\r\n", 2);
}

void
http_guard_head(const char *p, size_t n, size_t body_max, struct evbuffer *out,
    struct http_head *hh)
{
	const char	*line = p, *nl, *end = p + n;
	size_t		 len;
	bool		 first = true, seen_length = false, seen_te = false;

	memset(hh, 0, sizeof(*hh));
	hh->hh_err = LB_E_BAD_REQUEST;
	snprintf(hh->hh_msg, sizeof(hh->hh_msg), "the request head does not end with an "
	    "empty line");
	while (line < end && (nl = memchr(line, '\n', (size_t)(end - line))) != NULL) {
		len = (size_t)(nl - line);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0 && first) {
			/* Empty lines before the request line are ignored (RFC 9112 2.2). */
			line = nl + 1;
			continue;
		}
		if (len == 0) {
			hh->hh_err = LB_OK;
			hh->hh_msg[0] = '\0';
			break;
		}
		if (first)
			http_guard_request_line(line, len, out, hh);
		else
			http_guard_header(line, len, out, hh, &seen_length, &seen_te);
		if (hh->hh_err != LB_OK)
			return;
		/* Until the empty line is met the head is not complete. */
		hh->hh_err = LB_E_BAD_REQUEST;
		snprintf(hh->hh_msg, sizeof(hh->hh_msg), "the request head does not end "
		    "with an empty line");
		first = false;
		line = nl + 1;
	}
	if (hh->hh_err != LB_OK)
		return;
	if (seen_length && seen_te) {
		hh->hh_err = LB_E_BAD_REQUEST;
		snprintf(hh->hh_msg, sizeof(hh->hh_msg), "a request has Content-Length or "
		    "Transfer-Encoding, not both");
		return;
	}
	if (seen_te)
		hh->hh_body = HB_CHUNKED;
	else if (seen_length)
		hh->hh_body = HB_LENGTH;
	if (seen_length && hh->hh_length > body_max) {
		hh->hh_err = LB_E_TOO_LARGE;
		snprintf(hh->hh_msg, sizeof(hh->hh_msg), "the body of %llu bytes is over the "
		    "limit of %zu bytes", (unsigned long long)hh->hh_length, body_max);
	}
}

/*
 * The line at the front of in, at most max bytes before its end of line
 * (LF, or CRLF), taken from in into line (NUL-terminated, without the end
 * of line).  0 when taken, 1 when it is not complete yet, -1 when it is
 * longer than max.
 */
static int
http_chunked_line(struct evbuffer *in, char *line, size_t max, size_t *len)
{
	struct evbuffer_ptr	end, nl;
	size_t			avail = evbuffer_get_length(in), n;

	/* Only the first max + 2 bytes are searched, whatever in holds. */
	if (evbuffer_ptr_set(in, &end, avail < max + 2 ? avail : max + 2,
	    EVBUFFER_PTR_SET) != 0)
		return -1;
	nl = evbuffer_search_range(in, "\n", 1, NULL, &end);
	if (nl.pos < 0)
		return avail >= max + 2 ? -1 : 1;
	n = (size_t)nl.pos;
	if (evbuffer_remove(in, line, n + 1) != (int)(n + 1))
		return -1;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	if (n > max)
		return -1;
	line[n] = '\0';
	*len = n;
	return 0;
}

enum lb_err
http_chunked_decode(struct http_chunked *hk, struct evbuffer *in, struct evbuffer *out,
    size_t max, bool *done, char *msg, size_t msglen)
{
	char		line[HTTP_GUARD_HEAD_MAX + 2];
	size_t		len, n, i;
	uint64_t	size;
	int		r, digit;

	*done = false;
	while (hk->hk_state != HK_DONE) {
		switch (hk->hk_state) {
		case HK_SIZE:
			if ((r = http_chunked_line(in, line, HTTP_CHUNK_LINE_MAX, &len)) == 1)
				return LB_OK;
			if (r != 0) {
				snprintf(msg, msglen, "a chunk size line is over %d bytes",
				    HTTP_CHUNK_LINE_MAX);
				return LB_E_BAD_REQUEST;
			}
			/* Hex digits, then nothing, or white space or an extension (ignored). */
			for (size = 0, i = 0; i < len; i++) {
				if ((digit = line[i] >= '0' && line[i] <= '9' ? line[i] - '0' :
				    line[i] >= 'a' && line[i] <= 'f' ? line[i] - 'a' + 10 :
				    line[i] >= 'A' && line[i] <= 'F' ? line[i] - 'A' + 10 : -1) < 0)
					break;
				if (size > (uint64_t)max) {
					snprintf(msg, msglen, "the chunked body is over the limit "
					    "of %zu bytes", max);
					return LB_E_TOO_LARGE;
				}
				size = size * 16 + (uint64_t)digit;
			}
			if (i == 0 || (i < len && line[i] != ';' && !http_guard_ows(line[i]))) {
				snprintf(msg, msglen, "a chunk size is not a hexadecimal number");
				return LB_E_BAD_REQUEST;
			}
			if (size > (uint64_t)(max - hk->hk_total)) {
				snprintf(msg, msglen, "the chunked body is over the limit of %zu "
				    "bytes", max);
				return LB_E_TOO_LARGE;
			}
			hk->hk_left = size;
			hk->hk_state = size == 0 ? HK_TRAILER : HK_DATA;
			break;
		case HK_DATA:
			if ((n = evbuffer_get_length(in)) == 0)
				return LB_OK;
			if (n > hk->hk_left)
				n = (size_t)hk->hk_left;
			if (evbuffer_remove_buffer(in, out, n) != (int)n) {
				snprintf(msg, msglen, "out of memory");
				return LB_E_INTERNAL;
			}
			hk->hk_left -= n;
			hk->hk_total += n;
			if (hk->hk_left == 0)
				hk->hk_state = HK_DATA_END;
			break;
		case HK_DATA_END:
			if ((r = http_chunked_line(in, line, HTTP_CHUNK_LINE_MAX, &len)) == 1)
				return LB_OK;
			if (r != 0 || len != 0) {
				snprintf(msg, msglen, "chunk data is not followed by CRLF");
				return LB_E_BAD_REQUEST;
			}
			hk->hk_state = HK_SIZE;
			break;
		case HK_TRAILER:
			/* Trailer fields are read, bounded like a head, and dropped. */
			r = http_chunked_line(in, line, HTTP_GUARD_HEAD_MAX, &len);
			if (r == 1)
				return LB_OK;
			if (r != 0 || (hk->hk_trailer += len) > HTTP_GUARD_HEAD_MAX) {
				snprintf(msg, msglen, "the chunked body's trailer is over %d bytes",
				    HTTP_GUARD_HEAD_MAX);
				return LB_E_TOO_LARGE;
			}
			if (len == 0)
				hk->hk_state = HK_DONE;
			break;
		case HK_DONE:
			break;
		}
	}
	*done = true;
	return LB_OK;
}

/* Adds to gd_in (what evhttp reads) without taking it for input. */
static void
http_guard_give(struct http_guard *gd, struct evbuffer *from, const char *s, size_t n)
{
	gd->gd_busy = true;
	if (from != NULL)
		evbuffer_add_buffer(gd->gd_in, from);
	if (s != NULL)
		evbuffer_add(gd->gd_in, s, n);
	gd->gd_busy = false;
}

/* Everything received so far goes to gd_hold. */
static void
http_guard_take(struct http_guard *gd)
{
	gd->gd_busy = true;
	evbuffer_add_buffer(gd->gd_hold, gd->gd_in);
	gd->gd_busy = false;
}

/*
 * Refuses the request being read: evhttp gets the synthetic request, the
 * verdict waits for it, and what follows is dropped.
 */
static void
http_guard_refuse(struct http_guard *gd, enum lb_err e, const char *msg)
{
	gd->gd_verdict = e;
	snprintf(gd->gd_msg, sizeof(gd->gd_msg), "%s", msg);
	evbuffer_drain(gd->gd_hold, evbuffer_get_length(gd->gd_hold));
	evbuffer_drain(gd->gd_head, evbuffer_get_length(gd->gd_head));
	evbuffer_drain(gd->gd_body, evbuffer_get_length(gd->gd_body));
	gd->gd_state = GS_DISCARD;
	http_guard_give(gd, NULL, http_guard_refused, sizeof(http_guard_refused) - 1);
}

/*
 * Where the head in gd_hold ends (after its empty line), searching on from
 * gd_scan; 0 with *end when found, 1 when it is not complete yet.
 */
static int
http_guard_head_end(struct http_guard *gd, size_t *end)
{
	struct evbuffer_ptr	p;
	size_t			eol;

	for (;;) {
		if (evbuffer_ptr_set(gd->gd_hold, &p, gd->gd_scan, EVBUFFER_PTR_SET) != 0)
			return 1;
		p = evbuffer_search_eol(gd->gd_hold, &p, &eol, EVBUFFER_EOL_CRLF);
		if (p.pos < 0)
			return 1;
		if ((size_t)p.pos == gd->gd_scan && gd->gd_started) {
			*end = (size_t)p.pos + eol;
			return 0;
		}
		if ((size_t)p.pos > gd->gd_scan)
			gd->gd_started = true;
		gd->gd_scan = (size_t)p.pos + eol;
	}
}

/* Hands over the normalized head, its body's Content-Length and body (or none). */
static void
http_guard_pass(struct http_guard *gd, const struct http_head *hh, struct evbuffer *body,
    size_t body_len)
{
	char	cl[48];
	int	n;

	if (hh->hh_body != HB_NONE) {
		n = snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", body_len);
		evbuffer_add(gd->gd_head, cl, (size_t)n);
	}
	evbuffer_add(gd->gd_head, "\r\n", 2);
	http_guard_give(gd, gd->gd_head, NULL, 0);
	if (body != NULL)
		http_guard_give(gd, body, NULL, 0);
	gd->gd_state = GS_PASS;
}

/* GS_HEAD: a complete head is checked and handed over, or refused. */
static void
http_guard_head_step(struct http_guard *gd)
{
	struct http_head	 hh;
	struct evbuffer		*body;
	size_t			 end, n;
	char			 msg[96];
	unsigned char		*p;

	if (http_guard_head_end(gd, &end) != 0) {
		if (evbuffer_get_length(gd->gd_hold) > HTTP_GUARD_HEAD_MAX) {
			snprintf(msg, sizeof(msg), "the request head is over %d bytes",
			    HTTP_GUARD_HEAD_MAX);
			http_guard_refuse(gd, LB_E_TOO_LARGE, msg);
		}
		return;
	}
	if (end > HTTP_GUARD_HEAD_MAX) {
		snprintf(msg, sizeof(msg), "the request head is over %d bytes",
		    HTTP_GUARD_HEAD_MAX);
		http_guard_refuse(gd, LB_E_TOO_LARGE, msg);
		return;
	}
	if ((p = evbuffer_pullup(gd->gd_hold, (ev_ssize_t)end)) == NULL) {
		http_guard_refuse(gd, LB_E_INTERNAL, "out of memory");
		return;
	}
	http_guard_head((const char *)p, end, LB_BODY_MAX, gd->gd_head, &hh);
	evbuffer_drain(gd->gd_hold, end);
	gd->gd_scan = 0;
	gd->gd_started = false;
	if (hh.hh_err != LB_OK) {
		http_guard_refuse(gd, hh.hh_err, hh.hh_msg);
		return;
	}
	if (hh.hh_body == HB_CHUNKED) {
		memset(&gd->gd_chunked, 0, sizeof(gd->gd_chunked));
		gd->gd_state = GS_CHUNKED;
		return;
	}
	/*
	 * The body's bytes received so far go with the head; what follows the
	 * body stays held for the next request.
	 */
	body = NULL;
	n = 0;
	if (hh.hh_body == HB_LENGTH) {
		n = evbuffer_get_length(gd->gd_hold);
		if (n > hh.hh_length)
			n = (size_t)hh.hh_length;
		if ((body = evbuffer_new()) == NULL ||
		    evbuffer_remove_buffer(gd->gd_hold, body, n) != (int)n) {
			if (body != NULL)
				evbuffer_free(body);
			http_guard_refuse(gd, LB_E_INTERNAL, "out of memory");
			return;
		}
	}
	http_guard_pass(gd, &hh, body, (size_t)hh.hh_length);
	if (body != NULL)
		evbuffer_free(body);
}

/* GS_CHUNKED: the body is decoded as it comes, then handed over whole. */
static void
http_guard_chunked_step(struct http_guard *gd)
{
	struct http_head	hh;
	enum lb_err		e;
	char			msg[128];
	bool			done;

	e = http_chunked_decode(&gd->gd_chunked, gd->gd_hold, gd->gd_body, LB_BODY_MAX, &done,
	    msg, sizeof(msg));
	if (e != LB_OK) {
		http_guard_refuse(gd, e, msg);
		return;
	}
	if (!done)
		return;
	memset(&hh, 0, sizeof(hh));
	hh.hh_body = HB_LENGTH;
	http_guard_pass(gd, &hh, gd->gd_body, gd->gd_chunked.hk_total);
}

/* Takes what arrived and moves the current request on as far as it can. */
static void
http_guard_run(struct http_guard *gd)
{
	enum http_guard_state	before;

	do {
		before = gd->gd_state;
		if (gd->gd_state == GS_HEAD || gd->gd_state == GS_CHUNKED)
			http_guard_take(gd);
		if (gd->gd_state == GS_HEAD)
			http_guard_head_step(gd);
		else if (gd->gd_state == GS_CHUNKED)
			http_guard_chunked_step(gd);
	} while (gd->gd_state != before && gd->gd_state == GS_CHUNKED);
}

/*
 * The input buffer's callback: n_added bytes arrived at its end.  After a
 * refusal they are dropped, keeping what evhttp has still to read of the
 * synthetic request in front of them.
 */
static void
http_guard_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	struct http_guard	*gd = arg;
	struct evbuffer		*keep;
	size_t			 len, n;

	if (gd->gd_busy || info->n_added == 0 || gd->gd_state == GS_PASS)
		return;
	if (gd->gd_state != GS_DISCARD) {
		http_guard_run(gd);
		return;
	}
	len = evbuffer_get_length(in);
	n = info->n_added < len ? info->n_added : len;
	gd->gd_busy = true;
	if ((keep = evbuffer_new()) != NULL &&
	    evbuffer_remove_buffer(in, keep, len - n) == (int)(len - n)) {
		evbuffer_drain(in, n);
		evbuffer_prepend_buffer(in, keep);
	}
	if (keep != NULL)
		evbuffer_free(keep);
	gd->gd_busy = false;
}

struct http_guard *
http_guard_new(struct bufferevent *bev)
{
	struct http_guard	*gd;

	if ((gd = calloc(1, sizeof(*gd))) == NULL)
		return NULL;
	gd->gd_in = bufferevent_get_input(bev);
	if ((gd->gd_hold = evbuffer_new()) == NULL || (gd->gd_head = evbuffer_new()) == NULL ||
	    (gd->gd_body = evbuffer_new()) == NULL ||
	    (gd->gd_cb = evbuffer_add_cb(gd->gd_in, http_guard_input, gd)) == NULL) {
		http_guard_free(gd);
		return NULL;
	}
	return gd;
}

void
http_guard_free(struct http_guard *gd)
{
	if (gd == NULL)
		return;
	if (gd->gd_cb != NULL)
		evbuffer_remove_cb_entry(gd->gd_in, gd->gd_cb);
	if (gd->gd_hold != NULL)
		evbuffer_free(gd->gd_hold);
	if (gd->gd_head != NULL)
		evbuffer_free(gd->gd_head);
	if (gd->gd_body != NULL)
		evbuffer_free(gd->gd_body);
	free(gd);
}

enum lb_err
http_guard_verdict(struct http_guard *gd, char *msg, size_t msglen)
{
	enum lb_err	e = gd->gd_verdict;

	snprintf(msg, msglen, "%s", gd->gd_msg);
	if (gd->gd_state == GS_DISCARD)
		return e;
	/* evhttp has read the whole request: what is left is the next one's. */
	gd->gd_verdict = LB_OK;
	gd->gd_msg[0] = '\0';
	gd->gd_state = GS_HEAD;
	http_guard_run(gd);
	return e;
}
