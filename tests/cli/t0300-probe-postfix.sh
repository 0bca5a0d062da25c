#!/bin/bash
# t0300: probe against a real Postfix smtpd: implicit TLS, STARTTLS, no TLS, a demanded client
# certificate, relay by client certificate, AUTH PLAIN and LOGIN against a sasldb, protocol
# limits, --interactive; status words and fingerprints
# compared with posttls-finger against the same ports
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
. "$TOP_SRCDIR/tests/lib/dns.sh"
need certtool openssl jq dnsmasq dig saslpasswd2 script
pf_require posttls-finger
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
D=$T/postfix
chmod 755 "$T"
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
export MAIL_CONFIG=$D/etc

smtps=$(pf_free_port) starttls=$(pf_free_port) plain=$(pf_free_port) reqcc=$(pf_free_port)
relay=$(pf_free_port) tls12=$(pf_free_port) closed=$(pf_free_port) submission=$(pf_free_port)
sasl=$(pf_free_port) expired=$(pf_free_port) mailrej=$(pf_free_port)
"$SMTPTLS" fingerprint --relay-clientcerts --pubkey "$P/client.pem" >"$D/relay_clientcerts"
cat "$P/ca.pem" "$P/int.pem" >"$P/ca-int.pem"
cat "$P/expired.pem" "$P/int.pem" >"$P/expired-chain.pem"
pf_conf "$D" "smtpd_tls_chain_files=$P/server.key,$P/server-chain.pem" "smtpd_tls_CAfile=$P/ca-int.pem" \
	"relay_clientcerts=texthash:$D/relay_clientcerts" "default_transport=discard:"
pf_smtpd_service "$D" "$smtps" -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt
pf_smtpd_service "$D" "$starttls" -o smtpd_tls_security_level=may
pf_smtpd_service "$D" "$plain" -o smtpd_tls_security_level=none
pf_smtpd_service "$D" "$reqcc" -o smtpd_tls_security_level=encrypt -o smtpd_tls_ask_ccert=yes \
	-o smtpd_tls_req_ccert=yes
pf_smtpd_service "$D" "$relay" -o smtpd_tls_security_level=may -o smtpd_tls_ask_ccert=yes \
	-o "smtpd_relay_restrictions=permit_tls_clientcerts,reject_unauth_destination"
pf_smtpd_service "$D" "$tls12" -o smtpd_tls_security_level=may -o "smtpd_tls_protocols=<=TLSv1.2"
pf_smtpd_service "$D" "$submission" -o smtpd_tls_security_level=encrypt
# SASL from a sasldb of its own: Debian's Postfix reads the Cyrus configuration from
# $config_directory/sasl/smtpd.conf (cyrus_sasl_config_path is not consulted)
mkdir -p "$D/etc/sasl"
printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: %s\n' \
	"$D/etc/sasl/sasldb2" >"$D/etc/sasl/smtpd.conf"
printf 's3cret\n' | saslpasswd2 -f "$D/etc/sasl/sasldb2" -c -p -u smtptls-test.example alice
chgrp "$(postconf -dh mail_owner)" "$D/etc/sasl/sasldb2" && chmod 640 "$D/etc/sasl/sasldb2"
pf_smtpd_service "$D" "$sasl" -o smtpd_tls_security_level=may -o smtpd_sasl_auth_enable=yes \
	-o smtpd_tls_auth_only=yes -o smtpd_sasl_local_domain=smtptls-test.example -o mynetworks= \
	-o smtpd_relay_restrictions=permit_sasl_authenticated,reject_unauth_destination
pf_smtpd_service "$D" "$expired" -o smtpd_tls_security_level=may \
	-o "smtpd_tls_chain_files=$P/expired.key,$P/expired-chain.pem"
# a server that refuses every sender (at MAIL FROM, not later)
pf_smtpd_service "$D" "$mailrej" -o smtpd_tls_security_level=may -o smtpd_delay_reject=no \
	-o smtpd_sender_restrictions=reject
pf_start "$D" || { diag "Postfix did not start"; exit 1; }

