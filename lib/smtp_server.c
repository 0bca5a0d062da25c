/* smtp_server.c: the SMTP server engine, sans I/O: client bytes in, replies out, decisions asked of the caller */
#include "config.h"

#include "smtp_server.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "tls.h"

/* Reply texts are Postfix's (3.7 smtpd), checked against a real smtpd in tests/cli. */

enum phase {
	P_NEW,        /* before the banner */
	P_CMD,        /* reading commands */
	P_WAIT,       /* a decision is pending: input waits */
	P_DATA,       /* reading a message */
	P_AUTH_PLAIN, /* after "334 ": the PLAIN response */
	P_AUTH_USER,  /* LOGIN: the user name */
	P_AUTH_PASS,  /* LOGIN: the password */
	P_TLS,        /* the handshake is the caller's */
	P_CLOSED,
};

struct st_smtp_server {
	struct st_smtp_server_params p;
	struct st_buf in, out;
	size_t in_off, out_off;
	enum phase phase;
	enum st_srv_event pending;
	struct st_srv_request req;
	bool skipping; /* the rest of a command line over ST_SRV_CMD_MAX is thrown away */
	bool refuse_next;
	char refuse[200];
	/* the session */
	char helo[256];
	bool esmtp, tls;
	char auth_user[256];
	char auth_pass[512];
	char auth_mech[8];
	char auth_authzid[256]; /* PLAIN's authorization identity, "" when none */
	/* the transaction */
	bool in_tx;
	bool smtputf8; /* MAIL FROM had SMTPUTF8 */
	char sender[ST_SRV_CMD_MAX];
	char cur[ST_SRV_CMD_MAX]; /* the address being decided */
	char **rcpt;
	size_t n_rcpt;
	/* the message */
	bool bol;        /* at the beginning of a text line */
	size_t msg_size; /* bytes given to body() */
	size_t line_len; /* of the text line being read */
	bool too_big, too_long;
	/* counters */
	unsigned errors, messages;
	size_t discarded;
	char last[600];
	/* time (ms): now, the deadline, and what DATA bytes earned short of a millisecond */
	unsigned long long now, deadline;
	bool clocked;
	unsigned long long credit;
};

static size_t max_size(const struct st_smtp_server *s)
{
	return s->p.max_size ? s->p.max_size : 10240000;
}

struct st_smtp_server *st_smtp_server_new(const struct st_smtp_server_params *p)
{
	struct st_smtp_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->p = *p;
	if (!s->p.hostname || !*s->p.hostname)
		s->p.hostname = "localhost";
	if (!s->p.max_rcpt)
		s->p.max_rcpt = 1000;
	if (!s->p.max_errors)
		s->p.max_errors = 20;
	if (!s->p.timeout_ms)
		s->p.timeout_ms = 300000;
	if (!s->p.min_data_rate)
		s->p.min_data_rate = 500;
	s->tls = p->implicit_tls;
	st_buf_init(&s->in, ST_SRV_IN_MAX);
	st_buf_init(&s->out, 4 * ST_SRV_IN_MAX);
	s->phase = P_NEW;
	return s;
}

static void reset_tx(struct st_smtp_server *s)
{
	size_t i;

	for (i = 0; i < s->n_rcpt; i++)
		free(s->rcpt[i]);
	free(s->rcpt);
	s->rcpt = NULL;
	s->n_rcpt = 0;
	s->in_tx = false;
	s->smtputf8 = false;
	s->sender[0] = '\0';
}

static void wipe_secret(struct st_smtp_server *s)
{
	explicit_bzero(s->auth_pass, sizeof(s->auth_pass));
}

void st_smtp_server_free(struct st_smtp_server *s)
{
	if (!s)
		return;
	reset_tx(s);
	wipe_secret(s);
	if (s->in.data)
		explicit_bzero(s->in.data, s->in.cap); /* AUTH lines pass here */
	st_buf_release(&s->in);
	st_buf_release(&s->out);
	free(s);
}

/* A new request begins: it has the whole timeout. */
static void restart_deadline(struct st_smtp_server *s)
{
	s->deadline = s->now + s->p.timeout_ms;
	s->credit = 0;
}

