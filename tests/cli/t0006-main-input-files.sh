#!/bin/bash
# t0006: input files of every command: one input cap (64 MiB) for every file read, an endless
# source read up to the cap and refused, a bigger regular file refused unread, memory near the
# cap; a file of many bad PEM blocks reported in one line
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
need certtool truncate timeout mkfifo jq openssl
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
CAP=$((64 * 1024 * 1024))
# the peak resident size allowed: the cap plus a margin for the program itself (KiB)
PEAK_MAX=$((CAP / 1024 + 16 * 1024))

# Under the sanitizers memory is not the program's own (shadow, quarantine): the peak and
# the address-space guard are for the plain build.
sanitized=no
if ldd "$SMTPTLS" 2>/dev/null | grep -q 'lib[a-z]*san' || grep -aq __asan_init "$SMTPTLS"; then
	sanitized=yes
fi
TIME=
[ -x /usr/bin/time ] && [ "$sanitized" = no ] && TIME=/usr/bin/time

truncate -s 65M "$T/sparse"
mkdir -p "$T/md" "$T/q"

# capped EXPECTED-RC MESSAGE-REGEX ARGS...: run smtptls ARGS with a guard on time (an endless
# read would never end) and, in the plain build, on address space (an unbounded read fails
# there instead of eating the machine's memory); then check status, message and peak memory.
capped() {
	local want_rc=$1 want_err=$2 desc peak
	shift 2
	desc="$*"
	desc=${desc//$T/\$T}
	set +e
	if [ -n "$TIME" ]; then
		(ulimit -v 1048576 && exec timeout 120 "$TIME" -f %M -o "$T/.peak" \
			"$SMTPTLS" "$@") >"$T/.out" 2>"$T/.err" </dev/null
	elif [ "$sanitized" = no ]; then
		(ulimit -v 1048576 && exec timeout 120 "$SMTPTLS" "$@") >"$T/.out" 2>"$T/.err" </dev/null
	else
		timeout 120 "$SMTPTLS" "$@" >"$T/.out" 2>"$T/.err" </dev/null
	fi
	rc=$?
	err=$(cat "$T/.err")
	is "$rc" "$want_rc" "$desc: exit status $want_rc"
	like "$err" "$want_err" "$desc: the file and the reason named"
	if [ -n "$TIME" ]; then
		peak=$(tail -n 1 "$T/.peak")
		ok "$([ "${peak:-999999999}" -lt "$PEAK_MAX" ] && echo 0 || echo 1)" \
			"$desc: peak memory ${peak:-?} KiB under $PEAK_MAX KiB"
	else
		skip 1 "no /usr/bin/time, or a sanitizer build"
	fi
}

SV=(serve --listen 127.0.0.1:0 --maildir "$T/md")
RELAY=(--relayhost "[127.0.0.1]:1" --queue-dir "$T/q")
for F in /dev/zero "$T/sparse"; do
	big="cannot read '$F': larger than 64 MiB"
	capped 3 "^smtptls: $big$" fingerprint "$F"
	capped 3 "^smtptls: $big$" verify "$F"
	capped 3 "^smtptls: $big$" verify --ca-file "$F" "$P/server-chain.pem"
	capped 3 "^smtptls: $big$" verify --untrusted "$F" "$P/server.pem"
	capped 3 "^smtptls: $big$" verify --ca-file "$P/ca.pem" --crl-file "$F" "$P/server-chain.pem"
	capped 3 "^smtptls: $big$" verify --key "$F" "$P/server.pem"
	capped 3 "^smtptls: $big$" policy check --no-postfix-config "texthash:$F"
	capped 3 "^smtptls: $big$" policy check --no-postfix-config "hash:$F"
	capped 3 "^smtptls: $big$" policy check --no-postfix-config "proxy:texthash:$F"
	capped 3 "^smtptls: $big$" policy test --no-postfix-config --ca-file "$F" "[127.0.0.1]:1"
	# an unusable --ca-file is a warning to probe, which goes on (to a closed port here)
	capped 5 "warning: $big" probe --timeout 5 --ca-file "$F" "[127.0.0.1]:1"
	capped 3 "^smtptls: --cert: cannot use '$F' with '$P/client.key': $big$" \
		probe --cert "$F" --key "$P/client.key" "[127.0.0.1]:1"
	capped 3 "^smtptls: --cert: cannot use '$P/client.pem' with '$F': $big$" \
		probe --cert "$P/client.pem" --key "$F" "[127.0.0.1]:1"
	capped 3 "^smtptls: --send: $big$" \
		probe --mail-from a@a.smtptls.test --rcpt-to b@b.smtptls.test --send "$F" "[127.0.0.1]:1"
	# the password file has its own, smaller cap
	capped 3 "^smtptls: cannot read '$F': larger than [0-9]+ bytes$" \
		probe --auth-user u --auth-password-file "$F" "[127.0.0.1]:1"
	capped 3 "^smtptls: --cert: cannot use '$F' with '$P/server.key': $big$" \
		"${SV[@]}" --cert "$F" --key "$P/server.key"
	capped 3 "^smtptls: --cert: cannot use '$P/server.pem' with '$F': $big$" \
		"${SV[@]}" --cert "$P/server.pem" --key "$F"
	capped 3 "^smtptls: --ccert-ca-file: $big$" "${SV[@]}" --self-signed --ccert-ca-file "$F"
	capped 3 "^smtptls: --crl-file: $big$" \
		"${SV[@]}" --self-signed --ccert-ca-file "$P/ca.pem" --crl-file "$F"
	capped 3 "^smtptls: --auth-file: $big$" "${SV[@]}" --self-signed --auth-file "$F"
	capped 3 "^smtptls: --relay-clientcerts: $big$" "${SV[@]}" --self-signed --relay-clientcerts "$F"
	capped 3 "^smtptls: --tls-policy: $big$" \
		"${SV[@]}" --self-signed "${RELAY[@]}" --tls-policy "texthash:$F"
	capped 3 "^smtptls: --relay-ca-file: $big$" "${SV[@]}" --self-signed "${RELAY[@]}" --relay-ca-file "$F"
	capped 3 "^smtptls: --client-cert: cannot use '$F' with '$P/client.key': $big$" \
		"${SV[@]}" --self-signed "${RELAY[@]}" --client-cert "$F" --client-key "$P/client.key"

	# main.cf and master.cf: read by smtptls, or by Postfix's postconf, which is not given
	# an endless or oversized one either
	rm -rf "$T/pf" && mkdir "$T/pf"
	ln -s "$F" "$T/pf/main.cf"
	capped 3 "^smtptls: (--postfix-config: )?cannot read '$T/pf/main.cf': (larger than 64 MiB|not a regular file)$" \
		policy --postfix-config "$T/pf" check
	if command -v postconf >/dev/null || [ -x /usr/sbin/postconf ]; then
		rm "$T/pf/main.cf"
		echo "smtp_tls_security_level = may" >"$T/pf/main.cf"
		ln -s "$F" "$T/pf/master.cf"
		capped 3 "^smtptls: --postfix-config: cannot read '$T/pf/master.cf': (larger than 64 MiB|not a regular file)$" \
			policy --postfix-config "$T/pf" check
	else
		skip 3 "postconf not installed"
	fi
done

# a FIFO whose writer never stops: read up to the cap, then refused
mkfifo "$T/fifo"
for args in "fingerprint @" "policy check --no-postfix-config texthash:@" \
	"serve --listen 127.0.0.1:0 --maildir $T/md --self-signed --relay-clientcerts @"; do
	(exec cat /dev/zero >"$T/fifo") 2>/dev/null &
	writer=$!
	at_exit "kill $writer"
	# shellcheck disable=SC2086
	capped 3 "cannot read '$T/fifo': larger than 64 MiB$" ${args//@/$T/fifo}
	kill "$writer" 2>/dev/null
	wait "$writer" 2>/dev/null
done

# a file of exactly 64 MiB is still read
{
	cat "$P/server.pem"
	head -c $((CAP - $(stat -c %s "$P/server.pem"))) /dev/zero | tr '\0' '\n'
} >"$T/cap.pem"
is "$(stat -c %s "$T/cap.pem")" "$CAP" "the 64 MiB certificate file is 64 MiB"
st fingerprint -b "$T/cap.pem"
is "$rc" 0 "a certificate file of 64 MiB: exit 0"
like "$out" "^[0-9A-F:]{95}  $T/cap.pem$" "a certificate file of 64 MiB: its fingerprint"
printf '\n' >>"$T/cap.pem"
st fingerprint -b "$T/cap.pem"
is "$rc/$err" "3/smtptls: cannot read '$T/cap.pem': larger than 64 MiB" "one byte more: refused"

{
	echo "[mx.smtptls.test]:25 encrypt"
	yes '# a comment line to fill the table up to just under the input cap ..........' |
		head -c $((CAP - 100))
} >"$T/under.tbl"
st policy check --no-postfix-config "texthash:$T/under.tbl"
is "$rc" 0 "a policy table just under 64 MiB: exit 0"
like "$err" "1 table, no findings" "a policy table just under 64 MiB: read and checked"

# A PEM file of 100000 bad blocks between good certificates: one line for the file, the first
# bad block's reason and how many more, in text and in JSON; the exit status as before
bad_block=$'-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----'
{
	cat "$P/server.pem"
	yes -- "$bad_block" | head -n 300000
	cat "$P/int.pem"
} >"$T/bad.pem"
first=$(($(wc -l <"$P/server.pem") + 1))
is "$(grep -c BEGIN "$T/bad.pem")" 100002 "the file holds 100000 bad blocks and two certificates"
why="'$T/bad.pem' line $first: cannot decode CERTIFICATE: base64 decoding error"
more="(and 99999 more bad blocks)"

st fingerprint -b "$T/bad.pem"
is "$rc" 3 "fingerprint, 100000 bad blocks: exit 3"
is "$err" "smtptls: $why $more" "fingerprint: one line, the first reason and the count"
is "$(grep -c . <<<"$out")" 2 "fingerprint: both good certificates still given"

st --json fingerprint "$T/bad.pem"
is "$rc" 3 "fingerprint --json, 100000 bad blocks: exit 3"
is "$(grep -c . <<<"$err")" 1 "fingerprint --json: one line on standard error"
is "$(grep -c . <<<"$out")" 3 "fingerprint --json: two items and one error object"
is "$(tail -n 1 <<<"$out" | jq -r '.file + " " + .error.class + " " + .error.message')" \
	"$T/bad.pem input $why $more" "fingerprint --json: the error object, after the items, counts them"

st verify --no-system-ca --ca-file "$P/ca.pem" "$T/bad.pem"
is "$rc" 3 "verify, 100000 bad blocks: exit 3"
is "$err" "smtptls: $why $more" "verify: one line, the first reason and the count"

st --json verify --no-system-ca --ca-file "$P/ca.pem" "$T/bad.pem"
is "$rc/$(grep -c . <<<"$err")/$(grep -c . <<<"$out")" "3/1/1" "verify --json: one error line, one result"

st verify --no-system-ca --ca-file "$P/ca.pem" --untrusted "$T/bad.pem" "$P/server.pem"
is "$rc" 3 "verify --untrusted, 100000 bad blocks: exit 3"
is "$err" "smtptls: $why $more" "verify --untrusted: one line"

st verify --no-system-ca --ca-file "$P/ca.pem" --ca-file "$T/bad.pem" "$P/server-chain.pem"
is "$rc" 0 "verify --ca-file, 100000 bad blocks: the chain still verifies, exit 0"
is "$(grep -c 'bad block' <<<"$err")/$(grep -c . <<<"$err")" "1/2" \
	"verify --ca-file: one warning for the bad blocks (and one for the leaf in the CA file)"
grep -Fqx "smtptls: warning: $why $more" <<<"$err"
ok "$?" "verify --ca-file: the first reason and the count"

mkdir "$T/capath"
hashed=$T/capath/$(openssl x509 -hash -noout -in "$P/ca.pem").0
{
	cat "$P/ca.pem"
	yes -- "$bad_block" | head -n 300000
} >"$hashed"
st verify --no-system-ca --ca-path "$T/capath" "$P/server-chain.pem"
is "$rc" 0 "verify --ca-path, a hashed file of 100000 bad blocks: exit 0"
is "$err" "smtptls: warning: '$hashed' line $(($(wc -l <"$P/ca.pem") + 1)): cannot decode CERTIFICATE: base64 decoding error $more" \
	"verify --ca-path: one warning, the first reason and the count"

{ echo "$bad_block"; cat "$P/server.pem"; echo "$bad_block"; } >"$T/two.pem"
st fingerprint -b "$T/two.pem"
is "$rc/$err" "3/smtptls: '$T/two.pem' line 1: cannot decode CERTIFICATE: base64 decoding error (and 1 more bad block)" \
	"two bad blocks: one line, 'and 1 more bad block'"

done_testing
