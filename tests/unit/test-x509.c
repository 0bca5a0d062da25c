/* test-x509.c: unit tests of lib/x509.c (reading PEM/DER, descriptions, fingerprints, TLSA) */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "lib/util.h"
#include "lib/x509.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define N_DIGESTS  6

/* tests/unit/data, found from $TOP_SRCDIR, $srcdir or the program's own path */
static char data_dir[PATH_MAX];

/*
 * ---- expected values ----
 *
 * Computed by OpenSSL, never by smtptls: tests/unit/data/make-fixtures.sh
 * regenerates the fixtures and prints these tables (make-fixtures.sh --print
 * prints them for the committed files). Digest order: md5 sha1 sha224
 * sha256 sha384 sha512, as enum st_digest.
 */
struct fp_set {
	const char *name;
	const char *fp[N_DIGESTS];
};

/* SPKI digests, one per key: openssl pkey -pubout -outform DER | openssl dgst */
enum { K_RSA, K_EC, K_INT, K_CA, K_ED };
/* clang-format off */
static const struct fp_set spki_fps[] = {
	/* rsa: openssl pkey -in rsa.key -pubout -outform DER | openssl dgst -<digest> */
	{"rsa", {
		"59:07:84:E8:D8:D7:A2:0E:45:85:D8:02:5C:EB:26:EE",
		"6E:53:D0:D0:B6:58:DF:2B:EE:60:4C:23:63:F9:55:D1:44:39:25:F7",
		"F6:1E:AF:8B:14:DF:1E:B6:F5:BB:31:DC:C8:BD:0A:64:8D:3C:C9:0D:8E:1B:8A:BB:AD:DC:72:B3",
		"9D:91:1C:4B:46:ED:B1:2D:34:03:9B:FB:EB:B4:7B:1C:1D:27:56:EE:A1:B8:F3:A5:3C:50:30:56:6D:DD:3A:DD",
		"41:C1:F4:A9:D7:D4:D7:09:53:70:0D:FA:E7:36:07:E5:64:EE:88:6C:7B:86:65:7C:ED:C8:2B:76:0E:5B:6F:68:3C:DC:7C:BD:6B:2E:9D:56:87:43:61:BB:CD:BE:F6:DE",
		"B1:C8:AD:09:AE:54:93:F4:4F:DF:8D:CD:FE:CF:49:89:95:92:8C:EF:31:FF:11:27:45:C8:EF:EB:33:94:AC:6E:3C:0E:A3:F4:02:7E:11:6F:2F:1C:82:28:FC:08:DC:28:67:0A:04:80:55:B4:7C:0C:95:79:B9:8A:3A:C8:0E:13",
	}},
	/* ec: openssl pkey -in ec.key -pubout -outform DER | openssl dgst -<digest> */
	{"ec", {
		"41:89:6E:4E:7F:E3:42:8D:29:E7:71:AF:A5:4C:C8:6D",
		"17:50:8E:4E:E8:4E:23:3D:DB:0B:93:93:A8:77:9D:EF:11:7D:40:E1",
		"57:FF:80:10:42:F9:7A:BC:DF:0C:15:AF:91:52:54:C5:2B:F4:F1:F8:AD:36:74:FD:00:45:70:BB",
		"5C:E8:10:1D:55:73:1E:DC:87:81:9B:63:E3:9D:E7:AD:D9:EA:79:E6:63:2B:2D:64:4C:4B:24:5D:7F:9F:6F:95",
		"B8:E7:5F:6C:20:B2:33:DD:17:3B:0E:9B:C4:0C:19:05:4C:91:C4:20:03:9E:E8:A3:B0:AB:1F:45:A9:8D:C1:7C:98:63:96:B0:F6:9B:53:48:DC:BA:65:4C:98:DC:65:AB",
		"1B:70:4D:BF:7A:E3:C0:8B:25:74:0A:39:57:26:C6:4C:A4:27:9D:01:F5:4D:65:4C:BD:67:79:DC:DB:CB:4B:82:E7:5B:74:54:84:FA:18:0D:1C:5C:AF:DF:12:9C:D4:0E:4F:41:79:55:15:8D:51:E3:7A:15:54:72:8C:0D:23:02",
	}},
	/* int: openssl x509 -in int.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -<digest> */
	{"int", {
		"75:CD:05:B6:DE:0D:3F:72:62:48:A9:EA:30:BA:E9:ED",
		"21:11:C6:86:E0:F7:C2:1B:03:8A:C1:08:2E:EA:E4:97:CF:8E:AC:92",
		"FB:3C:45:78:C8:10:89:C3:31:C2:4C:9F:D2:73:E0:54:09:DD:3A:51:84:D4:64:A8:BB:B1:36:45",
		"80:2E:84:B7:1D:91:21:C2:58:35:B2:E7:FA:F9:CF:B9:74:06:4E:70:DA:6F:77:8B:B1:DD:B9:A3:CB:76:65:56",
		"CF:5C:31:DC:00:64:CA:E4:C2:8F:F3:73:DC:1A:02:33:22:ED:E8:84:A1:98:8B:82:8E:4F:A6:BD:62:22:E9:1C:2D:52:43:81:73:5F:93:70:45:68:17:32:05:65:EE:ED",
		"A0:4F:B4:05:04:2C:E4:B6:68:8D:0E:B7:B1:13:7C:28:B5:EC:B0:F5:BE:FB:B2:5C:2F:39:59:AB:EE:55:6E:D9:62:59:67:4E:3C:00:46:D8:8F:04:59:7A:61:E1:BF:EF:FA:F6:62:E2:7D:EC:CD:52:B2:73:A3:21:C9:CA:C4:F6",
	}},
	/* ca: openssl x509 -in ca.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -<digest> */
	{"ca", {
		"69:9F:7B:DC:A4:28:19:2B:09:34:7C:F7:E7:7D:87:1C",
		"59:D9:3C:EF:28:87:8A:D3:3D:42:D1:C9:73:35:FE:D9:1C:6A:3B:C5",
		"BB:3F:C2:D1:26:1C:41:C5:9A:06:EE:EA:51:9E:19:B8:48:79:53:77:03:E7:09:BF:02:15:06:FA",
		"2B:1A:50:FA:F5:01:05:F8:2C:2D:5C:2A:DE:2C:9F:7E:7F:80:EF:35:87:14:41:7B:5C:54:10:DB:46:B2:34:60",
		"73:0E:89:A3:D3:DD:F6:FC:D9:91:58:D1:39:34:4A:0B:7B:E9:09:EC:80:DA:F0:A4:71:2B:C8:D3:40:9C:A2:B8:D1:DB:CA:77:1D:C5:50:BC:80:9D:19:24:B3:DD:47:6C",
		"D4:6C:6A:16:54:0D:10:6C:C3:E5:62:78:0D:0D:90:36:68:3D:B4:57:DB:C7:6B:B9:E9:97:7A:7A:46:EA:94:18:B9:35:1A:0D:BC:4F:EC:5C:21:81:E5:40:BE:B6:6B:70:7B:CD:8F:81:77:A0:3E:14:AA:C3:22:DD:80:69:61:73",
	}},
	/* ed25519: openssl pkey -in ed25519.key -pubout -outform DER | openssl dgst -<digest> */
	{"ed25519", {
		"EC:71:7B:72:34:BB:25:0E:3D:C4:72:04:D8:68:A7:9F",
		"F1:9E:A1:18:30:52:E7:7D:BC:17:98:EB:DC:D5:AF:90:CE:EB:24:1E",
		"BF:30:FC:E2:68:CB:12:2E:99:28:AA:EF:DD:F7:BB:E2:0C:C4:56:77:F7:15:14:11:AF:2A:1C:56",
		"C7:BB:9E:77:9B:1F:AE:8B:C8:2F:5E:20:DC:3C:5A:E5:1C:52:0B:F4:52:C5:C0:7A:D0:78:27:E1:08:6A:9D:60",
		"7F:4B:1A:47:DC:45:6B:EC:FF:11:58:B0:40:53:E2:F9:24:75:13:8A:BD:62:C3:3C:8E:B2:CC:02:A7:81:98:2F:38:34:15:09:02:0E:7B:77:9E:D8:39:21:12:03:89:52",
		"4E:D6:7D:36:AB:CA:E4:91:FE:1F:AC:6F:DB:9F:AC:EE:1F:4D:30:93:C1:C5:91:FD:80:F8:F8:B5:6C:91:55:DA:DC:DE:73:99:39:DA:E0:43:F5:DF:AD:03:48:E3:84:A6:CA:0C:C5:E2:92:8F:32:30:89:F6:E5:18:89:01:C8:D5",
	}},
};
/* clang-format on */

