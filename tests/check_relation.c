/*
 * check_relation.c - unit tests for the ids a subject may have
 * (gateway/lib/subject_id.c: resident ID numbers, GB 11643, and unified
 * social credit codes, GB 32100), the relation sections of a bundle policy
 * ("guardian", "legal_rep", "agent": one parser), what proves each relation
 * (gateway/lib/relation.c: a record that names the person acting and, for
 * an agent, a delegation in force for the bundle), and the party table that
 * lets the access report name an agent (gateway/lib/journal_party.c).
 *
 * Dates are judged on China's calendar day of the "now" passed in, so the
 * tests fix now instead of reading the clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>

#include "lianban.h"
#include "check_util.h"

/* 2026-06-15 12:00 in China (04:00 UTC). */
#define NOW		INT64_C(1781496000)
#define PRINCIPAL	"440305199305182716"
#define AGENT		"440305199408261863"

START_TEST(test_uscc_valid)
{
	/* The example of GB 32100-2015, published codes, and the demo companies. */
	static const char *const good[] = { "91350100M000100Y43", "91330100799655058B",
	    "91110105MA01C3R5K2", "91310104MA1FR8TQ2Q",
	    "91110105MA01C30090" /* 31 - (sum mod 31) = 31: check character 0 */ };
	size_t	i;

	for (i = 0; i < NELEM(good); i++) {
		ck_assert_msg(subject_id_uscc(good[i]), "%s", good[i]);
		ck_assert_msg(subject_id_enterprise(good[i]), "%s", good[i]);
		ck_assert_msg(!subject_id_resident(good[i]), "%s", good[i]);
	}
}
END_TEST

START_TEST(test_uscc_invalid)
{
	static const char *const bad[] = {
		"91350100M000100Y44",	/* wrong check character */
		"91350100M000100Y4",	/* 17 characters */
		"91350100M000100Y430",	/* 19 */
		"91350100m000100Y43",	/* lower case */
		"91350100I000100Y43",	/* I, O, S, V and Z are not in the code's set */
		"91350100O000100Y43", "91350100S000100Y43", "91350100V000100Y43",
		"91350100Z000100Y43", "9135010 M000100Y43", "",
		"91110105MA01C3009Y",	/* the 0 of a zero check written otherwise */
	};
	size_t	i;

	for (i = 0; i < NELEM(bad); i++) {
		ck_assert_msg(!subject_id_uscc(bad[i]), "%s", bad[i]);
		ck_assert_msg(!subject_id_enterprise(bad[i]), "%s", bad[i]);
	}
}
END_TEST

START_TEST(test_resident_ids)
{
	int	y, m, d;

	ck_assert(subject_id_resident("110105199003151239"));
	ck_assert(subject_id_resident("11010519800101018X"));
	ck_assert(!subject_id_resident("110105199003151238"));
	ck_assert(!subject_id_resident("11010519800101018x"));
	ck_assert(!subject_id_resident("1101051990031512391"));
	ck_assert_int_eq(subject_id_birth("110105199003151239", &y, &m, &d), 0);
	ck_assert_int_eq(y * 10000 + m * 100 + d, 19900315);
	ck_assert_int_eq(subject_id_birth("110105199002301239", &y, &m, &d), -1);
	ck_assert_int_eq(subject_id_birth("11010518990101123X", &y, &m, &d), -1);
	/*
	 * A code of digits only can be a valid USCC and look like a person's
	 * id: it is a person's (even with a wrong check digit), never an
	 * enterprise's.
	 */
	ck_assert(subject_id_uscc("110105199001010071"));
	ck_assert(!subject_id_resident("110105199001010071"));
	ck_assert(!subject_id_enterprise("110105199001010071"));
}
END_TEST

