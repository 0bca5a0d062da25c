#!/bin/bash
# t0210: verify with revocation: CRL files, CRLs fetched over HTTP (and cached), OCSP, against real servers and openssl
. "$TOP_SRCDIR/tests/lib/tap.sh"
need openssl python3 jq ss sha256sum timeout
"$SMTPTLS" verify --help >/dev/null 2>&1 || plan_skip_all "smtptls verify is not built"
. "$TOP_SRCDIR/tests/lib/revocation.sh"

export XDG_CACHE_HOME=$T/xdg # the default cache, should a run forget --cache-dir
H=$(pf_free_port) && O=$(pf_free_port) && R=$(pf_free_port) || { diag "no free port"; exit 1; }
rev_pki "$T/pki" "$H" "$O" "$R" || { diag "rev_pki failed"; exit 1; }
P=$T/pki
URL_INT="http://127.0.0.1:$H/int.crl"
URL_ROOT="http://127.0.0.1:$H/root.crl"
OCSP_INT="http://127.0.0.1:$O"

# v ARGS...: smtptls --json verify trusting our root; $out, $err, $rc
v() { st --json verify --ca-file "$P/ca.pem" "$@"; }
# j FILTER: a value of the JSON in $out
j() { jq -r "$1" <<<"$out"; }
# rev DEPTH: the revocation object of chain[DEPTH], compact
rev() { jq -c ".chain[$1].revocation" <<<"$out"; }
# iso "Mon DD HH:MM:SS YYYY GMT" -> YYYY-MM-DDTHH:MM:SSZ
iso() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
# what openssl verify says (its last line)
ossl_verify() { openssl verify -CAfile "$P/ca.pem" -untrusted "$P/int.pem" "$@" 2>&1 | tail -1; }

# the revocation time and reason of revoked.pem, as openssl reads int.crl
serial=$(openssl x509 -in "$P/revoked.pem" -noout -serial | sed 's/^serial=//')
crl_text=$(openssl crl -in "$P/int.crl" -noout -text)
crl_when=$(iso "$(grep -A1 "Serial Number: $serial" <<<"$crl_text" | sed -n 's/^ *Revocation Date: //p')")
grep -A4 "Serial Number: $serial" <<<"$crl_text" | grep -q "Key Compromise"
ok $? "openssl reads keyCompromise for revoked.pem in int.crl"

# ---- CRL files ----
for f in int.crl int.crl.der; do
	v --crl-file "$P/$f" --crl-file "$P/root.crl" "$P/good-chain.pem"
	is "$rc/$(j .status)" "0/ok" "$f: good chain is ok"
	is "$(rev 0)" "{\"status\":\"good\",\"source\":\"crl\",\"reason\":null,\"revoked_at\":null,\"detail\":\"CRL from $P/$f\"}" \
		"$f: leaf good, from the file"
	is "$(j .chain[1].revocation.status)/$(j .chain[1].revocation.detail)" "good/CRL from $P/root.crl" \
		"$f: intermediate good, from the root's CRL"
	is "$(j .chain[2].revocation.status)" "not_checked" "$f: the trust anchor is not checked"

	v --crl-file "$P/$f" --crl-file "$P/root.crl" "$P/revoked-chain.pem"
	is "$rc/$(j .status)" "1/fail" "$f: revoked chain fails"
	is "$(jq -c '[.errors[] | {code, openssl_code, depth}]' <<<"$out")" \
		'[{"code":"revoked","openssl_code":23,"depth":0}]' "$f: one error, revoked, openssl code 23, depth 0"
	is "$(rev 0)" "{\"status\":\"revoked\",\"source\":\"crl\",\"reason\":\"keyCompromise\",\"revoked_at\":\"$crl_when\",\"detail\":\"CRL from $P/$f\"}" \
		"$f: revoked, keyCompromise, at the time openssl reads"
done
# the same verdicts from openssl
is "$(ossl_verify -crl_check_all -CRLfile "$P/int.crl" -CRLfile "$P/root.crl" "$P/good.pem")" "$P/good.pem: OK" \
	"openssl verify -crl_check_all: good is OK"
