#!/bin/bash
# t0305: next hops whose names are not found, judged as Postfix's smtp client judges them
# with DNS lookups (smtp_dns_support_level = enabled, smtp_host_lookup = dns): a domain that
# does not exist, a [host] that does not exist, a domain whose MX host does not exist.
# Postfix, policy test and serve's relay ask the same DNS server (dnsmasq on 127.0.0.1:53)
# in a network and mount namespace of the test's own, where /etc/resolv.conf names it.
# probe judges no session for them (exit 4) and gives Postfix's words too. And, on the namespace's own port 465, probe's
# hint for a STARTTLS server there.
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need jq swaks dnsmasq dig unshare mount ip
[ "$(id -u)" = 0 ] || plan_skip_all "needs root (namespaces and a private Postfix)"
if [ -z "${T0305_NS:-}" ]; then
	# again, inside a network and mount namespace of its own: port 53 on its loopback is
	# ours, and its /etc/resolv.conf is seen by nobody else
	exec unshare -n -m --propagation private env T0305_NS=1 bash "$0" "$@"
fi
pf_require
ip link set lo up
chmod 755 "$T"
cd "$T" || exit 1

# d3: its first MX host refuses, its second does not exist; nodata: a name with a TXT
# record only (NODATA for A and AAAA); pinned: no such domain in DNS, 127.0.0.2 in /etc/hosts
# (127.0.0.2: not Postfix's own address, so no "loops back to myself")
printf '%s\n' "local=/test/" "mx-host=nohost.smtptls.test,gone.nohost.smtptls.test,10" \
	"mx-host=d3.smtptls.test,mx1.d3.smtptls.test,10" "mx-host=d3.smtptls.test,nx.d3.smtptls.test,20" \
	"host-record=mx1.d3.smtptls.test,127.0.0.2" "txt-record=nodata.smtptls.test,x" >"$T/zone.conf"
PATH=$PATH:/usr/sbin dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll \
	--listen-address=127.0.0.1 --bind-interfaces --port=53 --conf-file="$T/zone.conf" \
	--user="$(id -un)" >"$T/dns.out" 2>&1 &
at_exit "kill $! 2>/dev/null"
for i in $(seq 100); do # bounded poll for the port
	dig +time=1 +tries=1 @127.0.0.1 nohost.smtptls.test MX >/dev/null 2>&1 && break
	sleep 0.05
done
echo "nameserver 127.0.0.1" >"$T/resolv.conf"
mount --bind "$T/resolv.conf" /etc/resolv.conf || { diag "cannot bind-mount resolv.conf"; exit 1; }
# native lookups (Postfix's smtp_host_lookup = native, --host-lookup native): /etc/hosts only
printf '%s\n' "127.0.0.1 localhost" "127.0.0.2 pinned.smtptls.test" >"$T/hosts"
echo "hosts: files" >"$T/nsswitch.conf"
mount --bind "$T/hosts" /etc/hosts || { diag "cannot bind-mount /etc/hosts"; exit 1; }
mount --bind "$T/nsswitch.conf" /etc/nsswitch.conf || { diag "cannot bind-mount nsswitch.conf"; exit 1; }

# next hop: as Postfix's transport has it, and as serve's --relayhost and policy test take it
# rh has no transport entry: Postfix's relayhost [nx.smtptls.test] is its next hop, a name
# that does not exist: deferred 4.3.5 ("relayhost configuration problem"), not bounced
declare -A nexthop=([nx]="nx.smtptls.test" [hostnx]="[host.nx.smtptls.test]:25"
	[nohost]="nohost.smtptls.test" [rh]="[nx.smtptls.test]")
cases=(nx hostnx nohost rh)
D=$T/postfix
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
export MAIL_CONFIG=$D/etc
: >"$T/transport"
for c in "${cases[@]}"; do
	[ "$c" = rh ] || printf '%s.smtptls.test smtp:%s\n' "$c" "${nexthop[$c]}" >>"$T/transport"
done
# more next hops, each with its own check below: nsmtp is smtp with smtp_host_lookup = native
declare -A more=([d3]="smtp:d3.smtptls.test" [nodata]="smtp:[nodata.smtptls.test]"
	[pinned]="nsmtp:pinned.smtptls.test" [nxnative]="nsmtp:[nxn.smtptls.test]")
for c in "${!more[@]}"; do printf '%s.smtptls.test %s\n' "$c" "${more[$c]}" >>"$T/transport"; done
postconf -c "$D/etc" -Me "nsmtp/unix=nsmtp unix - - n - - smtp -o smtp_host_lookup=native" ||
	{ diag "cannot add the nsmtp service"; exit 1; }
pf_conf "$D" "default_transport=smtp" "transport_maps=texthash:$T/transport" \
	"relayhost=${nexthop[rh]}" \
	"smtp_dns_support_level=enabled" "smtp_host_lookup=dns" || { diag "pf_conf failed"; exit 1; }
pf_start "$D" || { diag "Postfix did not start"; exit 1; }

