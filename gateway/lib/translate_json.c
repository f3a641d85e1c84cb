/*
 * translate_json.c - the JSON source format: answers are JSON objects and
 * selectors are JSON pointers (RFC 6901).
 *
 * The answer is parsed with jansson, which refuses invalid UTF-8, NUL
 * characters in strings and (with JSON_REJECT_DUPLICATES) duplicate keys,
 * so every string handed to the engine is already clean; the engine checks
 * again anyway, as it does for every format.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "translate_impl.h"

struct json_src {
	json_t	*js_root;
	json_t	*js_base;	/* the subject's record, or the root */
};

static const char *const json_encodings[] = { "utf-8", NULL };

static int
json_src_check(enum src_role role, const char *sel, char *err, size_t errlen)
{
	return src_pointer_check(role, sel, "JSON pointer", err, errlen);
}

/* One step of a JSON pointer: an object member or an array element. */
static const void *
json_step(const void *node, const char *tok, size_t len)
{
	const json_t	*j = node;
	size_t		 idx;

	if (json_is_object(j))
		return json_object_get(j, tok);
	if (json_is_array(j) && src_pointer_index(tok, len, &idx))
		return json_array_get(j, idx);
	return NULL;
}

/* Resolves a JSON pointer from j; NULL when nothing is there. */
static json_t *
json_ptr(json_t *j, const char *p)
{
	/* The walk only reads; the node it returns is j's own, as mutable as j. */
	return (json_t *)src_pointer_walk(j, p, json_step);
}

static const char *
json_kind(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a fractional number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
	default:
		return "null";
	}
}

/* What went wrong, without jansson's text, which may quote the answer. */
static const char *
json_why(const json_error_t *je)
{
	switch (json_error_code(je)) {
	case json_error_invalid_utf8:
		return "it is not valid UTF-8";
	case json_error_premature_end_of_input:
		return "it ends too early";
	case json_error_end_of_input_expected:
		return "there is more after the JSON value";
	case json_error_duplicate_key:
		return "an object has a duplicate key";
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return "a string holds a NUL character";
	case json_error_numeric_overflow:
		return "a number is out of range";
	case json_error_stack_overflow:
		return "it nests too deeply";
	case json_error_out_of_memory:
		return "out of memory";
	default:
		return "syntax error";
	}
}

/* Matches a record key against the subject: a string, or an integer's digits. */
static bool
json_key_is(const json_t *k, const char *subject)
{
	char	num[24];

	if (json_is_string(k))
		return json_string_length(k) == strlen(subject) &&
		    strcmp(json_string_value(k), subject) == 0;
	if (json_is_integer(k)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(k));
		return strcmp(num, subject) == 0;
	}
	return false;
}

static enum lb_err
json_select(struct json_src *js, const struct src_record *rs, const char *subject,
    char *err, size_t errlen)
{
	json_t		*list, *rec, *found = NULL;
	size_t		 i, nfound = 0;
	enum lb_err	 e;

	if ((list = json_ptr(js->js_root, rs->rs_list)) == NULL || !json_is_array(list)) {
		snprintf(err, errlen, "the record list \"%s\" is not an array in the answer",
		    rs->rs_list);
		return LB_E_DEPARTMENT_BAD_RESPONSE;
	}
	json_array_foreach(list, i, rec) {
		if (json_key_is(json_ptr(rec, rs->rs_key), subject)) {
			found = rec;
			nfound++;
		}
	}
	if ((e = src_record_found(nfound, err, errlen)) != LB_OK)
		return e;
	if (!json_is_object(found)) {
		snprintf(err, errlen, "the subject's record is %s, not an object",
		    json_kind(found));
		return LB_E_DEPARTMENT_BAD_RESPONSE;
	}
	js->js_base = found;
	return LB_OK;
}

static enum lb_err
json_src_open(const void *body, size_t len, const struct adapter *ad, const char *subject,
    void **hp, char *err, size_t errlen)
{
	struct json_src	*js = NULL;
	json_error_t	 je;
	const char	*b = body;
	enum lb_err	 e = LB_E_DEPARTMENT_BAD_RESPONSE;

	*hp = NULL;
	/* A byte order mark is legal in front of UTF-8 text; jansson does not skip it. */
	if (len >= 3 && memcmp(b, "\xef\xbb\xbf", 3) == 0) {
		b += 3;
		len -= 3;
	}
	/* The engine refused an empty answer; one that is only a BOM is empty too. */
	if (len == 0) {
		snprintf(err, errlen, "the answer is empty");
		return e;
	}
	if ((js = calloc(1, sizeof(*js))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return LB_E_INTERNAL;
	}
	if ((js->js_root = json_loadb(b, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	    &je)) == NULL) {
		snprintf(err, errlen, "the answer is not valid JSON: %s (line %d, column %d)",
		    json_why(&je), je.line, je.column);
		goto done;
	}
	js->js_base = js->js_root;
	if (ad->ad_record.rs_set) {
		if ((e = json_select(js, &ad->ad_record, subject, err, errlen)) != LB_OK)
			goto done;
	} else if (!json_is_object(js->js_root)) {
		snprintf(err, errlen, "the answer is %s, not a JSON object",
		    json_kind(js->js_root));
		goto done;
	}
	*hp = js;
	js = NULL;
	e = LB_OK;
done:
	if (js != NULL) {
		json_decref(js->js_root);
		free(js);
	}
	return e;
}

static int
json_src_get(void *h, const char *sel, struct src_value *v, char *err, size_t errlen)
{
	struct json_src	*js = h;
	json_t		*j;

	if ((j = json_ptr(js->js_base, sel)) == NULL || json_is_null(j))
		return 0;
	if (json_is_string(j))
		return src_value_str(v, json_string_value(j), json_string_length(j));
	if (json_is_integer(j)) {
		v->vl_type = SV_INT;
		v->vl_int = (int64_t)json_integer_value(j);
		return 1;
	}
	return src_value_unusable(json_kind(j), err, errlen);
}

static void
json_src_close(void *h)
{
	struct json_src	*js = h;

	if (js == NULL)
		return;
	json_decref(js->js_root);
	free(js);
}

const struct src_ops src_json_ops = {
	.so_name = "json",
	.so_encodings = json_encodings,
	.so_check = json_src_check,
	.so_open = json_src_open,
	.so_get = json_src_get,
	.so_close = json_src_close,
};
