/* verify.c: trust stores, chain building and checking, Postfix name matching, revocation */
#include "config.h"

#include "verify.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "x509-gnutls.h"

#define NOTES_MAX    256
#define ANCHORS_MAX  100000
#define NAMES_MAX    256
#define SAN_WALK_MAX 4096

/* OIDs of the purposes we check (RFC 5280 4.2.1.12). */
#define OID_SERVER_AUTH "1.3.6.1.5.5.7.3.1"
#define OID_CLIENT_AUTH "1.3.6.1.5.5.7.3.2"
#define OID_ANY_EKU     "2.5.29.37.0"

/* How an anchor is found: its DER's SHA-256, and its subject as OpenSSL compares names. */
struct anchor_key {
	unsigned char sha256[32];
	unsigned char *canon; /* canonical subject (st_x509_name_canon) */
	size_t canon_len;
};

/*
 * A certificate of an indexed bundle (the system store): found by its subject,
 * parsed only when a chain asks for that name. Parsing the 140-odd
 * certificates of a system bundle costs 40 ms; indexing them costs about 1.
 */
struct lazy_anchor {
	const unsigned char *pem; /* its PEM block, inside one of the store's bundles */
	size_t pem_len;
	unsigned char *canon; /* canonical subject (st_x509_name_canon) */
	size_t canon_len;
	bool parsed;
};

struct st_trust {
	gnutls_x509_trust_list_t tl;
	gnutls_x509_crt_t *anchors; /* our copies, for issuer lookup and membership */
	struct anchor_key *keys;    /* what finds them fast, one per anchor */
	size_t n_anchors;
	struct lazy_anchor *lazy; /* indexed, parsed on use into anchors */
	size_t n_lazy, n_parsed;
	struct st_buf *bundles; /* the files indexed, which lazy points into */
	size_t n_bundles;
	/* looking up a name may parse indexed certificates: chains are verified
	 * on several threads at once (serve's client certificates) */
	pthread_mutex_t lock;
	struct st_trust_note *notes;
	size_t n_notes;
};

/* ---- trust stores ---- */

struct st_trust *st_trust_new(void)
{
	struct st_trust *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	if (gnutls_x509_trust_list_init(&t->tl, 0) < 0) {
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

void st_trust_free(struct st_trust *t)
{
	size_t i;

	if (!t)
		return;
	gnutls_x509_trust_list_deinit(t->tl, 1);
	for (i = 0; i < t->n_anchors; i++) {
		gnutls_x509_crt_deinit(t->anchors[i]);
		free(t->keys[i].canon);
	}
	free(t->anchors);
	free(t->keys);
	for (i = 0; i < t->n_lazy; i++)
		free(t->lazy[i].canon);
	free(t->lazy);
	for (i = 0; i < t->n_bundles; i++)
		st_buf_release(&t->bundles[i]);
	free(t->bundles);
	pthread_mutex_destroy(&t->lock);
	free(t->notes);
	free(t);
}

static void trust_note(struct st_trust *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void trust_note(struct st_trust *t, const char *fmt, ...)
{
	struct st_trust_note *n;
	va_list ap;

	if (t->n_notes >= NOTES_MAX)
		return;
	n = realloc(t->notes, (t->n_notes + 1) * sizeof(*n));
	if (!n)
		return;
	t->notes = n;
	va_start(ap, fmt);
	vsnprintf(n[t->n_notes].message, sizeof(n[t->n_notes].message), fmt, ap);
	va_end(ap);
	st_sanitize(n[t->n_notes].message);
	t->n_notes++;
}

const struct st_trust_note *st_trust_notes(const struct st_trust *t, size_t *n)
{
	*n = t->n_notes;
	return t->notes;
}

size_t st_trust_count(const struct st_trust *t)
{
	struct st_trust *m = (struct st_trust *)t; /* the lock only */
	size_t n, i;

	pthread_mutex_lock(&m->lock);
	n = t->n_anchors;
	for (i = 0; i < t->n_lazy; i++)
		n += !t->lazy[i].parsed;
	pthread_mutex_unlock(&m->lock);
	return n;
}

void st_trust_stats(const struct st_trust *t, size_t *indexed, size_t *parsed)
{
	struct st_trust *m = (struct st_trust *)t;

	pthread_mutex_lock(&m->lock);
	*indexed = t->n_lazy;
	*parsed = t->n_parsed;
	pthread_mutex_unlock(&m->lock);
}

static bool crt_is_self_issued(gnutls_x509_crt_t c)
{
	return gnutls_x509_crt_check_issuer(c, c) != 0;
}

static bool crt_is_ca(gnutls_x509_crt_t c)
{
	unsigned ca = 0;

	return gnutls_x509_crt_get_basic_constraints(c, NULL, &ca, NULL) >= 0 && ca;
}

/* The subject DN of a certificate for messages (owned by the caller), never NULL. */
static char *crt_dn(gnutls_x509_crt_t c, bool issuer)
{
	gnutls_datum_t d = {NULL, 0};
	char *s;
	int rc =
	    issuer ? gnutls_x509_crt_get_issuer_dn3(c, &d, 0) : gnutls_x509_crt_get_dn3(c, &d, 0);

	if (rc < 0)
		return strdup("");
	s = malloc(d.size + 1);
	if (s) {
		memcpy(s, d.data, d.size);
		s[d.size] = '\0';
		st_sanitize(s);
	}
	gnutls_free(d.data);
	return s;
}

/*
 * The canonical name (subject, or issuer) of a certificate, malloc'ed into
 * *out (NULL, 0 when the name cannot be read): the key names are compared by,
 * as OpenSSL compares them.
 */
static int crt_canon_name(gnutls_x509_crt_t c, bool issuer, unsigned char **out, size_t *len)
{
	gnutls_datum_t dn = {NULL, 0};
	struct st_buf b;
	int rc;

	*out = NULL;
	*len = 0;
	rc =
	    issuer ? gnutls_x509_crt_get_raw_issuer_dn(c, &dn) : gnutls_x509_crt_get_raw_dn(c, &dn);
	if (rc < 0)
		return ST_E_PARSE;
	st_buf_init(&b, 1 << 20);
	rc = st_x509_name_canon(dn.data, dn.size, &b);
	gnutls_free(dn.data);
	if (rc == 0) {
		*out = b.data ? b.data : calloc(1, 1);
		*len = b.len;
		if (!*out)
			rc = ST_E_NOMEM;
	} else {
		st_buf_release(&b);
	}
	return rc;
}

static int crt_sha256(gnutls_x509_crt_t c, unsigned char md[32])
{
	size_t size = 32;

	return gnutls_x509_crt_get_fingerprint(c, GNUTLS_DIG_SHA256, md, &size) < 0 ? ST_E_CRYPTO
	                                                                            : ST_OK;
}

/* Add one anchor (takes c). Returns 1 when added, 0 for a duplicate, <0 on error. */
static int trust_add_crt(struct st_trust *t, gnutls_x509_crt_t c)
{
	gnutls_x509_crt_t *a, copy = NULL;
	struct anchor_key key, *k;
	gnutls_datum_t der = {NULL, 0};
	size_t i;

	if (crt_sha256(c, key.sha256)) {
		gnutls_x509_crt_deinit(c);
		return ST_E_CRYPTO;
	}
	for (i = 0; i < t->n_anchors; i++)
		if (memcmp(t->keys[i].sha256, key.sha256, 32) == 0) {
			gnutls_x509_crt_deinit(c);
			return 0;
		}
	if (t->n_anchors >= ANCHORS_MAX) {
		gnutls_x509_crt_deinit(c);
		return ST_E_TOOBIG;
	}
	if (crt_canon_name(c, false, &key.canon, &key.canon_len) == ST_E_NOMEM) {
		gnutls_x509_crt_deinit(c);
		return ST_E_NOMEM;
	}
	a = realloc(t->anchors, (t->n_anchors + 1) * sizeof(*a));
	if (a)
		t->anchors = a;
	k = realloc(t->keys, (t->n_anchors + 1) * sizeof(*k));
	if (k)
		t->keys = k;
	if (!a || !k) {
		free(key.canon);
		gnutls_x509_crt_deinit(c);
		return ST_E_NOMEM;
	}
	/* the trust list takes its own copy: it frees what it holds */
	if (gnutls_x509_crt_export2(c, GNUTLS_X509_FMT_DER, &der) < 0 ||
	    gnutls_x509_crt_init(&copy) < 0 ||
	    gnutls_x509_crt_import(copy, &der, GNUTLS_X509_FMT_DER) < 0 ||
	    gnutls_x509_trust_list_add_cas(t->tl, &copy, 1, 0) < 0) {
		gnutls_free(der.data);
		if (copy)
			gnutls_x509_crt_deinit(copy);
		free(key.canon);
		gnutls_x509_crt_deinit(c);
		return ST_E_CRYPTO;
	}
	gnutls_free(der.data);
	t->keys[t->n_anchors] = key;
	t->anchors[t->n_anchors++] = c;
	return 1;
}

/* Add the certificates of a buffer; notes name the file for what is odd. */
static int trust_add_buffer(struct st_trust *t, const char *name, const struct st_buf *data,
                            unsigned *added, struct st_error *err)
{
	struct st_x509_reader *r = st_x509_reader_new(name, data->data, data->len);
	struct st_x509_item *item;
	struct st_x509_bad bad = {{ST_ERR_NONE, "", 0}, 0};
	struct st_error e;
	int rc, n;

	*added = 0;
	if (!r) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return ST_E_NOMEM;
	}
	while ((rc = st_x509_reader_next(r, &item, &e)) != 0) {
		gnutls_x509_crt_t c;
		if (rc < 0) {
			st_x509_bad_add(&bad, &e);
			continue;
		}
		if (st_x509_item_parse_problem(item)) {
			st_error_set(
			    &e, ST_ERR_INPUT,
			    "'%s' line %u: cannot parse certificate: %s; it is not trusted", name,
			    st_x509_item_line(item), st_x509_item_parse_problem(item));
			st_x509_bad_add(&bad, &e);
			st_x509_item_free(item);
			continue;
		}
		if (st_x509_item_kind(item) != ST_X509_CERT) {
			trust_note(t, "'%s' line %u: a %s in a CA file is ignored", name,
			           st_x509_item_line(item),
			           st_x509_kind_name(st_x509_item_kind(item)));
			st_x509_item_free(item);
			continue;
		}
		c = st_x509_item_crt_copy(item);
		if (c && !crt_is_ca(c) && !crt_is_self_issued(c)) {
			char *dn = crt_dn(c, false);
			trust_note(
			    t,
			    "'%s' line %u: '%s' is not a CA certificate (no basicConstraints "
			    "CA:TRUE): it can end a chain only as itself, when self-signed or "
			    "with --partial-chain",
			    name, st_x509_item_line(item), dn ? dn : "");
			free(dn);
		}
		st_x509_item_free(item);
		if (!c) {
			st_x509_reader_free(r);
			st_error_set(err, ST_ERR_INTERNAL, "out of memory");
			return ST_E_NOMEM;
		}
		n = trust_add_crt(t, c);
		if (n < 0) {
			st_x509_reader_free(r);
			st_error_set(err, ST_ERR_INTERNAL, "cannot add '%s' to the trust store",
			             name);
			return n;
		}
		*added += (unsigned)n;
	}
	st_x509_reader_free(r);
	if (st_x509_bad_report(&bad, &e)) /* one note for all the bad blocks of the file */
		trust_note(t, "%s", e.msg);
	return ST_OK;
}

/* Add a CA file's certificates, each parsed now; a file without one is an error. */
static int trust_add_whole(struct st_trust *t, const char *path, const struct st_buf *data,
                           struct st_error *err)
{
	unsigned added = 0;
	size_t before = t->n_anchors;
	int rc = trust_add_buffer(t, path, data, &added, err);

