/*
 * fuzz_predicate.c - the predicates of a verification request
 * (predicate_parse, predicate_allowed, predicate_eval,
 * predicate_attestation): what a consumer sends in "predicates", decoded
 * as the HTTP front decodes bodies.
 *
 * Byte 0 picks the decoder (even: JSON, odd: msgpack); the rest is the
 * predicates list.  Each predicate that parses is checked against a fixed
 * policy and evaluated on a fixed document whose fields hold every type
 * (text, dates, integers of both signs, a leap-day date, an array, nil).
 * Properties: a refused list leaves nothing allocated and gives a sentence;
 * an evaluation succeeds or fails with bad_request, a sentence and a false
 * result, naming the field; the attestation of a result and the
 * predicate's own map encode canonically, decode again and have a JSON
 * form; a policy refusal is predicate_not_allowed with a sentence.
 */
#include "fuzz_common.h"

static const char fuzz_doc[] =
    "{\"type\": \"household_register\", \"number\": \"310104007641\","
    " \"holder\": {\"id\": \"310104201911200172\", \"name\": \"n\"},"
    " \"issuer\": {\"dept\": \"psb\", \"name\": \"i\"}, \"issued\": \"2019-12-02\","
    " \"fields\": {\"district\": \"310104\", \"birth_date\": \"2019-11-20\","
    "  \"dose_count\": 3, \"leap\": \"2020-02-29\", \"debt\": -5, \"big\": 9223372036854775807,"
    "  \"note\": \"\", \"list\": [1, \"a\"], \"nothing\": null, \"map\": {\"a\": 1}}}";

static const char fuzz_policy[] =
    "{\"bundle\": \"school_enrollment\", \"name\": \"n\", \"purpose\": \"p\","
    " \"consumers\": [\"school\"],"
    " \"assurance\": {\"amr\": [\"face\"], \"min_liveness\": 900, \"min_match\": 900},"
    " \"items\": [{\"item\": \"household_register\", \"dept\": \"psb\", \"fields\": [],"
    "  \"verify\": {\"fields\": {\"district\": [\"eq\", \"in\"], \"birth_date\":"
    "   [\"age_at_least\", \"ge\", \"le\"], \"dose_count\": [\"ge\", \"le\", \"ne\"]}}}]}";

static msgpack_zone	 fz_zone;
static msgpack_object	 fz_doc;
static struct policy	*fz_policy;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	msgpack_object	o;
	char		err[256];

	(void)argc;
	(void)argv;
	msgpack_zone_init(&fz_zone, 4096);
	if (mpk_from_json(fuzz_doc, strlen(fuzz_doc), &fz_zone, &fz_doc, err, sizeof(err)) != 0 ||
	    mpk_from_json(fuzz_policy, strlen(fuzz_policy), &fz_zone, &o, err, sizeof(err)) != 0 ||
	    policy_parse(&o, &fz_policy, err, sizeof(err)) != 0)
		abort();
	return 0;
}

/* o encodes canonically and decodes again. */
static void
fuzz_canonical(const msgpack_object *o)
{
	msgpack_zone	 z;
	msgpack_object	 back;
	uint8_t		*bytes;
	size_t		 len;

	if (mpk_pack_alloc(o, &bytes, &len) != 0 || !mpk_is_canonical(bytes, len))
		abort();
	msgpack_zone_init(&z, 1024);
	if (mpk_unpack(bytes, len, &z, &back) != 0)
		abort();
	msgpack_zone_destroy(&z);
	free(bytes);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_zone		 z;
	msgpack_object		 o, att, po;
	struct predicate	*pds = NULL;
	size_t			 i, n = 7;
	char			 err[256], msg[256];
	bool			 res;
	enum lb_err		 e;

	if (size < 1 || size - 1 > LB_BODY_MAX)
		return 0;
	msgpack_zone_init(&z, 4096);
	if (fuzz_decode_body(data, size, &z, &o) != 0)
		goto done;
	err[0] = '\0';
	if (predicate_parse(&o, &z, &pds, &n, err, sizeof(err)) != 0) {
		if (pds != NULL || n != 0 || err[0] == '\0')
			abort();
		goto done;
	}
	if (n == 0 || n > PRED_MAX)
		abort();
	for (i = 0; i < n; i++) {
		const struct predicate *pd = &pds[i];

		if (predicate_op_name(pd->pd_op) == NULL || pd->pd_item[0] == '\0' ||
		    pd->pd_field[0] == '\0')
			abort();
		msg[0] = '\0';
		e = predicate_allowed(fz_policy, pd, msg, sizeof(msg));
		if (e != LB_OK && (e != LB_E_PREDICATE_NOT_ALLOWED || msg[0] == '\0'))
			abort();
		po = predicate_object(pd, &z);
		fuzz_canonical(&po);
		err[0] = '\0';
		res = true;
		e = predicate_eval(pd, &fz_doc, &res, err, sizeof(err));
		if (e != LB_OK) {
			if (e != LB_E_BAD_REQUEST || res || err[0] == '\0' ||
			    strstr(err, pd->pd_field) == NULL)
				abort();
			continue;
		}
		att = predicate_attestation(pd, res, "310104201911200172", "psb", FUZZ_NOW, &z);
		fuzz_canonical(&att);
		fuzz_json_back(&att, false);
	}
done:
	free(pds);
	msgpack_zone_destroy(&z);
	return 0;
}
