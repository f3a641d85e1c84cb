/*
 * worker.c - a small pool of threads for signing, verifying and parsing, so
 * the event loop never does CPU-heavy work, and loop_post() to hand results
 * back to the loop.
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/time.h>

#include <event2/event.h>

#include "lianban.h"

struct job {
	void			(*jb_work)(void *);
	void			(*jb_done)(void *);
	void			 *jb_arg;
	struct event_base	 *jb_base;
	struct job		 *jb_next;
};

struct workers {
	pthread_mutex_t	 w_lock;
	pthread_cond_t	 w_cond;
	struct job	*w_head, *w_tail;
	bool		 w_stop;
	int		 w_n;
	size_t		 w_queued;	/* jobs in w_head's list */
	pthread_t	*w_threads;
};

struct post {
	void	(*ps_fn)(void *);
	void	 *ps_arg;
};

static void
loop_post_cb(evutil_socket_t fd, short what, void *arg)
{
	struct post	*ps = arg;

	(void)fd;
	(void)what;
	ps->ps_fn(ps->ps_arg);
	free(ps);
}

int
loop_post(struct event_base *base, void (*fn)(void *), void *arg)
{
	struct timeval	 now = { 0, 0 };
	struct post	*ps;

	if ((ps = malloc(sizeof(*ps))) == NULL)
		return -1;
	ps->ps_fn = fn;
	ps->ps_arg = arg;
	/*
	 * event_base_once takes the base lock and wakes the loop, so it is
	 * safe from any thread once evthread_use_pthreads() has run.
	 */
	if (event_base_once(base, -1, EV_TIMEOUT, loop_post_cb, ps, &now) != 0) {
		free(ps);
		return -1;
	}
	return 0;
}

static void *
workers_main(void *arg)
{
	struct workers	*w = arg;
	struct job	*jb;

	for (;;) {
		pthread_mutex_lock(&w->w_lock);
		while (w->w_head == NULL && !w->w_stop)
			pthread_cond_wait(&w->w_cond, &w->w_lock);
		if ((jb = w->w_head) == NULL) {
			pthread_mutex_unlock(&w->w_lock);
			return NULL;	/* stopping and drained */
		}
		if ((w->w_head = jb->jb_next) == NULL)
			w->w_tail = NULL;
		w->w_queued--;
		pthread_mutex_unlock(&w->w_lock);

		jb->jb_work(jb->jb_arg);
		if (jb->jb_done != NULL &&
		    loop_post(jb->jb_base, jb->jb_done, jb->jb_arg) != 0)
			log_warnx("worker: cannot hand a result back to the event loop");
		free(jb);
	}
}

struct workers *
workers_new(int nthreads)
{
	struct workers	*w;
	int		 i;

	if (nthreads < 1)
		nthreads = 1;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	if ((w->w_threads = calloc((size_t)nthreads, sizeof(pthread_t))) == NULL) {
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->w_lock, NULL);
	pthread_cond_init(&w->w_cond, NULL);
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&w->w_threads[i], NULL, workers_main, w) != 0)
			break;
		w->w_n++;
	}
	if (w->w_n == 0) {
		workers_free(w);
		return NULL;
	}
	return w;
}

void
workers_free(struct workers *w)
{
	int	i;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->w_lock);
	w->w_stop = true;
	pthread_cond_broadcast(&w->w_cond);
	pthread_mutex_unlock(&w->w_lock);
	for (i = 0; i < w->w_n; i++)
		pthread_join(w->w_threads[i], NULL);
	pthread_mutex_destroy(&w->w_lock);
	pthread_cond_destroy(&w->w_cond);
	free(w->w_threads);
	free(w);
}

int
workers_submit(struct workers *w, struct event_base *base, void (*work)(void *),
    void (*done)(void *), void *arg)
{
	struct job	*jb;

	if ((jb = calloc(1, sizeof(*jb))) == NULL)
		return -1;
	jb->jb_work = work;
	jb->jb_done = done;
	jb->jb_arg = arg;
	jb->jb_base = base;
	pthread_mutex_lock(&w->w_lock);
	if (w->w_stop) {
		pthread_mutex_unlock(&w->w_lock);
		free(jb);
		return -1;
	}
	if (w->w_tail != NULL)
		w->w_tail->jb_next = jb;
	else
		w->w_head = jb;
	w->w_tail = jb;
	w->w_queued++;
	pthread_cond_signal(&w->w_cond);
	pthread_mutex_unlock(&w->w_lock);
	return 0;
}

size_t
workers_queued(struct workers *w)
{
	size_t	n;

	pthread_mutex_lock(&w->w_lock);
	n = w->w_queued;
	pthread_mutex_unlock(&w->w_lock);
	return n;
}
