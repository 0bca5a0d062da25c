# tap.sh: TAP helpers for the CLI tests (sourced; bash)
#
# A test script sources this, may call plan N (or plan_skip_all REASON),
# then ok/is/like/... and ends with done_testing, which prints the plan
# when none was given. Each script runs in its own
# scratch directory $T, removed at exit unless SMTPTLS_KEEP_TEST_DIR is set.

set -u

: "${TOP_SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${TOP_BUILDDIR:=$TOP_SRCDIR}"
: "${SMTPTLS:=$TOP_BUILDDIR/smtptls}"
export TOP_SRCDIR TOP_BUILDDIR SMTPTLS
export LC_ALL=C TZ=UTC
unset NO_COLOR SMTPTLS_PASSWORD

_tap_n=0
_tap_failed=0
_tap_cleanups=()

T=$(mktemp -d "${TMPDIR:-/tmp}/smtptls-test.XXXXXX")
export T
# caches (fetched CRLs) go to the scratch directory, never to the user's home
export XDG_CACHE_HOME=$T/.cache
# fetches in tests go to loopback servers only, never through a proxy
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

_tap_exit() {
	local rc=$? i
	for ((i = ${#_tap_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_tap_cleanups[$i]}" >/dev/null 2>&1 || true
	done
	if [ -z "${SMTPTLS_KEEP_TEST_DIR:-}" ]; then
		rm -rf "$T"
	else
		echo "# kept $T" >&2
	fi
	exit $rc
}
trap _tap_exit EXIT

# Run a command at exit (last registered runs first).
at_exit() { _tap_cleanups+=("$*"); }

_tap_planned=
plan() {
	_tap_planned=$1
	echo "1..$1"
}

# Skip the whole script: a TAP skip plan, then exit 0 (TAP drivers read the plan).
plan_skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}

# Skip when a tool is missing (CI installs every tool, so nothing skips there).
need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || plan_skip_all "$t not installed"
	done
}

_tap_result() {
	local ok=$1
	shift
	_tap_n=$((_tap_n + 1))
	if [ "$ok" = 0 ]; then
		echo "ok $_tap_n - $*"
	else
		echo "not ok $_tap_n - $*"
		_tap_failed=$((_tap_failed + 1))
	fi
	return "$ok"
}

# ok CONDITION-EXIT-STATUS DESCRIPTION: ok "$?" "desc" or ok 0 "desc"
ok() {
	local st=$1
	shift
	[ "$st" = 0 ] && _tap_result 0 "$@" || _tap_result 1 "$@"
}

# is GOT EXPECTED DESCRIPTION
is() {
	if [ "$1" = "$2" ]; then
		_tap_result 0 "$3"
	else
		_tap_result 1 "$3"
		diag "got:      '$1'"
		diag "expected: '$2'"
		return 1
	fi
}

# isnt GOT UNEXPECTED DESCRIPTION
isnt() {
	if [ "$1" != "$2" ]; then
		_tap_result 0 "$3"
	else
		_tap_result 1 "$3"
		diag "got '$1', which it should not be"
		return 1
	fi
}

# like TEXT EXTENDED-REGEX DESCRIPTION
like() {
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then
		_tap_result 0 "$3"
	else
		_tap_result 1 "$3"
		diag "text:    '$1'"
		diag "pattern: '$2'"
		return 1
	fi
}

# unlike TEXT EXTENDED-REGEX DESCRIPTION
unlike() {
	if ! printf '%s\n' "$1" | grep -Eq -- "$2"; then
		_tap_result 0 "$3"
	else
		_tap_result 1 "$3"
		diag "text:    '$1'"
		diag "matches: '$2'"
		return 1
	fi
}

# skip COUNT REASON: count COUNT checks as skipped (a missing tool or device)
skip() {
	local i
	for ((i = 0; i < $1; i++)); do
		_tap_n=$((_tap_n + 1))
		echo "ok $_tap_n # skip $2"
	done
}

diag() { printf '# %s\n' "$*" | sed '2,$s/^/# /' >&2; }

# run CMD...: run a command, capture stdout in $out, stderr in $err, status in $rc.
run() {
	set +e
	"$@" >"$T/.out" 2>"$T/.err"
	rc=$?
	out=$(cat "$T/.out")
	err=$(cat "$T/.err")
	return 0
}

# st ARGS...: run the built smtptls with run.
st() { run "$SMTPTLS" "$@"; }

# End the script: print the plan when none was given up front.
done_testing() {
	[ -n "$_tap_planned" ] || echo "1..$_tap_n"
	[ "$_tap_failed" = 0 ]
}
