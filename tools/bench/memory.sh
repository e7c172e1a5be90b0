#!/usr/bin/env bash
# Memory per cached object: fills edged's memory tier (the default 256 MiB, or
# MIB=) with unique keys (one query string each) of 1 KiB and then 64 KiB
# objects, in no-file mode with one worker, and compares the process RSS with
# the configured size and with what the store accounts (edge_cache_bytes).
# The issue's bound: RSS <= 1.15x the size with 1 KiB objects, <= 1.05x with
# 64 KiB objects.
# RSS here is the process's resident set plus its memory files (see rss_kib);
# anon leaves out file-backed pages (the binary and shared libraries, ~10 MiB, shared and
# reclaimable) and is what the cache itself costs.
# The disk tier is off (--cache-dir off): its index is memory of its own,
# measured by tools/bench/disk.sh; DISK=1 leaves it on.
# "overhead/object" is what an object costs beyond its own bytes (key,
# fields, body: edge_cache_stored_bytes), measured (anon) and as charged
# (edge_cache_bytes); the issue's bound is 200 B.
# EDGED= runs another binary; AT_FULL= runs a command on the full process
# before it stops (example at its use below: malloc_info through gdb).
# MAX_OVERHEAD=B fails the run (exit 1) when an object's measured overhead
# exceeds B bytes: CI's regression guard (.ci/run), which a per-miss
# allocation fragmenting the heap trips (stop 47: 337 B against 193 B).
# usage: tools/bench/memory.sh [objects-multiple=1.5]
DUR=10
MULT=${1:-1.5}
source "$(dirname "$0")/lib.sh"
MIB=${MIB:-256}
EDGE=18190
head -c 65536 /dev/urandom > "$W/www/64k.bin"
start_origin 'add_header Cache-Control "max-age=3600";'
cat > "$W/fill.lua" <<'LUA'
local n = 0
local path = os.getenv("FILL_PATH")
request = function()
  n = n + 1
  return wrk.format("GET", path .. "?k=" .. n)
end
LUA
# Resident memory: the process's RSS plus what its memory files hold (bodies of
# 64 KiB and more live in memfds, whose pages count in RSS only where mapped
# and touched).
rss_kib() {
  local memfd=0 f
  for f in /proc/$1/fd/*; do
    case "$(readlink "$f" 2>/dev/null)" in /memfd:*) memfd=$((memfd + $(stat -L -c '%b * %B' "$f"))) ;; esac
  done
  awk -v memfd=$((memfd / 1024)) '/^VmRSS:/ {r = $2} /^RssShmem:/ {m = $2} /^RssAnon:/ {a = $2} END {print r - m + memfd, a + memfd}' "/proc/$1/status"
}
metric() { curl -s --unix-socket "$STATE/admin.sock" http://admin/metrics | awk -v m="$1" 'index($1, m) == 1 && substr($1, length(m) + 1, 1) ~ /^(\{|)$/ {s += $2} END {printf "%d", s}'; }
for size in ${SIZES:-1k 64k}; do
  bytes=$([ $size = 1k ] && echo 1024 || echo 65536)
  objects=$(echo "$MIB * 1048576 * $MULT / $bytes" | bc)
  STATE=$W/state-$size
  taskset -c 0 "${EDGED:-.build/release/edged}" --origin "http://127.0.0.1:$ORIGIN" --http 127.0.0.1:$EDGE \
    --workers 1 --access-log off --state "$STATE" --cache-size "${MIB}MiB" $([ "${DISK:-0}" = 1 ] || echo --cache-dir off) ${EDGE_ARGS:-} 2>"$W/edged.err" &
  EDGE_PID=$!; PIDS+=($EDGE_PID)
  wait_port $EDGE
  read -r base base_anon < <(rss_kib $EDGE_PID)
  # wrk stops by time, not count: run until the requests made reach $objects.
  FILL_PATH=/$size.bin taskset -c 1 timeout 600 wrk -t1 -c8 -d600s -s "$W/fill.lua" "http://127.0.0.1:$EDGE/" >/dev/null 2>&1 &
  WRK=$!
  while :; do
    sleep 1
    made=$(metric edge_requests_total)
    [ "${made:-0}" -ge "$objects" ] && break
    kill -0 $WRK 2>/dev/null || break
  done
  kill $WRK 2>/dev/null || true; wait $WRK 2>/dev/null || true
  sleep 1
  read -r rss anon < <(rss_kib $EDGE_PID)
  stored=$(metric 'edge_cache_objects{tier="memory"}')
  accounted=$(metric 'edge_cache_bytes{tier="memory"}')
  own=$(metric 'edge_cache_stored_bytes{tier="memory"}')
  r() { echo "scale=2; ($1) / ($2)" | bc; }
  over=$(echo "scale=0; (($anon - $base_anon) * 1024 - $own) / ($stored + 1)" | bc)   # an object's memory beyond its own bytes
  printf "memory   %-4s objects %7s  cache_bytes %4s MiB  RSS %4s MiB (idle %2s)  anon %4s MiB (idle %2s)  RSS/size %s  anon/size %s  anon/accounted %s  anon per object %s B  overhead/object %s B (charged %s B)\n" \
    "$size" "$stored" "$((accounted / 1048576))" "$((rss / 1024))" "$((base / 1024))" "$((anon / 1024))" "$((base_anon / 1024))" \
    "$(r "$rss" "$MIB * 1024")" "$(r "$anon" "$MIB * 1024")" "$(r "$anon * 1024" "$accounted + 1")" \
    "$(echo "scale=0; ($anon - $base_anon) * 1024 / ($stored + 1)" | bc)" \
    "$over" \
    "$(echo "scale=0; ($accounted - $own) / ($stored + 1)" | bc)" >&2
  if [ -n "${MAX_OVERHEAD:-}" ]; then
    if [ "$over" -gt "$MAX_OVERHEAD" ]; then
      echo "memory   $size  FAIL: $over B of memory per object beyond its own bytes (bound $MAX_OVERHEAD B)" >&2
      FAILED=1
    fi
  fi
  # AT_FULL runs a command on the full process first (its pid in EDGE_PID), e.g.
  # AT_FULL='gdb -p $EDGE_PID -batch -ex "call (int)malloc_info(0, (void*)fopen(\"/tmp/mi.xml\", \"w\"))" -ex "call (int)fflush(0)"'
  [ -n "${AT_FULL:-}" ] && eval "$AT_FULL"
  kill $EDGE_PID; wait $EDGE_PID 2>/dev/null || true
done
[ -z "${FAILED:-}" ]
