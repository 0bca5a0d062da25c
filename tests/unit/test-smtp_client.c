/* test-smtp_client.c: unit tests of lib/smtp_client: reply parsing, hostile replies, EHLO capabilities */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_client.h"

/* Feed a whole string; returns the parser's result and fills out/used. */
static int feed(struct st_smtp_parser *p, const char *s, size_t *used, struct st_smtp_reply *out,
                struct st_error *err)
{
	return st_smtp_parser_feed(p, (const unsigned char *)s, strlen(s), used, out, err);
}

static void test_single_and_multi(void **state)
{
	struct st_smtp_parser p;
	struct st_smtp_reply r;
	struct st_error err;
	size_t used;
	char *text;
	const char *ehlo = "250-mx.example.com Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	                   "250-STARTTLS\r\n250 8BITMIME\r\n";

	(void)state;
	st_smtp_parser_init(&p);
	assert_int_equal(feed(&p, "220 mx.example.com ESMTP Postfix\r\n", &used, &r, &err), 1);
	assert_int_equal(r.code, 220);
	assert_int_equal(r.n_lines, 1);
	assert_string_equal(r.lines[0], "mx.example.com ESMTP Postfix");
	st_smtp_reply_release(&r);

	assert_int_equal(feed(&p, ehlo, &used, &r, &err), 1);
	assert_int_equal(used, strlen(ehlo));
	assert_int_equal(r.code, 250);
	assert_int_equal(r.n_lines, 5);
	assert_string_equal(r.lines[4], "8BITMIME");
	text = st_smtp_reply_text(&r);
	assert_string_equal(text, "250-mx.example.com Hello\n250-PIPELINING\n250-SIZE 10240000\n"
	                          "250-STARTTLS\n250 8BITMIME");
	free(text);
	st_smtp_reply_release(&r);

	/* a bare code is a complete last line; a bare LF ends a line too */
	assert_int_equal(feed(&p, "250\n", &used, &r, &err), 1);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.lines[0], "");
	st_smtp_reply_release(&r);

	/* enhanced status codes */
	assert_int_equal(feed(&p, "554 5.7.1 <a@b>: Relay access denied\r\n", &used, &r, &err), 1);
	assert_string_equal(r.enhanced, "5.7.1");
	st_smtp_reply_release(&r);
	assert_int_equal(feed(&p, "250 2.1.5 Ok\r\n", &used, &r, &err), 1);
	assert_string_equal(r.enhanced, "2.1.5");
	st_smtp_reply_release(&r);
	assert_int_equal(feed(&p, "250 2.1.55555 x\r\n", &used, &r, &err), 1);
	assert_string_equal(r.enhanced, "");
	st_smtp_reply_release(&r);
	assert_int_equal(
	    feed(&p, "421 4.7.1 mx Error: No client certificate presented\r\n", &used, &r, &err),
	    1);
	assert_int_equal(r.code, 421);
	assert_string_equal(r.enhanced, "4.7.1");
	st_smtp_reply_release(&r);
	st_smtp_parser_release(&p);
}

static void test_byte_by_byte(void **state)
{
	const char *s = "250-first\r\n250-second\r\n250 third\r\n";
	struct st_smtp_parser p;
	struct st_smtp_reply r;
	struct st_error err;
	size_t i, used;
	int rc = 0;

	(void)state;
	st_smtp_parser_init(&p);
	for (i = 0; s[i]; i++) {
		rc = st_smtp_parser_feed(&p, (const unsigned char *)s + i, 1, &used, &r, &err);
		assert_int_equal(used, 1);
		if (s[i + 1])
			assert_int_equal(rc, 0);
	}
	assert_int_equal(rc, 1);
	assert_int_equal(r.n_lines, 3);
	assert_string_equal(r.lines[1], "second");
	st_smtp_reply_release(&r);
	st_smtp_parser_release(&p);
}

