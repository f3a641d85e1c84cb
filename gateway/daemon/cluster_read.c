/*
 * cluster_read.c - reads that answer for the whole cluster (docs/audit.md, "A
 * cluster's journals"): an auditor's records query and a citizen's access
 * report, asked of any node, hold the records of every node.
 *
 * Each node keeps its own journal.  The node that was asked reads its own
 * page as it always does (journaled there), then asks each peer for its
 * page, as this node (role gateway, scope=node, so the peer answers for
 * itself alone and journals the read), and merges the pages: by t_ms,
 * oldest first for records and newest first for an access report, each
 * entry naming its "node".  The cursor of the next page ("next", given back
 * as after or before) holds one position per node, NODE:SEQ,...; a node
 * that did not answer is named under "nodes": {"answered", "unreachable"}
 * and keeps its position, so the next page asks it again.
 *
 * The citizen's consent token stays on the node the citizen reached: that
 * node verifies it and claims its jti, once.  The peers are asked for the
 * records of the citizen's pseudonym (subject_hmac), which needs no token
 * and never carries the raw id; a peer trusts that question because it
 * comes from a node of its own cluster (a client certificate of role
 * gateway), and journals it.
 *
 * Everything here runs on the loop of the request it answers: its peers'
 * connections are made on that loop's event base (peer.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "gateway.h"

#define CLUSTER_LIMIT_DEFAULT	100
#define CLUSTER_LIMIT_MAX	1000
#define CLUSTER_TARGET_MAX	2048

struct cl_read;

/* One node's page. */
struct cl_part {
	struct cl_read		*cp_read;
	const char		*cp_node;
	const struct peer	*cp_peer;	/* NULL: this node */
	bool			 cp_answered;
	msgpack_object		 cp_list;	/* entries, in the node's own order */
	bool			 cp_more;	/* the node has more beyond its page */
	bool			 cp_has_in;	/* the cursor named the node */
	uint64_t		 cp_in;
	uint32_t		 cp_taken;	/* entries of cp_list in the answer */
};

struct cl_read {
	struct gw		*cr_gw;
	struct evhttp_request	*cr_req;
	bool			 cr_access;	/* an access report: newest first */
	size_t			 cr_limit;
	msgpack_zone		 cr_zone;
	struct cl_part		 cr_parts[1 + PEERS_MAX];
	size_t			 cr_nparts;
	int			 cr_waiting;
};

bool
cluster_wanted(struct gw *gw, struct evhttp_request *req)
{
	struct evkeyvalq	 q;
	const char		*query, *scope;
	bool			 all = true;

	if (gw->gw_npeers == 0)
		return false;
	TAILQ_INIT(&q);
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (query != NULL && evhttp_parse_query_str(query, &q) == 0 &&
	    (scope = evhttp_find_header(&q, "scope")) != NULL && strcmp(scope, "node") == 0)
		all = false;
	evhttp_clear_headers(&q);
	return all;
}