for c in "${!more[@]}"; do
	printf 'From: a@smtptls-test.example\nSubject: %s\n\nbody\n' "$c" |
		sendmail -C "$D/etc" -f a@smtptls-test.example "x@$c.smtptls.test"
done
for c in "${cases[@]}"; do
	printf 'From: a@smtptls-test.example\nSubject: %s\n\nbody\n' "$c" |
		sendmail -C "$D/etc" -f a@smtptls-test.example "x@$c.smtptls.test"
	# serve's --relayhost is Postfix's relayhost: a domain next hop is the recipient's
	# domain by its MX (--relay-mx); a [host] one can only be a relayhost (hostnx: 4.3.5)
	case $c in
	nx | nohost) relay_opt=(--relay-mx) ;;
	*) relay_opt=(--relayhost "${nexthop[$c]}") ;;
	esac
	serve_as "r-$c" --listen 127.0.0.1:0 --maildir "$T/r-md-$c" --queue-dir "$T/q-$c" \
		--mynetworks 127.0.0.0/8 "${relay_opt[@]}" --dns-server 127.0.0.1:53 \
		--relay-timeout 5 --backoff 600 || exit 1
	timeout 60 swaks --server 127.0.0.1 --port "$port" --from a@smtptls-test.example \
		--to "x@$c.smtptls.test" --header "Subject: $c" >"$T/swaks-$c" 2>&1 ||
		diag "sending to serve for $c failed: $(tail -n 3 "$T/swaks-$c")"
done
for c in "${cases[@]}"; do
	line=$(pf_wait_log "$D" "to=<x@$c\\.smtptls\\.test>.*status=(sent|deferred|bounced)" 60)
	pf=$(sed -E 's/.*dsn=([0-9.]+), status=([a-z]+) \((.*)\)$/\2 \1 \3/' <<<"$line")
	diag "Postfix, ${nexthop[$c]}: $pf"
	line=$(wait_log "$T/r-$c.log" '"event":"relay"' 60)
	want=$pf
	[ "$c" = hostnx ] && want="deferred 4.3.5 ${pf#* * }"
	is "$(jq -r '.status + " " + .dsn + " " + .reason' <<<"$line")" "$want" \
		"${nexthop[$c]}: serve's relay, as Postfix (a relayhost: 4.3.5, not bounced)"
	if [ "$c" = rh ]; then
		# routed by the instance's main.cf: the next hop is its relayhost
		run "$SMTPTLS" --json policy test --postfix-config "$D/etc" --dns-server 127.0.0.1:53 \
			--timeout 5 "x@$c.smtptls.test"
	else
		run "$SMTPTLS" --json policy test --no-postfix-config --dns-server 127.0.0.1:53 \
			--timeout 5 "${nexthop[$c]}"
	fi
	is "$(jq -r '.verdict + " " + .reason' <<<"$out")" "$(sed -E 's/^([a-z]+) [0-9.]+ /\1 /' <<<"$pf")" \
		"${nexthop[$c]}: policy test, as Postfix"
	[ "$c" = rh ] && continue # probe knows no relayhost
	# probe: no session, not judged, Postfix's status code and words; exit 4
	run "$SMTPTLS" --json probe --dns-server 127.0.0.1:53 --level may --timeout 5 "${nexthop[$c]}"
	is "$rc/$(jq -r '.level.met' <<<"$out")" "4/null" "${nexthop[$c]}: probe exits 4, not judged"
	is "$(jq -r '.level.dsn + " " + .level.reason' <<<"$out")" "$(sed -E 's/^[a-z]+ //' <<<"$pf")" \
		"${nexthop[$c]}: probe gives Postfix's status code and words"
	st probe --dns-server 127.0.0.1:53 --level encrypt --timeout 5 "${nexthop[$c]}"
	like "$out" "no SMTP session \\(mail would be ${pf%% *}\\)" "${nexthop[$c]}: text: no session, ${pf%% *}"
done

# serve's relay to the recipient's domain by its MX hosts (--relay-mx), for d3 and pinned
for c in d3 pinned; do
	extra=()
	[ "$c" = pinned ] && extra=(--host-lookup native)
	serve_as "r-$c" --listen 127.0.0.1:0 --maildir "$T/r-md-$c" --queue-dir "$T/q-$c" \
		--mynetworks 127.0.0.0/8 --relay-mx "${extra[@]}" --dns-server 127.0.0.1:53 \
		--relay-timeout 5 --backoff 600 || exit 1
	timeout 60 swaks --server 127.0.0.1 --port "$port" --from a@smtptls-test.example \
		--to "x@$c.smtptls.test" --header "Subject: $c" >"$T/swaks-$c" 2>&1 ||
		diag "sending to serve for $c failed: $(tail -n 3 "$T/swaks-$c")"
done

# Postfix's verdict for one of the more next hops: "status dsn reason"
pf_more() {
	local line
	line=$(pf_wait_log "$D" "to=<x@$1\\.smtptls\\.test>.*status=(sent|deferred|bounced)" 60)
	sed -E 's/.*dsn=([0-9.]+), status=([a-z]+) \((.*)\)$/\2 \1 \3/' <<<"$line"
}
# policy test's verdict and reason, against Postfix's (status reason)
pt_is() { # NAME POSTFIX DESCRIPTION, with policy test's JSON in $out
	is "$(jq -r '.verdict + " " + .reason' <<<"$out")" "$(sed -E 's/^([a-z]+) [0-9.]+ /\1 /' <<<"$2")" "$3"
}