like "$(openssl verify -CAfile "$P/ca.pem" -untrusted "$P/int.pem" -crl_check_all -CRLfile "$P/int.crl" \
	-CRLfile "$P/root.crl" "$P/revoked.pem" 2>&1)" "error 23 at 0 depth lookup: certificate revoked" \
	"openssl verify -crl_check_all: revoked is error 23 at depth 0"
is "$(ossl_verify -crl_check -CRLfile "$P/int.crl" "$P/unknown.pem")" "$P/unknown.pem: OK" \
	"openssl verify -crl_check: unknown.pem (not in the CRL) is OK"
v --crl-file "$P/int.crl" --crl-file "$P/root.crl" "$P/unknown-chain.pem"
is "$rc/$(j .chain[0].revocation.status)" "0/good" "not in the CRL: good, as openssl says"

# the intermediate's CRL missing: a warning (exit 11), or with --require-revocation a failure
v --crl-file "$P/int.crl" "$P/good-chain.pem"
is "$rc/$(j .status)" "11/warn" "no CRL for the intermediate: warn, exit 11"
is "$(jq -c '[.warnings[] | {code, openssl_code, depth}]' <<<"$out")" \
	'[{"code":"revocation_unavailable","openssl_code":3,"depth":1}]' "warning revocation_unavailable, openssl code 3, depth 1"
like "$(j .chain[1].revocation.detail)" "^no CRL from 'CN=smtptls Revocation Root" "detail: no CRL from the root"
like "$(openssl verify -CAfile "$P/ca.pem" -untrusted "$P/int.pem" -crl_check_all -CRLfile "$P/int.crl" \
	"$P/good.pem" 2>&1)" "error 3 at 1 depth lookup: unable to get certificate CRL" \
	"openssl verify -crl_check_all: error 3 at depth 1 too"
v --require-revocation --crl-file "$P/int.crl" "$P/good-chain.pem"
is "$rc/$(j .status)" "1/fail" "--require-revocation: fail, exit 1"
is "$(jq -c '[.errors[] | {code, openssl_code, depth}]' <<<"$out")" \
	'[{"code":"revocation_unavailable","openssl_code":3,"depth":1}]' "--require-revocation: the warning is now an error"

# a CRL of another issuer only: the leaf has none
v --crl-file "$P/root.crl" "$P/good-chain.pem"
is "$rc/$(j .chain[0].revocation.status)" "11/unavailable" "only the root's CRL: the leaf is unavailable"
like "$(j .chain[0].revocation.detail)" "^no CRL from 'CN=smtptls Revocation Intermediate" "detail names the missing issuer"

# a stale CRL (nextUpdate 30 days on): unavailable, as openssl says (error 12)
v --at-time 2099-06-01 --crl-file "$P/int.crl" --crl-file "$P/root.crl" "$P/revoked-chain.pem"
is "$rc/$(j .chain[0].revocation.status)" "11/unavailable" "--at-time past nextUpdate: the CRL is stale"
like "$(j .chain[0].revocation.detail)" "^CRL from $P/int.crl expired at [0-9]{4}-[0-9]{2}-[0-9]{2}T" "detail: expired at"
like "$(openssl verify -attime "$(date -u -d 2099-06-01 +%s)" -CAfile "$P/ca.pem" -untrusted "$P/int.pem" \
	-crl_check -CRLfile "$P/int.crl" "$P/revoked.pem" 2>&1)" "error 12 at 0 depth lookup: CRL has expired" \
	"openssl verify -attime: error 12, CRL has expired"

# unreadable CRL files: exit 3, the file named
printf 'not a CRL\n' >"$T/garbage.crl"
v --crl-file "$T/garbage.crl" "$P/good-chain.pem"
is "$rc" 3 "a garbage CRL file: exit 3"
like "$err" "garbage\.crl" "the message names the file"
v --crl-file "$T/missing.crl" "$P/good-chain.pem"
is "$rc" 3 "a missing CRL file: exit 3"
like "$err" "missing\.crl" "the message names the missing file"

