/* http.c: bounded HTTP fetches with libcurl (the only file that includes curl) */
#include "config.h"

#include "http.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#if ST_LAZY_LIBS
#include <stdarg.h>

#include "dl.h"

/*
 * libcurl is loaded on first use (configure --disable-lazy-libs links it at
 * start instead): linked, it and the 19 libraries it brings (LDAP, Kerberos,
 * SSH, RTMP...) took half of the start of every command, fetching or not.
 * These definitions stand for libcurl's own and forward to it; the names are
 * in parentheses as curl.h makes some of them macros.
 */
static struct {
	__typeof__(curl_global_init) *global_init;
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_perform) *easy_perform;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_easy_strerror) *easy_strerror;
	__typeof__(curl_slist_append) *slist_append;
	__typeof__(curl_slist_free_all) *slist_free_all;
} curl_fn;

static const struct st_dl_sym curl_syms[] = {
    {"curl_global_init", (void **)&curl_fn.global_init},
    {"curl_easy_init", (void **)&curl_fn.easy_init},
    {"curl_easy_setopt", (void **)&curl_fn.easy_setopt},
    {"curl_easy_perform", (void **)&curl_fn.easy_perform},
    {"curl_easy_getinfo", (void **)&curl_fn.easy_getinfo},
    {"curl_easy_cleanup", (void **)&curl_fn.easy_cleanup},
    {"curl_easy_strerror", (void **)&curl_fn.easy_strerror},
    {"curl_slist_append", (void **)&curl_fn.slist_append},
    {"curl_slist_free_all", (void **)&curl_fn.slist_free_all},
};

static struct st_dl_lib curl_lib =
    ST_DL_LIB_INIT(ST_CURL_SONAME, curl_syms, sizeof(curl_syms) / sizeof(curl_syms[0]));

/* Every other function is reached through a handle curl_easy_init made, so after a load. */
CURLcode(curl_global_init)(long flags)
{
	return st_dl_load(&curl_lib) ? CURLE_FAILED_INIT : curl_fn.global_init(flags);
}

CURL *(curl_easy_init)(void)
{
	return st_dl_load(&curl_lib) ? NULL : curl_fn.easy_init();
}

/* The value's type follows from the option's number, as libcurl reads it. */
CURLcode(curl_easy_setopt)(CURL *h, CURLoption opt, ...)
{
	va_list ap;
	CURLcode rc;

	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = curl_fn.easy_setopt(h, opt, va_arg(ap, long));
	else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB)
		rc = curl_fn.easy_setopt(h, opt, va_arg(ap, curl_off_t));
	else /* objects, functions, blobs: pointers */
		rc = curl_fn.easy_setopt(h, opt, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode(curl_easy_perform)(CURL *h)
{
	return curl_fn.easy_perform(h);
}

/* Every CURLINFO takes a pointer. */
CURLcode(curl_easy_getinfo)(CURL *h, CURLINFO info, ...)
{
	va_list ap;
	CURLcode rc;

	va_start(ap, info);
	rc = curl_fn.easy_getinfo(h, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

void(curl_easy_cleanup)(CURL *h)
{
	if (h)
		curl_fn.easy_cleanup(h);
}

const char *(curl_easy_strerror)(CURLcode rc)
{
	return st_dl_load(&curl_lib) ? curl_lib.why : curl_fn.easy_strerror(rc);
}

struct curl_slist *(curl_slist_append)(struct curl_slist *l, const char *s)
{
	return st_dl_load(&curl_lib) ? NULL : curl_fn.slist_append(l, s);
}

void(curl_slist_free_all)(struct curl_slist *l)
{
	if (l)
		curl_fn.slist_free_all(l);
}

/* Why libcurl cannot be used, for the message. */
static const char *curl_load_problem(void)
{
	return st_dl_load(&curl_lib) ? curl_lib.why : "curl_global_init failed";
}
#else
static const char *curl_load_problem(void)
{
	return "curl_global_init failed";
}
#endif

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
		st_error_set(err, ST_ERR_INTERNAL, "cannot initialise libcurl: %s",
		             curl_load_problem());
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
		st_error_set(err, ST_ERR_INTERNAL, "%s: cannot initialise libcurl: %s", shown,
		             curl_load_problem());
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
