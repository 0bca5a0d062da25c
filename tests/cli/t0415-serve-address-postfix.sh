#!/bin/bash
# t0415: smtptls serve reads envelope addresses from the raw bytes as Postfix's smtpd does
# (control characters, invalid UTF-8, UTF-8 with and without SMTPUTF8, NUL bytes), and
# resolves them as trivial-rewrite does (percent hack, source routes, bang paths, quoted
# local parts): the same commands to a real Postfix smtpd and to serve get the same
# replies, and what both relay reaches the next hop as the same recipients
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need jq python3
pf_require
chmod 755 "$T"
cd "$T" || exit 1

# the next hops: one for Postfix's relayed mail, one for serve's; they take anything
serve_as b1 --listen 127.0.0.1:0 --maildir "$T/b1" --mynetworks 127.0.0.0/8 || exit 1
b1=$port
serve_as b2 --listen 127.0.0.1:0 --maildir "$T/b2" --mynetworks 127.0.0.0/8 || exit 1
b2=$port

# Postfix: mx.smtptls.test is local (mydestination, any user); one smtpd for a client not
# allowed to relay, one that relays for 127.0.0.0/8 to b1
pf=$T/pf
at_exit "pf_stop $pf"
pf_init "$pf" || exit 1
pf_conf "$pf" mydestination=mx.smtptls.test myorigin=mx.smtptls.test local_recipient_maps= \
	local_transport=discard: relay_domains= transport_maps= default_transport=smtp \
	"relayhost=[127.0.0.1]:$b1" || exit 1
pf_deny=$(pf_free_port)
pf_relay=$(pf_free_port)
pf_smtpd_service "$pf" "$pf_deny" -o smtpd_relay_restrictions=reject_unauth_destination
pf_smtpd_service "$pf" "$pf_relay" -o smtpd_relay_restrictions=permit_mynetworks,reject_unauth_destination
pf_start "$pf" || exit 1

# serve: the same local domain; one for a client not allowed to relay (no --mynetworks),
# one that relays for 127.0.0.0/8 to b2
serve_as deny --listen 127.0.0.1:0 --maildir "$T/md-deny" --domains mx.smtptls.test || exit 1
sv_deny=$port
serve_as relay --listen 127.0.0.1:0 --maildir "$T/md-relay" --domains mx.smtptls.test \
	--mynetworks 127.0.0.0/8 --relayhost "[127.0.0.1]:$b2" --queue-dir "$T/q" \
	--backoff 1:1 --relay-timeout 10 || exit 1
sv_relay=$port

# chat PORT ROWS: each row (with \xNN escapes) in a session of its own after EHLO; a row
# "MAIL ..." alone, or "RCPT ..." after MAIL FROM:<s@mx.smtptls.test> (with SMTPUTF8 when
# the row has it); prints the last reply line to the row's command, one line a row
dialog() { python3 "$TOP_SRCDIR/tests/lib/smtp-dialog.py" "$@"; }
chat() {
	local row mail
	while IFS= read -r row; do
		mail=()
		if [[ $row == RCPT*" SMTPUTF8" ]]; then
			mail=("MAIL FROM:<s@mx.smtptls.test> SMTPUTF8")
			row=${row% SMTPUTF8}
		elif [[ $row == RCPT* ]]; then
			mail=("MAIL FROM:<s@mx.smtptls.test>")
		fi
		dialog "$1" "EHLO client.smtptls.test" "${mail[@]}" "$row" | tail -n 1 | sed 's/^.* -> //'
	done <"$2"
}

# compare TITLE PORT_POSTFIX PORT_SERVE: every row's reply from both, row by row
compare() {
	local title=$1 i
	chat "$2" "$T/rows" >"$T/pf.out"
	chat "$3" "$T/rows" >"$T/sv.out"
	mapfile -t rows <"$T/rows"
	mapfile -t pfr <"$T/pf.out"
	mapfile -t svr <"$T/sv.out"
	is "${#pfr[@]}/${#svr[@]}" "${#rows[@]}/${#rows[@]}" "$title: a reply to each row from both"
	for i in "${!rows[@]}"; do
		is "${svr[$i]}" "${pfr[$i]}" "$title: ${rows[$i]}"
	done
}

