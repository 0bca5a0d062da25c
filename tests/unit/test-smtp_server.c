/* test-smtp_server.c: the SMTP server engine, driven with client bytes, its replies and requests checked */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_server.h"

static char got_body[8192];
static size_t got_len;

static void on_body(void *arg, const unsigned char *d, size_t n)
{
	(void)arg;
	assert_true(got_len + n < sizeof(got_body));
	memcpy(got_body + got_len, d, n);
	got_len += n;
	got_body[got_len] = '\0';
}

/* Everything the engine wants to send, as a string, marked sent. */
static char out[65536];

static const char *take(struct st_smtp_server *s)
{
	size_t n;
	const unsigned char *o = st_smtp_server_output(s, &n);

	assert_true(n < sizeof(out));
	memcpy(out, o, n);
	out[n] = '\0';
	st_smtp_server_sent(s, n);
	return out;
}

/* The client says text; the engine must then say want (all of it, exactly). */
static void say(struct st_smtp_server *s, const char *text, const char *want)
{
	assert_int_equal(st_smtp_server_input(s, (const unsigned char *)text, strlen(text)),
	                 strlen(text));
	assert_string_equal(take(s), want);
}

/* Answer the pending request; the engine must then say want. */
static void answer(struct st_smtp_server *s, bool ok, const char *text, const char *want)
{
	st_smtp_server_answer(s, ok, text);
	assert_string_equal(take(s), want);
}

static struct st_smtp_server *new_server(const struct st_smtp_server_params *p)
{
	struct st_smtp_server *s = st_smtp_server_new(p);

	assert_non_null(s);
	got_len = 0;
	got_body[0] = '\0';
	st_smtp_server_greet(s, NULL);
	assert_string_equal(take(s), "220 mx.test ESMTP smtptls\r\n");
	return s;
}

static const char *ehlo_plain = "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                                "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
                                "250 SMTPUTF8\r\n";
static const char *ehlo_tls = "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                              "250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
                              "250 SMTPUTF8\r\n";

static void test_transaction(void **state)
{
	struct st_smtp_server_params p = {.hostname = "mx.test", .starttls = true, .auth = true,
	                                  .body = on_body};
	struct st_smtp_server *s = new_server(&p);
	struct st_srv_request req;
	struct st_srv_state st;

	(void)state;
	say(s, "EHLO client.test\r\n", ehlo_plain); /* no AUTH before TLS */
	say(s, "MAIL FROM:<a@client.test> SIZE=100 BODY=8BITMIME\r\n", "");
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_MAIL);
	assert_string_equal(req.arg, "a@client.test");
	assert_int_equal(req.size, 100);
	st_smtp_server_answer(s, true, NULL);
	assert_string_equal(take(s), "250 2.1.0 Ok\r\n");
	say(s, "RCPT TO:<x@elsewhere.test>\r\n", "");
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_RCPT);
	assert_string_equal(req.arg, "x@elsewhere.test");
	st_smtp_server_answer(s, false, "554 5.7.1 <x@elsewhere.test>: Relay access denied");
	assert_string_equal(take(s), "554 5.7.1 <x@elsewhere.test>: Relay access denied\r\n");
	say(s, "RCPT TO:<b@mx.test>\r\n", "");
	st_smtp_server_answer(s, true, NULL);
	assert_string_equal(take(s), "250 2.1.5 Ok\r\n");
	say(s, "DATA\r\n", "");
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_DATA);
	st_smtp_server_answer(s, true, NULL);
	assert_string_equal(take(s), "354 End data with <CR><LF>.<CR><LF>\r\n");
	/* dot-stuffing undone; bare LF and bare CR dot lines are text (SMTP smuggling):
	 * only CRLF . CRLF ends the message */
	say(s, "Subject: t\r\n\r\n..dot\r\nbare\n.\nlf\r\nx\r.\rcr\r\n.\r", "");
	assert_int_equal(st_smtp_server_next(s, NULL), ST_SRV_NONE);
	say(s, "\n", "");
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_END);
	assert_string_equal(got_body, "Subject: t\r\n\r\n.dot\r\nbare\n.\nlf\r\nx\r.\rcr\r\n");
	assert_int_equal(req.size, strlen(got_body));
	st_smtp_server_state(s, &st);
	assert_string_equal(st.sender, "a@client.test");
	assert_int_equal(st.n_rcpt, 1);
	assert_string_equal(st.rcpt[0], "b@mx.test");
	st_smtp_server_answer(s, true, "4XyZ");
	assert_string_equal(take(s), "250 2.0.0 Ok: queued as 4XyZ\r\n");
	st_smtp_server_state(s, &st);
	assert_string_equal(st.sender, ""); /* the transaction is over */
	assert_int_equal(st.messages, 1);
	say(s, "QUIT\r\n", "221 2.0.0 Bye\r\n");
	assert_int_equal(st_smtp_server_next(s, NULL), ST_SRV_CLOSE);
	st_smtp_server_free(s);
}

