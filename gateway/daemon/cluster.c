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
 * never watched; everything under state/ is: every node reads it whole at
 * start and then watches it from the revision it read, and applies each
 * change -- revocations into its journal's revocation list, registry
 * heads into its registry followed by a reload, node keys into the count
 * of live nodes that splits the rate limits.
 *
 * Claims and revocations may come from any thread; their etcd calls end on
 * the client's thread and their outcome is posted to the caller's loop.
 * The watch, the liveness key and every change applied run on the main
 * loop (gw_base).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/rand.h>

#include "cluster.h"

#define CL_LEASES		1024	/* cached leases, by expiry second */
#define CL_LEASE_SLACK_S	5	/* a lease outlives its second by this */
#define CL_NODE_TTL_S		5	/* a node's liveness lease */
#define CL_KEEPALIVE_MS		1500
#define CL_RETRY_MS		500	/* before the watch is opened again */
#define CL_NODES_MAX		64
#define CL_KEY_MAX		(64 + 2 * LB_ID_MAX + 2 * JOURNAL_REVOKE_KEY_MAX)

enum cl_lease_state {
	LE_FREE = 0,
	LE_GRANTING,
	LE_READY
};

struct cl_op;

/* The lease of one expiry second, shared by every token of that second. */
struct cl_lease {
	uint64_t		 le_sec;
	int64_t			 le_id;
	enum cl_lease_state	 le_state;
	struct cl_op		*le_wait;	/* ops waiting for the grant */
};

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
	journal_claim_fn	 op_claim_fn;
	cluster_done_fn		 op_done_fn;
	void			*op_arg;
	struct cl_op		*op_next;
};

/* Watch messages handed from the client's thread to the main loop, in order. */
struct cl_msg {
	json_t		*cm_res;
	struct cl_msg	*cm_next;
};

struct cluster {
	struct gw		*cl_gw;
	struct etcd		*cl_etcd;
	char			 cl_prefix[16 + LB_ID_MAX];	/* /lianban/ID/ */
	char			 cl_node[LB_ID_MAX];
	/* the lease cache, any thread */
	pthread_mutex_t		 cl_lock;
	struct cl_lease		 cl_leases[CL_LEASES];
	/* the watch's messages waiting for the main loop, under cl_lock */
	struct cl_msg		*cl_inbox, *cl_inbox_tail;
	/* what readiness reads, any thread */
	atomic_bool		 cl_synced;	/* state/ was read once */
	atomic_bool		 cl_down;	/* the last liveness call failed */
	atomic_uint		 cl_live;
	_Atomic uint64_t	 cl_applied[3];	/* revocation, registry, node */
	/* main loop */
	bool			 cl_stopped;	/* cluster_stop: nothing more is applied */
	int64_t			 cl_rev;	/* the last revision of state/ applied */
	bool			 cl_watching;
	int64_t			 cl_node_lease;
	struct event		*cl_tick;	/* keepalive, and reopening the watch */
	char			 cl_nodes[CL_NODES_MAX][LB_ID_MAX];
	size_t			 cl_nnodes;
};

static void	cl_lease_granted(void *, enum etcd_status, json_t *, const char *);
static void	cl_op_send(struct cl_op *);
static void	cl_sync(struct cluster *);

/* The key after the prefix, and the end of its range for a prefix (range_end). */
static json_t *
cl_b64(const char *s, size_t n)
{
	char	*t;
	json_t	*j;

	if ((t = etcd_b64(s, n)) == NULL)
		return NULL;
	j = json_string(t);
	free(t);
	return j;
}

