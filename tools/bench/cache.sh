#!/usr/bin/env bash
# Cache-hit benchmark: edged vs nginx proxy_cache, Varnish (malloc storage)
# and HAProxy's cache, one worker/thread each pinned to CPU 0, wrk on CPU 1,
# 50 keep-alive connections, 1 KiB, 16 KiB and 256 KiB objects that the
# origin marks cacheable (max-age=3600). Then 200 concurrent clients missing
# on one fresh URL, counting the origin's requests (collapsing).
# usage: tools/bench/cache.sh [seconds=10]
DUR=${1:-10}
source "$(dirname "$0")/lib.sh"
for p in varnish haproxy; do command -v ${p}d >/dev/null || command -v $p >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $p >/dev/null; }; done
NGX=18181; VAR=18182; HAP=18183; EDGE=18184
start_origin 'add_header Cache-Control "max-age=3600";'
mkdir -p "$W/ngxcache"
write_nginx_peer "$(cat <<CONF
  proxy_cache_path $W/ngxcache keys_zone=c:10m max_size=1g;
  server {
    listen 127.0.0.1:$NGX;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_cache c; proxy_cache_lock on; }
  }
CONF
)"
cat > "$W/varnish.vcl" <<CONF
vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "$ORIGIN"; }
CONF
write_haproxy_cache_peer "$HAP"
cat > "$W/tenants/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"], "default": true,
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 } },
  "routes": [ { "prefix": "/", "origin": "o" } ] }
CONF
nginx -c "$W/nginx.conf"
haproxy -D -f "$W/haproxy.cfg"
start_varnish $VAR
start_edged $EDGE
sleep 2
NGX_PID=$(pgrep -P "$(cat "$W/nginx.pid")" | head -1)
HAP_PID=$(cat "$W/haproxy.pid")
VAR_PID=$(varnish_pid)

for f in 1k.bin 16k.bin 256k.bin; do
  for port in $NGX $VAR $HAP $EDGE; do curl -s -o /dev/null -H "Host: bench" "http://127.0.0.1:$port/$f"; curl -s -o /dev/null -H "Host: bench" "http://127.0.0.1:$port/$f"; done
  echo "# cache hits, $f, 50 connections, ${DUR}s" >&2
  read -r n_rps n_per < <(run_wrk nginx "$NGX_PID" "http://127.0.0.1:$NGX/$f" 50)
  read -r v_rps v_per < <(run_wrk varnish "$VAR_PID" "http://127.0.0.1:$VAR/$f" 50)
  read -r h_rps h_per < <(run_wrk haproxy "$HAP_PID" "http://127.0.0.1:$HAP/$f" 50)
  read -r e_rps e_per < <(run_wrk edged "$EDGE_PID" "http://127.0.0.1:$EDGE/$f" 50)
  printf "ratio    %-9s edged/haproxy per CPU-s %s  edged/nginx per CPU-s %s  edged/varnish per CPU-s %s  (req/s: %s %s %s)\n" "$f" \
    "$(ratio "$e_per" "$h_per")" "$(ratio "$e_per" "$n_per")" "$(ratio "$e_per" "$v_per")" \
    "$(ratio "$e_rps" "$h_rps")" "$(ratio "$e_rps" "$n_rps")" "$(ratio "$e_rps" "$v_rps")" >&2
done

echo "# 200 concurrent clients missing on one fresh URL (origin answers after 300 ms)" >&2
cat > "$W/slow.py" <<'PY'
import http.server, socketserver, sys, time, threading
count = [0]
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == "/count":
            b = str(count[0]).encode()
        else:
            with lock: count[0] += 1
            time.sleep(0.3)
            b = b"fresh"
        self.send_response(200)
        self.send_header("Cache-Control", "max-age=60")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 512
S(("127.0.0.1", 19001), H).serve_forever()
PY
python3 "$W/slow.py" & PIDS+=($!)
cat > "$W/tenants/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"], "default": true,
  "origins": { "o": { "servers": ["127.0.0.1:19001"] } }, "routes": [ { "prefix": "/", "origin": "o" } ] }
CONF
kill -HUP $EDGE_PID
sleep 1
python3 - "$EDGE" <<'PY'
import socket, sys, threading
port = int(sys.argv[1])
results = []
def one():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /collapse HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        c = s.recv(4096)
        if not c: break
        data += c
    results.append(data.split(b" ")[1] if data else b"none")
ts = [threading.Thread(target=one) for _ in range(200)]
for t in ts: t.start()
for t in ts: t.join()
print("edged    200 clients: %d x 200 OK" % results.count(b"200"), file=sys.stderr)
PY
echo "edged    origin requests for /collapse: $(curl -s http://127.0.0.1:19001/count)" >&2
