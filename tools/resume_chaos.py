#!/usr/bin/env python3
"""An origin that breaks its answers mid-body, again and again (Resume.swift's long run).

usage: tools/resume_chaos.py [ROUNDS=20] [OBJECTS=12] [BREAK=0.3]
  (builds nothing: run `swift build -c release` first, or set EDGED=path;
  EDGED_ARGS="--cache-size 1MiB" gives a memory tier whose largest object is
  64 KiB, so every object here is written to disk as it arrives and its
  followers read the record while it is written)

The origin (in this process) serves OBJECTS bodies of 70 KB to 3 MB per round,
each with a strong ETag, and answers a single Range (with If-Range that tag, or
none) with a 206. With probability BREAK it closes the connection part way
through a body, at a random byte. Six clients fetch the round's objects at
once in different orders (so misses collapse), a quarter of the requests with
a Range of their own. Every complete answer must be byte-exact; an answer cut
short (its resume broke too, or could not be spliced on) is counted, never a
wrong byte. Then the origin stops breaking and every object of the round is
fetched again: what edged stored from spliced answers must be byte-exact.
Exits 1 on the first wrong byte, printing the round, object and range.
"""
import http.client, http.server, random, re, subprocess, sys, tempfile, threading

from edgedproc import start_edged

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
N = int(sys.argv[2]) if len(sys.argv) > 2 else 12
BREAK = [float(sys.argv[3]) if len(sys.argv) > 3 else 0.3]
STATS = {"origin_requests": 0, "broken": 0, "ranges_asked": 0}
LOCK = threading.Lock()

def body(name):
    seed = sum(name.encode()) * 7919 + len(name)
    size = 70_000 + (seed * 104_729) % 2_930_000
    unit = ("%s %d " % (name, seed)).encode()
    return (unit * (size // len(unit) + 1))[:size]

class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        name = self.path.split("?")[0].strip("/")
        whole = body(name)
        tag = '"%s-%d"' % (name.replace("/", "-"), len(whole))
        status, start, payload = 200, 0, whole
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        with LOCK:
            STATS["origin_requests"] += 1
            if rng: STATS["ranges_asked"] += 1
        if m and self.headers.get("If-Range") in (None, tag):
            a = int(m.group(1)); b = min(int(m.group(2)) if m.group(2) else len(whole) - 1, len(whole) - 1)
            if a <= b:
                status, start, payload = 206, a, whole[a:b + 1]
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("ETag", tag)
        self.send_header("Cache-Control", "max-age=3600")
        self.send_header("Content-Type", "application/octet-stream")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, start + len(payload) - 1, len(whole)))
        self.end_headers()
        if len(payload) > 1 and random.random() < BREAK[0]:
            with LOCK: STATS["broken"] += 1
            self.wfile.write(payload[:random.randint(1, len(payload) - 1)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)

def get(port, path, rng=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        h = {"Host": "x.test"}
        if rng: h["Range"] = "bytes=%d-%d" % rng
        c.request("GET", path, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, data, r.getheader("Cache-Status") or ""
    finally:
        c.close()

def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state = tempfile.mkdtemp(prefix="edge-resume-chaos-")
    edged, port = start_edged(server.server_address[1], state, disk="512MiB")
    counts = {"whole": 0, "ranged": 0, "cut": 0}
    bad = []
    try:
        for rnd in range(ROUNDS):
            BREAK[0] = float(sys.argv[3]) if len(sys.argv) > 3 else 0.3
            names = ["o/%d-%d" % (rnd, i) for i in range(N)]
            def client(order):
                for name in order:
                    whole = body(name)
                    rng = None
                    if random.random() < 0.25:
                        a = random.randrange(len(whole)); rng = (a, min(len(whole) - 1, a + random.randrange(1, 400_000)))
                    try:
                        status, got, _ = get(port, "/" + name, rng)
                    except (OSError, http.client.HTTPException):
                        with LOCK: counts["cut"] += 1
                        continue
                    want = whole if status == 200 else whole[rng[0]:rng[1] + 1] if status == 206 and rng else None
                    if want is None or got != want:
                        bad.append((rnd, name, status, rng, len(got)))
                    with LOCK: counts["ranged" if status == 206 else "whole"] += 1
            threads = [threading.Thread(target=client, args=(random.sample(names, N),)) for _ in range(6)]
            for t in threads: t.start()
            for t in threads: t.join()
            if bad:
                print("round %d: %s: status %d, range %s, %d bytes: wrong" % bad[0]); return 1
            # What was stored (spliced or not) must be right.
            BREAK[0] = 0.0
            hits = 0
            for name in names:
                status, got, cs = get(port, "/" + name)
                if status != 200 or got != body(name):
                    print("round %d check: /%s: status %d, %d bytes" % (rnd, name, status, len(got))); return 1
                hits += "hit" in cs
            print("round %d: %d whole, %d ranged, %d cut short; origin broke %d answers of %d (%d asked a range); %d of %d stored objects hit"
                  % (rnd + 1, counts["whole"], counts["ranged"], counts["cut"], STATS["broken"], STATS["origin_requests"],
                     STATS["ranges_asked"], hits, N), flush=True)
        print("ok: %d rounds, every byte right" % ROUNDS)
        return 0
    finally:
        edged.kill()
        server.shutdown()
        subprocess.run(["rm", "-rf", state])

sys.exit(main())
