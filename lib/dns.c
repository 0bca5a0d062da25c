/* dns.c: MX lookups from DNS (libunbound), host addresses as smtp_host_lookup says, --resolve first */
#include "config.h"

#include "dns.h"
#include "pool.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <unbound.h>
#include <uv.h>

#define TYPE_LOCAL  0 /* a --resolve entry: answered from the loop, nobody asked */
#define TYPE_NATIVE -1 /* the system's resolver library, on the loop's thread pool */
#define TYPE_A      1
#define TYPE_MX     15
#define TYPE_AAAA   28
#define CLASS_IN    1

/* A --resolve entry. */
struct pinned {
	char host[256];
	unsigned port;
	char addrs[ST_DNS_ADDR_MAX][64];
	size_t n;
};

struct st_dns {
	struct ub_ctx *ctx;
	int timeout_ms; /* for each query, the resolver's own retries included */
	uv_loop_t *loop; /* attached: queries run on it */
	uv_poll_t poll;  /* ub_fd, watched while queries are pending */
	bool polling;
	int pending;
	struct dq *queries; /* pending, to end them all on detach */
	bool free_when_detached;
	bool detaching; /* pending queries are being ended: no new one */
	int host_lookup; /* ST_HOST_LOOKUP_* */
	struct pinned *pinned; /* --resolve entries */
	size_t n_pinned;
};

struct st_dns *st_dns_new(const char *server, struct st_error *err)
{
	struct st_dns *d = calloc(1, sizeof(*d));
	char fwd[128];
	int rc;

	if (!d) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (!(d->ctx = ub_ctx_create())) {
		free(d);
		/* libunbound that cannot be loaded says why (its soname) as any of its errors */
		st_error_set(err, ST_ERR_INTERNAL, "cannot start the DNS resolver: %s",
		             ub_strerror(UB_NOMEM));
		return NULL;
	}
	d->timeout_ms = 30000;
	d->host_lookup = ST_HOST_LOOKUP_DNS;
	/* the special-use names libunbound answers itself (test., invalid.) go to the
	 * server, as the system's resolver library (and so Postfix) sends them */
	ub_ctx_set_option(d->ctx, "local-zone:", "test. transparent");
	ub_ctx_set_option(d->ctx, "local-zone:", "invalid. transparent");
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
		/* a test's server on loopback must be allowed */
		ub_ctx_set_option(d->ctx, "do-not-query-localhost:", "no");
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
	/* no ub_ctx_hosts(): /etc/hosts made a transparent local zone of each name
	 * there, and an MX question for it was answered NODATA; Postfix takes MX
	 * records from DNS alone, and host addresses from /etc/hosts only through
	 * the native lookups of smtp_host_lookup */
	return d;
}

void st_dns_free(struct st_dns *d)
{
	if (!d)
		return;
	if (d->loop) {
		/* the poll handle closes on the loop: the rest goes with it */
		d->free_when_detached = true;
		st_dns_detach(d);
		return;
	}
	if (d->ctx)
		ub_ctx_delete(d->ctx);
	free(d->pinned);
	free(d);
}

void st_dns_set_timeout(struct st_dns *d, int ms)
{
	d->timeout_ms = ms > 0 ? ms : 1;
}

int st_dns_host_lookup_parse(const char *s, struct st_error *err)
{
	int set = 0;
	const char *p = s;

	while (*p) {
		size_t len;
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		len = strcspn(p, ", \t\r\n");
		if (!len)
			break;
		if (len == 3 && !strncasecmp(p, "dns", 3))
			set |= ST_HOST_LOOKUP_DNS;
		else if (len == 6 && !strncasecmp(p, "native", 6))
			set |= ST_HOST_LOOKUP_NATIVE;
		else {
			char bad[64];
			snprintf(bad, sizeof(bad), "%.*s", (int)(len < 60 ? len : 60), p);
			st_sanitize(bad);
			st_error_set(err, ST_ERR_USAGE,
			             "'%s' is not a host lookup method (dns, native, or both)", bad);
			return -1;
		}
		p += len;
	}
	if (!set) {
		st_error_set(err, ST_ERR_USAGE, "no host lookup method: dns, native, or both");
		return -1;
	}
	return set;
}

