/*
 * predicate.c - verification predicates (POST /v1/verifications): parsing
 * and bounding a request's predicates, the policy's permission for each,
 * their evaluation on a translated record, and the attestation that states
 * the answer without any value of the record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lianban.h"

static const char *const pred_op_names[PRED__COUNT] = {
	[PRED_EQ] = "eq",
	[PRED_NE] = "ne",
	[PRED_IN] = "in",
	[PRED_GE] = "ge",
	[PRED_LE] = "le",
	[PRED_AGE_AT_LEAST] = "age_at_least",
};

/* What a value is, as far as comparing it goes. */
enum pred_kind {
	PK_OTHER,
	PK_INT,
	PK_TEXT
};

const char *
predicate_op_name(enum pred_op op)
{
	if ((unsigned)op >= PRED__COUNT)
		return NULL;
	return pred_op_names[op];
}

int
predicate_op_from_name(const char *name)
{
	int	i;

	for (i = 0; i < PRED__COUNT; i++)
		if (strcmp(pred_op_names[i], name) == 0)
			return i;
	return -1;
}

/*
 * An integer is one that fits int64: a positive msgpack integer above
 * INT64_MAX is no integer a record holds, so it is "other".
 */
static enum pred_kind
pred_kind(const msgpack_object *o)
{
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return PK_INT;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
		return PK_INT;
	if (o->type == MSGPACK_OBJECT_STR)
		return PK_TEXT;
	return PK_OTHER;
}

static int64_t
pred_int(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? o->via.i64 : (int64_t)o->via.u64;
}

static bool
pred_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Reads YYYY-MM-DD into y, m, d; -1 unless it is a calendar date. */
static int
pred_date(const char *s, size_t len, int *y, int *m, int *d)
{
	static const int	mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	size_t			i;

	if (len != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return -1;
	*y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	*m = (s[5] - '0') * 10 + (s[6] - '0');
	*d = (s[8] - '0') * 10 + (s[9] - '0');
	if (*y < 1 || *m < 1 || *m > 12 || *d < 1)
		return -1;
	if (*d > mdays[*m - 1] + (*m == 2 && pred_leap(*y)))
		return -1;
	return 0;
}

bool
predicate_date_ok(const char *s, size_t len)
{
	int	y, m, d;

	return pred_date(s, len, &y, &m, &d) == 0;
}

static bool
pred_is_date(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_STR && predicate_date_ok(o->via.str.ptr, o->via.str.size);
}

/* An integer or a bounded text, copied into z; -1 for anything else. */
static int
pred_scalar(const msgpack_object *o, msgpack_zone *z, msgpack_object *out)
{
	switch (pred_kind(o)) {
	case PK_INT:
		*out = *o;
		return 0;
	case PK_TEXT:
		if (o->via.str.size > PRED_TEXT_MAX)
			return -1;
		*out = mpk_strdup(z, o->via.str.ptr, o->via.str.size);
		return 0;
	default:
		return -1;
	}
}

/* The value of one predicate, checked against its operator and copied into z. */
static int
pred_value(struct predicate *pd, const msgpack_object *v, msgpack_zone *z, unsigned idx,
    char *err, size_t errlen)
{
	const msgpack_object	*on;
	msgpack_object		 set;
	struct mpk_map		 m;
	uint64_t		 years;
	uint32_t		 i;
	const char		*op = pred_op_names[pd->pd_op];

	switch (pd->pd_op) {
	case PRED_EQ:
	case PRED_NE:
		if (pred_scalar(v, z, &pd->pd_value) != 0)
			goto bad_scalar;
		return 0;
	case PRED_GE:
	case PRED_LE:
		if (pred_kind(v) != PK_INT && !pred_is_date(v)) {
			snprintf(err, errlen, "predicates[%u].value of \"%s\" must be an integer "
			    "or a date YYYY-MM-DD", idx, op);
			return -1;
		}
		return pred_scalar(v, z, &pd->pd_value);
	case PRED_IN:
		if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size == 0 ||
		    v->via.array.size > PRED_SET_MAX) {
			snprintf(err, errlen, "predicates[%u].value of \"in\" must be a list of 1 "
			    "to %d integers or texts", idx, PRED_SET_MAX);
			return -1;
		}
		set = mpk_array(z, v->via.array.size);
		for (i = 0; i < v->via.array.size; i++)
			if (pred_scalar(&v->via.array.ptr[i], z, &set.via.array.ptr[i]) != 0) {
				snprintf(err, errlen, "predicates[%u].value[%u] must be an integer "
				    "or a text of at most %d bytes", idx, i, PRED_TEXT_MAX);
				return -1;
			}
		pd->pd_value = set;
		return 0;
	case PRED_AGE_AT_LEAST:
		if (v->type != MSGPACK_OBJECT_MAP || v->via.map.size != 2 ||
		    mpk_get_u64(v, "years", &years) != 0 || years > PRED_YEARS_MAX ||
		    (on = mpk_get(v, "on")) == NULL || !pred_is_date(on)) {
			snprintf(err, errlen, "predicates[%u].value of \"age_at_least\" must be "
			    "{\"years\": 0 to %d, \"on\": \"YYYY-MM-DD\"}", idx, PRED_YEARS_MAX);
			return -1;
		}
		mpk_map_init(&m, z, 2);
		mpk_map_put(&m, "years", mpk_uint(years));
		mpk_map_put(&m, "on", mpk_strdup(z, on->via.str.ptr, on->via.str.size));
		pd->pd_value = m.mm_obj;
		return 0;
	default:
		break;
	}
bad_scalar:
	snprintf(err, errlen, "predicates[%u].value of \"%s\" must be an integer or a text of "
	    "at most %d bytes", idx, op, PRED_TEXT_MAX);
	return -1;
}

