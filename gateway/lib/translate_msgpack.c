/*
 * translate_msgpack.c - msgpack answers: selectors are paths written like
 * JSON pointers (RFC 6901: "/a/0/b", "~1" for "/", "~0" for "~") over maps
 * with string keys and arrays.
 *
 * The answer is decoded with mpk_unpack, which checks every container count
 * against the remaining input and bounds the nesting before allocating, so
 * a short answer cannot claim a billion elements.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_impl.h"

struct mp_src {
	msgpack_zone		*ms_zone;
	msgpack_object		 ms_root;
	const msgpack_object	*ms_base;	/* the subject's record, or the root */
};

static const char *const msgpack_encodings[] = { "utf-8", NULL };

static int
mp_src_check(enum src_role role, const char *sel, char *err, size_t errlen)
{
	return src_pointer_check(role, sel, "msgpack path", err, errlen);
}

/* One step of a path: a map value by string key or an array element. */
static const void *
mp_step(const void *node, const char *tok, size_t len)
{
	const msgpack_object	*o = node;
	size_t			 idx;

	if (o->type == MSGPACK_OBJECT_MAP)
		return mpk_get(o, tok);
	if (o->type == MSGPACK_OBJECT_ARRAY && src_pointer_index(tok, len, &idx) &&
	    idx < o->via.array.size)
		return &o->via.array.ptr[idx];
	return NULL;
}

/* Resolves a path from o; NULL when nothing is there. */
static const msgpack_object *
mp_path(const msgpack_object *o, const char *p)
{
	return src_pointer_walk(o, p, mp_step);
}

static const char *
mp_kind(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_MAP:
		return "a map";
	case MSGPACK_OBJECT_ARRAY:
		return "an array";
	case MSGPACK_OBJECT_BIN:
		return "binary data";
	case MSGPACK_OBJECT_BOOLEAN:
		return "a boolean";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return "a fractional number";
	case MSGPACK_OBJECT_EXT:
		return "an extension value";
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return o->via.u64 > INT64_MAX ? "an integer beyond 64 signed bits" : "an integer";
	default:
		return "a value of another kind";
	}
}

static bool
mp_key_is(const msgpack_object *k, const char *subject)
{
	char	num[24];

	if (k == NULL)
		return false;
	if (k->type == MSGPACK_OBJECT_STR)
		return mpk_str_eq(k, subject);
	if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		snprintf(num, sizeof(num), "%" PRIu64, k->via.u64);
		return strcmp(num, subject) == 0;
	}
	return false;
}

static int
mp_key_cmp(const void *a, const void *b)
{
	const msgpack_object	*x = *(const msgpack_object *const *)a;
	const msgpack_object	*y = *(const msgpack_object *const *)b;
	int			 c;

	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	if (x->type == MSGPACK_OBJECT_STR) {
		if (x->via.str.size != y->via.str.size)
			return x->via.str.size < y->via.str.size ? -1 : 1;
		c = memcmp(x->via.str.ptr, y->via.str.ptr, x->via.str.size);
		return c < 0 ? -1 : c > 0;
	}
	if (x->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    x->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return x->via.u64 == y->via.u64 ? 0 : x->via.u64 < y->via.u64 ? -1 : 1;
	return (x > y) - (x < y);	/* other keys never select anything: keep them apart */
}

/*
 * A map that names a key twice is ambiguous (which value is meant?), so the
 * answer is refused, as a JSON answer with a duplicate key is.  Keys are
 * sorted, so a large map costs n log n; the depth is bounded by mpk_unpack.
 */
static int
mp_dup_keys(const msgpack_object *o, char *err, size_t errlen)
{
	const msgpack_object	**keys;
	uint32_t		  i, n;
	int			  ret = 0;

	if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (i = 0; i < o->via.array.size; i++)
			if (mp_dup_keys(&o->via.array.ptr[i], err, errlen) != 0)
				return -1;
		return 0;
	}
	if (o->type != MSGPACK_OBJECT_MAP || (n = o->via.map.size) == 0)
		return 0;
	if ((keys = calloc(n, sizeof(*keys))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++)
		keys[i] = &o->via.map.ptr[i].key;
	qsort(keys, n, sizeof(*keys), mp_key_cmp);
	for (i = 1; i < n && ret == 0; i++)
		if (mp_key_cmp(&keys[i - 1], &keys[i]) == 0) {
			snprintf(err, errlen, "a map in the answer names one key twice");
			ret = -1;
		}
	free(keys);
	for (i = 0; i < n && ret == 0; i++)
		if (mp_dup_keys(&o->via.map.ptr[i].val, err, errlen) != 0)
			ret = -1;
	return ret;
}

static enum lb_err
mp_select(struct mp_src *ms, const struct src_record *rs, const char *subject, char *err,
    size_t errlen)
{
	const msgpack_object	*list, *found = NULL;
	size_t			 nfound = 0;
	uint32_t		 i;
	enum lb_err		 e;

	if ((list = mp_path(&ms->ms_root, rs->rs_list)) == NULL ||
	    list->type != MSGPACK_OBJECT_ARRAY) {
		snprintf(err, errlen, "the record list \"%s\" is not an array in the answer",
		    rs->rs_list);
		return LB_E_DEPARTMENT_BAD_RESPONSE;
	}
	for (i = 0; i < list->via.array.size; i++)
		if (mp_key_is(mp_path(&list->via.array.ptr[i], rs->rs_key), subject)) {
			found = &list->via.array.ptr[i];
			nfound++;
		}
	if ((e = src_record_found(nfound, err, errlen)) != LB_OK)
		return e;
	if (found->type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "the subject's record is %s, not a map", mp_kind(found));
		return LB_E_DEPARTMENT_BAD_RESPONSE;
	}
	ms->ms_base = found;
	return LB_OK;
}

