/* x509.h: load certificates and keys (PEM, DER, bundles), describe them, fingerprint them */
#ifndef ST_X509_H
#define ST_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util.h"

/* Digests Postfix accepts for fingerprints (smtp[d]_tls_fingerprint_digest). */
enum st_digest {
	ST_DIGEST_MD5,
	ST_DIGEST_SHA1,
	ST_DIGEST_SHA224,
	ST_DIGEST_SHA256,
	ST_DIGEST_SHA384,
	ST_DIGEST_SHA512,
};

/* Longest digest in bytes (SHA-512). */
#define ST_DIGEST_MAX 64
/* Room for a Postfix-format fingerprint of any digest, with its NUL. */
#define ST_FINGERPRINT_MAX (3 * ST_DIGEST_MAX)

/* The lowercase name of a digest ("sha256"). */
const char *st_digest_name(enum st_digest d);

/* Parse a digest name, case-insensitive; -1 when unknown. */
int st_digest_from_name(const char *name);

/* Length in bytes of a digest's output. */
size_t st_digest_len(enum st_digest d);

/* What one item of a file is. */
enum st_x509_kind {
	ST_X509_CERT,    /* an X.509 certificate */
	ST_X509_PUBKEY,  /* a SubjectPublicKeyInfo */
	ST_X509_PRIVKEY, /* a private key: only its public half is used */
	ST_X509_CSR,     /* a PKCS#10 request: only its subject and key are used */
};

/* "certificate", "public key", "private key", "certificate request". */
const char *st_x509_kind_name(enum st_x509_kind kind);

/* One certificate or key read from a file. Opaque. */
struct st_x509_item;

/* Reads the items of one buffer in order. Opaque. */
struct st_x509_reader;

/*
 * Start reading the certificates and keys in data (PEM with any number of
 * blocks, or DER objects back to back). data is borrowed and must outlive
 * the reader; name is copied and used in messages. Returns NULL when out of
 * memory.
 */
struct st_x509_reader *st_x509_reader_new(const char *name, const unsigned char *data, size_t len);

/*
 * Read the next item into *item (owned by the caller: st_x509_item_free).
 * Returns 1 with an item, 0 at the end, or a negative ST_E_* with err set
 * (class ST_ERR_INPUT, the message naming the file, the line or offset and
 * the reason). After an error in PEM the next call goes on with the next
 * block, so nothing after a bad block is lost; in DER, which cannot be
 * resynchronised, the reader is then at its end. A file with no
 * certificate or key at all is an error, reported at the end.
 */
int st_x509_reader_next(struct st_x509_reader *r, struct st_x509_item **item, struct st_error *err);

/* Free a reader. NULL is a no-op. */
void st_x509_reader_free(struct st_x509_reader *r);

/*
 * The errors of one file's reader folded into one report, so that a file of
 * 100000 bad blocks gives one line, not 100000: the first error and how many
 * more there were. Zero-initialise, add each error, then report.
 */
struct st_x509_bad {
	struct st_error first;
	unsigned long n; /* errors added */
};

/* Note one error of st_x509_reader_next. */
void st_x509_bad_add(struct st_x509_bad *b, const struct st_error *e);

/*
 * false when nothing was added; else true with *out the first error, its message
 * followed by " (and N more bad blocks)" when there were more.
 */
bool st_x509_bad_report(const struct st_x509_bad *b, struct st_error *out);

/* Free an item. NULL is a no-op. */
void st_x509_item_free(struct st_x509_item *item);

/* The item's kind. */
enum st_x509_kind st_x509_item_kind(const struct st_x509_item *item);

/*
 * For a certificate GnuTLS could not parse (kind ST_X509_CERT, fingerprints
 * from its raw DER, no other details): why; NULL for every other item.
 */
const char *st_x509_item_parse_problem(const struct st_x509_item *item);

/* Where the item starts: the PEM line (1-based), or 0 for DER. */
unsigned st_x509_item_line(const struct st_x509_item *item);

