/* test-policy_lint.c: the policy table lint: each code from a line that triggers it, and a near miss that must not */
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
#include <unistd.h>

#include <cmocka.h>

#include "policy_lint.h"

enum ctx_kind { C37, C33, C35, C38, C39, C310, NOCA, COMPAT4, MD5, NOVERSION };

static struct st_lint_context context(enum ctx_kind k)
{
	struct st_lint_context c = {"3.7.11", "may", true, NULL, 3};

	switch (k) {
	case C33:
		c.postfix_version = "3.3.0";
		break;
	case C35:
		c.postfix_version = "3.5.9";
		break;
	case C38:
		c.postfix_version = "3.8.1";
		break;
	case C39:
		c.postfix_version = "3.9.0";
		break;
	case C310:
		c.postfix_version = "3.10.1";
		break;
	case NOCA:
		c.have_ca = false;
		break;
	case COMPAT4:
		c.compatibility_level = 4;
		break;
	case MD5:
		c.digest = "md5";
		break;
	case NOVERSION:
		c.postfix_version = NULL;
		break;
	default:
		break;
	}
	return c;
}

static char paths[2][64];

static void write_file(char *path, const char *text)
{
	FILE *f;
	int fd;

	snprintf(path, 64, "/tmp/test-policy_lint.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Lint n table texts (read as type:path); the findings, *nd of them (free()). */
static struct st_lint_diag *lint(const char *const *texts, size_t n, const char *type,
                                 enum ctx_kind k, size_t *nd)
{
	struct st_policy_table *t[2];
	struct st_lint_context c = context(k);
	struct st_lint_diag *d;
	struct st_error err;
	char spec[96];
	size_t i;

	for (i = 0; i < n; i++) {
		write_file(paths[i], texts[i]);
		snprintf(spec, sizeof(spec), "%s:%s", type, paths[i]);
		t[i] = st_policy_table_load(spec, &err);
		assert_non_null(t[i]);
	}
	assert_int_equal(st_policy_lint(t, n, &c, &d, nd, &err), 0);
	for (i = 0; i < n; i++) {
		st_policy_table_free(t[i]);
		unlink(paths[i]);
	}
	return d;
}

static const struct st_lint_diag *find(const struct st_lint_diag *d, size_t n, const char *code)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(d[i].code, code) == 0)
			return &d[i];
	return NULL;
}

/* One row: a table that triggers code on line, or (line 0) one that must not. */
struct row {
	const char *code;
	unsigned line;
	enum ctx_kind ctx;
	const char *text;
	enum st_lint_severity sev;
};

#define HIT(code, sev, line, ctx, text)                                                            \
	{                                                                                          \
		code, line, ctx, text, sev                                                         \
	}
#define MISS(code, ctx, text)                                                                      \
	{                                                                                          \
		code, 0, ctx, text, 0                                                              \
	}