/* DATA: n more bytes came; the deadline grows by n / min_data_rate seconds, never
 * beyond the timeout from now (Postfix's smtpd_min_data_rate). */
static void extend_deadline(struct st_smtp_server *s, size_t n)
{
	unsigned long long cap = s->now + s->p.timeout_ms;

	s->credit += (unsigned long long)n * 1000;
	s->deadline += s->credit / s->p.min_data_rate;
	s->credit %= s->p.min_data_rate;
	if (s->deadline > cap)
		s->deadline = cap;
}

static size_t unsent(const struct st_smtp_server *s)
{
	return s->out.len - s->out_off;
}

static void close_session(struct st_smtp_server *s)
{
	s->phase = P_CLOSED;
	s->pending = ST_SRV_NONE;
}

/* One reply line ("250 2.0.0 Ok"), counted as an error when it is one. */
static void reply(struct st_smtp_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reply(struct st_smtp_server *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->last, sizeof(s->last), fmt, ap);
	va_end(ap);
	st_sanitize(s->last);
	if (st_buf_addf(&s->out, "%s\r\n", s->last)) {
		close_session(s); /* a client that never reads its replies */
		return;
	}
	if (s->last[0] == '4' || s->last[0] == '5') {
		if (strncmp(s->last, "421", 3) == 0) {
			close_session(s);
			return;
		}
		if (++s->errors >= s->p.max_errors) {
			snprintf(s->last, sizeof(s->last), "421 4.7.0 %s Error: too many errors",
			         s->p.hostname);
			st_buf_addf(&s->out, "%s\r\n", s->last);
			close_session(s);
		}
	}
}

void st_smtp_server_greet(struct st_smtp_server *s, const char *refuse)
{
	if (s->phase != P_NEW)
		return;
	s->phase = P_CMD;
	restart_deadline(s);
	if (refuse)
		reply(s, "421 4.7.1 %s Error: %s", s->p.hostname, refuse);
	else
		reply(s, "220 %s ESMTP smtptls", s->p.hostname);
}

static bool auth_offered(const struct st_smtp_server *s)
{
	return s->p.auth && (s->tls || s->p.auth_plaintext);
}

/* A fault the caller injects at this stage: replied instead, true. */
static bool fault(struct st_smtp_server *s, const char *stage)
{
	const char *f = s->p.fault ? s->p.fault(s->p.fault_arg, stage) : NULL;

	if (f)
		reply(s, "%s", f);
	return f != NULL;
}

