#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The practical limit for bench/pop3-fetch.sh: POP3S login, STAT, then RETR of every
message pipelined (a window of WINDOW commands on the wire, as the server offers
PIPELINING), bytes read in large chunks and only the end-of-response lines counted,
nothing parsed or unstuffed. Prints "<seconds> <messages> <bytes>".

   raw-pop3-fetch.py HOST PORT CA_FILE USER PASSWORD"""
import socket
import ssl
import sys
import time

WINDOW = 128
host, port, ca, user, password = sys.argv[1:6]
start = time.monotonic()
ctx = ssl.create_default_context(cafile=ca)
sock = ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host)
buf = b""


def line():
    global buf
    while b"\r\n" not in buf:
        chunk = sock.recv(1 << 18)
        if not chunk:
            sys.exit("connection closed")
        buf += chunk
    first, buf = buf.split(b"\r\n", 1)
    return first


def command(text):
    sock.sendall(text.encode() + b"\r\n")
    reply = line()
    if not reply.startswith(b"+OK"):
        sys.exit(f"{text.split()[0]}: {reply!r}")
    return reply


line()
command(f"USER {user}")
command(f"PASS {password}")
count = int(command("STAT").split()[1])

# Every multi-line response ends with CRLF "." CRLF; inside one, stuffing makes that
# sequence impossible, so counting it counts the messages. The first one may begin right
# after the status line, hence the CRLF kept in front.
sent = done = total = 0
tail = b"\r\n" + buf
total = len(buf)
while done < count:
    if sent < count and sent - done < WINDOW:
        batch = min(count, done + WINDOW) - sent
        sock.sendall(b"".join(f"RETR {n}\r\n".encode() for n in range(sent + 1, sent + batch + 1)))
        sent += batch
    done += tail.count(b"\r\n.\r\n")
    if done >= count:
        break
    chunk = sock.recv(1 << 18)
    if not chunk:
        sys.exit("connection closed")
    total += len(chunk)
    # The marker may straddle two reads: keep the last bytes of this one in front.
    tail = tail[-4:] + chunk
sock.sendall(b"QUIT\r\n")
print(f"{time.monotonic() - start:.3f} {done} {total}")
