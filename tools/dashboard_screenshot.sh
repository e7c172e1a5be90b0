#!/usr/bin/env bash
# Makes tools/dashboard.png (the README's picture): edged on the example tenants
# with python origins for the api tenant, a minute of mixed traffic (hits, misses,
# 404s, a few origin errors), then headless Chromium through `edgectl dashboard`.
# usage: tools/dashboard_screenshot.sh [seconds of traffic=60]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
swift build -c release --product edged --product edgectl >/dev/null 2>&1 || swift build -c release >/dev/null
W=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"' EXIT
mkdir -p "$W/www/v1"
echo '{"items": [1, 2, 3]}' > "$W/www/v1/items"
python3 -m http.server 9000 --bind 127.0.0.1 --directory "$W/www" >/dev/null 2>&1 & PIDS+=($!)
python3 -m http.server 9001 --bind 127.0.0.1 --directory "$W/www" >/dev/null 2>&1 & PIDS+=($!)
.build/release/edged --state "$W/state" --http 127.0.0.1:18600 --https 127.0.0.1:18601 --access-log off >"$W/edged.log" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do [ -S "$W/state/admin.sock" ] && break; sleep 0.1; done
.build/release/edgectl --state "$W/state" dashboard > "$W/url" & PIDS+=($!)
sleep 1
URL=$(grep -o 'http://[^ ]*' "$W/url")
end=$((SECONDS + SECS + 30))   # (traffic goes on while the picture is taken)
( i=0
  while [ $SECONDS -lt $end ]; do
    i=$((i + 1))
    curl -s -o /dev/null -H 'Host: localhost' "http://127.0.0.1:18600/" &
    curl -s -o /dev/null -H 'Host: localhost' "http://127.0.0.1:18600/missing-$((i % 9))" &
    curl -s -o /dev/null -H 'Host: api.localhost' "http://127.0.0.1:18600/v1/items?page=$((i % 5))" &
    curl -s -o /dev/null -H 'Host: api.localhost' "http://127.0.0.1:18600/docs/" &
    wait
    sleep 0.$((RANDOM % 3))
  done ) &
PIDS+=($!)
sleep "$SECS"
echo | /usr/bin/python3 tools/testclient/dashboard_check.py "$URL" tools/dashboard.png
