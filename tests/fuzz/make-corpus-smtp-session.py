#!/usr/bin/env python3
# make-corpus-smtp-session.py: write the seed corpus of fuzz-smtp-session (whole sessions,
# in the opcodes the target decodes): python3 make-corpus-smtp-session.py tests/fuzz/corpus-smtp-session
import os, sys
out = sys.argv[1]
CMD = {"EHLO":0,"HELO":1,"MAIL":2,"MAILSIZE":3,"RCPT":4,"DATA":5,"RSET":6,"NOOP":7,"QUIT":8,
       "STARTTLS":9,"AUTHPLAIN":10,"AUTHLOGIN":11,"VRFY":12,"NOOP64":13,"TX":14,"BDAT":15}
def cmd(n): return bytes([1, CMD[n]])
def raw(b):
    r = b""
    while b:
        c, b = b[:64], b[64:]
        r += bytes([0, len(c) - 1]) + c
    return r
def lines(*kinds): return bytes([2, len(kinds) - 1]) + bytes(kinds)
END = bytes([3])
def drain(partial=None): return bytes([4, 0 if partial is None else partial | 1])
def nodrain(n): return bytes([5, n])
def clock(ms7=None, s=None): return bytes([6, (s | 0x80) if s is not None else ms7])
def answers(bits): return bytes([7, bits & 0xff, bits >> 8])
seeds = {
 "mail": bytes([0]) + cmd("EHLO") + cmd("MAIL") + cmd("RCPT") + cmd("DATA") + lines(0, 6, 1, 2, 3, 4, 7) + END + cmd("QUIT"),
 "pipelined": bytes([0]) + cmd("EHLO") + cmd("TX") + lines(0, 6, 0) + END + cmd("NOOP64") + cmd("QUIT"),
 "refused": bytes([0]) + answers(0x5555) + cmd("EHLO") + cmd("MAIL") + cmd("RCPT") + cmd("RCPT") + cmd("DATA") + lines(0) + END + cmd("RSET"),
 "toolong": bytes([0]) + cmd("HELO") + cmd("MAIL") + cmd("RCPT") + cmd("DATA") + lines(5, 0) + END + cmd("QUIT"),
 "toobig": bytes([32]) + cmd("HELO") + cmd("MAIL") + cmd("RCPT") + cmd("DATA") + lines(7, 7, 7, 7) + lines(0) + END + cmd("NOOP"),
 "noread": bytes([0]) + nodrain(255) + cmd("EHLO") + b"".join(cmd("VRFY") for _ in range(30)) + cmd("NOOP64") * 40 + drain(7) + cmd("NOOP64") * 5 + drain() + cmd("NOOP"),
 "noread-data": bytes([0]) + cmd("EHLO") + cmd("TX") + nodrain(255) + cmd("NOOP64") * 30 + END + cmd("NOOP64") * 30 + clock(s=11) + cmd("NOOP"),
 "trickle-line": bytes([0]) + cmd("EHLO") + b"".join(raw(b"N") + clock(ms7=200) for _ in range(12)) + clock(s=11),
 "trickle-data": bytes([0]) + cmd("EHLO") + cmd("MAIL") + cmd("RCPT") + cmd("DATA") + b"".join(raw(b"x") + clock(ms7=140) for _ in range(30)) + clock(s=10) + END,
 "slow-data": bytes([0]) + cmd("EHLO") + cmd("MAIL") + cmd("RCPT") + cmd("DATA") + b"".join(lines(7, 7, 7) + clock(s=2) for _ in range(8)) + END + cmd("QUIT"),
 "starttls": bytes([0]) + cmd("EHLO") + cmd("STARTTLS") + cmd("MAIL") + cmd("EHLO") + cmd("MAIL") + cmd("RCPT") + cmd("DATA") + lines(0) + END,
 "starttls-fail": bytes([128]) + cmd("EHLO") + cmd("STARTTLS") + cmd("EHLO"),
 "auth": bytes([4 | 8]) + cmd("EHLO") + cmd("AUTHPLAIN") + cmd("AUTHLOGIN") + raw(b"YQ==\r\ncA==\r\n") + cmd("TX") + lines(1) + END,
 "smuggle": bytes([0]) + cmd("EHLO") + cmd("TX") + raw(b"Subject: s\r\n\r\nfirst\n.\nMAIL FROM:<e@x>\r\nsecond\r.\rRCPT TO:<v@x>\r\n") + END,
 "behind-data": bytes([0]) + cmd("EHLO") + cmd("MAIL") + cmd("RCPT") + raw(b"DATA\r\nbody\r\n.\r\nNOOP\r\n") + cmd("QUIT"),
 "split-end": bytes([0]) + cmd("EHLO") + cmd("TX") + lines(0) + raw(b".") + clock(ms7=1) + raw(b"\r") + raw(b"\n") + cmd("QUIT"),
 "bdat-rate": bytes([64]) + cmd("EHLO") + cmd("BDAT") + cmd("TX") + b"".join(raw(b"y" * 60) + clock(s=3) for _ in range(5)) + END,
}
os.makedirs(out, exist_ok=True)
for k, v in seeds.items():
    open(os.path.join(out, k), "wb").write(v)
