/*
 * settings.c - the settings of lianband: one table names each of them once
 * (its key in lianband.conf, which is also its long option, its type and
 * range, its defaults, its help, and whether SIGHUP may change it) and
 * drives the option parser, the config file parser (inih), --help,
 * --print-config, the hints of start errors and the reload on SIGHUP.
 *
 * A setting takes its embedded default, then the value of the config file,
 * then that of the command line.  The defaults depend on where lianband
 * runs from: the binary built in the build tree keeps the demo's, relative
 * to the working directory (docs/contract.md §12: no arguments run the demo from the
 * source tree), and reads no config file unless --config names one; any
 * other copy is an installed one, whose defaults are the absolute paths
 * configure chose, and which reads $(sysconfdir)/lianban/lianband.conf when
 * that file exists.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "gateway.h"

#define SETTINGS_CONF		LB_SYSCONFDIR "/lianban/lianband.conf"
#define SETTINGS_HELP_COL	23	/* where the help of an option starts */
#define SETTINGS_WIDTH		79	/* the width --help wraps its lines to */
/* getopt values of the options that are no settings; a setting's is 256 + its index. */
#define OPT_CONFIG		1
#define OPT_PRINT		2
#define OPT_BACKUP		3
#define OPT_SETTING		256

enum setting_type {
	SET_STR,	/* text, as written */
	SET_PATH,	/* a file or folder; in the config file relative to its folder */
	SET_INT,	/* a whole number in [se_min, se_max], stored times se_scale */
	SET_BOOL	/* yes or no; a flag without value on the command line */
};

struct setting {
	const char		*se_name;	/* the key, and the long option */
	int			 se_short;	/* its short option, or 0 */
	enum setting_type	 se_type;
	size_t			 se_off;	/* where it is in struct gw_config */
	size_t			 se_size;	/* and its size */
	const char		*se_arg;	/* what --help calls its value */
	long long		 se_min, se_max;
	long long		 se_scale;
	long long		 se_num;	/* the default of a number or yes/no */
	const char		*se_demo;	/* the default text, run from the build tree */
	const char		*se_installed;	/* installed: an absolute path; NULL: se_demo */
	bool			 se_live;	/* SIGHUP applies a new value */
	bool			 se_empty_ok;	/* a path may be "" (none) */
	const char		*se_help;
	const char		*se_fix;	/* what a start error of it asks for, or NULL */
};

#define SET_FIELD(f)	offsetof(struct gw_config, f), sizeof(((struct gw_config *)0)->f)
#define LIVE		true
#define RESTART		false
#define S_STR(name, f, arg, def, live, help, fix) \
	{ name, 0, SET_STR, SET_FIELD(f), arg, 0, 0, 1, 0, def, NULL, live, false, help, fix }
#define S_PATH(name, f, arg, demo, inst, live, help, fix) \
	{ name, 0, SET_PATH, SET_FIELD(f), arg, 0, 0, 1, 0, demo, inst, live, false, help, fix }
#define S_INT(name, f, arg, min, max, scale, def, live, help) \
	{ name, 0, SET_INT, SET_FIELD(f), arg, min, max, scale, def, NULL, NULL, live, false, \
	  help, NULL }
#define S_BOOL(name, shrt, f, def, live, help) \
	{ name, shrt, SET_BOOL, SET_FIELD(f), NULL, 0, 1, 1, def, NULL, NULL, live, false, help, \
	  NULL }

/*
 * Every setting of lianband.  docs/operations.md and the lianband(8) and
 * lianband.conf(5) pages describe each of them; tests/test_manpages.sh
 * checks that none is missing there.
 */
