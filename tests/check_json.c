/*
 * check_json.c - unit tests of mpk_json.c against jansson: the one-pass
 * parser accepts exactly what json_loadb (JSON_REJECT_DUPLICATES) and the
 * former tree walk accepted and yields the same objects, and the streaming
 * encoder writes the bytes mpk_to_json (json_dumps) writes, on random and
 * hand-picked inputs.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "lianban.h"
#include "check_util.h"

static unsigned long	rng = 88172645463325252UL;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

/* The mapping mpk_from_json had over jansson's tree: the reference. */
static int
ref_from_jansson(json_t *j, msgpack_zone *z, msgpack_object *out, int depth)
{
	const char	*key;
	json_t		*v;
	size_t		 i, n;

	if (depth > LB_MSGPACK_DEPTH)
		return -1;
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		n = json_object_size(j);
		*out = mpk_nil();
		out->type = MSGPACK_OBJECT_MAP;
		out->via.map.size = (uint32_t)n;
		out->via.map.ptr = mpk_zalloc(z, sizeof(msgpack_object_kv) * (n ? n : 1));
		i = 0;
		json_object_foreach(j, key, v) {
			out->via.map.ptr[i].key = mpk_strdup(z, key, strlen(key));
			if (ref_from_jansson(v, z, &out->via.map.ptr[i].val, depth + 1) != 0)
				return -1;
			i++;
		}
		return 0;
	case JSON_ARRAY:
		n = json_array_size(j);
		*out = mpk_array(z, (uint32_t)n);
		json_array_foreach(j, i, v)
			if (ref_from_jansson(v, z, &out->via.array.ptr[i], depth + 1) != 0)
				return -1;
		return 0;
	case JSON_STRING:
		*out = mpk_strdup(z, json_string_value(j), json_string_length(j));
		return 0;
	case JSON_INTEGER:
		*out = mpk_int((int64_t)json_integer_value(j));
		return 0;
	case JSON_TRUE:
		*out = mpk_bool(true);
		return 0;
	case JSON_FALSE:
		*out = mpk_bool(false);
		return 0;
	case JSON_NULL:
		*out = mpk_nil();
		return 0;
	default:
		return -1;
	}
}

/* Parses txt both ways; both refuse it, or both make the same object. */
static void
check_parse(const char *txt, size_t len)
{
	msgpack_zone z1, z2;
	msgpack_object a, b;
	msgpack_sbuffer sa, sb;
	json_error_t jerr;
	json_t *j;
	char err[256];
	int ra, rb = -1;

	msgpack_zone_init(&z1, 1024);
	msgpack_zone_init(&z2, 1024);
	ra = mpk_from_json(txt, len, &z1, &a, err, sizeof(err));
	if ((j = json_loadb(txt, len, JSON_REJECT_DUPLICATES, &jerr)) != NULL) {
		rb = ref_from_jansson(j, &z2, &b, 0);
		json_decref(j);
	}
	ck_assert_msg(ra == rb, "parse of [%.*s]: %d, jansson %d (%s)", (int)len, txt, ra, rb,
	    ra != 0 ? err : jerr.text);
	if (ra == 0) {
		msgpack_sbuffer_init(&sa);
		msgpack_sbuffer_init(&sb);
		ck_assert_int_eq(mpk_pack(&a, &sa, false), mpk_pack(&b, &sb, false));
		ck_bytes_eq(sa.data, sa.size, sb.data, sb.size);
		msgpack_sbuffer_destroy(&sa);
		msgpack_sbuffer_destroy(&sb);
	} else
		ck_assert_msg(strncmp(err, "invalid JSON at line ", 21) == 0, "%s", err);
	msgpack_zone_destroy(&z1);
	msgpack_zone_destroy(&z2);
}

/* Encodes o both ways; both refuse it, or both write the same bytes. */
static void
check_encode(const msgpack_object *o)
{
	struct mpk_jbuf jb = { 0 };
	char *s;
	int r;

	r = mpk_json_append(o, &jb);
	s = mpk_to_json(o, false);
	ck_assert_msg((r == 0) == (s != NULL), "encoder %d, jansson %s", r, s ? s : "NULL");
	if (s != NULL)
		ck_bytes_eq(jb.jb_data, jb.jb_len, s, strlen(s));
	free(s);
	free(jb.jb_data);
}

