/*
 * translate.c - adapter specs and the translation of department answers
 * into canonical documents (DESIGN §6, §9; docs/formats.md).
 *
 * A spec is compiled once, when it is loaded, into one template tree per
 * item.  Translating an answer walks that tree and asks the answer's source
 * format (translate_json.c, ...) for the value each selector names, through
 * struct src_ops.  The engine here knows documents and conversions but no
 * source syntax; a format knows its syntax but nothing about documents.
 *
 * Compiled templates live in a msgpack_zone owned by the mapping, so an
 * adapter is freed in one step.  Documents are built in the caller's zone
 * and copy every string they hold (keys included), so a document outlives
 * both the answer and the adapter (the registry may reload adapters while
 * documents are still being sealed).
 */
#include <errno.h>
#include <iconv.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lianban.h"

#define TPL_MAX_DEPTH	8	/* document nesting; the document itself is level 1 */
#define TPL_MAX_NODES	256	/* keys in the template of one item, all levels */
#define TPL_MAX_CODES	256	/* entries in one code table */
#define TPL_KEY_MAX	64	/* document key, NUL included */
#define TPL_CODE_MAX	256	/* one code or its replacement, in bytes */
#define SPEC_DESC_MAX	1024	/* the free-text "description" */
#define TIMEOUT_DEFAULT	3000
#define TIMEOUT_MAX	60000

enum tpl_kind {
	TPL_VALUE = 1,		/* a constant or a field rule */
	TPL_MAP			/* a nested map of further nodes */
};

enum date_fmt {
	DATE_NONE = 0,
	DATE_YMD,		/* YYYYMMDD */
	DATE_DASH,		/* YYYY-MM-DD */
	DATE_SLASH,		/* YYYY/MM/DD, also YYYY/M/D */
	DATE_CJK		/* YYYY年MM月DD日, also YYYY年M月D日 */
};

static const struct {
	const char	*name;
	enum date_fmt	 fmt;
} date_fmts[] = {
	{ "YYYYMMDD",			DATE_YMD },
	{ "YYYY-MM-DD",			DATE_DASH },
	{ "YYYY/MM/DD",			DATE_SLASH },
	{ "YYYY\u5e74MM\u6708DD\u65e5",	DATE_CJK },
};

struct tpl_code {
	const char	*tc_code;
	size_t		 tc_code_len;
	const char	*tc_value;
};

struct tpl_node {
	const char		*tn_key;	/* key in the parent map */
	const char		*tn_path;	/* dotted path from the document, for messages */
	enum tpl_kind		 tn_kind;
	/* TPL_VALUE */
	const char		*tn_src;	/* selector; NULL for a constant */
	struct src_value	 tn_const;
	bool			 tn_required;
	bool			 tn_trim;
	bool			 tn_as_int;
	enum date_fmt		 tn_date;
	const struct tpl_code	*tn_codes;
	uint32_t		 tn_ncodes;
	const char		*tn_default;
	/* TPL_MAP */
	struct tpl_node		*tn_kids;
	uint32_t		 tn_nkids;
};

struct tpl_item {
	char			 ti_item[LB_ITEM_MAX];
	struct tpl_node		 ti_root;
	const struct tpl_node	*ti_holder_id;
};

struct mapping {
	msgpack_zone		*mp_zone;
	const struct src_ops	*mp_ops;
	struct tpl_item		 mp_items[LB_MAX_ITEMS];
	size_t			 mp_nitems;
};

/*
 * The source formats.  A format without ops would be known to the spec
 * syntax (DESIGN §9) but have no translator in this build.
 */
static const struct {
	const char		*name;
	enum src_format		 fmt;
	const struct src_ops	*ops;
} src_formats[] = {
	{ "json",	SRC_JSON,	&src_json_ops },
	{ "xml",	SRC_XML,	&src_xml_ops },
	{ "csv",	SRC_CSV,	&src_csv_ops },
	{ "fixed",	SRC_FIXED,	&src_fixed_ops },
	{ "msgpack",	SRC_MSGPACK,	&src_msgpack_ops },
};

static const char *const spec_keys[] = {
	"id", "dept", "items", "endpoint", "timeout_ms", "format", "encoding",
	"seal", "record", "mapping", "description", "namespaces", "delimiter", NULL
};
static const char *const rule_keys[] = {
	"src", "const", "required", "trim", "date", "codes", "default", "as", NULL
};
static const char *const record_keys[] = { "list", "key", NULL };
static const char *const doc_keys[] = {
	"type", "number", "holder", "issuer", "issued", "fields", "valid_until", NULL
};
static const char *const holder_keys[] = { "id", "name", NULL };
static const char *const issuer_keys[] = { "dept", "name", NULL };
static const char *const encodings[] = { "utf-8", "gbk", "gb18030", NULL };

/* Compilation state of one item's template. */
struct cctx {
	msgpack_zone		*cc_zone;
	const struct src_ops	*cc_ops;
	const char		*cc_item;
	const char		*cc_dept;
	unsigned		 cc_nodes;
	char			*cc_err;
	size_t			 cc_errlen;
};

/* Translation state of one answer. */
struct tctx {
	const struct src_ops	*tc_ops;
	void			*tc_h;
	msgpack_zone		*tc_zone;
	char			*tc_err;
	size_t			 tc_errlen;
};

