/* fuzz-policy.c: libFuzzer target for Postfix TLS policy tables: source text, inline: specs, values, lookups, the lint */
#define _GNU_SOURCE
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "policy.h"
#include "policy_lint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(struct st_policy_table *t, const uint8_t *data, size_t size)
{
	struct st_lint_context ctx = {"3.7.11", "may", false, NULL, 3};
	struct st_lint_diag *d = NULL;
	struct st_error err;
	size_t n = 0, k;
	char key[256];

	/* every value parsed, every key looked up (as itself and below a parent) */
	for (k = 0; k < st_policy_table_size(t); k++) {
		const struct st_policy_entry *e = st_policy_table_at(t, k);
		struct st_policy pol;
		char sub[300];
		st_policy_parse(e->value, &pol, &err);
		st_policy_lookup(&t, 1, e->key, NULL, key, sizeof(key));
		snprintf(sub, sizeof(sub), "a.%s", e->key);
		st_policy_lookup(&t, 1, sub, NULL, key, sizeof(key));
	}
	/* a next hop from the input itself */
	snprintf(key, sizeof(key), "%.*s", (int)(size < 200 ? size : 200), (const char *)data);
	st_policy_lookup(&t, 1, key, NULL, NULL, 0);
	if (st_policy_lint(&t, 1, &ctx, &d, &n, &err) == 0)
		free(d);
}

/*
 * The input is a table's source text, read from a memory file as postmap would read it;
 * then the same bytes (up to the first NUL) as an inline: table, and as a policy value.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_policy_table *t;
	struct st_policy pol;
	struct st_error err;
	char spec[64], *s;
	int fd;

	fd = memfd_create("policy", 0);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(spec, sizeof(spec), "texthash:/proc/self/fd/%d", fd);
		t = st_policy_table_load(spec, &err);
		if (t) {
			exercise(t, data, size);
			st_policy_table_free(t);
		}
	}
	close(fd);
	s = malloc(size + 8);
	if (!s)
		return 0;
	memcpy(s, "inline:", 7);
	memcpy(s + 7, data, size);
	s[size + 7] = '\0';
	t = st_policy_table_load(s, &err);
	if (t) {
		exercise(t, data, size);
		st_policy_table_free(t);
	}
	st_policy_parse(s + 7, &pol, &err);
	free(s);
	return 0;
}
