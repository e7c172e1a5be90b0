#!/usr/bin/env bash
# The operator's benchmark: every proxy configured the way it is deployed, all
# in one run on this machine, one worker/thread each pinned to CPU 0, wrk and
# the nginx origin on CPU 1, 50 keep-alive connections. edged runs from a
# tenant file with "compress": true, caching on and a certificate pair (ECDSA
# P-256, the same one every peer uses); nginx has proxy_cache (+ gzip on its
# compressing rows), HAProxy its cache, Varnish malloc storage.
# Rows (requests per proxy CPU-second, and edged's ratio to the best peer):
#   hit-1k (compressing route, identity answer), hit-1k-nc (route without
#   compression), hit-16k, hit-256k, nostore-1k (caching on, the origin answers
#   no-store), tls-hit-1k (keep-alive), gzip-64k (64 KiB JSON, Accept-Encoding: gzip),
#   idle (memory each of IDLE=4000 idle keep-alive connections takes, after one hit on each;
#   measured first, on fresh processes).
# PEERS="haproxy edged" runs only those (a ratio needs a peer in the run).
# ROUNDS=N measures each row N times, the order reversed every other round, and
# prints the median of edged's per-round ratio with its spread: this machine's
# speed drifts by 10-20% between runs, as much as the targets' margins.
# usage: [ROWS="hit-1k tls-hit-1k ..."] [PEERS=...] [ROUNDS=N] tools/bench/operator.sh [seconds=10]
DUR=${1:-10}
source "$(dirname "$0")/lib.sh"
for p in varnish haproxy; do command -v ${p}d >/dev/null || command -v $p >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $p >/dev/null; }; done
NGX=18581; VAR=18582; HAP=18583; EDGE=18584; NGXS=18591; HAPS=18593; EDGES=18594
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" \
  -days 30 -subj /CN=bench -addext subjectAltName=DNS:bench 2>/dev/null
cat "$W/cert.pem" "$W/key.pem" > "$W/combined.pem"
# /ns/ answers no-store; everything else max-age=3600.
start_origin "add_header Cache-Control \"max-age=3600\";
  location /ns/ { alias $W/www/; add_header Cache-Control \"no-store\"; }"
mkdir -p "$W/ngxcache"
write_nginx_peer "$(cat <<CONF
  proxy_cache_path $W/ngxcache keys_zone=c:10m max_size=1g;
  gzip on; gzip_types application/json; gzip_proxied any; gzip_comp_level 6;
  server {
    listen 127.0.0.1:$NGX;
    listen 127.0.0.1:$NGXS ssl;
    ssl_certificate $W/cert.pem;
    ssl_certificate_key $W/key.pem;
    ssl_session_cache shared:SSL:10m;
    location /nc/ { proxy_pass http://origin/; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_cache c; gzip off; }
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_cache c; }
  }
CONF
)"
write_haproxy_peer "  ssl-default-bind-options ssl-min-ver TLSv1.2" "$(cat <<CONF
$HAPROXY_CACHE
frontend fe
  bind 127.0.0.1:$HAP
  bind 127.0.0.1:$HAPS ssl crt $W/combined.pem alpn http/1.1
  filter cache c
  filter compression
  compression algo gzip
  compression type application/json
  http-request cache-use c
  http-response cache-store c
  http-request replace-path /nc/(.*) /\1
  default_backend be
backend be
  server o 127.0.0.1:$ORIGIN
CONF
)"
cat > "$W/varnish.vcl" <<CONF
vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "$ORIGIN"; }
sub vcl_recv { if (req.url ~ "^/nc/") { set req.url = regsub(req.url, "^/nc/", "/"); } }
sub vcl_backend_response { if (beresp.http.content-type ~ "json") { set beresp.do_gzip = true; } }
CONF
cat > "$W/tenants/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"], "default": true, "compress": true,
  "tls": { "certificates": [ { "cert": "$W/cert.pem", "key": "$W/key.pem" } ] },
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 } },
  "routes": [ { "prefix": "/nc/", "origin": "o", "strip_prefix": true, "compress": false },
              { "prefix": "/", "origin": "o" } ] }
