/* session.h: one SMTP session to one address on a libuv loop: the socket, TLS and the SMTP engine together */
#ifndef ST_SESSION_H
#define ST_SESSION_H

#include <stdbool.h>
#include <sys/socket.h>

#include <uv.h>

#include "smtp_client.h"
#include "tls.h"
#include "util.h"

struct st_session_params {
	const struct sockaddr *addr;       /* where to connect (numeric) */
	struct st_smtp_client_params smtp; /* what to say */
	struct st_tls_params tls;          /* the client side of TLS (server must be false) */
	long timeout_ms;                   /* each step: connect, every reply, the handshake */
	/* called once the handshake is done, before the engine goes on: nonzero (with why)
	 * holds the session at EHLO: no AUTH, MAIL, message or user line goes out */
	int (*tls_check)(void *arg, struct st_tls *tls, char *why, size_t size);
	void *tls_check_arg;
	int user_fd; /* with smtp.interactive: where the user's lines come from (a terminal, a
	                pipe or a file); never timed out, read only while a line is wanted */
};

/* What the server's first bytes say about the port, when they are not what the mode expects. */
enum st_session_clue {
	ST_SESSION_CLUE_NONE,
	ST_SESSION_CLUE_TLS_AT_BANNER, /* a TLS record where the SMTP greeting was due: the port
	                                  speaks TLS at once (implicit TLS) */
	ST_SESSION_CLUE_SMTP_AT_TLS,   /* an SMTP reply where the implicit-TLS handshake was due:
	                                  the port speaks plaintext first (STARTTLS) */
};

struct st_session_result {
	struct st_smtp_client *smtp; /* owned: st_smtp_client_result() says what the server said */
	struct st_tls *tls;          /* owned, NULL when TLS never started */
	bool connected;
	bool tls_done;
	struct st_tls_summary tls_summary; /* after a failed handshake, what it got to */
	bool failed;           /* the session could not run to its end */
	struct st_error error; /* why: class connect (refused, timed out), tls, protocol... */
	int connect_errno;     /* no connection: the system's errno (ECONNREFUSED, ETIMEDOUT
	                          for our own timeout...), as Postfix words it with %m */
	bool timed_out;        /* a step (connect, a reply, the handshake) ran out of time */
	enum st_session_clue clue;
	double connect_ms;     /* time to connect */
	double total_ms;       /* time to the end */
};

/* The longest line a user may give in interactive mode (then the session fails, class input). */
#define ST_SESSION_USER_LINE_MAX ST_SMTP_LINE_MAX

typedef void (*st_session_done_cb)(struct st_session_result *res, void *arg);

/*
 * Start one session on a loop that may drive many: p is copied (its strings
 * and addr are borrowed until the end), res is filled as it goes. done is
 * called once, from the loop, when the session has ended and let go of
 * every handle (also when it failed at once). Returns 0, or ST_E_NOMEM
 * with res->error set, and then done is never called.
 */
int st_session_start(uv_loop_t *loop, const struct st_session_params *p,
                     struct st_session_result *res, st_session_done_cb done, void *arg);

/*
 * Run one session to its end on a loop of its own (the probe of one address).
 * Fills *res (release with st_session_result_release, also after a failure).
 * Returns 0 when the session ran (the server may still have refused us:
 * see res->smtp's result), or a negative ST_E_* with res->error set.
 */
int st_session_run(const struct st_session_params *p, struct st_session_result *res);

void st_session_result_release(struct st_session_result *res);

#endif
