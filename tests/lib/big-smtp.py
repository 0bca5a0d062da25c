#!/usr/bin/env python3
# big-smtp.py: big messages over plain SMTP, many connections at once
#
#   big-smtp.py send PORT CLIENTS BYTES MAILDIR
#       CLIENTS connections at once, each sending one message of about BYTES bytes (its
#       own text). Prints "K CODE QUEUE-ID" per client (the reply to the end of data, or
#       the refusal of a command before it; "err" when the connection failed),
#       then one line per client that got 250: "K whole" when MAILDIR/new holds its file
#       with the message byte for byte (LF line ends) behind serve's Received header,
#       "K missing" or "K cut" otherwise.
#   big-smtp.py hold PORT CLIENTS BYTES TOTAL
#       CLIENTS connections, each in DATA of a TOTAL-byte message (SIZE=TOTAL) having sent
#       BYTES of it; once the server has read every byte sent (no byte waits in a socket
#       queue of PORT's connections, /proc/net/tcp) prints "held N" (N the connections
#       that got there), then waits for its standard input to close, and leaves without
#       ending the messages.
import glob
import socket
import sys
import threading
import time

mode, port, clients, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
LINE = 76


def message(k, size):
    head = "From: a@big.smtptls.test\nTo: b@big.smtptls.test\nSubject: client %d\n\n" % k
    body = []
    n, i = len(head), 0
    while n < size:
        line = ("%d-%d " % (k, i)).ljust(LINE, "abcdefghij"[i % 10])[:LINE] + "\n"
        body.append(line)
        n += len(line)
        i += 1
    return (head + "".join(body)).encode()


def reply(f):
    while True:
        l = f.readline()
        if not l:
            raise OSError("closed")
        if l[3:4] != b"-":
            return l.decode().strip()


def begin(k, total):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    f = s.makefile("rb")
    reply(f)
    for cmd, want in ((b"EHLO big.smtptls.test", "250"),
                      (b"MAIL FROM:<a@big.smtptls.test> SIZE=%d" % total, "250"),
                      (b"RCPT TO:<b@big.smtptls.test>", "250"), (b"DATA", "354")):
        s.sendall(cmd + b"\r\n")
        r = reply(f)
        if not r.startswith(want):
            raise OSError(r)
    return s, f


results = {}
lock = threading.Lock()


def send(k):
    msg = message(k, size)
    try:
        s, f = begin(k, len(msg))
        data = msg.replace(b"\n", b"\r\n")
        for off in range(0, len(data), 65536):
            s.sendall(data[off:off + 65536])
        s.sendall(b".\r\n")
        r = reply(f)
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:
            pass
        s.close()
    except OSError as e:
        r = str(e) if str(e)[:3].isdigit() else "error " + str(e)  # a refusal, or none
    with lock:
        results[k] = (r, msg)


if mode == "send":
    maildir = sys.argv[5]
    ts = [threading.Thread(target=send, args=(k,)) for k in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for k in range(clients):
        r = results[k][0]
        print(k, r[:3], r.split()[-1] if r.startswith("250") else "-")
    for k in range(clients):
        r, msg = results[k]
        if not r.startswith("250"):
            continue
        files = glob.glob("%s/new/*.%s.*" % (maildir, r.split()[-1]))
        if len(files) != 1:
            print(k, "missing")
            continue
        data = open(files[0], "rb").read()
        ok = data.startswith(b"Received: ") and data.endswith(msg) and \
            b"\n\n" not in data[:len(data) - len(msg)]
        print(k, "whole" if ok else "cut")
else:
    total = int(sys.argv[5])
    held = []
    for k in range(clients):
        try:
            s, f = begin(k, total)
            s.sendall(message(k, size).replace(b"\n", b"\r\n"))
            held.append(s)
        except OSError as e:
            print("client", k, e, file=sys.stderr)
    deadline = time.time() + 120
    while time.time() < deadline:
        busy = False
        for path in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                rows = open(path).read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                f = row.split()
                if int(f[1].split(":")[1], 16) != port and int(f[2].split(":")[1], 16) != port:
                    continue
                tx, rx = (int(x, 16) for x in f[4].split(":"))
                busy = busy or tx or rx
        if not busy:
            break
        time.sleep(0.05)  # polling the queues, not waiting for a guess
    print("held", len(held), flush=True)
    sys.stdin.read()
    for s in held:
        s.close()