static int
pred_parse_one(const msgpack_object *o, msgpack_zone *z, unsigned idx, struct predicate *pd,
    char *err, size_t errlen)
{
	static const char *const keys[] = { "item", "field", "op", "value" };
	const msgpack_object	*v;
	char			 op[16];
	uint32_t		 i;
	size_t			 k;
	int			 n;

	if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size != 4) {
		snprintf(err, errlen, "predicates[%u] must be an object with exactly item, field, "
		    "op and value", idx);
		return -1;
	}
	for (i = 0; i < o->via.map.size; i++) {
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (mpk_str_eq(&o->via.map.ptr[i].key, keys[k]))
				break;
		if (k == sizeof(keys) / sizeof(keys[0])) {
			snprintf(err, errlen, "predicates[%u] takes only item, field, op and "
			    "value", idx);
			return -1;
		}
	}
	if (mpk_get_str(o, "item", pd->pd_item, sizeof(pd->pd_item)) != 0 ||
	    pd->pd_item[0] == '\0') {
		snprintf(err, errlen, "predicates[%u].item must be a non-empty string of at most "
		    "%d bytes", idx, LB_ITEM_MAX - 1);
		return -1;
	}
	if (mpk_get_str(o, "field", pd->pd_field, sizeof(pd->pd_field)) != 0 ||
	    pd->pd_field[0] == '\0') {
		snprintf(err, errlen, "predicates[%u].field must be a non-empty string of at most "
		    "%d bytes", idx, LB_ITEM_MAX - 1);
		return -1;
	}
	if (mpk_get_str(o, "op", op, sizeof(op)) != 0 || (n = predicate_op_from_name(op)) < 0) {
		snprintf(err, errlen, "predicates[%u].op must be one of eq, ne, in, ge, le and "
		    "age_at_least", idx);
		return -1;
	}
	pd->pd_op = (enum pred_op)n;
	if ((v = mpk_get(o, "value")) == NULL) {
		snprintf(err, errlen, "predicates[%u] has no value", idx);
		return -1;
	}
	return pred_value(pd, v, z, idx, err, errlen);
}