static const char relations_json[] =
    "{\"bundle\": \"b\", \"name\": \"n\", \"consumers\": [\"c\"],"
    " \"assurance\": {\"amr\": [\"face\"], \"min_liveness\": 0, \"min_match\": 0},"
    " \"guardian\": {\"allowed\": false},"
    " \"legal_rep\": {\"allowed\": true, \"proofs\": ["
    "  {\"item\": \"business_license\", \"fields\": [\"legal_rep_id\"]}]},"
    " \"agent\": {\"allowed\": true, \"proofs\": ["
    "  {\"item\": \"assisted_application\", \"dept\": \"mca\", \"fields\": [\"agent_id\"]},"
    "  {\"item\": \"power_of_attorney\", \"dept\": \"notary\","
    "   \"fields\": [\"attorney_id\", \"agent_id\"]}]},"
    " \"items\": [{\"item\": \"business_license\", \"dept\": \"samr\", \"fields\": [\"name\"]}]}";

static struct policy *
parse(const char *txt, char *err, size_t errlen)
{
	msgpack_zone	 z;
	msgpack_object	 o;
	struct policy	*po = NULL;

	msgpack_zone_init(&z, 4096);
	ck_assert_msg(mpk_from_json(txt, strlen(txt), &z, &o, err, errlen) == 0, "%s", err);
	if (policy_parse(&o, &po, err, errlen) != 0)
		po = NULL;
	msgpack_zone_destroy(&z);
	return po;
}

START_TEST(test_policy_relations)
{
	const struct policy_relation	*rl;
	struct policy			*po;
	char				 err[256];

	ck_assert_msg((po = parse(relations_json, err, sizeof(err))) != NULL, "%s", err);
	ck_assert(!po->po_rel[POLICY_REL_GUARDIAN].rl_allowed);
	ck_assert_uint_eq(po->po_rel[POLICY_REL_GUARDIAN].rl_nproofs, 0);
	rl = &po->po_rel[POLICY_REL_LEGAL_REP];
	ck_assert(rl->rl_allowed);
	ck_assert_uint_eq(rl->rl_nproofs, 1);
	ck_assert_str_eq(policy_proof_dept(po, &rl->rl_proofs[0]), "samr");
	rl = &po->po_rel[POLICY_REL_AGENT];
	ck_assert(rl->rl_allowed);
	ck_assert_uint_eq(rl->rl_nproofs, 2);
	ck_assert_str_eq(rl->rl_proofs[1].pp_dept, "notary");
	ck_assert_str_eq(rl->rl_proofs[1].pp_fields[1], "agent_id");
	ck_assert_str_eq(policy_proof_dept(po, &rl->rl_proofs[0]), "mca");
	policy_free(po);
}
END_TEST

/* Each relation section is refused by the one parser, with its own name in the sentence. */
static const struct {
	const char	*from, *to, *want;
} bad_relations[] = {
	{ "\"agent\": {\"allowed\": true,", "\"agent\": {\"allowed\": 1,", "\"agent\" must be" },
	{ "\"legal_rep\": {\"allowed\": true,", "\"legal_rep\": {\"allowed\": true, \"x\": 1,",
	  "legal_rep takes only allowed and proofs" },
	{ "\"dept\": \"mca\",", "", "agent.proofs[0] names item \"assisted_application\"" },
	{ "\"fields\": [\"agent_id\"]}", "\"fields\": []}", "agent proof \"assisted_application\" "
	  "names no field" },
	{ "\"dept\": \"notary\"", "\"dept\": \"No Tary\"", "agent.proofs[1].dept" },
	{ "\"legal_rep\":", "\"legal_reps\":", "unknown policy field" },
};

START_TEST(test_policy_relations_refused)
{
	char		 txt[sizeof(relations_json) + 64], err[256];
	const char	*at;
	struct policy	*po;
	size_t		 off;

	at = strstr(relations_json, bad_relations[_i].from);
	ck_assert_ptr_nonnull(at);
	off = (size_t)(at - relations_json);
	snprintf(txt, sizeof(txt), "%.*s%s%s", (int)off, relations_json, bad_relations[_i].to,
	    at + strlen(bad_relations[_i].from));
	po = parse(txt, err, sizeof(err));
	ck_assert_msg(po == NULL, "accepted: %s", txt);
	ck_assert_msg(strstr(err, bad_relations[_i].want) != NULL, "\"%s\" lacks \"%s\"", err,
	    bad_relations[_i].want);
}
END_TEST

