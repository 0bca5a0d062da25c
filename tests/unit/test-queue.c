/* test-queue.c: queue files: written, read back, recipients marked in place, listed, removed; bad files named */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test-queue.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static void test_roundtrip(void **state)
{
	const char *rcpt[] = {"a@example.com", "b@example.org"};
	const char msg[] = "Subject: x\r\n\r\nbody\r\n";
	struct st_queue_msg m;
	struct st_error err;
	char **ids;
	size_t n;

	(void)state;
	assert_int_equal(
	    st_queue_write(dir, "ABC123", 1764355200, "", rcpt, 2, msg, strlen(msg), &err), 0);
	assert_int_equal(st_queue_read(dir, "ABC123", true, 1 << 20, &m, &err), 0);
	assert_string_equal(m.id, "ABC123");
	assert_int_equal(m.arrival, 1764355200);
	assert_string_equal(m.sender, "");
	assert_int_equal(m.n_rcpt, 2);
	assert_string_equal(m.rcpt[1], "b@example.org");
	assert_int_equal(m.state[0], ST_QUEUE_WAITING);
	assert_int_equal(m.body.len, strlen(msg));
	assert_memory_equal(m.body.data, msg, strlen(msg));
	/* marks land in the file, the rest of it untouched */
	assert_int_equal(st_queue_mark(dir, &m, 1, ST_QUEUE_DELIVERED, &err), 0);
	assert_int_equal(st_queue_mark(dir, &m, 0, ST_QUEUE_BOUNCED, &err), 0);
	assert_int_equal(st_queue_mark(dir, &m, 2, ST_QUEUE_BOUNCED, &err), ST_E_INVALID);
	st_queue_msg_release(&m);
	assert_int_equal(st_queue_set_next(dir, "ABC123", 2000000000, &err), 0);
	assert_int_equal(st_queue_read(dir, "ABC123", false, 1 << 20, &m, &err), 0);
	assert_int_equal(m.state[0], ST_QUEUE_BOUNCED);
	assert_int_equal(m.state[1], ST_QUEUE_DELIVERED);
	assert_string_equal(m.rcpt[0], "a@example.com");
	assert_int_equal(m.next_try, 2000000000);
	assert_int_equal(m.body.len, 0);
	st_queue_msg_release(&m);

	/* a file a crash left in tmp/ goes at the next start; the message stays */
	{
		char p[128];
		FILE *f;
		snprintf(p, sizeof(p), "%s/tmp/HALF", dir);
		f = fopen(p, "w");
		fputs("smtptls-queue 1\n", f);
		fclose(f);
		assert_int_equal(st_queue_list(dir, &ids, &n, &err), 0);
		assert_int_equal(n, 1);
		assert_string_equal(ids[0], "ABC123");
		free(ids[0]);
		free(ids);
		assert_int_equal(access(p, F_OK), -1);
	}
	assert_int_equal(st_queue_remove(dir, "ABC123", &err), 0);
	assert_int_equal(st_queue_list(dir, &ids, &n, &err), 0);
	assert_int_equal(n, 0);
	free(ids);
}

static void test_bad(void **state)
{
	const char *rcpt[] = {"a@example.com"}, *bad[] = {"a@example.com\r\nrcpt W x@y"};
	struct st_queue_msg m;
	struct st_error err;
	char p[128];
	FILE *f;

	(void)state;
	assert_false(st_queue_id_is_valid("../etc"));
	assert_false(st_queue_id_is_valid(".hidden"));
	assert_false(st_queue_id_is_valid(""));
	assert_true(st_queue_id_is_valid("1764355200.ABC.mx_test"));
	assert_int_equal(st_queue_write(dir, "../x", 0, "", rcpt, 1, "", 0, &err), ST_E_INVALID);
	assert_int_equal(st_queue_write(dir, "X", 0, "", bad, 1, "", 0, &err), ST_E_INVALID);
	snprintf(p, sizeof(p), "%s/JUNK", dir);
	f = fopen(p, "w");
	fputs("smtptls-queue 1\narrival 1\nfrom a@b\nrcpt X c@d\n\nbody", f);
	fclose(f);
	assert_int_equal(st_queue_read(dir, "JUNK", true, 1 << 20, &m, &err), ST_E_PARSE);
	assert_non_null(strstr(err.msg, "JUNK' is not a queue file (line 4)"));
	st_queue_msg_release(&m);
	assert_int_equal(st_queue_read(dir, "MISSING", true, 1 << 20, &m, &err), ST_E_IO);
	st_queue_msg_release(&m);
	/* the message capped */
	assert_int_equal(st_queue_write(dir, "BIG", 0, "a@b", rcpt, 1, "0123456789", 10, &err), 0);
	assert_int_equal(st_queue_read(dir, "BIG", true, 5, &m, &err), ST_E_TOOBIG);
	st_queue_msg_release(&m);
}

/* A queue file written in pieces: only commit makes it a queue file; abort leaves nothing. */
static void test_stream(void **state)
{
	const char *rcpt[] = {"a@example.com"};
	struct st_queue_file *f;
	struct st_queue_msg m;
	struct st_error err;
	char path[128];

	(void)state;
	assert_int_equal(st_queue_create(dir, "S1", 1764355200, "s@example.org", rcpt, 1, &f, &err),
	                 0);
	assert_int_equal(st_queue_append(f, "Subject: x\r\n\r\n", 14, &err), 0);
	assert_int_equal(st_queue_append(f, "body\r\n", 6, &err), 0);
	snprintf(path, sizeof(path), "%s/S1", dir);
	assert_int_not_equal(access(path, F_OK), 0); /* not queued before the commit */
	assert_int_equal(st_queue_commit(f, &err), 0);
	assert_int_equal(st_queue_read(dir, "S1", true, 1 << 20, &m, &err), 0);
	assert_int_equal(m.body.len, 20);
	assert_memory_equal(m.body.data, "Subject: x\r\n\r\nbody\r\n", 20);
	st_queue_msg_release(&m);
	/* given up: the file in tmp/ goes, nothing is queued */
	assert_int_equal(st_queue_create(dir, "S2", 1764355200, "", rcpt, 1, &f, &err), 0);
	assert_int_equal(st_queue_append(f, "x", 1, &err), 0);
	snprintf(path, sizeof(path), "%s/tmp/S2", dir);
	assert_int_equal(access(path, F_OK), 0);
	st_queue_abort(f);
	assert_int_not_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/S2", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	st_queue_abort(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