# text output says it too
st verify --ca-file "$P/ca.pem" --crl-file "$P/int.crl" --crl-file "$P/root.crl" "$P/revoked-chain.pem"
is "$rc" 1 "text output: exit 1"
like "$out" "revoked" "text output: says revoked"

# ---- CRLs fetched over HTTP ----
rev_http_start "$P/www" "$H" || { diag "HTTP server did not start"; exit 1; }
cache=$T/cache
v --crl-fetch --cache-dir "$cache" "$P/good-chain.pem"
is "$rc/$(j .status)" "0/ok" "--crl-fetch: good chain ok"
is "$(j .chain[0].revocation.detail)/$(j .chain[1].revocation.detail)" "CRL from $URL_INT/CRL from $URL_ROOT" \
	"--crl-fetch: both CRLs from their distribution points"
v --crl-fetch --cache-dir "$cache" "$P/revoked-chain.pem"
is "$rc/$(j .status)" "1/fail" "--crl-fetch: revoked chain fails"
is "$(jq -c '.chain[0].revocation | {status, source, reason, revoked_at}' <<<"$out")" \
	"{\"status\":\"revoked\",\"source\":\"crl\",\"reason\":\"keyCompromise\",\"revoked_at\":\"$crl_when\"}" \
	"--crl-fetch: revoked, keyCompromise, at the time openssl reads"
v --crl-fetch --cache-dir "$cache" --crit-days 36500 "$P/revoked-chain.pem"
is "$(j .chain[0].revocation.status)" "revoked" "--crl-fetch with --crit-days: an expiry threshold does not stop the revocation check"
# (-crl_check: the leaf; with -crl_check_all openssl also wants a CRL for the root itself,
# which names no distribution point)
like "$(openssl verify -CAfile "$P/ca.pem" -untrusted "$P/int.pem" -crl_check -crl_download \
	"$P/revoked.pem" 2>&1)" "error 23 at 0 depth lookup: certificate revoked" \
	"openssl verify -crl_download: revoked too"
is "$(ossl_verify -crl_check -crl_download "$P/good.pem")" "$P/good.pem: OK" "openssl verify -crl_download: good is OK"

# the cache: 0700, one DER file per URL named by the URL's SHA-256
is "$(stat -c %a "$cache")" 700 "the cache directory is 0700"
for u in "$URL_INT" "$URL_ROOT"; do
	h=$(printf %s "$u" | sha256sum | cut -d' ' -f1)
	[ -f "$cache/$h.crl" ]
	ok $? "cache file for $u is sha256(URL).crl"
done
h=$(printf %s "$URL_INT" | sha256sum | cut -d' ' -f1)
cmp -s "$cache/$h.crl" "$P/int.crl.der"
ok $? "the cached int.crl is the DER served"

# the server gone: answered from the cache while nextUpdate is ahead
rev_stop "$H"
v --crl-fetch --cache-dir "$cache" "$P/revoked-chain.pem"
is "$rc/$(j .chain[0].revocation.status)" "1/revoked" "server stopped: still revoked, from the cache"
is "$(j .chain[0].revocation.detail)" "CRL from $URL_INT (cached in $cache/$h.crl)" "detail says cache"
v --crl-fetch --cache-dir "$cache" "$P/good-chain.pem"
is "$rc/$(j .status)" "0/ok" "server stopped: good chain still ok from the cache"

# no cache and no server: unavailable, a warning; a failure with --require-revocation
v --crl-fetch --cache-dir "$T/empty-cache" "$P/good-chain.pem"
is "$rc/$(j .status)" "11/warn" "server stopped, empty cache: warn, exit 11"
like "$(j .chain[0].revocation.detail)" "^cannot fetch CRL from $URL_INT: " "detail: cannot fetch CRL from the URL"
is "$(jq -c '[.warnings[] | {code, openssl_code}] | unique' <<<"$out")" \
	'[{"code":"revocation_unavailable","openssl_code":3}]' "warnings revocation_unavailable, openssl code 3"
