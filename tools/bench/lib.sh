# Shared pieces of the benchmarks: install peers, an nginx origin on CPU 1,
# CPU accounting, and a wrk run that prints one row. Source it; it sets $W.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
need=()
for c in wrk nginx bc; do command -v $c >/dev/null || need+=($c); done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light bc >/dev/null
fi
swift build -c release --product edged >/dev/null
ulimit -n "$(ulimit -Hn)"
W=$(mktemp -d)
chmod 755 "$W"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$W"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/www" "$W/tenants"
head -c 1024 /dev/urandom > "$W/www/1k.bin"
head -c 16384 /dev/urandom > "$W/www/16k.bin"
head -c 262144 /dev/urandom > "$W/www/256k.bin"
# 64 KiB of JSON text (compresses like an API's answers do).
python3 -c "import json, sys; sys.stdout.write(json.dumps([{'id': i, 'name': 'item %d' % i, 'tags': ['a', 'b'], 'score': i / 2} for i in range(1500)])[:65536])" \
  > "$W/www/64k.json"
ORIGIN=19000
HZ=$(getconf CLK_TCK)

# start_origin [extra server directives]   (ORIGIN_LOG=FILE: the origin logs each request there)
start_origin() {
  cat > "$W/origin.conf" <<CONF
worker_processes 1;
worker_cpu_affinity 10;
pid $W/origin.pid;
error_log $W/origin.err;
events { worker_connections 4096; }
http { access_log ${ORIGIN_LOG:-off}; keepalive_requests 1000000; types { application/json json; application/octet-stream bin; }
       server { listen 127.0.0.1:$ORIGIN; root $W/www; ${1:-} } }
CONF
  nginx -c "$W/origin.conf"
}

# write_nginx_peer HTTP_LINES: $W/nginx.conf for the nginx under test: one worker on CPU 0,
# the origin as upstream "origin" with keep-alive; HTTP_LINES (servers, caches) go in http {}.
# sendfile is on, as Debian's nginx.conf has it (nginx's own default is off: its cache hits
# are then read into memory and written, a copy more). Debian's tcp_nopush is left off: here it
# stalled nginx's proxied misses (a fill of 32,768 objects took many minutes, one hit run had a
# p99 of 615 ms), and its hits were no faster with it (64 KiB disk hits 35.2 k req/cpu-s with it,
# 36.7 k without).
write_nginx_peer() {
  cat > "$W/nginx.conf" <<CONF
worker_processes 1;
worker_cpu_affinity 01;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:$ORIGIN; keepalive 64; }
$1
}
CONF
}

# write_haproxy_peer GLOBAL_EXTRA REST: $W/haproxy.cfg for the HAProxy under test: one thread
# on CPU 0, HTTP mode, connection reuse; GLOBAL_EXTRA goes in "global", REST (caches,
# frontend, backend) follows "defaults".
write_haproxy_peer() {
  cat > "$W/haproxy.cfg" <<CONF
global
  nbthread 1
  cpu-map 1/1 0
  maxconn 4096
  pidfile $W/haproxy.pid
$1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
$2
CONF
}

# write_tls_tenant ROUTES: $W/tenants/bench.json, the default tenant "bench" with the
# benchmark certificate ($W/cert.pem, $W/key.pem) and the origin, with these routes.
write_tls_tenant() {
  cat > "$W/tenants/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"], "default": true,
  "tls": { "certificates": [ { "cert": "$W/cert.pem", "key": "$W/key.pem" } ] },
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 } },
  "routes": [ $1 ] }
CONF
}

# HAProxy's cache as every benchmark configures it: 1 GiB, objects up to 1 MiB, max-age 3600.
HAPROXY_CACHE="cache c
  total-max-size 1024
  max-object-size 1048576
  max-age 3600"

# write_haproxy_cache_peer PORT: $W/haproxy.cfg for HAProxy's cache (1 GiB, objects up to
# 1 MiB, max-age 3600) on PORT in front of the origin.
write_haproxy_cache_peer() {
  write_haproxy_peer "" "$(cat <<CONF
$HAPROXY_CACHE
frontend fe
  bind 127.0.0.1:$1
  default_backend be
backend be
  http-request cache-use c
  http-response cache-store c
  server o 127.0.0.1:$ORIGIN
CONF
)"
}

# start_varnish PORT: varnishd (malloc storage, one thread pool) on CPU 0 with $W/varnish.vcl.
start_varnish() {
  taskset -c 0 varnishd -a 127.0.0.1:$1 -f "$W/varnish.vcl" -s malloc,256m -n "$W/varnish" -P "$W/varnish.pid" \
    -p thread_pools=1 -p thread_pool_min=10 -p thread_pool_max=200 >/dev/null 2>&1
}

