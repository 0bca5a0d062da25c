# serve.sh: start smtptls serve in the background and wait for its ready line (sourced; bash)
#
# Source after tests/lib/tap.sh (uses $T, $SMTPTLS, at_exit).
#
#   serve ARGS...   start `smtptls serve ARGS` (standard error in $T/serve.err), wait for
#                   its ready line without sleeping (a FIFO, at most 30 s); sets $ready and
#                   $pid, kills it at exit; false when it did not get ready
#   port MODE       the port of the first listener in MODE (smtp, submission, smtps)

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

port() {
	sed -n "s/.* $1 [^ ]*:\([0-9]*\).*/\1/p" <<<" ${ready#ready}"
}
