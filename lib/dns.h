/* dns.h: MX lookups from DNS (libunbound), host addresses as smtp_host_lookup says, --resolve first */
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
 * server to ask, or NULL for the system's (resolv.conf). MX records come from
 * DNS alone, never from /etc/hosts, as Postfix has them; host addresses come
 * from where st_dns_set_host_lookup says (DNS by default). NULL with err
 * (class usage or internal).
 */
struct st_dns *st_dns_new(const char *server, struct st_error *err);
/* Give up on a query after MS milliseconds (default 30000). */
void st_dns_set_timeout(struct st_dns *d, int ms);

void st_dns_free(struct st_dns *d);

/*
 * Where host addresses come from, as Postfix's smtp_host_lookup: DNS, the
 * system's resolver library (nsswitch.conf: /etc/hosts, then DNS as it is
 * configured), or both: DNS first, the system's only for a host DNS does not
 * know (no such domain, or no address); a DNS failure is no reason to ask it.
 */
enum st_host_lookup {
	ST_HOST_LOOKUP_DNS = 1 << 0,
	ST_HOST_LOOKUP_NATIVE = 1 << 1,
};

/*
 * "dns", "native", "dns, native" (names separated by commas or white space, in
 * any order, as postconf(5) reads smtp_host_lookup) to a set of
 * ST_HOST_LOOKUP_* bits. -1 with err (class usage) for anything else.
 */
int st_dns_host_lookup_parse(const char *s, struct st_error *err);
/* "dns", "native" or "dns, native" (static). */
const char *st_dns_host_lookup_name(int lookup);
/* Set where host addresses come from (ST_HOST_LOOKUP_* bits; 0 is DNS). */
void st_dns_set_host_lookup(struct st_dns *d, int lookup);
int st_dns_host_lookup(const struct st_dns *d);

/*
 * An override as curl's --resolve: "HOST:PORT:ADDR[,ADDR...]" (an IPv6 ADDR
 * with or without brackets). An address lookup of HOST (any case) for PORT
 * then answers these addresses, in this order, and asks nobody; every host
 * name a run connects to is looked up so, MX hosts included; MX lookups are
 * not changed. A second entry for the same HOST:PORT replaces the first.
 * Class usage when spec is malformed. d NULL: spec is only checked.
 */
int st_dns_add_resolve(struct st_dns *d, const char *spec, struct st_error *err);

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

/*
 * The addresses of host, to be connected to on port, as text: a --resolve entry
 * for host:port, else IPv4 then IPv6 from where the host lookup setting says.
 * Class dns when there is none: rc ST_E_PARSE when the name is not found (no
 * such domain, or no address), ST_E_IO when the lookup failed (try again).
 */
int st_dns_addrs(struct st_dns *d, const char *host, unsigned port, char (*out)[64], size_t max,
                 size_t *n, struct st_error *err);

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

/*
 * Why a lookup failed, in err->sub (class ST_ERR_DNS): the name does not
 * exist (the DNS said NXDOMAIN; NODATA for A and AAAA; the system's resolver
 * said EAI_NONAME or EAI_NODATA), or anything else (a lookup to try again).
 */
enum st_dns_sub {
	ST_DNS_TRY_AGAIN = 0,
	ST_DNS_NXDOMAIN,
	ST_DNS_NODATA,
	ST_DNS_EAI_NONAME,
	ST_DNS_EAI_NODATA,
};

/* mx: borrowed for the call; rc and err as st_dns_mx. */
typedef void (*st_dns_mx_cb)(void *arg, int rc, const struct st_mx *mx, size_t n, bool null_mx,
                             const struct st_error *err);
int st_dns_mx_async(struct st_dns *d, const char *domain, st_dns_mx_cb cb, void *arg,
                    struct st_error *err);

/* addrs (at most ST_DNS_ADDR_MAX, IPv4 first): borrowed for the call; rc and err as st_dns_addrs. */
typedef void (*st_dns_addrs_cb)(void *arg, int rc, char (*addrs)[64], size_t n,
                                const struct st_error *err);
int st_dns_addrs_async(struct st_dns *d, const char *host, unsigned port, st_dns_addrs_cb cb,
                       void *arg, struct st_error *err);

#endif
