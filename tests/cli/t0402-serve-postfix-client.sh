#!/bin/bash
# t0402: a real Postfix relays into smtptls serve at TLS security levels secure and verify: delivered to
# a serve whose throwaway certificate names the match (Postfix logs Verified, the Maildir has
# the message), deferred with Postfix's reason by one whose certificate names another host
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
need python3 jq
pf_require
D=$T/postfix
chmod 755 "$T"

serve() { # NAME ARGS...: a serve on a free port; sets $sport
	local fifo=$T/ready.$1 ready
	shift
	rm -f "$fifo" && mkfifo "$fifo"
	"$SMTPTLS" serve --listen 127.0.0.1:0 "$@" >"$fifo" 2>"$T/serve.err" &
	at_exit "kill $! 2>/dev/null"
	read -r -t 30 ready <"$fifo"
	sport=$(sed 's/.* smtp [^:]*:\([0-9]*\).*/\1/' <<<"$ready")
	[ -n "$sport" ]
}
serve good --self-signed=localhost --ca-out "$T/ca.pem" --maildir "$T/good" --domains ok.smtptls.test \
	--log "$T/good.json" || { diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
good=$sport
serve bad --self-signed=other.smtptls.test --ca-out "$T/ca-bad.pem" --maildir "$T/bad" --domains bad.smtptls.test ||
	{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
bad=$sport
serve verify --self-signed=localhost --ca-out "$T/ca-v.pem" --maildir "$T/vgood" --domains v.smtptls.test \
	--log "$T/vgood.json" || { diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
vgood=$sport
# the throwaway CAs are trusted: only the name of the second certificate is wrong
cat "$T/ca.pem" "$T/ca-bad.pem" "$T/ca-v.pem" >"$T/cas.pem"

pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
export MAIL_CONFIG=$D/etc
printf 'ok.smtptls.test smtp:[127.0.0.1]:%s\nbad.smtptls.test smtp:[127.0.0.1]:%s\nv.smtptls.test smtp:[127.0.0.1]:%s\n' \
	"$good" "$bad" "$vgood" >"$D/etc/transport"
# the third next hop at verify, through a policy table
printf '[127.0.0.1]:%s verify match=localhost\n' "$vgood" >"$D/etc/tls_policy"
pf_conf "$D" "default_transport=smtp" "transport_maps=texthash:$D/etc/transport" \
	"smtp_tls_security_level=secure" "smtp_tls_secure_cert_match=localhost" \
	"smtp_tls_CAfile=$T/cas.pem" "smtp_tls_policy_maps=texthash:$D/etc/tls_policy" || { diag "pf_conf failed"; exit 1; }
pf_start "$D" || { diag "Postfix did not start"; exit 1; }

send() { # TO SUBJECT
	printf 'From: a@smtptls-test.example\nTo: %s\nSubject: %s\n\nbody\n' "$1" "$2" |
		sendmail -C "$D/etc" -f a@smtptls-test.example "$1"
}
send b@ok.smtptls.test "relayed-at-secure"
line=$(pf_wait_log "$D" "to=<b@ok\\.smtptls\\.test>.*status=(sent|deferred|bounced)" 30)
like "$line" "status=sent \\(250 2\\.0\\.0 Ok: queued as [0-9A-F]+\\)" "Postfix at secure: sent to serve"
like "$(cat "$D/maillog")" "Verified TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:$good: TLSv1\\.3" \
	"Postfix verified serve's certificate"
qid=$(sed -n 's/.*queued as \([0-9A-F]*\).*/\1/p' <<<"$line")
f=$(grep -l "Subject: relayed-at-secure" "$T"/good/new/* 2>/dev/null)
like "$(cat "$f" 2>/dev/null)" "by [^ ]+ \\(smtptls\\) with ESMTPS id $qid" "the message is in serve's Maildir, under the id Postfix was given"
is "$(jq -r 'select(.event == "data") | .queue_id' "$T/good.json")" "$qid" "and in its log"

send c@bad.smtptls.test "deferred-at-secure"
line=$(pf_wait_log "$D" "to=<c@bad\\.smtptls\\.test>.*status=(sent|deferred|bounced)" 30)
like "$line" "status=deferred \\(Server certificate not verified\\)" \
	"a trusted certificate for another name: deferred, Postfix's reason"
# (Postfix 3.7 then logs "Untrusted", its known 3.6-3.10 logging bug for a trusted chain
# whose name does not match; the verification error says which check failed)
like "$(cat "$D/maillog")" "server certificate verification failed for 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:$bad: num=62:hostname mismatch" \
	"Postfix: the chain verified, only the name did not (num=62)"
is "$(ls "$T/bad/new" | wc -l)" 0 "and nothing reached that serve's Maildir"

send d@v.smtptls.test "relayed-at-verify"
line=$(pf_wait_log "$D" "to=<d@v\\.smtptls\\.test>.*status=(sent|deferred|bounced)" 30)
like "$line" "status=sent \\(250 2\\.0\\.0 Ok: queued as [0-9A-F]+\\)" "Postfix at verify (a policy entry): sent to serve"
like "$(cat "$D/maillog")" "Verified TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:$vgood" \
	"verified at verify too"
ok "$(grep -l "Subject: relayed-at-verify" "$T"/vgood/new/* >/dev/null 2>&1; echo $?)" "and in that serve's Maildir"

done_testing
