/*
 * registry.c - adapters and policies registered through the API
 * (docs/formats.md, docs/consent.md), kept in their own LMDB environment
 * under the data directory (DATA/registry).  Every version of every spec
 * is kept; a "head" per id says which version is current and whether the
 * id is disabled.
 *
 * Layout:
 *   versions: kind byte, id, NUL, version (8 bytes big-endian) -> spec
 *             (canonical msgpack, as adapter_parse / policy_parse store it)
 *   heads:    kind byte, id -> canonical msgpack map {"version", "disabled",
 *             "dept", "principal", "t_ms"}
 *
 * Writes are rare (one per API change) and the HTTP front serializes them;
 * reads come from the snapshot loader and the registry API's checks, on
 * any worker (MDB_NOTLS).
 *
 * An id keeps its newest rg_keep versions (registry_keep): storing one more
 * removes the oldest in the same transaction.  The journal's record of
 * every change holds the SHA-256 of its spec, so a removed version can
 * still be matched with its change; only its bytes are gone.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "gateway.h"

#define REG_MAP_SIZE	((size_t)1 << 30)	/* sparse; bounds what the API may store */
#define REG_KEY_MAX	(1 + LB_ID_MAX + 1 + 8)
#define REG_MARGIN	((size_t)1 << 20)	/* room kept free beyond a change */

struct registry {
	MDB_env		*rg_env;
	MDB_dbi		 rg_versions;
	MDB_dbi		 rg_heads;
	atomic_uint	 rg_keep;	/* versions kept per id; 0: all (SIGHUP may change it) */
	char		 rg_dir[PATH_MAX];
};

static int
registry_kind_byte(enum reg_kind k)
{
	return k == REG_ADAPTER ? 'a' : 'p';
}

/* Key of a head: kind byte and id (no NUL). */
static int
registry_head_key(enum reg_kind k, const char *id, uint8_t *buf, MDB_val *key)
{
	size_t	n = strlen(id);

	if (n == 0 || n >= LB_ID_MAX)
		return -1;
	buf[0] = (uint8_t)registry_kind_byte(k);
	memcpy(buf + 1, id, n);
	key->mv_data = buf;
	key->mv_size = 1 + n;
	return 0;
}

static int
registry_version_key(enum reg_kind k, const char *id, uint64_t version, uint8_t *buf,
    MDB_val *key)
{
	size_t	n = strlen(id);
	int	i;

	if (n == 0 || n >= LB_ID_MAX)
		return -1;
	buf[0] = (uint8_t)registry_kind_byte(k);
	memcpy(buf + 1, id, n);
	buf[1 + n] = '\0';
	for (i = 0; i < 8; i++)
		buf[2 + n + i] = (uint8_t)(version >> (56 - 8 * i));
	key->mv_data = buf;
	key->mv_size = 2 + n + 8;
	return 0;
}

/*
 * Walks the stored versions of id, oldest first, in txn: their number and
 * bytes, and the bytes of the oldest drop of them, which are deleted when
 * del is set (txn is then a write transaction).
 */
