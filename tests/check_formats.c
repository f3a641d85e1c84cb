/*
 * check_formats.c - the XML, CSV, fixed-width and msgpack source formats
 * (gateway/lib/translate_xml.c, translate_csv.c, translate_fixed.c,
 * translate_msgpack.c) behind the translation engine, with the inputs
 * departments get wrong: namespaces, quoting, GBK names, truncated records,
 * wrong encodings, missing fields.
 */
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "lianban.h"
#include "check_util.h"

#define ITEM	"marriage_certificate"
#define SUBJ	"110105199003151239"

/*
 * A spec for one item of the given format: number, holder.id, holder.name
 * and issued come from the four selectors; extra is further top-level JSON
 * members (without the leading comma), or "".
 */
static struct adapter *
fmt_adapter(const char *format, const char *enc, const char *extra, const char *n,
    const char *id, const char *name, const char *d, const char *datefmt, char *err,
    size_t errlen)
{
	char		 txt[4096];
	msgpack_zone	*z = msgpack_zone_new(4096);
	msgpack_object	 o;
	struct adapter	*ad = NULL;

	snprintf(txt, sizeof(txt),
	    "{\"id\":\"t\",\"dept\":\"mca\",\"items\":[\"" ITEM "\"],"
	    "\"endpoint\":\"http://127.0.0.1:1/x?id={subject}\",\"format\":\"%s\","
	    "\"encoding\":\"%s\"%s%s,"
	    "\"mapping\":{\"" ITEM "\":{\"type\":\"" ITEM "\","
	    "\"number\":{\"src\":\"%s\",\"required\":true,\"trim\":true},"
	    "\"holder\":{\"id\":{\"src\":\"%s\",\"required\":true,\"trim\":true},"
	    "\"name\":{\"src\":\"%s\",\"trim\":true}},"
	    "\"issuer\":{\"dept\":\"mca\"},"
	    "\"issued\":{\"src\":\"%s\",\"date\":\"%s\",\"required\":true,\"trim\":true},"
	    "\"fields\":{}}}}", format, enc, extra[0] != '\0' ? "," : "", extra, n, id, name,
	    d, datefmt);
	ck_assert_ptr_nonnull(z);
	err[0] = '\0';
	if (mpk_from_json(txt, strlen(txt), z, &o, err, errlen) == 0)
		(void)adapter_parse(&o, &ad, err, errlen);
	msgpack_zone_free(z);
	return ad;
}

/* Converts UTF-8 test text to enc ("GBK", "GB18030") into a static buffer. */
static const char *
enc_to(const char *enc, const char *utf8, size_t *outlen)
{
	static char	 buf[8192];
	iconv_t		 cd = iconv_open(enc, "UTF-8");
	char		*ip = (char *)(uintptr_t)utf8, *op = buf;
	size_t		 il = strlen(utf8), ol = sizeof(buf);

	ck_assert(cd != (iconv_t)-1);
	ck_assert(iconv(cd, &ip, &il, &op, &ol) != (size_t)-1);
	iconv_close(cd);
	*outlen = (size_t)(op - buf);
	return buf;
}

/* Translates body; on LB_OK checks number, holder.name and issued. */
static enum lb_err
tx_check(const struct adapter *ad, const char *subject, const char *body, size_t len,
    const char *number, const char *name, const char *issued, char *err, size_t errlen)
{
	msgpack_zone	*z = msgpack_zone_new(4096);
	msgpack_object	 doc;
	enum lb_err	 e;

	e = translate(ad, ITEM, subject, body, len, z, &doc, err, errlen);
	if (e == LB_OK) {
		ck_assert_msg(mpk_str_eq(mpk_get(&doc, "number"), number), "number");
		ck_assert_msg(mpk_str_eq(mpk_get(mpk_get(&doc, "holder"), "id"), subject), "id");
		if (name != NULL)
			ck_assert_msg(mpk_str_eq(mpk_get(mpk_get(&doc, "holder"), "name"), name),
			    "name");
		else
			ck_assert_ptr_null(mpk_get(mpk_get(&doc, "holder"), "name"));
		ck_assert_msg(mpk_str_eq(mpk_get(&doc, "issued"), issued), "issued");
	}
	msgpack_zone_free(z);
	return e;
}