/* Certificate fingerprints: openssl x509 -noout -fingerprint -<digest> */
enum { C_NONE = -1, C_RSA, C_EC, C_INT, C_CA, C_ED };
/* clang-format off */
static const struct fp_set cert_fps[] = {
	/* rsa.pem: openssl x509 -noout -fingerprint -<digest> */
	{"rsa.pem", {
		"A1:52:95:93:58:74:20:44:E9:4B:9A:09:A7:94:EC:6E",
		"0E:08:2D:08:39:4E:7C:24:D8:C9:3C:54:E2:0E:6F:F5:A9:8B:33:88",
		"45:F8:1D:BB:80:F7:27:10:B6:5E:E6:7E:15:44:5E:4D:DB:91:D6:6D:56:C9:D4:B1:92:D4:9E:F1",
		"D3:5D:4E:DC:B9:9C:AC:B6:05:12:58:67:BC:90:47:A9:46:64:5A:B8:BE:60:49:B4:04:29:AA:4A:73:FB:FB:B6",
		"8B:D5:7A:B8:82:5C:30:5B:01:0C:2D:DF:F4:5E:3B:43:68:1E:4B:93:C9:15:9E:F0:38:B4:E9:A7:E9:F3:E9:5C:48:20:A4:C8:26:3C:56:E0:AF:A7:31:C2:5C:A9:15:C3",
		"FA:8B:89:A3:E0:57:FB:53:DE:E7:81:36:4E:C8:7F:FC:A9:B8:2F:80:01:B0:96:0D:9D:89:CD:C2:71:ED:15:A2:10:02:48:13:60:8D:EF:8C:C4:F4:89:57:A9:77:0E:04:81:6D:F8:BC:E4:A8:1A:92:6C:A3:7B:52:C5:66:5B:E2",
	}},
	/* ec.pem: openssl x509 -noout -fingerprint -<digest> */
	{"ec.pem", {
		"38:95:0B:E0:A6:2C:80:92:51:86:0B:77:0B:7B:80:02",
		"BA:21:AD:11:83:A7:0F:B1:AA:96:C6:C2:1A:B3:F4:D0:20:EC:CD:A2",
		"28:AA:DC:59:40:C9:28:61:68:B8:B8:AA:C6:13:E3:BD:BE:AA:1B:00:76:4A:C2:68:D9:2E:D6:6C",
		"A3:F1:88:EA:3A:7C:3A:98:61:6B:6B:1A:CE:AC:42:3A:8C:DC:C5:3C:72:86:66:6B:F1:BC:EF:E2:80:41:96:57",
		"B6:F0:AB:D0:0E:C6:F4:6C:4E:9E:34:A8:CF:89:81:35:40:F9:3D:A7:B1:46:2C:2B:86:C3:08:31:D2:4F:DC:72:20:5A:93:B1:E5:D3:F9:47:3A:03:CB:E1:E6:85:B2:A3",
		"B0:61:20:E9:9C:4B:7C:55:50:73:9C:78:D9:28:18:4D:E2:FA:D3:64:31:FE:7F:92:0C:C2:2E:1F:2B:BD:F6:78:83:93:C1:25:AB:53:65:31:97:08:7A:EA:14:6F:00:37:EF:54:2D:49:E8:AF:C9:C6:04:87:37:84:61:59:D8:3C",
	}},
	/* int.pem: openssl x509 -noout -fingerprint -<digest> */
	{"int.pem", {
		"DE:E0:84:C6:39:48:7A:33:5A:C2:50:CD:E1:AC:B8:BA",
		"58:E6:7E:AF:D9:92:34:77:0E:61:9D:81:68:7F:92:30:A0:ED:07:6C",
		"E6:EB:C9:2C:8B:16:B6:52:9A:35:F7:55:9C:22:82:DB:D6:8E:87:74:4C:D1:17:9B:94:D2:ED:A6",
		"32:65:49:0D:4E:67:5C:30:D9:6B:5F:E3:B2:D8:A2:2C:E0:39:09:CA:C0:76:04:97:57:3B:7B:11:CF:3E:2F:6D",
		"87:00:9C:1A:1F:10:9B:D6:04:A8:ED:4E:37:FB:3C:00:8B:E3:56:43:A1:9A:A5:4E:DB:92:B8:30:4B:1E:B0:96:33:F0:A6:FB:E7:80:C7:3B:D8:7B:F9:B2:4D:2C:89:61",
		"D7:09:E0:DF:F1:93:EC:79:A4:EB:D4:41:CA:D5:23:5C:71:45:DD:0D:76:0F:18:92:54:A2:60:64:6D:D1:08:7D:EF:44:55:34:58:3A:41:E3:A4:6F:BA:15:64:25:DD:95:1E:8C:55:EC:C7:C4:3E:E1:4A:7B:E4:55:18:17:91:BB",
	}},
	/* ca.pem: openssl x509 -noout -fingerprint -<digest> */
	{"ca.pem", {
		"51:FB:00:AE:27:A1:83:95:DA:03:4B:DB:87:81:CA:1C",
		"97:B8:15:FA:EC:00:74:4F:83:2C:9B:9D:3D:28:D0:AE:E8:FD:B9:4C",
		"A4:A3:6F:0C:D6:AB:FE:FF:FB:C8:BC:BF:21:62:47:20:0A:F6:97:02:DB:BF:07:3E:C7:36:4A:55",
		"10:0C:EE:D9:60:26:1E:7E:84:30:52:FB:33:6E:D0:1E:26:F9:42:4E:C9:D2:1E:B5:C7:8A:54:94:2B:E6:C1:48",
		"F9:9C:AD:79:4C:AE:21:62:05:38:61:04:25:CA:68:CE:FF:71:BD:A0:B0:3F:74:4F:3D:A6:69:25:BC:3B:CC:12:11:E3:EA:68:7C:31:69:0A:2D:DF:B4:B1:AC:84:70:57",
		"95:9B:99:52:F1:97:74:BD:DE:88:7D:29:C1:BC:56:4C:21:92:F9:F3:49:A2:40:A3:CB:73:64:C9:1A:A2:88:D1:9A:7A:CD:AD:0F:6D:F5:D2:ED:97:FE:DF:B4:3C:E1:8E:3A:1A:91:31:86:91:16:93:EE:57:FC:A6:56:EF:B3:DE",
	}},
	/* ed25519.pem: openssl x509 -noout -fingerprint -<digest> */
	{"ed25519.pem", {
		"0D:89:9C:47:33:4C:04:2A:B9:13:D1:8A:3F:41:B2:AF",
		"03:6C:EE:3A:88:C5:29:FD:A3:E2:76:3D:57:46:2C:3A:09:A3:C0:5E",
		"E9:AF:61:CF:9D:64:FB:81:68:55:16:78:32:94:35:B5:1B:8B:41:D1:B1:9F:20:F3:CE:FD:31:19",
		"99:7C:1B:4E:D0:CE:2F:8B:6B:21:0D:F6:DB:6C:38:FA:D2:B0:93:75:AF:D9:6D:DF:92:9B:86:F9:43:46:9E:D1",
		"56:22:63:56:B7:84:6E:B4:AC:7E:84:5F:9D:94:4E:F1:95:B0:CD:2E:20:3B:C7:B1:F2:6C:B4:CF:76:F4:42:64:F1:44:88:6F:41:00:0C:CA:EE:09:3C:D4:27:D0:5E:26",
		"8F:C3:DB:62:12:74:F4:1A:0F:0C:10:B9:CF:57:83:1A:73:52:E8:DC:F6:B8:E8:CE:D2:EC:96:04:56:FB:CA:28:3B:A9:B6:73:84:FA:5A:D7:EE:4B:DD:8D:0D:D5:CC:DA:BF:C6:F0:60:34:A4:49:C5:73:87:52:D4:17:DB:C2:4D",
	}},
};
/* clang-format on */

