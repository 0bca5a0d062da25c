/* test-session.c: unit tests of lib/session: SMTP and TLS over a real loopback socket, against a scripted server */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "relay.h"
#include "session.h"

static char cert[4096], key[4096];

/* ---- the scripted server, in a child process, blocking I/O ---- */

enum script { S_STARTTLS, S_IMPLICIT, S_INJECT, S_SILENT, S_REQ_CCERT, S_TLS_FIRST };

static void srv_send(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n > 0 && (w = write(fd, c, n)) > 0) {
		c += w;
		n -= (size_t)w;
	}
}

/* Read one plaintext line (up to LF) byte by byte, so nothing after it is taken. */
static void srv_line(int fd, char *out, size_t size)
{
	size_t n = 0;
	char ch;

	while (n + 1 < size && read(fd, &ch, 1) == 1) {
		out[n++] = ch;
		if (ch == '\n')
			break;
	}
	out[n] = '\0';
}

static void tls_flush(int fd, struct st_tls *t)
{
	size_t n;
	const unsigned char *o = st_tls_output(t, &n);

	srv_send(fd, o, n);
	st_tls_output_done(t, n);
}

static int tls_handshake(int fd, struct st_tls *t)
{
	unsigned char buf[16384];
	struct st_error err;
	ssize_t n;
	int rc;

	while ((rc = st_tls_handshake(t, &err)) == 0) {
		tls_flush(fd, t);
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return -1;
		st_tls_input(t, buf, (size_t)n);
	}
	tls_flush(fd, t);
	return rc == 1 ? 0 : -1;
}

static void tls_line(int fd, struct st_tls *t, char *out, size_t size)
{
	unsigned char buf[16384];
	struct st_error err;
	size_t have = 0;
	ssize_t n;
	long got;

	out[0] = '\0';
	while (!strchr(out, '\n')) {
		got = st_tls_read(t, out + have, size - have - 1, &err);
		if (got > 0) {
			have += (size_t)got;
			out[have] = '\0';
			continue;
		}
		if (got < 0)
			return;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return;
		st_tls_input(t, buf, (size_t)n);
	}
}

static void tls_say(int fd, struct st_tls *t, const char *s)
{
	struct st_error err;

	st_tls_write(t, s, strlen(s), &err);
	tls_flush(fd, t);
}

static void serve(int lfd, enum script sc)
{
	struct st_tls_params tp = {.server = true,
	                           .cert_file = cert,
	                           .key_file = key,
	                           .request_client_cert = sc == S_REQ_CCERT};
	struct st_error err;
	struct st_tls *t;
	char line[1024];
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test must not leave it behind */
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		_exit(1);
	if (sc == S_SILENT) {
		read(fd, line, sizeof(line)); /* until the client gives up */
		_exit(0);
	}
	if (sc == S_TLS_FIRST) {
		/* a TLS alert record (TLS 1.2, fatal, handshake_failure) where the greeting is due */
		srv_send(fd, "\x15\x03\x03\x00\x02\x02\x28", 7);
		read(fd, line, sizeof(line));
		_exit(0);
	}
	if (sc == S_IMPLICIT) {
		t = st_tls_new(&tp, &err);
		if (!t || tls_handshake(fd, t))
			_exit(2);
		tls_say(fd, t, "220 test.example ESMTP\r\n");
		tls_line(fd, t, line, sizeof(line));
		tls_say(fd, t, "250-test.example\r\n250 PIPELINING\r\n");
		tls_line(fd, t, line, sizeof(line));
		tls_say(fd, t, "221 2.0.0 Bye\r\n");
		_exit(0);
	}
	srv_send(fd, "220 test.example ESMTP\r\n", 24);
	srv_line(fd, line, sizeof(line));
	srv_send(fd, "250-test.example\r\n250 STARTTLS\r\n", 32);
	srv_line(fd, line, sizeof(line));
	if (sc == S_INJECT)
		srv_send(fd, "220 2.0.0 Ready to start TLS\r\n250 injected\r\n", 44);
	else
		srv_send(fd, "220 2.0.0 Ready to start TLS\r\n", 30);
	t = st_tls_new(&tp, &err);
	if (!t || tls_handshake(fd, t))
		_exit(2);
	tls_line(fd, t, line, sizeof(line)); /* EHLO */
	if (sc == S_REQ_CCERT) {
		tls_say(fd, t, "421 4.7.1 test.example Error: No client certificate presented\r\n");
		_exit(0);
	}
	tls_say(fd, t, "250-test.example\r\n250 AUTH PLAIN LOGIN\r\n");
	tls_line(fd, t, line, sizeof(line)); /* QUIT */
	tls_say(fd, t, "221 2.0.0 Bye\r\n");
	_exit(0);
}

