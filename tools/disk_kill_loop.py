#!/usr/bin/env python3
"""kill -9 against the disk tier, again and again (issue 15's long loop).

usage: tools/disk_kill_loop.py [ITERATIONS=1000] [OBJECTS=60]
  (builds nothing: run `swift build -c release` first, or set EDGED=path;
  EDGED_ARGS="--cache-size 1MiB" gives a memory tier whose largest object is
  64 KiB, so the larger bodies are written as they arrive and read back
  block by block: killed mid-stream too)

Each round starts edged on one state directory with a scripted origin
(tools/testorigin/origin.py) holding OBJECTS distinct bodies (up to ~200 KiB),
has three clients fetch objects in different orders, kills edged with SIGKILL
at a random moment (often mid-write), and checks that every byte served was
the right one. Every 50 rounds, and at the end, a run that is stopped cleanly
checks that the store opens without repair and serves from disk. Exits 1 on
the first wrong byte or failed request, printing the round and object.
"""
import http.client, json, os, random, re, signal, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from edgedproc import start_edged as start

def start_edged(origin_port, state):
    return start(origin_port, state, exited="edged exited at start: it must open the store without repair")

ITER = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
N = int(sys.argv[2]) if len(sys.argv) > 2 else 60

def body(i):
    unit = ("object %d " % i + chr(97 + i % 26) * 40 + ". ").encode()
    return unit * (1 + (i * 397) % 4000)

def start_origin():
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools/testorigin/origin.py"), "0", "kill-loop"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(re.search(r"(\d+)", p.stdout.readline()).group(1))
    for i in range(N):
        script = {"path": "/o/%d" % i, "responses": [{"status": 200, "body": body(i).decode(),
                  "headers": {"Cache-Control": "max-age=86400", "Content-Type": "text/plain"}}]}
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", "/__script", json.dumps(script), {"Content-Type": "application/json"})
        assert c.getresponse().status == 200
        c.close()
    return p, port

def get(port, i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/o/%d" % i, headers={"Host": "x.test"})
        r = c.getresponse()
        return r.status, r.read(), r.getheader("Cache-Status") or ""
    finally:
        c.close()

def main():
    origin, oport = start_origin()
    state = tempfile.mkdtemp(prefix="edge-kill-loop-")
    bad = []
    served = [0]
    try:
        for rnd in range(ITER):
            edged, port = start_edged(oport, state)
            def client(order):
                for i in order:
                    try:
                        status, got, _ = get(port, i)
                    except (OSError, http.client.HTTPException):
                        return                      # edged was killed under us
                    if status == 200 and got != body(i):
                        bad.append((rnd, i, len(got)))
                    served[0] += 1
            orders = [random.sample(range(N), N) for _ in range(3)]
            threads = [threading.Thread(target=client, args=(o,)) for o in orders]
            for t in threads: t.start()
            time.sleep(random.uniform(0, 0.25))
            edged.send_signal(signal.SIGKILL)
            edged.wait()
            for t in threads: t.join()
            if bad:
                print("round %d: object %d served wrong bytes (%d bytes)" % bad[0]); return 1
            if rnd % 50 == 49 or rnd == ITER - 1:
                edged, port = start_edged(oport, state)
                disk = 0
                for i in range(N):
                    status, got, cs = get(port, i)
                    if status != 200 or got != body(i):
                        print("round %d check: /o/%d: status %d, %d bytes" % (rnd, i, status, len(got))); return 1
                    disk += "detail=disk" in cs
                edged.send_signal(signal.SIGTERM)
                edged.wait()
                print("round %d: %d responses checked so far; %d of %d objects came back from disk" % (rnd + 1, served[0], disk, N), flush=True)
        print("ok: %d rounds of kill -9, %d responses, every byte right" % (ITER, served[0]))
        return 0
    finally:
        origin.kill()
        subprocess.run(["rm", "-rf", state])

sys.exit(main())
