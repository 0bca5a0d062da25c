#!/bin/bash
# t0202: verify with bad input and odd trust stores: clear errors, documented statuses, never a hang
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
need certtool openssl jq
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
cd "$P" || exit 1

# unreadable, empty, broken, keys only
: >empty.pem
head -n 4 server.pem >truncated.pem
st verify --ca-file ca.pem empty.pem server-chain.pem
is "$rc" 3 "an empty file: exit 3"
like "$err" "'empty.pem': empty file" "an empty file: says so"
like "$out" "^server-chain.pem: OK" "an empty file: the next FILE is still verified"
st verify --ca-file ca.pem truncated.pem
is "$rc" 3 "a truncated PEM: exit 3"
like "$err" "'truncated.pem' line 1: PEM block 'CERTIFICATE' has no END line" "a truncated PEM: says so"
st verify --ca-file ca.pem server.key
is "$rc" 3 "a key, no certificate: exit 3"
like "$err" "'server.key': no certificate found" "a key, no certificate: says so"
st verify --ca-file ca.pem missing.pem
is "$rc" 3 "a missing file: exit 3"
like "$err" "cannot read 'missing.pem': No such file or directory" "a missing file: says so"
st --json verify --ca-file ca.pem empty.pem
is "$(jq -r .status <<<"$out")" error "JSON: an unreadable FILE gets a record with status error"
is "$(jq -r .error.message <<<"$out")" "'empty.pem': empty file" "JSON: the record gives the real reason"
st verify --ca-file ca.pem --key server.key server-chain.pem expired.pem
is "$rc" 2 "--key with two FILEs: usage status"
st verify --ca-file int.pem --ca-file ca.pem server.pem
is "$rc" 0 "--ca-file is repeatable"

# the chain in the wrong order
cat int.pem server.pem >reversed.pem
st verify --ca-file ca.pem reversed.pem
is "$rc" 1 "a chain in the wrong order: exit 1"
like "$out" "wrong order: the first certificate is a CA that issued certificate 2 of the file" "a chain in the wrong order: says so"

# bad trust stores
st verify --ca-file empty.pem server-chain.pem
is "$rc" 3 "an empty CA file: exit 3"
like "$err" "CA file 'empty.pem': no certificate found|'empty.pem': empty file" "an empty CA file: says so"
st verify --ca-file missing-ca.pem server-chain.pem
is "$rc" 3 "a missing CA file: exit 3"
st verify --ca-file server.pem --untrusted int.pem server.pem
like "$err" "'server.pem' line 1: 'CN=mx.test.example' is not a CA certificate" "a CA file holding a leaf: a warning names it"
st verify --ca-path nowhere server-chain.pem
is "$rc" 3 "a missing CA directory: exit 3"
like "$err" "cannot read CA directory 'nowhere'" "a missing CA directory: says so"

# an OpenSSL-style hashed directory, as smtp_tls_CApath
mkdir capath
cp ca.pem capath/root.pem
openssl rehash capath 2>/dev/null || c_rehash capath >/dev/null 2>&1
ls capath | grep -Eq '^[0-9a-f]{8}\.0$'
ok $? "openssl rehash made a hash link"
st verify --ca-path capath server-chain.pem
is "$rc" 0 "a hashed CA directory: the chain verifies"
is "$err" "" "a hashed CA directory: no warning"
is "$(ours=$(openssl verify -CApath capath -untrusted int.pem server.pem 2>&1); grep -c ': OK$' <<<"$ours")" 1 "openssl verify -CApath agrees"
cp int.pem capath/forgotten.pem
ln -s gone.pem capath/deadbeef.0
st verify --ca-path capath server-chain.pem
is "$rc" 0 "problems in the directory do not change the verdict"
like "$err" "'forgotten.pem' holds a certificate that no hash name reaches.*run 'openssl rehash capath'" "a file without a hash link is named"
like "$err" "'deadbeef.0' points to 'gone.pem', which does not exist" "a dangling link is named"
like "$err" "which link it as '$(openssl x509 -in int.pem -noout -hash)\.0'" "the missing link is named as openssl x509 -hash computes it"

# a link under the wrong hash, and a .1 without a .0: OpenSSL never reads them
mkdir capath3
cp ca.pem capath3/root.pem
ln -s root.pem capath3/0badc0de.0
h=$(openssl x509 -in ca.pem -noout -hash)
ln -s root.pem "capath3/$h.1"
st verify --ca-path capath3 server-chain.pem
is "$rc" 1 "links OpenSSL never follows: nothing trusted"
like "$err" "'0badc0de.0' holds 'CN=smtptls Test Root CA,O=smtptls tests', whose subject hash is $h, not 0badc0de" "a link under the wrong hash is named, with the right hash"
like "$err" "'$h.1' is never read: OpenSSL stops at the missing '$h.0'" "a .1 without a .0 is named"
is "$(openssl verify -CApath capath3 -no-CAfile -no-CAstore -untrusted int.pem server.pem 2>&1 | grep -c ': OK$')" 0 "openssl verify -CApath agrees: neither link is used"
ln -s root.pem "capath3/$h.0"
st verify --ca-path capath3 server-chain.pem
is "$rc" 0 "with the .0 in place the .1 is read too and the chain verifies"

mkdir capath2
cp ca.pem capath2/root.pem
st verify --ca-path capath2 server-chain.pem
is "$rc" 1 "a directory never rehashed: nothing is trusted, as in Postfix"
like "$err" "'root.pem' holds a certificate that no hash name reaches" "a directory never rehashed: says why"
is "$(openssl verify -CApath capath2 -no-CAfile -no-CAstore -untrusted int.pem server.pem 2>&1 | grep -c ': OK$')" 0 "openssl verify -CApath agrees: the file is not used"

# the system store, and --no-system-ca
if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
	st verify -v server-chain.pem
	like "$err" "trusted certificates: [0-9]{2,}" "the system store is used by default"
	is "$rc" 1 "our test root is not in the system store"
else
	skip 2 "no system trust store (ca-certificates)"
fi
st verify -v --no-system-ca server-chain.pem
like "$err" "^smtptls: trusted certificates: 0" "--no-system-ca trusts nothing"

# usage errors
for bad in "--purpose web" "--at-time yesterday" "--warn-days -1" "--warn-days 5 --crit-days 10" \
	"--fetch-timeout 0" "--digest sha3" "--require-revocation"; do
	st verify $bad server-chain.pem
	is "$rc" 2 "verify $bad: usage status"
done
st verify
is "$rc" 2 "no FILE: usage status"

# hostile names in files and certificates reach the terminal sanitised
cp server-chain.pem "$(printf 'x\033[31m.pem')"
st verify --ca-file ca.pem "$(printf 'x\033[31m.pem')"
unlike "$out$err" $'\033' "an escape in a file name is not printed"

# stdin
run "$SMTPTLS" verify --ca-file ca.pem - <server-chain.pem
like "$out" "^-: OK" "- reads standard input"

done_testing
