#!/bin/bash
# t0200: verify's verdicts agree with openssl verify and certtool --verify on the same inputs
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
need certtool openssl jq
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
cd "$P" || exit 1

# openssl verify reads only the first certificate of a file: intermediates go in -untrusted.
# ossl ARGS... -> "OK", or every "CODE@DEPTH" openssl reports, sorted
ossl() {
	local o
	o=$(openssl verify "$@" 2>&1)
	if grep -q ': OK$' <<<"$o"; then echo OK; else
		sed -n 's/^error \([0-9]*\) at \([0-9]*\) depth.*/\1@\2/p' <<<"$o" | sort -u | tr '\n' ' ' | sed 's/ $//'; fi
}
# ours ARGS... -> "OK", or every "CODE@DEPTH" of our errors that have an OpenSSL code, sorted
ours() {
	run "$SMTPTLS" --json verify "$@"
	if [ "$(jq -r .status <<<"$out")" = ok ]; then echo OK; else
		jq -r '.errors[] | select(.openssl_code != null) | "\(.openssl_code)@\(.depth)"' <<<"$out" | sort -u | tr '\n' ' ' | sed 's/ $//'; fi
}
# gtls ARGS... -> "OK" or "FAIL" from certtool --verify
gtls() {
	if certtool --verify "$@" 2>&1 | grep -q 'Chain verification output: Verified'; then echo OK; else echo FAIL; fi
}
# same DESC EXPECTED OUR-ARGS -- OPENSSL-ARGS: both give EXPECTED
same() {
	local desc=$1 want=$2 a=() b=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do a+=("$1"); shift; done
	shift
	b=("$@")
	is "$(ours "${a[@]}")" "$want" "$desc: smtptls"
	is "$(ossl "${b[@]}")" "$want" "$desc: openssl verify"
}
NOCA=(-no-CAfile -no-CApath -no-CAstore)

