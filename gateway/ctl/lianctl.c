/*
 * lianctl.c - the command-line client of lianban: main, the option parser,
 * the command table, the health and help commands, and the file helpers
 * the commands share.
 *
 * One program for the parties that talk to the gateway from a shell: a
 * consumer fetching certificates (lianctl_fetch.c), an auditor pulling and
 * checking the journal (lianctl_journal.c), anyone holding a saved answer
 * who wants to check its seals offline (lianctl_seal.c), and anyone asking
 * whether the gateway is up (health).  For demos and tests it also plays
 * the face-auth authority (consent issue, lianctl_consent.c), which in
 * production is a separate platform holding its own keys.  Departments and
 * admins manage adapters and policies (lianctl_admin.c), admins and
 * authorities revoke consent (lianctl_consent.c), and a citizen's app
 * reads the access report (lianctl_access.c).
 *
 * All cryptography and encodings come from the core library, so lianctl
 * checks answers with exactly the rules the gateway signs them with.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lianban.h"
#include "lianctl.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION	"unknown"
#endif

#define CTL_HELP_COL	25	/* where the help of an option or a command starts */

void
ctl_err(const char *fmt, ...)
{
	va_list	ap;

	fputs(CTL_PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * Command-line parsing.  Options are long only, "--name value" or
 * "--name=value", and may come in any order with the operands; "--" ends
 * the options.  A command's own table is searched first, then the global
 * one, so global options work after the command too.
 */

enum arg_kind {
	ARG_END,
	ARG_OPT,
	ARG_OPERAND,
	ARG_BAD		/* a usage error, already reported */
};

static int	ctl_opt_gateway(void *, const struct optdef *, const char *);

/* The global options store into struct ctl. */
static const struct optdef ctl_global_opts[] = {
	{ "gateway", "HOST:PORT", OPT_FUNC, 0, .od_func = ctl_opt_gateway,
	  .od_help = "gateway address (default " CTL_DEFAULT_GATEWAY ")" },
	{ "cert", "PEM", OPT_STR, offsetof(struct ctl, c_cert),
	  .od_help = "client certificate; required by fetch and journal" },
	{ "key", "PEM", OPT_STR, offsetof(struct ctl, c_key),
	  .od_help = "its private key (mode 600)" },
	{ "certs", "DIR", OPT_STR, offsetof(struct ctl, c_certs),
	  .od_help = "demo PKI directory (default " CTL_DEFAULT_CERTS "); gives the defaults\n"
	  "DIR/client-ca.pem, DIR/seal-root.pem, DIR/journal/checkpoint.pem" },
	{ "ca", "PEM", OPT_STR, offsetof(struct ctl, c_ca),
	  .od_help = "CA of the gateway's TLS certificate (default DIR/client-ca.pem)" },
	{ "timeout", "SECONDS", OPT_INT, offsetof(struct ctl, c_timeout), 1, 3600,
	  .od_help = "network timeout for connecting, and for a gateway\n"
	  "that sends nothing (default 30)" },
	{ "json", NULL, OPT_FLAG, offsetof(struct ctl, c_json),
	  .od_help = "print reports as JSON" },
	{ "quiet", NULL, OPT_FLAG, offsetof(struct ctl, c_quiet),
	  .od_help = "print only failures" },
	{ "help", NULL, OPT_HELP, 0,
	  .od_help = "this text; \"lianctl COMMAND --help\" describes a command" },
	{ "version", NULL, OPT_VERSION, 0,
	  .od_help = "print the version of lianctl" },
	{ .od_name = NULL }
};

static const struct optdef *
opt_find(const struct optdef *defs, const char *name, size_t len)
{
	for (; defs != NULL && defs->od_name != NULL; defs++)
		if (strlen(defs->od_name) == len && strncmp(defs->od_name, name, len) == 0)
			return defs;
	return NULL;
}

static bool
opt_is_global(const struct optdef *od)
{
	return od >= ctl_global_opts &&
	    od < ctl_global_opts + sizeof(ctl_global_opts) / sizeof(ctl_global_opts[0]);
}

void
ctl_usage_hint(const struct args *ar)
{
	if (ar->ar_cmd != NULL)
		fprintf(stderr, "see \"" CTL_PROG " %s --help\"\n", ar->ar_name);
	else
		fputs("see \"" CTL_PROG " --help\"\n", stderr);
}

/*
 * The next word of the command line: an option of defs or of the global
 * table (in *od, its value in *val), or an operand (in *val).
 */
static enum arg_kind
arg_next(struct args *ar, const struct optdef *defs, const struct optdef **od,
    const char **val)
{
	const char	*a, *name, *eq;
	size_t		 len;

	*od = NULL;
	*val = NULL;
	for (;;) {
		if (ar->ar_i >= ar->ar_argc)
			return ARG_END;
		a = ar->ar_argv[ar->ar_i++];
		if (ar->ar_operands || a[0] != '-' || a[1] == '\0') {
			*val = a;
			return ARG_OPERAND;
		}
		if (strcmp(a, "--") != 0)
			break;
		ar->ar_operands = true;
	}
	if (strcmp(a, "-h") == 0)
		a = "--help";
	if (a[1] != '-') {
		ctl_err("unknown option %s (options are long: --name)", a);
		ctl_usage_hint(ar);
		return ARG_BAD;
	}
	name = a + 2;
	eq = strchr(name, '=');
	len = eq != NULL ? (size_t)(eq - name) : strlen(name);
	if ((*od = opt_find(defs, name, len)) == NULL &&
	    (*od = opt_find(ctl_global_opts, name, len)) == NULL) {
		ctl_err("unknown option --%.*s%s%s", (int)len, name,
		    ar->ar_cmd != NULL ? " for " : "", ar->ar_name);
		ctl_usage_hint(ar);
		return ARG_BAD;
	}
	/* A command's entry for a global option only gives it its own help. */
	if ((*od)->od_kind == OPT_GLOBAL &&
	    (*od = opt_find(ctl_global_opts, name, len)) == NULL) {
		ctl_err("internal error: --%.*s is no global option", (int)len, name);
		return ARG_BAD;
	}
	if ((*od)->od_arg != NULL) {
		if (eq != NULL)
			*val = eq + 1;
		else if (ar->ar_i < ar->ar_argc)
			*val = ar->ar_argv[ar->ar_i++];
		else {
			ctl_err("option --%s needs a value", (*od)->od_name);
			return ARG_BAD;
		}
	} else if (eq != NULL) {
		ctl_err("option --%s takes no value", (*od)->od_name);
		return ARG_BAD;
	}
	return ARG_OPT;
}

/* "a or b", "a, b or c" */
static void
opt_choices(const char *const *c, char *buf, size_t bufsz)
{
	size_t	n, i, off = 0;

	for (n = 0; c[n] != NULL; n++)
		;
	buf[0] = '\0';
	for (i = 0; i < n && off < bufsz; i++)
		off += (size_t)snprintf(buf + off, bufsz - off, "%s%s",
		    i == 0 ? "" : i + 1 == n ? " or " : ", ", c[i]);
}

/* Stores the value of option od in the settings at base; -1 (reported) when wrong. */
static int
opt_store(void *base, const struct optdef *od, const char *val)
{
	char	*dst = (char *)base + od->od_off;
	char	 list[256];
	int	 i;

	switch (od->od_kind) {
	case OPT_FLAG:
		*(bool *)dst = true;
		return 0;
	case OPT_STR:
		*(const char **)dst = val;
		return 0;
	case OPT_INT:
		return ctl_parse_i64(od->od_name, val, od->od_min, od->od_max, (int64_t *)dst);
	case OPT_CHOICE:
		for (i = 0; od->od_choices[i] != NULL; i++)
			if (strcmp(od->od_choices[i], val) == 0) {
				*(int *)dst = i;
				return 0;
			}
		opt_choices(od->od_choices, list, sizeof(list));
		ctl_err("--%s is %s, not \"%s\"", od->od_name, list, val);
		return -1;
	case OPT_FUNC:
		return od->od_func(dst, od, val);
	default:
		ctl_err("internal error: option --%s has no handler", od->od_name);
		return -1;
	}
}

/* Prints the help lines of an option table. */
static void
opt_usage(FILE *fp, const struct optdef *defs)
{
	const char	*h, *nl;
	char		 left[64];
	int		 n;

	for (; defs->od_name != NULL; defs++) {
		n = snprintf(left, sizeof(left), "--%s%s%s", defs->od_name,
		    defs->od_arg != NULL ? " " : "", defs->od_arg != NULL ? defs->od_arg : "");
		if (n < 0 || n > CTL_HELP_COL - 4)
			fprintf(fp, "  %s\n%*s", left, CTL_HELP_COL, "");
		else
			fprintf(fp, "  %-*s ", CTL_HELP_COL - 3, left);
		for (h = defs->od_help; (nl = strchr(h, '\n')) != NULL; h = nl + 1)
			fprintf(fp, "%.*s\n%*s", (int)(nl - h), h, CTL_HELP_COL, "");
		fprintf(fp, "%s\n", h);
	}
}

static void
cmd_usage(FILE *fp, const struct command *cm)
{
	if (cm->cm_synopsis != NULL)
		fprintf(fp, "usage: " CTL_PROG " %s\n", cm->cm_synopsis);
	else
		fprintf(fp, "usage: " CTL_PROG " [global options] %s%s%s\n", cm->cm_name,
		    cm->cm_operand != NULL ? " " : "",
		    cm->cm_operand != NULL ? cm->cm_operand : "");
	fprintf(fp, "\n%s", cm->cm_about);
	if (cm->cm_opts != NULL && cm->cm_opts->od_name != NULL) {
		fputc('\n', fp);
		opt_usage(fp, cm->cm_opts);
	}
	if (cm->cm_notes != NULL)
		fprintf(fp, "\n%s", cm->cm_notes);
}

static void
version_print(void)
{
	printf("%s %s\n", CTL_PROG, PACKAGE_VERSION);
}

int
ctl_args(struct ctl *ctl, struct args *ar, void *set, int *rc)
{
	const struct command	*cm = ar->ar_cmd;
	const struct optdef	*od;
	const char		*val, *operand = NULL;
	enum arg_kind		 k;
	uint64_t		 given = 0;	/* a bit per row of cm_opts; tables stay below 64 */
	size_t			 i;

	*rc = CTL_USAGE;
	while ((k = arg_next(ar, cm->cm_opts, &od, &val)) != ARG_END) {
		if (k == ARG_BAD)
			return -1;
		if (k == ARG_OPERAND) {
			if (cm->cm_operand == NULL || operand != NULL) {
				ctl_err("%s: unexpected operand \"%s\"", ar->ar_name, val);
				ctl_usage_hint(ar);
				return -1;
			}
			operand = val;
			continue;
		}
		if (od->od_kind == OPT_HELP || od->od_kind == OPT_VERSION) {
			if (od->od_kind == OPT_HELP)
				cmd_usage(stdout, cm);
			else
				version_print();
			*rc = CTL_OK;
			return -1;
		}
		if (opt_store(opt_is_global(od) ? (void *)ctl : set, od, val) != 0)
			return -1;
		if (!opt_is_global(od) && od - cm->cm_opts < 64)
			given |= (uint64_t)1 << (od - cm->cm_opts);
	}
	if (cm->cm_operand != NULL) {
		if (operand == NULL) {
			ctl_err("%s: missing operand %s", ar->ar_name, cm->cm_operand);
			ctl_usage_hint(ar);
			return -1;
		}
		*(const char **)((char *)set + cm->cm_operand_off) = operand;
	}
	for (i = 0; cm->cm_opts != NULL && cm->cm_opts[i].od_name != NULL; i++)
		if (cm->cm_opts[i].od_required && (i >= 64 || !(given & ((uint64_t)1 << i)))) {
			ctl_err("%s needs --%s", ar->ar_name, cm->cm_opts[i].od_name);
			ctl_usage_hint(ar);
			return -1;
		}
	if (cm->cm_check != NULL && cm->cm_check(set, ar) != 0)
		return -1;
	if (cm->cm_ident == IDENT_OPTIONAL && (ctl->c_cert == NULL) != (ctl->c_key == NULL)) {
		ctl_err("--cert and --key go together");
		return -1;
	}
	if (cm->cm_ident == IDENT_NEEDED && (ctl->c_cert == NULL || ctl->c_key == NULL)) {
		ctl_err("%s needs a client identity: give --cert PEM and --key PEM", ar->ar_name);
		return -1;
	}
	*rc = CTL_OK;
	return 0;
}

int
ctl_opt_jti(void *dst, const struct optdef *od, const char *val)
{
	struct ctl_jti	*j = dst;
	uint8_t		*b = NULL;
	size_t		 n = 0;
	int		 ret = -1;

	/*
	 * The form the API and "consent issue --json" show (base64url of the
	 * 16 bytes, 22 characters), or 32 hex digits as before; the lengths
	 * tell them apart.
	 */
	if (strlen(val) == 2 * sizeof(j->jt_id) &&
	    hex_decode(val, strlen(val), j->jt_id, sizeof(j->jt_id)) == 0)
		ret = 0;
	else if (b64url_decode(val, strlen(val), &b, &n) == 0 && n == sizeof(j->jt_id)) {
		memcpy(j->jt_id, b, n);
		ret = 0;
	}
	if (ret != 0) {
		ctl_err("--%s needs a jti of 16 bytes: 22 base64url characters, as the API and "
		    "\"consent issue --json\" show it, or 32 hex digits; not \"%s\"",
		    od->od_name, val);
		goto done;
	}
	j->jt_given = true;
done:
	free(b);
	return ret;
}

int
ctl_parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
		ctl_err("--%s needs an integer from %lld to %lld, not \"%s\"", opt,
		    (long long)lo, (long long)hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* --gateway: HOST:PORT, [V6ADDR]:PORT, or HOST alone (port 8443); dst is the ctl. */
static int
ctl_opt_gateway(void *dst, const struct optdef *od, const char *s)
{
	struct ctl	*ctl = dst;
	const char	*host = s, *port = CTL_DEFAULT_PORT, *p;
	size_t		 hlen;
	int64_t		 pn;

	(void)od;
	if (s[0] == '[') {
		host = s + 1;
		if ((p = strchr(host, ']')) == NULL || (p[1] != '\0' && p[1] != ':'))
			goto bad;
		hlen = (size_t)(p - host);
		if (p[1] == ':')
			port = p + 2;
	} else if ((p = strrchr(s, ':')) != NULL) {
		if (strchr(s, ':') != p) {
			ctl_err("--gateway: write an IPv6 address as [ADDRESS]:PORT");
			return -1;
		}
		hlen = (size_t)(p - s);
		port = p + 1;
	} else
		hlen = strlen(s);
	if (hlen == 0 || hlen >= sizeof(ctl->c_host) || memchr(host, '/', hlen) != NULL)
		goto bad;
	if (ctl_parse_i64("gateway port", port, 1, 65535, &pn) != 0)
		return -1;
	memcpy(ctl->c_host, host, hlen);
	ctl->c_host[hlen] = '\0';
	snprintf(ctl->c_port, sizeof(ctl->c_port), "%d", (int)pn);
	return 0;
bad:
	ctl_err("--gateway needs HOST:PORT, not \"%s\"", s);
	return -1;
}

/* An explicit path, or DIR/rel under the --certs directory. */
const char *
ctl_path(const struct ctl *ctl, const char *explicit, const char *rel, char *buf, size_t bufsz)
{
	if (explicit != NULL)
		return explicit;
	if (path_join(buf, bufsz, ctl->c_certs, rel) != 0) {
		ctl_err("--certs directory name is too long");
		return NULL;
	}
	return buf;
}

int
ctl_read_input(const char *path, size_t max, uint8_t **buf, size_t *len)
{
	uint8_t	*b = NULL, *nb;
	size_t	 n = 0, cap = 0;
	ssize_t	 r;
	int	 ret = -1;

	if (strcmp(path, "-") != 0) {
		if (file_read(path, max, buf, len) == 0)
			return 0;
		if (errno == EFBIG)
			ctl_err("%s: not a regular file of at most %zu bytes", path, max);
		else
			ctl_err("%s: %s", path, strerror(errno));
		return -1;
	}
	/* Reading one byte beyond max is how an oversized input shows itself. */
	for (;;) {
		if (n > max) {
			ctl_err("standard input: more than %zu bytes", max);
			goto done;
		}
		if (n == cap) {
			cap = cap == 0 ? 65536 : cap * 2;
			if (cap > max + 1)
				cap = max + 1;
			if ((nb = realloc(b, cap + 1)) == NULL) {
				ctl_err("out of memory");
				goto done;
			}
			b = nb;
		}
		r = read(STDIN_FILENO, b + n, cap - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			ctl_err("standard input: %s", strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (b == NULL && (b = malloc(1)) == NULL) {
		ctl_err("out of memory");
		goto done;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
	ret = 0;
done:
	free(b);
	return ret;
}

int
ctl_write_output(const char *path, const void *data, size_t len)
{
	if (file_write(path, data, len, 0644) != 0) {
		ctl_err("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* A msgpack map header; JSON text never starts with one of these bytes. */
bool
ctl_is_msgpack(uint8_t c)
{
	return (c & 0xf0) == 0x80 || c == 0xde || c == 0xdf;
}

int
ctl_load_object(const char *path, msgpack_zone *z, msgpack_object *o)
{
	uint8_t	*buf = NULL;
	size_t	 len;
	char	 err[256];
	int	 ret = -1;

	if (ctl_read_input(path, CTL_BODY_MAX, &buf, &len) != 0)
		return -1;
	if (len > 0 && ctl_is_msgpack(buf[0])) {
		if (mpk_unpack(buf, len, z, o) != 0) {
			ctl_err("%s: not well-formed msgpack", path);
			goto done;
		}
	} else if (mpk_from_json((const char *)buf, len, z, o, err, sizeof(err)) != 0) {
		ctl_err("%s: %s", path, err);
		goto done;
	}
	if (o->type != MSGPACK_OBJECT_MAP) {
		ctl_err("%s: not a JSON object or msgpack map", path);
		goto done;
	}
	ret = 0;
done:
	free(buf);
	return ret;
}

int
ctl_list_split(msgpack_zone *z, const char *s, msgpack_object *out)
{
	const char	*p, *comma;
	uint32_t	 n = 1, i;

	for (p = s; *p != '\0'; p++)
		if (*p == ',')
			n++;
	*out = mpk_array(z, n);
	for (p = s, i = 0; i < n; i++) {
		comma = strchr(p, ',');
		if (comma == NULL)
			comma = p + strlen(p);
		if (comma == p)
			return -1;
		out->via.array.ptr[i] = mpk_strn(p, (size_t)(comma - p));
		p = comma + 1;
	}
	return 0;
}

void
ctl_fmt_time(uint64_t secs, char *buf, size_t bufsz)
{
	struct tm	tm;
	time_t		t = (time_t)secs;

	if (secs > (uint64_t)INT32_MAX * 64 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, bufsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, bufsz, "%llu (unix seconds)", (unsigned long long)secs);
}

void
ctl_fmt_time_ms(uint64_t ms, char *buf, size_t bufsz)
{
	struct tm	tm;
	time_t		t = (time_t)(ms / 1000);
	char		s[32];

	if (ms / 1000 > (uint64_t)INT32_MAX * 64 || gmtime_r(&t, &tm) == NULL ||
	    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		snprintf(buf, bufsz, "%llu (unix ms)", (unsigned long long)ms);
	else
		snprintf(buf, bufsz, "%s.%03uZ", s, (unsigned)(ms % 1000));
}

int
ctl_json_print(json_t *j)
{
	char	*s;

	if (j == NULL || (s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL) {
		json_decref(j);
		ctl_err("out of memory");
		return -1;
	}
	printf("%s\n", s);
	free(s);
	json_decref(j);
	return 0;
}

/*
 * health
 */
static int
health_run(struct ctl *ctl, struct args *ar)
{
	int	rc;

	if (ctl_args(ctl, ar, NULL, &rc) != 0)
		return rc;
	return http_show(ctl, &(struct http_req){ .hq_method = "GET", .hq_path = "/v1/health" });
}

static const struct command cmd_health = {
	.cm_name = "health",
	.cm_summary = "show the gateway's health",
	.cm_about =
	"Prints the gateway's health (GET /v1/health) as JSON.  --cert and --key are\n"
	"optional for this command.\n",
	.cm_ident = IDENT_OPTIONAL,
	.cm_run = health_run
};

/*
 * The command table: the order of the index in "lianctl --help".
 */
static const struct command *const commands[] = {
	&cmd_health,
	&cmd_consent_issue,
	&cmd_consent_revoke,
	&cmd_fetch,
	&cmd_seal_verify,
	&cmd_journal_checkpoint,
	&cmd_journal_pull,
	&cmd_journal_verify,
	&cmd_journal_archive,
	&cmd_access_report,
	&cmd_adapter_register,
	&cmd_adapter_list,
	&cmd_adapter_show,
	&cmd_adapter_disable,
	&cmd_policy_load,
	&cmd_policy_list,
	&cmd_policy_show,
};
#define NCOMMANDS	(sizeof(commands) / sizeof(commands[0]))

static void
main_usage(FILE *fp)
{
	const struct command	*cm;
	char			 name[64];
	size_t			 i;

	fputs("usage: lianctl [global options] COMMAND [options]\n"
	    "\n"
	    "Client of the lianban data-exchange gateway.\n"
	    "\n"
	    "Commands:\n", fp);
	for (i = 0; i < NCOMMANDS; i++) {
		cm = commands[i];
		snprintf(name, sizeof(name), "%s%s%s", cm->cm_name,
		    cm->cm_operand != NULL ? " " : "",
		    cm->cm_operand != NULL ? cm->cm_operand : "");
		fprintf(fp, "  %-*s %s\n", CTL_HELP_COL - 3, name, cm->cm_summary);
	}
	fputs("\nGlobal options (also accepted after the command):\n", fp);
	opt_usage(fp, ctl_global_opts);
	fputs("\n"
	    "Exit status: 0 success; 1 refused or failed operation (HTTP status >= 400,\n"
	    "failed verification); 2 usage error.\n", fp);
}

/* Whether a command is the one-word command group or a verb of group. */
static bool
cmd_in_group(const struct command *cm, const char *group)
{
	size_t	n = strlen(group);

	return strncmp(cm->cm_name, group, n) == 0 &&
	    (cm->cm_name[n] == '\0' || cm->cm_name[n] == ' ');
}

/* Prints the usage of every command of a group; false when there is none. */
static bool
group_usage(const char *group, FILE *fp)
{
	size_t	i;
	bool	any = false;

	for (i = 0; i < NCOMMANDS; i++) {
		if (!cmd_in_group(commands[i], group))
			continue;
		if (any)
			fputc('\n', fp);
		cmd_usage(fp, commands[i]);
		any = true;
	}
	return any;
}

/* The one-word command group, or the command "group verb". */
static const struct command *
command_find(const char *group, const char *verb)
{
	const char	*v;
	size_t		 i;

	for (i = 0; i < NCOMMANDS; i++) {
		if (!cmd_in_group(commands[i], group))
			continue;
		v = strchr(commands[i]->cm_name, ' ');
		if (v == NULL || (verb != NULL && strcmp(v + 1, verb) == 0))
			return commands[i];
	}
	return NULL;
}

static bool
group_exists(const char *group)
{
	size_t	i;

	for (i = 0; i < NCOMMANDS; i++)
		if (cmd_in_group(commands[i], group))
			return true;
	return false;
}

/* "lianctl help [COMMAND...]" */
static int
help_run(struct args *ar)
{
	const struct command	*cm;
	const char		*group, *verb;

	if (ar->ar_i >= ar->ar_argc) {
		main_usage(stdout);
		return CTL_OK;
	}
	group = ar->ar_argv[ar->ar_i];
	verb = ar->ar_i + 1 < ar->ar_argc ? ar->ar_argv[ar->ar_i + 1] : NULL;
	if ((cm = command_find(group, verb)) != NULL) {
		cmd_usage(stdout, cm);
		return CTL_OK;
	}
	if (group_usage(group, stdout))
		return CTL_OK;
	ctl_err("no command \"%s\"", group);
	ctl_usage_hint(ar);
	return CTL_USAGE;
}

/*
 * The global options before the command, then the command's words; the
 * command parses the rest with ctl_args().
 */
static int
ctl_main(struct ctl *ctl, int argc, char *argv[])
{
	struct args		 ar;
	const struct command	*cm;
	const struct optdef	*od;
	enum arg_kind		 k;
	const char		*word, *verb;

	memset(&ar, 0, sizeof(ar));
	ar.ar_name = "";
	ar.ar_argc = argc;
	ar.ar_argv = argv;
	ar.ar_i = 1;
	while ((k = arg_next(&ar, NULL, &od, &word)) == ARG_OPT) {
		if (od->od_kind == OPT_HELP) {
			main_usage(stdout);
			return CTL_OK;
		}
		if (od->od_kind == OPT_VERSION) {
			version_print();
			return CTL_OK;
		}
		if (opt_store(ctl, od, word) != 0)
			return CTL_USAGE;
	}
	if (k == ARG_BAD)
		return CTL_USAGE;
	if (k == ARG_END) {
		main_usage(stderr);
		return CTL_USAGE;
	}
	if (strcmp(word, "help") == 0)
		return help_run(&ar);
	if (!group_exists(word)) {
		ctl_err("no command \"%s\"", word);
		ctl_usage_hint(&ar);
		return CTL_USAGE;
	}
	if ((cm = command_find(word, NULL)) == NULL) {
		/* A group: the next word names the command. */
		verb = ar.ar_i < argc ? argv[ar.ar_i] : NULL;
		if (verb != NULL && (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 ||
		    strcmp(verb, "help") == 0)) {
			group_usage(word, stdout);
			return CTL_OK;
		}
		if (verb == NULL || (cm = command_find(word, verb)) == NULL) {
			if (verb == NULL)
				ctl_err("\"%s\" needs a command:", word);
			else
				ctl_err("no command \"%s %s\"; there is:", word, verb);
			group_usage(word, stderr);
			return CTL_USAGE;
		}
		ar.ar_i++;
	}
	ar.ar_name = cm->cm_name;
	ar.ar_cmd = cm;
	return cm->cm_run(ctl, &ar);
}

int
main(int argc, char *argv[])
{
	struct ctl	ctl;
	int		ret;

	/* A gateway that closes early must not kill us in the middle of a write. */
	signal(SIGPIPE, SIG_IGN);
	log_init(CTL_PROG, 0);
	memset(&ctl, 0, sizeof(ctl));
	(void)ctl_opt_gateway(&ctl, NULL, CTL_DEFAULT_GATEWAY);
	ctl.c_certs = CTL_DEFAULT_CERTS;
	ctl.c_timeout = CTL_TIMEOUT_S;
	ret = ctl_main(&ctl, argc, argv);
	http_close(&ctl);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_err("cannot write to standard output: %s", strerror(errno));
		return CTL_FAIL;
	}
	return ret;
}