	if (rc == 0 && t->n_anchors == before && added == 0) {
		st_error_set(err, ST_ERR_INPUT, "CA file '%s': no certificate found", path);
		return ST_E_PARSE;
	}
	return rc;
}

int st_trust_add_file(struct st_trust *t, const char *path, struct st_error *err)
{
	struct st_buf data;
	int rc;

	st_buf_init(&data, ST_INPUT_MAX);
	rc = st_read_file(path, &data, err);
	if (rc == 0)
		rc = trust_add_whole(t, path, &data, err);
	st_buf_release(&data);
	return rc;
}

/* An OpenSSL hash name: 8 hex digits, a dot, a number (".rN" names CRLs). */
static bool is_hash_name(const char *n, bool *crl)
{
	size_t i;

	*crl = false;
	for (i = 0; i < 8; i++)
		if (!isxdigit((unsigned char)n[i]))
			return false;
	if (n[8] != '.')
		return false;
	i = 9;
	if (n[i] == 'r') {
		*crl = true;
		i++;
	}
	if (!isdigit((unsigned char)n[i]))
		return false;
	for (; n[i]; i++)
		if (!isdigit((unsigned char)n[i]))
			return false;
	return true;
}

struct file_id {
	dev_t dev;
	ino_t ino;
};

struct hash_entry {
	unsigned long hash;
	unsigned long n;
	char name[64];
};

static int hash_entry_cmp(const void *a, const void *b)
{
	const struct hash_entry *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->n < y->n ? -1 : x->n > y->n;
}

/* The subject hash of a certificate as OpenSSL computes it, or -1. */
static long crt_subject_hash(gnutls_x509_crt_t c)
{
	struct st_buf b;
	unsigned char *canon;
	size_t len;
	long h;

	if (crt_canon_name(c, false, &canon, &len))
		return -1;
	b.data = canon;
	b.len = len;
	b.cap = len;
	b.max = len;
	h = (long)st_x509_name_hash(&b);
	free(canon);
	return h;
}

/*
 * Load one hash-named file as OpenSSL's by_dir lookup would: every
 * certificate whose subject hashes to the name's hash. Others are named.
 */
static int dir_load(struct st_trust *t, const char *dir, const struct hash_entry *h,
                    const char *path, struct st_buf *data, struct st_error *err)
{
	struct st_x509_reader *r;
	struct st_x509_item *item;
	struct st_x509_bad bad = {{ST_ERR_NONE, "", 0}, 0};
	struct st_error e;
	int rc;

	if (st_read_file(path, data, &e) != 0) {
		trust_note(t, "%s", e.msg);
		return ST_OK;
	}
	r = st_x509_reader_new(path, data->data, data->len);
	if (!r) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return ST_E_NOMEM;
	}
	while ((rc = st_x509_reader_next(r, &item, &e)) != 0) {
		gnutls_x509_crt_t c;
		long sh;
		if (rc < 0) {
			st_x509_bad_add(&bad, &e);
			continue;
		}
		c = st_x509_item_kind(item) == ST_X509_CERT ? st_x509_item_crt_copy(item) : NULL;
		st_x509_item_free(item);
		if (!c)
			continue;
		sh = crt_subject_hash(c);
		if (sh != (long)h->hash) {
			char *dn = crt_dn(c, false);
			trust_note(
			    t,
			    "CA directory '%s': '%s' holds '%s', whose subject hash is %08lx, "
			    "not %08lx: OpenSSL and Postfix never find it there (run 'openssl "
			    "rehash %s')",
			    dir, h->name, dn ? dn : "", (unsigned long)sh, h->hash, dir);
			free(dn);
			gnutls_x509_crt_deinit(c);
			continue;
		}
		if (trust_add_crt(t, c) < 0) {
			st_x509_reader_free(r);
			st_error_set(err, ST_ERR_INTERNAL, "cannot add '%s' to the trust store",
			             path);
			return ST_E_NOMEM;
		}
	}
	st_x509_reader_free(r);
	if (st_x509_bad_report(&bad, &e)) /* one note for all the bad blocks of the file */
		trust_note(t, "%s", e.msg);
	return ST_OK;
}

int st_trust_add_dir(struct st_trust *t, const char *dir, struct st_error *err)
{
	struct hash_entry *hs = NULL;
	struct file_id *ids = NULL;
	size_t n_hs = 0, n_ids = 0, i, before = t->n_anchors;
	struct dirent *e;
	struct st_buf data;
	char path[4096];
	struct stat st, lst;
	DIR *d;
	bool crl;
	int rc = ST_OK;

	d = opendir(dir);
	if (!d) {
		st_error_set(err, ST_ERR_INPUT, "cannot read CA directory '%s': %s", dir,
		             strerror(errno));
		return ST_E_IO;
	}
	st_buf_init(&data, ST_INPUT_MAX);
	/* the hash names, which are all OpenSSL reads */
	while ((e = readdir(d)) != NULL && n_hs < ANCHORS_MAX) {
		struct hash_entry *v;
		if (!is_hash_name(e->d_name, &crl) || crl || strlen(e->d_name) >= sizeof(v->name))
			continue;
		v = realloc(hs, (n_hs + 1) * sizeof(*v));
		if (!v) {
			rc = ST_E_NOMEM;
			st_error_set(err, ST_ERR_INTERNAL, "out of memory");
			goto out;
		}
		hs = v;
		hs[n_hs].hash = strtoul(e->d_name, NULL, 16);
		hs[n_hs].n = strtoul(e->d_name + 9, NULL, 10);
		snprintf(hs[n_hs].name, sizeof(hs[n_hs].name), "%s", e->d_name);
		n_hs++;
	}
	if (n_hs > 1)
		qsort(hs, n_hs, sizeof(*hs), hash_entry_cmp);
	for (i = 0; i < n_hs; i++) {
		/* OpenSSL tries HASH.0, HASH.1, ... and stops at the first that is missing */
		bool reachable =
		    hs[i].n == 0 || (i > 0 && hs[i - 1].hash == hs[i].hash &&
		                     hs[i - 1].n + 1 == hs[i].n && hs[i - 1].name[0] != '\0');
		snprintf(path, sizeof(path), "%s/%s", dir, hs[i].name);
		if (!reachable) {
			trust_note(
			    t,
			    "CA directory '%s': '%s' is never read: OpenSSL stops at the missing "
			    "'%08lx.%lu' (run 'openssl rehash %s')",
			    dir, hs[i].name, hs[i].hash, hs[i].n ? hs[i].n - 1 : 0, dir);
			hs[i].name[0] = '\0'; /* and neither is what follows */
			continue;
		}
		if (stat(path, &st) != 0) {
			char target[1024];
			ssize_t n = readlink(path, target, sizeof(target) - 1);
			target[n > 0 ? n : 0] = '\0';
			if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
				trust_note(t,
				           "CA directory '%s': '%s' points to '%s', which does not "
				           "exist (run 'openssl rehash %s')",
				           dir, hs[i].name, target, dir);
			else
				trust_note(t, "CA directory '%s': cannot read '%s': %s", dir,
				           hs[i].name, strerror(errno));
			hs[i].name[0] = '\0';
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		{
			struct file_id *v = realloc(ids, (n_ids + 1) * sizeof(*v));
			if (!v) {
				rc = ST_E_NOMEM;
				st_error_set(err, ST_ERR_INTERNAL, "out of memory");
				goto out;
			}
			ids = v;
			ids[n_ids].dev = st.st_dev;
			ids[n_ids].ino = st.st_ino;
			n_ids++;
		}
		rc = dir_load(t, dir, &hs[i], path, &data, err);
		if (rc)
			goto out;
	}
	/* certificate files that no hash name reaches */
	rewinddir(d);
	while ((e = readdir(d)) != NULL) {
		bool reached = false;
		struct st_x509_reader *r;
		struct st_x509_item *item;
		struct st_error ee;
		if (e->d_name[0] == '.' || is_hash_name(e->d_name, &crl))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 1024 * 1024)
			continue;
		for (i = 0; i < n_ids; i++)
			if (ids[i].dev == st.st_dev && ids[i].ino == st.st_ino)
				reached = true;
		if (reached || st_read_file(path, &data, &ee) != 0)
			continue;
		r = st_x509_reader_new(path, data.data, data.len);
		if (r && st_x509_reader_next(r, &item, &ee) > 0) {
			gnutls_x509_crt_t c = st_x509_item_crt(item);
			if (c)
				trust_note(
				    t,
				    "CA directory '%s': '%s' holds a certificate that no hash name "
				    "reaches, so OpenSSL and Postfix never use it (run 'openssl "
				    "rehash "
				    "%s' or 'c_rehash %s', which link it as '%08lx.0')",
				    dir, e->d_name, dir, dir, (unsigned long)crt_subject_hash(c));
			st_x509_item_free(item);
		}
		st_x509_reader_free(r);
	}
	if (t->n_anchors == before)
		trust_note(t, "CA directory '%s': no certificate is reachable through a hash name",
		           dir);
	st_error_clear(err);
out:
	closedir(d);
	st_buf_release(&data);
	free(ids);
	free(hs);
	return rc;
}

/*
 * The subject of a PEM certificate body (base64, line breaks allowed), canonical,
 * into canon. Only the start of the body is decoded, enough to reach the
 * subject: decoding whole bundles was most of what indexing them cost.
 */
static int pem_subject_canon(const unsigned char *body, size_t len, struct st_buf *canon)
{
	unsigned char *b64 = malloc(len ? len : 1);
	size_t want = 512, n = 0, i = 0;
	int rc = ST_E_PARSE;

	if (!b64)
		return ST_E_NOMEM;
	for (;;) {
		gnutls_datum_t in, der = {NULL, 0};
		const unsigned char *subject;
		size_t subject_len;
		bool whole;
		/* base64 characters only, a multiple of 4 of them: what the decoder takes */
		for (; i < len && n < want; i++)
			if (body[i] != '\n' && body[i] != '\r' && body[i] != ' ' && body[i] != '\t')
				b64[n++] = body[i];
		whole = i == len;
		in.data = b64;
		in.size = (unsigned)(whole ? n : n - n % 4);
		if (gnutls_base64_decode2(&in, &der) < 0)
			break;
		rc = st_x509_der_subject(der.data, der.size, !whole, &subject, &subject_len);
		if (rc == 0)
			rc = st_x509_name_canon(subject, subject_len, canon);
		gnutls_free(der.data);
		if (rc != ST_E_TOOBIG || whole)
			break;
		want *= 4;
	}
	free(b64);
	return rc == ST_E_TOOBIG ? ST_E_PARSE : rc;
}

/* Drop what was indexed after the first before entries (lock held). */
static void trust_unindex(struct st_trust *t, size_t before)
{
	size_t i;

	for (i = before; i < t->n_lazy; i++)
		free(t->lazy[i].canon);
	t->n_lazy = before;
}

/*
 * Index the PEM certificates of a bundle by subject: only the subject of each
 * block is read. A block whose start is not a certificate's is left out, as
 * GnuTLS would refuse it. *indexed counts what was added, *seen the blocks
 * taken (a block twice in the store is indexed once). The entries point into
 * data: keep it (trust_keep) or drop them (trust_unindex). On error nothing
 * is indexed.
 */
static int trust_index_pem(struct st_trust *t, const struct st_buf *data, size_t *indexed,
                           size_t *seen)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	const unsigned char *p = data->data, *stop = data->data + data->len, *b, *e;
	size_t before = t->n_lazy;

