/* dl.c: libraries loaded on first use, so that commands that never fetch nor resolve skip them */
#include "config.h"

#include "dl.h"

#include <dlfcn.h>
#include <stdio.h>

int st_dl_load(struct st_dl_lib *lib)
{
	void *h;
	size_t i;

	pthread_mutex_lock(&lib->lock);
	if (lib->status != 0)
		goto out;
	lib->status = -1;
	h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(lib->why, sizeof(lib->why), "cannot load '%s': %s", lib->soname,
		         dlerror());
		goto out;
	}
	for (i = 0; i < lib->n_syms; i++) {
		*lib->syms[i].addr = dlsym(h, lib->syms[i].name);
		if (!*lib->syms[i].addr) {
			snprintf(lib->why, sizeof(lib->why), "'%s' has no '%s'", lib->soname,
			         lib->syms[i].name);
			dlclose(h);
			goto out;
		}
	}
	/* the library stays loaded: its functions are called until exit */
	lib->status = 1;
out:
	pthread_mutex_unlock(&lib->lock);
	return lib->status == 1 ? 0 : -1;
}
