/* dns.h: MX and address lookups through libunbound (a given server, or the system's), with /etc/hosts */
#ifndef ST_DNS_H
#define ST_DNS_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "util.h"

#define ST_DNS_MX_MAX   64
#define ST_DNS_ADDR_MAX 32

struct st_dns;

/*
 * A resolver. server is "ADDR" or "ADDR@PORT" / "ADDR:PORT" (IPv4) of a DNS
 * server to ask, or NULL for the system's (resolv.conf). /etc/hosts is read
 * for addresses either way. NULL with err (class usage or internal).
 */
struct st_dns *st_dns_new(const char *server, struct st_error *err);
/* Give up on a query after MS milliseconds (default 30000). */
void st_dns_set_timeout(struct st_dns *d, int ms);

void st_dns_free(struct st_dns *d);

struct st_mx {
	unsigned pref;
	char host[256];
};

/*
 * The MX hosts of domain by preference (equal preferences keep the
 * server's order). *n is 0 when the domain has no MX (Postfix then uses
 * the domain's own addresses); *null_mx when it has the one MX "." of RFC
 * 7505 (it takes no mail). A domain that does not exist, or a failed
 * lookup, is an error of class dns naming the domain and the reason.
 */
int st_dns_mx(struct st_dns *d, const char *domain, struct st_mx *out, size_t max, size_t *n,
              bool *null_mx, struct st_error *err);

/* The IPv4 then IPv6 addresses of host, as text. Class dns when there is none. */
int st_dns_addrs(struct st_dns *d, const char *host, char (*out)[64], size_t max, size_t *n,
                 struct st_error *err);

/*
 * The same on a loop that does other work meanwhile (the blocking calls
 * above run one of their own, and refuse an attached resolver). Attach
 * first; queries are then started at once, answered from the loop, each
 * within the timeout; the resolver's descriptor keeps the loop alive only
 * while queries are pending. Detach (or free) before the loop ends: the
 * handle closes on the loop, and queries still pending end at once, their
 * callbacks called with an error ("cancelled"). A start that fails returns
 * an error, and its callback is never called; every other gets one call.
 */
int st_dns_attach(struct st_dns *d, uv_loop_t *loop, struct st_error *err);
void st_dns_detach(struct st_dns *d);

/* mx: borrowed for the call; rc and err as st_dns_mx. */
typedef void (*st_dns_mx_cb)(void *arg, int rc, const struct st_mx *mx, size_t n, bool null_mx,
                             const struct st_error *err);
int st_dns_mx_async(struct st_dns *d, const char *domain, st_dns_mx_cb cb, void *arg,
                    struct st_error *err);

/* addrs (at most ST_DNS_ADDR_MAX, IPv4 first): borrowed for the call; rc and err as st_dns_addrs. */
typedef void (*st_dns_addrs_cb)(void *arg, int rc, char (*addrs)[64], size_t n,
                                const struct st_error *err);
int st_dns_addrs_async(struct st_dns *d, const char *host, st_dns_addrs_cb cb, void *arg,
                       struct st_error *err);

#endif
