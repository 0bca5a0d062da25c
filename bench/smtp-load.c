/* smtp-load.c: the TLS load generator of bench/serve: messages, handshakes, idle connections */

/*
 * One thread, one epoll loop, nonblocking sockets, GnuTLS: it must cost less CPU per message
 * or handshake than the server it measures, and hold thousands of connections at once.
 * bench/serve builds it with cc against GnuTLS; it is no part of smtptls.
 *
 *   smtp-load [-m MODE] [-T TLS] [-n COUNT] [-c CONCURRENCY] [-l BYTES] [-p PRIORITY]
 *             [-w SECONDS] PORT
 *
 * MODE mail (default): COUNT messages of BYTES (default 4096) in CONCURRENCY sessions to
 *   127.0.0.1:PORT; each session: banner, EHLO, [STARTTLS, EHLO,] then MAIL, RCPT, DATA,
 *   message, one message after the other without pipelining, as long as messages are left,
 *   then QUIT.
 * MODE handshake: COUNT connections, CONCURRENCY at once: connect, TLS handshake, read the
 *   220 banner, close (with a reset, so that no TIME_WAIT is left behind, as in idle).
 * MODE idle: COUNT connections, CONCURRENCY being opened at once, each left idle after the
 *   banner (implicit TLS) or after the EHLO that follows STARTTLS; prints "ready ..." when
 *   all are open, holds them until standard input is closed, then prints "closed ...".
 *
 * TLS is none, starttls (default) or implicit; PRIORITY defaults to TLS 1.3 only, X25519
 * first. The server's certificate is not verified (its signature in the handshake is). The
 * result is one line of name=value pairs on standard output; cpu is the generator's CPU time
 * over the wall time (1.00: one core busy, the generator is then the bottleneck). Exit
 * status 1 when some connection failed or the run timed out (-w, default 300 s).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

enum mode { M_MAIL, M_HANDSHAKE, M_IDLE };
enum tls { T_NONE, T_STARTTLS, T_IMPLICIT };
enum state {
	S_CONNECT,
	S_TLS,
	S_BANNER,
	S_EHLO1,
	S_STARTTLS,
	S_EHLO2,
	S_MAIL,
	S_RCPT,
	S_DATA,
	S_BODY,
	S_QUIT,
	S_IDLE,
};

struct conn {
	int fd;
	enum state st;
	enum state after_tls; /* the state a finished handshake leads to */
	uint32_t events;      /* what epoll waits for */
	gnutls_session_t tls; /* NULL before the handshake */
	const char *out;      /* a constant string being sent */
	size_t outlen, outoff;
	char in[8192];
	size_t inlen;
};

static enum mode mode = M_MAIL;
static enum tls tls = T_STARTTLS;
static long count = 1000, conc = 10, started, finished, done, errors, idle_closed;
static long mail_claimed; /* messages handed to a session */
static int ep;
static struct sockaddr_in addr;
static gnutls_certificate_credentials_t creds;
static gnutls_priority_t prio;
static char *body;
static size_t bodylen;
static char desc[200];
static char first_error[200];

static const char EHLO[] = "EHLO load.bench.test\r\n";
static const char STARTTLS[] = "STARTTLS\r\n";
static const char MAIL[] = "MAIL FROM:<a@bench.test>\r\n";
static const char RCPT[] = "RCPT TO:<b@bench.test>\r\n";
static const char DATA[] = "DATA\r\n";
static const char QUIT[] = "QUIT\r\n";

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void want(struct conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};
	if (c->events != events && epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = events;
}

static void start_one(void);

/* Thousands of handshakes or idle connections, closed by us, leave no TIME_WAIT behind. */
static void close_with_reset(struct conn *c)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

/* Ends a connection; a failure counts as an error, its first reason is kept for the report. */
static void finish(struct conn *c, const char *failure)
{
	if (failure) {
		errors++;
		if (!first_error[0])
			snprintf(first_error, sizeof(first_error), "%s", failure);
	}
	if (mode == M_HANDSHAKE)
		close_with_reset(c);
	if (c->tls)
		gnutls_deinit(c->tls);
	close(c->fd);
	free(c);
	finished++;
	if (mode != M_MAIL)
		start_one();
}

