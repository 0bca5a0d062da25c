/* tls.c: TLS sessions over byte buffers (sans I/O), GnuTLS priorities from Postfix settings, session summaries */
#include "config.h"

#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "x509-gnutls.h"

/* Ciphertext held per direction: a few TLS records, and a whole handshake flight. */
#define TLS_BUF_MAX (1024 * 1024)

static const struct {
	const char *name;
	enum st_tls_proto bit;
	const char *gnutls; /* NULL: this GnuTLS cannot speak it */
} protos[] = {
    {"SSLv2", ST_TLS_SSLV2, NULL},
    {"SSLv3", ST_TLS_SSLV3, "VERS-SSL3.0"},
    {"TLSv1", ST_TLS_TLSV1, "VERS-TLS1.0"},
    {"TLSv1.1", ST_TLS_TLSV1_1, "VERS-TLS1.1"},
    {"TLSv1.2", ST_TLS_TLSV1_2, "VERS-TLS1.2"},
    {"TLSv1.3", ST_TLS_TLSV1_3, "VERS-TLS1.3"},
};
#define N_PROTOS (sizeof(protos) / sizeof(protos[0]))

const char *st_tls_proto_name(enum st_tls_proto p)
{
	size_t i;

	for (i = 0; i < N_PROTOS; i++)
		if (protos[i].bit == p)
			return protos[i].name;
	return "unknown";
}

