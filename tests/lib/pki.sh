# pki.sh: make a test PKI at test time with certtool (sourced; bash)
#
# pki_make DIR writes, with validity dates pinned in the templates so that
# no test waits for time or depends on today's date:
#   ca.pem/ca.key             root CA (RSA 2048), 2024-01-01 .. 2099-12-31
#   int.pem/int.key           intermediate CA (ECDSA P-256) signed by the root
#   server.pem/server.key     leaf for mx.test.example, localhost, 127.0.0.1, ::1 (ECDSA)
#   server-chain.pem          server.pem + int.pem, as a server sends it
#   server-rsa.pem/.key       RSA 2048 leaf for the same names, signed by int
#   client.pem/client.key     client leaf CN=client.test.example, clientAuth only
#   expired.pem/.key          leaf valid 2020-01-01 .. 2021-01-01
#   future.pem/.key           leaf valid 2098-01-01 .. 2099-01-01
#   wrongname.pem/.key        leaf for wrong.test.example only
#   selfsigned.pem/.key       self-signed leaf for mx.test.example
#   bundle.pem                ca.pem + int.pem

_pki_tmpl() { # FILE then lines
	local f=$1
	shift
	printf '%s\n' "$@" >"$f"
}

# _pki_cert DIR NAME KEYTYPE ISSUER(or "self") TEMPLATE-LINES...
_pki_cert() {
	local d=$1 name=$2 ktype=$3 issuer=$4
	shift 4
	case $ktype in
	rsa) certtool --generate-privkey --key-type=rsa --bits=2048 --outfile "$d/$name.key" 2>/dev/null ;;
	ec) certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile "$d/$name.key" 2>/dev/null ;;
	esac || return 1
	_pki_tmpl "$d/$name.tmpl" "$@"
	if [ "$issuer" = self ]; then
		certtool --generate-self-signed --load-privkey "$d/$name.key" \
			--template "$d/$name.tmpl" --outfile "$d/$name.pem" 2>/dev/null
	else
		certtool --generate-certificate --load-privkey "$d/$name.key" \
			--load-ca-certificate "$d/$issuer.pem" --load-ca-privkey "$d/$issuer.key" \
			--template "$d/$name.tmpl" --outfile "$d/$name.pem" 2>/dev/null
	fi || return 1
	# keep only the PEM block (certtool prepends a text dump with some options)
	sed -n '/^-----BEGIN/,/^-----END/p' "$d/$name.pem" >"$d/$name.pem.tmp" && mv "$d/$name.pem.tmp" "$d/$name.pem"
	chmod 600 "$d/$name.key"
}

pki_make() {
	local d=$1
	local valid=('activation_date = "2024-01-01 00:00:00"' 'expiration_date = "2099-12-31 23:59:59"')
	local server=('dns_name = "mx.test.example"' 'dns_name = "localhost"' 'ip_address = "127.0.0.1"'
		'ip_address = "::1"' 'tls_www_server' 'signing_key' 'encryption_key')
	mkdir -p "$d" || return 1
	command -v certtool >/dev/null || { echo "pki_make: certtool not installed (gnutls-bin)" >&2; return 1; }

	_pki_cert "$d" ca rsa self 'cn = "smtptls Test Root CA"' 'organization = "smtptls tests"' \
		'serial = 1' ca cert_signing_key crl_signing_key "${valid[@]}" || return 1
	_pki_cert "$d" int ec ca 'cn = "smtptls Test Intermediate CA"' 'organization = "smtptls tests"' \
		'serial = 2' ca 'path_len = 0' cert_signing_key crl_signing_key "${valid[@]}" || return 1
	_pki_cert "$d" server ec int 'cn = "mx.test.example"' 'serial = 10' "${server[@]}" "${valid[@]}" || return 1
	_pki_cert "$d" server-rsa rsa int 'cn = "mx.test.example"' 'serial = 11' "${server[@]}" "${valid[@]}" || return 1
	_pki_cert "$d" client ec int 'cn = "client.test.example"' 'email = "client@test.example"' \
		'serial = 12' tls_www_client signing_key "${valid[@]}" || return 1
	_pki_cert "$d" expired ec int 'cn = "mx.test.example"' 'serial = 13' "${server[@]}" \
		'activation_date = "2020-01-01 00:00:00"' 'expiration_date = "2021-01-01 00:00:00"' || return 1
	_pki_cert "$d" future ec int 'cn = "mx.test.example"' 'serial = 14' "${server[@]}" \
		'activation_date = "2098-01-01 00:00:00"' 'expiration_date = "2099-01-01 00:00:00"' || return 1
	_pki_cert "$d" wrongname ec int 'cn = "wrong.test.example"' 'dns_name = "wrong.test.example"' \
		'serial = 15' tls_www_server signing_key "${valid[@]}" || return 1
	_pki_cert "$d" selfsigned ec self 'cn = "mx.test.example"' 'serial = 16' "${server[@]}" \
		"${valid[@]}" || return 1
	cat "$d/server.pem" "$d/int.pem" >"$d/server-chain.pem"
	cat "$d/ca.pem" "$d/int.pem" >"$d/bundle.pem"
	rm -f "$d"/*.tmpl
}