/* TLSA data of ec.pem as openssl prints it (make-fixtures.sh) */
static const char tlsa_ec_311[] =
    "5ce8101d55731edc87819b63e39de7add9ea79e6632b2d644c4b245d7f9f6f95";
static const char tlsa_ec_312[] =
    "1b704dbf7ae3c08b25740a395726c64ca4279d01f54d654cbd6779dcdbcb4b82"
    "e75b745484fa180d1c5cafdf129cd40e4f417955158d51e37a1554728c0d2302";
static const char tlsa_ec_302[] =
    "b06120e99c4b7c5550739c78d928184de2fad36431fe7f920cc22e1f2bbdf678"
    "8393c125ab53653197087aea146f0037ef542d49e8afc9c6048737846159d83c";

/* Every fixture: the items it holds, in order. */
struct item_expect {
	enum st_x509_kind kind;
	int key;       /* K_*: its SPKI digests */
	int cert;      /* C_*, or C_NONE */
	unsigned line; /* PEM BEGIN line, 0 for DER */
};

static const struct file_expect {
	const char *file;
	size_t n;
	struct item_expect items[3];
} files[] = {
    {"rsa.pem", 1, {{ST_X509_CERT, K_RSA, C_RSA, 1}}},
    {"rsa.key", 1, {{ST_X509_PRIVKEY, K_RSA, C_NONE, 1}}},
    {"rsa-trad.key", 1, {{ST_X509_PRIVKEY, K_RSA, C_NONE, 1}}},
    {"rsa-key.der", 1, {{ST_X509_PRIVKEY, K_RSA, C_NONE, 0}}},
    {"rsa-pub.pem", 1, {{ST_X509_PUBKEY, K_RSA, C_NONE, 1}}},
    {"rsa.csr", 1, {{ST_X509_CSR, K_RSA, C_NONE, 1}}},
    {"rsa-csr.der", 1, {{ST_X509_CSR, K_RSA, C_NONE, 0}}},
    {"trusted.pem", 1, {{ST_X509_CERT, K_RSA, C_RSA, 1}}},
    {"ec.pem", 1, {{ST_X509_CERT, K_EC, C_EC, 1}}},
    {"ec.der", 1, {{ST_X509_CERT, K_EC, C_EC, 0}}},
    {"ec-pub.der", 1, {{ST_X509_PUBKEY, K_EC, C_NONE, 0}}},
    {"ec.key", 1, {{ST_X509_PRIVKEY, K_EC, C_NONE, 1}}},
    {"ec-trad.key", 1, {{ST_X509_PRIVKEY, K_EC, C_NONE, 1}}},
    /* "EC PARAMETERS" at line 1 is skipped quietly */
    {"ec-params.key", 1, {{ST_X509_PRIVKEY, K_EC, C_NONE, 4}}},
    {"int.pem", 1, {{ST_X509_CERT, K_INT, C_INT, 1}}},
    {"ca.pem", 1, {{ST_X509_CERT, K_CA, C_CA, 1}}},
    {"ed25519.pem", 1, {{ST_X509_CERT, K_ED, C_ED, 1}}},
    {"ed25519.key", 1, {{ST_X509_PRIVKEY, K_ED, C_NONE, 1}}},
    {"chain.pem",
     3,
     {{ST_X509_CERT, K_EC, C_EC, 1},
      {ST_X509_CERT, K_INT, C_INT, 15},
      {ST_X509_CERT, K_CA, C_CA, 28}}},
    {"two.der", 2, {{ST_X509_CERT, K_RSA, C_RSA, 0}, {ST_X509_CERT, K_EC, C_EC, 0}}},
    /* openssl pkcs12 -nodes output: "Bag Attributes" text before each block */
    {"bag.pem", 2, {{ST_X509_CERT, K_EC, C_EC, 6}, {ST_X509_PRIVKEY, K_EC, C_NONE, 24}}},
    /* CRLF line endings, certificates and a key */
    {"crlf.pem",
     3,
     {{ST_X509_CERT, K_EC, C_EC, 1},
      {ST_X509_CERT, K_INT, C_INT, 15},
      {ST_X509_PRIVKEY, K_EC, C_NONE, 28}}},
};

/* ---- helpers ---- */

static void fixture_path(const char *name, char *out, size_t size)
{
	int n = snprintf(out, size, "%s/%s", data_dir, name);
	assert_true(n > 0 && (size_t)n < size);
}

/* Read a fixture into b (initialised here; release it). */
static void load_fixture(const char *name, struct st_buf *b)
{
	char path[PATH_MAX];
	struct st_error err;

	fixture_path(name, path, sizeof(path));
	st_error_clear(&err);
	st_buf_init(b, ST_INPUT_MAX);
	if (st_read_file(path, b, &err) != ST_OK)
		fail_msg("cannot load fixture %s: %s", name, err.msg);
	assert_true(b->len > 0);
}

/* "AB:CD:..." -> "abcd..." (TLSA form of a fingerprint) */
static void fp_to_tlsa(const char *fp, char *out)
{
	for (; *fp; fp++)
		if (*fp != ':')
			*out++ = (char)tolower((unsigned char)*fp);
	*out = '\0';
}

