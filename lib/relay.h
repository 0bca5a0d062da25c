/* relay.h: one delivery attempt of a message to a next-hop, as Postfix's smtp client makes it, on a libuv loop */
#ifndef ST_RELAY_H
#define ST_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "dns.h"
#include "policy.h"
#include "tls.h"
#include "util.h"
#include "verify.h"

enum st_relay_status { ST_RELAY_SENT, ST_RELAY_DEFERRED, ST_RELAY_BOUNCED };

/* "sent", "deferred", "bounced". */
const char *st_relay_status_name(enum st_relay_status s);

/* What became of one recipient, in Postfix's words. */
struct st_relay_rcpt {
	enum st_relay_status status;
	char dsn[16];     /* "2.0.0", "4.4.1", "5.1.1" ... */
	char reason[800]; /* as Postfix logs it in status=... (...): "250 2.0.0 Ok: queued as X",
	                     "connect to h[a]:25: Connection refused", "host h[a] said: 550 ...
	                     (in reply to RCPT TO command)" */
	char relay[320];  /* "host[addr]:port" that answered, or "none" */
};

struct st_relay_params {
	const char *nexthop; /* "[host]:port" or "[host]" (no MX lookup), "domain:port" or
	                        "domain" (MX hosts, else the domain's own addresses) */
	struct st_dns *dns;  /* attached to the loop; NULL: only numeric hosts */
	const char *ehlo_name;
	const char *sender;
	const char *const *rcpt;
	size_t n_rcpt;
	const char *data; /* the message, CRLF line ends */
	size_t data_len;
	const struct st_policy *policy; /* the effective policy: level and attributes */
	const char *policy_error;       /* non-NULL: the entry is invalid: deferred, 4.7.5 */
	struct st_trust *trust; /* CAs for verify and secure (and the status word); may be NULL */
	const struct st_tls_creds *creds; /* a client certificate, or NULL */
	enum st_digest digest;            /* for fingerprint matches */
	long timeout_ms;                  /* each step */
	unsigned max_addrs; /* addresses tried in all (0: 5, as smtp_mx_address_limit) */
	/* at may, a failed handshake is tried again without TLS on the same address: Postfix
	 * does so only for a message that has waited at least minimal_backoff_time (its
	 * PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE); a fresh one is deferred */
	bool plain_fallback;
	/* smtp_tls_wrappermode: TLS from the first byte (SMTPS, port 465), no STARTTLS; the
	 * level must be encrypt or above (below it Postfix defers without connecting: the
	 * caller's decision) */
	bool wrappermode;
	/* no message: each session goes as far as MAIL FROM:<sender> (after EHLO, TLS and its
	 * checks), with probe_rcpt RCPT TO each recipient, then RSET and QUIT; the replies
	 * decide as in a delivery (MAIL or RCPT 5xx: bounced, 4xx: deferred and the next
	 * address tried). Every address is tried (not only until one takes the message): the
	 * verdict of each is in the result's hops, and a recipient is "sent" when one address
	 * would take mail (an address after it is looked at, not judged); sender NULL: no
	 * MAIL, each session stops after EHLO */
	bool probe_only;
	bool probe_rcpt;
	/* this server's own listeners, "addr:port" (IPv6 without brackets): a next hop there
	 * would loop; bounced with Postfix's "mail for ... loops back to myself" */
	const char *const *self;
	size_t n_self;
	/* the next hop is Postfix's relayhost (its text as main.cf has it): a failure that is
	 * final without a server having said so (a name not found, a null MX, a loop) defers
	 * with 4.3.5 and the same words, as Postfix's "relayhost configuration problem" */
	bool relayhost;
};

/* One session of an attempt: an address of a host (or a plaintext retry of it). */
struct st_relay_hop {
	char host[256];
	char addr[64];
	unsigned port;
	char relay[320];             /* "host[addr]:port" */
	enum st_relay_status status; /* sent (probe_only: would take mail), deferred, bounced */
	char dsn[16];
	char reason[800];
	bool plain;          /* the plaintext retry at may */
	char tls_status[16]; /* "Verified" ... "Anonymous", or "" without TLS */
	char tls_version[16];
	char tls_cipher[64];
	double ms; /* the session's time */
};

struct st_relay_result {
	struct st_relay_rcpt *rcpt; /* n_rcpt, owned */
	size_t n_rcpt;
	/* the TLS of the last session that got that far: "Verified", "Trusted", "Untrusted",
	 * "Anonymous", or "" without TLS */
	char tls_status[16];
	char tls_version[16];
	char tls_cipher[64];
	unsigned sessions;         /* sessions opened */
	struct st_relay_hop *hops; /* each session in order, owned */
	size_t n_hops;
	/* the next hop's host and port as parsed, and its MX hosts in order (or the host alone) */
	char host[256];
	unsigned port;
	bool mx;
	char hosts[16][256];
	size_t n_hosts;
};

/* The reason for a next hop at dane or dane-only: DNSSEC TLSA checks are not made here,
 * so such mail is deferred with these words rather than sent unchecked. */
#define ST_RELAY_DANE_UNSUPPORTED                                                                  \
	"TLS level dane is not supported by smtptls (no DNSSEC TLSA validation): not sent"

/*
 * Postfix's words for a session that ended before its SMTP dialogue began, as
 * its smtp client logs them: no connection ("connect to h[a]:25: Connection
 * refused", "... Connection timed out"), no greeting ("lost connection with
 * h[a] while receiving the initial server greeting", "conversation with h[a]
 * timed out while receiving the initial server greeting"), a greeting that
 * refuses ("host h[a] refused to talk to me: 421 4.3.2 ..."). Returns true
 * and fills dsn ("4.4.1" ...) and reason for such a session; false for one
 * that was greeted with 2xx (or whose implicit-TLS handshake failed).
 */
struct st_session_result;
struct st_smtp_reply;

/* A reply as Postfix quotes it in its reasons: its lines joined by a space, the code once. */
void st_relay_reply_words(const struct st_smtp_reply *rep, char *out, size_t size);

bool st_relay_early_failure(const struct st_session_result *res, const char *host, const char *addr,
                            unsigned port, char *dsn, size_t dsn_size, char *reason, size_t size);

/*
 * Postfix's words for a name that could not be looked up (err from lib/dns):
 * "Host or domain name not found. Name service error for name=NAME type=A:
 * Host not found" when the name does not exist (Postfix bounces, 5.4.4; type=A
 * after an MX lookup too, as Postfix then looks the domain up as a host),
 * "... type=MX (or A): Host not found, try again" when the lookup failed
 * (deferred). Returns true when the name does not exist.
 */
bool st_relay_name_words(const char *name, bool mx, const struct st_error *err, char *reason,
                         size_t size);

typedef void (*st_relay_done_cb)(struct st_relay_result *r, void *arg);

/*
 * Start delivering: each recipient ends sent, deferred or bounced in *r, as
 * Postfix's smtp client decides: MX hosts in order, each address until one
 * takes the message; a connection, greeting, TLS or certificate failure and
 * 4xx replies move on to the next address; 5xx replies bounce; at may a
 * failed handshake is tried again in plaintext when p->plain_fallback. p is copied; its strings and
 * objects are borrowed until done. done is called once, from the loop. Returns
 * 0, or a negative ST_E_* with err (done is then never called).
 */
int st_relay_start(uv_loop_t *loop, const struct st_relay_params *p, struct st_relay_result *r,
                   st_relay_done_cb done, void *arg, struct st_error *err);

void st_relay_result_release(struct st_relay_result *r);

#endif
