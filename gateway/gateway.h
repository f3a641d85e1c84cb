/*
 * gateway.h - the daemon's own structures: configuration snapshot, HTTP
 * front, fan-out and the exchange state machine.  The library modules they
 * use are declared in lianban.h.
 */
#ifndef GATEWAY_H
#define GATEWAY_H

#include <openssl/ssl.h>

#include "lianban.h"

struct evhttp;
struct evhttp_request;
struct fanout;

/*
 * Everything loaded from files that SIGHUP reloads: trust, policies,
 * adapters and the seal keys they name.  A snapshot is immutable; each
 * exchange holds a reference to the one it started with, so a reload never
 * changes the rules in the middle of an exchange.  References are taken
 * and dropped on the event loop thread only.
 */
struct snapshot {
	int		  sn_refs;
	struct trust	 *sn_trust;
	struct policy	**sn_policies;
	size_t		  sn_npolicies;
	struct adapter	**sn_adapters;
	size_t		  sn_nadapters;
	struct seal_key	 *sn_seals;
	size_t		  sn_nseals;
};

struct gw_config {
	char		gc_listen[128];
	char		gc_data[512];
	char		gc_certs[512];
	char		gc_policies[512];
	char		gc_adapters[512];
	char		gc_id[LB_ID_MAX];
	int		gc_workers;
	int		gc_verbose;
};

struct gw {
	struct gw_config	 gw_conf;
	struct event_base	*gw_base;
	struct evhttp		*gw_http;
	SSL_CTX			*gw_ssl;
	struct workers		*gw_workers;
	struct journal		*gw_journal;
	struct fanout		*gw_fanout;
	struct snapshot		*gw_snap;
	EVP_PKEY		*gw_ckpt_key;
	X509			*gw_ckpt_cert;
	int			 gw_inflight;	/* exchanges not yet answered */
	bool			 gw_stopping;
	char			 gw_bound[160];	/* HOST:PORT actually bound */
	struct evhttp_bound_socket *gw_listener;
	struct event		*gw_drain;	/* shutdown: waits for in-flight work */
};

/* config.c */
struct snapshot	*snapshot_load(const struct gw_config *, char *err, size_t errlen);
void		 snapshot_ref(struct snapshot *);
void		 snapshot_unref(struct snapshot *);
const struct policy *snapshot_policy(const struct snapshot *, const char *bundle);
const struct adapter *snapshot_adapter_for(const struct snapshot *, const char *dept,
		    const char *item);
const struct seal_key *snapshot_seal(const struct snapshot *, const char *id);
/* Parses a JSON file into a msgpack object in z. */
int		 config_json_file(const char *path, msgpack_zone *z, msgpack_object *out,
		    char *err, size_t errlen);

/* http.c */
struct principal {
	char	pr_role[16];		/* department, consumer, auditor, admin */
	char	pr_id[LB_ID_MAX];
};
int		 http_start(struct gw *, char *err, size_t errlen);
void		 http_stop(struct gw *);
/* Answers req with body as JSON or msgpack, as the client's Accept asks. */
void		 http_reply(struct evhttp_request *, int status, const msgpack_object *body);
void		 http_error(struct evhttp_request *, enum lb_err, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));

/* fanout.c: asynchronous HTTP requests to departments */
typedef void	(*fanout_cb)(void *arg, enum lb_err, const uint8_t *body, size_t len,
		    const char *msg);
struct fanout	*fanout_new(struct event_base *);
void		 fanout_free(struct fanout *);
/*
 * Sends one request for (item, subject) to the adapter's endpoint.  cb runs
 * exactly once on the loop: LB_OK with the answer's body (valid only during
 * the call), or department_unavailable / department_timeout /
 * department_bad_response.
 */
int		 fanout_fetch(struct fanout *, const struct adapter *, const char *item,
		    const char *subject, fanout_cb, void *arg);

/* exchange.c */
/* Handles POST /v1/exchanges for a consumer; body already decoded into z. */
void		 exchange_start(struct gw *, struct evhttp_request *, const struct principal *,
		    msgpack_zone *z, const msgpack_object *body);

#endif /* GATEWAY_H */
