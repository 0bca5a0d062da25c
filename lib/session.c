/* session.c: one SMTP session to one address on a libuv loop: the socket, TLS and the SMTP engine together */
#include "config.h"

#include "session.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <uv.h>

struct run {
	const struct st_session_params *p; /* &params */
	struct st_session_params params;   /* a copy: the caller's may go before we end */
	struct st_session_result *res;
	st_session_done_cb done;
	void *done_arg;
	uv_loop_t *loop;
	int open_handles; /* handles not closed yet: the end comes when none is left */
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t connect;
	bool tls_on;      /* bytes on the wire are TLS records */
	bool handshaking; /* the handshake is not done yet */
	bool first_tls_read; /* nothing read from the server since STARTTLS yet */
	bool got_bytes;      /* the server has sent something */
	bool closing;
	bool ending; /* the session is over: what is still sent (close_notify) may fail */
	uint64_t t0;
	/* interactive: the user's input, read only while the engine wants a line */
	union {
		uv_handle_t h;
		uv_stream_t s;
		uv_pipe_t pipe;
		uv_tty_t tty;
	} user;
	uv_fs_t user_fs;   /* a regular file is read with uv_fs_read */
	bool user_stream;  /* user is open (a pipe or a terminal) */
	bool user_file;    /* user_fd is a regular file */
	bool user_reading; /* a read of the user's input is under way */
	bool user_eof;
	unsigned long user_lines;
	struct st_buf user_in;
	char user_space[65536];
};

struct write_req {
	uv_write_t req;
	uv_buf_t buf;
};

static void fail(struct run *r, enum st_err_class cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct run *r, enum st_err_class cls, const char *fmt, ...)
{
	va_list ap;

	if (r->res->failed)
		return;
	r->res->failed = true;
	r->res->error.cls = cls;
	va_start(ap, fmt);
	vsnprintf(r->res->error.msg, sizeof(r->res->error.msg), fmt, ap);
	va_end(ap);
	st_sanitize(r->res->error.msg);
}

/* Every handle of a run closes here; the last one ends it (and a file read under way
 * must come back first: it holds the run). */
static void maybe_done(struct run *r)
{
	if (r->open_handles > 0 || (r->user_file && r->user_reading))
		return;
	st_buf_release(&r->user_in);
	r->done(r->res, r->done_arg);
	free(r);
}

static void closed_cb(uv_handle_t *h)
{
	struct run *r = h->data;

	r->open_handles--;
	maybe_done(r);
}

static void finish(struct run *r)
{
	if (r->closing)
		return;
	r->closing = true;
	r->res->total_ms = (double)(uv_now(r->loop) - r->t0);
	uv_timer_stop(&r->timer);
	if (r->user_file && r->user_reading)
		uv_cancel((uv_req_t *)&r->user_fs);
	uv_close((uv_handle_t *)&r->timer, closed_cb);
	uv_close((uv_handle_t *)&r->tcp, closed_cb);
	if (r->user_stream)
		uv_close(&r->user.h, closed_cb);
}

static void arm_timer(struct run *r);

static void write_cb(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct run *r = req->data;

	explicit_bzero(w->buf.base, w->buf.len); /* plaintext AUTH lines pass here */
	free(w->buf.base);
	free(w);
	if (status < 0 && !r->closing) {
		fail(r, ST_ERR_CONNECT, "cannot send: %s", uv_strerror(status));
		finish(r);
	}
}

/* Send bytes as they are (TLS records, or plaintext before TLS). */
static int send_raw(struct run *r, const unsigned char *data, size_t len)
{
	struct write_req *w;
	int rc;

	if (len == 0)
		return 0;
	w = calloc(1, sizeof(*w));
	if (!w || !(w->buf.base = malloc(len))) {
		free(w);
		if (!r->ending)
			fail(r, ST_ERR_INTERNAL, "out of memory");
		return -1;
	}
	memcpy(w->buf.base, data, len);
	w->buf.len = len;
	w->req.data = r;
	{
		/* uv_write copies the descriptors; the bytes stay in w until write_cb */
		uv_buf_t bufs[1];
		bufs[0] = w->buf;
		rc = uv_write(&w->req, (uv_stream_t *)&r->tcp, bufs, 1, write_cb);
	}
	if (rc < 0) {
		free(w->buf.base);
		free(w);
		if (!r->ending)
			fail(r, ST_ERR_CONNECT, "cannot send: %s", uv_strerror(rc));
		return -1;
	}
	return 0;
}

