#!/bin/bash
# t0401: smtptls serve answers as Postfix's smtpd does: the same conversations, command by
# command, against a real Postfix and against serve, at security levels may and encrypt
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
need certtool python3
pf_require
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
D=$T/postfix
chmod 755 "$T"
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
export MAIL_CONFIG=$D/etc
may=$(pf_free_port) enc=$(pf_free_port)
host=$(postconf -c "$D/etc" -h myhostname)
# the same relay rules on both sides: the client is in no trusted network, example.smtptls.test is
# a final destination that takes any recipient
pf_conf "$D" "smtpd_tls_chain_files=$P/server.key,$P/server-chain.pem" "default_transport=discard:" \
	"mydestination=example.smtptls.test" "local_recipient_maps=" "local_transport=discard:" "mynetworks=192.0.2.0/24" \
	"smtpd_relay_restrictions=permit_mynetworks,permit_sasl_authenticated,reject_unauth_destination"
pf_smtpd_service "$D" "$may" -o smtpd_tls_security_level=may
pf_smtpd_service "$D" "$enc" -o smtpd_tls_security_level=encrypt
pf_start "$D" || { diag "Postfix did not start"; exit 1; }

serve() {
	local fifo=$T/ready.$RANDOM
	rm -f "$fifo" && mkfifo "$fifo"
	"$SMTPTLS" serve --hostname "$host" --listen 127.0.0.1:0 --domains example.smtptls.test \
		--maildir "$T/md" "$@" >"$fifo" 2>"$T/serve.err" &
	at_exit "kill $! 2>/dev/null"
	read -r -t 30 ready <"$fifo"
	sport=$(sed 's/.* smtp [^:]*:\([0-9]*\).*/\1/' <<<"$ready")
	[ -n "$sport" ]
}
serve || { diag "serve did not start"; exit 1; }
may_port=$sport
serve --security-level encrypt || { diag "serve did not start"; exit 1; }
enc_port=$sport

# compare NAME POSTFIX_PORT SERVE_PORT COMMAND...: every reply, line by line
compare() {
	local name=$1 pp=$2 sp=$3 a b
	shift 3
	# queue ids differ by nature
	a=$(python3 "$TOP_SRCDIR/tests/lib/smtp-dialog.py" "$pp" "$@" | sed 's/queued as [0-9A-Za-z]*/queued as ID/')
	b=$(python3 "$TOP_SRCDIR/tests/lib/smtp-dialog.py" "$sp" "$@" | sed 's/queued as [0-9A-Za-z]*/queued as ID/')
	is "$b" "$a" "$name: serve's replies are Postfix's"
	[ "$a" = "$b" ] || diag "Postfix:" "$a"
}

compare "sequence and syntax errors" "$may" "$may_port" \
	"FOO" "HELO" "EHLO" "HELO client.smtptls.test" "RCPT TO:<a@example.smtptls.test>" "DATA" "MAIL FROM a@b" \
	"MAIL FROM:a@client.smtptls.test" "MAIL FROM:<c@client.smtptls.test>" "DATA" "RCPT TO:<>" "RCPT TO:<a b>" \
	"RCPT TO:<x@elsewhere.smtptls.test>" "RCPT TO:<y@example.smtptls.test>" "VRFY someone" "STARTTLS x" "AUTH PLAIN" \
	"NOOP" "RSET" "DATA" "QUIT"
# (Postfix 3.7 remembers the SIZE of a MAIL it refused, and refuses the next MAIL for it
# until RSET: a quirk serve does not copy, so an RSET follows here)
compare "MAIL parameters" "$may" "$may_port" \
	"EHLO client.smtptls.test" "MAIL FROM:<a@client.smtptls.test> SIZE=999999999" "MAIL FROM:<a@client.smtptls.test> FOO=BAR" \
	"MAIL FROM:<a b>" "RSET" "MAIL FROM:<a@client.smtptls.test> RET=HDRS ENVID=e1" "RSET" \
	"MAIL FROM:<a@client.smtptls.test> SIZE=100 BODY=8BITMIME" "RCPT TO:<y@example.smtptls.test> NOTIFY=NEVER" \
	"RCPT TO <y@example.smtptls.test>" "RCPT TO:<z@example.smtptls.test> FOO=BAR" "QUIT"
compare "a message" "$may" "$may_port" \
	"EHLO client.smtptls.test" "MAIL FROM:<a@client.smtptls.test>" "RCPT TO:<y@example.smtptls.test>" "DATA x" \
	"DATA" "Subject: t\r\n\r\n..dot\r\nbody\r\n." "QUIT"
hops=""
for i in $(seq 51); do hops+="Received: from hop$i.smtptls.test by hop$i.smtptls.test; Sat, 28 Nov 2026 00:00:00 +0000\r\n"; done
compare "a mail loop (51 Received headers), odd recipient forms" "$may" "$may_port" \
	"EHLO client.smtptls.test" "MAIL FROM:<a@client.smtptls.test>" "RCPT TO:<a@[127.0.0.1]:25>" \
	"RCPT TO:<a@example.smtptls.test.>" "RCPT TO:<y@example.smtptls.test>" "DATA" "${hops}Subject: loop\r\n\r\nbody\r\n." \
	"QUIT"
compare "security level encrypt" "$enc" "$enc_port" \
	"EHLO client.smtptls.test" "MAIL FROM:<a@client.smtptls.test>" "RCPT TO:<a@example.smtptls.test>" "DATA" "RSET" \
	"NOOP" "HELP" "VRFY x" "AUTH PLAIN" "QUIT"

done_testing
