/* test-verify.c: unit tests of lib/verify: Postfix name matching, match strategies, chains */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "verify.h"
#include "x509.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- st_name_matches: postconf(5) smtp_tls_verify_cert_match, tls_wildcard_matches_multiple_labels ---- */

static const struct {
	const char *cert, *pattern;
	bool multi, single; /* expected with multi-label wildcards, and without (the default) */
} name_cases[] = {
    {"mx.example.com", "mx.example.com", true, true},
    {"MX.Example.COM", "mx.example.com", true, true},  /* case is ignored */
    {"mx.example.com.", "mx.example.com", true, true}, /* a final dot is ignored */
    {"mx.example.com", "mx.example.com.", true, true},
    {"mx.example.com", "mx2.example.com", false, false},
    {"example.com", "mx.example.com", false, false},
    {"*.example.com", "mx.example.com", true, true},   /* one label */
    {"*.example.com", "a.b.example.com", true, false}, /* several labels: only as documented */
    {"*.example.net", "example.com.mx1.example.net", true, false}, /* the postconf(5) example */
    {"*.example.com", "example.com", false, false},                /* '*' is at least one label */
    {"*.example.com", "mxexample.com", false, false},
    {"*.example.com", ".example.com", true, true},       /* a suffix pattern: '*' is a label */
    {"f*.example.com", "foo.example.com", false, false}, /* '*' only as the whole first label */
    {"*oo.example.com", "foo.example.com", false, false},
    {"mx.*.example.com", "mx.a.example.com", false, false},
    {"*", "mx", false, false},
    {"*.", "mx.", false, false},
    {"mx.example.com", ".example.com", true, true},   /* one label below */
    {"a.mx.example.com", ".example.com", true, true}, /* more labels below */
    {"example.com", ".example.com", false, false},    /* never the domain itself */
    {"mxexample.com", ".example.com", false, false},
    {"MX.EXAMPLE.COM", ".example.com", true, true},
    {"*.example.com", ".mx.example.com", false, false},
    {"", "mx.example.com", false, false},
    {"mx.example.com", "", false, false},
    {"mx.example.com", ".", false, false},
    {"good.example?.evil.example", "good.example", false, false}, /* a NUL made '?' never matches */
};

static void test_name_matches(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N_ELEMS(name_cases); i++) {
		bool m = st_name_matches(name_cases[i].cert, name_cases[i].pattern, true);
		bool s = st_name_matches(name_cases[i].cert, name_cases[i].pattern, false);
		if (m != name_cases[i].multi || s != name_cases[i].single)
			fail_msg("'%s' ~ '%s': multi %d (want %d), single %d (want %d)",
			         name_cases[i].cert, name_cases[i].pattern, m, name_cases[i].multi,
			         s, name_cases[i].single);
	}
}

/* ---- st_match_expand ---- */

static void test_match_expand(void **state)
{
	char out[8][256];
	struct st_error err;
	int n;

	(void)state;
	n = st_match_expand("hostname:nexthop:dot-nexthop", "mx.example.net", "example.com", out, 8,
	                    &err);
	assert_int_equal(n, 3);
	assert_string_equal(out[0], "mx.example.net");
	assert_string_equal(out[1], "example.com");
	assert_string_equal(out[2], ".example.com");
	/* main.cf separators: commas and white space too */
	n = st_match_expand(" nexthop, .example.org  mail.example.org ", NULL, "example.com", out,
	                    8, &err);
	assert_int_equal(n, 3);
	assert_string_equal(out[0], "example.com");
	assert_string_equal(out[1], ".example.org");
	assert_string_equal(out[2], "mail.example.org");
	n = st_match_expand("HostName", "mx.example.net", NULL, out, 8, &err);
	assert_int_equal(n, 1);
	assert_string_equal(out[0], "mx.example.net");
	/* a strategy without its name is a usage error */
	n = st_match_expand("hostname", NULL, "example.com", out, 8, &err);
	assert_int_equal(n, -1);
	assert_int_equal(err.cls, ST_ERR_USAGE);
	assert_non_null(strstr(err.msg, "needs --hostname"));
	n = st_match_expand("dot-nexthop", "mx", NULL, out, 8, &err);
	assert_int_equal(n, -1);
	assert_non_null(strstr(err.msg, "needs --nexthop"));
	n = st_match_expand("a:b:c", NULL, NULL, out, 2, &err);
	assert_int_equal(n, -1);
	assert_non_null(strstr(err.msg, "too many"));
	n = st_match_expand("", NULL, NULL, out, 2, &err);
	assert_int_equal(n, 0);
}

