/*
 * check_text.c - text from outside is UTF-8 when it is decoded, and what an
 * older version stored without that check is still shown: the UTF-8 check of
 * mpk_unpack at every str header (gateway/lib/mpk.c), the JSON mapping of
 * journal records that the daemon's records query, the access report and
 * lianctl journal pull share (journal_record_show, journal_record_decode in
 * gateway/lib/journal_read.c), and GBK/GB18030 answers full of characters
 * that grow when they become UTF-8 (src_decode, gateway/lib/translate_src.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "lianban.h"
#include "translate_impl.h"
#include "check_util.h"

/* Byte strings that are not text: not UTF-8, or a NUL that JSON refuses. */
static const struct {
	const char	*bt_name;
	const char	*bt_bytes;
	size_t		 bt_len;
} bad_text[] = {
	{ "lone 0xff",			"\xff",			1 },
	{ "lone continuation",		"ab\x80",		3 },
	{ "overlong /",			"\xc0\xaf",		2 },
	{ "overlong NUL",		"\xc0\x80",		2 },
	{ "overlong 3-byte",		"\xe0\x80\xaf",		3 },
	{ "surrogate",			"\xed\xa0\x80",		3 },
	{ "above U+10FFFF",		"\xf4\x90\x80\x80",	4 },
	{ "5-byte form",		"\xf8\x88\x80\x80\x80",	5 },
	{ "cut euro sign",		"\xe2\x82",		2 },
	{ "cut at the end",		"ok\xe4\xb8",		4 },
	{ "NUL",			"a\0b",			3 },
};

/* Text at the edges of each UTF-8 length. */
static const char *const good_text[] = {
	"", "plain ASCII \x7f", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xef\xbf\xbf",
	"\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "\xe2\x82\xac \xe7\x8e\x8b\xe5\xad\x90",
};

/* The header of a str of n bytes, in the shortest form; its length. */
static size_t
str_header(uint8_t *h, size_t n)
{
	if (n < 32) {
		h[0] = (uint8_t)(0xa0 | n);
		return 1;
	}
	if (n < 256) {
		h[0] = 0xd9;
		h[1] = (uint8_t)n;
		return 2;
	}
	if (n < 65536) {
		h[0] = 0xda;
		h[1] = (uint8_t)(n >> 8);
		h[2] = (uint8_t)n;
		return 3;
	}
	h[0] = 0xdb;
	h[1] = (uint8_t)(n >> 24);
	h[2] = (uint8_t)(n >> 16);
	h[3] = (uint8_t)(n >> 8);
	h[4] = (uint8_t)n;
	return 5;
}

/*
 * Where a text goes in the message: a str value alone, the value of a map
 * entry, a map key, the second element of an array in a map.  pad ASCII
 * bytes come before the text, so that every str header form is reached.
 */
enum place { PL_ALONE, PL_VALUE, PL_KEY, PL_NESTED, PL__COUNT };

/* Writes the message into buf (sized by the caller); returns its length. */
static size_t
text_message(uint8_t *buf, enum place pl, size_t pad, const char *text, size_t len)
{
	size_t	n = 0;

	switch (pl) {
	case PL_ALONE:
		break;
	case PL_VALUE:
		memcpy(buf, "\x81\xa1k", 3);	/* {"k": */
		n = 3;
		break;
	case PL_KEY:
		buf[n++] = 0x81;		/* {text: 1} */
		break;
	case PL_NESTED:
		memcpy(buf, "\x81\xa1k\x92\xc0", 5);	/* {"k": [nil, */
		n = 5;
		break;
	default:
		ck_abort();
	}
	n += str_header(buf + n, pad + len);
	memset(buf + n, 'x', pad);
	n += pad;
	memcpy(buf + n, text, len);
	n += len;
	if (pl == PL_KEY)
		buf[n++] = 0x01;
	return n;
}

static const size_t pads[] = { 0, 40, 300, 70000 };

/*
 * Decoding
 */

