/* revoke.c: revocation of certificates: CRLs from files or fetched over HTTP, and OCSP */
#include "config.h"

#include "revoke.h"
#include "x509-gnutls.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/ocsp.h>

#include "http.h"

#define CRL_FETCH_MAX     (10u * 1024 * 1024) /* default cap of a fetched CRL */
#define OCSP_FETCH_MAX    (64u * 1024)        /* default cap of an OCSP response */
#define FETCH_TIMEOUT_MS  10000L
#define SET_MAX_CRLS      4096 /* CRLs kept in one set */
#define SET_MAX_FAILS     256  /* fetch failures kept in one set */
#define SET_MAX_URLS      1024 /* URLs remembered as already fetched */
#define CDP_MAX_SEQ       16   /* distribution points looked at in one certificate */
#define CDP_MAX_HTTP      4    /* http(s) distribution points fetched per certificate */
#define URL_MAX           1024
#define OCSP_MAX_SINGLES  64  /* single responses looked at in one OCSP response */
#define OCSP_FUTURE_SLACK 300 /* seconds an OCSP thisUpdate may be ahead of our clock */
#define OCSP_MAX_AGE (7 * 86400) /* oldest response taken without nextUpdate or nonce */

#define OID_IDP        "2.5.29.28"
#define OID_DELTA_CRL  "2.5.29.27"
#define OID_OCSP_BASIC "1.3.6.1.5.5.7.48.1.1"

struct crl_item {
	gnutls_x509_crl_t crl;
	gnutls_datum_t der; /* owned (gnutls_free): the DER the entry reasons are read from */
	char *source;       /* owned: file path, URL, or "URL (cached in PATH)" */
};

struct fetch_fail {
	gnutls_datum_t issuer_dn; /* owned: raw issuer DN of the certificate the fetch was for */
	char *detail;             /* owned: "cannot fetch CRL from URL: reason" */
};

struct st_crl_set {
	struct crl_item *crls;
	size_t n_crls, cap_crls;
	struct fetch_fail *fails;
	size_t n_fails, cap_fails;
	char **urls; /* owned: URLs already fetched (or found in the cache) */
	size_t n_urls, cap_urls;
};

/* ---- small helpers ---- */

static void iso(time_t t, char *out, size_t size)
{
	if (t == (time_t)-1 || st_time_iso(t, out, size) != 0)
		snprintf(out, size, "(unknown time)");
}

static void res_init(struct st_rev_result *res, const char *source)
{
	memset(res, 0, sizeof(*res));
	res->status = ST_REV_UNAVAILABLE;
	res->reason = -1;
	snprintf(res->source, sizeof(res->source), "%s", source);
}