/* What can be said of an item. Strings are owned by the info. */
struct st_x509_info {
	enum st_x509_kind kind;
	char *subject; /* RFC 4514 DN; NULL for keys */
	char *issuer;  /* RFC 4514 DN; certificates only */
	char *serial;  /* upper-case hex; certificates only */
	char *cn;      /* first commonName of the subject, or NULL */
	char **san;    /* "DNS:name", "IP:addr", "email:x", "URI:x" */
	size_t n_san;
	bool has_validity; /* not_before/not_after are set (certificates) */
	time_t not_before;
	time_t not_after;
	bool is_ca;             /* basicConstraints CA:TRUE */
	bool self_issued;       /* subject equals issuer (a root, or a self-signed leaf) */
	char key_algorithm[32]; /* "RSA", "ECDSA", "Ed25519", ... */
	unsigned key_bits;
	char key_curve[32];     /* "SECP256R1", or "" */
	char sig_algorithm[48]; /* "RSA-SHA256", or "" */
};

/*
 * Describe an item. Strings in *info are sanitised (non-printable bytes
 * become '?'). Release with st_x509_info_release, also after a failure.
 */
int st_x509_item_info(const struct st_x509_item *item, struct st_x509_info *info,
                      struct st_error *err);

/* Free the strings of an info. */
void st_x509_info_release(struct st_x509_info *info);

/*
 * The digest of the DER certificate (pubkey false; certificates only) or of
 * the DER SubjectPublicKeyInfo (pubkey true) as Postfix prints fingerprint=
 * and pkey_fingerprint=: upper-case hex pairs joined by colons. out must have
 * ST_FINGERPRINT_MAX bytes. ST_E_INVALID when asking a key for its
 * certificate fingerprint.
 */
int st_x509_item_fingerprint(const struct st_x509_item *item, enum st_digest d, bool pubkey,
                             char *out);

/* The item as PEM ("CERTIFICATE" block), into out (reset first). Certificates only. */
int st_x509_item_pem(const struct st_x509_item *item, struct st_buf *out);

/* DANE TLSA selectors and matching types (RFC 6698). */
enum st_tlsa_selector { ST_TLSA_SEL_CERT = 0, ST_TLSA_SEL_SPKI = 1 };
enum st_tlsa_mtype { ST_TLSA_FULL = 0, ST_TLSA_SHA256 = 1, ST_TLSA_SHA512 = 2 };

/*
 * The certificate association data of a TLSA record for the item, in
 * lower-case hex without separators, into out (reset first; a full
 * certificate can be large). Selector 0 needs a certificate.
 */
int st_x509_item_tlsa_data(const struct st_x509_item *item, enum st_tlsa_selector sel,
                           enum st_tlsa_mtype mtype, struct st_buf *out);

/*
 * The subject Name of a DER certificate (borrowed, inside der), found by
 * stepping over the TLV headers of the fields before it, without parsing the
 * certificate: what indexes a CA bundle by name cheaply (a full parse of each
 * certificate costs about 0.1 ms). With prefix, der is only the start of the
 * certificate; ST_E_TOOBIG when the subject runs past it (try a longer one).
 * ST_E_PARSE when the structure is not a certificate's.
 */
int st_x509_der_subject(const unsigned char *der, size_t len, bool prefix,
                        const unsigned char **subject, size_t *subject_len);

/*
 * OpenSSL's canonical form of a DER Name (what X509_NAME_hash and name
 * comparison use): each string value as UTF-8, trimmed, inner white space
 * runs made one space, ASCII lowercased, re-encoded as UTF8String; the RDN
 * SETs concatenated without the outer SEQUENCE. out is reset first.
 * ST_E_PARSE for a malformed name.
 */
int st_x509_name_canon(const unsigned char *dn, size_t len, struct st_buf *out);

/*
 * A throwaway PKI for a test server: an ECDSA P-256 CA ("smtptls throwaway CA", valid
 * for days days from an hour ago) and a server certificate it signs for names (DNS
 * names, or IP addresses written as such; the first is also the CN; at most 16), with
 * serverAuth. PEM out: the CA certificate, the server chain (server then CA), the
 * server's key (PKCS#8). Each buffer is reset first. err names what failed (class
 * internal).
 */
int st_x509_make_throwaway(const char *const *names, size_t n_names, int days,
                           struct st_buf *ca_pem, struct st_buf *chain_pem,
                           struct st_buf *key_pem, struct st_error *err);

/* OpenSSL's subject name hash (the HHHHHHHH of a CApath link) of a canonical name. */
unsigned long st_x509_name_hash(const struct st_buf *canon);

#endif