START_TEST(test_relation_names)
{
	enum policy_rel	rel;

	ck_assert_int_eq(relation_from_name("legal_rep", &rel), 0);
	ck_assert_int_eq(rel, POLICY_REL_LEGAL_REP);
	ck_assert_int_eq(relation_from_name("agent", &rel), 0);
	ck_assert_str_eq(relation_name(rel), "agent");
	ck_assert_int_eq(relation_from_name("self", &rel), -1);
	ck_assert_int_eq(relation_from_name("Agent", &rel), -1);
	ck_assert_int_eq(relation_error(POLICY_REL_GUARDIAN), LB_E_GUARDIAN_UNVERIFIED);
	ck_assert_int_eq(relation_error(POLICY_REL_LEGAL_REP), LB_E_AGENT_UNVERIFIED);
	ck_assert_int_eq(relation_error(POLICY_REL_AGENT), LB_E_AGENT_UNVERIFIED);
	ck_assert_str_eq(lb_err_code(LB_E_AGENT_UNVERIFIED), "agent_unverified");
	ck_assert_int_eq(lb_err_status(LB_E_AGENT_UNVERIFIED), 403);
	ck_assert_str_eq(relation_proof_op(POLICY_REL_LEGAL_REP), "legal_rep_proof");
}
END_TEST

/* A delegation record as translated: {"fields": {...}} with the given terms. */
static msgpack_object
delegation(msgpack_zone *z, const char *agent, const char *status, const char *from,
    const char *until, const char *bundles)
{
	char		 txt[512], err[128];
	msgpack_object	 o;

	snprintf(txt, sizeof(txt), "{\"type\": \"assisted_application\", \"fields\": {"
	    "\"agent_id\": \"%s\", \"status\": \"%s\", \"valid_from\": \"%s\","
	    " \"valid_until\": \"%s\", \"bundles\": %s}}", agent, status, from, until, bundles);
	ck_assert_msg(mpk_from_json(txt, strlen(txt), z, &o, err, sizeof(err)) == 0, "%s", err);
	return o;
}

