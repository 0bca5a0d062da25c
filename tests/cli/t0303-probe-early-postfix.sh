#!/bin/bash
# t0303: sessions that never got past the greeting (nothing listening, a connection that
# times out, a server that says nothing, one that hangs up at once, a 421 and a 554
# greeting) or past EHLO (a hang-up, a 421, silence), judged as Postfix's smtp client judges them: the same next hops, Postfix's
# log beside probe's, policy test's and serve's relay verdicts, word for word. No verdict
# may claim a delivery, a TLS failure or a met level for such a session.
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need jq python3 certtool swaks
pf_require smtp-sink
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
chmod 755 "$T" "$P"
chmod 644 "$P"/*
cd "$T" || exit 1

wait_port() { # PORT: bounded poll until something listens there
	local i
	for i in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

D=$T/postfix
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
export MAIL_CONFIG=$D/etc

# the next hops
declare -A hport
hport[down]=$(pf_free_port) # nothing listens there
# a listener whose accept queue is full: the kernel drops every further SYN, so a
# connection attempt times out (no address outside loopback is needed)
mkfifo "$T/bh.fifo"
python3 - >"$T/bh.fifo" <<'PY' &
import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(0)
port = s.getsockname()[1]
fill = []
for _ in range(2):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    fill.append(c)
print("ready", port, flush=True)
time.sleep(600)
PY
at_exit "kill $! 2>/dev/null"
read -r -t 30 _ hport[blackhole] <"$T/bh.fifo" || { diag "the full listener did not start"; exit 1; }
# Postfix's own smtpd in wrappermode: silent until the client starts TLS
hport[silent]=$(pf_free_port)
pf_smtpd_service "$D" "${hport[silent]}" -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt \
	-o "smtpd_tls_chain_files=$P/server.key,$P/server.pem"
# and a STARTTLS one, for the reverse mistake (--tls-on-connect where a greeting comes)
starttls=$(pf_free_port)
pf_smtpd_service "$D" "$starttls" -o smtpd_tls_security_level=may \
	-o "smtpd_tls_chain_files=$P/server.key,$P/server.pem"
# Postfix's smtp-sink: hangs up at once, or says 421 at once; greets, then at EHLO hangs
# up, says 421, or is silent (10 s, past every timeout here)
for k in hangup:-q:CONNECT greet421:-Q:CONNECT ehlohangup:-q:EHLO ehlo421:-Q:EHLO \
	ehlosilent:-W:EHLO:10; do
	IFS=: read -r name opt arg <<<"$k"
	hport[$name]=$(pf_free_port)
	smtp-sink -u nobody "$opt" "$arg" "127.0.0.1:${hport[$name]}" 100 >/dev/null 2>&1 &
	at_exit "kill $! 2>/dev/null"
	wait_port "${hport[$name]}" || { diag "smtp-sink $name did not start"; exit 1; }
done
# a 554 greeting (then the connection ends)
serve_as greet554 --listen 127.0.0.1:0 --maildir "$T/md554" --fault connect:554 || exit 1
hport[greet554]=$port

cases=(down blackhole silent hangup greet421 greet554 ehlohangup ehlo421 ehlosilent)
: >"$T/transport"
for c in "${cases[@]}"; do
	printf '%s.smtptls.test smtp:[127.0.0.1]:%s\n' "$c" "${hport[$c]}" >>"$T/transport"
done
pf_conf "$D" "default_transport=smtp" "transport_maps=texthash:$T/transport" \
	"smtp_tls_security_level=may" "smtp_connect_timeout=2s" "smtp_helo_timeout=2s" \
	"queue_run_delay=300s" || { diag "pf_conf failed"; exit 1; }
pf_start "$D" || { diag "Postfix did not start"; exit 1; }

# Postfix's smtp client, and serve's relay, to each next hop
for c in "${cases[@]}"; do
	printf 'From: a@smtptls-test.example\nSubject: %s\n\nbody\n' "$c" |
		sendmail -C "$D/etc" -f a@smtptls-test.example "x@$c.smtptls.test"
	serve_as "r-$c" --listen 127.0.0.1:0 --maildir "$T/r-md-$c" --queue-dir "$T/q-$c" \
		--mynetworks 127.0.0.0/8 --relayhost "[127.0.0.1]:${hport[$c]}" --relay-timeout 2 \
		--backoff 600 || exit 1
	timeout 60 swaks --server 127.0.0.1 --port "$port" --from a@smtptls-test.example \
		--to "x@$c.smtptls.test" --header "Subject: $c" >"$T/swaks-$c" 2>&1 ||
		diag "sending to serve for $c failed: $(tail -n 3 "$T/swaks-$c")"
done

norm() { sed -E 's/\[127\.0\.0\.1\]:[0-9]+/[127.0.0.1]:PORT/g'; }
declare -A want_rc=([down]=5 [blackhole]=5 [silent]=6 [hangup]=6 [greet421]=8 [greet554]=8
	[ehlohangup]=6 [ehlo421]=8 [ehlosilent]=6)
for c in "${cases[@]}"; do
	line=$(pf_wait_log "$D" "to=<x@$c\\.smtptls\\.test>.*status=(sent|deferred|bounced)" 60)
	pf=$(sed -E 's/.*dsn=([0-9.]+), status=([a-z]+) \((.*)\)$/\2 \1 \3/' <<<"$line" | norm)
	pf_reason=${pf#* * }
	diag "Postfix, $c: $pf"
	# serve's relay
	line=$(wait_log "$T/r-$c.log" '"event":"relay"' 60)
	is "$(jq -r '.status + " " + .dsn + " " + .reason' <<<"$line" | norm)" "$pf" \
		"$c: serve's relay defers as Postfix"
	# policy test's prediction
	run "$SMTPTLS" --json policy test --no-postfix-config -o smtp_tls_security_level=may \
		--timeout 2 "[127.0.0.1]:${hport[$c]}"
	is "$(jq -r '.verdict + " " + .reason' <<<"$out" | norm)" "deferred $pf_reason" \
		"$c: policy test predicts it in Postfix's words"
	# probe, at may and at encrypt: no session, so no level met, no TLS, Postfix's reason
	for lv in may encrypt; do
		run "$SMTPTLS" --json probe --level "$lv" --timeout 2 "[127.0.0.1]:${hport[$c]}"
		is "$rc" "${want_rc[$c]}" "$c: probe --level $lv exits ${want_rc[$c]}"
		is "$(jq -r '[.level.met, .tls] | map(tostring) | join(" ")' <<<"$out")" "null null" \
			"$c: probe --level $lv: not judged (met null), no TLS"
		pf_dsn=$(sed -E 's/^[a-z]+ ([0-9.]+) .*/\1/' <<<"$pf")
		is "$(jq -r '.level.dsn + " " + .level.reason' <<<"$out" | norm)" "$pf_dsn $pf_reason" \
			"$c: probe --level $lv gives Postfix's status and reason"
	done
	st probe --level may --timeout 2 "[127.0.0.1]:${hport[$c]}"
	unlike "$out" "level met|delivered" "$c: the text claims no delivery"
	like "$out" "no SMTP session \\(mail would be deferred\\)" "$c: the text says there was no session"
done

# the wrong kind of port, against Postfix's smtpd: STARTTLS to its wrappermode port (it says
# nothing), --tls-on-connect to its STARTTLS port (it greets): the hint names the option
run "$SMTPTLS" --json probe --level may --timeout 1 "[127.0.0.1]:${hport[silent]}"
like "$(jq -r .hint <<<"$out")" "the port may expect implicit TLS \\(try --tls-on-connect\\)" \
	"Postfix's wrappermode port, silent: the hint names --tls-on-connect"
run "$SMTPTLS" --json probe --tls-on-connect --level may --timeout 5 "[127.0.0.1]:$starttls"
is "$rc" 7 "--tls-on-connect to Postfix's STARTTLS port: exit 7"
like "$(jq -r .error <<<"$out")" "greeting where the TLS handshake was due: '220 smtptls-test\\.example ESMTP" \
	"it quotes Postfix's greeting"
like "$(jq -r .hint <<<"$out")" "the port expects STARTTLS \\(drop --tls-on-connect\\)" \
	"the hint says to drop --tls-on-connect"

done_testing
