/* server.c: an SMTP server on a libuv loop: listeners, connections, TLS and the server engine; decisions are the caller's */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

struct lst {
	struct st_server *srv;
	struct st_listen *l;
	uv_tcp_t tcp;
};

/* What the servers of one process share, whatever loop or thread each runs on: the
 * connection count, per client too, and the connection ids. */
struct shared {
	uv_mutex_t mu;
	int refs;
	unsigned conns;
	unsigned long next_id;
	struct peer_count {
		char peer[64];
		unsigned n;
	} * peers;
	size_t n_peers, cap;
};

struct st_server {
	struct st_server_params p;
	uv_loop_t *loop;
	struct shared *sh;
	struct lst *lst;
	size_t n_lst;
	int open_handles;    /* listeners and connections not closed yet */
	struct st_conn *all; /* this server's connections */
	bool stopping;
	void (*done)(void *arg);
	void *done_arg;
};

struct st_conn {
	struct st_server *srv;
	struct st_conn *prev, *next;
	const struct st_listen *listen;
	unsigned long id;
	char peer[64];
	unsigned peer_port;
	uv_tcp_t tcp;
	uv_timer_t idle;
	int handles; /* tcp and idle: freed when both have closed */
	struct st_smtp_server *smtp;
	struct st_tls *tls;
	bool tls_on, handshaking, closing, asked, close_after_write;
	bool counted; /* holds a slot in the shared counts */
	bool deciding; /* inside the caller's decide: an answer given there is taken by pump */
	bool tls_bye; /* our close_notify is sent */
	bool ccert_verified;
	bool ccert_checking, ccert_revoked; /* ccert_verify not answered yet; its verdict */
	char ccert_reason[ST_ERROR_MAX];
	int writes;            /* writes in flight */
	bool paused;           /* reading stopped: the engine takes no more until it drains */
	uint64_t armed;        /* when the timer is set to fire (0: not set) */
	uint64_t linger;       /* the last replies must be gone by then */
	struct st_buf held;    /* client bytes the engine could not take yet */
	void *user;            /* the caller's (st_conn_set_user) */
	char reason[ST_ERROR_MAX]; /* why it ends, for the log: whole, or cut at a character */
};

struct wreq {
	uv_write_t req;
	char *data;
};

static void pump(struct st_conn *c);
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

const char *st_listen_mode_name(enum st_listen_mode m)
{
	return m == ST_LISTEN_SMTPS ? "smtps" : m == ST_LISTEN_SUBMISSION ? "submission" : "smtp";
}

static void info_of(struct st_conn *c, struct st_conn_info *i)
{
	memset(i, 0, sizeof(*i));
	i->id = c->id;
	snprintf(i->peer, sizeof(i->peer), "%s", c->peer);
	i->peer_port = c->peer_port;
	i->listen = c->listen;
	i->loop_index = c->srv->p.index;
	st_smtp_server_state(c->smtp, &i->smtp);
	i->tls = c->tls_on && !c->handshaking;
	if (i->tls) {
		st_tls_summary(c->tls, &i->tls_summary);
		i->ccert = st_tls_peer_cert(c->tls, 0, &i->ccert_len);
		i->session = c->tls;
	}
	i->ccert_verified = c->ccert_verified;
	i->ccert_revoked = c->ccert_revoked;
	i->ccert_reason = c->ccert_reason;
	i->reason = c->reason;
}

static void event(struct st_conn *c, const char *name)
{
	struct st_conn_info i;

	if (!c->srv->p.event)
		return;
	info_of(c, &i);
	c->srv->p.event(c->srv->p.arg, name, &i);
}

static void maybe_done(struct st_server *s)
{
	if (s->stopping && s->open_handles == 0 && s->done) {
		void (*done)(void *) = s->done;
		s->done = NULL;
		done(s->done_arg);
	}
}

