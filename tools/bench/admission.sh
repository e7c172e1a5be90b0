#!/usr/bin/env bash
# The disk tier's admission rule (issue #15): what each setting writes, and
# what it keeps across a restart. edged (64 MiB memory over a 1 GiB disk tier,
# one worker) is sent the same request sequence with "disk_admission": "all"
# and then "second_request": REQS requests on one keep-alive connection, a
# share ONCE of them for keys asked for once (one-hit wonders, 1 KiB), the rest
# over a hot set of HOT keys (16 KiB, each asked for many times). Rows: objects
# written to disk (edge_cache_disk_writes_total), the segment bytes on disk,
# and after a graceful restart the hot set asked for once more: how much of it
# came back from disk (Cache-Status detail=disk).
# usage: [REQS=20000] [ONCE=0.7] [HOT=1000] tools/bench/admission.sh
source "$(dirname "$0")/lib.sh"
swift build -c release --product edgectl >/dev/null   # (its metrics: the disk writes)
REQS=${REQS:-20000}; ONCE=${ONCE:-0.7}; HOT=${HOT:-1000}
EDGE=18850
start_origin 'add_header Cache-Control "max-age=86400";'
cat > "$W/tenants/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"], "default": true,
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 } },
  "routes": [ { "prefix": "/", "origin": "o" } ] }
CONF
# The request sequence (fixed seed: both settings get the same one), and a
# client that sends it on one connection and counts answers from disk.
cat > "$W/client.py" <<'PY'
import random, socket, sys
port, mode = int(sys.argv[1]), sys.argv[2]
reqs, once, hot = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rng = random.Random(42)
if mode == "run":
    paths = []
    for n in range(reqs):
        paths.append(f"/1k.bin?once={n}" if rng.random() < once else f"/16k.bin?hot={int(hot * rng.random() ** 2)}")
else:
    paths = [f"/16k.bin?hot={k}" for k in range(hot)]
s = socket.create_connection(("127.0.0.1", port))
buf, disk, answered = b"", 0, 0
for p in paths:
    s.sendall(f"GET {p} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    while True:
        h = buf.find(b"\r\n\r\n")
        if h >= 0:
            head = buf[:h].decode().lower()
            ln = int([l.split(":")[1] for l in head.split("\r\n") if l.startswith("content-length")][0])
            if len(buf) >= h + 4 + ln:
                buf = buf[h + 4 + ln:]
                answered += 1
                disk += "detail=disk" in head
                break
        more = s.recv(65536)
        if not more: sys.exit("edged closed the connection")
        buf += more
asked = len(set(p for p in paths if mode != "run" or "hot=" in p))
print(answered, disk, asked)
PY
start() {
  taskset -c 0 .build/release/edged --tenants "$W/tenants" --config "$W/server.json" --http 127.0.0.1:$EDGE --workers 1 \
    --access-log off --state "$W/state" 2>>"$W/edged.err" &
  EDGE_PID=$!; PIDS+=($EDGE_PID)
  wait_port $EDGE
}
loaded() {
  for _ in $(seq 1 200); do
    .build/release/edgectl --state "$W/state" metrics 2>/dev/null | grep -q '^edge_cache_disk_loading{.*} 0$' && return
    sleep 0.05
  done
}
echo "# disk admission: $(git log -1 --format=%h) + work tree; $REQS requests, $ONCE of them for keys asked for once (1 KiB), the rest over $HOT hot keys (16 KiB)" >&2
for mode in all second_request; do
  rm -rf "$W/state" "$W/disk"
  echo "{ \"limits\": { \"max_requests_per_connection\": 0 },
    \"cache\": { \"memory\": \"64MiB\", \"disks\": [ { \"path\": \"$W/disk\", \"size\": \"1GiB\" } ], \"disk_admission\": \"$mode\" } }" > "$W/server.json"
  start
  python3 "$W/client.py" $EDGE run "$REQS" "$ONCE" "$HOT" >/dev/null
  writes=$(.build/release/edgectl --state "$W/state" metrics | awk '/^edge_cache_disk_writes_total/ {s += $2} END {print s + 0}')
  kill -TERM $EDGE_PID; wait $EDGE_PID 2>/dev/null || true
  bytes=$(du -sb "$W/disk" | awk '{print $1}')
  start; loaded
  read -r answered fromdisk asked < <(python3 "$W/client.py" $EDGE hot "$REQS" "$ONCE" "$HOT")
  kill -TERM $EDGE_PID; wait $EDGE_PID 2>/dev/null || true
  printf "admission %-15s objects written %6d  on disk %7.1f MiB  after a restart: %d of %d hot keys from disk\n" \
    "$mode" "$writes" "$(echo "scale=1; $bytes / 1048576" | bc)" "$fromdisk" "$asked" >&2
done
