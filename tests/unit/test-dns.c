/* test-dns.c: lib/dns against DNS servers the test runs on 127.0.0.1: one that answers, one that never does */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dns.h"

/* A UDP socket on 127.0.0.1, its port in *port. */
static int udp_socket(unsigned *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/*
 * The answering server, in a child: every name has A 192.0.2.7 and MX 10 pointing
 * at itself, "gone.test" and names whose first label is "127" (numeric addresses,
 * which the system's resolver answers without reading a file) are NXDOMAIN, AAAA
 * questions get no answer.
 */
static void serve(int fd)
{
	unsigned char q[512], r[600];

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test must not leave it behind */

	for (;;) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
		size_t end = 12, rl;
		unsigned type;
		int nx;

		if (n < 12)
			continue;
		while (end < (size_t)n && q[end])
			end += q[end] + 1u;
		end += 5; /* the root label, type, class */
		if (end > (size_t)n)
			continue;
		type = (unsigned)q[end - 4] << 8 | q[end - 3];
		nx = memmem(q + 12, end - 12, "\4gone\4test", 10) != NULL ||
		     memcmp(q + 12, "\003127", 4) == 0;
		memcpy(r, q, end);
		r[2] = 0x81 | (q[2] & 0x01); /* QR, RD as asked */
		r[3] = nx ? 0x83 : 0x80;     /* RA, NXDOMAIN or NOERROR */
		r[4] = 0, r[5] = 1;
		r[6] = 0, r[7] = (!nx && (type == 1 || type == 15)) ? 1 : 0;
		memset(r + 8, 0, 4);
		rl = end;
		if (r[7]) {
			static const unsigned char a[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7};
			static const unsigned char mx[] = {0xc0, 12, 0, 15, 0, 1, 0, 0,    0,
			                                   60,   0,  4, 0,  10, 0xc0, 12};
			_Static_assert(sizeof(a) == sizeof(mx), "one record length");
			memcpy(r + rl, type == 1 ? a : mx, sizeof(a));
			rl += sizeof(a);
		}
		sendto(fd, r, rl, 0, (struct sockaddr *)&from, fl);
	}
}

/* The answering server on fd, in a child (fd is then closed here). */
static pid_t serve_in_child(int fd)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		serve(fd);
	close(fd);
	return pid;
}

