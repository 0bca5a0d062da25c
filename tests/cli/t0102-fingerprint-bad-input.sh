#!/bin/bash
# t0102: bad input of every kind: a clear error naming the file and the reason, exit 3, nothing lost
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
need certtool openssl jq
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
B=$T/bad
mkdir -p "$B"
good_fp=$(openssl x509 -in "$P/server.pem" -noout -fingerprint -sha256 | sed 's/^.*Fingerprint=//')

echo "hello, I am not a certificate" >"$B/text.txt"
head -n 5 "$P/server.pem" >"$B/truncated.pem"
head -c 3000 /dev/urandom | tr '\0' x | sed '1s/^/\x30\x82\xff\xff/' >"$B/garbage.bin"
: >"$B/empty.pem"
printf '\n\n  \n' >"$B/blank.pem"
mkdir "$B/dir.pem"
{ echo "-----BEGIN CERTIFICATE-----"; echo "!!!! not base64 !!!!"; echo "-----END CERTIFICATE-----"; } >"$B/badb64.pem"
{ sed '$d' "$P/server.pem"; echo "-----END X509 CRL-----"; } >"$B/mismatch.pem"
openssl pkey -in "$P/server.key" -aes256 -passout pass:x -out "$B/encrypted.key" 2>/dev/null
openssl pkey -in "$P/server-rsa.key" -traditional -aes256 -passout pass:x -out "$B/encrypted-trad.key" 2>/dev/null
echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJvHbFqN7Jg0kNCDTm0YMlqWjlH1ZRlMEnB5Ru7kG8Pq test@example" >"$B/id.pub"
openssl crl2pkcs7 -nocrl -certfile "$P/server.pem" -out "$B/chain.p7b" 2>/dev/null
openssl x509 -in "$P/server.pem" -outform DER | head -c 200 >"$B/truncated.der"
{ openssl x509 -in "$P/server.pem" -outform DER; echo "trailing junk"; } >"$B/trailing.der"
{ cat "$P/server.pem"; head -n 4 "$P/ca.pem"; cat "$P/int.pem"; } >"$B/middle.pem"

# expect FILE REGEX DESCRIPTION
expect() {
	st fingerprint -b "$1" "$P/server.pem"
	is "$rc" 3 "$3: exit status 3"
	like "$err" "$2" "$3: the error names the file and the reason"
	like "$out" "^$good_fp  $P/server.pem$" "$3: the next file is still processed"
}
expect "$B/text.txt" "^smtptls: '$B/text.txt': not a certificate or key: neither PEM .* nor DER" "a text file"
expect "$B/truncated.pem" "'$B/truncated.pem' line 1: PEM block 'CERTIFICATE' has no END line" "truncated PEM"
expect "$B/garbage.bin" "'$B/garbage.bin' offset 0: truncated DER object" "binary garbage that starts like DER"
head -c 3000 /dev/urandom | tr '\0\060' xy >"$B/noise.bin"
expect "$B/noise.bin" "'$B/noise.bin': not a certificate or key: neither PEM .* nor DER" "binary noise"
expect "$B/empty.pem" "'$B/empty.pem': empty file" "an empty file"
expect "$B/blank.pem" "'$B/blank.pem': empty file" "a file of blank lines"
expect "$B/dir.pem" "cannot read '$B/dir.pem': is a directory" "a directory"
expect "$B/missing.pem" "cannot read '$B/missing.pem': No such file or directory" "a missing file"
expect "$B/badb64.pem" "'$B/badb64.pem' line 1: cannot decode CERTIFICATE" "bad base64"
expect "$B/mismatch.pem" "'$B/mismatch.pem' line 1: PEM block 'CERTIFICATE' ends with a different END line" "a mismatched END line"
expect "$B/encrypted.key" "'$B/encrypted.key' line 1: encrypted private key not supported" "an encrypted PKCS#8 key"
expect "$B/encrypted-trad.key" "'$B/encrypted-trad.key' line 1: encrypted private key not supported" "an encrypted traditional key"
expect "$B/id.pub" "'$B/id.pub': OpenSSH public key format not supported" "an OpenSSH public key"
expect "$B/chain.p7b" "'$B/chain.p7b' line 1: PKCS#7 bundle not supported" "a PKCS#7 file"
expect "$B/truncated.der" "'$B/truncated.der' offset 0: truncated DER object: its header asks for more than the 200 bytes left" "a truncated DER certificate"

st fingerprint -b "$B/trailing.der"
is "$rc" 3 "DER with trailing junk: exit 3"
like "$out" "^$good_fp  $B/trailing.der$" "DER with trailing junk: the certificate is still given"
like "$err" "'$B/trailing.der' offset [0-9]+: trailing data that is not a DER object" "DER with trailing junk: offset named"

