/* verify.h: trust stores, chain building and checking, Postfix name matching, revocation */
#ifndef ST_VERIFY_H
#define ST_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "revoke.h"
#include "util.h"
#include "x509.h"

/* Longest chain built, leaf and anchor included (OpenSSL's default depth is 100; real chains are 2-4). */
#define ST_VERIFY_MAX_DEPTH 10

/* A note about a trust store: a CA file entry that is not a CA, a CA directory problem. */
struct st_trust_note {
	char message[512];
};

/* Trust anchors. Opaque. */
struct st_trust;

/* A new empty trust store, or NULL when out of memory. */
struct st_trust *st_trust_new(void);

/* Free a trust store. NULL is a no-op. */
void st_trust_free(struct st_trust *t);

/*
 * Add every certificate of a PEM bundle (as smtp_tls_CAfile). A file
 * without a certificate is an error (class ST_ERR_INPUT); a certificate that
 * is not a CA (no basicConstraints CA:TRUE) is kept, with a note.
 */
int st_trust_add_file(struct st_trust *t, const char *path, struct st_error *err);

/*
 * The same trust as st_trust_add_file, for a PEM bundle of certificates:
 * indexed by subject and parsed when a chain looks the name up (a bundle of
 * 140 CAs costs 1 ms instead of 40), without the notes about each
 * certificate. Any other file is read whole, as st_trust_add_file reads it.
 */
int st_trust_index_file(struct st_trust *t, const char *path, struct st_error *err);

/*
 * Add the certificates of an OpenSSL-style hashed directory (as
 * smtp_tls_CApath): only the HHHHHHHH.N names, which is all OpenSSL and
 * Postfix look at. Notes name the certificate files no hash name reaches
 * (run openssl rehash) and hash names that point nowhere.
 */
int st_trust_add_dir(struct st_trust *t, const char *dir, struct st_error *err);

/*
 * Add the system's trust store (ca-certificates); a note when it is empty.
 * The bundle (configure --with-system-ca-file) is indexed by subject, and a
 * certificate parsed only when a chain looks its name up; without that file,
 * GnuTLS's system trust is loaded whole.
 */
int st_trust_add_system(struct st_trust *t, struct st_error *err);

/* The notes collected so far, and how many anchors the store holds. */
const struct st_trust_note *st_trust_notes(const struct st_trust *t, size_t *n);
size_t st_trust_count(const struct st_trust *t);

/*
 * How many certificates of indexed bundles (the system store) the store
 * holds, and how many of them verifications have parsed so far: a chain
 * parses only the anchors its names lead to.
 */
void st_trust_stats(const struct st_trust *t, size_t *indexed, size_t *parsed);

enum st_purpose { ST_PURPOSE_ANY = 0, ST_PURPOSE_SERVER, ST_PURPOSE_CLIENT };

/* What one verification checks. Strings are borrowed. */
struct st_verify_params {
	const struct st_trust *trust;
	enum st_purpose purpose;
	/* Names: Postfix match patterns after strategy expansion: a host name,
	 * or ".domain" for one or more labels below domain. None: no name check. */
	const char *const *match;
	size_t n_match;
	bool wildcard_multi_label; /* '*' may stand for several labels (see st_name_matches) */
	bool partial_chain; /* a trusted certificate that is not self-signed may end the chain */
	time_t at;          /* the moment to verify at */
	int warn_days;      /* expiry within this many days: a warning (0: off) */
	int crit_days;      /* expiry within this many days: a failure (0: off) */
	/* revocation */
	struct st_crl_set *crls; /* NULL: no CRL check; fetched CRLs are added to it */
	bool crl_fetch;          /* fetch the CRLs the chain's certificates name */
	bool ocsp;
	bool require_revocation; /* unavailable is a failure, not a warning */
	struct st_fetch_params fetch;
	enum st_digest digest; /* for the chain's fingerprints */
	/* an OCSP response the server stapled in the handshake (DER), checked against
	 * the leaf and its issuer as the chain was built; NULL: none */
	const unsigned char *ocsp_staple;
	size_t ocsp_staple_len;
};

/* Why a chain fails or warns. The stable names are in st_verr_name. */
enum st_verr {
	ST_V_UNKNOWN_ISSUER,         /* 20, or 2 when a trusted certificate's issuer is missing */
	ST_V_SELF_SIGNED,            /* 18 */
	ST_V_SELF_SIGNED_IN_CHAIN,   /* 19 */
	ST_V_EXPIRED,                /* 10 */
	ST_V_NOT_YET_VALID,          /* 9 */
	ST_V_BAD_SIGNATURE,          /* 7 */
	ST_V_INSECURE_ALGORITHM,     /* 68 */
	ST_V_INVALID_CA,             /* 79 (24 before OpenSSL 3), or 32 for key usage */
	ST_V_PATH_LENGTH,            /* 25 */
	ST_V_CHAIN_TOO_LONG,         /* 22 */
	ST_V_WRONG_PURPOSE,          /* 26 */
	ST_V_NAME_MISMATCH,          /* 62 */
	ST_V_REVOKED,                /* 23 */
	ST_V_REVOCATION_UNAVAILABLE, /* 3 for CRLs */
	ST_V_EXPIRES_SOON,           /* --warn-days / --crit-days */
	ST_V_KEY_MISMATCH,           /* --key: not the certificate's key */
	ST_V_KEY_PERMISSIONS,        /* --key: readable by group or others */
	ST_V_WRONG_ORDER,            /* the file's first certificate issued a later one */
	ST_V_NAME_CONSTRAINTS,       /* 47: outside an issuer's name constraints */
	ST_V_OTHER, /* a GnuTLS verdict with no better name (34: critical extension) */
};

