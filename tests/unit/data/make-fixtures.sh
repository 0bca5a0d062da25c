#!/bin/sh
# make-fixtures.sh: regenerate the X.509 fixtures of tests/unit/test-x509.c
# with OpenSSL, and print the values the test expects, as OpenSSL computes
# them (never as smtptls does).
#
#   tests/unit/data/make-fixtures.sh           regenerate every fixture, then print
#   tests/unit/data/make-fixtures.sh --print   only print, from the committed files
#
# Keys are random, so after a regeneration paste the printed tables into
# tests/unit/test-x509.c (the "expected values" section). Validity is pinned
# (2020-01-01 00:00:00 .. 2099-12-31 23:59:59 UTC) with `openssl ca`, so the
# committed certificates never expire and the dates never change.
#
# Fixtures (PKI: root CA "ca" EC P-384 -> intermediate "int" EC P-256 -> leaf
# "ec" EC P-256; "rsa" and "ed25519" are self-signed):
#   rsa.pem        RSA 2048 self-signed, SANs DNS, DNS, IP, IP, email, URI;
#                  serial with its high bit set (DER has a leading 00 byte)
#   rsa.key        its key, PKCS#8 PEM ("PRIVATE KEY")
#   rsa-trad.key   same key, traditional "RSA PRIVATE KEY" (openssl pkey -traditional)
#   rsa-key.der    same key, DER (PKCS#8)
#   rsa-pub.pem    its "PUBLIC KEY"
#   rsa.csr        a "CERTIFICATE REQUEST" for the same key, with SANs
#   rsa-csr.der    the same request in DER
#   ec.pem         EC P-256 leaf issued by int
#   ec.der         the leaf in DER
#   ec-pub.der     the leaf's SubjectPublicKeyInfo in DER
#   ec.key         its key, PKCS#8 PEM
#   ec-trad.key    same key, "EC PRIVATE KEY" (openssl ec)
#   ec-params.key  same key as made by openssl ecparam -genkey: "EC PARAMETERS" then "EC PRIVATE KEY"
#   int.pem        the intermediate CA
#   ca.pem         the root CA
#   chain.pem      ec.pem + int.pem + ca.pem
#   ed25519.pem    Ed25519 self-signed
#   ed25519.key    its key, PKCS#8 PEM
#   two.der        rsa.pem and ec.pem in DER, back to back
#   trusted.pem    rsa.pem as "TRUSTED CERTIFICATE" (openssl x509 -trustout)
#   bag.pem        openssl pkcs12 -nodes output of ec.pem + ec.key: "Bag
#                  Attributes" and subject=/issuer= text before each block
#   crlf.pem       ec.pem + int.pem + ec-trad.key with CRLF line endings
#   crl.pem        a CRL issued by int, nothing else
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
export LC_ALL=C TZ=UTC

START=20200101000000Z
END=20991231235959Z

