/*
 * lianctl.c - the command-line client of lianban.
 *
 * One program for the parties that talk to the gateway from a shell: a
 * consumer fetching certificates (fetch), an auditor pulling and checking
 * the journal (journal checkpoint, pull, verify), anyone holding a saved
 * answer who wants to check its seals offline (seal verify), and anyone
 * asking whether the gateway is up (health).  For demos and tests it also
 * plays the face-auth authority (consent issue), which in production is a
 * separate platform holding its own keys.  Departments and admins manage
 * adapters and policies (lianctl_admin.c), admins and authorities revoke
 * consent (lianctl_consent.c), and a citizen's app reads the access report
 * (lianctl_access.c).
 *
 * Every network call is one blocking HTTPS/1.1 request on its own
 * connection.  The client sends "Connection: close", so the end of the
 * gateway's answer ends the conversation and no state survives a call;
 * a command that needs many calls (journal verify) simply connects again.
 * All cryptography and encodings come from the core library, so lianctl
 * checks answers with exactly the rules the gateway signs them with.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "lianban.h"
#include "lianctl.h"



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
 * Usage texts.  Each command prints its own with --help; the main text is
 * the index.
 */
static const char usage_main[] =
"usage: lianctl [global options] COMMAND [options]\n"
"\n"
"Client of the lianban data-exchange gateway.\n"
"\n"
"Commands:\n"
"  health                 show the gateway's health\n"
"  consent issue          sign a consent token as a face-auth authority (demos, tests)\n"
"  consent revoke         revoke a consent token, or a citizen's consent to a bundle\n"
"  fetch                  fetch certificates for citizens in one exchange\n"
"  seal verify FILE       verify the seals of a saved fetch answer, offline\n"
"  journal checkpoint     fetch and verify the journal's signed checkpoint\n"
"  journal pull           download the journal records that match filters\n"
"  journal verify         recompute the whole journal and check it against the checkpoint\n"
"  access report          a citizen's own access report: who accessed their data\n"
"  adapter register FILE  register a department adapter spec (a new version)\n"
"  adapter list           list adapters (a department its own, the admin all)\n"
"  adapter show ID        show an adapter and its spec\n"
"  adapter disable ID     disable an adapter of the caller's department\n"
"  policy load FILE       load a bundle policy (admin; a new version)\n"
"  policy list            list the bundle policies in force\n"
"  policy show BUNDLE     show a bundle policy\n"
"\n"
"Global options (also accepted after the command):\n"
"  --gateway HOST:PORT    gateway address (default 127.0.0.1:8443)\n"
"  --cert PEM             client certificate; required by fetch and journal\n"
"  --key PEM              its private key (mode 600)\n"
"  --certs DIR            demo PKI directory (default certs/demo); gives the defaults\n"
"                         DIR/client-ca.pem, DIR/seal-root.pem, DIR/journal/checkpoint.pem\n"
"  --ca PEM               CA of the gateway's TLS certificate (default DIR/client-ca.pem)\n"
"  --timeout SECONDS      network timeout per connect, read and write (default 30)\n"
"  --json                 print reports as JSON\n"
"  --quiet                print only failures\n"
"  --help                 this text; \"lianctl COMMAND --help\" describes a command\n"
"\n"
"Exit status: 0 success; 1 refused or failed operation (HTTP status >= 400,\n"
"failed verification); 2 usage error.\n";

static const char usage_health[] =
"usage: lianctl [global options] health\n"
"\n"
"Prints the gateway's health (GET /v1/health) as JSON.  --cert and --key are\n"
"optional for this command.\n";

static const char usage_consent_issue[] =
"usage: lianctl consent issue --authority KEY --authority-cert PEM --sub ID\n"
"           --azp CONSUMER --bundle BUNDLE --items ITEM[,ITEM...] [options]\n"
"\n"
"Plays the face-auth authority (demos and tests): signs a consent token\n"
"(DESIGN section 5) and prints it as base64url on standard output.\n"
"\n"
"  --authority KEY        the authority's private key (PEM, mode 600; P-256 for\n"
"                         ES256, Ed25519 for EdDSA, or SM2)\n"
"  --authority-cert PEM   its certificate: iss is its CN, kid its key id\n"
"  --sub ID               the citizen whose data is fetched\n"
"  --azp CONSUMER         the consumer allowed to use the token\n"
"  --bundle BUNDLE        bundle id, e.g. newborn\n"
"  --items LIST           comma-separated item types the citizen agrees to share\n"
"  --aud ID               gateway id (default lianban-demo)\n"
"  --act ID               whose face was verified (default: the --sub)\n"
"  --rel self|guardian    relation of act to sub (default self)\n"
"  --amr LIST             comma-separated authentication methods (default face)\n"
"  --liveness N           liveness score x1000 (default 990)\n"
"  --match N              face match score x1000 (default 985)\n"
"  --ttl SECONDS          lifetime: exp = iat + ttl (default 300)\n"
"  --iat UNIX             issued at (default now)\n"
"  --exp UNIX             expires at (default iat + ttl)\n"
"  --jti HEX32            token id, 32 hex digits (default 16 random bytes)\n"
"  --iss ID               issuer id (default the certificate's CN)\n"
"  --json                 print {\"token\": ..., \"claims\": {...}} instead\n";

static const char usage_fetch[] =
"usage: lianctl [global options] fetch --bundle BUNDLE\n"
"           --subject ID --items LIST --consent TOKEN [--subject ...]\n"
"           [--out FILE] [--save-raw FILE] [--msgpack]\n"
"\n"
"Fetches certificates in one exchange (POST /v1/exchanges; consumer role) and\n"
"prints the gateway's answer as JSON.  Each subject takes its own --items and\n"
"--consent; give the three again for every further subject.\n"
"\n"
"  --bundle BUNDLE    bundle id, e.g. newborn\n"
"  --subject ID       the citizen whose certificates are fetched\n"
"  --items LIST       comma-separated item types\n"
"  --consent TOKEN    the subject's consent token (base64url); @FILE reads it\n"
"                     from FILE, @- from standard input\n"
"  --out FILE         also write the answer to FILE (for \"lianctl seal verify\")\n"
"  --save-raw FILE    write the gateway's answer body, unchanged, to FILE\n"
"  --msgpack          send and accept application/msgpack (the output stays JSON)\n"
"  --quiet            print nothing on standard output (use with --out)\n"
"\n"
"Items the gateway could not serve are listed on standard error.  The exit\n"
"status is 0 whenever the gateway accepted the request, even if some items\n"
"failed: their \"status\" says why.\n";

static const char usage_seal_verify[] =
"usage: lianctl [global options] seal verify FILE [--seal-root PEM]\n"
"\n"
"Verifies, offline, the seal of every document in a saved fetch answer (JSON\n"
"as written by \"fetch --out\", or msgpack); FILE \"-\" reads standard input.\n"
"A document passes when it equals its sealed bytes, the seal claim holds its\n"
"digest and names its item and exchange, the Merkle path leads to the signed\n"
"batch root, the batch signature verifies, and the seal certificate chains to\n"
"the seal root and was valid at the sealing time (iat); each check is listed.\n"
"\n"
"  --seal-root PEM    trusted seal root certificates (default DIR/seal-root.pem)\n"
"  --json             print the verdicts as JSON\n"
"  --quiet            print only the documents that fail\n"
"\n"
"Exit status 1 when any seal fails, or when FILE holds no sealed document.\n";

static const char usage_journal_checkpoint[] =
"usage: lianctl [global options] journal checkpoint [--save FILE]\n"
"           [--checkpoint-cert PEM]\n"
"\n"
"Fetches the journal's latest signed checkpoint (GET /v1/journal/checkpoint;\n"
"auditor role), verifies its signature and prints size, root, time and origin.\n"
"\n"
"  --save FILE            write the checkpoint JSON to FILE, for a later\n"
"                         \"journal verify --checkpoint FILE\"\n"
"  --checkpoint-cert PEM  the checkpoint signer's certificate\n"
"                         (default DIR/journal/checkpoint.pem)\n"
"  --json                 print the checkpoint as JSON\n"
"  --quiet                print nothing (verify, and save with --save)\n";

static const char usage_journal_pull[] =
"usage: lianctl [global options] journal pull [--subject ID] [--consumer ID]\n"
"           [--dept ID] [--item ITEM] [--since-ms MS] [--until-ms MS]\n"
"           [--format jsonl|msgpack] [--out FILE]\n"
"\n"
"Downloads the journal records that match every filter given (GET\n"
"/v1/journal/records, following its cursor; auditor role), in seq order.\n"
"Each record is written as {\"seq\", \"leaf\", \"record\"}: leaf is the record's\n"
"stored bytes (the Merkle leaf), record the same decoded.  Each one is checked\n"
"to be canonical msgpack carrying its own seq.\n"
"\n"
"  --subject ID           a citizen's resident ID number (the gateway hashes it)\n"
"  --consumer ID          consumer (bundle service) id\n"
"  --dept ID              department id\n"
"  --item ITEM            item type, or for audit-read records the endpoint\n"
"  --since-ms MS          records with t_ms >= MS (unix milliseconds)\n"
"  --until-ms MS          records with t_ms < MS\n"
"  --format F             jsonl (default): one JSON object per line, binary\n"
"                         values base64url; msgpack: a stream of msgpack maps\n"
"  --out FILE             write to FILE instead of standard output\n"
"\n"
"\"journal verify --records FILE\" proves that pulled records are in the journal.\n";

static const char usage_journal_verify[] =
"usage: lianctl [global options] journal verify [--checkpoint FILE]\n"
"           [--records FILE] [--checkpoint-cert PEM]\n"
"\n"
"Downloads every journal record (GET /v1/journal/leaves, 1000 per call;\n"
"auditor role), checks that each is canonical msgpack whose \"seq\" is its\n"
"position, recomputes the RFC 6962 root and compares it with the current\n"
"signed checkpoint.  When they differ, it names the first record that is\n"
"not the one the checkpoint signed (a binary search with the gateway's\n"
"consistency proofs).\n"
"\n"
"  --checkpoint FILE      also check an earlier checkpoint saved with\n"
"                         \"journal checkpoint --save\": its signature, and that\n"
"                         its root is the root of the journal's first records,\n"
"                         so the journal only grew since it was saved; the\n"
"                         gateway's consistency proof from it to the current\n"
"                         checkpoint (RFC 9162) must verify as well\n"
"  --records FILE         also prove that every record of FILE (written by\n"
"                         \"journal pull\") is in the current tree, with the\n"
"                         gateway's inclusion proofs (RFC 9162)\n"
"  --checkpoint-cert PEM  the checkpoint signer's certificate\n"
"                         (default DIR/journal/checkpoint.pem)\n"
"  --json                 print the result as JSON\n"
"  --quiet                print nothing on success\n";

/*
 * Command-line parsing.  Options are long only, "--name value" or
 * "--name=value", and may come in any order with the operands; "--" ends
 * the options.  A command's own table is searched first, then the global
 * one, so global options work after the command too.
 */


static const struct optdef global_opts[] = {
	{ "help",	false,	O_HELP },
	{ "gateway",	true,	O_GATEWAY },
	{ "cert",	true,	O_CERT },
	{ "key",	true,	O_KEY },
	{ "certs",	true,	O_CERTS },
	{ "ca",		true,	O_CA },
	{ "timeout",	true,	O_TIMEOUT },
	{ "json",	false,	O_JSON },
	{ "quiet",	false,	O_QUIET },
	{ NULL,		false,	O_NONE }
};


static const struct optdef *
opt_find(const struct optdef *defs, const char *name, size_t len)
{
	for (; defs != NULL && defs->od_name != NULL; defs++)
		if (strlen(defs->od_name) == len && strncmp(defs->od_name, name, len) == 0)
			return defs;
	return NULL;
}

void
usage_hint(const struct args *ar)
{
	if (ar->ar_cmd != NULL)
		fprintf(stderr, "see \"" CTL_PROG " %s --help\"\n", ar->ar_cmd);
	else
		fputs("see \"" CTL_PROG " --help\"\n", stderr);
}

enum arg_kind
arg_next(struct args *ar, const struct optdef *defs, enum opt *id, const char **val)
{
	const struct optdef	*od;
	const char		*a, *name, *eq;
	size_t			 len;

	*id = O_NONE;
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
	if (strcmp(a, "-h") == 0) {
		*id = O_HELP;
		return ARG_OPT;
	}
	if (a[1] != '-') {
		ctl_err("unknown option %s (options are long: --name)", a);
		usage_hint(ar);
		return ARG_BAD;
	}
	name = a + 2;
	eq = strchr(name, '=');
	len = eq != NULL ? (size_t)(eq - name) : strlen(name);
	if ((od = opt_find(defs, name, len)) == NULL &&
	    (od = opt_find(global_opts, name, len)) == NULL) {
		ctl_err("unknown option --%.*s%s%s", (int)len, name,
		    ar->ar_cmd != NULL ? " for " : "", ar->ar_cmd != NULL ? ar->ar_cmd : "");
		usage_hint(ar);
		return ARG_BAD;
	}
	if (od->od_arg) {
		if (eq != NULL)
			*val = eq + 1;
		else if (ar->ar_i < ar->ar_argc)
			*val = ar->ar_argv[ar->ar_i++];
		else {
			ctl_err("option --%s needs a value", od->od_name);
			return ARG_BAD;
		}
	} else if (eq != NULL) {
		ctl_err("option --%s takes no value", od->od_name);
		return ARG_BAD;
	}
	*id = od->od_id;
	return ARG_OPT;
}

/*
 * The next option of a command that takes no operands.  Usage errors,
 * operands and --help end the command here: -1 with its exit status in
 * *rc.  1 hands an option in *id and *val to the command; 0 ends them.
 */
