/* policy.h: Postfix TLS policy tables (smtp_tls_policy_maps): read, look up as Postfix does, parse entries */
#ifndef ST_POLICY_H
#define ST_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util.h"

/* Postfix's client security levels, weakest first. */
enum st_level {
	ST_LEVEL_NONE,
	ST_LEVEL_MAY,
	ST_LEVEL_ENCRYPT,
	ST_LEVEL_FINGERPRINT,
	ST_LEVEL_DANE,
	ST_LEVEL_DANE_ONLY,
	ST_LEVEL_VERIFY,
	ST_LEVEL_SECURE,
};

/* "none", "may", ... "secure". */
const char *st_level_name(enum st_level l);

/* A level by name, in any case as Postfix takes it. -1 when unknown. */
int st_level_parse(const char *name, enum st_level *out);

/* One line of a table: key and value as Postfix reads them (continuation lines joined). */
struct st_policy_entry {
	const char *key;   /* as written */
	const char *value; /* white space at both ends removed */
	unsigned line;     /* where the entry starts (1-based); 0 for inline: tables */
};

/* A table read from its source text. Opaque. */
struct st_policy_table;

/*
 * Read a table. spec is "type:path" with type hash, lmdb, cdb, btree, dbm,
 * sdbm or texthash (the source file named by path is read: what postmap
 * would compile), "inline:{ key=value, { key = value with spaces } }", or a
 * plain path. Blank lines and lines whose first non-blank byte is '#' are
 * skipped; a line starting with white space continues the previous one. A
 * key given twice keeps its first value, as postmap does (each later one is
 * counted in st_policy_table_duplicates). Lookups fold case, as Postfix's
 * indexed tables do. NULL with err (class input) naming the file and line
 * of what cannot be read, or the table type that is not known.
 */
struct st_policy_table *st_policy_table_load(const char *spec, struct st_error *err);

void st_policy_table_free(struct st_policy_table *t);

/* The spec the table was loaded from, and the file read ("" for inline:). */
const char *st_policy_table_spec(const struct st_policy_table *t);
const char *st_policy_table_file(const struct st_policy_table *t);

/* Entries in file order (duplicates included), i < st_policy_table_size. */
size_t st_policy_table_size(const struct st_policy_table *t);
const struct st_policy_entry *st_policy_table_at(const struct st_policy_table *t, size_t i);

/* Keys that were given more than once (later entries lose). */
size_t st_policy_table_duplicates(const struct st_policy_table *t);

/* What the loader skipped, as postmap skips it with a warning. */
enum st_policy_skip_kind {
	ST_POLICY_SKIP_NO_VALUE,     /* "key" alone: "expected format: key whitespace value" */
	ST_POLICY_SKIP_CONTINUATION, /* white space first, before any entry */
	ST_POLICY_SKIP_DUPLICATE,    /* a key given again: the first entry wins */
};

struct st_policy_skip {
	enum st_policy_skip_kind kind;
	unsigned line;       /* the skipped line (1-based; 0 for inline:) */
	unsigned first_line; /* duplicate: the line of the entry that wins */
	const char *key;     /* the key ("" for a continuation); borrowed from the table */
};

/* Skipped lines and duplicates, i < st_policy_table_skips, in the order found. */
size_t st_policy_table_skips(const struct st_policy_table *t);
const struct st_policy_skip *st_policy_table_skip_at(const struct st_policy_table *t, size_t i);

/*
 * The file postmap compiles the source into and Postfix reads ("x.db" for
 * hash: and btree:, "x.lmdb", "x.cdb", "x.pag" for dbm: and sdbm:), or
 * NULL for texthash:, inline: and a plain path. *src_mtime and *db_mtime
 * (either may be NULL) get the modification times seen at load, 0 when
 * the file is missing.
 */
const char *st_policy_table_db(const struct st_policy_table *t, time_t *src_mtime,
                               time_t *db_mtime);

#define ST_POLICY_TABLES_MAX 16

