/*
 * deptsim.c - the department simulator.
 *
 * Serves synthetic, deterministic records of the demo families (one JSON data
 * file) over HTTP on loopback, each department in its own native format
 * (fixed-width GBK, XML with and without namespaces, quoted CSV, GBK CSV,
 * msgpack, JSON), so that the gateway's adapters, the demo and the
 * integration tests have real sources to talk to.  Departments can be slowed
 * down (--delay), taken down (--down), made to answer garbage (--garbage) or
 * someone else's record (--wrong-holder), and /_stats counts what reached
 * each department, which lets a test prove that a refused exchange never left
 * the gateway.
 *
 * With --tls (or --tls-dir) it serves HTTPS instead and, like a real
 * department system, accepts only clients whose certificate chains to the
 * given CA; --verbose logs each request with the client's CN, Host header
 * and server name (SNI).
 *
 * Departments are a table: each has an id (the first path segment) and a
 * table of routes, one handler per route.  A new department or data set is
 * one handler and one table row.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <iconv.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <jansson.h>
#include <msgpack.h>

#include "deptsim.h"

#ifdef LB_SRCDIR
#define SIM_DEFAULT_DATA	LB_SRCDIR "/adapters/data/families.json"
#else
#define SIM_DEFAULT_DATA	"adapters/data/families.json"
#endif
#define SIM_DEFAULT_LISTEN	"127.0.0.1:8701"
/* Where an installed deptsim finds the families (make install copies them). */
#ifdef LB_PKGDATADIR
#define SIM_INSTALLED_DATA	LB_PKGDATADIR "/families.json"
#else
#define SIM_INSTALLED_DATA	SIM_DEFAULT_DATA
#endif
#define SIM_LISTEN_MAX		16		/* --listen addresses */

#define SIM_URI_MAX		2048		/* request target, bytes */
#define SIM_HEADERS_MAX		8192
#define SIM_BODY_MAX		4096		/* nothing we serve takes a body */
#define SIM_TIMEOUT_S		120		/* idle connections; above SIM_DELAY_MAX_MS */
#define SIM_TIMEOUT_MAX_S	3600		/* --idle-timeout */
#define SIM_DELAY_MAX_MS	60000
#define SIM_PENDING_MAX		1024		/* delayed answers in flight */
#define SIM_DATA_MAX		(4L * 1024 * 1024)
#define SIM_FAMILIES_MAX	1000
#define SIM_MEMBERS_MAX		16
#define SIM_TEXT_MAX		256		/* bytes in one text field of the data file */
#define SIM_ID_LEN		18		/* GB 11643 resident id number */

#define JSON_TYPE		"application/json; charset=utf-8"

#define nitems(a)		(sizeof(a) / sizeof((a)[0]))

/* A family of the data file; the members point into the loaded document. */
struct family {
	json_t		*fa_json;
	json_t		*fa_father;
	json_t		*fa_mother;
};

/* A person of the data file, found by resident id number. */
struct person {
	const char	*pe_id;		/* owned by the loaded document */
	json_t		*pe_json;
	struct family	*pe_family;
};


struct dept {
	const char		*dp_id;
	const struct route	*dp_routes;
	size_t			 dp_nroutes;
	unsigned		 dp_delay_ms;
	int			 dp_down;
	int			 dp_garbage;	/* --garbage: 200 with bytes no format reads */
	int			 dp_wrong_holder; /* --wrong-holder: another person's record */
	unsigned long long	 dp_served;
};

/* An answer held back by --delay until its timer fires. */
struct pending {
	TAILQ_ENTRY(pending)	 pd_entry;
	struct sim		*pd_sim;
	struct evhttp_request	*pd_req;
	struct event		*pd_timer;
	struct reply		 pd_reply;
};
TAILQ_HEAD(pending_list, pending);

struct sim {
	struct event_base	*sm_base;
	struct evhttp		*sm_http;
	json_t			*sm_data;
	struct family		*sm_families;
	size_t			 sm_nfamilies;
	struct person		*sm_people;
	size_t			 sm_npeople;
	struct pending_list	 sm_pending;
	size_t			 sm_npending;
	unsigned long long	 sm_total;
	SSL_CTX			*sm_tls;	/* --tls: HTTPS with client certificates */
	int			 sm_verbose;	/* --verbose: one log line per request */
};

#define HANDLER(name) \
static void	name(struct sim *, const struct evkeyvalq *, struct reply *)
HANDLER(psb_household_registers);
HANDLER(psb_id_cards);
HANDLER(nhc_birth_medical_certificates);
HANDLER(mca_marriage_registrations);
HANDLER(cdc_vaccination_records);
HANDLER(nhsa_insured_persons);
HANDLER(hrss_social_security_cards);
HANDLER(mnr_property_certificates);
HANDLER(mohurd_rental_registrations);
HANDLER(edu_school_places);

static const struct route psb_routes[] = {
	{ "/household-registers", EVHTTP_REQ_GET, psb_household_registers },
	{ "/id-cards", EVHTTP_REQ_GET, psb_id_cards },
};
static const struct route nhc_routes[] = {
	{ "/birth-medical-certificates", EVHTTP_REQ_GET, nhc_birth_medical_certificates },
};
static const struct route mca_routes[] = {
	{ "/marriage-registrations", EVHTTP_REQ_GET, mca_marriage_registrations },
	{ "/assisted-applications", EVHTTP_REQ_GET, biz_mca_assisted_applications },
};
static const struct route cdc_routes[] = {
	{ "/vaccination-records", EVHTTP_REQ_GET, cdc_vaccination_records },
};
static const struct route nhsa_routes[] = {
	{ "/insured-persons", EVHTTP_REQ_GET, nhsa_insured_persons },
};
static const struct route hrss_routes[] = {
	{ "/social-security-cards", EVHTTP_REQ_GET, hrss_social_security_cards },
	{ "/employer-accounts", EVHTTP_REQ_GET, biz_hrss_employer_accounts },
};
static const struct route mnr_routes[] = {
	{ "/property-certificates", EVHTTP_REQ_GET, mnr_property_certificates },
};
static const struct route mohurd_routes[] = {
	{ "/rental-registrations", EVHTTP_REQ_GET, mohurd_rental_registrations },
};
static const struct route edu_routes[] = {
	{ "/school-places", EVHTTP_REQ_GET, edu_school_places },
};
static const struct route samr_routes[] = {
	{ "/business-licenses", EVHTTP_REQ_GET, biz_samr_business_licenses },
};
static const struct route tax_routes[] = {
	{ "/tax-registrations", EVHTTP_REQ_GET, biz_tax_registrations },
};
static const struct route hpf_routes[] = {
	{ "/employer-accounts", EVHTTP_REQ_GET, biz_hpf_employer_accounts },
};
static const struct route cdpf_routes[] = {
	{ "/disability-certificates", EVHTTP_REQ_GET, biz_cdpf_disability_certificates },
};

#define DEPT(id, routes)	{ id, routes, nitems(routes), 0, 0, 0, 0, 0 }

/* Every department of the demo; deptsim_biz.c serves the enterprise and assistance records. */
static struct dept depts[] = {
	DEPT("psb", psb_routes),
	DEPT("nhc", nhc_routes),
	DEPT("mca", mca_routes),
	DEPT("cdc", cdc_routes),
	DEPT("nhsa", nhsa_routes),
	DEPT("hrss", hrss_routes),
	DEPT("mnr", mnr_routes),
	DEPT("mohurd", mohurd_routes),
	DEPT("samr", samr_routes),
	DEPT("edu", edu_routes),
	DEPT("tax", tax_routes),
	DEPT("hpf", hpf_routes),
	DEPT("cdpf", cdpf_routes),
};

static void	usage(FILE *);
static struct dept *dept_find(const char *, size_t);
static int	date_format(const char *, char *, size_t, const char *);
static int	data_check_bmc(json_t *, const char *, char *, size_t);
static int	data_check_member(json_t *, char *, size_t);
static int	data_load(struct sim *, const char *, char *, size_t);
static void	data_free(struct sim *);
static struct person *person_find(struct sim *, const char *);
static struct person *person_other(struct sim *, const char *);
static int	data_selftest(struct sim *, char *, size_t);
static int	reply_init(struct reply *);
static void	reply_free(struct reply *);
static const char *status_reason(int);
static void	reply_send(struct evhttp_request *, struct reply *);
static void	pending_fire(evutil_socket_t, short, void *);
static void	reply_later(struct sim *, struct evhttp_request *, struct reply *,
		    unsigned);
static void	stats_reply(struct sim *, struct reply *);
static void	stats_reset(struct sim *);
static void	dept_dispatch(struct sim *, struct dept *, struct evhttp_request *,
		    const char *, const char *, struct reply *);
static void	sim_request(struct evhttp_request *, void *);
static void	sim_log(struct sim *, struct evhttp_request *);
static void	sim_signal(evutil_socket_t, short, void *);
static int	parse_listen(const char *, char *, size_t, unsigned short *);
static int	parse_delay(const char *);
static int	announce(struct evhttp_bound_socket *);