/* ---- chains, from the committed fixtures (root P-384 -> int P-256 -> ec leaf) ---- */

struct fixture {
	struct st_x509_item *items[8];
	size_t n;
	struct st_buf data;
};

static void load(const char *name, struct fixture *f)
{
	char path[4096];
	const char *top = getenv("TOP_SRCDIR");
	struct st_x509_reader *r;
	struct st_x509_item *item;
	struct st_error err;

	snprintf(path, sizeof(path), "%s/tests/unit/data/%s", top ? top : ".", name);
	st_buf_init(&f->data, ST_INPUT_MAX);
	f->n = 0;
	assert_int_equal(st_read_file(path, &f->data, &err), 0);
	r = st_x509_reader_new(name, f->data.data, f->data.len);
	assert_non_null(r);
	while (st_x509_reader_next(r, &item, &err) > 0 && f->n < N_ELEMS(f->items))
		f->items[f->n++] = item;
	st_x509_reader_free(r);
}

static void unload(struct fixture *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		st_x509_item_free(f->items[i]);
	st_buf_release(&f->data);
}

static struct st_trust *trust_from(const char *name)
{
	char path[4096];
	const char *top = getenv("TOP_SRCDIR");
	struct st_trust *t = st_trust_new();
	struct st_error err;

	assert_non_null(t);
	snprintf(path, sizeof(path), "%s/tests/unit/data/%s", top ? top : ".", name);
	assert_int_equal(st_trust_add_file(t, path, &err), 0);
	return t;
}

/* 2026-11-28T00:00:00Z: inside the fixtures' 2020..2099 validity */
#define NOW 1795824000

static bool has_error(const struct st_verify_result *r, enum st_verr code, int depth, int ossl)
{
	size_t i;

	for (i = 0; i < r->n_errors; i++)
		if (r->errors[i].code == code && r->errors[i].depth == depth &&
		    r->errors[i].openssl_code == ossl)
			return true;
	return false;
}