CONF
echo '{ "limits": { "max_connections_per_ip": 0, "max_requests_per_connection": 0, "keepalive_timeout": "300s" } }' > "$W/server.json"
nginx -c "$W/nginx.conf"
haproxy -D -f "$W/haproxy.cfg"
start_varnish $VAR
taskset -c 0 .build/release/edged --tenants "$W/tenants" --config "$W/server.json" --http 127.0.0.1:$EDGE --https 127.0.0.1:$EDGES \
  --workers 1 --access-log off --state "$W/state" 2>"$W/edged.err" &
EDGE_PID=$!; PIDS+=($EDGE_PID)
wait_port $EDGE; wait_port $VAR; sleep 1
NGX_PID=$(pgrep -P "$(cat "$W/nginx.pid")" | head -1)
HAP_PID=$(cat "$W/haproxy.pid")
VAR_PID=$(varnish_pid)

echo "# operator benchmark: $(git log -1 --format=%h) + work tree; ${DUR}s per run, 50 connections; req/cpu-s = requests per proxy CPU-second" >&2
if [ -z "${ROWS:-}" ] || [[ " $ROWS " == *" idle "* ]]; then
  echo "# idle (first, on fresh processes: pools that later rows grew would absorb them): RSS added by ${IDLE:=4000} idle keep-alive connections (KiB before, after, bytes per connection)" >&2
  for peer in "nginx:$NGX_PID:$NGX" "haproxy:$HAP_PID:$HAP" "edged:$EDGE_PID:$EDGE"; do
    IFS=: read -r name pid port <<<"$peer"
    echo "idle     $name $(python3 tools/bench/idle_conns.py "$port" "$pid" "$IDLE" bench)" >&2
  done
fi
ALL_ROWS=("hit-1k /1k.bin http" "hit-1k-nc /nc/1k.bin http" "hit-16k /16k.bin http" "hit-256k /256k.bin http"
          "nostore-1k /ns/1k.bin http" "tls-hit-1k /1k.bin https" "gzip-64k /64k.json http")
for row in "${ALL_ROWS[@]}"; do
  [ -n "${ROWS:-}" ] && ! [[ " $ROWS " == *" ${row%% *} "* ]] && continue
  set -- $row
  kind=$1 path=$2 scheme=$3
  extra=(); [ "$kind" = gzip-64k ] && extra=(-H "Accept-Encoding: gzip")
  echo "# $kind: $path over $scheme" >&2
  peers="nginx:$NGX_PID:$NGX:$NGXS haproxy:$HAP_PID:$HAP:$HAPS"
  [ "$scheme" = http ] && peers="$peers varnish:$VAR_PID:$VAR:"
  ratios=()
  for ((round = 1; round <= ${ROUNDS:-1}; round++)); do
    order=$(round_order $round $peers "edged:$EDGE_PID:$EDGE:$EDGES")
    best=0; bestname=; mine=0
    for peer in $order; do
      IFS=: read -r name pid port sport <<<"$peer"
      [ -n "${PEERS:-}" ] && ! [[ " $PEERS " == *" $name "* ]] && continue
      [ "$scheme" = https ] && port=$sport
      for _ in 1 2; do curl -sk -o /dev/null -H "Host: bench" "${extra[@]}" "$scheme://127.0.0.1:$port$path"; done
      read -r rps per < <(run_wrk "$name" "$pid" "$scheme://127.0.0.1:$port$path" 50 "${extra[@]}")
      if [ "$name" = edged ]; then mine=$per
      elif [ "$per" -gt "$best" ]; then best=$per; bestname=$name; fi
    done
    r=$(ratio "$mine" "$best")
    ratios+=("$r")
    printf "ratio    %-11s edged/%s per CPU-s %s\n" "$kind" "$bestname" "$r" >&2
  done
  if [ "${ROUNDS:-1}" -gt 1 ]; then print_median "$kind" "edged/best per CPU-s" "${ratios[@]}"; fi
done

