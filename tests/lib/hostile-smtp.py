#!/usr/bin/env python3
# hostile-smtp.py: a scripted SMTP server on 127.0.0.1 for tests of hostile behaviour
#
#   hostile-smtp.py MODE CERT KEY
#
# Binds 127.0.0.1 port 0, prints "ready PORT" on stdout, serves one connection in MODE,
# then exits. Modes: inject (bytes after the STARTTLS 220), endless (a multi-line reply
# that never ends), longline (a reply line of 100 kB), slow (a banner, then silence),
# drip (a reply one byte every 100 ms, never complete), early (replies before commands),
# latetext (plaintext instead of the TLS handshake),
# escapes (terminal escape sequences in the banner), hangup (closes after the banner),
# data250 (no STARTTLS; takes MAIL and RCPT, then answers DATA with 250 instead of 354),
# tlsfirst (a TLS alert record where the greeting is due, as a TLS port that gives up).
import socket
import ssl
import time
import sys

mode, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print("ready", srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
conn.settimeout(30)
f = conn.makefile("rb")


def line():
    return f.readline(4096)


def say(b):
    conn.sendall(b)


try:
    if mode == "slow":
        say(b"220 slow.smtptls.test ESMTP\r\n")
        line()  # EHLO, never answered
        conn.recv(1)
    elif mode == "drip":
        say(b"220 drip.smtptls.test ESMTP\r\n")
        line()
        try:
            for _ in range(600):  # a byte every 100 ms for a minute: never a whole reply
                say(b"250-dripping\r\n"[_ % 14:_ % 14 + 1])
                time.sleep(0.1)
        except OSError:
            pass
    elif mode == "early":
        # the banner, the EHLO reply and the STARTTLS 220 before any command
        say(b"220 early.smtptls.test ESMTP\r\n250-early.smtptls.test\r\n250 STARTTLS\r\n220 go\r\n")
        line()
    elif mode == "latetext":
        # plaintext in answer to the ClientHello: injection in a later read
        say(b"220 late.smtptls.test ESMTP\r\n")
        line()
        say(b"250-late.smtptls.test\r\n250 STARTTLS\r\n")
        line()
        say(b"220 2.0.0 Ready to start TLS\r\n")
        conn.recv(5)  # the ClientHello has begun
        say(b"250 injected\r\n")
        conn.recv(65536)
    elif mode == "data250":
        say(b"220 data250.smtptls.test ESMTP\r\n")
        line()
        say(b"250 data250.smtptls.test\r\n")
        for reply in (b"250 2.1.0 Ok\r\n", b"250 2.1.5 Ok\r\n", b"250 2.0.0 Ok: no message\r\n",
                      b"221 2.0.0 Bye\r\n"):
            if not line():
                break
            say(reply)
    elif mode == "tlsfirst":
        say(bytes([21, 3, 3, 0, 2, 2, 40]))  # alert, TLS 1.2, fatal handshake_failure
        conn.recv(65536)
    elif mode == "hangup":
        say(b"220 hangup.smtptls.test ESMTP\r\n")
        line()
    elif mode == "escapes":
        say(b"220 \x1b[31mred\x1b]0;title\x07 \xff\xfe ESMTP\r\n")
        line()
        say(b"250 esc.smtptls.test\r\n")
        line()
        say(b"221 bye\r\n")
    elif mode == "endless":
        say(b"220 endless.smtptls.test ESMTP\r\n")
        line()
        try:
            while True:
                say(b"250-again and again\r\n" * 64)
        except OSError:
            pass
    elif mode == "longline":
        say(b"220 long.smtptls.test ESMTP\r\n")
        line()
        try:
            say(b"250 " + b"x" * 100000 + b"\r\n")
        except OSError:
            pass
    elif mode == "inject":
        say(b"220 inject.smtptls.test ESMTP\r\n")
        line()
        say(b"250-inject.smtptls.test\r\n250 STARTTLS\r\n")
        line()
        say(b"220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 after STARTTLS\r\n")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
            tf = tls.makefile("rb")
            tf.readline(4096)
            tls.sendall(b"250 inject.smtptls.test\r\n")
            tf.readline(4096)
            tls.sendall(b"221 bye\r\n")
        except (ssl.SSLError, OSError):
            pass  # the injected bytes may break the handshake: that is for the client to say
except (OSError, socket.timeout):
    pass
conn.close()
