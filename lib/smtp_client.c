/* smtp_client.c: the SMTP client engine, sans I/O: reply parsing and EHLO capabilities */
#include "config.h"

#include "smtp_client.h"
#include "tls.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void st_smtp_reply_release(struct st_smtp_reply *r)
{
	size_t i;

	for (i = 0; i < r->n_lines; i++)
		free(r->lines[i]);
	free(r->lines);
	memset(r, 0, sizeof(*r));
}

char *st_smtp_reply_text(const struct st_smtp_reply *r)
{
	struct st_buf b;
	size_t i;

	st_buf_init(&b, (ST_SMTP_LINE_MAX + 8) * (ST_SMTP_LINES_MAX + 1));
	for (i = 0; i < r->n_lines; i++)
		if (st_buf_addf(&b, "%s%d%c%s", i ? "\n" : "", r->code,
		                i + 1 < r->n_lines ? '-' : ' ', r->lines[i])) {
			st_buf_release(&b);
			return NULL;
		}
	if (!b.data)
		return strdup("");
	return (char *)b.data;
}

void st_smtp_parser_init(struct st_smtp_parser *p)
{
	memset(p, 0, sizeof(*p));
	st_buf_init(&p->line, ST_SMTP_LINE_MAX);
}

void st_smtp_parser_release(struct st_smtp_parser *p)
{
	st_buf_release(&p->line);
	st_smtp_reply_release(&p->cur);
	p->in_reply = false;
}

/* "2.1.5" at the start of text: class 2, 4 or 5, then 1-3 digits, a dot, 1-3 digits. */
static void enhanced_code(const char *text, char *out, size_t size)
{
	const char *p = text;
	int n;

	out[0] = '\0';
	if (*p != '2' && *p != '4' && *p != '5')
		return;
	p++;
	if (*p++ != '.')
		return;
	for (n = 0; isdigit((unsigned char)*p) && n < 4; n++)
		p++;
	if (n < 1 || n > 3 || *p++ != '.')
		return;
	for (n = 0; isdigit((unsigned char)*p) && n < 4; n++)
		p++;
	if (n < 1 || n > 3 || (*p && *p != ' '))
		return;
	snprintf(out, size, "%.*s", (int)(p - text), text);
}

static void parser_reset(struct st_smtp_parser *p)
{
	st_smtp_reply_release(&p->cur);
	st_buf_reset(&p->line);
	p->in_reply = false;
}

/* One complete line (without its line end) into the reply; 1 when the reply is complete. */
static int take_line(struct st_smtp_parser *p, struct st_error *err)
{
	char *text, **v;
	const char *s = st_buf_str(&p->line);
	size_t n = p->line.len;
	int code;
	bool last;

	if (n < 3 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
	    !isdigit((unsigned char)s[2]) || s[0] < '2' || s[0] > '5' || s[1] > '5' ||
	    (n > 3 && s[3] != ' ' && s[3] != '-')) {
		char shown[64];
		snprintf(shown, sizeof(shown), "%.40s", s);
		st_sanitize(shown);
		st_error_set(err, ST_ERR_PROTOCOL, "malformed reply line '%s'", shown);
		parser_reset(p);
		return ST_E_PARSE;
	}
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	last = n == 3 || s[3] == ' ';
	if (p->in_reply && code != p->cur.code) {
		st_error_set(err, ST_ERR_PROTOCOL,
		             "reply code changes from %d to %d inside a multi-line reply",
		             p->cur.code, code);
		parser_reset(p);
		return ST_E_PARSE;
	}
	if (p->cur.n_lines >= ST_SMTP_LINES_MAX) {
		st_error_set(err, ST_ERR_PROTOCOL, "reply of more than %d lines",
		             ST_SMTP_LINES_MAX);
		parser_reset(p);
		return ST_E_TOOBIG;
	}
	text = strdup(n > 4 ? s + 4 : "");
	v = realloc(p->cur.lines, (p->cur.n_lines + 1) * sizeof(*v));
	if (!text || !v) {
		free(text);
		if (v)
			p->cur.lines = v;
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		parser_reset(p);
		return ST_E_NOMEM;
	}
	st_sanitize(text);
	p->cur.lines = v;
	p->cur.lines[p->cur.n_lines++] = text;
	if (!p->in_reply) {
		p->cur.code = code;
		enhanced_code(text, p->cur.enhanced, sizeof(p->cur.enhanced));
	}
	p->in_reply = true;
	st_buf_reset(&p->line);
	return last ? 1 : 0;
}