static const struct setting settings_table[] = {
	S_STR("listen", gc_listen, "HOST:PORT", "127.0.0.1:8443", RESTART,
	    "HTTPS address; port 0 picks one", "name a free address of this host"),
	{ "metrics", 0, SET_STR, SET_FIELD(gc_metrics), "HOST:PORT", 0, 0, 1, 0, "", NULL,
	  RESTART, true, "plaintext Prometheus listener answering GET /metrics, best on a "
	  "loopback address; \"\" (the default) for none",
	  "name a free address of this host" },
	S_PATH("data", gc_data, "DIR", "var", LB_LOCALSTATEDIR "/lib/lianban", RESTART,
	    "journal and registry folder (LMDB, created mode 0700)",
	    "make the folder, or its parent, writable by the user lianband runs as"),
	S_PATH("certs", gc_certs, "DIR", "certs/demo", LB_SYSCONFDIR "/lianban/certs", RESTART,
	    "PKI folder laid out as certs/mkdemo makes it",
	    "put the gateway's PKI there (docs/operations.md), or run certs/mkdemo DIR "
	    "(installed: lianban-mkdemo DIR) for a demo one"),
	S_PATH("policies", gc_policies, "DIR", "policies", LB_SYSCONFDIR "/lianban/policies",
	    LIVE, "bundle policies, *.json", "correct the file"),
	S_PATH("adapters", gc_adapters, "DIR", "adapters/specs",
	    LB_SYSCONFDIR "/lianban/adapters/specs", LIVE, "adapter specs, *.json",
	    "correct the file"),
	{ "endpoints", 0, SET_PATH, SET_FIELD(gc_endpoints), "FILE", 0, 0, 1, 0,
	  "adapters/endpoints.json", LB_SYSCONFDIR "/lianban/endpoints.json", LIVE, true,
	  "hosts and networks each department's adapters registered through the API may "
	  "reach; without the default file, or with \"\", they reach none", "correct the file" },
	{ "crl", 0, SET_PATH, SET_FIELD(gc_crl), "FILE", 0, 0, 1, 0, "", NULL, LIVE, true,
	  "CRLs (PEM) of the client CA, checked for every client certificate and reloaded "
	  "with it on SIGHUP; \"\" (the default) reads CERTS/client-ca.crl when it exists",
	  "give the client CA's CRLs, each signed by its CA" },
	S_STR("id", gc_id, "GATEWAY_ID", "lianban-demo", RESTART,
	    "gateway id: the consent audience and the checkpoint origin", NULL),
	S_INT("workers", gc_workers, "N", 1, 64, 1, 2, RESTART, "crypto worker threads"),
	S_INT("loops", gc_loops, "N", 0, 64, 1, 0, RESTART,
	    "event loops serving the API, each on its own thread; 0 (the default) runs "
	    "one per core"),
	{ "node", 0, SET_STR, SET_FIELD(gc_node), "NODE_ID", 0, 0, 1, 0, "", NULL, RESTART,
	  true, "this node's id in a cluster; checkpoints then name GATEWAY_ID/NODE_ID as "
	  "their origin", "give each node of the cluster its own id" },
	{ "etcd", 0, SET_STR, SET_FIELD(gc_etcd), "URL[,URL...]", 0, 0, 1, 0, "", NULL,
	  RESTART, true, "etcd v3 client endpoints of the cluster's consent store; "" (the "
	  "default) runs a single node on its own LMDB", "name the etcd members' client URLs" },
	{ "peers", 0, SET_STR, SET_FIELD(gc_peers), "NODE_ID=HOST:PORT[,...]", 0, 0, 1, 0, "",
	  NULL, RESTART, true, "the other nodes' API listeners, for witnessing and cluster-wide "
	  "reads", "write NODE_ID=HOST:PORT pairs separated by commas" },
	S_INT("seal-window", gc_seal_window_us, "MS", 0, 1000, 1000, SEALER_WINDOW_US / 1000,
	    LIVE, "how long seal claims wait for others to share their batch signature "
	    "while exchanges are in flight; 0 signs every claim alone"),
	S_INT("seal-batch", gc_seal_batch, "N", 1, SEALER_MAX_BATCH, 1, SEALER_MAX_BATCH, LIVE,
	    "claims per seal batch at most"),
	S_INT("client-rate", gc_client_rate, "N", 1, 1000000, 1, THROTTLE_RATE_DEFAULT, LIVE,
	    "requests per second of each client certificate"),
	S_INT("client-burst", gc_client_burst, "N", 1, 1000000, 1, THROTTLE_BURST_DEFAULT, LIVE,
	    "requests a client may send at once beyond its rate"),
	S_INT("registry-ids", gc_reg_ids, "N", 1, REG_QUOTA_IDS_MAX, 1, REG_QUOTA_IDS, LIVE,
	    "adapter ids each department may register"),
	S_INT("registry-versions", gc_reg_versions, "N", 1, 1000000, 1, REG_QUOTA_VERSIONS, LIVE,
	    "versions of an id the registry keeps; older ones are removed, their hashes stay "
	    "in the journal"),
	S_INT("registry-bytes", gc_reg_bytes, "N", 1024, 1 << 30, 1, REG_QUOTA_BYTES, LIVE,
	    "bytes of specs each department may store in the registry"),
	S_PATH("console", gc_console, "DIR", "console", LB_CONSOLE_DIR, RESTART,
	    "the audit console's files, served at /console/ (run from the build tree: "
	    "./console when it exists, else the installed copy)",
	    "correct the files, or name the installed console"),
	S_INT("shutdown-grace", gc_shutdown_grace, "SECONDS", 1, 3600, 1, 30, LIVE,
	    "how long SIGTERM waits for the exchanges in flight before it gives up on them"),
	S_INT("journal-map-max", gc_journal_map_max, "KIB", 0, (long long)1 << 42, 1024, 0,
	    LIVE, "the most the journal's LMDB map may grow to; past it exchanges fail "
	    "with journal_unavailable, and from 90% of it /v1/ready answers 503; 0 (the "
	    "default) sets no limit"),
	S_STR("log-format", gc_log_format, "FORMAT", "text", RESTART,
	    "log lines as text, or one structured event a line: logfmt or json",
	    "write text, logfmt or json"),
	S_STR("log-target", gc_log_target, "TARGET", "stderr", RESTART,
	    "where the log goes: stderr or syslog", "write stderr or syslog"),
	S_BOOL("verbose", 'v', gc_verbose, 0, LIVE, "log every exchange state transition"),
};
#define SETTINGS_N	(sizeof(settings_table) / sizeof(settings_table[0]))
_Static_assert(SETTINGS_N <= SETTINGS_MAX, "raise SETTINGS_MAX in gateway.h");

