/* x509.c: load certificates and keys (PEM, DER, bundles), describe them, fingerprint them */
#include "config.h"

#include "x509.h"
#include "x509-gnutls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

/* Caps on what one certificate may make us hold. */
#define SAN_MAX   1024
#define LABEL_MAX 64
/* RFC 5280 allows 20 octets of serial; be generous with CAs that ignore it. */
#define ST_SERIAL_MAX 256

struct st_x509_item {
	enum st_x509_kind kind;
	unsigned line;
	gnutls_x509_crt_t crt; /* ST_X509_CERT */
	gnutls_x509_crq_t crq; /* ST_X509_CSR */
	gnutls_pubkey_t pub;   /* every kind */
	gnutls_datum_t der;    /* the object as read (decoded from PEM) */
	char *raw_why;         /* a certificate GnuTLS could not parse: why (crt is NULL) */
	gnutls_datum_t spki;   /* DER SubjectPublicKeyInfo, exactly as in the object when present */
};

struct st_x509_reader {
	char *name;
	const unsigned char *data;
	size_t len;
	size_t pos;
	unsigned line; /* line number at pos (PEM) */
	int format;    /* 0 undecided, 1 PEM, 2 DER */
	bool done;
	unsigned items;
	unsigned errors;
};

static const struct {
	const char *name;
	gnutls_digest_algorithm_t alg;
	size_t len;
} digests[] = {
    [ST_DIGEST_MD5] = {"md5", GNUTLS_DIG_MD5, 16},
    [ST_DIGEST_SHA1] = {"sha1", GNUTLS_DIG_SHA1, 20},
    [ST_DIGEST_SHA224] = {"sha224", GNUTLS_DIG_SHA224, 28},
    [ST_DIGEST_SHA256] = {"sha256", GNUTLS_DIG_SHA256, 32},
    [ST_DIGEST_SHA384] = {"sha384", GNUTLS_DIG_SHA384, 48},
    [ST_DIGEST_SHA512] = {"sha512", GNUTLS_DIG_SHA512, 64},
};

const char *st_digest_name(enum st_digest d)
{
	return digests[d].name;
}

int st_digest_from_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(digests) / sizeof(digests[0]); i++)
		if (strcasecmp(name, digests[i].name) == 0)
			return (int)i;
	return -1;
}

size_t st_digest_len(enum st_digest d)
{
	return digests[d].len;
}

const char *st_x509_kind_name(enum st_x509_kind kind)
{
	switch (kind) {
	case ST_X509_CERT:
		return "certificate";
	case ST_X509_PUBKEY:
		return "public key";
	case ST_X509_PRIVKEY:
		return "private key";
	case ST_X509_CSR:
		return "certificate request";
	}
	return "unknown";
}

const char *st_gnutls_reason(int rc, char *buf, size_t size)
{
	size_t n;

	snprintf(buf, size, "%s", gnutls_strerror(rc));
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '.')
		buf[n - 1] = '\0';
	if (buf[0] && isupper((unsigned char)buf[0]) && !isupper((unsigned char)buf[1]))
		buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

/*
 * The header and total length of the DER TLV at p (at most avail bytes).
 * Returns 0 and sets *hdr and *total, -2 when the TLV runs past avail
 * (truncated: *hdr and *total are set when the header itself is whole), or
 * -1 when it is malformed. Only definite lengths, as DER requires.
 */
static int der_tlv(const unsigned char *p, size_t avail, size_t *hdr, size_t *total)
{
	size_t n, i, len = 0;

	if (avail < 2)
		return -2;
	if (p[1] < 0x80) {
		len = p[1];
		n = 2;
	} else {
		size_t k = p[1] & 0x7f;
		if (k == 0 || k > 4)
			return -1;
		if (avail < 2 + k)
			return -2;
		for (i = 0; i < k; i++)
			len = (len << 8) | p[2 + i];
		n = 2 + k;
	}
	*hdr = n;
	*total = n + len;
	return len > avail - n ? -2 : 0;
}

/*
 * Find field number skip (0: serial) of the signed part of a DER certificate,
 * or of a request when !is_cert, without decoding the certificate: only TLV
 * headers are stepped over. The field must be a SEQUENCE. Certificate:
 * [version] serial signature issuer validity subject spki; request: version
 * subject spki. With prefix, der holds only the start of the object: the two
 * outer SEQUENCEs may run past it, the field itself may not. -2 when the field
 * runs past what der holds, -1 when the structure is not a certificate's.
 */
static int der_find_field(const unsigned char *der, size_t size, bool is_cert, size_t skip,
                          bool prefix, const unsigned char **out, size_t *out_len)
{
	const unsigned char *p = der;
	size_t avail = size, hdr, total, i;
	int rc;

	/* outer SEQUENCE, then the signed SEQUENCE */
	for (i = 0; i < 2; i++) {
		hdr = 0;
		rc = der_tlv(p, avail, &hdr, &total);
		if ((rc && !(rc == -2 && prefix && hdr > 0 && hdr <= avail)) || p[0] != 0x30)
			return rc == -2 ? -2 : -1;
		p += hdr;
		avail = (total < avail ? total : avail) - hdr;
	}
	if (is_cert && avail > 0 && p[0] == 0xa0) { /* explicit version */
		if ((rc = der_tlv(p, avail, &hdr, &total)) != 0)
			return rc;
		p += total;
		avail -= total;
	}
	for (i = 0; i < skip; i++) {
		if ((rc = der_tlv(p, avail, &hdr, &total)) != 0)
			return rc;
		p += total;
		avail -= total;
	}
	if ((rc = der_tlv(p, avail, &hdr, &total)) != 0)
		return rc;
	if (p[0] != 0x30)
		return -1;
	*out = p;
	*out_len = total;
	return 0;
}

/*
 * Find the SubjectPublicKeyInfo inside a DER certificate or request, so its
 * digest is taken over the exact bytes the peer sent (as Postfix does), not
 * over GnuTLS's re-encoding of the key. GnuTLS has no public call for the
 * raw field.
 */
static int der_find_spki(const gnutls_datum_t *der, bool is_cert, gnutls_datum_t *spki)
{
	const unsigned char *p;
	size_t len;

	if (der_find_field(der->data, der->size, is_cert, is_cert ? 5 : 2, false, &p, &len))
		return -1;
	spki->data = (unsigned char *)p;
	spki->size = (unsigned)len;
	return 0;
}

