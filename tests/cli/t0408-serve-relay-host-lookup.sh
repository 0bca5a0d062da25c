#!/bin/bash
# t0408: MX records come from DNS, never from /etc/hosts, and host addresses from where
# smtp_host_lookup (--host-lookup) says, for probe, policy test and serve's relay as for a
# real Postfix; --resolve applies to every host a run connects to, MX hosts included.
# Runs in a network and mount namespace of its own: port 25 and 53 on loopback are the
# test's, and /etc/hosts and /etc/resolv.conf are bind-mounted (nothing else sees them).
# /etc/hosts names the mail domains and the MX host with wrong addresses, as a mail admin's
# test machine might.
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/dns.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need jq dnsmasq dig swaks unshare mount ip
[ "$(id -u)" = 0 ] || plan_skip_all "needs root (network and mount namespaces)"
if [ -z "${T0408_NS:-}" ]; then
	exec unshare -m -n --propagation private env T0408_NS=1 bash "$0" "$@"
fi
pf_require sendmail
ip link set lo up || { diag "no loopback in the network namespace"; exit 1; }
chmod 755 "$T"
cd "$T" || exit 1

# DNS: mail.smtptls.test has MX mx.smtptls.test, whose address is 127.0.0.3
dns_init "$T/dns"
dns_mx mail.smtptls.test 10 mx.smtptls.test
dns_mx native.smtptls.test 10 mx.smtptls.test
dns_mx pin.smtptls.test 10 mx.smtptls.test
dns_a mx.smtptls.test 127.0.0.3
dns_start 53 || { diag "dnsmasq did not start on port 53"; exit 1; }
# /etc/hosts: the mail domains at 127.0.0.66, the MX host at 127.0.0.4 (only native lookups
# may see that); resolv.conf: the test's DNS server
{
	echo "127.0.0.1 localhost"
	echo "127.0.0.66 mail.smtptls.test native.smtptls.test"
	echo "127.0.0.4 mx.smtptls.test"
} >"$T/hosts"
echo "nameserver 127.0.0.1" >"$T/resolv.conf"
mount --bind "$T/hosts" /etc/hosts || { diag "cannot bind-mount /etc/hosts"; exit 1; }
mount --bind "$T/resolv.conf" /etc/resolv.conf || { diag "cannot bind-mount resolv.conf"; exit 1; }
is "$(getent hosts mail.smtptls.test | awk '{print $1}')" 127.0.0.66 \
	"the namespace's /etc/hosts names the mail domain"

# a server at each address, each with its own Maildir: where mail lands says who was used
for a in 3 4 5 66; do
	serve --listen "127.0.0.$a:25" --self-signed=mx.smtptls.test --maildir "$T/md$a" \
		--log "$T/s$a.json" --domains mail.smtptls.test,native.smtptls.test,pin.smtptls.test ||
		{ diag "serve on 127.0.0.$a did not start: $(cat "$T/serve.err")"; exit 1; }
done

pr() { run "$SMTPTLS" --json probe --timeout 10 --level may --dns-server 127.0.0.1:53 "$@"; }
where() { jq -r '[.host, .address] | join(" ")' <<<"$out" | tr '\n' ' ' | sed 's/ $//'; }

# 1. probe DOMAIN: the MX from DNS (before: /etc/hosts made it NODATA, the domain's own
# /etc/hosts address was probed)
pr mail.smtptls.test
is "$rc/$(where)" "0/mx.smtptls.test 127.0.0.3" "probe DOMAIN: the MX host from DNS, its DNS address"
pr --host-lookup native mail.smtptls.test
is "$rc/$(where)" "0/mx.smtptls.test 127.0.0.4" \
	"--host-lookup native: the MX host still from DNS, its address from /etc/hosts"
pr --host-lookup dns,native mail.smtptls.test
is "$(where)" "mx.smtptls.test 127.0.0.3" "--host-lookup dns,native: DNS first"
pr --host-lookup dns,native nohost.smtptls.test:25
is "$rc/$(jq -r .error <<<"$out")" "4/cannot look up 'nohost.smtptls.test' with the system's resolver: Name or service not known" \
	"dns,native: a host DNS does not know goes to the system's resolver"
run "$SMTPTLS" --json probe --timeout 10 --level may mail.smtptls.test
is "$rc/$(where)" "0/mx.smtptls.test 127.0.0.3" \
	"probe DOMAIN through resolv.conf's server: names under .test are asked for, as Postfix does"
pr "[mx.smtptls.test]:25"
is "$(where)" "mx.smtptls.test 127.0.0.3" "probe [HOST]:25 (default dns): the DNS address, not /etc/hosts"
# 2. --resolve applies to MX hosts too (as curl's, to every host connected to); the domain
# pin.smtptls.test is not in /etc/hosts
pr --resolve mx.smtptls.test:25:127.0.0.5 pin.smtptls.test
is "$(where)" "mx.smtptls.test 127.0.0.5" "probe --resolve: the MX host's address"
pr --resolve mx.smtptls.test:587:127.0.0.5 pin.smtptls.test
is "$(where)" "mx.smtptls.test 127.0.0.3" "probe --resolve for another port: not used"
run "$SMTPTLS" probe --host-lookup nis mail.smtptls.test
is "$rc" 2 "--host-lookup nis: usage error"
like "$err" "'nis' is not a host lookup method" "saying why"

