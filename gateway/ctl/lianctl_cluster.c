/*
 * lianctl_cluster.c - lianctl journal verify --cluster (docs/audit.md, "A
 * cluster's journals").
 *
 * The gateway named by --gateway lists itself and its peers (GET
 * /v1/journal/witness).  For each node, the whole log is read and its root
 * compared with the node's signed checkpoint, whose origin must be
 * GATEWAY_ID/NODE; every cosignature each node made of the others is
 * checked (signature, witness, origin, size) against the root that node's
 * log has at that size; a node that its peers report inconsistent fails;
 * and no exchange may appear in the logs of two nodes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/x509.h>

#include "lianban.h"
#include "lianctl.h"

#define CV_NODES_MAX	17	/* a node and its peers (PEERS_MAX) */

/* What the walk of one node's log keeps. */
struct cv_node {
	char		 cn_node[LB_ID_MAX];
	char		 cn_origin[LB_ORIGIN_MAX];
	char		 cn_host[256];
	char		 cn_port[8];
	struct ckpt	 cn_ck;
	uint8_t		(*cn_leaves)[32];
	uint64_t	 cn_n, cn_cap;
};

/* An exchange id and the node whose log holds it. */
struct cv_exch {
	uint8_t		 ce_id[16];
	uint32_t	 ce_node;
};

struct cv {
	struct cv_node	 cv_nodes[CV_NODES_MAX];
	size_t		 cv_n;
	struct cv_exch	*cv_exch;
	size_t		 cv_nexch, cv_capexch;
	size_t		 cv_cur;	/* the node being walked */
	uint64_t	 cv_cosigs;
};

static int
cv_leaf(void *arg, uint64_t seq, const uint8_t leaf[32], const msgpack_object *rec)
{
	struct cv		*cv = arg;
	struct cv_node		*cn = &cv->cv_nodes[cv->cv_cur];
	const msgpack_object	*e;
	void			*p;
	size_t			 cap;

	(void)seq;
	if (cn->cn_n == cn->cn_cap) {
		cap = cn->cn_cap == 0 ? 1024 : cn->cn_cap * 2;
		if ((p = realloc(cn->cn_leaves, cap * 32)) == NULL) {
			ctl_err("out of memory");
			return -1;
		}
		cn->cn_leaves = p;
		cn->cn_cap = cap;
	}
	memcpy(cn->cn_leaves[cn->cn_n++], leaf, 32);
	if ((e = mpk_get(rec, "exch")) == NULL || e->type != MSGPACK_OBJECT_BIN ||
	    e->via.bin.size != 16)
		return 0;
	if (cv->cv_nexch == cv->cv_capexch) {
		cap = cv->cv_capexch == 0 ? 1024 : cv->cv_capexch * 2;
		if ((p = realloc(cv->cv_exch, cap * sizeof(*cv->cv_exch))) == NULL) {
			ctl_err("out of memory");
			return -1;
		}
		cv->cv_exch = p;
		cv->cv_capexch = cap;
	}
	memcpy(cv->cv_exch[cv->cv_nexch].ce_id, e->via.bin.ptr, 16);
	cv->cv_exch[cv->cv_nexch++].ce_node = (uint32_t)cv->cv_cur;
	return 0;
}

static int
cv_exch_cmp(const void *a, const void *b)
{
	const struct cv_exch	*x = a, *y = b;
	int			 c = memcmp(x->ce_id, y->ce_id, 16);

	return c != 0 ? c : (x->ce_node > y->ce_node) - (x->ce_node < y->ce_node);
}

/* A copy of ctl that asks node cn on a connection of its own. */
static void
cv_ctl(const struct ctl *ctl, const struct cv_node *cn, struct ctl *out)
{
	*out = *ctl;
	out->c_http = NULL;
	snprintf(out->c_host, sizeof(out->c_host), "%s", cn->cn_host);
	snprintf(out->c_port, sizeof(out->c_port), "%s", cn->cn_port);
}

/* "HOST:PORT" or "[HOST]:PORT" into cn. */
static int
cv_address(struct cv_node *cn, const char *addr)
{
	const char	*colon = strrchr(addr, ':');
	size_t		 hl;

	if (colon == NULL || strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(cn->cn_port))
		return -1;
	hl = (size_t)(colon - addr);
	if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
		addr++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(cn->cn_host))
		return -1;
	memcpy(cn->cn_host, addr, hl);
	cn->cn_host[hl] = '\0';
	snprintf(cn->cn_port, sizeof(cn->cn_port), "%s", colon + 1);
	return 0;
}

/*
 * The nodes: the gateway asked (as --gateway names it) and the peers its
 * witness route lists; a peer its witness reports inconsistent fails.
 */
