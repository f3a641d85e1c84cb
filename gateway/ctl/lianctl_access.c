/*
 * lianctl_access.c - "lianctl access report": the citizen's access report
 * (GET /v1/subjects/me/accesses), asked by the citizen's own app with a
 * self consent token for the bundle "access_report".
 *
 * A token is good for one call, so the command fetches one page (--limit,
 * --before) and says how to ask for the older ones.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "lianban.h"
#include "lianctl.h"

#define ACCESS_PATH		"/v1/subjects/me/accesses"
/*
 * The token travels in the Lianban-Consent header; base64url of an
 * envelope without certificates is well under this.
 */
#define ACCESS_TOKEN_CHARS	1600

struct access_set {
	const char	*ac_tok;	/* --consent */
	const char	*ac_file;	/* --consent-file */
	int64_t		 ac_limit;
	int64_t		 ac_before;	/* -1: the newest entries */
};

#define AC(m)	offsetof(struct access_set, m)
static const struct optdef access_opts[] = {
	{ "consent", "TOKEN", OPT_STR, AC(ac_tok),
	  .od_help = "the consent token, base64url" },
	{ "consent-file", "FILE", OPT_STR, AC(ac_file),
	  .od_help = "read the token from FILE (\"-\" for standard input)" },
	{ "limit", "N", OPT_INT, AC(ac_limit), 1, 1000,
	  .od_help = "at most N entries, 1 to 1000 (default 100)" },
	{ "before", "SEQ", OPT_INT, AC(ac_before), 0, INT64_MAX,
	  .od_help = "only entries older than journal seq SEQ (the \"next\"\n"
	  "value of a previous page)" },
	{ "json", NULL, OPT_GLOBAL, 0, .od_help = "print the gateway's answer as JSON" },
	{ .od_name = NULL }
};
#undef AC

/* Loads the token and checks that it is base64url only (it goes into a header). */
static int
access_load_token(const char *inline_tok, const char *file, char *tok, size_t toksz)
{
	uint8_t	*buf = NULL;
	size_t	 len = 0, buflen = 0, i, start = 0;
	int	 ret = -1;

	if (inline_tok != NULL) {
		len = strlen(inline_tok);
		if (len >= toksz) {
			ctl_err("--consent: the token is longer than %zu characters", toksz - 1);
			return -1;
		}
		memcpy(tok, inline_tok, len + 1);
	} else {
		if (ctl_read_input(file, CTL_TOKEN_MAX, &buf, &buflen) != 0)
			return -1;
		len = buflen;
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
		    buf[len - 1] == ' ' || buf[len - 1] == '\t'))
			len--;
		while (start < len && (buf[start] == ' ' || buf[start] == '\t' ||
		    buf[start] == '\n' || buf[start] == '\r'))
			start++;
		if (len - start >= toksz) {
			ctl_err("%s: the token is longer than %zu characters", file, toksz - 1);
			goto done;
		}
		memcpy(tok, buf + start, len - start);
		tok[len - start] = '\0';
	}
	if (tok[0] == '\0') {
		ctl_err("the consent token is empty");
		goto done;
	}
	for (i = 0; tok[i] != '\0'; i++)
		if (!((tok[i] >= 'A' && tok[i] <= 'Z') || (tok[i] >= 'a' && tok[i] <= 'z') ||
		    (tok[i] >= '0' && tok[i] <= '9') || tok[i] == '-' || tok[i] == '_')) {
			ctl_err("the consent token must be base64url (A-Z a-z 0-9 - _) "
			    "without padding");
			goto done;
		}
	ret = 0;
done:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, buflen);
		free(buf);
	}
	return ret;
}

static void
access_field(const msgpack_object *e, const char *key, char *buf, size_t bufsz)
{
	if (mpk_get_str(e, key, buf, bufsz) != 0 || buf[0] == '\0')
		snprintf(buf, bufsz, "-");
}

