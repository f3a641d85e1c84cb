/*
 * translate_spec.c - adapter specs (docs/formats.md): reading
 * and checking the spec a department registers, and the department URL of
 * one request.
 *
 * adapter_parse checks every key of the spec here and hands "mapping" to
 * the template engine (translate.c), which compiles it for the source
 * format the spec names.  A spec that does not compile is refused as a
 * whole, with one sentence for the department's developer.  The helpers
 * that read spec strings (spec_show, spec_key_in, ...) are shared with the
 * template compiler through translate_impl.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_impl.h"

#define SPEC_DESC_MAX	1024	/* the free-text "description" */
#define TIMEOUT_DEFAULT	3000
#define TIMEOUT_MAX	60000

/*
 * The source formats.  A format without ops would be known to the spec
 * syntax (docs/formats.md) but have no translator in this build.
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
static const char *const record_keys[] = { "list", "key", NULL };
static const char *const encodings[] = { "utf-8", "gbk", "gb18030", NULL };

/*
 * Reading spec strings.
 */

const char *
spec_show(const msgpack_object *o, char *buf, size_t bufsz)
{
	size_t	n;

	if (o == NULL || o->type != MSGPACK_OBJECT_STR ||
	    !conv_text_ok(o->via.str.ptr, o->via.str.size)) {
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

int
spec_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

bool
spec_key_in(const char *const *list, const msgpack_object *k)
{
	for (; *list != NULL; list++)
		if (mpk_str_eq(k, *list))
			return true;
	return false;
}

bool
spec_key_repeats(const msgpack_object *o, uint32_t i)
{
	const msgpack_object	*k = &o->via.map.ptr[i].key, *p;
	uint32_t		 j;

	for (j = 0; j < i; j++) {
		p = &o->via.map.ptr[j].key;
		if (p->type == MSGPACK_OBJECT_STR && k->type == MSGPACK_OBJECT_STR &&
		    p->via.str.size == k->via.str.size &&
		    memcmp(p->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0)
			return true;
	}
	return false;
}

/*
 * Checks that the keys of map o are strings, appear once and belong to
 * allowed.  what names the map in messages.
 */
static int
spec_keys_check(const msgpack_object *o, const char *const *allowed, const char *what,
    char *err, size_t errlen)
{
	const msgpack_object	*k;
	char			 b[64];
	uint32_t		 i;

	for (i = 0; i < o->via.map.size; i++) {
		k = &o->via.map.ptr[i].key;
		if (k->type != MSGPACK_OBJECT_STR)
			return spec_err(err, errlen, "%s has a key that is not a string", what);
		if (!spec_key_in(allowed, k))
			return spec_err(err, errlen, "%s: unknown key \"%s\"", what,
			    spec_show(k, b, sizeof(b)));
		if (spec_key_repeats(o, i))
			return spec_err(err, errlen, "%s has the key \"%s\" twice", what,
			    spec_show(k, b, sizeof(b)));
	}
	return 0;
}

/* Ids: 1 to LB_ID_MAX-1 bytes of a-z, 0-9, ".", "_", "-", starting alphanumeric. */
static bool
spec_id_ok(const msgpack_object *o)
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

bool
spec_name_ok(const msgpack_object *o, size_t max)
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

int
spec_selector_check(const struct src_ops *ops, enum src_role role, const msgpack_object *o,
    char *why, size_t whylen)
{
	char	sel[LB_SEL_MAX], fw[160];

	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= LB_SEL_MAX ||
	    !conv_text_ok(o->via.str.ptr, o->via.str.size)) {
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

/*
 * Spec fields.
 */

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
	if (!spec_id_ok(o))
		return spec_err(err, errlen, "\"%s\" must be 1 to %d characters of a-z, 0-9, "
		    "\".\", \"_\" and \"-\", starting with a letter or digit", key, LB_ID_MAX - 1);
	return mpk_obj_str(o, buf, LB_ID_MAX);
}

static int
spec_items(struct adapter *ad, const msgpack_object *spec, char *err, size_t errlen)
{
	const msgpack_object	*o, *it;
	char			 b[64];
	uint32_t		 i;

	if ((o = mpk_get(spec, "items")) == NULL)
		return spec_err(err, errlen, "\"items\" is missing");
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 ||
	    o->via.array.size > LB_MAX_ITEMS)
		return spec_err(err, errlen, "\"items\" must be a list of 1 to %d item types",
		    LB_MAX_ITEMS);
	for (i = 0; i < o->via.array.size; i++) {
		it = &o->via.array.ptr[i];
		if (!spec_name_ok(it, LB_ITEM_MAX))
			return spec_err(err, errlen, "\"items\": \"%s\" is not an item type (a-z "
			    "first, then a-z, 0-9 or \"_\", at most %d characters)",
			    spec_show(it, b, sizeof(b)), LB_ITEM_MAX - 1);
		if (mpk_obj_str(it, ad->ad_items[ad->ad_nitems], LB_ITEM_MAX) != 0)
			return spec_err(err, errlen, "\"items\" holds an unusable name");
		if (adapter_item(ad, ad->ad_items[ad->ad_nitems]) >= 0)
			return spec_err(err, errlen, "\"items\" lists \"%s\" twice",
			    ad->ad_items[ad->ad_nitems]);
		ad->ad_nitems++;
	}
	return 0;
}

/*
 * http:// or https://, a host, printable ASCII only; the placeholders
 * {subject} (required) and {item} may appear only after the host, so a
 * subject can never choose where the request goes.  The host and port are
 * what endpoint_parse reads, the parser the fan-out uses.
 */
static int
spec_endpoint(struct adapter *ad, const msgpack_object *spec, char *err, size_t errlen)
{
	const msgpack_object	*o;
	const char		*u, *host, *p;
	struct endpoint		 ep;
	char			 why[160];
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
	if (endpoint_parse(u, &ep, why, sizeof(why)) != 0)
		return spec_err(err, errlen, "\"endpoint\": %s", why);
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
		    "not \"%s\"", spec_show(o, b, sizeof(b)));
	if (src_formats[i].ops == NULL)
		return spec_err(err, errlen, "format \"%s\" has no translator in this gateway; "
		    "use json", src_formats[i].name);
	ad->ad_format = src_formats[i].fmt;
	*ops = src_formats[i].ops;

	if ((o = mpk_get(spec, "encoding")) == NULL)
		snprintf(ad->ad_encoding, sizeof(ad->ad_encoding), "utf-8");
	else if (!spec_key_in(encodings, o) ||
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
	if (spec_keys_check(o, record_keys, "\"record\"", err, errlen) != 0)
		return -1;
	if ((k = mpk_get(o, "key")) == NULL)
		return spec_err(err, errlen, "\"record\" needs \"key\", the selector of the "
		    "subject in each record");
	if (spec_selector_check(ops, SRC_SEL_KEY, k, why, sizeof(why)) != 0)
		return spec_err(err, errlen, "\"record\": \"key\": %s", why);
	mpk_obj_str(k, ad->ad_record.rs_key, sizeof(ad->ad_record.rs_key));
	if ((l = mpk_get(o, "list")) != NULL) {
		if (spec_selector_check(ops, SRC_SEL_LIST, l, why, sizeof(why)) != 0)
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
	uint32_t		 i;

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
		if (!spec_id_ok(k) || memchr(k->via.str.ptr, '.', k->via.str.size) != NULL ||
		    (k->via.str.ptr[0] >= '0' && k->via.str.ptr[0] <= '9'))
			return spec_err(err, errlen, "\"namespaces\": \"%s\" is not a usable "
			    "prefix (a-z, 0-9, _ and -, starting with a letter)",
			    spec_show(k, b, sizeof(b)));
		if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 ||
		    !conv_text_ok(v->via.str.ptr, v->via.str.size) ||
		    mpk_obj_str(v, ad->ad_ns[i].xn_uri, sizeof(ad->ad_ns[i].xn_uri)) != 0)
			return spec_err(err, errlen, "\"namespaces\": the URI of \"%s\" must be "
			    "printable text of 1 to %d bytes", spec_show(k, b, sizeof(b)),
			    LB_SEL_MAX - 1);
		if (spec_key_repeats(o, i))
			return spec_err(err, errlen, "\"namespaces\" has the prefix \"%s\" twice",
			    spec_show(k, b, sizeof(b)));
		mpk_obj_str(k, ad->ad_ns[i].xn_prefix, sizeof(ad->ad_ns[i].xn_prefix));
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

/* "timeout_ms", "seal" and "description": the keys with defaults or free text. */
static int
spec_extras(struct adapter *ad, const msgpack_object *spec, char *err, size_t errlen)
{
	const msgpack_object	*o;
	int64_t			 t;

	ad->ad_timeout_ms = TIMEOUT_DEFAULT;
	if ((o = mpk_get(spec, "timeout_ms")) != NULL) {
		if (mpk_obj_i64(o, &t) != 0 || t < 1 || t > TIMEOUT_MAX)
			return spec_err(err, errlen, "\"timeout_ms\" must be an integer from 1 "
			    "to %d", TIMEOUT_MAX);
		ad->ad_timeout_ms = (unsigned)t;
	}
	snprintf(ad->ad_seal, sizeof(ad->ad_seal), "%s", ad->ad_dept);
	if (spec_id(spec, "seal", false, ad->ad_seal, err, errlen) != 0)
		return -1;
	if ((o = mpk_get(spec, "description")) != NULL &&
	    (o->type != MSGPACK_OBJECT_STR || o->via.str.size > SPEC_DESC_MAX ||
	    !utf8_valid(o->via.str.ptr, o->via.str.size)))
		return spec_err(err, errlen, "\"description\" must be UTF-8 text of at most %d "
		    "bytes", SPEC_DESC_MAX);
	return 0;
}

int
adapter_parse(const msgpack_object *spec, struct adapter **out, char *err, size_t errlen)
{
	struct adapter		*ad = NULL;
	const struct src_ops	*ops = NULL;
	const msgpack_object	*o;
	int			 ret = -1;

	*out = NULL;
	if (spec == NULL || spec->type != MSGPACK_OBJECT_MAP)
		return spec_err(err, errlen, "an adapter spec must be a map (a JSON object)");
	if (spec_keys_check(spec, spec_keys, "the spec", err, errlen) != 0)
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
	    spec_delimiter(ad, spec, err, errlen) != 0 ||
	    spec_extras(ad, spec, err, errlen) != 0)
		goto done;
	if ((o = mpk_get(spec, "mapping")) == NULL) {
		spec_err(err, errlen, "\"mapping\" is missing");
		goto done;
	}
	if (mapping_compile(ad, o, ops, err, errlen) != 0)
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
	mapping_free(ad->ad_map);
	free(ad->ad_spec);
	free(ad);
}

int
adapter_item(const struct adapter *ad, const char *item)
{
	size_t	i;

	for (i = 0; i < ad->ad_nitems; i++)
		if (strcmp(ad->ad_items[i], item) == 0)
			return (int)i;
	return -1;
}

bool
adapter_serves(const struct adapter *ad, const char *item)
{
	return adapter_item(ad, item) >= 0;
}

/* Appends s percent-encoded (RFC 3986: unreserved characters stay). */
static int
adapter_pct_append(char *buf, size_t bufsz, size_t *o, const char *s)
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
			if (adapter_pct_append(buf, bufsz, &o, subject) != 0)
				goto toolong;
			p += 9;
		} else if (strncmp(p, "{item}", 6) == 0) {
			if (adapter_pct_append(buf, bufsz, &o, item) != 0)
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
