#!/bin/bash
# t0405: smtptls serve relays onward: to a relayhost under a TLS policy table (secure,
# Verified), to MX hosts from a DNS server on loopback (the first one down), with a client
# certificate, with --relay-mx to port 25 in a network namespace; deferred while the next
# hop is down and delivered when it comes up; nothing lost across a restart; bounces,
# expiry and invalid policy entries in Postfix's words
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
. "$TOP_SRCDIR/tests/lib/dns.sh"
need jq swaks python3 certtool dnsmasq dig
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki
cd "$T" || exit 1

# serve NAME ARGS...: start a serve, wait for its ready line; sets $port (its smtp port)
# and pid_NAME
serve() {
	local name=$1 fifo=$T/ready.$1 ready
	shift
	rm -f "$fifo" && mkfifo "$fifo"
	"$SMTPTLS" serve --log "$T/$name.log" "$@" >"$fifo" 2>"$T/$name.err" &
	eval "pid_$name=$!"
	at_exit "kill $! 2>/dev/null"
	read -r -t 30 ready <"$fifo"
	port=$(sed -n 's/.* smtp [^:]*:\([0-9]*\).*/\1/p' <<<"$ready")
	[ -n "$port" ] || { diag "serve $name did not start: $(cat "$T/$name.err")"; return 1; }
}
# stop NAME: SIGTERM, then wait for the process to end
stop() {
	local pid
	eval "pid=\$pid_$1"
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}
send() { # PORT TO SUBJECT
	timeout 60 swaks --server 127.0.0.1 --port "$1" --from sender@a.smtptls.test --to "$2" \
		--header "Subject: $3" --body "body of $3" >"$T/swaks.out" 2>&1
}
relay_of() { # LOG TO: the last relay event for TO
	jq -c "select(.event == \"relay\" and .to == \"$2\")" "$1" | tail -n 1
}
A_OPTS=(--listen 127.0.0.1:0 --domains a.smtptls.test --mynetworks 127.0.0.0/8 --backoff 1:1
	--relay-timeout 10)

# the next hop: a serve with a throwaway CA for "localhost"
serve b --listen 127.0.0.1:0 --self-signed=localhost --ca-out "$T/ca-b.pem" --maildir "$T/b" \
	--domains b.smtptls.test,c.smtptls.test || exit 1
b=$port

# 1. a relayhost under a policy table at secure: sent, Verified, the Maildirs split
printf '# the relayhost\n[127.0.0.1]:%s secure match=localhost\n' "$b" >"$T/policy"
serve a "${A_OPTS[@]}" --maildir "$T/a" --queue-dir "$T/qa" --relayhost "[127.0.0.1]:$b" \
	--tls-policy "texthash:$T/policy" --tls-level encrypt --relay-ca-file "$T/ca-b.pem" || exit 1
a=$port
send "$a" "x@b.smtptls.test,y@a.smtptls.test" secure-relay
[ $? -eq 0 ]
ok $? "a message for a relayed and a local recipient is accepted"
line=$(wait_log "$T/a.log" '"event":"relay".*"to":"x@b.smtptls.test"')
is "$(jq -r .status <<<"$line")" sent "relayed: status sent"
like "$(jq -r .reason <<<"$line")" "^250 2\\.0\\.0 Ok: queued as [0-9A-F]+$" "the reason is the next hop's reply, as Postfix logs it"
is "$(jq -r .relay <<<"$line")" "127.0.0.1[127.0.0.1]:$b" "relay= as Postfix writes it"
is "$(jq -r '.tls.level + " " + .tls.status + " " + .tls.version' <<<"$line")" "secure Verified TLSv1.3" \
	"the policy entry's level applied, and the server Verified"
is "$(jq -r '.policy.table + " " + .policy.key' <<<"$line")" "texthash:$T/policy [127.0.0.1]:$b" \
	"the log names the table and key that applied"
