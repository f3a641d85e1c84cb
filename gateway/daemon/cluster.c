/*
 * cluster.c - the state the nodes of a cluster share on etcd
 * (docs/cluster.md).  Under /lianban/GATEWAY_ID/:
 *
 *	jti/HEX			a claimed consent jti; value NODE:NONCE;
 *				under the lease of its keep_until second
 *	state/rev/HEX		a revocation (journal_revoke_key, in hex);
 *				value "REVOKED_AT KEEP_UNTIL"; leased likewise
 *	state/reg/KIND/ID	the head of a registry id with its spec (JSON)
 *	state/node/NODE		a live node; under the node's own lease
 *
 * A claim is one transaction: create the key if it has no create revision
 * yet, else read it.  Tokens expiring in one second share one lease, so
 * etcd keeps a lease per second of expiry, not per token.  The jti keys are
 * never watched; everything under state/ is (cluster_state.c).  This file
 * makes the claims and publishes the revocations, keeps the leases and the
 * node's liveness key, and starts and stops the cluster.
 *
 * Claims and revocations may come from any thread; their etcd calls end on
 * the client's thread and their outcome is posted to the caller's loop.
 * The watch, the liveness key and every change applied run on the main
 * loop (gw_base).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/rand.h>

#include "cluster_impl.h"

#define CL_LEASE_SLACK_S	5	/* a lease outlives its second by this */
#define CL_NODE_TTL_S		5	/* a node's liveness lease */
#define CL_KEEPALIVE_MS		1500

enum cl_op_kind {
	CLOP_CLAIM,
	CLOP_REVOKE
};

/* A claim or a revocation on its way to etcd. */
struct cl_op {
	struct cluster		*op_cl;
	enum cl_op_kind		 op_kind;
	struct event_base	*op_base;
	char			 op_key[CL_KEY_MAX];
	char			 op_value[96];
	uint64_t		 op_sec;	/* the lease's second */
	int64_t			 op_lease;
	bool			 op_cached;	/* op_lease is the cache's */
	int			 op_tries;
	int			 op_status;
	cluster_claim_fn	 op_claim_fn;
	cluster_done_fn		 op_done_fn;
	void			*op_arg;
	struct cl_op		*op_next;
};

static void	cl_lease_granted(void *, enum etcd_status, json_t *, const char *);
static void	cl_op_send(struct cl_op *);

json_t *
cluster_b64(const char *s, size_t n)
{
	char	*t;
	json_t	*j;

	if ((t = etcd_b64(s, n)) == NULL)
		return NULL;
	j = json_string(t);
	free(t);
	return j;
}

/* --- outcomes of claims and revocations ---------------------------------- */

static void
cl_op_deliver(void *arg)
{
	struct cl_op	*op = arg;

	if (op->op_kind == CLOP_CLAIM)
		op->op_claim_fn(op->op_arg, op->op_status);
	else
		op->op_done_fn(op->op_arg, op->op_status);
	free(op);
}

/* Ends op with status on its caller's loop (any thread). */
static void
cl_op_finish(struct cl_op *op, int status)
{
	op->op_status = status;
	if (loop_post(op->op_base, cl_op_deliver, op) != 0) {
		log_warnx("cluster: the outcome for %s could not be handed back", op->op_key);
		free(op);
	}
}

static int
cl_op_unavailable(const struct cl_op *op)
{
	return op->op_kind == CLOP_CLAIM ? CLUSTER_CLAIM_UNAVAILABLE : -1;
}

/* --- one lease per expiry second ----------------------------------------- */

/*
 * Finds op a lease for op_sec: a cached one at once (op_lease set, 1), or
 * the op waits for a grant in flight or one it starts (0).  -1 when no
 * grant could be asked for.  A slot held by another second still in use
 * makes an uncached grant of op's own.
 */