int
cluster_cursor(const char *s, const char *node, uint64_t *seq, bool *has)
{
	const char	*p = s, *colon, *end;
	char		*num_end;
	unsigned long long v;
	size_t		 n = 0;

	*has = false;
	for (;;) {
		if ((colon = strchr(p, ':')) == NULL || !peer_id_ok(p, (size_t)(colon - p)) ||
		    colon[1] < '0' || colon[1] > '9' || ++n > 1 + PEERS_MAX)
			return -1;
		v = strtoull(colon + 1, &num_end, 10);
		end = num_end;
		if (*end != ',' && *end != '\0')
			return -1;
		if ((size_t)(colon - p) == strlen(node) && strncmp(p, node, strlen(node)) == 0) {
			*seq = v;
			*has = true;
		}
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

static void
cl_free(struct cl_read *cr)
{
	cr->cr_gw->gw_inflight--;
	msgpack_zone_destroy(&cr->cr_zone);
	free(cr);
}

/* A copy of o in z (through its bytes). */
static int
cl_copy(msgpack_zone *z, const msgpack_object *o, msgpack_object *out)
{
	uint8_t	*buf;
	size_t	 len;
	int	 rc;

	if (mpk_pack_alloc(o, &buf, &len) != 0)
		return -1;
	rc = mpk_unpack(buf, len, z, out);
	free(buf);
	return rc;
}

static uint64_t
cl_u64(const msgpack_object *map, const char *key)
{
	uint64_t	v;

	return map != NULL && map->type == MSGPACK_OBJECT_MAP && mpk_get_u64(map, key, &v) == 0 ?
	    v : 0;
}

/* When an entry was written: t_ms of the access entry, or of the record. */
static uint64_t
cl_t_ms(const struct cl_read *cr, const msgpack_object *e)
{
	return cr->cr_access ? cl_u64(e, "t_ms") : cl_u64(mpk_get(e, "record"), "t_ms");
}

/* e with "node" added. */
static msgpack_object
cl_labeled(msgpack_zone *z, const msgpack_object *e, const char *node)
{
	msgpack_object	 o = *e;
	uint32_t	 n = e->via.map.size;

	if (e->type != MSGPACK_OBJECT_MAP)
		return *e;
	o.via.map.ptr = mpk_zalloc(z, (n + 1) * sizeof(o.via.map.ptr[0]));
	memcpy(o.via.map.ptr, e->via.map.ptr, n * sizeof(o.via.map.ptr[0]));
	o.via.map.ptr[n].key = mpk_str("node");
	o.via.map.ptr[n].val = mpk_str(node);
	o.via.map.size = n + 1;
	return o;
}

/* The page of part, taken from a records answer (peer) or the node's own body. */
static int
cl_take(struct cl_part *cp, const msgpack_object *body, const char *key)
{
	struct cl_read		*cr = cp->cp_read;
	const msgpack_object	*list, *next, *leaf;
	const uint8_t		*p;
	size_t			 len;
	uint32_t		 i;

	if (body->type != MSGPACK_OBJECT_MAP || (list = mpk_get(body, key)) == NULL ||
	    list->type != MSGPACK_OBJECT_ARRAY)
		return -1;
	next = mpk_get(body, "next");
	cp->cp_more = next != NULL && next->type != MSGPACK_OBJECT_NIL;
	cp->cp_list = *list;
	/* A peer answers records; the access report shows each as its entry. */
	if (cr->cr_access && cp->cp_peer != NULL)
		for (i = 0; i < list->via.array.size; i++) {
			if ((leaf = mpk_get(&list->via.array.ptr[i], "leaf")) == NULL ||
			    mpk_obj_bytes(leaf, &cr->cr_zone, &p, &len) != 0)
				return -1;
			subject_access_entry(NULL, &cr->cr_zone, cl_u64(&list->via.array.ptr[i], "seq"),
			    p, len, &cp->cp_list.via.array.ptr[i]);
		}
	cp->cp_answered = true;
	return 0;
}

/* The merged page, its cursor and who answered; then the answer. */
static void
cl_finish(struct cl_read *cr)
{
	msgpack_zone	*z = &cr->cr_zone;
	struct cl_part	*cp, *best;
	struct mpk_map	 m, nodes;
	msgpack_object	 out, answered, unreachable;
	struct evbuffer	*cur = NULL;
	const msgpack_object *e;
	uint64_t	 t, bt = 0;
	uint32_t	 n = 0, na = 0, nu = 0;
	size_t		 i;
	bool		 more = false;
	char		*text;

	out = mpk_array(z, (uint32_t)cr->cr_limit);
	while (n < cr->cr_limit) {
		best = NULL;
		for (i = 0; i < cr->cr_nparts; i++) {
			cp = &cr->cr_parts[i];
			if (!cp->cp_answered || cp->cp_taken >= cp->cp_list.via.array.size)
				continue;
			t = cl_t_ms(cr, &cp->cp_list.via.array.ptr[cp->cp_taken]);
			if (best == NULL || (cr->cr_access ? t > bt : t < bt)) {
				best = cp;
				bt = t;
			}
		}
		if (best == NULL)
			break;
		out.via.array.ptr[n++] = cl_labeled(z,
		    &best->cp_list.via.array.ptr[best->cp_taken++], best->cp_node);
	}
	out.via.array.size = n;
	answered = mpk_array(z, (uint32_t)cr->cr_nparts);
	unreachable = mpk_array(z, (uint32_t)cr->cr_nparts);
	if ((cur = evbuffer_new()) == NULL) {
		http_error(cr->cr_req, LB_E_INTERNAL, "out of memory");
		cl_free(cr);
		return;
	}
	for (i = 0; i < cr->cr_nparts; i++) {
		cp = &cr->cr_parts[i];
		if (cp->cp_answered) {
			answered.via.array.ptr[na++] = mpk_str(cp->cp_node);
			more = more || cp->cp_more || cp->cp_taken < cp->cp_list.via.array.size;
		} else
			unreachable.via.array.ptr[nu++] = mpk_str(cp->cp_node);
		/* Where the node's next page starts: past what this one showed of it. */
		if (cp->cp_answered && cp->cp_taken > 0) {
			e = &cp->cp_list.via.array.ptr[cp->cp_taken - 1];
			evbuffer_add_printf(cur, "%s%s:%llu", evbuffer_get_length(cur) ? "," : "",
			    cp->cp_node, (unsigned long long)cl_u64(e, "seq"));
		} else if (cr->cr_access && cp->cp_answered && cp->cp_list.via.array.size > 0) {
			/*
			 * Newest first, a node none of whose entries made it into
			 * this page starts the next one where this one started:
			 * records it wrote meanwhile are newer than the page.
			 */
			e = &cp->cp_list.via.array.ptr[0];
			evbuffer_add_printf(cur, "%s%s:%llu", evbuffer_get_length(cur) ? "," : "",
			    cp->cp_node, (unsigned long long)cl_u64(e, "seq") + 1);
		} else if (cp->cp_has_in)
			evbuffer_add_printf(cur, "%s%s:%llu", evbuffer_get_length(cur) ? "," : "",
			    cp->cp_node, (unsigned long long)cp->cp_in);
	}
	answered.via.array.size = na;
	unreachable.via.array.size = nu;
	mpk_map_init(&nodes, z, 2);
	mpk_map_put(&nodes, "answered", answered);
	mpk_map_put(&nodes, "unreachable", unreachable);
	mpk_map_init(&m, z, 3);
	mpk_map_put(&m, cr->cr_access ? "accesses" : "records", out);
	text = (char *)evbuffer_pullup(cur, -1);
	mpk_map_put(&m, "next", more && evbuffer_get_length(cur) > 0 ?
	    mpk_strdup(z, text, evbuffer_get_length(cur)) : mpk_nil());
	mpk_map_put(&m, "nodes", nodes.mm_obj);
	evbuffer_free(cur);
	if (nu > 0)
		log_warnx("cluster: a %s read answered without %u of %zu nodes",
		    cr->cr_access ? "access report" : "records", nu, cr->cr_nparts);
	http_reply(cr->cr_req, 200, &m.mm_obj);
	cl_free(cr);
}

static void
cl_got(void *arg, int status, const uint8_t *body, size_t len, const char *msg)
{
	struct cl_part	*cp = arg;
	struct cl_read	*cr = cp->cp_read;
	msgpack_object	 o;

	if (status != 200 || mpk_unpack(body, len, &cr->cr_zone, &o) != 0 ||
	    cl_take(cp, &o, "records") != 0) {
		cp->cp_answered = false;
		log_warnx("cluster: peer %s did not give its page: %s", cp->cp_node,
		    status == 0 ? msg : "its answer is not a page of records");
	}
	if (--cr->cr_waiting == 0)
		cl_finish(cr);
}

/* Appends &name=value (value URI-encoded) to target. */
static int
cl_param(struct evbuffer *target, const char *name, const char *value)
{
	char	*enc;
	int	 rc;

	if ((enc = evhttp_encode_uri(value)) == NULL)
		return -1;
	rc = evbuffer_add_printf(target, "&%s=%s", name, enc);
	free(enc);
	return rc < 0 ? -1 : 0;
}

/*
 * The query a peer gets: the filters of req (a raw subject as its
 * pseudonym), its own position, scope=node.
 */
static int
cl_target(struct cl_read *cr, const struct evkeyvalq *q, const struct cl_part *cp,
    const uint8_t *subject, struct evbuffer *t)
{
	static const char *const keep[] = { "consumer", "dept", "item", "kind", "code",
	    "since_ms", "until_ms" };
	const char	*v;
	char		*hm = NULL, num[32];
	uint8_t		 pseud[32];
	size_t		 i;
	int		 rc = -1;

	evbuffer_add_printf(t, "/v1/journal/records?scope=node");
	snprintf(num, sizeof(num), "%zu", cr->cr_limit);
	if (cl_param(t, "limit", num) != 0)
		goto done;
	if (!cr->cr_access && (v = evhttp_find_header(q, "subject")) != NULL && v[0] != '\0') {
		journal_pseudonym(cr->cr_gw->gw_journal, v, pseud);
		subject = pseud;
	}
	if (subject != NULL && ((hm = b64url_encode(subject, 32)) == NULL ||
	    cl_param(t, "subject_hmac", hm) != 0))
		goto done;
	for (i = 0; !cr->cr_access && i < sizeof(keep) / sizeof(keep[0]); i++)
		if ((v = evhttp_find_header(q, keep[i])) != NULL && cl_param(t, keep[i], v) != 0)
			goto done;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)cp->cp_in);
	if (cr->cr_access && (cp->cp_has_in ? cl_param(t, "before", num) :
	    cl_param(t, "order", "newest")) != 0)
		goto done;
	if (!cr->cr_access && cp->cp_has_in && cl_param(t, "after", num) != 0)
		goto done;
	rc = 0;
done:
	OPENSSL_cleanse(pseud, sizeof(pseud));
	free(hm);
	return rc;
}

