#!/bin/bash
# t0414: deadlines, as Postfix's smtpd_per_request_deadline and smtpd_min_data_rate: a
# client that trickles a command line or a message a byte at a time is ended with
# Postfix's "421 4.4.2 HOST Error: timeout exceeded" (the same words as a real smtpd with
# deadlines on), a slow but fast enough message is not, and tricklers cannot hold every
# connection slot for longer than the deadline
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
need python3 jq openssl
pf_require
cd "$T" || exit 1

serve --listen 127.0.0.1:0 --hostname mx.serve.smtptls.test --maildir "$T/md" --log "$T/log.json" \
	--domains example.smtptls.test --idle-timeout 2 --max-connections 4 --workers 1 ||
	{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
smtp=$(port smtp)

# The client: PORT MODE. It reads the banner, then (data: after EHLO, MAIL, RCPT and DATA)
# sends its bytes: "line" and "body" a byte every 0.2 s without ever ending the line,
# "slow" a 25 kB message at 5000 bytes a second (ten times the minimum rate, longer than
# the timeout). It prints every reply line it gets after the banner and "closed" when the
# server ends the connection, or "open" after 20 s (ten times the deadline).
cat >"$T/trickle.py" <<'EOF'
import select, socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=20)
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline()
        if not l or l[3:4] != b"-":
            return l.decode(errors="replace").strip()
banner = reply()
if not banner.startswith("220"):
    print(banner, flush=True)
    sys.exit(0)
if len(sys.argv) > 3:
    print("ready", flush=True)
if mode in ("body", "slow"):
    for c in [b"EHLO trickle.smtptls.test", b"MAIL FROM:<t@client.smtptls.test>",
              b"RCPT TO:<t@example.smtptls.test>", b"DATA"]:
        s.sendall(c + b"\r\n")
        reply()
if mode == "slow":
    line = b"x" * 498 + b"\r\n"
    for i in range(50):
        s.sendall(line)
        time.sleep(0.1)
    s.sendall(b".\r\n")
    print(reply(), flush=True)
    s.sendall(b"QUIT\r\n")
    print(reply(), flush=True)
    sys.exit(0)
t0 = time.monotonic()
buf = b""
while time.monotonic() - t0 < 20:
    r, _, _ = select.select([s], [], [], 0.2)
    if r:
        d = s.recv(4096)
        if not d:
            for l in buf.decode(errors="replace").splitlines():
                print(l, flush=True)
            print("closed", flush=True)
            sys.exit(0)
        buf += d
        continue
    try:
        s.send(b"x")
    except OSError:
        pass
print(buf.decode(errors="replace").strip(), flush=True)
print("open", flush=True)
EOF
trickle() { timeout 60 python3 "$T/trickle.py" "$@"; }

is "$(trickle "$smtp" line)" "421 4.4.2 mx.serve.smtptls.test Error: timeout exceeded
closed" "a command line trickled a byte at a time: 421 timeout exceeded, then the end"
is "$(trickle "$smtp" body)" "421 4.4.2 mx.serve.smtptls.test Error: timeout exceeded
closed" "a message trickled a byte at a time: the same"
like "$(trickle "$smtp" slow)" "^250 2\\.0\\.0 Ok: queued as [0-9A-F]+
221 2\\.0\\.0 Bye$" "a message sent slowly but faster than --min-data-rate: queued"
is "$(jq -r 'select(.event == "disconnect") | .reason' "$T/log.json" | sort | uniq -c | tr -s ' ')" \
	" 1 quit
 2 timeout" "the log: two timeouts"

# four tricklers hold every slot (--max-connections 4): the next client is refused, and
# once the deadline has passed for them a new one is served
tp=()
for i in 1 2 3 4; do
	trickle "$smtp" line wait >"$T/t$i.out" &
	tp+=($!)
done
for i in 1 2 3 4; do
	is "$(wait_log "$T/t$i.out" . 30)" ready "trickler $i has its banner"
done
is "$(trickle "$smtp" line)" "421 4.7.0 mx.serve.smtptls.test Error: too many connections" \
	"every slot held: the next client is refused"
wait "${tp[@]}"
for i in 1 2 3 4; do
	is "$(sed 1d "$T/t$i.out")" "421 4.4.2 mx.serve.smtptls.test Error: timeout exceeded
closed" "trickler $i: ended by the deadline"
done
like "$(trickle "$smtp" slow)" "^250 2\\.0\\.0 Ok: queued as " "then a new client is served"

# the time serve takes to decide is not the client's: a wrong password, answered after
# Postfix's one-second error sleep, gets its 535 even with a deadline of one second
printf 'alice:%s\n' "$(openssl passwd -6 s3cret)" >"$T/users"
serve_as auth --listen 127.0.0.1:0 --hostname mx.serve.smtptls.test --maildir "$T/md-auth" \
	--domains example.smtptls.test --idle-timeout 1 --auth-file "$T/users" --auth-plaintext ||
	exit 1
is "$(python3 "$TOP_SRCDIR/tests/lib/smtp-dialog.py" "$port" "EHLO client.smtptls.test" \
	"AUTH PLAIN $(printf '\0alice\0wrong' | base64 -w0)" "NOOP" | sed -n '2,3p' | sed 's/^.* -> //')" \
	"535 5.7.8 Error: authentication failed: authentication failure
250 2.0.0 Ok" "a decision longer than the deadline: its answer, and the session goes on"

# the same tricklers against a real Postfix with deadlines on: the same reply
D=$T/postfix
chmod 755 "$T"
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
pport=$(pf_free_port)
pf_conf "$D" "smtpd_timeout=2s" "smtpd_per_request_deadline=yes" "smtpd_min_data_rate=500" \
	"mydestination=example.smtptls.test" "local_recipient_maps=" "local_transport=discard:" \
	"default_transport=discard:" "mynetworks=192.0.2.0/24"
pf_smtpd_service "$D" "$pport"
pf_start "$D" || { diag "Postfix did not start"; exit 1; }
host=$(postconf -c "$D/etc" -h myhostname)
is "$(trickle "$pport" line)" "421 4.4.2 $host Error: timeout exceeded
closed" "Postfix, a command line trickled: the same 421"
is "$(trickle "$pport" body)" "421 4.4.2 $host Error: timeout exceeded
closed" "Postfix, a message trickled: the same 421"
like "$(trickle "$pport" slow)" "^250 2\\.0\\.0 Ok: queued as [0-9A-Za-z]+
221 2\\.0\\.0 Bye$" "Postfix, the slow message: queued"
done_testing
