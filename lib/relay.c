/* relay.c: a delivery attempt to one next-hop: MX hosts, addresses, TLS under a Postfix policy, replies turned into Postfix's verdicts */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay.h"
#include "session.h"

#define MATCH_MAX 32

const char *st_relay_status_name(enum st_relay_status s)
{
	return s == ST_RELAY_SENT ? "sent" : s == ST_RELAY_BOUNCED ? "bounced" : "deferred";
}

struct relay {
	uv_loop_t *loop;
	struct st_relay_params p;
	struct st_relay_result *r;
	st_relay_done_cb done;
	void *arg;
	uv_timer_t later; /* done is called from the loop, also for what ends at once */

	char host[256]; /* the next-hop's host or domain, without brackets or port */
	unsigned port;
	bool mx;
	struct st_mx hosts[ST_DNS_MX_MAX];
	size_t n_hosts, host_i;
	char addrs[ST_DNS_ADDR_MAX][64];
	size_t n_addrs, addr_i;
	unsigned tried;
	bool plain; /* this address again without TLS (may: the handshake failed) */
	char prio[512];

	/* the recipients still open, and the session's copy of their addresses */
	size_t *open;
	const char **open_rcpt;
	char *mark; /* per open recipient, in a session's end: accepted, bounced, soft */
	size_t n_open;

	struct sockaddr_storage ss;
	struct st_session_params sp;
	struct st_session_result sr;
	/* the server's chain, checked at the handshake */
	struct st_buf chain;
	struct st_x509_item *items[16];
	size_t n_items;
	bool level_met;
	const char *status_word;

	/* the last soft failure: what the open recipients are deferred with at the end */
	char soft_reason[800], soft_dsn[16], soft_relay[320];
	unsigned soft_gen; /* counts soft(): did this session fail? */
	bool last_hard;    /* the last failure is final (a host name not found, 5.4.4): the open
	                      recipients bounce at the end, unless a soft failure comes after */
	bool would_take;   /* probe_only: an address would take mail */
	bool any_addr;     /* a host of the next hop had an address */
};

static void set_rcpt(struct st_relay_rcpt *x, enum st_relay_status s, const char *dsn,
                     const char *relay, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));
static void set_rcpt(struct st_relay_rcpt *x, enum st_relay_status s, const char *dsn,
                     const char *relay, const char *fmt, va_list ap)
{
	x->status = s;
	snprintf(x->dsn, sizeof(x->dsn), "%s", dsn);
	snprintf(x->relay, sizeof(x->relay), "%s", relay);
	vsnprintf(x->reason, sizeof(x->reason), fmt, ap);
}

