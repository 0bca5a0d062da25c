/* policy.c: Postfix TLS policy tables: the source text read as postmap reads it, an index, Postfix's lookup order */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "policy.h"

static const char *const level_names[] = {"none", "may",       "encrypt", "fingerprint",
                                          "dane", "dane-only", "verify",  "secure"};

const char *st_level_name(enum st_level l)
{
	return (unsigned)l < sizeof(level_names) / sizeof(level_names[0]) ? level_names[l] : "?";
}

int st_level_parse(const char *name, enum st_level *out)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum st_level)i;
			return 0;
		}
	return -1;
}

struct st_policy_table {
	char *spec, *file;
	char *text; /* the source, rewritten in place into NUL-terminated keys and values */
	struct st_policy_entry *entries;
	size_t n, cap;
	struct slot {
		uint32_t entry; /* entry number + 1, 0 empty */
		uint32_t tag; /* the key's hash, high half: most misses end here, without the key */
	} * index;            /* open addressing */
	size_t index_size;
	size_t duplicates;
	struct st_policy_skip *skips;
	size_t n_skips, cap_skips;
	char *db;                   /* the compiled file, or NULL */
	time_t src_mtime, db_mtime; /* 0: missing */
};

/* Make room for one more element in a doubling array. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	void *p;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 16;
	p = realloc(*arr, c * elem);
	if (!p)
		return ST_E_NOMEM;
	*arr = p, *cap = c;
	return 0;
}

static int add_skip(struct st_policy_table *t, enum st_policy_skip_kind kind, unsigned line,
                    unsigned first_line, const char *key)
{
	if (grow((void **)&t->skips, &t->cap_skips, t->n_skips, sizeof(*t->skips)) < 0)
		return ST_E_NOMEM;
	t->skips[t->n_skips].kind = kind;
	t->skips[t->n_skips].line = line;
	t->skips[t->n_skips].first_line = first_line;
	t->skips[t->n_skips].key = key;
	t->n_skips++;
	return 0;
}

/* ASCII case folding, as Postfix folds table keys (no locale) */
static inline unsigned char fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static bool keys_equal(const char *a, const char *b)
{
	for (; *a && fold((unsigned char)*a) == fold((unsigned char)*b); a++, b++)
		;
	return fold((unsigned char)*a) == fold((unsigned char)*b);
}

static uint64_t hash_key(const char *k)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *k; k++) {
		h ^= fold((unsigned char)*k);
		h *= 1099511628211ULL;
	}
	return h;
}

static int add_entry(struct st_policy_table *t, const char *key, const char *value, unsigned line)
{
	if (grow((void **)&t->entries, &t->cap, t->n, sizeof(*t->entries)) < 0)
		return ST_E_NOMEM;
	t->entries[t->n].key = key;
	t->entries[t->n].value = value;
	t->entries[t->n].line = line;
	t->n++;
	return 0;
}

