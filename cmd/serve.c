/* serve.c: the serve command: an SMTP server for tests, with TLS, relay control, a Maildir and a JSON log */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <argp.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "address.h"
#include "auth.h"
#include "cmd.h"
#include "dns.h"
#include "outq.h"
#include "http.h"
#include "output.h"
#include "policy.h"
#include "pool.h"
#include "queue.h"
#include "server.h"
#include "verify.h"
#include "x509.h"

#define LIST_MAX 64
#define SELF_MAX 256

struct net {
	int family;
	unsigned char addr[16];
	unsigned bits;
};

enum restriction {
	R_PERMIT_MYNETWORKS,
	R_PERMIT_SASL,
	R_PERMIT_TLS_CLIENTCERTS,
	R_PERMIT_TLS_ALL_CLIENTCERTS,
	R_REJECT_UNAUTH_DESTINATION,
	R_REJECT,
};

static const char *const restriction_names[] = {
    "permit_mynetworks",          "permit_sasl_authenticated", "permit_tls_clientcerts",
    "permit_tls_all_clientcerts", "reject_unauth_destination", "reject"};

struct sv_params {
	struct st_global *g;
	struct st_listen listen[LIST_MAX];
	size_t n_listen;
	const char *hostname;
	const char *cert, *key;
	const char *self_signed; /* names, comma separated; NULL: the default names */
	const char *ca_out;
	const char *maildir;
	const char *log;
	const char *ready_file;
	bool encrypt;
	size_t max_size;
	long exit_after;
	bool ask_ccert;
	const char *relay_clientcerts;
	enum st_digest fp_digest;
	char *domains[LIST_MAX];
	size_t n_domains;
	struct net nets[LIST_MAX];
	size_t n_nets;
	enum restriction restrictions[16];
	size_t n_restrictions;
	long idle_timeout;
	long min_data_rate;
	const char *auth_file;
	bool auth_plaintext;
	bool req_ccert;
	const char *ccert_ca[8];
	size_t n_ccert_ca;
	const char *protocols, *ciphers;
	long max_conns, max_per_client;
	const char *pid_file;
	struct fault {
		char stage[12];
		int code;
		int percent;
		char spec[40];
	} faults[16];
	size_t n_faults;
	/* onward relay */
	const char *relayhost;
	bool relay_mx;
	const char *queue_dir;
	const char *policies[ST_POLICY_TABLES_MAX];
	size_t n_policies;
	enum st_level tls_level;
	const char *relay_ca[8];
	size_t n_relay_ca;
	const char *client_cert, *client_key;
	const char *dns_server;
	int host_lookup; /* ST_HOST_LOOKUP_* (0: dns) */
	const char *resolve[LIST_MAX];
	size_t n_resolve;
	long backoff_min, backoff_max, queue_lifetime, relay_timeout;
	long relay_concurrency;
	long workers; /* event loops, one thread each */
	/* client certificate revocation */
	const char *crl_files[LIST_MAX];
	size_t n_crl_files;
	bool ocsp, require_revocation;
	long fetch_timeout_ms, ocsp_cache_s;
	const char *user; /* --user: drop to this user once listening */
};

enum {
	OPT_LISTEN = 0x500,
	OPT_HOSTNAME,
	OPT_CERT,
	OPT_KEY,
	OPT_SELF_SIGNED,
	OPT_CA_OUT,
	OPT_MAILDIR,
	OPT_LOG,
	OPT_READY_FILE,
	OPT_LEVEL,
	OPT_MAX_SIZE,
	OPT_EXIT_AFTER,
	OPT_ASK_CCERT,
	OPT_RELAY_CLIENTCERTS,
	OPT_FP_DIGEST,
	OPT_DOMAINS,
	OPT_MYNETWORKS,
	OPT_RESTRICTIONS,
	OPT_IDLE_TIMEOUT,
	OPT_MIN_DATA_RATE,
	OPT_AUTH_FILE,
	OPT_AUTH_PLAINTEXT,
	OPT_REQ_CCERT,
	OPT_CCERT_CA,
	OPT_PROTOCOLS,
	OPT_CIPHERS,
	OPT_MAX_CONNS,
	OPT_MAX_PER_CLIENT,
	OPT_PID_FILE,
	OPT_FAULT,
	OPT_RELAYHOST,
	OPT_RELAY_MX,
	OPT_QUEUE_DIR,
	OPT_TLS_POLICY,
	OPT_TLS_LEVEL,
	OPT_RELAY_CA,
	OPT_CLIENT_CERT,
	OPT_CLIENT_KEY,
	OPT_DNS_SERVER,
	OPT_HOST_LOOKUP,
	OPT_RESOLVE,
	OPT_BACKOFF,
	OPT_QUEUE_LIFETIME,
	OPT_RELAY_TIMEOUT,
	OPT_RELAY_CONCURRENCY,
	OPT_WORKERS,
	OPT_CRL_FILE,
	OPT_OCSP,
	OPT_REQUIRE_REV,
	OPT_FETCH_TIMEOUT,
	OPT_OCSP_CACHE,
	OPT_USER,
};

static const struct argp_option sv_options[] = {
    {NULL, 0, NULL, 0, "Listeners and TLS:", 1},
    {"listen", OPT_LISTEN, "[ADDR:]PORT[/MODE]", 0,
     "Listen there; MODE smtp (STARTTLS offered, the default), submission (STARTTLS "
     "required) or smtps (implicit TLS); port 0 picks a free one. Repeatable. Default: "
     "127.0.0.1:2525/smtp and 127.0.0.1:2465/smtps",
     1},
    {"hostname", OPT_HOSTNAME, "NAME", 0, "The server's name (default: this machine's)", 1},
    {"cert", OPT_CERT, "FILE", 0, "The server's certificate (the chain may follow it)", 1},
    {"key", OPT_KEY, "FILE", 0, "The server's private key", 1},
    {"self-signed", OPT_SELF_SIGNED, "NAMES", OPTION_ARG_OPTIONAL,
     "A throwaway CA and a certificate for NAMES (comma separated; default: the host name, "
     "localhost, 127.0.0.1, ::1), made at start: the default without --cert",
     1},
    {"ca-out", OPT_CA_OUT, "FILE", 0, "Write the throwaway CA there, for clients to trust", 1},
    {"security-level", OPT_LEVEL, "LEVEL", 0,
     "may (default) or encrypt: 530 for MAIL and the rest before STARTTLS, as Postfix", 1},
    {"ask-ccert", OPT_ASK_CCERT, NULL, 0, "Ask TLS clients for a certificate", 1},
    {"req-ccert", OPT_REQ_CCERT, NULL, 0,
     "Require a client certificate that --ccert-ca-file trusts (implies --security-level "
     "encrypt): else 421 4.7.1, as Postfix's smtpd_tls_req_ccert",
     1},
    {"ccert-ca-file", OPT_CCERT_CA, "FILE", 0,
     "Trust client certificates issued by the CAs of FILE (repeatable)", 1},
    {"tls-protocols", OPT_PROTOCOLS, "LIST", 0,
     "TLS protocols in Postfix syntax (>=TLSv1.2, <=TLSv1.2, !TLSv1.3 ...)", 1},
    {"tls-ciphers", OPT_CIPHERS, "GRADE", 0, "Postfix cipher grade: high, medium (default), null",
     1},
    {NULL, 0, NULL, 0, "Relay control (Postfix semantics):", 2},
    {"relay-restrictions", OPT_RESTRICTIONS, "LIST", 0,
     "In order: permit_mynetworks, permit_sasl_authenticated, permit_tls_clientcerts, "
     "reject_unauth_destination, reject (default: permit_mynetworks, "
     "permit_sasl_authenticated, reject_unauth_destination)",
     2},
    {"mynetworks", OPT_MYNETWORKS, "CIDR...", 0,
     "Networks permit_mynetworks trusts (comma separated; default none)", 2},
    {"domains", OPT_DOMAINS, "DOMAIN...", 0,
     "Final destinations: their recipients are always accepted (comma separated)", 2},
    {"relay-clientcerts", OPT_RELAY_CLIENTCERTS, "FILE", 0,
     "Fingerprints permit_tls_clientcerts relays for, in Postfix relay_clientcerts format", 2},
    {"fingerprint-digest", OPT_FP_DIGEST, "NAME", 0,
     "Digest of those fingerprints (default sha256)", 2},
    {"auth-file", OPT_AUTH_FILE, "FILE", 0,
     "Offer AUTH PLAIN and LOGIN (after TLS) to the users of FILE: 'user:hash' lines, "
     "crypt(3) hashes (yescrypt, sha512-crypt...)",
     2},
    {"auth-plaintext", OPT_AUTH_PLAINTEXT, NULL, 0, "Offer AUTH before TLS too", 2},
    {NULL, 0, NULL, 0, "Mail and log:", 3},
    {"maildir", OPT_MAILDIR, "DIR", 0, "Deliver to this Maildir (default ./smtptls-mail)", 3},
    {"log", OPT_LOG, "FILE", 0, "One JSON object per line and event ('-': standard output)", 3},
    {"ready-file", OPT_READY_FILE, "FILE", 0, "Write the ready line there too", 3},
    {"max-size", OPT_MAX_SIZE, "BYTES", 0, "The message size limit (default 10240000)", 3},
    {"exit-after", OPT_EXIT_AFTER, "N", 0, "Stop after N messages", 3},
    {"idle-timeout", OPT_IDLE_TIMEOUT, "SECONDS", 0,
     "Time limit for each command line, the TLS handshake and the last replies; DATA's "
     "first deadline (default 300, Postfix's smtpd_timeout)",
     3},
    {"min-data-rate", OPT_MIN_DATA_RATE, "BYTES", 0,
     "DATA's deadline grows by one second per BYTES received, at most to --idle-timeout "
     "(default 500, Postfix's smtpd_min_data_rate)",
     3},
    {"workers", OPT_WORKERS, "N", 0,
     "Event loops, each on a thread of its own, taking connections from the same listeners "
     "(default: one per CPU, at most 64)",
     3},
    {"max-connections", OPT_MAX_CONNS, "N", 0, "Connections at once (default 1000)", 3},
    {"max-per-client", OPT_MAX_PER_CLIENT, "N", 0,
     "Connections at once from one address (default 50)", 3},
    {"pid-file", OPT_PID_FILE, "FILE", 0, "Write the process id there (removed at exit)", 3},
    {"fault", OPT_FAULT, "STAGE:CODE[:PERCENT]", 0,
     "Answer CODE at STAGE (connect, helo, starttls, auth, mail, rcpt, data), in PERCENT of "
     "the cases (default 100): to test clients' retries (repeatable)",
     3},
    {NULL, 0, NULL, 0,
     "Onward relay (without --relayhost or --relay-mx, mail for other domains is kept in "
     "the Maildir):",
     4},
    {"relayhost", OPT_RELAYHOST, "NEXTHOP", 0,
     "Relay mail for other domains there: [host]:port or [host] (no MX lookup), "
     "domain[:port] (its MX hosts), as Postfix's relayhost",
     4},
    {"relay-mx", OPT_RELAY_MX, NULL, 0,
     "Relay mail for other domains to the MX hosts of each recipient's domain", 4},
    {"queue-dir", OPT_QUEUE_DIR, "DIR", 0,
     "Messages wait for relay there, on disk (default ./smtptls-queue)", 4},
    {"tls-policy", OPT_TLS_POLICY, "TABLE", 0,
     "A Postfix smtp_tls_policy_maps table (hash:FILE, texthash:FILE, proxy:..., inline:{...}; "
     "its source text is read, as policy reads it); repeatable, searched in order",
     4},
    {"tls-level", OPT_TLS_LEVEL, "LEVEL", 0,
     "smtp_tls_security_level without a policy entry: none, may (default), encrypt, "
     "fingerprint, verify, secure",
     4},
    {"relay-ca-file", OPT_RELAY_CA, "FILE", 0,
     "CAs that verify and secure trust for next-hop servers (repeatable)", 4},
    {"client-cert", OPT_CLIENT_CERT, "FILE", 0, "A client certificate for next-hop servers", 4},
    {"client-key", OPT_CLIENT_KEY, "FILE", 0, "Its private key", 4},
    {"dns-server", OPT_DNS_SERVER, "ADDR[:PORT]", 0,
     "Ask this DNS server for MX and addresses, not the one of resolv.conf", 4},
    {"host-lookup", OPT_HOST_LOOKUP, "METHODS", 0,
     "Where next-hop host addresses come from, as Postfix's smtp_host_lookup: dns (the "
     "default), native (the system's resolver: /etc/hosts, nsswitch.conf) or dns,native; MX "
     "records always come from DNS",
     4},
    {"resolve", OPT_RESOLVE, "HOST:PORT:ADDR[,ADDR...]", 0,
     "Relay to ADDR for HOST and PORT, without asking DNS, MX hosts included (repeatable, as "
     "curl has it)",
     4},
    {"backoff", OPT_BACKOFF, "MIN[:MAX]", 0,
     "Seconds to the first retry of a deferred message, doubled up to MAX (default 10:300)", 4},
    {"queue-lifetime", OPT_QUEUE_LIFETIME, "SECONDS", 0,
     "A message still deferred after this long expires and is bounced (default 432000, 5 "
     "days, as Postfix)",
     4},
    {"relay-timeout", OPT_RELAY_TIMEOUT, "SECONDS", 0,
     "Each step of a relay session: connect, every reply, the handshake (default 30)", 4},
    {"relay-concurrency", OPT_RELAY_CONCURRENCY, "N", 0, "Messages relayed at once (default 10)",
     4},
    {NULL, 0, NULL, 0, "Client certificate revocation (needs --ccert-ca-file):", 5},
    {"crl-file", OPT_CRL_FILE, "FILE", 0,
     "A client certificate revoked by a CRL of FILE (PEM or DER, read at start) is not "
     "trusted (repeatable)",
     5},
    {"ocsp", OPT_OCSP, NULL, 0,
     "Ask the OCSP responder named in the client's certificates (off the event loop); "
     "revoked: not trusted",
     5},
    {"require-revocation", OPT_REQUIRE_REV, NULL, 0,
     "A revocation status that cannot be had (responder down, no CRL of the issuer) makes "
     "the certificate not trusted; without it the certificate stays trusted and the log "
     "says why",
     5},
    {"fetch-timeout", OPT_FETCH_TIMEOUT, "SECONDS", 0,
     "Time limit of each OCSP request (default 10)", 5},
    {"ocsp-cache", OPT_OCSP_CACHE, "SECONDS", 0,
     "Keep good and revoked OCSP answers in memory until their nextUpdate, at most SECONDS "
     "(default 600; 0: ask every time)",
     5},
    {NULL, 0, NULL, 0, "Privileges:", 6},
    {"user", OPT_USER, "NAME", 0,
     "Started as root: bind the listeners, then run as NAME (its uid, gid, no other groups)", 6},
    {NULL, 0, NULL, 0, NULL, 0},
};