generate() {
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	mkdir "$tmp/new"
	: >"$tmp/index.txt"
	cat >"$tmp/ca.cnf" <<EOF
[ca]
default_ca = ca_default
[ca_default]
dir = $tmp
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
crlnumber = \$dir/crlnumber
default_md = sha256
default_crl_days = 30000
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
countryName = optional
organizationName = optional
commonName = supplied
[req]
distinguished_name = req_dn
prompt = no
[req_dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_int]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_rsa]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:rsa.example.org,DNS:mail.example.org,IP:192.0.2.25,IP:2001:db8::25,email:postmaster@example.org,URI:https://rsa.example.org/
[v3_ec]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:ec.example.org,DNS:*.ec.example.org
[v3_ed]
basicConstraints = CA:FALSE
subjectAltName = DNS:ed25519.example.org
[v3_csr]
subjectAltName = DNS:rsa.example.org,IP:192.0.2.25
EOF
	# sign NAME CSR SERIAL EXTENSIONS MD then "-selfsign -keyfile K" or "-cert C -keyfile K"
	sign() {
		name=$1 csr=$2 serial=$3 ext=$4 md=$5
		shift 5
		echo "$serial" >"$tmp/serial"
		openssl ca -batch -config "$tmp/ca.cnf" -notext -preserveDN \
			-startdate $START -enddate $END -md "$md" -extensions "$ext" \
			-in "$csr" -out "$name" "$@" 2>/dev/null
	}

	# root CA, EC P-384
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$tmp/ca.key"
	openssl req -new -config "$tmp/ca.cnf" -key "$tmp/ca.key" \
		-subj "/O=smtptls tests/CN=smtptls Unit Root CA" -out "$tmp/ca.csr"
	sign ca.pem "$tmp/ca.csr" 01 v3_ca sha384 -selfsign -keyfile "$tmp/ca.key"

	# intermediate CA, EC P-256, signed by the root with SHA-384
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/int.key"
	openssl req -new -config "$tmp/ca.cnf" -key "$tmp/int.key" \
		-subj "/O=smtptls tests/CN=smtptls Unit Intermediate CA" -out "$tmp/int.csr"
	sign int.pem "$tmp/int.csr" 02 v3_int sha384 -cert ca.pem -keyfile "$tmp/ca.key"

	# EC P-256 leaf: the key as openssl ecparam -genkey writes it, then other forms
	openssl ecparam -name prime256v1 -genkey -out ec-params.key
	openssl pkey -in ec-params.key -out ec.key
	openssl ec -in ec.key -out ec-trad.key 2>/dev/null
	openssl req -new -config "$tmp/ca.cnf" -key ec.key \
		-subj "/C=DE/O=smtptls tests/CN=ec.example.org" -out "$tmp/ec.csr"
	sign ec.pem "$tmp/ec.csr" 03E8 v3_ec sha256 -cert int.pem -keyfile "$tmp/int.key"
	openssl x509 -in ec.pem -outform DER -out ec.der
	openssl pkey -in ec.key -pubout -outform DER -out ec-pub.der

	# RSA 2048 self-signed, serial with its high bit set
	openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key
	openssl pkey -in rsa.key -traditional -out rsa-trad.key
	openssl pkey -in rsa.key -outform DER -out rsa-key.der
	openssl pkey -in rsa.key -pubout -out rsa-pub.pem
	openssl req -new -config "$tmp/ca.cnf" -key rsa.key \
		-subj "/C=DE/O=smtptls tests/CN=rsa.example.org" -out "$tmp/rsa.csr"
	sign rsa.pem "$tmp/rsa.csr" C0FFEE0123456789 v3_rsa sha256 -selfsign -keyfile rsa.key
	openssl req -new -config "$tmp/ca.cnf" -key rsa.key -reqexts v3_csr \
		-subj "/O=smtptls tests/CN=rsa.example.org" -out rsa.csr
	openssl req -in rsa.csr -outform DER -out rsa-csr.der

	# Ed25519 self-signed
	openssl genpkey -algorithm ED25519 -out ed25519.key
	openssl req -new -config "$tmp/ca.cnf" -key ed25519.key \
		-subj "/CN=ed25519.example.org" -out "$tmp/ed.csr"
	echo 7F >"$tmp/serial"
	openssl ca -batch -config "$tmp/ca.cnf" -notext -preserveDN \
		-startdate $START -enddate $END -extensions v3_ed \
		-in "$tmp/ed.csr" -out ed25519.pem -selfsign -keyfile ed25519.key 2>/dev/null

	# bundles and odd forms
	cat ec.pem int.pem ca.pem >chain.pem
	{ openssl x509 -in rsa.pem -outform DER; cat ec.der; } >two.der
	openssl x509 -in rsa.pem -trustout -addtrust serverAuth -out trusted.pem
	openssl pkcs12 -export -in ec.pem -inkey ec.key -name "ec leaf" -passout pass:x \
		-out "$tmp/ec.p12"
	openssl pkcs12 -in "$tmp/ec.p12" -nodes -passin pass:x -out bag.pem 2>/dev/null
	cat ec.pem int.pem ec-trad.key | sed 's/$/\r/' >crlf.pem

	# a CRL and nothing else
	echo 01 >"$tmp/crlnumber"
	openssl ca -batch -config "$tmp/ca.cnf" -gencrl -cert int.pem -keyfile "$tmp/int.key" \
		-out crl.pem 2>/dev/null
}

# "ab12..." -> "AB:12:..."
colons() { tr 'a-f' 'A-F' | sed 's/../&:/g; s/:$//'; }

# digest of a DER SubjectPublicKeyInfo on stdin, Postfix format
spki_digest() { openssl dgst -"$1" -r | cut -d' ' -f1 | colons; }

DIGESTS="md5 sha1 sha224 sha256 sha384 sha512"

# C initialiser of the SPKI digests of a key: NAME DESCRIPTION then a command printing DER SPKI
print_key() {
	name=$1 desc=$2
	shift 2
	echo "	/* $name: $desc | openssl dgst -<digest> */"
	echo "	{\"$name\", {"
	for d in $DIGESTS; do
		"$@" | spki_digest "$d" | sed 's/.*/		"&",/'
	done
	echo "	}},"
}

print_cert() {
	f=$1
	echo "	/* $f: openssl x509 -noout -fingerprint -<digest> */"
	echo "	{\"$f\", {"
	for d in $DIGESTS; do
		openssl x509 -in "$f" -noout -fingerprint -"$d" | sed 's/.*=//; s/.*/		"&",/'
	done
	echo "	}},"
}