static void res_detail(struct st_rev_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Set the detail, sanitised: it holds URLs, paths and names from certificates. */
static void res_detail(struct st_rev_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
	st_sanitize(res->detail);
}

/* A subject or issuer DN for messages (RFC 4514, sanitised). */
static void crt_dn(gnutls_x509_crt_t crt, bool issuer, char *out, size_t size)
{
	gnutls_datum_t dn = {NULL, 0};
	int rc;

	rc = issuer ? gnutls_x509_crt_get_issuer_dn3(crt, &dn, 0)
	            : gnutls_x509_crt_get_dn3(crt, &dn, 0);
	if (rc < 0 || !dn.data)
		snprintf(out, size, "(unreadable name)");
	else
		snprintf(out, size, "%.*s", (int)dn.size, (const char *)dn.data);
	gnutls_free(dn.data);
	st_sanitize(out);
}

static bool datum_eq(const gnutls_datum_t *a, const gnutls_datum_t *b)
{
	return a->size == b->size && (a->size == 0 || memcmp(a->data, b->data, a->size) == 0);
}

/* Grow an array of elem-sized items to hold one more, up to max items. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem, size_t max)
{
	size_t ncap;
	void *p;

	if (n >= max)
		return ST_E_TOOBIG;
	if (n < *cap)
		return ST_OK;
	ncap = *cap ? *cap * 2 : 8;
	if (ncap > max)
		ncap = max;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return ST_E_NOMEM;
	*arr = p;
	*cap = ncap;
	return ST_OK;
}

static bool url_is_http(const char *url, bool https_too)
{
	return strncasecmp(url, "http://", 7) == 0 ||
	       (https_too && strncasecmp(url, "https://", 8) == 0);
}

/* ---- names ---- */

const char *st_rev_status_name(enum st_rev_status s)
{
	switch (s) {
	case ST_REV_NOT_CHECKED:
		return "not_checked";
	case ST_REV_GOOD:
		return "good";
	case ST_REV_REVOKED:
		return "revoked";
	case ST_REV_UNKNOWN:
		return "unknown";
	case ST_REV_UNAVAILABLE:
		return "unavailable";
	}
	return "unavailable";
}

const char *st_rev_reason_name(int reason)
{
	static const char *const names[] = {
	    "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
	    "superseded",    "cessationOfOperation", "certificateHold", NULL,
	    "removeFromCRL", "privilegeWithdrawn",   "aACompromise",
	};

	if (reason == -1)
		return "unspecified";
	if (reason < 0 || (size_t)reason >= sizeof(names) / sizeof(names[0]) || !names[reason])
		return "unknown";
	return names[reason];
}

/* ---- DER walking, for what GnuTLS has no API for ---- */

/*
 * The header and total length of the DER TLV at p (at most avail bytes).
 * 0 and *hdr, *total set; -1 when malformed or running past avail. Only
 * low tag numbers and definite lengths, as DER for X.509 needs.
 */
static int tlv(const unsigned char *p, size_t avail, size_t *hdr, size_t *total)
{
	size_t n, i, k, len = 0;

	if (avail < 2 || (p[0] & 0x1f) == 0x1f)
		return -1;
	if (p[1] < 0x80) {
		len = p[1];
		n = 2;
	} else {
		k = p[1] & 0x7f;
		if (k == 0 || k > 4 || avail < 2 + k)
			return -1;
		for (i = 0; i < k; i++)
			len = (len << 8) | p[2 + i];
		n = 2 + k;
	}
	if (len > avail - n)
		return -1;
	*hdr = n;
	*total = n + len;
	return 0;
}

/* An INTEGER's content bytes without redundant leading zero bytes. */
static void int_trim(const unsigned char **p, size_t *n)
{
	while (*n > 1 && (*p)[0] == 0x00)
		(*p)++, (*n)--;
}

/* The reasonCode in one CRL entry's extensions (SEQUENCE OF Extension content). */
static int entry_reason(const unsigned char *p, size_t avail, int *reason)
{
	static const unsigned char oid_reason[] = {0x06, 0x03, 0x55, 0x1d, 0x15}; /* 2.5.29.21 */
	size_t hdr, total, h2, t2;

	*reason = -1;
	while (avail > 0) {
		const unsigned char *e;
		size_t eavail;

		if (tlv(p, avail, &hdr, &total) || p[0] != 0x30)
			return ST_E_PARSE;
		e = p + hdr;
		eavail = total - hdr;
		p += total;
		avail -= total;
		/* extnID */
		if (tlv(e, eavail, &h2, &t2) || e[0] != 0x06)
			return ST_E_PARSE;
		if (t2 != sizeof(oid_reason) || memcmp(e, oid_reason, t2) != 0)
			continue;
		e += t2;
		eavail -= t2;
		/* critical BOOLEAN DEFAULT FALSE */
		if (eavail > 0 && e[0] == 0x01) {
			if (tlv(e, eavail, &h2, &t2))
				return ST_E_PARSE;
			e += t2;
			eavail -= t2;
		}
		/* extnValue OCTET STRING holding an ENUMERATED */
		if (tlv(e, eavail, &h2, &t2) || e[0] != 0x04)
			return ST_E_PARSE;
		e += h2;
		eavail = t2 - h2;
		if (tlv(e, eavail, &h2, &t2) || e[0] != 0x0a || t2 - h2 != 1 || e[h2] > 10 ||
		    e[h2] == 7)
			return ST_E_PARSE;
		*reason = e[h2];
		return 0;
	}
	return 0;
}

int st_crl_entry_reason(const unsigned char *der, size_t len, const unsigned char *serial,
                        size_t serial_len, int *reason)
{
	const unsigned char *p = der, *want = serial;
	size_t avail = len, hdr, total, want_len = serial_len, i;

	*reason = -1;
	if (!der || !serial || serial_len == 0)
		return ST_E_INVALID;
	int_trim(&want, &want_len);
	/* CertificateList, then tbsCertList */
	for (i = 0; i < 2; i++) {
		if (tlv(p, avail, &hdr, &total) || p[0] != 0x30)
			return ST_E_PARSE;
		p += hdr;
		avail = total - hdr;
	}
	/* version INTEGER OPTIONAL */
	if (avail > 0 && p[0] == 0x02) {
		if (tlv(p, avail, &hdr, &total))
			return ST_E_PARSE;
		p += total;
		avail -= total;
	}
	/* signature AlgorithmIdentifier, issuer Name */
	for (i = 0; i < 2; i++) {
		if (tlv(p, avail, &hdr, &total) || p[0] != 0x30)
			return ST_E_PARSE;
		p += total;
		avail -= total;
	}
	/* thisUpdate Time, nextUpdate Time OPTIONAL */
	for (i = 0; i < 2; i++) {
		if (avail > 0 && (p[0] == 0x17 || p[0] == 0x18)) {
			if (tlv(p, avail, &hdr, &total))
				return ST_E_PARSE;
			p += total;
			avail -= total;
		} else if (i == 0) {
			return ST_E_PARSE;
		}
	}
	/* revokedCertificates SEQUENCE OF SEQUENCE OPTIONAL */
	if (avail == 0 || p[0] != 0x30)
		return 1;
	if (tlv(p, avail, &hdr, &total))
		return ST_E_PARSE;
	p += hdr;
	avail = total - hdr;
	while (avail > 0) {
		const unsigned char *e, *s;
		size_t eavail, slen;

		if (tlv(p, avail, &hdr, &total) || p[0] != 0x30)
			return ST_E_PARSE;
		e = p + hdr;
		eavail = total - hdr;
		p += total;
		avail -= total;
		/* userCertificate CertificateSerialNumber */
		if (tlv(e, eavail, &hdr, &total) || e[0] != 0x02 || total == hdr)
			return ST_E_PARSE;
		s = e + hdr;
		slen = total - hdr;
		e += total;
		eavail -= total;
		int_trim(&s, &slen);
		if (slen != want_len || memcmp(s, want, slen) != 0)
			continue;
		/* revocationDate Time */
		if (tlv(e, eavail, &hdr, &total) || (e[0] != 0x17 && e[0] != 0x18))
			return ST_E_PARSE;
		e += total;
		eavail -= total;
		if (eavail == 0)
			return 0; /* no crlEntryExtensions */
		if (tlv(e, eavail, &hdr, &total) || e[0] != 0x30)
			return ST_E_PARSE;
		return entry_reason(e + hdr, total - hdr, reason);
	}
	return 1;
}

/* ---- CRL sets ---- */

struct st_crl_set *st_crl_set_new(void)
{
	return calloc(1, sizeof(struct st_crl_set));
}

void st_crl_set_free(struct st_crl_set *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n_crls; i++) {
		gnutls_x509_crl_deinit(s->crls[i].crl);
		gnutls_free(s->crls[i].der.data);
		free(s->crls[i].source);
	}
	for (i = 0; i < s->n_fails; i++) {
		gnutls_free(s->fails[i].issuer_dn.data);
		free(s->fails[i].detail);
	}
	for (i = 0; i < s->n_urls; i++)
		free(s->urls[i]);
	free(s->crls);
	free(s->fails);
	free(s->urls);
	free(s);
}

/* Add crl (ownership passes to the set, also on failure) with a copy of source. */
static int set_add(struct st_crl_set *s, gnutls_x509_crl_t crl, const char *source)
{
	struct crl_item *it;
	int rc;

	rc = grow((void **)&s->crls, &s->cap_crls, s->n_crls, sizeof(*s->crls), SET_MAX_CRLS);
	if (rc) {
		gnutls_x509_crl_deinit(crl);
		return rc;
	}
	it = &s->crls[s->n_crls];
	memset(it, 0, sizeof(*it));
	it->crl = crl;
	it->source = strdup(source);
	if (!it->source || gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_DER, &it->der) < 0) {
		gnutls_x509_crl_deinit(crl);
		gnutls_free(it->der.data);
		free(it->source);
		return ST_E_NOMEM;
	}
	s->n_crls++;
	return ST_OK;
}

