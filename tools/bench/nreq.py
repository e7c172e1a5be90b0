#!/usr/bin/env python3
"""Sends N GETs for PATH on one keep-alive connection to 127.0.0.1:PORT, reading
each response whole (Content-Length). usage: nreq.py PORT PATH N
A PATH with {i} gets a different number there in each request.
HEADER="Name: value" adds a field to each request."""
import os, socket, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
extra = os.environ.get("HEADER", "")
req = f"GET {path} HTTP/1.1\r\nHost: bench\r\n{extra + chr(13) + chr(10) if extra else ''}\r\n".encode()
vary = b"{i}" in req   # a PATH with {i}: each request's index in its URL (keys spread over a hash ring)
buf = b""
for i in range(n):
    s.sendall(req.replace(b"{i}", str(i * 7919 % 100000).encode()) if vary else req)
    while True:
        h = buf.find(b"\r\n\r\n")
        if h >= 0:
            head = buf[:h].decode()
            ln = int([l.split(":")[1] for l in head.split("\r\n") if l.lower().startswith("content-length")][0])
            if len(buf) >= h + 4 + ln:
                buf = buf[h + 4 + ln:]
                break
        buf += s.recv(65536)
