/*
 * mpk.c - canonical msgpack (docs/contract.md §3) on top of msgpack-c objects, and the
 * JSON mapping of the same structures.
 *
 * Objects are built in a msgpack_zone in any key order; mpk_pack sorts map
 * keys when it encodes, so every encoder in lianban produces the one
 * canonical byte string for a value and signatures and hashes agree with
 * other implementations.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lianban.h"

void *
mpk_zalloc(msgpack_zone *z, size_t n)
{
	void	*p;

	if ((p = msgpack_zone_malloc(z, n == 0 ? 1 : n)) == NULL) {
		log_warnx("out of memory (%zu bytes)", n);
		abort();
	}
	return p;
}

/*
 * The constructors of scalar objects, one compound literal each: the
 * members it does not name are zero, and readers look only at the member
 * of via that the type selects.
 */
msgpack_object
mpk_nil(void)
{
	return (msgpack_object){ .type = MSGPACK_OBJECT_NIL };
}

msgpack_object
mpk_bool(bool v)
{
	return (msgpack_object){ .type = MSGPACK_OBJECT_BOOLEAN, .via.boolean = v };
}

msgpack_object
mpk_uint(uint64_t v)
{
	return (msgpack_object){ .type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = v };
}

msgpack_object
mpk_int(int64_t v)
{
	if (v >= 0)
		return mpk_uint((uint64_t)v);
	return (msgpack_object){ .type = MSGPACK_OBJECT_NEGATIVE_INTEGER, .via.i64 = v };
}

msgpack_object
mpk_strn(const char *s, size_t n)
{
	return (msgpack_object){ .type = MSGPACK_OBJECT_STR,
	    .via.str = { .size = (uint32_t)n, .ptr = s } };
}

msgpack_object
mpk_str(const char *s)
{
	return mpk_strn(s, strlen(s));
}

msgpack_object
mpk_bin(const void *p, size_t n)
{
	return (msgpack_object){ .type = MSGPACK_OBJECT_BIN,
	    .via.bin = { .size = (uint32_t)n, .ptr = p } };
}