static int flush_tls(struct run *r)
{
	size_t n;
	const unsigned char *o = st_tls_output(r->res->tls, &n);

	if (send_raw(r, o, n))
		return -1;
	st_tls_output_done(r->res->tls, n);
	return 0;
}

static int start_tls(struct run *r)
{
	struct st_error err;

	r->res->tls = st_tls_new(&r->p->tls, &err);
	if (!r->res->tls) {
		fail(r, err.cls, "%s", err.msg);
		return -1;
	}
	r->tls_on = true;
	r->handshaking = true;
	r->first_tls_read = r->p->smtp.mode == ST_SMTP_STARTTLS;
	arm_timer(r); /* the whole handshake is due within the timeout */
	if (st_tls_handshake(r->res->tls, &err) < 0) {
		fail(r, ST_ERR_TLS, "%s", err.msg);
		return -1;
	}
	return flush_tls(r);
}

/* ---- interactive: the user's lines ---- */

static void user_read(struct run *r);
static void drive(struct run *r);

/* Give the engine the next whole line of the user's input (or the last, unended one at
 * the end of the input, or the end itself): 1 when it took something, 0 when there is
 * nothing to give yet, -1 when the session fails. */
static int user_line(struct run *r)
{
	struct st_buf *in = &r->user_in;
	size_t len = 0, end;

	/* a line ends at LF, CRLF, or a CR that no LF follows */
	while (len < in->len && in->data[len] != '\n' && in->data[len] != '\r')
		len++;
	if (len == in->len || (in->data[len] == '\r' && len + 1 == in->len && !r->user_eof)) {
		/* no whole line yet (a CR at the end may be half a CRLF) */
		if (len > ST_SESSION_USER_LINE_MAX)
			goto toolong;
		if (!r->user_eof)
			return 0;
		if (!in->len) {
			st_smtp_client_user_eof(r->res->smtp);
			return st_smtp_client_want(r->res->smtp) == ST_SMTP_WANT_LINE ? 0 : 1;
		}
	}
	end = len;
	if (end < in->len)
		end += (in->data[end] == '\r' && end + 1 < in->len && in->data[end + 1] == '\n') ? 2 : 1;
	if (st_smtp_client_user_line(r->res->smtp, (const char *)in->data, len) == ST_E_TOOBIG)
		goto toolong;
	r->user_lines++;
	memmove(in->data, in->data + end, in->len - end);
	in->len -= end;
	return 1;
toolong:
	fail(r, ST_ERR_INPUT, "line %lu of the input is over %d bytes: not sent", r->user_lines + 1,
	     ST_SESSION_USER_LINE_MAX);
	return -1;
}

static void user_take(struct run *r, const char *data, size_t n)
{
	if (st_buf_add(&r->user_in, data, n)) {
		fail(r, ST_ERR_INPUT, "line %lu of the input is over %d bytes: not sent",
		     r->user_lines + 1, ST_SESSION_USER_LINE_MAX);
		finish(r);
		return;
	}
	if (st_smtp_client_want(r->res->smtp) == ST_SMTP_WANT_LINE)
		drive(r);
}

static void user_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct run *r = h->data;

	(void)suggested;
	buf->base = r->user_space;
	buf->len = sizeof(r->user_space);
}

static void user_stream_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct run *r = s->data;

	if (r->closing || nread == 0)
		return;
	uv_read_stop(s); /* one read per wanted line: the rest waits in the pipe */
	r->user_reading = false;
	if (nread < 0) {
		r->user_eof = true;
		if (nread != UV_EOF)
			fail(r, ST_ERR_INPUT, "cannot read the input: %s", uv_strerror((int)nread));
		if (r->res->failed) {
			finish(r);
			return;
		}
		drive(r);
		return;
	}
	user_take(r, buf->base, (size_t)nread);
}

static void user_fs_cb(uv_fs_t *req)
{
	struct run *r = req->data;
	ssize_t n = req->result;

	uv_fs_req_cleanup(req);
	r->user_reading = false;
	if (r->closing) {
		maybe_done(r);
		return;
	}
	if (n <= 0) {
		r->user_eof = true;
		if (n < 0) {
			fail(r, ST_ERR_INPUT, "cannot read the input: %s", uv_strerror((int)n));
			finish(r);
			return;
		}
		drive(r);
		return;
	}
	user_take(r, r->user_space, (size_t)n);
}

