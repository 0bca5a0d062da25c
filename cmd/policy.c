/* policy.c: the policy command: Postfix TLS policy tables linted, looked up as Postfix does, tested live */
#include "config.h"

#include <argp.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "cmd.h"
#include "dns.h"
#include "output.h"
#include "policy.h"
#include "policy_lint.h"
#include "relay.h"
#include "route.h"
#include "verify.h"

#define TABLES_MAX    ST_POLICY_TABLES_MAX
#define OVERRIDES_MAX 32
#define DEST_MAX      100000

enum action { A_NONE, A_CHECK, A_LOOKUP, A_TEST };

struct po_params {
	struct st_global *g;
	enum action action;
	const char *config_dir; /* --postfix-config */
	bool no_config;
	const char *overrides[OVERRIDES_MAX]; /* -o name=value */
	size_t n_overrides;
	const char *tables[TABLES_MAX]; /* --table, or check's operands */
	size_t n_tables;
	char **args; /* next hops (lookup, test) or tables (check) */
	size_t n_args;
	bool batch;
	bool all;
	const char *dns_server;
	int host_lookup; /* --host-lookup, else smtp_host_lookup (0: not given) */
	const char *resolve[64]; /* --resolve */
	size_t n_resolve;
	const char *ca_file;
	const char *ehlo;
	long timeout_ms;
	long concurrency;
	const char *mail_from; /* --mail-from ("": the null sender) */
	const char *rcpt_to;   /* --rcpt-to, or NULL: no RCPT */
};

enum {
	OPT_CONFIG = 0x700,
	OPT_NO_CONFIG,
	OPT_TABLE,
	OPT_BATCH,
	OPT_ALL,
	OPT_DNS_SERVER,
	OPT_HOST_LOOKUP,
	OPT_RESOLVE,
	OPT_CA_FILE,
	OPT_EHLO,
	OPT_TIMEOUT,
	OPT_CONCURRENCY,
	OPT_MAIL_FROM,
	OPT_RCPT_TO,
};

static const struct argp_option po_options[] = {
    {NULL, 0, NULL, 0, "Where the policy comes from:", 1},
    {"postfix-config", OPT_CONFIG, "DIR", 0,
     "Read main.cf there (smtp_tls_policy_maps, smtp_tls_security_level, smtp_tls_CAfile, "
     "smtp_tls_CApath, smtp_tls_fingerprint_digest, compatibility_level; through postconf "
     "when installed). Default /etc/postfix when it has a main.cf",
     1},
    {"no-postfix-config", OPT_NO_CONFIG, NULL, 0, "Read no main.cf: Postfix's defaults", 1},
    {NULL, 'o', "NAME=VALUE", 0, "Override a main.cf parameter, as Postfix tools do (repeatable)",
     1},
    {"table", OPT_TABLE, "TABLE", 0,
     "A policy table (hash:FILE, texthash:FILE, inline:{...}...) instead of "
     "smtp_tls_policy_maps; repeatable, searched in order",
     1},
    {NULL, 0, NULL, 0, "lookup:", 2},
    {"batch", OPT_BATCH, NULL, 0,
     "Read next hops from standard input, one a line; one result line each", 2},
    {NULL, 0, NULL, 0, "test:", 3},
    {"all", OPT_ALL, NULL, 0, "Test every next hop the tables name", 3},
    {"dns-server", OPT_DNS_SERVER, "ADDR[:PORT]", 0,
     "Ask this DNS server, not the one of resolv.conf", 3},
    {"host-lookup", OPT_HOST_LOOKUP, "METHODS", 0,
     "Where host addresses come from: dns, native or dns,native (default: smtp_host_lookup "
     "of main.cf, Postfix's dns); MX records always come from DNS",
     3},
    {"resolve", OPT_RESOLVE, "HOST:PORT:ADDR[,ADDR...]", 0,
     "Connect to ADDR for HOST and PORT, without asking DNS, MX hosts included (repeatable, as "
     "curl has it)",
     3},
    {"ca-file", OPT_CA_FILE, "FILE", 0, "CAs for verify and secure, instead of smtp_tls_CAfile", 3},
    {"ehlo", OPT_EHLO, "NAME", 0, "The EHLO name (default: myhostname, else localhost)", 3},
    {"timeout", OPT_TIMEOUT, "SECONDS", 0,
     "Each step: connect, every reply, the handshake (default 30)", 3},
    {"concurrency", OPT_CONCURRENCY, "N", 0, "Next hops tested at once (default 16)", 3},
    {"mail-from", OPT_MAIL_FROM, "ADDR", 0,
     "MAIL FROM:<ADDR> after EHLO (and TLS); default the null sender, as a bounce", 3},
    {"rcpt-to", OPT_RCPT_TO, "ADDR", 0,
     "RCPT TO:<ADDR> after MAIL (default: none); then RSET and QUIT, no message is sent", 3},
    {NULL, 0, NULL, 0, NULL, 0},
};

const struct st_optvals cmd_policy_values[] = {
    {"postfix-config", "@dir"},
    {"table", "@file"},
    {"ca-file", "@file"},
    {"host-lookup", "dns native dns,native"},
    {NULL, NULL},
};