int st_smtp_parser_feed(struct st_smtp_parser *p, const unsigned char *data, size_t len,
                        size_t *used, struct st_smtp_reply *out, struct st_error *err)
{
	size_t i;
	int rc;

	*used = 0;
	for (i = 0; i < len; i++) {
		unsigned char c = data[i];
		if (c == '\n') {
			/* CRLF ends a line; a bare LF is taken as one too */
			if (p->line.len > 0 && p->line.data[p->line.len - 1] == '\r')
				p->line.data[--p->line.len] = '\0';
			rc = take_line(p, err);
			if (rc < 0) {
				*used = i + 1;
				return rc;
			}
			if (rc == 1) {
				*out = p->cur;
				memset(&p->cur, 0, sizeof(p->cur));
				p->in_reply = false;
				*used = i + 1;
				return 1;
			}
			continue;
		}
		if (c == '\0') {
			c = '?';
			p->bad_bytes = true;
		}
		if (st_buf_add(&p->line, &c, 1)) {
			st_error_set(err, ST_ERR_PROTOCOL, "reply line longer than %d bytes",
			             ST_SMTP_LINE_MAX);
			parser_reset(p);
			*used = i + 1;
			return ST_E_TOOBIG;
		}
	}
	*used = len;
	return 0;
}

static bool keyword_is(const char *line, const char *kw, const char **arg)
{
	size_t n = strlen(kw);

	if (strncasecmp(line, kw, n) != 0 || (line[n] && line[n] != ' ' && line[n] != '='))
		return false;
	*arg = line[n] ? line + n + 1 : line + n;
	return true;
}

/* Is word one of the space-separated words of list? Case is ignored, as in EHLO
 * keywords and SASL mechanism names. */
static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	while (*list) {
		size_t k = strcspn(list, " ");
		if (k == n && strncasecmp(list, word, n) == 0)
			return true;
		list += k;
		while (*list == ' ')
			list++;
	}
	return false;
}

int st_smtp_caps_parse(const struct st_smtp_reply *ehlo, struct st_smtp_caps *caps)
{
	const char *arg;
	size_t i, k;

	memset(caps, 0, sizeof(*caps));
	if (ehlo->n_lines < 2)
		return ST_OK;
	caps->keywords = calloc(ehlo->n_lines - 1, sizeof(*caps->keywords));
	if (!caps->keywords)
		return ST_E_NOMEM;
	for (i = 1; i < ehlo->n_lines; i++) {
		const char *l = ehlo->lines[i];
		caps->keywords[caps->n_keywords] = strdup(l);
		if (!caps->keywords[caps->n_keywords])
			return ST_E_NOMEM;
		caps->n_keywords++;
		if (keyword_is(l, "STARTTLS", &arg))
			caps->starttls = true;
		else if (keyword_is(l, "PIPELINING", &arg))
			caps->pipelining = true;
		else if (keyword_is(l, "8BITMIME", &arg))
			caps->eightbitmime = true;
		else if (keyword_is(l, "SMTPUTF8", &arg))
			caps->smtputf8 = true;
		else if (keyword_is(l, "CHUNKING", &arg))
			caps->chunking = true;
		else if (keyword_is(l, "ENHANCEDSTATUSCODES", &arg))
			caps->enhancedstatuscodes = true;
		else if (keyword_is(l, "REQUIRETLS", &arg))
			caps->requiretls = true;
		else if (keyword_is(l, "DSN", &arg))
			caps->dsn = true;
		else if (keyword_is(l, "BINARYMIME", &arg))
			caps->binarymime = true;
		else if (keyword_is(l, "SIZE", &arg)) {
			caps->size = true;
			caps->max_size = strtoul(arg, NULL, 10);
		} else if (keyword_is(l, "AUTH", &arg)) {
			/* "AUTH PLAIN LOGIN", or the old "AUTH=PLAIN LOGIN": merged, upper case */
			size_t have = strlen(caps->auth);
			char word[64];
			while (*arg) {
				size_t n;
				while (*arg == ' ')
					arg++;
				n = strcspn(arg, " ");
				if (n == 0)
					break;
				snprintf(word, sizeof(word), "%.*s", (int)(n < 63 ? n : 63), arg);
				for (k = 0; word[k]; k++)
					word[k] = (char)toupper((unsigned char)word[k]);
				arg += n;
				if (has_word(caps->auth, word))
					continue; /* listed already */
				if (have + strlen(word) + 2 > sizeof(caps->auth))
					break;
				snprintf(caps->auth + have, sizeof(caps->auth) - have, "%s%s",
				         have ? " " : "", word);
				have = strlen(caps->auth);
			}
		}
	}
	return ST_OK;
}

