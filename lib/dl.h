/* dl.h: libraries loaded on first use, so that commands that never fetch nor resolve skip them */
#ifndef ST_DL_H
#define ST_DL_H

#include <pthread.h>
#include <stddef.h>

/* One symbol to resolve: where its address goes. */
struct st_dl_sym {
	const char *name;
	void **addr;
};

/*
 * A library loaded on first use. Define one statically with
 * ST_DL_LIB_INIT(soname, syms, n); st_dl_load loads it once per process.
 */
struct st_dl_lib {
	const char *soname;
	const struct st_dl_sym *syms;
	size_t n_syms;
	pthread_mutex_t lock;
	int status; /* 0: not tried, 1: loaded, -1: failed (why says why) */
	char why[256];
};

#define ST_DL_LIB_INIT(soname, syms, n)                                                            \
	{                                                                                          \
		(soname), (syms), (n), PTHREAD_MUTEX_INITIALIZER, 0, ""                            \
	}

/*
 * Load the library and resolve every symbol, once; thread-safe. 0 when loaded,
 * -1 when the library or a symbol is missing (then lib->why says which, and
 * every later call fails the same way without trying again).
 */
int st_dl_load(struct st_dl_lib *lib);

#endif
