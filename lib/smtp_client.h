/* smtp_client.h: the SMTP client engine, sans I/O: reply parsing and EHLO capabilities */
#ifndef ST_SMTP_CLIENT_H
#define ST_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/*
 * Caps on what a server may make us hold. RFC 5321 4.5.3.1.5 gives 512
 * octets for a reply line; real servers stay below it, so 4 KiB leaves room
 * and still bounds a hostile one. 256 lines covers any honest EHLO reply.
 */
#define ST_SMTP_LINE_MAX  4096
#define ST_SMTP_LINES_MAX 256

/* One reply: its code and its lines' text (after "NNN-" or "NNN "). */
struct st_smtp_reply {
	int code;     /* 200..599 */
	char **lines; /* owned, sanitised for terminals, NUL-terminated */
	size_t n_lines;
	char enhanced[16]; /* the enhanced status code of the first line ("5.7.1"), or "" */
};

/* Free what a reply holds; it is then empty. */
void st_smtp_reply_release(struct st_smtp_reply *r);

/* The reply as text: lines joined by "\n" with their code, as the server sent them (owned by the caller). */
char *st_smtp_reply_text(const struct st_smtp_reply *r);

/* Collects reply lines from bytes as they come. */
struct st_smtp_parser {
	struct st_buf line;       /* the line being read */
	struct st_smtp_reply cur; /* the reply being read */
	bool in_reply;
	bool bad_bytes; /* a line held NUL or bare CR bytes (sanitised) */
};

void st_smtp_parser_init(struct st_smtp_parser *p);
void st_smtp_parser_release(struct st_smtp_parser *p);

/*
 * Feed bytes. Consumes up to the end of the first complete reply and
 * returns 1 with *out filled (owned by the caller), *used telling how many
 * bytes were taken: what follows belongs to the next reply (or, after a
 * STARTTLS 220, to nobody: an injection attempt). Returns 0 when all bytes
 * were taken and the reply is not complete, or a negative ST_E_* with err
 * (class ST_ERR_PROTOCOL) naming what is wrong: a line over
 * ST_SMTP_LINE_MAX, more than ST_SMTP_LINES_MAX lines, a line that is not
 * "NNN-text" or "NNN text", a code that changes inside a reply.
 */
int st_smtp_parser_feed(struct st_smtp_parser *p, const unsigned char *data, size_t len,
                        size_t *used, struct st_smtp_reply *out, struct st_error *err);

/* What an EHLO reply offers. */
struct st_smtp_caps {
	bool starttls, pipelining, size, eightbitmime, smtputf8, chunking, enhancedstatuscodes;
	bool requiretls, dsn, binarymime;
	unsigned long max_size; /* SIZE's argument, 0 when none */
	char auth[256];         /* AUTH mechanisms, space separated, upper case; "" when none */
	char **keywords;        /* every keyword line as sent, sanitised */
	size_t n_keywords;
};

/* Read the capabilities of an EHLO reply (its first line is the greeting, not a keyword). */
int st_smtp_caps_parse(const struct st_smtp_reply *ehlo, struct st_smtp_caps *caps);

void st_smtp_caps_release(struct st_smtp_caps *caps);

/* ---- the client session, sans I/O ---- */

enum st_smtp_mode {
	ST_SMTP_STARTTLS, /* plaintext, then STARTTLS */
	ST_SMTP_IMPLICIT, /* TLS from the first byte (port 465): the caller shakes hands first */
	ST_SMTP_PLAIN,    /* no TLS at all */
};

/* What the session needs from its caller next. */
enum st_smtp_want {
	ST_SMTP_WANT_READ,  /* bytes from the server (st_smtp_client_input) */
	ST_SMTP_WANT_WRITE, /* bytes to send (st_smtp_client_output, then st_smtp_client_sent) */
	ST_SMTP_WANT_TLS,   /* the TLS handshake, then st_smtp_client_tls_up */
	ST_SMTP_WANT_CLOSE, /* the session is over: close the connection */
	ST_SMTP_WANT_LINE,  /* interactive: a line from the user (st_smtp_client_user_line) */
};

/* What a session does. Strings are borrowed for the session's life. */
struct st_smtp_client_params {
	enum st_smtp_mode mode;
	const char *ehlo_name;
	bool tls_optional;       /* STARTTLS not offered: go on in plaintext instead of failing */
	const char *mail_from;   /* NULL: stop after EHLO (and TLS) */
	const char *const *rcpt; /* RCPT TO addresses, after MAIL */
	size_t n_rcpt;
	const char *data; /* message to send with DATA (dot-stuffed here); NULL: RSET */
	size_t data_len;
	/* AUTH after EHLO (after TLS, unless auth_plaintext): PLAIN or LOGIN, NULL: PLAIN when
	 * offered, else LOGIN. The secret never reaches the transcript. */
	const char *auth_user;
	const char *auth_pass;
	const char *auth_mech;
	bool auth_plaintext;
	/* interactive: after EHLO (after TLS) and AUTH, instead of MAIL, the user's lines
	 * are sent as they are, one command at a time, each reply shown in the transcript */
	bool interactive;
	/* transcript: every line sent ('>') and received ('<'), tls telling which side of STARTTLS */
	void (*log)(void *arg, char dir, bool tls, const char *line);
	void *log_arg;
};

