/* smtp_client.c: the SMTP client engine, sans I/O: reply parsing and EHLO capabilities */
#include "config.h"

#include "smtp_client.h"

#include <ctype.h>
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

/* Is word one of the space-separated words of list? */
static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	while (*list) {
		size_t k = strcspn(list, " ");
		if (k == n && strncmp(list, word, n) == 0)
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
