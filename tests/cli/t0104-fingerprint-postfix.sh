#!/bin/bash
# t0104: fingerprint agrees with a real Postfix: posttls-finger's fingerprint= and
# pkey_fingerprint=, postfix tls output-server-tlsa, and relay_clientcerts lines
# that a real smtpd accepts for relaying
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
need certtool openssl jq
pf_require posttls-finger
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
D=$T/postfix
chmod 755 "$T" # Postfix daemons run as user postfix
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"

smtps=$(pf_free_port)
starttls=$(pf_free_port)
relay=$(pf_free_port)
relay_cert=$(pf_free_port)
relay_other=$(pf_free_port)
ccert=$(pf_free_port)
cat "$P/server-rsa.pem" "$P/int.pem" >"$P/server-rsa-chain.pem"
# posttls-finger runs with the instance's main.cf, so it never reads /etc/postfix
export MAIL_CONFIG=$D/etc
# the relay_clientcerts and check_ccert_access tables are made by smtptls itself
"$SMTPTLS" fingerprint --relay-clientcerts --pubkey "$P/client.pem" >"$D/relay_clientcerts"
"$SMTPTLS" fingerprint --relay-clientcerts "$P/client.pem" >"$D/relay_clientcerts_cert"
"$SMTPTLS" fingerprint --relay-clientcerts --pubkey "$P/server.pem" >"$D/relay_clientcerts_other"
"$SMTPTLS" fingerprint --relay-clientcerts=OK "$P/client.pem" >"$D/ccert_access"
pf_conf "$D" "smtpd_tls_chain_files=$P/server.key,$P/server-chain.pem" \
	"smtpd_tls_fingerprint_digest=sha256" "relay_clientcerts=texthash:$D/relay_clientcerts" \
	"default_transport=discard:" "smtpd_tls_loglevel=1"
pf_smtpd_service "$D" "$smtps" -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt
pf_smtpd_service "$D" "$starttls" -o smtpd_tls_security_level=may \
	-o "smtpd_tls_chain_files=$P/server-rsa.key,$P/server-rsa-chain.pem"
pf_smtpd_service "$D" "$relay" -o smtpd_tls_security_level=may -o smtpd_tls_ask_ccert=yes \
	-o "smtpd_relay_restrictions=permit_tls_clientcerts,reject_unauth_destination"
pf_smtpd_service "$D" "$relay_cert" -o smtpd_tls_security_level=may -o smtpd_tls_ask_ccert=yes \
	-o "relay_clientcerts=texthash:$D/relay_clientcerts_cert" \
	-o "smtpd_relay_restrictions=permit_tls_clientcerts,reject_unauth_destination"
pf_smtpd_service "$D" "$relay_other" -o smtpd_tls_security_level=may -o smtpd_tls_ask_ccert=yes \
	-o "relay_clientcerts=texthash:$D/relay_clientcerts_other" \
	-o "smtpd_relay_restrictions=permit_tls_clientcerts,reject_unauth_destination"
pf_smtpd_service "$D" "$ccert" -o smtpd_tls_security_level=may -o smtpd_tls_ask_ccert=yes \
	-o "smtpd_relay_restrictions=check_ccert_access texthash:$D/ccert_access,reject_unauth_destination"
pf_start "$D" || { diag "Postfix did not start"; exit 1; }
diag "postfix $(postconf -h mail_version) on 127.0.0.1:$smtps (smtps), :$starttls (starttls), :$relay (relay)"

# finger DIGEST ARGS... -> "fingerprint pkey_fingerprint" as posttls-finger logs them
finger() {
	local d=$1
	shift
	timeout 30 posttls-finger -c -L summary,peercert -d "$d" "$@" 2>&1 |
		sed -n 's/.*, fingerprint=\([0-9A-F:]*\), pkey_fingerprint=\([0-9A-F:]*\).*/\1 \2/p' | head -1
}