int
cmd_opt(struct args *ar, const struct optdef *defs, const char *usage, enum opt *id,
    const char **val, int *rc)
{
	switch (arg_next(ar, defs, id, val)) {
	case ARG_END:
		return 0;
	case ARG_OPERAND:
		ctl_err("%s takes no operand (\"%s\")", ar->ar_cmd, *val);
		/* FALLTHROUGH */
	case ARG_BAD:
		*rc = CTL_USAGE;
		return -1;
	case ARG_OPT:
		break;
	}
	if (*id == O_HELP) {
		fputs(usage, stdout);
		*rc = CTL_OK;
		return -1;
	}
	return 1;
}

int
parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out)
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

/* HOST:PORT, [V6ADDR]:PORT, or HOST alone (port 8443). */
static int
parse_gateway(struct ctl *ctl, const char *s)
{
	const char	*host = s, *port = CTL_DEFAULT_PORT, *p;
	size_t		 hlen;
	int64_t		 pn;

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
	if (parse_i64("gateway port", port, 1, 65535, &pn) != 0)
		return -1;
	memcpy(ctl->c_host, host, hlen);
	ctl->c_host[hlen] = '\0';
	snprintf(ctl->c_port, sizeof(ctl->c_port), "%d", (int)pn);
	return 0;
bad:
	ctl_err("--gateway needs HOST:PORT, not \"%s\"", s);
	return -1;
}