	*indexed = 0;
	*seen = 0;
	while (p < stop && (b = memmem(p, (size_t)(stop - p), begin, sizeof(begin) - 1)) != NULL) {
		const unsigned char *body = b + sizeof(begin) - 1;
		struct lazy_anchor *v, one;
		struct st_buf canon;
		size_t i;
		bool dup = false;
		int rc;

		e = memmem(body, (size_t)(stop - body), end, sizeof(end) - 1);
		if (!e)
			break;
		p = e + sizeof(end) - 1;
		if (t->n_lazy >= ANCHORS_MAX) {
			trust_unindex(t, before);
			return ST_E_TOOBIG;
		}
		st_buf_init(&canon, 1 << 20);
		rc = pem_subject_canon(body, (size_t)(e - body), &canon);
		if (rc == ST_E_NOMEM) {
			st_buf_release(&canon);
			trust_unindex(t, before);
			return rc;
		}
		if (rc) {
			st_buf_release(&canon);
			continue;
		}
		(*seen)++;
		memset(&one, 0, sizeof(one));
		one.pem_len = (size_t)(p - b);
		one.canon_len = canon.len;
		for (i = 0; i < t->n_lazy && !dup; i++)
			dup = t->lazy[i].canon_len == canon.len && t->lazy[i].pem_len == one.pem_len &&
			      memcmp(t->lazy[i].canon, canon.data, canon.len) == 0 &&
			      memcmp(t->lazy[i].pem, b, one.pem_len) == 0;
		if (dup) {
			st_buf_release(&canon);
			continue;
		}
		one.canon = canon.data ? canon.data : calloc(1, 1);
		one.pem = b;
		v = one.canon ? realloc(t->lazy, (t->n_lazy + 1) * sizeof(*v)) : NULL;
		if (!v) {
			free(one.canon);
			trust_unindex(t, before);
			return ST_E_NOMEM;
		}
		t->lazy = v;
		t->lazy[t->n_lazy++] = one;
		(*indexed)++;
	}
	return ST_OK;
}

/*
 * Parse the indexed certificates whose subject is canon into anchors (lock
 * held). One that GnuTLS refuses is dropped, as a bundle loaded whole would
 * not hold it either.
 */
static void trust_load_name(struct st_trust *t, const unsigned char *canon, size_t len)
{
	size_t i;

	for (i = 0; i < t->n_lazy; i++) {
		struct lazy_anchor *l = &t->lazy[i];
		gnutls_x509_crt_t c = NULL;
		gnutls_datum_t pem;
		if (l->parsed || l->canon_len != len || memcmp(l->canon, canon, len) != 0)
			continue;
		l->parsed = true;
		t->n_parsed++;
		pem.data = (unsigned char *)l->pem;
		pem.size = (unsigned)l->pem_len;
		if (gnutls_x509_crt_init(&c) >= 0 &&
		    gnutls_x509_crt_import(c, &pem, GNUTLS_X509_FMT_PEM) >= 0)
			trust_add_crt(t, c); /* takes c */
		else if (c)
			gnutls_x509_crt_deinit(c);
	}
}

