#!/bin/bash
# t0002: write errors on standard output are reported, not ignored
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
need certtool
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }

# more output than a pipe holds, so the writer must see the closed pipe
for i in $(seq 1 200); do cat "$T/pki/server-chain.pem"; done >"$T/many.pem"

"$SMTPTLS" fingerprint "$T/many.pem" 2>"$T/err" | head -c 0
st_rc=${PIPESTATUS[0]}
is "$st_rc" 9 "a closed pipe gives exit status 9"
like "$(cat "$T/err")" "cannot write to standard output: Broken pipe" "a closed pipe is reported"
is "$(grep -c . "$T/err")" 1 "a closed pipe is reported once"

"$SMTPTLS" --json fingerprint "$T/many.pem" 2>"$T/err" | head -n 1 >/dev/null
is "${PIPESTATUS[0]}" 9 "a pipe closed after some output gives exit status 9"

if [ -w /dev/full ]; then
	"$SMTPTLS" fingerprint "$T/pki/server.pem" >/dev/full 2>"$T/err"
	is "$?" 9 "a full device gives exit status 9"
	like "$(cat "$T/err")" "cannot write to standard output: No space left on device" "a full device is reported"
	"$SMTPTLS" --help >/dev/full 2>"$T/err"
	is "$?" 9 "--help into a full device gives exit status 9"
	"$SMTPTLS" --complete=fingerprint >/dev/full 2>"$T/err"
	is "$?" 9 "--complete into a full device gives exit status 9"
else
	skip 4 "no writable /dev/full"
fi

"$SMTPTLS" fingerprint "$T/pki/server.pem" >"$T/ok.out" 2>"$T/err"
is "$?" 0 "a normal run exits 0"
is "$(cat "$T/err")" "" "a normal run prints nothing on stderr"

# started with standard streams closed: no crash, a closed stdout is a write failure
"$SMTPTLS" fingerprint "$TOP_SRCDIR/tests/unit/data/ec.pem" >&- 2>"$T/err"
is "$?" 9 "stdout closed at start: exit status 9"
like "$(cat "$T/err")" "cannot write to standard output: Bad file descriptor" "and it is said"
run "$SMTPTLS" probe --timeout 5 "[127.0.0.1]:1" <&-
is "$rc" 5 "stdin closed at start: the probe runs (exit 5: nothing listens on port 1)"

done_testing
