/*
 * config.c - the configuration snapshot (trust, policies, adapters, seal
 * keys, the endpoint list): loading it from the directories and files named
 * on the command line and the adapters and policies registered through the
 * API (registry.c), and the one way a new snapshot replaces the running
 * one, for SIGHUP and for registry changes alike.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

#define CONFIG_FILE_MAX		(1024 * 1024)
#define CONFIG_MAX_FILES	256

int
config_json_file(const char *path, msgpack_zone *z, msgpack_object *out, char *err,
    size_t errlen)
{
	uint8_t	*buf;
	size_t	 len;
	char	 why[256];
	int	 ret;

	if (file_read(path, CONFIG_FILE_MAX, &buf, &len) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((ret = mpk_from_json((const char *)buf, len, z, out, why, sizeof(why))) != 0)
		snprintf(err, errlen, "%s: %s", path, why);
	free(buf);
	return ret;
}

typedef int	(*config_json_fn)(void *arg, const msgpack_object *, char *err, size_t errlen);

struct config_walk {
	config_json_fn	 cw_fn;
	void		*cw_arg;
};

static int
config_json_one(void *arg, const char *path, char *err, size_t errlen)
{
	struct config_walk	*cw = arg;
	msgpack_zone		 z;
	msgpack_object		 o;
	char			 why[384];
	int			 ret = -1;

	msgpack_zone_init(&z, 8192);
	if (config_json_file(path, &z, &o, err, errlen) != 0)
		goto done;
	why[0] = '\0';
	if (cw->cw_fn(cw->cw_arg, &o, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: %s", path, why[0] != '\0' ? why : "out of memory");
		goto done;
	}
	ret = 0;
done:
	msgpack_zone_destroy(&z);
	return ret;
}

/* Calls fn with every *.json file of dir, parsed, in name order. */
static int
config_each_json(const char *dir, config_json_fn fn, void *arg, char *err, size_t errlen)
{
	struct config_walk	cw = { fn, arg };

	return dir_each(dir, ".json", CONFIG_MAX_FILES, config_json_one, &cw, err, errlen);
}

/* Where bundle's policy is in sn, or sn_npolicies when it is not there. */
static size_t
config_policy_at(const struct snapshot *sn, const char *bundle)
{
	size_t	i;

	for (i = 0; i < sn->sn_npolicies; i++)
		if (strcmp(sn->sn_policies[i]->po_bundle, bundle) == 0)
			break;
	return i;
}

/* Where adapter id is in sn, or sn_nadapters when it is not there. */
static size_t
config_adapter_at(const struct snapshot *sn, const char *id)
{
	size_t	i;

	for (i = 0; i < sn->sn_nadapters; i++)
		if (strcmp(sn->sn_adapters[i]->ad_id, id) == 0)
			break;
	return i;
}

/*
 * Puts po at index i of sn's policies: in place of the one there, which is
 * freed, or added when i is sn_npolicies.  Takes po, also when it fails.
 */
static int
config_put_policy(struct snapshot *sn, size_t i, struct policy *po, char *err,
    size_t errlen)
{
	struct policy	**np;

	if (i < sn->sn_npolicies) {
		policy_free(sn->sn_policies[i]);
		sn->sn_policies[i] = po;
		return 0;
	}
	if ((np = reallocarray(sn->sn_policies, i + 1, sizeof(*np))) == NULL) {
		snprintf(err, errlen, "out of memory");
		policy_free(po);
		return -1;
	}
	sn->sn_policies = np;
	sn->sn_policies[sn->sn_npolicies++] = po;
	return 0;
}

/* The same for adapters. */
static int
config_put_adapter(struct snapshot *sn, size_t i, struct adapter *ad, char *err,
    size_t errlen)
{
	struct adapter	**na;

	if (i < sn->sn_nadapters) {
		adapter_free(sn->sn_adapters[i]);
		sn->sn_adapters[i] = ad;
		return 0;
	}
	if ((na = reallocarray(sn->sn_adapters, i + 1, sizeof(*na))) == NULL) {
		snprintf(err, errlen, "out of memory");
		adapter_free(ad);
		return -1;
	}
	sn->sn_adapters = na;
	sn->sn_adapters[sn->sn_nadapters++] = ad;
	return 0;
}

