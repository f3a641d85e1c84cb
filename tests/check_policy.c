/*
 * check_policy.c - unit tests for bundle policies (docs/consent.md,
 * gateway/lib/policy.c): parsing and its refusals, the items and the
 * departments that own them, the fields released by data minimization, the
 * assurance a face authentication must reach, the guardian proof rules and
 * the per-consumer rate limit.
 *
 * Every refused policy is the valid policy below with one field replaced
 * or removed, so each case fails for the one reason it names; the error
 * sentence must say which field is wrong.  The rate limiter takes the
 * clock as an argument: refills are tested by moving that clock, never by
 * sleeping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "lianban.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define CHILD		"110105201903070021"
#define GUARDIAN	"110105198811224533"
#define SEC		UINT64_C(1000000)	/* one second of the rate clock (us) */

static const char valid_json[] =
    "{\"bundle\": \"school_enrollment\", \"name\": \"入学一件事\","
    " \"purpose\": \"Enroll a child in primary school.\","
    " \"consumers\": [\"school_app\", \"edu_portal\"],"
    " \"assurance\": {\"amr\": [\"face\", \"pin\"], \"min_liveness\": 800, \"min_match\": 850},"
    " \"guardian\": {\"allowed\": true, \"proofs\": ["
    "  {\"item\": \"household_register\", \"fields\": [\"guardian_id\", \"head_id\"]},"
    "  {\"item\": \"birth_medical_certificate\", \"dept\": \"nhc\","
    "   \"fields\": [\"mother_id\", \"father_id\"]}]},"
    " \"rate_limit\": {\"per_second\": 2, \"burst\": 3},"
    " \"items\": ["
    "  {\"item\": \"household_register\", \"dept\": \"psb\","
    "   \"fields\": [\"address\", \"guardian_id\", \"head_id\"]},"
    "  {\"item\": \"vaccination_record\", \"dept\": \"cdc\","
    "   \"fields\": [\"complete\", \"last_dose\"]}]}";

/*
 * Decodes one JSON value (of any type: the text goes inside an array, as
 * the decoder takes only arrays and objects) into z; the test fails when
 * the text is not JSON.
 */
static msgpack_object
json(msgpack_zone *z, const char *txt)
{
	msgpack_object	 o;
	char		 err[256], *wrapped;
	size_t		 len = strlen(txt) + 3;

	ck_assert_ptr_nonnull(wrapped = malloc(len));
	snprintf(wrapped, len, "[%s]", txt);
	ck_assert_msg(mpk_from_json(wrapped, len - 1, z, &o, err, sizeof(err)) == 0,
	    "test JSON: %s", err);
	free(wrapped);
	ck_assert_uint_eq(o.via.array.size, 1);
	return o.via.array.ptr[0];
}

/* A copy of the map base with key set to *val, or removed when val is NULL. */
static msgpack_object
with_field(msgpack_zone *z, const msgpack_object *base, const char *key,
    const msgpack_object *val)
{
	msgpack_object	out = *base;
	uint32_t	i, n = 0;

	out.via.map.ptr = mpk_zalloc(z, sizeof(msgpack_object_kv) * (base->via.map.size + 1));
	for (i = 0; i < base->via.map.size; i++)
		if (!mpk_str_eq(&base->via.map.ptr[i].key, key))
			out.via.map.ptr[n++] = base->via.map.ptr[i];
	if (val != NULL) {
		out.via.map.ptr[n].key = mpk_str(key);
		out.via.map.ptr[n++].val = *val;
	}
	out.via.map.size = n;
	return out;
}

/*
 * Parses spec.  On failure *out must be NULL (not left as it was) and err
 * must hold a sentence; the result is NULL then.
 */
static struct policy *
parse(const msgpack_object *spec, char *err, size_t errlen)
{
	static struct policy	 stale;
	struct policy		*po = &stale;

	err[0] = '\0';
	if (policy_parse(spec, &po, err, errlen) != 0) {
		ck_assert_ptr_null(po);
		ck_assert_msg(err[0] != '\0', "a refused policy without a reason");
		return NULL;
	}
	ck_assert_ptr_nonnull(po);
	return po;
}

/* The valid policy; the caller frees it. */
static struct policy *
valid_policy(void)
{
	msgpack_zone	 z;
	msgpack_object	 spec;
	struct policy	*po;
	char		 err[256];

	msgpack_zone_init(&z, 8192);
	spec = json(&z, valid_json);
	po = parse(&spec, err, sizeof(err));
	ck_assert_msg(po != NULL, "the valid policy is refused: %s", err);
	msgpack_zone_destroy(&z);
	return po;
}

/*
 * Parsing
 */

