/*
 * deptsim.c - the department simulator.
 *
 * Serves synthetic, deterministic records of the demo families (one JSON data
 * file) over plain HTTP on loopback, each department in its own native shape,
 * so that the gateway's adapters, the demo and the integration tests have real
 * sources to talk to.  Departments can be slowed down (--delay) or taken down
 * (--down), and /_stats counts what reached each department, which lets a test
 * prove that a refused exchange never left the gateway.
 *
 * Departments are a table: each has an id (the first path segment) and a
 * table of routes, one handler per route.  A new department or data set is
 * one handler and one table row.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include <jansson.h>

#ifdef LB_SRCDIR
#define SIM_DEFAULT_DATA	LB_SRCDIR "/adapters/data/families.json"
#else
#define SIM_DEFAULT_DATA	"adapters/data/families.json"
#endif
#define SIM_DEFAULT_LISTEN	"127.0.0.1:8701"

#define SIM_URI_MAX		2048		/* request target, bytes */
#define SIM_HEADERS_MAX		8192
#define SIM_BODY_MAX		4096		/* nothing we serve takes a body */
#define SIM_TIMEOUT_S		120		/* idle connections; above SIM_DELAY_MAX_MS */
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

/* An answer under construction; rp_body is owned by the reply. */
struct reply {
	int		 rp_status;
	const char	*rp_type;
	struct evbuffer	*rp_body;
};

struct sim;

struct route {
	const char	*ro_path;	/* below /DEPT, e.g. "/birth-medical-certificates" */
	enum evhttp_cmd_type ro_method;
	void		(*ro_handler)(struct sim *, const struct evkeyvalq *query,
			    struct reply *);
};

struct dept {
	const char		*dp_id;
	const struct route	*dp_routes;
	size_t			 dp_nroutes;
	unsigned		 dp_delay_ms;
	int			 dp_down;
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
};

static void	nhc_birth_medical_certificates(struct sim *, const struct evkeyvalq *,
		    struct reply *);

static const struct route nhc_routes[] = {
	{ "/birth-medical-certificates", EVHTTP_REQ_GET, nhc_birth_medical_certificates },
};

/*
 * Every department of the demo.  Those without routes answer 404 for now but
 * are counted, delayed and taken down like the others.
 */
static struct dept depts[] = {
	{ "psb", NULL, 0, 0, 0, 0 },
	{ "nhc", nhc_routes, nitems(nhc_routes), 0, 0, 0 },
	{ "mca", NULL, 0, 0, 0, 0 },
	{ "cdc", NULL, 0, 0, 0, 0 },
	{ "nhsa", NULL, 0, 0, 0, 0 },
	{ "hrss", NULL, 0, 0, 0, 0 },
	{ "mnr", NULL, 0, 0, 0, 0 },
	{ "mohurd", NULL, 0, 0, 0, 0 },
	{ "samr", NULL, 0, 0, 0, 0 },
	{ "edu", NULL, 0, 0, 0, 0 },
};

static void	usage(FILE *);
static struct dept *dept_find(const char *, size_t);
static int	resident_id_valid(const char *);
static int	date_valid(const char *);
static int	date_format(const char *, char *, size_t, const char *);
static int	text_ok(const char *);
static int	data_check_bmc(json_t *, const char *, char *, size_t);
static int	data_check_member(json_t *, char *, size_t);
static int	data_load(struct sim *, const char *, char *, size_t);
static void	data_free(struct sim *);
static struct person *person_find(struct sim *, const char *);
static int	reply_init(struct reply *);
static void	reply_free(struct reply *);
static void	reply_json(struct reply *, int, json_t *);
static void	reply_error(struct reply *, int, const char *);
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
static void	sim_signal(evutil_socket_t, short, void *);
static int	parse_listen(const char *, char *, size_t, unsigned short *);
static int	parse_delay(const char *);
static int	announce(struct evhttp_bound_socket *);

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: deptsim [--listen HOST:PORT] [--data FILE] [--delay DEPT=MS]...\n"
	    "               [--down DEPT]... [--help]\n"
	    "\n"
	    "Serves synthetic department data of the demo families over HTTP.\n"
	    "\n"
	    "  --listen HOST:PORT  address to listen on (default %s; port 0 picks one)\n"
	    "  --data FILE         families data file (default %s)\n"
	    "  --delay DEPT=MS     delay every answer of DEPT by MS milliseconds\n"
	    "  --down DEPT         DEPT answers 503 service unavailable\n"
	    "  --help              print this text\n"
	    "\n"
	    "Departments:", SIM_DEFAULT_LISTEN, SIM_DEFAULT_DATA);
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