/* bytes after a complete reply are left for the caller: after STARTTLS's 220, an injection */
static void test_trailing_bytes(void **state)
{
	const char *s = "220 2.0.0 Ready to start TLS\r\n250 injected\r\n";
	struct st_smtp_parser p;
	struct st_smtp_reply r;
	struct st_error err;
	size_t used;

	(void)state;
	st_smtp_parser_init(&p);
	assert_int_equal(feed(&p, s, &used, &r, &err), 1);
	assert_int_equal(used, strlen("220 2.0.0 Ready to start TLS\r\n"));
	assert_string_equal(s + used, "250 injected\r\n");
	st_smtp_reply_release(&r);
	st_smtp_parser_release(&p);
}

static const struct {
	const char *in;
	int rc;
	const char *msg;
} bad_cases[] = {
    {"hello\r\n", ST_E_PARSE, "malformed reply line 'hello'"},
    {"25\r\n", ST_E_PARSE, "malformed reply line '25'"},
    {"2500 x\r\n", ST_E_PARSE, "malformed reply line"},
    {"250_x\r\n", ST_E_PARSE, "malformed reply line"},
    {"150 x\r\n", ST_E_PARSE, "malformed reply line"}, /* 1yz is not SMTP */
    {"650 x\r\n", ST_E_PARSE, "malformed reply line"},
    {"260 x\r\n", ST_E_PARSE, "malformed reply line"}, /* second digit 0-5 */
    {"\r\n", ST_E_PARSE, "malformed reply line ''"},
    {"250-a\r\n251 b\r\n", ST_E_PARSE, "reply code changes from 250 to 251"},
    {"\x1b[31m x\r\n", ST_E_PARSE, "malformed reply line '?[31m x'"},
};

static void test_bad_replies(void **state)
{
	struct st_smtp_parser p;
	struct st_smtp_reply r;
	struct st_error err;
	size_t i, used;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		st_smtp_parser_init(&p);
		assert_int_equal(feed(&p, bad_cases[i].in, &used, &r, &err), bad_cases[i].rc);
		assert_int_equal(err.cls, ST_ERR_PROTOCOL);
		if (!strstr(err.msg, bad_cases[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad_cases[i].msg);
		st_smtp_parser_release(&p);
	}
}

static void test_caps_on_hostile_size(void **state)
{
	struct st_smtp_parser p;
	struct st_smtp_reply r;
	struct st_error err;
	size_t used, i;
	char *big;
	int rc = 0;

	(void)state;
	/* a line over the cap */
	big = malloc(ST_SMTP_LINE_MAX + 16);
	assert_non_null(big);
	memcpy(big, "250 ", 4);
	memset(big + 4, 'x', ST_SMTP_LINE_MAX + 10);
	big[ST_SMTP_LINE_MAX + 14] = '\0';
	st_smtp_parser_init(&p);
	assert_int_equal(feed(&p, big, &used, &r, &err), ST_E_TOOBIG);
	assert_non_null(strstr(err.msg, "reply line longer than 4096 bytes"));
	assert_true(used <= ST_SMTP_LINE_MAX + 1);
	st_smtp_parser_release(&p);
	free(big);

	/* an endless multi-line reply */
	st_smtp_parser_init(&p);
	for (i = 0; i <= ST_SMTP_LINES_MAX && rc == 0; i++)
		rc = feed(&p, "250-again\r\n", &used, &r, &err);
	assert_int_equal(rc, ST_E_TOOBIG);
	assert_non_null(strstr(err.msg, "more than 256 lines"));
	st_smtp_parser_release(&p);

	/* NUL and control bytes are shown as '?' */
	st_smtp_parser_init(&p);
	assert_int_equal(st_smtp_parser_feed(&p,
	                                     (const unsigned char *)"250 a\0b\x07"
	                                                            "c\r\n",
	                                     11, &used, &r, &err),
	                 1);
	assert_string_equal(r.lines[0], "a?b?c");
	assert_true(p.bad_bytes);
	st_smtp_reply_release(&r);
	st_smtp_parser_release(&p);
}

static void test_caps(void **state)
{
	const char *s = "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	                "250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN login\r\n"
	                "250-AUTH=LOGIN CRAM-MD5\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
	                "250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";
	struct st_smtp_parser p;
	struct st_smtp_reply r;
	struct st_smtp_caps c;
	struct st_error err;
	size_t used;

	(void)state;
	st_smtp_parser_init(&p);
	assert_int_equal(feed(&p, s, &used, &r, &err), 1);
	assert_int_equal(st_smtp_caps_parse(&r, &c), 0);
	assert_true(c.starttls && c.pipelining && c.size && c.eightbitmime && c.smtputf8);
	assert_true(c.chunking && c.enhancedstatuscodes && c.dsn);
	assert_false(c.requiretls);
	assert_int_equal(c.max_size, 10240000);
	assert_string_equal(c.auth, "PLAIN LOGIN CRAM-MD5");
	assert_int_equal(c.n_keywords, 12);
	assert_string_equal(c.keywords[0], "PIPELINING");
	st_smtp_caps_release(&c);
	st_smtp_reply_release(&r);

	/* a HELO-style one-line reply offers nothing; STARTTLSX is not STARTTLS */
	assert_int_equal(feed(&p, "250-mx\r\n250 STARTTLSX\r\n", &used, &r, &err), 1);
	assert_int_equal(st_smtp_caps_parse(&r, &c), 0);
	assert_false(c.starttls);
	st_smtp_caps_release(&c);
	st_smtp_reply_release(&r);
	st_smtp_parser_release(&p);
}

/* ---- the session ---- */

/* Take what the session wants to send, as a string, and mark it sent. */
static char *take_output(struct st_smtp_client *c)
{
	size_t n;
	const unsigned char *o = st_smtp_client_output(c, &n);
	char *s = malloc(n + 1);

	assert_non_null(s);
	memcpy(s, o, n);
	s[n] = '\0';
	st_smtp_client_sent(c, n);
	return s;
}

/* The server says reply; the session must then send want_out (NULL: nothing). */
static void step(struct st_smtp_client *c, const char *reply, const char *want_out)
{
	size_t n = strlen(reply);
	char *out;

	assert_int_equal(st_smtp_client_input(c, (const unsigned char *)reply, n), n);
	if (!want_out)
		return;
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_WRITE);
	out = take_output(c);
	assert_string_equal(out, want_out);
	free(out);
}

