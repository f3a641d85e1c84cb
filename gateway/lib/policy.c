/*
 * policy.c - bundle policies (docs/consent.md): who may ask for a bundle and how
 * often (the rate limit), which items it contains, which fields of each
 * item leave the gateway, how sure the face authentication must be, and
 * which records prove a guardian's relation.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lianban.h"

static bool
policy_id_ok(const char *s)
{
	const char	*p;

	if (*s == '\0')
		return false;
	for (p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		    *p == '-' || *p == '.'))
			return false;
	return true;
}

/* Copies an array of short strings; -1 with err set on any problem. */
static int
policy_strings(const msgpack_object *o, const char *what, char *dst, size_t width,
    size_t max, size_t *n, char *err, size_t errlen)
{
	uint32_t	i;

	if (o == NULL || o->type != MSGPACK_OBJECT_ARRAY) {
		snprintf(err, errlen, "%s must be an array of strings", what);
		return -1;
	}
	if (o->via.array.size > max) {
		snprintf(err, errlen, "%s has more than %zu entries", what, max);
		return -1;
	}
	for (i = 0; i < o->via.array.size; i++)
		if (mpk_obj_str(&o->via.array.ptr[i], dst + i * width, width) != 0) {
			snprintf(err, errlen, "%s[%u] must be a string shorter than %zu bytes",
			    what, i, width);
			return -1;
		}
	*n = o->via.array.size;
	return 0;
}

/*
 * An item's "verify": {"fields": {"FIELD": ["eq", "in", ...]}}, the fields a
 * verification may ask about and the operators allowed on each.  Absent:
 * nothing of the item may be verified.
 */
static int
policy_parse_verify(const msgpack_object *o, struct policy_item *pi, char *err, size_t errlen)
{
	const msgpack_object	*fields, *ops;
	char			 op[16];
	uint32_t		 i, j;
	int			 n;

	if (o == NULL)
		return 0;
	if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size != 1 ||
	    (fields = mpk_get(o, "fields")) == NULL || fields->type != MSGPACK_OBJECT_MAP ||
	    fields->via.map.size > POLICY_MAX_FIELDS) {
		snprintf(err, errlen, "item \"%s\" verify must be {\"fields\": {FIELD: [OP, ...]}} "
		    "with at most %d fields", pi->pi_item, POLICY_MAX_FIELDS);
		return -1;
	}
	for (i = 0; i < fields->via.map.size; i++) {
		if (mpk_obj_str(&fields->via.map.ptr[i].key, pi->pi_vfields[i],
		    sizeof(pi->pi_vfields[i])) != 0 || pi->pi_vfields[i][0] == '\0') {
			snprintf(err, errlen, "item \"%s\" verify names a field that is not a "
			    "short string", pi->pi_item);
			return -1;
		}
		for (j = 0; j < i; j++)
			if (strcmp(pi->pi_vfields[j], pi->pi_vfields[i]) == 0) {
				snprintf(err, errlen, "item \"%s\" verify names field \"%s\" "
				    "twice", pi->pi_item, pi->pi_vfields[i]);
				return -1;
			}
		ops = &fields->via.map.ptr[i].val;
		if (ops->type != MSGPACK_OBJECT_ARRAY || ops->via.array.size == 0) {
			snprintf(err, errlen, "item \"%s\" verify field \"%s\" needs a non-empty "
			    "list of operators", pi->pi_item, pi->pi_vfields[i]);
			return -1;
		}
		for (j = 0; j < ops->via.array.size; j++) {
			if (mpk_obj_str(&ops->via.array.ptr[j], op, sizeof(op)) != 0 ||
			    (n = predicate_op_from_name(op)) < 0) {
				snprintf(err, errlen, "item \"%s\" verify field \"%s\": operators "
				    "are eq, ne, in, ge, le and age_at_least", pi->pi_item,
				    pi->pi_vfields[i]);
				return -1;
			}
			pi->pi_vops[i] |= 1u << n;
		}
	}
	pi->pi_nvfields = fields->via.map.size;
	return 0;
}

