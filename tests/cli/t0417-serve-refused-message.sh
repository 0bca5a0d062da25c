#!/bin/bash
# t0417: a message the engine refuses itself at the end of data (552 for its size, 500 for a
# line too long) leaves nothing behind at once, while the client stays connected: not its
# Maildir file in tmp/, not its relay queue file, not their descriptors; before, both files
# stayed open in tmp/ until the connection's next DATA or its end (RSET and NOOP kept them)
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need python3
cd "$T" || exit 1

serve --listen 127.0.0.1:0 --maildir "$T/md" --queue-dir "$T/q" --domains local.smtptls.test \
	--mynetworks 127.0.0.0/8 --relayhost '[127.0.0.1]:1' --max-size 10000 ||
	{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
# for each case: the reply to the end of data, then what tmp/ holds and serve's open files,
# after the reply and after RSET, the connection still open; then a message that fits
cat >"$T/refused.py" <<'EOF2'
import os, socket, sys

port, d, pid = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=30)
f = s.makefile("rb")

def reply():
    while True:
        l = f.readline()
        if not l:
            raise OSError("closed")
        if l[3:4] != b"-":
            return l.decode().strip()

def cmd(c):
    s.sendall(c + b"\r\n")
    return reply()

def link(x):
    try:
        return os.readlink("/proc/%s/fd/%s" % (pid, x))
    except OSError:
        return ""  # closed meanwhile (the relay queue at work)

def held():
    files = sorted(os.listdir(d + "/md/tmp") + os.listdir(d + "/q/tmp"))
    spool = [x for x in os.listdir("/proc/%s/fd" % pid)
             if link(x).startswith((d + "/md/tmp/", d + "/q/tmp/"))]
    return "tmp:%d fds:%d" % (len(files), len(spool))

def message(body):
    cmd(b"MAIL FROM:<a@x.smtptls.test>")
    cmd(b"RCPT TO:<b@local.smtptls.test>")
    cmd(b"RCPT TO:<c@far.smtptls.test>")
    r = cmd(b"DATA")
    if not r.startswith("354"):
        return r
    s.sendall(body + b".\r\n")
    return reply()

reply()
cmd(b"EHLO c.smtptls.test")
for name, body in (("size", b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 200),
                   ("line", b"Subject: long\r\n\r\n" + b"z" * 1200 + b"\r\n")):
    r = message(body)
    a = held()
    cmd(b"RSET")
    print(name, r[:3], a, held())
print("fits", message(b"Subject: small\r\n\r\nhi\r\n")[:3], held())
cmd(b"QUIT")
EOF2
out=$(timeout 60 python3 "$T/refused.py" "$(port smtp)" "$T" "$pid" 2>&1)
like "$out" "^size 552 tmp:0 fds:0 tmp:0 fds:0" "552: no file in tmp/, none open, at once" ||
	diag "$out"
like "$out" "line 500 tmp:0 fds:0 tmp:0 fds:0" "500 (a line too long): the same" || diag "$out"
like "$out" "fits 250 tmp:0 fds:0" "a message that fits is then stored" || diag "$out"
is "$(ls "$T/md/new" | wc -l)" 1 "(one message in new/)"
done_testing
