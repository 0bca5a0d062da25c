#!/bin/bash
# t0201: verify matches names exactly as Postfix does: each case is also asked of a real
# Postfix (posttls-finger -l secure with the same match patterns against a Postfix smtpd
# holding the same certificate), and the two must agree
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pki.sh"
. "$TOP_SRCDIR/tests/lib/postfix.sh"
need certtool openssl jq
pf_require posttls-finger
pki_make "$T/pki" || { diag "pki_make failed"; exit 1; }
P=$T/pki

# leaf NAME TEMPLATE-LINES...: a leaf signed by the intermediate, its chain file NAME-chain.pem
leaf() {
	local name=$1
	shift
	certtool --generate-privkey --key-type=ecdsa --outfile "$P/$name.key" 2>/dev/null
	printf '%s\n' "$@" 'tls_www_server' 'signing_key' 'activation_date = "2024-01-01 00:00:00"' \
		'expiration_date = "2099-12-31 23:59:59"' >"$P/$name.tmpl"
	certtool --generate-certificate --load-privkey "$P/$name.key" --load-ca-certificate "$P/int.pem" \
		--load-ca-privkey "$P/int.key" --template "$P/$name.tmpl" 2>/dev/null |
		sed -n '/^-----BEGIN/,/^-----END/p' >"$P/$name.pem"
	cat "$P/$name.pem" "$P/int.pem" >"$P/$name-chain.pem"
}
leaf wild 'cn = "wildcard"' 'dns_name = "*.test.example"' 'serial = 101'
leaf cnonly 'cn = "mx.test.example"' 'serial = 102'
leaf sancn 'cn = "cn-only.test.example"' 'dns_name = "mx.test.example"' 'serial = 103'
leaf partial 'cn = "partial"' 'dns_name = "m*.test.example"' 'serial = 104'
leaf tld 'cn = "tld"' 'dns_name = "*.example"' 'serial = 105'

D=$T/postfix
chmod 755 "$T"
pf_init "$D" || { diag "pf_init failed"; exit 1; }
at_exit pf_stop "$D"
export MAIL_CONFIG=$D/etc
declare -A port
for c in wild cnonly sancn partial tld; do
	port[$c]=$(pf_free_port)
	pf_smtpd_service "$D" "${port[$c]}" -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt \
		-o "smtpd_tls_chain_files=$P/$c.key,$P/$c-chain.pem"
done
pf_start "$D" || { diag "Postfix did not start"; exit 1; }

# postfix_says CERT PATTERNS -> "match" or "no match", as posttls-finger at level secure says;
# PATTERNS separated by ':' become separate match arguments
postfix_says() {
	local o pats
	IFS=: read -r -a pats <<<"$2"
	o=$(timeout 30 posttls-finger -c -w -l secure -F "$P/ca.pem" "[127.0.0.1]:${port[$1]}" "${pats[@]}" 2>&1)
	if grep -q 'Verified TLS connection established' <<<"$o"; then echo match
	elif grep -q 'TLS connection established' <<<"$o"; then echo "no match"
	else echo "posttls-finger failed: $(tail -1 <<<"$o")"; fi
}
# smtptls_says CERT PATTERNS [OPTION...] -> "match" or "no match"
smtptls_says() {
	local c=$1 m=$2
	shift 2
	run "$SMTPTLS" --json verify --ca-file "$P/ca.pem" --match "$m" "$@" "$P/$c-chain.pem"
	case $(jq -r .postfix_status <<<"$out") in
	Verified) echo match ;;
	Trusted) echo "no match" ;;
	*) echo "chain not trusted: $(jq -c .errors <<<"$out")" ;;
	esac
}
# case_ CERT PATTERNS EXPECTED WHY: smtptls and Postfix both give EXPECTED
case_() {
	is "$(smtptls_says "$1" "$2")" "$3" "$1, match '$2': $3 ($4)"
	is "$(postfix_says "$1" "$2")" "$3" "$1, match '$2': Postfix agrees"
}

case_ wild mx.test.example match "'*' is one label"
case_ wild a.b.test.example "no match" "'*' is one label only: Postfix 3.7 checks with OpenSSL, whatever tls_wildcard_matches_multiple_labels says"
is "$(postconf -c "$D/etc" -h tls_wildcard_matches_multiple_labels)" yes "and that with tls_wildcard_matches_multiple_labels = yes"
is "$(smtptls_says wild a.b.test.example --multi-label-wildcards)" match "--multi-label-wildcards: what postconf(5) documents"
is "$(smtptls_says wild test.example --multi-label-wildcards)" "no match" "--multi-label-wildcards: '*' is still never zero labels"
case_ wild test.example "no match" "'*' is never zero labels"
case_ wild .test.example match "a .domain pattern: '*' counts as a label below it"
case_ wild .example match "a .domain pattern: one or more labels below"
case_ wild MX.TEST.EXAMPLE match "case is ignored"
case_ cnonly mx.test.example match "no DNS subjectAltName: the CN is used"
case_ cnonly .test.example match "no DNS subjectAltName: the CN against a .domain pattern"
case_ sancn mx.test.example match "the DNS subjectAltName"
case_ sancn cn-only.test.example "no match" "with a DNS subjectAltName the CN is ignored"
case_ partial mx.test.example "no match" "'m*' is no wildcard: '*' only as the whole first label"
case_ wild "other.example:mx.test.example" match "several patterns: any one"
case_ tld foo.example "no match" "'*.example' is no wildcard: '*' needs two labels after it"
is "$(smtptls_says tld foo.example --multi-label-wildcards)" "no match" "'*.example' is no wildcard with --multi-label-wildcards either"
case_ wild "other.example:.other.example" "no match" "several patterns: none"

# the strategies, expanded as postconf(5) defines them
st verify --ca-file "$P/ca.pem" --hostname mx.test.example "$P/wild-chain.pem"
like "$out" "OK \(Verified, name '\*.test.example' matched\)" "--hostname alone: the hostname strategy"
st verify --ca-file "$P/ca.pem" --nexthop test.example "$P/wild-chain.pem"
like "$out" "OK \(Verified" "--nexthop alone: nexthop:dot-nexthop (the secure default)"
st verify --ca-file "$P/ca.pem" --nexthop test.example --match nexthop "$P/wild-chain.pem"
is "$rc" 1 "--match nexthop: the wildcard is not the domain itself"
st verify --ca-file "$P/ca.pem" --match hostname "$P/wild-chain.pem"
is "$rc" 2 "--match hostname without --hostname: usage status"
like "$err" "match strategy 'hostname' needs --hostname" "--match hostname without --hostname: says so"

done_testing
