/*
 * check_mpk.c - unit tests for the canonical msgpack of docs/contract.md §3
 * (gateway/lib/mpk.c) and the encodings of gateway/lib/util.c that travel with it
 * (base64url without padding, hex).
 *
 * Every encoding is compared with bytes written out by hand from the
 * msgpack specification, never with the output of msgpack-c, so a change
 * of library or packer that picks a longer header is caught here before
 * signatures stop matching other implementations of the contract.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "lianban.h"
#include "check_util.h"

/* Packs o into a fresh buffer and compares it with want. */
static void
ck_packs_to(const msgpack_object *o, const void *want, size_t wantlen)
{
	msgpack_sbuffer	sb;

	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(mpk_pack(o, &sb, false), 0);
	ck_bytes_eq(sb.data, sb.size, want, wantlen);
	msgpack_sbuffer_destroy(&sb);
}

/* mpk_pack must refuse o and leave what out already held untouched. */
static void
ck_pack_refused(const msgpack_object *o)
{
	msgpack_sbuffer	sb;

	msgpack_sbuffer_init(&sb);
	msgpack_sbuffer_write(&sb, "\x01\x02", 2);
	ck_assert_int_eq(mpk_pack(o, &sb, false), -1);
	ck_bytes_eq(sb.data, sb.size, "\x01\x02", 2);
	msgpack_sbuffer_destroy(&sb);
}

/* Bytes free in the zone's current chunk: unchanged means nothing was allocated. */
static size_t
zone_free(const msgpack_zone *z)
{
	return z->chunk_list.free;
}

/*
 * Packing
 */

START_TEST(test_pack_sorts_keys)
{
	msgpack_zone	z;
	struct mpk_map	m, inner;
	/* "B" (0x42) < "a" < "aa" < "b" < "名" (e5 90 8d): plain byte order. */
	static const uint8_t want[] = {
		0x85,
		0xa1, 'B', 0x05,
		0xa1, 'a', 0x82, 0xa1, 'x', 0x01, 0xa1, 'y', 0x02,
		0xa2, 'a', 'a', 0x02,
		0xa1, 'b', 0x01,
		0xa3, 0xe5, 0x90, 0x8d, 0x04,
	};

	msgpack_zone_init(&z, 1024);
	mpk_map_init(&inner, &z, 2);
	mpk_map_put(&inner, "y", mpk_uint(2));
	mpk_map_put(&inner, "x", mpk_uint(1));
	mpk_map_init(&m, &z, 5);
	mpk_map_put(&m, "名", mpk_uint(4));
	mpk_map_put(&m, "b", mpk_uint(1));
	mpk_map_put(&m, "aa", mpk_uint(2));
	mpk_map_put(&m, "a", inner.mm_obj);
	mpk_map_put(&m, "B", mpk_uint(5));
	ck_packs_to(&m.mm_obj, want, sizeof(want));
	ck_assert(mpk_is_canonical(want, sizeof(want)));

	/* The input map itself is not reordered by packing. */
	ck_assert(mpk_str_eq(&m.mm_obj.via.map.ptr[0].key, "名"));
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_pack_refuses_duplicates)
{
	msgpack_zone	z;
	struct mpk_map	m, outer;

	msgpack_zone_init(&z, 1024);
	mpk_map_init(&m, &z, 3);
	mpk_map_put(&m, "a", mpk_uint(1));
	mpk_map_put(&m, "b", mpk_uint(2));
	mpk_map_put(&m, "a", mpk_uint(1));
	ck_pack_refused(&m.mm_obj);

	/* A duplicate deep inside refuses the whole object. */
	mpk_map_init(&outer, &z, 1);
	mpk_map_put(&outer, "x", m.mm_obj);
	ck_pack_refused(&outer.mm_obj);

	/* Keys differing only in length are not duplicates. */
	mpk_map_init(&m, &z, 2);
	mpk_map_put(&m, "a", mpk_uint(1));
	mpk_map_put(&m, "a\0", mpk_uint(2));
	m.mm_obj.via.map.ptr[1].key = mpk_strn("a\0", 2);
	ck_packs_to(&m.mm_obj, "\x82\xa1" "a" "\x01\xa2" "a\0" "\x02", 8);
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_pack_refuses_nonstring_keys)
{
	msgpack_zone	z;
	struct mpk_map	m;

	msgpack_zone_init(&z, 1024);
	mpk_map_init(&m, &z, 2);
	mpk_map_put(&m, "a", mpk_uint(1));
	mpk_map_put(&m, "b", mpk_uint(2));
	m.mm_obj.via.map.ptr[1].key = mpk_uint(7);
	ck_pack_refused(&m.mm_obj);
	m.mm_obj.via.map.ptr[1].key = mpk_bin("b", 1);
	ck_pack_refused(&m.mm_obj);
	m.mm_obj.via.map.ptr[1].key = mpk_nil();
	ck_pack_refused(&m.mm_obj);
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_pack_refuses_floats)
{
	msgpack_zone	z;
	msgpack_object	f, a;
	msgpack_sbuffer	sb;
	static const uint8_t want[] = { 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0 };

	msgpack_zone_init(&z, 1024);
	f = mpk_nil();
	f.type = MSGPACK_OBJECT_FLOAT64;
	f.via.f64 = 1.5;
	ck_pack_refused(&f);
	f.type = MSGPACK_OBJECT_FLOAT32;
	ck_pack_refused(&f);
	a = mpk_array(&z, 2);
	a.via.array.ptr[0] = mpk_uint(1);
	a.via.array.ptr[1] = f;
	ck_pack_refused(&a);

	/* Only where a field allows floats. */
	f.type = MSGPACK_OBJECT_FLOAT64;
	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(mpk_pack(&f, &sb, true), 0);
	ck_bytes_eq(sb.data, sb.size, want, sizeof(want));
	msgpack_sbuffer_destroy(&sb);
	msgpack_zone_destroy(&z);
}
END_TEST

