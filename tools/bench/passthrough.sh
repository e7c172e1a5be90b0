#!/usr/bin/env bash
# Pass-through benchmark: edged vs nginx as reverse proxies in front of the
# same origin (nginx serving static files). Each proxy runs one worker pinned
# to CPU 0; wrk and the origin share CPU 1. Reports requests/s, requests per
# proxy CPU-second, and the ratio edged/nginx; then the RSS added by idle
# keep-alive connections.
#
# usage: tools/bench/passthrough.sh [seconds=10] [idle_conns=5000]
DUR=${1:-10}
IDLE=${2:-5000}
source "$(dirname "$0")/lib.sh"
NGX=18081; EDGE=18082
start_origin
cat > "$W/proxy.conf" <<CONF
worker_processes 1;
worker_cpu_affinity 01;
worker_rlimit_nofile 19000;
pid $W/proxy.pid;
error_log $W/proxy.err;
events { worker_connections 18000; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream origin { server 127.0.0.1:$ORIGIN; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
    }
  }
}
CONF
cat > "$W/tenants/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"],
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 } },
  "routes": [ { "prefix": "/", "origin": "o", "cache": false } ] }
CONF
echo '{ "limits": { "keepalive_timeout": "300s", "max_connections_per_ip": 0, "max_requests_per_connection": 0 } }' > "$W/server.json"
nginx -c "$W/proxy.conf"
taskset -c 0 .build/release/edged --tenants "$W/tenants" --config "$W/server.json" --http 127.0.0.1:$EDGE --workers 1 --access-log off --state "$W/state" 2>"$W/edged.err" &
EDGE_PID=$!; PIDS+=($EDGE_PID)
sleep 1
NGX_PID=$(pgrep -P "$(cat "$W/proxy.pid")" | head -1)

echo "# pass-through, 1 worker on CPU 0, wrk + origin on CPU 1, ${DUR}s per run" >&2
for f in 1k.bin 256k.bin; do
  read -r n_rps n_per < <(run_wrk nginx "$NGX_PID" "http://127.0.0.1:$NGX/$f" 50)
  read -r e_rps e_per < <(run_wrk edged "$EDGE_PID" "http://127.0.0.1:$EDGE/$f" 50)
  printf "ratio    %-28s edged/nginx req/s %s   per CPU-second %s\n" "$f" "$(ratio "$e_rps" "$n_rps")" "$(ratio "$e_per" "$n_per")" >&2
done

echo "# RSS added by $IDLE idle keep-alive connections (KiB before, after, bytes per connection)" >&2
echo "nginx  $(python3 tools/bench/idle_conns.py $NGX "$NGX_PID" "$IDLE" bench)" >&2
echo "edged  $(python3 tools/bench/idle_conns.py $EDGE "$EDGE_PID" "$IDLE" bench)" >&2
