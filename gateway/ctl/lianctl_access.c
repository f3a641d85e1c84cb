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

const char usage_access_report[] =
"usage: lianctl access report (--consent TOKEN | --consent-file FILE) [options]\n"
"\n"
"Shows a citizen who accessed their data: every exchange, denial and audit\n"
"read the journal holds about them, newest first (GET /v1/subjects/me/accesses).\n"
"Run it with the consumer identity of the citizen's app (--cert, --key).  The\n"
"citizen's self consent token for the bundle \"access_report\" (item\n"
"\"access_report\") names the citizen and is good for one call.\n"
"\n"
"  --consent TOKEN        the consent token, base64url\n"
"  --consent-file FILE    read the token from FILE (\"-\" for standard input)\n"
"  --limit N              at most N entries, 1 to 1000 (default 100)\n"
"  --before SEQ           only entries older than journal seq SEQ (the \"next\"\n"
"                         value of a previous page)\n"
"  --json                 print the gateway's answer as JSON\n";

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
		if (read_input(file, CTL_TOKEN_MAX, &buf, &buflen) != 0)
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
			fmt_time_ms(t_ms, when, sizeof(when));
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

int
cmd_access_report(struct ctl *ctl, struct args *ar)
{
	static const struct optdef defs[] = {
		{ "consent",		true,	O_CONSENT },
		{ "consent-file",	true,	O_CONSENT_FILE },
		{ "limit",		true,	O_LIMIT },
		{ "before",		true,	O_BEFORE },
		{ NULL,			false,	O_NONE }
	};
	const char		*val, *tok_arg = NULL, *tok_file = NULL;
	int			 nextopt, optrc;
	enum opt		 id;
	struct http_resp	 r;
	msgpack_zone		 z;
	msgpack_object		 o;
	char			 tok[ACCESS_TOKEN_CHARS + 1], header[ACCESS_TOKEN_CHARS + 64];
	char			 path[128], err[CTL_ERR_MAX], *s;
	int64_t			 limit = 0, before = -1;
	int			 ret = CTL_FAIL, rc;

	while ((nextopt = cmd_opt(ar, defs, usage_access_report, &id, &val, &optrc)) > 0) {
		switch (id) {
		case O_CONSENT:
			tok_arg = val;
			break;
		case O_CONSENT_FILE:
			tok_file = val;
			break;
		case O_LIMIT:
			if (parse_i64("limit", val, 1, 1000, &limit) != 0)
				return CTL_USAGE;
			break;
		case O_BEFORE:
			if (parse_i64("before", val, 0, INT64_MAX, &before) != 0)
				return CTL_USAGE;
			break;
		default:
			if (ctl_global(ctl, id, val) != 0)
				return CTL_USAGE;
			break;
		}
	}
	if (nextopt < 0)
		return optrc;
	if ((tok_arg == NULL) == (tok_file == NULL)) {
		ctl_err("access report needs exactly one of --consent and --consent-file");
		usage_hint(ar);
		return CTL_USAGE;
	}
	if (ctl_need_identity(ctl, "access report") != 0)
		return CTL_USAGE;
	if (access_load_token(tok_arg, tok_file, tok, sizeof(tok)) != 0)
		return CTL_USAGE;
	snprintf(path, sizeof(path), "%s?limit=%lld", ACCESS_PATH,
	    (long long)(limit > 0 ? limit : 100));
	if (before >= 0)
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "&before=%lld",
		    (long long)before);
	snprintf(header, sizeof(header), "Lianban-Consent: %s", tok);
	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 8192);
	ctl->c_header = header;
	rc = http_request(ctl, "GET", path, "application/json", NULL, NULL, 0, &r, err,
	    sizeof(err));
	ctl->c_header = NULL;
	if (rc != 0) {
		ctl_err("%s", err);
		goto done;
	}
	if (r.hr_status >= 300) {
		resp_refused(&r);
		goto done;
	}
	if (ctl->c_json) {
		if ((s = resp_pretty(&r, err, sizeof(err))) == NULL) {
			ctl_err("%s", err);
			goto done;
		}
		printf("%s\n", s);
		free(s);
	} else {
		if (resp_object(&r, &z, &o, err, sizeof(err)) != 0) {
			ctl_err("GET %s: %s", ACCESS_PATH, err);
			goto done;
		}
		if (access_print(&o) != 0)
			goto done;
	}
	ret = CTL_OK;
done:
	OPENSSL_cleanse(tok, sizeof(tok));
	OPENSSL_cleanse(header, sizeof(header));
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}
