#!/bin/bash
# t0503: smtptls policy test routes a recipient as Postfix does (trivial-rewrite's address
# classes, transport_maps in transport(5)'s order, relayhost, relay_transport, and the
# transport's master.cf entry with its -o overrides, smtp_tls_wrappermode among them) and
# predicts what Postfix's smtp client does: a real Postfix delivers to the same recipients
# under the same main.cf and master.cf, and its log (relay=, status=) must match
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need jq python3 certtool
pf_require postconf
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
chmod 755 "$T" "$P"
chmod 644 "$P"/*
cat "$P/server.pem" "$P/int.pem" >"$T/server-chain.pem"
cd "$T" || exit 1

hop() { # NAME MODE: a serve that takes any mail from loopback; sets $port
	local name=$1 mode=$2 fifo=$T/ready.$1 ready
	rm -f "$fifo" && mkfifo "$fifo"
	"$SMTPTLS" serve --log "$T/$name.log" --listen "127.0.0.1:0/$mode" --maildir "$T/md-$name" \
		--relay-restrictions permit_mynetworks --mynetworks 127.0.0.0/8 \
		--cert "$T/server-chain.pem" --key "$P/server.key" >"$fifo" 2>"$T/$name.err" &
	at_exit "kill $! 2>/dev/null"
	read -r -t 30 ready <"$fifo"
	port=$(sed -n 's/.* smtps\{0,1\} [^:]*:\([0-9]*\).*/\1/p' <<<"$ready")
	[ -n "$port" ] || { diag "serve $name did not start: $(cat "$T/$name.err")"; return 1; }
}
hop wrap smtps || exit 1
h_wrap=$port # implicit TLS only: STARTTLS there gets nothing
hop relayhost smtp || exit 1
h_relayhost=$port
hop sub smtp || exit 1
h_sub=$port
hop relay smtp || exit 1
h_relay=$port

D=$T/postfix
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
cat >"$T/transport" <<EOT
wrapped.smtptls.test     smtptls-wrap:[127.0.0.1]:$h_wrap
vip@other.smtptls.test   smtptls-wrap:[127.0.0.1]:$h_wrap
.sub.smtptls.test        :[127.0.0.1]:$h_sub
wrapnone.smtptls.test    smtptls-wrapnone:[127.0.0.1]:$h_wrap
wrapmay.smtptls.test     smtptls-wrapmay:[127.0.0.1]:$h_wrap
EOT
cat >>"$D/etc/master.cf" <<'EOT'
smtptls-wrap unix - - n - - smtp
  -o smtp_tls_wrappermode=yes
  -o smtp_tls_security_level=$wrap_level
smtptls-wrapnone unix - - n - - smtp
  -o smtp_tls_wrappermode=yes
  -o smtp_tls_security_level=none
smtptls-wrapmay unix - - n - - smtp
  -o smtp_tls_wrappermode=yes
EOT
pf_conf "$D" "default_transport=smtp" "relayhost=[127.0.0.1]:$h_relayhost" \
	"relay_domains=relayed.smtptls.test" "relay_transport=relay:[127.0.0.1]:$h_relay" \
	"transport_maps=texthash:$T/transport" "smtp_tls_security_level=may" \
	"wrap_level=encrypt" "minimal_backoff_time=2s" "maximal_backoff_time=2s" \
	"queue_run_delay=1s" || { diag "pf_conf failed"; exit 1; }
pf_start "$D" || { diag "Postfix did not start"; exit 1; }

# recipient  the service that must take it (by name)
cases=(
	"x@wrapped.smtptls.test wrap"      # transport_maps domain: a wrappermode transport
	"vip@other.smtptls.test wrap"      # transport_maps full address
	"plain@other.smtptls.test relayhost" # the same domain, another user: default, relayhost
	"y@a.sub.smtptls.test sub"         # .parent entry: null transport keeps smtp
	"q@sub.smtptls.test relayhost"     # .sub matches below sub.smtptls.test only
	"z@relayed.smtptls.test relay"     # relay_domains: relay_transport's next hop
	"w@else.smtptls.test relayhost"    # default_transport, relayhost
)
declare -A hport=([wrap]=$h_wrap [relayhost]=$h_relayhost [sub]=$h_sub [relay]=$h_relay)
for c in "${cases[@]}"; do
	read -r rcpt _ <<<"$c"
	printf 'From: a@smtptls-test.example\nSubject: %s\n\nbody\n' "$rcpt" |
		sendmail -C "$D/etc" -f a@smtptls-test.example "$rcpt"