static int
policy_parse_item(const msgpack_object *o, struct policy_item *pi, char *err, size_t errlen)
{
	char		what[LB_ITEM_MAX + 32];
	uint32_t	i;

	if (o->type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "items entries must be objects");
		return -1;
	}
	for (i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;

		if (!mpk_str_eq(k, "item") && !mpk_str_eq(k, "dept") && !mpk_str_eq(k, "fields") &&
		    !mpk_str_eq(k, "verify")) {
			snprintf(err, errlen, "items entries take only item, dept and fields, "
			    "and optionally verify");
			return -1;
		}
	}
	if (mpk_get_str(o, "item", pi->pi_item, sizeof(pi->pi_item)) != 0 ||
	    !policy_id_ok(pi->pi_item)) {
		snprintf(err, errlen, "items entry without a valid \"item\" name");
		return -1;
	}
	if (mpk_get_str(o, "dept", pi->pi_dept, sizeof(pi->pi_dept)) != 0 ||
	    !policy_id_ok(pi->pi_dept)) {
		snprintf(err, errlen, "item \"%s\" needs the \"dept\" that owns it", pi->pi_item);
		return -1;
	}
	snprintf(what, sizeof(what), "item \"%s\" fields", pi->pi_item);
	if (policy_strings(mpk_get(o, "fields"), what, &pi->pi_fields[0][0],
	    LB_ITEM_MAX, POLICY_MAX_FIELDS, &pi->pi_nfields, err, errlen) != 0)
		return -1;
	return policy_parse_verify(mpk_get(o, "verify"), pi, err, errlen);
}

static int
policy_parse_assurance(const msgpack_object *o, struct policy *po, char *err, size_t errlen)
{
	uint32_t	i;

	if (o == NULL || o->type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "\"assurance\" must be an object with amr, "
		    "min_liveness and min_match");
		return -1;
	}
	for (i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;

		if (!mpk_str_eq(k, "amr") && !mpk_str_eq(k, "min_liveness") &&
		    !mpk_str_eq(k, "min_match")) {
			snprintf(err, errlen, "assurance takes only amr, min_liveness and min_match");
			return -1;
		}
	}
	if (policy_strings(mpk_get(o, "amr"), "assurance.amr", &po->po_amr[0][0],
	    sizeof(po->po_amr[0]), POLICY_MAX_AMR, &po->po_namr, err, errlen) != 0)
		return -1;
	if (mpk_get_i64(o, "min_liveness", &po->po_min_liveness) != 0 ||
	    mpk_get_i64(o, "min_match", &po->po_min_match) != 0 ||
	    po->po_min_liveness < 0 || po->po_min_liveness > 1000 ||
	    po->po_min_match < 0 || po->po_min_match > 1000) {
		snprintf(err, errlen, "assurance.min_liveness and min_match must be "
		    "integers from 0 to 1000");
		return -1;
	}
	return 0;
}

/*
 * A relation section, "guardian", "legal_rep" or "agent" (name):
 * {"allowed": bool, "proofs": [{"item", "fields", "dept"?}]}.  One parser
 * for all three, so that every relation is proven the same way.  An
 * allowed relation without proofs parses, but no token claiming it can
 * pass: a relation is never taken on the token's word.
 */