# 8. the address syntax, from the raw bytes
cat >"$T/rows" <<'EOF'
MAIL FROM:<a\x1b[31m@mx.smtptls.test>
MAIL FROM:<a\x1bb@mx.smtptls.test>
MAIL FROM:<a\x01b@mx.smtptls.test>
MAIL FROM:<a\x7f@mx.smtptls.test>
MAIL FROM:<\xff\xfe@mx.smtptls.test>
MAIL FROM:<a\xc0\x80b@mx.smtptls.test>
MAIL FROM:<a\xed\xa0\x80b@mx.smtptls.test>
MAIL FROM:<\xc3\xa9@mx.smtptls.test>
MAIL FROM:<\xc3\xa9@mx.smtptls.test> SMTPUTF8
MAIL FROM:<a@\xc3\xa9.smtptls.test>
MAIL FROM:<a@\xc3\xa9.smtptls.test> SMTPUTF8
MAIL FROM:<a\x00b@mx.smtptls.test>
MAIL FROM:<a@mx.smtptls.test>\x00 SIZE=x
MAIL FROM:<a@mx.smtptls.test> X=\xff
MAIL FROM:<a@mx\x01.smtptls.test>
MAIL FROM:<a\tb@mx.smtptls.test>
MAIL FROM:<a\rb@mx.smtptls.test>
MAIL FROM:a\x1bb@mx.smtptls.test
RCPT TO:<a\x1b[31m@mx.smtptls.test>
RCPT TO:<a\x1bb@mx.smtptls.test>
RCPT TO:<\xff\xfe@mx.smtptls.test>
RCPT TO:<\xc3\xa9@mx.smtptls.test>
RCPT TO:<a@\xc3\xa9.smtptls.test>
RCPT TO:<a@\xc3\xa9.smtptls.test> SMTPUTF8
RCPT TO:<a\x00@mx.smtptls.test>
RCPT TO:<a\tb@mx.smtptls.test>
RCPT TO:<a b@mx.smtptls.test>
RCPT TO:<a(c)b@mx.smtptls.test>
RCPT TO:<a,b@mx.smtptls.test>
RCPT TO:<a;b@mx.smtptls.test>
RCPT TO:<a"b@mx.smtptls.test>
RCPT TO:<a]b@mx.smtptls.test>
RCPT TO:<a:b@mx.smtptls.test>
RCPT TO:<.a..b.@mx.smtptls.test>
RCPT TO:<a@mx\x7f.smtptls.test>
RCPT TO:<a@m..x.smtptls.test>
RCPT TO:<a@-mx.smtptls.test>
RCPT TO:<a@mx-.smtptls.test>
RCPT TO:<a@mx_x.smtptls.test>
RCPT TO:<a@1.2.3.4>
RCPT TO:<a@123>
RCPT TO:<a@>
RCPT TO:<a@[192.0.2.1]>
RCPT TO:<a@[1.2.3]>
RCPT TO:<a@[IPv6:2001:db8::1]>
RCPT TO:<a@mx.smtptls.test.>
RCPT TO:<a@remote.smtptls.test> NOTIFY=\xff
NOOP \xff
NOOP\x00 what follows a NUL is not read
EHLO \xc3\x28
EOF
compare "syntax" "$pf_deny" "$sv_deny"
is "${svr[0]}|${svr[1]}|${svr[4]}" \
	"501 5.1.7 Bad sender address syntax|250 2.1.0 Ok|500 5.5.2 Error: bad UTF-8 syntax" \
	"which are: '[' in a local part is bad syntax, a control character is not, bad UTF-8 is"

# 9. the percent hack, source routes, bang paths, quoted local parts: relay refused
cat >"$T/rows" <<'EOF'
RCPT TO:<d@mx.smtptls.test>
RCPT TO:<d@MX.smtptls.test>
RCPT TO:<d@remote.smtptls.test>
RCPT TO:<e%mx.smtptls.test@mx.smtptls.test>
RCPT TO:<e%remote.smtptls.test@mx.smtptls.test>
RCPT TO:<e%REMOTE.smtptls.test@MX.smtptls.test>
RCPT TO:<e%remote.smtptls.test.@mx.smtptls.test>
RCPT TO:<e%f%remote.smtptls.test@mx.smtptls.test>
RCPT TO:<e%remote.smtptls.test%mx.smtptls.test@mx.smtptls.test>
RCPT TO:<e%mx.smtptls.test%mx.smtptls.test@mx.smtptls.test>
RCPT TO:<e%remote.smtptls.test@remote.smtptls.test>
RCPT TO:<e%remote.smtptls.test>
RCPT TO:<e%>
RCPT TO:<e%@mx.smtptls.test>
RCPT TO:<%remote.smtptls.test@mx.smtptls.test>
RCPT TO:<e%bad..smtptls.test@mx.smtptls.test>
RCPT TO:<e@remote.smtptls.test@mx.smtptls.test>
RCPT TO:<@x.smtptls.test:d@mx.smtptls.test>
RCPT TO:<@a.smtptls.test,@b.smtptls.test:d@mx.smtptls.test>
RCPT TO:<@mx.smtptls.test:d@remote.smtptls.test>
RCPT TO:<@x.smtptls.test:d%remote.smtptls.test@mx.smtptls.test>
RCPT TO:<@x.smtptls.test:d>
RCPT TO:<"e%remote.smtptls.test"@mx.smtptls.test>
RCPT TO:<"e@remote.smtptls.test"@mx.smtptls.test>
RCPT TO:<"a b"@mx.smtptls.test>
RCPT TO:<"a b"%remote.smtptls.test@mx.smtptls.test>
RCPT TO:<"a\\"b"@mx.smtptls.test>
RCPT TO:<remote.smtptls.test!e@mx.smtptls.test>
RCPT TO:<mx.smtptls.test!e@mx.smtptls.test>
RCPT TO:<remote.smtptls.test!e>
RCPT TO:<a!remote.smtptls.test!e@mx.smtptls.test>
RCPT TO:<remote.smtptls.test!e%mx.smtptls.test@mx.smtptls.test>
RCPT TO:<e>
MAIL FROM:<e%@mx.smtptls.test>
MAIL FROM:<e%remote.smtptls.test@mx.smtptls.test>
EOF
compare "no relay" "$pf_deny" "$sv_deny"
is "${svr[4]}" "554 5.7.1 <e%remote.smtptls.test@mx.smtptls.test>: Relay access denied" \
	"which is, for the percent hack to a remote domain: relay access denied"

# ... and for a client allowed to relay
compare "relay" "$pf_relay" "$sv_relay"

# what the relaying pair sends on: the rewritten addresses, quoted as on the wire
send() { # PORT RCPT...: one message to them from "s t"@mx.smtptls.test; prints the reply
	# to its end
	local port=$1 r cmds=("EHLO client.smtptls.test" 'MAIL FROM:<"s t"@mx.smtptls.test>')
	shift
	for r; do cmds+=("RCPT TO:<$r>"); done
	dialog "$port" "${cmds[@]}" DATA 'Subject: relayed\r\n\r\nhello\r\n.' | tail -n 1 | sed 's/^.* -> //'
}
rcpts=('e%remote.smtptls.test@mx.smtptls.test' '@x.smtptls.test:f@remote.smtptls.test'
	'remote.smtptls.test!g@mx.smtptls.test' '"h i"%remote.smtptls.test@mx.smtptls.test'
	'j%k%remote.smtptls.test@mx.smtptls.test' 'l%mx.smtptls.test@mx.smtptls.test')
like "$(send "$pf_relay" "${rcpts[@]}")" "^250 " "Postfix takes a message for them"
like "$(send "$sv_relay" "${rcpts[@]}")" "^250 " "serve takes the same message"
# five of them go on (the last one is local), to b1 from Postfix, to b2 from serve
for b in b1 b2; do
	wait_log "$T/$b.log" '"event":"data"' >/dev/null
done
got() { jq -r 'select(.event == "rcpt") | .to' "$T/$1.log" | LC_ALL=C sort | tr '\n' ' '; }
is "$(got b2)" "$(got b1)" "serve relays to the addresses Postfix relays to"
from() { jq -r 'select(.event == "mail") | .from' "$T/$1.log"; }
is "$(from b2)|$(from b1)" "s t@mx.smtptls.test|s t@mx.smtptls.test" \
	"from the sender Postfix relays from (its local part quoted on the wire)"
is "$(got b2)" 'e@remote.smtptls.test f@remote.smtptls.test g@remote.smtptls.test h i@remote.smtptls.test j%k@remote.smtptls.test ' \
	"which are the rewritten ones"
ls "$T"/md-relay/new/* >/dev/null 2>&1
ok $? "the local one (l%mx.smtptls.test@mx.smtptls.test) is in serve's Maildir"
is "$(jq -r 'select(.event == "relay") | .to' "$T/relay.log" | LC_ALL=C sort | tr '\n' ' ')" \
	"$(grep -ao 'smtp\[[0-9]*\]: [0-9A-F]*: to=<[^>]*>' "$pf/maillog" | sed 's/.*to=<\(.*\)>/\1/' | LC_ALL=C sort | tr '\n' ' ')" \
	"serve logs the relayed recipients as Postfix's smtp logs to="

# what is shown is sanitised: the JSON log has the raw bytes escaped, the reply '?'
is "$(dialog "$sv_deny" "EHLO c.smtptls.test" 'MAIL FROM:<a\x1bb@mx.smtptls.test>' \
	'RCPT TO:<e\x1b%remote.smtptls.test@mx.smtptls.test>' | tail -n 1 | sed 's/^.* -> //')" \
	"554 5.7.1 <e?%remote.smtptls.test@mx.smtptls.test>: Relay access denied" \
	"a reply that echoes an address shows a control character as '?'"
jq -r 'select(.event == "mail") | .from' "$T/deny.log" | grep -q $'^a\x1bb@mx.smtptls.test$'
ok $? "the JSON log keeps the raw address (escaped by JSON)"
grep -q $'\x1b' "$T/deny.log"
is $? 1 "and never writes the control character itself"

done_testing
