#!/bin/bash
# t0500: smtptls policy lookup finds the entry Postfix's smtp client applies: a real Postfix
# delivers to recipient domains under two hash: tables (exact keys, .parent keys, no bare
# parent, no "*" wildcard, each key in every table before the next key, case folded), and
# the level each lookup names must explain what Postfix did (sent, or deferred because a
# secure entry applied). Runs in a mount namespace of its own, where /etc/hosts names the
# test domains (nothing else sees it). Then lookup's other ways: --batch, JSON, -o, errors.
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need jq unshare mount
[ "$(id -u)" = 0 ] || plan_skip_all "needs root (a mount namespace and a private Postfix)"
if [ -z "${T0500_NS:-}" ]; then
	# again, inside a mount namespace of its own (private: its mounts reach nobody)
	exec unshare -m --propagation private env T0500_NS=1 bash "$0" "$@"
fi
pf_require postmap
chmod 755 "$T"
cd "$T" || exit 1

# the next hop for every test domain: one serve, with a certificate no entry's match names
port=$(pf_free_port)
# (127.0.0.2: Postfix listens on 127.0.0.1 and would take that for itself: a mail loop)
serve --listen "127.0.0.2:$port" --self-signed=localhost --maildir "$T/md" --log "$T/serve.json" \
	--relay-restrictions permit_mynetworks --mynetworks 127.0.0.0/8 ||
	{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }

domains=(sub.smtptls.test a.sub.smtptls.test b.a.sub.smtptls.test a.sub2.smtptls.test other.smtptls.test a.sub3.smtptls.test upper.smtptls.test)
{
	echo "127.0.0.1 localhost"
	for d in "${domains[@]}"; do echo "127.0.0.2 $d"; done
} >"$T/hosts"
mount --bind "$T/hosts" /etc/hosts || { diag "cannot bind-mount /etc/hosts"; exit 1; }

# secure with a match nobody has: the entry that applies is seen in Postfix's deferral
S="secure match=nomatch.smtptls.test"
D=$T/postfix
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
export MAIL_CONFIG=$D/etc
cat >"$D/etc/tls_policy1" <<EOF
# the first table
.sub.smtptls.test      $S
sub.smtptls.test       encrypt
sub2.smtptls.test      $S
*              $S
.sub3.smtptls.test     encrypt
EOF
cat >"$D/etc/tls_policy2" <<EOF
# the second table
a.sub3.smtptls.test    $S
UPPER.smtptls.test     $S
EOF
postmap -c "$D/etc" "hash:$D/etc/tls_policy1" "hash:$D/etc/tls_policy2" ||
	{ diag "postmap failed"; exit 1; }
# smtp's port is the test server's (known_tcp_ports, Postfix 3.6, before /etc/services)
pf_conf "$D" "default_transport=smtp" "relay_domains=" "known_tcp_ports=smtp=$port" \
	"smtp_tls_policy_maps=hash:$D/etc/tls_policy1, hash:$D/etc/tls_policy2" \
	"smtp_tls_security_level=may" "smtp_tls_loglevel=1" || { diag "pf_conf failed"; exit 1; }
pf_start "$D" || { diag "Postfix did not start"; exit 1; }

for d in "${domains[@]}"; do
	printf 'From: a@smtptls-test.example\nSubject: to %s\n\nbody\n' "$d" |
		sendmail -C "$D/etc" -f a@smtptls-test.example "x@$d"
done
for d in "${domains[@]}"; do
	line=$(pf_wait_log "$D" "to=<x@${d//./\\.}>.*status=(sent|deferred|bounced)" 60)
	pf=$(sed -E 's/.*status=([a-z]+) \((.*)\)$/\1 \2/' <<<"$line")
	run "$SMTPTLS" --json policy lookup --postfix-config "$D/etc" "$d"
	lv=$(jq -r '.level' <<<"$out")
	key=$(jq -r '.key // "(none)"' <<<"$out")
	case $lv in
	secure) want="deferred Server certificate not verified" ;;
	*) want="sent 250 2.0.0 Ok: queued as" ;;
	esac
	like "$pf" "^$want" "$d: Postfix ${pf%% *}, as lookup's $lv (key $key) explains"