const char *st_dns_host_lookup_name(int lookup)
{
	if ((lookup & ST_HOST_LOOKUP_NATIVE) && (lookup & ST_HOST_LOOKUP_DNS))
		return "dns, native";
	return (lookup & ST_HOST_LOOKUP_NATIVE) ? "native" : "dns";
}

void st_dns_set_host_lookup(struct st_dns *d, int lookup)
{
	lookup &= ST_HOST_LOOKUP_DNS | ST_HOST_LOOKUP_NATIVE;
	d->host_lookup = lookup ? lookup : ST_HOST_LOOKUP_DNS;
}

int st_dns_host_lookup(const struct st_dns *d)
{
	return d->host_lookup;
}

/* One address of a --resolve entry, with or without brackets, to its text form. */
static int pinned_addr(const char *a, size_t len, char *out, size_t size)
{
	unsigned char bin[16];
	char buf[80];

	if (len >= 2 && a[0] == '[' && a[len - 1] == ']')
		a++, len -= 2;
	if (!len || len >= sizeof(buf))
		return -1;
	memcpy(buf, a, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, bin) == 1)
		return inet_ntop(AF_INET, bin, out, (socklen_t)size) ? 0 : -1;
	if (inet_pton(AF_INET6, buf, bin) == 1)
		return inet_ntop(AF_INET6, bin, out, (socklen_t)size) ? 0 : -1;
	return -1;
}

int st_dns_add_resolve(struct st_dns *d, const char *spec, struct st_error *err)
{
	struct pinned e, *grown;
	const char *c1 = strchr(spec, ':'), *c2, *a;
	char shown[300];
	unsigned long port;
	char *end;
	size_t i;

	memset(&e, 0, sizeof(e));
	snprintf(shown, sizeof(shown), "%s", spec);
	st_sanitize(shown);
	c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c1 || !c2 || c1 == spec || (size_t)(c1 - spec) >= sizeof(e.host)) {
		st_error_set(err, ST_ERR_USAGE, "--resolve: '%s' is not HOST:PORT:ADDR[,ADDR...]",
		             shown);
		return ST_E_PARSE;
	}
	memcpy(e.host, spec, (size_t)(c1 - spec));
	port = strtoul(c1 + 1, &end, 10);
	if (end != c2 || c2 == c1 + 1 || port == 0 || port > 65535) {
		st_error_set(err, ST_ERR_USAGE, "--resolve: '%s': '%.*s' is not a port", shown,
		             (int)(c2 - c1 - 1 < 16 ? c2 - c1 - 1 : 16), c1 + 1);
		return ST_E_PARSE;
	}
	e.port = (unsigned)port;
	for (a = c2 + 1;;) {
		size_t len = strcspn(a, ",");
		if (e.n >= ST_DNS_ADDR_MAX) {
			st_error_set(err, ST_ERR_USAGE, "--resolve: '%s': at most %d addresses", shown,
			             ST_DNS_ADDR_MAX);
			return ST_E_PARSE;
		}
		if (pinned_addr(a, len, e.addrs[e.n], sizeof(e.addrs[0])) < 0) {
			char bad[80];
			snprintf(bad, sizeof(bad), "%.*s", (int)(len < 64 ? len : 64), a);
			st_sanitize(bad);
			st_error_set(err, ST_ERR_USAGE, "--resolve: '%s': '%s' is not an IP address",
			             shown, bad);
			return ST_E_PARSE;
		}
		e.n++;
		if (!a[len])
			break;
		a += len + 1;
	}
	if (!d)
		return ST_OK; /* only checked */
	/* as curl: a later entry for the same host and port replaces the earlier */
	for (i = 0; i < d->n_pinned; i++)
		if (d->pinned[i].port == e.port && !strcasecmp(d->pinned[i].host, e.host)) {
			d->pinned[i] = e;
			return ST_OK;
		}
	grown = realloc(d->pinned, (d->n_pinned + 1) * sizeof(*grown));
	if (!grown) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return ST_E_NOMEM;
	}
	d->pinned = grown;
	d->pinned[d->n_pinned++] = e;
	return ST_OK;
}

