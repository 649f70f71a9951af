#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The practical limit for bench/imap-fetch.sh: one pipelined UID FETCH over TLS, bytes
read in large chunks until the tagged OK, nothing parsed. Prints "<seconds> <bytes>".

   raw-imap-fetch.py HOST PORT CA_FILE USER PASSWORD MAILBOX headers|bodies"""
import re
import socket
import ssl
import sys
import time

host, port, ca, user, password, mailbox, mode = sys.argv[1:8]
items = ("(UID BODY.PEEK[])" if mode == "bodies"
         else "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)")
start = time.monotonic()
ctx = ssl.create_default_context(cafile=ca)
sock = ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host)


def until(pattern):
    buf = b""
    while not re.search(pattern, buf):
        chunk = sock.recv(1 << 18)
        if not chunk:
            sys.exit("connection closed")
        buf += chunk
    return buf


until(rb"\r\n")
sock.sendall(f'a1 LOGIN "{user}" "{password}"\r\na2 EXAMINE "{mailbox}"\r\n'.encode())
if not re.search(rb"\r\na2 OK", until(rb"\r\na2 [^\r]*\r\n")):
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
