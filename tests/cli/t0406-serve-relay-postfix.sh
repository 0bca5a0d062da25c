#!/bin/bash
# t0406: smtptls serve's onward relay, and smtptls policy test's prediction, against
# Postfix's own smtp client: the same TLS policy table, the same next hops (good,
# wrong-name, expired and self-signed certificates, TLS 1.2 only, no TLS at all, down,
# refusing), the same CA; every case must end the same way (sent, or deferred with the
# same reason) in Postfix's log, in serve's and in policy test's verdict
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

serve() { # NAME ARGS...: a serve, waited for; sets $port
	local name=$1 fifo=$T/ready.$1 ready
	shift
	rm -f "$fifo" && mkfifo "$fifo"
	"$SMTPTLS" serve --log "$T/$name.log" "$@" >"$fifo" 2>"$T/$name.err" &
	at_exit "kill $! 2>/dev/null"
	read -r -t 30 ready <"$fifo"
	port=$(sed -n 's/.* smtp [^:]*:\([0-9]*\).*/\1/p' <<<"$ready")
	[ -n "$port" ] || { diag "serve $name did not start: $(cat "$T/$name.err")"; return 1; }
}

# the next hops: hop KIND NAME starts one, sets $port
hop() {
	local kind=$1 name=$2 i
	local common=(--listen 127.0.0.1:0 --maildir "$T/md-$name" --relay-restrictions permit_mynetworks
		--mynetworks 127.0.0.0/8)
	case $kind in
	server | wrongname | expired | selfsigned)
		serve "t-$name" "${common[@]}" --cert "$T/$kind-chain.pem" --key "$P/$kind.key" ;;
	tls12)
		serve "t-$name" "${common[@]}" --cert "$T/server-chain.pem" --key "$P/server.key" \
			--tls-protocols '<=TLSv1.2' ;;
	rcpt550 | mail451)
		serve "t-$name" "${common[@]}" --cert "$T/server-chain.pem" --key "$P/server.key" \
			--fault "${kind:0:4}:${kind:4}" ;;
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
)
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
D=$T/postfix
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
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
	serve "r-$name" --listen 127.0.0.1:0 --maildir "$T/r-md-$name" --queue-dir "$T/q-$name" \
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
# deferred with Postfix's reason where it deferred (the cases decided by the message, a
# recipient's 550 or a MAIL 451, are not the policy's to predict)
for c in "${cases[@]}"; do
	read -r name k pol <<<"$c"
	case $k in rcpt550 | mail451) continue ;; esac
	pf_verdict=$(grep -E "to=<x@$name\\.smtptls\\.test>.*status=(sent|deferred|bounced)" "$D/maillog" | head -n 1 |
		sed -E 's/.*status=([a-z]+) \((.*)\)$/\1 \2/' | norm)
	case $pf_verdict in sent*) pf_verdict=delivered ;; esac
	run "$SMTPTLS" --json policy test --no-postfix-config --table "texthash:$T/policy" \
		-o smtp_tls_security_level=may --ca-file "$P/ca.pem" --timeout 10 "[127.0.0.1]:${cport[$name]}"
	st_verdict=$(jq -r 'if .verdict == "delivered" then .verdict else .verdict + " " + .reason end' <<<"$out" | norm)
	is "$st_verdict" "$pf_verdict" "policy test $name ($pol): as Postfix"
done

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
