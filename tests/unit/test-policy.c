/* test-policy.c: Postfix TLS policy tables: source text as postmap reads it, the lookup order, policy values */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"

static char path[64];

static void write_table(const char *text)
{
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/test-policy.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_source(void **state)
{
	struct st_policy_table *t;
	struct st_error err;
	const struct st_policy_entry *e;
	char spec[80];

	(void)state;
	write_table("  orphan-continuation may\n"
	            "# a comment\n"
	            "example.com   secure match=nexthop\n"
	            "\n"
	            ".example.com  verify\n"
	            "   match=hostname:nexthop\n"
	            "  # a comment inside does not end it\n"
	            "\tprotocols=>=TLSv1.2   \n"
	            "[mx.example.net]:587 encrypt\r\n"
	            "EXAMPLE.com may\n"
	            "  continued\n"
	            "novalue\n"
	            "last none");
	snprintf(spec, sizeof(spec), "hash:%s", path);
	t = st_policy_table_load(spec, &err);
	assert_non_null(t);
	assert_string_equal(st_policy_table_spec(t), spec);
	assert_string_equal(st_policy_table_file(t), path);
	/* a continuation before any line is ignored; "novalue" has no value */
	assert_int_equal(st_policy_table_size(t), 5);
	assert_int_equal(st_policy_table_duplicates(t), 1);
	e = st_policy_table_at(t, 1);
	assert_string_equal(e->key, ".example.com");
	assert_string_equal(e->value, "verify match=hostname:nexthop protocols=>=TLSv1.2");
	assert_int_equal(e->line, 5);
	e = st_policy_table_get(t, "Example.COM");
	assert_non_null(e);
	assert_string_equal(e->value, "secure match=nexthop"); /* the first of a duplicate wins */
	assert_int_equal(e->line, 3);
	e = st_policy_table_get(t, "[mx.example.net]:587");
	assert_non_null(e);
	assert_string_equal(e->value, "encrypt");
	assert_string_equal(st_policy_table_at(t, 3)->value, "may continued");
	assert_null(st_policy_table_get(t, "novalue"));
	e = st_policy_table_get(t, "last");
	assert_non_null(e);
	assert_string_equal(e->value, "none");
	assert_int_equal(e->line, 13);
	/* what was skipped, as postmap warns about it */
	assert_int_equal(st_policy_table_skips(t), 3);
	assert_int_equal(st_policy_table_skip_at(t, 0)->kind, ST_POLICY_SKIP_CONTINUATION);
	assert_int_equal(st_policy_table_skip_at(t, 0)->line, 1);
	assert_int_equal(st_policy_table_skip_at(t, 1)->kind, ST_POLICY_SKIP_NO_VALUE);
	assert_int_equal(st_policy_table_skip_at(t, 1)->line, 12);
	assert_string_equal(st_policy_table_skip_at(t, 1)->key, "novalue");
	assert_int_equal(st_policy_table_skip_at(t, 2)->kind, ST_POLICY_SKIP_DUPLICATE);
	assert_int_equal(st_policy_table_skip_at(t, 2)->line, 10);
	assert_int_equal(st_policy_table_skip_at(t, 2)->first_line, 3);
	assert_string_equal(st_policy_table_skip_at(t, 2)->key, "EXAMPLE.com");
	assert_null(st_policy_table_skip_at(t, 3));
	/* hash: is read from path.db, which postmap was not run to make */
	{
		time_t src, db;
		char want[80];
		snprintf(want, sizeof(want), "%s.db", path);
		assert_string_equal(st_policy_table_db(t, &src, &db), want);
		assert_true(src > 0);
		assert_int_equal(db, 0);
	}
	st_policy_table_free(t);
	t = st_policy_table_load(path, &err);
	assert_non_null(t);
	assert_null(st_policy_table_db(t, NULL, NULL)); /* a plain path: no compiled file */
	st_policy_table_free(t);
	unlink(path);
}

static void test_load_errors(void **state)
{
	struct st_error err;

	(void)state;
	assert_null(st_policy_table_load("regexp:/etc/postfix/tls.re", &err));
	assert_non_null(strstr(err.msg, "table type 'regexp' is not supported"));
	assert_null(st_policy_table_load("hash:/nonexistent/tls_policy", &err));
	assert_non_null(strstr(err.msg, "/nonexistent/tls_policy"));
	assert_null(st_policy_table_load("inline:{ a=b", &err));
	assert_null(st_policy_table_load("inline:{ novalue }", &err));
	assert_non_null(strstr(err.msg, "not key=value"));
	write_table("");
	{
		FILE *f = fopen(path, "w");
		fwrite("a may\n\0b may\n", 1, 13, f);
		fclose(f);
	}
	assert_null(st_policy_table_load(path, &err));
	assert_non_null(strstr(err.msg, "NUL"));
	unlink(path);
}

static void test_inline(void **state)
{
	struct st_policy_table *t;
	struct st_error err;
	const struct st_policy_entry *e;

	(void)state;
	t = st_policy_table_load("inline:{ example.com=encrypt, { [h]:25 = secure match=a:b } }",
	                         &err);
	assert_non_null(t);
	assert_int_equal(st_policy_table_size(t), 2);
	e = st_policy_table_get(t, "[h]:25");
	assert_non_null(e);
	assert_string_equal(e->value, "secure match=a:b");
	assert_string_equal(st_policy_table_get(t, "example.com")->value, "encrypt");
	st_policy_table_free(t);
}

static void test_lookup_order(void **state)
{
	struct st_policy_table *t[2];
	struct st_error err;
	const struct st_policy_entry *e;
	size_t which;
	char key[256];

	(void)state;
	t[0] =
	    st_policy_table_load("inline:{ .example.com=verify, [mx.example.com]=encrypt }", &err);
	t[1] = st_policy_table_load(
	    "inline:{ sub.example.com=secure, example.com=may, *=none, .com=fingerprint }", &err);
	assert_non_null(t[0]);
	assert_non_null(t[1]);
	/* the exact key in a later table wins over a parent in the first: each key in every table first */
	e = st_policy_lookup(t, 2, "sub.example.com", &which, key, sizeof(key));
	assert_non_null(e);
	assert_string_equal(e->value, "secure");
	assert_int_equal(which, 1);
	assert_string_equal(key, "sub.example.com");
	/* a sub-domain: .example.com, found in the first table */
	e = st_policy_lookup(t, 2, "a.b.example.com", &which, key, sizeof(key));
	assert_string_equal(e->value, "verify");
	assert_int_equal(which, 0);
	assert_string_equal(key, ".example.com");
	/* the domain itself: its own key, not .example.com */
	e = st_policy_lookup(t, 2, "example.com", &which, key, sizeof(key));
	assert_string_equal(e->value, "may");
	/* the bare parent is never tried; .com is */
	e = st_policy_lookup(t, 2, "other.com", NULL, key, sizeof(key));
	assert_string_equal(e->value, "fingerprint");
	assert_string_equal(key, ".com");
	/* "*" is no wildcard */
	assert_null(st_policy_lookup(t, 2, "example.org", NULL, NULL, 0));
	/* [host] and host:port are one literal lookup */
	e = st_policy_lookup(t, 2, "[mx.example.com]", NULL, key, sizeof(key));
	assert_string_equal(e->value, "encrypt");
	assert_null(st_policy_lookup(t, 2, "[a.example.com]", NULL, NULL, 0));
	assert_null(st_policy_lookup(t, 2, "a.example.com:587", NULL, NULL, 0));
	st_policy_table_free(t[0]);
	st_policy_table_free(t[1]);
}

static void test_parse(void **state)
{
	struct st_policy p;
	struct st_error err;

	(void)state;
	assert_int_equal(
	    st_policy_parse("SECURE match=nexthop:.example.com match=x, protocols=>=TLSv1.2", &p,
	                    &err),
	    0);
	assert_int_equal(p.level, ST_LEVEL_SECURE);
	assert_string_equal(p.match, "nexthop:.example.com:x");
	assert_string_equal(p.protocols, ">=TLSv1.2");
	assert_int_equal(p.connection_reuse, -1);
	assert_int_equal(st_policy_parse("fingerprint match=AA:BB match=CC", &p, &err), 0);
	assert_string_equal(p.match, "AA:BB|CC");
	assert_int_equal(st_policy_parse("none protocols=TLSv1", &p, &err), 0);
	assert_true(p.ignored_attributes);
	/* Postfix 3.7 ignores every word after none, and takes an empty protocols= or exclude= */
	assert_int_equal(st_policy_parse("none colour", &p, &err), 0);
	assert_int_equal(st_policy_parse("encrypt protocols= exclude=", &p, &err), 0);
	assert_string_equal(p.protocols, "");
	assert_int_equal(
	    st_policy_parse("encrypt connection_reuse=yes connection_reuse=no", &p, &err), 0);
	assert_int_equal(p.connection_reuse, 0);
	assert_int_equal(
	    st_policy_parse("dane-only servername=hostname connection_reuse=yes", &p, &err), 0);
	assert_int_equal(p.level, ST_LEVEL_DANE_ONLY);
	assert_int_equal(p.connection_reuse, 1);
	assert_string_equal(p.servername, "hostname");

	/* what Postfix calls invalid */
	assert_int_equal(st_policy_parse("", &p, &err), -1);
	assert_string_equal(err.msg, "no TLS security level");
	assert_int_equal(st_policy_parse("strict", &p, &err), -1);
	assert_string_equal(err.msg, "unknown TLS security level 'strict'");
	assert_int_equal(st_policy_parse("encrypt match=hostname", &p, &err), -1);
	assert_non_null(strstr(err.msg, "'match' is not valid at level 'encrypt'"));
	/* commas split: protocols=!SSLv2,!SSLv3 leaves "!SSLv3", not an attribute */
	assert_int_equal(st_policy_parse("may protocols=!SSLv2,!SSLv3", &p, &err), -1);
	assert_string_equal(err.msg, "'!SSLv3' is not an attribute (name=value)");
	assert_int_equal(st_policy_parse("may ciphers=", &p, &err), -1);
	assert_string_equal(err.msg, "attribute 'ciphers' has an empty value");
	assert_int_equal(st_policy_parse("may ciphers=high ciphers=medium", &p, &err), -1);
	assert_string_equal(err.msg, "attribute 'ciphers' given more than once");
	assert_int_equal(st_policy_parse("may colour=blue", &p, &err), -1);
	assert_string_equal(err.msg, "unknown attribute 'colour'");
	assert_int_equal(st_policy_parse("may connection_reuse=maybe", &p, &err), -1);
	assert_int_equal(st_policy_parse("encrypt tafile=/x", &p, &err), -1);
	assert_int_equal(st_policy_parse("may =x", &p, &err), -1);
	assert_string_equal(err.msg, "'=x' is not an attribute (name=value)");
	assert_int_equal(st_policy_parse("encrypt servername=", &p, &err), -1);
	assert_int_equal(st_policy_parse("verify tafile=", &p, &err), -1);
	assert_string_equal(err.msg, "attribute 'tafile' has an empty value");
	assert_int_equal(err.cls, ST_ERR_POLICY);
}

/* The one loader of policy and serve: proxy:, lists as smtp_tls_policy_maps names them, the
 * compiled file as Postfix sees it. */
static void test_tables(void **state)
{
	struct st_policy_tables ts;
	struct st_error err;
	char spec[200], list[600], db[80];
	FILE *f;
	size_t i;

	(void)state;
	write_table("[mx.smtptls.test]:465 encrypt\n");
	st_policy_tables_init(&ts);
	snprintf(spec, sizeof(spec), "proxy:texthash:%s", path);
	assert_int_equal(st_policy_tables_add(&ts, spec, &err), 0);
	assert_int_equal(ts.n, 1);
	assert_string_equal(st_policy_table_spec(ts.t[0]), spec + 6);
	assert_string_equal(ts.broken, "");
	assert_false(ts.stale[0]);
	/* hash: without its .db: Postfix's lookups fail */
	snprintf(spec, sizeof(spec), "proxy:hash:%s", path);
	assert_int_equal(st_policy_tables_add(&ts, spec, &err), 0);
	assert_non_null(strstr(ts.broken, ".db' does not exist (postmap not run)"));
	st_policy_tables_release(&ts);
	assert_int_equal(ts.n, 0);
	/* with a .db older than its source: stale, not broken */
	snprintf(db, sizeof(db), "%s.db", path);
	f = fopen(db, "w");
	assert_non_null(f);
	fclose(f);
	{
		struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
		assert_int_equal(utimensat(AT_FDCWD, db, old, 0), 0);
	}
	/* a list: commas and white space split, braces kept together, proxy: anywhere */
	snprintf(list, sizeof(list),
	         " hash:%s,proxy:texthash:%s\n\tinline:{ a.smtptls.test=may, { b = secure "
	         "match=x:y } } ,",
	         path, path);
	assert_int_equal(st_policy_tables_add_list(&ts, list, "smtp_tls_policy_maps", &err), 0);
	assert_int_equal(ts.n, 3);
	assert_string_equal(ts.broken, "");
	assert_true(ts.stale[0]);
	assert_false(ts.stale[1]);
	assert_string_equal(st_policy_table_get(ts.t[2], "b")->value, "secure match=x:y");
	st_policy_tables_release(&ts);
	/* full, unreadable, unknown type: errors with their class */
	for (i = 0; i < ST_POLICY_TABLES_MAX; i++)
		assert_int_equal(st_policy_tables_add(&ts, "inline:{ a=may }", &err), 0);
	assert_int_equal(st_policy_tables_add(&ts, "inline:{ a=may }", &err), -1);
	assert_int_equal(err.cls, ST_ERR_USAGE);
	st_policy_tables_release(&ts);
	assert_int_equal(st_policy_tables_add_list(&ts, "texthash:/nonexistent/x", "m", &err), -1);
	assert_int_equal(err.cls, ST_ERR_INPUT);
	assert_int_equal(st_policy_tables_add(&ts, "proxy:regexp:/x", &err), -1);
	assert_non_null(strstr(err.msg, "table type 'regexp' is not supported"));
	st_policy_tables_release(&ts);
	unlink(db);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_source), cmocka_unit_test(test_load_errors),
	    cmocka_unit_test(test_inline), cmocka_unit_test(test_lookup_order),
	    cmocka_unit_test(test_parse),  cmocka_unit_test(test_tables),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
