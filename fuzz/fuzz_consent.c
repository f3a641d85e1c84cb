/*
 * fuzz_consent.c - consent tokens (docs/contract.md §4, §5) through envelope_parse and
 * consent_verify.
 *
 * The first input byte picks the mode:
 *   even: the rest is an envelope, parsed and verified as a token from the
 *         outside would be (structure, kid, signature, claims);
 *   odd:  the rest is a payload, signed here by the trusted authority and
 *         then verified, so the claim checks behind the signature are
 *         reached too.
 * Trust is one in-memory Ed25519 authority "faceauth"; the policy is the
 * shape of the demo's.
 */
#include "fuzz_common.h"

static struct trust		 T;
static struct trust_authority	 A;
static struct policy		*PO;
static EVP_PKEY			*KEY;

static const char policy_json[] =
    "{\"bundle\":\"newborn\",\"name\":\"n\",\"consumers\":[\"newborn\"],"
    "\"assurance\":{\"amr\":[\"face\"],\"min_liveness\":900,\"min_match\":900},"
    "\"guardian\":{\"allowed\":true},"
    "\"items\":[{\"item\":\"birth_medical_certificate\",\"dept\":\"nhc\","
    "\"fields\":[\"gender\"]},{\"item\":\"access_report\",\"dept\":\"lianban\","
    "\"fields\":[]}]}";

/* A valid token's payload (canonical msgpack), for the seeds. */
static void
seed_payload(msgpack_sbuffer *sb, const char *rel, const char *act)
{
	msgpack_zone	z;
	struct mpk_map	m;
	msgpack_object	items, amr;
	static const uint8_t jti[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

	msgpack_zone_init(&z, 2048);
	items = mpk_array(&z, 1);
	items.via.array.ptr[0] = mpk_str("birth_medical_certificate");
	amr = mpk_array(&z, 1);
	amr.via.array.ptr[0] = mpk_str("face");
	mpk_map_init(&m, &z, 14);
	mpk_map_put(&m, "iss", mpk_str("faceauth"));
	mpk_map_put(&m, "aud", mpk_str("lianban-demo"));
	mpk_map_put(&m, "sub", mpk_str("110105202601010115"));
	mpk_map_put(&m, "act", mpk_str(act));
	mpk_map_put(&m, "rel", mpk_str(rel));
	mpk_map_put(&m, "azp", mpk_str("newborn"));
	mpk_map_put(&m, "bundle", mpk_str("newborn"));
	mpk_map_put(&m, "items", items);
	mpk_map_put(&m, "amr", amr);
	mpk_map_put(&m, "liveness", mpk_uint(990));
	mpk_map_put(&m, "match", mpk_uint(985));
	mpk_map_put(&m, "iat", mpk_uint(FUZZ_NOW));
	mpk_map_put(&m, "exp", mpk_uint(FUZZ_NOW + 300));
	mpk_map_put(&m, "jti", mpk_bin(jti, sizeof(jti)));
	if (mpk_pack(&m.mm_obj, sb, false) != 0)
		abort();
	msgpack_zone_destroy(&z);
}

static void
write_seeds(void)
{
	msgpack_sbuffer	 pay, env;
	uint8_t		*buf;

	msgpack_sbuffer_init(&pay);
	msgpack_sbuffer_init(&env);
	seed_payload(&pay, "self", "110105202601010115");
	if (envelope_sign(KEY, A.ta_kid, "consent", NULL, 0, pay.data, pay.size, &env) != 0)
		abort();
	if ((buf = malloc(env.size + 1)) == NULL)
		abort();
	buf[0] = 0;
	memcpy(buf + 1, env.data, env.size);
	fuzz_seed("consent-envelope", buf, env.size + 1);
	free(buf);
	if ((buf = malloc(pay.size + 1)) == NULL)
		abort();
	buf[0] = 1;
	memcpy(buf + 1, pay.data, pay.size);
	fuzz_seed("consent-payload-self", buf, pay.size + 1);
	free(buf);
	msgpack_sbuffer_clear(&pay);
	seed_payload(&pay, "guardian", "110105199203041528");
	if ((buf = malloc(pay.size + 1)) == NULL)
		abort();
	buf[0] = 1;
	memcpy(buf + 1, pay.data, pay.size);
	fuzz_seed("consent-payload-guardian", buf, pay.size + 1);
	free(buf);
	msgpack_sbuffer_destroy(&pay);
	msgpack_sbuffer_destroy(&env);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	msgpack_zone	z;
	msgpack_object	o;
	char		err[256];

	(void)argc;
	(void)argv;
	KEY = fuzz_key(0x5a);
	A.ta_cert = fuzz_cert(KEY, "faceauth", NULL, NULL, false, 1);
	snprintf(A.ta_name, sizeof(A.ta_name), "faceauth");
	if (key_id_cert(A.ta_cert, A.ta_kid) != 0)
		abort();
	T.t_auth = &A;
	T.t_nauth = 1;
	msgpack_zone_init(&z, 4096);
	if (mpk_from_json(policy_json, strlen(policy_json), &z, &o, err, sizeof(err)) != 0 ||
	    policy_parse(&o, &PO, err, sizeof(err)) != 0) {
		fprintf(stderr, "policy: %s\n", err);
		abort();
	}
	msgpack_zone_destroy(&z);
	write_seeds();
	return 0;
}

static void
verify(const uint8_t *env, size_t len)
{
	static const char	items[1][LB_ITEM_MAX] = { "birth_medical_certificate" };
	struct consent_ask	ask;
	struct consent		cs;
	struct envelope		parsed;
	msgpack_zone		z;
	const char		*why;
	char			msg[256];
	enum lb_err		e;

	memset(&ask, 0, sizeof(ask));
	ask.ca_aud = "lianban-demo";
	ask.ca_consumer = "newborn";
	ask.ca_bundle = "newborn";
	ask.ca_subject = "110105202601010115";
	ask.ca_items = items;
	ask.ca_nitems = 1;
	ask.ca_policy = PO;
	ask.ca_now = FUZZ_NOW;
	e = consent_verify(&T, env, len, &ask, &cs, msg, sizeof(msg));
	/* Every refusal is one of the contract's codes, with a sentence. */
	if ((unsigned)e >= LB_E__COUNT || (e != LB_OK && msg[0] == '\0'))
		abort();
	/* The claims of a token that parses can be shown as JSON and read back. */
	msgpack_zone_init(&z, 2048);
	if (envelope_parse(env, len, &z, "consent", &parsed, &why) == 0)
		fuzz_json_back(&parsed.env_claims, true);
	else if (e == LB_OK)
		abort();
	msgpack_zone_destroy(&z);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_sbuffer	 sb;
	msgpack_zone	 z;
	struct envelope	 env;
	const char	*why;

	if (size < 1 || size > 64 * 1024)
		return 0;
	if ((data[0] & 1) == 0) {
		msgpack_zone_init(&z, 2048);
		if (envelope_parse(data + 1, size - 1, &z, NULL, &env, &why) == 0)
			(void)envelope_verify(&env, KEY);
		msgpack_zone_destroy(&z);
		verify(data + 1, size - 1);
		return 0;
	}
	msgpack_sbuffer_init(&sb);
	if (envelope_sign(KEY, A.ta_kid, "consent", NULL, 0, data + 1, size - 1, &sb) == 0)
		verify((const uint8_t *)sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return 0;
}
