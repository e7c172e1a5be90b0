#!/usr/bin/env bash
# The whole test suite under AddressSanitizer, then ThreadSanitizer, each in its
# own build directory (.build-asan, .build-tsan). Run before submitting work that
# touches shared state. Prints one summary line per sanitizer; exits non-zero when
# a test fails, or when TSan reports a race outside a Mutex critical section (TSan
# cannot see Synchronization.Mutex's futex lock: those reports are listed, not failed).
# usage: tools/sanitize.sh [address|thread]   (default: both)
set -uo pipefail
cd "$(dirname "$0")/.."
which=${1:-both}
status=0
# The allocation-count test measures through an LD_PRELOAD malloc of its own; a sanitizer's
# runtime defines malloc in the executable, ahead of any preload, so under one there is
# nothing to count. It runs in every plain `swift test`.
SKIP="--skip AllocationTests"
if [ "$which" = both ] || [ "$which" = address ]; then
  ASAN_OPTIONS=detect_leaks=0 swift test --sanitize=address --scratch-path .build-asan $SKIP > .build-asan.log 2>&1
  rc=$?
  echo "address: $(grep -E 'Test run with' .build-asan.log | tail -1) (exit $rc, log .build-asan.log)"
  grep -q "ERROR: AddressSanitizer" .build-asan.log && { echo "address: AddressSanitizer errors:"; grep -A3 "ERROR: AddressSanitizer" .build-asan.log | head -20; status=1; }
  grep -qE "✘ Test run" .build-asan.log && status=1
fi
if [ "$which" = both ] || [ "$which" = thread ]; then
  swift test --sanitize=thread --scratch-path .build-tsan $SKIP > .build-tsan.log 2>&1
  echo "thread: $(grep -E 'Test run with' .build-tsan.log | tail -1) (log .build-tsan.log)"
  grep -qE "✘ Test run" .build-tsan.log && status=1
  # A report is inside a lock when one of the first frames of its first stack is a
  # withLock closure (frame #0 may be a method that closure calls); any other is a finding.
  frames() { awk '/WARNING: ThreadSanitizer/ { n++; f=0; inside=0; top="" }
                  n && /^ +#[0-9]+ / { if (f < 6) { if (f == 0) top=$2; if ($0 ~ /withLock|XEfU[0-9]*_/) inside=1 }; f++ }
                  n && /^ *$/ && f > 0 && top != "" { print (inside ? "inside " : "outside ") top; top="" }' .build-tsan.log; }
  outside=$(frames | grep "^outside" | sort | uniq -c)
  inside=$(frames | grep -c "^inside")
  echo "thread: $inside report(s) inside Mutex critical sections (not failed)"
  if [ -n "$outside" ]; then echo "thread: reports outside a lock:"; echo "$outside"; status=1; fi
fi
exit $status
