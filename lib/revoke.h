/* revoke.h: revocation of certificates: CRLs from files or fetched over HTTP, and OCSP */
#ifndef ST_REVOKE_H
#define ST_REVOKE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <gnutls/x509.h>

#include "util.h"

/* What is known of one certificate's revocation. */
enum st_rev_status {
	ST_REV_NOT_CHECKED = 0, /* nobody asked */
	ST_REV_GOOD,            /* a valid CRL or OCSP response says it is not revoked */
	ST_REV_REVOKED,         /* revoked: see reason and revoked_at */
	ST_REV_UNKNOWN,         /* the OCSP responder does not know the certificate */
	ST_REV_UNAVAILABLE,     /* no usable answer: no CRL, fetch failed, bad response... */
};

/* "not_checked", "good", "revoked", "unknown", "unavailable". */
const char *st_rev_status_name(enum st_rev_status s);

/* CRLReason (RFC 5280 5.3.1) as its name ("keyCompromise"); "unspecified" for -1,
 * "unknown" for a value that is no CRLReason (7, or out of range). */
const char *st_rev_reason_name(int reason);

/*
 * source is "crl" after st_crl_check and "ocsp" after st_ocsp_check, whatever
 * the status (so an unavailable answer says which mechanism failed). detail
 * is sanitised and says where the answer came from: "CRL from PATH", "CRL
 * from URL", "CRL from URL (cached in PATH)", "OCSP responder URL" (plus
 * "(the response carries no nonce: it may be a replay)" when the responder
 * did not echo the nonce); or why there is none: "CRL from SOURCE expired
 * at DATE", "CRL from SOURCE: signature does not verify", "cannot fetch CRL
 * from URL: REASON", "no CRL from 'ISSUER DN'", "OCSP responder URL:
 * response signature does not verify", "OCSP responder URL: nonce
 * mismatch", "OCSP responder URL: timed out after N ms", ...
 */
struct st_rev_result {
	enum st_rev_status status;
	char source[8];    /* "crl" or "ocsp", or "" */
	time_t revoked_at; /* when status is ST_REV_REVOKED */
	int reason;        /* CRLReason code, -1 when the CRL entry gives none; GnuTLS reports
	                      an OCSP response without a reason as 0 (unspecified) */
	char detail[256];  /* why unavailable/unknown, or where the answer came from (URL, file) */
};

struct st_ocsp_cache;

/* Limits of every HTTP fetch (CRL, OCSP). Zero fields take the defaults. */
struct st_fetch_params {
	long timeout_ms;   /* whole transfer, default 10000 */
	size_t max_size;   /* response body cap, default 10 MiB for CRLs; OCSP responses are
	                      capped at 64 KiB, or at max_size when that is smaller */
	const char *cache_dir; /* CRL cache; NULL: no cache */
	struct st_ocsp_cache *ocsp_cache; /* OCSP answers kept in memory; NULL: none */
};

/*
 * OCSP answers kept in memory, for a process that asks about the same
 * certificates again (a server): good and revoked answers only, never
 * unknown or unavailable ones (a responder that is back is asked again),
 * each until the response's nextUpdate and at most max_age seconds, keyed
 * by the SHA-256 of the certificate and of its issuer. When full, the entry
 * that expires first makes room. Safe to use from several threads at once.
 * Returns NULL when out of memory; free with st_ocsp_cache_free (NULL is a
 * no-op).
 */
struct st_ocsp_cache *st_ocsp_cache_new(size_t max_entries, long max_age);
void st_ocsp_cache_free(struct st_ocsp_cache *c);

/* A set of CRLs, from files and fetches. Opaque. */
struct st_crl_set;

/* A new empty set, or NULL when out of memory. */
struct st_crl_set *st_crl_set_new(void);

/* Free a set. NULL is a no-op. */
void st_crl_set_free(struct st_crl_set *s);

/*
 * Add every CRL in a file (PEM with any number of X509 CRL blocks and text
 * between them, or one DER CRL; at most ST_INPUT_MAX). Errors name the file and
 * the reason (class ST_ERR_INPUT): "cannot read CRL 'F': not a DER or PEM
 * CRL: ...", "...: malformed PEM CRL: ...", "...: no X509 CRL block found",
 * "...: empty, no CRL found", or st_read_file's message.
 */
int st_crl_set_add_file(struct st_crl_set *s, const char *path, struct st_error *err);

