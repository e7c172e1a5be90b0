#!/usr/bin/env bash
# Steering cost (issue #18): 1 KiB pass-through (caching off) over 8 origin
# servers, each request a different URL (wrk script), balanced round-robin
# and by consistent hashing of the URL with active health checks running
# (every 1 s on all 8). edged, nginx (`hash $request_uri consistent`) and
# HAProxy (`balance uri`, `hash-type consistent`, `check inter 1s`), one
# worker/thread each pinned to CPU 0; wrk and the origin (one nginx, 8
# ports) on CPU 1. Runs alternate, RUNS times; edged-hash0 is the hash group
# without health checks. Target: edged's hash row at
# most 3% below its round-robin row per CPU-second.
# usage: tools/bench/steering.sh [seconds=8] [runs=3]
DUR=${1:-8}
RUNS=${2:-3}
source "$(dirname "$0")/lib.sh"
command -v haproxy >/dev/null || { apt-get install -y -qq haproxy >/dev/null; }
RR=18101; HASH=18102; HASH0=18107; NGX_RR=18103; NGX_HASH=18104; HAP_RR=18105; HAP_HASH=18106
PORTS=$(seq 19001 19008)
start_origin "$(for p in $PORTS; do printf 'listen 127.0.0.1:%s; ' "$p"; done)"
servers=$(for p in $PORTS; do printf '"127.0.0.1:%s",' "$p"; done); servers=${servers%,}
mkdir -p "$W/rr" "$W/hash" "$W/hash0"
cat > "$W/rr/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"],
  "origins": { "o": { "servers": [$servers], "keepalive": 64 } },
  "routes": [ { "prefix": "/", "origin": "o", "cache": false } ] }
CONF
cat > "$W/hash/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"],
  "origins": { "o": { "servers": [$servers], "keepalive": 64, "balance": "hash",
                      "health_check": { "path": "/1k.bin", "interval": "1s" } } },
  "routes": [ { "prefix": "/", "origin": "o", "cache": false } ] }
CONF
# The same hash group without health checks (what the checks themselves cost).
cat > "$W/hash0/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"],
  "origins": { "o": { "servers": [$servers], "keepalive": 64, "balance": "hash" } },
  "routes": [ { "prefix": "/", "origin": "o", "cache": false } ] }
CONF
start_tenants rr $RR; RR_PID=$STARTED
start_tenants hash $HASH; HASH_PID=$STARTED
start_tenants hash0 $HASH0; HASH0_PID=$STARTED

upstreams=$(for p in $PORTS; do printf 'server 127.0.0.1:%s; ' "$p"; done)
write_nginx_peer "$(cat <<CONF
  upstream rr { $upstreams keepalive 64; }
  upstream hashed { hash \$request_uri consistent; $upstreams keepalive 64; }
  server { listen 127.0.0.1:$NGX_RR;
    location / { proxy_pass http://rr; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.0.1:$NGX_HASH;
    location / { proxy_pass http://hashed; proxy_http_version 1.1; proxy_set_header Connection ""; } }
CONF
)"
nginx -c "$W/nginx.conf"
NGX_PID=$(pgrep -P "$(cat "$W/nginx.pid")" | head -1)

hap_servers() { local i=0; for p in $PORTS; do i=$((i + 1)); printf '  server s%s 127.0.0.1:%s %s\n' "$i" "$p" "$1"; done; }
write_haproxy_peer "" "$(cat <<CONF
frontend rr
  bind 127.0.0.1:$HAP_RR
  default_backend rr
frontend hashed
  bind 127.0.0.1:$HAP_HASH
  default_backend hashed
backend rr
  balance roundrobin
$(hap_servers "")
backend hashed
  balance uri
  hash-type consistent
  option httpchk GET /1k.bin
$(hap_servers "check inter 1s")
CONF
)"
taskset -c 0 haproxy -D -f "$W/haproxy.cfg"
sleep 1
HAP_PID=$(cat "$W/haproxy.pid")

# 4096 requests made once, then cycled (formatting one per request would make wrk the limit).
cat > "$W/urls.lua" <<'LUA'
local reqs, n = {}, 0
init = function()
  for i = 1, 4096 do reqs[i] = wrk.format(nil, "/1k.bin?k=" .. ((i * 7919) % 100000)) end
end
request = function()
  n = n % 4096 + 1
  return reqs[n]
end
LUA

# rows ARGS...: one round of the six, then the ratios.
rows() {
  read -r _ rr < <(run_wrk edged-rr "$RR_PID" "http://127.0.0.1:$RR/$1" 50 "${@:2}")
  read -r _ hh < <(run_wrk edged-hash "$HASH_PID" "http://127.0.0.1:$HASH/$1" 50 "${@:2}")
  read -r _ h0 < <(run_wrk edged-hash0 "$HASH0_PID" "http://127.0.0.1:$HASH0/$1" 50 "${@:2}")
  read -r _ nr < <(run_wrk nginx-rr "$NGX_PID" "http://127.0.0.1:$NGX_RR/$1" 50 "${@:2}")
  read -r _ nh < <(run_wrk nginx-hash "$NGX_PID" "http://127.0.0.1:$NGX_HASH/$1" 50 "${@:2}")
  read -r _ ar < <(run_wrk hap-rr "$HAP_PID" "http://127.0.0.1:$HAP_RR/$1" 50 "${@:2}")
  read -r _ ah < <(run_wrk hap-hash "$HAP_PID" "http://127.0.0.1:$HAP_HASH/$1" 50 "${@:2}")
  printf "ratio  edged hash+checks/rr per CPU-second %s (hash alone %s)   edged/nginx rr %s hash %s   edged/HAProxy rr %s hash %s\n" \
    "$(ratio "$hh" "$rr")" "$(ratio "$h0" "$rr")" "$(ratio "$rr" "$nr")" "$(ratio "$hh" "$nh")" "$(ratio "$rr" "$ar")" "$(ratio "$hh" "$ah")" >&2
}
# One URL: the proxies saturate; the hash is computed and the ring walked per
# request, and bounded load spreads the one hot key (HAProxy and nginx send it all to one server).
echo "# 1 KiB pass-through over 8 servers, one URL; 1 worker on CPU 0, wrk + origin on CPU 1, ${DUR}s per run" >&2
for i in $(seq "$RUNS"); do rows 1k.bin; done
# Varied URLs (a wrk script): wrk's script, not the proxies, is the limit here (they idle at ~30%).
echo "# the same with 4096 URLs cycled" >&2
for i in $(seq "$RUNS"); do rows "" -s "$W/urls.lua"; done
grep -h "DOWN" "$W"/*.err >&2 || echo "# no server went down during the runs" >&2