/* Postfix's replies to sequence and syntax errors */
static void test_errors(void **state)
{
	struct st_smtp_server_params p = {.hostname = "mx.test", .max_errors = 100};
	struct st_smtp_server *s = new_server(&p);

	(void)state;
	say(s, "FOO\r\n", "500 5.5.2 Error: command not recognized\r\n");
	say(s, "HELP\r\n", "500 5.5.2 Error: command not recognized\r\n");
	say(s, "\r\n", "500 5.5.2 Error: bad syntax\r\n");
	say(s, "HELO\r\n", "501 Syntax: HELO hostname\r\n");
	say(s, "EHLO\r\n", "501 Syntax: EHLO hostname\r\n");
	say(s, "HELO c.test\r\n", "250 mx.test\r\n");
	say(s, "RCPT TO:<a@b>\r\n", "503 5.5.1 Error: need MAIL command\r\n");
	say(s, "DATA\r\n", "503 5.5.1 Error: need RCPT command\r\n"); /* sic: Postfix */
	say(s, "MAIL FROM a@b\r\n", "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
	say(s, "MAIL FROM:<a@b> SIZE=99999999999\r\n", "552 5.3.4 Message size exceeds fixed limit\r\n");
	say(s, "MAIL FROM:<a@b> NOTIFY=NEVER\r\n", "555 5.5.4 Unsupported option: NOTIFY=NEVER\r\n");
	say(s, "MAIL FROM:<a b>\r\n", "501 5.1.7 Bad sender address syntax\r\n");
	say(s, "MAIL FROM:a@b\r\n", ""); /* brackets optional, as Postfix takes it */
	answer(s, true, NULL, "250 2.1.0 Ok\r\n");
	say(s, "MAIL FROM:<c@d>\r\n", "503 5.5.1 Error: nested MAIL command\r\n");
	say(s, "DATA\r\n", "554 5.5.1 Error: no valid recipients\r\n");
	say(s, "RCPT TO:<>\r\n", "501 5.1.3 Bad recipient address syntax\r\n");
	say(s, "RCPT TO:<a b>\r\n", "501 5.1.3 Bad recipient address syntax\r\n");
	say(s, "RCPT TO <a@b>\r\n", "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
	say(s, "STARTTLS\r\n", "502 5.5.1 Error: command not implemented\r\n");
	say(s, "STARTTLS x\r\n", "501 5.5.4 Syntax: STARTTLS\r\n");
	say(s, "AUTH PLAIN\r\n", "503 5.5.1 Error: authentication not enabled\r\n");
	say(s, "VRFY x\r\n", "252 2.0.0 x\r\n");
	say(s, "RSET\r\n", "250 2.0.0 Ok\r\n");
	say(s, "NOOP\r\n", "250 2.0.0 Ok\r\n");
	say(s, "DATA x\r\n", "501 5.5.4 Syntax: DATA\r\n");
	/* a command line over 512 bytes, with or without its end in the same read */
	{
		char big[700];
		memset(big, 'X', sizeof(big));
		big[sizeof(big) - 1] = '\0';
		say(s, big, "500 5.5.2 Error: line longer than 512 bytes\r\n");
		say(s, "tail\r\nNOOP\r\n", "250 2.0.0 Ok\r\n"); /* the rest of it is dropped */
		big[600] = '\r', big[601] = '\n', big[602] = '\0';
		say(s, big, "500 5.5.2 Error: line longer than 512 bytes\r\n");
	}
	say(s, "QUIT\r\n", "221 2.0.0 Bye\r\n");
	st_smtp_server_free(s);

	/* the hard error limit (Postfix's default is 20) */
	p.max_errors = 3;
	s = new_server(&p);
	say(s, "A\r\nB\r\nC\r\nNOOP\r\n",
	    "500 5.5.2 Error: command not recognized\r\n500 5.5.2 Error: command not recognized\r\n"
	    "500 5.5.2 Error: command not recognized\r\n421 4.7.0 mx.test Error: too many errors\r\n");
	assert_int_equal(st_smtp_server_next(s, NULL), ST_SRV_CLOSE);
	st_smtp_server_free(s);

	/* the idle timeout */
	p.max_errors = 0;
	s = new_server(&p);
	st_smtp_server_timeout(s);
	assert_string_equal(take(s), "421 4.4.2 mx.test Error: timeout exceeded\r\n");
	assert_int_equal(st_smtp_server_next(s, NULL), ST_SRV_CLOSE);
	st_smtp_server_free(s);
}

/* STARTTLS: what was pipelined behind it in plaintext is thrown away, never run in TLS */
static void test_starttls(void **state)
{
	struct st_smtp_server_params p = {.hostname = "mx.test", .starttls = true, .auth = true,
	                                  .tls_required = true};
	struct st_smtp_server *s = new_server(&p);
	struct st_srv_state st;
	const char *evil = "MAIL FROM:<evil@x>\r\n";

	(void)state;
	say(s, "EHLO c\r\n", ehlo_plain);
	say(s, "MAIL FROM:<a@b>\r\n", "530 5.7.0 Must issue a STARTTLS command first\r\n");
	say(s, "RSET\r\n", "530 5.7.0 Must issue a STARTTLS command first\r\n");
	say(s, "AUTH PLAIN\r\n", "530 5.7.0 Must issue a STARTTLS command first\r\n");
	say(s, "NOOP\r\n", "250 2.0.0 Ok\r\n");
	say(s, "HELP\r\n", "500 5.5.2 Error: command not recognized\r\n");
	{
		char both[100];
		snprintf(both, sizeof(both), "STARTTLS\r\n%s", evil);
		say(s, both, "220 2.0.0 Ready to start TLS\r\n");
	}
	assert_int_equal(st_smtp_server_next(s, NULL), ST_SRV_TLS);
	say(s, "more plaintext\r\n", ""); /* the handshake's, not ours */
	st_smtp_server_tls_up(s, true, NULL);
	st_smtp_server_state(s, &st);
	assert_int_equal(st.discarded, strlen(evil));
	assert_true(st.tls);
	assert_string_equal(st.helo, ""); /* forgotten: the client starts over */
	assert_int_equal(st_smtp_server_next(s, NULL), ST_SRV_NONE);
	say(s, "EHLO c\r\n", ehlo_tls); /* now AUTH, no STARTTLS */
	say(s, "STARTTLS\r\n", "554 5.5.1 Error: TLS already active\r\n");
	st_smtp_server_free(s);

	/* a client certificate demanded and missing: Postfix reads the next command, then 421 */
	s = new_server(&p);
	say(s, "STARTTLS\r\n", "220 2.0.0 Ready to start TLS\r\n");
	st_smtp_server_tls_up(s, true, "No client certificate presented");
	say(s, "EHLO c\r\n", "421 4.7.1 mx.test Error: No client certificate presented\r\n");
	assert_int_equal(st_smtp_server_next(s, NULL), ST_SRV_CLOSE);
	st_smtp_server_free(s);

	/* implicit TLS: the same refusal is the banner */
	p.implicit_tls = true;
	s = st_smtp_server_new(&p);
	st_smtp_server_greet(s, "No client certificate presented");
	assert_string_equal(take(s), "421 4.7.1 mx.test Error: No client certificate presented\r\n");
	assert_int_equal(st_smtp_server_next(s, NULL), ST_SRV_CLOSE);
	st_smtp_server_free(s);
}

static void test_auth(void **state)
{
	struct st_smtp_server_params p = {.hostname = "mx.test", .implicit_tls = true, .auth = true};
	struct st_smtp_server *s = new_server(&p);
	struct st_srv_request req;
	struct st_srv_state st;

	(void)state;
	say(s, "EHLO c\r\n", ehlo_tls);
	/* PLAIN with an initial response: "\0alice\0s3cret" */
	say(s, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n", "");
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_AUTH);
	assert_string_equal(req.mech, "PLAIN");
	assert_string_equal(req.user, "alice");
	assert_string_equal(req.pass, "s3cret");
	assert_string_equal(req.authzid, "");
	st_smtp_server_answer(s, false, NULL);
	assert_string_equal(take(s), "535 5.7.8 Error: authentication failed: authentication failure\r\n");
	/* LOGIN, prompted */
	say(s, "AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n");
	say(s, "YWxpY2U=\r\n", "334 UGFzc3dvcmQ6\r\n");
	say(s, "czNjcmV0\r\n", "");
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_AUTH);
	assert_string_equal(req.mech, "LOGIN");
	assert_string_equal(req.user, "alice");
	assert_string_equal(req.pass, "s3cret");
	st_smtp_server_answer(s, true, NULL);
	assert_string_equal(take(s), "235 2.7.0 Authentication successful\r\n");
	st_smtp_server_state(s, &st);
	assert_string_equal(st.auth_user, "alice");
	say(s, "AUTH PLAIN\r\n", "503 5.5.1 Error: already authenticated\r\n");
	st_smtp_server_free(s);

	/* the authorization identity goes to the caller, who decides: "bob\0alice\0s3cret" */
	s = new_server(&p);
	say(s, "AUTH PLAIN Ym9iAGFsaWNlAHMzY3JldA==\r\n", "");
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_AUTH);
	assert_string_equal(req.user, "alice");
	assert_string_equal(req.authzid, "bob");
	st_smtp_server_answer(s, false, NULL);
	assert_string_equal(take(s),
	                    "535 5.7.8 Error: authentication failed: authentication failure\r\n");
	st_smtp_server_free(s);

	s = new_server(&p);
	say(s, "AUTH\r\n", "501 5.5.4 Syntax: AUTH mechanism\r\n");
	say(s, "AUTH CRAM-MD5\r\n",
	    "535 5.7.8 Error: authentication failed: Invalid authentication mechanism\r\n");
	say(s, "AUTH PLAIN\r\n", "334 \r\n");
	say(s, "*\r\n", "501 5.7.0 Authentication aborted\r\n");
	say(s, "AUTH PLAIN\r\n", "334 \r\n");
	say(s, "!!!\r\n", "501 5.5.2 Cannot decode response\r\n");
	say(s, "AUTH PLAIN AGFs/2ljZQBzM2NyZXQ=\r\n", /* "\0al\xffice\0s3cret": not UTF-8 */
	    "535 5.7.8 Error: authentication failed: bad protocol / cancel\r\n");
	assert_int_equal(st_smtp_server_next(s, NULL), ST_SRV_NONE); /* never asked */
	say(s, "AUTH PLAIN YWxpY2U=\r\n", /* no NULs: not PLAIN */
	    "535 5.7.8 Error: authentication failed: bad protocol / cancel\r\n");
	say(s, "MAIL FROM:<a@b>\r\n", "");
	answer(s, true, NULL, "250 2.1.0 Ok\r\n");
	say(s, "AUTH PLAIN\r\n", "503 5.5.1 Error: MAIL transaction in progress\r\n");
	st_smtp_server_free(s);
}

