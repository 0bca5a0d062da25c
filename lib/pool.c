/* pool.c: worker threads started on demand, kept, their start failures reported to the caller */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>

#include "pool.h"
#include "util.h"

#define POOL_MAX_CAP 128
#define POOL_STACK   (1u << 20) /* fsync, crypt and chain checks need little */

static uv_once_t once = UV_ONCE_INIT;
static uv_mutex_t mu;
static uv_cond_t cond;
static bool ready;
static struct st_job *head, *tail;
static unsigned threads, idle, queued, max_threads = 4; /* queued: jobs no thread has taken */

static void init(void)
{
	ready = uv_mutex_init(&mu) == 0 && uv_cond_init(&cond) == 0;
}

static void worker(void *arg)
{
	(void)arg;
	uv_mutex_lock(&mu);
	for (;;) {
		struct st_job *j;
		while (!head) {
			idle++;
			uv_cond_wait(&cond, &mu);
			idle--;
		}
		j = head;
		head = j->next;
		if (!head)
			tail = NULL;
		queued--;
		uv_mutex_unlock(&mu);
		j->work(j);
		uv_async_send(&j->done_async); /* j belongs to its loop from here */
		uv_mutex_lock(&mu);
	}
}

static void closed(uv_handle_t *h)
{
	struct st_job *j = h->data;

	j->done(j);
}

static void finished(uv_async_t *a)
{
	uv_close((uv_handle_t *)a, closed);
}

void st_pool_set_max(unsigned n)
{
	uv_once(&once, init);
	if (!ready)
		return;
	uv_mutex_lock(&mu);
	max_threads = n < 1 ? 1 : n > POOL_MAX_CAP ? POOL_MAX_CAP : n;
	uv_mutex_unlock(&mu);
}

int st_pool_submit(uv_loop_t *loop, struct st_job *j, void (*work)(struct st_job *j),
                   void (*done)(struct st_job *j))
{
	uv_thread_t t;
	uv_thread_options_t o = {UV_THREAD_HAS_STACK_SIZE, POOL_STACK};

	uv_once(&once, init);
	if (!ready)
		return ST_E_NOMEM;
	uv_mutex_lock(&mu);
	/* a thread for this job unless an idle one is left for it: an idle thread already
	 * signalled for a job queued before (it has not woken yet) is not free, or a burst
	 * of jobs would wait behind one thread (an OCSP check holding a delivery up) */
	if (queued >= idle && threads < max_threads) {
		if (uv_thread_create_ex(&t, &o, worker, NULL) == 0)
			threads++;
		else if (threads == 0) {
			uv_mutex_unlock(&mu);
			return ST_E_NOMEM;
		}
	}
	if (uv_async_init(loop, &j->done_async, finished)) {
		uv_mutex_unlock(&mu);
		return ST_E_NOMEM;
	}
	j->done_async.data = j;
	j->work = work;
	j->done = done;
	j->next = NULL;
	if (tail)
		tail->next = j;
	else
		head = j;
	tail = j;
	queued++;
	uv_cond_signal(&cond);
	uv_mutex_unlock(&mu);
	return 0;
}

int st_pool_cancel(struct st_job *j)
{
	struct st_job **p;

	uv_mutex_lock(&mu);
	for (p = &head; *p && *p != j; p = &(*p)->next)
		;
	if (!*p) {
		uv_mutex_unlock(&mu);
		return ST_E_INVALID; /* taken by a thread: it runs to its end */
	}
	*p = j->next;
	if (tail == j) {
		struct st_job *t = head;
		while (t && t->next)
			t = t->next;
		tail = t;
	}
	queued--;
	uv_mutex_unlock(&mu);
	uv_close((uv_handle_t *)&j->done_async, closed); /* done(j) comes, work(j) never */
	return 0;
}
