#!/bin/bash
# t0101: fingerprint inputs (stdin, CRLF, openssl extras) and the text and JSON outputs
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
need certtool openssl jq
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^.*Fingerprint=//'; }
server_fp=$(fp "$P/server.pem")

run "$SMTPTLS" fingerprint -b - <"$P/server.pem"
is "$out" "$server_fp  -" "- reads standard input"
run "$SMTPTLS" fingerprint -b - < <(openssl x509 -in "$P/server.pem" -outform DER)
is "$out" "$server_fp  -" "- reads DER from standard input"

sed 's/$/\r/' "$P/server-chain.pem" >"$P/crlf.pem"
st fingerprint -b "$P/crlf.pem"
is "$(head -1 <<<"$out")" "$server_fp  $P/crlf.pem" "CRLF line endings"
is "$(grep -c . <<<"$out")" 2 "CRLF chain: both certificates"

{ echo "Bag Attributes"; echo "    friendlyName: server"; echo "subject=/CN=mx.test.example"; cat "$P/server.pem"; } >"$P/bag.pem"
st fingerprint -b "$P/bag.pem"
is "$out" "$server_fp  $P/bag.pem" "text before the PEM block (openssl pkcs12 output) is skipped"

openssl x509 -in "$P/server.pem" -trustout -addtrust serverAuth -out "$P/trusted.pem"
grep -q 'BEGIN TRUSTED CERTIFICATE' "$P/trusted.pem"
ok $? "openssl wrote a TRUSTED CERTIFICATE block"
st fingerprint -b "$P/trusted.pem"
is "$out" "$server_fp  $P/trusted.pem" "TRUSTED CERTIFICATE: the certificate without OpenSSL's trust settings"

cat "$P/server.key" "$P/server.pem" "$P/int.pem" >"$P/combined.pem"
st --json fingerprint "$P/combined.pem"
is "$(jq -r .type <<<"$out" | tr '\n' ,)" "private key,certificate,certificate," "key + chain file (smtpd_tls_chain_files): three items in order"
is "$(jq -r .pkey_fingerprint <<<"$out" | sed -n 1p)" "$(jq -r .pkey_fingerprint <<<"$out" | sed -n 2p)" "the key and its certificate share the public-key fingerprint"
is "$(jq -r .line <<<"$out" | tr '\n' ,)" "$(grep -n -- '-----BEGIN' "$P/combined.pem" | cut -d: -f1 | tr '\n' ,)" "each item knows its line"
is "$(jq -r .index <<<"$out" | tr '\n' ,)" "1,2,3," "each item knows its index"

# JSON fields
st fingerprint --json "$P/server.pem"
for f in file index line type subject issuer serial not_before not_after cn san ca key signature_algorithm fingerprint digest pkey_fingerprint; do
	is "$(jq "has(\"$f\")" <<<"$out")" true "JSON has $f"
done
is "$(jq -r .subject <<<"$out")" "CN=mx.test.example" "JSON subject (RFC 4514)"
is "$(jq -r .issuer <<<"$out")" "CN=smtptls Test Intermediate CA,O=smtptls tests" "JSON issuer"
is "$(jq -r '.san|join(",")' <<<"$out")" "DNS:mx.test.example,DNS:localhost,IP:127.0.0.1,IP:::1" "JSON san, in certificate order"
is "$(jq -r .fingerprint <<<"$out")" "$server_fp" "JSON fingerprint"
is "$(jq -r .digest <<<"$out")" "sha256" "JSON digest defaults to sha256"
is "$(jq -c .key <<<"$out")" '{"algorithm":"ECDSA","bits":256,"curve":"SECP256R1"}' "JSON key"
is "$(jq -r .ca <<<"$out")" "false" "JSON ca false for a leaf"
st fingerprint --json "$P/ca.pem"
is "$(jq -r .ca <<<"$out")" "true" "JSON ca true for the root"
is "$(jq -c .key <<<"$out")" '{"algorithm":"RSA","bits":2048,"curve":null}' "JSON RSA key"
st fingerprint --json -d md5 "$P/server.key"
is "$(jq -r '[.type, .fingerprint, .subject, .digest]|@csv' <<<"$out")" '"private key",,,"md5"' "JSON of a key: no certificate fields, digest md5"
is "$(jq -r .pkey_fingerprint <<<"$out" | tr -cd : | wc -c)" 15 "md5 public-key fingerprint has 16 pairs"

# text output
st fingerprint "$P/server.pem"
for f in subject issuer serial not_before not_after key signature san fingerprint pkey_fingerprint digest; do
	like "$out" "^$f +[^ ]" "text shows $f"
done
like "$out" "^fingerprint +$server_fp$" "text fingerprint"
st fingerprint "$P/server.pem" "$P/ca.pem"
is "$(grep -c '^$' <<<"$out")" 1 "two items: one blank line between them"

# names: printable UTF-8 is kept, terminal controls are not
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/u.key" -out "$P/u.pem" -utf8 \
	-subj "/CN=mx.example/O=M$(printf '\303\274')ller GmbH/OU=evil$(printf '\033')[31mred" -days 3 2>/dev/null
st fingerprint "$P/u.pem"
like "$out" "^subject +OU=evil\?\[31mred,O=M$(printf '\303\274')ller GmbH,CN=mx.example$" "text: UTF-8 kept, an escape byte shown as ?"
unlike "$out" $'\033' "text: no escape byte reaches the terminal"
st --json fingerprint "$P/u.pem"
is "$(jq -r .subject <<<"$out")" "OU=evil?[31mred,O=M$(printf '\303\274')ller GmbH,CN=mx.example" "JSON: the same subject"

# many files in one process, in order
for i in $(seq 1 50); do cp "$P/server.pem" "$P/s$i.pem"; done
st fingerprint -b "$P"/s{1..50}.pem
is "$(grep -c "^$server_fp  " <<<"$out")" 50 "50 files, 50 lines"
is "$(sed -n '50s/.*  //p' <<<"$out")" "$P/s50.pem" "files are handled in order"

done_testing
