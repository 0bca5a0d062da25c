/* util.c: capped growable buffers, the error type and small string helpers */
#include "config.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void st_error_set(struct st_error *err, enum st_err_class cls, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	err->cls = cls;
	err->sub = 0;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

void st_error_clear(struct st_error *err)
{
	if (!err)
		return;
	err->cls = ST_ERR_NONE;
	err->msg[0] = '\0';
	err->sub = 0;
}

const char *st_err_class_name(enum st_err_class cls)
{
	static const char *const names[] = {
	    [ST_ERR_NONE] = "none",         [ST_ERR_USAGE] = "usage",
	    [ST_ERR_INPUT] = "input",       [ST_ERR_INTERNAL] = "internal",
	    [ST_ERR_DNS] = "dns",           [ST_ERR_CONNECT] = "connect",
	    [ST_ERR_PROTOCOL] = "protocol", [ST_ERR_TLS] = "tls",
	    [ST_ERR_VERIFY] = "verify",     [ST_ERR_POLICY] = "policy",
	    [ST_ERR_REJECTED] = "rejected", [ST_ERR_OUTPUT] = "output",
	};

	if ((size_t)cls >= sizeof(names) / sizeof(names[0]))
		return "internal";
	return names[cls];
}

void st_buf_init(struct st_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

/* Make room for n more bytes plus a NUL, doubling, but never past max. */
static int buf_grow(struct st_buf *b, size_t n)
{
	size_t need, cap;
	unsigned char *p;

	if (n > b->max || b->len > b->max - n)
		return ST_E_TOOBIG;
	need = b->len + n + 1;
	if (need <= b->cap)
		return ST_OK;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap - 1 > b->max) /* cap > max + 1, without wrapping when max is SIZE_MAX */
		cap = b->max + 1;
	p = realloc(b->data, cap);
	if (!p)
		return ST_E_NOMEM;
	b->data = p;
	b->cap = cap;
	return ST_OK;
}

int st_buf_add(struct st_buf *b, const void *p, size_t n)
{
	int rc;

	if (n == 0)
		return ST_OK;
	rc = buf_grow(b, n);
	if (rc)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return ST_OK;
}

int st_buf_addf(struct st_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return ST_E_INVALID;
	rc = buf_grow(b, (size_t)n);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return ST_OK;
}

void st_buf_reset(struct st_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void st_buf_release(struct st_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

const char *st_buf_str(const struct st_buf *b)
{
	return b->data ? (const char *)b->data : "";
}

/* "larger than 64 MiB" for the input cap, "larger than N bytes" for a smaller one. */
static void too_big(struct st_error *err, const char *shown, size_t max)
{
	if (max == ST_INPUT_MAX)
		st_error_set(err, ST_ERR_INPUT, "cannot read '%s': larger than %s", shown,
		             ST_INPUT_MAX_TEXT);
	else
		st_error_set(err, ST_ERR_INPUT, "cannot read '%s': larger than %zu bytes", shown,
		             max);
}

int st_read_file(const char *path, struct st_buf *out, struct st_error *err)
{
	const char *shown = strcmp(path, "-") == 0 ? "standard input" : path;
	unsigned char chunk[65536];
	struct stat st;
	int fd, rc = ST_OK;
	ssize_t n;

	st_buf_reset(out);
	if (out->max > ST_INPUT_MAX)
		out->max = ST_INPUT_MAX;
	if (strcmp(path, "-") == 0) {
		fd = STDIN_FILENO;
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			st_error_set(err, ST_ERR_INPUT, "cannot read '%s': %s", path,
			             strerror(errno));
			return ST_E_IO;
		}
	}
	if (fstat(fd, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			st_error_set(err, ST_ERR_INPUT, "cannot read '%s': is a directory", shown);
			rc = ST_E_IO;
			goto out;
		}
		if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > out->max) {
			too_big(err, shown, out->max);
			rc = ST_E_TOOBIG;
			goto out;
		}
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			st_error_set(err, ST_ERR_INPUT, "cannot read '%s': %s", shown,
			             strerror(errno));
			rc = ST_E_IO;
			goto out;
		}
		if (n == 0)
			break;
		rc = st_buf_add(out, chunk, (size_t)n);
		if (rc == ST_E_TOOBIG) {
			too_big(err, shown, out->max);
			goto out;
		}
		if (rc) {
			st_error_set(err, ST_ERR_INTERNAL, "cannot read '%s': out of memory",
			             shown);
			goto out;
		}
	}
out:
	if (fd != STDIN_FILENO)
		close(fd);
	return rc;
}

int st_file_check(const char *path, struct st_error *err)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		st_error_set(err, ST_ERR_INPUT, "cannot read '%s': %s", path, strerror(errno));
		return ST_E_IO;
	}
	if (!S_ISREG(st.st_mode)) {
		st_error_set(err, ST_ERR_INPUT, "cannot read '%s': %s", path,
		             S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
		return ST_E_IO;
	}
	if ((uintmax_t)st.st_size > ST_INPUT_MAX) {
		too_big(err, path, ST_INPUT_MAX);
		return ST_E_TOOBIG;
	}
	return ST_OK;
}

void st_cut_printf(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	size_t end;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (n < 0) {
		out[0] = '\0';
		return;
	}
	if ((size_t)n < size)
		return;
	/* out[end] is the first byte dropped: back to the start of its character */
	end = size - 4;
	while (end > 0 && ((unsigned char)out[end] & 0xc0) == 0x80)
		end--;
	memcpy(out + end, "...", 4);
}

void st_hex(const unsigned char *p, size_t n, bool upper, char sep, char *out)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		if (sep && i > 0)
			*out++ = sep;
		*out++ = digits[p[i] >> 4];
		*out++ = digits[p[i] & 0x0f];
	}
	*out = '\0';
}

/* The length of a UTF-8 sequence by its lead byte and continuation bytes, or 0. */
static size_t utf8_len_any(const unsigned char *p)
{
	size_t n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0, i;

	if (n == 0 || p[0] > 0xf4)
		return 0;
	for (i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/*
 * The length of the UTF-8 sequence at p if it is well-formed (no overlong
 * form, no surrogate, at most U+10FFFF) and safe to show, else 0. Unsafe:
 * C1 controls, line and paragraph separators, and the bidirectional
 * controls that can make a terminal show text in another order than it has.
 */
static size_t utf8_safe_len(const unsigned char *p)
{
	unsigned long cp;
	size_t n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	if (cp < 0xa0 || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
	    cp == 0x200e || cp == 0x200f || cp == 0x061c)
		return 0;
	return n;
}

void st_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t n;

	while (p && *p) {
		if (*p >= 0x20 && *p <= 0x7e) {
			p++;
		} else if (*p >= 0x80 && (n = utf8_safe_len(p)) > 0) {
			p += n;
		} else if (*p >= 0x80 && (n = utf8_len_any(p)) > 0) {
			/* well-formed but unsafe to show: one '?' a byte keeps the length */
			memset(p, '?', n);
			p += n;
		} else {
			*p++ = '?';
		}
	}
}

int st_time_iso(time_t t, char *out, size_t size)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		if (size > 0)
			out[0] = '\0';
		return ST_E_INVALID;
	}
	return ST_OK;
}

unsigned st_edit_distance(const char *a, const char *b)
{
	unsigned row[64], i, j, prev, tmp, best;
	size_t la = strlen(a), lb = strlen(b);

	if (la >= 64 || lb >= 64)
		return 255;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = row[j];
			best = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb] > 255 ? 255 : row[lb];
}
