/* dns.c: MX and address lookups through libunbound (a given server, or the system's), with /etc/hosts */
#include "config.h"

#include "dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unbound.h>
#include <uv.h>

#define TYPE_A    1
#define TYPE_MX   15
#define TYPE_AAAA 28
#define CLASS_IN  1

struct st_dns {
	struct ub_ctx *ctx;
	int timeout_ms; /* for each query, the resolver's own retries included */
	uv_loop_t *loop; /* attached: queries run on it */
	uv_poll_t poll;  /* ub_fd, watched while queries are pending */
	bool polling;
	int pending;
	struct dq *queries; /* pending, to end them all on detach */
	bool free_when_detached;
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
	if (d->loop) {
		/* the poll handle closes on the loop: the rest goes with it */
		d->free_when_detached = true;
		st_dns_detach(d);
		return;
	}
	if (d->ctx)
		ub_ctx_delete(d->ctx);
	free(d);
}

void st_dns_set_timeout(struct st_dns *d, int ms)
{
	d->timeout_ms = ms > 0 ? ms : 1;
}

/* ---- queries on a loop: the resolver's descriptor watched by uv_poll, a timer each ---- */

struct dq;
typedef void (*dq_cb)(struct dq *q, int rc, struct ub_result *res, const struct st_error *err);

struct dq {
	struct st_dns *d;
	struct dq *prev, *next; /* the resolver's pending queries */
	int id;
	int type;
	bool done;
	uv_timer_t timer;
	char name[256];
	dq_cb cb;
	void *arg;
};

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
	if (--d->pending == 0 && d->polling) {
		uv_poll_stop(&d->poll);
		d->polling = false;
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
	struct st_error err = {ST_ERR_NONE, ""};

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

	ub_cancel(q->d->ctx, q->id);
	st_error_set(&err, ST_ERR_DNS, "no DNS answer for '%s' within %d ms", q->name,
	             q->d->timeout_ms);
	dq_end(q, ST_E_IO, NULL, &err);
}

/* Start one query on the attached loop; cb gets the checked answer (to free) or an error. */
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
	rc = ub_resolve_async(d->ctx, name, type, CLASS_IN, q, answered, &q->id);
	if (rc != 0) {
		st_error_set(err, ST_ERR_DNS, "cannot look up '%s': %s", q->name, ub_strerror(rc));
		free(q);
		return ST_E_IO;
	}
	uv_timer_init(d->loop, &q->timer);
	q->timer.data = q;
	q->next = d->queries;
	if (q->next)
		q->next->prev = q;
	d->queries = q;
	uv_timer_start(&q->timer, dq_timeout, (uint64_t)d->timeout_ms, 0);
	if (d->pending++ == 0 && !d->polling) {
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
	if (d->free_when_detached) {
		ub_ctx_delete(d->ctx);
		free(d);
	}
}

void st_dns_detach(struct st_dns *d)
{
	if (!d || !d->loop || uv_is_closing((uv_handle_t *)&d->poll))
		return;
	/* queries still pending end now, each with its callback: nothing may answer
	 * them later (nobody polls) and their timers must not outlive us */
	while (d->queries) {
		struct dq *q = d->queries;
		struct st_error err;
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
	char host[256];
	char v4[ST_DNS_ADDR_MAX][64], v6[ST_DNS_ADDR_MAX][64];
	size_t n4, n6;
	struct st_error first; /* the first failure, said when no type gives an address */
};

static void addr_answer(struct dq *q, int rc, struct ub_result *res, const struct st_error *err)
{
	struct addr_req *a = q->arg;
	char(*out)[64] = q->type == TYPE_A ? a->v4 : a->v6;
	size_t *n = q->type == TYPE_A ? &a->n4 : &a->n6, i;
	int fam = q->type == TYPE_A ? AF_INET : AF_INET6;
	size_t want = fam == AF_INET ? 4 : 16;

	if (rc == 0) {
		for (i = 0; res->havedata && res->data[i] && *n < ST_DNS_ADDR_MAX; i++)
			if ((size_t)res->len[i] == want &&
			    inet_ntop(fam, res->data[i], out[*n], sizeof(out[*n])))
				(*n)++;
		ub_resolve_free(res);
	} else if (a->first.cls == ST_ERR_NONE) {
		/* one type failing (a server that refuses AAAA) is no failure when the
		 * other gives addresses */
		a->first = *err;
	}
	if (--a->left > 0)
		return;
	{
		/* IPv4 first, then IPv6 */
		char all[2 * ST_DNS_ADDR_MAX][64];
		size_t k = 0;
		struct st_error e = {ST_ERR_NONE, ""};
		for (i = 0; i < a->n4; i++)
			memcpy(all[k++], a->v4[i], 64);
		for (i = 0; i < a->n6 && k < ST_DNS_ADDR_MAX; i++)
			memcpy(all[k++], a->v6[i], 64);
		if (k == 0) {
			if (a->first.cls != ST_ERR_NONE)
				e = a->first;
			else
				st_error_set(&e, ST_ERR_DNS, "'%s': no address (A or AAAA)", a->host);
		}
		a->cb(a->arg, k ? ST_OK : ST_E_PARSE, all, k, &e);
	}
	free(a);
}

int st_dns_addrs_async(struct st_dns *d, const char *host, st_dns_addrs_cb cb, void *arg,
                       struct st_error *err)
{
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
	st_sanitize(a->host);
	a->left = 2;
	rc = dq_start(d, host, TYPE_A, addr_answer, a, err);
	if (rc) {
		free(a);
		return rc;
	}
	if (dq_start(d, host, TYPE_AAAA, addr_answer, a, &a->first)) {
		/* the A query goes on and answers alone */
		a->left--;
	}
	return ST_OK;
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

static int wait_for(struct st_dns *d, struct waiting *w, const char *name, bool mx)
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
		        : st_dns_addrs_async(d, name, waited_addrs, w, w->err);
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
	return wait_for(d, &w, domain, true);
}

int st_dns_addrs(struct st_dns *d, const char *host, char (*out)[64], size_t max, size_t *n,
                 struct st_error *err)
{
	struct waiting w = {false, 0, err, NULL, out, max, n, NULL};

	*n = 0;
	return wait_for(d, &w, host, false);
}
