#!/bin/bash
# t0306: a certificate chain of 30 certificates (about 24 KB, more than one TLS record)
# completes the handshake every time: probe, serve's onward relay and policy test against a
# real Postfix smtpd presenting it over STARTTLS and implicit TLS, TLS 1.3 and 1.2; and serve
# itself handed such a chain as a client certificate by openssl s_client. GnuTLS used to
# stop after the first record of the flight while the rest waited in our own input buffer,
# and nothing woke it again: most of these runs timed out in the handshake.
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need certtool openssl jq swaks
pf_require
N=10 # runs of each client against each server
P=$T/pki
mkdir -p "$P" && chmod 755 "$T" "$P"
cd "$T" || exit 1

# the chain: a root, 29 intermediates, each signing the next, and a leaf for
# mx.smtptls.test; RSA 2048 everywhere, for size (about 800 bytes of DER each)
valid=('activation_date = "2024-01-01 00:00:00"' 'expiration_date = "2099-12-31 23:59:59"')
_pki_cert "$P" ca rsa self 'cn = "smtptls big chain root"' 'serial = 1' ca cert_signing_key \
	"${valid[@]}" || { diag "cannot make the root"; exit 1; }
issuer=ca
for i in $(seq 1 29); do
	_pki_cert "$P" "i$i" rsa "$issuer" "cn = \"smtptls big chain intermediate $i\"" \
		"serial = $((i + 1))" ca cert_signing_key "${valid[@]}" ||
		{ diag "cannot make intermediate $i"; exit 1; }
	issuer=i$i
done
_pki_cert "$P" leaf rsa "$issuer" 'cn = "mx.smtptls.test"' 'dns_name = "mx.smtptls.test"' \
	'ip_address = "127.0.0.1"' 'serial = 100' tls_www_server tls_www_client signing_key \
	encryption_key "${valid[@]}" || { diag "cannot make the leaf"; exit 1; }