static int
cv_nodes(struct ctl *ctl, struct cv *cv)
{
	struct http_resp	 r;
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*peers, *p;
	struct cv_node		*cn;
	char			 addr[300], status[32], reason[300];
	uint32_t		 i;
	int			 ret = -1;

	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 4096);
	if (http_get_object(ctl, "/v1/journal/witness", &z, &o, &r) != CTL_OK)
		goto done;
	cn = &cv->cv_nodes[cv->cv_n++];
	if (mpk_get_str(&o, "node", cn->cn_node, sizeof(cn->cn_node)) != 0 ||
	    mpk_get_str(&o, "origin", cn->cn_origin, sizeof(cn->cn_origin)) != 0 ||
	    (peers = mpk_get(&o, "peers")) == NULL || peers->type != MSGPACK_OBJECT_ARRAY) {
		ctl_err("the gateway's witness answer lacks node, origin or peers");
		goto done;
	}
	if (cn->cn_node[0] == '\0' || peers->via.array.size == 0) {
		ctl_err("the gateway at %s:%s is not a node of a cluster (it has no --node or no "
		    "--peers)", ctl->c_host, ctl->c_port);
		goto done;
	}
	snprintf(cn->cn_host, sizeof(cn->cn_host), "%s", ctl->c_host);
	snprintf(cn->cn_port, sizeof(cn->cn_port), "%s", ctl->c_port);
	for (i = 0; i < peers->via.array.size; i++) {
		p = &peers->via.array.ptr[i];
		if (cv->cv_n == CV_NODES_MAX) {
			ctl_err("the gateway names more than %d peers", CV_NODES_MAX - 1);
			goto done;
		}
		cn = &cv->cv_nodes[cv->cv_n++];
		if (mpk_get_str(p, "node", cn->cn_node, sizeof(cn->cn_node)) != 0 ||
		    mpk_get_str(p, "origin", cn->cn_origin, sizeof(cn->cn_origin)) != 0 ||
		    mpk_get_str(p, "address", addr, sizeof(addr)) != 0 ||
		    mpk_get_str(p, "status", status, sizeof(status)) != 0 ||
		    cv_address(cn, addr) != 0) {
			ctl_err("the gateway's witness answer has a malformed peer");
			goto done;
		}
		if (strcmp(status, "inconsistent") == 0) {
			if (mpk_get_str(p, "error", reason, sizeof(reason)) != 0)
				snprintf(reason, sizeof(reason), "no reason given");
			ctl_err("node %s (%s) is reported inconsistent by its witness %s: %s",
			    cn->cn_node, cn->cn_origin, cv->cv_nodes[0].cn_node, reason);
			goto done;
		}
	}
	ret = 0;
done:
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

/*
 * Reads node n's records from where its walk ended up to upto: its log grew
 * while the others were read (every read of an auditor is a record), and a
 * witness may have cosigned the larger tree meanwhile.  A node that cannot
 * show them lost records it had shown its witness.
 */
static int
cv_extend(const struct ctl *ctl, struct cv *cv, size_t n, uint64_t upto)
{
	struct ctl	nctl;
	int		rc;

	cv_ctl(ctl, &cv->cv_nodes[n], &nctl);
	cv->cv_cur = n;
	rc = verify_leaves(&nctl, cv->cv_nodes[n].cn_n, upto, cv_leaf, cv);
	http_close(&nctl);
	return rc == CTL_OK ? 0 : -1;
}

/* The cosignatures witness w made of node n, each checked against n's log. */
static int
cv_cosigs(struct ctl *wctl, struct cv *cv, size_t w, size_t n, X509 *cert)
{
	struct cv_node		*wn = &cv->cv_nodes[w], *nn = &cv->cv_nodes[n];
	struct http_resp	 r;
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*list;
	const uint8_t		*env;
	struct cosig		 co;
	size_t			 elen;
	uint8_t			 root[32];
	char			 path[256], *enc = NULL, err[256];
	uint32_t		 i;
	int			 ret = -1;

	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 8192);
	if ((enc = curl_easy_escape(NULL, nn->cn_origin, 0)) == NULL)
		goto done;
	snprintf(path, sizeof(path), "/v1/journal/cosignatures?origin=%s", enc);
	if (http_get_object(wctl, path, &z, &o, &r) != CTL_OK)
		goto done;
	if ((list = mpk_get(&o, "cosignatures")) == NULL || list->type != MSGPACK_OBJECT_ARRAY) {
		ctl_err("node %s's cosignatures answer has no list", wn->cn_node);
		goto done;
	}
	if (list->via.array.size == 0) {
		ctl_err("node %s has not cosigned any checkpoint of node %s", wn->cn_node,
		    nn->cn_node);
		goto done;
	}
	for (i = 0; i < list->via.array.size; i++) {
		if (mpk_get_bytes(&list->via.array.ptr[i], "envelope", &z, &env, &elen) != 0 ||
		    cosign_check(env, elen, cert, &co, err, sizeof(err)) != 0) {
			ctl_err("a cosignature by node %s of node %s does not verify: %s",
			    wn->cn_node, nn->cn_node, elen > 0 ? err : "no envelope");
			goto done;
		}
		if (strcmp(co.co_witness, wn->cn_origin) != 0 ||
		    strcmp(co.co_origin, nn->cn_origin) != 0) {
			ctl_err("node %s served a cosignature by %s of %s, not its own of %s",
			    wn->cn_node, co.co_witness, co.co_origin, nn->cn_origin);
			goto done;
		}
		if (co.co_size > nn->cn_n && cv_extend(wctl, cv, n, co.co_size) != 0) {
			ctl_err("node %s cosigned a tree of %llu records of node %s, whose log "
			    "does not show that many: node %s's log lost records", wn->cn_node,
			    (unsigned long long)co.co_size, nn->cn_node, nn->cn_node);
			goto done;
		}
		merkle_root(MK_SHA256, (const uint8_t (*)[32])nn->cn_leaves, co.co_size, root);
		if (memcmp(root, co.co_root, 32) != 0) {
			ctl_err("node %s cosigned node %s's tree of %llu records with another root "
			    "than node %s's log has now: node %s's log was rewritten", wn->cn_node,
			    nn->cn_node, (unsigned long long)co.co_size, nn->cn_node, nn->cn_node);
			goto done;
		}
		cv->cv_cosigs++;
	}
	ret = 0;