START_TEST(test_parse_cases)
{
	static const char *const cases[] = {
		"{}", "[]", " [ ] ", "{\"a\":1}", "[1,2,3]", "[-0]", "[0]", "[01]", "[-01]",
		"[1.0]", "[1e5]", "[1E5]", "[-]", "[--1]", "[+1]", "[9223372036854775807]",
		"[9223372036854775808]", "[-9223372036854775808]", "[-9223372036854775809]",
		"[18446744073709551616]", "[\"a\\u0000b\"]", "[\"\\ud83d\\ude00\"]",
		"[\"\\ud83d\"]", "[\"\\ude00\"]", "[\"\\ud83dx\"]", "[\"\\ud83d\\u0041\"]",
		"[\"\\u00e9\\u4e2d\"]", "[\"\\u00E9\"]", "[\"\\uZZZZ\"]", "[\"\\u12\"]",
		"[\"\\x\"]", "[\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"]", "[\"\x01\"]", "[\"\x7f\"]",
		"[\"\xc3\xa9\"]", "[\"\xc3\"]", "[\"\xe4\xb8\xad\"]", "[\"\xed\xa0\x80\"]",
		"[\"\xc0\xaf\"]", "[\"\xf4\x90\x80\x80\"]", "[\"\xff\"]", "\"s\"", "1", "true",
		"null", "", " ", "[", "]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]",
		"[,1]", "{,}", "{\"a\":1 \"b\":2}", "{\"a\":1,\"a\":2}", "{\"a\":1,\"b\":{\"a\":1}}",
		"[true,false,null]", "[truex]", "[tru]", "[nul]", "[1true]", "[1 2]",
		"[1]x", "[1] ", "[1]\n\t\r ", "\xef\xbb\xbf[]", "{\"\":\"\"}", "[\"\"]",
		"{\"a\":[{\"b\":[{\"c\":[]}]}]}", "[1]\0", "[\"a\0\"]", "{1:2}", "['a']",
		"[\"\\u0041\"]", "{\"\\u0061\":1,\"a\":2}", "[\"abc", "[\"\\", "[\"\\u",
	};
	size_t i;

	for (i = 0; i < NELEM(cases); i++)
		check_parse(cases[i], strlen(cases[i]));
	check_parse("[1]\0", 4);
	check_parse("[\"a\0\"]", 6);
}
END_TEST

/* Nesting at the limit of LB_MSGPACK_DEPTH and one past it, both ways. */
START_TEST(test_depth)
{
	char buf[256];
	int d, i, n;

	for (d = LB_MSGPACK_DEPTH - 1; d <= LB_MSGPACK_DEPTH + 2; d++) {
		n = 0;
		for (i = 0; i <= d; i++)
			buf[n++] = '[';
		buf[n++] = '1';
		for (i = 0; i <= d; i++)
			buf[n++] = ']';
		check_parse(buf, (size_t)n);
		n = 0;
		for (i = 0; i <= d; i++)
			n += snprintf(buf + n, sizeof(buf) - (size_t)n, "{\"k\":");
		buf[n++] = '1';
		for (i = 0; i <= d; i++)
			buf[n++] = '}';
		check_parse(buf, (size_t)n);
	}
}
END_TEST

/* A large object: a key given twice is found without a quadratic scan. */
START_TEST(test_many_keys)
{
	enum { N = 20000 };
	size_t cap = N * 16 + 16, n = 0;
	char *buf = malloc(cap);
	int i;

	ck_assert_ptr_nonnull(buf);
	buf[n++] = '{';
	for (i = 0; i < N; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s\"k%d\":%d", i ? "," : "", i, i);
	buf[n++] = '}';
	check_parse(buf, n);
	/* The last key again. */
	n--;
	n += (size_t)snprintf(buf + n, cap - n, ",\"k%d\":0}", N - 1);
	check_parse(buf, n);
	free(buf);
}
END_TEST

static const char *const pieces[] = {
	"{", "}", "[", "]", ",", ":", " ", "\"", "\\", "\\u", "0", "1", "-", "9", ".", "e",
	"true", "false", "null", "\"k\"", "\"a\\nb\"", "\"\xc3\xa9\"", "\xc3", "\\ud800",
	"\\udc00", "00", "\x01", "\"\"", "922337203685477580", "\t", "\n",
};

/* Random token soups and mutations of valid texts. */
START_TEST(test_parse_random)
{
	char buf[512];
	size_t n, k;
	int i, t;

	for (i = 0; i < 40000; i++) {
		n = 0;
		buf[n++] = rnd(2) ? '[' : '{';
		for (t = (int)rnd(14); t > 0; t--) {
			const char *p = pieces[rnd(NELEM(pieces))];

			k = strlen(p);
			if (n + k + 2 >= sizeof(buf))
				break;
			memcpy(buf + n, p, k);
			n += k;
		}
		if (rnd(3) != 0)
			buf[n++] = buf[0] == '[' ? ']' : '}';
		check_parse(buf, n);
	}
}
END_TEST