START_TEST(test_parse_valid)
{
	struct policy	*po = valid_policy();

	ck_assert_str_eq(po->po_bundle, "school_enrollment");
	ck_assert_str_eq(po->po_name, "入学一件事");
	ck_assert_str_eq(po->po_purpose, "Enroll a child in primary school.");
	ck_assert_uint_eq(po->po_nconsumers, 2);
	ck_assert_str_eq(po->po_consumers[1], "edu_portal");
	ck_assert_uint_eq(po->po_namr, 2);
	ck_assert_str_eq(po->po_amr[0], "face");
	ck_assert_str_eq(po->po_amr[1], "pin");
	ck_assert_int_eq(po->po_min_liveness, 800);
	ck_assert_int_eq(po->po_min_match, 850);
	ck_assert(po->po_rel[POLICY_REL_GUARDIAN].rl_allowed);
	ck_assert_uint_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_nproofs, 2);
	ck_assert_str_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[0].pp_item, "household_register");
	ck_assert_str_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[0].pp_dept, "");
	ck_assert_uint_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[0].pp_nfields, 2);
	ck_assert_str_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[0].pp_fields[1], "head_id");
	ck_assert_str_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[1].pp_dept, "nhc");
	ck_assert_uint_eq(po->po_rate_per_s, 2);
	ck_assert_uint_eq(po->po_rate_burst, 3);
	ck_assert_uint_eq(po->po_nitems, 2);
	ck_assert_str_eq(po->po_items[1].pi_item, "vaccination_record");
	ck_assert_uint_eq(po->po_items[1].pi_nfields, 2);
	ck_assert_str_eq(po->po_items[1].pi_fields[1], "last_dose");
	policy_free(po);
}
END_TEST

/* po_spec is canonical, and parsing it again gives the same policy. */
START_TEST(test_parse_spec_round_trip)
{
	struct policy	*po = valid_policy(), *again;
	msgpack_zone	 z;
	msgpack_object	 spec;
	char		 err[256];

	ck_assert(mpk_is_canonical(po->po_spec, po->po_spec_len));
	msgpack_zone_init(&z, 8192);
	ck_assert_int_eq(mpk_unpack(po->po_spec, po->po_spec_len, &z, &spec), 0);
	ck_assert_ptr_nonnull(again = parse(&spec, err, sizeof(err)));
	ck_assert_uint_eq(again->po_spec_len, po->po_spec_len);
	ck_assert_int_eq(memcmp(again->po_spec, po->po_spec, po->po_spec_len), 0);
	ck_assert_str_eq(again->po_items[0].pi_dept, "psb");
	policy_free(again);
	policy_free(po);
	msgpack_zone_destroy(&z);
}
END_TEST

/* What may be left out: purpose, guardian, rate_limit, and a burst. */
START_TEST(test_parse_optional_fields)
{
	msgpack_zone	 z;
	msgpack_object	 base, spec, rate;
	struct policy	*po;
	char		 err[256];

	msgpack_zone_init(&z, 8192);
	base = json(&z, valid_json);
	spec = with_field(&z, &base, "purpose", NULL);
	spec = with_field(&z, &spec, "guardian", NULL);
	spec = with_field(&z, &spec, "rate_limit", NULL);
	ck_assert_msg((po = parse(&spec, err, sizeof(err))) != NULL, "%s", err);
	ck_assert_str_eq(po->po_purpose, "");
	ck_assert(!po->po_rel[POLICY_REL_GUARDIAN].rl_allowed);
	ck_assert_uint_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_nproofs, 0);
	ck_assert_uint_eq(po->po_rate_per_s, 0);	/* no limit */
	policy_free(po);

	rate = json(&z, "{\"per_second\": 7}");
	spec = with_field(&z, &base, "rate_limit", &rate);
	ck_assert_msg((po = parse(&spec, err, sizeof(err))) != NULL, "%s", err);
	ck_assert_uint_eq(po->po_rate_per_s, 7);
	ck_assert_uint_eq(po->po_rate_burst, 7);	/* the burst defaults to the rate */
	policy_free(po);
	msgpack_zone_destroy(&z);
}
END_TEST

/*
 * Allowed without proofs parses (and no guardian can pass it); a proof of
 * an item the policy does not list parses when it names its department.
 */
START_TEST(test_parse_guardian_variants)
{
	msgpack_zone	 z;
	msgpack_object	 base, spec, g;
	struct policy	*po;
	char		 err[256];

	msgpack_zone_init(&z, 8192);
	base = json(&z, valid_json);
	g = json(&z, "{\"allowed\": true}");
	spec = with_field(&z, &base, "guardian", &g);
	ck_assert_msg((po = parse(&spec, err, sizeof(err))) != NULL, "%s", err);
	ck_assert(po->po_rel[POLICY_REL_GUARDIAN].rl_allowed);
	ck_assert_uint_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_nproofs, 0);
	policy_free(po);

	g = json(&z, "{\"allowed\": false, \"proofs\": []}");
	spec = with_field(&z, &base, "guardian", &g);
	ck_assert_msg((po = parse(&spec, err, sizeof(err))) != NULL, "%s", err);
	ck_assert(!po->po_rel[POLICY_REL_GUARDIAN].rl_allowed);
	policy_free(po);

	g = json(&z, "{\"allowed\": true, \"proofs\": [{\"item\": \"adoption_record\","
	    " \"dept\": \"mca\", \"fields\": [\"adopter_id\"]}]}");
	spec = with_field(&z, &base, "guardian", &g);
	ck_assert_msg((po = parse(&spec, err, sizeof(err))) != NULL, "%s", err);
	ck_assert_ptr_null(policy_item(po, "adoption_record"));
	ck_assert_str_eq(policy_proof_dept(po, &po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[0]), "mca");
	policy_free(po);
	msgpack_zone_destroy(&z);
}
END_TEST

