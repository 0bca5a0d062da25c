# revocation.sh: a revocation PKI made with openssl ca, and real CRL (HTTP) and OCSP servers on loopback (sourced; bash)
#
# Source after tests/lib/tap.sh (uses $T, at_exit, diag). Ports come from
# pf_free_port (tests/lib/postfix.sh), reserved for the life of the script.
#
#   rev_pki DIR HTTP_PORT OCSP_PORT [ROOT_OCSP_PORT]
#       makes, with `openssl ca` and certificate dates pinned to
#       2024-01-01 00:00:00 .. 2099-12-31 23:59:59 UTC (-startdate/-enddate):
#         ca.pem/ca.key         root CA "smtptls Revocation Root" (EC P-256)
#         int.pem/int.key       intermediate CA issued by the root, with
#                               crlDistributionPoints URI:http://127.0.0.1:HTTP_PORT/root.crl
#                               and, with ROOT_OCSP_PORT, authorityInfoAccess
#                               OCSP;URI:http://127.0.0.1:ROOT_OCSP_PORT
#         good.pem/good.key     leaf good.test.example, issued by int
#         revoked.pem/.key      leaf revoked.test.example, revoked with reason
#                               keyCompromise (openssl ca -revoke -crl_reason)
#         unknown.pem/.key      leaf unknown.test.example issued by int from a
#                               throwaway database: in no CRL, unknown to OCSP
#         ocsp.pem/ocsp.key     OCSP responder certificate (extendedKeyUsage
#                               OCSPSigning) issued by int
#         ocsp-root.pem/.key    the same, issued by the root (for the intermediate)
#         other.pem/.key        leaf issued by another CA (other-ca.pem), with
#                               the same CRL and OCSP URLs as int's leaves
#         every leaf of int has crlDistributionPoints URI:http://127.0.0.1:HTTP_PORT/int.crl
#         and authorityInfoAccess OCSP;URI:http://127.0.0.1:OCSP_PORT
#         index.txt             int's database: what `openssl ocsp -index` reads
#         ca.index              the root's database (rev_ocsp_start DIR PORT root)
#         int.crl, int.crl.der  int's CRL (PEM, DER), root.crl, root.crl.der the
#                               root's: thisUpdate now, nextUpdate now + 30 days
#         www/int.crl, www/root.crl   the DER CRLs where rev_http_start DIR/www
#                               serves them (www/ holds no key)
#         good-chain.pem, revoked-chain.pem, unknown-chain.pem   leaf + int
#         other-chain.pem       other.pem + other-ca.pem
#   rev_http_start DIR PORT      python3 -m http.server on 127.0.0.1:PORT serving DIR
#   rev_ocsp_start DIR PORT [root]   openssl ocsp -index DIR/index.txt (int's
#                                responder), or with "root" -index DIR/ca.index
#                                (the root's), on PORT (see below)
#   rev_hostile_start MODE PORT  a scripted server on 127.0.0.1:PORT, for hostile
#                                behaviour only: MODE slow (headers, then a byte
#                                every 200 ms, forever), huge (a 20 MiB body),
#                                garbage (200 and bytes that are no CRL/OCSP)
#   rev_stop PORT                stop what listens on PORT (started here); idempotent
#
# Servers are started in the background, their output in $T/server-PORT.log;
# each start waits, by a bounded poll (REV_START_TIMEOUT seconds), until its
# own process listens on the port, and registers rev_stop with at_exit.
#
# openssl 3.0's `ocsp -port` takes a port number only ("[host:]port" came
# later), so the OCSP responder listens on that port on every local address,
# not on 127.0.0.1 alone. Everything else listens on 127.0.0.1 only.

REV_START_TIMEOUT=${REV_START_TIMEOUT:-15}
REV_PYTHON=${REV_PYTHON:-python3}
declare -gA _rev_pids=()

# shellcheck source=tests/lib/postfix.sh
. "$TOP_SRCDIR/tests/lib/postfix.sh"

_rev_err() { printf 'revocation.sh: %s\n' "$*" >&2; return 1; }

