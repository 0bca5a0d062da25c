/* tls.h: TLS sessions over byte buffers (sans I/O), GnuTLS priorities from Postfix settings, session summaries */
#ifndef ST_TLS_H
#define ST_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"
#include "x509.h"

/* TLS protocol versions as Postfix names them, as bits. */
enum st_tls_proto {
	ST_TLS_SSLV2 = 1 << 0,
	ST_TLS_SSLV3 = 1 << 1,
	ST_TLS_TLSV1 = 1 << 2,
	ST_TLS_TLSV1_1 = 1 << 3,
	ST_TLS_TLSV1_2 = 1 << 4,
	ST_TLS_TLSV1_3 = 1 << 5,
	ST_TLS_ALL = (1 << 6) - 1,
};

/*
 * Read a Postfix protocol list (smtp_tls_protocols, the protocols= policy
 * attribute): names separated by white space, commas or colons, each
 * "NAME" (only the names listed), "!NAME" (all but), ">=NAME" or "<=NAME"
 * (bounds, Postfix 3.6). Empty means every version. Returns the set of
 * versions, or -1 with err (class usage) naming the word that is not a
 * protocol, or saying when nothing is left.
 */
int st_tls_protocols_parse(const char *list, struct st_error *err);

/*
 * The GnuTLS priority string for a set of versions and a Postfix cipher
 * grade ("high", "medium", "null"; NULL or "" is medium; "low" and "export"
 * are medium, as in Postfix 3.8). SSLv2 does not exist in GnuTLS and is
 * dropped; when nothing this GnuTLS can speak is left, -1 with err.
 */
int st_tls_priority(int protocols, const char *grade, char *out, size_t size, struct st_error *err);

/* "TLSv1.2" ... for one bit. */
const char *st_tls_proto_name(enum st_tls_proto p);

/* One side of a TLS connection, fed and drained by its caller. Opaque. */
struct st_tls;

/* Credentials (a certificate and key read once) that many sessions share. Opaque. */
struct st_tls_creds;

struct st_tls_params {
	bool server;
	const char *priority;  /* st_tls_priority's output; NULL: "NORMAL" */
	const char *sni;       /* client: the server name sent; NULL: none */
	const char *cert_file; /* server: its chain; client: a client certificate */
	const char *key_file;
	bool request_client_cert; /* server: ask for a client certificate */
	const void *resume;       /* client: session data from st_tls_session_data, to resume */
	size_t resume_len;
	const struct st_tls_creds *creds; /* shared credentials: cert_file and key_file are then
	                                     not read again */
};

/* Read p's certificate and key (or none, for a client) once, for every session given them;
 * errors as st_tls_new's. Free after the last session. */
struct st_tls_creds *st_tls_creds_new(const struct st_tls_params *p, struct st_error *err);
void st_tls_creds_free(struct st_tls_creds *c);

/* Start a session. NULL with err set when credentials or priorities are refused. */
struct st_tls *st_tls_new(const struct st_tls_params *p, struct st_error *err);

/* Free a session. NULL is a no-op. */
void st_tls_free(struct st_tls *t);

/* Bytes from the peer (ciphertext). ST_E_TOOBIG past the input cap. */
int st_tls_input(struct st_tls *t, const unsigned char *data, size_t len);

/* Bytes for the peer (ciphertext), borrowed until st_tls_output_done. */
const unsigned char *st_tls_output(const struct st_tls *t, size_t *len);
void st_tls_output_done(struct st_tls *t, size_t n);

/*
 * Go on with the handshake, as far as the input given allows (a flight of
 * several records, all of it). Returns 1 when it is done, 0 when it needs
 * bytes from the peer (send st_tls_output first), or a negative ST_E_*
 * with err (class tls) saying why it failed.
 */
int st_tls_handshake(struct st_tls *t, struct st_error *err);

/*
 * End the session for writing, as an SMTP side does after QUIT and 221: a close_notify
 * alert lands in the output (send it before closing the connection); nothing is awaited
 * from the peer. ST_E_CRYPTO when GnuTLS refuses (no session established).
 */
int st_tls_bye(struct st_tls *t);

/* Send application data (it lands in the output). */
int st_tls_write(struct st_tls *t, const void *data, size_t len, struct st_error *err);

/* Read application data: bytes read, 0 when none is there yet, <0 on error or close. */
long st_tls_read(struct st_tls *t, void *buf, size_t size, struct st_error *err);

/* What the handshake agreed on. */
struct st_tls_summary {
	char version[16];           /* "TLSv1.3" */
	char cipher[64];            /* "TLS_AES_256_GCM_SHA384" (IANA name) */
	char group[32];             /* key exchange group, "X25519", or "" */
	char sigalg[48];            /* the server's signature algorithm, or "" */
	bool client_cert_requested; /* client side: the server asked for a certificate */
	bool client_cert_sent;
	unsigned n_peer_certs; /* certificates the peer sent */
	bool resumed;          /* the session was resumed (a ticket or a cached session) */
};

int st_tls_summary(const struct st_tls *t, struct st_tls_summary *s);

/* The data that resumes this session later (a TLS 1.3 ticket comes after the handshake:
 * ask at the end of the session), into out (reset first). */
int st_tls_session_data(const struct st_tls *t, struct st_buf *out);

/*
 * The peer's chain as items (its own certificate first), at most max: their bytes are
 * kept in der (initialised here), which must outlive them. Returns how many; free each
 * item with st_x509_item_free, then release der.
 */
size_t st_tls_peer_items(const struct st_tls *t, struct st_buf *der, struct st_x509_item **items,
                         size_t max);

/* The DER of the peer's certificate number i (0 = its own), borrowed; NULL past the end. */
const unsigned char *st_tls_peer_cert(const struct st_tls *t, unsigned i, size_t *len);

/*
 * The OCSP response the server stapled to its certificate (client side; a
 * GnuTLS client always asks for one), borrowed from the session; NULL with
 * *len 0 when the server sent none. Not checked: st_ocsp_check_response
 * does that.
 */
const unsigned char *st_tls_ocsp_staple(const struct st_tls *t, size_t *len);

/* Base64 of len bytes into out (reset first), as SMTP AUTH needs; GnuTLS's encoder. */
int st_base64(const void *data, size_t len, struct st_buf *out);

/* Base64 (RFC 4648, as SMTP AUTH sends it) of len bytes of text, decoded into out (reset
 * first); "" decodes to nothing. ST_E_PARSE when it is not base64. */
int st_base64_decode(const char *text, size_t len, struct st_buf *out);

#endif
