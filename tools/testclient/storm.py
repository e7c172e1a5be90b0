#!/usr/bin/env python3
"""Many concurrent TLS and plain HTTP/1.1 connections against edged; every byte checked.

usage: storm.py HTTP_PORT HTTPS_PORT HOST CA_FILE [CONNS_PER_KIND] [REQUESTS_PER_CONN]

Each connection sends its requests one after another on keep-alive, reads each
response exactly (status line, Content-Length, body), and then either closes
(the last request says Connection: close) or drops the socket mid-idle, so
edged closes connections of both kinds while others are being opened. Any
handshake failure, foreign byte, short or malformed response, and any TLS
close without close_notify from edged is counted.
Prints one JSON line: {"ok": N, "handshake_errors": N, "bad": N, "examples": [...]}.
All traffic goes to 127.0.0.1; every socket has a 10 s timeout.
"""
import json, socket, ssl, sys, threading

http_port, https_port, host, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
conns = int(sys.argv[5]) if len(sys.argv) > 5 else 150
per_conn = int(sys.argv[6]) if len(sys.argv) > 6 else 3
lock = threading.Lock()
result = {"ok": 0, "handshake_errors": 0, "bad": 0, "examples": []}


def note(kind, detail):
    with lock:
        result[kind] += 1
        if len(result["examples"]) < 8:
            result["examples"].append(detail)


def read_response(s, buf):
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise EOFError("eof before head, have %r" % buf[:80])
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 200 "):
        raise ValueError("status line %r" % lines[0][:80])
    length = None
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    if length is None:
        raise ValueError("no content-length in %r" % head[:200])
    while len(rest) < length:
        d = s.recv(65536)
        if not d:
            raise EOFError("eof in body")
        rest += d
    return rest[:length], rest[length:]


def one(i, secure):
    raw = socket.create_connection(("127.0.0.1", https_port if secure else http_port), timeout=10)
    s = raw
    try:
        if secure:
            ctx = ssl.create_default_context(cafile=ca)
            try:
                # Ragged EOFs raise: a close from edged must come with close_notify.
                s = ctx.wrap_socket(raw, server_hostname=host, suppress_ragged_eofs=False)
            except (ssl.SSLError, OSError) as e:
                note("handshake_errors", "tls %d: %s" % (i, e))
                return
        buf = b""
        for r in range(per_conn):
            last = r == per_conn - 1 and i % 2 == 0
            path = "/echo/storm-%s-%d-%d" % ("tls" if secure else "plain", i, r)
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path, host, "Connection: close\r\n" if last else "")).encode())
            body, buf = read_response(s, buf)
            if ('"path": "%s"' % path).encode() not in body:
                note("bad", "%s %d: body %r" % ("tls" if secure else "plain", i, body[:120]))
                return
        if buf:
            note("bad", "%s %d: foreign bytes after the responses %r" % ("tls" if secure else "plain", i, buf[:80]))
            return
        if i % 2 == 0:
            # After Connection: close nothing more may arrive but the end; over TLS
            # that end is a close_notify alert (recv returns b""), never a bare EOF,
            # which raises SSLEOFError here and counts as bad.
            extra = s.recv(4096)
            if extra:
                note("bad", "%s %d: bytes after close %r" % ("tls" if secure else "plain", i, extra[:80]))
                return
        with lock:
            result["ok"] += 1
    except (OSError, ValueError, EOFError, ssl.SSLError) as e:
        note("bad", "%s %d: %s" % ("tls" if secure else "plain", i, e))
    finally:
        s.close()


threads = []
for i in range(conns):
    for secure in (True, False):
        t = threading.Thread(target=one, args=(i, secure))
        t.start()
        threads.append(t)
    if len(threads) >= 64:
        for t in threads[:32]:
            t.join(30)
        threads = threads[32:]
for t in threads:
    t.join(30)
print(json.dumps(result))
