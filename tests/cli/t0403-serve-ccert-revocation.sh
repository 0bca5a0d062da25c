#!/bin/bash
# t0403: serve checks client certificates for revocation: CRL files, OCSP against a real
# openssl ocsp responder (off the event loop: other clients are served while a responder
# hangs), a responder that is down, --require-revocation; bad CRL files at start
. "$TOP_SRCDIR/tests/lib/tap.sh"
need openssl python3 jq ss swaks timeout mkfifo
. "$TOP_SRCDIR/tests/lib/revocation.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"

H=$(pf_free_port) && O=$(pf_free_port) && R=$(pf_free_port) && O2=$(pf_free_port) ||
	{ diag "no free port"; exit 1; }
rev_pki "$T/pki" "$H" "$O" "$R" || { diag "rev_pki failed"; exit 1; }
P=$T/pki
cd "$T" || exit 1
HOST=mx.rev.smtptls.test
# the revoked certificate is listed: permit_tls_clientcerts would relay for it
"$SMTPTLS" fingerprint --relay-clientcerts --pubkey "$P/revoked.pem" >"$T/relay_clientcerts"

# swaks sends its certificate without the intermediate: the CA file has both (the chain
# is still built up to the root, and the intermediate's revocation checked)
cat "$P/ca.pem" "$P/int.pem" >"$T/ccert-ca.pem"