static int
policy_parse_relation(const msgpack_object *g, const char *name, struct policy_relation *rl,
    char *err, size_t errlen)
{
	const msgpack_object	*o, *p;
	struct policy_proof	*pp;
	char			 what[LB_ITEM_MAX + 32];
	uint32_t		 i, k;

	if (g->type != MSGPACK_OBJECT_MAP ||
	    (o = mpk_get(g, "allowed")) == NULL || o->type != MSGPACK_OBJECT_BOOLEAN) {
		snprintf(err, errlen, "\"%s\" must be {\"allowed\": true|false, "
		    "\"proofs\": [...]}", name);
		return -1;
	}
	for (i = 0; i < g->via.map.size; i++)
		if (!mpk_str_eq(&g->via.map.ptr[i].key, "allowed") &&
		    !mpk_str_eq(&g->via.map.ptr[i].key, "proofs")) {
			snprintf(err, errlen, "%s takes only allowed and proofs", name);
			return -1;
		}
	rl->rl_allowed = o->via.boolean;
	if ((o = mpk_get(g, "proofs")) == NULL)
		return 0;
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > POLICY_MAX_PROOFS) {
		snprintf(err, errlen, "%s.proofs must be an array of at most %d records",
		    name, POLICY_MAX_PROOFS);
		return -1;
	}
	for (i = 0; i < o->via.array.size; i++) {
		p = &o->via.array.ptr[i];
		pp = &rl->rl_proofs[i];
		if (p->type != MSGPACK_OBJECT_MAP) {
			snprintf(err, errlen, "%s.proofs entries must be objects", name);
			return -1;
		}
		for (k = 0; k < p->via.map.size; k++)
			if (!mpk_str_eq(&p->via.map.ptr[k].key, "item") &&
			    !mpk_str_eq(&p->via.map.ptr[k].key, "fields") &&
			    !mpk_str_eq(&p->via.map.ptr[k].key, "dept")) {
				snprintf(err, errlen, "%s.proofs entries take only item, "
				    "fields and dept", name);
				return -1;
			}
		if (mpk_get_str(p, "item", pp->pp_item, sizeof(pp->pp_item)) != 0 ||
		    !policy_id_ok(pp->pp_item)) {
			snprintf(err, errlen, "%s.proofs[%u] needs a valid \"item\"", name, i);
			return -1;
		}
		if (mpk_get(p, "dept") != NULL &&
		    (mpk_get_str(p, "dept", pp->pp_dept, sizeof(pp->pp_dept)) != 0 ||
		    !policy_id_ok(pp->pp_dept))) {
			snprintf(err, errlen, "%s.proofs[%u].dept must be a department id",
			    name, i);
			return -1;
		}
		snprintf(what, sizeof(what), "%s proof \"%s\" fields", name, pp->pp_item);
		if (policy_strings(mpk_get(p, "fields"), what, &pp->pp_fields[0][0],
		    LB_ITEM_MAX, sizeof(pp->pp_fields) / sizeof(pp->pp_fields[0]),
		    &pp->pp_nfields, err, errlen) != 0)
			return -1;
		if (pp->pp_nfields == 0) {
			snprintf(err, errlen, "%s proof \"%s\" names no field", name,
			    pp->pp_item);
			return -1;
		}
		rl->rl_nproofs++;
	}
	return 0;
}

/* "rate_limit": {"per_second": n, "burst": m}, 1 <= n <= m <= 1000000. */
static int
policy_parse_rate(const msgpack_object *o, struct policy *po, char *err, size_t errlen)
{
	uint64_t	rate, burst;
	uint32_t	i;

	if (o->type != MSGPACK_OBJECT_MAP)
		goto bad;
	for (i = 0; i < o->via.map.size; i++)
		if (!mpk_str_eq(&o->via.map.ptr[i].key, "per_second") &&
		    !mpk_str_eq(&o->via.map.ptr[i].key, "burst"))
			goto bad;
	if (mpk_get_u64(o, "per_second", &rate) != 0 || rate == 0 || rate > 1000000)
		goto bad;
	if (mpk_get(o, "burst") == NULL)
		burst = rate;
	else if (mpk_get_u64(o, "burst", &burst) != 0 || burst < 1 || burst > 1000000)
		goto bad;
	po->po_rate_per_s = (uint32_t)rate;
	po->po_rate_burst = (uint32_t)burst;
	return 0;
bad:
	snprintf(err, errlen, "\"rate_limit\" must be {\"per_second\": 1..1000000, "
	    "\"burst\": 1..1000000}");
	return -1;
}