print_info() {
	f=$1
	echo "	/* $f: openssl x509 -noout -subject -issuer -nameopt RFC2253 -serial -dates */"
	subject=$(openssl x509 -in "$f" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
	issuer=$(openssl x509 -in "$f" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//')
	serial=$(openssl x509 -in "$f" -noout -serial | sed 's/^serial=//')
	nb=$(openssl x509 -in "$f" -noout -startdate | sed 's/^notBefore=//')
	na=$(openssl x509 -in "$f" -noout -enddate | sed 's/^notAfter=//')
	echo "	/* serial=$serial notBefore=$nb ($(date -u -d "$nb" +%s)) notAfter=$na ($(date -u -d "$na" +%s)) */"
	echo "	/* subject=\"$subject\" issuer=\"$issuer\" */"
	openssl x509 -in "$f" -noout -ext subjectAltName,basicConstraints 2>/dev/null | sed 's/^/	\/\/ /'
	openssl x509 -in "$f" -noout -text | grep -E 'Public-Key:|ASN1 OID:|NIST CURVE:|Signature Algorithm:' | sort -u | sed 's/^ */	\/\/ /'
}

case ${1-} in
--print) ;;
"") generate ;;
*)
	echo "usage: $0 [--print]" >&2
	exit 2
	;;
esac

echo "/* openssl: $(openssl version) */"
echo "/* SPKI digests, one per key (md5 sha1 sha224 sha256 sha384 sha512) */"
x509_spki() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER; }
print_key rsa "openssl pkey -in rsa.key -pubout -outform DER" \
	openssl pkey -in rsa.key -pubout -outform DER
print_key ec "openssl pkey -in ec.key -pubout -outform DER" \
	openssl pkey -in ec.key -pubout -outform DER
print_key int "openssl x509 -in int.pem -noout -pubkey | openssl pkey -pubin -outform DER" \
	x509_spki int.pem
print_key ca "openssl x509 -in ca.pem -noout -pubkey | openssl pkey -pubin -outform DER" \
	x509_spki ca.pem
print_key ed25519 "openssl pkey -in ed25519.key -pubout -outform DER" \
	openssl pkey -in ed25519.key -pubout -outform DER
echo
echo "/* certificate fingerprints (md5 sha1 sha224 sha256 sha384 sha512) */"
for f in rsa.pem ec.pem int.pem ca.pem ed25519.pem; do
	print_cert "$f"
done
echo
echo "/* SPKI digests of the other forms of each key: each must equal the line above */"
for f in rsa-trad.key rsa-key.der; do
	echo "	// $f sha256: $(openssl pkey -in "$f" -pubout -outform DER | spki_digest sha256)"
done
echo "	// rsa-pub.pem sha256: $(openssl pkey -pubin -in rsa-pub.pem -outform DER | spki_digest sha256)"
echo "	// rsa.csr sha256: $(openssl req -in rsa.csr -noout -pubkey | openssl pkey -pubin -outform DER | spki_digest sha256)"
echo "	// rsa.pem sha256: $(openssl x509 -in rsa.pem -noout -pubkey | openssl pkey -pubin -outform DER | spki_digest sha256)"
for f in ec-trad.key ec-params.key; do
	echo "	// $f sha256: $(openssl pkey -in "$f" -pubout -outform DER | spki_digest sha256)"
done
echo "	// ec.pem sha256: $(openssl x509 -in ec.pem -noout -pubkey | openssl pkey -pubin -outform DER | spki_digest sha256)"
echo "	// trusted.pem sha256: $(openssl x509 -in trusted.pem -noout -fingerprint -sha256)"
echo
echo "/* TLSA 3 1 1 and 3 1 2 of ec.pem, 3 0 2 of ec.pem */"
echo "	// 3 1 1 $(openssl x509 -in ec.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)"
echo "	// 3 1 2 $(openssl x509 -in ec.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha512 -r | cut -d' ' -f1)"
echo "	// 3 0 2 $(openssl x509 -in ec.pem -outform DER | openssl dgst -sha512 -r | cut -d' ' -f1)"
echo
echo "/* where the blocks start (the test's line numbers; error cases use the line counts) */"
for f in chain.pem bag.pem crlf.pem ec-params.key; do
	echo "	// $f: $(grep -n -- '-----BEGIN' "$f" | tr -d '\r' | tr '\n' ' ')"
done
for f in rsa.pem ec.pem; do
	echo "	// $f: $(wc -l <"$f") lines"
done
for f in ec.der two.der; do
	echo "	// $f: $(wc -c <"$f") bytes"
done
echo "	// rsa.pem in DER: $(openssl x509 -in rsa.pem -outform DER | wc -c) bytes"
echo
echo "/* descriptions */"
for f in rsa.pem ec.pem int.pem ca.pem ed25519.pem; do
	print_info "$f"
done
echo "	/* rsa.csr: openssl req -noout -subject -nameopt RFC2253: $(openssl req -in rsa.csr -noout -subject -nameopt RFC2253) */"
