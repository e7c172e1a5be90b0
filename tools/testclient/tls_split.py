#!/usr/bin/env python3
"""A TLS client that controls where its bytes break: requests split across TLS
records sent apart, several requests in one record, and one record split across
TCP writes sent apart. Each case must be answered in full; a server that stops
reading too early (edge-triggered readiness lost) leaves it hanging.

usage: tls_split.py PORT HOST PATH
Prints one line per case, "ok NAME" or "FAIL NAME: why"; exits 1 on any failure.
"""
import socket, ssl, sys, time

port, host, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
req = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


class Conn:
    def __init__(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out, server_hostname=host)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(10)
        self.buf = b""
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self.inc.write(self.sock.recv(65536))
        self.flush()

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def record(self, data):
        """One TLS record carrying `data`, as raw bytes (not sent)."""
        self.tls.write(data)
        return self.out.read()

    def responses(self, n):
        """Reads n whole responses (Content-Length framed); returns their statuses."""
        statuses = []
        while len(statuses) < n:
            h = self.buf.find(b"\r\n\r\n")
            if h >= 0:
                head = self.buf[:h].decode("latin-1").split("\r\n")
                length = 0
                for line in head[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v.strip())
                if len(self.buf) >= h + 4 + length:
                    statuses.append(int(head[0].split()[1]))
                    self.buf = self.buf[h + 4 + length:]
                    continue
            try:
                self.buf += self.tls.read(65536)
            except ssl.SSLWantReadError:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise RuntimeError("closed by the server")
                self.inc.write(chunk)
        return statuses


def case(name, fn):
    try:
        c = Conn()
        statuses = fn(c)
        if all(s == 200 for s in statuses):
            print("ok", name)
            return True
        print(f"FAIL {name}: statuses {statuses}")
    except Exception as e:  # timeouts and resets are failures of the case
        print(f"FAIL {name}: {e!r}")
    return False


def split_records(c):
    out = []
    for cut in (1, 5, len(req) // 2, len(req) - 1):
        c.sock.sendall(c.record(req[:cut]))
        time.sleep(0.05)
        c.sock.sendall(c.record(req[cut:]))
        out += c.responses(1)
    return out


def pipelined_in_one_record(c):
    c.sock.sendall(c.record(req * 3))
    return c.responses(3)


def record_split_across_writes(c):
    out = []
    for _ in range(3):
        raw = c.record(req)
        c.sock.sendall(raw[:3])
        time.sleep(0.05)
        c.sock.sendall(raw[3:len(raw) // 2])
        time.sleep(0.05)
        c.sock.sendall(raw[len(raw) // 2:])
        out += c.responses(1)
    return out


def two_records_one_write(c):
    c.sock.sendall(c.record(req) + c.record(req))
    return c.responses(2)


ok = all([case("split-records", split_records), case("pipelined-in-one-record", pipelined_in_one_record),
          case("record-split-across-writes", record_split_across_writes), case("two-records-one-write", two_records_one_write)])
sys.exit(0 if ok else 1)