#define E        ST_LINT_ERROR
#define W        ST_LINT_WARNING
#define N        ST_LINT_NOTE
#define MD5FP    "CD:08:42:4B:FC:50:9D:D6:16:3D:E4:11:1C:BF:55:1F"
#define SHA256FP "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct row rows[] = {
    HIT("no-level", E, 2, C37, "# a comment\n[127.0.0.1]:2525 ,\n"),
    MISS("no-level", C37, "[127.0.0.1]:2525 may\n"),
    HIT("unknown-level", E, 1, C37, "a.example strict\n"),
    HIT("unknown-level", E, 1, C37, "a.example halfdane\n"),
    MISS("unknown-level", C37, "a.example SECURE\n"),
    HIT("malformed-attribute", E, 1, C37, "a.example may protocols=!SSLv2,!SSLv3\n"),
    HIT("malformed-attribute", E, 1, C37, "a.example may =x\n"),
    HIT("malformed-attribute", E, 1, C37, "a.example encrypt {protocols = >=TLSv1.2}\n"),
    MISS("malformed-attribute", C37, "a.example may protocols=!SSLv2:!SSLv3, ciphers=high\n"),
    MISS("malformed-attribute", C310, "a.example encrypt { protocols = >=TLSv1.2 }\n"),
    HIT("unknown-attribute", E, 1, C37, "a.example may colour=blue\n"),
    MISS("unknown-attribute", C37, "a.example may ciphers=high exclude=RC4\n"),
    HIT("attribute-not-at-level", E, 1, C37, "a.example encrypt match=hostname\n"),
    HIT("attribute-not-at-level", E, 1, C37, "a.example may tafile=/etc/hostname\n"),
    MISS("attribute-not-at-level", C37, "a.example verify match=hostname\n"),
    HIT("empty-value", E, 1, C37, "a.example encrypt ciphers=\n"),
    HIT("empty-value", E, 1, C37, "a.example verify match=\n"),
    MISS("empty-value", C37, "a.example encrypt protocols= exclude=\n"),
    HIT("repeated-attribute", E, 1, C37, "a.example encrypt ciphers=high ciphers=medium\n"),
    HIT("repeated-attribute", E, 1, C37, "a.example encrypt protocols=TLSv1.2 protocols=TLSv1.3\n"),
    MISS("repeated-attribute", C37,
         "a.example verify match=a match=b connection_reuse=yes connection_reuse=no\n"),
    HIT("invalid-value", E, 1, C37, "a.example encrypt connection_reuse=maybe\n"),
    HIT("invalid-value", E, 1, C37, "a.example encrypt servername=bad..name\n"),
    HIT("invalid-value", E, 1, C37, "a.example encrypt servername=\n"),
    MISS("invalid-value", C37, "a.example encrypt servername=mx_1.example connection_reuse=YES\n"),
    HIT("invalid-protocols", E, 1, C37, "a.example encrypt protocols=TLSv9\n"),
    HIT("invalid-protocols", E, 1, C37,
        "a.example encrypt protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1:!TLSv1.2:!TLSv1.3\n"),
    MISS("invalid-protocols", C37, "a.example encrypt protocols=>=TLSv1.2\n"),
    HIT("unknown-cipher-grade", E, 1, C37, "a.example encrypt ciphers=super\n"),
    MISS("unknown-cipher-grade", C37, "a.example encrypt ciphers=HIGH\n"),
    HIT("too-new", E, 1, C33, "a.example encrypt servername=hostname\n"),
    HIT("too-new", E, 1, C35, "a.example encrypt protocols=>=TLSv1.2\n"),
    HIT("too-new", E, 1, C37, "a.example encrypt enable_rpk=yes\n"),
    HIT("too-new", E, 1, C39, "a.example encrypt policy_type=sts\n"),
    MISS("too-new", C39, "a.example encrypt enable_rpk=yes servername=hostname\n"),
    MISS("too-new", NOVERSION, "a.example encrypt enable_rpk=yes\n"),
    HIT("tafile-unreadable", E, 1, C37, "a.example verify tafile=/nonexistent/ta.pem\n"),
    MISS("tafile-unreadable", C37, "a.example verify tafile=/etc/hostname\n"),
    HIT("policy-without-type", E, 1, C310, "a.example encrypt policy_domain=a.example\n"),
    MISS("policy-without-type", C310,
         "a.example encrypt policy_type=sts policy_domain=a.example\n"),
    HIT("star-key", W, 1, C37, "* encrypt\n"),
    MISS("star-key", C37, "example.com encrypt\n"),
    HIT("subdomains-only", W, 1, C37, ".example.com verify\n"),
    MISS("subdomains-only", C37, ".example.com verify\nexample.com verify\n"),
    MISS("subdomains-only", C37, ".example.com may\n"),
    MISS("subdomains-only", C37, ".com encrypt\n"),
    HIT("domain-only", N, 3, C37, "example.org verify\n.example.org verify\nexample.com verify\n"),
    MISS("domain-only", C37, "example.org verify\nexample.com verify\n"),
    MISS("domain-only", C37,
         "example.org verify\n.example.org verify\na.example verify\nb.example verify\n"
         "c.example verify\n"),
    HIT("deprecated-protocols", W, 1, C37, "a.example encrypt protocols=TLSv1:TLSv1.1\n"),
    HIT("deprecated-protocols", W, 1, C37, "a.example encrypt protocols=<=TLSv1.1\n"),
    MISS("deprecated-protocols", C37, "a.example encrypt protocols=!SSLv2:!SSLv3\n"),
    HIT("weak-cipher-grade", W, 1, C37, "a.example may ciphers=export\n"),
    MISS("weak-cipher-grade", C38, "a.example may ciphers=low\n"),
    HIT("null-cipher-grade", W, 1, C37, "a.example may ciphers=null\n"),
    MISS("null-cipher-grade", C37, "a.example may ciphers=medium\n"),
    HIT("secure-match-hostname", W, 1, C37, "a.example secure match=hostname:nexthop\n"),
    MISS("secure-match-hostname", C37,
         "a.example secure match=nexthop:dot-nexthop\nb.example verify match=hostname\n"),
    HIT("no-ca", W, 1, NOCA, "a.example verify\n"),
    MISS("no-ca", NOCA, "a.example verify tafile=/etc/hostname\nb.example dane\n"),
    MISS("no-ca", C37, "a.example secure\n"),
    HIT("duplicate-key", W, 2, C37, "a.example may\nA.Example encrypt\n"),
    MISS("duplicate-key", C37, "a.example may\n.a.example encrypt\n"),
    HIT("line-without-value", W, 1, C37, "novalue\n"),
    MISS("line-without-value", C37, "novalue may\n"),
    HIT("continuation-first", W, 1, C37, "  orphan may\na.example may\n"),
    MISS("continuation-first", C37, "a.example may\n  ciphers=high\n"),
    HIT("none-attributes", W, 1, C37, "a.example none protocols=TLSv1 colour\n"),
    MISS("none-attributes", C37, "a.example none\n"),
    HIT("fingerprint-length", W, 1, COMPAT4, "a.example fingerprint match=" MD5FP "\n"),
    HIT("fingerprint-length", W, 1, C37, "a.example fingerprint match=" SHA256FP "|xyz\n"),
    MISS("fingerprint-length", C37, "a.example fingerprint match=" MD5FP "|" SHA256FP "\n"),
    MISS("fingerprint-length", MD5, "a.example fingerprint\n  match=" MD5FP "\n"),
    HIT("fingerprint-no-match", W, 1, C37, "a.example fingerprint\n"),
    MISS("fingerprint-no-match", C37, "a.example fingerprint match=" SHA256FP "\n"),
};