/* The source tree's families while it is there, else the installed copy. */
static const char *
sim_default_data(void)
{
	return access(SIM_DEFAULT_DATA, R_OK) == 0 ? SIM_DEFAULT_DATA : SIM_INSTALLED_DATA;
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: deptsim [--listen HOST:PORT]... [--data FILE] [--delay DEPT=MS]...\n"
	    "               [--down DEPT]... [--garbage DEPT]... [--wrong-holder DEPT]...\n"
	    "               [--tls CERT KEY CA | --tls-dir DIR] [--idle-timeout S]\n"
	    "               [--verbose] [--help] [--version]\n"
	    "\n"
	    "Serves synthetic department data of the demo families over HTTP or HTTPS.\n"
	    "\n"
	    "  --listen HOST:PORT  address to listen on (default %s; port 0 picks one);\n"
	    "                      repeatable, every address serves every department\n"
	    "  --data FILE         families data file (default %s)\n"
	    "  --delay DEPT=MS     delay every answer of DEPT by MS milliseconds\n"
	    "  --down DEPT         DEPT answers 503 service unavailable\n"
	    "  --garbage DEPT      DEPT answers 200 with bytes no format can read\n"
	    "  --wrong-holder DEPT DEPT answers with another person's record\n"
	    "  --tls CERT KEY CA   serve HTTPS with server certificate CERT and key KEY,\n"
	    "                      and accept only clients with a certificate issued\n"
	    "                      by CA (PEM files)\n"
	    "  --tls-dir DIR       --tls DIR/departments/server.pem\n"
	    "                      DIR/departments/server.key DIR/client-ca.pem (a demo\n"
	    "                      PKI made by certs/mkdemo)\n"
	    "  --idle-timeout S    close connections idle for S seconds (default %d)\n"
	    "  --verbose           log every request with the client's address and CN\n"
	    "  --help              print this text\n"
	    "  --version           print the version of deptsim\n"
	    "\n"
	    "Departments:", SIM_DEFAULT_LISTEN, sim_default_data(), SIM_TIMEOUT_S);
	for (size_t i = 0; i < nitems(depts); i++)
		fprintf(fp, " %s", depts[i].dp_id);
	fprintf(fp, "\n");
}

static struct dept *
dept_find(const char *id, size_t len)
{
	for (size_t i = 0; i < nitems(depts); i++)
		if (strlen(depts[i].dp_id) == len &&
		    memcmp(depts[i].dp_id, id, len) == 0)
			return &depts[i];
	return NULL;
}

