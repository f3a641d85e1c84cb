/*
 * lianctl.h - what the files of lianctl share: the settings of a run, the
 * command and option tables, the HTTPS client and the file helpers.
 *
 * A command is a struct command (its words, help text and option table)
 * and a run function.  The run function fills a settings struct of its own
 * with ctl_args(), which parses the command line against the command's
 * option table, so no command writes its own option loop.  Each file of
 * commands exports only its struct command values; lianctl.c lists them
 * in the command table.
 */
#ifndef LIANCTL_H
#define LIANCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>
#include <openssl/x509.h>

#define CTL_PROG		"lianctl"
#define CTL_DEFAULT_GATEWAY	"127.0.0.1:8443"
#define CTL_DEFAULT_PORT	"8443"
#define CTL_DEFAULT_CERTS	"certs/demo"
#define CTL_DEFAULT_AUD		"lianban-demo"
#define CTL_BODY_MAX		((size_t)64 * 1024 * 1024)	/* largest answer or saved file */
#define CTL_TOKEN_MAX		((size_t)1024 * 1024)		/* largest consent token file */
#define CTL_LEAVES_PAGE		1000		/* the gateway's per-call limit on leaves */
#define CTL_TIMEOUT_S		30
#define CTL_FETCH_GROUPS	64		/* more than the gateway takes, so it can say no */
#define CTL_ERR_MAX		1024		/* one error sentence */

enum ctl_exit {
	CTL_OK = 0,		/* the operation succeeded */
	CTL_FAIL = 1,		/* refused, failed, or did not verify */
	CTL_USAGE = 2		/* the command line is wrong */
};

struct http_conn;

/* Settings shared by every command (the global options), and the connection. */
struct ctl {
	char		 c_host[256];
	char		 c_port[8];
	const char	*c_cert;	/* client identity, PEM */
	const char	*c_key;
	const char	*c_certs;	/* demo PKI directory: default file locations */
	const char	*c_ca;		/* CA of the gateway's TLS certificate */
	int64_t		 c_timeout;	/* seconds, for connecting and for a silent gateway */
	bool		 c_json;
	bool		 c_quiet;
	/*
	 * The connection to the gateway, opened by the first request and used
	 * by every later one of the command; closed by http_close().
	 */
	struct http_conn *c_http;
};

/*
 * Options.  A table of struct optdef, ended by an entry whose od_name is
 * NULL, says for each option of a command how its value is parsed and
 * where in the command's settings it is stored (od_off, an offsetof() in
 * the settings struct the command hands to ctl_args()).  The same table
 * gives the option lines of the command's --help.
 */
enum optkind {
	OPT_FLAG,	/* bool: true when given; the option takes no value */
	OPT_STR,	/* const char *: the value as given (it points into argv) */
	OPT_INT,	/* int64_t: a decimal integer from od_min to od_max */
	OPT_CHOICE,	/* int: the index of the value in od_choices */
	OPT_FUNC,	/* od_func parses the value (it reports its own errors) */
	OPT_GLOBAL,	/* a global option (--json, --quiet) with the command's own help */
	OPT_HELP,	/* prints the help and ends the command with status 0 */
	OPT_VERSION	/* prints the version and ends the command with status 0 */
};

struct optdef {
	const char		 *od_name;	/* without the leading "--" */
	const char		 *od_arg;	/* its value in the help ("FILE"); NULL: none */
	enum optkind		  od_kind;
	size_t			  od_off;	/* where the value goes in the settings */
	int64_t			  od_min, od_max;	/* OPT_INT */
	const char *const	 *od_choices;	/* OPT_CHOICE: NULL-terminated */
	/* OPT_FUNC: dst is the settings at od_off; 0, or -1 when reported. */
	int			(*od_func)(void *dst, const struct optdef *od, const char *val);
	bool			  od_required;
	const char		 *od_help;	/* help lines, "\n" between them */
};

/* Whether a command acts as a client identity (--cert and --key). */
enum ctl_ident {
	IDENT_NONE,		/* no network, or the identity is not looked at */
	IDENT_OPTIONAL,		/* both or neither */
	IDENT_NEEDED
};

struct args;

/*
 * A command is one word (health, fetch) or a group word and a verb
 * (consent issue, journal verify), taking no operand or exactly one.
 */
struct command {
	const char		*cm_name;	/* "fetch", "journal verify" */
	const char		*cm_operand;	/* "FILE", "ID"; NULL when it takes none */
	size_t			 cm_operand_off;	/* const char * in the settings */
	const char		*cm_summary;	/* one line of the command index */
	/*
	 * The usage line(s) after "usage: lianctl "; NULL gives
	 * "[global options] NAME OPERAND".
	 */
	const char		*cm_synopsis;
	const char		*cm_about;	/* the paragraph after the usage */
	const char		*cm_notes;	/* after the options; may be NULL */
	const struct optdef	*cm_opts;	/* may be NULL: global options only */
	/*
	 * The rules between options that one table row cannot state: called
	 * with the settings once they are parsed; -1 when reported.  May be NULL.
	 */
	int			(*cm_check)(const void *set, const struct args *ar);
	enum ctl_ident		 cm_ident;
	int			(*cm_run)(struct ctl *, struct args *);
	/* What cm_run needs beyond its settings (which registry...); may be NULL. */
	const void		*cm_data;
};