static int	spec_err(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	tpl_err(struct cctx *, const char *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	tpl_compile_value(struct cctx *, const msgpack_object *, struct tpl_node *, int);

/*
 * Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF,
 * and no NUL, which C consumers of documents could not carry.
 */
static bool
utf8_valid(const char *s, size_t n)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, j, k;
	uint32_t		 cp, min;

	while (i < n) {
		if (p[i] == 0)
			return false;
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			k = 1;
			cp = p[i] & 0x1f;
			min = 0x80;
		} else if ((p[i] & 0xf0) == 0xe0) {
			k = 2;
			cp = p[i] & 0x0f;
			min = 0x800;
		} else if ((p[i] & 0xf8) == 0xf0) {
			k = 3;
			cp = p[i] & 0x07;
			min = 0x10000;
		} else
			return false;
		if (n - i <= k)
			return false;
		for (j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* Valid UTF-8 without control characters: safe to quote in messages. */
static bool
text_ok(const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return utf8_valid(s, n);
}

/*
 * Copies a spec string for quoting in a message: at most 48 bytes, cut on
 * a character boundary, and only when it is printable UTF-8, so that error
 * messages stay valid UTF-8 whatever the spec holds.
 */
static const char *
show(const msgpack_object *o, char *buf, size_t bufsz)
{
	size_t	n;

	if (o == NULL || o->type != MSGPACK_OBJECT_STR ||
	    !text_ok(o->via.str.ptr, o->via.str.size)) {
		snprintf(buf, bufsz, "(unprintable)");
		return buf;
	}
	n = o->via.str.size;
	if (n > 48)
		n = 48;
	if (n >= bufsz)
		n = bufsz - 1;
	while (n > 0 && n < o->via.str.size &&
	    ((unsigned char)o->via.str.ptr[n] & 0xc0) == 0x80)
		n--;
	memcpy(buf, o->via.str.ptr, n);
	buf[n] = '\0';
	return buf;
}

static int
spec_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* "mapping for item "x": field "a.b": <message>" */
static int
tpl_err(struct cctx *c, const char *path, const char *fmt, ...)
{
	char	msg[640];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (path == NULL || path[0] == '\0')
		snprintf(c->cc_err, c->cc_errlen, "mapping for item \"%s\": %s", c->cc_item, msg);
	else
		snprintf(c->cc_err, c->cc_errlen, "mapping for item \"%s\": field \"%s\": %s",
		    c->cc_item, path, msg);
	return -1;
}

static bool
in_list(const char *const *list, const msgpack_object *k)
{
	for (; *list != NULL; list++)
		if (mpk_str_eq(k, *list))
			return true;
	return false;
}

static bool
str_eqn(const msgpack_object *o, const char *s, size_t n)
{
	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	    memcmp(o->via.str.ptr, s, n) == 0;
}

/*
 * Checks that the keys of map o are strings, appear once and belong to
 * allowed.  what names the map in messages.
 */
static int
check_keys(const msgpack_object *o, const char *const *allowed, const char *what,
    char *err, size_t errlen)
{
	const msgpack_object	*k;
	char			 b[64];
	uint32_t		 i, j;

	for (i = 0; i < o->via.map.size; i++) {
		k = &o->via.map.ptr[i].key;
		if (k->type != MSGPACK_OBJECT_STR)
			return spec_err(err, errlen, "%s has a key that is not a string", what);
		if (!in_list(allowed, k))
			return spec_err(err, errlen, "%s: unknown key \"%s\"", what,
			    show(k, b, sizeof(b)));
		for (j = 0; j < i; j++)
			if (str_eqn(&o->via.map.ptr[j].key, k->via.str.ptr, k->via.str.size))
				return spec_err(err, errlen, "%s has the key \"%s\" twice",
				    what, show(k, b, sizeof(b)));
	}
	return 0;
}

/* Ids: 1 to LB_ID_MAX-1 bytes of a-z, 0-9, ".", "_", "-", starting alphanumeric. */
static bool
id_ok(const msgpack_object *o)
{
	uint32_t	i;
	char		c;

	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
	    o->via.str.size >= LB_ID_MAX)
		return false;
	for (i = 0; i < o->via.str.size; i++) {
		c = o->via.str.ptr[i];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (i > 0 && (c == '.' || c == '_' || c == '-'))
			continue;
		return false;
	}
	return true;
}

/* Item types and document keys: [a-z][a-z0-9_]*, shorter than max. */
static bool
name_ok(const msgpack_object *o, size_t max)
{
	uint32_t	i;
	char		c;

	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 || o->via.str.size >= max)
		return false;
	for (i = 0; i < o->via.str.size; i++) {
		c = o->via.str.ptr[i];
		if ((c >= 'a' && c <= 'z') || (i > 0 && ((c >= '0' && c <= '9') || c == '_')))
			continue;
		return false;
	}
	return true;
}

static int
spec_id(const msgpack_object *spec, const char *key, bool required, char *buf,
    char *err, size_t errlen)
{
	const msgpack_object	*o;

	if ((o = mpk_get(spec, key)) == NULL) {
		if (required)
			return spec_err(err, errlen, "\"%s\" is missing", key);
		return 0;
	}
	if (!id_ok(o))
		return spec_err(err, errlen, "\"%s\" must be 1 to %d characters of a-z, 0-9, "
		    "\".\", \"_\" and \"-\", starting with a letter or digit", key, LB_ID_MAX - 1);
	return mpk_obj_str(o, buf, LB_ID_MAX);
}

static char *
zstrdup(msgpack_zone *z, const char *s, size_t n)
{
	char	*p = mpk_zalloc(z, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/*
 * Dates.
 */

static bool
leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool
calendar_ok(int y, int m, int d)
{
	static const int	mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1)
		return false;
	return d <= mdays[m - 1] + (m == 2 && leap(y));
}

/* Reads min to max ASCII digits at s[*i]. */
static bool
digits(const char *s, size_t n, size_t *i, size_t min, size_t max, int *v)
{
	size_t	k = 0;

	*v = 0;
	while (*i < n && k < max && s[*i] >= '0' && s[*i] <= '9') {
		*v = *v * 10 + (s[*i] - '0');
		(*i)++;
		k++;
	}
	return k >= min;
}

static bool
lit(const char *s, size_t n, size_t *i, const char *l)
{
	size_t	ll = strlen(l);

	if (n - *i < ll || memcmp(s + *i, l, ll) != 0)
		return false;
	*i += ll;
	return true;
}

/* Parses s in format f and writes YYYY-MM-DD into out[11]. */
static bool
date_convert(enum date_fmt f, const char *s, size_t n, char out[11])
{
	size_t	i = 0;
	int	y, m, d;
	bool	ok;

	switch (f) {
	case DATE_YMD:
		ok = digits(s, n, &i, 4, 4, &y) && digits(s, n, &i, 2, 2, &m) &&
		    digits(s, n, &i, 2, 2, &d);
		break;
	case DATE_DASH:
		ok = digits(s, n, &i, 4, 4, &y) && lit(s, n, &i, "-") &&
		    digits(s, n, &i, 2, 2, &m) && lit(s, n, &i, "-") && digits(s, n, &i, 2, 2, &d);
		break;
	case DATE_SLASH:
		ok = digits(s, n, &i, 4, 4, &y) && lit(s, n, &i, "/") &&
		    digits(s, n, &i, 1, 2, &m) && lit(s, n, &i, "/") && digits(s, n, &i, 1, 2, &d);
		break;
	case DATE_CJK:
		ok = digits(s, n, &i, 4, 4, &y) && lit(s, n, &i, "\u5e74") &&
		    digits(s, n, &i, 1, 2, &m) && lit(s, n, &i, "\u6708") &&
		    digits(s, n, &i, 1, 2, &d) && lit(s, n, &i, "\u65e5");
		break;
	default:
		return false;
	}
	if (!ok || i != n || !calendar_ok(y, m, d))
		return false;
	out[0] = (char)('0' + y / 1000);
	out[1] = (char)('0' + y / 100 % 10);
	out[2] = (char)('0' + y / 10 % 10);
	out[3] = (char)('0' + y % 10);
	out[4] = '-';
	out[5] = (char)('0' + m / 10);
	out[6] = (char)('0' + m % 10);
	out[7] = '-';
	out[8] = (char)('0' + d / 10);
	out[9] = (char)('0' + d % 10);
	out[10] = '\0';
	return true;
}

static const char *
date_name(enum date_fmt f)
{
	size_t	i;

	for (i = 0; i < sizeof(date_fmts) / sizeof(date_fmts[0]); i++)
		if (date_fmts[i].fmt == f)
			return date_fmts[i].name;
	return "?";
}

/* A decimal integer: optional "-", digits, within int64. */
static bool
decimal(const char *s, size_t n, int64_t *v)
{
	uint64_t	acc = 0, lim;
	size_t		i = 0;
	bool		neg = false;

	if (n > 0 && s[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == n)
		return false;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (acc > (lim - (uint64_t)(s[i] - '0')) / 10)
			return false;
		acc = acc * 10 + (uint64_t)(s[i] - '0');
	}
	if (neg)
		*v = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
	else
		*v = (int64_t)acc;
	return true;
}

static bool
ascii_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/*
 * Strips ASCII white space and U+3000 IDEOGRAPHIC SPACE (full-width space,
 * common in Chinese records) from both ends.  s must be valid UTF-8, where
 * ASCII bytes never occur inside a multi-byte character.
 */
static void
trim_space(const char **s, size_t *n)
{
	static const char	ideo[] = "\xe3\x80\x80";
	const char		*p = *s;
	size_t			 len = *n;

	for (;;) {
		if (len >= 1 && ascii_space(p[0])) {
			p++;
			len--;
		} else if (len >= 3 && memcmp(p, ideo, 3) == 0) {
			p += 3;
			len -= 3;
		} else
			break;
	}
	for (;;) {
		if (len >= 1 && ascii_space(p[len - 1]))
			len--;
		else if (len >= 3 && memcmp(p + len - 3, ideo, 3) == 0)
			len -= 3;
		else
			break;
	}
	*s = p;
	*n = len;
}

/*
 * Runs the conversions of rule n on one source value: to text (integers
 * become decimal strings), trim, code table, date, integer.  Returns 1 with
 * *out set (in z), 0 when the value is empty, -1 with a sentence fragment
 * in why.  The fragments never quote the value: answers carry personal data.
 */
static int
value_convert(const struct tpl_node *n, const struct src_value *in, msgpack_zone *z,
    msgpack_object *out, char *why, size_t whylen)
{
	char		 num[24], date[11];
	const char	*s;
	size_t		 len;
	int64_t		 iv;
	uint32_t	 i;

	if (in->sv_type == SV_INT) {
		if (n->tn_as_int && n->tn_ncodes == 0 && n->tn_date == DATE_NONE) {
			*out = mpk_int(in->sv_int);
			return 1;
		}
		len = (size_t)snprintf(num, sizeof(num), "%" PRId64, in->sv_int);
		s = num;
	} else if (in->sv_type == SV_STR && in->sv_str != NULL) {
		s = in->sv_str;
		len = in->sv_len;
	} else {
		snprintf(why, whylen, "the value is neither a string nor an integer");
		return -1;
	}
	if (!utf8_valid(s, len)) {
		snprintf(why, whylen, "the value is not valid UTF-8 or holds a NUL character");
		return -1;
	}
	if (n->tn_trim)
		trim_space(&s, &len);
	if (len == 0)
		return 0;
	if (n->tn_ncodes > 0) {
		for (i = 0; i < n->tn_ncodes; i++)
			if (n->tn_codes[i].tc_code_len == len &&
			    memcmp(n->tn_codes[i].tc_code, s, len) == 0)
				break;
		if (i < n->tn_ncodes)
			s = n->tn_codes[i].tc_value;
		else if (n->tn_default != NULL)
			s = n->tn_default;
		else {
			snprintf(why, whylen, "the value is not in the code table "
			    "and the rule has no \"default\"");
			return -1;
		}
		len = strlen(s);
	}
	if (n->tn_date != DATE_NONE) {
		if (!date_convert(n->tn_date, s, len, date)) {
			snprintf(why, whylen, "the value is not a valid date in the format %s",
			    date_name(n->tn_date));
			return -1;
		}
		s = date;
		len = 10;
	}
	if (n->tn_as_int) {
		if (!decimal(s, len, &iv)) {
			snprintf(why, whylen, "the value is not a decimal integer within 64 bits");
			return -1;
		}
		*out = mpk_int(iv);
		return 1;
	}
	*out = mpk_strdup(z, s, len);
	return 1;
}

/*
 * Template compilation.
 */

/* A selector is printable UTF-8 shorter than LB_SEL_MAX; the format checks the rest. */
static int
selector_check(const struct src_ops *ops, enum src_role role, const msgpack_object *o,
    char *why, size_t whylen)
{
	char	sel[LB_SEL_MAX], fw[160];

	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= LB_SEL_MAX ||
	    !text_ok(o->via.str.ptr, o->via.str.size)) {
		snprintf(why, whylen, "a selector must be a printable string shorter than %d bytes",
		    LB_SEL_MAX);
		return -1;
	}
	memcpy(sel, o->via.str.ptr, o->via.str.size);
	sel[o->via.str.size] = '\0';
	if (ops->so_check(role, sel, fw, sizeof(fw)) != 0) {
		snprintf(why, whylen, "selector \"%s\": %s", sel, fw);
		return -1;
	}
	return 0;
}

static int
tpl_compile_codes(struct cctx *c, const msgpack_object *o, struct tpl_node *n)
{
	struct tpl_code		*codes;
	const msgpack_object	*k, *v;
	uint32_t		 i, j;

	if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size == 0 ||
	    o->via.map.size > TPL_MAX_CODES)
		return tpl_err(c, n->tn_path, "\"codes\" must be a map of 1 to %d codes",
		    TPL_MAX_CODES);
	codes = mpk_zalloc(c->cc_zone, sizeof(*codes) * o->via.map.size);
	for (i = 0; i < o->via.map.size; i++) {
		k = &o->via.map.ptr[i].key;
		v = &o->via.map.ptr[i].val;
		if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0 ||
		    k->via.str.size >= TPL_CODE_MAX || !utf8_valid(k->via.str.ptr, k->via.str.size))
			return tpl_err(c, n->tn_path, "every code in \"codes\" must be a non-empty "
			    "UTF-8 string shorter than %d bytes", TPL_CODE_MAX);
		for (j = 0; j < i; j++)
			if (str_eqn(&o->via.map.ptr[j].key, k->via.str.ptr, k->via.str.size))
				return tpl_err(c, n->tn_path, "\"codes\" lists a code twice");
		if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 ||
		    v->via.str.size >= TPL_CODE_MAX || !utf8_valid(v->via.str.ptr, v->via.str.size))
			return tpl_err(c, n->tn_path, "every value in \"codes\" must be a non-empty "
			    "UTF-8 string shorter than %d bytes", TPL_CODE_MAX);
		codes[i].tc_code = zstrdup(c->cc_zone, k->via.str.ptr, k->via.str.size);
		codes[i].tc_code_len = k->via.str.size;
		codes[i].tc_value = zstrdup(c->cc_zone, v->via.str.ptr, v->via.str.size);
	}
	n->tn_codes = codes;
	n->tn_ncodes = o->via.map.size;
	return 0;
}

