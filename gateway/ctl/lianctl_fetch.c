/*
 * lianctl_fetch.c - fetch: certificates for one or more citizens in one
 * exchange (POST /v1/exchanges; consumer role), printed as JSON and saved
 * for "lianctl seal verify"; with --predicates, a verification instead
 * (POST /v1/verifications): sealed yes/no attestations, no certificate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lianban.h"
#include "lianctl.h"

/* One subject of the exchange: --subject, --items (or --predicates) and --consent. */
struct fetch_group {
	const char	*fg_subject;
	const char	*fg_items;
	const char	*fg_predicates;	/* a JSON list of predicates */
	const char	*fg_consent;	/* as given: a token, @FILE or @- */
	uint8_t		*fg_file;	/* the token read from a file (malloc'ed) */
};

struct fetch_set {
	const char		*fs_bundle, *fs_out, *fs_raw;
	bool			 fs_msgpack;
	size_t			 fs_ngroups;
	struct fetch_group	 fs_groups[CTL_FETCH_GROUPS];
};

static const char **
fetch_slot(struct fetch_group *g, const char *opt)
{
	if (strcmp(opt, "subject") == 0)
		return &g->fg_subject;
	if (strcmp(opt, "items") == 0)
		return &g->fg_items;
	if (strcmp(opt, "predicates") == 0)
		return &g->fg_predicates;
	return &g->fg_consent;
}

/*
 * --subject, --items and --consent fill the current group; one that the
 * group already has starts the next group.  dst is the whole settings.
 */
static int
fetch_opt_group(void *dst, const struct optdef *od, const char *val)
{
	struct fetch_set	*s = dst;
	const char		**slot = NULL;

	if (s->fs_ngroups > 0)
		slot = fetch_slot(&s->fs_groups[s->fs_ngroups - 1], od->od_name);
	if (slot == NULL || *slot != NULL) {
		if (s->fs_ngroups == CTL_FETCH_GROUPS) {
			ctl_err("fetch takes at most %d subjects", CTL_FETCH_GROUPS);
			return -1;
		}
		slot = fetch_slot(&s->fs_groups[s->fs_ngroups++], od->od_name);
	}
	*slot = val;
	return 0;
}

#define FS(m)	offsetof(struct fetch_set, m)
static const struct optdef fetch_opts[] = {
	{ "bundle", "BUNDLE", OPT_STR, FS(fs_bundle),
	  .od_help = "bundle id, e.g. newborn" },
	{ "subject", "ID", OPT_FUNC, 0, .od_func = fetch_opt_group,
	  .od_help = "the citizen whose certificates are fetched" },
	{ "items", "LIST", OPT_FUNC, 0, .od_func = fetch_opt_group,
	  .od_help = "comma-separated item types" },
	{ "predicates", "JSON", OPT_FUNC, 0, .od_func = fetch_opt_group,
	  .od_help = "instead of --items: a JSON list of predicates\n"
	  "[{\"item\",\"field\",\"op\",\"value\"}...] asked as a verification" },
	{ "consent", "TOKEN", OPT_FUNC, 0, .od_func = fetch_opt_group,
	  .od_help = "the subject's consent token (base64url); @FILE reads it\n"
	  "from FILE, @- from standard input" },
	{ "out", "FILE", OPT_STR, FS(fs_out),
	  .od_help = "also write the answer to FILE (for\n\"lianctl seal verify\")" },
	{ "save-raw", "FILE", OPT_STR, FS(fs_raw),
	  .od_help = "write the gateway's answer body, unchanged, to FILE" },
	{ "msgpack", NULL, OPT_FLAG, FS(fs_msgpack),
	  .od_help = "send and accept application/msgpack (the output\nstays JSON)" },
	{ "quiet", NULL, OPT_GLOBAL, 0,
	  .od_help = "print nothing on standard output (use with --out)" },
	{ .od_name = NULL }
};
#undef FS

/* The token text of a group, read from a file for @FILE and trimmed of blanks. */
static int
fetch_token(struct fetch_group *g, const char **tok, size_t *len)
{
	const char	*p;
	size_t		 n;

	if (g->fg_consent[0] != '@') {
		*tok = g->fg_consent;
		*len = strlen(g->fg_consent);
		return 0;
	}
	if (ctl_read_input(g->fg_consent + 1, CTL_TOKEN_MAX, &g->fg_file, &n) != 0)
		return -1;
	p = (const char *)g->fg_file;
	while (n > 0 && strchr(" \t\r\n", p[n - 1]) != NULL)
		n--;
	while (n > 0 && strchr(" \t\r\n", *p) != NULL) {
		p++;
		n--;
	}
	*tok = p;
	*len = n;
	return 0;
}

/*
 * The request {"bundle", "requests": [{subject, items, consent}...]} in z.
 * msgpack carries each consent envelope as its own bytes, JSON as base64url.
 */