/*
 * Fetch the CRLs named in cert's CRL distribution points (http and https
 * only; at most 4 per certificate; a URL already fetched into this set is
 * not fetched again) and add them, using and filling the cache in
 * fp->cache_dir: a cached CRL is used while its nextUpdate is in the future
 * at 'now'. A failed fetch is not an error of the call: st_crl_check then
 * says unavailable and why (the URL and the reason are kept with the set,
 * for the certificates of the same issuer). fp may be NULL (defaults, no
 * cache).
 *
 * The cache directory is created (mode 0700) when missing; one that is not
 * ours or is writable by group or others is refused (an error of the call,
 * class ST_ERR_INPUT, also kept with the set so that st_crl_check says it):
 * someone else's file there could replay an older, still valid CRL.
 * Entries are named by the SHA-256 of the URL in hex plus ".crl", hold DER,
 * are written to a temporary file and renamed, and on use are parsed again
 * and must be from cert's issuer and current; their signature is checked by
 * st_crl_check like a fetched CRL's. Only CRLs current at 'now' are cached.
 */
int st_crl_set_fetch(struct st_crl_set *s, gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer,
                     time_t now, const struct st_fetch_params *fp, struct st_error *err);

/*
 * Check cert against the set's CRLs issued by issuer: the CRL's signature
 * must verify with issuer's key and it must be current at 'now'
 * (thisUpdate <= now <= nextUpdate); a stale or badly signed CRL makes the
 * answer unavailable, with the reason in detail. Fills *res.
 *
 * Of several usable CRLs the one with the latest thisUpdate answers. A delta
 * CRL, a CRL with an unknown critical extension, or a partial CRL
 * (issuingDistributionPoint with onlySomeReasons, indirectCRL or attribute
 * certificates) is not used; an issuingDistributionPoint limited to
 * end-entity or CA certificates is honoured (its distribution point name is
 * not compared). Entry reason codes are read with st_crl_entry_reason.
 */
void st_crl_check(const struct st_crl_set *s, gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer,
                  time_t now, struct st_rev_result *res);

/*
 * The reasonCode (RFC 5280 5.3.1) of the revokedCertificates entry for a
 * serial number (the INTEGER's content bytes, leading zeros ignored) in a
 * DER CRL, read by stepping over the DER without decoding it (GnuTLS has no
 * API for CRL entry extensions). Never reads outside der[0..len). Returns 0
 * with *reason set (0..10, or -1 when the entry has no reasonCode), 1 when
 * no entry has that serial, ST_E_PARSE when the DER is malformed or the
 * reasonCode is not a valid CRLReason, ST_E_INVALID for a NULL argument.
 */
int st_crl_entry_reason(const unsigned char *der, size_t len, const unsigned char *serial,
                        size_t serial_len, int *reason);

/*
 * Check a DER OCSP response about cert (issued by issuer), as st_ocsp_check
 * does after its POST: response status, type (basic), signature (by issuer,
 * or by a responder certificate embedded in the response, issued by issuer
 * with the OCSP signing purpose: gnutls_ocsp_resp_verify_direct; GnuTLS
 * checks that certificate's validity against the real clock, not 'now'),
 * the nonce when nonce is not NULL (a response without one is accepted and
 * detail says so; NULL, as for a stapled response, skips the nonce check),
 * the CertID (hash algorithm, issuer name and key hashes, serial) and
 * freshness (thisUpdate at most 5 minutes after now, nextUpdate when present
 * not before now). from names the responder in detail ("OCSP responder
 * URL", "stapled response"). Never fails: fills *res.
 */
void st_ocsp_check_response(gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer, time_t now,
                            const unsigned char *der, size_t len, const gnutls_datum_t *nonce,
                            const char *from, struct st_rev_result *res);

/*
 * Ask the OCSP responder named in cert's Authority Information Access
 * (http only, POST) about cert: request with a nonce; response status,
 * signature (by issuer, or by a responder certificate issued by issuer with
 * the OCSP signing purpose), nonce, certificate ID and freshness
 * (thisUpdate <= now + 5 minutes of clock skew, nextUpdate >= now when
 * present) are all checked, as st_ocsp_check_response says. The request
 * identifies cert with SHA-1 hashes, which is what responders index by.
 * Never fails: any problem is ST_REV_UNAVAILABLE with the reason in detail
 * ("no OCSP responder in the certificate", "OCSP responder URL: REASON").
 * With fp->ocsp_cache, a cached answer is used while it is current (detail
 * then ends in " (cached)"), and a good or revoked answer is cached.
 */
void st_ocsp_check(gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer, time_t now,
                   const struct st_fetch_params *fp, struct st_rev_result *res);

#endif