static const struct pinned *pinned_find(const struct st_dns *d, const char *host, unsigned port)
{
	size_t i;

	for (i = 0; port && i < d->n_pinned; i++)
		if (d->pinned[i].port == port && !strcasecmp(d->pinned[i].host, host))
			return &d->pinned[i];
	return NULL;
}

/* ---- queries on a loop: the resolver's descriptor watched by uv_poll, a timer each ---- */

struct dq;
typedef void (*dq_cb)(struct dq *q, int rc, struct ub_result *res, const struct st_error *err);

/* The system's resolver library at work on a worker thread (lib/pool: libuv's own pool
 * aborts the process when it cannot start a thread): it may outlive its query (a timeout,
 * a detach), and then frees itself when it is done. */
struct gai {
	struct st_job job;
	struct dq *q; /* NULL once the query has ended */
	char name[256];
	int eai, sys_errno; /* getaddrinfo's return, errno for EAI_SYSTEM */
	struct addrinfo *res;
};

struct dq {
	struct st_dns *d;
	struct dq *prev, *next; /* the resolver's pending queries */
	int id;
	int type; /* TYPE_A ... or TYPE_LOCAL, TYPE_NATIVE */
	bool done;
	uv_timer_t timer; /* the timeout; for TYPE_LOCAL, the answer */
	struct gai *gai;  /* TYPE_NATIVE */
	char name[256];
	dq_cb cb;
	void *arg;
};

static bool asks_unbound(const struct dq *q)
{
	return q->type > 0;
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct st_dns *d = h->data;

	(void)status;
	(void)events;
	ub_process(d->ctx); /* answers reach their callbacks from here */
}

static void dq_free(uv_handle_t *h)
{
	free(h->data);
}

/* The end of a query: its callback, the poll stopped when nothing is pending. */
static void dq_end(struct dq *q, int rc, struct ub_result *res, const struct st_error *err)
{
	struct st_dns *d = q->d;

	q->done = true;
	uv_timer_stop(&q->timer);
	if (q->prev)
		q->prev->next = q->next;
	else
		d->queries = q->next;
	if (q->next)
		q->next->prev = q->prev;
	if (asks_unbound(q) && --d->pending == 0 && d->polling) {
		uv_poll_stop(&d->poll);
		d->polling = false;
	}
	if (q->gai) {
		/* a lookup still at work ends on its own, and frees itself; one still waiting
		 * for a thread never starts (a silent resolver would hold a thread for nothing,
		 * and the loop's end with it) and frees itself all the same */
		q->gai->q = NULL;
		st_pool_cancel(&q->gai->job);
		q->gai = NULL;
	}
	q->cb(q, rc, res, err);
	uv_close((uv_handle_t *)&q->timer, dq_free);
}

/* What libunbound answered, checked: rcode, NXDOMAIN; res freed on error. */
static int check_answer(const char *name, int rc, struct ub_result *res, struct st_error *err)
{
	if (rc != 0) {
		if (res)
			ub_resolve_free(res);
		st_error_set(err, ST_ERR_DNS, "cannot look up '%s': %s", name, ub_strerror(rc));
		return ST_E_IO;
	}
	if (res->rcode == 3) {
		st_error_set(err, ST_ERR_DNS, "'%s': no such domain (NXDOMAIN)", name);
		err->sub = ST_DNS_NXDOMAIN;
		ub_resolve_free(res);
		return ST_E_PARSE;
	}
	if (res->rcode != 0) {
		st_error_set(err, ST_ERR_DNS, "'%s': the DNS server answered rcode %d", name,
		             res->rcode);
		ub_resolve_free(res);
		return ST_E_IO;
	}
	return ST_OK;
}

static void answered(void *arg, int rc, struct ub_result *res)
{
	struct dq *q = arg;
	struct st_error err = {ST_ERR_NONE, "", 0};

	if (q->done) { /* cancelled after its timer fired: cannot happen, but free it */
		if (res)
			ub_resolve_free(res);
		return;
	}
	rc = check_answer(q->name, rc, res, &err);
	dq_end(q, rc, rc ? NULL : res, &err);
}

