#!/bin/bash
# t0004: a command that neither fetches nor resolves does not load libcurl and libunbound (and the
# LDAP, Kerberos, SSH, RTMP, libcrypto and libevent they bring); one that resolves loads
# libunbound when it first needs it. The dynamic loader says what it loads (LD_DEBUG=files).
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
. "$TOP_SRCDIR/tests/lib/dns.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
need certtool dnsmasq jq
if ! LD_DEBUG=files "$SMTPTLS" --version 2>&1 | grep -q 'file=libgnutls'; then
	plan_skip_all "the dynamic loader does not report the files it loads (LD_DEBUG=files)"
fi
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }

# loaded CMD...: the libraries the run loaded, one a line
loaded() {
	LD_DEBUG=files "$@" 2>&1 >/dev/null | sed -n 's/.*file=\([^ ]*\) .*/\1/p' | sort -u
}
late='libcurl|libunbound|libldap|libkrb5|libssh2|librtmp|libcrypto|libevent'

l=$(loaded "$SMTPTLS" --version)
like "$l" "libgnutls" "--version: the loader reports what it loads"
unlike "$l" "$late" "--version: neither libcurl nor libunbound, nor what they bring"
l=$(loaded "$SMTPTLS" fingerprint "$T/pki/server.pem")
unlike "$l" "$late" "fingerprint: neither libcurl nor libunbound"
l=$(loaded "$SMTPTLS" verify --no-system-ca --ca-file "$T/pki/ca.pem" "$T/pki/server-chain.pem")
unlike "$l" "$late" "verify without fetching: neither libcurl nor libunbound"

# a probe of a mail domain resolves its MX host: libunbound is loaded then, and it works
port=$(pf_free_port)
dns_init "$T/dns"
dns_mx start.smtptls.test 10 mx.start.smtptls.test
dns_a mx.start.smtptls.test 127.0.0.1
dns_start "$port" || { diag "dnsmasq did not start"; exit 1; }
closed=$(pf_free_port)
l=$(loaded "$SMTPTLS" probe --no-system-ca --dns-server "127.0.0.1:$port" \
	--mx "start.smtptls.test:$closed")
like "$l" "libunbound" "probe DOMAIN: libunbound loaded when the MX lookup needs it"
unlike "$l" "libcurl" "probe DOMAIN without MTA-STS: libcurl still not loaded"
st --json probe --no-system-ca --dns-server "127.0.0.1:$port" --mx "start.smtptls.test:$closed"
is "$(jq -r '.host + " " + .address' <<<"$out" | head -n 1)" "mx.start.smtptls.test 127.0.0.1" \
	"probe DOMAIN: the MX host and its address come from the lazily loaded resolver"

# libunbound that cannot be loaded (/dev/null over it, in a mount namespace of the test's
# own): the error names it, and blames no option
so=$(ldconfig -p | awk '/libunbound\.so\.[0-9]+ /{print $NF; exit}')
if [ "$(id -u)" = 0 ] && [ -n "$so" ] && unshare -m true 2>/dev/null; then
	for c in "policy test --no-postfix-config" "probe"; do
		out=$(unshare -m --propagation private bash -c 'mount --bind /dev/null "$1" && shift &&
			exec "$@"' _ "$so" "$SMTPTLS" $c --dns-server "127.0.0.1:$port" start.smtptls.test 2>&1)
		like "$out" "cannot start the DNS resolver: cannot load 'libunbound\.so\.[0-9]+'" \
			"${c%% *}: libunbound not loadable: the error names it"
		unlike "$out" "--dns-server:" "${c%% *}: and does not blame --dns-server"
	done
else
	skip 4 "needs root, libunbound in ldconfig's cache and mount namespaces"
fi

done_testing