/* Load the names c goes by, subject or issuer, from the index (lock held). */
static void trust_load_crt_name(struct st_trust *t, gnutls_x509_crt_t c, bool issuer)
{
	unsigned char *canon;
	size_t len;

	if (t->n_lazy == 0 || crt_canon_name(c, issuer, &canon, &len))
		return;
	trust_load_name(t, canon, len);
	free(canon);
}

/* Keep an indexed file's bytes (moved from *data) for as long as the store: its entries point into it. */
static int trust_keep(struct st_trust *t, struct st_buf *data)
{
	struct st_buf *v = realloc(t->bundles, (t->n_bundles + 1) * sizeof(*v));

	if (!v)
		return ST_E_NOMEM;
	t->bundles = v;
	t->bundles[t->n_bundles++] = *data;
	st_buf_init(data, 0);
	return ST_OK;
}

int st_trust_add_system(struct st_trust *t, struct st_error *err)
{
	gnutls_x509_trust_list_t sys;
	gnutls_x509_trust_list_iter_t it = NULL;
	gnutls_x509_crt_t c;
	struct st_buf data;
	struct st_error e;
	size_t indexed = 0, seen, before = t->n_lazy;
	int n, rc = ST_OK;

	/* the bundle GnuTLS's system trust is (configure --with-system-ca-file),
	 * indexed; when it is not there, whatever GnuTLS loads, whole */
	st_buf_init(&data, ST_INPUT_MAX);
	if (ST_SYSTEM_CA_FILE[0] && st_read_file(ST_SYSTEM_CA_FILE, &data, &e) == 0) {
		pthread_mutex_lock(&t->lock);
		rc = trust_index_pem(t, &data, &indexed, &seen);
		if (rc == 0 && (rc = trust_keep(t, &data)) != 0)
			trust_unindex(t, before);
		pthread_mutex_unlock(&t->lock);
		st_buf_release(&data);
		if (rc) {
			st_error_set(err, ST_ERR_INTERNAL, "cannot index the system trust store");
			return rc;
		}
		if (indexed == 0)
			trust_note(t, "the system trust store is empty or missing (install the "
			              "Debian package ca-certificates)");
		return ST_OK;
	}
	st_buf_release(&data);
	if (gnutls_x509_trust_list_init(&sys, 0) < 0) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return ST_E_NOMEM;
	}
	n = gnutls_x509_trust_list_add_system_trust(sys, 0, 0);
	if (n <= 0) {
		trust_note(t, "the system trust store is empty or missing (install the Debian "
		              "package ca-certificates)");
		goto out;
	}
	while (gnutls_x509_trust_list_iter_get_ca(sys, &it, &c) >= 0) {
		rc = trust_add_crt(t, c);
		if (rc < 0) {
			st_error_set(err, ST_ERR_INTERNAL, "cannot copy the system trust store");
			break;
		}
		rc = ST_OK;
	}
	gnutls_x509_trust_list_iter_deinit(it);
out:
	gnutls_x509_trust_list_deinit(sys, 1);
	return rc;
}

/* Count the PEM blocks of a buffer, whatever their label. */
static size_t pem_blocks(const struct st_buf *data)
{
	static const char begin[] = "-----BEGIN ";
	const unsigned char *p = data->data, *stop = data->data + data->len, *b;
	size_t n = 0;

	while (p < stop && (b = memmem(p, (size_t)(stop - p), begin, sizeof(begin) - 1)) != NULL) {
		n++;
		p = b + sizeof(begin) - 1;
	}
	return n;
}

int st_trust_index_file(struct st_trust *t, const char *path, struct st_error *err)
{
	struct st_buf data;
	size_t before = t->n_lazy, indexed = 0, seen = 0;
	int rc;

	st_buf_init(&data, ST_INPUT_MAX);
	rc = st_read_file(path, &data, err);
	if (rc) {
		st_buf_release(&data);
		return rc;
	}
	pthread_mutex_lock(&t->lock);
	rc = trust_index_pem(t, &data, &indexed, &seen);
	if (rc == 0 && seen > 0 && seen == pem_blocks(&data) && trust_keep(t, &data) == 0) {
		pthread_mutex_unlock(&t->lock);
		return ST_OK;
	}
	/* DER, other labels, blocks that are not certificates: the whole file is
	 * read as st_trust_add_file reads it, with its errors */
	trust_unindex(t, before);
	pthread_mutex_unlock(&t->lock);
	rc = trust_add_whole(t, path, &data, err);
	st_buf_release(&data);
	return rc;
}

/*
 * The trusted issuer of c (borrowed), or NULL: an anchor whose subject is
 * c's issuer as OpenSSL compares names. Only when several anchors share the
 * name (a CA's old and new root) does a signature check pick the one whose
 * key signed c.
 */
static bool signed_by(gnutls_x509_crt_t c, gnutls_x509_crt_t issuer)
{
	unsigned status;

	return gnutls_x509_crt_verify(
	           c, &issuer, 1,
	           GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS |
	               GNUTLS_VERIFY_DISABLE_CA_SIGN | GNUTLS_VERIFY_ALLOW_SIGN_WITH_SHA1 |
	               GNUTLS_VERIFY_ALLOW_BROKEN,
	           &status) >= 0 &&
	       !(status & (GNUTLS_CERT_SIGNATURE_FAILURE | GNUTLS_CERT_SIGNER_NOT_FOUND));
}

static gnutls_x509_crt_t trust_issuer(struct st_trust *t, gnutls_x509_crt_t c)
{
	gnutls_x509_crt_t first = NULL;
	unsigned char *iss;
	size_t iss_len, i, found = 0;

	if (!t || crt_canon_name(c, true, &iss, &iss_len))
		return NULL;
	pthread_mutex_lock(&t->lock);
	trust_load_name(t, iss, iss_len);
	/* the name as OpenSSL compares it, then name and key identifiers as GnuTLS
	 * pairs issuers: a certificate that only claims a trusted name (another
	 * key identifier) finds no anchor, and its chain stays untrusted */
	for (i = 0; i < t->n_anchors; i++)
		if (t->keys[i].canon && t->keys[i].canon_len == iss_len &&
		    memcmp(t->keys[i].canon, iss, iss_len) == 0 &&
		    gnutls_x509_crt_check_issuer(c, t->anchors[i]) && found++ == 0)
			first = t->anchors[i];
	if (found > 1)
		for (i = 0; i < t->n_anchors; i++)
			if (t->keys[i].canon && t->keys[i].canon_len == iss_len &&
			    memcmp(t->keys[i].canon, iss, iss_len) == 0 &&
			    gnutls_x509_crt_check_issuer(c, t->anchors[i]) &&
			    signed_by(c, t->anchors[i])) {
				first = t->anchors[i];
				break;
			}
	/* none verifies: the first by name, and the signature check says why */
	pthread_mutex_unlock(&t->lock);
	free(iss);
	return first;
}

static bool trust_contains(struct st_trust *t, gnutls_x509_crt_t c)
{
	unsigned char md[32];
	size_t i;
	bool found = false;

	if (!t || crt_sha256(c, md))
		return false;
	pthread_mutex_lock(&t->lock);
	trust_load_crt_name(t, c, false);
	for (i = 0; i < t->n_anchors && !found; i++)
		found = memcmp(t->keys[i].sha256, md, 32) == 0;
	pthread_mutex_unlock(&t->lock);
	return found;
}

/* ---- names ---- */

static size_t trimmed_len(const char *s)
{
	size_t n = strlen(s);

	return n > 1 && s[n - 1] == '.' ? n - 1 : n;
}

bool st_name_matches(const char *cert_name, const char *pattern, bool multi_label)
{
	size_t cn = trimmed_len(cert_name), pn = trimmed_len(pattern), rest, i;

	if (cn == 0 || pn == 0)
		return false;
	if (pattern[0] == '.' && pn > 1) {
		/* one or more labels, then the suffix: "*" counts as a label */
		return cn > pn && strncasecmp(cert_name + cn - pn, pattern, pn) == 0 &&
		       cert_name[cn - pn - 1] != '.';
	}
	if (cn == pn && strncasecmp(cert_name, pattern, pn) == 0)
		return true;
	if (cn < 3 || cert_name[0] != '*' || cert_name[1] != '.')
		return false;
	/* as OpenSSL: '*' only before two labels or more ("*.com" is no wildcard) */
	if (!memchr(cert_name + 2, '.', cn - 2))
		return false;
	/* "*.example.com": the "*" stands for the labels before ".example.com" */
	rest = cn - 1;
	if (pn <= rest || strncasecmp(pattern + pn - rest, cert_name + 1, rest) != 0)
		return false;
	for (i = 0; i < pn - rest; i++) {
		if (pattern[i] == '.' && (!multi_label || i == 0 || pattern[i - 1] == '.'))
			return false;
		/* what '*' stands for: letters, digits and hyphens only */
		if (pattern[i] != '.' && !isalnum((unsigned char)pattern[i]) && pattern[i] != '-')
			return false;
	}
	return true;
}

