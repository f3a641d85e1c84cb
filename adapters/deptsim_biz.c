/*
 * deptsim_biz.c - the simulator's departments for enterprises and for
 * applications made by someone else: market regulation's business
 * licences (samr), tax registrations (tax), social security employer
 * accounts (hrss), housing fund employer accounts (hpf), civil affairs'
 * registrations of assisted applications (mca) and disability certificates
 * (cdpf).  Their records are the data file's "enterprises", "delegations"
 * and "disabilities"; an enterprise is found by its unified social credit
 * code, a delegation and a certificate by the resident ID number of the
 * person they are about.
 *
 * The formats are the variants these systems add to the families' ones:
 * XML whose elements are in a default namespace with the person in a
 * second, prefixed one declared where it is used (samr); fixed-width
 * GB18030 records whose names hold characters of four bytes (tax); CSV in
 * GB18030 (hpf); JSON with nested parties (mca, hrss, cdpf).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deptsim.h"

#define SAMR_NS		"urn:cn:gov:samr:license:3"
#define SAMR_PERSON_NS	"urn:cn:gov:samr:person:1"

/* Checks the records of one array of the data file with check(); absent is fine. */
static int
biz_check_all(json_t *data, const char *key, int (*check)(json_t *, char *, size_t),
    char *err, size_t errlen)
{
	json_t	*arr = json_object_get(data, key), *e;
	char	 why[200];
	size_t	 i;

	if (arr == NULL)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > 1000) {
		snprintf(err, errlen, "\"%s\" must be an array of at most 1000 records", key);
		return -1;
	}
	json_array_foreach(arr, i, e) {
		if (check(e, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s[%zu]: %s", key, i, why);
			return -1;
		}
	}
	return 0;
}

static int
biz_check_enterprise(json_t *e, char *err, size_t errlen)
{
	json_error_t	 jerr;
	const char	*uscc, *name, *kind, *rep_id, *rep_name, *cap, *est, *addr, *scope, *reg;
	const char	*status, *tt, *treg, *toff, *arrears, *sacc, *sopen, *soff, *hacc, *hopen;
	const char	*hcenter;
	json_int_t	 semp, hrate, hemp;

	if (json_unpack_ex(e, &jerr, 0, "{s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s, "
	    "s:s, s:{s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:I, s:s}, s:{s:s, s:s, s:I, s:I, s:s}}",
	    "uscc", &uscc, "name", &name, "kind", &kind, "legal_rep", "id", &rep_id, "name",
	    &rep_name, "capital", &cap, "established", &est, "address", &addr, "scope", &scope,
	    "registry", &reg, "status", &status,
	    "tax", "taxpayer_type", &tt, "registered", &treg, "office", &toff, "arrears", &arrears,
	    "social_security", "account_no", &sacc, "opened", &sopen, "employees", &semp,
	    "office", &soff,
	    "housing_fund", "account_no", &hacc, "opened", &hopen, "rate", &hrate, "employees",
	    &hemp, "center", &hcenter) != 0) {
		snprintf(err, errlen, "%s", jerr.text);
		return -1;
	}
	if (!subject_id_enterprise(uscc)) {
		snprintf(err, errlen, "%.32s: not a unified social credit code", uscc);
		return -1;
	}
	if (!subject_id_resident(rep_id)) {
		snprintf(err, errlen, "%s: the legal representative's id is not valid", uscc);
		return -1;
	}
	if (!date_valid(est) || !date_valid(treg) || !date_valid(sopen) || !date_valid(hopen)) {
		snprintf(err, errlen, "%s: a date is not YYYY-MM-DD", uscc);
		return -1;
	}
	if (strcmp(status, "active") != 0 && strcmp(status, "revoked") != 0 &&
	    strcmp(status, "cancelled") != 0) {
		snprintf(err, errlen, "%s: status must be active, revoked or cancelled", uscc);
		return -1;
	}
	if (strcmp(tt, "1") != 0 && strcmp(tt, "2") != 0) {
		snprintf(err, errlen, "%s: taxpayer_type must be 1 or 2", uscc);
		return -1;
	}
	if (semp < 0 || hemp < 0 || hrate < 5 || hrate > 12) {
		snprintf(err, errlen, "%s: employees or the housing fund rate out of range", uscc);
		return -1;
	}
	return 0;
}

