/* test-util.c: unit tests of lib/util.c (capped buffers, errors, files, string helpers) */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "lib/util.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A scratch directory for the file tests, removed by the group teardown. */
static char scratch[] = "/tmp/smtptls-test-util.XXXXXX";

/* The buffer invariants every test relies on. */
static void assert_buf_sane(const struct st_buf *b)
{
	assert_true(b->len <= b->max);
	if (b->data) {
		assert_true(b->len < b->cap);
		assert_true(b->cap <= b->max + 1 || b->max == SIZE_MAX);
		assert_int_equal(b->data[b->len], '\0');
	} else {
		assert_int_equal(b->len, 0);
		assert_int_equal(b->cap, 0);
	}
	assert_non_null(st_buf_str(b));
	assert_int_equal(strlen(st_buf_str(b)) <= b->len, 1);
}

/* ---- st_buf ---- */

static void test_buf_growth(void **state)
{
	struct st_buf b;
	char expect[5000];
	size_t i, last_cap = 0, reallocs = 0;

	(void)state;
	st_buf_init(&b, 1u << 20);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 1u << 20);
	for (i = 0; i < sizeof(expect); i++) {
		char c = (char)('a' + i % 26);
		expect[i] = c;
		assert_int_equal(st_buf_add(&b, &c, 1), ST_OK);
		assert_int_equal(b.len, i + 1);
		assert_buf_sane(&b);
		if (b.cap != last_cap) {
			/* grows geometrically: a few reallocations, not one per byte */
			assert_true(b.cap >= 2 * last_cap);
			last_cap = b.cap;
			reallocs++;
		}
	}
	assert_true(reallocs <= 6);
	assert_memory_equal(b.data, expect, sizeof(expect));

	/* one big append past several doublings */
	{
		static char big[100000];
		memset(big, 'z', sizeof(big));
		assert_int_equal(st_buf_add(&b, big, sizeof(big)), ST_OK);
		assert_int_equal(b.len, sizeof(expect) + sizeof(big));
		assert_buf_sane(&b);
		assert_memory_equal(b.data, expect, sizeof(expect));
		assert_memory_equal(b.data + sizeof(expect), big, sizeof(big));
	}
	/* an empty append is a no-op */
	assert_int_equal(st_buf_add(&b, NULL, 0), ST_OK);
	assert_int_equal(b.len, sizeof(expect) + 100000);
	st_buf_release(&b);
}

/* Fill to exactly the cap, and one byte past it. */
static const struct cap_case {
	size_t max;
	size_t prefill; /* bytes of 'p' added first (must fit) */
	size_t add;     /* bytes of 'a' added next */
	int rc;
	size_t len; /* length after the second add */
} cap_cases[] = {
    {10, 0, 10, ST_OK, 10},
    {10, 0, 11, ST_E_TOOBIG, 0},
    {10, 5, 5, ST_OK, 10},
    {10, 5, 6, ST_E_TOOBIG, 5},
    {10, 10, 1, ST_E_TOOBIG, 10},
    {0, 0, 1, ST_E_TOOBIG, 0},
    {0, 0, 0, ST_OK, 0},
    {1, 0, 1, ST_OK, 1},
    {255, 0, 255, ST_OK, 255},
    {256, 0, 256, ST_OK, 256}, /* first allocation is 256: exactly-fits plus NUL */
    {300, 200, 100, ST_OK, 300},
    {300, 200, 101, ST_E_TOOBIG, 200},
    {4096, 4000, 96, ST_OK, 4096},
    {4096, 4000, 97, ST_E_TOOBIG, 4000},
    {SIZE_MAX, 0, 1, ST_OK, 1}, /* "no cap": max + 1 must not wrap to 0 */
    {SIZE_MAX, 10, 300, ST_OK, 310},
};