static char transcript[4096];

static void log_line(void *arg, char dir, bool tls, const char *line)
{
	size_t n = strlen(transcript);

	(void)arg;
	snprintf(transcript + n, sizeof(transcript) - n, "%c%s %s\n", dir, tls ? "~" : "", line);
}

static const char *ehlo_tls_offered = "250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
static const char *ehlo_after_tls = "250-mx.example\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n";

/* the user types after EHLO: lines go out as they are, one command per reply, a
 * message after 354 without waiting, nothing in a line is a command to us */
static void user(struct st_smtp_client *c, const char *line, const char *want_out)
{
	char *out;

	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_LINE);
	assert_int_equal(st_smtp_client_user_line(c, line, strlen(line)), 0);
	out = take_output(c);
	assert_string_equal(out, want_out);
	free(out);
}

/* A session over implicit TLS, past its banner and EHLO. */
static struct st_smtp_client *opened(const struct st_smtp_client_params *p)
{
	struct st_smtp_client *c = st_smtp_client_new(p);

	assert_non_null(c);
	step(c, "220 mx.example ESMTP\r\n", "EHLO client.example\r\n");
	step(c, ehlo_after_tls, NULL);
	return c;
}

static void test_session_interactive(void **state)
{
	struct st_smtp_client_params p = {.mode = ST_SMTP_IMPLICIT,
	                                  .ehlo_name = "client.example",
	                                  .mail_from = "ignored@client.example",
	                                  .interactive = true,
	                                  .log = log_line};
	struct st_smtp_client *c;
	const struct st_smtp_result *r;
	char big[ST_SMTP_LINE_MAX + 2];

	(void)state;
	transcript[0] = '\0';
	c = opened(&p);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_LINE); /* not MAIL: the user */
	assert_int_equal(st_smtp_client_result(c)->stage, ST_SMTP_STAGE_INTERACTIVE);
	/* "R..." and "Q..." are commands for the server, not for us */
	user(c, "RCPT TO:<x@example.org>", "RCPT TO:<x@example.org>\r\n");
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_READ); /* its reply first */
	assert_int_equal(st_smtp_client_user_line(c, "NOOP", 4), ST_E_INVALID);
	step(c, "503 5.5.1 Error: need MAIL command\r\n", NULL);
	user(c, "Quite a line\r\n", "Quite a line\r\n"); /* the line end is ours */
	step(c, "502 5.5.2 Error: command not recognized\r\n", NULL);
	user(c, "MAIL FROM:<a@client.example>", "MAIL FROM:<a@client.example>\r\n");
	step(c, "250 2.1.0 Ok\r\n", NULL);
	user(c, "rcpt to:<b@mx.example>", "rcpt to:<b@mx.example>\r\n");
	step(c, "250 2.1.5 Ok\r\n", NULL);
	user(c, "data", "data\r\n");
	step(c, "354 End data with <CR><LF>.<CR><LF>\r\n", NULL);
	/* the message: no reply awaited, "QUIT" in it is text */
	user(c, "Subject: hi", "Subject: hi\r\n");
	user(c, "", "\r\n");
	user(c, "QUIT", "QUIT\r\n");
	user(c, ".", ".\r\n");
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_READ);
	step(c, "250 2.0.0 Ok: queued as 4Xyz\r\n", NULL);
	/* a line over the cap is refused, nothing sent */
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(st_smtp_client_user_line(c, big, strlen(big)), ST_E_TOOBIG);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_LINE);
	/* the input ends: QUIT, then close */
	st_smtp_client_user_eof(c);
	{
		char *o = take_output(c);
		assert_string_equal(o, "QUIT\r\n");
		free(o);
	}
	step(c, "221 2.0.0 Bye\r\n", NULL);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_CLOSE);
	r = st_smtp_client_result(c);
	assert_false(r->failed);
	assert_int_equal(r->mail.code, 0); /* the engine's own MAIL never went out */
	assert_non_null(strstr(transcript, ">~ RCPT TO:<x@example.org>\n<~ 503 5.5.1"));
	assert_non_null(strstr(transcript, ">~ QUIT\n>~ .\n<~ 250 2.0.0 Ok: queued"));
	st_smtp_client_free(c);

	/* the user's QUIT ends it; the input ending inside a message sends nothing more */
	c = opened(&p);
	user(c, "QUIT", "QUIT\r\n");
	step(c, "221 2.0.0 Bye\r\n", NULL);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_CLOSE);
	assert_false(st_smtp_client_result(c)->failed);
	st_smtp_client_free(c);
	c = opened(&p);
	user(c, "DATA", "DATA\r\n");
	/* the input ends before the 354: then the message is empty and unfinished */
	st_smtp_client_user_eof(c);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_READ);
	step(c, "354 go ahead\r\n", NULL);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_CLOSE);
	r = st_smtp_client_result(c);
	assert_true(r->failed);
	assert_non_null(strstr(r->error.msg, "inside a message"));
	st_smtp_client_free(c);
	/* held (the certificate failed the level): EHLO, then QUIT; no line of the user's */
	c = st_smtp_client_new(&p);
	step(c, "220 mx.example ESMTP\r\n", "EHLO client.example\r\n");
	st_smtp_client_hold(c, "the server certificate does not meet --level verify");
	step(c, ehlo_after_tls, "QUIT\r\n");
	step(c, "221 2.0.0 Bye\r\n", NULL);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_CLOSE);
	assert_true(st_smtp_client_result(c)->held);
	assert_string_equal(st_smtp_client_result(c)->held_why,
	                    "the server certificate does not meet --level verify");
	st_smtp_client_free(c);
	/* a 421 ends it at once */
	c = opened(&p);
	user(c, "NOOP", "NOOP\r\n");
	step(c, "421 4.4.2 mx.example Error: timeout exceeded\r\n", NULL);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_CLOSE);
	st_smtp_client_free(c);
}

