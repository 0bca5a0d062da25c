/* fuzz-smtp-session.c: libFuzzer target for the SMTP server engine fed whole sessions, with invariants checked after every step */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The input is a session, decoded into steps (one opcode byte, then its arguments):
 *   0 a chunk of raw client bytes (1 to 64)      4 drain the output (all, or some)
 *   1 a command from a list                      5 stop draining for up to 255 steps
 *   2 message lines (dot-stuffed, bare LF, CR,   6 the clock moves on
 *     long lines, empty lines)                   7 how the next decisions are answered
 *   3 the end of a message (CRLF . CRLF)
 * The first byte picks the session's settings. After every step: the unsent output is
 * at most ST_SRV_OUT_MAX plus one reply; the body given to the callback is what a
 * model of the client's dot-unstuffing says, and complete at END; END comes only after
 * the end was sent; the deadline is never further than the timeout; past it, a 421.
 */

#define TIMEOUT_MS 10000
#define HELD_MAX   (1u << 20)

struct model {
	bool active;   /* a message is being received and its bytes are known */
	bool ended;    /* its end was sent */
	bool too_long; /* a line over ST_SRV_TEXT_MAX */
	int st;        /* 0 line start, 1 after a dot there, 2 after ".\r", 3 in a line */
	bool cr;       /* the last byte of the line was a CR */
	size_t line;   /* bytes of the line so far */
	size_t n_exp;
	unsigned char exp[1u << 20]; /* last: what is before it is cleared for each message */
};

struct fz {
	struct st_smtp_server *s;
	size_t n_got, max_size;
	bool got_overflow;
	size_t n_held;
	unsigned long long now;
	unsigned answers; /* bits: yes or no for the next decisions */
	unsigned k;
	unsigned no_drain; /* steps left without draining */
	unsigned tls_fail;
	/* the big buffers last: what is before them is cleared for each input */
	struct model m;
	unsigned char got[1u << 20];
	unsigned char held[HELD_MAX]; /* what the engine could not take yet, as server.c holds it */
};

static struct fz *F;

static void check(bool c, const char *what)
{
	if (!c) {
		fprintf(stderr, "invariant broken: %s\n", what);
		abort();
	}
}

static void on_body(void *arg, const unsigned char *d, size_t n)
{
	struct fz *f = arg;

	check(n > 0, "no empty body calls");
	if (f->n_got + n > sizeof(f->got)) {
		f->got_overflow = true;
		return;
	}
	memcpy(f->got + f->n_got, d, n);
	f->n_got += n;
	if (f->m.active && !f->got_overflow)
		check(f->n_got <= f->m.n_exp && memcmp(f->got, f->m.exp, f->n_got) == 0,
		      "the body is the dot-unstuffed bytes the client sent");
}

static void emit(struct model *m, unsigned char c)
{
	if (m->n_exp == sizeof(m->exp)) {
		m->active = false; /* past what the model keeps: not checked */
		return;
	}
	m->exp[m->n_exp++] = c;
	if (++m->line > ST_SRV_TEXT_MAX)
		m->too_long = true;
}

/* One byte in a line (after its start). */
static void mid(struct model *m, unsigned char c)
{
	emit(m, c);
	if (m->cr && c == '\n') {
		m->st = 0;
		m->line = 0;
		m->cr = false;
		return;
	}
	m->cr = c == '\r';
	m->st = 3;
}

/* The client's bytes as the model of a message reads them. */
static void model_feed(struct model *m, const unsigned char *d, size_t n)
{
	size_t i;

	for (i = 0; i < n && m->active && !m->ended; i++) {
		unsigned char c = d[i];
		switch (m->st) {
		case 0:
			if (c == '.')
				m->st = 1;
			else
				mid(m, c);
			break;
		case 1: /* ".": the end if CRLF follows, else a stuffed dot (dropped) */
			if (c == '\r')
				m->st = 2;
			else
				mid(m, c);
			break;
		case 2:
			if (c == '\n') {
				m->ended = true;
				break;
			}
			m->cr = false;
			mid(m, '\r');
			mid(m, c);
			break;
		default:
			mid(m, c);
		}
	}
}

static void drain(struct fz *f, size_t max)
{
	size_t len;

	st_smtp_server_output(f->s, &len);
	st_smtp_server_sent(f->s, len < max ? len : max);
}

