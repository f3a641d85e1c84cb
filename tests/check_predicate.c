/*
 * check_predicate.c - unit tests for verification predicates
 * (gateway/lib/predicate.c, docs/api.md "Verifications"): parsing and its
 * bounds, dates, evaluation with exact typing, the policy's "verify" rules,
 * the canonical attestation, and the "verify" journal record that keeps a
 * predicate's field and operator but never its value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "lianban.h"
#include "check_util.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* A translated household register, before minimization. */
static const char doc_json[] =
    "{\"type\": \"household_register\", \"number\": \"310104007641\","
    " \"holder\": {\"id\": \"310104201911200172\", \"name\": \"陈小雨\"},"
    " \"issuer\": {\"dept\": \"psb\", \"name\": \"徐汇分局\"}, \"issued\": \"2019-12-02\","
    " \"fields\": {\"district\": \"310104\", \"birth_date\": \"2019-11-20\","
    "  \"dose_count\": 3, \"leap\": \"2020-02-29\", \"debt\": -5, \"note\": \"text\","
    "  \"list\": [1], \"nothing\": null}}";

static msgpack_object
json_obj(msgpack_zone *z, const char *json)
{
	msgpack_object	o;
	char		err[256];

	ck_assert_msg(mpk_from_json(json, strlen(json), z, &o, err, sizeof(err)) == 0, "%s: %s",
	    json, err);
	return o;
}

/* Parses one predicate given as JSON; the test fails if it does not parse. */
static struct predicate *
one(msgpack_zone *z, const char *json)
{
	msgpack_object		 o = json_obj(z, json);
	struct predicate	*pds;
	size_t			 n;
	char			 err[256];

	ck_assert_msg(predicate_parse(&o, z, &pds, &n, err, sizeof(err)) == 0, "%s: %s", json,
	    err);
	ck_assert_uint_eq(n, 1);
	return pds;
}

/* Evaluates one predicate (JSON) on doc_json: 1 true, 0 false, -1 refused. */
static int
eval(const char *json)
{
	msgpack_zone		 z;
	msgpack_object		 doc;
	struct predicate	*pd;
	bool			 res = true;
	char			 err[256] = "";
	enum lb_err		 e;
	int			 ret;

	msgpack_zone_init(&z, 4096);
	doc = json_obj(&z, doc_json);
	pd = one(&z, json);
	e = predicate_eval(pd, &doc, &res, err, sizeof(err));
	if (e != LB_OK) {
		ck_assert_int_eq(e, LB_E_BAD_REQUEST);
		ck_assert_msg(strstr(err, pd->pd_field) != NULL, "%s", err);
		ck_assert_msg(!res, "a refused predicate is not true");
		ret = -1;
	} else
		ret = res;
	free(pd);
	msgpack_zone_destroy(&z);
	return ret;
}

#define P(field, op, value) \
	"[{\"item\": \"household_register\", \"field\": \"" field "\", \"op\": \"" op "\"," \
	" \"value\": " value "}]"

START_TEST(test_parse_every_op)
{
	static const struct {
		const char	*json;
		enum pred_op	 op;
		const char	*name;
	} ok[] = {
		{ P("district", "eq", "\"310104\""), PRED_EQ, "eq" },
		{ P("dose_count", "ne", "-3"), PRED_NE, "ne" },
		{ P("district", "in", "[\"310104\", 310105]"), PRED_IN, "in" },
		{ P("dose_count", "ge", "3"), PRED_GE, "ge" },
		{ P("birth_date", "le", "\"2020-02-29\""), PRED_LE, "le" },
		{ P("birth_date", "age_at_least", "{\"on\": \"2026-08-31\", \"years\": 6}"),
		  PRED_AGE_AT_LEAST, "age_at_least" },
	};
	msgpack_zone		 z;
	struct predicate	*pd;
	size_t			 i;

	for (i = 0; i < NELEM(ok); i++) {
		msgpack_zone_init(&z, 4096);
		pd = one(&z, ok[i].json);
		ck_assert_int_eq(pd->pd_op, ok[i].op);
		ck_assert_str_eq(pd->pd_item, "household_register");
		ck_assert_str_eq(predicate_op_name(pd->pd_op), ok[i].name);
		free(pd);
		msgpack_zone_destroy(&z);
	}
	ck_assert_int_eq(predicate_op_from_name("like"), -1);
	ck_assert_ptr_null(predicate_op_name(PRED__COUNT));
}
END_TEST

