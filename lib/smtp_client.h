/* smtp_client.h: the SMTP client engine, sans I/O: reply parsing and EHLO capabilities */
#ifndef ST_SMTP_CLIENT_H
#define ST_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/*
 * Caps on what a server may make us hold. RFC 5321 4.5.3.1.5 gives 512
 * octets for a reply line; real servers stay below it, so 4 KiB leaves room
 * and still bounds a hostile one. 256 lines covers any honest EHLO reply.
 */
#define ST_SMTP_LINE_MAX  4096
#define ST_SMTP_LINES_MAX 256

/* One reply: its code and its lines' text (after "NNN-" or "NNN "). */
struct st_smtp_reply {
	int code;     /* 200..599 */
	char **lines; /* owned, sanitised for terminals, NUL-terminated */
	size_t n_lines;
	char enhanced[16]; /* the enhanced status code of the first line ("5.7.1"), or "" */
};

/* Free what a reply holds; it is then empty. */
void st_smtp_reply_release(struct st_smtp_reply *r);

/* The reply as text: lines joined by "\n" with their code, as the server sent them (owned by the caller). */
char *st_smtp_reply_text(const struct st_smtp_reply *r);

/* Collects reply lines from bytes as they come. */
struct st_smtp_parser {
	struct st_buf line;       /* the line being read */
	struct st_smtp_reply cur; /* the reply being read */
	bool in_reply;
	bool bad_bytes; /* a line held NUL or bare CR bytes (sanitised) */
};

void st_smtp_parser_init(struct st_smtp_parser *p);
void st_smtp_parser_release(struct st_smtp_parser *p);

/*
 * Feed bytes. Consumes up to the end of the first complete reply and
 * returns 1 with *out filled (owned by the caller), *used telling how many
 * bytes were taken: what follows belongs to the next reply (or, after a
 * STARTTLS 220, to nobody: an injection attempt). Returns 0 when all bytes
 * were taken and the reply is not complete, or a negative ST_E_* with err
 * (class ST_ERR_PROTOCOL) naming what is wrong: a line over
 * ST_SMTP_LINE_MAX, more than ST_SMTP_LINES_MAX lines, a line that is not
 * "NNN-text" or "NNN text", a code that changes inside a reply.
 */
int st_smtp_parser_feed(struct st_smtp_parser *p, const unsigned char *data, size_t len,
                        size_t *used, struct st_smtp_reply *out, struct st_error *err);

/* What an EHLO reply offers. */
struct st_smtp_caps {
	bool starttls, pipelining, size, eightbitmime, smtputf8, chunking, enhancedstatuscodes;
	bool requiretls, dsn, binarymime;
	unsigned long max_size; /* SIZE's argument, 0 when none */
	char auth[256];         /* AUTH mechanisms, space separated, upper case; "" when none */
	char **keywords;        /* every keyword line as sent, sanitised */
	size_t n_keywords;
};

/* Read the capabilities of an EHLO reply (its first line is the greeting, not a keyword). */
int st_smtp_caps_parse(const struct st_smtp_reply *ehlo, struct st_smtp_caps *caps);

void st_smtp_caps_release(struct st_smtp_caps *caps);

#endif
