#!/bin/bash
# t0301: probe against hostile servers: never a hang, never a crash, capped replies,
# injection after STARTTLS reported, terminal escapes sanitised
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
need certtool python3 jq
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
cat "$P/server.pem" "$P/int.pem" >"$P/chain.pem"

# hostile MODE: start the scripted server, wait for its ready line (no sleep), set $port
hostile() {
	local fifo=$T/ready.$1 l
	rm -f "$fifo"
	mkfifo "$fifo"
	python3 "$TOP_SRCDIR/tests/lib/hostile-smtp.py" "$1" "$P/chain.pem" "$P/server.key" >"$fifo" &
	at_exit "kill $! 2>/dev/null"
	read -r -t 10 l port <"$fifo" && [ "$l" = ready ]
}

hostile slow
run timeout 30 "$SMTPTLS" --json probe --timeout 1 --level encrypt "[127.0.0.1]:$port"
is "$rc" 6 "a server that goes silent: exit 6, within the timeout"
is "$(jq -r .error <<<"$out")" "no reply within 1000 ms (ehlo)" "it says where it waited"

hostile drip
run timeout 30 "$SMTPTLS" --json probe --timeout 1 --level encrypt "[127.0.0.1]:$port"
is "$rc" 6 "a server that drips bytes: exit 6, the deadline is per step, not per read"
is "$(jq -r .error <<<"$out")" "no reply within 1000 ms (ehlo)" "it says where it waited"

hostile early
run timeout 30 "$SMTPTLS" --json probe --level encrypt "[127.0.0.1]:$port"
is "$rc" 6 "replies sent before the commands: exit 6, TLS is never started on them"
like "$(jq -r .error <<<"$out")" "^the server sent [0-9]+ bytes before our next command \\(unrequested pipelining\\)$" \
	"the early bytes are counted and named"
is "$(jq -r .tls <<<"$out")" null "and no TLS was reported"

hostile hangup
run timeout 30 "$SMTPTLS" --json probe --level encrypt "[127.0.0.1]:$port"
is "$rc" 6 "a server that hangs up: exit 6"
like "$(jq -r .error <<<"$out")" "connection closed during ehlo" "it says when"

hostile endless
run timeout 30 "$SMTPTLS" --json probe --level encrypt "[127.0.0.1]:$port"
is "$rc" 6 "an endless multi-line reply: exit 6, no hang"
like "$(jq -r .error <<<"$out")" "reply of more than 256 lines" "the line cap is named"

hostile longline
run timeout 30 "$SMTPTLS" --json probe --level encrypt "[127.0.0.1]:$port"
is "$rc" 6 "a 100 kB reply line: exit 6"
like "$(jq -r .error <<<"$out")" "reply line longer than 4096 bytes" "the length cap is named"

hostile escapes
run timeout 30 "$SMTPTLS" probe --color=never --level may "[127.0.0.1]:$port"
unlike "$out$err" $'\033|\007' "escape sequences in a banner never reach the terminal"
like "$out" "banner +220 \\?\\[31mred\\?\\]0;title\\? \\?\\? ESMTP" "they are shown as ?"
hostile escapes
SMTPTLS_PASSWORD=hunter2 run timeout 30 "$SMTPTLS" --json probe --auth-user bob --level may "[127.0.0.1]:$port"
is "$rc" 2 "AUTH asked for, no TLS offered: exit 2 even at level may"
is "$(jq -r .error <<<"$out")" "AUTH refused by us: no TLS (the secret would go in clear)" "the reason is given"
hostile escapes
run timeout 30 "$SMTPTLS" --json probe --level may "[127.0.0.1]:$port"
is "$(jq -r .banner <<<"$out")" "220 ?[31mred?]0;title? ?? ESMTP" "JSON carries the sanitised banner"

hostile inject
run timeout 30 "$SMTPTLS" --json probe --no-system-ca --level encrypt "[127.0.0.1]:$port"
is "$(jq -r .starttls_injected_bytes <<<"$out")" "$(printf '250-injected\r\n250 after STARTTLS\r\n' | wc -c)" \
	"bytes after the STARTTLS 220 are counted"
like "$(jq -r '.findings | join("|")' <<<"$out")" "bytes sent after the STARTTLS 220 and before the handshake \\(response injection\\)" \
	"and reported as an injection attempt"
unlike "$(jq -r '.ehlo_tls // [] | join(",")' <<<"$out")" "injected|after STARTTLS" "the injected reply is never taken for the EHLO reply"

hostile latetext
run timeout 30 "$SMTPTLS" --json probe --no-system-ca --level encrypt "[127.0.0.1]:$port"
is "$rc" 7 "plaintext in answer to the ClientHello: exit 7"
is "$(jq -r .error <<<"$out")" \
	"the server sent 14 bytes of plaintext after the STARTTLS 220, not a TLS handshake (response injection)" \
	"it is named injection, not a bad TLS packet"
is "$(jq -r .starttls_injected_bytes <<<"$out")" 14 "the bytes are counted"
like "$(jq -r '.findings | join("|")' <<<"$out")" "response injection" "and reported as a finding"

# a DNS server that never answers: --timeout bounds the lookup too
rm -f "$T/dnsready"
mkfifo "$T/dnsready"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print("ready", s.getsockname()[1], flush=True)
while True:
    s.recvfrom(4096)
' >"$T/dnsready" &
at_exit "kill $! 2>/dev/null"
read -r -t 10 l dport <"$T/dnsready"
run timeout 30 "$SMTPTLS" --json probe --timeout 1 --dns-server "127.0.0.1@$dport" silent.smtptls.test:25
is "$rc" 4 "a silent DNS server: exit 4, within the timeout"
like "$out$err" "no DNS answer for 'silent.smtptls.test' within 1000 ms" "the name and the wait are given"

# a client certificate that cannot be used: found before any connection
run "$SMTPTLS" probe --cert "$T/missing.pem" --key "$P/server.key" "[127.0.0.1]:1"
is "$rc" 3 "a missing --cert file: exit 3, before connecting"
like "$err" "--cert: cannot use '$T/missing.pem' with '$P/server.key'" "the files are named"
run "$SMTPTLS" probe --cert "$P/int.pem" --key "$P/server.key" "[127.0.0.1]:1"
is "$rc" 3 "a key that is not the certificate's: exit 3"
unlike "$out" "connect" "and no connection was tried"

done_testing