#define OK(ad, subj, body, len, num, name, iss) do {				\
	char	e_[512];							\
	enum lb_err r_ = tx_check(ad, subj, body, len, num, name, iss, e_, sizeof(e_)); \
	ck_assert_msg(r_ == LB_OK, "expected ok, got %d: %s", r_, e_);		\
} while (0)

#define BAD(ad, subj, body, len, code, part) do {				\
	char	e_[512];							\
	enum lb_err r_ = tx_check(ad, subj, body, len, NULL, NULL, NULL, e_, sizeof(e_)); \
	ck_assert_msg(r_ == (code), "expected %d, got %d: %s", (code), r_, e_);	\
	ck_assert_msg(strstr(e_, part) != NULL, "\"%s\" not in: %s", part, e_);	\
} while (0)

/* ---- XML ---- */

#define MCA_NS	"urn:lianban:mca:marriage:1"

static struct adapter *
xml_adapter(const char *enc)
{
	char		 err[512];
	struct adapter	*ad = fmt_adapter("xml", enc, "\"namespaces\":{\"m\":\"" MCA_NS "\"}",
	    "/m:certificate/m:no", "/m:certificate/m:party[@role='self']/m:id",
	    "/m:certificate/m:party[@role='self']/m:name", "/m:certificate/@issued",
	    "YYYY\u5e74MM\u6708DD\u65e5", err, sizeof(err));

	ck_assert_msg(ad != NULL, "%s", err);
	return ad;
}

START_TEST(xml_namespaces)
{
	struct adapter	*ad = xml_adapter("utf-8");
	/* The answer's prefix differs from the spec's; the URI is what counts. */
	const char	*prefixed =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<mca:certificate xmlns:mca=\"" MCA_NS "\" issued=\"2018年5月20日\">\n"
	    "  <mca:no> J110105-2018-004512 </mca:no>\n"
	    "  <mca:party role=\"spouse\"><mca:id>110105199203041528</mca:id>"
	    "<mca:name>李娜</mca:name></mca:party>\n"
	    "  <mca:party role=\"self\"><mca:id>" SUBJ "</mca:id>"
	    "<mca:name>王伟</mca:name></mca:party>\n"
	    "</mca:certificate>\n";
	/* A default namespace is the same namespace. */
	const char	*deflt =
	    "<certificate xmlns=\"" MCA_NS "\" issued=\"2018年05月20日\">"
	    "<no>J1</no><party role=\"self\"><id>" SUBJ "</id><name><![CDATA[王伟]]></name>"
	    "</party></certificate>";
	/* Same local names without the namespace: nothing is found. */
	const char	*nons =
	    "<certificate issued=\"2018年05月20日\"><no>J1</no><party role=\"self\">"
	    "<id>" SUBJ "</id></party></certificate>";
	/* Another namespace URI with the spec's own prefix: nothing is found either. */
	const char	*otherns =
	    "<m:certificate xmlns:m=\"urn:other\" issued=\"2018年05月20日\"><m:no>J1</m:no>"
	    "<m:party role=\"self\"><m:id>" SUBJ "</m:id></m:party></m:certificate>";

	OK(ad, SUBJ, prefixed, strlen(prefixed), "J110105-2018-004512", "王伟", "2018-05-20");
	OK(ad, SUBJ, deflt, strlen(deflt), "J1", "王伟", "2018-05-20");
	BAD(ad, SUBJ, nons, strlen(nons), LB_E_DEPARTMENT_BAD_RESPONSE,
	    "required field \"holder.id\"");
	BAD(ad, SUBJ, otherns, strlen(otherns), LB_E_DEPARTMENT_BAD_RESPONSE,
	    "required field \"holder.id\"");
	BAD(ad, "110105199203041528", prefixed, strlen(prefixed), LB_E_SUBJECT_MISMATCH,
	    "about another person");
	adapter_free(ad);
}
END_TEST

