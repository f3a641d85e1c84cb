/*
 * gateway.h - the daemon's own structures: configuration snapshot, HTTP
 * front, fan-out and the exchange state machine.  The library modules they
 * use are declared in lianban.h.
 */
#ifndef GATEWAY_H
#define GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include <openssl/ssl.h>

#include "lianban.h"

struct cluster;
struct egress;
struct evhttp;
struct evhttp_request;
struct fanout;
struct notify;

/*
 * Everything loaded from files that SIGHUP reloads: trust, policies,
 * adapters and the seal keys they name.  A snapshot is immutable; each
 * exchange holds a reference to the one it started with, so a reload never
 * changes the rules in the middle of an exchange.  A snapshot is loaded on
 * a worker and handed whole to a loop; once installed (snapshot_install)
 * every event loop takes and drops references to it, so its count is
 * atomic, and whichever thread drops the last one frees it.
 */
struct snapshot {
	atomic_int	  sn_refs;
	struct trust	 *sn_trust;
	struct policy	**sn_policies;
	size_t		  sn_npolicies;
	struct adapter	**sn_adapters;
	size_t		  sn_nadapters;
	struct seal_key	 *sn_seals;
	size_t		  sn_nseals;
	struct egress	 *sn_egress;	/* the operator's endpoint list */
};

/* settings.c: the settings of lianband, from lianband.conf and the command line */
#define SETTINGS_MAX		48	/* settings the table may hold */
#define SETTINGS_FROM_DEFAULT	0	/* gc_from: the embedded default */
#define SETTINGS_FROM_ARGS	(-1)	/* gc_from: the command line */

/*
 * The running settings.  The loop thread owns gw_conf and changes what
 * SIGHUP may change (settings_apply); work handed to a worker takes a copy.
 */
struct gw_config {
	char		gc_listen[128];
	char		gc_metrics[128];	/* the Prometheus listener; "" for none */
	char		gc_data[512];
	char		gc_certs[512];
	char		gc_policies[512];
	char		gc_adapters[512];
	char		gc_endpoints[512];	/* the endpoint list; "" for none */
	bool		gc_endpoints_given;	/* on the command line: it must exist */
	char		gc_id[LB_ID_MAX];
	char		gc_crl[512];	/* --crl; "" is CERTS/client-ca.crl if it exists */
	int		gc_workers;
	int		gc_loops;		/* event loops; 0: one per core */
	char		gc_node[LB_ID_MAX];	/* cluster node id; "" alone */
	char		gc_etcd[1024];		/* etcd client URLs; "" alone */
	char		gc_peers[2048];		/* NODE_ID=HOST:PORT,...; "" none */
	int		gc_verbose;
	unsigned	gc_seal_window_us;	/* sealer window (default 2000) */
	unsigned	gc_seal_batch;		/* claims per batch at most (default 256) */
	uint32_t	gc_client_rate;		/* requests per second per client (200) */
	uint32_t	gc_client_burst;	/* and its burst (2000) */
	/* Registry quotas of each department (http_admin.c) */
	unsigned	gc_reg_ids;		/* adapter ids (32) */
	unsigned	gc_reg_versions;	/* versions kept per id (16) */
	uint64_t	gc_reg_bytes;		/* bytes of stored specs (64 MiB) */
	char		gc_console[512];	/* the console's files (--console) */
	char		gc_backup[512];		/* --backup DEST: copy gc_data there, exit */
	int		gc_shutdown_grace;	/* seconds exchanges get to finish at exit (30) */
	uint64_t	gc_journal_map_max;	/* bytes the journal's map may grow to, 0: any */
	char		gc_log_format[16];	/* text, logfmt or json (log.c) */
	char		gc_log_target[16];	/* stderr or syslog */
	/* Where each setting came from (settings.c), by its index in the table. */
	char		gc_file[512];		/* the lianband.conf read, "" for none */
	int		gc_from[SETTINGS_MAX];	/* a line of gc_file; SETTINGS_FROM_* */
};

/* Rate-limit buckets: one per (bundle, consumer) seen recently (docs/consent.md). */
#define GW_RATE_BUCKETS	256

/* SIGHUP loads (config.c): one at a time; signals meanwhile ask for one more. */
struct config_sighup {
	bool		sh_running;
	bool		sh_again;
};

/*
 * Registry changes waiting for their turn (http_admin.c).  They are made
 * one at a time, so that version numbers and ownership checks never race.
 */
struct admin_change;
struct admin_queue {
	struct admin_change	*aq_head, *aq_tail;
	size_t			 aq_queued;
	bool			 aq_busy;	/* a change is under way */
};

struct registry;
struct peer_client;
struct witness;
struct gw;

/* peer.c: the other nodes of a cluster (--peers) and the client that asks them */
#define PEERS_MAX	16
/* One peer: its node id and the address of its API listener. */
struct peer {
	char		pe_node[LB_ID_MAX];
	char		pe_host[64];	/* an IP address as text, without brackets */
	int		pe_port;
};
/*
 * Letters, digits, '-', '_' and '.', 1 to LB_ID_MAX - 1 of them (n bytes at
 * s): a node id, and any id a path of the API names (http.c).
 */