# rserve ARGS...: serve trusting the revocation CAs, its log in $T/$LOG.json; sets $smtp
rserve() {
	serve --listen 127.0.0.1:0 --hostname "$HOST" --maildir "$T/md-$LOG" --log "$T/$LOG.json" \
		--domains example.smtptls.test --ccert-ca-file "$T/ccert-ca.pem" "$@" ||
		{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
	smtp=$(port smtp)
}
# send NAME TO SUBJECT [SWAKS ARGS...]: swaks over STARTTLS presenting NAME.pem, or no
# certificate for NAME "-"; $out, $rc
send() {
	local name=$1 to=$2 subject=$3
	shift 3
	local cert=()
	[ "$name" = - ] || cert=(--tls-cert "$P/$name.pem" --tls-key "$P/$name.key")
	run timeout 150 swaks --server 127.0.0.1 --port "$smtp" --tls "${cert[@]}" --timeout 120 \
		--from a@client.smtptls.test --to "$to" --header "Subject: $subject" --body "$subject" "$@"
}
# stored SUBJECT: the client certificate part of the Received header of the message with
# that subject ("" when none)
stored() {
	local f
	f=$(grep -l "^Subject: $1\$" "$T/md-$LOG"/new/* 2>/dev/null | head -1)
	[ -n "$f" ] && grep -o '(Client CN.*' "$f"
}
# cc CN: the client_cert of the starttls event of that certificate, compact
cc() { jq -c "select(.event == \"starttls\" and .client_cert.subject == \"$1\") | .client_cert |
	{verified, revoked, reason}" "$T/$LOG.json"; }
NOT_TRUSTED="<~\\* 421 4\\.7\\.1 $HOST Error: Client certificate not trusted"

# ---- CRL files, read once at start ----
LOG=crl
rserve --ask-ccert --crl-file "$P/int.crl" --crl-file "$P/root.crl.der" \
	--relay-restrictions permit_tls_clientcerts,permit_tls_all_clientcerts,reject_unauth_destination \
	--relay-clientcerts "$T/relay_clientcerts"
send good b@elsewhere.smtptls.test crl-good
is "$rc" 0 "CRL: a good client certificate relays (permit_tls_all_clientcerts)"
send revoked b@elsewhere.smtptls.test crl-revoked-relay
like "$out" "<~\\* 554 5\\.7\\.1 <b@elsewhere\\.smtptls\\.test>: Relay access denied" \
	"CRL: a revoked one does not, listed in relay_clientcerts and issued by the trusted CA"
send revoked x@example.smtptls.test crl-revoked-local
is "$rc" 0 "CRL: a revoked one still sends to a final destination"
like "$(stored crl-revoked-local)" "^\\(Client CN \"revoked\\.test\\.example\", Issuer \"smtptls Revocation Intermediate\" \\(not verified\\)\\)" \
	"the Received header says not verified"
like "$(stored crl-good)" "\\(verified OK\\)" "and verified OK for the good one"
is "$(cc revoked.test.example | sort -u)" '{"verified":false,"revoked":true,"reason":"revoked (CRL)"}' \
	"the log's starttls event: not verified, revoked, reason revoked (CRL)"
is "$(cc good.test.example)" '{"verified":true,"revoked":false,"reason":null}' "the good one: verified, no reason"
kill "$pid"

LOG=crlreq
rserve --req-ccert --crl-file "$P/int.crl" --crl-file "$P/root.crl" \
	--relay-restrictions permit_tls_all_clientcerts,reject_unauth_destination
send good b@elsewhere.smtptls.test crlreq-good
is "$rc" 0 "CRL, --req-ccert: the good certificate relays"
send revoked b@elsewhere.smtptls.test crlreq-revoked
like "$out" "$NOT_TRUSTED" "CRL, --req-ccert: the revoked one gets Postfix's 421, exactly"
# a certificate of the issuer in no CRL: good; the root's CRL is not given: the
# intermediate's status cannot be had
kill "$pid"
LOG=crlsoft
rserve --req-ccert --crl-file "$P/int.crl"
send good x@example.smtptls.test crlsoft-good
is "$rc" 0 "no CRL of the intermediate's issuer: still trusted without --require-revocation"
like "$(cc good.test.example)" '"reason":"revocation unavailable \(CRL, depth 1\): ' \
	"the log says why the status is missing"
kill "$pid"
LOG=crlhard
rserve --req-ccert --crl-file "$P/int.crl" --require-revocation
send good x@example.smtptls.test crlhard-good
like "$out" "$NOT_TRUSTED" "with --require-revocation: not trusted"
kill "$pid"

# ---- OCSP against openssl ocsp: the intermediate's responder, and the root's ----
rev_ocsp_start "$P" "$O" || { diag "no OCSP responder"; exit 1; }
rev_ocsp_start "$P" "$R" root || { diag "no root OCSP responder"; exit 1; }
LOG=ocspreq
rserve --req-ccert --ocsp --relay-restrictions permit_tls_all_clientcerts,reject_unauth_destination
send good b@elsewhere.smtptls.test ocspreq-good
is "$rc" 0 "OCSP, --req-ccert: the good certificate relays"
send revoked b@elsewhere.smtptls.test ocspreq-revoked
like "$out" "$NOT_TRUSTED" "OCSP, --req-ccert: the revoked one gets Postfix's 421, exactly"
kill "$pid"


LOG=ocsp
rserve --ask-ccert --ocsp \
	--relay-restrictions permit_tls_clientcerts,permit_tls_all_clientcerts,reject_unauth_destination \
	--relay-clientcerts "$T/relay_clientcerts"
send good b@elsewhere.smtptls.test ocsp-good
is "$rc" 0 "OCSP: a good client certificate relays"
send revoked b@elsewhere.smtptls.test ocsp-revoked-relay
like "$out" "<~\\* 554 5\\.7\\.1 <b@elsewhere\\.smtptls\\.test>: Relay access denied" "OCSP: a revoked one does not"
send revoked x@example.smtptls.test ocsp-revoked-local
like "$(stored ocsp-revoked-local)" "\\(not verified\\)" "the Received header says not verified"
is "$(cc revoked.test.example | sort -u)" '{"verified":false,"revoked":true,"reason":"revoked (OCSP)"}' \
	"the log: revoked (OCSP)"
send unknown x@example.smtptls.test ocsp-unknown
is "$(cc unknown.test.example | jq -r '"\(.verified) \(.reason)"')" \
	"true revocation unknown (OCSP): OCSP responder http://127.0.0.1:$O: the responder does not know the certificate" \
	"a certificate the responder does not know: trusted, and the log says so"
# the responder goes away: the good answer is in the cache (--ocsp-cache, nextUpdate 5 min)
rev_stop "$O"
send good x@example.smtptls.test ocsp-good-again
like "$(stored ocsp-good-again)" "\\(verified OK\\)" "responder gone: the good answer comes from the cache"
is "$(cc good.test.example | sort -u)" '{"verified":true,"revoked":false,"reason":null}' \
	"the log says nothing is missing"
kill "$pid"

# ---- the responder is down ----
LOG=down
rserve --req-ccert --ocsp --fetch-timeout 20
send good x@example.smtptls.test down-good
is "$rc" 0 "responder down: the certificate stays trusted (the documented default)"
like "$(cc good.test.example | jq -r .reason)" "^revocation unavailable \\(OCSP\\): OCSP responder http://127\\.0\\.0\\.1:$O: " \
	"and the log says the status could not be had, and why"
kill "$pid"
LOG=downhard
rserve --req-ccert --ocsp --require-revocation
send good x@example.smtptls.test downhard-good
like "$out" "$NOT_TRUSTED" "responder down, --require-revocation: 421 not trusted"
like "$(cc good.test.example | jq -r '"\(.verified) \(.reason)"')" "^false revocation unavailable \\(OCSP\\)" \
	"the log: not verified, revocation unavailable"
kill "$pid"

# ---- a responder that does not answer until released: the server goes on meanwhile ----
# gate.py PORT UPSTREAM: takes OCSP requests on PORT, prints "request N", answers each
# (from the real responder UPSTREAM) only after a line on its standard input
cat >"$T/gate.py" <<'PY'
import http.server, socketserver, sys, threading, urllib.request
port, upstream = int(sys.argv[1]), sys.argv[2]
gate, lock, seen = threading.Semaphore(0), threading.Lock(), [0]
def releases():
    for _ in sys.stdin:
        gate.release()
threading.Thread(target=releases, daemon=True).start()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            seen[0] += 1
            print("request %d" % seen[0], flush=True)
        gate.acquire()
        req = urllib.request.Request(upstream, data=body,
                                     headers={"Content-Type": "application/ocsp-request"})
        data = urllib.request.urlopen(req, timeout=60).read()
        self.send_response(200)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
s = S(("127.0.0.1", port), H)
print("ready", flush=True)
s.serve_forever()
PY
rev_ocsp_start "$P" "$O2" || { diag "no OCSP responder"; exit 1; }
mkfifo "$T/gate.in" "$T/gate.out"
python3 "$T/gate.py" "$O" "http://127.0.0.1:$O2" <"$T/gate.in" >"$T/gate.out" 2>"$T/gate.err" &
gpid=$!
at_exit "kill $gpid 2>/dev/null"
exec 7>"$T/gate.in" 8<"$T/gate.out"
read -r -t 30 line <&8
is "$line" ready "the gate responder listens"

LOG=slow
rserve --ask-ccert --ocsp --fetch-timeout 120 --relay-restrictions permit_tls_all_clientcerts,reject_unauth_destination
# a client that leaves while its certificate is checked: its connection waits for the answer
timeout 60 openssl s_client -starttls smtp -connect "127.0.0.1:$smtp" -cert "$P/unknown.pem" \
	-key "$P/unknown.key" -cert_chain "$P/int.pem" </dev/null >"$T/sclient.out" 2>&1
read -r -t 60 line <&8
is "$line" "request 1" "a client certificate's check waits on the gate"
# a client whose check hangs, in the background
send_bg() { send good b@elsewhere.smtptls.test slow-held >"$T/held.out" 2>&1; echo "$rc" >"$T/held.rc"; }
send_bg &
bpid=$!
read -r -t 60 line <&8
is "$line" "request 2" "a second client's check waits on the gate too"
# meanwhile: another client, a whole session into the Maildir
send - x@example.smtptls.test slow-other
is "$rc" 0 "meanwhile another client is served: its message is queued"
ls "$T"/md-slow/new/* >/dev/null 2>&1
is "$(grep -l "^Subject: slow-" "$T"/md-slow/new/* 2>/dev/null | xargs -r grep -h "^Subject:")" \
	"Subject: slow-other" "only that message is stored: the held client waits"
is "$(jq -c 'select(.event == "starttls" and .client_cert != null)' "$T/slow.json" | wc -l)" 0 \
	"no certificate verdict logged yet"
printf 'go\ngo\n' >&7
wait "$bpid"
is "$(cat "$T/held.rc")" 0 "released: the held client relays"
like "$(stored slow-held)" "\\(verified OK\\)" "verified OK"
is "$(cc unknown.test.example)" "" "the client that left got no starttls event"
like "$(jq -r 'select(.event == "disconnect") | .reason' "$T/slow.json" | tr '\n' ,)" "closed by the client" \
	"but its disconnect"
send - x@example.smtptls.test slow-after
is "$rc" 0 "the server still serves after answering a check for a client that left"
kill "$pid"
wait "$pid"
is "$?" 0 "and stops cleanly on SIGTERM"
exec 7>&- 8<&-

# ---- errors at start: the file and the reason; usage ----
LOG=err
st serve --listen 127.0.0.1:0 --maildir "$T/md-err" --ccert-ca-file "$P/ca.pem" --crl-file "$T/missing.crl"
is "$rc" 3 "a --crl-file that is not there: exit 3"
like "$err" "--crl-file: .*missing\\.crl" "named"
st serve --listen 127.0.0.1:0 --maildir "$T/md-err" --ccert-ca-file "$P/ca.pem" --crl-file "$P/good.pem"
is "$rc" 3 "a --crl-file that holds no CRL: exit 3"
like "$err" "--crl-file: cannot read CRL '$P/good\\.pem': " "named, with the reason"
st serve --listen 127.0.0.1:0 --maildir "$T/md-err" --ocsp
is "$rc" 2 "--ocsp without --ccert-ca-file: usage"
st serve --listen 127.0.0.1:0 --maildir "$T/md-err" --ccert-ca-file "$P/ca.pem" --require-revocation
is "$rc" 2 "--require-revocation without --crl-file or --ocsp: usage"
st serve --listen 127.0.0.1:0 --maildir "$T/md-err" --ccert-ca-file "$P/ca.pem" --ocsp --fetch-timeout 0
is "$rc" 2 "--fetch-timeout 0: usage"

done_testing