/* Where a session stopped. */
enum st_smtp_stage {
	ST_SMTP_STAGE_BANNER,
	ST_SMTP_STAGE_EHLO,
	ST_SMTP_STAGE_STARTTLS,
	ST_SMTP_STAGE_TLS,
	ST_SMTP_STAGE_EHLO_TLS,
	ST_SMTP_STAGE_AUTH,
	ST_SMTP_STAGE_MAIL,
	ST_SMTP_STAGE_RCPT,
	ST_SMTP_STAGE_DATA,
	ST_SMTP_STAGE_QUIT,
	ST_SMTP_STAGE_DONE,
	ST_SMTP_STAGE_INTERACTIVE,
};

/* "banner", "ehlo", ... */
const char *st_smtp_stage_name(enum st_smtp_stage s);

/* What a session saw. Replies are empty (code 0) when the stage was not reached. */
struct st_smtp_result {
	struct st_smtp_reply banner, ehlo, starttls, ehlo_tls, auth, mail, data, data_end, quit;
	bool auth_ok;               /* AUTH succeeded (235) */
	char auth_mech[16];         /* the mechanism used, or "" */
	struct st_smtp_reply *rcpt; /* n_rcpt replies */
	size_t n_rcpt;
	struct st_smtp_caps caps, caps_tls;
	bool used_helo;           /* EHLO was refused and HELO used */
	bool held;                /* st_smtp_client_hold: nothing after EHLO went out */
	char held_why[256];
	bool tls_up;              /* the TLS handshake was reported done */
	size_t injected;          /* bytes the server sent after its STARTTLS 220, before TLS */
	enum st_smtp_stage stage; /* the last stage reached */
	bool failed;
	struct st_error error; /* why it failed: class rejected (a reply), protocol, tls */
};

struct st_smtp_client;

/* A new session (NULL when out of memory). For ST_SMTP_IMPLICIT the TLS handshake comes first. */
struct st_smtp_client *st_smtp_client_new(const struct st_smtp_client_params *p);

/* Free a session. NULL is a no-op. */
void st_smtp_client_free(struct st_smtp_client *c);

/* What the session needs next. */
enum st_smtp_want st_smtp_client_want(const struct st_smtp_client *c);

/* Bytes from the server. Returns how many were taken (all, unless the session ended). */
size_t st_smtp_client_input(struct st_smtp_client *c, const unsigned char *data, size_t len);

/* The server closed the connection (or the caller gives up): the session ends, failed unless done. */
void st_smtp_client_eof(struct st_smtp_client *c, const char *why);

/* The bytes waiting to be sent (borrowed until the next call). */
const unsigned char *st_smtp_client_output(const struct st_smtp_client *c, size_t *len);

/* n of the waiting bytes went out. */
void st_smtp_client_sent(struct st_smtp_client *c, size_t n);

/* The TLS handshake the session asked for is done (ok true) or failed (why). */
void st_smtp_client_tls_up(struct st_smtp_client *c, bool ok, const char *why);

/*
 * Interactive: one line the user typed (without its line end; a CR or LF in
 * it ends it there), when st_smtp_client_want says ST_SMTP_WANT_LINE. It
 * goes out as it is, with CRLF: nothing in it is a command to us (no "R" to
 * renegotiate, no "Q" to quit, as openssl s_client has). A command waits for
 * its reply before the next line is taken; after DATA's 354 the message
 * lines go out without waiting, up to the lone ".". QUIT ends the session
 * after its reply. Returns 0, or ST_E_TOOBIG (nothing sent) for a line over
 * ST_SMTP_LINE_MAX bytes.
 */
int st_smtp_client_user_line(struct st_smtp_client *c, const char *line, size_t len);

/* Interactive: the user's input ended. QUIT goes out, unless a message was
 * being typed: then the connection is closed without ending it (it is not sent). */
void st_smtp_client_user_eof(struct st_smtp_client *c);

/* Go no further than EHLO: no AUTH, MAIL, message or user line is sent, QUIT follows
 * EHLO (the server failed a check of its certificate); why is kept in the result. */
void st_smtp_client_hold(struct st_smtp_client *c, const char *why);

/* The result so far (borrowed from the session). */
const struct st_smtp_result *st_smtp_client_result(const struct st_smtp_client *c);

#endif
