/* http.c: bounded HTTP fetches with libcurl (the only file that includes curl) */
#include "config.h"

#include "http.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

/* Longest URL shown in a message; longer ones are cut (they come from certificates). */
#define URL_SHOWN_MAX 200

struct sink {
	struct st_buf *out;
	bool too_big;
	bool nomem;
};

/*
 * curl_global_init is not thread-safe: the first fetch of the process does
 * it, so the first fetch must not race with another thread that uses curl
 * or GnuTLS global state. smtptls fetches from one thread, or calls
 * st_http_init before its threads start.
 */
static int global_init(void)
{
	static bool done;

	if (done)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	done = true;
	return 0;
}

int st_http_init(struct st_error *err)
{
	if (global_init() != 0) {
		st_error_set(err, ST_ERR_INTERNAL, "cannot initialise libcurl");
		return ST_E_NOMEM;
	}
	return 0;
}

static size_t sink_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;
	int rc;

	rc = st_buf_add(s->out, p, n);
	if (rc == ST_E_TOOBIG)
		s->too_big = true;
	else if (rc)
		s->nomem = true;
	return rc ? 0 : n; /* anything but n aborts the transfer */
}

/* A printable, bounded copy of url for messages. */
static void url_shown(const char *url, char *out, size_t size)
{
	size_t n = strlen(url);

	if (n > URL_SHOWN_MAX)
		snprintf(out, size, "%.*s...", URL_SHOWN_MAX, url);
	else
		snprintf(out, size, "%s", url);
	st_sanitize(out);
}

/* curl's words for a failure, lowercased and without a trailing period. */
static void curl_reason(CURLcode cc, const char *errbuf, char *out, size_t size)
{
	size_t n;

	snprintf(out, size, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
	n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '.'))
		out[--n] = '\0';
	if (out[0] && isupper((unsigned char)out[0]) && !isupper((unsigned char)out[1]))
		out[0] = (char)tolower((unsigned char)out[0]);
	st_sanitize(out);
}

static bool url_is_http(const char *url)
{
	return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

/* One transfer: GET when body is NULL, else POST. */
static int transfer(const char *url, const char *content_type, const void *body, size_t len,
                    size_t max_size, long timeout_ms, struct st_buf *out, struct st_error *err)
{
	char shown[URL_SHOWN_MAX + 8], why[CURL_ERROR_SIZE + 64], errbuf[CURL_ERROR_SIZE];
	struct curl_slist *headers = NULL;
	struct sink sink = {out, false, false};
	CURL *h = NULL;
	CURLcode cc;
	long status = 0;
	int rc = ST_OK;
	const char *p;

	url_shown(url ? url : "", shown, sizeof(shown));
	out->max = max_size;
	st_buf_reset(out);
	errbuf[0] = '\0';
	if (!url || !url_is_http(url)) {
		st_error_set(err, ST_ERR_USAGE, "%s: only http and https URLs are fetched", shown);
		return ST_E_INVALID;
	}
	for (p = url; *p; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
			st_error_set(err, ST_ERR_USAGE, "%s: control character or space in URL",
			             shown);
			return ST_E_INVALID;
		}
	}
	if (timeout_ms <= 0) {
		st_error_set(err, ST_ERR_USAGE, "%s: timeout must be positive", shown);
		return ST_E_INVALID;
	}
	if (global_init() != 0) {
		st_error_set(err, ST_ERR_INTERNAL, "%s: cannot initialise libcurl", shown);
		return ST_E_NOMEM;
	}
	h = curl_easy_init();
	if (!h) {
		st_error_set(err, ST_ERR_INTERNAL, "%s: out of memory", shown);
		return ST_E_NOMEM;
	}
	if (body) {
		char ct[128];

		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
		headers = curl_slist_append(NULL, ct);
		if (!headers) {
			st_error_set(err, ST_ERR_INTERNAL, "%s: out of memory", shown);
			rc = ST_E_NOMEM;
			goto out;
		}
		/* no "Expect: 100-continue" round trip: OCSP requests are small */
		if (!curl_slist_append(headers, "Expect:")) {
			st_error_set(err, ST_ERR_INTERNAL, "%s: out of memory", shown);
			rc = ST_E_NOMEM;
			goto out;
		}
	}

	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_size) != CURLE_OK) {
		st_error_set(err, ST_ERR_INTERNAL, "%s: libcurl refuses an option", shown);
		rc = ST_E_INVALID;
		goto out;
	}
	if (body &&
	    (curl_easy_setopt(h, CURLOPT_POST, 1L) != CURLE_OK ||
	     curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
	     curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) != CURLE_OK ||
	     curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) != CURLE_OK)) {
		st_error_set(err, ST_ERR_INTERNAL, "%s: libcurl refuses an option", shown);
		rc = ST_E_INVALID;
		goto out;
	}

	cc = curl_easy_perform(h);
	if (sink.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
		st_error_set(err, ST_ERR_PROTOCOL, "%s: response larger than %zu bytes", shown,
		             max_size);
		rc = ST_E_TOOBIG;
		goto out;
	}
	if (sink.nomem) {
		st_error_set(err, ST_ERR_INTERNAL, "%s: out of memory", shown);
		rc = ST_E_NOMEM;
		goto out;
	}
	if (cc == CURLE_OPERATION_TIMEDOUT) {
		st_error_set(err, ST_ERR_CONNECT, "%s: timed out after %ld ms", shown, timeout_ms);
		rc = ST_E_IO;
		goto out;
	}
	if (cc != CURLE_OK) {
		curl_reason(cc, errbuf, why, sizeof(why));
		st_error_set(err, ST_ERR_CONNECT, "%s: %s", shown, why);
		rc = ST_E_IO;
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		st_error_set(err, ST_ERR_PROTOCOL, "%s: HTTP status %ld", shown, status);
		rc = ST_E_IO;
		goto out;
	}
out:
	if (rc)
		st_buf_reset(out);
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	return rc;
}

int st_http_get(const char *url, size_t max_size, long timeout_ms, struct st_buf *out,
                struct st_error *err)
{
	return transfer(url, NULL, NULL, 0, max_size, timeout_ms, out, err);
}

int st_http_post(const char *url, const char *content_type, const void *body, size_t len,
                 size_t max_size, long timeout_ms, struct st_buf *out, struct st_error *err)
{
	if (!body || !content_type) {
		st_error_set(err, ST_ERR_USAGE, "post without a body or a content type");
		return ST_E_INVALID;
	}
	return transfer(url, content_type, body, len, max_size, timeout_ms, out, err);
}