const struct st_optvals cmd_serve_values[] = {
    {"security-level", "may encrypt"},
    {"cert", "@file"},
    {"key", "@file"},
    {"ca-out", "@file"},
    {"maildir", "@dir"},
    {"log", "@file"},
    {"ready-file", "@file"},
    {"relay-clientcerts", "@file"},
    {"auth-file", "@file"},
    {"ccert-ca-file", "@file"},
    {"pid-file", "@file"},
    {"queue-dir", "@dir"},
    {"tls-policy", "@file"},
    {"tls-level", "none may encrypt fingerprint verify secure"},
    {"relay-ca-file", "@file"},
    {"client-cert", "@file"},
    {"client-key", "@file"},
    {"crl-file", "@file"},
    {"tls-ciphers", "high medium null"},
    {"host-lookup", "dns native dns,native"},
    {"fingerprint-digest", "md5 sha1 sha224 sha256 sha384 sha512"},
    {"relay-restrictions", "permit_mynetworks permit_sasl_authenticated permit_tls_clientcerts "
                           "permit_tls_all_clientcerts reject_unauth_destination reject"},
    {NULL, NULL},
};

static int parse_listen(const char *arg, struct st_listen *l)
{
	char buf[128], *mode, *port, *end;
	long v;

	if (strlen(arg) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", arg);
	l->mode = ST_LISTEN_SMTP;
	mode = strrchr(buf, '/');
	if (mode) {
		*mode++ = '\0';
		if (!strcmp(mode, "smtps"))
			l->mode = ST_LISTEN_SMTPS;
		else if (!strcmp(mode, "submission"))
			l->mode = ST_LISTEN_SUBMISSION;
		else if (strcmp(mode, "smtp"))
			return -1;
	}
	snprintf(l->addr, sizeof(l->addr), "127.0.0.1");
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');
		if (!close || close[1] != ':')
			return -1;
		*close = '\0';
		if (strlen(buf + 1) >= sizeof(l->addr))
			return -1;
		snprintf(l->addr, sizeof(l->addr), "%.63s", buf + 1);
		port = close + 2;
	} else if ((port = strrchr(buf, ':'))) {
		*port++ = '\0';
		if (strlen(buf) >= sizeof(l->addr))
			return -1;
		snprintf(l->addr, sizeof(l->addr), "%.63s", buf);
	} else {
		port = buf;
	}
	v = strtol(port, &end, 10);
	if (!*port || *end || v < 0 || v > 65535)
		return -1;
	l->port = (unsigned)v;
	{
		unsigned char b[16];
		if (inet_pton(strchr(l->addr, ':') ? AF_INET6 : AF_INET, l->addr, b) != 1)
			return -1;
	}
	return 0;
}

static int parse_net(const char *s, struct net *n)
{
	char buf[80], *slash, *end;
	long bits;

	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	n->family = strchr(buf, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(n->family, buf, n->addr) != 1)
		return -1;
	bits = n->family == AF_INET ? 32 : 128;
	if (slash) {
		long b = strtol(slash, &end, 10);
		if (!*slash || *end || b < 0 || b > bits)
			return -1;
		bits = b;
	}
	n->bits = (unsigned)bits;
	return 0;
}

/* Split a comma or space separated list, calling add for each word; -1 when it refuses one. */
static int each_word(const char *list, int (*add)(void *ctx, const char *w), void *ctx)
{
	char buf[4096], *w, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (w = strtok_r(buf, ", \t", &save); w; w = strtok_r(NULL, ", \t", &save))
		if (add(ctx, w))
			return -1;
	return 0;
}

static int add_domain(void *ctx, const char *w)
{
	struct sv_params *p = ctx;

	if (p->n_domains >= LIST_MAX)
		return -1;
	p->domains[p->n_domains++] = strdup(w);
	return 0;
}

static int add_net(void *ctx, const char *w)
{
	struct sv_params *p = ctx;

	if (p->n_nets >= LIST_MAX || parse_net(w, &p->nets[p->n_nets]))
		return -1;
	p->n_nets++;
	return 0;
}

static int add_restriction(void *ctx, const char *w)
{
	struct sv_params *p = ctx;
	size_t i;

	for (i = 0; i < sizeof(restriction_names) / sizeof(restriction_names[0]); i++)
		if (!strcmp(w, restriction_names[i]) && p->n_restrictions < 16) {
			p->restrictions[p->n_restrictions++] = (enum restriction)i;
			return 0;
		}
	return -1;
}