/* Remember a failed fetch for certificates of issuer_dn. Out of room: dropped. */
static void set_fail(struct st_crl_set *s, const gnutls_datum_t *issuer_dn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_fail(struct st_crl_set *s, const gnutls_datum_t *issuer_dn, const char *fmt, ...)
{
	struct fetch_fail *f;
	char buf[512];
	va_list ap;

	if (grow((void **)&s->fails, &s->cap_fails, s->n_fails, sizeof(*s->fails), SET_MAX_FAILS))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	st_sanitize(buf);
	f = &s->fails[s->n_fails];
	f->detail = strdup(buf);
	f->issuer_dn.size = issuer_dn->size;
	f->issuer_dn.data = gnutls_malloc(issuer_dn->size ? issuer_dn->size : 1);
	if (!f->detail || !f->issuer_dn.data) {
		free(f->detail);
		gnutls_free(f->issuer_dn.data);
		return;
	}
	if (issuer_dn->size)
		memcpy(f->issuer_dn.data, issuer_dn->data, issuer_dn->size);
	s->n_fails++;
}

/* Has url been fetched already? If not, remember it (false when out of room). */
static bool set_seen_url(struct st_crl_set *s, const char *url)
{
	size_t i;
	char *copy;

	for (i = 0; i < s->n_urls; i++)
		if (strcmp(s->urls[i], url) == 0)
			return true;
	if (grow((void **)&s->urls, &s->cap_urls, s->n_urls, sizeof(*s->urls), SET_MAX_URLS))
		return false;
	copy = strdup(url);
	if (copy)
		s->urls[s->n_urls++] = copy;
	return false;
}

/*
 * Parse data as one DER CRL or as PEM with X509 CRL blocks. On success
 * *crls (gnutls_free the array, deinit each) holds *n >= 1 CRLs. On failure
 * why says why.
 */
static int parse_crls(const unsigned char *data, size_t len, gnutls_x509_crl_t **crls, unsigned *n,
                      char *why, size_t whysize)
{
	gnutls_datum_t d = {(unsigned char *)data, (unsigned)len};
	char g[128];
	int rc;

	*crls = NULL;
	*n = 0;
	if (len == 0) {
		snprintf(why, whysize, "empty, no CRL found");
		return ST_E_PARSE;
	}
	if (len > UINT32_MAX) {
		snprintf(why, whysize, "too large");
		return ST_E_TOOBIG;
	}
	if (memmem(data, len, "-----BEGIN X509 CRL-----", 24)) {
		rc = gnutls_x509_crl_list_import2(crls, n, &d, GNUTLS_X509_FMT_PEM, 0);
		if (rc < 0 || *n == 0) {
			snprintf(why, whysize, "malformed PEM CRL: %s",
			         rc < 0 ? st_gnutls_reason(rc, g, sizeof(g)) : "no CRL found");
			return ST_E_PARSE;
		}
		return ST_OK;
	}
	if (memmem(data, len, "-----BEGIN", 10)) {
		snprintf(why, whysize, "no X509 CRL block found");
		return ST_E_PARSE;
	}
	*crls = gnutls_malloc(sizeof(**crls));
	if (!*crls) {
		snprintf(why, whysize, "out of memory");
		return ST_E_NOMEM;
	}
	if (gnutls_x509_crl_init(&(*crls)[0]) < 0) {
		gnutls_free(*crls);
		*crls = NULL;
		snprintf(why, whysize, "out of memory");
		return ST_E_NOMEM;
	}
	rc = gnutls_x509_crl_import((*crls)[0], &d, GNUTLS_X509_FMT_DER);
	if (rc < 0) {
		gnutls_x509_crl_deinit((*crls)[0]);
		gnutls_free(*crls);
		*crls = NULL;
		snprintf(why, whysize, "not a DER or PEM CRL: %s",
		         st_gnutls_reason(rc, g, sizeof(g)));
		return ST_E_PARSE;
	}
	*n = 1;
	return ST_OK;
}

static void free_crls(gnutls_x509_crl_t *crls, unsigned n, unsigned from)
{
	unsigned i;

	for (i = from; i < n; i++)
		gnutls_x509_crl_deinit(crls[i]);
	gnutls_free(crls);
}

int st_crl_set_add_file(struct st_crl_set *s, const char *path, struct st_error *err)
{
	gnutls_x509_crl_t *crls = NULL;
	struct st_buf b;
	char why[256], shown[256];
	unsigned n = 0, i = 0;
	int rc;

	st_buf_init(&b, ST_INPUT_MAX);
	snprintf(shown, sizeof(shown), "%s", path);
	st_sanitize(shown);
	rc = st_read_file(path, &b, err);
	if (rc)
		goto out;
	rc = parse_crls(b.data, b.len, &crls, &n, why, sizeof(why));
	if (rc) {
		st_error_set(err, rc == ST_E_NOMEM ? ST_ERR_INTERNAL : ST_ERR_INPUT,
		             "cannot read CRL '%s': %s", shown, why);
		goto out;
	}
	for (i = 0; i < n; i++) {
		rc = set_add(s, crls[i], path);
		if (rc) {
			i++;
			st_error_set(err, rc == ST_E_NOMEM ? ST_ERR_INTERNAL : ST_ERR_INPUT,
			             "cannot add CRL '%s': %s", shown,
			             rc == ST_E_NOMEM ? "out of memory" : "too many CRLs");
			goto out;
		}
	}
out:
	if (crls)
		free_crls(crls, n, i);
	st_buf_release(&b);
	return rc;
}

/* ---- fetching and the cache ---- */

/* mkdir -p with mode 0700 for what is made (a default such as ~/.cache/smtptls/crl). */
static int mkdirs(const char *dir)
{
	char buf[4096];
	size_t n = strlen(dir), i;

	if (n == 0 || n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, dir, n + 1);
	for (i = 1; i < n; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return -1;
		buf[i] = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Make sure dir exists, is a directory of ours and is not writable by others. */
static int cache_dir_ready(const char *dir, struct st_error *err)
{
	struct stat st;

	if (mkdirs(dir) != 0) {
		st_error_set(err, ST_ERR_INPUT, "cannot create cache directory '%s': %s", dir,
		             strerror(errno));
		return ST_E_IO;
	}
	if (stat(dir, &st) != 0) {
		st_error_set(err, ST_ERR_INPUT, "cannot use cache directory '%s': %s", dir,
		             strerror(errno));
		return ST_E_IO;
	}
	if (!S_ISDIR(st.st_mode)) {
		st_error_set(err, ST_ERR_INPUT, "cannot use cache directory '%s': not a directory",
		             dir);
		return ST_E_IO;
	}
	/* a CRL planted by someone else could be an older, still valid one: a replay */
	if (st.st_uid != geteuid() || (st.st_mode & 022)) {
		st_error_set(err, ST_ERR_INPUT,
		             "cannot use cache directory '%s': owned or writable by another user",
		             dir);
		return ST_E_IO;
	}
	return ST_OK;
}

/* dir/<sha256 of url in hex>.crl */
static int cache_path(const char *dir, const char *url, char *out, size_t size)
{
	unsigned char md[32];
	char hex[65];
	int n;

	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, url, strlen(url), md) < 0)
		return ST_E_CRYPTO;
	st_hex(md, sizeof(md), false, 0, hex);
	n = snprintf(out, size, "%s/%s.crl", dir, hex);
	return n < 0 || (size_t)n >= size ? ST_E_TOOBIG : ST_OK;
}

/* Is crl from issuer_dn and current at now, with a nextUpdate? */
static bool crl_current(gnutls_x509_crl_t crl, const gnutls_datum_t *issuer_dn, time_t now)
{
	gnutls_datum_t dn = {NULL, 0};
	time_t this_update = gnutls_x509_crl_get_this_update(crl);
	time_t next_update = gnutls_x509_crl_get_next_update(crl);
	bool ok;

	if (gnutls_x509_crl_get_raw_issuer_dn(crl, &dn) < 0)
		return false;
	ok = datum_eq(&dn, issuer_dn) && this_update != (time_t)-1 && this_update <= now &&
	     next_update != (time_t)-1 && now < next_update;
	gnutls_free(dn.data);
	return ok;
}

/*
 * A usable cached CRL for url: parsed again, from the right issuer, current.
 * Its signature is checked by st_crl_check like any other. Returns the CRL
 * (owned by the caller) or NULL.
 */
static gnutls_x509_crl_t cache_load(const char *path, const gnutls_datum_t *issuer_dn, time_t now,
                                    size_t max)
{
	gnutls_x509_crl_t crl = NULL;
	gnutls_datum_t d;
	struct st_buf b;
	unsigned char chunk[16384];
	struct stat st;
	ssize_t r;
	int fd;

	st_buf_init(&b, max);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uintmax_t)st.st_size > max)
		goto out;
	for (;;) {
		r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto out;
		if (r == 0)
			break;
		if (st_buf_add(&b, chunk, (size_t)r))
			goto out;
	}
	if (b.len == 0 || gnutls_x509_crl_init(&crl) < 0)
		goto out;
	d.data = b.data;
	d.size = (unsigned)b.len;
	if (gnutls_x509_crl_import(crl, &d, GNUTLS_X509_FMT_DER) < 0 ||
	    !crl_current(crl, issuer_dn, now)) {
		gnutls_x509_crl_deinit(crl);
		crl = NULL;
	}