for i in $(seq 29 -1 1); do cat "$P/i$i.pem"; done >"$P/ints.pem"
cat "$P/leaf.pem" "$P/ints.pem" >"$P/chain.pem"
chmod 644 "$P"/*.key
is "$(grep -c 'BEGIN CERTIFICATE' "$P/chain.pem")" 30 "the chain holds 30 certificates"
der=$(openssl crl2pkcs7 -nocrl -certfile "$P/chain.pem" -outform DER | wc -c)
[ "$der" -gt 16384 ]
ok $? "and is larger than one TLS record ($der bytes of DER)"

# Postfix presents it: STARTTLS and implicit TLS, each with TLS 1.3 and with TLS 1.2 only
D=$T/postfix
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
st13=$(pf_free_port) st12=$(pf_free_port) ws13=$(pf_free_port) ws12=$(pf_free_port)
pf_conf "$D" "smtpd_tls_chain_files=$P/leaf.key,$P/chain.pem" || exit 1
v12=(-o "smtpd_tls_protocols=<=TLSv1.2" -o "smtpd_tls_mandatory_protocols=<=TLSv1.2")
pf_smtpd_service "$D" "$st13" -o smtpd_tls_security_level=may
pf_smtpd_service "$D" "$st12" -o smtpd_tls_security_level=may "${v12[@]}"
pf_smtpd_service "$D" "$ws13" -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt
pf_smtpd_service "$D" "$ws12" -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt \
	"${v12[@]}"
pf_start "$D" || { diag "Postfix did not start"; exit 1; }
declare -A srv=([starttls13]=$st13 [starttls12]=$st12 [smtps13]=$ws13 [smtps12]=$ws12)
declare -A mode=([starttls13]=--starttls [starttls12]=--starttls [smtps13]=--tls-on-connect
	[smtps12]=--tls-on-connect)
declare -A version=([starttls13]=TLSv1.3 [starttls12]=TLSv1.2 [smtps13]=TLSv1.3 [smtps12]=TLSv1.2)

# 1. probe, N times against each
for k in starttls13 starttls12 smtps13 smtps12; do
	good=0 why=
	for i in $(seq "$N"); do
		run timeout 60 "$SMTPTLS" --json probe --timeout 5 --level encrypt "${mode[$k]}" \
			"[127.0.0.1]:${srv[$k]}"
		if [ "$rc" = 0 ] && [ "$(jq -r '.tls.version + " " + (.level.met | tostring)' \
			<<<"$out")" = "${version[$k]} true" ]; then
			good=$((good + 1))
		else
			why="exit $rc: $(jq -r '.error // .level_reason // empty' <<<"$out" 2>/dev/null) $err"
		fi
	done
	is "$good" "$N" "probe $k: the handshake completes $N times in $N" ||
		diag "$why"
done

# 2. policy test, N times against each: a recipient routed to the relayhost by a client-side
# main.cf (implicit TLS: smtp_tls_wrappermode, as Postfix)
for k in starttls13 starttls12 smtps13 smtps12; do
	C=$T/client-$k
	mkdir -p "$C" && cp "$D/etc/main.cf" "$D/etc/master.cf" "$C/" &&
		postconf -c "$C" -e "relayhost=[127.0.0.1]:${srv[$k]}" default_transport=smtp \
			transport_maps= relay_domains= smtp_tls_security_level=encrypt || exit 1
	[ "${mode[$k]}" = --tls-on-connect ] && postconf -c "$C" -e smtp_tls_wrappermode=yes
	good=0 why=
	for i in $(seq "$N"); do
		run timeout 60 "$SMTPTLS" --json policy test --postfix-config "$C" --timeout 5 \
			r@smtptls-test.example
		got=$(jq -r '.verdict + " " + .hosts[0].tls_version' <<<"$out" 2>/dev/null)
		if [ "$rc" = 0 ] && [ "$got" = "delivered ${version[$k]}" ]; then
			good=$((good + 1))
		else
			why="exit $rc: $out $err"
		fi
	done
	is "$good" "$N" "policy test $k: delivered with TLS $N times in $N" || diag "$why"
done

# 2b. a next hop given as the operand: main.cf's smtp_tls_wrappermode applies to it too
# (Postfix's smtp client reads it for every destination), not only to routed recipients
run timeout 60 "$SMTPTLS" --json policy test --postfix-config "$T/client-smtps13" --timeout 5 \
	"[127.0.0.1]:${srv[smtps13]}"
is "$(jq -r '.verdict + " " + .hosts[0].tls_version' <<<"$out" 2>/dev/null)" \
	"delivered TLSv1.3" "policy test of a next hop: main.cf's smtp_tls_wrappermode gives implicit TLS" ||
	diag "exit $rc: $out $err"

# 3. serve relays onward through Postfix (STARTTLS, as Postfix's relayhost), N messages each
for k in starttls13 starttls12; do
	serve_as "relay$k" --listen 127.0.0.1:0 --maildir "$T/m$k" --queue-dir "$T/q$k" \
		--mynetworks 127.0.0.0/8 --relayhost "[127.0.0.1]:${srv[$k]}" --tls-level encrypt \
		--relay-timeout 5 --backoff 60 || exit 1
	for i in $(seq "$N"); do
		timeout 60 swaks --server 127.0.0.1 --port "$port" --from s@a.smtptls.test \
			--to "r$i@smtptls-test.example" --header "Subject: big chain $i" >/dev/null 2>&1 ||
			diag "swaks $i failed"
	done
	for i in $(seq "$N"); do
		wait_log "$T/relay$k.log" "\"event\":\"relay\".*\"to\":\"r$i@smtptls-test.example\"" >/dev/null
	done
	got=$(jq -r 'select(.event == "relay") | .status + " " + .tls.version' "$T/relay$k.log" |
		sort | uniq -c | sed 's/^ *//')
	is "$got" "$N sent ${version[$k]}" "serve relays through $k: $N messages in $N sent over TLS"
done

# 4. serve as the server, handed the chain as a client certificate by openssl s_client
serve --ask-ccert --listen 127.0.0.1:0/smtp --listen 127.0.0.1:0/smtps --self-signed=localhost \
	--maildir "$T/ms" --log "$T/serve.log" || { diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
declare -A sc=([smtp]="-starttls smtp" [smtps]="")
for m in smtp smtps; do
	for v in -tls1_3 -tls1_2; do
		good=0
		for i in $(seq "$N"); do
			# shellcheck disable=SC2086 # ${sc[$m]} is two words or none
			o=$(printf 'EHLO c.smtptls.test\r\nQUIT\r\n' | timeout 20 openssl s_client -quiet \
				${sc[$m]} "$v" -connect "127.0.0.1:$(port "$m")" -cert "$P/leaf.pem" \
				-key "$P/leaf.key" -cert_chain "$P/ints.pem" 2>/dev/null)
			grep -q '^221 ' <<<"$o" && good=$((good + 1))
		done
		is "$good" "$N" "serve ($m, $v) takes a 30-certificate client chain: $N sessions in $N end with 221"
	done
done
is "$(jq -r 'select(.event == "starttls") | .client_cert.subject' "$T/serve.log" | sort | uniq -c |
	sed 's/^ *//')" "$((4 * N)) mx.smtptls.test" "and it read the client certificate every time"

done_testing