int st_match_expand(const char *spec, const char *hostname, const char *nexthop, char (*out)[256],
                    size_t max, struct st_error *err)
{
	char word[256];
	const char *p = spec;
	size_t n = 0, len;

	while (*p) {
		while (*p && strchr(":, \t", *p))
			p++;
		len = strcspn(p, ":, \t");
		if (len == 0)
			break;
		if (len >= sizeof(word)) {
			st_error_set(err, ST_ERR_USAGE, "match pattern too long");
			return -1;
		}
		memcpy(word, p, len);
		word[len] = '\0';
		p += len;
		if (n >= max) {
			st_error_set(err, ST_ERR_USAGE, "too many match patterns (at most %zu)",
			             max);
			return -1;
		}
		if (strcasecmp(word, "hostname") == 0) {
			if (!hostname) {
				st_error_set(err, ST_ERR_USAGE,
				             "match strategy 'hostname' needs --hostname");
				return -1;
			}
			snprintf(out[n++], 256, "%s", hostname);
		} else if (strcasecmp(word, "nexthop") == 0) {
			if (!nexthop) {
				st_error_set(err, ST_ERR_USAGE,
				             "match strategy 'nexthop' needs --nexthop");
				return -1;
			}
			snprintf(out[n++], 256, "%s", nexthop);
		} else if (strcasecmp(word, "dot-nexthop") == 0) {
			if (!nexthop) {
				st_error_set(err, ST_ERR_USAGE,
				             "match strategy 'dot-nexthop' needs --nexthop");
				return -1;
			}
			snprintf(out[n++], 256, ".%s", nexthop);
		} else {
			snprintf(out[n++], 256, "%s", word);
		}
	}
	return (int)n;
}

static int add_name(struct st_verify_result *res, const char *name)
{
	char **v;

	if (res->n_names >= NAMES_MAX)
		return ST_OK;
	v = realloc(res->names, (res->n_names + 1) * sizeof(*v));
	if (!v)
		return ST_E_NOMEM;
	res->names = v;
	v[res->n_names] = strdup(name);
	if (!v[res->n_names])
		return ST_E_NOMEM;
	st_sanitize(v[res->n_names]);
	res->n_names++;
	return ST_OK;
}

/*
 * The names a peer is matched by: the DNS subjectAltNames, else every CN (as
 * Postfix and OpenSSL). Fails closed: when the extension cannot be read, or
 * a name in it cannot, no name is given at all, never the CN in its place.
 */
static int collect_names(gnutls_x509_crt_t c, struct st_verify_result *res)
{
	char *buf;
	size_t size, k;
	unsigned i, type;
	bool any_dns = false, broken = false;
	int rc;

	/* every entry is walked, whatever comes first: a DNS name after many
	 * others must still rule out the CN */
	for (i = 0;; i++) {
		if (i >= SAN_WALK_MAX) {
			broken = true;
			break;
		}
		size = 0;
		rc = gnutls_x509_crt_get_subject_alt_name2(c, i, NULL, &size, &type, NULL);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (rc != GNUTLS_E_SHORT_MEMORY_BUFFER && rc < 0) {
			broken = true;
			break;
		}
		if (type != GNUTLS_SAN_DNSNAME)
			continue;
		any_dns = true;
		if (size > 65536) {
			broken = true;
			break;
		}
		buf = malloc(size + 1);
		if (!buf)
			return ST_E_NOMEM;
		rc = gnutls_x509_crt_get_subject_alt_name2(c, i, buf, &size, &type, NULL);
		if (rc < 0) {
			free(buf);
			broken = true;
			break;
		}
		buf[size] = '\0';
		/* a NUL inside a name must never match: it becomes '?' */
		for (k = 0; k < size; k++)
			if (buf[k] == '\0')
				buf[k] = '?';
		rc = add_name(res, buf);
		free(buf);
		if (rc)
			return rc;
	}
	if (broken) {
		for (k = 0; k < res->n_names; k++)
			free(res->names[k]);
		res->n_names = 0;
		return ST_OK;
	}
	if (any_dns)
		return ST_OK;
	for (i = 0; i < NAMES_MAX; i++) {
		char cn[1024];
		size = sizeof(cn) - 1;
		if (gnutls_x509_crt_get_dn_by_oid(c, GNUTLS_OID_X520_COMMON_NAME, i, 0, cn, &size) <
		    0)
			break;
		cn[size < sizeof(cn) ? size : sizeof(cn) - 1] = '\0';
		if ((rc = add_name(res, cn)) != 0)
			return rc;
	}
	return ST_OK;
}

bool st_key_matches(const struct st_x509_item *key, const struct st_x509_item *cert)
{
	char a[ST_FINGERPRINT_MAX], b[ST_FINGERPRINT_MAX];

	return st_x509_item_fingerprint(key, ST_DIGEST_SHA256, true, a) == 0 &&
	       st_x509_item_fingerprint(cert, ST_DIGEST_SHA256, true, b) == 0 && strcmp(a, b) == 0;
}

/* ---- results ---- */

const char *st_verr_name(enum st_verr code)
{
	switch (code) {
	case ST_V_UNKNOWN_ISSUER:
		return "unknown_issuer";
	case ST_V_SELF_SIGNED:
		return "self_signed";
	case ST_V_SELF_SIGNED_IN_CHAIN:
		return "self_signed_in_chain";
	case ST_V_EXPIRED:
		return "expired";
	case ST_V_NOT_YET_VALID:
		return "not_yet_valid";
	case ST_V_BAD_SIGNATURE:
		return "bad_signature";
	case ST_V_INSECURE_ALGORITHM:
		return "insecure_algorithm";
	case ST_V_INVALID_CA:
		return "invalid_ca";
	case ST_V_PATH_LENGTH:
		return "path_length_exceeded";
	case ST_V_CHAIN_TOO_LONG:
		return "chain_too_long";
	case ST_V_WRONG_PURPOSE:
		return "wrong_purpose";
	case ST_V_NAME_MISMATCH:
		return "name_mismatch";
	case ST_V_REVOKED:
		return "revoked";
	case ST_V_REVOCATION_UNAVAILABLE:
		return "revocation_unavailable";
	case ST_V_EXPIRES_SOON:
		return "expires_soon";
	case ST_V_KEY_MISMATCH:
		return "key_mismatch";
	case ST_V_KEY_PERMISSIONS:
		return "key_permissions";
	case ST_V_WRONG_ORDER:
		return "wrong_order";
	case ST_V_NAME_CONSTRAINTS:
		return "name_constraints";
	case ST_V_OTHER:
		break;
	}
	return "other";
}

int st_verify_result_add(struct st_verify_result *res, bool warning, enum st_verr code, int depth,
                         int openssl_code, const char *fmt, ...)
{
	struct st_verify_issue **list = warning ? &res->warnings : &res->errors;
	size_t *n = warning ? &res->n_warnings : &res->n_errors;
	struct st_verify_issue *v, *it;
	size_t len;
	va_list ap;

	v = realloc(*list, (*n + 1) * sizeof(*v));
	if (!v)
		return ST_E_NOMEM;
	*list = v;
	it = &v[*n];
	it->code = code;
	it->depth = depth;
	it->openssl_code = openssl_code;
	va_start(ap, fmt);
	vsnprintf(it->message, sizeof(it->message), fmt, ap);
	va_end(ap);
	len = strlen(it->message);
	if (openssl_code && len < sizeof(it->message))
		snprintf(it->message + len, sizeof(it->message) - len, " (openssl verify code %d)",
		         openssl_code);
	st_sanitize(it->message);
	(*n)++;
	if (!warning)
		res->status = ST_VERIFY_FAIL;
	else if (res->status == ST_VERIFY_OK)
		res->status = ST_VERIFY_WARN;
	return ST_OK;
}

void st_verify_result_release(struct st_verify_result *res)
{
	size_t i;

	for (i = 0; i < res->n_chain; i++) {
		free(res->chain[i].subject);
		free(res->chain[i].issuer);
	}
	free(res->chain);
	for (i = 0; i < res->n_names; i++)
		free(res->names[i]);
	free(res->names);
	free(res->errors);
	free(res->warnings);
	memset(res, 0, sizeof(*res));
}

/* ---- chains ---- */

struct node {
	gnutls_x509_crt_t crt;
	const char *source; /* "file", "untrusted", "trust" */
};