static void test_buf_cap(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N_ELEMS(cap_cases); i++) {
		const struct cap_case *c = &cap_cases[i];
		struct st_buf b;
		char *pre = malloc(c->prefill + 1), *add = malloc(c->add + 1);
		char *before;

		assert_non_null(pre);
		assert_non_null(add);
		memset(pre, 'p', c->prefill);
		memset(add, 'a', c->add);
		st_buf_init(&b, c->max);
		assert_int_equal(st_buf_add(&b, pre, c->prefill), ST_OK);
		before = strdup(st_buf_str(&b));
		assert_non_null(before);
		assert_int_equal(st_buf_add(&b, add, c->add), c->rc);
		assert_int_equal(b.len, c->len);
		assert_buf_sane(&b);
		if (c->rc == ST_E_TOOBIG) {
			/* nothing appended, content unchanged */
			assert_string_equal(st_buf_str(&b), before);
		} else {
			assert_memory_equal(st_buf_str(&b), pre, c->prefill);
			assert_memory_equal(st_buf_str(&b) + c->prefill, add, c->add);
		}
		if (c->max != SIZE_MAX)
			assert_true(b.cap <= c->max + 1);
		/* the same way through addf */
		st_buf_reset(&b);
		add[c->add] = '\0';
		pre[c->prefill] = '\0';
		assert_int_equal(st_buf_addf(&b, "%s", pre), ST_OK);
		assert_int_equal(st_buf_addf(&b, "%s", add), c->rc);
		assert_int_equal(b.len, c->len);
		assert_buf_sane(&b);
		if (c->rc == ST_E_TOOBIG)
			assert_string_equal(st_buf_str(&b), before);
		free(before);
		free(pre);
		free(add);
		st_buf_release(&b);
	}
}

static void test_buf_toobig_huge(void **state)
{
	struct st_buf b;
	char c = 'x';

	(void)state;
	st_buf_init(&b, 100);
	assert_int_equal(st_buf_add(&b, "hello", 5), ST_OK);
	/* sizes that would overflow len + n must be refused, not wrap */
	assert_int_equal(st_buf_add(&b, &c, SIZE_MAX), ST_E_TOOBIG);
	assert_int_equal(st_buf_add(&b, &c, SIZE_MAX - 3), ST_E_TOOBIG);
	assert_string_equal(st_buf_str(&b), "hello");
	assert_int_equal(b.len, 5);
	st_buf_release(&b);
}

static const struct addf_case {
	size_t max;
	const char *before;
	const char *fmt_s; /* the %s argument of "%s-%d-%c" */
	int n;
	int rc;
	const char *after;
} addf_cases[] = {
    {100, "", "abc", 42, ST_OK, "abc-42-x"},
    {100, "pre:", "", -7, ST_OK, "pre:--7-x"},
    {12, "pre:", "abc", 42, ST_OK, "pre:abc-42-x"}, /* exactly 12 */
    {11, "pre:", "abc", 42, ST_E_TOOBIG, "pre:"},
    {8, "", "abc", 42, ST_OK, "abc-42-x"},
    {7, "", "abc", 42, ST_E_TOOBIG, ""},
};

static void test_buf_addf(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N_ELEMS(addf_cases); i++) {
		const struct addf_case *c = &addf_cases[i];
		struct st_buf b;

		st_buf_init(&b, c->max);
		assert_int_equal(st_buf_add(&b, c->before, strlen(c->before)), ST_OK);
		assert_int_equal(st_buf_addf(&b, "%s-%d-%c", c->fmt_s, c->n, 'x'), c->rc);
		assert_string_equal(st_buf_str(&b), c->after);
		assert_int_equal(b.len, strlen(c->after));
		assert_buf_sane(&b);
		st_buf_release(&b);
	}
}

