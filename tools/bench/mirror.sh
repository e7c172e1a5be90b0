#!/usr/bin/env bash
# Mirroring cost (issue #18): 1 KiB pass-through (caching off) through edged
# without a mirror, with 10% and 100% of requests copied to a live shadow
# (the origin nginx on a second port), and with 100% copied to a stuck
# shadow (a socket that accepts into its backlog and never answers: copies
# fill the sender and are dropped). One worker pinned to CPU 0 (the sender
# thread with it); wrk, the origin and the shadow on CPU 1. Rows: requests
# per proxy CPU-second and wrk's latency percentiles for the main path.
# usage: tools/bench/mirror.sh [seconds=8] [runs=2]
DUR=${1:-8}
RUNS=${2:-2}
source "$(dirname "$0")/lib.sh"
SHADOW=19201; STUCK=19202
start_origin "listen 127.0.0.1:$SHADOW;"
python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $STUCK)); s.listen(4096)
time.sleep(100000)" &
PIDS+=($!)
names=(none m10 m100 stuck)
mirrors=('' '"mirror": {"origin": "shadow", "percent": 10},' '"mirror": {"origin": "shadow"},' '"mirror": {"origin": "stuck"},')
port=18301
declare -A PORT PID
for i in "${!names[@]}"; do
  n=${names[$i]}
  mkdir -p "$W/$n"
  cat > "$W/$n/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"],
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 },
               "shadow": { "servers": ["127.0.0.1:$SHADOW"] }, "stuck": { "servers": ["127.0.0.1:$STUCK"] } },
  "routes": [ { "prefix": "/", "origin": "o", "cache": false, ${mirrors[$i]} "compress": false } ] }
CONF
  start_tenants "$n" $port; PORT[$n]=$port; PID[$n]=$STARTED
  port=$((port + 1))
done
echo "# 1 KiB pass-through, 50 connections, ${DUR}s per run; mirror: none, 10% and 100% to a live shadow, 100% to a stuck one" >&2
for r in $(seq "$RUNS"); do
  for n in "${names[@]}"; do
    taskset -c 1 wrk -t1 -c50 -d2s -H "Host: bench" "http://127.0.0.1:${PORT[$n]}/1k.bin" >/dev/null 2>&1 || true
    t0=$(cpu_ticks "${PID[$n]}")
    out=$(taskset -c 1 wrk -t1 -c50 -d"${DUR}s" --latency -H "Host: bench" "http://127.0.0.1:${PORT[$n]}/1k.bin")
    t1=$(cpu_ticks "${PID[$n]}")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}'); p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    cpu=$(echo "scale=2; ($t1 - $t0) / $HZ" | bc)
    per=$(echo "scale=0; $rps * $DUR / ($cpu + 0.001)" | bc)
    errs=$(echo "$out" | awk '/Non-2xx|Socket errors/' | tr '\n' ' ')
    printf "%-6s %10s req/s %6s cpu-s %8s req/cpu-s  p50 %8s  p99 %8s %s\n" "$n" "$rps" "$cpu" "$per" "$p50" "$p99" "$errs" >&2
  done
done
# What the senders did with the copies (edgectl stats).
for n in m10 m100 stuck; do
  echo "# $n: $(.build/release/edgectl --state "$W/state-$n" stats 2>&1 | grep -m1 'mirror')" >&2
done
