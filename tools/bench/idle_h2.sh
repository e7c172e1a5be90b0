#!/usr/bin/env bash
# Memory of idle TLS connections, HTTP/2 against HTTP/1.1 (issue #16: what h2
# adds per idle connection, <= 4 KiB): edged with one worker and a TLS tenant,
# N connections of each protocol (tools/bench/idle_tls.py: one request on each,
# then held idle), edged's RSS growth per connection. Needs Debian's python3-h2.
# usage: tools/bench/idle_h2.sh [connections=2000]
N=${1:-2000}
source "$(dirname "$0")/lib.sh"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" \
  -days 30 -subj /CN=bench -addext subjectAltName=DNS:bench 2>/dev/null
start_origin 'add_header Cache-Control "max-age=3600";'
write_tls_tenant '{ "prefix": "/", "origin": "o" }'
echo '{ "limits": { "max_connections_per_ip": 0, "keepalive_timeout": "300s" } }' > "$W/server.json"
for proto in h2 h1; do
  .build/release/edged --tenants "$W/tenants" --config "$W/server.json" --https 127.0.0.1:18694 --http 127.0.0.1:18684 \
    --workers 1 --access-log off --state "$W/state-$proto" 2>/dev/null &
  pid=$!; PIDS+=($pid)
  wait_port 18694
  read -r before after per < <(/usr/bin/python3 tools/bench/idle_tls.py "$proto" 18694 "$pid" "$N")
  printf "idle %-3s %5s connections  RSS %6s -> %6s KiB  %6s bytes each\n" "$proto" "$N" "$before" "$after" "$per" >&2
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