/* The range of every key that starts with prefix: [prefix, prefix + 1). */
static json_t *
cl_range_end(const char *prefix)
{
	char	end[CL_KEY_MAX];
	size_t	n = strlen(prefix);

	memcpy(end, prefix, n);
	end[n - 1]++;
	return cl_b64(end, n);
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
	json_t		*body, *key = cl_b64(op->op_key, strlen(op->op_key));
	char		 lease[24];
	int		 rc;

	snprintf(lease, sizeof(lease), "%lld", (long long)op->op_lease);
	if (op->op_kind == CLOP_CLAIM)
		body = json_pack("{s:[{s:O,s:s,s:s,s:s}],s:[{s:{s:O,s:o,s:s}}],s:[{s:{s:O}}]}",
		    "compare", "key", key, "target", "CREATE", "create_revision", "0",
		    "result", "EQUAL",
		    "success", "request_put", "key", key, "value",
		    cl_b64(op->op_value, strlen(op->op_value)), "lease", lease,
		    "failure", "request_range", "key", key);
	else
		body = json_pack("{s:O,s:o,s:s}", "key", key, "value",
		    cl_b64(op->op_value, strlen(op->op_value)), "lease", lease);
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
    uint64_t keep_until, journal_claim_fn fn, void *arg)
{
	struct cl_op	*op;
	uint8_t		 nonce[12];
	char		 hex[33], nhex[25];

	if ((op = cl_op_new(cl, CLOP_CLAIM, base, keep_until, arg)) == NULL)
		return -1;
	op->op_claim_fn = fn;
	if (keep_until <= now_ms() / 1000) {
		cl_op_finish(op, 2);	/* expired on its way, as journal_jti_claim says */
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

/* --- the registry -------------------------------------------------------- */

static const char *
cl_kind_name(enum reg_kind k)
{
	return k == REG_ADAPTER ? "adapter" : "policy";
}

static void
cl_published(void *arg, enum etcd_status st, json_t *res, const char *msg)
{
	char	*key = arg;

	(void)res;
	if (st != ETCD_OK)
		log_warnx("cluster: %s is stored here but not published to the other nodes "
		    "(%s); make the change again", key, msg);
	free(key);
}

void
cluster_registry_publish(struct cluster *cl, enum reg_kind kind, const char *id,
    const struct reg_head *h, const uint8_t *spec, size_t speclen)
{
	json_t	*v = NULL, *body = NULL;
	char	*text = NULL, *key = NULL, *spec64 = NULL;
	size_t	 n;

	if (cl == NULL || cl->cl_stopped)
		return;
	n = strlen(cl->cl_prefix) + 32 + strlen(id);
	if ((key = malloc(n)) == NULL)
		goto done;
	snprintf(key, n, "%sstate/reg/%s/%s", cl->cl_prefix, cl_kind_name(kind), id);
	if (spec != NULL && (spec64 = etcd_b64(spec, speclen)) == NULL)
		goto done;
	if ((v = json_pack("{s:s,s:I,s:b,s:s,s:s,s:I}", "node", cl->cl_node, "version",
	    (json_int_t)h->rh_version, "disabled", h->rh_disabled, "dept", h->rh_dept,
	    "principal", h->rh_principal, "t_ms", (json_int_t)h->rh_t_ms)) == NULL ||
	    (spec64 != NULL && json_object_set_new(v, "spec", json_string(spec64)) != 0) ||
	    (text = json_dumps(v, JSON_COMPACT)) == NULL)
		goto done;
	if ((body = json_pack("{s:o,s:o}", "key", cl_b64(key, strlen(key)), "value",
	    cl_b64(text, strlen(text)))) == NULL)
		goto done;
	if (etcd_call(cl->cl_etcd, cl->cl_gw->gw_base, ETCD_OP_PUT, "/v3/kv/put", body,
	    ETCD_TIMEOUT_MS, cl_published, key) == 0)
		key = NULL;
	body = NULL;
done:
	if (key != NULL)
		log_warnx("cluster: registry %s \"%s\" could not be published", cl_kind_name(kind),
		    id);
	json_decref(body);
	json_decref(v);
	free(text);
	free(spec64);
	free(key);
}

/* A registry change of another node, on its way into this node's registry. */
struct cl_reg {
	struct cluster	*rg_cl;
	enum reg_kind	 rg_kind;
	char		 rg_id[LB_ID_MAX];
	struct reg_head	 rg_head;
	uint8_t		*rg_spec;
	size_t		 rg_spec_len;
	bool		 rg_stored;
};

/* Worker: stores the change unless the registry holds that version or a newer one. */
static void
cl_reg_store(void *arg)
{
	struct cl_reg	*rg = arg;
	struct registry	*r = rg->rg_cl->cl_gw->gw_registry;
	struct reg_head	 h;
	bool		 found;
	char		 err[256];

	if (registry_head(r, rg->rg_kind, rg->rg_id, &h, &found) != 0) {
		log_warnx("cluster: registry %s \"%s\": the registry cannot be read",
		    cl_kind_name(rg->rg_kind), rg->rg_id);
		return;
	}
	if (found && h.rh_version >= rg->rg_head.rh_version &&
	    h.rh_disabled == rg->rg_head.rh_disabled)
		return;
	if (registry_put(r, rg->rg_kind, rg->rg_id, &rg->rg_head, rg->rg_spec,
	    rg->rg_spec_len, err, sizeof(err)) != 0) {
		log_warnx("cluster: registry %s \"%s\" version %llu of another node could not "
		    "be stored: %s", cl_kind_name(rg->rg_kind), rg->rg_id,
		    (unsigned long long)rg->rg_head.rh_version, err);
		return;
	}
	rg->rg_stored = true;
}

static void
cl_reg_reloaded(void *arg, const struct snapshot *sn, const char *err)
{
	struct cl_reg	*rg = arg;
	const char	*v[1] = { sn != NULL ? "ok" : "failed" };

	metrics_count(METRICS_RELOADS, 1, v);
	if (sn != NULL) {
		atomic_fetch_add(&rg->rg_cl->cl_applied[1], 1);
		log_info("cluster: registry %s \"%s\" version %llu of node %s applied",
		    cl_kind_name(rg->rg_kind), rg->rg_id,
		    (unsigned long long)rg->rg_head.rh_version, rg->rg_head.rh_principal);
	} else
		log_warnx("cluster: registry %s \"%s\" is stored but the configuration could "
		    "not be reloaded: %s", cl_kind_name(rg->rg_kind), rg->rg_id, err);
	free(rg->rg_spec);
	free(rg);
}

static void
cl_reg_stored(void *arg)
{
	struct cl_reg	*rg = arg;

	/* Stopped: the workers a reload needs may be gone. */
	if (!rg->rg_stored || rg->rg_cl->cl_stopped) {
		free(rg->rg_spec);
		free(rg);
		return;
	}
	snapshot_reload(rg->rg_cl->cl_gw, NULL, 0, cl_reg_reloaded, rg);
}

/* A registry key of the watch (main loop). */
static void
cl_apply_reg(struct cluster *cl, const char *rest, const uint8_t *val, size_t vlen)
{
	struct cl_reg	*rg = NULL;
	json_t		*v = NULL;
	const char	*node = NULL, *dept = "", *principal = "", *id;
	json_int_t	 version = 0, t_ms = 0;
	int		 disabled = 0;

	if ((rg = calloc(1, sizeof(*rg))) == NULL)
		goto bad;
	rg->rg_cl = cl;
	if (strncmp(rest, "adapter/", 8) == 0) {
		rg->rg_kind = REG_ADAPTER;
		id = rest + 8;
	} else if (strncmp(rest, "policy/", 7) == 0) {
		rg->rg_kind = REG_POLICY;
		id = rest + 7;
	} else
		goto bad;
	if (*id == '\0' || strlen(id) >= LB_ID_MAX ||
	    (v = json_loadb((const char *)val, vlen, 0, NULL)) == NULL ||
	    json_unpack(v, "{s:s,s:I,s:b,s:s,s:s,s:I}", "node", &node, "version", &version,
	    "disabled", &disabled, "dept", &dept, "principal", &principal, "t_ms", &t_ms) != 0 ||
	    version <= 0 || strlen(dept) >= sizeof(rg->rg_head.rh_dept) ||
	    strlen(principal) >= sizeof(rg->rg_head.rh_principal))
		goto bad;
	if (strcmp(node, cl->cl_node) == 0) {
		/* This node's own change: stored before it was published. */
		json_decref(v);
		free(rg);
		return;
	}
	snprintf(rg->rg_id, sizeof(rg->rg_id), "%s", id);
	rg->rg_head.rh_version = (uint64_t)version;
	rg->rg_head.rh_disabled = disabled != 0;
	snprintf(rg->rg_head.rh_dept, sizeof(rg->rg_head.rh_dept), "%s", dept);
	snprintf(rg->rg_head.rh_principal, sizeof(rg->rg_head.rh_principal), "%s", principal);
	rg->rg_head.rh_t_ms = (uint64_t)t_ms;
	if (json_object_get(v, "spec") != NULL && etcd_unb64(json_object_get(v, "spec"),
	    &rg->rg_spec, &rg->rg_spec_len) != 0)
		goto bad;
	json_decref(v);
	v = NULL;
	if (workers_submit(cl->cl_gw->gw_workers, cl->cl_gw->gw_base, cl_reg_store,
	    cl_reg_stored, rg) != 0) {
		free(rg->rg_spec);
		free(rg);
	}
	return;
bad:
	log_warnx("cluster: registry key %s holds no change this node can apply", rest);
	json_decref(v);
	if (rg != NULL)
		free(rg->rg_spec);
	free(rg);
}

/* --- revocations and nodes ------------------------------------------------ */

/* A revocation of the watch, into the journal's list (main loop). */
static void
cl_apply_rev(struct cluster *cl, const char *hex, const uint8_t *val, size_t vlen)
{
	uint8_t			key[JOURNAL_REVOKE_KEY_MAX];
	unsigned long long	at, keep;
	char			text[64];
	size_t			n = strlen(hex);

	if (vlen >= sizeof(text) || n == 0 || n % 2 != 0 || n / 2 > sizeof(key) ||
	    hex_decode(hex, n, key, n / 2) != 0)
		goto bad;
	memcpy(text, val, vlen);
	text[vlen] = '\0';
	if (sscanf(text, "%llu %llu", &at, &keep) != 2)
		goto bad;
	/*
	 * Without a record: the node that took the revocation journaled who
	 * made it; here it is only put in force.  A revocation already held
	 * (this node's own) changes nothing.
	 */
	if (journal_revoke(cl->cl_gw->gw_journal, NULL, key, n / 2, at, keep, NULL, NULL,
	    NULL) != 0) {
		log_warnx("cluster: a revocation of another node could not be queued");
		return;
	}
	atomic_fetch_add(&cl->cl_applied[0], 1);
	return;
bad:
	log_warnx("cluster: revocation key %s holds no revocation", hex);
}

static void
cl_nodes_changed(struct cluster *cl)
{
	unsigned	n = cl->cl_nnodes > 0 ? (unsigned)cl->cl_nnodes : 1;

	if (atomic_exchange(&cl->cl_live, n) != n) {
		log_info("cluster: %u live nodes; rate limits are split %u ways", n, n);
		policy_rates_share(cl->cl_gw->gw_rates, n);
	}
	atomic_fetch_add(&cl->cl_applied[2], 1);
}

static void
cl_apply_node(struct cluster *cl, const char *node, bool put)
{
	size_t	i;

	for (i = 0; i < cl->cl_nnodes; i++)
		if (strcmp(cl->cl_nodes[i], node) == 0)
			break;
	if (put && i == cl->cl_nnodes && cl->cl_nnodes < CL_NODES_MAX &&
	    strlen(node) < LB_ID_MAX)
		snprintf(cl->cl_nodes[cl->cl_nnodes++], LB_ID_MAX, "%s", node);
	else if (!put && i < cl->cl_nnodes)
		memmove(cl->cl_nodes[i], cl->cl_nodes[i + 1],
		    (cl->cl_nnodes-- - i - 1) * sizeof(cl->cl_nodes[0]));
	cl_nodes_changed(cl);
}

/* One key of state/, put (or deleted) at revision rev (main loop). */
static void
cl_apply(struct cluster *cl, const json_t *kv, bool put)
{
	uint8_t		*key = NULL, *val = NULL;
	size_t		 klen, vlen, plen = strlen(cl->cl_prefix) + 6;
	const char	*rest;

	if (etcd_unb64(json_object_get(kv, "key"), &key, &klen) != 0 ||
	    etcd_unb64(json_object_get(kv, "value"), &val, &vlen) != 0 || klen <= plen ||
	    memchr(key, '\0', klen) != NULL)
		goto done;
	rest = (const char *)key + plen;	/* after PREFIX "state/" */
	if (strncmp(rest, "rev/", 4) == 0) {
		if (put)
			cl_apply_rev(cl, rest + 4, val, vlen);
	} else if (strncmp(rest, "reg/", 4) == 0) {
		if (put)
			cl_apply_reg(cl, rest + 4, val, vlen);
	} else if (strncmp(rest, "node/", 5) == 0)
		cl_apply_node(cl, rest + 5, put);
done:
	free(key);
	free(val);
}

/* --- the watch of state/ ------------------------------------------------- */

static void
cl_state_prefix(struct cluster *cl, char *out, size_t outlen)
{
	snprintf(out, outlen, "%sstate/", cl->cl_prefix);
}

/* One message of the watch stream (main loop). */
static void
cl_watch_msg(struct cluster *cl, json_t *msg)
{
	json_t	*r = json_object_get(msg, "result"), *ev;
	size_t	 i;
	int64_t	 rev;

	if (r == NULL) {
		log_warnx("cluster: the watch reported an error; it is opened again");
		return;
	}
	if (json_is_true(json_object_get(r, "canceled"))) {
		/* Compacted past cl_rev: only a whole read catches up. */
		log_warnx("cluster: the watch was cancelled (compact revision %lld); reading "
		    "the shared state again", (long long)etcd_int(r, "compact_revision"));
		cl->cl_watching = false;
		cl_sync(cl);
		return;
	}
	json_array_foreach(json_object_get(r, "events"), i, ev) {
		cl_apply(cl, json_object_get(ev, "kv"), json_object_get(ev, "type") == NULL ||
		    strcmp(json_string_value(json_object_get(ev, "type")), "PUT") == 0);
		if ((rev = etcd_int(json_object_get(ev, "kv"), "mod_revision")) > cl->cl_rev)
			cl->cl_rev = rev;
	}
	/* A progress notice carries the revision everything before it was sent at. */
	if (json_array_size(json_object_get(r, "events")) == 0 && !json_is_true(
	    json_object_get(r, "created")) && (rev = etcd_int(json_object_get(r, "header"),
	    "revision")) > cl->cl_rev)
		cl->cl_rev = rev;
}

/* The main loop takes the watch's messages in the order they came. */
static void
cl_inbox_drain(void *arg)
{
	struct cluster	*cl = arg;
	struct cl_msg	*m, *next;

	pthread_mutex_lock(&cl->cl_lock);
	m = cl->cl_inbox;
	cl->cl_inbox = cl->cl_inbox_tail = NULL;
	pthread_mutex_unlock(&cl->cl_lock);
	for (; m != NULL; m = next) {
		next = m->cm_next;
		if (cl->cl_stopped)
			;	/* the workers and the journal may be gone */
		else if (m->cm_res != NULL)
			cl_watch_msg(cl, m->cm_res);
		else if (cl->cl_watching) {
			/* The stream ended: opened again from cl_rev at the next tick. */
			cl->cl_watching = false;
		}
		json_decref(m->cm_res);
		free(m);
	}
}

/* Queues a message (NULL: the stream ended) for the main loop (client thread). */
static void
cl_inbox_put(struct cluster *cl, json_t *res)
{
	struct cl_msg	*m;
	bool		 first;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		log_warnx("cluster: out of memory; a watch message is lost");
		return;
	}
	m->cm_res = res != NULL ? json_incref(res) : NULL;
	pthread_mutex_lock(&cl->cl_lock);
	first = cl->cl_inbox == NULL;
	if (cl->cl_inbox_tail != NULL)
		cl->cl_inbox_tail->cm_next = m;
	else
		cl->cl_inbox = m;
	cl->cl_inbox_tail = m;
	pthread_mutex_unlock(&cl->cl_lock);
	if (first && loop_post(cl->cl_gw->gw_base, cl_inbox_drain, cl) != 0)
		log_warnx("cluster: the watch's messages cannot reach the main loop");
}

static void
cl_watch_line(void *arg, json_t *res)
{
	cl_inbox_put(arg, res);
}

static void
cl_watch_end(void *arg, const char *why)
{
	log_info("cluster: the watch ended: %s", why);
	cl_inbox_put(arg, NULL);
}

static void
cl_watch_open(struct cluster *cl)
{
	char	prefix[CL_KEY_MAX], rev[24];
	json_t	*body;

	cl_state_prefix(cl, prefix, sizeof(prefix));
	snprintf(rev, sizeof(rev), "%lld", (long long)cl->cl_rev + 1);
	body = json_pack("{s:{s:o,s:o,s:s,s:b}}", "create_request", "key",
	    cl_b64(prefix, strlen(prefix)), "range_end", cl_range_end(prefix),
	    "start_revision", rev, "progress_notify", 1);
	if (body != NULL && etcd_stream(cl->cl_etcd, "/v3/watch", body, cl_watch_line,
	    cl_watch_end, cl) == 0)
		cl->cl_watching = true;
}

/* The whole of state/ was read: applied, then watched from its revision. */
static void
cl_synced(void *arg, enum etcd_status st, json_t *res, const char *msg)
{
	struct cluster	*cl = arg;
	json_t		*kv;
	size_t		 i;

	if (cl->cl_stopped)
		return;
	if (st != ETCD_OK) {
		log_warnx("cluster: the shared state cannot be read: %s", msg);
		cl->cl_watching = false;	/* the next tick tries again */
		return;
	}
	/* The node list is what the read shows; the watch keeps it from here. */
	cl->cl_nnodes = 0;
	json_array_foreach(json_object_get(res, "kvs"), i, kv)
		cl_apply(cl, kv, true);
	cl->cl_rev = etcd_int(json_object_get(res, "header"), "revision");
	if (!atomic_exchange(&cl->cl_synced, true))
		log_info("cluster: shared state read at revision %lld: %zu keys, %zu live nodes",
		    (long long)cl->cl_rev, json_array_size(json_object_get(res, "kvs")),
		    cl->cl_nnodes);
	cl_watch_open(cl);
}

static void
cl_sync(struct cluster *cl)
{
	char	prefix[CL_KEY_MAX];
	json_t	*body;

	cl_state_prefix(cl, prefix, sizeof(prefix));
	cl->cl_watching = true;	/* until the read fails: no second one meanwhile */
	body = json_pack("{s:o,s:o}", "key", cl_b64(prefix, strlen(prefix)), "range_end",
	    cl_range_end(prefix));
	if (body == NULL || etcd_call(cl->cl_etcd, cl->cl_gw->gw_base, ETCD_OP_RANGE,
	    "/v3/kv/range", body, ETCD_TIMEOUT_MS, cl_synced, cl) != 0)
		cl->cl_watching = false;
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
	body = json_pack("{s:o,s:o,s:s}", "key", cl_b64(key, strlen(key)), "value",
	    cl_b64(cl->cl_node, strlen(cl->cl_node)), "lease", lease);
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
			cl_watch_open(cl);
		else
			cl_sync(cl);
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