bool		 peer_id_ok(const char *s, size_t n);
/*
 * Parses NODE_ID=HOST:PORT[,...] (HOST an IP address, IPv6 in brackets) of
 * node self into *out (malloc'ed, the caller frees it) and *n; "" is no
 * peers.  -1 with a sentence in err: a malformed entry, a name for a host, a
 * missing port, a node named twice or self among the peers, more than
 * PEERS_MAX, or peers without a node id of our own.
 */
int		 peers_parse(const char *list, const char *self, struct peer **out, size_t *n,
		    char *err, size_t errlen);
/* True when node is one of gw_peers (a client of role gateway may read only then). */
bool		 peer_listed(const struct gw *gw, const char *node);
/*
 * The client of this node towards its peers: CERTS/clients/gateway-NODE.pem
 * and .key as its identity, CERTS/client-ca.pem to check the peers' server
 * certificates.  NULL with a sentence naming the file in err.  Immutable:
 * any thread may use it; freed with peer_client_free once none does.
 */
struct peer_client *peer_client_new(const char *certs, const char *node, char *err,
		    size_t errlen);
void		 peer_client_free(struct peer_client *);
/*
 * The answer to a peer_get: status is the HTTP status, or 0 when the peer
 * could not be reached or the exchange failed (msg says why); body (len
 * bytes, msgpack as asked) is valid only during the call.
 */
typedef void	(*peer_cb)(void *arg, int status, const uint8_t *body, size_t len,
		    const char *msg);
/*
 * GETs target (path and query) from pe on a connection of its own made on
 * base, the caller's event loop; cb runs on that loop exactly once, never
 * before peer_get returns, at most 5 s later.  -1 (and no cb) when the
 * request cannot be made at all.
 */
int		 peer_get(struct peer_client *, struct event_base *base, const struct peer *pe,
		    const char *target, peer_cb cb, void *arg);

/*
 * The daemon as one thread sees it.  The main thread has one (signals,
 * metrics, the service manager); each event loop serving the API has its
 * own copy of it (loops.c), with its own base, HTTP front, listener,
 * fan-out, in-flight count and stopping flag, and the same pointers to the
 * modules they share (workers, journal, sealer, registry, rate buckets,
 * throttle, console, SSL_CTX).  What changes while running and is shared
 * lives in the main gw only and is reached through gw_main: the running
 * snapshot (snapshot_current), the registry change queue (under gw_lock),
 * the reload and stopping flags (atomics).  Everything else in a gw
 * belongs to its thread, except what its comments say workers may read.
 */
struct loops;
struct gw {
	struct gw_config	 gw_conf;	/* workers read copies; see gw_config */
	const struct settings	*gw_settings;	/* the command line, for SIGHUP */
	pthread_t		 gw_loop;	/* the thread of gw_base */
	struct gw		*gw_main;	/* the main thread's gw; NULL: this one */
	struct loops		*gw_loops;	/* main: the event loops; NULL in a copy */
	int			 gw_index;	/* the loop's number from 0; -1: main */
	pthread_mutex_t		 gw_lock;	/* main: gw_snap and gw_admin */
	atomic_uint_fast64_t	 gw_accepted;	/* a loop's connections accepted */
	atomic_uint_fast64_t	 gw_requests;	/* and requests routed */
	atomic_int		 gw_conns;	/* and connections open now */
	struct event_base	*gw_base;
	struct evhttp		*gw_http;
	SSL_CTX			*gw_ssl;
	int			 gw_ssl_conn;	/* SSL ex_data index of struct http_conn */
	struct workers		*gw_workers;
	struct journal		*gw_journal;
	struct registry		*gw_registry;	/* DATA/registry; workers use it */
	struct fanout		*gw_fanout;
	struct snapshot		*gw_snap;	/* main: the running configuration */
	atomic_uint_fast64_t	 gw_snap_gen;	/* main: counts installs of gw_snap */
	struct config_sighup	 gw_sighup;
	struct admin_queue	 gw_admin;
	EVP_PKEY		*gw_ckpt_key;
	X509			*gw_ckpt_cert;
	atomic_int		 gw_inflight;	/* exchanges not yet answered */
	atomic_bool		 gw_stopping;
	atomic_bool		 gw_reload_failed;	/* the last SIGHUP load failed */
	char			 gw_bound[160];	/* HOST:PORT actually bound */
	struct evhttp_bound_socket *gw_listener;
	struct event		*gw_drain;	/* shutdown: waits for in-flight work */
	struct sealer		*gw_sealer;
	struct policy_rates	*gw_rates;	/* rate-limit buckets (shared, locked) */
	struct throttle		*gw_throttle;	/* the limit per client (shared) */
	struct console		*gw_console;	/* the console's files; NULL: none */
	int			 gw_lockfd;	/* DATA/lianband.lock, held; -1: none */
	struct notify		*gw_notify;	/* the service manager; NULL: none */
	/* A cluster (peer.c, witness.c, cluster_read.c); set before the loops run, then read only. */
	char			 gw_origin[LB_ORIGIN_MAX];	/* GATEWAY_ID[/NODE_ID] */
	struct peer		*gw_peers;	/* --peers; NULL: none */
	size_t			 gw_npeers;
	struct peer_client	*gw_peer_client;	/* NULL without peers */
	struct witness		*gw_witness;	/* NULL without peers; the main gw's only */
	struct cluster		*gw_cluster;	/* shared state on etcd; NULL: alone */
};