static error_t sv_parse(int key, char *arg, struct argp_state *state)
{
	struct sv_params *p = state->input;
	char *end;
	long long v;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = p->g;
		break;
	case OPT_LISTEN:
		if (p->n_listen >= LIST_MAX || parse_listen(arg, &p->listen[p->n_listen]))
			st_usage_error(state,
			               "--listen: '%s' is not [ADDR:]PORT[/smtp|submission|smtps] "
			               "(ADDR numeric, IPv6 in brackets)",
			               arg);
		p->n_listen++;
		break;
	case OPT_HOSTNAME:
		if (!*arg || strlen(arg) > 255 || strpbrk(arg, " \t\r\n"))
			st_usage_error(state, "--hostname: '%s' is not a host name", arg);
		p->hostname = arg;
		break;
	case OPT_CERT:
		p->cert = arg;
		break;
	case OPT_KEY:
		p->key = arg;
		break;
	case OPT_SELF_SIGNED:
		p->self_signed = arg ? arg : "";
		break;
	case OPT_CA_OUT:
		p->ca_out = arg;
		break;
	case OPT_MAILDIR:
		if (!*arg || strlen(arg) > 3800)
			st_usage_error(state,
			               "--maildir: '%.40s...' is not a usable directory name", arg);
		p->maildir = arg;
		break;
	case OPT_LOG:
		p->log = arg;
		break;
	case OPT_READY_FILE:
		p->ready_file = arg;
		break;
	case OPT_LEVEL:
		if (strcmp(arg, "may") && strcmp(arg, "encrypt"))
			st_usage_error(state, "--security-level: '%s' is not may or encrypt", arg);
		p->encrypt = !strcmp(arg, "encrypt");
		break;
	case OPT_MAX_SIZE:
		v = strtoll(arg, &end, 10);
		if (!*arg || *end || v < 1 || v > (1LL << 30))
			st_usage_error(state, "--max-size: '%s' is not 1 to 1073741824 bytes", arg);
		p->max_size = (size_t)v;
		break;
	case OPT_EXIT_AFTER:
		v = strtoll(arg, &end, 10);
		if (!*arg || *end || v < 1)
			st_usage_error(state, "--exit-after: '%s' is not a number of messages",
			               arg);
		p->exit_after = (long)v;
		break;
	case OPT_IDLE_TIMEOUT:
		v = strtoll(arg, &end, 10);
		if (!*arg || *end || v < 1 || v > 86400)
			st_usage_error(state, "--idle-timeout: '%s' is not 1-86400 seconds", arg);
		p->idle_timeout = (long)v;
		break;
	case OPT_MIN_DATA_RATE:
		v = strtoll(arg, &end, 10);
		if (!*arg || *end || v < 1 || v > 1000000000)
			st_usage_error(state, "--min-data-rate: '%s' is not 1-1000000000 bytes",
			               arg);
		p->min_data_rate = (long)v;
		break;
	case OPT_ASK_CCERT:
		p->ask_ccert = true;
		break;
	case OPT_AUTH_FILE:
		p->auth_file = arg;
		break;
	case OPT_REQ_CCERT:
		p->req_ccert = p->ask_ccert = p->encrypt = true;
		break;
	case OPT_PROTOCOLS:
		p->protocols = arg;
		break;
	case OPT_CIPHERS:
		p->ciphers = arg;
		break;
	case OPT_MAX_CONNS:
	case OPT_MAX_PER_CLIENT:
		v = strtoll(arg, &end, 10);
		if (!*arg || *end || v < 1 || v > 1000000)
			st_usage_error(state, "--%s: '%s' is not 1 to 1000000",
			               key == OPT_MAX_CONNS ? "max-connections" : "max-per-client",
			               arg);
		if (key == OPT_MAX_CONNS)
			p->max_conns = (long)v;
		else
			p->max_per_client = (long)v;
		break;
	case OPT_PID_FILE:
		p->pid_file = arg;
		break;
	case OPT_FAULT: {
		static const char *const stages[] = {"connect", "helo", "starttls", "auth",
		                                     "mail",    "rcpt", "data"};
		struct fault *f = &p->faults[p->n_faults];
		char stage[16];
		int code, pct = 100, n = 0;
		size_t k;
		if (p->n_faults >= 16 || strlen(arg) >= sizeof(f->spec) ||
		    (sscanf(arg, "%11[a-z]:%d%n:%d%n", stage, &code, &n, &pct, &n) < 2) || arg[n] ||
		    code < 400 || code > 599 || pct < 1 || pct > 100)
			st_usage_error(state,
			               "--fault: '%s' is not STAGE:CODE[:PERCENT] (CODE 400-599, "
			               "PERCENT 1-100)",
			               arg);
		for (k = 0; k < sizeof(stages) / sizeof(stages[0]); k++)
			if (!strcmp(stage, stages[k]))
				break;
		if (k == sizeof(stages) / sizeof(stages[0]))
			st_usage_error(
			    state,
			    "--fault: '%s' is no stage (connect, helo, starttls, auth, mail, "
			    "rcpt, data)",
			    stage);
		snprintf(f->stage, sizeof(f->stage), "%.11s", stage);
		f->code = code;
		f->percent = pct;
		snprintf(f->spec, sizeof(f->spec), "%s", arg);
		p->n_faults++;
		break;
	}
	case OPT_CCERT_CA:
		if (p->n_ccert_ca >= 8)
			st_usage_error(state, "--ccert-ca-file: at most 8 files");
		p->ccert_ca[p->n_ccert_ca++] = arg;
		break;
	case OPT_AUTH_PLAINTEXT:
		p->auth_plaintext = true;
		break;
	case OPT_RELAY_CLIENTCERTS:
		p->relay_clientcerts = arg;
		break;
	case OPT_FP_DIGEST:
		p->fp_digest = st_parse_digest(state, "--fingerprint-digest", arg);
		break;
	case OPT_DOMAINS:
		if (each_word(arg, add_domain, p))
			st_usage_error(state, "--domains: at most %d domains", LIST_MAX);
		break;
	case OPT_MYNETWORKS:
		if (each_word(arg, add_net, p))
			st_usage_error(state,
			               "--mynetworks: '%s' is not a list of addresses or CIDR "
			               "networks",
			               arg);
		break;
	case OPT_RESTRICTIONS:
		p->n_restrictions = 0;
		if (each_word(arg, add_restriction, p) || !p->n_restrictions)
			st_usage_error(state,
			               "--relay-restrictions: '%s' is not a list of "
			               "permit_mynetworks, permit_sasl_authenticated, "
			               "permit_tls_clientcerts, reject_unauth_destination, reject",
			               arg);
		break;
	case OPT_RELAYHOST:
		if (!*arg || strlen(arg) > 300 || strpbrk(arg, " \t\r\n,"))
			st_usage_error(
			    state, "--relayhost: '%s' is not [host]:port, [host] or domain", arg);
		p->relayhost = arg;
		break;
	case OPT_RELAY_MX:
		p->relay_mx = true;
		break;
	case OPT_QUEUE_DIR:
		p->queue_dir = arg;
		break;
	case OPT_TLS_POLICY:
		if (p->n_policies >= ST_POLICY_TABLES_MAX)
			st_usage_error(state, "--tls-policy: at most %d tables",
			               ST_POLICY_TABLES_MAX);
		p->policies[p->n_policies++] = arg;
		break;
	case OPT_TLS_LEVEL:
		if (st_level_parse(arg, &p->tls_level) || p->tls_level == ST_LEVEL_DANE ||
		    p->tls_level == ST_LEVEL_DANE_ONLY)
			st_usage_error(
			    state,
			    "--tls-level: '%s' is not none, may, encrypt, fingerprint, verify "
			    "or secure",
			    arg);
		break;
	case OPT_RELAY_CA:
		if (p->n_relay_ca >= 8)
			st_usage_error(state, "--relay-ca-file: at most 8 files");
		p->relay_ca[p->n_relay_ca++] = arg;
		break;
	case OPT_CLIENT_CERT:
		p->client_cert = arg;
		break;
	case OPT_CLIENT_KEY:
		p->client_key = arg;
		break;
	case OPT_DNS_SERVER:
		p->dns_server = arg;
		break;
	case OPT_HOST_LOOKUP:
		p->host_lookup = st_parse_host_lookup(state, arg);
		break;
	case OPT_RESOLVE:
		st_parse_resolve(state, arg, p->resolve, &p->n_resolve, LIST_MAX);
		break;
	case OPT_BACKOFF:
		v = strtoll(arg, &end, 10);
		if (end == arg || v < 1 || v > 86400 || (*end && *end != ':'))
			st_usage_error(
			    state, "--backoff: '%s' is not MIN[:MAX] seconds (1 to 86400)", arg);
		p->backoff_min = p->backoff_max = (long)v;
		if (*end == ':') {
			const char *m = end + 1;
			v = strtoll(m, &end, 10);
			if (end == m || *end || v < p->backoff_min || v > 86400)
				st_usage_error(
				    state, "--backoff: '%s' is not MIN[:MAX] seconds, MAX >= MIN",
				    arg);
			p->backoff_max = (long)v;
		}
		break;
	case OPT_WORKERS:
		v = strtoll(arg, &end, 10);
		if (end == arg || *end || v < 1 || v > 64)
			st_usage_error(state, "--workers: '%s' is not a number from 1 to 64", arg);
		p->workers = (long)v;
		break;
	case OPT_QUEUE_LIFETIME:
	case OPT_RELAY_TIMEOUT:
	case OPT_RELAY_CONCURRENCY:
		v = strtoll(arg, &end, 10);
		if (end == arg || *end || v < (key == OPT_QUEUE_LIFETIME ? 0 : 1) ||
		    v > (key == OPT_QUEUE_LIFETIME  ? 100000000
		         : key == OPT_RELAY_TIMEOUT ? 86400
		                                    : 10000))
			st_usage_error(state, "--%s: '%s' is not a number in range",
			               key == OPT_QUEUE_LIFETIME  ? "queue-lifetime"
			               : key == OPT_RELAY_TIMEOUT ? "relay-timeout"
			                                          : "relay-concurrency",
			               arg);
		if (key == OPT_QUEUE_LIFETIME)
			p->queue_lifetime = (long)v;
		else if (key == OPT_RELAY_TIMEOUT)
			p->relay_timeout = (long)v;
		else
			p->relay_concurrency = (long)v;
		break;
	case OPT_CRL_FILE:
		if (p->n_crl_files >= LIST_MAX)
			st_usage_error(state, "--crl-file: at most %d files", LIST_MAX);
		p->crl_files[p->n_crl_files++] = arg;
		break;
	case OPT_OCSP:
		p->ocsp = true;
		break;
	case OPT_REQUIRE_REV:
		p->require_revocation = true;
		break;
	case OPT_FETCH_TIMEOUT:
	case OPT_OCSP_CACHE:
		v = strtoll(arg, &end, 10);
		/* --fetch-timeout as verify's */
		if (!*arg || *end || v < (key == OPT_OCSP_CACHE ? 0 : 1) ||
		    v > (key == OPT_OCSP_CACHE ? 86400 : 600))
			st_usage_error(state, "--%s: '%s' is not %s seconds",
			               key == OPT_OCSP_CACHE ? "ocsp-cache" : "fetch-timeout", arg,
			               key == OPT_OCSP_CACHE ? "0-86400" : "1-600");
		if (key == OPT_OCSP_CACHE)
			p->ocsp_cache_s = (long)v;
		else
			p->fetch_timeout_ms = (long)v * 1000;
		break;
	case OPT_USER:
		p->user = arg;
		break;
	case ARGP_KEY_ARG: {
		const char *o = st_optional_value_before(arg);
		if (o)
			st_usage_error(state, "serve takes no arguments (got '%s'); did you mean --%s=%s?",
			               arg, o, arg);
		st_usage_error(state, "serve takes no arguments (got '%s')", arg);
	}
		break;
	case ARGP_KEY_END:
		if (!!p->cert != !!p->key)
			st_usage_error(state, "--cert and --key go together");
		if (p->cert && p->self_signed)
			st_usage_error(state, "--self-signed or --cert, not both");
		if (p->ca_out && p->cert)
			st_usage_error(state, "--ca-out goes with --self-signed");
		if (p->req_ccert && !p->n_ccert_ca)
			st_usage_error(state, "--req-ccert needs --ccert-ca-file");
		if (p->auth_plaintext && !p->auth_file)
			st_usage_error(state, "--auth-plaintext needs --auth-file");
		if (p->relayhost && p->relay_mx)
			st_usage_error(state, "--relayhost or --relay-mx, not both");
		if (!!p->client_cert != !!p->client_key)
			st_usage_error(state, "--client-cert and --client-key go together");
		if (!p->relayhost && !p->relay_mx &&
		    (p->n_policies || p->n_relay_ca || p->client_cert || p->queue_dir ||
		     p->dns_server || p->host_lookup || p->n_resolve))
			st_usage_error(state,
			               "--tls-policy, --relay-ca-file, --client-cert, --queue-dir, "
			               "--dns-server, --host-lookup and --resolve are for onward "
			               "relay: --relayhost or --relay-mx");
		if ((p->n_crl_files || p->ocsp) && !p->n_ccert_ca)
			st_usage_error(state,
			               "--%s needs --ccert-ca-file: revocation is checked on "
			               "the chain it trusts",
			               p->ocsp ? "ocsp" : "crl-file");
		if (p->require_revocation && !p->n_crl_files && !p->ocsp)
			st_usage_error(state, "--require-revocation needs --crl-file or --ocsp");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

const struct argp cmd_serve_argp = {
    sv_options,
    sv_parse,
    "",
    "Run an SMTP server for tests: STARTTLS and implicit TLS, client certificates, relay by "
    "certificate fingerprint as Postfix's permit_tls_clientcerts, Postfix's reply texts, a "
    "Maildir, a JSON log. Prints 'ready MODE ADDR:PORT...' when it listens.\v"
    "Exit status: 0 after SIGTERM/SIGINT or --exit-after, 2 usage, 3 unusable files, 10 "
    "internal. See smtptls-serve(1).",
    st_global_children,
    NULL,
    NULL};

/* ---- the running server ---- */

struct sv;

struct worker {
	struct sv *v;
	uv_loop_t loop;
	struct st_server *server;
	uv_async_t stop;
	uv_thread_t thread;
	bool running;
};

struct sv {
	struct sv_params *p;
	uv_loop_t loop;
	struct st_server *server;
	uv_signal_t sigterm, sigint, sighup;
	FILE *log;
	char tmpdir[64]; /* the throwaway chain and key */
	char **fps;      /* relay_clientcerts fingerprints */
	struct st_auth_db *auth;
	struct st_trust *ccert_trust;
	size_t n_fps;
	long messages;
	unsigned long seq;
	bool stopping;
	int stops_pending; /* the servers and the relay queue, each stopping */
	/* other event loops, each on its thread, over the same listeners */
	struct worker *workers;
	size_t n_workers;
	/* what the threads share, under mu: the log, the message count, and what they ask of
	 * the main loop through wake (a stop, messages to relay, a worker that stopped) */
	uv_mutex_t mu;
	uv_async_t wake;
	bool stop_asked;
	char **to_relay;
	size_t n_to_relay;
	unsigned workers_stopped;
	/* onward relay */
	struct st_outq *outq;
	struct st_dns *dns;
	struct st_trust *relay_trust;
	struct st_tls_creds *client_creds;
	struct st_policy_tables tables;
	char self[SELF_MAX][80]; /* our listeners' addresses and ports */
	const char *self_ptr[SELF_MAX];
	size_t n_self;
	struct st_crl_set *crls;          /* --crl-file, read at start */
	struct st_ocsp_cache *ocsp_cache; /* --ocsp-cache */
	bool drop;                        /* --user, as root: become uid, gid once listening */
	uid_t uid;
	gid_t gid;
};

/* One JSON line, flushed: tests read the log while we run. */
static void log_event(struct sv *v, json_t *o)
{
	char *s;
	struct timespec ts;
	struct tm tm;
	char when[40];

	if (!v->log) {
		json_decref(o);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm); /* each thread its own: gmtime's buffer is shared */
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03ldZ", ts.tv_nsec / 1000000);
	json_object_set_new(o, "time", json_string(when));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s) {
		/* one whole line at a time, whichever thread logs */
		uv_mutex_lock(&v->mu);
		fprintf(v->log, "%s\n", s);
		fflush(v->log);
		uv_mutex_unlock(&v->mu);
		free(s);
	}
	json_decref(o);
}

static json_t *conn_json(const char *event, const struct st_conn_info *i)
{
	return json_pack("{s:s, s:I, s:s, s:i}", "event", event, "conn", (json_int_t)i->id,
	                 "client", i->peer, "port", (int)i->peer_port);
}

static bool in_nets(const struct sv_params *p, const char *peer)
{
	unsigned char a[16];
	size_t i;
	int fam = strchr(peer, ':') ? AF_INET6 : AF_INET;

	if (inet_pton(fam, peer, a) != 1)
		return false;
	for (i = 0; i < p->n_nets; i++) {
		const struct net *n = &p->nets[i];
		unsigned full = n->bits / 8, rest = n->bits % 8;
		if (n->family != fam || memcmp(a, n->addr, full))
			continue;
		if (rest && ((a[full] ^ n->addr[full]) & (0xff << (8 - rest))))
			continue;
		return true;
	}
	return false;
}

/* One of our --domains ("example.test." is example.test, as Postfix takes it). */
static bool our_domain(void *arg, const char *d, size_t len)
{
	const struct sv_params *p = arg;
	size_t i;

	if (len && d[len - 1] == '.')
		len--;
	for (i = 0; i < p->n_domains; i++)
		if (strlen(p->domains[i]) == len && !strncasecmp(d, p->domains[i], len))
			return true;
	return false;
}

/*
 * rcpt as Postfix's trivial-rewrite resolves it: while its domain is ours, what the
 * local part says (user%host, host!user, user@host) is the address; a local part
 * alone is ours, as Postfix's local domain. Into out, and whether it is ours; -1
 * when the address it comes to has a bad domain ("Bad ... address syntax").
 */
static int resolve_rcpt(const struct sv_params *p, const char *rcpt, bool utf8, char *out,
                        size_t size, bool *ours)
{
	return st_addr_resolve(rcpt, our_domain, (void *)p, utf8, out, size, ours);
}

static bool final_destination(const struct sv_params *p, const char *rcpt)
{
	char fin[ST_ADDR_MAX];
	bool ours;

	return resolve_rcpt(p, rcpt, true, fin, sizeof(fin), &ours) == 0 && ours;
}

/* An address (internal form) as it goes on the wire, its local part quoted when it
 * needs quotes, as Postfix's smtp client sends it: allocated, NULL when out of memory. */
static char *wire_address(const char *addr)
{
	char wire[ST_ADDR_MAX * 2];

	return strdup(st_addr_quote(addr, wire, sizeof(wire)) ? addr : wire);
}

/* The address a recipient that is not ours is relayed to (resolved, on the wire):
 * allocated, NULL when out of memory. */
static char *relay_address(const struct sv_params *p, const char *rcpt)
{
	char fin[ST_ADDR_MAX];
	bool ours;

	return wire_address(resolve_rcpt(p, rcpt, true, fin, sizeof(fin), &ours) ? rcpt : fin);
}

/* The client certificate's public-key, then certificate, fingerprint in the table. */
static bool ccert_listed(const struct sv *v, const struct st_conn_info *i, char *fp_out,
                         size_t size)
{
	struct st_x509_reader *r;
	struct st_x509_item *it = NULL;
	struct st_error e;
	char fp[2][ST_FINGERPRINT_MAX];
	bool found = false;
	size_t k, pass;

	fp_out[0] = '\0';
	if (!i->ccert)
		return false;
	r = st_x509_reader_new("client certificate", i->ccert, i->ccert_len);
	if (!r || st_x509_reader_next(r, &it, &e) <= 0) {
		st_x509_reader_free(r);
		return false;
	}
	st_x509_item_fingerprint(it, v->p->fp_digest, true, fp[0]);
	st_x509_item_fingerprint(it, v->p->fp_digest, false, fp[1]);
	snprintf(fp_out, size, "%s", fp[1]);
	for (pass = 0; pass < 2 && !found; pass++)
		for (k = 0; k < v->n_fps && !found; k++)
			found = !strcasecmp(v->fps[k], fp[pass]);
	st_x509_item_free(it);
	st_x509_reader_free(r);
	return found;
}