static int
registry_versions(MDB_txn *txn, MDB_dbi dbi, enum reg_kind k, const char *id, size_t drop,
    bool del, size_t *n, uint64_t *bytes, uint64_t *dropped)
{
	MDB_cursor	*cur = NULL;
	MDB_val		 key, v;
	uint8_t		 kb[REG_KEY_MAX];
	size_t		 plen;
	int		 rc;

	*n = 0;
	*bytes = *dropped = 0;
	/* Version 0 is never stored: its key is where the id's versions begin. */
	if (registry_version_key(k, id, 0, kb, &key) != 0)
		return 0;
	plen = key.mv_size - 8;
	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		goto done;
	for (rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
		if (key.mv_size != plen + 8 || memcmp(key.mv_data, kb, plen) != 0)
			break;
		if (*n < drop) {
			*dropped += v.mv_size;
			/* The cursor then stands on the next version, which MDB_NEXT returns. */
			if (del && (rc = mdb_cursor_del(cur, 0)) != 0)
				goto done;
		}
		*bytes += v.mv_size;
		(*n)++;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
done:
	if (cur != NULL)
		mdb_cursor_close(cur);
	return rc;
}

/*
 * Removes in txn the oldest versions of id beyond rg_keep.  Called right
 * after a new version is stored: it is the newest, and stays.
 */
static int
registry_prune(struct registry *rg, MDB_txn *txn, enum reg_kind k, const char *id)
{
	uint64_t	bytes, dropped;
	size_t		n;
	unsigned	keep = atomic_load(&rg->rg_keep);
	int		rc;

	if (keep == 0)
		return 0;
	if ((rc = registry_versions(txn, rg->rg_versions, k, id, 0, false, &n, &bytes,
	    &dropped)) != 0 || n <= keep)
		return rc;
	return registry_versions(txn, rg->rg_versions, k, id, n - keep, true, &n, &bytes,
	    &dropped);
}

void
registry_keep(struct registry *rg, unsigned versions)
{
	atomic_store(&rg->rg_keep, versions);
}

void
registry_close(struct registry *rg)
{
	if (rg == NULL)
		return;
	if (rg->rg_env != NULL)
		mdb_env_close(rg->rg_env);
	free(rg);
}

struct registry *
registry_open(const char *datadir, char *err, size_t errlen)
{
	struct registry	*rg;
	MDB_txn		*txn = NULL;
	int		 rc;

	if ((rg = calloc(1, sizeof(*rg))) == NULL) {
		snprintf(err, errlen, "registry: out of memory");
		return NULL;
	}
	if (mkdir(datadir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "registry: mkdir %s: %s", datadir, strerror(errno));
		goto fail;
	}
	if (path_join(rg->rg_dir, sizeof(rg->rg_dir), datadir, REGISTRY_DIR) != 0) {
		snprintf(err, errlen, "registry: %s: path too long", datadir);
		goto fail;
	}
	if (mkdir(rg->rg_dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "registry: mkdir %s: %s", rg->rg_dir, strerror(errno));
		goto fail;
	}
	if ((rc = mdb_env_create(&rg->rg_env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(rg->rg_env, 2)) != 0 ||
	    (rc = mdb_env_set_mapsize(rg->rg_env, REG_MAP_SIZE)) != 0 ||
	    (rc = mdb_env_open(rg->rg_env, rg->rg_dir, MDB_NOTLS, 0600)) != 0 ||
	    (rc = mdb_txn_begin(rg->rg_env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "versions", MDB_CREATE, &rg->rg_versions)) != 0 ||
	    (rc = mdb_dbi_open(txn, "heads", MDB_CREATE, &rg->rg_heads)) != 0) {
		snprintf(err, errlen, "registry: %s: %s", rg->rg_dir, mdb_strerror(rc));
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		snprintf(err, errlen, "registry: %s: %s", rg->rg_dir, mdb_strerror(rc));
		goto fail;
	}
	return rg;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	registry_close(rg);
	return NULL;
}

/* Decodes a stored head; -1 when it is damaged. */
static int
registry_head_decode(const MDB_val *v, struct reg_head *h)
{
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*d;
	int			 ret = -1;

	memset(h, 0, sizeof(*h));
	msgpack_zone_init(&z, 512);
	if (mpk_unpack(v->mv_data, v->mv_size, &z, &o) != 0 ||
	    mpk_get_u64(&o, "version", &h->rh_version) != 0 ||
	    mpk_get_u64(&o, "t_ms", &h->rh_t_ms) != 0 ||
	    mpk_get_str(&o, "dept", h->rh_dept, sizeof(h->rh_dept)) != 0 ||
	    mpk_get_str(&o, "principal", h->rh_principal, sizeof(h->rh_principal)) != 0 ||
	    (d = mpk_get(&o, "disabled")) == NULL || d->type != MSGPACK_OBJECT_BOOLEAN)
		goto done;
	h->rh_disabled = d->via.boolean;
	ret = 0;
done:
	msgpack_zone_destroy(&z);
	return ret;
}

int
registry_head(struct registry *rg, enum reg_kind k, const char *id, struct reg_head *h,
    bool *found)
{
	MDB_txn	*txn;
	MDB_val	 key, v;
	uint8_t	 kb[REG_KEY_MAX];
	int	 rc, ret = -1;

	*found = false;
	if (registry_head_key(k, id, kb, &key) != 0)
		return 0;		/* no id that long was ever stored */
	if (mdb_txn_begin(rg->rg_env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	rc = mdb_get(txn, rg->rg_heads, &key, &v);
	if (rc == MDB_NOTFOUND)
		ret = 0;
	else if (rc == 0 && registry_head_decode(&v, h) == 0) {
		*found = true;
		ret = 0;
	}
	mdb_txn_abort(txn);
	return ret;
}

/*
 * Calls fn for every head of kind k in txn, in id byte order, until fn
 * returns non-zero; fn says why in err then.  -1 with a sentence in err
 * when a head is damaged or LMDB fails.
 */
typedef int	(*registry_head_fn)(struct registry *, MDB_txn *, void *arg, const char *id,
		    const struct reg_head *, char *err, size_t errlen);

static int
registry_heads(struct registry *rg, MDB_txn *txn, enum reg_kind k, registry_head_fn fn,
    void *arg, char *err, size_t errlen)
{
	MDB_cursor	*cur = NULL;
	MDB_val		 key, v;
	struct reg_head	 h;
	char		 id[LB_ID_MAX];
	uint8_t		 kind = (uint8_t)registry_kind_byte(k);
	int		 rc, ret = -1;

	if ((rc = mdb_cursor_open(txn, rg->rg_heads, &cur)) != 0) {
		snprintf(err, errlen, "registry: %s", mdb_strerror(rc));
		goto done;
	}
	key.mv_data = &kind;
	key.mv_size = 1;
	for (rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
		if (key.mv_size < 2 || ((uint8_t *)key.mv_data)[0] != kind)
			break;
		if (key.mv_size - 1 >= sizeof(id) || registry_head_decode(&v, &h) != 0) {
			snprintf(err, errlen, "registry: a stored head is damaged");
			goto done;
		}
		memcpy(id, (uint8_t *)key.mv_data + 1, key.mv_size - 1);
		id[key.mv_size - 1] = '\0';
		if (fn(rg, txn, arg, id, &h, err, errlen) != 0)
			goto done;
		/* The cursor still sits on this head; MDB_NEXT goes on from it. */
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		snprintf(err, errlen, "registry: %s", mdb_strerror(rc));
		goto done;
	}
	ret = 0;
done:
	if (cur != NULL)
		mdb_cursor_close(cur);
	return ret;
}

/* registry_each's caller, and its walk's kind. */
struct registry_each_arg {
	enum reg_kind		 ea_kind;
	registry_each_fn	 ea_fn;
	void			*ea_arg;
};

static int
registry_each_head(struct registry *rg, MDB_txn *txn, void *arg, const char *id,
    const struct reg_head *h, char *err, size_t errlen)
{
	struct registry_each_arg	*ea = arg;
	MDB_val				 key, sv;
	uint8_t				 kb[REG_KEY_MAX];
	int				 rc;

	/* A disabled file adapter has a head but no stored spec. */
	sv.mv_data = NULL;
	sv.mv_size = 0;
	if (registry_version_key(ea->ea_kind, id, h->rh_version, kb, &key) != 0) {
		snprintf(err, errlen, "registry: a stored id is damaged");
		return -1;
	}
	rc = mdb_get(txn, rg->rg_versions, &key, &sv);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		snprintf(err, errlen, "registry: %s", mdb_strerror(rc));
		return -1;
	}
	if (ea->ea_fn(ea->ea_arg, id, h, sv.mv_data, sv.mv_size) != 0) {
		snprintf(err, errlen, "registry: stopped at \"%s\"", id);
		return -1;
	}
	return 0;
}

int
registry_each(struct registry *rg, enum reg_kind k, registry_each_fn fn, void *arg,
    char *err, size_t errlen)
{
	struct registry_each_arg	 ea = { k, fn, arg };
	MDB_txn				*txn;
	int				 rc, ret;

	if ((rc = mdb_txn_begin(rg->rg_env, NULL, MDB_RDONLY, &txn)) != 0) {
		snprintf(err, errlen, "registry: %s", mdb_strerror(rc));
		return -1;
	}
	ret = registry_heads(rg, txn, k, registry_each_head, &ea, err, errlen);
	mdb_txn_abort(txn);
	return ret;
}

/* registry_usage's question and answer. */
struct registry_usage_arg {
	enum reg_kind		 ua_kind;
	const char		*ua_dept;
	const char		*ua_id;
	struct reg_usage	*ua_usage;
};

static int
registry_usage_head(struct registry *rg, MDB_txn *txn, void *arg, const char *id,
    const struct reg_head *h, char *err, size_t errlen)
{
	struct registry_usage_arg	*ua = arg;
	uint64_t			 bytes, dropped;
	size_t				 n;
	unsigned			 keep = atomic_load(&rg->rg_keep);
	int				 rc;

	if (strcmp(h->rh_dept, ua->ua_dept) != 0)
		return 0;
	if ((rc = registry_versions(txn, rg->rg_versions, ua->ua_kind, id, 0, false, &n, &bytes,
	    &dropped)) != 0)
		goto fail;
	ua->ua_usage->ru_ids++;
	ua->ua_usage->ru_bytes += bytes;
	/* One more version of id removes the oldest beyond rg_keep - 1. */
	if (strcmp(id, ua->ua_id) == 0 && keep > 0 && n >= keep) {
		if ((rc = registry_versions(txn, rg->rg_versions, ua->ua_kind, id,
		    n - keep + 1, false, &n, &bytes, &dropped)) != 0)
			goto fail;
		ua->ua_usage->ru_freed = dropped;
	}
	return 0;
fail:
	snprintf(err, errlen, "registry: %s", mdb_strerror(rc));
	return -1;
}

int
registry_usage(struct registry *rg, enum reg_kind k, const char *dept, const char *id,
    struct reg_usage *u)
{
	struct registry_usage_arg	 ua = { k, dept, id, u };
	MDB_txn				*txn;
	char				 err[128];
	int				 ret;

	memset(u, 0, sizeof(*u));
	if (mdb_txn_begin(rg->rg_env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	if ((ret = registry_heads(rg, txn, k, registry_usage_head, &ua, err, sizeof(err))) != 0)
		log_warnx("%s", err);
	mdb_txn_abort(txn);
	return ret;
}

bool
registry_has_room(struct registry *rg, size_t speclen, size_t reserve)
{
	MDB_envinfo	info;
	MDB_stat	st;
	size_t		used, need;

	if (mdb_env_info(rg->rg_env, &info) != 0 || mdb_env_stat(rg->rg_env, &st) != 0)
		return false;
	used = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
	/*
	 * A copy-on-write commit may touch a page per tree level besides the
	 * value's own pages, and free pages are reused only once no reader
	 * holds them: ask for twice the spec and a margin.
	 */
	need = 2 * speclen + REG_MARGIN + reserve;
	return used < info.me_mapsize && info.me_mapsize - used >= need;
}

int
registry_put(struct registry *rg, enum reg_kind k, const char *id, const struct reg_head *h,
    const uint8_t *spec, size_t speclen, char *err, size_t errlen)
{
	msgpack_zone	 z;
	struct mpk_map	 m;
	msgpack_sbuffer	 sb;
	MDB_txn		*txn = NULL;
	MDB_val		 key, v;
	uint8_t		 kb[REG_KEY_MAX];
	int		 rc = 0, ret = -1;

	msgpack_zone_init(&z, 512);
	msgpack_sbuffer_init(&sb);
	mpk_map_init(&m, &z, 5);
	mpk_map_put(&m, "version", mpk_uint(h->rh_version));
	mpk_map_put(&m, "disabled", mpk_bool(h->rh_disabled));
	mpk_map_put(&m, "dept", mpk_str(h->rh_dept));
	mpk_map_put(&m, "principal", mpk_str(h->rh_principal));
	mpk_map_put(&m, "t_ms", mpk_uint(h->rh_t_ms));
	if (mpk_pack(&m.mm_obj, &sb, false) != 0) {
		snprintf(err, errlen, "registry: cannot encode the head of \"%s\"", id);
		goto done;
	}
	if ((rc = mdb_txn_begin(rg->rg_env, NULL, 0, &txn)) != 0)
		goto lmdb;
	if (spec != NULL) {
		if (registry_version_key(k, id, h->rh_version, kb, &key) != 0)
			goto badid;
		v.mv_data = (void *)(uintptr_t)spec;
		v.mv_size = speclen;
		/* A version is written once; NOOVERWRITE catches a reused number. */
		if ((rc = mdb_put(txn, rg->rg_versions, &key, &v, MDB_NOOVERWRITE)) != 0)
			goto lmdb;
		if ((rc = registry_prune(rg, txn, k, id)) != 0)
			goto lmdb;
	}
	if (registry_head_key(k, id, kb, &key) != 0)
		goto badid;
	v.mv_data = sb.data;
	v.mv_size = sb.size;
	if ((rc = mdb_put(txn, rg->rg_heads, &key, &v, 0)) != 0)
		goto lmdb;
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0)
		goto lmdb;
	ret = 0;
	goto done;
badid:
	snprintf(err, errlen, "registry: id \"%s\" is empty or too long", id);
	goto done;
lmdb:
	snprintf(err, errlen, "registry: %s", mdb_strerror(rc));
done:
	if (txn != NULL)
		mdb_txn_abort(txn);
	msgpack_sbuffer_destroy(&sb);
	msgpack_zone_destroy(&z);
	return ret;
}