/* One setting given on the command line, in the order given. */
struct settings_arg {
	size_t		 sa_i;		/* index in settings_table */
	const char	*sa_val;	/* argv's, "yes" for a flag */
};

struct settings {
	bool			 st_installed;	/* the installed defaults */
	bool			 st_print;	/* --print-config */
	const char		*st_backup;	/* --backup DEST, or NULL */
	const char		*st_config;	/* --config FILE, or NULL */
	struct settings_arg	*st_args;
	size_t			 st_nargs;
};

/* The config file being read. */
struct settings_file {
	FILE			*sf_fp;
	const char		*sf_path;
	char			 sf_dir[PATH_MAX];	/* its folder, for relative paths */
	struct gw_config	*sf_gc;
	int			 sf_line;		/* the line inih is at */
	int			 sf_err_line;		/* the first error's, 0: none */
	char			 sf_err[PATH_MAX + 256];
	char			*sf_buf;		/* the line as read */
	size_t			 sf_cap;
};

static void *
settings_at(const struct setting *se, const struct gw_config *gc)
{
	return (char *)gc + se->se_off;
}

static long long
settings_get_num(const struct setting *se, const struct gw_config *gc)
{
	uint32_t	v32;
	uint64_t	v64;

	if (se->se_size == sizeof(v32)) {
		memcpy(&v32, settings_at(se, gc), sizeof(v32));
		return (long long)v32;
	}
	memcpy(&v64, settings_at(se, gc), sizeof(v64));
	return (long long)v64;
}

/* Numbers of 4 and 8 bytes, signed or not: every value is in [0, se_max * se_scale]. */
static void
settings_put_num(const struct setting *se, struct gw_config *gc, long long v)
{
	uint32_t	v32 = (uint32_t)v;
	uint64_t	v64 = (uint64_t)v;

	if (se->se_size == sizeof(v32))
		memcpy(settings_at(se, gc), &v32, sizeof(v32));
	else
		memcpy(settings_at(se, gc), &v64, sizeof(v64));
}

/* The value of se in gc as the config file would write it. */
static void
settings_format(const struct setting *se, const struct gw_config *gc, char *buf, size_t len)
{
	switch (se->se_type) {
	case SET_STR:
	case SET_PATH:
		snprintf(buf, len, "%s", (const char *)settings_at(se, gc));
		break;
	case SET_INT:
		snprintf(buf, len, "%lld", settings_get_num(se, gc) / se->se_scale);
		break;
	case SET_BOOL:
		snprintf(buf, len, "%s", settings_get_num(se, gc) != 0 ? "yes" : "no");
		break;
	}
}

