/* dns.c: MX and address lookups through libunbound (a given server, or the system's), with /etc/hosts */
#include "config.h"

#include "dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unbound.h>

#define TYPE_A    1
#define TYPE_MX   15
#define TYPE_AAAA 28
#define CLASS_IN  1

struct st_dns {
	struct ub_ctx *ctx;
	int timeout_ms; /* for each query, the resolver's own retries included */
};

struct st_dns *st_dns_new(const char *server, struct st_error *err)
{
	struct st_dns *d = calloc(1, sizeof(*d));
	char fwd[128];
	int rc;

	if (!d || !(d->ctx = ub_ctx_create())) {
		free(d);
		st_error_set(err, ST_ERR_INTERNAL, "cannot start the DNS resolver");
		return NULL;
	}
	d->timeout_ms = 30000;
	/* answers come to our poll(), so that a silent server costs the timeout,
	 * not the resolver's patience; a thread, not a forked process, does the work */
	ub_ctx_async(d->ctx, 1);
	if (server) {
		/* ADDR, ADDR@PORT, or ADDR:PORT for IPv4 */
		const char *colon = strchr(server, ':');
		if (colon && strchr(colon + 1, ':') == NULL && !strchr(server, '@'))
			snprintf(fwd, sizeof(fwd), "%.*s@%s", (int)(colon - server), server,
			         colon + 1);
		else
			snprintf(fwd, sizeof(fwd), "%s", server);
		/* a test's server on loopback must be allowed, and the special-use
		 * names libunbound answers itself (test., invalid.) go to it too */
		ub_ctx_set_option(d->ctx, "do-not-query-localhost:", "no");
		ub_ctx_set_option(d->ctx, "local-zone:", "test. transparent");
		ub_ctx_set_option(d->ctx, "local-zone:", "invalid. transparent");
		rc = ub_ctx_set_fwd(d->ctx, fwd);
		if (rc != 0) {
			st_error_set(err, ST_ERR_USAGE,
			             "--dns-server: '%s' is not a DNS server address: %s", server,
			             ub_strerror(rc));
			st_dns_free(d);
			return NULL;
		}
	} else if ((rc = ub_ctx_resolvconf(d->ctx, NULL)) != 0) {
		st_error_set(err, ST_ERR_DNS, "cannot read the system's DNS configuration: %s",
		             ub_strerror(rc));
		st_dns_free(d);
		return NULL;
	}
	ub_ctx_hosts(d->ctx, NULL);
	return d;
}

void st_dns_free(struct st_dns *d)
{
	if (!d)
		return;
	if (d->ctx)
		ub_ctx_delete(d->ctx);
	free(d);
}

void st_dns_set_timeout(struct st_dns *d, int ms)
{
	d->timeout_ms = ms > 0 ? ms : 1;
}

struct answer {
	bool done;
	int rc;
	struct ub_result *res;
};

static void answered(void *arg, int rc, struct ub_result *res)
{
	struct answer *a = arg;

	a->done = true;
	a->rc = rc;
	a->res = res;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One query, within the timeout; *res to be freed by the caller. Errors name the
 * name and the reason. */
static int query(struct st_dns *d, const char *name, int type, struct ub_result **res,
                 struct st_error *err)
{
	struct answer a = {false, 0, NULL};
	long long end = now_ms() + d->timeout_ms;
	int id, rc = ub_resolve_async(d->ctx, name, type, CLASS_IN, &a, answered, &id);

	while (rc == 0 && !a.done) {
		struct pollfd pfd = {ub_fd(d->ctx), POLLIN, 0};
		long long left = end - now_ms();
		int n;
		if (left <= 0) {
			ub_cancel(d->ctx, id);
			st_error_set(err, ST_ERR_DNS, "no DNS answer for '%s' within %d ms", name,
			             d->timeout_ms);
			return ST_E_IO;
		}
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno != EINTR) {
			ub_cancel(d->ctx, id);
			st_error_set(err, ST_ERR_DNS, "cannot look up '%s': %s", name,
			             strerror(errno));
			return ST_E_IO;
		}
		if (n > 0)
			rc = ub_process(d->ctx);
	}
	if (rc == 0)
		rc = a.rc;
	*res = a.res;
	if (rc != 0) {
		if (*res)
			ub_resolve_free(*res);
		st_error_set(err, ST_ERR_DNS, "cannot look up '%s': %s", name, ub_strerror(rc));
		return ST_E_IO;
	}
	if ((*res)->rcode == 3) {
		st_error_set(err, ST_ERR_DNS, "'%s': no such domain (NXDOMAIN)", name);
		ub_resolve_free(*res);
		return ST_E_PARSE;
	}
	if ((*res)->rcode != 0) {
		st_error_set(err, ST_ERR_DNS, "'%s': the DNS server answered rcode %d", name,
		             (*res)->rcode);
		ub_resolve_free(*res);
		return ST_E_IO;
	}
	return ST_OK;
}