static int build_index(struct st_policy_table *t)
{
	size_t size = 16, i;

	while (size < t->n * 2)
		size *= 2;
	t->index = calloc(size, sizeof(*t->index));
	if (!t->index)
		return ST_E_NOMEM;
	t->index_size = size;
	for (i = 0; i < t->n; i++) {
		uint64_t h = hash_key(t->entries[i].key);
		size_t slot = h & (size - 1);
		const struct st_policy_entry *first = NULL;
		while (t->index[slot].entry) {
			if (t->index[slot].tag == (uint32_t)(h >> 32) &&
			    keys_equal(t->entries[t->index[slot].entry - 1].key,
			               t->entries[i].key)) {
				first = &t->entries[t->index[slot].entry - 1];
				break;
			}
			slot = (slot + 1) & (size - 1);
		}
		if (first) {
			t->duplicates++;
			if (add_skip(t, ST_POLICY_SKIP_DUPLICATE, t->entries[i].line, first->line,
			             t->entries[i].key) < 0)
				return ST_E_NOMEM;
		} else {
			t->index[slot].entry = (uint32_t)(i + 1);
			t->index[slot].tag = (uint32_t)(h >> 32);
		}
	}
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Split one logical line into key and value (in place) and add it; lines without a value are skipped. */
static int add_line(struct st_policy_table *t, char *line, unsigned lineno)
{
	char *k = line, *v, *end;

	v = k;
	while (*v && !is_blank(*v))
		v++;
	if (*v)
		*v++ = '\0';
	while (is_blank(*v))
		v++;
	end = v + strlen(v);
	while (end > v && is_blank(end[-1]))
		*--end = '\0';
	if (!*v) /* postmap: "expected format: key whitespace value" */
		return add_skip(t, ST_POLICY_SKIP_NO_VALUE, lineno, 0, k);
	return add_entry(t, k, v, lineno);
}

/*
 * The source text, as postmap reads it. Logical lines are rebuilt in place:
 * the write position never passes the read position (a line end becomes the
 * NUL, a continuation's leading white space one space).
 */
static int parse_source(struct st_policy_table *t, struct st_error *err)
{
	char *r = t->text, *w = t->text, *cur = NULL;
	unsigned lineno = 0, cur_line = 0;

	while (*r) {
		char *nl = strchr(r, '\n'), *s = r, *e;
		size_t len;

		lineno++;
		if (!nl)
			nl = r + strlen(r);
		e = nl;
		while (e > s && is_blank(e[-1]))
			e--;
		while (s < e && is_blank(*s))
			s++;
		if (s == e || *s == '#') {
			/* blank or comment: skipped, without ending the logical line */
		} else if (s != r) {
			/* white space first: continues the logical line (one without is ignored) */
			if (cur) {
				len = (size_t)(e - s);
				*w++ = ' ';
				memmove(w, s, len);
				w += len;
			} else if (add_skip(t, ST_POLICY_SKIP_CONTINUATION, lineno, 0, "") < 0)
				goto nomem;
		} else {
			if (cur) {
				*w++ = '\0';
				if (add_line(t, cur, cur_line) < 0)
					goto nomem;
			}
			len = (size_t)(e - s);
			memmove(w, s, len);
			cur = w, cur_line = lineno;
			w += len;
		}
		r = *nl ? nl + 1 : nl;
	}
	if (cur) {
		*w = '\0';
		if (add_line(t, cur, cur_line) < 0)
			goto nomem;
	}
	return 0;
nomem:
	st_error_set(err, ST_ERR_INTERNAL, "out of memory reading '%s'", t->file);
	return ST_E_NOMEM;
}

/* inline:{ key=value, { key = value } }: elements split by white space and commas, braces group */
static int parse_inline(struct st_policy_table *t, struct st_error *err)
{
	char *p = t->text, *end;

	while (is_blank(*p) || *p == '\n')
		p++;
	end = p + strlen(p);
	while (end > p && (is_blank(end[-1]) || end[-1] == '\n'))
		end--;
	if (*p != '{' || end - p < 2 || end[-1] != '}') {
		st_error_set(err, ST_ERR_INPUT,
		             "'%s': an inline table is written inline:{ key=value, ... }", t->spec);
		return ST_E_PARSE;
	}
	*--end = '\0';
	p++;
	while (p < end) {
		char *elem, *eq, *k, *v, *x;
		while (p < end && (is_blank(*p) || *p == '\n' || *p == ','))
			p++;
		if (p >= end)
			break;
		if (*p == '{') {
			elem = ++p;
			while (p < end && *p != '}')
				p++;
			if (p >= end) {
				st_error_set(err, ST_ERR_INPUT, "'%s': a '{' without its '}'",
				             t->spec);
				return ST_E_PARSE;
			}
			*p++ = '\0';
		} else {
			elem = p;
			while (p < end && !is_blank(*p) && *p != '\n' && *p != ',')
				p++;
			if (p < end)
				*p++ = '\0';
		}
		eq = strchr(elem, '=');
		if (!eq) {
			st_error_set(err, ST_ERR_INPUT, "'%s': '%s' is not key=value", t->spec,
			             elem);
			return ST_E_PARSE;
		}
		*eq = '\0';
		k = elem, v = eq + 1;
		while (is_blank(*k) || *k == '\n')
			k++;
		for (x = k + strlen(k); x > k && (is_blank(x[-1]) || x[-1] == '\n');)
			*--x = '\0';
		while (is_blank(*v) || *v == '\n')
			v++;
		for (x = v + strlen(v); x > v && (is_blank(x[-1]) || x[-1] == '\n');)
			*--x = '\0';
		if (!*k || !*v) {
			st_error_set(err, ST_ERR_INPUT, "'%s': an element without a key or a value",
			             t->spec);
			return ST_E_PARSE;
		}
		if (add_entry(t, k, v, 0) < 0) {
			st_error_set(err, ST_ERR_INTERNAL, "out of memory");
			return ST_E_NOMEM;
		}
	}
	return 0;
}

static const char *const file_types[] = {"hash", "lmdb", "cdb", "btree", "dbm", "sdbm", "texthash"};

/* The suffix postmap gives the compiled file of each table type, by file_types' order. */
static const char *const db_suffixes[] = {".db", ".lmdb", ".cdb", ".db", ".pag", ".pag", NULL};

static time_t mtime_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_mtime : 0;
}