out:
	close(fd);
	st_buf_release(&b);
	return crl;
}

/* Write crl to path through a temporary file in the same directory. Failures are ignored. */
static void cache_store(const char *dir, const char *path, gnutls_x509_crl_t crl)
{
	gnutls_datum_t der = {NULL, 0};
	char tmp[4096];
	size_t off = 0;
	ssize_t w;
	int fd = -1, n;

	n = snprintf(tmp, sizeof(tmp), "%s/.tmp.XXXXXX", dir);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return;
	if (gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_DER, &der) < 0)
		return;
	fd = mkstemp(tmp);
	if (fd < 0)
		goto out;
	while (off < der.size) {
		w = write(fd, der.data + off, der.size - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
out:
	gnutls_free(der.data);
}

/* Is the CRL signed by issuer's key? Times are not judged here (st_crl_check does). */
static bool crl_signed_by(gnutls_x509_crl_t crl, gnutls_x509_crt_t issuer)
{
	unsigned v = 0;
	gnutls_x509_crt_t cas[1] = {issuer};
	unsigned mask_time = GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED |
	                     GNUTLS_CERT_REVOCATION_DATA_SUPERSEDED |
	                     GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE;

	if (gnutls_x509_crl_verify(crl, cas, 1, GNUTLS_VERIFY_DISABLE_TIME_CHECKS, &v) < 0)
		return false;
	return !(v & ~(mask_time | GNUTLS_CERT_INVALID)) &&
	       (!(v & GNUTLS_CERT_INVALID) || (v & mask_time));
}

/*
 * Fetch one CRL URL (or take it from the cache) for a certificate of
 * issuer. A CRL is kept, and cached, only when issuer's key signed it: a
 * forged one served once must not sit in the cache and hide the real one.
 */
static int fetch_one(struct st_crl_set *s, const char *url, const gnutls_datum_t *issuer_dn,
                     gnutls_x509_crt_t issuer, time_t now, size_t max, long timeout_ms,
                     const char *cache_dir)
{
	gnutls_x509_crl_t *crls = NULL, crl;
	gnutls_datum_t dn = {NULL, 0};
	struct st_error herr;
	struct st_buf body;
	char path[4096], source[URL_MAX + 4200], why[256];
	unsigned n = 0, i = 0;
	bool have_path = false;
	int rc = ST_OK;

	st_buf_init(&body, max);
	if (cache_dir && cache_path(cache_dir, url, path, sizeof(path)) == ST_OK) {
		have_path = true;
		crl = cache_load(path, issuer_dn, now, max);
		if (crl && !crl_signed_by(crl, issuer)) {
			/* not the issuer's: drop it and fetch again */
			gnutls_x509_crl_deinit(crl);
			crl = NULL;
			unlink(path);
		}
		if (crl) {
			snprintf(source, sizeof(source), "%s (cached in %s)", url, path);
			rc = set_add(s, crl, source);
			goto out;
		}
	}
	st_error_clear(&herr);
	if (st_http_get(url, max, timeout_ms, &body, &herr) != 0) {
		set_fail(s, issuer_dn, "cannot fetch CRL from %s", herr.msg);
		goto out;
	}
	if (parse_crls(body.data, body.len, &crls, &n, why, sizeof(why)) != 0) {
		set_fail(s, issuer_dn, "cannot fetch CRL from %s: %s", url, why);
		goto out;
	}
	for (i = 0; i < n; i++) {
		crl = crls[i];
		crls[i] = NULL;
		if (gnutls_x509_crl_get_raw_issuer_dn(crl, &dn) < 0 || !datum_eq(&dn, issuer_dn)) {
			set_fail(s, issuer_dn,
			         "cannot fetch CRL from %s: it is not issued by the certificate's "
			         "issuer",
			         url);
			gnutls_x509_crl_deinit(crl);
		} else if (!crl_signed_by(crl, issuer)) {
			set_fail(s, issuer_dn,
			         "cannot fetch CRL from %s: its signature does not verify with the "
			         "issuer's key",
			         url);
			gnutls_x509_crl_deinit(crl);
		} else {
			if (have_path && n == 1 && crl_current(crl, issuer_dn, now))
				cache_store(cache_dir, path, crl);
			rc = set_add(s, crl, url);
		}
		gnutls_free(dn.data);
		dn.data = NULL;
		if (rc == ST_E_NOMEM) {
			i++;
			goto out;
		}
		rc = ST_OK; /* a full set is not an error of the fetch */
	}
out:
	if (crls)
		free_crls(crls, n, i);
	st_buf_release(&body);
	return rc;
}

int st_crl_set_fetch(struct st_crl_set *s, gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer,
                     time_t now, const struct st_fetch_params *fp, struct st_error *err)
{
	gnutls_datum_t issuer_dn = {NULL, 0};
	long timeout_ms = fp && fp->timeout_ms > 0 ? fp->timeout_ms : FETCH_TIMEOUT_MS;
	size_t max = fp && fp->max_size > 0 ? fp->max_size : CRL_FETCH_MAX;
	const char *cache_dir = fp ? fp->cache_dir : NULL;
	char url[URL_MAX + 1];
	unsigned seq, n_cdp = 0, n_http = 0;
	int rc;

	if (!s || !cert || !issuer) {
		st_error_set(err, ST_ERR_INTERNAL, "st_crl_set_fetch: no set or certificate");
		return ST_E_INVALID;
	}
	if (gnutls_x509_crt_get_raw_issuer_dn(cert, &issuer_dn) < 0) {
		st_error_set(err, ST_ERR_INPUT, "cannot read the certificate's issuer name");
		return ST_E_PARSE;
	}
	if (cache_dir) {
		rc = cache_dir_ready(cache_dir, err);
		if (rc) {
			/* also kept for st_crl_check, should the caller go on */
			set_fail(s, &issuer_dn, "cannot fetch CRL: %s",
			         err ? err->msg : "bad cache");
			goto out;
		}
	}
	rc = ST_OK;
	for (seq = 0; seq < CDP_MAX_SEQ && n_http < CDP_MAX_HTTP; seq++) {
		size_t size = sizeof(url) - 1;
		int type;

		memset(url, 0, sizeof(url));
		type = gnutls_x509_crt_get_crl_dist_points(cert, seq, url, &size, NULL, NULL);
		if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (type == GNUTLS_E_SHORT_MEMORY_BUFFER) {
			n_cdp++;
			continue; /* a URL longer than we take */
		}
		if (type < 0) {
			set_fail(s, &issuer_dn, "cannot read the CRL distribution points");
			break;
		}
		n_cdp++;
		if (type != GNUTLS_SAN_URI || size >= sizeof(url) || memchr(url, 0, size) ||
		    !url_is_http(url, true))
			continue;
		n_http++;
		if (set_seen_url(s, url))
			continue;
		rc = fetch_one(s, url, &issuer_dn, issuer, now, max, timeout_ms, cache_dir);
		if (rc == ST_E_NOMEM) {
			st_error_set(err, ST_ERR_INTERNAL, "cannot fetch CRLs: out of memory");
			goto out;
		}
		rc = ST_OK;
	}
	if (n_http == 0)
		set_fail(s, &issuer_dn, "%s",
		         n_cdp ? "no http or https CRL distribution point in the certificate"
		               : "no CRL distribution point in the certificate");
out:
	gnutls_free(issuer_dn.data);
	return rc;
}

/* ---- checking against CRLs ---- */

enum scope { SCOPE_COVERS, SCOPE_OTHER, SCOPE_UNSUPPORTED };

/*
 * Does a CRL cover cert? Looks at the critical extensions: a delta CRL or
 * an unknown critical extension cannot be used; an issuingDistributionPoint
 * may restrict the CRL to end-entity or CA certificates (the distribution
 * point name itself is not compared). why says what is unsupported.
 */
static enum scope crl_scope(gnutls_x509_crl_t crl, gnutls_x509_crt_t cert, char *why,
                            size_t whysize)
{
	unsigned idx, critical;
	char oid[128];
	size_t oidsize;
	int rc;

	for (idx = 0; idx < 64; idx++) {
		gnutls_datum_t d = {NULL, 0};
		const unsigned char *p;
		size_t avail, hdr, total;
		enum scope sc = SCOPE_COVERS;

		oidsize = sizeof(oid);
		rc = gnutls_x509_crl_get_extension_info(crl, idx, oid, &oidsize, &critical);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (rc < 0) {
			snprintf(why, whysize, "its extensions cannot be read");
			return SCOPE_UNSUPPORTED;
		}
		if (strcmp(oid, OID_DELTA_CRL) == 0) {
			snprintf(why, whysize, "it is a delta CRL");
			return SCOPE_UNSUPPORTED;
		}
		if (strcmp(oid, OID_IDP) != 0) {
			if (critical) {
				snprintf(why, whysize,
				         "it has an unsupported critical extension %.64s", oid);
				return SCOPE_UNSUPPORTED;
			}
			continue;
		}
		if (gnutls_x509_crl_get_extension_data2(crl, idx, &d) < 0) {
			snprintf(why, whysize, "its issuingDistributionPoint cannot be read");
			return SCOPE_UNSUPPORTED;
		}
		p = d.data;
		avail = d.size;
		if (tlv(p, avail, &hdr, &total) || p[0] != 0x30) {
			sc = SCOPE_UNSUPPORTED;
			snprintf(why, whysize, "its issuingDistributionPoint is malformed");
		} else {
			p += hdr;
			avail = total - hdr;
		}
		while (sc == SCOPE_COVERS && avail > 0) {
			bool yes;

			if (tlv(p, avail, &hdr, &total)) {
				sc = SCOPE_UNSUPPORTED;
				snprintf(why, whysize, "its issuingDistributionPoint is malformed");
				break;
			}
			yes = total > hdr && p[hdr] != 0;
			if (p[0] == 0x81 && yes && gnutls_x509_crt_get_ca_status(cert, NULL) == 1)
				sc = SCOPE_OTHER; /* onlyContainsUserCerts */
			else if (p[0] == 0x82 && yes &&
			         gnutls_x509_crt_get_ca_status(cert, NULL) != 1)
				sc = SCOPE_OTHER; /* onlyContainsCACerts */
			else if (p[0] == 0x83 || ((p[0] == 0x84 || p[0] == 0x85) && yes)) {
				sc = SCOPE_UNSUPPORTED;
				snprintf(why, whysize,
				         "it is a partial CRL (onlySomeReasons, indirectCRL or "
				         "attribute certificates)");
			}
			p += total;
			avail -= total;
		}
		gnutls_free(d.data);
		if (sc != SCOPE_COVERS)
			return sc;
	}
	return SCOPE_COVERS;
}

/* Why a CRL signature check failed, in words. */
static const char *crl_verify_why(unsigned v)
{
	if (v & GNUTLS_CERT_SIGNATURE_FAILURE)
		return "signature does not verify";
	if (v & GNUTLS_CERT_SIGNER_NOT_FOUND)
		return "it is not issued by the certificate's issuer";
	if (v & GNUTLS_CERT_SIGNER_NOT_CA)
		return "its issuer is not a CA";
	if (v & GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE)
		return "its issuer's key usage does not allow signing CRLs";
	if (v & GNUTLS_CERT_INSECURE_ALGORITHM)
		return "it is signed with an insecure algorithm";
	return "it is malformed";
}

void st_crl_check(const struct st_crl_set *s, gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer,
                  time_t now, struct st_rev_result *res)
{
	const unsigned mask_time =
	    GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE | GNUTLS_CERT_REVOCATION_DATA_SUPERSEDED;
	const struct crl_item *best = NULL;
	gnutls_datum_t issuer_dn = {NULL, 0};
	gnutls_x509_crl_iter_t iter = NULL;
	unsigned char serial[64], cserial[256];
	size_t serial_len = sizeof(serial), i;
	time_t best_this = 0;
	char problem[256] = "", why[160], t1[32], name[200];
	int rc;

	res_init(res, "crl");
	if (!s || !cert || !issuer) {
		res_detail(res, "no CRL given");
		return;
	}
	if (!gnutls_x509_crt_check_issuer(cert, issuer)) {
		res_detail(res, "the certificate given as issuer did not issue the certificate");
		return;
	}
	if (gnutls_x509_crt_get_serial(cert, serial, &serial_len) < 0 || serial_len == 0) {
		res_detail(res, "cannot read the certificate's serial number");
		return;
	}
	for (i = 0; i < s->n_crls; i++) {
		const struct crl_item *it = &s->crls[i];
		gnutls_x509_crt_t cas[1] = {issuer};
		time_t this_update, next_update;
		unsigned v = 0, bad;
		enum scope sc;

		if (!gnutls_x509_crl_check_issuer(it->crl, issuer))
			continue;
		sc = crl_scope(it->crl, cert, why, sizeof(why));
		if (sc == SCOPE_OTHER)
			continue;
		if (sc == SCOPE_UNSUPPORTED) {
			if (!problem[0])
				snprintf(problem, sizeof(problem), "CRL from %s cannot be used: %s",
				         it->source, why);
			continue;
		}
		rc = gnutls_x509_crl_verify(it->crl, cas, 1, GNUTLS_VERIFY_DISABLE_TIME_CHECKS, &v);
		/* this GnuTLS checks the times against its own clock; ours is 'now' */
		bad = v & ~(mask_time | GNUTLS_CERT_INVALID);
		if (rc < 0 || bad || ((v & GNUTLS_CERT_INVALID) && !(v & mask_time))) {
			if (!problem[0])
				snprintf(problem, sizeof(problem), "CRL from %s: %s", it->source,
				         rc < 0 ? st_gnutls_reason(rc, why, sizeof(why))
				                : crl_verify_why(bad));
			continue;
		}
		this_update = gnutls_x509_crl_get_this_update(it->crl);
		next_update = gnutls_x509_crl_get_next_update(it->crl);
		if (this_update == (time_t)-1 || this_update > now) {
			iso(this_update, t1, sizeof(t1));
			if (!problem[0])
				snprintf(problem, sizeof(problem),
				         "CRL from %s is not valid before %s", it->source, t1);
			continue;
		}
		if (next_update != (time_t)-1 && next_update < now) {
			iso(next_update, t1, sizeof(t1));
			if (!problem[0])
				snprintf(problem, sizeof(problem), "CRL from %s expired at %s",
				         it->source, t1);
			continue;
		}
		if (!best || this_update > best_this) {
			best = it;
			best_this = this_update;
		}
	}

	if (!best) {
		if (problem[0]) {
			res_detail(res, "%s", problem);
			return;
		}
		if (gnutls_x509_crt_get_raw_issuer_dn(cert, &issuer_dn) >= 0) {
			for (i = 0; i < s->n_fails; i++) {
				if (datum_eq(&s->fails[i].issuer_dn, &issuer_dn)) {
					res_detail(res, "%s", s->fails[i].detail);
					gnutls_free(issuer_dn.data);
					return;
				}
			}
			gnutls_free(issuer_dn.data);
		}
		crt_dn(issuer, false, name, sizeof(name));
		res_detail(res, "no CRL from '%s'", name);
		return;
	}

	res->status = ST_REV_GOOD;
	res_detail(res, "CRL from %s", best->source);
	for (;;) {
		size_t clen = sizeof(cserial);
		const unsigned char *a = serial, *b = cserial;
		size_t alen = serial_len;
		time_t when = (time_t)-1;

		rc = gnutls_x509_crl_iter_crt_serial(best->crl, &iter, cserial, &clen, &when);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		/* any error, a serial too long for cserial included, ends the walk:
		 * GnuTLS does not step past an entry it could not return */
		if (rc < 0) {
			res->status = ST_REV_UNAVAILABLE;
			res_detail(res, "CRL from %s: cannot read its entries: %s", best->source,
			           st_gnutls_reason(rc, why, sizeof(why)));
			break;
		}
		int_trim(&a, &alen);
		int_trim(&b, &clen);
		if (alen != clen || memcmp(a, b, alen) != 0)
			continue;
		res->status = ST_REV_REVOKED;
		res->revoked_at = when;
		if (st_crl_entry_reason(best->der.data, best->der.size, serial, serial_len,
		                        &res->reason) != 0)
			res->reason = -1;
		break;
	}
	gnutls_x509_crl_iter_deinit(iter);
}

/* ---- OCSP ---- */

/* Why gnutls_ocsp_resp_verify_direct said no, in words. */
static const char *ocsp_verify_why(unsigned v)
{
	if (v & GNUTLS_OCSP_VERIFY_SIGNATURE_FAILURE)
		return "response signature does not verify";
	if (v & GNUTLS_OCSP_VERIFY_SIGNER_KEYUSAGE_ERROR)
		return "responder certificate lacks the OCSP signing purpose";
	if (v & GNUTLS_OCSP_VERIFY_UNTRUSTED_SIGNER)
		return "responder certificate is not issued by the certificate's issuer";
	if (v & GNUTLS_OCSP_VERIFY_SIGNER_NOT_FOUND)
		return "response signer not found";
	if (v & GNUTLS_OCSP_VERIFY_INSECURE_ALGORITHM)
		return "response is signed with an insecure algorithm";
	if (v & GNUTLS_OCSP_VERIFY_CERT_NOT_ACTIVATED)
		return "responder certificate is not yet valid";
	if (v & GNUTLS_OCSP_VERIFY_CERT_EXPIRED)
		return "responder certificate has expired";
	return "response does not verify";
}

static const char *ocsp_status_name(int st)
{
	switch (st) {
	case GNUTLS_OCSP_RESP_MALFORMEDREQUEST:
		return "malformedRequest";
	case GNUTLS_OCSP_RESP_INTERNALERROR:
		return "internalError";
	case GNUTLS_OCSP_RESP_TRYLATER:
		return "tryLater";
	case GNUTLS_OCSP_RESP_SIGREQUIRED:
		return "sigRequired";
	case GNUTLS_OCSP_RESP_UNAUTHORIZED:
		return "unauthorized";
	}
	return "an unknown status";
}

/* The CertID a response about cert must carry, with the given digest. */
static int expected_cert_id(gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer,
                            gnutls_digest_algorithm_t dig, gnutls_datum_t *name_hash,
                            gnutls_datum_t *key_hash, gnutls_datum_t *serial)
{
	gnutls_ocsp_req_t req = NULL;
	int rc;

	rc = gnutls_ocsp_req_init(&req);
	if (rc < 0)
		return rc;
	rc = gnutls_ocsp_req_add_cert(req, dig, issuer, cert);
	if (rc >= 0)
		rc = gnutls_ocsp_req_get_cert_id(req, 0, NULL, name_hash, key_hash, serial);
	gnutls_ocsp_req_deinit(req);
	return rc;
}

/* st_ocsp_check_response, also giving the response's nextUpdate ((time_t)-1: none). */
static void check_response(gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer, time_t now,
                           const unsigned char *der, size_t len, const gnutls_datum_t *nonce,
                           const char *from, struct st_rev_result *res, time_t *next_out)
{
	gnutls_ocsp_resp_t resp = NULL;
	gnutls_datum_t d = {(unsigned char *)der, (unsigned)len}, type = {NULL, 0},
	               rnonce = {NULL, 0};
	char why[160], t1[32];
	const char *note = "";
	unsigned v = 0, idx, cert_status = 0, reason = 0;
	time_t this_update = (time_t)-1, next_update = (time_t)-1, rev_time = (time_t)-1;
	bool found = false;
	int rc;

	*next_out = (time_t)-1;
	res_init(res, "ocsp");
	if (!der || len == 0 || len > UINT32_MAX) {
		res_detail(res, "%s: empty response", from);
		return;
	}
	if (gnutls_ocsp_resp_init(&resp) < 0) {
		res_detail(res, "%s: out of memory", from);
		return;
	}
	rc = gnutls_ocsp_resp_import(resp, &d);
	if (rc < 0) {
		res_detail(res, "%s: malformed response: %s", from,
		           st_gnutls_reason(rc, why, sizeof(why)));
		goto out;
	}
	rc = gnutls_ocsp_resp_get_status(resp);
	if (rc != GNUTLS_OCSP_RESP_SUCCESSFUL) {
		res_detail(res, "%s: responder answers %s", from,
		           rc < 0 ? "with a malformed status" : ocsp_status_name(rc));
		goto out;
	}
	rc = gnutls_ocsp_resp_get_response(resp, &type, NULL);
	if (rc < 0 || !type.data || type.size != strlen(OID_OCSP_BASIC) ||
	    memcmp(type.data, OID_OCSP_BASIC, type.size) != 0) {
		res_detail(res, "%s: not a basic OCSP response", from);
		goto out;
	}
	/* The issuer itself, or a responder certificate it issued with the OCSP
	 * signing purpose (RFC 6960 4.2.2.2). gnutls_ocsp_resp_verify with a
	 * trust list would demand that purpose of the issuer too. */
	rc = gnutls_ocsp_resp_verify_direct(resp, issuer, &v, 0);
	if (rc < 0) {
		res_detail(res, "%s: cannot verify the response: %s", from,
		           st_gnutls_reason(rc, why, sizeof(why)));
		goto out;
	}
	if (v) {
		res_detail(res, "%s: %s", from, ocsp_verify_why(v));
		goto out;
	}
	if (nonce) {
		rc = gnutls_ocsp_resp_get_nonce(resp, NULL, &rnonce);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
			note = " (the response carries no nonce: it may be a replay)";
		} else if (rc < 0) {
			res_detail(res, "%s: malformed nonce: %s", from,
			           st_gnutls_reason(rc, why, sizeof(why)));
			goto out;
		} else if (!datum_eq(&rnonce, nonce)) {
			res_detail(res, "%s: nonce mismatch", from);
			goto out;
		}
	}
	for (idx = 0; idx < OCSP_MAX_SINGLES && !found; idx++) {
		gnutls_datum_t nh = {NULL, 0}, kh = {NULL, 0}, sn = {NULL, 0};
		gnutls_datum_t enh = {NULL, 0}, ekh = {NULL, 0}, esn = {NULL, 0};
		gnutls_digest_algorithm_t dig;

		rc = gnutls_ocsp_resp_get_single(resp, idx, &dig, &nh, &kh, &sn, &cert_status,
		                                 &this_update, &next_update, &rev_time, &reason);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (rc < 0) {
			res_detail(res, "%s: malformed single response: %s", from,
			           st_gnutls_reason(rc, why, sizeof(why)));
			goto out;
		}
		if (gnutls_ocsp_resp_check_crt(resp, idx, cert) == 0 &&
		    expected_cert_id(cert, issuer, dig, &enh, &ekh, &esn) >= 0 &&
		    datum_eq(&nh, &enh) && datum_eq(&kh, &ekh) && datum_eq(&sn, &esn))
			found = true;
		gnutls_free(nh.data);
		gnutls_free(kh.data);
		gnutls_free(sn.data);
		gnutls_free(enh.data);
		gnutls_free(ekh.data);
		gnutls_free(esn.data);
	}
	if (!found) {
		res_detail(res, "%s: the response is not about this certificate", from);
		goto out;
	}
	if (this_update == (time_t)-1 || this_update > now + OCSP_FUTURE_SLACK) {
		iso(this_update, t1, sizeof(t1));
		res_detail(res, "%s: response is not valid before %s", from, t1);
		goto out;
	}
	if (next_update != (time_t)-1 && next_update < now) {
		iso(next_update, t1, sizeof(t1));
		res_detail(res, "%s: response expired at %s", from, t1);
		goto out;
	}
	/* neither a nonce echoed nor a nextUpdate: nothing bounds a replay of an
	 * old "good" but its age */
	if (next_update == (time_t)-1 && (!nonce || note[0]) &&
	    this_update < now - OCSP_MAX_AGE) {
		iso(this_update, t1, sizeof(t1));
		res_detail(res,
		           "%s: response from %s has no nextUpdate and no nonce, and is older than "
		           "%d days",
		           from, t1, OCSP_MAX_AGE / 86400);
		goto out;
	}
	*next_out = next_update;
	switch (cert_status) {
	case GNUTLS_OCSP_CERT_GOOD:
		res->status = ST_REV_GOOD;
		res_detail(res, "%s%s", from, note);
		break;
	case GNUTLS_OCSP_CERT_REVOKED:
		res->status = ST_REV_REVOKED;
		res->revoked_at = rev_time;
		/* GnuTLS reports an absent reason as unspecified (0) */
		res->reason = reason <= 10 && reason != 7 ? (int)reason : -1;
		res_detail(res, "%s%s", from, note);
		break;
	default:
		res->status = ST_REV_UNKNOWN;
		res_detail(res, "%s: the responder does not know the certificate%s", from, note);
		break;
	}
out:
	gnutls_free(type.data);
	gnutls_free(rnonce.data);
	gnutls_ocsp_resp_deinit(resp);
}

