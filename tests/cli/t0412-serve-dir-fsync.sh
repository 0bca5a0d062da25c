#!/bin/bash
# t0412: the sync of the Maildir's new/ fails after the rename (an LD_PRELOAD shim built here
# makes fsync of a directory named new fail with EIO while a flag file exists): the message
# is taken out of new/ again and the client gets 451, so its retry is the only copy; before,
# the file stayed in new/ behind the 451 and the retry made a second one
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/serve.sh"
need python3 cc
cd "$T" || exit 1
big() { python3 "$TOP_SRCDIR/tests/lib/big-smtp.py" "$@"; }

cat >shim.c <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int fsync(int fd)
{
	static int (*real)(int);
	const char *flag = getenv("SHIM_FAIL_FLAG");
	char link[64], path[4096];
	struct stat st;
	ssize_t n;

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (flag && access(flag, F_OK) == 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) &&
	    n > 4 && (path[n] = '\0', strcmp(path + n - 4, "/new") == 0)) {
		errno = EIO;
		return -1;
	}
	return real(fd);
}
C
cc -shared -fPIC -o shim.so shim.c -ldl || plan_skip_all "cannot build the LD_PRELOAD shim"

touch "$T/fail"
SHIM_FAIL_FLAG=$T/fail LD_PRELOAD=$T/shim.so ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
	serve --listen 127.0.0.1:0 --maildir "$T/md" --domains big.smtptls.test --log "$T/log.json" ||
	{ diag "serve did not start: $(cat "$T/serve.err")"; exit 1; }
big send "$(port smtp)" 1 4000 "$T/md" >"$T/a.out"
like "$(head -1 "$T/a.out")" "^0 451 " "the sync of new/ fails: 451 to the client"
is "$(find "$T/md" -type f | wc -l)" 0 "the message is taken out of new/ again (nothing in tmp/ either)"
like "$(cat "$T/serve.err")" "cannot fsync the directory in the Maildir '$T/md': Input/output error" \
	"the reason, on standard error"
rm "$T/fail"
big send "$(port smtp)" 1 4000 "$T/md" >"$T/b.out"
is "$(awk '{print $2}' "$T/b.out" | tr '\n' ' ')" "250 whole " "the client's retry is stored"
is "$(ls "$T/md/new" | wc -l)" 1 "one copy in new/, not two"
kill "$pid"
wait "$pid"
done_testing
