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
# PROTECT=1 gives the tenant a 100,000-prefix deny list and a per-client rate
# limit that is never exceeded (the cost of protection on the hot path);
# PROTECT=rules adds 100 request rules (tools/bench/rules100.py), none matching.
# LOG=/dev/null writes the JSON access log (as operators run edged; default off).
# TAIL=log attaches `edgectl log --json` for the run, TAIL=top `edgectl top` (the
# cost of following the live tail, the admin thread's share counted too).
# H2=1 sends the requests over HTTP/2 (h2c with prior knowledge, h2load: one
# connection, 10 concurrent streams), for the cost of a stream against an HTTP/1.1 request.
# usage: [EDGED=...] [HEADER=...] tools/bench/instructions.sh [N=1000] [PATH...]
N=${1:-1000}; shift || true
PATHS=("$@"); [ ${#PATHS[@]} -eq 0 ] && PATHS=(/1k.bin /nc/1k.bin)
source "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
EDGED=${EDGED:-.build/release/edged}
# STEER=rr|hash|hash0: the tenant's one route goes, caching off, to a group of 8
# servers (the origin nginx on 8 ports), round-robin, or by consistent hash of
# the URL with health checks every 1 s on all 8 (hash), or hash alone (hash0):
# issue #18's steering cost. Use a PATH with {i} (nreq.py) to spread the keys.
LISTENS=""
[ -n "${STEER:-}" ] && LISTENS=$(for p in $(seq 19001 19008); do printf 'listen 127.0.0.1:%s; ' "$p"; done)
start_origin "$LISTENS add_header Cache-Control \"max-age=3600\"; location /ns/ { alias $W/www/; add_header Cache-Control \"no-store\"; }"
PROTECTION=""
if [ -n "${PROTECT:-}" ]; then
  python3 -c 'import random; random.seed(17); s=set()
while len(s) < 100000:
    a = random.randrange(1 << 24)
    if a >> 16 != 127: s.add(a)
print("\n".join(f"{a>>16}.{a>>8&255}.{a&255}.0/24" for a in sorted(s)))' > "$W/tenants/deny.txt"
  PROTECTION='"access": { "deny_file": "deny.txt" }, "rate_limits": { "per-client": { "rate": "1000000/s", "burst": 1000000 } },'
  # PROTECT=rules: and the 100 rules of tools/bench/rules100.py (issue #17's benchmark tenant).
  if [ "$PROTECT" = rules ]; then PROTECTION="$PROTECTION $(python3 "$(dirname "$0")/rules100.py")"; fi
fi
cat > "$W/tenants/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"], "default": true, "compress": true, $PROTECTION
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 } },
  "routes": [ { "prefix": "/nc/", "origin": "o", "strip_prefix": true, "compress": false }, { "prefix": "/", "origin": "o" } ] }
CONF
if [ -n "${STEER:-}" ]; then
  servers=$(for p in $(seq 19001 19008); do printf '"127.0.0.1:%s",' "$p"; done); servers=${servers%,}
  case "$STEER" in
    rr) how='' ;;
    hash) how='"balance": "hash", "health_check": { "path": "/1k.bin", "interval": "1s" },' ;;
    hash0) how='"balance": "hash",' ;;
    *) echo "STEER is rr, hash or hash0" >&2; exit 2 ;;
  esac
  cat > "$W/tenants/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"], "default": true,
  "origins": { "o": { "servers": [$servers], "keepalive": 64, $how "max_fails": 3 } },
  "routes": [ { "prefix": "/", "origin": "o", "cache": false } ] }
CONF
fi
# total PATH COUNT -> instructions executed by an edged that served COUNT requests for PATH
total() {
  local conf=()
  if [ -n "${H2:-}" ]; then echo '{ "h2c": true, "limits": { "max_requests_per_connection": 0 } }' > "$W/server.json"; conf=(--config "$W/server.json"); fi
  SWIFT_DETERMINISTIC_HASHING=1 valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" "$EDGED" --tenants "$W/tenants" --http 127.0.0.1:18470 \
    "${conf[@]}" --workers 1 --access-log "${LOG:-off}" --state "$W/st-$RANDOM" 2>/dev/null &
  local pid=$!
  for _ in 1 2 3 4 5 6 7 8 9; do wait_port 18470 >/dev/null 2>&1 && break; done   # (a 100 k list loads slowly under valgrind)
  local reader=""
  if [ -n "${TAIL:-}" ]; then   # TAIL=log|top: a live-tail reader attached for the whole run (its work in edged counted)
    for _ in $(seq 100); do ls "$W"/st-*/admin.sock >/dev/null 2>&1 && break; sleep 0.1; done
    .build/release/edgectl --state "$(dirname "$(ls "$W"/st-*/admin.sock | head -1)")" "$TAIL" $([ "$TAIL" = log ] && echo --json) > /dev/null &
    reader=$!
    sleep 2
  fi
  if [ -n "${H2:-}" ]; then
    h2load -c1 -m10 -n 5 "http://127.0.0.1:18470$1" >/dev/null
    h2load -c1 -m10 -n "$2" "http://127.0.0.1:18470$1" | grep -q "$2 succeeded" || echo "h2load: not all $2 succeeded" >&2
  else
    python3 tools/bench/nreq.py 18470 "$1" 5
    python3 tools/bench/nreq.py 18470 "$1" "$2"
  fi
  [ -n "$reader" ] && { kill "$reader"; wait "$reader" 2>/dev/null || true; }
  # (valgrind has been seen to lose a SIGINT that edged's sigwait should take: ask again)
  kill -INT $pid; for _ in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.2; done
  kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null || true
  rm -rf "$W"/st-*
  [ -n "${CGOUT:-}" ] && cp "$W/cg.out" "$CGOUT-$2"   # CGOUT=PATH keeps each profile, for callgrind_annotate
  callgrind_annotate "$W/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n++ {gsub(",", "", $1); print $1}'
}
for path in "${PATHS[@]}"; do
  a=$(total "$path" "$N"); b=$(total "$path" $((3 * N)))
  printf "instructions %-14s %8s per request\n" "$path" $(((b - a) / (2 * N))) >&2
done
