/* outq.h: the outgoing queue on a libuv loop: queue files scheduled, relayed under the TLS policy, retried with backoff */
#ifndef ST_OUTQ_H
#define ST_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <uv.h>

#include "dns.h"
#include "policy.h"
#include "queue.h"
#include "relay.h"
#include "tls.h"
#include "verify.h"

/* What became of one recipient in one attempt (or at the end of its life). */
struct st_outq_event {
	const char *queue_id;
	const char *from;
	const char *to;
	const char *nexthop;
	const char *status;                    /* "sent", "deferred", "bounced", "expired" */
	const struct st_relay_rcpt *rcpt;      /* dsn, reason (Postfix's words), relay */
	const struct st_relay_result *attempt; /* the TLS of the attempt */
	enum st_level level;                   /* the level applied */
	const char *policy_table; /* the table and key that gave it, or NULL (the default) */
	const char *policy_key;
	double delay;        /* seconds since the message came */
	time_t next_try;     /* deferred: when it is tried again */
	unsigned attempt_no; /* 1 for the first attempt since start */
};

struct st_outq_params {
	const char *dir;       /* the queue directory */
	const char *relayhost; /* every message goes there; NULL: the recipient domain's MX hosts */
	struct st_policy_table *const *tables; /* smtp_tls_policy_maps, in order */
	size_t n_tables;
	/* the tables cannot be opened as Postfix opens them (st_policy_tables.broken): every
	 * next hop is deferred with 4.7.5, as Postfix defers it; NULL when they can */
	const char *tables_error;
	enum st_level level; /* smtp_tls_security_level: without a table entry */
	struct st_dns *dns;  /* attached to the loop; may be NULL with a numeric relayhost */
	struct st_trust *trust;
	const struct st_tls_creds *creds;
	enum st_digest digest;
	const char *ehlo_name;
	long timeout_ms;
	unsigned concurrency; /* deliveries at once (0: 10) */
	long backoff_min;     /* seconds to the first retry; doubles up to backoff_max */
	long backoff_max;
	long lifetime;           /* seconds a deferred message stays before it expires */
	size_t max_size;         /* the largest message read back */
	const char *const *self; /* this server's listeners ("addr:port"): next hops that loop */
	size_t n_self;
	void (*event)(void *arg, const struct st_outq_event *ev);
	void (*error)(void *arg, const char *msg); /* a queue file that cannot be read or updated */
	void *arg;
};

struct st_outq;

/*
 * Start the queue on a loop: the messages already in dir (left by an
 * earlier run) are scheduled at their next-attempt times. p's strings and
 * objects are borrowed until st_outq_free. NULL with err when dir cannot be
 * made or read.
 */
struct st_outq *st_outq_new(uv_loop_t *loop, const struct st_outq_params *p, struct st_error *err);

/* A message that st_queue_write put in the directory: tried at once. */
void st_outq_add(struct st_outq *q, const char *id);

/* Messages in the queue (waiting or being delivered). */
size_t st_outq_size(const struct st_outq *q);

/* No new attempt; cb (may be NULL) once every attempt under way has ended and its results
 * are on disk (the handles closed: the loop may end). */
void st_outq_stop(struct st_outq *q, void (*cb)(void *arg), void *arg);

/* After the loop ended (or before it ran). NULL is a no-op. */
void st_outq_free(struct st_outq *q);

#endif