static int
tpl_compile_rule(struct cctx *c, const msgpack_object *o, struct tpl_node *n)
{
	const msgpack_object	*k, *v;
	msgpack_zone		*tz;
	msgpack_object		 out;
	char			 b[64], why[512];
	uint32_t		 i, j;
	size_t			 f;
	int64_t			 iv;
	bool			 has_const = false, as_seen = false;
	int			 r;

	n->tn_kind = TPL_VALUE;
	for (i = 0; i < o->via.map.size; i++) {
		k = &o->via.map.ptr[i].key;
		v = &o->via.map.ptr[i].val;
		if (k->type != MSGPACK_OBJECT_STR)
			return tpl_err(c, n->tn_path, "the rule has a key that is not a string");
		if (!in_list(rule_keys, k))
			return tpl_err(c, n->tn_path, "unknown option \"%s\" (a rule takes src, "
			    "const, required, trim, date, codes, default and as)",
			    show(k, b, sizeof(b)));
		for (j = 0; j < i; j++)
			if (str_eqn(&o->via.map.ptr[j].key, k->via.str.ptr, k->via.str.size))
				return tpl_err(c, n->tn_path, "the option \"%s\" is given twice",
				    show(k, b, sizeof(b)));
		if (mpk_str_eq(k, "src")) {
			if (selector_check(c->cc_ops, SRC_SEL_FIELD, v, why, sizeof(why)) != 0)
				return tpl_err(c, n->tn_path, "%s", why);
			n->tn_src = zstrdup(c->cc_zone, v->via.str.ptr, v->via.str.size);
		} else if (mpk_str_eq(k, "const")) {
			has_const = true;
			if (v->type == MSGPACK_OBJECT_STR && v->via.str.size > 0) {
				n->tn_const.sv_type = SV_STR;
				n->tn_const.sv_str = zstrdup(c->cc_zone, v->via.str.ptr,
				    v->via.str.size);
				n->tn_const.sv_len = v->via.str.size;
			} else if (mpk_obj_i64(v, &iv) == 0) {
				n->tn_const.sv_type = SV_INT;
				n->tn_const.sv_int = iv;
			} else
				return tpl_err(c, n->tn_path, "\"const\" must be a non-empty string "
				    "or an integer");
		} else if (mpk_str_eq(k, "required") || mpk_str_eq(k, "trim")) {
			if (v->type != MSGPACK_OBJECT_BOOLEAN)
				return tpl_err(c, n->tn_path, "\"%s\" must be true or false",
				    show(k, b, sizeof(b)));
			if (mpk_str_eq(k, "required"))
				n->tn_required = v->via.boolean;
			else
				n->tn_trim = v->via.boolean;
		} else if (mpk_str_eq(k, "date")) {
			for (f = 0; f < sizeof(date_fmts) / sizeof(date_fmts[0]); f++)
				if (mpk_str_eq(v, date_fmts[f].name))
					break;
			if (f == sizeof(date_fmts) / sizeof(date_fmts[0]))
				return tpl_err(c, n->tn_path, "unknown date format \"%s\"",
				    show(v, b, sizeof(b)));
			n->tn_date = date_fmts[f].fmt;
		} else if (mpk_str_eq(k, "codes")) {
			if (tpl_compile_codes(c, v, n) != 0)
				return -1;
		} else if (mpk_str_eq(k, "default")) {
			if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 ||
			    v->via.str.size >= TPL_CODE_MAX ||
			    !utf8_valid(v->via.str.ptr, v->via.str.size))
				return tpl_err(c, n->tn_path, "\"default\" must be a non-empty "
				    "UTF-8 string shorter than %d bytes", TPL_CODE_MAX);
			n->tn_default = zstrdup(c->cc_zone, v->via.str.ptr, v->via.str.size);
		} else if (mpk_str_eq(k, "as")) {
			as_seen = true;
			if (mpk_str_eq(v, "int"))
				n->tn_as_int = true;
			else if (!mpk_str_eq(v, "string"))
				return tpl_err(c, n->tn_path, "\"as\" must be \"int\" or \"string\"");
		}
	}
	if (n->tn_src != NULL && has_const)
		return tpl_err(c, n->tn_path, "a rule takes either \"src\" or \"const\", not both");
	if (n->tn_default != NULL && n->tn_ncodes == 0)
		return tpl_err(c, n->tn_path, "\"default\" needs \"codes\"");
	if (n->tn_as_int && n->tn_date != DATE_NONE)
		return tpl_err(c, n->tn_path, "\"date\" makes a string; it cannot be combined "
		    "with \"as\": \"int\"");
	/* An integer constant stays an integer unless the rule says otherwise. */
	if (has_const && n->tn_const.sv_type == SV_INT && !as_seen)
		n->tn_as_int = true;
	if (has_const) {
		/* Run the conversions now, so a bad constant is a spec error. */
		if ((tz = msgpack_zone_new(256)) == NULL)
			return tpl_err(c, n->tn_path, "out of memory");
		r = value_convert(n, &n->tn_const, tz, &out, why, sizeof(why));
		msgpack_zone_free(tz);
		if (r < 0)
			return tpl_err(c, n->tn_path, "the constant is unusable: %s", why);
		if (r == 0)
			return tpl_err(c, n->tn_path, "the constant is empty");
	}
	return 0;
}