done
export MAIL_CONFIG=$D/etc
for c in "${cases[@]}"; do
	read -r rcpt want _ <<<"$c"
	re=${rcpt//./\\.}
	pf=$(pf_wait_log "$D" "to=<$re>.*status=(sent|deferred|bounced)" 60)
	pf_verdict=$(sed -E 's/.* relay=([^,]*),.* status=([a-z]+) .*/\2 \1/; s/^sent /delivered /' <<<"$pf")
	is "$pf_verdict" "delivered 127.0.0.1[127.0.0.1]:${hport[$want]}" "Postfix: $rcpt went to the $want next hop"
	run "$SMTPTLS" --json policy test --postfix-config "$D/etc" --timeout 10 "$rcpt"
	st_verdict=$(jq -r '.verdict + " " + .relay' <<<"$out")
	is "$st_verdict" "$pf_verdict" "policy test $rcpt: routed and predicted as Postfix: $st_verdict"
done

# wrappermode below encrypt (none, and main.cf's may): Postfix warns, connects nowhere and
# defers; policy test says the same
for rcpt in n@wrapnone.smtptls.test m@wrapmay.smtptls.test; do
	printf 'Subject: %s\n\nbody\n' "$rcpt" | sendmail -C "$D/etc" -f a@smtptls-test.example "$rcpt"
	pf=$(pf_wait_log "$D" "to=<${rcpt//./\\.}>.*status=(sent|deferred|bounced)" 60)
	pf_verdict=$(sed -E 's/.* relay=([^,]*),.* dsn=([^,]*), status=([a-z]+) \((.*)\)$/\3 \1 \2 \4/' <<<"$pf")
	is "$pf_verdict" "deferred none 4.3.0 server unavailable or unable to receive mail" \
		"Postfix: $rcpt, wrappermode below encrypt: deferred"
	run "$SMTPTLS" --json policy test --postfix-config "$D/etc" --timeout 10 "$rcpt"
	is "$(jq -r '.verdict + " " + .relay + " " + .dsn + " " + .reason' <<<"$out")" "$pf_verdict" \
		"policy test $rcpt: the same"
done
like "$(grep -c 'warning: smtp_tls_wrappermode requires "smtp_tls_security_level = encrypt" (or stronger)' "$D/maillog")" "^[1-9]" \
	"Postfix's warning"
like "$(jq -r .route.why <<<"$out")" 'smtp_tls_wrappermode requires "smtp_tls_security_level = encrypt" \(or stronger\)' \
	"policy test's route quotes it"

run "$SMTPTLS" --json policy test --postfix-config "$D/etc" --timeout 10 x@wrapped.smtptls.test
is "$(jq -r '.route | "\(.class) \(.transport) \(.nexthop) \(.wrappermode)"' <<<"$out")" \
	"default smtptls-wrap [127.0.0.1]:$h_wrap true" "the route: class, transport, next hop, wrappermode"
like "$(jq -r .route.why <<<"$out")" "transport_maps texthash:.*line 1: wrapped\\.smtptls\\.test .*master\\.cf -o smtp_tls_security_level=encrypt -o smtp_tls_wrappermode=yes" \
	"and why: the entry, and the service's overrides (\$wrap_level expanded)"
pf=$(grep -E "Untrusted TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:$h_wrap" "$D/maillog" | head -n 1)
[ -n "$pf" ]
ok $? "Postfix: an Untrusted TLS connection to the SMTPS next hop"
is "$(jq -r '.policy.level + " " + .hosts[0].tls_status' <<<"$out")" "encrypt Untrusted" \
	"policy test: the service's level applies, over TLS from the first byte, Untrusted as Postfix says"
# the next hop alone, as before routing: STARTTLS at an SMTPS port is not what Postfix does
run "$SMTPTLS" --json policy test --postfix-config "$D/etc" --timeout 3 "[127.0.0.1]:$h_wrap"
isnt "$(jq -r .verdict <<<"$out")" delivered "the next hop alone (no wrappermode) is not delivered"

# classes that are not SMTP, and transports that are not smtp: said, not guessed
run "$SMTPTLS" --json policy test --postfix-config "$D/etc" -o mydestination=here.smtptls.test \
	u@here.smtptls.test
is "$(jq -r '.verdict + " " + .route.class' <<<"$out")" "not-smtp local" "mydestination: local, not SMTP"
is "$rc" 0 "not an SMTP delivery: no failure"
printf 'lm.smtptls.test lmtp:[127.0.0.1]:1\nnone.smtptls.test nosuch:\n' >>"$T/transport"
run "$SMTPTLS" --json policy test --postfix-config "$D/etc" u@lm.smtptls.test
like "$(jq -r .reason <<<"$out")" "transport lmtp runs lmtp, not Postfix's smtp client" "an lmtp transport: said so"
run "$SMTPTLS" --json policy test --postfix-config "$D/etc" u@none.smtptls.test
like "$(jq -r .reason <<<"$out")" "transport 'nosuch', which .* has no unix service" "a transport master.cf lacks: said so"
is "$rc" 2 "and an error"

done_testing