static int
cl_lease_get(struct cl_op *op)
{
	struct cluster	*cl = op->op_cl;
	struct cl_lease	*le = &cl->cl_leases[op->op_sec % CL_LEASES];
	uint64_t	 now = now_ms() / 1000;
	json_t		*body;
	char		 ttl[24];
	int		 ret;

	pthread_mutex_lock(&cl->cl_lock);
	if (le->le_state != LE_FREE && le->le_sec != op->op_sec && le->le_sec < now &&
	    le->le_wait == NULL)
		le->le_state = LE_FREE;	/* a second gone by: its slot is free again */
	if (le->le_state == LE_READY && le->le_sec == op->op_sec) {
		op->op_lease = le->le_id;
		op->op_cached = true;
		pthread_mutex_unlock(&cl->cl_lock);
		return 1;
	}
	if (le->le_state == LE_GRANTING && le->le_sec == op->op_sec) {
		op->op_next = le->le_wait;
		le->le_wait = op;
		pthread_mutex_unlock(&cl->cl_lock);
		return 0;
	}
	if (le->le_state == LE_FREE) {
		le->le_state = LE_GRANTING;
		le->le_sec = op->op_sec;
		le->le_wait = op;
		op->op_next = NULL;
		op->op_cached = true;
	} else
		op->op_cached = false;
	pthread_mutex_unlock(&cl->cl_lock);
	snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)(op->op_sec > now ?
	    op->op_sec - now + CL_LEASE_SLACK_S : CL_LEASE_SLACK_S));
	body = json_pack("{s:s}", "TTL", ttl);
	ret = body != NULL && etcd_call(cl->cl_etcd, NULL, ETCD_OP_LEASE, "/v3/lease/grant",
	    body, ETCD_TIMEOUT_MS, cl_lease_granted, op) == 0 ? 0 : -1;
	if (ret == -1 && op->op_cached) {
		pthread_mutex_lock(&cl->cl_lock);
		le->le_state = LE_FREE;
		le->le_wait = NULL;
		pthread_mutex_unlock(&cl->cl_lock);
	}
	return ret;
}

/* A grant came back (client thread): the ops waiting for it go on or fail. */
static void
cl_lease_granted(void *arg, enum etcd_status st, json_t *res, const char *msg)
{
	struct cl_op	*op = arg, *w, *next;
	struct cluster	*cl = op->op_cl;
	struct cl_lease	*le = &cl->cl_leases[op->op_sec % CL_LEASES];
	int64_t		 id = st == ETCD_OK ? etcd_int(res, "ID") : 0;

	if (id == 0)
		log_warnx("cluster: no lease for second %llu: %s",
		    (unsigned long long)op->op_sec, st == ETCD_OK ? "no ID in the answer" : msg);
	if (!op->op_cached) {
		w = op;
		w->op_next = NULL;
	} else {
		pthread_mutex_lock(&cl->cl_lock);
		w = le->le_wait;
		le->le_wait = NULL;
		le->le_id = id;
		le->le_state = id != 0 ? LE_READY : LE_FREE;
		pthread_mutex_unlock(&cl->cl_lock);
	}
	for (; w != NULL; w = next) {
		next = w->op_next;
		w->op_next = NULL;
		w->op_lease = id;
		if (id == 0)
			cl_op_finish(w, cl_op_unavailable(w));
		else
			cl_op_send(w);
	}
}

/* etcd lost op's lease (a restored store, a clock far off): it is asked for again. */
static void
cl_lease_forget(struct cl_op *op)
{
	struct cl_lease	*le = &op->op_cl->cl_leases[op->op_sec % CL_LEASES];

	pthread_mutex_lock(&op->op_cl->cl_lock);
	if (le->le_state == LE_READY && le->le_id == op->op_lease)
		le->le_state = LE_FREE;
	pthread_mutex_unlock(&op->op_cl->cl_lock);
}

static void
cl_op_start(struct cl_op *op)
{
	switch (cl_lease_get(op)) {
	case 1:
		cl_op_send(op);
		break;
	case 0:
		break;
	default:
		cl_op_finish(op, cl_op_unavailable(op));
		break;
	}
}

/* --- claims and revocations ---------------------------------------------- */

/* The answer to op's transaction or put (client thread). */
static void
cl_op_answer(void *arg, enum etcd_status st, json_t *res, const char *msg)
{
	struct cl_op	*op = arg;
	json_t		*kv;
	uint8_t		*v = NULL;
	size_t		 vlen;
	int		 status;

	if (st == ETCD_REFUSED && etcd_int(res, "code") == 5 && op->op_tries++ == 0) {
		/* NotFound: "requested lease not found". */
		log_info("cluster: etcd no longer knows lease %lld; asking for another",
		    (long long)op->op_lease);
		cl_lease_forget(op);
		cl_op_start(op);
		return;
	}
	if (st != ETCD_OK) {
		log_warnx("cluster: %s: %s", op->op_key, msg);
		cl_op_finish(op, cl_op_unavailable(op));
		return;
	}
	if (op->op_kind == CLOP_REVOKE || json_is_true(json_object_get(res, "succeeded"))) {
		cl_op_finish(op, 0);
		return;
	}
	/*
	 * The key exists.  It is this claim's own when a try before this one
	 * committed but its answer was lost on the way (a member failed over):
	 * the value carries the claim's nonce.
	 */
	kv = json_array_get(json_object_get(json_object_get(json_array_get(
	    json_object_get(res, "responses"), 0), "response_range"), "kvs"), 0);
	status = 1;
	if (kv != NULL && etcd_unb64(json_object_get(kv, "value"), &v, &vlen) == 0 &&
	    vlen == strlen(op->op_value) && memcmp(v, op->op_value, vlen) == 0)
		status = 0;
	free(v);
	cl_op_finish(op, status);
}