static int
tpl_compile_map(struct cctx *c, const msgpack_object *o, struct tpl_node *n, int depth)
{
	const msgpack_object	*k;
	struct tpl_node		*kid;
	char			 b[64];
	size_t			 plen;
	uint32_t		 i, j;

	if (depth > TPL_MAX_DEPTH)
		return tpl_err(c, n->tn_path, "the document nests deeper than %d levels",
		    TPL_MAX_DEPTH);
	if (o->via.map.size > TPL_MAX_NODES - c->cc_nodes)
		return tpl_err(c, n->tn_path, "the template has more than %d entries",
		    TPL_MAX_NODES);
	c->cc_nodes += o->via.map.size;
	n->tn_kind = TPL_MAP;
	n->tn_nkids = o->via.map.size;
	n->tn_kids = mpk_zalloc(c->cc_zone, sizeof(*n->tn_kids) * (n->tn_nkids ? n->tn_nkids : 1));
	memset(n->tn_kids, 0, sizeof(*n->tn_kids) * n->tn_nkids);
	for (i = 0; i < o->via.map.size; i++) {
		k = &o->via.map.ptr[i].key;
		kid = &n->tn_kids[i];
		if (!name_ok(k, TPL_KEY_MAX))
			return tpl_err(c, n->tn_path, "the key \"%s\" is not a field name (a-z "
			    "first, then a-z, 0-9 or \"_\", at most %d characters)",
			    show(k, b, sizeof(b)), TPL_KEY_MAX - 1);
		for (j = 0; j < i; j++)
			if (str_eqn(&o->via.map.ptr[j].key, k->via.str.ptr, k->via.str.size))
				return tpl_err(c, n->tn_path, "the key \"%s\" appears twice",
				    show(k, b, sizeof(b)));
		kid->tn_key = zstrdup(c->cc_zone, k->via.str.ptr, k->via.str.size);
		plen = strlen(n->tn_path);
		if (plen == 0)
			kid->tn_path = kid->tn_key;
		else {
			char *p = mpk_zalloc(c->cc_zone, plen + 1 + k->via.str.size + 1);

			snprintf(p, plen + 1 + k->via.str.size + 1, "%s.%s", n->tn_path,
			    kid->tn_key);
			kid->tn_path = p;
		}
		if (tpl_compile_value(c, &o->via.map.ptr[i].val, kid, depth) != 0)
			return -1;
	}
	return 0;
}

/*
 * A template value: a string or integer is a constant, a map with "src" or
 * "const" is a field rule, any other map a nested map.
 */
static int
tpl_compile_value(struct cctx *c, const msgpack_object *o, struct tpl_node *n, int depth)
{
	int64_t	iv;

	switch (o->type) {
	case MSGPACK_OBJECT_STR:
		if (o->via.str.size == 0 || !utf8_valid(o->via.str.ptr, o->via.str.size))
			return tpl_err(c, n->tn_path, "a constant must be a non-empty UTF-8 "
			    "string without NUL");
		n->tn_kind = TPL_VALUE;
		n->tn_const.sv_type = SV_STR;
		n->tn_const.sv_str = zstrdup(c->cc_zone, o->via.str.ptr, o->via.str.size);
		n->tn_const.sv_len = o->via.str.size;
		return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		if (mpk_obj_i64(o, &iv) != 0)
			return tpl_err(c, n->tn_path, "the constant is out of range");
		n->tn_kind = TPL_VALUE;
		n->tn_const.sv_type = SV_INT;
		n->tn_const.sv_int = iv;
		n->tn_as_int = true;
		return 0;
	case MSGPACK_OBJECT_MAP:
		if (mpk_get(o, "src") != NULL || mpk_get(o, "const") != NULL)
			return tpl_compile_rule(c, o, n);
		return tpl_compile_map(c, o, n, depth + 1);
	default:
		return tpl_err(c, n->tn_path, "must be a string constant, an integer, a field "
		    "rule (a map with \"src\" or \"const\") or a map of fields");
	}
}

static const struct tpl_node *
tpl_kid(const struct tpl_node *n, const char *key)
{
	uint32_t	i;

	for (i = 0; i < n->tn_nkids; i++)
		if (strcmp(n->tn_kids[i].tn_key, key) == 0)
			return &n->tn_kids[i];
	return NULL;
}

/* Checks that the keys of a compiled map are in allowed and required ones are there. */
static int
tpl_shape(struct cctx *c, const struct tpl_node *n, const char *const *allowed,
    const char *const *required, const char *what)
{
	uint32_t	i;
	size_t		j;

	for (i = 0; i < n->tn_nkids; i++) {
		for (j = 0; allowed[j] != NULL; j++)
			if (strcmp(n->tn_kids[i].tn_key, allowed[j]) == 0)
				break;
		if (allowed[j] == NULL)
			return tpl_err(c, n->tn_path, "unknown key \"%s\" (%s)",
			    n->tn_kids[i].tn_key, what);
	}
	for (j = 0; required[j] != NULL; j++)
		if (tpl_kid(n, required[j]) == NULL)
			return tpl_err(c, n->tn_path, "the key \"%s\" is missing (%s)",
			    required[j], what);
	return 0;
}