/* YYYY-MM-DD, a real calendar day. */
int
date_valid(const char *s)
{
	static const int	 mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int			 y, m, d;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return 0;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return 0;
	y = atoi(s);
	m = atoi(s + 5);
	d = atoi(s + 8);
	if (y < 1900 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return 0;
	if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return 0;
	return 1;
}

/* Rewrites a valid YYYY-MM-DD with separator sep ("" gives YYYYMMDD). */
static int
date_format(const char *iso, char *out, size_t outsz, const char *sep)
{
	int	 n;

	n = snprintf(out, outsz, "%.4s%s%.2s%s%.2s", iso, sep, iso + 5, sep, iso + 8);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

int
text_ok(const char *s)
{
	size_t	 len = strlen(s);

	return len > 0 && len <= SIM_TEXT_MAX;
}

/* The birth medical certificate of a person born on birth_date. */
static int
data_check_bmc(json_t *bmc, const char *birth_date, char *err, size_t errlen)
{
	json_error_t	 jerr;
	const char	*cert_no, *time, *hospital, *place, *issued;
	json_int_t	 weight;

	if (json_unpack_ex(bmc, &jerr, 0, "{s:s, s:s, s:I, s:s, s:s, s:s}",
	    "cert_no", &cert_no, "birth_time", &time, "weight_g", &weight,
	    "hospital", &hospital, "birthplace", &place, "issue_date", &issued) != 0) {
		snprintf(err, errlen, "birth_medical_certificate: %s", jerr.text);
		return -1;
	}
	if (!text_ok(cert_no) || !text_ok(hospital) || !text_ok(place)) {
		snprintf(err, errlen, "birth_medical_certificate: empty or overlong text");
		return -1;
	}
	if (strlen(time) != 5 || time[2] != ':' || atoi(time) > 23 ||
	    atoi(time + 3) > 59 || strspn(time, "0123456789:") != 5) {
		snprintf(err, errlen, "birth_medical_certificate: birth_time is not HH:MM");
		return -1;
	}
	if (weight < 300 || weight > 8000) {
		snprintf(err, errlen, "birth_medical_certificate: weight_g out of range");
		return -1;
	}
	/* ISO dates order as strings. */
	if (!date_valid(issued) || strcmp(issued, birth_date) < 0) {
		snprintf(err, errlen, "birth_medical_certificate: bad issue_date");
		return -1;
	}
	return 0;
}

static int
data_check_member(json_t *m, char *err, size_t errlen)
{
	json_error_t	 jerr;
	const char	*role, *name, *sex, *id, *birth;
	json_t		*bmc = NULL;
	char		 compact[16];

	if (json_unpack_ex(m, &jerr, 0, "{s:s, s:s, s:s, s:s, s:s, s?o}",
	    "role", &role, "name", &name, "sex", &sex, "id", &id,
	    "birth_date", &birth, "birth_medical_certificate", &bmc) != 0) {
		snprintf(err, errlen, "%s", jerr.text);
		return -1;
	}
	if (strcmp(role, "father") != 0 && strcmp(role, "mother") != 0 &&
	    strcmp(role, "newborn") != 0 && strcmp(role, "child") != 0) {
		snprintf(err, errlen, "unknown role \"%.32s\"", role);
		return -1;
	}
	if (!text_ok(name)) {
		snprintf(err, errlen, "empty or overlong name");
		return -1;
	}
	if (!subject_id_resident(id)) {
		snprintf(err, errlen, "%.32s: not a valid resident id number", id);
		return -1;
	}
	/* The id carries the birth date (digits 7-14) and the sex (digit 17, odd: male). */
	if (!date_valid(birth) || date_format(birth, compact, sizeof(compact), "") != 0 ||
	    memcmp(id + 6, compact, 8) != 0) {
		snprintf(err, errlen, "%s: birth_date does not match the id", id);
		return -1;
	}
	if (strcmp(sex, (id[16] - '0') % 2 ? "1" : "2") != 0) {
		snprintf(err, errlen, "%s: sex does not match the id", id);
		return -1;
	}
	if ((strcmp(role, "father") == 0 && strcmp(sex, "1") != 0) ||
	    (strcmp(role, "mother") == 0 && strcmp(sex, "2") != 0)) {
		snprintf(err, errlen, "%s: sex does not fit the role %s", id, role);
		return -1;
	}
	if (strcmp(role, "newborn") == 0 && bmc == NULL) {
		snprintf(err, errlen, "%s: a newborn needs a birth_medical_certificate", id);
		return -1;
	}
	if (bmc != NULL && data_check_bmc(bmc, birth, err, errlen) != 0)
		return -1;
	return 0;
}

/*
 * Loads and validates the families data file.  The file is the single source
 * of every department's records, so it is checked as a whole at start: a
 * simulator that starts serves only consistent data.
 */
static int
data_load(struct sim *sim, const char *path, char *err, size_t errlen)
{
	struct stat	 st;
	json_error_t	 jerr;
	json_t		*families, *fam, *members, *m;
	struct family	*fa;
	struct person	*pe;
	const char	*fid, *addr, *role;
	char		 why[256];
	size_t		 i, j, k, npeople = 0;
	int		 ret = -1;

	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_size > SIM_DATA_MAX) {
		snprintf(err, errlen, "%s: larger than %ld bytes", path, SIM_DATA_MAX);
		return -1;
	}
	if ((sim->sm_data = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		return -1;
	}
	families = json_object_get(sim->sm_data, "families");
	if (!json_is_array(families) || json_array_size(families) == 0 ||
	    json_array_size(families) > SIM_FAMILIES_MAX) {
		snprintf(err, errlen, "%s: \"families\" must be an array of 1 to %d families",
		    path, SIM_FAMILIES_MAX);
		goto done;
	}
	sim->sm_nfamilies = json_array_size(families);
	if ((sim->sm_families = calloc(sim->sm_nfamilies, sizeof(*sim->sm_families))) == NULL ||
	    (sim->sm_people = calloc(sim->sm_nfamilies * SIM_MEMBERS_MAX,
	    sizeof(*sim->sm_people))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	json_array_foreach(families, i, fam) {
		fa = &sim->sm_families[i];
		fa->fa_json = fam;
		if (json_unpack_ex(fam, &jerr, 0, "{s:s, s:{s:s}, s:o}", "family", &fid,
		    "household", "address", &addr, "members", &members) != 0) {
			snprintf(err, errlen, "%s: family %zu: %s", path, i + 1, jerr.text);
			goto done;
		}
		if (!text_ok(fid) || !text_ok(addr)) {
			snprintf(err, errlen, "%s: family %zu: empty or overlong family or address",
			    path, i + 1);
			goto done;
		}
		if (!json_is_array(members) || json_array_size(members) > SIM_MEMBERS_MAX) {
			snprintf(err, errlen, "%s: family %s: \"members\" must be an array of "
			    "at most %d", path, fid, SIM_MEMBERS_MAX);
			goto done;
		}
		json_array_foreach(members, j, m) {
			if (data_check_member(m, why, sizeof(why)) != 0) {
				snprintf(err, errlen, "%s: family %s, member %zu: %s", path,
				    fid, j + 1, why);
				goto done;
			}
			role = json_string_value(json_object_get(m, "role"));
			if (strcmp(role, "father") == 0 || strcmp(role, "mother") == 0) {
				json_t **slot = role[0] == 'f' ? &fa->fa_father : &fa->fa_mother;

				if (*slot != NULL) {
					snprintf(err, errlen, "%s: family %s has two %ss", path,
					    fid, role);
					goto done;
				}
				*slot = m;
			}
			pe = &sim->sm_people[npeople];
			pe->pe_id = json_string_value(json_object_get(m, "id"));
			pe->pe_json = m;
			pe->pe_family = fa;
			for (k = 0; k < npeople; k++) {
				if (strcmp(sim->sm_people[k].pe_id, pe->pe_id) == 0) {
					snprintf(err, errlen, "%s: id %s appears twice", path,
					    pe->pe_id);
					goto done;
				}
			}
			npeople++;
		}
		if (fa->fa_father == NULL || fa->fa_mother == NULL) {
			snprintf(err, errlen, "%s: family %s needs a father and a mother", path, fid);
			goto done;
		}
	}
	if (biz_data_check(sim->sm_data, err, errlen) != 0)
		goto done;
	sim->sm_npeople = npeople;
	ret = 0;
done:
	if (ret != 0)
		data_free(sim);
	return ret;
}

static void
data_free(struct sim *sim)
{
	free(sim->sm_people);
	free(sim->sm_families);
	json_decref(sim->sm_data);
	sim->sm_people = NULL;
	sim->sm_families = NULL;
	sim->sm_data = NULL;
	sim->sm_npeople = sim->sm_nfamilies = 0;
}

json_t *
sim_data(struct sim *sim)
{
	return sim->sm_data;
}

static struct person *
person_find(struct sim *sim, const char *id)
{
	for (size_t i = 0; i < sim->sm_npeople; i++)
		if (strcmp(sim->sm_people[i].pe_id, id) == 0)
			return &sim->sm_people[i];
	return NULL;
}

/*
 * Someone else for --wrong-holder: the member with the same role in the
 * next family that has one, so that the department has a record for them.
 */
static struct person *
person_other(struct sim *sim, const char *id)
{
	struct person	*pe = person_find(sim, id);
	const char	*role;
	size_t		 i, at;

	if (pe == NULL)
		return NULL;
	role = json_string_value(json_object_get(pe->pe_json, "role"));
	at = (size_t)(pe - sim->sm_people);
	for (i = 1; i < sim->sm_npeople; i++) {
		struct person	*o = &sim->sm_people[(at + i) % sim->sm_npeople];

		if (o->pe_family != pe->pe_family &&
		    strcmp(json_string_value(json_object_get(o->pe_json, "role")), role) == 0)
			return o;
	}
	return NULL;
}

static int
reply_init(struct reply *rp)
{
	rp->rp_status = 500;
	rp->rp_type = JSON_TYPE;
	return (rp->rp_body = evbuffer_new()) == NULL ? -1 : 0;
}

static void
reply_free(struct reply *rp)
{
	if (rp->rp_body != NULL)
		evbuffer_free(rp->rp_body);
	rp->rp_body = NULL;
}

/* Sets the answer to the compact JSON text of doc; takes the reference to doc. */
void
reply_json(struct reply *rp, int status, json_t *doc)
{
	char	*text = NULL;

	evbuffer_drain(rp->rp_body, evbuffer_get_length(rp->rp_body));
	rp->rp_type = JSON_TYPE;
	if (doc == NULL || (text = json_dumps(doc, JSON_COMPACT)) == NULL ||
	    evbuffer_add(rp->rp_body, text, strlen(text)) != 0) {
		rp->rp_status = 500;
		evbuffer_drain(rp->rp_body, evbuffer_get_length(rp->rp_body));
		evbuffer_add_printf(rp->rp_body, "{\"code\":500,\"message\":\"out of memory\"}");
	} else
		rp->rp_status = status;
	free(text);
	json_decref(doc);
}

/* The departments' common error shape: {"code": status, "message": text}. */
void
reply_error(struct reply *rp, int status, const char *message)
{
	reply_json(rp, status, json_pack("{s:i, s:s}", "code", status, "message", message));
}

static const char *
status_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 414:
		return "URI Too Long";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

static void
reply_send(struct evhttp_request *req, struct reply *rp)
{
	struct evkeyvalq	*hdrs = evhttp_request_get_output_headers(req);

	evhttp_add_header(hdrs, "Content-Type", rp->rp_type);
	evhttp_add_header(hdrs, "Cache-Control", "no-store");
	evhttp_send_reply(req, rp->rp_status, status_reason(rp->rp_status), rp->rp_body);
}

/*
 * A delayed answer is due.  The request is still valid here even if its client
 * went away: libevent detaches an unanswered request from a failed connection
 * instead of freeing it, and evhttp_send_reply then frees it.
 */
static void
pending_fire(evutil_socket_t fd, short what, void *arg)
{
	struct pending	*pd = arg;
	struct sim	*sim = pd->pd_sim;

	(void)fd;
	(void)what;
	TAILQ_REMOVE(&sim->sm_pending, pd, pd_entry);
	sim->sm_npending--;
	reply_send(pd->pd_req, &pd->pd_reply);
	reply_free(&pd->pd_reply);
	event_free(pd->pd_timer);
	free(pd);
}

/* Sends rp after ms milliseconds, from a timer; the loop never sleeps.  Takes rp's body. */
static void
reply_later(struct sim *sim, struct evhttp_request *req, struct reply *rp, unsigned ms)
{
	struct pending	*pd = NULL;
	struct timeval	 tv;

	if (sim->sm_npending >= SIM_PENDING_MAX) {
		reply_error(rp, 503, "too many delayed answers");
		goto now;
	}
	if ((pd = calloc(1, sizeof(*pd))) == NULL ||
	    (pd->pd_timer = evtimer_new(sim->sm_base, pending_fire, pd)) == NULL) {
		reply_error(rp, 500, "out of memory");
		goto now;
	}
	pd->pd_sim = sim;
	pd->pd_req = req;
	pd->pd_reply = *rp;
	rp->rp_body = NULL;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(pd->pd_timer, &tv);
	TAILQ_INSERT_TAIL(&sim->sm_pending, pd, pd_entry);
	sim->sm_npending++;
	return;
now:
	free(pd);
	reply_send(req, rp);
}

static void
stats_reply(struct sim *sim, struct reply *rp)
{
	json_t	*by = json_object();

	for (size_t i = 0; by != NULL && i < nitems(depts); i++)
		json_object_set_new(by, depts[i].dp_id, json_integer((json_int_t)depts[i].dp_served));
	reply_json(rp, 200, json_pack("{s:I, s:o}", "total", (json_int_t)sim->sm_total,
	    "by_dept", by));
}

static void
stats_reset(struct sim *sim)
{
	for (size_t i = 0; i < nitems(depts); i++)
		depts[i].dp_served = 0;
	sim->sm_total = 0;
}

/*
 * Routes a request below /DEPT; rest is the path after the department id.
 * req is NULL when data_selftest calls it, which skips the method check.
 */
static void
dept_dispatch(struct sim *sim, struct dept *dp, struct evhttp_request *req,
    const char *rest, const char *query, struct reply *rp)
{
	struct evkeyvalq	 q;
	const struct route	*ro = NULL;
	const char		*id;
	struct person		*other;

	dp->dp_served++;
	sim->sm_total++;
	if (dp->dp_down) {
		reply_error(rp, 503, "service unavailable");
		return;
	}
	if (dp->dp_garbage) {
		/* Bytes that are no JSON, XML, msgpack, UTF-8 or GBK text. */
		evbuffer_drain(rp->rp_body, evbuffer_get_length(rp->rp_body));
		evbuffer_add(rp->rp_body, "\xc1\xff\xfe<<garbled\x00>>", 15);
		reply_ok(rp, "application/octet-stream");
		return;
	}
	for (size_t i = 0; i < dp->dp_nroutes; i++)
		if (strcmp(dp->dp_routes[i].ro_path, rest) == 0)
			ro = &dp->dp_routes[i];
	if (ro == NULL) {
		reply_error(rp, 404, "no such endpoint");
		return;
	}
	if (req != NULL && evhttp_request_get_command(req) != ro->ro_method) {
		reply_error(rp, 405, "method not allowed");
		return;
	}
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(query != NULL ? query : "", &q) != 0) {
		reply_error(rp, 400, "malformed query");
		return;
	}
	/* --wrong-holder: answer with the record of someone else in the same role. */
	if (dp->dp_wrong_holder && (id = evhttp_find_header(&q, "id")) != NULL &&
	    (other = person_other(sim, id)) != NULL) {
		evhttp_remove_header(&q, "id");
		evhttp_add_header(&q, "id", other->pe_id);
	}
	ro->ro_handler(sim, &q, rp);
	evhttp_clear_headers(&q);
}

/*
 * Answers every route of every department for every person of the data
 * file, as a client would ask, and fails on any 500: each handler reads
 * the fields it needs and reports a missing or malformed one that way.
 */
static int
data_selftest(struct sim *sim, char *err, size_t errlen)
{
	struct reply	 rp;
	char		 query[64];
	const char	*msg;
	size_t		 i, j, k;
	int		 ret = 0, saved[nitems(depts)][2];

	/* Test the data, not the switches that make departments misbehave. */
	for (j = 0; j < nitems(depts); j++) {
		saved[j][0] = depts[j].dp_down;
		saved[j][1] = depts[j].dp_garbage + 2 * depts[j].dp_wrong_holder;
		depts[j].dp_down = depts[j].dp_garbage = depts[j].dp_wrong_holder = 0;
	}
	for (i = 0; i < sim->sm_npeople && ret == 0; i++) {
		snprintf(query, sizeof(query), "id=%s", sim->sm_people[i].pe_id);
		for (j = 0; j < nitems(depts) && ret == 0; j++) {
			for (k = 0; k < depts[j].dp_nroutes && ret == 0; k++) {
				if (reply_init(&rp) != 0) {
					snprintf(err, errlen, "out of memory");
					return -1;
				}
				dept_dispatch(sim, &depts[j], NULL, depts[j].dp_routes[k].ro_path,
				    query, &rp);
				if (rp.rp_status != 200 && rp.rp_status != 404) {
					msg = (const char *)evbuffer_pullup(rp.rp_body, -1);
					snprintf(err, errlen, "%s: /%s%s answers %d: %.*s",
					    sim->sm_people[i].pe_id, depts[j].dp_id,
					    depts[j].dp_routes[k].ro_path, rp.rp_status,
					    (int)evbuffer_get_length(rp.rp_body), msg ? msg : "");
					ret = -1;
				}
				reply_free(&rp);
			}
		}
	}
	for (j = 0; j < nitems(depts); j++) {
		depts[j].dp_down = saved[j][0];
		depts[j].dp_garbage = saved[j][1] & 1;
		depts[j].dp_wrong_holder = saved[j][1] >> 1;
	}
	stats_reset(sim);
	return ret;
}

static void
sim_request(struct evhttp_request *req, void *arg)
{
	struct sim			*sim = arg;
	const struct evhttp_uri		*uri;
	const char			*path, *seg, *slash;
	struct dept			*dp = NULL;
	struct reply			 rp;
	enum evhttp_cmd_type		 cmd = evhttp_request_get_command(req);

	if (sim->sm_verbose)
		sim_log(sim, req);
	if (reply_init(&rp) != 0) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	if (strlen(evhttp_request_get_uri(req)) > SIM_URI_MAX) {
		reply_error(&rp, 414, "request target too long");
		goto send;
	}
	if ((uri = evhttp_request_get_evhttp_uri(req)) == NULL ||
	    (path = evhttp_uri_get_path(uri)) == NULL || path[0] != '/') {
		reply_error(&rp, 400, "malformed request target");
		goto send;
	}
	if (strcmp(path, "/_stats") == 0 && cmd == EVHTTP_REQ_GET) {
		stats_reply(sim, &rp);
		goto send;
	}
	if (strcmp(path, "/_stats/reset") == 0 && cmd == EVHTTP_REQ_POST) {
		stats_reset(sim);
		stats_reply(sim, &rp);
		goto send;
	}
	seg = path + 1;
	slash = strchr(seg, '/');
	if ((dp = dept_find(seg, slash != NULL ? (size_t)(slash - seg) : strlen(seg))) == NULL) {
		reply_error(&rp, 404, "no such endpoint");
		goto send;
	}
	dept_dispatch(sim, dp, req, slash != NULL ? slash : "", evhttp_uri_get_query(uri), &rp);
	if (dp->dp_delay_ms > 0) {
		reply_later(sim, req, &rp, dp->dp_delay_ms);
		reply_free(&rp);
		return;
	}
send:
	reply_send(req, &rp);
	reply_free(&rp);
}

/*
 * Helpers for handlers.  A record field that is missing, not a string,
 * empty or overlong marks the record bad; the handler then answers 500.
 * data_selftest runs every handler over every person at start, so a bad
 * data file stops the simulator instead of serving half a record.
 */
const char *
need(json_t *o, const char *key, int *bad)
{
	const char	*s = json_string_value(json_object_get(o, key));

	if (s == NULL || !text_ok(s)) {
		*bad = 1;
		return "";
	}
	return s;
}

/* A YYYY-MM-DD field rewritten as YYYY<sep>MM<sep>DD into out. */
const char *
need_date(json_t *o, const char *key, const char *sep, char *out, size_t outsz, int *bad)
{
	const char	*s = need(o, key, bad);

	if (!date_valid(s) || date_format(s, out, outsz, sep) != 0) {
		*bad = 1;
		out[0] = '\0';
	}
	return out;
}

/* A YYYY-MM-DD field as YYYY年MM月DD日. */
static const char *
need_date_cn(json_t *o, const char *key, char *out, size_t outsz, int *bad)
{
	const char	*s = need(o, key, bad);
	int		 n = -1;

	if (date_valid(s))
		n = snprintf(out, outsz, "%.4s年%.2s月%.2s日", s, s + 5, s + 8);
	if (n < 0 || (size_t)n >= outsz) {
		*bad = 1;
		out[0] = '\0';
	}
	return out;
}

/*
 * The person named by the "id" parameter of a query; NULL with the error
 * set in rp (400 for a missing or malformed id, 404 when nobody has it).
 */
static struct person *
query_person(struct sim *sim, const struct evkeyvalq *q, struct reply *rp, const char *what)
{
	const char	*id = evhttp_find_header(q, "id");
	struct person	*pe;
	char		 msg[128];

	if (id == NULL || id[0] == '\0') {
		reply_error(rp, 400, "missing id");
		return NULL;
	}
	if (!subject_id_resident(id)) {
		reply_error(rp, 400, "id is not a resident id number");
		return NULL;
	}
	if ((pe = person_find(sim, id)) == NULL) {
		snprintf(msg, sizeof(msg), "no %s for this id", what);
		reply_error(rp, 404, msg);
	}
	return pe;
}

static void
reply_none(struct reply *rp, const char *what)
{
	char	 msg[128];

	snprintf(msg, sizeof(msg), "no %s for this id", what);
	reply_error(rp, 404, msg);
}

void
reply_bad_data(struct reply *rp)
{
	reply_error(rp, 500, "incomplete record in the data file");
}

void
reply_done(struct reply *rp, int bad, const char *type)
{
	if (bad)
		reply_bad_data(rp);
	else
		reply_ok(rp, type);
}

void
reply_enc(struct reply *rp, struct evbuffer *b, int bad, const char *enc, const char *type)
{
	char	*text = NULL, *out = NULL;
	size_t	 len = evbuffer_get_length(b), olen;

	if (!bad && (text = malloc(len + 1)) != NULL) {
		evbuffer_copyout(b, text, len);
		text[len] = '\0';
		if (enc_convert(enc, text, len, &out, &olen) != 0 ||
		    evbuffer_add(rp->rp_body, out, olen) != 0)
			bad = 1;
	} else
		bad = 1;
	free(text);
	free(out);
	reply_done(rp, bad, type);
}

/* Takes the body built so far as a 200 answer of the given type. */
void
reply_ok(struct reply *rp, const char *type)
{
	rp->rp_status = 200;
	rp->rp_type = type;
}

static int
is_parent(json_t *m)
{
	const char	*role = json_string_value(json_object_get(m, "role"));

	return strcmp(role, "father") == 0 || strcmp(role, "mother") == 0;
}

/*
 * Converts len bytes of UTF-8 to enc; *out is malloc'ed.  Every text of the
 * data file is bounded (SIM_TEXT_MAX), so the output bound is small.
 */
int
enc_convert(const char *enc, const char *in, size_t len, char **out, size_t *outlen)
{
	iconv_t		 cd;
	char		*buf, *ip = (char *)(uintptr_t)in, *op;
	size_t		 il = len, ol, cap = len * 2 + 16;
	int		 ret = -1;

	*out = NULL;
	if (len > SIM_DATA_MAX || (cd = iconv_open(enc, "UTF-8")) == (iconv_t)-1)
		return -1;
	if ((buf = malloc(cap)) != NULL) {
		op = buf;
		ol = cap;
		if (iconv(cd, &ip, &il, &op, &ol) != (size_t)-1 &&
		    iconv(cd, NULL, NULL, &op, &ol) != (size_t)-1) {
			*out = buf;
			*outlen = cap - ol;
			buf = NULL;
			ret = 0;
		}
	}
	free(buf);
	iconv_close(cd);
	return ret;
}

/* Appends s in GBK, padded with spaces to width bytes; -1 when it does not fit. */
static int
fixed_put(struct evbuffer *b, const char *s, size_t width)
{
	return fixed_put_enc(b, "GBK", s, width);
}

int
fixed_put_enc(struct evbuffer *b, const char *enc, const char *s, size_t width)
{
	char	*g = NULL;
	size_t	 glen = 0;
	int	 ret = -1;

	if (enc_convert(enc, s, strlen(s), &g, &glen) != 0 || glen > width)
		goto done;
	if (evbuffer_add(b, g, glen) != 0)
		goto done;
	for (; glen < width; glen++)
		if (evbuffer_add(b, " ", 1) != 0)
			goto done;
	ret = 0;
done:
	free(g);
	return ret;
}

/* Appends s as XML character data. */
static void
xml_text(struct evbuffer *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			evbuffer_add_printf(b, "&amp;");
			break;
		case '<':
			evbuffer_add_printf(b, "&lt;");
			break;
		case '>':
			evbuffer_add_printf(b, "&gt;");
			break;
		case '"':
			evbuffer_add_printf(b, "&quot;");
			break;
		default:
			evbuffer_add(b, s, 1);
		}
	}
}

/* <tag>text</tag> */
void
xml_elem(struct evbuffer *b, const char *tag, const char *text)
{
	evbuffer_add_printf(b, "<%s>", tag);
	xml_text(b, text);
	evbuffer_add_printf(b, "</%s>", tag);
}

/* Appends s as one quoted CSV field (RFC 4180), then sep ("," or "\r\n"). */
void
csv_field(struct evbuffer *b, const char *s, const char *sep)
{
	evbuffer_add(b, "\"", 1);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			evbuffer_add(b, "\"\"", 2);
		else
			evbuffer_add(b, s, 1);
	}
	evbuffer_add(b, "\"", 1);
	evbuffer_add(b, sep, strlen(sep));
}