/* One field of the valid policy replaced (or removed: NULL), and what err must say. */
static const struct {
	const char	*key;
	const char	*val;
	const char	*want;
} bad[] = {
	{ "colour", "\"blue\"", "unknown policy field" },
	{ "bundle", NULL, "\"bundle\" must be an id" },
	{ "bundle", "\"\"", "\"bundle\" must be an id" },
	{ "bundle", "\"School Enrollment\"", "\"bundle\" must be an id" },
	{ "bundle", "7", "\"bundle\" must be an id" },
	{ "name", NULL, "\"name\"" },
	{ "name", "[\"n\"]", "\"name\"" },
	{ "purpose", "42", "\"purpose\", when given" },
	{ "consumers", NULL, "consumers must be an array" },
	{ "consumers", "\"school_app\"", "consumers must be an array" },
	{ "consumers", "[\"school_app\", 3]", "consumers[1] must be a string" },
	{ "consumers", "[\"c123456789012345678901234567890123456789012345678901234567890123\"]",
	    "consumers[0] must be a string shorter than 64" },
	{ "assurance", NULL, "\"assurance\" must be an object" },
	{ "assurance", "[]", "\"assurance\" must be an object" },
	{ "assurance", "{\"amr\": [\"face\"], \"min_liveness\": 0, \"min_match\": 0, \"age\": 1}",
	    "assurance takes only" },
	{ "assurance", "{\"amr\": \"face\", \"min_liveness\": 0, \"min_match\": 0}",
	    "assurance.amr must be an array" },
	{ "assurance", "{\"min_liveness\": 0, \"min_match\": 0}",
	    "assurance.amr must be an array" },
	{ "assurance", "{\"amr\": [\"fingerprint_vein\"], \"min_liveness\": 0, \"min_match\": 0}",
	    "assurance.amr[0] must be a string shorter than 16" },
	{ "assurance", "{\"amr\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", \"i\"],"
	    " \"min_liveness\": 0, \"min_match\": 0}", "assurance.amr has more than 8" },
	{ "assurance", "{\"amr\": [], \"min_liveness\": 1001, \"min_match\": 0}",
	    "integers from 0 to 1000" },
	{ "assurance", "{\"amr\": [], \"min_liveness\": 0, \"min_match\": -1}",
	    "integers from 0 to 1000" },
	{ "assurance", "{\"amr\": [], \"min_liveness\": 0}", "integers from 0 to 1000" },
	{ "assurance", "{\"amr\": [], \"min_liveness\": \"900\", \"min_match\": 0}",
	    "integers from 0 to 1000" },
	{ "items", NULL, "\"items\" must list 1 to 32 items" },
	{ "items", "[]", "\"items\" must list 1 to 32 items" },
	{ "items", "{\"item\": \"a\", \"dept\": \"d\", \"fields\": []}",
	    "\"items\" must list 1 to 32 items" },
	{ "items", "[\"household_register\"]", "items entries must be objects" },
	{ "items", "[{\"item\": \"a\", \"dept\": \"d\", \"fields\": [], \"owner\": \"d\"}]",
	    "items entries take only item, dept and fields" },
	{ "items", "[{\"dept\": \"d\", \"fields\": []}]", "without a valid \"item\" name" },
	{ "items", "[{\"item\": \"Household Register\", \"dept\": \"d\", \"fields\": []}]",
	    "without a valid \"item\" name" },
	{ "items", "[{\"item\": \"a\", \"fields\": []}]", "item \"a\" needs the \"dept\"" },
	{ "items", "[{\"item\": \"a\", \"dept\": \"P S B\", \"fields\": []}]",
	    "item \"a\" needs the \"dept\"" },
	{ "items", "[{\"item\": \"a\", \"dept\": \"d\"}]", "item \"a\" fields must be an array" },
	{ "items", "[{\"item\": \"a\", \"dept\": \"d\", \"fields\": [\"x\", 1]}]",
	    "item \"a\" fields[1] must be a string" },
	{ "items", "[{\"item\": \"a\", \"dept\": \"d\", \"fields\": []},"
	    " {\"item\": \"a\", \"dept\": \"e\", \"fields\": []}]", "item \"a\" is listed twice" },
	{ "guardian", "true", "\"guardian\" must be" },
	{ "guardian", "{\"proofs\": []}", "\"guardian\" must be" },
	{ "guardian", "{\"allowed\": 1}", "\"guardian\" must be" },
	{ "guardian", "{\"allowed\": true, \"relations\": []}", "guardian takes only" },
	{ "guardian", "{\"allowed\": true, \"proofs\": {}}", "guardian.proofs must be an array" },
	{ "guardian", "{\"allowed\": true, \"proofs\": [\"household_register\"]}",
	    "guardian.proofs entries must be objects" },
	{ "guardian", "{\"allowed\": true, \"proofs\": [{\"item\": \"household_register\","
	    " \"fields\": [\"head_id\"], \"valid_days\": 30}]}", "entries take only item, fields" },
	{ "guardian", "{\"allowed\": true, \"proofs\": [{\"fields\": [\"head_id\"]}]}",
	    "guardian.proofs[0] needs a valid \"item\"" },
	{ "guardian", "{\"allowed\": true, \"proofs\": [{\"item\": \"household_register\","
	    " \"dept\": \"\", \"fields\": [\"head_id\"]}]}", "guardian.proofs[0].dept" },
	{ "guardian", "{\"allowed\": true, \"proofs\": [{\"item\": \"household_register\","
	    " \"fields\": []}]}", "names no field" },
	{ "guardian", "{\"allowed\": true, \"proofs\": [{\"item\": \"household_register\","
	    " \"fields\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}]}", "fields has more than 4" },
	{ "guardian", "{\"allowed\": true, \"proofs\": [{\"item\": \"adoption_record\","
	    " \"fields\": [\"adopter_id\"]}]}", "which the policy does not list" },
	{ "rate_limit", "20", "\"rate_limit\" must be" },
	{ "rate_limit", "{\"burst\": 5}", "\"rate_limit\" must be" },
	{ "rate_limit", "{\"per_second\": 0}", "\"rate_limit\" must be" },
	{ "rate_limit", "{\"per_second\": 1000001}", "\"rate_limit\" must be" },
	{ "rate_limit", "{\"per_second\": 1, \"burst\": 0}", "\"rate_limit\" must be" },
	{ "rate_limit", "{\"per_second\": 1, \"burst\": 1000001}", "\"rate_limit\" must be" },
	{ "rate_limit", "{\"per_second\": 1, \"burst\": -1}", "\"rate_limit\" must be" },
	{ "rate_limit", "{\"per_second\": 1, \"per_minute\": 30}", "\"rate_limit\" must be" },
};

