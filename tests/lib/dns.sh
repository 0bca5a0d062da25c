# dns.sh: a real DNS server on loopback for the tests (dnsmasq), never the machine's resolver
#
#   . tests/lib/dns.sh
#   dns_start DIR PORT         start dnsmasq on 127.0.0.1:PORT answering only from DIR/zone.conf
#   dns_mx NAME PREF HOST      an MX record (writes DIR/zone.conf; call before dns_start)
#   dns_a NAME ADDR            an A or AAAA record (by the address's form)
#   dns_txt NAME TEXT          a TXT record
#   dns_rr NAME TYPE HEXDATA   any record by type number (TLSA is 52), RFC 3597 data in hex
#
# dnsmasq runs with --no-resolv --no-hosts --no-poll and no upstream server, so
# a name outside the zone gets REFUSED or NXDOMAIN, never a query to the
# machine's resolver. It is stopped by at_exit (tests/lib/tap.sh).

dns_dir=

_dns_conf() {
	[ -n "$dns_dir" ] || { echo "dns.sh: call dns_init DIR first" >&2; return 1; }
	printf '%s\n' "$*" >>"$dns_dir/zone.conf"
}

dns_init() {
	dns_dir=$1
	mkdir -p "$dns_dir" && : >"$dns_dir/zone.conf"
	# the test domains are answered from here alone, as an authoritative server
	# would: a missing record is NODATA or NXDOMAIN, never REFUSED
	_dns_conf "local=/test/"
	_dns_conf "local=/example/"
}

dns_mx() { _dns_conf "mx-host=$1,$3,$2"; }
dns_a() {
	case $2 in
	*:*) _dns_conf "host-record=$1,$2" ;;
	*) _dns_conf "host-record=$1,$2" ;;
	esac
}
dns_txt() { _dns_conf "txt-record=$1,\"$2\""; }
dns_rr() { _dns_conf "dns-rr=$1,$2,$3"; }

# dns_start PORT: start the server and wait until it answers (bounded)
dns_start() {
	local port=$1 i
	command -v dnsmasq >/dev/null || PATH=$PATH:/usr/sbin
	dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --no-negcache \
		--listen-address=127.0.0.1 --bind-interfaces --port="$port" \
		--conf-file="$dns_dir/zone.conf" --pid-file="$dns_dir/dnsmasq.pid" \
		--log-facility="$dns_dir/dnsmasq.log" --log-queries --user="$(id -un)" \
		>"$dns_dir/dnsmasq.out" 2>&1 &
	dns_pid=$!
	at_exit "kill $dns_pid 2>/dev/null; wait $dns_pid 2>/dev/null"
	for i in $(seq 1 100); do
		# the port answers once dnsmasq has bound it
		if dig +time=1 +tries=1 @127.0.0.1 -p "$port" smtptls-dns-probe.invalid >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$dns_pid" 2>/dev/null || break
		sleep 0.05 # bounded poll for the port, not synchronisation on an event
	done
	echo "dns.sh: dnsmasq did not start on 127.0.0.1:$port" >&2
	cat "$dns_dir/dnsmasq.out" >&2
	return 1
}
