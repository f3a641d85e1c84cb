/*
 * fuzz_http_guard.c - the request framing in front of evhttp (http_guard.c):
 * request heads through http_guard_head and chunked bodies through
 * http_chunked_decode.
 *
 * Byte 0 is the step in which the body is handed to the decoder (1 to 256
 * bytes at a time); the rest is a request as a client sends it.  Its head
 * ends at its first empty line after a non-empty one.  Properties: a head
 * that is accepted normalizes to a head that is accepted again as the same
 * request (what evhttp is given holds); a chunked body decodes to the same
 * bytes, outcome and remainder whether it comes whole or a step at a time,
 * never past the limit.
 */
#include <event2/buffer.h>

#include "fuzz_common.h"
#include "gateway.h"

#define FUZZ_BODY_MAX	4096

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* The length of the head at p: through its first empty line after a non-empty one; 0: none. */
static size_t
head_len(const uint8_t *p, size_t n)
{
	size_t	i, start = 0;
	bool	started = false;

	for (i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (i == start || (i == start + 1 && p[start] == '\r')) {
			if (started)
				return i + 1;
		} else
			started = true;
		start = i + 1;
	}
	return 0;
}

/* Decodes body (n bytes) step bytes at a time; the outcome, the output and the rest. */
static enum lb_err
decode(const uint8_t *body, size_t n, size_t step, struct evbuffer *out, struct evbuffer *rest,
    bool *done)
{
	struct http_chunked	hk;
	enum lb_err		e = LB_OK;
	size_t			off = 0, k;
	char			msg[160];

	memset(&hk, 0, sizeof(hk));
	*done = false;
	while (off < n && e == LB_OK && !*done) {
		k = n - off < step ? n - off : step;
		evbuffer_add(rest, body + off, k);
		off += k;
		e = http_chunked_decode(&hk, rest, out, FUZZ_BODY_MAX, done, msg, sizeof(msg));
		if (hk.hk_total > FUZZ_BODY_MAX || evbuffer_get_length(out) != hk.hk_total)
			abort();
	}
	evbuffer_add(rest, body + off, n - off);
	return e;
}

/* Whether two buffers hold the same bytes. */
static bool
same(struct evbuffer *a, struct evbuffer *b)
{
	size_t	n = evbuffer_get_length(a);

	return n == evbuffer_get_length(b) && (n == 0 ||
	    memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), n) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_head	 hh, again;
	struct evbuffer		*norm, *norm2, *out1, *out2, *rest1, *rest2;
	enum lb_err		 e1, e2;
	size_t			 hl, step;
	bool			 d1, d2;
	char			 cl[48];

	if (size < 1 || size > 4 * HTTP_GUARD_HEAD_MAX)
		return 0;
	step = (size_t)data[0] + 1;
	data++;
	size--;
	if ((hl = head_len(data, size)) == 0)
		return 0;
	if ((norm = evbuffer_new()) == NULL || (norm2 = evbuffer_new()) == NULL ||
	    (out1 = evbuffer_new()) == NULL || (out2 = evbuffer_new()) == NULL ||
	    (rest1 = evbuffer_new()) == NULL || (rest2 = evbuffer_new()) == NULL)
		abort();
	http_guard_head((const char *)data, hl, FUZZ_BODY_MAX, norm, &hh);
	if (hh.hh_err == LB_OK) {
		if (hh.hh_body == HB_LENGTH && hh.hh_length > FUZZ_BODY_MAX)
			abort();
		if (hh.hh_body != HB_NONE) {
			snprintf(cl, sizeof(cl), "Content-Length: %llu\r\n",
			    (unsigned long long)hh.hh_length);
			evbuffer_add(norm, cl, strlen(cl));
		}
		evbuffer_add(norm, "\r\n", 2);
		http_guard_head((const char *)evbuffer_pullup(norm, -1),
		    evbuffer_get_length(norm), FUZZ_BODY_MAX, norm2, &again);
		if (again.hh_err != LB_OK || again.hh_length != hh.hh_length ||
		    again.hh_body != (hh.hh_body == HB_NONE ? HB_NONE : HB_LENGTH))
			abort();
	}
	if (hh.hh_err == LB_OK && hh.hh_body == HB_CHUNKED) {
		e1 = decode(data + hl, size - hl, size - hl + 1, out1, rest1, &d1);
		e2 = decode(data + hl, size - hl, step, out2, rest2, &d2);
		if (e1 != e2 || d1 != d2 || (e1 == LB_OK && (!same(out1, out2) ||
		    !same(rest1, rest2))))
			abort();
	}
	evbuffer_free(norm);
	evbuffer_free(norm2);
	evbuffer_free(out1);
	evbuffer_free(out2);
	evbuffer_free(rest1);
	evbuffer_free(rest2);
	return 0;
}
