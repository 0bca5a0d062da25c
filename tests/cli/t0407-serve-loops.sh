#!/bin/bash
# t0407: serve's event loops (--workers): connections spread over every loop through
# SO_REUSEPORT, one thread per loop, and the connection limits shared by all of them
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need jq python3
cd "$T" || exit 1

# conns PORT N HOLD: N connections one after the other, each read to its banner; with
# HOLD all are kept open until the last; prints each banner's code
conns() {
	python3 - "$@" <<'PY'
import socket, sys
port, n, hold = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "hold"
held = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    banner = b""
    while not banner.endswith(b"\n"):
        chunk = s.recv(512)
        if not chunk:
            break
        banner += chunk
    print(banner[:3].decode() or "closed")
    if hold:
        held.append(s)
    else:
        s.close()
for s in held:
    s.close()
PY
}

serve --listen 127.0.0.1:0 --workers 2 --maildir "$T/md" --log "$T/two.json" ||
	{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
two=$pid
is "$(ls "/proc/$pid/task" | wc -l)" 2 "--workers 2: two threads before any work (one per loop)"
conns "$(port smtp)" 40 close >"$T/codes"
is "$(sort -u "$T/codes")" 220 "40 connections, each greeted"
kill "$two"
wait "$two"
is "$(jq -r 'select(.event == "connect") | .loop' "$T/two.json" | sort -u | tr '\n' ' ')" "0 1 " \
	"the kernel spread them over both loops (SO_REUSEPORT)"

# the limits count every loop's connections: 10 held from one address, at most 5
serve --listen 127.0.0.1:0 --workers 2 --max-per-client 5 --maildir "$T/md" --log "$T/lim.json" ||
	{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
conns "$(port smtp)" 10 hold >"$T/codes"
is "$(grep -c '^220$' "$T/codes")/$(grep -c '^421$' "$T/codes")" "5/5" \
	"--max-per-client 5 over two loops: five greeted, five refused with 421"
kill "$pid"
wait "$pid"
is "$(jq -r 'select(.event == "connect") | .loop' "$T/lim.json" | sort -u | wc -l)" 2 \
	"(the ten came to both loops)"

serve --listen 127.0.0.1:0 --workers 1 --maildir "$T/md" --log "$T/one.json" ||
	{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
is "$(ls "/proc/$pid/task" | wc -l)" 1 "--workers 1: one thread"
conns "$(port smtp)" 10 close >/dev/null
kill "$pid"
wait "$pid"
is "$(jq -r 'select(.event == "connect") | .loop' "$T/one.json" | sort -u)" 0 "every connection on loop 0"

st serve --workers 0 --listen 127.0.0.1:0
is "$rc" 2 "--workers 0: usage error"
like "$err" "--workers: '0' is not a number from 1 to 64" "saying why"

done_testing