START_TEST(xml_bad_answers)
{
	struct adapter	*ad = xml_adapter("utf-8");
	char		 err[512];
	struct adapter	*undeclared;
	const char	*good = "<m:certificate xmlns:m=\"" MCA_NS "\" issued=\"2018年5月20日\">"
			    "<m:no>J1</m:no><m:party role=\"self\"><m:id>" SUBJ "</m:id>"
			    "</m:party></m:certificate>";
	const char	*xxe = "<?xml version=\"1.0\"?><!DOCTYPE m:certificate ["
			    "<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
			    "<m:certificate xmlns:m=\"" MCA_NS "\" issued=\"2018年5月20日\">"
			    "<m:no>&x;</m:no><m:party role=\"self\"><m:id>" SUBJ "</m:id>"
			    "</m:party></m:certificate>";
	const char	*laughs = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaa\">"
			    "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]><r>&b;</r>";
	const char	*twice = "<m:certificate xmlns:m=\"" MCA_NS "\" issued=\"2018年5月20日\">"
			    "<m:no>J1</m:no><m:no>J2</m:no><m:party role=\"self\"><m:id>" SUBJ
			    "</m:id></m:party></m:certificate>";
	const char	*nodate = "<m:certificate xmlns:m=\"" MCA_NS "\">"
			    "<m:no>J1</m:no><m:party role=\"self\"><m:id>" SUBJ "</m:id>"
			    "</m:party></m:certificate>";
	const char	*latin = "<m:certificate xmlns:m=\"" MCA_NS "\" issued=\"2018年5月20日\">"
			    "<m:no>J\xe9</m:no><m:party role=\"self\"><m:id>" SUBJ "</m:id>"
			    "</m:party></m:certificate>";

	OK(ad, SUBJ, good, strlen(good), "J1", NULL, "2018-05-20");
	/* Truncated anywhere: not well-formed. */
	BAD(ad, SUBJ, good, strlen(good) - 5, LB_E_DEPARTMENT_BAD_RESPONSE, "not well-formed");
	BAD(ad, SUBJ, good, 20, LB_E_DEPARTMENT_BAD_RESPONSE, "not well-formed");
	BAD(ad, SUBJ, "", 0, LB_E_DEPARTMENT_BAD_RESPONSE, "empty");
	BAD(ad, SUBJ, xxe, strlen(xxe), LB_E_DEPARTMENT_BAD_RESPONSE,
	    "document type declaration");
	BAD(ad, SUBJ, laughs, strlen(laughs), LB_E_DEPARTMENT_BAD_RESPONSE,
	    "document type declaration");
	BAD(ad, SUBJ, twice, strlen(twice), LB_E_DEPARTMENT_BAD_RESPONSE, "several nodes");
	BAD(ad, SUBJ, nodate, strlen(nodate), LB_E_DEPARTMENT_BAD_RESPONSE,
	    "required field \"issued\"");
	BAD(ad, SUBJ, latin, strlen(latin), LB_E_DEPARTMENT_BAD_RESPONSE, "not well-formed");
	adapter_free(ad);

	/* A prefix the spec does not declare fails the translation, not the gateway. */
	undeclared = fmt_adapter("xml", "utf-8", "", "/q:certificate/q:no", "//*[local-name()='id']",
	    "/x", "/*/@issued", "YYYY\u5e74MM\u6708DD\u65e5", err, sizeof(err));
	ck_assert_msg(undeclared != NULL, "%s", err);
	BAD(undeclared, SUBJ, good, strlen(good), LB_E_DEPARTMENT_BAD_RESPONSE,
	    "declared in \"namespaces\"");
	adapter_free(undeclared);
}
END_TEST