int st_x509_der_subject(const unsigned char *der, size_t len, bool prefix,
                        const unsigned char **subject, size_t *subject_len)
{
	size_t hdr, total;
	int rc;

	/* a whole certificate is exactly one TLV, as GnuTLS will require when it parses it */
	if (!prefix && (der_tlv(der, len, &hdr, &total) || total != len))
		return ST_E_PARSE;
	rc = der_find_field(der, len, true, 4, prefix, subject, subject_len);
	return rc == 0 ? ST_OK : rc == -2 ? ST_E_TOOBIG : ST_E_PARSE;
}

/* Copy a borrowed datum into an owned one. */
static int datum_dup(gnutls_datum_t *dst, const unsigned char *p, size_t n)
{
	dst->data = gnutls_malloc(n ? n : 1);
	if (!dst->data)
		return ST_E_NOMEM;
	memcpy(dst->data, p, n);
	dst->size = (unsigned)n;
	return ST_OK;
}

void st_x509_item_free(struct st_x509_item *item)
{
	if (!item)
		return;
	if (item->crt)
		gnutls_x509_crt_deinit(item->crt);
	if (item->crq)
		gnutls_x509_crq_deinit(item->crq);
	if (item->pub)
		gnutls_pubkey_deinit(item->pub);
	gnutls_free(item->der.data);
	gnutls_free(item->spki.data);
	free(item->raw_why);
	free(item);
}

gnutls_x509_crt_t st_x509_item_crt(const struct st_x509_item *item)
{
	return item->crt;
}

const char *st_x509_item_parse_problem(const struct st_x509_item *item)
{
	return item->raw_why;
}

gnutls_x509_crt_t st_x509_item_crt_copy(const struct st_x509_item *item)
{
	gnutls_x509_crt_t c;

	if (!item->crt || gnutls_x509_crt_init(&c) < 0)
		return NULL;
	if (gnutls_x509_crt_import(c, &item->der, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(c);
		return NULL;
	}
	return c;
}

int st_x509_crt_fingerprint(gnutls_x509_crt_t crt, enum st_digest d, bool pubkey, char *out)
{
	gnutls_datum_t der = {NULL, 0}, spki;
	unsigned char md[ST_DIGEST_MAX];
	int rc = ST_E_CRYPTO;

	out[0] = '\0';
	if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) < 0)
		return ST_E_CRYPTO;
	if (pubkey && der_find_spki(&der, true, &spki) != 0)
		goto out;
	if (!pubkey)
		spki = der;
	if (gnutls_hash_fast(digests[d].alg, spki.data, spki.size, md) < 0)
		goto out;
	st_hex(md, digests[d].len, true, ':', out);
	rc = ST_OK;
out:
	gnutls_free(der.data);
	return rc;
}

enum st_x509_kind st_x509_item_kind(const struct st_x509_item *item)
{
	return item->kind;
}

unsigned st_x509_item_line(const struct st_x509_item *item)
{
	return item->line;
}

/* Fill item->spki: the raw field when found, else GnuTLS's encoding of the key. */
static int item_set_spki(struct st_x509_item *item)
{
	gnutls_datum_t raw;

	if ((item->kind == ST_X509_CERT || item->kind == ST_X509_CSR) &&
	    der_find_spki(&item->der, item->kind == ST_X509_CERT, &raw) == 0)
		return datum_dup(&item->spki, raw.data, raw.size);
	if (item->kind == ST_X509_PUBKEY)
		return datum_dup(&item->spki, item->der.data, item->der.size);
	if (gnutls_pubkey_export2(item->pub, GNUTLS_X509_FMT_DER, &item->spki) < 0)
		return ST_E_CRYPTO;
	return ST_OK;
}

/*
 * Build an item of the given kind from DER (owned by the item on success).
 * kind -1 means "try every kind", as for a bare DER file.
 */
static int item_from_der(gnutls_datum_t *der, int kind, unsigned line, struct st_x509_item **out,
                         char *why, size_t whysize)
{
	struct st_x509_item *item;
	gnutls_privkey_t priv = NULL;
	int rc = GNUTLS_E_INTERNAL_ERROR;

	*out = NULL;
	item = calloc(1, sizeof(*item));
	if (!item)
		return ST_E_NOMEM;
	item->line = line;
	if (gnutls_pubkey_init(&item->pub) < 0)
		goto fail;

	if (kind == ST_X509_CERT || kind == -1) {
		if (gnutls_x509_crt_init(&item->crt) < 0)
			goto fail;
		rc = gnutls_x509_crt_import(item->crt, der, GNUTLS_X509_FMT_DER);
		if (rc >= 0) {
			rc = gnutls_pubkey_import_x509(item->pub, item->crt, 0);
			item->kind = ST_X509_CERT;
			goto done;
		}
		gnutls_x509_crt_deinit(item->crt);
		item->crt = NULL;
		if (kind == ST_X509_CERT) {
			/* a CERTIFICATE block GnuTLS refuses (a malformed extension, say):
			 * when its outer structure and key can be found, its digests can
			 * still be taken, as openssl x509 -fingerprint takes them */
			gnutls_datum_t raw;
			size_t hdr, total;
			char w[160];
			if (der_tlv(der->data, der->size, &hdr, &total) == 0 &&
			    total == der->size && der_find_spki(der, true, &raw) == 0) {
				st_gnutls_reason(rc, w, sizeof(w));
				item->raw_why = strdup(w);
				item->kind = ST_X509_CERT;
				if (!item->raw_why)
					goto fail;
				/* the key, when GnuTLS can read it alone, for its description */
				gnutls_pubkey_import(item->pub, &raw, GNUTLS_X509_FMT_DER);
				rc = 0;
				goto done;
			}
		}
		if (kind != -1)
			goto fail;
	}
	if (kind == ST_X509_PRIVKEY || kind == -1) {
		if (gnutls_privkey_init(&priv) < 0)
			goto fail;
		rc = gnutls_privkey_import_x509_raw(priv, der, GNUTLS_X509_FMT_DER, NULL,
		                                    GNUTLS_PKCS_PLAIN);
		if (rc >= 0) {
			rc = gnutls_pubkey_import_privkey(item->pub, priv, 0, 0);
			item->kind = ST_X509_PRIVKEY;
			goto done;
		}
		gnutls_privkey_deinit(priv);
		priv = NULL;
		if (kind != -1)
			goto fail;
	}
	if (kind == ST_X509_PUBKEY || kind == -1) {
		rc = gnutls_pubkey_import(item->pub, der, GNUTLS_X509_FMT_DER);
		if (rc >= 0) {
			item->kind = ST_X509_PUBKEY;
			goto done;
		}
		if (kind != -1)
			goto fail;
	}
	if (kind == ST_X509_CSR || kind == -1) {
		if (gnutls_x509_crq_init(&item->crq) < 0)
			goto fail;
		rc = gnutls_x509_crq_import(item->crq, der, GNUTLS_X509_FMT_DER);
		if (rc >= 0) {
			rc = gnutls_pubkey_import_x509_crq(item->pub, item->crq, 0);
			item->kind = ST_X509_CSR;
			goto done;
		}
	}
	goto fail;

done:
	if (priv)
		gnutls_privkey_deinit(priv);
	priv = NULL;
	if (rc < 0)
		goto fail;
	item->der = *der;
	der->data = NULL;
	der->size = 0;
	if (item_set_spki(item)) {
		rc = GNUTLS_E_INTERNAL_ERROR;
		goto fail;
	}
	*out = item;
	return ST_OK;
fail:
	if (priv)
		gnutls_privkey_deinit(priv);
	st_gnutls_reason(rc, why, whysize);
	st_x509_item_free(item);
	return ST_E_PARSE;
}

