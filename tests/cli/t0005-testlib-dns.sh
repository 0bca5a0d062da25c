#!/bin/bash
# t0005: the loopback DNS server the probe and policy tests use answers MX, A, AAAA, TXT and TLSA
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/dns.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
need dnsmasq dig
port=$(pf_free_port)
dns_init "$T/dns"
dns_mx example.smtptls.test 10 mx1.example.smtptls.test
dns_mx example.smtptls.test 20 mx2.example.smtptls.test
dns_a mx1.example.smtptls.test 127.0.0.1
dns_a mx2.example.smtptls.test ::1
dns_txt _mta-sts.example.smtptls.test "v=STSv1; id=20261128"
dns_rr _25._tcp.mx1.example.smtptls.test 52 030101aabbccdd
dns_start "$port" || { diag "dnsmasq did not start"; exit 1; }
q() { dig +short +time=2 +tries=1 @127.0.0.1 -p "$port" "$@"; }
is "$(q MX example.smtptls.test | sort)" "10 mx1.example.smtptls.test.
20 mx2.example.smtptls.test." "MX records by preference"
is "$(q A mx1.example.smtptls.test)" "127.0.0.1" "an A record"
is "$(q AAAA mx2.example.smtptls.test)" "::1" "an AAAA record"
is "$(q TXT _mta-sts.example.smtptls.test)" '"v=STSv1; id=20261128"' "a TXT record"
like "$(q TYPE52 _25._tcp.mx1.example.smtptls.test)" "030101AABBCCDD|3 1 1 AABBCCDD" "a TLSA record"
is "$(dig +time=2 +tries=1 @127.0.0.1 -p "$port" A www.example.com | grep -c 'ANSWER SECTION')" 0 "no answer outside the zone: nothing is forwarded"
done_testing