int
policy_parse(const msgpack_object *spec, struct policy **out, char *err, size_t errlen)
{
	static const char *const known[] = { "bundle", "name", "purpose", "consumers",
	    "assurance", "guardian", "legal_rep", "agent", "items", "rate_limit" };
	struct policy		*po;
	const msgpack_object	*o, *g;
	uint32_t		 i;
	size_t			 j, k;
	int			 r;

	*out = NULL;
	if (spec->type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "a policy must be an object");
		return -1;
	}
	for (i = 0; i < spec->via.map.size; i++) {
		for (j = 0; j < sizeof(known) / sizeof(known[0]); j++)
			if (mpk_str_eq(&spec->via.map.ptr[i].key, known[j]))
				break;
		if (j == sizeof(known) / sizeof(known[0])) {
			snprintf(err, errlen, "unknown policy field (known: bundle, name, "
			    "purpose, consumers, assurance, guardian, legal_rep, agent, items, "
			    "rate_limit)");
			return -1;
		}
	}
	if ((po = calloc(1, sizeof(*po))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (mpk_get_str(spec, "bundle", po->po_bundle, sizeof(po->po_bundle)) != 0 ||
	    !policy_id_ok(po->po_bundle)) {
		snprintf(err, errlen, "\"bundle\" must be an id of a-z, 0-9, _ - .");
		goto fail;
	}
	if (mpk_get_str(spec, "name", po->po_name, sizeof(po->po_name)) != 0 ||
	    ((o = mpk_get(spec, "purpose")) != NULL &&
	    mpk_obj_str(o, po->po_purpose, sizeof(po->po_purpose)) != 0)) {
		snprintf(err, errlen, "\"name\" (and \"purpose\", when given) must be "
		    "short strings");
		goto fail;
	}
	if (policy_strings(mpk_get(spec, "consumers"), "consumers", &po->po_consumers[0][0],
	    LB_ID_MAX, POLICY_MAX_CONSUMERS, &po->po_nconsumers, err, errlen) != 0)
		goto fail;
	if (policy_parse_assurance(mpk_get(spec, "assurance"), po, err, errlen) != 0)
		goto fail;
	for (r = 0; r < POLICY_REL__COUNT; r++)
		if ((g = mpk_get(spec, relation_name(r))) != NULL &&
		    policy_parse_relation(g, relation_name(r), &po->po_rel[r], err,
		    errlen) != 0)
			goto fail;
	if ((g = mpk_get(spec, "rate_limit")) != NULL &&
	    policy_parse_rate(g, po, err, errlen) != 0)
		goto fail;
	if ((o = mpk_get(spec, "items")) == NULL || o->type != MSGPACK_OBJECT_ARRAY ||
	    o->via.array.size == 0 || o->via.array.size > LB_MAX_ITEMS) {
		snprintf(err, errlen, "\"items\" must list 1 to %d items", LB_MAX_ITEMS);
		goto fail;
	}
	for (i = 0; i < o->via.array.size; i++) {
		if (policy_parse_item(&o->via.array.ptr[i], &po->po_items[i], err, errlen) != 0)
			goto fail;
		for (k = 0; k < i; k++)
			if (strcmp(po->po_items[k].pi_item, po->po_items[i].pi_item) == 0) {
				snprintf(err, errlen, "item \"%s\" is listed twice",
				    po->po_items[i].pi_item);
				goto fail;
			}
		po->po_nitems++;
	}
	/*
	 * A proof comes from a named department: its own "dept", or the one
	 * the policy names for the item.  Never from whichever department
	 * happens to serve an item of that name.
	 */
	for (r = 0; r < POLICY_REL__COUNT; r++)
		for (i = 0; i < po->po_rel[r].rl_nproofs; i++)
			if (po->po_rel[r].rl_proofs[i].pp_dept[0] == '\0' &&
			    policy_item(po, po->po_rel[r].rl_proofs[i].pp_item) == NULL) {
				snprintf(err, errlen, "%s.proofs[%u] names item \"%s\", which "
				    "the policy does not list: give its \"dept\"",
				    relation_name(r), (unsigned)i,
				    po->po_rel[r].rl_proofs[i].pp_item);
				goto fail;
			}
	if (mpk_pack_alloc(spec, &po->po_spec, &po->po_spec_len) != 0) {
		snprintf(err, errlen, "policy cannot be encoded canonically");
		goto fail;
	}
	*out = po;
	return 0;
fail:
	policy_free(po);
	return -1;
}

void
policy_free(struct policy *po)
{
	if (po == NULL)
		return;
	free(po->po_spec);
	free(po);
}

const struct policy_item *
policy_item(const struct policy *po, const char *item)
{
	size_t	i;

	for (i = 0; i < po->po_nitems; i++)
		if (strcmp(po->po_items[i].pi_item, item) == 0)
			return &po->po_items[i];
	return NULL;
}

/* True when s is one of the n strings of width bytes each that start at rows. */
static bool
policy_has(const char *rows, size_t width, size_t n, const char *s)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strcmp(rows + i * width, s) == 0)
			return true;
	return false;
}