/* Shortest integer encodings at every boundary of the format. */
static const struct {
	bool		 neg;
	uint64_t	 u;
	int64_t		 i;
	size_t		 len;
	const char	*bytes;
} ints[] = {
	{ false, 0, 0, 1, "\x00" },
	{ false, 1, 0, 1, "\x01" },
	{ false, 127, 0, 1, "\x7f" },
	{ false, 128, 0, 2, "\xcc\x80" },
	{ false, 255, 0, 2, "\xcc\xff" },
	{ false, 256, 0, 3, "\xcd\x01\x00" },
	{ false, 65535, 0, 3, "\xcd\xff\xff" },
	{ false, 65536, 0, 5, "\xce\x00\x01\x00\x00" },
	{ false, 4294967295u, 0, 5, "\xce\xff\xff\xff\xff" },
	{ false, 4294967296u, 0, 9, "\xcf\x00\x00\x00\x01\x00\x00\x00\x00" },
	{ false, UINT64_MAX, 0, 9, "\xcf\xff\xff\xff\xff\xff\xff\xff\xff" },
	{ true, 0, -1, 1, "\xff" },
	{ true, 0, -32, 1, "\xe0" },
	{ true, 0, -33, 2, "\xd0\xdf" },
	{ true, 0, -128, 2, "\xd0\x80" },
	{ true, 0, -129, 3, "\xd1\xff\x7f" },
	{ true, 0, -32768, 3, "\xd1\x80\x00" },
	{ true, 0, -32769, 5, "\xd2\xff\xff\x7f\xff" },
	{ true, 0, INT32_MIN, 5, "\xd2\x80\x00\x00\x00" },
	{ true, 0, (int64_t)INT32_MIN - 1, 9, "\xd3\xff\xff\xff\xff\x7f\xff\xff\xff" },
	{ true, 0, INT64_MIN, 9, "\xd3\x80\x00\x00\x00\x00\x00\x00\x00" },
};

