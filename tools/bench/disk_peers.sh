#!/usr/bin/env bash
# The disk tier against its peers (issue #15): a working set 4x edged's memory
# tier, requested with a Zipf(0.9) mix, through edged (64 MiB memory over a
# 1 GiB disk tier), nginx (proxy_cache on disk: its memory is the page cache)
# and Varnish (-s file, 1 GiB). One pinned core each (CPU 0), the origin and
# wrk on CPU 1. All three are filled with every object first (one pass in key
# order), then measured. Rows: requests per proxy CPU-second, and the hit ratio
# (1 - origin requests / requests) during the measured run.
# Then restarts: each proxy is stopped and started on its filled store, and a
# client asks for stored keys from the moment the port opens: the time to the
# first hit, and the hit ratio of the first 2 seconds (edged's index loads
# from its segments; nginx's cache loader walks its directory tree; Varnish's
# file storage does not survive a restart).
# After each restart it also waits for the index to be whole: edged's load
# (its "index loaded, N objects in M ms" line) and nginx's cache loader (until its
# process exits, at most LOADER_WAIT seconds, default 1200).
# RUN=0 skips the Zipf run (fill and restart only: issue #15's "time from start
# to the first hit with 1 M objects stored", e.g. RUN=0 PEERS="edged nginx"
# tools/bench/disk_peers.sh 10 1000000 1).
# PEERS="edged nginx" runs only those; PERF=FILE records edged's measured run
# (PERF_PEER=nginx: that peer's) with perf (call graphs) and writes `perf report` to FILE; DROP=1 empties the
# page cache (echo 3 > /proc/sys/vm/drop_caches) before each measured run.
# The disk stores are 1 GiB or twice the working set, whichever is larger.
# usage: tools/bench/disk_peers.sh [seconds=10] [objects=8192] [object KiB=32]
DUR=${1:-10}
OBJS=${2:-8192}
KIB=${3:-32}
source "$(dirname "$0")/lib.sh"
DISK_MIB=$(( OBJS * KIB / 1024 * 2 )); [ "$DISK_MIB" -lt 1024 ] && DISK_MIB=1024
# nginx's keys zone holds about 8,000 keys per MiB (its docs); when it is full,
# nginx evicts keys and deletes their files: give it room for every object, twice over.
ZONE_MIB=$(( OBJS / 4000 )); [ "$ZONE_MIB" -lt 32 ] && ZONE_MIB=32
EDGE=18810; NGX=18811; VAR=18812
head -c $((KIB * 1024)) /dev/urandom > "$W/www/obj.bin"
# The origin, with an access log: its lines are the misses of every proxy.
ORIGIN_LOG="$W/origin.log" start_origin 'add_header Cache-Control "max-age=86400";'
origin_lines() { wc -l < "$W/origin.log"; }

mkdir -p "$W/ngxcache" "$W/edisk"
write_nginx_peer "$(cat <<CONF
  proxy_cache_path $W/ngxcache levels=1:2 keys_zone=c:${ZONE_MIB}m max_size=${DISK_MIB}m inactive=1d;
  server {
    listen 127.0.0.1:$NGX;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_cache c;
                 add_header X-Cache-Status \$upstream_cache_status; }
  }
CONF
)"
cat > "$W/varnish.vcl" <<VCL
vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "$ORIGIN"; }
sub vcl_deliver { if (obj.hits > 0) { set resp.http.X-Cache-Status = "HIT"; } else { set resp.http.X-Cache-Status = "MISS"; } }
VCL
cat > "$W/edged.json" <<CONF
{ "limits": { "max_requests_per_connection": 0, "keepalive_timeout": "300s", "max_connections_per_ip": 0 },
  "cache": { "memory": "64MiB", "disks": [ { "path": "$W/edisk", "size": "${DISK_MIB}MiB" } ] } }
CONF
start_edged_disk() {
  taskset -c 0 .build/release/edged --tenants "$W/tenants" --config "$W/edged.json" --http 127.0.0.1:$EDGE --workers 1 \
    --access-log off --state "$W/state" 2>>"$W/edged.err" &
  EDGE_PID=$!; PIDS+=($EDGE_PID)
}
start_varnish_file() {
  taskset -c 0 varnishd -a 127.0.0.1:$VAR -f "$W/varnish.vcl" -s file,"$W/varnish.bin",${DISK_MIB}M -n "$W/varnish" -P "$W/varnish.pid" \
    -p thread_pools=1 -p thread_pool_min=10 -p thread_pool_max=200 >/dev/null 2>&1
}
cat > "$W/tenants/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"], "default": true,
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 } },
  "routes": [ { "prefix": "/", "origin": "o" } ] }