for d in md5 sha1 sha256 sha512; do
	pf=$(finger "$d" -w "[127.0.0.1]:$smtps")
	isnt "$pf" "" "posttls-finger -d $d printed fingerprints (smtps)"
	st --json fingerprint -d "$d" "$P/server.pem"
	is "$(jq -r '.fingerprint + " " + .pkey_fingerprint' <<<"$out")" "$pf" \
		"$d: fingerprint= and pkey_fingerprint= as posttls-finger prints them (ECDSA, implicit TLS)"
	pf=$(finger "$d" -l encrypt "[127.0.0.1]:$starttls")
	st --json fingerprint -d "$d" "$P/server-rsa.pem"
	is "$(jq -r '.fingerprint + " " + .pkey_fingerprint' <<<"$out")" "$pf" \
		"$d: fingerprint= and pkey_fingerprint= as posttls-finger prints them (RSA, STARTTLS)"
done

# posttls-finger accepts our fingerprint for its fingerprint level (both forms)
st fingerprint --brief "$P/server.pem"
out=$(timeout 30 posttls-finger -c -d sha256 -l fingerprint -w "[127.0.0.1]:$smtps" "${out%%  *}" 2>&1)
like "$out" "Verified TLS connection established" "posttls-finger -l fingerprint matches our certificate fingerprint"
st fingerprint --brief --pubkey "$P/server.pem"
out=$(timeout 30 posttls-finger -c -d sha256 -l fingerprint -w "[127.0.0.1]:$smtps" "${out%%  *}" 2>&1)
like "$out" "Verified TLS connection established" "posttls-finger -l fingerprint matches our public-key fingerprint"

# postfix tls output-server-tlsa
want=$(postfix -c "$D/etc" tls output-server-tlsa -h mx.test.example "$P/server.key" 2>&1 | grep TLSA)
st fingerprint --tlsa --host mx.test.example "$P/server.key"
is "$out" "$want" "TLSA from a key: the line postfix tls output-server-tlsa prints"
want=$(postfix -c "$D/etc" tls output-server-tlsa -h mx.test.example "$P/server-rsa.key" 2>&1 | grep TLSA)
st fingerprint --tlsa --host mx.test.example "$P/server-rsa.pem"
is "$out" "$want" "TLSA from the certificate of an RSA key: the same line"

# relay_clientcerts: a real smtpd relays for the certificate whose line we wrote
# smtp_session PORT CERT-ARGS... -> the server's reply to RCPT
smtp_session() {
	local port=$1
	shift
	printf 'EHLO client.test.example\r\nMAIL FROM:<a@client.test.example>\r\nRCPT TO:<b@elsewhere.example>\r\nQUIT\r\n' |
		timeout 30 openssl s_client -quiet -starttls smtp -connect "127.0.0.1:$port" "$@" 2>/dev/null |
		tr -d '\r' | grep -E '^(250 2\.1\.5|[45][0-9][0-9]) ' | head -1
}
client=(-cert "$P/client.pem" -key "$P/client.key")
reply=$(smtp_session "$relay" "${client[@]}")
like "$reply" "^250 2\.1\.5 " "Postfix relays for the client certificate listed by --relay-clientcerts --pubkey"
reply=$(smtp_session "$relay" -cert "$P/server.pem" -key "$P/server.key")
like "$reply" "^554 5\.7\.1 <b@elsewhere\.example>: Relay access denied" "and refuses another certificate"
reply=$(smtp_session "$relay")
like "$reply" "^554 5\.7\.1 <b@elsewhere\.example>: Relay access denied" "and refuses a client without a certificate"
reply=$(smtp_session "$relay_cert" "${client[@]}")
like "$reply" "^250 2\.1\.5 " "Postfix relays for the certificate fingerprint line too"
reply=$(smtp_session "$relay_other" "${client[@]}")
like "$reply" "^554 5\.7\.1 <b@elsewhere\.example>: Relay access denied" "control: a table with another certificate's line refuses the client"
reply=$(smtp_session "$ccert" "${client[@]}")
like "$reply" "^250 2\.1\.5 " "check_ccert_access with --relay-clientcerts=OK lines relays for the client"
reply=$(smtp_session "$ccert")
like "$reply" "^554 5\.7\.1 <b@elsewhere\.example>: Relay access denied" "check_ccert_access refuses a client without a certificate"

done_testing
