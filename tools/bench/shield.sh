#!/usr/bin/env bash
# The shield tier: 5 edges with and without 2 shields in front of one origin
# (real edged processes, each on its own loopback address), a Zipf(1) request
# mix over OBJECTS objects spread over the edges. Prints the origin's requests
# and the edges' hit ratio for both layouts, then the latency of a shield hit
# (an edge route that does not cache, so the edge passes to its home shield)
# against an edge hit, through the same edge.
# usage: tools/bench/shield.sh [requests=20000] [objects=2000]
source "$(dirname "$0")/lib.sh"
REQS=${1:-20000}
OBJS=${2:-2000}
EDGED=$PWD/.build/release/edged
python3 tools/testorigin/origin.py 19100 bench-origin > "$W/origin.port" &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$W/origin.port" ] && break; sleep 0.1; done
OPORT=$(head -1 "$W/origin.port")

# node NAME ADDR TENANT_JSON: starts edged; its port in $W/NAME/port. (Not run in a
# command substitution: the started process must stay known to this shell.)
node() {
  local d="$W/$1"
  mkdir -p "$d/tenants"
  echo "$3" > "$d/tenants/t.json"
  cat > "$d/server.json" <<JSON
{"http": "$2:0", "node_name": "$1", "state": "$d/state", "workers": 1, "access_log": "off",
 "trusted_proxies": ["127.0.0.0/8"], "cache": {"disks": []}}
JSON
  "$EDGED" --config "$d/server.json" --tenants "$d/tenants" > "$d/out" 2>&1 &
  PIDS+=($!)
  NODES+=($!)
  for _ in $(seq 100); do grep -q "admin API on" "$d/out" && break; sleep 0.1; done
  sed -n 's/.*listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$d/out" | head -1 > "$d/port"
}
port() { cat "$W/$1/port"; }
NODES=()

stop_nodes() {
  for p in "${NODES[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${NODES[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
  NODES=()
}

origin_requests() { curl -s "http://127.0.0.1:$OPORT/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }

# drive LABEL EDGE_ADDR:PORT...: the Zipf mix; prints one row.
drive() {
  local label=$1; shift
  local before; before=$(origin_requests)
  local hits
  hits=$(python3 - "$REQS" "$OBJS" "$@" <<'PY'
import http.client, sys, random
reqs, objs, edges = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
weights = [1.0 / k for k in range(1, objs + 1)]
rng = random.Random(7)
conns = [http.client.HTTPConnection(*e.split(":")) for e in edges]
hits = 0
for i, k in enumerate(rng.choices(range(objs), weights, k=reqs)):
    c = conns[i % len(conns)]
    c.request("GET", "/text/%d" % (100 + k), headers={"Host": "z.test"})
    r = c.getresponse(); r.read()
    statuses = r.headers.get_all("Cache-Status") or []
    if statuses and "; hit" in statuses[-1]: hits += 1
print(hits)
PY
)
  local after; after=$(origin_requests)
  printf '%-22s %9d %16d %14.1f%%\n' "$label" "$REQS" "$((after - before))" "$(echo "100 * $hits / $REQS" | bc -l)"
}

tenant() { # ORIGINS ROUTES
  echo "{\"name\": \"z\", \"hosts\": [\"z.test\"], \"origins\": $1, \"routes\": $2}"
}
ORIGIN_GROUP="{\"o\": {\"servers\": [\"127.0.0.1:$OPORT\"]}}"

echo "shield tier: $REQS requests, Zipf(1) over $OBJS objects of 100-$((OBJS + 99)) B, 5 edges round-robin"
printf '%-22s %9s %16s %15s\n' layout requests origin-requests edge-hit-ratio
# Without shields: every edge asks the origin itself.
EDGES=()
for i in 1 2 3 4 5; do
  node "edge-$i" "127.0.0.2$i" "$(tenant "$ORIGIN_GROUP" '[{"prefix": "/", "origin": "o"}]')"
  EDGES+=("127.0.0.2$i:$(port "edge-$i")")
done
drive "5 edges" "${EDGES[@]}"
stop_nodes

# With 2 shields.
SHIELD_TENANT=$(tenant "$ORIGIN_GROUP" '[{"prefix": "/pass/", "origin": "o", "strip_prefix": true}, {"prefix": "/", "origin": "o"}]')
node shield-a 127.0.0.11 "$SHIELD_TENANT"; S1=$(port shield-a)
node shield-b 127.0.0.12 "$SHIELD_TENANT"; S2=$(port shield-b)
SHIELDS="{\"shields\": {\"servers\": [\"127.0.0.11:$S1\", \"127.0.0.12:$S2\"], \"shield\": true, \"fallback\": \"o\"}, \"o\": {\"servers\": [\"127.0.0.1:$OPORT\"]}}"
EDGES=()
for i in 1 2 3 4 5; do
  node "edge-s$i" "127.0.0.3$i" "$(tenant "$SHIELDS" '[{"prefix": "/pass/", "origin": "shields", "cache": {"enabled": false}}, {"prefix": "/", "origin": "shields"}]')"
  EDGES+=("127.0.0.3$i:$(port "edge-s$i")")
done
drive "5 edges + 2 shields" "${EDGES[@]}"

# Latency through edge 1: an edge hit (/text/100) against a shield hit (/pass/text/100:
# the edge does not cache it, its home shield does). Sequential, one keep-alive connection.
python3 - "${EDGES[0]}" <<'PY'
import http.client, sys, time
host, port = sys.argv[1].split(":")
c = http.client.HTTPConnection(host, int(port))
def run(path, n=3000):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        c.request("GET", path, headers={"Host": "z.test"}); r = c.getresponse(); r.read()
        out.append(time.perf_counter() - t)
    out.sort()
    return out[len(out) // 2] * 1e6, out[int(len(out) * 0.99)] * 1e6
run("/text/100", 200); run("/pass/text/100", 200)   # warm both
eh = run("/text/100"); sh = run("/pass/text/100")
print("%-22s %9s %9s" % ("latency (us)", "p50", "p99"))
print("%-22s %9.0f %9.0f" % ("edge hit", eh[0], eh[1]))
print("%-22s %9.0f %9.0f" % ("shield hit via edge", sh[0], sh[1]))
print("%-22s %9.0f %9.0f" % ("added by the shield", sh[0] - eh[0], sh[1] - eh[1]))
PY