/* The parsed value is a copy: the request's buffer may go. */
START_TEST(test_parse_copies_values)
{
	msgpack_zone		 z, rz;
	msgpack_object		 o;
	struct predicate	*pds;
	size_t			 n;
	char			 err[256], *json;
	uint8_t			*bytes;
	size_t			 len;

	msgpack_zone_init(&z, 4096);
	msgpack_zone_init(&rz, 4096);
	json = strdup(P("district", "in", "[\"310104\", \"310105\"]"));
	ck_assert_ptr_nonnull(json);
	o = json_obj(&rz, json);
	ck_assert_int_eq(predicate_parse(&o, &z, &pds, &n, err, sizeof(err)), 0);
	memset(json, 'x', strlen(json));
	free(json);
	msgpack_zone_destroy(&rz);
	o = predicate_object(&pds[0], &z);
	ck_assert_int_eq(mpk_pack_alloc(&o, &bytes, &len), 0);
	/* {"field": "district", "op": "in", "value": ["310104", "310105"]}, keys sorted. */
	ck_assert(mpk_is_canonical(bytes, len));
	ck_assert_ptr_nonnull(memmem(bytes, len, "310105", 6));
	ck_assert_ptr_nonnull(memmem(bytes, len, "\xa5" "field", 6));
	free(bytes);
	free(pds);
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_parse_refusals)
{
	static const struct {
		const char	*json;
		const char	*why;
	} bad[] = {
		{ "{}", "1 to 32 predicates" },
		{ "[]", "1 to 32 predicates" },
		{ "[1]", "predicates[0] must be an object" },
		{ "[{\"item\": \"a\", \"field\": \"b\", \"op\": \"eq\"}]", "predicates[0] must be" },
		{ "[{\"item\": \"a\", \"field\": \"b\", \"op\": \"eq\", \"valu\": 1}]",
		  "takes only item, field, op and value" },
		{ "[{\"item\": \"a\", \"field\": \"b\", \"op\": \"eq\", \"value\": 1, \"x\": 2}]",
		  "exactly item, field" },
		{ "[{\"item\": \"\", \"field\": \"b\", \"op\": \"eq\", \"value\": 1}]",
		  "predicates[0].item" },
		{ "[{\"item\": 7, \"field\": \"b\", \"op\": \"eq\", \"value\": 1}]",
		  "predicates[0].item" },
		{ "[{\"item\": \"a\", \"field\": \"\", \"op\": \"eq\", \"value\": 1}]",
		  "predicates[0].field" },
		{ P("d", "like", "1"), "op must be one of" },
		{ P("d", "eq", "true"), "value of \"eq\"" },
		{ P("d", "eq", "[1]"), "value of \"eq\"" },
		{ P("d", "ne", "null"), "value of \"ne\"" },
		{ P("d", "in", "[]"), "list of 1 to 64" },
		{ P("d", "in", "\"310104\""), "list of 1 to 64" },
		{ P("d", "in", "[1, [2]]"), "value[1]" },
		{ P("d", "ge", "\"2026-13-01\""), "integer or a date" },
		{ P("d", "ge", "\"2023-02-29\""), "integer or a date" },
		{ P("d", "le", "\"26-01-01\""), "integer or a date" },
		{ P("d", "le", "\"2026-1-01 \""), "integer or a date" },
		{ P("d", "age_at_least", "6"), "{\"years\"" },
		{ P("d", "age_at_least", "{\"years\": 6}"), "{\"years\"" },
		{ P("d", "age_at_least", "{\"years\": 151, \"on\": \"2026-08-31\"}"), "{\"years\"" },
		{ P("d", "age_at_least", "{\"years\": -1, \"on\": \"2026-08-31\"}"), "{\"years\"" },
		{ P("d", "age_at_least", "{\"years\": 6, \"on\": \"2026-08-32\"}"), "{\"years\"" },
		{ P("d", "age_at_least", "{\"years\": 6, \"at\": \"2026-08-31\"}"), "{\"years\"" },
	};
	msgpack_zone		 z;
	msgpack_object		 o;
	struct predicate	*pds;
	size_t			 i, n;
	char			 err[256];

	for (i = 0; i < NELEM(bad); i++) {
		msgpack_zone_init(&z, 4096);
		o = json_obj(&z, bad[i].json);
		err[0] = '\0';
		ck_assert_msg(predicate_parse(&o, &z, &pds, &n, err, sizeof(err)) == -1,
		    "accepted %s", bad[i].json);
		ck_assert_ptr_null(pds);
		ck_assert_msg(strstr(err, bad[i].why) != NULL, "%s: \"%s\" lacks \"%s\"",
		    bad[i].json, err, bad[i].why);
		msgpack_zone_destroy(&z);
	}
	ck_assert_int_eq(predicate_parse(NULL, &z, &pds, &n, err, sizeof(err)), -1);
}
END_TEST

