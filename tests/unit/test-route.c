/* test-route.c: recipients routed as Postfix's trivial-rewrite does: classes, transport_maps order, relayhost */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "route.h"

static struct st_policy_tables tm;

static void conf(struct st_route_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->mydestination = "me.smtptls.test, localhost";
	c->local_transport = "local:me.smtptls.test";
	c->virtual_transport = "virtual";
	c->relay_transport = "relay";
	c->default_transport = "smtp";
	c->transport_maps = &tm;
}

static void route(const struct st_route_conf *c, const char *rcpt, const char *cls,
                  const char *transport, const char *nexthop)
{
	struct st_route r;
	struct st_error err;

	assert_int_equal(st_route_resolve(c, rcpt, &r, &err), 0);
	assert_string_equal(st_route_class_name(r.cls), cls);
	assert_string_equal(r.transport, transport);
	assert_string_equal(r.nexthop, nexthop);
}

static void test_classes(void **state)
{
	struct st_route_conf c;
	struct st_error err;
	struct st_route r;

	(void)state;
	st_policy_tables_init(&tm);
	conf(&c);
	route(&c, "u@ME.smtptls.test", "local", "local", "me.smtptls.test");
	route(&c, "u@other.smtptls.test", "default", "smtp", "other.smtptls.test");
	c.relayhost = "[relay.smtptls.test]:587";
	route(&c, "u@other.smtptls.test", "default", "smtp", "[relay.smtptls.test]:587");
	/* relay_domains: relay_transport; its own next hop wins over relayhost */
	c.relay_domains = "r.smtptls.test, .below.smtptls.test";
	route(&c, "u@r.smtptls.test", "relay", "relay", "[relay.smtptls.test]:587");
	route(&c, "u@x.below.smtptls.test", "relay", "relay", "[relay.smtptls.test]:587");
	route(&c, "u@sub.r.smtptls.test", "default", "smtp", "[relay.smtptls.test]:587");
	c.parent_domain_matches_subdomains = "relay_domains";
	route(&c, "u@sub.r.smtptls.test", "relay", "relay", "[relay.smtptls.test]:587");
	c.relay_transport = "relay:[in.smtptls.test]";
	route(&c, "u@r.smtptls.test", "relay", "relay", "[in.smtptls.test]");
	/* a negation, first match decides */
	c.relay_domains = "!no.r.smtptls.test, r.smtptls.test";
	route(&c, "u@no.r.smtptls.test", "default", "smtp", "[relay.smtptls.test]:587");
	c.virtual_mailbox_domains = "vm.smtptls.test";
	route(&c, "u@vm.smtptls.test", "virtual mailbox", "virtual", "vm.smtptls.test");
	c.virtual_alias_domains = "va.smtptls.test";
	assert_int_equal(st_route_resolve(&c, "u@va.smtptls.test", &r, &err), 0);
	assert_int_equal(r.cls, ST_ROUTE_VIRTUAL_ALIAS);
	assert_int_equal(st_route_resolve(&c, "no-domain", &r, &err), -1);
	assert_int_equal(err.cls, ST_ERR_INPUT);
	c.mydestination = "texthash:/nonexistent/x";
	assert_int_equal(st_route_resolve(&c, "u@a.smtptls.test", &r, &err), -1);
	assert_non_null(strstr(err.msg, "mydestination"));
}

/* The address is resolved first: percent hack, bang path, source route, '@' in a local part */
static void test_rewrite(void **state)
{
	struct st_route_conf c;
	struct st_error err;
	struct st_route r;

	(void)state;
	st_policy_tables_init(&tm);
	conf(&c);
	route(&c, "e%other.smtptls.test@me.smtptls.test", "default", "smtp", "other.smtptls.test");
	assert_int_equal(st_route_resolve(&c, "e%other.smtptls.test@me.smtptls.test", &r, &err), 0);
	assert_string_equal(r.address, "e@other.smtptls.test");
	assert_non_null(strstr(r.why, "resolved to 'e@other.smtptls.test'"));
	route(&c, "e%f%other.smtptls.test@me.smtptls.test", "default", "smtp",
	      "other.smtptls.test");
	route(&c, "e%localhost@me.smtptls.test", "local", "local", "me.smtptls.test");
	route(&c, "other.smtptls.test!e@me.smtptls.test", "default", "smtp", "other.smtptls.test");
	route(&c, "@x.smtptls.test:e@other.smtptls.test", "default", "smtp", "other.smtptls.test");
	route(&c, "\"e@other.smtptls.test\"@localhost", "default", "smtp", "other.smtptls.test");
	/* only a local domain's local part is read again */
	route(&c, "e%me.smtptls.test@other.smtptls.test", "default", "smtp", "other.smtptls.test");
	assert_int_equal(st_route_resolve(&c, "e%other.smtptls.test@other.smtptls.test", &r, &err),
	                 0);
	assert_string_equal(r.address, "");
	/* what Postfix calls bad syntax */
	assert_int_equal(st_route_resolve(&c, "e%@me.smtptls.test", &r, &err), -1);
	assert_int_equal(err.cls, ST_ERR_INPUT);
	assert_int_equal(st_route_resolve(&c, "e@bad..smtptls.test", &r, &err), -1);
	st_policy_tables_release(&tm);
}

