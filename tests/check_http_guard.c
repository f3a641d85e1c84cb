/*
 * check_http_guard.c - the request framing in front of evhttp (http_guard.c):
 * request heads checked and normalized, and chunked bodies decoded, bounded,
 * whole or a byte at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/buffer.h>

#include "gateway.h"
#include "check_util.h"

#define MAX	1000	/* the body limit of these tests */

/* The head normalized into a string (static storage), with hh filled. */
static const char *
head(const char *text, struct http_head *hh)
{
	static char	 out[4096];
	struct evbuffer	*b;
	size_t		 n;

	ck_assert_ptr_nonnull(b = evbuffer_new());
	http_guard_head(text, strlen(text), MAX, b, hh);
	n = evbuffer_get_length(b);
	ck_assert_uint_lt(n, sizeof(out));
	evbuffer_remove(b, out, n);
	out[n] = '\0';
	evbuffer_free(b);
	return out;
}

START_TEST(test_head_normalized)
{
	struct http_head	hh;
	const char		*out;

	out = head("POST /v1/exchanges HTTP/1.1\r\nHost: x\r\nContent-Type:  application/json "
	    "\t\r\nContent-Length: 12\r\nAccept:application/json\r\n\r\n", &hh);
	ck_assert_int_eq(hh.hh_err, LB_OK);
	ck_assert_int_eq(hh.hh_body, HB_LENGTH);
	ck_assert_uint_eq(hh.hh_length, 12);
	ck_assert_str_eq(out, "POST /v1/exchanges HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/json\r\nAccept: application/json\r\n");

	/* Bare LF line ends and empty lines before the request line. */
	out = head("\r\n\nGET /v1/health?x=%41 HTTP/1.0\nConnection: keep-alive\n\n", &hh);
	ck_assert_int_eq(hh.hh_err, LB_OK);
	ck_assert_int_eq(hh.hh_body, HB_NONE);
	ck_assert_str_eq(out, "GET /v1/health?x=%41 HTTP/1.0\r\nConnection: keep-alive\r\n");

	out = head("PUT /v1/policies/a HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n", &hh);
	ck_assert_int_eq(hh.hh_err, LB_OK);
	ck_assert_int_eq(hh.hh_body, HB_CHUNKED);
	ck_assert_str_eq(out, "PUT /v1/policies/a HTTP/1.1\r\n");

	/* The same length twice is one length; obs-text is a value's byte. */
	out = head("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n"
	    "X-Name: \xe4\xb8\xad\r\n\r\n", &hh);
	ck_assert_int_eq(hh.hh_err, LB_OK);
	ck_assert_uint_eq(hh.hh_length, 5);
	ck_assert_str_eq(out, "POST / HTTP/1.1\r\nX-Name: \xe4\xb8\xad\r\n");

	/* A body of exactly the limit, the one expectation there is, a path of "/". */
	out = head("POST / HTTP/1.1\r\nContent-Length: 1000\r\nexpect: 100-Continue\r\n\r\n",
	    &hh);
	ck_assert_int_eq(hh.hh_err, LB_OK);
	ck_assert_str_eq(out, "POST / HTTP/1.1\r\nexpect: 100-Continue\r\n");
}
END_TEST