# start_edged PORT: .build/release/edged with one worker on CPU 0 and $W/tenants; sets EDGE_PID.
# (Keep-alive connections live as long as the peers' do: nginx is given keepalive_requests 1000000.)
start_edged() {
  echo '{ "limits": { "max_requests_per_connection": 0 } }' > "$W/edged-server.json"
  taskset -c 0 .build/release/edged --tenants "$W/tenants" --config "$W/edged-server.json" --http 127.0.0.1:$1 --workers 1 --access-log off --state "$W/state" 2>"$W/edged.err" &
  EDGE_PID=$!; PIDS+=($EDGE_PID)
}

# start_tenants DIR PORT: an edged on $W/DIR's tenant files (one worker on CPU 0, keep-alive
# as long as the peers'); sets STARTED to its pid and waits for its port.
start_tenants() {
  echo '{ "limits": { "keepalive_timeout": "300s", "max_connections_per_ip": 0, "max_requests_per_connection": 0 } }' > "$W/server.json"
  taskset -c 0 .build/release/edged --tenants "$W/$1" --config "$W/server.json" --http 127.0.0.1:$2 --workers 1 --access-log off --state "$W/state-$1" >"$W/$1.out" 2>"$W/$1.err" &
  STARTED=$!; PIDS+=($STARTED)
  wait_port "$2"
}

# varnish_pid: the varnish child process, pinned to CPU 0 with all its threads.
varnish_pid() {
  local pid; pid=$(pgrep -P "$(cat "$W/varnish.pid")" | head -1)
  taskset -a -p -c 0 "$pid" >/dev/null
  echo "$pid"
}

# wait_port PORT: until something listens on 127.0.0.1:PORT (at most 10 s).
wait_port() {
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on port $1" >&2; return 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# cpu_split PID: its user and kernel ticks so far.
cpu_split() { awk '{print $14, $15}' "/proc/$1/stat"; }

# run_wrk NAME PID URL CONNS [extra wrk args...]  -> prints a row to stderr, "rps per_cpu_s" to stdout
run_wrk() {
  local name=$1 pid=$2 url=$3 conns=$4; shift 4
  taskset -c 1 wrk -t1 -c"$conns" -d2s -H "Host: bench" "$@" "$url" >/dev/null 2>&1 || true
  local u0 k0; read -r u0 k0 < <(cpu_split "$pid")
  local out; out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${DUR}s" -H "Host: bench" "$@" "$url")
  local u1 k1; read -r u1 k1 < <(cpu_split "$pid")
  local rps; rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local reqs; reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  local errs; errs=$(echo "$out" | awk '/Non-2xx|Socket errors/' | tr '\n' ' ')
  local cpu; cpu=$(echo "scale=2; ($u1 - $u0 + $k1 - $k0) / $HZ" | bc)
  local per; per=$(echo "scale=0; $rps * $DUR / ($cpu + 0.001)" | bc)
  # µs of the proxy's user and kernel time per request: the kernel's share (the
  # same syscalls and segments for every proxy) is most of a small request's cost.
  local us; us=$(awk -v u=$((u1 - u0)) -v k=$((k1 - k0)) -v r="${reqs:-0}" -v hz="$HZ" \
    'BEGIN { if (r > 0) printf "user %.2f sys %.2f us/req", u * 1e6 / hz / r, k * 1e6 / hz / r }')
  printf "%-8s %-28s %10s req/s %6s cpu-s %8s req/cpu-s  %s %s\n" "$name" "${url##*/}$*" "$rps" "$cpu" "$per" "$us" "$errs" >&2
  echo "$rps $per"
}

ratio() { echo "scale=2; $1 / $2" | bc; }
# round_order ROUND WORD...: the words as given on odd rounds, reversed on even
# ones (ROUNDS=N: a drift of this machine's speed during a row then does not
# favour whoever runs first).
round_order() { local r=$1; shift; if [ $((r % 2)) -eq 0 ]; then printf '%s\n' "$@" | tac | tr '\n' ' '; else echo "$@"; fi; }
# print_median ROW LABEL RATIO...: the median of the rounds' ratios and their spread.
print_median() {
  local row=$1 label=$2; shift 2
  local sorted; sorted=($(printf '%s\n' "$@" | sort -n))
  printf "median   %-11s %s %s over %d rounds (min %s, max %s)\n" "$row" "$label" "${sorted[$(( ${#sorted[@]} / 2 ))]}" \
    "${#sorted[@]}" "${sorted[0]}" "${sorted[-1]}" >&2
}