/*
 * psb: the household register (户口簿) as the public security bureau's
 * register exports it: one fixed-width GBK record per member of the
 * subject's household, each ended by CRLF.  Byte layout:
 *
 *     0 12 household number        12 18 resident id        30 30 name
 *    60  1 sex (1, 2)              61  8 birth, YYYYMMDD    69 10 ethnicity
 *    79  2 relation to the head of household (GB/T 4761: 02 head, 10 spouse,
 *          20 son, 30 daughter)
 *    81 18 father's id            99 18 mother's id        117  8 registered, YYYYMMDD
 *   125 100 address               225 60 registering police station
 *
 * Parents' records leave the father's and mother's ids blank.
 */
static void
psb_household_registers(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	struct person	*pe;
	struct family	*fa;
	json_t		*hh, *m;
	const char	*role, *rel, *fid, *mid;
	char		 birth[16], reg[16];
	size_t		 i;
	int		 bad = 0, parent;

	if ((pe = query_person(sim, q, rp, "household register")) == NULL)
		return;
	fa = pe->pe_family;
	hh = json_object_get(fa->fa_json, "household");
	json_array_foreach(json_object_get(fa->fa_json, "members"), i, m) {
		role = json_string_value(json_object_get(m, "role"));
		parent = is_parent(m);
		if (strcmp(role, "father") == 0)
			rel = "02";
		else if (strcmp(role, "mother") == 0)
			rel = "10";
		else
			rel = strcmp(need(m, "sex", &bad), "1") == 0 ? "20" : "30";
		fid = parent ? "" : need(fa->fa_father, "id", &bad);
		mid = parent ? "" : need(fa->fa_mother, "id", &bad);
		need_date(m, "birth_date", "", birth, sizeof(birth), &bad);
		need_date(json_object_get(m, "registered") != NULL ? m : hh, "registered", "",
		    reg, sizeof(reg), &bad);
		if (fixed_put(rp->rp_body, need(hh, "number", &bad), 12) != 0 ||
		    fixed_put(rp->rp_body, need(m, "id", &bad), 18) != 0 ||
		    fixed_put(rp->rp_body, need(m, "name", &bad), 30) != 0 ||
		    fixed_put(rp->rp_body, need(m, "sex", &bad), 1) != 0 ||
		    fixed_put(rp->rp_body, birth, 8) != 0 ||
		    fixed_put(rp->rp_body, need(m, "ethnicity", &bad), 10) != 0 ||
		    fixed_put(rp->rp_body, rel, 2) != 0 ||
		    fixed_put(rp->rp_body, fid, 18) != 0 ||
		    fixed_put(rp->rp_body, mid, 18) != 0 ||
		    fixed_put(rp->rp_body, reg, 8) != 0 ||
		    fixed_put(rp->rp_body, need(hh, "address", &bad), 100) != 0 ||
		    fixed_put(rp->rp_body, need(hh, "authority", &bad), 60) != 0 ||
		    evbuffer_add(rp->rp_body, "\r\n", 2) != 0)
			bad = 1;
	}
	if (bad) {
		reply_bad_data(rp);
		return;
	}
	reply_ok(rp, "text/plain; charset=GBK");
}