f=$(grep -l "Subject: secure-relay" "$T"/b/new/* 2>/dev/null)
[ -n "$f" ]
ok $? "the message reached the next hop's Maildir"
qid=$(jq -r 'select(.event == "data") | .queue_id' "$T/a.log" | head -n 1)
like "$(cat "$f")" "by [^ ]+ \\(smtptls\\) with ESMTP id $qid" "with the relay's own Received header"
grep -q "Subject: secure-relay" "$T"/a/new/*
ok $? "the local recipient's copy is in the relay's own Maildir"
is "$(grep -l "Subject: secure-relay" "$T"/b/new/* | wc -l)" 1 "and the next hop got exactly one copy"
is "$(jq -r 'select(.event == "data") | .relayed' "$T/a.log" | head -n 1)" 1 "the data event counts one relayed recipient"
# the queue file goes when every recipient is done (its results are written off the loop)
for i in $(seq 100); do [ -z "$(ls "$T/qa" | grep -v '^tmp$')" ] && break; sleep 0.05; done # bounded poll
is "$(ls "$T/qa" | grep -v '^tmp$' | wc -l)" 0 "the queue is empty once the message is sent"
stop a

# 2. a policy entry whose name does not match: deferred, Postfix's reason; then the next hop
# certificate's name right: the retry delivers it. The table is proxy:texthash:, as
# smtp_tls_policy_maps may name it (the loader policy lookup uses)
printf '[127.0.0.1]:%s secure match=other.smtptls.test\n' "$b" >"$T/policy2"
serve a2 "${A_OPTS[@]}" --maildir "$T/a2" --queue-dir "$T/qa2" --relayhost "[127.0.0.1]:$b" \
	--tls-policy "proxy:texthash:$T/policy2" --relay-ca-file "$T/ca-b.pem"
ok $? "serve takes a proxy:texthash: table, as policy lookup does" || exit 1
send "$port" x2@b.smtptls.test name-mismatch
line=$(wait_log "$T/a2.log" '"event":"relay".*"to":"x2@b.smtptls.test"')
is "$(jq -r '.status + " " + .dsn + " " + .reason' <<<"$line")" \
	"deferred 4.7.5 Server certificate not verified" "secure, wrong name: deferred with Postfix's reason"
is "$(jq -r .tls.status <<<"$line")" Trusted "the chain was trusted, only the name failed"
[ "$(jq -r .next_try <<<"$line")" -gt "$(date +%s -d '-1 min')" ]
ok $? "the next attempt is named"
is "$(grep -l "Subject: name-mismatch" "$T"/b/new/* 2>/dev/null | wc -l)" 0 "nothing went to the server that failed the level"
stop a2

# 3. the next hop down: deferred (connection refused), delivered once it is up, retried
# with backoff
down=$(pf_free_port)
serve a3 "${A_OPTS[@]}" --maildir "$T/a3" --queue-dir "$T/qa3" --relayhost "[127.0.0.1]:$down" || exit 1
a3=$port
send "$a3" x3@b.smtptls.test retry-later
line=$(wait_log "$T/a3.log" '"event":"relay".*"to":"x3@b.smtptls.test"')
is "$(jq -r '.status + " " + .dsn' <<<"$line")" "deferred 4.4.1" "the next hop down: deferred"
is "$(jq -r .reason <<<"$line")" "connect to 127.0.0.1[127.0.0.1]:$down: Connection refused" \
	"with Postfix's words"
# 4. nothing lost across a restart: the queue file stays, the next run sends it
stop a3
qf=$(ls "$T/qa3" | grep -v '^tmp$')
[ -n "$qf" ]
ok $? "after SIGTERM the deferred message is still in the queue directory"
like "$(cat "$T/qa3/$qf")" "rcpt W x3@b\\.smtptls\\.test" "its recipient still waiting"
serve b2 --listen "127.0.0.1:$down" --self-signed=localhost --maildir "$T/b2" --domains b.smtptls.test || exit 1
serve a3 "${A_OPTS[@]}" --maildir "$T/a3" --queue-dir "$T/qa3" --relayhost "[127.0.0.1]:$down" || exit 1
line=$(wait_log "$T/a3.log" '"event":"relay".*"to":"x3@b.smtptls.test".*"status":"sent"')
is "$(jq -r .status <<<"$line")" sent "restarted, the queue is picked up and the message sent"
is "$(grep -l "Subject: retry-later" "$T"/b2/new/* 2>/dev/null | wc -l)" 1 "exactly one copy arrived"
is "$(jq -r .tls.status <<<"$line")" Untrusted "at may, without a CA: TLS, Untrusted, as Postfix logs it"
stop a3

# 5. 5xx: bounced at once, 4xx: deferred, each in Postfix's words; the queue file of a
# bounced message goes
serve f5 --listen 127.0.0.1:0 --self-signed --maildir "$T/f5" --domains b.smtptls.test --fault rcpt:550 || exit 1
f5=$port
serve f4 --listen 127.0.0.1:0 --self-signed --maildir "$T/f4" --domains c.smtptls.test --fault mail:451 || exit 1
f4=$port
serve a5 "${A_OPTS[@]}" --maildir "$T/a5" --queue-dir "$T/qa5" --relayhost "[127.0.0.1]:$f5" || exit 1
send "$port" x5@b.smtptls.test bounce-me
line=$(wait_log "$T/a5.log" '"event":"relay".*"to":"x5@b.smtptls.test"')
like "$(jq -r '.status + " " + .dsn' <<<"$line")" "^bounced 5\\.[0-9]+\\.[0-9]+$" "a 550 to RCPT: bounced"
like "$(jq -r .reason <<<"$line")" "^host 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\] said: 550 .* \\(in reply to RCPT TO command\\)$" \
	"host ... said: ... (in reply to RCPT TO command)"
for i in $(seq 100); do [ -z "$(ls "$T/qa5" | grep -v '^tmp$')" ] && break; sleep 0.05; done # bounded poll
is "$(ls "$T/qa5" | grep -v '^tmp$' | wc -l)" 0 "a bounced message leaves the queue"
stop a5
serve a4 "${A_OPTS[@]}" --maildir "$T/a4" --queue-dir "$T/qa4" --relayhost "[127.0.0.1]:$f4" || exit 1
send "$port" x4@c.smtptls.test soft-fail
line=$(wait_log "$T/a4.log" '"event":"relay".*"to":"x4@c.smtptls.test"')
is "$(jq -r .status <<<"$line")" deferred "a 451 to MAIL: deferred"
like "$(jq -r .reason <<<"$line")" "\\(in reply to MAIL FROM command\\)$" "in reply to MAIL FROM"
line=$(wait_log "$T/a4.log" '"event":"relay".*"to":"x4@c.smtptls.test".*"attempt":2')
is "$(jq -r .status <<<"$line")" deferred "tried again after the backoff"
stop a4

# 6. expiry: a message deferred past --queue-lifetime is bounced as expired
serve a6 "${A_OPTS[@]}" --maildir "$T/a6" --queue-dir "$T/qa6" --relayhost "[127.0.0.1]:$(pf_free_port)" \
	--queue-lifetime 0 || exit 1
send "$port" x6@b.smtptls.test expire-me
line=$(wait_log "$T/a6.log" '"event":"relay".*"to":"x6@b.smtptls.test"')
is "$(jq -r .status <<<"$line")" expired "past the queue lifetime: expired"
like "$(jq -r .reason <<<"$line")" "Connection refused" "with the last reason"
stop a6

# 7. an entry Postfix calls invalid: named at start, the mail deferred with 4.7.5
printf '[127.0.0.1]:%s encrypt match=localhost\n' "$b" >"$T/policy7"
serve a7 "${A_OPTS[@]}" --maildir "$T/a7" --queue-dir "$T/qa7" --relayhost "[127.0.0.1]:$b" \
	--tls-policy "$T/policy7" || exit 1
like "$(cat "$T/a7.err")" "policy7:1: attribute 'match' is not valid at level 'encrypt'.*deferred" \
	"the invalid entry is named with its file and line at start"
send "$port" x7@b.smtptls.test invalid-policy
line=$(wait_log "$T/a7.log" '"event":"relay".*"to":"x7@b.smtptls.test"')
is "$(jq -r '.status + " " + .dsn + " " + .reason' <<<"$line")" \
	"deferred 4.7.5 client TLS configuration problem" "its mail: deferred, 4.7.5, Postfix's words"
stop a7

# 8. onward with a client certificate to a server that requires one
serve cc --listen 127.0.0.1:0 --self-signed=localhost --maildir "$T/cc" --domains b.smtptls.test \
	--req-ccert --ccert-ca-file "$P/bundle.pem" || exit 1
cc=$port
serve a8 "${A_OPTS[@]}" --maildir "$T/a8" --queue-dir "$T/qa8" --relayhost "[127.0.0.1]:$cc" \
	--client-cert "$P/client.pem" --client-key "$P/client.key" || exit 1
send "$port" x8@b.smtptls.test with-ccert
line=$(wait_log "$T/a8.log" '"event":"relay".*"to":"x8@b.smtptls.test"')
is "$(jq -r .status <<<"$line")" sent "with --client-cert: the server that requires one takes it"
is "$(jq -r 'select(.event == "starttls") | .client_cert.verified' "$T/cc.log" | head -n 1)" true \
	"and it verified the certificate"
stop a8
serve a9 "${A_OPTS[@]}" --maildir "$T/a9" --queue-dir "$T/qa9" --relayhost "[127.0.0.1]:$cc" || exit 1
send "$port" x9@b.smtptls.test without-ccert
line=$(wait_log "$T/a9.log" '"event":"relay".*"to":"x9@b.smtptls.test"')
is "$(jq -r .status <<<"$line")" deferred "without one: deferred"
like "$(jq -r .reason <<<"$line")" "421 4\\.7\\.1 .*No client certificate presented" "the server's 421 is the reason"
stop a9

# 9. MX hosts from a DNS server on loopback: the preferred one is down, the next takes it
dns_init "$T/dns"
dns_mx mx.smtptls.test 5 dead.mx.smtptls.test
dns_mx mx.smtptls.test 10 up.mx.smtptls.test
dns_a dead.mx.smtptls.test 127.0.0.2
dns_a up.mx.smtptls.test 127.0.0.1
dport=$(pf_free_port)
dns_start "$dport" || exit 1
serve a10 "${A_OPTS[@]}" --maildir "$T/a10" --queue-dir "$T/qa10" --relayhost "mx.smtptls.test:$b" \
	--dns-server "127.0.0.1:$dport" || exit 1
send "$port" x10@b.smtptls.test via-mx
line=$(wait_log "$T/a10.log" '"event":"relay".*"to":"x10@b.smtptls.test"')
is "$(jq -r '.status + " " + .relay' <<<"$line")" "sent up.mx.smtptls.test[127.0.0.1]:$b" \
	"MX hosts in order: the first down, the second took it"
grep -q "Subject: via-mx" "$T"/b/new/*
ok $? "and it arrived"
stop a10
# smtptls policy test of the same next hop: every MX address, in order, each with its verdict
run "$SMTPTLS" --json policy test --no-postfix-config --dns-server "127.0.0.1:$dport" \
	-o smtp_tls_security_level=encrypt --timeout 10 "mx.smtptls.test:$b"
is "$(jq -r '.verdict + " " + .relay' <<<"$out")" "delivered up.mx.smtptls.test[127.0.0.1]:$b" \
	"policy test: delivered, by the second MX host"
is "$(jq -r '.hosts[] | .relay + " " + .verdict' <<<"$out" | tr '\n' ,)" \
	"dead.mx.smtptls.test[127.0.0.2]:$b deferred,up.mx.smtptls.test[127.0.0.1]:$b delivered," \
	"each MX address tried in order, with its verdict"
is "$(jq -r '.hosts[1].tls_status + " " + .policy.level' <<<"$out")" "Untrusted encrypt" \
	"TLS status as Postfix logs it, at the level -o gave"
run "$SMTPTLS" policy test --no-postfix-config --dns-server "127.0.0.1:$dport" --timeout 10 "nowhere.smtptls.test"
is "$rc" 1 "policy test of a domain that does not exist: exit 1"
like "$out" "nowhere\\.smtptls\\.test: bounced \\(Host or domain name not found\\. Name service error for name=nowhere\\.smtptls\\.test type=A: Host not found\\)" \
	"bounced, in Postfix's words"
# a relayhost without MX or address: deferred 4.3.5, as Postfix's "relayhost configuration
# problem" (t0305 proves it against Postfix)
serve a11 "${A_OPTS[@]}" --maildir "$T/a11" --queue-dir "$T/qa11" --relayhost "nowhere.smtptls.test:25" \
	--dns-server "127.0.0.1:$dport" || exit 1
send "$port" x11@b.smtptls.test nxdomain
line=$(wait_log "$T/a11.log" '"event":"relay".*"to":"x11@b.smtptls.test"')
is "$(jq -r '.status + " " + .dsn + " " + .reason' <<<"$line")" \
	"deferred 4.3.5 Host or domain name not found. Name service error for name=nowhere.smtptls.test type=A: Host not found" \
	"a relayhost that does not exist: deferred 4.3.5, Postfix's words"
stop a11

# 10. --relay-mx: the MX hosts of each recipient's domain, on port 25, in a network
# namespace of the test's own (port 25 free, nothing leaves it), with its own DNS server
if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null && command -v ip >/dev/null; then
	cat >"$T/ns.sh" <<'NS'
set -u
T=$1 SMTPTLS=$2
trap 'kill $(jobs -p) $(cat "$T"/ns-*.pid 2>/dev/null) 2>/dev/null; wait' EXIT
ip link set lo up
printf '%s\n' "mx-host=mxdomain.smtptls.test,mx.mxdomain.smtptls.test,10" "host-record=mx.mxdomain.smtptls.test,127.0.0.1" \
	"local=/test/" >"$T/ns-zone.conf"
PATH=$PATH:/usr/sbin dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=127.0.0.1 \
	--bind-interfaces --port=53 --conf-file="$T/ns-zone.conf" --user="$(id -un)" 2>"$T/ns-dns.err" &
ready() { # NAME ARGS: a serve, its ready line awaited
	local n=$1 r
	shift
	mkfifo "$T/ns-$n.fifo"
	"$SMTPTLS" serve --log "$T/ns-$n.log" "$@" >"$T/ns-$n.fifo" 2>"$T/ns-$n.err" &
	echo $! >"$T/ns-$n.pid" # r=$(ready ...) runs in a subshell: not a job of this script
	read -r -t 30 r <"$T/ns-$n.fifo"
	printf '%s' "$r"
}
ready mx --listen 127.0.0.1:25 --self-signed=mx.mxdomain.smtptls.test --maildir "$T/ns-mx" \
	--domains mxdomain.smtptls.test >/dev/null
r=$(ready relay --listen 127.0.0.1:0 --maildir "$T/ns-relay" --queue-dir "$T/ns-q" \
	--mynetworks 127.0.0.0/8 --relay-mx --dns-server 127.0.0.1:53 --backoff 1)
port=${r##*:}
for i in $(seq 100); do dig +time=1 +tries=1 @127.0.0.1 mxdomain.smtptls.test MX >/dev/null 2>&1 && break; done
swaks --server 127.0.0.1 --port "$port" --from a@a.smtptls.test --to x@mxdomain.smtptls.test \
	--header "Subject: via-relay-mx" >"$T/ns-swaks" 2>&1
exec {fd}< <(exec timeout 30 tail -n +1 -F -- "$T/ns-relay.log" 2>/dev/null)
grep -m 1 '"event":"relay"' <&"$fd" >"$T/ns.out"
NS
	unshare -n bash "$T/ns.sh" "$T" "$SMTPTLS"
	line=$(cat "$T/ns.out" 2>/dev/null)
	is "$(jq -r '.status + " " + .relay + " " + .nexthop' <<<"$line")" \
		"sent mx.mxdomain.smtptls.test[127.0.0.1]:25 mxdomain.smtptls.test" \
		"--relay-mx: the recipient domain's MX host, port 25 (in a network namespace)"
	grep -q "Subject: via-relay-mx" "$T"/ns-mx/new/* 2>/dev/null
	ok $? "and the MX host stored it"
else
	skip 2 "--relay-mx needs root and network namespaces (unshare -n)"
fi

# 11. from the review: a next hop that is this server, and one that answers DATA with 250
own=$(pf_free_port)
serve a12 --listen "127.0.0.1:$own" --domains a.smtptls.test --mynetworks 127.0.0.0/8 --maildir "$T/a12" \
	--queue-dir "$T/qa12" --relayhost "[127.0.0.1]:$own" || exit 1
send "$own" x12@b.smtptls.test loop-to-self
line=$(wait_log "$T/a12.log" '"event":"relay".*"to":"x12@b.smtptls.test"')
is "$(jq -r '.status + " " + .dsn + " " + .reason' <<<"$line")" \
	"deferred 4.3.5 mail for [127.0.0.1]:$own loops back to myself" \
	"a relayhost that is this server: deferred 4.3.5 (Postfix's relayhost configuration problem), no loop"
is "$(jq -c 'select(.event == "data")' "$T/a12.log" | wc -l)" 1 "one message in, not one more"
stop a12
python3 "$TOP_SRCDIR/tests/lib/hostile-smtp.py" data250 "$P/server.pem" "$P/server.key" >"$T/h.out" &
at_exit "kill $! 2>/dev/null"
for i in $(seq 100); do grep -q ready "$T/h.out" 2>/dev/null && break; sleep 0.05; done # bounded poll
hport=$(awk '/ready/ {print $2}' "$T/h.out")
serve a13 "${A_OPTS[@]}" --maildir "$T/a13" --queue-dir "$T/qa13" --relayhost "[127.0.0.1]:$hport" || exit 1
send "$port" x13@b.smtptls.test data-250
line=$(wait_log "$T/a13.log" '"event":"relay".*"to":"x13@b.smtptls.test"')
is "$(jq -r '.status' <<<"$line")" deferred "a 250 to DATA (no message went): deferred, never sent"
like "$(jq -r '.reason' <<<"$line")" "said: 250 2\\.0\\.0 Ok: no message \\(in reply to DATA command\\)" \
	"in reply to DATA"
stop a13

# 12. hash: without its .db (postmap not run): Postfix's lookups fail and it defers all mail
# with 4.7.5; serve says so at start and defers the same way (the loader policy uses)
printf '[127.0.0.1]:%s encrypt\n' "$b" >"$T/policy12"
serve a14 "${A_OPTS[@]}" --maildir "$T/a14" --queue-dir "$T/qa14" --relayhost "[127.0.0.1]:$b" \
	--tls-policy "proxy:hash:$T/policy12" || exit 1
like "$(cat "$T/a14.err")" "policy12\\.db' does not exist \\(postmap not run\\).*4\\.7\\.5" \
	"hash: without its .db: named at start"
send "$port" x12@b.smtptls.test no-db
line=$(wait_log "$T/a14.log" '"event":"relay".*"to":"x12@b.smtptls.test"')
is "$(jq -r '.status + " " + .dsn + " " + .reason' <<<"$line")" \
	"deferred 4.7.5 client TLS configuration problem" "and its mail is deferred as Postfix defers it"
stop a14
if command -v postmap >/dev/null; then
	mkdir -p "$T/pm" && : >"$T/pm/main.cf"
	postmap -c "$T/pm" "hash:$T/policy12"
	serve a14b "${A_OPTS[@]}" --maildir "$T/a14b" --queue-dir "$T/qa14b" \
		--relayhost "[127.0.0.1]:$b" --tls-policy "hash:$T/policy12" || exit 1
	send "$port" x12b@b.smtptls.test with-db
	line=$(wait_log "$T/a14b.log" '"event":"relay".*"to":"x12b@b.smtptls.test"')
	is "$(jq -r '.status + " " + .policy.key' <<<"$line")" "sent [127.0.0.1]:$b" \
		"with its .db: the entry applies and the mail goes"
	stop a14b
else
	skip 1 "postmap not installed"
fi

# options that belong together
run "$SMTPTLS" serve --tls-policy "$T/policy"
is "$rc" 2 "--tls-policy without a relay: usage error"
like "$err" "are for onward relay" "saying why"
run "$SMTPTLS" serve --relayhost "[127.0.0.1]:1" --relay-mx
is "$rc" 2 "--relayhost and --relay-mx together: usage error"
run "$SMTPTLS" serve --relayhost "[127.0.0.1]:1" --tls-policy "regexp:$T/policy" --listen 127.0.0.1:0 \
	--maildir "$T/x" --queue-dir "$T/qx"
is "$rc" 3 "a table type that cannot be read: refused at start"
like "$err" "table type 'regexp' is not supported" "naming it"
run "$SMTPTLS" serve --relayhost "[127.0.0.1]:1" --tls-level dane --listen 127.0.0.1:0
is "$rc" 2 "--tls-level dane: refused (no DNSSEC TLSA in serve)"

done_testing