static error_t po_parse(int key, char *arg, struct argp_state *state)
{
	struct po_params *p = state->input;
	char *end;
	long v;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = p->g;
		break;
	case OPT_CONFIG:
		p->config_dir = arg;
		break;
	case OPT_NO_CONFIG:
		p->no_config = true;
		break;
	case 'o':
		if (!strchr(arg, '=') || arg[0] == '=' || p->n_overrides >= OVERRIDES_MAX)
			st_usage_error(state, "-o: '%s' is not NAME=VALUE (at most %d)", arg,
			               OVERRIDES_MAX);
		p->overrides[p->n_overrides++] = arg;
		break;
	case OPT_TABLE:
		if (p->n_tables >= TABLES_MAX)
			st_usage_error(state, "--table: at most %d tables", TABLES_MAX);
		p->tables[p->n_tables++] = arg;
		break;
	case OPT_BATCH:
		p->batch = true;
		break;
	case OPT_ALL:
		p->all = true;
		break;
	case OPT_DNS_SERVER:
		p->dns_server = arg;
		break;
	case OPT_HOST_LOOKUP:
		p->host_lookup = st_parse_host_lookup(state, arg);
		break;
	case OPT_RESOLVE:
		st_parse_resolve(state, arg, p->resolve, &p->n_resolve,
		                 sizeof(p->resolve) / sizeof(p->resolve[0]));
		break;
	case OPT_CA_FILE:
		p->ca_file = arg;
		break;
	case OPT_EHLO:
		if (!*arg || strlen(arg) > 255 || strpbrk(arg, " \t\r\n"))
			st_usage_error(state, "--ehlo: '%s' is not a host name", arg);
		p->ehlo = arg;
		break;
	case OPT_MAIL_FROM:
	case OPT_RCPT_TO:
		if (strlen(arg) > 254 || strpbrk(arg, " \t\r\n<>") || (key == OPT_RCPT_TO && !*arg))
			st_usage_error(state, "--%s: '%s' is not a mail address",
			               key == OPT_MAIL_FROM ? "mail-from" : "rcpt-to", arg);
		*(key == OPT_MAIL_FROM ? &p->mail_from : &p->rcpt_to) = arg;
		break;
	case OPT_TIMEOUT:
	case OPT_CONCURRENCY:
		v = strtol(arg, &end, 10);
		if (end == arg || *end || v < 1 || v > (key == OPT_TIMEOUT ? 3600 : 1024))
			st_usage_error(state, "--%s: '%s' is not a number from 1 to %d",
			               key == OPT_TIMEOUT ? "timeout" : "concurrency", arg,
			               key == OPT_TIMEOUT ? 3600 : 1024);
		if (key == OPT_TIMEOUT)
			p->timeout_ms = v * 1000;
		else
			p->concurrency = v;
		break;
	case ARGP_KEY_ARG:
		if (p->action == A_NONE) {
			if (!strcmp(arg, "check"))
				p->action = A_CHECK;
			else if (!strcmp(arg, "lookup"))
				p->action = A_LOOKUP;
			else if (!strcmp(arg, "test"))
				p->action = A_TEST;
			else
				st_usage_error(state, "'%s' is not check, lookup or test", arg);
			break;
		}
		if (p->n_args >= DEST_MAX)
			st_usage_error(state, "at most %d operands", DEST_MAX);
		p->args[p->n_args++] = arg;
		break;
	case ARGP_KEY_END:
		if (p->action == A_NONE)
			st_usage_error(state, "which: check, lookup or test?");
		if (p->config_dir && p->no_config)
			st_usage_error(state, "--postfix-config or --no-postfix-config, not both");
		if (p->batch && p->action != A_LOOKUP)
			st_usage_error(state, "--batch goes with lookup");
		if (p->batch && p->n_args)
			st_usage_error(state,
			               "--batch reads the next hops from standard input, not "
			               "the command line");
		if (p->action == A_LOOKUP && !p->batch && !p->n_args)
			st_usage_error(state, "lookup: which next hop? (or --batch)");
		if (p->all && p->action != A_TEST)
			st_usage_error(state, "--all goes with test");
		if ((p->mail_from || p->rcpt_to) && p->action != A_TEST)
			st_usage_error(state, "--mail-from and --rcpt-to go with test");
		if (p->action == A_TEST && !p->all && !p->n_args)
			st_usage_error(state, "test: which next hop? (or --all)");
		if (p->action == A_TEST && p->all && p->n_args)
			st_usage_error(state, "test: next hops or --all, not both");
		if (p->action == A_CHECK && p->n_tables)
			st_usage_error(state, "check takes its tables as operands, not --table");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

const struct argp cmd_policy_argp = {
    po_options,
    po_parse,
    "check [TABLE...]\nlookup NEXTHOP...\nlookup --batch\ntest NEXTHOP|RECIPIENT...\ntest --all",
    "Postfix TLS policy tables (smtp_tls_policy_maps): check lints them, lookup says which "
    "entry applies to a next hop exactly as Postfix's smtp client looks it up, test probes "
    "the next hop's servers under that policy and says whether Postfix would deliver, "
    "defer or bounce, and why. A RECIPIENT (user@domain, or @domain) is first routed as "
    "Postfix routes it: address class, transport_maps, relayhost, the transport's master.cf "
    "-o overrides.\v"
    "Without tables, those of smtp_tls_policy_maps in main.cf. Exit status: 0 fine, 1 "
    "errors found (check) or mail would not be delivered (test), 11 warnings only (check), "
    "2 usage, 3 a table cannot be read, 10 internal. See smtptls-policy(1).",
    st_global_children,
    NULL,
    NULL};

/* ---- main.cf ---- */

/* What is read of Postfix's configuration. Strings owned; "" when not set. */
struct pconf {
	char *maps;
	char *level;
	char *cafile, *capath;
	char *digest;
	char *compat;
	char *version;
	char *myhostname;
	char *wrappermode;
	char *host_lookup;
	/* routing a recipient (trivial-rewrite's parameters) */
	char *mydestination, *virtual_alias_domains, *virtual_mailbox_domains, *relay_domains;
	char *local_transport, *virtual_transport, *relay_transport, *default_transport;
	char *relayhost, *parent_domain_matches_subdomains, *recipient_delimiter, *transport_maps;
	char *from;      /* "postconf -c DIR", "DIR/main.cf", "defaults" */
	const char *dir; /* the configuration directory read, or NULL */
};

static const char *const conf_names[] = {
    "smtp_tls_policy_maps",
    "smtp_tls_security_level",
    "smtp_tls_CAfile",
    "smtp_tls_CApath",
    "smtp_tls_fingerprint_digest",
    "compatibility_level",
    "mail_version",
    "myhostname",
    "smtp_tls_wrappermode",
    "mydestination",
    "virtual_alias_domains",
    "virtual_mailbox_domains",
    "relay_domains",
    "local_transport",
    "virtual_transport",
    "relay_transport",
    "default_transport",
    "relayhost",
    "parent_domain_matches_subdomains",
    "recipient_delimiter",
    "transport_maps",
    "smtp_host_lookup",
};

static char **conf_slot(struct pconf *c, size_t i)
{
	char **slots[] = {&c->maps,
	                  &c->level,
	                  &c->cafile,
	                  &c->capath,
	                  &c->digest,
	                  &c->compat,
	                  &c->version,
	                  &c->myhostname,
	                  &c->wrappermode,
	                  &c->mydestination,
	                  &c->virtual_alias_domains,
	                  &c->virtual_mailbox_domains,
	                  &c->relay_domains,
	                  &c->local_transport,
	                  &c->virtual_transport,
	                  &c->relay_transport,
	                  &c->default_transport,
	                  &c->relayhost,
	                  &c->parent_domain_matches_subdomains,
	                  &c->recipient_delimiter,
	                  &c->transport_maps,
	                  &c->host_lookup};
	return slots[i];
}

static void conf_release(struct pconf *c)
{
	size_t i;

	for (i = 0; i < sizeof(conf_names) / sizeof(conf_names[0]); i++)
		free(*conf_slot(c, i));
	free(c->from);
	memset(c, 0, sizeof(*c));
}

static int conf_set(struct pconf *c, const char *name, const char *value)
{
	size_t i;

	for (i = 0; i < sizeof(conf_names) / sizeof(conf_names[0]); i++)
		if (!strcmp(name, conf_names[i])) {
			char *v = strdup(value);
			if (!v)
				return -1;
			free(*conf_slot(c, i));
			*conf_slot(c, i) = v;
		}
	return 0;
}

/* "name = value" lines, as postconf prints them. */
static int conf_lines(struct pconf *c, char *text)
{
	char *line, *save = NULL;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strstr(line, " = ");
		if (eq) {
			*eq = '\0';
			if (conf_set(c, line, eq + 3))
				return -1;
		} else if (strlen(line) >= 2 && line[strlen(line) - 1] == '=' &&
		           line[strlen(line) - 2] == ' ') {
			line[strlen(line) - 2] = '\0';
			if (conf_set(c, line, ""))
				return -1;
		}
	}
	return 0;
}

/* postconf on PATH or in /usr/sbin, else NULL. */
static const char *find_postconf(char *buf, size_t size)
{
	const char *path = getenv("PATH"), *p;
	char dirs[4096];

	snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/sbin", path ? path : "/usr/bin:/bin");
	for (p = dirs; *p;) {
		size_t len = strcspn(p, ":");
		snprintf(buf, size, "%.*s/postconf", (int)len, p);
		if (len && access(buf, X_OK) == 0)
			return buf;
		p += len + (p[len] == ':');
	}
	return NULL;
}

/* Run postconf with argv (argv[0] its path, NULL-terminated): its standard output in *out
 * (released by the caller), its stderr kept apart and quoted when it fails. */
static int run_postconf(const char *const *argv, const char *dir, struct st_buf *out,
                        struct st_error *err)
{
	int pipefd[2], status = -1, errfd = -1;
	pid_t pid;
	char buf[4096];
	ssize_t got;

