#!/bin/bash
# t0203: the system trust store is indexed, not parsed whole: a chain parses only the anchors
# its names lead to. The test's own bundle is bind-mounted over the system's in a private
# mount namespace, so the machine's store is never read nor changed.
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
need certtool openssl xxd
SYS=/etc/ssl/certs/ca-certificates.crt
if [ "$(id -u)" != 0 ] || ! unshare -m true 2>/dev/null || [ ! -f "$SYS" ]; then
	plan_skip_all "needs root, mount namespaces (unshare -m) and $SYS to mount over"
fi
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
cd "$P" || exit 1

# sys BUNDLE ARGS...: smtptls with BUNDLE as the system trust store
sys() {
	local b=$1
	shift
	run unshare -m --propagation private sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' \
		sh "$P/$b" "$SYS" "$SMTPTLS" "$@"
}

# 30 CAs no chain of this test leads to
for ((i = 0; i < 30; i++)); do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
		-out "filler$i.pem" -subj "/O=smtptls tests/CN=Filler CA $i" -days 3650 \
		-addext basicConstraints=critical,CA:TRUE 2>/dev/null || { diag "openssl req failed"; exit 1; }
done
# one more whose DER GnuTLS refuses (its validity is a SET, not a SEQUENCE), though its
# outer structure and subject read well: whoever parses it, fails on it
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
	-outform DER -out corrupt.der -subj "/CN=Corrupt CA" -days 3650 2>/dev/null
od -An -v -tx1 corrupt.der | tr -d '\n' | sed -E 's/ 30 (..) 17 0d/ 31 \1 17 0d/' | xxd -r -p >corrupt2.der
{
	echo "-----BEGIN CERTIFICATE-----"
	base64 -w 64 corrupt2.der
	echo "-----END CERTIFICATE-----"
} >corrupt.pem
cat filler{0..14}.pem ca.pem filler{15..29}.pem >store.pem
cat filler{0..14}.pem ca.pem corrupt.pem filler{15..29}.pem >store-corrupt.pem
openssl x509 -in corrupt.pem -noout 2>/dev/null
isnt "$?" 0 "openssl refuses the corrupt certificate too"

# a chain to the test root: one anchor parsed of the 31
sys store.pem verify -v server-chain.pem
is "$rc" 0 "the root in the system store: the chain verifies"
like "$out" "^server-chain.pem: OK \(Trusted\)" "the root in the system store: Trusted"
like "$err" "trusted certificates: 31" "every certificate of the store is counted"
like "$err" "system trust store: 31 certificates indexed, 1 parsed" "only the root the chain names is parsed"
is "$(openssl verify -CAfile store.pem -untrusted int.pem server.pem 2>&1 | grep -c ': OK$')" 1 \
	"openssl verify with the same store agrees"

# a chain to a root the store does not hold: untrusted, and nothing parsed
sys store.pem verify -v selfsigned.pem
is "$rc" 1 "a self-signed leaf not in the store: untrusted"
like "$err" "system trust store: 31 certificates indexed, 0 parsed" "no name of the store asked: nothing parsed"

# a certificate of the store that no chain names is never parsed, so it cannot spoil the rest
# (GnuTLS loading the bundle whole refuses all of it for that one)
sys store-corrupt.pem verify -v server-chain.pem
is "$rc" 0 "a corrupt certificate elsewhere in the store: the chain still verifies"
like "$out" "^server-chain.pem: OK \(Trusted\)" "a corrupt certificate elsewhere in the store: Trusted"
like "$err" "system trust store: 32 certificates indexed, 1 parsed" "the corrupt certificate is never parsed"

# --no-system-ca still trusts nothing
sys store.pem verify -v --no-system-ca server-chain.pem
is "$rc" 1 "--no-system-ca: untrusted"
unlike "$err" "system trust store:" "--no-system-ca: no store indexed"

done_testing