START_TEST(test_unpack_refuses_bad_text)
{
	size_t		 i = (size_t)_i % NELEM(bad_text), len, p;
	enum place	 pl;
	uint8_t		*buf = malloc(80000);
	msgpack_zone	 z;
	msgpack_object	 o;

	ck_assert_ptr_nonnull(buf);
	msgpack_zone_init(&z, 4096);
	for (pl = 0; pl < PL__COUNT; pl++) {
		for (p = 0; p < NELEM(pads); p++) {
			len = text_message(buf, pl, pads[p], bad_text[i].bt_bytes,
			    bad_text[i].bt_len);
			ck_assert_msg(mpk_unpack(buf, len, &z, &o) == -1,
			    "%s (place %d, pad %zu) decoded", bad_text[i].bt_name, pl, pads[p]);
			/* The same bytes are well-formed msgpack, only not text. */
			ck_assert_int_eq(mpk_unpack_stored(buf, len, &z, &o), 0);
			ck_assert(mpk_is_canonical(buf, len));
			ck_assert(!mpk_json_able(&o) || memchr(bad_text[i].bt_bytes, '\0',
			    bad_text[i].bt_len) != NULL);
		}
	}
	msgpack_zone_destroy(&z);
	free(buf);
}
END_TEST

START_TEST(test_unpack_accepts_text)
{
	const char	*t = good_text[_i];
	size_t		 len, p;
	enum place	 pl;
	uint8_t		*buf = malloc(80000);
	msgpack_zone	 z;
	msgpack_object	 o;
	char		*json;

	ck_assert_ptr_nonnull(buf);
	msgpack_zone_init(&z, 4096);
	for (pl = 0; pl < PL__COUNT; pl++) {
		for (p = 0; p < NELEM(pads); p++) {
			len = text_message(buf, pl, pads[p], t, strlen(t));
			ck_assert_msg(mpk_unpack(buf, len, &z, &o) == 0, "text %d (place %d, pad "
			    "%zu) refused", _i, pl, pads[p]);
			ck_assert_msg(mpk_json_able(&o), "text %d (place %d, pad %zu) has no "
			    "JSON", _i, pl, pads[p]);
			ck_assert_ptr_nonnull(json = mpk_to_json(&o, false));
			free(json);
		}
	}
	msgpack_zone_destroy(&z);
	free(buf);
}
END_TEST

START_TEST(test_bin_is_not_text)
{
	static const uint8_t	msg[] = { 0x81, 0xa1, 'k', 0xc4, 0x03, 0xff, 0x00, 0xc0 };
	msgpack_zone		z;
	msgpack_object		o;

	msgpack_zone_init(&z, 1024);
	ck_assert_int_eq(mpk_unpack(msg, sizeof(msg), &z, &o), 0);
	ck_assert(mpk_json_able(&o));
	msgpack_zone_destroy(&z);
}
END_TEST

/* An integer above INT64_MAX is msgpack but has no JSON form in jansson. */
START_TEST(test_json_able_big_integer)
{
	static const uint8_t	msg[] = { 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0 };
	msgpack_zone		z;
	msgpack_object		o;

	msgpack_zone_init(&z, 1024);
	ck_assert_int_eq(mpk_unpack(msg, sizeof(msg), &z, &o), 0);
	ck_assert(!mpk_json_able(&o));
	msgpack_zone_destroy(&z);
}
END_TEST

/*
 * Journal records an older version wrote from unchecked text
 */

static int	 ndone;

static void
appended(void *arg, int status, uint64_t first)
{
	(void)first;
	*(int *)arg = status;
	ndone++;
}

struct shown {
	msgpack_zone	sh_zone;
	msgpack_object	sh_list;
	uint8_t		*sh_leaf[4];
	size_t		sh_len[4];
	uint32_t	sh_n;
};

/* Shows each record found as the daemon's records query does (jread_record). */
static int
show(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct shown	*sh = arg;

	if (sh->sh_n == NELEM(sh->sh_leaf))
		return -1;
	sh->sh_leaf[sh->sh_n] = malloc(len);
	memcpy(sh->sh_leaf[sh->sh_n], rec, len);
	sh->sh_len[sh->sh_n] = len;
	journal_record_show(&sh->sh_zone, seq, rec, len,
	    &sh->sh_list.via.array.ptr[sh->sh_n++]);
	return 0;
}