/* Applies a global option; -1 (reported) when its value is wrong. */
int
ctl_global(struct ctl *ctl, enum opt id, const char *val)
{
	int64_t	v;

	switch (id) {
	case O_GATEWAY:
		return parse_gateway(ctl, val);
	case O_CERT:
		ctl->c_cert = val;
		return 0;
	case O_KEY:
		ctl->c_key = val;
		return 0;
	case O_CERTS:
		ctl->c_certs = val;
		return 0;
	case O_CA:
		ctl->c_ca = val;
		return 0;
	case O_TIMEOUT:
		if (parse_i64("timeout", val, 1, 3600, &v) != 0)
			return -1;
		ctl->c_timeout = (int)v;
		return 0;
	case O_JSON:
		ctl->c_json = true;
		return 0;
	case O_QUIET:
		ctl->c_quiet = true;
		return 0;
	default:
		ctl_err("internal error: option %d has no handler", (int)id);
		return -1;
	}
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

/* The network commands other than health act as a client identity. */
int
ctl_need_identity(const struct ctl *ctl, const char *cmd)
{
	if (ctl->c_cert == NULL || ctl->c_key == NULL) {
		ctl_err("%s needs a client identity: give --cert PEM and --key PEM", cmd);
		return -1;
	}
	return 0;
}

/* Reads a whole file, or standard input for "-"; *buf is malloc'ed and NUL-terminated. */
int
read_input(const char *path, size_t max, uint8_t **buf, size_t *len)
{
	uint8_t	*b = NULL, *nb;
	size_t	 n = 0, cap = 0;
	ssize_t	 r;

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
			goto fail;
		}
		if (n == cap) {
			cap = cap == 0 ? 65536 : cap * 2;
			if (cap > max + 1)
				cap = max + 1;
			if ((nb = realloc(b, cap + 1)) == NULL) {
				ctl_err("out of memory");
				goto fail;
			}
			b = nb;
		}
		r = read(STDIN_FILENO, b + n, cap - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			ctl_err("standard input: %s", strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (b == NULL && (b = malloc(1)) == NULL) {
		ctl_err("out of memory");
		return -1;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
fail:
	free(b);
	return -1;
}

int
write_output(const char *path, const void *data, size_t len)
{
	if (file_write(path, data, len, 0644) != 0) {
		ctl_err("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static bool
is_msgpack_map_byte(uint8_t c)
{
	return (c & 0xf0) == 0x80 || c == 0xde || c == 0xdf;
}

/*
 * A saved answer: msgpack when it starts with a map header (JSON text never
 * does), JSON otherwise.  The object lives in z.
 */
int
load_object(const char *path, msgpack_zone *z, msgpack_object *o)
{
	uint8_t	*buf = NULL;
	size_t	 len;
	char	 err[256];
	int	 ret = -1;

	if (read_input(path, CTL_BODY_MAX, &buf, &len) != 0)
		return -1;
	if (len > 0 && is_msgpack_map_byte(buf[0])) {
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

void
fmt_time(uint64_t secs, char *buf, size_t bufsz)
{
	struct tm	tm;
	time_t		t = (time_t)secs;

	if (secs > (uint64_t)INT32_MAX * 64 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, bufsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, bufsz, "%llu (unix seconds)", (unsigned long long)secs);
}

void
fmt_time_ms(uint64_t ms, char *buf, size_t bufsz)
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

/* Prints j (pretty, in its own key order) and releases it. */
int
json_print(json_t *j)
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
 * The HTTPS client.  One request per connection, blocking, with socket
 * timeouts so a silent gateway cannot hang the command.  Answers are read
 * with a Content-Length, chunked, or up to the close of the connection,
 * and never beyond CTL_BODY_MAX.
 */

struct conn {
	int		 cn_fd;
	SSL		*cn_ssl;
	size_t		 cn_roff, cn_rlen;
	uint8_t		 cn_rbuf[CTL_RBUF];
};

/* A growing body buffer, bounded by CTL_BODY_MAX. */
struct gbuf {
	uint8_t		*gb_p;
	size_t		 gb_len, gb_cap;
};

void
http_resp_clear(struct http_resp *r)
{
	free(r->hr_body);
	memset(r, 0, sizeof(*r));
}

static int
gbuf_reserve(struct gbuf *b, size_t more, char *err, size_t errlen)
{
	uint8_t	*np;
	size_t	 cap;

	if (more > CTL_BODY_MAX - b->gb_len) {
		snprintf(err, errlen, "the gateway's answer is larger than %zu MiB",
		    CTL_BODY_MAX >> 20);
		return -1;
	}
	if (b->gb_len + more + 1 <= b->gb_cap)
		return 0;
	cap = b->gb_cap == 0 ? 65536 : b->gb_cap;
	while (cap < b->gb_len + more + 1)
		cap *= 2;
	if ((np = realloc(b->gb_p, cap)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	b->gb_p = np;
	b->gb_cap = cap;
	return 0;
}

static bool
is_ip_literal(const char *host)
{
	unsigned char	addr[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

/*
 * Describes why an SSL call failed, from the error queue or errno, and
 * empties the queue so the next call starts clean.
 */
static void
tls_why(SSL *ssl, int rc, char *buf, size_t bufsz)
{
	unsigned long	 e;
	const char	*reason;
	int		 se, saved = errno;

	se = ssl != NULL ? SSL_get_error(ssl, rc) : SSL_ERROR_SSL;
	if ((e = ERR_peek_last_error()) != 0) {
		reason = ERR_reason_error_string(e);
		snprintf(buf, bufsz, "%s", reason != NULL ? reason : "TLS error");
	} else if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE ||
	    saved == EAGAIN || saved == EWOULDBLOCK)
		snprintf(buf, bufsz, "timed out");
	else if (se == SSL_ERROR_SYSCALL && saved != 0)
		snprintf(buf, bufsz, "%s", strerror(saved));
	else
		snprintf(buf, bufsz, "the connection was closed");
	ERR_clear_error();
}

/*
 * The TLS context of the command, made on first use: the client key is read
 * once however many requests a command makes, and wiped when the context
 * is freed at exit.
 */
static SSL_CTX *
tls_ctx(struct ctl *ctl, char *err, size_t errlen)
{
	SSL_CTX		*ctx;
	EVP_PKEY	*key = NULL;
	char		 cabuf[PATH_MAX], why[256];
	const char	*ca;

	if (ctl->c_tls != NULL)
		return ctl->c_tls;
	if ((ca = ctl_path(ctl, ctl->c_ca, "client-ca.pem", cabuf, sizeof(cabuf))) == NULL) {
		snprintf(err, errlen, "no CA certificate path");
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "cannot create a TLS context");
		return NULL;
	}
	/*
	 * Without close_notify an answer read up to the end of the connection
	 * still ends cleanly; answers with a length do not depend on it.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot require TLS 1.2");
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_file(ctx, ca) != 1) {
		snprintf(err, errlen, "cannot load the gateway's CA certificate %.512s "
		    "(give --ca PEM or --certs DIR)", ca);
		goto fail;
	}
	if (ctl->c_cert != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, ctl->c_cert) != 1) {
			snprintf(err, errlen, "%s: not a PEM certificate", ctl->c_cert);
			goto fail;
		}
		if (key_load(ctl->c_key, &key, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s", why);
			goto fail;
		}
		/* The context keeps its own reference; ours is wiped on free. */
		if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
			snprintf(err, errlen, "key %s does not belong to certificate %s",
			    ctl->c_key, ctl->c_cert);
			goto fail;
		}
		EVP_PKEY_free(key);
	}
	ERR_clear_error();
	ctl->c_tls = ctx;
	return ctx;
fail:
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

/* Connects to the gateway within the timeout; the socket is left blocking. */
static int
tcp_connect(const struct ctl *ctl, char *err, size_t errlen)
{
	struct addrinfo	 hints, *res = NULL, *ai;
	struct pollfd	 pfd;
	struct timeval	 tv;
	socklen_t	 sl;
	int		 fd = -1, rc, e = 0, soerr, flags;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(ctl->c_host, ctl->c_port, &hints, &res)) != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", ctl->c_host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol)) == -1) {
			e = errno;
			continue;
		}
		/* Non-blocking only while connecting, so the timeout applies. */
		flags = fcntl(fd, F_GETFL);
		if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
			goto next;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
			if (errno != EINPROGRESS)
				goto next;
			pfd.fd = fd;
			pfd.events = POLLOUT;
			while ((rc = poll(&pfd, 1, ctl->c_timeout * 1000)) == -1 && errno == EINTR)
				;
			if (rc == 0)
				errno = ETIMEDOUT;
			if (rc <= 0)
				goto next;
			sl = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
				goto next;
			if (soerr != 0) {
				errno = soerr;
				goto next;
			}
		}
		if (fcntl(fd, F_SETFL, flags) == -1)
			goto next;
		tv.tv_sec = ctl->c_timeout;
		tv.tv_usec = 0;
		if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
		    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
			goto next;
		break;
next:
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		snprintf(err, errlen, "cannot connect to %s port %s: %s", ctl->c_host,
		    ctl->c_port, strerror(e));
	return fd;
}

static int
conn_tls(const struct ctl *ctl, SSL_CTX *ctx, struct conn *c, char *err, size_t errlen)
{
	char	why[256];
	long	vr;
	int	rc;

	if ((c->cn_ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->cn_ssl, c->cn_fd) != 1) {
		snprintf(err, errlen, "cannot create a TLS session");
		return -1;
	}
	/* SSL_set1_host checks an IP address literal against the IP SANs. */
	if (SSL_set1_host(c->cn_ssl, ctl->c_host) != 1 ||
	    (!is_ip_literal(ctl->c_host) &&
	    SSL_set_tlsext_host_name(c->cn_ssl, ctl->c_host) != 1)) {
		snprintf(err, errlen, "cannot set the expected gateway name %s", ctl->c_host);
		return -1;
	}
	if ((rc = SSL_connect(c->cn_ssl)) != 1) {
		if ((vr = SSL_get_verify_result(c->cn_ssl)) != X509_V_OK) {
			ERR_clear_error();
			snprintf(err, errlen, "the gateway's TLS certificate is not trusted for "
			    "%s: %s", ctl->c_host, X509_verify_cert_error_string(vr));
			return -1;
		}
		tls_why(c->cn_ssl, rc, why, sizeof(why));
		snprintf(err, errlen, "TLS handshake with %s:%s failed: %s", ctl->c_host,
		    ctl->c_port, why);
		return -1;
	}
	return 0;
}

static int
conn_write(struct conn *c, const void *data, size_t len, char *err, size_t errlen)
{
	const uint8_t	*p = data;
	char		 why[256];
	int		 w;

	while (len > 0) {
		w = SSL_write(c->cn_ssl, p, len > INT_MAX ? INT_MAX : (int)len);
		if (w <= 0) {
			tls_why(c->cn_ssl, w, why, sizeof(why));
			snprintf(err, errlen, "sending the request failed: %s", why);
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/*
 * Reads more of the answer into the receive buffer, after moving what is
 * still unread to its front.  1: bytes arrived; 0: end of the stream; -1:
 * error (in err).
 */
static int
conn_fill(struct conn *c, char *err, size_t errlen)
{
	char	why[256];
	int	n;

	if (c->cn_roff > 0) {
		memmove(c->cn_rbuf, c->cn_rbuf + c->cn_roff, c->cn_rlen - c->cn_roff);
		c->cn_rlen -= c->cn_roff;
		c->cn_roff = 0;
	}
	if (c->cn_rlen == sizeof(c->cn_rbuf)) {
		snprintf(err, errlen, "a line of the gateway's answer is longer than %d KiB",
		    CTL_RBUF / 1024);
		return -1;
	}
	n = SSL_read(c->cn_ssl, c->cn_rbuf + c->cn_rlen, (int)(sizeof(c->cn_rbuf) - c->cn_rlen));
	if (n > 0) {
		c->cn_rlen += (size_t)n;
		return 1;
	}
	if (SSL_get_error(c->cn_ssl, n) == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		return 0;
	}
	tls_why(c->cn_ssl, n, why, sizeof(why));
	snprintf(err, errlen, "reading the gateway's answer failed: %s", why);
	return -1;
}

/*
 * The next line of the answer with its CRLF (or LF) removed.  It lives in
 * the receive buffer: valid until the next read.
 */
static char *
conn_line(struct conn *c, char *err, size_t errlen)
{
	uint8_t	*start, *nl;
	size_t	 n;
	int	 r;

	for (;;) {
		start = c->cn_rbuf + c->cn_roff;
		if ((nl = memchr(start, '\n', c->cn_rlen - c->cn_roff)) != NULL) {
			n = (size_t)(nl - start);
			c->cn_roff += n + 1;
			*nl = '\0';
			if (n > 0 && start[n - 1] == '\r')
				start[n - 1] = '\0';
			return (char *)start;
		}
		if ((r = conn_fill(c, err, errlen)) <= 0) {
			if (r == 0)
				snprintf(err, errlen, "the gateway closed the connection in "
				    "the middle of its answer");
			return NULL;
		}
	}
}

/* Appends exactly len bytes of the answer to b. */
static int
conn_read_exact(struct conn *c, struct gbuf *b, size_t len, char *err, size_t errlen)
{
	size_t	k;
	int	r;

	if (gbuf_reserve(b, len, err, errlen) != 0)
		return -1;
	while (len > 0) {
		if (c->cn_roff == c->cn_rlen) {
			if ((r = conn_fill(c, err, errlen)) < 0)
				return -1;
			if (r == 0) {
				snprintf(err, errlen, "the gateway closed the connection before "
				    "the end of its answer");
				return -1;
			}
			continue;
		}
		k = c->cn_rlen - c->cn_roff;
		if (k > len)
			k = len;
		memcpy(b->gb_p + b->gb_len, c->cn_rbuf + c->cn_roff, k);
		b->gb_len += k;
		c->cn_roff += k;
		len -= k;
	}
	return 0;
}

static int
conn_read_chunked(struct conn *c, struct gbuf *b, char *err, size_t errlen)
{
	unsigned long long	 n;
	char			*line, *end;

	for (;;) {
		if ((line = conn_line(c, err, errlen)) == NULL)
			return -1;
		errno = 0;
		n = strtoull(line, &end, 16);
		if (end == line || errno != 0 || (*end != '\0' && *end != ';' && *end != ' ')) {
			snprintf(err, errlen, "the gateway's chunked answer is malformed");
			return -1;
		}
		if (n == 0)
			break;
		if (n > CTL_BODY_MAX) {
			snprintf(err, errlen, "the gateway's answer is larger than %zu MiB",
			    CTL_BODY_MAX >> 20);
			return -1;
		}
		if (conn_read_exact(c, b, (size_t)n, err, errlen) != 0 ||
		    (line = conn_line(c, err, errlen)) == NULL)
			return -1;
		if (*line != '\0') {
			snprintf(err, errlen, "the gateway's chunked answer is malformed");
			return -1;
		}
	}
	/* Trailer fields carry nothing lianctl uses. */
	do {
		if ((line = conn_line(c, err, errlen)) == NULL)
			return -1;
	} while (*line != '\0');
	return 0;
}

static int
conn_read_to_eof(struct conn *c, struct gbuf *b, char *err, size_t errlen)
{
	size_t	k;
	int	r;

	for (;;) {
		k = c->cn_rlen - c->cn_roff;
		if (k > 0) {
			if (gbuf_reserve(b, k, err, errlen) != 0)
				return -1;
			memcpy(b->gb_p + b->gb_len, c->cn_rbuf + c->cn_roff, k);
			b->gb_len += k;
			c->cn_roff += k;
		}
		if ((r = conn_fill(c, err, errlen)) <= 0)
			return r;
	}
}

/* Reads the status line and the headers, skipping interim 1xx answers. */
static int
conn_read_head(struct conn *c, struct http_resp *r, bool *chunked, bool *has_len,
    size_t *clen, char *err, size_t errlen)
{
	unsigned long long	 v;
	char			*line, *colon, *val, *end;
	size_t			 n;
	int			 nhdr;

	do {
		*chunked = *has_len = false;
		*clen = 0;
		r->hr_ctype[0] = '\0';
		if ((line = conn_line(c, err, errlen)) == NULL)
			return -1;
		if (strncmp(line, "HTTP/1.", 7) != 0 || line[7] < '0' || line[7] > '9' ||
		    line[8] != ' ' || line[9] < '1' || line[9] > '5' ||
		    line[10] < '0' || line[10] > '9' || line[11] < '0' || line[11] > '9' ||
		    (line[12] != ' ' && line[12] != '\0')) {
			snprintf(err, errlen, "the gateway's answer does not start with an "
			    "HTTP/1.x status line");
			return -1;
		}
		r->hr_status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
		for (nhdr = 0;; nhdr++) {
			if ((line = conn_line(c, err, errlen)) == NULL)
				return -1;
			if (*line == '\0')
				break;
			if (nhdr == CTL_HEADERS_MAX || (colon = strchr(line, ':')) == NULL) {
				snprintf(err, errlen, "the gateway's answer has malformed headers");
				return -1;
			}
			*colon = '\0';
			for (val = colon + 1; *val == ' ' || *val == '\t'; val++)
				;
			for (n = strlen(val); n > 0 && (val[n - 1] == ' ' || val[n - 1] == '\t'); n--)
				val[n - 1] = '\0';
			if (strcasecmp(line, "Content-Length") == 0) {
				errno = 0;
				v = strtoull(val, &end, 10);
				if (*val < '0' || *val > '9' || *end != '\0' || errno != 0 ||
				    (*has_len && v != *clen)) {
					snprintf(err, errlen, "the gateway's Content-Length is invalid");
					return -1;
				}
				if (v > CTL_BODY_MAX) {
					snprintf(err, errlen, "the gateway's answer (%llu bytes) is "
					    "larger than %zu MiB", v, CTL_BODY_MAX >> 20);
					return -1;
				}
				*has_len = true;
				*clen = (size_t)v;
			} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
				if (strcasecmp(val, "chunked") == 0)
					*chunked = true;
				else if (strcasecmp(val, "identity") != 0) {
					snprintf(err, errlen, "the gateway answered with transfer "
					    "encoding \"%s\", which lianctl does not read", val);
					return -1;
				}
			} else if (strcasecmp(line, "Content-Type") == 0)
				snprintf(r->hr_ctype, sizeof(r->hr_ctype), "%s", val);
		}
	} while (r->hr_status >= 100 && r->hr_status < 200);
	return 0;
}

/*
 * Sends one request and reads the whole answer into resp (whatever its
 * status).  body may be NULL.  -1 with a sentence in err when no answer
 * could be had.
 */
int
http_request(struct ctl *ctl, const char *method, const char *path,
    const char *accept, const char *ctype, const void *body, size_t bodylen,
    struct http_resp *resp, char *err, size_t errlen)
{
	SSL_CTX		*ctx;
	struct conn	*c = NULL;
	struct gbuf	 b = { NULL, 0, 0 };
	char		 head[2048], hostport[300];
	size_t		 clen;
	bool		 chunked, has_len;
	int		 n, ret = -1;

	memset(resp, 0, sizeof(*resp));
	if (strchr(ctl->c_host, ':') != NULL)
		snprintf(hostport, sizeof(hostport), "[%s]:%s", ctl->c_host, ctl->c_port);
	else
		snprintf(hostport, sizeof(hostport), "%s:%s", ctl->c_host, ctl->c_port);
	if (ctl->c_header != NULL && strpbrk(ctl->c_header, "\r\n") != NULL) {
		snprintf(err, errlen, "a request header may not contain a line break");
		return -1;
	}
	if (body != NULL)
		n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s\r\n"
		    "User-Agent: lianctl\r\nAccept: %s\r\nConnection: close\r\n%s%s"
		    "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
		    method, path, hostport, accept, ctl->c_header ? ctl->c_header : "",
		    ctl->c_header ? "\r\n" : "", ctype, bodylen);
	else
		n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s\r\n"
		    "User-Agent: lianctl\r\nAccept: %s\r\nConnection: close\r\n%s%s\r\n",
		    method, path, hostport, accept, ctl->c_header ? ctl->c_header : "",
		    ctl->c_header ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(head)) {
		snprintf(err, errlen, "request line too long");
		return -1;
	}
	if ((ctx = tls_ctx(ctl, err, errlen)) == NULL)
		goto done;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	c->cn_fd = -1;
	if ((c->cn_fd = tcp_connect(ctl, err, errlen)) == -1 ||
	    conn_tls(ctl, ctx, c, err, errlen) != 0 ||
	    conn_write(c, head, (size_t)n, err, errlen) != 0 ||
	    (body != NULL && conn_write(c, body, bodylen, err, errlen) != 0))
		goto done;
	if (conn_read_head(c, resp, &chunked, &has_len, &clen, err, errlen) != 0)
		goto done;
	if (strcmp(method, "HEAD") == 0 || resp->hr_status == 204 || resp->hr_status == 304)
		;
	else if (chunked) {
		if (conn_read_chunked(c, &b, err, errlen) != 0)
			goto done;
	} else if (has_len) {
		if (conn_read_exact(c, &b, clen, err, errlen) != 0)
			goto done;
	} else if (conn_read_to_eof(c, &b, err, errlen) != 0)
		goto done;
	if (gbuf_reserve(&b, 0, err, errlen) != 0)
		goto done;
	b.gb_p[b.gb_len] = '\0';
	resp->hr_body = b.gb_p;
	resp->hr_len = b.gb_len;
	b.gb_p = NULL;
	ret = 0;
done:
	if (c != NULL) {
		if (c->cn_ssl != NULL) {
			if (ret == 0)
				(void)SSL_shutdown(c->cn_ssl);
			SSL_free(c->cn_ssl);
		}
		if (c->cn_fd != -1)
			close(c->cn_fd);
		free(c);
	}
	free(b.gb_p);
	ERR_clear_error();
	if (ret != 0)
		http_resp_clear(resp);
	return ret;
}

bool
ctype_is_msgpack(const char *ctype)
{
	return strncasecmp(ctype, "application/msgpack", 19) == 0 ||
	    strncasecmp(ctype, "application/x-msgpack", 21) == 0;
}

/* The answer's body as an object in z, from JSON or msgpack. */
int
resp_object(const struct http_resp *r, msgpack_zone *z, msgpack_object *o, char *err,
    size_t errlen)
{
	char	why[256];

	if (r->hr_len == 0) {
		snprintf(err, errlen, "the gateway's answer is empty");
		return -1;
	}
	if (ctype_is_msgpack(r->hr_ctype)) {
		if (mpk_unpack(r->hr_body, r->hr_len, z, o) != 0) {
			snprintf(err, errlen, "the gateway's msgpack answer is malformed");
			return -1;
		}
	} else if (mpk_from_json((const char *)r->hr_body, r->hr_len, z, o, why,
	    sizeof(why)) != 0) {
		snprintf(err, errlen, "the gateway's JSON answer is malformed: %s", why);
		return -1;
	}
	if (o->type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "the gateway's answer is not an object");
		return -1;
	}
	return 0;
}

/* Reports an answer with status >= 400 by its {"error": {code, message}}. */
int
resp_refused(const struct http_resp *r)
{
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*e;
	char			 code[64] = "", msg[2048] = "", err[256];

	msgpack_zone_init(&z, 1024);
	if (resp_object(r, &z, &o, err, sizeof(err)) == 0 &&
	    (e = mpk_get(&o, "error")) != NULL) {
		(void)mpk_get_str(e, "code", code, sizeof(code));
		(void)mpk_get_str(e, "message", msg, sizeof(msg));
	}
	msgpack_zone_destroy(&z);
	if (code[0] != '\0')
		ctl_err("the gateway refused the request (HTTP %d, %s): %s", r->hr_status,
		    code, msg[0] != '\0' ? msg : "no message given");
	else
		ctl_err("the gateway answered HTTP %d without an error description",
		    r->hr_status);
	return CTL_FAIL;
}

/* One GET whose 2xx JSON answer becomes an object in z; CTL_* on failure. */
int
http_get_object(struct ctl *ctl, const char *path, msgpack_zone *z,
    msgpack_object *o, struct http_resp *resp)
{
	char	err[CTL_ERR_MAX];

	if (http_request(ctl, "GET", path, "application/json", NULL, NULL, 0, resp, err,
	    sizeof(err)) != 0) {
		ctl_err("%s", err);
		return CTL_FAIL;
	}
	if (resp->hr_status >= 300)
		return resp_refused(resp);
	if (resp_object(resp, z, o, err, sizeof(err)) != 0) {
		ctl_err("GET %s: %s", path, err);
		return CTL_FAIL;
	}
	return CTL_OK;
}

/*
 * The answer as pretty JSON text (malloc'ed): JSON answers keep their key
 * order, msgpack answers are converted (bin values become base64url).
 */
char *
resp_pretty(const struct http_resp *r, char *err, size_t errlen)
{
	msgpack_zone	 z;
	msgpack_object	 o;
	json_error_t	 jerr;
	json_t		*j;
	char		*s = NULL;

	if (ctype_is_msgpack(r->hr_ctype)) {
		msgpack_zone_init(&z, 4096);
		if (mpk_unpack(r->hr_body, r->hr_len, &z, &o) != 0)
			snprintf(err, errlen, "the gateway's msgpack answer is malformed");
		else if ((s = mpk_to_json(&o, true)) == NULL)
			snprintf(err, errlen, "the gateway's msgpack answer cannot be shown as "
			    "JSON (ext values, keys that are not strings, or text that is not "
			    "UTF-8)");
		msgpack_zone_destroy(&z);
		return s;
	}
	if ((j = json_loadb((const char *)r->hr_body, r->hr_len, 0, &jerr)) == NULL) {
		snprintf(err, errlen, "the gateway's JSON answer is malformed: %s", jerr.text);
		return NULL;
	}
	if ((s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL)
		snprintf(err, errlen, "out of memory");
	json_decref(j);
	return s;
}

/*
 * health
 */
static int
cmd_health(struct ctl *ctl, struct args *ar)
{
	struct http_resp	 r;
	int			 nextopt, optrc;
	enum opt		 id;
	const char		*val;
	char			 err[CTL_ERR_MAX], *s;

	while ((nextopt = cmd_opt(ar, NULL, usage_health, &id, &val, &optrc)) > 0)
		if (ctl_global(ctl, id, val) != 0)
			return CTL_USAGE;
	if (nextopt < 0)
		return optrc;
	if ((ctl->c_cert == NULL) != (ctl->c_key == NULL)) {
		ctl_err("--cert and --key go together");
		return CTL_USAGE;
	}
	if (http_request(ctl, "GET", "/v1/health", "application/json", NULL, NULL, 0, &r,
	    err, sizeof(err)) != 0) {
		ctl_err("%s", err);
		return CTL_FAIL;
	}
	if (r.hr_status >= 300) {
		resp_refused(&r);
		http_resp_clear(&r);
		return CTL_FAIL;
	}
	if ((s = resp_pretty(&r, err, sizeof(err))) == NULL) {
		ctl_err("%s", err);
		http_resp_clear(&r);
		return CTL_FAIL;
	}
	if (!ctl->c_quiet)
		printf("%s\n", s);
	free(s);
	http_resp_clear(&r);
	return CTL_OK;
}

/*
 * consent issue
 */

/* "a,b,c" as an array of str borrowing from s; -1 on an empty element. */
static int
list_split(msgpack_zone *z, const char *s, msgpack_object *out)
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

static int
cmd_consent_issue(struct ctl *ctl, struct args *ar)
{
	static const struct optdef defs[] = {
		{ "authority",		true,	O_AUTHORITY },
		{ "authority-cert",	true,	O_AUTHORITY_CERT },
		{ "sub",		true,	O_SUB },
		{ "azp",		true,	O_AZP },
		{ "bundle",		true,	O_BUNDLE },
		{ "items",		true,	O_ITEMS },
		{ "aud",		true,	O_AUD },
		{ "act",		true,	O_ACT },
		{ "rel",		true,	O_REL },
		{ "amr",		true,	O_AMR },
		{ "liveness",		true,	O_LIVENESS },
		{ "match",		true,	O_MATCH },
		{ "ttl",		true,	O_TTL },
		{ "iat",		true,	O_IAT },
		{ "exp",		true,	O_EXP },
		{ "jti",		true,	O_JTI },
		{ "iss",		true,	O_ISS },
		{ NULL,			false,	O_NONE }
	};
	const char	*keypath = NULL, *certpath = NULL, *sub = NULL, *azp = NULL;
	const char	*bundle = NULL, *items = NULL, *aud = CTL_DEFAULT_AUD, *act = NULL;
	const char	*rel = "self", *amr = "face", *iss = NULL, *val, *missing = NULL;
	int64_t		 liveness = 990, match = 985, ttl = 300, iat = 0, exp = 0;
	bool		 has_iat = false, has_exp = false, has_jti = false;
	int		 nextopt, optrc;
	enum opt	 id;
	uint8_t		 jti[16], kid[32];
	char		 cn[256], err[CTL_ERR_MAX], *tok = NULL, *js = NULL;
	EVP_PKEY	*key = NULL;
	X509		*cert = NULL;
	msgpack_zone	 z;
	msgpack_sbuffer	 payload, env;
	msgpack_object	 oitems, oamr;
	struct mpk_map	 m, out;
	int		 ret = CTL_FAIL;

	while ((nextopt = cmd_opt(ar, defs, usage_consent_issue, &id, &val, &optrc)) > 0) {
		switch (id) {
		case O_AUTHORITY:	keypath = val; break;
		case O_AUTHORITY_CERT:	certpath = val; break;
		case O_SUB:		sub = val; break;
		case O_AZP:		azp = val; break;
		case O_BUNDLE:		bundle = val; break;
		case O_ITEMS:		items = val; break;
		case O_AUD:		aud = val; break;
		case O_ACT:		act = val; break;
		case O_REL:		rel = val; break;
		case O_AMR:		amr = val; break;
		case O_ISS:		iss = val; break;
		case O_LIVENESS:
			if (parse_i64("liveness", val, INT32_MIN, INT32_MAX, &liveness) != 0)
				return CTL_USAGE;
			break;
		case O_MATCH:
			if (parse_i64("match", val, INT32_MIN, INT32_MAX, &match) != 0)
				return CTL_USAGE;
			break;
		case O_TTL:
			if (parse_i64("ttl", val, INT32_MIN, INT32_MAX, &ttl) != 0)
				return CTL_USAGE;
			break;
		case O_IAT:
			if (parse_i64("iat", val, INT64_MIN / 2, INT64_MAX / 2, &iat) != 0)
				return CTL_USAGE;
			has_iat = true;
			break;
		case O_EXP:
			if (parse_i64("exp", val, INT64_MIN / 2, INT64_MAX / 2, &exp) != 0)
				return CTL_USAGE;
			has_exp = true;
			break;
		case O_JTI:
			if (hex_decode(val, strlen(val), jti, sizeof(jti)) != 0) {
				ctl_err("--jti needs 32 hex digits (16 bytes), not \"%s\"", val);
				return CTL_USAGE;
			}
			has_jti = true;
			break;
		default:
			if (ctl_global(ctl, id, val) != 0)
				return CTL_USAGE;
			break;
		}
	}
	if (nextopt < 0)
		return optrc;
	if (items == NULL)
		missing = "--items";
	if (bundle == NULL)
		missing = "--bundle";
	if (azp == NULL)
		missing = "--azp";
	if (sub == NULL)
		missing = "--sub";
	if (certpath == NULL)
		missing = "--authority-cert";
	if (keypath == NULL)
		missing = "--authority";
	if (missing != NULL) {
		ctl_err("consent issue needs %s", missing);
		usage_hint(ar);
		return CTL_USAGE;
	}
	if (strcmp(rel, "self") != 0 && strcmp(rel, "guardian") != 0) {
		ctl_err("--rel is self or guardian, not \"%s\"", rel);
		return CTL_USAGE;
	}
	if (strcmp(rel, "guardian") == 0 && act == NULL) {
		ctl_err("--rel guardian needs --act, the id of the guardian whose face was "
		    "verified");
		return CTL_USAGE;
	}

	msgpack_zone_init(&z, 2048);
	msgpack_sbuffer_init(&payload);
	msgpack_sbuffer_init(&env);
	if (list_split(&z, items, &oitems) != 0 || list_split(&z, amr, &oamr) != 0) {
		ctl_err("--items and --amr are comma-separated lists without empty elements");
		ret = CTL_USAGE;
		goto done;
	}
	if (!has_iat)
		iat = (int64_t)time(NULL);
	if (!has_exp)
		exp = iat + ttl;
	if (!has_jti && RAND_bytes(jti, sizeof(jti)) != 1) {
		ctl_err("cannot draw a random jti");
		goto done;
	}
	if (key_load(keypath, &key, err, sizeof(err)) != 0 ||
	    cert_load(certpath, &cert, err, sizeof(err)) != 0) {
		ctl_err("%s", err);
		goto done;
	}
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		ctl_err("authority key %s does not belong to certificate %s", keypath, certpath);
		goto done;
	}
	if (envelope_alg_of_key(key) == LB_ALG_NONE) {
		ctl_err("%s: an authority key is P-256 (ES256), Ed25519 (EdDSA) or SM2", keypath);
		goto done;
	}
	if (iss == NULL) {
		if (cert_subject_field(cert, NID_commonName, cn, sizeof(cn)) != 0) {
			ctl_err("%s: the certificate has no usable CN to name the issuer "
			    "(give --iss)", certpath);
			goto done;
		}
		iss = cn;
	}
	if (key_id_cert(cert, kid) != 0) {
		ctl_err("%s: cannot compute the key id", certpath);
		goto done;
	}

	mpk_map_init(&m, &z, 14);
	mpk_map_put(&m, "iss", mpk_str(iss));
	mpk_map_put(&m, "aud", mpk_str(aud));
	mpk_map_put(&m, "sub", mpk_str(sub));
	mpk_map_put(&m, "act", mpk_str(act != NULL ? act : sub));
	mpk_map_put(&m, "rel", mpk_str(rel));
	mpk_map_put(&m, "azp", mpk_str(azp));
	mpk_map_put(&m, "bundle", mpk_str(bundle));
	mpk_map_put(&m, "items", oitems);
	mpk_map_put(&m, "amr", oamr);
	mpk_map_put(&m, "liveness", mpk_int(liveness));
	mpk_map_put(&m, "match", mpk_int(match));
	mpk_map_put(&m, "iat", mpk_int(iat));
	mpk_map_put(&m, "exp", mpk_int(exp));
	mpk_map_put(&m, "jti", mpk_bin(jti, sizeof(jti)));
	if (mpk_pack(&m.mm_obj, &payload, false) != 0) {
		ctl_err("cannot encode the consent claims");
		goto done;
	}
	if (envelope_sign(key, kid, "consent", NULL, 0, payload.data, payload.size, &env) != 0) {
		ERR_clear_error();
		ctl_err("signing the consent token with %s failed", keypath);
		goto done;
	}
	if ((tok = b64url_encode(env.data, env.size)) == NULL) {
		ctl_err("out of memory");
		goto done;
	}
	if (ctl->c_json) {
		mpk_map_init(&out, &z, 2);
		mpk_map_put(&out, "token", mpk_str(tok));
		mpk_map_put(&out, "claims", m.mm_obj);
		if ((js = mpk_to_json(&out.mm_obj, true)) == NULL) {
			ctl_err("the claims hold text that is not valid UTF-8");
			goto done;
		}
		printf("%s\n", js);
	} else
		printf("%s\n", tok);
	ret = CTL_OK;
done:
	free(js);
	free(tok);
	EVP_PKEY_free(key);
	X509_free(cert);
	msgpack_sbuffer_destroy(&payload);
	msgpack_sbuffer_destroy(&env);
	msgpack_zone_destroy(&z);
	return ret;
}

/*
 * fetch
 */
struct fetch_group {
	const char	*fg_subject;
	const char	*fg_items;
	const char	*fg_consent;	/* as given: a token, @FILE or @- */
	uint8_t		*fg_file;	/* the token read from a file (malloc'ed) */
};

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
	if (read_input(g->fg_consent + 1, CTL_TOKEN_MAX, &g->fg_file, &n) != 0)
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
	if (resp_object(r, &z, &o, err, sizeof(err)) != 0 ||
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

static int
cmd_fetch(struct ctl *ctl, struct args *ar)
{
	static const struct optdef defs[] = {
		{ "bundle",	true,	O_BUNDLE },
		{ "subject",	true,	O_SUBJECT },
		{ "items",	true,	O_ITEMS },
		{ "consent",	true,	O_CONSENT },
		{ "out",	true,	O_OUT },
		{ "save-raw",	true,	O_SAVE_RAW },
		{ "msgpack",	false,	O_MSGPACK },
		{ NULL,		false,	O_NONE }
	};
	struct fetch_group	 groups[CTL_FETCH_GROUPS], *g;
	const char		*bundle = NULL, *out = NULL, *raw = NULL, *val, *tok;
	bool			 use_msgpack = false;
	enum arg_kind		 k;
	enum opt		 id;
	size_t			 ng = 0, i, toklen, declen;
	msgpack_zone		 z;
	msgpack_sbuffer		 sb;
	struct mpk_map		 root, req;
	msgpack_object		 reqs, oitems;
	struct http_resp	 r;
	uint8_t			*dec = NULL, *body = NULL;
	size_t			 bodylen = 0;
	char			*json = NULL, *pretty = NULL, err[CTL_ERR_MAX];
	int			 ret = CTL_FAIL;

	memset(groups, 0, sizeof(groups));
	memset(&r, 0, sizeof(r));
	while ((k = arg_next(ar, defs, &id, &val)) != ARG_END) {
		if (k == ARG_BAD)
			return CTL_USAGE;
		if (k == ARG_OPERAND) {
			ctl_err("fetch takes no operand (\"%s\")", val);
			usage_hint(ar);
			return CTL_USAGE;
		}
		/*
		 * --subject, --items and --consent fill the current group; one
		 * that the group already has starts the next group.
		 */
		if (id == O_SUBJECT || id == O_ITEMS || id == O_CONSENT) {
			g = ng > 0 ? &groups[ng - 1] : NULL;
			if (g == NULL || (id == O_SUBJECT && g->fg_subject != NULL) ||
			    (id == O_ITEMS && g->fg_items != NULL) ||
			    (id == O_CONSENT && g->fg_consent != NULL)) {
				if (ng == CTL_FETCH_GROUPS) {
					ctl_err("fetch takes at most %d subjects", CTL_FETCH_GROUPS);
					return CTL_USAGE;
				}
				g = &groups[ng++];
			}
			if (id == O_SUBJECT)
				g->fg_subject = val;
			else if (id == O_ITEMS)
				g->fg_items = val;
			else
				g->fg_consent = val;
			continue;
		}
		switch (id) {
		case O_HELP:
			fputs(usage_fetch, stdout);
			return CTL_OK;
		case O_BUNDLE:		bundle = val; break;
		case O_OUT:		out = val; break;
		case O_SAVE_RAW:	raw = val; break;
		case O_MSGPACK:		use_msgpack = true; break;
		default:
			if (ctl_global(ctl, id, val) != 0)
				return CTL_USAGE;
			break;
		}
	}
	if (bundle == NULL || ng == 0) {
		ctl_err("fetch needs --bundle and at least one --subject/--items/--consent");
		usage_hint(ar);
		return CTL_USAGE;
	}
	for (i = 0; i < ng; i++) {
		g = &groups[i];
		if (g->fg_subject == NULL || g->fg_items == NULL || g->fg_consent == NULL) {
			ctl_err("subject %zu (%s) needs all of --subject, --items and --consent",
			    i + 1, g->fg_subject != NULL ? g->fg_subject : "not named");
			return CTL_USAGE;
		}
	}
	if (ctl_need_identity(ctl, "fetch") != 0)
		return CTL_USAGE;

	msgpack_zone_init(&z, 4096);
	msgpack_sbuffer_init(&sb);
	reqs = mpk_array(&z, (uint32_t)ng);
	for (i = 0; i < ng; i++) {
		g = &groups[i];
		if (list_split(&z, g->fg_items, &oitems) != 0) {
			ctl_err("--items is a comma-separated list without empty elements");
			ret = CTL_USAGE;
			goto done;
		}
		if (fetch_token(g, &tok, &toklen) != 0)
			goto done;
		mpk_map_init(&req, &z, 3);
		mpk_map_put(&req, "subject", mpk_str(g->fg_subject));
		mpk_map_put(&req, "items", oitems);
		if (use_msgpack) {
			/* msgpack carries the envelope's own bytes. */
			if (b64url_decode(tok, toklen, &dec, &declen) != 0) {
				ctl_err("the consent token for %s is not base64url (unpadded)",
				    g->fg_subject);
				ret = CTL_USAGE;
				goto done;
			}
			mpk_map_put(&req, "consent", mpk_bindup(&z, dec, declen));
			free(dec);
			dec = NULL;
		} else
			mpk_map_put(&req, "consent", mpk_strn(tok, toklen));
		reqs.via.array.ptr[i] = req.mm_obj;
	}
	mpk_map_init(&root, &z, 2);
	mpk_map_put(&root, "bundle", mpk_str(bundle));
	mpk_map_put(&root, "requests", reqs);
	if (use_msgpack) {
		if (mpk_pack(&root.mm_obj, &sb, false) != 0) {
			ctl_err("cannot encode the request");
			goto done;
		}
		body = (uint8_t *)sb.data;
		bodylen = sb.size;
	} else {
		if ((json = mpk_to_json(&root.mm_obj, false)) == NULL) {
			ctl_err("the request holds text that is not valid UTF-8");
			ret = CTL_USAGE;
			goto done;
		}
		body = (uint8_t *)json;
		bodylen = strlen(json);
	}
	if (http_request(ctl, "POST", "/v1/exchanges",
	    use_msgpack ? "application/msgpack" : "application/json",
	    use_msgpack ? "application/msgpack" : "application/json",
	    body != NULL ? body : (const uint8_t *)"", bodylen, &r, err, sizeof(err)) != 0) {
		ctl_err("%s", err);
		goto done;
	}
	if (raw != NULL && write_output(raw, r.hr_body, r.hr_len) != 0)
		goto done;
	if (r.hr_status >= 300) {
		resp_refused(&r);
		goto done;
	}
	if ((pretty = resp_pretty(&r, err, sizeof(err))) == NULL) {
		ctl_err("%s", err);
		goto done;
	}
	if (!ctl->c_quiet)
		printf("%s\n", pretty);
	if (out != NULL) {
		size_t	n = strlen(pretty);

		/* The spare byte of the NUL becomes the final newline. */
		pretty[n] = '\n';
		if (write_output(out, pretty, n + 1) != 0)
			goto done;
		pretty[n] = '\0';
	}
	if (!ctl->c_quiet)
		fetch_report(&r);
	ret = CTL_OK;
done:
	for (i = 0; i < ng; i++)
		free(groups[i].fg_file);
	free(dec);
	free(json);
	free(pretty);
	http_resp_clear(&r);
	msgpack_sbuffer_destroy(&sb);
	msgpack_zone_destroy(&z);
	return ret;
}

/*
 * seal verify
 */

/*
 * Checks one "ok" result of a fetch answer: the document object is its
 * sealed bytes, and the receipt proves those bytes, for this item and
 * this exchange.  exch may be NULL when the answer names no exchange.
 */
static int
seal_check(const msgpack_object *res, const char *item, const uint8_t *exch,
    msgpack_zone *z, X509_STORE *roots, struct seal_verdict *v, char *err, size_t errlen)
{
	const msgpack_object	*doc, *seal;
	const uint8_t		*db, *rb;
	uint8_t			*packed = NULL, *rbuf = NULL;
	size_t			 dlen, rlen, plen;
	char			 hex[33];
	int			 ret = -1;

	memset(v, 0, sizeof(*v));
	if (mpk_get_bytes(res, "document_bytes", z, &db, &dlen) != 0) {
		snprintf(err, errlen, "the result has no document_bytes");
		goto done;
	}
	if (!mpk_is_canonical(db, dlen)) {
		snprintf(err, errlen, "document_bytes is not canonical msgpack");
		goto done;
	}
	if ((doc = mpk_get(res, "document")) == NULL) {
		snprintf(err, errlen, "the result has no document");
		goto done;
	}
	if (mpk_pack_alloc(doc, &packed, &plen) != 0 || plen != dlen ||
	    memcmp(packed, db, dlen) != 0) {
		snprintf(err, errlen, "the document differs from document_bytes, the bytes "
		    "that were sealed");
		goto done;
	}
	/* A receipt as a map (JSON answers) or as its bytes (bin or base64url). */
	if ((seal = mpk_get(res, "seal")) == NULL) {
		snprintf(err, errlen, "the result has no seal receipt");
		goto done;
	}
	if (seal->type == MSGPACK_OBJECT_MAP) {
		if (mpk_pack_alloc(seal, &rbuf, &rlen) != 0) {
			snprintf(err, errlen, "the seal receipt cannot be encoded");
			goto done;
		}
		rb = rbuf;
	} else if (mpk_obj_bytes(seal, z, &rb, &rlen) != 0) {
		snprintf(err, errlen, "the seal receipt is neither a map nor bytes");
		goto done;
	}
	if (seal_verify(rb, rlen, db, dlen, roots, v, err, errlen) != 0)
		goto done;
	if (strcmp(v->sv_item, item) != 0) {
		snprintf(err, errlen, "the seal is for item \"%s\", not \"%s\"", v->sv_item, item);
		goto done;
	}
	if (exch != NULL && memcmp(v->sv_exch, exch, 16) != 0) {
		hex_encode(v->sv_exch, 16, hex);
		snprintf(err, errlen, "the seal was made for another exchange (%s)", hex);
		goto done;
	}
	ret = 0;
done:
	ERR_clear_error();
	free(packed);
	free(rbuf);
	return ret;
}

static int
cmd_seal_verify(struct ctl *ctl, struct args *ar)
{
	static const struct optdef defs[] = {
		{ "seal-root",	true,	O_SEAL_ROOT },
		{ NULL,		false,	O_NONE }
	};
	const char		*file = NULL, *rootopt = NULL, *rootpath, *val;
	char			 rootbuf[PATH_MAX], label[LB_ITEM_MAX + LB_SUBJECT_MAX + 32];
	char			 item[LB_ITEM_MAX], subj[LB_SUBJECT_MAX], first[LB_SUBJECT_MAX];
	char			 status[64], msg[1024], err[CTL_ERR_MAX], when[64];
	enum arg_kind		 k;
	enum opt		 id;
	X509_STORE		*roots = NULL;
	msgpack_zone		 z;
	msgpack_object		 resp;
	const msgpack_object	*results, *res;
	const uint8_t		*exch = NULL;
	size_t			 exlen;
	struct seal_verdict	 v;
	json_t			*jout = NULL, *jv;
	uint32_t		 i, nok = 0, nbad = 0, nskip = 0;
	bool			 multi = false;
	int			 ret = CTL_FAIL;

	while ((k = arg_next(ar, defs, &id, &val)) != ARG_END) {
		if (k == ARG_BAD)
			return CTL_USAGE;
		if (k == ARG_OPERAND) {
			if (file != NULL) {
				ctl_err("seal verify takes one FILE");
				return CTL_USAGE;
			}
			file = val;
			continue;
		}
		switch (id) {
		case O_HELP:
			fputs(usage_seal_verify, stdout);
			return CTL_OK;
		case O_SEAL_ROOT:
			rootopt = val;
			break;
		default:
			if (ctl_global(ctl, id, val) != 0)
				return CTL_USAGE;
			break;
		}
	}
	if (file == NULL) {
		ctl_err("seal verify needs the FILE of a saved fetch answer");
		usage_hint(ar);
		return CTL_USAGE;
	}
	if ((rootpath = ctl_path(ctl, rootopt, "seal-root.pem", rootbuf, sizeof(rootbuf))) == NULL)
		return CTL_USAGE;

	msgpack_zone_init(&z, 8192);
	if ((roots = X509_STORE_new()) == NULL || X509_STORE_load_file(roots, rootpath) != 1) {
		ERR_clear_error();
		ctl_err("cannot load the seal root certificate %s (give --seal-root PEM or "
		    "--certs DIR)", rootpath);
		goto done;
	}
	if (load_object(file, &z, &resp) != 0)
		goto done;
	if ((results = mpk_get(&resp, "results")) == NULL ||
	    results->type != MSGPACK_OBJECT_ARRAY) {
		ctl_err("%s: not a fetch answer (it has no \"results\" list)", file);
		goto done;
	}
	if (mpk_get(&resp, "exchange") != NULL &&
	    (mpk_get_bytes(&resp, "exchange", &z, &exch, &exlen) != 0 || exlen != 16)) {
		ctl_err("%s: \"exchange\" is not a 16-byte id", file);
		goto done;
	}
	/* Several subjects: name the subject on every line. */
	first[0] = '\0';
	for (i = 0; i < results->via.array.size; i++) {
		if (mpk_get_str(&results->via.array.ptr[i], "subject", subj, sizeof(subj)) != 0)
			continue;
		if (first[0] == '\0')
			memcpy(first, subj, sizeof(first));
		else if (strcmp(first, subj) != 0)
			multi = true;
	}
	if (ctl->c_json && (jout = json_array()) == NULL) {
		ctl_err("out of memory");
		goto done;
	}
	for (i = 0; i < results->via.array.size; i++) {
		res = &results->via.array.ptr[i];
		if (mpk_get_str(res, "item", item, sizeof(item)) != 0)
			snprintf(item, sizeof(item), "result %u", i);
		if (mpk_get_str(res, "subject", subj, sizeof(subj)) != 0)
			subj[0] = '\0';
		if (multi)
			snprintf(label, sizeof(label), "%s (subject %s)", item, subj);
		else
			snprintf(label, sizeof(label), "%s", item);
		if (mpk_get_str(res, "status", status, sizeof(status)) != 0)
			snprintf(status, sizeof(status), "no status");
		if (strcmp(status, "ok") != 0) {
			nskip++;
			if (mpk_get_str(res, "message", msg, sizeof(msg)) != 0)
				msg[0] = '\0';
			if (jout != NULL)
				jv = json_pack("{s:s, s:s, s:s, s:s}", "subject", subj, "item",
				    item, "verdict", "not fetched", "status", status);
			else {
				jv = NULL;
				if (!ctl->c_quiet)
					printf("%s: not fetched — %s%s%s\n", label, status,
					    msg[0] != '\0' ? ": " : "", msg);
			}
		} else if (seal_check(res, item, exch, &z, roots, &v, err, sizeof(err)) != 0) {
			nbad++;
			if (jout != NULL)
				jv = json_pack("{s:s, s:s, s:s, s:s}", "subject", subj, "item",
				    item, "verdict", "invalid", "error", err);
			else {
				jv = NULL;
				printf("%s: SEAL INVALID — %s\n", label, err);
			}
		} else {
			nok++;
			fmt_time(v.sv_iat, when, sizeof(when));
			if (jout != NULL)
				jv = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, "
				    "s:I, s:s, s:s, s:s}", "subject", subj, "item", item,
				    "verdict", "ok", "issuer", v.sv_iss, "seal", v.sv_seal,
				    "alg", v.sv_alg, "hash", v.sv_hash,
				    "index", (json_int_t)v.sv_index, "size",
				    (json_int_t)v.sv_size, "iat", (json_int_t)v.sv_iat,
				    "sealed", when, "signer", v.sv_signer, "seal_root",
				    v.sv_root);
			else {
				jv = NULL;
				if (!ctl->c_quiet) {
					printf("%s: seal ok — issuer %s, seal %s, %s, batch leaf "
					    "%llu of %llu, sealed %s, signer %s\n", label,
					    v.sv_iss, v.sv_seal, v.sv_alg,
					    (unsigned long long)v.sv_index,
					    (unsigned long long)v.sv_size, when, v.sv_signer);
					/* Each check that passed, in the order of DESIGN §6. */
					printf("  document digest  %s of document_bytes equals the "
					    "claim's doc\n", v.sv_hash);
					printf("  Merkle path      leaf %llu of %llu (%s) leads to "
					    "the batch root\n", (unsigned long long)v.sv_index,
					    (unsigned long long)v.sv_size, v.sv_hash);
					printf("  batch signature  %s, verified with the seal "
					    "certificate named by kid\n", v.sv_alg);
					printf("  certificate      chains to the seal root %s\n",
					    v.sv_root);
					printf("  validity         certificate valid at iat %llu "
					    "(%s)\n", (unsigned long long)v.sv_iat, when);
				}
			}
		}
		if (jout != NULL && (jv == NULL || json_array_append_new(jout, jv) != 0)) {
			ctl_err("a result holds text that is not valid UTF-8");
			goto done;
		}
	}
	if (jout != NULL) {
		if (json_print(jout) != 0) {
			jout = NULL;
			goto done;
		}
		jout = NULL;
	}
	if (nbad > 0)
		ctl_err("%u of %u sealed documents failed verification", nbad, nbad + nok);
	else if (nok == 0)
		ctl_err("%s holds no sealed document to verify (%u results, none with "
		    "status ok)", file, nskip);
	else
		ret = CTL_OK;
done:
	json_decref(jout);
	X509_STORE_free(roots);
	msgpack_zone_destroy(&z);
	return ret;
}

/*
 * journal checkpoint, journal verify
 */
struct ckpt {
	uint64_t	ck_size;
	uint64_t	ck_t_ms;
	uint8_t		ck_root[32];
	char		ck_origin[LB_ID_MAX];
	char		ck_alg[16];
};

/*
 * Verifies a checkpoint object {"size","root","t_ms","envelope"}: the
 * envelope is a checkpoint signed by cert's key, and its payload says what
 * the plain fields say.  what names the checkpoint in messages.
 */
static int
ckpt_check(const msgpack_object *o, X509 *cert, const char *what, struct ckpt *ck)
{
	msgpack_zone	 z;
	struct envelope	 env;
	const uint8_t	*root, *eb, *proot;
	size_t		 rlen, elen, plen;
	uint64_t	 psize, pt;
	uint8_t		 kid[32];
	const char	*why;
	int		 ret = -1;

	memset(ck, 0, sizeof(*ck));
	msgpack_zone_init(&z, 2048);
	if (mpk_get_u64(o, "size", &ck->ck_size) != 0 ||
	    mpk_get_u64(o, "t_ms", &ck->ck_t_ms) != 0 ||
	    mpk_get_bytes(o, "root", &z, &root, &rlen) != 0 || rlen != 32 ||
	    mpk_get_bytes(o, "envelope", &z, &eb, &elen) != 0) {
		ctl_err("%s lacks size, root (32 bytes), t_ms or envelope", what);
		goto done;
	}
	memcpy(ck->ck_root, root, 32);
	if (envelope_parse(eb, elen, &z, "checkpoint", &env, &why) != 0) {
		ctl_err("%s: the signed envelope is malformed: %s", what, why);
		goto done;
	}
	if (key_id_cert(cert, kid) != 0 || memcmp(kid, env.env_kid, 32) != 0) {
		ctl_err("%s is signed by another key than the checkpoint certificate's "
		    "(wrong --checkpoint-cert, or a forged checkpoint)", what);
		goto done;
	}
	if (envelope_verify(&env, X509_get0_pubkey(cert)) != 0) {
		ERR_clear_error();
		ctl_err("%s: the signature does not verify with the checkpoint certificate",
		    what);
		goto done;
	}
	if (mpk_get_u64(&env.env_claims, "size", &psize) != 0 ||
	    mpk_get_u64(&env.env_claims, "t_ms", &pt) != 0 ||
	    mpk_get_bytes(&env.env_claims, "root", &z, &proot, &plen) != 0 || plen != 32 ||
	    mpk_get_str(&env.env_claims, "origin", ck->ck_origin, sizeof(ck->ck_origin)) != 0) {
		ctl_err("%s: the signed payload lacks origin, size, root or t_ms", what);
		goto done;
	}
	if (psize != ck->ck_size || pt != ck->ck_t_ms || memcmp(proot, ck->ck_root, 32) != 0) {
		ctl_err("%s: size, root or t_ms differ from what the signed envelope says",
		    what);
		goto done;
	}
	snprintf(ck->ck_alg, sizeof(ck->ck_alg), "%s", envelope_alg_name(env.env_alg));
	ret = 0;
done:
	msgpack_zone_destroy(&z);
	return ret;
}

static X509 *
ckpt_cert_load(const struct ctl *ctl, const char *explicit)
{
	char		 buf[PATH_MAX], err[CTL_ERR_MAX];
	const char	*path;
	X509		*cert;

	if ((path = ctl_path(ctl, explicit, "journal/checkpoint.pem", buf, sizeof(buf))) == NULL)
		return NULL;
	if (cert_load(path, &cert, err, sizeof(err)) != 0) {
		ctl_err("%s (give --checkpoint-cert PEM or --certs DIR)", err);
		return NULL;
	}
	return cert;
}

/* Fetches and verifies the current checkpoint; *resp keeps the answer. */
static int
ckpt_fetch(struct ctl *ctl, X509 *cert, struct ckpt *ck, struct http_resp *resp)
{
	msgpack_zone	z;
	msgpack_object	o;
	int		ret;

	msgpack_zone_init(&z, 2048);
	ret = http_get_object(ctl, "/v1/journal/checkpoint", &z, &o, resp);
	if (ret == CTL_OK && ckpt_check(&o, cert, "the gateway's checkpoint", ck) != 0)
		ret = CTL_FAIL;
	msgpack_zone_destroy(&z);
	return ret;
}

static json_t *
ckpt_json(const struct ckpt *ck)
{
	char	hex[65], when[64];

	hex_encode(ck->ck_root, 32, hex);
	fmt_time_ms(ck->ck_t_ms, when, sizeof(when));
	return json_pack("{s:s, s:I, s:s, s:I, s:s, s:s}", "origin", ck->ck_origin,
	    "size", (json_int_t)ck->ck_size, "root", hex, "t_ms", (json_int_t)ck->ck_t_ms,
	    "time", when, "alg", ck->ck_alg);
}

static int
cmd_journal_checkpoint(struct ctl *ctl, struct args *ar)
{
	static const struct optdef defs[] = {
		{ "save",		true,	O_SAVE },
		{ "checkpoint-cert",	true,	O_CHECKPOINT_CERT },
		{ NULL,			false,	O_NONE }
	};
	const char		*save = NULL, *certopt = NULL, *val;
	int			 nextopt, optrc;
	enum opt		 id;
	struct http_resp	 r;
	struct ckpt		 ck;
	X509			*cert = NULL;
	char			 hex[65], when[64];
	int			 ret = CTL_FAIL;

	while ((nextopt = cmd_opt(ar, defs, usage_journal_checkpoint, &id, &val, &optrc)) > 0) {
		switch (id) {
		case O_SAVE:
			save = val;
			break;
		case O_CHECKPOINT_CERT:
			certopt = val;
			break;
		default:
			if (ctl_global(ctl, id, val) != 0)
				return CTL_USAGE;
			break;
		}
	}
	if (nextopt < 0)
		return optrc;
	if (ctl_need_identity(ctl, "journal checkpoint") != 0)
		return CTL_USAGE;
	if ((cert = ckpt_cert_load(ctl, certopt)) == NULL)
		return CTL_FAIL;
	memset(&r, 0, sizeof(r));
	if (ckpt_fetch(ctl, cert, &ck, &r) != CTL_OK)
		goto done;
	if (save != NULL && write_output(save, r.hr_body, r.hr_len) != 0)
		goto done;
	if (ctl->c_json) {
		if (json_print(ckpt_json(&ck)) != 0)
			goto done;
	} else if (!ctl->c_quiet) {
		hex_encode(ck.ck_root, 32, hex);
		fmt_time_ms(ck.ck_t_ms, when, sizeof(when));
		printf("size:      %llu\nroot:      %s\ntime:      %s\norigin:    %s\n"
		    "signature: ok (%s, checkpoint certificate)\n",
		    (unsigned long long)ck.ck_size, hex, when, ck.ck_origin, ck.ck_alg);
	}
	ret = CTL_OK;
done:
	http_resp_clear(&r);
	X509_free(cert);
	return ret;
}

/* Appends "&name=value" to a query, percent-encoding all but unreserved bytes. */
static int
query_add(char *q, size_t qsz, const char *name, const char *val)
{
	static const char hexd[] = "0123456789ABCDEF";
	size_t n = strlen(q);
	const unsigned char *p;
	int w;

	w = snprintf(q + n, qsz - n, "%s%s=", n > 0 ? "&" : "", name);
	if (w < 0 || (size_t)w >= qsz - n)
		return -1;
	n += (size_t)w;
	for (p = (const unsigned char *)val; *p != '\0'; p++) {
		if (n + 4 > qsz)
			return -1;
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~')
			q[n++] = (char)*p;
		else {
			q[n++] = '%';
			q[n++] = hexd[*p >> 4];
			q[n++] = hexd[*p & 15];
		}
	}
	q[n] = '\0';
	return 0;
}

/*
 * Checks one leaf as a journal record: canonical msgpack, a map whose "seq"
 * is seq.  The decoded record goes to *rec (in z).
 */
static int
leaf_check(const uint8_t *leaf, size_t len, uint64_t seq, msgpack_zone *z, msgpack_object *rec)
{
	uint64_t	got;

	if (!mpk_is_canonical(leaf, len) || mpk_unpack(leaf, len, z, rec) != 0 ||
	    rec->type != MSGPACK_OBJECT_MAP) {
		ctl_err("record %llu is not a canonical msgpack map", (unsigned long long)seq);
		return -1;
	}
	if (mpk_get_u64(rec, "seq", &got) != 0 || got != seq) {
		ctl_err("record %llu carries another seq than its position in the journal",
		    (unsigned long long)seq);
		return -1;
	}
	return 0;
}

/* Writes one pulled record {"seq","leaf","record"} in the chosen format. */
static int
pull_write(FILE *fp, bool as_msgpack, uint64_t seq, const uint8_t *leaf, size_t len,
    const msgpack_object *rec, msgpack_zone *z)
{
	struct mpk_map	 m;
	msgpack_sbuffer	 sb;
	char		*json;
	int		 ret = -1;

	mpk_map_init(&m, z, 3);
	mpk_map_put(&m, "seq", mpk_uint(seq));
	mpk_map_put(&m, "leaf", mpk_bin(leaf, len));
	mpk_map_put(&m, "record", *rec);
	if (as_msgpack) {
		msgpack_sbuffer_init(&sb);
		if (mpk_pack(&m.mm_obj, &sb, false) == 0 &&
		    fwrite(sb.data, 1, sb.size, fp) == sb.size)
			ret = 0;
		msgpack_sbuffer_destroy(&sb);
	} else if ((json = mpk_to_json(&m.mm_obj, false)) != NULL) {
		if (fprintf(fp, "%s\n", json) >= 0)
			ret = 0;
		free(json);
	}
	if (ret != 0)
		ctl_err("cannot write record %llu: %s", (unsigned long long)seq, strerror(errno));
	return ret;
}

/* Writes one page of a records answer; *last and *n follow what was written. */
static int
pull_page(FILE *fp, bool as_msgpack, const msgpack_object *o, bool *have_last,
    uint64_t *last, uint64_t *n)
{
	msgpack_zone		 z;
	msgpack_object		 rec;
	const msgpack_object	*list, *e;
	const uint8_t		*leaf;
	size_t			 len;
	uint64_t		 seq;
	uint32_t		 i;
	int			 ret = -1;

	msgpack_zone_init(&z, 8192);
	if ((list = mpk_get(o, "records")) == NULL || list->type != MSGPACK_OBJECT_ARRAY) {
		ctl_err("the gateway's records answer has no \"records\" list");
		goto done;
	}
	for (i = 0; i < list->via.array.size; i++) {
		e = &list->via.array.ptr[i];
		if (mpk_get_u64(e, "seq", &seq) != 0 ||
		    mpk_get_bytes(e, "leaf", &z, &leaf, &len) != 0) {
			ctl_err("a record of the answer lacks seq or leaf");
			goto done;
		}
		if (*have_last && seq <= *last) {
			ctl_err("the gateway's records are not in seq order");
			goto done;
		}
		if (leaf_check(leaf, len, seq, &z, &rec) != 0 ||
		    pull_write(fp, as_msgpack, seq, leaf, len, &rec, &z) != 0)
			goto done;
		*have_last = true;
		*last = seq;
		(*n)++;
	}
	ret = 0;
done:
	msgpack_zone_destroy(&z);
	return ret;
}

static int
cmd_journal_pull(struct ctl *ctl, struct args *ar)
{
	static const struct optdef defs[] = {
		{ "subject",	true,	O_SUBJECT },
		{ "consumer",	true,	O_CONSUMER },
		{ "dept",	true,	O_DEPT },
		{ "item",	true,	O_ITEM },
		{ "since-ms",	true,	O_SINCE_MS },
		{ "until-ms",	true,	O_UNTIL_MS },
		{ "format",	true,	O_FORMAT },
		{ "out",	true,	O_OUT },
		{ NULL,		false,	O_NONE }
	};
	const char		*out = NULL, *val;
	int			 nextopt, optrc;
	enum opt		 id;
	struct http_resp	 r;
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*next;
	FILE			*fp = stdout;
	char			 filt[1024] = "", path[1200];
	bool			 as_msgpack = false, have_last = false, more, paging = false;
	uint64_t		 last = 0, n = 0, after = 0;
	int64_t			 v;
	int			 ret = CTL_FAIL;

	while ((nextopt = cmd_opt(ar, defs, usage_journal_pull, &id, &val, &optrc)) > 0) {
		switch (id) {
		case O_SUBJECT:
		case O_CONSUMER:
		case O_DEPT:
		case O_ITEM:
			if (val[0] == '\0' || query_add(filt, sizeof(filt), id == O_SUBJECT ?
			    "subject" : id == O_CONSUMER ? "consumer" : id == O_DEPT ? "dept" :
			    "item", val) != 0) {
				ctl_err("filter values must be non-empty and short");
				return CTL_USAGE;
			}
			break;
		case O_SINCE_MS:
		case O_UNTIL_MS:
			if (parse_i64(id == O_SINCE_MS ? "since-ms" : "until-ms", val, 0, INT64_MAX,
			    &v) != 0)
				return CTL_USAGE;
			snprintf(filt + strlen(filt), sizeof(filt) - strlen(filt), "%s%s=%lld",
			    filt[0] != '\0' ? "&" : "", id == O_SINCE_MS ? "since_ms" : "until_ms",
			    (long long)v);
			break;
		case O_FORMAT:
			if (strcmp(val, "msgpack") == 0)
				as_msgpack = true;
			else if (strcmp(val, "jsonl") != 0) {
				ctl_err("--format is jsonl or msgpack, not \"%s\"", val);
				return CTL_USAGE;
			}
			break;
		case O_OUT:
			out = val;
			break;
		default:
			if (ctl_global(ctl, id, val) != 0)
				return CTL_USAGE;
			break;
		}
	}
	if (nextopt < 0)
		return optrc;
	if (ctl_need_identity(ctl, "journal pull") != 0)
		return CTL_USAGE;
	if (out != NULL && (fp = fopen(out, "w")) == NULL) {
		ctl_err("cannot write %s: %s", out, strerror(errno));
		return CTL_FAIL;
	}
	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 8192);
	for (more = true; more; ) {
		snprintf(path, sizeof(path), "/v1/journal/records?limit=1000%s%s", filt[0] != '\0' ?
		    "&" : "", filt);
		if (paging)
			snprintf(path + strlen(path), sizeof(path) - strlen(path), "&after=%llu",
			    (unsigned long long)after);
		msgpack_zone_clear(&z);
		if (http_get_object(ctl, path, &z, &o, &r) != CTL_OK ||
		    pull_page(fp, as_msgpack, &o, &have_last, &last, &n) != 0)
			goto done;
		http_resp_clear(&r);
		next = mpk_get(&o, "next");
		more = next != NULL && next->type != MSGPACK_OBJECT_NIL;
		if (more && (mpk_obj_u64(next, &after) != 0 || (have_last && after < last))) {
			ctl_err("the gateway's cursor is malformed");
			goto done;
		}
		paging = true;
	}
	if (fflush(fp) != 0 || ferror(fp)) {
		ctl_err("cannot write %s: %s", out != NULL ? out : "standard output",
		    strerror(errno));
		goto done;
	}
	if (out != NULL && !ctl->c_quiet)
		fprintf(stderr, "%llu records written to %s\n", (unsigned long long)n, out);
	ret = CTL_OK;
done:
	if (out != NULL && fclose(fp) != 0 && ret == CTL_OK) {
		ctl_err("cannot write %s: %s", out, strerror(errno));
		ret = CTL_FAIL;
	}
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

/* A proof's "path" list as hashes; -1 when it is not a list of 32-byte values. */
static int
proof_path(const msgpack_object *o, msgpack_zone *z, uint8_t path[][32], size_t *npath)
{
	const msgpack_object	*list;
	const uint8_t		*p;
	size_t			 len;
	uint32_t		 i;

	if ((list = mpk_get(o, "path")) == NULL || list->type != MSGPACK_OBJECT_ARRAY ||
	    list->via.array.size > MK_MAX_PATH)
		return -1;
	for (i = 0; i < list->via.array.size; i++) {
		if (mpk_obj_bytes(&list->via.array.ptr[i], z, &p, &len) != 0 || len != 32)
			return -1;
		memcpy(path[i], p, 32);
	}
	*npath = list->via.array.size;
	return 0;
}

/* Checks the gateway's consistency proof from the saved checkpoint to cur. */
static int
verify_consistency(struct ctl *ctl, const struct ckpt *saved, const struct ckpt *cur)
{
	struct http_resp	 r;
	msgpack_zone		 z;
	msgpack_object		 o;
	uint8_t			 path[MK_MAX_PATH][32];
	size_t			 npath;
	char			 q[128];
	int			 ret = -1;

	if (saved->ck_size == 0)
		return 0;	/* the empty tree is a prefix of every tree */
	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 4096);
	snprintf(q, sizeof(q), "/v1/journal/proof/consistency?first=%llu&second=%llu",
	    (unsigned long long)saved->ck_size, (unsigned long long)cur->ck_size);
	if (http_get_object(ctl, q, &z, &o, &r) != CTL_OK)
		goto done;
	if (proof_path(&o, &z, path, &npath) != 0) {
		ctl_err("the gateway's consistency proof is malformed");
		goto done;
	}
	if (merkle_verify_consistency(MK_SHA256, saved->ck_size, cur->ck_size, saved->ck_root,
	    cur->ck_root, path, npath) != 0) {
		ctl_err("the consistency proof from the saved checkpoint (%llu records) to the "
		    "current one (%llu records) does not verify: the journal was rewritten",
		    (unsigned long long)saved->ck_size, (unsigned long long)cur->ck_size);
		goto done;
	}
	ret = 0;
done:
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

/* Proves one pulled record (a map {"seq","leaf","record"}) is in cur's tree. */
static int
verify_one_record(struct ctl *ctl, const msgpack_object *e, const struct ckpt *cur,
    const char *file)
{
	struct http_resp	 r;
	msgpack_zone		 z;
	msgpack_object		 o, rec;
	const msgpack_object	*given;
	const uint8_t		*leaf;
	uint8_t			 lh[32], path[MK_MAX_PATH][32];
	size_t			 len, npath;
	uint64_t		 seq;
	char			 q[128], *j1 = NULL, *j2 = NULL;
	int			 ret = -1;

	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 4096);
	if (e->type != MSGPACK_OBJECT_MAP || mpk_get_u64(e, "seq", &seq) != 0 ||
	    mpk_get_bytes(e, "leaf", &z, &leaf, &len) != 0) {
		ctl_err("%s: an entry lacks seq or leaf", file);
		goto done;
	}
	if (leaf_check(leaf, len, seq, &z, &rec) != 0)
		goto done;
	/* The decoded copy must say what the leaf says. */
	if ((given = mpk_get(e, "record")) != NULL &&
	    ((j1 = mpk_to_json(given, false)) == NULL ||
	    (j2 = mpk_to_json(&rec, false)) == NULL || strcmp(j1, j2) != 0)) {
		ctl_err("%s: the decoded record %llu differs from its leaf", file,
		    (unsigned long long)seq);
		goto done;
	}
	if (seq >= cur->ck_size) {
		ctl_err("%s: record %llu is beyond the current checkpoint (%llu records)", file,
		    (unsigned long long)seq, (unsigned long long)cur->ck_size);
		goto done;
	}
	snprintf(q, sizeof(q), "/v1/journal/proof/inclusion?seq=%llu&size=%llu",
	    (unsigned long long)seq, (unsigned long long)cur->ck_size);
	if (http_get_object(ctl, q, &z, &o, &r) != CTL_OK)
		goto done;
	if (proof_path(&o, &z, path, &npath) != 0) {
		ctl_err("the gateway's inclusion proof of record %llu is malformed",
		    (unsigned long long)seq);
		goto done;
	}
	merkle_leaf_hash(MK_SHA256, leaf, len, lh);
	if (merkle_verify_inclusion(MK_SHA256, lh, seq, cur->ck_size, path, npath,
	    cur->ck_root) != 0) {
		ctl_err("%s: record %llu is not in the journal as signed by the checkpoint "
		    "(its inclusion proof does not verify)", file, (unsigned long long)seq);
		goto done;
	}
	ret = 0;
done:
	free(j1);
	free(j2);
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

/* Every record of a "journal pull" file, JSON Lines or a msgpack stream. */
static int
verify_records(struct ctl *ctl, const char *file, const struct ckpt *cur, uint64_t *count)
{
	msgpack_unpacked	 up;
	msgpack_zone		 z;
	msgpack_object		 o;
	uint8_t			*buf = NULL;
	size_t			 len, off = 0, eol;
	char			 err[256];
	int			 ret = -1;

	*count = 0;
	if (read_input(file, CTL_BODY_MAX, &buf, &len) != 0)
		return -1;
	msgpack_unpacked_init(&up);
	msgpack_zone_init(&z, 4096);
	if (len > 0 && is_msgpack_map_byte(buf[0])) {
		while (off < len) {
			if (msgpack_unpack_next(&up, (const char *)buf, len, &off) !=
			    MSGPACK_UNPACK_SUCCESS) {
				ctl_err("%s: not a stream of msgpack maps", file);
				goto done;
			}
			if (verify_one_record(ctl, &up.data, cur, file) != 0)
				goto done;
			(*count)++;
		}
	} else {
		for (; off < len; off = eol + 1) {
			for (eol = off; eol < len && buf[eol] != '\n'; eol++)
				;
			if (eol == off)
				continue;
			msgpack_zone_clear(&z);
			if (mpk_from_json((const char *)buf + off, eol - off, &z, &o, err,
			    sizeof(err)) != 0) {
				ctl_err("%s: line %llu: %s", file, (unsigned long long)*count + 1,
				    err);
				goto done;
			}
			if (verify_one_record(ctl, &o, cur, file) != 0)
				goto done;
			(*count)++;
		}
	}
	ret = 0;
done:
	msgpack_unpacked_destroy(&up);
	msgpack_zone_destroy(&z);
	free(buf);
	return ret;
}

/* What journal verify recomputes, page by page. */
struct jwalk {
	struct merkle_cr	 jw_cr;
	const struct ckpt	*jw_saved;	/* NULL without --checkpoint */
	bool			 jw_saved_ok;	/* its root was met and matched */
	bool			 jw_saved_bad;	/* its root was met and differed */
	/*
	 * jw_cr as it was before each page: enough to recompute the root of
	 * any prefix, so that a mismatch can be narrowed down to one record.
	 * Without memory for them, verification still works, less helpfully.
	 */
	struct merkle_cr	*jw_marks;
	size_t			 jw_nmarks, jw_capmarks;
	bool			 jw_nomarks;
};

/* Remembers the compact range before the page about to be read. */
static void
jwalk_mark(struct jwalk *w)
{
	struct merkle_cr	*m;
	size_t			 cap;

	if (w->jw_nomarks)
		return;
	if (w->jw_nmarks == w->jw_capmarks) {
		cap = w->jw_capmarks == 0 ? 64 : w->jw_capmarks * 2;
		if (cap > SIZE_MAX / sizeof(*m) ||
		    (m = realloc(w->jw_marks, cap * sizeof(*m))) == NULL) {
			w->jw_nomarks = true;
			return;
		}
		w->jw_marks = m;
		w->jw_capmarks = cap;
	}
	w->jw_marks[w->jw_nmarks++] = w->jw_cr;
}

/*
 * Whether the first m records, whose root we computed as root_m, are a
 * prefix of the signed tree (size, root): the gateway's consistency proof
 * from m to size must verify.  -1 when the proof cannot be fetched.
 */
static int
jwalk_prefix_ok(struct ctl *ctl, uint64_t m, const uint8_t root_m[32], uint64_t size,
    const uint8_t root[32], bool *ok)
{
	struct http_resp	 r;
	msgpack_zone		 z;
	msgpack_object		 o;
	uint8_t			 path[MK_MAX_PATH][32];
	size_t			 npath;
	char			 q[128];
	int			 ret = -1;

	*ok = m == 0;
	if (m == 0)
		return 0;
	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 4096);
	snprintf(q, sizeof(q), "/v1/journal/proof/consistency?first=%llu&second=%llu",
	    (unsigned long long)m, (unsigned long long)size);
	if (http_get_object(ctl, q, &z, &o, &r) != CTL_OK)
		goto done;
	/* A malformed proof proves nothing: the prefix does not count as verified. */
	*ok = proof_path(&o, &z, path, &npath) == 0 &&
	    merkle_verify_consistency(MK_SHA256, m, size, root_m, root, path, npath) == 0;
	ret = 0;
done:
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

/*
 * After the records read did not recompute to the signed root of a tree of
 * size records, finds the first record that is not the one signed: the
 * longest prefix the gateway can prove consistent with the signed tree ends
 * just before it.  Binary search, first over the pages read, then inside one
 * page, so it costs about log2(size) proofs.  Names the record on stderr;
 * -1 when it cannot tell.
 */
static int
jwalk_locate(struct ctl *ctl, const struct jwalk *w, uint64_t size, const uint8_t root[32])
{
	struct http_resp	 r;
	struct merkle_cr	 cr;
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*leaves;
	const uint8_t		*b;
	uint8_t			 rm[32], (*hashes)[32] = NULL;
	uint64_t		 start, end, lo, hi, mid, m;
	size_t			 nmarks = 0, page, i, len;
	char			 path[128];
	bool			 ok;
	int			 ret = -1;

	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 8192);
	if (w->jw_nomarks || w->jw_nmarks == 0 || size == 0)
		goto done;
	/* The pages that start inside the tree; the first starts at 0. */
	while (nmarks < w->jw_nmarks && w->jw_marks[nmarks].cr_size < size)
		nmarks++;
	if (nmarks == 0 || w->jw_marks[0].cr_size != 0)
		goto done;
	/* Page boundaries: the first (lo) is a good prefix, the last (hi) is not. */
	lo = 0;
	hi = nmarks;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		merkle_cr_root(MK_SHA256, &w->jw_marks[mid], rm);
		if (jwalk_prefix_ok(ctl, w->jw_marks[mid].cr_size, rm, size, root, &ok) != 0)
			goto done;
		if (ok)
			lo = mid;
		else
			hi = mid;
	}
	/* The first bad record is in the page starting at mark lo. */
	page = lo;
	start = w->jw_marks[page].cr_size;
	end = hi < nmarks ? w->jw_marks[hi].cr_size : size;
	if (end <= start || end - start > CTL_LEAVES_PAGE ||
	    (hashes = calloc(end - start, sizeof(*hashes))) == NULL)
		goto done;
	snprintf(path, sizeof(path), "/v1/journal/leaves?start=%llu&end=%llu",
	    (unsigned long long)start, (unsigned long long)end);
	if (http_get_object(ctl, path, &z, &o, &r) != CTL_OK)
		goto done;
	if ((leaves = mpk_get(&o, "leaves")) == NULL || leaves->type != MSGPACK_OBJECT_ARRAY ||
	    leaves->via.array.size != end - start)
		goto done;
	for (i = 0; i < leaves->via.array.size; i++) {
		if (mpk_obj_bytes(&leaves->via.array.ptr[i], &z, &b, &len) != 0)
			goto done;
		merkle_leaf_hash(MK_SHA256, b, len, hashes[i]);
	}
	/* Prefix lengths: start is good, end is not. */
	lo = start;
	hi = end;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		cr = w->jw_marks[page];
		for (m = start; m < mid; m++)
			merkle_cr_append(MK_SHA256, &cr, hashes[m - start]);
		merkle_cr_root(MK_SHA256, &cr, rm);
		if (jwalk_prefix_ok(ctl, mid, rm, size, root, &ok) != 0)
			goto done;
		if (ok)
			lo = mid;
		else
			hi = mid;
	}
	ctl_err("record %llu does not match the journal the checkpoint of %llu records signed: "
	    "the first %llu records are consistent with it, record %llu is not",
	    (unsigned long long)lo, (unsigned long long)size, (unsigned long long)lo,
	    (unsigned long long)lo);
	ret = 0;
done:
	free(hashes);
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

/* Adds one page of leaves [start, start + n) to the walk; n is returned in *got. */
static int
jwalk_page(struct jwalk *w, const msgpack_object *o, uint64_t start, uint64_t want,
    uint64_t *got)
{
	msgpack_zone		 z;
	msgpack_object		 rec;
	const msgpack_object	*leaves;
	const uint8_t		*b;
	size_t			 len;
	uint64_t		 seq, idx;
	uint32_t		 i;
	uint8_t			 leaf[32], root[32];
	char			 hex1[65], hex2[65];
	int			 ret = -1;

	msgpack_zone_init(&z, 8192);
	if ((leaves = mpk_get(o, "leaves")) == NULL || leaves->type != MSGPACK_OBJECT_ARRAY) {
		ctl_err("the gateway's leaves answer has no \"leaves\" list");
		goto done;
	}
	if (leaves->via.array.size == 0 || leaves->via.array.size > want) {
		ctl_err("the gateway returned %u leaves when asked for records %llu to %llu",
		    leaves->via.array.size, (unsigned long long)start,
		    (unsigned long long)(start + want - 1));
		goto done;
	}
	for (i = 0; i < leaves->via.array.size; i++) {
		idx = start + i;
		if (mpk_obj_bytes(&leaves->via.array.ptr[i], &z, &b, &len) != 0) {
			ctl_err("record %llu is not bytes (base64url)", (unsigned long long)idx);
			goto done;
		}
		if (!mpk_is_canonical(b, len) || mpk_unpack(b, len, &z, &rec) != 0 ||
		    rec.type != MSGPACK_OBJECT_MAP) {
			ctl_err("record %llu is not a canonical msgpack map",
			    (unsigned long long)idx);
			goto done;
		}
		if (mpk_get_u64(&rec, "seq", &seq) != 0 || seq != idx) {
			ctl_err("record %llu carries another seq than its position in the "
			    "journal", (unsigned long long)idx);
			goto done;
		}
		merkle_leaf_hash(MK_SHA256, b, len, leaf);
		merkle_cr_append(MK_SHA256, &w->jw_cr, leaf);
		if (w->jw_saved != NULL && w->jw_cr.cr_size == w->jw_saved->ck_size) {
			merkle_cr_root(MK_SHA256, &w->jw_cr, root);
			if (memcmp(root, w->jw_saved->ck_root, 32) != 0) {
				hex_encode(root, 32, hex1);
				hex_encode(w->jw_saved->ck_root, 32, hex2);
				ctl_err("the first %llu records have root %s, but the saved "
				    "checkpoint signed root %s: the journal was rewritten after "
				    "that checkpoint", (unsigned long long)w->jw_saved->ck_size,
				    hex1, hex2);
				w->jw_saved_bad = true;
				goto done;
			}
			w->jw_saved_ok = true;
		}
	}
	*got = leaves->via.array.size;
	ret = 0;
done:
	msgpack_zone_destroy(&z);
	return ret;
}

static int
cmd_journal_verify(struct ctl *ctl, struct args *ar)
{
	static const struct optdef defs[] = {
		{ "checkpoint",		true,	O_CHECKPOINT },
		{ "checkpoint-cert",	true,	O_CHECKPOINT_CERT },
		{ "records",		true,	O_RECORDS },
		{ NULL,			false,	O_NONE }
	};
	const char		*savedpath = NULL, *certopt = NULL, *recpath = NULL, *val;
	int			 nextopt, optrc;
	enum opt		 id;
	struct http_resp	 r;
	struct ckpt		 cur, saved;
	struct jwalk		 w;
	msgpack_zone		 z;
	msgpack_object		 o;
	X509			*cert = NULL;
	uint64_t		 start, want, got, nrec = 0;
	uint8_t			 root[32];
	char			 path[128], hex[65], hex2[65], when[64], swhen[64], what[PATH_MAX + 32];
	json_t			*j;
	int			 ret = CTL_FAIL;

	while ((nextopt = cmd_opt(ar, defs, usage_journal_verify, &id, &val, &optrc)) > 0) {
		switch (id) {
		case O_CHECKPOINT:
			savedpath = val;
			break;
		case O_CHECKPOINT_CERT:
			certopt = val;
			break;
		case O_RECORDS:
			recpath = val;
			break;
		default:
			if (ctl_global(ctl, id, val) != 0)
				return CTL_USAGE;
			break;
		}
	}
	if (nextopt < 0)
		return optrc;
	if (ctl_need_identity(ctl, "journal verify") != 0)
		return CTL_USAGE;
	if ((cert = ckpt_cert_load(ctl, certopt)) == NULL)
		return CTL_FAIL;
	memset(&r, 0, sizeof(r));
	memset(&w, 0, sizeof(w));
	memset(&saved, 0, sizeof(saved));
	merkle_cr_init(&w.jw_cr);
	msgpack_zone_init(&z, 2048);

	/* The saved checkpoint first: a broken file should not cost a download. */
	if (savedpath != NULL) {
		snprintf(what, sizeof(what), "saved checkpoint %s", savedpath);
		if (load_object(savedpath, &z, &o) != 0 || ckpt_check(&o, cert, what, &saved) != 0)
			goto done;
		w.jw_saved = &saved;
	}
	if (ckpt_fetch(ctl, cert, &cur, &r) != CTL_OK)
		goto done;
	http_resp_clear(&r);
	if (savedpath != NULL) {
		if (strcmp(saved.ck_origin, cur.ck_origin) != 0) {
			ctl_err("the saved checkpoint is from gateway \"%s\", the current one "
			    "from \"%s\"", saved.ck_origin, cur.ck_origin);
			goto done;
		}
		if (saved.ck_size > cur.ck_size) {
			ctl_err("the saved checkpoint covers %llu records but the journal now "
			    "has only %llu: records were removed",
			    (unsigned long long)saved.ck_size, (unsigned long long)cur.ck_size);
			goto done;
		}
		if (saved.ck_size == 0) {
			merkle_cr_root(MK_SHA256, &w.jw_cr, root);
			if (memcmp(root, saved.ck_root, 32) != 0) {
				ctl_err("the saved checkpoint of the empty journal has a wrong root");
				goto done;
			}
			w.jw_saved_ok = true;
		}
	}
	for (start = 0; start < cur.ck_size; start += got) {
		want = cur.ck_size - start;
		if (want > CTL_LEAVES_PAGE)
			want = CTL_LEAVES_PAGE;
		snprintf(path, sizeof(path), "/v1/journal/leaves?start=%llu&end=%llu",
		    (unsigned long long)start, (unsigned long long)(start + want));
		msgpack_zone_destroy(&z);
		msgpack_zone_init(&z, 8192);
		jwalk_mark(&w);
		if (http_get_object(ctl, path, &z, &o, &r) != CTL_OK)
			goto done;
		if (jwalk_page(&w, &o, start, want, &got) != 0) {
			if (w.jw_saved_bad)
				(void)jwalk_locate(ctl, &w, saved.ck_size, saved.ck_root);
			goto done;
		}
		http_resp_clear(&r);
	}
	merkle_cr_root(MK_SHA256, &w.jw_cr, root);
	hex_encode(root, 32, hex);
	fmt_time_ms(cur.ck_t_ms, when, sizeof(when));
	if (memcmp(root, cur.ck_root, 32) != 0) {
		hex_encode(cur.ck_root, 32, hex2);
		ctl_err("the %llu records recompute to root %s, but the checkpoint signed by "
		    "%s at %s says %s: the journal does not match its checkpoint",
		    (unsigned long long)cur.ck_size, hex, cur.ck_origin, when, hex2);
		http_resp_clear(&r);
		(void)jwalk_locate(ctl, &w, cur.ck_size, cur.ck_root);
		goto done;
	}
	if (savedpath != NULL && !w.jw_saved_ok) {
		ctl_err("the saved checkpoint was never reached while reading the journal");
		goto done;
	}
	if (savedpath != NULL && verify_consistency(ctl, &saved, &cur) != 0)
		goto done;
	if (recpath != NULL && verify_records(ctl, recpath, &cur, &nrec) != 0)
		goto done;
	if (ctl->c_json) {
		j = json_pack("{s:b, s:o}", "verified", 1, "checkpoint", ckpt_json(&cur));
		if (j != NULL && savedpath != NULL &&
		    json_object_set_new(j, "saved_checkpoint", ckpt_json(&saved)) != 0) {
			json_decref(j);
			j = NULL;
		}
		if (j != NULL && recpath != NULL &&
		    json_object_set_new(j, "records_included", json_integer((json_int_t)nrec)) != 0) {
			json_decref(j);
			j = NULL;
		}
		if (json_print(j) != 0)
			goto done;
	} else if (!ctl->c_quiet) {
		printf("journal verified: %llu records, root %s matches the checkpoint signed "
		    "by %s at %s\n", (unsigned long long)cur.ck_size, hex, cur.ck_origin, when);
		if (savedpath != NULL) {
			hex_encode(saved.ck_root, 32, hex2);
			fmt_time_ms(saved.ck_t_ms, swhen, sizeof(swhen));
			printf("saved checkpoint verified: its %llu records (root %s, signed at "
			    "%s) are the first %llu of the journal, and the consistency proof "
			    "verifies\n", (unsigned long long)saved.ck_size, hex2, swhen,
			    (unsigned long long)saved.ck_size);
		}
		if (recpath != NULL)
			printf("records verified: all %llu records of %s are in the journal "
			    "(inclusion proofs)\n", (unsigned long long)nrec, recpath);
	}
	ret = CTL_OK;
done:
	free(w.jw_marks);
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	X509_free(cert);
	return ret;
}

/*
 * Commands and dispatch.  A command is one word (health, fetch) or a
 * group word and a verb (consent issue, journal verify).
 */
struct command {
	const char	*cm_group;
	const char	*cm_verb;	/* NULL for one-word commands */
	const char	*cm_usage;
	int		(*cm_run)(struct ctl *, struct args *);
};

static const struct command commands[] = {
	{ "health",	NULL,		usage_health,		 cmd_health },
	{ "consent",	"issue",	usage_consent_issue,	 cmd_consent_issue },
	{ "consent",	"revoke",	usage_consent_revoke,	 cmd_consent_revoke },
	{ "fetch",	NULL,		usage_fetch,		 cmd_fetch },
	{ "seal",	"verify",	usage_seal_verify,	 cmd_seal_verify },
	{ "journal",	"checkpoint",	usage_journal_checkpoint, cmd_journal_checkpoint },
	{ "journal",	"pull",		usage_journal_pull,	 cmd_journal_pull },
	{ "journal",	"verify",	usage_journal_verify,	 cmd_journal_verify },
	{ "access",	"report",	usage_access_report,	 cmd_access_report },
	{ "adapter",	"register",	usage_adapter_register,	 cmd_adapter_register },
	{ "adapter",	"list",		usage_adapter_list,	 cmd_adapter_list },
	{ "adapter",	"show",		usage_adapter_show,	 cmd_adapter_show },
	{ "adapter",	"disable",	usage_adapter_disable,	 cmd_adapter_disable },
	{ "policy",	"load",		usage_policy_load,	 cmd_policy_load },
	{ "policy",	"list",		usage_policy_list,	 cmd_policy_list },
	{ "policy",	"show",		usage_policy_show,	 cmd_policy_show },
};
#define NCOMMANDS	(sizeof(commands) / sizeof(commands[0]))

/* Prints the usage of every command of a group; false when there is none. */
static bool
group_usage(const char *group, FILE *fp)
{
	size_t	i;
	bool	any = false;

	for (i = 0; i < NCOMMANDS; i++) {
		if (strcmp(commands[i].cm_group, group) != 0)
			continue;
		if (any)
			fputc('\n', fp);
		fputs(commands[i].cm_usage, fp);
		any = true;
	}
	return any;
}

static const struct command *
command_find(const char *group, const char *verb)
{
	size_t	i;

	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].cm_group, group) == 0 &&
		    (commands[i].cm_verb == NULL ||
		    (verb != NULL && strcmp(commands[i].cm_verb, verb) == 0)))
			return &commands[i];
	return NULL;
}

