#!/usr/bin/env bash
# Instructions per request (valgrind callgrind), for differences too small for
# wall-clock runs on this machine (their noise is about ±7%): counts repeat
# exactly. edged serves PATHS (default: a 1 KiB hit on a compressing route and
# on a route without compression) N and 3N times after a warm-up, each in a
# fresh process; the difference of the two totals over 2N is the per-request
# cost in edged's user space (startup cancels out; the kernel's share is not counted).
# /ns/ answers no-store (a pass-through on a caching route). EDGED picks another
# binary (a base to compare with): EDGED=/tmp/base/.build/release/edged.
# HEADER="Accept-Encoding: gzip, br" adds a field to every request (nreq.py).
# usage: [EDGED=...] [HEADER=...] tools/bench/instructions.sh [N=1000] [PATH...]
N=${1:-1000}; shift || true
PATHS=("$@"); [ ${#PATHS[@]} -eq 0 ] && PATHS=(/1k.bin /nc/1k.bin)
source "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
EDGED=${EDGED:-.build/release/edged}
start_origin "add_header Cache-Control \"max-age=3600\"; location /ns/ { alias $W/www/; add_header Cache-Control \"no-store\"; }"
cat > "$W/tenants/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"], "default": true, "compress": true,
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 } },
  "routes": [ { "prefix": "/nc/", "origin": "o", "strip_prefix": true, "compress": false }, { "prefix": "/", "origin": "o" } ] }
CONF
# total PATH COUNT -> instructions executed by an edged that served COUNT requests for PATH
total() {
  valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" "$EDGED" --tenants "$W/tenants" --http 127.0.0.1:18470 \
    --workers 1 --access-log off --state "$W/st-$RANDOM" 2>/dev/null &
  local pid=$!
  wait_port 18470 >/dev/null 2>&1 || wait_port 18470
  python3 tools/bench/nreq.py 18470 "$1" 5
  python3 tools/bench/nreq.py 18470 "$1" "$2"
  kill -INT $pid; wait $pid 2>/dev/null || true
  callgrind_annotate "$W/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n++ {gsub(",", "", $1); print $1}'
}
for path in "${PATHS[@]}"; do
  a=$(total "$path" "$N"); b=$(total "$path" $((3 * N)))
  printf "instructions %-14s %8s per request\n" "$path" $(((b - a) / (2 * N))) >&2
done
