/*
 * mpk_json.c - JSON text straight to and from msgpack objects, in one pass.
 *
 * A request body used to be parsed by jansson into a tree, which was then
 * walked to build the msgpack objects the handlers read; an answer was
 * built as msgpack objects, turned into a jansson tree, and that tree
 * dumped into a string that was then copied into the output buffer.  Both
 * trees cost an allocation per value and a second walk on the event loop.
 * Here the parser builds the objects in the request's zone as it reads, and
 * the encoder writes the text of the objects into one growing buffer that
 * the HTTP front hands to libevent without a copy.
 *
 * Both follow jansson exactly, because the contract's answers and every
 * stored JSON file were made by it: the parser accepts what json_loadb with
 * JSON_REJECT_DUPLICATES accepts and mpk_from_json's mapping kept (no
 * reals, nesting within LB_MSGPACK_DEPTH), and the encoder writes the bytes
 * json_dumps writes with JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY
 * (tests/check_json.c compares both with jansson).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lianban.h"

/* Encoding. */

/* Makes room for n more bytes. */
static int
mpk_jbuf_room(struct mpk_jbuf *jb, size_t n)
{
	size_t	cap;
	char	*d;

	if (n <= jb->jb_cap - jb->jb_len)
		return 0;
	cap = jb->jb_cap == 0 ? 1024 : jb->jb_cap;
	while (cap - jb->jb_len < n) {
		if (cap > SIZE_MAX / 2)
			return -1;
		cap *= 2;
	}
	if ((d = realloc(jb->jb_data, cap)) == NULL)
		return -1;
	jb->jb_data = d;
	jb->jb_cap = cap;
	return 0;
}

int
mpk_jbuf_put(struct mpk_jbuf *jb, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (mpk_jbuf_room(jb, n) != 0)
		return -1;
	memcpy(jb->jb_data + jb->jb_len, p, n);
	jb->jb_len += n;
	return 0;
}

/*
 * A string as jansson dumps it: '"', '\\' and control characters escaped
 * (the usual short forms, else \u00XX in capitals), everything else as it
 * is; -1 for text that is not UTF-8 (jansson refuses it), where NUL counts
 * as text as it does there.
 */
static int
mpk_json_str(struct mpk_jbuf *jb, const char *s, size_t n)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, run, k;
	char			 esc[6];
	const char		*e;
	size_t			 elen;

	if (mpk_jbuf_put(jb, "\"", 1) != 0)
		return -1;
	while (i < n) {
		/* The longest run that needs no escape goes in one piece. */
		for (run = i; run < n && p[run] >= 0x20 && p[run] != '"' && p[run] != '\\';
		    run++)
			if (p[run] >= 0x80) {
				for (k = run; k < n && p[k] >= 0x80; k++)
					;
				if (!utf8_valid(p + run, k - run))
					return -1;
				run = k - 1;
			}
		if (run > i && mpk_jbuf_put(jb, p + i, run - i) != 0)
			return -1;
		if (run == n)
			break;
		elen = 2;
		switch (p[run]) {
		case '"':	e = "\\\""; break;
		case '\\':	e = "\\\\"; break;
		case '\b':	e = "\\b"; break;
		case '\f':	e = "\\f"; break;
		case '\n':	e = "\\n"; break;
		case '\r':	e = "\\r"; break;
		case '\t':	e = "\\t"; break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[p[run] >> 4];
			esc[5] = hex[p[run] & 15];
			e = esc;
			elen = 6;
			break;
		}
		if (mpk_jbuf_put(jb, e, elen) != 0)
			return -1;
		i = run + 1;
	}
	return mpk_jbuf_put(jb, "\"", 1);
}

/* A real as jansson's jsonp_dtostr writes it at its default precision (17). */
static int
mpk_json_real(struct mpk_jbuf *jb, double v)
{
	char	buf[64], *e, *end;
	size_t	len;

	if (!isfinite(v))
		return -1;
	snprintf(buf, sizeof(buf), "%.17g", v);
	len = strlen(buf);
	if (strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL) {
		memcpy(buf + len, ".0", 3);
		len += 2;
	}
	/* No '+' and no leading zeros in the exponent. */
	if ((e = strchr(buf, 'e')) != NULL) {
		e++;
		end = e + 1;
		if (*e == '-')
			e++;
		while (*end == '0')
			end++;
		if (end != e) {
			memmove(e, end, len - (size_t)(end - buf) + 1);
			len -= (size_t)(end - e);
		}
	}
	return mpk_jbuf_put(jb, buf, len);
}

