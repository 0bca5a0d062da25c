#!/usr/bin/env python3
# rendezvous-smtp.py: two SMTP servers that greet no one until both have a client
#
#   rendezvous-smtp.py ADDR1 ADDR2
#
# Binds ADDR1 and ADDR2 (two loopback addresses) on one port, prints "ready PORT" on
# stdout, and waits for a connection on each. Only when both are connected does it send
# the banners; then each gets plain SMTP without STARTTLS: EHLO 250, QUIT 221, anything
# else 250. A client that probes the two addresses one after the other waits in vain for
# the first banner: only side by side do both answer. Exits after both sessions.
import select
import socket
import sys

a1, a2 = sys.argv[1], sys.argv[2]
for _ in range(50):
    s1 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s1.bind((a1, 0))
    port = s1.getsockname()[1]
    s2 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s2.bind((a2, port))
        break
    except OSError:  # taken on the second address: another port
        s1.close()
        s2.close()
else:
    sys.exit("no port free on both addresses")
s1.listen(1)
s2.listen(1)
print("ready", port, flush=True)
conns = {}
while len(conns) < 2:
    ready, _, _ = select.select([s for s in (s1, s2) if s not in conns], [], [], 60)
    if not ready:
        sys.exit("no rendezvous within 60 s")
    for s in ready:
        conns[s] = s.accept()[0]
files = {}
for c in conns.values():
    c.sendall(b"220 rendezvous.smtptls.test ESMTP\r\n")
    files[c] = c.makefile("rb")
live = list(conns.values())
while live:
    ready, _, _ = select.select(live, [], [], 60)
    if not ready:
        break
    for c in ready:
        line = files[c].readline(1024)
        verb = line.strip().split(b" ")[0].upper() if line else b""
        if not line:
            live.remove(c)
        elif verb == b"EHLO":
            c.sendall(b"250-rendezvous.smtptls.test\r\n250 8BITMIME\r\n")
        elif verb == b"QUIT":
            c.sendall(b"221 2.0.0 Bye\r\n")
            live.remove(c)
        else:
            c.sendall(b"250 2.0.0 Ok\r\n")