bool
policy_allows_consumer(const struct policy *po, const char *consumer)
{
	return policy_has(&po->po_consumers[0][0], sizeof(po->po_consumers[0]),
	    po->po_nconsumers, consumer);
}

enum lb_err
policy_assurance(const struct policy *po, const char (*amr)[POLICY_AMR_LEN], size_t namr,
    int64_t liveness, int64_t match, char *msg, size_t msglen)
{
	enum lb_err	e = LB_E_ASSURANCE_TOO_LOW;
	size_t		i;

	if (!policy_has(&amr[0][0], sizeof(amr[0]), namr, "face")) {
		snprintf(msg, msglen, "consent was not given by face authentication "
		    "(amr lacks \"face\")");
		goto done;
	}
	for (i = 0; i < po->po_namr; i++)
		if (!policy_has(&amr[0][0], sizeof(amr[0]), namr, po->po_amr[i])) {
			snprintf(msg, msglen, "bundle \"%s\" requires authentication method "
			    "\"%s\"", po->po_bundle, po->po_amr[i]);
			goto done;
		}
	if (liveness < po->po_min_liveness) {
		snprintf(msg, msglen, "liveness score %lld is below the bundle's minimum %lld",
		    (long long)liveness, (long long)po->po_min_liveness);
		goto done;
	}
	if (match < po->po_min_match) {
		snprintf(msg, msglen, "face match score %lld is below the bundle's minimum %lld",
		    (long long)match, (long long)po->po_min_match);
		goto done;
	}
	e = LB_OK;
	msg[0] = '\0';
done:
	return e;
}

const char *
policy_proof_dept(const struct policy *po, const struct policy_proof *pp)
{
	const struct policy_item	*pi;

	if (pp->pp_dept[0] != '\0')
		return pp->pp_dept;
	/* policy_parse made sure the policy names the item's department. */
	if ((pi = policy_item(po, pp->pp_item)) != NULL)
		return pi->pi_dept;
	return NULL;
}

bool
policy_proof_names(const struct policy_proof *pp, const msgpack_object *doc, const char *act)
{
	const msgpack_object	*fields;
	char			 v[LB_SUBJECT_MAX];
	size_t			 i;

	if ((fields = mpk_get(doc, "fields")) == NULL)
		return false;
	for (i = 0; i < pp->pp_nfields; i++)
		if (mpk_get_str(fields, pp->pp_fields[i], v, sizeof(v)) == 0 &&
		    strcmp(v, act) == 0)
			return true;
	return false;
}

static bool
policy_releases(const struct policy_item *pi, const msgpack_object *key)
{
	size_t	i;

	for (i = 0; i < pi->pi_nfields; i++)
		if (mpk_str_eq(key, pi->pi_fields[i]))
			return true;
	return false;
}

msgpack_object
policy_minimize(const struct policy_item *pi, const msgpack_object *doc, msgpack_zone *z)
{
	msgpack_object	out = *doc, fields;
	uint32_t	i, j, n;

	if (doc->type != MSGPACK_OBJECT_MAP)
		return out;
	out.via.map.ptr = mpk_zalloc(z, sizeof(msgpack_object_kv) * (doc->via.map.size + 1));
	for (i = 0; i < doc->via.map.size; i++) {
		out.via.map.ptr[i] = doc->via.map.ptr[i];
		if (!mpk_str_eq(&doc->via.map.ptr[i].key, "fields") ||
		    doc->via.map.ptr[i].val.type != MSGPACK_OBJECT_MAP)
			continue;
		fields = doc->via.map.ptr[i].val;
		n = fields.via.map.size;
		fields.via.map.ptr = mpk_zalloc(z, sizeof(msgpack_object_kv) * (n + 1));
		fields.via.map.size = 0;
		for (j = 0; j < n; j++)
			if (policy_releases(pi, &doc->via.map.ptr[i].val.via.map.ptr[j].key))
				fields.via.map.ptr[fields.via.map.size++] =
				    doc->via.map.ptr[i].val.via.map.ptr[j];
		out.via.map.ptr[i].val = fields;
	}
	return out;
}

