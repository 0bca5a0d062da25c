/* test-revoke.c: unit tests of lib/revoke.c and lib/http.c: CRLs, the entry reason parser, OCSP responses, bounded HTTP */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/ocsp.h>
#include <gnutls/x509.h>

#include "lib/http.h"
#include "lib/revoke.h"
#include "lib/util.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/*
 * ---- expected values of the OpenSSL-made fixtures ----
 *
 * Printed by tests/unit/data/make-crl-fixtures.sh (--print for the
 * committed files), computed by OpenSSL, never by smtptls.
 *
 * openssl crl -in rev-ca.crl -noout -text (revoked entries):
 *     Serial Number: 1002  Revocation Date: Mar  1 00:00:00 2024 GMT  Key Compromise
 *     Serial Number: 1003  Revocation Date: Mar  2 00:00:00 2024 GMT  Superseded
 *     Serial Number: 1004  Revocation Date: Mar  3 00:00:00 2024 GMT  Certificate Hold
 *                          (and a Hold Instruction Code entry extension)
 *     Serial Number: 1005  Revocation Date: Mar  4 00:00:00 2024 GMT  (no entry extensions)
 *     Serial Number: 8A01  Revocation Date: Mar  5 00:00:00 2024 GMT  Cessation Of Operation
 * OCSP responses (openssl ocsp -respin F -resp_text -noverify):
 *     rev-ocsp-bykey.der: good          rev-ocsp-direct.der: good
 *     rev-ocsp-good.der: good           rev-ocsp-noeku.der: good
 *     rev-ocsp-nonce.der: good          rev-ocsp-revoked.der: revoked (keyCompromise (0x1))
 *     rev-ocsp-unknown.der: unknown
 */
#define REV_CRL_THIS_UPDATE  1717200000
#define REV_CRL_NEXT_UPDATE  4070908800
#define REV_AT_1002          1709251200
#define REV_AT_1003          1709337600
#define REV_AT_1004          1709424000
#define REV_AT_1005          1709510400
#define REV_AT_8A01          1709596800
#define REV_OCSP_THIS_UPDATE 1795874817
#define REV_OCSP_NDAYS       27000 /* openssl ocsp -ndays of the fixtures */

/* ---- fixed times of the in-test PKI ---- */
#define T_2023_01_01 1672531200
#define T_2023_06_01 1685577600
#define T_2024_01_01 1704067200
#define T_2024_03_01 1709251200
#define T_2024_03_02 1709337600
#define T_2024_06_01 1717200000
#define T_2024_09_01 1725148800
#define T_2025_06_01 1748736000
#define T_2025_07_01 1751328000
#define T_2030_01_01 1893456000
#define T_2031_01_01 1924992000
#define T_2099_12_31 4102444799
#define NOW          T_2024_09_01

/* tests/unit/data, found from $TOP_SRCDIR, $srcdir or the program's own path */
static char data_dir[PATH_MAX];
/* a scratch directory, removed at the end */
static char tmp_dir[PATH_MAX];

/* ---- the in-test HTTP server ---- */

static int srv_fd = -1;
static pid_t srv_pid = -1;
static unsigned srv_port;

/* Bodies the server serves, made before it forks. */
static gnutls_datum_t body_ca_crl, body_other_crl;

/* ---- the in-test PKI ---- */

struct ent {
	gnutls_x509_privkey_t xkey;
	gnutls_privkey_t key;
	gnutls_x509_crt_t crt;
};

static struct ent ca, other_ca, impostor, leaf_good, leaf_rev, leaf_rev2, leaf_nocdp, leaf_404,
    leaf_garbage, leaf_slow, leaf_othercrl, leaf_https_ocsp;

/* CRL files in tmp_dir */
static char f_ok_pem[PATH_MAX], f_ok_der[PATH_MAX], f_other[PATH_MAX], f_other_pem[PATH_MAX],
    f_badsig[PATH_MAX], f_old[PATH_MAX], f_future[PATH_MAX], f_revgood[PATH_MAX], f_newer[PATH_MAX];

/* ---- helpers ---- */

static void path_in(char *out, size_t size, const char *dir, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);
	assert_true(n > 0 && (size_t)n < size);
}

