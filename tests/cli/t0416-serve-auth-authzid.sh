#!/bin/bash
# t0416: smtptls serve refuses AUTH PLAIN with an authorization identity other than the
# user (535, as a wrong password, logged as a failed authentication); an empty one or the
# user's own is taken, as Cyrus and Dovecot do for users without proxy rights
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need jq python3 openssl
cd "$T" || exit 1

printf 'alice:%s\nbob:%s\n' "$(openssl passwd -6 s3cret)" "$(openssl passwd -6 other)" >"$T/users"
serve --listen 127.0.0.1:0 --maildir "$T/md" --log "$T/log.json" --domains mx.smtptls.test \
	--auth-file "$T/users" --auth-plaintext ||
	{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
smtp=$(port smtp)

# plain AUTHZID USER PASS: AUTH PLAIN in a session of its own; prints the reply to it, then
# the reply to a RCPT for another domain (relayed only when authenticated)
cat >"$T/plain.py" <<'EOF'
import base64, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline()
        if not l or l[3:4] != b"-":
            return l.decode().rstrip()
reply()
s.sendall(b"EHLO client.smtptls.test\r\n"); reply()
resp = base64.b64encode("\0".join(sys.argv[2:5]).encode()).decode()
s.sendall(("AUTH PLAIN " + resp + "\r\n").encode()); print(reply())
s.sendall(b"MAIL FROM:<alice@client.smtptls.test>\r\n"); reply()
s.sendall(b"RCPT TO:<x@elsewhere.smtptls.test>\r\n"); print(reply())
s.sendall(b"QUIT\r\n"); reply()
EOF
plain() { python3 "$T/plain.py" "$smtp" "$@" 2>&1 | tr '\n' '|'; }

is "$(plain '' alice s3cret)" "235 2.7.0 Authentication successful|250 2.1.5 Ok|" \
	"an empty authorization identity: authenticated, and relayed"
is "$(plain alice alice s3cret)" "235 2.7.0 Authentication successful|250 2.1.5 Ok|" \
	"the user's own: authenticated"
is "$(plain bob alice s3cret)" \
	"535 5.7.8 Error: authentication failed: authentication failure|554 5.7.1 <x@elsewhere.smtptls.test>: Relay access denied|" \
	"another user's: 535 as a wrong password, and no relay"
is "$(plain Alice alice s3cret)" \
	"535 5.7.8 Error: authentication failed: authentication failure|554 5.7.1 <x@elsewhere.smtptls.test>: Relay access denied|" \
	"compared exactly"
is "$(plain alice alice wrong)" \
	"535 5.7.8 Error: authentication failed: authentication failure|554 5.7.1 <x@elsewhere.smtptls.test>: Relay access denied|" \
	"a wrong password: the same reply"
is "$(jq -c 'select(.event == "auth") | [.user, .ok, .authzid]' "$T/log.json" | tr '\n' ' ')" \
	'["alice",true,null] ["alice",true,"alice"] ["alice",false,"bob"] ["alice",false,"Alice"] ["alice",false,"alice"] ' \
	"the log counts a refused one as a failed authentication, with its authorization identity"

done_testing