/*
 * Token buckets: one per (scope, who) -- (bundle, consumer) for the rate
 * limits of policies (docs/consent.md), (role, client id) for the daemon's
 * limit per client -- refilled at per_s up to burst, one token per
 * request.  Amounts are in millionths of a token so the arithmetic stays
 * in integers.  When every bucket is taken the least recently used one is
 * given to the newcomer; the refusals it still had to report are kept in
 * rt_lost_refused, so that none is forgotten.
 */
struct policy_bucket {
	char		bk_scope[LB_ID_MAX];
	char		bk_who[LB_ID_MAX];
	uint64_t	bk_micro;	/* tokens x 1e6 */
	uint64_t	bk_t_us;	/* last refill */
	uint64_t	bk_refused;	/* refusals not yet reported */
	bool		bk_used;
};
/*
 * Every event loop takes tokens from the same table: its mutex is held
 * for the look-up and the arithmetic of one bucket, never across I/O (the
 * drain reports after releasing it).  One table rather than one per loop
 * with rate/N each, because a client's connections need not spread evenly
 * over the loops: one keep-alive connection would get a share only.
 */
struct policy_rates {
	pthread_mutex_t		 rt_lock;
	struct policy_bucket	*rt_buckets;
	size_t			 rt_n;
	uint64_t		 rt_lost_refused;
	unsigned		 rt_share;	/* policy limits split n ways; 0: whole */
};

struct policy_rates *
policy_rates_new(size_t nbuckets)
{
	struct policy_rates	*rt = NULL;

	if (nbuckets == 0 || (rt = calloc(1, sizeof(*rt))) == NULL)
		goto done;
	if ((rt->rt_buckets = calloc(nbuckets, sizeof(*rt->rt_buckets))) == NULL) {
		free(rt);
		rt = NULL;
		goto done;
	}
	rt->rt_n = nbuckets;
	pthread_mutex_init(&rt->rt_lock, NULL);
done:
	return rt;
}

void
policy_rates_free(struct policy_rates *rt)
{
	if (rt == NULL)
		return;
	pthread_mutex_destroy(&rt->rt_lock);
	free(rt->rt_buckets);
	free(rt);
}

static int	policy_bucket_take_locked(struct policy_rates *, const char *scope,
		    const char *who, uint32_t per_s, uint32_t burst, uint64_t now_us);

int
policy_bucket_take(struct policy_rates *rt, const char *scope, const char *who,
    uint32_t per_s, uint32_t burst, uint64_t now_us)
{
	int	rc;

	if (per_s == 0)
		return 0;
	pthread_mutex_lock(&rt->rt_lock);
	rc = policy_bucket_take_locked(rt, scope, who, per_s, burst, now_us);
	pthread_mutex_unlock(&rt->rt_lock);
	return rc;
}

