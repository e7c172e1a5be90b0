#!/usr/bin/env bash
# The disk tier's index rebuild: N small objects (default 1 million, 200-byte
# bodies) written through the tiered store, then the directory reopened and
# timed until every object is indexed, with the page cache warm and dropped
# (root: echo 3 > /proc/sys/vm/drop_caches). Target: 1 M objects in <= 3 s,
# index <= 64 bytes per object. edged serves while it loads (not-yet-indexed
# objects are misses), so this is also the time to a fully warm cache.
# usage: tools/bench/disk.sh [N=1000000]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000000}
swift build -c release --product edge-disk-bench >/dev/null
B=.build/release/edge-disk-bench
D=$(mktemp -d /tmp/edge-disk-bench-XXXXXX)
trap 'rm -rf "$D"' EXIT
taskset -c 0 "$B" fill "$D" "$N"
echo "page cache warm:"
for i in 1 2 3; do taskset -c 0 "$B" load "$D"; done
if [ -w /proc/sys/vm/drop_caches ]; then
  echo "page cache dropped:"
  for i in 1 2 3; do sync; echo 3 > /proc/sys/vm/drop_caches; taskset -c 0 "$B" load "$D"; done
fi
