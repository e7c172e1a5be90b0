#!/usr/bin/env bash
# Builds the parser fuzzer with libFuzzer + AddressSanitizer and runs it.
# usage: tools/fuzz/run.sh [seconds=60]
# Crashes land in tools/fuzz/crashes/; keep each as a regression seed in corpus/.
set -euo pipefail
cd "$(dirname "$0")"
SECS=${1:-60}
mkdir -p corpus crashes .out
printf 'GET / HTTP/1.1\r\nHost: a\r\n\r\n' > corpus/get
printf 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' > corpus/chunked
printf 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi' > corpus/resp
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name FuzzHTTP \
  ../../Sources/EdgeHTTP/*.swift FuzzHTTP.swift -o .out/fuzz-http
.out/fuzz-http -max_total_time="$SECS" -artifact_prefix=crashes/ corpus
