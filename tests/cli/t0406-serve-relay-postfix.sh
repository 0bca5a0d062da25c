#!/bin/bash
# t0406: smtptls serve's onward relay, and smtptls policy test's prediction, against
# Postfix's own smtp client: the same TLS policy table, the same next hops (good,
# wrong-name, expired and self-signed certificates, TLS 1.2 only, no TLS at all, down,
# refusing), the same CA; every case must end the same way (sent, or deferred with the
# same reason) in Postfix's log, in serve's and in policy test's verdict. Two next hops are
# Postfix smtpds of the same instance: one that wants STARTTLS before MAIL (530 5.7.0 to a
# client at level none), one that refuses to relay (554 5.7.1 to RCPT): policy test runs
# MAIL FROM and RCPT TO (then RSET and QUIT) and predicts the bounce from those replies
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need jq python3 certtool swaks script
pf_require smtp-sink
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
chmod 755 "$T" "$P"
chmod 644 "$P"/*
cd "$T" || exit 1

# the next hops: hop KIND NAME starts one, sets $port
hop() {
	local kind=$1 name=$2 i
	local common=(--listen 127.0.0.1:0 --maildir "$T/md-$name" --relay-restrictions permit_mynetworks
		--mynetworks 127.0.0.0/8)
	case $kind in
	server | wrongname | expired | selfsigned)
		serve_as "t-$name" "${common[@]}" --cert "$T/$kind-chain.pem" --key "$P/$kind.key" ;;
	tls12)
		serve_as "t-$name" "${common[@]}" --cert "$T/server-chain.pem" --key "$P/server.key" \
			--tls-protocols '<=TLSv1.2' ;;
	rcpt550 | mail451)
		serve_as "t-$name" "${common[@]}" --cert "$T/server-chain.pem" --key "$P/server.key" \
			--fault "${kind:0:4}:${kind:4}" ;;
	pfenc) # Postfix's smtpd: STARTTLS before anything else (530 5.7.0 to MAIL without it)
		port=$(pf_free_port)
		pf_smtpd_service "$D" "$port" -o smtpd_tls_security_level=encrypt \
			-o "smtpd_tls_chain_files=$P/server.key,$T/server-chain.pem" \
			-o myhostname=hop-enc.smtptls.test ;;
	pfrelay) # Postfix's smtpd: no relaying for anyone (554 5.7.1 to RCPT)
		port=$(pf_free_port)
		pf_smtpd_service "$D" "$port" -o smtpd_relay_restrictions=reject_unauth_destination \
			-o myhostname=hop-relay.smtptls.test ;;
	down)
		port=$(pf_free_port) ;; # nothing listens there
	notls)
		# no TLS at all: Postfix's smtp-sink (it has no STARTTLS)
		port=$(pf_free_port)
		smtp-sink -u nobody "127.0.0.1:$port" 100 >/dev/null 2>&1 &
		at_exit "kill $! 2>/dev/null"
		for i in $(seq 200); do # bounded poll for the port
			(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
			sleep 0.05
		done ;;
	esac
}
for k in server wrongname expired selfsigned; do
	cat "$P/$k.pem" >"$T/$k-chain.pem"
	[ "$k" = selfsigned ] || cat "$P/int.pem" >>"$T/$k-chain.pem"
done
fp=$("$SMTPTLS" fingerprint -d sha256 "$P/selfsigned.pem" | awk '$1 == "fingerprint" {print $2}')

# the cases: NAME HOP POLICY (each next hop gets its own port, so its own table key)
cases=(
	"may-notls notls may"
	"encrypt-notls notls encrypt"
	"encrypt-self selfsigned encrypt"
	"verify-good server verify match=mx.test.example"
	"verify-wrongname wrongname verify match=mx.test.example"
	"secure-expired expired secure match=mx.test.example"
	"secure-self selfsigned secure match=mx.test.example"
	"secure-good server secure match=.test.example"
	"fingerprint-self selfsigned fingerprint match=$fp"
	"fingerprint-other server fingerprint match=$fp"
	"tls13-tls12 tls12 encrypt protocols=>=TLSv1.3"
	"none-good server none"
	"invalid-good server encrypt match=mx.test.example"
	"may-tls12 tls12 may protocols=>=TLSv1.3"
	"may-down down may"
	"encrypt-rcpt550 rcpt550 encrypt"
	"may-mail451 mail451 may"
	"none-pfenc pfenc none"
	"may-pfrelay pfrelay may"
)
# the Postfix instance first: two of the next hops are its own smtpds
D=$T/postfix
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
# Postfix looks the policy up by next hop: each case has a next hop of its own
: >"$T/policy"
: >"$T/transport"
declare -A cport
for c in "${cases[@]}"; do
	read -r name k pol <<<"$c"
	hop "$k" "$name" || exit 1
	cport[$name]=$port
	printf '[127.0.0.1]:%s %s\n' "$port" "$pol" >>"$T/policy"
	printf '%s.smtptls.test smtp:[127.0.0.1]:%s\n' "$name" "$port" >>"$T/transport"
done

# Postfix's smtp client with that table
export MAIL_CONFIG=$D/etc
pf_conf "$D" "default_transport=smtp" "transport_maps=texthash:$T/transport" \
	"smtp_tls_policy_maps=texthash:$T/policy" "smtp_tls_security_level=may" \
	"smtp_tls_CAfile=$P/ca.pem" "smtp_tls_loglevel=1" "minimal_backoff_time=2s" \
	"maximal_backoff_time=2s" "queue_run_delay=1s" || { diag "pf_conf failed"; exit 1; }
pf_start "$D" || { diag "Postfix did not start"; exit 1; }

norm() { sed -E 's/queued as [0-9A-Za-z]+/queued as ID/; s/\[127\.0\.0\.1\]:[0-9]+/[127.0.0.1]:PORT/g'; }
for c in "${cases[@]}"; do
	read -r name k pol <<<"$c"
	# Postfix
	printf 'From: a@smtptls-test.example\nSubject: %s\n\nbody\n' "$name" |
		sendmail -C "$D/etc" -f a@smtptls-test.example "x@$name.smtptls.test"
	# serve, relaying the same way
	serve_as "r-$name" --listen 127.0.0.1:0 --maildir "$T/r-md-$name" --queue-dir "$T/q-$name" \
		--mynetworks 127.0.0.0/8 --relayhost "[127.0.0.1]:${cport[$name]}" \
		--tls-policy "texthash:$T/policy" --relay-ca-file "$P/ca.pem" --backoff 2 || exit 1
	timeout 60 swaks --server 127.0.0.1 --port "$port" --from a@smtptls-test.example \
		--to "x@$name.smtptls.test" --header "Subject: $name" >"$T/swaks-$name" 2>&1 ||
		diag "sending to serve for $name failed: $(tail -n 3 "$T/swaks-$name")"
done
for c in "${cases[@]}"; do
	read -r name k pol <<<"$c"
	pf=$(pf_wait_log "$D" "to=<x@$name\\.smtptls\\.test>.*status=(sent|deferred|bounced)" 60)
	pf_verdict=$(sed -E 's/.*status=([a-z]+) \((.*)\)$/\1 \2/' <<<"$pf" | norm)
	line=$(wait_log "$T/r-$name.log" '"event":"relay"' 60)
	st_verdict=$(jq -r '.status + " " + .reason' <<<"$line" | norm)
	is "$st_verdict" "$pf_verdict" "$name ($pol): as Postfix: ${pf_verdict:0:70}"
done

# smtptls policy test predicts the same, without sending mail: delivered where Postfix sent,
# deferred or bounced with Postfix's reason where it did not; with Postfix's sender and
# recipient it runs MAIL FROM and RCPT TO too, so refusals there are predicted as well
for c in "${cases[@]}"; do
	read -r name k pol <<<"$c"
	pf_verdict=$(grep -E "to=<x@$name\\.smtptls\\.test>.*status=(sent|deferred|bounced)" "$D/maillog" | head -n 1 |
		sed -E 's/.*status=([a-z]+) \((.*)\)$/\1 \2/' | norm)
	case $pf_verdict in sent*) pf_verdict=delivered ;; esac
	run "$SMTPTLS" --json policy test --no-postfix-config --table "texthash:$T/policy" \
		-o smtp_tls_security_level=may --ca-file "$P/ca.pem" --timeout 10 \
		--mail-from a@smtptls-test.example --rcpt-to "x@$name.smtptls.test" "[127.0.0.1]:${cport[$name]}"
	st_verdict=$(jq -r 'if .verdict == "delivered" then .verdict else .verdict + " " + .reason end' <<<"$out" | norm)
	is "$st_verdict" "$pf_verdict" "policy test $name ($pol): as Postfix"
done
# the null sender by default, and no RCPT without --rcpt-to: MAIL alone decides
run "$SMTPTLS" --json policy test --no-postfix-config --table "texthash:$T/policy" \
	--timeout 10 "[127.0.0.1]:${cport[none-pfenc]}" "[127.0.0.1]:${cport[may-pfrelay]}"
is "$(jq -r '.verdict + " " + .dsn' <<<"$out" | tr '\n' ,)" "bounced 5.7.0,delivered 2.0.0," \
	"without --rcpt-to: MAIL FROM:<> is refused without STARTTLS, taken where only relaying is refused"
is "$rc" 1 "a bounce: exit 1"
# (every other client of this smtpd sends RCPT)
pf_wait_log "$D" "postfix/${cport[may-pfrelay]}/smtpd\\[[0-9]+\\]: disconnect from .* ehlo=1 mail=1 rset=1 quit=1 commands=4\$" >/dev/null
ok $? "the smtpd saw EHLO, MAIL, RSET and QUIT: no RCPT without --rcpt-to, no DATA"
# policy test's own session, told apart by its EHLO name: RCPT refused, then RSET and QUIT
run "$SMTPTLS" policy test --no-postfix-config --table "texthash:$T/policy" --timeout 10 \
	--ehlo policy-test.smtptls.test --rcpt-to x@may-pfrelay.smtptls.test "[127.0.0.1]:${cport[may-pfrelay]}"
rej=$(pf_wait_log "$D" "postfix/${cport[may-pfrelay]}/smtpd\\[[0-9]+\\]: NOQUEUE: reject: RCPT .* 554 5\\.7\\.1 <x@may-pfrelay\\.smtptls\\.test>: Relay access denied; from=<> .*helo=<policy-test\\.smtptls\\.test>")
pid=$(sed -E 's/.*smtpd\[([0-9]+)\].*/\1/' <<<"$rej")
# (an smtpd process serves many sessions: its disconnect line after that reject)
ln=$(grep -n -F -- "$rej" "$D/maillog" | head -n 1 | cut -d: -f1)
exec {lfd}< <(exec timeout 10 tail -n +"${ln:-1}" -F -- "$D/maillog" 2>/dev/null)
ltp=$!
disc=$(grep -m 1 -E -- "smtpd\\[$pid\\]: disconnect from" <&"$lfd")
kill "$ltp" 2>/dev/null
exec {lfd}<&-
like "$disc" \
	"ehlo=1 mail=1 rcpt=0/1 rset=1 quit=1 commands=4/5\$" \
	"with --rcpt-to: MAIL FROM:<>, RCPT, RSET and QUIT, no DATA"
