#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The practical limit for bench/imap-fetch.sh and bench/imap-sync.sh over TLS, nothing
parsed beyond what the protocol needs. Prints "<seconds> <bytes>".

   raw-imap-fetch.py HOST PORT CA_FILE USER PASSWORD MAILBOX headers|bodies|resync|resync-open

headers, bodies: one pipelined UID FETCH 1:* of the summary items or of every full body,
read in large chunks until the tagged OK.
resync: a no-change QRESYNC resync of the whole account: each mailbox's UIDVALIDITY and
HIGHESTMODSEQ are read first (not timed), then timed from the connection on: LOGIN,
ENABLE QRESYNC, LIST, and SELECT (QRESYNC (uidvalidity modseq)) of every mailbox in turn.
MAILBOX is not used there.
resync-open: the same resync on a session already logged in with QRESYNC enabled (what a
client that keeps its connection pays): LIST and the SELECTs timed; prints "<seconds>
<bytes> <seconds of MAILBOX's SELECT>"."""
import re
import socket
import ssl
import sys
import time

host, port, ca, user, password, mailbox, mode = sys.argv[1:8]
items = ("(UID BODY.PEEK[])" if mode == "bodies"
         else "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)")


def connect():
    ctx = ssl.create_default_context(cafile=ca)
    return ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host)


def until(sock, pattern):
    buf = b""
    while not re.search(pattern, buf):
        chunk = sock.recv(1 << 18)
        if not chunk:
            sys.exit("connection closed")
        buf += chunk
    return buf


def command(sock, tag, text):
    """Sends one command and returns its whole response, which must end in OK."""
    sock.sendall(f"{tag} {text}\r\n".encode())
    buf = until(sock, rb"(^|\r\n)" + tag.encode() + rb" [^\r]*\r\n")
    if not re.search(rb"(^|\r\n)" + tag.encode() + rb" OK", buf):
        sys.exit(f"{text.split()[0]} failed: {buf[-200:]!r}")
    return buf


def mailboxes(sock, tag):
    listing = command(sock, tag, 'LIST "" "*"')
    return [m.strip(b'"').decode()
            for m in re.findall(rb'\* LIST \([^)]*\) (?:"[^"]*"|NIL) ([^\r]*)\r\n', listing)]


if mode in ("resync", "resync-open"):
    sock = connect()
    until(sock, rb"\r\n")
    command(sock, "s1", f'LOGIN "{user}" "{password}"')
    state = {}
    for name in mailboxes(sock, "s2"):
        status = command(sock, "s3", f'STATUS "{name}" (UIDVALIDITY HIGHESTMODSEQ)')
        state[name] = (re.search(rb"UIDVALIDITY (\d+)", status).group(1).decode(),
                       re.search(rb"HIGHESTMODSEQ (\d+)", status).group(1).decode())
    if mode == "resync":
        sock.sendall(b"s4 LOGOUT\r\n")
        sock.close()
        start = time.monotonic()
        sock = connect()
        total = len(until(sock, rb"\r\n"))
        total += len(command(sock, "a1", f'LOGIN "{user}" "{password}"'))
    else:
        total = 0
    total += len(command(sock, "a2", "ENABLE QRESYNC"))
    if mode == "resync-open":
        start = time.monotonic()
    selected = 0.0
    for i, name in enumerate(mailboxes(sock, "a3")):
        validity, modseq = state[name]
        began = time.monotonic()
        total += len(command(sock, f"b{i}", f'SELECT "{name}" (QRESYNC ({validity} {modseq}))'))
        if name == mailbox:
            selected = time.monotonic() - began
    if mode == "resync":
        print(f"{time.monotonic() - start:.4f} {total}")
    else:
        print(f"{time.monotonic() - start:.4f} {total} {selected:.4f}")
    sock.sendall(b"a4 LOGOUT\r\n")
    sys.exit(0)

start = time.monotonic()
sock = connect()
until(sock, rb"\r\n")
sock.sendall(f'a1 LOGIN "{user}" "{password}"\r\na2 EXAMINE "{mailbox}"\r\n'.encode())
if not re.search(rb"\r\na2 OK", until(sock, rb"\r\na2 [^\r]*\r\n")):
    sys.exit("EXAMINE failed")
sock.sendall(f"a3 UID FETCH 1:* {items}\r\n".encode())
total, window = 0, b""
while b"\r\na3 OK" not in window:
    chunk = sock.recv(1 << 18)
    if not chunk:
        sys.exit("connection closed")
    total += len(chunk)
    # The marker may straddle two reads: look at the end of the last one and this one.
    window = window[-64:] + chunk
print(f"{time.monotonic() - start:.3f} {total}")