msgpack_object
mpk_strdup(msgpack_zone *z, const char *s, size_t n)
{
	char	*p = mpk_zalloc(z, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return mpk_strn(p, n);
}

msgpack_object
mpk_bindup(msgpack_zone *z, const void *s, size_t n)
{
	void	*p = mpk_zalloc(z, n);

	if (n > 0)
		memcpy(p, s, n);
	return mpk_bin(p, n);
}

msgpack_object
mpk_array(msgpack_zone *z, uint32_t n)
{
	msgpack_object	o = mpk_nil();
	uint32_t	i;

	o.type = MSGPACK_OBJECT_ARRAY;
	o.via.array.size = n;
	o.via.array.ptr = mpk_zalloc(z, sizeof(msgpack_object) * (n ? n : 1));
	for (i = 0; i < n; i++)
		o.via.array.ptr[i] = mpk_nil();
	return o;
}

void
mpk_map_init(struct mpk_map *m, msgpack_zone *z, uint32_t cap)
{
	m->mm_obj = mpk_nil();
	m->mm_obj.type = MSGPACK_OBJECT_MAP;
	m->mm_obj.via.map.size = 0;
	m->mm_obj.via.map.ptr = mpk_zalloc(z, sizeof(msgpack_object_kv) * (cap ? cap : 1));
	m->mm_cap = cap;
}

void
mpk_map_put(struct mpk_map *m, const char *key, msgpack_object v)
{
	msgpack_object_kv	*kv;

	if (m->mm_obj.via.map.size >= m->mm_cap) {
		log_warnx("mpk_map_put: map of %u entries is full", m->mm_cap);
		abort();
	}
	kv = &m->mm_obj.via.map.ptr[m->mm_obj.via.map.size++];
	kv->key = mpk_str(key);
	kv->val = v;
}

/* Byte order of two str keys; a prefix sorts first. */
static int
mpk_keycmp(const msgpack_object *a, const msgpack_object *b)
{
	uint32_t	n = a->via.str.size < b->via.str.size ? a->via.str.size : b->via.str.size;
	int		c;

	if (n > 0 && (c = memcmp(a->via.str.ptr, b->via.str.ptr, n)) != 0)
		return c;
	return (a->via.str.size > b->via.str.size) - (a->via.str.size < b->via.str.size);
}

static int
mpk_kvcmp(const void *a, const void *b)
{
	const msgpack_object_kv *const *x = a, *const *y = b;

	return mpk_keycmp(&(*x)->key, &(*y)->key);
}

static int
mpk_pack_obj(msgpack_packer *pk, const msgpack_object *o, bool allow_float, int depth)
{
	const msgpack_object_kv	**kvs = NULL;
	uint32_t		  i, n;
	int			  ret = -1;

	if (depth > LB_MSGPACK_DEPTH)
		return -1;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return msgpack_pack_nil(pk);
	case MSGPACK_OBJECT_BOOLEAN:
		return o->via.boolean ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		/* msgpack-c picks the shortest form for every integer. */
		return msgpack_pack_uint64(pk, o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return msgpack_pack_int64(pk, o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (!allow_float)
			return -1;
		return msgpack_pack_double(pk, o->via.f64);
	case MSGPACK_OBJECT_STR:
		if (msgpack_pack_str(pk, o->via.str.size) != 0)
			return -1;
		return msgpack_pack_str_body(pk, o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN:
		if (msgpack_pack_bin(pk, o->via.bin.size) != 0)
			return -1;
		return msgpack_pack_bin_body(pk, o->via.bin.ptr, o->via.bin.size);
	case MSGPACK_OBJECT_ARRAY:
		if (msgpack_pack_array(pk, o->via.array.size) != 0)
			return -1;
		for (i = 0; i < o->via.array.size; i++)
			if (mpk_pack_obj(pk, &o->via.array.ptr[i], allow_float, depth + 1) != 0)
				return -1;
		return 0;
	case MSGPACK_OBJECT_MAP:
		n = o->via.map.size;
		if ((kvs = calloc(n ? n : 1, sizeof(*kvs))) == NULL)
			return -1;
		for (i = 0; i < n; i++) {
			kvs[i] = &o->via.map.ptr[i];
			if (kvs[i]->key.type != MSGPACK_OBJECT_STR)
				goto done;
		}
		qsort(kvs, n, sizeof(*kvs), mpk_kvcmp);
		for (i = 1; i < n; i++)
			if (mpk_keycmp(&kvs[i - 1]->key, &kvs[i]->key) == 0)
				goto done;
		if (msgpack_pack_map(pk, n) != 0)
			goto done;
		for (i = 0; i < n; i++) {
			if (mpk_pack_obj(pk, &kvs[i]->key, allow_float, depth + 1) != 0 ||
			    mpk_pack_obj(pk, &kvs[i]->val, allow_float, depth + 1) != 0)
				goto done;
		}
		ret = 0;
done:
		free(kvs);
		return ret;
	default:
		/* ext types have no place in lianban's formats */
		return -1;
	}
}

int
mpk_pack(const msgpack_object *o, msgpack_sbuffer *out, bool allow_float)
{
	msgpack_packer	pk;
	size_t		mark = out->size;

	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	if (mpk_pack_obj(&pk, o, allow_float, 0) != 0) {
		out->size = mark;	/* leave out as it was */
		return -1;
	}
	return 0;
}

int
mpk_pack_alloc(const msgpack_object *o, uint8_t **buf, size_t *len)
{
	msgpack_sbuffer	sb;

	msgpack_sbuffer_init(&sb);
	if (mpk_pack(o, &sb, false) != 0) {
		msgpack_sbuffer_destroy(&sb);
		return -1;
	}
	*len = sb.size;
	*buf = (uint8_t *)msgpack_sbuffer_release(&sb);
	if (*buf == NULL && (*buf = malloc(1)) == NULL)
		return -1;
	return 0;
}

static uint64_t
mpk_be(const uint8_t *p, size_t k)
{
	uint64_t	n = 0;
	size_t		i;

	for (i = 0; i < k; i++)
		n = (n << 8) | p[i];
	return n;
}

/*
 * Walks one msgpack object in buf without allocating, checking that every
 * length fits in the input and every container count could be backed by
 * the bytes that remain (each element takes at least one byte), and with
 * text set that every str is valid UTF-8.  Returns the offset just past the
 * object, or 0 on error.
 */
static size_t
mpk_scan(const uint8_t *p, size_t len, size_t off, int depth, bool text)
{
	uint64_t	n = 0, elems = 0;
	size_t		hdr;
	uint8_t		c;
	bool		is_str = false;

	if (depth > LB_MSGPACK_DEPTH || off >= len)
		return 0;
	c = p[off];
#define NEED(k)	do { if (len - off < (k)) return 0; } while (0)
#define BE(k)	do { NEED(1 + (k)); n = mpk_be(p + off + 1, (k)); hdr = 1 + (k); } while (0)
	if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
		return off + 1;
	if ((c & 0xe0) == 0xa0) {		/* fixstr */
		n = c & 0x1f;
		hdr = 1;
		is_str = true;
		goto payload;
	}
	if ((c & 0xf0) == 0x90) {		/* fixarray */
		elems = c & 0x0f;
		hdr = 1;
		goto container;
	}
	if ((c & 0xf0) == 0x80) {		/* fixmap */
		elems = (uint64_t)(c & 0x0f) * 2;
		hdr = 1;
		goto container;
	}
	switch (c) {
	case 0xcc: case 0xd0: NEED(2); return off + 2;
	case 0xcd: case 0xd1: NEED(3); return off + 3;
	case 0xca: case 0xce: case 0xd2: NEED(5); return off + 5;
	case 0xcb: case 0xcf: case 0xd3: NEED(9); return off + 9;
	case 0xd9: BE(1); is_str = true; goto payload;
	case 0xda: BE(2); is_str = true; goto payload;
	case 0xdb: BE(4); is_str = true; goto payload;
	case 0xc4: BE(1); goto payload;
	case 0xc5: BE(2); goto payload;
	case 0xc6: BE(4); goto payload;
	case 0xdc: BE(2); elems = n; goto container;
	case 0xdd: BE(4); elems = n; goto container;
	case 0xde: BE(2); elems = n * 2; goto container;
	case 0xdf: BE(4); elems = n * 2; goto container;
	case 0xd4: NEED(3); return off + 3;	/* fixext: scanned, refused later */
	case 0xd5: NEED(4); return off + 4;
	case 0xd6: NEED(6); return off + 6;
	case 0xd7: NEED(10); return off + 10;
	case 0xd8: NEED(18); return off + 18;
	case 0xc7: BE(1); n += 1; goto payload;
	case 0xc8: BE(2); n += 1; goto payload;
	case 0xc9: BE(4); n += 1; goto payload;
	default:
		return 0;			/* 0xc1 is never used */
	}
#undef BE
#undef NEED
payload:
	if (len - off < hdr || len - off - hdr < n)
		return 0;
	if (is_str && text && !utf8_valid(p + off + hdr, (size_t)n))
		return 0;
	return off + hdr + (size_t)n;
container:
	off += hdr;
	if (elems > len - off)
		return 0;
	while (elems-- > 0)
		if ((off = mpk_scan(p, len, off, depth + 1, text)) == 0)
			return 0;
	return off;
}

/*
 * msgpack-c leaves the pointer of some empty str and bin values NULL, which
 * jansson refuses (json_stringn) and the C library may not be handed even
 * with a length of 0 (memcpy, memchr); every empty value points at "" here
 * instead.  The depth was bounded by mpk_scan.
 */
static void
mpk_empty_fix(msgpack_object *o)
{
	uint32_t	i;

	switch (o->type) {
	case MSGPACK_OBJECT_STR:
		if (o->via.str.size == 0)
			o->via.str.ptr = "";
		break;
	case MSGPACK_OBJECT_BIN:
		if (o->via.bin.size == 0)
			o->via.bin.ptr = "";
		break;
	case MSGPACK_OBJECT_ARRAY:
		for (i = 0; i < o->via.array.size; i++)
			mpk_empty_fix(&o->via.array.ptr[i]);
		break;
	case MSGPACK_OBJECT_MAP:
		for (i = 0; i < o->via.map.size; i++) {
			mpk_empty_fix(&o->via.map.ptr[i].key);
			mpk_empty_fix(&o->via.map.ptr[i].val);
		}
		break;
	default:
		break;
	}
}

static int
mpk_unpack_with(const void *buf, size_t len, msgpack_zone *z, msgpack_object *out, bool text)
{
	char	*copy;
	size_t	 off = 0;

	if (len == 0 || mpk_scan(buf, len, 0, 0, text) != len)
		return -1;
	/*
	 * msgpack-c's objects point into the buffer they were decoded from;
	 * decoding a copy in the zone ties every lifetime to the zone alone.
	 */
	copy = mpk_zalloc(z, len);
	memcpy(copy, buf, len);
	if (msgpack_unpack(copy, len, &off, z, out) != MSGPACK_UNPACK_SUCCESS || off != len)
		return -1;
	mpk_empty_fix(out);
	return 0;
}

/*
 * Text is checked where it is decoded, once for every caller: a str that is
 * not UTF-8 would otherwise travel into journal records and answers that
 * JSON cannot show (jansson refuses it), as JSON bodies never can.
 */
int
mpk_unpack(const void *buf, size_t len, msgpack_zone *z, msgpack_object *out)
{
	return mpk_unpack_with(buf, len, z, out, true);
}

int
mpk_unpack_stored(const void *buf, size_t len, msgpack_zone *z, msgpack_object *out)
{
	return mpk_unpack_with(buf, len, z, out, false);
}

bool
mpk_is_canonical(const void *buf, size_t len)
{
	msgpack_zone	 z;
	msgpack_sbuffer	 sb;
	msgpack_object	 o;
	bool		 ok = false;

	msgpack_zone_init(&z, 2048);
	msgpack_sbuffer_init(&sb);
	if (mpk_unpack_stored(buf, len, &z, &o) == 0 && mpk_pack(&o, &sb, false) == 0)
		ok = sb.size == len && memcmp(sb.data, buf, len) == 0;
	msgpack_sbuffer_destroy(&sb);
	msgpack_zone_destroy(&z);
	return ok;
}

static json_t *
mpk_to_jansson(const msgpack_object *o, int depth)
{
	json_t		*j = NULL, *v;
	char		*s;
	uint32_t	 i;

	if (depth > LB_MSGPACK_DEPTH)
		return NULL;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			return NULL;
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR:
		/* json_stringn refuses invalid UTF-8. */
		return json_stringn(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN:
		if ((s = b64url_encode(o->via.bin.ptr, o->via.bin.size)) == NULL)
			return NULL;
		j = json_string(s);
		free(s);
		return j;
	case MSGPACK_OBJECT_ARRAY:
		if ((j = json_array()) == NULL)
			return NULL;
		for (i = 0; i < o->via.array.size; i++) {
			if ((v = mpk_to_jansson(&o->via.array.ptr[i], depth + 1)) == NULL ||
			    json_array_append_new(j, v) != 0)
				goto fail;
		}
		return j;
	case MSGPACK_OBJECT_MAP:
		if ((j = json_object()) == NULL)
			return NULL;
		for (i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;

			if (k->type != MSGPACK_OBJECT_STR)
				goto fail;
			if ((v = mpk_to_jansson(&o->via.map.ptr[i].val, depth + 1)) == NULL ||
			    json_object_setn_new(j, k->via.str.ptr, k->via.str.size, v) != 0)
				goto fail;
		}
		return j;
	default:
		return NULL;
	}
fail:
	json_decref(j);
	return NULL;
}

bool
mpk_json_able(const msgpack_object *o)
{
	json_t	*j;

	/* The mapping itself is the test, so the two can never disagree. */
	if ((j = mpk_to_jansson(o, 0)) == NULL)
		return false;
	json_decref(j);
	return true;
}

char *
mpk_to_json(const msgpack_object *o, bool pretty)
{
	json_t	*j;
	char	*s;

	if ((j = mpk_to_jansson(o, 0)) == NULL)
		return NULL;
	s = json_dumps(j, JSON_SORT_KEYS | JSON_ENCODE_ANY |
	    (pretty ? JSON_INDENT(2) : JSON_COMPACT));
	json_decref(j);
	return s;
}

const msgpack_object *
mpk_get(const msgpack_object *map, const char *key)
{
	size_t		klen = strlen(key);
	uint32_t	i;

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;

		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
		    memcmp(k->via.str.ptr, key, klen) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

bool
mpk_str_eq(const msgpack_object *o, const char *s)
{
	size_t	n = strlen(s);

	return o != NULL && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	    memcmp(o->via.str.ptr, s, n) == 0;
}

int
mpk_obj_str(const msgpack_object *o, char *buf, size_t bufsz)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= bufsz ||
	    memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
		return -1;
	memcpy(buf, o->via.str.ptr, o->via.str.size);
	buf[o->via.str.size] = '\0';
	return 0;
}

int
mpk_get_str(const msgpack_object *map, const char *key, char *buf, size_t bufsz)
{
	return mpk_obj_str(mpk_get(map, key), buf, bufsz);
}

int
mpk_obj_u64(const msgpack_object *o, uint64_t *v)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	*v = o->via.u64;
	return 0;
}

int
mpk_get_u64(const msgpack_object *map, const char *key, uint64_t *v)
{
	return mpk_obj_u64(mpk_get(map, key), v);
}

int
mpk_obj_i64(const msgpack_object *o, int64_t *v)
{
	if (o == NULL)
		return -1;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
		*v = (int64_t)o->via.u64;
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return 0;
	}
	return -1;
}

int
mpk_get_i64(const msgpack_object *map, const char *key, int64_t *v)
{
	return mpk_obj_i64(mpk_get(map, key), v);
}

int
mpk_obj_bytes(const msgpack_object *o, msgpack_zone *z, const uint8_t **p, size_t *n)
{
	uint8_t	*dec;
	size_t	 len;
	void	*copy;

	if (o == NULL)
		return -1;
	if (o->type == MSGPACK_OBJECT_BIN) {
		*p = (const uint8_t *)o->via.bin.ptr;
		*n = o->via.bin.size;
		return 0;
	}
	if (o->type != MSGPACK_OBJECT_STR ||
	    b64url_decode(o->via.str.ptr, o->via.str.size, &dec, &len) != 0)
		return -1;
	copy = mpk_zalloc(z, len);
	if (len > 0)
		memcpy(copy, dec, len);
	free(dec);
	*p = copy;
	*n = len;
	return 0;
}

int
mpk_get_bytes(const msgpack_object *map, const char *key, msgpack_zone *z,
    const uint8_t **p, size_t *n)
{
	return mpk_obj_bytes(mpk_get(map, key), z, p, n);
}