/* Start a scripted server on 127.0.0.1 port 0; fills addr, returns the child. */
static pid_t start(enum script sc, struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	pid_t pid;

	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)addr, sizeof(*addr)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)addr, &len), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		serve(lfd, sc);
	close(lfd);
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

static void params(struct st_session_params *p, const struct sockaddr_in *a, enum st_smtp_mode m)
{
	memset(p, 0, sizeof(*p));
	p->addr = (const struct sockaddr *)a;
	p->smtp.mode = m;
	p->smtp.ehlo_name = "client.example";
	p->tls.sni = "test.example";
	p->timeout_ms = 5000;
}

static void test_starttls(void **state)
{
	struct st_session_params p;
	struct st_session_result r;
	struct sockaddr_in a;
	const struct st_smtp_result *s;
	pid_t pid = start(S_STARTTLS, &a);

	(void)state;
	params(&p, &a, ST_SMTP_STARTTLS);
	assert_int_equal(st_session_run(&p, &r), 0);
	assert_false(r.failed);
	assert_true(r.connected);
	assert_true(r.tls_done);
	assert_string_equal(r.tls_summary.version, "TLSv1.3");
	assert_int_equal(r.tls_summary.n_peer_certs, 3);
	s = st_smtp_client_result(r.smtp);
	assert_false(s->failed);
	assert_int_equal(s->stage, ST_SMTP_STAGE_DONE);
	assert_true(s->caps.starttls);
	assert_string_equal(s->caps_tls.auth, "PLAIN LOGIN");
	assert_int_equal(s->quit.code, 221);
	assert_int_equal(s->injected, 0);
	st_session_result_release(&r);
	stop(pid);
}

static void test_implicit(void **state)
{
	struct st_session_params p;
	struct st_session_result r;
	struct sockaddr_in a;
	pid_t pid = start(S_IMPLICIT, &a);

	(void)state;
	params(&p, &a, ST_SMTP_IMPLICIT);
	assert_int_equal(st_session_run(&p, &r), 0);
	assert_false(r.failed);
	assert_true(r.tls_done);
	assert_int_equal(st_smtp_client_result(r.smtp)->banner.code, 220);
	assert_int_equal(st_smtp_client_result(r.smtp)->stage, ST_SMTP_STAGE_DONE);
	st_session_result_release(&r);
	stop(pid);
}

static void test_injection_and_421(void **state)
{
	struct st_session_params p;
	struct st_session_result r;
	struct sockaddr_in a;
	pid_t pid = start(S_INJECT, &a);

	(void)state;
	params(&p, &a, ST_SMTP_STARTTLS);
	assert_int_equal(st_session_run(&p, &r), 0);
	/* the injected bytes are counted, never read as a reply, and then the
	 * handshake meets them: it fails, or the server's TLS stack took them */
	assert_int_equal(st_smtp_client_result(r.smtp)->injected, strlen("250 injected\r\n"));
	st_session_result_release(&r);
	stop(pid);

	pid = start(S_REQ_CCERT, &a);
	params(&p, &a, ST_SMTP_STARTTLS);
	assert_int_equal(st_session_run(&p, &r), 0);
	assert_true(r.tls_done);
	assert_true(r.tls_summary.client_cert_requested);
	assert_true(st_smtp_client_result(r.smtp)->failed);
	assert_int_equal(st_smtp_client_result(r.smtp)->ehlo_tls.code, 421);
	st_session_result_release(&r);
	stop(pid);
}

static void test_timeouts_and_refusals(void **state)
{
	struct st_session_params p;
	struct st_session_result r;
	struct sockaddr_in a;
	char dsn[16], why[600];
	pid_t pid = start(S_SILENT, &a);

	(void)state;
	params(&p, &a, ST_SMTP_STARTTLS);
	p.timeout_ms = 300;
	assert_int_equal(st_session_run(&p, &r), 0);
	assert_true(r.failed);
	assert_int_equal(r.error.cls, ST_ERR_PROTOCOL);
	assert_string_equal(r.error.msg, "no reply within 300 ms (banner)");
	assert_true(r.timed_out);
	assert_int_equal(r.clue, ST_SESSION_CLUE_NONE);
	/* Postfix's words for it (t0303 holds them against Postfix's own) */
	assert_true(st_relay_early_failure(&r, "h.example", "127.0.0.1", 25, dsn, sizeof(dsn), why,
	                                   sizeof(why)));
	assert_string_equal(dsn, "4.4.2");
	assert_string_equal(why, "conversation with h.example[127.0.0.1] timed out while receiving "
	                         "the initial server greeting");
	st_session_result_release(&r);
	stop(pid);

	/* a port nobody listens on: the listener is gone once its child is */
	params(&p, &a, ST_SMTP_STARTTLS);
	assert_true(st_session_run(&p, &r) < 0);
	assert_int_equal(r.error.cls, ST_ERR_CONNECT);
	assert_non_null(strstr(r.error.msg, "cannot connect"));
	assert_int_equal(r.connect_errno, ECONNREFUSED);
	assert_true(st_relay_early_failure(&r, "h.example", "127.0.0.1", 25, dsn, sizeof(dsn), why,
	                                   sizeof(why)));
	assert_string_equal(dsn, "4.4.1");
	assert_string_equal(why, "connect to h.example[127.0.0.1]:25: Connection refused");
	st_session_result_release(&r);
}

