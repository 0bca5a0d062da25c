#!/bin/bash
# t0007: serve's JSON log keeps a disconnect's whole reason (it was cut at 63 bytes, mid-word):
# a TLS failure with a long GnuTLS message, a 421 refusal with a long host name
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need jq python3 certtool

# a host name of 2 x 60 characters: the 421 reply that closes the session is 160 bytes long
host=$(printf 'a%.0s' {1..60}).$(printf 'b%.0s' {1..60}).smtptls.test
serve --listen 127.0.0.1:0/smtps --listen 127.0.0.1:0 --self-signed --hostname "$host" \
	--maildir "$T/md" --log "$T/log" || { diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
smtps=$(port smtps)
smtp=$(port smtp)

# send PORT FILE: send FILE's bytes, then read until the server closes
send() {
	python3 - "$1" "$2" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.sendall(open(sys.argv[2], "rb").read())
try:
    while s.recv(4096):
        pass
except OSError:
    pass
EOF
}

# A TLS record longer than TLS allows (2^14 + 1 bytes): GnuTLS's words for it are long.
{
	printf '\x16\x03\x01\x40\x01'
	head -c 16385 /dev/zero | tr '\0' x
} >"$T/record"
send "$smtps" "$T/record"
line=$(wait_log "$T/log" '"event":"disconnect".*"reason":"TLS handshake failed')
reason=$(jq -r .reason <<<"$line")
is "$reason" "TLS handshake failed: a TLS record packet with invalid length was received" \
	"a TLS failure: the whole reason in the log"
ok "$([ ${#reason} -gt 63 ] && echo 0 || echo 1)" "a TLS failure: the reason is longer than 63 bytes (${#reason})"

# 20 bad commands: "421 4.7.0 HOST Error: too many errors", and the session ends with it
printf 'BOGUS\r\n%.0s' {1..20} >"$T/bogus"
send "$smtp" "$T/bogus"
want="421 4.7.0 $host Error: too many errors"
line=$(wait_log "$T/log" '"event":"disconnect".*"reason":"421 ')
is "$(jq -r .reason <<<"$line")" "$want" "a long 421 refusal: the whole reply in the log (${#want} bytes)"

done_testing