static const struct {
	const char	*text;
	enum lb_err	 err;
} refusals[] = {
	{ "GARBAGE\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET /\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET  / HTTP/1.1\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET / HTTP/1.1 \r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET / x HTTP/1.1\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET x HTTP/1.1\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET * HTTP/1.1\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET http://a/ HTTP/1.1\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET //a/b HTTP/1.1\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET //[ HTTP/1.1\r\n\r\n", LB_E_BAD_REQUEST },
	{ "POST / HTTP/1.1\r\nContent-Length: 1\r\nExpect: 200-ok\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET /\x7f HTTP/1.1\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET /\xc3\xa9 HTTP/1.1\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET / HTTP/1.2\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET / HTTP/2.0\r\n\r\n", LB_E_BAD_REQUEST },
	{ "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", LB_E_BAD_REQUEST },
	{ "get / HTTP/1.1\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET\r/ HTTP/1.1\r\n\r\n", LB_E_BAD_REQUEST },
	{ "FOO / HTTP/1.1\r\n\r\n", LB_E_METHOD_NOT_ALLOWED },
	{ "HEAD / HTTP/1.1\r\n\r\n", LB_E_METHOD_NOT_ALLOWED },
	{ "TRACE / HTTP/1.1\r\n\r\n", LB_E_METHOD_NOT_ALLOWED },
	{ "CONNECT /a:443 HTTP/1.1\r\n\r\n", LB_E_METHOD_NOT_ALLOWED },
	{ "GET / HTTP/1.1\r\nNoColon\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET / HTTP/1.1\r\n: empty name\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET / HTTP/1.1\r\nName : x\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", LB_E_BAD_REQUEST },
	{ "GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", LB_E_BAD_REQUEST },
	{ "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", LB_E_BAD_REQUEST },
	{ "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", LB_E_BAD_REQUEST },
	{ "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", LB_E_BAD_REQUEST },
	{ "POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", LB_E_BAD_REQUEST },
	{ "POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", LB_E_BAD_REQUEST },
	{ "POST / HTTP/1.1\r\nContent-Length: 5,5\r\n\r\n", LB_E_BAD_REQUEST },
	{ "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
	    LB_E_BAD_REQUEST },
	{ "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	    LB_E_BAD_REQUEST },
	{ "POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", LB_E_TOO_LARGE },
	{ "POST / HTTP/1.1\r\nContent-Length: 999999999999999999\r\n\r\n", LB_E_TOO_LARGE },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", LB_E_BAD_REQUEST },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", LB_E_BAD_REQUEST },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	    LB_E_BAD_REQUEST },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	    LB_E_BAD_REQUEST },
	{ "GET / HTTP/1.1\r\nA: b\r\n", LB_E_BAD_REQUEST },
};

START_TEST(test_head_refused)
{
	struct http_head	hh;

	head(refusals[_i].text, &hh);
	ck_assert_msg(hh.hh_err == refusals[_i].err, "refusal %d: got %s (%s), want %s", _i,
	    lb_err_code(hh.hh_err), hh.hh_msg, lb_err_code(refusals[_i].err));
	ck_assert_msg(strlen(hh.hh_msg) > 10 && strchr(hh.hh_msg, '\n') == NULL,
	    "refusal %d: message \"%s\" is not a sentence", _i, hh.hh_msg);
}
END_TEST

/*
 * Decodes text as a chunked body, handed over whole (step 0) or step bytes
 * at a time; returns the outcome, the body in out (static) and what was left
 * after it in rest.
 */
static enum lb_err
chunked(const char *text, size_t step, size_t max, const char **out, const char **rest,
    bool *done)
{
	static char		 body[4096], after[HTTP_GUARD_HEAD_MAX + 128];
	struct http_chunked	 hk;
	struct evbuffer		*in, *dec;
	enum lb_err		 e = LB_OK;
	size_t			 len = strlen(text), off = 0, n;
	char			 msg[160];

	memset(&hk, 0, sizeof(hk));
	ck_assert_ptr_nonnull(in = evbuffer_new());
	ck_assert_ptr_nonnull(dec = evbuffer_new());
	*done = false;
	while (off < len && e == LB_OK && !*done) {
		n = step == 0 || len - off < step ? len - off : step;
		evbuffer_add(in, text + off, n);
		off += n;
		msg[0] = '\0';
		e = http_chunked_decode(&hk, in, dec, max, done, msg, sizeof(msg));
		if (e != LB_OK)
			ck_assert_msg(strlen(msg) > 10, "no message for %s", lb_err_code(e));
	}
	/* What was not handed over yet follows what the decoder left. */
	evbuffer_add(in, text + off, len - off);
	n = evbuffer_get_length(dec);
	ck_assert_uint_lt(n, sizeof(body));
	evbuffer_remove(dec, body, n);
	body[n] = '\0';
	n = evbuffer_get_length(in);
	ck_assert_uint_lt(n, sizeof(after));
	evbuffer_remove(in, after, n);
	after[n] = '\0';
	*out = body;
	*rest = after;
	evbuffer_free(in);
	evbuffer_free(dec);
	return e;
}

