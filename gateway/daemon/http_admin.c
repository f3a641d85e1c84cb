/*
 * http_admin.c - the registry API (DESIGN §8, §9, §10): departments
 * register and disable their adapters, the admin loads bundle policies,
 * and anyone authenticated may read them.
 *
 * A change goes through four steps, one change at a time so that version
 * numbers and ownership checks never race:
 *
 *   check     (loop)    role, ownership, the next version number
 *   load      (worker)  a snapshot with the change on top: proves it loads
 *   journal   (writer)  the "adapter" / "policy" record, durable
 *   store     (worker)  the registry's LMDB transaction
 *
 * and then, on the loop, the new snapshot replaces the running one: the
 * next exchange uses it, the exchanges in flight keep theirs.  Nothing is
 * stored or applied unless the journal holds the record first; a crash
 * between journal and store leaves a journaled change that never took
 * effect, which an auditor can tell from the registry's versions, never
 * the reverse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/sha.h>

#include "gateway.h"

#define ADMIN_QUEUE_MAX	64	/* changes waiting for their turn */
#define ADMIN_MAX_IDS	512	/* adapters, or policies, one snapshot holds */

enum admin_op {
	AOP_PUT = 1,
	AOP_DISABLE
};

struct admin_change {
	struct gw		*ac_gw;
	struct evhttp_request	*ac_req;
	enum reg_kind		 ac_kind;
	enum admin_op		 ac_op;
	char			 ac_id[LB_ID_MAX];
	char			 ac_role[16];
	char			 ac_caller[LB_ID_MAX];
	struct adapter		*ac_ad;		/* AOP_PUT of an adapter: the parsed spec */
	struct policy		*ac_po;		/* AOP_PUT of a policy */
	struct reg_head		 ac_head;	/* what the registry will hold */
	const uint8_t		*ac_spec;	/* canonical spec (in ac_ad / ac_po), or NULL */
	size_t			 ac_spec_len;
	uint8_t			 ac_spec_hash[32];
	bool			 ac_has_hash;
	struct snapshot		*ac_snap;	/* the snapshot with the change */
	uint64_t		 ac_gen;	/* gw_snap_gen when ac_snap was started */
	enum lb_err		 ac_err;
	char			 ac_msg[512];
	struct admin_change	*ac_next;
};

/* The daemon has one HTTP front, hence one queue of changes (loop thread only). */
static struct admin_change	*admin_head, *admin_tail;
static size_t			 admin_queued;
static bool			 admin_busy;

static void	admin_next(void);