START_TEST(xml_gbk_and_records)
{
	struct adapter	*ad = xml_adapter("gbk");
	char		 err[512];
	struct adapter	*rec;
	const char	*body;
	size_t		 len;
	const char	*batch = "<batch><rec><id>S0</id><no>A</no><d>20260101</d></rec>"
			    "<rec><id>" SUBJ "</id><no>B</no><d>20260102</d><nm>王伟</nm></rec>"
			    "</batch>";

	body = enc_to("GBK", "<?xml version=\"1.0\" encoding=\"GBK\"?>"
	    "<m:certificate xmlns:m=\"" MCA_NS "\" issued=\"2018年5月20日\">"
	    "<m:no>J1</m:no><m:party role=\"self\"><m:id>" SUBJ "</m:id>"
	    "<m:name>欧阳娜娜</m:name></m:party></m:certificate>", &len);
	OK(ad, SUBJ, body, len, "J1", "欧阳娜娜", "2018-05-20");
	adapter_free(ad);

	rec = fmt_adapter("xml", "utf-8", "\"record\":{\"list\":\"/batch/rec\",\"key\":\"id\"}",
	    "no", "id", "nm", "d", "YYYYMMDD", err, sizeof(err));
	ck_assert_msg(rec != NULL, "%s", err);
	OK(rec, SUBJ, batch, strlen(batch), "B", "王伟", "2026-01-02");
	OK(rec, "S0", batch, strlen(batch), "A", NULL, "2026-01-01");
	BAD(rec, "S9", batch, strlen(batch), LB_E_SUBJECT_MISMATCH, "no record");
	adapter_free(rec);

	/* XPath syntax is checked when the spec loads. */
	ck_assert_ptr_null(fmt_adapter("xml", "utf-8", "", "/a[", "/b", "/c", "/d",
	    "YYYYMMDD", err, sizeof(err)));
	ck_assert_msg(strstr(err, "not a valid XPath") != NULL, "%s", err);
	ck_assert_ptr_null(fmt_adapter("xml", "utf-8", "\"namespaces\":{\"1x\":\"urn:a\"}",
	    "/a", "/b", "/c", "/d", "YYYYMMDD", err, sizeof(err)));
	ck_assert_msg(strstr(err, "not a usable prefix") != NULL, "%s", err);
	ck_assert_ptr_null(fmt_adapter("csv", "utf-8", "\"namespaces\":{\"m\":\"urn:a\"}",
	    "a", "b", "c", "d", "YYYYMMDD", err, sizeof(err)));
	ck_assert_msg(strstr(err, "only for the xml format") != NULL, "%s", err);
}
END_TEST

/* ---- CSV ---- */

static struct adapter *
csv_adapter(const char *enc, const char *extra)
{
	char		 err[512];
	struct adapter	*ad = fmt_adapter("csv", enc, extra, "cert_no", "id_no", "name",
	    "issue_date", "YYYY/MM/DD", err, sizeof(err));

	ck_assert_msg(ad != NULL, "%s", err);
	return ad;
}

START_TEST(csv_quoted)
{
	struct adapter	*ad = csv_adapter("utf-8", "\"record\":{\"key\":\"id_no\"}");
	const char	*body =
	    "cert_no,id_no,name,issue_date,note\r\n"
	    "V1,110105199203041528,李娜,2026/1/2,plain\r\n"
	    "\"V,2\",\"" SUBJ "\",\"王 \"\"伟\"\"\",2026/01/03,\"two\r\nlines, and \"\"quotes\"\"\"\r\n"
	    "V3,S3,\"\",2026/1/4,\r\n";
	const char	*nofinal = "cert_no,id_no,name,issue_date\nV4," SUBJ ",王伟,2026/1/5";

	OK(ad, SUBJ, body, strlen(body), "V,2", "王 \"伟\"", "2026-01-03");
	OK(ad, "110105199203041528", body, strlen(body), "V1", "李娜", "2026-01-02");
	/* An empty quoted field is absent, like an empty one. */
	OK(ad, "S3", body, strlen(body), "V3", NULL, "2026-01-04");
	OK(ad, SUBJ, nofinal, strlen(nofinal), "V4", "王伟", "2026-01-05");
	BAD(ad, "S9", body, strlen(body), LB_E_SUBJECT_MISMATCH, "no record");
	adapter_free(ad);
}
END_TEST