START_TEST(test_parse_refused)
{
	msgpack_zone	 z;
	msgpack_object	 base, val, spec;
	char		 err[256];

	msgpack_zone_init(&z, 8192);
	base = json(&z, valid_json);
	if (bad[_i].val != NULL)
		val = json(&z, bad[_i].val);
	spec = with_field(&z, &base, bad[_i].key, bad[_i].val != NULL ? &val : NULL);
	ck_assert_msg(parse(&spec, err, sizeof(err)) == NULL, "accepted %s = %s", bad[_i].key,
	    bad[_i].val != NULL ? bad[_i].val : "(absent)");
	ck_assert_msg(strstr(err, bad[_i].want) != NULL, "%s = %s: error \"%s\" does not say "
	    "\"%s\"", bad[_i].key, bad[_i].val != NULL ? bad[_i].val : "(absent)", err,
	    bad[_i].want);
	msgpack_zone_destroy(&z);
}
END_TEST

/* A JSON array of n entries: pre, the entry's index in decimal, post. */
static char *
json_array(const char *pre, const char *post, int n)
{
	size_t	 cap = (size_t)n * 128 + 3, len = 0;
	char	*buf;
	int	 i;

	ck_assert_ptr_nonnull(buf = malloc(cap));
	buf[len++] = '[';
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf[len++] = ',';
		len += (size_t)snprintf(buf + len, cap - len, "%s%d%s", pre, i, post);
		ck_assert_uint_lt(len, cap - 2);
	}
	buf[len++] = ']';
	buf[len] = '\0';
	return buf;
}

/* Lists longer than a policy holds are refused, not cut. */
START_TEST(test_parse_refused_long_lists)
{
	static const struct {
		const char	*key;
		const char	*pre, *post;
		int		 n;
		const char	*want;
	} lists[] = {
		{ "consumers", "\"c", "\"", POLICY_MAX_CONSUMERS + 1, "consumers has more than 16" },
		{ "items", "{\"item\": \"i", "\", \"dept\": \"d\", \"fields\": []}",
		    LB_MAX_ITEMS + 1, "\"items\" must list 1 to 32 items" },
	};
	msgpack_zone	 z;
	msgpack_object	 base, val, spec;
	struct policy	*po;
	char		 err[256], *txt, *fields, *item;
	size_t		 i, itemsz;

	msgpack_zone_init(&z, 65536);
	base = json(&z, valid_json);
	for (i = 0; i < NELEM(lists); i++) {
		txt = json_array(lists[i].pre, lists[i].post, lists[i].n);
		val = json(&z, txt);
		spec = with_field(&z, &base, lists[i].key, &val);
		ck_assert_msg(parse(&spec, err, sizeof(err)) == NULL, "accepted %d %s",
		    lists[i].n, lists[i].key);
		ck_assert_msg(strstr(err, lists[i].want) != NULL, "%s", err);
		free(txt);
	}

	/* An item releasing more fields than a policy item holds; exactly as many pass. */
	fields = json_array("\"f", "\"", POLICY_MAX_FIELDS + 1);
	itemsz = strlen(fields) + 128;
	ck_assert_ptr_nonnull(item = malloc(itemsz));
	snprintf(item, itemsz, "[{\"item\": \"a\", \"dept\": \"d\", \"fields\": %s}]", fields);
	val = json(&z, item);
	spec = with_field(&z, &base, "items", &val);
	ck_assert_ptr_null(parse(&spec, err, sizeof(err)));
	ck_assert_msg(strstr(err, "item \"a\" fields has more than 48") != NULL, "%s", err);
	free(fields);
	fields = json_array("\"f", "\"", POLICY_MAX_FIELDS);
	snprintf(item, itemsz, "[{\"item\": \"household_register\", \"dept\": \"d\","
	    " \"fields\": %s}]", fields);
	val = json(&z, item);
	spec = with_field(&z, &base, "items", &val);
	ck_assert_msg((po = parse(&spec, err, sizeof(err))) != NULL, "%s", err);
	ck_assert_uint_eq(po->po_items[0].pi_nfields, POLICY_MAX_FIELDS);
	ck_assert_str_eq(po->po_items[0].pi_fields[POLICY_MAX_FIELDS - 1], "f47");
	policy_free(po);
	free(fields);
	free(item);
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_parse_refused_not_a_map)
{
	msgpack_zone	 z;
	msgpack_object	 spec;
	char		 err[256];

	msgpack_zone_init(&z, 1024);
	spec = json(&z, "[\"school_enrollment\"]");
	ck_assert_ptr_null(parse(&spec, err, sizeof(err)));
	ck_assert_msg(strstr(err, "a policy must be an object") != NULL, "%s", err);
	msgpack_zone_destroy(&z);
}
END_TEST

