#!/usr/bin/env bash
# HTTP/2 cache hits over TLS, side by side: edged, nginx (http2 with proxy_cache)
# and HAProxy (h2 with its cache), one worker/thread each pinned to CPU 0, the
# origin and h2load on CPU 1: 10 connections x 100 concurrent streams. Rows:
# requests per proxy CPU-second for 1 KiB and 16 KiB hits, and edged's HTTP/1.1
# keep-alive over TLS (wrk, 50 connections) on the same objects, for edged's
# h2 against its own h1.
# ROUNDS=N measures each object N times (the order reversed every other round)
# and prints the median of edged's per-round ratio with its spread.
# usage: [ROUNDS=N] tools/bench/h2.sh [seconds=10]
DUR=${1:-10}
source "$(dirname "$0")/lib.sh"
command -v haproxy >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; }
command -v h2load >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >/dev/null; }
NGXS=18691; HAPS=18693; EDGE=18684; EDGES=18694
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" \
  -days 30 -subj /CN=bench -addext subjectAltName=DNS:bench 2>/dev/null
cat "$W/cert.pem" "$W/key.pem" > "$W/combined.pem"
start_origin 'add_header Cache-Control "max-age=3600";'
mkdir -p "$W/ngxcache"
write_nginx_peer "$(cat <<CONF
  proxy_cache_path $W/ngxcache keys_zone=c:10m max_size=1g;
  http2_max_concurrent_streams 128;
  server {
    listen 127.0.0.1:$NGXS ssl http2;
    ssl_certificate $W/cert.pem;
    ssl_certificate_key $W/key.pem;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_cache c; }
  }
CONF
)"
write_haproxy_peer "  ssl-default-bind-options ssl-min-ver TLSv1.2" "$(cat <<CONF
$HAPROXY_CACHE
frontend fe
  bind 127.0.0.1:$HAPS ssl crt $W/combined.pem alpn h2,http/1.1
  http-request cache-use c
  http-response cache-store c
  default_backend be
backend be
  server o 127.0.0.1:$ORIGIN
CONF
)"
# As an operator runs it: caching on, compression on (the objects are binary: answered as they are).
write_tls_tenant '{ "prefix": "/", "origin": "o", "compress": { "enabled": true } }'
echo '{ "limits": { "max_connections_per_ip": 0, "max_requests_per_connection": 0, "keepalive_timeout": "300s" } }' > "$W/server.json"
nginx -c "$W/nginx.conf"
haproxy -D -f "$W/haproxy.cfg"
taskset -c 0 .build/release/edged --tenants "$W/tenants" --config "$W/server.json" --http 127.0.0.1:$EDGE --https 127.0.0.1:$EDGES \
  --workers 1 --access-log off --state "$W/state" 2>"$W/edged.err" &
EDGE_PID=$!; PIDS+=($EDGE_PID)
wait_port $EDGE; wait_port $HAPS; wait_port $NGXS; sleep 1
NGX_PID=$(pgrep -P "$(cat "$W/nginx.pid")" | head -1)
HAP_PID=$(cat "$W/haproxy.pid")

# run_h2load NAME PID URL -> a row on stderr, "rps per_cpu_s" on stdout
run_h2load() {
  local name=$1 pid=$2 url=$3
  taskset -c 1 h2load -t1 -c10 -m100 -n 20000 "$url" >/dev/null 2>&1 || true
  local t0; t0=$(cpu_ticks "$pid")
  local out; out=$(taskset -c 1 h2load -t1 -c10 -m100 -D "$DUR" "$url" 2>&1)
  local t1; t1=$(cpu_ticks "$pid")
  local rps; rps=$(echo "$out" | awk '/^finished in/ {gsub(",", "", $4); print $4}')
  local ok; ok=$(echo "$out" | awk '/^requests:/ {print $8, "ok,", $10, "errored"}')
  local cpu; cpu=$(echo "scale=2; ($t1 - $t0) / $HZ" | bc)
  local per; per=$(echo "scale=0; $rps * $DUR / ($cpu + 0.001)" | bc)
  printf "%-8s %-12s %10s req/s %6s cpu-s %8s req/cpu-s  (%s)\n" "$name" "h2 ${url##*/}" "$rps" "$cpu" "$per" "$ok" >&2
  echo "$rps $per"
}

echo "# h2 benchmark: $(git log -1 --format=%h) + work tree; ${DUR}s per run; h2load 10 connections x 100 streams; req/cpu-s = requests per proxy CPU-second" >&2
for obj in 1k.bin 16k.bin; do
  ratios=()
  for ((round = 1; round <= ${ROUNDS:-1}; round++)); do
    best=0; bestname=; mine=0
    for peer in $(round_order $round "nginx:$NGX_PID:$NGXS" "haproxy:$HAP_PID:$HAPS" "edged:$EDGE_PID:$EDGES"); do
      IFS=: read -r name pid port <<<"$peer"
      for _ in 1 2; do curl -sk --http2 -o /dev/null "https://127.0.0.1:$port/$obj"; done
      read -r rps per < <(run_h2load "$name" "$pid" "https://127.0.0.1:$port/$obj")
      if [ "$name" = edged ]; then
        mine=$per
        if [ $round -eq 1 ]; then
          read -r rps1 per1 < <(run_wrk edged "$pid" "https://127.0.0.1:$port/$obj" 50)
          printf "ratio    %-11s edged h2/h1.1 per CPU-s %s\n" "$obj" "$(ratio "$per" "$per1")" >&2
        fi
      elif [ "$per" -gt "$best" ]; then best=$per; bestname=$name; fi
    done
    r=$(ratio "$mine" "$best")
    ratios+=("$r")
    printf "ratio    h2 %-8s edged/%s per CPU-s %s\n" "$obj" "$bestname" "$r" >&2
  done
  if [ "${ROUNDS:-1}" -gt 1 ]; then print_median "h2 $obj" "edged/best per CPU-s" "${ratios[@]}"; fi
done