/* Offer the engine what is held. */
static void push(struct fz *f)
{
	size_t took;

	if (!f->n_held || st_smtp_server_next(f->s, NULL) == ST_SRV_CLOSE)
		return;
	took = st_smtp_server_input(f->s, f->held, f->n_held);
	check(took <= f->n_held, "input takes at most what it is given");
	memmove(f->held, f->held + took, f->n_held - took);
	f->n_held -= took;
}

/* Answer what the engine asks, as the server does. */
static void decide(struct fz *f)
{
	struct st_srv_request req;
	unsigned rounds = 0;

	for (;;) {
		enum st_srv_event ev = st_smtp_server_next(f->s, &req);
		bool yes = ((f->answers >> (f->k++ % 16)) & 1) != 0;

		check(++rounds < 100000, "decisions end");
		if (ev == ST_SRV_NONE) {
			size_t before = f->n_held;
			push(f);
			if (f->n_held == before)
				return;
			continue;
		}
		if (ev == ST_SRV_CLOSE)
			return;
		if (ev == ST_SRV_END) {
			check(f->m.active ? f->m.ended : true, "no END before the end was sent");
			if (f->m.active && !f->got_overflow) {
				check(!f->m.too_long && f->m.n_exp <= f->max_size,
				      "no END for a message too long or too big");
				check(f->n_got == f->m.n_exp &&
				          memcmp(f->got, f->m.exp, f->n_got) == 0 &&
				          req.size == f->n_got,
				      "the whole body, at END");
			}
			f->m.active = false;
		}
		if (ev == ST_SRV_TLS) {
			st_smtp_server_tls_up(f->s, !(f->tls_fail & 1),
			                      (f->tls_fail & 2) ? "no" : NULL);
			f->tls_fail >>= 2;
			continue;
		}
		if (ev == ST_SRV_DATA && yes) {
			/* the message's bytes are known when nothing was pipelined behind DATA */
			memset(&f->m, 0, offsetof(struct model, exp));
			f->m.active = st_smtp_server_buffered(f->s) == 0 && f->n_held == 0;
			f->n_got = 0;
			f->got_overflow = false;
		}
		st_smtp_server_answer(f->s, yes, yes ? "QF1" : NULL);
	}
}

static void send_bytes(struct fz *f, const unsigned char *d, size_t n)
{
	if (st_smtp_server_next(f->s, NULL) == ST_SRV_CLOSE)
		return;
	if (f->n_held + n > HELD_MAX)
		n = HELD_MAX - f->n_held; /* server.c closes there; here the rest is lost */
	model_feed(&f->m, d, n);
	memcpy(f->held + f->n_held, d, n);
	f->n_held += n;
	push(f);
}

#define N8  "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n"
#define N64 N8 N8 N8 N8 N8 N8 N8 N8

static const char *const commands[] = {
    "EHLO client.fuzz.test\r\n",
    "HELO client.fuzz.test\r\n",
    "MAIL FROM:<a@fuzz.test>\r\n",
    "MAIL FROM:<a@fuzz.test> SIZE=100\r\n",
    "RCPT TO:<b@fuzz.test>\r\n",
    "DATA\r\n",
    "RSET\r\n",
    "NOOP\r\n",
    "QUIT\r\n",
    "STARTTLS\r\n",
    "AUTH PLAIN AGEAcA==\r\n",
    "AUTH LOGIN\r\n",
    "VRFY xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n",
    N64, /* 64 pipelined: 896 bytes of replies */
    "MAIL FROM:<a@fuzz.test>\r\nRCPT TO:<b@fuzz.test>\r\nDATA\r\n",
    "BDAT 10\r\n",
};

static void lines(struct fz *f, const uint8_t **d, size_t *n)
{
	unsigned count, i;
	static unsigned char buf[4096];

	if (!*n)
		return;
	count = 1 + (*d)[0] % 8;
	(*d)++, (*n)--;
	for (i = 0; i < count && *n; i++) {
		unsigned kind = (*d)[0] % 9;
		size_t len = 0;
		(*d)++, (*n)--;
		switch (kind) {
		case 0:
			len = (size_t)snprintf((char *)buf, sizeof(buf), "Subject: fuzz\r\n");
			break;
		case 1:
			len = (size_t)snprintf((char *)buf, sizeof(buf), ".stuffed\r\n");
			break;
		case 2:
			len = (size_t)snprintf((char *)buf, sizeof(buf), "..\r\n");
			break;
		case 3:
			len = (size_t)snprintf((char *)buf, sizeof(buf), "bare\n.\nlf\r\n");
			break;
		case 4:
			len = (size_t)snprintf((char *)buf, sizeof(buf), "cr\r.\rcr\r\n");
			break;
		case 5:
			memset(buf, 'L', 1200);
			memcpy(buf + 1200, "\r\n", 2);
			len = 1202;
			break;
		case 6:
			len = (size_t)snprintf((char *)buf, sizeof(buf), "\r\n");
			break;
		case 7:
			memset(buf, 'x', 998);
			memcpy(buf + 998, "\r\n", 2);
			len = 1000;
			break;
		default:
			len = (size_t)snprintf((char *)buf, sizeof(buf), ".\r");
			break;
		}
		send_bytes(f, buf, len);
	}
}