START_TEST(csv_bad_answers)
{
	struct adapter	*ad = csv_adapter("utf-8", "\"record\":{\"key\":\"id_no\"}");
	struct adapter	*one = csv_adapter("utf-8", "");
	const char	*unterminated = "cert_no,id_no,name,issue_date\nV1," SUBJ ",\"王伟,2026/1/2\n";
	const char	*after = "cert_no,id_no,name,issue_date\nV1," SUBJ ",\"王伟\"x,2026/1/2\n";
	const char	*inner = "cert_no,id_no,name,issue_date\nV1," SUBJ ",王\"伟,2026/1/2\n";
	const char	*short_row = "cert_no,id_no,name,issue_date\nV1," SUBJ ",王伟\n";
	const char	*twice = "cert_no,id_no,name,issue_date\nV1," SUBJ ",王伟,2026/1/2\n"
			    "V2," SUBJ ",王伟,2026/1/3\n";
	const char	*nokey = "cert_no,id,name,issue_date\nV1," SUBJ ",王伟,2026/1/2\n";
	const char	*nodate = "cert_no,id_no,name\nV1," SUBJ ",王伟\n";
	const char	*badutf = "cert_no,id_no,name,issue_date\nV1," SUBJ ",\xcd\xf5,2026/1/2\n";
	const char	*single = "cert_no,id_no,name,issue_date\nV1," SUBJ ",王伟,2026/1/2\n";

	BAD(ad, SUBJ, unterminated, strlen(unterminated), LB_E_DEPARTMENT_BAD_RESPONSE,
	    "ends inside a quoted field");
	BAD(ad, SUBJ, after, strlen(after), LB_E_DEPARTMENT_BAD_RESPONSE,
	    "text after a closing quote");
	BAD(ad, SUBJ, inner, strlen(inner), LB_E_DEPARTMENT_BAD_RESPONSE,
	    "quote inside an unquoted field");
	BAD(ad, SUBJ, short_row, strlen(short_row), LB_E_DEPARTMENT_BAD_RESPONSE,
	    "row 2 has 3 fields, the header 4");
	BAD(ad, SUBJ, twice, strlen(twice), LB_E_DEPARTMENT_BAD_RESPONSE, "2 records");
	BAD(ad, SUBJ, nokey, strlen(nokey), LB_E_DEPARTMENT_BAD_RESPONSE, "no key column");
	BAD(ad, SUBJ, nodate, strlen(nodate), LB_E_DEPARTMENT_BAD_RESPONSE,
	    "required field \"issued\"");
	/* GBK bytes sent under a utf-8 spec: wrong encoding. */
	BAD(ad, SUBJ, badutf, strlen(badutf), LB_E_DEPARTMENT_BAD_RESPONSE, "not valid UTF-8");
	BAD(ad, SUBJ, "", 0, LB_E_DEPARTMENT_BAD_RESPONSE, "empty");
	/* Without a record selector the answer is one row, about the subject. */
	OK(one, SUBJ, single, strlen(single), "V1", "王伟", "2026-01-02");
	BAD(one, SUBJ, twice, strlen(twice), LB_E_DEPARTMENT_BAD_RESPONSE, "2 data rows");
	BAD(one, "S9", single, strlen(single), LB_E_SUBJECT_MISMATCH, "another person");
	adapter_free(ad);
	adapter_free(one);
}
END_TEST