done:
	curl_free(enc);
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

int
cluster_verify(struct ctl *ctl, X509 *cert)
{
	struct cv	*cv;
	struct ctl	 nctl;
	struct cv_node	*cn;
	json_t		*nodes;
	char		 hex[65];
	size_t		 i, k;
	int		 ret = CTL_FAIL;

	if ((cv = calloc(1, sizeof(*cv))) == NULL) {
		ctl_err("out of memory");
		return CTL_FAIL;
	}
	if (cv_nodes(ctl, cv) != 0)
		goto done;
	for (i = 0; i < cv->cv_n; i++) {
		cn = &cv->cv_nodes[i];
		cv->cv_cur = i;
		cv_ctl(ctl, cn, &nctl);
		if (verify_tree(&nctl, cert, &cn->cn_ck, cv_leaf, cv) != CTL_OK) {
			http_close(&nctl);
			ctl_err("node %s (%s:%s) did not verify", cn->cn_node, cn->cn_host,
			    cn->cn_port);
			goto done;
		}
		http_close(&nctl);
		if (strcmp(cn->cn_ck.ck_origin, cn->cn_origin) != 0) {
			ctl_err("node %s signs its checkpoints as \"%s\", not \"%s\"", cn->cn_node,
			    cn->cn_ck.ck_origin, cn->cn_origin);
			goto done;
		}
	}
	for (i = 0; i < cv->cv_n; i++) {
		cv_ctl(ctl, &cv->cv_nodes[i], &nctl);
		for (k = 0; k < cv->cv_n; k++)
			if (k != i && cv_cosigs(&nctl, cv, i, k, cert) != 0) {
				http_close(&nctl);
				goto done;
			}
		http_close(&nctl);
	}
	if (cv->cv_nexch > 0)
		qsort(cv->cv_exch, cv->cv_nexch, sizeof(*cv->cv_exch), cv_exch_cmp);
	for (i = 1; i < cv->cv_nexch; i++)
		if (memcmp(cv->cv_exch[i - 1].ce_id, cv->cv_exch[i].ce_id, 16) == 0 &&
		    cv->cv_exch[i - 1].ce_node != cv->cv_exch[i].ce_node) {
			hex_encode(cv->cv_exch[i].ce_id, 16, hex);
			ctl_err("exchange %s is in the logs of node %s and node %s", hex,
			    cv->cv_nodes[cv->cv_exch[i - 1].ce_node].cn_node,
			    cv->cv_nodes[cv->cv_exch[i].ce_node].cn_node);
			goto done;
		}
	if (ctl->c_json) {
		if ((nodes = json_array()) == NULL)
			goto done;
		for (i = 0; i < cv->cv_n; i++)
			json_array_append_new(nodes, json_pack("{s:s, s:o}", "node",
			    cv->cv_nodes[i].cn_node, "checkpoint", ckpt_json(&cv->cv_nodes[i].cn_ck)));
		if (ctl_json_print(json_pack("{s:b, s:o, s:I, s:I}", "verified", 1, "nodes", nodes,
		    "cosignatures", (json_int_t)cv->cv_cosigs, "exchanges",
		    (json_int_t)cv->cv_nexch)) != 0)
			goto done;
	} else if (!ctl->c_quiet) {
		for (i = 0; i < cv->cv_n; i++) {
			cn = &cv->cv_nodes[i];
			hex_encode(cn->cn_ck.ck_root, 32, hex);
			printf("node %s: %llu records, root %s matches the checkpoint signed by %s\n",
			    cn->cn_node, (unsigned long long)cn->cn_ck.ck_size, hex,
			    cn->cn_ck.ck_origin);
		}
		printf("cluster verified: %zu nodes, %llu cosignatures of each other's trees "
		    "verified, no exchange in two logs\n", cv->cv_n,
		    (unsigned long long)cv->cv_cosigs);
	}
	ret = CTL_OK;
done:
	for (i = 0; i < cv->cv_n; i++)
		free(cv->cv_nodes[i].cn_leaves);
	free(cv->cv_exch);
	free(cv);
	return ret;
}