/* A domain name in DNS wire form (labels, uncompressed as libunbound gives rdata) to text. */
static int wire_name(const unsigned char *p, size_t len, char *out, size_t size)
{
	size_t i = 0, o = 0;

	if (len == 1 && p[0] == 0) {
		snprintf(out, size, ".");
		return 0;
	}
	while (i < len && p[i] != 0) {
		size_t l = p[i++], k;
		if (l > 63 || i + l > len || o + l + 2 > size)
			return -1;
		for (k = 0; k < l; k++) {
			unsigned char c = p[i + k];
			out[o++] = (char)(c > 0x20 && c < 0x7f ? c : '?');
		}
		out[o++] = '.';
		i += l;
	}
	if (o == 0 || i >= len)
		return -1;
	out[o - 1] = '\0'; /* no final dot */
	return 0;
}

int st_dns_mx(struct st_dns *d, const char *domain, struct st_mx *out, size_t max, size_t *n,
              bool *null_mx, struct st_error *err)
{
	struct ub_result *res;
	size_t i, j;
	int rc;

	*n = 0;
	*null_mx = false;
	rc = query(d, domain, TYPE_MX, &res, err);
	if (rc)
		return rc;
	for (i = 0; res->havedata && res->data[i] && *n < max; i++) {
		const unsigned char *r = (const unsigned char *)res->data[i];
		size_t len = (size_t)res->len[i];
		struct st_mx mx;
		if (len < 3 || wire_name(r + 2, len - 2, mx.host, sizeof(mx.host)))
			continue;
		mx.pref = ((unsigned)r[0] << 8) | r[1];
		/* insertion keeps equal preferences in the server's order */
		for (j = *n; j > 0 && out[j - 1].pref > mx.pref; j--)
			out[j] = out[j - 1];
		out[j] = mx;
		(*n)++;
	}
	ub_resolve_free(res);
	if (*n == 1 && strcmp(out[0].host, ".") == 0) {
		*null_mx = true;
		*n = 0;
	}
	return ST_OK;
}

int st_dns_addrs(struct st_dns *d, const char *host, char (*out)[64], size_t max, size_t *n,
                 struct st_error *err)
{
	static const int types[2] = {TYPE_A, TYPE_AAAA};
	struct ub_result *res;
	size_t i, t;
	int rc;

	struct st_error first = {ST_ERR_NONE, ""}, e;

	*n = 0;
	for (t = 0; t < 2; t++) {
		/* one type failing (a server that refuses AAAA) is no failure when the
		 * other gives addresses */
		rc = query(d, host, types[t], &res, &e);
		if (rc) {
			if (first.cls == ST_ERR_NONE)
				first = e;
			continue;
		}
		for (i = 0; res->havedata && res->data[i] && *n < max; i++) {
			int fam = types[t] == TYPE_A ? AF_INET : AF_INET6;
			size_t want = fam == AF_INET ? 4 : 16;
			if ((size_t)res->len[i] != want ||
			    !inet_ntop(fam, res->data[i], out[*n], sizeof(out[*n])))
				continue;
			(*n)++;
		}
		ub_resolve_free(res);
	}
	if (*n == 0) {
		if (first.cls != ST_ERR_NONE && err)
			*err = first;
		else
			st_error_set(err, ST_ERR_DNS, "'%s': no address (A or AAAA)", host);
		return ST_E_PARSE;
	}
	return ST_OK;
}