/* Lower-case hex of bytes, done here rather than with st_hex. */
static char *hex_of(const unsigned char *p, size_t n)
{
	char *s = malloc(2 * n + 1);
	size_t i;

	assert_non_null(s);
	for (i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", p[i]);
	s[2 * n] = '\0';
	return s;
}

/* The bytes of a hex string (TLSA 0 data), then their digest in fingerprint form. */
static void digest_of_hex(const char *hex, gnutls_digest_algorithm_t alg, char *fp)
{
	size_t n = strlen(hex) / 2, i;
	unsigned char *bytes = malloc(n ? n : 1), md[64];
	unsigned len = gnutls_hash_get_len(alg);

	assert_non_null(bytes);
	assert_int_equal(strlen(hex) % 2, 0);
	for (i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		bytes[i] = (unsigned char)v;
	}
	assert_int_equal(gnutls_hash_fast(alg, bytes, n, md), 0);
	free(bytes);
	for (i = 0; i < len; i++)
		snprintf(fp + 3 * i, 4, i + 1 < len ? "%02X:" : "%02X", md[i]);
}

/* ---- digests ---- */

static const struct {
	const char *name;
	int d;
	size_t len;
} digest_names[] = {
    {"md5", ST_DIGEST_MD5, 16},       {"sha1", ST_DIGEST_SHA1, 20},
    {"sha224", ST_DIGEST_SHA224, 28}, {"sha256", ST_DIGEST_SHA256, 32},
    {"sha384", ST_DIGEST_SHA384, 48}, {"sha512", ST_DIGEST_SHA512, 64},
};

static const struct {
	const char *name;
	int d;
} digest_parse[] = {
    {"SHA256", ST_DIGEST_SHA256},
    {"Sha1", ST_DIGEST_SHA1},
    {"MD5", ST_DIGEST_MD5},
    {"sHa512", ST_DIGEST_SHA512},
    {"", -1},
    {"sha", -1},
    {"sha-256", -1},
    {"sha2", -1},
    {"sha256 ", -1},
    {" sha256", -1},
    {"sha3-256", -1},
    {"md4", -1},
    {"sha5122", -1},
};

static void test_digest_names(void **state)
{
	size_t i;

	(void)state;
	assert_int_equal(N_ELEMS(digest_names), N_DIGESTS);
	for (i = 0; i < N_ELEMS(digest_names); i++) {
		/* the order of the expected tables is the order of the enum */
		assert_int_equal(digest_names[i].d, (int)i);
		assert_string_equal(st_digest_name((enum st_digest)i), digest_names[i].name);
		assert_int_equal(st_digest_from_name(digest_names[i].name), digest_names[i].d);
		assert_int_equal(st_digest_len((enum st_digest)i), digest_names[i].len);
		assert_true(st_digest_len((enum st_digest)i) <= ST_DIGEST_MAX);
		/* the expected fingerprints have that many bytes */
		assert_int_equal(strlen(spki_fps[0].fp[i]), 3 * digest_names[i].len - 1);
		assert_int_equal(strlen(cert_fps[0].fp[i]), 3 * digest_names[i].len - 1);
	}
	for (i = 0; i < N_ELEMS(digest_parse); i++)
		if (st_digest_from_name(digest_parse[i].name) != digest_parse[i].d)
			fail_msg("st_digest_from_name(\"%s\") = %d, expected %d",
			         digest_parse[i].name, st_digest_from_name(digest_parse[i].name),
			         digest_parse[i].d);
	assert_true(ST_FINGERPRINT_MAX >= 3 * ST_DIGEST_MAX);
}

static void test_kind_names(void **state)
{
	(void)state;
	assert_string_equal(st_x509_kind_name(ST_X509_CERT), "certificate");
	assert_string_equal(st_x509_kind_name(ST_X509_PUBKEY), "public key");
	assert_string_equal(st_x509_kind_name(ST_X509_PRIVKEY), "private key");
	assert_string_equal(st_x509_kind_name(ST_X509_CSR), "certificate request");
}

/* ---- the fixtures: items, kinds, fingerprints, TLSA ---- */

static void check_item_tlsa(const struct st_x509_item *item, const struct item_expect *e,
                            const char *file)
{
	struct st_buf out;
	char expect[2 * ST_DIGEST_MAX + 1], fp[ST_FINGERPRINT_MAX];
	const struct fp_set *k = &spki_fps[e->key];

	st_buf_init(&out, ST_INPUT_MAX);

	/* 3 1 1 and 3 1 2: the SPKI digests, lower-case hex without separators */
	assert_int_equal(st_x509_item_tlsa_data(item, ST_TLSA_SEL_SPKI, ST_TLSA_SHA256, &out),
	                 ST_OK);
	fp_to_tlsa(k->fp[ST_DIGEST_SHA256], expect);
	assert_string_equal(st_buf_str(&out), expect);
	assert_int_equal(out.len, 64);
	assert_int_equal(st_x509_item_tlsa_data(item, ST_TLSA_SEL_SPKI, ST_TLSA_SHA512, &out),
	                 ST_OK);
	fp_to_tlsa(k->fp[ST_DIGEST_SHA512], expect);
	assert_string_equal(st_buf_str(&out), expect);
	assert_int_equal(out.len, 128);

	/* 3 1 0: the SPKI itself, whose digest is openssl's */
	assert_int_equal(st_x509_item_tlsa_data(item, ST_TLSA_SEL_SPKI, ST_TLSA_FULL, &out), ST_OK);
	digest_of_hex(st_buf_str(&out), GNUTLS_DIG_SHA256, fp);
	assert_string_equal(fp, k->fp[ST_DIGEST_SHA256]);
	if (e->key == K_EC) {
		/* and exactly the bytes openssl wrote to ec-pub.der */
		struct st_buf der;
		char *hex;
		load_fixture("ec-pub.der", &der);
		hex = hex_of(der.data, der.len);
		assert_string_equal(st_buf_str(&out), hex);
		free(hex);
		st_buf_release(&der);
	}

	if (e->cert == C_NONE) {
		/* selector 0 needs a certificate */
		enum st_tlsa_mtype m;
		for (m = ST_TLSA_FULL; m <= ST_TLSA_SHA512; m++) {
			assert_int_equal(st_buf_add(&out, "stale", 5), ST_OK);
			if (st_x509_item_tlsa_data(item, ST_TLSA_SEL_CERT, m, &out) != ST_E_INVALID)
				fail_msg("%s: selector 0 of a %s did not fail", file,
				         st_x509_kind_name(e->kind));
			assert_int_equal(out.len, 0);
		}
		st_buf_release(&out);
		return;
	}

	/* 3 0 1 and 3 0 2: the certificate fingerprints */
	assert_int_equal(st_x509_item_tlsa_data(item, ST_TLSA_SEL_CERT, ST_TLSA_SHA256, &out),
	                 ST_OK);
	fp_to_tlsa(cert_fps[e->cert].fp[ST_DIGEST_SHA256], expect);
	assert_string_equal(st_buf_str(&out), expect);
	assert_int_equal(st_x509_item_tlsa_data(item, ST_TLSA_SEL_CERT, ST_TLSA_SHA512, &out),
	                 ST_OK);
	fp_to_tlsa(cert_fps[e->cert].fp[ST_DIGEST_SHA512], expect);
	assert_string_equal(st_buf_str(&out), expect);
	if (e->cert == C_EC) {
		assert_string_equal(st_buf_str(&out), tlsa_ec_302);
		assert_int_equal(
		    st_x509_item_tlsa_data(item, ST_TLSA_SEL_SPKI, ST_TLSA_SHA256, &out), ST_OK);
		assert_string_equal(st_buf_str(&out), tlsa_ec_311);
		assert_int_equal(
		    st_x509_item_tlsa_data(item, ST_TLSA_SEL_SPKI, ST_TLSA_SHA512, &out), ST_OK);
		assert_string_equal(st_buf_str(&out), tlsa_ec_312);
	}

	/* 3 0 0: the DER certificate */
	assert_int_equal(st_x509_item_tlsa_data(item, ST_TLSA_SEL_CERT, ST_TLSA_FULL, &out), ST_OK);
	digest_of_hex(st_buf_str(&out), GNUTLS_DIG_SHA256, fp);
	assert_string_equal(fp, cert_fps[e->cert].fp[ST_DIGEST_SHA256]);
	digest_of_hex(st_buf_str(&out), GNUTLS_DIG_MD5, fp);
	assert_string_equal(fp, cert_fps[e->cert].fp[ST_DIGEST_MD5]);
	if (e->cert == C_EC) {
		/* exactly the bytes of ec.der (openssl x509 -outform DER) */
		struct st_buf der;
		char *hex;
		load_fixture("ec.der", &der);
		hex = hex_of(der.data, der.len);
		assert_string_equal(st_buf_str(&out), hex);
		free(hex);
		st_buf_release(&der);
	}
	st_buf_release(&out);
}

static void check_item(const struct st_x509_item *item, const struct item_expect *e,
                       const char *file, size_t index)
{
	char fp[ST_FINGERPRINT_MAX];
	int d;

	if (st_x509_item_kind(item) != e->kind || st_x509_item_line(item) != e->line)
		fail_msg("%s item %zu: %s at line %u, expected %s at line %u", file, index,
		         st_x509_kind_name(st_x509_item_kind(item)), st_x509_item_line(item),
		         st_x509_kind_name(e->kind), e->line);
	for (d = 0; d < N_DIGESTS; d++) {
		/* pkey_fingerprint: the same for a certificate, key, public key or request */
		memset(fp, 'x', sizeof(fp));
		assert_int_equal(st_x509_item_fingerprint(item, (enum st_digest)d, true, fp),
		                 ST_OK);
		if (strcmp(fp, spki_fps[e->key].fp[d]) != 0)
			fail_msg("%s item %zu: %s pkey fingerprint %s, openssl says %s", file,
			         index, st_digest_name((enum st_digest)d), fp,
			         spki_fps[e->key].fp[d]);

		/* fingerprint: certificates only */
		memset(fp, 'x', sizeof(fp));
		if (e->cert == C_NONE) {
			assert_int_equal(
			    st_x509_item_fingerprint(item, (enum st_digest)d, false, fp),
			    ST_E_INVALID);
			assert_string_equal(fp, "");
			continue;
		}
		assert_int_equal(st_x509_item_fingerprint(item, (enum st_digest)d, false, fp),
		                 ST_OK);
		if (strcmp(fp, cert_fps[e->cert].fp[d]) != 0)
			fail_msg("%s item %zu: %s fingerprint %s, openssl says %s", file, index,
			         st_digest_name((enum st_digest)d), fp, cert_fps[e->cert].fp[d]);
	}
	check_item_tlsa(item, e, file);
}

static void test_fixtures(void **state)
{
	size_t f, i;

	(void)state;
	for (f = 0; f < N_ELEMS(files); f++) {
		const struct file_expect *fe = &files[f];
		struct st_x509_reader *r;
		struct st_x509_item *item;
		struct st_error err;
		struct st_buf b;
		int rc;

		load_fixture(fe->file, &b);
		r = st_x509_reader_new(fe->file, b.data, b.len);
		assert_non_null(r);
		for (i = 0; i < fe->n; i++) {
			st_error_clear(&err);
			rc = st_x509_reader_next(r, &item, &err);
			if (rc != 1)
				fail_msg("%s item %zu: rc %d (%s)", fe->file, i, rc, err.msg);
			assert_non_null(item);
			check_item(item, &fe->items[i], fe->file, i);
			st_x509_item_free(item);
		}
		/* then the end, and it stays the end */
		st_error_clear(&err);
		item = (struct st_x509_item *)&err; /* must be set to NULL */
		rc = st_x509_reader_next(r, &item, &err);
		if (rc != 0)
			fail_msg("%s: %d after %zu items (%s)", fe->file, rc, fe->n, err.msg);
		assert_null(item);
		assert_int_equal(err.cls, ST_ERR_NONE);
		assert_int_equal(st_x509_reader_next(r, &item, &err), 0);
		assert_null(item);
		st_x509_reader_free(r);
		st_buf_release(&b);
	}
}

/* A combined file made here: certificate + key, key + certificate, and a whole PKI. */
static void test_combined(void **state)
{
	static const struct {
		const char *parts[4];
		size_t n;
		int key[6];
		int kind[6];
	} cases[] = {
	    {{"rsa.pem", "rsa.key"}, 2, {K_RSA, K_RSA}, {ST_X509_CERT, ST_X509_PRIVKEY}},
	    {{"ec-params.key", "ec.pem"}, 2, {K_EC, K_EC}, {ST_X509_PRIVKEY, ST_X509_CERT}},
	    {{"ed25519.key", "rsa-pub.pem", "rsa.csr", "chain.pem"},
	     6,
	     {K_ED, K_RSA, K_RSA, K_EC, K_INT, K_CA},
	     {ST_X509_PRIVKEY, ST_X509_PUBKEY, ST_X509_CSR, ST_X509_CERT, ST_X509_CERT,
	      ST_X509_CERT}},
	};
	size_t c, i;

	(void)state;
	for (c = 0; c < N_ELEMS(cases); c++) {
		struct st_buf all, part;
		struct st_x509_reader *r;
		struct st_x509_item *item;
		struct st_error err;
		char fp[ST_FINGERPRINT_MAX];

		st_buf_init(&all, ST_INPUT_MAX);
		for (i = 0; i < 4 && cases[c].parts[i]; i++) {
			load_fixture(cases[c].parts[i], &part);
			assert_int_equal(st_buf_add(&all, part.data, part.len), ST_OK);
			st_buf_release(&part);
		}
		r = st_x509_reader_new("combined.pem", all.data, all.len);
		assert_non_null(r);
		for (i = 0; i < cases[c].n; i++) {
			assert_int_equal(st_x509_reader_next(r, &item, &err), 1);
			assert_int_equal(st_x509_item_kind(item), cases[c].kind[i]);
			assert_int_equal(st_x509_item_fingerprint(item, ST_DIGEST_SHA256, true, fp),
			                 ST_OK);
			assert_string_equal(fp, spki_fps[cases[c].key[i]].fp[ST_DIGEST_SHA256]);
			st_x509_item_free(item);
		}
		assert_int_equal(st_x509_reader_next(r, &item, &err), 0);
		st_x509_reader_free(r);
		st_buf_release(&all);
	}
}

/* ---- descriptions ---- */

static const struct info_expect {
	const char *file;
	enum st_x509_kind kind;
	const char *subject, *issuer, *serial, *cn;
	const char *san[8];
	size_t n_san;
	bool has_validity;
	long long not_before, not_after;
	bool is_ca, self_issued;
	const char *key_algorithm;
	unsigned key_bits;
	const char *key_curve;
	const char *sig_algorithm; /* GnuTLS's name of what openssl -text prints */
} infos[] = {
    /* clang-format off */
	/* openssl: serial=C0FFEE0123456789 (DER 00 C0 FF ...), sha256WithRSAEncryption */
	{"rsa.pem", ST_X509_CERT, "CN=rsa.example.org,O=smtptls tests,C=DE",
	 "CN=rsa.example.org,O=smtptls tests,C=DE", "C0FFEE0123456789", "rsa.example.org",
	 {"DNS:rsa.example.org", "DNS:mail.example.org", "IP:192.0.2.25", "IP:2001:db8::25",
	  "email:postmaster@example.org", "URI:https://rsa.example.org/"}, 6,
	 true, 1577836800, 4102444799LL, false, true, "RSA", 2048, "", "RSA-SHA256"},
	/* the same certificate as TRUSTED CERTIFICATE */
	{"trusted.pem", ST_X509_CERT, "CN=rsa.example.org,O=smtptls tests,C=DE",
	 "CN=rsa.example.org,O=smtptls tests,C=DE", "C0FFEE0123456789", "rsa.example.org",
	 {"DNS:rsa.example.org", "DNS:mail.example.org", "IP:192.0.2.25", "IP:2001:db8::25",
	  "email:postmaster@example.org", "URI:https://rsa.example.org/"}, 6,
	 true, 1577836800, 4102444799LL, false, true, "RSA", 2048, "", "RSA-SHA256"},
	/* openssl: serial=03E8, ecdsa-with-SHA256, prime256v1 */
	{"ec.pem", ST_X509_CERT, "CN=ec.example.org,O=smtptls tests,C=DE",
	 "CN=smtptls Unit Intermediate CA,O=smtptls tests", "03E8", "ec.example.org",
	 {"DNS:ec.example.org", "DNS:*.ec.example.org"}, 2,
	 true, 1577836800, 4102444799LL, false, false, "ECDSA", 256, "SECP256R1", "ECDSA-SHA256"},
	{"ec.der", ST_X509_CERT, "CN=ec.example.org,O=smtptls tests,C=DE",
	 "CN=smtptls Unit Intermediate CA,O=smtptls tests", "03E8", "ec.example.org",
	 {"DNS:ec.example.org", "DNS:*.ec.example.org"}, 2,
	 true, 1577836800, 4102444799LL, false, false, "ECDSA", 256, "SECP256R1", "ECDSA-SHA256"},
	/* openssl: serial=02, CA:TRUE pathlen:0, ecdsa-with-SHA384 */
	{"int.pem", ST_X509_CERT, "CN=smtptls Unit Intermediate CA,O=smtptls tests",
	 "CN=smtptls Unit Root CA,O=smtptls tests", "02", "smtptls Unit Intermediate CA",
	 {NULL}, 0,
	 true, 1577836800, 4102444799LL, true, false, "ECDSA", 256, "SECP256R1", "ECDSA-SHA384"},
	/* openssl: serial=01, CA:TRUE, secp384r1, ecdsa-with-SHA384 */
	{"ca.pem", ST_X509_CERT, "CN=smtptls Unit Root CA,O=smtptls tests",
	 "CN=smtptls Unit Root CA,O=smtptls tests", "01", "smtptls Unit Root CA",
	 {NULL}, 0,
	 true, 1577836800, 4102444799LL, true, true, "ECDSA", 384, "SECP384R1", "ECDSA-SHA384"},
	/* openssl: serial=7F, ED25519 */
	{"ed25519.pem", ST_X509_CERT, "CN=ed25519.example.org", "CN=ed25519.example.org", "7F",
	 "ed25519.example.org",
	 {"DNS:ed25519.example.org"}, 1,
	 true, 1577836800, 4102444799LL, false, true, "Ed25519", 256, "", "EdDSA-Ed25519"},
	/* a request: subject, names, key and the algorithm of its self-signature
	 * (openssl req -text: sha256WithRSAEncryption) */
	{"rsa.csr", ST_X509_CSR, "CN=rsa.example.org,O=smtptls tests", NULL, NULL, "rsa.example.org",
	 {"DNS:rsa.example.org", "IP:192.0.2.25"}, 2,
	 false, 0, 0, false, false, "RSA", 2048, "", "RSA-SHA256"},
	{"rsa-csr.der", ST_X509_CSR, "CN=rsa.example.org,O=smtptls tests", NULL, NULL, "rsa.example.org",
	 {"DNS:rsa.example.org", "IP:192.0.2.25"}, 2,
	 false, 0, 0, false, false, "RSA", 2048, "", "RSA-SHA256"},
	/* keys: the key only */
	{"rsa.key", ST_X509_PRIVKEY, NULL, NULL, NULL, NULL, {NULL}, 0,
	 false, 0, 0, false, false, "RSA", 2048, "", ""},
	{"rsa-pub.pem", ST_X509_PUBKEY, NULL, NULL, NULL, NULL, {NULL}, 0,
	 false, 0, 0, false, false, "RSA", 2048, "", ""},
	{"ec-params.key", ST_X509_PRIVKEY, NULL, NULL, NULL, NULL, {NULL}, 0,
	 false, 0, 0, false, false, "ECDSA", 256, "SECP256R1", ""},
	{"ec-pub.der", ST_X509_PUBKEY, NULL, NULL, NULL, NULL, {NULL}, 0,
	 false, 0, 0, false, false, "ECDSA", 256, "SECP256R1", ""},
	{"ed25519.key", ST_X509_PRIVKEY, NULL, NULL, NULL, NULL, {NULL}, 0,
	 false, 0, 0, false, false, "Ed25519", 256, "", ""},
    /* clang-format on */
};

static void assert_str_or_null(const char *what, const char *file, const char *got,
                               const char *want)
{
	if (!want && !got)
		return;
	if (!want || !got || strcmp(got, want) != 0)
		fail_msg("%s %s: \"%s\", expected \"%s\"", file, what, got ? got : "(null)",
		         want ? want : "(null)");
}

static void test_info(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < N_ELEMS(infos); i++) {
		const struct info_expect *e = &infos[i];
		struct st_x509_reader *r;
		struct st_x509_item *item;
		struct st_x509_info info;
		struct st_error err;
		struct st_buf b;

		load_fixture(e->file, &b);
		r = st_x509_reader_new(e->file, b.data, b.len);
		assert_non_null(r);
		assert_int_equal(st_x509_reader_next(r, &item, &err), 1);
		st_error_clear(&err);
		assert_int_equal(st_x509_item_info(item, &info, &err), ST_OK);
		assert_int_equal(err.cls, ST_ERR_NONE);
		assert_int_equal(info.kind, e->kind);
		assert_str_or_null("subject", e->file, info.subject, e->subject);
		assert_str_or_null("issuer", e->file, info.issuer, e->issuer);
		assert_str_or_null("serial", e->file, info.serial, e->serial);
		assert_str_or_null("cn", e->file, info.cn, e->cn);
		if (info.n_san != e->n_san)
			fail_msg("%s: %zu SANs, expected %zu", e->file, info.n_san, e->n_san);
		for (j = 0; j < e->n_san; j++)
			assert_str_or_null("SAN", e->file, info.san[j], e->san[j]);
		assert_int_equal(info.has_validity, e->has_validity);
		if (e->has_validity) {
			assert_int_equal((long long)info.not_before, e->not_before);
			assert_int_equal((long long)info.not_after, e->not_after);
		}
		assert_int_equal(info.is_ca, e->is_ca);
		assert_int_equal(info.self_issued, e->self_issued);
		assert_str_or_null("key algorithm", e->file, info.key_algorithm, e->key_algorithm);
		assert_int_equal(info.key_bits, e->key_bits);
		assert_str_or_null("key curve", e->file, info.key_curve, e->key_curve);
		assert_str_or_null("signature algorithm", e->file, info.sig_algorithm,
		                   e->sig_algorithm);
		st_x509_info_release(&info);
		assert_null(info.subject);
		assert_int_equal(info.n_san, 0);
		st_x509_info_release(&info); /* twice is harmless */
		st_x509_item_free(item);
		st_x509_reader_free(r);
		st_buf_release(&b);
	}
}