/*
 * psb: the resident identity card (居民身份证) record, XML without
 * namespaces; dates YYYYMMDD, Gender 1 or 2.  Only adults have a card in
 * the data file.
 */
static void
psb_id_cards(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	struct person	*pe;
	json_t		*m, *card, *hh;
	struct evbuffer	*b = rp->rp_body;
	char		 birth[16], from[16], to[16];
	int		 bad = 0;

	if ((pe = query_person(sim, q, rp, "identity card")) == NULL)
		return;
	m = pe->pe_json;
	hh = json_object_get(pe->pe_family->fa_json, "household");
	if ((card = json_object_get(m, "id_card")) == NULL) {
		reply_none(rp, "identity card");
		return;
	}
	evbuffer_add_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<IdCardInfo version=\"2.0\">");
	xml_elem(b, "Name", need(m, "name", &bad));
	xml_elem(b, "Gender", need(m, "sex", &bad));
	xml_elem(b, "Nation", need(m, "ethnicity", &bad));
	xml_elem(b, "BirthDate", need_date(m, "birth_date", "", birth, sizeof(birth), &bad));
	xml_elem(b, "Address", need(hh, "address", &bad));
	xml_elem(b, "IdNumber", need(m, "id", &bad));
	xml_elem(b, "IssuingAuthority", need(card, "authority", &bad));
	xml_elem(b, "ValidFrom", need_date(card, "issued", "", from, sizeof(from), &bad));
	xml_elem(b, "ValidTo", need_date(card, "valid_until", "", to, sizeof(to), &bad));
	evbuffer_add_printf(b, "</IdCardInfo>\n");
	if (bad) {
		reply_bad_data(rp);
		return;
	}
	reply_ok(rp, "application/xml; charset=utf-8");
}

/*
 * nhc: the birth medical certificate (出生医学证明) of a child, looked up by
 * the child's resident id number.  Dates are native: birth_date YYYYMMDD,
 * issue_date YYYY/MM/DD; sex "1" male, "2" female.
 */
static void
nhc_birth_medical_certificates(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	struct person	*pe;
	json_t		*child, *bmc, *father, *mother;
	char		 birth[16], issued[16];

	if ((pe = query_person(sim, q, rp, "birth medical certificate")) == NULL)
		return;
	if ((bmc = json_object_get(pe->pe_json, "birth_medical_certificate")) == NULL) {
		reply_none(rp, "birth medical certificate");
		return;
	}
	child = pe->pe_json;
	father = pe->pe_family->fa_father;
	mother = pe->pe_family->fa_mother;
	/* The data file was validated at load: every field used here exists. */
	if (date_format(json_string_value(json_object_get(child, "birth_date")), birth,
	    sizeof(birth), "") != 0 ||
	    date_format(json_string_value(json_object_get(bmc, "issue_date")), issued,
	    sizeof(issued), "/") != 0) {
		reply_bad_data(rp);
		return;
	}
	reply_json(rp, 200, json_pack(
	    "{s:i, s:{s:O, s:{s:O, s:O, s:s, s:O, s:O, s:O}, s:{s:O, s:O}, s:{s:O, s:O},"
	    " s:O, s:O, s:s}}",
	    "code", 0, "data",
	    "cert_no", json_object_get(bmc, "cert_no"),
	    "baby",
	    "name", json_object_get(child, "name"),
	    "sex", json_object_get(child, "sex"),
	    "birth_date", birth,
	    "birth_time", json_object_get(bmc, "birth_time"),
	    "weight_g", json_object_get(bmc, "weight_g"),
	    "id", json_object_get(child, "id"),
	    "mother",
	    "name", json_object_get(mother, "name"),
	    "id", json_object_get(mother, "id"),
	    "father",
	    "name", json_object_get(father, "name"),
	    "id", json_object_get(father, "id"),
	    "hospital", json_object_get(bmc, "hospital"),
	    "birthplace", json_object_get(bmc, "birthplace"),
	    "issue_date", issued));
}

#define MCA_NS		"urn:cn:gov:mca:marriage:2"
#define MCA_PERSON_NS	"urn:cn:gov:mca:person:1"

static void
mca_party(struct evbuffer *b, const char *tag, json_t *m, int *bad)
{
	evbuffer_add_printf(b, "<m:%s>", tag);
	xml_elem(b, "p:Name", need(m, "name", bad));
	xml_elem(b, "p:Gender", need(m, "sex", bad));
	xml_elem(b, "p:IdNo", need(m, "id", bad));
	evbuffer_add_printf(b, "</m:%s>", tag);
}

/*
 * mca: the marriage registration (结婚证), XML in two namespaces.  Each
 * spouse holds their own copy, so the answer is the copy of the person
 * asked about: Holder is that person, Spouse the other.  Dates are
 * YYYY年MM月DD日, Kind "J" is a marriage (结婚) registration.
 */
