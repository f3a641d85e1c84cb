/*
 * witness.c - the nodes of a cluster witness each other's journals
 * (docs/audit.md, "A cluster's journals").
 *
 * Every second, and at start, this node fetches each peer's latest signed
 * checkpoint and checks it:
 *
 *	FETCH	GET /v1/journal/checkpoint as this node	(loop, peer.c)
 *	VERIFY	signature (the checkpoint certificate),	(worker)
 *		origin GATEWAY_ID/PEER
 *	COMPARE	with the last checkpoint of that peer it verified: the same
 *		tree, or a larger one; a smaller tree or another root for
 *		the same size is inconsistent
 *	PROVE	GET /v1/journal/proof/consistency from	(loop, then worker)
 *		the old size to the new one, checked (RFC 9162)
 *	COSIGN	a "cosignature" envelope over origin, size and root, signed
 *		with this node's checkpoint key			(worker)
 *	STORE	the cosignature and the peer's new checkpoint in the journal's
 *		witness database, committed by the writer	(journal writer)
 *
 * The last verified checkpoint of each peer survives a restart, so a peer
 * cannot hide a rewritten journal by waiting for its witnesses to restart.
 * A peer that contradicts it is reported: an error line naming the peer and
 * both sizes, lianban_witness_inconsistent_total{peer}, and the evidence
 * (both signed checkpoints) stored and served at GET /v1/journal/witness.
 * The reference is not moved to the contradicting checkpoint: the peer
 * stays inconsistent for as long as it shows that history.
 *
 * Threads: the timer and the checks run on gw_base; the peers' states are
 * read by request handlers of any loop, so they are guarded by wi_mtx.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gateway.h"

#define WITNESS_PERIOD_S	1
#define WITNESS_COSIGS_MAX	1000	/* cosignatures one answer holds */

/* The tags of the witness database's keys (journal_witness.c). */
#define WK_STATE	'p'	/* 'p' origin: the peer's last verified checkpoint envelope */
#define WK_COSIG	'c'	/* 'c' origin 0 size witness: a cosignature envelope */
#define WK_EVIDENCE	'e'	/* 'e' origin 0 t_ms: {reason, seen, shown} */

enum wit_status {
	WS_UNKNOWN = 0,
	WS_CONSISTENT,
	WS_INCONSISTENT,
	WS_UNREACHABLE,
	WS_INVALID
};

static const char *const wit_status_names[] = {
	"unknown", "consistent", "inconsistent", "unreachable", "invalid"
};

/* A signed checkpoint: its envelope and what it says. */
struct wit_ckpt {
	uint8_t		*wk_env;
	size_t		 wk_envlen;
	struct ckpt_view wk_view;
};

/* The evidence of an inconsistent peer: what it showed before, what now. */
struct wit_evidence {
	char		 we_reason[256];
	uint64_t	 we_t_ms;
	struct wit_ckpt	 we_seen, we_shown;
};

struct wit_peer {
	const struct peer *wp_peer;
	char		 wp_origin[LB_ORIGIN_MAX];
	/* Guarded by wi_mtx. */
	enum wit_status	 wp_status;
	struct wit_ckpt	 wp_last;	/* last verified; wk_env NULL: none yet */
	uint64_t	 wp_checked_ms;	/* when the peer last answered */
	char		 wp_error[256];
	uint64_t	 wp_cosigned;	/* cosignatures made since start */
	struct wit_evidence *wp_ev;	/* the latest evidence, NULL: none */
	/* gw_base only. */
	bool		 wp_busy;
};

struct witness {
	struct gw	*wi_gw;
	struct event	*wi_timer;
	pthread_mutex_t	 wi_mtx;
	struct wit_peer	*wi_peers;
	size_t		 wi_npeers;
	uint8_t		 wi_kid[32];
	bool		 wi_stopping;
	int		 wi_checks;	/* checks under way */
};

/* One check of one peer, from the fetch to the store. */
enum wit_outcome {
	WO_SAME = 0,		/* the checkpoint already verified */
	WO_COSIGN,		/* verified now: store it and its cosignature */
	WO_NEED_PROOF,		/* larger: the consistency proof is needed */
	WO_INCONSISTENT,
	WO_INVALID
};

struct wit_check {
	struct witness	*wc_wi;
	struct wit_peer	*wc_peer;
	struct wit_ckpt	 wc_prev;	/* a copy of wp_last when the check began */
	struct wit_ckpt	 wc_new;
	uint8_t		 wc_path[MK_MAX_PATH][32];
	size_t		 wc_npath;
	bool		 wc_proven;	/* wc_path holds the peer's proof */
	enum wit_outcome wc_out;
	char		 wc_msg[256];
	msgpack_sbuffer	 wc_cosig;
};

static void	wit_check_end(struct wit_check *);

static void
wit_ckpt_clear(struct wit_ckpt *ck)
{
	free(ck->wk_env);
	memset(ck, 0, sizeof(*ck));
}

