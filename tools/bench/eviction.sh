#!/usr/bin/env bash
# Eviction policy measurement: hit ratio of the memory store (S3-FIFO) against
# plain LRU on one seeded trace (Zipf(0.9) working set + 30% one-off scan URLs).
# The same comparison runs as an assertion in `swift test` (EvictionMeasurement).
set -euo pipefail
cd "$(dirname "$0")/../.."
swift test --filter EvictionMeasurement 2>&1 | grep -E "^eviction:|passed|failed"