static void
mca_marriage_registrations(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	struct person	*pe;
	json_t		*mar, *spouse;
	struct evbuffer	*b = rp->rp_body;
	char		 date[32];
	int		 bad = 0;

	if ((pe = query_person(sim, q, rp, "marriage registration")) == NULL)
		return;
	mar = json_object_get(pe->pe_family->fa_json, "marriage");
	if (mar == NULL || !is_parent(pe->pe_json)) {
		reply_none(rp, "marriage registration");
		return;
	}
	spouse = pe->pe_json == pe->pe_family->fa_father ? pe->pe_family->fa_mother :
	    pe->pe_family->fa_father;
	evbuffer_add_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<m:MarriageRegistration xmlns:m=\"" MCA_NS "\" xmlns:p=\"" MCA_PERSON_NS "\">"
	    "<m:Certificate>");
	xml_elem(b, "m:CertNo", need(mar, "cert_no", &bad));
	xml_elem(b, "m:Kind", "J");
	xml_elem(b, "m:RegDate", need_date_cn(mar, "date", date, sizeof(date), &bad));
	xml_elem(b, "m:Registry", need(mar, "registry", &bad));
	mca_party(b, "Holder", pe->pe_json, &bad);
	mca_party(b, "Spouse", spouse, &bad);
	evbuffer_add_printf(b, "</m:Certificate></m:MarriageRegistration>\n");
	if (bad) {
		reply_bad_data(rp);
		return;
	}
	reply_ok(rp, "application/xml; charset=utf-8");
}

/*
 * cdc: vaccination records (预防接种证) of the children of the subject's
 * family, a UTF-8 CSV file with a header row, every field quoted, CRLF.
 * The dose list is one field that holds commas; the remark holds quotes.
 */
static void
cdc_vaccination_records(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	struct person	*pe;
	json_t		*m, *card, *v;
	struct evbuffer	*b = rp->rp_body, *doses = NULL;
	char		 birth[16], issued[16], last[16], n[16], *list = NULL;
	const char	*vname;
	size_t		 i, j, len;
	json_int_t	 dose;
	int		 bad = 0;

	if ((pe = query_person(sim, q, rp, "vaccination record")) == NULL)
		return;
	if (json_object_get(pe->pe_json, "vaccination_card") == NULL) {
		reply_none(rp, "vaccination record");
		return;
	}
	if ((doses = evbuffer_new()) == NULL) {
		reply_error(rp, 500, "out of memory");
		return;
	}
	evbuffer_add_printf(b, "\"受种者身份证号\",\"受种者姓名\",\"性别\",\"出生日期\","
	    "\"接种证编号\",\"建证单位\",\"建证日期\",\"接种记录\",\"剂次数\","
	    "\"末次接种日期\",\"备注\"\r\n");
	json_array_foreach(json_object_get(pe->pe_family->fa_json, "members"), i, m) {
		if ((card = json_object_get(m, "vaccination_card")) == NULL)
			continue;
		evbuffer_drain(doses, evbuffer_get_length(doses));
		last[0] = '\0';
		json_array_foreach(json_object_get(m, "vaccinations"), j, v) {
			vname = need(v, "vaccine", &bad);
			dose = json_integer_value(json_object_get(v, "dose"));
			need_date(v, "date", "-", last, sizeof(last), &bad);
			if (dose < 1 || dose > 9)
				bad = 1;
			evbuffer_add_printf(doses, "%s%s 第%d剂 %s", j > 0 ? ", " : "", vname,
			    (int)dose, last);
		}
		if (json_array_size(json_object_get(m, "vaccinations")) == 0)
			bad = 1;
		len = evbuffer_get_length(doses);
		free(list);
		if ((list = malloc(len + 1)) == NULL) {
			bad = 1;
			break;
		}
		evbuffer_copyout(doses, list, len);
		list[len] = '\0';
		snprintf(n, sizeof(n), "%zu", json_array_size(json_object_get(m, "vaccinations")));
		csv_field(b, need(m, "id", &bad), ",");
		csv_field(b, need(m, "name", &bad), ",");
		csv_field(b, need(m, "sex", &bad), ",");
		csv_field(b, need_date(m, "birth_date", "-", birth, sizeof(birth), &bad), ",");
		csv_field(b, need(card, "cert_no", &bad), ",");
		csv_field(b, need(card, "clinic", &bad), ",");
		csv_field(b, need_date(card, "issued", "/", issued, sizeof(issued), &bad), ",");
		csv_field(b, list, ",");
		csv_field(b, n, ",");
		csv_field(b, last, ",");
		csv_field(b, "按\"国家免疫规划\"程序接种", "\r\n");
	}
	free(list);
	evbuffer_free(doses);
	if (bad) {
		reply_bad_data(rp);
		return;
	}
	reply_ok(rp, "text/csv; charset=utf-8");
}

static void
mp_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/*
 * nhsa: the insured person query of the medical security information
 * platform (人员信息获取), answered in msgpack with the platform's field
 * names: baseinfo (gend 1/2, brdy YYYY-MM-DD) and one insuinfo entry
 * (insutype 310 employees' basic, 390 residents' basic; psn_insu_stas 1
 * insured; psn_insu_date an integer YYYYMMDD).
 */
static void
nhsa_insured_persons(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	struct person	*pe;
	json_t		*m, *offices;
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	char		 since[16];
	int		 bad = 0, parent;

	if ((pe = query_person(sim, q, rp, "insured person")) == NULL)
		return;
	m = pe->pe_json;
	offices = json_object_get(pe->pe_family->fa_json, "offices");
	parent = is_parent(m);
	need_date(m, "insured_since", "", since, sizeof(since), &bad);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	mp_str(&pk, "infcode");
	msgpack_pack_int(&pk, 0);
	mp_str(&pk, "err_msg");
	mp_str(&pk, "");
	mp_str(&pk, "output");
	msgpack_pack_map(&pk, 2);
	mp_str(&pk, "baseinfo");
	msgpack_pack_map(&pk, 7);
	mp_str(&pk, "psn_no");
	mp_str(&pk, need(m, "medical_insurance_no", &bad));
	mp_str(&pk, "psn_cert_type");
	mp_str(&pk, "01");
	mp_str(&pk, "certno");
	mp_str(&pk, need(m, "id", &bad));
	mp_str(&pk, "psn_name");
	mp_str(&pk, need(m, "name", &bad));
	mp_str(&pk, "gend");
	mp_str(&pk, need(m, "sex", &bad));
	mp_str(&pk, "naty");
	mp_str(&pk, need(m, "ethnicity", &bad));
	mp_str(&pk, "brdy");
	mp_str(&pk, need(m, "birth_date", &bad));
	mp_str(&pk, "insuinfo");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, parent ? 6 : 5);
	mp_str(&pk, "insutype");
	mp_str(&pk, parent ? "310" : "390");
	mp_str(&pk, "psn_insu_stas");
	mp_str(&pk, "1");
	mp_str(&pk, "psn_insu_date");
	msgpack_pack_int64(&pk, strtoll(since, NULL, 10));
	mp_str(&pk, "insuplc_admdvs");
	mp_str(&pk, need(pe->pe_family->fa_json, "region", &bad));
	mp_str(&pk, "insu_org");
	mp_str(&pk, need(offices, "nhsa", &bad));
	if (parent) {
		mp_str(&pk, "emp_name");
		mp_str(&pk, need(m, "employer", &bad));
	}
	if (bad || evbuffer_add(rp->rp_body, sb.data, sb.size) != 0)
		reply_bad_data(rp);
	else
		reply_ok(rp, "application/msgpack");
	msgpack_sbuffer_destroy(&sb);
}

/*
 * hrss: the social security card (社会保障卡) service, JSON with the
 * ministry's data element codes: aac002 id, aac003 name, aac004 sex (1/2),
 * aac006 birth (YYYYMMDD); issueDate YYYY年MM月DD日, validDate YYYYMMDD,
 * cardStatus 1 in use.
 */
static void
hrss_social_security_cards(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	struct person	*pe;
	json_t		*m, *card, *offices;
	char		 birth[16], issued[32], valid[16];
	int		 bad = 0;

	if ((pe = query_person(sim, q, rp, "social security card")) == NULL)
		return;
	m = pe->pe_json;
	if ((card = json_object_get(m, "ss_card")) == NULL) {
		reply_none(rp, "social security card");
		return;
	}
	offices = json_object_get(pe->pe_family->fa_json, "offices");
	need_date(m, "birth_date", "", birth, sizeof(birth), &bad);
	need_date_cn(card, "issued", issued, sizeof(issued), &bad);
	need_date(card, "valid_until", "", valid, sizeof(valid), &bad);
	if (bad) {
		reply_bad_data(rp);
		return;
	}
	reply_json(rp, 200, json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
	    " s:s, s:s, s:s}}",
	    "resultCode", "0000", "resultMsg", "成功", "body",
	    "aac002", need(m, "id", &bad),
	    "aac003", need(m, "name", &bad),
	    "aac004", need(m, "sex", &bad),
	    "aac006", birth,
	    "aaz500", need(card, "card_no", &bad),
	    "cardVersion", "3",
	    "cardStatus", "1",
	    "bankName", need(card, "bank", &bad),
	    "issueDate", issued,
	    "validDate", valid,
	    "orgName", need(offices, "hrss", &bad)));
	if (bad)
		reply_bad_data(rp);
}

/*
 * mnr: the real estate title certificate (不动产权证书), XML with the
 * register's pinyin-initial element names (ZSH certificate number, DJJG
 * registry, DJSJ registered YYYY年MM月DD日, ZL location, MJ area in m², YT
 * use, XQ the school zone (学区) the address lies in, GYFS form of
 * co-ownership, QLR right holders with QLRMC name and ZJH id).  Both
 * parents hold the title jointly.
 */
