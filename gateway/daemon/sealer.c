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
 * claims complete on the event loop each came from (sr_base), each with
 * its own receipt: the worker posts them there itself, grouped by loop.
 *
 * One sealer serves every loop, so that claims of all of them share a
 * batch.  Its mutex guards the queues and counters and is held for their
 * arithmetic only: logging, the workers' queue and the claims' callbacks
 * happen after it is released.  The window has one timer, on the main
 * thread's base (se_base), which is otherwise idle and so fires on time:
 * it flushes the queues whose window has passed and is armed again for the
 * next one.  A queue flushed earlier (full, or idle) leaves it alone; the
 * timer then finds nothing to do.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include "gateway.h"

/* Claims of one seal key waiting for their batch. */
struct sealq {
	const struct seal_key	*qu_key;
	struct seal_req		*qu_head, **qu_tail;
	size_t			 qu_n;
	uint64_t		 qu_deadline_us;	/* the window its first claim opened */
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
	const char		*sb_why;	/* why it was flushed, for the log */
	struct seal_run		*sb_next;	/* flushed together, to start */
};

struct sealer {
	pthread_mutex_t		 se_lock;	/* everything below but se_base, se_workers */
	struct event_base	*se_base;
	struct workers		*se_workers;
	struct event		*se_timer;	/* the earliest window of se_queues */
	uint64_t		 se_armed_us;	/* when se_timer fires; 0: not armed */
	uint64_t		 se_window_us;
	size_t			 se_max;
	int			 se_expect;	/* exchanges that may still add claims */
	struct sealq		*se_queues;
	uint64_t		 se_batches;	/* statistics */
	uint64_t		 se_claims;
	int			 se_running;	/* batches on the workers */
	bool			 se_closed;	/* freed by the last running batch */
};

static void
sealer_destroy(struct sealer *s)
{
	if (s->se_timer != NULL)
		event_free(s->se_timer);
	pthread_mutex_destroy(&s->se_lock);
	free(s);
}

/* On sr_base's loop: the callbacks of a chain of claims. */
static void
sealer_deliver(void *arg)
{
	struct seal_req	*r, *next;

	for (r = arg; r != NULL; r = next) {
		next = r->sr_next;	/* the callback may free r */
		r->sr_next = NULL;
		r->sr_done(r->sr_arg, r);
	}
}

/*
 * Hands every claim of the chain head to the loop it came from, one post
 * per loop; a claim without sr_base goes to the sealer's base.
 */
static void
sealer_complete(struct sealer *s, struct seal_req *head)
{
	struct seal_req		*r, **pp, *chain, **tail;
	struct event_base	*base;

	while (head != NULL) {
		base = head->sr_base;
		chain = NULL;
		tail = &chain;
		for (pp = &head; (r = *pp) != NULL; ) {
			if (r->sr_base != base) {
				pp = &r->sr_next;
				continue;
			}
			*pp = r->sr_next;
			r->sr_next = NULL;
			*tail = r;
			tail = &r->sr_next;
		}
		if (loop_post(base != NULL ? base : s->se_base, sealer_deliver, chain) != 0)
			log_warnx("sealer: cannot hand seals back to their event loop");
	}
}

/* Claims that cannot be signed fail without a receipt; their owners answer. */
static void
sealer_fail(struct sealer *s, struct seal_req *head)
{
	struct seal_req	*r;

	for (r = head; r != NULL; r = r->sr_next)
		r->sr_status = -1;
	sealer_complete(s, head);
}

/* Arms the timer for at (monotonic microseconds) unless it fires before.  Locked. */
static void
sealer_arm(struct sealer *s, uint64_t at)
{
	uint64_t	now = now_us_mono(), d;
	struct timeval	tv;

	if (s->se_armed_us != 0 && s->se_armed_us <= at)
		return;
	d = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(d / 1000000);
	tv.tv_usec = (suseconds_t)(d % 1000000);
	if (evtimer_add(s->se_timer, &tv) == 0)
		s->se_armed_us = at;
}

