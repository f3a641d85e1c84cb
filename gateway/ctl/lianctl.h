/*
 * lianctl.h - what the command modules of lianctl share: the global
 * settings, the option parser and the blocking HTTPS client.
 *
 * lianctl.c holds the parser, the client, the command table and the
 * commands of the foundation; a group of commands may live in its own
 * lianctl_GROUP.c, adding its options to enum opt and its entries to the
 * command table.
 */
#ifndef LIANCTL_H
#define LIANCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>
#include <openssl/ssl.h>

#define CTL_PROG		"lianctl"
#define CTL_DEFAULT_GATEWAY	"127.0.0.1:8443"
#define CTL_DEFAULT_PORT	"8443"
#define CTL_DEFAULT_CERTS	"certs/demo"
#define CTL_DEFAULT_AUD		"lianban-demo"
#define CTL_BODY_MAX		((size_t)64 * 1024 * 1024)	/* largest answer or saved file */
#define CTL_TOKEN_MAX		((size_t)1024 * 1024)		/* largest consent token file */
#define CTL_RBUF		(64 * 1024)	/* receive buffer; also the longest header line */
#define CTL_HEADERS_MAX		200		/* header lines in one answer */
#define CTL_LEAVES_PAGE		1000		/* the gateway's per-call limit on leaves */
#define CTL_TIMEOUT_S		30
#define CTL_FETCH_GROUPS	64		/* more than the gateway takes, so it can say no */
#define CTL_ERR_MAX		1024		/* one error sentence */

enum ctl_exit {
	CTL_OK = 0,		/* the operation succeeded */
	CTL_FAIL = 1,		/* refused, failed, or did not verify */
	CTL_USAGE = 2		/* the command line is wrong */
};

/* Settings shared by every command (the global options). */
struct ctl {
	char		 c_host[256];
	char		 c_port[8];
	const char	*c_cert;	/* client identity, PEM */
	const char	*c_key;
	const char	*c_certs;	/* demo PKI directory: default file locations */
	const char	*c_ca;		/* CA of the gateway's TLS certificate */
	int		 c_timeout;	/* seconds, per connect / read / write */
	bool		 c_json;
	bool		 c_quiet;
	SSL_CTX		*c_tls;		/* made on first use, then shared by every request */
	const char	*c_header;	/* one more request header line "Name: value", or NULL */
};

enum opt {
	O_NONE = 0,
	O_HELP,
	O_GATEWAY,
	O_CERT,
	O_KEY,
	O_CERTS,
	O_CA,
	O_TIMEOUT,
	O_JSON,
	O_QUIET,
	O_AUTHORITY,
	O_AUTHORITY_CERT,
	O_SUB,
	O_AZP,
	O_BUNDLE,
	O_ITEMS,
	O_AUD,
	O_ACT,
	O_REL,
	O_AMR,
	O_LIVENESS,
	O_MATCH,
	O_TTL,
	O_IAT,
	O_EXP,
	O_JTI,
	O_ISS,
	O_SUBJECT,
	O_CONSENT,
	O_OUT,
	O_SAVE_RAW,
	O_MSGPACK,
	O_SEAL_ROOT,
	O_SAVE,
	O_CHECKPOINT,
	O_CHECKPOINT_CERT,
	O_CONSUMER,
	O_DEPT,
	O_ITEM,
	O_SINCE_MS,
	O_UNTIL_MS,
	O_FORMAT,
	O_RECORDS,
	O_CONSENT_FILE,
	O_LIMIT,
	O_BEFORE
};

struct optdef {
	const char	*od_name;	/* without the leading "--" */
	bool		 od_arg;
	enum opt	 od_id;
};

struct args {
	int		  ar_argc;
	char		**ar_argv;
	int		  ar_i;
	bool		  ar_operands;	/* "--" was seen */
	const char	 *ar_cmd;	/* "fetch", ...; NULL before the command */
};

enum arg_kind {
	ARG_END,
	ARG_OPT,
	ARG_OPERAND,
	ARG_BAD		/* a usage error, already reported */
};

struct http_resp {
	int		 hr_status;
	char		 hr_ctype[128];
	uint8_t		*hr_body;	/* malloc'ed; NUL-terminated for JSON parsers */
	size_t		 hr_len;
};

/* Option parsing and files. */
void	ctl_err(const char *, ...) __attribute__((format(printf, 1, 2)));
void	usage_hint(const struct args *ar);
enum arg_kind	arg_next(struct args *ar, const struct optdef *defs, enum opt *id,
		    const char **val);
int	cmd_opt(struct args *ar, const struct optdef *defs, const char *usage, enum opt *id,
	    const char **val, int *rc);
int	parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
const char	*ctl_path(const struct ctl *ctl, const char *explicit, const char *rel,
		    char *buf, size_t bufsz);
int	ctl_need_identity(const struct ctl *ctl, const char *cmd);
/* Applies a global option (--gateway, ...); -1 (reported) when its value is wrong. */
int	ctl_global(struct ctl *ctl, enum opt id, const char *val);
int	read_input(const char *path, size_t max, uint8_t **buf, size_t *len);
int	write_output(const char *path, const void *data, size_t len);
int	load_object(const char *path, msgpack_zone *z, msgpack_object *o);
void	fmt_time(uint64_t secs, char *buf, size_t bufsz);
void	fmt_time_ms(uint64_t ms, char *buf, size_t bufsz);
int	json_print(json_t *j);

/* The HTTPS client: one blocking request per connection. */
void	http_resp_clear(struct http_resp *r);
int	http_request(struct ctl *ctl, const char *method, const char *path,
	    const char *accept, const char *ctype, const void *body, size_t bodylen,
	    struct http_resp *resp, char *err, size_t errlen);
bool	ctype_is_msgpack(const char *ctype);
int	resp_object(const struct http_resp *r, msgpack_zone *z, msgpack_object *o,
	    char *err, size_t errlen);
int	resp_refused(const struct http_resp *r);
int	http_get_object(struct ctl *ctl, const char *path, msgpack_zone *z,
	    msgpack_object *o, struct http_resp *resp);
char	*resp_pretty(const struct http_resp *r, char *err, size_t errlen);

/* lianctl_consent.c */
extern const char usage_consent_revoke[];
int	cmd_consent_revoke(struct ctl *ctl, struct args *ar);

/* lianctl_access.c: the citizen's access report */
extern const char usage_access_report[];
int	cmd_access_report(struct ctl *ctl, struct args *ar);

/* lianctl_admin.c: the adapter and policy registry */
extern const char usage_adapter_register[], usage_adapter_list[], usage_adapter_show[],
	usage_adapter_disable[], usage_policy_load[], usage_policy_list[], usage_policy_show[];
int	cmd_adapter_register(struct ctl *ctl, struct args *ar);
int	cmd_adapter_list(struct ctl *ctl, struct args *ar);
int	cmd_adapter_show(struct ctl *ctl, struct args *ar);
int	cmd_adapter_disable(struct ctl *ctl, struct args *ar);
int	cmd_policy_load(struct ctl *ctl, struct args *ar);
int	cmd_policy_list(struct ctl *ctl, struct args *ar);
int	cmd_policy_show(struct ctl *ctl, struct args *ar);

#endif /* LIANCTL_H */
