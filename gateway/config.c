/*
 * config.c - loading the configuration snapshot (trust, policies, adapters,
 * seal keys) from the directories named on the command line.
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
	if (config_add_seal(sn, al->al_conf, ad->ad_seal, err, errlen) != 0)
		goto fail;
	if (strcmp(snapshot_seal(sn, ad->ad_seal)->sk_dept, ad->ad_dept) != 0) {
		snprintf(err, errlen, "adapter \"%s\" of %s names seal \"%s\" of another "
		    "department", ad->ad_id, ad->ad_dept, ad->ad_seal);
		goto fail;
	}
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

struct snapshot *
snapshot_load(const struct gw_config *gc, char *err, size_t errlen)
{
	struct snapshot		*sn;
	struct adapter_load	 al;

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

const struct seal_key *
snapshot_seal(const struct snapshot *sn, const char *id)
{
	size_t	i;

	for (i = 0; i < sn->sn_nseals; i++)
		if (strcmp(sn->sn_seals[i].sk_id, id) == 0)
			return &sn->sn_seals[i];
	return NULL;
}