static void date_text(time_t t, char *buf, size_t size)
{
	if (st_time_iso(t, buf, size))
		snprintf(buf, size, "?");
}

/* Build the path from the leaf: trusted issuers first (as OpenSSL does), then candidates. */
static int build_path(const struct st_verify_params *p, gnutls_x509_crt_t leaf,
                      gnutls_x509_crt_t *cand, const char **cand_src, bool *used, size_t n_cand,
                      struct node *path, size_t *len, struct st_verify_result *res, bool *trusted)
{
	/* looking a name up fills the trust store's index: a cache, not a change */
	struct st_trust *trust = (struct st_trust *)p->trust;
	size_t i;
	char *dn;

	*len = 1;
	*trusted = false;
	path[0].crt = leaf;
	path[0].source = "file";
	for (;;) {
		gnutls_x509_crt_t cur = path[*len - 1].crt, a, next = NULL;
		bool self = crt_is_self_issued(cur);
		const char *src = NULL;

		if (trust_contains(trust, cur) && (self || p->partial_chain)) {
			path[*len - 1].source = "trust";
			*trusted = true;
			return ST_OK;
		}
		if (!self && (a = trust_issuer(trust, cur)) != NULL) {
			next = a;
			src = "trust";
		} else if (self) {
			dn = crt_dn(cur, false);
			if (*len == 1)
				st_verify_result_add(res, false, ST_V_SELF_SIGNED, 0, 18,
				                     "self-signed certificate: '%s' is not trusted",
				                     dn ? dn : "");
			else
				st_verify_result_add(
				    res, false, ST_V_SELF_SIGNED_IN_CHAIN, (int)*len - 1, 19,
				    "self-signed certificate in certificate chain: "
				    "'%s' is not trusted",
				    dn ? dn : "");
			free(dn);
			return ST_OK;
		} else {
			for (i = 0; i < n_cand; i++)
				if (!used[i] && gnutls_x509_crt_check_issuer(cur, cand[i])) {
					used[i] = true;
					next = cand[i];
					src = cand_src[i];
					break;
				}
		}
		if (!next) {
			bool from_trust = strcmp(path[*len - 1].source, "trust") == 0;
			dn = crt_dn(cur, true);
			st_verify_result_add(res, false, ST_V_UNKNOWN_ISSUER, (int)*len - 1,
			                     from_trust ? 2 : 20, "%s: issuer '%s' not found",
			                     from_trust ? "unable to get issuer certificate"
			                                : "unable to get local issuer certificate",
			                     dn ? dn : "");
			free(dn);
			return ST_OK;
		}
		if (*len >= ST_VERIFY_MAX_DEPTH) {
			st_verify_result_add(
			    res, false, ST_V_CHAIN_TOO_LONG, (int)*len - 1, 22,
			    "certificate chain too long: more than %d certificates",
			    ST_VERIFY_MAX_DEPTH);
			return ST_OK;
		}
		path[*len].crt = next;
		path[*len].source = src;
		(*len)++;
		if (strcmp(src, "trust") == 0 && (crt_is_self_issued(next) || p->partial_chain)) {
			*trusted = true;
			return ST_OK;
		}
	}
}

static void check_times(const struct st_verify_params *p, const struct node *path, size_t len,
                        struct st_verify_result *res)
{
	char date[32];
	size_t i;

	for (i = 0; i < len; i++) {
		time_t nb = gnutls_x509_crt_get_activation_time(path[i].crt);
		time_t na = gnutls_x509_crt_get_expiration_time(path[i].crt);
		if (nb != (time_t)-1 && p->at < nb) {
			date_text(nb, date, sizeof(date));
			st_verify_result_add(res, false, ST_V_NOT_YET_VALID, (int)i, 9,
			                     "certificate is not yet valid: not before %s", date);
		}
		if (na != (time_t)-1 && p->at > na) {
			date_text(na, date, sizeof(date));
			st_verify_result_add(res, false, ST_V_EXPIRED, (int)i, 10,
			                     "certificate has expired: not after %s", date);
			continue;
		}
		if (na == (time_t)-1)
			continue;
		if (p->crit_days > 0 && na - p->at < (time_t)p->crit_days * 86400) {
			date_text(na, date, sizeof(date));
			st_verify_result_add(
			    res, false, ST_V_EXPIRES_SOON, (int)i, 0,
			    "certificate expires within %d days (--crit-days): not "
			    "after %s, in %lld days",
			    p->crit_days, date, (long long)((na - p->at) / 86400));
		} else if (p->warn_days > 0 && na - p->at < (time_t)p->warn_days * 86400) {
			date_text(na, date, sizeof(date));
			st_verify_result_add(
			    res, true, ST_V_EXPIRES_SOON, (int)i, 0,
			    "certificate expires within %d days (--warn-days): not "
			    "after %s, in %lld days",
			    p->warn_days, date, (long long)((na - p->at) / 86400));
		}
	}
}

