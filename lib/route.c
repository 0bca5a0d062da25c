/* route.c: a recipient routed as Postfix's trivial-rewrite does: address class, transport_maps, relayhost */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "route.h"

const char *st_route_class_name(enum st_route_class c)
{
	static const char *const names[] = {"local", "virtual alias", "virtual mailbox", "relay",
	                                    "default"};
	return names[c];
}

static const char *nz(const char *s)
{
	return s ? s : "";
}

/* Is parameter name listed in parent_domain_matches_subdomains? */
static bool parent_style(const struct st_route_conf *c, const char *name)
{
	const char *q = nz(c->parent_domain_matches_subdomains);
	size_t n = strlen(name);

	while (*q) {
		size_t len;
		q += strspn(q, ", \t\r\n");
		len = strcspn(q, ", \t\r\n");
		if (len == n && !strncasecmp(q, name, n))
			return true;
		q += len;
	}
	return false;
}

/* Does name end in "." suffix? */
static bool below(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);

	return n > s + 1 && name[n - s - 1] == '.' && !strcasecmp(name + n - s, suffix);
}

/* A domain in a Postfix domain list (mydestination, relay_domains...), as its match_list
 * takes it: literal names, ".parent" forms, "type:table" entries looked up, "!" negation;
 * the first entry that matches decides. 1 in the list, 0 not, -1 a table not readable. */
static int in_list(const struct st_route_conf *c, const char *param, const char *list,
                   const char *domain, struct st_error *err)
{
	bool parent = parent_style(c, param);
	const char *q = nz(list);
	size_t len;

	while ((len = st_postfix_list_word(&q)) > 0) {
		char w[4096];
		const char *pat = w;
		bool neg, hit = false;
		if (len >= sizeof(w)) {
			st_error_set(err, ST_ERR_INPUT, "%s: an entry of %zu bytes: at most %zu", param,
			             len, sizeof(w) - 1);
			return -1;
		}
		snprintf(w, sizeof(w), "%.*s", (int)len, q);
		q += len;
		neg = w[0] == '!';
		pat += neg;
		if (strchr(pat, ':') && pat[0] != '[') {
			struct st_policy_tables ts;
			const char *p;
			st_policy_tables_init(&ts);
			if (st_policy_tables_add(&ts, pat, err) < 0 || ts.broken[0]) {
				/* Postfix's lookup fails: the recipient cannot be routed */
				char why[ST_ERROR_MAX];
				snprintf(why, sizeof(why), "%s", ts.broken[0] ? ts.broken : err->msg);
				st_error_set(err, ST_ERR_INPUT, "%s: %s", param, why);
				st_policy_tables_release(&ts);
				return -1;
			}
			hit = st_policy_table_get(ts.t[0], domain) != NULL;
			for (p = strchr(domain, '.'); p && !hit; p = strchr(p + 1, '.'))
				hit = st_policy_table_get(ts.t[0], parent ? p + 1 : p) != NULL;
			st_policy_tables_release(&ts);
		} else if (!strcasecmp(domain, pat))
			hit = true;
		else if (pat[0] == '.')
			hit = below(domain, pat + 1);
		else if (parent)
			hit = below(domain, pat);
		if (hit)
			return !neg;
	}
	return 0;
}

/* "transport:nexthop" split; either may be empty. */
static void split(const char *v, char *t, size_t ts, char *n, size_t ns)
{
	const char *colon = strchr(v, ':');

	snprintf(t, ts, "%.*s", (int)(colon ? (size_t)(colon - v) : strlen(v)), v);
	snprintf(n, ns, "%s", colon ? colon + 1 : "");
}

/* A domain in mydestination, for st_addr_resolve; a table that cannot be read: failed. */
struct mydest {
	const struct st_route_conf *c;
	struct st_error *err;
	bool failed;
};

static bool in_mydestination(void *arg, const char *d, size_t len)
{
	struct mydest *m = arg;
	char domain[256];
	int r;

	if (len && d[len - 1] == '.')
		len--;
	if (m->failed || len >= sizeof(domain))
		return false;
	snprintf(domain, sizeof(domain), "%.*s", (int)len, d);
	r = in_list(m->c, "mydestination", m->c->mydestination, domain, m->err);
	if (r < 0)
		m->failed = true;
	return r > 0;
}

static const struct st_policy_entry *tlookup(const struct st_route_conf *c, const char *key,
                                             struct st_route *out)
{
	const struct st_policy_tables *ts = c->transport_maps;
	size_t i;

	for (i = 0; ts && i < ts->n; i++) {
		const struct st_policy_entry *e = st_policy_table_get(ts->t[i], key);
		if (e) {
			out->table = i;
			snprintf(out->key, sizeof(out->key), "%s", key);
			return e;
		}
	}
	return NULL;
}

int st_route_resolve(const struct st_route_conf *c, const char *rcpt, struct st_route *out,
                     struct st_error *err)
{
	const char *at = strrchr(rcpt, '@'), *param, *value;
	char domain[256], local[256], t[128], n[512], parsed[ST_ADDR_MAX], resolved[ST_ADDR_MAX];
	const struct st_policy_entry *e = NULL;
	struct mydest md = {c, err, false};
	bool ours;
	int r;

