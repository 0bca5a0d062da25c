#!/bin/bash
# t0302: TLS corner cases with a real openssl s_server behind an SMTP front: OCSP staples
# (read, checked against the leaf and its issuer, as openssl s_client sees them), and a
# client certificate demanded in the handshake (TLS 1.2) or after it (TLS 1.3)
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/revocation.sh"
need openssl python3 jq
P=$T/pki
rev_pki "$P" "$(pf_free_port)" "$(pf_free_port)" || { diag "rev_pki failed"; exit 1; }
# staples made now, valid for a day, by int's OCSP responder (openssl ocsp, one shot)
for leaf in good revoked; do
	openssl ocsp -issuer "$P/int.pem" -cert "$P/$leaf.pem" -reqout "$P/$leaf.req" -no_nonce &&
		openssl ocsp -index "$P/index.txt" -rsigner "$P/ocsp.pem" -rkey "$P/ocsp.key" \
			-CA "$P/int.pem" -reqin "$P/$leaf.req" -respout "$P/$leaf.resp" -ndays 1 \
			>/dev/null 2>&1 || { diag "cannot make the $leaf staple"; exit 1; }
done

# front [--implicit] LEAF [S_SERVER OPTIONS...]: an SMTP front for openssl s_server
# serving LEAF's chain; waits for its ready line (no sleep), sets $port
front() {
	local imp=() fifo l leaf
	[ "$1" = --implicit ] && { imp=(--implicit); shift; }
	leaf=$1; shift
	fifo=$T/ready.$RANDOM
	rm -f "$fifo" && mkfifo "$fifo"
	python3 "$TOP_SRCDIR/tests/lib/tls-front.py" "${imp[@]}" -- \
		-cert "$P/$leaf.pem" -key "$P/$leaf.key" -cert_chain "$P/int.pem" "$@" \
		>"$fifo" 2>"$T/front.$port_n.log" &
	at_exit "kill $! 2>/dev/null"
	read -r -t 20 l port <"$fifo" && [ "$l" = ready ] && port_n=$((port_n + 1)) && return 0
	diag "$(cat "$T/front.$port_n.log")"
	return 1
}
port_n=0
probe() { run timeout 60 "$SMTPTLS" --json probe --timeout 10 --ca-file "$P/ca.pem" "$@"; }

# a good staple about the good leaf
front good -status_file "$P/good.resp" || { diag "the front did not start"; exit 1; }
probe --match good.test.example "[127.0.0.1]:$port"
is "$rc" 0 "a good stapled leaf: exit 0"
is "$(jq -r .tls.ocsp_staple.status <<<"$out")" good "the staple is read and is good"
like "$(jq -r .tls.ocsp_staple.detail <<<"$out")" "stapled response" "and says where the answer came from"
is "$(jq -r .tls.status <<<"$out")" Verified "the chain is Verified"
is "$(jq -r '.findings | length' <<<"$out")" 0 "no finding"
sc=$(echo QUIT | timeout 30 openssl s_client -starttls smtp -connect "127.0.0.1:$port" -status \
	-CAfile "$P/ca.pem" 2>/dev/null)
like "$sc" "Cert Status: good" "openssl s_client -status sees the same staple as good"
run timeout 60 "$SMTPTLS" probe --timeout 10 --ca-file "$P/ca.pem" --match good.test.example \
	"[127.0.0.1]:$port"
like "$out" "ocsp staple +good \\(stapled response" "the text output says it"

# a staple that says revoked, on the revoked leaf
front revoked -status_file "$P/revoked.resp" || { diag "the front did not start"; exit 1; }
probe --match revoked.test.example "[127.0.0.1]:$port"
is "$(jq -r .tls.ocsp_staple.status <<<"$out")" revoked "a revoked staple is read as revoked"
is "$(jq -r .tls.ocsp_staple.reason <<<"$out")" keyCompromise "with its reason"
like "$(jq -r '.findings[]' <<<"$out")" "stapled OCSP response says the certificate is revoked \\(keyCompromise\\)" \
	"it is a finding"
is "$rc" 0 "but the level is judged as Postfix does, which reads no staple: exit 0"
is "$(jq -r .tls.status <<<"$out")" Verified "and the status word is Postfix's"
sc=$(echo QUIT | timeout 30 openssl s_client -starttls smtp -connect "127.0.0.1:$port" -status \
	-CAfile "$P/ca.pem" 2>/dev/null)
like "$sc" "Cert Status: revoked" "openssl s_client -status agrees: revoked"

# the good leaf with a staple about another certificate
front good -status_file "$P/revoked.resp" || { diag "the front did not start"; exit 1; }
probe --match good.test.example "[127.0.0.1]:$port"
is "$(jq -r .tls.ocsp_staple.status <<<"$out")" unavailable "a staple about another certificate is not used"
like "$(jq -r '.findings[]' <<<"$out")" "stapled OCSP response is not usable" "it is a finding"

# no staple
front good || { diag "the front did not start"; exit 1; }
probe --match good.test.example "[127.0.0.1]:$port"
is "$rc" 0 "no staple: exit 0"
is "$(jq -r .tls.ocsp_staple <<<"$out")" null "ocsp_staple is null"
run timeout 60 "$SMTPTLS" probe --timeout 10 --ca-file "$P/ca.pem" --match good.test.example \
	"[127.0.0.1]:$port"
like "$out" "ocsp staple +none" "the text output says none"

# implicit TLS: the staple comes in the first handshake
front --implicit good -status_file "$P/good.resp" || { diag "the front did not start"; exit 1; }
probe --tls-on-connect --match good.test.example "[127.0.0.1]:$port"
is "$rc" 0 "implicit TLS with a staple: exit 0"
is "$(jq -r .mode <<<"$out")" implicit "mode implicit"
is "$(jq -r .tls.ocsp_staple.status <<<"$out")" good "the staple is good"

# a client certificate demanded at the TLS level (s_server -Verify): TLS 1.3 servers say so
# after the handshake (alert "certificate required"), TLS 1.2 ones end the handshake
front good -Verify 1 -CAfile "$P/ca.pem" || { diag "the front did not start"; exit 1; }
probe --level encrypt "[127.0.0.1]:$port"
is "$rc" 7 "TLS 1.3, no client certificate for a server that demands one: exit 7"
is "$(jq -r .client_cert_requested <<<"$out")" true "the request is reported"
is "$(jq -r .level.reason <<<"$out")" "the server demands a client certificate and none was given" "the verdict says why"
like "$(jq -r .error <<<"$out")" "alert 'Certificate is required'" "the alert is named"
like "$(jq -r '.findings[]' <<<"$out")" "demands a client certificate and none was given" "a finding"
probe --level encrypt --protocols '<=TLSv1.2' "[127.0.0.1]:$port"
is "$rc/$(jq -r .client_cert_requested <<<"$out")" "7/true" "TLS 1.2: exit 7, the request reported although the handshake failed"
like "$(jq -r '.findings[]' <<<"$out")" "demands a client certificate and none was given" "the same finding"

done_testing