/* Take a slot for a new connection: the totals after it, for the limits. */
static void slot_take(struct st_conn *c, unsigned *total, unsigned *from_peer)
{
	struct shared *sh = c->srv->sh;
	size_t k;

	uv_mutex_lock(&sh->mu);
	*total = ++sh->conns;
	*from_peer = 0;
	c->counted = true;
	for (k = 0; k < sh->n_peers; k++)
		if (strcmp(sh->peers[k].peer, c->peer) == 0)
			break;
	if (k == sh->n_peers && sh->n_peers == sh->cap) {
		size_t cap = sh->cap ? sh->cap * 2 : 16;
		struct peer_count *x = realloc(sh->peers, cap * sizeof(*x));
		if (x)
			sh->peers = x, sh->cap = cap;
	}
	if (k < sh->n_peers || sh->n_peers < sh->cap) {
		if (k == sh->n_peers) {
			snprintf(sh->peers[k].peer, sizeof(sh->peers[k].peer), "%s", c->peer);
			sh->peers[k].n = 0;
			sh->n_peers++;
		}
		*from_peer = ++sh->peers[k].n;
	}
	uv_mutex_unlock(&sh->mu);
}

static void slot_release(struct st_conn *c)
{
	struct shared *sh = c->srv->sh;
	size_t k;

	if (!c->counted)
		return;
	c->counted = false;
	uv_mutex_lock(&sh->mu);
	sh->conns--;
	for (k = 0; k < sh->n_peers; k++)
		if (strcmp(sh->peers[k].peer, c->peer) == 0) {
			if (--sh->peers[k].n == 0)
				sh->peers[k] = sh->peers[--sh->n_peers];
			break;
		}
	uv_mutex_unlock(&sh->mu);
}

static void conn_free(struct st_conn *c)
{
	struct st_server *s = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		s->all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	st_smtp_server_free(c->smtp);
	st_tls_free(c->tls);
	st_buf_release(&c->held);
	if (c->user && s->p.release)
		s->p.release(s->p.arg, c, c->user);
	slot_release(c);
	free(c);
	s->open_handles--;
	maybe_done(s);
}

static void conn_closed(uv_handle_t *h)
{
	struct st_conn *c = h->data;

	if (--c->handles > 0)
		return;
	if (c->asked || c->ccert_checking)
		return; /* a decision or a check is under way: its answer frees us */
	conn_free(c);
}

static void conn_close(struct st_conn *c, const char *reason)
{
	if (c->closing)
		return;
	c->closing = true;
	slot_release(c); /* a closing connection no longer counts against the limits */
	if (!c->reason[0])
		st_cut_printf(c->reason, sizeof(c->reason), "%s", reason);
	event(c, "disconnect");
	uv_timer_stop(&c->idle);
	uv_close((uv_handle_t *)&c->idle, conn_closed);
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void write_cb(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct st_conn *c = req->data;

	free(w->data);
	free(w);
	c->writes--;
	if (c->closing)
		return;
	if (status < 0)
		conn_close(c, "write failed");
	else if (c->close_after_write && c->writes == 0)
		conn_close(c, c->reason[0] ? c->reason : "quit");
	else if (!c->close_after_write && c->tcp.write_queue_size < ST_SRV_OUT_MAX &&
	         st_smtp_server_next(c->smtp, NULL) == ST_SRV_NONE) {
		/* replies drained: the engine may go on with what the client sent (a decision
		 * or a handshake under way goes on by itself) */
		st_smtp_server_clock(c->smtp, uv_now(c->srv->loop));
		pump(c);
	}
}

static int send_raw(struct st_conn *c, const unsigned char *d, size_t n)
{
	struct wreq *w;
	uv_buf_t b;

	if (!n || c->closing)
		return 0;
	w = malloc(sizeof(*w));
	if (!w || !(w->data = malloc(n))) {
		free(w);
		conn_close(c, "out of memory");
		return -1;
	}
	memcpy(w->data, d, n);
	w->req.data = c;
	b = uv_buf_init(w->data, (unsigned)n);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb) < 0) {
		free(w->data);
		free(w);
		conn_close(c, "write failed");
		return -1;
	}
	c->writes++;
	return 0;
}

static void flush_tls(struct st_conn *c)
{
	size_t n;
	const unsigned char *o = st_tls_output(c->tls, &n);

	if (send_raw(c, o, n) == 0)
		st_tls_output_done(c->tls, n);
}

/*
 * The engine's replies to the client, through TLS when it is on. While more than
 * ST_SRV_OUT_MAX bytes wait for the socket (a client that does not read), they stay in
 * the engine, which then stops reading commands: backpressure, memory bounded.
 */