/* Postfix's smtpd_relay_restrictions, in order; NULL: accepted, else the reply. */
static const char *relay_check(struct sv *v, const struct st_conn_info *i, const char *rcpt,
                               char *buf, size_t size)
{
	size_t k;
	char fp[ST_FINGERPRINT_MAX];

	for (k = 0; k < v->p->n_restrictions; k++) {
		switch (v->p->restrictions[k]) {
		case R_PERMIT_MYNETWORKS:
			if (in_nets(v->p, i->peer))
				return NULL;
			break;
		case R_PERMIT_SASL:
			if (i->smtp.auth_user[0])
				return NULL;
			break;
		case R_PERMIT_TLS_CLIENTCERTS:
			/* a listed fingerprint relays, trusted chain or not, as Postfix; a
			 * revoked certificate does not */
			if (i->tls && !i->ccert_revoked && ccert_listed(v, i, fp, sizeof(fp)))
				return NULL;
			break;
		case R_PERMIT_TLS_ALL_CLIENTCERTS:
			if (i->tls && i->ccert && i->ccert_verified)
				return NULL;
			break;
		case R_REJECT_UNAUTH_DESTINATION:
			if (!final_destination(v->p, rcpt)) {
				snprintf(buf, size, "554 5.7.1 <%s>: Relay access denied", rcpt);
				return buf;
			}
			break;
		case R_REJECT:
			snprintf(buf, size, "554 5.7.1 <%s>: Relay access denied", rcpt);
			return buf;
		}
	}
	return NULL;
}

/* ---- client certificates ---- */

/*
 * The client's chain, verified for the client purpose by --ccert-ca-file, with its
 * revocation by --crl-file and --ocsp. CRLs are in memory, so a check without --ocsp
 * runs on the loop; one with --ocsp fetches, so it runs in libuv's thread pool and the
 * connection waits for its answer (st_server_ccert_answer).
 */
struct ccert_check {
	struct st_job job;
	struct sv *v;
	struct st_conn *conn;
	struct st_buf der; /* the bytes of items */
	struct st_x509_item *items[16];
	size_t n;
	enum st_ccert_verdict verdict;
	char reason[ST_ERROR_MAX]; /* for the log: whole, or cut at a character */
};

static const char *rev_source(const char *source)
{
	return !strcmp(source, "ocsp") ? "OCSP" : !strcmp(source, "crl") ? "CRL" : "revocation";
}

/* The verdict of a verified chain: revoked anywhere wins; then a revocation status that
 * could not be had, which --require-revocation makes a failure and is a note otherwise. */
static void ccert_judge(struct ccert_check *k)
{
	const struct sv_params *p = k->v->p;
	struct st_verify_params vp;
	struct st_verify_result vr;
	struct st_error e;
	size_t d;
	bool noted = false;

	k->verdict = ST_CCERT_UNTRUSTED;
	snprintf(k->reason, sizeof(k->reason), "no certificate");
	if (!k->n)
		return;
	memset(&vp, 0, sizeof(vp));
	vp.trust = k->v->ccert_trust;
	vp.purpose = ST_PURPOSE_CLIENT;
	vp.at = time(NULL);
	vp.digest = ST_DIGEST_SHA256;
	vp.crls = k->v->crls;
	vp.ocsp = p->ocsp;
	vp.require_revocation = p->require_revocation;
	vp.fetch.timeout_ms = p->fetch_timeout_ms;
	vp.fetch.ocsp_cache = k->v->ocsp_cache;
	if (st_verify_chain(&vp, k->items, k->n, NULL, 0, &vr, &e)) {
		st_cut_printf(k->reason, sizeof(k->reason), "cannot verify: %s", e.msg);
		return;
	}
	k->reason[0] = '\0';
	if (vr.trusted)
		k->verdict = ST_CCERT_TRUSTED;
	else if (vr.n_errors)
		st_cut_printf(k->reason, sizeof(k->reason), "%s", vr.errors[0].message);
	for (d = 0; d < vr.n_chain; d++) {
		const struct st_rev_result *r = &vr.chain[d].revocation;
		char where[32] = "";
		if (d)
			snprintf(where, sizeof(where), ", depth %zu", d);
		if (r->status == ST_REV_REVOKED) {
			k->verdict = ST_CCERT_REVOKED;
			snprintf(k->reason, sizeof(k->reason), "revoked (%s%s)",
			         rev_source(r->source), where);
			break;
		}
		/* the first status that could not be had: the reason of a failure under
		 * --require-revocation, a note on a trusted chain otherwise */
		if ((r->status == ST_REV_UNAVAILABLE || r->status == ST_REV_UNKNOWN) && !noted &&
		    (k->verdict == ST_CCERT_TRUSTED ||
		     (vr.n_errors && vr.errors[0].code == ST_V_REVOCATION_UNAVAILABLE))) {
			st_cut_printf(k->reason, sizeof(k->reason), "revocation %s (%s%s): %s",
			              r->status == ST_REV_UNKNOWN ? "unknown" : "unavailable",
			              rev_source(r->source), where, r->detail);
			noted = true;
		}
	}
	st_verify_result_release(&vr);
}

static void ccert_check_free(struct ccert_check *k)
{
	size_t j;

	for (j = 0; j < k->n; j++)
		st_x509_item_free(k->items[j]);
	st_buf_release(&k->der);
	free(k);
}

static void ccert_work(struct st_job *j)
{
	ccert_judge(j->data);
}

static void ccert_done(struct st_job *j)
{
	struct ccert_check *k = j->data;

	st_server_ccert_answer(k->conn, k->verdict, k->reason);
	ccert_check_free(k);
}

static void ccert_verify(void *arg, struct st_conn *c, const struct st_conn_info *i)
{
	struct sv *v = arg;
	struct ccert_check *k;

	if (!v->ccert_trust || !i->session || !(k = calloc(1, sizeof(*k)))) {
		st_server_ccert_answer(c, ST_CCERT_UNTRUSTED, NULL);
		return;
	}
	k->v = v;
	k->conn = c;
	k->n = st_tls_peer_items(i->session, &k->der, k->items, 16);
	k->job.data = k;
	if (v->p->ocsp && k->n) {
		if (st_pool_submit(st_conn_loop(c), &k->job, ccert_work, ccert_done) == 0)
			return;
		k->verdict = ST_CCERT_UNTRUSTED;
		snprintf(k->reason, sizeof(k->reason), "cannot start the OCSP check");
	} else {
		ccert_judge(k); /* CRLs in memory, no fetch: quick enough for the loop */
	}
	st_server_ccert_answer(c, k->verdict, k->reason);
	ccert_check_free(k);
}

/* --req-ccert: Postfix's words when the certificate is missing or not trusted. */
static const char *tls_verdict(void *arg, const struct st_conn_info *i)
{
	struct sv *v = arg;

	if (!v->p->req_ccert)
		return NULL;
	if (!i->ccert)
		return "No client certificate presented";
	return i->ccert_verified ? NULL : "Client certificate not trusted";
}

/* The CN of a certificate's subject or issuer, for the Received header. */
static void ccert_names(const struct st_conn_info *i, char *subject, char *issuer, size_t size)
{
	struct st_x509_reader *r = st_x509_reader_new("client certificate", i->ccert, i->ccert_len);
	struct st_x509_item *it = NULL;
	struct st_x509_info info;
	struct st_error e;

	subject[0] = issuer[0] = '\0';
	if (r && st_x509_reader_next(r, &it, &e) > 0 && st_x509_item_info(it, &info, &e) == 0) {
		const char *cn;
		cn = info.subject ? strstr(info.subject, "CN=") : NULL;
		snprintf(subject, size, "%.*s", cn ? (int)strcspn(cn + 3, ",") : 0,
		         cn ? cn + 3 : "");
		cn = info.issuer ? strstr(info.issuer, "CN=") : NULL;
		snprintf(issuer, size, "%.*s", cn ? (int)strcspn(cn + 3, ",") : 0,
		         cn ? cn + 3 : "");
		st_x509_info_release(&info);
	}
	st_x509_item_free(it);
	st_x509_reader_free(r);
}

/* ---- the message, streamed to its files as it comes; synced and renamed off the loop ---- */

/* Each copy's bytes wait here until the buffer is full: a connection in DATA holds two of
 * them, whatever the size of its message. */
#define SPOOL_BUF 32768

struct copy {
	unsigned char buf[SPOOL_BUF];
	size_t len;
	size_t size; /* bytes of the file so far */
};

struct spool {
	struct st_job job;
	struct sv *v;
	struct st_conn *conn;
	unsigned long conn_id;
	char qid[32];
	char file[320];           /* the Maildir file's name, in tmp/ then new/ */
	int md_fd;                /* tmp/FILE; -1 when no recipient is ours */
	struct copy md;           /* LF line ends */
	bool md_cr;               /* a CR held back: a CRLF or a bare CR, not known yet */
	struct st_queue_file *qf; /* the relay copy (CRLF), NULL when nothing is relayed */
	struct copy q;
	size_t n_relay;
	/* the loop count, over the message's header section as it comes */
	bool in_header, bol;
	size_t line_len;
	char pfx[9];
	unsigned hops;
	/* the first failure: everything after it is thrown away, the answer is 451 */
	int err;
	const char *what;
	struct st_error qerr;
};

#define WRITE_ERROR "451 4.3.0 Error: queue file write error"

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n, len -= (size_t)n;
	}
	return 0;
}

/* Write out what waits in a copy; the first failure is kept. */
static void copy_flush(struct spool *s, struct copy *c)
{
	if (s->err)
		c->len = 0; /* the message is lost already: what waits goes nowhere */
	if (!c->len)
		return;
	if (c == &s->md) {
		if (write_all(s->md_fd, c->buf, c->len))
			s->err = errno, s->what = "write";
	} else if (st_queue_append(s->qf, c->buf, c->len, &s->qerr)) {
		s->err = EIO, s->what = "queue";
	}
	c->len = 0;
}

static void copy_put(struct spool *s, struct copy *c, unsigned char ch)
{
	if (c->len == sizeof(c->buf))
		copy_flush(s, c);
	c->buf[c->len++] = ch;
	c->size++;
}

/* Bytes of the message as it came (CRLF): the Maildir's copy with LF, the queue's as is. */
static void spool_put(struct spool *s, const unsigned char *d, size_t n)
{
	size_t k;

	if (s->md_fd >= 0)
		for (k = 0; k < n && !s->err; k++) {
			if (s->md_cr && d[k] != '\n')
				copy_put(s, &s->md, '\r'); /* a bare CR stays as it came */
			s->md_cr = d[k] == '\r';
			if (!s->md_cr)
				copy_put(s, &s->md, d[k]);
		}
	if (s->qf)
		for (k = 0; k < n && !s->err; k++)
			copy_put(s, &s->q, d[k]);
}

/* The Received headers of the message's header section (up to its first empty line), as
 * Postfix's hopcount_limit counts them. */
static void count_hops(struct spool *s, const unsigned char *d, size_t n)
{
	size_t k;

	for (k = 0; k < n && s->in_header; k++) {
		if (s->bol)
			s->line_len = 0, s->bol = false;
		if (d[k] == '\n') {
			if (s->line_len == 0 || (s->line_len == 1 && s->pfx[0] == '\r'))
				s->in_header = false;
			s->bol = true;
			continue;
		}
		if (s->line_len < sizeof(s->pfx)) {
			s->pfx[s->line_len] = (char)d[k];
			if (s->line_len + 1 == sizeof(s->pfx) &&
			    !strncasecmp(s->pfx, "Received:", sizeof(s->pfx)))
				s->hops++;
		}
		s->line_len++;
	}
}

/* Throw a message away (on the loop: no fsync): its files in tmp/ go. NULL is a no-op. */
static void spool_discard(struct spool *s)
{
	char tmp[4400];

	if (!s)
		return;
	if (s->md_fd >= 0) {
		close(s->md_fd);
		snprintf(tmp, sizeof(tmp), "%s/tmp/%s", s->v->p->maildir, s->file);
		unlink(tmp);
	}
	st_queue_abort(s->qf);
	free(s);
}

static void spool_release(void *arg, struct st_conn *c, void *user)
{
	(void)arg;
	(void)c;
	spool_discard(user);
}

static void spool_body(void *arg, struct st_conn *c, const unsigned char *d, size_t n)
{
	struct spool *s = st_conn_user(c);

	(void)arg;
	if (!s || s->err)
		return;
	count_hops(s, d, n);
	spool_put(s, d, n);
}

/* The Maildir's copy: synced, renamed into new/, new/ synced. If that last sync fails the
 * message is taken out of new/ again: the client gets 451 and sends it again, which must
 * not give a second copy, and a 250 would acknowledge what a crash may lose. */