/* Bounds: 32 predicates, 64 set members, 256-byte texts. */
START_TEST(test_parse_bounds)
{
	msgpack_zone		 z;
	msgpack_object		 list, set, o;
	struct predicate	*pds;
	struct mpk_map		 m;
	char			 err[256], text[PRED_TEXT_MAX + 2];
	size_t			 n;
	uint32_t		 i;

	msgpack_zone_init(&z, 65536);
	for (i = 0; i < 2; i++) {
		uint32_t k, count = PRED_MAX + i;

		list = mpk_array(&z, count);
		for (k = 0; k < count; k++) {
			mpk_map_init(&m, &z, 4);
			mpk_map_put(&m, "item", mpk_str("household_register"));
			mpk_map_put(&m, "field", mpk_str("district"));
			mpk_map_put(&m, "op", mpk_str("eq"));
			mpk_map_put(&m, "value", mpk_uint(k));
			list.via.array.ptr[k] = m.mm_obj;
		}
		ck_assert_int_eq(predicate_parse(&list, &z, &pds, &n, err, sizeof(err)),
		    i == 0 ? 0 : -1);
		ck_assert_uint_eq(n, i == 0 ? PRED_MAX : 0);
		free(pds);
	}
	/* An integer past int64 (msgpack only: JSON cannot say it) is no value. */
	mpk_map_init(&m, &z, 4);
	mpk_map_put(&m, "item", mpk_str("household_register"));
	mpk_map_put(&m, "field", mpk_str("district"));
	mpk_map_put(&m, "op", mpk_str("eq"));
	mpk_map_put(&m, "value", mpk_uint(UINT64_MAX));
	list = mpk_array(&z, 1);
	list.via.array.ptr[0] = m.mm_obj;
	ck_assert_int_eq(predicate_parse(&list, &z, &pds, &n, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "value of \"eq\""));
	for (i = 0; i < 2; i++) {
		uint32_t k, count = PRED_SET_MAX + i;

		set = mpk_array(&z, count);
		for (k = 0; k < count; k++)
			set.via.array.ptr[k] = mpk_uint(k);
		mpk_map_init(&m, &z, 4);
		mpk_map_put(&m, "item", mpk_str("household_register"));
		mpk_map_put(&m, "field", mpk_str("district"));
		mpk_map_put(&m, "op", mpk_str("in"));
		mpk_map_put(&m, "value", set);
		list = mpk_array(&z, 1);
		list.via.array.ptr[0] = m.mm_obj;
		ck_assert_int_eq(predicate_parse(&list, &z, &pds, &n, err, sizeof(err)),
		    i == 0 ? 0 : -1);
		free(pds);
	}
	for (i = 0; i < 2; i++) {
		memset(text, 'a', sizeof(text));
		text[PRED_TEXT_MAX + i] = '\0';
		mpk_map_init(&m, &z, 4);
		mpk_map_put(&m, "item", mpk_str("household_register"));
		mpk_map_put(&m, "field", mpk_str("district"));
		mpk_map_put(&m, "op", mpk_str("eq"));
		mpk_map_put(&m, "value", mpk_str(text));
		list = mpk_array(&z, 1);
		list.via.array.ptr[0] = m.mm_obj;
		o = list;
		ck_assert_int_eq(predicate_parse(&o, &z, &pds, &n, err, sizeof(err)),
		    i == 0 ? 0 : -1);
		free(pds);
	}
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_dates)
{
	ck_assert(predicate_date_ok("2024-02-29", 10));
	ck_assert(predicate_date_ok("2000-02-29", 10));
	ck_assert(!predicate_date_ok("1900-02-29", 10));
	ck_assert(!predicate_date_ok("2023-02-29", 10));
	ck_assert(predicate_date_ok("2023-12-31", 10));
	ck_assert(!predicate_date_ok("2023-04-31", 10));
	ck_assert(!predicate_date_ok("0000-01-01", 10));
	ck_assert(!predicate_date_ok("2023-00-10", 10));
	ck_assert(!predicate_date_ok("2023-01-00", 10));
	ck_assert(!predicate_date_ok("2023/01/01", 10));
	ck_assert(!predicate_date_ok("2023-01-011", 11));
	ck_assert(!predicate_date_ok("2023-01-0", 9));
	ck_assert(!predicate_date_ok("+023-01-01", 10));
}
END_TEST