static void test_buf_addf_long(void **state)
{
	struct st_buf b;
	char expect[2000];
	int i;

	(void)state;
	/* many formatted appends across reallocations */
	st_buf_init(&b, 1u << 16);
	expect[0] = '\0';
	for (i = 0; i < 200; i++) {
		/* the expected text, built another way: fixed-width pieces */
		snprintf(expect + 5 * i, sizeof(expect) - 5 * (size_t)i, "[%03d]", i);
		assert_int_equal(st_buf_addf(&b, "[%03d]", i), ST_OK);
	}
	assert_string_equal(st_buf_str(&b), expect);
	assert_int_equal(b.len, 1000);
	assert_buf_sane(&b);
	/* an empty format on a non-empty buffer keeps it as it is */
	assert_int_equal(st_buf_addf(&b, "%s", ""), ST_OK);
	assert_string_equal(st_buf_str(&b), expect);
	st_buf_release(&b);

	/* an empty format on a fresh buffer gives "" */
	st_buf_init(&b, 0);
	assert_int_equal(st_buf_addf(&b, "%s", ""), ST_OK);
	assert_string_equal(st_buf_str(&b), "");
	assert_int_equal(b.len, 0);
	assert_buf_sane(&b);
	st_buf_release(&b);
}

static void test_buf_reset_release(void **state)
{
	struct st_buf b;
	unsigned char *data;
	size_t cap;

	(void)state;
	st_buf_init(&b, 1000);
	assert_int_equal(st_buf_add(&b, "hello world", 11), ST_OK);
	data = b.data;
	cap = b.cap;

	st_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(st_buf_str(&b), "");
	assert_ptr_equal(b.data, data); /* memory kept */
	assert_int_equal(b.cap, cap);
	assert_int_equal(b.max, 1000);
	assert_buf_sane(&b);
	assert_int_equal(st_buf_add(&b, "again", 5), ST_OK);
	assert_string_equal(st_buf_str(&b), "again");

	st_buf_release(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.max, 1000); /* still capped, reusable */
	assert_string_equal(st_buf_str(&b), "");
	assert_int_equal(st_buf_add(&b, "third", 5), ST_OK);
	assert_string_equal(st_buf_str(&b), "third");
	st_buf_release(&b);
	st_buf_release(&b); /* twice is harmless */

	/* reset of a never-used buffer */
	st_buf_init(&b, 10);
	st_buf_reset(&b);
	assert_null(b.data);
	assert_string_equal(st_buf_str(&b), "");
	st_buf_release(&b);
}

static void test_buf_str_empty(void **state)
{
	struct st_buf b;

	(void)state;
	st_buf_init(&b, 0);
	assert_non_null(st_buf_str(&b));
	assert_string_equal(st_buf_str(&b), "");
	st_buf_init(&b, 100);
	assert_string_equal(st_buf_str(&b), "");
	assert_int_equal(st_buf_add(&b, "", 0), ST_OK);
	assert_string_equal(st_buf_str(&b), "");
	st_buf_release(&b);
}

/* ---- st_error ---- */