static bool
group_exists(const char *group)
{
	size_t	i;

	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].cm_group, group) == 0)
			return true;
	return false;
}

/* "lianctl help [COMMAND...]" */
static int
cmd_help(struct args *ar)
{
	const struct command	*cm;
	const char		*group, *verb;

	if (ar->ar_i >= ar->ar_argc) {
		fputs(usage_main, stdout);
		return CTL_OK;
	}
	group = ar->ar_argv[ar->ar_i];
	verb = ar->ar_i + 1 < ar->ar_argc ? ar->ar_argv[ar->ar_i + 1] : NULL;
	if ((cm = command_find(group, verb)) != NULL) {
		fputs(cm->cm_usage, stdout);
		return CTL_OK;
	}
	if (group_usage(group, stdout))
		return CTL_OK;
	ctl_err("no command \"%s\"", group);
	usage_hint(ar);
	return CTL_USAGE;
}

static int
ctl_main(int argc, char *argv[])
{
	struct ctl		 ctl;
	struct args		 ar;
	const struct command	*cm;
	enum arg_kind		 k;
	enum opt		 id;
	const char		*word, *verb;
	char			 name[64];
	int			 ret;

	memset(&ctl, 0, sizeof(ctl));
	(void)parse_gateway(&ctl, CTL_DEFAULT_GATEWAY);
	ctl.c_certs = CTL_DEFAULT_CERTS;
	ctl.c_timeout = CTL_TIMEOUT_S;
	memset(&ar, 0, sizeof(ar));
	ar.ar_argc = argc;
	ar.ar_argv = argv;
	ar.ar_i = 1;

	while ((k = arg_next(&ar, NULL, &id, &word)) == ARG_OPT) {
		if (id == O_HELP) {
			fputs(usage_main, stdout);
			return CTL_OK;
		}
		if (ctl_global(&ctl, id, word) != 0)
			return CTL_USAGE;
	}
	if (k == ARG_BAD)
		return CTL_USAGE;
	if (k == ARG_END) {
		fputs(usage_main, stderr);
		return CTL_USAGE;
	}
	if (strcmp(word, "help") == 0)
		return cmd_help(&ar);
	if (!group_exists(word)) {
		ctl_err("no command \"%s\"", word);
		usage_hint(&ar);
		return CTL_USAGE;
	}
	verb = NULL;
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
	if (cm->cm_verb != NULL)
		snprintf(name, sizeof(name), "%s %s", cm->cm_group, cm->cm_verb);
	else
		snprintf(name, sizeof(name), "%s", cm->cm_group);
	ar.ar_cmd = name;
	ret = cm->cm_run(&ctl, &ar);
	SSL_CTX_free(ctl.c_tls);
	return ret;
}

int
main(int argc, char *argv[])
{
	int	ret;

	/* A gateway that closes early must not kill us in the middle of a write. */
	signal(SIGPIPE, SIG_IGN);
	log_init(CTL_PROG, 0);
	ret = ctl_main(argc, argv);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_err("cannot write to standard output: %s", strerror(errno));
		return CTL_FAIL;
	}
	return ret;
}