same "chain file, root trusted" OK --ca-file ca.pem server-chain.pem -- -CAfile ca.pem -untrusted server-chain.pem server.pem
is "$(gtls --load-ca-certificate ca.pem --infile server-chain.pem)" OK "chain file, root trusted: certtool"
same "leaf alone, root trusted" 20@0 --ca-file ca.pem server.pem -- -CAfile ca.pem server.pem
is "$(gtls --load-ca-certificate ca.pem --infile server.pem)" FAIL "leaf alone, root trusted: certtool"
same "leaf + --untrusted intermediate" OK --ca-file ca.pem --untrusted int.pem server.pem -- -CAfile ca.pem -untrusted int.pem server.pem
same "RSA leaf + --untrusted intermediate" OK --ca-file ca.pem --untrusted int.pem server-rsa.pem -- -CAfile ca.pem -untrusted int.pem server-rsa.pem
same "nothing trusted, intermediate given" 20@1 --no-system-ca server-chain.pem -- "${NOCA[@]}" -untrusted int.pem server.pem
cat server-chain.pem ca.pem >full.pem
same "a chain with its own root, nothing trusted" 19@2 --no-system-ca full.pem -- "${NOCA[@]}" -untrusted full.pem server.pem
is "$(gtls --infile full.pem)" FAIL "a chain with its own root, nothing trusted: certtool"
same "a chain with its own root, the root trusted" OK --ca-file ca.pem full.pem -- -CAfile ca.pem -untrusted full.pem server.pem
same "self-signed leaf" 18@0 --no-system-ca selfsigned.pem -- "${NOCA[@]}" selfsigned.pem
same "self-signed leaf, trusted as itself" OK --ca-file selfsigned.pem selfsigned.pem -- -CAfile selfsigned.pem selfsigned.pem
same "intermediate trusted, root missing" 2@1 --ca-file int.pem server.pem -- -CAfile int.pem server.pem
same "intermediate trusted, --partial-chain" OK --ca-file int.pem --partial-chain server.pem -- -CAfile int.pem -partial_chain server.pem
is "$(gtls --load-ca-certificate int.pem --infile server.pem)" OK "intermediate trusted: certtool accepts a partial chain (GnuTLS always does)"
same "expired leaf" 10@0 --ca-file ca.pem --untrusted int.pem expired.pem -- -CAfile ca.pem -untrusted int.pem expired.pem
cat expired.pem int.pem >expired-chain.pem
is "$(gtls --load-ca-certificate ca.pem --infile expired-chain.pem)" FAIL "expired leaf: certtool"
same "not yet valid leaf" 9@0 --ca-file ca.pem --untrusted int.pem future.pem -- -CAfile ca.pem -untrusted int.pem future.pem
# before its CAs were valid: we name both CAs; openssl reports the first it checks, the root
is "$(ours --ca-file ca.pem --untrusted int.pem --at-time 2020-06-01 expired.pem)" "9@1 9@2" "expired leaf as of 2020-06-01, before its CAs were valid: smtptls"
is "$(ossl -CAfile ca.pem -untrusted int.pem -attime "$(date -u -d 2020-06-01 +%s)" expired.pem)" "9@2" "expired leaf as of 2020-06-01: openssl verify names the root"
is "$(ours --ca-file ca.pem --untrusted int.pem --at-time @1591000000 expired.pem)" "9@1 9@2" "the same as of @1591000000"
same "not-yet-valid leaf as of 2098-06-01T12:00:00Z" OK --ca-file ca.pem --untrusted int.pem --at-time 2098-06-01T12:00:00Z future.pem -- -CAfile ca.pem -untrusted int.pem -attime "$(date -u -d 2098-06-01T12:00:00Z +%s)" future.pem
same "client certificate as a server" 26@0 --ca-file ca.pem --untrusted int.pem --purpose server client.pem -- -CAfile ca.pem -untrusted int.pem -purpose sslserver client.pem
same "client certificate as a client" OK --ca-file ca.pem --untrusted int.pem --purpose client client.pem -- -CAfile ca.pem -untrusted int.pem -purpose sslclient client.pem
same "server certificate as a client" 26@0 --ca-file ca.pem --untrusted int.pem --purpose client server.pem -- -CAfile ca.pem -untrusted int.pem -purpose sslclient server.pem
same "server certificate as a server" OK --ca-file ca.pem --untrusted int.pem --purpose server server.pem -- -CAfile ca.pem -untrusted int.pem -purpose sslserver server.pem
same "wrong name" 62@0 --ca-file ca.pem --untrusted int.pem --hostname mx.test.example wrongname.pem -- -CAfile ca.pem -untrusted int.pem -verify_hostname mx.test.example wrongname.pem
same "right name" OK --ca-file ca.pem --untrusted int.pem --hostname mx.test.example server.pem -- -CAfile ca.pem -untrusted int.pem -verify_hostname mx.test.example server.pem

# a signature that does not verify: flip a bit of the leaf's signature
openssl x509 -in server.pem -outform DER -out server.der
size=$(stat -c %s server.der)
printf '%s' "$(xxd -p -s $((size - 1)) -l 1 server.der 2>/dev/null || od -An -tx1 -j $((size - 1)) -N1 server.der | tr -d ' ')" >/dev/null
python3 -c 'import sys; d=bytearray(open(sys.argv[1],"rb").read()); d[-2]^=1; open(sys.argv[2],"wb").write(d)' server.der bad-sig.der
openssl x509 -inform DER -in bad-sig.der -out bad-sig.pem
same "bad signature" 7@0 --ca-file ca.pem --untrusted int.pem bad-sig.pem -- -CAfile ca.pem -untrusted int.pem bad-sig.pem

# a leaf issued by a leaf: the issuer is no CA, and the intermediate's path length is exceeded
printf 'cn = "leaf2.test.example"\nserial = 77\nactivation_date = "2024-01-01 00:00:00"\nexpiration_date = "2099-01-01 00:00:00"\ntls_www_server\n' >l2.tmpl
certtool --generate-privkey --key-type ecdsa --outfile l2.key 2>/dev/null
certtool --generate-certificate --load-privkey l2.key --load-ca-certificate server.pem \
	--load-ca-privkey server.key --template l2.tmpl 2>/dev/null | sed -n '/^-----BEGIN/,/^-----END/p' >l2.pem
