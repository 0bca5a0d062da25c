# serve.sh: start smtptls serve in the background and wait for its ready line (sourced; bash)
#
# Source after tests/lib/tap.sh (uses $T, $SMTPTLS, at_exit).
#
#   serve ARGS...   start `smtptls serve ARGS` (standard error in $T/serve.err), wait for
#                   its ready line without sleeping (a FIFO, at most 30 s); sets $ready and
#                   $pid, kills it at exit; false when it did not get ready
#   serve_as NAME ARGS...
#                   the same, one of several: its JSON log in $T/NAME.log, standard error
#                   in $T/NAME.err; sets $port (its smtp listener's)
#   port MODE       the port of the first listener in MODE (smtp, submission, smtps)
#   wait_log FILE ERE [SECONDS]
#                   print the first line of FILE matching ERE, waiting for it to be
#                   written (tail -F: inotify, no sleep; at most SECONDS, default 30)

serve() {
	local fifo=$T/ready.$RANDOM
	rm -f "$fifo" && mkfifo "$fifo"
	"$SMTPTLS" serve "$@" >"$fifo" 2>"$T/serve.err" &
	pid=$!
	at_exit "kill $pid 2>/dev/null"
	ready=
	read -r -t 30 ready <"$fifo"
	rm -f "$fifo"
	[[ $ready == ready* ]]
}

serve_as() {
	local name=$1 fifo=$T/ready.$1 ready
	shift
	rm -f "$fifo" && mkfifo "$fifo"
	"$SMTPTLS" serve --log "$T/$name.log" "$@" >"$fifo" 2>"$T/$name.err" &
	at_exit "kill $! 2>/dev/null"
	read -r -t 30 ready <"$fifo"
	port=$(sed -n 's/.* smtp [^:]*:\([0-9]*\).*/\1/p' <<<"$ready")
	[ -n "$port" ] || { diag "serve $name did not start: $(cat "$T/$name.err")"; return 1; }
}

port() {
	sed -n "s/.* $1 [^ ]*:\([0-9]*\).*/\1/p" <<<" ${ready#ready}"
}

wait_log() {
	local fd tp line
	touch "$1"
	exec {fd}< <(exec timeout "${3:-30}" tail -n +1 -F -- "$1" 2>/dev/null)
	tp=$!
	line=$(grep -m 1 -E -- "$2" <&"$fd")
	kill "$tp" 2>/dev/null
	exec {fd}<&-
	printf '%s' "$line"
}