static void ehlo(struct st_smtp_server *s, const char *arg, bool esmtp)
{
	if (!*arg) {
		reply(s, "501 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		return;
	}
	if (fault(s, "helo"))
		return;
	reset_tx(s);
	snprintf(s->helo, sizeof(s->helo), "%s", arg);
	st_sanitize(s->helo);
	s->esmtp = esmtp;
	if (!esmtp) {
		reply(s, "250 %s", s->p.hostname);
		return;
	}
	st_buf_addf(&s->out, "250-%s\r\n250-PIPELINING\r\n250-SIZE %zu\r\n", s->p.hostname,
	            max_size(s));
	if (s->p.starttls && !s->tls)
		st_buf_addf(&s->out, "250-STARTTLS\r\n");
	if (auth_offered(s))
		st_buf_addf(&s->out, "250-AUTH PLAIN LOGIN\r\n");
	st_buf_addf(&s->out, "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n");
	reply(s, "250 SMTPUTF8");
}

/* Where the address after "FROM:" or "TO:" is: "<a@b>" (*len bytes inside the brackets
 * from *start), "<>", or a bare a@b as Postfix takes it; rest points after it (the
 * parameters). false when there is none. */
static bool address(const char *p, const char **start, size_t *len, const char **rest)
{
	while (*p == ' ')
		p++;
	if (*p == '<') {
		const char *e;
		bool quoted = false;
		for (e = p + 1; *e && (quoted || *e != '>'); e++) {
			if (quoted && *e == '\\' && e[1])
				e++;
			else if (*e == '"')
				quoted = !quoted;
		}
		if (!*e)
			return false;
		*start = p + 1;
		*len = (size_t)(e - p - 1);
		*rest = e + 1;
	} else {
		*start = p;
		*len = strcspn(p, " ");
		*rest = p + *len;
		if (!*len)
			return false;
	}
	return true;
}

/* The next space-separated parameter of MAIL or RCPT into buf; false at the end. */
static bool next_param(const char **rest, char *buf, size_t size)
{
	size_t n;

	while (**rest == ' ')
		(*rest)++;
	n = strcspn(*rest, " ");
	if (!n)
		return false;
	snprintf(buf, size, "%.*s", (int)n, *rest);
	*rest += n;
	return true;
}

static void ask(struct st_smtp_server *s, enum st_srv_event ev)
{
	s->pending = ev;
	s->req.event = ev;
	s->phase = P_WAIT;
}

static void mail(struct st_smtp_server *s, const char *args)
{
	const char *rest, *a;
	char param[ST_SRV_CMD_MAX];
	size_t size = 0, alen;
	bool utf8 = false;

	if (s->in_tx) {
		reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (strncasecmp(args, "FROM:", 5) != 0) {
		reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	if (!address(args + 5, &a, &alen, &rest)) {
		reply(s, "501 5.1.7 Bad sender address syntax");
		return;
	}
	/* the parameters we take: SIZE, BODY, SMTPUTF8 */
	while (next_param(&rest, param, sizeof(param))) {
		if (strncasecmp(param, "SIZE=", 5) == 0) {
			char *end;
			unsigned long long v = strtoull(param + 5, &end, 10);
			if (!param[5] || *end || !isdigit((unsigned char)param[5])) {
				reply(s, "501 5.5.4 Bad message size syntax");
				return;
			}
			if (v > max_size(s)) {
				reply(s, "552 5.3.4 Message size exceeds fixed limit");
				return;
			}
			size = (size_t)v;
		} else if (!strcasecmp(param, "SMTPUTF8")) {
			utf8 = true;
		} else if (strcasecmp(param, "BODY=8BITMIME") && strcasecmp(param, "BODY=7BIT") &&
		           strcasecmp(param, "SMTPUTF8") && strncasecmp(param, "RET=", 4) &&
		           strncasecmp(param, "ENVID=", 6)) {
			/* DSN's RET and ENVID are taken and ignored, as Postfix takes them */
			reply(s, "555 5.5.4 Unsupported option: %s", param);
			return;
		}
	}
	/* the address is read once SMTPUTF8 is known: it allows UTF-8 domains */
	if (st_addr_parse(a, alen, utf8, s->cur, sizeof(s->cur))) {
		reply(s, "501 5.1.7 Bad sender address syntax");
		return;
	}
	s->smtputf8 = utf8;
	s->req.arg = s->cur;
	s->req.size = size;
	s->req.smtputf8 = utf8;
	ask(s, ST_SRV_MAIL);
}

static void rcpt(struct st_smtp_server *s, const char *args)
{
	const char *rest, *a;
	char param[ST_SRV_CMD_MAX];
	size_t alen;

	if (!s->in_tx) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (strncasecmp(args, "TO:", 3) != 0) {
		reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (!address(args + 3, &a, &alen, &rest) ||
	    st_addr_parse(a, alen, s->smtputf8, s->cur, sizeof(s->cur)) || !s->cur[0]) {
		reply(s, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	/* DSN's NOTIFY and ORCPT are taken and ignored, as Postfix takes them */
	while (next_param(&rest, param, sizeof(param)))
		if (strncasecmp(param, "NOTIFY=", 7) && strncasecmp(param, "ORCPT=", 6)) {
			reply(s, "555 5.5.4 Unsupported option: %s", param);
			return;
		}
	if (s->n_rcpt >= s->p.max_rcpt) {
		reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	s->req.arg = s->cur;
	s->req.smtputf8 = s->smtputf8;
	ask(s, ST_SRV_RCPT);
}

static void auth_line(struct st_smtp_server *s, const char *line);

static void auth(struct st_smtp_server *s, const char *args)
{
	size_t n = strcspn(args, " ");
	const char *initial = args[n] ? args + n + 1 : NULL;

	if (!auth_offered(s)) {
		reply(s, "503 5.5.1 Error: authentication not enabled");
		return;
	}
	if (s->auth_user[0]) {
		reply(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (s->in_tx) {
		reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		return;
	}
	if (!n) {
		reply(s, "501 5.5.4 Syntax: AUTH mechanism");
		return;
	}
	if (n == 5 && strncasecmp(args, "PLAIN", 5) == 0) {
		snprintf(s->auth_mech, sizeof(s->auth_mech), "PLAIN");
		s->phase = P_AUTH_PLAIN;
		if (!initial) {
			st_buf_addf(&s->out, "334 \r\n");
			return;
		}
	} else if (n == 5 && strncasecmp(args, "LOGIN", 5) == 0) {
		snprintf(s->auth_mech, sizeof(s->auth_mech), "LOGIN");
		s->phase = P_AUTH_USER;
		if (!initial) {
			st_buf_addf(&s->out, "334 VXNlcm5hbWU6\r\n"); /* "Username:" */
			return;
		}
	} else {
		reply(s,
		      "535 5.7.8 Error: authentication failed: Invalid authentication mechanism");
		return;
	}
	/* an initial response: as if it came on its own line */
	auth_line(s, initial);
}

/* A line of the AUTH exchange. */
static void auth_line(struct st_smtp_server *s, const char *line)
{
	struct st_buf dec;

	if (strcmp(line, "*") == 0) {
		s->phase = P_CMD;
		reply(s, "501 5.7.0 Authentication aborted");
		return;
	}
	st_buf_init(&dec, sizeof(s->auth_pass) + sizeof(s->auth_user) + 16);
	if (st_base64_decode(line, strlen(line), &dec)) {
		st_buf_release(&dec);
		s->phase = P_CMD;
		reply(s, "501 5.5.2 Cannot decode response");
		return;
	}
	if (s->phase == P_AUTH_PLAIN) {
		/* authzid NUL authcid NUL password */
		const char *d = (const char *)dec.data;
		const char *u = d ? memchr(d, '\0', dec.len) : NULL;
		const char *w = u ? memchr(u + 1, '\0', dec.len - (size_t)(u + 1 - d)) : NULL;
		size_t ul = w ? (size_t)(w - u - 1) : 0, wl = w ? dec.len - (size_t)(w + 1 - d) : 0;
		size_t zl = u ? (size_t)(u - d) : 0;
		if (!w || !ul || ul >= sizeof(s->auth_user) || wl >= sizeof(s->auth_pass) ||
		    zl >= sizeof(s->auth_authzid) || memchr(w + 1, '\0', wl)) {
			if (dec.data)
				explicit_bzero(dec.data, dec.cap);
			st_buf_release(&dec);
			s->phase = P_CMD;
			reply(s, "535 5.7.8 Error: authentication failed: bad protocol / cancel");
			return;
		}
		snprintf(s->cur, sizeof(s->cur), "%.*s", (int)ul, u + 1);
		snprintf(s->auth_authzid, sizeof(s->auth_authzid), "%.*s", (int)zl, d);
		memcpy(s->auth_pass, w + 1, wl);
		s->auth_pass[wl] = '\0';
	} else if (s->phase == P_AUTH_USER) {
		if (!dec.len || dec.len >= sizeof(s->auth_user) ||
		    memchr(dec.data, '\0', dec.len)) {
			st_buf_release(&dec);
			s->phase = P_CMD;
			reply(s, "535 5.7.8 Error: authentication failed: bad protocol / cancel");
			return;
		}
		snprintf(s->cur, sizeof(s->cur), "%s", (const char *)dec.data);
		s->auth_authzid[0] = '\0';
		st_buf_release(&dec);
		s->phase = P_AUTH_PASS;
		st_buf_addf(&s->out, "334 UGFzc3dvcmQ6\r\n"); /* "Password:" */
		return;
	} else {
		if (dec.len >= sizeof(s->auth_pass) ||
		    (dec.len && memchr(dec.data, '\0', dec.len))) {
			if (dec.data)
				explicit_bzero(dec.data, dec.cap);
			st_buf_release(&dec);
			s->phase = P_CMD;
			reply(s, "535 5.7.8 Error: authentication failed: bad protocol / cancel");
			return;
		}
		memcpy(s->auth_pass, dec.data ? (const char *)dec.data : "", dec.len);
		s->auth_pass[dec.len] = '\0';
	}
	if (dec.data)
		explicit_bzero(dec.data, dec.cap);
	st_buf_release(&dec);
	{
		/* a user name goes to logs and decisions: control bytes or malformed UTF-8
		 * in it (or in the authorization identity) end the exchange, as a malformed
		 * response */
		char shown[sizeof(s->cur)], authz[sizeof(s->auth_authzid)];
		snprintf(shown, sizeof(shown), "%s", s->cur);
		st_sanitize(shown);
		snprintf(authz, sizeof(authz), "%s", s->auth_authzid);
		st_sanitize(authz);
		if (strcmp(shown, s->cur) || strcmp(authz, s->auth_authzid)) {
			wipe_secret(s);
			s->phase = P_CMD;
			reply(s, "535 5.7.8 Error: authentication failed: bad protocol / cancel");
			return;
		}
	}
	s->req.user = s->cur;
	s->req.pass = s->auth_pass;
	s->req.mech = s->auth_mech;
	s->req.authzid = s->auth_authzid;
	ask(s, ST_SRV_AUTH);
}

static void starttls(struct st_smtp_server *s, const char *args)
{
	if (*args) {
		reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (s->tls) {
		reply(s, "554 5.5.1 Error: TLS already active");
		return;
	}
	if (!s->p.starttls) {
		reply(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	if (fault(s, "starttls"))
		return;
	reply(s, "220 2.0.0 Ready to start TLS");
	/* what the client pipelined behind STARTTLS was sent in plaintext: it must never
	 * be read as if it came inside TLS (CVE-2011-0411) */
	s->discarded += s->in.len - s->in_off;
	s->in_off = s->in.len;
	s->phase = P_TLS;
	s->pending = ST_SRV_TLS;
	s->req.event = ST_SRV_TLS;
}

/* One command line, without its line end. */
static void command(struct st_smtp_server *s, char *line)
{
	char *args;
	size_t n;

	/* the line is read raw: what is shown of it (replies, HELO) is sanitised there */
	if (s->refuse_next) {
		reply(s, "421 4.7.1 %s Error: %s", s->p.hostname, s->refuse);
		return;
	}
	if (!st_utf8_is_valid(line)) {
		reply(s, "500 5.5.2 Error: bad UTF-8 syntax");
		return;
	}
	n = strcspn(line, " ");
	args = line[n] ? line + n + 1 : line + n;
	line[n] = '\0';
	if (!*line) {
		reply(s, "500 5.5.2 Error: bad syntax");
		return;
	}
	/* under encrypt, of the commands we know only EHLO, HELO, STARTTLS, NOOP and QUIT
	 * before TLS, as Postfix (an unknown one is still "not recognized") */
	if (s->p.tls_required && !s->tls &&
	    (!strcasecmp(line, "MAIL") || !strcasecmp(line, "RCPT") || !strcasecmp(line, "DATA") ||
	     !strcasecmp(line, "RSET") || !strcasecmp(line, "VRFY") || !strcasecmp(line, "AUTH"))) {
		reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (!strcasecmp(line, "EHLO") || !strcasecmp(line, "HELO"))
		ehlo(s, args, !strcasecmp(line, "EHLO"));
	else if (!strcasecmp(line, "MAIL"))
		mail(s, args);
	else if (!strcasecmp(line, "RCPT"))
		rcpt(s, args);
	else if (!strcasecmp(line, "DATA")) {
		if (*args)
			reply(s, "501 5.5.4 Syntax: DATA");
		else if (!s->in_tx)
			reply(s, "503 5.5.1 Error: need RCPT command");
		else if (!s->n_rcpt)
			reply(s, "554 5.5.1 Error: no valid recipients");
		else
			ask(s, ST_SRV_DATA);
	} else if (!strcasecmp(line, "RSET")) {
		reset_tx(s);
		reply(s, "250 2.0.0 Ok");
	} else if (!strcasecmp(line, "NOOP")) {
		reply(s, "250 2.0.0 Ok");
	} else if (!strcasecmp(line, "QUIT")) {
		reply(s, "221 2.0.0 Bye");
		close_session(s);
	} else if (!strcasecmp(line, "VRFY")) {
		if (*args)
			reply(s, "252 2.0.0 %s", args);
		else
			reply(s, "501 5.5.4 Syntax: VRFY address");
	} else if (!strcasecmp(line, "STARTTLS")) {
		starttls(s, args);
	} else if (!strcasecmp(line, "AUTH")) {
		auth(s, args);
	} else {
		reply(s, "500 5.5.2 Error: command not recognized");
	}
}

static void body(struct st_smtp_server *s, const unsigned char *d, size_t n)
{
	if (!n)
		return;
	s->line_len += n;
	if (s->line_len > ST_SRV_TEXT_MAX)
		s->too_long = true;
	if (s->too_big || s->msg_size + n > max_size(s)) {
		s->too_big = true;
		return;
	}
	s->msg_size += n;
	if (s->p.body)
		s->p.body(s->p.body_arg, d, n);
}

/* The message, up to the line "." (CRLF before and after: nothing else ends it). */
static void data(struct st_smtp_server *s)
{
	const unsigned char *d = s->in.data;
	size_t len = s->in.len;

	while (s->in_off < len && s->phase == P_DATA) {
		size_t off = s->in_off, e;
		const unsigned char *crlf;
		if (s->bol) {
			if (d[off] == '.') {
				/* "." or ".\r" so far: the end, or a stuffed dot, not known yet */
				if (len - off == 1 || (len - off == 2 && d[off + 1] == '\r'))
					return;
				if (len - off >= 3 && d[off + 1] == '\r' && d[off + 2] == '\n') {
					s->in_off += 3;
					s->req.size = s->msg_size;
					if (s->too_big) {
						s->phase = P_CMD;
						reset_tx(s);
						reply(s, "552 5.3.4 Error: message file too big");
					} else if (s->too_long) {
						s->phase = P_CMD;
						reset_tx(s);
						reply(s,
						      "500 5.5.2 Error: message line longer than "
						      "%d bytes",
						      ST_SRV_TEXT_MAX);
					} else {
						ask(s, ST_SRV_END);
					}
					return;
				}
				s->in_off = ++off; /* a stuffed dot */
			}
			s->bol = false;
			s->line_len = 0;
		}
		crlf = NULL;
		for (e = off; e + 1 < len; e++)
			if (d[e] == '\r' && d[e + 1] == '\n') {
				crlf = d + e;
				break;
			}
		if (crlf) {
			body(s, d + off, (size_t)(crlf - (d + off)) + 2);
			s->in_off = (size_t)(crlf - d) + 2;
			s->bol = true;
		} else {
			/* a part of a line: all but a CR at the end, which may begin CRLF */
			size_t take = len - off - (d[len - 1] == '\r' ? 1 : 0);
			body(s, d + off, take);
			s->in_off += take;
			return;
		}
	}
}

static void line_too_long(struct st_smtp_server *s)
{
	int max = s->phase == P_CMD ? ST_SRV_CMD_MAX : 2048;

	if (s->phase != P_CMD) {
		s->phase = P_CMD; /* an AUTH exchange ends there */
		wipe_secret(s);
	}
	reply(s, "500 5.5.2 Error: line longer than %d bytes", max);
}

/* Go on with what is buffered, as far as no decision is pending. */
static void process(struct st_smtp_server *s)
{
	while (s->in_off < s->in.len) {
		unsigned char *d = s->in.data + s->in_off, *nl;
		size_t avail = s->in.len - s->in_off, n;
		/* an AUTH response may be longer than a command: 2048, Postfix's line limit */
		size_t max = s->phase == P_CMD ? ST_SRV_CMD_MAX : 2048;
		char line[2048 + 1];

		if (unsent(s) > ST_SRV_OUT_MAX)
			break; /* the client does not read its replies: wait until it does */
		if (s->phase == P_DATA) {
			size_t before = s->in_off;
			data(s);
			extend_deadline(s, s->in_off - before);
			if (s->phase == P_DATA)
				break;
			continue;
		}
		if (s->phase != P_CMD && s->phase != P_AUTH_PLAIN && s->phase != P_AUTH_USER &&
		    s->phase != P_AUTH_PASS)
			break;
		nl = memchr(d, '\n', avail);
		if (!nl) {
			if (avail > max) {
				/* no line end within the limit: say so once, drop to the end */
				if (!s->skipping)
					line_too_long(s);
				s->skipping = true;
				s->in_off = s->in.len;
			}
			break;
		}
		n = (size_t)(nl - d);
		s->in_off += n + 1;
		restart_deadline(s); /* a whole line came: the next one has its own time */
		if (s->skipping) {
			s->skipping = false; /* the end of the line that was too long */
			continue;
		}
		if (n && d[n - 1] == '\r')
			n--;
		if (n > max - 2) {
			line_too_long(s);
			continue;
		}
		memcpy(line, d, n);
		line[n] = '\0';
		/* a NUL ends a command where it is, as in Postfix's smtpd; in an AUTH
		 * response nothing of the line is taken */
		if (s->phase != P_CMD && memchr(line, '\0', n))
			memset(line, '?', n);
		if (s->phase == P_CMD)
			command(s, line);
		else
			auth_line(s, line);
		explicit_bzero(line, sizeof(line));
	}
	/* compact what was read */
	if (s->in_off > 0 && (s->in_off == s->in.len || s->in_off > ST_SRV_IN_MAX / 2)) {
		memmove(s->in.data, s->in.data + s->in_off, s->in.len - s->in_off);
		s->in.len -= s->in_off;
		s->in_off = 0;
	}
}

size_t st_smtp_server_input(struct st_smtp_server *s, const unsigned char *data, size_t len)
{
	size_t room, take;

	if (s->phase == P_CLOSED || s->phase == P_TLS)
		return len; /* nothing is read any more (TLS: the caller's handshake) */
	room = ST_SRV_IN_MAX - s->in.len;
	take = len < room ? len : room;
	if (take && st_buf_add(&s->in, data, take))
		take = 0;
	process(s);
	return take;
}

size_t st_smtp_server_buffered(const struct st_smtp_server *s)
{
	return s->in.len - s->in_off;
}

void st_smtp_server_eof(struct st_smtp_server *s)
{
	close_session(s);
}

enum st_srv_event st_smtp_server_next(const struct st_smtp_server *s, struct st_srv_request *req)
{
	if (s->phase == P_CLOSED) {
		if (req)
			memset(req, 0, sizeof(*req)), req->event = ST_SRV_CLOSE;
		return ST_SRV_CLOSE;
	}
	if (req) {
		*req = s->req;
		req->event = s->pending;
	}
	return s->pending;
}

void st_smtp_server_answer(struct st_smtp_server *s, bool ok, const char *text)
{
	enum st_srv_event ev = s->pending;

	if (s->phase != P_WAIT)
		return;
	s->pending = ST_SRV_NONE;
	s->phase = P_CMD;
	restart_deadline(s); /* the client waited for us, not we for it */
	switch (ev) {
	case ST_SRV_MAIL:
		if (ok) {
			s->in_tx = true;
			snprintf(s->sender, sizeof(s->sender), "%s", s->cur);
			reply(s, "250 2.1.0 Ok");
		} else {
			reply(s, "%s", text ? text : "550 5.7.1 Sender address rejected");
		}
		break;
	case ST_SRV_RCPT:
		if (ok) {
			char **r = realloc(s->rcpt, (s->n_rcpt + 1) * sizeof(*r));
			char *a = strdup(s->cur);
			if (!r || !a) {
				free(a);
				if (r)
					s->rcpt = r;
				reply(s, "452 4.3.1 Insufficient system resources");
				break;
			}
			s->rcpt = r;
			s->rcpt[s->n_rcpt++] = a;
			reply(s, "250 2.1.5 Ok");
		} else {
			reply(s, "%s", text ? text : "554 5.7.1 Recipient address rejected");
		}
		break;
	case ST_SRV_DATA:
		if (ok) {
			s->phase = P_DATA;
			s->bol = true;
			s->msg_size = s->line_len = 0;
			s->too_big = s->too_long = false;
			st_buf_addf(&s->out, "354 End data with <CR><LF>.<CR><LF>\r\n");
		} else {
			reply(s, "%s", text ? text : "554 5.5.1 Error: no valid recipients");
		}
		break;
	case ST_SRV_END:
		if (ok) {
			s->messages++;
			reply(s, "250 2.0.0 Ok: queued as %s", text ? text : "");
		} else {
			reply(s, "%s", text ? text : "451 4.3.0 Error: queue file write error");
		}
		reset_tx(s);
		break;
	case ST_SRV_AUTH:
		if (ok) {
			/* the user name was checked to fit (auth_line) */
			snprintf(s->auth_user, sizeof(s->auth_user), "%.*s",
			         (int)sizeof(s->auth_user) - 1, s->cur);
			reply(s, "235 2.7.0 Authentication successful");
		} else {
			reply(
			    s, "%s",
			    text
			        ? text
			        : "535 5.7.8 Error: authentication failed: authentication failure");
		}
		wipe_secret(s);
		s->req.pass = NULL;
		break;
	default:
		break;
	}
	if (s->phase != P_CLOSED)
		process(s);
}

void st_smtp_server_tls_up(struct st_smtp_server *s, bool ok, const char *refuse)
{
	if (s->phase != P_TLS)
		return;
	s->pending = ST_SRV_NONE;
	if (!ok) {
		close_session(s);
		return;
	}
	s->tls = true;
	s->phase = P_CMD;
	restart_deadline(s);
	s->helo[0] = '\0';
	s->esmtp = false;
	s->auth_user[0] = '\0';
	reset_tx(s);
	if (refuse) {
		s->refuse_next = true;
		snprintf(s->refuse, sizeof(s->refuse), "%s", refuse);
		st_sanitize(s->refuse);
	}
	s->in.len = s->in_off = 0;
}

void st_smtp_server_clock(struct st_smtp_server *s, unsigned long long now_ms)
{
	s->now = now_ms;
	if (!s->clocked) {
		s->clocked = true;
		restart_deadline(s);
	}
}

unsigned long long st_smtp_server_deadline(const struct st_smtp_server *s)
{
	/* while a decision is pending the client waits for us, not we for it (an AUTH
	 * failure's delay, a slow disk): its answer starts the next deadline */
	return s->clocked && s->phase != P_CLOSED && s->phase != P_WAIT ? s->deadline : 0;
}

void st_smtp_server_timeout(struct st_smtp_server *s)
{
	if (s->phase == P_CLOSED)
		return;
	reply(s, "421 4.4.2 %s Error: timeout exceeded", s->p.hostname);
	close_session(s);
}

const unsigned char *st_smtp_server_output(const struct st_smtp_server *s, size_t *len)
{
	*len = s->out.len - s->out_off;
	return s->out.data ? s->out.data + s->out_off : (const unsigned char *)"";
}

void st_smtp_server_sent(struct st_smtp_server *s, size_t n)
{
	bool held = unsent(s) > ST_SRV_OUT_MAX;

	s->out_off += n;
	if (s->out_off >= s->out.len) {
		st_buf_reset(&s->out);
		s->out_off = 0;
	} else if (s->out_off > ST_SRV_OUT_MAX) {
		memmove(s->out.data, s->out.data + s->out_off, s->out.len - s->out_off);
		s->out.len -= s->out_off;
		s->out_off = 0;
	}
	if (held && unsent(s) <= ST_SRV_OUT_MAX && s->phase != P_CLOSED && s->phase != P_WAIT &&
	    s->phase != P_TLS && s->phase != P_NEW)
		process(s); /* the replies drain: what the client sent behind them is read now */
}

void st_smtp_server_state(const struct st_smtp_server *s, struct st_srv_state *st)
{
	st->helo = s->helo;
	st->esmtp = s->esmtp;
	st->tls = s->tls;
	st->auth_user = s->auth_user;
	st->sender = s->in_tx ? s->sender : "";
	st->rcpt = (const char *const *)s->rcpt;
	st->n_rcpt = s->n_rcpt;
	st->discarded = s->discarded;
	st->errors = s->errors;
	st->messages = s->messages;
	st->last_reply = s->last;
}