	{
		char tmpl[] = "/tmp/smtptls-postconf.XXXXXX";
		errfd = mkstemp(tmpl);
		if (errfd >= 0)
			unlink(tmpl);
	}
	if (pipe(pipefd)) {
		if (errfd >= 0)
			close(errfd);
		st_error_set(err, ST_ERR_INTERNAL, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		if (errfd >= 0)
			close(errfd);
		st_error_set(err, ST_ERR_INTERNAL, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* its warnings (a master.cf missing beside main.cf...) are not ours: stderr goes
		 * to a file shown when it fails */
		if (errfd >= 0)
			dup2(errfd, 2);
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	st_buf_init(out, 1 << 20);
	while ((got = read(pipefd[0], buf, sizeof(buf))) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 || st_buf_add(out, buf, (size_t)got) < 0)
			break;
	}
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			status = -1;
			break;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char all[4096] = "", said[512] = "";
		if (errfd >= 0) {
			/* what it said: its fatal line, else its last */
			ssize_t k = pread(errfd, all, sizeof(all) - 1, 0);
			char *f, *line, *save = NULL;
			all[k > 0 ? k : 0] = '\0';
			f = strstr(all, "fatal: ");
			for (line = strtok_r(f ? f : all, "\n", &save); line && !f;
			     line = strtok_r(NULL, "\n", &save))
				snprintf(said, sizeof(said), "%s", line);
			if (f) {
				f[strcspn(f, "\n")] = '\0';
				snprintf(said, sizeof(said), "%s", f);
			}
			st_sanitize(said);
			close(errfd);
		}
		st_error_set(err, ST_ERR_INPUT, "'%s -c %s' failed (exit %d)%s%s", argv[0], dir,
		             WIFEXITED(status) ? WEXITSTATUS(status) : -1, said[0] ? ": " : "",
		             said);
		st_buf_release(out);
		return -1;
	}
	if (errfd >= 0)
		close(errfd);
	if (st_buf_add(out, "", 1) < 0) {
		st_buf_release(out);
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return -1;
	}
	return 0;
}

/* Run postconf -c DIR -x [-o ...] NAMES: Postfix's own reading, expansion and defaults. */
static int conf_postconf(const struct po_params *p, const char *postconf, const char *dir,
                         struct pconf *c, struct st_error *err)
{
	const char *argv[8 + 2 * OVERRIDES_MAX + 32];
	size_t n = 0, i;
	struct st_buf out;

	argv[n++] = postconf;
	argv[n++] = "-c";
	argv[n++] = dir;
	argv[n++] = "-x";
	for (i = 0; i < p->n_overrides; i++) {
		argv[n++] = "-o";
		argv[n++] = p->overrides[i];
	}
	for (i = 0; i < sizeof(conf_names) / sizeof(conf_names[0]); i++)
		argv[n++] = conf_names[i];
	argv[n] = NULL;
	if (run_postconf(argv, dir, &out, err) < 0)
		return -1;
	if (out.len <= 1) {
		st_buf_release(&out);
		st_error_set(err, ST_ERR_INPUT, "'%s -c %s' printed nothing", postconf, dir);
		return -1;
	}
	if (conf_lines(c, (char *)out.data)) {
		st_buf_release(&out);
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return -1;
	}
	st_buf_release(&out);
	return 0;
}

/* Without postconf: main.cf read here ("name = value", continuation lines, # comments),
 * $name and ${name} expanded from its own settings and config_directory. */
static int conf_file(const struct po_params *p, const char *dir, struct pconf *c,
                     struct st_error *err)
{
	char path[4200];
	struct st_buf b;
	char *line, *save = NULL, *text;
	json_t *vals = json_object();
	size_t i;

	snprintf(path, sizeof(path), "%s/main.cf", dir);
	st_buf_init(&b, ST_INPUT_MAX);
	if (st_read_file(path, &b, err) < 0) {
		st_buf_release(&b);
		json_decref(vals);
		return -1;
	}
	json_object_set_new(vals, "config_directory", json_string(dir));
	text = b.len ? (char *)b.data : (char *)"";
	/* join continuation lines first */
	for (i = 0; text[i]; i++)
		if (text[i] == '\n' && (text[i + 1] == ' ' || text[i + 1] == '\t'))
			text[i] = ' ';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq, *name = line, *v, *e;
		while (isspace((unsigned char)*name))
			name++;
		if (!*name || *name == '#')
			continue;
		eq = strchr(name, '=');
		if (!eq)
			continue;
		for (e = eq; e > name && isspace((unsigned char)e[-1]);)
			*--e = '\0';
		*eq = '\0';
		v = eq + 1;
		while (isspace((unsigned char)*v))
			v++;
		for (e = v + strlen(v); e > v && isspace((unsigned char)e[-1]);)
			*--e = '\0';
		json_object_set_new(vals, name, json_string(v));
	}
	for (i = 0; i < p->n_overrides; i++) {
		char nm[256];
		const char *eq = strchr(p->overrides[i], '=');
		snprintf(nm, sizeof(nm), "%.*s", (int)(eq - p->overrides[i]), p->overrides[i]);
		json_object_set_new(vals, nm, json_string(eq + 1));
	}
	for (i = 0; i < sizeof(conf_names) / sizeof(conf_names[0]); i++) {
		const char *raw = json_string_value(json_object_get(vals, conf_names[i]));
		char out[4096];
		size_t o = 0, depth;
		const char *q;
		if (!raw)
			continue;
		/* expansion, a few levels deep (Postfix recurses; loops are a config error) */
		snprintf(out, sizeof(out), "%s", raw);
		for (depth = 0; depth < 8 && strchr(out, '$'); depth++) {
			char next[4096];
			o = 0;
			for (q = out; *q && o + 1 < sizeof(next);) {
				if (*q == '$' &&
				    (q[1] == '{' || isalpha((unsigned char)q[1]) || q[1] == '_')) {
					char ref[256];
					size_t len;
					const char *val;
					bool brace = q[1] == '{';
					q += brace ? 2 : 1;
					len = brace ? strcspn(q, "}")
					            : strspn(q, "abcdefghijklmnopqrstuvwxyz"
					                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					                        "0123456789_");
					snprintf(ref, sizeof(ref), "%.*s",
					         (int)(len < 255 ? len : 255), q);
					q += len + (brace && q[len] == '}');
					val = json_string_value(json_object_get(vals, ref));
					o += (size_t)snprintf(next + o, sizeof(next) - o, "%s",
					                      val ? val : "");
					if (o >= sizeof(next))
						o = sizeof(next) - 1;
				} else
					next[o++] = *q++;
			}
			next[o] = '\0';
			memcpy(out, next, o + 1);
		}
		if (conf_set(c, conf_names[i], out)) {
			json_decref(vals);
			st_buf_release(&b);
			st_error_set(err, ST_ERR_INTERNAL, "out of memory");
			return -1;
		}
	}
	json_decref(vals);
	st_buf_release(&b);
	return 0;
}

static int conf_load(const struct po_params *p, struct pconf *c, struct st_error *err)
{
	const char *dir = p->config_dir;
	char pc[4200], mc[4200];
	const char *postconf;
	size_t i;

	memset(c, 0, sizeof(*c));
	if (!dir && !p->no_config && access("/etc/postfix/main.cf", R_OK) == 0)
		dir = "/etc/postfix";
	/* routing's defaults, where main.cf is read without postconf or not at all */
	conf_set(c, "mydestination", "localhost");
	conf_set(c, "local_transport", "local");
	conf_set(c, "virtual_transport", "virtual");
	conf_set(c, "relay_transport", "relay");
	conf_set(c, "default_transport", "smtp");
	if (p->no_config || !dir) {
		/* Postfix's defaults (3.6 and later at compatibility level 3.6) and -o */
		c->from = strdup("Postfix's defaults");
		conf_set(c, "smtp_tls_fingerprint_digest", "sha256");
		for (i = 0; i < p->n_overrides; i++) {
			char nm[256];
			const char *eq = strchr(p->overrides[i], '=');
			snprintf(nm, sizeof(nm), "%.*s", (int)(eq - p->overrides[i]),
			         p->overrides[i]);
			if (conf_set(c, nm, eq + 1))
				return -1;
		}
		return 0;
	}
	snprintf(mc, sizeof(mc), "%s/main.cf", dir);
	if (access(mc, R_OK)) {
		st_error_set(err, ST_ERR_INPUT, "--postfix-config: cannot read '%s': %s", mc,
		             strerror(errno));
		return -1;
	}
	c->dir = dir;
	postconf = find_postconf(pc, sizeof(pc));
	if (postconf) {
		char from[4400], master[4200];
		struct st_error e;
		/* postconf reads main.cf and master.cf to their end: not an endless one */
		snprintf(master, sizeof(master), "%s/master.cf", dir);
		if (st_file_check(mc, &e) ||
		    (access(master, F_OK) == 0 && st_file_check(master, &e))) {
			st_error_set(err, e.cls, "--postfix-config: %s", e.msg);
			return -1;
		}
		snprintf(from, sizeof(from), "postconf -c %s", dir);
		c->from = strdup(from);
		return conf_postconf(p, postconf, dir, c, err);
	}
	c->from = strdup(mc);
	return conf_file(p, dir, c, err);
}

/* ---- tables ---- */