/*
 * Items and their departments, consumers
 */

START_TEST(test_items_and_departments)
{
	struct policy			*po = valid_policy();
	const struct policy_item	*pi;

	ck_assert_ptr_nonnull(pi = policy_item(po, "household_register"));
	ck_assert_str_eq(pi->pi_dept, "psb");
	ck_assert_ptr_eq(pi, &po->po_items[0]);
	ck_assert_ptr_nonnull(pi = policy_item(po, "vaccination_record"));
	ck_assert_str_eq(pi->pi_dept, "cdc");
	/* Exact names only: no prefix, no other case, not the bundle's own name. */
	ck_assert_ptr_null(policy_item(po, "household"));
	ck_assert_ptr_null(policy_item(po, "Household_Register"));
	ck_assert_ptr_null(policy_item(po, "school_enrollment"));
	ck_assert_ptr_null(policy_item(po, ""));

	ck_assert(policy_allows_consumer(po, "school_app"));
	ck_assert(policy_allows_consumer(po, "edu_portal"));
	ck_assert(!policy_allows_consumer(po, "school"));
	ck_assert(!policy_allows_consumer(po, "school_app2"));
	ck_assert(!policy_allows_consumer(po, ""));
	policy_free(po);
}
END_TEST

/*
 * Released fields
 */

START_TEST(test_minimize)
{
	static const char doc_txt[] =
	    "{\"type\": \"household_register\", \"holder\": {\"id\": \"" CHILD "\"},"
	    " \"fields\": {\"address\": \"海淀区中关村大街1号\", \"religion\": \"none\","
	    " \"head_id\": \"" GUARDIAN "\", \"income\": 120000, \"guardian_id\": \"" GUARDIAN "\"}}";
	struct policy	*po = valid_policy();
	msgpack_zone	 z;
	msgpack_object	 doc, min, fields;
	uint8_t		*before, *after;
	size_t		 before_len, after_len;

	msgpack_zone_init(&z, 8192);
	doc = json(&z, doc_txt);
	ck_assert_int_eq(mpk_pack_alloc(&doc, &before, &before_len), 0);
	min = policy_minimize(policy_item(po, "household_register"), &doc, &z);

	/* Only the released keys stay, in their order; the rest of doc is kept. */
	fields = *mpk_get(&min, "fields");
	ck_assert_uint_eq(fields.via.map.size, 3);
	ck_assert(mpk_str_eq(&fields.via.map.ptr[0].key, "address"));
	ck_assert(mpk_str_eq(&fields.via.map.ptr[1].key, "head_id"));
	ck_assert(mpk_str_eq(&fields.via.map.ptr[2].key, "guardian_id"));
	ck_assert_ptr_null(mpk_get(&fields, "religion"));
	ck_assert_ptr_null(mpk_get(&fields, "income"));
	ck_assert_uint_eq(min.via.map.size, doc.via.map.size);
	ck_assert(mpk_str_eq(mpk_get(&min, "type"), "household_register"));
	ck_assert_ptr_nonnull(mpk_get(&min, "holder"));

	/* The department's document itself is untouched. */
	ck_assert_int_eq(mpk_pack_alloc(&doc, &after, &after_len), 0);
	ck_assert_uint_eq(after_len, before_len);
	ck_assert_int_eq(memcmp(after, before, before_len), 0);
	free(before);
	free(after);

	/* An item that releases none of these keys keeps an empty fields map. */
	min = policy_minimize(policy_item(po, "vaccination_record"), &doc, &z);
	fields = *mpk_get(&min, "fields");
	ck_assert_int_eq(fields.type, MSGPACK_OBJECT_MAP);
	ck_assert_uint_eq(fields.via.map.size, 0);
	policy_free(po);
	msgpack_zone_destroy(&z);
}
END_TEST