static void maildir_commit(struct spool *s)
{
	char tmp[4400], path[4400];
	const char *md = s->v->p->maildir;
	int fd = s->md_fd;

	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", md, s->file);
	if (s->md_cr)
		copy_put(s, &s->md, '\r');
	copy_flush(s, &s->md);
	s->md_fd = -1;
	if (!s->err && fsync(fd))
		s->err = errno, s->what = "fsync";
	if (close(fd) && !s->err)
		s->err = errno, s->what = "fsync";
	if (s->err) {
		unlink(tmp);
		return;
	}
	snprintf(path, sizeof(path), "%s/new/%s", md, s->file);
	if (rename(tmp, path)) {
		s->err = errno, s->what = "rename";
		unlink(tmp);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s/new", md);
	if (fsync_dir(tmp)) {
		s->err = errno, s->what = "fsync the directory";
		unlink(path);
		fsync_dir(tmp);
	}
}

/* Both copies, or neither: the client gets one answer for the message (a 451 after the
 * queue file was written takes it back, or the message would go twice). */
static void spool_commit(struct st_job *j)
{
	struct spool *s = j->data;
	struct st_error e;
	bool queued = false;

	if (s->qf) {
		struct st_queue_file *qf = s->qf;
		copy_flush(s, &s->q);
		s->qf = NULL;
		if (s->err)
			st_queue_abort(qf);
		else if (st_queue_commit(qf, &s->qerr))
			s->err = EIO, s->what = "queue";
		else
			queued = true;
	}
	if (s->md_fd >= 0)
		maildir_commit(s);
	if (s->err && queued)
		st_queue_remove(s->v->p->queue_dir, s->qid, &e);
}

static void spool_fail(struct sv *v, struct spool *s)
{
	char why[600];

	if (s->what && !strcmp(s->what, "queue"))
		snprintf(why, sizeof(why), "%s", s->qerr.msg);
	else
		snprintf(why, sizeof(why), "cannot %s in the Maildir '%s': %s",
		         s->what ? s->what : "write", v->p->maildir,
		         strerror(s->err ? s->err : EIO));
	st_out_error("%s", why);
	log_event(v, json_pack("{s:s, s:I, s:s}", "event", "error", "conn", (json_int_t)s->conn_id,
	                       "error", why));
}

static void spool_done(struct st_job *j)
{
	struct spool *s = j->data;
	struct sv *v = s->v;

	if (s->err) {
		spool_fail(v, s);
		st_server_answer(s->conn, false, WRITE_ERROR);
		free(s);
		return;
	}
	log_event(v, json_pack("{s:s, s:I, s:s, s:I, s:s, s:I}", "event", "data", "conn",
	                       (json_int_t)s->conn_id, "queue_id", s->qid, "size",
	                       (json_int_t)(s->md.size ? s->md.size : s->q.size), "file",
	                       s->md.size ? s->file : "", "relayed", (json_int_t)s->n_relay));
	st_server_answer(s->conn, true, s->qid);
	/* the relay queue and a stop belong to the main loop: asked for through wake */
	uv_mutex_lock(&v->mu);
	if (s->n_relay) {
		char **x = realloc(v->to_relay, (v->n_to_relay + 1) * sizeof(*x));
		if (x && (x[v->n_to_relay] = strdup(s->qid)) != NULL)
			v->n_to_relay++;
		if (x)
			v->to_relay = x;
		/* (out of memory: the queue file is picked up at the next start) */
	}
	v->messages++;
	if (v->p->exit_after && v->messages >= v->p->exit_after)
		v->stop_asked = true;
	uv_mutex_unlock(&v->mu);
	uv_async_send(&v->wake);
	free(s);
}

/* The Received header, as Postfix's smtpd_tls_received_header writes it (LF line ends). */
static int received(struct sv *v, const struct st_conn_info *i, const char *qid, struct st_buf *hdr)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	rc = st_buf_addf(hdr, "Received: from %s (%s [%s])\n",
	                 i->smtp.helo[0] ? i->smtp.helo : "unknown", "unknown", i->peer);
	if (!rc && i->tls) {
		rc = st_buf_addf(hdr, "\t(using %s with cipher %s)\n", i->tls_summary.version,
		                 i->tls_summary.cipher);
		if (rc)
			;
		else if (!v->p->ask_ccert)
			rc = st_buf_addf(hdr, "\t(No client certificate requested)\n");
		else if (!i->ccert)
			rc = st_buf_addf(hdr, "\t(No client certificate presented)\n");
		else {
			char subject[256], issuer[256];
			ccert_names(i, subject, issuer, sizeof(subject));
			rc =
			    st_buf_addf(hdr, "\t(Client CN \"%s\", Issuer \"%s\" (%s))\n", subject,
			                issuer, i->ccert_verified ? "verified OK" : "not verified");
		}
	}
	if (!rc)
		rc = st_buf_addf(hdr, "\tby %s (smtptls) with %s id %s\n", v->p->hostname,
		                 i->tls ? (i->smtp.auth_user[0] ? "ESMTPSA" : "ESMTPS")
		                        : (i->smtp.esmtp ? "ESMTP" : "SMTP"),
		                 qid);
	if (!rc && i->smtp.n_rcpt == 1)
		rc = st_buf_addf(hdr, "\tfor <%s>; %s\n", i->smtp.rcpt[0], date);
	else if (!rc)
		rc = st_buf_addf(hdr, "\t; %s\n", date);
	return rc;
}

/*
 * DATA is accepted: everything the Received header needs is known, so the files are made
 * now and the header written; the body follows into them as it comes (spool_body). NULL
 * when a file cannot be made (the client gets 451).
 */
static struct spool *spool_open(struct sv *v, struct st_conn *c, const struct st_conn_info *i)
{
	struct spool *s = calloc(1, sizeof(*s));
	char host[256], tmp[4400];
	char **relay = NULL, *from = NULL;
	unsigned char rnd[6];
	struct st_buf hdr;
	size_t k;

	if (!s)
		return NULL;
	s->v = v;
	s->conn = c;
	s->conn_id = i->id;
	s->md_fd = -1;
	s->in_header = s->bol = true;
	s->job.data = s;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd)); /* the sequence number still makes it unique */
	snprintf(s->qid, sizeof(s->qid), "%02X%02X%02X%02X%02X%02X%lX", rnd[0], rnd[1], rnd[2],
	         rnd[3], rnd[4], rnd[5], __atomic_add_fetch(&v->seq, 1, __ATOMIC_RELAXED));
	snprintf(host, sizeof(host), "%s", v->p->hostname);
	for (k = 0; host[k]; k++)
		if (host[k] == '/' || host[k] == ':')
			host[k] = '_';
	snprintf(s->file, sizeof(s->file), "%ld.%s.%s", (long)time(NULL), s->qid, host);
	/* recipients of our domains go to the Maildir; with onward relay, the others to the
	 * queue */
	if (v->outq && i->smtp.n_rcpt && !(relay = calloc(i->smtp.n_rcpt, sizeof(*relay)))) {
		free(s);
		return NULL;
	}
	st_buf_init(&hdr, 8192);
	if (received(v, i, s->qid, &hdr))
		s->err = ENOMEM, s->what = "write";
	for (k = 0; k < i->smtp.n_rcpt && !s->err; k++) {
		if (!v->outq || final_destination(v->p, i->smtp.rcpt[k])) {
			if (s->md_fd >= 0)
				continue;
			snprintf(tmp, sizeof(tmp), "%s/tmp/%s", v->p->maildir, s->file);
			s->md_fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (s->md_fd < 0)
				s->err = errno, s->what = "create";
			continue;
		}
		/* the address the next hop gets: resolved (percent hack, source route) and
		 * quoted on the wire, as Postfix's smtp client sends it */
		if (!(relay[s->n_relay] = relay_address(v->p, i->smtp.rcpt[k])))
			s->err = ENOMEM, s->what = "write";
		else
			s->n_relay++;
	}
	if (!s->err && s->n_relay && !(from = wire_address(i->smtp.sender)))
		s->err = ENOMEM, s->what = "write";
	if (!s->err && s->n_relay &&
	    st_queue_create(v->p->queue_dir, s->qid, time(NULL), from,
	                    (const char *const *)relay, s->n_relay, &s->qf, &s->qerr))
		s->err = EIO, s->what = "queue";
	for (k = 0; relay && k < s->n_relay; k++)
		free(relay[k]);
	free(relay);
	free(from);
	if (!s->err) {
		/* the header: LF for the Maildir, CRLF for the queue */
		for (k = 0; k < hdr.len; k++) {
			if (s->md_fd >= 0)
				copy_put(s, &s->md, (unsigned char)hdr.data[k]);
			if (s->qf && hdr.data[k] == '\n')
				copy_put(s, &s->q, '\r');
			if (s->qf)
				copy_put(s, &s->q, (unsigned char)hdr.data[k]);
		}
	}
	st_buf_release(&hdr);
	if (s->err) {
		spool_fail(v, s);
		spool_discard(s);
		return NULL;
	}
	return s;
}

/* DATA: the files are made, or 451. A message given up before (too big) goes first. */
static void data_begin(struct sv *v, struct st_conn *c, const struct st_conn_info *i)
{
	struct spool *s;

	spool_discard(st_conn_user(c));
	st_conn_set_user(c, NULL);
	s = spool_open(v, c, i);
	if (!s) {
		st_server_answer(c, false, WRITE_ERROR);
		return;
	}
	st_conn_set_user(c, s);
	st_server_answer(c, true, NULL);
}

/* The end of data: sync and rename off the loop, then the answer. */
static void data_end(struct sv *v, struct st_conn *c)
{
	struct spool *s = st_conn_user(c);

	st_conn_set_user(c, NULL);
	if (!s) {
		st_server_answer(c, false, WRITE_ERROR);
		return;
	}
	if (s->err) {
		spool_fail(v, s);
		spool_discard(s);
		st_server_answer(c, false, WRITE_ERROR);
		return;
	}
	if (st_pool_submit(st_conn_loop(c), &s->job, spool_commit, spool_done)) {
		s->err = EAGAIN, s->what = "start a thread to write";
		spool_fail(v, s);
		spool_discard(s);
		st_server_answer(c, false, WRITE_ERROR);
	}
}

/* ---- AUTH: the hash is checked off the loop's thread, a failure answered after 1 s ---- */

struct auth_check {
	struct st_job job;
	uv_loop_t *loop;
	uv_timer_t delay;
	struct sv *v;
	struct st_conn *conn;
	unsigned long conn_id;
	char user[256], mech[8], authzid[256];
	char pass[512];
	bool ok;
};

static void auth_work(struct st_job *j)
{
	struct auth_check *a = j->data;

	/* an authorization identity other than the user is a failed authentication: no
	 * user here may act for another */
	a->ok = st_auth_db_check(a->v->auth, a->user, a->pass) &&
	        (!a->authzid[0] || !strcmp(a->authzid, a->user));
	explicit_bzero(a->pass, sizeof(a->pass));
}

static void auth_free(uv_handle_t *h)
{
	free(h->data);
}

static void auth_refuse(uv_timer_t *t)
{
	struct auth_check *a = t->data;

	st_server_answer(a->conn, false, NULL);
	uv_close((uv_handle_t *)&a->delay, auth_free);
}

static void auth_done(struct st_job *j)
{
	struct auth_check *a = j->data;
	bool ok = a->ok;
	json_t *o =
	    json_pack("{s:s, s:I, s:s, s:s, s:b}", "event", "auth", "conn", (json_int_t)a->conn_id,
	              "user", a->user, "mechanism", a->mech, "ok", ok);

	if (o && a->authzid[0])
		json_object_set_new(o, "authzid", json_string(a->authzid));
	log_event(a->v, o);
	if (ok) {
		st_server_answer(a->conn, true, NULL);
		free(a);
		return;
	}
	/* a wrong password costs the client a second, as Postfix's error sleep */
	uv_timer_init(a->loop, &a->delay);
	a->delay.data = a;
	uv_timer_start(&a->delay, auth_refuse, 1000, 0);
}

static void auth_check(struct sv *v, struct st_conn *c, const struct st_srv_request *req,
                       const struct st_conn_info *i)
{
	struct auth_check *a = calloc(1, sizeof(*a));

	if (!a || strlen(req->user) >= sizeof(a->user) || strlen(req->pass) >= sizeof(a->pass) ||
	    (req->authzid && strlen(req->authzid) >= sizeof(a->authzid))) {
		free(a);
		st_server_answer(c, false, NULL);
		return;
	}
	a->v = v;
	a->conn = c;
	a->conn_id = i->id;
	snprintf(a->user, sizeof(a->user), "%s", req->user);
	snprintf(a->mech, sizeof(a->mech), "%s", req->mech);
	snprintf(a->authzid, sizeof(a->authzid), "%s", req->authzid ? req->authzid : "");
	snprintf(a->pass, sizeof(a->pass), "%s", req->pass);
	a->job.data = a;
	a->loop = st_conn_loop(c);
	if (st_pool_submit(a->loop, &a->job, auth_work, auth_done) < 0) {
		/* not the client's fault: a temporary failure, as Postfix's when its SASL server
		 * fails, not 535 for a password that may be right */
		const char *why = "cannot start a thread to check a password";
		explicit_bzero(a->pass, sizeof(a->pass));
		free(a);
		st_out_error("%s", why);
		log_event(v, json_pack("{s:s, s:I, s:s}", "event", "error", "conn",
		                       (json_int_t)i->id, "error", why));
		st_server_answer(c, false, "454 4.7.0 Temporary authentication failure");
	}
}

/* ---- fault injection ---- */