static int
wit_ckpt_copy(struct wit_ckpt *dst, const struct wit_ckpt *src)
{
	*dst = *src;
	dst->wk_env = NULL;
	if (src->wk_env == NULL)
		return 0;
	if ((dst->wk_env = malloc(src->wk_envlen)) == NULL)
		return -1;
	memcpy(dst->wk_env, src->wk_env, src->wk_envlen);
	return 0;
}

static void
wit_evidence_free(struct wit_evidence *ev)
{
	if (ev == NULL)
		return;
	wit_ckpt_clear(&ev->we_seen);
	wit_ckpt_clear(&ev->we_shown);
	free(ev);
}

/* A key of the witness database: tag, origin, and for cosignatures and evidence 0 and n. */
static size_t
wit_key(uint8_t *key, char tag, const char *origin, bool with_n, uint64_t n, const char *tail)
{
	size_t	len = 0, olen = strlen(origin), tlen = tail != NULL ? strlen(tail) : 0;
	int	i;

	key[len++] = (uint8_t)tag;
	memcpy(key + len, origin, olen);
	len += olen;
	if (with_n) {
		key[len++] = 0;
		for (i = 7; i >= 0; i--)
			key[len++] = (uint8_t)(n >> (i * 8));
		if (tlen > 0)
			memcpy(key + len, tail, tlen);
		len += tlen;
	}
	return len;
}

/* Checks the envelope ck->wk_env as a checkpoint of origin; -1 with a sentence. */
static int
wit_ckpt_verify(struct witness *wi, struct wit_ckpt *ck, const char *origin, char *msg,
    size_t msglen)
{
	char	err[200];

	if (cosign_ckpt_check(ck->wk_env, ck->wk_envlen, wi->wi_gw->gw_ckpt_cert, &ck->wk_view,
	    err, sizeof(err)) != 0) {
		snprintf(msg, msglen, "%s", err);
		return -1;
	}
	if (strcmp(ck->wk_view.cv_origin, origin) != 0) {
		snprintf(msg, msglen, "the checkpoint names the origin \"%s\", not \"%s\"",
		    ck->wk_view.cv_origin, origin);
		return -1;
	}
	return 0;
}

/* Signs the cosignature of wc_new (worker). */
static int
wit_cosign(struct wit_check *wc)
{
	struct gw	*gw = wc->wc_wi->wi_gw;
	struct cosig	 co;

	memset(&co, 0, sizeof(co));
	snprintf(co.co_origin, sizeof(co.co_origin), "%s", wc->wc_new.wk_view.cv_origin);
	co.co_size = wc->wc_new.wk_view.cv_size;
	memcpy(co.co_root, wc->wc_new.wk_view.cv_root, 32);
	co.co_t_ms = now_ms();
	snprintf(co.co_witness, sizeof(co.co_witness), "%s", gw->gw_origin);
	if (cosign_make(gw->gw_ckpt_key, wc->wc_wi->wi_kid, &co, &wc->wc_cosig) != 0) {
		snprintf(wc->wc_msg, sizeof(wc->wc_msg), "the cosignature could not be signed");
		return -1;
	}
	return 0;
}

/*
 * The verdict on the fetched checkpoint, and when a proof came, on it
 * (worker): signature and origin, then against the previous one.
 */
static void
wit_verify_work(void *arg)
{
	struct wit_check	*wc = arg;
	const struct ckpt_view	*o = &wc->wc_prev.wk_view, *n = &wc->wc_new.wk_view;

	if (!wc->wc_proven) {
		if (wit_ckpt_verify(wc->wc_wi, &wc->wc_new, wc->wc_peer->wp_origin, wc->wc_msg,
		    sizeof(wc->wc_msg)) != 0) {
			wc->wc_out = WO_INVALID;
			return;
		}
		if (wc->wc_prev.wk_env != NULL && n->cv_size == o->cv_size &&
		    memcmp(n->cv_root, o->cv_root, 32) == 0) {
			wc->wc_out = WO_SAME;
			return;
		}
		if (wc->wc_prev.wk_env != NULL && n->cv_size < o->cv_size) {
			snprintf(wc->wc_msg, sizeof(wc->wc_msg), "its tree shrank from %llu to %llu "
			    "records", (unsigned long long)o->cv_size,
			    (unsigned long long)n->cv_size);
			wc->wc_out = WO_INCONSISTENT;
			return;
		}
		if (wc->wc_prev.wk_env != NULL && n->cv_size == o->cv_size) {
			snprintf(wc->wc_msg, sizeof(wc->wc_msg), "it signed two roots for %llu "
			    "records", (unsigned long long)n->cv_size);
			wc->wc_out = WO_INCONSISTENT;
			return;
		}
		/* Any tree extends the empty one; only a non-empty one needs its proof. */
		if (wc->wc_prev.wk_env != NULL && o->cv_size > 0) {
			wc->wc_out = WO_NEED_PROOF;
			return;
		}
	} else if (merkle_verify_consistency(MK_SHA256, o->cv_size, n->cv_size, o->cv_root,
	    n->cv_root, (const uint8_t (*)[32])wc->wc_path, wc->wc_npath) != 0) {
		snprintf(wc->wc_msg, sizeof(wc->wc_msg), "its consistency proof from %llu to %llu "
		    "records does not hold", (unsigned long long)o->cv_size,
		    (unsigned long long)n->cv_size);
		wc->wc_out = WO_INCONSISTENT;
		return;
	}
	wc->wc_out = wit_cosign(wc) == 0 ? WO_COSIGN : WO_INVALID;
}