static void dq_timeout(uv_timer_t *t)
{
	struct dq *q = t->data;
	struct st_error err;

	if (asks_unbound(q))
		ub_cancel(q->d->ctx, q->id);
	st_error_set(&err, ST_ERR_DNS, "no %s answer for '%s' within %d ms",
	             q->type == TYPE_NATIVE ? "system resolver" : "DNS", q->name, q->d->timeout_ms);
	dq_end(q, ST_E_IO, NULL, &err);
}

/* A --resolve entry's answer: from the loop, never from within the start. */
static void dq_local(uv_timer_t *t)
{
	struct dq *q = t->data;
	struct st_error err = {ST_ERR_NONE, "", 0};

	dq_end(q, ST_OK, NULL, &err);
}

static void gai_work(struct st_job *j);
static void gai_answered(struct st_job *j);

/*
 * Start one query on the attached loop: a DNS question (cb gets the checked
 * answer, to free, or an error), a --resolve answer (TYPE_LOCAL), or the
 * system's resolver library (TYPE_NATIVE: the answer is handed to the query's
 * request by gai_answered, and cb gets no ub_result).
 */
static int dq_start(struct st_dns *d, const char *name, int type, dq_cb cb, void *arg,
                    struct st_error *err)
{
	struct dq *q = calloc(1, sizeof(*q));
	int rc;

	if (!q) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return ST_E_NOMEM;
	}
	q->d = d;
	q->type = type;
	q->cb = cb;
	q->arg = arg;
	snprintf(q->name, sizeof(q->name), "%s", name);
	st_sanitize(q->name);
	if (type == TYPE_NATIVE) {
		if (!(q->gai = calloc(1, sizeof(*q->gai)))) {
			free(q);
			st_error_set(err, ST_ERR_INTERNAL, "out of memory");
			return ST_E_NOMEM;
		}
		q->gai->q = q;
		q->gai->job.data = q->gai;
		snprintf(q->gai->name, sizeof(q->gai->name), "%s", name);
		rc = st_pool_submit(d->loop, &q->gai->job, gai_work, gai_answered);
		if (rc < 0) {
			st_error_set(err, ST_ERR_DNS, "cannot look up '%s': %s", q->name,
			             "cannot start a thread");
			free(q->gai);
			free(q);
			return ST_E_IO;
		}
	} else if (type != TYPE_LOCAL) {
		rc = ub_resolve_async(d->ctx, name, type, CLASS_IN, q, answered, &q->id);
		if (rc != 0) {
			st_error_set(err, ST_ERR_DNS, "cannot look up '%s': %s", q->name,
			             ub_strerror(rc));
			free(q);
			return ST_E_IO;
		}
	}
	uv_timer_init(d->loop, &q->timer);
	q->timer.data = q;
	q->next = d->queries;
	if (q->next)
		q->next->prev = q;
	d->queries = q;
	if (type == TYPE_LOCAL) {
		uv_timer_start(&q->timer, dq_local, 0, 0);
		return ST_OK;
	}
	uv_timer_start(&q->timer, dq_timeout, (uint64_t)d->timeout_ms, 0);
	if (asks_unbound(q) && d->pending++ == 0 && !d->polling) {
		uv_poll_start(&d->poll, UV_READABLE, poll_cb);
		d->polling = true;
	}
	return ST_OK;
}

int st_dns_attach(struct st_dns *d, uv_loop_t *loop, struct st_error *err)
{
	int rc;

	if (d->loop) {
		st_error_set(err, ST_ERR_INTERNAL, "the resolver is attached to a loop already");
		return ST_E_INVALID;
	}
	rc = uv_poll_init(loop, &d->poll, ub_fd(d->ctx));
	if (rc < 0) {
		st_error_set(err, ST_ERR_INTERNAL, "cannot watch the DNS resolver: %s",
		             uv_strerror(rc));
		return ST_E_IO;
	}
	d->poll.data = d;
	d->loop = loop;
	return ST_OK;
}

static void detached(uv_handle_t *h)
{
	struct st_dns *d = h->data;

	d->loop = NULL;
	d->detaching = false;
	if (d->free_when_detached) {
		ub_ctx_delete(d->ctx);
		free(d->pinned);
		free(d);
	}
}