static void test_chains(void **state)
{
	struct fixture chain, leaf, inter;
	struct st_trust *ca = trust_from("ca.pem"), *empty = st_trust_new(), *intonly;
	struct st_verify_params p;
	struct st_verify_result r;
	struct st_error err;
	const char *pats[] = {"ec.example.org"}, *wild[] = {"mx.ec.example.org"},
	           *bad[] = {"other.example.org"}, *sub[] = {".example.org"};

	(void)state;
	load("chain.pem", &chain); /* ec, int, ca */
	load("ec.pem", &leaf);
	load("int.pem", &inter);
	intonly = trust_from("int.pem");
	memset(&p, 0, sizeof(p));
	p.at = NOW;
	p.digest = ST_DIGEST_SHA256;

	/* trusted root: ok, Trusted without a name, Verified with one */
	p.trust = ca;
	assert_int_equal(st_verify_chain(&p, chain.items, chain.n, NULL, 0, &r, &err), 0);
	assert_int_equal(r.status, ST_VERIFY_OK);
	assert_string_equal(r.postfix_status, "Trusted");
	assert_int_equal(r.n_chain, 3);
	assert_string_equal(r.chain[2].source, "trust");
	assert_int_equal(r.n_names, 2);
	assert_string_equal(r.names[0], "ec.example.org");
	st_verify_result_release(&r);
	p.match = pats;
	p.n_match = 1;
	assert_int_equal(st_verify_chain(&p, chain.items, chain.n, NULL, 0, &r, &err), 0);
	assert_string_equal(r.postfix_status, "Verified");
	assert_string_equal(r.matched, "ec.example.org");
	st_verify_result_release(&r);
	p.match = wild; /* *.ec.example.org */
	assert_int_equal(st_verify_chain(&p, chain.items, chain.n, NULL, 0, &r, &err), 0);
	assert_string_equal(r.postfix_status, "Verified");
	assert_string_equal(r.matched, "*.ec.example.org");
	st_verify_result_release(&r);
	p.match = sub;
	assert_int_equal(st_verify_chain(&p, chain.items, chain.n, NULL, 0, &r, &err), 0);
	assert_string_equal(r.postfix_status, "Verified");
	st_verify_result_release(&r);
	p.match = bad;
	assert_int_equal(st_verify_chain(&p, chain.items, chain.n, NULL, 0, &r, &err), 0);
	assert_int_equal(r.status, ST_VERIFY_FAIL);
	assert_string_equal(r.postfix_status,
	                    "Trusted"); /* the documented meaning, not 3.6's log bug */
	assert_true(has_error(&r, ST_V_NAME_MISMATCH, 0, 62));
	st_verify_result_release(&r);
	p.match = NULL;
	p.n_match = 0;

	/* the leaf alone, the intermediate given as --untrusted */
	assert_int_equal(st_verify_chain(&p, leaf.items, 1, inter.items, 1, &r, &err), 0);
	assert_int_equal(r.status, ST_VERIFY_OK);
	assert_string_equal(r.chain[1].source, "untrusted");
	st_verify_result_release(&r);
	/* the leaf alone: 20 at depth 0 */
	assert_int_equal(st_verify_chain(&p, leaf.items, 1, NULL, 0, &r, &err), 0);
	assert_true(has_error(&r, ST_V_UNKNOWN_ISSUER, 0, 20));
	assert_string_equal(r.postfix_status, "Untrusted");
	st_verify_result_release(&r);

	/* nothing trusted: the chain's own root is 19 at depth 2 */
	p.trust = empty;
	assert_int_equal(st_verify_chain(&p, chain.items, chain.n, NULL, 0, &r, &err), 0);
	assert_true(has_error(&r, ST_V_SELF_SIGNED_IN_CHAIN, 2, 19));
	st_verify_result_release(&r);
	/* the root alone: 18 */
	assert_int_equal(st_verify_chain(&p, chain.items + 2, 1, NULL, 0, &r, &err), 0);
	assert_true(has_error(&r, ST_V_SELF_SIGNED, 0, 18));
	st_verify_result_release(&r);

	/* the intermediate trusted: 2 at depth 1, or OK with a partial chain */
	p.trust = intonly;
	assert_int_equal(st_verify_chain(&p, leaf.items, 1, NULL, 0, &r, &err), 0);
	assert_true(has_error(&r, ST_V_UNKNOWN_ISSUER, 1, 2));
	st_verify_result_release(&r);
	p.partial_chain = true;
	assert_int_equal(st_verify_chain(&p, leaf.items, 1, NULL, 0, &r, &err), 0);
	assert_int_equal(r.status, ST_VERIFY_OK);
	st_verify_result_release(&r);
	p.partial_chain = false;

	/* time: after 2099 every certificate has expired; before 2020 none is valid yet */
	p.trust = ca;
	p.at = 4102444800LL; /* 2100-01-01 */
	assert_int_equal(st_verify_chain(&p, chain.items, chain.n, NULL, 0, &r, &err), 0);
	assert_true(has_error(&r, ST_V_EXPIRED, 0, 10));
	assert_true(has_error(&r, ST_V_EXPIRED, 1, 10));
	assert_true(has_error(&r, ST_V_EXPIRED, 2, 10));
	assert_string_equal(r.postfix_status, "Untrusted");
	st_verify_result_release(&r);
	p.at = 1500000000; /* 2017 */
	assert_int_equal(st_verify_chain(&p, chain.items, chain.n, NULL, 0, &r, &err), 0);
	assert_true(has_error(&r, ST_V_NOT_YET_VALID, 0, 9));
	st_verify_result_release(&r);

	/* monitoring thresholds: 2099-12-01 is 30 days before the end */
	p.at = 4099766400LL;
	p.warn_days = 60;
	assert_int_equal(st_verify_chain(&p, chain.items, chain.n, NULL, 0, &r, &err), 0);
	assert_int_equal(r.status, ST_VERIFY_WARN);
	assert_int_equal(r.n_errors, 0);
	assert_true(r.n_warnings >= 1);
	assert_int_equal(r.warnings[0].code, ST_V_EXPIRES_SOON);
	assert_string_equal(r.postfix_status, "Trusted");
	st_verify_result_release(&r);
	p.crit_days = 40;
	assert_int_equal(st_verify_chain(&p, chain.items, chain.n, NULL, 0, &r, &err), 0);
	assert_int_equal(r.status, ST_VERIFY_FAIL);
	assert_true(has_error(&r, ST_V_EXPIRES_SOON, 0, 0));
	assert_string_equal(r.postfix_status, "Trusted"); /* a threshold is not distrust */
	st_verify_result_release(&r);
	p.warn_days = p.crit_days = 0;
	p.at = NOW;

	/* purpose: the leaf is for TLS servers only */
	p.purpose = ST_PURPOSE_SERVER;
	assert_int_equal(st_verify_chain(&p, chain.items, chain.n, NULL, 0, &r, &err), 0);
	assert_int_equal(r.status, ST_VERIFY_OK);
	st_verify_result_release(&r);
	p.purpose = ST_PURPOSE_CLIENT;
	assert_int_equal(st_verify_chain(&p, chain.items, chain.n, NULL, 0, &r, &err), 0);
	assert_true(has_error(&r, ST_V_WRONG_PURPOSE, 0, 26));
	st_verify_result_release(&r);
	p.purpose = ST_PURPOSE_ANY;

	/* a chain upside down: the CA first */
	{
		struct st_x509_item *rev[2] = {inter.items[0], leaf.items[0]};
		assert_int_equal(st_verify_chain(&p, rev, 2, NULL, 0, &r, &err), 0);
		assert_true(has_error(&r, ST_V_WRONG_ORDER, 0, 0));
		st_verify_result_release(&r);
	}

	st_trust_free(ca);
	st_trust_free(empty);
	st_trust_free(intonly);
	unload(&chain);
	unload(&leaf);
	unload(&inter);
}

