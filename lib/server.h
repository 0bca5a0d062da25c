/* server.h: an SMTP server on a libuv loop: listeners, connections, TLS and the server engine; decisions are the caller's */
#ifndef ST_SERVER_H
#define ST_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "smtp_server.h"
#include "tls.h"
#include "util.h"

enum st_listen_mode {
	ST_LISTEN_SMTP,       /* STARTTLS offered */
	ST_LISTEN_SUBMISSION, /* STARTTLS offered and required before MAIL */
	ST_LISTEN_SMTPS,      /* TLS from the first byte */
};

/* "smtp", "submission", "smtps". */
const char *st_listen_mode_name(enum st_listen_mode m);

struct st_listen {
	char addr[64]; /* a numeric address: "127.0.0.1", "::1", "0.0.0.0" */
	unsigned port; /* 0: a free port; the one bound is written back */
	enum st_listen_mode mode;
};

struct st_conn;

/* What a decision or a log line needs to know of a connection (borrowed for the call). */
struct st_conn_info {
	unsigned long id; /* 1, 2, ... in the order of connections */
	char peer[64];    /* the client's address */
	unsigned peer_port;
	const struct st_listen *listen;
	unsigned loop_index;      /* the server's st_server_params.index: which loop has it */
	struct st_srv_state smtp; /* HELO, sender, recipients, AUTH user... */
	bool tls;
	struct st_tls_summary tls_summary;
	const unsigned char *ccert; /* the client certificate (DER), NULL when none */
	size_t ccert_len;
	bool ccert_verified;          /* ccert_verify said yes */
	bool ccert_revoked;           /* ccert_verify said revoked (then not verified either) */
	const char *ccert_reason;     /* what ccert_verify said with its verdict, "" when nothing */
	const struct st_tls *session; /* TLS: st_tls_peer_cert gives the whole chain; or NULL */
	const char *reason; /* disconnect: why ("quit", "timeout", "closed by the client"...) */
};

struct st_server_params {
	const char *hostname;
	struct st_listen *listen; /* written back: the ports bound */
	size_t n_listen;
	struct st_tls_params
	    tls;           /* the server side: its chain, key, priority, client certificates */
	bool tls_required; /* every listener requires STARTTLS (security level encrypt) */
	bool auth, auth_plaintext;
	size_t max_size, max_rcpt;
	/* the time limit of each command line, of the TLS handshake and of the last replies,
	 * and DATA's first deadline: default 300000 (Postfix's smtpd_timeout) */
	long idle_timeout_ms;
	unsigned min_data_rate;  /* DATA's deadline grows 1 s per this many bytes; default 500 */
	unsigned max_conns;      /* default 1000 */
	unsigned max_per_client; /* default 50 (smtpd_client_connection_count_limit) */
	/* A request of the engine (MAIL, RCPT, DATA, END, AUTH): answer with
	 * st_server_answer, at once or later; the connection waits for it. */
	void (*decide)(void *arg, struct st_conn *c, const struct st_srv_request *req,
	               const struct st_conn_info *info);
	/* The message of an accepted DATA as it comes (dot-unstuffed, CRLF line ends, at most
	 * max_size bytes), in pieces borrowed for the call; the server keeps none of it. The
	 * piece never ends in a CR that begins a CRLF. NULL: the message is thrown away. */
	void (*body)(void *arg, struct st_conn *c, const unsigned char *d, size_t n);
	/* The connection is freed, or its transaction ended without asking decide about the
	 * end of data (the engine refused the message: 552, 500), with st_conn_user(c) still
	 * set: release it (st_conn_user(c) is NULL from then on). */
	void (*release)(void *arg, struct st_conn *c, void *user);
	/* After a handshake with a client certificate: is it trusted? Once per connection;
	 * answer with st_server_ccert_answer, at once or later (a check that fetches runs
	 * off the loop); until then the connection waits and what the client sends is held
	 * unread. NULL: never trusted. */
	void (*ccert_verify)(void *arg, struct st_conn *c, const struct st_conn_info *info);
	/* After a handshake: NULL to go on, or why the client is refused (a client
	 * certificate demanded: "No client certificate presented"). */
	const char *(*tls_verdict)(void *arg, const struct st_conn_info *info);
	/* Things to log: "connect", "starttls" (also for implicit TLS), "reject" (an
	 * error reply: info.smtp.last_reply), "disconnect" (info.reason). */
	void (*event)(void *arg, const char *name, const struct st_conn_info *info);
	/* fault injection: a reply line for a stage ("connect": the banner, then the end;
	 * "helo", "starttls": instead of the engine's reply), or NULL */
	const char *(*fault)(void *arg, const char *stage);
	void *arg;
	unsigned index; /* told back in st_conn_info.loop_index (one server per loop) */
	bool reuseport; /* bind with SO_REUSEPORT: for st_server_start_shared on other loops */
};

struct st_server;

/* Bind every listener and start accepting. NULL with err (class usage: an address or
 * port that cannot be bound, named) when any cannot. */
struct st_server *st_server_start(uv_loop_t *loop, const struct st_server_params *p,
                                  struct st_error *err);

/*
 * Another server on the addresses and ports of from (p's listeners, with the ports from
 * bound written back; both started with p->reuseport), accepting on loop, which may run
 * on another thread: the kernel gives each connection to one of the loops. The limits
 * (max_conns, max_per_client) and the connection ids are shared by all of them. from
 * must outlive it. Callbacks come on the thread of the loop that has the connection.
 */
struct st_server *st_server_start_shared(uv_loop_t *loop, const struct st_server_params *p,
                                         const struct st_server *from, struct st_error *err);

/* The loop a connection lives on (for work and timers of its own). */
uv_loop_t *st_conn_loop(const struct st_conn *c);

/* A pointer of the caller's for the connection's transaction (e.g. the message being
 * stored), NULL at first; handed to release when the connection is freed with it set, or
 * when the transaction ends without a decision on its end of data. */
void st_conn_set_user(struct st_conn *c, void *user);
void *st_conn_user(const struct st_conn *c);

/* The answer to a decision (see st_smtp_server_answer). Every decision must be answered,
 * also when the client has gone meanwhile (the connection is freed then). */
void st_server_answer(struct st_conn *c, bool ok, const char *text);

/* What a client certificate check concluded. */
enum st_ccert_verdict {
	ST_CCERT_UNTRUSTED = 0, /* the chain does not verify */
	ST_CCERT_TRUSTED,       /* it does */
	ST_CCERT_REVOKED,       /* a certificate of the chain is revoked: not trusted */
};

/* The answer to ccert_verify, on the loop's thread; reason (copied, may be NULL) says why,
 * or notes something about a trusted chain. Every check must be answered, also when the
 * client has gone meanwhile (the connection is freed then). */
void st_server_ccert_answer(struct st_conn *c, enum st_ccert_verdict v, const char *reason);

/* Stop accepting; connections go on to their end. done is called once every listener
 * and connection has closed (the loop may then end). */
void st_server_stop(struct st_server *s, void (*done)(void *arg), void *arg);

/* Free what is left, after done. */
void st_server_free(struct st_server *s);

/* Connections open now. */
unsigned st_server_connections(const struct st_server *s);

#endif