static int proto_index(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < N_PROTOS; i++)
		if (strlen(protos[i].name) == len && strncasecmp(protos[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

int st_tls_protocols_parse(const char *list, struct st_error *err)
{
	int include = 0, exclude = 0, lo = 0, hi = (int)N_PROTOS - 1, set = 0, i;
	const char *p = list ? list : "";
	char word[64];

	while (*p) {
		size_t n;
		const char *w;
		int k;

		while (*p && strchr(" \t,:", *p))
			p++;
		n = strcspn(p, " \t,:");
		if (n == 0)
			break;
		snprintf(word, sizeof(word), "%.*s", (int)(n < 63 ? n : 63), p);
		st_sanitize(word);
		w = p;
		p += n;
		if (n >= 2 && (strncmp(w, ">=", 2) == 0 || strncmp(w, "<=", 2) == 0)) {
			k = proto_index(w + 2, n - 2);
			if (k < 0)
				goto bad;
			if (w[0] == '>')
				lo = k;
			else
				hi = k;
		} else if (w[0] == '!') {
			k = proto_index(w + 1, n - 1);
			if (k < 0)
				goto bad;
			exclude |= protos[k].bit;
		} else {
			k = proto_index(w, n);
			if (k < 0)
				goto bad;
			include |= protos[k].bit;
		}
		continue;
	bad:
		st_error_set(err, ST_ERR_USAGE,
		             "'%s' is not a TLS protocol (SSLv2, SSLv3, TLSv1, "
		             "TLSv1.1, TLSv1.2, TLSv1.3, with !, >= or <=)",
		             word);
		return -1;
	}
	for (i = lo; i <= hi; i++)
		set |= protos[i].bit;
	if (include)
		set &= include;
	set &= ~exclude;
	if (!set) {
		st_error_set(err, ST_ERR_USAGE, "the protocol list '%.100s' leaves no protocol",
		             list);
		return -1;
	}
	return set;
}

int st_tls_priority(int protocols, const char *grade, char *out, size_t size, struct st_error *err)
{
	struct st_buf b;
	size_t i;
	int n = 0, rc;
	const char *base = "NORMAL";
	gnutls_priority_t prio;
	const char *where = NULL;

	if (grade && *grade && strcasecmp(grade, "high") && strcasecmp(grade, "medium") &&
	    strcasecmp(grade, "low") && strcasecmp(grade, "export") && strcasecmp(grade, "null")) {
		st_error_set(err, ST_ERR_USAGE,
		             "'%.60s' is not a cipher grade (high, medium, null)", grade);
		return -1;
	}
	/* GnuTLS's NORMAL has no cipher below 128 bits left: Postfix's high and
	 * medium grades both come out as it; null adds the NULL cipher */
	st_buf_init(&b, 1024);
	st_buf_addf(&b, "%s:-VERS-ALL", base);
	for (i = 0; i < N_PROTOS; i++)
		if ((protocols & protos[i].bit) && protos[i].gnutls) {
			/* only the versions this GnuTLS build accepts */
			char one[128];
			snprintf(one, sizeof(one), "NORMAL:-VERS-ALL:+%s", protos[i].gnutls);
			if (gnutls_priority_init(&prio, one, NULL) < 0)
				continue;
			gnutls_priority_deinit(prio);
			st_buf_addf(&b, ":+%s", protos[i].gnutls);
			n++;
		}
	if (grade && strcasecmp(grade, "null") == 0)
		st_buf_addf(&b, ":+NULL");
	if (n == 0) {
		st_error_set(err, ST_ERR_USAGE, "no TLS protocol left that GnuTLS can speak");
		st_buf_release(&b);
		return -1;
	}
	rc = gnutls_priority_init(&prio, st_buf_str(&b), &where);
	if (rc < 0) {
		st_error_set(err, ST_ERR_INTERNAL, "GnuTLS refuses the priority '%s'",
		             st_buf_str(&b));
		st_buf_release(&b);
		return -1;
	}
	gnutls_priority_deinit(prio);
	snprintf(out, size, "%s", st_buf_str(&b));
	st_buf_release(&b);
	return 0;
}

struct st_tls_creds {
	gnutls_certificate_credentials_t cred;
};

struct st_tls {
	gnutls_session_t session;
	gnutls_certificate_credentials_t cred; /* owned, unless shared (p->creds) */
	bool shared_cred;
	struct st_buf in; /* ciphertext from the peer, not yet read by GnuTLS */
	size_t in_off;
	struct st_buf out; /* ciphertext for the peer */
	size_t out_off;
	bool server;
	bool cert_requested;
};

static ssize_t push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
	struct st_tls *t = ptr;

	if (st_buf_add(&t->out, data, len)) {
		gnutls_transport_set_errno(t->session, ENOMEM);
		return -1;
	}
	return (ssize_t)len;
}

static ssize_t pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	struct st_tls *t = ptr;
	size_t avail = t->in.len - t->in_off;

	if (avail == 0) {
		gnutls_transport_set_errno(t->session, EAGAIN);
		return -1;
	}
	if (len > avail)
		len = avail;
	memcpy(data, t->in.data + t->in_off, len);
	t->in_off += len;
	if (t->in_off == t->in.len) {
		st_buf_reset(&t->in);
		t->in_off = 0;
	}
	return (ssize_t)len;
}

/* Noted on the client when the server's CertificateRequest arrives. */
static int client_cert_cb(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                          const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                          gnutls_pcert_st **pcert, unsigned int *pcert_length,
                          gnutls_privkey_t *privkey)
{
	struct st_tls *t = gnutls_session_get_ptr(session);

	t->cert_requested = true;
	*pcert = NULL;
	*pcert_length = 0;
	*privkey = NULL;
	return 0;
}

void st_tls_free(struct st_tls *t)
{
	if (!t)
		return;
	if (t->session)
		gnutls_deinit(t->session);
	if (t->cred && !t->shared_cred)
		gnutls_certificate_free_credentials(t->cred);
	st_buf_release(&t->in);
	st_buf_release(&t->out);
	free(t);
}

/* The credentials of p: its certificate and key, or (a client without one) the callback
 * that notes a certificate request. */
static int load_cred(const struct st_tls_params *p, gnutls_certificate_credentials_t *cred,
                     struct st_error *err)
{
	char why[160];
	struct st_buf cb, kb;
	struct st_error e;
	gnutls_datum_t cd, kd;
	int rc;

	if (gnutls_certificate_allocate_credentials(cred) < 0) {
		*cred = NULL;
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return ST_E_NOMEM;
	}
	if (p->cert_file && p->key_file) {
		/* read here under the input cap: GnuTLS's own file loader reads to the end */
		st_buf_init(&cb, ST_INPUT_MAX);
		st_buf_init(&kb, ST_INPUT_MAX);
		rc = st_read_file(p->cert_file, &cb, &e);
		if (rc == 0)
			rc = st_read_file(p->key_file, &kb, &e);
		if (rc < 0)
			st_error_set(err, e.cls, "cannot use '%s' with '%s': %s", p->cert_file,
			             p->key_file, e.msg);
		else {
			cd.data = cb.data;
			cd.size = (unsigned)cb.len;
			kd.data = kb.data;
			kd.size = (unsigned)kb.len;
			rc = gnutls_certificate_set_x509_key_mem(*cred, &cd, &kd,
			                                         GNUTLS_X509_FMT_PEM);
			if (rc < 0)
				st_error_set(err, ST_ERR_INPUT, "cannot use '%s' with '%s': %s",
				             p->cert_file, p->key_file,
				             st_gnutls_reason(rc, why, sizeof(why)));
		}
		if (kb.data)
			explicit_bzero(kb.data, kb.cap);
		st_buf_release(&cb);
		st_buf_release(&kb);
		if (rc < 0)
			goto fail;
	} else if (p->server) {
		st_error_set(err, ST_ERR_USAGE, "a TLS server needs a certificate and a key");
		goto fail;
	}
	if (!p->server && !p->cert_file)
		gnutls_certificate_set_retrieve_function2(*cred, client_cert_cb);
	return ST_OK;
fail:
	gnutls_certificate_free_credentials(*cred);
	*cred = NULL;
	return ST_E_INVALID;
}

struct st_tls_creds *st_tls_creds_new(const struct st_tls_params *p, struct st_error *err)
{
	struct st_tls_creds *c = calloc(1, sizeof(*c));

	if (!c) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (load_cred(p, &c->cred, err)) {
		free(c);
		return NULL;
	}
	return c;
}

void st_tls_creds_free(struct st_tls_creds *c)
{
	if (!c)
		return;
	gnutls_certificate_free_credentials(c->cred);
	free(c);
}

struct st_tls *st_tls_new(const struct st_tls_params *p, struct st_error *err)
{
	struct st_tls *t = calloc(1, sizeof(*t));
	char why[160];
	const char *where = NULL;
	int rc;

	if (!t) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	t->server = p->server;
	st_buf_init(&t->in, TLS_BUF_MAX);
	st_buf_init(&t->out, TLS_BUF_MAX);
	if (gnutls_init(&t->session,
	                (p->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK) < 0) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		goto fail;
	}
	if (p->creds) {
		t->cred = p->creds->cred;
		t->shared_cred = true;
	} else if (load_cred(p, &t->cred, err)) {
		goto fail;
	}
	rc = gnutls_priority_set_direct(t->session, p->priority ? p->priority : "NORMAL", &where);
	if (rc < 0) {
		st_error_set(err, ST_ERR_USAGE, "bad TLS priority '%s': %s",
		             p->priority ? p->priority : "NORMAL",
		             st_gnutls_reason(rc, why, sizeof(why)));
		goto fail;
	}
	if (gnutls_credentials_set(t->session, GNUTLS_CRD_CERTIFICATE, t->cred) < 0) {
		st_error_set(err, ST_ERR_INTERNAL, "cannot set TLS credentials");
		goto fail;
	}
	if (p->server && p->request_client_cert)
		gnutls_certificate_server_set_request(t->session, GNUTLS_CERT_REQUEST);
	if (!p->server && p->sni && *p->sni)
		gnutls_server_name_set(t->session, GNUTLS_NAME_DNS, p->sni, strlen(p->sni));
	if (!p->server && p->resume && p->resume_len)
		gnutls_session_set_data(t->session, p->resume, p->resume_len);
	gnutls_session_set_ptr(t->session, t);
	gnutls_transport_set_ptr(t->session, t);
	gnutls_transport_set_push_function(t->session, push);
	gnutls_transport_set_pull_function(t->session, pull);
	return t;
fail:
	st_tls_free(t);
	return NULL;
}

int st_tls_input(struct st_tls *t, const unsigned char *data, size_t len)
{
	return st_buf_add(&t->in, data, len);
}

const unsigned char *st_tls_output(const struct st_tls *t, size_t *len)
{
	*len = t->out.len - t->out_off;
	return t->out.data ? t->out.data + t->out_off : (const unsigned char *)"";
}

void st_tls_output_done(struct st_tls *t, size_t n)
{
	t->out_off += n;
	if (t->out_off >= t->out.len) {
		st_buf_reset(&t->out);
		t->out_off = 0;
	}
}

int st_tls_handshake(struct st_tls *t, struct st_error *err)
{
	char why[160];
	size_t left = t->in.len - t->in_off, now;
	int rc;

	/* GnuTLS says "again" after one record of a flight that spans several (a chain past
	 * 16 KB) though the rest waits in our input, and no new bytes from the peer may come
	 * to wake us for it: go on while it takes from the input */
	for (;;) {
		rc = gnutls_handshake(t->session);
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED &&
		    rc != GNUTLS_E_WARNING_ALERT_RECEIVED)
			break;
		now = t->in.len - t->in_off;
		if (now == 0 || now >= left)
			return 0; /* it waits for the peer */
		left = now;
	}
	if (rc == GNUTLS_E_SUCCESS)
		return 1;
	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED)
		st_error_set(err, ST_ERR_TLS, "TLS handshake failed: the peer sent alert '%s'",
		             gnutls_alert_get_name(gnutls_alert_get(t->session)));
	else
		st_error_set(err, ST_ERR_TLS, "TLS handshake failed: %s",
		             st_gnutls_reason(rc, why, sizeof(why)));
	return ST_E_CRYPTO;
}