/* registry.c: adapters and policies registered through the API */
/* The registry's environment: this directory under the data directory. */
#define REGISTRY_DIR		"registry"
/* The quotas of each department, by default (gw_config; docs/operations.md). */
#define REG_QUOTA_IDS		32
#define REG_QUOTA_IDS_MAX	512
#define REG_QUOTA_VERSIONS	16
#define REG_QUOTA_BYTES		((uint64_t)64 << 20)
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
/*
 * Opens the registry of the data directory (DATA/registry, both created if
 * missing).  The daemon opens one in main and keeps it in gw_registry; the
 * caller closes it with registry_close once no thread uses it.  A handle
 * may be used from any thread.
 */
struct registry	*registry_open(const char *datadir, char *err, size_t errlen);
void		 registry_close(struct registry *);
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
/*
 * False when storing a spec of speclen bytes could leave less than reserve
 * bytes of the registry's map free.
 */
bool		 registry_has_room(struct registry *, size_t speclen, size_t reserve);
/*
 * From now on registry_put keeps the newest versions of each id, at most
 * versions of them, and removes older ones in the same transaction (0, the
 * default: keeps them all).  Any thread; a put already under way may use
 * the number it had.
 */
void		 registry_keep(struct registry *, unsigned versions);
/* What one department holds in the registry. */
struct reg_usage {
	size_t		ru_ids;		/* ids of the kind whose head names it */
	uint64_t	ru_bytes;	/* stored bytes of their versions */
	uint64_t	ru_freed;	/* of those, what one more version of id removes */
};
int		 registry_usage(struct registry *, enum reg_kind, const char *dept,
		    const char *id, struct reg_usage *);

/* datadir.c: the data directory as a whole */
/*
 * Takes DATA/lianband.lock (DATA is made, mode 0700, when missing) with an
 * exclusive flock and writes this process's pid in it; the lock lasts until
 * datadir_unlock or the process's end.  Call it before any LMDB environment
 * of DATA is opened.  Returns the lock's descriptor, or -1 with a sentence in
 * err that names the directory and the pid of the daemon holding it.
 */
int		 datadir_lock(const char *dir, char *err, size_t errlen);
void		 datadir_unlock(int fd);
/* What datadir_backup copied. */
struct datadir_copy {
	uint64_t		dc_journal_bytes;	/* DEST/data.mdb */
	uint64_t		dc_registry_bytes;	/* DEST/registry/data.mdb */
	struct journal_info	dc_journal;		/* the copied journal */
};
/*
 * A hot backup of the data directory dir into dest (made, mode 0700, or an
 * empty directory): the registry, then the journal, each one consistent
 * snapshot copied and compacted by LMDB (mdb_env_copyfd2 with
 * MDB_CP_COMPACT) in a read transaction, which a running daemon does not
 * notice but for the pages it cannot reuse meanwhile.  dest gets the layout
 * of a data directory (data.mdb, registry/data.mdb), files mode 0600, synced.
 * Needs write access to the lock files of dir (LMDB registers its reader
 * there).  The journal's copy is then inspected (journal_inspect).  On
 * failure, what it wrote is removed and err says why.
 */
int		 datadir_backup(const char *dir, const char *dest, struct datadir_copy *,
		    char *err, size_t errlen);
/* lianband --backup: datadir_backup of gc's data into gc_backup, reported; the exit status. */
int		 datadir_backup_main(const struct gw_config *gc);

/* config.c */
/*
 * Loads a snapshot: the trust store, policies and adapters of the
 * directories in gc (with the seal keys the adapters name), then what the
 * registry rg holds on top: a registry entry replaces the file adapter of
 * its id only when both are of one department; an entry of another
 * department is left out, with a log line that names it, and the operator's
 * file adapter is served.  Reads files and LMDB: call it on a worker
 * (or before the loop runs).  The caller owns the one reference of the
 * result; NULL with a sentence in err (naming the file) when it fails.
 */
struct snapshot	*snapshot_load(const struct gw_config *gc, struct registry *rg, char *err,
		    size_t errlen);
/*
 * A change about to be made: snapshot_load_with loads it on top of the
 * files and the registry, which checks that it would load.  When it does
 * not, rc_err says why: forbidden_role when an operator's file adapter of
 * another department holds the id, bad_request otherwise.
 */
struct reg_change {
	enum reg_kind		 rc_kind;
	const char		*rc_id;
	const struct reg_head	*rc_head;
	const uint8_t		*rc_spec;	/* NULL: keep the current spec (disable) */
	size_t			 rc_spec_len;
	enum lb_err		 rc_err;	/* set by snapshot_load_with */
};
struct snapshot	*snapshot_load_with(const struct gw_config *gc, struct registry *rg,
		    struct reg_change *, char *err, size_t errlen);
