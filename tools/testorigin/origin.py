#!/usr/bin/env python3
"""A small scriptable HTTP/1.1 origin for edge's integration tests.

usage: origin.py PORT NAME [--tls CERT KEY] [--client-ca CA]
  (PORT 0 picks a free port; the bound port is printed)
  --tls serves HTTPS with that certificate; --client-ca then requires client certificates.

Endpoints:
  /echo...            JSON: method, path, headers, body length
  /bytes/N            N bytes with Content-Length
  /chunked/N          N bytes, chunked
  /close/N            N bytes, no length, connection closed after the body
  /stream/N           N bytes with Content-Length, written in 64 KiB pieces
  /text/N             N bytes of text (text/html, ETag "text-N", Cache-Control max-age=600)
  /ranged/N[?v=V]     the /text/N bytes as a file server sends them: ETag "ranged-N-V",
                      Cache-Control max-age=600, and a single Range answered 206 (416 past the end)
  /gate/N/NAME        N bytes (Content-Length, max-age=600): the first half at once, the rest
                      after POST /__release/NAME; after POST /__break/NAME the connection closes instead
  /rgate/N/NAME       the same with ETag "rgate-N", and a single Range (If-Range that tag or none)
                      answered 206 at once; its requests' headers logged (/__log)
  /breaks/N/K/NAME    the /text/N bytes, ETag "breaks-N", a single Range answered 206; the first K
                      answers for NAME send half their body and close; requests logged (/__log)
  /gzipped/KIND/N     gzip-encoded body (Content-Encoding: gzip) of N bytes of KIND:
                      "text" (the /text/N bytes) or "zeros" (a decompression bomb)
  /slow/MS            answers after MS milliseconds
  /hangup-next        200 (keep-alive); the next request on the same connection gets no
                      answer: the connection is closed (an origin whose keep-alive ran out)
  /status/N           an empty response with status N
  /upload             (POST/PUT) reads the body and answers its length and sha256
  /raw/NAME           a canned malformed response (see RAW)
  /stats              JSON: connections that carried a request (control calls and /stats
                      aside), requests served, and the most requests
                      in progress at once (peak; /stats itself not counted)
  POST /__script      {"path": P, "responses": [{"status", "headers", "body", "delay_ms", "chunked",
                      "interim", "ranges", "body_text", "body_seed", "body_part"}...]}: requests for P get these in turn (the last repeats); header
                      values may say {now}, {now+N} or {now-N} for an IMF-fixdate relative to now,
                      {rfc850:now+N} or {asctime:now+N} for the obsolete formats; "interim" is a
                      list of {"status", "headers"} 1xx responses sent first; "ranges": true answers
                      a single Range with a 206 of the body (416 past its end); "body_text": N makes the
                      body the /text/N bytes (of another text with "body_seed"); "body_part": [A, B]
                      sends only bytes A-B of it as a 206 with their Content-Range, whatever was asked
  /__log?path=P       JSON: the request headers each request for P (scripted, or /ranged) carried, in order
  POST /__clock       {"offset": N}: this origin's clock (Date, {now}) runs N seconds ahead
"""
import email.utils, gzip, hashlib, json, re, socket, ssl, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATS = {"connections": 0, "requests": 0, "active": 0, "peak": 0}
OFFSET = [0.0]  # seconds added to this origin's clock (POST /__clock)
SCRIPTS = {}   # path -> list of responses
LOGS = {}      # path -> list of request header lists
GATES = {}     # name -> threading.Event (/gate, /__release)
BROKEN = set() # gate names whose held responses end short (/__break)
BREAKS = {}    # /breaks name -> answers given so far
SEEN = []      # requests answered by the default handler: method, path, body length and sha256, headers (/__seen)


def now():
    return time.time() + OFFSET[0]


def text_bytes(n, seed=12345):
    """Deterministic text that compresses like a page (another seed, other text)."""
    words = [b"edge", b"cache", b"tenant", b"origin", b"<div class=item>", b"</div>", b"brotli", b"gzip", b"\n"]
    out, x = bytearray(), seed
    while len(out) < n:
        x = (x * 1103515245 + 12345) % (1 << 31)
        out += words[(x >> 16) % len(words)] + b" "
    return bytes(out[:n])


