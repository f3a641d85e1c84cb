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
	unsigned	gc_seal_window_us;	/* sealer window (default 2000) */
	unsigned	gc_seal_batch;		/* claims per batch at most (default 256) */
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
	struct sealer		*gw_sealer;
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

/* http_journal.c */
/*
 * Answers an auditor's GET under /v1/journal/ (checkpoint, leaves, records,
 * proof/inclusion, proof/consistency) once the read is journaled.
 */
void		 http_journal(struct gw *, struct evhttp_request *, const struct principal *,
		    const char *path);

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

/* sealer.c: batch sealing across exchanges */
#define SEALER_MAX_BATCH	256
#define SEALER_WINDOW_US	2000
/*
 * One claim waiting for its seal.  The owner fills the first fields and
 * keeps the claim bytes and the key alive until sr_done has run; sr_done
 * runs once on the loop with sr_status 0 and sr_receipt (malloc'ed, now the
 * owner's) or -1 when the batch could not be signed.
 */
struct seal_req {
	const struct seal_key	*sr_key;
	const uint8_t		*sr_claim;
	size_t			 sr_claim_len;
	void			(*sr_done)(void *arg, struct seal_req *);
	void			*sr_arg;
	/* results */
	int			 sr_status;
	uint8_t			*sr_receipt;
	size_t			 sr_receipt_len;
	uint64_t		 sr_index, sr_size;	/* leaf index, batch size */
	struct seal_req		*sr_next;		/* the sealer's */
};
struct sealer;
/*
 * Collects claims per seal key for window_us microseconds or max claims
 * (at most SEALER_MAX_BATCH), whichever comes first, and signs each batch
 * on the workers.  When no announced exchange is still on its way to the
 * sealer (see sealer_expect), waiting claims are signed at once.  Loop
 * thread only.
 */
struct sealer	*sealer_new(struct event_base *, struct workers *, unsigned window_us,
		    size_t max);
/* Sends the waiting claims to the workers; the sealer goes when they are done. */
void		 sealer_free(struct sealer *);
/* An exchange announces claims to come (expect) and that it has none left (unexpect). */
void		 sealer_expect(struct sealer *);
void		 sealer_unexpect(struct sealer *);
/* Queues n claims; sr_done may run before the call returns when memory runs out. */
int		 sealer_submit(struct sealer *, struct seal_req *const *reqs, size_t n);
void		 sealer_stats(const struct sealer *, uint64_t *batches, uint64_t *claims);

/* exchange.c */
/* Handles POST /v1/exchanges for a consumer; body already decoded into z. */
void		 exchange_start(struct gw *, struct evhttp_request *, const struct principal *,
		    msgpack_zone *z, const msgpack_object *body);

#endif /* GATEWAY_H */