void st_ocsp_check_response(gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer, time_t now,
                            const unsigned char *der, size_t len, const gnutls_datum_t *nonce,
                            const char *from, struct st_rev_result *res)
{
	time_t next;

	check_response(cert, issuer, now, der, len, nonce, from, res, &next);
}

/* ---- the OCSP cache ---- */

struct ocsp_entry {
	unsigned char key[64]; /* SHA-256 of the certificate, then of its issuer */
	time_t expires;
	struct st_rev_result res;
};

struct st_ocsp_cache {
	pthread_mutex_t lock;
	struct ocsp_entry *e;
	size_t n, max;
	long max_age;
};

struct st_ocsp_cache *st_ocsp_cache_new(size_t max_entries, long max_age)
{
	struct st_ocsp_cache *c = calloc(1, sizeof(*c));

	if (!c || !(c->e = calloc(max_entries ? max_entries : 1, sizeof(*c->e))) ||
	    pthread_mutex_init(&c->lock, NULL)) {
		if (c)
			free(c->e);
		free(c);
		return NULL;
	}
	c->max = max_entries ? max_entries : 1;
	c->max_age = max_age > 0 ? max_age : 1;
	return c;
}

void st_ocsp_cache_free(struct st_ocsp_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->e);
	free(c);
}

static bool ocsp_key(gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer, unsigned char key[64])
{
	size_t n1 = 32, n2 = 32;

	return gnutls_x509_crt_get_fingerprint(cert, GNUTLS_DIG_SHA256, key, &n1) == 0 &&
	       gnutls_x509_crt_get_fingerprint(issuer, GNUTLS_DIG_SHA256, key + 32, &n2) == 0 &&
	       n1 == 32 && n2 == 32;
}

