#!/bin/sh
# make-crl-fixtures.sh: regenerate the revocation fixtures of tests/unit/test-revoke.c
# with `openssl ca` and `openssl ocsp`, and print the values the test expects,
# as OpenSSL reads them (never as smtptls does).
#
#   tests/unit/data/make-crl-fixtures.sh           regenerate every fixture, then print
#   tests/unit/data/make-crl-fixtures.sh --print   only print, from the committed files
#
# GnuTLS cannot write CRL entry extensions, so the reason codes are tested on
# a CRL that OpenSSL makes. Dates are pinned: certificates 2024-01-01 ..
# 2099-12-31 (-startdate/-enddate), revocation times written into the CA
# database before -gencrl, CRL lastUpdate 2024-06-01, nextUpdate 2099-01-01
# (-crl_lastupdate/-crl_nextupdate). OCSP responses carry the time they were
# made as thisUpdate (openssl ocsp cannot pin it); the test pins its clock to
# the printed REV_OCSP_THIS_UPDATE.
#
# Fixtures (EC P-256 keys; the CA "rev-ca" issues everything):
#   rev-ca.pem            the CA (keyCertSign, cRLSign)
#   rev-good.pem          serial 1001, not revoked
#   rev-key.pem           serial 1002, revoked: openssl ca -revoke -crl_reason keyCompromise
#   rev-sup.pem           serial 1003, revoked: -crl_reason superseded
#   rev-hold.pem          serial 1004, revoked: -crl_hold holdInstructionReject
#                         (certificateHold, plus a holdInstructionCode entry extension)
#   rev-none.pem          serial 1005, revoked with no reason (no entry extensions)
#   rev-high.pem          serial 8A01 (DER 00 8A 01), revoked: -crl_reason cessationOfOperation
#   rev-unknown.pem       serial 2001, issued from a throwaway copy of the database: unknown to OCSP
#   rev-ca.crl            the CRL (PEM); rev-ca.crl.der the same in DER
#   rev-ocsp.pem          delegated OCSP responder (extendedKeyUsage OCSPSigning)
#   rev-noeku.pem         a responder certificate without OCSPSigning
#   rev-ocsp-good.der     response about rev-good by rev-ocsp, no nonce
#   rev-ocsp-revoked.der  response about rev-key by rev-ocsp, no nonce
#   rev-ocsp-unknown.der  response about rev-unknown by rev-ocsp, no nonce
#   rev-ocsp-direct.der   response about rev-good signed by the CA itself
#   rev-ocsp-bykey.der    response about rev-good by rev-ocsp, responder ID by key hash
#   rev-ocsp-noeku.der    response about rev-good signed by rev-noeku
#   rev-ocsp-nonce.der    response about rev-good to a request with a nonce
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

print_only=false
[ "${1:-}" = --print ] && print_only=true

if ! $print_only; then
	w=$(mktemp -d)
	trap 'rm -rf "$w"' EXIT
	mkdir "$w/certs"
	: >"$w/index.txt"
	printf 'unique_subject = no\n' >"$w/index.txt.attr"
	cat >"$w/ca.cnf" <<EOF