START_TEST(test_old_record_shown_raw)
{
	char		 dir[] = "/tmp/check_text.XXXXXX", sub[64], *json;
	EVP_PKEY	*key;
	X509		*cert;
	struct event_base *base;
	struct journal	*j;
	struct jrec	 recs[2];
	struct journal_filter f;
	struct shown	 sh;
	json_t		*doc, *e;
	const msgpack_object *o;
	uint8_t		*raw;
	size_t		 rawlen, i;
	uint64_t	 next;
	bool		 more;
	int		 status = -1;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/db", dir);
	ck_assert_ptr_nonnull(key = EVP_EC_gen("P-256"));
	cert = check_cert(key, "/CN=journal checkpoint", 1, NULL, NULL, false);
	ck_assert_ptr_nonnull(base = event_base_new());
	j = check_journal_open(sub, key, cert, 0);

	/* What an older version journaled for a msgpack body with an unknown bundle. */
	memset(recs, 0, sizeof(recs));
	for (i = 0; i < 2; i++) {
		recs[i].jr_kind = i == 0 ? JK_EXCHANGE : JK_DENY;
		recs[i].jr_t_ms = 1767225600000ULL + i;
		snprintf(recs[i].jr_consumer, sizeof(recs[i].jr_consumer), "newborn");
		snprintf(recs[i].jr_decision, sizeof(recs[i].jr_decision), "deny");
		snprintf(recs[i].jr_code, sizeof(recs[i].jr_code), "unknown_bundle");
	}
	snprintf(recs[0].jr_bundle, sizeof(recs[0].jr_bundle), "newborn");
	memcpy(recs[1].jr_bundle, "new\xff\xfe", 6);
	ck_assert_int_eq(journal_append(j, base, recs, 2, appended, &status), 0);
	check_run_until(base, &ndone, 1, 60 * 1000);
	ck_assert_int_eq(ndone, 1);
	ck_assert_int_eq(status, 0);

	/* The filters still read the record ... */
	memset(&f, 0, sizeof(f));
	snprintf(f.jf_consumer, sizeof(f.jf_consumer), "newborn");
	f.jf_limit = 10;
	memset(&sh, 0, sizeof(sh));
	msgpack_zone_init(&sh.sh_zone, 4096);
	sh.sh_list = mpk_array(&sh.sh_zone, 4);
	ck_assert_int_eq(journal_query(j, &f, show, &sh, &more, &next), 0);
	ck_assert_uint_eq(sh.sh_n, 2);
	sh.sh_list.via.array.size = sh.sh_n;

	/* ... the good one is decoded, the other one shown raw and flagged ... */
	o = &sh.sh_list.via.array.ptr[0];
	ck_assert(mpk_str_eq(mpk_get(mpk_get(o, "record"), "bundle"), "newborn"));
	ck_assert_ptr_null(mpk_get(o, "record_raw"));
	ck_assert_ptr_null(mpk_get(o, "record_error"));
	o = &sh.sh_list.via.array.ptr[1];
	ck_assert_ptr_null(mpk_get(o, "record"));
	ck_assert_int_eq(mpk_get_bytes(o, "record_raw", &sh.sh_zone, (const uint8_t **)&raw,
	    &rawlen), 0);
	ck_bytes_eq(raw, rawlen, sh.sh_leaf[1], sh.sh_len[1]);
	ck_assert_int_eq(mpk_get_bytes(o, "leaf", &sh.sh_zone, (const uint8_t **)&raw,
	    &rawlen), 0);
	ck_bytes_eq(raw, rawlen, sh.sh_leaf[1], sh.sh_len[1]);
	ck_assert(mpk_get(o, "record_error") != NULL &&
	    mpk_get(o, "record_error")->type == MSGPACK_OBJECT_STR);

	/* ... and the whole answer is JSON, whose record_raw is the base64url of the bytes. */
	ck_assert_ptr_nonnull(json = mpk_to_json(&sh.sh_list, false));
	ck_assert_ptr_nonnull(doc = json_loads(json, 0, NULL));
	e = json_array_get(doc, 1);
	ck_assert_int_eq(json_integer_value(json_object_get(e, "seq")), 1);
	{
		char *b = b64url_encode(sh.sh_leaf[1], sh.sh_len[1]);

		ck_assert_str_eq(json_string_value(json_object_get(e, "record_raw")), b);
		free(b);
	}
	ck_assert_str_eq(json_string_value(json_object_get(e, "record_error")),
	    "the record holds text that is not valid UTF-8 (or holds a NUL character)");
	json_decref(doc);
	free(json);

	for (i = 0; i < sh.sh_n; i++)
		free(sh.sh_leaf[i]);
	msgpack_zone_destroy(&sh.sh_zone);
	journal_close(j);
	event_base_free(base);
	X509_free(cert);
	EVP_PKEY_free(key);
	ck_assert_int_eq(check_rm_tree(dir), 0);
}
END_TEST

