#!/usr/bin/env bash
# Pass-through benchmark: edged vs nginx as reverse proxies in front of the
# same origin (nginx serving static files). Each proxy runs one worker pinned
# to CPU 0; wrk and the origin share CPU 1. Reports requests/s, requests per
# proxy CPU-second, and the ratio edged/nginx; then the RSS added by idle
# keep-alive connections.
#
# usage: tools/bench/passthrough.sh [seconds=10] [idle_conns=5000]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
IDLE=${2:-5000}
command -v wrk >/dev/null && command -v nginx >/dev/null || {
  echo "installing wrk and nginx" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null
}
swift build -c release --product edged >/dev/null
ulimit -n "$(ulimit -Hn)"
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [ -f $W/origin.pid ] && kill $(cat $W/origin.pid) 2>/dev/null; [ -f $W/proxy.pid ] && kill $(cat $W/proxy.pid) 2>/dev/null; rm -rf $W' EXIT
chmod 755 $W
mkdir -p $W/www $W/tenants
head -c 1024 /dev/urandom > $W/www/1k.bin
head -c 262144 /dev/urandom > $W/www/256k.bin
ORIGIN=19000; NGX=18081; EDGE=18082

cat > $W/origin.conf <<CONF
worker_processes 1;
worker_cpu_affinity 10;
pid $W/origin.pid;
error_log $W/origin.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$ORIGIN; root $W/www; }
}
CONF
cat > $W/proxy.conf <<CONF
worker_processes 1;
worker_cpu_affinity 01;
worker_rlimit_nofile 19000;
pid $W/proxy.pid;
error_log $W/proxy.err;
events { worker_connections 20000; }
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
      proxy_buffering on;
    }
  }
}
CONF
cat > $W/tenants/bench.json <<CONF
{ "name": "bench", "hosts": ["bench"],
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 } },
  "routes": [ { "prefix": "/", "origin": "o" } ] }
CONF
cat > $W/server.json <<CONF
{ "limits": { "keepalive_timeout": "300s" } }
CONF

nginx -c $W/origin.conf
nginx -c $W/proxy.conf
taskset -c 0 .build/release/edged --tenants $W/tenants --config $W/server.json --http 127.0.0.1:$EDGE --workers 1 --access-log off --state $W/state 2>$W/edged.err &
EDGE_PID=$!
sleep 1
NGX_PID=$(pgrep -P "$(cat $W/proxy.pid)" | head -1)

cpu_ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
HZ=$(getconf CLK_TCK)

run() { # name port pid path conns
  local name=$1 port=$2 pid=$3 path=$4 conns=$5
  taskset -c 1 wrk -t1 -c$conns -d2s -H "Host: bench" http://127.0.0.1:$port$path >/dev/null
  local t0=$(cpu_ticks $pid)
  local out=$(taskset -c 1 wrk -t1 -c$conns -d${DUR}s -H "Host: bench" http://127.0.0.1:$port$path)
  local t1=$(cpu_ticks $pid)
  local rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
  local cpu=$(echo "scale=2; ($t1 - $t0) / $HZ" | bc)
  local per=$(echo "scale=0; $rps * $DUR / ($cpu + 0.001)" | bc)
  printf "%-8s %-10s %10s req/s %8s cpu-s %10s req/cpu-s %s\n" "$name" "$path" "$rps" "$cpu" "$per" "$errs" >&2
  echo "$rps $per"
}

echo "# pass-through, 1 worker on CPU 0, wrk + origin on CPU 1, ${DUR}s per run" >&2
for spec in "1k.bin 50" "256k.bin 50"; do
  set -- $spec
  read n_rps n_per < <(run nginx $NGX $NGX_PID /$1 $2)
  read e_rps e_per < <(run edged $EDGE $EDGE_PID /$1 $2)
  printf "ratio    %-10s edged/nginx req/s %.2f   per CPU-second %.2f\n" "/$1" "$(echo "$e_rps / $n_rps" | bc -l)" "$(echo "$e_per / $n_per" | bc -l)" >&2
done

echo "# RSS added by $IDLE idle keep-alive connections (KiB before, after, bytes per connection)" >&2
echo "nginx  $(python3 tools/bench/idle_conns.py $NGX $NGX_PID $IDLE bench)" >&2
echo "edged  $(python3 tools/bench/idle_conns.py $EDGE $EDGE_PID $IDLE bench)" >&2
