#!/bin/bash
# t0001: the smtptls command: help, version, commands, global options, exit statuses
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
need certtool
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }

st --help
is "$rc" 0 "--help exits 0"
for c in probe policy verify fingerprint serve; do
	like "$out" "^  $c +[A-Z]" "--help lists the $c command with a summary"
done
like "$out" "--json" "--help lists --json"

st --version
is "$rc" 0 "--version exits 0"
like "$out" "^smtptls [0-9]+\.[0-9]+\.[0-9]+$" "--version prints name and version"

st
is "$rc" 2 "no command: usage status 2"
like "$err" "no command given" "no command: says so"

st fingerprnt x.pem
is "$rc" 2 "unknown command: usage status"
like "$err" "unknown command 'fingerprnt'; did you mean 'fingerprint'\?" "unknown command: did you mean"
st vrfy
like "$err" "did you mean 'verify'" "unknown command: suggestion for an abbreviation"
st zzzzzzzz
unlike "$err" "did you mean" "unknown command: no far-fetched suggestion"

st policy --no-postfix-config --json something
is "$rc" 2 "policy with an unknown action: usage status"
like "$err" "'something' is not check, lookup or test" "policy names the actions"
st policy --help
is "$rc" 0 "policy --help exits 0"

st fingerprint --help
is "$rc" 0 "fingerprint --help exits 0"
like "$out" "--digest" "fingerprint --help shows its options"
like "$out" "--json" "fingerprint --help shows the global options"

st fingerprint --bogus x
is "$rc" 2 "unknown option: usage status"
like "$err" "unrecognized option '--bogus'" "unknown option: named"
like "$err" "Try 'smtptls fingerprint --help'" "unknown option: hint"
st --color=sometimes fingerprint "$T/pki/ca.pem"
is "$rc" 2 "bad --color value: usage status"
like "$err" "--color: 'sometimes' is not auto, always or never" "bad --color value: named"

# a word after an option whose value is optional is an argument to getopt: say what was meant
st serve --self-signed mx.smtptls.test
is "$rc" 2 "serve --self-signed NAME: usage status"
like "$err" "got 'mx.smtptls.test'\); did you mean --self-signed=mx.smtptls.test\?" \
	"serve --self-signed NAME: did you mean --self-signed=NAME"
st serve --self mx.smtptls.test --listen 0
like "$err" "did you mean --self-signed=mx.smtptls.test\?" \
	"an abbreviated option, other options after it: the same hint"
st serve --listen 0 mx.smtptls.test
unlike "$err" "did you mean" "a stray word after a required-value option: no hint"
st fingerprint --relay-clientcerts OK "$T/pki/server.pem"
is "$rc" 2 "fingerprint --relay-clientcerts VALUE: usage status"
like "$err" "no file 'OK'; did you mean --relay-clientcerts=OK\?" \
	"fingerprint --relay-clientcerts VALUE: did you mean --relay-clientcerts=VALUE"
st fingerprint --relay-clientcerts "$T/pki/server.pem"
is "$rc" 0 "fingerprint --relay-clientcerts FILE: the file is read, no hint"

# global options before and after the command name give the same result
st --json fingerprint "$T/pki/server.pem"
before=$out
st fingerprint --json "$T/pki/server.pem"
is "$out" "$before" "--json before or after the command name: same output"
like "$out" '^\{"file":' "--json gives JSON"
st fingerprint "$T/pki/server.pem" --json
is "$out" "$before" "--json after the file name: same output"
st -q fingerprint -v -v "$T/pki/server.pem"
like "$err" "1 item" "-v after -q turns notes on"
st fingerprint -v "$T/pki/server.pem" -q
is "$err" "" "-q after -v turns notes off"

# colour
st fingerprint --color=always "$T/pki/server.pem"
like "$out" $'\033\\[' "--color=always colours the text"
NO_COLOR=1 run "$SMTPTLS" fingerprint --color=always "$T/pki/server.pem"
like "$out" $'\033\\[' "--color=always wins over NO_COLOR"
st fingerprint --color=auto "$T/pki/server.pem"
unlike "$out" $'\033' "--color=auto: no colour into a file"
if command -v script >/dev/null; then
	script -qec "$SMTPTLS fingerprint $T/pki/server.pem" /dev/null >"$T/tty.out" 2>&1
	like "$(cat "$T/tty.out")" $'\033\\[' "--color=auto colours on a terminal"
	NO_COLOR=1 script -qec "$SMTPTLS fingerprint $T/pki/server.pem" /dev/null >"$T/tty.out" 2>&1
	unlike "$(cat "$T/tty.out")" $'\033\\[' "NO_COLOR turns colour off on a terminal"
	NO_COLOR= script -qec "$SMTPTLS fingerprint $T/pki/server.pem" /dev/null >"$T/tty.out" 2>&1
	like "$(cat "$T/tty.out")" $'\033\\[' "an empty NO_COLOR does not"
else
	skip 3 "script (util-linux) not installed"
fi

done_testing