START_TEST(test_agent_delegation_terms)
{
	struct policy_proof	 pp = { .pp_item = "assisted_application",
	    .pp_fields = { "agent_id" }, .pp_nfields = 1 };
	msgpack_zone		 z;
	msgpack_object		 d;
	char			 why[200], name[8];
	const char		*txt;

#define PROVEN(doc, act, bundle) relation_proven(POLICY_REL_AGENT, &pp, &(doc), act, bundle, \
	NOW, why, sizeof(why))
	msgpack_zone_init(&z, 4096);
	d = delegation(&z, AGENT, "active", "2026-01-05", "2028-12-31", "\"assist, disability\"");
	ck_assert_msg(PROVEN(d, AGENT, "disability"), "%s", why);
	ck_assert_msg(PROVEN(d, AGENT, "assist"), "%s", why);
	ck_assert(!PROVEN(d, AGENT, "assis"));
	ck_assert(strstr(why, "does not cover bundle \"assis\"") != NULL);
	ck_assert(!PROVEN(d, PRINCIPAL, "assist"));
	ck_assert(strstr(why, "does not name the applicant") != NULL);
	d = delegation(&z, AGENT, "active", "2026-01-05", "2028-12-31", "[\"x\", \"assist\"]");
	ck_assert_msg(PROVEN(d, AGENT, "assist"), "%s", why);
	/* The last valid day is still valid, in China's day (NOW is 06-15 there). */
	d = delegation(&z, AGENT, "active", "2026-01-05", "2026-06-15", "\"assist\"");
	ck_assert_msg(PROVEN(d, AGENT, "assist"), "%s", why);
	d = delegation(&z, AGENT, "active", "2026-01-05", "2026-06-14", "\"assist\"");
	ck_assert(!PROVEN(d, AGENT, "assist"));
	ck_assert_str_eq(why, "the delegation expired on 2026-06-14");
	d = delegation(&z, AGENT, "active", "2026-06-16", "2027-06-14", "\"assist\"");
	ck_assert(!PROVEN(d, AGENT, "assist"));
	ck_assert(strstr(why, "valid only from 2026-06-16") != NULL);
	d = delegation(&z, AGENT, "revoked", "2026-01-05", "2028-12-31", "\"assist\"");
	ck_assert(!PROVEN(d, AGENT, "assist"));
	ck_assert(strstr(why, "not in force") != NULL);
	d = delegation(&z, AGENT, "active", "2026-1-5", "2028-12-31", "\"assist\"");
	ck_assert(!PROVEN(d, AGENT, "assist"));
	ck_assert(strstr(why, "validity period") != NULL);
	d = delegation(&z, AGENT, "active", "2026-01-05", "2028-12-31", "7");
	ck_assert(!PROVEN(d, AGENT, "assist"));
	relation_field(&d, "agent_id", name, sizeof(name));
	ck_assert_str_eq(name, "4403051");	/* cut to fit */
	txt = "{\"fields\": {\"agent_name\": \"黄丽\"}}";
	ck_assert(mpk_from_json(txt, strlen(txt), &z, &d, why, sizeof(why)) == 0);
	relation_field(&d, "agent_name", name, 6);
	ck_assert_str_eq(name, "黄");	/* 5 bytes fit, a whole character is 3 */
#undef PROVEN
	msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_legal_rep_and_guardian_proofs)
{
	struct policy_proof	 pp = { .pp_item = "business_license",
	    .pp_fields = { "legal_rep_id" }, .pp_nfields = 1 };
	msgpack_zone		 z;
	msgpack_object		 d;
	char			 why[200], err[128];
	const char		*txt;

	msgpack_zone_init(&z, 4096);
	txt = "{\"fields\": {\"legal_rep_id\": \"" AGENT "\", \"status\": \"active\"}}";
	ck_assert(mpk_from_json(txt, strlen(txt), &z, &d, err, sizeof(err)) == 0);
	ck_assert(relation_proven(POLICY_REL_LEGAL_REP, &pp, &d, AGENT, "b", NOW, why,
	    sizeof(why)));
	ck_assert(!relation_proven(POLICY_REL_LEGAL_REP, &pp, &d, PRINCIPAL, "b", NOW, why,
	    sizeof(why)));
	ck_assert(strstr(why, "legal representative") != NULL);
	/* A deregistered enterprise has no one to act for it. */
	txt = "{\"fields\": {\"legal_rep_id\": \"" AGENT "\", \"status\": \"cancelled\"}}";
	ck_assert(mpk_from_json(txt, strlen(txt), &z, &d, err, sizeof(err)) == 0);
	ck_assert(!relation_proven(POLICY_REL_LEGAL_REP, &pp, &d, AGENT, "b", NOW, why,
	    sizeof(why)));
	ck_assert(strstr(why, "cancelled") != NULL);
	/* A guardian's record needs no terms. */
	ck_assert(relation_proven(POLICY_REL_GUARDIAN, &pp, &d, AGENT, "b", NOW, why,
	    sizeof(why)));
	/* Only a minor has a guardian. */
	ck_assert(relation_subject_ok(POLICY_REL_GUARDIAN, "110105201903070021", NOW, why,
	    sizeof(why)));
	ck_assert(!relation_subject_ok(POLICY_REL_GUARDIAN, "110105199003151239", NOW, why,
	    sizeof(why)));
	ck_assert(strstr(why, "36 years old") != NULL);
	ck_assert(relation_subject_ok(POLICY_REL_AGENT, "110105199003151239", NOW, why,
	    sizeof(why)));
	msgpack_zone_destroy(&z);
}
END_TEST