static void step_checks(struct fz *f)
{
	size_t len;
	unsigned long long dl = st_smtp_server_deadline(f->s);

	st_smtp_server_output(f->s, &len);
	check(len <= ST_SRV_OUT_MAX + ST_SRV_REPLY_MAX,
	      "the unsent output is at most the cap and one reply");
	check(st_smtp_server_buffered(f->s) <= ST_SRV_IN_MAX, "the input held is capped");
	check(!dl || dl <= f->now + TIMEOUT_MS, "the deadline is never beyond the timeout");
	if (dl && f->now >= dl) {
		st_smtp_server_timeout(f->s);
		check(st_smtp_server_next(f->s, NULL) == ST_SRV_CLOSE,
		      "a timeout ends the session");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_smtp_server_params p;
	struct fz *f;
	unsigned seed;

	if (size < 1)
		return 0;
	if (!F && !(F = malloc(sizeof(*F))))
		return 0;
	f = F;
	memset(f, 0, offsetof(struct fz, m));
	memset(&f->m, 0, offsetof(struct model, exp));
	seed = data[0];
	memset(&p, 0, sizeof(p));
	p.hostname = "fuzz.test";
	p.starttls = !(seed & 1);
	p.tls_required = seed & 2;
	p.auth = seed & 4;
	p.auth_plaintext = seed & 8;
	p.implicit_tls = seed & 16;
	p.max_size = seed & 32 ? 3000 : 0;
	p.timeout_ms = TIMEOUT_MS;
	p.min_data_rate = seed & 64 ? 1 : 500;
	p.body = on_body;
	p.body_arg = f;
	f->max_size = p.max_size ? p.max_size : 10240000;
	f->answers = 0xffff;
	f->tls_fail = seed & 128 ? 0x9 : 0;
	f->now = 1000;
	f->s = st_smtp_server_new(&p);
	if (!f->s)
		return 0;
	st_smtp_server_clock(f->s, f->now);
	st_smtp_server_greet(f->s, NULL);
	data++, size--;
	while (size > 0 && st_smtp_server_next(f->s, NULL) != ST_SRV_CLOSE) {
		unsigned op = data[0] % 8;
		data++, size--;
		switch (op) {
		case 0: {
			size_t n = size ? 1 + data[0] % 64 : 0;
			if (size) {
				data++, size--;
			}
			if (n > size)
				n = size;
			send_bytes(f, data, n);
			data += n, size -= n;
			break;
		}
		case 1:
			if (size) {
				const char *c =
				    commands[data[0] % (sizeof(commands) / sizeof(*commands))];
				data++, size--;
				send_bytes(f, (const unsigned char *)c, strlen(c));
			}
			break;
		case 2:
			lines(f, &data, &size);
			break;
		case 3:
			send_bytes(f, (const unsigned char *)".\r\n", 3);
			break;
		case 4:
			if (size) {
				drain(f, data[0] & 1 ? (size_t)data[0] * 13 : (size_t)-1);
				data++, size--;
			}
			break;
		case 5:
			if (size) {
				f->no_drain = data[0];
				data++, size--;
			}
			break;
		case 6:
			if (size) {
				f->now += data[0] & 0x80
				              ? (unsigned long long)(data[0] & 0x7f) * 1000
				              : (unsigned long long)data[0] * 7;
				data++, size--;
			}
			st_smtp_server_clock(f->s, f->now);
			break;
		default:
			if (size >= 2) {
				f->answers = (unsigned)data[0] | (unsigned)data[1] << 8;
				data += 2, size -= 2;
			}
			break;
		}
		decide(f);
		if (f->no_drain)
			f->no_drain--;
		else
			drain(f, (size_t)-1);
		decide(f);
		step_checks(f);
	}
	st_smtp_server_free(f->s);
	return 0;
}
