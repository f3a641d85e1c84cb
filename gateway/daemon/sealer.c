/*
 * sealer.c - batch sealing across exchanges (docs/contract.md §6).
 *
 * Every exchange hands its seal claims to the one sealer of the gateway.
 * Claims for the same seal key wait in a queue until one of these happens:
 *
 *	- the queue holds the batch maximum (256 claims by default);
 *	- the window (2 ms by default) that the queue's first claim opened
 *	  has passed;
 *	- no exchange that could still add a claim is in flight: waiting
 *	  would then only add latency, so an idle gateway signs a lone claim
 *	  at once (a batch of one).
 *
 * A flushed queue becomes a batch that is signed on the worker pool; its
 * claims complete on the event loop, each with its own receipt.  Queues
 * and counters are touched on the loop thread only; a batch in a worker
 * owns its claims until its completion runs on the loop.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include "gateway.h"

/* Claims of one seal key waiting for their batch. */
struct sealq {
	struct sealer		*qu_sealer;
	const struct seal_key	*qu_key;
	struct seal_req		*qu_head, **qu_tail;
	size_t			 qu_n;
	struct event		*qu_timer;	/* the window opened by the first claim */
	struct sealq		*qu_next;
};

/* A flushed queue on its way through a worker. */
struct seal_run {
	struct sealer		*sb_sealer;
	const struct seal_key	*sb_key;
	struct seal_req		*sb_head;
	size_t			 sb_n;
	uint64_t		 sb_iat;
	uint64_t		 sb_sign_us;	/* the worker's time signing it */
};

struct sealer {
	struct event_base	*se_base;
	struct workers		*se_workers;
	struct timeval		 se_window;
	size_t			 se_max;
	int			 se_expect;	/* exchanges that may still add claims */
	struct sealq		*se_queues;
	uint64_t		 se_batches;	/* statistics, loop thread only */
	uint64_t		 se_claims;
	int			 se_running;	/* batches on the workers */
	bool			 se_closed;	/* freed by the last running batch */
};

static void	sealer_flush(struct sealq *, const char *why);

static void
sealer_window_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sealer_flush(arg, "the window closed");
}

void
sealer_set(struct sealer *s, unsigned window_us, size_t max)
{
	if (max == 0 || max > SEALER_MAX_BATCH)
		max = SEALER_MAX_BATCH;
	s->se_window.tv_sec = window_us / 1000000;
	s->se_window.tv_usec = window_us % 1000000;
	s->se_max = max;
}

struct sealer *
sealer_new(struct event_base *base, struct workers *w, unsigned window_us, size_t max)
{
	struct sealer	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->se_base = base;
	s->se_workers = w;
	sealer_set(s, window_us, max);
	return s;
}

void
sealer_free(struct sealer *s)
{
	if (s == NULL)
		return;
	while (s->se_queues != NULL)
		sealer_flush(s->se_queues, "the sealer stops");
	/*
	 * Batches still in a worker post their completion to the loop, which
	 * needs the sealer: the last of them frees it.
	 */
	if (s->se_running > 0)
		s->se_closed = true;
	else
		free(s);
}

void
sealer_stats(const struct sealer *s, uint64_t *batches, uint64_t *claims)
{
	*batches = s->se_batches;
	*claims = s->se_claims;
}

static void
sealer_run_work(void *arg)
{
	struct seal_run	*sb = arg;
	struct seal_req	*r;
	const uint8_t	**claims = NULL;
	size_t		 *lens = NULL, *rlens = NULL, i;
	uint8_t		**receipts = NULL;
	int		  status = -1;
	uint64_t	  t0 = now_us_mono();

	claims = calloc(sb->sb_n, sizeof(*claims));
	lens = calloc(sb->sb_n, sizeof(*lens));
	rlens = calloc(sb->sb_n, sizeof(*rlens));
	receipts = calloc(sb->sb_n, sizeof(*receipts));
	if (claims == NULL || lens == NULL || rlens == NULL || receipts == NULL)
		goto done;
	for (r = sb->sb_head, i = 0; r != NULL; r = r->sr_next, i++) {
		claims[i] = r->sr_claim;
		lens[i] = r->sr_claim_len;
	}
	if (seal_batch(sb->sb_key, claims, lens, sb->sb_n, sb->sb_iat, receipts, rlens) != 0)
		goto done;
	for (r = sb->sb_head, i = 0; r != NULL; r = r->sr_next, i++) {
		r->sr_receipt = receipts[i];
		r->sr_receipt_len = rlens[i];
		r->sr_index = i;
		r->sr_size = sb->sb_n;
	}
	status = 0;
done:
	sb->sb_sign_us = now_us_mono() - t0;
	for (r = sb->sb_head; r != NULL; r = r->sr_next)
		r->sr_status = status;
	free(claims);
	free(lens);
	free(rlens);
	free(receipts);
}