# one MX host without an address does not hide the others' failure: Postfix ignores it
# as long as some address was found (review item 5)
pf=$(pf_more d3)
diag "Postfix, d3.smtptls.test: $pf"
run "$SMTPTLS" --json policy test --no-postfix-config --dns-server 127.0.0.1:53 --timeout 5 d3.smtptls.test
pt_is d3 "$pf" "d3: MX 10 refuses, MX 20 does not exist: policy test, as Postfix"
line=$(wait_log "$T/r-d3.log" '"event":"relay"' 60)
is "$(jq -r '.status + " " + .dsn + " " + .reason' <<<"$line")" "$pf" "d3: serve's relay, as Postfix"
# probe reports every MX host: the one without an address is skipped, never "bounced"
run "$SMTPTLS" --json probe --dns-server 127.0.0.1:53 --timeout 5 --level may d3.smtptls.test
is "$(jq -r 'select(.host == "nx.d3.smtptls.test") | .level.met, .level.dsn, .level.reason' <<<"$out" | paste -sd' ')" \
	"null null Postfix skips an MX host without an address while another MX host has one" \
	"d3: probe says the MX host without an address is skipped, not bounced"
like "$(jq -r 'select(.level.dsn != null) | .level.reason' <<<"$out")" \
	"^connect to mx1\\.d3\\.smtptls\\.test\\[127\\.0\\.0\\.2\\]:25: Connection refused$" \
	"d3: probe judges the MX host that has an address, as Postfix"

# a name with no A or AAAA record (NODATA) does not exist: bounced (review item 4)
pf=$(pf_more nodata)
diag "Postfix, [nodata.smtptls.test]: $pf"
run "$SMTPTLS" --json policy test --no-postfix-config --dns-server 127.0.0.1:53 --timeout 5 \
	"[nodata.smtptls.test]"
pt_is nodata "$pf" "[nodata.smtptls.test]: NODATA for A and AAAA: policy test, as Postfix"

# a domain whose MX lookup says NXDOMAIN is looked up as a host: with native lookups
# /etc/hosts has it (review item 3), as --resolve pins it
pf=$(pf_more pinned)
diag "Postfix, pinned.smtptls.test (native): $pf"
run "$SMTPTLS" --json policy test --no-postfix-config --dns-server 127.0.0.1:53 --host-lookup native \
	--timeout 5 pinned.smtptls.test
pt_is pinned "$pf" "pinned: MX NXDOMAIN, /etc/hosts: policy test --host-lookup native, as Postfix"
line=$(wait_log "$T/r-pinned.log" '"event":"relay"' 60)
is "$(jq -r '.status + " " + .dsn + " " + .reason' <<<"$line")" "$pf" \
	"pinned: serve's relay --host-lookup native, as Postfix"
run "$SMTPTLS" --json policy test --no-postfix-config --dns-server 127.0.0.1:53 \
	--resolve pinned.smtptls.test:25:127.0.0.2 --timeout 5 pinned.smtptls.test
pt_is pinned "$pf" "pinned: MX NXDOMAIN, --resolve: policy test connects to the pin, as Postfix"
run "$SMTPTLS" --json probe --dns-server 127.0.0.1:53 --resolve pinned.smtptls.test:25:127.0.0.2 \
	--level may --timeout 5 pinned.smtptls.test
is "$rc/$(jq -r '.level.dsn + " " + .level.reason' <<<"$out")" "5/${pf#* }" \
	"pinned: probe --resolve connects to the pin after the MX NXDOMAIN (exit 5), Postfix's words"

# a host that native lookups do not know (EAI_NONAME)
pf=$(pf_more nxnative)
diag "Postfix, [nxn.smtptls.test] (native): $pf"
run "$SMTPTLS" --json policy test --no-postfix-config --dns-server 127.0.0.1:53 --host-lookup native \
	--timeout 5 "[nxn.smtptls.test]"
pt_is nxnative "$pf" "[nxn.smtptls.test], native, not known: policy test, as Postfix"

# port 465 is free in this namespace: a STARTTLS server there (probe takes 465 for implicit
# TLS by default) gets the hint to use --starttls, not to drop an option never given
serve_as s465 --listen 127.0.0.1:465 --self-signed=localhost --maildir "$T/md465" || exit 1
run "$SMTPTLS" --json probe --level may --timeout 5 127.0.0.1:465
is "$rc" 7 "probe of a STARTTLS server on port 465: exit 7"
like "$(jq -r .hint <<<"$out")" "the port expects STARTTLS \\(use --starttls\\)" \
	"the hint says --starttls (implicit TLS came from the port, not an option)"
run "$SMTPTLS" --json probe --starttls --level may --timeout 5 127.0.0.1:465
is "$rc/$(jq -r .hint <<<"$out")" "0/null" "with --starttls: met, no hint"

done_testing
