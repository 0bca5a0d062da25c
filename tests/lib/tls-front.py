#!/usr/bin/env python3
# tls-front.py: an SMTP server on 127.0.0.1 whose TLS is a real `openssl s_server`
#
#   tls-front.py [--implicit] -- S_SERVER_OPTIONS...
#
# For TLS corner cases that need a real TLS stack with options Postfix does not have
# (an OCSP staple: -status_file FILE), behind an SMTP conversation a client can hold.
# Starts `openssl s_server -quiet -unix SOCKET S_SERVER_OPTIONS...` (SOCKET in a directory
# of its own under /tmp: OpenSSL 3.0 refuses Unix socket paths longer than about 40 bytes),
# binds
# 127.0.0.1 port 0 and prints "ready PORT" on stdout once s_server accepts. Then, for each
# connection in turn: the banner, EHLO and STARTTLS in plaintext (with --implicit, none),
# after which every byte goes through s_server untouched, so the handshake, the
# certificates and the staple are s_server's. The SMTP replies inside TLS are written to
# s_server's stdin when its stdout shows the command: EHLO gets 250 with 8BITMIME, QUIT
# 221 and the end of the connection, anything else 250. Runs until SIGTERM, which stops
# s_server too and removes the socket.
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

args = sys.argv[1:]
implicit = False
if args and args[0] == "--implicit":
    implicit = True
    args = args[1:]
if not args or args[0] != "--":
    sys.exit("usage: tls-front.py [--implicit] -- S_SERVER_OPTIONS...")
sockdir = tempfile.mkdtemp(prefix="stf.", dir="/tmp")
path = os.path.join(sockdir, "s")
ssrv = subprocess.Popen(["openssl", "s_server", "-quiet", "-unix", path] + args[1:],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def stop(*_):
    ssrv.kill()
    ssrv.wait()
    shutil.rmtree(sockdir, ignore_errors=True)
    os._exit(0)


signal.signal(signal.SIGTERM, stop)


def backend():
    """A connection to s_server; None while it is not accepting yet."""
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        u.connect(path)
        return u
    except OSError:
        u.close()
        return None


# s_server is ready when its socket accepts: a bounded wait on its own progress
# (each try blocks in connect or in waiting for the process, never in a sleep)
for _ in range(200):
    probe = backend()
    if probe:
        probe.close()
        break
    try:
        ssrv.wait(timeout=0.05)
        shutil.rmtree(sockdir, ignore_errors=True)
        sys.exit("s_server exited with status %d" % ssrv.returncode)
    except subprocess.TimeoutExpired:
        pass
else:
    stop()

srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
print("ready", srv.getsockname()[1], flush=True)


def reply(b):
    ssrv.stdin.write(b)
    ssrv.stdin.flush()


def plaintext(conn):
    """Banner, EHLO, STARTTLS; True when the client asked for TLS."""
    f = conn.makefile("rb")
    conn.sendall(b"220 front.smtptls.test ESMTP smtptls test front\r\n")
    while True:
        line = f.readline(1024)
        if not line:
            return False
        verb = line.strip().split(b" ")[0].upper()
        if verb in (b"EHLO", b"HELO"):
            conn.sendall(b"250-front.smtptls.test\r\n250-8BITMIME\r\n250 STARTTLS\r\n")
        elif verb == b"STARTTLS":
            conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
            return True
        elif verb == b"QUIT":
            conn.sendall(b"221 2.0.0 Bye\r\n")
            return False
        else:
            conn.sendall(b"530 5.7.0 Must issue a STARTTLS command first\r\n")


def tunnel(conn):
    u = backend()
    if not u:
        return
    if implicit:
        reply(b"220 front.smtptls.test ESMTP smtptls test front\r\n")
    sel = selectors.DefaultSelector()
    sel.register(conn, selectors.EVENT_READ, u)
    sel.register(u, selectors.EVENT_READ, conn)
    sel.register(ssrv.stdout, selectors.EVENT_READ, None)
    pending = b""
    try:
        while True:
            for key, _ in sel.select(timeout=30):
                if key.data is None:  # what s_server decrypted: the client's commands
                    data = os.read(ssrv.stdout.fileno(), 65536)
                    if not data:
                        return
                    pending += data
                    while b"\n" in pending:
                        line, pending = pending.split(b"\n", 1)
                        verb = line.strip().split(b" ")[0].upper()
                        if verb in (b"EHLO", b"HELO"):
                            reply(b"250-front.smtptls.test\r\n250 8BITMIME\r\n")
                        elif verb == b"QUIT":
                            reply(b"221 2.0.0 Bye\r\n")
                        else:
                            reply(b"250 2.0.0 Ok\r\n")
                    continue
                data = key.fileobj.recv(65536)
                if not data:
                    return
                key.data.sendall(data)
    finally:
        sel.close()
        u.close()


while True:
    c, _ = srv.accept()
    c.settimeout(30)
    try:
        if implicit or plaintext(c):
            tunnel(c)
    except OSError:
        pass
    finally:
        c.close()
