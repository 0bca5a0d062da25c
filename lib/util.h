/* util.h: capped growable buffers, the error type and small string helpers */
#ifndef ST_UTIL_H
#define ST_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Return codes of lib functions: 0 on success, one of these on failure. */
enum {
	ST_OK = 0,
	ST_E_NOMEM = -1,       /* out of memory */
	ST_E_TOOBIG = -2,      /* a cap was reached */
	ST_E_IO = -3,          /* reading or writing failed */
	ST_E_PARSE = -4,       /* input is malformed */
	ST_E_UNSUPPORTED = -5, /* input is well-formed but of a kind we do not handle */
	ST_E_INVALID = -6,     /* bad argument */
	ST_E_CRYPTO = -7,      /* the crypto library failed */
};

/*
 * Error classes. Each maps to one documented exit status (cmd/main.c,
 * smtptls(1) EXIT STATUS). ST_ERR_INPUT and ST_ERR_OUTPUT are not in the
 * first draft of DESIGN.md: a file that cannot be read or parsed is neither
 * a usage error nor a bug, and scripts need to tell them apart.
 */
enum st_err_class {
	ST_ERR_NONE = 0,
	ST_ERR_USAGE,
	ST_ERR_INPUT,
	ST_ERR_INTERNAL,
	ST_ERR_DNS,
	ST_ERR_CONNECT,
	ST_ERR_PROTOCOL,
	ST_ERR_TLS,
	ST_ERR_VERIFY,
	ST_ERR_POLICY,
	ST_ERR_REJECTED,
	ST_ERR_OUTPUT,
};

#define ST_ERROR_MAX 512

/* An error: its class and a message (lowercase, no trailing period). */
struct st_error {
	enum st_err_class cls;
	char msg[ST_ERROR_MAX];
	int sub; /* within the class, what the module says it is (0: nothing more); lib/dns:
	            enum st_dns_sub */
};

/* Set *err (when err is not NULL); the message is truncated to fit. */
void st_error_set(struct st_error *err, enum st_err_class cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reset *err to "no error". NULL is a no-op. */
void st_error_clear(struct st_error *err);

/* The name of an error class ("usage", "input", ...). */
const char *st_err_class_name(enum st_err_class cls);

/* A growable byte buffer that never grows beyond max bytes. */
struct st_buf {
	unsigned char *data; /* owned; always NUL-terminated when len > 0 */
	size_t len;
	size_t cap;
	size_t max;
};

/* Initialise an empty buffer capped at max bytes (content, not counting the NUL). */
void st_buf_init(struct st_buf *b, size_t max);

/* Append n bytes. ST_E_TOOBIG past the cap (nothing is appended), ST_E_NOMEM. */
int st_buf_add(struct st_buf *b, const void *p, size_t n);

/* Append formatted text, same errors as st_buf_add. */
int st_buf_addf(struct st_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Forget the content, keep the memory. */
void st_buf_reset(struct st_buf *b);

/* Free the content; the buffer is then empty and reusable. */
void st_buf_release(struct st_buf *b);

/* The content as a C string ("" when empty); borrowed from b. */
const char *st_buf_str(const struct st_buf *b);

/*
 * The most any input file may hold (certificates, keys, CRLs, policy tables, main.cf,
 * user tables, messages to send): the one input cap, in bytes and in words.
 */
#define ST_INPUT_MAX      ((size_t)64 << 20)
#define ST_INPUT_MAX_TEXT "64 MiB"

/*
 * Read a whole file ("-" is standard input) into out, which is reset first, in
 * chunks, never more than the smaller of out->max and ST_INPUT_MAX: an endless
 * source (/dev/zero, a FIFO) is read up to the cap, a regular file over it not at
 * all. Fails with ST_E_TOOBIG past the cap ("cannot read 'X': larger than 64 MiB"),
 * and with a message naming the file and the reason (a directory, permission
 * denied, ...) in err, class input.
 */
int st_read_file(const char *path, struct st_buf *out, struct st_error *err);

/*
 * Check a file another program will read (Postfix's postconf reads main.cf and
 * master.cf): 0 when it is a regular file within ST_INPUT_MAX, else ST_E_TOOBIG
 * ("cannot read 'X': larger than 64 MiB") or ST_E_IO ("...: not a regular file",
 * or why it cannot be looked at) with err, class input. Nothing is read.
 */
int st_file_check(const char *path, struct st_error *err);

/*
 * Write n bytes as hex into out (size >= 3*n+1 with a separator, 2*n+1
 * without). sep 0 means none. upper selects A-F over a-f.
 */
void st_hex(const unsigned char *p, size_t n, bool upper, char sep, char *out);

/*
 * Make s safe to print on a terminal, in place and keeping its length:
 * control bytes, DEL, malformed UTF-8, and UTF-8 for C1 controls, line
 * separators and bidirectional controls become '?' (one per byte); other
 * printable UTF-8 (such as 'Müller') is kept.
 */
void st_sanitize(char *s);

/*
 * snprintf into out (size >= 4) that never cuts a UTF-8 character in two: text
 * that does not fit is cut at a character boundary and ends with "..." to say so.
 */
void st_cut_printf(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Format t as ISO 8601 UTC ("2026-11-28T13:23:26Z") into out (>= 21 bytes). */
int st_time_iso(time_t t, char *out, size_t size);

/* Levenshtein distance between a and b, capped at 255. */
unsigned st_edit_distance(const char *a, const char *b);

#endif