int st_tls_bye(struct st_tls *t)
{
	int rc;

	/* one call: the alert lands in the output, which never blocks (push only appends) */
	rc = gnutls_bye(t->session, GNUTLS_SHUT_WR);
	return rc == GNUTLS_E_SUCCESS ? ST_OK : ST_E_CRYPTO;
}

int st_tls_write(struct st_tls *t, const void *data, size_t len, struct st_error *err)
{
	const unsigned char *p = data;
	char why[160];
	ssize_t n;

	while (len > 0) {
		n = gnutls_record_send(t->session, p, len);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n < 0) {
			st_error_set(err, ST_ERR_TLS, "TLS write failed: %s",
			             st_gnutls_reason((int)n, why, sizeof(why)));
			return ST_E_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return ST_OK;
}

gnutls_session_t st_tls_gnutls_session(struct st_tls *t)
{
	return t->session;
}

long st_tls_read(struct st_tls *t, void *buf, size_t size, struct st_error *err)
{
	char why[160];
	ssize_t n;
	int tries;

	/* a record that carries no data (a TLS 1.3 session ticket) makes GnuTLS
	 * say "again" though more records wait in our input: go on while they do */
	for (tries = 0; tries < 256; tries++) {
		n = gnutls_record_recv(t->session, buf, size);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			if (t->in.len > t->in_off)
				continue;
			return 0;
		}
		if (n == 0) {
			st_error_set(err, ST_ERR_TLS, "the peer closed the TLS session");
			return ST_E_IO;
		}
		if (n == GNUTLS_E_FATAL_ALERT_RECEIVED) {
			/* TLS 1.3 servers judge a client certificate after our Finished:
			 * "Certificate is required" arrives here, not in the handshake */
			st_error_set(err, ST_ERR_TLS, "TLS read failed: the peer sent alert '%s'",
			             gnutls_alert_get_name(gnutls_alert_get(t->session)));
			return ST_E_IO;
		}
		if (n < 0) {
			st_error_set(err, ST_ERR_TLS, "TLS read failed: %s",
			             st_gnutls_reason((int)n, why, sizeof(why)));
			return ST_E_IO;
		}
		return (long)n;
	}
	/* stopping here would leave the rest unread with nothing to wake us for it */
	st_error_set(err, ST_ERR_TLS, "more than 256 TLS records in a row without data");
	return ST_E_IO;
}

