#!/bin/bash
# t0501: Postfix's side of each claim the policy lint (lib/policy_lint.c) makes: every kind of
# entry the lint calls an error, in a policy table of a private Postfix 3.7, and what its smtp
# client does with it (deferred with 4.7.5 "client TLS configuration problem" before any
# connection, or "Cannot start TLS: handshake failure"), the near misses it takes, postmap's
# duplicates and skipped lines, a stale or missing .db, table order, "*" and ".domain" keys
#
# The lookup of a recipient domain (".example.com" matches sub-domains only) needs names that
# resolve without DNS: the script runs again in a mount namespace of its own with a private
# /etc/hosts bound over the machine's, when it can (root and unshare -m); else those skip.
if [ -z "${T0501_NS-}" ] && [ "$(id -u)" = 0 ] && unshare -m --propagation private true 2>/dev/null; then
	T0501_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
need certtool openssl python3
pf_require postmap
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
chmod 755 "$T" "$P"
chmod 644 "$P"/*
cat "$P/server.pem" "$P/int.pem" >"$T/chain.pem"
chmod 644 "$T/chain.pem"
cd "$T" || exit 1
hosts=no
if [ "${T0501_NS-}" = 1 ]; then
	printf '127.0.0.1 localhost\n127.0.0.1 order.smtptls.test a.order.smtptls.test\n' >"$T/hosts"
	mount --bind "$T/hosts" /etc/hosts && hosts=yes
fi

# the lint code | a case name | the policy | what Postfix does | the warning it logs
#   invalid: deferred 4.7.5 client TLS configuration problem, no connection (nothing listens)
#   taken: Postfix takes the entry and connects (nothing listens: Connection refused)
#   handshake: a TLS server listens; deferred 4.7.5 Cannot start TLS: handshake failure
#   unverified: a TLS server listens; deferred 4.7.5 Server certificate not verified
md5=$(openssl x509 -in "$P/server.pem" -noout -fingerprint -md5 | cut -d= -f2)
cases=(
	"no-level|nolevel|,|invalid|invalid empty policy"
	"unknown-level|strict|strict|invalid|invalid security level \"strict\""
	"unknown-level|halfdane|halfdane|invalid|invalid security level \"halfdane\""
	"unknown-level|upper|SECURE|taken|"
	"malformed-attribute|comma|may protocols=!SSLv2,!SSLv3|invalid|malformed attribute/value pair \"!SSLv3\": missing '=' after attribute name"
	"malformed-attribute|noname|may =x|invalid|malformed attribute/value pair \"=x\": missing attribute name"
	"malformed-attribute|brace|encrypt {protocols = >=TLSv1.2}|invalid|malformed attribute/value pair \"{protocols\""
	"malformed-attribute|colon|may protocols=!SSLv2:!SSLv3|taken|"
	"unknown-attribute|colour|may colour=blue|invalid|invalid attribute name: \"colour\""
	"attribute-not-at-level|matchenc|encrypt match=hostname|invalid|attribute \"match\" invalid at security level \"encrypt\""
	"attribute-not-at-level|tafilemay|may tafile=/etc/hostname|invalid|attribute \"tafile\" invalid at security level \"may\""
	"empty-value|ciphers0|encrypt ciphers=|invalid|attribute \"ciphers\" has empty value"
	"empty-value|match0|verify match=|invalid|attribute \"match\" has empty value"
	"empty-value|protocols0|encrypt protocols= exclude=|taken|"
	"repeated-attribute|ciphers2|encrypt ciphers=high ciphers=medium|invalid|attribute \"ciphers\" is specified multiple times"
	"repeated-attribute|protocols2|encrypt protocols=TLSv1.2 protocols=TLSv1.3|invalid|attribute \"protocols\" is specified multiple times"
	"repeated-attribute|exclude2|encrypt exclude=RC4 exclude=MD5|invalid|attribute \"exclude\" is specified multiple times"
	"repeated-attribute|servername2|encrypt servername=a.example servername=b.example|invalid|attribute \"servername\" is specified multiple times"
	"repeated-attribute|match2|verify match=a.example match=b.example connection_reuse=yes connection_reuse=no|taken|"
	"invalid-value|reuse|encrypt connection_reuse=maybe|invalid|attribute \"connection_reuse\" has bad value: \"maybe\""
	"invalid-value|sni|encrypt servername=bad..name|invalid|\"servername=bad..name\" specifies an invalid hostname"
	"invalid-value|sni0|encrypt servername=|invalid|\"servername=\" specifies an invalid hostname"
	"too-new|rpk|encrypt enable_rpk=yes|invalid|invalid attribute name: \"enable_rpk\""
	"too-new|ptype|encrypt policy_type=sts|invalid|invalid attribute name: \"policy_type\""
	"tafile-unreadable|tafile|verify tafile=/nonexistent/ta.pem|invalid|"
	"fingerprint-no-match|fpnone|fingerprint|invalid|"
	"none-attributes|none|none protocols=TLSv1 colour|taken|ignoring attribute \"colour\" with TLS disabled"
	"invalid-protocols|tlsv9|encrypt protocols=TLSv9|handshake|Invalid TLS protocol list \"TLSv9\": aborting TLS session"
	"invalid-protocols|noproto|encrypt protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1:!TLSv1.2:!TLSv1.3|handshake|"
	"unknown-cipher-grade|grade|encrypt ciphers=super|handshake|invalid cipher grade: \"super\""
	"no-ca|noca|verify|unverified|untrusted issuer"
	"fingerprint-length|md5fp|fingerprint match=$md5|unverified|all fingerprints unusable"
)

D=$T/postfix
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
: >"$T/policy"
: >"$T/transport"
declare -A cport
for c in "${cases[@]}"; do
	IFS='|' read -r code name pol expect warn <<<"$c"
	port=$(pf_free_port)
	cport[$name]=$port
	case $expect in
	handshake | unverified)
		pf_smtpd_service "$D" "$port" -o smtpd_tls_security_level=may \
			-o "smtpd_tls_chain_files=$P/server.key,$T/chain.pem" -o content_filter=discard: ;;
	esac
	printf '[127.0.0.1]:%s %s\n' "$port" "$pol" >>"$T/policy"
	printf '%s.smtptls.test smtp:[127.0.0.1]:%s\n' "$name" "$port" >>"$T/transport"
done

# stale-db: the .db says may, the newer source says strict; missing-db: no .db at all, for a
# transport of its own (every lookup through it fails); duplicate-key: two values for one
# key; shadowed-key: a key in two tables; star-key: "*" next to a next hop without an entry
ps=$(pf_free_port)
printf '[127.0.0.1]:%s may\n' "$ps" >"$T/stale"
postmap "hash:$T/stale"
printf '[127.0.0.1]:%s strict\n' "$ps" >"$T/stale"
touch -d '-2 hours' "$T/stale.db" && touch -d '-1 hour' "$T/stale" # Postfix warns after 100 s
echo "stale.smtptls.test smtp:[127.0.0.1]:$ps" >>"$T/transport"
pm=$(pf_free_port)
printf '[127.0.0.1]:%s may\n' "$pm" >"$T/missing"
echo "missing.smtptls.test missing:[127.0.0.1]:$pm" >>"$T/transport"
printf 'missing unix - - n - - smtp\n  -o smtp_tls_policy_maps=hash:%s/missing\n' "$T" >>"$D/etc/master.cf"
pd=$(pf_free_port)
printf '[127.0.0.1]:%s strict\n[127.0.0.1]:%s may\n' "$pd" "$pd" >"$T/dup"
run postmap "hash:$T/dup"
like "$err" "warning: $T/dup.db: duplicate entry: \"\\[127.0.0.1\\]:$pd\"" \
	"duplicate-key: postmap warns 'duplicate entry'"
run postmap -q "[127.0.0.1]:$pd" "hash:$T/dup"
is "$out" strict "duplicate-key: and the compiled table keeps the first value"
echo "dup.smtptls.test smtp:[127.0.0.1]:$pd" >>"$T/transport"
psh=$(pf_free_port)
printf '[127.0.0.1]:%s strict\n' "$psh" >>"$T/policy"
printf '[127.0.0.1]:%s may\n* strict\n' "$psh" >"$T/first"
echo "shadow.smtptls.test smtp:[127.0.0.1]:$psh" >>"$T/transport"
pst=$(pf_free_port)
echo "star.smtptls.test smtp:[127.0.0.1]:$pst" >>"$T/transport"
# lines postmap skips
printf '  orphan may\nnovalue\n[127.0.0.1]:1 may\n' >"$T/skips"
run postmap -q "[127.0.0.1]:1" "texthash:$T/skips"
like "$err" "logical line must not start with whitespace: \"  orphan may\"" \
	"continuation-first: postmap skips a continuation before any entry"
like "$err" "line 2: expected format: key whitespace value" "line-without-value: and a key alone"
run postmap -q orphan "texthash:$T/skips"
is "$rc" 1 "neither is a key"
# ".order.smtptls.test" matches a.order.smtptls.test only; the recipient domain is the next hop on smtp_tcp_port
porder=$(pf_free_port)
printf '.order.smtptls.test strict\n' >>"$T/policy"

pf_conf "$D" "default_transport=smtp" "transport_maps=texthash:$T/transport" \
	"smtp_tls_policy_maps=hash:$T/stale hash:$T/dup texthash:$T/first texthash:$T/policy" \
	"smtp_tls_security_level=may" "smtp_tcp_port=$porder" || { diag "pf_conf failed"; exit 1; }
pf_start "$D" || { diag "Postfix did not start"; exit 1; }

send() { printf 'Subject: %s\n\nbody\n' "$1" | sendmail -C "$D/etc" -f a@smtptls-test.example "x@$1"; }
for c in "${cases[@]}"; do
	IFS='|' read -r code name pol expect warn <<<"$c"
	send "$name.smtptls.test"
done
for d in stale missing dup shadow star; do send "$d.smtptls.test"; done
[ $hosts = yes ] && send order.smtptls.test && send a.order.smtptls.test

verdict() { # DOMAIN: its status=... (reason) from the maillog
	pf_wait_log "$D" "to=<x@${1//./\\.}>.*status=" 30 | sed -E 's/.*(dsn=.*)/\1/'
}
refused() { # PORT [HOST]
	printf 'dsn=4.4.1, status=deferred (connect to %s[127.0.0.1]:%s: Connection refused)' "${2:-127.0.0.1}" "$1"
}
invalid='dsn=4.7.5, status=deferred (client TLS configuration problem)'
for c in "${cases[@]}"; do
	IFS='|' read -r code name pol expect warn <<<"$c"
	v=$(verdict "$name.smtptls.test")
	case $expect in
	invalid)
		is "$v" "$invalid" "$code: '$pol': deferred, 4.7.5"
		! grep -q "connect to 127.0.0.1\[127.0.0.1\]:${cport[$name]}" "$D/maillog"
		ok $? "$code: before any connection" ;;
	taken) is "$v" "$(refused "${cport[$name]}")" "$code (near miss): '$pol' is taken: Postfix connects" ;;
	handshake)
		like "$v" '^dsn=4\.7\.5, status=deferred \(Cannot start TLS: handshake failure\)$' \
			"$code: '$pol': taken, then each handshake fails, 4.7.5" ;;
	unverified)
		like "$v" '^dsn=4\.7\.5, status=deferred \(Server certificate not verified\)$' \
			"$code: '$pol': deferred, Server certificate not verified" ;;
	esac
	if [ -n "$warn" ]; then
		grep -F -- ":${cport[$name]}" "$D/maillog" | grep -qF -- "$warn"
		ok $? "$code: Postfix logs: $warn"
	fi
done
grep -q "error opening trust anchor file: /nonexistent/ta.pem" "$D/maillog"
ok $? "tafile-unreadable: Postfix logs 'error opening trust anchor file'"
grep -q "nexthop domain \[127.0.0.1\]:${cport[fpnone]}: configured at fingerprint security level, but with no fingerprints to match" "$D/maillog"
ok $? "fingerprint-no-match: Postfix logs 'no fingerprints to match'"

is "$(verdict stale.smtptls.test)" "$(refused "$ps")" "stale-db: Postfix reads the old .db (may), not the source (strict)"
grep -q "warning: database $T/stale.db is older than source file $T/stale" "$D/maillog"
ok $? "stale-db: and logs 'database is older than source file'"
is "$(verdict missing.smtptls.test)" "$invalid" "missing-db: every lookup fails: deferred, 4.7.5"
grep -q "open database $T/missing.db: No such file or directory" "$D/maillog"
ok $? "missing-db: Postfix logs 'open database ... No such file or directory'"
is "$(verdict dup.smtptls.test)" "$invalid" "duplicate-key: smtp reads the first value (strict, invalid)"
is "$(verdict shadow.smtptls.test)" "$(refused "$psh")" "shadowed-key: the first table's entry (may) wins over the later one (strict)"
is "$(verdict star.smtptls.test)" "$(refused "$pst")" "star-key: '*' (strict) is no wildcard: a next hop without an entry gets the default"
if [ $hosts = yes ]; then
	is "$(verdict order.smtptls.test)" "$(refused "$porder" order.smtptls.test)" \
		"subdomains-only: '.order.smtptls.test' (strict) does not match order.smtptls.test itself"
	is "$(verdict a.order.smtptls.test)" "$invalid" "subdomains-only: it matches a.order.smtptls.test"
else
	skip 2 "a private /etc/hosts needs root and unshare -m"
fi

done_testing
