#!/bin/bash
# t0502: smtptls policy check as a script sees it: file:line: severity: message [code]
# lines, --json objects, the exit status by the worst finding (0 clean, 11 warnings, 1
# errors); tables from operands or smtp_tls_policy_maps; a compiled table missing or older
# than its source, in check and lookup; test --all
. "$TOP_SRCDIR/tests/lib/tap.sh"
need jq
PATH=$PATH:/usr/sbin
cd "$T" || exit 1

printf '# clean\nexample.com secure\n.example.com secure\n' >"$T/clean"
run "$SMTPTLS" policy check --no-postfix-config -o smtp_tls_CAfile=/dev/null "texthash:$T/clean"
is "$rc/$out" "0/" "a clean table: exit 0, nothing on standard output"

printf 'example.com may\n* encrypt\n' >"$T/warn"
run "$SMTPTLS" policy check --no-postfix-config "texthash:$T/warn"
is "$rc" 11 "warnings only: exit 11"
like "$out" "^$T/warn:2: warning: .*\\[star-key\\]$" "file:line: severity: message [code]"

printf 'ok.example may\nbad.example encrypt match=hostname\nworse.example strict\n' >"$T/err"
run "$SMTPTLS" --json policy check --no-postfix-config "texthash:$T/warn" "texthash:$T/err"
is "$rc" 1 "an error: exit 1 (the worst wins over warnings)"
is "$(jq -r '.code' <<<"$out" | sort | tr '\n' ' ')" "attribute-not-at-level star-key unknown-level " \
	"--json: one object a finding, with its code"
is "$(jq -r 'select(.code == "unknown-level") | "\(.file):\(.line) \(.severity) \(.key)"' <<<"$out")" \
	"$T/err:3 error worse.example" "with file, line, severity and key"
like "$(jq -r 'select(.code == "attribute-not-at-level") | .message' <<<"$out")" \
	"4\\.7\\.5 client TLS configuration problem" "the message says the consequence"

# the tables of main.cf; a hash: table without its .db, then with an older one
mkdir "$T/pf"
printf 'smtp_tls_policy_maps = hash:%s/pf/tls_policy\nsmtp_tls_security_level = may\n' "$T" >"$T/pf/main.cf"
printf 'example.com encrypt\n' >"$T/pf/tls_policy"
run "$SMTPTLS" policy check --postfix-config "$T/pf"
is "$rc" 1 "smtp_tls_policy_maps read from main.cf; no .db: an error"
like "$out" "tls_policy\\.db' does not exist .*\\[missing-db\\]" "missing-db, named"
run "$SMTPTLS" --json policy lookup --postfix-config "$T/pf" example.com other.example
is "$(jq -r '.valid' <<<"$out" | tr '\n' ,)" "false,false," \
	"lookup: without the .db every next hop is deferred, as Postfix's lookups fail"
like "$(jq -r '.why' <<<"$out" | head -n 1)" "does not exist \\(postmap not run\\).*4\\.7\\.5" "and says why"
if command -v postmap >/dev/null; then
	postmap -c "$T/pf" "hash:$T/pf/tls_policy"
	touch -d '-1 hour' "$T/pf/tls_policy.db"
	run "$SMTPTLS" policy check --postfix-config "$T/pf"
	like "$out" "\\[stale-db\\]" "a .db older than its source: stale-db"
	run "$SMTPTLS" policy lookup --postfix-config "$T/pf" example.com
	like "$err" "is older than its source: Postfix answers from the old entries" \
		"lookup warns that Postfix answers from the old .db"
	is "$rc" 0 "and still answers"
else
	skip 3 "postmap not installed"
fi

# policy test --all: every key that is a next hop (nothing listens on port 1: refused)
run "$SMTPTLS" --json policy test --all --no-postfix-config --timeout 5 --concurrency 2 \
	--table 'inline:{ [127.0.0.1]:1=may, .skip.example=verify, *=encrypt }'
is "$rc/$(jq -r '.nexthop + " " + .verdict + " " + .reason' <<<"$out")" \
	"1/[127.0.0.1]:1 deferred connect to 127.0.0.1[127.0.0.1]:1: Connection refused" \
	"test --all: the one next hop, deferred in Postfix's words"
like "$err" "'\\.skip\\.example' is no next hop \\(a parent-domain entry\\)" "a .parent key is named and skipped"
like "$err" "'\\*' is no next hop \\(no wildcard\\)" "and so is *"

# no table at all; a table that cannot be read
printf 'smtp_tls_security_level = may\n' >"$T/pf/main.cf"
run "$SMTPTLS" policy check --postfix-config "$T/pf"
is "$rc" 2 "check without any table: usage"
like "$err" "smtp_tls_policy_maps is empty" "saying so"
run "$SMTPTLS" policy check --no-postfix-config "regexp:$T/x"
is "$rc" 3 "a table type that is not read: exit 3"

done_testing
