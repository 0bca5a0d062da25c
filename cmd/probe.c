/* probe.c: the probe command: one destination's SMTP over TLS, reported and judged against a Postfix level */
#include "config.h"

#include <argp.h>
#include <errno.h>
#include <stdarg.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "dns.h"
#include "output.h"
#include "relay.h"
#include "session.h"
#include "verify.h"
#include "x509.h"

#define LIST_MAX  64
#define MATCH_MAX 64

enum level { L_NONE, L_MAY, L_ENCRYPT, L_FINGERPRINT, L_VERIFY, L_SECURE };
static const char *const level_names[] = {"none",        "may",    "encrypt",
                                          "fingerprint", "verify", "secure"};

struct pr_params {
	struct st_global *g;
	const char *target;
	int mode; /* -1: from the port */
	bool mode_from_port;
	const char *ehlo;
	long timeout_ms;
	enum level level;
	const char *match;
	const char *ca_files[LIST_MAX];
	int n_ca_files;
	const char *ca_path;
	bool no_system;
	const char *cert, *key;
	const char *mail_from;
	const char *rcpt[LIST_MAX];
	int n_rcpt;
	const char *resolve[LIST_MAX];
	size_t n_resolve;
	const char *protocols;
	const char *sni;
	enum st_digest digest;
	bool check_enforcement;
	bool mx;
	bool first;
	const char *dns_server;
	int host_lookup; /* ST_HOST_LOOKUP_* */
	const char *auth_user;
	const char *auth_password_file;
	const char *auth_mech;
	bool auth_plaintext;
	char auth_password[512];
	const char *save_chain;
	bool reconnect;
	bool interactive;
	const char *send_file; /* --send: the message, sent with DATA */
	struct st_buf message;
};

enum {
	OPT_STARTTLS = 0x400,
	OPT_IMPLICIT,
	OPT_NO_TLS,
	OPT_EHLO,
	OPT_TIMEOUT,
	OPT_LEVEL,
	OPT_MATCH,
	OPT_CA_FILE,
	OPT_CA_PATH,
	OPT_NO_SYSTEM,
	OPT_CERT,
	OPT_KEY,
	OPT_MAIL_FROM,
	OPT_RCPT_TO,
	OPT_RESOLVE,
	OPT_PROTOCOLS,
	OPT_SNI,
	OPT_ENFORCEMENT,
	OPT_MX,
	OPT_FIRST,
	OPT_DNS_SERVER,
	OPT_HOST_LOOKUP,
	OPT_AUTH_USER,
	OPT_AUTH_PWFILE,
	OPT_AUTH_MECH,
	OPT_AUTH_PLAINTEXT,
	OPT_SAVE_CHAIN,
	OPT_RECONNECT,
	OPT_INTERACTIVE,
	OPT_SEND,
};

static const struct argp_option pr_options[] = {
    {NULL, 0, NULL, 0, "Connection:", 1},
    {"starttls", OPT_STARTTLS, NULL, 0,
     "Plaintext first, then STARTTLS (the default but on port 465)", 1},
    {"tls-on-connect", OPT_IMPLICIT, NULL, 0, "TLS from the first byte (the default on port 465)",
     1},
    {"no-tls", OPT_NO_TLS, NULL, 0, "No TLS at all", 1},
    {"ehlo", OPT_EHLO, "NAME", 0, "The EHLO name (default: this machine's name)", 1},
    {"timeout", OPT_TIMEOUT, "SECONDS", 0, "Time limit of every step (default 30)", 1},
    {"resolve", OPT_RESOLVE, "HOST:PORT:ADDR[,ADDR...]", 0,
     "Connect to ADDR for HOST and PORT, without asking DNS, MX hosts included (repeatable, as "
     "curl has it)",
     1},
    {"reconnect", OPT_RECONNECT, NULL, 0,
     "Connect a second time and say whether the TLS session was resumed (posttls-finger -r)", 1},
    {"mx", OPT_MX, NULL, 0, "Look up the MX hosts of DOMAIN:PORT too (a bare DOMAIN always is)", 1},
    {"first", OPT_FIRST, NULL, 0,
     "Stop at the first MX host and address that answers (as posttls-finger), not probe them all",
     1},
    {"dns-server", OPT_DNS_SERVER, "ADDR[:PORT]", 0,
     "Ask this DNS server, not the one of resolv.conf", 1},
    {"host-lookup", OPT_HOST_LOOKUP, "METHODS", 0,
     "Where host addresses come from, as Postfix's smtp_host_lookup: dns (the default), native "
     "(the system's resolver: /etc/hosts, nsswitch.conf) or dns,native; MX records always come "
     "from DNS",
     1},
    {"servername", OPT_SNI, "NAME", 0, "The TLS server name sent (default: the host name)", 1},
    {"protocols", OPT_PROTOCOLS, "LIST", 0,
     "TLS protocols in Postfix syntax (>=TLSv1.2, !TLSv1, TLSv1.3 ...)", 1},
    {"check-enforcement", OPT_ENFORCEMENT, NULL, 0,
     "Also connect without TLS and try MAIL FROM: is STARTTLS enforced (530)?", 1},
    {"interactive", OPT_INTERACTIVE, NULL, 0,
     "After EHLO (and TLS, and AUTH) send the lines of stdin as they are and show the "
     "replies; then the report",
     1},
    {NULL, 0, NULL, 0, "Judgement:", 2},
    {"level", OPT_LEVEL, "LEVEL", 0,
     "Postfix security level to judge by: none, may, encrypt, fingerprint, verify "
     "(default), secure",
     2},
    {"match", OPT_MATCH, "PATTERNS", 0,
     "Postfix match patterns, separated by ':' ',' or spaces (verify: hostname; secure: "
     "nexthop:dot-nexthop); at fingerprint the digests, separated by '|' ',' or spaces",
     2},
    {"ca-file", OPT_CA_FILE, "FILE", 0, "Trust the certificates of this bundle (repeatable)", 2},
    {"ca-path", OPT_CA_PATH, "DIR", 0, "Trust this OpenSSL-style hashed directory", 2},
    {"no-system-ca", OPT_NO_SYSTEM, NULL, 0, "Trust nothing unless --ca-file or --ca-path says so",
     2},
    {"digest", 'd', "NAME", 0, "Digest of fingerprints (default sha256)", 2},
    {"save-chain", OPT_SAVE_CHAIN, "FILE", 0, "Write the chain the server sent to FILE, in PEM", 2},
    {NULL, 0, NULL, 0, "Client certificate and relay test:", 3},
    {"cert", OPT_CERT, "FILE", 0, "Present this client certificate (with --key)", 3},
    {"key", OPT_KEY, "FILE", 0, "The client certificate's private key", 3},
    {"mail-from", OPT_MAIL_FROM, "ADDR", 0, "Send MAIL FROM:<ADDR> (then RCPT, RSET, QUIT)", 3},
    {"rcpt-to", OPT_RCPT_TO, "ADDR", 0, "Send RCPT TO:<ADDR> (repeatable; needs --mail-from)", 3},
    {"send", OPT_SEND, "FILE", 0,
     "Send the message in FILE ('-': standard input) with DATA after the recipients, instead "
     "of RSET",
     3},
    {"auth-user", OPT_AUTH_USER, "USER", 0,
     "Try AUTH as USER, the password from --auth-password-file or SMTPTLS_PASSWORD", 3},
    {"auth-password-file", OPT_AUTH_PWFILE, "FILE", 0, "The AUTH password: the first line of FILE",
     3},
    {"auth-mech", OPT_AUTH_MECH, "MECH", 0, "PLAIN or LOGIN (default: PLAIN when offered)", 3},
    {"auth-plaintext", OPT_AUTH_PLAINTEXT, NULL, 0,
     "Allow AUTH without TLS (the password then crosses the network in clear)", 3},
    {NULL, 0, NULL, 0, NULL, 0},
};

const struct st_optvals cmd_probe_values[] = {
    {"level", "none may encrypt fingerprint verify secure"},
    {"ca-file", "@file"},
    {"ca-path", "@dir"},
    {"cert", "@file"},
    {"key", "@file"},
    {"digest", "md5 sha1 sha224 sha256 sha384 sha512"},
    {"match", "hostname nexthop dot-nexthop"},
    {"host-lookup", "dns native dns,native"},
    {NULL, NULL},
};