struct st_policy_table *st_policy_table_load(const char *spec, struct st_error *err)
{
	struct st_policy_table *t = calloc(1, sizeof(*t));
	const char *colon = strchr(spec, ':');
	bool is_inline = false;
	int rc;

	if (!t)
		goto nomem;
	t->spec = strdup(spec);
	if (!t->spec)
		goto nomem;
	if (colon && spec[0] != '/' && spec[0] != '.') {
		size_t tl = (size_t)(colon - spec), i;
		bool known = false;
		const char *suffix = NULL;
		if (tl == 6 && strncasecmp(spec, "inline", 6) == 0)
			is_inline = known = true;
		for (i = 0; !known && i < sizeof(file_types) / sizeof(file_types[0]); i++) {
			known = strlen(file_types[i]) == tl &&
			        strncasecmp(spec, file_types[i], tl) == 0;
			if (known)
				suffix = db_suffixes[i];
		}
		if (!known) {
			st_error_set(
			    err, ST_ERR_INPUT,
			    "'%s': table type '%.*s' is not supported (hash, lmdb, cdb, btree, "
			    "dbm, sdbm, texthash and inline are: their source text is read)",
			    spec, (int)(tl < 32 ? tl : 32), spec);
			st_policy_table_free(t);
			return NULL;
		}
		t->file = strdup(is_inline ? "" : colon + 1);
		if (suffix) {
			size_t len = strlen(colon + 1) + strlen(suffix) + 1;
			t->db = malloc(len);
			if (!t->db)
				goto nomem;
			snprintf(t->db, len, "%s%s", colon + 1, suffix);
			t->db_mtime = mtime_of(t->db);
		}
	} else
		t->file = strdup(spec);
	if (!t->file)
		goto nomem;
	if (is_inline) {
		t->text = strdup(colon + 1);
		if (!t->text)
			goto nomem;
		rc = parse_inline(t, err);
	} else {
		struct st_buf b;
		st_buf_init(&b, ST_INPUT_MAX);
		if (st_read_file(t->file, &b, err) < 0) {
			st_buf_release(&b);
			st_policy_table_free(t);
			return NULL;
		}
		if (memchr(b.data, '\0', b.len)) {
			st_error_set(err, ST_ERR_INPUT, "'%s': a NUL byte: not a table source text",
			             t->file);
			st_buf_release(&b);
			st_policy_table_free(t);
			return NULL;
		}
		if (b.len)
			t->text = (char *)b.data; /* NUL-terminated */
		else {
			st_buf_release(&b);
			t->text = strdup("");
		}
		if (!t->text)
			goto nomem;
		t->src_mtime = mtime_of(t->file);
		rc = parse_source(t, err);
	}
	if (rc < 0 || (rc = build_index(t)) < 0) {
		if (rc == ST_E_NOMEM)
			st_error_set(err, ST_ERR_INTERNAL, "out of memory reading '%s'", spec);
		st_policy_table_free(t);
		return NULL;
	}
	return t;
nomem:
	st_error_set(err, ST_ERR_INTERNAL, "out of memory reading '%s'", spec);
	st_policy_table_free(t);
	return NULL;
}

void st_policy_table_free(struct st_policy_table *t)
{
	if (!t)
		return;
	free(t->spec);
	free(t->file);
	free(t->text);
	free(t->entries);
	free(t->index);
	free(t->skips);
	free(t->db);
	free(t);
}

const char *st_policy_table_spec(const struct st_policy_table *t)
{
	return t->spec;
}

const char *st_policy_table_file(const struct st_policy_table *t)
{
	return t->file;
}

size_t st_policy_table_size(const struct st_policy_table *t)
{
	return t->n;
}

const struct st_policy_entry *st_policy_table_at(const struct st_policy_table *t, size_t i)
{
	return i < t->n ? &t->entries[i] : NULL;
}

size_t st_policy_table_duplicates(const struct st_policy_table *t)
{
	return t->duplicates;
}

const struct st_policy_entry *st_policy_table_get(const struct st_policy_table *t, const char *key)
{
	size_t slot;
	uint64_t h;

	if (!t->index_size)
		return NULL;
	h = hash_key(key);
	slot = h & (t->index_size - 1);
	while (t->index[slot].entry) {
		if (t->index[slot].tag == (uint32_t)(h >> 32)) {
			const struct st_policy_entry *e = &t->entries[t->index[slot].entry - 1];
			if (keys_equal(e->key, key))
				return e;
		}
		slot = (slot + 1) & (t->index_size - 1);
	}
	return NULL;
}

