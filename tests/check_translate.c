/*
 * check_translate.c - adapter specs and translation of department answers
 * (gateway/lib/translate.c, gateway/lib/translate_json.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "lianban.h"
#include "check_util.h"

#define ITEM	"birth_medical_certificate"
#define SUBJ	"S1"

/*
 * A small spec for one item; tests edit it through jansson before
 * compiling it.  Answers to it look like {"n":..,"id":..,"d":..,"v":..}.
 */
static const char base_spec[] =
    "{\"id\":\"t\",\"dept\":\"nhc\",\"items\":[\"" ITEM "\"],"
    "\"endpoint\":\"http://127.0.0.1:1/x?id={subject}\",\"format\":\"json\","
    "\"mapping\":{\"" ITEM "\":{\"type\":\"" ITEM "\","
    "\"number\":{\"src\":\"/n\",\"required\":true},"
    "\"holder\":{\"id\":{\"src\":\"/id\",\"required\":true},\"name\":{\"src\":\"/name\"}},"
    "\"issuer\":{\"dept\":\"nhc\"},"
    "\"issued\":{\"src\":\"/d\",\"date\":\"YYYY-MM-DD\",\"required\":true},"
    "\"fields\":{}}}}";

/* The nhc department simulator's answer for one newborn. */
static const char nhc_answer[] =
    "{\"code\": 0, \"message\": \"成功\", \"data\": {\n"
    "  \"cert_no\": \"Q110000123\", \"issue_date\": \"2026/1/5\",\n"
    "  \"hospital\": \"北京市朝阳区妇幼保健院\", \"birthplace\": \"北京市朝阳区\",\n"
    "  \"baby\": {\"id\": \"110105202601030012\", \"name\": \"　王小明 \", \"sex\": \"1\",\n"
    "           \"birth_date\": \"20260103\", \"birth_time\": \"08:30\", \"weight_g\": \"3250\"},\n"
    "  \"mother\": {\"name\": \"李华\", \"id\": \"110105199203154526\"},\n"
    "  \"father\": {\"name\": \"王强\", \"id\": 110105199001010031}}}";
#define NHC_SUBJ	"110105202601030012"

static const char *
srcdir(void)
{
	const char	*d = getenv("LB_SRCDIR");

	if (d != NULL && d[0] != '\0')
		return d;
#ifdef LB_SRCDIR
	return LB_SRCDIR;
#else
	return ".";
#endif
}

/* Compiles a spec from JSON text; the msgpack form is freed before returning. */
static struct adapter *
spec_from_text(const char *txt, char *err, size_t errlen)
{
	msgpack_zone	*z = msgpack_zone_new(4096);
	msgpack_object	 o;
	struct adapter	*ad = NULL;

	ck_assert_ptr_nonnull(z);
	if (mpk_from_json(txt, strlen(txt), z, &o, err, errlen) == 0)
		(void)adapter_parse(&o, &ad, err, errlen);
	msgpack_zone_free(z);
	return ad;
}

static struct adapter *
spec_from_json(json_t *j, char *err, size_t errlen)
{
	char		*txt = json_dumps(j, JSON_COMPACT);
	struct adapter	*ad;

	ck_assert_ptr_nonnull(txt);
	ad = spec_from_text(txt, err, errlen);
	free(txt);
	return ad;
}

/*
 * Sets (or, with val NULL, deletes) the member at a '/'-separated path of
 * the spec, creating maps on the way.
 */
static void
json_put(json_t *root, const char *path, const char *val)
{
	char	 buf[256], *p, *slash;
	json_t	*cur = root, *next, *v;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
		*slash = '\0';
		if ((next = json_object_get(cur, p)) == NULL) {
			next = json_object();
			json_object_set_new(cur, p, next);
		}
		cur = next;
	}
	if (val == NULL) {
		json_object_del(cur, p);
		return;
	}
	v = json_loads(val, JSON_DECODE_ANY, NULL);
	ck_assert_msg(v != NULL, "bad test JSON %s", val);
	json_object_set_new(cur, p, v);
}

static json_t *
base(void)
{
	json_t	*j = json_loads(base_spec, 0, NULL);

	ck_assert_ptr_nonnull(j);
	return j;
}

/* The base spec with fields.x = rule. */
static struct adapter *
spec_with_rule(const char *rule)
{
	json_t		*j = base();
	struct adapter	*ad;
	char		 err[512];

	json_put(j, "mapping/" ITEM "/fields/x", rule);
	ad = spec_from_json(j, err, sizeof(err));
	json_decref(j);
	ck_assert_msg(ad != NULL, "spec refused: %s", err);
	return ad;
}

/*
 * Translates an answer whose "v" member is value (JSON text, or NULL for
 * no "v") with fields.x = rule.  *out gets fields.x as JSON, or "absent".
 */
static enum lb_err
field_try(const char *rule, const char *value, char *out, size_t outlen, char *err,
    size_t errlen)
{
	struct adapter		*ad = spec_with_rule(rule);
	msgpack_zone		*z = msgpack_zone_new(1024);
	msgpack_object		 doc;
	const msgpack_object	*x;
	char			 body[512], *s;
	enum lb_err		 e;

	if (value != NULL)
		snprintf(body, sizeof(body), "{\"n\":\"1\",\"id\":\"" SUBJ "\",\"d\":\"2026-01-01\","
		    "\"v\":%s}", value);
	else
		snprintf(body, sizeof(body), "{\"n\":\"1\",\"id\":\"" SUBJ "\",\"d\":\"2026-01-01\"}");
	snprintf(out, outlen, "-");
	e = translate(ad, ITEM, SUBJ, body, strlen(body), z, &doc, err, errlen);
	if (e == LB_OK) {
		x = mpk_get(mpk_get(&doc, "fields"), "x");
		if (x == NULL)
			snprintf(out, outlen, "absent");
		else {
			s = mpk_to_json(x, false);
			ck_assert_ptr_nonnull(s);
			snprintf(out, outlen, "%s", s);
			free(s);
		}
	}
	msgpack_zone_free(z);
	adapter_free(ad);
	return e;
}

static enum lb_err
tx(const struct adapter *ad, const char *subject, const char *body, size_t len,
    msgpack_zone *z, msgpack_object *doc, char *err, size_t errlen)
{
	return translate(ad, ITEM, subject, body, len, z, doc, err, errlen);
}

/* Translation of a whole answer against the base spec. */
static enum lb_err
body_try(const char *body, size_t len, char *err, size_t errlen)
{
	json_t		*j = base();
	struct adapter	*ad = spec_from_json(j, err, errlen);
	msgpack_zone	*z = msgpack_zone_new(1024);
	msgpack_object	 doc;
	enum lb_err	 e;

	ck_assert_msg(ad != NULL, "%s", err);
	e = tx(ad, SUBJ, body, len, z, &doc, err, errlen);
	msgpack_zone_free(z);
	adapter_free(ad);
	json_decref(j);
	return e;
}