/* The tables: given, else smtp_tls_policy_maps; read by the loader serve uses too. */
static int tables_load(const struct po_params *p, const struct pconf *c, char **given,
                       size_t n_given, struct st_policy_tables *ts, struct st_error *err)
{
	size_t i;

	st_policy_tables_init(ts);
	for (i = 0; i < n_given; i++)
		if (st_policy_tables_add(ts, given[i], err))
			return -1;
	if (!n_given && c->maps &&
	    st_policy_tables_add_list(ts, c->maps, "smtp_tls_policy_maps", err))
		return -1;
	for (i = 0; i < ts->n && p->action != A_CHECK; i++)
		if (ts->stale[i])
			st_out_warn(
			    "'%s' is older than its source: Postfix answers from the old "
			    "entries until postmap is run; these answers are from the source",
			    st_policy_table_db(ts->t[i], NULL, NULL));
	return 0;
}

/* ---- lookup ---- */

struct verdict {
	const struct st_policy_entry *e;
	size_t table;
	char key[320];
	struct st_policy pol;
	bool invalid;
	char error[ST_ERROR_MAX];
};

static void decide(const struct st_policy_tables *ts, const struct pconf *c, const char *nexthop,
                   struct verdict *v)
{
	struct st_error err;

	memset(v, 0, sizeof(*v));
	v->e = ts->n ? st_policy_lookup(ts->t, ts->n, nexthop, &v->table, v->key, sizeof(v->key))
	             : NULL;
	if (ts->broken[0]) {
		v->invalid = true;
		snprintf(v->error, sizeof(v->error), "%s", ts->broken);
		return;
	}
	if (!v->e) {
		enum st_level l = ST_LEVEL_NONE;
		v->pol.connection_reuse = -1;
		if (c->level && *c->level && st_level_parse(c->level, &l) < 0) {
			v->invalid = true;
			snprintf(v->error, sizeof(v->error),
			         "smtp_tls_security_level = %s is no TLS security level", c->level);
		}
		v->pol.level = l;
		return;
	}
	if (st_policy_parse(v->e->value, &v->pol, &err) < 0) {
		v->invalid = true;
		snprintf(v->error, sizeof(v->error), "%s", err.msg);
	}
}

/* decide() for --batch's text: the level only, each entry's value parsed once (cache[t][i]:
 * -1 not yet, -2 invalid, else the level). */
static void decide_level(const struct st_policy_tables *ts, const struct pconf *c,
                         const char *nexthop, struct verdict *v, signed char **cache)
{
	struct st_error err;
	signed char *slot;

	v->invalid = false;
	v->e = ts->n ? st_policy_lookup(ts->t, ts->n, nexthop, &v->table, NULL, 0) : NULL;
	if (!v->e || ts->broken[0]) {
		decide(ts, c, nexthop, v);
		return;
	}
	slot = &cache[v->table][v->e - st_policy_table_at(ts->t[v->table], 0)];
	if (*slot == -1) {
		struct st_policy pol;
		*slot = st_policy_parse(v->e->value, &pol, &err) < 0 ? -2 : (signed char)pol.level;
	}
	v->invalid = *slot == -2;
	v->pol.level = v->invalid ? ST_LEVEL_NONE : (enum st_level) * slot;
}

/* The domain a next hop names: "[host]:port" gives host, "domain:port" domain. */
static void nexthop_domain(const char *nh, char *out, size_t size)
{
	const char *s = nh[0] == '[' ? nh + 1 : nh;
	size_t len = nh[0] == '[' ? strcspn(s, "]") : strcspn(s, ":");

	snprintf(out, size, "%.*s", (int)len, s);
}

/* The match names: strategies expanded; "hostname" is each MX host's own name. */
static json_t *match_names(const struct verdict *v, const char *nexthop, char *text, size_t size)
{
	json_t *a = json_array();
	char dom[300], spec[ST_POLICY_MATCH_MAX];
	const char *q;
	enum st_level l = v->pol.level;

	text[0] = '\0';
	if (l != ST_LEVEL_VERIFY && l != ST_LEVEL_SECURE && l != ST_LEVEL_FINGERPRINT)
		return a;
	nexthop_domain(nexthop, dom, sizeof(dom));
	snprintf(spec, sizeof(spec), "%s",
	         v->pol.match[0]        ? v->pol.match
	         : l == ST_LEVEL_VERIFY ? "hostname"
	         : l == ST_LEVEL_SECURE ? "nexthop:dot-nexthop"
	                                : "");
	for (q = spec; *q;) {
		char w[300], name[320];
		size_t len = strcspn(q, l == ST_LEVEL_FINGERPRINT ? "|" : ":");
		snprintf(w, sizeof(w), "%.*s", (int)(len < 299 ? len : 299), q);
		q += len + (q[len] != '\0');
		if (!w[0])
			continue;
		if (l != ST_LEVEL_FINGERPRINT && !strcasecmp(w, "hostname"))
			snprintf(name, sizeof(name), "(each MX host's name)");
		else if (l != ST_LEVEL_FINGERPRINT && !strcasecmp(w, "nexthop"))
			snprintf(name, sizeof(name), "%s", dom);
		else if (l != ST_LEVEL_FINGERPRINT && !strcasecmp(w, "dot-nexthop"))
			snprintf(name, sizeof(name), ".%s", dom);
		else
			snprintf(name, sizeof(name), "%s", w);
		json_array_append_new(a, json_string(name));
		snprintf(text + strlen(text), size - strlen(text), "%s%s", text[0] ? ", " : "",
		         name);
	}
	return a;
}

static void why_text(const struct st_policy_tables *ts, const struct pconf *c, const char *nexthop,
                     const struct verdict *v, char *out, size_t size)
{
	if (!v->e)
		snprintf(out, size,
		         "no entry for %s%s in the tables: smtp_tls_security_level (%s) applies",
		         nexthop, strpbrk(nexthop, "[]:") ? "" : " or its parent domains",
		         c->level && *c->level ? c->level : "empty: none");
	else if (strcasecmp(v->key, nexthop))
		snprintf(out, size, "parent-domain entry %s in %s, line %u", v->e->key,
		         st_policy_table_spec(ts->t[v->table]), v->e->line);
	else
		snprintf(out, size, "exact entry %s in %s, line %u", v->e->key,
		         st_policy_table_spec(ts->t[v->table]), v->e->line);
	if (ts->broken[0])
		snprintf(
		    out + strlen(out), size - strlen(out),
		    "; but %s: all mail is deferred with 4.7.5 client TLS configuration problem",
		    ts->broken);
	else if (v->invalid)
		snprintf(out + strlen(out), size - strlen(out),
		         "; the entry is invalid (%s): mail is deferred with 4.7.5 client TLS "
		         "configuration problem",
		         v->error);
}

static json_t *verdict_json(const struct st_policy_tables *ts, const struct pconf *c,
                            const char *nexthop, const struct verdict *v)
{
	char why[1500], names[2000];
	json_t *o = json_object(), *attrs = json_object();
	const struct st_policy *pol = &v->pol;

	json_object_set_new(o, "nexthop", json_string(nexthop));
	json_object_set_new(o, "found", json_boolean(v->e != NULL));
	if (v->e) {
		json_object_set_new(o, "table", json_string(st_policy_table_spec(ts->t[v->table])));
		json_object_set_new(o, "file", json_string(st_policy_table_file(ts->t[v->table])));
		json_object_set_new(o, "line", json_integer(v->e->line));
		json_object_set_new(o, "key", json_string(v->e->key));
		json_object_set_new(o, "value", json_string(v->e->value));
	}
	json_object_set_new(o, "valid", json_boolean(!v->invalid));
	json_object_set_new(o, "level",
	                    v->invalid ? json_null() : json_string(st_level_name(pol->level)));
	if (v->invalid)
		json_object_set_new(o, "error", json_string(v->error));
	if (pol->match[0])
		json_object_set_new(attrs, "match", json_string(pol->match));
	if (pol->protocols[0])
		json_object_set_new(attrs, "protocols", json_string(pol->protocols));
	if (pol->ciphers[0])
		json_object_set_new(attrs, "ciphers", json_string(pol->ciphers));
	if (pol->exclude[0])
		json_object_set_new(attrs, "exclude", json_string(pol->exclude));
	if (pol->servername[0])
		json_object_set_new(attrs, "servername", json_string(pol->servername));
	if (pol->tafile[0])
		json_object_set_new(attrs, "tafile", json_string(pol->tafile));
	if (pol->connection_reuse >= 0)
		json_object_set_new(attrs, "connection_reuse", json_boolean(pol->connection_reuse));
	json_object_set_new(o, "attributes", attrs);
	json_object_set_new(o, "match_names", match_names(v, nexthop, names, sizeof(names)));
	why_text(ts, c, nexthop, v, why, sizeof(why));
	json_object_set_new(o, "why", json_string(why));
	return o;
}