static int
policy_bucket_take_locked(struct policy_rates *rt, const char *scope, const char *who,
    uint32_t per_s, uint32_t burst, uint64_t now_us)
{
	struct policy_bucket	*b = NULL, *lru = &rt->rt_buckets[0];
	uint64_t		 cap, dt, full;
	size_t			 i;

	if (burst < 1)
		burst = 1;
	for (i = 0; i < rt->rt_n && b == NULL; i++) {
		struct policy_bucket *c = &rt->rt_buckets[i];

		if (c->bk_used && strcmp(c->bk_scope, scope) == 0 && strcmp(c->bk_who, who) == 0)
			b = c;
		else if (!c->bk_used || (lru->bk_used && c->bk_t_us < lru->bk_t_us))
			lru = c;
	}
	cap = (uint64_t)burst * 1000000;
	if (b == NULL) {
		b = lru;
		if (b->bk_used)
			rt->rt_lost_refused += b->bk_refused;
		snprintf(b->bk_scope, sizeof(b->bk_scope), "%s", scope);
		snprintf(b->bk_who, sizeof(b->bk_who), "%s", who);
		b->bk_micro = cap;
		b->bk_t_us = now_us;
		b->bk_refused = 0;
		b->bk_used = true;
	}
	/*
	 * A bucket refills completely in cap / rate microseconds: cap dt there,
	 * so the product cannot overflow.  A clock that went back refills
	 * nothing.
	 */
	full = cap / per_s + 1;
	dt = now_us > b->bk_t_us ? now_us - b->bk_t_us : 0;
	if (dt > full)
		dt = full;
	b->bk_micro += dt * per_s;
	if (b->bk_micro > cap)
		b->bk_micro = cap;
	if (now_us > b->bk_t_us)
		b->bk_t_us = now_us;
	if (b->bk_micro < 1000000) {
		b->bk_refused++;
		return -1;
	}
	b->bk_micro -= 1000000;
	return 0;
}

int
policy_rate_take(struct policy_rates *rt, const struct policy *po, const char *consumer,
    uint64_t now_us)
{
	uint32_t	per_s = po->po_rate_per_s, burst = po->po_rate_burst;

	if (rt->rt_share > 1 && per_s > 0) {
		per_s = (per_s + rt->rt_share - 1) / rt->rt_share;
		burst = (burst + rt->rt_share - 1) / rt->rt_share;
	}
	return policy_bucket_take(rt, po->po_bundle, consumer, per_s, burst, now_us);
}

void
policy_rates_share(struct policy_rates *rt, unsigned n)
{
	rt->rt_share = n;
}

void
policy_rates_drain(struct policy_rates *rt, policy_refused_fn fn, void *arg)
{
	struct policy_bucket	*out;
	size_t			 i, n = 0;
	uint64_t		 lost;

	/* Copied out under the lock; fn (which logs) runs without it. */
	if ((out = calloc(rt->rt_n, sizeof(*out))) == NULL)
		return;		/* the counts wait for the next drain */
	pthread_mutex_lock(&rt->rt_lock);
	for (i = 0; i < rt->rt_n; i++) {
		struct policy_bucket *b = &rt->rt_buckets[i];

		if (b->bk_used && b->bk_refused > 0) {
			out[n++] = *b;
			b->bk_refused = 0;
		}
	}
	lost = rt->rt_lost_refused;
	rt->rt_lost_refused = 0;
	pthread_mutex_unlock(&rt->rt_lock);
	for (i = 0; i < n; i++)
		fn(arg, out[i].bk_scope, out[i].bk_who, out[i].bk_refused);
	if (lost > 0)
		fn(arg, NULL, NULL, lost);
	free(out);
}

enum lb_err
policy_admit(struct policy_rates *rt, const struct policy *po, const char *bundle,
    const char *consumer, uint64_t now_us, char *msg, size_t msglen)
{
	enum lb_err	e;

	if (po == NULL) {
		e = LB_E_UNKNOWN_BUNDLE;
		snprintf(msg, msglen, "no bundle policy \"%s\" is loaded", bundle);
	} else if (!policy_allows_consumer(po, consumer)) {
		e = LB_E_FORBIDDEN_ROLE;
		snprintf(msg, msglen, "consumer %s may not use bundle \"%s\"", consumer, bundle);
	} else if (policy_rate_take(rt, po, consumer, now_us) != 0) {
		e = LB_E_RATE_LIMITED;
		snprintf(msg, msglen, "consumer %s exceeds the rate limit of bundle \"%s\" "
		    "(%u per second, burst %u)", consumer, bundle, po->po_rate_per_s,
		    po->po_rate_burst);
	} else {
		e = LB_OK;
		msg[0] = '\0';
	}
	return e;
}