/* an OCSP response stapled in the handshake: checked against the leaf and the issuer
 * the chain was built with, reported beside the chain, never an error of it */
static void test_staple(void **state)
{
	struct fixture good, key, resp_good, resp_revoked;
	struct st_trust *ca = trust_from("rev-ca.pem"), *empty = st_trust_new();
	struct st_verify_params p;
	struct st_verify_result r;
	struct st_error err;
	char path[4096];
	const char *top = getenv("TOP_SRCDIR");
	static const unsigned char junk[] = "not an OCSP response";

	(void)state;
	load("rev-good.pem", &good);
	load("rev-key.pem", &key);
	st_buf_init(&resp_good.data, 1 << 20);
	st_buf_init(&resp_revoked.data, 1 << 20);
	snprintf(path, sizeof(path), "%s/tests/unit/data/rev-ocsp-good.der", top ? top : ".");
	assert_int_equal(st_read_file(path, &resp_good.data, &err), 0);
	snprintf(path, sizeof(path), "%s/tests/unit/data/rev-ocsp-revoked.der", top ? top : ".");
	assert_int_equal(st_read_file(path, &resp_revoked.data, &err), 0);
	memset(&p, 0, sizeof(p));
	p.trust = ca;
	p.digest = ST_DIGEST_SHA256;
	p.at = 1795874817 + 3600; /* an hour after the fixtures' responses were made */

	/* no staple: not checked */
	assert_int_equal(st_verify_chain(&p, good.items, 1, NULL, 0, &r, &err), 0);
	assert_int_equal(r.staple.status, ST_REV_NOT_CHECKED);
	st_verify_result_release(&r);
	/* a good staple about this leaf, signed by the CA's responder */
	p.ocsp_staple = resp_good.data.data;
	p.ocsp_staple_len = resp_good.data.len;
	assert_int_equal(st_verify_chain(&p, good.items, 1, NULL, 0, &r, &err), 0);
	assert_int_equal(r.staple.status, ST_REV_GOOD);
	assert_string_equal(r.staple.source, "ocsp");
	assert_non_null(strstr(r.staple.detail, "stapled response"));
	assert_int_equal(r.status, ST_VERIFY_OK);
	st_verify_result_release(&r);
	/* a staple about another certificate: unavailable, and the chain still holds */
	p.ocsp_staple = resp_revoked.data.data;
	p.ocsp_staple_len = resp_revoked.data.len;
	assert_int_equal(st_verify_chain(&p, good.items, 1, NULL, 0, &r, &err), 0);
	assert_int_equal(r.staple.status, ST_REV_UNAVAILABLE);
	assert_int_equal(r.status, ST_VERIFY_OK);
	st_verify_result_release(&r);
	/* a staple that says revoked: reported, but Postfix would still call it Trusted */
	assert_int_equal(st_verify_chain(&p, key.items, 1, NULL, 0, &r, &err), 0);
	assert_int_equal(r.staple.status, ST_REV_REVOKED);
	assert_int_equal(r.staple.reason, 1); /* keyCompromise */
	assert_string_equal(r.postfix_status, "Trusted");
	st_verify_result_release(&r);
	/* after the response's nextUpdate: stale */
	p.at = 1795874817 + (27000 + 1) * 86400LL;
	assert_int_equal(st_verify_chain(&p, key.items, 1, NULL, 0, &r, &err), 0);
	assert_int_equal(r.staple.status, ST_REV_UNAVAILABLE);
	st_verify_result_release(&r);
	p.at = 1795874817 + 3600;
	/* bytes that are no OCSP response */
	p.ocsp_staple = junk;
	p.ocsp_staple_len = sizeof(junk) - 1;
	assert_int_equal(st_verify_chain(&p, good.items, 1, NULL, 0, &r, &err), 0);
	assert_int_equal(r.staple.status, ST_REV_UNAVAILABLE);
	st_verify_result_release(&r);
	/* no issuer to check it with (nothing trusted, the leaf alone) */
	p.trust = empty;
	p.ocsp_staple = resp_good.data.data;
	p.ocsp_staple_len = resp_good.data.len;
	assert_int_equal(st_verify_chain(&p, good.items, 1, NULL, 0, &r, &err), 0);
	assert_int_equal(r.staple.status, ST_REV_UNAVAILABLE);
	assert_non_null(strstr(r.staple.detail, "no issuer of the leaf"));
	st_verify_result_release(&r);

	st_trust_free(ca);
	st_trust_free(empty);
	unload(&good);
	unload(&key);
	st_buf_release(&resp_good.data);
	st_buf_release(&resp_revoked.data);
}