def byte_range(value, size):
    """A single `bytes=` range of a body `size` long: (first, last), "416", or None (send it all)."""
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", (value or "").strip())
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    if m.group(1) == "":
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else "416"
    first = int(m.group(1))
    last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if first >= size:
        return "416"
    return None if last < first else (first, last)


def render(value):
    def sub(m):
        t = now() + int(m.group(2) or 0)
        if m.group(1) == "rfc850:":
            return time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(t))
        if m.group(1) == "asctime:":
            return time.asctime(time.gmtime(t))
        return email.utils.formatdate(t, usegmt=True)
    return re.sub(r"\{(rfc850:|asctime:)?now([+-]\d+)?\}", sub, value)
LOCK = threading.Lock()
NAME = sys.argv[2] if len(sys.argv) > 2 else "origin"

RAW = {
    "cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "two-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
    "nul": b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 5\r\n\r\nhello",
    "garbage": b"this is not http\r\n\r\n",
    "truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this much",
    # A chunk size that overflows 64 bits, after a good chunk: the head has gone out by then.
    "chunk-overflow": b"HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                      b"fffffffffffffffff1\r\nx\r\n0\r\n\r\n",
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body go out as separate writes; without this, Nagle holds the body for
    # the proxy's delayed ACK (about 40 ms on every uncached response).
    disable_nagle_algorithm = True

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError):
                self.request.close()
                raise
        super().setup()

    def log_message(self, *args):
        pass

    def count(self):
        with LOCK:
            STATS["requests"] += 1

    def send_body(self, status, body, ctype="application/octet-stream", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Origin-Name", NAME)
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        h = hashlib.sha256()
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    piece = self.rfile.read(min(left, 1 << 16))
                    h.update(piece); n += len(piece); left -= len(piece)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                piece = self.rfile.read(min(left, 1 << 16))
                if not piece:
                    break
                h.update(piece); n += len(piece); left -= len(piece)
        return n, h.hexdigest()

    def scripted(self, path):
        with LOCK:
            script = SCRIPTS.get(path)
            if script is None:
                return False
            resp = script.pop(0) if len(script) > 1 else script[0]
            LOGS.setdefault(path, []).append([[k, v] for k, v in self.headers.items()])
            STATS["requests"] += 1
        self.read_body()
        if resp.get("delay_ms"):
            time.sleep(resp["delay_ms"] / 1000.0)
        body = resp.get("body", "").encode()
        if "body_text" in resp:
            body = text_bytes(resp["body_text"], resp.get("body_seed", 12345))
        status = resp.get("status", 200)
        extra = {}
        if "body_part" in resp:
            a, b = resp["body_part"]
            status, extra = 206, {"Content-Range": "bytes %d-%d/%d" % (a, b, len(body))}
            body = body[a:b + 1]
        if resp.get("ranges") and status == 200:
            r = byte_range(self.headers.get("Range"), len(body))
            if r == "416":
                status, body, extra = 416, b"", {"Content-Range": "bytes */%d" % len(body)}
            elif r:
                status, extra = 206, {"Content-Range": "bytes %d-%d/%d" % (r[0], r[1], len(body))}
                body = body[r[0]:r[1] + 1]
        for interim in resp.get("interim", []):
            head = "HTTP/1.1 %d Interim\r\n" % interim["status"]
            for k, v in interim.get("headers", {}).items():
                head += "%s: %s\r\n" % (k, render(v))
            self.wfile.write((head + "\r\n").encode())
            self.wfile.flush()
            time.sleep(0.02)
        self.send_response_only(status)
        headers = dict(resp.get("headers", {}), **extra)
        if "Date" not in headers:
            self.send_header("Date", email.utils.formatdate(now(), usegmt=True))
        for k, v in headers.items():
            if v is not None:
                self.send_header(k, render(v))
        chunked = resp.get("chunked", False) and status not in (204, 304)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif status != 304 and status >= 200 and status not in (204,):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            if chunked:
                # Two chunks and a terminal one: the body does not arrive in one piece.
                half = len(body) // 2
                for part in (body[:half], body[half:]):
                    if part:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(body)
        return True

    def handle_any(self):
        if getattr(self, "hangup_next", False):
            # Close without answering (and without reading a body).
            self.close_connection = True
            return
        counted = not self.path.startswith("/stats") and not self.path.startswith("/__")
        if counted:
            with LOCK:
                if not getattr(self, "seen", False):
                    self.seen = True
                    STATS["connections"] += 1
                STATS["active"] += 1
                STATS["peak"] = max(STATS["peak"], STATS["active"])
        try:
            self.dispatch()
        finally:
            if counted:
                with LOCK:
                    STATS["active"] -= 1

    def dispatch(self):
        path = self.path
        if path == "/__script" and self.command == "POST":
            n = int(self.headers.get("Content-Length", "0"))
            spec = json.loads(self.rfile.read(n))
            with LOCK:
                SCRIPTS[spec["path"]] = spec["responses"]
                LOGS[spec["path"]] = []
            return self.send_body(200, b"ok")
        if path == "/__clock" and self.command == "POST":
            n = int(self.headers.get("Content-Length", "0"))
            OFFSET[0] = float(json.loads(self.rfile.read(n))["offset"])
            return self.send_body(200, b"ok")
        if path.startswith("/__release/") and self.command == "POST":
            with LOCK:
                GATES.setdefault(path.split("/")[2], threading.Event()).set()
            return self.send_body(200, b"ok")
        if path.startswith("/__break/") and self.command == "POST":
            with LOCK:
                BROKEN.add(path.split("/")[2])
                GATES.setdefault(path.split("/")[2], threading.Event()).set()
            return self.send_body(200, b"ok")
        if path == "/__seen":
            with LOCK:
                body = json.dumps(SEEN).encode()
            return self.send_body(200, body, "application/json")
        if path.startswith("/__log"):
            want = path.split("path=", 1)[1] if "path=" in path else ""
            from urllib.parse import unquote
            with LOCK:
                body = json.dumps(LOGS.get(unquote(want), [])).encode()
            return self.send_body(200, body, "application/json")
        if self.scripted(path):
            return
        parts = path.split("?")[0].strip("/").split("/")
        head = parts[0] if parts else ""
        arg = parts[1] if len(parts) > 1 else ""
        if head == "stats":
            with LOCK:
                # Connections that carried a request other than /stats and /__ control calls.
                body = json.dumps({"connections": STATS["connections"], "requests": STATS["requests"], "peak": STATS["peak"]}).encode()
            return self.send_body(200, body, "application/json")
        self.count()
        if head == "upload":
            n, digest = self.read_body()
            return self.send_body(200, json.dumps({"length": n, "sha256": digest}).encode(), "application/json")
        n, digest = self.read_body()
        if head == "bytes":
            return self.send_body(200, b"x" * int(arg))
        if head == "breaks":
            # /breaks/N/K/NAME: the /text/N bytes with an ETag and single Ranges; the first K
            # answers for NAME send half their body, then close the connection.
            size, k, name = int(arg), int(parts[2]), parts[3]
            with LOCK:
                LOGS.setdefault(path, []).append([[h, v] for h, v in self.headers.items()])
                seen = BREAKS.get(name, 0)
                BREAKS[name] = seen + 1
            whole, status, start = text_bytes(size), 200, 0
            payload = whole
            r = byte_range(self.headers.get("Range"), size)
            if r and r != "416" and self.headers.get("If-Range") in (None, '"breaks-%d"' % size):
                status, start, payload = 206, r[0], whole[r[0]:r[1] + 1]
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("ETag", '"breaks-%d"' % size)
            self.send_header("Cache-Control", "max-age=600")
            if status == 206:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, start + len(payload) - 1, size))
            self.end_headers()
            if seen < k:
                self.wfile.write(payload[:len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)
            return
        if head == "text":
            return self.send_body(200, text_bytes(int(arg)), "text/html; charset=utf-8",
                                  [("ETag", '"text-%s"' % arg), ("Cache-Control", "max-age=600")])
        if head == "ranged":
            with LOCK:
                LOGS.setdefault(path, []).append([[k, v] for k, v in self.headers.items()])
            size = int(arg.split("?")[0])
            version = self.path.split("v=", 1)[1] if "v=" in self.path else "1"
            body, status = text_bytes(size), 200
            extra = [("ETag", '"ranged-%d-%s"' % (size, version)), ("Cache-Control", "max-age=600"), ("Accept-Ranges", "bytes")]
            r = byte_range(self.headers.get("Range"), size)
            if r == "416":
                return self.send_body(416, b"", "text/html", extra + [("Content-Range", "bytes */%d" % size)])
            if r:
                status, body = 206, body[r[0]:r[1] + 1]
                extra.append(("Content-Range", "bytes %d-%d/%d" % (r[0], r[1], size)))
            return self.send_body(status, body, "text/html", extra)
        if head == "rgate":
            # /gate with an entity tag, its requests logged, and a single Range answered at once.
            total, gate = int(arg), parts[2]
            with LOCK:
                LOGS.setdefault(path, []).append([[k, v] for k, v in self.headers.items()])
            r = byte_range(self.headers.get("Range"), total)
            if r and r != "416" and self.headers.get("If-Range") in (None, '"rgate-%d"' % total):
                whole = b"g" * (total // 2) + b"h" * (total - total // 2)
                return self.send_body(206, whole[r[0]:r[1] + 1], "application/octet-stream",
                                      [("ETag", '"rgate-%d"' % total), ("Cache-Control", "max-age=600"),
                                       ("Content-Range", "bytes %d-%d/%d" % (r[0], r[1], total))])
        if head in ("gate", "rgate"):
            total, gate = int(arg), parts[2]
            with LOCK:
                ev = GATES.setdefault(gate, threading.Event())
            self.send_response(200)
            self.send_header("Content-Length", str(total))
            self.send_header("Cache-Control", "max-age=600")
            if head == "rgate":
                self.send_header("ETag", '"rgate-%d"' % total)
            self.end_headers()
            self.wfile.write(b"g" * (total // 2))
            self.wfile.flush()
            ev.wait(30)
            if gate in BROKEN:
                self.close_connection = True   # the held half never comes: the response ends short
                return
            self.wfile.write(b"h" * (total - total // 2))
            return
        if head == "gzipped":
            kind, size = arg, int(parts[2])
            raw = text_bytes(size) if kind == "text" else b"\0" * size
            return self.send_body(200, gzip.compress(raw, 6), "text/plain",
                                  [("Content-Encoding", "gzip"), ("Cache-Control", "max-age=600")])
        if head == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("X-Origin-Name", NAME)
            self.end_headers()
            left = int(arg)
            while left:
                piece = min(left, 1000)
                self.wfile.write(b"%x\r\n%s\r\n" % (piece, b"c" * piece))
                left -= piece
            self.wfile.write(b"0\r\nX-Trailer: t\r\n\r\n")
            return
        if head == "hangup-next":
            self.count()
            self.hangup_next = True
            return self.send_body(200, b"bye")
        if head == "close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"z" * int(arg))
            self.close_connection = True
            return
        if head == "stream":
            total = int(arg)
            self.send_response(200)
            self.send_header("Content-Length", str(total))
            self.end_headers()
            block = b"s" * 65536
            left = total
            while left:
                piece = min(left, len(block))
                self.wfile.write(block[:piece])
                left -= piece
            return
        if head == "slow":
            time.sleep(int(arg) / 1000.0)
            return self.send_body(200, b"slow done")
        if head == "status":
            return self.send_body(int(arg), b"")
        if head == "raw":
            self.wfile.write(RAW[arg])
            self.wfile.flush()
            self.close_connection = True
            return
        info = {
            "method": self.command,
            "path": path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_length": n,
            "origin": NAME,
        }
        with LOCK:
            SEEN.append(dict(info, sha256=digest))
        self.send_body(200, json.dumps(info).encode(), "application/json")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    srv = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    args = sys.argv[3:]
    if "--tls" in args:
        i = args.index("--tls")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args[i + 1], args[i + 2])
        if "--client-ca" in args:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args[args.index("--client-ca") + 1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
