/* fuzz-x509.c: libFuzzer target for the certificate and key reader (lib/x509) */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_x509_reader *r = st_x509_reader_new("fuzz", data, size);
	struct st_x509_item *item;
	struct st_x509_info info;
	struct st_error err;
	char fp[ST_FINGERPRINT_MAX];
	struct st_buf tlsa;
	int rc, d, sel, mt;

	if (!r)
		return 0;
	st_buf_init(&tlsa, ST_INPUT_MAX);
	while ((rc = st_x509_reader_next(r, &item, &err)) != 0) {
		if (rc < 0)
			continue;
		st_x509_item_info(item, &info, &err);
		st_x509_info_release(&info);
		for (d = ST_DIGEST_MD5; d <= ST_DIGEST_SHA512; d++) {
			st_x509_item_fingerprint(item, (enum st_digest)d, false, fp);
			st_x509_item_fingerprint(item, (enum st_digest)d, true, fp);
		}
		for (sel = 0; sel <= 1; sel++)
			for (mt = 0; mt <= 2; mt++)
				st_x509_item_tlsa_data(item, (enum st_tlsa_selector)sel,
				                       (enum st_tlsa_mtype)mt, &tlsa);
		st_x509_item_free(item);
	}
	st_buf_release(&tlsa);
	st_x509_reader_free(r);
	return 0;
}
