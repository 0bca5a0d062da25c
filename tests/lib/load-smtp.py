#!/usr/bin/env python3
# load-smtp.py: send messages over plain SMTP from several threads until the server goes away
#
#   load-smtp.py PORT THREADS
#
# Each thread sends one message after another (MAIL, RCPT, DATA) on its own connection; a
# message's body ends with a line "END-<thread>-<n>". Every message the server accepted is
# printed as "QUEUE-ID END-<thread>-<n>" on stdout as soon as its 250 arrives; the first
# line of all is "started" once every thread has sent a message. Runs until the server
# stops answering.
import socket
import sys
import threading

port, threads = int(sys.argv[1]), int(sys.argv[2])
lock = threading.Lock()
first = threading.Barrier(threads + 1)


def say(line):
    with lock:
        print(line, flush=True)


def worker(t):
    waited = False
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = s.makefile("rb")

        def reply():
            while True:
                l = f.readline()
                if not l:
                    raise OSError("closed")
                if l[3:4] != b"-":
                    return l.decode().strip()
        reply()
        s.sendall(b"EHLO load.smtptls.test\r\n")
        reply()
        n = 0
        while True:
            n += 1
            s.sendall(b"MAIL FROM:<a@load.smtptls.test>\r\nRCPT TO:<b@example.smtptls.test>\r\nDATA\r\n")
            reply(), reply(), reply()
            body = b"Subject: load\r\n\r\n" + (b"x" * 98 + b"\r\n") * 20 + b"END-%d-%d\r\n.\r\n" % (t, n)
            s.sendall(body)
            r = reply()
            if r.startswith("250"):
                say("%s END-%d-%d" % (r.split()[-1], t, n))
            if not waited:
                waited = True
                first.wait()
    except (OSError, threading.BrokenBarrierError):
        if not waited:
            try:
                first.wait(timeout=1)
            except threading.BrokenBarrierError:
                pass


ts = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
for t in ts:
    t.start()
try:
    first.wait(timeout=30)
    say("started")
except threading.BrokenBarrierError:
    say("started")
for t in ts:
    t.join()
