/* main.c: global options, the command table, exit statuses */
#include "config.h"

#include <argp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "dns.h"
#include "output.h"
#include "x509.h"

static const char *const version = PACKAGE_NAME " " PACKAGE_VERSION;

enum { OPT_JSON = 0x100, OPT_COLOR, OPT_COMPLETE };

static const struct argp_option global_options[] = {
    {"json", OPT_JSON, NULL, 0, "Print JSON (one object per line) instead of text", 0},
    {"color", OPT_COLOR, "WHEN", 0,
     "Colour the text output: auto (default: on a terminal, unless NO_COLOR is set), "
     "always or never",
     0},
    {"colour", OPT_COLOR, "WHEN", OPTION_ALIAS | OPTION_HIDDEN, NULL, 0},
    {"verbose", 'v', NULL, 0, "Say more (repeat for more detail)", 0},
    {"quiet", 'q', NULL, 0, "Print only results and errors, no warnings or notes", 0},
    {"help", '?', NULL, 0, "Give this help list", -1},
    {"version", 'V', NULL, 0, "Print the program version", -1},
    {NULL, 0, NULL, 0, NULL, 0},
};

static ssize_t null_write(void *cookie, const char *buf, size_t size)
{
	return (ssize_t)size;
}

static FILE *null_stream(void)
{
	static FILE *f;
	cookie_io_functions_t io = {NULL, null_write, NULL, NULL};

	if (!f)
		f = fopencookie(NULL, "w", io);
	return f ? f : stderr;
}

void st_usage_error(const struct argp_state *state, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", state->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", state->name);
	exit(ST_EXIT_USAGE);
}

static const char *optional_long(const struct argp *argp, const char *word, size_t len)
{
	const struct argp_option *o;
	const struct argp_child *c;
	const char *found;

	for (o = argp->options; o && (o->name || o->key || o->doc); o++)
		if (o->name && o->arg && (o->flags & OPTION_ARG_OPTIONAL) &&
		    strncmp(o->name, word, len) == 0)
			return o->name;
	for (c = argp->children; c && c->argp; c++)
		if ((found = optional_long(c->argp, word, len)))
			return found;
	return NULL;
}

/* words that followed an optional-value option given without '=' (argv is permuted
 * by getopt, so they are found before parsing and recognised by address) */
static struct {
	const char *option, *word;
} stray[8];

static void find_strays(const struct argp *argp, int argc, char **argv)
{
	const char *name;
	size_t n = 0, len;
	int i;

	memset(stray, 0, sizeof(stray));
	for (i = 1; i + 1 < argc && n < sizeof(stray) / sizeof(stray[0]); i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		/* "--name" or getopt's unique abbreviation of it ("--self"), with no value */
		if (strncmp(argv[i], "--", 2) != 0 || strchr(argv[i], '=') ||
		    (len = strlen(argv[i] + 2)) < 2 || argv[i + 1][0] == '-')
			continue;
		if ((name = optional_long(argp, argv[i] + 2, len))) {
			stray[n].option = name;
			stray[n++].word = argv[i + 1];
		}
	}
}

const char *st_optional_value_before(const char *word)
{
	size_t i;

	for (i = 0; i < sizeof(stray) / sizeof(stray[0]) && stray[i].word; i++)
		if (stray[i].word == word)
			return stray[i].option;
	return NULL;
}

int st_parse_host_lookup(const struct argp_state *state, const char *arg)
{
	struct st_error e;
	int set = st_dns_host_lookup_parse(arg, &e);

	if (set < 0)
		st_usage_error(state, "--host-lookup: %s", e.msg);
	return set;
}

void st_parse_resolve(const struct argp_state *state, const char *arg, const char **list,
                      size_t *n, size_t max)
{
	struct st_error e;

	if (*n >= max)
		st_usage_error(state, "--resolve: at most %zu", max);
	if (st_dns_add_resolve(NULL, arg, &e))
		st_usage_error(state, "%s", e.msg);
	list[(*n)++] = arg;
}

enum st_digest st_parse_digest(const struct argp_state *state, const char *opt, const char *arg)
{
	int d = st_digest_from_name(arg);

	if (d < 0)
		st_usage_error(state,
		               "%s: unknown digest '%s' (md5, sha1, sha224, sha256, sha384 or sha512)",
		               opt, arg);
	return (enum st_digest)d;
}

