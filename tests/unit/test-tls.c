/* test-tls.c: unit tests of lib/tls: Postfix protocol lists, priorities, two sessions talking through buffers */
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

#include "tls.h"
#include "x509-gnutls.h"

static const struct {
	const char *list;
	int want; /* -1: an error */
} proto_cases[] = {
    {"", ST_TLS_ALL},
    {">=TLSv1.2", ST_TLS_TLSV1_2 | ST_TLS_TLSV1_3},
    {"<=TLSv1.2", ST_TLS_ALL & ~ST_TLS_TLSV1_3},
    {">=TLSv1.1 <=TLSv1.2", ST_TLS_TLSV1_1 | ST_TLS_TLSV1_2},
    {"!SSLv2, !SSLv3", ST_TLS_TLSV1 | ST_TLS_TLSV1_1 | ST_TLS_TLSV1_2 | ST_TLS_TLSV1_3},
    {"!SSLv2:!SSLv3:!TLSv1:!TLSv1.1", ST_TLS_TLSV1_2 | ST_TLS_TLSV1_3}, /* table syntax */
    {"TLSv1.2", ST_TLS_TLSV1_2},                                        /* only what is named */
    {"TLSv1.2 TLSv1.3", ST_TLS_TLSV1_2 | ST_TLS_TLSV1_3},
    {"tlsv1.3", ST_TLS_TLSV1_3}, /* case is ignored */
    {">=TLSv1.2 !TLSv1.3", ST_TLS_TLSV1_2},
    {"TLSv1.4", -1},
    {">=TLSv9", -1},
    {"!TLSv1.2 TLSv1.2", -1}, /* nothing left */
    {">=TLSv1.3 <=TLSv1.2", -1},
};

static void test_protocols(void **state)
{
	struct st_error err;
	size_t i;
	int got;

	(void)state;
	for (i = 0; i < sizeof(proto_cases) / sizeof(proto_cases[0]); i++) {
		got = st_tls_protocols_parse(proto_cases[i].list, &err);
		if (got != proto_cases[i].want)
			fail_msg("'%s': got %d, want %d", proto_cases[i].list, got,
			         proto_cases[i].want);
		if (got < 0)
			assert_int_equal(err.cls, ST_ERR_USAGE);
	}
	assert_int_equal(st_tls_protocols_parse("TLSv1.4", &err), -1);
	assert_non_null(strstr(err.msg, "'TLSv1.4' is not a TLS protocol"));
}

static void test_priority(void **state)
{
	struct st_error err;
	char prio[512];

	(void)state;
	assert_int_equal(
	    st_tls_priority(ST_TLS_TLSV1_2 | ST_TLS_TLSV1_3, "high", prio, sizeof(prio), &err), 0);
	assert_string_equal(prio, "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3");
	assert_int_equal(st_tls_priority(ST_TLS_TLSV1_2, "null", prio, sizeof(prio), &err), 0);
	assert_string_equal(prio, "NORMAL:-VERS-ALL:+VERS-TLS1.2:+NULL");
	/* SSLv2 alone: nothing GnuTLS can speak */
	assert_int_equal(st_tls_priority(ST_TLS_SSLV2, NULL, prio, sizeof(prio), &err), -1);
	assert_non_null(strstr(err.msg, "no TLS protocol left"));
	assert_int_equal(st_tls_priority(ST_TLS_ALL, "strong", prio, sizeof(prio), &err), -1);
	assert_non_null(strstr(err.msg, "'strong' is not a cipher grade"));
}

static char fixture[4096];

static const char *data_file(const char *name)
{
	const char *top = getenv("TOP_SRCDIR");

	snprintf(fixture, sizeof(fixture), "%s/tests/unit/data/%s", top ? top : ".", name);
	return strdup(fixture);
}

/* Move ciphertext both ways until both handshakes end; returns the client's result. */
static int shake(struct st_tls *c, struct st_tls *s, struct st_error *ce, struct st_error *se)
{
	const unsigned char *o;
	size_t n;
	int rc_c = 0, rc_s = 0, rounds;

	for (rounds = 0; rounds < 50 && (rc_c == 0 || rc_s == 0); rounds++) {
		if (rc_c == 0)
			rc_c = st_tls_handshake(c, ce);
		o = st_tls_output(c, &n);
		assert_int_equal(st_tls_input(s, o, n), 0);
		st_tls_output_done(c, n);
		if (rc_s == 0)
			rc_s = st_tls_handshake(s, se);
		o = st_tls_output(s, &n);
		assert_int_equal(st_tls_input(c, o, n), 0);
		st_tls_output_done(s, n);
		if (rc_c < 0 || rc_s < 0)
			break;
	}
	return rc_c < 0 ? rc_c : rc_s < 0 ? rc_s : rc_c;
}