int
predicate_parse(const msgpack_object *o, msgpack_zone *z, struct predicate **out, size_t *n,
    char *err, size_t errlen)
{
	struct predicate	*pds = NULL;
	uint32_t		 i;
	int			 ret = -1;

	*out = NULL;
	*n = 0;
	if (o == NULL || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 ||
	    o->via.array.size > PRED_MAX) {
		snprintf(err, errlen, "\"predicates\" must list 1 to %d predicates", PRED_MAX);
		goto done;
	}
	if ((pds = calloc(o->via.array.size, sizeof(*pds))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	for (i = 0; i < o->via.array.size; i++)
		if (pred_parse_one(&o->via.array.ptr[i], z, i, &pds[i], err, errlen) != 0)
			goto done;
	*out = pds;
	*n = o->via.array.size;
	pds = NULL;
	ret = 0;
done:
	free(pds);
	return ret;
}

enum lb_err
predicate_allowed(const struct policy *po, const struct predicate *pd, char *msg, size_t msglen)
{
	const struct policy_item	*pi;
	size_t				 i;

	if ((pi = policy_item(po, pd->pd_item)) == NULL)
		return LB_OK;
	for (i = 0; i < pi->pi_nvfields; i++)
		if (strcmp(pi->pi_vfields[i], pd->pd_field) == 0)
			break;
	if (i == pi->pi_nvfields) {
		snprintf(msg, msglen, "bundle \"%s\" does not allow verifying field \"%s\" of "
		    "item \"%s\"", po->po_bundle, pd->pd_field, pd->pd_item);
		return LB_E_PREDICATE_NOT_ALLOWED;
	}
	if ((pi->pi_vops[i] & (1u << pd->pd_op)) == 0) {
		snprintf(msg, msglen, "bundle \"%s\" does not allow \"%s\" on field \"%s\" of "
		    "item \"%s\"", po->po_bundle, pred_op_names[pd->pd_op], pd->pd_field,
		    pd->pd_item);
		return LB_E_PREDICATE_NOT_ALLOWED;
	}
	return LB_OK;
}

msgpack_object
predicate_object(const struct predicate *pd, msgpack_zone *z)
{
	struct mpk_map	m;

	mpk_map_init(&m, z, 3);
	mpk_map_put(&m, "field", mpk_str(pd->pd_field));
	mpk_map_put(&m, "op", mpk_str(pred_op_names[pd->pd_op]));
	mpk_map_put(&m, "value", pd->pd_value);
	return m.mm_obj;
}

/* Same kind and same value; the caller made sure both are integers or texts. */
static bool
pred_equal(const msgpack_object *a, const msgpack_object *b)
{
	if (pred_kind(a) == PK_INT)
		return pred_int(a) == pred_int(b);
	return a->via.str.size == b->via.str.size &&
	    memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0;
}

/* -1, 0 or 1 as a is before, equal to or after b (both integers, or both dates). */
static int
pred_order(const msgpack_object *a, const msgpack_object *b)
{
	int64_t	x, y;

	if (pred_kind(a) == PK_INT) {
		x = pred_int(a);
		y = pred_int(b);
		return x < y ? -1 : x > y;
	}
	/* Dates YYYY-MM-DD sort as their bytes. */
	return memcmp(a->via.str.ptr, b->via.str.ptr, 10);
}

/* A birth date and {"years", "on"}: whether the person is years old on that day. */
static bool
pred_age(const msgpack_object *birth, const msgpack_object *v)
{
	const msgpack_object	*on = mpk_get(v, "on");
	uint64_t		 years = 0;
	int			 by, bm, bd, oy, om, od;

	mpk_get_u64(v, "years", &years);
	pred_date(birth->via.str.ptr, birth->via.str.size, &by, &bm, &bd);
	pred_date(on->via.str.ptr, on->via.str.size, &oy, &om, &od);
	/*
	 * The n-th birthday is (by + n, bm, bd); one born on 29 February
	 * turns n on 1 March of a common year, which the comparison of
	 * (month, day) pairs gives without a special case.
	 */
	by += (int)years;
	if (by != oy)
		return by < oy;
	if (bm != om)
		return bm < om;
	return bd <= od;
}

enum lb_err
predicate_eval(const struct predicate *pd, const msgpack_object *doc, bool *result, char *err,
    size_t errlen)
{
	const msgpack_object	*fields, *f;
	const msgpack_object	*v = &pd->pd_value;
	enum pred_kind		 fk;
	uint32_t		 i;
	bool			 typed = false;

	*result = false;
	if ((fields = mpk_get(doc, "fields")) == NULL ||
	    (f = mpk_get(fields, pd->pd_field)) == NULL || f->type == MSGPACK_OBJECT_NIL)
		return LB_OK;	/* the record does not show it: not true */
	fk = pred_kind(f);
	switch (pd->pd_op) {
	case PRED_EQ:
	case PRED_NE:
		if (fk != pred_kind(v))
			break;
		*result = pred_equal(f, v) == (pd->pd_op == PRED_EQ);
		return LB_OK;
	case PRED_IN:
		for (i = 0; i < v->via.array.size; i++) {
			if (fk == PK_OTHER || pred_kind(&v->via.array.ptr[i]) != fk)
				continue;
			typed = true;
			if (pred_equal(f, &v->via.array.ptr[i]))
				*result = true;
		}
		if (!typed)
			break;
		return LB_OK;
	case PRED_GE:
	case PRED_LE:
		if (pred_kind(v) == PK_INT ? fk != PK_INT : !pred_is_date(f))
			break;
		*result = pd->pd_op == PRED_GE ? pred_order(f, v) >= 0 : pred_order(f, v) <= 0;
		return LB_OK;
	case PRED_AGE_AT_LEAST:
		if (!pred_is_date(f))
			break;
		*result = pred_age(f, v);
		return LB_OK;
	default:
		break;
	}
	/* The field's type is part of the document format, not a value: it may be named. */
	snprintf(err, errlen, "field \"%s\" of %s is %s; \"%s\" cannot compare it with the "
	    "value given", pd->pd_field, pd->pd_item, fk == PK_INT ? "an integer" :
	    fk == PK_TEXT ? (pred_is_date(f) ? "a date" : "a text") : "neither an integer nor "
	    "a text", pred_op_names[pd->pd_op]);
	return LB_E_BAD_REQUEST;
}

msgpack_object
predicate_attestation(const struct predicate *pd, bool result, const char *subject,
    const char *dept, uint64_t iat, msgpack_zone *z)
{
	struct mpk_map	m, holder, issuer;

	mpk_map_init(&holder, z, 1);
	mpk_map_put(&holder, "id", mpk_str(subject));
	mpk_map_init(&issuer, z, 1);
	mpk_map_put(&issuer, "dept", mpk_str(dept));
	mpk_map_init(&m, z, 7);
	mpk_map_put(&m, "type", mpk_str("attestation"));
	mpk_map_put(&m, "item", mpk_str(pd->pd_item));
	mpk_map_put(&m, "predicate", predicate_object(pd, z));
	mpk_map_put(&m, "result", mpk_bool(result));
	mpk_map_put(&m, "holder", holder.mm_obj);
	mpk_map_put(&m, "issuer", issuer.mm_obj);
	mpk_map_put(&m, "iat", mpk_uint(iat));
	return m.mm_obj;
}
