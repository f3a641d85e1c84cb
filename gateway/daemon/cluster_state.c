/*
 * cluster_state.c - the shared state of a cluster under
 * /lianban/GATEWAY_ID/state/ (docs/cluster.md): registry heads this node
 * publishes, and what every node applies from etcd's watch -- revocations
 * into its journal's revocation list, registry heads into its registry
 * followed by a reload, liveness keys into the count of live nodes that
 * splits the rate limits.  A node reads the whole of state/ first, then
 * watches it from the revision it read.  The watch's messages arrive on the
 * etcd client's thread and are applied, in order, on the main loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cluster_impl.h"

/* The range of every key that starts with prefix: [prefix, prefix + 1). */
static json_t *
cl_range_end(const char *prefix)
{
	char	end[CL_KEY_MAX];
	size_t	n = strlen(prefix);

	memcpy(end, prefix, n);
	end[n - 1]++;
	return cluster_b64(end, n);
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
	if ((body = json_pack("{s:o,s:o}", "key", cluster_b64(key, strlen(key)), "value",
	    cluster_b64(text, strlen(text)))) == NULL)
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
		cluster_state_sync(cl);
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

void
cluster_state_watch(struct cluster *cl)
{
	char	prefix[CL_KEY_MAX], rev[24];
	json_t	*body;

	cl_state_prefix(cl, prefix, sizeof(prefix));
	snprintf(rev, sizeof(rev), "%lld", (long long)cl->cl_rev + 1);
	body = json_pack("{s:{s:o,s:o,s:s,s:b}}", "create_request", "key",
	    cluster_b64(prefix, strlen(prefix)), "range_end", cl_range_end(prefix),
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
	cluster_state_watch(cl);
}

void
cluster_state_sync(struct cluster *cl)
{
	char	prefix[CL_KEY_MAX];
	json_t	*body;

	cl_state_prefix(cl, prefix, sizeof(prefix));
	cl->cl_watching = true;	/* until the read fails: no second one meanwhile */
	body = json_pack("{s:o,s:o}", "key", cluster_b64(prefix, strlen(prefix)), "range_end",
	    cl_range_end(prefix));
	if (body == NULL || etcd_call(cl->cl_etcd, cl->cl_gw->gw_base, ETCD_OP_RANGE,
	    "/v3/kv/range", body, ETCD_TIMEOUT_MS, cl_synced, cl) != 0)
		cl->cl_watching = false;
}
