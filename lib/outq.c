/* outq.c: the outgoing queue: queue files read and marked off the loop's thread, attempts scheduled, retried with backoff */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outq.h"
#include "pool.h"

struct qmsg;

/* The recipients of one message that go to one next-hop. */
struct group {
	struct qmsg *qm;
	struct st_job mark; /* this group's outcomes written as soon as it ends */
	int mark_rc;
	struct st_error mark_err;
	char nexthop[320];
	size_t *idx; /* recipient numbers in the queue file */
	const char **rcpt;
	size_t n;
	struct st_policy pol;
	char policy_error[ST_ERROR_MAX];
	bool invalid;
	bool from_table;
	size_t table;
	char key[320];
	struct st_relay_result res;
};

struct qmsg {
	struct st_outq *q;
	unsigned marks_pending; /* groups' outcomes being written to the file */
	char id[ST_QUEUE_ID_MAX];
	time_t next;
	unsigned attempts;
	bool busy, gone, unreadable;
	/* an attempt */
	struct st_job work;
	struct st_queue_msg m;
	int rc;
	struct st_error err;
	char *state; /* the states to write back */
	bool remove; /* every recipient finished: the file goes */
	time_t next_write;
	struct group *groups;
	size_t n_groups, pending;
};

struct st_outq {
	uv_loop_t *loop;
	struct st_outq_params p;
	uv_timer_t timer;
	struct qmsg **msgs;
	size_t n, cap;
	unsigned busy;
	bool stopping, closed;
	void (*stop_cb)(void *);
	void *stop_arg;
};

static void schedule(struct st_outq *q);

static struct qmsg *add_msg(struct st_outq *q, const char *id, time_t next)
{
	struct qmsg *m;

	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		struct qmsg **x = realloc(q->msgs, cap * sizeof(*x));
		if (!x)
			return NULL;
		q->msgs = x, q->cap = cap;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->q = q;
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->next = next;
	q->msgs[q->n++] = m;
	return m;
}

static void drop_msg(struct st_outq *q, struct qmsg *m)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		if (q->msgs[i] == m) {
			q->msgs[i] = q->msgs[--q->n];
			break;
		}
	free(m);
}

static void report_error(struct st_outq *q, const char *msg)
{
	if (q->p.error)
		q->p.error(q->p.arg, msg);
}

static void release_attempt(struct qmsg *m)
{
	size_t g;

	for (g = 0; g < m->n_groups; g++) {
		free(m->groups[g].idx);
		free(m->groups[g].rcpt);
		st_relay_result_release(&m->groups[g].res);
	}
	free(m->groups);
	m->groups = NULL;
	m->n_groups = 0;
	free(m->state);
	m->state = NULL;
	st_queue_msg_release(&m->m);
}

static void stop_check(struct st_outq *q)
{
	if (q->stopping && q->busy == 0 && !q->closed) {
		q->closed = true;
		uv_close((uv_handle_t *)&q->timer, NULL);
		if (q->stop_cb)
			q->stop_cb(q->stop_arg);
	}
}

/* ---- the end of an attempt: states written back off the loop ---- */

static void write_work(struct st_job *w)
{
	struct qmsg *m = w->data;
	const char *dir = m->q->p.dir;
	size_t i;

	m->rc = 0;
	if (m->remove) {
		m->rc = st_queue_remove(dir, m->id, &m->err);
		return;
	}
	for (i = 0; i < m->m.n_rcpt && m->rc == 0; i++)
		if (m->state[i] != m->m.state[i])
			m->rc =
			    st_queue_mark(dir, &m->m, i, (enum st_queue_state)m->state[i], &m->err);
	if (m->rc == 0)
		m->rc = st_queue_set_next(dir, m->id, m->next_write, &m->err);
}

static void write_done(struct st_job *w)
{
	struct qmsg *m = w->data;
	struct st_outq *q = m->q;

	if (m->rc < 0)
		report_error(q, m->err.msg);
	m->next = m->next_write;
	release_attempt(m);
	m->busy = false;
	q->busy--;
	if (m->remove)
		drop_msg(q, m);
	schedule(q);
	stop_check(q);
}

static long backoff(const struct st_outq *q, unsigned attempts)
{
	long b = q->p.backoff_min > 0 ? q->p.backoff_min : 1;
	unsigned k;

	for (k = 1; k < attempts && b < q->p.backoff_max; k++)
		b *= 2;
	return b > q->p.backoff_max && q->p.backoff_max > 0 ? q->p.backoff_max : b;
}

