#!/bin/bash
# hostile-machine.sh: run a command as on a mail admin's machine that has its own /etc/hosts,
# resolver and Postfix configuration, so that a test depending on any of them fails
#
#   tests/lib/hostile-machine.sh COMMAND [ARG...]
#
# COMMAND runs in a mount namespace of its own (unshare -m, private propagation: nothing
# outside sees it) where
#   /etc/hosts          maps every name the tests use (each *.test, *.example and
#                       example.com/org/net name found in tests/, and X.test for each
#                       X.smtptls.test) to 127.0.0.1 or 127.0.0.77, the lines an admin's test
#                       machine has ("127.0.0.1 mx.test");
#   /etc/resolv.conf    names 127.0.0.254, where nothing answers;
#   /etc/postfix        holds a main.cf no test may read: a relayhost, level dane, a policy
#                       table that is not there, native host lookups.
# Exit status: COMMAND's. Without root or unshare the command runs as it is, after a
# warning line on standard error that says the run is not hermetic-checked.
set -u
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

if [ -z "${SMTPTLS_HOSTILE_NS:-}" ]; then
	if [ "$(id -u)" != 0 ] || ! unshare -m --propagation private true 2>/dev/null; then
		# CI runs as root: there the check must happen, never be skipped with a warning
		if [ -n "${CI:-}" ]; then
			echo "hostile-machine.sh: cannot make a mount namespace (needs root and unshare -m)" \
				"and CI is set: the hermeticity check cannot be skipped" >&2
			exit 1
		fi
		echo "WARNING: cannot make a mount namespace (needs root and unshare -m): the" \
			"tests run against this machine's /etc/hosts, resolver and /etc/postfix as they are" >&2
		exec "$@"
	fi
	exec unshare -m --propagation private env SMTPTLS_HOSTILE_NS=1 bash "${BASH_SOURCE[0]}" "$@"
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/smtptls-hostile.XXXXXX") || exit 1
chmod 755 "$dir"
# every name the tests use, as a mail admin's /etc/hosts might have it
{
	echo "127.0.0.1 localhost"
	echo "::1 localhost ip6-localhost ip6-loopback"
	grep -rhoE '\b([A-Za-z0-9_-]+\.)+(test|example|example\.com|example\.org|example\.net)\b' \
		"$top/tests/cli" "$top/tests/lib" "$top/tests/unit"/*.c 2>/dev/null |
		grep -v '^_' | tr 'A-Z' 'a-z' | sed 's/^\(.*\)\.smtptls\.test$/\1.test\n&/' | sort -u |
		awk '{ print (NR % 2 ? "127.0.0.1 " : "127.0.0.77 ") $0 }'
	echo "127.0.0.1 mx.test"
} >"$dir/hosts"
echo "nameserver 127.0.0.254" >"$dir/resolv.conf"
# the machine's Postfix files (postfix-files, dynamicmaps.cf... the tests' instances need
# them), with a main.cf of the admin's own
if [ -d /etc/postfix ]; then cp -a /etc/postfix "$dir/postfix"; else mkdir -p "$dir/postfix"; fi
cat >"$dir/postfix/main.cf" <<'EOF'
# a machine's own Postfix: nothing in a test may read this
compatibility_level = 3.6
myhostname = hostile.smtptls.invalid
relayhost = [relay.smtptls.invalid]:587
smtp_tls_security_level = dane
smtp_dns_support_level = dnssec
smtp_tls_policy_maps = hash:/nonexistent/smtptls-hostile/tls_policy
smtp_tls_CAfile = /nonexistent/smtptls-hostile/ca.pem
smtp_host_lookup = native
smtp_tls_fingerprint_digest = md5
EOF
mount --bind "$dir/hosts" /etc/hosts || { echo "hostile-machine.sh: cannot replace /etc/hosts" >&2; exit 1; }
mount --bind "$dir/resolv.conf" /etc/resolv.conf ||
	{ echo "hostile-machine.sh: cannot replace /etc/resolv.conf" >&2; exit 1; }
if [ -d /etc/postfix ]; then
	mount --bind "$dir/postfix" /etc/postfix ||
		{ echo "hostile-machine.sh: cannot replace /etc/postfix" >&2; exit 1; }
fi
echo "# hostile-machine.sh: /etc/hosts names $(($(wc -l <"$dir/hosts") - 2)) test names," \
	"resolv.conf 127.0.0.254, /etc/postfix/main.cf hostile" >&2
"$@"
rc=$?
rm -rf "$dir"
exit $rc