START_TEST(csv_delimiter_gbk)
{
	struct adapter	*ad = csv_adapter("gbk",
	    "\"record\":{\"key\":\"id_no\"},\"delimiter\":\";\"");
	struct adapter	*tab = csv_adapter("utf-8", "\"delimiter\":\"\\t\"");
	char		 err[512];
	const char	*body;
	size_t		 len;
	const char	*tsv = "cert_no\tid_no\tname\tissue_date\nT1\t" SUBJ "\t司马懿\t2026/1/2\n";

	body = enc_to("GBK", "cert_no;id_no;name;issue_date\n"
	    "G1;" SUBJ ";\"欧阳;娜娜\";2026/02/28\n", &len);
	OK(ad, SUBJ, body, len, "G1", "欧阳;娜娜", "2026-02-28");
	/* The same bytes cut in the middle of a character. */
	BAD(ad, SUBJ, body, len - 14, LB_E_DEPARTMENT_BAD_RESPONSE, "ends inside");
	OK(tab, SUBJ, tsv, strlen(tsv), "T1", "司马懿", "2026-01-02");
	adapter_free(ad);
	adapter_free(tab);
	ck_assert_ptr_null(fmt_adapter("csv", "utf-8", "\"delimiter\":\"\\\"\"", "a", "b", "c",
	    "d", "YYYYMMDD", err, sizeof(err)));
	ck_assert_msg(strstr(err, "\"delimiter\" must be one ASCII") != NULL, "%s", err);
	ck_assert_ptr_null(fmt_adapter("csv", "utf-8", "\"record\":{\"list\":\"/x\",\"key\":\"b\"}",
	    "a", "b", "c", "d", "YYYYMMDD", err, sizeof(err)));
	ck_assert_msg(strstr(err, "leave \"list\" out") != NULL, "%s", err);
}
END_TEST

/* ---- fixed width ---- */

/*
 * The psb household register layout: id 0,18; name 18,12 (six GBK
 * characters, space padded); date 30,8; number 38,12.
 */
static struct adapter *
fixed_adapter(const char *enc)
{
	char		 err[512];
	struct adapter	*ad = fmt_adapter("fixed", enc, "\"record\":{\"key\":\"0,18\"}", "38,12",
	    "0,18", "18,12", "30,8", "YYYYMMDD", err, sizeof(err));

	ck_assert_msg(ad != NULL, "%s", err);
	return ad;
}

START_TEST(fixed_gbk)
{
	struct adapter	*ad = fixed_adapter("gbk");
	const char	*body;
	size_t		 len;
	char		 copy[1024];

	body = enc_to("GBK",
	    "110105199203041528李娜        20180912110105018273\r\n"
	    SUBJ "王伟        20180912110105018273\r\n"
	    "110105202601010115王子轩      20260105110105018273\r\n", &len);
	OK(ad, SUBJ, body, len, "110105018273", "王伟", "2018-09-12");
	OK(ad, "110105202601010115", body, len, "110105018273", "王子轩", "2026-01-05");
	BAD(ad, "110105199909091234", body, len, LB_E_SUBJECT_MISMATCH, "no record");
	/* The last record cut short: a truncated record is refused, not padded. */
	BAD(ad, "110105202601010115", body, len - 6, LB_E_DEPARTMENT_BAD_RESPONSE,
	    "too short");
	/* A stray byte that is no GBK character, anywhere in the answer. */
	memcpy(copy, body, len);
	copy[19] = (char)0xff;
	BAD(ad, SUBJ, copy, len, LB_E_DEPARTMENT_BAD_RESPONSE, "not valid gbk");
	/* UTF-8 sent to a GBK adapter is the wrong encoding. */
	body = SUBJ "王子轩 20180912110105018273\n";
	BAD(ad, SUBJ, body, strlen(body), LB_E_DEPARTMENT_BAD_RESPONSE, "not valid gbk");
	adapter_free(ad);
}
END_TEST