static int
biz_check_delegation(json_t *e, char *err, size_t errlen)
{
	json_error_t	 jerr;
	const char	*pid, *pname, *aid, *aname, *reg_no, *rel, *bundles, *from, *until;
	const char	*status, *registry;

	if (json_unpack_ex(e, &jerr, 0, "{s:{s:s, s:s}, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s, "
	    "s:s, s:s}", "principal", "id", &pid, "name", &pname, "agent", "id", &aid, "name",
	    &aname, "reg_no", &reg_no, "relation", &rel, "bundles", &bundles, "valid_from", &from,
	    "valid_until", &until, "status", &status, "registry", &registry) != 0) {
		snprintf(err, errlen, "%s", jerr.text);
		return -1;
	}
	if (!subject_id_resident(pid) || !subject_id_resident(aid)) {
		snprintf(err, errlen, "%s: principal and agent need valid resident ids", reg_no);
		return -1;
	}
	if (!date_valid(from) || !date_valid(until) || strcmp(from, until) > 0) {
		snprintf(err, errlen, "%s: valid_from and valid_until must be days in order",
		    reg_no);
		return -1;
	}
	if (strcmp(status, "active") != 0 && strcmp(status, "revoked") != 0) {
		snprintf(err, errlen, "%s: status must be active or revoked", reg_no);
		return -1;
	}
	return 0;
}

static int
biz_check_disability(json_t *e, char *err, size_t errlen)
{
	json_error_t	 jerr;
	const char	*id, *name, *no, *cat, *grade, *issued, *until, *office;

	if (json_unpack_ex(e, &jerr, 0, "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", &id,
	    "name", &name, "cert_no", &no, "category", &cat, "grade", &grade, "issued", &issued,
	    "valid_until", &until, "office", &office) != 0) {
		snprintf(err, errlen, "%s", jerr.text);
		return -1;
	}
	if (!subject_id_resident(id) || !date_valid(issued) || !date_valid(until) ||
	    strlen(cat) != 1 || cat[0] < '1' || cat[0] > '7' || strlen(grade) != 1 ||
	    grade[0] < '1' || grade[0] > '4') {
		snprintf(err, errlen, "%s: bad id, date, category (1-7) or grade (1-4)", no);
		return -1;
	}
	return 0;
}

int
biz_data_check(json_t *data, char *err, size_t errlen)
{
	if (biz_check_all(data, "enterprises", biz_check_enterprise, err, errlen) != 0 ||
	    biz_check_all(data, "delegations", biz_check_delegation, err, errlen) != 0 ||
	    biz_check_all(data, "disabilities", biz_check_disability, err, errlen) != 0)
		return -1;
	return 0;
}

/*
 * The record of the data file's array key whose id (at path "a" or "a.b")
 * is the query's "id"; NULL with the error set in rp: 400 for an id that
 * is neither a resident ID number nor a unified social credit code, 404
 * when no record has it.
 */
static json_t *
biz_find(struct sim *sim, const struct evkeyvalq *q, struct reply *rp, const char *key,
    const char *outer, const char *inner, const char *what)
{
	const char	*id = evhttp_find_header(q, "id"), *v;
	json_t		*e, *o;
	char		 msg[128];
	size_t		 i;

	if (id == NULL || id[0] == '\0') {
		reply_error(rp, 400, "missing id");
		return NULL;
	}
	if (!subject_id_resident(id) && !subject_id_uscc(id)) {
		reply_error(rp, 400, "id is neither a resident id number nor a unified social "
		    "credit code");
		return NULL;
	}
	json_array_foreach(json_object_get(sim_data(sim), key), i, e) {
		o = inner != NULL ? json_object_get(e, outer) : e;
		v = json_string_value(json_object_get(o, inner != NULL ? inner : outer));
		if (v != NULL && strcmp(v, id) == 0)
			return e;
	}
	snprintf(msg, sizeof(msg), "no %s for this id", what);
	reply_error(rp, 404, msg);
	return NULL;
}

/* Takes doc (the reference too) as a 200 JSON answer, or a 500 when bad or NULL. */
static void
biz_reply_json(struct reply *rp, int bad, json_t *doc)
{
	if (bad || doc == NULL) {
		json_decref(doc);
		reply_bad_data(rp);
		return;
	}
	reply_json(rp, 200, doc);
}

/*
 * samr: the business licence (营业执照) record, XML.  Its elements are in
 * the licence schema's default namespace; the legal representative is in
 * the person schema, whose prefix is declared on that element only.  The
 * status is a code: 1 in business (存续), 2 licence revoked (吊销), 3
 * deregistered (注销).
 */