START_TEST(test_record_decode_damage)
{
	msgpack_zone	 z;
	msgpack_object	 dec;
	const char	*why;

	msgpack_zone_init(&z, 1024);
	why = journal_record_decode("\x81\xa1k", 3, &z, &dec);
	ck_assert_str_eq(why, "the record is not one msgpack value");
	ck_assert_int_eq(dec.type, MSGPACK_OBJECT_NIL);
	why = journal_record_decode("\x81\xa1k\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 12, &z,
	    &dec);
	ck_assert_str_eq(why, "the record holds a value that JSON cannot show");
	ck_assert_ptr_null(journal_record_decode("\x81\xa1k\xa3\xe2\x82\xac", 7, &z, &dec));
	msgpack_zone_destroy(&z);
}
END_TEST

/*
 * GBK and GB18030 answers
 */

/*
 * One byte of GBK (CP936's 0x80, the euro sign) is three bytes of UTF-8: an
 * answer made of them triples in size.  GB18030 writes the euro sign in two
 * bytes (0xa2e3).
 */
START_TEST(test_gbk_full_of_euro_signs)
{
	static const struct {
		const char	*enc;
		const char	*euro;
		size_t		 len;
	} encs[] = { { "gbk", "\x80", 1 }, { "gb18030", "\xa2\xe3", 2 } };
	size_t		 n = 4096, i, k, outlen;
	char		*in, *out, err[256];

	for (k = 0; k < NELEM(encs); k++) {
		ck_assert_ptr_nonnull(in = malloc(n * encs[k].len));
		for (i = 0; i < n; i++)
			memcpy(in + i * encs[k].len, encs[k].euro, encs[k].len);
		err[0] = '\0';
		ck_assert_msg(src_decode(encs[k].enc, in, n * encs[k].len, &out, &outlen, err,
		    sizeof(err)) == 0, "%s: %s", encs[k].enc, err);
		ck_assert_uint_eq(outlen, 3 * n);
		for (i = 0; i < n; i++)
			ck_assert(memcmp(out + 3 * i, "\xe2\x82\xac", 3) == 0);
		ck_assert_int_eq(out[outlen], '\0');
		free(out);
		free(in);
	}
	/* Just one euro sign, and one after text, too. */
	ck_assert_int_eq(src_decode("gbk", "\x80", 1, &out, &outlen, err, sizeof(err)), 0);
	ck_assert_str_eq(out, "\xe2\x82\xac");
	free(out);
	ck_assert_int_eq(src_decode("gbk", "a\x80", 2, &out, &outlen, err, sizeof(err)), 0);
	ck_assert_str_eq(out, "a\xe2\x82\xac");
	free(out);
}
END_TEST

static Suite *
text_suite(void)
{
	Suite	*s = suite_create("text");
	TCase	*tc;

	tc = tcase_create("decode");
	tcase_add_loop_test(tc, test_unpack_refuses_bad_text, 0, NELEM(bad_text));
	tcase_add_loop_test(tc, test_unpack_accepts_text, 0, NELEM(good_text));
	tcase_add_test(tc, test_bin_is_not_text);
	tcase_add_test(tc, test_json_able_big_integer);
	suite_add_tcase(s, tc);

	tc = tcase_create("journal");
	tcase_add_test(tc, test_old_record_shown_raw);
	tcase_add_test(tc, test_record_decode_damage);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);

	tc = tcase_create("gbk");
	tcase_add_test(tc, test_gbk_full_of_euro_signs);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(text_suite());
}