static void
pk_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static struct adapter *
nhc_adapter(void)
{
	char		 path[1024], err[512];
	uint8_t		*buf;
	size_t		 len;
	struct adapter	*ad;

	snprintf(path, sizeof(path), "%s/adapters/specs/nhc-birth.json", srcdir());
	ck_assert_msg(file_read(path, 65536, &buf, &len) == 0, "cannot read %s", path);
	ad = spec_from_text((const char *)buf, err, sizeof(err));
	free(buf);
	ck_assert_msg(ad != NULL, "nhc-birth.json refused: %s", err);
	return ad;
}

/*
 * The shipped spec.
 */

START_TEST(spec_nhc_loads)
{
	struct adapter	*ad = nhc_adapter();
	msgpack_zone	*z = msgpack_zone_new(4096);
	msgpack_object	 o;

	ck_assert_str_eq(ad->ad_id, "nhc-birth");
	ck_assert_str_eq(ad->ad_dept, "nhc");
	ck_assert_uint_eq(ad->ad_nitems, 1);
	ck_assert_str_eq(ad->ad_items[0], ITEM);
	ck_assert_uint_eq(ad->ad_timeout_ms, 3000);
	ck_assert_int_eq(ad->ad_format, SRC_JSON);
	ck_assert_str_eq(src_format_name(ad->ad_format), "json");
	ck_assert_str_eq(ad->ad_encoding, "utf-8");
	ck_assert_str_eq(ad->ad_seal, "nhc");
	ck_assert(!ad->ad_record.rs_set);
	ck_assert(adapter_serves(ad, ITEM));
	ck_assert(!adapter_serves(ad, "marriage_certificate"));
	/* The stored spec is canonical and says what the file says. */
	ck_assert(ad->ad_spec != NULL && ad->ad_spec_len > 0);
	ck_assert(mpk_is_canonical(ad->ad_spec, ad->ad_spec_len));
	ck_assert_int_eq(mpk_unpack(ad->ad_spec, ad->ad_spec_len, z, &o), 0);
	ck_assert(mpk_str_eq(mpk_get(&o, "endpoint"),
	    "http://127.0.0.1:8701/nhc/birth-medical-certificates?id={subject}"));
	msgpack_zone_free(z);
	adapter_free(ad);
}
END_TEST