cat l2.pem server-chain.pem >l2-chain.pem
is "$(ours --ca-file ca.pem l2-chain.pem)" "25@2 79@1" "issued by a certificate that is not a CA: smtptls"
is "$(ossl -CAfile ca.pem -untrusted server-chain.pem l2.pem)" "25@2 32@1 79@1" "issued by a certificate that is not a CA: openssl verify"
# openssl also reports 32 (key usage without keyCertSign) at depth 1: the issuer here has
# no key usage extension at all, which GnuTLS does not count against it; code 79 says it is no CA
is "$(gtls --load-ca-certificate ca.pem --infile l2-chain.pem)" FAIL "issued by a non-CA: certtool"

# name constraints: an intermediate allowed only allowed.example
printf 'cn = "NC CA"\nca\ncert_signing_key\nnc_permit_dns = "allowed.example"\nserial = 500\nactivation_date = "2024-01-01 00:00:00"\nexpiration_date = "2099-01-01 00:00:00"\n' >nc.tmpl
certtool --generate-privkey --key-type ecdsa --outfile nc.key 2>/dev/null
certtool --generate-certificate --load-privkey nc.key --load-ca-certificate ca.pem --load-ca-privkey ca.key \
	--template nc.tmpl 2>/dev/null | sed -n '/^-----BEGIN/,/^-----END/p' >nc.pem
for n in other allowed; do
	printf 'cn = "mx.%s.example"\ndns_name = "mx.%s.example"\nserial = 50%d\ntls_www_server\nactivation_date = "2024-01-01 00:00:00"\nexpiration_date = "2099-01-01 00:00:00"\n' \
		"$n" "$n" "${#n}" >"nc-$n.tmpl"
	certtool --generate-privkey --key-type ecdsa --outfile "nc-$n.key" 2>/dev/null
	certtool --generate-certificate --load-privkey "nc-$n.key" --load-ca-certificate nc.pem --load-ca-privkey nc.key \
		--template "nc-$n.tmpl" 2>/dev/null | sed -n '/^-----BEGIN/,/^-----END/p' >"nc-$n.pem"
done
same "a name outside the issuer's name constraints" 47@0 --ca-file ca.pem --untrusted nc.pem nc-other.pem -- -CAfile ca.pem -untrusted nc.pem nc-other.pem
same "a name inside the issuer's name constraints" OK --ca-file ca.pem --untrusted nc.pem nc-allowed.pem -- -CAfile ca.pem -untrusted nc.pem nc-allowed.pem

# a SHA-1 signature: GnuTLS refuses it, as OpenSSL does at security level 2 (Debian's
# default for TLS, so what Postfix's TLS does); plain openssl verify applies no level
printf 'cn = "sha1.test.example"\nserial = 88\nactivation_date = "2024-01-01 00:00:00"\nexpiration_date = "2099-01-01 00:00:00"\ntls_www_server\n' >s1.tmpl
certtool --generate-privkey --key-type ecdsa --outfile s1.key 2>/dev/null
certtool --generate-certificate --hash SHA1 --load-privkey s1.key --load-ca-certificate int.pem \
	--load-ca-privkey int.key --template s1.tmpl 2>/dev/null | sed -n '/^-----BEGIN/,/^-----END/p' >s1.pem
same "SHA-1 signature" 68@0 --ca-file ca.pem --untrusted int.pem s1.pem -- -auth_level 2 -CAfile ca.pem -untrusted int.pem s1.pem
is "$(ossl -CAfile ca.pem -untrusted int.pem s1.pem)" OK "SHA-1 signature: openssl verify without a security level accepts it (the difference is by design)"

