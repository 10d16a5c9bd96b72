#!/usr/bin/env python3
"""Sends requests whose obs-fold follows an empty header value, in one write
and split after the CRLF, to a running soldr (ingest on 127.0.0.1:PORT,
domain wh.localhost). Each pair should get the same answer (400)."""
import re
import socket
import sys
import time

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8080


def send(pieces):
    s = socket.create_connection(("127.0.0.1", PORT))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for p in pieces:
            s.sendall(p)
            time.sleep(0.2)
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except OSError:
        pass
    return [m.decode() for m in re.findall(rb"HTTP/1\.1 \d{3}", data)]


host = b"Host: t.wh.localhost\r\n"
cases = {
    "X-A": (b"POST /c HTTP/1.1\r\n" + host + b"X-A:\r\n", b" folded\r\nContent-Length: 2\r\n\r\nhi"),
    "Content-Length": (b"POST /c HTTP/1.1\r\n" + host + b"Content-Length:\r\n",
                       b" 5\r\n\r\nhelloGET /smuggled HTTP/1.1\r\n" + host + b"\r\n"),
    "Transfer-Encoding": (b"POST /c HTTP/1.1\r\n" + host + b"Transfer-Encoding:\r\n",
                          b" chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
}
for name, (a, b) in cases.items():
    print(f"{name:18} one write: {send([a + b])}  split: {send([a, b])}")