static const struct st_policy_entry *lookup_key(struct st_policy_table *const *tables, size_t n,
                                                const char *key, size_t *table)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct st_policy_entry *e = st_policy_table_get(tables[i], key);
		if (e) {
			if (table)
				*table = i;
			return e;
		}
	}
	return NULL;
}

const struct st_policy_entry *st_policy_lookup(struct st_policy_table *const *tables, size_t n,
                                               const char *nexthop, size_t *table, char *key,
                                               size_t size)
{
	const struct st_policy_entry *e = lookup_key(tables, n, nexthop, table);
	const char *parent;

	if (e || strpbrk(nexthop, "[]:"))
		goto out;
	/* a domain: ".parent" for each parent, never the bare parent */
	for (parent = strchr(nexthop, '.'); parent && parent[1]; parent = strchr(parent + 1, '.')) {
		e = lookup_key(tables, n, parent, table);
		if (e) {
			nexthop = parent;
			break;
		}
	}
out:
	if (e && key && size)
		snprintf(key, size, "%s", nexthop);
	return e;
}

size_t st_policy_table_skips(const struct st_policy_table *t)
{
	return t->n_skips;
}

const struct st_policy_skip *st_policy_table_skip_at(const struct st_policy_table *t, size_t i)
{
	return i < t->n_skips ? &t->skips[i] : NULL;
}

const char *st_policy_table_db(const struct st_policy_table *t, time_t *src_mtime, time_t *db_mtime)
{
	if (src_mtime)
		*src_mtime = t->src_mtime;
	if (db_mtime)
		*db_mtime = t->db_mtime;
	return t->db;
}

void st_policy_tables_init(struct st_policy_tables *ts)
{
	memset(ts, 0, sizeof(*ts));
}

void st_policy_tables_release(struct st_policy_tables *ts)
{
	size_t i;

	for (i = 0; i < ts->n; i++)
		st_policy_table_free(ts->t[i]);
	st_policy_tables_init(ts);
}

int st_policy_tables_add(struct st_policy_tables *ts, const char *spec, struct st_error *err)
{
	struct st_policy_table *t;
	const char *f;
	time_t src, db;

	if (!strncmp(spec, "proxy:", 6))
		spec += 6;
	if (ts->n >= ST_POLICY_TABLES_MAX) {
		st_error_set(err, ST_ERR_USAGE, "at most %d tables", ST_POLICY_TABLES_MAX);
		return -1;
	}
	t = st_policy_table_load(spec, err);
	if (!t)
		return -1;
	/* Postfix reads the compiled file, not the source read here: missing, it fails every
	 * lookup; older, it answers from the old entries */
	f = st_policy_table_db(t, &src, &db);
	if (f && !db && !ts->broken[0])
		snprintf(ts->broken, sizeof(ts->broken),
		         "'%s' does not exist (postmap not run): Postfix's lookups in %s fail", f,
		         st_policy_table_spec(t));
	ts->stale[ts->n] = f && db && db < src;
	ts->t[ts->n++] = t;
	return 0;
}

size_t st_postfix_list_word(const char **q)
{
	const char *s = *q;
	size_t len = 0;
	int depth = 0;

	while (*s && (is_blank(*s) || *s == '\n' || *s == '\r' || *s == ','))
		s++;
	while (s[len] &&
	       (depth || (!is_blank(s[len]) && s[len] != '\n' && s[len] != '\r' && s[len] != ','))) {
		depth += s[len] == '{';
		depth -= s[len] == '}' && depth;
		len++;
	}
	*q = s;
	return len;
}

int st_policy_tables_add_list(struct st_policy_tables *ts, const char *list, const char *name,
                              struct st_error *err)
{
	const char *q = list;
	size_t len;

	while ((len = st_postfix_list_word(&q)) > 0) {
		char spec[4096];
		if (len >= sizeof(spec)) {
			st_error_set(err, ST_ERR_INPUT, "%s: a table of %zu bytes: at most %zu",
			             name, len, sizeof(spec) - 1);
			return -1;
		}
		snprintf(spec, sizeof(spec), "%.*s", (int)len, q);
		q += len;
		if (st_policy_tables_add(ts, spec, err))
			return -1;
	}
	return 0;
}

/* ---- policy values ---- */

static int set_once(char *dst, size_t size, const char *name, const char *val, struct st_error *err)
{
	if (*dst) {
		st_error_set(err, ST_ERR_POLICY, "attribute '%s' given more than once", name);
		return -1;
	}
	if (strlen(val) >= size) {
		st_error_set(err, ST_ERR_POLICY, "attribute '%s' is too long", name);
		return -1;
	}
	snprintf(dst, size, "%s", val);
	return 0;
}

