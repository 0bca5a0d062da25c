/* verify.c: the verify command: chains, names, purpose, time and revocation, offline or with CRL/OCSP */
#include "config.h"

#include <argp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cmd.h"
#include "output.h"
#include "revoke.h"
#include "verify.h"
#include "x509.h"

#define LIST_MAX   64   /* --untrusted, --crl-file */
#define MATCH_MAX  64   /* match patterns */
#define FILE_CERTS 64   /* certificates read from one FILE */
#define EXTRA_MAX  1024 /* certificates from all --untrusted files */

struct vf_params {
	struct st_global *g;
	const char *ca_files[LIST_MAX];
	int n_ca_files;
	const char *ca_paths[LIST_MAX];
	int n_ca_paths;
	bool no_system;
	const char *untrusted[LIST_MAX];
	int n_untrusted;
	const char *crl_files[LIST_MAX];
	int n_crl_files;
	enum st_purpose purpose;
	const char *hostname;
	const char *nexthop;
	const char *match;
	bool multi_label;
	bool partial_chain;
	time_t at;
	bool at_set;
	int warn_days;
	int crit_days;
	bool crl_fetch;
	bool ocsp;
	bool require_revocation;
	const char *cache_dir;
	long fetch_timeout_ms;
	const char *key_file;
	enum st_digest digest;
	char **files;
	int n_files;
};

enum {
	OPT_CA_FILE = 0x300,
	OPT_CA_PATH,
	OPT_NO_SYSTEM,
	OPT_UNTRUSTED,
	OPT_PURPOSE,
	OPT_HOSTNAME,
	OPT_NEXTHOP,
	OPT_MATCH,
	OPT_MULTI_LABEL,
	OPT_PARTIAL,
	OPT_AT_TIME,
	OPT_WARN_DAYS,
	OPT_CRIT_DAYS,
	OPT_CRL_FILE,
	OPT_CRL_FETCH,
	OPT_OCSP,
	OPT_REQUIRE_REV,
	OPT_CACHE_DIR,
	OPT_FETCH_TIMEOUT,
	OPT_KEY,
	OPT_DIGEST,
};

static const struct argp_option vf_options[] = {
    {NULL, 0, NULL, 0, "Trust:", 1},
    {"ca-file", OPT_CA_FILE, "FILE", 0,
     "Trust the certificates of this PEM or DER bundle (as smtp_tls_CAfile; repeatable)", 1},
    {"ca-path", OPT_CA_PATH, "DIR", 0,
     "Trust the certificates of this OpenSSL-style hashed directory (as smtp_tls_CApath); "
     "files without a hash link are reported (repeatable)",
     1},
    {"no-system-ca", OPT_NO_SYSTEM, NULL, 0,
     "Trust nothing unless --ca-file or --ca-path says so (as posttls-finger)", 1},
    {"untrusted", OPT_UNTRUSTED, "FILE", 0,
     "More intermediate certificates to build chains with (repeatable)", 1},
    {"partial-chain", OPT_PARTIAL, NULL, 0,
     "Accept a chain that ends at a trusted certificate that is not self-signed", 1},
    {NULL, 0, NULL, 0, "Names and purpose:", 2},
    {"hostname", OPT_HOSTNAME, "NAME", 0,
     "The server's host name (the MX host); alone it is matched as Postfix's 'hostname' "
     "strategy",
     2},
    {"nexthop", OPT_NEXTHOP, "DOMAIN", 0,
     "The next-hop domain; alone it is matched as 'nexthop:dot-nexthop' (Postfix secure)", 2},
    {"match", OPT_MATCH, "PATTERNS", 0,
     "Postfix match patterns separated by ':', ',' or spaces: hostname, nexthop, "
     "dot-nexthop, a name, or .domain",
     2},
    {"multi-label-wildcards", OPT_MULTI_LABEL, NULL, 0,
     "A '*' may match several labels, as postconf(5) documents "
     "tls_wildcard_matches_multiple_labels; Postfix 3.7 itself matches one",
     2},
    {"purpose", OPT_PURPOSE, "WHAT", 0,
     "Check the certificate may serve as: server, client or any (default any)", 2},
    {NULL, 0, NULL, 0, "Time:", 3},
    {"at-time", OPT_AT_TIME, "DATE", 0,
     "Verify as of DATE (YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or @SECONDS, UTC)", 3},
    {"warn-days", OPT_WARN_DAYS, "N", 0, "A certificate expiring within N days is a warning", 3},
    {"crit-days", OPT_CRIT_DAYS, "N", 0, "A certificate expiring within N days is a failure", 3},
    {NULL, 0, NULL, 0, "Revocation:", 4},
    {"crl-file", OPT_CRL_FILE, "FILE", 0, "Check against the CRLs in FILE, PEM or DER (repeatable)",
     4},
    {"crl-fetch", OPT_CRL_FETCH, NULL, 0,
     "Download the CRLs named in the certificates' CRL distribution points", 4},
    {"ocsp", OPT_OCSP, NULL, 0, "Ask the OCSP responder named in each certificate", 4},
    {"require-revocation", OPT_REQUIRE_REV, NULL, 0,
     "A revocation status that cannot be had is a failure, not a warning", 4},
    {"cache-dir", OPT_CACHE_DIR, "DIR", 0,
     "Where fetched CRLs are kept until their nextUpdate (default "
     "$XDG_CACHE_HOME/smtptls/crl or ~/.cache/smtptls/crl)",
     4},
    {"fetch-timeout", OPT_FETCH_TIMEOUT, "SECONDS", 0,
     "Time limit of each CRL or OCSP fetch (default 10)", 4},
    {NULL, 0, NULL, 0, "Other:", 5},
    {"key", OPT_KEY, "FILE", 0,
     "Check that the private key in FILE belongs to the certificate, and that the file is "
     "not readable by group or others",
     5},
    {"digest", 'd', "NAME", 0,
     "Digest of the chain's fingerprints: md5, sha1, sha224, sha256 (default), sha384, sha512", 5},
    {NULL, 0, NULL, 0, NULL, 0},
};