/* One handshake call of a that must take the whole flight b sent, however many records it
 * spans: it ends the handshake or answers (into b's input). A call that says "again" with
 * the flight still unread stalls a real peer, which has nothing more to send. */
static void step_whole(struct st_tls *a, struct st_tls *b, int *rc, struct st_error *err)
{
	const unsigned char *o;
	size_t n;

	if (*rc != 0)
		return;
	*rc = st_tls_handshake(a, err);
	o = st_tls_output(a, &n);
	assert_true(*rc != 0 || n > 0);
	assert_int_equal(st_tls_input(b, o, n), 0);
	st_tls_output_done(a, n);
}

/* As shake, one step_whole each way a round. */
static int shake_whole(struct st_tls *c, struct st_tls *s, struct st_error *ce, struct st_error *se)
{
	int rc_c = 0, rc_s = 0, rounds;

	for (rounds = 0; rounds < 10 && (rc_c == 0 || rc_s == 0); rounds++) {
		step_whole(c, s, &rc_c, ce);
		step_whole(s, c, &rc_s, se);
		if (rc_c < 0 || rc_s < 0)
			break;
	}
	return rc_c < 0 ? rc_c : rc_s < 0 ? rc_s : rc_c;
}

/* d into a new file made from pattern (its name into path, 64 bytes); frees d. */
static void write_temp(char *path, const char *pattern, gnutls_datum_t *d)
{
	FILE *f;
	int fd;

	snprintf(path, 64, "%s", pattern);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(d->data, 1, d->size, f), d->size);
	assert_int_equal(fclose(f), 0);
	gnutls_free(d->data);
}

/* A self-signed certificate of about 24 KB (800 names), so that its Certificate message
 * spans two TLS records at least, and its key, written to certf and keyf (PEM). */