/* The command line while it is being read; it borrows argv. */
struct args {
	int			  ar_argc;
	char			**ar_argv;
	int			  ar_i;
	bool			  ar_operands;	/* "--" was seen */
	const struct command	 *ar_cmd;	/* NULL before the command */
	const char		 *ar_name;	/* its cm_name; "" before the command */
};

struct http_resp {
	long		 hr_status;
	char		 hr_ctype[128];
	uint8_t		*hr_body;	/* malloc'ed, NUL-terminated for JSON parsers */
	size_t		 hr_len;
};

struct http_req {
	const char	*hq_method;	/* GET, POST, PUT, DELETE */
	const char	*hq_path;	/* with its query */
	const char	*hq_accept;	/* NULL: application/json */
	const char	*hq_ctype;	/* of the body; NULL: application/msgpack */
	const void	*hq_body;	/* NULL: no body */
	size_t		 hq_len;
	const char	*hq_header;	/* one more header line "Name: value", or NULL */
};

/* lianctl.c: main, the option parser, the command table and file helpers */
void	 ctl_err(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 ctl_usage_hint(const struct args *ar);
/*
 * Parses the rest of the command line for ar->ar_cmd into set (the
 * command's settings, initialised with its defaults), checks the operand,
 * the required options, the command's cm_check and the client identity.  0: go on; -1: stop, with
 * the exit status in *rc (CTL_OK after --help, CTL_USAGE after an error,
 * which is reported).
 */
int	 ctl_args(struct ctl *ctl, struct args *ar, void *set, int *rc);
/* OPT_FUNC for a jti: 32 hex digits into a struct ctl_jti. */
struct ctl_jti {
	bool	jt_given;
	uint8_t	jt_id[16];
};
int	 ctl_opt_jti(void *dst, const struct optdef *od, const char *val);
int	 ctl_parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
const char *ctl_path(const struct ctl *ctl, const char *explicit, const char *rel,
	    char *buf, size_t bufsz);
/*
 * Reads a whole file of at most max bytes, or standard input for "-"; the
 * caller frees *buf, which is NUL-terminated (not counted in *len).
 */
int	 ctl_read_input(const char *path, size_t max, uint8_t **buf, size_t *len);
int	 ctl_write_output(const char *path, const void *data, size_t len);
/* Whether bytes starting with c are msgpack rather than JSON text. */
bool	 ctl_is_msgpack(uint8_t c);
/* A saved answer (JSON or msgpack) as a map; the object lives in z, not in the file's bytes. */
int	 ctl_load_object(const char *path, msgpack_zone *z, msgpack_object *o);
/* "a,b,c" as an array of str in z that borrows from s; -1 on an empty element. */
int	 ctl_list_split(msgpack_zone *z, const char *s, msgpack_object *out);
void	 ctl_fmt_time(uint64_t secs, char *buf, size_t bufsz);
void	 ctl_fmt_time_ms(uint64_t ms, char *buf, size_t bufsz);
/* Prints j (pretty, in its own key order) and releases it. */
int	 ctl_json_print(json_t *j);

/* lianctl_http.c: the HTTPS client (libcurl), one connection per command */
/*
 * Sends one request and reads the whole answer into resp, whatever its
 * status; resp owns the body until http_resp_clear().  -1 (reported) when
 * no answer could be had.
 */
int	 http_request(struct ctl *ctl, const struct http_req *req, struct http_resp *resp);
/*
 * A request whose 2xx answer becomes an object in z (it does not borrow
 * from resp, which the caller clears); CTL_* (reported).
 */
int	 http_call(struct ctl *ctl, const struct http_req *req, msgpack_zone *z,
	    msgpack_object *o, struct http_resp *resp);
/* http_call() for a GET of JSON. */
int	 http_get_object(struct ctl *ctl, const char *path, msgpack_zone *z,
	    msgpack_object *o, struct http_resp *resp);
/* A request whose 2xx answer is printed as pretty JSON (unless --quiet); CTL_*. */
int	 http_show(struct ctl *ctl, const struct http_req *req);
/* Closes the connection; ctl->c_http is NULL after. */
void	 http_close(struct ctl *ctl);
void	 http_resp_clear(struct http_resp *r);
bool	 http_resp_is_msgpack(const struct http_resp *r);
/* The answer's body as an object (a map) in z, from JSON or msgpack. */
int	 http_resp_object(const struct http_resp *r, msgpack_zone *z, msgpack_object *o,
	    char *err, size_t errlen);
/* Reports an answer with status >= 400 by its {"error": {code, message}}; CTL_FAIL. */
int	 http_resp_refused(const struct http_resp *r);
/*
 * The answer as pretty JSON text (malloc'ed): JSON answers keep their key
 * order, msgpack answers are converted (bin values become base64url).
 */
char	*http_resp_pretty(const struct http_resp *r, char *err, size_t errlen);
/* Prints the answer as pretty JSON; CTL_* (reported). */
int	 http_resp_print(const struct http_resp *r);

/* lianctl_consent.c: consent issue, consent revoke */
extern const struct command cmd_consent_issue, cmd_consent_revoke;

/* lianctl_fetch.c: fetch */
extern const struct command cmd_fetch;

/* lianctl_seal.c: seal verify */
extern const struct command cmd_seal_verify;

/* lianctl_journal.c: journal checkpoint, pull, and the checks verify shares */
extern const struct command cmd_journal_checkpoint, cmd_journal_pull;
/* The settings of the three commands. */
struct journal_set {
	const char	*js_save;	/* checkpoint --save */
	const char	*js_cert;	/* --checkpoint-cert */
	const char	*js_saved;	/* verify --checkpoint */
	const char	*js_records;	/* verify --records */
	const char	*js_archive;	/* verify --archive */
	bool		 js_cluster;	/* verify --cluster */
};
/* A checkpoint as the gateway answers it, its envelope verified. */
struct ckpt {
	uint64_t	ck_size;
	uint64_t	ck_t_ms;
	uint8_t		ck_root[32];
	char		ck_origin[LB_ORIGIN_MAX];
	char		ck_alg[16];
};
/*
 * Verifies a checkpoint object {"size","root","t_ms","envelope"}: the
 * envelope is a checkpoint signed by cert's key, and its payload says what
 * the plain fields say.  what names the checkpoint in messages.
 */
int		 ckpt_check(const msgpack_object *o, X509 *cert, const char *what,
		    struct ckpt *ck);
/*
 * The checkpoint certificate: the file explicit names, else
 * CERTS/journal/checkpoint.pem; NULL (and a message) when it cannot be read.
 */
X509		*ckpt_cert_load(const struct ctl *ctl, const char *explicit);
/* GET /v1/journal/checkpoint, verified with cert into *ck; resp keeps the answer. */
int		 ckpt_fetch(struct ctl *ctl, X509 *cert, struct ckpt *ck, struct http_resp *resp);
/* The checkpoint as JSON: origin, size, root (hex), t_ms, time, alg. */
json_t		*ckpt_json(const struct ckpt *ck);
/* An option of a journal command stored in struct journal_set. */
#define JS(m)	offsetof(struct journal_set, m)
/*
 * Checks one leaf as a journal record: canonical msgpack, a map whose "seq"
 * is seq.  The decoded record goes to *rec (in z); its text is not checked,
 * as a journal of an older version may hold text that is not UTF-8
 * (journal_record_show flags such a record).
 */
int		 leaf_check(const uint8_t *leaf, size_t len, uint64_t seq, msgpack_zone *z,
		    msgpack_object *rec);
/*
 * The list of o under key as hashes (bin, or base64url from JSON), at most
 * max of them, into out; -1 when it is not a list of 32-byte values.
 */
int		 ctl_hashes(const msgpack_object *o, const char *key, msgpack_zone *z,
		    uint8_t out[][32], size_t max, size_t *n);

/* lianctl_verify.c: journal verify */
extern const struct command cmd_journal_verify;
/* One record of a walk: its leaf hash and the decoded record; non-zero stops it. */
typedef int	(*verify_leaf_fn)(void *arg, uint64_t seq, const uint8_t leaf[32],
		    const msgpack_object *rec);
/*
 * The gateway's signed checkpoint fetched into *cur and checked, every
 * record read (each handed to each, when not NULL) and the RFC 6962 root
 * recomputed and compared with the signed one.  CTL_OK, or CTL_FAIL
 * (reported).
 */
int		 verify_tree(struct ctl *ctl, X509 *cert, struct ckpt *cur, verify_leaf_fn each,
		    void *arg);

/*
 * Reads the records [from, to) from the gateway, each checked (canonical,
 * its seq) and handed to each.  CTL_OK, or CTL_FAIL (reported).
 */
int		 verify_leaves(struct ctl *ctl, uint64_t from, uint64_t to, verify_leaf_fn each,
		    void *arg);

/* lianctl_cluster.c: journal verify --cluster */
/* Every node of the gateway's cluster verified (docs/audit.md); CTL_* (reported). */
int		 cluster_verify(struct ctl *ctl, X509 *cert);

/* lianctl_archive.c: journal archive, and the archives journal verify reads */
extern const struct command cmd_journal_archive;
/* journal verify --archive FILE: the archive checked offline; CTL_*. */
int		 archive_verify(const struct ctl *ctl, const struct journal_set *s);
/*
 * A saved checkpoint for journal verify --checkpoint FILE into *o (in z):
 * the file "journal checkpoint --save" wrote, or the checkpoint an archive
 * ends with.  -1 when reported.
 */
int		 archive_saved_load(const char *path, msgpack_zone *z, msgpack_object *o);

/* lianctl_access.c: the citizen's access report */
extern const struct command cmd_access_report;

/* lianctl_admin.c: the adapter and policy registry */
extern const struct command cmd_adapter_register, cmd_adapter_list, cmd_adapter_show,
	cmd_adapter_disable, cmd_policy_load, cmd_policy_list, cmd_policy_show;

#endif /* LIANCTL_H */
