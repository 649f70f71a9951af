#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes N realistic messages into a Maildir (cur/ and new/) for the store benchmark,
deterministically: mailing-list-like traffic over three years from 500 senders, a
vocabulary of common and rare words (a few words appear in ~0.1 % of messages), threads of
1-12 messages linked by In-Reply-To/References with "Re:" subjects, 10 % unread, 3 %
flagged, 5 % with a small attachment; 1-8 KB each. Prints the total size in bytes."""
import base64
import os
import random
import sys

maildir, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261122)
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(maildir, sub), exist_ok=True)

common = ("the of and to in is for that on with as this by be are from it at or an "
          "mail client server message folder sync offline inbox draft thread reply forward "
          "attachment meeting tomorrow report budget review schedule project release team "
          "update question answer patch build test bug fix issue plan week month notes").split()
rare = "zanzibar quokka marmalade xylophone kerfuffle".split()
topics = ("release planning", "budget review", "build failure", "meeting notes",
          "offline sync", "travel plans", "quarterly report", "patch review")
days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def text(n):
    out, size = [], 0
    while size < n:
        words = [rng.choice(common) for _ in range(11)]
        if rng.random() < 0.0003:
            words[rng.randrange(11)] = rng.choice(rare)
        line = " ".join(words)
        out.append(line)
        size += len(line) + 1
    return "\n".join(out) + "\n"


start = 1640995200  # 2022-01-01
span = 3 * 365 * 86400
total = 0
threads = []  # (subject, [message ids])
for i in range(1, count + 1):
    when = start + int(span * i / count)
    t = __import__("time").gmtime(when)
    date = (f"{days[t.tm_wday]}, {t.tm_mday:02d} {months[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000")
    sender = rng.randrange(500)
    mid = f"corpus-{i}@example.org"
    headers = [f"From: Sender {sender} <sender{sender}@example.org>",
               "To: Team <team@lists.example.org>",
               f"Date: {date}", f"Message-ID: <{mid}>", "MIME-Version: 1.0"]
    if threads and rng.random() < 0.6:
        subject, ids = rng.choice(threads[-200:])
        headers.append(f"Subject: Re: {subject}")
        headers.append(f"In-Reply-To: <{ids[-1]}>")
        headers.append("References: " + " ".join(f"<{x}>" for x in ids[-10:]))
        ids.append(mid)
    else:
        subject = f"{rng.choice(topics)} {i}"
        headers.append(f"Subject: {subject}")
        threads.append((subject, [mid]))
    body = text(rng.randint(800, 7000))
    if rng.random() < 0.05:
        blob = base64.encodebytes(rng.randbytes(600)).decode()
        msg = ("\n".join(headers) + '\nContent-Type: multipart/mixed; boundary="b"\n\n--b\n'
               "Content-Type: text/plain; charset=utf-8\n\n" + body +
               '--b\nContent-Type: application/pdf\nContent-Disposition: attachment; '
               'filename="notes.pdf"\nContent-Transfer-Encoding: base64\n\n' + blob + "--b--\n")
    else:
        msg = "\n".join(headers) + "\nContent-Type: text/plain; charset=utf-8\n\n" + body
    data = msg.encode()
    total += len(data)
    r = rng.random()
    if r < 0.10:
        path = os.path.join(maildir, "new", f"{when}.M{i}P1.corpus")
    else:
        flags = "FS" if r < 0.13 else "S"
        path = os.path.join(maildir, "cur", f"{when}.M{i}P1.corpus:2,{flags}")
    with open(path, "wb") as f:
        f.write(data)
print(total)