/* Documents without a fields map have nothing to minimize. */
START_TEST(test_minimize_other_shapes)
{
	struct policy			*po = valid_policy();
	const struct policy_item	*pi = policy_item(po, "household_register");
	msgpack_zone			 z;
	msgpack_object			 doc, min;

	msgpack_zone_init(&z, 4096);
	doc = json(&z, "[\"address\", \"religion\"]");
	min = policy_minimize(pi, &doc, &z);
	ck_assert_int_eq(min.type, MSGPACK_OBJECT_ARRAY);
	ck_assert_uint_eq(min.via.array.size, 2);

	doc = json(&z, "{\"type\": \"household_register\", \"fields\": \"religion\"}");
	min = policy_minimize(pi, &doc, &z);
	ck_assert(mpk_str_eq(mpk_get(&min, "fields"), "religion"));

	doc = json(&z, "{\"type\": \"household_register\"}");
	min = policy_minimize(pi, &doc, &z);
	ck_assert_uint_eq(min.via.map.size, 1);
	policy_free(po);
	msgpack_zone_destroy(&z);
}
END_TEST

/*
 * Assurance
 */

START_TEST(test_assurance)
{
	static const char	 face_pin[][POLICY_AMR_LEN] = { "face", "pin" };
	static const char	 pin_face_otp[][POLICY_AMR_LEN] = { "pin", "otp", "face" };
	static const char	 face[][POLICY_AMR_LEN] = { "face" };
	static const char	 pin[][POLICY_AMR_LEN] = { "pin" };
	struct policy		*po = valid_policy();
	char			 msg[256];

	/* At the minimums exactly, with every method, in any order. */
	ck_assert_int_eq(policy_assurance(po, face_pin, 2, 800, 850, msg, sizeof(msg)), LB_OK);
	ck_assert_str_eq(msg, "");
	ck_assert_int_eq(policy_assurance(po, pin_face_otp, 3, 1000, 1000, msg, sizeof(msg)),
	    LB_OK);

	/* One point below either minimum. */
	ck_assert_int_eq(policy_assurance(po, face_pin, 2, 799, 850, msg, sizeof(msg)),
	    LB_E_ASSURANCE_TOO_LOW);
	ck_assert_msg(strstr(msg, "liveness score 799") && strstr(msg, "800"), "%s", msg);
	ck_assert_int_eq(policy_assurance(po, face_pin, 2, 800, 849, msg, sizeof(msg)),
	    LB_E_ASSURANCE_TOO_LOW);
	ck_assert_msg(strstr(msg, "match score 849") && strstr(msg, "850"), "%s", msg);

	/* A method the bundle requires is missing. */
	ck_assert_int_eq(policy_assurance(po, face, 1, 1000, 1000, msg, sizeof(msg)),
	    LB_E_ASSURANCE_TOO_LOW);
	ck_assert_msg(strstr(msg, "\"pin\"") != NULL, "%s", msg);

	/* Without face nothing else counts, and that is the reason given first. */
	ck_assert_int_eq(policy_assurance(po, pin, 1, 0, 0, msg, sizeof(msg)),
	    LB_E_ASSURANCE_TOO_LOW);
	ck_assert_msg(strstr(msg, "amr lacks \"face\"") != NULL, "%s", msg);
	ck_assert_int_eq(policy_assurance(po, face_pin, 0, 1000, 1000, msg, sizeof(msg)),
	    LB_E_ASSURANCE_TOO_LOW);
	ck_assert_msg(strstr(msg, "face") != NULL, "%s", msg);

	/* A bundle that asks for nothing more still asks for face. */
	po->po_namr = 0;
	po->po_min_liveness = po->po_min_match = 0;
	ck_assert_int_eq(policy_assurance(po, face, 1, 0, 0, msg, sizeof(msg)), LB_OK);
	ck_assert_int_eq(policy_assurance(po, pin, 1, 1000, 1000, msg, sizeof(msg)),
	    LB_E_ASSURANCE_TOO_LOW);
	policy_free(po);
}
END_TEST

/*
 * Guardian proofs
 */

START_TEST(test_proof_departments)
{
	struct policy	*po = valid_policy();

	/* A proof without its own dept comes from the item's department in the policy. */
	ck_assert_str_eq(policy_proof_dept(po, &po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[0]), "psb");
	/* Its own dept, for an item the policy does not even list. */
	ck_assert_str_eq(policy_proof_dept(po, &po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[1]), "nhc");
	ck_assert_ptr_null(policy_item(po, "birth_medical_certificate"));
	/* Its own dept wins over the item's department in the policy. */
	strcpy(po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[0].pp_dept, "mps");
	ck_assert_str_eq(policy_proof_dept(po, &po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[0]), "mps");
	policy_free(po);
}
END_TEST