/* A reply line for this stage when a --fault fires (its percentage drawn), else NULL. */
static const char *fault_at(void *arg, const char *stage)
{
	struct sv *v = arg;
	static __thread char line[200]; /* each loop's thread its own */
	size_t k;

	for (k = 0; k < v->p->n_faults; k++) {
		const struct fault *f = &v->p->faults[k];
		unsigned r;
		if (strcmp(f->stage, stage))
			continue;
		if (f->percent < 100 && (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r) ||
		                         r % 100 >= (unsigned)f->percent))
			continue;
		snprintf(line, sizeof(line), "%d %d.3.0 %s Error: fault injected (--fault %s)",
		         f->code, f->code / 100, v->p->hostname, f->spec);
		log_event(v, json_pack("{s:s, s:s, s:s}", "event", "fault", "stage", stage, "reply",
		                       line));
		return line;
	}
	return NULL;
}

/* ---- decisions and events ---- */

#define HOPCOUNT_LIMIT 50

static void decide(void *arg, struct st_conn *c, const struct st_srv_request *req,
                   const struct st_conn_info *i)
{
	struct sv *v = arg;
	char buf[600];
	const char *refused;
	bool ours;

	{
		const char *stage = req->event == ST_SRV_MAIL   ? "mail"
		                    : req->event == ST_SRV_RCPT ? "rcpt"
		                    : req->event == ST_SRV_END  ? "data"
		                    : req->event == ST_SRV_AUTH ? "auth"
		                                                : NULL;
		const char *f = stage ? fault_at(v, stage) : NULL;
		if (f) {
			if (req->event == ST_SRV_END) {
				spool_discard(st_conn_user(c));
				st_conn_set_user(c, NULL);
			}
			st_server_answer(c, false, f);
			return;
		}
	}
	switch (req->event) {
	case ST_SRV_MAIL:
		/* the sender resolved as Postfix's smtpd checks it: a bad domain it comes to
		 * ("a%@ours") is bad syntax */
		if (req->arg[0] &&
		    resolve_rcpt(v->p, req->arg, req->smtputf8, buf, sizeof(buf), &ours)) {
			st_server_answer(c, false, "501 5.1.7 Bad sender address syntax");
			break;
		}
		log_event(v, json_pack("{s:s, s:I, s:s, s:s, s:I}", "event", "mail", "conn",
		                       (json_int_t)i->id, "helo", i->smtp.helo, "from", req->arg,
		                       "size", (json_int_t)req->size));
		st_server_answer(c, true, NULL);
		break;
	case ST_SRV_RCPT:
		if (resolve_rcpt(v->p, req->arg, req->smtputf8, buf, sizeof(buf), &ours))
			refused = "501 5.1.3 Bad recipient address syntax";
		else
			refused = relay_check(v, i, req->arg, buf, sizeof(buf));
		log_event(v,
		          json_pack("{s:s, s:I, s:s, s:b, s:s}", "event", "rcpt", "conn",
		                    (json_int_t)i->id, "to", req->arg, "accepted", refused == NULL,
		                    "reply", refused ? refused : "250 2.1.5 Ok"));
		st_server_answer(c, refused == NULL, refused);
		break;
	case ST_SRV_DATA:
		data_begin(v, c, i);
		break;
	case ST_SRV_END:
		/* a mail loop ends here, as Postfix's hopcount_limit (50 Received headers) */
		if (st_conn_user(c) && ((struct spool *)st_conn_user(c))->hops >= HOPCOUNT_LIMIT) {
			spool_discard(st_conn_user(c));
			st_conn_set_user(c, NULL);
			snprintf(buf, sizeof(buf), "554 5.4.0 Error: too many hops");
			log_event(v, json_pack("{s:s, s:I, s:s}", "event", "reject", "conn",
			                       (json_int_t)i->id, "reply", buf));
			st_server_answer(c, false, buf);
			break;
		}
		data_end(v, c);
		break;
	case ST_SRV_AUTH:
		if (v->auth) {
			auth_check(v, c, req, i);
			break;
		}
		st_server_answer(c, false, NULL);
		break;
	default:
		st_server_answer(c, false, NULL);
		break;
	}
}

static void on_event(void *arg, const char *name, const struct st_conn_info *i)
{
	struct sv *v = arg;
	json_t *o = conn_json(name, i);

	if (!strcmp(name, "connect")) {
		json_object_set_new(o, "listener",
		                    json_string(st_listen_mode_name(i->listen->mode)));
		json_object_set_new(o, "server_port", json_integer(i->listen->port));
		json_object_set_new(o, "loop", json_integer(i->loop_index));
	} else if (!strcmp(name, "starttls")) {
		json_object_set_new(o, "version", json_string(i->tls_summary.version));
		json_object_set_new(o, "cipher", json_string(i->tls_summary.cipher));
		if (i->ccert) {
			char fp[ST_FINGERPRINT_MAX];
			bool listed = ccert_listed(v, i, fp, sizeof(fp));
			char subject[256], issuer[256];
			ccert_names(i, subject, issuer, sizeof(subject));
			json_object_set_new(
			    o, "client_cert",
			    json_pack(
			        "{s:s, s:s, s:s, s:b, s:b, s:b, s:s?}", "subject", subject,
			        "issuer", issuer, "fingerprint", fp, "listed", listed, "verified",
			        i->ccert_verified, "revoked", i->ccert_revoked, "reason",
			        i->ccert_reason && i->ccert_reason[0] ? i->ccert_reason : NULL));
		} else {
			json_object_set_new(o, "client_cert", json_null());
		}
	} else if (!strcmp(name, "reject")) {
		json_object_set_new(o, "reply", json_string(i->smtp.last_reply));
	} else if (!strcmp(name, "disconnect")) {
		json_object_set_new(o, "reason", json_string(i->reason ? i->reason : ""));
		json_object_set_new(o, "messages", json_integer(i->smtp.messages));
	}
	log_event(v, o);
}

/* ---- onward relay ---- */

/* One line per recipient and attempt, as Postfix's smtp client logs it (status=, dsn=,
 * relay=, the reason), with the TLS of the attempt and the policy that applied. */
static void relay_event(void *arg, const struct st_outq_event *ev)
{
	struct sv *v = arg;
	const struct st_relay_result *a = ev->attempt;
	json_t *o =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:f}", "event", "relay",
	              "queue_id", ev->queue_id, "from", ev->from, "to", ev->to, "nexthop",
	              ev->nexthop, "relay", ev->rcpt->relay, "status", ev->status, "dsn",
	              ev->rcpt->dsn, "reason", ev->rcpt->reason, "delay", ev->delay);

	if (!o)
		return;
	json_object_set_new(o, "tls",
	                    json_pack("{s:s, s:s?, s:s?, s:s?}", "level", st_level_name(ev->level),
	                              "status", a->tls_status[0] ? a->tls_status : NULL, "version",
	                              a->tls_version[0] ? a->tls_version : NULL, "cipher",
	                              a->tls_cipher[0] ? a->tls_cipher : NULL));
	json_object_set_new(o, "policy",
	                    ev->policy_table ? json_pack("{s:s, s:s}", "table", ev->policy_table,
	                                                 "key", ev->policy_key)
	                                     : json_null());
	json_object_set_new(o, "attempt", json_integer(ev->attempt_no));
	if (!strcmp(ev->status, "deferred"))
		json_object_set_new(o, "next_try", json_integer((json_int_t)ev->next_try));
	log_event(v, o);
}

static void relay_error(void *arg, const char *msg)
{
	struct sv *v = arg;

	st_out_warn("relay queue: %s", msg);
	log_event(v, json_pack("{s:s, s:s}", "event", "error", "error", msg));
}

/* Everything onward relay needs, read before anything listens. */
static int relay_setup(struct sv *v, struct st_error *err, const char **what)
{
	const struct sv_params *p = v->p;
	size_t i;

	/* the loader policy uses: proxy:, the compiled file's state, as Postfix opens them */
	*what = "--tls-policy";
	for (i = 0; i < p->n_policies; i++)
		if (st_policy_tables_add(&v->tables, p->policies[i], err))
			return -1;
	if (v->tables.broken[0])
		st_out_warn("--tls-policy: %s: all relayed mail will be deferred (4.7.5 client TLS "
		            "configuration problem)",
		            v->tables.broken);
	/* every entry that Postfix would call invalid is named now (its mail would be deferred) */
	for (i = 0; i < v->tables.n; i++) {
		size_t k, n = st_policy_table_size(v->tables.t[i]);
		if (v->tables.stale[i])
			st_out_warn(
			    "--tls-policy: '%s' is older than its source: Postfix answers from "
			    "the old entries until postmap is run; serve answers from the source",
			    st_policy_table_db(v->tables.t[i], NULL, NULL));
		for (k = 0; k < n; k++) {
			const struct st_policy_entry *e = st_policy_table_at(v->tables.t[i], k);
			struct st_policy pol;
			struct st_error pe;
			if (st_policy_parse(e->value, &pol, &pe) < 0)
				st_out_warn(
				    "--tls-policy: %s:%u: %s: mail for '%s' will be deferred "
				    "(4.7.5 client TLS configuration problem)",
				    st_policy_table_file(v->tables.t[i]), e->line, pe.msg, e->key);
		}
	}
	v->relay_trust = st_trust_new();
	if (!v->relay_trust) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return -1;
	}
	for (i = 0; i < p->n_relay_ca; i++) {
		*what = "--relay-ca-file";
		if (st_trust_index_file(v->relay_trust, p->relay_ca[i], err))
			return -1;
	}
	if (p->client_cert) {
		struct st_tls_params tp;
		memset(&tp, 0, sizeof(tp));
		tp.cert_file = p->client_cert;
		tp.key_file = p->client_key;
		*what = "--client-cert";
		v->client_creds = st_tls_creds_new(&tp, err);
		if (!v->client_creds)
			return -1;
	}
	*what = "--dns-server";
	v->dns = st_dns_new(p->dns_server, err);
	if (!v->dns)
		return -1;
	st_dns_set_timeout(v->dns, (int)(p->relay_timeout * 1000));
	st_dns_set_host_lookup(v->dns, p->host_lookup);
	*what = "relay"; /* each was checked with the options */
	for (i = 0; i < p->n_resolve; i++)
		if (st_dns_add_resolve(v->dns, p->resolve[i], err))
			return -1;
	return 0;
}

/* Our own addresses and ports, "addr:port": a wildcard listener is every address of the
 * interfaces of its family. */
static void self_addrs(struct sv *v)
{
	const struct sv_params *p = v->p;
	struct ifaddrs *ifa = NULL, *x;
	size_t i;

	for (i = 0; i < p->n_listen; i++) {
		const struct st_listen *l = &p->listen[i];
		bool any4 = !strcmp(l->addr, "0.0.0.0"), any6 = !strcmp(l->addr, "::");
		if (!any4 && !any6) {
			if (v->n_self < SELF_MAX)
				snprintf(v->self[v->n_self++], sizeof(v->self[0]), "%s:%u", l->addr,
				         l->port);
			continue;
		}
		if (!ifa && getifaddrs(&ifa))
			continue;
		for (x = ifa; x && v->n_self < SELF_MAX; x = x->ifa_next) {
			char a[64];
			if (!x->ifa_addr || x->ifa_addr->sa_family != (any4 ? AF_INET : AF_INET6))
				continue;
			if (!inet_ntop(
			        x->ifa_addr->sa_family,
			        any4 ? (void *)&((struct sockaddr_in *)x->ifa_addr)->sin_addr
			             : (void *)&((struct sockaddr_in6 *)x->ifa_addr)->sin6_addr,
			        a, sizeof(a)))
				continue;
			snprintf(v->self[v->n_self++], sizeof(v->self[0]), "%s:%u", a, l->port);
		}
	}
	if (ifa)
		freeifaddrs(ifa);
	for (i = 0; i < v->n_self; i++)
		v->self_ptr[i] = v->self[i];
}

static int relay_start(struct sv *v, struct st_error *err)
{
	const struct sv_params *p = v->p;
	struct st_outq_params qp;

	self_addrs(v);
	if (st_dns_attach(v->dns, &v->loop, err))
		return -1;
	memset(&qp, 0, sizeof(qp));
	qp.dir = p->queue_dir;
	qp.relayhost = p->relayhost;
	qp.tables = v->tables.t;
	qp.n_tables = v->tables.n;
	qp.tables_error = v->tables.broken[0] ? v->tables.broken : NULL;
	qp.level = p->tls_level;
	qp.dns = v->dns;
	qp.trust = v->relay_trust;
	qp.creds = v->client_creds;
	qp.digest = p->fp_digest;
	qp.ehlo_name = p->hostname;
	qp.timeout_ms = p->relay_timeout * 1000;
	qp.concurrency = (unsigned)p->relay_concurrency;
	qp.backoff_min = p->backoff_min;
	qp.backoff_max = p->backoff_max;
	qp.lifetime = p->queue_lifetime;
	qp.max_size = p->max_size ? p->max_size : 10240000;
	qp.self = (const char *const *)v->self_ptr;
	qp.n_self = v->n_self;
	qp.event = relay_event;
	qp.error = relay_error;
	qp.arg = v;
	v->outq = st_outq_new(&v->loop, &qp, err);
	return v->outq ? 0 : -1;
}