/* ---- errors, from buffers built in memory ---- */

/* A piece of an input: literal bytes, or a fixture (its first trunc bytes when trunc > 0). */
struct part {
	const char *lit;
	size_t len;
	const char *fixture;
	size_t trunc;
};
#define LIT(s)                                                                                     \
	{                                                                                          \
		s, sizeof(s) - 1, NULL, 0                                                          \
	}
#define FIX(f)                                                                                     \
	{                                                                                          \
		NULL, 0, f, 0                                                                      \
	}
#define TRUNC(f, n)                                                                                \
	{                                                                                          \
		NULL, 0, f, n                                                                      \
	}

/* One call of st_x509_reader_next: its result, and the item or the message. */
struct step {
	int rc;             /* 1 item, 0 end, < 0 error */
	int key;            /* rc 1: K_* of the item */
	unsigned line;      /* rc 1: its line */
	const char *msg[3]; /* rc < 0: what the message must contain (besides the name) */
};
#define ITEM(k, l)                                                                                 \
	{                                                                                          \
		1, k, l,                                                                           \
		{                                                                                  \
			NULL                                                                       \
		}                                                                                  \
	}
#define END                                                                                        \
	{                                                                                          \
		0, 0, 0,                                                                           \
		{                                                                                  \
			NULL                                                                       \
		}                                                                                  \
	}
