#!/usr/bin/env bash
# Before/after: two edged binaries side by side in one run, on the same
# machine, one worker each pinned to CPU 0 (never at the same time), wrk and
# the nginx origin on CPU 1, HAProxy as the yardstick. Rows: cache hits of 1,
# 16 and 256 KiB, pass-through 1 KiB, TLS hits and pass-through of 1 KiB. Each
# measurement runs before, after, before, after (drift shows as the spread);
# The tenant compresses (as operators deploy it): "hit" rows are identity hits on
# a compressing route, "hit-nc" the same on a route without compression, "gzip"
# a 64 KiB JSON hit asked for with Accept-Encoding: gzip.
# ROWS picks some of: hit, hit-nc, gzip, pass, nostore (caching on, origin says no-store), tls-hit, tls-pass
# and the ratio is after/before per CPU-second, over the two rounds.
# usage: [ROWS="hit tls-hit ..."] tools/bench/before_after.sh BEFORE_EDGED [seconds=8]
#   e.g. git worktree add /tmp/base <commit> && (cd /tmp/base && swift build -c release --product edged)
#        tools/bench/before_after.sh /tmp/base/.build/release/edged
BEFORE=${1:?usage: before_after.sh BEFORE_EDGED [seconds]}
DUR=${2:-8}
source "$(dirname "$0")/lib.sh"
AFTER=${AFTER:-.build/release/edged}
command -v haproxy >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" \
  -days 30 -subj /CN=bench -addext subjectAltName=DNS:bench 2>/dev/null
# /ns/ answers no-store: a miss on a caching route that turns out uncacheable (the pass-through operators see).
start_origin "add_header Cache-Control \"max-age=3600\"; location /ns/ { alias $W/www/; add_header Cache-Control \"no-store\"; }"
cat > "$W/tenants/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"], "default": true, "compress": true,
  "tls": { "certificates": [ { "cert": "$W/cert.pem", "key": "$W/key.pem" } ] },
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 } },
  "routes": [ { "prefix": "/pass/", "origin": "o", "cache": false, "strip_prefix": true },
              { "prefix": "/nc/", "origin": "o", "compress": false, "strip_prefix": true },
              { "prefix": "/", "origin": "o" } ] }
CONF
echo '{ "limits": { "max_connections_per_ip": 0, "max_requests_per_connection": 0 } }' > "$W/server.json"
HAP=18483
write_haproxy_cache_peer "$HAP"
haproxy -D -f "$W/haproxy.cfg"
sleep 1
HAP_PID=$(cat "$W/haproxy.pid")

# run_edged BIN NAME URLPATH SCHEME -> "rps per"
run_edged() {
  local bin=$1 name=$2 path=$3 scheme=$4
  taskset -c 0 "$bin" --tenants "$W/tenants" --config "$W/server.json" --http 127.0.0.1:18480 --https 127.0.0.1:18481 \
    --workers 1 --access-log off --state "$W/state-$name" >"$W/$name.out" 2>"$W/$name.err" &
  local pid=$!
  local port=18480; [ "$scheme" = https ] && port=18481
  wait_port $port
  curl -sk -o /dev/null -H "Host: bench" "${EXTRA[@]}" "$scheme://127.0.0.1:$port$path"; curl -sk -o /dev/null -H "Host: bench" "${EXTRA[@]}" "$scheme://127.0.0.1:$port$path"
  run_wrk "$name" "$pid" "$scheme://127.0.0.1:$port$path" 50 "${EXTRA[@]}"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "# before: $BEFORE ($(cd "$(dirname "$BEFORE")/../.." 2>/dev/null && git log -1 --format=%h 2>/dev/null || echo '?'))  after: $(git log -1 --format=%h) + work tree; ${DUR}s per run" >&2
ALL_ROWS=("hit /1k.bin http" "hit-nc /nc/1k.bin http" "hit /16k.bin http" "hit /256k.bin http" "gzip /64k.json http"
          "pass /pass/1k.bin http" "nostore /ns/1k.bin http"
          "tls-hit /1k.bin https" "tls-hit /16k.bin https" "tls-pass /pass/1k.bin https")
for row in "${ALL_ROWS[@]}"; do
  [ -n "${ROWS:-}" ] && ! [[ " $ROWS " == *" ${row%% *} "* ]] && continue
  set -- $row
  kind=$1 path=$2 scheme=$3
  EXTRA=(); [ "$kind" = gzip ] && EXTRA=(-H "Accept-Encoding: gzip")
  echo "# $kind $path over $scheme, 50 connections" >&2
  if [ "$kind" = hit ]; then
    curl -s -o /dev/null -H "Host: bench" "http://127.0.0.1:$HAP$path"
    read -r h_rps h_per < <(run_wrk haproxy "$HAP_PID" "http://127.0.0.1:$HAP$path" 50)
  fi
  read -r b1 bp1 < <(run_edged "$BEFORE" before "$path" "$scheme")
  read -r a1 ap1 < <(run_edged "$AFTER" after "$path" "$scheme")
  read -r b2 bp2 < <(run_edged "$BEFORE" before "$path" "$scheme")
  read -r a2 ap2 < <(run_edged "$AFTER" after "$path" "$scheme")
  printf "ratio    %-9s %-15s after/before per CPU-s %s  (req/s %s)\n" "$kind" "$path" \
    "$(ratio "$((ap1 + ap2))" "$((bp1 + bp2))")" "$(echo "scale=2; ($a1 + $a2) / ($b1 + $b2)" | bc)" >&2
done
