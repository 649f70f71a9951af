#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes N realistic messages into a Maildir's cur/ for the benchmarks, deterministically:
80 % short text (2-10 KB), 15 % longer (10-60 KB), 4.5 % with an attachment (60-250 KB),
0.5 % with a large attachment (1-3 MB), about 27 KB on average. Prints the total size."""
import base64
import os
import random
import sys

maildir, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261122)
os.makedirs(os.path.join(maildir, "cur"), exist_ok=True)
os.makedirs(os.path.join(maildir, "new"), exist_ok=True)
os.makedirs(os.path.join(maildir, "tmp"), exist_ok=True)
words = ("mail client server message folder sync offline inbox draft thread reply "
         "forward attachment meeting tomorrow report budget review schedule").split()


def text(n):
    out, size = [], 0
    while size < n:
        line = " ".join(rng.choice(words) for _ in range(12))
        out.append(line)
        size += len(line) + 2
    return "\r\n".join(out) + "\r\n"


total = 0
for i in range(1, count + 1):
    r = rng.random()
    headers = (f"From: Sender {i % 97} <sender{i % 97}@example.org>\r\n"
               f"To: Alice <alice@example.test>\r\n"
               f"Subject: Benchmark message {i} about {rng.choice(words)}\r\n"
               f"Date: Mon, 2 Nov 2026 {i % 24:02d}:{i % 60:02d}:00 +0000\r\n"
               f"Message-ID: <bench-{i}@example.org>\r\nMIME-Version: 1.0\r\n")
    if r < 0.95:
        size = rng.randint(2000, 10000) if r < 0.80 else rng.randint(10000, 60000)
        body = headers + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text(size)
    else:
        size = rng.randint(60000, 250000) if r < 0.995 else rng.randint(1000000, 3000000)
        blob = base64.encodebytes(rng.randbytes(size * 3 // 4)).decode().replace("\n", "\r\n")
        body = (headers + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
                "Content-Type: text/plain\r\n\r\n" + text(2000) +
                '--b\r\nContent-Type: application/octet-stream; name="f.bin"\r\n'
                "Content-Transfer-Encoding: base64\r\n\r\n" + blob + "--b--\r\n")
    data = body.encode()
    total += len(data)
    name = f"{1700000000 + i}.M{i}P1.bench,S={len(data)}:2,S"
    with open(os.path.join(maildir, "cur", name), "wb") as f:
        f.write(data)
print(total)