static void test_error_set(void **state)
{
	struct st_error err;
	char long_text[2 * ST_ERROR_MAX];

	(void)state;
	memset(long_text, 'e', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';

	st_error_set(&err, ST_ERR_INPUT, "cannot read '%s': %s", "f.pem", "no such file");
	assert_int_equal(err.cls, ST_ERR_INPUT);
	assert_string_equal(err.msg, "cannot read 'f.pem': no such file");

	/* truncated to fit, still NUL-terminated */
	st_error_set(&err, ST_ERR_TLS, "x:%s", long_text);
	assert_int_equal(err.cls, ST_ERR_TLS);
	assert_int_equal(strlen(err.msg), ST_ERROR_MAX - 1);
	assert_memory_equal(err.msg, "x:", 2);
	assert_memory_equal(err.msg + 2, long_text, ST_ERROR_MAX - 3);

	/* exactly fitting */
	long_text[ST_ERROR_MAX - 1] = '\0';
	st_error_set(&err, ST_ERR_DNS, "%s", long_text);
	assert_int_equal(strlen(err.msg), ST_ERROR_MAX - 1);
	assert_string_equal(err.msg, long_text);

	st_error_clear(&err);
	assert_int_equal(err.cls, ST_ERR_NONE);
	assert_string_equal(err.msg, "");

	/* NULL is allowed everywhere */
	st_error_set(NULL, ST_ERR_INPUT, "ignored %d", 1);
	st_error_clear(NULL);
}

static const struct {
	int cls;
	const char *name;
} class_names[] = {
    {ST_ERR_NONE, "none"},
    {ST_ERR_USAGE, "usage"},
    {ST_ERR_INPUT, "input"},
    {ST_ERR_INTERNAL, "internal"},
    {ST_ERR_DNS, "dns"},
    {ST_ERR_CONNECT, "connect"},
    {ST_ERR_PROTOCOL, "protocol"},
    {ST_ERR_TLS, "tls"},
    {ST_ERR_VERIFY, "verify"},
    {ST_ERR_POLICY, "policy"},
    {ST_ERR_REJECTED, "rejected"},
    {ST_ERR_OUTPUT, "output"},
    {ST_ERR_OUTPUT + 1, "internal"}, /* out of range */
    {1000, "internal"},
    {-1, "internal"},
};

static void test_error_class_names(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < N_ELEMS(class_names); i++)
		assert_string_equal(st_err_class_name((enum st_err_class)class_names[i].cls),
		                    class_names[i].name);
	/* the real classes have distinct names */
	for (i = 0; i <= ST_ERR_OUTPUT; i++)
		for (j = i + 1; j <= ST_ERR_OUTPUT; j++)
			assert_string_not_equal(st_err_class_name((enum st_err_class)i),
			                        st_err_class_name((enum st_err_class)j));
}

/* ---- st_read_file ---- */

static char *scratch_path(const char *name)
{
	size_t n = strlen(scratch) + strlen(name) + 2;
	char *p = malloc(n);

	assert_non_null(p);
	snprintf(p, n, "%s/%s", scratch, name);
	return p;
}