/* The readable table: one line per entry. */
static int
access_print(const msgpack_object *o)
{
	const msgpack_object	*list, *e, *next;
	char			 when[48], consumer[LB_ID_MAX], bundle[LB_ID_MAX];
	char			 item[LB_ITEM_MAX], dept[LB_ID_MAX], kind[16], code[40];
	uint64_t		 t_ms, nseq;
	uint32_t		 i;

	if ((list = mpk_get(o, "accesses")) == NULL || list->type != MSGPACK_OBJECT_ARRAY) {
		ctl_err("the gateway's answer has no \"accesses\" list");
		return -1;
	}
	printf("%-24s  %-12s  %-10s  %-16s  %-26s  %-8s  %s\n", "TIME (UTC)", "KIND",
	    "CONSUMER", "BUNDLE", "ITEM", "DEPT", "DECISION");
	for (i = 0; i < list->via.array.size; i++) {
		e = &list->via.array.ptr[i];
		if (mpk_get_u64(e, "t_ms", &t_ms) == 0)
			ctl_fmt_time_ms(t_ms, when, sizeof(when));
		else
			snprintf(when, sizeof(when), "-");
		access_field(e, "kind", kind, sizeof(kind));
		access_field(e, "consumer", consumer, sizeof(consumer));
		/* An auditor's read has no consumer: the auditor stays a pseudonym. */
		if (strcmp(consumer, "-") == 0 && strcmp(kind, "audit-read") == 0)
			snprintf(consumer, sizeof(consumer), "(auditor)");
		access_field(e, "bundle", bundle, sizeof(bundle));
		access_field(e, "item", item, sizeof(item));
		access_field(e, "dept", dept, sizeof(dept));
		access_field(e, "code", code, sizeof(code));
		printf("%-24s  %-12s  %-10s  %-16s  %-26s  %-8s  %s\n", when, kind, consumer,
		    bundle, item, dept, code);
	}
	printf("%u entr%s\n", list->via.array.size, list->via.array.size == 1 ? "y" : "ies");
	if ((next = mpk_get(o, "next")) != NULL && mpk_obj_u64(next, &nseq) == 0)
		printf("older entries remain: ask again with a new token and --before %llu\n",
		    (unsigned long long)nseq);
	return 0;
}

static int
access_check(const void *set, const struct args *ar)
{
	const struct access_set	*s = set;

	if ((s->ac_tok == NULL) == (s->ac_file == NULL)) {
		ctl_err("access report needs exactly one of --consent and --consent-file");
		ctl_usage_hint(ar);
		return -1;
	}
	return 0;
}

static int
access_run(struct ctl *ctl, struct args *ar)
{
	struct access_set	 s = { NULL, NULL, 100, -1 };
	struct http_resp	 r;
	msgpack_zone		 z;
	msgpack_object		 o;
	char			 tok[ACCESS_TOKEN_CHARS + 1], header[ACCESS_TOKEN_CHARS + 64];
	char			 path[128], err[CTL_ERR_MAX];
	int			 ret;

	if (ctl_args(ctl, ar, &s, &ret) != 0)
		return ret;
	if (access_load_token(s.ac_tok, s.ac_file, tok, sizeof(tok)) != 0)
		return CTL_USAGE;
	snprintf(path, sizeof(path), "%s?limit=%lld", ACCESS_PATH, (long long)s.ac_limit);
	if (s.ac_before >= 0)
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "&before=%lld",
		    (long long)s.ac_before);
	snprintf(header, sizeof(header), "Lianban-Consent: %s", tok);
	ret = CTL_FAIL;
	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 8192);
	if (http_request(ctl, &(struct http_req){ .hq_method = "GET", .hq_path = path,
	    .hq_header = header }, &r) != 0)
		goto done;
	if (r.hr_status >= 300) {
		http_resp_refused(&r);
		goto done;
	}
	if (ctl->c_json)
		ret = http_resp_print(&r);
	else if (http_resp_object(&r, &z, &o, err, sizeof(err)) != 0)
		ctl_err("GET %s: %s", ACCESS_PATH, err);
	else if (access_print(&o) == 0)
		ret = CTL_OK;
done:
	OPENSSL_cleanse(tok, sizeof(tok));
	OPENSSL_cleanse(header, sizeof(header));
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

const struct command cmd_access_report = {
	.cm_name = "access report",
	.cm_summary = "a citizen's own access report: who accessed their data",
	.cm_synopsis = "access report (--consent TOKEN | --consent-file FILE) [options]",
	.cm_about =
	"Shows a citizen who accessed their data: every exchange, denial and audit\n"
	"read the journal holds about them, newest first (GET /v1/subjects/me/accesses).\n"
	"Run it with the consumer identity of the citizen's app (--cert, --key).  The\n"
	"citizen's self consent token for the bundle \"access_report\" (item\n"
	"\"access_report\") names the citizen and is good for one call.\n",
	.cm_opts = access_opts,
	.cm_check = access_check,
	.cm_ident = IDENT_NEEDED,
	.cm_run = access_run
};