static void test_session_starttls_relay(void **state)
{
	const char *rcpt[] = {"x@elsewhere.example", "y@mx.example"};
	struct st_smtp_client_params p = {.mode = ST_SMTP_STARTTLS,
	                                  .ehlo_name = "client.example",
	                                  .tls_optional = false,
	                                  .mail_from = "a@client.example",
	                                  .rcpt = rcpt,
	                                  .n_rcpt = 2,
	                                  .data = NULL,
	                                  .data_len = 0,
	                                  .log = log_line,
	                                  .log_arg = NULL};
	struct st_smtp_client *c;
	const struct st_smtp_result *r;

	(void)state;
	transcript[0] = '\0';
	c = st_smtp_client_new(&p);
	assert_non_null(c);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_READ);
	step(c, "220 mx.example ESMTP\r\n", "EHLO client.example\r\n");
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_READ);
	step(c, ehlo_tls_offered, "STARTTLS\r\n");
	step(c, "220 2.0.0 Ready to start TLS\r\n", NULL);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_TLS);
	st_smtp_client_tls_up(c, true, NULL);
	{
		char *o = take_output(c);
		assert_string_equal(o, "EHLO client.example\r\n");
		free(o);
	}
	step(c, ehlo_after_tls, "MAIL FROM:<a@client.example>\r\n");
	step(c, "250 2.1.0 Ok\r\n", "RCPT TO:<x@elsewhere.example>\r\n");
	step(c, "554 5.7.1 <x@elsewhere.example>: Relay access denied\r\n",
	     "RCPT TO:<y@mx.example>\r\n");
	step(c, "250 2.1.5 Ok\r\n", "RSET\r\n");
	step(c, "250 2.0.0 Ok\r\n", "QUIT\r\n");
	step(c, "221 2.0.0 Bye\r\n", NULL);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_CLOSE);
	r = st_smtp_client_result(c);
	assert_false(r->failed);
	assert_int_equal(r->stage, ST_SMTP_STAGE_DONE);
	assert_true(r->tls_up);
	assert_true(r->caps.starttls);
	assert_false(r->caps_tls.starttls);
	assert_string_equal(r->caps_tls.auth, "PLAIN");
	assert_int_equal(r->n_rcpt, 2);
	assert_int_equal(r->rcpt[0].code, 554);
	assert_string_equal(r->rcpt[0].enhanced, "5.7.1");
	assert_int_equal(r->rcpt[1].code, 250);
	assert_int_equal(r->injected, 0);
	/* the transcript marks which side of STARTTLS each line is on */
	assert_non_null(strstr(transcript, "> STARTTLS\n< 220 2.0.0 Ready to start TLS\n>~ EHLO"));
	assert_non_null(
	    strstr(transcript, "<~ 554 5.7.1 <x@elsewhere.example>: Relay access denied\n"));
	st_smtp_client_free(c);
}