static void
wit_set_status(struct wit_check *wc, enum wit_status st, const char *msg)
{
	struct witness	*wi = wc->wc_wi;
	struct wit_peer	*wp = wc->wc_peer;

	pthread_mutex_lock(&wi->wi_mtx);
	wp->wp_status = st;
	if (st != WS_UNREACHABLE)
		wp->wp_checked_ms = now_ms();
	snprintf(wp->wp_error, sizeof(wp->wp_error), "%s", msg != NULL ? msg : "");
	pthread_mutex_unlock(&wi->wi_mtx);
}

/* Packs an evidence record: {reason, t_ms, seen, shown}. */
static int
wit_evidence_pack(const struct wit_evidence *ev, msgpack_sbuffer *out)
{
	msgpack_zone	z;
	struct mpk_map	m;
	int		rc;

	msgpack_zone_init(&z, 256);
	mpk_map_init(&m, &z, 4);
	mpk_map_put(&m, "reason", mpk_str(ev->we_reason));
	mpk_map_put(&m, "seen", mpk_bin(ev->we_seen.wk_env, ev->we_seen.wk_envlen));
	mpk_map_put(&m, "shown", mpk_bin(ev->we_shown.wk_env, ev->we_shown.wk_envlen));
	mpk_map_put(&m, "t_ms", mpk_uint(ev->we_t_ms));
	rc = mpk_pack(&m.mm_obj, out, false);
	msgpack_zone_destroy(&z);
	return rc;
}

/*
 * The peer contradicted the checkpoint it showed before: reported once per
 * contradicting checkpoint (the peer keeps showing it every second).
 */
static void
wit_inconsistent(struct wit_check *wc)
{
	struct witness		*wi = wc->wc_wi;
	struct wit_peer		*wp = wc->wc_peer;
	struct wit_evidence	*ev;
	msgpack_sbuffer		 sb;
	uint8_t			 key[JOURNAL_WITNESS_KEY_MAX];
	const char		*label = wp->wp_peer->pe_node;
	bool			 known;

	pthread_mutex_lock(&wi->wi_mtx);
	known = wp->wp_ev != NULL && wp->wp_ev->we_shown.wk_view.cv_size ==
	    wc->wc_new.wk_view.cv_size && memcmp(wp->wp_ev->we_shown.wk_view.cv_root,
	    wc->wc_new.wk_view.cv_root, 32) == 0;
	pthread_mutex_unlock(&wi->wi_mtx);
	wit_set_status(wc, WS_INCONSISTENT, wc->wc_msg);
	if (known)
		return;
	log_errx("witness: peer %s (%s) is inconsistent: %s (it showed %llu records before, "
	    "%llu now)", wp->wp_peer->pe_node, wp->wp_origin, wc->wc_msg,
	    (unsigned long long)wc->wc_prev.wk_view.cv_size,
	    (unsigned long long)wc->wc_new.wk_view.cv_size);
	metrics_count(METRICS_WITNESS_INCONSISTENT, 1, &label);
	if ((ev = calloc(1, sizeof(*ev))) == NULL || wit_ckpt_copy(&ev->we_seen,
	    &wc->wc_prev) != 0 || wit_ckpt_copy(&ev->we_shown, &wc->wc_new) != 0) {
		wit_evidence_free(ev);
		return;
	}
	snprintf(ev->we_reason, sizeof(ev->we_reason), "%s", wc->wc_msg);
	ev->we_t_ms = now_ms();
	msgpack_sbuffer_init(&sb);
	if (wit_evidence_pack(ev, &sb) != 0 || journal_witness_put(wi->wi_gw->gw_journal,
	    wi->wi_gw->gw_base, key, wit_key(key, WK_EVIDENCE, wp->wp_origin, true,
	    ev->we_t_ms, NULL), (const uint8_t *)sb.data, sb.size, NULL, NULL) != 0)
		log_warnx("witness: the evidence against peer %s could not be stored",
		    wp->wp_peer->pe_node);
	msgpack_sbuffer_destroy(&sb);
	pthread_mutex_lock(&wi->wi_mtx);
	wit_evidence_free(wp->wp_ev);
	wp->wp_ev = ev;
	pthread_mutex_unlock(&wi->wi_mtx);
}