#define ERR(rc, ...)                                                                               \
	{                                                                                          \
		rc, 0, 0,                                                                          \
		{                                                                                  \
			__VA_ARGS__                                                                \
		}                                                                                  \
	}

static const struct err_case {
	const char *title;
	const char *name;
	struct part parts[4];
	struct step steps[5];
} err_cases[] = {
    {"empty", "mem.pem", {LIT("")}, {ERR(ST_E_PARSE, "empty file"), END}},
    {"whitespace only", "mem.pem", {LIT(" \t\r\n\n   \n")}, {ERR(ST_E_PARSE, "empty file"), END}},
    {"NUL bytes only", "mem.der", {LIT("\0\0\0\0")}, {ERR(ST_E_PARSE, "empty file"), END}},
    {"garbage text",
     "mem.pem",
     {LIT("this is not a certificate\njust some text\n")},
     {ERR(ST_E_PARSE, "not a certificate or key", "neither PEM", "nor DER"), END}},
    {"garbage binary",
     "mem.der",
     {LIT("\x04\x82\xff\x00\x13\x37\xde\xad\xbe\xef")},
     {ERR(ST_E_PARSE, "not a certificate or key", "nor DER"), END}},
    {"BEGIN not at the start of a line",
     "mem.pem",
     {LIT("text -----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")},
     {ERR(ST_E_PARSE, "neither PEM"), END}},
    {"DER object that is not a certificate or key",
     "mem.der",
     {LIT("\x30\x03\x02\x01\x05")},
     {ERR(ST_E_PARSE, "offset 0", "not a certificate, key or certificate request"), END}},
    {"BEGIN without END",
     "mem.pem",
     {LIT("-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAK\n")},
     {ERR(ST_E_PARSE, "line 1:", "'CERTIFICATE' has no END line"), END}},
    {"BEGIN without END after text",
     "mem.pem",
     {LIT("Bag Attributes\n    localKeyID: 01\n-----BEGIN PRIVATE KEY-----\nMIIE\n")},
     {ERR(ST_E_PARSE, "line 3:", "'PRIVATE KEY' has no END line"), END}},
    {"truncated PEM file",
     "mem.pem",
     {FIX("ec.pem"), TRUNC("rsa.pem", 400)},
     {ITEM(K_EC, 1), ERR(ST_E_PARSE, "line 15:", "no END line", "truncated"), END}},
    {"two BEGINs: the first fails, the second is read",
     "mem.pem",
     {LIT("-----BEGIN CERTIFICATE-----\nMIIB\n"), FIX("ec.pem")},
     {ERR(ST_E_PARSE, "line 1:", "no END line before the next BEGIN line"), ITEM(K_EC, 3), END}},
    {"good, unterminated, good: nothing lost",
     "mem.pem",
     {FIX("rsa.pem"), LIT("-----BEGIN PRIVATE KEY-----\nMIIB\n"), FIX("ec.pem")},
     {ITEM(K_RSA, 1), ERR(ST_E_PARSE, "line 24:", "'PRIVATE KEY' has no END line"), ITEM(K_EC, 26),
      END}},
    {"mismatched END label",
     "mem.pem",
     {LIT("-----BEGIN CERTIFICATE-----\nMIIB\n-----END PRIVATE KEY-----\n"), FIX("ec.pem")},
     {ERR(ST_E_PARSE, "line 1:", "'CERTIFICATE' ends with a different END line at line 3"),
      ITEM(K_EC, 4), END}},
    {"bad base64",
     "mem.pem",
     {LIT("-----BEGIN CERTIFICATE-----\n!!!!@@@@####\n-----END CERTIFICATE-----\n"), FIX("ec.pem")},
     {ERR(ST_E_PARSE, "line 1:", "cannot decode CERTIFICATE"), ITEM(K_EC, 4), END}},
    {"base64 of something else",
     "mem.pem",
     {LIT("-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n")},
     {ERR(ST_E_PARSE, "line 1:", "cannot parse certificate"), END}},
    {"a key where a public key is announced",
     "mem.pem",
     {LIT("-----BEGIN PUBLIC KEY-----\nMAMCAQA=\n-----END PUBLIC KEY-----\n")},
     {ERR(ST_E_PARSE, "line 1:", "cannot parse public key"), END}},
    {"PKCS7",
     "mem.pem",
     {LIT("-----BEGIN PKCS7-----\nMIIB\n-----END PKCS7-----\n")},
     {ERR(ST_E_UNSUPPORTED, "line 1:", "PKCS#7 bundle not supported", "openssl pkcs7 -print_certs"),
      END}},
    {"unknown label",
     "mem.pem",
     {LIT("\n\n-----BEGIN FOO BAR-----\nAAAA\n-----END FOO BAR-----\n")},
     {ERR(ST_E_UNSUPPORTED, "line 3:", "unsupported PEM block 'FOO BAR'"), END}},
    {"label too long",
     "mem.pem",
     {LIT(
         "-----BEGIN AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-----\n")},
     {ERR(ST_E_PARSE, "line 1:", "PEM label too long"), END}},
    {"ENCRYPTED PRIVATE KEY",
     "mem.pem",
     {LIT("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n")},
     {ERR(ST_E_UNSUPPORTED, "line 1:", "encrypted private key not supported", "openssl pkey"),
      END}},
    {"Proc-Type 4,ENCRYPTED",
     "mem.pem",
     {LIT("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
          "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n"
          "-----END RSA PRIVATE KEY-----\n")},
     {ERR(ST_E_UNSUPPORTED, "line 1:", "encrypted private key not supported"), END}},
    {"OPENSSH PRIVATE KEY",
     "mem.pem",
     {LIT("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n"
          "-----END OPENSSH PRIVATE KEY-----\n")},
     {ERR(ST_E_UNSUPPORTED, "OpenSSH private key format not supported"), END}},
    {"RSA PUBLIC KEY",
     "mem.pem",
     {LIT("-----BEGIN RSA PUBLIC KEY-----\nMAoCAwEAAQIDAQAB\n-----END RSA PUBLIC KEY-----\n")},
     {ERR(ST_E_UNSUPPORTED, "PKCS#1 public key not supported"), END}},
    {"OpenSSH public key",
     "id_rsa.pub",
     {LIT("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@example.org\n")},
     {ERR(ST_E_UNSUPPORTED, "OpenSSH public key format not supported", "ssh-keygen"), END}},
    {"OpenSSH ECDSA public key",
     "id_ecdsa.pub",
     {LIT("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= user@example.org\n")},
     {ERR(ST_E_UNSUPPORTED, "OpenSSH public key format not supported"), END}},
    {"truncated DER",
     "mem.der",
     {TRUNC("ec.der", 200)},
     {ERR(ST_E_PARSE, "offset 0", "truncated"), END}},
    {"DER header only",
     "mem.der",
     {TRUNC("ec.der", 4)},
     {ERR(ST_E_PARSE, "offset 0", "truncated"), END}},
    {"DER then a truncated DER",
     "mem.der",
     {TRUNC("two.der", 1000)},
     {ITEM(K_RSA, 0), ERR(ST_E_PARSE, "offset 988", "truncated"), END}},
    {"DER then trailing bytes",
     "mem.der",
     {FIX("ec.der"), LIT("trailing garbage\n")},
     {ITEM(K_EC, 0), ERR(ST_E_PARSE, "offset 532", "trailing data that is not a DER object"), END}},
    {"DER then a DER non-certificate",
     "mem.der",
     {FIX("ec.der"), LIT("\x30\x03\x02\x01\x05")},
     {ITEM(K_EC, 0), ERR(ST_E_PARSE, "offset 532", "not a certificate, key or certificate request"),
      END}},
    {"DER then trailing blank lines",
     "mem.der",
     {FIX("ec.der"), LIT("\n\r\n\n")},
     {ITEM(K_EC, 0), END}},
    {"CRL only",
     "crl.pem",
     {FIX("crl.pem")},
     {ERR(ST_E_PARSE, "no certificate or key found"), END}},
    {"EC PARAMETERS only",
     "params.pem",
     {LIT("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")},
     {ERR(ST_E_PARSE, "no certificate or key found"), END}},
    {"text around a certificate",
     "mem.pem",
     {LIT("subject=CN = ec.example.org\n"), FIX("ec.pem"), LIT("\nsome trailing words\n")},
     {ITEM(K_EC, 2), END}},
    {"certificate then CRL", "mem.pem", {FIX("ca.pem"), FIX("crl.pem")}, {ITEM(K_CA, 1), END}},
    {"EC PARAMETERS then a certificate",
     "mem.pem",
     {LIT("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"),
      FIX("ca.pem")},
     {ITEM(K_CA, 4), END}},
};