/* A next hop as a heading, sanitised: it may come from a table or a script's input. */
static void head(const char *nexthop)
{
	char shown[1024];

	snprintf(shown, sizeof(shown), "%s", nexthop);
	st_sanitize(shown);
	st_out_styled(ST_STYLE_HEAD, shown);
}

/* A field whose value comes from a table or the command line, sanitised for the terminal. */
static void field(const char *label, const char *value)
{
	char shown[2048];

	snprintf(shown, sizeof(shown), "%s", value);
	st_sanitize(shown);
	st_out_field(label, 12, shown);
}

static void verdict_text(const struct st_policy_tables *ts, const struct pconf *c,
                         const char *nexthop, const struct verdict *v)
{
	char why[1500], names[2000], line[64];
	json_t *a;

	head(nexthop);
	fputs("\n", stdout);
	if (v->e) {
		snprintf(line, sizeof(line), "line %u", v->e->line);
		field("  table", st_policy_table_spec(ts->t[v->table]));
		if (v->e->line)
			st_out_field("  line", 12, line + 5);
		field("  key", v->e->key);
		field("  policy", v->e->value);
	} else
		st_out_field("  table", 12, "(no entry)");
	if (v->invalid) {
		printf("%-12s ", "  level");
		st_out_styled(ST_STYLE_BAD, "invalid: mail deferred (4.7.5)");
		fputs("\n", stdout);
	} else
		st_out_field("  level", 12, st_level_name(v->pol.level));
	a = match_names(v, nexthop, names, sizeof(names));
	json_decref(a);
	if (names[0])
		field("  match", names);
	why_text(ts, c, nexthop, v, why, sizeof(why));
	field("  why", why);
}

static enum st_exit do_lookup(const struct po_params *p, const struct pconf *c,
                              const struct st_policy_tables *ts)
{
	struct verdict v;
	size_t i;
	signed char *cache[TABLES_MAX] = {NULL};

	if (!p->batch) {
		for (i = 0; i < p->n_args && !st_out_failed(); i++) {
			decide(ts, c, p->args[i], &v);
			if (p->g->json)
				st_out_json(verdict_json(ts, c, p->args[i], &v));
			else
				verdict_text(ts, c, p->args[i], &v);
		}
		return ST_EXIT_OK;
	}
	/* --batch: one line in, one line out; lines are capped, and sanitised in the output.
	 * Each entry's value is parsed once, its level (or invalid) kept for the next hit. */
	for (i = 0; i < ts->n; i++) {
		cache[i] = malloc(st_policy_table_size(ts->t[i]) + 1);
		if (!cache[i]) {
			st_out_error("out of memory");
			while (i)
				free(cache[--i]);
			return ST_EXIT_INTERNAL;
		}
		memset(cache[i], 0xff, st_policy_table_size(ts->t[i]) + 1);
	}
	{
		static char in[8192], outbuf[1 << 16];
		unsigned long lineno = 0;
		setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
		while (fgets(in, sizeof(in), stdin)) {
			size_t len = strlen(in);
			lineno++;
			if (len && in[len - 1] != '\n' && !feof(stdin)) {
				int ch;
				st_out_error("standard input, line %lu: over %zu bytes: skipped",
				             lineno, sizeof(in) - 2);
				while ((ch = getchar()) != EOF && ch != '\n')
					;
				continue;
			}
			while (len && isspace((unsigned char)in[len - 1]))
				in[--len] = '\0';
			if (!len)
				continue;
			if (p->g->json)
				decide(ts, c, in, &v);
			else
				decide_level(ts, c, in, &v, cache);
			if (p->g->json) {
				json_t *o = verdict_json(ts, c, in, &v);
				char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
				if (s)
					fprintf(stdout, "%s\n", s);
				free(s);
				json_decref(o);
			} else {
				st_sanitize(in);
				fputs(in, stdout);
				putc('\t', stdout);
				fputs(v.invalid ? "invalid" : st_level_name(v.pol.level), stdout);
				putc('\t', stdout);
				fputs(v.e ? v.e->key : "-", stdout);
				putc('\t', stdout);
				fputs(v.e ? st_policy_table_spec(ts->t[v.table]) : "-", stdout);
				putc('\n', stdout);
			}
			if (ferror(stdout))
				break;
		}
	}
	for (i = 0; i < ts->n; i++)
		free(cache[i]);
	return ST_EXIT_OK;
}

/* ---- test ---- */

struct dest {
	struct test_run *run;
	const char *nexthop;
	const char *operand; /* as given: a next hop, or a recipient that is routed */
	bool routed;
	bool not_smtp; /* routed to a transport that is not Postfix's smtp client */
	struct st_route route;
	char why_route[1600];       /* the route and the service's overrides, in words */
	char *level;                /* the service's -o smtp_tls_security_level, or NULL */
	struct st_policy_tables ts; /* the service's -o smtp_tls_policy_maps (own_ts) */
	bool own_ts;
	bool wrappermode;
	struct verdict v;
	char *rcpt;
	const char *rcpts[1];
	struct st_relay_result res;
	bool started, done, failed_start;
	char start_error[ST_ERROR_MAX];
};

struct test_run {
	const struct po_params *p;
	const struct pconf *c;
	const struct st_policy_tables *ts;
	uv_loop_t loop;
	struct st_dns *dns;
	struct st_trust *trust;
	struct dest *d;
	size_t n, next, running, done;
	bool tty;
};

static void test_schedule(struct test_run *run);

/* The tables and settings a next hop is decided under: main.cf's, or its transport's. */
static const struct st_policy_tables *dest_tables(const struct dest *d)
{
	return d->own_ts ? &d->ts : d->run->ts;
}

static struct pconf dest_conf(const struct dest *d)
{
	struct pconf c = *d->run->c;

	if (d->level)
		c.level = d->level;
	return c;
}

/*
 * A recipient operand routed as Postfix routes it (trivial-rewrite, then the transport's
 * master.cf entry and its -o overrides, as postconf -F and -Px print them). Fills d; -1
 * with err when the route cannot be known. tm: transport_maps, loaded.
 */
/* a boolean of main.cf or master.cf -o, as Postfix reads it */
static bool yes_word(const char *v)
{
	return v && (!strcasecmp(v, "yes") || !strcasecmp(v, "true"));
}

static int dest_route(struct dest *d, const struct pconf *c, const struct st_policy_tables *tm,
                      struct st_error *err)
{
	struct st_route_conf rc;
	char pc[4200], svc[300], cmdline[320];
	const char *postconf, *argv[8];
	struct st_buf out;
	char *line, *save = NULL, *maps = NULL, *wrap = c->wrappermode;
	size_t len;