CONF

# The Zipf(0.9) mix: a CDF over the keys, sampled by binary search (the same seed for every proxy).
cat > "$W/zipf.lua" <<LUA
local n, s = $OBJS, 0.9
local cdf, total = {}, 0
for k = 1, n do total = total + 1 / (k ^ s); cdf[k] = total end
for k = 1, n do cdf[k] = cdf[k] / total end
math.randomseed(42)
request = function()
  local u, lo, hi = math.random(), 1, n
  while lo < hi do local mid = math.floor((lo + hi) / 2); if cdf[mid] < u then lo = mid + 1 else hi = mid end end
  return wrk.format("GET", "/obj.bin?k=" .. lo)
end
LUA
# fill PORT: every key once, in order, on one keep-alive connection.
fill() {
  python3 - "$1" "$OBJS" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port)); buf = b""
for k in range(1, n + 1):
    s.sendall(b"GET /obj.bin?k=%d HTTP/1.1\r\nHost: bench\r\n\r\n" % k)
    while True:
        h = buf.find(b"\r\n\r\n")
        if h >= 0:
            ln = int([l.split(b":")[1] for l in buf[:h].split(b"\r\n") if l.lower().startswith(b"content-length")][0])
            if len(buf) >= h + 4 + ln: buf = buf[h + 4 + ln:]; break
        buf += s.recv(1 << 20)
PY
}
# first_hit PORT: from now, asks for stored keys until one is a hit; prints the
# milliseconds to the first hit and the hit ratio over the first 2 s.
first_hit() {
  python3 - "$1" "$OBJS" <<'PY'
import socket, sys, time, random
port, n = int(sys.argv[1]), int(sys.argv[2])
t0 = time.monotonic(); first = None; hits = total = 0; random.seed(7)
s = None
while time.monotonic() - t0 < 2.0:
    try:
        if s is None: s = socket.create_connection(("127.0.0.1", port)); buf = b""
        k = random.randint(1, n)
        s.sendall(b"GET /obj.bin?k=%d HTTP/1.1\r\nHost: bench\r\n\r\n" % k)
        while True:
            h = buf.find(b"\r\n\r\n")
            if h >= 0:
                head = buf[:h].lower()
                ln = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.startswith(b"content-length")][0])
                if len(buf) >= h + 4 + ln: buf = buf[h + 4 + ln:]; break
            d = s.recv(1 << 20)
            if not d: raise ConnectionError()
            buf += d
        total += 1
        hit = b"x-cache-status: hit" in head or (b"cache-status: " in head and b"; hit" in head)
        if hit:
            hits += 1
            if first is None: first = (time.monotonic() - t0) * 1000
    except OSError:
        s = None; time.sleep(0.005)
print("%s %d %d" % ("%.0f" % first if first is not None else "none", hits, total))
PY
}