static void test_session_injection(void **state)
{
	struct st_smtp_client_params p = {.mode = ST_SMTP_STARTTLS,
	                                  .ehlo_name = "c",
	                                  .tls_optional = false,
	                                  .mail_from = NULL,
	                                  .rcpt = NULL,
	                                  .n_rcpt = 0,
	                                  .data = NULL,
	                                  .data_len = 0,
	                                  .log = NULL,
	                                  .log_arg = NULL};
	struct st_smtp_client *c = st_smtp_client_new(&p);
	char *o;

	(void)state;
	step(c, "220 mx\r\n", "EHLO c\r\n");
	step(c, ehlo_tls_offered, "STARTTLS\r\n");
	/* the 220 and, in the same read, a reply nobody asked for */
	step(c, "220 Ready\r\n250-injected\r\n250 x\r\n", NULL);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_TLS);
	assert_int_equal(st_smtp_client_result(c)->injected, strlen("250-injected\r\n250 x\r\n"));
	st_smtp_client_tls_up(c, true, NULL);
	o = take_output(c);
	assert_string_equal(o, "EHLO c\r\n");
	free(o);
	/* the injected reply is not taken as the answer to the new EHLO */
	step(c, "250 mx\r\n", "QUIT\r\n");
	assert_int_equal(st_smtp_client_result(c)->ehlo_tls.code, 250);
	assert_string_equal(st_smtp_client_result(c)->ehlo_tls.lines[0], "mx");
	st_smtp_client_free(c);

	/* replies to commands not yet sent (the banner, the EHLO reply and the STARTTLS
	 * 220 in one read) are refused: the session must not start TLS unasked */
	c = st_smtp_client_new(&p);
	assert_int_equal(st_smtp_client_input(c, (const unsigned char *)"220 mx\r\n250 STARTTLS\r\n220 go\r\n", 30), 30);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_CLOSE);
	assert_true(st_smtp_client_result(c)->failed);
	assert_int_equal(st_smtp_client_result(c)->error.cls, ST_ERR_PROTOCOL);
	assert_string_equal(st_smtp_client_result(c)->error.msg,
	                    "the server sent 22 bytes before our next command (unrequested pipelining)");
	st_smtp_client_free(c);
}