/* The engine's output to the socket while less than ST_SRV_OUT_MAX waits there (all of it
 * with all: the last replies, bounded by the engine's own cap, go before close_notify). */
static void flush(struct st_conn *c, bool all)
{
	for (;;) {
		size_t n;
		const unsigned char *o = st_smtp_server_output(c->smtp, &n);
		struct st_error err;

		if (!n || c->closing || (!all && c->tcp.write_queue_size >= ST_SRV_OUT_MAX))
			return;
		if (c->tls_on) {
			if (st_tls_write(c->tls, o, n, &err)) {
				conn_close(c, "TLS write failed");
				return;
			}
			flush_tls(c);
		} else if (send_raw(c, o, n)) {
			return;
		}
		st_smtp_server_sent(c->smtp, n); /* may read on, and reply more */
	}
}

static void start_tls(struct st_conn *c)
{
	struct st_error err;
	struct st_tls_params tp = c->srv->p.tls;

	tp.server = true;
	c->tls = st_tls_new(&tp, &err);
	if (!c->tls) {
		conn_close(c, "TLS not available");
		return;
	}
	c->tls_on = true;
	c->handshaking = true;
}

static void feed(struct st_conn *c, const unsigned char *d, size_t n);
static void idle_cb(uv_timer_t *t);
static void tls_drain(struct st_conn *c);
static void pump_(struct st_conn *c);

/* The timer at the engine's deadline, or at the end of the time the last replies have. */
static void arm(struct st_conn *c)
{
	uint64_t now = uv_now(c->srv->loop), at;

	if (c->closing)
		return;
	if (c->close_after_write) {
		if (!c->linger)
			c->linger = now + (uint64_t)c->srv->p.idle_timeout_ms;
		at = c->linger;
	} else
		at = st_smtp_server_deadline(c->smtp);
	if (!at || at == c->armed)
		return;
	c->armed = at;
	uv_timer_start(&c->idle, idle_cb, at > now ? at - now : 0, 0);
}

/* Read from the client again once the engine took all it held. */
static void resume(struct st_conn *c)
{
	if (!c->paused || c->closing)
		return;
	c->paused = false;
	uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
	if (c->tls_on && !c->handshaking && !c->ccert_checking)
		tls_drain(c); /* what TLS had decrypted or buffered meanwhile */
}

/* Do what the engine wants until it waits for the client or for a decision. */
static void pump(struct st_conn *c)
{
	pump_(c);
	arm(c);
}

static void pump_(struct st_conn *c)
{
	while (!c->closing) {
		struct st_srv_request req;
		enum st_srv_event ev = st_smtp_server_next(c->smtp, &req);
		struct st_srv_state st;

		st_smtp_server_state(c->smtp, &st);
		if (ev == ST_SRV_CLOSE) {
			flush(c, true);
			if (c->tls_on && !c->handshaking && !c->tls_bye && !c->closing) {
				/* after the last reply (221 to QUIT, as Postfix; or a 421): the
				 * client tells the end of the session from a cut connection */
				c->tls_bye = true;
				st_tls_bye(c->tls);
				flush_tls(c);
			}
			if (!c->reason[0])
				st_cut_printf(
				    c->reason, sizeof(c->reason), "%s",
				    strncmp(st.last_reply, "221", 3) == 0 ? "quit" : st.last_reply);
			c->close_after_write = true;
			if (c->writes == 0)
				conn_close(c, c->reason);
			return;
		}
		if (ev == ST_SRV_TLS) {
			flush(c, true); /* the 220, in plaintext */
			start_tls(c);
			return;
		}
		if (ev == ST_SRV_NONE) {
			if (c->user && st.n_rcpt == 0 && !c->asked && c->srv->p.release) {
				/* the transaction ended without an end of data to decide (the engine
				 * refused the message itself: 552, 500): what the caller keeps for
				 * the message goes now, before the reply, not with the connection */
				void *u = c->user;
				c->user = NULL;
				c->srv->p.release(c->srv->p.arg, c, u);
			}
			flush(c, false);
			if (c->closing || st_smtp_server_next(c->smtp, NULL) != ST_SRV_NONE)
				continue; /* the output drained and the engine read on */
			if (c->held.len) {
				/* the engine may have room again */
				size_t took =
				    st_smtp_server_input(c->smtp, c->held.data, c->held.len);
				if (!took)
					return;
				memmove(c->held.data, c->held.data + took, c->held.len - took);
				c->held.len -= took;
				continue;
			}
			resume(c);
			return;
		}
		/* a decision: asked once, answered by st_server_answer */
		if (c->asked)
			return;
		c->asked = true;
		flush(c, false);
		{
			struct st_conn_info i;
			info_of(c, &i);
			c->deciding = true;
			c->srv->p.decide(c->srv->p.arg, c, &req, &i);
			c->deciding = false;
		}
		if (c->asked)
			return; /* answered later: st_server_answer goes on from there */
		/* answered at once: go on here, not by a call from the answer (a thousand
		 * pipelined RCPTs would be a thousand frames deep) */
	}
}

