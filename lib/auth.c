/* auth.c: SMTP AUTH users from a file of crypt(3) hashes (user:hash lines) */
#include "config.h"

#include "auth.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct user {
	char *name;
	char *hash;
};

struct st_auth_db {
	struct user *users;
	unsigned n;
	char *dummy; /* a hash to spend time on for unknown users */
};

static void free_users(struct st_auth_db *db)
{
	unsigned i;

	for (i = 0; i < db->n; i++) {
		free(db->users[i].name);
		explicit_bzero(db->users[i].hash, strlen(db->users[i].hash));
		free(db->users[i].hash);
	}
	free(db->users);
}

void st_auth_db_free(struct st_auth_db *db)
{
	if (!db)
		return;
	free_users(db);
	free(db->dummy);
	free(db);
}

/* Does libcrypt take this hash (a known method, well formed)? */
static bool hash_ok(const char *hash)
{
	struct crypt_data cd;
	const char *out;

	if (hash[0] != '$')
		return false; /* DES and friends: not a hash anyone should use */
	memset(&cd, 0, sizeof(cd));
	out = crypt_r("probe", hash, &cd);
	return out && out[0] != '*';
}

struct st_auth_db *st_auth_db_load(const char *path, struct st_error *err)
{
	struct st_auth_db *db = calloc(1, sizeof(*db));
	struct st_buf b;
	char *p, *line, *save = NULL;
	unsigned lineno = 0, i;

	if (!db) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	st_buf_init(&b, ST_INPUT_MAX);
	if (st_read_file(path, &b, err)) {
		st_buf_release(&b);
		free(db);
		return NULL;
	}
	p = (char *)b.data;
	/* line by line, keeping empty lines for the numbering */
	for (line = p ? p : (char *)""; line && *line; line = save) {
		char *nl = strchr(line, '\n'), *colon, *hash;
		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		if (nl && nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
		line += strspn(line, " \t");
		if (!*line || *line == '#')
			continue;
		colon = strchr(line, ':');
		if (!colon || colon == line) {
			st_error_set(err, ST_ERR_INPUT, "%s:%u: not 'user:hash'", path, lineno);
			goto fail;
		}
		*colon = '\0';
		hash = colon + 1;
		hash[strcspn(hash, " \t:")] = '\0'; /* a passwd-style line: the hash field only */
		if (!hash_ok(hash)) {
			st_error_set(err, ST_ERR_INPUT,
			             "%s:%u: the hash of '%s' is no crypt(3) hash this system knows "
			             "($y$ yescrypt, $6$ sha512-crypt...)",
			             path, lineno, line);
			goto fail;
		}
		for (i = 0; i < db->n; i++)
			if (!strcmp(db->users[i].name, line)) {
				st_error_set(err, ST_ERR_INPUT, "%s:%u: user '%s' given twice", path,
				             lineno, line);
				goto fail;
			}
		if (db->n >= 100000) {
			st_error_set(err, ST_ERR_INPUT, "%s: more than 100000 users", path);
			goto fail;
		}
		{
			struct user *u = realloc(db->users, (db->n + 1) * sizeof(*u));
			if (!u) {
				st_error_set(err, ST_ERR_INTERNAL, "out of memory");
				goto fail;
			}
			db->users = u;
			u[db->n].name = strdup(line);
			u[db->n].hash = strdup(hash);
			if (!u[db->n].name || !u[db->n].hash) {
				free(u[db->n].name);
				free(u[db->n].hash);
				st_error_set(err, ST_ERR_INTERNAL, "out of memory");
				goto fail;
			}
			db->n++;
		}
	}
	if (b.data)
		explicit_bzero(b.data, b.cap);
	st_buf_release(&b);
	/* the unknown user's hash: as slow as the first real one */
	db->dummy = strdup(db->n ? db->users[0].hash : "$6$smtptlsdummy$");
	return db;
fail:
	st_sanitize(err->msg);
	if (b.data)
		explicit_bzero(b.data, b.cap);
	st_buf_release(&b);
	st_auth_db_free(db);
	return NULL;
}

/* Equal strings, compared without an early exit on the first differing byte. */
static bool same(const char *a, const char *b)
{
	size_t n = strlen(a), k;
	unsigned char d = 0;

	if (n != strlen(b))
		return false;
	for (k = 0; k < n; k++)
		d |= (unsigned char)(a[k] ^ b[k]);
	return d == 0;
}

bool st_auth_db_check(const struct st_auth_db *db, const char *user, const char *pass)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd)); /* large: not on the stack */
	const char *hash = db->dummy, *out;
	unsigned i;
	bool known = false, ok;

	if (!cd)
		return false;
	for (i = 0; i < db->n; i++)
		if (!strcmp(db->users[i].name, user)) {
			hash = db->users[i].hash;
			known = true;
			break;
		}
	out = crypt_r(pass, hash ? hash : "$6$x$", cd);
	ok = known && out && out[0] != '*' && same(out, hash);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

unsigned st_auth_db_count(const struct st_auth_db *db)
{
	return db->n;
}