	memset(&rc, 0, sizeof(rc));
	rc.mydestination = c->mydestination;
	rc.virtual_alias_domains = c->virtual_alias_domains;
	rc.virtual_mailbox_domains = c->virtual_mailbox_domains;
	rc.relay_domains = c->relay_domains;
	rc.local_transport = c->local_transport;
	rc.virtual_transport = c->virtual_transport;
	rc.relay_transport = c->relay_transport;
	rc.default_transport = c->default_transport;
	rc.relayhost = c->relayhost;
	rc.parent_domain_matches_subdomains = c->parent_domain_matches_subdomains;
	rc.recipient_delimiter = c->recipient_delimiter;
	rc.transport_maps = tm;
	if (st_route_resolve(&rc, d->operand, &d->route, err) < 0)
		return -1;
	d->nexthop = d->route.nexthop;
	len = (size_t)snprintf(d->why_route, sizeof(d->why_route), "%s", d->route.why);
	if (d->route.cls == ST_ROUTE_LOCAL || d->route.cls == ST_ROUTE_VIRTUAL_ALIAS ||
	    d->route.cls == ST_ROUTE_VIRTUAL_MAILBOX) {
		d->not_smtp = true;
		snprintf(d->why_route + len, sizeof(d->why_route) - len,
		         "; %s: not delivered over SMTP by Postfix's smtp client",
		         d->route.cls == ST_ROUTE_VIRTUAL_ALIAS ? "aliased to other addresses"
		                                                : "final delivery here");
		return 0;
	}
	/* the transport's service in master.cf */
	if (!c->dir) {
		if (strcmp(d->route.transport, "smtp") && strcmp(d->route.transport, "relay")) {
			st_error_set(
			    err, ST_ERR_USAGE,
			    "'%s' goes by transport '%s': its master.cf entry is read with "
			    "--postfix-config",
			    d->operand, d->route.transport);
			return -1;
		}
		return 0;
	}
	postconf = find_postconf(pc, sizeof(pc));
	if (!postconf) {
		st_error_set(
		    err, ST_ERR_USAGE,
		    "'%s': routing reads master.cf through postconf, which is not installed",
		    d->operand);
		return -1;
	}
	snprintf(svc, sizeof(svc), "%s/unix", d->route.transport);
	snprintf(cmdline, sizeof(cmdline), "%s/command", svc);
	argv[0] = postconf, argv[1] = "-c", argv[2] = c->dir, argv[3] = "-F", argv[4] = cmdline;
	argv[5] = NULL;
	if (run_postconf(argv, c->dir, &out, err) < 0)
		return -1;
	line = strstr((char *)out.data, " = ");
	if (!line) {
		st_buf_release(&out);
		st_error_set(err, ST_ERR_INPUT,
		             "'%s' goes by transport '%s', which %s/master.cf has no unix service "
		             "for: Postfix defers it (mail transport unavailable)",
		             d->operand, d->route.transport, c->dir);
		return -1;
	}
	line += 3;
	line[strcspn(line, " \t\n")] = '\0';
	if (strcmp(line, "smtp")) {
		d->not_smtp = true;
		len = strlen(d->why_route);
		snprintf(d->why_route + len, sizeof(d->why_route) - len,
		         "; transport %s runs %s, not Postfix's smtp client", d->route.transport,
		         line);
		st_buf_release(&out);
		return 0;
	}
	st_buf_release(&out);
	/* its -o overrides, $names expanded */
	argv[3] = "-Px", argv[4] = svc;
	if (run_postconf(argv, c->dir, &out, err) < 0)
		return -1;
	for (line = strtok_r((char *)out.data, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq = strstr(line, " = "), *name = line + strlen(svc) + 1;
		if (!eq || strncmp(line, svc, strlen(svc)) || line[strlen(svc)] != '/')
			continue;
		*eq = '\0';
		eq += 3;
		if (!strncmp(name, "smtp_", 5)) {
			len = strlen(d->why_route);
			snprintf(d->why_route + len, sizeof(d->why_route) - len, "%s -o %s=%s",
			         strstr(d->why_route, " -o ") ? "" : "; master.cf", name, eq);
		}
		if (!strcmp(name, "smtp_tls_security_level")) {
			free(d->level);
			d->level = strdup(eq);
		} else if (!strcmp(name, "smtp_tls_policy_maps"))
			maps = eq;
		else if (!strcmp(name, "smtp_tls_wrappermode"))
			wrap = eq;
	}
	d->wrappermode = yes_word(wrap);
	if (maps) {
		d->own_ts = true;
		st_policy_tables_init(&d->ts);
		if (st_policy_tables_add_list(&d->ts, maps, "smtp_tls_policy_maps", err) < 0) {
			st_buf_release(&out);
			return -1;
		}
	}
	st_buf_release(&out);
	return 0;
}

static void dest_done(struct st_relay_result *r, void *arg)
{
	struct dest *d = arg;

	(void)r;
	d->done = true;
	d->run->running--;
	d->run->done++;
	if (d->run->tty)
		fprintf(stderr, "\r%zu/%zu tested, %zu running   ", d->run->done, d->run->n,
		        d->run->running);
	test_schedule(d->run);
}

static void test_schedule(struct test_run *run)
{
	long limit = run->p->concurrency ? run->p->concurrency : 16;

	while (run->next < run->n && (long)run->running < limit) {
		struct dest *d = &run->d[run->next++];
		struct st_relay_params rp;
		struct st_error err;
		char dom[300];

		struct pconf cc;
		size_t len;

		if (d->failed_start || d->not_smtp) {
			d->done = true;
			run->done++;
			continue;
		}
		cc = dest_conf(d);
		decide(dest_tables(d), &cc, d->nexthop, &d->v);
		if (d->wrappermode && !d->v.invalid && d->v.pol.level < ST_LEVEL_ENCRYPT) {
			/* Postfix 3.7 warns 'smtp_tls_wrappermode requires "smtp_tls_security_level
			 * = encrypt" (or stronger)', connects nowhere and defers (seen in t0503) */
			d->res.rcpt = calloc(1, sizeof(*d->res.rcpt));
			if (d->res.rcpt) {
				d->res.n_rcpt = 1;
				d->res.rcpt[0].status = ST_RELAY_DEFERRED;
				snprintf(d->res.rcpt[0].dsn, sizeof(d->res.rcpt[0].dsn), "4.3.0");
				snprintf(d->res.rcpt[0].relay, sizeof(d->res.rcpt[0].relay),
				         "none");
				snprintf(d->res.rcpt[0].reason, sizeof(d->res.rcpt[0].reason),
				         "server unavailable or unable to receive mail");
			}
			len = strlen(d->why_route);
			snprintf(
			    d->why_route + len, sizeof(d->why_route) - len,
			    "; smtp_tls_wrappermode requires \"smtp_tls_security_level = encrypt\" "
			    "(or stronger)");
			d->done = true;
			run->done++;
			continue;
		}
		nexthop_domain(d->nexthop, dom, sizeof(dom));
		if (asprintf(&d->rcpt, "postmaster@%s", dom) < 0)
			d->rcpt = NULL;
		d->rcpts[0] = run->p->rcpt_to                     ? run->p->rcpt_to
		              : d->routed && d->operand[0] != '@' ? d->operand
		              : d->rcpt                           ? d->rcpt
		                                                  : "postmaster";
		memset(&rp, 0, sizeof(rp));
		rp.nexthop = d->nexthop;
		rp.dns = run->dns;
		rp.ehlo_name = run->p->ehlo                                ? run->p->ehlo
		               : run->c->myhostname && *run->c->myhostname ? run->c->myhostname
		                                                           : "localhost";
		rp.sender = run->p->mail_from ? run->p->mail_from : "";
		rp.rcpt = d->rcpts;
		rp.n_rcpt = 1;
		rp.policy = &d->v.pol;
		rp.policy_error = d->v.invalid ? d->v.error : NULL;
		rp.trust = run->trust;
		rp.digest = ST_DIGEST_SHA256;
		if (run->c->digest && *run->c->digest && st_digest_from_name(run->c->digest) >= 0)
			rp.digest = (enum st_digest)st_digest_from_name(run->c->digest);
		rp.timeout_ms = run->p->timeout_ms ? run->p->timeout_ms : 30000;
		rp.max_addrs = 64;
		rp.probe_only = true;
		rp.probe_rcpt = run->p->rcpt_to != NULL || (d->routed && d->operand[0] != '@');
		rp.wrappermode = d->wrappermode;
		rp.relayhost = run->c->relayhost && *run->c->relayhost &&
		               strcmp(d->nexthop, run->c->relayhost) == 0;
		d->started = true;
		if (st_relay_start(&run->loop, &rp, &d->res, dest_done, d, &err) < 0) {
			d->failed_start = true;
			d->done = true;
			run->done++;
			snprintf(d->start_error, sizeof(d->start_error), "%s", err.msg);
			continue;
		}
		run->running++;
	}
}

/* Delivered, deferred or bounced, as Postfix would end with this next hop. */
static const char *dest_verdict(const struct dest *d)
{
	if (d->failed_start)
		return "error";
	if (d->not_smtp)
		return "not-smtp"; /* not the smtp client's: said so, never guessed */
	if (!d->res.n_rcpt)
		return "error";
	if (!strcmp(d->res.rcpt[0].reason, ST_RELAY_DANE_UNSUPPORTED))
		return "unknown"; /* not predicted: said so, never guessed */
	return d->res.rcpt[0].status == ST_RELAY_SENT      ? "delivered"
	       : d->res.rcpt[0].status == ST_RELAY_BOUNCED ? "bounced"
	                                                   : "deferred";
}

static void dest_report(const struct test_run *run, const struct dest *d)
{
	const char *verdict = dest_verdict(d);
	const struct st_relay_rcpt *x = d->res.n_rcpt ? &d->res.rcpt[0] : NULL;
	size_t k;

	struct pconf cc = dest_conf(d);

	if (run->p->g->json) {
		json_t *o = json_object(), *hops = json_array();
		if (d->routed) {
			json_object_set_new(o, "recipient", json_string(d->operand));
			json_object_set_new(
			    o, "route",
			    d->failed_start
			        ? json_null()
			        : json_pack("{s:s, s:s, s:s, s:b, s:s}", "class",
			                    st_route_class_name(d->route.cls), "transport",
			                    d->route.transport, "nexthop", d->route.nexthop,
			                    "wrappermode", d->wrappermode, "why", d->why_route));
		}
		json_object_set_new(o, "nexthop",
		                    json_string(d->failed_start && d->routed ? "" : d->nexthop));
		json_object_set_new(o, "verdict", json_string(verdict));
		json_object_set_new(o, "reason",
		                    json_string(d->failed_start ? d->start_error
		                                : d->not_smtp   ? d->why_route
		                                : x             ? x->reason
		                                                : ""));
		json_object_set_new(o, "dsn", json_string(x ? x->dsn : ""));
		json_object_set_new(o, "relay", json_string(x ? x->relay : ""));
		json_object_set_new(o, "policy",
		                    d->failed_start || d->not_smtp
		                        ? json_null()
		                        : verdict_json(dest_tables(d), &cc, d->nexthop, &d->v));
		json_object_set_new(o, "mx", json_boolean(d->res.mx));
		for (k = 0; k < d->res.n_hops; k++) {
			const struct st_relay_hop *h = &d->res.hops[k];
			json_array_append_new(
			    hops,
			    json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:b, s:s?, s:s?, s:s?}",
			              "host", h->host, "addr", h->addr, "port", (json_int_t)h->port,
			              "relay", h->relay, "verdict",
			              h->status == ST_RELAY_SENT      ? "delivered"
			              : h->status == ST_RELAY_BOUNCED ? "bounced"
			                                              : "deferred",
			              "dsn", h->dsn, "reason", h->reason, "plaintext_retry",
			              h->plain, "tls_status",
			              h->tls_status[0] ? h->tls_status : NULL, "tls_version",
			              h->tls_version[0] ? h->tls_version : NULL, "tls_cipher",
			              h->tls_cipher[0] ? h->tls_cipher : NULL));
		}
		json_object_set_new(o, "hosts", hops);
		st_out_json(o);
		return;
	}
	head(d->operand);
	if (d->routed && !d->failed_start && !d->not_smtp) {
		fputs(" -> ", stdout);
		head(d->nexthop);
	}
	fputs(": ", stdout);
	st_out_styled(!strcmp(verdict, "delivered") ? ST_STYLE_OK : ST_STYLE_BAD, verdict);
	if (x && strcmp(verdict, "delivered"))
		printf(" (%s)", x->reason);
	if (!d->failed_start && !d->not_smtp)
		printf("  [%s%s%s%s]",
		       d->v.invalid ? "invalid entry" : st_level_name(d->v.pol.level),
		       d->v.e ? ", " : ", no entry: smtp_tls_security_level",
		       d->v.e ? d->v.e->key : "", d->wrappermode ? ", wrappermode" : "");
	fputs("\n", stdout);
	if (d->routed && !d->failed_start)
		field("  route", d->why_route);
	if (d->failed_start)
		printf("  %s\n", d->start_error);
	for (k = 0; k < d->res.n_hops; k++) {
		const struct st_relay_hop *h = &d->res.hops[k];
		printf("  %s%s  ", h->relay, h->plain ? " (without TLS)" : "");
		st_out_styled(h->status == ST_RELAY_SENT ? ST_STYLE_OK : ST_STYLE_BAD,
		              h->status == ST_RELAY_SENT      ? "delivered"
		              : h->status == ST_RELAY_BOUNCED ? "bounced"
		                                              : "deferred");
		if (h->status == ST_RELAY_SENT && h->tls_status[0])
			printf(": %s TLS, %s with %s\n", h->tls_status, h->tls_version,
			       h->tls_cipher);
		else if (h->status == ST_RELAY_SENT)
			printf(": without TLS\n");
		else
			printf(": %s%s%s\n", h->reason, h->tls_status[0] ? " — " : "",
			       h->tls_status[0] ? h->tls_status : "");
	}
}