/* After an answer: did the client leave while we decided or checked? Its connection is
 * freed then, once nothing else is awaited. */
static bool gone_meanwhile(struct st_conn *c)
{
	if (!c->closing)
		return false;
	if (c->handles == 0 && !c->asked && !c->ccert_checking)
		conn_free(c);
	return true;
}

void st_server_answer(struct st_conn *c, bool ok, const char *text)
{
	if (!c->asked)
		return;
	c->asked = false;
	if (gone_meanwhile(c))
		return;
	st_smtp_server_clock(c->smtp, uv_now(c->srv->loop));
	st_smtp_server_answer(c->smtp, ok, text);
	if (!ok)
		event(c, "reject");
	if (!c->deciding)
		pump(c);
}

/* Client plaintext to the engine; what it cannot take yet is held. */
static void feed(struct st_conn *c, const unsigned char *d, size_t n)
{
	size_t took = st_smtp_server_input(c->smtp, d, n);

	if (took < n) {
		if (st_buf_add(&c->held, d + took, n - took)) {
			conn_close(c, "the client sent too much without reading replies");
			return;
		}
		if (!c->paused) {
			/* read no more until the engine has taken this */
			c->paused = true;
			uv_read_stop((uv_stream_t *)&c->tcp);
		}
	}
	pump(c);
}

static void on_body(void *arg, const unsigned char *d, size_t n)
{
	struct st_conn *c = arg;

	if (c->srv->p.body)
		c->srv->p.body(c->srv->p.arg, c, d, n); /* the engine keeps to max_size */
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static _Thread_local char space[65536]; /* read_cb takes it all before returning */

	(void)h;
	(void)suggested;
	buf->base = space;
	buf->len = sizeof(space);
}

static void idle_cb(uv_timer_t *t)
{
	struct st_conn *c = t->data;
	uint64_t now = uv_now(c->srv->loop), dl;

	c->armed = 0;
	if (c->closing)
		return;
	if (c->close_after_write) {
		/* the last replies never left: the client does not read */
		conn_close(c, c->reason[0] ? c->reason : "timeout");
		return;
	}
	st_smtp_server_clock(c->smtp, now);
	dl = st_smtp_server_deadline(c->smtp);
	if (!dl || dl > now) {
		arm(c); /* the deadline moved meanwhile, or none runs (a decision is pending) */
		return;
	}
	if (c->tcp.write_queue_size > 0) {
		/* replies wait for the socket since the last command: no 421 can get through */
		st_smtp_server_eof(c->smtp);
		conn_close(c, "timeout: the client does not read its replies");
		return;
	}
	snprintf(c->reason, sizeof(c->reason), "timeout");
	st_smtp_server_timeout(c->smtp);
	pump(c);
}