static char *write_scratch(const char *name, const void *data, size_t len)
{
	char *path = scratch_path(name);
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	if (len)
		assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

static int group_setup(void **state)
{
	(void)state;
	return mkdtemp(scratch) ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[sizeof(scratch) + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_read_file_regular(void **state)
{
	static const char text[] = "line one\nline two\r\n\0binary\xff";
	struct st_buf b;
	struct st_error err;
	char *path = write_scratch("regular", text, sizeof(text) - 1);

	(void)state;
	st_error_clear(&err);
	st_buf_init(&b, 1000);
	assert_int_equal(st_buf_add(&b, "stale content", 13), ST_OK);
	assert_int_equal(st_read_file(path, &b, &err), ST_OK);
	assert_int_equal(b.len, sizeof(text) - 1); /* reset first, NUL bytes kept */
	assert_memory_equal(b.data, text, sizeof(text) - 1);
	assert_int_equal(err.cls, ST_ERR_NONE);
	assert_buf_sane(&b);

	/* a cap equal to the size is fine */
	b.max = sizeof(text) - 1;
	st_buf_release(&b);
	assert_int_equal(st_read_file(path, &b, &err), ST_OK);
	assert_int_equal(b.len, sizeof(text) - 1);
	st_buf_release(&b);
	free(path);
}

static void test_read_file_large(void **state)
{
	/* bigger than the 64 KiB read chunk: several reads and reallocations */
	size_t n = 200000, i;
	unsigned char *data = malloc(n);
	struct st_buf b;
	char *path;

	(void)state;
	assert_non_null(data);
	for (i = 0; i < n; i++)
		data[i] = (unsigned char)(i * 7 + i / 256);
	path = write_scratch("large", data, n);
	st_buf_init(&b, n);
	assert_int_equal(st_read_file(path, &b, NULL), ST_OK);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, data, n);
	st_buf_release(&b);
	free(path);
	free(data);
}

static void test_read_file_empty(void **state)
{
	struct st_buf b;
	struct st_error err;
	char *path = write_scratch("empty", "", 0);

	(void)state;
	st_error_clear(&err);
	st_buf_init(&b, 100);
	assert_int_equal(st_buf_add(&b, "stale", 5), ST_OK);
	assert_int_equal(st_read_file(path, &b, &err), ST_OK);
	assert_int_equal(b.len, 0);
	assert_string_equal(st_buf_str(&b), "");
	assert_int_equal(err.cls, ST_ERR_NONE);
	st_buf_release(&b);

	/* on a fresh buffer too */
	st_buf_init(&b, 0);
	assert_int_equal(st_read_file(path, &b, &err), ST_OK);
	assert_int_equal(b.len, 0);
	assert_string_equal(st_buf_str(&b), "");
	st_buf_release(&b);
	free(path);
}

/* Failures: the code, the class and what the message must contain. */
static void assert_read_fails(const char *path, size_t max, int rc, const char *reason)
{
	struct st_buf b;
	struct st_error err;
	char quoted[PATH_MAX + 3];

	st_error_clear(&err);
	st_buf_init(&b, max);
	assert_int_equal(st_read_file(path, &b, &err), rc);
	assert_int_equal(err.cls, ST_ERR_INPUT);
	snprintf(quoted, sizeof(quoted), "'%s'", path);
	if (!strstr(err.msg, quoted) || !strstr(err.msg, reason))
		fail_msg("message \"%s\" lacks %s or \"%s\"", err.msg, quoted, reason);
	assert_int_equal(b.len, 0);
	st_buf_release(&b);
	/* and without an error struct */
	st_buf_init(&b, max);
	assert_int_equal(st_read_file(path, &b, NULL), rc);
	st_buf_release(&b);
}

static void test_read_file_errors(void **state)
{
	char *dir = scratch_path("a-directory");
	char *missing = scratch_path("does-not-exist");
	char *noent_dir = scratch_path("no-such-dir/file");
	char *big, *notdir, hundred[100];

	(void)state;
	memset(hundred, 'h', sizeof(hundred));
	assert_int_equal(mkdir(dir, 0700), 0);
	big = write_scratch("hundred", hundred, sizeof(hundred));
	notdir = scratch_path("hundred/child");

	assert_read_fails(dir, 1000, ST_E_IO, "is a directory");
	assert_read_fails(missing, 1000, ST_E_IO, strerror(ENOENT));
	assert_read_fails(noent_dir, 1000, ST_E_IO, strerror(ENOENT));
	assert_read_fails(notdir, 1000, ST_E_IO, strerror(ENOTDIR));
	assert_read_fails(big, 99, ST_E_TOOBIG, "larger than 99 bytes");
	assert_read_fails(big, 0, ST_E_TOOBIG, "larger than 0 bytes");
	free(dir);
	free(missing);
	free(noent_dir);
	free(big);
	free(notdir);
}

/*
 * Run st_read_file("-") with a pipe on standard input fed n bytes of data
 * by a child process (so that more than a pipe buffer can be sent).
 */
static int read_stdin_pipe(const unsigned char *data, size_t n, struct st_buf *b,
                           struct st_error *err)
{
	int fds[2], saved, rc, status;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		size_t off = 0;
		close(fds[0]);
		signal(SIGPIPE, SIG_DFL);
		while (off < n) {
			ssize_t w = write(fds[1], data + off, n - off);
			if (w <= 0)
				_exit(0); /* the reader stopped early (cap reached) */
			off += (size_t)w;
		}
		_exit(0);
	}
	close(fds[1]);
	saved = dup(STDIN_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fds[0], STDIN_FILENO), STDIN_FILENO);
	close(fds[0]);
	rc = st_read_file("-", b, err);
	/* restore stdin before asserting; closing the pipe lets the child finish */
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return rc;
}