/* the wrong kind of port: TLS where the greeting is due, a greeting where TLS is due */
static void test_wrong_port(void **state)
{
	struct st_session_params p;
	struct st_session_result r;
	struct sockaddr_in a;
	char dsn[16], why[600];
	pid_t pid = start(S_TLS_FIRST, &a);

	(void)state;
	params(&p, &a, ST_SMTP_STARTTLS);
	assert_int_equal(st_session_run(&p, &r), 0);
	assert_true(r.failed);
	assert_int_equal(r.error.cls, ST_ERR_PROTOCOL);
	assert_int_equal(r.clue, ST_SESSION_CLUE_TLS_AT_BANNER);
	assert_false(r.timed_out);
	assert_true(st_relay_early_failure(&r, "h.example", "127.0.0.1", 25, dsn, sizeof(dsn), why,
	                                   sizeof(why)));
	assert_string_equal(why, "lost connection with h.example[127.0.0.1] while receiving the "
	                         "initial server greeting");
	st_session_result_release(&r);
	stop(pid);

	pid = start(S_STARTTLS, &a);
	params(&p, &a, ST_SMTP_IMPLICIT);
	assert_int_equal(st_session_run(&p, &r), 0);
	assert_true(r.failed);
	assert_int_equal(r.error.cls, ST_ERR_TLS);
	assert_int_equal(r.clue, ST_SESSION_CLUE_SMTP_AT_TLS);
	assert_string_equal(r.error.msg, "the server sent an SMTP greeting where the TLS handshake "
	                                 "was due: '220 test.example ESMTP'");
	assert_false(r.tls_done);
	/* a TLS failure, not an early one: no Postfix greeting words for it */
	assert_false(st_relay_early_failure(&r, "h.example", "127.0.0.1", 25, dsn, sizeof(dsn), why,
	                                    sizeof(why)));
	st_session_result_release(&r);
	stop(pid);
}

/* many sessions on one loop: they run side by side, each ends once */
struct ended {
	int order[4];
	int n;
};

static void on_done(struct st_session_result *res, void *arg)
{
	struct ended *e = arg;

	e->order[e->n++] = res->tls_done ? 1 : 0; /* which kind ended, in order */
}

static void test_many_on_one_loop(void **state)
{
	struct st_session_params p;
	struct st_session_result r[4];
	struct sockaddr_in a[4];
	struct ended e = {{0}, 0};
	pid_t pid[4];
	uv_loop_t loop;
	int i;

	(void)state;
	/* first a server that never answers, then three that do */
	pid[0] = start(S_SILENT, &a[0]);
	for (i = 1; i < 4; i++)
		pid[i] = start(S_STARTTLS, &a[i]);
	assert_int_equal(uv_loop_init(&loop), 0);
	for (i = 0; i < 4; i++) {
		params(&p, &a[i], ST_SMTP_STARTTLS);
		p.timeout_ms = i == 0 ? 3000 : 20000;
		/* p is copied: the same struct serves every start */
		assert_int_equal(st_session_start(&loop, &p, &r[i], on_done, &e), 0);
	}
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0); /* nothing left open */
	assert_int_equal(e.n, 4);
	/* the silent one, started first, ended last: the others did not wait for it */
	assert_int_equal(e.order[0] + e.order[1] + e.order[2], 3);
	assert_int_equal(e.order[3], 0);
	assert_true(r[0].failed);
	assert_string_equal(r[0].error.msg, "no reply within 3000 ms (banner)");
	for (i = 1; i < 4; i++) {
		assert_false(r[i].failed);
		assert_int_equal(st_smtp_client_result(r[i].smtp)->quit.code, 221);
	}
	for (i = 0; i < 4; i++) {
		st_session_result_release(&r[i]);
		stop(pid[i]);
	}
}

int main(void)
{
	const char *top = getenv("TOP_SRCDIR");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_starttls),          cmocka_unit_test(test_implicit),
	    cmocka_unit_test(test_injection_and_421), cmocka_unit_test(test_timeouts_and_refusals),
	    cmocka_unit_test(test_wrong_port),        cmocka_unit_test(test_many_on_one_loop),
	};

	snprintf(cert, sizeof(cert), "%s/tests/unit/data/chain.pem", top ? top : ".");
	snprintf(key, sizeof(key), "%s/tests/unit/data/ec.key", top ? top : ".");
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
