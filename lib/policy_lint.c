/* policy_lint.c: lint of Postfix TLS policy tables: each finding with a stable code, where it is, and what Postfix does with it */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "policy_lint.h"
#include "tls.h"

/* What Postfix 3.7 does with an entry it calls invalid, and with a TLS setting it cannot use. */
#define INVALID                                                                                    \
	"Postfix marks the entry invalid and defers mail for this destination with '4.7.5 "        \
	"client TLS configuration problem'"
#define HANDSHAKE                                                                                  \
	"Postfix aborts each TLS handshake and defers mail for this destination with '4.7.5 "      \
	"Cannot start TLS: handshake failure'"

static const char *const severity_names[] = {"note", "warning", "error"};

const char *st_lint_severity_name(enum st_lint_severity s)
{
	return (unsigned)s < 3 ? severity_names[s] : "?";
}

int st_lint_worst(const struct st_lint_diag *d, size_t n)
{
	int worst = -1;
	size_t i;

	for (i = 0; i < n; i++)
		if ((int)d[i].severity > worst)
			worst = (int)d[i].severity;
	return worst;
}

/* A finding and where it sorts: table, then line, then the order it was found in. */
struct item {
	struct st_lint_diag d;
	size_t table, seq;
};

struct lint {
	const struct st_lint_context *ctx;
	unsigned version; /* 30711 for "3.7.11"; 0 unknown */
	enum st_level default_level;
	bool paired; /* the tables' habit: at least half their domains have a ".domain" entry too */
	struct item *items;
	size_t n, cap, table;
	bool nomem;
};

static void add(struct lint *l, enum st_lint_severity sev, const char *code, const char *file,
                unsigned line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void add(struct lint *l, enum st_lint_severity sev, const char *code, const char *file,
                unsigned line, const char *key, const char *fmt, ...)
{
	struct item *it;
	va_list ap;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct item *n = realloc(l->items, cap * sizeof(*n));
		if (!n) {
			l->nomem = true;
			return;
		}
		l->items = n, l->cap = cap;
	}
	it = &l->items[l->n];
	memset(it, 0, sizeof(*it));
	it->table = l->table;
	it->seq = l->n++;
	it->d.severity = sev;
	snprintf(it->d.code, sizeof(it->d.code), "%s", code);
	snprintf(it->d.file, sizeof(it->d.file), "%s", file);
	it->d.line = line;
	snprintf(it->d.key, sizeof(it->d.key), "%s", key);
	st_sanitize(it->d.key);
	va_start(ap, fmt);
	vsnprintf(it->d.message, sizeof(it->d.message), fmt, ap);
	va_end(ap);
	st_sanitize(it->d.message);
}

/* "3.7.11" as 30711; 0 when it cannot be read. */
static unsigned parse_version(const char *v)
{
	unsigned a = 0, b = 0, c = 0;

	if (!v || sscanf(v, "%u.%u.%u", &a, &b, &c) < 2 || b > 99 || c > 99)
		return 0;
	return a * 10000 + b * 100 + c;
}

static const char *version_name(unsigned v, char *buf, size_t size)
{
	snprintf(buf, size, "%u.%u", v / 10000, v / 100 % 100);
	return buf;
}

/* ---- the value of an entry ---- */

enum rep { ONCE, APPEND, LAST };

/* The attributes Postfix knows, from which release, and whether they may be repeated. */
static const struct attr {
	const char *name;
	unsigned since;
	enum rep rep;
} attrs[] = {
    {"ciphers", 0, ONCE},
    {"protocols", 0, ONCE},
    {"exclude", 0, ONCE},
    {"match", 0, APPEND},
    {"tafile", 0, APPEND},
    {"servername", 30400, ONCE},
    {"connection_reuse", 30400, LAST},
    {"enable_rpk", 30900, LAST},
    {"policy_type", 31000, ONCE},
    {"policy_domain", 31000, ONCE},
    {"policy_ttl", 31000, ONCE},
    {"policy_string", 31000, APPEND},
    {"mx_host_pattern", 31000, APPEND},
    {"policy_failure", 31000, ONCE},
};
#define N_ATTRS     (sizeof(attrs) / sizeof(attrs[0]))
#define POLICY_TYPE 8 /* its index in attrs */