# 3. policy test: the same, and smtp_host_lookup from main.cf
pt() { run "$SMTPTLS" --json policy test --dns-server 127.0.0.1:53 --timeout 10 "$@"; }
pt --no-postfix-config -o smtp_tls_security_level=may mail.smtptls.test
is "$rc/$(jq -r '.verdict + " " + .relay' <<<"$out")" "0/delivered mx.smtptls.test[127.0.0.3]:25" \
	"policy test DOMAIN: the MX host from DNS"
mkdir -p "$T/pfconf"
printf '%s\n' "smtp_tls_security_level = may" "smtp_host_lookup = native" >"$T/pfconf/main.cf"
pt --postfix-config "$T/pfconf" mail.smtptls.test
is "$(jq -r .relay <<<"$out")" "mx.smtptls.test[127.0.0.4]:25" \
	"policy test: smtp_host_lookup = native in main.cf: the MX host's /etc/hosts address"
pt --postfix-config "$T/pfconf" --host-lookup dns mail.smtptls.test
is "$(jq -r .relay <<<"$out")" "mx.smtptls.test[127.0.0.3]:25" "--host-lookup overrides main.cf"
pt --no-postfix-config -o smtp_tls_security_level=may --resolve mx.smtptls.test:25:127.0.0.5 \
	pin.smtptls.test
is "$(jq -r .relay <<<"$out")" "mx.smtptls.test[127.0.0.5]:25" "policy test --resolve: the MX host's address"

# 4. serve's relay: MX from DNS, addresses per --host-lookup, --resolve
relay() { # NAME DOMAIN OPTS...: a relay to the MX hosts; a message to x@DOMAIN through it
	local n=$1 dom=$2
	shift 2
	serve --listen 127.0.0.1:0 --maildir "$T/r$n" --queue-dir "$T/q$n" --log "$T/r$n.json" \
		--mynetworks 127.0.0.0/8 --relay-mx --dns-server 127.0.0.1:53 --tls-level may "$@" ||
		{ diag "relay $n did not start: $(cat "$T/serve.err")"; return 1; }
	timeout 60 swaks --server 127.0.0.1 --port "$(port smtp)" --from a@client.smtptls.test \
		--to "x@$dom" --header "Subject: $n" >"$T/swaks-$n" 2>&1
	wait_log "$T/r$n.json" '"event":"relay"' 60 | jq -r '.status + " " + .relay'
	kill "$pid"
}
is "$(relay dns mail.smtptls.test)" "sent mx.smtptls.test[127.0.0.3]:25" "serve --relay-mx: the MX host from DNS"
grep -qs "Subject: dns" "$T"/md3/new/*
ok $? "and the MX host's DNS address stored it"
is "$(relay native mail.smtptls.test --host-lookup native)" "sent mx.smtptls.test[127.0.0.4]:25" \
	"serve --host-lookup native: the MX host from DNS, its address from /etc/hosts"
is "$(relay pinned pin.smtptls.test --resolve mx.smtptls.test:25:127.0.0.5)" "sent mx.smtptls.test[127.0.0.5]:25" \
	"serve --resolve: the MX host's address"
is "$(find "$T/md66" -type f -path '*/new/*' 2>/dev/null | wc -l)" 0 \
	"nothing ever went to the /etc/hosts address of the mail domain"

# 5. Postfix, from the same DNS and /etc/hosts: smtp_host_lookup = dns (its default) delivers
# to the MX host's DNS address, native to its /etc/hosts address; never to the domain's
D=$T/postfix
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
pf_conf "$D" "default_transport=smtp" "relay_domains=" "smtp_dns_support_level=enabled" \
	"smtp_host_lookup=dns" "smtp_tls_security_level=may" \
	"transport_maps=inline:{ native.smtptls.test=nsmtp: }" || { diag "pf_conf failed"; exit 1; }
postconf -c "$D/etc" -Me "nsmtp/unix=nsmtp unix - - n - - smtp -o smtp_host_lookup=native" ||
	{ diag "no nsmtp transport"; exit 1; }
pf_start "$D" || { diag "Postfix did not start"; exit 1; }
for d in mail native; do
	sendmail -C "$D/etc" -f a@client.smtptls.test "x@$d.smtptls.test" <<<"Subject: pf-$d"
done
l=$(pf_wait_log "$D" "to=<x@mail\\.smtptls\\.test>.*status=" 60)
like "$l" "relay=mx\\.smtptls\\.test\\[127\\.0\\.0\\.3\\]:25.*status=sent" \
	"Postfix, smtp_host_lookup = dns: the MX host from DNS, its DNS address (as smtptls)"
l=$(pf_wait_log "$D" "to=<x@native\\.smtptls\\.test>.*status=" 60)
like "$l" "relay=mx\\.smtptls\\.test\\[127\\.0\\.0\\.4\\]:25.*status=sent" \
	"Postfix, smtp_host_lookup = native: the MX host from DNS, its /etc/hosts address (as smtptls)"
is "$(find "$T/md66" -type f -path '*/new/*' 2>/dev/null | wc -l)" 0 \
	"nor from Postfix"
done_testing