/* Addresses are read from the raw bytes, as Postfix's smtpd reads them */
static void test_address_syntax(void **state)
{
	struct st_smtp_server_params p = {.hostname = "mx.test"};
	struct st_smtp_server *s = new_server(&p);
	struct st_srv_request req;
	static const unsigned char nul[] = "RCPT TO:<a\0b@mx.test>\r\nNOOP\0 x\r\n";

	(void)state;
	say(s, "EHLO c\r\n",
	    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
	/* invalid UTF-8 anywhere in a command line */
	say(s, "MAIL FROM:<\xff\xfe@mx.test>\r\n", "500 5.5.2 Error: bad UTF-8 syntax\r\n");
	say(s, "NOOP \xc0\x80\r\n", "500 5.5.2 Error: bad UTF-8 syntax\r\n");
	/* '[' in a local part is bad syntax; a control character is taken, raw */
	say(s, "MAIL FROM:<a\x1b[31m@mx.test>\r\n", "501 5.1.7 Bad sender address syntax\r\n");
	say(s, "MAIL FROM:<a\x1b@mx.test>\r\n", "");
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_MAIL);
	assert_string_equal(req.arg, "a\x1b@mx.test");
	assert_false(req.smtputf8);
	answer(s, true, NULL, "250 2.1.0 Ok\r\n");
	/* white space, specials, bad domains */
	say(s, "RCPT TO:<a\tb@mx.test>\r\n", "501 5.1.3 Bad recipient address syntax\r\n");
	say(s, "RCPT TO:<a,b@mx.test>\r\n", "501 5.1.3 Bad recipient address syntax\r\n");
	say(s, "RCPT TO:<a\"b@mx.test>\r\n", "501 5.1.3 Bad recipient address syntax\r\n");
	say(s, "RCPT TO:<a@mx\x01.test>\r\n", "501 5.1.3 Bad recipient address syntax\r\n");
	say(s, "RCPT TO:<a@m..test>\r\n", "501 5.1.3 Bad recipient address syntax\r\n");
	say(s, "RCPT TO:<a@192.0.2.1>\r\n", "501 5.1.3 Bad recipient address syntax\r\n");
	say(s, "RCPT TO:<a@[192.0.2]>\r\n", "501 5.1.3 Bad recipient address syntax\r\n");
	say(s, "RCPT TO:<a@\xc3\xa9.test>\r\n", "501 5.1.3 Bad recipient address syntax\r\n");
	/* a NUL ends the line where it is */
	assert_int_equal(st_smtp_server_input(s, nul, sizeof(nul) - 1), sizeof(nul) - 1);
	assert_string_equal(take(s), "501 5.1.3 Bad recipient address syntax\r\n250 2.0.0 Ok\r\n");
	/* a source route dropped, quotes taken off, UTF-8 in the local part */
	say(s, "RCPT TO:<@a.test,@b.test:\"x y\"@mx.test>\r\n", "");
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_RCPT);
	assert_string_equal(req.arg, "x y@mx.test");
	answer(s, false, "554 5.7.1 <x\x1by@mx.test>: Relay access denied",
	       "554 5.7.1 <x?y@mx.test>: Relay access denied\r\n");
	say(s, "RCPT TO:<\xc3\xa9@[IPv6:2001:db8::1]>\r\n", "");
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_RCPT);
	assert_string_equal(req.arg, "\xc3\xa9@[IPv6:2001:db8::1]");
	answer(s, true, NULL, "250 2.1.5 Ok\r\n");
	/* a UTF-8 domain with SMTPUTF8 */
	say(s, "RSET\r\n", "250 2.0.0 Ok\r\n");
	say(s, "MAIL FROM:<a@\xc3\xa9.test> SMTPUTF8\r\n", "");
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_MAIL);
	assert_true(req.smtputf8);
	answer(s, true, NULL, "250 2.1.0 Ok\r\n");
	say(s, "RCPT TO:<b@\xc3\xa9.test>\r\n", "");
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_RCPT);
	st_smtp_server_free(s);
}