START_TEST(fixed_gb18030_boundaries)
{
	struct adapter	*ad = fixed_adapter("gb18030");
	struct adapter	*gbk = fixed_adapter("gbk");
	struct adapter	*split;
	char		 err[512];
	const char	*body;
	size_t		 len;

	/* 㙟 (U+365F) takes four bytes in GB18030 and does not exist in GBK. */
	body = enc_to("GB18030", SUBJ "刘㙟      20180912110105018273\n", &len);
	OK(ad, SUBJ, body, len, "110105018273", "刘㙟", "2018-09-12");
	BAD(gbk, SUBJ, body, len, LB_E_DEPARTMENT_BAD_RESPONSE, "not valid gbk");
	/* A field boundary through the middle of a character. */
	split = fmt_adapter("fixed", "gbk", "", "38,12", "0,18", "18,3", "30,8", "YYYYMMDD", err,
	    sizeof(err));
	ck_assert_msg(split != NULL, "%s", err);
	body = enc_to("GBK", SUBJ "王伟        20180912110105018273\n", &len);
	BAD(split, SUBJ, body, len, LB_E_DEPARTMENT_BAD_RESPONSE, "split a character");
	adapter_free(split);
	adapter_free(ad);
	adapter_free(gbk);
	ck_assert_ptr_null(fmt_adapter("fixed", "gbk", "", "38", "0,18", "18,12", "30,8",
	    "YYYYMMDD", err, sizeof(err)));
	ck_assert_msg(strstr(err, "\"offset,length\"") != NULL, "%s", err);
	ck_assert_ptr_null(fmt_adapter("fixed", "gbk", "", "38,0", "0,18", "18,12", "30,8",
	    "YYYYMMDD", err, sizeof(err)));
	ck_assert_msg(strstr(err, "\"offset,length\"") != NULL, "%s", err);
}
END_TEST

/* ---- msgpack ---- */

static struct adapter *
mp_adapter(const char *extra, const char *prefix)
{
	char		 err[512], n[64], id[64], name[64], d[64];
	struct adapter	*ad;

	snprintf(n, sizeof(n), "%s/no", prefix);
	snprintf(id, sizeof(id), "%s/person/id", prefix);
	snprintf(name, sizeof(name), "%s/person/name", prefix);
	snprintf(d, sizeof(d), "%s/date", prefix);
	ad = fmt_adapter("msgpack", "utf-8", extra, n, id, name, d, "YYYYMMDD", err,
	    sizeof(err));
	ck_assert_msg(ad != NULL, "%s", err);
	return ad;
}

/* Packs JSON text (integers stay integers) into a static buffer. */
static const char *
mp_body(const char *json, size_t *len)
{
	static char	 buf[4096];
	msgpack_zone	*z = msgpack_zone_new(4096);
	msgpack_object	 o;
	msgpack_sbuffer	 sb;
	char		 err[256];

	ck_assert_int_eq(mpk_from_json(json, strlen(json), z, &o, err, sizeof(err)), 0);
	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(mpk_pack(&o, &sb, false), 0);
	ck_assert_uint_lt(sb.size, sizeof(buf));
	memcpy(buf, sb.data, sb.size);
	*len = sb.size;
	msgpack_sbuffer_destroy(&sb);
	msgpack_zone_free(z);
	return buf;
}