void
biz_samr_business_licenses(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	json_t		*e, *rep;
	struct evbuffer	*b = rp->rp_body;
	const char	*status;
	char		 est[32];
	int		 bad = 0;

	if ((e = biz_find(sim, q, rp, "enterprises", "uscc", NULL, "business licence")) == NULL)
		return;
	rep = json_object_get(e, "legal_rep");
	status = need(e, "status", &bad);
	need_date(e, "established", "-", est, sizeof(est), &bad);
	evbuffer_add_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<BusinessLicense xmlns=\"" SAMR_NS "\" version=\"3\"><Entity>");
	xml_elem(b, "USCC", need(e, "uscc", &bad));
	xml_elem(b, "Name", need(e, "name", &bad));
	xml_elem(b, "Kind", need(e, "kind", &bad));
	xml_elem(b, "Capital", need(e, "capital", &bad));
	xml_elem(b, "Established", est);
	xml_elem(b, "Address", need(e, "address", &bad));
	xml_elem(b, "Scope", need(e, "scope", &bad));
	xml_elem(b, "Status", strcmp(status, "active") == 0 ? "1" :
	    strcmp(status, "revoked") == 0 ? "2" : "3");
	xml_elem(b, "Registry", need(e, "registry", &bad));
	evbuffer_add_printf(b, "</Entity><rep:LegalRepresentative xmlns:rep=\"" SAMR_PERSON_NS
	    "\">");
	xml_elem(b, "rep:Name", need(rep, "name", &bad));
	xml_elem(b, "rep:CertType", "10");
	xml_elem(b, "rep:CertNo", need(rep, "id", &bad));
	evbuffer_add_printf(b, "</rep:LegalRepresentative></BusinessLicense>\n");
	reply_done(rp, bad, "application/xml; charset=utf-8");
}

/*
 * tax: the tax registration (税务登记), one fixed-width GB18030 record
 * ended by CRLF.  Byte layout (GB18030 bytes: a character outside the
 * basic plane, as in some enterprise names, takes four):
 *
 *     0 18 taxpayer id (the unified social credit code)
 *    18 80 taxpayer name           98  1 taxpayer type (1 general, 2 small-scale)
 *    99  8 registered, YYYYMMDD   107 12 arrears, yuan, right-aligned
 *   119  1 status (1 normal)      120 60 tax office
 */
void
biz_tax_registrations(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	json_t		*e, *t;
	struct evbuffer	*b = rp->rp_body;
	char		 reg[16], arrears[16];
	int		 bad = 0;

	if ((e = biz_find(sim, q, rp, "enterprises", "uscc", NULL, "tax registration")) == NULL)
		return;
	t = json_object_get(e, "tax");
	need_date(t, "registered", "", reg, sizeof(reg), &bad);
	snprintf(arrears, sizeof(arrears), "%12s", need(t, "arrears", &bad));
	if (fixed_put_enc(b, "GB18030", need(e, "uscc", &bad), 18) != 0 ||
	    fixed_put_enc(b, "GB18030", need(e, "name", &bad), 80) != 0 ||
	    fixed_put_enc(b, "GB18030", need(t, "taxpayer_type", &bad), 1) != 0 ||
	    fixed_put_enc(b, "GB18030", reg, 8) != 0 ||
	    fixed_put_enc(b, "GB18030", arrears, 12) != 0 ||
	    fixed_put_enc(b, "GB18030", "1", 1) != 0 ||
	    fixed_put_enc(b, "GB18030", need(t, "office", &bad), 60) != 0 ||
	    evbuffer_add(b, "\r\n", 2) != 0)
		bad = 1;
	reply_done(rp, bad, "text/plain; charset=GB18030");
}

/*
 * hrss: the employer's social security account (单位社会保险登记), JSON
 * with the ministry's data element codes: aab001 account, aab998 unified
 * social credit code, aab004 name, aab050 opened (YYYYMMDD), aab046
 * insured employees, aab051 account status (1 normal).
 */
void
biz_hrss_employer_accounts(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	json_t		*e, *s, *doc;
	char		 opened[16];
	int		 bad = 0;

	if ((e = biz_find(sim, q, rp, "enterprises", "uscc", NULL, "employer account")) == NULL)
		return;
	s = json_object_get(e, "social_security");
	need_date(s, "opened", "", opened, sizeof(opened), &bad);
	doc = json_pack("{s:i, s:{s:s, s:s, s:s, s:s, s:O, s:s, s:s}}", "code", 0, "body",
	    "aab001", need(s, "account_no", &bad), "aab998", need(e, "uscc", &bad),
	    "aab004", need(e, "name", &bad), "aab050", opened,
	    "aab046", json_object_get(s, "employees"), "aab051", "1",
	    "orgName", need(s, "office", &bad));
	biz_reply_json(rp, bad, doc);
}