static void attempt_end(struct qmsg *m)
{
	struct st_outq *q = m->q;
	time_t now = time(NULL);
	size_t i;
	bool waiting = false;

	for (i = 0; i < m->m.n_rcpt; i++)
		if (m->state[i] == ST_QUEUE_WAITING)
			waiting = true;
	m->remove = !waiting;
	m->next_write = now + backoff(q, m->attempts);
	m->work.data = m;
	if (st_pool_submit(q->loop, &m->work, write_work, write_done) < 0) {
		m->rc = 0;
		write_done(&m->work);
	}
}

static void mark_work(struct st_job *w)
{
	struct group *g = w->data;
	struct qmsg *m = g->qm;
	size_t k;

	g->mark_rc = 0;
	for (k = 0; k < g->n && g->mark_rc == 0; k++) {
		size_t i = g->idx[k];
		if (m->state[i] != m->m.state[i])
			g->mark_rc = st_queue_mark(m->q->p.dir, &m->m, i,
			                           (enum st_queue_state)m->state[i], &g->mark_err);
	}
}

static void attempt_end(struct qmsg *m);

static void mark_done(struct st_job *w)
{
	struct group *g = w->data;
	struct qmsg *m = g->qm;

	if (g->mark_rc < 0)
		report_error(m->q, g->mark_err.msg);
	if (--m->marks_pending == 0 && m->pending == 0)
		attempt_end(m);
}

static void relay_done(struct st_relay_result *r, void *arg)
{
	struct group *g = (struct group *)arg;
	struct qmsg *m = g->qm;
	struct st_outq *q = m->q;
	time_t now = time(NULL);
	double delay = difftime(now, m->m.arrival);
	bool expire = delay >= (double)q->p.lifetime;
	size_t k;

	for (k = 0; k < g->n && k < r->n_rcpt; k++) {
		const struct st_relay_rcpt *x = &r->rcpt[k];
		struct st_outq_event ev;
		memset(&ev, 0, sizeof(ev));
		ev.queue_id = m->id;
		ev.from = m->m.sender;
		ev.to = g->rcpt[k];
		ev.nexthop = g->nexthop;
		ev.rcpt = x;
		ev.attempt = r;
		ev.level = g->pol.level;
		ev.policy_table =
		    g->from_table ? st_policy_table_spec(q->p.tables[g->table]) : NULL;
		ev.policy_key = g->from_table ? g->key : NULL;
		ev.delay = delay;
		ev.attempt_no = m->attempts;
		switch (x->status) {
		case ST_RELAY_SENT:
			ev.status = "sent";
			m->state[g->idx[k]] = ST_QUEUE_DELIVERED;
			break;
		case ST_RELAY_BOUNCED:
			ev.status = "bounced";
			m->state[g->idx[k]] = ST_QUEUE_BOUNCED;
			break;
		default:
			if (expire) {
				ev.status = "expired";
				m->state[g->idx[k]] = ST_QUEUE_BOUNCED;
			} else {
				ev.status = "deferred";
				ev.next_try = now + backoff(q, m->attempts);
			}
		}
		if (q->p.event)
			q->p.event(q->p.arg, &ev);
	}
	/* what this group settled goes to the file now, not when the slowest group ends: a
	 * crash meanwhile must not send again what was delivered */
	g->mark.data = g;
	if (st_pool_submit(q->loop, &g->mark, mark_work, mark_done) == 0)
		m->marks_pending++;
	if (--m->pending == 0 && m->marks_pending == 0)
		attempt_end(m);
}

/* ---- the start of an attempt: the file read off the loop ---- */

static void read_work(struct st_job *w)
{
	struct qmsg *m = w->data;

	m->rc =
	    st_queue_read(m->q->p.dir, m->id, true, m->q->p.max_size + (1 << 20), &m->m, &m->err);
}

/* The recipient's domain, lower case (the next-hop without a relayhost). */
static void rcpt_domain(const char *rcpt, char *out, size_t size)
{
	const char *at = strrchr(rcpt, '@');
	size_t k;

	snprintf(out, size, "%s", at ? at + 1 : "");
	for (k = 0; out[k]; k++)
		out[k] = (char)tolower((unsigned char)out[k]);
	/* "example.com." is example.com; an address literal "[192.0.2.1]" is a next hop of
	 * its own (that address, port 25, no MX), as Postfix delivers it */
	if (k && out[k - 1] == '.')
		out[k - 1] = '\0';
}

