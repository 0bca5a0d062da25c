/* address.c: envelope addresses as Postfix reads them: UTF-8, domain syntax, source routes, the percent hack */
#include "address.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

bool st_utf8_is_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned long cp;
		size_t n, i;
		if (*p < 0x80) {
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf)
			n = 2, cp = *p & 0x1f;
		else if (*p >= 0xe0 && *p <= 0xef)
			n = 3, cp = *p & 0x0f;
		else if (*p >= 0xf0 && *p <= 0xf4)
			n = 4, cp = *p & 0x07;
		else
			return false;
		for (i = 1; i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n;
	}
	return true;
}

bool st_addr_domain_is_valid(const char *d, size_t len, bool utf8)
{
	size_t i, label = 0;
	bool non_numeric = false;

	if (len && d[0] == '[') {
		/* an address literal: the whole domain, nothing after it */
		char lit[64];
		unsigned char a[16];
		if (len < 3 || d[len - 1] != ']' || len - 2 >= sizeof(lit))
			return false;
		snprintf(lit, sizeof(lit), "%.*s", (int)(len - 2), d + 1);
		if (strncasecmp(lit, "IPv6:", 5) == 0)
			return inet_pton(AF_INET6, lit + 5, a) == 1;
		return inet_pton(AF_INET, lit, a) == 1;
	}
	if (len > 1 && d[len - 1] == '.')
		len--; /* "example.test." is example.test */
	if (!len || len > 255)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.') {
			if (!label || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (c == '-' && !label)
			return false;
		if (++label > 63)
			return false;
		if (c >= '0' && c <= '9')
			continue;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' ||
		    (utf8 && c >= 0x80))
			non_numeric = true;
		else
			return false;
	}
	return label && d[len - 1] != '-' && non_numeric;
}

int st_addr_parse(const char *in, size_t len, bool utf8, char *out, size_t size)
{
	const char *end = in + len, *at = NULL, *p;
	size_t o = 0;
	bool quoted = false;

	/* a source route "@a,@b:" before the address is dropped, as Postfix does */
	if (len && in[0] == '@') {
		const char *colon = memchr(in, ':', len);
		if (colon)
			in = colon + 1;
	}
	/* the domain begins after the last '@' outside quotes */
	for (p = in; p < end; p++) {
		if (quoted && *p == '\\' && p + 1 < end)
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '@')
			at = p;
	}
	if (quoted)
		return -1;
	for (p = in; p < (at ? at : end); p++) {
		if (*p == '"') {
			quoted = !quoted;
			continue;
		}
		if (quoted && *p == '\\' && p + 1 < end)
			p++;
		else if (!quoted && strchr(" \t\r\n(),;<>[", *p))
			return -1;
		if (!*p || o + 1 >= size)
			return -1;
		out[o++] = *p;
	}
	if (at) {
		size_t dl = (size_t)(end - at - 1);
		if (!st_addr_domain_is_valid(at + 1, dl, utf8) || o + 1 + dl >= size)
			return -1;
		memcpy(out + o, at, dl + 1);
		o += dl + 1;
	}
	out[o] = '\0';
	return 0;
}

int st_addr_resolve(const char *addr, st_addr_local_fn is_local, void *arg, bool utf8, char *out,
                    size_t size, bool *local)
{
	char a[ST_ADDR_MAX], dom[ST_ADDR_MAX] = "";
	size_t rounds;

	*local = false;
	if (snprintf(a, sizeof(a), "%s", addr) >= (int)sizeof(a))
		return -1;
	/* each round takes a domain off or turns a '!' or '%' into one: it ends */
	for (rounds = 0; rounds <= sizeof(a); rounds++) {
		char *at = strrchr(a, '@'), *x;
		if (at) {
			size_t dl = strlen(at + 1);
			if (dl > 1 && at[dl] == '.' && at[dl - 1] != '.')
				at[dl--] = '\0';
			if (!dl)
				return -1;
			if (!is_local(arg, at + 1, dl)) {
				if (!st_addr_domain_is_valid(at + 1, dl, utf8))
					return -1;
				break;
			}
			snprintf(dom, sizeof(dom), "%s", at + 1);
			*at = '\0';
		}
		if (strchr(a, '@'))
			continue;
		if ((x = strchr(a, '!')) != NULL) {
			/* "host!user" is "user@host" */
			char t[ST_ADDR_MAX];
			*x = '\0';
			if (snprintf(t, sizeof(t), "%s@%s", x + 1, a) >= (int)sizeof(t))
				return -1;
			memcpy(a, t, strlen(t) + 1);
			continue;
		}
		if ((x = strrchr(a, '%')) != NULL) {
			*x = '@';
			continue;
		}
		/* a local part alone: ours */
		*local = true;
		if (dom[0] && snprintf(a + strlen(a), sizeof(a) - strlen(a), "@%s", dom) >=
		                  (int)(sizeof(a) - strlen(a)))
			return -1;
		break;
	}
	if (snprintf(out, size, "%s", a) >= (int)size)
		return -1;
	return 0;
}

int st_addr_quote(const char *addr, char *out, size_t size)
{
	const char *at = strrchr(addr, '@'), *p;
	size_t ll = at ? (size_t)(at - addr) : strlen(addr), o = 0;
	bool quote = ll && (addr[0] == '.' || addr[ll - 1] == '.');

	for (p = addr; p < addr + ll && !quote; p++) {
		unsigned char c = (unsigned char)*p;
		quote = c <= 0x20 || c == 0x7f || strchr("\"(),:;<>@[\\]", c) ||
		        (c == '.' && p[1] == '.');
	}
	if (!quote)
		return snprintf(out, size, "%s", addr) >= (int)size ? -1 : 0;
	if (size < 3)
		return -1;
	out[o++] = '"';
	for (p = addr; p < addr + ll; p++) {
		if (*p == '"' || *p == '\\') {
			if (o + 1 >= size)
				return -1;
			out[o++] = '\\';
		}
		if (o + 1 >= size)
			return -1;
		out[o++] = *p;
	}
	if (snprintf(out + o, size - o, "\"%s", at ? at : "") >= (int)(size - o))
		return -1;
	return 0;
}