/* Ask for more of the user's input (nothing when a read is under way or it ended). */
static void user_read(struct run *r)
{
	int rc = 0;

	if (r->user_reading || r->user_eof || r->closing)
		return;
	r->user_reading = true;
	if (r->user_file) {
		uv_buf_t b = uv_buf_init(r->user_space, sizeof(r->user_space));
		r->user_fs.data = r;
		rc = uv_fs_read(r->loop, &r->user_fs, r->p->user_fd, &b, 1, -1, user_fs_cb);
	} else if (r->user_stream) {
		rc = uv_read_start(&r->user.s, user_alloc_cb, user_stream_cb);
	} else {
		r->user_reading = false;
		r->user_eof = true;
		drive(r);
		return;
	}
	if (rc < 0) {
		r->user_reading = false;
		fail(r, ST_ERR_INPUT, "cannot read the input: %s", uv_strerror(rc));
		finish(r);
	}
}

/* Open the user's input on the loop: a terminal, a pipe or socket, or a regular file. */
static int user_open(struct run *r)
{
	int fd = r->p->user_fd, rc;

	st_buf_init(&r->user_in, ST_SESSION_USER_LINE_MAX + sizeof(r->user_space) + 2);
	switch (uv_guess_handle(fd)) {
	case UV_TTY:
		rc = uv_tty_init(r->loop, &r->user.tty, fd, 1);
		break;
	case UV_NAMED_PIPE:
	case UV_TCP:
		rc = uv_pipe_init(r->loop, &r->user.pipe, 0);
		if (rc == 0 && (rc = uv_pipe_open(&r->user.pipe, fd)) < 0) {
			r->user.h.data = r;
			r->open_handles++;
			uv_close(&r->user.h, closed_cb);
		}
		break;
	case UV_FILE: {
		/* a regular file; a device here (a tty is UV_TTY) could block a worker for ever */
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			r->user_file = true;
			return 0;
		}
		rc = UV_EINVAL;
		break;
	}
	default:
		rc = UV_EINVAL;
	}
	if (rc < 0) {
		if (rc == UV_EINVAL)
			fail(r, ST_ERR_INPUT,
			     "the input (fd %d) is no terminal, pipe or regular file", fd);
		else
			fail(r, ST_ERR_INPUT, "cannot read the input (fd %d): %s", fd,
			     uv_strerror(rc));
		return -1;
	}
	r->user.h.data = r;
	r->user_stream = true;
	r->open_handles++;
	return 0;
}

/* Do what the SMTP engine wants until it waits for the server. */
static void drive(struct run *r)
{
	struct st_smtp_client *c = r->res->smtp;
	struct st_error err;

	while (!r->closing && !r->res->failed) {
		enum st_smtp_want want = st_smtp_client_want(c);
		if (want == ST_SMTP_WANT_WRITE) {
			size_t n;
			const unsigned char *o = st_smtp_client_output(c, &n);
			if (r->tls_on) {
				if (st_tls_write(r->res->tls, o, n, &err)) {
					fail(r, ST_ERR_TLS, "%s", err.msg);
					break;
				}
				if (flush_tls(r))
					break;
			} else if (send_raw(r, o, n)) {
				break;
			}
			st_smtp_client_sent(c, n);
			arm_timer(r); /* the reply to this command is due within the timeout */
			continue;
		}
		if (want == ST_SMTP_WANT_TLS && !r->tls_on) {
			if (start_tls(r))
				break;
			return;
		}
		if (want == ST_SMTP_WANT_CLOSE) {
			/* after QUIT, as Postfix's smtp client: the server tells the end of the
			 * session from a cut connection */
			r->ending = true;
			if (r->tls_on && r->res->tls_done && st_tls_bye(r->res->tls) == 0)
				flush_tls(r);
			break;
		}
		if (want == ST_SMTP_WANT_LINE) {
			int rc = user_line(r);
			if (rc > 0)
				continue;
			if (rc < 0)
				break;
			uv_timer_stop(&r->timer); /* the user takes their time */
			user_read(r);
			return;
		}
		return; /* read, or a handshake under way */
	}
	finish(r);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	/* a loop runs on one thread and read_cb takes the bytes before it returns */
	static _Thread_local char space[65536];

	buf->base = space;
	buf->len = sizeof(space);
}

/* Plaintext from the TLS layer to the SMTP engine. */
static void pump_tls_plaintext(struct run *r)
{
	unsigned char buf[16384];
	struct st_error err;
	long n;

	for (;;) {
		n = st_tls_read(r->res->tls, buf, sizeof(buf), &err);
		if (n == 0)
			return;
		if (n < 0) {
			st_smtp_client_eof(r->res->smtp, err.msg);
			return;
		}
		st_smtp_client_input(r->res->smtp, buf, (size_t)n);
	}
}

