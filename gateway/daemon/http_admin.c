/*
 * http_admin.c - the registry API (docs/contract.md §8, §9, §10): departments
 * register and disable their adapters, the admin loads bundle policies,
 * and anyone authenticated may read them.  http.c has already checked the
 * method, the caller's role and the id of the path.
 *
 * A change goes through four steps, one change at a time so that version
 * numbers and ownership checks never race:
 *
 *   check     (worker)  ownership and the next version number, against the
 *                       snapshot running when the change's turn came and
 *                       the registry
 *   load      (worker)  a snapshot with the change on top: proves it loads
 *   journal   (writer)  the "adapter" / "policy" record, durable
 *   store     (worker)  the registry's LMDB transaction
 *
 * and then, on the loop, the new snapshot replaces the running one
 * (snapshot_reload): the next exchange uses it, the exchanges in flight
 * keep theirs.  Nothing is stored or applied unless the journal holds the
 * record first; a crash between journal and store leaves a journaled
 * change that never took effect, which an auditor can tell from the
 * registry's versions, never the reverse.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/sha.h>

#include "cluster.h"

#define ADMIN_QUEUE_MAX	64	/* changes waiting for their turn */
#define ADMIN_MAX_IDS	512	/* adapters, or policies, one snapshot holds */
/* Room of the registry's map that departments leave to the admin's policies. */
#define ADMIN_RESERVE	((size_t)64 << 20)

enum admin_op {
	AOP_PUT = 1,
	AOP_DISABLE
};

struct admin_change {
	struct gw		*ch_gw;
	struct evhttp_request	*ch_req;
	enum reg_kind		 ch_kind;
	enum admin_op		 ch_op;
	char			 ch_id[LB_ID_MAX];
	char			 ch_role[16];
	char			 ch_caller[LB_ID_MAX];
	struct adapter		*ch_ad;		/* AOP_PUT of an adapter: the parsed spec */
	struct policy		*ch_po;		/* AOP_PUT of a policy */
	struct reg_head		 ch_head;	/* what the registry will hold */
	const uint8_t		*ch_spec;	/* canonical spec (in ch_ad / ch_po), or NULL */
	size_t			 ch_spec_len;
	uint8_t			 ch_spec_hash[32];
	bool			 ch_has_hash;
	struct gw_config	 ch_conf;	/* gw_conf when the change's turn came */
	struct snapshot		*ch_cur;	/* running when the change's turn came */
	uint64_t		 ch_gen;	/* gw_snap_gen of ch_cur */
	struct snapshot		*ch_snap;	/* ch_cur's sources with the change */
	bool			 ch_noop;	/* nothing changes: answered, not journaled */
	enum lb_err		 ch_err;
	char			 ch_msg[512];
	struct admin_change	*ch_next;
};

static void	admin_next(struct gw *);

static const char *
admin_kind_name(enum reg_kind k)
{
	return k == REG_ADAPTER ? "adapter" : "policy";
}

/* On the change's loop, where its request is answered. */
static void
admin_free(struct admin_change *ch)
{
	if (ch->ch_ad != NULL)
		adapter_free(ch->ch_ad);
	policy_free(ch->ch_po);
	snapshot_unref(ch->ch_cur);
	snapshot_unref(ch->ch_snap);
	free(ch);
}

