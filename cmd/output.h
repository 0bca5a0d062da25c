/* output.h: all rendering to the terminal: text, colour, JSON, errors */
#ifndef ST_OUTPUT_H
#define ST_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>

#include "cmd.h"
#include "util.h"

/* Set up output for this run (colour on stdout and stderr). */
void st_out_setup(const struct st_global *g);

/* Colour roles. */
enum st_style {
	ST_STYLE_NONE,
	ST_STYLE_LABEL,
	ST_STYLE_HEAD,
	ST_STYLE_OK,
	ST_STYLE_WARN,
	ST_STYLE_BAD
};

/* Print s to stdout in a style (plain when colour is off). */
void st_out_styled(enum st_style style, const char *s);

/* Print "label" padded to width in the label style, then the value and a newline. */
void st_out_field(const char *label, int width, const char *value);

/* Print one JSON value on one line of stdout; takes the reference. */
void st_out_json(json_t *value);

/* "smtptls: <message>" on stderr, in red when stderr is a TTY and colour is on. */
void st_out_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "smtptls: warning: <message>" on stderr, unless --quiet. */
void st_out_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A note on stderr shown at verbosity >= level. */
void st_out_note(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Has writing to stdout failed so far? Commands stop early when it has. */
bool st_out_failed(void);

/*
 * Flush and close stdout. Returns ST_EXIT_OUTPUT after reporting the error
 * (a closed pipe, a full disk) on stderr, else ST_EXIT_OK.
 */
enum st_exit st_out_finish(void);

/* Standard output was closed when we started (it is /dev/null now): say so at the end. */
void st_out_stdout_closed(void);

#endif