START_TEST(test_eval_equality_and_sets)
{
	static const struct {
		const char	*pred;
		int		 want;	/* 1 true, 0 false, -1 refused */
	} cases[] = {
		{ P("district", "eq", "\"310104\""), 1 },
		{ P("district", "eq", "\"310105\""), 0 },
		{ P("district", "ne", "\"310105\""), 1 },
		{ P("district", "ne", "\"310104\""), 0 },
		{ P("dose_count", "eq", "3"), 1 },
		{ P("debt", "eq", "-5"), 1 },
		{ P("debt", "ne", "5"), 1 },
		/* No coercion: the text "310104" is not the integer 310104, nor "3" 3. */
		{ P("district", "eq", "310104"), -1 },
		{ P("dose_count", "eq", "\"3\""), -1 },
		{ P("dose_count", "ne", "\"3\""), -1 },
		{ P("district", "in", "[\"110105\", \"310104\"]"), 1 },
		{ P("district", "in", "[\"110105\", 310104]"), 0 },
		{ P("district", "in", "[310104]"), -1 },
		{ P("dose_count", "in", "[1, 2, 3]"), 1 },
		{ P("list", "in", "[1]"), -1 },
		{ P("list", "eq", "1"), -1 },
		/* A field the record lacks, or holds as null, makes every predicate false. */
		{ P("school_zone", "eq", "\"Z\""), 0 },
		{ P("school_zone", "ne", "\"Z\""), 0 },
		{ P("nothing", "ne", "\"Z\""), 0 },
	};
	size_t	i;

	for (i = 0; i < NELEM(cases); i++)
		ck_assert_msg(eval(cases[i].pred) == cases[i].want, "%s: want %d", cases[i].pred,
		    cases[i].want);
}
END_TEST

START_TEST(test_eval_order_and_age)
{
	static const struct {
		const char	*pred;
		int		 want;	/* 1 true, 0 false, -1 refused */
	} cases[] = {
		{ P("dose_count", "ge", "3"), 1 },
		{ P("dose_count", "ge", "4"), 0 },
		{ P("dose_count", "le", "3"), 1 },
		{ P("dose_count", "le", "2"), 0 },
		{ P("debt", "ge", "-6"), 1 },
		{ P("debt", "le", "-6"), 0 },
		{ P("birth_date", "ge", "\"2019-11-20\""), 1 },
		{ P("birth_date", "ge", "\"2019-11-21\""), 0 },
		{ P("birth_date", "le", "\"2019-12-01\""), 1 },
		{ P("birth_date", "le", "\"2018-12-01\""), 0 },
		/* Dates compare only with dates, integers only with integers. */
		{ P("birth_date", "ge", "20191120"), -1 },
		{ P("dose_count", "ge", "\"2019-11-20\""), -1 },
		{ P("note", "le", "\"2019-11-20\""), -1 },
		/* Born 2019-11-20: six on the day, not the day before. */
		{ P("birth_date", "age_at_least", "{\"years\": 6, \"on\": \"2025-11-20\"}"), 1 },
		{ P("birth_date", "age_at_least", "{\"years\": 6, \"on\": \"2025-11-19\"}"), 0 },
		{ P("birth_date", "age_at_least", "{\"years\": 6, \"on\": \"2026-08-31\"}"), 1 },
		{ P("birth_date", "age_at_least", "{\"years\": 7, \"on\": \"2026-08-31\"}"), 0 },
		{ P("birth_date", "age_at_least", "{\"years\": 0, \"on\": \"2019-11-20\"}"), 1 },
		{ P("birth_date", "age_at_least", "{\"years\": 0, \"on\": \"2019-11-19\"}"), 0 },
		/* Born on 29 February: one year old on 1 March of a common year. */
		{ P("leap", "age_at_least", "{\"years\": 1, \"on\": \"2021-02-28\"}"), 0 },
		{ P("leap", "age_at_least", "{\"years\": 1, \"on\": \"2021-03-01\"}"), 1 },
		{ P("leap", "age_at_least", "{\"years\": 4, \"on\": \"2024-02-29\"}"), 1 },
		{ P("note", "age_at_least", "{\"years\": 1, \"on\": \"2021-03-01\"}"), -1 },
		{ P("dose_count", "age_at_least", "{\"years\": 1, \"on\": \"2021-03-01\"}"), -1 },
	};
	size_t	i;

	for (i = 0; i < NELEM(cases); i++)
		ck_assert_msg(eval(cases[i].pred) == cases[i].want, "%s: want %d", cases[i].pred,
		    cases[i].want);
}
END_TEST