v --crl-fetch --require-revocation --cache-dir "$T/empty-cache" "$P/good-chain.pem"
is "$rc/$(j .status)" "1/fail" "--require-revocation: fail, exit 1"
is "$(j '.errors[0].code')" "revocation_unavailable" "--require-revocation: error revocation_unavailable"

# ---- OCSP ----
rev_ocsp_start "$P" "$O" || { diag "OCSP responder did not start"; exit 1; }
rev_ocsp_start "$P" "$R" root || { diag "root OCSP responder did not start"; exit 1; }
# ossl_ocsp CERT ISSUER URL: openssl ocsp's verdict line for CERT
ossl_ocsp() {
	openssl ocsp -issuer "$2" -cert "$1" -url "$3" -CAfile "$P/ca.pem" 2>&1
}
o=$(ossl_ocsp "$P/good.pem" "$P/int.pem" "$OCSP_INT")
like "$o" "good\.pem: good" "openssl ocsp: good.pem good"
like "$o" "Response verify OK" "openssl ocsp: the response verifies"
v --ocsp "$P/good-chain.pem"
is "$rc/$(j .status)" "0/ok" "--ocsp: good chain ok"
is "$(rev 0)" "{\"status\":\"good\",\"source\":\"ocsp\",\"reason\":null,\"revoked_at\":null,\"detail\":\"OCSP responder $OCSP_INT\"}" \
	"--ocsp: leaf good from int's responder (openssl's responder echoes the nonce: no note)"
is "$(j .chain[1].revocation.status)/$(j .chain[1].revocation.detail)" "good/OCSP responder http://127.0.0.1:$R" \
	"--ocsp: intermediate good from the root's responder"

o=$(ossl_ocsp "$P/revoked.pem" "$P/int.pem" "$OCSP_INT")
like "$o" "revoked\.pem: revoked" "openssl ocsp: revoked.pem revoked"
like "$o" "Reason: keyCompromise" "openssl ocsp: reason keyCompromise"
ocsp_when=$(iso "$(sed -n 's/^[[:space:]]*Revocation Time: //p' <<<"$o")")
v --ocsp "$P/revoked-chain.pem"
is "$rc/$(j .status)" "1/fail" "--ocsp: revoked chain fails"
is "$(jq -c '[.errors[] | {code, openssl_code, depth}]' <<<"$out")" \
	'[{"code":"revoked","openssl_code":23,"depth":0}]' "--ocsp: error revoked, 23, depth 0"
is "$(rev 0)" "{\"status\":\"revoked\",\"source\":\"ocsp\",\"reason\":\"keyCompromise\",\"revoked_at\":\"$ocsp_when\",\"detail\":\"OCSP responder $OCSP_INT\"}" \
	"--ocsp: revoked, keyCompromise, at the time openssl ocsp reads"

o=$(ossl_ocsp "$P/unknown.pem" "$P/int.pem" "$OCSP_INT")
like "$o" "unknown\.pem: unknown" "openssl ocsp: unknown.pem unknown"
v --ocsp "$P/unknown-chain.pem"
is "$rc/$(j .status)" "11/warn" "--ocsp: unknown is a warning, exit 11"
is "$(j .chain[0].revocation.status)" "unknown" "--ocsp: status unknown"
like "$(j .chain[0].revocation.detail)" "^OCSP responder $OCSP_INT: the responder does not know the certificate" \
	"--ocsp: detail says the responder does not know it"
is "$(jq -c '[.warnings[] | {code, openssl_code, depth}]' <<<"$out")" \
	'[{"code":"revocation_unavailable","openssl_code":null,"depth":0}]' "--ocsp: warning revocation_unavailable, no openssl code"
v --ocsp --require-revocation "$P/unknown-chain.pem"
is "$rc/$(j .status)" "1/fail" "--ocsp --require-revocation: unknown fails"