/* Returns false when the connection is gone. */
static bool flush(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n;
		if (c->tls) {
			n = gnutls_record_send(c->tls, c->out + c->outoff, c->outlen - c->outoff);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
				want(c, EPOLLOUT);
				return true;
			}
			if (n < 0) {
				finish(c, gnutls_strerror(n));
				return false;
			}
		} else {
			n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
				want(c, EPOLLOUT);
				return true;
			}
			if (n < 0) {
				finish(c, strerror(errno));
				return false;
			}
		}
		c->outoff += n;
	}
	c->outlen = c->outoff = 0;
	want(c, EPOLLIN);
	return true;
}

static bool say(struct conn *c, enum state next, const char *s, size_t len)
{
	c->st = next;
	c->out = s;
	c->outlen = len;
	c->outoff = 0;
	return flush(c);
}

#define SAY(c, next, s) say((c), (next), (s), sizeof(s) - 1)

/* The next message of the run, or QUIT when none is left. */
static bool next_message(struct conn *c)
{
	if (mail_claimed < count) {
		mail_claimed++;
		return SAY(c, S_MAIL, MAIL);
	}
	return SAY(c, S_QUIT, QUIT);
}

static bool readable(struct conn *c);

static bool handshake(struct conn *c)
{
	int rc = gnutls_handshake(c->tls);
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED ||
	    (rc < 0 && !gnutls_error_is_fatal(rc))) {
		want(c, gnutls_record_get_direction(c->tls) ? EPOLLOUT : EPOLLIN);
		return true;
	}
	if (rc < 0) {
		finish(c, gnutls_strerror(rc));
		return false;
	}
	if (!desc[0]) {
		char *d = gnutls_session_get_desc(c->tls);
		snprintf(desc, sizeof(desc), "%s", d ? d : "?");
		gnutls_free(d);
	}
	if (c->after_tls == S_EHLO2)
		return SAY(c, S_EHLO2, EHLO);
	/* the banner may already sit in GnuTLS's buffer, where epoll cannot see it */
	c->st = c->after_tls;
	want(c, EPOLLIN);
	return readable(c);
}

static bool start_tls(struct conn *c, enum state after)
{
	if (gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK) < 0 ||
	    gnutls_priority_set(c->tls, prio) < 0 ||
	    gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, creds) < 0) {
		finish(c, "cannot set up a TLS session");
		return false;
	}
	gnutls_transport_set_int(c->tls, c->fd);
	c->st = S_TLS;
	c->after_tls = after;
	return handshake(c);
}

/* The connection is open and idle: count it and open the next one. */
static void idle_open(struct conn *c)
{
	c->st = S_IDLE;
	done++;
	close_with_reset(c); /* at the generator's exit */
	want(c, EPOLLIN);
	start_one();
}

/* A complete reply with CODE arrived in state c->st. */
static bool reply(struct conn *c, int code)
{
	char why[64];
	int expect = c->st == S_BANNER || c->st == S_STARTTLS ? 220
	             : c->st == S_DATA                        ? 354
	             : c->st == S_QUIT                        ? 221
	                                                      : 250;
	if (code != expect || c->st == S_IDLE) {
		snprintf(why, sizeof(why), "reply %d in state %d", code, (int)c->st);
		finish(c, why);
		return false;
	}
	switch (c->st) {
	case S_BANNER:
		if (mode == M_HANDSHAKE && tls == T_IMPLICIT) {
			done++;
			finish(c, NULL);
			return false;
		}
		if (mode == M_IDLE && tls != T_STARTTLS) {
			idle_open(c);
			return true;
		}
		return SAY(c, S_EHLO1, EHLO);
	case S_EHLO1:
		if (tls == T_STARTTLS)
			return SAY(c, S_STARTTLS, STARTTLS);
		return next_message(c);
	case S_STARTTLS:
		if (c->inlen) {
			finish(c, "data after the 220 to STARTTLS");
			return false;
		}
		return start_tls(c, S_EHLO2);
	case S_EHLO2:
		if (mode == M_HANDSHAKE) {
			done++;
			finish(c, NULL);
			return false;
		}
		if (mode == M_IDLE) {
			idle_open(c);
			return true;
		}
		return next_message(c);
	case S_MAIL:
		return SAY(c, S_RCPT, RCPT);
	case S_RCPT:
		return SAY(c, S_DATA, DATA);
	case S_DATA:
		return say(c, S_BODY, body, bodylen);
	case S_BODY:
		done++;
		return next_message(c);
	case S_QUIT:
		finish(c, NULL);
		return false;
	default:
		finish(c, "reply in a wrong state");
		return false;
	}
}

