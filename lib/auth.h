/* auth.h: SMTP AUTH users from a file of crypt(3) hashes (user:hash lines) */
#ifndef ST_AUTH_H
#define ST_AUTH_H

#include <stdbool.h>

#include "util.h"

struct st_auth_db;

/*
 * Read FILE: "user:hash" lines (hash from crypt(3): yescrypt "$y$", sha512-crypt "$6$",
 * sha256-crypt "$5$", bcrypt "$2b$"...), "#" comments and blank lines. Each line is
 * checked: a line without a colon, an empty user, a hash libcrypt does not know, a user
 * given twice is an error naming FILE:LINE (class input). At most ST_INPUT_MAX, 100000 users.
 */
struct st_auth_db *st_auth_db_load(const char *path, struct st_error *err);

void st_auth_db_free(struct st_auth_db *db);

/*
 * Does pass open user's hash? Slow by design (the hash's cost): call it off the event
 * loop's thread. An unknown user costs a hash too, so that timing does not tell users
 * apart. Thread-safe.
 */
bool st_auth_db_check(const struct st_auth_db *db, const char *user, const char *pass);

/* How many users. */
unsigned st_auth_db_count(const struct st_auth_db *db);

#endif
