#!/usr/bin/env bash
# What protection costs on the hot path: the 1 KiB hit through a tenant with a
# 100,000-prefix deny list, one rate limit that is never exceeded and 100
# request rules that do not match it (tools/bench/rules100.py), against the
# same tenant with none of them. Two edged processes, one worker each pinned to
# CPU 0 (run one after the other, alternating, RUNS times); wrk and the origin
# on CPU 1. Target (issue #17): at most 5% fewer requests per CPU-second.
# Then a flood: one client at 10 k requests/s against a limit of 10/s (paced by
# tools/bench/flood.py), while another client's latency is measured beside it.
# usage: tools/bench/protect.sh [seconds=8] [runs=3]
DUR=${1:-8}
RUNS=${2:-3}
source "$(dirname "$0")/lib.sh"
PLAIN=18091; PROT=18092
start_origin 'add_header Cache-Control "max-age=3600";'
mkdir -p "$W/plain" "$W/prot"
python3 - "$W/prot/deny.txt" <<'PY'
import random, sys
random.seed(17)
with open(sys.argv[1], "w") as f:
    seen = set()
    while len(seen) < 100_000:
        a = random.randrange(1 << 24)
        if a >> 16 == 127: continue            # keep loopback (the clients) out of it
        seen.add(a)
    for a in sorted(seen):
        f.write(f"{a >> 16}.{a >> 8 & 255}.{a & 255}.0/24\n")
PY
cat > "$W/plain/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"],
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 } },
  "routes": [ { "prefix": "/", "origin": "o" } ] }
CONF
cat > "$W/prot/bench.json" <<CONF
{ "name": "bench", "hosts": ["bench"],
  "origins": { "o": { "servers": ["127.0.0.1:$ORIGIN"], "keepalive": 64 } },
  "routes": [ { "prefix": "/", "origin": "o" } ],
  "access": { "deny_file": "deny.txt" }, $(python3 "$(dirname "$0")/rules100.py")
  "rate_limits": { "per-client": { "rate": "1000000/s", "burst": 1000000 },
                   "flood": { "rate": "10/s", "key": ["header:X-Flood"] } } }
CONF
start_tenants plain $PLAIN; PLAIN_PID=$STARTED
start_tenants prot $PROT; PROT_PID=$STARTED
curl -s -o /dev/null -H "Host: bench" "http://127.0.0.1:$PLAIN/1k.bin"; curl -s -o /dev/null -H "Host: bench" "http://127.0.0.1:$PROT/1k.bin"
echo "# 1 KiB hit, 1 worker on CPU 0, wrk + origin on CPU 1, ${DUR}s per run, $RUNS runs each (alternating)" >&2
sp=0; pp=0
for _ in $(seq "$RUNS"); do
  read -r _ p < <(run_wrk plain "$PLAIN_PID" "http://127.0.0.1:$PLAIN/1k.bin" 50); sp=$((sp + p))
  read -r _ q < <(run_wrk protect "$PROT_PID" "http://127.0.0.1:$PROT/1k.bin" 50); pp=$((pp + q))
done
printf "ratio    protected/plain per CPU-second %s (100 k deny prefixes, 100 rules, a rate limit per client, one keyed by a header)\n" "$(ratio "$pp" "$sp")" >&2

echo "# flood: one client at 10 k req/s (pipelined, X-Flood keyed at 10/s) beside another client at 200 req/s" >&2
alone=$(taskset -c 1 python3 tools/bench/flood.py probe $PROT 200 "$DUR")
taskset -c 1 python3 tools/bench/flood.py flood $PROT 10000 "$((DUR + 2))" "X-Flood: 1" > "$W/flood.out" &
FLOOD=$!; sleep 1
beside=$(taskset -c 1 python3 tools/bench/flood.py probe $PROT 200 "$DUR")
wait $FLOOD
printf "latency  other client alone: %s\n         beside the flood: %s\n         flood: %s\n" "$alone" "$beside" "$(cat "$W/flood.out")" >&2