/* Any thread: the count is atomic. */
void		 snapshot_ref(struct snapshot *);
void		 snapshot_unref(struct snapshot *);
/*
 * The one way a snapshot takes over, from any loop: sn (whose reference
 * the gateway now owns) replaces the main gw's gw_snap, whose reference is
 * dropped (the exchanges in flight keep theirs), and gw_snap_gen counts
 * the install.  Every loop sees it from its next request on.
 */
void		 snapshot_install(struct gw *, struct snapshot *sn);
/*
 * The running snapshot with a reference for the caller (who drops it with
 * snapshot_unref), and when gen is not NULL the gw_snap_gen it came with.
 * Any loop; the lock it takes is held for the two reads only.
 */
struct snapshot	*snapshot_current(struct gw *, uint64_t *gen);
/*
 * How a reload ended, on the loop: sn is the snapshot it installed
 * (borrowed for the call: another loop may install the next meanwhile), or
 * NULL when it installed none and err says why.
 */
typedef void	(*snapshot_reload_fn)(void *arg, const struct snapshot *sn, const char *err);
/*
 * The one asynchronous reload.  With sn NULL the configuration is loaded
 * on a worker; sn is otherwise a snapshot the caller loaded when
 * gw_snap_gen was gen (a registry change's), and the reload owns its
 * reference.  On the loop the snapshot is installed, unless another install
 * came in between: it may lack that install's change, so it is thrown away
 * and the configuration loaded again (now with the change), for as long
 * as installs keep overtaking the load and the gateway is not stopping.
 * done runs exactly once, on the loop; before the call returns when sn is
 * installed at once or no worker takes the load.
 */
void		 snapshot_reload(struct gw *, struct snapshot *sn, uint64_t gen,
		    snapshot_reload_fn done, void *arg);
/*
 * SIGHUP: reloads the configuration (snapshot_reload) and logs the
 * outcome.  A signal while a load runs asks for one more after it.
 */
void		 config_sighup(struct gw *);
const struct policy *snapshot_policy(const struct snapshot *, const char *bundle);
const struct adapter *snapshot_adapter_for(const struct snapshot *, const char *dept,
		    const char *item);
/* Any adapter of the snapshot by id, disabled ones included. */
const struct adapter *snapshot_adapter(const struct snapshot *, const char *id);
/*
 * The endpoint rules a request of ad must obey (egress.c): the snapshot's
 * list for an adapter registered through the API, NULL (any address) for
 * the operator's file adapters.
 */
const struct egress *snapshot_egress_for(const struct snapshot *, const struct adapter *ad);
const struct seal_key *snapshot_seal(const struct snapshot *, const char *id);
/* Parses a JSON file into a msgpack object in z. */
int		 config_json_file(const char *path, msgpack_zone *z, msgpack_object *out,
		    char *err, size_t errlen);

/* settings.c: the settings table (docs/operations.md, lianband.conf(5)) */
struct settings;
/*
 * Parses lianband's command line: 0 to run, with *out (the caller frees it
 * with settings_free once no thread uses it); 1 when --help or --version
 * printed their text (exit 0); -1 after a usage error or a wrong value,
 * reported on stderr (exit 2).  Main thread.
 */
int		 settings_args(int argc, char **argv, struct settings **out);
void		 settings_free(struct settings *);
/* --print-config was given. */
bool		 settings_print_only(const struct settings *);
/* --backup DEST was given: DEST, else NULL (a run mode, not a setting). */
const char	*settings_backup(const struct settings *);
/*
 * The settings in force into gc: the embedded defaults, then the config
 * file (--config, or an installed lianband's default file when it exists),
 * then the command line.  -1 with "FILE:LINE: reason" in err.  Reads the
 * file: any thread, with its own gc.
 */
int		 settings_load(const struct settings *, struct gw_config *gc, char *err,
		    size_t errlen);
/* gc as lianband.conf lines (--print-config). */
void		 settings_print(FILE *, const struct gw_config *gc);
/*
 * What a start error msg asks for, into buf: the fix, the setting that
 * names the file msg starts with (else the setting fallback), and where
 * its value came from.
 */
void		 settings_hint(const struct gw_config *gc, const char *fallback, const char *msg,
		    char *buf, size_t len);
/* Copies the settings that SIGHUP may change from src into dst. */
void		 settings_merge(struct gw_config *dst, const struct gw_config *src);
/*
 * SIGHUP, on the loop: takes the settings of next that may change while
 * running, logs each change and, for every other one that changed, that it
 * needs a restart, and hands the new values to the modules.
 */
void		 settings_apply(struct gw *, const struct gw_config *next);

/* http.c */
struct principal {
	char	pr_role[16];		/* department, consumer, auditor, admin */
	char	pr_id[LB_ID_MAX];
};
/* The TLS context every loop's front shares (main thread, before the loops). */
int		 http_start(struct gw *, char *err, size_t errlen);
/*
 * One loop's HTTPS front: an evhttp of gw_base listening on the host of
 * gc_listen, at port (-1: the port of gc_listen) with SO_REUSEPORT, so
 * that the loops' listeners share the port and the kernel spreads the
 * connections among them; gw_bound names the address bound.
 */