/* Recipient k of the open ones ends (sent or bounced): out of the open list. */
static void close_one(struct relay *rl, size_t k, enum st_relay_status s, const char *dsn,
                      const char *relay, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void close_one(struct relay *rl, size_t k, enum st_relay_status s, const char *dsn,
                      const char *relay, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_rcpt(&rl->r->rcpt[rl->open[k]], s, dsn, relay, fmt, ap);
	va_end(ap);
	rl->open[k] = (size_t)-1;
}

static void compact(struct relay *rl)
{
	size_t i, j = 0;

	for (i = 0; i < rl->n_open; i++)
		if (rl->open[i] != (size_t)-1)
			rl->open[j++] = rl->open[i];
	rl->n_open = j;
}

static void soft(struct relay *rl, const char *dsn, const char *relay, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void soft(struct relay *rl, const char *dsn, const char *relay, const char *fmt, ...)
{
	va_list ap;

	rl->soft_gen++;
	rl->last_hard = dsn[0] == '5';
	snprintf(rl->soft_dsn, sizeof(rl->soft_dsn), "%s", dsn);
	snprintf(rl->soft_relay, sizeof(rl->soft_relay), "%s", relay);
	va_start(ap, fmt);
	vsnprintf(rl->soft_reason, sizeof(rl->soft_reason), fmt, ap);
	va_end(ap);
}

static void later_closed(uv_handle_t *h)
{
	struct relay *rl = h->data;

	free(rl->open);
	free(rl->open_rcpt);
	free(rl->mark);
	free(rl);
}

static void later_cb(uv_timer_t *t)
{
	struct relay *rl = t->data;

	rl->done(rl->r, rl->arg);
	uv_close((uv_handle_t *)&rl->later, later_closed);
}

/* Every recipient still open is deferred with the last soft failure; done goes out. */
static void finish(struct relay *rl)
{
	size_t i;

	if (rl->would_take)
		for (i = 0; i < rl->n_open; i++) {
			struct st_relay_rcpt *x = &rl->r->rcpt[rl->open[i]];
			const struct st_relay_hop *h = &rl->r->hops[0];
			size_t k;
			for (k = 0; k < rl->r->n_hops; k++)
				if (rl->r->hops[k].status == ST_RELAY_SENT) {
					h = &rl->r->hops[k];
					break;
				}
			x->status = ST_RELAY_SENT;
			snprintf(x->dsn, sizeof(x->dsn), "2.0.0");
			snprintf(x->relay, sizeof(x->relay), "%s", h->relay);
			snprintf(x->reason, sizeof(x->reason), "%s", h->reason);
		}
	if (rl->would_take)
		rl->n_open = 0;
	if (rl->last_hard && rl->p.relayhost) {
		/* Postfix (smtp_connect.c): "relayhost configuration problem", deferred with
		 * 4.3.5, its words and relay kept */
		rl->last_hard = false;
		snprintf(rl->soft_dsn, sizeof(rl->soft_dsn), "4.3.5");
	}
	for (i = 0; i < rl->n_open; i++) {
		struct st_relay_rcpt *x = &rl->r->rcpt[rl->open[i]];
		x->status = rl->last_hard ? ST_RELAY_BOUNCED : ST_RELAY_DEFERRED;
		snprintf(x->dsn, sizeof(x->dsn), "%s", rl->soft_dsn[0] ? rl->soft_dsn : "4.4.1");
		snprintf(x->relay, sizeof(x->relay), "%s",
		         rl->soft_relay[0] ? rl->soft_relay : "none");
		snprintf(x->reason, sizeof(x->reason), "%s",
		         rl->soft_reason[0] ? rl->soft_reason : "delivery temporarily suspended");
	}
	rl->n_open = 0;
	uv_timer_start(&rl->later, later_cb, 0, 0);
}

static void reply_words(const struct st_smtp_reply *rep, char *out, size_t size)
{
	st_relay_reply_words(rep, out, size);
}

void st_relay_reply_words(const struct st_smtp_reply *rep, char *out, size_t size)
{
	size_t i, len;

	snprintf(out, size, "%d", rep->code);
	for (i = 0; i < rep->n_lines; i++) {
		len = strlen(out);
		snprintf(out + len, size - len, " %s", rep->lines[i]);
	}
}

/* The enhanced status code of a reply, or the class's default. */
static void reply_dsn(const struct st_smtp_reply *rep, char *out, size_t size)
{
	if (rep->enhanced[0])
		snprintf(out, size, "%s", rep->enhanced);
	else
		snprintf(out, size, "%d.0.0", rep->code / 100);
}

/* Is a reply final (5xx: bounce), or soft (4xx, or anything else unexpected)? */
static bool is_hard(const struct st_smtp_reply *rep)
{
	return rep->code / 100 == 5;
}

/* ---- the server's certificate against the level ---- */

static void release_chain(struct relay *rl)
{
	size_t k;

	for (k = 0; k < rl->n_items; k++)
		st_x509_item_free(rl->items[k]);
	rl->n_items = 0;
	st_buf_release(&rl->chain);
}

static const char *cur_host(const struct relay *rl)
{
	return rl->hosts[rl->host_i].host;
}

static int tls_check(void *arg, struct st_tls *tls, char *why, size_t size)
{
	struct relay *rl = arg;
	const struct st_policy *pol = rl->p.policy;
	enum st_level lv = pol->level;
	char patterns[MATCH_MAX][256];
	const char *ptrs[MATCH_MAX];
	struct st_error e;
	int n = 0, k;

	release_chain(rl);
	rl->level_met = lv < ST_LEVEL_FINGERPRINT;
	rl->n_items = st_tls_peer_items(tls, &rl->chain, rl->items, 16);
	rl->status_word = rl->n_items ? "Untrusted" : "Anonymous";
	if (lv == ST_LEVEL_VERIFY || lv == ST_LEVEL_SECURE)
		n = st_match_expand(pol->match[0]           ? pol->match
		                    : lv == ST_LEVEL_VERIFY ? "hostname"
		                                            : "nexthop:dot-nexthop",
		                    cur_host(rl), rl->host, patterns, MATCH_MAX, &e);
	if (n < 0)
		n = 0;
	for (k = 0; k < n; k++)
		ptrs[k] = patterns[k];
	if (rl->n_items && rl->p.trust) {
		struct st_verify_params vp;
		struct st_verify_result vr;
		memset(&vp, 0, sizeof(vp));
		vp.trust = rl->p.trust;
		vp.purpose = ST_PURPOSE_SERVER;
		vp.match = ptrs;
		vp.n_match = (lv == ST_LEVEL_VERIFY || lv == ST_LEVEL_SECURE) ? (size_t)n : 0;
		vp.at = time(NULL);
		vp.digest = rl->p.digest;
		if (st_verify_chain(&vp, rl->items, rl->n_items, NULL, 0, &vr, &e) == 0) {
			rl->status_word = vr.postfix_status;
			if (lv == ST_LEVEL_VERIFY || lv == ST_LEVEL_SECURE)
				rl->level_met = strcmp(vr.postfix_status, "Verified") == 0;
			st_verify_result_release(&vr);
		}
	}
	if (lv == ST_LEVEL_FINGERPRINT && rl->n_items) {
		rl->level_met = st_fingerprint_list_matches(rl->items[0], rl->p.digest, pol->match);
		rl->status_word = rl->level_met ? "Verified" : "Untrusted";
	}
	if (rl->level_met)
		return 0;
	snprintf(why, size, "Server certificate not verified");
	return 1;
}

/* ---- sessions ---- */

static void next_addr(struct relay *rl);
static void next_host(struct relay *rl);

static const char *stage_words(enum st_smtp_stage s)
{
	switch (s) {
	case ST_SMTP_STAGE_BANNER:
		return "receiving the initial server greeting";
	case ST_SMTP_STAGE_EHLO:
	case ST_SMTP_STAGE_EHLO_TLS:
		return "performing the EHLO handshake";
	case ST_SMTP_STAGE_STARTTLS:
	case ST_SMTP_STAGE_TLS:
		return "performing the STARTTLS handshake";
	case ST_SMTP_STAGE_MAIL:
		return "sending MAIL FROM";
	case ST_SMTP_STAGE_RCPT:
		return "sending RCPT TO";
	case ST_SMTP_STAGE_DATA:
		return "sending message body";
	default:
		return "sending QUIT";
	}
}

/* Postfix's words for a connection that dropped or went quiet: "lost connection with" or
 * "conversation with ... timed out", and what it was doing. */
static void lost_words(const struct st_session_result *res, const char *host, const char *addr,
                       enum st_smtp_stage stage, char *out, size_t size)
{
	snprintf(out, size, "%s with %s[%s] %s %s",
	         res->timed_out ? "conversation" : "lost connection", host, addr,
	         res->timed_out ? "timed out while" : "while", stage_words(stage));
}

static void lost(struct relay *rl, const struct st_session_result *res, const char *relay,
                 enum st_smtp_stage stage)
{
	char words[600];

	lost_words(res, cur_host(rl), rl->addrs[rl->addr_i], stage, words, sizeof(words));
	soft(rl, "4.4.2", relay, "%s", words);
}

bool st_relay_early_failure(const struct st_session_result *res, const char *host, const char *addr,
                            unsigned port, char *dsn, size_t dsn_size, char *reason, size_t size)
{
	const struct st_smtp_result *s = res->smtp ? st_smtp_client_result(res->smtp) : NULL;
	char words[700];

	if (!res->connected) {
		const char *why = res->error.msg;
		char cap[ST_ERROR_MAX];
		if (res->connect_errno) {
			why = strerror(res->connect_errno); /* as Postfix's %m */
		} else if (strncmp(why, "cannot connect: ", 16) == 0)
			why += 16;
		snprintf(cap, sizeof(cap), "%s", why);
		cap[0] = (char)toupper((unsigned char)cap[0]);
		snprintf(dsn, dsn_size, "4.4.1");
		snprintf(reason, size, "connect to %s[%s]:%u: %s", host, addr, port, cap);
		return true;
	}
	if (!s || !s->banner.code) {
		if (res->tls && !res->tls_done)
			return false; /* implicit TLS: the handshake failed, not the greeting */
		snprintf(dsn, dsn_size, "4.4.2");
		lost_words(res, host, addr, ST_SMTP_STAGE_BANNER, reason, size);
		return true;
	}
	if (s->banner.code / 100 != 2) {
		/* a 5xx greeting too: Postfix skips such a server (smtp_skip_5xx_greeting) */
		reply_words(&s->banner, words, sizeof(words));
		reply_dsn(&s->banner, dsn, dsn_size);
		dsn[0] = '4';
		snprintf(reason, size, "host %s[%s] refused to talk to me: %s", host, addr, words);
		return true;
	}
	if (res->tls)
		return false; /* TLS from the first byte: its EHLO is judged with the handshake */
	if (!s->ehlo.code && s->stage == ST_SMTP_STAGE_EHLO) {
		/* greeted, then closed or silent at EHLO */
		snprintf(dsn, dsn_size, "4.4.2");
		lost_words(res, host, addr, ST_SMTP_STAGE_EHLO, reason, size);
		return true;
	}
	if (s->ehlo.code && s->ehlo.code / 100 != 2) {
		/* Postfix: a 421 to EHLO, or HELO (its fallback from EHLO) refused */
		reply_words(&s->ehlo, words, sizeof(words));
		reply_dsn(&s->ehlo, dsn, dsn_size);
		dsn[0] = '4';
		snprintf(reason, size, "host %s[%s] refused to talk to me: %s", host, addr, words);
		return true;
	}
	return false;
}

/* probe_only: the MAIL (and RCPT) replies decide as in a delivery; no message goes. A
 * 5xx is written into bounce (hop's words); it bounces the recipients unless an earlier
 * address would take the mail (Postfix would have delivered there). True when settled. */
static bool probe_replies(struct relay *rl, const struct st_session_result *res,
                          const struct st_smtp_result *s, const char *relay, char *bounce,
                          size_t size, char *bounce_dsn, size_t dsn_size)
{
	const struct st_smtp_reply *rr = NULL;
	const char *cmd = NULL, *h = cur_host(rl), *a = rl->addrs[rl->addr_i];
	char words[700], dsn[16];
	size_t k;

	if (!s->mail.code) {
		lost(rl, res, relay, s->stage);
		return false;
	}
	if (s->mail.code / 100 != 2) {
		rr = &s->mail;
		cmd = "MAIL FROM";
	} else if (rl->p.probe_rcpt) {
		for (k = 0; k < s->n_rcpt && !rr; k++)
			if (s->rcpt[k].code / 100 != 2) {
				rr = &s->rcpt[k];
				cmd = "RCPT TO";
			}
		if (!rr && s->n_rcpt < rl->n_open) {
			lost(rl, res, relay, ST_SMTP_STAGE_RCPT);
			return false;
		}
	}
	if (!rr) {
		rl->would_take = true;
		return false;
	}
	reply_words(rr, words, sizeof(words));
	reply_dsn(rr, dsn, sizeof(dsn));
	if (!is_hard(rr)) {
		soft(rl, dsn, relay, "host %s[%s] said: %s (in reply to %s command)", h, a, words,
		     cmd);
		return false;
	}
	snprintf(bounce, size, "host %s[%s] said: %s (in reply to %s command)", h, a, words, cmd);
	snprintf(bounce_dsn, dsn_size, "%s", dsn);
	if (rl->would_take)
		return false;
	for (k = 0; k < rl->n_open; k++)
		close_one(rl, k, ST_RELAY_BOUNCED, dsn, relay, "%s", bounce);
	compact(rl);
	return true;
}

static void session_done(struct st_session_result *res, void *arg)
{
	struct relay *rl = arg;
	const struct st_smtp_result *s = res->smtp ? st_smtp_client_result(res->smtp) : NULL;
	const char *h = cur_host(rl), *a = rl->addrs[rl->addr_i];
	enum st_level lv = rl->p.policy->level;
	char relay[320], words[700], dsn[16], bounce[800] = "", bounce_dsn[16] = "";
	bool again = false, settled = false;
	size_t k, accepted = 0;
	unsigned gen = rl->soft_gen;
	struct st_relay_hop hop;

	snprintf(relay, sizeof(relay), "%s[%s]:%u", h, a, rl->port);
	if (res->tls_done) {
		snprintf(rl->r->tls_status, sizeof(rl->r->tls_status), "%s",
		         rl->status_word ? rl->status_word : "Anonymous");
		snprintf(rl->r->tls_version, sizeof(rl->r->tls_version), "%s",
		         res->tls_summary.version);
		snprintf(rl->r->tls_cipher, sizeof(rl->r->tls_cipher), "%s",
		         res->tls_summary.cipher);
	}
	if (st_relay_early_failure(res, h, a, rl->port, dsn, sizeof(dsn), words, sizeof(words))) {
		soft(rl, dsn, relay, "%s", words);
	} else if (rl->p.wrappermode && !res->tls_done) {
		soft(rl, "4.7.5", relay, "Cannot start TLS: handshake failure");
	} else if ((s->ehlo.code && s->ehlo.code / 100 != 2) ||
	           (s->ehlo_tls.code && s->ehlo_tls.code / 100 != 2)) {
		/* after TLS (a plaintext EHLO refused is an early failure above) */
		/* refused at EHLO (after TLS too: a server that wants a client certificate) */
		const struct st_smtp_reply *rr = s->ehlo_tls.code ? &s->ehlo_tls : &s->ehlo;
		reply_words(rr, words, sizeof(words));
		reply_dsn(rr, dsn, sizeof(dsn));
		dsn[0] = '4';
		soft(rl, dsn, relay, "host %s[%s] said: %s (in reply to %s command)", h, a, words,
		     s->used_helo ? "HELO" : "EHLO");
	} else if (!rl->plain && !rl->p.wrappermode && lv >= ST_LEVEL_ENCRYPT &&
	           s->ehlo.code == 250 && !s->caps.starttls) {
		soft(rl, "4.7.4", relay, "TLS is required, but was not offered by host %s[%s]", h,
		     a);
	} else if (!rl->plain && s->starttls.code && s->starttls.code != 220 &&
	           lv >= ST_LEVEL_ENCRYPT) {
		reply_words(&s->starttls, words, sizeof(words));
		soft(rl, "4.7.4", relay,
		     "TLS is required, but host %s[%s] refused to start TLS: %s", h, a, words);
	} else if (!rl->plain && s->starttls.code == 220 && !res->tls_done) {
		if (lv == ST_LEVEL_MAY && rl->p.plain_fallback)
			again = true; /* the same address again without TLS */
		else
			soft(rl, "4.7.5", relay, "Cannot start TLS: handshake failure");
	} else if (s->held) {
		soft(rl, "4.7.5", relay, "Server certificate not verified");
	} else if (rl->p.probe_only) {
		settled = probe_replies(rl, res, s, relay, bounce, sizeof(bounce), bounce_dsn,
		                        sizeof(bounce_dsn));
	} else if (s->mail.code && s->mail.code / 100 != 2) {
		reply_words(&s->mail, words, sizeof(words));
		reply_dsn(&s->mail, dsn, sizeof(dsn));
		if (is_hard(&s->mail)) {
			for (k = 0; k < rl->n_open; k++)
				close_one(rl, k, ST_RELAY_BOUNCED, dsn, relay,
				          "host %s[%s] said: %s (in reply to MAIL FROM command)", h,
				          a, words);
			compact(rl); /* finish() reads only the open ones */
			settled = true;
		} else
			soft(rl, dsn, relay, "host %s[%s] said: %s (in reply to MAIL FROM command)",
			     h, a, words);
	} else if (s->mail.code) {
		/* each recipient by its own reply; the message for those accepted */
		memset(rl->mark, 's', rl->n_open);
		for (k = 0; k < rl->n_open && k < s->n_rcpt; k++) {
			const struct st_smtp_reply *rr = &s->rcpt[k];
			if (rr->code / 100 == 2) {
				rl->mark[k] = 'a';
				accepted++;
				continue;
			}
			reply_words(rr, words, sizeof(words));
			reply_dsn(rr, dsn, sizeof(dsn));
			if (is_hard(rr)) {
				rl->mark[k] = 'b';
				close_one(rl, k, ST_RELAY_BOUNCED, dsn, relay,
				          "host %s[%s] said: %s (in reply to RCPT TO command)", h,
				          a, words);
			} else
				soft(rl, dsn, relay,
				     "host %s[%s] said: %s (in reply to RCPT TO command)", h, a,
				     words);
		}
		if (s->n_rcpt < rl->n_open)
			lost(rl, res, relay, ST_SMTP_STAGE_RCPT);
		if (accepted) {
			const struct st_smtp_reply *end =
			    s->data.code == 354 ? &s->data_end : &s->data;
			const char *cmd = s->data.code == 354 ? "end of DATA" : "DATA";
			/* only the reply to the end of the message delivers it: anything but 354 to
			 * DATA (a 250 too: no message went) fails it, soft unless 5xx */
			bool delivered = s->data.code == 354 && end->code / 100 == 2;
			bool hard = is_hard(end);
			words[0] = '\0';
			if (end->code)
				reply_words(end, words, sizeof(words));
			reply_dsn(end, dsn, sizeof(dsn));
			if (!delivered && !hard && dsn[0] != '4')
				dsn[0] = '4';
			for (k = 0; k < rl->n_open; k++) {
				if (rl->mark[k] != 'a')
					continue;
				if (delivered)
					close_one(rl, k, ST_RELAY_SENT, "2.0.0", relay, "%s",
					          words);
				else if (hard)
					close_one(rl, k, ST_RELAY_BOUNCED, dsn, relay,
					          "host %s[%s] said: %s (in reply to %s command)",
					          h, a, words, cmd);
			}
			if (end->code && !delivered && !hard)
				soft(rl, dsn, relay,
				     "host %s[%s] said: %s (in reply to %s command)", h, a, words,
				     cmd);
			else if (!end->code)
				soft(rl, "4.4.2", relay, "lost connection with %s[%s] while %s", h,
				     a,
				     s->data.code == 354 ? "sending end of data -- message may be "
				                           "sent more than once"
				                         : "sending DATA");
		}
		compact(rl);
		settled = rl->n_open == 0;
	} else {
		/* the session ended before MAIL: a dropped connection or a timeout */
		lost(rl, res, relay, s->stage);
	}
	/* the session as one hop of the attempt */
	memset(&hop, 0, sizeof(hop));
	snprintf(hop.host, sizeof(hop.host), "%s", h);
	snprintf(hop.addr, sizeof(hop.addr), "%s", a);
	hop.port = rl->port;
	snprintf(hop.relay, sizeof(hop.relay), "%s", relay);
	hop.plain = rl->plain;
	hop.ms = res->total_ms;
	if (res->tls_done) {
		snprintf(hop.tls_status, sizeof(hop.tls_status), "%s",
		         rl->status_word ? rl->status_word : "Anonymous");
		snprintf(hop.tls_version, sizeof(hop.tls_version), "%s", res->tls_summary.version);
		snprintf(hop.tls_cipher, sizeof(hop.tls_cipher), "%s", res->tls_summary.cipher);
	}
	if (again) {
		hop.status = ST_RELAY_DEFERRED;
		snprintf(hop.dsn, sizeof(hop.dsn), "4.7.5");
		snprintf(hop.reason, sizeof(hop.reason),
		         "Cannot start TLS: handshake failure (tried again without TLS)");
	} else if (bounce[0]) {
		hop.status = ST_RELAY_BOUNCED;
		snprintf(hop.dsn, sizeof(hop.dsn), "%s", bounce_dsn);
		snprintf(hop.reason, sizeof(hop.reason), "%s", bounce);
	} else if (rl->soft_gen != gen) {
		hop.status = ST_RELAY_DEFERRED;
		snprintf(hop.dsn, sizeof(hop.dsn), "%s", rl->soft_dsn);
		snprintf(hop.reason, sizeof(hop.reason), "%s", rl->soft_reason);
	} else {
		/* sent, or bounced: the first recipient's word for it */
		const struct st_relay_rcpt *x = NULL;
		for (k = 0; k < rl->r->n_rcpt; k++)
			if (!strcmp(rl->r->rcpt[k].relay, relay)) {
				x = &rl->r->rcpt[k];
				break;
			}
		hop.status = x ? x->status : ST_RELAY_SENT;
		snprintf(hop.dsn, sizeof(hop.dsn), "%s", x ? x->dsn : "2.0.0");
		snprintf(hop.reason, sizeof(hop.reason), "%s",
		         x               ? x->reason
		         : res->tls_done ? "would be delivered with TLS"
		                         : "would be delivered without TLS");
	}
	{
		struct st_relay_hop *x = realloc(rl->r->hops, (rl->r->n_hops + 1) * sizeof(*x));
		if (x) {
			rl->r->hops = x;
			rl->r->hops[rl->r->n_hops++] = hop;
		}
	}
	st_session_result_release(res);
	release_chain(rl);
	if (settled) {
		finish(rl);
		return;
	}
	if (again) {
		rl->plain = true;
		rl->tried--; /* the same address */
	} else {
		rl->plain = false;
		rl->addr_i++;
	}
	next_addr(rl);
}

static void start_session(struct relay *rl)
{
	struct st_session_params *sp = &rl->sp;
	const struct st_policy *pol = rl->p.policy;
	const char *a = rl->addrs[rl->addr_i];
	struct sockaddr_in *v4 = (struct sockaddr_in *)&rl->ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&rl->ss;
	size_t k;

	memset(&rl->ss, 0, sizeof(rl->ss));
	if (inet_pton(AF_INET, a, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)rl->port);
	} else if (inet_pton(AF_INET6, a, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)rl->port);
	} else {
		soft(rl, "4.4.1", "none", "bad address '%s' for %s", a, cur_host(rl));
		rl->addr_i++;
		next_addr(rl);
		return;
	}
	{
		char me[128];
		snprintf(me, sizeof(me), "%s:%u", a, rl->port);
		for (k = 0; k < rl->p.n_self; k++)
			if (!strcmp(rl->p.self[k], me)) {
				/* no session with ourselves: the mail would come back forever */
				soft(rl, "5.4.6", "none", "mail for %s loops back to myself",
				     rl->p.nexthop);
				finish(rl);
				return;
			}
	}
	for (k = 0; k < rl->n_open; k++)
		rl->open_rcpt[k] = rl->p.rcpt[rl->open[k]];
	memset(sp, 0, sizeof(*sp));
	sp->addr = (struct sockaddr *)&rl->ss;
	sp->timeout_ms = rl->p.timeout_ms > 0 ? rl->p.timeout_ms : 30000;
	sp->smtp.mode = rl->p.wrappermode                          ? ST_SMTP_IMPLICIT
	                : pol->level == ST_LEVEL_NONE || rl->plain ? ST_SMTP_PLAIN
	                                                           : ST_SMTP_STARTTLS;
	sp->smtp.ehlo_name = rl->p.ehlo_name;
	sp->smtp.tls_optional = pol->level <= ST_LEVEL_MAY;
	sp->smtp.mail_from = rl->p.sender;
	sp->smtp.rcpt = rl->open_rcpt;
	sp->smtp.n_rcpt = rl->p.probe_only && !rl->p.probe_rcpt ? 0 : rl->n_open;
	/* probe_only: no message, RSET after the recipients */
	sp->smtp.data = rl->p.probe_only ? NULL : rl->p.data ? rl->p.data : "";
	sp->smtp.data_len = rl->p.data_len;
	sp->tls.priority = rl->prio[0] ? rl->prio : NULL;
	if (pol->servername[0])
		sp->tls.sni = strcmp(pol->servername, "hostname") == 0  ? cur_host(rl)
		              : strcmp(pol->servername, "nexthop") == 0 ? rl->host
		                                                        : pol->servername;
	sp->tls.creds = rl->p.creds;
	sp->tls_check = tls_check;
	sp->tls_check_arg = rl;
	rl->status_word = NULL;
	rl->tried++;
	rl->r->sessions++;
	if (st_session_start(rl->loop, sp, &rl->sr, session_done, rl) != 0) {
		soft(rl, "4.3.0", "none", "%s", rl->sr.error.msg);
		st_session_result_release(&rl->sr);
		finish(rl);
	}
}