static int
tpl_want_value(struct cctx *c, const struct tpl_node *n)
{
	if (n != NULL && n->tn_kind != TPL_VALUE)
		return tpl_err(c, n->tn_path, "must be a value (a constant or a field rule), "
		    "not a map");
	return 0;
}

static int
tpl_want_map(struct cctx *c, const struct tpl_node *n)
{
	if (n->tn_kind != TPL_MAP)
		return tpl_err(c, n->tn_path, "must be a map");
	return 0;
}

/* A document date is either converted from the source or a YYYY-MM-DD constant. */
static int
tpl_want_date(struct cctx *c, const struct tpl_node *n)
{
	char	out[11];

	if (n == NULL)
		return 0;
	if (tpl_want_value(c, n) != 0)
		return -1;
	if (n->tn_date != DATE_NONE)
		return 0;
	if (n->tn_src == NULL && n->tn_const.sv_type == SV_STR &&
	    n->tn_ncodes == 0 && !n->tn_as_int &&
	    date_convert(DATE_DASH, n->tn_const.sv_str, n->tn_const.sv_len, out))
		return 0;
	return tpl_err(c, n->tn_path, "needs a \"date\" conversion: document dates are "
	    "YYYY-MM-DD");
}

/*
 * Checks a compiled template against the document contract (DESIGN §6), so
 * that a spec that cannot produce a valid document is refused when loaded.
 */
static int
tpl_check_document(struct cctx *c, struct tpl_item *ti)
{
	static const char *const doc_req[] = {
		"type", "number", "holder", "issuer", "issued", "fields", NULL
	};
	static const char *const holder_req[] = { "id", NULL };
	static const char *const issuer_req[] = { "dept", NULL };
	const struct tpl_node	*root = &ti->ti_root, *t, *h, *is, *id, *dept;

	if (tpl_shape(c, root, doc_keys, doc_req, "a document has type, number, holder, "
	    "issuer, issued, fields and valid_until") != 0)
		return -1;
	t = tpl_kid(root, "type");
	if (t->tn_kind != TPL_VALUE || t->tn_src != NULL || t->tn_const.sv_type != SV_STR ||
	    t->tn_ncodes != 0 || t->tn_as_int || strcmp(t->tn_const.sv_str, c->cc_item) != 0)
		return tpl_err(c, "type", "must be the constant \"%s\"", c->cc_item);
	if (tpl_want_value(c, tpl_kid(root, "number")) != 0 ||
	    tpl_want_date(c, tpl_kid(root, "issued")) != 0 ||
	    tpl_want_date(c, tpl_kid(root, "valid_until")) != 0 ||
	    tpl_want_map(c, tpl_kid(root, "fields")) != 0)
		return -1;

	h = tpl_kid(root, "holder");
	if (tpl_want_map(c, h) != 0 ||
	    tpl_shape(c, h, holder_keys, holder_req, "a holder has id and name") != 0)
		return -1;
	id = tpl_kid(h, "id");
	if (tpl_want_value(c, id) != 0 || tpl_want_value(c, tpl_kid(h, "name")) != 0)
		return -1;
	if (id->tn_src == NULL)
		return tpl_err(c, id->tn_path, "must come from the answer (a rule with \"src\")");
	if (id->tn_as_int)
		return tpl_err(c, id->tn_path, "must be a string; remove \"as\": \"int\"");
	ti->ti_holder_id = id;

	is = tpl_kid(root, "issuer");
	if (tpl_want_map(c, is) != 0 ||
	    tpl_shape(c, is, issuer_keys, issuer_req, "an issuer has dept and name") != 0)
		return -1;
	dept = tpl_kid(is, "dept");
	if (tpl_want_value(c, dept) != 0 || tpl_want_value(c, tpl_kid(is, "name")) != 0)
		return -1;
	if (dept->tn_src == NULL && dept->tn_ncodes == 0 &&
	    (dept->tn_const.sv_type != SV_STR || dept->tn_as_int ||
	    strcmp(dept->tn_const.sv_str, c->cc_dept) != 0))
		return tpl_err(c, dept->tn_path, "must be the adapter's department \"%s\"",
		    c->cc_dept);
	return 0;
}

static int
mapping_compile(struct adapter *ad, const msgpack_object *m, char *err, size_t errlen)
{
	struct mapping		*mp = ad->ad_map;
	struct tpl_item		*ti;
	struct cctx		 c;
	const msgpack_object	*k, *v;
	char			 b[64];
	uint32_t		 i;
	size_t			 j;

	if (m->type != MSGPACK_OBJECT_MAP)
		return spec_err(err, errlen, "\"mapping\" must be a map from item type to "
		    "document template");
	for (i = 0; i < m->via.map.size; i++) {
		k = &m->via.map.ptr[i].key;
		for (j = 0; j < ad->ad_nitems; j++)
			if (mpk_str_eq(k, ad->ad_items[j]))
				break;
		if (j == ad->ad_nitems)
			return spec_err(err, errlen, "\"mapping\" has an entry for \"%s\", which "
			    "is not in \"items\"", show(k, b, sizeof(b)));
	}
	for (j = 0; j < ad->ad_nitems; j++) {
		if ((v = mpk_get(m, ad->ad_items[j])) == NULL)
			return spec_err(err, errlen, "\"mapping\" has no entry for item \"%s\"",
			    ad->ad_items[j]);
		ti = &mp->mp_items[j];
		memset(ti, 0, sizeof(*ti));
		snprintf(ti->ti_item, sizeof(ti->ti_item), "%s", ad->ad_items[j]);
		memset(&c, 0, sizeof(c));
		c.cc_zone = mp->mp_zone;
		c.cc_ops = mp->mp_ops;
		c.cc_item = ti->ti_item;
		c.cc_dept = ad->ad_dept;
		c.cc_err = err;
		c.cc_errlen = errlen;
		ti->ti_root.tn_key = "";
		ti->ti_root.tn_path = "";
		if (v->type != MSGPACK_OBJECT_MAP || mpk_get(v, "src") != NULL ||
		    mpk_get(v, "const") != NULL)
			return tpl_err(&c, NULL, "the template must be a map of document keys");
		if (tpl_compile_map(&c, v, &ti->ti_root, 1) != 0 ||
		    tpl_check_document(&c, ti) != 0)
			return -1;
		mp->mp_nitems++;
	}
	return 0;
}

/*
 * Spec fields.
 */

static int
spec_items(struct adapter *ad, const msgpack_object *spec, char *err, size_t errlen)
{
	const msgpack_object	*o, *it;
	char			 b[64];
	uint32_t		 i;
	size_t			 j;

	if ((o = mpk_get(spec, "items")) == NULL)
		return spec_err(err, errlen, "\"items\" is missing");
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 ||
	    o->via.array.size > LB_MAX_ITEMS)
		return spec_err(err, errlen, "\"items\" must be a list of 1 to %d item types",
		    LB_MAX_ITEMS);
	for (i = 0; i < o->via.array.size; i++) {
		it = &o->via.array.ptr[i];
		if (!name_ok(it, LB_ITEM_MAX))
			return spec_err(err, errlen, "\"items\": \"%s\" is not an item type (a-z "
			    "first, then a-z, 0-9 or \"_\", at most %d characters)",
			    show(it, b, sizeof(b)), LB_ITEM_MAX - 1);
		for (j = 0; j < ad->ad_nitems; j++)
			if (mpk_str_eq(it, ad->ad_items[j]))
				return spec_err(err, errlen, "\"items\" lists \"%s\" twice",
				    ad->ad_items[j]);
		if (mpk_obj_str(it, ad->ad_items[ad->ad_nitems], LB_ITEM_MAX) != 0)
			return spec_err(err, errlen, "\"items\" holds an unusable name");
		ad->ad_nitems++;
	}
	return 0;
}

/*
 * http:// or https://, a host, printable ASCII only; the placeholders
 * {subject} (required) and {item} may appear only after the host, so a
 * subject can never choose where the request goes.
 */