static enum st_exit do_test(const struct po_params *p, const struct pconf *c,
                            const struct st_policy_tables *ts)
{
	struct test_run run;
	struct st_error err;
	enum st_exit status = ST_EXIT_OK;
	size_t i, k;
	const char **names = NULL;
	size_t n = 0;
	struct st_policy_tables tm;
	bool tm_loaded = false;

	memset(&run, 0, sizeof(run));
	run.p = p, run.c = c, run.ts = ts;
	run.tty = !p->g->json && isatty(2) && !p->g->quiet;
	/* the next hops: given, or every key of the tables (parent-domain keys and "*" are no
	 * next hops: they are named and skipped) */
	if (p->all) {
		for (i = 0; i < ts->n; i++)
			n += st_policy_table_size(ts->t[i]);
		names = calloc(n ? n : 1, sizeof(*names));
		if (!names)
			return ST_EXIT_INTERNAL;
		n = 0;
		for (i = 0; i < ts->n; i++)
			for (k = 0; k < st_policy_table_size(ts->t[i]); k++) {
				const struct st_policy_entry *e = st_policy_table_at(ts->t[i], k);
				size_t j;
				bool seen = false;
				if (e->key[0] == '.' || !strcmp(e->key, "*")) {
					st_out_note(0, "%s: '%s' is no next hop (%s): not tested",
					            st_policy_table_spec(ts->t[i]), e->key,
					            e->key[0] == '.' ? "a parent-domain entry"
					                             : "no wildcard");
					continue;
				}
				for (j = 0; j < n && !seen; j++)
					seen = !strcasecmp(names[j], e->key);
				if (!seen)
					names[n++] = e->key;
			}
	} else {
		names = calloc(p->n_args ? p->n_args : 1, sizeof(*names));
		if (!names)
			return ST_EXIT_INTERNAL;
		for (i = 0; i < p->n_args; i++)
			names[n++] = p->args[i];
	}
	run.d = calloc(n ? n : 1, sizeof(*run.d));
	if (!run.d) {
		free(names);
		return ST_EXIT_INTERNAL;
	}
	run.n = n;
	for (i = 0; i < n; i++) {
		run.d[i].run = &run;
		run.d[i].nexthop = names[i];
		run.d[i].operand = names[i];
		/* main.cf's smtp_tls_wrappermode, for a next hop as for a recipient (whose
		 * transport's master.cf entry may override it) */
		run.d[i].wrappermode = yes_word(c->wrappermode);
	}
	/* recipients are routed first, as trivial-rewrite and the transport's master.cf entry
	 * route them */
	for (i = 0; i < n; i++)
		if (strchr(names[i], '@')) {
			struct st_error rerr;
			if (!tm_loaded) {
				st_policy_tables_init(&tm);
				tm_loaded = true;
				if (c->transport_maps &&
				    st_policy_tables_add_list(&tm, c->transport_maps,
				                              "transport_maps", &err) < 0) {
					st_out_error("%s", err.msg);
					status = ST_EXIT_INPUT;
					goto out;
				}
				if (tm.broken[0]) {
					st_out_error("transport_maps: %s", tm.broken);
					status = ST_EXIT_INPUT;
					goto out;
				}
			}
			run.d[i].routed = true;
			if (dest_route(&run.d[i], c, &tm, &rerr) < 0) {
				run.d[i].failed_start = true;
				snprintf(run.d[i].start_error, sizeof(run.d[i].start_error), "%s",
				         rerr.msg);
			}
		}
	/* trust: --ca-file, else smtp_tls_CAfile and smtp_tls_CApath (Postfix reads no system
	 * store unless told: tls_append_default_CA = no) */
	run.trust = st_trust_new();
	if (!run.trust) {
		status = ST_EXIT_INTERNAL;
		goto out;
	}
	if (p->ca_file
	        ? st_trust_index_file(run.trust, p->ca_file, &err)
	        : ((c->cafile && *c->cafile && st_trust_index_file(run.trust, c->cafile, &err)) ||
	           (c->capath && *c->capath && st_trust_add_dir(run.trust, c->capath, &err)))) {
		st_out_error("%s", err.msg);
		status = ST_EXIT_INPUT;
		goto out;
	}
	run.dns = st_dns_new(p->dns_server, &err);
	if (!run.dns) {
		st_out_error("%s", err.msg); /* lib/dns names --dns-server when it is the cause */
		status = st_exit_for(err.cls);
		goto out;
	}
	st_dns_set_timeout(run.dns, (int)(p->timeout_ms ? p->timeout_ms : 30000));
	for (i = 0; i < p->n_resolve; i++)
		if (st_dns_add_resolve(run.dns, p->resolve[i], &err)) {
			st_out_error("%s", err.msg);
			status = st_exit_for(err.cls);
			goto out;
		}
	{
		/* --host-lookup, else main.cf's smtp_host_lookup, else Postfix's default dns */
		int lookup = p->host_lookup;
		if (!lookup && c->host_lookup && *c->host_lookup &&
		    (lookup = st_dns_host_lookup_parse(c->host_lookup, &err)) < 0) {
			st_out_error("smtp_host_lookup (%s): %s", c->from ? c->from : "main.cf",
			             err.msg);
			status = ST_EXIT_INPUT;
			goto out;
		}
		st_dns_set_host_lookup(run.dns, lookup);
		st_out_note(1, "host addresses: %s", st_dns_host_lookup_name(st_dns_host_lookup(run.dns)));
	}
	if (uv_loop_init(&run.loop)) {
		status = ST_EXIT_INTERNAL;
		goto out;
	}
	if (st_dns_attach(run.dns, &run.loop, &err)) {
		st_out_error("%s", err.msg);
		uv_loop_close(&run.loop);
		status = ST_EXIT_INTERNAL;
		goto out;
	}
	test_schedule(&run);
	while (run.done < run.n && uv_run(&run.loop, UV_RUN_ONCE))
		;
	st_dns_detach(run.dns);
	uv_run(&run.loop, UV_RUN_DEFAULT);
	uv_loop_close(&run.loop);
	if (run.tty)
		fputs("\r\033[K", stderr);
	for (i = 0; i < run.n && !st_out_failed(); i++) {
		const char *v = dest_verdict(&run.d[i]);
		dest_report(&run, &run.d[i]);
		if (strcmp(v, "delivered") && strcmp(v, "not-smtp"))
			status = st_exit_worse(status,
			                       !strcmp(v, "error") ? ST_EXIT_USAGE : ST_EXIT_FAIL);
	}
out:
	for (i = 0; i < run.n; i++) {
		st_relay_result_release(&run.d[i].res);
		free(run.d[i].rcpt);
		free(run.d[i].level);
		if (run.d[i].own_ts)
			st_policy_tables_release(&run.d[i].ts);
	}
	if (tm_loaded)
		st_policy_tables_release(&tm);
	free(run.d);
	free(names);
	st_dns_free(run.dns);
	st_trust_free(run.trust);
	return status;
}