START_TEST(msgpack_paths)
{
	struct adapter	*ad = mp_adapter("", "/data");
	struct adapter	*rec = mp_adapter("\"record\":{\"list\":\"/list\",\"key\":\"/person/id\"}", "");
	const char	*body;
	size_t		 len;
	char		 trunc[4096];

	body = mp_body("{\"data\":{\"no\":\"Y1\",\"date\":20250101,"
	    "\"person\":{\"id\":\"" SUBJ "\",\"name\":\"王伟\"}}}", &len);
	OK(ad, SUBJ, body, len, "Y1", "王伟", "2025-01-01");
	memcpy(trunc, body, len);
	BAD(ad, SUBJ, trunc, len - 3, LB_E_DEPARTMENT_BAD_RESPONSE, "not one well-formed");
	/* A map header that claims more entries than the answer holds. */
	BAD(ad, SUBJ, "\xdf\xff\xff\xff\xff\xa1", 6, LB_E_DEPARTMENT_BAD_RESPONSE,
	    "not one well-formed");
	body = mp_body("{\"data\":{\"no\":\"Y1\",\"date\":20250101,"
	    "\"person\":{\"id\":\"" SUBJ "\"}}}", &len);
	OK(ad, SUBJ, body, len, "Y1", NULL, "2025-01-01");
	body = mp_body("{\"data\":{\"no\":\"Y1\",\"person\":{\"id\":\"" SUBJ "\"}}}", &len);
	BAD(ad, SUBJ, body, len, LB_E_DEPARTMENT_BAD_RESPONSE, "required field \"issued\"");
	body = mp_body("[1,2]", &len);
	BAD(ad, SUBJ, body, len, LB_E_DEPARTMENT_BAD_RESPONSE, "not a map");
	body = mp_body("{\"data\":{\"no\":true,\"date\":20250101,"
	    "\"person\":{\"id\":\"" SUBJ "\"}}}", &len);
	BAD(ad, SUBJ, body, len, LB_E_DEPARTMENT_BAD_RESPONSE, "the value is a boolean");

	body = mp_body("{\"list\":[{\"no\":\"R0\",\"date\":\"20250101\",\"person\":{\"id\":\"S0\"}},"
	    "{\"no\":\"R1\",\"date\":\"20250102\",\"person\":{\"id\":\"" SUBJ "\",\"name\":\"李娜\"}}]}",
	    &len);
	OK(rec, SUBJ, body, len, "R1", "李娜", "2025-01-02");
	BAD(rec, "S9", body, len, LB_E_SUBJECT_MISMATCH, "no record");
	adapter_free(ad);
	adapter_free(rec);
}
END_TEST

static void
mp_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* A map naming a key twice is ambiguous: refused, wherever it is. */
START_TEST(msgpack_duplicate_keys)
{
	struct adapter	*ad = mp_adapter("", "/data");
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	int		 where;

	for (where = 0; where < 3; where++) {
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, where == 0 ? 2 : 1);
		mp_str(&pk, "data");
		msgpack_pack_map(&pk, where == 1 ? 4 : 3);
		mp_str(&pk, "no");
		mp_str(&pk, "Y1");
		if (where == 1) {
			mp_str(&pk, "no");	/* which number is meant? */
			mp_str(&pk, "Y2");
		}
		mp_str(&pk, "date");
		msgpack_pack_int(&pk, 20250101);
		mp_str(&pk, "person");
		msgpack_pack_map(&pk, where == 2 ? 2 : 1);
		mp_str(&pk, "id");
		mp_str(&pk, SUBJ);
		if (where == 2) {
			mp_str(&pk, "id");
			mp_str(&pk, "110105199003151239");
		}
		if (where == 0) {
			mp_str(&pk, "data");
			msgpack_pack_nil(&pk);
		}
		BAD(ad, SUBJ, sb.data, sb.size, LB_E_DEPARTMENT_BAD_RESPONSE,
		    "names one key twice");
		msgpack_sbuffer_destroy(&sb);
	}
	adapter_free(ad);
}
END_TEST

static Suite *
formats_suite(void)
{
	Suite	*s = suite_create("formats");
	TCase	*tc;

	tc = tcase_create("xml");
	tcase_add_test(tc, xml_namespaces);
	tcase_add_test(tc, xml_bad_answers);
	tcase_add_test(tc, xml_gbk_and_records);
	suite_add_tcase(s, tc);

	tc = tcase_create("csv");
	tcase_add_test(tc, csv_quoted);
	tcase_add_test(tc, csv_bad_answers);
	tcase_add_test(tc, csv_delimiter_gbk);
	suite_add_tcase(s, tc);

	tc = tcase_create("fixed");
	tcase_add_test(tc, fixed_gbk);
	tcase_add_test(tc, fixed_gb18030_boundaries);
	suite_add_tcase(s, tc);

	tc = tcase_create("msgpack");
	tcase_add_test(tc, msgpack_paths);
	tcase_add_test(tc, msgpack_duplicate_keys);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(formats_suite());
}