st fingerprint -b "$B/middle.pem"
is "$rc" 3 "a broken block between good ones: exit 3"
is "$(grep -c . <<<"$out")" 2 "a broken block between good ones: both good certificates are given"
like "$err" "line $(($(wc -l <"$P/server.pem") + 1)): PEM block 'CERTIFICATE' has no END line before the next BEGIN line" "a broken block between good ones: its line named"

# a certificate GnuTLS refuses (an empty IP address name): fingerprints from the raw DER, as openssl's
printf '[x]\nsubjectAltName = DER:30028700\n' >"$B/ip0.ext"
openssl x509 -req -in <(openssl req -new -key "$P/server.key" -subj /CN=ip0 2>/dev/null) -CA "$P/int.pem" \
	-CAkey "$P/int.key" -set_serial 77 -days 30 -extfile "$B/ip0.ext" -extensions x -out "$B/ip0.pem" 2>/dev/null
st fingerprint -b "$B/ip0.pem"
is "$rc" 0 "a certificate GnuTLS cannot parse: still fingerprinted, exit 0"
is "$out" "$(openssl x509 -in "$B/ip0.pem" -noout -fingerprint -sha256 | sed 's/.*=//')  $B/ip0.pem" "its fingerprint is openssl's"
like "$err" "warning: '$B/ip0.pem' line 1: GnuTLS cannot parse this certificate \(unknown Subject Alternative name" "a warning says why nothing else is known"
st fingerprint -b --pubkey "$B/ip0.pem"
is "${out%%  *}" "$(openssl x509 -in "$B/ip0.pem" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 | sed 's/.*= *//' | tr a-f A-F | sed 's/../&:/g; s/:$//')" "its public-key fingerprint is the digest of its SPKI"
st verify --ca-file "$P/ca.pem" "$B/ip0.pem"
is "$rc" 3 "verify refuses to judge it: exit 3"

# unreadable for a normal user (root reads everything, so drop privileges)
cp "$P/server.pem" "$B/secret.pem"
chmod 000 "$B/secret.pem"
chmod 755 "$T" "$B"
if [ "$(id -u)" != 0 ] || command -v setpriv >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		run setpriv --reuid=65534 --regid=65534 --clear-groups "$SMTPTLS" fingerprint "$B/secret.pem"
	else
		st fingerprint "$B/secret.pem"
	fi
	is "$rc" 3 "an unreadable file: exit 3"
	like "$err" "cannot read '$B/secret.pem': Permission denied" "an unreadable file: permission denied"
else
	skip 2 "root without setpriv cannot make a file unreadable"
fi

# a file larger than the cap is refused without reading it all
truncate -s 65M "$B/huge.pem"
st fingerprint "$B/huge.pem"
is "$rc" 3 "a 65 MiB file: exit 3"
like "$err" "cannot read '$B/huge.pem': larger than 64 MiB" "a 65 MiB file: too large"
run "$SMTPTLS" fingerprint - < <(head -c 70000000 /dev/zero)
is "$rc" 3 "a 70 MB standard input: exit 3"
like "$err" "cannot read 'standard input': larger than" "a 70 MB standard input: too large"

# hostile names reach the terminal sanitised
bad=$(printf 'x\033[31my.pem')
cp "$B/text.txt" "$B/$bad"
st fingerprint "$B/$bad"
unlike "$err" $'\033' "an escape sequence in a file name is not printed"
like "$err" "x\?\[31my.pem" "it is shown as ?"

# a missing file whose name holds an escape and invalid UTF-8
st fingerprint "$B/no"$'\033'"[31mred"$'\xff'".pem"
is "$rc" 3 "a missing hostile name: exit 3"
unlike "$err" $'\033' "a missing hostile name: no escape byte on stderr"
like "$err" "cannot read '$B/no\?\[31mred\?.pem'" "a missing hostile name: shown with ?"
st --json fingerprint "$B/no"$'\xff'".pem"
is "$(jq -r .file <<<"$out")" "$B/no?.pem" "JSON: an invalid UTF-8 file name still gets its error record"

# the JSON stream carries the errors too
st --json fingerprint "$B/text.txt" "$P/server.pem"
is "$rc" 3 "JSON with a bad file: exit 3"
is "$(sed -n 1p <<<"$out" | jq -r '.error.class')" "input" "JSON error object: class"
is "$(sed -n 1p <<<"$out" | jq -r '.file')" "$B/text.txt" "JSON error object: file"
like "$(sed -n 1p <<<"$out" | jq -r '.error.message')" "neither PEM" "JSON error object: message"
is "$(sed -n 2p <<<"$out" | jq -r '.fingerprint')" "$good_fp" "JSON: the good file follows"

# usage errors are not input errors
st fingerprint --digest=sha3 "$P/server.pem"
is "$rc" 2 "an unknown digest: usage status"
like "$err" "unknown digest 'sha3'" "an unknown digest is named"
st fingerprint
is "$rc" 2 "no file: usage status"

done_testing