/* GnuTLS says the issuer's constraints refuse the link: key usage, or name constraints? */
static void constraint_failure(const struct node *path, size_t i, struct st_verify_result *res)
{
	unsigned char buf[8];
	size_t size = sizeof(buf);
	unsigned ku = 0, critical;

	if (gnutls_x509_crt_get_key_usage(path[i + 1].crt, &ku, NULL) >= 0 &&
	    !(ku & GNUTLS_KEY_KEY_CERT_SIGN))
		st_verify_result_add(res, false, ST_V_INVALID_CA, (int)i + 1, 32,
		                     "key usage does not include certificate signing: the issuer "
		                     "may not sign certificates");
	else if (gnutls_x509_crt_get_extension_by_oid(path[i + 1].crt, "2.5.29.30", 0, buf, &size,
	                                              &critical) !=
	         GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		st_verify_result_add(res, false, ST_V_NAME_CONSTRAINTS, (int)i, 47,
		                     "permitted subtree violation: the certificate's names are "
		                     "outside its issuer's name constraints");
	else
		/* GnuTLS says this when the issuer's key cannot have made the
		 * signature at all (another key type) */
		st_verify_result_add(res, false, ST_V_BAD_SIGNATURE, (int)i, 7,
		                     "certificate signature failure: the issuer's key cannot have "
		                     "made this signature");
}

/*
 * Verify each link of the path (signature, algorithm, the issuer being a CA
 * allowed to sign, the certificate's critical extensions) and say where it
 * breaks, then the path length constraints.
 */
static void check_signatures(const struct node *path, size_t len, struct st_verify_result *res,
                             bool links)
{
	unsigned flags =
	    GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS;
	unsigned status, other;
	size_t i;
	int pathlen;
	unsigned ca;

	for (i = 0; links && i + 1 < len; i++) {
		/* a version 1 certificate may issue others only as a self-signed anchor */
		unsigned f = flags;
		if (!(strcmp(path[i + 1].source, "trust") == 0 &&
		      crt_is_self_issued(path[i + 1].crt)))
			f |= GNUTLS_VERIFY_DO_NOT_ALLOW_X509_V1_CA_CRT;
		if (gnutls_x509_crt_verify(path[i].crt, &path[i + 1].crt, 1, f, &status) < 0)
			status = GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNATURE_FAILURE;
		if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
			st_verify_result_add(res, false, ST_V_UNKNOWN_ISSUER, (int)i, 20,
			                     "unable to get local issuer certificate: the issuer's "
			                     "name or key identifier does not match");
		if (status & GNUTLS_CERT_SIGNATURE_FAILURE)
			st_verify_result_add(
			    res, false, ST_V_BAD_SIGNATURE, (int)i, 7,
			    "certificate signature failure: the issuer's key does not "
			    "verify it");
		if (status & GNUTLS_CERT_INSECURE_ALGORITHM)
			st_verify_result_add(
			    res, false, ST_V_INSECURE_ALGORITHM, (int)i, 68,
			    "insecure algorithm: the signature uses an algorithm or "
			    "key size no longer accepted");
		if (status & GNUTLS_CERT_SIGNER_NOT_CA)
			st_verify_result_add(res, false, ST_V_INVALID_CA, (int)i + 1, 79,
			                     "invalid CA certificate: the issuer is not a CA "
			                     "(basicConstraints CA:TRUE missing)");
		else if (status & GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE)
			constraint_failure(path, i, res);
		if (status & GNUTLS_CERT_UNKNOWN_CRIT_EXTENSIONS)
			st_verify_result_add(res, false, ST_V_OTHER, (int)i, 34,
			                     "unhandled critical extension");
		other = status & ~(GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNATURE_FAILURE |
		                   GNUTLS_CERT_INSECURE_ALGORITHM | GNUTLS_CERT_SIGNER_NOT_CA |
		                   GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE |
		                   GNUTLS_CERT_UNKNOWN_CRIT_EXTENSIONS | GNUTLS_CERT_EXPIRED |
		                   GNUTLS_CERT_NOT_ACTIVATED | GNUTLS_CERT_SIGNER_NOT_FOUND);
		if (other) {
			gnutls_datum_t text = {NULL, 0};
			if (gnutls_certificate_verification_status_print(other, GNUTLS_CRT_X509,
			                                                 &text, 0) >= 0) {
				st_verify_result_add(res, false, ST_V_OTHER, (int)i, 0, "%.*s",
				                     (int)text.size, (const char *)text.data);
				gnutls_free(text.data);
			}
		}
	}
	/* pathLenConstraint: how many CA certificates may follow below */
	for (i = 1; i < len; i++) {
		pathlen = -1;
		ca = 0;
		if (gnutls_x509_crt_get_basic_constraints(path[i].crt, NULL, &ca, &pathlen) >= 0 &&
		    ca && pathlen >= 0 && (int)i - 1 > pathlen)
			st_verify_result_add(
			    res, false, ST_V_PATH_LENGTH, (int)i, 25,
			    "path length constraint exceeded: %d CA certificate(s) "
			    "below one that allows %d",
			    (int)i - 1, pathlen);
	}
}

/* Does c's extended key usage allow the purpose (or say nothing)? */
static bool eku_allows(gnutls_x509_crt_t c, const char *oid)
{
	char buf[128];
	size_t size;
	unsigned i;
	bool any = false;

	for (i = 0; i < 64; i++) {
		size = sizeof(buf);
		if (gnutls_x509_crt_get_key_purpose_oid(c, i, buf, &size, NULL) < 0)
			break;
		any = true;
		if (strcmp(buf, oid) == 0 || strcmp(buf, OID_ANY_EKU) == 0)
			return true;
	}
	return !any;
}

static void check_purpose(const struct st_verify_params *p, const struct node *path, size_t len,
                          struct st_verify_result *res)
{
	const char *oid = p->purpose == ST_PURPOSE_SERVER ? OID_SERVER_AUTH : OID_CLIENT_AUTH;
	const char *what = p->purpose == ST_PURPOSE_SERVER ? "TLS server" : "TLS client";
	unsigned ku = 0, want;
	size_t i;

	if (p->purpose == ST_PURPOSE_ANY)
		return;
	for (i = 0; i < len; i++) {
		/* anchors too: OpenSSL refuses an EKU-restricted CA from the store */
		if (!eku_allows(path[i].crt, oid))
			st_verify_result_add(
			    res, false, ST_V_WRONG_PURPOSE, (int)i, 26,
			    "unsuitable certificate purpose: its extended key usage "
			    "does not allow %s authentication",
			    what);
	}
	want = p->purpose == ST_PURPOSE_SERVER
	           ? GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT |
	                 GNUTLS_KEY_KEY_AGREEMENT
	           : GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_AGREEMENT;
	if (gnutls_x509_crt_get_key_usage(path[0].crt, &ku, NULL) >= 0 && !(ku & want))
		st_verify_result_add(res, false, ST_V_WRONG_PURPOSE, 0, 26,
		                     "unsuitable certificate purpose: its key usage does not allow "
		                     "%s authentication",
		                     what);
}

static void check_names(const struct st_verify_params *p, struct st_verify_result *res)
{
	struct st_buf names;
	size_t i, j;

	if (p->n_match == 0)
		return;
	res->name_checked = true;
	for (i = 0; i < p->n_match; i++)
		for (j = 0; j < res->n_names; j++)
			if (st_name_matches(res->names[j], p->match[i], p->wildcard_multi_label)) {
				res->name_matched = true;
				snprintf(res->matched, sizeof(res->matched), "%s", res->names[j]);
				return;
			}
	st_buf_init(&names, 4096);
	for (j = 0; j < res->n_names; j++)
		st_buf_addf(&names, "%s%s", j ? ", " : "", res->names[j]);
	st_buf_addf(&names, "%s", res->n_names ? "" : "none");
	{
		struct st_buf pats;
		st_buf_init(&pats, 4096);
		for (i = 0; i < p->n_match; i++)
			st_buf_addf(&pats, "%s%s", i ? ", " : "", p->match[i]);
		st_verify_result_add(
		    res, false, ST_V_NAME_MISMATCH, 0, 62,
		    "hostname mismatch: the certificate's names (%s) match none of "
		    "%s",
		    st_buf_str(&names), st_buf_str(&pats));
		st_buf_release(&pats);
	}
	st_buf_release(&names);
}

static void check_revocation(const struct st_verify_params *p, const struct node *path, size_t len,
                             bool trusted, struct st_verify_result *res)
{
	char date[32];
	size_t i;

	if (!p->crls && !p->ocsp)
		return;
	for (i = 0; i < len; i++) {
		struct st_rev_result crl = {0}, ocsp = {0}, *r = &res->chain[i].revocation;
		if (i + 1 >= len)
			continue; /* the top: an anchor, or a certificate without issuer */
		crl.status = ocsp.status = ST_REV_NOT_CHECKED;
		crl.reason = ocsp.reason = -1;
		/* a chain that is not trusted gets no fetch: its URLs are anyone's */
		if (p->crls && p->crl_fetch && trusted) {
			struct st_error e;
			st_crl_set_fetch(p->crls, path[i].crt, path[i + 1].crt, p->at, &p->fetch,
			                 &e);
		}
		if (p->crls)
			st_crl_check(p->crls, path[i].crt, path[i + 1].crt, p->at, &crl);
		if (p->ocsp && trusted)
			st_ocsp_check(path[i].crt, path[i + 1].crt, p->at, &p->fetch, &ocsp);
		/* revoked by either wins, then good by either, then what is left */
		if (crl.status == ST_REV_REVOKED ||
		    (ocsp.status != ST_REV_REVOKED &&
		     (crl.status == ST_REV_GOOD || ocsp.status == ST_REV_NOT_CHECKED)))
			*r = crl;
		else
			*r = ocsp;
		if (r->status == ST_REV_NOT_CHECKED)
			*r = crl.status != ST_REV_NOT_CHECKED ? crl : ocsp;
		if ((r->status == ST_REV_UNAVAILABLE || r->status == ST_REV_UNKNOWN) &&
		    crl.status != ST_REV_NOT_CHECKED && ocsp.status != ST_REV_NOT_CHECKED &&
		    crl.status != ST_REV_GOOD && ocsp.status != ST_REV_GOOD) {
			/* neither answered: say why for both */
			char both[sizeof(r->detail)];
			snprintf(both, sizeof(both), "CRL: %.120s; OCSP: %.120s", crl.detail,
			         ocsp.detail);
			snprintf(r->detail, sizeof(r->detail), "%s", both);
		}
		switch (r->status) {
		case ST_REV_REVOKED:
			date_text(r->revoked_at, date, sizeof(date));
			st_verify_result_add(res, false, ST_V_REVOKED, (int)i, 23,
			                     "certificate revoked on %s, reason %s (%s)", date,
			                     st_rev_reason_name(r->reason), r->source);
			break;
		case ST_REV_UNKNOWN:
		case ST_REV_UNAVAILABLE:
			st_verify_result_add(
			    res, !p->require_revocation, ST_V_REVOCATION_UNAVAILABLE, (int)i,
			    strcmp(r->source, "ocsp") == 0 ? 0 : 3, "revocation status %s: %s",
			    r->status == ST_REV_UNKNOWN ? "unknown" : "unavailable", r->detail);
			break;
		case ST_REV_GOOD:
		case ST_REV_NOT_CHECKED:
			break;
		}
	}
}

static bool path_has_name_constraints(const struct node *path, size_t len)
{
	unsigned char buf[8];
	size_t i, size;
	unsigned critical;

	for (i = 1; i < len; i++) {
		size = sizeof(buf);
		if (gnutls_x509_crt_get_extension_by_oid(path[i].crt, "2.5.29.30", 0, buf, &size,
		                                         &critical) !=
		    GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			return true;
	}
	return false;
}

/* What GnuTLS finds that our own checks have not said (name constraints across the chain). */
static unsigned check_gnutls(const struct st_verify_params *p, const struct node *path, size_t len,
                             struct st_verify_result *res)
{
	struct st_trust *trust = (struct st_trust *)p->trust; /* the index fills, as above */
	gnutls_x509_crt_t list[ST_VERIFY_MAX_DEPTH];
	unsigned status = 0, handled, flags;
	gnutls_datum_t text = {NULL, 0};
	size_t i;
	int rc;

	flags = GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS |
	        GNUTLS_VERIFY_ALLOW_UNSORTED_CHAIN;
	pthread_mutex_lock(&trust->lock);
	/* GnuTLS looks anchors up by the chain's names: every one it could find is loaded */
	for (i = 0; i < len; i++) {
		list[i] = path[i].crt;
		trust_load_crt_name(trust, list[i], false);
		trust_load_crt_name(trust, list[i], true);
	}
	rc = gnutls_x509_trust_list_verify_crt2(trust->tl, list, (unsigned)len, NULL, 0, flags,
	                                        &status, NULL);
	pthread_mutex_unlock(&trust->lock);
	if (rc < 0)
		return GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNATURE_FAILURE;
	handled = GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNATURE_FAILURE | GNUTLS_CERT_SIGNER_NOT_CA |
	          GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_INSECURE_ALGORITHM |
	          GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED | GNUTLS_CERT_PURPOSE_MISMATCH |
	          GNUTLS_CERT_REVOKED | GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE;
	if ((status & GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE)) {
		size_t k;
		bool said = false;
		for (k = 0; k < res->n_errors; k++)
			if (res->errors[k].code == ST_V_NAME_CONSTRAINTS ||
			    res->errors[k].code == ST_V_INVALID_CA)
				said = true;
		if (!said) /* a constraint of a CA further up than the issuer */
			st_verify_result_add(res, false, ST_V_NAME_CONSTRAINTS, 0, 47,
			                     "permitted subtree violation: the certificate's names "
			                     "are outside a CA's name constraints");
	}
	if (!(status & ~handled))
		return status;
	if (gnutls_certificate_verification_status_print(status & ~handled, GNUTLS_CRT_X509, &text,
	                                                 0) >= 0) {
		st_verify_result_add(res, false, ST_V_OTHER, -1, 0, "%.*s", (int)text.size,
		                     (const char *)text.data);
		gnutls_free(text.data);
	}
	return status;
}

/* Is a later certificate of the file issued by the first one? Then the file is upside down. */
static void check_order(struct st_x509_item *const *certs, size_t n, struct st_verify_result *res)
{
	gnutls_x509_crt_t first = st_x509_item_crt(certs[0]);
	size_t i;

	if (!crt_is_ca(first))
		return;
	for (i = 1; i < n; i++) {
		gnutls_x509_crt_t c = st_x509_item_crt(certs[i]);
		if (c && !crt_is_self_issued(c) && gnutls_x509_crt_check_issuer(c, first)) {
			st_verify_result_add(
			    res, false, ST_V_WRONG_ORDER, 0, 0,
			    "wrong order: the first certificate is a CA that issued "
			    "certificate %zu of the file; the server's own "
			    "certificate must come first",
			    i + 1);
			return;
		}
	}
}

int st_verify_chain(const struct st_verify_params *p, struct st_x509_item *const *certs, size_t n,
                    struct st_x509_item *const *extra, size_t n_extra, struct st_verify_result *res,
                    struct st_error *err)
{
	gnutls_x509_crt_t *cand = NULL;
	const char **cand_src = NULL;
	bool *used = NULL, trusted = false;
	struct node path[ST_VERIFY_MAX_DEPTH];
	size_t len = 0, n_cand = 0, i, errors_before_names;
	int rc = ST_OK;

	memset(res, 0, sizeof(*res));
	res->status = ST_VERIFY_OK;
	res->postfix_status = "Untrusted";
	if (n == 0 || !st_x509_item_crt(certs[0])) {
		st_error_set(err, ST_ERR_INPUT, "no certificate to verify");
		return ST_E_INVALID;
	}
	cand = calloc(n + n_extra + 1, sizeof(*cand));
	cand_src = calloc(n + n_extra + 1, sizeof(*cand_src));
	used = calloc(n + n_extra + 1, sizeof(*used));
	if (!cand || !cand_src || !used) {
		rc = ST_E_NOMEM;
		goto out;
	}
	for (i = 1; i < n; i++)
		if (st_x509_item_crt(certs[i])) {
			cand[n_cand] = st_x509_item_crt(certs[i]);
			cand_src[n_cand++] = "file";
		}
	for (i = 0; i < n_extra; i++)
		if (st_x509_item_crt(extra[i])) {
			cand[n_cand] = st_x509_item_crt(extra[i]);
			cand_src[n_cand++] = "untrusted";
		}

	check_order(certs, n, res);
	rc = build_path(p, st_x509_item_crt(certs[0]), cand, cand_src, used, n_cand, path, &len,
	                res, &trusted);
	if (rc)
		goto out;
	res->chain = calloc(len, sizeof(*res->chain));
	if (!res->chain) {
		rc = ST_E_NOMEM;
		goto out;
	}
	res->n_chain = len;
	for (i = 0; i < len; i++) {
		struct st_verify_cert *c = &res->chain[i];
		c->subject = crt_dn(path[i].crt, false);
		c->issuer = crt_dn(path[i].crt, true);
		c->not_before = gnutls_x509_crt_get_activation_time(path[i].crt);
		c->not_after = gnutls_x509_crt_get_expiration_time(path[i].crt);
		st_x509_crt_fingerprint(path[i].crt, p->digest, false, c->fingerprint);
		st_x509_crt_fingerprint(path[i].crt, p->digest, true, c->pkey_fingerprint);
		c->source = path[i].source;
		c->revocation.status = ST_REV_NOT_CHECKED;
		c->revocation.reason = -1;
		if (!c->subject || !c->issuer) {
			rc = ST_E_NOMEM;
			goto out;
		}
	}
	check_times(p, path, len, res);
	/* every link once, here; GnuTLS's whole-chain check only when a CA in the
	 * path carries name constraints, which bind more than the next link */
	check_signatures(path, len, res, true);
	if (trusted && path_has_name_constraints(path, len))
		check_gnutls(p, path, len, res);
	check_purpose(p, path, len, res);
	{
		/* fetching needs a chain that holds: a threshold or the file's order
		 * do not stop it, as they do not make the chain untrusted */
		size_t k, hard = 0;
		for (k = 0; k < res->n_errors; k++)
			if (res->errors[k].code != ST_V_EXPIRES_SOON &&
			    res->errors[k].code != ST_V_WRONG_ORDER)
				hard++;
		check_revocation(p, path, len, trusted && hard == 0, res);
	}
	res->staple.reason = -1;
	if (p->ocsp_staple && p->ocsp_staple_len) {
		if (len > 1) {
			st_ocsp_check_response(path[0].crt, path[1].crt, p->at, p->ocsp_staple,
			                       p->ocsp_staple_len, NULL, "stapled response",
			                       &res->staple);
		} else {
			res->staple.status = ST_REV_UNAVAILABLE;
			snprintf(res->staple.source, sizeof(res->staple.source), "ocsp");
			snprintf(res->staple.detail, sizeof(res->staple.detail),
			         "stapled response: the chain has no issuer of the leaf to check "
			         "it with");
		}
	}
	errors_before_names = res->n_errors;
	for (i = 0; i < res->n_errors; i++)
		if (res->errors[i].code == ST_V_EXPIRES_SOON ||
		    res->errors[i].code == ST_V_WRONG_ORDER)
			errors_before_names--; /* a threshold or the file's order: the chain holds */
	rc = collect_names(path[0].crt, res);
	if (rc)
		goto out;
	check_names(p, res);
	res->trusted = trusted && errors_before_names == 0;
	if (!res->trusted)
		res->postfix_status = "Untrusted";
	else if (res->name_checked && res->name_matched)
		res->postfix_status = "Verified";
	else
		res->postfix_status = "Trusted";
out:
	free(cand);
	free(cand_src);
	free(used);
	if (rc == ST_E_NOMEM)
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
	return rc;
}

bool st_fingerprint_matches(const char *fp, const char *pattern)
{
	while (*fp || *pattern) {
		if (*fp == ':') {
			fp++;
			continue;
		}
		if (*pattern == ':') {
			pattern++;
			continue;
		}
		if (toupper((unsigned char)*fp) != toupper((unsigned char)*pattern))
			return false;
		fp++;
		pattern++;
	}
	return true;
}

bool st_fingerprint_list_matches(const struct st_x509_item *leaf, enum st_digest d,
                                 const char *list)
{
	char fp[ST_FINGERPRINT_MAX], pfp[ST_FINGERPRINT_MAX], one[ST_FINGERPRINT_MAX];
	const char *q = list;

	if (!leaf || st_x509_item_fingerprint(leaf, d, false, fp) ||
	    st_x509_item_fingerprint(leaf, d, true, pfp))
		return false;
	while (*q) {
		size_t len;
		q += strspn(q, "|, \t");
		len = strcspn(q, "|, \t");
		if (!len)
			break;
		snprintf(one, sizeof(one), "%.*s",
		         (int)(len < sizeof(one) - 1 ? len : sizeof(one) - 1), q);
		if (st_fingerprint_matches(fp, one) || st_fingerprint_matches(pfp, one))
			return true;
		q += len;
	}
	return false;
}