static int
spec_endpoint(struct adapter *ad, const msgpack_object *spec, char *err, size_t errlen)
{
	const msgpack_object	*o;
	const char		*u, *host, *p;
	bool			 subj = false;

	if ((o = mpk_get(spec, "endpoint")) == NULL)
		return spec_err(err, errlen, "\"endpoint\" is missing");
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= LB_URL_MAX ||
	    mpk_obj_str(o, ad->ad_endpoint, sizeof(ad->ad_endpoint)) != 0)
		return spec_err(err, errlen, "\"endpoint\" must be a URL shorter than %d bytes",
		    LB_URL_MAX);
	u = ad->ad_endpoint;
	for (p = u; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#')
			return spec_err(err, errlen, "\"endpoint\" may hold only printable ASCII "
			    "without spaces or \"#\" (percent-encode the rest)");
	if (strncmp(u, "http://", 7) == 0)
		host = u + 7;
	else if (strncmp(u, "https://", 8) == 0)
		host = u + 8;
	else
		return spec_err(err, errlen, "\"endpoint\" must start with http:// or https://");
	if (*host == '\0' || *host == '/' || *host == '?')
		return spec_err(err, errlen, "\"endpoint\" has no host");
	p = host + strcspn(host, "/?");
	if (memchr(host, '{', (size_t)(p - host)) != NULL ||
	    memchr(host, '}', (size_t)(p - host)) != NULL)
		return spec_err(err, errlen, "\"endpoint\": placeholders may appear only in the "
		    "path and query, not in the host");
	for (p = u; *p != '\0'; p++) {
		if (*p == '{') {
			if (strncmp(p, "{subject}", 9) == 0) {
				subj = true;
				p += 8;
			} else if (strncmp(p, "{item}", 6) == 0)
				p += 5;
			else
				return spec_err(err, errlen, "\"endpoint\": the only placeholders "
				    "are {subject} and {item}");
		} else if (*p == '}')
			return spec_err(err, errlen, "\"endpoint\": the only placeholders are "
			    "{subject} and {item}");
	}
	if (!subj)
		return spec_err(err, errlen, "\"endpoint\" must contain {subject}");
	return 0;
}

static int
spec_format(struct adapter *ad, const msgpack_object *spec, const struct src_ops **ops,
    char *err, size_t errlen)
{
	const msgpack_object	*o;
	const char *const	*e;
	char			 b[64];
	size_t			 i;

	if ((o = mpk_get(spec, "format")) == NULL)
		return spec_err(err, errlen, "\"format\" is missing");
	for (i = 0; i < sizeof(src_formats) / sizeof(src_formats[0]); i++)
		if (mpk_str_eq(o, src_formats[i].name))
			break;
	if (i == sizeof(src_formats) / sizeof(src_formats[0]))
		return spec_err(err, errlen, "\"format\" must be json, xml, csv, fixed or msgpack, "
		    "not \"%s\"", show(o, b, sizeof(b)));
	if (src_formats[i].ops == NULL)
		return spec_err(err, errlen, "format \"%s\" has no translator in this gateway; "
		    "use json", src_formats[i].name);
	ad->ad_format = src_formats[i].fmt;
	*ops = src_formats[i].ops;

	if ((o = mpk_get(spec, "encoding")) == NULL)
		snprintf(ad->ad_encoding, sizeof(ad->ad_encoding), "utf-8");
	else if (!in_list(encodings, o) ||
	    mpk_obj_str(o, ad->ad_encoding, sizeof(ad->ad_encoding)) != 0)
		return spec_err(err, errlen, "\"encoding\" must be utf-8, gbk or gb18030");
	for (e = (*ops)->so_encodings; *e != NULL; e++)
		if (strcmp(*e, ad->ad_encoding) == 0)
			return 0;
	return spec_err(err, errlen, "format %s cannot be read as %s%s", (*ops)->so_name,
	    ad->ad_encoding, ad->ad_format == SRC_JSON ? " (JSON is always utf-8)" : "");
}

static int
spec_record(struct adapter *ad, const msgpack_object *spec, const struct src_ops *ops,
    char *err, size_t errlen)
{
	const msgpack_object	*o, *l, *k;
	char			 why[512];

	if ((o = mpk_get(spec, "record")) == NULL)
		return 0;
	if (o->type != MSGPACK_OBJECT_MAP)
		return spec_err(err, errlen, "\"record\" must be a map with \"key\" (and \"list\")");
	if (check_keys(o, record_keys, "\"record\"", err, errlen) != 0)
		return -1;
	if ((k = mpk_get(o, "key")) == NULL)
		return spec_err(err, errlen, "\"record\" needs \"key\", the selector of the "
		    "subject in each record");
	if (selector_check(ops, SRC_SEL_KEY, k, why, sizeof(why)) != 0)
		return spec_err(err, errlen, "\"record\": \"key\": %s", why);
	mpk_obj_str(k, ad->ad_record.rs_key, sizeof(ad->ad_record.rs_key));
	if ((l = mpk_get(o, "list")) != NULL) {
		if (selector_check(ops, SRC_SEL_LIST, l, why, sizeof(why)) != 0)
			return spec_err(err, errlen, "\"record\": \"list\": %s", why);
		mpk_obj_str(l, ad->ad_record.rs_list, sizeof(ad->ad_record.rs_list));
	} else if (ops->so_check(SRC_SEL_LIST, "", why, sizeof(why)) != 0)
		return spec_err(err, errlen, "\"record\" needs \"list\": %s", why);
	ad->ad_record.rs_set = true;
	return 0;
}

/* XPath prefixes: "namespaces": {"m": "urn:..."}, for the xml format only. */
static int
spec_namespaces(struct adapter *ad, const msgpack_object *spec, char *err, size_t errlen)
{
	const msgpack_object	*o, *k, *v;
	char			 b[64];
	uint32_t		 i, j;

	if ((o = mpk_get(spec, "namespaces")) == NULL)
		return 0;
	if (ad->ad_format != SRC_XML)
		return spec_err(err, errlen, "\"namespaces\" is only for the xml format");
	if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size > SRC_NS_MAX)
		return spec_err(err, errlen, "\"namespaces\" must be a map of at most %d "
		    "prefixes to namespace URIs", SRC_NS_MAX);
	for (i = 0; i < o->via.map.size; i++) {
		k = &o->via.map.ptr[i].key;
		v = &o->via.map.ptr[i].val;
		if (!id_ok(k) || memchr(k->via.str.ptr, '.', k->via.str.size) != NULL ||
		    (k->via.str.ptr[0] >= '0' && k->via.str.ptr[0] <= '9'))
			return spec_err(err, errlen, "\"namespaces\": \"%s\" is not a usable "
			    "prefix (a-z, 0-9, _ and -, starting with a letter)",
			    show(k, b, sizeof(b)));
		if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 ||
		    !text_ok(v->via.str.ptr, v->via.str.size) ||
		    mpk_obj_str(v, ad->ad_ns[i].ns_uri, sizeof(ad->ad_ns[i].ns_uri)) != 0)
			return spec_err(err, errlen, "\"namespaces\": the URI of \"%s\" must be "
			    "printable text of 1 to %d bytes", show(k, b, sizeof(b)),
			    LB_SEL_MAX - 1);
		for (j = 0; j < i; j++)
			if (str_eqn(&o->via.map.ptr[j].key, k->via.str.ptr, k->via.str.size))
				return spec_err(err, errlen, "\"namespaces\" has the prefix "
				    "\"%s\" twice", show(k, b, sizeof(b)));
		mpk_obj_str(k, ad->ad_ns[i].ns_prefix, sizeof(ad->ad_ns[i].ns_prefix));
	}
	ad->ad_nns = o->via.map.size;
	return 0;
}

