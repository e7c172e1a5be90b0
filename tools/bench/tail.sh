#!/usr/bin/env bash
# What following the live tail costs: 1 KiB hits on a compressing route (as
# operators deploy it), JSON access log to a file, one worker on CPU 0 (its
# admin thread too: the tail's reader runs there), wrk on CPU 1; runs with
# nobody following, with one `edgectl log --json` attached (its output to
# /dev/null, on CPU 1), and with the dashboard's view leased (`edgectl top`
# polling /v1/live, which follows the tail for top URLs). Each kind runs
# RUNS times, alternating; the ratio is per edged CPU-second against nobody.
# usage: tools/bench/tail.sh [seconds=8] [runs=3]
DUR=${1:-8}
RUNS=${2:-3}
source "$(dirname "$0")/lib.sh"
swift build -c release --product edgectl >/dev/null
start_origin "add_header Cache-Control \"max-age=3600\";"
cat > "$W/tenants/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"], "default": true, "compress": true,
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 } },
  "routes": [ { "prefix": "/", "origin": "o" } ] }
CONF
echo '{ "limits": { "keepalive_timeout": "300s", "max_connections_per_ip": 0, "max_requests_per_connection": 0 } }' > "$W/server.json"
taskset -c 0 .build/release/edged --tenants "$W/tenants" --config "$W/server.json" --http 127.0.0.1:18490 --workers 1 \
  --access-log "$W/access.log" --state "$W/state" 2>"$W/edged.err" &
PID=$!; PIDS+=($PID)
wait_port 18490
curl -s -o /dev/null -H "Host: bench" http://127.0.0.1:18490/1k.bin
declare -A SUM
for round in $(seq "$RUNS"); do
  for kind in none log top; do
    helper=""
    case $kind in
      log) taskset -c 1 .build/release/edgectl --state "$W/state" log --json > /dev/null & helper=$! ;;
      top) taskset -c 1 .build/release/edgectl --state "$W/state" top > /dev/null & helper=$! ;;
    esac
    sleep 1.5
    read -r rps per < <(run_wrk "$kind" "$PID" "http://127.0.0.1:18490/1k.bin" 50)
    SUM[$kind]=$(( ${SUM[$kind]:-0} + per ))
    [ -n "$helper" ] && { kill "$helper"; wait "$helper" 2>/dev/null || true; }
    : > "$W/access.log"
  done
done
printf "ratio    reader attached / nobody per CPU-second: log %s  top %s\n" \
  "$(ratio "${SUM[log]}" "${SUM[none]}")" "$(ratio "${SUM[top]}" "${SUM[none]}")" >&2
