#!/bin/bash
# t0416: smtptls serve refuses AUTH PLAIN with an authorization identity other than the
# user (535, as a wrong password, logged as a failed authentication); an empty one or the
# user's own is taken, as Cyrus and Dovecot do for users without proxy rights: the same
# replies as a real Postfix smtpd with Cyrus SASL (sasldb)
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
need jq python3 openssl saslpasswd2
pf_require
chmod 755 "$T"
cd "$T" || exit 1

printf 'alice:%s\nbob:%s\n' "$(openssl passwd -6 s3cret)" "$(openssl passwd -6 other)" >"$T/users"
serve --listen 127.0.0.1:0 --maildir "$T/md" --log "$T/log.json" --domains mx.smtptls.test \
	--auth-file "$T/users" --auth-plaintext ||
	{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
smtp=$(port smtp)

# plain AUTHZID USER PASS [PORT]: AUTH PLAIN in a session of its own; prints the reply
# to it, then the reply to a RCPT for another domain (relayed only when authenticated)
plain() {
	python3 "$TOP_SRCDIR/tests/lib/smtp-dialog.py" "${4:-$smtp}" "EHLO client.smtptls.test" \
		"AUTH PLAIN $(printf '%s\0%s\0%s' "$1" "$2" "$3" | base64 -w0)" \
		"MAIL FROM:<alice@client.smtptls.test>" "RCPT TO:<x@elsewhere.smtptls.test>" |
		sed -n '2p;4p' | sed 's/^.* -> //' | tr '\n' '|'
}

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

# the same AUTH PLAIN responses to Postfix with Cyrus SASL: its users in a sasldb, its
# smtpd.conf where Debian's Postfix reads it ($config_directory/sasl) and where
# cyrus_sasl_config_path says
pf=$T/pf
at_exit "pf_stop $pf"
pf_init "$pf" || exit 1
mkdir -p "$pf/etc/sasl" || exit 1
for u in alice:s3cret bob:other; do
	printf '%s' "${u#*:}" | saslpasswd2 -p -c -f "$pf/etc/sasl/sasldb2" -u "$PF_HOSTNAME" "${u%%:*}" ||
		{ diag "saslpasswd2 failed"; exit 1; }
done
chown "$(postconf -dh mail_owner)" "$pf/etc/sasl/sasldb2"
printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: %s\nmech_list: PLAIN LOGIN\n' \
	"$pf/etc/sasl/sasldb2" >"$pf/etc/sasl/smtpd.conf"
pf_conf "$pf" smtpd_sasl_auth_enable=yes smtpd_tls_auth_only=no "smtpd_sasl_local_domain=$PF_HOSTNAME" \
	"cyrus_sasl_config_path=$pf/etc/sasl" \
	smtpd_relay_restrictions=permit_sasl_authenticated,reject_unauth_destination || exit 1
pfp=$(pf_free_port)
pf_smtpd_service "$pf" "$pfp"
pf_start "$pf" || exit 1
for row in ":alice:s3cret" "alice:alice:s3cret" "bob:alice:s3cret" "Alice:alice:s3cret" \
	"alice:alice:wrong" "bob:bob:other" "alice:bob:other"; do
	IFS=: read -r z u w <<<"$row"
	want=$(plain "$z" "$u" "$w" "$pfp" | cut -d'|' -f1)
	got=$(plain "$z" "$u" "$w" | cut -d'|' -f1)
	is "$got" "${want:-no reply from Postfix}" "as Postfix with Cyrus SASL: authzid '$z', user '$u', password '$w'"
done

done_testing
