/* fuzz-revoke.c: libFuzzer target for the CRL entry reason parser and the OCSP response checks */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "revoke.h"

#ifndef FUZZ_DATA_DIR
#define FUZZ_DATA_DIR "tests/unit/data"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The certificate and issuer the OCSP responses are checked against (tests/unit/data). */
static gnutls_x509_crt_t load(const char *name)
{
	char path[4096];
	gnutls_datum_t d = {NULL, 0};
	gnutls_x509_crt_t c = NULL;

	snprintf(path, sizeof(path), "%s/%s", FUZZ_DATA_DIR, name);
	if (gnutls_load_file(path, &d) < 0 || gnutls_x509_crt_init(&c) < 0 ||
	    gnutls_x509_crt_import(c, &d, GNUTLS_X509_FMT_PEM) < 0) {
		fprintf(stderr, "fuzz-revoke: cannot load '%s'\n", path);
		exit(1);
	}
	gnutls_free(d.data);
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gnutls_x509_crt_t cert, issuer;
	unsigned char serial[4] = {0x10, 0x01, 0x8a, 0x01};
	gnutls_datum_t nonce = {(unsigned char *)"0123456789abcdef", 16};
	struct st_rev_result res;
	int reason;

	if (!cert) {
		cert = load("rev-good.pem");
		issuer = load("rev-ca.pem");
	}
	/* the serial looked for: from the input when it is long enough */
	if (size > 2) {
		serial[0] = data[0];
		serial[1] = data[1];
	}
	st_crl_entry_reason(data, size, serial, 2, &reason);
	st_crl_entry_reason(data, size, serial, 4, &reason);
	st_ocsp_check_response(cert, issuer, 1750000000, data, size, &nonce, "fuzz", &res);
	st_ocsp_check_response(cert, issuer, 1750000000, data, size, NULL, "fuzz", &res);
	return 0;
}
