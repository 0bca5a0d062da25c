/* fuzz-smtp-reply.c: libFuzzer target for the SMTP reply parser and EHLO capabilities */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "smtp_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_smtp_parser p;
	struct st_smtp_reply r;
	struct st_smtp_caps caps;
	struct st_error err;
	size_t used;
	char *text;
	int rc;

	st_smtp_parser_init(&p);
	while (size > 0) {
		rc = st_smtp_parser_feed(&p, data, size, &used, &r, &err);
		if (rc == 1) {
			if (st_smtp_caps_parse(&r, &caps) == 0)
				st_smtp_caps_release(&caps);
			else
				st_smtp_caps_release(&caps);
			text = st_smtp_reply_text(&r);
			free(text);
			st_smtp_reply_release(&r);
		}
		if (used == 0)
			break;
		data += used;
		size -= used;
	}
	st_smtp_parser_release(&p);
	return 0;
}
