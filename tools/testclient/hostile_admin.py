#!/usr/bin/env python3
"""A broken or hostile admin API node for edgectl's tests, on 127.0.0.1.

usage: hostile_admin.py MODE    (prints the bound port, then serves until killed;
                                 it exits by itself after 120 s)
modes:
  ansi     400 whose error message carries terminal escapes (clear screen, retitle)
  big      200 with a 20 MiB body
  silent   reads the request and never answers
  trickle  answers one byte every 0.3 s, never finishing
  reset    reads the request, then resets the connection (RST)
"""
import socket, struct, sys, threading, time

mode = sys.argv[1]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
print(srv.getsockname()[1], flush=True)
threading.Timer(120, lambda: sys.exit(0)).start()


def read_request(c):
    data = b""
    c.settimeout(10)
    while b"\r\n\r\n" not in data:
        d = c.recv(4096)
        if not d:
            return
        data += d


def serve(c):
    try:
        read_request(c)
        if mode == "ansi":
            body = b'{"error": "\\u001b[2J\\u001b]0;pwned\\u0007gone\\u009b31m"}'
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        elif mode == "big":
            n = 20 << 20
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % n)
            chunk = b"a" * 65536
            for _ in range(n // len(chunk)):
                c.sendall(chunk)
        elif mode == "silent":
            time.sleep(60)
        elif mode == "trickle":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(200):
                c.sendall(b"x")
                time.sleep(0.3)
        elif mode == "reset":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    finally:
        c.close()


while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