void st_smtp_caps_release(struct st_smtp_caps *caps)
{
	size_t i;

	for (i = 0; i < caps->n_keywords; i++)
		free(caps->keywords[i]);
	free(caps->keywords);
	memset(caps, 0, sizeof(*caps));
}

/* ---- the client session, sans I/O ---- */

enum state {
	S_BANNER,
	S_EHLO,
	S_HELO,
	S_STARTTLS,
	S_TLS,
	S_EHLO_TLS,
	S_AUTH,
	S_AUTH_USER,
	S_AUTH_PASS,
	S_MAIL,
	S_RCPT,
	S_DATA,
	S_DATA_END,
	S_RSET,
	S_QUIT,
	S_USER, /* interactive: the user's lines */
	S_CLOSED,
};

struct st_smtp_client {
	struct st_smtp_client_params p;
	struct st_smtp_parser parser;
	struct st_buf out;
	size_t out_off; /* bytes of out already sent */
	enum st_smtp_want want;
	enum state state;
	bool tls;
	bool auth_cancelled; /* we answered an unexpected 334 with "*" */
	size_t rcpt_i;
	size_t rcpt_ok;
	bool user_data;      /* interactive: the user is typing a message (after 354) */
	bool user_sent_data; /* interactive: DATA went out, its reply not in yet */
	bool user_reply_due; /* interactive: a command went out, its reply not in yet */
	bool user_eof;       /* interactive: the user's input ended: QUIT when the reply is in */
	struct st_smtp_result res;
};

