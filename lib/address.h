/* address.h: envelope addresses as Postfix reads them: UTF-8, domain syntax, source routes, the percent hack */
#ifndef ST_ADDRESS_H
#define ST_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

/* The longest address kept, with its NUL. */
#define ST_ADDR_MAX 512

/*
 * s is well-formed UTF-8 (no overlong form, no surrogate, at most U+10FFFF), as
 * Postfix's smtpd demands of every command line once SMTPUTF8 is on.
 */
bool st_utf8_is_valid(const char *s);

/*
 * d (len bytes) is a domain Postfix takes in an envelope address: a host name
 * (labels of letters, digits, '-' and '_', none empty, none beginning or ending
 * with '-', at most 63 bytes each and 255 in all, not all digits and dots; with
 * utf8, UTF-8 letters too) with at most one trailing dot, or an address literal
 * "[192.0.2.1]" or "[IPv6:2001:db8::1]".
 */
bool st_addr_domain_is_valid(const char *d, size_t len, bool utf8);

/*
 * Read the address between "<" and ">" (in, len bytes, raw from the client) into
 * out, in Postfix's internal form: a source route ("@a,@b:") dropped, quoted parts
 * of the local part unquoted. -1 when it is no address as Postfix's smtpd reads one:
 * white space, '(', ')', ',', ';', '<', '>', '[' or an unpaired '"' in the local
 * part (outside quotes), a domain that st_addr_domain_is_valid refuses, or too long.
 * An empty address and a local part alone are addresses.
 */
int st_addr_parse(const char *in, size_t len, bool utf8, char *out, size_t size);

/* Whether domain (len bytes, a trailing dot removed) is one of ours. */
typedef bool (*st_addr_local_fn)(void *arg, const char *domain, size_t len);

/*
 * Resolve an address (internal form) as Postfix's trivial-rewrite does before it
 * chooses a transport: while the domain is ours (is_local) or absent, drop it and
 * read what remains: "user@host" (an '@' in the local part), "host!user"
 * (swap_bangpath, the first '!'), "user%host" (allow_percent_hack, the last '%').
 * out gets the final address (with the last local domain when it is ours), local
 * whether it is ours. -1 when the final domain is empty or not valid (Postfix's
 * "Bad ... address syntax"), or out is too small.
 */
int st_addr_resolve(const char *addr, st_addr_local_fn is_local, void *arg, bool utf8, char *out,
                    size_t size, bool *local);

/*
 * addr (internal form) as it goes on the wire: its local part in double quotes
 * when it needs them (white space, controls, specials, dots out of place), as
 * Postfix's smtp client sends it. -1 when out is too small.
 */
int st_addr_quote(const char *addr, char *out, size_t size);

#endif
