/* fingerprint.c: the fingerprint command: fingerprints, relay_clientcerts lines, TLSA records */
#include "config.h"

#include <argp.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "output.h"
#include "x509.h"

#define HOSTS_MAX 64

struct fp_params {
	struct st_global *g;
	enum st_digest digest;
	bool pubkey;
	bool brief;
	bool relay;
	const char *relay_value;
	bool tlsa;
	const char *hosts[HOSTS_MAX];
	int n_hosts;
	unsigned port;
	int usage, selector, mtype;
	char **files;
	int n_files;
};

enum {
	OPT_RELAY = 0x200,
	OPT_TLSA,
	OPT_HOST,
	OPT_PORT,
	OPT_USAGE,
	OPT_SELECTOR,
	OPT_MTYPE,
};

static const struct argp_option fp_options[] = {
    {"digest", 'd', "NAME", 0,
     "Digest for fingerprints: md5, sha1, sha224, sha256 (default, as Postfix 3.6 and "
     "later), sha384 or sha512",
     0},
    {"pubkey", 'p', NULL, 0,
     "Where one fingerprint is printed (--brief, --relay-clientcerts), give the "
     "public-key (SPKI) one, not the certificate's",
     0},
    {"brief", 'b', NULL, 0, "Print one line per item: the fingerprint and the file name", 0},
    {"relay-clientcerts", OPT_RELAY, "VALUE", OPTION_ARG_OPTIONAL,
     "Print lines for Postfix relay_clientcerts: the fingerprint and VALUE (default: the "
     "certificate's CN); for a check_ccert_access table give the action, as in "
     "--relay-clientcerts=OK",
     1},
    {"tlsa", OPT_TLSA, NULL, 0,
     "Print DANE TLSA records in zone-file form (default 3 1 1, as 'postfix tls "
     "output-server-tlsa')",
     2},
    {"host", OPT_HOST, "NAME", 0,
     "Owner host name of the TLSA records (repeatable; default: the certificate's first "
     "DNS name, else its CN)",
     2},
    {"port", OPT_PORT, "N", 0, "TCP port of the TLSA records (default 25)", 2},
    {"usage", OPT_USAGE, "U", 0,
     "TLSA certificate usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE (default)", 2},
    {"selector", OPT_SELECTOR, "S", 0, "TLSA selector: 0 Cert, 1 SPKI (default)", 2},
    {"mtype", OPT_MTYPE, "M", 0, "TLSA matching type: 0 Full, 1 SHA2-256 (default), 2 SHA2-512", 2},
    {NULL, 0, NULL, 0, NULL, 0},
};

const struct st_optvals cmd_fingerprint_values[] = {
    {"digest", "md5 sha1 sha224 sha256 sha384 sha512"},
    {"usage", "0 1 2 3 PKIX-TA PKIX-EE DANE-TA DANE-EE"},
    {"selector", "0 1 Cert SPKI"},
    {"mtype", "0 1 2 Full SHA2-256 SHA2-512"},
    {NULL, NULL},
};

/* A TLSA field as a number or its RFC 7218 mnemonic; -1 when neither. */
static int tlsa_field(const char *arg, const char *const *names, int max)
{
	char *end;
	long v;
	int i;

	for (i = 0; i <= max; i++)
		if (strcasecmp(arg, names[i]) == 0)
			return i;
	v = strtol(arg, &end, 10);
	if (*arg == '\0' || *end != '\0' || v < 0 || v > max)
		return -1;
	return (int)v;
}