int		 http_front(struct gw *, int port, char *err, size_t errlen);
/* The address bs listens on as HOST:PORT ([HOST]:PORT for IPv6); -1 when unknown. */
int		 http_bound_name(struct evhttp_bound_socket *bs, char *buf, size_t len);
/* Frees gw's front, and the TLS context with the main thread's gw. */
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

/* http_guard.c: the request framing in front of evhttp */
struct bufferevent;
struct evbuffer;
#define HTTP_GUARD_HEAD_MAX	(16 * 1024)	/* a request head, its empty line included */
#define HTTP_CHUNK_LINE_MAX	1024		/* a chunk size line */
enum http_body_kind {
	HB_NONE = 0,
	HB_LENGTH,
	HB_CHUNKED
};
/* What the head of a request says, or why it is refused. */
struct http_head {
	enum lb_err		hh_err;		/* LB_OK, bad_request, too_large, method_not_allowed */
	char			hh_msg[160];	/* why, a sentence, when hh_err is not LB_OK */
	enum http_body_kind	hh_body;
	uint64_t		hh_length;	/* HB_LENGTH: the Content-Length */
};
/*
 * Checks the request head of n bytes at p (request line, header lines, the
 * empty line; empty lines before the request line are skipped) and writes
 * it to out as evhttp is to read it: the request line and header lines, each
 * with CRLF, without Content-Length and Transfer-Encoding and without the
 * empty line.  A declared body over body_max bytes is too_large.
 */
void		 http_guard_head(const char *p, size_t n, size_t body_max, struct evbuffer *out,
		    struct http_head *hh);
/* Where a chunked body's decoding stands; zeroed for a new body. */
enum http_chunked_state {
	HK_SIZE = 0,
	HK_DATA,
	HK_DATA_END,
	HK_TRAILER,
	HK_DONE
};
struct http_chunked {
	enum http_chunked_state	hk_state;
	uint64_t		hk_left;	/* HK_DATA: bytes of the chunk to come */
	size_t			hk_total;	/* decoded so far */
	size_t			hk_trailer;	/* trailer bytes so far */
};
/*
 * Decodes the chunked body at the front of in into out, taking from in what
 * it decodes; *done once the last chunk and the trailer are read (in keeps
 * what follows them).  Returns LB_OK (also while more is needed),
 * bad_request (framing) or too_large (over max decoded bytes, or a trailer
 * over HTTP_GUARD_HEAD_MAX), with a sentence in msg.
 */
enum lb_err	 http_chunked_decode(struct http_chunked *, struct evbuffer *in,
		    struct evbuffer *out, size_t max, bool *done, char *msg, size_t msglen);
/*
 * The guard of one connection (bev, an SSL bufferevent that evhttp reads):
 * requests reach evhttp only through it, one at a time.  Freed with
 * http_guard_free while bev still exists.
 */
struct http_guard;
struct http_guard *http_guard_new(struct bufferevent *bev);
void		 http_guard_free(struct http_guard *);
/*
 * Called when evhttp delivers a request: LB_OK, or why the guard refused it
 * (the request is then a synthetic one that closes the connection) with a
 * sentence in msg.  The guard goes on with the next request.
 */
enum lb_err	 http_guard_verdict(struct http_guard *, char *msg, size_t msglen);

/* http_admin.c */
/*
 * The registry of department adapters and bundle policies (docs/contract.md §8):
 * the routes under /v1/adapters and /v1/policies, called by http.c once
 * the method and the role fit.  id is the path's last segment, already
 * checked to be an id.  A change is journaled, stored, and then applied to
 * the next exchanges by a new snapshot.
 */
void		 http_admin_adapters(struct gw *, struct evhttp_request *,
		    const struct principal *, const char *path);
void		 http_admin_adapter_get(struct gw *, struct evhttp_request *,
		    const struct principal *, const char *id);
void		 http_admin_adapter_put(struct gw *, struct evhttp_request *,
		    const struct principal *, const char *id);
void		 http_admin_adapter_disable(struct gw *, struct evhttp_request *,
		    const struct principal *, const char *id);
void		 http_admin_policies(struct gw *, struct evhttp_request *,
		    const struct principal *, const char *path);
void		 http_admin_policy_get(struct gw *, struct evhttp_request *,
		    const struct principal *, const char *id);
void		 http_admin_policy_put(struct gw *, struct evhttp_request *,
		    const struct principal *, const char *id);

/* http_journal.c */
/*
 * Answers an auditor's GET under /v1/journal/ (checkpoint, leaves, records,
 * proof/inclusion, proof/consistency) once the read is journaled.
 */
void		 http_journal(struct gw *, struct evhttp_request *, const struct principal *,
		    const char *path);

/* http_subject.c */
/*
 * One entry of an access report, from a record's bytes (what a citizen
 * wants to know of it: when, who, which item, for which service), in z.
 * The agent who acted is looked up in j's party table; a peer's record
 * (j NULL) shows its rel without the agent, whom only that node knows.
 */