/* Takes q off the queues as a batch to start (sealer_start).  Locked. */
static struct seal_run *
sealer_take(struct sealer *s, struct sealq *q, const char *why, struct seal_req **failed)
{
	struct sealq	**pp;
	struct seal_run	 *sb;

	for (pp = &s->se_queues; *pp != q; pp = &(*pp)->qu_next)
		;
	*pp = q->qu_next;
	if ((sb = calloc(1, sizeof(*sb))) == NULL) {
		*q->qu_tail = *failed;
		*failed = q->qu_head;
		free(q);
		return NULL;
	}
	sb->sb_sealer = s;
	sb->sb_key = q->qu_key;
	sb->sb_head = q->qu_head;
	sb->sb_n = q->qu_n;
	sb->sb_why = why;
	s->se_batches++;
	s->se_claims += q->qu_n;
	s->se_running++;
	free(q);
	return sb;
}

static void	sealer_run_work(void *arg);

/*
 * Unlocked: the batches taken go to the workers, the claims that could
 * not be batched fail.
 */
static void
sealer_start(struct sealer *s, struct seal_run *runs, struct seal_req *failed)
{
	struct seal_run	*sb, *next;

	for (sb = runs; sb != NULL; sb = next) {
		next = sb->sb_next;
		sb->sb_next = NULL;
		sb->sb_iat = now_ms() / 1000;
		log_debug("sealer: batch of %zu claims for seal %s (%s)", sb->sb_n,
		    sb->sb_key->sk_id, sb->sb_why);
		if (workers_submit(s->se_workers, NULL, sealer_run_work, NULL, sb) == 0)
			continue;
		sealer_fail(s, sb->sb_head);
		free(sb);
		pthread_mutex_lock(&s->se_lock);
		s->se_running--;
		pthread_mutex_unlock(&s->se_lock);
	}
	if (failed != NULL)
		sealer_fail(s, failed);
}

/* Takes every queue, or (when not all) those whose window has passed.  Locked. */
static struct seal_run *
sealer_take_all(struct sealer *s, bool all, const char *why, struct seal_req **failed)
{
	struct seal_run	*runs = NULL, *sb;
	struct sealq	*q, *next;
	uint64_t	 now = now_us_mono(), first = 0;

	for (q = s->se_queues; q != NULL; q = next) {
		next = q->qu_next;
		if (!all && q->qu_deadline_us > now) {
			if (first == 0 || q->qu_deadline_us < first)
				first = q->qu_deadline_us;
			continue;
		}
		if ((sb = sealer_take(s, q, why, failed)) != NULL) {
			sb->sb_next = runs;
			runs = sb;
		}
	}
	if (first != 0)
		sealer_arm(s, first);
	return runs;
}

static void
sealer_window_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sealer	*s = arg;
	struct seal_run	*runs;
	struct seal_req	*failed = NULL;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&s->se_lock);
	s->se_armed_us = 0;
	runs = sealer_take_all(s, false, "the window closed", &failed);
	pthread_mutex_unlock(&s->se_lock);
	sealer_start(s, runs, failed);
}

void
sealer_set(struct sealer *s, unsigned window_us, size_t max)
{
	if (max == 0 || max > SEALER_MAX_BATCH)
		max = SEALER_MAX_BATCH;
	pthread_mutex_lock(&s->se_lock);
	s->se_window_us = window_us;
	s->se_max = max;
	pthread_mutex_unlock(&s->se_lock);
}

struct sealer *
sealer_new(struct event_base *base, struct workers *w, unsigned window_us, size_t max)
{
	struct sealer	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	pthread_mutex_init(&s->se_lock, NULL);
	s->se_base = base;
	s->se_workers = w;
	if ((s->se_timer = evtimer_new(base, sealer_window_cb, s)) == NULL) {
		sealer_destroy(s);
		return NULL;
	}
	sealer_set(s, window_us, max);
	return s;
}

void
sealer_free(struct sealer *s)
{
	struct seal_run	*runs;
	struct seal_req	*failed = NULL;
	bool		 now;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->se_lock);
	runs = sealer_take_all(s, true, "the sealer stops", &failed);
	pthread_mutex_unlock(&s->se_lock);
	sealer_start(s, runs, failed);
	evtimer_del(s->se_timer);
	/*
	 * Batches still in a worker complete the claims and then count
	 * themselves out: the last of them frees the sealer.
	 */
	pthread_mutex_lock(&s->se_lock);
	if (!(now = s->se_running == 0))
		s->se_closed = true;
	pthread_mutex_unlock(&s->se_lock);
	if (now)
		sealer_destroy(s);
}