/* The cosignature and the new reference are durable: the peer is consistent. */
static void
wit_stored(void *arg, int status, uint64_t first_seq)
{
	struct wit_check	*wc = arg;
	struct witness		*wi = wc->wc_wi;
	struct wit_peer		*wp = wc->wc_peer;
	const char		*label = wp->wp_peer->pe_node;

	(void)first_seq;
	if (status != 0) {
		wit_set_status(wc, wp->wp_status, "the cosignature could not be stored");
		wit_check_end(wc);
		return;
	}
	pthread_mutex_lock(&wi->wi_mtx);
	wit_ckpt_clear(&wp->wp_last);
	wp->wp_last = wc->wc_new;
	memset(&wc->wc_new, 0, sizeof(wc->wc_new));
	wp->wp_cosigned++;
	pthread_mutex_unlock(&wi->wi_mtx);
	wit_set_status(wc, WS_CONSISTENT, NULL);
	metrics_count(METRICS_WITNESS_COSIGNED, 1, &label);
	wit_check_end(wc);
}

/* Queues the cosignature, then the peer's new checkpoint as the reference. */
static void
wit_store(struct wit_check *wc)
{
	struct gw	*gw = wc->wc_wi->wi_gw;
	struct wit_peer	*wp = wc->wc_peer;
	uint8_t		 key[JOURNAL_WITNESS_KEY_MAX];

	/*
	 * Queue order is commit order: when the reference's completion runs,
	 * the cosignature is durable too.
	 */
	if (journal_witness_put(gw->gw_journal, gw->gw_base, key, wit_key(key, WK_COSIG,
	    wp->wp_origin, true, wc->wc_new.wk_view.cv_size, gw->gw_origin),
	    (const uint8_t *)wc->wc_cosig.data, wc->wc_cosig.size, NULL, NULL) != 0 ||
	    journal_witness_put(gw->gw_journal, gw->gw_base, key, wit_key(key, WK_STATE,
	    wp->wp_origin, false, 0, NULL), wc->wc_new.wk_env, wc->wc_new.wk_envlen,
	    wit_stored, wc) != 0) {
		wit_set_status(wc, wp->wp_status, "the journal is not accepting the cosignature");
		wit_check_end(wc);
	}
}

static void wit_got_proof(void *arg, int status, const uint8_t *body, size_t len,
    const char *msg);

static void
wit_verified(void *arg)
{
	struct wit_check	*wc = arg;
	struct gw		*gw = wc->wc_wi->wi_gw;
	char			 target[96];

	if (wc->wc_wi->wi_stopping) {
		wit_check_end(wc);
		return;
	}
	switch (wc->wc_out) {
	case WO_SAME:
		wit_set_status(wc, WS_CONSISTENT, NULL);
		break;
	case WO_COSIGN:
		wit_store(wc);
		return;
	case WO_NEED_PROOF:
		snprintf(target, sizeof(target), "/v1/journal/proof/consistency?first=%llu&"
		    "second=%llu", (unsigned long long)wc->wc_prev.wk_view.cv_size,
		    (unsigned long long)wc->wc_new.wk_view.cv_size);
		if (peer_get(gw->gw_peer_client, gw->gw_base, wc->wc_peer->wp_peer, target,
		    wit_got_proof, wc) == 0)
			return;
		wit_set_status(wc, WS_UNREACHABLE, "the consistency proof could not be asked");
		break;
	case WO_INCONSISTENT:
		wit_inconsistent(wc);
		break;
	case WO_INVALID:
		log_warnx("witness: peer %s showed an invalid checkpoint: %s",
		    wc->wc_peer->wp_peer->pe_node, wc->wc_msg);
		wit_set_status(wc, WS_INVALID, wc->wc_msg);
		break;
	}
	wit_check_end(wc);
}

/* Decodes a msgpack answer; NULL when it is not a map. */
static const msgpack_object *
wit_answer(msgpack_zone *z, const uint8_t *body, size_t len, msgpack_object *o)
{
	if (mpk_unpack(body, len, z, o) != 0 || o->type != MSGPACK_OBJECT_MAP)
		return NULL;
	return o;
}

static void
wit_submit(struct wit_check *wc)
{
	struct gw	*gw = wc->wc_wi->wi_gw;

	if (workers_submit(gw->gw_workers, gw->gw_base, wit_verify_work, wit_verified,
	    wc) != 0)
		wit_check_end(wc);
}

static void
wit_got_proof(void *arg, int status, const uint8_t *body, size_t len, const char *msg)
{
	struct wit_check	*wc = arg;
	const msgpack_object	*path;
	const uint8_t		*p;
	msgpack_zone		 z;
	msgpack_object		 o;
	size_t			 i, n;

	msgpack_zone_init(&z, 2048);
	if (status != 200 || wit_answer(&z, body, len, &o) == NULL ||
	    (path = mpk_get(&o, "path")) == NULL || path->type != MSGPACK_OBJECT_ARRAY ||
	    path->via.array.size > MK_MAX_PATH) {
		/*
		 * A peer that cannot prove its tree grew from the one it showed
		 * is not cosigned; a refusal (4xx) is its answer, an outage not.
		 */
		if (status >= 400 && status < 500) {
			snprintf(wc->wc_msg, sizeof(wc->wc_msg), "it refused the consistency proof "
			    "from %llu to %llu records (%d)",
			    (unsigned long long)wc->wc_prev.wk_view.cv_size,
			    (unsigned long long)wc->wc_new.wk_view.cv_size, status);
			wc->wc_out = WO_INCONSISTENT;
			wit_inconsistent(wc);
		} else
			wit_set_status(wc, WS_UNREACHABLE, status == 0 ? msg :
			    "the consistency proof is malformed");
		msgpack_zone_destroy(&z);
		wit_check_end(wc);
		return;
	}
	n = path->via.array.size;
	for (i = 0; i < n; i++) {
		if (mpk_obj_bytes(&path->via.array.ptr[i], &z, &p, &len) != 0 || len != 32)
			break;
		memcpy(wc->wc_path[i], p, 32);
	}
	msgpack_zone_destroy(&z);
	if (i < n) {
		wit_set_status(wc, WS_UNREACHABLE, "the consistency proof is malformed");
		wit_check_end(wc);
		return;
	}
	wc->wc_npath = n;
	wc->wc_proven = true;
	wit_submit(wc);
}