/* GB 11643: 17 digits and a check character, 0-9 or X, over weights 2^(17-i) mod 11. */
static int
resident_id_valid(const char *id)
{
	static const int	 weight[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2 };
	static const char	 check[] = "10X98765432";
	int			 sum = 0;

	if (strlen(id) != SIM_ID_LEN)
		return 0;
	for (int i = 0; i < 17; i++) {
		if (id[i] < '0' || id[i] > '9')
			return 0;
		sum += (id[i] - '0') * weight[i];
	}
	return id[17] == check[sum % 11];
}

/* YYYY-MM-DD, a real calendar day. */
static int
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

static int
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
	if (!resident_id_valid(id)) {
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

static struct person *
person_find(struct sim *sim, const char *id)
{
	for (size_t i = 0; i < sim->sm_npeople; i++)
		if (strcmp(sim->sm_people[i].pe_id, id) == 0)
			return &sim->sm_people[i];
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
static void
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
static void
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

/* Routes a request below /DEPT; rest is the path after the department id. */
static void
dept_dispatch(struct sim *sim, struct dept *dp, struct evhttp_request *req,
    const char *rest, const char *query, struct reply *rp)
{
	struct evkeyvalq	 q;
	const struct route	*ro = NULL;

	dp->dp_served++;
	sim->sm_total++;
	if (dp->dp_down) {
		reply_error(rp, 503, "service unavailable");
		return;
	}
	for (size_t i = 0; i < dp->dp_nroutes; i++)
		if (strcmp(dp->dp_routes[i].ro_path, rest) == 0)
			ro = &dp->dp_routes[i];
	if (ro == NULL) {
		reply_error(rp, 404, "no such endpoint");
		return;
	}
	if (evhttp_request_get_command(req) != ro->ro_method) {
		reply_error(rp, 405, "method not allowed");
		return;
	}
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(query != NULL ? query : "", &q) != 0) {
		reply_error(rp, 400, "malformed query");
		return;
	}
	ro->ro_handler(sim, &q, rp);
	evhttp_clear_headers(&q);
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
 * nhc: the birth medical certificate (出生医学证明) of a child, looked up by
 * the child's resident id number.  Dates are native: birth_date YYYYMMDD,
 * issue_date YYYY/MM/DD; sex "1" male, "2" female.
 */
static void
nhc_birth_medical_certificates(struct sim *sim, const struct evkeyvalq *q, struct reply *rp)
{
	const char	*id = evhttp_find_header(q, "id");
	struct person	*pe;
	json_t		*child, *bmc, *father, *mother;
	char		 birth[16], issued[16];

	if (id == NULL || id[0] == '\0') {
		reply_error(rp, 400, "missing id");
		return;
	}
	if (!resident_id_valid(id)) {
		reply_error(rp, 400, "id is not a resident id number");
		return;
	}
	if ((pe = person_find(sim, id)) == NULL ||
	    (bmc = json_object_get(pe->pe_json, "birth_medical_certificate")) == NULL) {
		reply_error(rp, 404, "no birth medical certificate for this id");
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
		reply_error(rp, 500, "bad date in the data file");
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sim			 sim;
	struct evhttp_bound_socket	*bound;
	struct event			*sigterm = NULL, *sigint = NULL;
	struct pending			*pd;
	struct dept			*dp;
	const char			*listen_arg = SIM_DEFAULT_LISTEN;
	const char			*data_path = SIM_DEFAULT_DATA;
	char				 host[256], err[512];
	unsigned short			 port;
	int				 ch, ret = 1;

	memset(&sim, 0, sizeof(sim));
	TAILQ_INIT(&sim.sm_pending);
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			listen_arg = optarg;
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
		case 'h':
			usage(stdout);
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
	if (parse_listen(listen_arg, host, sizeof(host), &port) != 0) {
		fprintf(stderr, "deptsim: --listen %s: want HOST:PORT\n", listen_arg);
		return 2;
	}
	if (data_load(&sim, data_path, err, sizeof(err)) != 0) {
		fprintf(stderr, "deptsim: %s\n", err);
		return 1;
	}
	/* A client that goes away must not kill the simulator. */
	signal(SIGPIPE, SIG_IGN);

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
	evhttp_set_timeout(sim.sm_http, SIM_TIMEOUT_S);
	evhttp_set_allowed_methods(sim.sm_http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_gencb(sim.sm_http, sim_request, &sim);
	if ((bound = evhttp_bind_socket_with_handle(sim.sm_http, host, port)) == NULL) {
		fprintf(stderr, "deptsim: cannot listen on %s: %s\n", listen_arg,
		    strerror(errno));
		goto done;
	}
	if (announce(bound) != 0) {
		fprintf(stderr, "deptsim: cannot read the bound address\n");
		goto done;
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
	data_free(&sim);
	return ret;
}
