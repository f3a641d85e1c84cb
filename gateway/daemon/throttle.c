/*
 * throttle.c - the rate limit of every client (docs/consent.md): one token
 * bucket per authenticated client, by role and certificate CN, whatever it
 * asks for.  http.c takes a token on the loop before any handler runs, so
 * before anything is journaled: no client can make the journal grow faster
 * than its bucket lets it.
 *
 * A request over the limit is answered 429 rate_limited and not journaled
 * on its own, since a record per refusal would let a flood of refusals
 * grow the journal as fast as the flood.  The refusals are counted per
 * client instead, and one "deny" record per client says how many there
 * were, at most once a second (THROTTLE_SUMMARY_MS), and once more when
 * the daemon stops.  Contract docs/contract.md §7 journals every denial; these ones
 * are journaled by that count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>

#include "gateway.h"

#define THROTTLE_SUMMARY_MS	1000
/* Clients tracked at once; the least recently seen one makes room. */
#define THROTTLE_BUCKETS	1024

struct throttle {
	struct gw		*th_gw;
	struct policy_rates	*th_rates;
	struct event		*th_timer;	/* pending while refusals wait for their record */
	atomic_uint_least32_t	 th_per_s;	/* SIGHUP sets them while loops read them */
	atomic_uint_least32_t	 th_burst;
};

/* The summaries being built by one drain. */
struct throttle_batch {
	struct journal	*tb_journal;
	struct jrec	*tb_recs;
	size_t		 tb_n;
};

static void
throttle_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	throttle_flush(arg);
}

struct throttle *
throttle_new(struct gw *gw, uint32_t per_s, uint32_t burst)
{
	struct throttle	*th;

	if ((th = calloc(1, sizeof(*th))) == NULL)
		return NULL;
	th->th_gw = gw;
	throttle_set(th, per_s, burst);
	if ((th->th_rates = policy_rates_new(THROTTLE_BUCKETS)) == NULL ||
	    (th->th_timer = evtimer_new(gw->gw_base, throttle_timer_cb, gw)) == NULL) {
		throttle_free(th);
		return NULL;
	}
	return th;
}

void
throttle_set(struct throttle *th, uint32_t per_s, uint32_t burst)
{
	th->th_per_s = per_s;
	th->th_burst = burst;
}

void
throttle_free(struct throttle *th)
{
	if (th == NULL)
		return;
	if (th->th_timer != NULL)
		event_free(th->th_timer);
	policy_rates_free(th->th_rates);
	free(th);
}

bool
throttle_admit(struct gw *gw, struct evhttp_request *req, const struct principal *pr)
{
	struct throttle	*th = gw->gw_throttle;
	struct timeval	 tv = { THROTTLE_SUMMARY_MS / 1000, (THROTTLE_SUMMARY_MS % 1000) * 1000 };
	uint32_t	 per_s = th->th_per_s, burst = th->th_burst;

	if (policy_bucket_take(th->th_rates, pr->pr_role, pr->pr_id, per_s, burst,
	    now_us_mono()) == 0)
		return true;
	/*
	 * The first refusal since the last summary schedules the next one.  The
	 * timer is the main thread's; libevent locks its base, so any loop may
	 * add it.
	 */
	if (!evtimer_pending(th->th_timer, NULL))
		evtimer_add(th->th_timer, &tv);
	http_error(req, LB_E_RATE_LIMITED, "%s %s exceeds the gateway's limit of %u requests "
	    "per second per client (burst %u); refusals over it are journaled as a count",
	    pr->pr_role, pr->pr_id, per_s, burst);
	return false;
}

/*
 * One summary record: who (a consumer by its id, an auditor by its
 * pseudonym like its reads, any other role as "role:id"; nobody when the
 * client's bucket was given to another meanwhile) and how many refusals.
 */
static void
throttle_summary(void *arg, const char *role, const char *id, uint64_t refused)
{
	struct throttle_batch	*tb = arg;
	struct jrec		*r = &tb->tb_recs[tb->tb_n++];

	memset(r, 0, sizeof(*r));
	r->jr_kind = JK_DENY;
	r->jr_t_ms = now_ms();
	snprintf(r->jr_op, sizeof(r->jr_op), "client_rate");
	snprintf(r->jr_decision, sizeof(r->jr_decision), "deny");
	snprintf(r->jr_code, sizeof(r->jr_code), "%s", lb_err_code(LB_E_RATE_LIMITED));
	r->jr_has_count = true;
	r->jr_count = refused;
	if (role == NULL) {
		log_warnx("%llu requests of clients no longer tracked were over the rate limit",
		    (unsigned long long)refused);
		return;
	}
	if (strcmp(role, "consumer") == 0)
		snprintf(r->jr_consumer, sizeof(r->jr_consumer), "%s", id);
	else if (strcmp(role, "auditor") == 0) {
		r->jr_has_actor = true;
		journal_pseudonym(tb->tb_journal, id, r->jr_actor);
	} else
		snprintf(r->jr_principal, sizeof(r->jr_principal), "%s:%s", role, id);
	log_warnx("%s %s: %llu requests over the rate limit refused", role, id,
	    (unsigned long long)refused);
}

/* On the journal writer's thread: nobody waits for these records. */
static void
throttle_journaled(void *arg, int status, uint64_t first_seq)
{
	(void)arg;
	(void)first_seq;
	if (status != 0)
		log_warnx("the journal could not commit the summaries of refused requests");
}

void
throttle_flush(struct gw *gw)
{
	struct throttle		*th = gw->gw_throttle;
	struct throttle_batch	 tb;

	if (th == NULL || gw->gw_journal == NULL)
		return;
	evtimer_del(th->th_timer);
	memset(&tb, 0, sizeof(tb));
	tb.tb_journal = gw->gw_journal;
	/* One record per bucket, and one for the buckets given away. */
	if ((tb.tb_recs = calloc(THROTTLE_BUCKETS + 1, sizeof(*tb.tb_recs))) == NULL) {
		struct timeval tv = { THROTTLE_SUMMARY_MS / 1000, 0 };

		log_warnx("out of memory: the summary of refused requests waits");
		evtimer_add(th->th_timer, &tv);
		goto done;
	}
	policy_rates_drain(th->th_rates, throttle_summary, &tb);
	if (tb.tb_n > 0 && journal_append(gw->gw_journal, NULL, tb.tb_recs, tb.tb_n,
	    throttle_journaled, NULL) != 0)
		log_warnx("the journal is not accepting records: %zu summaries of refused "
		    "requests are lost", tb.tb_n);
done:
	free(tb.tb_recs);
}
