/* policy_lint.c: lint of Postfix TLS policy tables (first cut: the entries Postfix calls invalid) */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_lint.h"

const char *st_lint_severity_name(enum st_lint_severity s)
{
	return s == ST_LINT_ERROR ? "error" : s == ST_LINT_WARNING ? "warning" : "note";
}

int st_lint_worst(const struct st_lint_diag *d, size_t n)
{
	int worst = -1;
	size_t i;

	for (i = 0; i < n; i++)
		if ((int)d[i].severity > worst)
			worst = (int)d[i].severity;
	return worst;
}

int st_policy_lint(struct st_policy_table *const *tables, size_t n,
                   const struct st_lint_context *ctx, struct st_lint_diag **out, size_t *n_out,
                   struct st_error *err)
{
	struct st_lint_diag *d = NULL;
	size_t cnt = 0, i, k;

	(void)ctx;
	for (i = 0; i < n; i++)
		for (k = 0; k < st_policy_table_size(tables[i]); k++) {
			const struct st_policy_entry *e = st_policy_table_at(tables[i], k);
			struct st_policy pol;
			struct st_error pe;
			struct st_lint_diag *x;
			if (st_policy_parse(e->value, &pol, &pe) == 0)
				continue;
			x = realloc(d, (cnt + 1) * sizeof(*x));
			if (!x) {
				free(d);
				st_error_set(err, ST_ERR_INTERNAL, "out of memory");
				return ST_E_NOMEM;
			}
			d = x;
			memset(&d[cnt], 0, sizeof(d[cnt]));
			d[cnt].severity = ST_LINT_ERROR;
			snprintf(d[cnt].code, sizeof(d[cnt].code), "invalid-entry");
			snprintf(d[cnt].file, sizeof(d[cnt].file), "%s",
			         st_policy_table_file(tables[i]));
			d[cnt].line = e->line;
			snprintf(d[cnt].key, sizeof(d[cnt].key), "%s", e->key);
			snprintf(d[cnt].message, sizeof(d[cnt].message),
			         "%s: %s; mail for it is deferred (4.7.5 client TLS configuration "
			         "problem)",
			         e->key, pe.msg);
			cnt++;
		}
	*out = d;
	*n_out = cnt;
	return 0;
}