/*
 * The tables of a smtp_tls_policy_maps list, as Postfix opens them. The one
 * loader of policy lookup/test/check and serve's --tls-policy. Zero it (or
 * st_policy_tables_init) before the first add; st_policy_tables_release
 * frees the tables.
 */
struct st_policy_tables {
	struct st_policy_table *t[ST_POLICY_TABLES_MAX];
	size_t n;
	/* the first compiled table Postfix cannot open (postmap not run): its lookups fail and
	 * Postfix defers all mail with 4.7.5 client TLS configuration problem; "" if none */
	char broken[ST_ERROR_MAX];
	/* t[i]'s compiled file is older than its source: Postfix answers from the old entries
	 * (the answers here come from the source) */
	bool stale[ST_POLICY_TABLES_MAX];
};

void st_policy_tables_init(struct st_policy_tables *ts);
void st_policy_tables_release(struct st_policy_tables *ts);

/*
 * Add one table: a spec as st_policy_table_load takes it, or "proxy:" and
 * such a spec (Postfix reads the same table through proxymap). Records in
 * ts->broken / ts->stale what Postfix would see of its compiled file. -1
 * with err: class usage when ST_POLICY_TABLES_MAX are loaded, input when the
 * table cannot be read.
 */
int st_policy_tables_add(struct st_policy_tables *ts, const char *spec, struct st_error *err);

/*
 * The next word of a Postfix list parameter value at *q: separators (commas,
 * white space) skipped, *q moved to the word's start; its length is
 * returned (0 at the end). Braces keep what they enclose together
 * ("inline:{ a=b, c=d }" is one word), as Postfix's lists are split.
 */
size_t st_postfix_list_word(const char **q);

/*
 * Add every table a parameter value names ("hash:/a, texthash:/b
 * inline:{ x=y, { z = w } }"): split on commas and white space, braces kept
 * together, as Postfix splits smtp_tls_policy_maps. name (the parameter) is
 * for messages. -1 with err as st_policy_tables_add.
 */
int st_policy_tables_add_list(struct st_policy_tables *ts, const char *list, const char *name,
                              struct st_error *err);

/* The entry for exactly this key (case folded), or NULL. */
const struct st_policy_entry *st_policy_table_get(const struct st_policy_table *t, const char *key);

/*
 * Look up a next-hop as Postfix's smtp client does: the next-hop as given
 * (a "[host]:port" or "host:port" form is one literal lookup), then, for a
 * domain, ".parent" for each parent domain (never the bare parent, never
 * "*"). Each key is tried in every table, in order, before the next key:
 * the first hit wins. Returns the entry or NULL;
 * *table (when not NULL) is the index of the table that answered, key (up
 * to size bytes) the key that matched.
 */
const struct st_policy_entry *st_policy_lookup(struct st_policy_table *const *tables, size_t n,
                                               const char *nexthop, size_t *table, char *key,
                                               size_t size);

#define ST_POLICY_MATCH_MAX 1024

/* A policy value, parsed. Strings are "" when not given. */
struct st_policy {
	enum st_level level;
	char match[ST_POLICY_MATCH_MAX]; /* every match= joined by ':' (verify, secure) or '|' */
	char protocols[256];
	char ciphers[32];
	char exclude[256];
	char servername[256];
	char tafile[1024];       /* every tafile= joined by ' ' */
	int connection_reuse;    /* -1 not given, 0 no, 1 yes */
	bool ignored_attributes; /* attributes on a "none" entry, which Postfix ignores */
};

/*
 * Parse a policy value ("secure match=nexthop:.example.com protocols=>=TLSv1.2"),
 * split as Postfix splits it (white space and commas). A value Postfix
 * calls invalid (it then defers the mail with "4.7.5 client TLS
 * configuration problem") is -1 with err (class policy) saying what is
 * wrong: no level, an unknown level or attribute, an attribute without
 * "=", an empty ciphers=, match=, tafile= or servername= (an empty
 * protocols= or exclude= is taken, as Postfix 3.7 takes it: every
 * protocol, nothing excluded), an attribute not valid at the level, one
 * given twice that may be given once.
 */
int st_policy_parse(const char *value, struct st_policy *out, struct st_error *err);

#endif