void st_dns_detach(struct st_dns *d)
{
	if (!d || !d->loop || uv_is_closing((uv_handle_t *)&d->poll))
		return;
	/* queries still pending end now, each with its callback: nothing may answer
	 * them later (nobody polls) and their timers must not outlive us */
	d->detaching = true;
	while (d->queries) {
		struct dq *q = d->queries;
		struct st_error err;
		if (asks_unbound(q))
			ub_cancel(d->ctx, q->id);
		st_error_set(&err, ST_ERR_DNS, "the lookup of '%s' was cancelled", q->name);
		dq_end(q, ST_E_IO, NULL, &err);
	}
	uv_close((uv_handle_t *)&d->poll, detached);
}

/* ---- the answers ---- */

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

/* The MX records of an answer, by preference (equal ones in the server's order). */
static void parse_mx(const struct ub_result *res, struct st_mx *out, size_t max, size_t *n,
                     bool *null_mx)
{
	size_t i, j;

	*n = 0;
	*null_mx = false;
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
	if (*n == 1 && strcmp(out[0].host, ".") == 0) {
		*null_mx = true;
		*n = 0;
	}
}

struct mx_req {
	st_dns_mx_cb cb;
	void *arg;
};

static void mx_answer(struct dq *q, int rc, struct ub_result *res, const struct st_error *err)
{
	struct mx_req *m = q->arg;
	struct st_mx out[ST_DNS_MX_MAX];
	size_t n = 0;
	bool null_mx = false;

	if (rc == 0) {
		parse_mx(res, out, ST_DNS_MX_MAX, &n, &null_mx);
		ub_resolve_free(res);
	}
	m->cb(m->arg, rc, out, n, null_mx, err);
	free(m);
}

int st_dns_mx_async(struct st_dns *d, const char *domain, st_dns_mx_cb cb, void *arg,
                    struct st_error *err)
{
	struct mx_req *m;
	int rc;

	if (!d->loop) {
		st_error_set(err, ST_ERR_INTERNAL, "the resolver is not attached to a loop");
		return ST_E_INVALID;
	}
	if (!(m = calloc(1, sizeof(*m)))) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return ST_E_NOMEM;
	}
	m->cb = cb;
	m->arg = arg;
	rc = dq_start(d, domain, TYPE_MX, mx_answer, m, err);
	if (rc)
		free(m);
	return rc;
}

struct addr_req {
	st_dns_addrs_cb cb;
	void *arg;
	int left; /* queries not answered yet */
	bool native_asked;
	char host[256];
	char v4[ST_DNS_ADDR_MAX][64], v6[ST_DNS_ADDR_MAX][64];
	size_t n4, n6;
	int first_rc;          /* of the first failure */
	struct st_error first; /* the first failure, said when no type gives an address */
};

/* Keep an address, once. */
static void addr_keep(struct addr_req *a, int fam, const char *text)
{
	char(*out)[64] = fam == AF_INET ? a->v4 : a->v6;
	size_t *n = fam == AF_INET ? &a->n4 : &a->n6, i;

	for (i = 0; i < *n; i++)
		if (!strcmp(out[i], text))
			return;
	if (*n < ST_DNS_ADDR_MAX)
		snprintf(out[(*n)++], 64, "%s", text);
}

static void gai_work(struct st_job *j)
{
	struct gai *g = j->data;
	struct addrinfo hints;

	/* no AI_ADDRCONFIG: it counts no loopback address, and hosts on loopback are real
	 * next hops (tests, a local relay) */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	g->eai = getaddrinfo(g->name, NULL, &hints, &g->res);
	g->sys_errno = errno;
}