static void
wit_got_ckpt(void *arg, int status, const uint8_t *body, size_t len, const char *msg)
{
	struct wit_check	*wc = arg;
	const uint8_t		*env;
	msgpack_zone		 z;
	msgpack_object		 o;
	size_t			 elen;
	char			 why[200];

	msgpack_zone_init(&z, 2048);
	if (status != 200 || wit_answer(&z, body, len, &o) == NULL ||
	    mpk_get_bytes(&o, "envelope", &z, &env, &elen) != 0 || elen == 0 ||
	    (wc->wc_new.wk_env = malloc(elen)) == NULL) {
		if (status == 0)
			snprintf(why, sizeof(why), "%s", msg);
		else
			snprintf(why, sizeof(why), "its checkpoint answer (%d) is not usable",
			    status);
		msgpack_zone_destroy(&z);
		wit_set_status(wc, WS_UNREACHABLE, why);
		wit_check_end(wc);
		return;
	}
	memcpy(wc->wc_new.wk_env, env, elen);
	wc->wc_new.wk_envlen = elen;
	msgpack_zone_destroy(&z);
	wit_submit(wc);
}

static void
wit_check_end(struct wit_check *wc)
{
	wc->wc_peer->wp_busy = false;
	wc->wc_wi->wi_checks--;
	wc->wc_wi->wi_gw->gw_inflight--;
	wit_ckpt_clear(&wc->wc_prev);
	wit_ckpt_clear(&wc->wc_new);
	msgpack_sbuffer_destroy(&wc->wc_cosig);
	free(wc);
}

static void
wit_check_start(struct witness *wi, struct wit_peer *wp)
{
	struct wit_check	*wc;
	int			 rc;

	if ((wc = calloc(1, sizeof(*wc))) == NULL)
		return;
	wc->wc_wi = wi;
	wc->wc_peer = wp;
	msgpack_sbuffer_init(&wc->wc_cosig);
	pthread_mutex_lock(&wi->wi_mtx);
	rc = wit_ckpt_copy(&wc->wc_prev, &wp->wp_last);
	pthread_mutex_unlock(&wi->wi_mtx);
	wp->wp_busy = true;
	wi->wi_checks++;
	/*
	 * A check counts as work in flight, so that shutdown waits for it (a
	 * peer answers or times out within seconds) and frees nothing under it.
	 */
	wi->wi_gw->gw_inflight++;
	if (rc != 0 || peer_get(wi->wi_gw->gw_peer_client, wi->wi_gw->gw_base, wp->wp_peer,
	    "/v1/journal/checkpoint", wit_got_ckpt, wc) != 0)
		wit_check_end(wc);
}

static void
wit_tick(evutil_socket_t fd, short what, void *arg)
{
	struct witness	*wi = arg;
	size_t		 i;

	(void)fd;
	(void)what;
	if (wi->wi_stopping)
		return;
	for (i = 0; i < wi->wi_npeers; i++)
		if (!wi->wi_peers[i].wp_busy)
			wit_check_start(wi, &wi->wi_peers[i]);
}

/* The stored reference of each peer, and its latest evidence, at start. */
static int
wit_load_state(void *arg, const uint8_t *key, size_t keylen, const uint8_t *val, size_t vallen)
{
	struct wit_peer	*wp = arg;

	(void)key;
	/* A longer key is another peer's whose origin starts with this one. */
	if (keylen != 1 + strlen(wp->wp_origin))
		return 0;
	free(wp->wp_last.wk_env);
	if ((wp->wp_last.wk_env = malloc(vallen)) == NULL)
		return -1;
	memcpy(wp->wp_last.wk_env, val, vallen);
	wp->wp_last.wk_envlen = vallen;
	return 0;
}

