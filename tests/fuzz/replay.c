/* replay.c: run a fuzz target over files (its corpus) without libFuzzer, as a TAP test */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The corpora replayed when no argument is given, relative to $TOP_SRCDIR (set per target). */
#ifndef REPLAY_DIR1
#define REPLAY_DIR1 "tests/unit/data"
#endif
#ifndef REPLAY_DIR2
#define REPLAY_DIR2 ""
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feed one file to the target; a crash or a sanitizer report ends the run. */
static int replay(const char *path, unsigned *n)
{
	struct st_buf b;
	struct st_error err;
	int rc;

	st_buf_init(&b, 64u * 1024 * 1024);
	rc = st_read_file(path, &b, &err);
	if (rc == 0)
		LLVMFuzzerTestOneInput(b.data ? b.data : (const uint8_t *)"", b.len);
	st_buf_release(&b);
	printf("%s %u - %s%s%s\n", rc ? "not ok" : "ok", ++*n, path, rc ? ": " : "",
	       rc ? err.msg : "");
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	unsigned n = 0;
	int i, failed = 0;

	/* with no arguments (as a test in make check): the fixtures and the corpus */
	const char *top = getenv("TOP_SRCDIR");
	char dirs[2][4096];
	char *defaults[3] = {argv[0], dirs[0], dirs[1]};

	if (argc < 2) {
		snprintf(dirs[0], sizeof(dirs[0]), "%s/%s", top ? top : ".", REPLAY_DIR1);
		snprintf(dirs[1], sizeof(dirs[1]), "%s/%s", top ? top : ".", REPLAY_DIR2);
		argc = strcmp(REPLAY_DIR2, "") ? 3 : 2;
		argv = defaults;
	}
	for (i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *e;
		char path[4096];

		if (!d) {
			failed += replay(argv[i], &n);
			continue;
		}
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			failed += replay(path, &n);
		}
		closedir(d);
	}
	printf("1..%u\n", n);
	return failed ? 1 : 0;
}