/* Reads what there is and acts on every complete reply; false when the connection is gone. */
static bool readable(struct conn *c)
{
	for (;;) {
		ssize_t n;
		if (c->inlen == sizeof(c->in)) {
			finish(c, "reply too long");
			return false;
		}
		if (c->tls) {
			n = gnutls_record_recv(c->tls, c->in + c->inlen, sizeof(c->in) - c->inlen);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				return true;
			if (n < 0 && !gnutls_error_is_fatal(n))
				continue;
			if (n < 0 && c->st == S_IDLE)
				n = 0; /* a reset of an idle connection is a close */
			if (n < 0) {
				finish(c, gnutls_strerror(n));
				return false;
			}
		} else {
			n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return true;
			if (n < 0 && c->st == S_IDLE)
				n = 0;
			if (n < 0) {
				finish(c, strerror(errno));
				return false;
			}
		}
		if (n == 0) {
			if (c->st == S_IDLE)
				idle_closed++;
			finish(c, c->st == S_IDLE ? NULL : "connection closed by the server");
			return false;
		}
		c->inlen += n;
		/* every complete line; the last line of a reply has a space (or nothing) after
		 * the code */
		for (;;) {
			char *nl = memchr(c->in, '\n', c->inlen);
			size_t linelen;
			bool last;
			int code;
			if (!nl)
				break;
			linelen = nl - c->in + 1;
			last = linelen < 5 || c->in[3] != '-';
			code = atoi(c->in);
			memmove(c->in, c->in + linelen, c->inlen - linelen);
			c->inlen -= linelen;
			if (last && !reply(c, code))
				return false;
			if (c->st == S_TLS)
				return true; /* the handshake reads from now on */
		}
	}
}

static void start_one(void)
{
	struct conn *c;
	int one = 1;
	struct epoll_event ev;

	if (started >= count || (mode == M_MAIL && started >= conc) ||
	    started - finished - (mode == M_IDLE ? done : 0) >= conc)
		return;
	started++;
	c = calloc(1, sizeof(*c));
	if (!c) {
		errors++;
		finished++;
		return;
	}
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(first_error, sizeof(first_error), "socket: %s", strerror(errno));
		errors++;
		finished++;
		free(c);
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->st = S_CONNECT;
	c->events = EPOLLOUT;
	ev.events = EPOLLOUT;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0 ||
	    (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS))
		finish(c, strerror(errno));
}

static void event(struct conn *c, uint32_t events)
{
	if (c->st == S_CONNECT) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			finish(c, strerror(err));
			return;
		}
		if (tls == T_IMPLICIT) {
			start_tls(c, S_BANNER);
			return;
		}
		c->st = S_BANNER;
		want(c, EPOLLIN);
		return;
	}
	if (c->st == S_TLS) {
		handshake(c);
		return;
	}
	if (c->outlen && !flush(c))
		return;
	if (!c->outlen && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		readable(c);
}

/* Runs the loop until every connection is done (mail, handshake) or open (idle). */
static bool run(double deadline)
{
	struct epoll_event evs[256];
	for (;;) {
		int n, i;
		if (mode == M_IDLE ? done + errors >= count
		                   : finished >= started && started > 0 &&
		                         (mode == M_MAIL || started >= count))
			return true;
		if (now() > deadline)
			return false;
		n = epoll_wait(ep, evs, 256, 1000);
		for (i = 0; i < n; i++)
			event(evs[i].data.ptr, evs[i].events);
	}
}