static void test_read_file_stdin(void **state)
{
	static const char text[] = "from a pipe\n";
	size_t big_n = 300000, i;
	unsigned char *big = malloc(big_n);
	struct st_buf b;
	struct st_error err;

	(void)state;
	assert_non_null(big);
	for (i = 0; i < big_n; i++)
		big[i] = (unsigned char)(i % 251);

	st_error_clear(&err);
	st_buf_init(&b, 1000);
	assert_int_equal(read_stdin_pipe((const unsigned char *)text, sizeof(text) - 1, &b, &err),
	                 ST_OK);
	assert_string_equal(st_buf_str(&b), text);
	assert_int_equal(err.cls, ST_ERR_NONE);
	st_buf_release(&b);

	/* empty pipe */
	st_buf_init(&b, 1000);
	assert_int_equal(read_stdin_pipe(NULL, 0, &b, &err), ST_OK);
	assert_int_equal(b.len, 0);
	st_buf_release(&b);

	/* more than a pipe buffer, exactly at the cap */
	st_buf_init(&b, big_n);
	assert_int_equal(read_stdin_pipe(big, big_n, &b, &err), ST_OK);
	assert_int_equal(b.len, big_n);
	assert_memory_equal(b.data, big, big_n);
	st_buf_release(&b);

	/* a pipe has no size up front: the cap is found while reading */
	st_buf_init(&b, big_n - 1);
	assert_int_equal(read_stdin_pipe(big, big_n, &b, &err), ST_E_TOOBIG);
	assert_int_equal(err.cls, ST_ERR_INPUT);
	if (!strstr(err.msg, "'standard input'") || !strstr(err.msg, "larger than 299999 bytes"))
		fail_msg("unexpected message \"%s\"", err.msg);
	st_buf_release(&b);

	st_buf_init(&b, 5);
	assert_int_equal(read_stdin_pipe((const unsigned char *)text, sizeof(text) - 1, &b, &err),
	                 ST_E_TOOBIG);
	assert_string_equal(err.msg, "cannot read 'standard input': larger than 5 bytes");
	st_buf_release(&b);
	free(big);
}

/* ---- st_hex ---- */

static const struct hex_case {
	const char *in;
	size_t n;
	bool upper;
	char sep;
	const char *out;
} hex_cases[] = {
    {"", 0, false, 0, ""},
    {"", 0, true, ':', ""},
    {"\xab", 1, false, 0, "ab"},
    {"\xab", 1, true, ':', "AB"}, /* no separator around a single byte */
    {"\x00\x01\x7f\x80\xfe\xff", 6, false, 0, "00017f80feff"},
    {"\x00\x01\x7f\x80\xfe\xff", 6, true, 0, "00017F80FEFF"},
    {"\x00\x01\x7f\x80\xfe\xff", 6, true, ':', "00:01:7F:80:FE:FF"},
    {"\x00\x01\x7f\x80\xfe\xff", 6, false, ':', "00:01:7f:80:fe:ff"},
    {"\x12\x34\x56\x78\x9a\xbc\xde\xf0", 8, false, '-', "12-34-56-78-9a-bc-de-f0"},
    {"\x12\x34\x56\x78\x9a\xbc\xde\xf0", 8, true, ' ', "12 34 56 78 9A BC DE F0"},
};

static void test_hex(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N_ELEMS(hex_cases); i++) {
		const struct hex_case *c = &hex_cases[i];
		size_t need = strlen(c->out) + 1;
		char out[64];

		memset(out, '#', sizeof(out));
		st_hex((const unsigned char *)c->in, c->n, c->upper, c->sep, out);
		assert_string_equal(out, c->out);
		/* nothing written past the documented size */
		assert_int_equal(out[need], '#');
		assert_true(need <= (c->sep ? 3 * c->n + 1 : 2 * c->n + 1));
	}
}

/* ---- st_sanitize ---- */