[ ca ]
default_ca = rev
[ rev ]
dir = $w
database = $w/index.txt
new_certs_dir = $w/certs
serial = $w/serial
certificate = $w/rev-ca.pem
private_key = $w/rev-ca.key
default_md = sha256
policy = anything
copy_extensions = none
[ anything ]
commonName = supplied
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
[ ocsp ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = OCSPSigning
[ noeku ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
[ caext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ crl ]
authorityKeyIdentifier = keyid
EOF
	key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$w/$1.key" 2>/dev/null; }
	key rev-ca
	openssl req -new -key "$w/rev-ca.key" -subj "/CN=smtptls revocation fixture CA" -out "$w/rev-ca.csr"
	echo 01 >"$w/serial"
	openssl ca -batch -config "$w/ca.cnf" -selfsign -extensions caext -notext \
		-startdate 20240101000000Z -enddate 20991231235959Z \
		-in "$w/rev-ca.csr" -out "$w/rev-ca.pem" 2>/dev/null

	# leaf NAME SERIAL EXTENSIONS
	leaf() {
		key "$1"
		openssl req -new -key "$w/$1.key" -subj "/CN=$1.test.example" -out "$w/$1.csr"
		echo "$2" >"$w/serial"
		openssl ca -batch -config "$w/ca.cnf" -extensions "$3" -notext \
			-startdate 20240101000000Z -enddate 20991231235959Z \
			-in "$w/$1.csr" -out "$w/$1.pem" 2>/dev/null
	}
	leaf rev-good 1001 leaf
	leaf rev-key 1002 leaf
	leaf rev-sup 1003 leaf
	leaf rev-hold 1004 leaf
	leaf rev-none 1005 leaf
	leaf rev-high 8A01 leaf
	leaf rev-ocsp 3001 ocsp
	leaf rev-noeku 3002 noeku
	# not in the CA database: OCSP says unknown
	key rev-unknown
	openssl req -new -key "$w/rev-unknown.key" -subj "/CN=rev-unknown.test.example" -out "$w/rev-unknown.csr"
	# openssl x509 -req cannot pin dates: openssl ca with a throwaway database
	: >"$w/index2.txt"
	echo 2001 >"$w/serial"
	sed "s|^database = .*|database = $w/index2.txt|" "$w/ca.cnf" >"$w/ca2.cnf"
	openssl ca -batch -config "$w/ca2.cnf" -extensions noeku -notext \
		-startdate 20240101000000Z -enddate 20991231235959Z \
		-in "$w/rev-unknown.csr" -out "$w/rev-unknown.pem" 2>/dev/null

	ca() { openssl ca -batch -config "$w/ca.cnf" "$@" 2>/dev/null; }
	ca -revoke "$w/rev-key.pem" -crl_reason keyCompromise
	ca -revoke "$w/rev-sup.pem" -crl_reason superseded
	ca -revoke "$w/rev-hold.pem" -crl_hold holdInstructionReject
	ca -revoke "$w/rev-none.pem"
	ca -revoke "$w/rev-high.pem" -crl_reason cessationOfOperation
	# pin the revocation times (column 3 of the database, "YYMMDDHHMMSSZ[,reason...]")
	awk -F '\t' 'BEGIN { OFS = "\t" }
		$1 == "R" {
			t["1002"] = "240301000000Z"; t["1003"] = "240302000000Z"; t["1004"] = "240303000000Z"
			t["1005"] = "240304000000Z"; t["8A01"] = "240305000000Z"
			rest = $3; sub(/^[0-9]*Z/, "", rest); $3 = t[$4] rest
		} { print }' "$w/index.txt" >"$w/index.new"
	mv "$w/index.new" "$w/index.txt"
	ca -gencrl -crlexts crl -crl_lastupdate 20240601000000Z -crl_nextupdate 20990101000000Z \
		-out "$w/rev-ca.crl"
	openssl crl -in "$w/rev-ca.crl" -outform DER -out "$w/rev-ca.crl.der"

	# OCSP responses, from requests without a nonce unless said
	resp() { # OUT CERT SIGNER [more openssl ocsp options]
		out=$1 cert=$2 signer=$3
		shift 3
		openssl ocsp -issuer "$w/rev-ca.pem" -cert "$w/$cert.pem" -no_nonce -reqout "$w/req.der"
		openssl ocsp -index "$w/index.txt" -CA "$w/rev-ca.pem" -rsigner "$w/$signer.pem" \
			-rkey "$w/$signer.key" -reqin "$w/req.der" -respout "$w/$out" -ndays 27000 "$@" \
			>/dev/null 2>&1
	}
	resp rev-ocsp-good.der rev-good rev-ocsp
	resp rev-ocsp-revoked.der rev-key rev-ocsp
	resp rev-ocsp-unknown.der rev-unknown rev-ocsp
	resp rev-ocsp-direct.der rev-good rev-ca
	resp rev-ocsp-bykey.der rev-good rev-ocsp -resp_key_id
	resp rev-ocsp-noeku.der rev-good rev-noeku
	openssl ocsp -issuer "$w/rev-ca.pem" -cert "$w/rev-good.pem" -reqout "$w/req.der"
	openssl ocsp -index "$w/index.txt" -CA "$w/rev-ca.pem" -rsigner "$w/rev-ocsp.pem" \
		-rkey "$w/rev-ocsp.key" -reqin "$w/req.der" -respout "$w/rev-ocsp-nonce.der" \
		-ndays 27000 >/dev/null 2>&1

	for f in rev-ca rev-good rev-key rev-sup rev-hold rev-none rev-high rev-unknown rev-ocsp rev-noeku; do
		cp "$w/$f.pem" "$here/$f.pem"
	done
	cp "$w/rev-ca.crl" "$w/rev-ca.crl.der" "$here/"
	cp "$w"/rev-ocsp-*.der "$here/"
fi

# ---- what OpenSSL reads, for the test's expected values ----
epoch() { date -u -d "$1" +%s; }
echo "/* openssl crl -in rev-ca.crl -noout -text (revoked entries) */"
openssl crl -in rev-ca.crl -noout -text | sed -n '/Revoked Certificates/,/Signature Algorithm/p' |
	sed 's/^/ * /'
echo "/* lastUpdate and nextUpdate */"
echo "#define REV_CRL_THIS_UPDATE $(epoch "$(openssl crl -in rev-ca.crl -noout -lastupdate | sed 's/^[^=]*=//')")"
echo "#define REV_CRL_NEXT_UPDATE $(epoch "$(openssl crl -in rev-ca.crl -noout -nextupdate | sed 's/^[^=]*=//')")"
echo "/* revocation times, as openssl crl prints them, in seconds */"
openssl crl -in rev-ca.crl -noout -text | awk '
	/Serial Number:/ { s = $3 }
	/Revocation Date:/ { sub(/.*Revocation Date: /, ""); print s "\t" $0 }' |
	while IFS="$(printf '\t')" read -r s d; do
		echo "#define REV_AT_$s $(epoch "$d")"
	done
echo "/* OCSP responses (openssl ocsp -respin F -resp_text -noverify) */"
for f in rev-ocsp-*.der; do
	st=$(openssl ocsp -respin "$f" -resp_text -noverify 2>/dev/null | sed -n 's/^ *Cert Status: //p' | head -1)
	re=$(openssl ocsp -respin "$f" -resp_text -noverify 2>/dev/null | sed -n 's/^ *Revocation Reason: //p' | head -1)
	echo " * $f: $st${re:+ ($re)}"
done
tu=$(openssl ocsp -respin rev-ocsp-good.der -resp_text -noverify 2>/dev/null | sed -n 's/^ *This Update: //p' | head -1)
echo "#define REV_OCSP_THIS_UPDATE $(epoch "$tu")"