static bool
settings_equal(const struct setting *se, const struct gw_config *a, const struct gw_config *b)
{
	if (se->se_type == SET_STR || se->se_type == SET_PATH)
		return strcmp(settings_at(se, a), settings_at(se, b)) == 0;
	return settings_get_num(se, a) == settings_get_num(se, b);
}

static const struct setting *
settings_find(const char *name)
{
	size_t	i;

	for (i = 0; i < SETTINGS_N; i++)
		if (strcmp(settings_table[i].se_name, name) == 0)
			return &settings_table[i];
	return NULL;
}

/* The unit of a number, for messages. */
static const char *
settings_unit(const struct setting *se)
{
	if (strcmp(se->se_arg, "MS") == 0)
		return " ms";
	if (strcmp(se->se_arg, "SECONDS") == 0)
		return " s";
	return "";
}

/*
 * Stores val as se in gc; a relative path is taken from reldir when it is
 * not NULL.  -1 with the reason in err (without the setting's name).
 */
static int
settings_set(const struct setting *se, struct gw_config *gc, const char *val,
    const char *reldir, char *err, size_t errlen)
{
	char		*end;
	long long	 v;
	int		 n;

	switch (se->se_type) {
	case SET_STR:
	case SET_PATH:
		if (val[0] == '\0' && !se->se_empty_ok) {
			snprintf(err, errlen, "needs a value");
			return -1;
		}
		if (se->se_type == SET_PATH && reldir != NULL && val[0] != '/' && val[0] != '\0')
			n = snprintf(settings_at(se, gc), se->se_size, "%s/%s", reldir, val);
		else
			n = snprintf(settings_at(se, gc), se->se_size, "%s", val);
		if (n < 0 || (size_t)n >= se->se_size) {
			snprintf(err, errlen, "longer than %zu bytes", se->se_size - 1);
			return -1;
		}
		return 0;
	case SET_INT:
		errno = 0;
		v = strtoll(val, &end, 10);
		if (errno != 0 || end == val || *end != '\0' || val[0] == '+' || val[0] == '-' ||
		    v < se->se_min || v > se->se_max) {
			snprintf(err, errlen, "must be %lld to %lld%s, not \"%s\"", se->se_min,
			    se->se_max, settings_unit(se), val);
			return -1;
		}
		settings_put_num(se, gc, v * se->se_scale);
		return 0;
	case SET_BOOL:
		if (strcmp(val, "yes") == 0 || strcmp(val, "true") == 0 || strcmp(val, "on") == 0 ||
		    strcmp(val, "1") == 0)
			v = 1;
		else if (strcmp(val, "no") == 0 || strcmp(val, "false") == 0 ||
		    strcmp(val, "off") == 0 || strcmp(val, "0") == 0)
			v = 0;
		else {
			snprintf(err, errlen, "must be yes or no, not \"%s\"", val);
			return -1;
		}
		settings_put_num(se, gc, v);
		return 0;
	}
	return -1;
}

/*
 * Where lianband runs from: true unless it is the binary of its build tree
 * (LB_BUILDDIR).  A copy whose path cannot be told counts as installed, the
 * safe side for a package started by a service manager.
 */
static bool
settings_is_installed(void)
{
	char	exe[PATH_MAX], tree[PATH_MAX];
	size_t	n;

	if (realpath("/proc/self/exe", exe) == NULL || realpath(LB_BUILDDIR, tree) == NULL)
		return true;
	n = strlen(tree);
	return !(strncmp(exe, tree, n) == 0 && exe[n] == '/');
}

static void
settings_defaults(const struct settings *st, struct gw_config *gc)
{
	const struct setting	*se;
	const char		*def;
	char			 why[64];
	size_t			 i;

	memset(gc, 0, sizeof(*gc));
	for (i = 0; i < SETTINGS_N; i++) {
		se = &settings_table[i];
		if (se->se_type == SET_INT || se->se_type == SET_BOOL) {
			settings_put_num(se, gc, se->se_num * se->se_scale);
			continue;
		}
		def = st->st_installed && se->se_installed != NULL ? se->se_installed : se->se_demo;
		/*
		 * The table's defaults fit their fields: the demo's are short, the
		 * installed ones are configure's folders, far below 512 bytes.
		 */
		(void)settings_set(se, gc, def, NULL, why, sizeof(why));
	}
	/* From the build tree, the tree's console when there is one; otherwise the installed. */
	if (!st->st_installed && access("console/index.html", R_OK) != 0)
		snprintf(gc->gc_console, sizeof(gc->gc_console), "%s", LB_CONSOLE_DIR);
}

