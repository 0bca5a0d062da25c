/* x509-gnutls.h: the GnuTLS objects behind x509 items and TLS channels, for the lib files that may include GnuTLS */
#ifndef ST_X509_GNUTLS_H
#define ST_X509_GNUTLS_H

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "x509.h"

/* The certificate of an item (NULL unless its kind is ST_X509_CERT); borrowed from the item. */
gnutls_x509_crt_t st_x509_item_crt(const struct st_x509_item *item);

/*
 * Fingerprint a GnuTLS certificate (one that came from no file, such as a
 * trust anchor) as st_x509_item_fingerprint does: the DER certificate, or
 * its SubjectPublicKeyInfo exactly as encoded. out has ST_FINGERPRINT_MAX bytes.
 */
int st_x509_crt_fingerprint(gnutls_x509_crt_t crt, enum st_digest d, bool pubkey, char *out);

/* A new copy of an item's certificate (the caller deinits it), or NULL. */
gnutls_x509_crt_t st_x509_item_crt_copy(const struct st_x509_item *item);

struct st_tls;
/* The GnuTLS session behind a TLS channel, for what the wrapper does not offer
 * (tests that play a misbehaving server); borrowed from the channel. */
gnutls_session_t st_tls_gnutls_session(struct st_tls *t);

/* GnuTLS's words for an error code in house style (lowercase start, no final period), into buf. */
const char *st_gnutls_reason(int rc, char *buf, size_t size);

#endif