void
sealer_stats(const struct sealer *s, uint64_t *batches, uint64_t *claims)
{
	struct sealer	*ms = (struct sealer *)s;	/* the lock, not the counts, changes */

	pthread_mutex_lock(&ms->se_lock);
	*batches = s->se_batches;
	*claims = s->se_claims;
	pthread_mutex_unlock(&ms->se_lock);
}

/* On a worker: signs the batch and completes its claims on their loops. */
static void
sealer_run_work(void *arg)
{
	struct seal_run	*sb = arg;
	struct sealer	*s = sb->sb_sealer;
	struct seal_req	*r;
	const uint8_t	**claims = NULL;
	size_t		 *lens = NULL, *rlens = NULL, i;
	uint8_t		**receipts = NULL;
	int		  status = -1;
	uint64_t	  t0 = now_us_mono();
	const char	 *alg;
	bool		  last;

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
	/* Before the callbacks: the claims' owners keep the key alive until then. */
	alg = envelope_alg_name(sb->sb_key->sk_alg);
	metrics_observe(METRICS_SEAL_BATCH, (double)sb->sb_n, &alg);
	metrics_observe(METRICS_SEAL_SIGN, (double)sb->sb_sign_us / 1e6, &alg);
	sealer_complete(s, sb->sb_head);
	free(sb);
	pthread_mutex_lock(&s->se_lock);
	last = --s->se_running == 0 && s->se_closed;
	pthread_mutex_unlock(&s->se_lock);
	if (last)
		sealer_destroy(s);
}

/* A queue for sk, made when missing; its window opens now.  Locked. */
static struct sealq *
sealer_queue(struct sealer *s, const struct seal_key *sk)
{
	struct sealq	*q;

	for (q = s->se_queues; q != NULL; q = q->qu_next)
		if (q->qu_key == sk)
			return q;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->qu_key = sk;
	q->qu_tail = &q->qu_head;
	q->qu_deadline_us = now_us_mono() + s->se_window_us;
	q->qu_next = s->se_queues;
	s->se_queues = q;
	sealer_arm(s, q->qu_deadline_us);
	return q;
}

void
sealer_expect(struct sealer *s)
{
	pthread_mutex_lock(&s->se_lock);
	s->se_expect++;
	pthread_mutex_unlock(&s->se_lock);
}

void
sealer_unexpect(struct sealer *s)
{
	struct seal_run	*runs = NULL;
	struct seal_req	*failed = NULL;

	pthread_mutex_lock(&s->se_lock);
	if (s->se_expect > 0)
		s->se_expect--;
	/* With no exchange left that could add a claim, waiting only adds latency. */
	if (s->se_expect == 0)
		runs = sealer_take_all(s, true, "no exchange is on its way", &failed);
	pthread_mutex_unlock(&s->se_lock);
	sealer_start(s, runs, failed);
}

int
sealer_submit(struct sealer *s, struct seal_req *const *reqs, size_t n)
{
	struct seal_run	*runs = NULL, *sb;
	struct seal_req	*failed = NULL;
	struct sealq	*q;
	size_t		 i;

	pthread_mutex_lock(&s->se_lock);
	for (i = 0; i < n; i++) {
		struct seal_req *r = reqs[i];

		r->sr_receipt = NULL;
		r->sr_receipt_len = 0;
		r->sr_status = -1;
		if ((q = sealer_queue(s, r->sr_key)) == NULL) {
			r->sr_next = failed;
			failed = r;
			continue;
		}
		r->sr_next = NULL;
		*q->qu_tail = r;
		q->qu_tail = &r->sr_next;
		if (++q->qu_n >= s->se_max && (sb = sealer_take(s, q, "the batch is full",
		    &failed)) != NULL) {
			sb->sb_next = runs;
			runs = sb;
		}
	}
	if (s->se_expect == 0) {
		sb = sealer_take_all(s, true, "no exchange is on its way", &failed);
		if (sb != NULL) {
			struct seal_run *t = sb;

			while (t->sb_next != NULL)
				t = t->sb_next;
			t->sb_next = runs;
			runs = sb;
		}
	}
	pthread_mutex_unlock(&s->se_lock);
	sealer_start(s, runs, failed);
	return 0;
}