int st_argp_parse(const struct argp *argp, int argc, char **argv, unsigned flags, void *input)
{
	error_t rc;

	find_strays(argp, argc, argv);
	rc = argp_parse(argp, argc, argv, flags | ARGP_NO_HELP | ARGP_NO_EXIT, NULL, input);

	if (rc) {
		/* getopt has said what was wrong */
		fprintf(stderr, "Try '%s --help' for more information.\n", argv[0]);
		exit(ST_EXIT_USAGE);
	}
	return 0;
}

static error_t global_parse(int key, char *arg, struct argp_state *state)
{
	struct st_global *g = state->input;

	switch (key) {
	case OPT_JSON:
		g->json = true;
		break;
	case OPT_COLOR:
		if (strcmp(arg, "auto") == 0)
			g->color_mode = ST_COLOR_AUTO;
		else if (strcmp(arg, "always") == 0)
			g->color_mode = ST_COLOR_ALWAYS;
		else if (strcmp(arg, "never") == 0)
			g->color_mode = ST_COLOR_NEVER;
		else
			st_usage_error(state, "--color: '%s' is not auto, always or never", arg);
		break;
	case 'v':
		g->verbose++;
		g->quiet = false;
		break;
	case 'q':
		g->quiet = true;
		g->verbose = 0;
		break;
	case '?':
		/* our own --help: argp's built-in one comes with a --usage that
		 * would take the name of fingerprint's TLSA --usage */
		argp_state_help(state, stdout, ARGP_HELP_STD_HELP);
		exit(st_out_finish());
	case 'V':
		printf("%s\n", version);
		exit(st_out_finish());
	case ARGP_KEY_INIT:
		/* argp's own "Try ... --usage" hint names an option we do not have;
		 * st_argp_parse prints ours */
		state->err_stream = null_stream();
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

const struct argp st_global_argp = {global_options, global_parse, NULL, NULL, NULL, NULL, NULL};

const struct argp_child st_global_children[] = {{&st_global_argp, 0, "Global options:", 10},
                                                {NULL, 0, NULL, 0}};

static const struct st_optvals global_values[] = {
    {"color", "auto always never"},
    {NULL, NULL},
};

static const struct st_command commands[] = {
    {"probe", "Probe a server's SMTP over TLS and judge it", &cmd_probe_argp, cmd_probe_values, "",
     cmd_probe},
    {"policy", "Lint, look up and test Postfix TLS policies", &cmd_policy_argp,
     cmd_policy_values, "", cmd_policy},
{"verify", "Verify certificate chains, CRL and OCSP", &cmd_verify_argp, cmd_verify_values,
     "@file", cmd_verify},
    {"fingerprint", "Fingerprints in Postfix formats, TLSA records", &cmd_fingerprint_argp,
     cmd_fingerprint_values, "@file", cmd_fingerprint},
    {"serve", "Run a TLS SMTP server for tests", &cmd_serve_argp, cmd_serve_values, "",
     cmd_serve},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

enum st_exit st_exit_for(enum st_err_class cls)
{
	switch (cls) {
	case ST_ERR_NONE:
		return ST_EXIT_OK;
	case ST_ERR_USAGE:
		return ST_EXIT_USAGE;
	case ST_ERR_INPUT:
		return ST_EXIT_INPUT;
	case ST_ERR_DNS:
		return ST_EXIT_DNS;
	case ST_ERR_CONNECT:
		return ST_EXIT_CONNECT;
	case ST_ERR_PROTOCOL:
		return ST_EXIT_PROTOCOL;
	case ST_ERR_TLS:
		return ST_EXIT_TLS;
	case ST_ERR_VERIFY:
	case ST_ERR_POLICY:
		return ST_EXIT_FAIL;
	case ST_ERR_REJECTED:
		return ST_EXIT_REJECTED;
	case ST_ERR_OUTPUT:
		return ST_EXIT_OUTPUT;
	case ST_ERR_INTERNAL:
		break;
	}
	return ST_EXIT_INTERNAL;
}

/* The rank of an exit status: a warning is better than a failed check, which is better than
 * not being able to check at all. */
static int exit_rank(enum st_exit e)
{
	static const int rank[] = {
	    [ST_EXIT_OK] = 0,      [ST_EXIT_WARN] = 1,     [ST_EXIT_FAIL] = 2,
	    [ST_EXIT_INPUT] = 3,   [ST_EXIT_DNS] = 4,      [ST_EXIT_CONNECT] = 5,
	    [ST_EXIT_PROTOCOL] = 6, [ST_EXIT_TLS] = 7,     [ST_EXIT_REJECTED] = 8,
	    [ST_EXIT_USAGE] = 9,   [ST_EXIT_OUTPUT] = 10, [ST_EXIT_INTERNAL] = 11,
	};

	return (unsigned)e < sizeof(rank) / sizeof(rank[0]) ? rank[e] : 11;
}

enum st_exit st_exit_worse(enum st_exit a, enum st_exit b)
{
	return exit_rank(a) >= exit_rank(b) ? a : b;
}

void st_cmd_parse(const struct argp *argp, int argc, char **argv, void *input, struct st_global *g)
{
	const char *nc = getenv("NO_COLOR");
	const char *term = getenv("TERM");

	st_argp_parse(argp, argc, argv, 0, input);
	switch (g->color_mode) {
	case ST_COLOR_ALWAYS:
		g->color = true;
		break;
	case ST_COLOR_NEVER:
		g->color = false;
		break;
	case ST_COLOR_AUTO:
		g->color =
		    isatty(STDOUT_FILENO) && !(nc && *nc) && !(term && strcmp(term, "dumb") == 0);
		break;
	}
	st_out_setup(g);
}

static error_t unbuilt_parse(int key, char *arg, struct argp_state *state)
{
	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = state->input;
		break;
	case ARGP_KEY_ARG:
		break; /* operands are accepted and ignored */
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/* A command that is not built yet: --help works, anything else says so. */
static int run_unbuilt(const struct st_command *c, int argc, char **argv, struct st_global *g)
{
	static const struct argp_child children[] = {{&st_global_argp, 0, "Global options:", 1},
	                                             {NULL, 0, NULL, 0}};
	char doc[512];
	struct argp argp = {NULL, unbuilt_parse, "[ARG...]", doc, children, NULL, NULL};

	snprintf(doc, sizeof(doc), "%s.\vThis command is not built yet in smtptls %s.", c->summary,
	         PACKAGE_VERSION);
	st_argp_parse(&argp, argc, argv, 0, g);
	st_out_setup(g);
	st_out_error("'%s' is not built yet in smtptls %s", c->name, PACKAGE_VERSION);
	return ST_EXIT_USAGE;
}

/* --complete output: what the completion scripts read (see completions/). */
static void complete_options(const struct argp *argp, const struct st_optvals *vals)
{
	const struct argp_option *o;
	const struct argp_child *child;
	const char *values;
	size_t i;

	for (o = argp->options; o && (o->name || o->key || o->doc); o++) {
		if (!o->name || (o->flags & OPTION_HIDDEN) || (o->flags & OPTION_DOC))
			continue;
		values = "";
		for (i = 0; vals && vals[i].option; i++)
			if (strcmp(vals[i].option, o->name) == 0)
				values = vals[i].values;
		printf("option\t--%s\t%s\t%s\t%s\t%s\n", o->name,
		       (o->key > 0 && o->key < 0x100 && o->key != '?')
		           ? (char[]){'-', (char)o->key, 0}
		           : "",
		       o->arg ? ((o->flags & OPTION_ARG_OPTIONAL) ? "optional" : "required") : "",
		       values, o->doc ? o->doc : "");
	}
	for (child = argp->children; child && child->argp; child++)
		complete_options(child->argp,
		                 child->argp == &st_global_argp ? global_values : vals);
}

static int complete(const char *what)
{
	size_t i;

	if (!what || !*what) {
		for (i = 0; i < N_COMMANDS; i++)
			printf("command\t%s\t%s\n", commands[i].name, commands[i].summary);
		complete_options(&st_global_argp, global_values);
		return st_out_finish();
	}
	for (i = 0; i < N_COMMANDS; i++) {
		if (strcmp(what, commands[i].name) != 0)
			continue;
		if (commands[i].argp)
			complete_options(commands[i].argp, commands[i].values);
		else
			complete_options(&st_global_argp, global_values);
		printf("args\t%s\n", commands[i].args);
		return st_out_finish();
	}
	st_out_error("--complete: unknown command '%s'", what);
	return ST_EXIT_USAGE;
}

struct main_state {
	struct st_global *g;
	int cmd_index;
	const char *complete;
	bool complete_set;
};

static const struct argp_option main_options[] = {
    {"complete", OPT_COMPLETE, "COMMAND", OPTION_HIDDEN | OPTION_ARG_OPTIONAL,
     "Print what shell completion needs", 0},
    {NULL, 0, NULL, 0, NULL, 0},
};

static error_t main_parse(int key, char *arg, struct argp_state *state)
{
	struct main_state *s = state->input;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = s->g;
		break;
	case OPT_COMPLETE:
		s->complete_set = true;
		s->complete = arg;
		break;
	case ARGP_KEY_ARG:
		/* the command name: the rest of argv belongs to the command */
		s->cmd_index = state->next - 1;
		state->next = state->argc;
		break;
	case ARGP_KEY_END:
		if (s->cmd_index < 0 && !s->complete_set)
			st_usage_error(state, "no command given");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static char *main_help(int key, const char *text, void *input)
{
	struct st_buf b;
	size_t i;

	if (key != ARGP_KEY_HELP_POST_DOC)
		return (char *)text;
	st_buf_init(&b, 8192);
	st_buf_addf(&b, "Commands:\n");
	for (i = 0; i < N_COMMANDS; i++)
		st_buf_addf(&b, "  %-13s %s%s\n", commands[i].name, commands[i].summary,
		            commands[i].run ? "" : " (not built yet)");
	st_buf_addf(&b, "\nRun 'smtptls COMMAND --help' for a command's options. Global options "
	                "may be given before or after the command name. Exit statuses are listed "
	                "in smtptls(1).");
	return (char *)b.data; /* argp frees it */
}

static const struct argp_child main_children[] = {{&st_global_argp, 0, "Global options:", 1},
                                                  {NULL, 0, NULL, 0}};

static const struct argp main_argp = {main_options,
                                      main_parse,
                                      "COMMAND [OPTION...] [ARG...]",
                                      "smtptls -- diagnose and test SMTP over TLS.\v",
                                      main_children,
                                      main_help,
                                      NULL};

static const struct st_command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void suggest(const char *name)
{
	const char *best = NULL;
	unsigned d, best_d = 3;
	size_t i;

	for (i = 0; i < N_COMMANDS; i++) {
		d = st_edit_distance(name, commands[i].name);
		if (strncmp(name, commands[i].name, strlen(name)) == 0 && strlen(name) >= 2)
			d = 1;
		if (d < best_d) {
			best_d = d;
			best = commands[i].name;
		}
	}
	if (best)
		st_out_error("unknown command '%s'; did you mean '%s'?", name, best);
	else
		st_out_error("unknown command '%s'; run 'smtptls --help' for the list", name);
}

int main(int argc, char **argv)
{
	struct st_global g = {false, ST_COLOR_AUTO, false, 0, false};
	struct main_state s = {&g, -1, NULL, false};
	const struct st_command *c;
	char name[64], **sub;
	int rc, i, n;

	/* a closed pipe becomes EPIPE on write, which st_out_finish reports */
	signal(SIGPIPE, SIG_IGN);
	/* started with stdin, stdout or stderr closed: /dev/null there, so that no file or
	 * socket we open later takes their number (libuv refuses a loop on fd 0-2) */
	for (i = 0; i < 3; i++) {
		if (fcntl(i, F_GETFD) >= 0)
			continue;
		if (open("/dev/null", i ? O_WRONLY : O_RDONLY) != i)
			return ST_EXIT_INTERNAL;
		if (i == 1)
			st_out_stdout_closed(); /* what we write is lost: exit 9 */
	}
	argv[0] = (char *)"smtptls"; /* messages name the program, not its path */
	argp_err_exit_status = ST_EXIT_USAGE;

	st_argp_parse(&main_argp, argc, argv, ARGP_IN_ORDER, &s);
	if (s.complete_set)
		return complete(s.complete);

	c = find_command(argv[s.cmd_index]);
	if (!c) {
		char shown[64];
		snprintf(shown, sizeof(shown), "%s", argv[s.cmd_index]);
		st_sanitize(shown);
		st_out_setup(&g);
		suggest(shown);
		return ST_EXIT_USAGE;
	}

	/* the command sees argv[0] = "smtptls COMMAND" so argp's messages name it */
	n = argc - s.cmd_index;
	sub = calloc((size_t)n + 1, sizeof(*sub));
	if (!sub) {
		st_out_error("out of memory");
		return ST_EXIT_INTERNAL;
	}
	snprintf(name, sizeof(name), "smtptls %s", c->name);
	sub[0] = name;
	for (i = 1; i < n; i++)
		sub[i] = argv[s.cmd_index + i];
	rc = c->run ? c->run(n, sub, &g) : run_unbuilt(c, n, sub, &g);
	free(sub);
	return st_exit_worse(rc, st_out_finish());
}