static void
cl_op_send(struct cl_op *op)
{
	struct cluster	*cl = op->op_cl;
	json_t		*body, *key = cluster_b64(op->op_key, strlen(op->op_key));
	char		 lease[24];
	int		 rc;

	snprintf(lease, sizeof(lease), "%lld", (long long)op->op_lease);
	if (op->op_kind == CLOP_CLAIM)
		body = json_pack("{s:[{s:O,s:s,s:s,s:s}],s:[{s:{s:O,s:o,s:s}}],s:[{s:{s:O}}]}",
		    "compare", "key", key, "target", "CREATE", "create_revision", "0",
		    "result", "EQUAL",
		    "success", "request_put", "key", key, "value",
		    cluster_b64(op->op_value, strlen(op->op_value)), "lease", lease,
		    "failure", "request_range", "key", key);
	else
		body = json_pack("{s:O,s:o,s:s}", "key", key, "value",
		    cluster_b64(op->op_value, strlen(op->op_value)), "lease", lease);
	json_decref(key);
	rc = body != NULL ? etcd_call(cl->cl_etcd, NULL, op->op_kind == CLOP_CLAIM ?
	    ETCD_OP_TXN : ETCD_OP_PUT, op->op_kind == CLOP_CLAIM ? "/v3/kv/txn" :
	    "/v3/kv/put", body, ETCD_TIMEOUT_MS, cl_op_answer, op) : -1;
	if (rc != 0)
		cl_op_finish(op, cl_op_unavailable(op));
}

/* An op of kind whose outcome goes to arg on base's loop; NULL without memory. */
static struct cl_op *
cl_op_new(struct cluster *cl, enum cl_op_kind kind, struct event_base *base,
    uint64_t keep_until, void *arg)
{
	struct cl_op	*op;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return NULL;
	op->op_cl = cl;
	op->op_kind = kind;
	op->op_base = base;
	op->op_arg = arg;
	op->op_sec = keep_until;
	return op;
}

int
cluster_jti_claim(struct cluster *cl, struct event_base *base, const uint8_t jti[16],
    uint64_t keep_until, cluster_claim_fn fn, void *arg)
{
	struct cl_op	*op;
	uint8_t		 nonce[12];
	char		 hex[33], nhex[25];

	if ((op = cl_op_new(cl, CLOP_CLAIM, base, keep_until, arg)) == NULL)
		return -1;
	op->op_claim_fn = fn;
	if (keep_until <= now_ms() / 1000) {
		cl_op_finish(op, 2);	/* expired on its way, as journal_jti_reserve says */
		return 0;
	}
	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		free(op);
		return -1;
	}
	hex_encode(jti, 16, hex);
	hex_encode(nonce, sizeof(nonce), nhex);
	snprintf(op->op_key, sizeof(op->op_key), "%sjti/%s", cl->cl_prefix, hex);
	snprintf(op->op_value, sizeof(op->op_value), "%s:%s", cl->cl_node, nhex);
	cl_op_start(op);
	return 0;
}

int
cluster_revoke(struct cluster *cl, struct event_base *base, const uint8_t *key, size_t keylen,
    uint64_t revoked_at, uint64_t keep_until, cluster_done_fn fn, void *arg)
{
	struct cl_op	*op;
	char		 hex[2 * JOURNAL_REVOKE_KEY_MAX + 1];

	if (keylen == 0 || keylen > JOURNAL_REVOKE_KEY_MAX ||
	    (op = cl_op_new(cl, CLOP_REVOKE, base, keep_until, arg)) == NULL)
		return -1;
	op->op_done_fn = fn;
	hex_encode(key, keylen, hex);
	snprintf(op->op_key, sizeof(op->op_key), "%sstate/rev/%s", cl->cl_prefix, hex);
	snprintf(op->op_value, sizeof(op->op_value), "%llu %llu",
	    (unsigned long long)revoked_at, (unsigned long long)keep_until);
	cl_op_start(op);
	return 0;
}