static void test_transport_maps(void **state)
{
	struct st_route_conf c;
	struct st_error err;
	struct st_route r;

	(void)state;
	st_policy_tables_init(&tm);
	assert_int_equal(st_policy_tables_add(&tm,
	                                      "inline:{ u+x@a.smtptls.test=ext:, "
	                                      "u@a.smtptls.test=user:[u.smtptls.test], "
	                                      "a.smtptls.test=dom:[d.smtptls.test]:25, "
	                                      ".b.smtptls.test=:[p.smtptls.test], "
	                                      "keep.smtptls.test=:, "
	                                      "{ * = star: } }",
	                                      &err),
	                 0);
	conf(&c);
	c.relayhost = "[relay.smtptls.test]";
	c.recipient_delimiter = "+";
	/* the address with its extension, without it, the domain */
	route(&c, "u+x@a.smtptls.test", "default", "ext", "a.smtptls.test");
	route(&c, "u+y@a.smtptls.test", "default", "user", "[u.smtptls.test]");
	route(&c, "v@a.smtptls.test", "default", "dom", "[d.smtptls.test]:25");
	route(&c, "@a.smtptls.test", "default", "dom", "[d.smtptls.test]:25");
	/* .parent: a null transport keeps the class's */
	route(&c, "v@x.y.b.smtptls.test", "default", "smtp", "[p.smtptls.test]");
	/* "b.smtptls.test" itself is not below .b.smtptls.test: "*", whose null next hop is
	 * the recipient domain (not relayhost) */
	route(&c, "v@b.smtptls.test", "default", "star", "b.smtptls.test");
	/* null transport and next hop: nothing changes (relayhost stays) */
	assert_int_equal(st_route_resolve(&c, "v@keep.smtptls.test", &r, &err), 0);
	assert_string_equal(r.nexthop, "[relay.smtptls.test]");
	assert_string_equal(r.key, "keep.smtptls.test");
	assert_non_null(strstr(r.why, "transport_maps inline:"));
	/* parent_domain_matches_subdomains with transport_maps: bare parents */
	st_policy_tables_release(&tm);
	assert_int_equal(
	    st_policy_tables_add(&tm, "inline:{ c.smtptls.test=par:[c.smtptls.test] }", &err), 0);
	route(&c, "v@x.c.smtptls.test", "default", "smtp", "[relay.smtptls.test]");
	c.parent_domain_matches_subdomains = "relay_domains, transport_maps";
	route(&c, "v@x.c.smtptls.test", "default", "par", "[c.smtptls.test]");
	st_policy_tables_release(&tm);
}

/* tables in a domain list: an inline table with commas inside its braces is one entry, a
 * compiled table Postfix cannot open fails the route with the parameter named */
static void test_list_tables(void **state)
{
	struct st_route_conf c;
	struct st_error err;
	struct st_route r;
	char dir[] = "/tmp/test-route.XXXXXX", path[256], spec[300];
	FILE *f;

	(void)state;
	st_policy_tables_init(&tm);
	conf(&c);
	c.relay_domains = "inline:{r1.smtptls.test=OK, r2.smtptls.test=OK}, r3.smtptls.test";
	route(&c, "u@r1.smtptls.test", "relay", "relay", "r1.smtptls.test");
	route(&c, "u@r2.smtptls.test", "relay", "relay", "r2.smtptls.test");
	route(&c, "u@r3.smtptls.test", "relay", "relay", "r3.smtptls.test");
	route(&c, "u@r4.smtptls.test", "default", "smtp", "r4.smtptls.test");

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/relay", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("r5.smtptls.test OK\n", f);
	fclose(f);
	snprintf(spec, sizeof(spec), "hash:%s", path);
	c.relay_domains = spec;
	assert_int_equal(st_route_resolve(&c, "u@r5.smtptls.test", &r, &err), -1);
	assert_non_null(strstr(err.msg, "relay_domains: '"));
	assert_non_null(strstr(err.msg, "relay.db' does not exist (postmap not run)"));
	snprintf(spec, sizeof(spec), "texthash:%s", path);
	route(&c, "u@r5.smtptls.test", "relay", "relay", "r5.smtptls.test");
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_classes),
	    cmocka_unit_test(test_list_tables),
	    cmocka_unit_test(test_transport_maps),
	    cmocka_unit_test(test_rewrite),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