/* Postfix match lists: the certificate or the public-key digest (openssl x509 -fingerprint,
 * openssl pkey | dgst), colons optional, case ignored, '|' ',' or blanks between */
static void test_fingerprint_list(void **state)
{
	struct fixture f;
	const char *cert =
	    "A3:F1:88:EA:3A:7C:3A:98:61:6B:6B:1A:CE:AC:42:3A:8C:DC:C5:3C:72:86:66:6B:"
	    "F1:BC:EF:E2:80:41:96:57";
	const char *pkey = "5ce8101d55731edc87819b63e39de7add9ea79e6632b2d644c4b245d7f9f6f95";
	char list[512];

	(void)state;
	load("ec.pem", &f);
	assert_true(st_fingerprint_list_matches(f.items[0], ST_DIGEST_SHA256, cert));
	assert_true(st_fingerprint_list_matches(f.items[0], ST_DIGEST_SHA256, pkey));
	snprintf(list, sizeof(list), "00:11|%s", pkey);
	assert_true(st_fingerprint_list_matches(f.items[0], ST_DIGEST_SHA256, list));
	snprintf(list, sizeof(list), "00:11, \t%s", cert);
	assert_true(st_fingerprint_list_matches(f.items[0], ST_DIGEST_SHA256, list));
	assert_false(st_fingerprint_list_matches(f.items[0], ST_DIGEST_SHA256, "00:11|22:33"));
	assert_false(st_fingerprint_list_matches(f.items[0], ST_DIGEST_SHA256, ""));
	assert_false(st_fingerprint_list_matches(f.items[0], ST_DIGEST_SHA1, cert));
	assert_false(st_fingerprint_list_matches(NULL, ST_DIGEST_SHA256, cert));
	unload(&f);
}