/* A refusal names the field and its type, never the value the record holds. */
START_TEST(test_eval_error_names_no_value)
{
	msgpack_zone		 z;
	msgpack_object		 doc;
	struct predicate	*pd;
	bool			 res;
	char			 err[256];

	msgpack_zone_init(&z, 4096);
	doc = json_obj(&z, doc_json);
	pd = one(&z, P("birth_date", "ge", "5"));
	ck_assert_int_eq(predicate_eval(pd, &doc, &res, err, sizeof(err)), LB_E_BAD_REQUEST);
	ck_assert_ptr_nonnull(strstr(err, "birth_date"));
	ck_assert_ptr_null(strstr(err, "2019"));
	free(pd);
	msgpack_zone_destroy(&z);
}
END_TEST

static const char policy_json[] =
    "{\"bundle\": \"school_enrollment\", \"name\": \"n\", \"purpose\": \"p\","
    " \"consumers\": [\"school\"],"
    " \"assurance\": {\"amr\": [\"face\"], \"min_liveness\": 900, \"min_match\": 900},"
    " \"items\": ["
    "  {\"item\": \"household_register\", \"dept\": \"psb\", \"fields\": [\"address\"],"
    "   \"verify\": {\"fields\": {\"district\": [\"eq\", \"in\"],"
    "    \"birth_date\": [\"age_at_least\"]}}},"
    "  {\"item\": \"resident_id_card\", \"dept\": \"psb\", \"fields\": [\"gender\"]}]}";

static struct policy *
policy_of(const char *json, char *err, size_t errlen)
{
	msgpack_zone	 z;
	msgpack_object	 o;
	struct policy	*po = NULL;

	msgpack_zone_init(&z, 4096);
	o = json_obj(&z, json);
	if (policy_parse(&o, &po, err, errlen) != 0)
		po = NULL;
	msgpack_zone_destroy(&z);
	return po;
}

START_TEST(test_policy_verify_rules)
{
	static const struct {
		const char	*pred;
		enum lb_err	 want;
		const char	*why;
	} cases[] = {
		{ P("district", "eq", "\"1\""), LB_OK, NULL },
		{ P("district", "in", "[\"1\"]"), LB_OK, NULL },
		{ P("birth_date", "age_at_least", "{\"years\": 6, \"on\": \"2026-08-31\"}"), LB_OK,
		  NULL },
		/* Released is not verifiable: the address may be read, not asked about. */
		{ P("address", "eq", "\"x\""), LB_E_PREDICATE_NOT_ALLOWED,
		  "does not allow verifying field \"address\"" },
		{ P("district", "ne", "\"1\""), LB_E_PREDICATE_NOT_ALLOWED,
		  "does not allow \"ne\" on field \"district\"" },
		{ P("birth_date", "ge", "\"2020-01-01\""), LB_E_PREDICATE_NOT_ALLOWED,
		  "\"ge\"" },
		{ "[{\"item\": \"resident_id_card\", \"field\": \"gender\", \"op\": \"eq\","
		  " \"value\": \"male\"}]", LB_E_PREDICATE_NOT_ALLOWED, "field \"gender\"" },
		/* Not in the bundle: left to the consent check (item_not_in_policy). */
		{ "[{\"item\": \"tax_record\", \"field\": \"x\", \"op\": \"eq\", \"value\": 1}]",
		  LB_OK, NULL },
	};
	struct policy		*po;
	struct predicate	*pd;
	msgpack_zone		 z;
	char			 err[256], msg[256];
	size_t			 i;

	ck_assert_msg((po = policy_of(policy_json, err, sizeof(err))) != NULL, "%s", err);
	ck_assert_uint_eq(po->po_items[0].pi_nvfields, 2);
	ck_assert_uint_eq(po->po_items[1].pi_nvfields, 0);
	for (i = 0; i < NELEM(cases); i++) {
		msgpack_zone_init(&z, 4096);
		pd = one(&z, cases[i].pred);
		msg[0] = '\0';
		ck_assert_int_eq(predicate_allowed(po, pd, msg, sizeof(msg)), cases[i].want);
		if (cases[i].why != NULL)
			ck_assert_msg(strstr(msg, cases[i].why) != NULL, "%s", msg);
		free(pd);
		msgpack_zone_destroy(&z);
	}
	policy_free(po);
}
END_TEST