echo "# disk tier vs peers: $(git log -1 --format=%h) + work tree; $OBJS objects of $KIB KiB ($((OBJS * KIB / 1024)) MiB), Zipf 0.9, ${DUR}s; edged memory 64 MiB + disk, nginx proxy_cache, Varnish -s file: $DISK_MIB MiB each${DROP:+; page cache dropped before each run}" >&2
start_edged_disk; wait_port $EDGE
nginx -c "$W/nginx.conf"; wait_port $NGX
start_varnish_file; wait_port $VAR
NGX_PID=$(pgrep -P "$(cat "$W/nginx.pid")" | head -1)
VAR_PID=$(varnish_pid)
PEERS=${PEERS:-edged nginx varnish}
for peer in "edged:$EDGE_PID:$EDGE" "nginx:$NGX_PID:$NGX" "varnish:$VAR_PID:$VAR"; do
  IFS=: read -r name pid port <<<"$peer"
  [[ " $PEERS " == *" $name "* ]] || continue
  fill "$port"; fill "$port"
  # (edged's disk writes happen behind the responses; and what any proxy left
  # dirty is written back now, not during the next one's measured run.)
  sleep 1; sync
  [ "${RUN:-1}" = 0 ] && continue
  if [ -n "${DROP:-}" ]; then sync; echo 3 > /proc/sys/vm/drop_caches || echo "(could not drop the page cache)" >&2; fi
  o0=$(origin_lines)
  t0=$(cpu_ticks "$pid")
  if [ "$name" = "${PERF_PEER:-edged}" ] && [ -n "${PERF:-}" ]; then
    perf record -g -o "$W/perf.data" -p "$pid" -- sleep "$DUR" >/dev/null 2>&1 &
    perfpid=$!
  fi
  out=$(taskset -c 1 wrk -t1 -c50 -d"${DUR}s" --latency -H "Host: bench" -s "$W/zipf.lua" "http://127.0.0.1:$port/" 2>&1)
  t1=$(cpu_ticks "$pid")
  o1=$(origin_lines)
  if [ "$name" = "${PERF_PEER:-edged}" ] && [ -n "${PERF:-}" ]; then
    wait "$perfpid"; perf report -i "$W/perf.data" --no-children --percent-limit 0.7 --stdio > "$PERF" 2>/dev/null; cp "$W/perf.data" "$PERF.data"
  fi
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  cpu=$(echo "scale=2; ($t1 - $t0) / $HZ" | bc)
  per=$(echo "scale=0; $reqs / ($cpu + 0.001)" | bc)
  hit=$(echo "scale=4; 1 - ($o1 - $o0) / $reqs" | bc)
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  printf "%-8s zipf  %10s req/s %6s cpu-s %8s req/cpu-s  p99 %8s  origin requests %6s  hit ratio %s\n" "$name" "$rps" "$cpu" "$per" "$p99" "$((o1 - o0))" "$hit" >&2
done
# Restarts on the filled stores (of the peers that ran).
ran() { [[ " $PEERS " == *" $1 "* ]]; }
ms_now() { echo $(( $(date +%s%N) / 1000000 )); }
if ran edged; then
  kill -INT "$EDGE_PID"; wait "$EDGE_PID" 2>/dev/null || true
  : > "$W/edged.err"
  start_edged_disk
  printf "%-8s restart  first hit after %s ms; hits in the first 2 s: %s of %s\n" edged $(first_hit $EDGE) >&2
  for _ in $(seq $((${LOADER_WAIT:-1200} * 10))); do grep -q "index loaded" "$W/edged.err" && break; sleep 0.1; done
  echo "edged    restart  index: $(grep -o 'index loaded, [0-9]* objects in [0-9]* ms' "$W/edged.err" || echo "not loaded after ${LOADER_WAIT:-1200} s")" >&2
fi
if ran nginx; then
  # (A second is not always enough for its workers to let the port go: wait for the master.)
  NPID=$(cat "$W/nginx.pid")
  nginx -c "$W/nginx.conf" -s stop
  for _ in $(seq 100); do kill -0 "$NPID" 2>/dev/null || break; sleep 0.1; done
  started=$(ms_now)
  nginx -c "$W/nginx.conf"
  printf "%-8s restart  first hit after %s ms; hits in the first 2 s: %s of %s\n" nginx $(first_hit $NGX) >&2
  # Its cache loader walks the directory tree (loader_files 100 per 50 ms pass, nginx's defaults),
  # then exits: until then the keys zone (and max_size) does not know every object.
  sleep 0.5
  loaded=""
  for _ in $(seq $((${LOADER_WAIT:-1200} * 10))); do
    if ! pgrep -f "nginx: cache loader" >/dev/null; then loaded=$(( $(ms_now) - started )); break; fi
    sleep 0.1
  done
  if [ -n "$loaded" ]; then echo "nginx    restart  cache loader: done after $loaded ms" >&2
  else echo "nginx    restart  cache loader: still walking after ${LOADER_WAIT:-1200} s" >&2; fi
fi
if ran varnish; then
  kill "$(cat "$W/varnish.pid")"; sleep 1
  start_varnish_file
  printf "%-8s restart  first hit after %s ms; hits in the first 2 s: %s of %s\n" varnish $(first_hit $VAR) >&2
fi
kill "$(cat "$W/varnish.pid")" 2>/dev/null || true
