#!/bin/bash
# t0103: TLSA records and relay_clientcerts lines, checked against openssl's digests
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
need certtool openssl jq
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
spki() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER; }
der() { openssl x509 -in "$1" -outform DER; }
hexof() { od -An -vtx1 | tr -d ' \n'; }
colon() { tr -d ' \n' | sed 's/.*= *//' | tr a-f A-F | sed 's/../&:/g; s/:$//'; }

s311=$(spki "$P/server.pem" | openssl dgst -sha256 -binary | hexof)
st fingerprint --tlsa "$P/server.pem"
is "$out" "_25._tcp.mx.test.example. IN TLSA 3 1 1 $s311" "3 1 1 by default, host from the first DNS name"
st fingerprint --tlsa --host mx1.example.org --host mx2.example.org. --port 465 "$P/server.key"
is "$out" "_465._tcp.mx1.example.org. IN TLSA 3 1 1 $s311
_465._tcp.mx2.example.org. IN TLSA 3 1 1 $s311" "from the private key, before a certificate exists; several hosts; a port"
st fingerprint --tlsa --selector 0 --mtype 1 "$P/server.pem"
is "$out" "_25._tcp.mx.test.example. IN TLSA 3 0 1 $(der "$P/server.pem" | openssl dgst -sha256 -binary | hexof)" "3 0 1: digest of the certificate"
st fingerprint --tlsa --selector Cert --mtype Full "$P/server.pem"
is "$out" "_25._tcp.mx.test.example. IN TLSA 3 0 0 $(der "$P/server.pem" | hexof)" "3 0 0: the whole certificate (RFC 7218 names)"
st fingerprint --tlsa --mtype SHA2-512 --usage DANE-EE "$P/server.pem"
is "$out" "_25._tcp.mx.test.example. IN TLSA 3 1 2 $(spki "$P/server.pem" | openssl dgst -sha512 -binary | hexof)" "3 1 2: SHA-512 of the SPKI"
st fingerprint --tlsa --selector 1 --mtype 0 "$P/server.pem"
is "$out" "_25._tcp.mx.test.example. IN TLSA 3 1 0 $(spki "$P/server.pem" | hexof)" "3 1 0: the whole SPKI"

# chain files: EE usages take the leaf, TA usages the CA certificates
st fingerprint --tlsa "$P/server-chain.pem"
is "$out" "_25._tcp.mx.test.example. IN TLSA 3 1 1 $s311" "DANE-EE on a chain file: the leaf only"
st fingerprint --tlsa --usage 2 --host mx.test.example "$P/server-chain.pem"
is "$out" "_25._tcp.mx.test.example. IN TLSA 2 1 1 $(spki "$P/int.pem" | openssl dgst -sha256 -binary | hexof)" "DANE-TA on a chain file: the intermediate CA"
st fingerprint --tlsa --usage 2 "$P/server-chain.pem"
is "$out" "_25._tcp.mx.test.example. IN TLSA 2 1 1 $(spki "$P/int.pem" | openssl dgst -sha256 -binary | hexof)" "DANE-TA without --host: the owner name comes from the file's leaf"
st fingerprint --tlsa --usage 2 "$P/bundle.pem"
is "$rc" 3 "DANE-TA on a CA bundle without --host: exit 3"
like "$err" "no host name for TLSA records" "DANE-TA on a CA bundle without --host: says so"
st fingerprint --tlsa --usage 2 --host mx.test.example "$P/server.pem"
is "$out" "" "DANE-TA on a leaf alone: no record"
is "$rc" 3 "DANE-TA on a leaf alone: exit 3"
like "$err" "'$P/server.pem': no CA certificate \(CA:TRUE\) for TLSA usage 2" "DANE-TA on a leaf alone: says why"

# a broken leaf must not let the next certificate stand in for it
{ head -n 3 "$P/server.pem"; cat "$P/int.pem"; } >"$P/broken-leaf.pem"
st fingerprint --tlsa --host mx.test.example "$P/broken-leaf.pem"
is "$out" "" "DANE-EE on a chain whose leaf is broken: no record for the CA's key"
is "$rc" 3 "DANE-EE on a chain whose leaf is broken: exit 3"
st --json fingerprint "$P/broken-leaf.pem"
is "$(jq -r 'select(.fingerprint) | .index' <<<"$out")" 2 "a broken block keeps its place in the numbering"

st fingerprint --tlsa "$P/server.key"
is "$rc" 3 "a key without --host: exit 3"
like "$err" "'$P/server.key': no host name for TLSA records in this private key: give --host" "a key without --host: says so"
st fingerprint --tlsa --selector 0 --host x.example "$P/server.key"
is "$rc" 3 "selector 0 for a key: exit 3"
like "$err" "selector 0 \(Cert\) needs a certificate" "selector 0 for a key: says so"

# a CA first (a CA file given by mistake, or a chain in the wrong order): no DANE-EE record
cat "$P/int.pem" "$P/server.pem" >"$P/reversed.pem"
st fingerprint --tlsa --host mx.test.example "$P/reversed.pem"
is "$out" "" "DANE-EE on a chain in the wrong order: no record for the CA's key"
is "$rc" 3 "DANE-EE on a chain in the wrong order: exit 3"
like "$err" "'$P/reversed.pem': its first certificate is a CA certificate \(CA:TRUE\), not a server's" "DANE-EE on a chain in the wrong order: says why"