static void
mnr_property_certificates(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	struct person	*pe;
	json_t		*pr, *owners[2];
	struct evbuffer	*b = rp->rp_body;
	char		 date[32];
	int		 bad = 0;

	if ((pe = query_person(sim, q, rp, "property certificate")) == NULL)
		return;
	pr = json_object_get(pe->pe_family->fa_json, "property");
	if (pr == NULL || !is_parent(pe->pe_json)) {
		reply_none(rp, "property certificate");
		return;
	}
	owners[0] = pe->pe_family->fa_father;
	owners[1] = pe->pe_family->fa_mother;
	evbuffer_add_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BDCQZ>");
	xml_elem(b, "ZSH", need(pr, "cert_no", &bad));
	xml_elem(b, "DJJG", need(pr, "registry", &bad));
	xml_elem(b, "DJSJ", need_date_cn(pr, "registered", date, sizeof(date), &bad));
	xml_elem(b, "ZL", need(pr, "address", &bad));
	xml_elem(b, "MJ", need(pr, "area_m2", &bad));
	xml_elem(b, "YT", need(pr, "use", &bad));
	xml_elem(b, "XQ", need(pr, "school_zone", &bad));
	xml_elem(b, "GYFS", "共同共有");
	evbuffer_add_printf(b, "<QLRLIST>");
	for (size_t i = 0; i < nitems(owners); i++) {
		evbuffer_add_printf(b, "<QLR>");
		xml_elem(b, "QLRMC", need(owners[i], "name", &bad));
		xml_elem(b, "ZJZL", "1");
		xml_elem(b, "ZJH", need(owners[i], "id", &bad));
		evbuffer_add_printf(b, "</QLR>");
	}
	evbuffer_add_printf(b, "</QLRLIST></BDCQZ>\n");
	if (bad) {
		reply_bad_data(rp);
		return;
	}
	reply_ok(rp, "application/xml; charset=utf-8");
}

/*
 * mohurd: housing rental registrations (房屋租赁登记备案), a GBK CSV file,
 * one row per registered tenant (both parents), quoting only where needed.
 * Lease dates are YYYYMMDD, the registration date YYYY/MM/DD.
 */
static void
mohurd_rental_registrations(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	struct person	*pe;
	json_t		*rt, *tenants[2];
	struct evbuffer	*b = NULL;
	char		 start[16], end[16], reg[16];
	int		 bad = 0;

	if ((pe = query_person(sim, q, rp, "rental registration")) == NULL)
		return;
	rt = json_object_get(pe->pe_family->fa_json, "rental");
	if (rt == NULL || !is_parent(pe->pe_json)) {
		reply_none(rp, "rental registration");
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		reply_error(rp, 500, "out of memory");
		return;
	}
	tenants[0] = pe->pe_family->fa_father;
	tenants[1] = pe->pe_family->fa_mother;
	need_date(rt, "start", "", start, sizeof(start), &bad);
	need_date(rt, "end", "", end, sizeof(end), &bad);
	need_date(rt, "registered", "/", reg, sizeof(reg), &bad);
	evbuffer_add_printf(b, "备案证明编号,承租人姓名,承租人证件号码,出租人,房屋坐落,"
	    "租赁起始日期,租赁截止日期,备案日期,备案机关\r\n");
	for (size_t i = 0; i < nitems(tenants); i++) {
		const char	*row[] = { need(rt, "reg_no", &bad), need(tenants[i], "name", &bad),
		    need(tenants[i], "id", &bad), need(rt, "landlord", &bad),
		    need(rt, "address", &bad), start, end, reg, need(rt, "office", &bad) };

		for (size_t j = 0; j < nitems(row); j++) {
			/* Unquoted: a text with a delimiter or quote would break the row. */
			if (strpbrk(row[j], ",\"\r\n") != NULL)
				bad = 1;
			evbuffer_add_printf(b, "%s%s", row[j], j + 1 < nitems(row) ? "," : "\r\n");
		}
	}
	reply_enc(rp, b, bad, "GBK", "text/csv; charset=GBK");
	evbuffer_free(b);
}

/*
 * edu: the school place notice (入学通知) of a school-age child, JSON;
 * gender is written out (男, 女), the notice date is YYYY-MM-DD.
 */
static void
edu_school_places(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	struct person	*pe;
	json_t		*m, *sc, *fam, *offices;
	json_int_t	 year;
	char		 no[64], date[16];
	int		 bad = 0;

	if ((pe = query_person(sim, q, rp, "school place")) == NULL)
		return;
	m = pe->pe_json;
	fam = pe->pe_family->fa_json;
	offices = json_object_get(fam, "offices");
	if ((sc = json_object_get(m, "school")) == NULL) {
		reply_none(rp, "school place");
		return;
	}
	year = json_integer_value(json_object_get(sc, "enroll_year"));
	if (year < 2000 || year > 2100)
		bad = 1;
	/* Every id of the data file is a checked 18-character resident id. */
	snprintf(no, sizeof(no), "RX%s%04d%.3s", need(fam, "region", &bad), (int)year,
	    pe->pe_id + 14);
	snprintf(date, sizeof(date), "%04d-06-30", (int)year);
	reply_json(rp, 200, json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:O, s:O, s:O,"
	    " s:I, s:s}}",
	    "status", "success", "data",
	    "notice_no", no,
	    "student_id_no", need(m, "id", &bad),
	    "student_name", need(m, "name", &bad),
	    "gender", strcmp(need(m, "sex", &bad), "1") == 0 ? "男" : "女",
	    "bureau", need(offices, "edu", &bad),
	    "stage", json_object_get(sc, "stage"),
	    "district", json_object_get(sc, "district"),
	    "assigned_school", json_object_get(sc, "assigned"),
	    "enroll_year", year,
	    "notice_date", date));
	if (bad)
		reply_bad_data(rp);
}

/*
 * libevent delivers signals through the loop, so this runs as an ordinary
 * callback and may do anything.
 */
static void
sim_signal(evutil_socket_t sig, short what, void *arg)
{
	struct sim	*sim = arg;

	(void)sig;
	(void)what;
	event_base_loopexit(sim->sm_base, NULL);
}

/*
 * An answer leaves in several TLS records (headers, body); without
 * TCP_NODELAY the last one can wait for the client's delayed ACK.
 */
static void
sim_tls_info_cb(const SSL *ssl, int where, int ret)
{
	int	fd, on = 1;

	(void)ret;
	if ((where & SSL_CB_HANDSHAKE_START) && (fd = SSL_get_fd(ssl)) >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

/*
 * The server side of department TLS: TLS 1.2 or later, and a client
 * certificate issued by ca is required; any other client fails the
 * handshake.
 */
static SSL_CTX *
sim_tls(const char *cert, const char *key, const char *ca, char *err, size_t errlen)
{
	static const unsigned char	 sid_ctx[] = "deptsim";
	SSL_CTX				*ctx;
	STACK_OF(X509_NAME)		*cas;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot create a TLS context");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, errlen, "%s: not a PEM certificate", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "%s: not the PEM private key of the certificate", key);
		goto fail;
	}
	if (SSL_CTX_load_verify_file(ctx, ca) != 1 ||
	    (cas = SSL_load_client_CA_file(ca)) == NULL) {
		snprintf(err, errlen, "%s: not a PEM CA certificate", ca);
		goto fail;
	}
	SSL_CTX_set_client_CA_list(ctx, cas);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_info_callback(ctx, sim_tls_info_cb);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	ERR_clear_error();
	return ctx;
fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

static struct bufferevent *
sim_bevcb(struct event_base *base, void *arg)
{
	struct sim		*sim = arg;
	struct bufferevent	*bev;
	SSL			*ssl;

	if ((ssl = SSL_new(sim->sm_tls)) == NULL)
		return NULL;
	/* The bufferevent owns ssl from here, even when it fails. */
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/*
 * --verbose: the client's address, over TLS its certificate's CN, the
 * request, its Host header and, over TLS, the server name the client sent
 * (SNI; "-" when none).
 */
static void
sim_log(struct sim *sim, struct evhttp_request *req)
{
	struct evhttp_connection	*conn = evhttp_request_get_connection(req);
	struct bufferevent		*bev;
	SSL				*ssl = NULL;
	X509				*peer;
	char				*addr = NULL, cn[256] = "-";
	const char			*host, *sni = NULL;
	ev_uint16_t			 port = 0;

	if (conn == NULL)
		return;
	evhttp_connection_get_peer(conn, &addr, &port);
	if (sim->sm_tls != NULL && (bev = evhttp_connection_get_bufferevent(conn)) != NULL)
		ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl != NULL && (peer = SSL_get0_peer_certificate(ssl)) != NULL &&
	    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn,
	    sizeof(cn)) < 0)
		snprintf(cn, sizeof(cn), "?");
	if (ssl != NULL)
		sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
	fprintf(stderr, "deptsim: %s:%u CN=%s %s Host=%s SNI=%s\n", addr != NULL ? addr : "?",
	    (unsigned)port, cn, evhttp_request_get_uri(req), host != NULL ? host : "-",
	    sni != NULL ? sni : "-");
	fflush(stderr);
}

/* HOST:PORT or [HOST]:PORT. */
static int
parse_listen(const char *arg, char *host, size_t hostsz, unsigned short *port)
{
	const char	*colon = strrchr(arg, ':');
	const char	*h = arg;
	size_t		 hlen;
	char		*end;
	long		 p;

	if (colon == NULL || colon == arg)
		return -1;
	hlen = (size_t)(colon - arg);
	if (arg[0] == '[') {
		if (hlen < 3 || arg[hlen - 1] != ']')
			return -1;
		h = arg + 1;
		hlen -= 2;
	}
	if (hlen >= hostsz)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 0 || p > 65535)
		return -1;
	*port = (unsigned short)p;
	return 0;
}