static void tls_ready(struct st_conn *c);

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct st_conn *c = stream->data;
	struct st_error err;

	if (c->closing)
		return;
	if (nread < 0) {
		st_smtp_server_eof(c->smtp);
		conn_close(c, nread == UV_EOF ? "closed by the client" : uv_strerror((int)nread));
		return;
	}
	if (nread == 0)
		return;
	st_smtp_server_clock(c->smtp, uv_now(c->srv->loop));
	if (!c->tls_on) {
		feed(c, (const unsigned char *)buf->base, (size_t)nread);
		return;
	}
	if (st_tls_input(c->tls, (const unsigned char *)buf->base, (size_t)nread)) {
		conn_close(c, "too much TLS data at once");
		return;
	}
	if (c->handshaking) {
		int rc = st_tls_handshake(c->tls, &err);
		flush_tls(c);
		if (rc < 0) {
			st_cut_printf(c->reason, sizeof(c->reason), "%s", err.msg);
			st_smtp_server_tls_up(c->smtp, false, NULL);
			conn_close(c, c->reason);
			return;
		}
		if (rc == 0)
			return;
		c->handshaking = false;
		if (c->srv->p.ccert_verify) {
			struct st_conn_info i;
			info_of(c, &i);
			if (i.ccert) {
				/* the answer, now or later, goes on with tls_ready and tls_drain */
				c->ccert_checking = true;
				c->srv->p.ccert_verify(c->srv->p.arg, c, &i);
				return;
			}
		}
		tls_ready(c);
	}
	if (c->ccert_checking)
		return; /* the client's bytes wait in the TLS input until the answer */
	tls_drain(c);
}

void st_server_ccert_answer(struct st_conn *c, enum st_ccert_verdict v, const char *reason)
{
	if (!c->ccert_checking)
		return;
	c->ccert_checking = false;
	if (gone_meanwhile(c))
		return;
	st_smtp_server_clock(c->smtp, uv_now(c->srv->loop));
	c->ccert_verified = v == ST_CCERT_TRUSTED;
	c->ccert_revoked = v == ST_CCERT_REVOKED;
	st_cut_printf(c->ccert_reason, sizeof(c->ccert_reason), "%s", reason ? reason : "");
	tls_ready(c);
	if (!c->closing)
		tls_drain(c);
}

/* The handshake is done (and the client certificate judged): the engine hears of it. */
static void tls_ready(struct st_conn *c)
{
	struct st_conn_info i;
	const char *refuse = NULL;

	info_of(c, &i);
	if (c->srv->p.tls_verdict)
		refuse = c->srv->p.tls_verdict(c->srv->p.arg, &i);
	event(c, "starttls");
	if (c->listen->mode == ST_LISTEN_SMTPS)
		st_smtp_server_greet(c->smtp, refuse);
	else
		st_smtp_server_tls_up(c->smtp, true, refuse);
	pump(c);
}

/* What TLS holds of the client's bytes, to the engine. */
static void tls_drain(struct st_conn *c)
{
	struct st_error err;

	if (c->closing)
		return;
	for (;;) {
		unsigned char plain[16384];
		long n = st_tls_read(c->tls, plain, sizeof(plain), &err);
		if (n == 0)
			break;
		if (n < 0) {
			st_smtp_server_eof(c->smtp);
			conn_close(c, "TLS closed");
			return;
		}
		feed(c, plain, (size_t)n);
		if (c->closing)
			return;
		if (c->paused)
			break; /* the rest waits in TLS until the engine drains */
	}
	flush_tls(c); /* session tickets, alerts */
}