const char *st_smtp_stage_name(enum st_smtp_stage s)
{
	static const char *const names[] = {
	    [ST_SMTP_STAGE_BANNER] = "banner",     [ST_SMTP_STAGE_EHLO] = "ehlo",
	    [ST_SMTP_STAGE_STARTTLS] = "starttls", [ST_SMTP_STAGE_TLS] = "tls",
	    [ST_SMTP_STAGE_EHLO_TLS] = "ehlo_tls", [ST_SMTP_STAGE_AUTH] = "auth",
	    [ST_SMTP_STAGE_MAIL] = "mail",         [ST_SMTP_STAGE_RCPT] = "rcpt",
	    [ST_SMTP_STAGE_DATA] = "data",         [ST_SMTP_STAGE_QUIT] = "quit",
	    [ST_SMTP_STAGE_DONE] = "done",         [ST_SMTP_STAGE_INTERACTIVE] = "interactive",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

struct st_smtp_client *st_smtp_client_new(const struct st_smtp_client_params *p)
{
	struct st_smtp_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->p = *p;
	if (!c->p.ehlo_name || !*c->p.ehlo_name)
		c->p.ehlo_name = "localhost";
	st_smtp_parser_init(&c->parser);
	/* room for the message doubled by dot-stuffing, and the commands */
	st_buf_init(&c->out, 2 * p->data_len + 65536);
	if (p->n_rcpt) {
		c->res.rcpt = calloc(p->n_rcpt, sizeof(*c->res.rcpt));
		if (!c->res.rcpt) {
			free(c);
			return NULL;
		}
	}
	c->tls = p->mode == ST_SMTP_IMPLICIT;
	c->state = S_BANNER;
	c->want = ST_SMTP_WANT_READ;
	c->res.stage = ST_SMTP_STAGE_BANNER;
	return c;
}

void st_smtp_client_free(struct st_smtp_client *c)
{
	size_t i;

	if (!c)
		return;
	st_smtp_parser_release(&c->parser);
	st_buf_release(&c->out);
	st_smtp_reply_release(&c->res.banner);
	st_smtp_reply_release(&c->res.ehlo);
	st_smtp_reply_release(&c->res.starttls);
	st_smtp_reply_release(&c->res.ehlo_tls);
	st_smtp_reply_release(&c->res.auth);
	st_smtp_reply_release(&c->res.mail);
	st_smtp_reply_release(&c->res.data);
	st_smtp_reply_release(&c->res.data_end);
	st_smtp_reply_release(&c->res.quit);
	for (i = 0; i < c->p.n_rcpt; i++)
		st_smtp_reply_release(&c->res.rcpt[i]);
	free(c->res.rcpt);
	st_smtp_caps_release(&c->res.caps);
	st_smtp_caps_release(&c->res.caps_tls);
	free(c);
}

enum st_smtp_want st_smtp_client_want(const struct st_smtp_client *c)
{
	return c->want;
}

const struct st_smtp_result *st_smtp_client_result(const struct st_smtp_client *c)
{
	return &c->res;
}

const unsigned char *st_smtp_client_output(const struct st_smtp_client *c, size_t *len)
{
	*len = c->out.len - c->out_off;
	return c->out.data ? c->out.data + c->out_off : (const unsigned char *)"";
}

/* After a write: wait for the server (or, interactive, for the user's next line when
 * no reply is due), or close once QUIT's reply is in. */
static void after_write(struct st_smtp_client *c)
{
	c->want = c->state == S_CLOSED                       ? ST_SMTP_WANT_CLOSE
	          : c->state == S_USER && !c->user_reply_due ? ST_SMTP_WANT_LINE
	                                                     : ST_SMTP_WANT_READ;
}

void st_smtp_client_sent(struct st_smtp_client *c, size_t n)
{
	c->out_off += n;
	if (c->out_off >= c->out.len) {
		/* the buffer may have held AUTH credentials: leave nothing behind */
		if (c->out.data)
			explicit_bzero(c->out.data, c->out.cap);
		st_buf_reset(&c->out);
		c->out_off = 0;
		after_write(c);
	}
}

static void fail(struct st_smtp_client *c, enum st_err_class cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct st_smtp_client *c, enum st_err_class cls, const char *fmt, ...)
{
	va_list ap;

	if (c->res.failed)
		return; /* the first reason is the reason */
	c->res.failed = true;
	c->res.error.cls = cls;
	va_start(ap, fmt);
	vsnprintf(c->res.error.msg, sizeof(c->res.error.msg), fmt, ap);
	va_end(ap);
	st_sanitize(c->res.error.msg);
}

/* Queue one command line. */
static void send_line(struct st_smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void send_line(struct st_smtp_client *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (c->p.log)
		c->p.log(c->p.log_arg, '>', c->tls, line);
	if (st_buf_addf(&c->out, "%s\r\n", line)) {
		fail(c, ST_ERR_INTERNAL, "out of memory");
		c->state = S_CLOSED;
		c->want = ST_SMTP_WANT_CLOSE;
		return;
	}
	c->want = ST_SMTP_WANT_WRITE;
}

/* Queue a line that carries a secret: the transcript gets a placeholder. */
static void send_secret(struct st_smtp_client *c, const char *shown, const char *line)
{
	if (c->p.log)
		c->p.log(c->p.log_arg, '>', c->tls, shown);
	if (st_buf_addf(&c->out, "%s\r\n", line)) {
		fail(c, ST_ERR_INTERNAL, "out of memory");
		c->state = S_CLOSED;
		c->want = ST_SMTP_WANT_CLOSE;
		return;
	}
	c->want = ST_SMTP_WANT_WRITE;
}

static void quit(struct st_smtp_client *c)
{
	c->state = S_QUIT;
	send_line(c, "QUIT");
}

/* The server said 421 (or worse): it closes; so do we, without QUIT. */
static void closing(struct st_smtp_client *c)
{
	c->state = S_CLOSED;
	c->want = ST_SMTP_WANT_CLOSE;
}

static void reply_failed(struct st_smtp_client *c, const char *what, const struct st_smtp_reply *r)
{
	fail(c, ST_ERR_REJECTED, "%s: %d %s", what, r->code, r->n_lines ? r->lines[0] : "");
	if (r->code == 421)
		closing(c);
	else
		quit(c);
}

static void mail_or_quit(struct st_smtp_client *c)
{
	if (c->p.interactive) {
		c->state = S_USER;
		c->res.stage = ST_SMTP_STAGE_INTERACTIVE;
		c->want = ST_SMTP_WANT_LINE;
	} else if (c->p.mail_from) {
		c->state = S_MAIL;
		c->res.stage = ST_SMTP_STAGE_MAIL;
		send_line(c, "MAIL FROM:<%s>", c->p.mail_from);
	} else {
		quit(c);
	}
}

/* base64 of s into a line after prefix; the buffer is wiped after use by the caller. */
static void send_b64(struct st_smtp_client *c, const char *shown, const char *prefix, const void *s,
                     size_t len)
{
	struct st_buf b, line;

	st_buf_init(&b, 4096);
	st_buf_init(&line, 4200);
	if (st_base64(s, len, &b) || st_buf_addf(&line, "%s%s", prefix, st_buf_str(&b))) {
		fail(c, ST_ERR_USAGE, "AUTH credentials too long");
		quit(c);
	} else {
		send_secret(c, shown, st_buf_str(&line));
	}
	if (b.data)
		explicit_bzero(b.data, b.cap);
	if (line.data)
		explicit_bzero(line.data, line.cap);
	st_buf_release(&b);
	st_buf_release(&line);
}

/* AUTH when asked and allowed, else MAIL or QUIT. */
static void auth_or_mail(struct st_smtp_client *c)
{
	const struct st_smtp_caps *caps = c->tls ? &c->res.caps_tls : &c->res.caps;
	const char *mech;

	if (c->res.held) {
		quit(c);
		return;
	}
	if (!c->p.auth_user) {
		mail_or_quit(c);
		return;
	}
	if (!c->tls && !c->p.auth_plaintext) {
		fail(c, ST_ERR_USAGE, "AUTH refused by us: no TLS (the secret would go in clear)");
		quit(c);
		return;
	}
	mech = c->p.auth_mech                      ? c->p.auth_mech
	       : has_word(caps->auth, "PLAIN") ? "PLAIN"
	                                           : "LOGIN";
	if (!has_word(caps->auth, mech)) {
		fail(c, ST_ERR_REJECTED, "AUTH %s not offered (offered: %s)", mech,
		     caps->auth[0] ? caps->auth : "none");
		quit(c);
		return;
	}
	snprintf(c->res.auth_mech, sizeof(c->res.auth_mech), "%s", mech);
	c->state = S_AUTH;
	c->res.stage = ST_SMTP_STAGE_AUTH;
	if (strcasecmp(mech, "PLAIN") == 0) {
		/* authzid NUL authcid NUL password */
		struct st_buf cred;
		st_buf_init(&cred, 2048);
		if (st_buf_add(&cred, "", 1) ||
		    st_buf_add(&cred, c->p.auth_user, strlen(c->p.auth_user)) ||
		    st_buf_add(&cred, "", 1) ||
		    st_buf_add(&cred, c->p.auth_pass ? c->p.auth_pass : "",
		               strlen(c->p.auth_pass ? c->p.auth_pass : ""))) {
			fail(c, ST_ERR_USAGE, "AUTH credentials too long");
			quit(c);
		} else {
			/* the empty authzid: st_buf_add of "" with length 1 adds the NUL */
			send_b64(c, "AUTH PLAIN (credentials hidden)", "AUTH PLAIN ", cred.data,
			         cred.len);
		}
		if (cred.data)
			explicit_bzero(cred.data, cred.cap);
		st_buf_release(&cred);
	} else {
		send_line(c, "AUTH LOGIN");
	}
}

static void after_ehlo(struct st_smtp_client *c)
{
	if (c->p.mode == ST_SMTP_STARTTLS && !c->tls) {
		if (c->res.caps.starttls) {
			c->state = S_STARTTLS;
			c->res.stage = ST_SMTP_STAGE_STARTTLS;
			send_line(c, "STARTTLS");
			return;
		}
		if (!c->p.tls_optional) {
			fail(c, ST_ERR_TLS, "STARTTLS not offered");
			quit(c);
			return;
		}
	}
	auth_or_mail(c);
}

/* Send the message: CRLF line ends, dot-stuffed, then the lone dot. */
static void send_data(struct st_smtp_client *c)
{
	const char *p = c->p.data, *end = c->p.data + c->p.data_len;
	bool bol = true;
	int rc = 0;

	while (p < end && rc == 0) {
		if (bol && *p == '.')
			rc = st_buf_add(&c->out, ".", 1);
		if (*p == '\n') {
			rc = rc ? rc : st_buf_add(&c->out, "\r\n", 2);
			bol = true;
		} else if (*p == '\r') {
			/* CRLF, and a bare CR too, end a line: nothing bare goes out (a bare
			 * CR or LF next to a dot is how SMTP smuggling starts) */
			if (p + 1 < end && p[1] == '\n')
				p++;
			rc = rc ? rc : st_buf_add(&c->out, "\r\n", 2);
			bol = true;
		} else {
			rc = rc ? rc : st_buf_add(&c->out, p, 1);
			bol = false;
		}
		p++;
	}
	if (rc == 0 && !bol)
		rc = st_buf_add(&c->out, "\r\n", 2);
	if (rc == 0)
		rc = st_buf_add(&c->out, ".\r\n", 3);
	if (rc) {
		fail(c, ST_ERR_INTERNAL, "message too large");
		closing(c);
		return;
	}
	if (c->p.log)
		c->p.log(c->p.log_arg, '>', c->tls, "(message)");
	c->want = ST_SMTP_WANT_WRITE;
}

static void after_rcpts(struct st_smtp_client *c)
{
	if (c->p.data && c->rcpt_ok > 0) {
		c->state = S_DATA;
		c->res.stage = ST_SMTP_STAGE_DATA;
		send_line(c, "DATA");
	} else {
		c->state = S_RSET;
		send_line(c, "RSET");
	}
}

/* Keep a reply in its slot of the result (taking it). */
static void keep(struct st_smtp_reply *slot, struct st_smtp_reply *r)
{
	st_smtp_reply_release(slot);
	*slot = *r;
	memset(r, 0, sizeof(*r));
}

static void handle(struct st_smtp_client *c, struct st_smtp_reply *r)
{
	int code = r->code;

	switch (c->state) {
	case S_BANNER:
		keep(&c->res.banner, r);
		if (code == 220) {
			c->state = S_EHLO;
			c->res.stage = ST_SMTP_STAGE_EHLO;
			send_line(c, "EHLO %s", c->p.ehlo_name);
		} else {
			reply_failed(c, "the server refused the session", &c->res.banner);
		}
		break;
	case S_EHLO:
		keep(&c->res.ehlo, r);
		if (code == 250) {
			if (st_smtp_caps_parse(&c->res.ehlo, &c->res.caps))
				fail(c, ST_ERR_INTERNAL, "out of memory");
			after_ehlo(c);
		} else if (code >= 500 && code != 554) {
			/* an old server: HELO, which offers no extension */
			c->state = S_HELO;
			c->res.used_helo = true;
			send_line(c, "HELO %s", c->p.ehlo_name);
		} else {
			reply_failed(c, "EHLO refused", &c->res.ehlo);
		}
		break;
	case S_HELO:
		keep(&c->res.ehlo, r);
		if (code == 250)
			after_ehlo(c);
		else
			reply_failed(c, "HELO refused", &c->res.ehlo);
		break;
	case S_STARTTLS:
		keep(&c->res.starttls, r);
		if (code == 220) {
			c->state = S_TLS;
			c->res.stage = ST_SMTP_STAGE_TLS;
			c->want = ST_SMTP_WANT_TLS;
		} else if (code == 421) {
			reply_failed(c, "STARTTLS refused", &c->res.starttls);
		} else {
			fail(c, ST_ERR_TLS, "STARTTLS refused: %d %s", code,
			     c->res.starttls.n_lines ? c->res.starttls.lines[0] : "");
			quit(c);
		}
		break;
	case S_EHLO_TLS:
		keep(&c->res.ehlo_tls, r);
		if (code == 250) {
			if (st_smtp_caps_parse(&c->res.ehlo_tls, &c->res.caps_tls))
				fail(c, ST_ERR_INTERNAL, "out of memory");
			auth_or_mail(c);
		} else {
			reply_failed(c, "EHLO after STARTTLS refused", &c->res.ehlo_tls);
		}
		break;
	case S_AUTH:
	case S_AUTH_USER:
	case S_AUTH_PASS:
		keep(&c->res.auth, r);
		if (code == 334 && c->state == S_AUTH &&
		    strcasecmp(c->res.auth_mech, "LOGIN") == 0) {
			c->state = S_AUTH_USER;
			send_b64(c, "(user name)", "", c->p.auth_user, strlen(c->p.auth_user));
		} else if (code == 334 && c->state == S_AUTH_USER) {
			const char *pw = c->p.auth_pass ? c->p.auth_pass : "";
			c->state = S_AUTH_PASS;
			send_b64(c, "(password hidden)", "", pw, strlen(pw));
		} else if (code == 235) {
			c->res.auth_ok = true;
			mail_or_quit(c);
		} else if (code == 334 && !c->auth_cancelled) {
			/* a challenge we did not expect: cancel the exchange, once */
			c->auth_cancelled = true;
			send_line(c, "*");
		} else if (code == 334) {
			/* a server that challenges again after "*" would keep us forever */
			reply_failed(c, "AUTH not cancelled by the server", &c->res.auth);
		} else {
			reply_failed(c, "AUTH failed", &c->res.auth);
		}
		break;
	case S_MAIL:
		keep(&c->res.mail, r);
		if (code == 250) {
			c->rcpt_i = 0;
			if (c->p.n_rcpt) {
				c->state = S_RCPT;
				c->res.stage = ST_SMTP_STAGE_RCPT;
				send_line(c, "RCPT TO:<%s>", c->p.rcpt[0]);
			} else {
				after_rcpts(c);
			}
		} else {
			reply_failed(c, "MAIL FROM refused", &c->res.mail);
		}
		break;
	case S_RCPT:
		keep(&c->res.rcpt[c->rcpt_i], r);
		c->res.n_rcpt = c->rcpt_i + 1;
		if (code == 421) {
			reply_failed(c, "RCPT TO refused", &c->res.rcpt[c->rcpt_i]);
			break;
		}
		if (code == 250 || code == 251)
			c->rcpt_ok++;
		if (++c->rcpt_i < c->p.n_rcpt)
			send_line(c, "RCPT TO:<%s>", c->p.rcpt[c->rcpt_i]);
		else
			after_rcpts(c);
		break;
	case S_DATA:
		keep(&c->res.data, r);
		if (code == 354) {
			c->state = S_DATA_END;
			send_data(c);
		} else {
			reply_failed(c, "DATA refused", &c->res.data);
		}
		break;
	case S_DATA_END:
		keep(&c->res.data_end, r);
		if (code / 100 == 2)
			quit(c);
		else
			reply_failed(c, "message refused", &c->res.data_end);
		break;
	case S_RSET:
		st_smtp_reply_release(r);
		if (code == 421)
			closing(c);
		else
			quit(c);
		break;
	case S_QUIT:
		keep(&c->res.quit, r);
		c->state = S_CLOSED;
		if (!c->res.failed)
			c->res.stage = ST_SMTP_STAGE_DONE;
		c->want = ST_SMTP_WANT_CLOSE;
		break;
	case S_USER:
		/* shown in the transcript; a reply nobody asked for is shown all the same */
		st_smtp_reply_release(r);
		if (code == 421) {
			closing(c);
			break;
		}
		if (c->user_sent_data && code == 354)
			c->user_data = true;
		c->user_sent_data = false;
		c->user_reply_due = false;
		c->want = ST_SMTP_WANT_LINE;
		if (c->user_eof)
			st_smtp_client_user_eof(c);
		break;
	case S_TLS:
	case S_CLOSED:
		st_smtp_reply_release(r);
		break;
	}
}

int st_smtp_client_user_line(struct st_smtp_client *c, const char *line, size_t len)
{
	char shown[ST_SMTP_LINE_MAX + 1];
	size_t n = 0;

	while (n < len && line[n] != '\r' && line[n] != '\n')
		n++;
	if (n > ST_SMTP_LINE_MAX)
		return ST_E_TOOBIG;
	if (c->state != S_USER || c->want != ST_SMTP_WANT_LINE)
		return ST_E_INVALID;
	memcpy(shown, line, n);
	shown[n] = '\0';
	st_sanitize(shown);
	if (c->p.log)
		c->p.log(c->p.log_arg, '>', c->tls, shown);
	if (st_buf_add(&c->out, line, n) || st_buf_add(&c->out, "\r\n", 2)) {
		fail(c, ST_ERR_INTERNAL, "out of memory");
		closing(c);
		return ST_E_NOMEM;
	}
	if (c->user_data) {
		/* a message line: no reply, but for the lone dot that ends it */
		if (n == 1 && line[0] == '.') {
			c->user_data = false;
			c->user_reply_due = true;
		}
	} else {
		size_t v = strcspn(shown, " \t");
		c->user_reply_due = true;
		c->user_sent_data = v == 4 && strncasecmp(shown, "DATA", 4) == 0;
		if (v == 4 && strncasecmp(shown, "QUIT", 4) == 0)
			c->state = S_QUIT;
	}
	c->want = ST_SMTP_WANT_WRITE;
	return ST_OK;
}

void st_smtp_client_user_eof(struct st_smtp_client *c)
{
	if (c->state != S_USER)
		return;
	c->user_eof = true;
	if (c->user_data && c->want == ST_SMTP_WANT_LINE) {
		fail(c, ST_ERR_USAGE,
		     "the input ended inside a message (no line with a lone \".\"): it was not "
		     "sent");
		closing(c);
		return;
	}
	if (c->want == ST_SMTP_WANT_LINE)
		quit(c);
}

static void log_reply(struct st_smtp_client *c, const struct st_smtp_reply *r)
{
	char line[ST_SMTP_LINE_MAX + 8];
	size_t i;

	if (!c->p.log)
		return;
	for (i = 0; i < r->n_lines; i++) {
		snprintf(line, sizeof(line), "%d%c%s", r->code, i + 1 < r->n_lines ? '-' : ' ',
		         r->lines[i]);
		c->p.log(c->p.log_arg, '<', c->tls, line);
	}
}

size_t st_smtp_client_input(struct st_smtp_client *c, const unsigned char *data, size_t len)
{
	struct st_smtp_reply r;
	struct st_error err;
	size_t off = 0, used;
	int rc;

	while (off < len && c->state != S_CLOSED) {
		if (c->state == S_TLS) {
			/* bytes between the STARTTLS 220 and the handshake: nobody may send
			 * them; a server or a man in the middle that does is injecting */
			c->res.injected += len - off;
			return len;
		}
		rc = st_smtp_parser_feed(&c->parser, data + off, len - off, &used, &r, &err);
		off += used;
		if (rc < 0) {
			fail(c, ST_ERR_PROTOCOL, "%s", err.msg);
			closing(c);
			return off;
		}
		if (rc == 0)
			break;
		log_reply(c, &r);
		handle(c, &r);
		st_smtp_reply_release(&r);
		if (off < len && c->want == ST_SMTP_WANT_WRITE && c->state != S_QUIT) {
			/* we never pipeline: a reply to a command not yet sent is the server
			 * talking out of turn, or someone injecting replies */
			fail(c, ST_ERR_PROTOCOL,
			     "the server sent %zu bytes before our next command (unrequested pipelining)",
			     len - off);
			closing(c);
			return len;
		}
	}
	return off;
}

void st_smtp_client_hold(struct st_smtp_client *c, const char *why)
{
	c->res.held = true;
	snprintf(c->res.held_why, sizeof(c->res.held_why), "%s", why ? why : "");
	st_sanitize(c->res.held_why);
}

void st_smtp_client_eof(struct st_smtp_client *c, const char *why)
{
	if (c->state != S_CLOSED && c->state != S_QUIT)
		fail(c, ST_ERR_PROTOCOL, "connection closed during %s%s%s",
		     st_smtp_stage_name(c->res.stage), why ? ": " : "", why ? why : "");
	c->state = S_CLOSED;
	c->want = ST_SMTP_WANT_CLOSE;
}

void st_smtp_client_tls_up(struct st_smtp_client *c, bool ok, const char *why)
{
	if (c->state != S_TLS)
		return;
	if (!ok) {
		fail(c, ST_ERR_TLS, "TLS handshake failed%s%s", why ? ": " : "", why ? why : "");
		closing(c);
		return;
	}
	c->tls = true;
	c->res.tls_up = true;
	/* nothing read in plaintext may count after the handshake */
	st_smtp_parser_release(&c->parser);
	st_smtp_parser_init(&c->parser);
	c->state = S_EHLO_TLS;
	c->res.stage = ST_SMTP_STAGE_EHLO_TLS;
	send_line(c, "EHLO %s", c->p.ehlo_name);
}
