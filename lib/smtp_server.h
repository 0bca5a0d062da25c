/* smtp_server.h: the SMTP server engine, sans I/O: client bytes in, replies out, decisions asked of the caller */
#ifndef ST_SMTP_SERVER_H
#define ST_SMTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* A command line with its CRLF (RFC 5321 4.5.3.1.4), a text line of a message with its
 * CRLF (4.5.3.1.6). */
#define ST_SRV_CMD_MAX  512
#define ST_SRV_TEXT_MAX 1000
/* Client bytes held while a decision is pending (pipelining): past this, input waits. */
#define ST_SRV_IN_MAX 65536
/* Unsent output past which no more input is processed until it drains (backpressure: a
 * client that pipelines and never reads its replies); one step adds at most
 * ST_SRV_REPLY_MAX past it (a reply, and the 421 that may end the session). */
#define ST_SRV_OUT_MAX   16384
#define ST_SRV_REPLY_MAX 2048

struct st_smtp_server_params {
	const char *hostname; /* the banner, the reply to HELO, 421 texts */
	bool implicit_tls;    /* the session is inside TLS from its start (smtps) */
	bool starttls;        /* STARTTLS is offered while not in TLS */
	bool tls_required;    /* before TLS only EHLO, HELO, STARTTLS, NOOP, QUIT: else 530 */
	bool auth;            /* AUTH PLAIN and LOGIN, in TLS (or also before with auth_plaintext) */
	bool auth_plaintext;
	size_t max_size;     /* the SIZE limit; 0: 10240000 (Postfix's message_size_limit) */
	size_t max_rcpt;     /* recipients per message; 0: 1000 (smtpd_recipient_limit) */
	unsigned max_errors; /* errors before 421 and the end; 0: 20 (smtpd_hard_error_limit) */
	/* deadlines, as Postfix's smtpd_per_request_deadline: a command line must be complete
	 * within timeout_ms of the previous one (or of the banner, the answer, STARTTLS); a
	 * message's deadline starts at timeout_ms and grows by 1 s per min_data_rate bytes
	 * received, never beyond timeout_ms from now */
	unsigned long timeout_ms; /* 0: 300000 (smtpd_timeout) */
	unsigned min_data_rate;   /* bytes per second; 0: 500 (smtpd_min_data_rate) */
	/* the message as it comes, dot-unstuffed, CRLF line ends, at most max_size bytes */
	void (*body)(void *arg, const unsigned char *data, size_t len);
	void *body_arg;
	/* fault injection: a whole reply line for the stage ("helo", "starttls") instead of
	 * the normal one, or NULL */
	const char *(*fault)(void *arg, const char *stage);
	void *fault_arg;
};

/* What the engine needs from its caller next. */
enum st_srv_event {
	ST_SRV_NONE,  /* send the output, then read more */
	ST_SRV_TLS,   /* send the output (the 220), then the handshake; st_smtp_server_tls_up */
	ST_SRV_AUTH,  /* check user and password: st_smtp_server_answer (true: 235) */
	ST_SRV_MAIL,  /* the sender (and SIZE): st_smtp_server_answer (true: 250) */
	ST_SRV_RCPT,  /* a recipient (relay control): st_smtp_server_answer */
	ST_SRV_DATA,  /* the message is to begin: st_smtp_server_answer (true: 354) */
	ST_SRV_END,   /* the message is complete (in body): st_smtp_server_answer (true: queued) */
	ST_SRV_CLOSE, /* send the output, then close the connection */
};

/* The request behind an event, borrowed until the answer. */
struct st_srv_request {
	enum st_srv_event event;
	/* MAIL, RCPT: the address (no brackets; "" for the null sender) in Postfix's internal
	 * form: raw bytes (valid UTF-8, maybe control characters: sanitise to show it),
	 * a source route dropped, quotes of the local part removed */
	const char *arg;
	size_t size;      /* MAIL: its SIZE= (0 when none); END: the message's size */
	const char *user; /* AUTH */
	const char *pass; /* AUTH: wiped after the answer */
	const char *mech; /* AUTH: "PLAIN" or "LOGIN" */
	/* AUTH: PLAIN's authorization identity ("" when none, and for LOGIN): the caller
	 * refuses one that is not the user, as Cyrus and Dovecot do for users without
	 * proxy rights */
	const char *authzid;
	bool smtputf8; /* MAIL, RCPT: the transaction's MAIL FROM had SMTPUTF8 */
};