/* Build the input of a case into b. */
static void build_input(const struct err_case *c, struct st_buf *b)
{
	size_t i;

	st_buf_init(b, ST_INPUT_MAX);
	for (i = 0; i < N_ELEMS(c->parts); i++) {
		const struct part *p = &c->parts[i];
		if (p->fixture) {
			struct st_buf f;
			size_t n;
			load_fixture(p->fixture, &f);
			n = p->trunc && p->trunc < f.len ? p->trunc : f.len;
			assert_int_equal(st_buf_add(b, f.data, n), ST_OK);
			st_buf_release(&f);
		} else if (p->lit) {
			assert_int_equal(st_buf_add(b, p->lit, p->len), ST_OK);
		}
	}
}

static void test_errors(void **state)
{
	size_t c, s, m;

	(void)state;
	for (c = 0; c < N_ELEMS(err_cases); c++) {
		const struct err_case *ec = &err_cases[c];
		struct st_x509_reader *r;
		struct st_x509_item *item;
		struct st_error err;
		struct st_buf b;
		char quoted[64];

		build_input(ec, &b);
		/* no NUL after the data: the reader must stay within len */
		r = st_x509_reader_new(ec->name, b.len ? b.data : (const unsigned char *)"", b.len);
		assert_non_null(r);
		snprintf(quoted, sizeof(quoted), "'%s'", ec->name);
		for (s = 0;; s++) {
			const struct step *st = &ec->steps[s];
			int rc;

			assert_true(s < N_ELEMS(ec->steps));
			st_error_clear(&err);
			rc = st_x509_reader_next(r, &item, &err);
			if (rc != st->rc)
				fail_msg("%s, call %zu: rc %d, expected %d (%s)", ec->title, s + 1,
				         rc, st->rc, err.msg);
			if (rc == 1) {
				char fp[ST_FINGERPRINT_MAX];
				assert_non_null(item);
				assert_int_equal(st_x509_item_line(item), st->line);
				assert_int_equal(
				    st_x509_item_fingerprint(item, ST_DIGEST_SHA256, true, fp),
				    ST_OK);
				assert_string_equal(fp, spki_fps[st->key].fp[ST_DIGEST_SHA256]);
				st_x509_item_free(item);
				continue;
			}
			assert_null(item);
			if (rc == 0) {
				assert_int_equal(err.cls, ST_ERR_NONE);
				break;
			}
			/* the message names the file and the reason */
			assert_int_equal(err.cls, ST_ERR_INPUT);
			if (strncmp(err.msg, quoted, strlen(quoted)) != 0)
				fail_msg("%s: message \"%s\" does not start with %s", ec->title,
				         err.msg, quoted);
			for (m = 0; m < N_ELEMS(st->msg) && st->msg[m]; m++)
				if (!strstr(err.msg, st->msg[m]))
					fail_msg("%s: message \"%s\" lacks \"%s\"", ec->title,
					         err.msg, st->msg[m]);
			for (m = 0; err.msg[m]; m++)
				assert_true(err.msg[m] >= 0x20 && err.msg[m] < 0x7f);
		}
		/* the end stays the end */
		assert_int_equal(st_x509_reader_next(r, &item, &err), 0);
		assert_null(item);
		st_x509_reader_free(r);
		st_buf_release(&b);
	}
}