static void test_session_failures(void **state)
{
	struct st_smtp_client_params p = {.mode = ST_SMTP_STARTTLS,
	                                  .ehlo_name = "c",
	                                  .tls_optional = false,
	                                  .mail_from = NULL,
	                                  .rcpt = NULL,
	                                  .n_rcpt = 0,
	                                  .data = NULL,
	                                  .data_len = 0,
	                                  .log = NULL,
	                                  .log_arg = NULL};
	const struct st_smtp_result *r;
	struct st_smtp_client *c;

	(void)state;
	/* STARTTLS not offered: a TLS failure, and QUIT */
	c = st_smtp_client_new(&p);
	step(c, "220 mx\r\n", "EHLO c\r\n");
	step(c, "250-mx\r\n250 PIPELINING\r\n", "QUIT\r\n");
	r = st_smtp_client_result(c);
	assert_true(r->failed);
	assert_int_equal(r->error.cls, ST_ERR_TLS);
	assert_string_equal(r->error.msg, "STARTTLS not offered");
	st_smtp_client_free(c);

	/* ... unless TLS is optional: on in plaintext */
	p.tls_optional = true;
	p.mail_from = "a@b";
	c = st_smtp_client_new(&p);
	step(c, "220 mx\r\n", "EHLO c\r\n");
	step(c, "250-mx\r\n250 PIPELINING\r\n", "MAIL FROM:<a@b>\r\n");
	assert_false(st_smtp_client_result(c)->failed);
	st_smtp_client_free(c);
	p.tls_optional = false;
	p.mail_from = NULL;

	/* a banner that refuses */
	c = st_smtp_client_new(&p);
	step(c, "554 5.7.1 go away\r\n", "QUIT\r\n");
	r = st_smtp_client_result(c);
	assert_int_equal(r->error.cls, ST_ERR_REJECTED);
	assert_string_equal(r->error.msg, "the server refused the session: 554 5.7.1 go away");
	st_smtp_client_free(c);

	/* smtpd_tls_req_ccert: 421 after the handshake, then the server closes: no QUIT */
	c = st_smtp_client_new(&p);
	step(c, "220 mx\r\n", "EHLO c\r\n");
	step(c, ehlo_tls_offered, "STARTTLS\r\n");
	step(c, "220 Ready\r\n", NULL);
	st_smtp_client_tls_up(c, true, NULL);
	free(take_output(c));
	step(c, "421 4.7.1 mx Error: No client certificate presented\r\n", NULL);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_CLOSE);
	r = st_smtp_client_result(c);
	assert_int_equal(r->error.cls, ST_ERR_REJECTED);
	assert_string_equal(r->error.msg,
	                    "EHLO after STARTTLS refused: 421 4.7.1 mx Error: No client "
	                    "certificate presented");
	st_smtp_client_free(c);

	/* STARTTLS refused */
	c = st_smtp_client_new(&p);
	step(c, "220 mx\r\n", "EHLO c\r\n");
	step(c, ehlo_tls_offered, "STARTTLS\r\n");
	step(c, "454 4.7.0 TLS not available due to local problem\r\n", "QUIT\r\n");
	assert_int_equal(st_smtp_client_result(c)->error.cls, ST_ERR_TLS);
	st_smtp_client_free(c);

	/* a failed handshake */
	c = st_smtp_client_new(&p);
	step(c, "220 mx\r\n", "EHLO c\r\n");
	step(c, ehlo_tls_offered, "STARTTLS\r\n");
	step(c, "220 Ready\r\n", NULL);
	st_smtp_client_tls_up(c, false, "handshake failure");
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_CLOSE);
	assert_string_equal(st_smtp_client_result(c)->error.msg,
	                    "TLS handshake failed: handshake failure");
	st_smtp_client_free(c);

	/* garbage instead of a reply */
	c = st_smtp_client_new(&p);
	step(c, "HTTP/1.1 400 Bad Request\r\n", NULL);
	assert_int_equal(st_smtp_client_want(c), ST_SMTP_WANT_CLOSE);
	assert_int_equal(st_smtp_client_result(c)->error.cls, ST_ERR_PROTOCOL);
	st_smtp_client_free(c);

	/* the server hangs up mid-session */
	c = st_smtp_client_new(&p);
	step(c, "220 mx\r\n", "EHLO c\r\n");
	st_smtp_client_eof(c, NULL);
	assert_string_equal(st_smtp_client_result(c)->error.msg, "connection closed during ehlo");
	st_smtp_client_free(c);

	/* EHLO refused: HELO */
	p.mode = ST_SMTP_PLAIN;
	c = st_smtp_client_new(&p);
	step(c, "220 mx\r\n", "EHLO c\r\n");
	step(c, "502 5.5.2 Error: command not recognized\r\n", "HELO c\r\n");
	step(c, "250 mx\r\n", "QUIT\r\n");
	assert_true(st_smtp_client_result(c)->used_helo);
	assert_false(st_smtp_client_result(c)->failed);
	st_smtp_client_free(c);
}