/* ---- start and stop ---- */

static void stopped(void *arg)
{
	struct sv *v = arg;

	if (--v->stops_pending > 0)
		return;
	if (v->dns)
		st_dns_detach(v->dns);
	/* wake stays open (a worker may still be sending to it) until the threads are joined;
	 * it no longer keeps the loop running */
	uv_unref((uv_handle_t *)&v->wake);
	uv_close((uv_handle_t *)&v->sigterm, NULL);
	uv_close((uv_handle_t *)&v->sigint, NULL);
	uv_close((uv_handle_t *)&v->sighup, NULL);
}

static void sv_stop(struct sv *v)
{
	if (v->stopping)
		return;
	v->stopping = true;
	long messages;
	size_t k;

	uv_mutex_lock(&v->mu);
	messages = v->messages;
	uv_mutex_unlock(&v->mu);
	log_event(v, json_pack("{s:s, s:I}", "event", "stop", "messages", (json_int_t)messages));
	v->stops_pending = 1 + (int)v->n_workers + (v->outq ? 1 : 0);
	st_server_stop(v->server, stopped, v);
	for (k = 0; k < v->n_workers; k++)
		uv_async_send(&v->workers[k].stop);
	/* relay attempts under way end (each step within --relay-timeout), their results on disk */
	if (v->outq)
		st_outq_stop(v->outq, stopped, v);
}

/* ---- other loops ---- */

static void worker_stopped(void *arg)
{
	struct worker *w = arg;

	uv_close((uv_handle_t *)&w->stop, NULL); /* the last handle: the loop ends */
	uv_mutex_lock(&w->v->mu);
	w->v->workers_stopped++;
	uv_mutex_unlock(&w->v->mu);
	uv_async_send(&w->v->wake);
}

static void worker_stop(uv_async_t *h)
{
	struct worker *w = h->data;

	st_server_stop(w->server, worker_stopped, w);
}