/* The TLSRPT/MTA-STS attributes (Postfix 3.10): they need policy_type. */
static bool is_ext_attr(size_t i)
{
	return attrs[i].since == 31000 && strcmp(attrs[i].name, "policy_type") != 0;
}

/*
 * The next word of a value, split as Postfix splits it: white space and
 * commas. From 3.10, "{ name = value }" is one word (*braced), its inside
 * trimmed. False at the end.
 */
static bool next_word(const char **pp, bool braces, char *out, size_t size, bool *braced)
{
	const char *p = *pp, *s, *e;
	size_t n;

	while (*p && strchr(", \t\r\n", *p))
		p++;
	if (!*p)
		return false;
	*braced = false;
	if (braces && *p == '{' && strchr(p, '}')) {
		s = p + 1;
		e = strchr(p, '}');
		*pp = e + 1;
		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		*braced = true;
	} else {
		s = p;
		e = p + strcspn(p, ", \t\r\n");
		*pp = e;
	}
	n = (size_t)(e - s) < size - 1 ? (size_t)(e - s) : size - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

/* A host name as Postfix's valid_hostname takes it: labels of letters, digits, '-', '_'. */
static bool is_hostname(const char *s)
{
	size_t label = 0, len = strlen(s);
	bool alpha = false;
	const char *p;

	if (len == 0 || len > 255)
		return false;
	for (p = s; *p; p++) {
		if (*p == '.') {
			if (label == 0 || p[1] == '\0')
				return false;
			label = 0;
		} else if (*p == '-') {
			if (label == 0 || p[1] == '.' || p[1] == '\0')
				return false;
			label++;
			alpha = true;
		} else if (isalnum((unsigned char)*p) || *p == '_') {
			if (!isdigit((unsigned char)*p))
				alpha = true;
			label++;
		} else
			return false;
		if (label > 63)
			return false;
	}
	return alpha; /* all digits: a numeric "host name" Postfix refuses */
}

static const char *closest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	unsigned best_d = 3, d;
	size_t i;

	for (i = 0; i < n; i++) {
		d = st_edit_distance(word, names[i]);
		if (d < best_d)
			best = names[i], best_d = d;
	}
	return best;
}

static const char *const level_words[] = {"none", "may",       "encrypt", "fingerprint",
                                          "dane", "dane-only", "verify",  "secure"};