/* Orders map entries by key bytes (jansson's JSON_SORT_KEYS), then by position. */
static int
mpk_json_keycmp(const void *a, const void *b)
{
	const msgpack_object_kv	*x = *(const msgpack_object_kv *const *)a;
	const msgpack_object_kv	*y = *(const msgpack_object_kv *const *)b;
	uint32_t		 xl = x->key.via.str.size, yl = y->key.via.str.size;
	int			 c;

	if ((c = memcmp(x->key.via.str.ptr, y->key.via.str.ptr, xl < yl ? xl : yl)) != 0)
		return c;
	if (xl != yl)
		return xl < yl ? -1 : 1;
	return x < y ? -1 : x > y;
}

static bool
mpk_json_samekey(const msgpack_object_kv *x, const msgpack_object_kv *y)
{
	return x->key.via.str.size == y->key.via.str.size &&
	    memcmp(x->key.via.str.ptr, y->key.via.str.ptr, x->key.via.str.size) == 0;
}

static int mpk_json_value(const msgpack_object *, struct mpk_jbuf *, int depth);

static int
mpk_json_map(const msgpack_object *o, struct mpk_jbuf *jb, int depth)
{
	const msgpack_object_kv	*small[16], **kv = small;
	uint32_t		 i, n = o->via.map.size;
	size_t			 len;
	bool			 first = true;
	int			 ret = -1;

	if (n > sizeof(small) / sizeof(small[0]) &&
	    (kv = malloc(n * sizeof(*kv))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		kv[i] = &o->via.map.ptr[i];
		if (kv[i]->key.type != MSGPACK_OBJECT_STR)
			goto done;
	}
	qsort(kv, n, sizeof(*kv), mpk_json_keycmp);
	if (mpk_jbuf_put(jb, "{", 1) != 0)
		goto done;
	for (i = 0; i < n; i++) {
		/*
		 * Of one key given twice the last value stands, as in a jansson
		 * object; the others must still be JSON, and are written only to
		 * be taken back.
		 */
		if (i + 1 < n && mpk_json_samekey(kv[i], kv[i + 1])) {
			len = jb->jb_len;
			if (mpk_json_value(&kv[i]->val, jb, depth + 1) != 0)
				goto done;
			jb->jb_len = len;
			continue;
		}
		if ((!first && mpk_jbuf_put(jb, ",", 1) != 0) ||
		    mpk_json_str(jb, kv[i]->key.via.str.ptr, kv[i]->key.via.str.size) != 0 ||
		    mpk_jbuf_put(jb, ":", 1) != 0 ||
		    mpk_json_value(&kv[i]->val, jb, depth + 1) != 0)
			goto done;
		first = false;
	}
	ret = mpk_jbuf_put(jb, "}", 1);
done:
	if (kv != small)
		free(kv);
	return ret;
}

static int
mpk_json_value(const msgpack_object *o, struct mpk_jbuf *jb, int depth)
{
	char		 num[24];
	uint32_t	 i;
	size_t		 blen;
	int		 n;

	if (depth > LB_MSGPACK_DEPTH)
		return -1;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return mpk_jbuf_put(jb, "null", 4);
	case MSGPACK_OBJECT_BOOLEAN:
		return o->via.boolean ? mpk_jbuf_put(jb, "true", 4) :
		    mpk_jbuf_put(jb, "false", 5);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			return -1;
		n = snprintf(num, sizeof(num), "%" PRIu64, o->via.u64);
		return mpk_jbuf_put(jb, num, (size_t)n);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		n = snprintf(num, sizeof(num), "%" PRId64, o->via.i64);
		return mpk_jbuf_put(jb, num, (size_t)n);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return mpk_json_real(jb, o->via.f64);
	case MSGPACK_OBJECT_STR:
		return mpk_json_str(jb, o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN:
		/* base64url is JSON-safe: written in place between the quotes. */
		blen = ((size_t)o->via.bin.size + 2) / 3 * 4 + 1;
		if (mpk_jbuf_put(jb, "\"", 1) != 0 || mpk_jbuf_room(jb, blen) != 0)
			return -1;
		jb->jb_len += b64url_encode_to(o->via.bin.ptr, o->via.bin.size,
		    jb->jb_data + jb->jb_len);
		return mpk_jbuf_put(jb, "\"", 1);
	case MSGPACK_OBJECT_ARRAY:
		if (mpk_jbuf_put(jb, "[", 1) != 0)
			return -1;
		for (i = 0; i < o->via.array.size; i++)
			if ((i > 0 && mpk_jbuf_put(jb, ",", 1) != 0) ||
			    mpk_json_value(&o->via.array.ptr[i], jb, depth + 1) != 0)
				return -1;
		return mpk_jbuf_put(jb, "]", 1);
	case MSGPACK_OBJECT_MAP:
		return mpk_json_map(o, jb, depth);
	default:
		return -1;
	}
}

int
mpk_json_append(const msgpack_object *o, struct mpk_jbuf *jb)
{
	return mpk_json_value(o, jb, 0);
}

/* Parsing. */

struct jparse {
	const unsigned char	*jp_p, *jp_start, *jp_end;
	msgpack_zone		*jp_z;
	/* Values of the open containers, the innermost last (keys and values of maps). */
	msgpack_object		*jp_stack;
	size_t			 jp_n, jp_cap;
	const char		*jp_why;
};

static int
jparse_fail(struct jparse *jp, const char *why)
{
	if (jp->jp_why == NULL)
		jp->jp_why = why;
	return -1;
}

static void
jparse_ws(struct jparse *jp)
{
	while (jp->jp_p < jp->jp_end && (*jp->jp_p == ' ' || *jp->jp_p == '\t' ||
	    *jp->jp_p == '\n' || *jp->jp_p == '\r'))
		jp->jp_p++;
}

static int
jparse_push(struct jparse *jp, const msgpack_object *o)
{
	msgpack_object	*s;
	size_t		 cap;

	if (jp->jp_n == jp->jp_cap) {
		cap = jp->jp_cap == 0 ? 64 : jp->jp_cap * 2;
		if ((s = realloc(jp->jp_stack, cap * sizeof(*s))) == NULL)
			return jparse_fail(jp, "out of memory");
		jp->jp_stack = s;
		jp->jp_cap = cap;
	}
	jp->jp_stack[jp->jp_n++] = *o;
	return 0;
}

static int
jparse_hex4(const unsigned char *p, uint32_t *v)
{
	int	i;

	*v = 0;
	for (i = 0; i < 4; i++) {
		*v <<= 4;
		if (p[i] >= '0' && p[i] <= '9')
			*v |= (uint32_t)(p[i] - '0');
		else if (p[i] >= 'a' && p[i] <= 'f')
			*v |= (uint32_t)(p[i] - 'a' + 10);
		else if (p[i] >= 'A' && p[i] <= 'F')
			*v |= (uint32_t)(p[i] - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

static size_t
jparse_utf8_put(unsigned char *d, uint32_t cp)
{
	if (cp < 0x80) {
		d[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (unsigned char)(0xc0 | (cp >> 6));
		d[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (unsigned char)(0xe0 | (cp >> 12));
		d[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		d[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	d[0] = (unsigned char)(0xf0 | (cp >> 18));
	d[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	d[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	d[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * A string after its opening quote, copied once into the zone (decoded
 * when it holds escapes).  Raw control characters, text that is not UTF-8,
 * lone surrogates and \u0000 are refused, as by jansson.
 */
static int
jparse_string(struct jparse *jp, msgpack_object *out)
{
	const unsigned char	*s = jp->jp_p, *p = s, *q;
	unsigned char		*d, *o;
	uint32_t		 cp, lo;
	bool			 escapes = false;

	while (p < jp->jp_end && *p != '"') {
		if (*p < 0x20)
			return jparse_fail(jp, "control character in a string");
		if (*p == '\\') {
			escapes = true;
			if (++p == jp->jp_end)
				break;
		} else if (*p >= 0x80) {
			for (q = p; q < jp->jp_end && *q >= 0x80; q++)
				;
			if (!utf8_valid(p, (size_t)(q - p)))
				return jparse_fail(jp, "a string is not UTF-8");
			p = q;
			continue;
		}
		p++;
	}
	if (p >= jp->jp_end)
		return jparse_fail(jp, "unterminated string");
	jp->jp_p = p + 1;
	if (!escapes) {
		*out = mpk_strdup(jp->jp_z, (const char *)s, (size_t)(p - s));
		return 0;
	}
	/* Decoded text is never longer than its escaped form. */
	d = o = mpk_zalloc(jp->jp_z, (size_t)(p - s) + 1);
	for (q = s; q < p; ) {
		if (*q != '\\') {
			*o++ = *q++;
			continue;
		}
		q++;
		switch (*q++) {
		case '"':	*o++ = '"'; continue;
		case '\\':	*o++ = '\\'; continue;
		case '/':	*o++ = '/'; continue;
		case 'b':	*o++ = '\b'; continue;
		case 'f':	*o++ = '\f'; continue;
		case 'n':	*o++ = '\n'; continue;
		case 'r':	*o++ = '\r'; continue;
		case 't':	*o++ = '\t'; continue;
		case 'u':
			break;
		default:
			return jparse_fail(jp, "invalid escape in a string");
		}
		if (p - q < 4 || jparse_hex4(q, &cp) != 0)
			return jparse_fail(jp, "invalid \\u escape in a string");
		q += 4;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (p - q < 6 || q[0] != '\\' || q[1] != 'u' || jparse_hex4(q + 2, &lo) != 0 ||
			    lo < 0xdc00 || lo > 0xdfff)
				return jparse_fail(jp, "invalid Unicode surrogate in a string");
			q += 6;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		} else if (cp >= 0xdc00 && cp <= 0xdfff)
			return jparse_fail(jp, "invalid Unicode surrogate in a string");
		else if (cp == 0)
			return jparse_fail(jp, "\\u0000 is not allowed in a string");
		o += jparse_utf8_put(o, cp);
	}
	*o = '\0';
	*out = mpk_strn((const char *)d, (size_t)(o - d));
	return 0;
}

/* An integer; a number with a fraction or an exponent is refused. */
static int
jparse_number(struct jparse *jp, msgpack_object *out)
{
	const unsigned char	*p = jp->jp_p;
	bool			 neg = false;
	uint64_t		 v = 0, lim;

	if (*p == '-') {
		neg = true;
		p++;
	}
	if (p == jp->jp_end || *p < '0' || *p > '9')
		return jparse_fail(jp, "invalid number");
	if (*p == '0' && p + 1 < jp->jp_end && p[1] >= '0' && p[1] <= '9')
		return jparse_fail(jp, "invalid number (leading zero)");
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; p < jp->jp_end && *p >= '0' && *p <= '9'; p++) {
		if (v > (lim - (uint64_t)(*p - '0')) / 10)
			return jparse_fail(jp, "integer too big");
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p < jp->jp_end && (*p == '.' || *p == 'e' || *p == 'E'))
		return jparse_fail(jp, "a number that is not an integer");
	jp->jp_p = p;
	if (!neg || v == 0)
		*out = mpk_uint(v);
	else
		*out = mpk_int(v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v);
	return 0;
}

static int
jparse_literal(struct jparse *jp, const char *lit, msgpack_object o, msgpack_object *out)
{
	size_t	n = strlen(lit);

	if ((size_t)(jp->jp_end - jp->jp_p) < n || memcmp(jp->jp_p, lit, n) != 0)
		return jparse_fail(jp, "invalid token");
	jp->jp_p += n;
	*out = o;
	return 0;
}

/* Refuses a key given twice in the map just read (JSON_REJECT_DUPLICATES). */
static int
jparse_dupcheck(struct jparse *jp, const msgpack_object_kv *kv, uint32_t n)
{
	const msgpack_object_kv	**s;
	uint32_t		  i, j;
	int			  ret = 0;

	if (n <= 16) {
		for (i = 1; i < n; i++)
			for (j = 0; j < i; j++)
				if (mpk_json_samekey(&kv[i], &kv[j]))
					return jparse_fail(jp, "duplicate object key");
		return 0;
	}
	/* Sorted, a key given twice sits next to itself: no quadratic cost. */
	if ((s = malloc(n * sizeof(*s))) == NULL)
		return jparse_fail(jp, "out of memory");
	for (i = 0; i < n; i++)
		s[i] = &kv[i];
	qsort(s, n, sizeof(*s), mpk_json_keycmp);
	for (i = 1; i < n && ret == 0; i++)
		if (mpk_json_samekey(s[i - 1], s[i]))
			ret = jparse_fail(jp, "duplicate object key");
	free(s);
	return ret;
}

static int
jparse_value(struct jparse *jp, msgpack_object *out, int depth)
{
	msgpack_object	 o;
	size_t		 base, i, n;
	unsigned char	 close;
	bool		 map;

	if (depth > LB_MSGPACK_DEPTH)
		return jparse_fail(jp, "nested deeper than the gateway accepts");
	jparse_ws(jp);
	if (jp->jp_p == jp->jp_end)
		return jparse_fail(jp, "unexpected end of input");
	switch (*jp->jp_p) {
	case '"':
		jp->jp_p++;
		return jparse_string(jp, out);
	case 't':
		return jparse_literal(jp, "true", mpk_bool(true), out);
	case 'f':
		return jparse_literal(jp, "false", mpk_bool(false), out);
	case 'n':
		return jparse_literal(jp, "null", mpk_nil(), out);
	case '{':
	case '[':
		break;
	default:
		if (*jp->jp_p == '-' || (*jp->jp_p >= '0' && *jp->jp_p <= '9'))
			return jparse_number(jp, out);
		return jparse_fail(jp, "invalid token");
	}
	map = *jp->jp_p == '{';
	close = map ? '}' : ']';
	jp->jp_p++;
	base = jp->jp_n;
	jparse_ws(jp);
	if (jp->jp_p < jp->jp_end && *jp->jp_p == close)
		jp->jp_p++;
	else
		for (;;) {
			if (map) {
				jparse_ws(jp);
				if (jp->jp_p == jp->jp_end || *jp->jp_p != '"')
					return jparse_fail(jp, "string or '}' expected");
				jp->jp_p++;
				if (jparse_string(jp, &o) != 0 || jparse_push(jp, &o) != 0)
					return -1;
				jparse_ws(jp);
				if (jp->jp_p == jp->jp_end || *jp->jp_p != ':')
					return jparse_fail(jp, "':' expected");
				jp->jp_p++;
			}
			if (jparse_value(jp, &o, depth + 1) != 0 || jparse_push(jp, &o) != 0)
				return -1;
			jparse_ws(jp);
			if (jp->jp_p < jp->jp_end && *jp->jp_p == ',') {
				jp->jp_p++;
				continue;
			}
			if (jp->jp_p < jp->jp_end && *jp->jp_p == close) {
				jp->jp_p++;
				break;
			}
			return jparse_fail(jp, map ? "',' or '}' expected" : "',' or ']' expected");
		}
	n = jp->jp_n - base;
	if (n > UINT32_MAX)
		return jparse_fail(jp, "too many values");
	if (!map) {
		*out = mpk_array(jp->jp_z, (uint32_t)n);
		if (n > 0)
			memcpy(out->via.array.ptr, jp->jp_stack + base, n * sizeof(*jp->jp_stack));
	} else {
		*out = mpk_nil();
		out->type = MSGPACK_OBJECT_MAP;
		out->via.map.size = (uint32_t)(n / 2);
		out->via.map.ptr = mpk_zalloc(jp->jp_z, sizeof(msgpack_object_kv) *
		    (n > 0 ? n / 2 : 1));
		for (i = 0; i < n / 2; i++) {
			out->via.map.ptr[i].key = jp->jp_stack[base + 2 * i];
			out->via.map.ptr[i].val = jp->jp_stack[base + 2 * i + 1];
		}
		if (jparse_dupcheck(jp, out->via.map.ptr, out->via.map.size) != 0)
			return -1;
	}
	jp->jp_n = base;
	return 0;
}

int
mpk_from_json(const char *txt, size_t len, msgpack_zone *z, msgpack_object *out,
    char *err, size_t errlen)
{
	struct jparse		 jp = { .jp_z = z };
	const unsigned char	*p;
	int			 line = 1, col = 0, ret = -1;

	jp.jp_p = jp.jp_start = (const unsigned char *)txt;
	jp.jp_end = jp.jp_start + len;
	/* Like json_loadb without JSON_DECODE_ANY: an object or an array, then nothing. */
	jparse_ws(&jp);
	if (jp.jp_p == jp.jp_end || (*jp.jp_p != '{' && *jp.jp_p != '['))
		jparse_fail(&jp, "'[' or '{' expected");
	else if (jparse_value(&jp, out, 0) == 0) {
		jparse_ws(&jp);
		if (jp.jp_p != jp.jp_end)
			jparse_fail(&jp, "end of file expected");
		else
			ret = 0;
	}
	if (ret != 0) {
		for (p = jp.jp_start; p < jp.jp_p && p < jp.jp_end; p++) {
			if (*p == '\n') {
				line++;
				col = 0;
			} else if ((*p & 0xc0) != 0x80)
				col++;
		}
		snprintf(err, errlen, "invalid JSON at line %d column %d: %s", line, col + 1,
		    jp.jp_why);
	}
	free(jp.jp_stack);
	return ret;
}
