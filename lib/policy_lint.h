/* policy_lint.h: lint of Postfix TLS policy tables: what Postfix rejects or acts on, and what misleads */
#ifndef ST_POLICY_LINT_H
#define ST_POLICY_LINT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "policy.h"
#include "util.h"

enum st_lint_severity { ST_LINT_NOTE, ST_LINT_WARNING, ST_LINT_ERROR };

/* "note", "warning", "error". */
const char *st_lint_severity_name(enum st_lint_severity s);

/* One finding. */
struct st_lint_diag {
	enum st_lint_severity severity;
	char code[40];     /* stable, documented in smtptls-policy(1): "unknown-level", ... */
	char file[1024];   /* the table's source file ("" for inline:) */
	unsigned line;     /* 1-based; 0 when about the whole table */
	char key[256];     /* the entry's key, or "" */
	char message[600]; /* plain words, the consequence included ("mail for it is deferred") */
};

/* What the lint knows of the Postfix that reads the tables (main.cf, postconf). */
struct st_lint_context {
	const char *postfix_version; /* "3.7.11"; NULL: unknown (no version checks) */
	const char *default_level;   /* smtp_tls_security_level ("" or NULL: none) */
	bool have_ca;                /* smtp_tls_CAfile or smtp_tls_CApath is set */
	const char *digest;          /* smtp_tls_fingerprint_digest, NULL: the default */
	int compatibility_level;     /* its major number, 0 when unknown */
};

/*
 * Lint tables in order (later tables are shadowed by earlier ones for the
 * same key). *out (owned by the caller, free()) gets the findings in table,
 * then line order. Returns 0, or a negative ST_E_* with err.
 */
int st_policy_lint(struct st_policy_table *const *tables, size_t n,
                   const struct st_lint_context *ctx, struct st_lint_diag **out, size_t *n_out,
                   struct st_error *err);

/* The worst severity among findings, or -1 when there are none. */
int st_lint_worst(const struct st_lint_diag *d, size_t n);

#endif