/*
 * The server's first bytes against the mode: a TLS record (a handshake or an
 * alert, version 3.x) where the greeting is due, or a reply ("220 ...") where
 * the implicit-TLS handshake is due, mean the other kind of port. Fails the
 * session with a clue and returns 1 then.
 */
static int wrong_port(struct run *r, const unsigned char *b, size_t n)
{
	if (!r->tls_on && n >= 2 && b[0] >= 20 && b[0] <= 23 && b[1] == 3) {
		r->res->clue = ST_SESSION_CLUE_TLS_AT_BANNER;
		fail(r, ST_ERR_PROTOCOL,
		     "the server sent a TLS record where the SMTP greeting was due");
		return 1;
	}
	if (r->tls_on && r->handshaking && r->p->smtp.mode == ST_SMTP_IMPLICIT && n >= 4 &&
	    isdigit(b[0]) && isdigit(b[1]) && isdigit(b[2]) && (b[3] == ' ' || b[3] == '-')) {
		size_t len = 0;
		while (len < n && len < 120 && b[len] != '\r' && b[len] != '\n')
			len++;
		r->res->clue = ST_SESSION_CLUE_SMTP_AT_TLS;
		fail(r, ST_ERR_TLS,
		     "the server sent an SMTP greeting where the TLS handshake was due: '%.*s'",
		     (int)len, (const char *)b);
		return 1;
	}
	return 0;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct run *r = s->data;
	struct st_error err;
	int rc;

	if (r->closing)
		return;
	if (nread == UV_EOF) {
		if (r->handshaking)
			fail(r, ST_ERR_TLS,
			     "the server closed the connection during the TLS handshake");
		st_smtp_client_eof(r->res->smtp, NULL);
		finish(r);
		return;
	}
	if (nread < 0) {
		fail(r, ST_ERR_CONNECT, "cannot read: %s", uv_strerror((int)nread));
		finish(r);
		return;
	}
	if (nread == 0)
		return;
	if (!r->got_bytes) {
		r->got_bytes = true;
		if (wrong_port(r, (const unsigned char *)buf->base, (size_t)nread)) {
			finish(r);
			return;
		}
	}
	/* no re-arming here: a server that drips a byte at a time must still
	 * answer each command within the timeout (a deadline per step) */
	if (!r->tls_on) {
		st_smtp_client_input(r->res->smtp, (const unsigned char *)buf->base, (size_t)nread);
		drive(r);
		return;
	}
	if (r->first_tls_read) {
		/* A TLS server speaks first with a record: handshake (22) or alert (21).
		 * SMTP text here, in a later read than the 220, is injection all the same:
		 * count it where the engine counts it and say so, not "bad TLS packet". */
		unsigned char t = (unsigned char)buf->base[0];
		r->first_tls_read = false;
		if (t != 22 && t != 21) {
			st_smtp_client_input(r->res->smtp, (const unsigned char *)buf->base,
			                     (size_t)nread);
			fail(r, ST_ERR_TLS,
			     "the server sent %zd bytes of plaintext after the STARTTLS 220, "
			     "not a TLS handshake (response injection)",
			     nread);
			st_smtp_client_tls_up(r->res->smtp, false, "plaintext instead of TLS");
			finish(r);
			return;
		}
	}
	if (st_tls_input(r->res->tls, (const unsigned char *)buf->base, (size_t)nread)) {
		fail(r, ST_ERR_PROTOCOL, "too much TLS data at once");
		finish(r);
		return;
	}
	if (r->handshaking) {
		rc = st_tls_handshake(r->res->tls, &err);
		if (flush_tls(r) || rc < 0) {
			if (rc < 0) {
				fail(r, ST_ERR_TLS, "%s", err.msg);
				st_smtp_client_tls_up(r->res->smtp, false, err.msg);
				/* what is known of a failed handshake: whether the server
				 * asked for a client certificate, above all */
				st_tls_summary(r->res->tls, &r->res->tls_summary);
			}
			finish(r);
			return;
		}
		if (rc == 0)
			return;
		r->handshaking = false;
		r->res->tls_done = true;
		st_tls_summary(r->res->tls, &r->res->tls_summary);
		if (r->p->tls_check) {
			char why[256] = "";
			if (r->p->tls_check(r->p->tls_check_arg, r->res->tls, why, sizeof(why)))
				st_smtp_client_hold(r->res->smtp, why);
		}
		if (r->p->smtp.log) {
			/* the TLS boundary, marked in the transcript */
			const struct st_tls_summary *t = &r->res->tls_summary;
			char l[200];
			snprintf(l, sizeof(l), "TLS handshake done: %s %s%s%s%s", t->version,
			         t->cipher, t->group[0] ? " group " : "", t->group,
			         t->resumed ? " (resumed)" : "");
			r->p->smtp.log(r->p->smtp.log_arg, '*', true, l);
		}
		if (r->p->smtp.mode == ST_SMTP_STARTTLS)
			st_smtp_client_tls_up(r->res->smtp, true, NULL);
		/* 421 and friends may come in the same read as the last handshake bytes */
	}
	pump_tls_plaintext(r);
	if (!r->res->tls_done)
		return;
	drive(r);
}