static const struct {
	const char *in, *out;
} sanitize_cases[] = {
    {"", ""},
    {"plain ASCII text ~!@#$%^&*()_+{}|:\"<>?", "plain ASCII text ~!@#$%^&*()_+{}|:\"<>?"},
    {" ", " "},                             /* 0x20 kept */
    {"~", "~"},                             /* 0x7e kept */
    {"\x1f", "?"},                          /* last control byte */
    {"\x7f", "?"},                          /* DEL */
    {"a\tb\nc\rd", "a?b?c?d"},              /* control bytes */
    {"\x1b[31mred\x1b[0m", "?[31mred?[0m"}, /* terminal escapes */
    {"\x80", "?"},
    {"\xff\xfe", "??"},
    {"caf\xc3\xa9", "caf\xc3\xa9"}, /* printable UTF-8 is kept */
    {"M\xc3\xbcller \xe6\x97\xa5\xf0\x9f\x93\xa7", "M\xc3\xbcller \xe6\x97\xa5\xf0\x9f\x93\xa7"},
    {"\xc2\x9b"
     "31m",
     "??31m"}, /* C1 CSI as UTF-8 */
    {"a\xe2\x80\xae"
     "b",
     "a???b"},                    /* U+202E right-to-left override */
    {"\xe2\x81\xa6x", "???x"},    /* U+2066 left-to-right isolate */
    {"\xc0\xaf", "??"},           /* overlong '/' */
    {"\xed\xa0\x80", "???"},      /* a surrogate */
    {"\xc3", "?"},                /* truncated sequence */
    {"\xc3(", "?("},              /* bad continuation */
    {"\xf4\x90\x80\x80", "????"}, /* past U+10FFFF */
    {"\x01\x02\x03", "???"},
};

static void test_sanitize(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N_ELEMS(sanitize_cases); i++) {
		char *s = strdup(sanitize_cases[i].in);
		assert_non_null(s);
		st_sanitize(s);
		assert_string_equal(s, sanitize_cases[i].out);
		assert_int_equal(strlen(s), strlen(sanitize_cases[i].in)); /* in place */
		free(s);
	}
	st_sanitize(NULL);
}

/* ---- st_time_iso ---- */

static const struct {
	long long t;
	const char *out;
} time_cases[] = {
    {0, "1970-01-01T00:00:00Z"},
    {-1, "1969-12-31T23:59:59Z"},
    {951782400, "2000-02-29T00:00:00Z"},
    {1577836800, "2020-01-01T00:00:00Z"},
    {1795872206, "2026-11-28T13:23:26Z"},
    {2147483647, "2038-01-19T03:14:07Z"},
    {2147483648LL, "2038-01-19T03:14:08Z"}, /* past 32-bit time_t */
    {4102444799LL, "2099-12-31T23:59:59Z"},
    {4102444800LL, "2100-01-01T00:00:00Z"},
    {253402300799LL, "9999-12-31T23:59:59Z"},
};