static int
fetch_request(struct fetch_set *s, msgpack_zone *z, msgpack_object *root)
{
	struct fetch_group	*g;
	struct mpk_map		 req, m;
	msgpack_object		 reqs, oitems;
	const char		*tok;
	uint8_t			*dec = NULL;
	size_t			 i, toklen, declen;
	int			 ret = CTL_FAIL;
	char			 err[256];

	reqs = mpk_array(z, (uint32_t)s->fs_ngroups);
	for (i = 0; i < s->fs_ngroups; i++) {
		g = &s->fs_groups[i];
		if (g->fg_predicates != NULL) {
			/* Checked by the gateway, which names the bad predicate. */
			if (mpk_from_json(g->fg_predicates, strlen(g->fg_predicates), z, &oitems,
			    err, sizeof(err)) != 0) {
				ctl_err("--predicates for %s is not JSON: %s", g->fg_subject, err);
				ret = CTL_USAGE;
				goto done;
			}
		} else if (ctl_list_split(z, g->fg_items, &oitems) != 0) {
			ctl_err("--items is a comma-separated list without empty elements");
			ret = CTL_USAGE;
			goto done;
		}
		if (fetch_token(g, &tok, &toklen) != 0)
			goto done;
		mpk_map_init(&req, z, 3);
		mpk_map_put(&req, "subject", mpk_str(g->fg_subject));
		mpk_map_put(&req, g->fg_predicates != NULL ? "predicates" : "items", oitems);
		if (s->fs_msgpack) {
			if (b64url_decode(tok, toklen, &dec, &declen) != 0) {
				ctl_err("the consent token for %s is not base64url (unpadded)",
				    g->fg_subject);
				ret = CTL_USAGE;
				goto done;
			}
			mpk_map_put(&req, "consent", mpk_bindup(z, dec, declen));
			free(dec);
			dec = NULL;
		} else
			mpk_map_put(&req, "consent", mpk_strn(tok, toklen));
		reqs.via.array.ptr[i] = req.mm_obj;
	}
	mpk_map_init(&m, z, 2);
	mpk_map_put(&m, "bundle", mpk_str(s->fs_bundle));
	mpk_map_put(&m, "requests", reqs);
	*root = m.mm_obj;
	ret = CTL_OK;
done:
	free(dec);
	return ret;
}

/* Lists the items the gateway did not serve, on standard error. */
static void
fetch_report(const struct http_resp *r)
{
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*res, *e;
	char			 item[LB_ITEM_MAX * 2], subj[LB_SUBJECT_MAX * 2];
	char			 status[64], msg[1024], err[256];
	uint32_t		 i, bad = 0;

	msgpack_zone_init(&z, 4096);
	if (http_resp_object(r, &z, &o, err, sizeof(err)) != 0 ||
	    (res = mpk_get(&o, "results")) == NULL || res->type != MSGPACK_OBJECT_ARRAY) {
		ctl_err("the gateway's answer has no results list");
		goto done;
	}
	for (i = 0; i < res->via.array.size; i++) {
		e = &res->via.array.ptr[i];
		if (mpk_get_str(e, "status", status, sizeof(status)) == 0 &&
		    strcmp(status, "ok") == 0)
			continue;
		bad++;
		if (mpk_get_str(e, "item", item, sizeof(item)) != 0)
			snprintf(item, sizeof(item), "item %u", i);
		if (mpk_get_str(e, "subject", subj, sizeof(subj)) != 0)
			snprintf(subj, sizeof(subj), "?");
		if (mpk_get_str(e, "status", status, sizeof(status)) != 0)
			snprintf(status, sizeof(status), "no status");
		if (mpk_get_str(e, "message", msg, sizeof(msg)) != 0)
			msg[0] = '\0';
		ctl_err("%s for %s not fetched: %s%s%s", item, subj, status,
		    msg[0] != '\0' ? ": " : "", msg);
	}
	if (bad > 0)
		ctl_err("%u of %u items were not fetched", bad, res->via.array.size);
done:
	msgpack_zone_destroy(&z);
}

/* Prints the answer and writes it to --out. */
static int
fetch_output(struct ctl *ctl, const struct fetch_set *s, const struct http_resp *r)
{
	char	*pretty, err[CTL_ERR_MAX];
	size_t	 n;
	int	 ret = CTL_FAIL;

	if ((pretty = http_resp_pretty(r, err, sizeof(err))) == NULL) {
		ctl_err("%s", err);
		return CTL_FAIL;
	}
	if (!ctl->c_quiet)
		printf("%s\n", pretty);
	if (s->fs_out != NULL) {
		/* The spare byte of the NUL becomes the final newline. */
		n = strlen(pretty);
		pretty[n] = '\n';
		if (ctl_write_output(s->fs_out, pretty, n + 1) != 0)
			goto done;
	}
	if (!ctl->c_quiet)
		fetch_report(r);
	ret = CTL_OK;
done:
	free(pretty);
	return ret;
}