static void accept_cb(uv_stream_t *ls, int status)
{
	struct lst *l = ls->data;
	struct st_server *s = l->srv;
	struct st_conn *c;
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	struct st_smtp_server_params sp;
	const char *refuse = NULL;
	unsigned total, from_peer;

	if (status < 0 || s->stopping)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->srv = s;
	c->listen = l->l;
	uv_mutex_lock(&s->sh->mu);
	c->id = ++s->sh->next_id;
	uv_mutex_unlock(&s->sh->mu);
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->idle);
	c->tcp.data = c->idle.data = c;
	c->handles = 2;
	s->open_handles++;
	c->next = s->all;
	if (c->next)
		c->next->prev = c;
	s->all = c;
	st_buf_init(&c->held, 4 * ST_SRV_IN_MAX);
	memset(&sp, 0, sizeof(sp));
	sp.hostname = s->p.hostname;
	sp.implicit_tls = l->l->mode == ST_LISTEN_SMTPS;
	sp.starttls = !sp.implicit_tls && s->p.tls.cert_file;
	sp.tls_required = l->l->mode == ST_LISTEN_SUBMISSION || s->p.tls_required;
	sp.auth = s->p.auth;
	sp.auth_plaintext = s->p.auth_plaintext;
	sp.max_size = s->p.max_size;
	sp.max_rcpt = s->p.max_rcpt;
	sp.timeout_ms = (unsigned long)s->p.idle_timeout_ms;
	sp.min_data_rate = s->p.min_data_rate;
	sp.body = on_body;
	sp.body_arg = c;
	sp.fault = s->p.fault;
	sp.fault_arg = s->p.arg;
	c->smtp = st_smtp_server_new(&sp);
	if (!c->smtp || uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
		snprintf(c->reason, sizeof(c->reason), "cannot accept");
		c->closing = true;
		uv_close((uv_handle_t *)&c->idle, conn_closed);
		uv_close((uv_handle_t *)&c->tcp, conn_closed);
		return;
	}
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET6) {
			uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof(c->peer));
			c->peer_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		} else {
			uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof(c->peer));
			c->peer_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		}
	}
	uv_tcp_nodelay(&c->tcp, 1);
	event(c, "connect");
	st_smtp_server_clock(c->smtp, uv_now(s->loop)); /* the first deadline: the greeting, TLS */
	arm(c);
	uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
	slot_take(c, &total, &from_peer);
	if (total > s->p.max_conns)
		refuse = "too many connections";
	else if (from_peer > s->p.max_per_client)
		refuse = "too many connections from your address";
	{
		const char *f = s->p.fault ? s->p.fault(s->p.arg, "connect") : NULL;
		if (f && !refuse) {
			/* an injected banner, in plaintext even on smtps, then the end */
			char line[600];
			snprintf(line, sizeof(line), "%s\r\n", f);
			send_raw(c, (const unsigned char *)line, strlen(line));
			snprintf(c->reason, sizeof(c->reason), "fault injected at connect");
			c->close_after_write = true;
			arm(c);
			return;
		}
	}
	if (refuse || l->l->mode != ST_LISTEN_SMTPS) {
		/* a refusal comes in plaintext even on smtps: no handshake is spent on it */
		if (refuse) {
			char line[200];
			snprintf(line, sizeof(line), "421 4.7.0 %s Error: %s\r\n", s->p.hostname,
			         refuse);
			send_raw(c, (const unsigned char *)line, strlen(line));
			st_cut_printf(c->reason, sizeof(c->reason), "%s", refuse);
			c->close_after_write = true;
			arm(c);
			return;
		}
		st_smtp_server_greet(c->smtp, NULL);
		pump(c);
		return;
	}
	start_tls(c); /* smtps: the client speaks first, with its ClientHello */
}

/*
 * Bind one listener and listen; the port bound is written back into l. With
 * reuseport the socket is made here with SO_REUSEPORT: each loop binds its own
 * socket to the same address and port, and the kernel spreads the connections
 * over them (by their addresses and ports).
 */
static int bind_listener(struct st_server *s, struct lst *x, struct st_listen *l,
                         struct sockaddr_storage *ss, bool reuseport)
{
	int rc, len = sizeof(*ss), fd, one = 1;
	bool v6 = ss->ss_family == AF_INET6;

	uv_tcp_init(s->loop, &x->tcp);
	x->tcp.data = x;
	s->n_lst++;
	s->open_handles++;
	if (reuseport) {
		fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return uv_translate_sys_error(errno);
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
		    (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
		    bind(fd, (struct sockaddr *)ss,
		         v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in))) {
			rc = uv_translate_sys_error(errno);
			close(fd);
			return rc;
		}
		rc = uv_tcp_open(&x->tcp, fd);
		if (rc < 0) {
			close(fd);
			return rc;
		}
	} else
		rc = uv_tcp_bind(&x->tcp, (struct sockaddr *)ss, v6 ? UV_TCP_IPV6ONLY : 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&x->tcp, 511, accept_cb);
	if (rc == 0 && uv_tcp_getsockname(&x->tcp, (struct sockaddr *)ss, &len) == 0)
		l->port = ntohs(v6 ? ((struct sockaddr_in6 *)ss)->sin6_port
		                   : ((struct sockaddr_in *)ss)->sin_port);
	return rc;
}