struct st_x509_reader *st_x509_reader_new(const char *name, const unsigned char *data, size_t len)
{
	struct st_x509_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->name = strdup(name);
	if (!r->name) {
		free(r);
		return NULL;
	}
	r->data = data;
	r->len = len;
	r->line = 1;
	return r;
}

void st_x509_reader_free(struct st_x509_reader *r)
{
	if (!r)
		return;
	free(r->name);
	free(r);
}

void st_x509_bad_add(struct st_x509_bad *b, const struct st_error *e)
{
	if (b->n++ == 0)
		b->first = *e;
}

bool st_x509_bad_report(const struct st_x509_bad *b, struct st_error *out)
{
	char tail[64];
	int room;

	if (b->n == 0)
		return false;
	*out = b->first;
	if (b->n == 1)
		return true;
	snprintf(tail, sizeof(tail), " (and %lu more bad block%s)", b->n - 1, b->n == 2 ? "" : "s");
	room = (int)(sizeof(out->msg) - strlen(tail) - 1);
	snprintf(out->msg, sizeof(out->msg), "%.*s%s", room, b->first.msg, tail);
	return true;
}

static bool all_blank(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isspace(p[i]) && p[i] != 0)
			return false;
	return true;
}

/* Is there a "-----BEGIN " at the start of a line anywhere in data? */
static bool looks_pem(const unsigned char *data, size_t len)
{
	const unsigned char *p = data, *end = data + len;

	while (p < end) {
		const unsigned char *hit = memmem(p, (size_t)(end - p), "-----BEGIN ", 11);
		if (!hit)
			return false;
		if (hit == data || hit[-1] == '\n')
			return true;
		p = hit + 1;
	}
	return false;
}

/* The PEM block labels we read, the kind each gives, and the ones we skip quietly. */
static int label_kind(const char *label, bool *skip)
{
	static const struct {
		const char *label;
		int kind;
	} map[] = {
	    {"CERTIFICATE", ST_X509_CERT},         {"X509 CERTIFICATE", ST_X509_CERT},
	    {"TRUSTED CERTIFICATE", ST_X509_CERT}, {"PRIVATE KEY", ST_X509_PRIVKEY},
	    {"RSA PRIVATE KEY", ST_X509_PRIVKEY},  {"EC PRIVATE KEY", ST_X509_PRIVKEY},
	    {"DSA PRIVATE KEY", ST_X509_PRIVKEY},  {"PUBLIC KEY", ST_X509_PUBKEY},
	    {"CERTIFICATE REQUEST", ST_X509_CSR},  {"NEW CERTIFICATE REQUEST", ST_X509_CSR},
	};
	/* Blocks that sit in certificate and key files without being either. */
	static const char *const quiet[] = {"X509 CRL", "EC PARAMETERS", "DH PARAMETERS",
	                                    "X9.42 DH PARAMETERS", "DSA PARAMETERS"};
	size_t i;

	*skip = false;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(label, map[i].label) == 0)
			return map[i].kind;
	for (i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++)
		if (strcmp(label, quiet[i]) == 0) {
			*skip = true;
			return -1;
		}
	return -1;
}

/* Advice for labels we know but cannot read. */
static const char *label_advice(const char *label)
{
	if (strcmp(label, "ENCRYPTED PRIVATE KEY") == 0)
		return "encrypted private key not supported: decrypt it first "
		       "(openssl pkey -in KEY -out PLAIN)";
	if (strcmp(label, "OPENSSH PRIVATE KEY") == 0)
		return "OpenSSH private key format not supported: convert it with "
		       "ssh-keygen -p -m PKCS8";
	if (strcmp(label, "RSA PUBLIC KEY") == 0)
		return "PKCS#1 public key not supported: convert it with "
		       "openssl rsa -RSAPublicKey_in -pubout";
	if (strcmp(label, "PKCS7") == 0 || strcmp(label, "CMS") == 0)
		return "PKCS#7 bundle not supported: extract the certificates with "
		       "openssl pkcs7 -print_certs";
	return NULL;
}