static bool cache_get(struct st_ocsp_cache *c, const unsigned char key[64], time_t now,
                      struct st_rev_result *res)
{
	bool hit = false;
	size_t i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->n && !hit; i++)
		if (!memcmp(c->e[i].key, key, 64) && now < c->e[i].expires) {
			*res = c->e[i].res;
			hit = true;
		}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

static void cache_put(struct st_ocsp_cache *c, const unsigned char key[64], time_t now,
                      time_t next_update, const struct st_rev_result *res)
{
	time_t expires = now + c->max_age;
	size_t i, slot;

	if (next_update != (time_t)-1 && next_update < expires)
		expires = next_update;
	if (expires <= now)
		return;
	pthread_mutex_lock(&c->lock);
	for (slot = 0; slot < c->n; slot++)
		if (!memcmp(c->e[slot].key, key, 64))
			break;
	if (slot == c->n) {
		if (c->n < c->max) {
			c->n++;
		} else {
			for (slot = 0, i = 1; i < c->n; i++)
				if (c->e[i].expires < c->e[slot].expires)
					slot = i;
		}
	}
	memcpy(c->e[slot].key, key, 64);
	c->e[slot].expires = expires;
	c->e[slot].res = *res;
	pthread_mutex_unlock(&c->lock);
}

/* The first OCSP URI of cert's Authority Information Access into url; false when none. */
static bool ocsp_url(gnutls_x509_crt_t cert, char *url, size_t size, bool *too_long)
{
	unsigned seq;

	*too_long = false;
	for (seq = 0; seq < 16; seq++) {
		gnutls_datum_t d = {NULL, 0};
		int rc;

		rc = gnutls_x509_crt_get_authority_info_access(cert, seq, GNUTLS_IA_OCSP_URI, &d,
		                                               NULL);
		if (rc == GNUTLS_E_UNKNOWN_ALGORITHM)
			continue; /* another access method (caIssuers) */
		if (rc < 0)
			return false;
		if (d.size >= size || memchr(d.data, 0, d.size)) {
			*too_long = true;
			gnutls_free(d.data);
			continue;
		}
		memcpy(url, d.data, d.size);
		url[d.size] = '\0';
		gnutls_free(d.data);
		return true;
	}
	return false;
}