/* "unknown_issuer", "expired", ... */
const char *st_verr_name(enum st_verr code);

struct st_verify_issue {
	enum st_verr code;
	int depth;         /* 0 = leaf; -1 when it is about no one certificate */
	int openssl_code;  /* X509_V_ERR_* as openssl verify prints it, 0 when none */
	char message[512]; /* plain words, with the OpenSSL code appended when there is one */
};

/* One certificate of the chain as built. Strings owned by the result. */
struct st_verify_cert {
	char *subject;
	char *issuer;
	time_t not_before, not_after;
	char fingerprint[ST_FINGERPRINT_MAX];
	char pkey_fingerprint[ST_FINGERPRINT_MAX];
	const char *source; /* "file", "untrusted" or "trust" (a trust anchor) */
	struct st_rev_result revocation;
};

enum st_verify_status { ST_VERIFY_OK, ST_VERIFY_WARN, ST_VERIFY_FAIL };

struct st_verify_result {
	enum st_verify_status status;
	bool trusted; /* the chain ends at a trust anchor and every check of it passed */
	bool name_checked;
	bool name_matched;
	char matched[256];          /* the certificate name that matched */
	const char *postfix_status; /* "Verified", "Trusted" or "Untrusted" */
	struct st_verify_issue *errors;
	size_t n_errors;
	struct st_verify_issue *warnings;
	size_t n_warnings;
	struct st_verify_cert *chain;
	size_t n_chain;
	char **names; /* the names a peer is matched by: DNS SANs, else the CN */
	size_t n_names;
	/* the stapled OCSP response (st_ocsp_check_response, from "stapled response"):
	 * ST_REV_NOT_CHECKED without one; unavailable when the chain has no issuer for
	 * the leaf. Reported, never an error of the chain: Postfix does not read staples. */
	struct st_rev_result staple;
};

/*
 * Verify certs[0] (the leaf) with certs[1..n-1] and extra[] as candidate
 * intermediates (a server's chain in any order, --untrusted files). Fills
 * *res (release with st_verify_result_release, also after a failure).
 * Returns 0, or a negative ST_E_* with err set when verification could not
 * run at all (out of memory); a failing chain is a result, not an error.
 */
int st_verify_chain(const struct st_verify_params *p, struct st_x509_item *const *certs, size_t n,
                    struct st_x509_item *const *extra, size_t n_extra, struct st_verify_result *res,
                    struct st_error *err);

/* Free what a result holds. */
void st_verify_result_release(struct st_verify_result *res);

/*
 * Add an issue to a result (an error, or a warning when warning is true) and
 * update its status. The message gets " (openssl verify code N)" appended
 * when openssl_code is not 0. Returns ST_E_NOMEM when it cannot.
 */
int st_verify_result_add(struct st_verify_result *res, bool warning, enum st_verr code, int depth,
                         int openssl_code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/*
 * Does a certificate name (from a DNS SAN or the CN) match a Postfix
 * pattern ("host.example.com", or ".example.com" for any name one or more
 * labels below, where a '*' counts as a label)? Case is ignored. A '*' is
 * special only as the whole first label of the certificate name, and then
 * stands for exactly one label; with multi_label for one or more. postconf(5)
 * documents tls_wildcard_matches_multiple_labels = yes as the default, but
 * Postfix 3.7 checks names with OpenSSL's X509_check_host and matches one
 * label only, whatever that parameter says (tests/cli/t0201 proves it
 * against a real Postfix), so one label is what smtptls does by default.
 */
bool st_name_matches(const char *cert_name, const char *pattern, bool multi_label);

/*
 * Expand Postfix match strategies into patterns: "hostname" gives
 * hostname, "nexthop" gives nexthop, "dot-nexthop" gives "." nexthop; other
 * words are literal names or ".domain" patterns. spec is separated by ':',
 * ',' or white space. Returns the number of patterns written to out (at
 * most max, each up to 255 bytes), or -1 with err set (class usage) when a
 * strategy has no name to expand to.
 */
int st_match_expand(const char *spec, const char *hostname, const char *nexthop, char (*out)[256],
                    size_t max, struct st_error *err);

/* Does a fingerprint match a Postfix match= digest? Case is ignored, and so are colons
 * on either side (Postfix 3.6 takes digests with or without them). */
bool st_fingerprint_matches(const char *fp, const char *pattern);

/* Does the leaf's certificate or public-key fingerprint (digest d) match one of a Postfix
 * fingerprint match list ("AA:BB...|CC:DD...", also separated by commas or white space)? */
bool st_fingerprint_list_matches(const struct st_x509_item *leaf, enum st_digest d,
                                 const char *list);

/* Does the private key in key (the first private key item) belong to the certificate? */
bool st_key_matches(const struct st_x509_item *key, const struct st_x509_item *cert);

#endif