/* Pipelined commands wait behind a pending decision, answered in order */
static void test_pipelining(void **state)
{
	struct st_smtp_server_params p = {.hostname = "mx.test", .body = on_body};
	struct st_smtp_server *s = new_server(&p);
	struct st_srv_request req;
	static unsigned char flood[70000];

	(void)state;
	say(s, "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
	    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_MAIL);
	st_smtp_server_answer(s, true, NULL);
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_RCPT);
	st_smtp_server_answer(s, true, NULL);
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_DATA);
	st_smtp_server_answer(s, true, NULL);
	assert_int_equal(st_smtp_server_next(s, &req), ST_SRV_END);
	assert_string_equal(got_body, "hi\r\n");
	st_smtp_server_answer(s, true, "Q1");
	assert_string_equal(take(s), "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	                             "354 End data with <CR><LF>.<CR><LF>\r\n"
	                             "250 2.0.0 Ok: queued as Q1\r\n221 2.0.0 Bye\r\n");
	st_smtp_server_free(s);

	/* a refused DATA: what followed it is read as commands again */
	s = new_server(&p);
	say(s, "MAIL FROM:<a@b>\r\n", "");
	answer(s, true, NULL, "250 2.1.0 Ok\r\n");
	say(s, "RCPT TO:<c@d>\r\n", "");
	answer(s, true, NULL, "250 2.1.5 Ok\r\n");
	say(s, "DATA\r\nNOOP\r\n", "");
	st_smtp_server_answer(s, false, "554 5.5.1 Error: no valid recipients");
	assert_string_equal(take(s), "554 5.5.1 Error: no valid recipients\r\n250 2.0.0 Ok\r\n");
	/* input is held up to a cap while a decision is pending: then it waits (the
	 * transaction goes on after a refused DATA, as in Postfix) */
	say(s, "RCPT TO:<x@y>\r\n", "");
	assert_int_equal(st_smtp_server_next(s, NULL), ST_SRV_RCPT);
	memset(flood, 'N', sizeof(flood));
	assert_int_equal(st_smtp_server_input(s, flood, sizeof(flood)), ST_SRV_IN_MAX);
	st_smtp_server_free(s);
}