void st_ocsp_check(gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer, time_t now,
                   const struct st_fetch_params *fp, struct st_rev_result *res)
{
	long timeout_ms = fp && fp->timeout_ms > 0 ? fp->timeout_ms : FETCH_TIMEOUT_MS;
	size_t max =
	    fp && fp->max_size > 0 && fp->max_size < OCSP_FETCH_MAX ? fp->max_size : OCSP_FETCH_MAX;
	gnutls_ocsp_req_t req = NULL;
	gnutls_datum_t reqder = {NULL, 0}, nonce = {NULL, 0};
	struct st_error herr;
	struct st_buf body;
	char url[URL_MAX + 1], from[URL_MAX + 32], why[160];
	unsigned char key[64];
	time_t next_update = (time_t)-1;
	bool too_long, cached;
	int rc;

	res_init(res, "ocsp");
	st_buf_init(&body, max);
	if (!cert || !issuer) {
		res_detail(res, "no certificate or issuer to ask about");
		return;
	}
	if (!ocsp_url(cert, url, sizeof(url), &too_long)) {
		res_detail(res, too_long ? "the certificate's OCSP responder URL is too long"
		                         : "no OCSP responder in the certificate");
		return;
	}
	snprintf(from, sizeof(from), "OCSP responder %s", url);
	if (!url_is_http(url, false)) {
		res_detail(res, "%s: only http responders are asked", from);
		return;
	}
	cached = fp && fp->ocsp_cache && ocsp_key(cert, issuer, key);
	if (cached && cache_get(fp->ocsp_cache, key, now, res)) {
		char d[sizeof(res->detail)];
		snprintf(d, sizeof(d), "%.240s (cached)", res->detail);
		snprintf(res->detail, sizeof(res->detail), "%s", d);
		return;
	}
	if ((rc = gnutls_ocsp_req_init(&req)) < 0 ||
	    /* SHA-1 CertIDs: what responders index by (RFC 5019) */
	    (rc = gnutls_ocsp_req_add_cert(req, GNUTLS_DIG_SHA1, issuer, cert)) < 0 ||
	    (rc = gnutls_ocsp_req_randomize_nonce(req)) < 0 ||
	    (rc = gnutls_ocsp_req_get_nonce(req, NULL, &nonce)) < 0 ||
	    (rc = gnutls_ocsp_req_export(req, &reqder)) < 0) {
		res_detail(res, "%s: cannot make the request: %s", from,
		           st_gnutls_reason(rc, why, sizeof(why)));
		goto out;
	}
	st_error_clear(&herr);
	if (st_http_post(url, "application/ocsp-request", reqder.data, reqder.size, max, timeout_ms,
	                 &body, &herr) != 0) {
		res_detail(res, "OCSP responder %s", herr.msg);
		goto out;
	}
	check_response(cert, issuer, now, body.data, body.len, &nonce, from, res, &next_update);
	if (cached && (res->status == ST_REV_GOOD || res->status == ST_REV_REVOKED))
		cache_put(fp->ocsp_cache, key, now, next_update, res);
out:
	gnutls_free(reqder.data);
	gnutls_free(nonce.data);
	gnutls_ocsp_req_deinit(req);
	st_buf_release(&body);
}
