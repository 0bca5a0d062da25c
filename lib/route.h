/* route.h: a recipient routed as Postfix's trivial-rewrite does: address class, transport_maps, relayhost */
#ifndef ST_ROUTE_H
#define ST_ROUTE_H

#include <stddef.h>

#include "policy.h"
#include "util.h"

/* Postfix's address classes (trivial-rewrite(8)). */
enum st_route_class {
	ST_ROUTE_LOCAL,           /* mydestination: local_transport */
	ST_ROUTE_VIRTUAL_ALIAS,   /* virtual_alias_domains: aliased, never delivered as is */
	ST_ROUTE_VIRTUAL_MAILBOX, /* virtual_mailbox_domains: virtual_transport */
	ST_ROUTE_RELAY,           /* relay_domains: relay_transport */
	ST_ROUTE_DEFAULT,         /* anything else: default_transport */
};

/* "local", "virtual alias", "virtual mailbox", "relay", "default". */
const char *st_route_class_name(enum st_route_class c);

/* The main.cf parameters routing reads, as postconf -x gives them (NULL counts as ""). */
struct st_route_conf {
	const char *mydestination, *virtual_alias_domains, *virtual_mailbox_domains;
	const char *relay_domains;
	const char *local_transport, *virtual_transport, *relay_transport, *default_transport;
	const char *relayhost;
	const char *parent_domain_matches_subdomains;
	const char *recipient_delimiter;
	const struct st_policy_tables *transport_maps; /* loaded by the caller; may be NULL */
};

struct st_route {
	enum st_route_class cls;
	char transport[128]; /* the master.cf service name: "smtp", "relay", "smtp-tls" ... */
	char nexthop[512];   /* as the transport gets it: "[host]:port", "domain" ... */
	/* the transport_maps entry that applied: NULL when none */
	const struct st_policy_entry *entry;
	size_t table; /* its table in transport_maps */
	char key[320];
	char why[1024]; /* how transport and next hop were chosen, in words */
	/* the address routed when trivial-rewrite changed the one given (a source route
	 * dropped; user%host, host!user or user@host in a mydestination address), else "" */
	char address[512];
};

/*
 * Route a recipient address ("user@domain", "@domain" for a domain alone)
 * as Postfix's trivial-rewrite does: first the address resolved (a source
 * route dropped; while its domain is in mydestination, the local part's
 * user@host, host!user or user%host taken as the address, as Postfix's
 * defaults allow_percent_hack and swap_bangpath do), then the address class by its domain
 * (mydestination, virtual_alias_domains, virtual_mailbox_domains,
 * relay_domains; literal names and ".parent" forms, "type:table" entries
 * looked up; a name also matches its subdomains when the list's
 * parameter is in parent_domain_matches_subdomains), the class's
 * transport and next hop ("transport:nexthop"; without a next hop:
 * relayhost for the relay and default classes, else the domain), then
 * transport_maps in transport(5)'s order: user+ext@domain, user@domain,
 * domain, each parent as ".parent" (or "parent" when transport_maps is in
 * parent_domain_matches_subdomains), "*"; a null transport keeps the
 * class's, a null next hop keeps it when the transport is null too and is
 * the recipient domain otherwise. -1 with err (class input) for an
 * address without a domain, one Postfix refuses as bad syntax, or a list
 * table that cannot be read.
 */
int st_route_resolve(const struct st_route_conf *c, const char *rcpt, struct st_route *out,
                     struct st_error *err);

#endif
