/* cmd.h: what the commands share: global options, exit statuses, the command table */
#ifndef ST_CMD_H
#define ST_CMD_H

#include <argp.h>
#include <stdbool.h>

#include "util.h"
#include "x509.h"

/*
 * Exit statuses, one per error class (smtptls(1), EXIT STATUS). When several
 * inputs end differently the worst wins, in this order from best to worst:
 * 0, 11, 1, 3, 4, 5, 6, 7, 8, 2, 9, 10 (see st_exit_worse).
 */
enum st_exit {
	ST_EXIT_OK = 0,        /* everything worked and every check passed */
	ST_EXIT_FAIL = 1,      /* a check ran and failed (verification, policy, level) */
	ST_EXIT_USAGE = 2,     /* bad command line */
	ST_EXIT_INPUT = 3,     /* an input file could not be read or parsed */
	ST_EXIT_DNS = 4,       /* name resolution failed */
	ST_EXIT_CONNECT = 5,   /* no connection */
	ST_EXIT_PROTOCOL = 6,  /* the peer broke the SMTP protocol */
	ST_EXIT_TLS = 7,       /* the TLS handshake failed */
	ST_EXIT_REJECTED = 8,  /* the server refused us */
	ST_EXIT_OUTPUT = 9,    /* standard output could not be written */
	ST_EXIT_INTERNAL = 10, /* out of memory, a bug, a library failure */
	ST_EXIT_WARN = 11,     /* every check passed, with warnings (expiry near, revocation unknown) */
};

/* The exit status for an error class. */
enum st_exit st_exit_for(enum st_err_class cls);

/* The worse of two exit statuses. */
enum st_exit st_exit_worse(enum st_exit a, enum st_exit b);

enum st_color_mode { ST_COLOR_AUTO, ST_COLOR_ALWAYS, ST_COLOR_NEVER };

/* Options valid before and after the command name. */
struct st_global {
	bool json;
	enum st_color_mode color_mode;
	bool color; /* resolved from color_mode, NO_COLOR and the TTY */
	int verbose;
	bool quiet;
};

/* The argp of the global options; commands add it as a child with input = struct st_global *. */
extern const struct argp st_global_argp;

/* The children array every command's argp uses: the global options, under their header. */
extern const struct argp_child st_global_children[];

/* Values a completion offers for an option's argument: a word list, or "@file", "@dir". */
struct st_optvals {
	const char *option; /* long name without dashes */
	const char *values;
};

struct st_command {
	const char *name;
	const char *summary;
	const struct argp *argp;         /* NULL: not built yet */
	const struct st_optvals *values; /* NULL-terminated, or NULL */
	const char *args;                /* what positional arguments complete to: "@file", "" */
	int (*run)(int argc, char **argv, struct st_global *g);
};

/*
 * Parse a command's arguments with its argp (which has st_global_argp as a
 * child), then resolve the colour mode. Exits with ST_EXIT_USAGE on a bad
 * command line, 0 after --help.
 */
void st_cmd_parse(const struct argp *argp, int argc, char **argv, void *input, struct st_global *g);

/*
 * argp_parse with our own --help and --version (argp's built-in --usage
 * would collide with fingerprint's TLSA --usage) and our own hint on a bad
 * command line: exits with ST_EXIT_USAGE after getopt's message.
 */
int st_argp_parse(const struct argp *argp, int argc, char **argv, unsigned flags, void *input);

/* Report a bad command line as "NAME: message", hint at --help, exit ST_EXIT_USAGE. */
void st_usage_error(const struct argp_state *state, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/*
 * When word (a pointer into the argv given to st_argp_parse) stood right
 * after a long option whose value is optional and that was given without
 * '=', that option's long name: getopt took the word as an argument, which
 * is rarely what the user meant. NULL otherwise.
 */
const char *st_optional_value_before(const char *word);

/* Parse a --digest value (md5 ... sha512), or report a usage error naming opt and exit. */
enum st_digest st_parse_digest(const struct argp_state *state, const char *opt, const char *arg);

/* Parse a --host-lookup value (dns, native, dns,native) to ST_HOST_LOOKUP_* bits, or report a
 * usage error and exit. */
int st_parse_host_lookup(const struct argp_state *state, const char *arg);

/* Check a --resolve value (HOST:PORT:ADDR[,ADDR...]) and keep it in list[*n] (at most max),
 * or report a usage error and exit. arg is borrowed (argv). */
void st_parse_resolve(const struct argp_state *state, const char *arg, const char **list,
                      size_t *n, size_t max);

/* Commands. */
extern const struct argp cmd_probe_argp;
extern const struct st_optvals cmd_probe_values[];
int cmd_probe(int argc, char **argv, struct st_global *g);
extern const struct argp cmd_policy_argp;
extern const struct st_optvals cmd_policy_values[];
int cmd_policy(int argc, char **argv, struct st_global *g);
extern const struct argp cmd_serve_argp;
extern const struct st_optvals cmd_serve_values[];
int cmd_serve(int argc, char **argv, struct st_global *g);

extern const struct argp cmd_verify_argp;
extern const struct st_optvals cmd_verify_values[];
int cmd_verify(int argc, char **argv, struct st_global *g);

extern const struct argp cmd_fingerprint_argp;
extern const struct st_optvals cmd_fingerprint_values[];
int cmd_fingerprint(int argc, char **argv, struct st_global *g);

#endif