static void test_rows(void **state)
{
	size_t i, nd;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct st_lint_diag *d = lint(&r->text, 1, "texthash", r->ctx, &nd);
		const struct st_lint_diag *f = find(d, nd, r->code);
		if (r->line) {
			if (!f)
				fail_msg("row %zu: no %s for '%s'", i, r->code, r->text);
			assert_int_equal(f->line, r->line);
			assert_int_equal(f->severity, r->sev);
			assert_string_equal(f->file, paths[0]);
			assert_true(f->message[0] && f->message[strlen(f->message) - 1] != '.');
		} else if (f)
			fail_msg("row %zu: %s for '%s': %s", i, r->code, r->text, f->message);
		free(d);
	}
}

/* What an invalid entry's message promises, and the hints that say how to fix it. */
static void test_messages(void **state)
{
	const char *text = "a.example verfy\n"
	                   "b.example may protocols=!SSLv2,!SSLv3\n"
	                   "c.example may cipher=high\n"
	                   "d.example verify\n";
	struct st_lint_diag *d;
	size_t nd;

	(void)state;
	d = lint(&text, 1, "texthash", C37, &nd);
	assert_int_equal(nd, 3);
	assert_int_equal(st_lint_worst(d, nd), ST_LINT_ERROR);
	assert_string_equal(d[0].key, "a.example");
	assert_non_null(strstr(d[0].message, "did you mean 'verify'?"));
	assert_non_null(strstr(d[0].message, "'4.7.5 client TLS configuration problem'"));
	assert_non_null(strstr(d[1].message, "separated by ':'"));
	assert_non_null(strstr(d[2].message, "did you mean 'ciphers'?"));
	free(d);
	text = "a.example may\n";
	d = lint(&text, 1, "texthash", C37, &nd);
	assert_int_equal(nd, 0);
	assert_int_equal(st_lint_worst(d, nd), -1);
	free(d);
	assert_string_equal(st_lint_severity_name(ST_LINT_NOTE), "note");
	assert_string_equal(st_lint_severity_name(ST_LINT_WARNING), "warning");
	assert_string_equal(st_lint_severity_name(ST_LINT_ERROR), "error");
}