void		 subject_access_entry(struct journal *j, msgpack_zone *z, uint64_t seq,
		    const uint8_t *rec, size_t len, msgpack_object *out);
/*
 * Answers a consumer's GET /v1/subjects/me/accesses: the access report of
 * the citizen named by the self consent token in the Lianban-Consent header.
 */
void		 http_subject(struct gw *, struct evhttp_request *, const struct principal *,
		    const char *path);

/* witness.c: the nodes of a cluster witness each other's journals (docs/audit.md) */
/*
 * Starts witnessing gw_peers, when there are any: the state each peer had
 * is read back from the journal's witness database, and every second (and
 * now) each peer's latest checkpoint is fetched, checked (signature, origin
 * GATEWAY_ID/PEER, consistency with the last one seen) and cosigned.  Runs
 * on gw_base.  -1 with a sentence in err.
 */
int		 witness_start(struct gw *, char *err, size_t errlen);
/* Stops the timer; checks under way end without storing anything.  Loop thread. */
void		 witness_stop(struct gw *);
void		 witness_free(struct gw *);
/* GET /v1/journal/witness (auditor, gateway): each peer's state and evidence. */
void		 http_witness(struct gw *, struct evhttp_request *, const struct principal *,
		    const char *path);
/* GET /v1/journal/cosignatures?origin=&size= (auditor, gateway): the cosignatures made here. */
void		 http_cosignatures(struct gw *, struct evhttp_request *, const struct principal *,
		    const char *path);

/* cluster_read.c: reads that answer for the whole cluster (docs/audit.md) */
/*
 * True when req asks for the whole cluster: peers are configured and the
 * query does not say scope=node.
 */
bool		 cluster_wanted(struct gw *, struct evhttp_request *req);
/*
 * The position of node in a cluster cursor "NODE:SEQ[,NODE:SEQ...]" (the
 * next of a cluster-wide page): *has false when the cursor does not name
 * it.  -1 when s is not such a cursor.
 */
int		 cluster_cursor(const char *s, const char *node, uint64_t *seq, bool *has);
/*
 * Answers a records query for the cluster: this node's page (body, the
 * answer of GET /v1/journal/records with scope=node, already journaled) is
 * merged with the pages of the peers, asked as this node, and req answered.
 * body is copied.
 */
void		 cluster_records(struct gw *, struct evhttp_request *req, const msgpack_object *body);
/*
 * Answers an access report for the cluster: like cluster_records, the
 * peers asked for the records of the subject pseudonym subject.
 */
void		 cluster_accesses(struct gw *, struct evhttp_request *req, const msgpack_object *body,
		    const uint8_t subject[32]);

/*
 * GET /v1/journal/checkpoints (auditor, gateway): the latest signed
 * checkpoint of this node and of every peer that answers, as each signed it,
 * and which nodes did not answer.  Without peers, this node's alone.
 */
void		 cluster_checkpoints(struct gw *, struct evhttp_request *,
		    const struct principal *, const char *path);

/* egress.c: where adapters registered through the API may send requests */
/*
 * Loads the operator's endpoint list from path (docs/operations.md).  An
 * empty path, or a missing file when missing_ok, is an empty list: it
 * allows nothing.  NULL with a sentence naming the file when it cannot be
 * read or is wrong.  Immutable once loaded; any thread may read it.
 */
struct egress	*egress_load(const char *path, bool missing_ok, char *err, size_t errlen);
void		 egress_free(struct egress *);
/*
 * Registration: the host of ad's endpoint is listed for ad's department (a
 * name by name, an address in a network, the port when the entry has one).
 * -1 with a sentence for the department otherwise.
 */
int		 egress_check_adapter(const struct egress *, const struct adapter *ad,
		    char *err, size_t errlen);
/*
 * Each request: a, the address ep's host resolved to (or is), may be
 * reached for dept.  -1 with a sentence for the log otherwise.
 */
int		 egress_check_addr(const struct egress *, const char *dept,
		    const struct endpoint *ep, const struct netaddr *a, char *err,
		    size_t errlen);
/* http_console.c: the audit console at /console/ */
struct console;
/*
 * Reads the console's files (HTML, JavaScript, CSS, JSON, text, SVG and PNG
 * files of dir and up to three folders below it) into memory, once, at
 * start.  *out is NULL, and the call succeeds, when dir does not exist;
 * -1 with a sentence in err when a file cannot be read or the folder
 * exceeds the limits (128 files, 4 MiB a file, 16 MiB in all).  The caller
 * frees *out with console_free.
 */
int		 console_load(const char *dir, struct console **out, char *err, size_t errlen);
void		 console_free(struct console *);
size_t		 console_nfiles(const struct console *);
/* GET /console/NAME: a loaded file by exact name, with fixed headers. */
void		 http_console(struct gw *, struct evhttp_request *, const struct principal *,
		    const char *path);
/* GET /console: moved to /console/. */
void		 http_console_redirect(struct gw *, struct evhttp_request *,
		    const struct principal *, const char *path);
/* GET /v1/journal/certificate (auditor): the checkpoint certificate and its kid. */
void		 http_console_certificate(struct gw *, struct evhttp_request *,
		    const struct principal *, const char *path);