int st_tls_summary(const struct st_tls *t, struct st_tls_summary *s)
{
	gnutls_protocol_t v = gnutls_protocol_get_version(t->session);
	const char *name;
	unsigned n = 0;
	int sig;

	memset(s, 0, sizeof(*s));
	switch (v) {
	case GNUTLS_SSL3:
		name = "SSLv3";
		break;
	case GNUTLS_TLS1_0:
		name = "TLSv1";
		break;
	case GNUTLS_TLS1_1:
		name = "TLSv1.1";
		break;
	case GNUTLS_TLS1_2:
		name = "TLSv1.2";
		break;
	case GNUTLS_TLS1_3:
		name = "TLSv1.3";
		break;
	default:
		name = "unknown";
	}
	snprintf(s->version, sizeof(s->version), "%s", name);
	/* the IANA name, as Postfix logs it (TLS_AES_256_GCM_SHA384) */
	name = gnutls_ciphersuite_get(t->session);
	snprintf(s->cipher, sizeof(s->cipher), "%s", name ? name : "");
	name = gnutls_group_get_name(gnutls_group_get(t->session));
	snprintf(s->group, sizeof(s->group), "%s", name ? name : "");
	sig = gnutls_sign_algorithm_get(t->session);
	name = sig > 0 ? gnutls_sign_get_name((gnutls_sign_algorithm_t)sig) : NULL;
	snprintf(s->sigalg, sizeof(s->sigalg), "%s", name ? name : "");
	s->client_cert_requested = t->cert_requested;
	s->client_cert_sent = !t->server && gnutls_certificate_get_ours(t->session) != NULL;
	gnutls_certificate_get_peers(t->session, &n);
	s->n_peer_certs = n;
	s->resumed = gnutls_session_is_resumed(t->session) != 0;
	return ST_OK;
}