/* Records why the change is refused, on any thread; -1 for the caller to return. */
static int
admin_error(struct admin_change *ch, enum lb_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
admin_error(struct admin_change *ch, enum lb_err e, const char *fmt, ...)
{
	va_list	ap;

	ch->ch_err = e;
	va_start(ap, fmt);
	vsnprintf(ch->ch_msg, sizeof(ch->ch_msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* Answers the change's request and goes on with the next change. */
static void
admin_finish(struct admin_change *ch)
{
	struct gw	*gw = ch->ch_gw;
	msgpack_zone	 z;
	struct mpk_map	 m;

	if (ch->ch_err != LB_OK)
		http_error(ch->ch_req, ch->ch_err, "%s", ch->ch_msg);
	else {
		msgpack_zone_init(&z, 256);
		mpk_map_init(&m, &z, 3);
		mpk_map_put(&m, ch->ch_kind == REG_ADAPTER ? "id" : "bundle", mpk_str(ch->ch_id));
		mpk_map_put(&m, "version", mpk_uint(ch->ch_head.rh_version));
		if (ch->ch_kind == REG_ADAPTER)
			mpk_map_put(&m, "disabled", mpk_bool(ch->ch_head.rh_disabled));
		http_reply(ch->ch_req, 200, &m.mm_obj);
		msgpack_zone_destroy(&z);
	}
	admin_free(ch);
	gw->gw_inflight--;
	pthread_mutex_lock(&gw_main_of(gw)->gw_lock);
	gw_main_of(gw)->gw_admin.aq_busy = false;
	pthread_mutex_unlock(&gw_main_of(gw)->gw_lock);
	admin_next(gw);
}

/* The change is stored; the answer says so whether or not a snapshot took over. */
static void
admin_installed(void *arg, const struct snapshot *sn, const char *err)
{
	struct admin_change	*ch = arg;
	char			 msg[512], version[24];
	const char		*v[2] = { admin_kind_name(ch->ch_kind), ch->ch_op == AOP_PUT ?
				    "registered" : "disabled" };

	metrics_count(METRICS_REGISTRY, 1, v);
	v[1] = sn != NULL ? "ok" : "failed";
	metrics_count(METRICS_RELOADS, 1, &v[1]);
	if (sn != NULL) {
		snprintf(version, sizeof(version), "%llu",
		    (unsigned long long)ch->ch_head.rh_version);
		snprintf(msg, sizeof(msg), "registry: %s \"%s\" version %s %s by %s",
		    admin_kind_name(ch->ch_kind), ch->ch_id, version,
		    ch->ch_op == AOP_PUT ? "registered" : "disabled", ch->ch_head.rh_principal);
		log_event(LB_LOG_INFO, "registry", "msg", msg, "kind",
		    admin_kind_name(ch->ch_kind), "id", ch->ch_id, "version", version, "op",
		    ch->ch_op == AOP_PUT ? "registered" : "disabled", "principal",
		    ch->ch_head.rh_principal, NULL);
	} else
		log_warnx("registry: %s \"%s\" is stored but the configuration could not be "
		    "reloaded; it takes effect at the next reload: %s",
		    admin_kind_name(ch->ch_kind), ch->ch_id, err);
	admin_finish(ch);
}

/* Step 4 done: the registry holds the change; the new snapshot takes over. */
static void
admin_stored(void *arg)
{
	struct admin_change	*ch = arg;
	struct snapshot		*sn = ch->ch_snap;

	if (ch->ch_err != LB_OK) {
		admin_finish(ch);
		return;
	}
	ch->ch_snap = NULL;
	/* The other nodes of a cluster store it too, and reload (cluster.c). */
	cluster_registry_publish(ch->ch_gw->gw_cluster, ch->ch_kind, ch->ch_id, &ch->ch_head,
	    ch->ch_spec, ch->ch_spec_len);
	snapshot_reload(ch->ch_gw, sn, ch->ch_gen, admin_installed, ch);
}

static void
admin_store(void *arg)
{
	struct admin_change	*ch = arg;
	char			 err[384];

	if (registry_put(ch->ch_gw->gw_registry, ch->ch_kind, ch->ch_id, &ch->ch_head,
	    ch->ch_spec, ch->ch_spec_len, err, sizeof(err)) != 0) {
		log_warnx("%s \"%s\" version %llu is journaled but was not stored: %s",
		    admin_kind_name(ch->ch_kind), ch->ch_id,
		    (unsigned long long)ch->ch_head.rh_version, err);
		admin_error(ch, LB_E_INTERNAL, "the registry could not store the change, so it "
		    "is not applied: %s", err);
	}
}

/* Step 3 done. */
static void
admin_journaled(void *arg, int status, uint64_t first_seq)
{
	struct admin_change	*ch = arg;

	(void)first_seq;
	if (status != 0)
		admin_error(ch, LB_E_JOURNAL_UNAVAILABLE, "the journal could not record the "
		    "change, so it is not applied");
	else if (workers_submit(ch->ch_gw->gw_workers, ch->ch_gw->gw_base, admin_store,
	    admin_stored, ch) == 0)
		return;
	else
		admin_error(ch, LB_E_INTERNAL, "the gateway is shutting down");
	admin_finish(ch);
}

static void
admin_journal(struct admin_change *ch)
{
	struct jrec	rec;

	memset(&rec, 0, sizeof(rec));
	rec.jr_kind = ch->ch_kind == REG_ADAPTER ? JK_ADAPTER : JK_POLICY;
	rec.jr_t_ms = ch->ch_head.rh_t_ms;
	if (ch->ch_kind == REG_ADAPTER) {
		snprintf(rec.jr_id, sizeof(rec.jr_id), "%s", ch->ch_id);
		snprintf(rec.jr_dept, sizeof(rec.jr_dept), "%s", ch->ch_head.rh_dept);
	} else
		snprintf(rec.jr_bundle, sizeof(rec.jr_bundle), "%s", ch->ch_id);
	snprintf(rec.jr_op, sizeof(rec.jr_op), "%s", ch->ch_op == AOP_PUT ? "put" : "disable");
	snprintf(rec.jr_principal, sizeof(rec.jr_principal), "%s", ch->ch_head.rh_principal);
	rec.jr_has_version = true;
	rec.jr_version = ch->ch_head.rh_version;
	if (ch->ch_has_hash) {
		rec.jr_has_spec = true;
		memcpy(rec.jr_spec, ch->ch_spec_hash, 32);
	}
	snprintf(rec.jr_decision, sizeof(rec.jr_decision), "allow");
	snprintf(rec.jr_code, sizeof(rec.jr_code), "ok");
	if (journal_append(ch->ch_gw->gw_journal, ch->ch_gw->gw_base, &rec, 1,
	    admin_journaled, ch) != 0) {
		admin_error(ch, LB_E_JOURNAL_UNAVAILABLE, "the journal cannot record the change "
		    "now, so it is not applied; try again");
		admin_finish(ch);
	}
}

/*
 * The department's quotas (--registry-ids, --registry-bytes) for a put of
 * an id it does not hold yet (fresh) or holds: one department filling the
 * registry must not lock out the others.
 */
static int
admin_check_quota(struct admin_change *ch, struct registry *rg, bool fresh)
{
	const struct gw_config	*gc = &ch->ch_conf;
	struct reg_usage	 u;
	uint64_t		 after;

	if (registry_usage(rg, REG_ADAPTER, ch->ch_caller, ch->ch_id, &u) != 0)
		return admin_error(ch, LB_E_INTERNAL, "the registry cannot be read");
	if (fresh && u.ru_ids >= gc->gc_reg_ids)
		return admin_error(ch, LB_E_TOO_LARGE, "department %s holds %zu adapter ids in "
		    "the registry, its quota; register a new version of one of them",
		    ch->ch_caller, u.ru_ids);
	after = u.ru_bytes - u.ru_freed + ch->ch_spec_len;
	if (after > gc->gc_reg_bytes)
		return admin_error(ch, LB_E_TOO_LARGE, "department %s would store %llu bytes of "
		    "adapter specs in the registry, over its quota of %llu",
		    ch->ch_caller, (unsigned long long)after,
		    (unsigned long long)gc->gc_reg_bytes);
	return 0;
}

/*
 * Step 1 for an adapter, against ch_cur and the registry: the id belongs
 * to the caller's department (or to nobody yet), and the next version is
 * one above every version the id had.
 */
static int
admin_check_adapter(struct admin_change *ch, struct registry *rg)
{
	const struct snapshot	*sn = ch->ch_cur;
	const struct adapter	*cur, *o;
	const char		*owner;
	struct reg_head		 h;
	bool			 found, taken;
	uint64_t		 version = 0;
	size_t			 i, j;

	if (registry_head(rg, REG_ADAPTER, ch->ch_id, &h, &found) != 0)
		return admin_error(ch, LB_E_INTERNAL, "the registry cannot be read");
	/*
	 * The owner is the department of the adapter served under the id --
	 * an operator's file adapter wins over another department's registry
	 * entry (config.c) -- else the department of its registry head.
	 */
	cur = snapshot_adapter(sn, ch->ch_id);
	owner = cur != NULL ? cur->ad_dept : found ? h.rh_dept : NULL;
	if (owner != NULL && strcmp(owner, ch->ch_caller) != 0)
		return admin_error(ch, LB_E_FORBIDDEN_ROLE, "adapter \"%s\" belongs to "
		    "department %s, not %s", ch->ch_id, owner, ch->ch_caller);
	/* The caller's file adapter taking its id back from another's registry head. */
	taken = found && strcmp(h.rh_dept, ch->ch_caller) != 0;
	if (found)
		version = h.rh_version;
	if (cur != NULL && cur->ad_version > version)
		version = cur->ad_version;
	if (ch->ch_op == AOP_DISABLE) {
		if (cur == NULL && !found)
			return admin_error(ch, LB_E_NOT_FOUND, "there is no adapter \"%s\"",
			    ch->ch_id);
		/* Not the other department's stored version: a new one, without a spec. */
		ch->ch_head.rh_version = taken ? version + 1 : version;
		ch->ch_head.rh_disabled = true;
		if ((cur != NULL && cur->ad_disabled) || (cur == NULL && h.rh_disabled)) {
			/* Already disabled: nothing changes, nothing is journaled. */
			ch->ch_noop = true;
			return -1;
		}
		if (cur != NULL && cur->ad_spec != NULL) {
			SHA256(cur->ad_spec, cur->ad_spec_len, ch->ch_spec_hash);
			ch->ch_has_hash = true;
		}
		return 0;
	}
	/* A registered endpoint reaches only what the operator lists (egress.c). */
	if (egress_check_adapter(sn->sn_egress, ch->ch_ad, ch->ch_msg, sizeof(ch->ch_msg)) != 0) {
		log_warnx("registry: adapter \"%s\" of %s refused: %s", ch->ch_id, ch->ch_caller,
		    ch->ch_msg);
		ch->ch_err = LB_E_BAD_REQUEST;
		return -1;
	}
	/* Two enabled adapters of one department serving one item would be ambiguous. */
	for (i = 0; i < sn->sn_nadapters; i++) {
		o = sn->sn_adapters[i];
		if (o->ad_disabled || strcmp(o->ad_id, ch->ch_id) == 0 ||
		    strcmp(o->ad_dept, ch->ch_caller) != 0)
			continue;
		for (j = 0; j < ch->ch_ad->ad_nitems; j++)
			if (adapter_serves(o, ch->ch_ad->ad_items[j]))
				return admin_error(ch, LB_E_BAD_REQUEST, "item %s is already "
				    "served by adapter \"%s\"; disable it first",
				    ch->ch_ad->ad_items[j], o->ad_id);
	}
	if (cur == NULL && !found && sn->sn_nadapters >= ADMIN_MAX_IDS)
		return admin_error(ch, LB_E_TOO_LARGE, "the gateway holds %d adapters, the most "
		    "it takes; register a new version of an existing one", ADMIN_MAX_IDS);
	if (admin_check_quota(ch, rg, !found || taken) != 0)
		return -1;
	ch->ch_head.rh_version = version + 1;
	ch->ch_head.rh_disabled = false;
	return 0;
}

static int
admin_check_policy(struct admin_change *ch, struct registry *rg)
{
	const struct policy	*cur;
	struct reg_head		 h;
	bool			 found;
	uint64_t		 version = 0;

	if (registry_head(rg, REG_POLICY, ch->ch_id, &h, &found) != 0)
		return admin_error(ch, LB_E_INTERNAL, "the registry cannot be read");
	if (found)
		version = h.rh_version;
	if ((cur = snapshot_policy(ch->ch_cur, ch->ch_id)) != NULL && cur->po_version > version)
		version = cur->po_version;
	if (cur == NULL && !found && ch->ch_cur->sn_npolicies >= ADMIN_MAX_IDS)
		return admin_error(ch, LB_E_TOO_LARGE, "the gateway holds %d bundle policies, "
		    "the most it takes", ADMIN_MAX_IDS);
	ch->ch_head.rh_version = version + 1;
	return 0;
}

/* Steps 1 and 2, on a worker: the change is allowed and a snapshot with it loads. */
static void
admin_load(void *arg)
{
	struct admin_change	*ch = arg;
	struct registry		*rg = ch->ch_gw->gw_registry;
	struct reg_change	 chg;
	char			 err[512];
	int			 rc;

	/*
	 * Refused before the journal sees it, rather than journaled and lost.
	 * Departments' specs leave a reserve, so the admin can still load
	 * policies (and a department still disable an adapter).
	 */
	if (!registry_has_room(rg, ch->ch_spec_len, ch->ch_kind == REG_ADAPTER &&
	    ch->ch_spec != NULL ? ADMIN_RESERVE : 0)) {
		admin_error(ch, LB_E_TOO_LARGE, "the registry is full; ask the operator");
		return;
	}
	rc = ch->ch_kind == REG_ADAPTER ? admin_check_adapter(ch, rg) :
	    admin_check_policy(ch, rg);
	if (rc != 0)
		return;
	chg.rc_kind = ch->ch_kind;
	chg.rc_id = ch->ch_id;
	chg.rc_head = &ch->ch_head;
	chg.rc_spec = ch->ch_spec;
	chg.rc_spec_len = ch->ch_spec_len;
	if ((ch->ch_snap = snapshot_load_with(&ch->ch_conf, rg, &chg, err,
	    sizeof(err))) != NULL)
		return;
	if (chg.rc_err == LB_E_FORBIDDEN_ROLE)
		admin_error(ch, LB_E_FORBIDDEN_ROLE, "department %s cannot register adapter "
		    "\"%s\": %s", ch->ch_caller, ch->ch_id, err);
	else
		admin_error(ch, LB_E_BAD_REQUEST, "the %s does not load: %s",
		    admin_kind_name(ch->ch_kind), err[0] != '\0' ? err : "out of memory");
}

static void
admin_loaded(void *arg)
{
	struct admin_change	*ch = arg;

	/* Checked: the change no longer needs the snapshot it was checked against. */
	snapshot_unref(ch->ch_cur);
	ch->ch_cur = NULL;
	if (ch->ch_err != LB_OK || ch->ch_noop)
		admin_finish(ch);
	else
		admin_journal(ch);
}

/* On the loop of the change's request: its turn has come. */
static void
admin_begin(void *arg)
{
	struct admin_change	*ch = arg;
	struct gw		*gw = ch->ch_gw;

	ch->ch_head.rh_t_ms = now_ms();
	snprintf(ch->ch_head.rh_principal, sizeof(ch->ch_head.rh_principal), "%s:%s",
	    ch->ch_role, ch->ch_caller);
	/* The worker checks against this snapshot; the reference keeps it alive. */
	ch->ch_cur = snapshot_current(gw, &ch->ch_gen);
	ch->ch_conf = gw->gw_conf;
	if (workers_submit(gw->gw_workers, gw->gw_base, admin_load, admin_loaded, ch) != 0) {
		admin_error(ch, LB_E_INTERNAL, "the gateway is shutting down");
		admin_finish(ch);	/* goes on with the queue */
	}
}

/*
 * Starts the change at the head of the queue, unless one is under way.
 * The queue is the main gw's, shared by every loop under gw_lock; a change
 * runs on the loop that received its request, which answers it.
 */
static void
admin_next(struct gw *gw)
{
	struct gw		*mg = gw_main_of(gw);
	struct admin_queue	*aq = &mg->gw_admin;
	struct admin_change	*ch;

	pthread_mutex_lock(&mg->gw_lock);
	if (aq->aq_busy || (ch = aq->aq_head) == NULL) {
		pthread_mutex_unlock(&mg->gw_lock);
		return;
	}
	if ((aq->aq_head = ch->ch_next) == NULL)
		aq->aq_tail = NULL;
	ch->ch_next = NULL;
	aq->aq_queued--;
	aq->aq_busy = true;
	pthread_mutex_unlock(&mg->gw_lock);
	if (ch->ch_gw == gw)
		admin_begin(ch);
	else if (loop_post(ch->ch_gw->gw_base, admin_begin, ch) != 0) {
		/* Out of memory: it waits at the head for the next change to come. */
		log_warnx("registry: cannot hand a change to its event loop; it waits");
		pthread_mutex_lock(&mg->gw_lock);
		if ((ch->ch_next = aq->aq_head) == NULL)
			aq->aq_tail = ch;
		aq->aq_head = ch;
		aq->aq_queued++;
		aq->aq_busy = false;
		pthread_mutex_unlock(&mg->gw_lock);
	}
}

/*
 * Queues a change of id by the caller pr, with the parsed spec of a put
 * (ad or po, taken whatever happens).
 */
static void
admin_submit(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    enum reg_kind kind, const char *id, struct adapter *ad, struct policy *po)
{
	struct gw		*mg = gw_main_of(gw);
	struct admin_queue	*aq = &mg->gw_admin;
	struct admin_change	*ch;
	bool			 full;

	pthread_mutex_lock(&mg->gw_lock);
	full = aq->aq_queued >= ADMIN_QUEUE_MAX;
	pthread_mutex_unlock(&mg->gw_lock);
	if (full) {
		http_error(req, LB_E_RATE_LIMITED, "%d registry changes are waiting; try "
		    "again", ADMIN_QUEUE_MAX);
		goto fail;
	}
	if ((ch = calloc(1, sizeof(*ch))) == NULL) {
		http_error(req, LB_E_INTERNAL, "out of memory");
		goto fail;
	}
	ch->ch_gw = gw;
	ch->ch_req = req;
	ch->ch_kind = kind;
	ch->ch_op = ad != NULL || po != NULL ? AOP_PUT : AOP_DISABLE;
	snprintf(ch->ch_id, sizeof(ch->ch_id), "%s", id);
	snprintf(ch->ch_role, sizeof(ch->ch_role), "%s", pr->pr_role);
	snprintf(ch->ch_caller, sizeof(ch->ch_caller), "%s", pr->pr_id);
	if (kind == REG_ADAPTER)
		snprintf(ch->ch_head.rh_dept, sizeof(ch->ch_head.rh_dept), "%s", pr->pr_id);
	ch->ch_ad = ad;
	ch->ch_po = po;
	if (ad != NULL) {
		ch->ch_spec = ad->ad_spec;
		ch->ch_spec_len = ad->ad_spec_len;
	} else if (po != NULL) {
		ch->ch_spec = po->po_spec;
		ch->ch_spec_len = po->po_spec_len;
	}
	if (ch->ch_spec != NULL) {
		SHA256(ch->ch_spec, ch->ch_spec_len, ch->ch_spec_hash);
		ch->ch_has_hash = true;
	}
	gw->gw_inflight++;
	pthread_mutex_lock(&mg->gw_lock);
	if (aq->aq_tail != NULL)
		aq->aq_tail->ch_next = ch;
	else
		aq->aq_head = ch;
	aq->aq_tail = ch;
	aq->aq_queued++;
	pthread_mutex_unlock(&mg->gw_lock);
	admin_next(gw);
	return;
fail:
	if (ad != NULL)
		adapter_free(ad);
	policy_free(po);
}

/*
 * Before the parser sees an adapter spec: its department and id, when it
 * names them, are the caller's and the path's, so that another department
 * learns nothing from the parser's sentences.  Answers when they are not.
 */
static int
admin_adapter_owner(struct evhttp_request *req, const struct principal *pr,
    const msgpack_object *body, const char *id)
{
	char	dept[LB_ID_MAX], sid[LB_ID_MAX];

	if (mpk_get_str(body, "dept", dept, sizeof(dept)) == 0 &&
	    strcmp(dept, pr->pr_id) != 0) {
		http_error(req, LB_E_FORBIDDEN_ROLE, "department %s cannot register an "
		    "adapter of department %s", pr->pr_id, dept);
		return -1;
	}
	if (mpk_get_str(body, "id", sid, sizeof(sid)) == 0 && strcmp(sid, id) != 0) {
		http_error(req, LB_E_BAD_REQUEST, "the spec's id \"%s\" differs from the "
		    "path's \"%s\"", sid, id);
		return -1;
	}
	return 0;
}

/*
 * PUT /v1/adapters/{id} and PUT /v1/policies/{bundle}: the body is a spec
 * of kind for the path's id (and, for an adapter, of the caller's
 * department); then the change waits for its turn.
 */
static void
admin_put(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    enum reg_kind kind, const char *id)
{
	struct adapter	*ad = NULL;
	struct policy	*po = NULL;
	const char	*name;
	const uint8_t	*spec;
	msgpack_zone	 z;
	msgpack_object	 body;
	char		 err[512];
	int		 rc;

	msgpack_zone_init(&z, 8192);
	if (http_body(req, &z, &body, err, sizeof(err)) != 0) {
		http_error(req, LB_E_BAD_REQUEST, "%s", err);
		goto done;
	}
	if (body.type != MSGPACK_OBJECT_MAP) {
		http_error(req, LB_E_BAD_REQUEST, "%s spec is an object",
		    kind == REG_ADAPTER ? "an adapter" : "a policy");
		goto done;
	}
	if (kind == REG_ADAPTER && admin_adapter_owner(req, pr, &body, id) != 0)
		goto done;
	err[0] = '\0';
	rc = kind == REG_ADAPTER ? adapter_parse(&body, &ad, err, sizeof(err)) :
	    policy_parse(&body, &po, err, sizeof(err));
	if (rc != 0) {
		http_error(req, LB_E_BAD_REQUEST, "%s", err[0] != '\0' ? err :
		    "the spec is invalid");
		goto done;
	}
	name = ad != NULL ? ad->ad_id : po->po_bundle;
	spec = ad != NULL ? ad->ad_spec : po->po_spec;
	if (strcmp(name, id) != 0) {
		http_error(req, LB_E_BAD_REQUEST, "the spec's %s \"%s\" differs from the "
		    "path's \"%s\"", kind == REG_ADAPTER ? "id" : "bundle", name, id);
		goto done;
	}
	if (ad != NULL && strcmp(ad->ad_dept, pr->pr_id) != 0) {
		http_error(req, LB_E_FORBIDDEN_ROLE, "department %s cannot register an "
		    "adapter of department %s", pr->pr_id, ad->ad_dept);
		goto done;
	}
	if (spec == NULL) {
		http_error(req, LB_E_INTERNAL, "the spec has no canonical form");
		goto done;
	}
	admin_submit(gw, req, pr, kind, id, ad, po);
	ad = NULL;
	po = NULL;
done:
	if (ad != NULL)
		adapter_free(ad);
	policy_free(po);
	msgpack_zone_destroy(&z);
}

void
http_admin_adapter_put(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *id)
{
	admin_put(gw, req, pr, REG_ADAPTER, id);
}

/* DELETE /v1/adapters/{id} */
void
http_admin_adapter_disable(struct gw *gw, struct evhttp_request *req,
    const struct principal *pr, const char *id)
{
	admin_submit(gw, req, pr, REG_ADAPTER, id, NULL, NULL);
}

void
http_admin_policy_put(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *bundle)
{
	admin_put(gw, req, pr, REG_POLICY, bundle);
}

/* The stored spec bytes as an object in z (nil when there are none). */
static msgpack_object
admin_spec_object(msgpack_zone *z, const uint8_t *spec, size_t len)
{
	msgpack_object	o;

	if (spec == NULL || mpk_unpack(spec, len, z, &o) != 0)
		return mpk_nil();
	return o;
}

static msgpack_object
admin_adapter_object(msgpack_zone *z, const struct adapter *ad, bool with_spec)
{
	struct mpk_map	m;
	msgpack_object	items;
	size_t		i;

	items = mpk_array(z, (uint32_t)ad->ad_nitems);
	for (i = 0; i < ad->ad_nitems; i++)
		items.via.array.ptr[i] = mpk_str(ad->ad_items[i]);
	mpk_map_init(&m, z, 8);
	mpk_map_put(&m, "id", mpk_str(ad->ad_id));
	mpk_map_put(&m, "dept", mpk_str(ad->ad_dept));
	mpk_map_put(&m, "version", mpk_uint(ad->ad_version));
	mpk_map_put(&m, "disabled", mpk_bool(ad->ad_disabled));
	mpk_map_put(&m, "items", items);
	mpk_map_put(&m, "format", mpk_str(src_format_name(ad->ad_format)));
	mpk_map_put(&m, "seal", mpk_str(ad->ad_seal));
	if (with_spec)
		mpk_map_put(&m, "spec", admin_spec_object(z, ad->ad_spec, ad->ad_spec_len));
	return m.mm_obj;
}

static msgpack_object
admin_policy_object(msgpack_zone *z, const struct policy *po, bool with_spec)
{
	struct mpk_map	m;
	msgpack_object	items;
	size_t		i;

	items = mpk_array(z, (uint32_t)po->po_nitems);
	for (i = 0; i < po->po_nitems; i++)
		items.via.array.ptr[i] = mpk_str(po->po_items[i].pi_item);
	mpk_map_init(&m, z, 5);
	mpk_map_put(&m, "bundle", mpk_str(po->po_bundle));
	mpk_map_put(&m, "name", mpk_str(po->po_name));
	mpk_map_put(&m, "version", mpk_uint(po->po_version));
	mpk_map_put(&m, "items", items);
	if (with_spec)
		mpk_map_put(&m, "spec", admin_spec_object(z, po->po_spec, po->po_spec_len));
	return m.mm_obj;
}

/* Answers one adapter (ad) or one policy (po), with its spec. */
static void
admin_reply_one(struct evhttp_request *req, const struct adapter *ad, const struct policy *po)
{
	msgpack_zone	z;
	msgpack_object	o;

	msgpack_zone_init(&z, 16384);
	o = ad != NULL ? admin_adapter_object(&z, ad, true) : admin_policy_object(&z, po, true);
	http_reply(req, 200, &o);
	msgpack_zone_destroy(&z);
}

/* Answers {key: list}; list and the answer are in z, which is then destroyed. */
static void
admin_reply_list(struct evhttp_request *req, msgpack_zone *z, const char *key,
    msgpack_object list)
{
	struct mpk_map	m;

	mpk_map_init(&m, z, 1);
	mpk_map_put(&m, key, list);
	http_reply(req, 200, &m.mm_obj);
	msgpack_zone_destroy(z);
}

/* GET /v1/adapters: a department sees its own adapters, the admin all. */
void
http_admin_adapters(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	struct snapshot		*sn = snapshot_current(gw, NULL);
	bool			 all = strcmp(pr->pr_role, "admin") == 0;
	msgpack_zone		 z;
	msgpack_object		 list;
	size_t			 i;

	(void)path;
	msgpack_zone_init(&z, 8192);
	list = mpk_array(&z, (uint32_t)sn->sn_nadapters);
	list.via.array.size = 0;
	for (i = 0; i < sn->sn_nadapters; i++)
		if (all || strcmp(sn->sn_adapters[i]->ad_dept, pr->pr_id) == 0)
			list.via.array.ptr[list.via.array.size++] =
			    admin_adapter_object(&z, sn->sn_adapters[i], false);
	admin_reply_list(req, &z, "adapters", list);
	snapshot_unref(sn);
}

/* GET /v1/adapters/{id}: the department's own, or any for the admin. */
void
http_admin_adapter_get(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *id)
{
	struct snapshot		*sn = snapshot_current(gw, NULL);
	const struct adapter	*ad;

	if ((ad = snapshot_adapter(sn, id)) == NULL)
		http_error(req, LB_E_NOT_FOUND, "there is no adapter \"%s\"", id);
	else if (strcmp(pr->pr_role, "admin") != 0 && strcmp(ad->ad_dept, pr->pr_id) != 0)
		http_error(req, LB_E_FORBIDDEN_ROLE, "adapter \"%s\" belongs to another "
		    "department", id);
	else
		admin_reply_one(req, ad, NULL);
	snapshot_unref(sn);
}

/* GET /v1/policies */
void
http_admin_policies(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	struct snapshot		*sn = snapshot_current(gw, NULL);
	msgpack_zone		 z;
	msgpack_object		 list;
	size_t			 i;

	(void)pr;
	(void)path;
	msgpack_zone_init(&z, 8192);
	list = mpk_array(&z, (uint32_t)sn->sn_npolicies);
	for (i = 0; i < sn->sn_npolicies; i++)
		list.via.array.ptr[i] = admin_policy_object(&z, sn->sn_policies[i], false);
	admin_reply_list(req, &z, "policies", list);
	snapshot_unref(sn);
}

/* GET /v1/policies/{bundle} */
void
http_admin_policy_get(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *bundle)
{
	struct snapshot		*sn = snapshot_current(gw, NULL);
	const struct policy	*po;

	(void)pr;
	if ((po = snapshot_policy(sn, bundle)) == NULL)
		http_error(req, LB_E_NOT_FOUND, "there is no bundle policy \"%s\"", bundle);
	else
		admin_reply_one(req, NULL, po);
	snapshot_unref(sn);
}