static void timer_cb(uv_timer_t *t)
{
	struct run *r = t->data;
	const struct st_smtp_result *sr = st_smtp_client_result(r->res->smtp);

	r->res->timed_out = true;
	if (!r->res->connected) {
		r->res->connect_errno = ETIMEDOUT;
		fail(r, ST_ERR_CONNECT, "connection timed out after %ld ms", r->p->timeout_ms);
	} else if (r->handshaking)
		fail(r, ST_ERR_TLS, "TLS handshake timed out after %ld ms", r->p->timeout_ms);
	else
		fail(r, ST_ERR_PROTOCOL, "no reply within %ld ms (%s)", r->p->timeout_ms,
		     st_smtp_stage_name(sr->stage));
	finish(r);
}

static void arm_timer(struct run *r)
{
	uv_timer_start(&r->timer, timer_cb, (uint64_t)r->p->timeout_ms, 0);
}

static void connect_cb(uv_connect_t *req, int status)
{
	struct run *r = req->data;

	if (r->closing)
		return;
	if (status < 0) {
		r->res->connect_errno = -status; /* libuv's codes are negated errnos on Unix */
		fail(r, ST_ERR_CONNECT, "cannot connect: %s", uv_strerror(status));
		finish(r);
		return;
	}
	r->res->connected = true;
	r->res->connect_ms = (double)(uv_now(r->loop) - r->t0);
	arm_timer(r);
	uv_read_start((uv_stream_t *)&r->tcp, alloc_cb, read_cb);
	if (r->p->smtp.mode == ST_SMTP_IMPLICIT && start_tls(r))
		finish(r);
}

int st_session_start(uv_loop_t *loop, const struct st_session_params *p,
                     struct st_session_result *res, st_session_done_cb done, void *arg)
{
	struct run *r;
	int rc;

	memset(res, 0, sizeof(*res));
	r = calloc(1, sizeof(*r));
	res->smtp = st_smtp_client_new(&p->smtp);
	if (!r || !res->smtp) {
		free(r);
		st_error_set(&res->error, ST_ERR_INTERNAL, "out of memory");
		res->failed = true;
		return ST_E_NOMEM;
	}
	r->params = *p;
	r->p = &r->params;
	r->res = res;
	r->done = done;
	r->done_arg = arg;
	r->loop = loop;
	uv_tcp_init(loop, &r->tcp);
	uv_timer_init(loop, &r->timer);
	r->tcp.data = r;
	r->timer.data = r;
	r->connect.data = r;
	r->open_handles = 2;
	r->t0 = uv_now(loop);
	if (p->smtp.interactive && user_open(r)) {
		finish(r);
		return ST_OK;
	}
	arm_timer(r);
	rc = uv_tcp_connect(&r->connect, &r->tcp, p->addr, connect_cb);
	if (rc < 0) {
		r->res->connect_errno = -rc;
		fail(r, ST_ERR_CONNECT, "cannot connect: %s", uv_strerror(rc));
		finish(r);
	}
	return ST_OK;
}

static void run_done(struct st_session_result *res, void *arg)
{
	(void)res;
	*(bool *)arg = true;
}

int st_session_run(const struct st_session_params *p, struct st_session_result *res)
{
	uv_loop_t loop;
	bool ended = false;
	int rc = uv_loop_init(&loop);

	if (rc < 0) {
		memset(res, 0, sizeof(*res));
		st_error_set(&res->error, ST_ERR_INTERNAL, "cannot start the event loop: %s",
		             uv_strerror(rc));
		res->failed = true;
		return ST_E_IO;
	}
	rc = st_session_start(&loop, p, res, run_done, &ended);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (rc < 0)
		return rc;
	return res->failed && !res->connected ? ST_E_IO : ST_OK;
}

void st_session_result_release(struct st_session_result *res)
{
	st_smtp_client_free(res->smtp);
	st_tls_free(res->tls);
	memset(res, 0, sizeof(*res));
}