START_TEST(test_policy_verify_refusals)
{
	static const struct {
		const char	*verify;
		const char	*why;
	} bad[] = {
		{ "[\"district\"]", "verify must be" },
		{ "{\"district\": [\"eq\"]}", "verify must be" },
		{ "{\"fields\": {\"district\": [\"eq\"]}, \"x\": 1}", "verify must be" },
		{ "{\"fields\": {\"district\": []}}", "non-empty list of operators" },
		{ "{\"fields\": {\"district\": \"eq\"}}", "non-empty list of operators" },
		{ "{\"fields\": {\"district\": [\"like\"]}}", "operators are eq" },
		{ "{\"fields\": {\"\": [\"eq\"]}}", "not a short string" },
	};
	char		json[2048], err[256];
	struct policy	*po;
	size_t		i;

	for (i = 0; i < NELEM(bad); i++) {
		snprintf(json, sizeof(json),
		    "{\"bundle\": \"b\", \"name\": \"n\", \"purpose\": \"p\", \"consumers\": [\"c\"],"
		    " \"assurance\": {\"amr\": [\"face\"], \"min_liveness\": 1, \"min_match\": 1},"
		    " \"items\": [{\"item\": \"i\", \"dept\": \"d\", \"fields\": [],"
		    " \"verify\": %s}]}", bad[i].verify);
		err[0] = '\0';
		po = policy_of(json, err, sizeof(err));
		ck_assert_msg(po == NULL, "accepted %s", bad[i].verify);
		ck_assert_msg(strstr(err, bad[i].why) != NULL, "%s: \"%s\" lacks \"%s\"",
		    bad[i].verify, err, bad[i].why);
	}
}
END_TEST

START_TEST(test_attestation_is_canonical)
{
	msgpack_zone		 z, dz;
	msgpack_object		 doc, att, back;
	struct predicate	*pd;
	uint8_t			*bytes;
	size_t			 len;
	bool			 res;
	char			 err[256];
	const msgpack_object	*p;

	msgpack_zone_init(&z, 4096);
	msgpack_zone_init(&dz, 4096);
	doc = json_obj(&z, doc_json);
	pd = one(&z, P("district", "in", "[\"310105\", \"310104\"]"));
	ck_assert_int_eq(predicate_eval(pd, &doc, &res, err, sizeof(err)), LB_OK);
	ck_assert(res);
	att = predicate_attestation(pd, res, "310104201911200172", "psb", 1767225600, &z);
	ck_assert_int_eq(mpk_pack_alloc(&att, &bytes, &len), 0);
	ck_assert(mpk_is_canonical(bytes, len));
	/* The first key in byte order is "holder", the last "type". */
	ck_assert_ptr_nonnull(memmem(bytes, 8, "holder", 6));
	ck_assert_int_eq(mpk_unpack(bytes, len, &dz, &back), 0);
	ck_assert_uint_eq(back.via.map.size, 7);
	ck_assert(mpk_str_eq(mpk_get(&back, "type"), "attestation"));
	ck_assert(mpk_str_eq(mpk_get(&back, "item"), "household_register"));
	ck_assert(mpk_get(&back, "result")->type == MSGPACK_OBJECT_BOOLEAN);
	ck_assert(mpk_get(&back, "result")->via.boolean);
	ck_assert(mpk_str_eq(mpk_get(mpk_get(&back, "holder"), "id"), "310104201911200172"));
	ck_assert(mpk_str_eq(mpk_get(mpk_get(&back, "issuer"), "dept"), "psb"));
	p = mpk_get(&back, "predicate");
	ck_assert_uint_eq(p->via.map.size, 3);
	ck_assert(mpk_str_eq(mpk_get(p, "op"), "in"));
	ck_assert_uint_eq(mpk_get(&back, "iat")->via.u64, 1767225600);
	/* Nothing of the record but what the consumer asked: no name, no birth date. */
	ck_assert_ptr_null(memmem(bytes, len, "陈小雨", strlen("陈小雨")));
	ck_assert_ptr_null(memmem(bytes, len, "2019-11-20", 10));
	free(bytes);
	free(pd);
	msgpack_zone_destroy(&dz);
	msgpack_zone_destroy(&z);
}
END_TEST