# a leaf that only claims a trusted root's name: another key signed it
printf 'cn = "smtptls Test Root CA"\norganization = "smtptls tests"\nca\ncert_signing_key\nserial = 1\nactivation_date = "2024-01-01 00:00:00"\nexpiration_date = "2099-01-01 00:00:00"\n' >fake.tmpl
certtool --generate-privkey --key-type ecdsa --outfile fake.key 2>/dev/null
certtool --generate-self-signed --load-privkey fake.key --template fake.tmpl 2>/dev/null | sed -n '/^-----BEGIN/,/^-----END/p' >fake.pem
certtool --generate-certificate --load-privkey server.key --load-ca-certificate fake.pem --load-ca-privkey fake.key \
	--template nc-other.tmpl 2>/dev/null | sed -n '/^-----BEGIN/,/^-----END/p' >forged.pem
same "issued by an impostor with the trusted root's name" 20@0 --ca-file ca.pem forged.pem -- -CAfile ca.pem forged.pem
cat forged.pem fake.pem >forged-chain.pem
same "the impostor root sent along" 19@1 --ca-file ca.pem forged-chain.pem -- -CAfile ca.pem -untrusted forged-chain.pem forged.pem
st verify --ca-file ca.pem --hostname mx.other.example forged.pem
unlike "$out" "Verified|Trusted" "an impostor's chain is never Trusted"

# a version 1 certificate (no extensions, so no CA:TRUE) issuing another
openssl req -new -key s1.key -subj "/CN=v1 issuer" 2>/dev/null | openssl x509 -req -CA int.pem -CAkey int.key -set_serial 900 -days 30 -out v1ca.pem 2>/dev/null
openssl req -new -key l2.key -subj "/CN=under-v1.test.example" 2>/dev/null | openssl x509 -req -CA v1ca.pem -CAkey s1.key -set_serial 901 -days 30 -out uv1.pem 2>/dev/null
cat v1ca.pem int.pem >v1chain.pem
same "issued by a version 1 certificate" "25@2 79@1" --ca-file ca.pem --untrusted v1chain.pem uv1.pem -- -CAfile ca.pem -untrusted v1chain.pem uv1.pem

# many other names before the DNS name: the CN must still not count
{
	printf '[x]\nsubjectAltName = '
	for i in $(seq 1 260); do printf 'IP:10.0.%d.%d,' $((i / 250)) $((i % 250)); done
	printf 'DNS:other.test.example\n'
} >ips.ext
openssl x509 -req -in <(openssl req -new -key server.key -subj /CN=mx.test.example 2>/dev/null) -CA int.pem \
	-CAkey int.key -set_serial 600 -days 30 -extfile ips.ext -extensions x -out ips.pem 2>/dev/null
same "a DNS name after 260 IP names: the CN does not count" 62@0 --ca-file ca.pem --untrusted int.pem --hostname mx.test.example ips.pem -- -CAfile ca.pem -untrusted int.pem -verify_hostname mx.test.example ips.pem

# certtool --verify on more of the same inputs (a chain file with its intermediate)
for c in selfsigned wrongname client bad-sig s1 nc-other nc-allowed future; do
	[ "$c" = selfsigned ] && cat selfsigned.pem >"$c-ct.pem" || cat "$c.pem" int.pem nc.pem >"$c-ct.pem"
done
is "$(gtls --load-ca-certificate ca.pem --infile selfsigned-ct.pem)" FAIL "self-signed leaf: certtool"
is "$(gtls --load-ca-certificate ca.pem --infile wrongname-ct.pem --verify-hostname mx.test.example)" FAIL "wrong name: certtool"
is "$(gtls --load-ca-certificate ca.pem --infile client-ct.pem --verify-purpose 1.3.6.1.5.5.7.3.1)" FAIL "client certificate as a server: certtool"
is "$(gtls --load-ca-certificate ca.pem --infile client-ct.pem --verify-purpose 1.3.6.1.5.5.7.3.2)" OK "client certificate as a client: certtool"
is "$(gtls --load-ca-certificate ca.pem --infile bad-sig-ct.pem)" FAIL "bad signature: certtool"
is "$(gtls --load-ca-certificate ca.pem --infile s1-ct.pem)" FAIL "SHA-1 signature: certtool refuses it too"
is "$(gtls --load-ca-certificate ca.pem --infile nc-other-ct.pem)" FAIL "outside the name constraints: certtool"
is "$(gtls --load-ca-certificate ca.pem --infile nc-allowed-ct.pem)" OK "inside the name constraints: certtool"
is "$(gtls --load-ca-certificate ca.pem --infile future-ct.pem)" FAIL "not yet valid: certtool"