/* Takes this node's page and asks every peer for theirs. */
static void
cl_start(struct gw *gw, struct evhttp_request *req, const msgpack_object *body,
    const uint8_t *subject, bool access)
{
	struct cl_read		*cr;
	struct cl_part		*cp;
	struct evkeyvalq	 q;
	struct evbuffer		*t;
	struct event_base	*base;
	msgpack_object		 own;
	const char		*query, *cursor;
	uint64_t		 lim;
	bool			 has_lim;
	size_t			 i;

	if ((cr = calloc(1, sizeof(*cr))) == NULL) {
		http_error(req, LB_E_INTERNAL, "out of memory");
		return;
	}
	gw->gw_inflight++;
	cr->cr_gw = gw;
	cr->cr_req = req;
	cr->cr_access = access;
	msgpack_zone_init(&cr->cr_zone, 16384);
	TAILQ_INIT(&q);
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (query != NULL)
		evhttp_parse_query_str(query, &q);
	/* The handler checked the query already. */
	cr->cr_limit = http_query_u64(&q, "limit", &lim, &has_lim) && has_lim && lim > 0 &&
	    lim <= CLUSTER_LIMIT_MAX ? (size_t)lim : CLUSTER_LIMIT_DEFAULT;
	cursor = evhttp_find_header(&q, access ? "before" : "after");
	cr->cr_nparts = 1 + gw->gw_npeers;
	for (i = 0; i < cr->cr_nparts; i++) {
		cp = &cr->cr_parts[i];
		cp->cp_read = cr;
		cp->cp_peer = i == 0 ? NULL : &gw->gw_peers[i - 1];
		cp->cp_node = i == 0 ? gw->gw_conf.gc_node : cp->cp_peer->pe_node;
		if (cursor != NULL)
			cluster_cursor(cursor, cp->cp_node, &cp->cp_in, &cp->cp_has_in);
	}
	if (cl_copy(&cr->cr_zone, body, &own) != 0 ||
	    cl_take(&cr->cr_parts[0], &own, access ? "accesses" : "records") != 0) {
		http_error(req, LB_E_INTERNAL, "the node's own page could not be merged");
		goto fail;
	}
	base = evhttp_connection_get_base(evhttp_request_get_connection(req));
	/* Counted before the first request: a peer's answer never comes before the last ask. */
	cr->cr_waiting = 1;
	for (i = 1; i < cr->cr_nparts; i++) {
		cp = &cr->cr_parts[i];
		/* A peer that cannot be asked is answered for as unreachable. */
		if ((t = evbuffer_new()) != NULL && cl_target(cr, &q, cp, subject, t) == 0 &&
		    evbuffer_add(t, "", 1) == 0 && evbuffer_get_length(t) <= CLUSTER_TARGET_MAX &&
		    peer_get(gw->gw_peer_client, base, cp->cp_peer,
		    (const char *)evbuffer_pullup(t, -1), cl_got, cp) == 0)
			cr->cr_waiting++;
		else
			log_warnx("cluster: peer %s cannot be asked", cp->cp_node);
		if (t != NULL)
			evbuffer_free(t);
	}
	evhttp_clear_headers(&q);
	if (--cr->cr_waiting == 0)
		cl_finish(cr);
	return;
fail:
	evhttp_clear_headers(&q);
	cl_free(cr);
}