/* ---- check ---- */

static enum st_exit do_check(const struct po_params *p, const struct pconf *c,
                             const struct st_policy_tables *ts)
{
	struct st_lint_context ctx;
	struct st_lint_diag *d = NULL;
	size_t n = 0, i;
	struct st_error err;
	int worst;

	memset(&ctx, 0, sizeof(ctx));
	ctx.postfix_version = c->version && *c->version ? c->version : NULL;
	ctx.default_level = c->level;
	ctx.have_ca = (c->cafile && *c->cafile) || (c->capath && *c->capath);
	ctx.digest = c->digest && *c->digest ? c->digest : NULL;
	ctx.compatibility_level = c->compat ? atoi(c->compat) : 0;
	if (st_policy_lint(ts->t, ts->n, &ctx, &d, &n, &err) < 0) {
		st_out_error("%s", err.msg);
		return st_exit_for(err.cls);
	}
	for (i = 0; i < n && !st_out_failed(); i++) {
		if (p->g->json) {
			st_out_json(json_pack("{s:s, s:i, s:s, s:s, s:s, s:s}", "file", d[i].file,
			                      "line", (int)d[i].line, "severity",
			                      st_lint_severity_name(d[i].severity), "code",
			                      d[i].code, "key", d[i].key, "message", d[i].message));
			continue;
		}
		if (d[i].line)
			printf("%s:%u: ", d[i].file[0] ? d[i].file : "inline", d[i].line);
		else
			printf("%s: ", d[i].file[0] ? d[i].file : "inline");
		st_out_styled(d[i].severity == ST_LINT_ERROR     ? ST_STYLE_BAD
		              : d[i].severity == ST_LINT_WARNING ? ST_STYLE_WARN
		                                                 : ST_STYLE_NONE,
		              st_lint_severity_name(d[i].severity));
		st_sanitize(d[i].message); /* keys from the table are in it */
		printf(": %s [%s]\n", d[i].message, d[i].code);
	}
	worst = st_lint_worst(d, n);
	free(d);
	if (!p->g->json && !p->g->quiet && !n)
		st_out_note(0, "%zu table%s, no findings", ts->n, ts->n == 1 ? "" : "s");
	return worst == ST_LINT_ERROR     ? ST_EXIT_FAIL
	       : worst == ST_LINT_WARNING ? ST_EXIT_WARN
	                                  : ST_EXIT_OK;
}

int cmd_policy(int argc, char **argv, struct st_global *g)
{
	struct po_params p;
	struct pconf c;
	struct st_policy_tables ts;
	struct st_error err;
	enum st_exit status;

	memset(&p, 0, sizeof(p));
	p.g = g;
	p.args = calloc((size_t)argc + 1, sizeof(*p.args));
	if (!p.args) {
		st_out_error("out of memory");
		return ST_EXIT_INTERNAL;
	}
	st_cmd_parse(&cmd_policy_argp, argc, argv, &p, g);
	memset(&ts, 0, sizeof(ts));
	if (conf_load(&p, &c, &err) < 0) {
		st_out_error("%s", err.msg);
		status = st_exit_for(err.cls);
		goto out;
	}
	st_out_note(1, "configuration: %s", c.from ? c.from : "?");
	if (tables_load(&p, &c, p.action == A_CHECK ? p.args : (char **)p.tables,
	                p.action == A_CHECK ? p.n_args : p.n_tables, &ts, &err) < 0) {
		st_out_error("%s", err.msg);
		status = st_exit_for(err.cls == ST_ERR_USAGE ? ST_ERR_USAGE : ST_ERR_INPUT);
		goto out;
	}
	if (!ts.n && p.action == A_CHECK) {
		st_out_error(
		    "no table: smtp_tls_policy_maps is empty (%s); name tables as operands",
		    c.from ? c.from : "");
		status = ST_EXIT_USAGE;
		goto out;
	}
	switch (p.action) {
	case A_CHECK:
		status = do_check(&p, &c, &ts);
		break;
	case A_LOOKUP:
		status = do_lookup(&p, &c, &ts);
		break;
	case A_TEST:
		status = do_test(&p, &c, &ts);
		break;
	default:
		status = ST_EXIT_USAGE;
	}
out:
	st_policy_tables_release(&ts);
	conf_release(&c);
	free(p.args);
	return status;
}
