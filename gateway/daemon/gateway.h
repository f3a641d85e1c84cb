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

/* Rate-limit buckets: one per (bundle, consumer) seen recently (docs/consent.md). */
#define GW_RATE_BUCKETS	256

struct gw {
	struct gw_config	 gw_conf;
	struct event_base	*gw_base;
	struct evhttp		*gw_http;
	SSL_CTX			*gw_ssl;
	struct workers		*gw_workers;
	struct journal		*gw_journal;
	struct fanout		*gw_fanout;
	struct snapshot		*gw_snap;
	uint64_t		 gw_snap_gen;	/* counts installs of gw_snap */
	EVP_PKEY		*gw_ckpt_key;
	X509			*gw_ckpt_cert;
	int			 gw_inflight;	/* exchanges not yet answered */
	bool			 gw_stopping;
	char			 gw_bound[160];	/* HOST:PORT actually bound */
	struct evhttp_bound_socket *gw_listener;
	struct event		*gw_drain;	/* shutdown: waits for in-flight work */
	struct sealer		*gw_sealer;
	struct policy_rates	*gw_rates;	/* rate-limit buckets (loop thread) */
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

/* registry.c: adapters and policies registered through the API */
enum reg_kind {
	REG_ADAPTER = 0,
	REG_POLICY
};
/* The current state of one registered id. */
struct reg_head {
	uint64_t	rh_version;
	bool		rh_disabled;
	char		rh_dept[LB_ID_MAX];		/* adapters: the owner; policies: "" */
	char		rh_principal[16 + LB_ID_MAX];	/* "role:id" of the last change */
	uint64_t	rh_t_ms;
};
struct registry;
/*
 * The registry of the data directory (DATA/registry, created if missing),
 * opened on first use and closed at exit.  Any thread after the first call.
 */
struct registry	*registry_get(const char *datadir, char *err, size_t errlen);
/* *found false when the id was never registered. */
int		 registry_head(struct registry *, enum reg_kind, const char *id,
		    struct reg_head *, bool *found);
/*
 * Calls fn for every id of kind, in id byte order, with its head and the
 * spec of its current version (NULL when none is stored: a file adapter
 * that was disabled).  spec is valid only during the call.
 */
typedef int	(*registry_each_fn)(void *arg, const char *id, const struct reg_head *,
		    const uint8_t *spec, size_t speclen);
int		 registry_each(struct registry *, enum reg_kind, registry_each_fn, void *arg,
		    char *err, size_t errlen);
/*
 * Stores spec (canonical msgpack) as version rh_version of id, when spec is
 * not NULL, and makes h the id's head, in one durable transaction.  Writes
 * to disk: call it from a worker, never the loop.
 */
int		 registry_put(struct registry *, enum reg_kind, const char *id,
		    const struct reg_head *h, const uint8_t *spec, size_t speclen,
		    char *err, size_t errlen);
/* False when storing a spec of speclen bytes could fill the registry's map. */
bool		 registry_has_room(struct registry *, size_t speclen);

/*
 * A change about to be made (config.c): snapshot_load_with loads it on top
 * of the files and the registry, which checks that it would load.
 */
struct reg_change {
	enum reg_kind		 rc_kind;
	const char		*rc_id;
	const struct reg_head	*rc_head;
	const uint8_t		*rc_spec;	/* NULL: keep the current spec (disable) */
	size_t			 rc_spec_len;
};
struct snapshot	*snapshot_load_with(const struct gw_config *, const struct reg_change *,
		    char *err, size_t errlen);
/* Any adapter of the snapshot by id, disabled ones included. */
const struct adapter *snapshot_adapter(const struct snapshot *, const char *id);

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
struct evkeyvalq;
/*
 * A decimal query parameter: true when absent (*present false) or a whole
 * number that fits 64 bits, false otherwise.
 */
bool		 http_query_u64(const struct evkeyvalq *, const char *name, uint64_t *v,
		    bool *present);
/* Decodes a JSON or msgpack request body into z; err gets a sentence. */
int		 http_body(struct evhttp_request *, msgpack_zone *z, msgpack_object *out,
		    char *err, size_t errlen);

/* http_admin.c */
/*
 * Answers /v1/adapters[/{id}] and /v1/policies[/{bundle}]: the registry of
 * department adapters and bundle policies (DESIGN §8).  A change is
 * journaled, stored, and then applied to the next exchanges by a new
 * snapshot.
 */
void		 http_admin(struct gw *, struct evhttp_request *, const struct principal *,
		    const char *path);

/* http_journal.c */
/*
 * Answers an auditor's GET under /v1/journal/ (checkpoint, leaves, records,
 * proof/inclusion, proof/consistency) once the read is journaled.
 */
void		 http_journal(struct gw *, struct evhttp_request *, const struct principal *,
		    const char *path);

/* http_subject.c */
/*
 * Answers a consumer's GET /v1/subjects/me/accesses: the access report of
 * the citizen named by the self consent token in the Lianban-Consent header.
 */
void		 http_subject(struct gw *, struct evhttp_request *, const struct principal *,
		    const char *path);

/* fanout.c: asynchronous HTTP requests to departments */
typedef void	(*fanout_cb)(void *arg, enum lb_err, const uint8_t *body, size_t len,
		    const char *msg);
/*
 * certs is the certificate directory: https endpoints use its
 * departments/ca.pem, gateway-client.pem and gateway-client.key, read once
 * here; when they are missing only https endpoints fail.
 */
struct fanout	*fanout_new(struct event_base *, const char *certs);
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

/* revocation.c */
/* Handles POST /v1/revocations (admin fields, or an authority's signed envelope). */
void		 revocation_start(struct gw *, struct evhttp_request *, const struct principal *,
		    msgpack_zone *z, const msgpack_object *body);

#endif /* GATEWAY_H */
