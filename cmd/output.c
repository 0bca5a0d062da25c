/* output.c: all rendering to the terminal: text, colour, JSON, errors */
#include "config.h"

#include "output.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool color_out;
static bool color_err;
static bool quiet;
static int verbose;
static bool write_failed;
static bool internal_failed;
static int write_errno;

void st_out_setup(const struct st_global *g)
{
	const char *term = getenv("TERM");
	bool dumb = term && strcmp(term, "dumb") == 0;

	color_out = g->color;
	color_err = g->color_mode == ST_COLOR_ALWAYS ||
	            (g->color_mode == ST_COLOR_AUTO && isatty(STDERR_FILENO) && !dumb &&
	             !(getenv("NO_COLOR") && *getenv("NO_COLOR")));
	quiet = g->quiet;
	verbose = g->verbose;
}

static const char *style_code(enum st_style style)
{
	switch (style) {
	case ST_STYLE_LABEL:
		return "\033[2m";
	case ST_STYLE_HEAD:
		return "\033[1m";
	case ST_STYLE_OK:
		return "\033[32m";
	case ST_STYLE_WARN:
		return "\033[33m";
	case ST_STYLE_BAD:
		return "\033[1;31m";
	case ST_STYLE_NONE:
		break;
	}
	return "";
}

/* Remember the first write error on stdout. */
static void check_stdout(void)
{
	if (!write_failed && ferror(stdout)) {
		write_failed = true;
		write_errno = errno;
	}
}

void st_out_styled(enum st_style style, const char *s)
{
	if (color_out && style != ST_STYLE_NONE)
		printf("%s%s\033[0m", style_code(style), s);
	else
		fputs(s, stdout);
	check_stdout();
}

void st_out_field(const char *label, int width, const char *value)
{
	if (color_out)
		printf("%s%-*s\033[0m %s\n", style_code(ST_STYLE_LABEL), width, label, value);
	else
		printf("%-*s %s\n", width, label, value);
	check_stdout();
}

void st_out_json(json_t *value)
{
	if (!value) {
		/* a record we could not build must not vanish without a word */
		st_out_error("cannot build a JSON record: out of memory or invalid UTF-8");
		internal_failed = true;
		return;
	}
	if (json_dumpf(value, stdout, JSON_COMPACT | JSON_ENSURE_ASCII) == 0)
		putchar('\n');
	json_decref(value);
	check_stdout();
}

/* Messages carry file names and peers' words: sanitised, whatever the caller passed. */
static void vreport(bool color, const char *prefix, const char *fmt, va_list ap)
{
	char msg[4096];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	st_sanitize(msg);
	fflush(stdout);
	if (color)
		fputs("\033[1;31m", stderr);
	fputs("smtptls: ", stderr);
	fputs(prefix, stderr);
	fputs(msg, stderr);
	if (color)
		fputs("\033[0m", stderr);
	fputc('\n', stderr);
}

void st_out_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(color_err, "", fmt, ap);
	va_end(ap);
}

void st_out_warn(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	vreport(false, "warning: ", fmt, ap);
	va_end(ap);
}

void st_out_note(int level, const char *fmt, ...)
{
	va_list ap;

	if (quiet || verbose < level)
		return;
	va_start(ap, fmt);
	vreport(false, "", fmt, ap);
	va_end(ap);
}

bool st_out_failed(void)
{
	check_stdout();
	return write_failed;
}

void st_out_stdout_closed(void)
{
	write_failed = true;
	write_errno = EBADF;
}

enum st_exit st_out_finish(void)
{
	int err = 0;

	if (fflush(stdout) != 0)
		err = errno;
	check_stdout();
	if (write_failed && !err)
		err = write_errno;
	if (fclose(stdout) != 0 && !err)
		err = errno;
	if (write_failed || err) {
		st_out_error("cannot write to standard output: %s",
		             err ? strerror(err) : "write error");
		return ST_EXIT_OUTPUT;
	}
	return internal_failed ? ST_EXIT_INTERNAL : ST_EXIT_OK;
}
