#!/usr/bin/env python3
# smtp-dialog.py: a plaintext SMTP conversation, one command at a time, for comparing servers
#
#   smtp-dialog.py PORT COMMAND...
#
# Connects to 127.0.0.1:PORT, reads the banner, then sends each COMMAND (with CRLF; \r, \n
# and \xNN escapes are read as such) and prints "COMMAND -> LAST LINE OF THE REPLY", one per
# command, stopping after a 221 or 421 or when the server closes. The banner and EHLO's
# keyword lines are not printed: servers differ there by design.
import socket
import sys

s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
f = s.makefile("rb")


def reply():
    last = b"<closed>"
    while True:
        line = f.readline(8192)
        if not line:
            return last.decode("latin-1")
        last = line.rstrip(b"\r\n")
        if line[3:4] != b"-":
            return last.decode("latin-1")


reply()
for c in sys.argv[2:]:
    raw = c.encode("latin-1").decode("unicode_escape").encode("latin-1")
    s.sendall(raw + b"\r\n")
    r = reply()
    if c.upper().startswith("EHLO") and r.startswith("250"):
        r = "250 (keywords)"
    print("%s -> %s" % (c[:40], r), flush=True)
    if r.startswith(("221", "421", "<closed>")):
        break
