/* fuzz-smtp-server.c: libFuzzer target for the SMTP server engine: arbitrary client bytes */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtp_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t body_bytes;

static void on_body(void *arg, const unsigned char *d, size_t n)
{
	(void)arg;
	(void)d;
	body_bytes += n;
}

/*
 * The first byte picks the session's settings and how decisions are answered; the
 * rest is what the client sends, fed in pieces whose sizes come from the input too,
 * every request answered (yes or no by a bit of the seed), STARTTLS completed.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_smtp_server_params p;
	struct st_smtp_server *s;
	struct st_srv_request req;
	struct st_srv_state st;
	unsigned seed, k = 0;
	size_t len;

	if (size < 1)
		return 0;
	seed = data[0];
	memset(&p, 0, sizeof(p));
	p.hostname = "fuzz.test";
	p.starttls = seed & 1;
	p.tls_required = seed & 2;
	p.auth = seed & 4;
	p.auth_plaintext = seed & 8;
	p.implicit_tls = seed & 16;
	p.max_size = seed & 32 ? 64 : 0;
	p.max_rcpt = seed & 64 ? 2 : 0;
	p.body = on_body;
	s = st_smtp_server_new(&p);
	if (!s)
		return 0;
	st_smtp_server_greet(s, NULL);
	data++;
	size--;
	while (size > 0 && st_smtp_server_next(s, NULL) != ST_SRV_CLOSE) {
		size_t piece = 1 + (size_t)(data[0] % 97), took;
		if (piece > size)
			piece = size;
		took = st_smtp_server_input(s, data, piece);
		data += took;
		size -= took;
		for (;;) {
			enum st_srv_event ev = st_smtp_server_next(s, &req);
			if (ev == ST_SRV_NONE || ev == ST_SRV_CLOSE)
				break;
			if (ev == ST_SRV_TLS)
				st_smtp_server_tls_up(s, true, (seed & 128) && (k & 1) ? "refused" : NULL);
			else
				st_smtp_server_answer(s, ((seed >> (k % 8)) & 1) != 0, "Q1");
			k++;
		}
		st_smtp_server_output(s, &len);
		st_smtp_server_sent(s, len);
		if (took == 0 && st_smtp_server_next(s, NULL) == ST_SRV_NONE)
			break; /* held input with nothing to decide cannot happen: stop rather than spin */
	}
	st_smtp_server_state(s, &st);
	st_smtp_server_free(s);
	return 0;
}