static struct group *group_for(struct qmsg *m, const char *nexthop)
{
	size_t g;
	struct group *x;

	for (g = 0; g < m->n_groups; g++)
		if (strcmp(m->groups[g].nexthop, nexthop) == 0)
			return &m->groups[g];
	x = &m->groups[m->n_groups++];
	memset(x, 0, sizeof(*x));
	x->qm = m;
	snprintf(x->nexthop, sizeof(x->nexthop), "%s", nexthop);
	x->idx = calloc(m->m.n_rcpt, sizeof(*x->idx));
	x->rcpt = calloc(m->m.n_rcpt, sizeof(*x->rcpt));
	return x->idx && x->rcpt ? x : NULL;
}

static void policy_for(struct st_outq *q, struct group *g)
{
	const struct st_policy_entry *e = NULL;
	struct st_error err;

	if (q->p.n_tables)
		e = st_policy_lookup(q->p.tables, q->p.n_tables, g->nexthop, &g->table, g->key,
		                     sizeof(g->key));
	if (q->p.tables_error) {
		memset(&g->pol, 0, sizeof(g->pol));
		g->from_table = e != NULL;
		g->invalid = true;
		snprintf(g->policy_error, sizeof(g->policy_error), "%s", q->p.tables_error);
		return;
	}
	if (!e) {
		memset(&g->pol, 0, sizeof(g->pol));
		g->pol.level = q->p.level;
		g->pol.connection_reuse = -1;
		return;
	}
	g->from_table = true;
	if (st_policy_parse(e->value, &g->pol, &err) < 0) {
		g->invalid = true;
		snprintf(g->policy_error, sizeof(g->policy_error), "%s", err.msg);
		report_error(q, err.msg);
	}
}

static void read_done(struct st_job *w)
{
	struct qmsg *m = w->data;
	struct st_outq *q = m->q;
	size_t i, g;

	if (q->stopping)
		goto end; /* no new attempt after stop: the file is still due at the next start */
	if (m->rc < 0) {
		report_error(q, m->err.msg);
		if (m->rc == ST_E_PARSE)
			m->unreadable = true; /* not ours to guess at: the file stays, named once */
		else
			m->next = time(NULL) + backoff(q, 1); /* EMFILE and the like pass */
		goto end;
	}
	m->attempts++;
	m->state = malloc(m->m.n_rcpt);
	m->groups = calloc(m->m.n_rcpt, sizeof(*m->groups));
	if (!m->state || !m->groups) {
		report_error(q, "out of memory");
		goto end;
	}
	memcpy(m->state, m->m.state, m->m.n_rcpt);
	for (i = 0; i < m->m.n_rcpt; i++) {
		char nexthop[320];
		struct group *x;
		if (m->m.state[i] != ST_QUEUE_WAITING)
			continue;
		if (q->p.relayhost)
			snprintf(nexthop, sizeof(nexthop), "%s", q->p.relayhost);
		else
			rcpt_domain(m->m.rcpt[i], nexthop, sizeof(nexthop));
		x = group_for(m, nexthop);
		if (!x) {
			report_error(q, "out of memory");
			goto end;
		}
		x->idx[x->n] = i;
		x->rcpt[x->n++] = m->m.rcpt[i];
	}
	if (!m->n_groups) {
		attempt_end(m);
		return;
	}
	m->pending = m->n_groups;
	for (g = 0; g < m->n_groups; g++) {
		struct group *x = &m->groups[g];
		struct st_relay_params rp;
		struct st_error err;
		policy_for(q, x);
		memset(&rp, 0, sizeof(rp));
		rp.nexthop = x->nexthop;
		rp.dns = q->p.dns;
		rp.ehlo_name = q->p.ehlo_name;
		rp.sender = m->m.sender;
		rp.rcpt = x->rcpt;
		rp.n_rcpt = x->n;
		rp.data = (const char *)m->m.body.data;
		rp.data_len = m->m.body.len;
		rp.policy = &x->pol;
		rp.policy_error = x->invalid ? x->policy_error : NULL;
		rp.trust = q->p.trust;
		rp.creds = q->p.creds;
		rp.digest = q->p.digest;
		rp.timeout_ms = q->p.timeout_ms;
		rp.self = q->p.self;
		rp.n_self = q->p.n_self;
		rp.relayhost = q->p.relayhost != NULL;
		/* as Postfix: plaintext after a failed handshake only for a message that has
		 * waited the minimal backoff time already */
		rp.plain_fallback = difftime(time(NULL), m->m.arrival) >= (double)q->p.backoff_min;
		if (st_relay_start(q->loop, &rp, &x->res, relay_done, x, &err) < 0) {
			/* a next-hop that cannot be (a recipient domain that is no domain): bounced */
			size_t k;
			x->res.rcpt = calloc(x->n, sizeof(*x->res.rcpt));
			x->res.n_rcpt = x->res.rcpt ? x->n : 0;
			for (k = 0; k < x->res.n_rcpt; k++) {
				x->res.rcpt[k].status = ST_RELAY_BOUNCED;
				snprintf(x->res.rcpt[k].dsn, sizeof(x->res.rcpt[k].dsn), "5.1.2");
				snprintf(x->res.rcpt[k].relay, sizeof(x->res.rcpt[k].relay),
				         "none");
				snprintf(x->res.rcpt[k].reason, sizeof(x->res.rcpt[k].reason), "%s",
				         err.msg);
			}
			relay_done(&x->res, x);
		}
	}
	return;
end:
	release_attempt(m);
	m->busy = false;
	q->busy--;
	schedule(q);
	stop_check(q);
}

