#!/usr/bin/env bash
# TLS benchmark: edged vs nginx vs HAProxy terminating TLS with the same ECDSA
# P-256 certificate in front of the same origin. One worker/thread each on
# CPU 0; the load generator and the origin on CPU 1.
#  - keep-alive: wrk over TLS, 1 KiB, 50 connections (requests/s and per proxy CPU-second)
#  - handshakes: openssl s_time, a new connection each time, full and resumed
#    (connections/s and per proxy CPU-second; the client's own crypto saturates
#    its core first, so the per-CPU-second column decides)
# usage: tools/bench/tls.sh [seconds=10]
DUR=${1:-10}
source "$(dirname "$0")/lib.sh"
command -v haproxy >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; }
NGX=18443; HAP=18444; EDGE=18445
start_origin
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" \
  -days 30 -subj /CN=bench -addext subjectAltName=DNS:bench 2>/dev/null
cat "$W/cert.pem" "$W/key.pem" > "$W/combined.pem"

write_nginx_peer "$(cat <<CONF
  server {
    listen 127.0.0.1:$NGX ssl;
    ssl_certificate $W/cert.pem;
    ssl_certificate_key $W/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
CONF
)"
write_haproxy_peer "  ssl-default-bind-options ssl-min-ver TLSv1.2" "$(cat <<CONF
frontend fe
  bind 127.0.0.1:$HAP ssl crt $W/combined.pem alpn http/1.1
  default_backend be
backend be
  server o 127.0.0.1:$ORIGIN
CONF
)"
write_tls_tenant '{ "prefix": "/", "origin": "o", "cache": false }'
nginx -c "$W/nginx.conf"
haproxy -D -f "$W/haproxy.cfg"
taskset -c 0 .build/release/edged --tenants "$W/tenants" --http 127.0.0.1:18080 --https 127.0.0.1:$EDGE --workers 1 --access-log off --state "$W/state" 2>"$W/edged.err" &
EDGE_PID=$!; PIDS+=($EDGE_PID)
sleep 1
NGX_PID=$(pgrep -P "$(cat "$W/nginx.pid")" | head -1)
HAP_PID=$(cat "$W/haproxy.pid")

echo "# TLS keep-alive, 1 KiB, 50 connections, ${DUR}s" >&2
read -r h_rps h_per < <(run_wrk haproxy "$HAP_PID" "https://127.0.0.1:$HAP/1k.bin" 50)
read -r n_rps n_per < <(run_wrk nginx "$NGX_PID" "https://127.0.0.1:$NGX/1k.bin" 50)
read -r e_rps e_per < <(run_wrk edged "$EDGE_PID" "https://127.0.0.1:$EDGE/1k.bin" 50)
printf "ratio    edged/haproxy req/s %s  per CPU-second %s;  edged/nginx req/s %s  per CPU-second %s\n" \
  "$(ratio "$e_rps" "$h_rps")" "$(ratio "$e_per" "$h_per")" "$(ratio "$e_rps" "$n_rps")" "$(ratio "$e_per" "$n_per")" >&2

# s_time NAME PID PORT MODE(-new|-reuse) -> "conns/s per_cpu_s"
s_time() {
  local name=$1 pid=$2 port=$3 mode=$4
  local t0; t0=$(cpu_ticks "$pid")
  local out; out=$(taskset -c 1 openssl s_time -connect 127.0.0.1:"$port" "$mode" -time "$DUR" 2>&1)
  local t1; t1=$(cpu_ticks "$pid")
  local conns; conns=$(echo "$out" | awk '/connections in [0-9.]+s/ {print $1; exit}')
  local real; real=$(echo "$out" | awk '/connections in [0-9]+ real seconds/ {print $4; exit}')
  local cpu; cpu=$(echo "scale=2; ($t1 - $t0) / $HZ" | bc)
  local rate; rate=$(echo "scale=0; $conns / $real" | bc)
  local per; per=$(echo "scale=0; $conns / ($cpu + 0.001)" | bc)
  printf "%-8s %-8s %8s handshakes/s %6s cpu-s %8s handshakes/cpu-s\n" "$name" "$mode" "$rate" "$cpu" "$per" >&2
  echo "$rate $per"
}
for mode in -new -reuse; do
  echo "# new TLS connection per request ($mode), openssl s_time, ${DUR}s" >&2
  read -r h_rate h_per < <(s_time haproxy "$HAP_PID" $HAP $mode)
  read -r n_rate n_per < <(s_time nginx "$NGX_PID" $NGX $mode)
  read -r e_rate e_per < <(s_time edged "$EDGE_PID" $EDGE $mode)
  printf "ratio    %-7s edged/nginx per CPU-second %s; edged/haproxy per CPU-second %s\n" "$mode" "$(ratio "$e_per" "$n_per")" "$(ratio "$e_per" "$h_per")" >&2
done