const unsigned char *st_tls_peer_cert(const struct st_tls *t, unsigned i, size_t *len)
{
	unsigned n = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(t->session, &n);

	if (!certs || i >= n) {
		*len = 0;
		return NULL;
	}
	*len = certs[i].size;
	return certs[i].data;
}

const unsigned char *st_tls_ocsp_staple(const struct st_tls *t, size_t *len)
{
	gnutls_datum_t d = {NULL, 0};

	if (t->server || gnutls_ocsp_status_request_get(t->session, &d) < 0 || !d.size) {
		*len = 0;
		return NULL;
	}
	*len = d.size;
	return d.data;
}

size_t st_tls_peer_items(const struct st_tls *t, struct st_buf *der, struct st_x509_item **items,
                         size_t max)
{
	struct st_x509_reader *r;
	struct st_x509_item *it;
	struct st_error e;
	const unsigned char *d;
	size_t len, i, n = 0;

	st_buf_init(der, 1 << 22);
	for (i = 0; i < 16 && (d = st_tls_peer_cert(t, (unsigned)i, &len)); i++)
		st_buf_add(der, d, len);
	r = der->len ? st_x509_reader_new("peer", der->data, der->len) : NULL;
	while (r && n < max && st_x509_reader_next(r, &it, &e) > 0)
		items[n++] = it;
	st_x509_reader_free(r);
	return n;
}

int st_base64(const void *data, size_t len, struct st_buf *out)
{
	gnutls_datum_t in = {(unsigned char *)data, (unsigned)len}, enc = {NULL, 0};
	int rc;

	st_buf_reset(out);
	if (gnutls_base64_encode2(&in, &enc) < 0)
		return ST_E_CRYPTO;
	rc = st_buf_add(out, enc.data, enc.size);
	gnutls_free(enc.data);
	return rc;
}

int st_base64_decode(const char *text, size_t len, struct st_buf *out)
{
	gnutls_datum_t in = {(unsigned char *)text, (unsigned)len}, dec = {NULL, 0};
	int rc;

	st_buf_reset(out);
	if (len == 0)
		return ST_OK;
	if (gnutls_base64_decode2(&in, &dec) < 0)
		return ST_E_PARSE;
	rc = st_buf_add(out, dec.data, dec.size);
	if (dec.data)
		explicit_bzero(dec.data, dec.size); /* it may be a password */
	gnutls_free(dec.data);
	return rc;
}

int st_tls_session_data(const struct st_tls *t, struct st_buf *out)
{
	gnutls_datum_t d = {NULL, 0};
	int rc;

	st_buf_reset(out);
	if (gnutls_session_get_data2(t->session, &d) < 0)
		return ST_E_CRYPTO;
	rc = st_buf_add(out, d.data, d.size);
	gnutls_free(d.data);
	return rc;
}
