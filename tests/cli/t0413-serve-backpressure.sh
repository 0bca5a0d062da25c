#!/bin/bash
# t0413: serve against clients that pipeline commands and never read the replies
# (NOOP, RCPT with its decisions, VRFY with long lines, NOOP inside TLS): its memory stays bounded
# (backpressure: no more is read while replies wait), the connection ends after the
# timeout with a clear reason, and other clients are served meanwhile
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need python3 jq
cd "$T" || exit 1

# under AddressSanitizer freed memory waits in a quarantine: keep it small, or it would
# be counted as the server's
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1
serve --listen 127.0.0.1:0 --hostname mx.serve.smtptls.test --maildir "$T/md" --log "$T/log.json" \
	--domains example.smtptls.test --idle-timeout 3 --workers 1 --self-signed=localhost ||
	{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
smtp=$(port smtp)
kb() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$pid/status"; }
base=$(kb VmRSS)

# The flooder: sends without reading until the kernel takes no more for a second (or
# 64 MB went), says "stuck BYTES", then waits (at most 60 s) for the server to end the
# connection: "closed" (reset or EOF seen without reading a reply) or "open".
cat >"$T/flood.py" <<'EOF'
import select, socket, ssl, sys, time
port, kind = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=20)
if kind == "tls":
    f = s.makefile("rb")
    def reply():
        while True:
            l = f.readline()
            if not l or l[3:4] != b"-":
                return l
    reply()
    s.sendall(b"EHLO flood.smtptls.test\r\n"); reply()
    s.sendall(b"STARTTLS\r\n"); reply()
    t = ssl.create_default_context(); t.check_hostname = False; t.verify_mode = ssl.CERT_NONE
    s = t.wrap_socket(s)
s.setblocking(False)
if kind in ("noop", "tls"):
    chunk = b"NOOP\r\n" * 10000
elif kind == "rcpt":
    chunk = b"RSET\r\nMAIL FROM:<f@client.smtptls.test>\r\n" + \
        b"RCPT TO:<r@example.smtptls.test>\r\n" * 500
else:
    chunk = b"VRFY " + b"v" * 480 + b"\r\n"
    chunk = chunk * 100
sent, t0 = 0, time.monotonic()
p = select.poll()
p.register(s, select.POLLOUT)
while sent < 64 << 20:
    if not p.poll(1000):
        break
    try:
        sent += s.send(chunk)
    except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
        pass
    except OSError:
        print("error while sending", flush=True)
        sys.exit(1)
print("stuck %d" % sent if sent < 64 << 20 else "unbounded %d" % sent, flush=True)
t1 = time.monotonic()
p = select.poll()
p.register(s, select.POLLRDHUP)
ev = p.poll(60000)
print("closed" if ev else "open", flush=True)
EOF

flood() {
	local kind=$1 line other fp
	timeout 200 python3 "$T/flood.py" "$smtp" "$kind" >"$T/flood.$kind" &
	fp=$!
	line=$(wait_log "$T/flood.$kind" "^(stuck|unbounded|error)" 120)
	like "$line" "^stuck [0-9]+$" "$kind flood: the client's sends block: serve stopped reading it"
	diag "$kind: $line, serve VmRSS $(kb VmRSS) kB, peak $(kb VmHWM) kB (at start $base kB)"
	[ "$(($(kb VmHWM) - base))" -lt 40000 ]
	ok "$?" "$kind flood: serve's peak memory grew by less than 40 MB"
	# another client meanwhile
	other=$(python3 "$TOP_SRCDIR/tests/lib/smtp-dialog.py" "$smtp" "EHLO other.smtptls.test" \
		"MAIL FROM:<o@client.smtptls.test>" "RCPT TO:<o@example.smtptls.test>" DATA \
		'Subject: meanwhile\r\n\r\nserved\r\n.' QUIT)
	like "$other" "-> 250 2\\.0\\.0 Ok: queued as " "$kind flood: another client is served meanwhile"
	wait "$fp"
	is "$(sed -n 2p "$T/flood.$kind")" "closed" "$kind flood: serve ends the connection after the timeout"
	is "$(jq -c 'select(.event == "disconnect" and
		.reason == "timeout: the client does not read its replies")' "$T/log.json" | wc -l)" \
		"$2" "$kind flood: the reason is logged"
}

flood noop 1
flood rcpt 2
flood vrfy 3
flood tls 4
is "$(ls "$T/md/new" | wc -l)" 4 "the four other clients' messages are in the Maildir"
done_testing