const struct st_optvals cmd_verify_values[] = {
    {"ca-file", "@file"},
    {"ca-path", "@dir"},
    {"untrusted", "@file"},
    {"crl-file", "@file"},
    {"cache-dir", "@dir"},
    {"key", "@file"},
    {"purpose", "server client any"},
    {"digest", "md5 sha1 sha224 sha256 sha384 sha512"},
    {"match", "hostname nexthop dot-nexthop"},
    {NULL, NULL},
};

/* Parse a date for --at-time; -1 when it is none of the forms. */
static time_t parse_date(const char *s)
{
	struct tm tm;
	const char *end;
	char *e;
	long long v;

	if (s[0] == '@') {
		errno = 0;
		v = strtoll(s + 1, &e, 10);
		if (errno || e == s + 1 || *e)
			return (time_t)-1;
		return (time_t)v;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	}
	if (!end || *end) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
	}
	if (!end || *end)
		return (time_t)-1;
	return timegm(&tm);
}

static int parse_days(struct argp_state *state, const char *opt, const char *arg)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (*arg == '\0' || *end || v < 0 || v > 36500)
		st_usage_error(state, "%s: '%s' is not a number of days (0-36500)", opt, arg);
	return (int)v;
}

static error_t vf_parse(int key, char *arg, struct argp_state *state)
{
	struct vf_params *p = state->input;
	char *end;
	long v;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = p->g;
		break;
	case OPT_CA_FILE:
		if (p->n_ca_files >= LIST_MAX)
			st_usage_error(state, "--ca-file: at most %d files", LIST_MAX);
		p->ca_files[p->n_ca_files++] = arg;
		break;
	case OPT_CA_PATH:
		if (p->n_ca_paths >= LIST_MAX)
			st_usage_error(state, "--ca-path: at most %d directories", LIST_MAX);
		p->ca_paths[p->n_ca_paths++] = arg;
		break;
	case OPT_NO_SYSTEM:
		p->no_system = true;
		break;
	case OPT_UNTRUSTED:
		if (p->n_untrusted >= LIST_MAX)
			st_usage_error(state, "--untrusted: at most %d files", LIST_MAX);
		p->untrusted[p->n_untrusted++] = arg;
		break;
	case OPT_PARTIAL:
		p->partial_chain = true;
		break;
	case OPT_HOSTNAME:
		p->hostname = arg;
		break;
	case OPT_NEXTHOP:
		p->nexthop = arg;
		break;
	case OPT_MATCH:
		p->match = arg;
		break;
	case OPT_MULTI_LABEL:
		p->multi_label = true;
		break;
	case OPT_PURPOSE:
		if (strcmp(arg, "server") == 0)
			p->purpose = ST_PURPOSE_SERVER;
		else if (strcmp(arg, "client") == 0)
			p->purpose = ST_PURPOSE_CLIENT;
		else if (strcmp(arg, "any") == 0)
			p->purpose = ST_PURPOSE_ANY;
		else
			st_usage_error(state, "--purpose: '%s' is not server, client or any", arg);
		break;
	case OPT_AT_TIME:
		p->at = parse_date(arg);
		/* 1970 to 9999: no arithmetic on the date can overflow */
		if (p->at == (time_t)-1 || p->at < 0 || p->at > 253402300799LL)
			st_usage_error(state,
			               "--at-time: '%s' is not YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or "
			               "@SECONDS",
			               arg);
		p->at_set = true;
		break;
	case OPT_WARN_DAYS:
		p->warn_days = parse_days(state, "--warn-days", arg);
		break;
	case OPT_CRIT_DAYS:
		p->crit_days = parse_days(state, "--crit-days", arg);
		break;
	case OPT_CRL_FILE:
		if (p->n_crl_files >= LIST_MAX)
			st_usage_error(state, "--crl-file: at most %d files", LIST_MAX);
		p->crl_files[p->n_crl_files++] = arg;
		break;
	case OPT_CRL_FETCH:
		p->crl_fetch = true;
		break;
	case OPT_OCSP:
		p->ocsp = true;
		break;
	case OPT_REQUIRE_REV:
		p->require_revocation = true;
		break;
	case OPT_CACHE_DIR:
		p->cache_dir = arg;
		break;
	case OPT_FETCH_TIMEOUT:
		v = strtol(arg, &end, 10);
		if (*arg == '\0' || *end || v < 1 || v > 600)
			st_usage_error(state, "--fetch-timeout: '%s' is not 1-600 seconds", arg);
		p->fetch_timeout_ms = v * 1000;
		break;
	case OPT_KEY:
		p->key_file = arg;
		break;
	case 'd':
		p->digest = st_parse_digest(state, "--digest", arg);
		break;
	case ARGP_KEY_ARGS:
		p->files = state->argv + state->next;
		p->n_files = state->argc - state->next;
		state->next = state->argc;
		break;
	case ARGP_KEY_NO_ARGS:
		st_usage_error(state, "no FILE given (use - for standard input)");
		break;
	case ARGP_KEY_END:
		if (p->warn_days && p->crit_days && p->warn_days < p->crit_days)
			st_usage_error(state, "--warn-days %d is less than --crit-days %d",
			               p->warn_days, p->crit_days);
		if (p->key_file && p->n_files > 1)
			st_usage_error(state, "--key goes with one FILE, the key's certificate");
		if (p->require_revocation && !p->crl_fetch && !p->ocsp && !p->n_crl_files)
			st_usage_error(state,
			               "--require-revocation needs --crl-file, --crl-fetch or "
			               "--ocsp");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

const struct argp cmd_verify_argp = {
    vf_options,
    vf_parse,
    "FILE...",
    "Verify certificate chains: trust, names as Postfix matches them, purpose, time and "
    "revocation (CRL, OCSP).\v"
    "Each FILE holds a certificate, optionally followed by its intermediates as a server "
    "sends them; - reads standard input. Each FILE is judged on its own; the exit status is "
    "the worst: 0 ok, 11 warnings, 1 failed, 2 usage, 3 unreadable, 9 output, 10 internal. "
    "See smtptls-verify(1).",
    st_global_children,
    NULL,
    NULL};

/* Items read from a file: certificates, and private keys for --key. */
struct items {
	struct st_x509_item *v[FILE_CERTS];
	size_t n;
};

static void items_release(struct items *it)
{
	size_t i;

	for (i = 0; i < it->n; i++)
		st_x509_item_free(it->v[i]);
	it->n = 0;
}

/*
 * Read the certificates of a file into it (appending). Other items are
 * skipped. Returns the exit status of the reading; messages are printed.
 */
static enum st_exit read_certs(const char *path, const char *shown, enum st_x509_kind kind,
                               struct items *it, size_t max, char *why, size_t whysize)
{
	struct st_error err = {ST_ERR_NONE, "", 0};
	struct st_x509_reader *r;
	struct st_x509_item *item;
	struct st_buf data;
	struct st_x509_bad bad = {{ST_ERR_NONE, "", 0}, 0};
	enum st_exit status = ST_EXIT_OK;
	bool warned_max = false;
	size_t found = 0;
	int rc;

	st_buf_init(&data, ST_INPUT_MAX);
	if (why && whysize)
		why[0] = '\0';
	if (st_read_file(path, &data, &err)) {
		st_out_error("%s", err.msg);
		if (why)
			snprintf(why, whysize, "%s", err.msg);
		st_buf_release(&data);
		return st_exit_for(err.cls);
	}
	r = st_x509_reader_new(shown, data.data, data.len);
	if (!r) {
		st_buf_release(&data);
		st_out_error("out of memory");
		return ST_EXIT_INTERNAL;
	}
	while ((rc = st_x509_reader_next(r, &item, &err)) != 0) {
		if (rc < 0) {
			st_x509_bad_add(&bad, &err);
			continue;
		}
		if (st_x509_item_kind(item) != kind || it->n >= max) {
			if (it->n >= max && kind == ST_X509_CERT && !warned_max)
				st_out_warn(
				    "'%s': more than %zu certificates: the rest are ignored", shown,
				    max);
			warned_max |= it->n >= max && kind == ST_X509_CERT;
			st_x509_item_free(item);
			continue;
		}
		if (st_x509_item_parse_problem(item)) {
			st_error_set(&err, ST_ERR_INPUT,
			             "'%s' line %u: cannot parse certificate: %s", shown,
			             st_x509_item_line(item), st_x509_item_parse_problem(item));
			st_x509_bad_add(&bad, &err);
			st_x509_item_free(item);
			continue;
		}
		it->v[it->n++] = item;
		found++;
	}
	st_x509_reader_free(r);
	st_buf_release(&data);
	/* one line for all the bad blocks of a file */
	if (st_x509_bad_report(&bad, &err)) {
		st_out_error("%s", err.msg);
		if (why)
			snprintf(why, whysize, "%s", err.msg);
		status = st_exit_worse(status, st_exit_for(err.cls));
	}
	if (found == 0 && status == ST_EXIT_OK) {
		st_out_error("'%s': no %s found", shown, st_x509_kind_name(kind));
		if (why)
			snprintf(why, whysize, "'%s': no %s found", shown, st_x509_kind_name(kind));
		status = ST_EXIT_INPUT;
	}
	return status;
}

static const char *status_word(enum st_verify_status s)
{
	return s == ST_VERIFY_OK ? "ok" : s == ST_VERIFY_WARN ? "warn" : "fail";
}

static json_t *issues_json(const struct st_verify_issue *v, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a && i < n; i++)
		json_array_append_new(
		    a,
		    json_pack("{s:s, s:s, s:o, s:o}", "code", st_verr_name(v[i].code), "message",
		              v[i].message, "openssl_code",
		              v[i].openssl_code ? json_integer(v[i].openssl_code) : json_null(),
		              "depth", v[i].depth >= 0 ? json_integer(v[i].depth) : json_null()));
	return a;
}