void
cluster_records(struct gw *gw, struct evhttp_request *req, const msgpack_object *body)
{
	cl_start(gw, req, body, NULL, false);
}

void
cluster_accesses(struct gw *gw, struct evhttp_request *req, const msgpack_object *body,
    const uint8_t subject[32])
{
	cl_start(gw, req, body, subject, true);
}

/*
 * GET /v1/journal/checkpoints: the latest signed checkpoint of every node.
 * This node's is read on a worker and its read journaled like any
 * auditor's checkpoint read; the peers' are asked as this node (their
 * checkpoint reads by a node are not journaled, docs/audit.md) and relayed
 * as they came: the auditor verifies each signature and origin.
 */
struct cl_ckpts {
	struct gw		*cc_gw;
	struct evhttp_request	*cc_req;
	char			 cc_who[LB_ID_MAX];
	bool			 cc_gateway;	/* asked by a node: not journaled */
	msgpack_zone		 cc_zone;
	msgpack_object		 cc_list;	/* one checkpoint a node that answered */
	msgpack_object		 cc_answered, cc_unreachable;
	struct cl_ckpt_part {
		struct cl_ckpts		*ck_all;
		const struct peer	*ck_peer;
	}			 cc_parts[PEERS_MAX];
	int			 cc_waiting;
	bool			 cc_failed;
};

