#!/bin/bash
# t0307: the end of a TLS session after QUIT is a close_notify alert, not a cut connection,
# both ways and as Postfix does it: serve sends one after its 221 (STARTTLS and smtps), seen
# by a Python ssl client that tells close_notify from a bare EOF and by openssl s_client
# (which says "unexpected eof" otherwise), side by side with a real Postfix smtpd; and probe,
# policy test and serve's onward relay send one after their QUIT, seen by a Python ssl server
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need certtool openssl python3 jq swaks
pf_require
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
chmod 755 "$T" "$P" && chmod 644 "$P"/*.key
cd "$T" || exit 1

# end.py client starttls|smtps PORT: EHLO, (STARTTLS, EHLO,) QUIT, then read to the end;
#   prints "close_notify" (the read ends cleanly) or "eof ..." (the connection was cut)
# end.py server starttls|smtps CERT KEY COUNT: an SMTP server on 127.0.0.1 that prints
#   "ready PORT", takes COUNT sessions one after the other (anything but DATA and QUIT gets
#   250) and prints, for each, how the client ended TLS after the 221
cat >"$T/end.py" <<'EOF'
import socket, ssl, sys

def lines(conn, buf):
    """lines read from conn, or from conn[0] (a list: the socket changes at STARTTLS)"""
    while True:
        while b"\n" not in buf[0]:
            d = (conn[0] if isinstance(conn, list) else conn).recv(65536)
            if not d:
                return
            buf[0] += d
        l, _, buf[0] = buf[0].partition(b"\n")
        yield l.rstrip(b"\r")

def reply(conn, buf):
    for l in lines(conn, buf):
        if l[3:4] != b"-":
            return l
    raise EOFError("no reply")

def ending(conn):
    """how the peer ended TLS: close_notify, or a bare EOF"""
    try:
        while conn.recv(65536):
            pass
        return "close_notify"
    except ssl.SSLEOFError as e:
        return "eof (%s)" % e.reason
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return "eof (%s)" % e

mode = sys.argv[2]
if sys.argv[1] == "client":
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = socket.create_connection(("127.0.0.1", int(sys.argv[3])), timeout=20)
    buf = [b""]
    if mode == "smtps":
        s = ctx.wrap_socket(s, suppress_ragged_eofs=False)
    reply(s, buf)
    s.sendall(b"EHLO c.smtptls.test\r\n"); reply(s, buf)
    if mode == "starttls":
        s.sendall(b"STARTTLS\r\n"); reply(s, buf)
        s = ctx.wrap_socket(s, suppress_ragged_eofs=False)
        s.sendall(b"EHLO c.smtptls.test\r\n"); reply(s, buf)
    s.sendall(b"QUIT\r\n")
    r = reply(s, buf)
    print(r.decode()[:3], ending(s))
    sys.exit(0)

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[3], sys.argv[4])
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(8)
print("ready", ls.getsockname()[1], flush=True)
for _ in range(int(sys.argv[5])):
    c, _ = ls.accept()
    c.settimeout(20)
    buf = [b""]
    cc = [c]
    try:
        if mode == "smtps":
            c = cc[0] = ctx.wrap_socket(c, server_side=True, suppress_ragged_eofs=False)
        c.sendall(b"220 end.smtptls.test ESMTP\r\n")
        for l in lines(cc, buf):
            v = l[:4].upper()
            if v == b"STAR" and not isinstance(c, ssl.SSLSocket):
                c.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                c = cc[0] = ctx.wrap_socket(c, server_side=True, suppress_ragged_eofs=False)
            elif v in (b"EHLO", b"HELO"):
                tls = b"" if isinstance(c, ssl.SSLSocket) else b"250-STARTTLS\r\n"
                c.sendall(b"250-end.smtptls.test\r\n" + tls + b"250 8BITMIME\r\n")
            elif v == b"DATA":
                c.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                for d in lines(c, buf):
                    if d == b".":
                        break
                c.sendall(b"250 2.0.0 Ok: queued as END1\r\n")
            elif v == b"QUIT":
                c.sendall(b"221 2.0.0 Bye\r\n")
                print(ending(c), flush=True)
                break
            else:
                c.sendall(b"250 2.0.0 Ok\r\n")
    except (OSError, EOFError) as e:
        print("error", e, flush=True)
    c.close()
EOF

# 1. the server side: serve, then Postfix, both ways, to the Python client and s_client
serve --listen 127.0.0.1:0/smtp --listen 127.0.0.1:0/smtps --self-signed=localhost \
	--maildir "$T/m" || { diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
D=$T/postfix
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
pst=$(pf_free_port) pws=$(pf_free_port)
pf_conf "$D" "smtpd_tls_chain_files=$P/server.key,$P/server-chain.pem" || exit 1
pf_smtpd_service "$D" "$pst" -o smtpd_tls_security_level=may
pf_smtpd_service "$D" "$pws" -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt
pf_start "$D" || { diag "Postfix did not start"; exit 1; }
declare -A at=([serve starttls]=$(port smtp) [serve smtps]=$(port smtps)
	[postfix starttls]=$pst [postfix smtps]=$pws)
for who in postfix serve; do
	for m in starttls smtps; do
		is "$(timeout 60 python3 "$T/end.py" client "$m" "${at[$who $m]}" 2>&1)" \
			"221 close_notify" "$who ($m): after the 221, close_notify ends TLS"
		s=()
		[ "$m" = starttls ] && s=(-starttls smtp)
		o=$(printf 'QUIT\r\n' | timeout 60 openssl s_client -quiet "${s[@]}" \
			-connect "127.0.0.1:${at[$who $m]}" 2>&1)
		like "$o" "^221 " "$who ($m): openssl s_client gets the 221"
		unlike "$o" "unexpected eof" "and does not see an unexpected eof"
	done
done

# 2. the client side: probe (STARTTLS and implicit), policy test and serve's relay, each
# against a Python ssl server that says how the session ended
observe() { # MODE COUNT: start end.py server, sets $obs (its port) and $obs_out
	local fifo=$T/obs.fifo l
	obs_out=$T/obs.$1.out
	rm -f "$fifo" && mkfifo "$fifo"
	python3 "$T/end.py" server "$1" "$P/server-chain.pem" "$P/server.key" "$2" >"$fifo" 2>"$T/obs.err" &
	at_exit "kill $! 2>/dev/null"
	exec {ofd}<"$fifo"
	read -r -t 20 l obs <&"$ofd" && [ "$l" = ready ] ||
		{ diag "the observer did not start: $(cat "$T/obs.err")"; return 1; }
	cat <&"$ofd" >"$obs_out" &
	obs_cat=$!
	exec {ofd}<&-
}
observed() { wait "$obs_cat"; seen=$(cat "$obs_out"); } # what the observer saw, once it ended

observe starttls 1 || exit 1
run timeout 60 "$SMTPTLS" probe --timeout 10 --level encrypt --starttls "[127.0.0.1]:$obs"
is "$rc" 0 "probe (STARTTLS) meets encrypt"
observed
is "$seen" close_notify "and ends TLS with close_notify after QUIT"

observe smtps 1 || exit 1
run timeout 60 "$SMTPTLS" probe --timeout 10 --level encrypt --tls-on-connect "[127.0.0.1]:$obs"
is "$rc" 0 "probe (implicit TLS) meets encrypt"
observed
is "$seen" close_notify "and ends TLS with close_notify after QUIT"

observe starttls 1 || exit 1
run timeout 60 "$SMTPTLS" --json policy test --no-postfix-config --timeout 10 \
	--table "inline:{[127.0.0.1]:$obs=encrypt}" "[127.0.0.1]:$obs"
is "$(jq -r .verdict <<<"$out")" delivered "policy test: delivered with TLS"
observed
is "$seen" close_notify "and ends TLS with close_notify after QUIT"

observe starttls 1 || exit 1
serve_as relay --listen 127.0.0.1:0 --maildir "$T/mr" --queue-dir "$T/qr" \
	--mynetworks 127.0.0.0/8 --relayhost "[127.0.0.1]:$obs" --tls-level encrypt \
	--relay-timeout 10 || exit 1
timeout 60 swaks --server 127.0.0.1 --port "$port" --from s@a.smtptls.test \
	--to r@far.smtptls.test >/dev/null 2>&1
ok $? "a message for the relay is accepted"
line=$(wait_log "$T/relay.log" '"event":"relay"')
is "$(jq -r '.status + " " + .tls.version' <<<"$line")" "sent TLSv1.3" "serve relays it over TLS"
observed
is "$seen" close_notify "and ends TLS with close_notify after QUIT"

done_testing