static void
settings_usage_line(FILE *f, const char *left, const char *help)
{
	const char	*p = help, *brk, *q;
	size_t		 room = SETTINGS_WIDTH - SETTINGS_HELP_COL;
	int		 col;

	col = fprintf(f, "  %s", left);
	while (*p != '\0') {
		if (col >= SETTINGS_HELP_COL) {
			fputc('\n', f);
			col = 0;
		}
		fprintf(f, "%*s", SETTINGS_HELP_COL - col, "");
		/* The longest run of words that fits the room. */
		brk = NULL;
		for (q = p; *q != '\0' && (size_t)(q - p) <= room; q++)
			if (*q == ' ')
				brk = q;
		if (*q == '\0' && (size_t)(q - p) <= room)
			brk = q;
		else if (brk == NULL)
			brk = q;
		fprintf(f, "%.*s", (int)(brk - p), p);
		col = SETTINGS_WIDTH;
		p = *brk == ' ' ? brk + 1 : brk;
	}
	fputc('\n', f);
}

static void
settings_usage(FILE *f, const struct settings *st)
{
	const struct setting	*se;
	struct gw_config	*gc;
	char			 left[64], val[PATH_MAX], help[PATH_MAX + 1024];
	size_t			 i, n;

	fprintf(f,
	    "usage: lianband [options]\n"
	    "\n"
	    "The lianban data-exchange gateway.  With no options, run from its build\n"
	    "tree, it runs the demo platform on its embedded defaults.\n"
	    "\n");
	settings_usage_line(f, "--config FILE", "settings file, KEY = VALUE lines; every "
	    "option below but --print-config, --version and --help is also a key "
	    "(default " SETTINGS_CONF " when lianband is installed and that file exists)");
	if ((gc = malloc(sizeof(*gc))) == NULL)
		return;
	settings_defaults(st, gc);
	for (i = 0; i < SETTINGS_N; i++) {
		se = &settings_table[i];
		if (se->se_short != 0)
			snprintf(left, sizeof(left), "-%c, --%s", se->se_short, se->se_name);
		else
			snprintf(left, sizeof(left), "--%s %s", se->se_name,
			    se->se_arg != NULL ? se->se_arg : "");
		settings_format(se, gc, val, sizeof(val));
		if (se->se_type == SET_INT)
			snprintf(help, sizeof(help), "%s (%lld to %lld, default %s)", se->se_help,
			    se->se_min, se->se_max, val);
		else if (se->se_type == SET_BOOL)
			snprintf(help, sizeof(help), "%s", se->se_help);
		else
			snprintf(help, sizeof(help), "%s (default %s)", se->se_help, val);
		settings_usage_line(f, left, help);
	}
	free(gc);
	settings_usage_line(f, "--print-config", "print the settings in force as "
	    "lianband.conf lines and exit; a wrong setting exits 1 with the reason");
	settings_usage_line(f, "--backup DEST", "copy the journal and registry of the data "
	    "folder into the new folder DEST, also while a daemon runs on it, and exit "
	    "(docs/operations.md)");
	settings_usage_line(f, "-V, --version", "print the version and exit");
	settings_usage_line(f, "-h, --help", "this text");
	fprintf(f, "\nSignals: SIGHUP reads the config file again and reloads trust, policies,\n"
	    "adapters and the endpoint list; of the settings, these need a restart:\n  ");
	for (i = n = 0; i < SETTINGS_N; i++)
		if (!settings_table[i].se_live)
			fprintf(f, "%s%s", n++ == 0 ? "" : ", ", settings_table[i].se_name);
	fprintf(f, ".\nSIGTERM and SIGINT finish the exchanges in flight, commit the journal\n"
	    "and exit.\n");
}