static void test_session_data(void **state)
{
	const char *rcpt[] = {"b@mx.example"};
	/* LF, CRLF and bare CR line ends; dots at line starts; a bare CR before a dot (the
	 * smuggling pattern) leaves as a whole line end, its dot stuffed */
	const char *msg = "Subject: t\n\r\n.hidden line\rx\r.\rlast";
	struct st_smtp_client_params p = {.mode = ST_SMTP_IMPLICIT,
	                                  .ehlo_name = "c",
	                                  .tls_optional = false,
	                                  .mail_from = "a@c",
	                                  .rcpt = rcpt,
	                                  .n_rcpt = 1,
	                                  .data = msg,
	                                  .data_len = strlen(msg),
	                                  .log = NULL,
	                                  .log_arg = NULL};
	struct st_smtp_client *c = st_smtp_client_new(&p);

	(void)state;
	/* implicit TLS: the banner comes over TLS, no STARTTLS */
	step(c, "220 mx\r\n", "EHLO c\r\n");
	step(c, ehlo_tls_offered, "MAIL FROM:<a@c>\r\n");
	step(c, "250 ok\r\n", "RCPT TO:<b@mx.example>\r\n");
	step(c, "250 ok\r\n", "DATA\r\n");
	step(c, "354 End data with <CR><LF>.<CR><LF>\r\n",
	     "Subject: t\r\n\r\n..hidden line\r\nx\r\n..\r\nlast\r\n.\r\n");
	step(c, "250 2.0.0 Ok: queued as ABC\r\n", "QUIT\r\n");
	step(c, "221 bye\r\n", NULL);
	assert_false(st_smtp_client_result(c)->failed);
	assert_int_equal(st_smtp_client_result(c)->data_end.code, 250);
	assert_int_equal(st_smtp_client_result(c)->stage, ST_SMTP_STAGE_DONE);
	st_smtp_client_free(c);
}