static int append(char *dst, size_t size, char sep, const char *name, const char *val,
                  struct st_error *err)
{
	size_t len = strlen(dst);

	if (len + strlen(val) + 2 > size) {
		st_error_set(err, ST_ERR_POLICY, "attribute '%s' is too long", name);
		return -1;
	}
	if (len)
		dst[len++] = sep;
	snprintf(dst + len, size - len, "%s", val);
	return 0;
}

int st_policy_parse(const char *value, struct st_policy *out, struct st_error *err)
{
	char buf[4096], *p, *tok;
	bool first = true;

	memset(out, 0, sizeof(*out));
	out->connection_reuse = -1;
	if (strlen(value) >= sizeof(buf)) {
		st_error_set(err, ST_ERR_POLICY, "the policy is too long");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", value);
	for (p = buf; (tok = strsep(&p, " \t\r\n,")) != NULL;) {
		char *eq;
		if (!*tok)
			continue;
		if (first) {
			first = false;
			if (st_level_parse(tok, &out->level) < 0) {
				st_error_set(err, ST_ERR_POLICY, "unknown TLS security level '%s'",
				             tok);
				return -1;
			}
			continue;
		}
		/* Postfix 3.7 ignores whatever follows "none", even words that are no attribute */
		if (out->level == ST_LEVEL_NONE) {
			out->ignored_attributes = true;
			continue;
		}
		eq = strchr(tok, '=');
		if (!eq || eq == tok) {
			st_error_set(err, ST_ERR_POLICY, "'%s' is not an attribute (name=value)",
			             tok);
			return -1;
		}
		*eq++ = '\0';
		/* an empty value: Postfix 3.7 rejects it for these, and takes an empty
		 * protocols= (every protocol) or exclude= (nothing excluded) */
		if (!*eq && strcasecmp(tok, "tafile") &&
		    (!strcasecmp(tok, "ciphers") || !strcasecmp(tok, "match") ||
		     !strcasecmp(tok, "servername"))) {
			st_error_set(err, ST_ERR_POLICY, "attribute '%s' has an empty value", tok);
			return -1;
		}
		if (strcasecmp(tok, "match") == 0) {
			bool fp = out->level == ST_LEVEL_FINGERPRINT;
			if (!fp && out->level != ST_LEVEL_VERIFY && out->level != ST_LEVEL_SECURE) {
				st_error_set(err, ST_ERR_POLICY,
				             "attribute 'match' is not valid at level '%s' (only "
				             "fingerprint, "
				             "verify and secure)",
				             st_level_name(out->level));
				return -1;
			}
			if (append(out->match, sizeof(out->match), fp ? '|' : ':', "match", eq,
			           err))
				return -1;
		} else if (strcasecmp(tok, "tafile") == 0) {
			if (out->level != ST_LEVEL_VERIFY && out->level != ST_LEVEL_SECURE) {
				st_error_set(err, ST_ERR_POLICY,
				             "attribute 'tafile' is not valid at level '%s' (only "
				             "verify and "
				             "secure)",
				             st_level_name(out->level));
				return -1;
			}
			if (!*eq) {
				st_error_set(err, ST_ERR_POLICY,
				             "attribute 'tafile' has an empty value");
				return -1;
			}
			if (append(out->tafile, sizeof(out->tafile), ' ', "tafile", eq, err))
				return -1;
		} else if (strcasecmp(tok, "protocols") == 0) {
			if (set_once(out->protocols, sizeof(out->protocols), "protocols", eq, err))
				return -1;
		} else if (strcasecmp(tok, "ciphers") == 0) {
			if (set_once(out->ciphers, sizeof(out->ciphers), "ciphers", eq, err))
				return -1;
		} else if (strcasecmp(tok, "exclude") == 0) {
			if (set_once(out->exclude, sizeof(out->exclude), "exclude", eq, err))
				return -1;
		} else if (strcasecmp(tok, "servername") == 0) {
			if (set_once(out->servername, sizeof(out->servername), "servername", eq,
			             err))
				return -1;
		} else if (strcasecmp(tok, "connection_reuse") == 0) {
			if (strcasecmp(eq, "yes") && strcasecmp(eq, "no")) {
				st_error_set(err, ST_ERR_POLICY,
				             "connection_reuse must be yes or no, not '%s'", eq);
				return -1;
			}
			out->connection_reuse = strcasecmp(eq, "yes") == 0;
		} else {
			st_error_set(err, ST_ERR_POLICY, "unknown attribute '%s'", tok);
			return -1;
		}
	}
	if (first) {
		st_error_set(err, ST_ERR_POLICY, "no TLS security level");
		return -1;
	}
	return 0;
}