static void
cl_ckpts_free(struct cl_ckpts *cc)
{
	cc->cc_gw->gw_inflight--;
	msgpack_zone_destroy(&cc->cc_zone);
	free(cc);
}

/* Adds a node's checkpoint {node, size, root, t_ms, envelope} to the answer. */
static void
cl_ckpts_add(struct cl_ckpts *cc, const char *node, uint64_t size, const uint8_t *root,
    uint64_t t_ms, const uint8_t *env, size_t envlen)
{
	msgpack_zone	*z = &cc->cc_zone;
	struct mpk_map	 m;

	mpk_map_init(&m, z, 5);
	mpk_map_put(&m, "node", mpk_strdup(z, node, strlen(node)));
	mpk_map_put(&m, "size", mpk_uint(size));
	mpk_map_put(&m, "root", mpk_bindup(z, root, 32));
	mpk_map_put(&m, "t_ms", mpk_uint(t_ms));
	mpk_map_put(&m, "envelope", mpk_bindup(z, env, envlen));
	cc->cc_list.via.array.ptr[cc->cc_list.via.array.size++] = m.mm_obj;
	cc->cc_answered.via.array.ptr[cc->cc_answered.via.array.size++] =
	    mpk_strdup(z, node, strlen(node));
}

static void
cl_ckpts_finish(struct cl_ckpts *cc)
{
	struct mpk_map	m, nodes;

	mpk_map_init(&nodes, &cc->cc_zone, 2);
	mpk_map_put(&nodes, "answered", cc->cc_answered);
	mpk_map_put(&nodes, "unreachable", cc->cc_unreachable);
	mpk_map_init(&m, &cc->cc_zone, 2);
	mpk_map_put(&m, "checkpoints", cc->cc_list);
	mpk_map_put(&m, "nodes", nodes.mm_obj);
	http_reply(cc->cc_req, 200, &m.mm_obj);
	cl_ckpts_free(cc);
}

static void
cl_ckpts_got(void *arg, int status, const uint8_t *body, size_t len, const char *msg)
{
	struct cl_ckpt_part	*ck = arg;
	struct cl_ckpts		*cc = ck->ck_all;
	const char		*node = ck->ck_peer->pe_node;
	const uint8_t		*root, *env;
	size_t			 rlen, elen;
	msgpack_object		 o;
	uint64_t		 size, t_ms;

	if (status == 200 && mpk_unpack(body, len, &cc->cc_zone, &o) == 0 &&
	    mpk_get_u64(&o, "size", &size) == 0 && mpk_get_u64(&o, "t_ms", &t_ms) == 0 &&
	    mpk_get_bytes(&o, "root", &cc->cc_zone, &root, &rlen) == 0 && rlen == 32 &&
	    mpk_get_bytes(&o, "envelope", &cc->cc_zone, &env, &elen) == 0)
		cl_ckpts_add(cc, node, size, root, t_ms, env, elen);
	else {
		log_warnx("cluster: peer %s did not give its checkpoint: %s", node,
		    status == 0 ? msg : "its answer is not a checkpoint");
		cc->cc_unreachable.via.array.ptr[cc->cc_unreachable.via.array.size++] =
		    mpk_str(node);
	}
	if (--cc->cc_waiting == 0)
		cl_ckpts_finish(cc);
}