/* Every subject needs all three of its options. */
static int
fetch_check(const void *set, const struct args *ar)
{
	const struct fetch_set		*s = set;
	const struct fetch_group	*g;
	size_t				 i;

	if (s->fs_bundle == NULL || s->fs_ngroups == 0) {
		ctl_err("fetch needs --bundle and at least one --subject/--items/--consent");
		ctl_usage_hint(ar);
		return -1;
	}
	for (i = 0; i < s->fs_ngroups; i++) {
		g = &s->fs_groups[i];
		if (g->fg_subject == NULL || (g->fg_items == NULL) == (g->fg_predicates == NULL) ||
		    g->fg_consent == NULL) {
			ctl_err("subject %zu (%s) needs --subject, --consent and either --items or "
			    "--predicates", i + 1, g->fg_subject != NULL ? g->fg_subject :
			    "not named");
			return -1;
		}
		if ((g->fg_predicates != NULL) != (s->fs_groups[0].fg_predicates != NULL)) {
			ctl_err("one request is an exchange (--items) or a verification "
			    "(--predicates), not both");
			return -1;
		}
	}
	return 0;
}

static int
fetch_run(struct ctl *ctl, struct args *ar)
{
	struct fetch_set	*s;
	struct http_resp	 r;
	struct http_req		 req;
	msgpack_zone		 z;
	msgpack_sbuffer		 sb;
	msgpack_object		 root;
	char			*json = NULL;
	size_t			 i;
	int			 ret;

	memset(&r, 0, sizeof(r));
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		ctl_err("out of memory");
		return CTL_FAIL;
	}
	msgpack_zone_init(&z, 4096);
	msgpack_sbuffer_init(&sb);
	if (ctl_args(ctl, ar, s, &ret) != 0)
		goto done;
	if ((ret = fetch_request(s, &z, &root)) != CTL_OK)
		goto done;
	ret = CTL_FAIL;
	memset(&req, 0, sizeof(req));
	req.hq_method = "POST";
	req.hq_path = s->fs_groups[0].fg_predicates != NULL ? "/v1/verifications" :
	    "/v1/exchanges";
	if (s->fs_msgpack) {
		if (mpk_pack(&root, &sb, false) != 0) {
			ctl_err("cannot encode the request");
			goto done;
		}
		req.hq_accept = req.hq_ctype = "application/msgpack";
		req.hq_body = sb.data != NULL ? sb.data : "";
		req.hq_len = sb.size;
	} else {
		if ((json = mpk_to_json(&root, false)) == NULL) {
			ctl_err("the request holds text that is not valid UTF-8");
			ret = CTL_USAGE;
			goto done;
		}
		req.hq_accept = req.hq_ctype = "application/json";
		req.hq_body = json;
		req.hq_len = strlen(json);
	}
	if (http_request(ctl, &req, &r) != 0)
		goto done;
	if (s->fs_raw != NULL && ctl_write_output(s->fs_raw, r.hr_body, r.hr_len) != 0)
		goto done;
	if (r.hr_status >= 300)
		http_resp_refused(&r);
	else
		ret = fetch_output(ctl, s, &r);
done:
	for (i = 0; i < s->fs_ngroups; i++)
		free(s->fs_groups[i].fg_file);
	free(s);
	free(json);
	http_resp_clear(&r);
	msgpack_sbuffer_destroy(&sb);
	msgpack_zone_destroy(&z);
	return ret;
}

const struct command cmd_fetch = {
	.cm_name = "fetch",
	.cm_summary = "fetch certificates for citizens in one exchange",
	.cm_synopsis = "[global options] fetch --bundle BUNDLE\n"
	"           --subject ID --items LIST --consent TOKEN [--subject ...]\n"
	"           [--out FILE] [--save-raw FILE] [--msgpack]\n"
	"       lianctl [global options] fetch --bundle BUNDLE\n"
	"           --subject ID --predicates JSON --consent TOKEN [--subject ...]",
	.cm_about =
	"Fetches certificates in one exchange (POST /v1/exchanges; consumer role) and\n"
	"prints the gateway's answer as JSON.  Each subject takes its own --items and\n"
	"--consent; give the three again for every further subject.  With --predicates\n"
	"instead of --items, asks a verification (POST /v1/verifications): each\n"
	"predicate is answered by a sealed attestation, true or false, and no\n"
	"certificate is released.\n",
	.cm_notes =
	"Items the gateway could not serve are listed on standard error.  The exit\n"
	"status is 0 whenever the gateway accepted the request, even if some items\n"
	"failed: their \"status\" says why.\n",
	.cm_opts = fetch_opts,
	.cm_check = fetch_check,
	.cm_ident = IDENT_NEEDED,
	.cm_run = fetch_run
};