static void next_addr(struct relay *rl)
{
	if (rl->tried >= rl->p.max_addrs) {
		finish(rl);
		return;
	}
	if (rl->addr_i >= rl->n_addrs) {
		rl->host_i++;
		next_host(rl);
		return;
	}
	start_session(rl);
}

static void addrs_answer(void *arg, int rc, char (*addrs)[64], size_t n, const struct st_error *err)
{
	struct relay *rl = arg;
	size_t k;

	if (rc < 0 || !n) {
		char words[600];
		bool nx = st_relay_name_words(cur_host(rl), false, err, words, sizeof(words));
		/* Postfix (smtp_addr_list): a host without address counts only while no other
		 * host had one; a name not found is final (5.4.4), unless a soft failure came
		 * before (4.4.4) */
		if (!rl->any_addr)
			soft(rl, nx && rl->soft_dsn[0] != '4' ? "5.4.4" : "4.4.4", "none", "%s",
			     words);
		rl->host_i++;
		next_host(rl);
		return;
	}
	rl->any_addr = true;
	for (k = 0; k < n && k < ST_DNS_ADDR_MAX; k++)
		snprintf(rl->addrs[k], sizeof(rl->addrs[k]), "%s", addrs[k]);
	rl->n_addrs = k;
	rl->addr_i = 0;
	next_addr(rl);
}