static void
mp_src_close(void *h)
{
	struct mp_src	*ms = h;

	if (ms == NULL)
		return;
	if (ms->ms_zone != NULL)
		msgpack_zone_free(ms->ms_zone);
	free(ms);
}

static enum lb_err
mp_src_open(const void *body, size_t len, const struct adapter *ad, const char *subject,
    void **hp, char *err, size_t errlen)
{
	struct mp_src		*ms = NULL;
	enum lb_err		 e = LB_E_DEPARTMENT_BAD_RESPONSE;

	*hp = NULL;
	if ((ms = calloc(1, sizeof(*ms))) == NULL ||
	    (ms->ms_zone = msgpack_zone_new(8192)) == NULL) {
		snprintf(err, errlen, "out of memory");
		e = LB_E_INTERNAL;
		goto done;
	}
	if (mpk_unpack(body, len, ms->ms_zone, &ms->ms_root) != 0) {
		snprintf(err, errlen, "the answer is not one well-formed msgpack value whose "
		    "text is UTF-8");
		goto done;
	}
	if (mp_dup_keys(&ms->ms_root, err, errlen) != 0)
		goto done;
	ms->ms_base = &ms->ms_root;
	if (ad->ad_record.rs_set) {
		if ((e = mp_select(ms, &ad->ad_record, subject, err, errlen)) != LB_OK)
			goto done;
	} else if (ms->ms_root.type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "the answer is %s, not a map", mp_kind(&ms->ms_root));
		goto done;
	}
	*hp = ms;
	ms = NULL;
	e = LB_OK;
done:
	mp_src_close(ms);
	return e;
}

static int
mp_src_get(void *h, const char *sel, struct src_value *v, char *err, size_t errlen)
{
	struct mp_src		*ms = h;
	const msgpack_object	*o;

	if ((o = mp_path(ms->ms_base, sel)) == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	switch (o->type) {
	case MSGPACK_OBJECT_STR:
		return src_value_str(v, o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		v->vl_type = SV_INT;
		v->vl_int = o->via.i64;
		return 1;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 <= INT64_MAX) {
			v->vl_type = SV_INT;
			v->vl_int = (int64_t)o->via.u64;
			return 1;
		}
		break;
	default:
		break;
	}
	return src_value_unusable(mp_kind(o), err, errlen);
}

const struct src_ops src_msgpack_ops = {
	.so_name = "msgpack",
	.so_encodings = msgpack_encodings,
	.so_check = mp_src_check,
	.so_open = mp_src_open,
	.so_get = mp_src_get,
	.so_close = mp_src_close,
};