/* --- the node's liveness --------------------------------------------------- */

static void
cl_node_put(void *arg, enum etcd_status st, json_t *res, const char *msg)
{
	struct cluster	*cl = arg;

	(void)res;
	atomic_store(&cl->cl_down, st != ETCD_OK);
	if (st != ETCD_OK) {
		log_warnx("cluster: the liveness key cannot be written: %s", msg);
		cl->cl_node_lease = 0;
	}
}

static void
cl_node_granted(void *arg, enum etcd_status st, json_t *res, const char *msg)
{
	struct cluster	*cl = arg;
	char		 key[CL_KEY_MAX], lease[24];
	json_t		*body;

	if (cl->cl_stopped)
		return;
	if (st != ETCD_OK || (cl->cl_node_lease = etcd_int(res, "ID")) == 0) {
		atomic_store(&cl->cl_down, true);
		log_warnx("cluster: no liveness lease: %s", st != ETCD_OK ? msg : "no ID");
		return;
	}
	snprintf(key, sizeof(key), "%sstate/node/%s", cl->cl_prefix, cl->cl_node);
	snprintf(lease, sizeof(lease), "%lld", (long long)cl->cl_node_lease);
	body = json_pack("{s:o,s:o,s:s}", "key", cluster_b64(key, strlen(key)), "value",
	    cluster_b64(cl->cl_node, strlen(cl->cl_node)), "lease", lease);
	if (body == NULL || etcd_call(cl->cl_etcd, cl->cl_gw->gw_base, ETCD_OP_PUT,
	    "/v3/kv/put", body, ETCD_TIMEOUT_MS, cl_node_put, cl) != 0)
		cl->cl_node_lease = 0;
}

static void
cl_kept_alive(void *arg, enum etcd_status st, json_t *res, const char *msg)
{
	struct cluster	*cl = arg;

	if (st != ETCD_OK) {
		if (!atomic_exchange(&cl->cl_down, true))
			log_warnx("cluster: etcd cannot be reached: %s", msg);
		return;
	}
	if (atomic_exchange(&cl->cl_down, false))
		log_info("cluster: etcd answers again");
	/* A lease etcd no longer has comes back without a TTL: the key went with it. */
	if (etcd_int(json_object_get(res, "result"), "TTL") <= 0)
		cl->cl_node_lease = 0;
}

/* Every CL_KEEPALIVE_MS on the main loop: the liveness lease, and the watch. */
static void
cl_tick(evutil_socket_t fd, short what, void *arg)
{
	struct cluster	*cl = arg;
	char		 id[24];
	json_t		*body;

	(void)fd;
	(void)what;
	if (cl->cl_node_lease == 0) {
		snprintf(id, sizeof(id), "%d", CL_NODE_TTL_S);
		body = json_pack("{s:s}", "TTL", id);
		cl->cl_node_lease = -1;	/* asked for */
		if (body == NULL || etcd_call(cl->cl_etcd, cl->cl_gw->gw_base, ETCD_OP_LEASE,
		    "/v3/lease/grant", body, ETCD_TIMEOUT_MS, cl_node_granted, cl) != 0)
			cl->cl_node_lease = 0;
	} else if (cl->cl_node_lease > 0) {
		snprintf(id, sizeof(id), "%lld", (long long)cl->cl_node_lease);
		body = json_pack("{s:s}", "ID", id);
		if (body != NULL)
			etcd_call(cl->cl_etcd, cl->cl_gw->gw_base, ETCD_OP_LEASE,
			    "/v3/lease/keepalive", body, ETCD_TIMEOUT_MS, cl_kept_alive, cl);
	}
	if (!cl->cl_watching) {
		if (atomic_load(&cl->cl_synced))
			cluster_state_watch(cl);
		else
			cluster_state_sync(cl);
	}
}

/* --- the cluster ------------------------------------------------------------ */

int
cluster_settings_check(const struct gw_config *gc, char *err, size_t errlen)
{
	if (gc->gc_etcd[0] == '\0')
		return 0;
	if (gc->gc_node[0] == '\0') {
		snprintf(err, errlen, "a cluster node needs its node id: etcd is set, node is "
		    "not");
		return -1;
	}
	return etcd_urls_check(gc->gc_etcd, err, errlen);
}