/* DEPT=MS */
static int
parse_delay(const char *arg)
{
	const char	*eq = strchr(arg, '=');
	struct dept	*dp;
	char		*end;
	long		 ms;

	if (eq == NULL || (dp = dept_find(arg, (size_t)(eq - arg))) == NULL)
		return -1;
	errno = 0;
	ms = strtol(eq + 1, &end, 10);
	if (eq[1] == '\0' || *end != '\0' || errno != 0 || ms < 0 || ms > SIM_DELAY_MAX_MS)
		return -1;
	dp->dp_delay_ms = (unsigned)ms;
	return 0;
}

/* Prints the address actually bound, which tells a harness the port 0 chose. */
static int
announce(struct evhttp_bound_socket *bound)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	char			 host[NI_MAXHOST], serv[NI_MAXSERV];
	evutil_socket_t		 fd = evhttp_bound_socket_get_fd(bound);

	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1 ||
	    getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host), serv,
	    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		fprintf(stderr, "listening on [%s]:%s\n", host, serv);
	else
		fprintf(stderr, "listening on %s:%s\n", host, serv);
	fflush(stderr);
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option	 opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "data", required_argument, NULL, 'd' },
		{ "delay", required_argument, NULL, 'w' },
		{ "down", required_argument, NULL, 'x' },
		{ "garbage", required_argument, NULL, 'g' },
		{ "wrong-holder", required_argument, NULL, 'o' },
		{ "tls", required_argument, NULL, 't' },
		{ "tls-dir", required_argument, NULL, 'T' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct sim			 sim;
	struct evhttp_bound_socket	*bound;
	struct event			*sigterm = NULL, *sigint = NULL;
	struct pending			*pd;
	struct dept			*dp;
	const char			*listen_args[SIM_LISTEN_MAX];
	const char			*data_path = sim_default_data();
	const char			*tls_cert = NULL, *tls_key = NULL, *tls_ca = NULL;
	char				 host[256], err[PATH_MAX + 128];
	char				 dcert[PATH_MAX], dkey[PATH_MAX], dca[PATH_MAX];
	char				*end;
	long				 idle = SIM_TIMEOUT_S;
	unsigned short			 port;
	size_t				 nlisten = 0, i;
	int				 ch, ret = 1;

	memset(&sim, 0, sizeof(sim));
	TAILQ_INIT(&sim.sm_pending);
	/* "+": no permutation, so --tls can take the two arguments after its own. */
	while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			if (nlisten == SIM_LISTEN_MAX) {
				fprintf(stderr, "deptsim: at most %d --listen addresses\n",
				    SIM_LISTEN_MAX);
				return 2;
			}
			listen_args[nlisten++] = optarg;
			break;
		case 'd':
			data_path = optarg;
			break;
		case 'w':
			if (parse_delay(optarg) != 0) {
				fprintf(stderr, "deptsim: --delay %s: want DEPT=MS with a known "
				    "department and 0 <= MS <= %d\n", optarg, SIM_DELAY_MAX_MS);
				return 2;
			}
			break;
		case 'x':
			if ((dp = dept_find(optarg, strlen(optarg))) == NULL) {
				fprintf(stderr, "deptsim: --down %s: unknown department\n", optarg);
				return 2;
			}
			dp->dp_down = 1;
			break;
		case 'g':
		case 'o':
			if ((dp = dept_find(optarg, strlen(optarg))) == NULL) {
				fprintf(stderr, "deptsim: --%s %s: unknown department\n",
				    ch == 'g' ? "garbage" : "wrong-holder", optarg);
				return 2;
			}
			if (ch == 'g')
				dp->dp_garbage = 1;
			else
				dp->dp_wrong_holder = 1;
			break;
		case 't':
			if (optind + 1 >= argc) {
				fprintf(stderr, "deptsim: --tls wants CERT KEY CA\n");
				return 2;
			}
			tls_cert = optarg;
			tls_key = argv[optind];
			tls_ca = argv[optind + 1];
			optind += 2;
			break;
		case 'T':
			if ((size_t)snprintf(dcert, sizeof(dcert), "%s/departments/server.pem",
			    optarg) >= sizeof(dcert) ||
			    (size_t)snprintf(dkey, sizeof(dkey), "%s/departments/server.key",
			    optarg) >= sizeof(dkey) ||
			    (size_t)snprintf(dca, sizeof(dca), "%s/client-ca.pem",
			    optarg) >= sizeof(dca)) {
				fprintf(stderr, "deptsim: --tls-dir: path too long\n");
				return 2;
			}
			tls_cert = dcert;
			tls_key = dkey;
			tls_ca = dca;
			break;
		case 'i':
			errno = 0;
			idle = strtol(optarg, &end, 10);
			if (optarg[0] == '\0' || *end != '\0' || errno != 0 || idle < 1 ||
			    idle > SIM_TIMEOUT_MAX_S) {
				fprintf(stderr, "deptsim: --idle-timeout %s: want 1 to %d seconds\n",
				    optarg, SIM_TIMEOUT_MAX_S);
				return 2;
			}
			break;
		case 'v':
			sim.sm_verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("deptsim %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (nlisten == 0)
		listen_args[nlisten++] = SIM_DEFAULT_LISTEN;
	for (i = 0; i < nlisten; i++)
		if (parse_listen(listen_args[i], host, sizeof(host), &port) != 0) {
			fprintf(stderr, "deptsim: --listen %s: want HOST:PORT\n", listen_args[i]);
			return 2;
		}
	if (data_load(&sim, data_path, err, sizeof(err)) != 0) {
		fprintf(stderr, "deptsim: %s\n", err);
		return 1;
	}
	if (data_selftest(&sim, err, sizeof(err)) != 0) {
		fprintf(stderr, "deptsim: %s: %s\n", data_path, err);
		data_free(&sim);
		return 1;
	}
	/* A client that goes away must not kill the simulator. */
	signal(SIGPIPE, SIG_IGN);
	if (tls_cert != NULL &&
	    (sim.sm_tls = sim_tls(tls_cert, tls_key, tls_ca, err, sizeof(err))) == NULL) {
		fprintf(stderr, "deptsim: %s\n", err);
		data_free(&sim);
		return 1;
	}

	if ((sim.sm_base = event_base_new()) == NULL ||
	    (sim.sm_http = evhttp_new(sim.sm_base)) == NULL ||
	    (sigterm = evsignal_new(sim.sm_base, SIGTERM, sim_signal, &sim)) == NULL ||
	    (sigint = evsignal_new(sim.sm_base, SIGINT, sim_signal, &sim)) == NULL ||
	    event_add(sigterm, NULL) != 0 || event_add(sigint, NULL) != 0) {
		fprintf(stderr, "deptsim: cannot set up the event loop\n");
		goto done;
	}
	evhttp_set_max_headers_size(sim.sm_http, SIM_HEADERS_MAX);
	evhttp_set_max_body_size(sim.sm_http, SIM_BODY_MAX);
	evhttp_set_timeout(sim.sm_http, (int)idle);
	if (sim.sm_tls != NULL) {
		evhttp_set_bevcb(sim.sm_http, sim_bevcb, &sim);
		fprintf(stderr, "deptsim: HTTPS; clients need a certificate from %s\n", tls_ca);
	}
	evhttp_set_allowed_methods(sim.sm_http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_gencb(sim.sm_http, sim_request, &sim);
	/* Every address serves every department, in the order given. */
	for (i = 0; i < nlisten; i++) {
		parse_listen(listen_args[i], host, sizeof(host), &port);
		if ((bound = evhttp_bind_socket_with_handle(sim.sm_http, host, port)) == NULL) {
			fprintf(stderr, "deptsim: cannot listen on %s: %s\n", listen_args[i],
			    strerror(errno));
			goto done;
		}
		if (announce(bound) != 0) {
			fprintf(stderr, "deptsim: cannot read the bound address\n");
			goto done;
		}
	}
	if (event_base_dispatch(sim.sm_base) == -1) {
		fprintf(stderr, "deptsim: event loop failed\n");
		goto done;
	}
	ret = 0;
done:
	/*
	 * Answer what is still delayed so that every request is released:
	 * detached ones are freed by evhttp_send_reply, the others with their
	 * connections by evhttp_free.
	 */
	while ((pd = TAILQ_FIRST(&sim.sm_pending)) != NULL)
		pending_fire(-1, 0, pd);
	if (sim.sm_http != NULL)
		evhttp_free(sim.sm_http);
	if (sigterm != NULL)
		event_free(sigterm);
	if (sigint != NULL)
		event_free(sigint);
	if (sim.sm_base != NULL)
		event_base_free(sim.sm_base);
	SSL_CTX_free(sim.sm_tls);
	data_free(&sim);
	return ret;
}