static int
config_add_policy(void *arg, const msgpack_object *o, char *err, size_t errlen)
{
	struct snapshot	*sn = arg;
	struct policy	*po;
	size_t		 i;

	if (policy_parse(o, &po, err, errlen) != 0)
		return -1;
	po->po_version = 1;
	if ((i = config_policy_at(sn, po->po_bundle)) < sn->sn_npolicies) {
		snprintf(err, errlen, "bundle \"%s\" is defined twice", po->po_bundle);
		policy_free(po);
		return -1;
	}
	return config_put_policy(sn, i, po, err, errlen);
}

struct adapter_load {
	struct snapshot		*al_sn;
	const struct gw_config	*al_conf;
};

/* Loads the seal an adapter names and checks that it is its department's. */
static int
config_adapter_seal(struct snapshot *sn, const struct gw_config *gc,
    const struct adapter *ad, char *err, size_t errlen)
{
	const struct seal_key	*sk;
	struct seal_key		*ns;

	if ((sk = snapshot_seal(sn, ad->ad_seal)) == NULL) {
		if ((ns = reallocarray(sn->sn_seals, sn->sn_nseals + 1, sizeof(*ns))) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		sn->sn_seals = ns;
		if (seal_key_load(gc->gc_certs, ad->ad_seal, &sn->sn_seals[sn->sn_nseals], err,
		    errlen) != 0)
			return -1;
		sk = &sn->sn_seals[sn->sn_nseals++];
	}
	if (strcmp(sk->sk_dept, ad->ad_dept) != 0) {
		snprintf(err, errlen, "adapter \"%s\" of %s names seal \"%s\" of another "
		    "department", ad->ad_id, ad->ad_dept, ad->ad_seal);
		return -1;
	}
	return 0;
}

static int
config_add_adapter(void *arg, const msgpack_object *o, char *err, size_t errlen)
{
	struct adapter_load	*al = arg;
	struct snapshot		*sn = al->al_sn;
	struct adapter		*ad;
	size_t			 i;

	if (adapter_parse(o, &ad, err, errlen) != 0)
		return -1;
	ad->ad_version = 1;
	if ((i = config_adapter_at(sn, ad->ad_id)) < sn->sn_nadapters) {
		snprintf(err, errlen, "adapter \"%s\" is defined twice", ad->ad_id);
		adapter_free(ad);
		return -1;
	}
	if (config_adapter_seal(sn, al->al_conf, ad, err, errlen) != 0) {
		adapter_free(ad);
		return -1;
	}
	return config_put_adapter(sn, i, ad, err, errlen);
}

static void
snapshot_free(struct snapshot *sn)
{
	size_t	i;

	trust_free(sn->sn_trust);
	for (i = 0; i < sn->sn_npolicies; i++)
		policy_free(sn->sn_policies[i]);
	free(sn->sn_policies);
	for (i = 0; i < sn->sn_nadapters; i++)
		adapter_free(sn->sn_adapters[i]);
	free(sn->sn_adapters);
	for (i = 0; i < sn->sn_nseals; i++)
		seal_key_clear(&sn->sn_seals[i]);
	free(sn->sn_seals);
	egress_free(sn->sn_egress);
	free(sn);
}

/*
 * Registry entries (registry.c) override the files: a stored version
 * replaces the file's spec of the same id, and a disabled adapter stays
 * disabled whatever the files say.  Both decode a stored spec first.
 */
static int
config_reg_unpack(const uint8_t *spec, size_t len, msgpack_zone *z, msgpack_object *o,
    char *err, size_t errlen)
{
	if (mpk_unpack(spec, len, z, o) != 0) {
		snprintf(err, errlen, "the stored spec is not msgpack");
		return -1;
	}
	return 0;
}

static int
config_reg_policy(struct snapshot *sn, const char *id, const struct reg_head *h,
    const uint8_t *spec, size_t len, char *err, size_t errlen)
{
	msgpack_zone	 z;
	msgpack_object	 o;
	struct policy	*po = NULL;
	int		 ret = -1;

	if (spec == NULL)
		return 0;
	msgpack_zone_init(&z, 8192);
	if (config_reg_unpack(spec, len, &z, &o, err, errlen) != 0 ||
	    policy_parse(&o, &po, err, errlen) != 0)
		goto done;
	if (strcmp(po->po_bundle, id) != 0) {
		snprintf(err, errlen, "the spec is for bundle \"%s\"", po->po_bundle);
		goto done;
	}
	po->po_version = h->rh_version;
	ret = config_put_policy(sn, config_policy_at(sn, id), po, err, errlen);
	po = NULL;
done:
	policy_free(po);
	msgpack_zone_destroy(&z);
	return ret;
}

/*
 * The first nfile adapters of sn came from the operator's files.  An id
 * one of them holds belongs to its department: a registry entry of
 * another department is refused with forbidden_role and never replaces
 * it, whichever came first (a department cannot claim an id before the
 * operator ships it).  Other failures are bad_request.
 */
static enum lb_err
config_reg_adapter(struct snapshot *sn, const struct gw_config *gc, size_t nfile,
    const char *id, const struct reg_head *h, const uint8_t *spec, size_t len, char *err,
    size_t errlen)
{
	msgpack_zone	 z;
	msgpack_object	 o;
	struct adapter	*ad = NULL;
	size_t		 i = config_adapter_at(sn, id);
	enum lb_err	 ret = LB_E_BAD_REQUEST;

	if (i < nfile && strcmp(sn->sn_adapters[i]->ad_dept, h->rh_dept) != 0) {
		snprintf(err, errlen, "the operator's file adapter \"%s\" of department %s holds "
		    "the id", id, sn->sn_adapters[i]->ad_dept);
		return LB_E_FORBIDDEN_ROLE;
	}
	if (spec == NULL) {
		/* A file adapter disabled through the API. */
		if (i < sn->sn_nadapters) {
			if (strcmp(sn->sn_adapters[i]->ad_dept, h->rh_dept) != 0) {
				snprintf(err, errlen, "the file's adapter belongs to %s, the "
				    "registry's to %s", sn->sn_adapters[i]->ad_dept, h->rh_dept);
				return LB_E_BAD_REQUEST;
			}
			sn->sn_adapters[i]->ad_disabled = h->rh_disabled;
			sn->sn_adapters[i]->ad_version = h->rh_version;
		}
		return LB_OK;
	}
	msgpack_zone_init(&z, 8192);
	if (config_reg_unpack(spec, len, &z, &o, err, errlen) != 0 ||
	    adapter_parse(&o, &ad, err, errlen) != 0)
		goto done;
	if (strcmp(ad->ad_id, id) != 0 || strcmp(ad->ad_dept, h->rh_dept) != 0) {
		snprintf(err, errlen, "the spec is adapter \"%s\" of %s", ad->ad_id,
		    ad->ad_dept);
		goto done;
	}
	if (config_adapter_seal(sn, gc, ad, err, errlen) != 0)
		goto done;
	ad->ad_version = h->rh_version;
	ad->ad_disabled = h->rh_disabled;
	ad->ad_registered = true;
	ret = config_put_adapter(sn, i, ad, err, errlen) == 0 ? LB_OK : LB_E_BAD_REQUEST;
	ad = NULL;
done:
	if (ad != NULL)
		adapter_free(ad);
	msgpack_zone_destroy(&z);
	return ret;
}

/*
 * A registry entry, or the change about to be made, on top of sn, whose
 * first nfile adapters came from files.
 */
static enum lb_err
config_reg_apply(struct snapshot *sn, const struct gw_config *gc, size_t nfile,
    enum reg_kind kind, const char *id, const struct reg_head *h, const uint8_t *spec,
    size_t len, char *err, size_t errlen)
{
	err[0] = '\0';
	if (kind == REG_POLICY)
		return config_reg_policy(sn, id, h, spec, len, err, errlen) == 0 ? LB_OK :
		    LB_E_BAD_REQUEST;
	return config_reg_adapter(sn, gc, nfile, id, h, spec, len, err, errlen);
}

struct reg_load {
	struct snapshot		*rl_sn;
	const struct gw_config	*rl_conf;
	enum reg_kind		 rl_kind;
	size_t			 rl_nfile;	/* adapters from files */
};

/*
 * A stored entry that no longer loads (a seal certificate was removed, a
 * parser grew stricter) must not keep the daemon from starting; its id is
 * left out, and a file adapter of the same id is disabled rather than
 * brought back.  An entry that squats the id of another department's file
 * adapter is left out too, and that file adapter is served.
 */
static int
config_reg_one(void *arg, const char *id, const struct reg_head *h, const uint8_t *spec,
    size_t len)
{
	struct reg_load	*rl = arg;
	char		 why[384];
	size_t		 i;
	enum lb_err	 e;

	if ((e = config_reg_apply(rl->rl_sn, rl->rl_conf, rl->rl_nfile, rl->rl_kind, id, h,
	    spec, len, why, sizeof(why))) == LB_OK)
		return 0;
	if (rl->rl_kind == REG_POLICY) {
		log_warnx("registry: policy \"%s\" version %llu is left out: %s", id,
		    (unsigned long long)h->rh_version, why);
		return 0;
	}
	log_warnx("registry: adapter \"%s\" version %llu of department %s (last changed by "
	    "%s) is left out: %s%s", id, (unsigned long long)h->rh_version, h->rh_dept,
	    h->rh_principal, why, e == LB_E_FORBIDDEN_ROLE ? "; the file adapter is served" : "");
	if (e != LB_E_FORBIDDEN_ROLE &&
	    (i = config_adapter_at(rl->rl_sn, id)) < rl->rl_sn->sn_nadapters)
		rl->rl_sn->sn_adapters[i]->ad_disabled = true;
	return 0;
}

/*
 * The CAs of client certificates, CERTS/client-ca.pem, and their CRLs: the
 * file of --crl, which must then exist, or else CERTS/client-ca.crl when
 * there is one.  Both are read again by every load, so SIGHUP picks up a
 * new CRL.
 */
static int
config_clients(struct trust *t, const struct gw_config *gc, char *err, size_t errlen)
{
	char	ca[PATH_MAX], crl[PATH_MAX];
	bool	optional = gc->gc_crl[0] == '\0';

	snprintf(ca, sizeof(ca), "%s/client-ca.pem", gc->gc_certs);
	if (optional)
		snprintf(crl, sizeof(crl), "%s/client-ca.crl", gc->gc_certs);
	else
		snprintf(crl, sizeof(crl), "%s", gc->gc_crl);
	return trust_load_clients(t, ca, crl, optional, err, errlen);
}

struct snapshot *
snapshot_load(const struct gw_config *gc, struct registry *rg, char *err, size_t errlen)
{
	return snapshot_load_with(gc, rg, NULL, err, errlen);
}

struct snapshot *
snapshot_load_with(const struct gw_config *gc, struct registry *rg, struct reg_change *chg,
    char *err, size_t errlen)
{
	struct snapshot		*sn;
	struct adapter_load	 al;
	struct reg_load		 rl;
	char			 why[384];

	err[0] = '\0';
	if (chg != NULL)
		chg->rc_err = LB_E_BAD_REQUEST;
	if ((sn = calloc(1, sizeof(*sn))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&sn->sn_refs, 1);
	if ((sn->sn_trust = trust_load(gc->gc_certs, err, errlen)) == NULL ||
	    config_clients(sn->sn_trust, gc, err, errlen) != 0)
		goto fail;
	if ((sn->sn_egress = egress_load(gc->gc_endpoints, !gc->gc_endpoints_given, err,
	    errlen)) == NULL)
		goto fail;
	if (config_each_json(gc->gc_policies, config_add_policy, sn, err, errlen) != 0)
		goto fail;
	al.al_sn = sn;
	al.al_conf = gc;
	if (config_each_json(gc->gc_adapters, config_add_adapter, &al, err, errlen) != 0)
		goto fail;
	rl.rl_sn = sn;
	rl.rl_conf = gc;
	rl.rl_nfile = sn->sn_nadapters;
	rl.rl_kind = REG_POLICY;
	if (registry_each(rg, REG_POLICY, config_reg_one, &rl, err, errlen) != 0)
		goto fail;
	rl.rl_kind = REG_ADAPTER;
	if (registry_each(rg, REG_ADAPTER, config_reg_one, &rl, err, errlen) != 0)
		goto fail;
	if (chg != NULL && (chg->rc_err = config_reg_apply(sn, gc, rl.rl_nfile, chg->rc_kind,
	    chg->rc_id, chg->rc_head, chg->rc_spec, chg->rc_spec_len, why, sizeof(why))) !=
	    LB_OK) {
		snprintf(err, errlen, "%s", why[0] != '\0' ? why : "out of memory");
		goto fail;
	}
	return sn;
fail:
	snapshot_free(sn);
	return NULL;
}

void
snapshot_ref(struct snapshot *sn)
{
	atomic_fetch_add_explicit(&sn->sn_refs, 1, memory_order_relaxed);
}

/*
 * The thread that drops the last reference frees: acquire-release, so
 * that it sees everything the other holders did before they let go.
 */
void
snapshot_unref(struct snapshot *sn)
{
	if (sn == NULL)
		return;
	if (atomic_fetch_sub_explicit(&sn->sn_refs, 1, memory_order_acq_rel) == 1)
		snapshot_free(sn);
}

/*
 * sn replaces the running snapshot, with a reference of its own, when the
 * generation is still *gen (any, when gen is NULL); -1 otherwise.  The lock
 * guards the pointer and the generation together, for snapshot_current.
 */
static int
snapshot_swap(struct gw *gw, struct snapshot *sn, const uint64_t *gen)
{
	struct gw	*mg = gw_main_of(gw);
	struct snapshot	*old;

	pthread_mutex_lock(&mg->gw_lock);
	if (gen != NULL && mg->gw_snap_gen != *gen) {
		pthread_mutex_unlock(&mg->gw_lock);
		return -1;
	}
	snapshot_ref(sn);
	old = mg->gw_snap;
	mg->gw_snap = sn;
	mg->gw_snap_gen++;
	pthread_mutex_unlock(&mg->gw_lock);
	snapshot_unref(old);
	return 0;
}

void
snapshot_install(struct gw *gw, struct snapshot *sn)
{
	snapshot_swap(gw, sn, NULL);
	snapshot_unref(sn);
}

struct snapshot *
snapshot_current(struct gw *gw, uint64_t *gen)
{
	struct gw	*mg = gw_main_of(gw);
	struct snapshot	*sn;

	pthread_mutex_lock(&mg->gw_lock);
	sn = mg->gw_snap;
	snapshot_ref(sn);
	if (gen != NULL)
		*gen = mg->gw_snap_gen;
	pthread_mutex_unlock(&mg->gw_lock);
	return sn;
}

/* One snapshot_reload: its load on a worker, its install on the loop. */
struct snapshot_job {
	struct gw		*sj_gw;
	struct snapshot		*sj_snap;	/* loaded, not yet installed */
	uint64_t		 sj_gen;	/* gw_snap_gen when sj_snap was started */
	snapshot_reload_fn	 sj_done;
	void			*sj_arg;
	struct gw_config	 sj_conf;	/* gw_conf when it started; the load's */
	struct gw_config	*sj_fresh;	/* SIGHUP: the settings read again */
	char			 sj_err[1024];
};

static void	snapshot_job_start(struct snapshot_job *);

static void
snapshot_job_finish(struct snapshot_job *sj, const struct snapshot *sn, const char *err)
{
	sj->sj_done(sj->sj_arg, sn, err);
	free(sj->sj_fresh);
	free(sj);
}

/*
 * On a worker: the configuration from the files and the registry; for
 * SIGHUP, with the settings of the config file read again, of which the
 * ones that may change while running take effect.
 */
static void
snapshot_job_work(void *arg)
{
	struct snapshot_job	*sj = arg;
	struct gw		*gw = sj->sj_gw;

	sj->sj_snap = NULL;
	if (sj->sj_fresh != NULL) {
		if (settings_load(gw->gw_settings, sj->sj_fresh, sj->sj_err,
		    sizeof(sj->sj_err)) != 0)
			return;
		settings_merge(&sj->sj_conf, sj->sj_fresh);
	}
	sj->sj_snap = snapshot_load(&sj->sj_conf, gw->gw_registry, sj->sj_err,
	    sizeof(sj->sj_err));
}

/*
 * On the loop: install sj_snap, unless an install overtook its load (of
 * any loop: the generation is compared under the lock that installs).
 */
static void
snapshot_job_done(void *arg)
{
	struct snapshot_job	*sj = arg;
	struct gw		*gw = sj->sj_gw;
	struct snapshot		*sn = sj->sj_snap;

	if (sn == NULL) {
		snapshot_job_finish(sj, NULL, sj->sj_err);
		return;
	}
	sj->sj_snap = NULL;
	if (snapshot_swap(gw, sn, &sj->sj_gen) != 0) {
		snapshot_unref(sn);
		if (gw->gw_stopping)
			snapshot_job_finish(sj, NULL, "the gateway is stopping");
		else
			snapshot_job_start(sj);
		return;
	}
	if (sj->sj_fresh != NULL)
		settings_apply(gw, sj->sj_fresh);
	/* The job's reference keeps sn alive for done, whatever installs next. */
	snapshot_job_finish(sj, sn, NULL);
	snapshot_unref(sn);
}

static void
snapshot_job_start(struct snapshot_job *sj)
{
	struct gw	*gw = sj->sj_gw;

	sj->sj_gen = gw_main_of(gw)->gw_snap_gen;
	sj->sj_conf = gw->gw_conf;
	if (workers_submit(gw->gw_workers, gw->gw_base, snapshot_job_work, snapshot_job_done,
	    sj) != 0)
		snapshot_job_finish(sj, NULL, "the workers are stopping");
}

/* snapshot_reload, and with reread the settings read again as well. */
static void
snapshot_reload_job(struct gw *gw, struct snapshot *sn, uint64_t gen, bool reread,
    snapshot_reload_fn done, void *arg)
{
	struct snapshot_job	*sj;

	if ((sj = calloc(1, sizeof(*sj))) == NULL ||
	    (reread && (sj->sj_fresh = calloc(1, sizeof(*sj->sj_fresh))) == NULL)) {
		free(sj);
		snapshot_unref(sn);
		done(arg, NULL, "out of memory");
		return;
	}
	sj->sj_gw = gw;
	sj->sj_done = done;
	sj->sj_arg = arg;
	if (sn == NULL) {
		snapshot_job_start(sj);
		return;
	}
	sj->sj_snap = sn;
	sj->sj_gen = gen;
	snapshot_job_done(sj);
}

void
snapshot_reload(struct gw *gw, struct snapshot *sn, uint64_t gen, snapshot_reload_fn done,
    void *arg)
{
	snapshot_reload_job(gw, sn, gen, false, done, arg);
}

static void
config_sighup_done(void *arg, const struct snapshot *sn, const char *err)
{
	struct gw	*gw = arg;
	char		 msg[1024];
	const char	*result = sn != NULL ? "ok" : "failed";

	gw->gw_sighup.sh_running = false;
	gw->gw_inflight--;
	metrics_count(METRICS_RELOADS, 1, &result);
	/* Readiness (http_ready.c) stays 503 until a reload succeeds. */
	gw->gw_reload_failed = sn == NULL;
	if (sn == NULL) {
		snprintf(msg, sizeof(msg), "reload failed, keeping the running configuration: %s",
		    err);
		log_event(LB_LOG_WARN, "reload", "msg", msg, "result", "failed", NULL);
	} else {
		snprintf(msg, sizeof(msg), "reloaded: %zu authorities, %zu policies, %zu "
		    "adapters, %zu seals, %zu client CRLs", sn->sn_trust->t_nauth,
		    sn->sn_npolicies, sn->sn_nadapters, sn->sn_nseals, sn->sn_trust->t_ncrls);
		log_event(LB_LOG_INFO, "reload", "msg", msg, "result", "ok", NULL);
	}
	if (gw->gw_sighup.sh_again && !gw->gw_stopping) {
		gw->gw_sighup.sh_again = false;
		config_sighup(gw);
	} else
		notify_reloaded(gw, sn != NULL);
}

void
config_sighup(struct gw *gw)
{
	if (gw->gw_sighup.sh_running) {
		gw->gw_sighup.sh_again = true;
		return;
	}
	gw->gw_sighup.sh_running = true;
	gw->gw_inflight++;
	notify_reloading(gw);
	/* Without the command line (a test's gateway) there are no settings to read. */
	snapshot_reload_job(gw, NULL, 0, gw->gw_settings != NULL, config_sighup_done, gw);
}

const struct policy *
snapshot_policy(const struct snapshot *sn, const char *bundle)
{
	size_t	i = config_policy_at(sn, bundle);

	return i < sn->sn_npolicies ? sn->sn_policies[i] : NULL;
}

const struct adapter *
snapshot_adapter_for(const struct snapshot *sn, const char *dept, const char *item)
{
	size_t	i;

	for (i = 0; i < sn->sn_nadapters; i++)
		if (!sn->sn_adapters[i]->ad_disabled &&
		    strcmp(sn->sn_adapters[i]->ad_dept, dept) == 0 &&
		    adapter_serves(sn->sn_adapters[i], item))
			return sn->sn_adapters[i];
	return NULL;
}

const struct adapter *
snapshot_adapter(const struct snapshot *sn, const char *id)
{
	size_t	i = config_adapter_at(sn, id);

	return i < sn->sn_nadapters ? sn->sn_adapters[i] : NULL;
}

const struct egress *
snapshot_egress_for(const struct snapshot *sn, const struct adapter *ad)
{
	return ad->ad_registered ? sn->sn_egress : NULL;
}

const struct seal_key *
snapshot_seal(const struct snapshot *sn, const char *id)
{
	size_t	i;

	for (i = 0; i < sn->sn_nseals; i++)
		if (strcmp(sn->sn_seals[i].sk_id, id) == 0)
			return &sn->sn_seals[i];
	return NULL;
}