/* Limits of a message: its size (552 at the end), its text lines, its recipients */
static void test_limits(void **state)
{
	struct st_smtp_server_params p = {.hostname = "mx.test", .max_size = 20, .max_rcpt = 2,
	                                  .body = on_body};
	struct st_smtp_server *s = new_server(&p);
	char line[1100];

	(void)state;
	say(s, "MAIL FROM:<a@b>\r\n", "");
	answer(s, true, NULL, "250 2.1.0 Ok\r\n");
	say(s, "RCPT TO:<c@d>\r\n", "");
	answer(s, true, NULL, "250 2.1.5 Ok\r\n");
	say(s, "RCPT TO:<e@f>\r\n", "");
	answer(s, true, NULL, "250 2.1.5 Ok\r\n");
	say(s, "RCPT TO:<g@h>\r\n", "452 4.5.3 Error: too many recipients\r\n");
	say(s, "DATA\r\n", "");
	answer(s, true, NULL, "354 End data with <CR><LF>.<CR><LF>\r\n");
	say(s, "0123456789\r\n0123456789\r\n.\r\n", "552 5.3.4 Error: message file too big\r\n");
	assert_int_equal(st_smtp_server_next(s, NULL), ST_SRV_NONE); /* no END to decide */
	st_smtp_server_free(s);

	p.max_size = 0;
	s = new_server(&p);
	say(s, "MAIL FROM:<a@b>\r\n", "");
	answer(s, true, NULL, "250 2.1.0 Ok\r\n");
	say(s, "RCPT TO:<c@d>\r\n", "");
	answer(s, true, NULL, "250 2.1.5 Ok\r\n");
	say(s, "DATA\r\n", "");
	answer(s, true, NULL, "354 End data with <CR><LF>.<CR><LF>\r\n");
	memset(line, 'L', sizeof(line));
	memcpy(line + sizeof(line) - 8, "\r\n.\r\n", 6);
	say(s, line, "500 5.5.2 Error: message line longer than 1000 bytes\r\n");
	say(s, "NOOP\r\n", "250 2.0.0 Ok\r\n");
	st_smtp_server_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transaction),    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_starttls),       cmocka_unit_test(test_auth),
	    cmocka_unit_test(test_pipelining),     cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_address_syntax),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