int
settings_args(int argc, char **argv, struct settings **out)
{
	struct option		 opts[SETTINGS_N + 6];
	struct settings		*st;
	struct gw_config	*scratch = NULL;
	const struct setting	*se;
	char			 shorts[2 * SETTINGS_N + 4], why[256];
	size_t			 i, n = 0, ns = 0;
	int			 ch, ret = -1;

	*out = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->st_args = calloc((size_t)argc + 1, sizeof(*st->st_args))) == NULL ||
	    (scratch = calloc(1, sizeof(*scratch))) == NULL) {
		fprintf(stderr, "lianband: out of memory\n");
		goto done;
	}
	st->st_installed = settings_is_installed();
	for (i = 0; i < SETTINGS_N; i++) {
		se = &settings_table[i];
		opts[n++] = (struct option){ se->se_name,
		    se->se_type == SET_BOOL ? no_argument : required_argument, NULL,
		    OPT_SETTING + (int)i };
		if (se->se_short != 0)
			shorts[ns++] = (char)se->se_short;
	}
	opts[n++] = (struct option){ "config", required_argument, NULL, OPT_CONFIG };
	opts[n++] = (struct option){ "print-config", no_argument, NULL, OPT_PRINT };
	opts[n++] = (struct option){ "backup", required_argument, NULL, OPT_BACKUP };
	opts[n++] = (struct option){ "version", no_argument, NULL, 'V' };
	opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[n] = (struct option){ NULL, 0, NULL, 0 };
	memcpy(shorts + ns, "Vh", 3);
	/* From the start, also when a test parses a second command line. */
	optind = 0;
	while ((ch = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		for (i = 0; i < SETTINGS_N && ch < OPT_SETTING; i++)
			if (settings_table[i].se_short == ch)
				ch = OPT_SETTING + (int)i;
		switch (ch) {
		case OPT_CONFIG:
			st->st_config = optarg;
			break;
		case OPT_PRINT:
			st->st_print = true;
			break;
		case OPT_BACKUP:
			st->st_backup = optarg;
			break;
		case 'V':
			printf("lianband %s\n", PACKAGE_VERSION);
			ret = 1;
			goto done;
		case 'h':
			settings_usage(stdout, st);
			ret = 1;
			goto done;
		default:
			if (ch < OPT_SETTING || ch >= OPT_SETTING + (int)SETTINGS_N) {
				settings_usage(stderr, st);
				goto done;
			}
			se = &settings_table[ch - OPT_SETTING];
			st->st_args[st->st_nargs].sa_i = (size_t)(ch - OPT_SETTING);
			st->st_args[st->st_nargs].sa_val = se->se_type == SET_BOOL ? "yes" : optarg;
			/* Checked now, so that a wrong value is a usage error. */
			if (settings_set(se, scratch, st->st_args[st->st_nargs].sa_val, NULL, why,
			    sizeof(why)) != 0) {
				fprintf(stderr, "lianband: --%s %s\n", se->se_name, why);
				goto done;
			}
			st->st_nargs++;
			break;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "lianband: unexpected argument: %s\n", argv[optind]);
		settings_usage(stderr, st);
		goto done;
	}
	*out = st;
	st = NULL;
	ret = 0;
done:
	free(scratch);
	settings_free(st);
	return ret;
}

void
settings_free(struct settings *st)
{
	if (st == NULL)
		return;
	free(st->st_args);
	free(st);
}

const char *
settings_backup(const struct settings *st)
{
	return st->st_backup;
}

bool
settings_print_only(const struct settings *st)
{
	return st->st_print;
}