# exit statuses and the status words
st verify --ca-file ca.pem --hostname mx.test.example server-chain.pem
is "$rc" 0 "ok: exit 0"
like "$out" "^server-chain.pem: OK \(Verified, name 'mx.test.example' matched\)" "ok: Verified with the name"
st verify --ca-file ca.pem server-chain.pem
like "$out" "^server-chain.pem: OK \(Trusted\)" "no name asked: Trusted"
st verify --ca-file ca.pem --hostname other.test.example server-chain.pem
is "$rc" 1 "name mismatch: exit 1"
like "$out" "\(Trusted\)" "name mismatch on a trusted chain: Trusted, as Postfix documents it"
like "$out" "error: depth 0: hostname mismatch: .* \(openssl verify code 62\)" "name mismatch: plain words and the OpenSSL code"
st verify --no-system-ca full.pem
like "$out" "self-signed certificate in certificate chain: .* \(openssl verify code 19\)" "code 19 in plain words"
st verify --ca-file ca.pem server-chain.pem expired-chain.pem selfsigned.pem
is "$rc" 1 "several files: the worst status"
is "$(grep -c '^[^ ].*: \(OK\|FAIL\|WARN\)' <<<"$out")" 3 "several files: each judged on its own"

# monitoring thresholds
st verify --ca-file ca.pem --at-time 2099-12-01 --warn-days 60 server-chain.pem
is "$rc" 11 "--warn-days: exit 11"
like "$out" "warning: depth 0: certificate expires within 60 days" "--warn-days: says so"
st verify --ca-file ca.pem --at-time 2099-12-01 --warn-days 60 --crit-days 40 server-chain.pem
is "$rc" 1 "--crit-days: exit 1"
st verify --ca-file ca.pem --at-time 2099-10-01 --warn-days 60 --crit-days 40 server-chain.pem
is "$rc" 0 "outside the thresholds: exit 0"

# --key
st verify --ca-file ca.pem --key server.key server-chain.pem
is "$rc" 0 "--key: the right key, mode 600: exit 0"
st verify --ca-file ca.pem --key server-rsa.key server-chain.pem
is "$rc" 1 "--key: another key: exit 1"
like "$out" "the private key in 'server-rsa.key' does not belong to the certificate" "--key: another key: says so"
chmod 644 server.key
st verify --ca-file ca.pem --key server.key server-chain.pem
is "$rc" 11 "--key: mode 644: a warning, exit 11"
like "$out" "'server.key' is readable by group and others \(mode 644\)" "--key: mode 644: says so"

# JSON
st --json verify --ca-file ca.pem --hostname mx.test.example server-chain.pem
for f in file status postfix_status errors warnings chain names matched_name; do
	is "$(jq "has(\"$f\")" <<<"$out")" true "JSON has $f"
done
for f in depth subject issuer not_before not_after fingerprint pkey_fingerprint source revocation; do
	is "$(jq ".chain[0] | has(\"$f\")" <<<"$out")" true "JSON chain entries have $f"
done
is "$(jq -r '.chain[0].fingerprint' <<<"$out")" "$(openssl x509 -in server.pem -noout -fingerprint -sha256 | sed 's/.*=//')" "JSON chain fingerprint as openssl's"
is "$(jq -r '[.chain[].source] | join(",")' <<<"$out")" "file,file,trust" "JSON chain sources"
st --json verify --ca-file ca.pem expired-chain.pem
is "$(jq -c '.errors[0] | [.code, .openssl_code, .depth]' <<<"$out")" '["expired",10,0]' "JSON error: code, openssl_code, depth"
like "$(jq -r '.errors[0].message' <<<"$out")" "certificate has expired: not after 2021-01-01T00:00:00Z" "JSON error: message"

done_testing
