/*
 * cluster.h - what lianband shares with the other nodes of a cluster
 * (docs/cluster.md): the etcd v3 client (etcd.c) and the state the daemon
 * keeps on etcd (cluster.c).  Nothing here is used unless the setting etcd
 * names the store; a single node keeps everything in its own LMDB.
 */
#ifndef CLUSTER_H
#define CLUSTER_H

#include <jansson.h>

#include "gateway.h"

/* etcd.c: an etcd v3 client over its HTTP/JSON gateway */
#define ETCD_ENDPOINTS_MAX	8
/*
 * A call's deadline, every member tried, and one member's share of it.
 * A member waits for a new leader rather than fail a request, and an
 * election after the leader died takes one to two election timeouts (1 s
 * in docs/cluster.md): the share lets a call outlast it.
 */
#define ETCD_TIMEOUT_MS		5000
#define ETCD_TRY_MS		2500
enum etcd_status {
	ETCD_OK = 0,		/* the member answered 200: res is its JSON */
	ETCD_REFUSED,		/* it answered an error (res: {"error","code"}) */
	ETCD_UNAVAILABLE	/* no member answered before the deadline */
};
/* The operations counted in the metrics (label "op"). */
enum etcd_op {
	ETCD_OP_RANGE = 0,
	ETCD_OP_TXN,
	ETCD_OP_PUT,
	ETCD_OP_LEASE,
	ETCD_OP_WATCH,
	ETCD_OP_N
};
struct etcd;
/*
 * Parses urls (http://HOST:PORT, comma-separated, at most
 * ETCD_ENDPOINTS_MAX) and starts the client's thread with its own event
 * loop.  Nothing is connected yet.  NULL with a sentence in err for a bad
 * list.  The caller frees it with etcd_free.
 */
struct etcd	*etcd_new(const char *urls, char *err, size_t errlen);
/* Stops the thread; calls still queued or under way never complete. */
void		 etcd_free(struct etcd *);
/* Whether urls is a member list etcd_new takes: 0, or -1 with a sentence in err. */
int		 etcd_urls_check(const char *urls, char *err, size_t errlen);
/*
 * How a call ended.  res (the answer's JSON, NULL when unavailable) is
 * valid only during the call; msg is a sentence for the log.
 */
typedef void	(*etcd_done_fn)(void *arg, enum etcd_status, json_t *res, const char *msg);
/*
 * POSTs body (its reference is taken over) to path ("/v3/kv/txn", ...) of
 * the member in use; when it cannot be reached or says it is unavailable
 * (no leader, timeout) the next member is tried, until timeout_ms has
 * passed.  fn runs exactly once, on base's loop (loop_post), or on the
 * client's thread when base is NULL; never before etcd_call returns.  -1
 * (fn not called) when the client is stopping or memory runs out.  Any
 * thread.
 */
int		 etcd_call(struct etcd *, struct event_base *base, enum etcd_op op,
		    const char *path, json_t *body, unsigned timeout_ms, etcd_done_fn fn,
		    void *arg);
/*
 * A streaming call (/v3/watch): body (taken over) is sent to the member
 * in use, and line runs for every message of the answer (res valid only
 * during the call), end once when the stream closes for any reason, after
 * which the member in use is the next one.  Both run on the client's
 * thread.  -1 (neither called) when the client is stopping.
 */
typedef void	(*etcd_line_fn)(void *arg, json_t *res);
typedef void	(*etcd_end_fn)(void *arg, const char *msg);
int		 etcd_stream(struct etcd *, const char *path, json_t *body, etcd_line_fn line,
		    etcd_end_fn end, void *arg);
/* Standard base64 (etcd's bytes in JSON): malloc'ed text, or NULL. */
char		*etcd_b64(const void *, size_t);
/* Decodes a base64 JSON string; *out malloc'ed (NUL-terminated), -1 when bad. */
int		 etcd_unb64(const json_t *s, uint8_t **out, size_t *outlen);
/* An int64 of the gateway's JSON (a decimal string, or absent: 0). */
int64_t		 etcd_int(const json_t *obj, const char *key);
/* Appends the client's counters to out in the Prometheus text format. */
void		 etcd_metrics(struct etcd *, struct evbuffer *out);

/* cluster.c: the daemon's shared state on etcd */
/* jti claim statuses beyond journal_jti_reserve's: the store did not answer. */
#define CLUSTER_CLAIM_UNAVAILABLE	3
struct cluster;
/*
 * Whether the settings make a cluster node that can start: etcd needs node
 * (and a valid member list).  -1 with a sentence in err.  Any thread.
 */
int		 cluster_settings_check(const struct gw_config *, char *err, size_t errlen);
/*
 * Cluster mode when gc_etcd is not "": checks gc_node, starts the etcd
 * client, the node's liveness key and the watch on the shared state (first
 * read whole, then watched from the revision read).  *out stays NULL for a
 * single node.  -1 with a sentence in err.  Loop thread (gw_base), after
 * the journal, registry and workers exist; freed with cluster_free.
 */
int		 cluster_start(struct gw *, struct cluster **out, char *err, size_t errlen);
/*
 * Stops the etcd client (calls in flight never complete) and applies no
 * more changes; what was posted to the loop before may still run until
 * cluster_free, and then does nothing.  Loop thread, once the loop has
 * stopped.
 */
void		 cluster_stop(struct cluster *);
void		 cluster_free(struct cluster *);
/* What a jti claim on etcd said: a journal_jti_reserve status, or CLUSTER_CLAIM_UNAVAILABLE. */
typedef void	(*cluster_claim_fn)(void *arg, int status);
/*
 * Claims a consent jti across the cluster: one etcd transaction creates
 * GATEWAY/jti/HEX unless it exists, under the lease of keep_until's second.
 * fn runs once on base's loop with journal_jti_reserve's status (0 claimed,
 * 1 seen before, 2 expired) or CLUSTER_CLAIM_UNAVAILABLE.  Any thread.
 */
int		 cluster_jti_claim(struct cluster *, struct event_base *base, const uint8_t jti[16],
		    uint64_t keep_until, cluster_claim_fn fn, void *arg);
/*
 * Publishes a revocation (key as journal_revoke_key makes it) for every
 * node: fn runs once on base's loop, status 0 when etcd holds it, -1 when
 * it could not be reached.  Any thread.
 */
typedef void	(*cluster_done_fn)(void *arg, int status);
int		 cluster_revoke(struct cluster *, struct event_base *base, const uint8_t *key,
		    size_t keylen, uint64_t revoked_at, uint64_t keep_until, cluster_done_fn fn,
		    void *arg);
/*
 * Publishes a stored registry change (spec copied; NULL: none) for the
 * other nodes, which store it in their registry and reload.  A failure is
 * logged: the change then holds on this node only until it is made again.
 * Loop thread.
 */
void		 cluster_registry_publish(struct cluster *, enum reg_kind, const char *id,
		    const struct reg_head *h, const uint8_t *spec, size_t speclen);
/* NULL when the node can serve, else why not (a static sentence); any thread. */
const char	*cluster_ready(struct cluster *);
/* Live nodes (their liveness keys), at least 1; any thread. */
unsigned	 cluster_live_nodes(struct cluster *);
/* Appends the cluster's metrics (etcd calls, applied changes, live nodes). */
void		 cluster_metrics(struct cluster *, struct evbuffer *out);

#endif /* CLUSTER_H */