/* ---- scheduling ---- */

static void timer_cb(uv_timer_t *t)
{
	schedule(t->data);
}

static void schedule(struct st_outq *q)
{
	time_t now = time(NULL), first = 0;
	size_t i;
	unsigned limit = q->p.concurrency ? q->p.concurrency : 10;

	if (q->stopping)
		return;
	for (i = 0; i < q->n; i++) {
		struct qmsg *m = q->msgs[i];
		if (m->busy || m->unreadable)
			continue;
		if (m->next <= now && q->busy >= limit)
			continue; /* due, and started when an attempt ends (read_done, write_done) */
		if (m->next <= now) {
			m->busy = true;
			q->busy++;
			m->work.data = m;
			if (st_pool_submit(q->loop, &m->work, read_work, read_done) < 0) {
				m->busy = false;
				q->busy--;
				m->next = now + 1;
			}
			continue;
		}
		if (!first || m->next < first)
			first = m->next;
	}
	if (first) {
		long wait = first > now ? (long)(first - now) : 0;
		uv_timer_start(&q->timer, timer_cb, (uint64_t)wait * 1000 + (wait ? 0 : 50), 0);
	} else
		uv_timer_stop(&q->timer);
	/* the timer keeps the loop alive only while something waits for it */
	if (!first)
		uv_unref((uv_handle_t *)&q->timer);
	else
		uv_ref((uv_handle_t *)&q->timer);
}

struct st_outq *st_outq_new(uv_loop_t *loop, const struct st_outq_params *p, struct st_error *err)
{
	struct st_outq *q = calloc(1, sizeof(*q));
	char **ids = NULL;
	size_t n = 0, i;

	if (!q) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	q->loop = loop;
	q->p = *p;
	if (q->p.backoff_max < q->p.backoff_min)
		q->p.backoff_max = q->p.backoff_min;
	if (st_queue_list(p->dir, &ids, &n, err) < 0) {
		free(q);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		struct st_queue_msg m;
		struct st_error e;
		/* the next attempt is the file's time; an unreadable file is named now */
		if (st_queue_read(p->dir, ids[i], false, 0, &m, &e) < 0)
			report_error(q, e.msg);
		else if (!add_msg(q, ids[i], m.next_try))
			report_error(q, "out of memory");
		st_queue_msg_release(&m);
		free(ids[i]);
	}
	free(ids);
	uv_timer_init(loop, &q->timer);
	q->timer.data = q;
	schedule(q);
	return q;
}

void st_outq_add(struct st_outq *q, const char *id)
{
	if (!add_msg(q, id, 0))
		report_error(q, "out of memory");
	schedule(q);
}

size_t st_outq_size(const struct st_outq *q)
{
	return q->n;
}

void st_outq_stop(struct st_outq *q, void (*cb)(void *arg), void *arg)
{
	q->stopping = true;
	q->stop_cb = cb;
	q->stop_arg = arg;
	uv_timer_stop(&q->timer);
	stop_check(q);
}

void st_outq_free(struct st_outq *q)
{
	size_t i;

	if (!q)
		return;
	for (i = 0; i < q->n; i++) {
		release_attempt(q->msgs[i]);
		free(q->msgs[i]);
	}
	free(q->msgs);
	free(q);
}
