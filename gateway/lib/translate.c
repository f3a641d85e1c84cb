/*
 * translate.c - the template engine: compiles the "mapping" of an adapter
 * spec into one template tree per item, and translates department answers
 * into canonical documents with it (docs/contract.md §6; docs/formats.md).
 *
 * adapter_parse (translate_spec.c) hands the mapping over once, when a
 * spec is loaded.  Translating an answer walks the item's tree and asks
 * the answer's source format (translate_json.c, ...) for the value each
 * selector names, through struct src_ops; translate_conv.c converts the
 * value as the rule says.  The engine knows documents but no source
 * syntax; a format knows its syntax but nothing about documents.
 *
 * Compiled templates live in a msgpack_zone owned by the mapping, so an
 * adapter is freed in one step.  Documents are built in the caller's zone
 * and copy every string they hold (keys included), so a document outlives
 * both the answer and the adapter (the registry may reload adapters while
 * documents are still being sealed).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_impl.h"

#define TPL_MAX_DEPTH	8	/* document nesting; the document itself is level 1 */
#define TPL_MAX_NODES	256	/* keys in the template of one item, all levels */
#define TPL_MAX_CODES	256	/* entries in one code table */
#define TPL_KEY_MAX	64	/* document key, NUL included */
#define TPL_CODE_MAX	256	/* one code or its replacement, in bytes */

enum tpl_kind {
	TPL_VALUE = 1,		/* a constant or a field rule */
	TPL_MAP			/* a nested map of further nodes */
};

struct tpl_node {
	const char		*tn_key;	/* key in the parent map */
	const char		*tn_path;	/* dotted path from the document, for messages */
	enum tpl_kind		 tn_kind;
	/* TPL_VALUE */
	const char		*tn_src;	/* selector; NULL for a constant */
	struct src_value	 tn_const;
	bool			 tn_required;
	struct conv		 tn_conv;
	/* TPL_MAP */
	struct tpl_node		*tn_kids;
	uint32_t		 tn_nkids;
};

struct tpl_item {
	char			 ti_item[LB_ITEM_MAX];
	struct tpl_node		 ti_root;
	const struct tpl_node	*ti_holder_id;
};

/* The compiled templates, one per item, in the order of the adapter's ad_items. */
struct mapping {
	msgpack_zone		*mp_zone;
	const struct src_ops	*mp_ops;
	struct tpl_item		 mp_items[LB_MAX_ITEMS];
	size_t			 mp_nitems;
};

static const char *const rule_keys[] = {
	"src", "const", "required", "trim", "date", "codes", "default", "as", NULL
};
static const char *const doc_keys[] = {
	"type", "number", "holder", "issuer", "issued", "fields", "valid_until", NULL
};
static const char *const holder_keys[] = { "id", "name", NULL };
static const char *const issuer_keys[] = { "dept", "name", NULL };

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
	const struct src_ops	*tx_ops;
	void			*tx_h;
	msgpack_zone		*tx_zone;
	char			*tx_err;
	size_t			 tx_errlen;
};