START_TEST(test_pack_int_boundaries)
{
	msgpack_zone	z;
	msgpack_object	o, back;
	int64_t		v;
	uint64_t	u;

	msgpack_zone_init(&z, 1024);
	o = ints[_i].neg ? mpk_int(ints[_i].i) : mpk_uint(ints[_i].u);
	ck_packs_to(&o, ints[_i].bytes, ints[_i].len);
	ck_assert(mpk_is_canonical(ints[_i].bytes, ints[_i].len));

	/* The signed constructor picks the same encoding for non-negative values. */
	if (!ints[_i].neg && ints[_i].u <= INT64_MAX) {
		o = mpk_int((int64_t)ints[_i].u);
		ck_assert_int_eq(o.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
		ck_packs_to(&o, ints[_i].bytes, ints[_i].len);
	}

	/* And the bytes decode back to the value. */
	ck_assert_int_eq(mpk_unpack(ints[_i].bytes, ints[_i].len, &z, &back), 0);
	if (ints[_i].neg) {
		ck_assert_int_eq(mpk_obj_i64(&back, &v), 0);
		ck_assert(v == ints[_i].i);
		ck_assert_int_eq(mpk_obj_u64(&back, &u), -1);
	} else {
		ck_assert_int_eq(mpk_obj_u64(&back, &u), 0);
		ck_assert(u == ints[_i].u);
	}
	msgpack_zone_destroy(&z);
}
END_TEST

/* Expected header for a str (bin when bin is true) of n bytes. */
static size_t
want_header(bool bin, size_t n, uint8_t *h)
{
	if (!bin && n < 32) {
		h[0] = (uint8_t)(0xa0 | n);
		return 1;
	}
	if (n < 256) {
		h[0] = bin ? 0xc4 : 0xd9;
		h[1] = (uint8_t)n;
		return 2;
	}
	if (n < 65536) {
		h[0] = bin ? 0xc5 : 0xda;
		h[1] = (uint8_t)(n >> 8);
		h[2] = (uint8_t)n;
		return 3;
	}
	h[0] = bin ? 0xc6 : 0xdb;
	h[1] = (uint8_t)(n >> 24);
	h[2] = (uint8_t)(n >> 16);
	h[3] = (uint8_t)(n >> 8);
	h[4] = (uint8_t)n;
	return 5;
}

static const size_t str_lens[] = { 0, 1, 31, 32, 255, 256, 65535, 65536 };

START_TEST(test_pack_str_bin_boundaries)
{
	static const uint8_t hdr_str[][6] = {
		{ 1, 0xa0 }, { 1, 0xa1 }, { 1, 0xbf }, { 2, 0xd9, 0x20 }, { 2, 0xd9, 0xff },
		{ 3, 0xda, 0x01, 0x00 }, { 3, 0xda, 0xff, 0xff },
		{ 5, 0xdb, 0x00, 0x01, 0x00, 0x00 },
	};
	static const uint8_t hdr_bin[][6] = {
		{ 2, 0xc4, 0x00 }, { 2, 0xc4, 0x01 }, { 2, 0xc4, 0x1f }, { 2, 0xc4, 0x20 },
		{ 2, 0xc4, 0xff }, { 3, 0xc5, 0x01, 0x00 }, { 3, 0xc5, 0xff, 0xff },
		{ 5, 0xc6, 0x00, 0x01, 0x00, 0x00 },
	};
	size_t		 n = str_lens[_i], hl;
	uint8_t		*body, *want, h[5];
	msgpack_object	 o;
	int		 bin;

	/* The hand table and the helper agree; the helper builds the long bodies. */
	hl = want_header(false, n, h);
	ck_bytes_eq(h, hl, &hdr_str[_i][1], hdr_str[_i][0]);
	hl = want_header(true, n, h);
	ck_bytes_eq(h, hl, &hdr_bin[_i][1], hdr_bin[_i][0]);

	ck_assert_ptr_nonnull(body = malloc(n + 1));
	ck_assert_ptr_nonnull(want = malloc(n + 5));
	memset(body, 'x', n);
	for (bin = 0; bin <= 1; bin++) {
		hl = want_header(bin, n, want);
		memcpy(want + hl, body, n);
		o = bin ? mpk_bin(body, n) : mpk_strn((const char *)body, n);
		ck_packs_to(&o, want, hl + n);
		ck_assert(mpk_is_canonical(want, hl + n));
	}
	free(body);
	free(want);
}
END_TEST

START_TEST(test_pack_container_boundaries)
{
	static const struct {
		uint32_t	n;
		size_t		hl;
		uint8_t		arr[5], map[5];
	} c[] = {
		{ 0, 1, { 0x90 }, { 0x80 } },
		{ 15, 1, { 0x9f }, { 0x8f } },
		{ 16, 3, { 0xdc, 0x00, 0x10 }, { 0xde, 0x00, 0x10 } },
		{ 65535, 3, { 0xdc, 0xff, 0xff }, { 0xde, 0xff, 0xff } },
		{ 65536, 5, { 0xdd, 0x00, 0x01, 0x00, 0x00 }, { 0xdf, 0x00, 0x01, 0x00, 0x00 } },
	};
	msgpack_zone	 z;
	msgpack_object	 a;
	struct mpk_map	 m;
	char		(*keys)[12];
	uint8_t		*want;
	size_t		 i, k, off;

	msgpack_zone_init(&z, 4096);
	for (i = 0; i < NELEM(c); i++) {
		/* An array of n nils: header, then n times 0xc0. */
		a = mpk_array(&z, c[i].n);
		ck_assert_ptr_nonnull(want = malloc(c[i].hl + c[i].n));
		memcpy(want, c[i].arr, c[i].hl);
		memset(want + c[i].hl, 0xc0, c[i].n);
		ck_packs_to(&a, want, c[i].hl + c[i].n);
		free(want);

		/* A map of n keys "k00000".."kNNNNN" (already sorted) to 0. */
		ck_assert_ptr_nonnull(keys = malloc(sizeof(*keys) * (c[i].n + 1)));
		ck_assert_ptr_nonnull(want = malloc(c[i].hl + (size_t)c[i].n * 8));
		mpk_map_init(&m, &z, c[i].n);
		memcpy(want, c[i].map, c[i].hl);
		off = c[i].hl;
		for (k = 0; k < c[i].n; k++) {
			snprintf(keys[k], sizeof(keys[k]), "k%05zu", k);
			mpk_map_put(&m, keys[k], mpk_uint(0));
			want[off++] = 0xa6;
			memcpy(want + off, keys[k], 6);
			off += 6;
			want[off++] = 0x00;
		}
		ck_packs_to(&m.mm_obj, want, off);
		free(want);
		free(keys);
	}
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_pack_scalars_and_append)
{
	msgpack_zone	 z;
	msgpack_object	 a;
	msgpack_sbuffer	 sb;
	uint8_t		*buf;
	size_t		 len;
	static const uint8_t want[] = { 0x94, 0xc0, 0xc3, 0xc2, 0xa2, 'h', 'i' };

	msgpack_zone_init(&z, 1024);
	a = mpk_array(&z, 4);
	ck_assert_int_eq(a.via.array.ptr[0].type, MSGPACK_OBJECT_NIL);
	a.via.array.ptr[1] = mpk_bool(true);
	a.via.array.ptr[2] = mpk_bool(false);
	a.via.array.ptr[3] = mpk_str("hi");
	ck_packs_to(&a, want, sizeof(want));

	/* mpk_pack appends after what the buffer holds. */
	msgpack_sbuffer_init(&sb);
	msgpack_sbuffer_write(&sb, "\xaa", 1);
	ck_assert_int_eq(mpk_pack(&a, &sb, false), 0);
	ck_assert_uint_eq(sb.size, 1 + sizeof(want));
	ck_assert_uint_eq((uint8_t)sb.data[0], 0xaa);
	ck_bytes_eq(sb.data + 1, sb.size - 1, want, sizeof(want));
	msgpack_sbuffer_destroy(&sb);

	ck_assert_int_eq(mpk_pack_alloc(&a, &buf, &len), 0);
	ck_bytes_eq(buf, len, want, sizeof(want));
	free(buf);
	a.via.array.ptr[0].type = MSGPACK_OBJECT_FLOAT64;
	buf = NULL;
	ck_assert_int_eq(mpk_pack_alloc(&a, &buf, &len), -1);
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_pack_copies)
{
	msgpack_zone	z;
	msgpack_object	s, b;
	char		src[] = "abc";
	uint8_t		raw[] = { 1, 2, 3 };

	msgpack_zone_init(&z, 1024);
	s = mpk_strdup(&z, src, 3);
	b = mpk_bindup(&z, raw, 3);
	src[0] = 'X';
	raw[0] = 9;
	ck_packs_to(&s, "\xa3" "abc", 4);
	ck_packs_to(&b, "\xc4\x03\x01\x02\x03", 5);
	b = mpk_bindup(&z, NULL, 0);
	ck_packs_to(&b, "\xc4\x00", 2);
	msgpack_zone_destroy(&z);
}
END_TEST

/* n arrays of one element each around a nil: 0x91 ... 0x91 0xc0. */
static uint8_t *
nested_arrays(size_t n, size_t *len)
{
	uint8_t	*p = malloc(n + 1);

	ck_assert_ptr_nonnull(p);
	memset(p, 0x91, n);
	p[n] = 0xc0;
	*len = n + 1;
	return p;
}

START_TEST(test_pack_depth)
{
	msgpack_zone	z;
	msgpack_object	o, a;
	int		i;

	/* A nil under LB_MSGPACK_DEPTH arrays packs; one level more does not. */
	msgpack_zone_init(&z, 4096);
	o = mpk_nil();
	for (i = 0; i < LB_MSGPACK_DEPTH; i++) {
		a = mpk_array(&z, 1);
		a.via.array.ptr[0] = o;
		o = a;
	}
	{
		size_t	 len;
		uint8_t	*want = nested_arrays(LB_MSGPACK_DEPTH, &len);

		ck_packs_to(&o, want, len);
		free(want);
	}
	a = mpk_array(&z, 1);
	a.via.array.ptr[0] = o;
	ck_pack_refused(&a);
	msgpack_zone_destroy(&z);
}
END_TEST

/*
 * Canonical form checks
 */

static const struct {
	const char	*what;
	size_t		 len;
	const char	*bytes;
} noncanon[] = {
	{ "unsorted map", 7, "\x82\xa1" "b" "\x01\xa1" "a" "\x02" },
	{ "unsorted by length", 8, "\x82\xa2" "aa" "\x01\xa1" "a" "\x02" },
	{ "duplicate keys", 7, "\x82\xa1" "a" "\x01\xa1" "a" "\x02" },
	{ "non-string key", 3, "\x81\x01\x02" },
	{ "str8 for a 1-byte str", 3, "\xd9\x01" "a" },
	{ "str8 for an empty str", 2, "\xd9\x00" },
	{ "str16 for 32 bytes", 35, "\xda\x00\x20" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" },
	{ "bin16 for 1 byte", 4, "\xc5\x00\x01\x00" },
	{ "uint8 for 5", 2, "\xcc\x05" },
	{ "uint16 for 255", 3, "\xcd\x00\xff" },
	{ "uint32 for 65535", 5, "\xce\x00\x00\xff\xff" },
	{ "uint64 for 1", 9, "\xcf\x00\x00\x00\x00\x00\x00\x00\x01" },
	{ "int8 for 5", 2, "\xd0\x05" },
	{ "int8 for -1", 2, "\xd0\xff" },
	{ "int16 for -33", 3, "\xd1\xff\xdf" },
	{ "int64 for -1", 9, "\xd3\xff\xff\xff\xff\xff\xff\xff\xff" },
	{ "array16 for 1 element", 4, "\xdc\x00\x01\xc0" },
	{ "map16 for 1 entry", 6, "\xde\x00\x01\xa1" "a" "\xc0" },
	{ "trailing byte", 2, "\x01\x00" },
	{ "trailing byte after map", 5, "\x81\xa1" "a" "\x01\xc0" },
	{ "float64", 9, "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00" },
	{ "float32", 5, "\xca\x3f\xc0\x00\x00" },
	{ "float in a map", 12, "\x81\xa1" "a" "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00" },
	{ "reserved byte", 1, "\xc1" },
	{ "fixext", 3, "\xd4\x01\x00" },
	{ "truncated str", 2, "\xa3" "a" },
	{ "empty input", 0, "" },
	{ "non-canonical key in nested map", 8, "\x81\xa1" "m" "\x81\xd9\x01" "a" "\x01" },
};

START_TEST(test_noncanonical_refused)
{
	ck_assert_msg(!mpk_is_canonical(noncanon[_i].bytes, noncanon[_i].len),
	    "accepted as canonical: %s", noncanon[_i].what);
}
END_TEST

START_TEST(test_canonical_accepted)
{
	static const struct {
		size_t		 len;
		const char	*bytes;
	} ok[] = {
		{ 1, "\xc0" }, { 1, "\xc3" }, { 1, "\x7f" }, { 2, "\xcc\x80" }, { 1, "\xe0" },
		{ 2, "\xd0\xdf" }, { 1, "\xa0" }, { 2, "\xc4\x00" }, { 1, "\x90" }, { 1, "\x80" },
		{ 8, "\x82\xa1" "a" "\x01\xa2" "aa" "\x02" },
		{ 8, "\x82\xa1" "a" "\x01\xa2" "ab" "\x02" },
		{ 9, "\x82\xa1" "z" "\x01\xa3\xe5\x90\x8d\x02" },
		{ 4, "\xc4\x02\x00\x00" },
	};
	size_t	i;

	for (i = 0; i < NELEM(ok); i++)
		ck_assert_msg(mpk_is_canonical(ok[i].bytes, ok[i].len), "refused case %zu", i);
}
END_TEST

/*
 * Decoding
 */

START_TEST(test_unpack_truncated)
{
	/* {"a": [1, "xyz", bin(2)], "b": {"c": -200}} */
	static const uint8_t full[] = {
		0x82, 0xa1, 'a', 0x93, 0x01, 0xa3, 'x', 'y', 'z', 0xc4, 0x02, 0xaa, 0xbb,
		0xa1, 'b', 0x81, 0xa1, 'c', 0xd1, 0xff, 0x38,
	};
	msgpack_zone	 z;
	msgpack_object	 o;
	uint8_t		*cut;
	size_t		 n;
	int64_t		 v;

	msgpack_zone_init(&z, 1024);
	for (n = 0; n < sizeof(full); n++) {
		/* An exact-size heap copy, so a read past the end is caught. */
		ck_assert_ptr_nonnull(cut = malloc(n ? n : 1));
		memcpy(cut, full, n);
		ck_assert_msg(mpk_unpack(cut, n, &z, &o) == -1, "prefix of %zu accepted", n);
		free(cut);
	}
	ck_assert_int_eq(mpk_unpack(full, sizeof(full), &z, &o), 0);
	ck_assert_int_eq(mpk_get_i64(mpk_get(&o, "b"), "c", &v), 0);
	ck_assert(v == -200);
	ck_assert(mpk_is_canonical(full, sizeof(full)));
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_unpack_count_lies)
{
	static const struct {
		size_t		 len;
		const char	*bytes;
	} lies[] = {
		{ 9, "\xdd\xff\xff\xff\xff\xc0\xc0\xc0\xc0" },	/* array32 of 2^32-1 */
		{ 9, "\xdf\xff\xff\xff\xff\xa1" "a" "\xc0\xc0" },	/* map32 of 2^32-1 */
		{ 5, "\xdc\xff\xff\xc0\xc0" },			/* array16 of 65535 */
		{ 5, "\xde\xff\xff\xa1" "a" },			/* map16 of 65535 */
		{ 6, "\xdb\xff\xff\xff\xff" "a" },		/* str32 of 2^32-1 */
		{ 6, "\xc6\xff\xff\xff\xff" "a" },		/* bin32 of 2^32-1 */
		{ 6, "\xc9\xff\xff\xff\xff\x01" },		/* ext32 of 2^32-1 */
		{ 7, "\xdc\x00\x05\xc0\xc0\xc0\xc0" },		/* 5 claimed, 4 there */
		{ 4, "\x92\xdd\xff\xff" },			/* nested, header cut */
		{ 10, "\x91\xdd\x7f\xff\xff\xff\xc0\xc0\xc0\xc0" },
	};
	msgpack_zone	z;
	msgpack_object	o;
	size_t		i, before;

	msgpack_zone_init(&z, 1024);
	for (i = 0; i < NELEM(lies); i++) {
		before = zone_free(&z);
		ck_assert_msg(mpk_unpack(lies[i].bytes, lies[i].len, &z, &o) == -1,
		    "count lie %zu accepted", i);
		/* Refused before anything was taken from the zone. */
		ck_assert_uint_eq(zone_free(&z), before);
	}
	/* The same header with the promised elements behind it decodes. */
	ck_assert_int_eq(mpk_unpack("\xdc\x00\x05\xc0\xc0\xc0\xc0\xc0", 8, &z, &o), 0);
	ck_assert_int_eq(o.type, MSGPACK_OBJECT_ARRAY);
	ck_assert_uint_eq(o.via.array.size, 5);
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_unpack_depth)
{
	msgpack_zone	 z;
	msgpack_object	 o;
	uint8_t		*p;
	size_t		 len, d;

	msgpack_zone_init(&z, 4096);
	p = nested_arrays(LB_MSGPACK_DEPTH, &len);
	ck_assert_int_eq(mpk_unpack(p, len, &z, &o), 0);
	for (d = 0; d < LB_MSGPACK_DEPTH; d++) {
		ck_assert_int_eq(o.type, MSGPACK_OBJECT_ARRAY);
		o = o.via.array.ptr[0];
	}
	ck_assert_int_eq(o.type, MSGPACK_OBJECT_NIL);
	free(p);

	p = nested_arrays(LB_MSGPACK_DEPTH + 1, &len);
	ck_assert_int_eq(mpk_unpack(p, len, &z, &o), -1);
	ck_assert(!mpk_is_canonical(p, len));
	free(p);

	/* Far deeper than msgpack-c's own parser stack. */
	p = nested_arrays(100000, &len);
	ck_assert_int_eq(mpk_unpack(p, len, &z, &o), -1);
	free(p);

	/* Maps count too: {"a": {"a": ... nil}}. */
	ck_assert_ptr_nonnull(p = malloc(3 * (LB_MSGPACK_DEPTH + 1) + 1));
	for (d = 0; d < LB_MSGPACK_DEPTH + 1; d++)
		memcpy(p + 3 * d, "\x81\xa1" "a", 3);
	p[3 * d] = 0xc0;
	ck_assert_int_eq(mpk_unpack(p, 3 * d + 1, &z, &o), -1);
	ck_assert_int_eq(mpk_unpack(p + 3, 3 * (d - 1) + 1, &z, &o), 0);
	free(p);
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_unpack_reserved_and_trailing)
{
	msgpack_zone	z;
	msgpack_object	o;

	msgpack_zone_init(&z, 1024);
	ck_assert_int_eq(mpk_unpack("\xc1", 1, &z, &o), -1);
	ck_assert_int_eq(mpk_unpack("\x91\xc1", 2, &z, &o), -1);
	ck_assert_int_eq(mpk_unpack("\x81\xa1" "a" "\xc1", 4, &z, &o), -1);
	ck_assert_int_eq(mpk_unpack("\x01\x02", 2, &z, &o), -1);
	ck_assert_int_eq(mpk_unpack("\x90\x90", 2, &z, &o), -1);
	ck_assert_int_eq(mpk_unpack("", 0, &z, &o), -1);
	ck_assert_int_eq(mpk_unpack("\x90", 1, &z, &o), 0);
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_unpack_borrows_zone)
{
	static const uint8_t src[] = { 0x82, 0xa1, 'b', 0xc4, 0x03, 1, 2, 3, 0xa1, 's',
	    0xa5, 'h', 'e', 'l', 'l', 'o' };
	msgpack_zone	 z;
	msgpack_object	 o;
	uint8_t		*buf;
	const uint8_t	*p;
	size_t		 n;
	char		 s[8];

	/* The decoded object stays valid after the input buffer is gone. */
	ck_assert_ptr_nonnull(buf = malloc(sizeof(src)));
	memcpy(buf, src, sizeof(src));
	msgpack_zone_init(&z, 1024);
	ck_assert_int_eq(mpk_unpack(buf, sizeof(src), &z, &o), 0);
	memset(buf, 0, sizeof(src));
	free(buf);
	ck_assert_int_eq(mpk_get_str(&o, "s", s, sizeof(s)), 0);
	ck_assert_str_eq(s, "hello");
	ck_assert_int_eq(mpk_get_bytes(&o, "b", &z, &p, &n), 0);
	ck_bytes_eq(p, n, "\x01\x02\x03", 3);
	msgpack_zone_destroy(&z);
}
END_TEST

/*
 * JSON
 */

static int
from_json(const char *txt, msgpack_zone *z, msgpack_object *o, char *err, size_t errlen)
{
	err[0] = '\0';
	return mpk_from_json(txt, strlen(txt), z, o, err, errlen);
}

START_TEST(test_json_integers)
{
	msgpack_zone	z;
	msgpack_object	o;
	char		err[256];
	int64_t		v;
	static const uint8_t want[] = {
		0x85,
		0xa1, 'a', 0x01,
		0xa1, 'b', 0xfb,
		0xa1, 'c', 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xa1, 'd', 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0,
		0xa1, 'e', 0xcd, 0x01, 0x00,
	};

	msgpack_zone_init(&z, 1024);
	ck_assert_int_eq(from_json("{\"e\": 256, \"d\": -9223372036854775808, "
	    "\"c\": 9223372036854775807, \"b\": -5, \"a\": 1}", &z, &o, err, sizeof(err)), 0);
	ck_assert_int_eq(mpk_get(&o, "a")->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	ck_assert_int_eq(mpk_get(&o, "b")->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
	ck_assert_int_eq(mpk_get_i64(&o, "b", &v), 0);
	ck_assert(v == -5);
	ck_packs_to(&o, want, sizeof(want));
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_json_refusals)
{
	static const char *const bad[] = {
		"{\"a\": 1.5}",
		"{\"a\": 1.0}",
		"{\"a\": 1e3}",
		"{\"a\": [1, 2, -0.5]}",
		"{\"a\": 1, \"a\": 2}",
		"{\"x\": {\"a\": 1, \"b\": 2, \"a\": 3}}",
		"{\"a\": 99999999999999999999}",
		"{\"a\": 1",
		"{\"a\": \"\\ud800\"}",
		"{\"a\": \"\xff\"}",
		"",
	};
	msgpack_zone	z;
	msgpack_object	o;
	char		err[256];
	size_t		i;

	msgpack_zone_init(&z, 1024);
	for (i = 0; i < NELEM(bad); i++) {
		ck_assert_msg(from_json(bad[i], &z, &o, err, sizeof(err)) == -1,
		    "accepted: %s", bad[i]);
		ck_assert_msg(strlen(err) > 10, "no error sentence for %s", bad[i]);
	}
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_json_nested_and_unicode)
{
	msgpack_zone	z;
	msgpack_object	o;
	char		err[256], s[16];
	/* {"k": "名é😀", "x": {"y": {"z": [1, "s", true, false, null]}}} */
	static const uint8_t want[] = {
		0x82,
		0xa1, 'k', 0xa9, 0xe5, 0x90, 0x8d, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80,
		0xa1, 'x', 0x81, 0xa1, 'y', 0x81, 0xa1, 'z',
		0x95, 0x01, 0xa1, 's', 0xc3, 0xc2, 0xc0,
	};

	msgpack_zone_init(&z, 1024);
	ck_assert_int_eq(from_json("{\"x\": {\"y\": {\"z\": [1, \"s\", true, false, null]}}, "
	    "\"k\": \"\\u540d\\u00e9\\ud83d\\ude00\"}", &z, &o, err, sizeof(err)), 0);
	ck_packs_to(&o, want, sizeof(want));

	/* Raw UTF-8 gives the same bytes as the escapes. */
	ck_assert_int_eq(from_json("{\"x\": {\"y\": {\"z\": [1, \"s\", true, false, null]}}, "
	    "\"k\": \"名é😀\"}", &z, &o, err, sizeof(err)), 0);
	ck_packs_to(&o, want, sizeof(want));

	/* UTF-8 keys sort after ASCII ones. */
	ck_assert_int_eq(from_json("{\"名\": 1, \"z\": 2}", &z, &o, err, sizeof(err)), 0);
	ck_packs_to(&o, "\x82\xa1" "z" "\x02\xa3\xe5\x90\x8d\x01", 9);
	ck_assert_int_eq(mpk_get_str(&o, "名", s, sizeof(s)), -1);	/* not a str */
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_json_depth)
{
	msgpack_zone	 z;
	msgpack_object	 o;
	char		 err[256], *txt;
	int		 levels, i;

	/* LB_MSGPACK_DEPTH arrays around a value nest as deep as may be packed. */
	msgpack_zone_init(&z, 4096);
	for (levels = LB_MSGPACK_DEPTH; levels <= LB_MSGPACK_DEPTH + 1; levels++) {
		ck_assert_ptr_nonnull(txt = malloc(2 * (size_t)levels + 2));
		for (i = 0; i < levels; i++) {
			txt[i] = '[';
			txt[levels + 1 + i] = ']';
		}
		txt[levels] = '1';
		txt[2 * levels + 1] = '\0';
		ck_assert_int_eq(from_json(txt, &z, &o, err, sizeof(err)),
		    levels <= LB_MSGPACK_DEPTH ? 0 : -1);
		free(txt);
	}
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_to_json)
{
	msgpack_zone	 z;
	struct mpk_map	 m;
	msgpack_object	 a, big;
	static const uint8_t bin[] = { 0xfb, 0xff, 0xbf, 0x00 };
	char		*s;

	msgpack_zone_init(&z, 1024);
	a = mpk_array(&z, 3);
	a.via.array.ptr[0] = mpk_bool(true);
	a.via.array.ptr[2] = mpk_int(-3);
	mpk_map_init(&m, &z, 5);
	mpk_map_put(&m, "z", mpk_uint(1));
	mpk_map_put(&m, "b", mpk_bin(bin, sizeof(bin)));
	mpk_map_put(&m, "a", a);
	mpk_map_put(&m, "s", mpk_str("名"));
	mpk_map_put(&m, "e", mpk_bin(bin, 0));
	ck_assert_ptr_nonnull(s = mpk_to_json(&m.mm_obj, false));
	/* bin -> base64url, no padding ("-_-_AA", not "+/+/AA=="). */
	ck_assert_str_eq(s, "{\"a\":[true,null,-3],\"b\":\"-_-_AA\",\"e\":\"\",\"s\":\"名\",\"z\":1}");
	free(s);

	/* JSON cannot carry integers above INT64_MAX. */
	big = mpk_uint((uint64_t)INT64_MAX + 1);
	ck_assert_ptr_null(mpk_to_json(&big, false));
	big = mpk_uint(INT64_MAX);
	ck_assert_ptr_nonnull(s = mpk_to_json(&big, false));
	ck_assert_str_eq(s, "9223372036854775807");
	free(s);
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_json_round_trip)
{
	static const char txt[] =
	    "{\"a\":[1,-2,\"x\"],\"k\":\"\xe5\x90\x8d\",\"n\":null,\"o\":{\"p\":false,"
	    "\"q\":9223372036854775807}}";
	msgpack_zone	 z;
	msgpack_object	 o, back;
	struct mpk_map	 m;
	msgpack_sbuffer	 sb;
	char		 err[256], *s;
	const uint8_t	*p;
	size_t		 n;
	static const uint8_t raw[] = { 0, 1, 2, 0xfe, 0xff };

	msgpack_zone_init(&z, 1024);
	ck_assert_int_eq(from_json(txt, &z, &o, err, sizeof(err)), 0);
	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(mpk_pack(&o, &sb, false), 0);
	ck_assert(mpk_is_canonical(sb.data, sb.size));
	ck_assert_int_eq(mpk_unpack(sb.data, sb.size, &z, &back), 0);
	ck_assert_ptr_nonnull(s = mpk_to_json(&back, false));
	ck_assert_str_eq(s, txt);
	free(s);
	msgpack_sbuffer_destroy(&sb);

	/* bin -> JSON -> str, which mpk_obj_bytes turns back into the bytes. */
	mpk_map_init(&m, &z, 1);
	mpk_map_put(&m, "j", mpk_bin(raw, sizeof(raw)));
	ck_assert_ptr_nonnull(s = mpk_to_json(&m.mm_obj, false));
	ck_assert_str_eq(s, "{\"j\":\"AAEC_v8\"}");
	ck_assert_int_eq(from_json(s, &z, &o, err, sizeof(err)), 0);
	free(s);
	ck_assert_int_eq(mpk_get(&o, "j")->type, MSGPACK_OBJECT_STR);
	ck_assert_int_eq(mpk_get_bytes(&o, "j", &z, &p, &n), 0);
	ck_bytes_eq(p, n, raw, sizeof(raw));
	msgpack_zone_destroy(&z);
}
END_TEST

/*
 * base64url and hex
 */

/* RFC 4648 §10, which holds no '+' or '/'; unpadded as docs/contract.md §3 wants. */
static const struct {
	const char	*raw;
	const char	*b64;
} rfc4648[] = {
	{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg" },
	{ "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
};

START_TEST(test_b64url_vectors)
{
	char	*s;
	uint8_t	*d;
	size_t	 n;

	ck_assert_ptr_nonnull(s = b64url_encode(rfc4648[_i].raw, strlen(rfc4648[_i].raw)));
	ck_assert_str_eq(s, rfc4648[_i].b64);
	free(s);
	ck_assert_int_eq(b64url_decode(rfc4648[_i].b64, strlen(rfc4648[_i].b64), &d, &n), 0);
	ck_bytes_eq(d, n, rfc4648[_i].raw, strlen(rfc4648[_i].raw));
	free(d);
}
END_TEST

START_TEST(test_b64url_alphabet)
{
	static const uint8_t hi[] = { 0xfb, 0xff, 0xbf };	/* 62 63 62 63 */
	static const uint8_t all[] = { 0x00, 0x10, 0x83, 0x10, 0x51, 0x87, 0x20, 0x92, 0x8b,
	    0x30, 0xd3, 0x8f, 0x41, 0x14, 0x93, 0x51, 0x55, 0x97, 0x61, 0x96, 0x9b, 0x71,
	    0xd7, 0x9f, 0x82, 0x18, 0xa3, 0x92, 0x59, 0xa7, 0xa2, 0x9a, 0xab, 0xb2, 0xdb,
	    0xaf, 0xc3, 0x1c, 0xb3, 0xd3, 0x5d, 0xb7, 0xe3, 0x9e, 0xbb, 0xf3, 0xdf, 0xbf };
	char	*s;
	uint8_t	*d, buf[300];
	size_t	 n, len, i;

	ck_assert_ptr_nonnull(s = b64url_encode(hi, sizeof(hi)));
	ck_assert_str_eq(s, "-_-_");
	free(s);
	ck_assert_ptr_nonnull(s = b64url_encode(all, sizeof(all)));
	ck_assert_str_eq(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
	ck_assert_int_eq(b64url_decode(s, strlen(s), &d, &n), 0);
	ck_bytes_eq(d, n, all, sizeof(all));
	free(d);
	free(s);

	/* Every length and byte value round-trips. */
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	for (len = 0; len <= sizeof(buf); len++) {
		ck_assert_ptr_nonnull(s = b64url_encode(buf, len));
		ck_assert_uint_eq(strlen(s), (len * 4 + 2) / 3);
		ck_assert_int_eq(b64url_decode(s, strlen(s), &d, &n), 0);
		ck_bytes_eq(d, n, buf, len);
		free(d);
		free(s);
	}
}
END_TEST

START_TEST(test_b64url_refusals)
{
	static const char *const bad[] = {
		"+/+/",		/* standard alphabet */
		"Zg==",		/* padding */
		"Zm8=",
		"Z",		/* one character cannot hold a byte */
		"Zm9vY",
		"Zh",		/* "f" with a non-zero trailing bit */
		"Zm9",		/* "fo" with non-zero trailing bits */
		"Zm9v Yg",
		"Zm9v\nYg",
		"Zm\0v",
		"Zm9vYg.",
	};
	uint8_t	*d = NULL;
	size_t	 i, n;

	for (i = 0; i < NELEM(bad); i++) {
		size_t	len = strlen(bad[i]);

		if (i == 9)
			len = 4;
		ck_assert_msg(b64url_decode(bad[i], len, &d, &n) == -1, "accepted %zu", i);
	}
}
END_TEST

START_TEST(test_hex)
{
	static const uint8_t raw[] = { 0x00, 0x01, 0xab, 0xcd, 0xef, 0xff };
	char	s[2 * sizeof(raw) + 1];
	uint8_t	out[sizeof(raw)];

	memset(s, 'Z', sizeof(s));
	hex_encode(raw, sizeof(raw), s);
	ck_assert_str_eq(s, "0001abcdefff");
	hex_encode(raw, 0, s);
	ck_assert_str_eq(s, "");
	ck_assert_int_eq(hex_decode("0001abcdefff", 12, out, sizeof(out)), 0);
	ck_bytes_eq(out, sizeof(out), raw, sizeof(raw));
	ck_assert_int_eq(hex_decode("0001ABCDEFFF", 12, out, sizeof(out)), 0);
	ck_bytes_eq(out, sizeof(out), raw, sizeof(raw));
	ck_assert_int_eq(hex_decode("0001abcdeff", 11, out, sizeof(out)), -1);
	ck_assert_int_eq(hex_decode("0001abcdefff00", 14, out, sizeof(out)), -1);
	ck_assert_int_eq(hex_decode("0001abcdefgf", 12, out, sizeof(out)), -1);
	ck_assert_int_eq(hex_decode("0001abcd ef f", 12, out, sizeof(out)), -1);
	ck_assert_int_eq(hex_decode("", 0, out, 0), 0);
}
END_TEST

/*
 * Accessors
 */

START_TEST(test_accessors)
{
	msgpack_zone	 z;
	struct mpk_map	 m;
	msgpack_object	 notmap;
	char		 buf[6];
	uint64_t	 u;
	int64_t		 i;

	msgpack_zone_init(&z, 1024);
	mpk_map_init(&m, &z, 10);
	mpk_map_put(&m, "s", mpk_str("hello"));
	mpk_map_put(&m, "long", mpk_str("hello!"));
	mpk_map_put(&m, "nul", mpk_strn("a\0b", 3));
	mpk_map_put(&m, "u", mpk_uint(42));
	mpk_map_put(&m, "big", mpk_uint((uint64_t)INT64_MAX + 1));
	mpk_map_put(&m, "max", mpk_uint(INT64_MAX));
	mpk_map_put(&m, "neg", mpk_int(-7));
	mpk_map_put(&m, "bin", mpk_bin("hello", 5));

	ck_assert_ptr_null(mpk_get(&m.mm_obj, "absent"));
	ck_assert_ptr_null(mpk_get(&m.mm_obj, "ss"));
	ck_assert_ptr_null(mpk_get(&m.mm_obj, ""));
	ck_assert_ptr_null(mpk_get(NULL, "s"));
	notmap = mpk_str("s");
	ck_assert_ptr_null(mpk_get(&notmap, "s"));
	ck_assert(mpk_str_eq(mpk_get(&m.mm_obj, "s"), "hello"));
	ck_assert(!mpk_str_eq(mpk_get(&m.mm_obj, "s"), "hell"));
	ck_assert(!mpk_str_eq(mpk_get(&m.mm_obj, "bin"), "hello"));
	ck_assert(!mpk_str_eq(NULL, "hello"));

	/* A 5-byte string fits a 6-byte buffer; a 6-byte one does not. */
	ck_assert_int_eq(mpk_get_str(&m.mm_obj, "s", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "hello");
	ck_assert_int_eq(mpk_get_str(&m.mm_obj, "long", buf, sizeof(buf)), -1);
	ck_assert_int_eq(mpk_get_str(&m.mm_obj, "nul", buf, sizeof(buf)), -1);
	ck_assert_int_eq(mpk_get_str(&m.mm_obj, "bin", buf, sizeof(buf)), -1);
	ck_assert_int_eq(mpk_get_str(&m.mm_obj, "u", buf, sizeof(buf)), -1);
	ck_assert_int_eq(mpk_get_str(&m.mm_obj, "absent", buf, sizeof(buf)), -1);

	ck_assert_int_eq(mpk_get_u64(&m.mm_obj, "u", &u), 0);
	ck_assert_uint_eq(u, 42);
	ck_assert_int_eq(mpk_get_u64(&m.mm_obj, "big", &u), 0);
	ck_assert(u == (uint64_t)INT64_MAX + 1);
	ck_assert_int_eq(mpk_get_u64(&m.mm_obj, "neg", &u), -1);
	ck_assert_int_eq(mpk_get_u64(&m.mm_obj, "s", &u), -1);
	ck_assert_int_eq(mpk_get_u64(&m.mm_obj, "absent", &u), -1);

	ck_assert_int_eq(mpk_get_i64(&m.mm_obj, "neg", &i), 0);
	ck_assert(i == -7);
	ck_assert_int_eq(mpk_get_i64(&m.mm_obj, "max", &i), 0);
	ck_assert(i == INT64_MAX);
	ck_assert_int_eq(mpk_get_i64(&m.mm_obj, "big", &i), -1);
	ck_assert_int_eq(mpk_get_i64(&m.mm_obj, "s", &i), -1);
	ck_assert_int_eq(mpk_get_i64(&m.mm_obj, "absent", &i), -1);
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_obj_bytes)
{
	msgpack_zone	 z;
	struct mpk_map	 m;
	const uint8_t	*p;
	size_t		 n;
	static const uint8_t raw[] = { 0xfb, 0xff, 0xbf, 0x00 };

	msgpack_zone_init(&z, 1024);
	mpk_map_init(&m, &z, 6);
	mpk_map_put(&m, "bin", mpk_bin(raw, sizeof(raw)));
	mpk_map_put(&m, "b64", mpk_str("-_-_AA"));
	mpk_map_put(&m, "std", mpk_str("+/+/AA"));
	mpk_map_put(&m, "pad", mpk_str("-_-_AA=="));
	mpk_map_put(&m, "int", mpk_uint(1));
	mpk_map_put(&m, "empty", mpk_str(""));

	ck_assert_int_eq(mpk_get_bytes(&m.mm_obj, "bin", &z, &p, &n), 0);
	ck_assert_ptr_eq(p, raw);	/* a bin is borrowed, not copied */
	ck_assert_uint_eq(n, sizeof(raw));
	p = NULL;
	ck_assert_int_eq(mpk_get_bytes(&m.mm_obj, "b64", &z, &p, &n), 0);
	ck_bytes_eq(p, n, raw, sizeof(raw));
	ck_assert_int_eq(mpk_get_bytes(&m.mm_obj, "empty", &z, &p, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(mpk_get_bytes(&m.mm_obj, "std", &z, &p, &n), -1);
	ck_assert_int_eq(mpk_get_bytes(&m.mm_obj, "pad", &z, &p, &n), -1);
	ck_assert_int_eq(mpk_get_bytes(&m.mm_obj, "int", &z, &p, &n), -1);
	ck_assert_int_eq(mpk_get_bytes(&m.mm_obj, "absent", &z, &p, &n), -1);
	ck_assert_int_eq(mpk_obj_bytes(NULL, &z, &p, &n), -1);
	msgpack_zone_destroy(&z);
}
END_TEST

static Suite *
mpk_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("mpk");

	tc = tcase_create("pack");
	tcase_add_test(tc, test_pack_sorts_keys);
	tcase_add_test(tc, test_pack_refuses_duplicates);
	tcase_add_test(tc, test_pack_refuses_nonstring_keys);
	tcase_add_test(tc, test_pack_refuses_floats);
	tcase_add_loop_test(tc, test_pack_int_boundaries, 0, NELEM(ints));
	tcase_add_loop_test(tc, test_pack_str_bin_boundaries, 0, NELEM(str_lens));
	tcase_add_test(tc, test_pack_container_boundaries);
	tcase_add_test(tc, test_pack_scalars_and_append);
	tcase_add_test(tc, test_pack_copies);
	tcase_add_test(tc, test_pack_depth);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);

	tc = tcase_create("canonical");
	tcase_add_loop_test(tc, test_noncanonical_refused, 0, NELEM(noncanon));
	tcase_add_test(tc, test_canonical_accepted);
	suite_add_tcase(s, tc);

	tc = tcase_create("unpack");
	tcase_add_test(tc, test_unpack_truncated);
	tcase_add_test(tc, test_unpack_count_lies);
	tcase_add_test(tc, test_unpack_depth);
	tcase_add_test(tc, test_unpack_reserved_and_trailing);
	tcase_add_test(tc, test_unpack_borrows_zone);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_add_test(tc, test_json_integers);
	tcase_add_test(tc, test_json_refusals);
	tcase_add_test(tc, test_json_nested_and_unicode);
	tcase_add_test(tc, test_json_depth);
	tcase_add_test(tc, test_to_json);
	tcase_add_test(tc, test_json_round_trip);
	suite_add_tcase(s, tc);

	tc = tcase_create("encodings");
	tcase_add_loop_test(tc, test_b64url_vectors, 0, NELEM(rfc4648));
	tcase_add_test(tc, test_b64url_alphabet);
	tcase_add_test(tc, test_b64url_refusals);
	tcase_add_test(tc, test_hex);
	suite_add_tcase(s, tc);

	tc = tcase_create("access");
	tcase_add_test(tc, test_accessors);
	tcase_add_test(tc, test_obj_bytes);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	return check_run(mpk_suite());
}