START_TEST(translate_nhc_exact)
{
	struct adapter	*ad = nhc_adapter();
	msgpack_zone	*z = msgpack_zone_new(4096);
	msgpack_sbuffer	 got, want;
	msgpack_packer	 pk;
	msgpack_object	 doc;
	char		 err[512], *js;

	ck_assert_int_eq(tx(ad, NHC_SUBJ, nhc_answer, strlen(nhc_answer), z, &doc, err,
	    sizeof(err)), LB_OK);
	/* The adapter may go (a reload) while the document lives on. */
	adapter_free(ad);
	msgpack_sbuffer_init(&got);
	ck_assert_int_eq(mpk_pack(&doc, &got, false), 0);

	/* The expected document, packed by hand in canonical key order. */
	msgpack_sbuffer_init(&want);
	msgpack_packer_init(&pk, &want, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
	pk_str(&pk, "fields");
	msgpack_pack_map(&pk, 9);
	pk_str(&pk, "birth_date");	pk_str(&pk, "2026-01-03");
	pk_str(&pk, "birth_place");	pk_str(&pk, "北京市朝阳区");
	pk_str(&pk, "birth_time");	pk_str(&pk, "08:30");
	pk_str(&pk, "father_id");	pk_str(&pk, "110105199001010031");
	pk_str(&pk, "father_name");	pk_str(&pk, "王强");
	pk_str(&pk, "gender");		pk_str(&pk, "male");
	pk_str(&pk, "mother_id");	pk_str(&pk, "110105199203154526");
	pk_str(&pk, "mother_name");	pk_str(&pk, "李华");
	pk_str(&pk, "weight_g");	msgpack_pack_uint16(&pk, 3250);
	pk_str(&pk, "holder");
	msgpack_pack_map(&pk, 2);
	pk_str(&pk, "id");		pk_str(&pk, NHC_SUBJ);
	pk_str(&pk, "name");		pk_str(&pk, "王小明");
	pk_str(&pk, "issued");		pk_str(&pk, "2026-01-05");
	pk_str(&pk, "issuer");
	msgpack_pack_map(&pk, 2);
	pk_str(&pk, "dept");		pk_str(&pk, "nhc");
	pk_str(&pk, "name");		pk_str(&pk, "北京市朝阳区妇幼保健院");
	pk_str(&pk, "number");		pk_str(&pk, "Q110000123");
	pk_str(&pk, "type");		pk_str(&pk, ITEM);

	ck_assert_uint_eq(got.size, want.size);
	ck_assert(memcmp(got.data, want.data, want.size) == 0);
	ck_assert(mpk_is_canonical(got.data, got.size));

	js = mpk_to_json(&doc, false);
	ck_assert_ptr_nonnull(js);
	ck_assert_str_eq(js, "{\"fields\":{\"birth_date\":\"2026-01-03\",\"birth_place\":"
	    "\"北京市朝阳区\",\"birth_time\":\"08:30\",\"father_id\":\"110105199001010031\","
	    "\"father_name\":\"王强\",\"gender\":\"male\",\"mother_id\":\"110105199203154526\","
	    "\"mother_name\":\"李华\",\"weight_g\":3250},\"holder\":{\"id\":\"" NHC_SUBJ "\","
	    "\"name\":\"王小明\"},\"issued\":\"2026-01-05\",\"issuer\":{\"dept\":\"nhc\","
	    "\"name\":\"北京市朝阳区妇幼保健院\"},\"number\":\"Q110000123\",\"type\":\"" ITEM "\"}");
	free(js);
	msgpack_sbuffer_destroy(&got);
	msgpack_sbuffer_destroy(&want);
	msgpack_zone_free(z);
}
END_TEST

START_TEST(translate_nhc_other_subject)
{
	struct adapter	*ad = nhc_adapter();
	msgpack_zone	*z = msgpack_zone_new(4096);
	msgpack_object	 doc;
	char		 err[512];

	ck_assert_int_eq(tx(ad, "110105202601030020", nhc_answer, strlen(nhc_answer), z, &doc,
	    err, sizeof(err)), LB_E_SUBJECT_MISMATCH);
	ck_assert_ptr_null(strstr(err, NHC_SUBJ));
	ck_assert_int_eq(translate(ad, "marriage_certificate", NHC_SUBJ, nhc_answer,
	    strlen(nhc_answer), z, &doc, err, sizeof(err)), LB_E_NO_ADAPTER);
	msgpack_zone_free(z);
	adapter_free(ad);
}
END_TEST

START_TEST(url_nhc)
{
	struct adapter	*ad = nhc_adapter();
	const char	*want = "http://127.0.0.1:8701/nhc/birth-medical-certificates?id="
			    "110105202601030012";
	char		 buf[LB_URL_MAX], big[80];

	ck_assert_int_eq(adapter_url(ad, ITEM, NHC_SUBJ, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, want);
	/* Exactly enough room, then one byte too little. */
	ck_assert_int_eq(adapter_url(ad, ITEM, NHC_SUBJ, buf, strlen(want) + 1), 0);
	ck_assert_str_eq(buf, want);
	ck_assert_int_eq(adapter_url(ad, ITEM, NHC_SUBJ, buf, strlen(want)), -1);
	ck_assert_int_eq(adapter_url(ad, ITEM, "a b/c?&=#%中", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "http://127.0.0.1:8701/nhc/birth-medical-certificates?id="
	    "a%20b%2Fc%3F%26%3D%23%25%E4%B8%AD");
	ck_assert_int_eq(adapter_url(ad, ITEM, "Az09-._~", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "http://127.0.0.1:8701/nhc/birth-medical-certificates?id=Az09-._~");
	ck_assert_int_eq(adapter_url(ad, ITEM, "", buf, sizeof(buf)), -1);
	memset(big, 'x', sizeof(big));
	big[LB_SUBJECT_MAX] = '\0';
	ck_assert_int_eq(adapter_url(ad, ITEM, big, buf, sizeof(buf)), -1);
	big[LB_SUBJECT_MAX - 1] = '\0';
	ck_assert_int_eq(adapter_url(ad, ITEM, big, buf, sizeof(buf)), 0);
	ck_assert_int_eq(adapter_url(ad, "marriage_certificate", NHC_SUBJ, buf, sizeof(buf)), -1);
	adapter_free(ad);
}
END_TEST

START_TEST(url_item_placeholder)
{
	json_t		*j = base();
	struct adapter	*ad;
	char		 err[512], buf[LB_URL_MAX];

	json_put(j, "endpoint", "\"https://dept.example:8443/v1/{item}?s={subject}&again={subject}\"");
	ad = spec_from_json(j, err, sizeof(err));
	ck_assert_msg(ad != NULL, "%s", err);
	ck_assert_int_eq(adapter_url(ad, ITEM, "X 1", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "https://dept.example:8443/v1/" ITEM "?s=X%201&again=X%201");
	adapter_free(ad);
	json_decref(j);
}
END_TEST

/*
 * Conversions.
 */

static const struct {
	const char	*fmt;
	const char	*value;
	enum lb_err	 want;
	const char	*out;
} date_cases[] = {
	{ "YYYYMMDD",		"\"20260103\"",		LB_OK,	"\"2026-01-03\"" },
	{ "YYYYMMDD",		"20260103",		LB_OK,	"\"2026-01-03\"" },
	{ "YYYYMMDD",		"\"2026013\"",		LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYYMMDD",		"\"202601031\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYYMMDD",		"\"20260230\"",		LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY-MM-DD",		"\"2026-01-03\"",	LB_OK,	"\"2026-01-03\"" },
	{ "YYYY-MM-DD",		"\"2026-02-30\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY-MM-DD",		"\"2026-02-29\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY-MM-DD",		"\"2024-02-29\"",	LB_OK,	"\"2024-02-29\"" },
	{ "YYYY-MM-DD",		"\"2000-02-29\"",	LB_OK,	"\"2000-02-29\"" },
	{ "YYYY-MM-DD",		"\"1900-02-29\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY-MM-DD",		"\"2026-04-31\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY-MM-DD",		"\"2026-12-31\"",	LB_OK,	"\"2026-12-31\"" },
	{ "YYYY-MM-DD",		"\"2026-13-01\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY-MM-DD",		"\"2026-00-10\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY-MM-DD",		"\"0000-01-01\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY-MM-DD",		"\"2026-1-3\"",		LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY-MM-DD",		"\"2026-01-0a\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY-MM-DD",		"\"2026/01/03\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY/MM/DD",		"\"2026/01/03\"",	LB_OK,	"\"2026-01-03\"" },
	{ "YYYY/MM/DD",		"\"2026/1/3\"",		LB_OK,	"\"2026-01-03\"" },
	{ "YYYY/MM/DD",		"\"2026/12/3\"",	LB_OK,	"\"2026-12-03\"" },
	{ "YYYY/MM/DD",		"\"2026/001/03\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY/MM/DD",		"\"2026/1/3 \"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY/MM/DD",		"\"2026/2/30\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY年MM月DD日",	"\"2026年1月3日\"",	LB_OK,	"\"2026-01-03\"" },
	{ "YYYY年MM月DD日",	"\"2026年01月03日\"",	LB_OK,	"\"2026-01-03\"" },
	{ "YYYY年MM月DD日",	"\"2026年11月30日\"",	LB_OK,	"\"2026-11-30\"" },
	{ "YYYY年MM月DD日",	"\"2026年1月3\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY年MM月DD日",	"\"2026年2月30日\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
	{ "YYYY年MM月DD日",	"\"26年1月3日\"",	LB_E_DEPARTMENT_BAD_RESPONSE, NULL },
};

START_TEST(date_formats)
{
	char	rule[128], out[128], err[512];

	snprintf(rule, sizeof(rule), "{\"src\":\"/v\",\"date\":\"%s\"}", date_cases[_i].fmt);
	ck_assert_msg(field_try(rule, date_cases[_i].value, out, sizeof(out), err,
	    sizeof(err)) == date_cases[_i].want, "%s %s: %s", date_cases[_i].fmt,
	    date_cases[_i].value, err);
	if (date_cases[_i].want == LB_OK)
		ck_assert_str_eq(out, date_cases[_i].out);
	else {
		ck_assert_msg(strstr(err, "fields.x") != NULL &&
		    strstr(err, "not a valid date") != NULL, "%s", err);
		/* Messages never quote the answer. */
		ck_assert_ptr_null(strstr(err, "2026-02-30"));
	}
}
END_TEST

START_TEST(date_trimmed)
{
	char	out[128], err[512];

	ck_assert_int_eq(field_try("{\"src\":\"/v\",\"date\":\"YYYY/MM/DD\",\"trim\":true}",
	    "\"\u3000 2026/1/3 \"", out, sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"2026-01-03\"");
}
END_TEST

START_TEST(code_tables)
{
	const char	*rule = "{\"src\":\"/v\",\"codes\":{\"1\":\"male\",\"2\":\"female\"}}";
	const char	*rule_def = "{\"src\":\"/v\",\"codes\":{\"1\":\"male\",\"2\":\"female\"},"
			    "\"default\":\"unknown\"}";
	char		 out[128], err[512];

	ck_assert_int_eq(field_try(rule, "\"1\"", out, sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"male\"");
	ck_assert_int_eq(field_try(rule, "2", out, sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"female\"");
	ck_assert_int_eq(field_try(rule, "\"9\"", out, sizeof(out), err, sizeof(err)),
	    LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_msg(strstr(err, "code table") != NULL && strstr(err, "fields.x") != NULL,
	    "%s", err);
	ck_assert_int_eq(field_try(rule, "\" 1\"", out, sizeof(out), err, sizeof(err)),
	    LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_int_eq(field_try(rule, "\"male\"", out, sizeof(out), err, sizeof(err)),
	    LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_int_eq(field_try(rule_def, "\"9\"", out, sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"unknown\"");
	ck_assert_int_eq(field_try(rule_def, "\"2\"", out, sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"female\"");
	ck_assert_int_eq(field_try("{\"src\":\"/v\",\"trim\":true,\"codes\":{\"1\":\"male\"}}",
	    "\" 1\u3000\"", out, sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"male\"");
	/* A code table may feed an integer. */
	ck_assert_int_eq(field_try("{\"src\":\"/v\",\"codes\":{\"A\":\"1\",\"B\":\"2\"},"
	    "\"as\":\"int\"}", "\"B\"", out, sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "2");
}
END_TEST

START_TEST(trim_spaces)
{
	char	out[128], err[512];

	ck_assert_int_eq(field_try("{\"src\":\"/v\",\"trim\":true}", "\"\u3000王小明\u3000\"",
	    out, sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"王小明\"");
	ck_assert_int_eq(field_try("{\"src\":\"/v\",\"trim\":true}", "\" \\t王 小明\\r\\n\u3000 \"",
	    out, sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"王 小明\"");
	/* Without trim the spaces stay. */
	ck_assert_int_eq(field_try("{\"src\":\"/v\"}", "\"\u3000王小明 \"", out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"\u3000王小明 \"");
	/* Nothing but spaces is nothing. */
	ck_assert_int_eq(field_try("{\"src\":\"/v\",\"trim\":true}", "\"\u3000 \u3000\"", out,
	    sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "absent");
	ck_assert_int_eq(field_try("{\"src\":\"/v\",\"trim\":true,\"required\":true}",
	    "\"\u3000\"", out, sizeof(out), err, sizeof(err)), LB_E_DEPARTMENT_BAD_RESPONSE);
}
END_TEST

START_TEST(as_int)
{
	const char	*rule = "{\"src\":\"/v\",\"as\":\"int\"}";
	char		 out[128], err[512];

	ck_assert_int_eq(field_try(rule, "\"3250\"", out, sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "3250");
	ck_assert_int_eq(field_try(rule, "3250", out, sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "3250");
	ck_assert_int_eq(field_try(rule, "\"-12\"", out, sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "-12");
	ck_assert_int_eq(field_try(rule, "\"9223372036854775807\"", out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "9223372036854775807");
	ck_assert_int_eq(field_try(rule, "\"-9223372036854775808\"", out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "-9223372036854775808");
	ck_assert_int_eq(field_try(rule, "\"9223372036854775808\"", out, sizeof(out), err,
	    sizeof(err)), LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_int_eq(field_try(rule, "\"32a\"", out, sizeof(out), err, sizeof(err)),
	    LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_msg(strstr(err, "decimal integer") != NULL, "%s", err);
	ck_assert_int_eq(field_try(rule, "\"+5\"", out, sizeof(out), err, sizeof(err)),
	    LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_int_eq(field_try(rule, "\"-\"", out, sizeof(out), err, sizeof(err)),
	    LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_int_eq(field_try(rule, "\"\"", out, sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "absent");
	/* The default output is a string, also for integer sources. */
	ck_assert_int_eq(field_try("{\"src\":\"/v\"}", "3250", out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"3250\"");
	ck_assert_int_eq(field_try("{\"src\":\"/v\",\"as\":\"string\"}", "-7", out, sizeof(out),
	    err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"-7\"");
}
END_TEST

START_TEST(constants)
{
	char	out[128], err[512];

	ck_assert_int_eq(field_try("\"fixed text\"", "1", out, sizeof(out), err, sizeof(err)),
	    LB_OK);
	ck_assert_str_eq(out, "\"fixed text\"");
	ck_assert_int_eq(field_try("7", NULL, out, sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "7");
	ck_assert_int_eq(field_try("{\"const\":\"2\",\"codes\":{\"2\":\"female\"}}", NULL, out,
	    sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"female\"");
	ck_assert_int_eq(field_try("{\"const\":7,\"as\":\"string\"}", NULL, out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"7\"");
}
END_TEST

START_TEST(missing_fields)
{
	char	out[128], err[512];

	ck_assert_int_eq(field_try("{\"src\":\"/v\"}", NULL, out, sizeof(out), err, sizeof(err)),
	    LB_OK);
	ck_assert_str_eq(out, "absent");
	ck_assert_int_eq(field_try("{\"src\":\"/v\"}", "null", out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "absent");
	ck_assert_int_eq(field_try("{\"src\":\"/v\",\"required\":false}", "\"\"", out,
	    sizeof(out), err, sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "absent");
	ck_assert_int_eq(field_try("{\"src\":\"/v\",\"required\":true}", NULL, out, sizeof(out),
	    err, sizeof(err)), LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_str_eq(err, "required field \"fields.x\" (source /v) is missing from the answer");
	ck_assert_int_eq(field_try("{\"src\":\"/v\",\"required\":true}", "null", out, sizeof(out),
	    err, sizeof(err)), LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_int_eq(field_try("{\"src\":\"/v\",\"required\":true}", "\"\"", out, sizeof(out),
	    err, sizeof(err)), LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_int_eq(field_try("{\"src\":\"/v/deeper\",\"required\":true}", "\"flat\"", out,
	    sizeof(out), err, sizeof(err)), LB_E_DEPARTMENT_BAD_RESPONSE);
	/* A nested map stays, even when all its fields are absent. */
	ck_assert_int_eq(field_try("{\"a\":{\"src\":\"/nothing\"}}", NULL, out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "{}");
}
END_TEST

START_TEST(wrong_value_types)
{
	char	out[128], err[512];

	ck_assert_int_eq(field_try("{\"src\":\"/v\"}", "true", out, sizeof(out), err,
	    sizeof(err)), LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_str_eq(err, "field \"fields.x\" (source /v): the value is a boolean, "
	    "not a string or an integer");
	ck_assert_int_eq(field_try("{\"src\":\"/v\"}", "1.5", out, sizeof(out), err,
	    sizeof(err)), LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_int_eq(field_try("{\"src\":\"/v\"}", "{\"a\":\"b\"}", out, sizeof(out), err,
	    sizeof(err)), LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_int_eq(field_try("{\"src\":\"/v\"}", "[\"a\"]", out, sizeof(out), err,
	    sizeof(err)), LB_E_DEPARTMENT_BAD_RESPONSE);
}
END_TEST

START_TEST(json_pointers)
{
	char	out[128], err[512];
	const char *v = "{\"a/b\":{\"~k\":\"v1\"},\"list\":[\"x\",\"y\"],\"\":\"empty key\"}";

	ck_assert_int_eq(field_try("{\"src\":\"/v/a~1b/~0k\"}", v, out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"v1\"");
	ck_assert_int_eq(field_try("{\"src\":\"/v/list/1\"}", v, out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"y\"");
	ck_assert_int_eq(field_try("{\"src\":\"/v/list/0\"}", v, out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"x\"");
	ck_assert_int_eq(field_try("{\"src\":\"/v/\"}", v, out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "\"empty key\"");
	ck_assert_int_eq(field_try("{\"src\":\"/v/list/01\"}", v, out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "absent");
	ck_assert_int_eq(field_try("{\"src\":\"/v/list/-\"}", v, out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "absent");
	ck_assert_int_eq(field_try("{\"src\":\"/v/list/2\"}", v, out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "absent");
	ck_assert_int_eq(field_try("{\"src\":\"/v/a~1b/~0k/more\"}", v, out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "absent");
	ck_assert_int_eq(field_try("{\"src\":\"/v/a/b\"}", v, out, sizeof(out), err,
	    sizeof(err)), LB_OK);
	ck_assert_str_eq(out, "absent");
}
END_TEST

/*
 * Whole answers.
 */

#define GOOD	"{\"n\":\"1\",\"id\":\"" SUBJ "\",\"d\":\"2026-01-01\"}"

START_TEST(answer_good)
{
	char	err[512];

	ck_assert_int_eq(body_try(GOOD, strlen(GOOD), err, sizeof(err)), LB_OK);
	/* A UTF-8 byte order mark is allowed. */
	ck_assert_int_eq(body_try("\xef\xbb\xbf" GOOD, strlen(GOOD) + 3, err, sizeof(err)), LB_OK);
	/* Only len bytes count, not the NUL after them. */
	ck_assert_int_eq(body_try(GOOD "garbage", strlen(GOOD), err, sizeof(err)), LB_OK);
}
END_TEST

static const struct {
	const char	*body;
	const char	*why;
} bad_answers[] = {
	{ "{",						"ends too early" },
	{ "{\"n\":\"1\",\"id\":\"" SUBJ "\",\"d\":\"2026-0",	"ends too early" },
	{ "",						"the answer is empty" },
	{ "\xef\xbb\xbf",					"the answer is empty" },
	{ "{\"n\" \"1\"}",				"syntax error" },
	{ GOOD " {}",					"more after the JSON value" },
	{ "[" GOOD "]",					"is an array, not a JSON object" },
	{ "\"" SUBJ "\"",				"is a string, not a JSON object" },
	{ "42",						"is an integer, not a JSON object" },
	{ "null",					"is null, not a JSON object" },
	{ "{\"n\":\"1\",\"n\":\"2\",\"id\":\"" SUBJ "\",\"d\":\"2026-01-01\"}",
							"duplicate key" },
	{ "{\"n\":\"\xff\",\"id\":\"" SUBJ "\",\"d\":\"2026-01-01\"}",	"not valid UTF-8" },
	{ "{\"n\":\"\xc0\x80\",\"id\":\"" SUBJ "\",\"d\":\"2026-01-01\"}", "not valid UTF-8" },
	{ "{\"n\":\"\xed\xa0\x80\",\"id\":\"" SUBJ "\",\"d\":\"2026-01-01\"}", "not valid UTF-8" },
	{ "{\"n\":\"a\\u0000b\",\"id\":\"" SUBJ "\",\"d\":\"2026-01-01\"}", "NUL character" },
	{ "{\"n\":\"1\",\"id\":\"" SUBJ "\",\"d\":\"2026-01-01\",\"x\":1e999}", "" },
	{ "{\"id\":\"" SUBJ "\",\"d\":\"2026-01-01\"}",	"required field \"number\"" },
	{ "{\"n\":\"1\",\"d\":\"2026-01-01\"}",		"required field \"holder.id\"" },
	{ "{\"n\":\"1\",\"id\":\"" SUBJ "\",\"d\":\"01/01/2026\"}", "field \"issued\" (source /d)" },
	{ "{\"n\":\"1\",\"id\":7,\"d\":\"2026-01-01\"}",	"another person" },
};

START_TEST(answer_bad)
{
	char		err[512];
	enum lb_err	e;

	e = body_try(bad_answers[_i].body, strlen(bad_answers[_i].body), err, sizeof(err));
	if (strstr(bad_answers[_i].why, "another person") != NULL)
		ck_assert_int_eq(e, LB_E_SUBJECT_MISMATCH);
	else
		ck_assert_msg(e == LB_E_DEPARTMENT_BAD_RESPONSE, "%s: %d %s",
		    bad_answers[_i].body, e, err);
	ck_assert_msg(strstr(err, bad_answers[_i].why) != NULL, "\"%s\" lacks \"%s\"", err,
	    bad_answers[_i].why);
}
END_TEST

START_TEST(answer_sizes)
{
	char	*big, err[512];
	size_t	 n = LB_DEPT_BODY_MAX;

	/* The largest answer allowed still translates, one byte more does not. */
	ck_assert_ptr_nonnull(big = malloc(n + 1));
	memset(big, ' ', n + 1);
	memcpy(big, GOOD, strlen(GOOD));
	ck_assert_int_eq(body_try(big, n, err, sizeof(err)), LB_OK);
	ck_assert_int_eq(body_try(big, n + 1, err, sizeof(err)), LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_msg(strstr(err, "larger than") != NULL, "%s", err);
	free(big);
}
END_TEST

START_TEST(subject_mismatch)
{
	char	err[512];
	const char *other = "{\"n\":\"1\",\"id\":\"S2\",\"d\":\"2026-01-01\"}";
	const char *other_broken = "{\"id\":\"S2\",\"d\":\"2026-02-30\"}";
	const char *prefix = "{\"n\":\"1\",\"id\":\"S10\",\"d\":\"2026-01-01\"}";

	ck_assert_int_eq(body_try(other, strlen(other), err, sizeof(err)), LB_E_SUBJECT_MISMATCH);
	ck_assert_msg(strstr(err, "another person") != NULL, "%s", err);
	ck_assert_ptr_null(strstr(err, "S2"));
	/* Another person's answer is reported as such even when it is also broken. */
	ck_assert_int_eq(body_try(other_broken, strlen(other_broken), err, sizeof(err)),
	    LB_E_SUBJECT_MISMATCH);
	ck_assert_int_eq(body_try(prefix, strlen(prefix), err, sizeof(err)), LB_E_SUBJECT_MISMATCH);
}
END_TEST

START_TEST(issuer_from_answer)
{
	json_t		*j = base();
	struct adapter	*ad;
	msgpack_zone	*z = msgpack_zone_new(1024);
	msgpack_object	 doc;
	char		 err[512];
	const char	*ok = "{\"n\":\"1\",\"id\":\"" SUBJ "\",\"d\":\"2026-01-01\",\"dp\":\"nhc\"}";
	const char	*bad = "{\"n\":\"1\",\"id\":\"" SUBJ "\",\"d\":\"2026-01-01\",\"dp\":\"psb\"}";

	json_put(j, "mapping/" ITEM "/issuer/dept", "{\"src\":\"/dp\"}");
	ad = spec_from_json(j, err, sizeof(err));
	ck_assert_msg(ad != NULL, "%s", err);
	ck_assert_int_eq(tx(ad, SUBJ, ok, strlen(ok), z, &doc, err, sizeof(err)), LB_OK);
	ck_assert_int_eq(tx(ad, SUBJ, bad, strlen(bad), z, &doc, err, sizeof(err)),
	    LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_msg(strstr(err, "issuer.dept") != NULL, "%s", err);
	adapter_free(ad);
	json_decref(j);
	msgpack_zone_free(z);
}
END_TEST

START_TEST(number_optional_but_needed)
{
	json_t		*j = base();
	struct adapter	*ad;
	msgpack_zone	*z = msgpack_zone_new(1024);
	msgpack_object	 doc;
	char		 err[512];
	const char	*body = "{\"id\":\"" SUBJ "\",\"d\":\"2026-01-01\"}";

	/* A rule may be optional; the document contract still wants a number. */
	json_put(j, "mapping/" ITEM "/number", "{\"src\":\"/n\"}");
	ad = spec_from_json(j, err, sizeof(err));
	ck_assert_msg(ad != NULL, "%s", err);
	ck_assert_int_eq(tx(ad, SUBJ, body, strlen(body), z, &doc, err, sizeof(err)),
	    LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_msg(strstr(err, "number") != NULL, "%s", err);
	adapter_free(ad);
	json_decref(j);
	msgpack_zone_free(z);
}
END_TEST

/*
 * Record selectors.
 */

static struct adapter *
record_adapter(const char *list)
{
	json_t		*j = base();
	struct adapter	*ad;
	char		 err[512], rec[128];

	snprintf(rec, sizeof(rec), "{\"list\":\"%s\",\"key\":\"/id\"}", list);
	json_put(j, "record", rec);
	ad = spec_from_json(j, err, sizeof(err));
	ck_assert_msg(ad != NULL, "%s", err);
	json_decref(j);
	return ad;
}

START_TEST(record_select)
{
	struct adapter	*ad = record_adapter("/records");
	msgpack_zone	*z = msgpack_zone_new(1024);
	msgpack_object	 doc;
	char		 err[512];
	const char	*body = "{\"records\":[{\"id\":\"S0\",\"n\":\"6\",\"d\":\"2026-01-01\"},"
			    "{\"id\":\"" SUBJ "\",\"n\":\"7\",\"d\":\"2026-01-02\"},"
			    "{\"id\":123,\"n\":\"8\",\"d\":\"2026-01-03\"},\"junk\"]}";
	const char	*twice = "{\"records\":[{\"id\":\"" SUBJ "\",\"n\":\"6\",\"d\":\"2026-01-01\"},"
			    "{\"id\":\"" SUBJ "\",\"n\":\"7\",\"d\":\"2026-01-02\"}]}";
	const char	*notarray = "{\"records\":{\"id\":\"" SUBJ "\"}}";

	ck_assert(ad->ad_record.rs_set);
	ck_assert_str_eq(ad->ad_record.rs_list, "/records");
	ck_assert_str_eq(ad->ad_record.rs_key, "/id");
	ck_assert_int_eq(tx(ad, SUBJ, body, strlen(body), z, &doc, err, sizeof(err)), LB_OK);
	ck_assert(mpk_str_eq(mpk_get(&doc, "number"), "7"));
	ck_assert(mpk_str_eq(mpk_get(&doc, "issued"), "2026-01-02"));
	/* An integer key matches its decimal digits. */
	ck_assert_int_eq(tx(ad, "123", body, strlen(body), z, &doc, err, sizeof(err)), LB_OK);
	ck_assert(mpk_str_eq(mpk_get(&doc, "number"), "8"));
	ck_assert_int_eq(tx(ad, "S9", body, strlen(body), z, &doc, err, sizeof(err)),
	    LB_E_SUBJECT_MISMATCH);
	ck_assert_int_eq(tx(ad, SUBJ, twice, strlen(twice), z, &doc, err, sizeof(err)),
	    LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_msg(strstr(err, "2 records") != NULL, "%s", err);
	ck_assert_int_eq(tx(ad, SUBJ, notarray, strlen(notarray), z, &doc, err, sizeof(err)),
	    LB_E_DEPARTMENT_BAD_RESPONSE);
	ck_assert_msg(strstr(err, "not an array") != NULL, "%s", err);
	adapter_free(ad);
	msgpack_zone_free(z);
}
END_TEST

START_TEST(record_root_array)
{
	struct adapter	*ad = record_adapter("");
	msgpack_zone	*z = msgpack_zone_new(1024);
	msgpack_object	 doc;
	char		 err[512];
	const char	*body = "[{\"id\":\"" SUBJ "\",\"n\":\"7\",\"d\":\"2026-01-02\"}]";
	const char	*notobj = "[\"" SUBJ "\"]";

	ck_assert_int_eq(tx(ad, SUBJ, body, strlen(body), z, &doc, err, sizeof(err)), LB_OK);
	ck_assert_int_eq(tx(ad, SUBJ, notobj, strlen(notobj), z, &doc, err, sizeof(err)),
	    LB_E_SUBJECT_MISMATCH);
	adapter_free(ad);
	msgpack_zone_free(z);
}
END_TEST

/*
 * Spec errors.
 */

#define M	"mapping/" ITEM "/"

static const struct {
	const char	*path;		/* member of the base spec to set */
	const char	*val;		/* its JSON, or NULL to delete it */
	const char	*err;		/* the message, or a part of it */
} spec_cases[] = {
	{ "format",		"\"yaml\"",	"\"format\" must be json, xml, csv, fixed or msgpack, "
						"not \"yaml\"" },
	{ "format",		"\"fixed\"",	"selector \"/n\": a fixed-width selector is "
						"\"offset,length\"" },
	{ "format",		NULL,		"\"format\" is missing" },
	{ "encoding",		"\"gbk\"",	"format json cannot be read as gbk" },
	{ "encoding",		"\"latin1\"",	"\"encoding\" must be utf-8, gbk or gb18030" },
	{ "endpoint",		NULL,		"\"endpoint\" is missing" },
	{ "endpoint",		"\"http://h/x\"", "\"endpoint\" must contain {subject}" },
	{ "endpoint",		"\"ftp://h/{subject}\"", "must start with http:// or https://" },
	{ "endpoint",		"\"http://{subject}.evil/x\"", "not in the host" },
	{ "endpoint",		"\"http:///{subject}\"", "has no host" },
	{ "endpoint",		"\"http://h/{subj}\"", "the only placeholders" },
	{ "endpoint",		"\"http://h/a b{subject}\"", "printable ASCII" },
	{ "endpoint",		"7",		"\"endpoint\" must be a URL" },
	{ "timeout_ms",		"0",		"\"timeout_ms\" must be an integer from 1 to 60000" },
	{ "timeout_ms",		"60001",	"\"timeout_ms\" must be an integer from 1 to 60000" },
	{ "timeout_ms",		"\"3000\"",	"\"timeout_ms\" must be an integer from 1 to 60000" },
	{ "id",			NULL,		"\"id\" is missing" },
	{ "id",			"\"Nhc\"",	"\"id\" must be 1 to 63 characters" },
	{ "id",			"\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
						"\"id\" must be 1 to 63 characters" },
	{ "dept",		"\"\"",		"\"dept\" must be 1 to 63 characters" },
	{ "seal",		"\"NHC\"",	"\"seal\" must be 1 to 63 characters" },
	{ "timout_ms",		"3000",		"the spec: unknown key \"timout_ms\"" },
	{ "items",		"[]",		"\"items\" must be a list of 1 to 32 item types" },
	{ "items",		"[\"" ITEM "\",\"" ITEM "\"]", "\"items\" lists \"" ITEM "\" twice" },
	{ "items",		"[\"Birth\"]",	"\"items\": \"Birth\" is not an item type" },
	{ "items",		"[\"" ITEM "\",\"other_item\"]",
						"\"mapping\" has no entry for item \"other_item\"" },
	{ "mapping/other_item",	"{}",		"\"mapping\" has an entry for \"other_item\", which "
						"is not in \"items\"" },
	{ "mapping",		NULL,		"\"mapping\" is missing" },
	{ "mapping/" ITEM,	"\"x\"",	"the template must be a map" },
	{ M "number/requird",	"true",		"mapping for item \"" ITEM "\": field \"number\": "
						"unknown option \"requird\"" },
	{ M "issued/date",	"\"DD.MM.YYYY\"", "mapping for item \"" ITEM "\": field \"issued\": "
						"unknown date format \"DD.MM.YYYY\"" },
	{ M "issued/date",	NULL,		"field \"issued\": needs a \"date\" conversion" },
	{ M "valid_until",	"\"2026-02-30\"", "field \"valid_until\": needs a \"date\" conversion" },
	{ M "valid_until",	"{\"const\":\"2026-02-30\",\"date\":\"YYYY-MM-DD\"}",
						"field \"valid_until\": the constant is unusable: "
						"the value is not a valid date" },
	{ M "fields/a/b/c/d/e/f/g", "{\"h\":\"deep\"}", "field \"fields.a.b.c.d.e.f.g\": the "
						"document nests deeper than 8 levels" },
	{ M "type",		"\"marriage_certificate\"", "field \"type\": must be the constant \""
						ITEM "\"" },
	{ M "type",		NULL,		"the key \"type\" is missing" },
	{ M "fields",		NULL,		"the key \"fields\" is missing" },
	{ M "fields",		"\"none\"",	"field \"fields\": must be a map" },
	{ M "extra",		"\"x\"",	"unknown key \"extra\" (a document has type" },
	{ M "holder/phone",	"{\"src\":\"/p\"}", "field \"holder\": unknown key \"phone\"" },
	{ M "holder/id",	NULL,		"field \"holder\": the key \"id\" is missing" },
	{ M "holder/id",	"\"" SUBJ "\"",	"field \"holder.id\": must come from the answer" },
	{ M "holder/id/as",	"\"int\"",	"field \"holder.id\": must be a string" },
	{ M "holder",		"{\"src\":\"/h\"}", "field \"holder\": must be a map" },
	{ M "number",		"{\"a\":\"b\"}", "field \"number\": must be a value" },
	{ M "issuer/dept",	"\"psb\"",	"field \"issuer.dept\": must be the adapter's "
						"department \"nhc\"" },
	{ M "fields/Gender",	"\"x\"",	"the key \"Gender\" is not a field name" },
	{ M "fields/x",		"true",		"field \"fields.x\": must be a string constant" },
	{ M "fields/x",		"\"\"",		"field \"fields.x\": a constant must be a non-empty" },
	{ M "fields/x",		"{\"src\":\"/v\",\"default\":\"d\"}", "\"default\" needs \"codes\"" },
	{ M "fields/x",		"{\"src\":\"/v\",\"const\":\"c\"}", "either \"src\" or \"const\"" },
	{ M "fields/x",		"{\"src\":\"/a~2\"}", "selector \"/a~2\": in a JSON pointer \"~\" "
						"is followed by 0 or 1" },
	{ M "fields/x",		"{\"src\":\"a/b\"}", "a JSON pointer starts with \"/\"" },
	{ M "fields/x",		"{\"src\":\"\"}", "the empty JSON pointer" },
	{ M "fields/x",		"{\"src\":7}",	"a selector must be a printable string" },
	{ M "fields/x",		"{\"src\":\"/v\",\"codes\":{\"1\":1}}", "every value in \"codes\"" },
	{ M "fields/x",		"{\"src\":\"/v\",\"codes\":{}}", "\"codes\" must be a map of 1 to 256" },
	{ M "fields/x",		"{\"src\":\"/v\",\"as\":\"float\"}", "\"as\" must be \"int\" or "
						"\"string\"" },
	{ M "fields/x",		"{\"src\":\"/v\",\"as\":\"int\",\"date\":\"YYYYMMDD\"}",
						"cannot be combined with \"as\": \"int\"" },
	{ M "fields/x",		"{\"src\":\"/v\",\"required\":\"yes\"}", "\"required\" must be true or "
						"false" },
	{ M "fields/x",		"{\"const\":\"9\",\"codes\":{\"1\":\"a\"}}", "the constant is unusable: "
						"the value is not in the code table" },
	{ M "fields/x",		"{\"const\":true}", "\"const\" must be a non-empty string or an "
						"integer" },
	{ "record",		"{\"list\":\"/r\"}", "\"record\" needs \"key\"" },
	{ "record",		"{\"key\":\"/id\",\"where\":1}", "\"record\": unknown key \"where\"" },
	{ "record",		"{\"key\":\"id\"}", "\"record\": \"key\": selector \"id\": a JSON "
						"pointer starts with \"/\"" },
	{ "record",		"\"/r\"",	"\"record\" must be a map" },
	{ "description",	"7",		"\"description\" must be UTF-8 text" },
};

START_TEST(spec_errors)
{
	json_t		*j = base();
	struct adapter	*ad;
	char		 err[512];

	json_put(j, spec_cases[_i].path, spec_cases[_i].val);
	err[0] = '\0';
	ad = spec_from_json(j, err, sizeof(err));
	ck_assert_msg(ad == NULL, "%s=%s accepted", spec_cases[_i].path,
	    spec_cases[_i].val ? spec_cases[_i].val : "(deleted)");
	ck_assert_msg(strstr(err, spec_cases[_i].err) != NULL, "%s=%s: \"%s\" lacks \"%s\"",
	    spec_cases[_i].path, spec_cases[_i].val ? spec_cases[_i].val : "(deleted)", err,
	    spec_cases[_i].err);
	json_decref(j);
}
END_TEST

START_TEST(spec_exact_sentence)
{
	json_t		*j = base();
	char		 err[512];

	json_put(j, M "issued/date", "\"DD.MM.YYYY\"");
	ck_assert_ptr_null(spec_from_json(j, err, sizeof(err)));
	ck_assert_str_eq(err, "mapping for item \"birth_medical_certificate\": field \"issued\": "
	    "unknown date format \"DD.MM.YYYY\"");
	json_decref(j);
}
END_TEST

START_TEST(spec_limits_ok)
{
	json_t		*j = base();
	struct adapter	*ad;
	char		 err[512], key[80];
	int		 i;

	/* Level 8 is the deepest a document may go. */
	json_put(j, M "fields/a/b/c/d/e/f/g", "\"deep\"");
	json_put(j, "timeout_ms", "60000");
	json_put(j, "encoding", "\"utf-8\"");
	json_put(j, "seal", "\"nhc-2026\"");
	json_put(j, M "valid_until", "\"2036-01-02\"");
	json_put(j, "id", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"");
	for (i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), M "fields/k%d", i);
		json_put(j, key, "\"v\"");
	}
	ad = spec_from_json(j, err, sizeof(err));
	ck_assert_msg(ad != NULL, "%s", err);
	ck_assert_uint_eq(ad->ad_timeout_ms, 60000);
	ck_assert_str_eq(ad->ad_seal, "nhc-2026");
	adapter_free(ad);
	/* 256 template keys per item at most. */
	for (i = 200; i < 260; i++) {
		snprintf(key, sizeof(key), M "fields/k%d", i);
		json_put(j, key, "\"v\"");
	}
	ck_assert_ptr_null(spec_from_json(j, err, sizeof(err)));
	ck_assert_msg(strstr(err, "more than 256 entries") != NULL, "%s", err);
	json_decref(j);
}
END_TEST

START_TEST(spec_too_many_items)
{
	json_t		*j = base();
	json_t		*items = json_array();
	char		 err[512], name[32];
	int		 i;

	for (i = 0; i < LB_MAX_ITEMS + 1; i++) {
		snprintf(name, sizeof(name), "item_%d", i);
		json_array_append_new(items, json_string(name));
	}
	json_object_set_new(j, "items", items);
	ck_assert_ptr_null(spec_from_json(j, err, sizeof(err)));
	ck_assert_msg(strstr(err, "\"items\" must be a list of 1 to 32") != NULL, "%s", err);
	json_decref(j);
}
END_TEST

/* Replaces the str "@" in o (at any depth) with bytes b. */
static void
plant(msgpack_object *o, const char *b)
{
	uint32_t	i;

	if (o->type == MSGPACK_OBJECT_STR && o->via.str.size == 1 && o->via.str.ptr[0] == '@') {
		o->via.str.ptr = b;
		o->via.str.size = (uint32_t)strlen(b);
	} else if (o->type == MSGPACK_OBJECT_MAP) {
		for (i = 0; i < o->via.map.size; i++) {
			plant(&o->via.map.ptr[i].key, b);
			plant(&o->via.map.ptr[i].val, b);
		}
	} else if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (i = 0; i < o->via.array.size; i++)
			plant(&o->via.array.ptr[i], b);
	}
}

/* Specs sent as msgpack may hold what JSON cannot: invalid UTF-8, NUL. */
START_TEST(spec_binary_strings)
{
	static const char *const bad[] = { "\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80" };
	static const char *const where[] = {
		M "fields/x", M "fields/x/codes/1", M "fields/x/default"
	};
	msgpack_zone	*z;
	msgpack_object	 o;
	struct adapter	*ad;
	json_t		*j;
	char		*txt, err[512];
	size_t		 b, w;

	for (w = 0; w < sizeof(where) / sizeof(where[0]); w++) {
		for (b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
			j = base();
			if (w > 0)
				json_put(j, M "fields/x", "{\"src\":\"/v\"}");
			json_put(j, where[w], "\"@\"");
			if (w == 2)
				json_put(j, M "fields/x/codes", "{\"1\":\"a\"}");
			txt = json_dumps(j, JSON_COMPACT);
			z = msgpack_zone_new(4096);
			ck_assert_int_eq(mpk_from_json(txt, strlen(txt), z, &o, err, sizeof(err)), 0);
			plant(&o, bad[b]);
			ck_assert_int_eq(adapter_parse(&o, &ad, err, sizeof(err)), -1);
			ck_assert_msg(strstr(err, "UTF-8") != NULL, "%s", err);
			msgpack_zone_free(z);
			free(txt);
			json_decref(j);
		}
	}
	/* A valid four-byte character is fine. */
	j = base();
	json_put(j, M "fields/x", "\"@\"");
	txt = json_dumps(j, JSON_COMPACT);
	z = msgpack_zone_new(4096);
	ck_assert_int_eq(mpk_from_json(txt, strlen(txt), z, &o, err, sizeof(err)), 0);
	plant(&o, "\xf0\xa0\x80\x80");
	ck_assert_msg(adapter_parse(&o, &ad, err, sizeof(err)) == 0, "%s", err);
	adapter_free(ad);
	msgpack_zone_free(z);
	free(txt);
	json_decref(j);
}
END_TEST

START_TEST(spec_not_a_map)
{
	msgpack_object	o = mpk_str("nhc");
	struct adapter	*ad = (struct adapter *)&o;
	char		 err[512];

	ck_assert_int_eq(adapter_parse(&o, &ad, err, sizeof(err)), -1);
	ck_assert_ptr_null(ad);
	ck_assert_str_eq(err, "an adapter spec must be a map (a JSON object)");
}
END_TEST

/* A msgpack spec with a duplicate key is refused, not silently resolved. */
START_TEST(spec_duplicate_key)
{
	msgpack_zone	*z = msgpack_zone_new(4096);
	msgpack_object	 o;
	struct adapter	*ad;
	char		 err[512];
	uint32_t	 i;

	ck_assert_int_eq(mpk_from_json(base_spec, strlen(base_spec), z, &o, err, sizeof(err)), 0);
	for (i = 0; i < o.via.map.size; i++)
		if (mpk_str_eq(&o.via.map.ptr[i].key, "dept"))
			o.via.map.ptr[i].key = mpk_str("id");
	ck_assert_int_eq(adapter_parse(&o, &ad, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "the key \"id\" twice") != NULL, "%s", err);
	msgpack_zone_free(z);
}
END_TEST

static Suite *
translate_suite(void)
{
	Suite	*s = suite_create("translate");
	TCase	*tc;

	tc = tcase_create("nhc");
	tcase_add_test(tc, spec_nhc_loads);
	tcase_add_test(tc, translate_nhc_exact);
	tcase_add_test(tc, translate_nhc_other_subject);
	tcase_add_test(tc, url_nhc);
	tcase_add_test(tc, url_item_placeholder);
	suite_add_tcase(s, tc);

	tc = tcase_create("conversions");
	tcase_add_loop_test(tc, date_formats, 0, sizeof(date_cases) / sizeof(date_cases[0]));
	tcase_add_test(tc, date_trimmed);
	tcase_add_test(tc, code_tables);
	tcase_add_test(tc, trim_spaces);
	tcase_add_test(tc, as_int);
	tcase_add_test(tc, constants);
	tcase_add_test(tc, missing_fields);
	tcase_add_test(tc, wrong_value_types);
	tcase_add_test(tc, json_pointers);
	suite_add_tcase(s, tc);

	tc = tcase_create("answers");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, answer_good);
	tcase_add_loop_test(tc, answer_bad, 0, sizeof(bad_answers) / sizeof(bad_answers[0]));
	tcase_add_test(tc, answer_sizes);
	tcase_add_test(tc, subject_mismatch);
	tcase_add_test(tc, issuer_from_answer);
	tcase_add_test(tc, number_optional_but_needed);
	tcase_add_test(tc, record_select);
	tcase_add_test(tc, record_root_array);
	suite_add_tcase(s, tc);

	tc = tcase_create("specs");
	tcase_add_loop_test(tc, spec_errors, 0, sizeof(spec_cases) / sizeof(spec_cases[0]));
	tcase_add_test(tc, spec_exact_sentence);
	tcase_add_test(tc, spec_limits_ok);
	tcase_add_test(tc, spec_too_many_items);
	tcase_add_test(tc, spec_binary_strings);
	tcase_add_test(tc, spec_not_a_map);
	tcase_add_test(tc, spec_duplicate_key);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(translate_suite());
}