/* Read one PEM block starting at or after r->pos. */
static int next_pem(struct st_x509_reader *r, struct st_x509_item **item, struct st_error *err)
{
	const unsigned char *end = r->data + r->len;
	char label[LABEL_MAX + 1], why[160], endline[LABEL_MAX + 16];
	const unsigned char *p, *eol, *blk, *q;
	unsigned begin_line, line;
	gnutls_datum_t in, der = {NULL, 0};
	int kind, rc;
	bool skip;
	size_t n;

	for (;;) {
		/* find the next BEGIN line */
		p = r->data + r->pos;
		if (p >= end)
			return 0;
		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		begin_line = r->line;
		r->pos = (size_t)(eol - r->data) + (eol < end);
		r->line++;
		n = (size_t)(eol - p);
		while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n < 16 || memcmp(p, "-----BEGIN ", 11) != 0 ||
		    memcmp(p + n - 5, "-----", 5) != 0)
			continue;
		if (n - 16 > LABEL_MAX) {
			st_error_set(err, ST_ERR_INPUT, "'%s' line %u: PEM label too long", r->name,
			             begin_line);
			return ST_E_PARSE;
		}
		memcpy(label, p + 11, n - 16);
		label[n - 16] = '\0';
		blk = p;

		/* find its END line (matched on the raw label; the label is sanitised for messages) */
		snprintf(endline, sizeof(endline), "-----END %s-----", label);
		st_sanitize(label);
		line = r->line;
		q = r->data + r->pos;
		for (;;) {
			if (q >= end) {
				st_error_set(err, ST_ERR_INPUT,
				             "'%s' line %u: PEM block '%s' has no END line "
				             "(truncated file?)",
				             r->name, begin_line, label);
				r->pos = r->len;
				return ST_E_PARSE;
			}
			eol = memchr(q, '\n', (size_t)(end - q));
			if (!eol)
				eol = end;
			n = (size_t)(eol - q);
			while (n > 0 && (q[n - 1] == '\r' || q[n - 1] == ' ' || q[n - 1] == '\t'))
				n--;
			line++;
			if (n >= 9 && memcmp(q, "-----END ", 9) == 0) {
				if (n != strlen(endline) || memcmp(q, endline, n) != 0) {
					st_error_set(err, ST_ERR_INPUT,
					             "'%s' line %u: PEM block '%s' ends with a "
					             "different END line at line %u",
					             r->name, begin_line, label, line - 1);
					r->pos = (size_t)(eol - r->data) + (eol < end);
					r->line = line;
					return ST_E_PARSE;
				}
				break;
			}
			if (n >= 11 && memcmp(q, "-----BEGIN ", 11) == 0) {
				st_error_set(err, ST_ERR_INPUT,
				             "'%s' line %u: PEM block '%s' has no END line "
				             "before the next BEGIN line",
				             r->name, begin_line, label);
				/* resume at that BEGIN line */
				r->pos = (size_t)(q - r->data);
				r->line = line - 1;
				return ST_E_PARSE;
			}
			q = eol + (eol < end);
		}
		r->pos = (size_t)(eol - r->data) + (eol < end);
		r->line = line;

		kind = label_kind(label, &skip);
		if (skip)
			continue;
		if (kind < 0) {
			const char *advice = label_advice(label);
			if (advice)
				st_error_set(err, ST_ERR_INPUT, "'%s' line %u: %s", r->name,
				             begin_line, advice);
			else
				st_error_set(err, ST_ERR_INPUT,
				             "'%s' line %u: unsupported PEM block '%s'", r->name,
				             begin_line, label);
			return ST_E_UNSUPPORTED;
		}
		in.data = (unsigned char *)blk;
		in.size = (unsigned)(eol - blk);
		if (memmem(blk, in.size, "Proc-Type: 4,ENCRYPTED", 22)) {
			st_error_set(err, ST_ERR_INPUT, "'%s' line %u: %s", r->name, begin_line,
			             label_advice("ENCRYPTED PRIVATE KEY"));
			return ST_E_UNSUPPORTED;
		}
		rc = gnutls_pem_base64_decode2(label, &in, &der);
		if (rc < 0) {
			st_error_set(err, ST_ERR_INPUT, "'%s' line %u: cannot decode %s: %s",
			             r->name, begin_line, label,
			             st_gnutls_reason(rc, why, sizeof(why)));
			return ST_E_PARSE;
		}
		if (strcmp(label, "TRUSTED CERTIFICATE") == 0) {
			/* OpenSSL's form: the certificate, then trust settings; keep the first */
			size_t hdr, total;
			if (der_tlv(der.data, der.size, &hdr, &total) == 0)
				der.size = (unsigned)total;
		}
		rc = item_from_der(&der, kind, begin_line, item, why, sizeof(why));
		gnutls_free(der.data);
		if (rc == ST_E_NOMEM) {
			st_error_set(err, ST_ERR_INTERNAL, "'%s': out of memory", r->name);
			return rc;
		}
		if (rc) {
			st_error_set(err, ST_ERR_INPUT, "'%s' line %u: cannot parse %s: %s",
			             r->name, begin_line,
			             st_x509_kind_name((enum st_x509_kind)kind), why);
			return rc;
		}
		return 1;
	}
}

/* Read one DER object at r->pos. */
static int next_der(struct st_x509_reader *r, struct st_x509_item **item, struct st_error *err)
{
	const unsigned char *p = r->data + r->pos;
	size_t avail = r->len - r->pos, hdr, total;
	gnutls_datum_t der = {NULL, 0};
	char why[160];
	int rc, tlv;

	if (avail == 0 || (r->items > 0 && all_blank(p, avail)))
		return 0;
	tlv = p[0] == 0x30 ? der_tlv(p, avail, &hdr, &total) : -1;
	if (tlv) {
		r->done = true;
		/* a SEQUENCE with a long-form length (never the second byte of text) cut short */
		if (tlv == -2 && avail >= 2 && p[1] > 0x80)
			st_error_set(err, ST_ERR_INPUT,
			             "'%s' offset %zu: truncated DER object: its header asks for "
			             "more than the %zu bytes left (truncated file?)",
			             r->name, r->pos, avail);
		else if (r->pos == 0)
			st_error_set(err, ST_ERR_INPUT,
			             "'%s': not a certificate or key: neither PEM (no "
			             "'-----BEGIN' line) nor DER",
			             r->name);
		else
			st_error_set(err, ST_ERR_INPUT,
			             "'%s' offset %zu: trailing data that is not a DER object",
			             r->name, r->pos);
		return ST_E_PARSE;
	}
	if (datum_dup(&der, p, total)) {
		r->done = true;
		st_error_set(err, ST_ERR_INTERNAL, "'%s': out of memory", r->name);
		return ST_E_NOMEM;
	}
	r->pos += total;
	rc = item_from_der(&der, -1, 0, item, why, sizeof(why));
	gnutls_free(der.data);
	if (rc) {
		r->done = true;
		st_error_set(err, ST_ERR_INPUT,
		             "'%s' offset %zu: DER object is not a certificate, key or "
		             "certificate request (PKCS#7 and PKCS#12 are not supported)",
		             r->name, r->pos - total);
		return rc;
	}
	return 1;
}

int st_x509_reader_next(struct st_x509_reader *r, struct st_x509_item **item, struct st_error *err)
{
	int rc;

	*item = NULL;
	if (r->done)
		return 0;
	if (r->format == 0) {
		if (r->len == 0) {
			r->done = true;
			st_error_set(err, ST_ERR_INPUT, "'%s': empty file", r->name);
			return ST_E_PARSE;
		}
		if (looks_pem(r->data, r->len)) {
			r->format = 1;
		} else if (r->len >= 4 && (memcmp(r->data, "ssh-", 4) == 0 ||
		                           memcmp(r->data, "ecdsa-", 6 <= r->len ? 6 : 4) == 0)) {
			r->done = true;
			st_error_set(err, ST_ERR_INPUT,
			             "'%s': OpenSSH public key format not supported: convert it "
			             "with ssh-keygen -e -m PKCS8 -f KEY",
			             r->name);
			return ST_E_UNSUPPORTED;
		} else if (all_blank(r->data, r->len)) {
			r->done = true;
			st_error_set(err, ST_ERR_INPUT, "'%s': empty file", r->name);
			return ST_E_PARSE;
		} else {
			r->format = 2;
		}
	}
	rc = r->format == 1 ? next_pem(r, item, err) : next_der(r, item, err);
	if (rc > 0) {
		r->items++;
		return rc;
	}
	if (rc < 0) {
		r->errors++;
		if (r->format == 2)
			r->done = true;
		return rc;
	}
	r->done = true;
	if (r->items == 0 && r->errors == 0) {
		st_error_set(err, ST_ERR_INPUT, "'%s': no certificate or key found", r->name);
		return ST_E_PARSE;
	}
	return 0;
}

