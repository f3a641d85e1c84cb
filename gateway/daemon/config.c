/*
 * config.c - loading the configuration snapshot (trust, policies, adapters,
 * seal keys) from the directories named on the command line, then the
 * adapters and policies registered through the API (registry.c).
 */
#include <dirent.h>
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

/* Calls fn for every *.json file of dir, in name order. */
static int
config_each_json(const char *dir, int (*fn)(void *, const char *, const msgpack_object *,
    char *, size_t), void *arg, char *err, size_t errlen)
{
	struct dirent	**names = NULL;
	msgpack_zone	  z;
	msgpack_object	  o;
	char		  path[PATH_MAX], why[384];
	size_t		  len;
	int		  i, n, ret = -1;

	if ((n = scandir(dir, &names, NULL, alphasort)) < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (n > CONFIG_MAX_FILES) {
		snprintf(err, errlen, "%s: more than %d files", dir, CONFIG_MAX_FILES);
		goto done;
	}
	for (i = 0; i < n; i++) {
		len = strlen(names[i]->d_name);
		if (len < 6 || strcmp(names[i]->d_name + len - 5, ".json") != 0)
			continue;
		if (path_join(path, sizeof(path), dir, names[i]->d_name) != 0) {
			snprintf(err, errlen, "%s: path too long", dir);
			goto done;
		}
		msgpack_zone_init(&z, 8192);
		if (config_json_file(path, &z, &o, err, errlen) != 0) {
			msgpack_zone_destroy(&z);
			goto done;
		}
		if (fn(arg, path, &o, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s: %s", path, why);
			msgpack_zone_destroy(&z);
			goto done;
		}
		msgpack_zone_destroy(&z);
	}
	ret = 0;
done:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

static int
config_add_policy(void *arg, const char *path, const msgpack_object *o, char *err,
    size_t errlen)
{
	struct snapshot	 *sn = arg;
	struct policy	 *po, **np;
	size_t		  i;

	(void)path;
	if (policy_parse(o, &po, err, errlen) != 0)
		return -1;
	po->po_version = 1;
	for (i = 0; i < sn->sn_npolicies; i++)
		if (strcmp(sn->sn_policies[i]->po_bundle, po->po_bundle) == 0) {
			snprintf(err, errlen, "bundle \"%s\" is defined twice", po->po_bundle);
			policy_free(po);
			return -1;
		}
	if ((np = reallocarray(sn->sn_policies, sn->sn_npolicies + 1, sizeof(*np))) == NULL) {
		policy_free(po);
		return -1;
	}
	sn->sn_policies = np;
	sn->sn_policies[sn->sn_npolicies++] = po;
	return 0;
}

struct adapter_load {
	struct snapshot		*al_sn;
	const struct gw_config	*al_conf;
};

static int
config_add_seal(struct snapshot *sn, const struct gw_config *gc, const char *id,
    char *err, size_t errlen)
{
	struct seal_key	*ns;

	if (snapshot_seal(sn, id) != NULL)
		return 0;
	if ((ns = reallocarray(sn->sn_seals, sn->sn_nseals + 1, sizeof(*ns))) == NULL)
		return -1;
	sn->sn_seals = ns;
	if (seal_key_load(gc->gc_certs, id, &sn->sn_seals[sn->sn_nseals], err, errlen) != 0)
		return -1;
	sn->sn_nseals++;
	return 0;
}

/* Loads the seal an adapter names and checks that it is its department's. */
static int
config_adapter_seal(struct snapshot *sn, const struct gw_config *gc,
    const struct adapter *ad, char *err, size_t errlen)
{
	if (config_add_seal(sn, gc, ad->ad_seal, err, errlen) != 0)
		return -1;
	if (strcmp(snapshot_seal(sn, ad->ad_seal)->sk_dept, ad->ad_dept) != 0) {
		snprintf(err, errlen, "adapter \"%s\" of %s names seal \"%s\" of another "
		    "department", ad->ad_id, ad->ad_dept, ad->ad_seal);
		return -1;
	}
	return 0;
}

static int
config_add_adapter(void *arg, const char *path, const msgpack_object *o, char *err,
    size_t errlen)
{
	struct adapter_load	 *al = arg;
	struct snapshot		 *sn = al->al_sn;
	struct adapter		 *ad, **na;
	size_t			  i;

	(void)path;
	if (adapter_parse(o, &ad, err, errlen) != 0)
		return -1;
	ad->ad_version = 1;
	for (i = 0; i < sn->sn_nadapters; i++)
		if (strcmp(sn->sn_adapters[i]->ad_id, ad->ad_id) == 0) {
			snprintf(err, errlen, "adapter \"%s\" is defined twice", ad->ad_id);
			goto fail;
		}
	if (config_adapter_seal(sn, al->al_conf, ad, err, errlen) != 0)
		goto fail;
	if ((na = reallocarray(sn->sn_adapters, sn->sn_nadapters + 1, sizeof(*na))) == NULL)
		goto fail;
	sn->sn_adapters = na;
	sn->sn_adapters[sn->sn_nadapters++] = ad;
	return 0;
fail:
	adapter_free(ad);
	return -1;
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
	free(sn);
}

/*
 * Registry entries (registry.c) override the files: a stored version
 * replaces the file's spec of the same id, and a disabled adapter stays
 * disabled whatever the files say.
 */
static int
config_reg_policy(struct snapshot *sn, const char *id, const struct reg_head *h,
    const uint8_t *spec, size_t len, char *err, size_t errlen)
{
	msgpack_zone	 z;
	msgpack_object	 o;
	struct policy	*po = NULL;
	size_t		 i;
	int		 ret = -1;

	if (spec == NULL)
		return 0;
	msgpack_zone_init(&z, 8192);
	if (mpk_unpack(spec, len, &z, &o) != 0) {
		snprintf(err, errlen, "the stored spec is not msgpack");
		goto done;
	}
	if (policy_parse(&o, &po, err, errlen) != 0)
		goto done;
	if (strcmp(po->po_bundle, id) != 0) {
		snprintf(err, errlen, "the spec is for bundle \"%s\"", po->po_bundle);
		goto done;
	}
	po->po_version = h->rh_version;
	for (i = 0; i < sn->sn_npolicies; i++)
		if (strcmp(sn->sn_policies[i]->po_bundle, id) == 0)
			break;
	if (i == sn->sn_npolicies) {
		struct policy **np;

		if ((np = reallocarray(sn->sn_policies, i + 1, sizeof(*np))) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto done;
		}
		sn->sn_policies = np;
		sn->sn_npolicies++;
	} else
		policy_free(sn->sn_policies[i]);
	sn->sn_policies[i] = po;
	po = NULL;
	ret = 0;
done:
	policy_free(po);
	msgpack_zone_destroy(&z);
	return ret;
}

static int
config_reg_adapter(struct snapshot *sn, const struct gw_config *gc, const char *id,
    const struct reg_head *h, const uint8_t *spec, size_t len, char *err, size_t errlen)
{
	msgpack_zone	 z;
	msgpack_object	 o;
	struct adapter	*ad = NULL;
	size_t		 i;
	int		 ret = -1;

	for (i = 0; i < sn->sn_nadapters; i++)
		if (strcmp(sn->sn_adapters[i]->ad_id, id) == 0)
			break;
	if (spec == NULL) {
		/* A file adapter disabled through the API. */
		if (i < sn->sn_nadapters) {
			if (strcmp(sn->sn_adapters[i]->ad_dept, h->rh_dept) != 0) {
				snprintf(err, errlen, "the file's adapter belongs to %s, the "
				    "registry's to %s", sn->sn_adapters[i]->ad_dept, h->rh_dept);
				return -1;
			}
			sn->sn_adapters[i]->ad_disabled = h->rh_disabled;
			sn->sn_adapters[i]->ad_version = h->rh_version;
		}
		return 0;
	}
	msgpack_zone_init(&z, 8192);
	if (mpk_unpack(spec, len, &z, &o) != 0) {
		snprintf(err, errlen, "the stored spec is not msgpack");
		goto done;
	}
	if (adapter_parse(&o, &ad, err, errlen) != 0)
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
	if (i == sn->sn_nadapters) {
		struct adapter **na;

		if ((na = reallocarray(sn->sn_adapters, i + 1, sizeof(*na))) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto done;
		}
		sn->sn_adapters = na;
		sn->sn_nadapters++;
	} else
		adapter_free(sn->sn_adapters[i]);
	sn->sn_adapters[i] = ad;
	ad = NULL;
	ret = 0;
done:
	if (ad != NULL)
		adapter_free(ad);
	msgpack_zone_destroy(&z);
	return ret;
}

struct reg_load {
	struct snapshot		*rl_sn;
	const struct gw_config	*rl_conf;
	enum reg_kind		 rl_kind;
};

/*
 * A stored entry that no longer loads (a seal certificate was removed, a
 * parser grew stricter) must not keep the daemon from starting; its id is
 * left out, and a file adapter of the same id is disabled rather than
 * brought back.
 */
static int
config_reg_one(void *arg, const char *id, const struct reg_head *h, const uint8_t *spec,
    size_t len)
{
	struct reg_load	*rl = arg;
	char		 why[384];
	size_t		 i;
	int		 rc;

	why[0] = '\0';
	if (rl->rl_kind == REG_POLICY)
		rc = config_reg_policy(rl->rl_sn, id, h, spec, len, why, sizeof(why));
	else
		rc = config_reg_adapter(rl->rl_sn, rl->rl_conf, id, h, spec, len, why,
		    sizeof(why));
	if (rc == 0)
		return 0;
	log_warnx("registry: %s \"%s\" version %llu is left out: %s",
	    rl->rl_kind == REG_POLICY ? "policy" : "adapter", id,
	    (unsigned long long)h->rh_version, why);
	if (rl->rl_kind == REG_ADAPTER)
		for (i = 0; i < rl->rl_sn->sn_nadapters; i++)
			if (strcmp(rl->rl_sn->sn_adapters[i]->ad_id, id) == 0)
				rl->rl_sn->sn_adapters[i]->ad_disabled = true;
	return 0;
}

struct snapshot *
snapshot_load(const struct gw_config *gc, char *err, size_t errlen)
{
	return snapshot_load_with(gc, NULL, err, errlen);
}

struct snapshot *
snapshot_load_with(const struct gw_config *gc, const struct reg_change *chg, char *err,
    size_t errlen)
{
	struct snapshot		*sn;
	struct adapter_load	 al;
	struct reg_load		 rl;
	struct registry		*rg;
	char			 why[384];
	int			 rc;

	err[0] = '\0';
	if ((sn = calloc(1, sizeof(*sn))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sn->sn_refs = 1;
	if ((sn->sn_trust = trust_load(gc->gc_certs, err, errlen)) == NULL)
		goto fail;
	if (config_each_json(gc->gc_policies, config_add_policy, sn, err, errlen) != 0)
		goto fail;
	al.al_sn = sn;
	al.al_conf = gc;
	if (config_each_json(gc->gc_adapters, config_add_adapter, &al, err, errlen) != 0)
		goto fail;
	if ((rg = registry_get(gc->gc_data, err, errlen)) == NULL)
		goto fail;
	rl.rl_sn = sn;
	rl.rl_conf = gc;
	rl.rl_kind = REG_POLICY;
	if (registry_each(rg, REG_POLICY, config_reg_one, &rl, err, errlen) != 0)
		goto fail;
	rl.rl_kind = REG_ADAPTER;
	if (registry_each(rg, REG_ADAPTER, config_reg_one, &rl, err, errlen) != 0)
		goto fail;
	if (chg != NULL) {
		why[0] = '\0';
		if (chg->rc_kind == REG_POLICY)
			rc = config_reg_policy(sn, chg->rc_id, chg->rc_head, chg->rc_spec,
			    chg->rc_spec_len, why, sizeof(why));
		else
			rc = config_reg_adapter(sn, gc, chg->rc_id, chg->rc_head, chg->rc_spec,
			    chg->rc_spec_len, why, sizeof(why));
		if (rc != 0) {
			snprintf(err, errlen, "%s", why[0] != '\0' ? why : "out of memory");
			goto fail;
		}
	}
	return sn;
fail:
	snapshot_free(sn);
	return NULL;
}

void
snapshot_ref(struct snapshot *sn)
{
	sn->sn_refs++;
}

void
snapshot_unref(struct snapshot *sn)
{
	if (sn != NULL && --sn->sn_refs == 0)
		snapshot_free(sn);
}

const struct policy *
snapshot_policy(const struct snapshot *sn, const char *bundle)
{
	size_t	i;

	for (i = 0; i < sn->sn_npolicies; i++)
		if (strcmp(sn->sn_policies[i]->po_bundle, bundle) == 0)
			return sn->sn_policies[i];
	return NULL;
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
	size_t	i;

	for (i = 0; i < sn->sn_nadapters; i++)
		if (strcmp(sn->sn_adapters[i]->ad_id, id) == 0)
			return sn->sn_adapters[i];
	return NULL;
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
