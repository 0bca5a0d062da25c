#!/bin/bash
# t0100: fingerprint agrees byte for byte with openssl on every certificate and digest
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
need certtool openssl
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki

# hex digest on stdin -> Postfix form (upper case, colon separated)
postfix_form() { tr -d ' \n' | sed 's/.*= *//' | tr a-f A-F | sed 's/../&:/g; s/:$//'; }

certs="ca int server server-rsa client expired future wrongname selfsigned"
for name in $certs; do
	for d in md5 sha1 sha224 sha256 sha384 sha512; do
		want=$(openssl x509 -in "$P/$name.pem" -noout -fingerprint -"$d" | sed 's/^.*Fingerprint=//')
		st fingerprint --brief --digest="$d" "$P/$name.pem"
		is "$out" "$want  $P/$name.pem" "$name: $d certificate fingerprint as openssl x509 -fingerprint"
	done
	for d in md5 sha1 sha256; do
		want=$(openssl x509 -in "$P/$name.pem" -noout -pubkey | openssl pkey -pubin -outform DER |
			openssl dgst -"$d" | postfix_form)
		st fingerprint --brief --pubkey -d "$d" "$P/$name.pem"
		is "$out" "$want  $P/$name.pem" "$name: $d public-key fingerprint as the digest of openssl's SPKI"
		st fingerprint --brief -d "$d" "$P/$name.key"
		is "$out" "$want  $P/$name.key" "$name: the private key gives the same public-key fingerprint"
	done
	# the other fields, as openssl reads them
	st --json fingerprint "$P/$name.pem"
	serial=$(openssl x509 -in "$P/$name.pem" -noout -serial | sed 's/^serial=//')
	is "$(jq -r .serial <<<"$out")" "$serial" "$name: serial as openssl prints it"
	end=$(date -u -d "$(openssl x509 -in "$P/$name.pem" -noout -enddate | sed 's/^notAfter=//')" +%Y-%m-%dT%H:%M:%SZ)
	is "$(jq -r .not_after <<<"$out")" "$end" "$name: not_after as openssl reads it"
	start=$(date -u -d "$(openssl x509 -in "$P/$name.pem" -noout -startdate | sed 's/^notBefore=//')" +%Y-%m-%dT%H:%M:%SZ)
	is "$(jq -r .not_before <<<"$out")" "$start" "$name: not_before as openssl reads it"
	cn=$(openssl x509 -in "$P/$name.pem" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= //p')
	is "$(jq -r .cn <<<"$out")" "$cn" "$name: CN as openssl reads it"
done

# a certificate request and a public key file: the same SPKI
openssl req -new -key "$P/server.key" -subj /CN=mx.test.example -out "$P/server.csr" 2>/dev/null
openssl pkey -in "$P/server.key" -pubout -out "$P/server.pub"
want=$(openssl pkey -in "$P/server.key" -pubout -outform DER | openssl dgst -sha256 | postfix_form)
st fingerprint -b "$P/server.csr" "$P/server.pub"
is "$out" "$want  $P/server.csr
$want  $P/server.pub" "a CSR and a public key give the key's fingerprint"

# DER input, as openssl writes it
openssl x509 -in "$P/server.pem" -outform DER -out "$P/server.der"
openssl pkey -in "$P/server-rsa.key" -outform DER -out "$P/server-rsa.key.der"
want=$(openssl x509 -in "$P/server.der" -inform DER -noout -fingerprint -sha256 | sed 's/^.*Fingerprint=//')
st fingerprint -b "$P/server.der"
is "$out" "$want  $P/server.der" "a DER certificate as openssl reads it"
want=$(openssl pkey -in "$P/server-rsa.key.der" -inform DER -pubout -outform DER | openssl dgst -sha256 | postfix_form)
st fingerprint -b "$P/server-rsa.key.der"
is "$out" "$want  $P/server-rsa.key.der" "a DER private key as openssl reads it"

# traditional key forms
openssl pkey -in "$P/server-rsa.key" -traditional -out "$P/rsa-trad.key" 2>/dev/null
head -1 "$P/rsa-trad.key" | grep -q 'BEGIN RSA PRIVATE KEY'
ok $? "openssl wrote a traditional RSA key"
st fingerprint -b -d sha1 "$P/rsa-trad.key"
want=$(openssl pkey -in "$P/server-rsa.key" -pubout -outform DER | openssl dgst -sha1 | postfix_form)
is "$out" "$want  $P/rsa-trad.key" "an RSA PRIVATE KEY block"
openssl ecparam -name prime256v1 -genkey -out "$P/ecparam.key" 2>/dev/null
want=$(openssl pkey -in "$P/ecparam.key" -pubout -outform DER | openssl dgst -sha256 | postfix_form)
st fingerprint -b "$P/ecparam.key"
is "$out" "$want  $P/ecparam.key" "EC PARAMETERS then EC PRIVATE KEY: one key, the parameters skipped"
is "$rc" 0 "EC PARAMETERS are not an error"

# Ed25519
openssl req -x509 -newkey ed25519 -nodes -keyout "$P/ed.key" -out "$P/ed.pem" -subj /CN=ed.test.example -days 30 2>/dev/null
want=$(openssl x509 -in "$P/ed.pem" -noout -fingerprint -sha256 | sed 's/^.*Fingerprint=//')
st fingerprint -b "$P/ed.pem"
is "$out" "$want  $P/ed.pem" "an Ed25519 certificate"
st --json fingerprint "$P/ed.pem"
is "$(jq -r .key.algorithm <<<"$out")" "Ed25519" "an Ed25519 key is named"

# a whole CA bundle: one line per certificate, each as openssl computes it
for i in $(seq 1 20); do cat "$P/bundle.pem" "$P/server-chain.pem"; done >"$P/big.pem"
st fingerprint -b "$P/big.pem"
is "$(grep -c . <<<"$out")" 80 "a bundle of 80 certificates gives 80 lines"
is "$(sed -n 3p <<<"$out" | cut -d' ' -f1)" \
	"$(openssl x509 -in "$P/server.pem" -noout -fingerprint -sha256 | sed 's/^.*Fingerprint=//')" \
	"the third certificate of the bundle is the server's"

done_testing