static int
wit_load_evidence(void *arg, const uint8_t *key, size_t keylen, const uint8_t *val,
    size_t vallen)
{
	struct wit_peer		*wp = arg;
	struct wit_evidence	*ev;
	msgpack_zone		 z;
	msgpack_object		 o;
	const uint8_t		*a, *b;
	size_t			 alen, blen;

	(void)key;
	(void)keylen;
	msgpack_zone_init(&z, 1024);
	if ((ev = calloc(1, sizeof(*ev))) != NULL && mpk_unpack(val, vallen, &z, &o) == 0 &&
	    mpk_get_str(&o, "reason", ev->we_reason, sizeof(ev->we_reason)) == 0 &&
	    mpk_get_u64(&o, "t_ms", &ev->we_t_ms) == 0 &&
	    mpk_get_bytes(&o, "seen", &z, &a, &alen) == 0 &&
	    mpk_get_bytes(&o, "shown", &z, &b, &blen) == 0 &&
	    (ev->we_seen.wk_env = malloc(alen)) != NULL &&
	    (ev->we_shown.wk_env = malloc(blen)) != NULL) {
		memcpy(ev->we_seen.wk_env, a, alen);
		ev->we_seen.wk_envlen = alen;
		memcpy(ev->we_shown.wk_env, b, blen);
		ev->we_shown.wk_envlen = blen;
		wit_evidence_free(wp->wp_ev);
		wp->wp_ev = ev;
		ev = NULL;
	}
	wit_evidence_free(ev);
	msgpack_zone_destroy(&z);
	return 0;
}

