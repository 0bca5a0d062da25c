#!/bin/bash
# t0411: a worker thread that cannot be started (the address space of serve limited with
# prlimit before its first message) is a 451 for that client, and serve goes on; before,
# libuv's thread pool aborted the whole process
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need python3 prlimit
cd "$T" || exit 1
grep -q __asan_init "$SMTPTLS" &&
	plan_skip_all "AddressSanitizer reserves terabytes of address space: no limit to set"
big() { python3 "$TOP_SRCDIR/tests/lib/big-smtp.py" "$@"; }

serve --listen 127.0.0.1:0 --workers 1 --maildir "$T/md" --domains big.smtptls.test --log "$T/log.json" ||
	{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
is "$(ls "/proc/$pid/task" | wc -l)" 1 "no worker thread before the first message"
# no room for a thread's stack (1 MiB) nor anything big: only what serve has, and 256 KiB
vm=$(sed -n 's/^VmSize:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
prlimit --pid "$pid" --as=$(((vm + 256) * 1024)):
big send "$(port smtp)" 1 4000 "$T/md" >"$T/a.out"
like "$(head -1 "$T/a.out")" "^0 451 " "no thread can be started: 451 to the client"
ok "$(kill -0 "$pid" 2>/dev/null; echo $?)" "serve is still running"
is "$(find "$T/md" -type f | wc -l)" 0 "no file in new/ or tmp/"
like "$(cat "$T/serve.err")" "cannot start a thread to write in the Maildir" "the reason, on standard error"
prlimit --pid "$pid" --as=unlimited:
big send "$(port smtp)" 2 4000 "$T/md" >"$T/b.out"
is "$(awk 'NF == 2 {print $2}' "$T/b.out" | tr '\n' ' ')" "whole whole " \
	"the limit lifted: the next messages are stored"
ok "$(ls "/proc/$pid/task" | wc -l | awk '{print ($1 > 1) ? 0 : 1}')" \
	"(with a worker thread started now)"
kill "$pid"
wait "$pid"
is "$?" 0 "serve ends normally on SIGTERM"
done_testing
