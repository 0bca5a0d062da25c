#!/bin/bash
# t0410: serve under memory pressure: never 250 for a message not stored whole (the server's
# address space limited with prlimit, 12 clients sending 9 MB at once), and the body streamed
# to disk as it comes, so 30 connections in the middle of a 9 MB DATA cost serve little
# memory (VmRSS from /proc)
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need python3 prlimit
cd "$T" || exit 1
big() { python3 "$TOP_SRCDIR/tests/lib/big-smtp.py" "$@"; }
kb() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$2/status"; }

# 1. the address space limited to what serve has at start, and 50 MB more: before, the
# whole bodies (12 x 9 MB, each in a buffer grown by doubling) did not fit, appends failed
# unseen and clients got 250 for messages stored cut short
if grep -q __asan_init "$SMTPTLS"; then
	skip 6 "AddressSanitizer reserves terabytes of address space: no limit to set"
else
	serve --listen 127.0.0.1:0 --maildir "$T/md" --domains big.smtptls.test --log "$T/as.json" ||
		{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
	# one message first: the worker threads are started (libuv's pool, before: its start
	# failing aborts the process, t0411), so what follows is about memory alone
	big send "$(port smtp)" 1 1000 "$T/md" >"$T/first.out"
	is "$(tail -1 "$T/first.out")" "0 whole" "a first small message, stored"
	vm=$(kb VmSize "$pid")
	prlimit --pid "$pid" --as=$(((vm + 50000) * 1024)):
	big send "$(port smtp)" 12 9000000 "$T/md" >"$T/as.out"
	is "$(awk 'NF == 3' "$T/as.out" | wc -l)" 12 "twelve clients answered"
	unlike "$(awk 'NF == 3 && $2 != 250 && $2 !~ /^4/' "$T/as.out")" . \
		"each got 250 or a 4xx, nothing else"
	grep -q '^[0-9]* 250 ' "$T/as.out"
	ok $? "some got 250" || diag "$(cat "$T/as.out")"
	unlike "$(awk 'NF == 2 && $2 != "whole"' "$T/as.out")" . \
		"every message acknowledged is in new/, byte for byte" ||
		diag "$(awk 'NF == 2' "$T/as.out" | tr '\n' ' ')"
	is "$(ls "$T/md/new" | wc -l)/$(ls "$T/md/tmp" | wc -l)" \
		"$(($(grep -c '^[0-9]* 250 ' "$T/as.out") + 1))/0" \
		"new/ holds exactly the messages acknowledged, tmp/ nothing"
	diag "$(awk 'NF == 3 {print $2}' "$T/as.out" | sort | uniq -c | tr '\n' ' ')"
	kill "$pid"
	wait "$pid"
fi

# a file size limit (RLIMIT_FSIZE, 5 MB) on serve: writing a 9 MB message fails (EFBIG,
# not the signal, which would end serve): 451 and no file; a small message still goes
serve --listen 127.0.0.1:0 --maildir "$T/fs" --domains big.smtptls.test ||
	{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
prlimit --pid "$pid" --fsize=5000000:
big send "$(port smtp)" 2 9000000 "$T/fs" >"$T/fs.out"
is "$(awk 'NF == 3 {print $2}' "$T/fs.out" | tr '\n' ' ')" "451 451 " \
	"a file size limit: 451 4.3.0 for the messages over it"
is "$(find "$T/fs" -type f | wc -l)" 0 "(no file left in new/ or tmp/)"
big send "$(port smtp)" 1 4000 "$T/fs" >"$T/fs.out"
is "$(tail -1 "$T/fs.out")" "0 whole" "serve goes on: a small message is stored"
like "$(cat "$T/serve.err")" "cannot write in the Maildir '$T/fs': File too large" \
	"the reason, on standard error"
kill "$pid"
wait "$pid"

# 2. 30 connections each having sent 9 MB of a 9.5 MB message: before, serve grew by the
# bodies (~270 MB); streamed, by at most 40 MB
serve --listen 127.0.0.1:0 --maildir "$T/md2" --domains big.smtptls.test ||
	{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
before=$(kb VmRSS "$pid")
coproc HOLD { big hold "$(port smtp)" 30 9000000 9500000; }
read -r -t 120 held n <&"${HOLD[0]}"
is "$held $n" "held 30" "30 connections in DATA, 9 MB each sent and read by serve"
after=$(kb VmRSS "$pid")
[ $((after - before)) -lt 40960 ]
ok $? "serve's VmRSS grew by less than 40 MB"
diag "VmRSS: $before kB before, $after kB with 30 bodies of 9 MB under way"
is "$(ls "$T/md2/new" | wc -l)" 0 "(nothing delivered: the messages are not ended)"
exec {HOLD[1]}>&-
wait "$HOLD_PID"
kill "$pid"
wait "$pid"
is "$(ls "$T/md2/tmp" | wc -l)" 0 "the clients gone, their unfinished files are removed"
done_testing