static int
settings_file_error(struct settings_file *sf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Keeps the first error of the file, which is the one reported. */
static int
settings_file_error(struct settings_file *sf, const char *fmt, ...)
{
	va_list	ap;

	if (sf->sf_err_line != 0)
		return 1;
	sf->sf_err_line = sf->sf_line;
	va_start(ap, fmt);
	vsnprintf(sf->sf_err, sizeof(sf->sf_err), fmt, ap);
	va_end(ap);
	return 1;
}

/*
 * inih's line reader.  It counts the lines, so that the handler knows the
 * line of each key, and refuses a line too long for inih's buffer rather
 * than let inih cut it in two.
 */
static char *
settings_file_reader(char *str, int num, void *stream)
{
	struct settings_file	*sf = stream;
	ssize_t			 n;
	size_t			 len;

	if ((n = getline(&sf->sf_buf, &sf->sf_cap, sf->sf_fp)) < 0)
		return NULL;
	sf->sf_line++;
	len = (size_t)n;
	if (len > 0 && sf->sf_buf[len - 1] == '\n')
		len--;
	if (strlen(sf->sf_buf) != (size_t)n || num < 3 || len > (size_t)num - 3) {
		settings_file_error(sf, strlen(sf->sf_buf) != (size_t)n ? "the line holds a NUL "
		    "byte" : "the line is longer than %d characters", num - 3);
		snprintf(str, (size_t)num, "\n");
		return str;
	}
	memcpy(str, sf->sf_buf, (size_t)n + 1);
	return str;
}

static int
settings_file_entry(void *arg, const char *section, const char *name, const char *value)
{
	struct settings_file	*sf = arg;
	const struct setting	*se;
	char			 why[PATH_MAX];
	size_t			 i;

	if (section[0] != '\0')
		return settings_file_error(sf, "lianband.conf has no sections; put \"%s\" "
		    "before any [%s] line", name, section);
	if ((se = settings_find(name)) == NULL)
		return settings_file_error(sf, "unknown key \"%s\"", name);
	i = (size_t)(se - settings_table);
	if (sf->sf_gc->gc_from[i] > 0)
		return settings_file_error(sf, "%s is set twice (also on line %d)", name,
		    sf->sf_gc->gc_from[i]);
	if (settings_set(se, sf->sf_gc, value, sf->sf_dir, why, sizeof(why)) != 0)
		return settings_file_error(sf, "%s %s", name, why);
	sf->sf_gc->gc_from[i] = sf->sf_line;
	return 1;
}

/* Reads path into gc.  -1 with "path:line: reason" in err. */
static int
settings_read_file(const char *path, struct gw_config *gc, char *err, size_t errlen)
{
	struct settings_file	 sf;
	const char		*slash;
	int			 rc, ret = -1;

	memset(&sf, 0, sizeof(sf));
	sf.sf_path = path;
	sf.sf_gc = gc;
	if ((slash = strrchr(path, '/')) == NULL)
		snprintf(sf.sf_dir, sizeof(sf.sf_dir), ".");
	else if (slash == path)
		snprintf(sf.sf_dir, sizeof(sf.sf_dir), "/");
	else
		snprintf(sf.sf_dir, sizeof(sf.sf_dir), "%.*s", (int)(slash - path), path);
	if (strlcpy_chk(gc->gc_file, path, sizeof(gc->gc_file)) != 0) {
		snprintf(err, errlen, "%s: the path is too long", path);
		goto done;
	}
	if ((sf.sf_fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		goto done;
	}
	rc = ini_parse_stream(settings_file_reader, &sf, settings_file_entry, &sf);
	if (ferror(sf.sf_fp)) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		goto done;
	}
	/* inih reports the first line it could not parse; the handler, the first it refused. */
	if (rc > 0 && (sf.sf_err_line == 0 || rc < sf.sf_err_line)) {
		snprintf(err, errlen, "%s:%d: not a KEY = VALUE line", path, rc);
		goto done;
	}
	if (sf.sf_err_line != 0) {
		snprintf(err, errlen, "%s:%d: %s", path, sf.sf_err_line, sf.sf_err);
		goto done;
	}
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot parse (inih error %d)", path, rc);
		goto done;
	}
	ret = 0;
done:
	if (sf.sf_fp != NULL)
		fclose(sf.sf_fp);
	free(sf.sf_buf);
	return ret;
}

int
settings_load(const struct settings *st, struct gw_config *gc, char *err, size_t errlen)
{
	const struct settings_arg	*sa;
	const char			*file = st->st_config;
	char				 why[256];
	size_t				 i;

	settings_defaults(st, gc);
	if (file == NULL && st->st_installed && access(SETTINGS_CONF, F_OK) == 0)
		file = SETTINGS_CONF;
	if (file != NULL && settings_read_file(file, gc, err, errlen) != 0)
		return -1;
	for (i = 0; i < st->st_nargs; i++) {
		sa = &st->st_args[i];
		if (settings_set(&settings_table[sa->sa_i], gc, sa->sa_val, NULL, why,
		    sizeof(why)) != 0) {
			snprintf(err, errlen, "--%s %s", settings_table[sa->sa_i].se_name, why);
			return -1;
		}
		gc->gc_from[sa->sa_i] = SETTINGS_FROM_ARGS;
	}
	gc->gc_endpoints_given =
	    gc->gc_from[settings_find("endpoints") - settings_table] != SETTINGS_FROM_DEFAULT;
	return 0;
}

/*
 * The lines read back as a config file give the same settings: a relative
 * path, which the file would take from its own folder, is written from the
 * working directory.
 */