static void test_trust_notes(void **state)
{
	struct st_trust *t = trust_from("ec.pem"); /* a leaf in a CA file */
	const struct st_trust_note *notes;
	struct st_error err;
	size_t n;

	(void)state;
	notes = st_trust_notes(t, &n);
	assert_int_equal(n, 1);
	assert_non_null(strstr(notes[0].message, "is not a CA certificate"));
	assert_int_equal(st_trust_count(t), 1);
	/* a file without a certificate is an error */
	assert_int_not_equal(st_trust_add_file(t, "/dev/null", &err), 0);
	assert_int_equal(err.cls, ST_ERR_INPUT);
	st_trust_free(t);
}

/* st_trust_index_file: the same verdicts as the whole file, from only the anchors a chain names */
static void test_trust_index(void **state)
{
	char path[4096];
	const char *top = getenv("TOP_SRCDIR");
	struct st_trust *lazy = st_trust_new(), *whole = trust_from("chain.pem");
	struct fixture inter;
	struct st_verify_params p;
	struct st_verify_result r, rw;
	struct st_error err;
	size_t indexed, parsed;

	(void)state;
	assert_non_null(lazy);
	snprintf(path, sizeof(path), "%s/tests/unit/data/chain.pem", top ? top : ".");
	assert_int_equal(st_trust_index_file(lazy, path, &err), 0); /* ec, int, ca */
	st_trust_stats(lazy, &indexed, &parsed);
	assert_int_equal(indexed, 3);
	assert_int_equal(parsed, 0);
	assert_int_equal(st_trust_count(lazy), st_trust_count(whole));

	load("int.pem", &inter);
	memset(&p, 0, sizeof(p));
	p.at = NOW;
	p.digest = ST_DIGEST_SHA256;
	p.trust = lazy;
	assert_int_equal(st_verify_chain(&p, inter.items, inter.n, NULL, 0, &r, &err), 0);
	p.trust = whole;
	assert_int_equal(st_verify_chain(&p, inter.items, inter.n, NULL, 0, &rw, &err), 0);
	assert_int_equal(r.status, rw.status);
	assert_string_equal(r.postfix_status, rw.postfix_status);
	assert_int_equal(r.n_chain, rw.n_chain);
	assert_string_equal(r.chain[r.n_chain - 1].source, "trust");
	/* the intermediate (is it an anchor?) and the root (its issuer): not the leaf */
	st_trust_stats(lazy, &indexed, &parsed);
	assert_int_equal(parsed, 2);
	assert_int_equal(st_trust_count(lazy), 3);
	st_verify_result_release(&r);
	st_verify_result_release(&rw);
	unload(&inter);
	st_trust_free(lazy);
	st_trust_free(whole);

	/* DER is read whole, as st_trust_add_file reads it: nothing indexed */
	lazy = st_trust_new();
	snprintf(path, sizeof(path), "%s/tests/unit/data/ec.der", top ? top : ".");
	assert_int_equal(st_trust_index_file(lazy, path, &err), 0);
	st_trust_stats(lazy, &indexed, &parsed);
	assert_int_equal(indexed, 0);
	assert_int_equal(st_trust_count(lazy), 1);
	/* and a file without a certificate is the same error */
	assert_int_not_equal(st_trust_index_file(lazy, "/dev/null", &err), 0);
	assert_int_equal(err.cls, ST_ERR_INPUT);
	st_trust_free(lazy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_matches), cmocka_unit_test(test_match_expand),
	    cmocka_unit_test(test_chains),       cmocka_unit_test(test_staple),
	    cmocka_unit_test(test_trust_notes),  cmocka_unit_test(test_fingerprint_list),
	    cmocka_unit_test(test_trust_index),
	};
	return cmocka_run_group_tests_name("verify", tests, NULL, NULL);
}