static void worker_main(void *arg)
{
	struct worker *w = arg;

	uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* The main loop's side of wake: what other threads asked for. */
static void on_wake(uv_async_t *h)
{
	struct sv *v = h->data;
	char **ids;
	size_t n, k;
	unsigned stopped_now;
	bool stop;

	uv_mutex_lock(&v->mu);
	ids = v->to_relay, n = v->n_to_relay;
	v->to_relay = NULL, v->n_to_relay = 0;
	stop = v->stop_asked;
	stopped_now = v->workers_stopped;
	v->workers_stopped = 0;
	uv_mutex_unlock(&v->mu);
	for (k = 0; k < n; k++) {
		if (v->outq)
			st_outq_add(v->outq, ids[k]);
		free(ids[k]);
	}
	free(ids);
	if (stop)
		sv_stop(v);
	while (stopped_now--)
		stopped(v);
}

static void on_signal(uv_signal_t *h, int sig)
{
	struct sv *v = h->data;

	if (sig != SIGHUP) {
		sv_stop(v);
		return;
	}
	/* SIGHUP: the log is reopened (after logrotate moved it) */
	if (v->log && v->log != stdout) {
		FILE *f = fopen(v->p->log, "a");
		if (!f) {
			st_out_warn("--log: cannot reopen '%s': %s", v->p->log, strerror(errno));
			return;
		}
		uv_mutex_lock(&v->mu);
		fclose(v->log);
		v->log = f;
		uv_mutex_unlock(&v->mu);
		log_event(v, json_pack("{s:s}", "event", "reopen"));
	}
}

static int mkdir_p(const char *dir, mode_t mode)
{
	char buf[4400], *p;

	snprintf(buf, sizeof(buf), "%s", dir);
	for (p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, mode) && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(buf, mode) && errno != EEXIST ? -1 : 0;
}

static int write_file(const char *path, const struct st_buf *b, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	size_t off = 0;

	if (fd < 0)
		return -1;
	while (off < b->len) {
		ssize_t n = write(fd, b->data + off, b->len - off);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	return close(fd);
}

/* The throwaway PKI: chain and key in a private directory, the CA where --ca-out says. */
static int make_pki(struct sv *v, char *cert, char *key, size_t size)
{
	struct sv_params *p = v->p;
	const char *names[16];
	char list[1024], *w, *save = NULL;
	size_t n = 0;
	struct st_buf ca, chain, k;
	struct st_error err;
	int rc = -1;

	if (p->self_signed && *p->self_signed) {
		snprintf(list, sizeof(list), "%s", p->self_signed);
		for (w = strtok_r(list, ", ", &save); w && n < 16; w = strtok_r(NULL, ", ", &save))
			names[n++] = w;
	} else {
		names[n++] = p->hostname;
		if (strcmp(p->hostname, "localhost"))
			names[n++] = "localhost";
		names[n++] = "127.0.0.1";
		names[n++] = "::1";
	}
	st_buf_init(&ca, 1 << 16);
	st_buf_init(&chain, 1 << 16);
	st_buf_init(&k, 1 << 16);
	if (st_x509_make_throwaway(names, n, 30, &ca, &chain, &k, &err)) {
		st_out_error("--self-signed: %s", err.msg);
		goto out;
	}
	snprintf(v->tmpdir, sizeof(v->tmpdir), "/tmp/smtptls-serve.XXXXXX");
	if (!mkdtemp(v->tmpdir)) {
		st_out_error("--self-signed: cannot make a private directory: %s", strerror(errno));
		v->tmpdir[0] = '\0';
		goto out;
	}
	snprintf(cert, size, "%s/chain.pem", v->tmpdir);
	snprintf(key, size, "%s/key.pem", v->tmpdir);
	if (write_file(cert, &chain, 0600) || write_file(key, &k, 0600)) {
		st_out_error("--self-signed: cannot write in '%s': %s", v->tmpdir, strerror(errno));
		goto out;
	}
	if (p->ca_out && write_file(p->ca_out, &ca, 0644)) {
		st_out_error("--ca-out: cannot write '%s': %s", p->ca_out, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (k.data)
		explicit_bzero(k.data, k.cap);
	st_buf_release(&ca);
	st_buf_release(&chain);
	st_buf_release(&k);
	return rc;
}

/* relay_clientcerts: "fingerprint value" lines, # comments, blank lines; the file read
 * whole under the input cap */
static int load_fps(struct sv *v, const char *path)
{
	struct st_buf b;
	struct st_error err;
	char *line, *next;
	unsigned lineno = 0;
	int rc = -1;

	st_buf_init(&b, ST_INPUT_MAX);
	if (st_read_file(path, &b, &err)) {
		st_out_error("--relay-clientcerts: %s", err.msg);
		goto out;
	}
	if (b.len && memchr(b.data, '\0', b.len)) {
		st_out_error("--relay-clientcerts: '%s': a NUL byte: not a text file", path);
		goto out;
	}
	for (line = b.len ? (char *)b.data : NULL; line; line = next) {
		char *w = line + strspn(line, " \t"), **grown;
		size_t n;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		n = strcspn(w, " \t\r");
		if (!n || *w == '#')
			continue;
		if (n >= ST_FINGERPRINT_MAX) {
			st_out_error("%s:%u: '%.*s' is not a fingerprint", path, lineno,
			             (int)(n > 256 ? 256 : n), w);
			goto out;
		}
		w[n] = '\0';
		grown = realloc(v->fps, (v->n_fps + 1) * sizeof(*grown));
		if (!grown || !(grown[v->n_fps] = strdup(w))) {
			v->fps = grown ? grown : v->fps;
			goto out;
		}
		v->fps = grown;
		v->n_fps++;
	}
	rc = 0;
out:
	st_buf_release(&b);
	return rc;
}

/* ---- revocation and privileges, set up at start ---- */

/* --crl-file read once; for --ocsp the cache, and libcurl ready before the thread pool
 * runs. Returns an exit status. */
static enum st_exit revocation_start(struct sv *v)
{
	const struct sv_params *p = v->p;
	struct st_error err;
	size_t k;

	if (p->n_crl_files) {
		if (!(v->crls = st_crl_set_new()))
			return ST_EXIT_INTERNAL;
		for (k = 0; k < p->n_crl_files; k++)
			if (st_crl_set_add_file(v->crls, p->crl_files[k], &err)) {
				st_out_error("--crl-file: %s", err.msg);
				return ST_EXIT_INPUT;
			}
	}
	if (!p->ocsp)
		return ST_EXIT_OK;
	if (p->ocsp_cache_s && !(v->ocsp_cache = st_ocsp_cache_new(4096, p->ocsp_cache_s)))
		return ST_EXIT_INTERNAL;
	if (st_http_init(&err)) {
		st_out_error("--ocsp: %s", err.msg);
		return ST_EXIT_INTERNAL;
	}
	/* OCSP checks wait on responders in the worker pool (lib/pool), where Maildir writes
	 * and AUTH checks run too: more threads than its 4, so that slow responders do not
	 * hold deliveries up (UV_THREADPOOL_SIZE, as for libuv's pool before, wins) */
	{
		const char *e = getenv("UV_THREADPOOL_SIZE");
		unsigned long n = e ? strtoul(e, NULL, 10) : 0;
		st_pool_set_max(n ? (unsigned)(n > 128 ? 128 : n) : 16);
	}
	return ST_EXIT_OK;
}

/* --user: who to become. Not root: only the user we are already (nothing to drop). */
static enum st_exit user_lookup(struct sv *v)
{
	const char *name = v->p->user;
	struct passwd *pw;

	if (!name)
		return ST_EXIT_OK;
	errno = 0;
	pw = getpwnam(name);
	if (!pw) {
		st_out_error("--user: no user '%s'%s%s", name, errno ? ": " : "",
		             errno ? strerror(errno) : "");
		return ST_EXIT_USAGE;
	}
	if (geteuid() != 0) {
		if (pw->pw_uid == geteuid() && pw->pw_gid == getegid())
			return ST_EXIT_OK;
		st_out_error("--user: only root can become '%s' (this is uid %ld)", name,
		             (long)geteuid());
		return ST_EXIT_USAGE;
	}
	v->drop = true;
	v->uid = pw->pw_uid;
	v->gid = pw->pw_gid;
	return ST_EXIT_OK;
}

/* Once listening: the Maildir (and the throwaway chain's directory, removed at exit)
 * handed to the user, then groups, gid, uid, in that order, each checked: a server
 * still privileged after this does not run on. Returns an exit status. */
static enum st_exit drop_privileges(struct sv *v, const char *cert, const char *key)
{
	static const char *const md[] = {"", "/tmp", "/new", "/cur"};
	const char *own[3] = {v->tmpdir, cert, key}, *name = v->p->user;
	char path[4400];
	size_t k;

	if (!v->drop)
		return ST_EXIT_OK;
	for (k = 0; k < 4; k++) {
		snprintf(path, sizeof(path), "%s%s", v->p->maildir, md[k]);
		if (chown(path, v->uid, v->gid)) {
			st_out_error("--user: cannot give '%s' to '%s': %s", path, name,
			             strerror(errno));
			return ST_EXIT_INPUT;
		}
	}
	/* the relay queue too: its directory and the files an earlier run left */
	if (v->outq) {
		DIR *d;
		struct dirent *de;
		snprintf(path, sizeof(path), "%s/tmp", v->p->queue_dir);
		if (chown(v->p->queue_dir, v->uid, v->gid) || chown(path, v->uid, v->gid)) {
			st_out_error("--user: cannot give '%s' to '%s': %s", v->p->queue_dir, name,
			             strerror(errno));
			return ST_EXIT_INPUT;
		}
		d = opendir(v->p->queue_dir);
		while (d && (de = readdir(d)) != NULL) {
			if (!st_queue_id_is_valid(de->d_name) || !strcmp(de->d_name, "tmp"))
				continue;
			snprintf(path, sizeof(path), "%s/%s", v->p->queue_dir, de->d_name);
			if (chown(path, v->uid, v->gid)) {
				st_out_error("--user: cannot give '%s' to '%s': %s", path, name,
				             strerror(errno));
				closedir(d);
				return ST_EXIT_INPUT;
			}
		}
		if (d)
			closedir(d);
	}
	for (k = 0; v->tmpdir[0] && k < 3; k++)
		if (chown(own[k], v->uid, v->gid)) {
			st_out_error("--user: cannot give '%s' to '%s': %s", own[k], name,
			             strerror(errno));
			return ST_EXIT_INTERNAL;
		}
	if (setgroups(1, &v->gid) || setgid(v->gid) || setuid(v->uid)) {
		st_out_error("--user: cannot become '%s': %s", name, strerror(errno));
		return ST_EXIT_INTERNAL;
	}
	if (getuid() != v->uid || geteuid() != v->uid || getgid() != v->gid ||
	    getegid() != v->gid || (v->uid != 0 && setuid(0) == 0)) {
		st_out_error("--user: still privileged after becoming '%s'", name);
		return ST_EXIT_INTERNAL;
	}
	for (k = 1; k < 3; k++) {
		snprintf(path, sizeof(path), "%s%s", v->p->maildir, md[k]);
		if (access(path, W_OK | X_OK)) {
			st_out_error("--maildir: '%s' is not writable by '%s': %s", path, name,
			             strerror(errno));
			return ST_EXIT_INPUT;
		}
	}
	return ST_EXIT_OK;
}

/* After the main loop: every other loop has ended (or, never started, is closed here). */
/* A worker whose thread never started: its listeners closed on its own loop, at once (the
 * kernel would go on handing it connections nobody accepts). */
static void worker_close(struct worker *w)
{
	st_server_stop(w->server, NULL, NULL);
	uv_close((uv_handle_t *)&w->stop, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	st_server_free(w->server);
	w->server = NULL;
	uv_loop_close(&w->loop);
}

static void workers_end(struct sv *v)
{
	size_t k;

	for (k = 0; k < v->n_workers; k++) {
		struct worker *w = &v->workers[k];
		if (!w->running) {
			worker_close(w);
			continue;
		}
		uv_thread_join(&w->thread);
		st_server_free(w->server);
		uv_loop_close(&w->loop);
	}
	free(v->workers);
	v->workers = NULL;
	v->n_workers = 0;
}

int cmd_serve(int argc, char **argv, struct st_global *g)
{
	struct sv_params p;
	struct sv v;
	struct st_server_params sp;
	struct st_error err;
	char host[256], cert[128] = "", key[128] = "", sub[4200], prio[512];
	enum st_exit status = ST_EXIT_OK;
	size_t i;
	static const char *const md_dirs[] = {"tmp", "new", "cur"};
	struct st_tls_creds *creds = NULL;

	memset(&p, 0, sizeof(p));
	memset(&v, 0, sizeof(v));
	uv_mutex_init(&v.mu);
	p.g = g;
	p.maildir = "./smtptls-mail";
	p.fp_digest = ST_DIGEST_SHA256;
	p.idle_timeout = 300;
	p.queue_dir = NULL;
	p.tls_level = ST_LEVEL_MAY;
	p.backoff_min = 10;
	p.backoff_max = 300;
	p.queue_lifetime = 432000;
	p.relay_timeout = 30;
	p.relay_concurrency = 10;
	p.fetch_timeout_ms = 10000;
	p.ocsp_cache_s = 600;
	add_restriction(&p, "permit_mynetworks");
	add_restriction(&p, "permit_sasl_authenticated");
	add_restriction(&p, "reject_unauth_destination");
	st_cmd_parse(&cmd_serve_argp, argc, argv, &p, g);
	v.p = &p;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN); /* a file size limit is a write error (EFBIG), a 451 */
	if (!p.hostname) {
		if (gethostname(host, sizeof(host)) || !host[0])
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		p.hostname = host;
	}
	if (!p.n_listen) {
		parse_listen("127.0.0.1:2525/smtp", &p.listen[p.n_listen++]);
		parse_listen("127.0.0.1:2465/smtps", &p.listen[p.n_listen++]);
	}
	/* everything that can be refused is, before anything listens */
	if ((status = user_lookup(&v)) != ST_EXIT_OK)
		return status;
	for (i = 0; i < 3; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", p.maildir, md_dirs[i]);
		if (mkdir_p(sub, 0700)) {
			st_out_error("--maildir: cannot make '%s': %s", sub, strerror(errno));
			return ST_EXIT_INPUT;
		}
	}
	if (p.auth_file) {
		v.auth = st_auth_db_load(p.auth_file, &err);
		if (!v.auth) {
			st_out_error("--auth-file: %s", err.msg);
			status = st_exit_for(err.cls);
			goto out;
		}
	}
	if (p.n_ccert_ca) {
		v.ccert_trust = st_trust_new();
		for (i = 0; v.ccert_trust && i < p.n_ccert_ca; i++)
			if (st_trust_add_file(v.ccert_trust, p.ccert_ca[i], &err)) {
				st_out_error("--ccert-ca-file: %s", err.msg);
				status = ST_EXIT_INPUT;
				goto out;
			}
	}
	if (p.relayhost || p.relay_mx) {
		const char *what = "relay";
		if (!p.queue_dir)
			p.queue_dir = "./smtptls-queue";
		if (relay_setup(&v, &err, &what)) {
			st_out_error("%s: %s", what, err.msg);
			status = st_exit_for(err.cls == ST_ERR_USAGE ? ST_ERR_INPUT : err.cls);
			goto out;
		}
	}
	if ((status = revocation_start(&v)) != ST_EXIT_OK)
		goto out;
	if (p.relay_clientcerts && load_fps(&v, p.relay_clientcerts)) {
		status = ST_EXIT_INPUT;
		goto out;
	}
	if (p.log) {
		v.log = strcmp(p.log, "-") ? fopen(p.log, "a") : stdout;
		if (!v.log) {
			st_out_error("--log: cannot open '%s': %s", p.log, strerror(errno));
			status = ST_EXIT_INPUT;
			goto out;
		}
	}
	if (p.cert) {
		snprintf(cert, sizeof(cert), "%s", p.cert);
		snprintf(key, sizeof(key), "%s", p.key);
	} else if (make_pki(&v, cert, key, sizeof(cert))) {
		status = ST_EXIT_INPUT;
		goto out;
	}
	memset(&sp, 0, sizeof(sp));
	sp.hostname = p.hostname;
	sp.listen = p.listen;
	sp.n_listen = p.n_listen;
	sp.tls.server = true;
	sp.tls.cert_file = p.cert ? p.cert : cert;
	sp.tls.key_file = p.cert ? p.key : key;
	sp.tls.request_client_cert = p.ask_ccert;
	if (p.protocols || p.ciphers) {
		int set = st_tls_protocols_parse(p.protocols ? p.protocols : "", &err);
		if (set < 0 || st_tls_priority(set, p.ciphers, prio, sizeof(prio), &err)) {
			st_out_error("--tls-%s: %s", set < 0 ? "protocols" : "ciphers", err.msg);
			status = ST_EXIT_USAGE;
			goto out;
		}
		sp.tls.priority = prio;
	}
	sp.max_conns = (unsigned)p.max_conns;
	sp.max_per_client = (unsigned)p.max_per_client;
	sp.tls_required = p.encrypt;
	sp.auth = v.auth != NULL;
	sp.auth_plaintext = p.auth_plaintext;
	sp.max_size = p.max_size;
	sp.idle_timeout_ms = p.idle_timeout * 1000;
	sp.min_data_rate = (unsigned)p.min_data_rate;
	sp.ccert_verify = ccert_verify;
	sp.tls_verdict = tls_verdict;
	sp.decide = decide;
	sp.body = spool_body;
	sp.release = spool_release;
	sp.fault = p.n_faults ? fault_at : NULL;
	sp.event = on_event;
	sp.arg = &v;
	/* the credentials, read once for every connection: a bad file is the user's to fix,
	 * not every client's */
	creds = st_tls_creds_new(&sp.tls, &err);
	if (!creds) {
		st_out_error("--cert: %s", err.msg);
		status = st_exit_for(err.cls == ST_ERR_USAGE ? ST_ERR_INPUT : err.cls);
		goto out;
	}
	sp.tls.creds = creds;
	if (uv_loop_init(&v.loop)) {
		status = ST_EXIT_INTERNAL;
		goto out;
	}
	uv_async_init(&v.loop, &v.wake, on_wake);
	v.wake.data = &v;
	if (!p.workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		p.workers = n < 1 ? 1 : n > 64 ? 64 : n;
	}
	sp.reuseport = p.workers > 1;
	v.server = st_server_start(&v.loop, &sp, &err);
	if (!v.server) {
		st_out_error("%s", err.msg);
		status = st_exit_for(err.cls);
		goto closeloop;
	}
	/* the relay queue, once the ports are known (a next hop there is ourselves); what an
	 * earlier run left is picked up first */
	if ((p.relayhost || p.relay_mx) && relay_start(&v, &err)) {
		st_out_error("--queue-dir: %s", err.msg);
		status = st_exit_for(err.cls == ST_ERR_USAGE ? ST_ERR_INPUT : err.cls);
		st_server_stop(v.server, NULL, NULL);
		goto closeloop;
	}
	/* the other loops, over the same listening sockets (bound once, above) */
	if (p.workers > 1 && !(v.workers = calloc((size_t)p.workers - 1, sizeof(*v.workers)))) {
		status = ST_EXIT_INTERNAL;
		st_server_stop(v.server, NULL, NULL);
		goto closeloop;
	}
	for (i = 0; i + 1 < (size_t)p.workers; i++) {
		struct worker *w = &v.workers[i];
		w->v = &v;
		if (uv_loop_init(&w->loop)) {
			status = ST_EXIT_INTERNAL;
			break;
		}
		sp.index = (unsigned)i + 1;
		w->server = st_server_start_shared(&w->loop, &sp, v.server, &err);
		if (!w->server) {
			st_out_error("%s", err.msg);
			status = st_exit_for(err.cls);
			uv_loop_close(&w->loop);
			break;
		}
		uv_async_init(&w->loop, &w->stop, worker_stop);
		w->stop.data = w;
		v.n_workers++;
	}
	if (status == ST_EXIT_OK)
		status = drop_privileges(&v, cert, key);
	if (status != ST_EXIT_OK) {
		st_server_stop(v.server, NULL, NULL);
		goto closeloop;
	}
	for (i = 0; i < v.n_workers; i++) {
		if (uv_thread_create(&v.workers[i].thread, worker_main, &v.workers[i])) {
			/* these never run: closed now, and no longer counted */
			size_t k;
			st_out_warn("--workers: cannot start a thread; %zu event loops", i + 1);
			for (k = i; k < v.n_workers; k++)
				worker_close(&v.workers[k]);
			v.n_workers = i;
			break;
		}
		v.workers[i].running = true;
	}
	uv_signal_init(&v.loop, &v.sigterm);
	uv_signal_init(&v.loop, &v.sigint);
	v.sigterm.data = v.sigint.data = &v;
	uv_signal_start(&v.sigterm, on_signal, SIGTERM);
	uv_signal_start(&v.sigint, on_signal, SIGINT);
	uv_signal_init(&v.loop, &v.sighup);
	v.sighup.data = &v;
	uv_signal_start(&v.sighup, on_signal, SIGHUP);
	if (p.pid_file) {
		FILE *f = fopen(p.pid_file, "w");
		if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0)
			st_out_warn("--pid-file: cannot write '%s': %s", p.pid_file,
			            strerror(errno));
	}
	/* ready: every listener is up; scripts wait for this line */
	{
		struct st_buf ready;
		st_buf_init(&ready, 1 << 16);
		st_buf_addf(&ready, "ready");
		for (i = 0; i < p.n_listen; i++)
			st_buf_addf(&ready,
			            strchr(p.listen[i].addr, ':') ? " %s [%s]:%u" : " %s %s:%u",
			            st_listen_mode_name(p.listen[i].mode), p.listen[i].addr,
			            p.listen[i].port);
		st_buf_addf(&ready, "\n");
		if (p.ready_file) {
			char tmp[1100];
			snprintf(tmp, sizeof(tmp), "%s.tmp", p.ready_file);
			if (write_file(tmp, &ready, 0644) || rename(tmp, p.ready_file))
				st_out_warn("--ready-file: cannot write '%s': %s", p.ready_file,
				            strerror(errno));
		}
		fputs(st_buf_str(&ready), stdout);
		fflush(stdout);
		{
			char listen[4096];
			snprintf(listen, sizeof(listen), "%s", st_buf_str(&ready) + 6);
			listen[strcspn(listen, "\n")] = '\0';
			log_event(&v, json_pack("{s:s, s:s}", "event", "ready", "listen", listen));
		}
		st_buf_release(&ready);
	}
	uv_run(&v.loop, UV_RUN_DEFAULT);
	if (p.pid_file)
		unlink(p.pid_file);
	workers_end(&v);
	uv_close((uv_handle_t *)&v.wake, NULL);
	uv_run(&v.loop, UV_RUN_DEFAULT);
	st_server_free(v.server);
	st_outq_free(v.outq);
	uv_loop_close(&v.loop);
	goto out;
closeloop:
	/* nothing listened (or not for long): every loop's handles are closed on it */
	if (v.outq)
		st_outq_stop(v.outq, NULL, NULL);
	if (v.dns)
		st_dns_detach(v.dns);
	uv_close((uv_handle_t *)&v.wake, NULL);
	uv_run(&v.loop, UV_RUN_DEFAULT);
	workers_end(&v);
	st_server_free(v.server);
	st_outq_free(v.outq);
	uv_loop_close(&v.loop);
out:
	for (i = 0; i < v.n_to_relay; i++)
		free(v.to_relay[i]); /* on disk: the next start picks them up */
	free(v.to_relay);
	uv_mutex_destroy(&v.mu);
	st_dns_free(v.dns);
	st_trust_free(v.relay_trust);
	st_tls_creds_free(v.client_creds);
	st_policy_tables_release(&v.tables);
	if (v.tmpdir[0]) {
		unlink(cert);
		unlink(key);
		rmdir(v.tmpdir);
	}
	if (v.log && v.log != stdout)
		fclose(v.log);
	st_auth_db_free(v.auth);
	st_trust_free(v.ccert_trust);
	st_crl_set_free(v.crls);
	st_ocsp_cache_free(v.ocsp_cache);
	st_tls_creds_free(creds);
	for (i = 0; i < v.n_fps; i++)
		free(v.fps[i]);
	free(v.fps);
	for (i = 0; i < p.n_domains; i++)
		free(p.domains[i]);
	return status;
}