/* st_cut_printf: whole when it fits, else cut at a UTF-8 character with "..." */
static void test_cut_printf(void **state)
{
	char out[12], small[4];

	(void)state;
	st_cut_printf(out, sizeof(out), "%s", "short");
	assert_string_equal(out, "short");
	st_cut_printf(out, sizeof(out), "%s %d", "eleven", 1234);
	assert_string_equal(out, "eleven 1234");
	st_cut_printf(out, sizeof(out), "%s", "twelve bytes");
	assert_string_equal(out, "twelve b...");
	/* the cut would fall inside the "ü" (bytes 7-8): it goes before it */
	st_cut_printf(out, sizeof(out), "%s", "abcdefg\xc3\xbc-xy");
	assert_string_equal(out, "abcdefg...");
	st_cut_printf(out, sizeof(out), "%s", "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
	assert_string_equal(out, "\xe2\x82\xac\xe2\x82\xac...");
	st_cut_printf(small, sizeof(small), "%s", "\xe2\x82\xacx");
	assert_string_equal(small, "...");
}

static void test_time_iso(void **state)
{
	size_t i;

	(void)state;
	assert_true(sizeof(time_t) >= 8);
	for (i = 0; i < N_ELEMS(time_cases); i++) {
		char out[64];
		assert_int_equal(st_time_iso((time_t)time_cases[i].t, out, sizeof(out)), ST_OK);
		assert_string_equal(out, time_cases[i].out);
		/* 21 bytes are enough */
		assert_int_equal(st_time_iso((time_t)time_cases[i].t, out, 21), ST_OK);
		assert_string_equal(out, time_cases[i].out);
	}
}

static void test_time_iso_small(void **state)
{
	char out[32];

	(void)state;
	memset(out, 'x', sizeof(out));
	assert_int_equal(st_time_iso(0, out, 20), ST_E_INVALID);
	assert_string_equal(out, "");
	memset(out, 'x', sizeof(out));
	assert_int_equal(st_time_iso(0, out, 1), ST_E_INVALID);
	assert_int_equal(out[0], '\0');
	assert_int_equal(st_time_iso(0, out, 0), ST_E_INVALID);
	/* a year past 9999 does not fit 21 bytes */
	assert_int_equal(st_time_iso((time_t)253402300800LL, out, 21), ST_E_INVALID);
	assert_string_equal(out, "");
}

/* ---- st_edit_distance ---- */

static const struct {
	const char *a, *b;
	unsigned d;
} edit_cases[] = {
    {"", "", 0},
    {"abc", "", 3},
    {"", "abc", 3},
    {"same", "same", 0},
    {"kitten", "sitting", 3},
    {"flaw", "lawn", 2},
    {"probe", "prboe", 2},
    {"verify", "verfy", 1},
    {"verify", "verifyy", 1},
    {"serve", "server", 1},
    {"fingerprint", "fingreprint", 2},
    {"policy", "police", 1},
    {"A", "a", 1}, /* case-sensitive */
    {"abc", "xyz", 3},
    {"intention", "execution", 5},
    {"--digest", "--dgest", 1},
    /* 63 bytes: the longest handled exactly */
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", 1},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "", 63},
    /* 64 bytes and more: reported as the cap */
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "a", 255},
    {"x", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 255},
};

static void test_edit_distance(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N_ELEMS(edit_cases); i++) {
		unsigned d1 = st_edit_distance(edit_cases[i].a, edit_cases[i].b);
		unsigned d2 = st_edit_distance(edit_cases[i].b, edit_cases[i].a);
		if (d1 != edit_cases[i].d || d2 != edit_cases[i].d)
			fail_msg("distance(\"%s\", \"%s\") = %u / %u, expected %u", edit_cases[i].a,
			         edit_cases[i].b, d1, d2, edit_cases[i].d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_growth),
	    cmocka_unit_test(test_buf_cap),
	    cmocka_unit_test(test_buf_toobig_huge),
	    cmocka_unit_test(test_buf_addf),
	    cmocka_unit_test(test_buf_addf_long),
	    cmocka_unit_test(test_buf_reset_release),
	    cmocka_unit_test(test_buf_str_empty),
	    cmocka_unit_test(test_error_set),
	    cmocka_unit_test(test_error_class_names),
	    cmocka_unit_test(test_read_file_regular),
	    cmocka_unit_test(test_read_file_large),
	    cmocka_unit_test(test_read_file_empty),
	    cmocka_unit_test(test_read_file_errors),
	    cmocka_unit_test(test_read_file_stdin),
	    cmocka_unit_test(test_hex),
	    cmocka_unit_test(test_sanitize),
	    cmocka_unit_test(test_cut_printf),
	    cmocka_unit_test(test_time_iso),
	    cmocka_unit_test(test_time_iso_small),
	    cmocka_unit_test(test_edit_distance),
	};

	return cmocka_run_group_tests_name("util", tests, group_setup, group_teardown);
}