static void gai_answered(struct st_job *j)
{
	struct gai *g = j->data;
	struct dq *q = g->q;
	struct addrinfo *res = g->res;
	int status = g->eai;
	struct st_error err = {ST_ERR_NONE, "", 0};
	struct addrinfo *ai;
	int rc = ST_OK;

	if (!q) { /* timed out or cancelled: nobody waits */
		if (res)
			freeaddrinfo(res);
		free(g);
		return;
	}
	q->gai = NULL;
	if (status != 0) {
		/* a name it does not know is "not found", anything else a failure to retry;
		 * getaddrinfo's own words (Postfix logs them) */
		rc = status == EAI_NONAME || status == EAI_NODATA ? ST_E_PARSE : ST_E_IO;
		st_error_set(&err, ST_ERR_DNS, "cannot look up '%s' with the system's resolver: %s",
		             q->name,
		             status == EAI_SYSTEM ? strerror(g->sys_errno) : gai_strerror(status));
		err.sub = status == EAI_NONAME   ? ST_DNS_EAI_NONAME
		          : status == EAI_NODATA ? ST_DNS_EAI_NODATA
		                                 : ST_DNS_TRY_AGAIN;
	} else {
		struct addr_req *a = q->arg;
		for (ai = res; ai; ai = ai->ai_next) {
			char text[64];
			const void *bin = ai->ai_family == AF_INET
			                      ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
			                      : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
			if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
			    inet_ntop(ai->ai_family, bin, text, sizeof(text)))
				addr_keep(a, ai->ai_family, text);
		}
	}
	if (res)
		freeaddrinfo(res);
	free(g);
	dq_end(q, rc, NULL, &err);
}

/* Every query of a request answered: its callback, with IPv4 then IPv6 addresses. */
static void addr_finish(struct addr_req *a)
{
	char all[ST_DNS_ADDR_MAX][64];
	size_t k = 0, i;
	struct st_error e = {ST_ERR_NONE, "", 0};
	int rc = ST_OK;

	for (i = 0; i < a->n4; i++)
		memcpy(all[k++], a->v4[i], 64);
	for (i = 0; i < a->n6 && k < ST_DNS_ADDR_MAX; i++)
		memcpy(all[k++], a->v6[i], 64);
	if (k == 0) {
		rc = ST_E_PARSE;
		if (a->first.cls != ST_ERR_NONE) {
			e = a->first;
			rc = a->first_rc;
		} else {
			char shown[256];
			snprintf(shown, sizeof(shown), "%s", a->host);
			st_sanitize(shown);
			st_error_set(&e, ST_ERR_DNS, "'%s': no address (A or AAAA)", shown);
			e.sub = ST_DNS_NODATA;
		}
	}
	a->cb(a->arg, rc, all, k, &e);
	free(a);
}

static void addr_answer(struct dq *q, int rc, struct ub_result *res, const struct st_error *err)
{
	struct addr_req *a = q->arg;
	size_t i;

	if (rc == 0 && (q->type == TYPE_A || q->type == TYPE_AAAA)) {
		int fam = q->type == TYPE_A ? AF_INET : AF_INET6;
		size_t want = fam == AF_INET ? 4 : 16;
		for (i = 0; res->havedata && res->data[i]; i++) {
			char text[64];
			if ((size_t)res->len[i] == want &&
			    inet_ntop(fam, res->data[i], text, sizeof(text)))
				addr_keep(a, fam, text);
		}
		ub_resolve_free(res);
	} else if (rc != 0 && (a->first.cls == ST_ERR_NONE || q->type == TYPE_NATIVE ||
	                       q->type == TYPE_LOCAL)) {
		/* a --resolve answer cancelled before it was given is no answer */
		if (q->type == TYPE_LOCAL)
			a->n4 = 0;
		/* one type failing (a server that refuses AAAA) is no failure when the
		 * other gives addresses; the system's resolver, asked last, says why */
		a->first = *err;
		a->first_rc = rc;
	}
	if (--a->left > 0)
		return;
	/* DNS does not know the host (no such domain, or no address): "dns, native" asks
	 * the system's resolver, as Postfix does on DNS_NOTFOUND; a DNS failure does not */
	if (!a->n4 && !a->n6 && !a->native_asked && (q->d->host_lookup & ST_HOST_LOOKUP_NATIVE) &&
	    (a->first.cls == ST_ERR_NONE || a->first_rc == ST_E_PARSE) && !q->d->detaching) {
		struct st_error e;
		a->native_asked = true;
		a->left = 1;
		if (dq_start(q->d, a->host, TYPE_NATIVE, addr_answer, a, &e) == 0)
			return;
		a->first = e;
		a->first_rc = ST_E_IO;
	}
	addr_finish(a);
}