/* http_ops.c */
/* GET /v1/ops/summary?hours=N (admin): traffic counts from the journal, bounded. */
void		 http_ops_summary(struct gw *, struct evhttp_request *, const struct principal *,
		    const char *path);

/* http_ready.c */
/* Beyond this share (percent) of its limit the journal's map is near full. */
#define READY_MAP_PERCENT	90
/*
 * Whether the gateway can serve exchanges: NULL when ready, else the
 * reason (a static sentence): the journal cannot commit, its map is near
 * full, the last reload failed, the daemon is draining, or (a cluster
 * node) etcd cannot be reached or its shared state was not read yet.
 */
const char	*ready_reason(struct gw *);
/* GET /v1/ready (no certificate): 200 {"status":"ready"} or 503 with the reason. */
void		 http_ready(struct gw *, struct evhttp_request *, const struct principal *,
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
/*
 * Asks the name server nameserver (an IP address, with ":PORT" when not
 * 53) instead of those of /etc/resolv.conf.  For tests.
 */
int		 fanout_nameserver(struct fanout *, const char *nameserver);
/*
 * Frees the pool.  A fetch still resolving its host ends with an error
 * when the loop runs next; one waiting for an answer never ends.
 */
void		 fanout_free(struct fanout *);
/*
 * Sends one request for (item, subject) to the adapter's endpoint.  cb runs
 * exactly once on the loop, never before fanout_fetch has returned: LB_OK
 * with the answer's body (valid only during the call), or
 * department_unavailable / department_timeout / department_bad_response
 * with a sentence.  -1 (and no cb) when the request cannot be made at all:
 * the URL does not fit, memory runs out.  eg (snapshot_egress_for) is the
 * list every address the endpoint's host stands for is checked against
 * before the gateway connects, NULL for none; it must stay valid until cb
 * has run.  A refused address fails the fetch as department_unavailable
 * and is logged.
 */
int		 fanout_fetch(struct fanout *, const struct egress *eg, const struct adapter *,
		    const char *item, const char *subject, fanout_cb, void *arg);

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
	struct event_base	*sr_base;	/* the loop sr_done runs on; NULL: the sealer's */
};
struct sealer;
/*
 * Collects claims per seal key for window_us microseconds or max claims
 * (at most SEALER_MAX_BATCH), whichever comes first, and signs each batch
 * on the workers.  When no announced exchange is still on its way to the
 * sealer (see sealer_expect), waiting claims are signed at once.  One
 * sealer serves every loop: its calls may come from any of them (a mutex
 * guards the queues, held for their arithmetic only, never across I/O);
 * the window's timer runs on base, the main thread's.
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
/* New window and batch maximum for the claims to come (SIGHUP); any thread. */
void		 sealer_set(struct sealer *, unsigned window_us, size_t max);

/* exchange.c */
/* Handles POST /v1/exchanges for a consumer; body already decoded into z. */
void		 exchange_start(struct gw *, struct evhttp_request *, const struct principal *,
		    msgpack_zone *z, const msgpack_object *body);
/*
 * The exchange state machine for both routes: verify false for an exchange,
 * true for a verification (verification.c), whose items are predicates.
 */
void		 exchange_begin(struct gw *, struct evhttp_request *, const struct principal *,
		    msgpack_zone *z, const msgpack_object *body, bool verify);

/* verification.c: POST /v1/verifications, answers that release no record */
void		 verification_start(struct gw *, struct evhttp_request *,
		    const struct principal *, msgpack_zone *z, const msgpack_object *body);
/*
 * Evaluates pd on doc (translated, before minimization) and builds its
 * attestation in z (*att, *result); LB_OK, or the item's failure with a
 * sentence in err (predicate_eval).
 */
enum lb_err	 verification_attest(const struct predicate *pd, const msgpack_object *doc,
		    const char *subject, const char *dept, uint64_t iat, msgpack_zone *z,
		    msgpack_object *att, bool *result, char *err, size_t errlen);
/* Makes r a "verify" record of pd: its field and operator, never its value. */
void		 verification_record(const struct predicate *pd, struct jrec *r);
/*
 * One result of a verification answer (docs/api.md): subject, item,
 * predicate, status, journal_seq, and when ok result, attestation,
 * attestation_bytes and seal; else message.  Built in z, borrowing the rest.
 */
msgpack_object	 verification_result(msgpack_zone *z, const char *subject,
		    const struct predicate *pd, enum lb_err status, const char *msg,
		    uint64_t seq, bool result, const msgpack_object *att, const uint8_t *bytes,
		    size_t len, const uint8_t *receipt, size_t receipt_len);

/* throttle.c: the rate limit of every client, whatever it asks */
#define THROTTLE_RATE_DEFAULT	200
#define THROTTLE_BURST_DEFAULT	2000
struct throttle;
/* A bucket per client (role, id) of per_s requests a second up to burst. */
struct throttle	*throttle_new(struct gw *, uint32_t per_s, uint32_t burst);
void		 throttle_free(struct throttle *);
/* New rate and burst for the requests to come (SIGHUP); any thread. */
void		 throttle_set(struct throttle *, uint32_t per_s, uint32_t burst);
/*
 * Takes a token of pr's bucket (gw_throttle): true when the request may go
 * on; false when it was answered 429 rate_limited.  The refusal is counted,
 * not journaled: throttle_flush journals the counts, by itself at most once
 * a second.  Any loop: the buckets are locked for their arithmetic only.
 */