static struct st_server *start(uv_loop_t *loop, const struct st_server_params *p,
                               const struct st_server *from, struct st_error *err)
{
	struct st_server *s = calloc(1, sizeof(*s));
	size_t i;

	if (!s || !(s->lst = calloc(p->n_listen ? p->n_listen : 1, sizeof(*s->lst)))) {
		free(s);
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (from) {
		s->sh = from->sh;
		uv_mutex_lock(&s->sh->mu);
		s->sh->refs++;
		uv_mutex_unlock(&s->sh->mu);
	} else if (!(s->sh = calloc(1, sizeof(*s->sh))) || uv_mutex_init(&s->sh->mu)) {
		free(s->sh);
		free(s->lst);
		free(s);
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return NULL;
	} else
		s->sh->refs = 1;
	s->p = *p;
	s->loop = loop;
	if (!s->p.idle_timeout_ms)
		s->p.idle_timeout_ms = 300000;
	if (!s->p.max_conns)
		s->p.max_conns = 1000;
	if (!s->p.max_per_client)
		s->p.max_per_client = 50;
	for (i = 0; i < p->n_listen; i++) {
		struct st_listen *l = &p->listen[i];
		struct lst *x = &s->lst[i];
		struct sockaddr_storage ss;
		int rc;
		x->srv = s;
		x->l = l;
		/* a shared server binds the port the first one got */
		if (strchr(l->addr, ':'))
			rc = uv_ip6_addr(l->addr, (int)l->port, (struct sockaddr_in6 *)&ss);
		else
			rc = uv_ip4_addr(l->addr, (int)l->port, (struct sockaddr_in *)&ss);
		if (rc == 0)
			rc = bind_listener(s, x, l, &ss, p->reuseport);
		if (rc < 0) {
			st_error_set(err, ST_ERR_USAGE, "--listen %s%s%s:%u: %s",
			             strchr(l->addr, ':') ? "[" : "", l->addr,
			             strchr(l->addr, ':') ? "]" : "", l->port, uv_strerror(rc));
			/* close what was opened, on the caller's loop, before it goes on */
			st_server_stop(s, NULL, NULL);
			while (s->open_handles)
				uv_run(loop, UV_RUN_ONCE);
			st_server_free(s);
			return NULL;
		}
	}
	return s;
}

struct st_server *st_server_start(uv_loop_t *loop, const struct st_server_params *p,
                                  struct st_error *err)
{
	return start(loop, p, NULL, err);
}

struct st_server *st_server_start_shared(uv_loop_t *loop, const struct st_server_params *p,
                                         const struct st_server *from, struct st_error *err)
{
	return start(loop, p, from, err);
}

static void lst_closed(uv_handle_t *h)
{
	struct lst *x = h->data;

	x->srv->open_handles--;
	maybe_done(x->srv);
}

void st_server_stop(struct st_server *s, void (*done)(void *arg), void *arg)
{
	size_t i;

	if (s->stopping)
		return;
	s->stopping = true;
	s->done = done;
	s->done_arg = arg;
	for (i = 0; i < s->n_lst; i++)
		uv_close((uv_handle_t *)&s->lst[i].tcp, lst_closed);
	maybe_done(s);
}

void st_server_free(struct st_server *s)
{
	if (!s)
		return;
	if (s->sh) {
		int left;
		uv_mutex_lock(&s->sh->mu);
		left = --s->sh->refs;
		uv_mutex_unlock(&s->sh->mu);
		if (!left) {
			uv_mutex_destroy(&s->sh->mu);
			free(s->sh->peers);
			free(s->sh);
		}
	}
	free(s->lst);
	free(s);
}

unsigned st_server_connections(const struct st_server *s)
{
	unsigned n;

	uv_mutex_lock(&s->sh->mu);
	n = s->sh->conns;
	uv_mutex_unlock(&s->sh->mu);
	return n;
}

uv_loop_t *st_conn_loop(const struct st_conn *c)
{
	return c->srv->loop;
}

void st_conn_set_user(struct st_conn *c, void *user)
{
	c->user = user;
}

void *st_conn_user(const struct st_conn *c)
{
	return c->user;
}