static void test_shadowed(void **state)
{
	const char *texts[2] = {"a.example may\n", "b.example may\na.example strict\n"};
	struct st_lint_diag *d;
	size_t nd;

	(void)state;
	d = lint(texts, 2, "texthash", C37, &nd);
	assert_int_equal(nd, 1); /* the shadowed entry's own value is never read */
	assert_string_equal(d[0].code, "shadowed-key");
	assert_string_equal(d[0].file, paths[1]);
	assert_int_equal(d[0].line, 2);
	assert_int_equal(d[0].severity, ST_LINT_WARNING);
	free(d);
	texts[1] = "b.example strict\n"; /* near miss: another key, linted on its own */
	d = lint(texts, 2, "texthash", C37, &nd);
	assert_int_equal(nd, 1);
	assert_string_equal(d[0].code, "unknown-level");
	free(d);
}

/* hash: tables: the compiled path.db missing, older than its source, or newer */
static void test_db(void **state)
{
	struct st_policy_table *t;
	struct st_lint_context c = context(C37);
	struct st_lint_diag *d;
	struct st_error err;
	struct timespec ts[2];
	char spec[96], db[80];
	size_t nd;

	(void)state;
	write_file(paths[0], "a.example may\n");
	snprintf(spec, sizeof(spec), "hash:%s", paths[0]);
	snprintf(db, sizeof(db), "%s.db", paths[0]);
	t = st_policy_table_load(spec, &err);
	assert_int_equal(st_policy_lint(&t, 1, &c, &d, &nd, &err), 0);
	assert_int_equal(nd, 1);
	assert_string_equal(d[0].code, "missing-db");
	assert_int_equal(d[0].severity, ST_LINT_ERROR);
	assert_int_equal(d[0].line, 0);
	free(d);
	st_policy_table_free(t);

	fclose(fopen(db, "w"));
	ts[0].tv_sec = ts[1].tv_sec = 1000000000; /* 2001: older than the source */
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, db, ts, 0), 0);
	t = st_policy_table_load(spec, &err);
	assert_int_equal(st_policy_lint(&t, 1, &c, &d, &nd, &err), 0);
	assert_int_equal(nd, 1);
	assert_string_equal(d[0].code, "stale-db");
	assert_int_equal(d[0].severity, ST_LINT_WARNING);
	free(d);
	st_policy_table_free(t);

	ts[0].tv_sec = ts[1].tv_sec = 4000000000; /* newer: postmap was run */
	assert_int_equal(utimensat(AT_FDCWD, db, ts, 0), 0);
	t = st_policy_table_load(spec, &err);
	assert_int_equal(st_policy_lint(&t, 1, &c, &d, &nd, &err), 0);
	assert_int_equal(nd, 0);
	free(d);
	st_policy_table_free(t);
	unlink(db);
	unlink(paths[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_shadowed),
	    cmocka_unit_test(test_db),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
