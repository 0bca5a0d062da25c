/* pool.h: a small pool of worker threads for blocking work (fsync, hashing), whose failure to start a thread is an error, not an abort */
#ifndef ST_POOL_H
#define ST_POOL_H

#include <uv.h>

/*
 * libuv's own pool aborts the process when it cannot start its threads (under
 * `ulimit -v`, say). This one starts its threads when work comes, keeps them,
 * and says so when none can run a job: the caller answers a 4xx and goes on.
 * One pool for the process; jobs come from any loop and finish on theirs.
 */

struct st_job {
	/* set by st_pool_submit */
	uv_async_t done_async;
	void (*work)(struct st_job *j);
	void (*done)(struct st_job *j);
	struct st_job *next;
	void *data; /* the caller's */
};

/*
 * Run work(j) on a worker thread, then done(j) on loop's thread (j is the caller's,
 * untouched by the pool after done begins). Call on loop's thread. ST_E_NOMEM when no
 * thread is running and none can be started (nothing is queued then: the caller
 * answers now); a thread started is kept for later jobs.
 */
int st_pool_submit(uv_loop_t *loop, struct st_job *j, void (*work)(struct st_job *j),
                   void (*done)(struct st_job *j));

/*
 * Take back a job no thread has started (call on its loop's thread, between submit and
 * done): work(j) will not run, done(j) still comes on the loop, as for any job. ST_E_INVALID
 * when a thread has it already (it runs to its end; done follows).
 */
int st_pool_cancel(struct st_job *j);

/* At most n threads (default 4; 1 to 128): more when jobs wait long (OCSP fetches). */
void st_pool_set_max(unsigned n);

#endif