static json_t *time_json(time_t t)
{
	char buf[32];

	if (t == (time_t)-1 || st_time_iso(t, buf, sizeof(buf)))
		return json_null();
	return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static json_t *result_json(const char *file, const struct st_verify_result *res,
                           enum st_digest digest)
{
	json_t *o = json_object(), *chain = json_array(), *names = json_array();
	size_t i;

	if (!o || !chain || !names) {
		json_decref(o);
		json_decref(chain);
		json_decref(names);
		return NULL;
	}
	for (i = 0; i < res->n_chain; i++) {
		const struct st_verify_cert *c = &res->chain[i];
		const struct st_rev_result *r = &c->revocation;
		json_array_append_new(
		    chain,
		    json_pack(
		        "{s:i, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:{s:s, s:o, s:o, s:o, s:o}}",
		        "depth", (int)i, "subject", c->subject, "issuer", c->issuer, "not_before",
		        time_json(c->not_before), "not_after", time_json(c->not_after),
		        "fingerprint", c->fingerprint, "pkey_fingerprint", c->pkey_fingerprint,
		        "source", c->source, "revocation", "status", st_rev_status_name(r->status),
		        "source", str_or_null(r->source), "reason",
		        r->status == ST_REV_REVOKED ? json_string(st_rev_reason_name(r->reason))
		                                    : json_null(),
		        "revoked_at",
		        r->status == ST_REV_REVOKED ? time_json(r->revoked_at) : json_null(),
		        "detail", str_or_null(r->detail)));
	}
	for (i = 0; i < res->n_names; i++)
		json_array_append_new(names, json_string(res->names[i]));
	json_object_set_new(o, "file", json_string(file));
	json_object_set_new(o, "status", json_string(status_word(res->status)));
	json_object_set_new(o, "postfix_status", json_string(res->postfix_status));
	json_object_set_new(o, "trusted", json_boolean(res->trusted));
	json_object_set_new(o, "names", names);
	json_object_set_new(o, "name_checked", json_boolean(res->name_checked));
	json_object_set_new(o, "matched_name",
	                    res->name_matched ? json_string(res->matched) : json_null());
	json_object_set_new(o, "errors", issues_json(res->errors, res->n_errors));
	json_object_set_new(o, "warnings", issues_json(res->warnings, res->n_warnings));
	json_object_set_new(o, "digest", json_string(st_digest_name(digest)));
	json_object_set_new(o, "chain", chain);
	return o;
}

static void result_text(const char *file, const struct st_verify_result *res)
{
	char head[1400], line[1600], date[32];
	size_t i;
	enum st_style style = res->status == ST_VERIFY_OK     ? ST_STYLE_OK
	                      : res->status == ST_VERIFY_WARN ? ST_STYLE_WARN
	                                                      : ST_STYLE_BAD;

	snprintf(head, sizeof(head), "%s: %s", file,
	         res->status == ST_VERIFY_OK     ? "OK"
	         : res->status == ST_VERIFY_WARN ? "WARN"
	                                         : "FAIL");
	st_out_styled(style, head);
	if (res->name_matched)
		snprintf(line, sizeof(line), " (%s, name '%s' matched)\n", res->postfix_status,
		         res->matched);
	else
		snprintf(line, sizeof(line), " (%s)\n", res->postfix_status);
	st_out_styled(ST_STYLE_NONE, line);
	for (i = 0; i < res->n_errors; i++) {
		if (res->errors[i].depth >= 0)
			snprintf(line, sizeof(line), "  error: depth %d: %s\n",
			         res->errors[i].depth, res->errors[i].message);
		else
			snprintf(line, sizeof(line), "  error: %s\n", res->errors[i].message);
		st_out_styled(ST_STYLE_BAD, line);
	}
	for (i = 0; i < res->n_warnings; i++) {
		if (res->warnings[i].depth >= 0)
			snprintf(line, sizeof(line), "  warning: depth %d: %s\n",
			         res->warnings[i].depth, res->warnings[i].message);
		else
			snprintf(line, sizeof(line), "  warning: %s\n", res->warnings[i].message);
		st_out_styled(ST_STYLE_WARN, line);
	}
	for (i = 0; i < res->n_chain; i++) {
		const struct st_verify_cert *c = &res->chain[i];
		if (st_time_iso(c->not_after, date, sizeof(date)))
			snprintf(date, sizeof(date), "?");
		snprintf(line, sizeof(line), "  %zu %s\n    not after %s, from %s%s%s\n", i,
		         c->subject, date, c->source,
		         c->revocation.status != ST_REV_NOT_CHECKED ? ", revocation " : "",
		         c->revocation.status != ST_REV_NOT_CHECKED
		             ? st_rev_status_name(c->revocation.status)
		             : "");
		st_out_styled(ST_STYLE_NONE, line);
	}
}

/* --key: the key must be the certificate's; its file should be for its owner's eyes only. */
static enum st_exit check_key(const char *path, const struct st_x509_item *cert,
                              struct st_verify_result *res)
{
	struct items keys = {{0}, 0};
	struct stat st;
	enum st_exit rc = read_certs(path, path, ST_X509_PRIVKEY, &keys, 1, NULL, 0);

	if (rc != ST_EXIT_OK) {
		items_release(&keys);
		return rc;
	}
	if (!st_key_matches(keys.v[0], cert))
		st_verify_result_add(res, false, ST_V_KEY_MISMATCH, 0, 0,
		                     "the private key in '%s' does not belong to the certificate",
		                     path);
	if (stat(path, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
		st_verify_result_add(
		    res, true, ST_V_KEY_PERMISSIONS, -1, 0,
		    "'%s' is readable by %s (mode %03o): make it mode 400 or 600", path,
		    (st.st_mode & S_IRGRP) && (st.st_mode & S_IROTH) ? "group and others"
		    : (st.st_mode & S_IRGRP)                         ? "its group"
		                                                     : "others",
		    (unsigned)(st.st_mode & 0777));
	items_release(&keys);
	return ST_EXIT_OK;
}

static enum st_exit verify_one(const struct vf_params *p, struct st_verify_params *vp,
                               struct st_crl_set *crls, const char *path,
                               struct st_x509_item *const *extra, size_t n_extra)
{
	struct items certs = {{0}, 0};
	struct st_verify_result res;
	struct st_error err = {ST_ERR_NONE, "", 0};
	char why[ST_ERROR_MAX];
	char *file = strdup(path);
	const char *shown;
	enum st_exit status;

	if (!file) {
		st_out_error("out of memory");
		return ST_EXIT_INTERNAL;
	}
	st_sanitize(file);
	shown = strcmp(path, "-") == 0 ? "standard input" : file;
	status = read_certs(path, shown, ST_X509_CERT, &certs, FILE_CERTS, why, sizeof(why));
	if (certs.n == 0) {
		st_sanitize(why);
		if (p->g->json)
			st_out_json(json_pack("{s:s, s:s, s:{s:s, s:s}}", "file", file, "status",
			                      "error", "error", "class", "input", "message",
			                      why[0] ? why : "no certificate could be read"));
		goto out;
	}
	if (st_verify_chain(vp, certs.v, certs.n, extra, n_extra, &res, &err)) {
		st_out_error("'%s': %s", shown, err.msg);
		st_verify_result_release(&res);
		status = st_exit_worse(status, st_exit_for(err.cls));
		goto out;
	}
	if (p->key_file)
		status = st_exit_worse(status, check_key(p->key_file, certs.v[0], &res));
	if (p->g->json)
		st_out_json(result_json(file, &res, p->digest));
	else
		result_text(file, &res);
	status = st_exit_worse(status, res.status == ST_VERIFY_OK     ? ST_EXIT_OK
	                               : res.status == ST_VERIFY_WARN ? ST_EXIT_WARN
	                                                              : ST_EXIT_FAIL);
	st_verify_result_release(&res);
out:
	items_release(&certs);
	free(file);
	return status;
}

/* The CRL cache directory: --cache-dir, $XDG_CACHE_HOME/smtptls/crl, ~/.cache/smtptls/crl. */
static const char *cache_dir(const struct vf_params *p, char *buf, size_t size)
{
	const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");

	if (p->cache_dir)
		return p->cache_dir;
	if (x && *x == '/')
		snprintf(buf, size, "%s/smtptls/crl", x);
	else if (h && *h == '/')
		snprintf(buf, size, "%s/.cache/smtptls/crl", h);
	else
		return NULL;
	return buf;
}

int cmd_verify(int argc, char **argv, struct st_global *g)
{
	struct vf_params p;
	struct st_verify_params vp;
	struct st_error err = {ST_ERR_NONE, "", 0};
	struct st_trust *trust = NULL;
	struct st_crl_set *crls = NULL;
	struct items extra = {{0}, 0};
	struct st_x509_item **extra_v = NULL;
	size_t n_extra = 0, i, n_notes;
	char patterns[MATCH_MAX][256];
	const char *pattern_ptrs[MATCH_MAX];
	const struct st_trust_note *notes;
	char cachebuf[4096];
	enum st_exit status = ST_EXIT_OK;
	int n_patterns = 0, k;

	memset(&p, 0, sizeof(p));
	p.g = g;
	p.digest = ST_DIGEST_SHA256;
	p.fetch_timeout_ms = 10000;
	st_cmd_parse(&cmd_verify_argp, argc, argv, &p, g);

	/* names */
	if (p.match || p.hostname || p.nexthop) {
		const char *spec = p.match      ? p.match
		                   : p.hostname ? "hostname"
		                                : "nexthop:dot-nexthop";
		n_patterns =
		    st_match_expand(spec, p.hostname, p.nexthop, patterns, MATCH_MAX, &err);
		if (n_patterns < 0) {
			fprintf(stderr,
			        "smtptls verify: %s\nTry 'smtptls verify --help' for more "
			        "information.\n",
			        err.msg);
			return ST_EXIT_USAGE;
		}
		for (k = 0; k < n_patterns; k++)
			pattern_ptrs[k] = patterns[k];
	}

	/* trust */
	trust = st_trust_new();
	if (!trust) {
		st_out_error("out of memory");
		return ST_EXIT_INTERNAL;
	}
	for (k = 0; k < p.n_ca_files; k++)
		if (st_trust_add_file(trust, p.ca_files[k], &err)) {
			st_out_error("%s", err.msg);
			status = st_exit_for(err.cls);
			goto out;
		}
	for (k = 0; k < p.n_ca_paths; k++)
		if (st_trust_add_dir(trust, p.ca_paths[k], &err)) {
			st_out_error("%s", err.msg);
			status = st_exit_for(err.cls);
			goto out;
		}
	if (!p.n_ca_files && !p.n_ca_paths && !p.no_system && st_trust_add_system(trust, &err)) {
		st_out_error("%s", err.msg);
		status = st_exit_for(err.cls);
		goto out;
	}
	notes = st_trust_notes(trust, &n_notes);
	for (i = 0; i < n_notes; i++)
		st_out_warn("%s", notes[i].message);
	st_out_note(1, "trusted certificates: %zu", st_trust_count(trust));

	/* intermediates from --untrusted, kept for every FILE */
	extra_v = calloc((size_t)p.n_untrusted * FILE_CERTS + 1, sizeof(*extra_v));
	if (!extra_v) {
		st_out_error("out of memory");
		status = ST_EXIT_INTERNAL;
		goto out;
	}
	for (k = 0; k < p.n_untrusted; k++) {
		struct items one = {{0}, 0};
		enum st_exit rc = read_certs(p.untrusted[k], p.untrusted[k], ST_X509_CERT, &one,
		                             FILE_CERTS, NULL, 0);
		if (rc != ST_EXIT_OK) {
			items_release(&one);
			status = rc;
			goto out;
		}
		for (i = 0; i < one.n; i++)
			extra_v[n_extra++] = one.v[i];
	}

	/* revocation */
	if (p.n_crl_files || p.crl_fetch) {
		crls = st_crl_set_new();
		if (!crls) {
			st_out_error("out of memory");
			status = ST_EXIT_INTERNAL;
			goto out;
		}
		for (k = 0; k < p.n_crl_files; k++)
			if (st_crl_set_add_file(crls, p.crl_files[k], &err)) {
				st_out_error("%s", err.msg);
				status = st_exit_for(err.cls);
				goto out;
			}
	}

	memset(&vp, 0, sizeof(vp));
	vp.trust = trust;
	vp.purpose = p.purpose;
	vp.match = pattern_ptrs;
	vp.n_match = (size_t)n_patterns;
	vp.wildcard_multi_label = p.multi_label;
	vp.partial_chain = p.partial_chain;
	vp.at = p.at_set ? p.at : time(NULL);
	vp.warn_days = p.warn_days;
	vp.crit_days = p.crit_days;
	vp.crls = crls;
	vp.crl_fetch = p.crl_fetch;
	vp.ocsp = p.ocsp;
	vp.require_revocation = p.require_revocation;
	vp.fetch.timeout_ms = p.fetch_timeout_ms;
	vp.fetch.max_size = 0; /* the module's defaults */
	vp.fetch.cache_dir = cache_dir(&p, cachebuf, sizeof(cachebuf));
	vp.digest = p.digest;

	for (k = 0; k < p.n_files && !st_out_failed(); k++)
		status =
		    st_exit_worse(status, verify_one(&p, &vp, crls, p.files[k], extra_v, n_extra));
	{
		size_t indexed, parsed;
		st_trust_stats(trust, &indexed, &parsed);
		if (indexed)
			st_out_note(1, "system trust store: %zu certificates indexed, %zu parsed",
			            indexed, parsed);
	}
out:
	for (i = 0; i < n_extra; i++)
		st_x509_item_free(extra_v[i]);
	free(extra_v);
	items_release(&extra);
	st_crl_set_free(crls);
	st_trust_free(trust);
	return status;
}
