#!/usr/bin/env python3
"""Opens N keep-alive connections to a proxy, sends one request on each, reads
the response, then holds them idle and reports the proxy's RSS growth.

usage: idle_conns.py PORT PID N HOST
Prints: rss_before_kib rss_after_kib per_conn_bytes
"""
import socket, sys, time

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def main():
    port, pid, n, host = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    req = f"GET /1k.bin HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    # Warm up: one connection, a few requests, so lazily built state exists.
    w = socket.create_connection(("127.0.0.1", port))
    for _ in range(3):
        w.sendall(req); read_response(w)
    w.close()
    time.sleep(0.5)
    before = rss_kib(pid)
    socks = []
    deadline = time.time() + 120
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(req)
        read_response(s)
        socks.append(s)
        if time.time() > deadline:
            break
    # Idle for 2.5 s: long enough for edged to park them (after 1 s idle, at a
    # sweep), as any connection idle for longer is.
    time.sleep(2.5)
    after = rss_kib(pid)
    print(before, after, round((after - before) * 1024 / max(1, len(socks))))
    for s in socks:
        s.close()

def read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("connection closed early")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        body += s.recv(65536)

if __name__ == "__main__":
    main()
