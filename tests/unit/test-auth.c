/* test-auth.c: AUTH users from crypt(3) hash files, with hashes made by openssl and libcrypt */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"

/* "s3cret" hashed by `openssl passwd -6 -salt saltsalt` and `-5`, and by libcrypt's yescrypt */
#define SHA512 "$6$saltsalt$As4wrv0kZlfch1du9WeH7qhskyLriQWySXrZzynnvi46nFnNxjdpl6ksRegrrKexvhIa/Iny8S8uF3fVWTMuC1"
#define SHA256 "$5$saltsalt$i1q2ZQzc.tl/BQ6CHiENAcVDvEY6nJ1OWlWXKh94b1."
#define YESCRYPT "$y$j9T$abcdefghijklmnop$tySFNIfWVy.ymkBDHEMW6bAQ07dlkLVGalgni.VV4l8"

static char path[64];

static void write_db(const char *text)
{
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/test-auth.XXXXXX");
	assert_true(mkstemp(path) >= 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_check(void **state)
{
	struct st_auth_db *db;
	struct st_error err;

	(void)state;
	write_db("# users\n\nalice:" SHA512 "\nbob:" SHA256 "\r\n  carol:" YESCRYPT
	         ":1000:1000::/home/carol:/bin/sh\n");
	db = st_auth_db_load(path, &err);
	unlink(path);
	assert_non_null(db);
	assert_int_equal(st_auth_db_count(db), 3);
	assert_true(st_auth_db_check(db, "alice", "s3cret"));
	assert_false(st_auth_db_check(db, "alice", "s3cre"));
	assert_false(st_auth_db_check(db, "alice", "s3cretx"));
	assert_false(st_auth_db_check(db, "alice", ""));
	assert_true(st_auth_db_check(db, "bob", "s3cret"));
	assert_true(st_auth_db_check(db, "carol", "s3cret")); /* a passwd-style line */
	assert_false(st_auth_db_check(db, "carol", "S3cret"));
	assert_false(st_auth_db_check(db, "dave", "s3cret")); /* unknown */
	assert_false(st_auth_db_check(db, "Alice", "s3cret")); /* names are exact */
	st_auth_db_free(db);
}

static void test_bad_files(void **state)
{
	struct st_error err;
	static const struct {
		const char *text, *msg;
	} bad[] = {
	    {"alice " SHA512 "\n", ":1: not 'user:hash'"},
	    {"\n:" SHA512 "\n", ":2: not 'user:hash'"},
	    {"alice:s3cret\n", ":1: the hash of 'alice' is no crypt(3) hash"},
	    {"alice:$9$nothing$\n", ":1: the hash of 'alice' is no crypt(3) hash"},
	    {"alice:" SHA512 "\nalice:" SHA256 "\n", ":2: user 'alice' given twice"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_db(bad[i].text);
		assert_null(st_auth_db_load(path, &err));
		unlink(path);
		assert_int_equal(err.cls, ST_ERR_INPUT);
		assert_non_null(strstr(err.msg, path));
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("'%s' not in '%s'", bad[i].msg, err.msg);
	}
	assert_null(st_auth_db_load("/nonexistent/users", &err));
	assert_non_null(strstr(err.msg, "/nonexistent/users"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_bad_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
