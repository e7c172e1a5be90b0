#!/usr/bin/env python3
"""Paced load for tools/bench/protect.sh (wrk has no fixed rate).
flood PORT RATE SECS [HEADER]: RATE requests/s pipelined on one keep-alive connection
  (batches every 10 ms), responses read and counted by status; prints "sent N statuses {...}".
probe PORT RATE SECS: RATE sequential requests/s on one keep-alive connection; prints
  "p50 X ms p99 Y ms n N" of the request-to-response latency."""
import socket, sys, threading, time

def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def read_response(f):
    status = int(f.readline().split()[1])
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    f.read(length)
    return status

def flood(port, rate, secs, header):
    s = connect(port)
    req = b"GET /1k.bin HTTP/1.1\r\nHost: bench\r\n" + (header.encode() + b"\r\n" if header else b"") + b"\r\n"
    counts, sent = {}, [0]
    def reader():
        f = s.makefile("rb")
        while True:
            try:
                st = read_response(f)
            except Exception:
                return
            counts[st] = counts.get(st, 0) + 1
    t = threading.Thread(target=reader, daemon=True); t.start()
    per_tick = max(1, rate // 100)
    start = time.monotonic(); tick = 0
    while time.monotonic() - start < secs:
        s.sendall(req * per_tick); sent[0] += per_tick; tick += 1
        delay = start + tick * 0.01 - time.monotonic()
        if delay > 0: time.sleep(delay)
    time.sleep(0.5)
    print("sent", sent[0], "statuses", dict(sorted(counts.items())))

def probe(port, rate, secs):
    s = connect(port); f = s.makefile("rb")
    req = b"GET /1k.bin HTTP/1.1\r\nHost: bench\r\n\r\n"
    lat = []; start = time.monotonic(); n = 0
    while time.monotonic() - start < secs:
        t0 = time.monotonic(); s.sendall(req); read_response(f); lat.append(time.monotonic() - t0); n += 1
        delay = start + n / rate - time.monotonic()
        if delay > 0: time.sleep(delay)
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    print("p50 %.3f ms p99 %.3f ms n %d" % (q(0.5), q(0.99), len(lat)))

if __name__ == "__main__":
    mode, port, rate, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    if mode == "flood": flood(port, rate, secs, sys.argv[5] if len(sys.argv) > 5 else "")
    else: probe(port, rate, secs)