static bool
admin_id_ok(const char *s)
{
	size_t	n = strlen(s), i;

	if (n == 0 || n >= LB_ID_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

static const char *
admin_kind_name(enum reg_kind k)
{
	return k == REG_ADAPTER ? "adapter" : "policy";
}

static void
admin_free(struct admin_change *ac)
{
	if (ac == NULL)
		return;
	if (ac->ac_ad != NULL)
		adapter_free(ac->ac_ad);
	policy_free(ac->ac_po);
	snapshot_unref(ac->ac_snap);
	free(ac);
}

/* Answers the change's request and goes on with the next change. */
static void
admin_finish(struct admin_change *ac)
{
	struct gw	*gw = ac->ac_gw;
	msgpack_zone	 z;
	struct mpk_map	 m;

	if (ac->ac_err != LB_OK)
		http_error(ac->ac_req, ac->ac_err, "%s", ac->ac_msg);
	else {
		msgpack_zone_init(&z, 256);
		mpk_map_init(&m, &z, 3);
		mpk_map_put(&m, ac->ac_kind == REG_ADAPTER ? "id" : "bundle", mpk_str(ac->ac_id));
		mpk_map_put(&m, "version", mpk_uint(ac->ac_head.rh_version));
		if (ac->ac_kind == REG_ADAPTER)
			mpk_map_put(&m, "disabled", mpk_bool(ac->ac_head.rh_disabled));
		http_reply(ac->ac_req, 200, &m.mm_obj);
		msgpack_zone_destroy(&z);
	}
	admin_free(ac);
	gw->gw_inflight--;
	admin_busy = false;
	admin_next();
}

static void
admin_fail(struct admin_change *ac, enum lb_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
admin_fail(struct admin_change *ac, enum lb_err e, const char *fmt, ...)
{
	va_list	ap;

	ac->ac_err = e;
	va_start(ap, fmt);
	vsnprintf(ac->ac_msg, sizeof(ac->ac_msg), fmt, ap);
	va_end(ap);
	admin_finish(ac);
}

static void	admin_stored(void *);

/* On a worker: the configuration again, from the files and the registry. */
static void
admin_reload(void *arg)
{
	struct admin_change	*ac = arg;
	char			 err[512];

	if ((ac->ac_snap = snapshot_load(&ac->ac_gw->gw_conf, err, sizeof(err))) == NULL)
		log_warnx("registry: %s \"%s\" is stored but the configuration could not be "
		    "reloaded; it takes effect at the next reload: %s",
		    admin_kind_name(ac->ac_kind), ac->ac_id, err);
}

/* Step 4 done: the registry holds the change; the new snapshot takes over. */
static void
admin_stored(void *arg)
{
	struct admin_change	*ac = arg;
	struct gw		*gw = ac->ac_gw;

	if (ac->ac_err == LB_OK && ac->ac_snap != NULL && gw->gw_snap_gen != ac->ac_gen) {
		/*
		 * The running configuration changed (SIGHUP) while ac_snap was
		 * built from the older one: installing ac_snap would undo that
		 * reload.  Load again, off the loop, from the files and the
		 * registry, which now holds the change.
		 */
		snapshot_unref(ac->ac_snap);
		ac->ac_snap = NULL;
		ac->ac_gen = gw->gw_snap_gen;
		if (workers_submit(gw->gw_workers, gw->gw_base, admin_reload, admin_stored,
		    ac) == 0)
			return;
		log_warnx("registry: %s \"%s\" is stored; it takes effect at the next reload",
		    admin_kind_name(ac->ac_kind), ac->ac_id);
	}
	if (ac->ac_err == LB_OK && ac->ac_snap != NULL) {
		snapshot_unref(gw->gw_snap);
		gw->gw_snap = ac->ac_snap;
		gw->gw_snap_gen++;
		ac->ac_snap = NULL;
		log_info("registry: %s \"%s\" version %llu %s by %s", admin_kind_name(ac->ac_kind),
		    ac->ac_id, (unsigned long long)ac->ac_head.rh_version,
		    ac->ac_op == AOP_PUT ? "registered" : "disabled", ac->ac_head.rh_principal);
	}
	admin_finish(ac);
}

static void
admin_store(void *arg)
{
	struct admin_change	*ac = arg;
	struct registry		*rg;
	char			 err[384];

	if ((rg = registry_get(ac->ac_gw->gw_conf.gc_data, err, sizeof(err))) == NULL ||
	    registry_put(rg, ac->ac_kind, ac->ac_id, &ac->ac_head, ac->ac_spec, ac->ac_spec_len,
	    err, sizeof(err)) != 0) {
		log_warnx("%s \"%s\" version %llu is journaled but was not stored: %s",
		    admin_kind_name(ac->ac_kind), ac->ac_id,
		    (unsigned long long)ac->ac_head.rh_version, err);
		ac->ac_err = LB_E_INTERNAL;
		snprintf(ac->ac_msg, sizeof(ac->ac_msg), "the registry could not store the "
		    "change, so it is not applied: %s", err);
	}
}

/* Step 3 done. */
static void
admin_journaled(void *arg, int status, uint64_t first_seq)
{
	struct admin_change	*ac = arg;

	(void)first_seq;
	if (status != 0) {
		admin_fail(ac, LB_E_JOURNAL_UNAVAILABLE, "the journal could not record the "
		    "change, so it is not applied");
		return;
	}
	if (workers_submit(ac->ac_gw->gw_workers, ac->ac_gw->gw_base, admin_store,
	    admin_stored, ac) != 0)
		admin_fail(ac, LB_E_INTERNAL, "the gateway is shutting down");
}

static void
admin_journal(struct admin_change *ac)
{
	struct jrec	rec;

	memset(&rec, 0, sizeof(rec));
	rec.jr_kind = ac->ac_kind == REG_ADAPTER ? JK_ADAPTER : JK_POLICY;
	rec.jr_t_ms = ac->ac_head.rh_t_ms;
	if (ac->ac_kind == REG_ADAPTER) {
		snprintf(rec.jr_id, sizeof(rec.jr_id), "%s", ac->ac_id);
		snprintf(rec.jr_dept, sizeof(rec.jr_dept), "%s", ac->ac_head.rh_dept);
	} else
		snprintf(rec.jr_bundle, sizeof(rec.jr_bundle), "%s", ac->ac_id);
	snprintf(rec.jr_op, sizeof(rec.jr_op), "%s", ac->ac_op == AOP_PUT ? "put" : "disable");
	snprintf(rec.jr_principal, sizeof(rec.jr_principal), "%s", ac->ac_head.rh_principal);
	rec.jr_has_version = true;
	rec.jr_version = ac->ac_head.rh_version;
	if (ac->ac_has_hash) {
		rec.jr_has_spec = true;
		memcpy(rec.jr_spec, ac->ac_spec_hash, 32);
	}
	snprintf(rec.jr_decision, sizeof(rec.jr_decision), "allow");
	snprintf(rec.jr_code, sizeof(rec.jr_code), "ok");
	if (journal_append(ac->ac_gw->gw_journal, ac->ac_gw->gw_base, &rec, 1,
	    admin_journaled, ac) != 0)
		admin_fail(ac, LB_E_JOURNAL_UNAVAILABLE, "the journal cannot record the change "
		    "now, so it is not applied; try again");
}

/* Step 2, on a worker: the snapshot with the change must load. */
static void
admin_load(void *arg)
{
	struct admin_change	*ac = arg;
	struct reg_change	 chg;
	char			 err[512];

	chg.rc_kind = ac->ac_kind;
	chg.rc_id = ac->ac_id;
	chg.rc_head = &ac->ac_head;
	chg.rc_spec = ac->ac_spec;
	chg.rc_spec_len = ac->ac_spec_len;
	err[0] = '\0';
	if ((ac->ac_snap = snapshot_load_with(&ac->ac_gw->gw_conf, &chg, err,
	    sizeof(err))) == NULL) {
		ac->ac_err = LB_E_BAD_REQUEST;
		snprintf(ac->ac_msg, sizeof(ac->ac_msg), "the %s does not load: %s",
		    admin_kind_name(ac->ac_kind), err[0] != '\0' ? err : "out of memory");
	}
}

static void
admin_loaded(void *arg)
{
	struct admin_change	*ac = arg;

	if (ac->ac_err != LB_OK)
		admin_finish(ac);
	else
		admin_journal(ac);
}

/*
 * Step 1 for an adapter, against the running snapshot and the registry:
 * the id belongs to the caller's department (or to nobody yet), and the
 * next version is one above every version the id had.
 */
static int
admin_check_adapter(struct admin_change *ac, struct registry *rg)
{
	const struct snapshot	*sn = ac->ac_gw->gw_snap;
	const struct adapter	*cur, *o;
	struct reg_head		 h;
	bool			 found;
	uint64_t		 version = 0;
	size_t			 i, j;

	if (registry_head(rg, REG_ADAPTER, ac->ac_id, &h, &found) != 0) {
		admin_fail(ac, LB_E_INTERNAL, "the registry cannot be read");
		return -1;
	}
	cur = snapshot_adapter(sn, ac->ac_id);
	if ((found && strcmp(h.rh_dept, ac->ac_caller) != 0) ||
	    (cur != NULL && strcmp(cur->ad_dept, ac->ac_caller) != 0)) {
		admin_fail(ac, LB_E_FORBIDDEN_ROLE, "adapter \"%s\" belongs to department %s, "
		    "not %s", ac->ac_id, found ? h.rh_dept : cur->ad_dept, ac->ac_caller);
		return -1;
	}
	if (found)
		version = h.rh_version;
	if (cur != NULL && cur->ad_version > version)
		version = cur->ad_version;
	if (ac->ac_op == AOP_DISABLE) {
		if (cur == NULL && !found) {
			admin_fail(ac, LB_E_NOT_FOUND, "there is no adapter \"%s\"", ac->ac_id);
			return -1;
		}
		ac->ac_head.rh_version = version;
		ac->ac_head.rh_disabled = true;
		if ((cur != NULL && cur->ad_disabled) || (cur == NULL && h.rh_disabled)) {
			/* Already disabled: nothing changes, nothing is journaled. */
			admin_finish(ac);
			return -1;
		}
		if (cur != NULL && cur->ad_spec != NULL) {
			SHA256(cur->ad_spec, cur->ad_spec_len, ac->ac_spec_hash);
			ac->ac_has_hash = true;
		}
		return 0;
	}
	/* Two enabled adapters of one department serving one item would be ambiguous. */
	for (i = 0; i < sn->sn_nadapters; i++) {
		o = sn->sn_adapters[i];
		if (o->ad_disabled || strcmp(o->ad_id, ac->ac_id) == 0 ||
		    strcmp(o->ad_dept, ac->ac_caller) != 0)
			continue;
		for (j = 0; j < ac->ac_ad->ad_nitems; j++)
			if (adapter_serves(o, ac->ac_ad->ad_items[j])) {
				admin_fail(ac, LB_E_BAD_REQUEST, "item %s is already served by "
				    "adapter \"%s\"; disable it first", ac->ac_ad->ad_items[j],
				    o->ad_id);
				return -1;
			}
	}
	if (cur == NULL && !found && sn->sn_nadapters >= ADMIN_MAX_IDS) {
		admin_fail(ac, LB_E_TOO_LARGE, "the gateway holds %d adapters, the most it "
		    "takes; register a new version of an existing one", ADMIN_MAX_IDS);
		return -1;
	}
	ac->ac_head.rh_version = version + 1;
	ac->ac_head.rh_disabled = false;
	return 0;
}

static int
admin_check_policy(struct admin_change *ac, struct registry *rg)
{
	const struct policy	*cur;
	struct reg_head		 h;
	bool			 found;
	uint64_t		 version = 0;

	if (registry_head(rg, REG_POLICY, ac->ac_id, &h, &found) != 0) {
		admin_fail(ac, LB_E_INTERNAL, "the registry cannot be read");
		return -1;
	}
	if (found)
		version = h.rh_version;
	if ((cur = snapshot_policy(ac->ac_gw->gw_snap, ac->ac_id)) != NULL &&
	    cur->po_version > version)
		version = cur->po_version;
	if (cur == NULL && !found && ac->ac_gw->gw_snap->sn_npolicies >= ADMIN_MAX_IDS) {
		admin_fail(ac, LB_E_TOO_LARGE, "the gateway holds %d bundle policies, the most "
		    "it takes", ADMIN_MAX_IDS);
		return -1;
	}
	ac->ac_head.rh_version = version + 1;
	return 0;
}

/* Starts the change at the head of the queue, unless one is under way. */
static void
admin_next(void)
{
	struct admin_change	*ac;
	struct registry		*rg;
	char			 err[384];
	int			 rc;

	while (!admin_busy && (ac = admin_head) != NULL) {
		if ((admin_head = ac->ac_next) == NULL)
			admin_tail = NULL;
		admin_queued--;
		admin_busy = true;
		ac->ac_head.rh_t_ms = now_ms();
		snprintf(ac->ac_head.rh_principal, sizeof(ac->ac_head.rh_principal), "%s:%s",
		    ac->ac_role, ac->ac_caller);
		if ((rg = registry_get(ac->ac_gw->gw_conf.gc_data, err, sizeof(err))) == NULL) {
			admin_fail(ac, LB_E_INTERNAL, "%s", err);
			continue;
		}
		/* Refused before the journal sees it, rather than journaled and lost. */
		if (!registry_has_room(rg, ac->ac_spec_len)) {
			admin_fail(ac, LB_E_TOO_LARGE, "the registry is full; ask the operator");
			continue;
		}
		rc = ac->ac_kind == REG_ADAPTER ? admin_check_adapter(ac, rg) :
		    admin_check_policy(ac, rg);
		if (rc != 0)
			continue;	/* answered; admin_fail went on with the queue */
		ac->ac_gen = ac->ac_gw->gw_snap_gen;
		if (workers_submit(ac->ac_gw->gw_workers, ac->ac_gw->gw_base, admin_load,
		    admin_loaded, ac) != 0)
			admin_fail(ac, LB_E_INTERNAL, "the gateway is shutting down");
	}
}

static void
admin_enqueue(struct admin_change *ac)
{
	if (admin_queued >= ADMIN_QUEUE_MAX) {
		http_error(ac->ac_req, LB_E_RATE_LIMITED, "%d registry changes are waiting; "
		    "try again", ADMIN_QUEUE_MAX);
		admin_free(ac);
		return;
	}
	ac->ac_gw->gw_inflight++;
	if (admin_tail != NULL)
		admin_tail->ac_next = ac;
	else
		admin_head = ac;
	admin_tail = ac;
	admin_queued++;
	admin_next();
}

static struct admin_change *
admin_new(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    enum reg_kind kind, enum admin_op op, const char *id)
{
	struct admin_change	*ac;

	if ((ac = calloc(1, sizeof(*ac))) == NULL) {
		http_error(req, LB_E_INTERNAL, "out of memory");
		return NULL;
	}
	ac->ac_gw = gw;
	ac->ac_req = req;
	ac->ac_kind = kind;
	ac->ac_op = op;
	snprintf(ac->ac_id, sizeof(ac->ac_id), "%s", id);
	snprintf(ac->ac_role, sizeof(ac->ac_role), "%s", pr->pr_role);
	snprintf(ac->ac_caller, sizeof(ac->ac_caller), "%s", pr->pr_id);
	return ac;
}

/* PUT /v1/adapters/{id} */
static void
admin_put_adapter(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *id)
{
	struct admin_change	*ac = NULL;
	struct adapter		*ad = NULL;
	msgpack_zone		 z;
	msgpack_object		 body;
	char			 err[512], dept[LB_ID_MAX], sid[LB_ID_MAX];

	msgpack_zone_init(&z, 8192);
	if (http_body(req, &z, &body, err, sizeof(err)) != 0) {
		http_error(req, LB_E_BAD_REQUEST, "%s", err);
		goto done;
	}
	if (body.type != MSGPACK_OBJECT_MAP) {
		http_error(req, LB_E_BAD_REQUEST, "an adapter spec is an object");
		goto done;
	}
	/* Ownership first, so another department learns nothing from the parser. */
	if (mpk_get_str(&body, "dept", dept, sizeof(dept)) == 0 &&
	    strcmp(dept, pr->pr_id) != 0) {
		http_error(req, LB_E_FORBIDDEN_ROLE, "department %s cannot register an "
		    "adapter of department %s", pr->pr_id, dept);
		goto done;
	}
	if (mpk_get_str(&body, "id", sid, sizeof(sid)) == 0 && strcmp(sid, id) != 0) {
		http_error(req, LB_E_BAD_REQUEST, "the spec's id \"%s\" differs from the "
		    "path's \"%s\"", sid, id);
		goto done;
	}
	err[0] = '\0';
	if (adapter_parse(&body, &ad, err, sizeof(err)) != 0) {
		http_error(req, LB_E_BAD_REQUEST, "%s", err[0] != '\0' ? err :
		    "the adapter spec is invalid");
		goto done;
	}
	if (strcmp(ad->ad_id, id) != 0) {
		http_error(req, LB_E_BAD_REQUEST, "the spec's id \"%s\" differs from the "
		    "path's \"%s\"", ad->ad_id, id);
		goto done;
	}
	if (strcmp(ad->ad_dept, pr->pr_id) != 0) {
		http_error(req, LB_E_FORBIDDEN_ROLE, "department %s cannot register an "
		    "adapter of department %s", pr->pr_id, ad->ad_dept);
		goto done;
	}
	if (ad->ad_spec == NULL) {
		http_error(req, LB_E_INTERNAL, "the spec has no canonical form");
		goto done;
	}
	if ((ac = admin_new(gw, req, pr, REG_ADAPTER, AOP_PUT, id)) == NULL)
		goto done;
	ac->ac_ad = ad;
	ad = NULL;
	ac->ac_spec = ac->ac_ad->ad_spec;
	ac->ac_spec_len = ac->ac_ad->ad_spec_len;
	SHA256(ac->ac_spec, ac->ac_spec_len, ac->ac_spec_hash);
	ac->ac_has_hash = true;
	snprintf(ac->ac_head.rh_dept, sizeof(ac->ac_head.rh_dept), "%s", pr->pr_id);
	admin_enqueue(ac);
done:
	if (ad != NULL)
		adapter_free(ad);
	msgpack_zone_destroy(&z);
}

/* PUT /v1/policies/{bundle} */
static void
admin_put_policy(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *bundle)
{
	struct admin_change	*ac;
	struct policy		*po = NULL;
	msgpack_zone		 z;
	msgpack_object		 body;
	char			 err[512];

	msgpack_zone_init(&z, 8192);
	if (http_body(req, &z, &body, err, sizeof(err)) != 0) {
		http_error(req, LB_E_BAD_REQUEST, "%s", err);
		goto done;
	}
	if (body.type != MSGPACK_OBJECT_MAP) {
		http_error(req, LB_E_BAD_REQUEST, "a bundle policy is an object");
		goto done;
	}
	err[0] = '\0';
	if (policy_parse(&body, &po, err, sizeof(err)) != 0) {
		http_error(req, LB_E_BAD_REQUEST, "%s", err[0] != '\0' ? err :
		    "the bundle policy is invalid");
		goto done;
	}
	if (strcmp(po->po_bundle, bundle) != 0) {
		http_error(req, LB_E_BAD_REQUEST, "the policy's bundle \"%s\" differs from the "
		    "path's \"%s\"", po->po_bundle, bundle);
		goto done;
	}
	if (po->po_spec == NULL) {
		http_error(req, LB_E_INTERNAL, "the policy has no canonical form");
		goto done;
	}
	if ((ac = admin_new(gw, req, pr, REG_POLICY, AOP_PUT, bundle)) == NULL)
		goto done;
	ac->ac_po = po;
	po = NULL;
	ac->ac_spec = ac->ac_po->po_spec;
	ac->ac_spec_len = ac->ac_po->po_spec_len;
	SHA256(ac->ac_spec, ac->ac_spec_len, ac->ac_spec_hash);
	ac->ac_has_hash = true;
	admin_enqueue(ac);
done:
	policy_free(po);
	msgpack_zone_destroy(&z);
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

/* GET /v1/adapters: a department sees its own adapters, the admin all. */
static void
admin_list_adapters(struct gw *gw, struct evhttp_request *req, const struct principal *pr)
{
	const struct snapshot	*sn = gw->gw_snap;
	bool			 all = strcmp(pr->pr_role, "admin") == 0;
	msgpack_zone		 z;
	msgpack_object		 list;
	struct mpk_map		 m;
	size_t			 i, n = 0;

	msgpack_zone_init(&z, 8192);
	for (i = 0; i < sn->sn_nadapters; i++)
		if (all || strcmp(sn->sn_adapters[i]->ad_dept, pr->pr_id) == 0)
			n++;
	list = mpk_array(&z, (uint32_t)n);
	for (i = 0, n = 0; i < sn->sn_nadapters; i++)
		if (all || strcmp(sn->sn_adapters[i]->ad_dept, pr->pr_id) == 0)
			list.via.array.ptr[n++] = admin_adapter_object(&z, sn->sn_adapters[i],
			    false);
	mpk_map_init(&m, &z, 1);
	mpk_map_put(&m, "adapters", list);
	http_reply(req, 200, &m.mm_obj);
	msgpack_zone_destroy(&z);
}

static void
admin_get_adapter(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *id)
{
	const struct adapter	*ad;
	msgpack_zone		 z;
	msgpack_object		 o;

	if ((ad = snapshot_adapter(gw->gw_snap, id)) == NULL) {
		http_error(req, LB_E_NOT_FOUND, "there is no adapter \"%s\"", id);
		return;
	}
	if (strcmp(pr->pr_role, "admin") != 0 && strcmp(ad->ad_dept, pr->pr_id) != 0) {
		http_error(req, LB_E_FORBIDDEN_ROLE, "adapter \"%s\" belongs to another "
		    "department", id);
		return;
	}
	msgpack_zone_init(&z, 16384);
	o = admin_adapter_object(&z, ad, true);
	http_reply(req, 200, &o);
	msgpack_zone_destroy(&z);
}

static void
admin_list_policies(struct gw *gw, struct evhttp_request *req)
{
	const struct snapshot	*sn = gw->gw_snap;
	msgpack_zone		 z;
	msgpack_object		 list;
	struct mpk_map		 m;
	size_t			 i;

	msgpack_zone_init(&z, 8192);
	list = mpk_array(&z, (uint32_t)sn->sn_npolicies);
	for (i = 0; i < sn->sn_npolicies; i++)
		list.via.array.ptr[i] = admin_policy_object(&z, sn->sn_policies[i], false);
	mpk_map_init(&m, &z, 1);
	mpk_map_put(&m, "policies", list);
	http_reply(req, 200, &m.mm_obj);
	msgpack_zone_destroy(&z);
}

static void
admin_get_policy(struct gw *gw, struct evhttp_request *req, const char *bundle)
{
	const struct policy	*po;
	msgpack_zone		 z;
	msgpack_object		 o;

	if ((po = snapshot_policy(gw->gw_snap, bundle)) == NULL) {
		http_error(req, LB_E_NOT_FOUND, "there is no bundle policy \"%s\"", bundle);
		return;
	}
	msgpack_zone_init(&z, 16384);
	o = admin_policy_object(&z, po, true);
	http_reply(req, 200, &o);
	msgpack_zone_destroy(&z);
}

static bool
admin_role(struct evhttp_request *req, const struct principal *pr, const char *a,
    const char *b)
{
	if (strcmp(pr->pr_role, a) == 0 || (b != NULL && strcmp(pr->pr_role, b) == 0))
		return true;
	http_error(req, LB_E_FORBIDDEN_ROLE, "this call is for the %s%s%s role; your "
	    "certificate is %s %s", a, b != NULL ? " or " : "", b != NULL ? b : "",
	    pr->pr_role, pr->pr_id);
	return false;
}

static void
admin_adapters(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *rest)
{
	enum evhttp_cmd_type	 method = evhttp_request_get_command(req);
	struct admin_change	*ac;

	if (rest[0] == '\0' || strcmp(rest, "/") == 0) {
		if (method != EVHTTP_REQ_GET)
			http_error(req, LB_E_METHOD_NOT_ALLOWED, "use GET /v1/adapters");
		else if (admin_role(req, pr, "department", "admin"))
			admin_list_adapters(gw, req, pr);
		return;
	}
	if (rest[0] != '/' || !admin_id_ok(rest + 1)) {
		http_error(req, LB_E_BAD_REQUEST, "an adapter id is 1 to %d letters, digits, "
		    "'-', '_' or '.'", LB_ID_MAX - 1);
		return;
	}
	rest++;
	switch (method) {
	case EVHTTP_REQ_GET:
		if (admin_role(req, pr, "department", "admin"))
			admin_get_adapter(gw, req, pr, rest);
		break;
	case EVHTTP_REQ_PUT:
		if (admin_role(req, pr, "department", NULL))
			admin_put_adapter(gw, req, pr, rest);
		break;
	case EVHTTP_REQ_DELETE:
		if (admin_role(req, pr, "department", NULL) &&
		    (ac = admin_new(gw, req, pr, REG_ADAPTER, AOP_DISABLE, rest)) != NULL) {
			snprintf(ac->ac_head.rh_dept, sizeof(ac->ac_head.rh_dept), "%s",
			    pr->pr_id);
			admin_enqueue(ac);
		}
		break;
	default:
		http_error(req, LB_E_METHOD_NOT_ALLOWED, "use GET, PUT or DELETE "
		    "/v1/adapters/%s", rest);
		break;
	}
}

static void
admin_policies(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *rest)
{
	enum evhttp_cmd_type	method = evhttp_request_get_command(req);

	if (rest[0] == '\0' || strcmp(rest, "/") == 0) {
		if (method != EVHTTP_REQ_GET)
			http_error(req, LB_E_METHOD_NOT_ALLOWED, "use GET /v1/policies");
		else
			admin_list_policies(gw, req);
		return;
	}
	if (rest[0] != '/' || !admin_id_ok(rest + 1)) {
		http_error(req, LB_E_BAD_REQUEST, "a bundle id is 1 to %d letters, digits, "
		    "'-', '_' or '.'", LB_ID_MAX - 1);
		return;
	}
	rest++;
	switch (method) {
	case EVHTTP_REQ_GET:
		admin_get_policy(gw, req, rest);
		break;
	case EVHTTP_REQ_PUT:
		if (admin_role(req, pr, "admin", NULL))
			admin_put_policy(gw, req, pr, rest);
		break;
	default:
		http_error(req, LB_E_METHOD_NOT_ALLOWED, "use GET or PUT /v1/policies/%s",
		    rest);
		break;
	}
}

void
http_admin(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	if (strncmp(path, "/v1/adapters", 12) == 0 && (path[12] == '\0' || path[12] == '/'))
		admin_adapters(gw, req, pr, path + 12);
	else if (strncmp(path, "/v1/policies", 12) == 0 &&
	    (path[12] == '\0' || path[12] == '/'))
		admin_policies(gw, req, pr, path + 12);
	else
		http_error(req, LB_E_NOT_FOUND, "no such API route: %s", path);
}