START_TEST(test_proof_names_guardian)
{
	struct policy			*po = valid_policy();
	const struct policy_proof	*hhr = &po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[0], *bmc = &po->po_rel[POLICY_REL_GUARDIAN].rl_proofs[1];
	msgpack_zone			 z;
	msgpack_object			 doc;

	msgpack_zone_init(&z, 4096);
	/* Either named field may hold the guardian. */
	doc = json(&z, "{\"fields\": {\"guardian_id\": \"" GUARDIAN "\", \"head_id\": \"x\"}}");
	ck_assert(policy_proof_names(hhr, &doc, GUARDIAN));
	doc = json(&z, "{\"fields\": {\"head_id\": \"" GUARDIAN "\"}}");
	ck_assert(policy_proof_names(hhr, &doc, GUARDIAN));
	/* The same record is no proof for another person. */
	ck_assert(!policy_proof_names(hhr, &doc, CHILD));
	ck_assert(!policy_proof_names(hhr, &doc, "11010519881122453"));

	/* A field the proof does not name proves nothing, nor one of another proof. */
	doc = json(&z, "{\"fields\": {\"witness_id\": \"" GUARDIAN "\","
	    " \"mother_id\": \"" GUARDIAN "\"}, \"guardian_id\": \"" GUARDIAN "\"}");
	ck_assert(!policy_proof_names(hhr, &doc, GUARDIAN));
	ck_assert(policy_proof_names(bmc, &doc, GUARDIAN));

	/* Values that are not strings, and documents without fields. */
	doc = json(&z, "{\"fields\": {\"guardian_id\": 110105198811224533}}");
	ck_assert(!policy_proof_names(hhr, &doc, "110105198811224533"));
	doc = json(&z, "{\"fields\": [\"guardian_id\", \"" GUARDIAN "\"]}");
	ck_assert(!policy_proof_names(hhr, &doc, GUARDIAN));
	doc = json(&z, "{\"holder\": {\"id\": \"" GUARDIAN "\"}}");
	ck_assert(!policy_proof_names(hhr, &doc, GUARDIAN));
	policy_free(po);
	msgpack_zone_destroy(&z);
}
END_TEST

/*
 * Rate limits
 */

/* A policy that only the rate limiter reads: a bundle name and a limit. */
static struct policy *
rate_policy(const char *bundle, uint32_t per_s, uint32_t burst)
{
	struct policy	*po;

	ck_assert_ptr_nonnull(po = calloc(1, sizeof(*po)));
	snprintf(po->po_bundle, sizeof(po->po_bundle), "%s", bundle);
	po->po_rate_per_s = per_s;
	po->po_rate_burst = burst;
	return po;
}

/* How many tokens the bucket gives at t before it refuses (at most max). */
static int
drain(struct policy_rates *rt, const struct policy *po, const char *consumer, uint64_t t,
    int max)
{
	int	n = 0;

	while (n < max && policy_rate_take(rt, po, consumer, t) == 0)
		n++;
	return n;
}

START_TEST(test_rate_none)
{
	struct policy_rates	*rt;
	struct policy		*po = rate_policy("b", 0, 0);

	ck_assert_ptr_nonnull(rt = policy_rates_new(4));
	ck_assert_int_eq(drain(rt, po, "c", 1, 10000), 10000);
	policy_rates_free(rt);
	free(po);
}
END_TEST

START_TEST(test_rate_burst_and_refill)
{
	struct policy_rates	*rt;
	struct policy		*po = rate_policy("b", 2, 3);	/* one token per 0.5 s */
	uint64_t		 t = 1000 * SEC;

	ck_assert_ptr_nonnull(rt = policy_rates_new(4));
	/* A new bucket is full: the burst, then nothing. */
	ck_assert_int_eq(drain(rt, po, "c", t, 100), 3);
	ck_assert_int_eq(policy_rate_take(rt, po, "c", t), -1);
	/* Not one whole token in 0.499999 s; one at 0.5 s. */
	ck_assert_int_eq(policy_rate_take(rt, po, "c", t + SEC / 2 - 1), -1);
	ck_assert_int_eq(drain(rt, po, "c", t + SEC / 2, 100), 1);
	/* Fractions add up across calls: 0.25 s twice is one token. */
	t += SEC / 2;
	ck_assert_int_eq(policy_rate_take(rt, po, "c", t + SEC / 4), -1);
	ck_assert_int_eq(drain(rt, po, "c", t + SEC / 2, 100), 1);
	/* A long idle time refills up to the burst, not beyond. */
	t += SEC / 2;
	ck_assert_int_eq(drain(rt, po, "c", t + 3600 * SEC, 100), 3);
	/* A clock that went back gives nothing. */
	ck_assert_int_eq(policy_rate_take(rt, po, "c", t), -1);
	policy_rates_free(rt);
	free(po);
}
END_TEST

/* The largest limits and idle times cannot overflow the bucket's arithmetic. */
START_TEST(test_rate_extremes)
{
	struct policy_rates	*rt;
	struct policy		*po = rate_policy("b", 1000000, 1000000);
	struct policy		*slow = rate_policy("s", 1, 1);

	ck_assert_ptr_nonnull(rt = policy_rates_new(4));
	ck_assert_int_eq(drain(rt, po, "c", 0, 2000000), 1000000);
	ck_assert_int_eq(drain(rt, po, "c", 1, 10), 1);		/* 1 us is one token */
	ck_assert_int_eq(drain(rt, po, "c", UINT64_MAX / 2, 2000000), 1000000);
	ck_assert_int_eq(drain(rt, slow, "c", 0, 10), 1);
	ck_assert_int_eq(drain(rt, slow, "c", SEC - 1, 10), 0);
	ck_assert_int_eq(drain(rt, slow, "c", UINT64_MAX, 10), 1);
	policy_rates_free(rt);
	free(po);
	free(slow);
}
END_TEST