int st_dns_addrs_async(struct st_dns *d, const char *host, unsigned port, st_dns_addrs_cb cb,
                       void *arg, struct st_error *err)
{
	const struct pinned *pin = pinned_find(d, host, port);
	struct addr_req *a;
	int rc;

	if (!d->loop) {
		st_error_set(err, ST_ERR_INTERNAL, "the resolver is not attached to a loop");
		return ST_E_INVALID;
	}
	if (!(a = calloc(1, sizeof(*a)))) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return ST_E_NOMEM;
	}
	a->cb = cb;
	a->arg = arg;
	snprintf(a->host, sizeof(a->host), "%s", host);
	if (pin) {
		/* the addresses as given, in their order */
		memcpy(a->v4, pin->addrs, pin->n * sizeof(pin->addrs[0]));
		a->n4 = pin->n;
		a->left = 1;
		a->native_asked = true;
		rc = dq_start(d, host, TYPE_LOCAL, addr_answer, a, err);
	} else if (!(d->host_lookup & ST_HOST_LOOKUP_DNS)) {
		a->left = 1;
		a->native_asked = true;
		rc = dq_start(d, host, TYPE_NATIVE, addr_answer, a, err);
	} else {
		a->left = 2;
		rc = dq_start(d, host, TYPE_A, addr_answer, a, err);
		if (rc == 0 && dq_start(d, host, TYPE_AAAA, addr_answer, a, &a->first)) {
			/* the A query goes on and answers alone */
			a->first_rc = ST_E_IO;
			a->left--;
		}
	}
	if (rc)
		free(a);
	return rc;
}

/* ---- the same, waiting: a loop of their own ---- */

struct waiting {
	bool done;
	int rc;
	struct st_error *err;
	struct st_mx *mx;
	char (*addrs)[64];
	size_t max, *n;
	bool *null_mx;
};

static void waited_mx(void *arg, int rc, const struct st_mx *mx, size_t n, bool null_mx,
                      const struct st_error *err)
{
	struct waiting *w = arg;

	w->done = true;
	w->rc = rc;
	if (rc && w->err)
		*w->err = *err;
	*w->n = n < w->max ? n : w->max;
	memcpy(w->mx, mx, *w->n * sizeof(*mx));
	*w->null_mx = null_mx;
}

static void waited_addrs(void *arg, int rc, char (*addrs)[64], size_t n,
                         const struct st_error *err)
{
	struct waiting *w = arg;

	w->done = true;
	w->rc = rc;
	if (rc && w->err)
		*w->err = *err;
	*w->n = n < w->max ? n : w->max;
	memcpy(w->addrs, addrs, *w->n * 64);
}

static int wait_for(struct st_dns *d, struct waiting *w, const char *name, unsigned port, bool mx)
{
	uv_loop_t loop;
	int rc;

	if (d->loop) {
		st_error_set(w->err, ST_ERR_INTERNAL, "the resolver is attached to a loop");
		return ST_E_INVALID;
	}
	if (uv_loop_init(&loop) < 0) {
		st_error_set(w->err, ST_ERR_INTERNAL, "cannot start an event loop");
		return ST_E_IO;
	}
	rc = st_dns_attach(d, &loop, w->err);
	if (rc == 0) {
		rc = mx ? st_dns_mx_async(d, name, waited_mx, w, w->err)
		        : st_dns_addrs_async(d, name, port, waited_addrs, w, w->err);
		if (rc == 0) {
			uv_run(&loop, UV_RUN_DEFAULT);
			rc = w->rc;
		}
		st_dns_detach(d);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(&loop);
	return rc;
}

int st_dns_mx(struct st_dns *d, const char *domain, struct st_mx *out, size_t max, size_t *n,
              bool *null_mx, struct st_error *err)
{
	struct waiting w = {false, 0, err, out, NULL, max, n, null_mx};

	*n = 0;
	*null_mx = false;
	return wait_for(d, &w, domain, 0, true);
}

int st_dns_addrs(struct st_dns *d, const char *host, unsigned port, char (*out)[64], size_t max,
                 size_t *n, struct st_error *err)
{
	struct waiting w = {false, 0, err, NULL, out, max, n, NULL};

	*n = 0;
	return wait_for(d, &w, host, port, false);
}