static error_t fp_parse(int key, char *arg, struct argp_state *state)
{
	static const char *const usages[] = {"PKIX-TA", "PKIX-EE", "DANE-TA", "DANE-EE"};
	static const char *const selectors[] = {"Cert", "SPKI"};
	static const char *const mtypes[] = {"Full", "SHA2-256", "SHA2-512"};
	struct fp_params *p = state->input;
	char *end;
	long v;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = p->g;
		break;
	case 'd':
		p->digest = st_parse_digest(state, "--digest", arg);
		break;
	case 'p':
		p->pubkey = true;
		break;
	case 'b':
		p->brief = true;
		break;
	case OPT_RELAY:
		p->relay = true;
		p->relay_value = arg;
		if (arg && (!*arg || strpbrk(arg, "\r\n")))
			st_usage_error(state,
			               "--relay-clientcerts: the value must be one non-empty line");
		break;
	case OPT_TLSA:
		p->tlsa = true;
		break;
	case OPT_HOST:
		if (p->n_hosts >= HOSTS_MAX)
			st_usage_error(state, "--host: at most %d host names", HOSTS_MAX);
		if (!*arg || strlen(arg) > 253 || strpbrk(arg, " \t\r\n;\"\\"))
			st_usage_error(state, "--host: '%s' is not a host name", arg);
		p->hosts[p->n_hosts++] = arg;
		break;
	case OPT_PORT:
		v = strtol(arg, &end, 10);
		if (*arg == '\0' || *end != '\0' || v < 1 || v > 65535)
			st_usage_error(state, "--port: '%s' is not a port number (1-65535)", arg);
		p->port = (unsigned)v;
		break;
	case OPT_USAGE:
		if ((p->usage = tlsa_field(arg, usages, 3)) < 0)
			st_usage_error(state,
			               "--usage: '%s' is not 0-3 or PKIX-TA, PKIX-EE, DANE-TA, "
			               "DANE-EE",
			               arg);
		break;
	case OPT_SELECTOR:
		if ((p->selector = tlsa_field(arg, selectors, 1)) < 0)
			st_usage_error(state, "--selector: '%s' is not 0, 1, Cert or SPKI", arg);
		break;
	case OPT_MTYPE:
		if ((p->mtype = tlsa_field(arg, mtypes, 2)) < 0)
			st_usage_error(
			    state, "--mtype: '%s' is not 0, 1, 2, Full, SHA2-256 or SHA2-512", arg);
		break;
	case ARGP_KEY_ARGS:
		p->files = state->argv + state->next;
		p->n_files = state->argc - state->next;
		for (int i = 0; i < p->n_files; i++) {
			const char *o = st_optional_value_before(p->files[i]);
			if (o && strcmp(p->files[i], "-") != 0 && access(p->files[i], F_OK) != 0)
				st_usage_error(state, "no file '%s'; did you mean --%s=%s?",
				               p->files[i], o, p->files[i]);
		}
		state->next = state->argc;
		break;
	case ARGP_KEY_NO_ARGS:
		st_usage_error(state, "no FILE given (use - for standard input)");
		break;
	case ARGP_KEY_END:
		if ((int)p->brief + (int)p->relay + (int)p->tlsa > 1)
			st_usage_error(
			    state, "--brief, --relay-clientcerts and --tlsa exclude each other");
		if (!p->tlsa &&
		    (p->n_hosts || p->port || p->usage >= 0 || p->selector >= 0 || p->mtype >= 0))
			st_usage_error(state,
			               "--host, --port, --usage, --selector and --mtype need "
			               "--tlsa");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

const struct argp cmd_fingerprint_argp = {
    fp_options,
    fp_parse,
    "FILE...",
    "Print certificate and public-key fingerprints as Postfix prints them, lines for "
    "relay_clientcerts, and DANE TLSA records.\v"
    "Each FILE holds PEM (any number of certificates, keys or requests) or DER; - reads "
    "standard input. For a private key, public key or certificate request the public-key "
    "fingerprint is given, so TLSA records can be published before a certificate exists. "
    "See smtptls-fingerprint(1).",
    st_global_children,
    NULL,
    NULL};

/*
 * What a file holds, read before its items are printed when --tlsa or
 * --relay-clientcerts must know the file as a whole.
 */
struct fp_survey {
	unsigned leaf;       /* position of the server's (or client's) own item, 0: none */
	bool leaf_broken;    /* a block before it could not be read */
	bool leaf_is_ca;     /* the leaf is a CA certificate that is not self-issued */
	char leaf_host[256]; /* its default TLSA host, or "" */
	char (*cert_spki)[ST_FINGERPRINT_MAX]; /* SHA-256 SPKI fingerprints of certificates */
	size_t n_cert_spki;
};

/* The state of one run. */
struct fp_run {
	struct fp_params *p;
	struct st_buf tlsa;
	unsigned printed;       /* text blocks printed, for the blank line between them */
	unsigned tlsa_items;    /* items of the current file that got TLSA records */
	char prev_issuer[1024]; /* issuer DN of the previous item of the current file */
	struct fp_survey sv;    /* what the current file holds (--tlsa, --relay-clientcerts) */
	const char *raw_why;    /* the current item is a certificate GnuTLS could not parse */
	enum st_exit status;
};

/* The relay_clientcerts value of an item: --relay-clientcerts=VALUE, CN, subject, file. */
static const char *relay_value(const struct fp_params *p, const struct st_x509_info *info,
                               const char *file)
{
	if (p->relay_value)
		return p->relay_value;
	if (info->cn && *info->cn)
		return info->cn;
	if (info->subject && *info->subject)
		return info->subject;
	return file;
}

/* The TLSA owner host of an item without --host: first DNS name, else a CN that looks like one. */
static bool is_host_name(const char *s)
{
	const char *c;

	if (!*s || !strchr(s, '.') || strlen(s) > 253)
		return false;
	for (c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.')
			return false;
	return true;
}

static const char *tlsa_default_host(const struct st_x509_info *info)
{
	size_t i;

	for (i = 0; i < info->n_san; i++)
		if (strncmp(info->san[i], "DNS:", 4) == 0 && is_host_name(info->san[i] + 4))
			return info->san[i] + 4;
	if (info->cn && is_host_name(info->cn))
		return info->cn;
	return NULL;
}

/*
 * Does this item get TLSA records? DANE-EE and PKIX-EE describe the server's
 * own certificate: the survey's leaf (see survey()), and only when no block
 * before it was broken, so a broken leaf never lets the next certificate
 * stand in for it. DANE-TA and PKIX-TA describe an issuer: certificates with
 * CA:TRUE.
 */
static bool tlsa_wanted(const struct fp_run *run, const struct st_x509_info *info, unsigned index)
{
	if (run->p->usage == 1 || run->p->usage == 3)
		return index == run->sv.leaf && !run->sv.leaf_broken && !run->sv.leaf_is_ca;
	return info->kind == ST_X509_CERT && info->is_ca;
}

static void survey_release(struct fp_survey *sv)
{
	free(sv->cert_spki);
	memset(sv, 0, sizeof(*sv));
}

/*
 * Read a file once to find its leaf: the first certificate, or the first
 * item when it holds no certificate (a key file). A file laid out as Postfix
 * smtpd_tls_chain_files allows (key, certificate, chain) thus has the
 * certificate as leaf, and its key is known to belong to it.
 */
static int survey(struct fp_survey *sv, const char *name, const struct st_buf *data)
{
	struct st_x509_reader *r = st_x509_reader_new(name, data->data, data->len);
	struct st_x509_item *item;
	struct st_x509_info info;
	struct st_error err;
	unsigned pos = 0, first_bad = 0, first_item = 0;
	int rc;

	memset(sv, 0, sizeof(*sv));
	if (!r)
		return ST_E_NOMEM;
	while ((rc = st_x509_reader_next(r, &item, &err)) != 0) {
		pos++;
		if (rc < 0) {
			if (!first_bad)
				first_bad = pos;
			continue;
		}
		if (!first_item)
			first_item = pos;
		if (st_x509_item_kind(item) == ST_X509_CERT) {
			char(*v)[ST_FINGERPRINT_MAX] =
			    realloc(sv->cert_spki, (sv->n_cert_spki + 1) * sizeof(*v));
			if (!v) {
				st_x509_item_free(item);
				st_x509_reader_free(r);
				return ST_E_NOMEM;
			}
			sv->cert_spki = v;
			st_x509_item_fingerprint(item, ST_DIGEST_SHA256, true,
			                         sv->cert_spki[sv->n_cert_spki++]);
			if (!sv->leaf) {
				sv->leaf = pos;
				if (st_x509_item_info(item, &info, &err) == 0) {
					const char *h = tlsa_default_host(&info);
					snprintf(sv->leaf_host, sizeof(sv->leaf_host), "%s",
					         h ? h : "");
					sv->leaf_is_ca = info.is_ca && !info.self_issued;
				}
				st_x509_info_release(&info);
			}
		}
		st_x509_item_free(item);
	}
	st_x509_reader_free(r);
	if (!sv->leaf)
		sv->leaf = first_item;
	sv->leaf_broken = first_bad && (!sv->leaf || first_bad < sv->leaf);
	return ST_OK;
}

/* Is this key the key of a certificate in the same file? */
static bool key_has_cert(const struct fp_survey *sv, const char *pfp_sha256)
{
	size_t i;

	for (i = 0; i < sv->n_cert_spki; i++)
		if (strcmp(sv->cert_spki[i], pfp_sha256) == 0)
			return true;
	return false;
}

/* Add the TLSA records of an item to json (when not NULL) or print them. */
static int tlsa_records(struct fp_run *run, const struct st_x509_item *item,
                        const struct st_x509_info *info, const char *file, json_t *json)
{
	const struct fp_params *p = run->p;
	const char *hosts[HOSTS_MAX];
	int n = p->n_hosts, i, rc;
	char line[1024];
	json_t *arr = NULL;

	if (n == 0) {
		/* the server's name: from this item for EE usages, from the file's
		 * first item (the leaf) for TA usages */
		hosts[0] = (p->usage == 1 || p->usage == 3)
		               ? tlsa_default_host(info)
		               : (run->sv.leaf_host[0] ? run->sv.leaf_host : NULL);
		if (!hosts[0]) {
			st_out_error("'%s': no host name for TLSA records in this %s: give --host",
			             file, st_x509_kind_name(info->kind));
			return -1;
		}
		n = 1;
	} else {
		memcpy(hosts, p->hosts, sizeof(hosts[0]) * (size_t)n);
	}
	if (p->selector == ST_TLSA_SEL_CERT && info->kind != ST_X509_CERT) {
		st_out_error("'%s': TLSA selector 0 (Cert) needs a certificate, not a %s", file,
		             st_x509_kind_name(info->kind));
		return -1;
	}
	rc = st_x509_item_tlsa_data(item, (enum st_tlsa_selector)p->selector,
	                            (enum st_tlsa_mtype)p->mtype, &run->tlsa);
	if (rc) {
		st_out_error("'%s': cannot compute TLSA data", file);
		return -1;
	}
	if (json)
		arr = json_array();
	for (i = 0; i < n; i++) {
		size_t hl = strlen(hosts[i]);
		snprintf(line, sizeof(line), "_%u._tcp.%s%s IN TLSA %d %d %d ", p->port, hosts[i],
		         hl && hosts[i][hl - 1] == '.' ? "" : ".", p->usage, p->selector, p->mtype);
		if (arr) {
			struct st_buf rec;
			st_buf_init(&rec, ST_INPUT_MAX);
			if (st_buf_add(&rec, line, strlen(line)) == 0 &&
			    st_buf_add(&rec, run->tlsa.data, run->tlsa.len) == 0)
				json_array_append_new(arr, json_string(st_buf_str(&rec)));
			st_buf_release(&rec);
		} else {
			fputs(line, stdout);
			fwrite(run->tlsa.data, 1, run->tlsa.len, stdout);
			putchar('\n');
		}
	}
	if (json)
		json_object_set_new(json, "tlsa", arr);
	return 0;
}

static void print_text(struct fp_run *run, const struct st_x509_info *info, const char *file,
                       unsigned index, unsigned line, const char *fp, const char *pfp)
{
	const struct fp_params *p = run->p;
	char head[1200], buf[256], label[64];
	struct st_buf san;
	size_t i;

	if (line)
		snprintf(head, sizeof(head), "%s #%u (line %u): %s\n", file, index, line,
		         st_x509_kind_name(info->kind));
	else
		snprintf(head, sizeof(head), "%s #%u: %s\n", file, index,
		         st_x509_kind_name(info->kind));
	if (run->printed++)
		putchar('\n');
	st_out_styled(ST_STYLE_HEAD, head);
	if (info->subject)
		st_out_field("subject", 17, info->subject);
	if (info->issuer)
		st_out_field("issuer", 17, info->issuer);
	if (info->serial)
		st_out_field("serial", 17, info->serial);
	if (info->has_validity) {
		st_time_iso(info->not_before, buf, sizeof(buf));
		st_out_field("not_before", 17, buf);
		st_time_iso(info->not_after, buf, sizeof(buf));
		st_out_field("not_after", 17, buf);
	}
	if (info->key_curve[0])
		snprintf(buf, sizeof(buf), "%s %s (%u bits)", info->key_algorithm, info->key_curve,
		         info->key_bits);
	else
		snprintf(buf, sizeof(buf), "%s %u bits", info->key_algorithm, info->key_bits);
	st_out_field("key", 17, buf);
	if (info->sig_algorithm[0])
		st_out_field("signature", 17, info->sig_algorithm);
	if (info->kind == ST_X509_CERT && run->raw_why)
		st_out_field("parsed", 17, "no: only the fingerprints are known");
	else if (info->kind == ST_X509_CERT)
		st_out_field("ca", 17,
		             info->is_ca ? (info->self_issued ? "yes (self-issued)" : "yes")
		                         : (info->self_issued ? "no (self-issued)" : "no"));
	if (info->n_san) {
		st_buf_init(&san, 65536);
		for (i = 0; i < info->n_san; i++)
			st_buf_addf(&san, "%s%s", i ? ", " : "", info->san[i]);
		st_out_field("san", 17, st_buf_str(&san));
		st_buf_release(&san);
	}
	if (fp) {
		snprintf(label, sizeof(label), "fingerprint");
		st_out_field(label, 17, fp);
	}
	st_out_field("pkey_fingerprint", 17, pfp);
	snprintf(label, sizeof(label), "%s", st_digest_name(p->digest));
	st_out_field("digest", 17, label);
}

/* Set key to a string, or to null when s is NULL. */
static void set_str(json_t *o, const char *key, const char *s)
{
	json_object_set_new(o, key, s ? json_string(s) : json_null());
}

/* The JSON object of one item (smtptls-fingerprint(1), JSON OUTPUT); NULL when out of memory. */
static json_t *item_json(const struct fp_params *p, const struct st_x509_info *info,
                         const struct st_x509_item *item, const char *file, unsigned index,
                         const char *fp, const char *pfp)
{
	json_t *o = json_object(), *san = json_array(), *key = json_object();
	bool is_cert = info->kind == ST_X509_CERT;
	unsigned line = st_x509_item_line(item);
	char t[32];
	size_t i;

	if (!o || !san || !key) {
		json_decref(o);
		json_decref(san);
		json_decref(key);
		return NULL;
	}
	set_str(o, "file", file);
	json_object_set_new(o, "index", json_integer(index));
	json_object_set_new(o, "line", line ? json_integer(line) : json_null());
	set_str(o, "type", st_x509_kind_name(info->kind));
	set_str(o, "subject", info->subject);
	set_str(o, "issuer", info->issuer);
	set_str(o, "serial", info->serial);
	set_str(o, "not_before",
	        info->has_validity && st_time_iso(info->not_before, t, sizeof(t)) == 0 ? t : NULL);
	set_str(o, "not_after",
	        info->has_validity && st_time_iso(info->not_after, t, sizeof(t)) == 0 ? t : NULL);
	set_str(o, "cn", info->cn);
	for (i = 0; i < info->n_san; i++)
		json_array_append_new(san, json_string(info->san[i]));
	json_object_set_new(o, "san", san);
	json_object_set_new(o, "ca",
	                    is_cert && !st_x509_item_parse_problem(item) ? json_boolean(info->is_ca)
	                                                                 : json_null());
	set_str(o, "parse_problem", st_x509_item_parse_problem(item));
	set_str(key, "algorithm", info->key_algorithm);
	json_object_set_new(key, "bits", json_integer(info->key_bits));
	set_str(key, "curve", info->key_curve[0] ? info->key_curve : NULL);
	json_object_set_new(o, "key", key);
	set_str(o, "signature_algorithm", info->sig_algorithm[0] ? info->sig_algorithm : NULL);
	set_str(o, "fingerprint", fp);
	set_str(o, "digest", st_digest_name(p->digest));
	set_str(o, "pkey_fingerprint", pfp);
	return o;
}

/* Handle one item of a file; returns its exit status. */
static enum st_exit one_item(struct fp_run *run, const struct st_x509_item *item, const char *file,
                             unsigned index)
{
	const struct fp_params *p = run->p;
	struct st_x509_info info;
	struct st_error err = {ST_ERR_NONE, "", 0};
	char fp[ST_FINGERPRINT_MAX], pfp[ST_FINGERPRINT_MAX], spki256[ST_FINGERPRINT_MAX];
	bool is_cert = st_x509_item_kind(item) == ST_X509_CERT;
	enum st_exit rc = ST_EXIT_OK;
	const char *one;
	bool relay;
	json_t *o;

	if (st_x509_item_info(item, &info, &err)) {
		st_out_error("'%s': %s", file, err.msg);
		st_x509_info_release(&info);
		return st_exit_for(err.cls);
	}
	if ((is_cert && st_x509_item_fingerprint(item, p->digest, false, fp)) ||
	    st_x509_item_fingerprint(item, p->digest, true, pfp) ||
	    st_x509_item_fingerprint(item, ST_DIGEST_SHA256, true, spki256)) {
		st_out_error("'%s': cannot compute the %s digest", file, st_digest_name(p->digest));
		st_x509_info_release(&info);
		return ST_EXIT_INTERNAL;
	}
	one = (p->pubkey || !is_cert) ? pfp : fp;
	run->raw_why = st_x509_item_parse_problem(item);
	if (run->raw_why)
		st_out_warn("'%s' line %u: GnuTLS cannot parse this certificate (%s): its "
		            "fingerprints are taken from its raw DER, as openssl's are, and nothing "
		            "else is known of it",
		            file, st_x509_item_line(item), run->raw_why);

	/* A CA certificate that issued the item before it belongs to a chain
	 * file, not to a client: no relay_clientcerts line for it. CA:TRUE alone
	 * is no reason, since openssl req -x509 marks self-signed certificates so.
	 * A key whose certificate is in the file is that certificate's line. */
	relay = p->relay && !(is_cert && info.is_ca && info.subject && run->prev_issuer[0] &&
	                      strcmp(info.subject, run->prev_issuer) == 0);
	if (relay && !is_cert && key_has_cert(&run->sv, spki256))
		relay = false;
	snprintf(run->prev_issuer, sizeof(run->prev_issuer), "%s",
	         is_cert && info.issuer ? info.issuer : "");
	if (p->g->json) {
		o = item_json(p, &info, item, file, index, is_cert ? fp : NULL, pfp);
		if (!o) {
			st_out_error("'%s': out of memory", file);
			st_x509_info_release(&info);
			return ST_EXIT_INTERNAL;
		}
		if (relay) {
			struct st_buf line;
			st_buf_init(&line, 8192);
			st_buf_addf(&line, "%s %s", one, relay_value(p, &info, file));
			json_object_set_new(o, "relay_clientcerts", json_string(st_buf_str(&line)));
			st_buf_release(&line);
		}
		if (p->tlsa && tlsa_wanted(run, &info, index)) {
			run->tlsa_items++;
			if (tlsa_records(run, item, &info, file, o))
				rc = ST_EXIT_INPUT;
		}
		st_out_json(o);
	} else if (p->brief) {
		printf("%s  %s\n", one, file);
	} else if (p->relay) {
		if (relay)
			printf("%s %s\n", one, relay_value(p, &info, file));
	} else if (p->tlsa) {
		if (tlsa_wanted(run, &info, index)) {
			run->tlsa_items++;
			if (tlsa_records(run, item, &info, file, NULL))
				rc = ST_EXIT_INPUT;
		}
	} else {
		print_text(run, &info, file, index, st_x509_item_line(item), is_cert ? fp : NULL,
		           pfp);
	}
	st_x509_info_release(&info);
	return rc;
}

/* Handle one file; returns its exit status. */
static json_t *error_json(const char *file, const struct st_error *err)
{
	json_t *o = json_object(), *e = json_object();

	if (!o || !e) {
		json_decref(o);
		json_decref(e);
		return NULL;
	}
	set_str(o, "file", file);
	set_str(e, "class", st_err_class_name(err->cls));
	set_str(e, "message", err->msg);
	json_object_set_new(o, "error", e);
	return o;
}

/* Report an error of a file on stderr and, with --json, on stdout. */
static enum st_exit file_error(const struct fp_run *run, const char *file, struct st_error *err)
{
	st_sanitize(err->msg);
	st_out_error("%s", err->msg);
	if (run->p->g->json)
		st_out_json(error_json(file, err));
	return st_exit_for(err->cls);
}

static enum st_exit one_file(struct fp_run *run, const char *path, struct st_buf *data)
{
	char *file = strdup(path);
	const char *name;
	struct st_error err = {ST_ERR_NONE, "", 0};
	struct st_x509_reader *r;
	struct st_x509_item *item;
	struct st_x509_bad bad = {{ST_ERR_NONE, "", 0}, 0};
	enum st_exit status = ST_EXIT_OK;
	unsigned index = 0;
	int rc;

	if (!file) {
		st_out_error("out of memory");
		return ST_EXIT_INTERNAL;
	}
	st_sanitize(file);
	/* messages say "standard input"; output names it "-", as sha256sum does */
	name = strcmp(path, "-") == 0 ? "standard input" : file;
	run->tlsa_items = 0;
	run->prev_issuer[0] = '\0';
	if (st_read_file(path, data, &err)) {
		status = file_error(run, file, &err);
		goto out;
	}
	if ((run->p->tlsa || run->p->relay) && survey(&run->sv, name, data)) {
		st_out_error("out of memory");
		status = ST_EXIT_INTERNAL;
		goto out;
	}
	r = st_x509_reader_new(name, data->data, data->len);
	if (!r) {
		st_out_error("out of memory");
		status = ST_EXIT_INTERNAL;
		goto out;
	}
	while (!st_out_failed() && (rc = st_x509_reader_next(r, &item, &err)) != 0) {
		index++; /* a bad block still takes its place */
		if (rc < 0) {
			st_x509_bad_add(&bad, &err);
			continue;
		}
		status = st_exit_worse(status, one_item(run, item, file, index));
		st_x509_item_free(item);
	}
	st_x509_reader_free(r);
	/* one line for all the bad blocks of a file, after its items */
	if (!st_out_failed() && st_x509_bad_report(&bad, &err))
		status = st_exit_worse(status, file_error(run, file, &err));
	st_out_note(1, "'%s': %u item%s", file, index, index == 1 ? "" : "s");
	if (run->p->tlsa && status == ST_EXIT_OK && run->tlsa_items == 0) {
		if (run->p->usage == 0 || run->p->usage == 2)
			st_out_error("'%s': no CA certificate (CA:TRUE) for TLSA usage %d", file,
			             run->p->usage);
		else if (run->sv.leaf_is_ca)
			st_out_error("'%s': its first certificate is a CA certificate (CA:TRUE), "
			             "not a server's: no TLSA usage %d record",
			             file, run->p->usage);
		else
			st_out_error("'%s': no server certificate or key for TLSA usage %d", file,
			             run->p->usage);
		status = ST_EXIT_INPUT;
	}
out:
	survey_release(&run->sv);
	free(file);
	return status;
}

int cmd_fingerprint(int argc, char **argv, struct st_global *g)
{
	struct fp_params p = {0};
	struct fp_run run;
	struct st_buf data;
	enum st_exit status = ST_EXIT_OK;
	int i;

	p.g = g;
	p.digest = ST_DIGEST_SHA256;
	p.usage = p.selector = p.mtype = -1;
	st_cmd_parse(&cmd_fingerprint_argp, argc, argv, &p, g);
	if (!p.port)
		p.port = 25;
	if (p.usage < 0)
		p.usage = 3;
	if (p.selector < 0)
		p.selector = 1;
	if (p.mtype < 0)
		p.mtype = 1;

	memset(&run, 0, sizeof(run));
	run.p = &p;
	st_buf_init(&run.tlsa, ST_INPUT_MAX);
	st_buf_init(&data, ST_INPUT_MAX);
	for (i = 0; i < p.n_files && !st_out_failed(); i++)
		status = st_exit_worse(status, one_file(&run, p.files[i], &data));
	st_buf_release(&data);
	st_buf_release(&run.tlsa);
	return status;
}