static int	ndone;

static void
on_append(void *arg, int status, uint64_t first)
{
	(void)arg;
	(void)first;
	ck_assert_int_eq(status, 0);
	ndone++;
}

START_TEST(test_party_table)
{
	char			 parent[] = "/tmp/check_relation.XXXXXX", dir[64], id[LB_SUBJECT_MAX];
	char			 name[JOURNAL_PARTY_NAME_MAX], longname[301];
	struct event_base	*base;
	struct journal		*j;
	struct jrec		 r;
	EVP_PKEY		*key;
	X509			*cert;
	uint8_t			 actor[32];
	size_t			 i;

	journal_party_mask(AGENT, id);
	ck_assert_str_eq(id, "440305********1863");
	journal_party_mask("ABCDEFGHIJ", id);
	ck_assert_str_eq(id, "**********");
	ck_assert_ptr_nonnull(mkdtemp(parent));
	snprintf(dir, sizeof(dir), "%s/db", parent);
	ck_assert_ptr_nonnull(key = EVP_EC_gen("P-256"));
	cert = check_cert(key, "/CN=journal checkpoint", 1, NULL, NULL, false);
	ck_assert_ptr_nonnull(base = event_base_new());
	j = check_journal_open(dir, key, cert, 0);
	/* Names are cut at a character boundary: 100 three-byte characters. */
	for (i = 0; i < 100; i++)
		memcpy(longname + 3 * i, "黄", 3);
	longname[300] = '\0';
	ck_assert_int_eq(journal_party_note(j, AGENT, "黄丽"), 0);
	ck_assert_int_eq(journal_party_note(j, PRINCIPAL, longname), 0);
	ck_assert_int_eq(journal_party_note(j, "", "x"), -1);
	/* A record queued after the notes commits no earlier than they do. */
	memset(&r, 0, sizeof(r));
	r.jr_kind = JK_EXCHANGE;
	r.jr_t_ms = 1;
	ndone = 0;
	ck_assert_int_eq(journal_append(j, base, &r, 1, on_append, NULL), 0);
	check_run_until(base, &ndone, 1, 60 * 1000);
	ck_assert_int_eq(ndone, 1);
	journal_pseudonym(j, AGENT, actor);
	ck_assert_int_eq(journal_party_get(j, actor, id, name), 1);
	ck_assert_str_eq(id, "440305********1863");
	ck_assert_str_eq(name, "黄丽");
	journal_pseudonym(j, PRINCIPAL, actor);
	ck_assert_int_eq(journal_party_get(j, actor, id, name), 1);
	ck_assert_uint_eq(strlen(name), 126);	/* 42 whole characters of 127 bytes */
	journal_pseudonym(j, "110105199003151239", actor);
	ck_assert_int_eq(journal_party_get(j, actor, id, name), 0);
	journal_close(j);
	event_base_free(base);
	EVP_PKEY_free(key);
	X509_free(cert);
	ck_assert_int_eq(check_rm_tree(parent), 0);
}
END_TEST

static Suite *
relation_suite(void)
{
	Suite	*s = suite_create("relation");
	TCase	*tc;

	tc = tcase_create("ids");
	tcase_add_test(tc, test_uscc_valid);
	tcase_add_test(tc, test_uscc_invalid);
	tcase_add_test(tc, test_resident_ids);
	suite_add_tcase(s, tc);

	tc = tcase_create("policy");
	tcase_add_test(tc, test_policy_relations);
	tcase_add_loop_test(tc, test_policy_relations_refused, 0, NELEM(bad_relations));
	tcase_add_test(tc, test_relation_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("proofs");
	tcase_add_test(tc, test_agent_delegation_terms);
	tcase_add_test(tc, test_legal_rep_and_guardian_proofs);
	suite_add_tcase(s, tc);

	tc = tcase_create("party");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_party_table);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(relation_suite());
}