void
settings_print(FILE *f, const struct gw_config *gc)
{
	const struct setting	*se;
	char			 val[PATH_MAX], cwd[PATH_MAX];
	size_t			 i;

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		snprintf(cwd, sizeof(cwd), ".");
	fprintf(f, "# the settings of lianband %s, from %s\n", PACKAGE_VERSION,
	    gc->gc_file[0] != '\0' ? gc->gc_file : "the defaults and the command line");
	for (i = 0; i < SETTINGS_N; i++) {
		se = &settings_table[i];
		settings_format(se, gc, val, sizeof(val));
		fprintf(f, "%s = %s%s%s\n", se->se_name,
		    se->se_type == SET_PATH && val[0] != '/' && val[0] != '\0' ? cwd : "",
		    se->se_type == SET_PATH && val[0] != '/' && val[0] != '\0' ? "/" : "", val);
	}
}

/* Where setting i of gc came from, for a log line. */
static void
settings_origin(const struct gw_config *gc, size_t i, char *buf, size_t len)
{
	if (gc->gc_from[i] > 0)
		snprintf(buf, len, "from %s line %d", gc->gc_file, gc->gc_from[i]);
	else if (gc->gc_from[i] == SETTINGS_FROM_ARGS)
		snprintf(buf, len, "from the command line");
	else
		snprintf(buf, len, "the default");
}

void
settings_hint(const struct gw_config *gc, const char *fallback, const char *msg, char *buf,
    size_t len)
{
	const struct setting	*se, *best = NULL;
	const char		*v;
	char			 val[PATH_MAX], from[PATH_MAX + 32];
	size_t			 i, n, bestlen = 0;

	/* The path setting that the message starts with names the file. */
	for (i = 0; i < SETTINGS_N; i++) {
		se = &settings_table[i];
		v = settings_at(se, gc);
		if (se->se_type != SET_PATH || (n = strlen(v)) == 0 || n <= bestlen ||
		    strncmp(msg, v, n) != 0 || (msg[n] != '/' && msg[n] != ':'))
			continue;
		best = se;
		bestlen = n;
	}
	if (best == NULL && (best = settings_find(fallback)) == NULL) {
		buf[0] = '\0';
		return;
	}
	i = (size_t)(best - settings_table);
	settings_format(best, gc, val, sizeof(val));
	settings_origin(gc, i, from, sizeof(from));
	snprintf(buf, len, "%s%sor set %s in %s or --%s (now %s, %s)",
	    best->se_fix != NULL ? best->se_fix : "", best->se_fix != NULL ? ", " : "",
	    best->se_name, gc->gc_file[0] != '\0' ? gc->gc_file : "lianband.conf",
	    best->se_name, val, from);
}

void
settings_merge(struct gw_config *dst, const struct gw_config *src)
{
	const struct setting	*se;
	size_t			 i;

	for (i = 0; i < SETTINGS_N; i++) {
		se = &settings_table[i];
		if (!se->se_live)
			continue;
		memcpy(settings_at(se, dst), settings_at(se, src), se->se_size);
		dst->gc_from[i] = src->gc_from[i];
	}
	dst->gc_endpoints_given = src->gc_endpoints_given;
	memcpy(dst->gc_file, src->gc_file, sizeof(dst->gc_file));
}

void
settings_apply(struct gw *gw, const struct gw_config *next)
{
	const struct setting	*se;
	struct gw_config	*gc = &gw->gw_conf;
	char			 was[PATH_MAX], now[PATH_MAX], from[PATH_MAX + 32];
	size_t			 i;

	for (i = 0; i < SETTINGS_N; i++) {
		se = &settings_table[i];
		if (settings_equal(se, gc, next))
			continue;
		settings_format(se, gc, was, sizeof(was));
		settings_format(se, next, now, sizeof(now));
		settings_origin(next, i, from, sizeof(from));
		if (se->se_live)
			log_info("settings: %s = %s (%s), was %s", se->se_name, now, from, was);
		else
			log_warnx("settings: %s = %s (%s) needs a restart; keeping %s", se->se_name,
			    now, from, was);
	}
	settings_merge(gc, next);
	throttle_set(gw->gw_throttle, gc->gc_client_rate, gc->gc_client_burst);
	sealer_set(gw->gw_sealer, gc->gc_seal_window_us, gc->gc_seal_batch);
	registry_keep(gw->gw_registry, gc->gc_reg_versions);
	if (gw->gw_journal != NULL)
		journal_set_map_max(gw->gw_journal, gc->gc_journal_map_max);
	log_set_verbose(gc->gc_verbose);
	loops_settings(gw);
}