static msgpack_object
rand_str(msgpack_zone *z, bool keyish)
{
	static const char *const frags[] = { "a", "b", "k", "\"", "\\", "\n", "\t", "\x01",
	    "\x1f", "/", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\x7f", " " };
	char buf[64];
	size_t n = 0, k;
	int t;

	for (t = (int)rnd(keyish ? 3 : 6); t > 0; t--) {
		const char *p = frags[rnd(keyish ? 3 : NELEM(frags))];

		k = strlen(p);
		memcpy(buf + n, p, k);
		n += k;
	}
	/* Now and then text that is not UTF-8, or a NUL. */
	if (!keyish && rnd(40) == 0)
		buf[n++] = (char)0xff;
	if (!keyish && rnd(40) == 0)
		buf[n++] = '\0';
	return mpk_strdup(z, buf, n);
}

static msgpack_object
rand_obj(msgpack_zone *z, int depth)
{
	static const double reals[] = { 0.0, 1.0, -1.5, 0.1, 1e21, 1e-7, 123456789.125,
	    3.0e300, -0.0 };
	static const uint8_t bytes[40] = { 1, 2, 3, 250, 251, 252 };
	msgpack_object o;
	uint32_t i, n;

	switch (rnd(depth > LB_MSGPACK_DEPTH + 1 ? 7 : 9)) {
	case 0:
		return mpk_nil();
	case 1:
		return mpk_bool(rnd(2));
	case 2:
		switch (rnd(5)) {
		case 0: return mpk_int(INT64_MIN);
		case 1: return mpk_uint((uint64_t)INT64_MAX + rnd(2));
		default: return mpk_int((int64_t)rnd(100000) - 50000);
		}
	case 3:
		o = mpk_nil();
		o.type = rnd(2) ? MSGPACK_OBJECT_FLOAT64 : MSGPACK_OBJECT_FLOAT32;
		o.via.f64 = reals[rnd(NELEM(reals))];
		return o;
	case 4:
	case 5:
		return rand_str(z, false);
	case 6:
		return mpk_bindup(z, bytes, rnd(sizeof(bytes)));
	case 7:
		n = rnd(5);
		o = mpk_array(z, n);
		for (i = 0; i < n; i++)
			o.via.array.ptr[i] = rand_obj(z, depth + 1);
		return o;
	default:
		n = rnd(20);
		o = mpk_nil();
		o.type = MSGPACK_OBJECT_MAP;
		o.via.map.size = n;
		o.via.map.ptr = mpk_zalloc(z, sizeof(msgpack_object_kv) * (n ? n : 1));
		for (i = 0; i < n; i++) {
			/* Short keys from few letters: prefixes of each other, and repeats. */
			o.via.map.ptr[i].key = rnd(60) == 0 ? mpk_int(1) : rand_str(z, true);
			o.via.map.ptr[i].val = rand_obj(z, depth + 1);
		}
		return o;
	}
}

START_TEST(test_encode_random)
{
	msgpack_zone z;
	msgpack_object o;
	struct mpk_jbuf jb = { 0 };
	char *s;
	int i, ok = 0;

	for (i = 0; i < 20000; i++) {
		msgpack_zone_init(&z, 4096);
		o = rand_obj(&z, 0);
		check_encode(&o);
		/* What the encoder writes, the parser reads back (no reals, no bins). */
		if ((s = mpk_to_json(&o, false)) != NULL) {
			ok++;
			check_parse(s, strlen(s));
			free(s);
		}
		msgpack_zone_destroy(&z);
	}
	ck_assert_int_gt(ok, 1000);
	free(jb.jb_data);
}
END_TEST

START_TEST(test_encode_cases)
{
	msgpack_zone z;
	msgpack_object o;
	struct mpk_map m;
	uint8_t big[3000];
	size_t i;

	msgpack_zone_init(&z, 4096);
	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	mpk_map_init(&m, &z, 6);
	mpk_map_put(&m, "exchange", mpk_bin(big, 16));
	mpk_map_put(&m, "document_bytes", mpk_bin(big, sizeof(big)));
	mpk_map_put(&m, "empty", mpk_bin(big, 0));
	mpk_map_put(&m, "名", mpk_str("值"));
	mpk_map_put(&m, "a", mpk_str(""));
	mpk_map_put(&m, "ab", mpk_uint(UINT64_MAX));
	check_encode(&m.mm_obj);
	o = mpk_str("top level");
	check_encode(&o);
	msgpack_zone_destroy(&z);
}
END_TEST

static Suite *
json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("against jansson");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_parse_cases);
	tcase_add_test(tc, test_depth);
	tcase_add_test(tc, test_many_keys);
	tcase_add_test(tc, test_parse_random);
	tcase_add_test(tc, test_encode_cases);
	tcase_add_test(tc, test_encode_random);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(json_suite());
}