#define assert_contains(hay, needle) assert_contains_(hay, needle, __FILE__, __LINE__)
static void assert_contains_(const char *hay, const char *needle, const char *file, int line)
{
	if (!strstr(hay, needle)) {
		print_error("'%s' does not contain '%s'\n", hay, needle);
		_fail(file, line);
	}
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static gnutls_x509_crt_t load_crt(const char *name)
{
	char path[PATH_MAX];
	struct st_buf b;
	struct st_error err;
	gnutls_x509_crt_t crt;
	gnutls_datum_t d;

	path_in(path, sizeof(path), data_dir, name);
	st_buf_init(&b, 1 << 20);
	assert_int_equal(st_read_file(path, &b, &err), 0);
	d.data = b.data;
	d.size = (unsigned)b.len;
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
	st_buf_release(&b);
	return crt;
}

static void load_bytes(const char *name, struct st_buf *b)
{
	char path[PATH_MAX];
	struct st_error err;

	path_in(path, sizeof(path), data_dir, name);
	st_buf_init(b, 1 << 20);
	assert_int_equal(st_read_file(path, b, &err), 0);
}

/* An exact-size heap copy, so that valgrind sees a read past the end. */
static unsigned char *dup_exact(const unsigned char *p, size_t n)
{
	unsigned char *q = malloc(n ? n : 1);

	assert_non_null(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

/* ---- making the PKI with GnuTLS ---- */

/* A path on the test server as a URL; a whole URL ("https://...") as it is. */
static void url_for(char *out, size_t size, const char *what)
{
	if (strstr(what, "://"))
		snprintf(out, size, "%s", what);
	else
		snprintf(out, size, "http://127.0.0.1:%u%s", srv_port, what);
}

static void make_key(struct ent *e)
{
	assert_int_equal(gnutls_x509_privkey_init(&e->xkey), 0);
	assert_int_equal(
	    gnutls_x509_privkey_generate(e->xkey, GNUTLS_PK_ECDSA,
	                                 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
	    0);
	assert_int_equal(gnutls_privkey_init(&e->key), 0);
	assert_int_equal(gnutls_privkey_import_x509(e->key, e->xkey, 0), 0);
}

/*
 * A certificate for e (key made here) signed by issuer (NULL: self-signed),
 * valid 2024-01-01 .. 2099-12-31, with an optional CRL distribution point
 * and OCSP responder URL (a path on the test server, or a whole URL).
 */
static void make_cert(struct ent *e, const char *cn, unsigned serial, const struct ent *issuer,
                      bool is_ca, const char *cdp, const char *ocsp)
{
	unsigned char ser[3] = {(unsigned char)(serial >> 16), (unsigned char)(serial >> 8),
	                        (unsigned char)serial};
	unsigned char kid[64];
	size_t kid_size = sizeof(kid);
	gnutls_datum_t der = {NULL, 0};
	char url[256];

	make_key(e);
	assert_int_equal(gnutls_x509_crt_init(&e->crt), 0);
	assert_int_equal(gnutls_x509_crt_set_version(e->crt, 3), 0);
	assert_int_equal(
	    gnutls_x509_crt_set_dn_by_oid(e->crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn)),
	    0);
	assert_int_equal(gnutls_x509_crt_set_serial(e->crt, ser, sizeof(ser)), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(e->crt, T_2024_01_01), 0);
	assert_int_equal(gnutls_x509_crt_set_expiration_time(e->crt, T_2099_12_31), 0);
	assert_int_equal(gnutls_x509_crt_set_key(e->crt, e->xkey), 0);
	assert_int_equal(gnutls_x509_crt_set_basic_constraints(e->crt, is_ca, -1), 0);
	assert_int_equal(gnutls_x509_crt_set_key_usage(
	                     e->crt, is_ca ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN
	                                   : GNUTLS_KEY_DIGITAL_SIGNATURE),
	                 0);
	assert_int_equal(gnutls_x509_crt_get_key_id(e->crt, 0, kid, &kid_size), 0);
	assert_int_equal(gnutls_x509_crt_set_subject_key_id(e->crt, kid, kid_size), 0);
	if (cdp) {
		url_for(url, sizeof(url), cdp);
		assert_int_equal(
		    gnutls_x509_crt_set_crl_dist_points(e->crt, GNUTLS_SAN_URI, url, 0), 0);
	}
	if (ocsp) {
		gnutls_datum_t d;

		url_for(url, sizeof(url), ocsp);
		d.data = (unsigned char *)url;
		d.size = (unsigned)strlen(url);
		assert_int_equal(
		    gnutls_x509_crt_set_authority_info_access(e->crt, GNUTLS_IA_OCSP_URI, &d), 0);
	}
	if (issuer) {
		assert_int_equal(gnutls_x509_crt_set_issuer_dn_by_oid(
		                     e->crt, GNUTLS_OID_X520_COMMON_NAME, 0, "unused", 6),
		                 0);
		assert_int_equal(gnutls_x509_crt_privkey_sign(e->crt, issuer->crt, issuer->key,
		                                              GNUTLS_DIG_SHA256, 0),
		                 0);
	} else {
		assert_int_equal(
		    gnutls_x509_crt_privkey_sign(e->crt, e->crt, e->key, GNUTLS_DIG_SHA256, 0), 0);
	}
	/* as the library always gets certificates: parsed from DER (GnuTLS keeps
	 * the raw names it compares only for parsed certificates) */
	assert_int_equal(gnutls_x509_crt_export2(e->crt, GNUTLS_X509_FMT_DER, &der), 0);
	gnutls_x509_crt_deinit(e->crt);
	assert_int_equal(gnutls_x509_crt_init(&e->crt), 0);
	assert_int_equal(gnutls_x509_crt_import(e->crt, &der, GNUTLS_X509_FMT_DER), 0);
	gnutls_free(der.data);
}

struct revoked {
	const struct ent *cert; /* gnutls_x509_crl_set_crt, or NULL */
	unsigned serial;        /* gnutls_x509_crl_set_crt_serial when cert is NULL */
	time_t when;
};

/* A CRL by issuer, written as DER (and PEM when pem is not NULL); der (may be NULL) gets the bytes. */
static void make_crl(const struct ent *issuer, time_t this_update, time_t next_update,
                     const struct revoked *rv, size_t n_rv, const char *der_path,
                     const char *pem_path, gnutls_datum_t *der)
{
	gnutls_x509_crl_t crl;
	gnutls_datum_t out = {NULL, 0};
	size_t i;

	assert_int_equal(gnutls_x509_crl_init(&crl), 0);
	assert_int_equal(gnutls_x509_crl_set_version(crl, 2), 0);
	assert_int_equal(gnutls_x509_crl_set_this_update(crl, this_update), 0);
	assert_int_equal(gnutls_x509_crl_set_next_update(crl, next_update), 0);
	for (i = 0; i < n_rv; i++) {
		if (rv[i].cert) {
			assert_int_equal(gnutls_x509_crl_set_crt(crl, rv[i].cert->crt, rv[i].when),
			                 0);
		} else {
			unsigned char ser[3] = {(unsigned char)(rv[i].serial >> 16),
			                        (unsigned char)(rv[i].serial >> 8),
			                        (unsigned char)rv[i].serial};
			assert_int_equal(
			    gnutls_x509_crl_set_crt_serial(crl, ser, sizeof(ser), rv[i].when), 0);
		}
	}
	assert_int_equal(
	    gnutls_x509_crl_privkey_sign(crl, issuer->crt, issuer->key, GNUTLS_DIG_SHA256, 0), 0);
	assert_int_equal(gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_DER, &out), 0);
	if (der_path)
		write_file(der_path, out.data, out.size);
	if (pem_path) {
		gnutls_datum_t pem = {NULL, 0};

		assert_int_equal(gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_PEM, &pem), 0);
		write_file(pem_path, pem.data, pem.size);
		gnutls_free(pem.data);
	}
	if (der)
		*der = out;
	else
		gnutls_free(out.data);
	gnutls_x509_crl_deinit(crl);
}

static void free_ent(struct ent *e)
{
	if (e->crt)
		gnutls_x509_crt_deinit(e->crt);
	if (e->key)
		gnutls_privkey_deinit(e->key);
	if (e->xkey)
		gnutls_x509_privkey_deinit(e->xkey);
	memset(e, 0, sizeof(*e));
}

/* ---- the server (forked child; plain sockets; 127.0.0.1 only) ---- */

static int srv_send(int c, const void *p, size_t n)
{
	const char *q = p;

	while (n > 0) {
		ssize_t w = send(c, q, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		q += w;
		n -= (size_t)w;
	}
	return 0;
}

static int srv_reply(int c, int status, const char *extra, const void *body, size_t n)
{
	char head[512];

	snprintf(head, sizeof(head),
	         "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
	         status == 200 ? "OK" : "Not Found", n, extra ? extra : "");
	if (srv_send(c, head, strlen(head)))
		return -1;
	return srv_send(c, body, n);
}

/* Serve one connection: read the request (capped), answer by path. */
static void srv_one(int c, unsigned *n_crl)
{
	char req[8192], path[256] = "", ctype[128] = "", ua[128] = "", out[512];
	size_t len = 0;
	char *end = NULL, *h;
	long clen = 0;
	struct timeval tv = {5, 0};

	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (len < sizeof(req) - 1) {
		ssize_t r = recv(c, req + len, sizeof(req) - 1 - len, 0);
		if (r <= 0)
			return;
		len += (size_t)r;
		req[len] = '\0';
		end = strstr(req, "\r\n\r\n");
		if (end)
			break;
	}
	if (!end || sscanf(req, "%*s %255s", path) != 1)
		return;
	if ((h = strcasestr(req, "\r\nContent-Length:")))
		clen = strtol(h + 17, NULL, 10);
	if ((h = strcasestr(req, "\r\nUser-Agent:"))) {
		h += 13;
		while (*h == ' ')
			h++;
		snprintf(ua, sizeof(ua), "%.*s", (int)strcspn(h, "\r"), h);
	}
	if ((h = strcasestr(req, "\r\nContent-Type:"))) {
		h += 15;
		while (*h == ' ')
			h++;
		snprintf(ctype, sizeof(ctype), "%.*s", (int)strcspn(h, "\r"), h);
	}
	/* read the rest of a POST body */
	while (clen > 0 && (long)(len - (size_t)(end + 4 - req)) < clen && len < sizeof(req) - 1) {
		ssize_t r = recv(c, req + len, sizeof(req) - 1 - len, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
	}

	if (strcmp(path, "/fixed") == 0) {
		srv_reply(c, 200, NULL, "hello, revocation\n", 18);
	} else if (strcmp(path, "/ca.crl") == 0) {
		(*n_crl)++;
		srv_reply(c, 200, NULL, body_ca_crl.data, body_ca_crl.size);
	} else if (strcmp(path, "/other.crl") == 0) {
		srv_reply(c, 200, NULL, body_other_crl.data, body_other_crl.size);
	} else if (strcmp(path, "/stats") == 0) {
		snprintf(out, sizeof(out), "%u", *n_crl);
		srv_reply(c, 200, NULL, out, strlen(out));
	} else if (strcmp(path, "/garbage") == 0) {
		srv_reply(c, 200, NULL, "this is not DER\n", 16);
	} else if (strcmp(path, "/post") == 0) {
		snprintf(out, sizeof(out), "ct=%s;len=%ld;ua=%s", ctype, clen, ua);
		srv_reply(c, 200, NULL, out, strlen(out));
	} else if (strcmp(path, "/slow") == 0) {
		/* one byte every 50 ms, until the client gives up */
		const char *head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
		struct timespec ts = {0, 50 * 1000 * 1000};
		int i;

		if (srv_send(c, head, strlen(head)))
			return;
		for (i = 0; i < 20 * 600; i++) {
			if (srv_send(c, "x", 1))
				return;
			nanosleep(&ts, NULL);
		}
	} else if (strcmp(path, "/big") == 0 || strcmp(path, "/big-cl") == 0) {
		/* 4 MiB, with or without a Content-Length up front */
		static char chunk[65536];
		const char *head = strcmp(path, "/big") == 0
		                       ? "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
		                       : "HTTP/1.1 200 OK\r\nContent-Length: 4194304\r\n\r\n";
		int i;

		memset(chunk, 'x', sizeof(chunk));
		if (srv_send(c, head, strlen(head)))
			return;
		for (i = 0; i < 64; i++)
			if (srv_send(c, chunk, sizeof(chunk)))
				return;
	} else {
		srv_reply(c, 404, NULL, "not found\n", 10);
	}
}

static void srv_loop(void)
{
	unsigned n_crl = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int c = accept(srv_fd, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		srv_one(c, &n_crl);
		shutdown(c, SHUT_WR);
		close(c);
	}
}

static void srv_bind(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1;

	srv_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(srv_fd >= 0);
	setsockopt(srv_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = 0;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(srv_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(srv_fd, 16), 0);
	assert_int_equal(getsockname(srv_fd, (struct sockaddr *)&sa, &sl), 0);
	srv_port = ntohs(sa.sin_port);
}

static void srv_url(char *out, size_t size, const char *path)
{
	snprintf(out, size, "http://127.0.0.1:%u%s", srv_port, path);
}

/* How many times the server has served /ca.crl. */
static unsigned srv_crl_count(void)
{
	struct st_buf b;
	struct st_error err;
	char url[128];
	unsigned n;

	srv_url(url, sizeof(url), "/stats");
	st_buf_init(&b, 0);
	assert_int_equal(st_http_get(url, 64, 5000, &b, &err), 0);
	n = (unsigned)strtoul(st_buf_str(&b), NULL, 10);
	st_buf_release(&b);
	return n;
}

/* ---- set-up and tear-down ---- */

static int setup_all(void **state)
{
	struct revoked rv_ok[2], rv_other[1], rv_good[1];
	char p[PATH_MAX];

	(void)state;
	snprintf(tmp_dir, sizeof(tmp_dir), "%s/smtptls-test-revoke.XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(tmp_dir));
	srv_bind();

	make_cert(&ca, "Test Root", 1, NULL, true, NULL, NULL);
	make_cert(&other_ca, "Other CA", 2, NULL, true, NULL, NULL);
	/* same name as the root, another key: its CRLs claim the root as issuer */
	make_cert(&impostor, "Test Root", 3, NULL, true, NULL, NULL);
	make_cert(&leaf_good, "good.test.example", 0x10, &ca, false, "/ca.crl", "/garbage");
	make_cert(&leaf_rev, "revoked.test.example", 0x11, &ca, false, "/ca.crl", "/404");
	make_cert(&leaf_rev2, "revoked2.test.example", 0x12, &ca, false, "/ca.crl", "/slow");
	make_cert(&leaf_nocdp, "nocdp.test.example", 0x13, &ca, false, NULL, NULL);
	make_cert(&leaf_404, "404.test.example", 0x14, &ca, false, "/404.crl", NULL);
	make_cert(&leaf_garbage, "garbage.test.example", 0x15, &ca, false, "/garbage", NULL);
	make_cert(&leaf_slow, "slow.test.example", 0x16, &ca, false, "/slow", NULL);
	make_cert(&leaf_othercrl, "othercrl.test.example", 0x17, &ca, false, "/other.crl", NULL);
	make_cert(&leaf_https_ocsp, "https.test.example", 0x18, &ca, false,
	          "ldap://ldap.invalid/cn=crl", "https://127.0.0.1/ocsp");

	/* 0x11 by serial, 0x12 by certificate */
	rv_ok[0] = (struct revoked){NULL, 0x11, T_2024_03_01};
	rv_ok[1] = (struct revoked){&leaf_rev2, 0, T_2024_03_02};
	path_in(f_ok_pem, sizeof(f_ok_pem), tmp_dir, "ok.pem");
	path_in(f_ok_der, sizeof(f_ok_der), tmp_dir, "ok.der");
	make_crl(&ca, T_2024_06_01, T_2025_06_01, rv_ok, 2, f_ok_der, f_ok_pem, &body_ca_crl);
	rv_other[0] = (struct revoked){NULL, 0x11, T_2024_03_01};
	path_in(f_other, sizeof(f_other), tmp_dir, "other.der");
	path_in(f_other_pem, sizeof(f_other_pem), tmp_dir, "other.pem");
	make_crl(&other_ca, T_2024_06_01, T_2025_06_01, rv_other, 1, f_other, f_other_pem,
	         &body_other_crl);
	path_in(f_badsig, sizeof(f_badsig), tmp_dir, "badsig.der");
	make_crl(&impostor, T_2024_06_01, T_2025_06_01, rv_other, 1, f_badsig, NULL, NULL);
	path_in(f_old, sizeof(f_old), tmp_dir, "old.der");
	make_crl(&ca, T_2023_01_01, T_2023_06_01, rv_other, 1, f_old, NULL, NULL);
	path_in(f_future, sizeof(f_future), tmp_dir, "future.der");
	make_crl(&ca, T_2030_01_01, T_2031_01_01, rv_other, 1, f_future, NULL, NULL);
	/* an older CRL that lists the good leaf (a released hold), and a newer one that does not */
	rv_good[0] = (struct revoked){&leaf_good, 0, T_2024_03_01};
	path_in(f_revgood, sizeof(f_revgood), tmp_dir, "revgood.der");
	make_crl(&ca, T_2024_03_02, T_2099_12_31, rv_good, 1, f_revgood, NULL, NULL);
	path_in(f_newer, sizeof(f_newer), tmp_dir, "newer.der");
	make_crl(&ca, T_2024_06_01, T_2099_12_31, rv_other, 1, f_newer, NULL, NULL);
	(void)p;

	srv_pid = fork();
	assert_true(srv_pid >= 0);
	if (srv_pid == 0)
		srv_loop();
	close(srv_fd);
	srv_fd = -1;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown_all(void **state)
{
	(void)state;
	if (srv_pid > 0) {
		kill(srv_pid, SIGTERM);
		waitpid(srv_pid, NULL, 0);
	}
	free_ent(&ca);
	free_ent(&other_ca);
	free_ent(&impostor);
	free_ent(&leaf_good);
	free_ent(&leaf_rev);
	free_ent(&leaf_rev2);
	free_ent(&leaf_nocdp);
	free_ent(&leaf_404);
	free_ent(&leaf_garbage);
	free_ent(&leaf_slow);
	free_ent(&leaf_othercrl);
	free_ent(&leaf_https_ocsp);
	gnutls_free(body_ca_crl.data);
	gnutls_free(body_other_crl.data);
	if (tmp_dir[0] && !getenv("SMTPTLS_KEEP_TEST_DIR"))
		nftw(tmp_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* ---- names ---- */

static void test_names(void **state)
{
	static const char *const reasons[] = {
	    "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
	    "superseded",    "cessationOfOperation", "certificateHold", "unknown",
	    "removeFromCRL", "privilegeWithdrawn",   "aACompromise",
	};
	int i;

	(void)state;
	for (i = 0; i < (int)N_ELEMS(reasons); i++)
		assert_string_equal(st_rev_reason_name(i), reasons[i]);
	assert_string_equal(st_rev_reason_name(-1), "unspecified");
	assert_string_equal(st_rev_reason_name(11), "unknown");
	assert_string_equal(st_rev_reason_name(-7), "unknown");
	assert_string_equal(st_rev_status_name(ST_REV_NOT_CHECKED), "not_checked");
	assert_string_equal(st_rev_status_name(ST_REV_GOOD), "good");
	assert_string_equal(st_rev_status_name(ST_REV_REVOKED), "revoked");
	assert_string_equal(st_rev_status_name(ST_REV_UNKNOWN), "unknown");
	assert_string_equal(st_rev_status_name(ST_REV_UNAVAILABLE), "unavailable");
}

/* ---- CRLs from files, in-test PKI ---- */

static struct st_crl_set *set_of(const char *const *files, size_t n)
{
	struct st_crl_set *s = st_crl_set_new();
	struct st_error err;
	size_t i;

	assert_non_null(s);
	for (i = 0; i < n; i++) {
		st_error_clear(&err);
		if (st_crl_set_add_file(s, files[i], &err) != 0)
			fail_msg("%s", err.msg);
	}
	return s;
}

static void check_one(const char *file, const struct ent *leaf, time_t now,
                      struct st_rev_result *res)
{
	const char *files[] = {file};
	struct st_crl_set *s = set_of(files, 1);

	st_crl_check(s, leaf->crt, ca.crt, now, res);
	st_crl_set_free(s);
}

static void test_crl_good(void **state)
{
	struct st_rev_result res;
	char want[PATH_MAX + 16];

	(void)state;
	check_one(f_ok_pem, &leaf_good, NOW, &res);
	assert_int_equal(res.status, ST_REV_GOOD);
	assert_string_equal(res.source, "crl");
	assert_int_equal(res.reason, -1);
	snprintf(want, sizeof(want), "CRL from %s", f_ok_pem);
	assert_string_equal(res.detail, want);
	/* the same from DER */
	check_one(f_ok_der, &leaf_good, NOW, &res);
	assert_int_equal(res.status, ST_REV_GOOD);
}

static void test_crl_revoked(void **state)
{
	struct st_rev_result res;

	(void)state;
	/* by serial, as gnutls_x509_crl_set_crt_serial wrote it: no reason code */
	check_one(f_ok_pem, &leaf_rev, NOW, &res);
	assert_int_equal(res.status, ST_REV_REVOKED);
	assert_string_equal(res.source, "crl");
	assert_int_equal(res.revoked_at, T_2024_03_01);
	assert_int_equal(res.reason, -1);
	assert_contains(res.detail, f_ok_pem);
	/* by certificate (gnutls_x509_crl_set_crt), from DER */
	check_one(f_ok_der, &leaf_rev2, NOW, &res);
	assert_int_equal(res.status, ST_REV_REVOKED);
	assert_int_equal(res.revoked_at, T_2024_03_02);
	assert_int_equal(res.reason, -1);
	/* exactly at thisUpdate and at nextUpdate the CRL is current */
	check_one(f_ok_der, &leaf_rev, T_2024_06_01, &res);
	assert_int_equal(res.status, ST_REV_REVOKED);
	check_one(f_ok_der, &leaf_rev, T_2025_06_01, &res);
	assert_int_equal(res.status, ST_REV_REVOKED);
}

static void test_crl_other_issuer(void **state)
{
	struct st_rev_result res;

	(void)state;
	check_one(f_other, &leaf_rev, NOW, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_string_equal(res.source, "crl");
	assert_string_equal(res.detail, "no CRL from 'CN=Test Root'");
	/* and the other CA's CRL does not answer for its own name's certificates either */
	{
		const char *files[] = {f_other};
		struct st_crl_set *s = set_of(files, 1);

		st_crl_check(s, leaf_rev.crt, other_ca.crt, NOW, &res);
		assert_int_equal(res.status, ST_REV_UNAVAILABLE);
		assert_contains(res.detail, "did not issue");
		st_crl_set_free(s);
	}
}

static void test_crl_bad_signature(void **state)
{
	struct st_rev_result res;
	char want[PATH_MAX + 64];

	(void)state;
	check_one(f_badsig, &leaf_rev, NOW, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	snprintf(want, sizeof(want), "CRL from %s: signature does not verify", f_badsig);
	assert_string_equal(res.detail, want);
	/* a good CRL beside the forged one answers */
	{
		const char *files[] = {f_badsig, f_ok_der};
		struct st_crl_set *s = set_of(files, 2);

		st_crl_check(s, leaf_rev.crt, ca.crt, NOW, &res);
		assert_int_equal(res.status, ST_REV_REVOKED);
		assert_contains(res.detail, f_ok_der);
		st_crl_set_free(s);
	}
}

static void test_crl_expired(void **state)
{
	struct st_rev_result res;
	char want[PATH_MAX + 64];

	(void)state;
	check_one(f_old, &leaf_rev, NOW, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	snprintf(want, sizeof(want), "CRL from %s expired at 2023-06-01T00:00:00Z", f_old);
	assert_string_equal(res.detail, want);
	/* the in-date CRL one second after its nextUpdate */
	check_one(f_ok_der, &leaf_rev, T_2025_06_01 + 1, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_contains(res.detail, "expired at 2025-06-01T00:00:00Z");
}

static void test_crl_not_yet_valid(void **state)
{
	struct st_rev_result res;
	char want[PATH_MAX + 64];

	(void)state;
	check_one(f_future, &leaf_rev, NOW, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	snprintf(want, sizeof(want), "CRL from %s is not valid before 2030-01-01T00:00:00Z",
	         f_future);
	assert_string_equal(res.detail, want);
	check_one(f_ok_der, &leaf_rev, T_2024_06_01 - 1, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_contains(res.detail, "is not valid before 2024-06-01T00:00:00Z");
}

static void test_crl_latest_answers(void **state)
{
	const char *files[] = {f_revgood, f_newer};
	struct st_crl_set *s = set_of(files, 2);
	struct st_rev_result res;

	(void)state;
	/* both current: the newer one, which no longer lists the good leaf, answers */
	st_crl_check(s, leaf_good.crt, ca.crt, NOW, &res);
	assert_int_equal(res.status, ST_REV_GOOD);
	assert_contains(res.detail, f_newer);
	/* before the newer one was issued, the older one answers */
	st_crl_check(s, leaf_good.crt, ca.crt, T_2024_03_02 + 10, &res);
	assert_int_equal(res.status, ST_REV_REVOKED);
	assert_int_equal(res.revoked_at, T_2024_03_01);
	st_crl_set_free(s);
}

static void test_crl_malformed_files(void **state)
{
	static const struct {
		const char *name;
		const char *content; /* NULL: see below */
		const char *why;
	} cases[] = {
	    {"empty.crl", "", "empty, no CRL found"},
	    {"garbage.crl", "this is not a CRL at all\n", "not a DER or PEM CRL"},
	    {"cert.pem", NULL, "no X509 CRL block found"},
	    {"truncated.pem", NULL, "malformed PEM CRL"},
	    {"truncated.der", NULL, "not a DER or PEM CRL"},
	    {"badb64.pem", "-----BEGIN X509 CRL-----\n!!!!\n-----END X509 CRL-----\n",
	     "malformed PEM CRL"},
	};
	struct st_buf pem, der;
	struct st_error err;
	char path[PATH_MAX], shown[PATH_MAX + 64];
	size_t i;

	(void)state;
	st_buf_init(&pem, 1 << 20);
	st_buf_init(&der, 1 << 20);
	assert_int_equal(st_read_file(f_ok_pem, &pem, &err), 0);
	assert_int_equal(st_read_file(f_ok_der, &der, &err), 0);
	for (i = 0; i < N_ELEMS(cases); i++) {
		struct st_crl_set *s = st_crl_set_new();

		path_in(path, sizeof(path), tmp_dir, cases[i].name);
		if (cases[i].content) {
			write_file(path, cases[i].content, strlen(cases[i].content));
		} else if (strcmp(cases[i].name, "cert.pem") == 0) {
			char src[PATH_MAX];
			struct st_buf b;

			path_in(src, sizeof(src), data_dir, "rev-good.pem");
			st_buf_init(&b, 1 << 20);
			assert_int_equal(st_read_file(src, &b, &err), 0);
			write_file(path, b.data, b.len);
			st_buf_release(&b);
		} else if (strcmp(cases[i].name, "truncated.pem") == 0) {
			/* the header and half the base64, then an end line */
			const char *endl = "\n-----END X509 CRL-----\n";
			struct st_buf b;

			st_buf_init(&b, 1 << 20);
			assert_int_equal(st_buf_add(&b, pem.data, pem.len / 2), 0);
			assert_int_equal(st_buf_add(&b, endl, strlen(endl)), 0);
			write_file(path, b.data, b.len);
			st_buf_release(&b);
		} else {
			write_file(path, der.data, der.len - 10);
		}
		st_error_clear(&err);
		assert_true(st_crl_set_add_file(s, path, &err) < 0);
		assert_int_equal(err.cls, ST_ERR_INPUT);
		snprintf(shown, sizeof(shown), "cannot read CRL '%s': ", path);
		assert_contains(err.msg, shown);
		assert_contains(err.msg, cases[i].why);
		st_crl_set_free(s);
	}
	/* a file that is not there, and a directory */
	{
		struct st_crl_set *s = st_crl_set_new();

		path_in(path, sizeof(path), tmp_dir, "missing.crl");
		assert_true(st_crl_set_add_file(s, path, &err) < 0);
		assert_int_equal(err.cls, ST_ERR_INPUT);
		assert_contains(err.msg, path);
		assert_contains(err.msg, "No such file");
		assert_true(st_crl_set_add_file(s, tmp_dir, &err) < 0);
		assert_contains(err.msg, "is a directory");
		st_crl_set_free(s);
	}
	st_buf_release(&pem);
	st_buf_release(&der);
}

/* A PEM file with several CRL blocks, and text around them: every CRL is read. */
static void test_crl_pem_bundle(void **state)
{
	struct st_buf a, b, all;
	struct st_error err;
	struct st_rev_result res;
	char path[PATH_MAX];
	const char *files[1];
	struct st_crl_set *s;

	(void)state;
	st_buf_init(&a, 1 << 20);
	st_buf_init(&b, 1 << 20);
	st_buf_init(&all, 1 << 20);
	assert_int_equal(st_read_file(f_other_pem, &a, &err), 0);
	assert_int_equal(st_read_file(f_ok_pem, &b, &err), 0);
	assert_int_equal(st_buf_addf(&all, "the other CA's CRL:\n"), 0);
	assert_int_equal(st_buf_add(&all, a.data, a.len), 0);
	assert_int_equal(st_buf_addf(&all, "and the root's:\n"), 0);
	assert_int_equal(st_buf_add(&all, b.data, b.len), 0);
	path_in(path, sizeof(path), tmp_dir, "bundle.pem");
	write_file(path, all.data, all.len);
	files[0] = path;
	s = set_of(files, 1);
	st_crl_check(s, leaf_rev.crt, ca.crt, NOW, &res);
	assert_int_equal(res.status, ST_REV_REVOKED);
	assert_contains(res.detail, path);
	st_crl_check(s, leaf_good.crt, ca.crt, NOW, &res);
	assert_int_equal(res.status, ST_REV_GOOD);
	st_crl_set_free(s);
	st_buf_release(&a);
	st_buf_release(&b);
	st_buf_release(&all);
}

static void test_crl_no_crl(void **state)
{
	struct st_crl_set *s = st_crl_set_new();
	struct st_rev_result res;

	(void)state;
	st_crl_check(s, leaf_good.crt, ca.crt, NOW, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_string_equal(res.source, "crl");
	assert_string_equal(res.detail, "no CRL from 'CN=Test Root'");
	st_crl_set_free(s);
	st_crl_set_free(NULL);
}

/* An entry whose serial is longer than any certificate's: an answer, not a hang. */
static void test_crl_long_serial(void **state)
{
	unsigned char big[300];
	gnutls_x509_crl_t crl;
	gnutls_datum_t der = {NULL, 0};
	struct st_rev_result res;
	char path[PATH_MAX];
	int rc;

	(void)state;
	memset(big, 0x41, sizeof(big));
	assert_int_equal(gnutls_x509_crl_init(&crl), 0);
	assert_int_equal(gnutls_x509_crl_set_version(crl, 2), 0);
	assert_int_equal(gnutls_x509_crl_set_this_update(crl, T_2024_06_01), 0);
	assert_int_equal(gnutls_x509_crl_set_next_update(crl, T_2025_06_01), 0);
	rc = gnutls_x509_crl_set_crt_serial(crl, big, sizeof(big), T_2024_03_01);
	if (rc < 0) {
		gnutls_x509_crl_deinit(crl);
		skip(); /* this GnuTLS will not write it */
	}
	assert_int_equal(gnutls_x509_crl_privkey_sign(crl, ca.crt, ca.key, GNUTLS_DIG_SHA256, 0),
	                 0);
	assert_int_equal(gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_DER, &der), 0);
	gnutls_x509_crl_deinit(crl);
	path_in(path, sizeof(path), tmp_dir, "longserial.der");
	write_file(path, der.data, der.size);
	gnutls_free(der.data);
	check_one(path, &leaf_rev, NOW, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_contains(res.detail, "cannot read its entries");
}

/* ---- the OpenSSL-made CRL: reason codes ---- */

static void test_crl_openssl_reasons(void **state)
{
	static const struct {
		const char *cert;
		enum st_rev_status status;
		int reason;
		time_t at;
	} cases[] = {
	    {"rev-good.pem", ST_REV_GOOD, -1, 0},
	    {"rev-key.pem", ST_REV_REVOKED, 1, REV_AT_1002},
	    {"rev-sup.pem", ST_REV_REVOKED, 4, REV_AT_1003},
	    {"rev-hold.pem", ST_REV_REVOKED, 6, REV_AT_1004},
	    {"rev-none.pem", ST_REV_REVOKED, -1, REV_AT_1005},
	    {"rev-high.pem", ST_REV_REVOKED, 5, REV_AT_8A01},
	    {"rev-unknown.pem", ST_REV_GOOD, -1, 0},
	};
	const char *crls[] = {"rev-ca.crl", "rev-ca.crl.der"};
	gnutls_x509_crt_t issuer = load_crt("rev-ca.pem");
	char path[PATH_MAX];
	size_t i, j;

	(void)state;
	for (j = 0; j < N_ELEMS(crls); j++) {
		const char *files[1];
		struct st_crl_set *s;

		path_in(path, sizeof(path), data_dir, crls[j]);
		files[0] = path;
		s = set_of(files, 1);
		for (i = 0; i < N_ELEMS(cases); i++) {
			gnutls_x509_crt_t crt = load_crt(cases[i].cert);
			struct st_rev_result res;

			st_crl_check(s, crt, issuer, REV_CRL_THIS_UPDATE + 86400, &res);
			if (res.status != cases[i].status || res.reason != cases[i].reason)
				fail_msg("%s in %s: status %s reason %d (%s)", cases[i].cert,
				         crls[j], st_rev_status_name(res.status), res.reason,
				         res.detail);
			if (res.status == ST_REV_REVOKED)
				assert_int_equal(res.revoked_at, cases[i].at);
			gnutls_x509_crt_deinit(crt);
		}
		/* stale after the pinned nextUpdate */
		{
			gnutls_x509_crt_t crt = load_crt("rev-key.pem");
			struct st_rev_result res;

			st_crl_check(s, crt, issuer, REV_CRL_NEXT_UPDATE + 1, &res);
			assert_int_equal(res.status, ST_REV_UNAVAILABLE);
			assert_contains(res.detail, "expired at 2099-01-01T00:00:00Z");
			gnutls_x509_crt_deinit(crt);
		}
		st_crl_set_free(s);
	}
	gnutls_x509_crt_deinit(issuer);
}

/* ---- the entry reason parser on hostile input ---- */

static const unsigned char serial_1002[] = {0x10, 0x02};
static const unsigned char serial_8a01[] = {0x00, 0x8a, 0x01};

static void test_reason_parser_fixture(void **state)
{
	struct st_buf der;
	int reason = 99;

	(void)state;
	load_bytes("rev-ca.crl.der", &der);
	assert_int_equal(st_crl_entry_reason(der.data, der.len, serial_1002, 2, &reason), 0);
	assert_int_equal(reason, 1);
	/* with and without the INTEGER's leading zero */
	assert_int_equal(st_crl_entry_reason(der.data, der.len, serial_8a01, 3, &reason), 0);
	assert_int_equal(reason, 5);
	assert_int_equal(st_crl_entry_reason(der.data, der.len, serial_8a01 + 1, 2, &reason), 0);
	assert_int_equal(reason, 5);
	/* no such entry */
	assert_int_equal(
	    st_crl_entry_reason(der.data, der.len, (const unsigned char *)"\x77", 1, &reason), 1);
	assert_int_equal(reason, -1);
	assert_int_equal(st_crl_entry_reason(NULL, 0, serial_1002, 2, &reason), ST_E_INVALID);
	assert_int_equal(st_crl_entry_reason(der.data, der.len, serial_1002, 0, &reason),
	                 ST_E_INVALID);
	st_buf_release(&der);
}

static void test_reason_parser_truncated(void **state)
{
	struct st_buf der;
	size_t n;

	(void)state;
	load_bytes("rev-ca.crl.der", &der);
	/* every prefix: the outer SEQUENCE's length runs past the end, always */
	for (n = 0; n < der.len; n++) {
		unsigned char *p = dup_exact(der.data, n);
		int reason = 99, rc;

		rc = st_crl_entry_reason(p, n, serial_1002, 2, &reason);
		if (rc != ST_E_PARSE)
			fail_msg("prefix of %zu bytes: %d", n, rc);
		free(p);
	}
	st_buf_release(&der);
}

static void test_reason_parser_garbage(void **state)
{
	struct st_buf der;
	uint32_t x = 2463534242u; /* xorshift32: reproducible */
	size_t i, k;

	(void)state;
	load_bytes("rev-ca.crl.der", &der);
	/* one to four bytes changed at random places, many times */
	for (i = 0; i < 20000; i++) {
		unsigned char *p = dup_exact(der.data, der.len);
		int reason = 99, rc;

		for (k = 0; k <= i % 4; k++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			p[x % der.len] = (unsigned char)(x >> 8);
		}
		rc = st_crl_entry_reason(p, der.len, serial_1002, 2, &reason);
		assert_true(rc == 0 || rc == 1 || rc == ST_E_PARSE);
		if (rc == 0)
			assert_true(reason >= -1 && reason <= 10 && reason != 7);
		free(p);
	}
	/* random bytes altogether */
	for (i = 0; i < 2000; i++) {
		size_t n = i % 200;
		unsigned char *p = malloc(n ? n : 1);
		int reason;

		assert_non_null(p);
		for (k = 0; k < n; k++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			p[k] = (unsigned char)x;
		}
		if (n > 0)
			p[0] = 0x30; /* get past the first check now and then */
		(void)st_crl_entry_reason(p, n, serial_1002, 2, &reason);
		free(p);
	}
	st_buf_release(&der);
}

/* Hand-made DER around one entry: reason encodings a parser must refuse or accept. */
static void test_reason_parser_handmade(void **state)
{
	/*
	 * CertificateList { tbsCertList { version, signature (empty), issuer
	 * (empty), thisUpdate (empty), revokedCertificates { entries } } }:
	 * only what the parser steps over. Made with a few lines of Python
	 * (tlv(tag, content) = bytes([tag, len(content)]) + content).
	 */
	static const struct {
		const char *what;
		unsigned char der[80];
		size_t len;
		int rc, reason;
	} cases[] = {
	    {"reason without a value",
	     {0x30, 0x1d, 0x30, 0x1b, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00,
	      0x17, 0x00, 0x30, 0x10, 0x30, 0x0e, 0x02, 0x01, 0x05, 0x17, 0x00,
	      0x30, 0x07, 0x30, 0x05, 0x06, 0x03, 0x55, 0x1d, 0x15},
	     31,
	     ST_E_PARSE,
	     -1},
	    {"keyCompromise, critical",
	     {0x30, 0x25, 0x30, 0x23, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x17, 0x00,
	      0x30, 0x18, 0x30, 0x16, 0x02, 0x01, 0x05, 0x17, 0x00, 0x30, 0x0f, 0x30, 0x0d,
	      0x06, 0x03, 0x55, 0x1d, 0x15, 0x01, 0x01, 0xff, 0x04, 0x03, 0x0a, 0x01, 0x01},
	     39,
	     0,
	     1},
	    {"after another extension",
	     {0x30, 0x34, 0x30, 0x32, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x17, 0x00, 0x30,
	      0x27, 0x30, 0x25, 0x02, 0x01, 0x05, 0x17, 0x00, 0x30, 0x1e, 0x30, 0x10, 0x06, 0x03,
	      0x55, 0x1d, 0x17, 0x04, 0x09, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x02, 0x02,
	      0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, 0x06},
	     54,
	     0,
	     6},
	    {"second entry",
	     {0x30, 0x37, 0x30, 0x35, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x17,
	      0x00, 0x30, 0x2a, 0x30, 0x13, 0x02, 0x01, 0x04, 0x17, 0x00, 0x30, 0x0c,
	      0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, 0x02,
	      0x30, 0x13, 0x02, 0x01, 0x05, 0x17, 0x00, 0x30, 0x0c, 0x30, 0x0a, 0x06,
	      0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, 0x03},
	     57,
	     0,
	     3},
	    {"entry without revocationDate",
	     {0x30, 0x12, 0x30, 0x10, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30,
	      0x00, 0x17, 0x00, 0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x05},
	     20,
	     ST_E_PARSE,
	     -1},
	    {"entry without extensions",
	     {0x30, 0x14, 0x30, 0x12, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00,
	      0x17, 0x00, 0x30, 0x07, 0x30, 0x05, 0x02, 0x01, 0x05, 0x17, 0x00},
	     22,
	     0,
	     -1},
	    {"empty extensions",
	     {0x30, 0x16, 0x30, 0x14, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x17,
	      0x00, 0x30, 0x09, 0x30, 0x07, 0x02, 0x01, 0x05, 0x17, 0x00, 0x30, 0x00},
	     24,
	     0,
	     -1},
	    {"reason 7 (unused)",
	     {0x30, 0x22, 0x30, 0x20, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x17,
	      0x00, 0x30, 0x15, 0x30, 0x13, 0x02, 0x01, 0x05, 0x17, 0x00, 0x30, 0x0c,
	      0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, 0x07},
	     36,
	     ST_E_PARSE,
	     -1},
	    {"reason 11",
	     {0x30, 0x22, 0x30, 0x20, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x17,
	      0x00, 0x30, 0x15, 0x30, 0x13, 0x02, 0x01, 0x05, 0x17, 0x00, 0x30, 0x0c,
	      0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, 0x0b},
	     36,
	     ST_E_PARSE,
	     -1},
	    {"reason of two bytes",
	     {0x30, 0x23, 0x30, 0x21, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x17, 0x00,
	      0x30, 0x16, 0x30, 0x14, 0x02, 0x01, 0x05, 0x17, 0x00, 0x30, 0x0d, 0x30, 0x0b,
	      0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x04, 0x0a, 0x02, 0x00, 0x01},
	     37,
	     ST_E_PARSE,
	     -1},
	    {"empty reason",
	     {0x30, 0x21, 0x30, 0x1f, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x17,
	      0x00, 0x30, 0x14, 0x30, 0x12, 0x02, 0x01, 0x05, 0x17, 0x00, 0x30, 0x0b,
	      0x30, 0x09, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x02, 0x0a, 0x00},
	     35,
	     ST_E_PARSE,
	     -1},
	    {"reason is an INTEGER",
	     {0x30, 0x22, 0x30, 0x20, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x17,
	      0x00, 0x30, 0x15, 0x30, 0x13, 0x02, 0x01, 0x05, 0x17, 0x00, 0x30, 0x0c,
	      0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x02, 0x01, 0x01},
	     36,
	     ST_E_PARSE,
	     -1},
	    {"no revokedCertificates",
	     {0x30, 0x0b, 0x30, 0x09, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x17, 0x00},
	     13,
	     1,
	     -1},
	    {"other serial",
	     {0x30, 0x14, 0x30, 0x12, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00,
	      0x17, 0x00, 0x30, 0x07, 0x30, 0x05, 0x02, 0x01, 0x06, 0x17, 0x00},
	     22,
	     1,
	     -1},
	    {"serial with a leading zero",
	     {0x30, 0x23, 0x30, 0x21, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x17, 0x00,
	      0x30, 0x16, 0x30, 0x14, 0x02, 0x02, 0x00, 0x05, 0x17, 0x00, 0x30, 0x0c, 0x30,
	      0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, 0x04},
	     37,
	     0,
	     4},
	    {"empty serial",
	     {0x30, 0x13, 0x30, 0x11, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00,
	      0x17, 0x00, 0x30, 0x06, 0x30, 0x04, 0x02, 0x00, 0x17, 0x00},
	     21,
	     ST_E_PARSE,
	     -1},
	    {"octet string longer than the extension",
	     {0x30, 0x22, 0x30, 0x20, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x17,
	      0x00, 0x30, 0x15, 0x30, 0x13, 0x02, 0x01, 0x05, 0x17, 0x00, 0x30, 0x0c,
	      0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x09, 0x0a, 0x01, 0x01},
	     36,
	     ST_E_PARSE,
	     -1},
	    {"revocationDate past the end",
	     {0x30, 0x14, 0x30, 0x12, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00,
	      0x17, 0x00, 0x30, 0x07, 0x30, 0x05, 0x02, 0x01, 0x05, 0x17, 0x05},
	     22,
	     ST_E_PARSE,
	     -1},
	    {"huge long-form length",
	     {0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00},
	     8,
	     ST_E_PARSE,
	     -1},
	    {"indefinite length", {0x30, 0x80, 0x30, 0x00, 0x00, 0x00}, 6, ST_E_PARSE, -1},
	    {"five length bytes", {0x30, 0x85, 0x00, 0x00, 0x00, 0x00, 0x02}, 7, ST_E_PARSE, -1},
	    {"high tag number", {0x3f, 0x81, 0x01, 0x00}, 4, ST_E_PARSE, -1},
	    {"not a SEQUENCE", {0x31, 0x02, 0x30, 0x00}, 4, ST_E_PARSE, -1},
	};
	const unsigned char serial[] = {0x05};
	size_t i;

	(void)state;
	for (i = 0; i < N_ELEMS(cases); i++) {
		unsigned char *p = dup_exact(cases[i].der, cases[i].len);
		int reason = 99, rc;

		rc = st_crl_entry_reason(p, cases[i].len, serial, 1, &reason);
		if (rc != cases[i].rc || reason != cases[i].reason)
			fail_msg("%s: rc %d reason %d, want rc %d reason %d", cases[i].what, rc,
			         reason, cases[i].rc, cases[i].reason);
		free(p);
	}
}

/* ---- OCSP responses made by openssl ocsp ---- */

struct ocsp_fx {
	gnutls_x509_crt_t ca, good, key, unknown;
};

static void ocsp_load(struct ocsp_fx *f)
{
	f->ca = load_crt("rev-ca.pem");
	f->good = load_crt("rev-good.pem");
	f->key = load_crt("rev-key.pem");
	f->unknown = load_crt("rev-unknown.pem");
}

static void ocsp_free(struct ocsp_fx *f)
{
	gnutls_x509_crt_deinit(f->ca);
	gnutls_x509_crt_deinit(f->good);
	gnutls_x509_crt_deinit(f->key);
	gnutls_x509_crt_deinit(f->unknown);
}

static void ocsp_run(const char *file, gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer, time_t now,
                     const gnutls_datum_t *nonce, struct st_rev_result *res)
{
	struct st_buf b;
	unsigned char *p;

	load_bytes(file, &b);
	p = dup_exact(b.data, b.len);
	st_ocsp_check_response(crt, issuer, now, p, b.len, nonce, "stapled response", res);
	free(p);
	st_buf_release(&b);
}

#define OCSP_NOW (REV_OCSP_THIS_UPDATE + 60)

static void test_ocsp_response_statuses(void **state)
{
	struct ocsp_fx f;
	struct st_rev_result res;

	(void)state;
	ocsp_load(&f);
	ocsp_run("rev-ocsp-good.der", f.good, f.ca, OCSP_NOW, NULL, &res);
	assert_int_equal(res.status, ST_REV_GOOD);
	assert_string_equal(res.source, "ocsp");
	assert_string_equal(res.detail, "stapled response");

	ocsp_run("rev-ocsp-revoked.der", f.key, f.ca, OCSP_NOW, NULL, &res);
	assert_int_equal(res.status, ST_REV_REVOKED);
	assert_int_equal(res.reason, 1);
	assert_int_equal(res.revoked_at, REV_AT_1002);

	ocsp_run("rev-ocsp-unknown.der", f.unknown, f.ca, OCSP_NOW, NULL, &res);
	assert_int_equal(res.status, ST_REV_UNKNOWN);
	assert_contains(res.detail, "does not know the certificate");

	/* signed by the CA itself; and by the delegated responder named by key hash */
	ocsp_run("rev-ocsp-direct.der", f.good, f.ca, OCSP_NOW, NULL, &res);
	assert_int_equal(res.status, ST_REV_GOOD);
	ocsp_run("rev-ocsp-bykey.der", f.good, f.ca, OCSP_NOW, NULL, &res);
	assert_int_equal(res.status, ST_REV_GOOD);
	ocsp_free(&f);
}

static void test_ocsp_response_rejected(void **state)
{
	struct ocsp_fx f;
	struct st_rev_result res;
	struct st_buf b;
	unsigned char *p;

	(void)state;
	ocsp_load(&f);
	/* a responder certificate without the OCSP signing purpose */
	ocsp_run("rev-ocsp-noeku.der", f.good, f.ca, OCSP_NOW, NULL, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_string_equal(
	    res.detail, "stapled response: responder certificate lacks the OCSP signing purpose");
	/* checked against another issuer: the responder certificate is not its */
	ocsp_run("rev-ocsp-good.der", f.good, ca.crt, OCSP_NOW, NULL, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_contains(res.detail, "stapled response: ");
	/* the CA-signed response checked with another issuer: its signer (the
	 * CA, embedded) is neither that issuer nor issued by it */
	ocsp_run("rev-ocsp-direct.der", f.good, ca.crt, OCSP_NOW, NULL, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_string_equal(
	    res.detail,
	    "stapled response: responder certificate is not issued by the certificate's issuer");
	/* a response about another certificate */
	ocsp_run("rev-ocsp-good.der", f.key, f.ca, OCSP_NOW, NULL, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_string_equal(res.detail,
	                    "stapled response: the response is not about this certificate");
	/* too early, too late */
	ocsp_run("rev-ocsp-good.der", f.good, f.ca, REV_OCSP_THIS_UPDATE - 301, NULL, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_contains(res.detail, "stapled response: response is not valid before ");
	ocsp_run("rev-ocsp-good.der", f.good, f.ca, REV_OCSP_THIS_UPDATE - 299, NULL, &res);
	assert_int_equal(res.status, ST_REV_GOOD); /* within the clock skew allowed */
	ocsp_run("rev-ocsp-good.der", f.good, f.ca,
	         REV_OCSP_THIS_UPDATE + (time_t)REV_OCSP_NDAYS * 86400 + 3600, NULL, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_contains(res.detail, "stapled response: response expired at ");

	/* the signed data changed: producedAt (the first GeneralizedTime) a second later */
	load_bytes("rev-ocsp-direct.der", &b);
	p = dup_exact(b.data, b.len);
	{
		unsigned char *t = memmem(p, b.len, "\x18\x0f", 2);

		assert_non_null(t);
		t[15] = t[15] == '9' ? '8' : (unsigned char)(t[15] + 1);
	}
	st_ocsp_check_response(f.good, f.ca, OCSP_NOW, p, b.len, NULL, "stapled response", &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_string_equal(res.detail, "stapled response: response signature does not verify");
	free(p);
	/* every truncation: malformed, never a crash */
	{
		size_t n;

		for (n = 0; n < b.len; n += 7) {
			p = dup_exact(b.data, n);
			st_ocsp_check_response(f.good, f.ca, OCSP_NOW, p, n, NULL, "x", &res);
			assert_int_equal(res.status, ST_REV_UNAVAILABLE);
			free(p);
		}
	}
	st_buf_release(&b);
	/* garbage, and nothing */
	st_ocsp_check_response(f.good, f.ca, OCSP_NOW, (const unsigned char *)"garbage", 7, NULL,
	                       "stapled response", &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_contains(res.detail, "stapled response: malformed response");
	st_ocsp_check_response(f.good, f.ca, OCSP_NOW, NULL, 0, NULL, "stapled response", &res);
	assert_string_equal(res.detail, "stapled response: empty response");
	ocsp_free(&f);
}

static void test_ocsp_response_nonce(void **state)
{
	struct ocsp_fx f;
	struct st_rev_result res;
	gnutls_ocsp_resp_t resp;
	gnutls_datum_t d, nonce = {NULL, 0}, wrong;
	struct st_buf b;

	(void)state;
	ocsp_load(&f);
	/* the nonce the fixture's request carried, as the response echoes it */
	load_bytes("rev-ocsp-nonce.der", &b);
	d.data = b.data;
	d.size = (unsigned)b.len;
	assert_int_equal(gnutls_ocsp_resp_init(&resp), 0);
	assert_int_equal(gnutls_ocsp_resp_import(resp, &d), 0);
	assert_int_equal(gnutls_ocsp_resp_get_nonce(resp, NULL, &nonce), 0);
	gnutls_ocsp_resp_deinit(resp);
	st_buf_release(&b);

	ocsp_run("rev-ocsp-nonce.der", f.good, f.ca, OCSP_NOW, &nonce, &res);
	assert_int_equal(res.status, ST_REV_GOOD);
	assert_string_equal(res.detail, "stapled response");

	wrong.data = dup_exact(nonce.data, nonce.size);
	wrong.size = nonce.size;
	wrong.data[0] ^= 0xff;
	ocsp_run("rev-ocsp-nonce.der", f.good, f.ca, OCSP_NOW, &wrong, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_string_equal(res.detail, "stapled response: nonce mismatch");

	/* a responder that leaves the nonce out: accepted, and said */
	ocsp_run("rev-ocsp-good.der", f.good, f.ca, OCSP_NOW, &nonce, &res);
	assert_int_equal(res.status, ST_REV_GOOD);
	assert_contains(res.detail, "carries no nonce");
	free(wrong.data);
	gnutls_free(nonce.data);
	ocsp_free(&f);
}

/* ---- HTTP ---- */

static void test_http_get(void **state)
{
	struct st_buf b;
	struct st_error err;
	char url[128];

	(void)state;
	st_buf_init(&b, 0);
	srv_url(url, sizeof(url), "/fixed");
	assert_int_equal(st_http_get(url, 1024, 5000, &b, &err), 0);
	assert_int_equal(b.len, 18);
	assert_string_equal(st_buf_str(&b), "hello, revocation\n");
	assert_int_equal(b.max, 1024);
	/* exactly at the cap is fine, one byte under is not */
	assert_int_equal(st_http_get(url, 18, 5000, &b, &err), 0);
	assert_int_equal(st_http_get(url, 17, 5000, &b, &err), ST_E_TOOBIG);
	assert_int_equal(b.len, 0);
	st_buf_release(&b);
}

static void test_http_404(void **state)
{
	struct st_buf b;
	struct st_error err;
	char url[128], want[256];

	(void)state;
	st_buf_init(&b, 0);
	srv_url(url, sizeof(url), "/404");
	st_error_clear(&err);
	assert_true(st_http_get(url, 1024, 5000, &b, &err) < 0);
	assert_int_equal(err.cls, ST_ERR_PROTOCOL);
	snprintf(want, sizeof(want), "%s: HTTP status 404", url);
	assert_string_equal(err.msg, want);
	assert_int_equal(b.len, 0);
	st_buf_release(&b);
}

static void test_http_timeout(void **state)
{
	struct st_buf b;
	struct st_error err;
	char url[128], want[256];
	struct timespec t0, t1;
	long ms;

	(void)state;
	st_buf_init(&b, 0);
	srv_url(url, sizeof(url), "/slow");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(st_http_get(url, 10 << 20, 300, &b, &err) < 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(err.cls, ST_ERR_CONNECT);
	snprintf(want, sizeof(want), "%s: timed out after 300 ms", url);
	assert_string_equal(err.msg, want);
	/* bounded, not a hang (generous: valgrind is slow) */
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms < 20000);
	st_buf_release(&b);
}

static void test_http_too_big(void **state)
{
	const char *paths[] = {"/big", "/big-cl"};
	struct st_buf b;
	struct st_error err;
	char url[128], want[256];
	size_t i;

	(void)state;
	st_buf_init(&b, 0);
	for (i = 0; i < N_ELEMS(paths); i++) {
		srv_url(url, sizeof(url), paths[i]);
		st_error_clear(&err);
		assert_int_equal(st_http_get(url, 100000, 10000, &b, &err), ST_E_TOOBIG);
		assert_int_equal(err.cls, ST_ERR_PROTOCOL);
		snprintf(want, sizeof(want), "%s: response larger than 100000 bytes", url);
		assert_string_equal(err.msg, want);
		assert_int_equal(b.len, 0);
	}
	st_buf_release(&b);
}

static void test_http_post(void **state)
{
	struct st_buf b;
	struct st_error err;
	char url[128];

	(void)state;
	st_buf_init(&b, 0);
	srv_url(url, sizeof(url), "/post");
	assert_int_equal(st_http_post(url, "application/ocsp-request", "\x30\x03\x02\x01\x00", 5,
	                              1024, 5000, &b, &err),
	                 0);
	assert_string_equal(st_buf_str(&b), "ct=application/ocsp-request;len=5;ua=" PACKAGE_NAME
	                                    "/" PACKAGE_VERSION);
	st_buf_release(&b);
}

static void test_http_refused_and_bad_urls(void **state)
{
	struct st_buf b;
	struct st_error err;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char url[128];
	int fd;

	(void)state;
	st_buf_init(&b, 0);
	/* a port that was ours a moment ago: nothing listens there */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/x.crl", ntohs(sa.sin_port));
	assert_true(st_http_get(url, 1024, 5000, &b, &err) < 0);
	assert_int_equal(err.cls, ST_ERR_CONNECT);
	assert_contains(err.msg, url);

	assert_int_equal(st_http_get("ftp://127.0.0.1/x.crl", 1024, 5000, &b, &err), ST_E_INVALID);
	assert_string_equal(err.msg, "ftp://127.0.0.1/x.crl: only http and https URLs are fetched");
	assert_int_equal(st_http_get("file:///etc/passwd", 1024, 5000, &b, &err), ST_E_INVALID);
	assert_int_equal(st_http_get("http://127.0.0.1/a\nb", 1024, 5000, &b, &err), ST_E_INVALID);
	assert_string_equal(err.msg, "http://127.0.0.1/a?b: control character or space in URL");
	assert_int_equal(st_http_get("http://127.0.0.1/", 1024, 0, &b, &err), ST_E_INVALID);
	st_buf_release(&b);
}

/* ---- fetching CRLs, and the cache ---- */

static size_t count_cache_files(const char *dir, char *name, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > 4 && strcmp(de->d_name + l - 4, ".crl") == 0) {
			n++;
			snprintf(name, size, "%s", de->d_name);
		}
	}
	closedir(d);
	return n;
}

static void test_fetch_and_cache(void **state)
{
	struct st_fetch_params fp = {.timeout_ms = 2000};
	struct st_crl_set *s;
	struct st_rev_result res;
	struct st_error err;
	char cache[PATH_MAX], url[128], want[PATH_MAX + 256], name[256], hex[65];
	unsigned char md[32];
	struct stat st;
	unsigned n0;

	(void)state;
	path_in(cache, sizeof(cache), tmp_dir, "cache");
	fp.cache_dir = cache;
	srv_url(url, sizeof(url), "/ca.crl");
	n0 = srv_crl_count();

	/* first: fetched, the cache directory made 0700, one entry named by the URL's SHA-256 */
	s = st_crl_set_new();
	assert_int_equal(st_crl_set_fetch(s, leaf_rev.crt, ca.crt, NOW, &fp, &err), 0);
	assert_int_equal(srv_crl_count(), n0 + 1);
	/* the same URL again in the same set: not fetched twice */
	assert_int_equal(st_crl_set_fetch(s, leaf_good.crt, ca.crt, NOW, &fp, &err), 0);
	assert_int_equal(srv_crl_count(), n0 + 1);
	st_crl_check(s, leaf_rev.crt, ca.crt, NOW, &res);
	assert_int_equal(res.status, ST_REV_REVOKED);
	assert_int_equal(res.revoked_at, T_2024_03_01);
	snprintf(want, sizeof(want), "CRL from %s", url);
	assert_string_equal(res.detail, want);
	st_crl_check(s, leaf_good.crt, ca.crt, NOW, &res);
	assert_int_equal(res.status, ST_REV_GOOD);
	st_crl_set_free(s);
	assert_int_equal(stat(cache, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(count_cache_files(cache, name, sizeof(name)), 1);
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, url, strlen(url), md), 0);
	st_hex(md, sizeof(md), false, 0, hex);
	snprintf(want, sizeof(want), "%s.crl", hex);
	assert_string_equal(name, want);

	/* second, in a new set: from the cache, the server not asked */
	s = st_crl_set_new();
	assert_int_equal(st_crl_set_fetch(s, leaf_rev.crt, ca.crt, NOW, &fp, &err), 0);
	assert_int_equal(srv_crl_count(), n0 + 1);
	st_crl_check(s, leaf_rev.crt, ca.crt, NOW, &res);
	assert_int_equal(res.status, ST_REV_REVOKED);
	snprintf(want, sizeof(want), "CRL from %s (cached in %s/%s.crl)", url, cache, hex);
	assert_string_equal(res.detail, want);
	st_crl_set_free(s);

	/* past the cached CRL's nextUpdate: fetched again, and then stale */
	s = st_crl_set_new();
	assert_int_equal(st_crl_set_fetch(s, leaf_rev.crt, ca.crt, T_2025_07_01, &fp, &err), 0);
	assert_int_equal(srv_crl_count(), n0 + 2);
	st_crl_check(s, leaf_rev.crt, ca.crt, T_2025_07_01, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	snprintf(want, sizeof(want), "CRL from %s expired at 2025-06-01T00:00:00Z", url);
	assert_string_equal(res.detail, want);
	st_crl_set_free(s);

	/* a damaged cache entry is not trusted: fetched again, and rewritten */
	snprintf(want, sizeof(want), "%s/%s.crl", cache, hex);
	write_file(want, "garbage", 7);
	s = st_crl_set_new();
	assert_int_equal(st_crl_set_fetch(s, leaf_rev.crt, ca.crt, NOW, &fp, &err), 0);
	assert_int_equal(srv_crl_count(), n0 + 3);
	st_crl_check(s, leaf_rev.crt, ca.crt, NOW, &res);
	assert_int_equal(res.status, ST_REV_REVOKED);
	snprintf(want, sizeof(want), "CRL from %s", url);
	assert_string_equal(res.detail, want);
	st_crl_set_free(s);
	s = st_crl_set_new();
	assert_int_equal(st_crl_set_fetch(s, leaf_rev.crt, ca.crt, NOW, &fp, &err), 0);
	assert_int_equal(srv_crl_count(), n0 + 3);
	st_crl_set_free(s);

	/* a cache entry from another issuer (a planted file) is not used either */
	{
		snprintf(want, sizeof(want), "%s/%s.crl", cache, hex);
		write_file(want, body_other_crl.data, body_other_crl.size);
		s = st_crl_set_new();
		assert_int_equal(st_crl_set_fetch(s, leaf_rev.crt, ca.crt, NOW, &fp, &err), 0);
		assert_int_equal(srv_crl_count(), n0 + 4);
		st_crl_set_free(s);
	}

	/* a cache entry with the issuer's name but another key (a CRL forged once,
	 * by whoever could answer a plain-http fetch) is thrown away and fetched again */
	{
		gnutls_datum_t forged = {NULL, 0};
		struct st_rev_result r2;
		assert_int_equal(gnutls_load_file(f_badsig, &forged), 0);
		write_file(want, forged.data, forged.size);
		gnutls_free(forged.data);
		s = st_crl_set_new();
		assert_int_equal(st_crl_set_fetch(s, leaf_rev.crt, ca.crt, NOW, &fp, &err), 0);
		assert_int_equal(srv_crl_count(), n0 + 5);
		st_crl_check(s, leaf_rev.crt, ca.crt, NOW, &r2);
		assert_int_equal(r2.status, ST_REV_REVOKED);
		st_crl_set_free(s);
		n0++;
	}

	/* no cache: always fetched */
	fp.cache_dir = NULL;
	s = st_crl_set_new();
	assert_int_equal(st_crl_set_fetch(s, leaf_rev.crt, ca.crt, NOW, &fp, &err), 0);
	assert_int_equal(srv_crl_count(), n0 + 5);
	st_crl_set_free(s);
}

static void test_fetch_cache_dir_refused(void **state)
{
	struct st_fetch_params fp = {.timeout_ms = 2000};
	struct st_crl_set *s = st_crl_set_new();
	struct st_error err;
	char dir[PATH_MAX];

	(void)state;
	path_in(dir, sizeof(dir), tmp_dir, "open-cache");
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(chmod(dir, 0777), 0);
	fp.cache_dir = dir;
	st_error_clear(&err);
	assert_true(st_crl_set_fetch(s, leaf_rev.crt, ca.crt, NOW, &fp, &err) < 0);
	assert_int_equal(err.cls, ST_ERR_INPUT);
	assert_contains(err.msg, dir);
	assert_contains(err.msg, "writable by another user");
	/* a file where the directory should be */
	fp.cache_dir = f_ok_der;
	assert_true(st_crl_set_fetch(s, leaf_rev.crt, ca.crt, NOW, &fp, &err) < 0);
	assert_contains(err.msg, "not a directory");
	/* the first problem is also what st_crl_check says */
	{
		struct st_rev_result res;

		st_crl_check(s, leaf_rev.crt, ca.crt, NOW, &res);
		assert_int_equal(res.status, ST_REV_UNAVAILABLE);
		assert_contains(res.detail, "cannot fetch CRL: cannot use cache directory");
		assert_contains(res.detail, "writable by another user");
	}
	st_crl_set_free(s);
	/* missing parents are made, 0700 */
	s = st_crl_set_new();
	path_in(dir, sizeof(dir), tmp_dir, "deep/er/cache");
	fp.cache_dir = dir;
	assert_int_equal(st_crl_set_fetch(s, leaf_rev.crt, ca.crt, NOW, &fp, &err), 0);
	{
		struct stat st;

		path_in(dir, sizeof(dir), tmp_dir, "deep");
		assert_int_equal(stat(dir, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0700);
	}
	st_crl_set_free(s);
}

static void test_fetch_failures(void **state)
{
	struct st_fetch_params fp = {.timeout_ms = 300};
	struct st_crl_set *s = st_crl_set_new();
	struct st_rev_result res;
	struct st_error err;
	char url[128], want[512];

	(void)state;
	assert_int_equal(st_crl_set_fetch(s, leaf_404.crt, ca.crt, NOW, &fp, &err), 0);
	st_crl_check(s, leaf_404.crt, ca.crt, NOW, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_string_equal(res.source, "crl");
	srv_url(url, sizeof(url), "/404.crl");
	snprintf(want, sizeof(want), "cannot fetch CRL from %s: HTTP status 404", url);
	assert_string_equal(res.detail, want);
	st_crl_set_free(s);

	s = st_crl_set_new();
	assert_int_equal(st_crl_set_fetch(s, leaf_garbage.crt, ca.crt, NOW, &fp, &err), 0);
	st_crl_check(s, leaf_garbage.crt, ca.crt, NOW, &res);
	srv_url(url, sizeof(url), "/garbage");
	snprintf(want, sizeof(want), "cannot fetch CRL from %s: not a DER or PEM CRL", url);
	assert_contains(res.detail, want);
	st_crl_set_free(s);

	s = st_crl_set_new();
	assert_int_equal(st_crl_set_fetch(s, leaf_slow.crt, ca.crt, NOW, &fp, &err), 0);
	st_crl_check(s, leaf_slow.crt, ca.crt, NOW, &res);
	srv_url(url, sizeof(url), "/slow");
	snprintf(want, sizeof(want), "cannot fetch CRL from %s: timed out after 300 ms", url);
	assert_string_equal(res.detail, want);
	st_crl_set_free(s);

	/* a body over the cap */
	fp.max_size = 100;
	s = st_crl_set_new();
	assert_int_equal(st_crl_set_fetch(s, leaf_rev.crt, ca.crt, NOW, &fp, &err), 0);
	st_crl_check(s, leaf_rev.crt, ca.crt, NOW, &res);
	srv_url(url, sizeof(url), "/ca.crl");
	snprintf(want, sizeof(want), "cannot fetch CRL from %s: response larger than 100 bytes",
	         url);
	assert_string_equal(res.detail, want);
	st_crl_set_free(s);
	fp.max_size = 0;

	s = st_crl_set_new();
	assert_int_equal(st_crl_set_fetch(s, leaf_othercrl.crt, ca.crt, NOW, &fp, &err), 0);
	st_crl_check(s, leaf_othercrl.crt, ca.crt, NOW, &res);
	srv_url(url, sizeof(url), "/other.crl");
	snprintf(want, sizeof(want),
	         "cannot fetch CRL from %s: it is not issued by the certificate's issuer", url);
	assert_string_equal(res.detail, want);
	st_crl_set_free(s);

	s = st_crl_set_new();
	assert_int_equal(st_crl_set_fetch(s, leaf_nocdp.crt, ca.crt, NOW, &fp, &err), 0);
	st_crl_check(s, leaf_nocdp.crt, ca.crt, NOW, &res);
	assert_string_equal(res.detail, "no CRL distribution point in the certificate");
	st_crl_set_free(s);

	s = st_crl_set_new();
	assert_int_equal(st_crl_set_fetch(s, leaf_https_ocsp.crt, ca.crt, NOW, &fp, &err), 0);
	st_crl_check(s, leaf_https_ocsp.crt, ca.crt, NOW, &res);
	assert_string_equal(res.detail,
	                    "no http or https CRL distribution point in the certificate");
	st_crl_set_free(s);
}

/* ---- OCSP over HTTP, against responders that fail ---- */

static void test_ocsp_fetch_failures(void **state)
{
	struct st_fetch_params fp = {.timeout_ms = 300};
	struct st_rev_result res;
	char url[128], want[512];

	(void)state;
	st_ocsp_check(leaf_good.crt, ca.crt, NOW, &fp, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_string_equal(res.source, "ocsp");
	srv_url(url, sizeof(url), "/garbage");
	snprintf(want, sizeof(want), "OCSP responder %s: malformed response", url);
	assert_contains(res.detail, want);

	st_ocsp_check(leaf_rev.crt, ca.crt, NOW, &fp, &res);
	srv_url(url, sizeof(url), "/404");
	snprintf(want, sizeof(want), "OCSP responder %s: HTTP status 404", url);
	assert_string_equal(res.detail, want);

	st_ocsp_check(leaf_rev2.crt, ca.crt, NOW, &fp, &res);
	srv_url(url, sizeof(url), "/slow");
	snprintf(want, sizeof(want), "OCSP responder %s: timed out after 300 ms", url);
	assert_string_equal(res.detail, want);

	st_ocsp_check(leaf_nocdp.crt, ca.crt, NOW, &fp, &res);
	assert_int_equal(res.status, ST_REV_UNAVAILABLE);
	assert_string_equal(res.detail, "no OCSP responder in the certificate");

	st_ocsp_check(leaf_https_ocsp.crt, ca.crt, NOW, &fp, &res);
	assert_string_equal(
	    res.detail, "OCSP responder https://127.0.0.1/ocsp: only http responders are asked");
}

/* ---- main ---- */

static int find_data_dir(const char *argv0)
{
	const char *env[] = {"TOP_SRCDIR", "srcdir"};
	char probe[PATH_MAX + 16];
	size_t i;

	for (i = 0; i < N_ELEMS(env); i++) {
		const char *v = getenv(env[i]);
		if (!v || !*v)
			continue;
		snprintf(data_dir, sizeof(data_dir), "%s/tests/unit/data", v);
		snprintf(probe, sizeof(probe), "%s/rev-ca.pem", data_dir);
		if (access(probe, R_OK) == 0)
			return 0;
	}
	{
		const char *slash = strrchr(argv0, '/');
		int n = slash ? (int)(slash - argv0) : 1;
		snprintf(data_dir, sizeof(data_dir), "%.*s/data", n, slash ? argv0 : ".");
		snprintf(probe, sizeof(probe), "%s/rev-ca.pem", data_dir);
		if (access(probe, R_OK) == 0)
			return 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_crl_good),
	    cmocka_unit_test(test_crl_revoked),
	    cmocka_unit_test(test_crl_other_issuer),
	    cmocka_unit_test(test_crl_bad_signature),
	    cmocka_unit_test(test_crl_expired),
	    cmocka_unit_test(test_crl_not_yet_valid),
	    cmocka_unit_test(test_crl_latest_answers),
	    cmocka_unit_test(test_crl_malformed_files),
	    cmocka_unit_test(test_crl_pem_bundle),
	    cmocka_unit_test(test_crl_no_crl),
	    cmocka_unit_test(test_crl_long_serial),
	    cmocka_unit_test(test_crl_openssl_reasons),
	    cmocka_unit_test(test_reason_parser_fixture),
	    cmocka_unit_test(test_reason_parser_truncated),
	    cmocka_unit_test(test_reason_parser_garbage),
	    cmocka_unit_test(test_reason_parser_handmade),
	    cmocka_unit_test(test_ocsp_response_statuses),
	    cmocka_unit_test(test_ocsp_response_rejected),
	    cmocka_unit_test(test_ocsp_response_nonce),
	    cmocka_unit_test(test_http_get),
	    cmocka_unit_test(test_http_404),
	    cmocka_unit_test(test_http_timeout),
	    cmocka_unit_test(test_http_too_big),
	    cmocka_unit_test(test_http_post),
	    cmocka_unit_test(test_http_refused_and_bad_urls),
	    cmocka_unit_test(test_fetch_and_cache),
	    cmocka_unit_test(test_fetch_cache_dir_refused),
	    cmocka_unit_test(test_fetch_failures),
	    cmocka_unit_test(test_ocsp_fetch_failures),
	};

	(void)argc;
	if (find_data_dir(argv[0]) != 0) {
		fprintf(stderr, "test-revoke: cannot find tests/unit/data (set TOP_SRCDIR)\n");
		return 1;
	}
	return cmocka_run_group_tests_name("revoke", tests, setup_all, teardown_all);
}
