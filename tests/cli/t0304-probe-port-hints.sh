#!/bin/bash
# t0304: the wrong kind of port: STARTTLS to an implicit-TLS port (silent where the greeting
# is due, or TLS bytes there) and --tls-on-connect to a STARTTLS port (a plaintext greeting
# where the handshake is due): the report names the option that fits. Real servers: smtptls
# serve's smtps and smtp listeners, openssl s_server; a scripted one for a TLS alert at once.
# (Postfix's own smtpd in both roles: t0303.) No timing is asserted.
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh" # pf_free_port
need certtool python3 jq openssl
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
cat "$P/server.pem" "$P/int.pem" >"$P/chain.pem"
j() { jq -r "$1" <<<"$out"; }

serve --listen 127.0.0.1:0 --listen 127.0.0.1:0/smtps --self-signed=localhost,127.0.0.1 \
	--maildir "$T/md" || { diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
smtp=$(port smtp) smtps=$(port smtps)

# STARTTLS (any port but 465) to an implicit-TLS port: the server waits for a ClientHello
run "$SMTPTLS" --json probe --level may --timeout 1 "[127.0.0.1]:$smtps"
is "$rc" 6 "STARTTLS to serve's smtps port: exit 6 (silent)"
is "$(j .error)" "no reply within 1000 ms (banner)" "it says where it waited"
like "$(j .hint)" "may expect implicit TLS \\(try --tls-on-connect\\)" "the hint names --tls-on-connect"
st probe --level may --timeout 1 "[127.0.0.1]:$smtps"
like "$out" "hint +the server said nothing: the port may expect implicit TLS \\(try --tls-on-connect\\)" \
	"text: the same hint"
run "$SMTPTLS" --json probe --tls-on-connect --level encrypt --no-system-ca "[127.0.0.1]:$smtps"
is "$rc/$(j .hint)" "0/null" "with --tls-on-connect: met, no hint"

# openssl s_server (-www: it never reads stdin): TLS from the first byte, silent otherwise
oport=$(pf_free_port)
mkfifo "$T/ossl.fifo"
openssl s_server -accept "127.0.0.1:$oport" -cert "$P/chain.pem" -key "$P/server.key" \
	-naccept 2 -www >"$T/ossl.fifo" 2>"$T/ossl.err" </dev/null &
at_exit "kill $! 2>/dev/null"
exec {ofd}<"$T/ossl.fifo"
while read -r -t 30 l <&"$ofd"; do [ "$l" = ACCEPT ] && break; done
run "$SMTPTLS" --json probe --level may --timeout 1 "[127.0.0.1]:$oport"
is "$rc" 6 "STARTTLS to openssl s_server: exit 6"
like "$(j .hint)" "try --tls-on-connect" "the hint names --tls-on-connect"

# a port that answers in TLS at once (an alert where the greeting is due)
mkfifo "$T/h.fifo"
python3 "$TOP_SRCDIR/tests/lib/hostile-smtp.py" tlsfirst "$P/chain.pem" "$P/server.key" >"$T/h.fifo" &
at_exit "kill $! 2>/dev/null"
read -r -t 10 _ hport <"$T/h.fifo"
run "$SMTPTLS" --json probe --level may --timeout 5 "[127.0.0.1]:$hport"
is "$rc" 6 "a TLS record where the greeting is due: exit 6"
is "$(j .error)" "the server sent a TLS record where the SMTP greeting was due" "it says what came"
like "$(j .hint)" "speaks TLS at once: the port expects implicit TLS \\(use --tls-on-connect\\)" \
	"the hint names --tls-on-connect"
is "$(j .level.met)/$(j .tls)" "null/null" "no session: not judged, no TLS"

# the reverse: --tls-on-connect to serve's STARTTLS port, which greets in plaintext
run "$SMTPTLS" --json probe --tls-on-connect --level may --timeout 5 "[127.0.0.1]:$smtp"
is "$rc" 7 "--tls-on-connect to a STARTTLS port: exit 7 (TLS failed)"
like "$(j .error)" "^the server sent an SMTP greeting where the TLS handshake was due: '220 " \
	"it says a greeting came"
like "$(j .hint)" "greets in plaintext: the port expects STARTTLS \\(drop --tls-on-connect\\)" \
	"the hint says to drop --tls-on-connect"
is "$(j .level.met)/$(j .level.reason)" "false/Cannot start TLS: handshake failure" \
	"not met at may: no plaintext to fall back to with implicit TLS"
st probe --tls-on-connect --level may --timeout 5 "[127.0.0.1]:$smtp"
like "$out" "hint +the server greets in plaintext: the port expects STARTTLS \\(drop --tls-on-connect\\)" \
	"text: the same hint"
unlike "$out" "level met|delivered" "and no delivery claimed"
run "$SMTPTLS" --json probe --level may "[127.0.0.1]:$smtp"
is "$rc/$(j .hint)" "0/null" "STARTTLS there: met, no hint"

done_testing