START_TEST(test_chunked_decoded)
{
	static const char	text[] = "5\r\nhello\r\n1;name=value\r\n,\r\n6 \r\n world\r\n"
	    "0\r\nTrailer: x\r\n\r\nGET / HTTP/1.1\r\n\r\n";
	const char		*out, *rest;
	size_t			 step;
	bool			 done;

	/* Whole, and cut at every possible place. */
	for (step = 0; step <= 7; step++) {
		ck_assert_int_eq(chunked(text, step, MAX, &out, &rest, &done), LB_OK);
		ck_assert(done);
		ck_assert_str_eq(out, "hello, world");
		ck_assert_str_eq(rest, "GET / HTTP/1.1\r\n\r\n");
	}
	/* Bare LF ends, upper-case hex, no trailer. */
	ck_assert_int_eq(chunked("A\nabcdefghij\n0\n\n", 0, MAX, &out, &rest, &done), LB_OK);
	ck_assert(done);
	ck_assert_str_eq(out, "abcdefghij");
	/* Not complete yet. */
	ck_assert_int_eq(chunked("5\r\nhel", 0, MAX, &out, &rest, &done), LB_OK);
	ck_assert(!done);
	ck_assert_str_eq(out, "hel");
	ck_assert_int_eq(chunked("0\r\nX: y\r\n", 0, MAX, &out, &rest, &done), LB_OK);
	ck_assert(!done);
}
END_TEST

START_TEST(test_chunked_refused)
{
	const char	*out, *rest;
	char		 big[HTTP_GUARD_HEAD_MAX + 64];
	bool		 done;

	ck_assert_int_eq(chunked("zz\r\n", 0, MAX, &out, &rest, &done), LB_E_BAD_REQUEST);
	ck_assert_int_eq(chunked("\r\n", 0, MAX, &out, &rest, &done), LB_E_BAD_REQUEST);
	ck_assert_int_eq(chunked("-1\r\n", 0, MAX, &out, &rest, &done), LB_E_BAD_REQUEST);
	ck_assert_int_eq(chunked("5x\r\n", 0, MAX, &out, &rest, &done), LB_E_BAD_REQUEST);
	ck_assert_int_eq(chunked("2\r\nabc\r\n", 0, MAX, &out, &rest, &done), LB_E_BAD_REQUEST);
	ck_assert_int_eq(chunked("2\r\nab\r\r\n", 0, MAX, &out, &rest, &done), LB_E_BAD_REQUEST);
	/* Over the limit: at the size line that crosses it, before its data. */
	ck_assert_int_eq(chunked("3E9\r\n", 0, MAX, &out, &rest, &done), LB_E_TOO_LARGE);
	ck_assert_int_eq(chunked("3E8\r\n", 0, MAX, &out, &rest, &done), LB_OK);
	ck_assert_int_eq(chunked("FFFFFFFFFFFFFFFFFFFFFFFF\r\n", 0, MAX, &out, &rest, &done),
	    LB_E_TOO_LARGE);
	ck_assert_int_eq(chunked("1F4\r\n", 0, 1000, &out, &rest, &done), LB_OK);
	memset(big, 'a', sizeof(big));
	memcpy(big, "1F4\r\n", 5);
	memcpy(big + 5 + 500, "\r\n1F5\r\n", 7);
	big[5 + 500 + 7] = '\0';
	ck_assert_int_eq(chunked(big, 0, 1000, &out, &rest, &done), LB_E_TOO_LARGE);
	/* A size line, or a trailer, without an end. */
	memset(big, '0', sizeof(big) - 1);
	big[HTTP_CHUNK_LINE_MAX + 2] = '\0';
	ck_assert_int_eq(chunked(big, 0, MAX, &out, &rest, &done), LB_E_BAD_REQUEST);
	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "0\r\nT: ", 6);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(chunked(big, 0, MAX, &out, &rest, &done), LB_E_TOO_LARGE);
}
END_TEST

static Suite *
http_guard_suite(void)
{
	Suite	*s = suite_create("http_guard");
	TCase	*tc;

	tc = tcase_create("head");
	tcase_add_test(tc, test_head_normalized);
	tcase_add_loop_test(tc, test_head_refused, 0, NELEM(refusals));
	suite_add_tcase(s, tc);

	tc = tcase_create("chunked");
	tcase_add_test(tc, test_chunked_decoded);
	tcase_add_test(tc, test_chunked_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(http_guard_suite());
}