/*
 * hpf: the housing fund employer account (住房公积金单位账户), CSV in
 * GB18030 with a header row; the deposit rate is in percent.
 */
void
biz_hpf_employer_accounts(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	json_t		*e, *h;
	struct evbuffer	*b;
	char		 rate[16], emp[16], opened[16];
	int		 bad = 0;

	if ((e = biz_find(sim, q, rp, "enterprises", "uscc", NULL, "housing fund account")) ==
	    NULL)
		return;
	h = json_object_get(e, "housing_fund");
	if ((b = evbuffer_new()) == NULL) {
		reply_error(rp, 500, "out of memory");
		return;
	}
	snprintf(rate, sizeof(rate), "%lld", (long long)json_integer_value(json_object_get(h,
	    "rate")));
	snprintf(emp, sizeof(emp), "%lld", (long long)json_integer_value(json_object_get(h,
	    "employees")));
	need_date(h, "opened", "-", opened, sizeof(opened), &bad);
	evbuffer_add_printf(b, "单位账号,单位名称,统一社会信用代码,开户日期,缴存比例,"
	    "缴存人数,账户状态,管理部\r\n");
	csv_field(b, need(h, "account_no", &bad), ",");
	csv_field(b, need(e, "name", &bad), ",");
	csv_field(b, need(e, "uscc", &bad), ",");
	csv_field(b, opened, ",");
	csv_field(b, rate, ",");
	csv_field(b, emp, ",");
	csv_field(b, "正常", ",");
	csv_field(b, need(h, "center", &bad), "\r\n");
	reply_enc(rp, b, bad, "GB18030", "text/csv; charset=GB18030");
	evbuffer_free(b);
}

/*
 * mca: the registration of an assisted application (代办登记): who may
 * apply for whom, for which bundles (ids separated by commas), from when
 * to when, and whether it is still in force (state 1) or was revoked
 * (state 2).  Found by the principal's resident ID number.
 */
void
biz_mca_assisted_applications(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	json_t		*e, *p, *a, *doc;
	int		 bad = 0;

	if ((e = biz_find(sim, q, rp, "delegations", "principal", "id",
	    "assisted application registration")) == NULL)
		return;
	p = json_object_get(e, "principal");
	a = json_object_get(e, "agent");
	doc = json_pack("{s:s, s:{s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s, "
	    "s:s}}", "status", "ok", "result", "regNo", need(e, "reg_no", &bad),
	    "principal", "idNo", need(p, "id", &bad), "name", need(p, "name", &bad),
	    "agent", "idNo", need(a, "id", &bad), "name", need(a, "name", &bad),
	    "relation", need(e, "relation", &bad), "scope", need(e, "bundles", &bad),
	    "validFrom", need(e, "valid_from", &bad), "validUntil", need(e, "valid_until", &bad),
	    "state", strcmp(need(e, "status", &bad), "active") == 0 ? "1" : "2",
	    "registry", need(e, "registry", &bad));
	biz_reply_json(rp, bad, doc);
}

/*
 * cdpf: the disability certificate (残疾人证), JSON; category and grade
 * are the codes of GB/T 26341 (category 1-7, grade 1-4).
 */
void
biz_cdpf_disability_certificates(struct sim *sim, const struct evkeyvalq *q,
    struct reply *rp)
{
	json_t		*e, *doc;
	char		 issued[16], until[16];
	int		 bad = 0;

	if ((e = biz_find(sim, q, rp, "disabilities", "id", NULL, "disability certificate")) ==
	    NULL)
		return;
	need_date(e, "issued", "", issued, sizeof(issued), &bad);
	need_date(e, "valid_until", "", until, sizeof(until), &bad);
	doc = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}}", "cert",
	    "certNo", need(e, "cert_no", &bad), "idNumber", need(e, "id", &bad),
	    "name", need(e, "name", &bad), "category", need(e, "category", &bad),
	    "grade", need(e, "grade", &bad), "issued", issued, "validUntil", until,
	    "office", need(e, "office", &bad));
	biz_reply_json(rp, bad, doc);
}
