#!/bin/bash
# t0411: a worker thread that cannot be started (the address space of serve limited with
# prlimit before its first message) is a 451 for that client (454 for AUTH, not a 535 that
# calls a right password wrong), and serve goes on; before, libuv's thread pool aborted the
# whole process
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need python3 prlimit openssl
cd "$T" || exit 1
grep -q __asan_init "$SMTPTLS" &&
	plan_skip_all "AddressSanitizer reserves terabytes of address space: no limit to set"
big() { python3 "$TOP_SRCDIR/tests/lib/big-smtp.py" "$@"; }

echo "u:$(openssl passwd -6 secret)" >"$T/auth"
# auth.py PORT: AUTH PLAIN with the right password; prints the reply
cat >"$T/auth.py" <<'EOF2'
import base64, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline()
        if not l or l[3:4] != b"-":
            return l.decode().strip()
reply()
s.sendall(b"EHLO c.smtptls.test\r\n")
reply()
s.sendall(b"AUTH PLAIN " + base64.b64encode(b"\0u\0secret") + b"\r\n")
print(reply())
EOF2
serve --listen 127.0.0.1:0 --workers 1 --maildir "$T/md" --domains big.smtptls.test --log "$T/log.json" \
	--auth-file "$T/auth" --auth-plaintext ||
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
is "$(timeout 30 python3 "$T/auth.py" "$(port smtp)")" "454 4.7.0 Temporary authentication failure" \
	"AUTH with the right password: 454, a temporary failure (not 535)"
like "$(cat "$T/serve.err")" "cannot start a thread to check a password" "(its reason too)"
prlimit --pid "$pid" --as=unlimited:
big send "$(port smtp)" 2 4000 "$T/md" >"$T/b.out"
is "$(awk 'NF == 2 {print $2}' "$T/b.out" | tr '\n' ' ')" "whole whole " \
	"the limit lifted: the next messages are stored"
ok "$(ls "/proc/$pid/task" | wc -l | awk '{print ($1 > 1) ? 0 : 1}')" \
	"(with a worker thread started now)"
like "$(timeout 30 python3 "$T/auth.py" "$(port smtp)")" "^235 " "and AUTH succeeds"
kill "$pid"
wait "$pid"
is "$?" 0 "serve ends normally on SIGTERM"
done_testing