	memset(out, 0, sizeof(*out));
	/* the address as trivial-rewrite resolves it: a source route dropped, and while
	 * the domain is in mydestination, user%host, host!user and user@host in the local
	 * part are the address (allow_percent_hack, swap_bangpath: Postfix's defaults) */
	if (at && at[1]) {
		if (st_addr_parse(rcpt, strlen(rcpt), true, parsed, sizeof(parsed)) ||
		    st_addr_resolve(parsed, in_mydestination, &md, true, resolved, sizeof(resolved),
		                    &ours)) {
			if (!md.failed)
				st_error_set(
				    err, ST_ERR_INPUT,
				    "'%s' is no address Postfix takes (Bad recipient address "
				    "syntax)",
				    rcpt);
			return -1;
		}
		if (md.failed)
			return -1;
		if (strcmp(resolved, rcpt)) {
			snprintf(out->address, sizeof(out->address), "%s", resolved);
			rcpt = out->address;
			at = strrchr(rcpt, '@');
		}
	}
	if (!at || !at[1] || strlen(at + 1) >= sizeof(domain) ||
	    (size_t)(at - rcpt) >= sizeof(local)) {
		st_error_set(err, ST_ERR_INPUT,
		             "'%s' is no recipient address (user@domain or @domain)", rcpt);
		return -1;
	}
	snprintf(domain, sizeof(domain), "%s", at + 1);
	snprintf(local, sizeof(local), "%.*s", (int)(at - rcpt), rcpt);
	if (domain[strlen(domain) - 1] == '.')
		domain[strlen(domain) - 1] = '\0';
	/* the address class: the first list the domain is in */
	{
		static const struct {
			enum st_route_class cls;
			const char *list, *param;
		} order[] = {
		    {ST_ROUTE_LOCAL, "mydestination", "local_transport"},
		    {ST_ROUTE_VIRTUAL_ALIAS, "virtual_alias_domains", "virtual_alias_domains"},
		    {ST_ROUTE_VIRTUAL_MAILBOX, "virtual_mailbox_domains", "virtual_transport"},
		    {ST_ROUTE_RELAY, "relay_domains", "relay_transport"},
		};
		const char *lists[] = {c->mydestination, c->virtual_alias_domains,
		                       c->virtual_mailbox_domains, c->relay_domains};
		const char *values[] = {c->local_transport, "error:", c->virtual_transport,
		                        c->relay_transport};
		size_t k;
		out->cls = ST_ROUTE_DEFAULT;
		param = "default_transport";
		value = c->default_transport;
		for (k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
			r = in_list(c, order[k].list, lists[k], domain, err);
			if (r < 0)
				return -1;
			if (r) {
				out->cls = order[k].cls;
				param = order[k].param;
				value = values[k];
				break;
			}
		}
	}
	split(nz(value), t, sizeof(t), n, sizeof(n));
	snprintf(out->transport, sizeof(out->transport), "%s", t[0] ? t : "smtp");
	if (n[0])
		snprintf(out->nexthop, sizeof(out->nexthop), "%s", n);
	else if ((out->cls == ST_ROUTE_RELAY || out->cls == ST_ROUTE_DEFAULT) && c->relayhost &&
	         *c->relayhost)
		snprintf(out->nexthop, sizeof(out->nexthop), "%s", c->relayhost);
	else
		snprintf(out->nexthop, sizeof(out->nexthop), "%s", domain);
	/* a why cut short still says how (its parts are bounded by the config) */
	if (snprintf(out->why, sizeof(out->why), "%s%s%s%s class (%s = %s)%s%s",
	             out->address[0] ? "resolved to '" : "", out->address,
	             out->address[0] ? "' (the local part of a local domain's address), " : "",
	             st_route_class_name(out->cls), param, nz(value),
	             !n[0] && strcmp(out->nexthop, domain) ? ", relayhost = " : "",
	             !n[0] && strcmp(out->nexthop, domain) ? out->nexthop : "") >=
	    (int)sizeof(out->why))
		out->why[sizeof(out->why) - 1] = '\0';
	if (out->cls == ST_ROUTE_VIRTUAL_ALIAS)
		return 0;
	/* transport_maps: the address (with, then without its extension), the domain, its
	 * parents, "*" */
	if (local[0]) {
		char key[520], base[256];
		const char *delims = nz(c->recipient_delimiter);
		snprintf(key, sizeof(key), "%s@%s", local, domain);
		e = tlookup(c, key, out);
		if (!e && *delims && local[strcspn(local, delims)]) {
			snprintf(base, sizeof(base), "%.*s", (int)strcspn(local, delims), local);
			snprintf(key, sizeof(key), "%s@%s", base, domain);
			e = tlookup(c, key, out);
		}
	}
	if (!e)
		e = tlookup(c, domain, out);
	if (!e) {
		bool parent = parent_style(c, "transport_maps");
		const char *p;
		for (p = strchr(domain, '.'); p && !e; p = strchr(p + 1, '.'))
			e = tlookup(c, parent ? p + 1 : p, out);
	}
	if (!e)
		e = tlookup(c, "*", out);
	if (!e)
		return 0;
	out->entry = e;
	split(e->value, t, sizeof(t), n, sizeof(n));
	while (n[0] && isspace((unsigned char)n[strlen(n) - 1]))
		n[strlen(n) - 1] = '\0';
	if (t[0])
		snprintf(out->transport, sizeof(out->transport), "%s", t);
	if (n[0])
		snprintf(out->nexthop, sizeof(out->nexthop), "%s", n);
	else if (t[0])
		snprintf(out->nexthop, sizeof(out->nexthop), "%s", domain);
	snprintf(out->why + strlen(out->why), sizeof(out->why) - strlen(out->why),
	         "; transport_maps %s, line %u: %s %s",
	         st_policy_table_spec(c->transport_maps->t[out->table]), e->line, e->key, e->value);
	return 0;
}