int st_x509_item_fingerprint(const struct st_x509_item *item, enum st_digest d, bool pubkey,
                             char *out)
{
	unsigned char md[ST_DIGEST_MAX];
	const gnutls_datum_t *in = pubkey ? &item->spki : &item->der;

	out[0] = '\0';
	if (!pubkey && item->kind != ST_X509_CERT)
		return ST_E_INVALID;
	if (gnutls_hash_fast(digests[d].alg, in->data, in->size, md) < 0)
		return ST_E_CRYPTO;
	st_hex(md, digests[d].len, true, ':', out);
	return ST_OK;
}

int st_x509_item_tlsa_data(const struct st_x509_item *item, enum st_tlsa_selector sel,
                           enum st_tlsa_mtype mtype, struct st_buf *out)
{
	const gnutls_datum_t *in = sel == ST_TLSA_SEL_CERT ? &item->der : &item->spki;
	unsigned char md[ST_DIGEST_MAX];
	const unsigned char *p = in->data;
	size_t n = in->size, i;
	char hex[3];
	int rc;

	st_buf_reset(out);
	if (sel == ST_TLSA_SEL_CERT && item->kind != ST_X509_CERT)
		return ST_E_INVALID;
	if (mtype != ST_TLSA_FULL) {
		gnutls_digest_algorithm_t alg =
		    mtype == ST_TLSA_SHA256 ? GNUTLS_DIG_SHA256 : GNUTLS_DIG_SHA512;
		if (gnutls_hash_fast(alg, in->data, in->size, md) < 0)
			return ST_E_CRYPTO;
		p = md;
		n = mtype == ST_TLSA_SHA256 ? 32 : 64;
	}
	for (i = 0; i < n; i++) {
		st_hex(p + i, 1, false, 0, hex);
		rc = st_buf_add(out, hex, 2);
		if (rc)
			return rc;
	}
	return ST_OK;
}

/* Copy a GnuTLS-allocated datum into a sanitised C string; frees the datum. */
static char *take_string(gnutls_datum_t *d)
{
	char *s = malloc(d->size + 1);

	if (s) {
		memcpy(s, d->data, d->size);
		s[d->size] = '\0';
		st_sanitize(s);
	}
	gnutls_free(d->data);
	d->data = NULL;
	return s;
}

/* First commonName of a DN, via a getter for crt or crq. */
static char *get_cn(const struct st_x509_item *item)
{
	char buf[1024];
	size_t size = sizeof(buf) - 1;
	int rc;

	if (item->crt)
		rc = gnutls_x509_crt_get_dn_by_oid(item->crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0,
		                                   buf, &size);
	else
		rc = gnutls_x509_crq_get_dn_by_oid(item->crq, GNUTLS_OID_X520_COMMON_NAME, 0, 0,
		                                   buf, &size);
	if (rc < 0)
		return NULL;
	buf[size < sizeof(buf) ? size : sizeof(buf) - 1] = '\0';
	st_sanitize(buf);
	return strdup(buf);
}

static int add_san(struct st_x509_info *info, const char *prefix, const char *value)
{
	char **v;
	size_t n = strlen(prefix) + strlen(value) + 1;

	if (info->n_san >= SAN_MAX)
		return ST_OK;
	v = realloc(info->san, (info->n_san + 1) * sizeof(*v));
	if (!v)
		return ST_E_NOMEM;
	info->san = v;
	v[info->n_san] = malloc(n);
	if (!v[info->n_san])
		return ST_E_NOMEM;
	snprintf(v[info->n_san], n, "%s%s", prefix, value);
	st_sanitize(v[info->n_san]);
	info->n_san++;
	return ST_OK;
}

static int get_sans(const struct st_x509_item *item, struct st_x509_info *info)
{
	unsigned char buf[2048];
	char text[INET6_ADDRSTRLEN + 1];
	unsigned i, critical;
	size_t size, j;
	int type, rc;

	for (i = 0; i < SAN_MAX; i++) {
		size = sizeof(buf) - 1;
		if (item->crt)
			type = gnutls_x509_crt_get_subject_alt_name(item->crt, i, buf, &size,
			                                            &critical);
		else
			type = gnutls_x509_crq_get_subject_alt_name(item->crq, i, buf, &size, NULL,
			                                            &critical);
		if (type == GNUTLS_E_SHORT_MEMORY_BUFFER)
			continue; /* absurdly long name: leave it out */
		if (type < 0)
			break;
		buf[size] = '\0';
		/* a NUL inside a name is the old trick to make 'good.example\0.evil'
		 * read as 'good.example': show it, never cut the name there */
		if (type != GNUTLS_SAN_IPADDRESS)
			for (j = 0; j < size; j++)
				if (buf[j] == '\0')
					buf[j] = '?';
		switch (type) {
		case GNUTLS_SAN_DNSNAME:
			rc = add_san(info, "DNS:", (char *)buf);
			break;
		case GNUTLS_SAN_RFC822NAME:
			rc = add_san(info, "email:", (char *)buf);
			break;
		case GNUTLS_SAN_URI:
			rc = add_san(info, "URI:", (char *)buf);
			break;
		case GNUTLS_SAN_IPADDRESS:
			if (size != 4 && size != 16)
				snprintf(text, sizeof(text), "<invalid length=%zu>", size);
			else if (!inet_ntop(size == 16 ? AF_INET6 : AF_INET, buf, text,
			                    sizeof(text)))
				snprintf(text, sizeof(text), "?");
			rc = add_san(info, "IP:", text);
			break;
		case GNUTLS_SAN_DN:
			rc = add_san(info, "DirName:", (char *)buf);
			break;
		case GNUTLS_SAN_REGISTERED_ID:
			rc = add_san(info, "RID:", (char *)buf);
			break;
		default:
			rc = add_san(info, "othername:", "<unsupported>");
			break;
		}
		if (rc)
			return rc;
	}
	return ST_OK;
}