struct st_smtp_server;

/* A new session (NULL when out of memory). Nothing is said until st_smtp_server_greet. */
struct st_smtp_server *st_smtp_server_new(const struct st_smtp_server_params *p);
void st_smtp_server_free(struct st_smtp_server *s);

/*
 * The banner: "220 HOST ESMTP smtptls", or with refuse (for implicit TLS: a client
 * certificate demanded and missing) "421 4.7.1 HOST Error: REFUSE" and the end.
 */
void st_smtp_server_greet(struct st_smtp_server *s, const char *refuse);

/*
 * Client bytes (plaintext: after TLS, what the TLS layer decrypted). Returns how many
 * were taken: fewer than len when ST_SRV_IN_MAX bytes wait behind a pending decision or
 * unsent output (read no more until then). Commands are answered as far as no decision is pending.
 */
size_t st_smtp_server_input(struct st_smtp_server *s, const unsigned char *data, size_t len);

/* Client bytes taken and not processed yet (a partial line, or waiting behind a decision
 * or unsent output). */
size_t st_smtp_server_buffered(const struct st_smtp_server *s);

/* The client closed its side: the session ends (a message being sent is abandoned). */
void st_smtp_server_eof(struct st_smtp_server *s);

/* What is to be decided now (ST_SRV_NONE when nothing), and its request. */
enum st_srv_event st_smtp_server_next(const struct st_smtp_server *s,
                                      struct st_srv_request *req);

/*
 * Answer the pending request. ok: the standard reply (MAIL "250 2.1.0 Ok", RCPT
 * "250 2.1.5 Ok", DATA "354 End data with <CR><LF>.<CR><LF>", END "250 2.0.0 Ok:
 * queued as TEXT", AUTH "235 2.7.0 Authentication successful"); refused: text is the
 * whole reply line ("554 5.7.1 <a@b>: Relay access denied"; NULL gives a generic one).
 * A 421 refusal ends the session. Then the engine goes on with what is buffered.
 */
void st_smtp_server_answer(struct st_smtp_server *s, bool ok, const char *text);

/*
 * The handshake after STARTTLS is done. ok false: the session ends. refuse (a client
 * certificate demanded and missing or not trusted): the next command gets "421 4.7.1
 * HOST Error: REFUSE" (as Postfix does), and the end. The session starts over: HELO,
 * AUTH and the transaction are forgotten.
 */
void st_smtp_server_tls_up(struct st_smtp_server *s, bool ok, const char *refuse);

/*
 * The time, in milliseconds of a monotonic clock (the event loop's): tell it before the
 * calls that feed the engine (input, sent, answer, tls_up, greet). The first call starts
 * the first deadline.
 */
void st_smtp_server_clock(struct st_smtp_server *s, unsigned long long now_ms);

/* When the session's deadline passes, on that clock (0: none, before the first clock,
 * while a decision is pending, or after the end): call st_smtp_server_timeout then. */
unsigned long long st_smtp_server_deadline(const struct st_smtp_server *s);

/* The deadline passed: "421 4.4.2 HOST Error: timeout exceeded" (as Postfix says for its
 * timeouts and deadlines) and the end. */
void st_smtp_server_timeout(struct st_smtp_server *s);

/* Bytes to send (borrowed until the next call), and how many went. While more than
 * ST_SRV_OUT_MAX wait unsent, no more input is processed; sent goes on with it. */
const unsigned char *st_smtp_server_output(const struct st_smtp_server *s, size_t *len);
void st_smtp_server_sent(struct st_smtp_server *s, size_t n);

/* What the session knows, for logs and Received headers. */
struct st_srv_state {
	const char *helo;     /* "" before HELO/EHLO */
	bool esmtp;           /* EHLO, not HELO */
	bool tls;             /* inside TLS */
	const char *auth_user; /* "" unless authenticated */
	const char *sender;    /* the transaction's, "" when none */
	const char *const *rcpt; /* accepted recipients of the transaction */
	size_t n_rcpt;
	size_t discarded;   /* plaintext bytes pipelined behind STARTTLS, thrown away */
	unsigned errors;    /* error replies so far */
	unsigned messages;  /* messages accepted */
	const char *last_reply; /* the last reply line sent (a refusal, for the log) */
};

void st_smtp_server_state(const struct st_smtp_server *s, struct st_srv_state *st);

#endif