static void test_session_auth(void **state)
{
	struct st_smtp_client_params p = {.mode = ST_SMTP_STARTTLS,
	                                  .ehlo_name = "c",
	                                  .tls_optional = false,
	                                  .mail_from = NULL,
	                                  .rcpt = NULL,
	                                  .n_rcpt = 0,
	                                  .data = NULL,
	                                  .data_len = 0,
	                                  .auth_user = "user",
	                                  .auth_pass = "secret",
	                                  .auth_mech = NULL,
	                                  .auth_plaintext = false,
	                                  .log = log_line,
	                                  .log_arg = NULL};
	struct st_smtp_client *c;
	const struct st_smtp_result *r;
	char *o;

	(void)state;
	/* PLAIN, preferred when offered */
	transcript[0] = '\0';
	c = st_smtp_client_new(&p);
	step(c, "220 mx\r\n", "EHLO c\r\n");
	step(c, ehlo_tls_offered, "STARTTLS\r\n");
	step(c, "220 Ready\r\n", NULL);
	st_smtp_client_tls_up(c, true, NULL);
	o = take_output(c);
	free(o);
	step(c, "250-mx\r\n250 AUTH LOGIN PLAIN\r\n", "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n");
	step(c, "235 2.7.0 Authentication successful\r\n", "QUIT\r\n");
	r = st_smtp_client_result(c);
	assert_true(r->auth_ok);
	assert_string_equal(r->auth_mech, "PLAIN");
	/* the secret never reaches the transcript, not even in base64 */
	assert_null(strstr(transcript, "secret"));
	assert_null(strstr(transcript, "AHVzZXIAc2VjcmV0"));
	assert_non_null(strstr(transcript, "AUTH PLAIN (credentials hidden)"));
	st_smtp_client_free(c);

	/* LOGIN when PLAIN is not offered */
	transcript[0] = '\0';
	c = st_smtp_client_new(&p);
	step(c, "220 mx\r\n", "EHLO c\r\n");
	step(c, ehlo_tls_offered, "STARTTLS\r\n");
	step(c, "220 Ready\r\n", NULL);
	st_smtp_client_tls_up(c, true, NULL);
	free(take_output(c));
	step(c, "250-mx\r\n250 AUTH LOGIN\r\n", "AUTH LOGIN\r\n");
	step(c, "334 VXNlcm5hbWU6\r\n", "dXNlcg==\r\n");
	step(c, "334 UGFzc3dvcmQ6\r\n", "c2VjcmV0\r\n");
	step(c, "535 5.7.8 Error: authentication failed\r\n", "QUIT\r\n");
	r = st_smtp_client_result(c);
	assert_false(r->auth_ok);
	assert_true(r->failed);
	assert_int_equal(r->error.cls, ST_ERR_REJECTED);
	assert_string_equal(r->error.msg, "AUTH failed: 535 5.7.8 Error: authentication failed");
	assert_null(strstr(transcript, "c2VjcmV0"));
	st_smtp_client_free(c);

	/* never before TLS unless asked */
	p.mode = ST_SMTP_PLAIN;
	c = st_smtp_client_new(&p);
	step(c, "220 mx\r\n", "EHLO c\r\n");
	step(c, "250-mx\r\n250 AUTH PLAIN\r\n", "QUIT\r\n");
	assert_non_null(strstr(st_smtp_client_result(c)->error.msg, "no TLS"));
	st_smtp_client_free(c);
	p.auth_plaintext = true;
	c = st_smtp_client_new(&p);
	step(c, "220 mx\r\n", "EHLO c\r\n");
	step(c, "250-mx\r\n250 AUTH PLAIN\r\n", "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n");
	/* an unexpected challenge is cancelled once; a server that keeps challenging
	 * is given up on, not answered forever */
	step(c, "334 more?\r\n", "*\r\n");
	step(c, "334 more?\r\n", "QUIT\r\n");
	r = st_smtp_client_result(c);
	assert_false(r->auth_ok);
	assert_int_equal(r->error.cls, ST_ERR_REJECTED);
	assert_string_equal(r->error.msg, "AUTH not cancelled by the server: 334 more?");
	st_smtp_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_and_multi),       cmocka_unit_test(test_byte_by_byte),
	    cmocka_unit_test(test_trailing_bytes),         cmocka_unit_test(test_bad_replies),
	    cmocka_unit_test(test_caps_on_hostile_size),   cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_session_starttls_relay),
	    cmocka_unit_test(test_session_interactive), cmocka_unit_test(test_session_injection),
	    cmocka_unit_test(test_session_failures),       cmocka_unit_test(test_session_data),
	    cmocka_unit_test(test_session_auth),
	};
	return cmocka_run_group_tests_name("smtp_client", tests, NULL, NULL);
}