static void key_info(const struct st_x509_item *item, struct st_x509_info *info)
{
	unsigned bits = 0;
	int alg = gnutls_pubkey_get_pk_algorithm(item->pub, &bits);
	const char *name;

	switch (alg) {
	case GNUTLS_PK_RSA:
		name = "RSA";
		break;
	case GNUTLS_PK_RSA_PSS:
		name = "RSA-PSS";
		break;
	case GNUTLS_PK_DSA:
		name = "DSA";
		break;
	case GNUTLS_PK_ECDSA:
		name = "ECDSA";
		break;
	case GNUTLS_PK_EDDSA_ED25519:
		name = "Ed25519";
		break;
	case GNUTLS_PK_EDDSA_ED448:
		name = "Ed448";
		break;
	default:
		name = alg < 0 ? "unknown" : gnutls_pk_get_name((gnutls_pk_algorithm_t)alg);
		if (!name)
			name = "unknown";
	}
	snprintf(info->key_algorithm, sizeof(info->key_algorithm), "%s", name);
	info->key_bits = bits;
	if (alg == GNUTLS_PK_ECDSA) {
		gnutls_ecc_curve_t curve;
		gnutls_datum_t x = {NULL, 0}, y = {NULL, 0};
		if (gnutls_pubkey_export_ecc_raw2(item->pub, &curve, &x, &y, 0) >= 0) {
			const char *cn = gnutls_ecc_curve_get_name(curve);
			snprintf(info->key_curve, sizeof(info->key_curve), "%s", cn ? cn : "");
		}
		gnutls_free(x.data);
		gnutls_free(y.data);
	}
}

int st_x509_item_info(const struct st_x509_item *item, struct st_x509_info *info,
                      struct st_error *err)
{
	gnutls_datum_t d = {NULL, 0};
	unsigned char serial[ST_SERIAL_MAX];
	size_t size;
	unsigned ca = 0;
	int rc;

	memset(info, 0, sizeof(*info));
	info->kind = item->kind;
	key_info(item, info);
	if ((item->kind != ST_X509_CERT && item->kind != ST_X509_CSR) || (!item->crt && !item->crq))
		return ST_OK;

	rc = item->crt ? gnutls_x509_crt_get_dn3(item->crt, &d, 0)
	               : gnutls_x509_crq_get_dn3(item->crq, &d, 0);
	if (rc >= 0 && !(info->subject = take_string(&d)))
		goto nomem;
	if (rc < 0)
		info->subject = strdup("");
	info->cn = get_cn(item);
	if (get_sans(item, info))
		goto nomem;
	if (item->kind == ST_X509_CSR) {
		rc = gnutls_x509_crq_get_signature_algorithm(item->crq);
		if (rc > 0 && gnutls_sign_get_name((gnutls_sign_algorithm_t)rc))
			snprintf(info->sig_algorithm, sizeof(info->sig_algorithm), "%s",
			         gnutls_sign_get_name((gnutls_sign_algorithm_t)rc));
		return info->subject ? ST_OK : ST_E_NOMEM;
	}

	rc = gnutls_x509_crt_get_issuer_dn3(item->crt, &d, 0);
	info->issuer = rc >= 0 ? take_string(&d) : strdup("");
	if (!info->issuer || !info->subject)
		goto nomem;

	size = sizeof(serial);
	if (gnutls_x509_crt_get_serial(item->crt, serial, &size) >= 0 && size > 0) {
		/* as OpenSSL prints it: no leading zero bytes; a negative number
		 * (two's complement, which RFC 5280 forbids but CAs have issued)
		 * as '-' and its magnitude */
		bool neg = serial[0] & 0x80;
		size_t skip = 0, k;
		if (neg) {
			unsigned carry = 1;
			for (k = size; k-- > 0;) {
				unsigned v = (unsigned char)~serial[k] + carry;
				serial[k] = (unsigned char)v;
				carry = v > 0xff;
			}
		}
		while (skip + 1 < size && serial[skip] == 0)
			skip++;
		info->serial = malloc(2 * (size - skip) + 2);
		if (!info->serial)
			goto nomem;
		info->serial[0] = '-';
		st_hex(serial + skip, size - skip, true, 0, info->serial + neg);
	} else {
		info->serial = strdup("");
	}

	info->not_before = gnutls_x509_crt_get_activation_time(item->crt);
	info->not_after = gnutls_x509_crt_get_expiration_time(item->crt);
	info->has_validity = info->not_before != (time_t)-1 && info->not_after != (time_t)-1;
	if (gnutls_x509_crt_get_basic_constraints(item->crt, NULL, &ca, NULL) >= 0)
		info->is_ca = ca != 0;
	info->self_issued = gnutls_x509_crt_check_issuer(item->crt, item->crt) != 0;

	rc = gnutls_x509_crt_get_signature_algorithm(item->crt);
	if (rc > 0 && gnutls_sign_get_name((gnutls_sign_algorithm_t)rc)) {
		snprintf(info->sig_algorithm, sizeof(info->sig_algorithm), "%s",
		         gnutls_sign_get_name((gnutls_sign_algorithm_t)rc));
	} else {
		char oid[sizeof(info->sig_algorithm)];
		size = sizeof(oid);
		if (gnutls_x509_crt_get_signature_oid(item->crt, oid, &size) >= 0)
			snprintf(info->sig_algorithm, sizeof(info->sig_algorithm), "%s", oid);
	}
	return ST_OK;
nomem:
	st_error_set(err, ST_ERR_INTERNAL, "out of memory");
	return ST_E_NOMEM;
}

void st_x509_info_release(struct st_x509_info *info)
{
	size_t i;

	free(info->subject);
	free(info->issuer);
	free(info->serial);
	free(info->cn);
	for (i = 0; i < info->n_san; i++)
		free(info->san[i]);
	free(info->san);
	memset(info, 0, sizeof(*info));
}

/* ---- OpenSSL's canonical names ---- */