static error_t pr_parse(int key, char *arg, struct argp_state *state)
{
	struct pr_params *p = state->input;
	char *end;
	long v;
	size_t i;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = p->g;
		break;
	case OPT_STARTTLS:
		p->mode = ST_SMTP_STARTTLS;
		break;
	case OPT_IMPLICIT:
		p->mode = ST_SMTP_IMPLICIT;
		break;
	case OPT_NO_TLS:
		p->mode = ST_SMTP_PLAIN;
		break;
	case OPT_EHLO:
		if (!*arg || strlen(arg) > 255 || strpbrk(arg, " \t\r\n"))
			st_usage_error(state, "--ehlo: '%s' is not a host name", arg);
		p->ehlo = arg;
		break;
	case OPT_TIMEOUT:
		v = strtol(arg, &end, 10);
		if (*arg == '\0' || *end || v < 1 || v > 3600)
			st_usage_error(state, "--timeout: '%s' is not 1-3600 seconds", arg);
		p->timeout_ms = v * 1000;
		break;
	case OPT_LEVEL:
		for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
			if (strcmp(arg, level_names[i]) == 0)
				break;
		if (i == sizeof(level_names) / sizeof(level_names[0]))
			st_usage_error(
			    state,
			    "--level: '%s' is not none, may, encrypt, fingerprint, verify or "
			    "secure",
			    arg);
		p->level = (enum level)i;
		break;
	case OPT_MATCH:
		p->match = arg;
		break;
	case OPT_CA_FILE:
		if (p->n_ca_files >= LIST_MAX)
			st_usage_error(state, "--ca-file: at most %d files", LIST_MAX);
		p->ca_files[p->n_ca_files++] = arg;
		break;
	case OPT_CA_PATH:
		p->ca_path = arg;
		break;
	case OPT_NO_SYSTEM:
		p->no_system = true;
		break;
	case OPT_CERT:
		p->cert = arg;
		break;
	case OPT_KEY:
		p->key = arg;
		break;
	case OPT_MAIL_FROM:
		if (strpbrk(arg, "<>\r\n"))
			st_usage_error(state, "--mail-from: '%s' is not an address", arg);
		p->mail_from = arg;
		break;
	case OPT_RCPT_TO:
		if (strpbrk(arg, "<>\r\n") || !*arg)
			st_usage_error(state, "--rcpt-to: '%s' is not an address", arg);
		if (p->n_rcpt >= LIST_MAX)
			st_usage_error(state, "--rcpt-to: at most %d", LIST_MAX);
		p->rcpt[p->n_rcpt++] = arg;
		break;
	case OPT_RESOLVE:
		st_parse_resolve(state, arg, p->resolve, &p->n_resolve, LIST_MAX);
		break;
	case OPT_HOST_LOOKUP:
		p->host_lookup = st_parse_host_lookup(state, arg);
		break;
	case OPT_PROTOCOLS:
		p->protocols = arg;
		break;
	case OPT_SNI:
		p->sni = arg;
		break;
	case OPT_ENFORCEMENT:
		p->check_enforcement = true;
		break;
	case OPT_MX:
		p->mx = true;
		break;
	case OPT_FIRST:
		p->first = true;
		break;
	case OPT_DNS_SERVER:
		p->dns_server = arg;
		break;
	case OPT_AUTH_USER:
		if (!*arg || strpbrk(arg, "\r\n"))
			st_usage_error(state, "--auth-user: '%s' is not a user name", arg);
		p->auth_user = arg;
		break;
	case OPT_AUTH_PWFILE:
		p->auth_password_file = arg;
		break;
	case OPT_AUTH_MECH:
		if (strcasecmp(arg, "PLAIN") && strcasecmp(arg, "LOGIN"))
			st_usage_error(state, "--auth-mech: '%s' is not PLAIN or LOGIN", arg);
		p->auth_mech = arg;
		break;
	case OPT_AUTH_PLAINTEXT:
		p->auth_plaintext = true;
		break;
	case OPT_SAVE_CHAIN:
		p->save_chain = arg;
		break;
	case OPT_RECONNECT:
		p->reconnect = true;
		break;
	case OPT_INTERACTIVE:
		p->interactive = true;
		break;
	case OPT_SEND:
		p->send_file = arg;
		break;
	case 'd':
		p->digest = st_parse_digest(state, "--digest", arg);
		break;
	case ARGP_KEY_ARG:
		if (p->target)
			st_usage_error(state, "one destination at a time (got '%s' and '%s')",
			               p->target, arg);
		p->target = arg;
		break;
	case ARGP_KEY_NO_ARGS:
		st_usage_error(state, "no destination given (host:port, [host]:port)");
		break;
	case ARGP_KEY_END:
		if (!!p->cert != !!p->key)
			st_usage_error(state, "--cert and --key go together");
		if (p->n_rcpt && !p->mail_from)
			st_usage_error(state, "--rcpt-to needs --mail-from");
		if (p->send_file && !p->n_rcpt)
			st_usage_error(state, "--send needs --mail-from and --rcpt-to");
		if (p->level == L_FINGERPRINT && !p->match)
			st_usage_error(state, "--level fingerprint needs --match "
			                      "DIGEST[:DIGEST...]... (fingerprints)");
		if (p->interactive && (p->mail_from || p->g->json))
			st_usage_error(state,
			               "--interactive: the lines of stdin are the conversation: "
			               "not with --mail-from, --rcpt-to or --json");
		if ((p->auth_password_file || p->auth_mech || p->auth_plaintext) && !p->auth_user)
			st_usage_error(state,
			               "--auth-password-file, --auth-mech and --auth-plaintext "
			               "need --auth-user");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

const struct argp cmd_probe_argp = {
    pr_options,
    pr_parse,
    "HOST:PORT | [HOST]:PORT | [HOST]",
    "Speak SMTP to one server, with STARTTLS or implicit TLS, report what it offers and its "
    "certificate, and judge it as Postfix's smtp client would at a security level.\v"
    "Port 465 means implicit TLS, any other port STARTTLS. Exit status: 0 the level is met, "
    "1 it is not (mail would be deferred), 2 usage, 4 the name does not resolve, 5 no "
    "connection, 6 the server broke the protocol, 7 TLS failed, 8 the server refused us. "
    "See smtptls-probe(1).",
    st_global_children,
    NULL,
    NULL};

/* Split "host:port", "[host]:port", "[host]" and "[v6]:port". */
static int parse_target(const char *t, char *host, size_t hsize, unsigned *port)
{
	const char *colon;
	char *end;
	long v;

	*port = 25;
	if (t[0] == '[') {
		const char *close = strchr(t, ']');
		if (!close || close == t + 1 || (size_t)(close - t - 1) >= hsize)
			return -1;
		snprintf(host, hsize, "%.*s", (int)(close - t - 1), t + 1);
		colon = close[1] == ':' ? close + 1 : NULL;
		if (!colon && close[1])
			return -1;
	} else {
		colon = strrchr(t, ':');
		if (colon && strchr(t, ':') != colon)
			return -1; /* a bare IPv6 address: write it [::1]:25 */
		if ((size_t)(colon ? colon - t : (long)strlen(t)) >= hsize)
			return -1;
		snprintf(host, hsize, "%.*s", (int)(colon ? colon - t : (long)strlen(t)), t);
		if (!colon)
			return 1; /* a mail domain: MX */
	}
	if (colon) {
		v = strtol(colon + 1, &end, 10);
		if (!colon[1] || *end || v < 1 || v > 65535)
			return -1;
		*port = (unsigned)v;
	}
	return host[0] ? 0 : -1;
}

static bool is_numeric(const char *host)
{
	unsigned char b[16];

	return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

static int resolve_numeric(const char *addr, unsigned port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -1;
}

/*
 * One address to probe. Its sessions (the probe, then the enforcement check
 * and the reconnection) run on the loop side by side with other addresses';
 * its report is made after the loop, in MX order.
 */
struct job {
	struct probe_run *run;
	const char *host;    /* the MX host (the hostname strategy) */
	const char *nexthop; /* the domain (nexthop) */
	unsigned port;
	char addr[64];
	struct sockaddr_storage ss;
	struct st_session_params sp;
	struct st_session_result sr, er, rr;
	bool started, ran_er, ran_rr, ended;
	int outstanding; /* sessions under way */
	struct st_buf resume;
	/* the chain as sent (its items borrow chain's bytes) and its verification */
	bool verified;
	struct st_buf chain;
	struct st_x509_item *items[16];
	size_t n_items;
	struct st_verify_result vr;
	bool have_vr;
	bool fp_met; /* fingerprint level: a digest matched */
	char usage_error[300];
};

/* One MX host (or the one host given): its addresses, or why there are none. */
struct slot {
	struct probe_run *run;
	char host[256];
	bool resolved;
	char dns_error[600]; /* "" unless the lookup failed */
	bool dns_answered;   /* the DNS server answered so (Postfix's words apply) */
	struct st_error dns_err;
	struct job *jobs;
	size_t n_jobs;
};

/* What runs on the loop for one destination. */
struct probe_run {
	struct pr_params *p;
	uv_loop_t loop;
	struct st_dns *dns;
	char domain[256]; /* the destination as given, the nexthop */
	unsigned port;
	char dns_error[600]; /* the destination's own lookup failed (MX, null MX) */
	bool dns_answered;   /* the MX lookup failed in the DNS (Postfix's words apply) */
	struct st_error dns_err;
	struct slot *slots;
	size_t n_slots;
	int running;
	int max_running; /* 1 with --first and --interactive: in MX order, one at a time */
	bool stop;       /* --first: an address answered */
	char prio[512];
	struct st_trust *trust;
	struct st_tls_creds *creds; /* read once for every session */
};

/* Addresses known so far. */
static size_t run_jobs(const struct probe_run *run)
{
	size_t i, n = 0;

	for (i = 0; i < run->n_slots; i++)
		n += run->slots[i].n_jobs;
	return n;
}

static void transcript(void *arg, char dir, bool tls, const char *line)
{
	const struct job *jb = arg;
	const struct pr_params *p = jb->run->p;
	const struct st_global *g = p->g;

	if (p->interactive) {
		/* the conversation on stdout as it happens, the user's lines too (from a
		 * pipe they show nowhere else) */
		printf("%c%s %s\n", dir, tls ? "~" : " ", line);
		fflush(stdout);
		return;
	}
	if (g->verbose > 0 && !g->json) {
		/* several addresses talk at once: each line says whose it is */
		char l[4300];
		if (run_jobs(jb->run) > 1)
			snprintf(l, sizeof(l), "[%s]:%u %c%s %s", jb->addr, jb->port, dir,
			         tls ? "~" : " ", line);
		else
			snprintf(l, sizeof(l), "%c%s %s", dir, tls ? "~" : " ", line);
		st_out_note(1, "%s", l);
	}
}

static void add_finding(json_t *a, const char *s)
{
	json_array_append_new(a, json_string(s));
}

static void add_finding_f(json_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_finding_f(json_t *a, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	add_finding(a, buf);
}

/* Capabilities that appear or vanish after TLS (STARTTLS itself aside). */
static void caps_changes(json_t *a, const struct st_smtp_caps *before,
                         const struct st_smtp_caps *after)
{
	struct st_buf b;
	size_t i, j;
	bool found;

	st_buf_init(&b, 4096);
	for (i = 0; i < after->n_keywords; i++) {
		for (found = false, j = 0; j < before->n_keywords && !found; j++)
			found = strcasecmp(after->keywords[i], before->keywords[j]) == 0;
		if (!found)
			st_buf_addf(&b, "%s+%s", b.len ? ", " : "", after->keywords[i]);
	}
	for (i = 0; i < before->n_keywords; i++) {
		if (strcasecmp(before->keywords[i], "STARTTLS") == 0)
			continue;
		for (found = false, j = 0; j < after->n_keywords && !found; j++)
			found = strcasecmp(before->keywords[i], after->keywords[j]) == 0;
		if (!found)
			st_buf_addf(&b, "%s-%s", b.len ? ", " : "", before->keywords[i]);
	}
	if (b.len)
		add_finding_f(a, "capabilities change after TLS: %s", st_buf_str(&b));
	st_buf_release(&b);
}

/* One certificate of the chain as sent, for JSON. */
static json_t *cert_json(const struct st_x509_item *item, enum st_digest d)
{
	struct st_x509_info info;
	struct st_error err;
	char fp[ST_FINGERPRINT_MAX], pfp[ST_FINGERPRINT_MAX], t1[32], t2[32];
	json_t *o, *san = json_array();
	size_t i;

	st_x509_item_info(item, &info, &err);
	st_x509_item_fingerprint(item, d, false, fp);
	st_x509_item_fingerprint(item, d, true, pfp);
	for (i = 0; i < info.n_san; i++)
		json_array_append_new(san, json_string(info.san[i]));
	if (!info.has_validity || st_time_iso(info.not_before, t1, sizeof(t1)))
		t1[0] = '\0';
	if (!info.has_validity || st_time_iso(info.not_after, t2, sizeof(t2)))
		t2[0] = '\0';
	o = json_pack("{s:s, s:s, s:o, s:s, s:s, s:{s:s, s:i, s:o}, s:s, s:s, s:s}", "subject",
	              info.subject ? info.subject : "", "issuer", info.issuer ? info.issuer : "",
	              "san", san, "not_before", t1, "not_after", t2, "key", "algorithm",
	              info.key_algorithm, "bits", (int)info.key_bits, "curve",
	              info.key_curve[0] ? json_string(info.key_curve) : json_null(),
	              "signature_algorithm", info.sig_algorithm, "fingerprint", fp,
	              "pkey_fingerprint", pfp);
	st_x509_info_release(&info);
	return o;
}

/* One certificate of the chain as sent, as text. */
static void cert_text(const struct st_x509_item *item, size_t depth, enum st_digest d)
{
	struct st_x509_info info;
	struct st_error err;
	char fp[ST_FINGERPRINT_MAX], pfp[ST_FINGERPRINT_MAX], t[32], line[1200];
	struct st_buf san;
	size_t i;

	st_x509_item_info(item, &info, &err);
	st_x509_item_fingerprint(item, d, false, fp);
	st_x509_item_fingerprint(item, d, true, pfp);
	snprintf(line, sizeof(line), "%zu %s", depth, info.subject ? info.subject : "");
	st_out_field("chain", 12, line);
	snprintf(line, sizeof(line), "  issuer %s", info.issuer ? info.issuer : "");
	st_out_field("", 12, line);
	if (info.n_san) {
		st_buf_init(&san, 65536);
		for (i = 0; i < info.n_san; i++)
			st_buf_addf(&san, "%s%s", i ? ", " : "", info.san[i]);
		snprintf(line, sizeof(line), "  san %s", st_buf_str(&san));
		st_out_field("", 12, line);
		st_buf_release(&san);
	}
	if (info.has_validity && st_time_iso(info.not_after, t, sizeof(t)) == 0) {
		snprintf(line, sizeof(line), "  not after %s, key %s %u bits, signed %s", t,
		         info.key_algorithm, info.key_bits, info.sig_algorithm);
		st_out_field("", 12, line);
	}
	snprintf(line, sizeof(line), "  fingerprint %s", fp);
	st_out_field("", 12, line);
	snprintf(line, sizeof(line), "  pkey_fingerprint %s", pfp);
	st_out_field("", 12, line);
	st_x509_info_release(&info);
}

struct verdict {
	bool met;
	bool judged; /* false: no SMTP session was had (no connection, no greeting, a greeting
	                that refuses): the level is not judged, the mail would be deferred */
	char reason[512];
	char dsn[16];       /* when not judged: Postfix's status code */
	const char *status; /* Anonymous, Untrusted, Trusted, Verified, or "none" */
};

/* What the way the server failed the session says about its port: a hint, or NULL. */
static const char *port_hint(const struct pr_params *p, enum st_smtp_mode mode,
                             const struct st_session_result *sr, const struct st_smtp_result *s)
{
	if (sr->clue == ST_SESSION_CLUE_TLS_AT_BANNER)
		return "the server speaks TLS at once: the port expects implicit TLS (use "
		       "--tls-on-connect)";
	if (sr->clue == ST_SESSION_CLUE_SMTP_AT_TLS)
		return p->mode_from_port
		           ? "the server greets in plaintext: the port expects STARTTLS (use "
		             "--starttls)"
		           : "the server greets in plaintext: the port expects STARTTLS (drop "
		             "--tls-on-connect)";
	if (mode != ST_SMTP_IMPLICIT && sr->connected && sr->timed_out && !s->banner.code)
		return "the server said nothing: the port may expect implicit TLS (try "
		       "--tls-on-connect)";
	return NULL;
}

/* A relay test (--mail-from) the server refused: MAIL FROM or a RCPT TO not taken. */
static bool relay_refused(const struct pr_params *p, const struct st_smtp_result *s)
{
	size_t i;

	if (!p->mail_from || !s->mail.code)
		return false;
	if (s->mail.code / 100 != 2)
		return true;
	for (i = 0; i < s->n_rcpt; i++)
		if (s->rcpt[i].code / 100 != 2)
			return true;
	return false;
}

static json_t *reply_json(const struct st_smtp_reply *r)
{
	char *text;
	json_t *v;

	if (r->code == 0)
		return json_null();
	text = st_smtp_reply_text(r);
	v = json_string(text ? text : "");
	free(text);
	return v;
}

static json_t *caps_json(const struct st_smtp_caps *c)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a && i < c->n_keywords; i++)
		json_array_append_new(a, json_string(c->keywords[i]));
	return a;
}

/* Probe one address of one host; prints its record and returns its exit status. */
/* The stapled OCSP response: null when the server sent none */
static json_t *staple_json(const struct st_verify_result *vr)
{
	json_t *o;
	char date[32];

	if (!vr || vr->staple.status == ST_REV_NOT_CHECKED)
		return json_null();
	o = json_pack("{s:s, s:s}", "status", st_rev_status_name(vr->staple.status), "detail",
	              vr->staple.detail);
	if (vr->staple.status == ST_REV_REVOKED) {
		st_time_iso(vr->staple.revoked_at, date, sizeof(date));
		json_object_set_new(o, "revoked_at", json_string(date));
		json_object_set_new(o, "reason",
		                    json_string(st_rev_reason_name(vr->staple.reason)));
	}
	return o;
}

static void staple_text(const struct st_verify_result *vr, char *out, size_t size)
{
	char date[32];

	if (!vr || vr->staple.status == ST_REV_NOT_CHECKED)
		snprintf(out, size, "none");
	else if (vr->staple.status == ST_REV_REVOKED) {
		st_time_iso(vr->staple.revoked_at, date, sizeof(date));
		snprintf(out, size, "REVOKED on %s, reason %s", date,
		         st_rev_reason_name(vr->staple.reason));
	} else
		snprintf(out, size, "%s (%s)", st_rev_status_name(vr->staple.status),
		         vr->staple.detail);
}

/* The names verify and secure match, as Postfix defaults them per level (fingerprint
 * digests are matched by st_fingerprint_list_matches). */
static int job_patterns(struct job *jb, char (*patterns)[256], struct st_error *err)
{
	struct pr_params *p = jb->run->p;

	if (p->level == L_VERIFY || p->level == L_SECURE) {
		const char *spec = p->match               ? p->match
		                   : p->level == L_VERIFY ? "hostname"
		                                          : "nexthop:dot-nexthop";
		return st_match_expand(spec, jb->host, jb->nexthop, patterns, MATCH_MAX, err);
	}
	return 0;
}

/* The chain as sent, verified as lib/verify does, and at fingerprint level matched:
 * once per job, when the handshake is done (before anything that matters is sent). */
static void job_verify(struct job *jb, struct st_tls *tls)
{
	struct pr_params *p = jb->run->p;
	char patterns[MATCH_MAX][256];
	const char *pattern_ptrs[MATCH_MAX];
	struct st_error e = {ST_ERR_NONE, "", 0};
	int n_patterns, k;

	jb->verified = true;
	n_patterns = job_patterns(jb, patterns, &e);
	if (n_patterns < 0) {
		snprintf(jb->usage_error, sizeof(jb->usage_error), "%s", e.msg);
		return;
	}
	for (k = 0; k < n_patterns; k++)
		pattern_ptrs[k] = patterns[k];
	jb->n_items = st_tls_peer_items(tls, &jb->chain, jb->items, 16);
	if (!jb->n_items)
		return;
	{
		struct st_verify_params vp;
		memset(&vp, 0, sizeof(vp));
		vp.trust = jb->run->trust;
		vp.purpose = ST_PURPOSE_SERVER;
		vp.match = pattern_ptrs;
		vp.n_match =
		    (p->level == L_VERIFY || p->level == L_SECURE) ? (size_t)n_patterns : 0;
		vp.at = time(NULL);
		vp.digest = p->digest;
		vp.ocsp_staple = st_tls_ocsp_staple(tls, &vp.ocsp_staple_len);
		if (vp.trust &&
		    st_verify_chain(&vp, jb->items, jb->n_items, NULL, 0, &jb->vr, &e) == 0)
			jb->have_vr = true;
	}
	/* fingerprint level: the leaf's certificate or public-key digest */
	if (p->level == L_FINGERPRINT)
		jb->fp_met = st_fingerprint_list_matches(jb->items[0], p->digest, p->match);
}

/*
 * Right after the handshake: does the server meet the level? When it does not
 * (fingerprint, verify, secure), Postfix would send it nothing: no AUTH secret,
 * no message, no line of the user's goes to it either (EHLO still does, for the
 * report).
 */
static int job_tls_check(void *arg, struct st_tls *tls, char *why, size_t size)
{
	struct job *jb = arg;
	struct pr_params *p = jb->run->p;
	bool ok;

	job_verify(jb, tls);
	if (p->level < L_FINGERPRINT)
		return 0;
	ok = p->level == L_FINGERPRINT
	         ? jb->fp_met
	         : jb->have_vr && strcmp(jb->vr.postfix_status, "Verified") == 0;
	if (ok)
		return 0;
	snprintf(why, size, "the server certificate does not meet --level %s",
	         level_names[p->level]);
	return 1;
}

static enum st_exit job_report(struct job *jb)
{
	struct pr_params *p = jb->run->p;
	const char *host = jb->host, *addr = jb->addr;
	unsigned port = jb->port;
	struct st_session_result sr = jb->sr;
	struct st_x509_item **items = jb->items;
	struct st_verify_result *vrp = &jb->vr;
	bool have_vr = false;
	struct verdict v = {false, true, "", "", "none"};
	const char *hint, *why;
	bool refused;
	const struct st_smtp_result *s;
	json_t *findings;
	int enforced, resumed;
	char enforce_reply[600];
	enum st_exit status = ST_EXIT_OK;
	size_t i;
	size_t n_items;
	bool no_ccert, dropped, ccert_demanded = false;

	if (jb->usage_error[0]) {
		st_out_error("--match: %s", jb->usage_error);
		return ST_EXIT_USAGE;
	}
	s = st_smtp_client_result(sr.smtp);
	/* the chain as sent, verified (at the handshake, or now) */
	if (sr.tls && sr.tls_done && !jb->verified)
		job_verify(jb, sr.tls);
	n_items = jb->n_items;
	have_vr = jb->have_vr;
	v.met = jb->fp_met;

	/* a session the server ended right after the handshake (a TLS 1.3 server judges
	 * the client certificate after it: an alert, or Postfix's 421), and whether it
	 * asked for a certificate we did not give */
	{
		int after = p->mode == ST_SMTP_IMPLICIT ? s->ehlo.code : s->ehlo_tls.code;
		no_ccert = sr.tls && sr.tls_summary.client_cert_requested && !p->cert;
		dropped = sr.tls_done && after != 250 && p->mode != ST_SMTP_PLAIN &&
		          (sr.failed || s->failed);
		if (no_ccert && (dropped || (!sr.tls_done && sr.failed)))
			ccert_demanded = true;
	}

	/* the status word and the verdict, as Postfix's smtp client */
	if (!sr.tls_done)
		v.status = "none";
	else if (!n_items)
		v.status = "Anonymous";
	else if (p->level == L_FINGERPRINT)
		v.status = v.met ? "Verified" : "Untrusted";
	else
		v.status = have_vr ? vrp->postfix_status : "Untrusted";
	switch (p->level) {
	case L_NONE:
	case L_MAY:
		v.met = true;
		snprintf(v.reason, sizeof(v.reason), "%s",
		         sr.tls_done ? "delivered with TLS" : "delivered without TLS");
		break;
	case L_ENCRYPT:
	case L_FINGERPRINT:
	case L_VERIFY:
	case L_SECURE:
		if (sr.connected && !s->caps.starttls && p->mode == ST_SMTP_STARTTLS &&
		    s->ehlo.code == 250) {
			v.met = false;
			snprintf(v.reason, sizeof(v.reason),
			         "TLS is required, but was not offered by host %s[%s]", host, addr);
		} else if (!sr.tls_done) {
			v.met = false;
			snprintf(v.reason, sizeof(v.reason), "Cannot start TLS: handshake failure");
		} else if (dropped) {
			v.met = false;
			snprintf(v.reason, sizeof(v.reason), "%s",
			         ccert_demanded
			             ? "the server demands a client certificate and none was given"
			             : "the session ended right after the TLS handshake");
		} else if (p->level == L_ENCRYPT) {
			v.met = true;
			snprintf(v.reason, sizeof(v.reason), "delivered with TLS (%s)", v.status);
		} else if (p->level == L_FINGERPRINT) {
			snprintf(v.reason, sizeof(v.reason), "%s",
			         v.met ? "delivered: fingerprint matched"
			               : "Server certificate not verified");
		} else {
			v.met = strcmp(v.status, "Verified") == 0;
			snprintf(v.reason, sizeof(v.reason), "%s",
			         v.met ? "delivered: Verified" : "Server certificate not verified");
		}
		break;
	}
	if (jb->sp.smtp.mode == ST_SMTP_IMPLICIT && !sr.tls_done) {
		/* implicit TLS has no plaintext to fall back to, at any level */
		v.met = false;
		snprintf(v.reason, sizeof(v.reason), "Cannot start TLS: handshake failure");
	}
	if (st_relay_early_failure(&sr, host, addr, port, v.dsn, sizeof(v.dsn), v.reason,
	                           sizeof(v.reason))) {
		/* no SMTP session: nothing to judge, and Postfix defers in these words */
		v.met = false;
		v.judged = false;
	}

	/* findings: what a careful reader of the transcript would note */
	findings = json_array();
	if (p->mode == ST_SMTP_STARTTLS && s->ehlo.code == 250 && !s->caps.starttls)
		add_finding(findings, "STARTTLS not offered");
	if (p->mode == ST_SMTP_STARTTLS && s->caps.auth[0])
		add_finding_f(findings, "AUTH offered before TLS (%s)", s->caps.auth);
	if (s->injected)
		add_finding_f(findings,
		              "%zu bytes sent after the STARTTLS 220 and before the handshake "
		              "(response injection)",
		              s->injected);
	if (s->ehlo.code == 250 && s->ehlo_tls.code == 250)
		caps_changes(findings, &s->caps, &s->caps_tls);
	if (s->held && (p->auth_user || p->mail_from || p->interactive))
		add_finding_f(findings,
		              "%s: nothing went to it after EHLO (no AUTH, MAIL, message or line "
		              "of the user's), as Postfix would send it nothing",
		              s->held_why);
	if (ccert_demanded)
		add_finding(findings,
		            "the server demands a client certificate and none was given (--cert, "
		            "--key)");
	if (have_vr && vrp->staple.status == ST_REV_REVOKED)
		add_finding_f(findings,
		              "the stapled OCSP response says the certificate is revoked (%s)",
		              st_rev_reason_name(vrp->staple.reason));
	else if (have_vr && vrp->staple.status == ST_REV_UNKNOWN)
		add_finding(findings, "the stapled OCSP response does not know the certificate");
	else if (have_vr && vrp->staple.status == ST_REV_UNAVAILABLE)
		add_finding_f(findings, "the stapled OCSP response is not usable: %s",
		              vrp->staple.detail);

	/* the TLS enforcement check: a second connection, MAIL FROM without STARTTLS */
	enforced = -1;
	enforce_reply[0] = '\0';
	if (jb->ran_er) {
		const struct st_session_result *er = &jb->er;
		const struct st_smtp_result *es = st_smtp_client_result(er->smtp);
		if (es->mail.code) {
			char *t = st_smtp_reply_text(&es->mail);
			snprintf(enforce_reply, sizeof(enforce_reply), "%s", t ? t : "");
			free(t);
			enforced = es->mail.code == 530 ? 1 : es->mail.code / 100 == 2 ? 0 : -1;
		} else {
			snprintf(enforce_reply, sizeof(enforce_reply), "%s",
			         er->failed ? er->error.msg : es->error.msg);
		}
		if (enforced == 0)
			add_finding(findings,
			            "TLS is not enforced: MAIL FROM accepted without STARTTLS");
	}

	/* --reconnect: the same session again, offering what the first one left */
	resumed = jb->ran_rr ? (jb->rr.tls_done ? jb->rr.tls_summary.resumed : -1) : -1;

	hint = port_hint(p, jb->sp.smtp.mode, &sr, s);
	/* why the session stopped: a refusal first (the connection may be reset after it) */
	why = s->failed && s->error.cls == ST_ERR_REJECTED ? s->error.msg
	      : sr.failed                                  ? sr.error.msg
	      : s->failed                                  ? s->error.msg
	                                                   : NULL;
	refused = relay_refused(p, s);
	if (refused && v.judged) {
		/* not delivered: the refusal, in Postfix's words, whatever the level */
		const struct st_smtp_reply *rr = &s->mail;
		const char *cmd = "MAIL FROM";
		char words[300];
		for (i = 0; rr->code / 100 == 2 && i < s->n_rcpt; i++)
			if (s->rcpt[i].code / 100 != 2) {
				rr = &s->rcpt[i];
				cmd = "RCPT TO";
			}
		st_relay_reply_words(rr, words, sizeof(words));
		snprintf(v.reason, sizeof(v.reason),
		         "host %s[%s] said: %s (in reply to %s command)", host, addr, words, cmd);
	}

	/* status: the first failure class, else the verdict */
	if (ccert_demanded && !(s->failed && s->error.cls == ST_ERR_REJECTED))
		status = ST_EXIT_TLS; /* the TLS session dropped for want of a certificate */
	else if (!sr.connected)
		status = st_exit_for(sr.error.cls == ST_ERR_NONE ? ST_ERR_CONNECT : sr.error.cls);
	else if (s->failed && s->error.cls == ST_ERR_REJECTED)
		/* the refusal first: the connection may be reset after it */
		status = ST_EXIT_REJECTED;
	else if (sr.failed)
		status = st_exit_for(sr.error.cls);
	else if (s->failed && (s->error.cls == ST_ERR_REJECTED || s->error.cls == ST_ERR_PROTOCOL ||
	                       s->error.cls == ST_ERR_USAGE))
		status = st_exit_for(s->error.cls);
	else if (refused)
		status = ST_EXIT_REJECTED; /* the relay test's answer: "no" */
	else if (!v.met)
		status = (!sr.tls_done && p->level >= L_ENCRYPT && s->caps.starttls) ? ST_EXIT_TLS
		                                                                     : ST_EXIT_FAIL;

	if (p->g->json) {
		json_t *o = json_object(), *tls = json_object(), *ch = json_array(),
		       *lv = json_object();
		json_t *rc_a = json_array();
		json_object_set_new(o, "host", json_string(host));
		json_object_set_new(o, "address", json_string(addr));
		json_object_set_new(o, "port", json_integer(port));
		json_object_set_new(o, "mode",
		                    json_string(p->mode == ST_SMTP_IMPLICIT ? "implicit"
		                                : p->mode == ST_SMTP_PLAIN  ? "none"
		                                                            : "starttls"));
		json_object_set_new(o, "connected", json_boolean(sr.connected));
		json_object_set_new(o, "banner", reply_json(&s->banner));
		json_object_set_new(o, "ehlo", caps_json(&s->caps));
		json_object_set_new(o, "ehlo_tls",
		                    s->ehlo_tls.code ? caps_json(&s->caps_tls) : json_null());
		json_object_set_new(o, "starttls_injected_bytes",
		                    json_integer((json_int_t)s->injected));
		json_object_set_new(o, "tls_required",
		                    enforced < 0 ? json_null() : json_boolean(enforced == 1));
		json_object_set_new(o, "enforcement_reply",
		                    enforce_reply[0] ? json_string(enforce_reply) : json_null());
		json_object_set_new(o, "findings", json_incref(findings));
		json_object_set_new(o, "client_cert_requested",
		                    sr.tls ? json_boolean(sr.tls_summary.client_cert_requested)
		                           : json_null());
		if (sr.tls_done) {
			json_object_set_new(tls, "version", json_string(sr.tls_summary.version));
			json_object_set_new(tls, "cipher", json_string(sr.tls_summary.cipher));
			json_object_set_new(tls, "group", json_string(sr.tls_summary.group));
			json_object_set_new(tls, "signature_algorithm",
			                    sr.tls_summary.sigalg[0]
			                        ? json_string(sr.tls_summary.sigalg)
			                        : json_null());
			json_object_set_new(
			    tls, "sni", jb->sp.tls.sni ? json_string(jb->sp.tls.sni) : json_null());
			json_object_set_new(tls, "ocsp_staple", staple_json(have_vr ? vrp : NULL));
			json_object_set_new(tls, "resumed_on_reconnect",
			                    resumed < 0 ? json_null() : json_boolean(resumed == 1));
		}
		json_object_set_new(tls, "status", json_string(v.status));
		for (i = 0; i < n_items; i++)
			json_array_append_new(ch, cert_json(items[i], p->digest));
		json_object_set_new(tls, "chain", ch);
		{
			json_t *errs = json_array();
			for (i = 0; have_vr && i < vrp->n_errors; i++)
				json_array_append_new(errs, json_string(vrp->errors[i].message));
			json_object_set_new(tls, "errors", errs);
		}
		json_object_set_new(o, "tls", sr.tls_done ? tls : (json_decref(tls), json_null()));
		for (i = 0; i < s->n_rcpt; i++)
			json_array_append_new(rc_a, json_pack("{s:s, s:o}", "to", p->rcpt[i],
			                                      "reply", reply_json(&s->rcpt[i])));
		json_object_set_new(o, "rcpt", rc_a);
		json_object_set_new(o, "data",
		                    s->data_end.code ? reply_json(&s->data_end)
		                    : s->data.code   ? reply_json(&s->data)
		                                     : json_null());
		{
			const struct st_smtp_caps *ac = s->ehlo_tls.code ? &s->caps_tls : &s->caps;
			json_t *auth = json_object();
			json_object_set_new(auth, "mechanisms", json_string(ac->auth));
			json_object_set_new(auth, "offered_before_tls",
			                    json_boolean(s->caps.auth[0] != 0));
			if (p->auth_user) {
				json_object_set_new(auth, "user", json_string(p->auth_user));
				json_object_set_new(auth, "mechanism", json_string(s->auth_mech));
				json_object_set_new(auth, "ok", json_boolean(s->auth_ok));
				json_object_set_new(auth, "reply", reply_json(&s->auth));
			}
			json_object_set_new(o, "auth", auth);
		}
		json_object_set_new(lv, "name", json_string(level_names[p->level]));
		json_object_set_new(lv, "met", v.judged ? json_boolean(v.met) : json_null());
		json_object_set_new(lv, "reason", json_string(v.reason));
		json_object_set_new(lv, "dsn", v.judged ? json_null() : json_string(v.dsn));
		json_object_set_new(o, "relay",
		                    !p->mail_from || !s->mail.code ? json_null()
		                    : refused                      ? json_string("refused")
		                                                   : json_string("accepted"));
		json_object_set_new(o, "hint", hint ? json_string(hint) : json_null());
		json_object_set_new(o, "level", lv);
		json_object_set_new(o, "error", why ? json_string(why) : json_null());
		st_out_json(o);
	} else {
		char line[1200];
		snprintf(line, sizeof(line), "%s[%s]:%u: %s%s\n", host, addr, port,
		         !v.judged ? "no SMTP session (mail would be deferred)"
		         : v.met   ? "level met"
		                   : "level NOT met",
		         refused ? ", relay refused" : "");
		st_out_styled(v.judged && v.met && !refused ? ST_STYLE_OK : ST_STYLE_BAD, line);
		if (s->banner.code) {
			char *t = st_smtp_reply_text(&s->banner);
			st_out_field("banner", 12, t ? t : "");
			free(t);
		}
		if (sr.tls_done) {
			snprintf(line, sizeof(line), "%s %s%s%s", sr.tls_summary.version,
			         sr.tls_summary.cipher, sr.tls_summary.group[0] ? " group " : "",
			         sr.tls_summary.group);
			st_out_field("tls", 12, line);
			if (sr.tls_summary.sigalg[0])
				st_out_field("server sig", 12, sr.tls_summary.sigalg);
			st_out_field("sni", 12, jb->sp.tls.sni ? jb->sp.tls.sni : "(none sent)");
			st_out_field("status", 12, v.status);
			staple_text(have_vr ? vrp : NULL, line, sizeof(line));
			st_out_field("ocsp staple", 12, line);
			if (sr.tls_summary.client_cert_requested)
				st_out_field("client cert", 12, "requested by the server");
			if (p->reconnect)
				st_out_field(
				    "reconnect", 12,
				    resumed == 1 ? "the session was resumed"
				    : resumed == 0
				        ? "the session was NOT resumed"
				        : "unknown (no session data or no second handshake)");
		}
		for (i = 0; i < n_items; i++)
			cert_text(items[i], i, p->digest);
		for (i = 0; have_vr && i < vrp->n_errors; i++)
			st_out_field("problem", 12, vrp->errors[i].message);
		if (p->auth_user) {
			char *t = st_smtp_reply_text(&s->auth);
			snprintf(line, sizeof(line), "%s as %s: %s",
			         s->auth_mech[0] ? s->auth_mech : "-", p->auth_user,
			         s->auth_ok ? "ok" : (t && *t ? t : "not tried"));
			free(t);
			st_out_field("auth", 12, line);
		}
		for (i = 0; i < s->n_rcpt; i++) {
			char *t = st_smtp_reply_text(&s->rcpt[i]);
			snprintf(line, sizeof(line), "<%s> %s", p->rcpt[i], t ? t : "");
			free(t);
			st_out_field("rcpt", 12, line);
		}
		if (s->data.code) {
			const struct st_smtp_reply *dr = s->data_end.code ? &s->data_end : &s->data;
			char *t = st_smtp_reply_text(dr);
			st_out_field("data", 12, t ? t : "");
			free(t);
		}
		for (i = 0; i < json_array_size(findings); i++)
			st_out_field("finding", 12, json_string_value(json_array_get(findings, i)));
		if (p->check_enforcement)
			st_out_field(
			    "enforcement", 12,
			    enforced == 1   ? "STARTTLS required (MAIL FROM without it refused)"
			    : enforced == 0 ? "NOT enforced: MAIL FROM accepted without STARTTLS"
			                    : "unknown");
		if (enforce_reply[0])
			st_out_field("", 12, enforce_reply);
		if (p->mail_from && s->mail.code)
			st_out_field("relay", 12,
			             refused ? "refused (MAIL FROM or RCPT TO not taken)"
			                     : "accepted");
		if (v.judged)
			snprintf(line, sizeof(line), "%s: %s", level_names[p->level], v.reason);
		else
			snprintf(line, sizeof(line), "%s: not judged: deferred (%s)",
			         level_names[p->level], v.reason);
		st_out_field("level", 12, line);
		if (why)
			st_out_field("error", 12, why);
		if (hint)
			st_out_field("hint", 12, hint);
	}
	/* --save-chain: the chain as sent, in PEM */
	if (p->save_chain && n_items) {
		struct st_buf pem;
		FILE *f = fopen(p->save_chain, "w");
		st_buf_init(&pem, 1 << 22);
		for (i = 0; f && i < n_items; i++)
			if (st_x509_item_pem(items[i], &pem) == 0)
				fwrite(pem.data, 1, pem.len, f);
		if (!f || fclose(f) != 0) {
			st_out_error("cannot write '%s': %s", p->save_chain, strerror(errno));
			status = st_exit_worse(status, ST_EXIT_OUTPUT);
		}
		st_buf_release(&pem);
	}
	json_decref(findings);
	return status;
}

/*
 * A DNS failure as a record and a message. When the DNS answered that the name
 * does not exist (answered: for the host's addresses, or mx: for the
 * destination's MX hosts), no session is judged and the reason is Postfix's:
 * bounced. Other failures (a lookup that failed, a name without addresses)
 * are reported with their error alone.
 */
static enum st_exit dns_failure(const struct pr_params *p, const char *host, unsigned port,
                                const char *msg, const struct st_error *e, bool answered, bool mx,
                                bool skipped)
{
	char words[600], line[800];

	st_out_error("%s", msg);
	if (skipped) {
		/* an MX host without an address while another MX host has one: Postfix skips
		 * it and judges the others, so it decides nothing (t0305's d3) */
		const char *why = "Postfix skips an MX host without an address while another "
		                  "MX host has one";
		if (p->g->json)
			st_out_json(json_pack("{s:s, s:i, s:s, s:{s:s, s:n, s:s}}", "host", host,
			                      "port", (int)port, "error", msg, "level", "name",
			                      level_names[p->level], "met", "reason", why));
		else {
			snprintf(line, sizeof(line), "%s:%u: no address: skipped\n", host, port);
			st_out_styled(ST_STYLE_BAD, line);
			snprintf(line, sizeof(line), "%s: not judged: %s", level_names[p->level], why);
			st_out_field("level", 12, line);
		}
		return ST_EXIT_DNS;
	}
	/* only "not found" is proven against Postfix's words (t0305) */
	if (answered)
		answered = st_relay_name_words(host, mx, e, words, sizeof(words));
	if (p->g->json) {
		json_t *o =
		    json_pack("{s:s, s:i, s:s}", "host", host, "port", (int)port, "error", msg);
		if (answered)
			json_object_set_new(o, "level",
			                    json_pack("{s:s, s:n, s:s, s:s}", "name",
			                              level_names[p->level], "met", "reason", words,
			                              "dsn", "5.4.4"));
		st_out_json(o);
	} else if (answered) {
		snprintf(line, sizeof(line), "%s:%u: no SMTP session (mail would be bounced)\n",
		         host, port);
		st_out_styled(ST_STYLE_BAD, line);
		snprintf(line, sizeof(line), "%s: not judged: bounced (%s)", level_names[p->level],
		         words);
		st_out_field("level", 12, line);
	}
	return ST_EXIT_DNS;
}

/* ---- the loop: lookups, then every address's sessions side by side ---- */

static void schedule(struct probe_run *run);

static void job_session_done(struct st_session_result *res, void *arg)
{
	struct job *jb = arg;

	(void)res;
	if (--jb->outstanding > 0)
		return;
	jb->ended = true;
	jb->run->running--;
	schedule(jb->run);
}

/* Start a follow-up session of a job (the enforcement check, the reconnection). */
static void job_follow(struct job *jb, struct st_session_params *fp, struct st_session_result *res,
                       bool *ran)
{
	if (st_session_start(&jb->run->loop, fp, res, job_session_done, jb) == 0) {
		*ran = true;
		jb->outstanding++;
	}
}

/* The message was taken (2xx) or refused for good (5xx): no other address gets it. */
static bool message_settled(const struct st_smtp_result *s)
{
	size_t i, refused = 0;

	if (s->data_end.code)
		return s->data_end.code / 100 != 4;
	if (s->data.code)
		return s->data.code / 100 == 5;
	if (s->mail.code / 100 == 5)
		return true;
	for (i = 0; i < s->n_rcpt; i++)
		refused += s->rcpt[i].code / 100 == 5;
	return s->n_rcpt && refused == s->n_rcpt;
}

static void job_main_done(struct st_session_result *res, void *arg)
{
	struct job *jb = arg;
	struct pr_params *p = jb->run->p;

	/* one address only: --first and --interactive stop at the first that answers;
	 * a message (--send) goes, as Postfix sends it, to the first that takes it or
	 * refuses it for good */
	if ((p->first || p->interactive) && res->connected)
		jb->run->stop = true;
	if (p->send_file && message_settled(st_smtp_client_result(res->smtp)))
		jb->run->stop = true;
	/* the TLS enforcement check: a second connection, MAIL FROM without STARTTLS */
	if (p->check_enforcement && p->mode == ST_SMTP_STARTTLS && res->connected) {
		struct st_session_params ep = jb->sp;
		ep.smtp.mode = ST_SMTP_PLAIN;
		ep.smtp.mail_from = "";
		ep.smtp.rcpt = NULL;
		ep.smtp.n_rcpt = 0;
		ep.smtp.data = NULL;
		ep.smtp.log = NULL;
		ep.smtp.interactive = false;
		ep.smtp.auth_user = NULL; /* never authenticate on the plaintext check */
		ep.tls_check = NULL;
		job_follow(jb, &ep, &jb->er, &jb->ran_er);
	}
	/* --reconnect: the same session again, offering what the first one left */
	if (p->reconnect && res->tls && res->tls_done &&
	    st_tls_session_data(res->tls, &jb->resume) == 0 && jb->resume.len) {
		struct st_session_params rp = jb->sp;
		rp.smtp.mail_from = NULL;
		rp.smtp.n_rcpt = 0;
		rp.smtp.auth_user = NULL;
		rp.smtp.log = NULL;
		rp.smtp.interactive = false;
		rp.tls.resume = jb->resume.data;
		rp.tls.resume_len = jb->resume.len;
		rp.tls_check = NULL;
		job_follow(jb, &rp, &jb->rr, &jb->ran_rr);
	}
	job_session_done(res, arg);
}

static void job_start(struct job *jb)
{
	struct pr_params *p = jb->run->p;
	struct st_session_params *sp = &jb->sp;

	memset(sp, 0, sizeof(*sp));
	sp->addr = (struct sockaddr *)&jb->ss;
	sp->timeout_ms = p->timeout_ms;
	sp->smtp.mode = p->level == L_NONE ? ST_SMTP_PLAIN : (enum st_smtp_mode)p->mode;
	sp->smtp.ehlo_name = p->ehlo;
	sp->smtp.tls_optional = p->level <= L_MAY;
	sp->smtp.mail_from = p->mail_from;
	sp->smtp.rcpt = p->rcpt;
	sp->smtp.n_rcpt = (size_t)p->n_rcpt;
	sp->smtp.data = !p->send_file ? NULL : p->message.data ? (const char *)p->message.data : "";
	sp->smtp.data_len = p->message.len;
	sp->smtp.auth_user = p->auth_user;
	sp->smtp.auth_pass = p->auth_password;
	sp->smtp.auth_mech = p->auth_mech;
	sp->smtp.auth_plaintext = p->auth_plaintext;
	sp->smtp.log = transcript;
	sp->smtp.log_arg = jb;
	sp->smtp.interactive = p->interactive;
	sp->user_fd = 0;
	sp->tls.priority = jb->run->prio[0] ? jb->run->prio : NULL;
	sp->tls.sni = p->sni ? p->sni : (isalpha((unsigned char)jb->host[0]) ? jb->host : NULL);
	sp->tls.cert_file = p->cert;
	sp->tls.key_file = p->key;
	sp->tls.creds = jb->run->creds;
	sp->tls_check = job_tls_check;
	sp->tls_check_arg = jb;
	st_buf_init(&jb->resume, 65536);
	jb->started = true;
	jb->run->running++;
	jb->outstanding = 1;
	if (st_session_start(&jb->run->loop, sp, &jb->sr, job_main_done, jb) != 0) {
		jb->outstanding = 0;
		jb->ended = true;
		jb->run->running--;
	}
}

/* Start what may start: in MX order, within the limit; with --first one at a time and
 * nothing after an address that answered. */
static void schedule(struct probe_run *run)
{
	size_t i, k;

	for (i = 0; i < run->n_slots; i++) {
		struct slot *sl = &run->slots[i];
		if (!sl->resolved) {
			if (run->max_running == 1)
				return; /* in order: this host's addresses come first */
			continue;
		}
		for (k = 0; k < sl->n_jobs; k++) {
			if (sl->jobs[k].started)
				continue;
			if (run->stop || run->running >= run->max_running)
				return;
			job_start(&sl->jobs[k]);
		}
	}
}

/* The addresses of a slot are known: one job each. */
static void slot_addrs(struct probe_run *run, struct slot *sl, char (*addrs)[64], size_t n)
{
	size_t k;

	sl->jobs = calloc(n ? n : 1, sizeof(*sl->jobs));
	for (k = 0; sl->jobs && k < n; k++) {
		struct job *jb = &sl->jobs[sl->n_jobs];
		if (resolve_numeric(addrs[k], run->port, &jb->ss))
			continue;
		jb->run = run;
		jb->host = sl->host;
		jb->nexthop = run->domain;
		jb->port = run->port;
		snprintf(jb->addr, sizeof(jb->addr), "%s", addrs[k]);
		sl->n_jobs++;
	}
	if (!sl->jobs)
		snprintf(sl->dns_error, sizeof(sl->dns_error), "out of memory");
	sl->resolved = true;
}

static void slot_answer(void *arg, int rc, char (*addrs)[64], size_t n, const struct st_error *err)
{
	struct slot *sl = arg;

	if (rc) {
		snprintf(sl->dns_error, sizeof(sl->dns_error), "%s", err->msg);
		sl->dns_err = *err;
		sl->dns_answered = true;
		sl->resolved = true;
	} else {
		slot_addrs(sl->run, sl, addrs, n);
	}
	schedule(sl->run);
}

/* Look up a slot's addresses on the loop. */
static void slot_lookup(struct slot *sl)
{
	struct st_error err;

	st_out_note(1, "looking up %s", sl->host);
	if (st_dns_addrs_async(sl->run->dns, sl->host, sl->run->port, slot_answer, sl, &err)) {
		snprintf(sl->dns_error, sizeof(sl->dns_error), "%s", err.msg);
		sl->resolved = true;
	}
}

/* A new slot per MX host, or the domain's own when it has no MX, as Postfix does. */
static void mx_answer(void *arg, int rc, const struct st_mx *mx, size_t n, bool null_mx,
                      const struct st_error *err)
{
	struct probe_run *run = arg;
	size_t i;

	if (rc && !(err->cls == ST_ERR_DNS && err->sub == ST_DNS_NXDOMAIN)) {
		snprintf(run->dns_error, sizeof(run->dns_error), "%s", err->msg);
		run->dns_err = *err;
		run->dns_answered = true;
		return;
	}
	if (rc) /* no such domain: looked up as a host, as Postfix does (and --resolve) */
		n = 0;
	if (null_mx) {
		snprintf(run->dns_error, sizeof(run->dns_error),
		         "'%s' has a null MX (RFC 7505): it accepts no mail", run->domain);
		return;
	}
	run->slots = calloc(n ? n : 1, sizeof(*run->slots));
	if (!run->slots) {
		snprintf(run->dns_error, sizeof(run->dns_error), "out of memory");
		return;
	}
	run->n_slots = n ? n : 1;
	for (i = 0; i < run->n_slots; i++) {
		run->slots[i].run = run;
		snprintf(run->slots[i].host, sizeof(run->slots[i].host), "%s",
		         n ? mx[i].host : run->domain);
		if (n)
			st_out_note(1, "MX %u %s", mx[i].pref, mx[i].host);
	}
	for (i = 0; i < run->n_slots; i++)
		slot_lookup(&run->slots[i]);
	schedule(run);
}

/*
 * Probe a destination: a mail domain (mx: its MX hosts by preference, every
 * address of each, the domain's own addresses when it has no MX, a null MX
 * reported as such) or one host, whose address is given (addr) or looked up
 * (through --dns-server, on the loop). Every host and address is probed,
 * side by side, unless --first; the reports come after, in MX order.
 */
static enum st_exit probe_run(struct pr_params *p, const char *dest, unsigned port, bool mx,
                              const char *addr)
{
	struct probe_run run;
	struct st_error err = {ST_ERR_NONE, "", 0};
	enum st_exit status = ST_EXIT_OK;
	size_t i, k;
	bool any_addr = false;

	memset(&run, 0, sizeof(run));
	run.p = p;
	run.port = port;
	snprintf(run.domain, sizeof(run.domain), "%s", dest);
	run.max_running = (p->first || p->interactive || p->send_file) ? 1 : 16;
	if (p->protocols) {
		int set = st_tls_protocols_parse(p->protocols, &err);
		if (set < 0 || st_tls_priority(set, NULL, run.prio, sizeof(run.prio), &err)) {
			st_out_error("--protocols: %s", err.msg);
			return ST_EXIT_USAGE;
		}
	}
	/* the trust store, once for every address */
	run.trust = st_trust_new();
	if (!run.trust) {
		st_out_error("out of memory");
		return ST_EXIT_INTERNAL;
	}
	for (i = 0; i < (size_t)p->n_ca_files; i++)
		if (st_trust_index_file(run.trust, p->ca_files[i], &err))
			st_out_warn("%s", err.msg);
	if (p->ca_path && st_trust_add_dir(run.trust, p->ca_path, &err))
		st_out_warn("%s", err.msg);
	if (!p->n_ca_files && !p->ca_path && !p->no_system)
		st_trust_add_system(run.trust, &err);
	{
		struct st_tls_params tp;
		memset(&tp, 0, sizeof(tp));
		tp.cert_file = p->cert;
		tp.key_file = p->key;
		run.creds = st_tls_creds_new(&tp, &err);
		if (!run.creds) {
			st_trust_free(run.trust);
			st_out_error("--cert: %s", err.msg);
			return st_exit_for(err.cls);
		}
	}
	if (uv_loop_init(&run.loop) < 0) {
		st_tls_creds_free(run.creds);
		st_trust_free(run.trust);
		st_out_error("cannot start the event loop");
		return ST_EXIT_INTERNAL;
	}
	if (mx || !addr) {
		int bad = 0;
		run.dns = st_dns_new(p->dns_server, &err);
		for (i = 0; run.dns && !bad && i < p->n_resolve; i++)
			bad = st_dns_add_resolve(run.dns, p->resolve[i], &err);
		if (!run.dns || bad || st_dns_attach(run.dns, &run.loop, &err)) {
			/* a bad --dns-server or --resolve is the user's to fix */
			st_out_error("%s", err.msg);
			status = st_exit_for(err.cls);
			goto out;
		}
		st_dns_set_timeout(run.dns, (int)p->timeout_ms);
		st_dns_set_host_lookup(run.dns, p->host_lookup);
	}
	if (mx) {
		if (st_dns_mx_async(run.dns, dest, mx_answer, &run, &err))
			snprintf(run.dns_error, sizeof(run.dns_error), "%s", err.msg);
	} else {
		run.slots = calloc(1, sizeof(*run.slots));
		if (!run.slots) {
			st_out_error("out of memory");
			status = ST_EXIT_INTERNAL;
			goto out;
		}
		run.n_slots = 1;
		run.slots[0].run = &run;
		snprintf(run.slots[0].host, sizeof(run.slots[0].host), "%s", dest);
		if (addr) {
			char one[1][64];
			snprintf(one[0], sizeof(one[0]), "%s", addr);
			slot_addrs(&run, &run.slots[0], one, 1);
			schedule(&run);
		} else {
			slot_lookup(&run.slots[0]);
		}
	}
	uv_run(&run.loop, UV_RUN_DEFAULT);

	/* the reports, in MX order, after every session has ended */
	if (run.dns_error[0])
		status = dns_failure(p, dest, port, run.dns_error, &run.dns_err, run.dns_answered,
		                     true, false);
	for (i = 0; i < run.n_slots && !any_addr; i++)
		any_addr = !run.slots[i].dns_error[0];
	for (i = 0; i < run.n_slots; i++) {
		struct slot *sl = &run.slots[i];
		if (sl->dns_error[0]) {
			status = st_exit_worse(status, dns_failure(p, sl->host, port, sl->dns_error,
			                                           &sl->dns_err, sl->dns_answered,
			                                           false, any_addr));
			continue;
		}
		for (k = 0; k < sl->n_jobs; k++)
			if (sl->jobs[k].started)
				status = st_exit_worse(status, job_report(&sl->jobs[k]));
	}
out:
	for (i = 0; i < run.n_slots; i++) {
		for (k = 0; k < run.slots[i].n_jobs; k++) {
			struct job *jb = &run.slots[i].jobs[k];
			if (!jb->started)
				continue;
			st_session_result_release(&jb->sr);
			for (size_t m = 0; m < jb->n_items; m++)
				st_x509_item_free(jb->items[m]);
			if (jb->have_vr)
				st_verify_result_release(&jb->vr);
			st_buf_release(&jb->chain);
			if (jb->ran_er)
				st_session_result_release(&jb->er);
			if (jb->ran_rr)
				st_session_result_release(&jb->rr);
			st_buf_release(&jb->resume);
		}
		free(run.slots[i].jobs);
	}
	free(run.slots);
	st_dns_free(run.dns);
	uv_run(&run.loop, UV_RUN_DEFAULT); /* the resolver's handle closes */
	uv_loop_close(&run.loop);
	st_trust_free(run.trust);
	st_tls_creds_free(run.creds);
	return status;
}

static void wipe_params(struct pr_params *p)
{
	st_buf_release(&p->message);
	explicit_bzero(p->auth_password, sizeof(p->auth_password));
}

int cmd_probe(int argc, char **argv, struct st_global *g)
{
	struct pr_params p __attribute__((cleanup(wipe_params)));
	struct st_error err = {ST_ERR_NONE, "", 0};
	char host[256], ehlo[256];
	unsigned port;
	int rc;

	memset(&p, 0, sizeof(p));
	p.g = g;
	p.mode = -1;
	p.timeout_ms = 30000;
	p.level = L_VERIFY;
	p.digest = ST_DIGEST_SHA256;
	st_cmd_parse(&cmd_probe_argp, argc, argv, &p, g);

	if (p.auth_user) {
		/* no core file may carry the secret */
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		/* the secret: from a file (first line) or the environment, never argv */
		const char *env = getenv("SMTPTLS_PASSWORD");
		if (p.auth_password_file) {
			struct st_buf b;
			st_buf_init(&b, sizeof(p.auth_password) - 1);
			if (st_read_file(p.auth_password_file, &b, &err)) {
				st_out_error("%s", err.msg);
				st_buf_release(&b);
				return ST_EXIT_INPUT;
			}
			snprintf(p.auth_password, sizeof(p.auth_password), "%.*s",
			         (int)strcspn(st_buf_str(&b), "\r\n"), st_buf_str(&b));
			if (b.data)
				explicit_bzero(b.data, b.cap);
			st_buf_release(&b);
		} else if (env) {
			snprintf(p.auth_password, sizeof(p.auth_password), "%s", env);
		} else {
			st_out_error("--auth-user: no password: give --auth-password-file or set "
			             "SMTPTLS_PASSWORD");
			return ST_EXIT_USAGE;
		}
	}
	if (p.send_file) {
		st_buf_init(&p.message, ST_INPUT_MAX);
		if (st_read_file(p.send_file, &p.message, &err)) {
			st_out_error("--send: %s", err.msg);
			return ST_EXIT_INPUT;
		}
	}
	if (p.cert) {
		/* a client certificate that cannot be used is the user's error, found
		 * before any connection, not a handshake failure at every address */
		struct st_tls_params tp;
		struct st_tls *t;
		memset(&tp, 0, sizeof(tp));
		tp.cert_file = p.cert;
		tp.key_file = p.key;
		t = st_tls_new(&tp, &err);
		if (!t) {
			st_out_error("--cert: %s", err.msg);
			return st_exit_for(err.cls);
		}
		st_tls_free(t);
	}
	rc = parse_target(p.target, host, sizeof(host), &port);
	if (rc < 0) {
		fprintf(
		    stderr,
		    "smtptls probe: '%s' is not a destination (host:port, [host]:port, [host])\n"
		    "Try 'smtptls probe --help' for more information.\n",
		    p.target);
		return ST_EXIT_USAGE;
	}
	if (p.mode < 0) {
		p.mode = port == 465 ? ST_SMTP_IMPLICIT : ST_SMTP_STARTTLS;
		p.mode_from_port = true;
	}
	if (!p.ehlo) {
		if (gethostname(ehlo, sizeof(ehlo)) != 0 || !ehlo[0])
			snprintf(ehlo, sizeof(ehlo), "localhost");
		ehlo[sizeof(ehlo) - 1] = '\0';
		p.ehlo = ehlo;
	}
	if (rc == 1 || p.mx)
		return probe_run(&p, host, port, true, NULL);
	/* a host name's addresses: --resolve, else as --host-lookup says, on the loop */
	return probe_run(&p, host, port, false, is_numeric(host) ? host : NULL);
}