# _rev_cnf DIR NAME DATABASE [HTTP_PORT OCSP_PORT ROOT_OCSP_PORT] - an openssl ca
# configuration for the CA NAME in DIR.
_rev_cnf() {
	local d=$1 name=$2 db=$3 http=${4:-0} ocsp=${5:-0} root_ocsp=${6:-}
	cat >"$d/$name.cnf" <<EOF
[ ca ]
default_ca = this
[ this ]
dir = $d
database = $db
new_certs_dir = $d/newcerts
serial = $d/$name.serial
certificate = $d/$name.pem
private_key = $d/$name.key
default_md = sha256
default_crl_days = 30
policy = anything
copy_extensions = none
unique_subject = no
[ anything ]
commonName = supplied
organizationName = optional
[ root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ intermediate ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://127.0.0.1:$http/root.crl
${root_ocsp:+authorityInfoAccess = OCSP;URI:http://127.0.0.1:$root_ocsp}
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:\${ENV::REV_CN}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://127.0.0.1:$http/int.crl
authorityInfoAccess = OCSP;URI:http://127.0.0.1:$ocsp
[ responder ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, OCSPSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ crl ]
authorityKeyIdentifier = keyid
EOF
}

# _rev_issue DIR CA NAME CN EXTENSIONS [CNF] - key, request, and certificate NAME.pem from CA.
_rev_issue() {
	local d=$1 ca=$2 name=$3 cn=$4 ext=$5 cnf=${6:-$1/$2.cnf}
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$name.key" 2>/dev/null &&
		chmod 600 "$d/$name.key" &&
		openssl req -new -key "$d/$name.key" -subj "/O=smtptls tests/CN=$cn" -out "$d/$name.csr" &&
		REV_CN=$cn openssl ca -batch -config "$cnf" -extensions "$ext" -notext -preserveDN \
			-startdate 20240101000000Z -enddate 20991231235959Z \
			-in "$d/$name.csr" -out "$d/$name.pem" 2>"$d/$name.ca.log" ||
		{ _rev_err "cannot issue $name (see $d/$name.ca.log)"; return 1; }
}

# _rev_selfsign DIR NAME CN - a root CA NAME with its own database NAME.index.
_rev_selfsign() {
	local d=$1 name=$2 cn=$3
	: >"$d/$name.index"
	echo 01 >"$d/$name.serial"
	_rev_cnf "$d" "$name" "$d/$name.index"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$name.key" 2>/dev/null &&
		chmod 600 "$d/$name.key" &&
		openssl req -new -key "$d/$name.key" -subj "/O=smtptls tests/CN=$cn" -out "$d/$name.csr" &&
		REV_CN=$cn openssl ca -batch -config "$d/$name.cnf" -selfsign -extensions root -notext -preserveDN \
			-startdate 20240101000000Z -enddate 20991231235959Z \
			-in "$d/$name.csr" -out "$d/$name.pem" 2>"$d/$name.ca.log" ||
		{ _rev_err "cannot make $name (see $d/$name.ca.log)"; return 1; }
}

rev_pki() {
	local d=$1 http=$2 ocsp=$3 root_ocsp=${4:-}
	[ -n "$d" ] && [ -n "$http" ] && [ -n "$ocsp" ] ||
		{ _rev_err "usage: rev_pki DIR HTTP_PORT OCSP_PORT [ROOT_OCSP_PORT]"; return 1; }
	command -v openssl >/dev/null || { _rev_err "openssl not installed"; return 1; }
	mkdir -p "$d/newcerts" "$d/www" || return 1
	d=$(cd "$d" && pwd) || return 1

	_rev_selfsign "$d" ca "smtptls Revocation Root" || return 1
	_rev_cnf "$d" ca "$d/ca.index" "$http" "$ocsp" "$root_ocsp"
	_rev_issue "$d" ca int "smtptls Revocation Intermediate" intermediate || return 1
	_rev_issue "$d" ca ocsp-root "smtptls Root OCSP responder" responder || return 1

	# int's database is index.txt: the one openssl ocsp answers from
	: >"$d/index.txt"
	echo 1000 >"$d/int.serial"
	_rev_cnf "$d" int "$d/index.txt" "$http" "$ocsp"
	_rev_issue "$d" int good good.test.example leaf || return 1
	_rev_issue "$d" int revoked revoked.test.example leaf || return 1
	_rev_issue "$d" int ocsp "smtptls OCSP responder" responder || return 1
	# unknown: from a copy of the configuration with a throwaway database
	: >"$d/unknown.index"
	echo 2000 >"$d/unknown.serial"
	sed -e "s|^database = .*|database = $d/unknown.index|" \
		-e "s|^serial = .*|serial = $d/unknown.serial|" "$d/int.cnf" >"$d/unknown.cnf"
	_rev_issue "$d" int unknown unknown.test.example leaf "$d/unknown.cnf" || return 1

	# another CA, and a leaf of it with the same URLs
	_rev_selfsign "$d" other-ca "smtptls Other CA" || return 1
	_rev_cnf "$d" other-ca "$d/other-ca.index" "$http" "$ocsp"
	echo 3000 >"$d/other-ca.serial"
	_rev_issue "$d" other-ca other other.test.example leaf || return 1

	REV_CN=unused openssl ca -batch -config "$d/int.cnf" -revoke "$d/revoked.pem" \
		-crl_reason keyCompromise 2>"$d/revoke.log" ||
		{ _rev_err "cannot revoke (see $d/revoke.log)"; return 1; }
	local ca
	for ca in int ca; do
		local out=$ca
		[ "$ca" = ca ] && out=root
		REV_CN=unused openssl ca -batch -config "$d/$ca.cnf" -gencrl -crlexts crl \
			-out "$d/$out.crl" 2>"$d/gencrl-$out.log" ||
			{ _rev_err "cannot make $out.crl (see $d/gencrl-$out.log)"; return 1; }
		openssl crl -in "$d/$out.crl" -outform DER -out "$d/$out.crl.der" || return 1
		cp "$d/$out.crl.der" "$d/www/$out.crl"
	done

	cat "$d/good.pem" "$d/int.pem" >"$d/good-chain.pem"
	cat "$d/revoked.pem" "$d/int.pem" >"$d/revoked-chain.pem"
	cat "$d/unknown.pem" "$d/int.pem" >"$d/unknown-chain.pem"
	cat "$d/other.pem" "$d/other-ca.pem" >"$d/other-chain.pem"
	rm -f "$d"/*.csr
}

# _rev_listening PORT PID - does process PID listen on TCP PORT?
_rev_listening() {
	ss -Hltnp "sport = :$1" 2>/dev/null | grep -q "pid=$2,"
}

# _rev_wait PORT PID WHAT - bounded poll until PID listens on PORT.
_rev_wait() {
	local port=$1 pid=$2 what=$3 deadline
	deadline=$((${EPOCHREALTIME/./} + REV_START_TIMEOUT * 1000000))
	until _rev_listening "$port" "$pid"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			_rev_err "$what on port $port exited:"
			sed 's/^/# /' "$T/server-$port.log" >&2
			return 1
		fi
		if [ "${EPOCHREALTIME/./}" -ge "$deadline" ]; then
			_rev_err "$what not listening on port $port after ${REV_START_TIMEOUT}s"
			rev_stop "$port"
			return 1
		fi
		sleep 0.05 # bounded port poll
	done
}

# _rev_started PORT PID WHAT - record a server, register its stop, wait for it.
_rev_started() {
	_rev_pids[$1]=$2
	at_exit "rev_stop $1"
	_rev_wait "$1" "$2" "$3"
}

rev_http_start() {
	local dir=$1 port=$2
	command -v ss >/dev/null || { _rev_err "ss (iproute2) not installed"; return 1; }
	[ -d "$dir" ] || { _rev_err "rev_http_start: no directory $dir"; return 1; }
	"$REV_PYTHON" -m http.server --bind 127.0.0.1 --directory "$dir" "$port" \
		</dev/null >"$T/server-$port.log" 2>&1 &
	_rev_started "$port" $! "HTTP server"
}

rev_ocsp_start() {
	local d=$1 port=$2 index=index.txt ca=int signer=ocsp
	command -v ss >/dev/null || { _rev_err "ss (iproute2) not installed"; return 1; }
	[ "${3:-}" = root ] && index=ca.index ca=ca signer=ocsp-root
	# -ignore_err: a bad request must not end the responder; -nmin 5: nextUpdate now + 5 min
	openssl ocsp -index "$d/$index" -port "$port" -rsigner "$d/$signer.pem" -rkey "$d/$signer.key" \
		-CA "$d/$ca.pem" -nmin 5 -ignore_err </dev/null >"$T/server-$port.log" 2>&1 &
	_rev_started "$port" $! "OCSP responder"
}

rev_hostile_start() {
	local mode=$1 port=$2
	case $mode in slow | huge | garbage) ;; *) _rev_err "rev_hostile_start: mode slow, huge or garbage"; return 1 ;; esac
	cat >"$T/hostile.py" <<'PY'
# hostile.py MODE PORT: an HTTP server on 127.0.0.1 that misbehaves (tests only)
import http.server, socketserver, sys, time

mode, port = sys.argv[1], int(sys.argv[2])

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def answer(self):
        try:
            n = int(self.headers.get("Content-Length") or 0)
            if 0 < n <= 65536:
                self.rfile.read(n)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if mode == "slow":
                self.end_headers()
                for _ in range(3000):          # 10 minutes at most
                    self.wfile.write(b"0")
                    self.wfile.flush()
                    time.sleep(0.2)
            elif mode == "huge":
                size = 20 * 1024 * 1024
                self.send_header("Content-Length", str(size))
                self.end_headers()
                chunk = b"\x30" * 65536
                for _ in range(size // len(chunk)):
                    self.wfile.write(chunk)
            else:
                body = b"<html>this is neither a CRL nor an OCSP response</html>\n" * 4
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = answer

    def log_message(self, fmt, *args):
        sys.stderr.write("hostile %s: %s\n" % (mode, fmt % args))

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

S(("127.0.0.1", port), H).serve_forever()
PY
	"$REV_PYTHON" "$T/hostile.py" "$mode" "$port" </dev/null >"$T/server-$port.log" 2>&1 &
	_rev_started "$port" $! "hostile server ($mode)"
}

# rev_stop PORT - stop the server this file started on PORT; wait for it to go.
rev_stop() {
	local port=$1 pid i
	pid=${_rev_pids[$port]:-}
	[ -n "$pid" ] || return 0
	unset "_rev_pids[$port]"
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do # 5 s, then SIGKILL
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}
