#!/usr/bin/env bash
# Compressed cache hits: edged vs nginx (proxy_cache + gzip on, level 6: it
# compresses on every hit) and Varnish (do_gzip: it stores gzip once), one
# worker each pinned to CPU 0, wrk on CPU 1, 50 keep-alive connections.
# 64 KiB JSON and 64 KiB HTML, asked for with "Accept-Encoding: br, gzip" and
# with "gzip" only. Prints requests/s, requests per proxy CPU-second, ratios,
# and the compressed sizes (with `brotli -q 5` and `gzip -6` for reference).
# usage: tools/bench/compress.sh [seconds=10]
DUR=${1:-10}
source "$(dirname "$0")/lib.sh"
for p in varnish brotli; do command -v $p >/dev/null || command -v ${p}d >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $p >/dev/null; }; done
NGX=18281; VAR=18282; EDGE=18284

# Deterministic, realistic bodies: an API response and a page.
python3 - "$W/www" <<'PY'
import json, random, sys
random.seed(7)
words = "edge cache tenant origin brotli gzip vary purge stale revalidate header status request response".split()
items, n = [], 0
while True:
    it = {"id": n, "name": " ".join(random.choice(words) for _ in range(3)), "price": round(random.random() * 100, 2),
          "tags": random.sample(words, 3), "active": random.random() > 0.3, "sku": "SKU-%06d" % random.randrange(10**6)}
    items.append(it); n += 1
    if len(json.dumps({"items": items})) > 65536: break
open(sys.argv[1] + "/data.json", "w").write(json.dumps({"items": items[:-1]}).ljust(65536))
rows, html = [], "<!doctype html><html><head><title>edge</title><link rel=stylesheet href=/s.css></head><body><main>"
while len(html) < 65536 - 200:
    html += '<article class="card"><h2>%s</h2><p>%s</p><a href="/p/%d">more</a></article>\n' % (
        " ".join(random.choice(words) for _ in range(2)), " ".join(random.choice(words) for _ in range(25)), random.randrange(10**5))
html += "</main></body></html>"
open(sys.argv[1] + "/page.html", "w").write(html.ljust(65536))
PY
start_origin 'add_header Cache-Control "max-age=3600"; types { application/json json; text/html html; }'
mkdir -p "$W/ngxcache"
write_nginx_peer "$(cat <<CONF
  gzip on; gzip_comp_level 6; gzip_types application/json; gzip_min_length 1024; gzip_vary on; gzip_proxied any;
  proxy_cache_path $W/ngxcache keys_zone=c:10m max_size=1g;
  server {
    listen 127.0.0.1:$NGX;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Accept-Encoding ""; proxy_cache c; }
  }
CONF
)"
cat > "$W/varnish.vcl" <<CONF
vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "$ORIGIN"; }
sub vcl_backend_response { set beresp.do_gzip = true; }
CONF
cat > "$W/tenants/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"], "default": true, "compress": true,
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 } },
  "routes": [ { "prefix": "/", "origin": "o" } ] }
CONF
nginx -c "$W/nginx.conf"
start_varnish $VAR
start_edged $EDGE
sleep 2
NGX_PID=$(pgrep -P "$(cat "$W/nginx.pid")" | head -1)
VAR_PID=$(varnish_pid)

echo "# compressed sizes of the 64 KiB bodies (bytes)" >&2
for f in data.json page.html; do
  sizes="identity $(wc -c < "$W/www/$f")  gzip-6 $(gzip -6 -c "$W/www/$f" | wc -c)  brotli-q5 $(brotli -q 5 -c "$W/www/$f" | wc -c)"
  for ae in "br" "gzip"; do
    for port in $NGX $VAR $EDGE; do curl -s -o /dev/null -H "Host: bench" -H "Accept-Encoding: $ae" "http://127.0.0.1:$port/$f"; done
    sizes="$sizes  edged-$ae $(curl -s -H "Host: bench" -H "Accept-Encoding: $ae" "http://127.0.0.1:$EDGE/$f" | wc -c)"
  done
  sizes="$sizes  nginx-gzip $(curl -s -H "Host: bench" -H "Accept-Encoding: gzip" "http://127.0.0.1:$NGX/$f" | wc -c)"
  sizes="$sizes  varnish-gzip $(curl -s -H "Host: bench" -H "Accept-Encoding: gzip" "http://127.0.0.1:$VAR/$f" | wc -c)"
  echo "sizes    $f  $sizes" >&2
done

for f in data.json page.html; do
  for ae in "gzip" "br, gzip"; do
    echo "# hits, $f, Accept-Encoding: $ae, 50 connections, ${DUR}s" >&2
    read -r n_rps n_per < <(run_wrk nginx "$NGX_PID" "http://127.0.0.1:$NGX/$f" 50 -H "Accept-Encoding: $ae")
    read -r v_rps v_per < <(run_wrk varnish "$VAR_PID" "http://127.0.0.1:$VAR/$f" 50 -H "Accept-Encoding: $ae")
    read -r e_rps e_per < <(run_wrk edged "$EDGE_PID" "http://127.0.0.1:$EDGE/$f" 50 -H "Accept-Encoding: $ae")
    printf "ratio    %-9s %-9s edged/varnish req/s %s per CPU-s %s   edged/nginx req/s %s per CPU-s %s\n" "$f" "$ae" \
      "$(ratio "$e_rps" "$v_rps")" "$(ratio "$e_per" "$v_per")" "$(ratio "$e_rps" "$n_rps")" "$(ratio "$e_per" "$n_per")" >&2
  done
done
