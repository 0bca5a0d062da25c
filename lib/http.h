/* http.h: bounded HTTP fetches with libcurl (the only file that includes curl) */
#ifndef ST_HTTP_H
#define ST_HTTP_H

#include <stddef.h>

#include "util.h"

/*
 * GET url (http or https only, no redirects) into out (reset first; out->max
 * is set to max_size; out is empty after a failure). Fails, with err naming
 * the URL and the reason (class ST_ERR_CONNECT for transport problems and
 * timeouts, ST_ERR_PROTOCOL for a non-200 status or a body over max_size,
 * ST_ERR_USAGE for a URL that is not http(s) or a timeout_ms <= 0), when the
 * transfer does not complete within timeout_ms. The message is
 * "URL: reason" (the URL sanitised and cut to 200 bytes) so that callers can
 * prefix it: "timed out after 10000 ms", "HTTP status 404", "response
 * larger than 65536 bytes", or libcurl's words for a transport failure.
 *
 * The first call initialises libcurl (curl_global_init), which is not
 * thread-safe: make the first fetch before starting other threads that use
 * curl or GnuTLS. Proxy settings come from the environment (http_proxy,
 * no_proxy), as for curl(1).
 */
int st_http_get(const char *url, size_t max_size, long timeout_ms, struct st_buf *out,
                struct st_error *err);

/*
 * Initialise libcurl now: call it once from the main thread before starting
 * threads that fetch (a server that fetches from its thread pool). Without
 * it the first fetch initialises, which is fine for a single thread. Fails
 * (class ST_ERR_INTERNAL) when libcurl cannot initialise.
 */
int st_http_init(struct st_error *err);

/* POST body of content_type to url; otherwise as st_http_get. */
int st_http_post(const char *url, const char *content_type, const void *body, size_t len,
                 size_t max_size, long timeout_ms, struct st_buf *out, struct st_error *err);

#endif