/* Idle mode, after the report: hold the connections until standard input closes. */
static void hold(void)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, evs[256];
	char buf[256];
	if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) < 0) {
		perror("smtp-load: standard input");
		return;
	}
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1), i;
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr)
				event(evs[i].data.ptr, evs[i].events);
			else if (read(0, buf, sizeof(buf)) <= 0)
				return;
		}
	}
}

static void make_body(size_t len)
{
	static const char head[] = "From: <a@bench.test>\r\nTo: <b@bench.test>\r\n"
	                           "Subject: bench\r\n\r\n";
	size_t cap = len + sizeof(head) + 200;
	body = malloc(cap);
	if (!body)
		exit(2);
	memcpy(body, head, sizeof(head) - 1);
	bodylen = sizeof(head) - 1;
	while (bodylen < len + sizeof(head) - 1) {
		memset(body + bodylen, 'x', 76);
		memcpy(body + bodylen + 76, "\r\n", 2);
		bodylen += 78;
	}
	memcpy(body + bodylen, ".\r\n", 3);
	bodylen += 3;
}

static void usage(void)
{
	fputs("usage: smtp-load [-m mail|handshake|idle] [-T none|starttls|implicit] [-n COUNT]\n"
	      "                 [-c CONCURRENCY] [-l BYTES] [-p PRIORITY] [-w SECONDS] PORT\n",
	      stderr);
	exit(2);
}

/* The index of ARG among the three NAMES. */
static int pick(const char *arg, const char *const names[3])
{
	int i;
	for (i = 0; i < 3; i++)
		if (!strcmp(arg, names[i]))
			return i;
	usage();
	return 0;
}

int main(int argc, char **argv)
{
	/* X25519 first, as OpenSSL (Postfix's smtp client, most MTAs) offers it */
	const char *priority = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-X25519:"
	                       "+GROUP-SECP256R1:+GROUP-SECP384R1";
	static const char *const modes[] = {"mail", "handshake", "idle"};
	static const char *const tlss[] = {"none", "starttls", "implicit"};
	long len = 4096, port, timeout = 300;
	double t0, c0, secs, cpu;
	bool ok;
	int opt;

	while ((opt = getopt(argc, argv, "m:T:n:c:l:p:w:")) != -1) {
		switch (opt) {
		case 'm':
			mode = pick(optarg, modes);
			break;
		case 'T':
			tls = pick(optarg, tlss);
			break;
		case 'n':
			count = atol(optarg);
			break;
		case 'c':
			conc = atol(optarg);
			break;
		case 'l':
			len = atol(optarg);
			break;
		case 'p':
			priority = optarg;
			break;
		case 'w':
			timeout = atol(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind + 1 != argc || count < 1 || conc < 1 || len < 0 ||
	    (mode != M_MAIL && tls == T_NONE))
		usage();
	port = atol(argv[optind]);
	addr.sin_family = AF_INET;
	addr.sin_port = htons(port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	signal(SIGPIPE, SIG_IGN);
	make_body(len);
	if (gnutls_certificate_allocate_credentials(&creds) < 0 ||
	    gnutls_priority_init(&prio, priority, NULL) < 0) {
		fprintf(stderr, "smtp-load: bad TLS priority '%s'\n", priority);
		return 2;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);

	t0 = now();
	c0 = cpu_seconds();
	while (started < conc && started < count)
		start_one();
	ok = run(t0 + timeout);
	secs = now() - t0;
	cpu = (cpu_seconds() - c0) / secs;
	printf("%s mode=%s tls=%s done=%ld errors=%ld seconds=%.3f rate=%.1f cpu=%.2f "
	       "session=%s%s%s\n",
	       mode == M_IDLE ? "ready" : "result", modes[mode], tlss[tls], done, errors, secs,
	       done / secs, cpu, desc[0] ? desc : "-", first_error[0] ? " first_error=" : "",
	       first_error);
	fflush(stdout);
	if (mode == M_IDLE && ok) {
		hold();
		printf("closed open=%ld closed_by_server=%ld\n", done - idle_closed, idle_closed);
	}
	return ok && errors == 0 ? 0 : 1;
}