int
cluster_start(struct gw *gw, struct cluster **out, char *err, size_t errlen)
{
	struct cluster	*cl;
	struct timeval	 tv = { CL_KEEPALIVE_MS / 1000, (CL_KEEPALIVE_MS % 1000) * 1000 };
	int		 ret = -1;

	*out = NULL;
	if (gw->gw_conf.gc_etcd[0] == '\0')
		return 0;
	if (cluster_settings_check(&gw->gw_conf, err, errlen) != 0)
		return -1;
	if ((cl = calloc(1, sizeof(*cl))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_init(&cl->cl_lock, NULL);
	cl->cl_gw = gw;
	atomic_init(&cl->cl_live, 1);
	snprintf(cl->cl_prefix, sizeof(cl->cl_prefix), "/lianban/%s/", gw->gw_conf.gc_id);
	snprintf(cl->cl_node, sizeof(cl->cl_node), "%s", gw->gw_conf.gc_node);
	if ((cl->cl_etcd = etcd_new(gw->gw_conf.gc_etcd, err, errlen)) == NULL)
		goto done;
	if ((cl->cl_tick = event_new(gw->gw_base, -1, EV_PERSIST, cl_tick, cl)) == NULL ||
	    event_add(cl->cl_tick, &tv) != 0) {
		snprintf(err, errlen, "cannot start the cluster's timer");
		goto done;
	}
	cl_tick(-1, 0, cl);
	log_info("cluster: node %s of gateway %s; etcd %s", cl->cl_node, gw->gw_conf.gc_id,
	    gw->gw_conf.gc_etcd);
	*out = cl;
	ret = 0;
done:
	if (ret != 0)
		cluster_free(cl);
	return ret;
}

void
cluster_stop(struct cluster *cl)
{
	if (cl == NULL)
		return;
	cl->cl_stopped = true;
	etcd_free(cl->cl_etcd);
	cl->cl_etcd = NULL;
	if (cl->cl_tick != NULL)
		event_free(cl->cl_tick);
	cl->cl_tick = NULL;
}

void
cluster_free(struct cluster *cl)
{
	struct cl_msg	*m, *next;

	if (cl == NULL)
		return;
	cluster_stop(cl);
	for (m = cl->cl_inbox; m != NULL; m = next) {
		next = m->cm_next;
		json_decref(m->cm_res);
		free(m);
	}
	pthread_mutex_destroy(&cl->cl_lock);
	free(cl);
}

const char *
cluster_ready(struct cluster *cl)
{
	if (cl == NULL)
		return NULL;
	if (!atomic_load(&cl->cl_synced))
		return "the cluster's shared state has not been read from etcd yet";
	if (atomic_load(&cl->cl_down))
		return "the consent store (etcd) cannot be reached";
	return NULL;
}

unsigned
cluster_live_nodes(struct cluster *cl)
{
	return cl != NULL ? atomic_load(&cl->cl_live) : 1;
}

void
cluster_metrics(struct cluster *cl, struct evbuffer *out)
{
	static const char *const kinds[3] = { "revocation", "registry", "node" };
	size_t	i;

	if (cl == NULL)
		return;
	if (cl->cl_etcd != NULL)
		etcd_metrics(cl->cl_etcd, out);
	evbuffer_add_printf(out, "# HELP lianban_cluster_applied_total changes of other nodes "
	    "applied from etcd's watch, by kind\n# TYPE lianban_cluster_applied_total counter\n");
	for (i = 0; i < 3; i++)
		evbuffer_add_printf(out, "lianban_cluster_applied_total{kind=\"%s\"} %llu\n",
		    kinds[i], (unsigned long long)atomic_load(&cl->cl_applied[i]));
	evbuffer_add_printf(out, "# HELP lianban_cluster_live_nodes nodes whose liveness key "
	    "is in etcd\n# TYPE lianban_cluster_live_nodes gauge\nlianban_cluster_live_nodes "
	    "%u\n# HELP lianban_cluster_etcd_up 1 when the last liveness call to etcd "
	    "succeeded\n# TYPE lianban_cluster_etcd_up gauge\nlianban_cluster_etcd_up %d\n",
	    cluster_live_nodes(cl), atomic_load(&cl->cl_down) ? 0 : 1);
}