# Postfix's one-file layout: key, certificate, chain
cat "$P/server.key" "$P/server.pem" "$P/int.pem" >"$P/combined.pem"
st fingerprint --tlsa "$P/combined.pem"
is "$out" "_25._tcp.mx.test.example. IN TLSA 3 1 1 $s311" "key + certificate + chain: the certificate is the leaf, its name the owner"
st fingerprint --tlsa --selector 0 --mtype 1 "$P/combined.pem"
is "$out" "_25._tcp.mx.test.example. IN TLSA 3 0 1 $(der "$P/server.pem" | openssl dgst -sha256 -binary | hexof)" "key + certificate + chain: selector 0 takes the certificate"

# a NUL inside a DNS name is shown, and never taken as the owner name
printf '[x]\nsubjectAltName = DER:301c821a%s\n' "$(printf 'good.example\0.evil.example' | od -An -vtx1 | tr -d ' \n')" >"$P/nul.ext"
openssl x509 -req -in <(openssl req -new -key "$P/server.key" -subj /CN=nul -out /dev/stdout 2>/dev/null) \
	-CA "$P/int.pem" -CAkey "$P/int.key" -set_serial 99 -days 30 -extfile "$P/nul.ext" -extensions x -out "$P/nul.pem" 2>/dev/null
st --json fingerprint "$P/nul.pem"
is "$(jq -r '.san[0]' <<<"$out")" "DNS:good.example?.evil.example" "a NUL in a DNS name is shown as ?, the name is not cut"
st fingerprint --tlsa "$P/nul.pem"
is "$rc" 3 "a name with a NUL is never a TLSA owner: exit 3 without --host"
unlike "$out" "good.example\. IN TLSA" "a name with a NUL is never a TLSA owner"

st --json fingerprint --tlsa --host a.example "$P/server.pem"
is "$(jq -r '.tlsa[0]' <<<"$out")" "_25._tcp.a.example. IN TLSA 3 1 1 $s311" "JSON carries the TLSA records"

for bad in "--usage 4" "--selector 2" "--mtype 3" "--usage DANE" "--port 0" "--port 70000" "--host bad;name"; do
	st fingerprint --tlsa $bad "$P/server.pem"
	is "$rc" 2 "--tlsa $bad: usage status"
done
st fingerprint --host x.example "$P/server.pem"
is "$rc" 2 "--host without --tlsa: usage status"
st fingerprint --tlsa --brief "$P/server.pem"
is "$rc" 2 "--tlsa with --brief: usage status"

# relay_clientcerts
cfp=$(openssl x509 -in "$P/client.pem" -noout -fingerprint -sha256 | sed 's/^.*Fingerprint=//')
cpk=$(spki "$P/client.pem" | openssl dgst -sha256 | colon)
st fingerprint --relay-clientcerts "$P/client.pem"
is "$out" "$cfp client.test.example" "relay_clientcerts: certificate fingerprint and CN"
st fingerprint --relay-clientcerts --pubkey "$P/client.pem"
is "$out" "$cpk client.test.example" "relay_clientcerts --pubkey: public-key fingerprint"
st fingerprint --relay-clientcerts="laptop of alice" -d sha1 "$P/client.pem"
is "$out" "$(openssl x509 -in "$P/client.pem" -noout -fingerprint -sha1 | sed 's/^.*Fingerprint=//') laptop of alice" "relay_clientcerts=VALUE, sha1"
cat "$P/client.pem" "$P/int.pem" >"$P/client-chain.pem"
st fingerprint --relay-clientcerts "$P/client-chain.pem"
is "$out" "$cfp client.test.example" "relay_clientcerts on a chain file: the CA certificate is left out"
st fingerprint --relay-clientcerts "$P/client.key"
is "$out" "$cpk $P/client.key" "relay_clientcerts for a key: its public-key fingerprint, named by the file"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/ss.key" -out "$P/ss.pem" \
	-subj /CN=selfsigned-client.test.example -days 30 2>/dev/null
openssl x509 -in "$P/ss.pem" -noout -text | grep -q 'CA:TRUE'
ok $? "openssl req -x509 made a CA:TRUE self-signed certificate"
cat "$P/ss.pem" "$P/client.pem" >"$P/clients.pem"
st fingerprint --relay-clientcerts "$P/clients.pem"
is "$out" "$(openssl x509 -in "$P/ss.pem" -noout -fingerprint -sha256 | sed 's/^.*Fingerprint=//') selfsigned-client.test.example
$cfp client.test.example" "relay_clientcerts: a self-signed CA:TRUE client certificate and another client, one line each"
cat "$P/client.key" "$P/client.pem" "$P/int.pem" >"$P/client-combined.pem"
st fingerprint --relay-clientcerts --pubkey "$P/client-combined.pem"
is "$out" "$cpk client.test.example" "relay_clientcerts on key + certificate + chain: one line, for the certificate"
st --json fingerprint --relay-clientcerts "$P/client.pem"
is "$(jq -r .relay_clientcerts <<<"$out")" "$cfp client.test.example" "JSON carries the relay_clientcerts line"
st fingerprint --relay-clientcerts= "$P/client.pem"
is "$rc" 2 "an empty relay_clientcerts value: usage status"

done_testing
