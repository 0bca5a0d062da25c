/* test-pool.c: lib/pool: a thread for each job a burst brings, and jobs taken back before they start */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "pool.h"
#include "util.h"

static atomic_int started, released;
static int done_count;

static void nothing(struct st_job *j)
{
	(void)j;
}

static void count_done(struct st_job *j)
{
	(void)j;
	done_count++;
}

/* Wait (2 s at most) until as many jobs as j->data says have started: each needs a thread
 * of its own. */
static void barrier(struct st_job *j)
{
	int want = (int)(intptr_t)j->data, k;

	atomic_fetch_add(&started, 1);
	for (k = 0; k < 200 && atomic_load(&started) < want; k++)
		usleep(10000);
	if (atomic_load(&started) >= want)
		atomic_fetch_add(&released, 1);
}

/* Jobs submitted back to back while threads sit idle: each gets a thread (up to the
 * maximum), not only the idle ones there were before; an idle thread signalled for one job
 * and not awake yet is not free for the next. */
static void test_burst(void **state)
{
	uv_loop_t loop;
	struct st_job warm, jobs[8];
	int k, i;

	(void)state;
	st_pool_set_max(16);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(st_pool_submit(&loop, &warm, nothing, count_done), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	for (k = 2; k <= 8; k++) {
		usleep(20000); /* the threads idle again */
		atomic_store(&started, 0);
		atomic_store(&released, 0);
		done_count = 0;
		for (i = 0; i < k; i++) {
			jobs[i].data = (void *)(intptr_t)k;
			assert_int_equal(st_pool_submit(&loop, &jobs[i], barrier, count_done), 0);
		}
		uv_run(&loop, UV_RUN_DEFAULT);
		assert_int_equal(done_count, k);
		assert_int_equal(atomic_load(&released), k); /* all k ran at once */
	}
	assert_int_equal(uv_loop_close(&loop), 0);
}

static atomic_int ran_b;

static void hold(struct st_job *j)
{
	(void)j;
	atomic_store(&started, 1);
	while (!atomic_load(&released))
		usleep(1000);
}

static void mark_b(struct st_job *j)
{
	(void)j;
	atomic_store(&ran_b, 1);
}

/* A job not started yet is taken back: its work never runs, its done still comes; one a
 * thread has is not. First of the tests: the pool has no thread yet, and gets one. */
static void test_cancel(void **state)
{
	uv_loop_t loop;
	struct st_job a, b;
	int k;

	(void)state;
	st_pool_set_max(1);
	assert_int_equal(uv_loop_init(&loop), 0);
	atomic_store(&started, 0);
	atomic_store(&released, 0);
	done_count = 0;
	assert_int_equal(st_pool_submit(&loop, &a, hold, count_done), 0);
	for (k = 0; k < 2000 && !atomic_load(&started); k++)
		usleep(1000);
	assert_true(atomic_load(&started)); /* a has the pool's only thread (the first test) */
	assert_int_equal(st_pool_submit(&loop, &b, mark_b, count_done), 0);
	assert_int_equal(st_pool_cancel(&a), ST_E_INVALID);
	assert_int_equal(st_pool_cancel(&b), 0);
	atomic_store(&released, 1);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(atomic_load(&ran_b), 0);
	assert_int_equal(done_count, 2);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_burst),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