run "$SMTPTLS" policy test --no-postfix-config --table "texthash:$T/policy" --timeout 10 \
	"[127.0.0.1]:${cport[none-pfenc]}"
like "$out" "bounced \\(host 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\] said: 530 5\\.7\\.0 Must issue a STARTTLS command first \\(in reply to MAIL FROM command\\)\\)" \
	"text: the bounce in Postfix's words"
like "$out" "127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${cport[none-pfenc]} +bounced: host" "and the host line says bounced"

# on a terminal, a progress line counts the next hops tested (then is wiped)
tty_out=$(NO_COLOR=1 script -qec "$SMTPTLS policy test --no-postfix-config --table texthash:$T/policy --ca-file $P/ca.pem --timeout 10 [127.0.0.1]:${cport[encrypt-self]} [127.0.0.1]:${cport[verify-good]}" /dev/null)
like "$tty_out" "2/2 tested" "policy test on a terminal: a progress line"
like "$tty_out" "verify-good|\\[127\\.0\\.0\\.1\\]:${cport[verify-good]}: delivered" "then the verdicts"

# at may, a handshake that fails defers a fresh message; once it has waited the minimal
# backoff time, the next attempt goes without TLS (Postfix's plaintext fallback)
pf=$(pf_wait_log "$D" "to=<x@may-tls12\\.smtptls\\.test>.*status=sent" 60)
like "$pf" "status=sent" "Postfix: the retry of the may case went through without TLS"
line=$(wait_log "$T/r-may-tls12.log" '"event":"relay".*"status":"sent"' 60)
is "$(jq -r '.attempt' <<<"$line")" 2 "serve: so did its second attempt"
is "$(jq -r '.tls.status // "none"' <<<"$line")" none "without TLS"

done_testing