static void test_answers(void **state)
{
	unsigned port;
	int fd = udp_socket(&port);
	pid_t pid;
	char server[64], addrs[ST_DNS_ADDR_MAX][64];
	struct st_mx mx[ST_DNS_MX_MAX];
	struct st_error err;
	struct st_dns *d;
	size_t n;
	bool null_mx;

	(void)state;
	pid = serve_in_child(fd);
	snprintf(server, sizeof(server), "127.0.0.1@%u", port);
	d = st_dns_new(server, &err);
	assert_non_null(d);
	st_dns_set_timeout(d, 10000);
	assert_int_equal(st_dns_addrs(d, "mail.test", 25, addrs, ST_DNS_ADDR_MAX, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(addrs[0], "192.0.2.7");
	assert_int_equal(st_dns_mx(d, "example.test", mx, ST_DNS_MX_MAX, &n, &null_mx, &err), 0);
	assert_int_equal(n, 1);
	assert_false(null_mx);
	assert_int_equal(mx[0].pref, 10);
	assert_string_equal(mx[0].host, "example.test");
	assert_int_not_equal(st_dns_addrs(d, "gone.test", 25, addrs, ST_DNS_ADDR_MAX, &n, &err), 0);
	assert_int_equal(err.cls, ST_ERR_DNS);
	assert_string_equal(err.msg, "'gone.test': no such domain (NXDOMAIN)");
	assert_int_equal(err.sub, ST_DNS_NXDOMAIN); /* the sub-code decides, not the words */
	st_dns_free(d);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_silent_server(void **state)
{
	unsigned port;
	int fd = udp_socket(&port); /* bound, never read: every query goes unanswered */
	char server[64], addrs[ST_DNS_ADDR_MAX][64];
	struct st_error err;
	struct st_dns *d;
	size_t n;

	(void)state;
	snprintf(server, sizeof(server), "127.0.0.1@%u", port);
	d = st_dns_new(server, &err);
	assert_non_null(d);
	st_dns_set_timeout(d, 300);
	assert_int_not_equal(st_dns_addrs(d, "mail.test", 25, addrs, ST_DNS_ADDR_MAX, &n, &err), 0);
	assert_int_equal(err.cls, ST_ERR_DNS);
	assert_string_equal(err.msg, "no DNS answer for 'mail.test' within 300 ms");
	st_dns_free(d);
	close(fd);
}

/* ---- on a loop that does other work: queries side by side ---- */

struct seen {
	char what[8][600];
	int n;
};

static void seen_mx(void *arg, int rc, const struct st_mx *mx, size_t n, bool null_mx,
                    const struct st_error *err)
{
	struct seen *s = arg;

	(void)null_mx;
	snprintf(s->what[s->n++], sizeof(s->what[0]), "mx %d %zu %s", rc, n, rc ? err->msg : mx[0].host);
}

static void seen_addrs(void *arg, int rc, char (*addrs)[64], size_t n, const struct st_error *err)
{
	struct seen *s = arg;

	snprintf(s->what[s->n++], sizeof(s->what[0]), "a %d %zu %s", rc, n, rc ? err->msg : addrs[0]);
}

/* The answering server (in a child) and a silent one, for a test's lookups. */
struct peers {
	unsigned port, silent_port;
	int silent;
	pid_t pid;
};

static void peers_start(struct peers *pe)
{
	int fd = udp_socket(&pe->port);

	pe->silent = udp_socket(&pe->silent_port);
	pe->pid = serve_in_child(fd);
}

static void peers_stop(struct peers *pe)
{
	close(pe->silent);
	kill(pe->pid, SIGKILL);
	waitpid(pe->pid, NULL, 0);
}

static void test_on_a_loop(void **state)
{
	struct peers pe;
	char server[64];
	struct st_error err;
	struct st_dns *d, *quiet;
	struct seen s = {{{0}}, 0};
	uv_loop_t loop;

	(void)state;
	peers_start(&pe);
	assert_int_equal(uv_loop_init(&loop), 0);
	snprintf(server, sizeof(server), "127.0.0.1@%u", pe.silent_port);
	quiet = st_dns_new(server, &err);
	snprintf(server, sizeof(server), "127.0.0.1@%u", pe.port);
	d = st_dns_new(server, &err);
	assert_non_null(d);
	assert_non_null(quiet);
	st_dns_set_timeout(d, 10000);
	st_dns_set_timeout(quiet, 3000);
	assert_int_equal(st_dns_attach(d, &loop, &err), 0);
	assert_int_equal(st_dns_attach(quiet, &loop, &err), 0);
	assert_int_equal(st_dns_attach(d, &loop, &err), ST_E_INVALID); /* once */
	/* the blocking calls refuse an attached resolver */
	{
		char addrs[ST_DNS_ADDR_MAX][64];
		size_t n;
		assert_int_equal(st_dns_addrs(d, "x.test", 25, addrs, ST_DNS_ADDR_MAX, &n, &err),
		                 ST_E_INVALID);
	}
	/* the silent server's query first: the others must not wait for it */
	assert_int_equal(st_dns_addrs_async(quiet, "slow.test", 25, seen_addrs, &s, &err), 0);
	assert_int_equal(st_dns_mx_async(d, "example.test", seen_mx, &s, &err), 0);
	assert_int_equal(st_dns_addrs_async(d, "mail.test", 25, seen_addrs, &s, &err), 0);
	assert_int_equal(st_dns_addrs_async(d, "gone.test", 25, seen_addrs, &s, &err), 0);
	/* the loop ends when nothing is pending: the resolvers do not hold it */
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.what[3], "a -3 0 no DNS answer for 'slow.test' within 3000 ms");
	{
		int i, mx = 0, a = 0, nx = 0;
		for (i = 0; i < 3; i++) {
			mx += strcmp(s.what[i], "mx 0 1 example.test") == 0;
			a += strcmp(s.what[i], "a 0 1 192.0.2.7") == 0;
			nx += strcmp(s.what[i], "a -4 0 'gone.test': no such domain (NXDOMAIN)") == 0;
		}
		assert_int_equal(mx + a + nx, 3);
	}
	/* freed or detached with a query pending: the query ends at once, with its
	 * callback, and nothing of it outlives the resolver (ASan runs this) */
	assert_int_equal(st_dns_addrs_async(quiet, "late.test", 25, seen_addrs, &s, &err), 0);
	st_dns_free(quiet);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.what[4], "a -3 0 the lookup of 'late.test' was cancelled");
	assert_int_equal(st_dns_mx_async(d, "example.test", seen_mx, &s, &err), 0);
	st_dns_detach(d);
	assert_int_equal(s.n, 6);
	assert_string_equal(s.what[5], "mx -3 0 the lookup of 'example.test' was cancelled");
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	st_dns_free(d); /* detached: freed at once */
	assert_int_equal(uv_loop_close(&loop), 0);
	peers_stop(&pe);
}

/* The addresses st_dns_addrs gives for host:port, joined by commas, or "rc: message". */
static const char *addrs_of(struct st_dns *d, const char *host, unsigned port)
{
	static char out[ST_DNS_ADDR_MAX * 64];
	char addrs[ST_DNS_ADDR_MAX][64];
	struct st_error err;
	size_t n, i, len = 0;
	int rc = st_dns_addrs(d, host, port, addrs, ST_DNS_ADDR_MAX, &n, &err);

	if (rc) {
		snprintf(out, sizeof(out), "%d: %s", rc, err.msg);
		return out;
	}
	out[0] = '\0';
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", i ? "," : "", addrs[i]);
	return out;
}

/* --resolve: HOST:PORT:ADDR[,ADDR...] answers address lookups of HOST for PORT, asks nobody */
static void test_resolve(void **state)
{
	struct peers pe;
	char server[64];
	struct st_mx mx[ST_DNS_MX_MAX];
	struct st_error err;
	struct st_dns *d, *quiet;
	size_t n;
	bool null_mx;

	(void)state;
	peers_start(&pe);
	snprintf(server, sizeof(server), "127.0.0.1@%u", pe.port);
	d = st_dns_new(server, &err);
	assert_non_null(d);
	st_dns_set_timeout(d, 10000);
	assert_int_equal(st_dns_add_resolve(d, "mail.test:25:127.0.0.9,[::1],2001:db8::2", &err), 0);
	/* in the order given, any case */
	assert_string_equal(addrs_of(d, "MAIL.test", 25), "127.0.0.9,::1,2001:db8::2");
	/* another port: DNS */
	assert_string_equal(addrs_of(d, "mail.test", 587), "192.0.2.7");
	/* a later entry for the same host and port replaces the earlier, as curl */
	assert_int_equal(st_dns_add_resolve(d, "mail.test:25:127.0.0.10", &err), 0);
	assert_string_equal(addrs_of(d, "mail.test", 25), "127.0.0.10");
	/* a name DNS does not know is answered too */
	assert_int_equal(st_dns_add_resolve(d, "gone.test:25:127.0.0.11", &err), 0);
	assert_string_equal(addrs_of(d, "gone.test", 25), "127.0.0.11");
	/* MX lookups are not changed */
	assert_int_equal(st_dns_mx(d, "mail.test", mx, ST_DNS_MX_MAX, &n, &null_mx, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(mx[0].host, "mail.test");
	st_dns_free(d);
	/* nobody is asked: a silent server costs nothing */
	snprintf(server, sizeof(server), "127.0.0.1@%u", pe.silent_port);
	quiet = st_dns_new(server, &err);
	assert_non_null(quiet);
	st_dns_set_timeout(quiet, 60000);
	assert_int_equal(st_dns_add_resolve(quiet, "mx.smtptls.test:2525:127.0.0.12", &err), 0);
	assert_string_equal(addrs_of(quiet, "mx.smtptls.test", 2525), "127.0.0.12");
	/* malformed entries are usage errors; NULL only checks */
	{
		static const char *const bad[][2] = {
		    {"mail.test:25", "--resolve: 'mail.test:25' is not HOST:PORT:ADDR[,ADDR...]"},
		    {":25:127.0.0.1", "--resolve: ':25:127.0.0.1' is not HOST:PORT:ADDR[,ADDR...]"},
		    {"mail.test:x:127.0.0.1", "--resolve: 'mail.test:x:127.0.0.1': 'x' is not a port"},
		    {"mail.test:0:127.0.0.1", "--resolve: 'mail.test:0:127.0.0.1': '0' is not a port"},
		    {"mail.test:25:not-an-address",
		     "--resolve: 'mail.test:25:not-an-address': 'not-an-address' is not an IP address"},
		    {"mail.test:25:127.0.0.1,", "--resolve: 'mail.test:25:127.0.0.1,': '' is not an IP address"},
		};
		size_t i;
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			assert_int_equal(st_dns_add_resolve(quiet, bad[i][0], &err), ST_E_PARSE);
			assert_int_equal(err.cls, ST_ERR_USAGE);
			assert_string_equal(err.msg, bad[i][1]);
			assert_int_equal(st_dns_add_resolve(NULL, bad[i][0], &err), ST_E_PARSE);
		}
		assert_int_equal(st_dns_add_resolve(NULL, "a.test:25:[::1]", &err), 0);
	}
	st_dns_free(quiet);
	peers_stop(&pe);
}

/* Host addresses as smtp_host_lookup says: dns, native, dns then native; MX from DNS */
static void test_host_lookup(void **state)
{
	struct peers pe;
	char server[64];
	struct st_mx mx[ST_DNS_MX_MAX];
	struct st_error err;
	struct st_dns *d, *quiet;
	size_t n;
	bool null_mx;

	(void)state;
	/* the setting, as postconf reads it */
	assert_int_equal(st_dns_host_lookup_parse("dns", &err), ST_HOST_LOOKUP_DNS);
	assert_int_equal(st_dns_host_lookup_parse("native", &err), ST_HOST_LOOKUP_NATIVE);
	assert_int_equal(st_dns_host_lookup_parse("dns, native", &err),
	                 ST_HOST_LOOKUP_DNS | ST_HOST_LOOKUP_NATIVE);
	assert_int_equal(st_dns_host_lookup_parse("native,dns", &err),
	                 ST_HOST_LOOKUP_DNS | ST_HOST_LOOKUP_NATIVE);
	assert_int_equal(st_dns_host_lookup_parse("dns nis", &err), -1);
	assert_int_equal(err.cls, ST_ERR_USAGE);
	assert_string_equal(err.msg, "'nis' is not a host lookup method (dns, native, or both)");
	assert_int_equal(st_dns_host_lookup_parse(" , ", &err), -1);
	assert_string_equal(st_dns_host_lookup_name(ST_HOST_LOOKUP_DNS | ST_HOST_LOOKUP_NATIVE),
	                    "dns, native");

	peers_start(&pe);
	snprintf(server, sizeof(server), "127.0.0.1@%u", pe.port);
	d = st_dns_new(server, &err);
	assert_non_null(d);
	st_dns_set_timeout(d, 10000);
	assert_int_equal(st_dns_host_lookup(d), ST_HOST_LOOKUP_DNS); /* Postfix's default */
	/* dns: a numeric name is a name DNS does not know */
	assert_string_equal(addrs_of(d, "127.0.0.4", 25), "-4: '127.0.0.4': no such domain (NXDOMAIN)");
	/* native: the system's resolver (a numeric name: no file is read) */
	st_dns_set_host_lookup(d, ST_HOST_LOOKUP_NATIVE);
	assert_string_equal(addrs_of(d, "127.0.0.4", 25), "127.0.0.4");
	assert_string_not_equal(addrs_of(d, "mail.test", 25), "192.0.2.7"); /* never from DNS */
	/* MX still from DNS */
	assert_int_equal(st_dns_mx(d, "example.test", mx, ST_DNS_MX_MAX, &n, &null_mx, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(mx[0].host, "example.test");
	/* dns, native: DNS first; the system's only for what DNS does not know */
	st_dns_set_host_lookup(d, ST_HOST_LOOKUP_DNS | ST_HOST_LOOKUP_NATIVE);
	assert_string_equal(addrs_of(d, "mail.test", 25), "192.0.2.7");
	assert_string_equal(addrs_of(d, "127.0.0.4", 25), "127.0.0.4");
	/* --resolve comes first, whatever the setting */
	assert_int_equal(st_dns_add_resolve(d, "127.0.0.4:25:127.0.0.5", &err), 0);
	assert_string_equal(addrs_of(d, "127.0.0.4", 25), "127.0.0.5");
	st_dns_free(d);
	/* a DNS failure (no answer) is no reason to ask the system's resolver */
	snprintf(server, sizeof(server), "127.0.0.1@%u", pe.silent_port);
	quiet = st_dns_new(server, &err);
	assert_non_null(quiet);
	st_dns_set_timeout(quiet, 300);
	st_dns_set_host_lookup(quiet, ST_HOST_LOOKUP_DNS | ST_HOST_LOOKUP_NATIVE);
	assert_string_equal(addrs_of(quiet, "127.0.0.6", 25),
	                    "-3: no DNS answer for '127.0.0.6' within 300 ms");
	st_dns_free(quiet);
	peers_stop(&pe);
}

/* A native lookup still at work when the resolver is detached: its callback at once, and
 * the lookup frees itself when the thread pool is done with it (ASan runs this) */
static void test_native_detached(void **state)
{
	struct st_error err;
	struct st_dns *d;
	struct seen s = {{{0}}, 0};
	uv_loop_t loop;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	d = st_dns_new("127.0.0.1@1", &err);
	assert_non_null(d);
	st_dns_set_host_lookup(d, ST_HOST_LOOKUP_NATIVE);
	assert_int_equal(st_dns_attach(d, &loop, &err), 0);
	assert_int_equal(st_dns_addrs_async(d, "127.0.0.7", 25, seen_addrs, &s, &err), 0);
	assert_int_equal(st_dns_add_resolve(d, "pinned.smtptls.test:25:127.0.0.8", &err), 0);
	assert_int_equal(st_dns_addrs_async(d, "pinned.smtptls.test", 25, seen_addrs, &s, &err), 0);
	assert_int_equal(s.n, 0); /* never from within the start */
	st_dns_detach(d);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.what[0], "a -3 0 the lookup of 'pinned.smtptls.test' was cancelled");
	assert_string_equal(s.what[1], "a -3 0 the lookup of '127.0.0.7' was cancelled");
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	st_dns_free(d);
	assert_int_equal(uv_loop_close(&loop), 0);
	/* not detached: both answered from the loop */
	assert_int_equal(uv_loop_init(&loop), 0);
	d = st_dns_new("127.0.0.1@1", &err);
	st_dns_set_host_lookup(d, ST_HOST_LOOKUP_NATIVE);
	assert_int_equal(st_dns_attach(d, &loop, &err), 0);
	assert_int_equal(st_dns_add_resolve(d, "pinned.smtptls.test:25:127.0.0.8", &err), 0);
	s.n = 0;
	assert_int_equal(st_dns_addrs_async(d, "127.0.0.7", 25, seen_addrs, &s, &err), 0);
	assert_int_equal(st_dns_addrs_async(d, "pinned.smtptls.test", 25, seen_addrs, &s, &err), 0);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(s.n, 2);
	assert_true(!strcmp(s.what[0], "a 0 1 127.0.0.8") || !strcmp(s.what[1], "a 0 1 127.0.0.8"));
	assert_true(!strcmp(s.what[0], "a 0 1 127.0.0.7") || !strcmp(s.what[1], "a 0 1 127.0.0.7"));
	st_dns_detach(d);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	st_dns_free(d);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_bad_server(void **state)
{
	struct st_error err;

	(void)state;
	assert_null(st_dns_new("bad@@x", &err));
	assert_int_equal(err.cls, ST_ERR_USAGE);
	assert_non_null(strstr(err.msg, "--dns-server: 'bad@@x' is not a DNS server address"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_answers),
	    cmocka_unit_test(test_silent_server),
	    cmocka_unit_test(test_on_a_loop),
	    cmocka_unit_test(test_resolve),
	    cmocka_unit_test(test_host_lookup),
	    cmocka_unit_test(test_native_detached),
	    cmocka_unit_test(test_bad_server),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