# a certificate of another CA asked at int's responder: the answer is signed by
# someone its issuer never authorised; openssl ocsp refuses it too
cat "$P/ca.pem" "$P/other-ca.pem" >"$T/both.pem"
o=$(openssl ocsp -issuer "$P/other-ca.pem" -cert "$P/other.pem" -url "$OCSP_INT" -CAfile "$T/both.pem" 2>&1)
like "$o" "Response Verify Failure" "openssl ocsp: another CA's certificate: response verify failure"
st --json verify --ca-file "$T/both.pem" --ocsp "$P/other-chain.pem"
is "$rc/$(j .chain[0].revocation.status)" "11/unavailable" "--ocsp: another CA's certificate: unavailable"
is "$(j .chain[0].revocation.detail)" \
	"OCSP responder $OCSP_INT: responder certificate is not issued by the certificate's issuer" \
	"--ocsp: detail names the responder and the reason"

# both checks at once; the cache still answers for CRLs
v --crl-fetch --ocsp --cache-dir "$cache" "$P/revoked-chain.pem"
is "$rc/$(j .chain[0].revocation.status)" "1/revoked" "--crl-fetch --ocsp: revoked"

# the responders gone: unavailable, a warning; a failure with --require-revocation
rev_stop "$O"
rev_stop "$R"
v --ocsp "$P/good-chain.pem"
is "$rc/$(j .status)" "11/warn" "--ocsp, responders stopped: warn, exit 11"
like "$(j .chain[0].revocation.detail)" "^OCSP responder $OCSP_INT: " "detail names the responder"
is "$(jq -c '[.warnings[] | {code, openssl_code}] | unique' <<<"$out")" \
	'[{"code":"revocation_unavailable","openssl_code":null}]' "warnings revocation_unavailable, no openssl code"
v --ocsp --require-revocation "$P/good-chain.pem"
is "$rc/$(j .status)" "1/fail" "--ocsp --require-revocation, responders stopped: fail, exit 1"

# ---- hostile servers: bounded, capped, clear ----
# hostile MODE PORT OPTIONS...: run verify against a hostile server on PORT, never for long
hostile() {
	local mode=$1 port=$2
	shift 2
	rev_hostile_start "$mode" "$port" || { diag "hostile server did not start"; return 1; }
	run timeout 120 "$SMTPTLS" --json verify --ca-file "$P/ca.pem" "$@"
	rev_stop "$port"
}
hostile slow "$H" --crl-fetch --cache-dir "$T/c1" --fetch-timeout 1 "$P/good-chain.pem"
isnt "$rc" 124 "slow CRL server: smtptls does not hang"
is "$rc/$(j .chain[0].revocation.detail)" "11/cannot fetch CRL from $URL_INT: timed out after 1000 ms" \
	"slow CRL server: cut at --fetch-timeout"
hostile huge "$H" --crl-fetch --cache-dir "$T/c2" "$P/good-chain.pem"
is "$rc/$(j .chain[0].revocation.detail)" "11/cannot fetch CRL from $URL_INT: response larger than 10485760 bytes" \
	"20 MiB CRL: capped at 10 MiB"
hostile garbage "$H" --crl-fetch --cache-dir "$T/c3" "$P/good-chain.pem"
like "$rc/$(j .chain[0].revocation.detail)" "^11/cannot fetch CRL from $URL_INT: not a DER or PEM CRL" \
	"garbage CRL: a clear error"
[ -z "$(ls -A "$T/c3")" ]
ok $? "garbage is not cached"
hostile slow "$O" --ocsp --fetch-timeout 1 "$P/good-chain.pem"
isnt "$rc" 124 "slow OCSP responder: smtptls does not hang"
is "$rc/$(j .chain[0].revocation.detail)" "11/OCSP responder $OCSP_INT: timed out after 1000 ms" \
	"slow OCSP responder: cut at --fetch-timeout"
hostile huge "$O" --ocsp "$P/good-chain.pem"
is "$rc/$(j .chain[0].revocation.detail)" "11/OCSP responder $OCSP_INT: response larger than 65536 bytes" \
	"20 MiB OCSP response: capped at 64 KiB"
hostile garbage "$O" --ocsp "$P/good-chain.pem"
like "$rc/$(j .chain[0].revocation.detail)" "^11/OCSP responder $OCSP_INT: malformed response" \
	"garbage OCSP response: a clear error"

done_testing