static void big_cert(char *certf, char *keyf)
{
	gnutls_x509_privkey_t k;
	gnutls_x509_crt_t c;
	gnutls_datum_t d;
	char name[64];
	unsigned i;

	assert_int_equal(gnutls_x509_privkey_init(&k), 0);
	assert_int_equal(
	    gnutls_x509_privkey_generate(k, GNUTLS_PK_ECDSA,
	                                 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
	    0);
	assert_int_equal(gnutls_x509_crt_init(&c), 0);
	gnutls_x509_crt_set_version(c, 3);
	gnutls_x509_crt_set_serial(c, "\x01", 1);
	gnutls_x509_crt_set_activation_time(c, 1704067200); /* 2024-01-01 */
	gnutls_x509_crt_set_expiration_time(c, 4102444799); /* 2099-12-31 */
	gnutls_x509_crt_set_dn_by_oid(c, GNUTLS_OID_X520_COMMON_NAME, 0, "big.smtptls.test", 16);
	for (i = 0; i < 800; i++) {
		snprintf(name, sizeof(name), "host%04u.big.smtptls.test", i);
		assert_int_equal(gnutls_x509_crt_set_subject_alt_name(
		                     c, GNUTLS_SAN_DNSNAME, name, strlen(name), GNUTLS_FSAN_APPEND),
		                 0);
	}
	assert_int_equal(gnutls_x509_crt_set_key(c, k), 0);
	assert_int_equal(gnutls_x509_crt_sign2(c, c, k, GNUTLS_DIG_SHA256, 0), 0);
	assert_int_equal(gnutls_x509_crt_export2(c, GNUTLS_X509_FMT_DER, &d), 0);
	assert_true(d.size > 16384);
	gnutls_free(d.data);
	assert_int_equal(gnutls_x509_crt_export2(c, GNUTLS_X509_FMT_PEM, &d), 0);
	write_temp(certf, "/tmp/test-tls-cert.XXXXXX", &d);
	assert_int_equal(gnutls_x509_privkey_export2(k, GNUTLS_X509_FMT_PEM, &d), 0);
	write_temp(keyf, "/tmp/test-tls-key.XXXXXX", &d);
	gnutls_x509_crt_deinit(c);
	gnutls_x509_privkey_deinit(k);
}

/* A certificate larger than a TLS record, from the server or from the client, in TLS 1.3
 * and 1.2: every flight is taken whole by one handshake call (it used to stop after the
 * first record and wait for bytes that were already there). */
static void test_big_flight(void **state)
{
	char certf[64], keyf[64], prio[256];
	const char *key = data_file("ec.key"), *cert = data_file("chain.pem");
	struct st_tls_params sp = {.server = true}, cp = {.server = false};
	struct st_tls *s, *c;
	struct st_tls_summary sum;
	struct st_error ce, se;
	int v, who;

	(void)state;
	big_cert(certf, keyf);
	assert_int_equal(st_tls_priority(st_tls_protocols_parse("<=TLSv1.2", &se), NULL, prio,
	                                 sizeof(prio), &se),
	                 0);
	for (who = 0; who < 2; who++) {
		for (v = 0; v < 2; v++) {
			sp.priority = v ? prio : NULL;
			/* who 0: the server's certificate is big; 1: the client's */
			sp.cert_file = who ? cert : certf;
			sp.key_file = who ? key : keyf;
			sp.request_client_cert = who == 1;
			cp.cert_file = who ? certf : NULL;
			cp.key_file = who ? keyf : NULL;
			s = st_tls_new(&sp, &se);
			c = st_tls_new(&cp, &ce);
			assert_non_null(s);
			assert_non_null(c);
			assert_int_equal(shake_whole(c, s, &ce, &se), 1);
			st_tls_summary(c, &sum);
			assert_string_equal(sum.version, v ? "TLSv1.2" : "TLSv1.3");
			if (who)
				assert_true(sum.client_cert_sent);
			else
				assert_int_equal(sum.n_peer_certs, 1);
			st_tls_free(c);
			st_tls_free(s);
		}
	}
	unlink(certf);
	unlink(keyf);
	free((char *)key);
	free((char *)cert);
}

static void test_sessions(void **state)
{
	const char *cert = data_file("chain.pem"), *key = data_file("ec.key");
	struct st_tls_params sp = {.server = true, .cert_file = cert, .key_file = key};
	struct st_tls_params cp = {.server = false, .sni = "ec.example.org"};
	struct st_tls *s, *c;
	struct st_tls_summary sum;
	struct st_error ce, se;
	char prio[256], buf[64];
	const unsigned char *o;
	size_t n;
	long got;

	(void)state;
	/* the default: TLS 1.3, the chain as sent */
	s = st_tls_new(&sp, &se);
	c = st_tls_new(&cp, &ce);
	assert_non_null(s);
	assert_non_null(c);
	assert_int_equal(shake(c, s, &ce, &se), 1);
	assert_int_equal(st_tls_summary(c, &sum), 0);
	assert_string_equal(sum.version, "TLSv1.3");
	assert_true(strncmp(sum.cipher, "TLS_", 4) == 0);
	assert_int_equal(sum.n_peer_certs, 3);
	assert_false(sum.client_cert_requested);
	assert_non_null(st_tls_peer_cert(c, 0, &n));
	assert_null(st_tls_peer_cert(c, 3, &n));
	/* application data both ways */
	assert_int_equal(st_tls_write(c, "EHLO c\r\n", 8, &ce), 0);
	o = st_tls_output(c, &n);
	st_tls_input(s, o, n);
	st_tls_output_done(c, n);
	got = st_tls_read(s, buf, sizeof(buf), &se);
	assert_int_equal(got, 8);
	assert_memory_equal(buf, "EHLO c\r\n", 8);
	assert_int_equal(st_tls_read(s, buf, sizeof(buf), &se), 0); /* nothing more yet */
	st_tls_free(c);
	st_tls_free(s);

	/* a server limited to TLS 1.2 (<=TLSv1.2), a client that takes it */
	assert_int_equal(st_tls_priority(st_tls_protocols_parse("<=TLSv1.2", &se), NULL, prio,
	                                 sizeof(prio), &se),
	                 0);
	sp.priority = prio;
	s = st_tls_new(&sp, &se);
	c = st_tls_new(&cp, &ce);
	assert_int_equal(shake(c, s, &ce, &se), 1);
	st_tls_summary(c, &sum);
	assert_string_equal(sum.version, "TLSv1.2");
	assert_true(strncmp(sum.cipher, "TLS_ECDHE_ECDSA_", 16) == 0);
	st_tls_free(c);
	st_tls_free(s);

	/* ... and a client that wants TLS 1.3 only: no common version */
	{
		char cprio[256];
		assert_int_equal(st_tls_priority(st_tls_protocols_parse(">=TLSv1.3", &ce), NULL,
		                                 cprio, sizeof(cprio), &ce),
		                 0);
		cp.priority = cprio;
		s = st_tls_new(&sp, &se);
		c = st_tls_new(&cp, &ce);
		st_error_clear(&ce);
		st_error_clear(&se);
		assert_true(shake(c, s, &ce, &se) < 0);
		assert_true(ce.cls == ST_ERR_TLS || se.cls == ST_ERR_TLS);
		st_tls_free(c);
		st_tls_free(s);
		cp.priority = NULL;
	}
	sp.priority = NULL;

	/* credentials read once, shared by several sessions, outliving them */
	{
		struct st_tls_creds *creds = st_tls_creds_new(&sp, &se);
		struct st_tls_params shared = sp;
		int k;
		assert_non_null(creds);
		shared.creds = creds;
		shared.cert_file = shared.key_file = NULL; /* not read again */
		for (k = 0; k < 3; k++) {
			s = st_tls_new(&shared, &se);
			c = st_tls_new(&cp, &ce);
			assert_non_null(s);
			assert_int_equal(shake(c, s, &ce, &se), 1);
			st_tls_summary(c, &sum);
			assert_int_equal(sum.n_peer_certs, 3);
			st_tls_free(c);
			st_tls_free(s);
		}
		st_tls_creds_free(creds);
		/* a bad key: the same error as st_tls_new's */
		shared = sp;
		shared.key_file = cert;
		assert_null(st_tls_creds_new(&shared, &se));
		assert_int_equal(se.cls, ST_ERR_INPUT);
	}

	/* a server that asks for a client certificate: the client sees the request */
	sp.request_client_cert = true;
	s = st_tls_new(&sp, &se);
	c = st_tls_new(&cp, &ce);
	assert_int_equal(shake(c, s, &ce, &se), 1);
	st_tls_summary(c, &sum);
	assert_true(sum.client_cert_requested);
	assert_false(sum.client_cert_sent);
	st_tls_free(c);
	st_tls_free(s);

	/* records that carry no data (TLS 1.3 session tickets, one record each) ahead of
	 * a reply: the client reads through them to the reply in one call, whether a
	 * real server's two or a flood of three hundred, and never stalls on them */
	sp.request_client_cert = false;
	{
		size_t flood, k;
		for (flood = 2; flood <= 300; flood += 298) {
			s = st_tls_new(&sp, &se);
			c = st_tls_new(&cp, &ce);
			assert_int_equal(shake(c, s, &ce, &se), 1);
			for (k = 0; k < flood; k++)
				assert_int_equal(
				    gnutls_session_ticket_send(st_tls_gnutls_session(s), 1, 0), 0);
			assert_int_equal(st_tls_write(s, "250 ok\r\n", 8, &se), 0);
			o = st_tls_output(s, &n);
			assert_int_equal(st_tls_input(c, o, n), 0);
			st_tls_output_done(s, n);
			got = st_tls_read(c, buf, sizeof(buf), &ce);
			assert_int_equal(got, 8);
			assert_memory_equal(buf, "250 ok\r\n", 8);
			assert_int_equal(st_tls_read(c, buf, sizeof(buf), &ce), 0);
			st_tls_free(c);
			st_tls_free(s);
		}
	}

	/* bad credentials are refused with the files named */
	sp.key_file = data_file("rsa.key");
	assert_null(st_tls_new(&sp, &se));
	assert_int_equal(se.cls, ST_ERR_INPUT);
	assert_non_null(strstr(se.msg, "cannot use"));
	free((char *)sp.key_file);
	free((char *)cert);
	free((char *)key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_protocols),
	    cmocka_unit_test(test_priority),
	    cmocka_unit_test(test_sessions),
	    cmocka_unit_test(test_big_flight),
	};
	return cmocka_run_group_tests_name("tls", tests, NULL, NULL);
}