/* One bucket per (bundle, consumer): nobody drains another's. */
START_TEST(test_rate_buckets_apart)
{
	struct policy_rates	*rt;
	struct policy		*a = rate_policy("newborn", 1, 2);
	struct policy		*b = rate_policy("school_enrollment", 1, 2);

	ck_assert_ptr_nonnull(rt = policy_rates_new(8));
	ck_assert_int_eq(drain(rt, a, "app1", 0, 10), 2);
	ck_assert_int_eq(drain(rt, a, "app2", 0, 10), 2);
	ck_assert_int_eq(drain(rt, b, "app1", 0, 10), 2);
	ck_assert_int_eq(drain(rt, a, "app1", 0, 10), 0);
	/* Names are compared whole. */
	ck_assert_int_eq(drain(rt, a, "app", 0, 10), 2);
	policy_rates_free(rt);
	free(a);
	free(b);
}
END_TEST

/*
 * When every bucket is taken, the least recently used one goes to the
 * newcomer, which starts full: a consumer that was idle longest loses its
 * state, the ones in use keep theirs.
 */
START_TEST(test_rate_lru)
{
	struct policy_rates	*rt;
	struct policy		*po = rate_policy("b", 1, 1);

	ck_assert_ptr_nonnull(rt = policy_rates_new(2));
	ck_assert_int_eq(drain(rt, po, "a", 10, 10), 1);
	ck_assert_int_eq(drain(rt, po, "b", 20, 10), 1);
	ck_assert_int_eq(drain(rt, po, "a", 30, 10), 0);	/* a is the recent one now */
	ck_assert_int_eq(drain(rt, po, "c", 40, 10), 1);	/* takes b's bucket */
	ck_assert_int_eq(drain(rt, po, "a", 50, 10), 0);	/* a kept its empty bucket */
	ck_assert_int_eq(drain(rt, po, "b", 60, 10), 1);	/* b starts over, in c's */
	ck_assert_int_eq(drain(rt, po, "c", 70, 10), 1);
	policy_rates_free(rt);
	free(po);
	ck_assert_ptr_null(policy_rates_new(0));
}
END_TEST

/*
 * The checks before consent, in their order, each with its reason.  With a
 * single bucket, a refused consumer that reached the rate limiter would
 * take the bucket of the one allowed, which would then start full again.
 */
START_TEST(test_admit)
{
	struct policy_rates	*rt;
	struct policy		*po = valid_policy();
	char			 msg[256];
	int			 i;

	ck_assert_ptr_nonnull(rt = policy_rates_new(1));
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(policy_admit(rt, po, "school_enrollment", "school_app", 0, msg,
		    sizeof(msg)), LB_OK);
		ck_assert_str_eq(msg, "");
	}
	ck_assert_int_eq(policy_admit(rt, NULL, "marriage", "school_app", 0, msg, sizeof(msg)),
	    LB_E_UNKNOWN_BUNDLE);
	ck_assert_str_eq(msg, "no bundle policy \"marriage\" is loaded");
	ck_assert_int_eq(policy_admit(rt, po, "school_enrollment", "newborn", 0, msg,
	    sizeof(msg)), LB_E_FORBIDDEN_ROLE);
	ck_assert_str_eq(msg, "consumer newborn may not use bundle \"school_enrollment\"");
	ck_assert_int_eq(policy_admit(rt, po, "school_enrollment", "school_app", 0, msg,
	    sizeof(msg)), LB_E_RATE_LIMITED);
	ck_assert_str_eq(msg, "consumer school_app exceeds the rate limit of bundle "
	    "\"school_enrollment\" (2 per second, burst 3)");
	ck_assert_int_eq(policy_admit(rt, po, "school_enrollment", "school_app", SEC / 2, msg,
	    sizeof(msg)), LB_OK);
	policy_rates_free(rt);
	policy_free(po);
}
END_TEST

static Suite *
policy_suite(void)
{
	Suite	*s = suite_create("policy");
	TCase	*tc;

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_valid);
	tcase_add_test(tc, test_parse_spec_round_trip);
	tcase_add_test(tc, test_parse_optional_fields);
	tcase_add_test(tc, test_parse_guardian_variants);
	tcase_add_loop_test(tc, test_parse_refused, 0, NELEM(bad));
	tcase_add_test(tc, test_parse_refused_long_lists);
	tcase_add_test(tc, test_parse_refused_not_a_map);
	suite_add_tcase(s, tc);

	tc = tcase_create("rules");
	tcase_add_test(tc, test_items_and_departments);
	tcase_add_test(tc, test_minimize);
	tcase_add_test(tc, test_minimize_other_shapes);
	tcase_add_test(tc, test_assurance);
	tcase_add_test(tc, test_proof_departments);
	tcase_add_test(tc, test_proof_names_guardian);
	suite_add_tcase(s, tc);

	tc = tcase_create("rate");
	tcase_add_test(tc, test_rate_none);
	tcase_add_test(tc, test_rate_burst_and_refill);
	tcase_add_test(tc, test_rate_extremes);
	tcase_add_test(tc, test_rate_buckets_apart);
	tcase_add_test(tc, test_rate_lru);
	tcase_add_test(tc, test_admit);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(policy_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