static size_t digest_bytes(const char *name)
{
	static const struct {
		const char *name;
		size_t len;
	} d[] = {{"md5", 16},    {"sha1", 20},   {"sha224", 28},
	         {"sha256", 32}, {"sha384", 48}, {"sha512", 64}};
	size_t i;

	for (i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		if (strcasecmp(name, d[i].name) == 0)
			return d[i].len;
	return 0;
}

/*
 * The digest smtp_tls_fingerprint_digest names: as configured, else
 * Postfix's default ("md5" below compatibility level 3.6, "sha256" from
 * it; before Postfix 3.6 always md5). *alt is a second length that is as
 * likely when the context cannot tell (compatibility level "3", unknown).
 */
static const char *fingerprint_digest(const struct lint *l, size_t *alt)
{
	const struct st_lint_context *c = l->ctx;

	*alt = 0;
	if (c->digest && *c->digest)
		return c->digest;
	if (l->version && l->version < 30600)
		return "md5";
	if (c->compatibility_level >= 4)
		return "sha256";
	if (c->compatibility_level == 1 || c->compatibility_level == 2)
		return "md5";
	*alt = 16;
	return "sha256";
}

static void check_fingerprints(struct lint *l, const char *file, const struct st_policy_entry *e,
                               const char *val)
{
	size_t alt, want, i;
	const char *digest = fingerprint_digest(l, &alt);
	char item[256];
	const char *p = val;

	want = digest_bytes(digest);
	if (!want)
		return;
	while (*p) {
		size_t n = strcspn(p, "|"), hex = 0;
		bool other = false;
		snprintf(item, sizeof(item), "%.*s", (int)(n < 255 ? n : 255), p);
		for (i = 0; item[i]; i++) {
			if (isxdigit((unsigned char)item[i]))
				hex++;
			else if (item[i] != ':')
				other = true;
		}
		if (*item && (other || (hex != 2 * want && hex != 2 * alt)))
			add(l, ST_LINT_WARNING, "fingerprint-length", file, e->line, e->key,
			    "match '%.80s' is not a %s digest (%zu hex digits%s, "
			    "smtp_tls_fingerprint_digest): it never matches; when no match is "
			    "usable Postfix logs 'all fingerprints unusable' and defers mail with "
			    "'4.7.5 Server certificate not verified'",
			    item, digest, 2 * want,
			    alt ? ", or 32 for md5 below compatibility level 3.6" : "");
		p += n;
		if (*p)
			p++;
	}
}

static void check_protocols(struct lint *l, const char *file, const struct st_policy_entry *e,
                            const char *val)
{
	struct st_error err;
	char buf[16], names[128] = "";
	int set, i;
	size_t len = 0;

	if (!*val)
		return; /* every protocol, as Postfix takes it */
	if (l->version && l->version < 30600 && (strstr(val, ">=") || strstr(val, "<="))) {
		add(l, ST_LINT_ERROR, "too-new", file, e->line, e->key,
		    "protocols '%.60s': the >= and <= bounds are read from Postfix 3.6 on; "
		    "Postfix %s logs 'Invalid TLS protocol list' and aborts each TLS handshake: "
		    "mail for this destination is deferred with '4.7.5 Cannot start TLS: "
		    "handshake failure'",
		    val, version_name(l->version, buf, sizeof(buf)));
		return;
	}
	set = st_tls_protocols_parse(val, &err);
	if (set < 0) {
		add(l, ST_LINT_ERROR, "invalid-protocols", file, e->line, e->key,
		    "protocols '%.60s': %s; " HANDSHAKE, val, err.msg);
		return;
	}
	if (set & (ST_TLS_TLSV1_2 | ST_TLS_TLSV1_3))
		return;
	for (i = 0; i < 6; i++)
		if (set & (1 << i))
			len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
			                        len ? ", " : "", st_tls_proto_name(1 << i));
	add(l, ST_LINT_WARNING, "deprecated-protocols", file, e->line, e->key,
	    "protocols '%.60s' leaves only %s, without TLSv1.2 and TLSv1.3: SSL is broken and "
	    "TLS 1.0 and 1.1 are deprecated (RFC 8996); servers that follow it refuse the "
	    "handshake and mail for this destination is deferred",
	    val, names);
}