static int	tpl_err(struct cctx *, const char *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	tpl_compile_value(struct cctx *, const msgpack_object *, struct tpl_node *, int);

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

static char *
tpl_strdup(msgpack_zone *z, const char *s, size_t n)
{
	char	*p = mpk_zalloc(z, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/*
 * Template compilation.
 */

/* Makes n the constant string o (non-empty), copied into the mapping's zone. */
static void
tpl_const_str(struct cctx *c, struct tpl_node *n, const msgpack_object *o)
{
	n->tn_const.vl_type = SV_STR;
	n->tn_const.vl_str = tpl_strdup(c->cc_zone, o->via.str.ptr, o->via.str.size);
	n->tn_const.vl_len = o->via.str.size;
}

static void
tpl_const_int(struct tpl_node *n, int64_t iv)
{
	n->tn_const.vl_type = SV_INT;
	n->tn_const.vl_int = iv;
}

/* A code, its replacement or a default: non-empty UTF-8 shorter than TPL_CODE_MAX. */
static bool
tpl_code_ok(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_STR && o->via.str.size > 0 &&
	    o->via.str.size < TPL_CODE_MAX && utf8_valid(o->via.str.ptr, o->via.str.size);
}

static int
tpl_compile_codes(struct cctx *c, const msgpack_object *o, struct tpl_node *n)
{
	struct conv_code	*codes;
	const msgpack_object	*k, *v;
	uint32_t		 i;

	if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size == 0 ||
	    o->via.map.size > TPL_MAX_CODES)
		return tpl_err(c, n->tn_path, "\"codes\" must be a map of 1 to %d codes",
		    TPL_MAX_CODES);
	codes = mpk_zalloc(c->cc_zone, sizeof(*codes) * o->via.map.size);
	for (i = 0; i < o->via.map.size; i++) {
		k = &o->via.map.ptr[i].key;
		v = &o->via.map.ptr[i].val;
		if (!tpl_code_ok(k))
			return tpl_err(c, n->tn_path, "every code in \"codes\" must be a non-empty "
			    "UTF-8 string shorter than %d bytes", TPL_CODE_MAX);
		if (spec_key_repeats(o, i))
			return tpl_err(c, n->tn_path, "\"codes\" lists a code twice");
		if (!tpl_code_ok(v))
			return tpl_err(c, n->tn_path, "every value in \"codes\" must be a non-empty "
			    "UTF-8 string shorter than %d bytes", TPL_CODE_MAX);
		codes[i].cd_code = tpl_strdup(c->cc_zone, k->via.str.ptr, k->via.str.size);
		codes[i].cd_code_len = k->via.str.size;
		codes[i].cd_value = tpl_strdup(c->cc_zone, v->via.str.ptr, v->via.str.size);
	}
	n->tn_conv.co_codes = codes;
	n->tn_conv.co_ncodes = o->via.map.size;
	return 0;
}

static int
tpl_compile_rule(struct cctx *c, const msgpack_object *o, struct tpl_node *n)
{
	const msgpack_object	*k, *v;
	msgpack_zone		*tz;
	msgpack_object		 out;
	char			 b[64], why[512];
	uint32_t		 i;
	int64_t			 iv;
	bool			 has_const = false, as_seen = false;
	int			 r;

	n->tn_kind = TPL_VALUE;
	for (i = 0; i < o->via.map.size; i++) {
		k = &o->via.map.ptr[i].key;
		v = &o->via.map.ptr[i].val;
		if (k->type != MSGPACK_OBJECT_STR)
			return tpl_err(c, n->tn_path, "the rule has a key that is not a string");
		if (!spec_key_in(rule_keys, k))
			return tpl_err(c, n->tn_path, "unknown option \"%s\" (a rule takes src, "
			    "const, required, trim, date, codes, default and as)",
			    spec_show(k, b, sizeof(b)));
		if (spec_key_repeats(o, i))
			return tpl_err(c, n->tn_path, "the option \"%s\" is given twice",
			    spec_show(k, b, sizeof(b)));
		if (mpk_str_eq(k, "src")) {
			if (spec_selector_check(c->cc_ops, SRC_SEL_FIELD, v, why, sizeof(why)) != 0)
				return tpl_err(c, n->tn_path, "%s", why);
			n->tn_src = tpl_strdup(c->cc_zone, v->via.str.ptr, v->via.str.size);
		} else if (mpk_str_eq(k, "const")) {
			has_const = true;
			if (v->type == MSGPACK_OBJECT_STR && v->via.str.size > 0)
				tpl_const_str(c, n, v);
			else if (mpk_obj_i64(v, &iv) == 0)
				tpl_const_int(n, iv);
			else
				return tpl_err(c, n->tn_path, "\"const\" must be a non-empty string "
				    "or an integer");
		} else if (mpk_str_eq(k, "required") || mpk_str_eq(k, "trim")) {
			if (v->type != MSGPACK_OBJECT_BOOLEAN)
				return tpl_err(c, n->tn_path, "\"%s\" must be true or false",
				    spec_show(k, b, sizeof(b)));
			if (mpk_str_eq(k, "required"))
				n->tn_required = v->via.boolean;
			else
				n->tn_conv.co_trim = v->via.boolean;
		} else if (mpk_str_eq(k, "date")) {
			if (v->type != MSGPACK_OBJECT_STR || !conv_date_named(v->via.str.ptr,
			    v->via.str.size, &n->tn_conv.co_date))
				return tpl_err(c, n->tn_path, "unknown date format \"%s\"",
				    spec_show(v, b, sizeof(b)));
		} else if (mpk_str_eq(k, "codes")) {
			if (tpl_compile_codes(c, v, n) != 0)
				return -1;
		} else if (mpk_str_eq(k, "default")) {
			if (!tpl_code_ok(v))
				return tpl_err(c, n->tn_path, "\"default\" must be a non-empty "
				    "UTF-8 string shorter than %d bytes", TPL_CODE_MAX);
			n->tn_conv.co_default = tpl_strdup(c->cc_zone, v->via.str.ptr,
			    v->via.str.size);
		} else if (mpk_str_eq(k, "as")) {
			as_seen = true;
			if (mpk_str_eq(v, "int"))
				n->tn_conv.co_as_int = true;
			else if (!mpk_str_eq(v, "string"))
				return tpl_err(c, n->tn_path, "\"as\" must be \"int\" or \"string\"");
		}
	}
	if (n->tn_src != NULL && has_const)
		return tpl_err(c, n->tn_path, "a rule takes either \"src\" or \"const\", not both");
	if (n->tn_conv.co_default != NULL && n->tn_conv.co_ncodes == 0)
		return tpl_err(c, n->tn_path, "\"default\" needs \"codes\"");
	if (n->tn_conv.co_as_int && n->tn_conv.co_date != CONV_DATE_NONE)
		return tpl_err(c, n->tn_path, "\"date\" makes a string; it cannot be combined "
		    "with \"as\": \"int\"");
	/* An integer constant stays an integer unless the rule says otherwise. */
	if (has_const && n->tn_const.vl_type == SV_INT && !as_seen)
		n->tn_conv.co_as_int = true;
	if (has_const) {
		/* Run the conversions now, so a bad constant is a spec error. */
		if ((tz = msgpack_zone_new(256)) == NULL)
			return tpl_err(c, n->tn_path, "out of memory");
		r = conv_value(&n->tn_conv, &n->tn_const, tz, &out, why, sizeof(why));
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
	uint32_t		 i;

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
		if (!spec_name_ok(k, TPL_KEY_MAX))
			return tpl_err(c, n->tn_path, "the key \"%s\" is not a field name (a-z "
			    "first, then a-z, 0-9 or \"_\", at most %d characters)",
			    spec_show(k, b, sizeof(b)), TPL_KEY_MAX - 1);
		if (spec_key_repeats(o, i))
			return tpl_err(c, n->tn_path, "the key \"%s\" appears twice",
			    spec_show(k, b, sizeof(b)));
		kid->tn_key = tpl_strdup(c->cc_zone, k->via.str.ptr, k->via.str.size);
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
		tpl_const_str(c, n, o);
		return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		if (mpk_obj_i64(o, &iv) != 0)
			return tpl_err(c, n->tn_path, "the constant is out of range");
		n->tn_kind = TPL_VALUE;
		tpl_const_int(n, iv);
		n->tn_conv.co_as_int = true;
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
	msgpack_object	k;
	uint32_t	i;
	size_t		j;

	for (i = 0; i < n->tn_nkids; i++) {
		k = mpk_str(n->tn_kids[i].tn_key);
		if (!spec_key_in(allowed, &k))
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
	if (n->tn_conv.co_date != CONV_DATE_NONE)
		return 0;
	if (n->tn_src == NULL && n->tn_const.vl_type == SV_STR &&
	    n->tn_conv.co_ncodes == 0 && !n->tn_conv.co_as_int &&
	    conv_date_iso(CONV_DATE_DASH, n->tn_const.vl_str, n->tn_const.vl_len, out))
		return 0;
	return tpl_err(c, n->tn_path, "needs a \"date\" conversion: document dates are "
	    "YYYY-MM-DD");
}

/* True when n is the string constant s, unchanged by conversions. */
static bool
tpl_const_is(const struct tpl_node *n, const char *s)
{
	return n->tn_kind == TPL_VALUE && n->tn_src == NULL && n->tn_const.vl_type == SV_STR &&
	    n->tn_conv.co_ncodes == 0 && !n->tn_conv.co_as_int &&
	    strcmp(n->tn_const.vl_str, s) == 0;
}

/*
 * The holder or the issuer of a document: a map of the allowed keys in
 * which required[0] (id, dept) and "name" are values.  Returns the node of
 * required[0], NULL after an error.
 */
static const struct tpl_node *
tpl_party(struct cctx *c, const struct tpl_node *root, const char *key,
    const char *const *allowed, const char *const *required, const char *what)
{
	const struct tpl_node	*m = tpl_kid(root, key), *k;

	if (tpl_want_map(c, m) != 0 || tpl_shape(c, m, allowed, required, what) != 0)
		return NULL;
	k = tpl_kid(m, required[0]);
	if (tpl_want_value(c, k) != 0 || tpl_want_value(c, tpl_kid(m, "name")) != 0)
		return NULL;
	return k;
}

/*
 * Checks a compiled template against the document contract (docs/contract.md §6), so
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
	const struct tpl_node	*root = &ti->ti_root, *id, *dept;

	if (tpl_shape(c, root, doc_keys, doc_req, "a document has type, number, holder, "
	    "issuer, issued, fields and valid_until") != 0)
		return -1;
	if (!tpl_const_is(tpl_kid(root, "type"), c->cc_item))
		return tpl_err(c, "type", "must be the constant \"%s\"", c->cc_item);
	if (tpl_want_value(c, tpl_kid(root, "number")) != 0 ||
	    tpl_want_date(c, tpl_kid(root, "issued")) != 0 ||
	    tpl_want_date(c, tpl_kid(root, "valid_until")) != 0 ||
	    tpl_want_map(c, tpl_kid(root, "fields")) != 0)
		return -1;

	if ((id = tpl_party(c, root, "holder", holder_keys, holder_req,
	    "a holder has id and name")) == NULL)
		return -1;
	if (id->tn_src == NULL)
		return tpl_err(c, id->tn_path, "must come from the answer (a rule with \"src\")");
	if (id->tn_conv.co_as_int)
		return tpl_err(c, id->tn_path, "must be a string; remove \"as\": \"int\"");
	ti->ti_holder_id = id;

	if ((dept = tpl_party(c, root, "issuer", issuer_keys, issuer_req,
	    "an issuer has dept and name")) == NULL)
		return -1;
	if (dept->tn_src == NULL && dept->tn_conv.co_ncodes == 0 &&
	    !tpl_const_is(dept, c->cc_dept))
		return tpl_err(c, dept->tn_path, "must be the adapter's department \"%s\"",
		    c->cc_dept);
	return 0;
}

int
mapping_compile(struct adapter *ad, const msgpack_object *m, const struct src_ops *ops,
    char *err, size_t errlen)
{
	struct mapping		*mp;
	struct tpl_item		*ti;
	struct cctx		 c;
	const msgpack_object	*k, *v;
	char			 b[64];
	uint32_t		 i;
	size_t			 j;

	if ((ad->ad_map = mp = calloc(1, sizeof(*mp))) == NULL ||
	    (mp->mp_zone = msgpack_zone_new(4096)) == NULL)
		return spec_err(err, errlen, "out of memory");
	mp->mp_ops = ops;
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
			    "is not in \"items\"", spec_show(k, b, sizeof(b)));
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

void
mapping_free(struct mapping *mp)
{
	if (mp == NULL)
		return;
	if (mp->mp_zone != NULL)
		msgpack_zone_free(mp->mp_zone);
	free(mp);
}

/*
 * Translation.
 */

/* The template of item; they are compiled in the order of ad_items. */
static const struct tpl_item *
mapping_item(const struct adapter *ad, const char *item)
{
	int	i;

	if ((i = adapter_item(ad, item)) < 0 || ad->ad_map == NULL ||
	    (size_t)i >= ad->ad_map->mp_nitems)
		return NULL;
	return &ad->ad_map->mp_items[i];
}

/* 1 with *out set, 0 when absent and optional, -1 with the error in tx_err. */
static int
tpl_eval_value(struct tctx *t, const struct tpl_node *n, msgpack_object *out)
{
	struct src_value	 v;
	const char		*src = n->tn_src != NULL ? n->tn_src : "constant";
	char			 why[256];
	int			 r = 1;

	if (n->tn_src == NULL)
		v = n->tn_const;
	else {
		memset(&v, 0, sizeof(v));
		r = t->tx_ops->so_get(t->tx_h, n->tn_src, &v, why, sizeof(why));
	}
	if (r == 1)
		r = conv_value(&n->tn_conv, &v, t->tx_zone, out, why, sizeof(why));
	if (r < 0) {
		snprintf(t->tx_err, t->tx_errlen, "field \"%s\" (source %s): %s", n->tn_path,
		    src, why);
		return -1;
	}
	if (r == 0 && n->tn_required) {
		snprintf(t->tx_err, t->tx_errlen, "required field \"%s\" (source %s) is missing "
		    "from the answer", n->tn_path, src);
		return -1;
	}
	return r;
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

	mpk_map_init(&m, t->tx_zone, n->tn_nkids);
	for (i = 0; i < n->tn_nkids; i++) {
		k = &n->tn_kids[i];
		if (k->tn_kind == TPL_MAP)
			r = tpl_build_map(t, k, &v) == 0 ? 1 : -1;
		else
			r = tpl_eval_value(t, k, &v);
		if (r < 0)
			return -1;
		if (r == 1) {
			key = mpk_strdup(t->tx_zone, k->tn_key, strlen(k->tn_key));
			mpk_map_put(&m, key.via.str.ptr, v);
		}
	}
	*out = m.mm_obj;
	return 0;
}

static enum lb_err
doc_not_subject(char *err, size_t errlen)
{
	snprintf(err, errlen, "the answer is about another person: holder.id is not the "
	    "requested subject");
	return LB_E_SUBJECT_MISMATCH;
}

/* The document contract (docs/contract.md §6), checked on what was actually built. */
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
	if (!mpk_str_eq(o, subject))
		return doc_not_subject(err, errlen);
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
	if ((ti = mapping_item(ad, item)) == NULL) {
		snprintf(err, errlen, "adapter \"%s\" does not serve item \"%s\"", ad->ad_id, item);
		return LB_E_NO_ADAPTER;
	}
	/* Every format refuses these two alike, so the engine does it for them. */
	if (len > LB_DEPT_BODY_MAX) {
		snprintf(err, errlen, "the answer is larger than %d bytes", LB_DEPT_BODY_MAX);
		return LB_E_DEPARTMENT_BAD_RESPONSE;
	}
	if (len == 0) {
		snprintf(err, errlen, "the answer is empty");
		return LB_E_DEPARTMENT_BAD_RESPONSE;
	}
	ops = ad->ad_map->mp_ops;
	if ((e = ops->so_open(body, len, ad, subject, &h, err, errlen)) != LB_OK)
		return e;
	memset(&t, 0, sizeof(t));
	t.tx_ops = ops;
	t.tx_h = h;
	t.tx_zone = z;
	t.tx_err = err;
	t.tx_errlen = errlen;

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
		e = doc_not_subject(err, errlen);
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