/* "delimiter": one printable ASCII character other than '"', for csv only. */
static int
spec_delimiter(struct adapter *ad, const msgpack_object *spec, char *err, size_t errlen)
{
	const msgpack_object	*o;
	char			 c;

	ad->ad_delim = ',';
	if ((o = mpk_get(spec, "delimiter")) == NULL)
		return 0;
	if (ad->ad_format != SRC_CSV)
		return spec_err(err, errlen, "\"delimiter\" is only for the csv format");
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size != 1 ||
	    (c = o->via.str.ptr[0]) == '"' || c == '\r' || c == '\n' ||
	    (c != '\t' && (c < 0x20 || c > 0x7e)))
		return spec_err(err, errlen, "\"delimiter\" must be one ASCII character "
		    "(a tab or a printable one other than '\"')");
	ad->ad_delim = c;
	return 0;
}

int
src_decode(const char *enc, const void *in, size_t len, char **out, size_t *outlen,
    char *err, size_t errlen)
{
	iconv_t	 cd = (iconv_t)-1;
	char	*buf = NULL, *ip = (char *)(uintptr_t)in, *op;
	size_t	 il = len, ol, cap;
	int	 ret = -1;

	*out = NULL;
	*outlen = 0;
	/* GBK and GB18030 characters take at most 4 bytes; in UTF-8 at most 4 too. */
	if (len > LB_DEPT_BODY_MAX) {
		snprintf(err, errlen, "the answer is larger than %d bytes", LB_DEPT_BODY_MAX);
		return -1;
	}
	cap = len * 2 + 1;
	if ((buf = malloc(cap)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (strcmp(enc, "utf-8") == 0) {
		if (!utf8_valid(in, len)) {
			snprintf(err, errlen, "the answer is not valid UTF-8 (or holds a NUL)");
			goto done;
		}
		memcpy(buf, in, len);
		op = buf + len;
	} else {
		if ((cd = iconv_open("UTF-8", strcmp(enc, "gbk") == 0 ? "GBK" : "GB18030")) ==
		    (iconv_t)-1) {
			snprintf(err, errlen, "this system cannot decode %s", enc);
			goto done;
		}
		op = buf;
		ol = cap - 1;
		if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) {
			snprintf(err, errlen, "the answer is not valid %s text%s", enc,
			    errno == EINVAL ? " (it ends inside a character)" : "");
			goto done;
		}
		if (memchr(buf, '\0', (size_t)(op - buf)) != NULL) {
			snprintf(err, errlen, "the answer holds a NUL character");
			goto done;
		}
	}
	*op = '\0';
	*outlen = (size_t)(op - buf);
	*out = buf;
	buf = NULL;
	ret = 0;
done:
	if (cd != (iconv_t)-1)
		iconv_close(cd);
	free(buf);
	return ret;
}

int
adapter_parse(const msgpack_object *spec, struct adapter **out, char *err, size_t errlen)
{
	struct adapter		*ad = NULL;
	const struct src_ops	*ops = NULL;
	const msgpack_object	*o;
	int64_t			 t;
	int			 ret = -1;

	*out = NULL;
	if (spec == NULL || spec->type != MSGPACK_OBJECT_MAP)
		return spec_err(err, errlen, "an adapter spec must be a map (a JSON object)");
	if (check_keys(spec, spec_keys, "the spec", err, errlen) != 0)
		return -1;
	if ((ad = calloc(1, sizeof(*ad))) == NULL) {
		spec_err(err, errlen, "out of memory");
		goto done;
	}
	if (spec_id(spec, "id", true, ad->ad_id, err, errlen) != 0 ||
	    spec_id(spec, "dept", true, ad->ad_dept, err, errlen) != 0 ||
	    spec_items(ad, spec, err, errlen) != 0 ||
	    spec_endpoint(ad, spec, err, errlen) != 0 ||
	    spec_format(ad, spec, &ops, err, errlen) != 0 ||
	    spec_record(ad, spec, ops, err, errlen) != 0 ||
	    spec_namespaces(ad, spec, err, errlen) != 0 ||
	    spec_delimiter(ad, spec, err, errlen) != 0)
		goto done;

	ad->ad_timeout_ms = TIMEOUT_DEFAULT;
	if ((o = mpk_get(spec, "timeout_ms")) != NULL) {
		if (mpk_obj_i64(o, &t) != 0 || t < 1 || t > TIMEOUT_MAX) {
			spec_err(err, errlen, "\"timeout_ms\" must be an integer from 1 to %d",
			    TIMEOUT_MAX);
			goto done;
		}
		ad->ad_timeout_ms = (unsigned)t;
	}
	snprintf(ad->ad_seal, sizeof(ad->ad_seal), "%s", ad->ad_dept);
	if (spec_id(spec, "seal", false, ad->ad_seal, err, errlen) != 0)
		goto done;
	if ((o = mpk_get(spec, "description")) != NULL &&
	    (o->type != MSGPACK_OBJECT_STR || o->via.str.size > SPEC_DESC_MAX ||
	    !utf8_valid(o->via.str.ptr, o->via.str.size))) {
		spec_err(err, errlen, "\"description\" must be UTF-8 text of at most %d bytes",
		    SPEC_DESC_MAX);
		goto done;
	}

	if ((ad->ad_map = calloc(1, sizeof(*ad->ad_map))) == NULL ||
	    (ad->ad_map->mp_zone = msgpack_zone_new(4096)) == NULL) {
		spec_err(err, errlen, "out of memory");
		goto done;
	}
	ad->ad_map->mp_ops = ops;
	if ((o = mpk_get(spec, "mapping")) == NULL) {
		spec_err(err, errlen, "\"mapping\" is missing");
		goto done;
	}
	if (mapping_compile(ad, o, err, errlen) != 0)
		goto done;

	if (mpk_pack_alloc(spec, &ad->ad_spec, &ad->ad_spec_len) != 0) {
		spec_err(err, errlen, "the spec holds values without a canonical msgpack form "
		    "(duplicate keys, non-string keys or fractional numbers)");
		goto done;
	}
	*out = ad;
	ad = NULL;
	ret = 0;
done:
	adapter_free(ad);
	return ret;
}

void
adapter_free(struct adapter *ad)
{
	if (ad == NULL)
		return;
	if (ad->ad_map != NULL) {
		if (ad->ad_map->mp_zone != NULL)
			msgpack_zone_free(ad->ad_map->mp_zone);
		free(ad->ad_map);
	}
	free(ad->ad_spec);
	free(ad);
}

bool
adapter_serves(const struct adapter *ad, const char *item)
{
	size_t	i;

	for (i = 0; i < ad->ad_nitems; i++)
		if (strcmp(ad->ad_items[i], item) == 0)
			return true;
	return false;
}

/* Appends s percent-encoded (RFC 3986: unreserved characters stay). */
static int
pct_append(char *buf, size_t bufsz, size_t *o, const char *s)
{
	static const char	hex[] = "0123456789ABCDEF";
	unsigned char		c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			if (bufsz - *o < 2)
				return -1;
			buf[(*o)++] = (char)c;
		} else {
			if (bufsz - *o < 4)
				return -1;
			buf[(*o)++] = '%';
			buf[(*o)++] = hex[c >> 4];
			buf[(*o)++] = hex[c & 0x0f];
		}
	}
	return 0;
}

int
adapter_url(const struct adapter *ad, const char *item, const char *subject, char *buf,
    size_t bufsz)
{
	const char	*p;
	size_t		 o = 0, slen;

	if (bufsz == 0)
		return -1;
	buf[0] = '\0';
	if (item == NULL || subject == NULL || !adapter_serves(ad, item))
		return -1;
	slen = strlen(subject);
	if (slen == 0 || slen >= LB_SUBJECT_MAX)
		return -1;
	for (p = ad->ad_endpoint; *p != '\0';) {
		if (strncmp(p, "{subject}", 9) == 0) {
			if (pct_append(buf, bufsz, &o, subject) != 0)
				goto toolong;
			p += 9;
		} else if (strncmp(p, "{item}", 6) == 0) {
			if (pct_append(buf, bufsz, &o, item) != 0)
				goto toolong;
			p += 6;
		} else {
			if (bufsz - o < 2)
				goto toolong;
			buf[o++] = *p++;
		}
	}
	buf[o] = '\0';
	return 0;
toolong:
	buf[0] = '\0';
	return -1;
}