pr() { run "$SMTPTLS" --json probe --timeout 20 --ehlo client.test.example "$@"; }
j() { jq -r "$1" <<<"$out"; }
server_fp=$(openssl x509 -in "$P/server.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
finger() { timeout 30 posttls-finger -c -d sha256 -F "$P/ca.pem" "$@" 2>&1 | grep -o '[A-Za-z]* TLS connection established' | head -1; }

# implicit TLS, judged at secure with the server's name
pr --tls-on-connect --ca-file "$P/ca.pem" --level secure --match mx.test.example "[127.0.0.1]:$smtps"
is "$rc" 0 "implicit TLS, secure, right name: exit 0"
is "$(j .mode)/$(j .tls.status)/$(j .level.met)" "implicit/Verified/true" "implicit TLS: Verified, level met"
is "$(j '.tls.chain[0].fingerprint')" "$server_fp" "the chain as sent: the leaf's fingerprint as openssl computes it"
is "$(j '.tls.chain | length')" 2 "the chain as sent: leaf and intermediate"
is "$(j '.tls.chain[0].san | join(",")')" "DNS:mx.test.example,DNS:localhost,IP:127.0.0.1,IP:::1" "its names"
is "$(j '.tls.chain[0].not_after')/$(j '.tls.chain[0].key.algorithm')/$(j '.tls.chain[0].signature_algorithm')" \
	"2099-12-31T23:59:59Z/ECDSA/ECDSA-SHA256" "its validity, key and signature algorithm"
is "$(j '.tls.chain[1].pkey_fingerprint')" "$("$SMTPTLS" fingerprint -b --pubkey "$P/int.pem" | cut -d' ' -f1)" "the intermediate's public-key fingerprint"
pr --tls-on-connect --no-system-ca --level encrypt --save-chain "$T/saved.pem" "[127.0.0.1]:$smtps"
is "$("$SMTPTLS" fingerprint -b "$T/saved.pem" | cut -d' ' -f1 | tr '\n' ,)" \
	"$("$SMTPTLS" fingerprint -b "$P/server-chain.pem" | cut -d' ' -f1 | tr '\n' ,)" "--save-chain writes the chain as sent"
like "$(j .banner)" "^220 " "the banner"
is "$(finger -w -l secure "[127.0.0.1]:$smtps" mx.test.example)" "Verified TLS connection established" "posttls-finger agrees: Verified"
# the server's signature, as posttls-finger logs it
# ("server-signature ECDSA (prime256v1) server-digest SHA256")
pf_line=$(timeout 30 posttls-finger -c -w -l secure -F "$P/ca.pem" "[127.0.0.1]:$smtps" mx.test.example 2>&1 | grep 'TLS connection established')
pr --tls-on-connect --ca-file "$P/ca.pem" --level secure --match mx.test.example "[127.0.0.1]:$smtps"
sig=$(j .tls.signature_algorithm)
like "$pf_line" "server-signature ${sig%%-*} " "the server's signature algorithm ($sig) is the one posttls-finger names"
like "$pf_line" "server-digest ${sig##*-} *\$|server-digest ${sig##*-}\\b" "and its digest"
like "$(j .tls.group)" "^(X25519|SECP256R1|SECP384R1|X448)$" "the key exchange group (the client's choice among the server's: OpenSSL's differs)"
is "$(j .tls.sni)" null "no SNI for an address literal"
pr --tls-on-connect --ca-file "$P/ca.pem" --level secure --resolve "mx.test.example:$smtps:127.0.0.1" "mx.test.example:$smtps"
is "$(j .tls.sni)" mx.test.example "the host name as SNI"
pr --tls-on-connect --ca-file "$P/ca.pem" --level encrypt --servername other.example "[127.0.0.1]:$smtps"
is "$(j .tls.sni)" other.example "--servername as SNI"

# STARTTLS
pr --ca-file "$P/ca.pem" --level secure --match mx.test.example "[127.0.0.1]:$starttls"
is "$rc/$(j .mode)/$(j .tls.status)" "0/starttls/Verified" "STARTTLS, secure, right name: Verified"
is "$(j '.ehlo | index("STARTTLS") != null')" true "EHLO before TLS offers STARTTLS"
is "$(j '.ehlo_tls | index("STARTTLS") == null')" true "EHLO after TLS no longer does"
is "$(finger -l secure "[127.0.0.1]:$starttls" mx.test.example)" "Verified TLS connection established" "posttls-finger agrees"
pr --ca-file "$P/ca.pem" --level secure --match other.test.example "[127.0.0.1]:$starttls"
is "$rc/$(j .tls.status)/$(j .level.met)" "1/Trusted/false" "wrong name: Trusted, level not met, exit 1"
is "$(j .level.reason)" "Server certificate not verified" "wrong name: Postfix's deferral reason"
pr --no-system-ca --level secure --match mx.test.example "[127.0.0.1]:$starttls"
is "$rc/$(j .tls.status)" "1/Untrusted" "no trust anchor: Untrusted, exit 1"
is "$(timeout 30 posttls-finger -c -l secure "[127.0.0.1]:$starttls" mx.test.example 2>&1 | grep -o '[A-Za-z]* TLS connection established' | head -1)" \
	"Untrusted TLS connection established" "posttls-finger agrees without a CA"
pr --no-system-ca --level encrypt "[127.0.0.1]:$starttls"
is "$rc/$(j .level.met)" "0/true" "encrypt: TLS is enough"
pr --level fingerprint --match "$server_fp" "[127.0.0.1]:$starttls"
is "$rc/$(j .tls.status)" "0/Verified" "fingerprint level: the certificate fingerprint matches"
pr --level fingerprint --match "$(tr -d : <<<"$server_fp" | tr A-F a-f)" "[127.0.0.1]:$starttls"
is "$rc" 0 "fingerprint level: colons optional, case ignored (Postfix 3.6)"
pr --level fingerprint --match "AA:BB" "[127.0.0.1]:$starttls"
is "$rc/$(j .level.reason)" "1/Server certificate not verified" "fingerprint level: no match"

# an expired certificate: Postfix (posttls-finger) and smtptls call it the same
pr --ca-file "$P/ca.pem" --level secure --match mx.test.example "[127.0.0.1]:$expired"
is "$rc/$(j .tls.status)/$(j .level.met)" "1/$(finger -l secure "[127.0.0.1]:$expired" mx.test.example | cut -d' ' -f1)/false" \
	"expired: the status word posttls-finger gives, level secure not met, exit 1"
is "$(j .level.reason)" "Server certificate not verified" "expired: Postfix's deferral reason"
like "$(j '.tls.errors | join("|")')" "expired" "and the verification error says the certificate has expired"
pr --ca-file "$P/ca.pem" --level encrypt "[127.0.0.1]:$expired"
is "$rc/$(j .level.met)" "0/true" "expired: encrypt does not look at the certificate"

# the enforcement check: MAIL FROM on a second, plaintext connection
pr --no-system-ca --level encrypt --check-enforcement "[127.0.0.1]:$submission"
is "$rc/$(j .tls_required)" "0/true" "smtpd_tls_security_level=encrypt: TLS is enforced"
is "$(j .enforcement_reply)" "530 5.7.0 Must issue a STARTTLS command first" "in Postfix's words"
SMTPTLS_PASSWORD=x run "$SMTPTLS" --json probe --timeout 20 --ehlo client.test.example --no-system-ca \
	--level encrypt --check-enforcement --auth-user bob "[127.0.0.1]:$submission"
is "$(j .tls_required)" "true" "with --auth-user the plaintext check still runs, and never authenticates"
pr --no-system-ca --level encrypt --check-enforcement "[127.0.0.1]:$starttls"
is "$(j .tls_required)" "false" "smtpd_tls_security_level=may: not enforced"
like "$(j '.findings | join("|")')" "TLS is not enforced: MAIL FROM accepted without STARTTLS" "a finding says so"
pr --no-system-ca --level encrypt "[127.0.0.1]:$starttls"
is "$(j .tls_required)" "null" "without --check-enforcement: not checked (null)"
pr --level encrypt "[127.0.0.1]:$plain"
like "$(j '.findings | join("|")')" "STARTTLS not offered" "a server without STARTTLS: a finding"

# AUTH: Postfix offers it only after TLS (smtpd_tls_auth_only), against a real sasldb;
# relay on that port only for authenticated clients (mynetworks empty)
SMTPTLS_PASSWORD=s3cret run "$SMTPTLS" --json probe --no-system-ca --level encrypt --auth-user alice \
	--mail-from alice@smtptls-test.example --rcpt-to b@elsewhere.example "[127.0.0.1]:$sasl"
is "$(j .auth.offered_before_tls)" false "AUTH is not offered before TLS"
is "$(j .auth.mechanisms)" "PLAIN LOGIN" "AUTH mechanisms after TLS, as smtpd.conf's mech_list says"
is "$(j .auth.mechanism)/$(j .auth.ok)" "PLAIN/true" "AUTH PLAIN with the right password: accepted"
is "$(j .auth.reply)" "235 2.7.0 Authentication successful" "Postfix's words"
is "$(j '.rcpt[0].reply')" "250 2.1.5 Ok" "authenticated: Postfix relays for us"
is "$rc" 0 "AUTH accepted: exit 0"
like "$(cat "$D/maillog")" "sasl_method=PLAIN, sasl_username=alice@smtptls-test\.example" "Postfix logged our login"
printf 's3cret\n' >"$T/pw"
run "$SMTPTLS" --json probe --no-system-ca --level encrypt --auth-user alice --auth-mech LOGIN \
	--auth-password-file "$T/pw" --mail-from alice@smtptls-test.example --rcpt-to c@elsewhere.example \
	"[127.0.0.1]:$sasl"
is "$(j .auth.mechanism)/$(j .auth.ok)/$rc" "LOGIN/true/0" "AUTH LOGIN, the password from a file: accepted"
is "$(j '.rcpt[0].reply')" "250 2.1.5 Ok" "and Postfix relays"
like "$(cat "$D/maillog")" "sasl_method=LOGIN, sasl_username=alice@smtptls-test\.example" "Postfix logged it"
SMTPTLS_PASSWORD=wrong run "$SMTPTLS" --json probe --no-system-ca --level encrypt --auth-user alice \
	--mail-from alice@smtptls-test.example --rcpt-to b@elsewhere.example "[127.0.0.1]:$sasl"
is "$(j .auth.mechanism)/$(j .auth.ok)" "PLAIN/false" "a wrong password: refused"
is "$(j .auth.reply)" "535 5.7.8 Error: authentication failed: authentication failure" "Postfix's words"
is "$rc" 8 "a refused AUTH: exit 8"
is "$(j '.rcpt | length')" 0 "and no MAIL or RCPT after it"
run "$SMTPTLS" --json probe --no-system-ca --level encrypt --auth-user bob --auth-mech LOGIN \
	--auth-password-file "$T/pw" "[127.0.0.1]:$sasl"
like "$(cat "$D/maillog")" "SASL LOGIN authentication failed: .*sasl_username=bob@smtptls-test\.example" "an unknown user: Postfix decoded our LOGIN name"
pr --no-system-ca --level encrypt --mail-from a@smtptls-test.example --rcpt-to b@elsewhere.example "[127.0.0.1]:$sasl"
is "$(j '.rcpt[0].reply')" "554 5.7.1 <b@elsewhere.example>: Relay access denied" "without AUTH: no relay"
unlike "$(cat "$D/maillog")$out$err" "s3cret|czNjcmV0|AGFsaWNlAHMzY3JldA" "the password appears nowhere"
st probe --auth-user alice "[127.0.0.1]:$sasl"
is "$rc" 2 "--auth-user without a password: usage status"
st probe --auth-mech CRAM-MD5 --auth-user a "[127.0.0.1]:$sasl"
is "$rc" 2 "an unknown mechanism: usage status"

# no TLS offered
pr --level encrypt "[127.0.0.1]:$plain"
is "$rc/$(j .level.met)" "1/false" "no STARTTLS at encrypt: exit 1"
is "$(j .level.reason)" "TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]" "Postfix's words"
pr --level may "[127.0.0.1]:$plain"
is "$rc/$(j .level.reason)" "0/delivered without TLS" "may: delivered without TLS"

# a client certificate demanded, none given: 421 after the handshake
pr --no-system-ca --level encrypt "[127.0.0.1]:$reqcc"
is "$rc" 8 "smtpd_tls_req_ccert without a client certificate: exit 8 (refused)"
is "$(j .client_cert_requested)" true "the server asked for a client certificate"
like "$(j .error)" "421 4\.7\.1 .*Error: No client certificate presented" "in Postfix's words"
pr --no-system-ca --level encrypt --cert "$P/client.pem" --key "$P/client.key" "[127.0.0.1]:$reqcc"
is "$rc" 0 "with the client certificate: exit 0"

# relay by client certificate
pr --no-system-ca --level encrypt --cert "$P/client.pem" --key "$P/client.key" \
	--mail-from a@client.test.example --rcpt-to b@elsewhere.example "[127.0.0.1]:$relay"
like "$(j '.rcpt[0].reply')" "^250 2\.1\.5" "relay with the listed client certificate: accepted"
is "$rc/$(j .relay)" "0/accepted" "relay accepted: exit 0, JSON relay accepted"
pr --no-system-ca --level encrypt --mail-from a@client.test.example --rcpt-to b@elsewhere.example "[127.0.0.1]:$relay"
like "$(j '.rcpt[0].reply')" "^554 5\.7\.1 <b@elsewhere\.example>: Relay access denied" "without it: Relay access denied"
is "$rc/$(j .relay)/$(j .level.met)" "8/refused/true" "relay refused: exit 8 (the server refused us), though the level is met"
is "$(j .level.reason)" \
	"host 127.0.0.1[127.0.0.1] said: 554 5.7.1 <b@elsewhere.example>: Relay access denied (in reply to RCPT TO command)" \
	"the level's reason is the refusal in Postfix's words, not a delivery"
st probe --no-system-ca --level encrypt --mail-from a@client.test.example --rcpt-to b@elsewhere.example \
	"[127.0.0.1]:$relay"
is "$rc" 8 "text: relay refused, exit 8"
like "$out" "^127\.0\.0\.1\[127\.0\.0\.1\]:$relay: level met, relay refused$" "the first line says relay refused as plainly as level met"
like "$out" "relay +refused" "and a line of its own"
unlike "$out" "delivered" "the text claims no delivery"
st probe --no-system-ca --level encrypt --cert "$P/client.pem" --key "$P/client.key" \
	--mail-from a@client.test.example --rcpt-to b@elsewhere.example "[127.0.0.1]:$relay"
is "$rc" 0 "text: relay accepted, exit 0"
like "$out" "relay +accepted" "it says relay accepted"
unlike "$out" "relay refused" "and not refused"
pr --no-system-ca --level encrypt --mail-from a@client.test.example --rcpt-to b@elsewhere.example \
	"[127.0.0.1]:$mailrej"
is "$rc/$(j .relay)" "8/refused" "MAIL FROM refused: exit 8, relay refused"
like "$(j .error)" "MAIL FROM refused: 554 5\.7\.1 " "in Postfix's words"
like "$(j .level.reason)" "^host 127\.0\.0\.1\[127\.0\.0\.1\] said: 554 5\.7\.1 .*\(in reply to MAIL FROM command\)$" \
	"the level's reason: the MAIL FROM refusal, as Postfix logs it"

# session resumption, as posttls-finger -r shows it
pr --no-system-ca --level encrypt --reconnect "[127.0.0.1]:$starttls"
is "$(j .tls.resumed_on_reconnect)" true "--reconnect: the TLS 1.3 session is resumed"
pr --no-system-ca --level encrypt --reconnect --protocols "<=TLSv1.2" "[127.0.0.1]:$starttls"
is "$(j .tls.resumed_on_reconnect)" true "--reconnect: the TLS 1.2 session too"
like "$(timeout 30 posttls-finger -c -l encrypt -r 1 -m 2 "[127.0.0.1]:$starttls" 2>&1)" "Reusing old session" "posttls-finger -r agrees"
pr --no-system-ca --level encrypt "[127.0.0.1]:$starttls"
is "$(j .tls.resumed_on_reconnect)" null "without --reconnect: not checked (null)"

# protocols
pr --no-system-ca --level encrypt "[127.0.0.1]:$tls12"
is "$(j .tls.version)" "TLSv1.2" "a server limited to TLS 1.2"
pr --no-system-ca --level encrypt --protocols ">=TLSv1.3" "[127.0.0.1]:$tls12"
is "$rc" 7 "asking TLS 1.3 of it: the handshake fails, exit 7"
is "$(j .level.reason)" "Cannot start TLS: handshake failure" "in Postfix's words"

# names through --resolve, the hostname strategy
pr --ca-file "$P/ca.pem" --resolve "mx.test.example:$starttls:127.0.0.1" "mx.test.example:$starttls"
is "$rc/$(j .tls.status)/$(j .address)" "0/Verified/127.0.0.1" "--resolve: verify level, hostname strategy: Verified"

# mail domains through a DNS server on loopback (never the machine's resolver)
dnsport=$(pf_free_port)
dns_init "$T/dns"
dns_mx example.smtptls.test 20 other.test.example
dns_mx example.smtptls.test 10 mx.test.example
dns_a mx.test.example 127.0.0.1
dns_a other.test.example 127.0.0.1
dns_a nomx.smtptls.test 127.0.0.1
dns_mx nullmx.smtptls.test 0 .
dns_mx pair.smtptls.test 10 pair-a.smtptls.test
dns_mx pair.smtptls.test 20 pair-b.smtptls.test
dns_a pair-a.smtptls.test 127.0.0.2
dns_a pair-b.smtptls.test 127.0.0.3
dns_start "$dnsport" || { diag "dnsmasq did not start"; exit 1; }
pr --dns-server "127.0.0.1:$dnsport" --ca-file "$P/ca.pem" --mx "example.smtptls.test:$starttls"
is "$(j .host | tr '\n' ,)" "mx.test.example,other.test.example," "MX hosts in preference order, every one probed"
is "$(j .tls.status | tr '\n' ,)" "Verified,Trusted," "each judged by its own name (the hostname strategy)"
is "$rc" 1 "one MX host fails the level: exit 1 (the worst)"
pr --dns-server "127.0.0.1:$dnsport" --ca-file "$P/ca.pem" --mx --first "example.smtptls.test:$starttls"
is "$rc/$(j .host)" "0/mx.test.example" "--first: the first MX host only, as posttls-finger"
pr --dns-server "127.0.0.1:$dnsport" --ca-file "$P/ca.pem" --level secure --mx "example.smtptls.test:$starttls"
is "$(j .level.met | tr '\n' ,)" "false,false," "secure: nexthop:dot-nexthop, the domain example.smtptls.test, matches neither"
pr --dns-server "127.0.0.1:$dnsport" --no-system-ca --level encrypt --mx "nomx.smtptls.test:$starttls"
is "$rc/$(j .host)/$(j .address)" "0/nomx.smtptls.test/127.0.0.1" "no MX: the domain's own address, as Postfix"
pr --dns-server "127.0.0.1:$dnsport" --mx "nullmx.smtptls.test:$starttls"
is "$rc" 4 "a null MX: exit 4"
like "$(j .error)" "null MX \(RFC 7505\)" "a null MX is named"
pr --dns-server "127.0.0.1:$dnsport" --mx "nowhere.smtptls.test:$starttls"
is "$rc" 4 "no such domain: exit 4"
pr --dns-server "127.0.0.1:$dnsport" --ca-file "$P/ca.pem" "mx.test.example:$starttls"
is "$rc/$(j .tls.status)" "0/Verified" "host:port through --dns-server"

# every MX host and address side by side on one loop: two servers that greet no one until
# both have a client are answered only when probed at once (one after the other, the
# first waits in vain for its banner)
rendezvous() {
	local fifo=$T/ready.rv l
	rm -f "$fifo" && mkfifo "$fifo"
	python3 "$TOP_SRCDIR/tests/lib/rendezvous-smtp.py" 127.0.0.2 127.0.0.3 >"$fifo" &
	at_exit "kill $! 2>/dev/null"
	read -r -t 20 l rvport <"$fifo" && [ "$l" = ready ]
}
rendezvous || { diag "the rendezvous server did not start"; exit 1; }
pr --dns-server "127.0.0.1:$dnsport" --timeout 10 --level may --mx "pair.smtptls.test:$rvport"
is "$rc" 0 "two MX hosts probed side by side: exit 0"
is "$(j .host | tr '\n' ,)" "pair-a.smtptls.test,pair-b.smtptls.test," "both reported, in MX order"
is "$(j .banner | tr '\n' ,)" "220 rendezvous.smtptls.test ESMTP,220 rendezvous.smtptls.test ESMTP," "both were greeted: they were connected at once"
rendezvous || { diag "the rendezvous server did not start"; exit 1; }
pr --dns-server "127.0.0.1:$dnsport" --timeout 2 --level may --first --mx "pair.smtptls.test:$rvport"
is "$rc/$(j .host)" "6/pair-a.smtptls.test" "--first: one at a time, as posttls-finger: the first waits in vain and is the only one"
like "$(j .error)" "no reply within 2000 ms \\(banner\\)" "it says so"
rendezvous || { diag "the rendezvous server did not start"; exit 1; }
st probe -v --dns-server "127.0.0.1:$dnsport" --timeout 10 --level may --mx "pair.smtptls.test:$rvport"
like "$err" "\\[127\\.0\\.0\\.2\\]:$rvport > +EHLO" "-v with several addresses: each transcript line says whose it is"

# no connection, bad destinations
pr "[127.0.0.1]:$closed"
is "$rc" 5 "a closed port: exit 5"
like "$(j .error)" "cannot connect: connection refused" "a closed port: says so"
st probe "127.0.0.1:notaport"
is "$rc" 2 "a bad destination: usage status"
st probe --resolve "x.smtptls.test:25:not-an-address" x.smtptls.test:25
is "$rc:$err" "2:smtptls probe: --resolve: 'x.smtptls.test:25:not-an-address': 'not-an-address' is not an IP address
Try 'smtptls probe --help' for more information." "a --resolve address that is no address: a usage error"

# text output and the transcript
st probe -v --no-system-ca --level encrypt "[127.0.0.1]:$starttls"
like "$out" "level met" "text: the verdict"
like "$err" "> +STARTTLS" "-v: the transcript"
like "$err" ">~ EHLO " "-v: lines after STARTTLS are marked"

# --send: the message goes with DATA after the recipients (never without --send)
printf 'From: a@client.test.example\nTo: b@elsewhere.example\nSubject: probe\nMessage-ID: <send-%s@client.test.example>\n\nline one\n.line with a dot\n' "$$" >"$T/msg"
pr --no-system-ca --level encrypt --mail-from a@client.test.example --rcpt-to b@elsewhere.example \
	--send "$T/msg" "[127.0.0.1]:$starttls"
is "$rc" 0 "--send: exit 0"
like "$(j .data)" "^250 2\\.0\\.0 Ok: queued as [0-9A-Za-z]+$" "Postfix queued the message"
qid=$(j .data | sed 's/.* as //')
like "$(cat "$D/maillog")" "$qid: message-id=<send-$$@client\\.test\\.example>" "the message Postfix queued is ours (its Message-ID)"
pr --no-system-ca --level encrypt --mail-from a@client.test.example --rcpt-to b@elsewhere.example "[127.0.0.1]:$starttls"
is "$(j .data)" null "without --send: no DATA"
pr --no-system-ca --level encrypt --mail-from a@client.test.example --rcpt-to b@elsewhere.example \
	--send - "[127.0.0.1]:$starttls" <"$T/msg"
like "$(j .data)" "^250 " "--send - reads standard input"
st probe --send "$T/msg" "[127.0.0.1]:$starttls"
is "$rc" 2 "--send without recipients: usage"
st probe --mail-from a@b --rcpt-to c@d --send "$T/nonexistent" "[127.0.0.1]:$starttls"
is "$rc" 3 "--send with a file that is not there: exit 3"
like "$err" "--send: .*nonexistent" "it names the file"

# one address only where it matters: a message goes to the first MX host that takes it
# (as Postfix sends it), the interactive conversation to the first that answers
printf 'Subject: once\nMessage-ID: <once-%s@client.test.example>\n\nbody\n' "$$" >"$T/once"
pr --dns-server "127.0.0.1:$dnsport" --ca-file "$P/ca.pem" --mail-from a@client.test.example \
	--rcpt-to b@elsewhere.example --send "$T/once" --mx "example.smtptls.test:$starttls"
is "$rc/$(j .host)" "0/mx.test.example" "--send to a domain of two MX hosts: the first takes it, the second is not asked"
is "$(grep -c "message-id=<once-$$@client" "$D/maillog")" 1 "Postfix got the message once"
run timeout 60 "$SMTPTLS" probe --interactive --timeout 20 --dns-server "127.0.0.1:$dnsport" \
	--ca-file "$P/ca.pem" --mx "example.smtptls.test:$starttls" < <(printf 'NOOP\n')
is "$(grep -c 'level met' <<<"$out")" 1 "--interactive to a domain of two MX hosts: one conversation"
# at verify, a server that fails it gets nothing after EHLO: no message, no AUTH secret
printf 'Subject: never\nMessage-ID: <never-%s@client.test.example>\n\nbody\n' "$$" >"$T/never"
pr --no-system-ca --level verify --mail-from a@client.test.example --rcpt-to b@elsewhere.example \
	--send "$T/never" "[127.0.0.1]:$starttls"
is "$rc/$(j .level.met)/$(j .data)" "1/false/null" "an unverified server at verify: not met, no DATA"
is "$(j '.rcpt | length')" 0 "not even MAIL and RCPT"
like "$(j '.findings | join("|")')" "does not meet --level verify: nothing went to it after EHLO" "a finding says so"
is "$(grep -c "never-$$@client" "$D/maillog")" 0 "Postfix never saw the message"
SMTPTLS_PASSWORD=s3cret run "$SMTPTLS" --json probe --no-system-ca --level verify --auth-user alice "[127.0.0.1]:$sasl"
is "$(j .auth.mechanism)/$(j .auth.ok)" "/false" "nor the AUTH secret"
pr --no-system-ca --level verify --mail-from a@client.test.example --rcpt-to b@elsewhere.example \
	--send /dev/null --ca-file "$P/ca.pem" --match mx.test.example "[127.0.0.1]:$starttls"
like "$(j .data)" "^250 " "a verified server gets it; an empty --send file is an empty message, still sent"

# --interactive: the lines of stdin go to the server as they are, after STARTTLS and EHLO;
# a line starting with R or Q is a command for the server (openssl s_client would
# renegotiate or quit); the input's end sends QUIT; then the report
printf 'NOOP\r\nRCPT TO:<x@example.org>\nMAIL FROM:<a@client.test.example>\nRCPT TO:<b@elsewhere.example>\nRSET\n' >"$T/dialogue"
run timeout 60 "$SMTPTLS" probe --interactive --timeout 20 --no-system-ca --level encrypt \
	"[127.0.0.1]:$relay" <"$T/dialogue"
is "$rc" 0 "--interactive from a file: exit 0"
like "$out" "\\*~ TLS handshake done: TLSv1\\.3 " "the TLS boundary is marked"
like "$out" ">~ NOOP
<~ 250 2\\.0\\.0 Ok" "NOOP went inside TLS, CRLF or LF alike, and its reply shows"
like "$out" ">~ RCPT TO:<x@example.org>
<~ 503 5\\.5\\.1 Error: need MAIL command" "a line starting with R is sent, not a renegotiation"
like "$out" "<~ 554 5\\.7\\.1 <b@elsewhere\\.example>: Relay access denied" "Postfix's own relay refusal"
like "$out" ">~ RSET
<~ 250 2\\.0\\.0 Ok
>~ QUIT
<~ 221 2\\.0\\.0 Bye" "the end of the input sends QUIT"
like "$out" "level met" "then the report"
out_file=$out
run timeout 60 bash -c 'cat "$1" | "$SMTPTLS" probe --interactive --timeout 20 --no-system-ca \
	--level encrypt "[127.0.0.1]:$2"' - "$T/dialogue" "$relay"
is "$(grep '^[<>]~' <<<"$out")" "$(grep '^[<>]~' <<<"$out_file")" "from a pipe: the same conversation"
run timeout 60 "$SMTPTLS" probe --interactive --timeout 20 --no-system-ca \
	--level encrypt --tls-on-connect "[127.0.0.1]:$smtps" < <(printf 'QUIT\nNOOP\n')
is "$rc" 0 "implicit TLS, the user's QUIT: exit 0"
is "$(grep -c '^>~ ' <<<"$out")" 2 "EHLO and the user's QUIT only: nothing after QUIT is sent"
run timeout 60 "$SMTPTLS" probe --interactive --timeout 20 --no-system-ca --level encrypt \
	"[127.0.0.1]:$starttls" < <(printf 'NOOP\n'; head -c 5000 /dev/zero | tr '\0' A)
is "$rc" 3 "a line over 4096 bytes: exit 3"
like "$out" "error +line 2 of the input is over 4096 bytes: not sent" "it is named (by its number), not sent"
unlike "$out" ">~ AAAA" "and nothing of it went out"
st --json probe --interactive "[127.0.0.1]:$starttls"
is "$rc" 2 "--interactive with --json: usage"
# from a terminal (script(1) gives it one): the same conversation
out=$(printf 'NOOP\nQUIT\n' | timeout 60 script -qec "$SMTPTLS probe --interactive --timeout 20 \
	--no-system-ca --level encrypt [127.0.0.1]:$starttls" /dev/null | tr -d '\r')
like "$out" ">~ NOOP
<~ 250 2\\.0\\.0 Ok
>~ QUIT
<~ 221 2\\.0\\.0 Bye" "--interactive from a terminal"

done_testing