/* The name is copied; NULL frees are no-ops; a label with odd bytes is sanitised. */
static void test_reader_misc(void **state)
{
	static const char odd[] =
	    "-----BEGIN \x1b[31mEVIL\x7f-----\nAAAA\n-----END \x1b[31mEVIL\x7f-----\n";
	char name[] = "original.pem";
	struct st_x509_reader *r;
	struct st_x509_item *item;
	struct st_error err;

	(void)state;
	st_x509_reader_free(NULL);
	st_x509_item_free(NULL);

	r = st_x509_reader_new(name, (const unsigned char *)"", 0);
	assert_non_null(r);
	memcpy(name, "clobbered!!!", sizeof(name));
	assert_int_equal(st_x509_reader_next(r, &item, &err), ST_E_PARSE);
	assert_string_equal(err.msg, "'original.pem': empty file");
	st_x509_reader_free(r);

	r = st_x509_reader_new("odd.pem", (const unsigned char *)odd, sizeof(odd) - 1);
	assert_non_null(r);
	assert_int_equal(st_x509_reader_next(r, &item, &err), ST_E_UNSUPPORTED);
	assert_string_equal(err.msg, "'odd.pem' line 1: unsupported PEM block '?[31mEVIL?'");
	assert_int_equal(st_x509_reader_next(r, &item, &err), 0);
	st_x509_reader_free(r);
}

static int find_data_dir(const char *argv0)
{
	const char *env[] = {"TOP_SRCDIR", "srcdir"};
	char probe[PATH_MAX + 16];
	size_t i;

	for (i = 0; i < N_ELEMS(env); i++) {
		const char *v = getenv(env[i]);
		if (!v || !*v)
			continue;
		snprintf(data_dir, sizeof(data_dir), "%s/tests/unit/data", v);
		snprintf(probe, sizeof(probe), "%s/rsa.pem", data_dir);
		if (access(probe, R_OK) == 0)
			return 0;
	}
	/* beside the program: tests/unit/test-x509 -> tests/unit/data */
	{
		const char *slash = strrchr(argv0, '/');
		int n = slash ? (int)(slash - argv0) : 1;
		snprintf(data_dir, sizeof(data_dir), "%.*s/data", n, slash ? argv0 : ".");
		snprintf(probe, sizeof(probe), "%s/rsa.pem", data_dir);
		if (access(probe, R_OK) == 0)
			return 0;
	}
	fprintf(stderr, "test-x509: cannot find tests/unit/data (set TOP_SRCDIR)\n");
	return -1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_digest_names), cmocka_unit_test(test_kind_names),
	    cmocka_unit_test(test_fixtures),     cmocka_unit_test(test_combined),
	    cmocka_unit_test(test_info),         cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_reader_misc),
	};

	(void)argc;
	if (find_data_dir(argv[0]) != 0)
		return 99; /* a hard error for the test driver */
	return cmocka_run_group_tests_name("x509", tests, NULL, NULL);
}