const char *
src_format_name(enum src_format f)
{
	size_t	i;

	for (i = 0; i < sizeof(src_formats) / sizeof(src_formats[0]); i++)
		if (src_formats[i].fmt == f)
			return src_formats[i].name;
	return "unknown";
}

/*
 * Translation.
 */

static const struct tpl_item *
mapping_item(const struct mapping *mp, const char *item)
{
	size_t	i;

	if (mp == NULL)
		return NULL;
	for (i = 0; i < mp->mp_nitems; i++)
		if (strcmp(mp->mp_items[i].ti_item, item) == 0)
			return &mp->mp_items[i];
	return NULL;
}

/* 1 with *out set, 0 when absent and optional, -1 with the error in tc_err. */
static int
tpl_eval_value(struct tctx *t, const struct tpl_node *n, msgpack_object *out)
{
	struct src_value	v;
	char			why[256];
	int			r;

	if (n->tn_src == NULL)
		v = n->tn_const;
	else {
		memset(&v, 0, sizeof(v));
		r = t->tc_ops->so_get(t->tc_h, n->tn_src, &v, why, sizeof(why));
		if (r < 0) {
			snprintf(t->tc_err, t->tc_errlen, "field \"%s\" (source %s): %s",
			    n->tn_path, n->tn_src, why);
			return -1;
		}
		if (r == 0)
			goto absent;
	}
	if ((r = value_convert(n, &v, t->tc_zone, out, why, sizeof(why))) < 0) {
		snprintf(t->tc_err, t->tc_errlen, "field \"%s\" (source %s): %s", n->tn_path,
		    n->tn_src != NULL ? n->tn_src : "constant", why);
		return -1;
	}
	if (r == 1)
		return 1;
absent:
	if (n->tn_required) {
		snprintf(t->tc_err, t->tc_errlen, "required field \"%s\" (source %s) is missing "
		    "from the answer", n->tn_path, n->tn_src != NULL ? n->tn_src : "constant");
		return -1;
	}
	return 0;
}

/* Builds a map node; nested maps are always present, even when empty. */
static int
tpl_build_map(struct tctx *t, const struct tpl_node *n, msgpack_object *out)
{
	const struct tpl_node	*k;
	struct mpk_map		 m;
	msgpack_object		 v, key;
	uint32_t		 i;
	int			 r;

	mpk_map_init(&m, t->tc_zone, n->tn_nkids);
	for (i = 0; i < n->tn_nkids; i++) {
		k = &n->tn_kids[i];
		if (k->tn_kind == TPL_MAP)
			r = tpl_build_map(t, k, &v) == 0 ? 1 : -1;
		else
			r = tpl_eval_value(t, k, &v);
		if (r < 0)
			return -1;
		if (r == 1) {
			key = mpk_strdup(t->tc_zone, k->tn_key, strlen(k->tn_key));
			mpk_map_put(&m, key.via.str.ptr, v);
		}
	}
	*out = m.mm_obj;
	return 0;
}

/* The document contract (DESIGN §6), checked on what was actually built. */
static enum lb_err
doc_check(const struct adapter *ad, const char *item, const char *subject,
    const msgpack_object *doc, char *err, size_t errlen)
{
	const msgpack_object	*holder, *issuer, *o;

	if (!mpk_str_eq(mpk_get(doc, "type"), item)) {
		snprintf(err, errlen, "the document's type is not \"%s\"", item);
		return LB_E_DEPARTMENT_BAD_RESPONSE;
	}
	if ((o = mpk_get(doc, "number")) == NULL) {
		snprintf(err, errlen, "the answer has no certificate number (field \"number\")");
		return LB_E_DEPARTMENT_BAD_RESPONSE;
	}
	if ((o = mpk_get(doc, "issued")) == NULL || o->type != MSGPACK_OBJECT_STR) {
		snprintf(err, errlen, "the answer has no date of issue (field \"issued\")");
		return LB_E_DEPARTMENT_BAD_RESPONSE;
	}
	holder = mpk_get(doc, "holder");
	if ((o = mpk_get(holder, "id")) == NULL || o->type != MSGPACK_OBJECT_STR) {
		snprintf(err, errlen, "the answer names no holder (field \"holder.id\")");
		return LB_E_DEPARTMENT_BAD_RESPONSE;
	}
	if (!mpk_str_eq(o, subject)) {
		snprintf(err, errlen, "the answer is about another person: holder.id is not "
		    "the requested subject");
		return LB_E_SUBJECT_MISMATCH;
	}
	issuer = mpk_get(doc, "issuer");
	if (!mpk_str_eq(mpk_get(issuer, "dept"), ad->ad_dept)) {
		snprintf(err, errlen, "the document's issuer.dept is not the adapter's "
		    "department \"%s\"", ad->ad_dept);
		return LB_E_DEPARTMENT_BAD_RESPONSE;
	}
	if ((o = mpk_get(doc, "fields")) == NULL || o->type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "the document has no fields map");
		return LB_E_DEPARTMENT_BAD_RESPONSE;
	}
	return LB_OK;
}

enum lb_err
translate(const struct adapter *ad, const char *item, const char *subject, const void *body,
    size_t len, msgpack_zone *z, msgpack_object *doc, char *err, size_t errlen)
{
	const struct tpl_item	*ti;
	const struct src_ops	*ops;
	struct tctx		 t;
	msgpack_object		 hid, o;
	enum lb_err		 e;
	void			*h = NULL;
	int			 r;

	if (errlen > 0)
		err[0] = '\0';
	if ((ti = mapping_item(ad->ad_map, item)) == NULL) {
		snprintf(err, errlen, "adapter \"%s\" does not serve item \"%s\"", ad->ad_id, item);
		return LB_E_NO_ADAPTER;
	}
	if (len > LB_DEPT_BODY_MAX) {
		snprintf(err, errlen, "the answer is larger than %d bytes", LB_DEPT_BODY_MAX);
		return LB_E_DEPARTMENT_BAD_RESPONSE;
	}
	ops = ad->ad_map->mp_ops;
	if ((e = ops->so_open(body, len, ad, item, subject, &h, err, errlen)) != LB_OK)
		return e;
	memset(&t, 0, sizeof(t));
	t.tc_ops = ops;
	t.tc_h = h;
	t.tc_zone = z;
	t.tc_err = err;
	t.tc_errlen = errlen;

	/*
	 * The holder comes first: an answer about someone else is reported as
	 * such, whatever else is wrong with it.
	 */
	e = LB_E_DEPARTMENT_BAD_RESPONSE;
	if ((r = tpl_eval_value(&t, ti->ti_holder_id, &hid)) < 0)
		goto done;
	if (r == 0) {
		snprintf(err, errlen, "the answer names no holder (field \"holder.id\", source %s)",
		    ti->ti_holder_id->tn_src);
		goto done;
	}
	if (!mpk_str_eq(&hid, subject)) {
		snprintf(err, errlen, "the answer is about another person: holder.id is not "
		    "the requested subject");
		e = LB_E_SUBJECT_MISMATCH;
		goto done;
	}
	if (tpl_build_map(&t, &ti->ti_root, &o) != 0)
		goto done;
	if ((e = doc_check(ad, item, subject, &o, err, errlen)) != LB_OK)
		goto done;
	*doc = o;
done:
	ops->so_close(h);
	return e;
}
