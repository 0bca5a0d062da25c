/* dns_unbound.c: libunbound loaded on first use, for lib/dns (configure --disable-lazy-libs links it) */
#include "config.h"

#if ST_LAZY_LIBS
#include <stddef.h>

#include <unbound.h>

#include "dl.h"

/*
 * Linked, libunbound and what it brings (OpenSSL's libcrypto, libevent) took a
 * quarter of the start of every command, resolving or not. These definitions
 * stand for libunbound's own and forward to it: lib/dns calls libunbound as
 * it always did. A context exists only after ub_ctx_create loaded the
 * library, so only the calls without one load it.
 */
#define UB_FUNCTIONS(X)                                                                            \
	X(ub_ctx_create)                                                                           \
	X(ub_ctx_delete)                                                                           \
	X(ub_ctx_set_option)                                                                       \
	X(ub_ctx_get_option)                                                                       \
	X(ub_ctx_config)                                                                           \
	X(ub_ctx_set_fwd)                                                                          \
	X(ub_ctx_set_tls)                                                                          \
	X(ub_ctx_set_stub)                                                                         \
	X(ub_ctx_resolvconf)                                                                       \
	X(ub_ctx_hosts)                                                                            \
	X(ub_ctx_add_ta)                                                                           \
	X(ub_ctx_add_ta_file)                                                                      \
	X(ub_ctx_trustedkeys)                                                                      \
	X(ub_ctx_debuglevel)                                                                       \
	X(ub_ctx_async)                                                                            \
	X(ub_poll)                                                                                 \
	X(ub_wait)                                                                                 \
	X(ub_fd)                                                                                   \
	X(ub_process)                                                                              \
	X(ub_resolve)                                                                              \
	X(ub_resolve_async)                                                                        \
	X(ub_cancel)                                                                               \
	X(ub_resolve_free)                                                                         \
	X(ub_strerror)                                                                             \
	X(ub_ctx_zone_add)                                                                         \
	X(ub_ctx_data_add)

#define UB_POINTER(name) static __typeof__(name) *p_##name;
UB_FUNCTIONS(UB_POINTER)

#define UB_SYM(name) {#name, (void **)&p_##name},
static const struct st_dl_sym ub_syms[] = {UB_FUNCTIONS(UB_SYM)};

static struct st_dl_lib ub_lib =
    ST_DL_LIB_INIT(ST_UNBOUND_SONAME, ub_syms, sizeof(ub_syms) / sizeof(ub_syms[0]));

struct ub_ctx *ub_ctx_create(void)
{
	return st_dl_load(&ub_lib) ? NULL : p_ub_ctx_create();
}

const char *ub_strerror(int err)
{
	return st_dl_load(&ub_lib) ? ub_lib.why : p_ub_strerror(err);
}

void ub_ctx_delete(struct ub_ctx *ctx)
{
	if (ctx)
		p_ub_ctx_delete(ctx);
}

void ub_resolve_free(struct ub_result *result)
{
	if (result)
		p_ub_resolve_free(result);
}

int ub_ctx_set_option(struct ub_ctx *ctx, const char *opt, const char *val)
{
	return p_ub_ctx_set_option(ctx, opt, val);
}

int ub_ctx_get_option(struct ub_ctx *ctx, const char *opt, char **str)
{
	return p_ub_ctx_get_option(ctx, opt, str);
}

int ub_ctx_config(struct ub_ctx *ctx, const char *fname)
{
	return p_ub_ctx_config(ctx, fname);
}

int ub_ctx_set_fwd(struct ub_ctx *ctx, const char *addr)
{
	return p_ub_ctx_set_fwd(ctx, addr);
}

int ub_ctx_set_tls(struct ub_ctx *ctx, int tls)
{
	return p_ub_ctx_set_tls(ctx, tls);
}

int ub_ctx_set_stub(struct ub_ctx *ctx, const char *zone, const char *addr, int isprime)
{
	return p_ub_ctx_set_stub(ctx, zone, addr, isprime);
}

int ub_ctx_resolvconf(struct ub_ctx *ctx, const char *fname)
{
	return p_ub_ctx_resolvconf(ctx, fname);
}

int ub_ctx_hosts(struct ub_ctx *ctx, const char *fname)
{
	return p_ub_ctx_hosts(ctx, fname);
}

int ub_ctx_add_ta(struct ub_ctx *ctx, const char *ta)
{
	return p_ub_ctx_add_ta(ctx, ta);
}

int ub_ctx_add_ta_file(struct ub_ctx *ctx, const char *fname)
{
	return p_ub_ctx_add_ta_file(ctx, fname);
}

int ub_ctx_trustedkeys(struct ub_ctx *ctx, const char *fname)
{
	return p_ub_ctx_trustedkeys(ctx, fname);
}

int ub_ctx_debuglevel(struct ub_ctx *ctx, int d)
{
	return p_ub_ctx_debuglevel(ctx, d);
}

int ub_ctx_async(struct ub_ctx *ctx, int dothread)
{
	return p_ub_ctx_async(ctx, dothread);
}

int ub_poll(struct ub_ctx *ctx)
{
	return p_ub_poll(ctx);
}

int ub_wait(struct ub_ctx *ctx)
{
	return p_ub_wait(ctx);
}

int ub_fd(struct ub_ctx *ctx)
{
	return p_ub_fd(ctx);
}

int ub_process(struct ub_ctx *ctx)
{
	return p_ub_process(ctx);
}

int ub_resolve(struct ub_ctx *ctx, const char *name, int rrtype, int rrclass,
               struct ub_result **result)
{
	return p_ub_resolve(ctx, name, rrtype, rrclass, result);
}

int ub_resolve_async(struct ub_ctx *ctx, const char *name, int rrtype, int rrclass, void *mydata,
                     ub_callback_type callback, int *async_id)
{
	return p_ub_resolve_async(ctx, name, rrtype, rrclass, mydata, callback, async_id);
}

int ub_cancel(struct ub_ctx *ctx, int async_id)
{
	return p_ub_cancel(ctx, async_id);
}

int ub_ctx_zone_add(struct ub_ctx *ctx, const char *zone_name, const char *zone_type)
{
	return p_ub_ctx_zone_add(ctx, zone_name, zone_type);
}

int ub_ctx_data_add(struct ub_ctx *ctx, const char *data)
{
	return p_ub_ctx_data_add(ctx, data);
}
#endif
