#!/bin/bash
# t0404: serve started as root binds a low port, then runs as --user (groups, gid, uid);
# the Maildir is the user's and mail is stored; the errors of --user
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need swaks ss setpriv mkfifo jq
[ "$(id -u)" = 0 ] || plan_skip_all "needs root (serve --user drops privileges)"
id nobody >/dev/null 2>&1 || plan_skip_all "no user nobody"
NUID=$(id -u nobody) NGID=$(id -g nobody)
# nobody must reach the scratch directory to write its Maildir
chmod 0711 "$T"

# a free port below 1024 (127.0.0.1:25 may be a system Postfix)
LOW=
for p in 587 465; do
	ss -Hltn "sport = :$p" | grep -q . || { LOW=$p; break; }
done
[ -n "$LOW" ] || plan_skip_all "no free port below 1024 among 587 and 465"

# the pid file is written after the drop (and removed at exit): its directory is nobody's
mkdir "$T/run" && chown nobody "$T/run"
serve --listen "127.0.0.1:$LOW" --user nobody --maildir "$T/md" --log "$T/log.json" \
	--pid-file "$T/run/serve.pid" --hostname mx.user.smtptls.test --domains example.smtptls.test ||
	diag "serve: $(cat "$T/serve.err")"
is "$ready" "ready smtp 127.0.0.1:$LOW" "root binds 127.0.0.1:$LOW, then is ready"
status=$(cat "/proc/$pid/status" 2>/dev/null)
is "$(awk '$1 == "Uid:" { print $2, $3, $4, $5 }' <<<"$status")" "$NUID $NUID $NUID $NUID" \
	"/proc: real, effective, saved and filesystem uid are nobody's"
is "$(awk '$1 == "Gid:" { print $2, $3, $4, $5 }' <<<"$status")" "$NGID $NGID $NGID $NGID" \
	"and every gid is nobody's group"
is "$(awk '$1 == "Groups:" { $1 = ""; print substr($0, 2) }' <<<"$status")" "$NGID" \
	"no supplementary group but that one"
is "$(stat -c %U "$T/md" "$T/md/new" | sort -u)" nobody "the Maildir was given to nobody"
run timeout 60 swaks --server 127.0.0.1 --port "$LOW" --tls --from a@client.smtptls.test --to x@example.smtptls.test \
	--header "Subject: as-nobody" --body "stored by nobody"
is "$rc" 0 "a message is accepted"
f=$(grep -l "^Subject: as-nobody" "$T"/md/new/* 2>/dev/null)
isnt "$f" "" "and stored in new/"
is "$(stat -c %U "$f" 2>/dev/null)" nobody "written by nobody"
is "$(cat "$T/run/serve.pid")" "$pid" "the pid file holds the process id"
like "$(cat "$T/log.json")" '"event":"data"' "the log, opened as root before the drop, is written"
kill "$pid"
wait "$pid"
is "$?" 0 "SIGTERM: a clean stop as nobody"
ok "$([ ! -e "$T/run/serve.pid" ]; echo $?)" "the pid file, written as nobody, is removed at exit"

# onward relay as nobody: the queue directory, and a queue file a root run left, are given
# to nobody; the message relays
serve --listen 127.0.0.1:0 --maildir "$T/next" --domains relay.smtptls.test ||
	diag "serve (next hop): $(cat "$T/serve.err")"
next=$(port smtp)
mkdir -m 0700 "$T/q" "$T/q/tmp"
printf 'smtptls-queue 1\narrival %s\nfrom a@client.smtptls.test\nrcpt W left@relay.smtptls.test\n\nSubject: left-by-root\r\n\r\nbody\r\n' \
	"$(date +%s)" >"$T/q/LEFTBYROOT"
chmod 0600 "$T/q/LEFTBYROOT"
serve --listen "127.0.0.1:$LOW" --user nobody --maildir "$T/md3" --log "$T/relay.json" \
	--relayhost "[127.0.0.1]:$next" --queue-dir "$T/q" --mynetworks 127.0.0.0/8 ||
	diag "serve (relay): $(cat "$T/serve.err")"
rpid=$pid
is "$(stat -c %U "$T/q" "$T/q/tmp" "$T/q/LEFTBYROOT" | sort -u)" nobody \
	"--user: the queue directory and the file left by root are nobody's"
run timeout 60 swaks --server 127.0.0.1 --port "$LOW" --from a@client.smtptls.test --to new@relay.smtptls.test \
	--header "Subject: relayed-by-nobody"
is "$rc" 0 "a message for relay is accepted by nobody"
wait_log "$T/relay.json" '"event":"relay".*"to":"new@relay.smtptls.test".*"status":"sent"' >/dev/null
wait_log "$T/relay.json" '"event":"relay".*"to":"left@relay.smtptls.test".*"status":"sent"' >/dev/null
got=$(jq -r 'select(.event == "relay" and .status == "sent") | .to' "$T/relay.json" | sort | tr '\n' ' ')
is "$got" "left@relay.smtptls.test new@relay.smtptls.test " "both relayed: the one left by root and the new one"
kill "$rpid"
wait "$rpid"

# the errors: each named, and nothing listens as root on
st serve --listen 127.0.0.1:0 --user no-such-user-smtptls --maildir "$T/md2"
is "$rc" 2 "--user for a user that does not exist: usage"
like "$err" "--user: no user 'no-such-user-smtptls'" "named"
mkdir -m 0700 "$T/private"
st serve --listen 127.0.0.1:0 --user nobody --maildir "$T/private/md"
is "$rc" 3 "a Maildir nobody cannot reach: exit 3, before the ready line"
like "$err" "--maildir: '$T/private/md/tmp' is not writable by 'nobody': Permission denied" \
	"named, with the reason"
run setpriv --reuid=nobody --regid="$NGID" --clear-groups "$SMTPTLS" serve --listen 127.0.0.1:0 \
	--user root --maildir /nonexistent/md
is "$rc" 2 "not root: --user for another user is a usage error"
like "$err" "--user: only root can become 'root' \\(this is uid $NUID\\)" "it says why"

done_testing