done
# and what each lookup said, against the rules it shows
run "$SMTPTLS" --json policy lookup --postfix-config "$D/etc" sub.smtptls.test a.sub.smtptls.test b.a.sub.smtptls.test \
	a.sub2.smtptls.test other.smtptls.test a.sub3.smtptls.test upper.smtptls.test
is "$(jq -r '(.key // "-") + " " + (.level // "invalid")' <<<"$out" | tr '\n' ,)" \
	"sub.smtptls.test encrypt,.sub.smtptls.test secure,.sub.smtptls.test secure,- may,- may,a.sub3.smtptls.test secure,UPPER.smtptls.test secure," \
	"exact key; .parent; the nearest .parent; no bare parent; no * wildcard; key before table; case folded"
is "$(jq -r '.table' <<<"$out" | sed -n 6p)" "hash:$D/etc/tls_policy2" "the key found in the second table is named with it"
is "$(jq -r '.line' <<<"$out" | head -n 2 | tr '\n' ,)" "3,2," "and the line of the entry"

# --batch: a line in, a line out; -o overrides main.cf; the same through postconf
printf 'a.sub.smtptls.test\nnowhere.example\n\n[mx.sub.smtptls.test]:587\n' >"$T/hops"
run "$SMTPTLS" policy lookup --batch --postfix-config "$D/etc" -o smtp_tls_security_level=encrypt <"$T/hops"
is "$out" "$(printf 'a.sub.smtptls.test\tsecure\t.sub.smtptls.test\thash:%s\nnowhere.example\tencrypt\t-\t-\n[mx.sub.smtptls.test]:587\tencrypt\t-\t-' "$D/etc/tls_policy1")" \
	"--batch: next hop, level, key, table; -o smtp_tls_security_level=encrypt for the rest; a [host]:port gets no parent lookup"
run "$SMTPTLS" policy lookup --postfix-config "$D/etc" sub.smtptls.test
like "$out" "why +exact entry sub\\.smtptls\\.test in hash:$D/etc/tls_policy1, line 3" "text: says why"
run "$SMTPTLS" policy lookup --postfix-config "$D/etc" '[mx.example]:587'
like "$out" "no entry for \\[mx\\.example\\]:587 in the tables: smtp_tls_security_level \\(may\\) applies" \
	"no entry: the default level, named"

# dane is not predicted: said, not guessed
run "$SMTPTLS" --json policy test --no-postfix-config --table 'inline:{ [127.0.0.1]:1=dane-only }' '[127.0.0.1]:1'
is "$rc/$(jq -r .verdict <<<"$out")" "1/unknown" "policy test at dane-only: verdict unknown, exit 1"
like "$(jq -r .reason <<<"$out")" "no DNSSEC TLSA validation" "saying why"

# errors: a bad main.cf, a missing table, no operand
run "$SMTPTLS" policy lookup --postfix-config "$T/nowhere" x.smtptls.test
is "$rc" 3 "a config directory without main.cf: exit 3"
like "$err" "cannot read '$T/nowhere/main.cf'" "naming it"
run "$SMTPTLS" policy lookup --no-postfix-config --table "hash:$T/missing" x.smtptls.test
is "$rc" 3 "a table that cannot be read: exit 3"
like "$err" "$T/missing" "naming it"
run "$SMTPTLS" policy lookup --no-postfix-config
is "$rc" 2 "lookup without a next hop: usage"
run "$SMTPTLS" policy --no-postfix-config frobnicate
is "$rc" 2 "an unknown action: usage"
like "$err" "'frobnicate' is not check, lookup or test" "named"

done_testing