/* This node's checkpoint is in the answer and its read journaled: ask the peers. */
static void
cl_ckpts_ask(struct cl_ckpts *cc)
{
	struct gw		*gw = cc->cc_gw;
	struct event_base	*base;
	size_t			 i;

	base = evhttp_connection_get_base(evhttp_request_get_connection(cc->cc_req));
	cc->cc_waiting = 1;
	for (i = 0; i < gw->gw_npeers; i++) {
		cc->cc_parts[i].ck_all = cc;
		cc->cc_parts[i].ck_peer = &gw->gw_peers[i];
		if (peer_get(gw->gw_peer_client, base, &gw->gw_peers[i], "/v1/journal/checkpoint",
		    cl_ckpts_got, &cc->cc_parts[i]) == 0)
			cc->cc_waiting++;
		else
			cc->cc_unreachable.via.array.ptr[cc->cc_unreachable.via.array.size++] =
			    mpk_str(gw->gw_peers[i].pe_node);
	}
	if (--cc->cc_waiting == 0)
		cl_ckpts_finish(cc);
}

static void
cl_ckpts_logged(void *arg, int status, uint64_t first_seq)
{
	struct cl_ckpts	*cc = arg;

	(void)first_seq;
	if (status != 0) {
		http_error(cc->cc_req, LB_E_JOURNAL_UNAVAILABLE, "the journal could not record "
		    "this read, so its answer is withheld");
		cl_ckpts_free(cc);
		return;
	}
	cl_ckpts_ask(cc);
}

static void
cl_ckpts_work(void *arg)
{
	struct cl_ckpts	*cc = arg;
	uint8_t		*env = NULL, root[32];
	size_t		 envlen;
	uint64_t	 size, t_ms;

	if (journal_checkpoint(cc->cc_gw->gw_journal, &env, &envlen, &size, root, &t_ms) != 0) {
		cc->cc_failed = true;
		return;
	}
	cl_ckpts_add(cc, cc->cc_gw->gw_conf.gc_node, size, root, t_ms, env, envlen);
	free(env);
}

static void
cl_ckpts_read(void *arg)
{
	struct cl_ckpts	*cc = arg;
	struct jrec	 rec;

	if (cc->cc_failed) {
		http_error(cc->cc_req, LB_E_JOURNAL_UNAVAILABLE, "the journal's checkpoint could "
		    "not be read");
		cl_ckpts_free(cc);
		return;
	}
	if (cc->cc_gateway) {
		cl_ckpts_ask(cc);
		return;
	}
	/* Journaled as the checkpoint read of http_journal.c is. */
	memset(&rec, 0, sizeof(rec));
	rec.jr_kind = JK_AUDIT_READ;
	rec.jr_t_ms = now_ms();
	rec.jr_has_actor = true;
	journal_pseudonym(cc->cc_gw->gw_journal, cc->cc_who, rec.jr_actor);
	snprintf(rec.jr_item, sizeof(rec.jr_item), "checkpoints");
	snprintf(rec.jr_decision, sizeof(rec.jr_decision), "allow");
	snprintf(rec.jr_code, sizeof(rec.jr_code), "ok");
	if (journal_append(cc->cc_gw->gw_journal, cc->cc_gw->gw_base, &rec, 1, cl_ckpts_logged,
	    cc) != 0) {
		http_error(cc->cc_req, LB_E_JOURNAL_UNAVAILABLE, "the journal cannot record this "
		    "read now; try again");
		cl_ckpts_free(cc);
	}
}

void
cluster_checkpoints(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	struct cl_ckpts	*cc;
	uint32_t	 n = 1 + (uint32_t)gw->gw_npeers;

	(void)path;
	if ((cc = calloc(1, sizeof(*cc))) == NULL) {
		http_error(req, LB_E_INTERNAL, "out of memory");
		return;
	}
	gw->gw_inflight++;
	cc->cc_gw = gw;
	cc->cc_req = req;
	snprintf(cc->cc_who, sizeof(cc->cc_who), "%s", pr->pr_id);
	cc->cc_gateway = strcmp(pr->pr_role, "gateway") == 0;
	msgpack_zone_init(&cc->cc_zone, 4096);
	cc->cc_list = mpk_array(&cc->cc_zone, n);
	cc->cc_answered = mpk_array(&cc->cc_zone, n);
	cc->cc_unreachable = mpk_array(&cc->cc_zone, n);
	cc->cc_list.via.array.size = cc->cc_answered.via.array.size = 0;
	cc->cc_unreachable.via.array.size = 0;
	if (workers_submit(gw->gw_workers, gw->gw_base, cl_ckpts_work, cl_ckpts_read,
	    cc) != 0) {
		http_error(req, LB_E_INTERNAL, "the gateway is shutting down");
		cl_ckpts_free(cc);
	}
}