static bool canon_space(unsigned c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Append code point cp as UTF-8. */
static int utf8_put(struct st_buf *b, unsigned long cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else if (cp < 0x110000) {
		u[0] = (unsigned char)(0xf0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	} else {
		return ST_E_PARSE;
	}
	return st_buf_add(b, u, n);
}

/* A string value as UTF-8 (as ASN1_STRING_to_UTF8 reads each type). */
static int string_to_utf8(unsigned char tag, const unsigned char *p, size_t n, struct st_buf *u)
{
	size_t i;
	int rc = ST_OK;

	switch (tag) {
	case 0x0c: /* UTF8String: taken as it is, once it is valid */
		for (i = 0; i < n;) {
			unsigned c = p[i];
			size_t k = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
			size_t j;
			if (k == 0 || c > 0xf4 || i + k > n)
				return ST_E_PARSE;
			for (j = 1; j < k; j++)
				if ((p[i + j] & 0xc0) != 0x80)
					return ST_E_PARSE;
			i += k;
		}
		return st_buf_add(u, p, n);
	case 0x13: /* PrintableString */
	case 0x14: /* T61String, read as Latin-1 */
	case 0x16: /* IA5String */
	case 0x1a: /* VisibleString */
		for (i = 0; i < n && rc == ST_OK; i++)
			rc = utf8_put(u, p[i]);
		return rc;
	case 0x1e: /* BMPString: UCS-2 big endian */
		if (n % 2)
			return ST_E_PARSE;
		for (i = 0; i < n && rc == ST_OK; i += 2)
			rc = utf8_put(u, ((unsigned long)p[i] << 8) | p[i + 1]);
		return rc;
	case 0x1c: /* UniversalString: UCS-4 big endian */
		if (n % 4)
			return ST_E_PARSE;
		for (i = 0; i < n && rc == ST_OK; i += 4)
			rc = utf8_put(u, ((unsigned long)p[i] << 24) |
			                     ((unsigned long)p[i + 1] << 16) |
			                     ((unsigned long)p[i + 2] << 8) | p[i + 3]);
		return rc;
	}
	return ST_E_UNSUPPORTED;
}

/* Append a DER header: tag and definite length. */
static int der_header(struct st_buf *b, unsigned char tag, size_t len)
{
	unsigned char h[6];
	size_t n = 0;

	h[n++] = tag;
	if (len < 0x80) {
		h[n++] = (unsigned char)len;
	} else if (len < 0x100) {
		h[n++] = 0x81;
		h[n++] = (unsigned char)len;
	} else if (len < 0x10000) {
		h[n++] = 0x82;
		h[n++] = (unsigned char)(len >> 8);
		h[n++] = (unsigned char)len;
	} else if (len < 0x1000000) {
		h[n++] = 0x83;
		h[n++] = (unsigned char)(len >> 16);
		h[n++] = (unsigned char)(len >> 8);
		h[n++] = (unsigned char)len;
	} else {
		return ST_E_TOOBIG;
	}
	return st_buf_add(b, h, n);
}

/* One AttributeTypeAndValue in canonical form, appended to out. */
static int canon_ava(const unsigned char *p, size_t avail, struct st_buf *out)
{
	struct st_buf u, v;
	size_t hdr, total, oid_total, vhdr, vtotal, i, start, end;
	const unsigned char *val;
	bool space = false;
	int rc;

	if (der_tlv(p, avail, &hdr, &total) || p[0] != 0x30)
		return ST_E_PARSE;
	p += hdr;
	avail = total - hdr;
	if (der_tlv(p, avail, &hdr, &oid_total) || p[0] != 0x06)
		return ST_E_PARSE;
	if (der_tlv(p + oid_total, avail - oid_total, &vhdr, &vtotal) ||
	    oid_total + vtotal != avail || (p[oid_total] & 0x1f) == 0x1f)
		return ST_E_PARSE;
	val = p + oid_total;
	st_buf_init(&u, 65536);
	st_buf_init(&v, 70000);
	rc = string_to_utf8(val[0], val + vhdr, vtotal - vhdr, &u);
	if (rc == ST_E_UNSUPPORTED) {
		/* not a string type: kept as it is */
		rc = st_buf_add(&v, p, avail);
		if (rc == 0)
			rc = der_header(out, 0x30, avail);
		if (rc == 0)
			rc = st_buf_add(out, v.data, v.len);
		goto out;
	}
	if (rc)
		goto out;
	/* trim, collapse white space, lowercase ASCII */
	start = 0;
	end = u.len;
	while (start < end && canon_space(u.data[start]))
		start++;
	while (end > start && canon_space(u.data[end - 1]))
		end--;
	st_buf_reset(&v);
	for (i = start; i < end && rc == 0; i++) {
		unsigned char c = u.data[i];
		if (c >= 0x80) {
			rc = st_buf_add(&v, &c, 1);
			space = false;
		} else if (canon_space(c)) {
			if (!space)
				rc = st_buf_add(&v, " ", 1);
			space = true;
		} else {
			c = (unsigned char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
			rc = st_buf_add(&v, &c, 1);
			space = false;
		}
	}
	if (rc)
		goto out;
	/* SEQUENCE { OID, UTF8String } */
	{
		size_t vlen_hdr = v.len < 0x80 ? 2 : v.len < 0x100 ? 3 : v.len < 0x10000 ? 4 : 5;
		rc = der_header(out, 0x30, oid_total + vlen_hdr + v.len);
		if (rc == 0)
			rc = st_buf_add(out, p, oid_total);
		if (rc == 0)
			rc = der_header(out, 0x0c, v.len);
		if (rc == 0 && v.len)
			rc = st_buf_add(out, v.data, v.len);
	}
out:
	st_buf_release(&u);
	st_buf_release(&v);
	return rc;
}

/* DER order of SET OF elements: bytewise, a prefix first. */
static int der_cmp(const struct st_buf *a, const struct st_buf *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->data, b->data, n);

	return c ? c : (a->len > b->len) - (a->len < b->len);
}

#define CANON_AVAS_MAX 32

int st_x509_name_canon(const unsigned char *dn, size_t len, struct st_buf *out)
{
	size_t hdr, total, avail, shdr, stotal, a_hdr, a_total;
	struct st_buf avas[CANON_AVAS_MAX];
	const unsigned char *p, *q;
	size_t n_avas, i, j, set_len;
	int rc = ST_OK;

	st_buf_reset(out);
	if (der_tlv(dn, len, &hdr, &total) || dn[0] != 0x30 || total != len)
		return ST_E_PARSE;
	p = dn + hdr;
	avail = total - hdr;
	while (avail > 0) {
		if (der_tlv(p, avail, &shdr, &stotal) || p[0] != 0x31)
			return ST_E_PARSE;
		q = p + shdr;
		n_avas = 0;
		for (i = shdr; i < stotal; i += a_total) {
			if (n_avas >= CANON_AVAS_MAX || der_tlv(q, stotal - i, &a_hdr, &a_total)) {
				rc = ST_E_PARSE;
				break;
			}
			st_buf_init(&avas[n_avas], 1 << 20);
			rc = canon_ava(q, a_total, &avas[n_avas++]);
			if (rc)
				break;
			q += a_total;
		}
		if (rc == 0) {
			/* a multi-valued RDN is a SET OF: DER sorts its elements */
			for (i = 1; i < n_avas; i++)
				for (j = i; j > 0 && der_cmp(&avas[j - 1], &avas[j]) > 0; j--) {
					struct st_buf t = avas[j];
					avas[j] = avas[j - 1];
					avas[j - 1] = t;
				}
			for (set_len = 0, i = 0; i < n_avas; i++)
				set_len += avas[i].len;
			rc = der_header(out, 0x31, set_len);
			for (i = 0; i < n_avas && rc == 0; i++)
				rc = st_buf_add(out, avas[i].data, avas[i].len);
		}
		for (i = 0; i < n_avas; i++)
			st_buf_release(&avas[i]);
		if (rc)
			return rc == ST_E_NOMEM ? rc : ST_E_PARSE;
		p += stotal;
		avail -= stotal;
	}
	return ST_OK;
}

unsigned long st_x509_name_hash(const struct st_buf *canon)
{
	unsigned char md[20];

	if (gnutls_hash_fast(GNUTLS_DIG_SHA1, canon->data ? canon->data : (const unsigned char *)"",
	                     canon->len, md) < 0)
		return 0;
	return (unsigned long)md[0] | ((unsigned long)md[1] << 8) | ((unsigned long)md[2] << 16) |
	       ((unsigned long)md[3] << 24);
}

int st_x509_item_pem(const struct st_x509_item *item, struct st_buf *out)
{
	gnutls_datum_t pem = {NULL, 0};
	int rc;

	st_buf_reset(out);
	if (item->kind != ST_X509_CERT)
		return ST_E_INVALID;
	if (gnutls_pem_base64_encode2("CERTIFICATE", &item->der, &pem) < 0)
		return ST_E_CRYPTO;
	rc = st_buf_add(out, pem.data, pem.size);
	gnutls_free(pem.data);
	return rc;
}

/* ---- a throwaway PKI ---- */

static int new_key(gnutls_x509_privkey_t *k)
{
	if (gnutls_x509_privkey_init(k) < 0)
		return -1;
	if (gnutls_x509_privkey_generate(*k, GNUTLS_PK_ECDSA,
	                                 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0) {
		gnutls_x509_privkey_deinit(*k);
		*k = NULL;
		return -1;
	}
	return 0;
}

/* The fields every certificate here has: version, serial, validity, CN, key, key id. */
static int new_crt(gnutls_x509_crt_t *c, gnutls_x509_privkey_t k, const char *cn, int days)
{
	unsigned char serial[16], id[64];
	size_t id_len = sizeof(id);
	time_t now = time(NULL);

	if (gnutls_x509_crt_init(c) < 0)
		return -1;
	if (gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)) < 0)
		return -1;
	serial[0] &= 0x7f; /* a positive INTEGER */
	serial[0] |= 0x01;
	if (gnutls_x509_crt_set_version(*c, 3) < 0 ||
	    gnutls_x509_crt_set_serial(*c, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(*c, now - 3600) < 0 ||
	    gnutls_x509_crt_set_expiration_time(*c, now + (time_t)days * 86400) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(*c, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
	                                  (unsigned)strlen(cn)) < 0 ||
	    gnutls_x509_crt_set_key(*c, k) < 0 ||
	    gnutls_x509_privkey_get_key_id(k, GNUTLS_KEYID_USE_SHA1, id, &id_len) < 0 ||
	    gnutls_x509_crt_set_subject_key_id(*c, id, id_len) < 0)
		return -1;
	return 0;
}

static int add_pem(gnutls_x509_crt_t c, struct st_buf *out)
{
	gnutls_datum_t d = {NULL, 0};
	int rc;

	if (gnutls_x509_crt_export2(c, GNUTLS_X509_FMT_PEM, &d) < 0)
		return -1;
	rc = st_buf_add(out, d.data, d.size);
	gnutls_free(d.data);
	return rc;
}

int st_x509_make_throwaway(const char *const *names, size_t n_names, int days,
                           struct st_buf *ca_pem, struct st_buf *chain_pem,
                           struct st_buf *key_pem, struct st_error *err)
{
	gnutls_x509_privkey_t ca_key = NULL, key = NULL;
	gnutls_x509_crt_t ca = NULL, crt = NULL;
	gnutls_datum_t d = {NULL, 0};
	unsigned char id[64], ip[16];
	size_t id_len = sizeof(id), i;
	const char *what = "a key";
	int rc = ST_E_CRYPTO;

	st_buf_reset(ca_pem);
	st_buf_reset(chain_pem);
	st_buf_reset(key_pem);
	if (!n_names || n_names > 16) {
		st_error_set(err, ST_ERR_USAGE, "a throwaway certificate needs 1 to 16 names");
		return ST_E_INVALID;
	}
	if (new_key(&ca_key) || new_key(&key))
		goto out;
	what = "the CA certificate";
	if (new_crt(&ca, ca_key, "smtptls throwaway CA", days) ||
	    gnutls_x509_crt_set_basic_constraints(ca, 1, 0) < 0 ||
	    gnutls_x509_crt_set_key_usage(ca, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN) < 0 ||
	    gnutls_x509_crt_sign2(ca, ca, ca_key, GNUTLS_DIG_SHA256, 0) < 0)
		goto out;
	what = "the server certificate";
	if (new_crt(&crt, key, names[0], days) ||
	    gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
	    gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0 ||
	    gnutls_x509_privkey_get_key_id(ca_key, GNUTLS_KEYID_USE_SHA1, id, &id_len) < 0 ||
	    gnutls_x509_crt_set_authority_key_id(crt, id, id_len) < 0)
		goto out;
	for (i = 0; i < n_names; i++) {
		int r;
		if (inet_pton(AF_INET, names[i], ip) == 1)
			r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4,
			                                         GNUTLS_FSAN_APPEND);
		else if (inet_pton(AF_INET6, names[i], ip) == 1)
			r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 16,
			                                         GNUTLS_FSAN_APPEND);
		else
			r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, names[i],
			                                         (unsigned)strlen(names[i]),
			                                         GNUTLS_FSAN_APPEND);
		if (r < 0)
			goto out;
	}
	if (gnutls_x509_crt_sign2(crt, ca, ca_key, GNUTLS_DIG_SHA256, 0) < 0)
		goto out;
	what = "the PEM";
	if (add_pem(ca, ca_pem) || add_pem(crt, chain_pem) || add_pem(ca, chain_pem) ||
	    gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN,
	                                      &d) < 0 ||
	    st_buf_add(key_pem, d.data, d.size))
		goto out;
	rc = ST_OK;
out:
	if (d.data) {
		explicit_bzero(d.data, d.size);
		gnutls_free(d.data);
	}
	if (rc)
		st_error_set(err, ST_ERR_INTERNAL, "cannot make %s of the throwaway PKI", what);
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (ca)
		gnutls_x509_crt_deinit(ca);
	if (key)
		gnutls_x509_privkey_deinit(key);
	if (ca_key)
		gnutls_x509_privkey_deinit(ca_key);
	return rc;
}