int
witness_start(struct gw *gw, char *err, size_t errlen)
{
	struct witness	*wi;
	struct wit_peer	*wp;
	struct timeval	 tv = { WITNESS_PERIOD_S, 0 };
	uint8_t		 key[JOURNAL_WITNESS_KEY_MAX];
	char		 why[200];
	size_t		 i;

	if (gw->gw_npeers == 0)
		return 0;
	if ((wi = calloc(1, sizeof(*wi))) == NULL ||
	    (wi->wi_peers = calloc(gw->gw_npeers, sizeof(*wi->wi_peers))) == NULL) {
		free(wi);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	gw->gw_witness = wi;
	wi->wi_gw = gw;
	wi->wi_npeers = gw->gw_npeers;
	pthread_mutex_init(&wi->wi_mtx, NULL);
	if (key_id_cert(gw->gw_ckpt_cert, wi->wi_kid) != 0) {
		snprintf(err, errlen, "the checkpoint certificate's key id cannot be computed");
		return -1;
	}
	for (i = 0; i < wi->wi_npeers; i++) {
		wp = &wi->wi_peers[i];
		wp->wp_peer = &gw->gw_peers[i];
		if (cosign_origin(gw->gw_conf.gc_id, wp->wp_peer->pe_node, wp->wp_origin,
		    sizeof(wp->wp_origin)) != 0) {
			snprintf(err, errlen, "peer %s: the origin is too long", wp->wp_peer->pe_node);
			return -1;
		}
		/* wit_load_state takes only the key that is exactly 'p' origin. */
		if (journal_witness_each(gw->gw_journal, key, wit_key(key, WK_STATE,
		    wp->wp_origin, false, 0, NULL), wit_load_state, wp) != 0 ||
		    journal_witness_each(gw->gw_journal, key, wit_key(key, WK_EVIDENCE,
		    wp->wp_origin, true, 0, NULL) - 8, wit_load_evidence, wp) != 0) {
			snprintf(err, errlen, "the journal's witness database cannot be read");
			return -1;
		}
		if (wp->wp_last.wk_env != NULL && wit_ckpt_verify(wi, &wp->wp_last, wp->wp_origin,
		    why, sizeof(why)) != 0) {
			snprintf(err, errlen, "the stored checkpoint of peer %s does not verify: %s",
			    wp->wp_peer->pe_node, why);
			return -1;
		}
		if (wp->wp_ev != NULL) {
			cosign_ckpt_check(wp->wp_ev->we_seen.wk_env, wp->wp_ev->we_seen.wk_envlen,
			    gw->gw_ckpt_cert, &wp->wp_ev->we_seen.wk_view, why, sizeof(why));
			cosign_ckpt_check(wp->wp_ev->we_shown.wk_env, wp->wp_ev->we_shown.wk_envlen,
			    gw->gw_ckpt_cert, &wp->wp_ev->we_shown.wk_view, why, sizeof(why));
		}
	}
	if ((wi->wi_timer = event_new(gw->gw_base, -1, EV_PERSIST, wit_tick, wi)) == NULL ||
	    event_add(wi->wi_timer, &tv) != 0) {
		snprintf(err, errlen, "cannot start the witness timer");
		return -1;
	}
	log_info("witness: %zu peers, checkpoints signed as %s", wi->wi_npeers, gw->gw_origin);
	wit_tick(-1, 0, wi);
	return 0;
}

void
witness_stop(struct gw *gw)
{
	struct witness	*wi = gw->gw_witness;

	if (wi == NULL)
		return;
	wi->wi_stopping = true;
	if (wi->wi_timer != NULL)
		event_del(wi->wi_timer);
}

void
witness_free(struct gw *gw)
{
	struct witness	*wi = gw->gw_witness;
	size_t		 i;

	if (wi == NULL)
		return;
	if (wi->wi_checks > 0)
		log_warnx("witness: %d checks of peers abandoned at exit", wi->wi_checks);
	if (wi->wi_timer != NULL)
		event_free(wi->wi_timer);
	for (i = 0; i < wi->wi_npeers; i++) {
		wit_ckpt_clear(&wi->wi_peers[i].wp_last);
		wit_evidence_free(wi->wi_peers[i].wp_ev);
	}
	pthread_mutex_destroy(&wi->wi_mtx);
	free(wi->wi_peers);
	free(wi);
	gw->gw_witness = NULL;
}

/* A checkpoint for the witness route: {origin, size, root, t_ms, envelope}. */
static msgpack_object
wit_ckpt_obj(msgpack_zone *z, const struct wit_ckpt *ck)
{
	struct mpk_map	m;

	mpk_map_init(&m, z, 5);
	mpk_map_put(&m, "origin", mpk_strdup(z, ck->wk_view.cv_origin,
	    strlen(ck->wk_view.cv_origin)));
	mpk_map_put(&m, "size", mpk_uint(ck->wk_view.cv_size));
	mpk_map_put(&m, "root", mpk_bindup(z, ck->wk_view.cv_root, 32));
	mpk_map_put(&m, "t_ms", mpk_uint(ck->wk_view.cv_t_ms));
	mpk_map_put(&m, "envelope", mpk_bindup(z, ck->wk_env, ck->wk_envlen));
	return m.mm_obj;
}

void
http_witness(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	struct witness	*wi = gw_main_of(gw)->gw_witness;
	struct wit_peer	*wp;
	struct mpk_map	 m, p, e;
	msgpack_zone	 z;
	msgpack_object	 list;
	char		 addr[96];
	size_t		 i;

	(void)pr;
	(void)path;
	msgpack_zone_init(&z, 4096);
	mpk_map_init(&m, &z, 3);
	mpk_map_put(&m, "node", mpk_str(gw->gw_conf.gc_node));
	mpk_map_put(&m, "origin", mpk_str(gw->gw_origin));
	list = mpk_array(&z, wi != NULL ? (uint32_t)wi->wi_npeers : 0);
	if (wi != NULL)
		pthread_mutex_lock(&wi->wi_mtx);
	for (i = 0; wi != NULL && i < wi->wi_npeers; i++) {
		wp = &wi->wi_peers[i];
		mpk_map_init(&p, &z, 10);
		mpk_map_put(&p, "node", mpk_strdup(&z, wp->wp_peer->pe_node,
		    strlen(wp->wp_peer->pe_node)));
		mpk_map_put(&p, "origin", mpk_strdup(&z, wp->wp_origin, strlen(wp->wp_origin)));
		snprintf(addr, sizeof(addr), strchr(wp->wp_peer->pe_host, ':') != NULL ?
		    "[%s]:%d" : "%s:%d", wp->wp_peer->pe_host, wp->wp_peer->pe_port);
		mpk_map_put(&p, "address", mpk_strdup(&z, addr, strlen(addr)));
		mpk_map_put(&p, "status", mpk_str(wit_status_names[wp->wp_status]));
		mpk_map_put(&p, "verified", wp->wp_last.wk_env != NULL ?
		    wit_ckpt_obj(&z, &wp->wp_last) : mpk_nil());
		mpk_map_put(&p, "checked_ms", wp->wp_checked_ms > 0 ?
		    mpk_uint(wp->wp_checked_ms) : mpk_nil());
		mpk_map_put(&p, "cosigned", mpk_uint(wp->wp_cosigned));
		if (wp->wp_error[0] != '\0')
			mpk_map_put(&p, "error", mpk_strdup(&z, wp->wp_error,
			    strlen(wp->wp_error)));
		if (wp->wp_ev != NULL) {
			mpk_map_init(&e, &z, 4);
			mpk_map_put(&e, "reason", mpk_strdup(&z, wp->wp_ev->we_reason,
			    strlen(wp->wp_ev->we_reason)));
			mpk_map_put(&e, "t_ms", mpk_uint(wp->wp_ev->we_t_ms));
			mpk_map_put(&e, "seen", wit_ckpt_obj(&z, &wp->wp_ev->we_seen));
			mpk_map_put(&e, "shown", wit_ckpt_obj(&z, &wp->wp_ev->we_shown));
			mpk_map_put(&p, "evidence", e.mm_obj);
		}
		list.via.array.ptr[i] = p.mm_obj;
	}
	if (wi != NULL)
		pthread_mutex_unlock(&wi->wi_mtx);
	mpk_map_put(&m, "peers", list);
	http_reply(req, 200, &m.mm_obj);
	msgpack_zone_destroy(&z);
}

/* A cosignatures read: parsed on the loop, read on a worker. */
struct wit_cosigs {
	struct gw		*ws_gw;
	struct evhttp_request	*ws_req;
	char			 ws_origin[LB_ORIGIN_MAX];
	bool			 ws_has_size;
	uint64_t		 ws_size;
	msgpack_zone		 ws_zone;
	msgpack_object		 ws_list;	/* the newest WITNESS_COSIGS_MAX, a ring */
	uint32_t		 ws_n;
	uint64_t		 ws_seen;
	bool			 ws_failed;
};

static int
wit_cosig_one(void *arg, const uint8_t *key, size_t keylen, const uint8_t *val, size_t vallen)
{
	struct wit_cosigs	*ws = arg;
	struct mpk_map		 m;
	size_t			 olen = strlen(ws->ws_origin), at = 1 + olen + 1;
	uint64_t		 size = 0;
	int			 i;

	if (keylen < at + 8)
		return 0;
	for (i = 0; i < 8; i++)
		size = size << 8 | key[at + (size_t)i];
	mpk_map_init(&m, &ws->ws_zone, 4);
	mpk_map_put(&m, "origin", mpk_str(ws->ws_origin));
	mpk_map_put(&m, "size", mpk_uint(size));
	mpk_map_put(&m, "witness", mpk_strdup(&ws->ws_zone, (const char *)key + at + 8,
	    keylen - at - 8));
	mpk_map_put(&m, "envelope", mpk_bindup(&ws->ws_zone, val, vallen));
	ws->ws_list.via.array.ptr[ws->ws_seen++ % WITNESS_COSIGS_MAX] = m.mm_obj;
	return 0;
}

static void
wit_cosigs_work(void *arg)
{
	struct wit_cosigs	*ws = arg;
	uint8_t			 key[JOURNAL_WITNESS_KEY_MAX];
	size_t			 klen;
	msgpack_object		 out;
	uint32_t		 i, n, first;

	ws->ws_list = mpk_array(&ws->ws_zone, WITNESS_COSIGS_MAX);
	klen = wit_key(key, WK_COSIG, ws->ws_origin, true, ws->ws_size, NULL);
	if (!ws->ws_has_size)
		klen -= 8;
	if (journal_witness_each(ws->ws_gw->gw_journal, key, klen, wit_cosig_one, ws) != 0) {
		ws->ws_failed = true;
		return;
	}
	/* In size order, oldest of the kept ones first. */
	n = ws->ws_seen < WITNESS_COSIGS_MAX ? (uint32_t)ws->ws_seen : WITNESS_COSIGS_MAX;
	first = ws->ws_seen < WITNESS_COSIGS_MAX ? 0 : (uint32_t)(ws->ws_seen % WITNESS_COSIGS_MAX);
	out = mpk_array(&ws->ws_zone, n);
	for (i = 0; i < n; i++)
		out.via.array.ptr[i] = ws->ws_list.via.array.ptr[(first + i) % WITNESS_COSIGS_MAX];
	ws->ws_list = out;
	ws->ws_n = n;
}

static void
wit_cosigs_done(void *arg)
{
	struct wit_cosigs	*ws = arg;
	struct mpk_map		 m;

	if (ws->ws_failed)
		http_error(ws->ws_req, LB_E_JOURNAL_UNAVAILABLE, "the witness database could not "
		    "be read");
	else {
		mpk_map_init(&m, &ws->ws_zone, 2);
		mpk_map_put(&m, "cosignatures", ws->ws_list);
		mpk_map_put(&m, "more", mpk_bool(ws->ws_seen > ws->ws_n));
		http_reply(ws->ws_req, 200, &m.mm_obj);
	}
	ws->ws_gw->gw_inflight--;
	msgpack_zone_destroy(&ws->ws_zone);
	free(ws);
}

void
http_cosignatures(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    const char *path)
{
	struct wit_cosigs	*ws;
	struct evkeyvalq	 q;
	const char		*query, *origin = NULL;
	bool			 ok;

	(void)pr;
	(void)path;
	if ((ws = calloc(1, sizeof(*ws))) == NULL) {
		http_error(req, LB_E_INTERNAL, "out of memory");
		return;
	}
	TAILQ_INIT(&q);
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	ok = query != NULL && evhttp_parse_query_str(query, &q) == 0 &&
	    (origin = evhttp_find_header(&q, "origin")) != NULL && origin[0] != '\0' &&
	    strlen(origin) < sizeof(ws->ws_origin) && strchr(origin, ',') == NULL &&
	    http_query_u64(&q, "size", &ws->ws_size, &ws->ws_has_size);
	if (ok)
		snprintf(ws->ws_origin, sizeof(ws->ws_origin), "%s", origin);
	evhttp_clear_headers(&q);
	if (!ok) {
		free(ws);
		http_error(req, LB_E_BAD_REQUEST, "origin (GATEWAY_ID/NODE_ID, at most %d bytes) is "
		    "required, and size must be a decimal integer", LB_ORIGIN_MAX - 1);
		return;
	}
	ws->ws_gw = gw;
	ws->ws_req = req;
	msgpack_zone_init(&ws->ws_zone, 8192);
	gw->gw_inflight++;
	if (workers_submit(gw->gw_workers, gw->gw_base, wit_cosigs_work, wit_cosigs_done,
	    ws) != 0) {
		ws->ws_failed = true;
		wit_cosigs_done(ws);
	}
}