bool st_relay_name_words(const char *name, bool mx, const struct st_error *err, char *reason,
                         size_t size)
{
	int why = err && err->cls == ST_ERR_DNS ? err->sub : ST_DNS_TRY_AGAIN;

	switch (why) {
	case ST_DNS_NXDOMAIN:
	case ST_DNS_NODATA:
		snprintf(reason, size,
		         "Host or domain name not found. Name service error for name=%s type=A: %s",
		         name,
		         why == ST_DNS_NXDOMAIN
		             ? "Host not found"
		             : "Host found but no data record of requested type");
		return true;
	case ST_DNS_EAI_NONAME:
	case ST_DNS_EAI_NODATA:
		/* smtp_host_lookup = native: getaddrinfo's words */
		snprintf(reason, size, "unable to look up host %s: %s", name,
		         gai_strerror(why == ST_DNS_EAI_NONAME ? EAI_NONAME : EAI_NODATA));
		return true;
	default:
		snprintf(reason, size,
		         "Host or domain name not found. Name service error for name=%s type=%s: "
		         "Host not found, try again",
		         name, mx ? "MX" : "A");
		return false;
	}
}

static bool is_numeric(const char *host)
{
	unsigned char b[16];

	return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

static void next_host(struct relay *rl)
{
	struct st_error err;
	const char *h;

	if (rl->host_i >= rl->n_hosts) {
		finish(rl);
		return;
	}
	h = cur_host(rl);
	if (is_numeric(h)) {
		rl->any_addr = true;
		snprintf(rl->addrs[0], sizeof(rl->addrs[0]), "%s", h);
		rl->n_addrs = 1;
		rl->addr_i = 0;
		next_addr(rl);
		return;
	}
	if (!rl->p.dns || st_dns_addrs_async(rl->p.dns, h, rl->port, addrs_answer, rl, &err) < 0) {
		soft(rl, "4.4.4", "none", "cannot look up '%s': %s", h,
		     rl->p.dns ? err.msg : "no resolver");
		rl->host_i++;
		next_host(rl);
	}
}

static void mx_answer(void *arg, int rc, const struct st_mx *mx, size_t n, bool null_mx,
                      const struct st_error *err)
{
	struct relay *rl = arg;
	size_t k;

	if (null_mx) {
		soft(rl, "5.1.0", "none", "Domain %s does not accept mail (nullMX)", rl->host);
		finish(rl);
		return;
	}
	if (rc < 0 && !(err->cls == ST_ERR_DNS && err->sub == ST_DNS_NXDOMAIN)) {
		char words[600];
		st_relay_name_words(rl->host, true, err, words, sizeof(words));
		soft(rl, "4.4.3", "none", "%s", words);
		finish(rl);
		return;
	}
	if (rc < 0 || n == 0) {
		/* no MX (NXDOMAIN too, as Postfix's smtp_addr.c): the domain as a host, by
		 * smtp_host_lookup and --resolve */
		snprintf(rl->hosts[0].host, sizeof(rl->hosts[0].host), "%s", rl->host);
		rl->n_hosts = 1;
	} else {
		for (k = 0; k < n && k < ST_DNS_MX_MAX; k++)
			rl->hosts[k] = mx[k];
		rl->n_hosts = k;
	}
	for (k = 0; k < rl->n_hosts && k < 16; k++)
		snprintf(rl->r->hosts[k], sizeof(rl->r->hosts[k]), "%s", rl->hosts[k].host);
	rl->r->n_hosts = k;
	rl->host_i = 0;
	next_host(rl);
}

/* "[host]:port", "[host]", "domain:port", "domain" */
static int parse_nexthop(struct relay *rl, const char *nh, struct st_error *err)
{
	const char *end;
	size_t len;

	rl->port = 25;
	rl->mx = nh[0] != '[';
	if (!rl->mx) {
		end = strchr(nh, ']');
		if (!end)
			goto bad;
		len = (size_t)(end - nh - 1);
		nh++;
		end++;
	} else {
		end = strrchr(nh, ':');
		if (end && strchr(nh, ':') != end)
			goto bad; /* an IPv6 address needs its brackets */
		len = end ? (size_t)(end - nh) : strlen(nh);
		if (!end)
			end = nh + len;
	}
	if (!len || len >= sizeof(rl->host))
		goto bad;
	memcpy(rl->host, nh, len);
	rl->host[len] = '\0';
	if (*end == ':') {
		char *e;
		unsigned long port = strtoul(end + 1, &e, 10);
		if (!end[1] || *e || port == 0 || port > 65535)
			goto bad;
		rl->port = (unsigned)port;
	} else if (*end)
		goto bad;
	return 0;
bad:
	st_error_set(err, ST_ERR_USAGE,
	             "'%s' is not a next-hop ([host]:port, [host], domain:port or "
	             "domain)",
	             nh);
	return ST_E_PARSE;
}

int st_relay_start(uv_loop_t *loop, const struct st_relay_params *p, struct st_relay_result *r,
                   st_relay_done_cb done, void *arg, struct st_error *err)
{
	struct relay *rl = calloc(1, sizeof(*rl));
	size_t k;

	memset(r, 0, sizeof(*r));
	if (!rl || !(r->rcpt = calloc(p->n_rcpt ? p->n_rcpt : 1, sizeof(*r->rcpt))) ||
	    !(rl->open = calloc(p->n_rcpt ? p->n_rcpt : 1, sizeof(*rl->open))) ||
	    !(rl->open_rcpt = calloc(p->n_rcpt ? p->n_rcpt : 1, sizeof(*rl->open_rcpt))) ||
	    !(rl->mark = calloc(p->n_rcpt ? p->n_rcpt : 1, 1))) {
		if (rl) {
			free(rl->open);
			free(rl->open_rcpt);
			free(rl);
		}
		free(r->rcpt);
		r->rcpt = NULL;
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return ST_E_NOMEM;
	}
	r->n_rcpt = p->n_rcpt;
	rl->loop = loop;
	rl->p = *p;
	if (!rl->p.max_addrs)
		rl->p.max_addrs = 5;
	rl->r = r;
	rl->done = done;
	rl->arg = arg;
	for (k = 0; k < p->n_rcpt; k++)
		rl->open[k] = k;
	rl->n_open = p->n_rcpt;
	st_buf_init(&rl->chain, 1 << 20);
	if (parse_nexthop(rl, p->nexthop, err) < 0) {
		free(rl->open);
		free(rl->open_rcpt);
		free(rl->mark);
		free(rl);
		st_relay_result_release(r);
		return ST_E_PARSE;
	}
	uv_timer_init(loop, &rl->later);
	rl->later.data = rl;
	if (p->policy_error) {
		soft(rl, "4.7.5", "none", "client TLS configuration problem");
		finish(rl);
		return 0;
	}
	if (p->policy->level == ST_LEVEL_DANE || p->policy->level == ST_LEVEL_DANE_ONLY) {
		/* never delivered on a check not made: deferred, and said why */
		soft(rl, "4.7.5", "none", ST_RELAY_DANE_UNSUPPORTED);
		finish(rl);
		return 0;
	}
	if (p->policy->level > ST_LEVEL_NONE) {
		struct st_error e;
		int set = st_tls_protocols_parse(p->policy->protocols, &e);
		if (set < 0 ||
		    st_tls_priority(set, p->policy->ciphers[0] ? p->policy->ciphers : NULL,
		                    rl->prio, sizeof(rl->prio), &e) < 0) {
			soft(rl, "4.7.5", "none", "client TLS configuration problem");
			finish(rl);
			return 0;
		}
	}
	snprintf(r->host, sizeof(r->host), "%s", rl->host);
	r->port = rl->port;
	r->mx = rl->mx;
	if (!rl->mx || is_numeric(rl->host)) {
		snprintf(rl->hosts[0].host, sizeof(rl->hosts[0].host), "%s", rl->host);
		rl->n_hosts = 1;
		snprintf(r->hosts[0], sizeof(r->hosts[0]), "%s", rl->host);
		r->n_hosts = 1;
		next_host(rl);
		return 0;
	}
	if (!p->dns || st_dns_mx_async(p->dns, rl->host, mx_answer, rl, err) < 0) {
		soft(rl, "4.4.3", "none", "cannot look up the MX hosts of '%s': %s", rl->host,
		     p->dns ? err->msg : "no resolver");
		finish(rl);
	}
	return 0;
}

void st_relay_result_release(struct st_relay_result *r)
{
	free(r->rcpt);
	free(r->hops);
	memset(r, 0, sizeof(*r));
}