/* A "verify" record: kind verify, the predicate's field and op, nothing else of it. */
START_TEST(test_journal_verify_record)
{
	struct jrec	r;
	msgpack_sbuffer	sb;
	msgpack_zone	z;
	msgpack_object	o;
	const msgpack_object *p;

	memset(&r, 0, sizeof(r));
	r.jr_kind = JK_VERIFY;
	r.jr_t_ms = 1;
	snprintf(r.jr_item, sizeof(r.jr_item), "household_register");
	snprintf(r.jr_pred_field, sizeof(r.jr_pred_field), "district");
	snprintf(r.jr_pred_op, sizeof(r.jr_pred_op), "in");
	msgpack_sbuffer_init(&sb);
	msgpack_zone_init(&z, 1024);
	ck_assert_int_eq(journal_record_pack(&r, 7, &sb), 0);
	ck_assert(mpk_is_canonical(sb.data, sb.size));
	ck_assert_int_eq(mpk_unpack(sb.data, sb.size, &z, &o), 0);
	ck_assert(mpk_str_eq(mpk_get(&o, "kind"), "verify"));
	ck_assert_str_eq(journal_kind_name(JK_VERIFY), "verify");
	p = mpk_get(&o, "predicate");
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->via.map.size, 2);
	ck_assert(mpk_str_eq(mpk_get(p, "field"), "district"));
	ck_assert(mpk_str_eq(mpk_get(p, "op"), "in"));
	msgpack_sbuffer_destroy(&sb);
	/* Without a predicate field, no "predicate" key at all. */
	msgpack_sbuffer_init(&sb);
	r.jr_kind = JK_ITEM;
	r.jr_pred_field[0] = '\0';
	ck_assert_int_eq(journal_record_pack(&r, 8, &sb), 0);
	ck_assert_int_eq(mpk_unpack(sb.data, sb.size, &z, &o), 0);
	ck_assert_ptr_null(mpk_get(&o, "predicate"));
	msgpack_sbuffer_destroy(&sb);
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_error_code)
{
	ck_assert_str_eq(lb_err_code(LB_E_PREDICATE_NOT_ALLOWED), "predicate_not_allowed");
	ck_assert_int_eq(lb_err_status(LB_E_PREDICATE_NOT_ALLOWED), 403);
}
END_TEST

static Suite *
predicate_suite(void)
{
	Suite	*s = suite_create("predicate");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_parse_every_op);
	tcase_add_test(tc, test_parse_copies_values);
	tcase_add_test(tc, test_parse_refusals);
	tcase_add_test(tc, test_parse_bounds);
	tcase_add_test(tc, test_dates);
	tcase_add_test(tc, test_eval_equality_and_sets);
	tcase_add_test(tc, test_eval_order_and_age);
	tcase_add_test(tc, test_eval_error_names_no_value);
	tcase_add_test(tc, test_policy_verify_rules);
	tcase_add_test(tc, test_policy_verify_refusals);
	tcase_add_test(tc, test_attestation_is_canonical);
	tcase_add_test(tc, test_journal_verify_record);
	tcase_add_test(tc, test_error_code);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(predicate_suite());
}