bool		 throttle_admit(struct gw *, struct evhttp_request *, const struct principal *);
/* Journals one "deny" record per client with refusals counted since the last one. */
void		 throttle_flush(struct gw *);

/* notify.c: the service manager's view (sd_notify; systemd/lianband.service) */
/* Seconds between two STATUS= lines. */
#define NOTIFY_STATUS_S	5
/*
 * Says READY=1 and starts the STATUS= lines (journal size, work in flight),
 * when $NOTIFY_SOCKET names a service manager; call it once lianband
 * listens.  Without one, this and the calls below do nothing.  -1 when the
 * timer cannot be made.  Loop thread only, like the calls below.
 */
int		 notify_start(struct gw *);
/* A SIGHUP reload begins (RELOADING=1) and ends, installed or refused (READY=1). */
void		 notify_reloading(struct gw *);
void		 notify_reloaded(struct gw *, bool installed);
/* The daemon was asked to stop (STOPPING=1). */
void		 notify_stopping(struct gw *);
void		 notify_free(struct gw *);

/* metrics.c: the Prometheus metrics of the daemon (docs/operations.md) */
enum metrics_id {
	METRICS_EXCHANGES = 0,	/* bundle, consumer, code */
	METRICS_ITEMS,		/* bundle, consumer, code */
	METRICS_DENIALS,	/* code */
	METRICS_DEPT_REQUESTS,	/* department, code */
	METRICS_DEPT_LATENCY,	/* department; seconds */
	METRICS_SEAL_BATCH,	/* alg; claims */
	METRICS_SEAL_SIGN,	/* alg; seconds */
	METRICS_TLS_FAILURES,	/* reason */
	METRICS_RELOADS,	/* result */
	METRICS_REGISTRY,	/* kind, operation */
	METRICS_WITNESS_INCONSISTENT,	/* peer */
	METRICS_WITNESS_COSIGNED,	/* peer */
	METRICS_N
};
/*
 * Adds n to the counter of family f with the label values given (as many
 * as the family has labels), or observes v in its histogram.  Each family
 * keeps 256 label sets; later ones are counted in one whose labels are all
 * "other".  Any thread: a mutex guards the series, held for the look-up
 * and the addition.
 */
void		 metrics_count(enum metrics_id f, uint64_t n, const char *const *values);
void		 metrics_observe(enum metrics_id f, double v, const char *const *values);
/*
 * Listens on gc_metrics (when not "") with a plaintext evhttp of
 * gw_base that answers GET /metrics.  -1 with a sentence in err.
 */
int		 metrics_start(struct gw *, char *err, size_t errlen);
/* Closes the listener and frees every series. */
void		 metrics_stop(void);
/* Appends the exposition text to out: gw's gauges (none when NULL), then every series. */
void		 metrics_render(struct evbuffer *out, struct gw *gw);

/* loops.c: the event loops serving the API */
#define LOOPS_MAX	64
/*
 * Starts the event loops of gw (the main thread's, after http_start): as
 * many as gc_loops, or one per online core when it is 0, each a copy of
 * gw with its own event base, HTTPS front (http_front; the first binds
 * gc_listen, the others the port it got), fan-out and thread.  gw_bound
 * gets the address.  -1 with a sentence in err; loops_close and
 * loops_free undo what was made.
 */
int		 loops_start(struct gw *, char *err, size_t errlen);
/* SIGTERM: every loop closes its listener and refuses new requests. */
void		 loops_stop(struct gw *);
/* Exchanges and other requests in flight, the main thread's and every loop's. */
int		 loops_inflight(struct gw *);
/* Every loop has started and none has stopped (readiness). */
bool		 loops_serving(struct gw *);
/* SIGHUP, on the main thread: the settings that may change reach every loop. */
void		 loops_settings(struct gw *);
/* The loops leave their dispatch; their threads are joined.  Main thread. */
void		 loops_exit(struct gw *);
/* After loops_exit: every loop's HTTPS front and fan-out are freed. */
void		 loops_close(struct gw *);
/*
 * Last: runs what was posted to the loops meanwhile when run (the workers
 * and the journal have drained), then frees their bases.
 */
void		 loops_free(struct gw *, bool run);
/* The metrics of each loop: connections open and accepted, requests. */
void		 loops_metrics(struct evbuffer *out, struct gw *);
/* The main thread's gw of any gw. */
static inline struct gw *
gw_main_of(struct gw *gw)
{
	return gw->gw_main != NULL ? gw->gw_main : gw;
}

/* revocation.c */
/* Handles POST /v1/revocations (admin fields, or an authority's signed envelope). */
void		 revocation_start(struct gw *, struct evhttp_request *, const struct principal *,
		    msgpack_zone *z, const msgpack_object *body);

#endif /* GATEWAY_H */