static void lint_value(struct lint *l, const char *file, const struct st_policy_entry *e)
{
	char word[4096], vbuf[16];
	const char *p = e->value, *prev_list = NULL;
	bool braced, braces = l->version >= 31000 || l->version == 0;
	bool seen[N_ATTRS] = {false}, has_tafile = false, has_match = false, has_ext = false;
	enum st_level level;
	int n_ignored = 0;
	size_t i;

	if (!next_word(&p, braces, word, sizeof(word), &braced)) {
		add(l, ST_LINT_ERROR, "no-level", file, e->line, e->key,
		    "the policy '%.60s' names no TLS security level; " INVALID, e->value);
		return;
	}
	if (braced || st_level_parse(word, &level) < 0) {
		const char *near = closest(word, level_words, 8);
		add(l, ST_LINT_ERROR, "unknown-level", file, e->line, e->key,
		    "'%.60s' is not a TLS security level%s%s%s; " INVALID, word,
		    near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
		return;
	}
	while (next_word(&p, braces, word, sizeof(word), &braced)) {
		char *eq, *name = word, *val;
		const struct attr *a = NULL;
		if (level == ST_LEVEL_NONE) {
			n_ignored++;
			continue;
		}
		eq = strchr(word, '=');
		if (!eq || eq == word || (!braced && word[0] == '{')) {
			if (!braced && word[0] == '{')
				add(l, ST_LINT_ERROR, "malformed-attribute", file, e->line, e->key,
				    "'%.60s': Postfix %s reads no '{ name = value }' groups (3.10 "
				    "does), it sees a name that ends at the first blank; " INVALID,
				    word, version_name(l->version, vbuf, sizeof(vbuf)));
			else if (!eq && prev_list)
				add(l, ST_LINT_ERROR, "malformed-attribute", file, e->line, e->key,
				    "'%.60s' is not name=value: a comma ends the value of '%s=', "
				    "in "
				    "a table its items are separated by ':'; " INVALID,
				    word, prev_list);
			else
				add(l, ST_LINT_ERROR, "malformed-attribute", file, e->line, e->key,
				    "'%.60s' is not name=value (%s); " INVALID, word,
				    eq ? "no attribute name" : "no '='");
			prev_list = NULL;
			continue;
		}
		*eq = '\0';
		val = eq + 1;
		if (braced) { /* "name = value": blanks around '=' */
			char *x = eq;
			while (x > name && isspace((unsigned char)x[-1]))
				*--x = '\0';
			while (isspace((unsigned char)*val))
				val++;
		}
		prev_list = NULL;
		for (i = 0; i < N_ATTRS; i++)
			if (strcasecmp(name, attrs[i].name) == 0) {
				a = &attrs[i];
				break;
			}
		if (!a) {
			const char *names[N_ATTRS], *near;
			size_t k;
			for (k = 0; k < N_ATTRS; k++)
				names[k] = attrs[k].name;
			near = closest(name, names, N_ATTRS);
			add(l, ST_LINT_ERROR, "unknown-attribute", file, e->line, e->key,
			    "'%.60s' is not a policy attribute%s%s%s; " INVALID, name,
			    near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
			continue;
		}
		if (l->version && l->version < a->since) {
			char since[16];
			add(l, ST_LINT_ERROR, "too-new", file, e->line, e->key,
			    "the attribute '%s' is read from Postfix %s on: Postfix %s calls it an "
			    "invalid attribute name; " INVALID,
			    a->name, version_name(a->since, since, sizeof(since)),
			    version_name(l->version, vbuf, sizeof(vbuf)));
			continue;
		}
		if (a->rep == ONCE && seen[i]) {
			add(l, ST_LINT_ERROR, "repeated-attribute", file, e->line, e->key,
			    "the attribute '%s' is given more than once (only match, tafile, "
			    "connection_reuse and enable_rpk may be); " INVALID,
			    a->name);
			continue;
		}
		seen[i] = true;
		if (is_ext_attr(i))
			has_ext = true;
		if (strcmp(a->name, "ciphers") == 0) {
			if (!*val)
				add(l, ST_LINT_ERROR, "empty-value", file, e->line, e->key,
				    "the attribute 'ciphers' has an empty value; " INVALID);
			else if (strcasecmp(val, "low") == 0 || strcasecmp(val, "export") == 0) {
				if (!l->version || l->version < 30800)
					add(l, ST_LINT_WARNING, "weak-cipher-grade", file, e->line,
					    e->key,
					    "cipher grade '%.20s' admits weak ciphers for this "
					    "destination (before Postfix 3.8; from 3.8 it is the "
					    "same "
					    "as medium)",
					    val);
			} else if (strcasecmp(val, "null") == 0)
				add(l, ST_LINT_WARNING, "null-cipher-grade", file, e->line, e->key,
				    "cipher grade 'null' admits only ciphers without encryption: "
				    "mail goes in clear text inside TLS (and at encrypt, which "
				    "excludes them, no cipher is left and the handshake fails)");
			else if (strcasecmp(val, "high") && strcasecmp(val, "medium"))
				add(l, ST_LINT_ERROR, "unknown-cipher-grade", file, e->line, e->key,
				    "'%.40s' is not a cipher grade (high, medium, low, export, "
				    "null): "
				    "Postfix logs 'invalid cipher grade'; " HANDSHAKE,
				    val);
		} else if (strcmp(a->name, "protocols") == 0) {
			prev_list = a->name;
			check_protocols(l, file, e, val);
		} else if (strcmp(a->name, "exclude") == 0) {
			prev_list = a->name;
		} else if (strcmp(a->name, "servername") == 0 ||
		           strcmp(a->name, "policy_domain") == 0) {
			if (!is_hostname(val))
				add(l, ST_LINT_ERROR, "invalid-value", file, e->line, e->key,
				    "%s '%.60s' is not a valid host name; " INVALID, a->name, val);
		} else if (strcmp(a->name, "match") == 0) {
			has_match = true;
			prev_list = a->name;
			if (!*val)
				add(l, ST_LINT_ERROR, "empty-value", file, e->line, e->key,
				    "the attribute 'match' has an empty value; " INVALID);
			else if (level != ST_LEVEL_FINGERPRINT && level != ST_LEVEL_VERIFY &&
			         level != ST_LEVEL_SECURE)
				add(l, ST_LINT_ERROR, "attribute-not-at-level", file, e->line,
				    e->key,
				    "the attribute 'match' is not valid at level '%s' (only "
				    "fingerprint, verify and secure); " INVALID,
				    st_level_name(level));
			else if (level == ST_LEVEL_FINGERPRINT)
				check_fingerprints(l, file, e, val);
			else if (level == ST_LEVEL_SECURE) {
				const char *q = val;
				while (*q) {
					size_t n = strcspn(q, ":");
					if (n == 8 && strncasecmp(q, "hostname", 8) == 0)
						add(l, ST_LINT_WARNING, "secure-match-hostname",
						    file, e->line, e->key,
						    "secure with match 'hostname' checks the name "
						    "the MX lookup gave: it trusts DNS, and a "
						    "forged "
						    "MX record defeats it (use nexthop, "
						    "dot-nexthop "
						    "or the names themselves)");
					q += n;
					if (*q)
						q++;
				}
			}
		} else if (strcmp(a->name, "tafile") == 0) {
			struct stat st;
			has_tafile = true;
			if (level != ST_LEVEL_VERIFY && level != ST_LEVEL_SECURE)
				add(l, ST_LINT_ERROR, "attribute-not-at-level", file, e->line,
				    e->key,
				    "the attribute 'tafile' is not valid at level '%s' (only "
				    "verify "
				    "and secure); " INVALID,
				    st_level_name(level));
			else if (!*val)
				add(l, ST_LINT_ERROR, "empty-value", file, e->line, e->key,
				    "the attribute 'tafile' has an empty value; " INVALID);
			else if (stat(val, &st) < 0 || !S_ISREG(st.st_mode))
				add(l, ST_LINT_ERROR, "tafile-unreadable", file, e->line, e->key,
				    "the trust anchor file '%.200s' is not a readable file here: "
				    "Postfix logs 'error opening trust anchor file'; " INVALID,
				    val);
		} else if (strcmp(a->name, "connection_reuse") == 0 ||
		           strcmp(a->name, "enable_rpk") == 0) {
			if (strcasecmp(val, "yes") && strcasecmp(val, "no"))
				add(l, ST_LINT_ERROR, "invalid-value", file, e->line, e->key,
				    "%s '%.40s' is neither yes nor no; " INVALID, a->name, val);
		}
	}
	if (n_ignored)
		add(l, ST_LINT_WARNING, "none-attributes", file, e->line, e->key,
		    "%d word%s after level 'none' %s ignored (Postfix logs 'ignoring attribute' "
		    "and sends without TLS)",
		    n_ignored, n_ignored == 1 ? "" : "s", n_ignored == 1 ? "is" : "are");
	if (has_ext && !seen[POLICY_TYPE])
		add(l, ST_LINT_ERROR, "policy-without-type", file, e->line, e->key,
		    "policy_domain, policy_ttl, policy_string, mx_host_pattern or policy_failure "
		    "without policy_type; " INVALID);
	if (level == ST_LEVEL_FINGERPRINT && !has_match)
		add(l, ST_LINT_WARNING, "fingerprint-no-match", file, e->line, e->key,
		    "fingerprint without match=: the fingerprints come from "
		    "smtp_tls_fingerprint_cert_match; when that is empty " INVALID);
	if ((level == ST_LEVEL_VERIFY || level == ST_LEVEL_SECURE) && !l->ctx->have_ca &&
	    !has_tafile)
		add(l, ST_LINT_WARNING, "no-ca", file, e->line, e->key,
		    "%s needs trusted CAs, and neither smtp_tls_CAfile nor smtp_tls_CApath is "
		    "set (nor tafile=): unless the server's CA is in the system store, mail for "
		    "this destination is deferred with '4.7.5 Server certificate not verified'",
		    st_level_name(level));
}

/* ---- keys ---- */

static bool in_any(struct st_policy_table *const *tables, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (st_policy_table_get(tables[i], key))
			return true;
	return false;
}

/* A domain as a recipient domain is written: a host name with a dot inside (no brackets, no port). */
static bool is_domain(const char *k)
{
	return strchr(k, '.') && is_hostname(k);
}

/* The level of an entry's value, or -1 when it has none Postfix reads. */
static int entry_level(const struct st_policy_entry *e)
{
	char word[64];
	const char *p = e->value;
	bool braced;
	enum st_level level;

	if (!next_word(&p, false, word, sizeof(word), &braced) || st_level_parse(word, &level) < 0)
		return -1;
	return (int)level;
}

static void lint_key(struct lint *l, struct st_policy_table *const *tables, size_t n,
                     const char *file, const struct st_policy_entry *e)
{
	const char *k = e->key;
	const char *def = st_level_name(l->default_level);
	int level = entry_level(e);

	if (strcmp(k, "*") == 0) {
		add(l, ST_LINT_WARNING, "star-key", file, e->line, k,
		    "'*' is no wildcard in a TLS policy table (only in transport tables): no next "
		    "hop ever looks it up; the default belongs in smtp_tls_security_level");
		return;
	}
	if (k[0] == '.' && is_domain(k + 1) && !in_any(tables, n, k + 1) &&
	    level > (int)l->default_level)
		add(l, ST_LINT_WARNING, "subdomains-only", file, e->line, k,
		    "'%.100s' matches only sub-domains of '%.100s', not '%.100s' itself, which has "
		    "no entry: mail for it gets smtp_tls_security_level ('%s') instead of '%s'",
		    k, k + 1, k + 1, def, st_level_name((enum st_level)level));
	if (is_domain(k) && l->paired && level > (int)l->default_level) {
		char dot[258];
		snprintf(dot, sizeof(dot), ".%s", k);
		if (!in_any(tables, n, dot))
			add(l, ST_LINT_NOTE, "domain-only", file, e->line, k,
			    "'%.100s' matches only the domain itself, not its sub-domains (most "
			    "domains in these tables have a '.domain' entry too): mail for a "
			    "sub-domain gets smtp_tls_security_level ('%s')",
			    k, def);
	}
}

/* ---- tables ---- */

static void lint_table(struct lint *l, struct st_policy_table *const *tables, size_t n, size_t j)
{
	struct st_policy_table *t = tables[j];
	const char *file = st_policy_table_file(t);
	time_t src, dbt;
	const char *db = st_policy_table_db(t, &src, &dbt);
	size_t i, k;

	l->table = j;
	if (db && !dbt)
		add(l, ST_LINT_ERROR, "missing-db", file, 0, "",
		    "'%.200s' does not exist (postmap was not run): every lookup fails, Postfix "
		    "logs 'open database' and 'policy table lookup error' and defers all mail "
		    "with '4.7.5 client TLS configuration problem'",
		    db);
	else if (db && src > dbt)
		add(l, ST_LINT_WARNING, "stale-db", file, 0, "",
		    "'%.200s' is older than its source (postmap was not run since the last "
		    "change): Postfix still reads the old one and logs 'database is older than "
		    "source file'",
		    db);
	for (i = 0; i < st_policy_table_skips(t); i++) {
		const struct st_policy_skip *s = st_policy_table_skip_at(t, i);
		switch (s->kind) {
		case ST_POLICY_SKIP_NO_VALUE:
			add(l, ST_LINT_WARNING, "line-without-value", file, s->line, s->key,
			    "'%.100s' has no value: postmap skips the line ('expected format: key "
			    "whitespace value') and the destination gets no entry",
			    s->key);
			break;
		case ST_POLICY_SKIP_CONTINUATION:
			add(l, ST_LINT_WARNING, "continuation-first", file, s->line, "",
			    "the line starts with white space but no entry comes before it: "
			    "postmap "
			    "skips it ('logical line must not start with whitespace')");
			break;
		case ST_POLICY_SKIP_DUPLICATE:
			add(l, ST_LINT_WARNING, "duplicate-key", file, s->line, s->key,
			    "'%.100s' was given on line %u already: the first entry wins, as "
			    "postmap "
			    "keeps it ('duplicate entry'), and this one is never used",
			    s->key, s->first_line);
			break;
		}
	}
	for (i = 0; i < st_policy_table_size(t); i++) {
		const struct st_policy_entry *e = st_policy_table_at(t, i);
		const struct st_policy_entry *earlier = NULL;
		if (st_policy_table_get(t, e->key) != e)
			continue; /* a losing duplicate: never read */
		for (k = 0; k < j && !earlier; k++)
			earlier = st_policy_table_get(tables[k], e->key);
		if (earlier) {
			add(l, ST_LINT_WARNING, "shadowed-key", file, e->line, e->key,
			    "'%.100s' is in '%.200s' (line %u) too, which is searched first: this "
			    "entry is never used",
			    e->key, st_policy_table_spec(tables[k - 1]), earlier->line);
			continue;
		}
		lint_key(l, tables, n, file, e);
		lint_value(l, file, e);
	}
}

static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	if (x->d.line != y->d.line)
		return x->d.line < y->d.line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int st_policy_lint(struct st_policy_table *const *tables, size_t n,
                   const struct st_lint_context *ctx, struct st_lint_diag **out, size_t *n_out,
                   struct st_error *err)
{
	static const struct st_lint_context none = {0};
	struct lint l = {0};
	size_t i, j, n_domains = 0, n_paired = 0;

	*out = NULL;
	*n_out = 0;
	l.ctx = ctx ? ctx : &none;
	l.version = parse_version(l.ctx->postfix_version);
	if (!l.ctx->default_level || !*l.ctx->default_level ||
	    st_level_parse(l.ctx->default_level, &l.default_level) < 0)
		l.default_level = ST_LEVEL_NONE;
	for (j = 0; j < n; j++)
		for (i = 0; i < st_policy_table_size(tables[j]); i++) {
			const char *k = st_policy_table_at(tables[j], i)->key;
			char dot[258];
			if (!is_domain(k))
				continue;
			n_domains++;
			snprintf(dot, sizeof(dot), ".%s", k);
			n_paired += in_any(tables, n, dot);
		}
	l.paired = n_paired && n_paired * 2 >= n_domains;
	for (j = 0; j < n; j++)
		lint_table(&l, tables, n, j);
	if (l.nomem) {
		free(l.items);
		st_error_set(err, ST_ERR_INTERNAL, "out of memory linting policy tables");
		return ST_E_NOMEM;
	}
	if (l.n) {
		qsort(l.items, l.n, sizeof(*l.items), cmp_item);
		*out = malloc(l.n * sizeof(**out));
		if (!*out) {
			free(l.items);
			st_error_set(err, ST_ERR_INTERNAL, "out of memory linting policy tables");
			return ST_E_NOMEM;
		}
		for (i = 0; i < l.n; i++)
			(*out)[i] = l.items[i].d;
		*n_out = l.n;
	}
	free(l.items);
	return 0;
}