/* Completes every claim of a signed batch (event loop). */
static void
sealer_run_done(void *arg)
{
	struct seal_run	*sb = arg;
	struct sealer	*s = sb->sb_sealer;
	struct seal_req	*r, *next;
	const char	*alg = envelope_alg_name(sb->sb_key->sk_alg);

	/* Before the callbacks: the claims' owners keep the key alive until then. */
	metrics_observe(METRICS_SEAL_BATCH, (double)sb->sb_n, &alg);
	metrics_observe(METRICS_SEAL_SIGN, (double)sb->sb_sign_us / 1e6, &alg);
	for (r = sb->sb_head; r != NULL; r = next) {
		next = r->sr_next;	/* the callback may free r */
		r->sr_next = NULL;
		r->sr_done(r->sr_arg, r);
	}
	free(sb);
	if (--s->se_running == 0 && s->se_closed)
		free(s);
}

/* Hands a queue to the worker pool as one batch and forgets the queue. */
static void
sealer_flush(struct sealq *q, const char *why)
{
	struct sealer	 *s = q->qu_sealer;
	struct sealq	**pp;
	struct seal_run	 *sb;

	for (pp = &s->se_queues; *pp != q; pp = &(*pp)->qu_next)
		;
	*pp = q->qu_next;
	event_free(q->qu_timer);
	if ((sb = calloc(1, sizeof(*sb))) == NULL)
		goto fail;
	sb->sb_sealer = s;
	sb->sb_key = q->qu_key;
	sb->sb_head = q->qu_head;
	sb->sb_n = q->qu_n;
	sb->sb_iat = now_ms() / 1000;
	s->se_batches++;
	s->se_claims += q->qu_n;
	s->se_running++;
	log_debug("sealer: batch of %zu claims for seal %s (%s)", q->qu_n, q->qu_key->sk_id, why);
	if (workers_submit(s->se_workers, s->se_base, sealer_run_work, sealer_run_done,
	    sb) != 0) {
		s->se_running--;
		free(sb);
		goto fail;
	}
	free(q);
	return;
fail:
	/* The claims fail without a receipt; their owners answer for them. */
	{
		struct seal_req	*r, *next;

		for (r = q->qu_head; r != NULL; r = next) {
			next = r->sr_next;
			r->sr_next = NULL;
			r->sr_status = -1;
			r->sr_done(r->sr_arg, r);
		}
	}
	free(q);
}

static struct sealq *
sealer_queue(struct sealer *s, const struct seal_key *sk)
{
	struct sealq	*q;

	for (q = s->se_queues; q != NULL; q = q->qu_next)
		if (q->qu_key == sk)
			return q;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	if ((q->qu_timer = evtimer_new(s->se_base, sealer_window_cb, q)) == NULL ||
	    evtimer_add(q->qu_timer, &s->se_window) != 0) {
		if (q->qu_timer != NULL)
			event_free(q->qu_timer);
		free(q);
		return NULL;
	}
	q->qu_sealer = s;
	q->qu_key = sk;
	q->qu_tail = &q->qu_head;
	q->qu_next = s->se_queues;
	s->se_queues = q;
	return q;
}

/* With no exchange left that could add a claim, waiting only adds latency. */
static void
sealer_idle_flush(struct sealer *s)
{
	if (s->se_expect > 0)
		return;
	while (s->se_queues != NULL)
		sealer_flush(s->se_queues, "no exchange is on its way");
}

void
sealer_expect(struct sealer *s)
{
	s->se_expect++;
}

void
sealer_unexpect(struct sealer *s)
{
	if (s->se_expect > 0)
		s->se_expect--;
	sealer_idle_flush(s);
}

int
sealer_submit(struct sealer *s, struct seal_req *const *reqs, size_t n)
{
	struct sealq	*q;
	size_t		 i;

	for (i = 0; i < n; i++) {
		struct seal_req *r = reqs[i];

		r->sr_next = NULL;
		r->sr_receipt = NULL;
		r->sr_receipt_len = 0;
		r->sr_status = -1;
		if ((q = sealer_queue(s, r->sr_key)) == NULL) {
			r->sr_done(r->sr_arg, r);
			continue;
		}
		*q->qu_tail = r;
		q->qu_tail = &r->sr_next;
		if (++q->qu_n >= s->se_max)
			sealer_flush(q, "the batch is full");
	}
	sealer_idle_flush(s);
	return 0;
}
