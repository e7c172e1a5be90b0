#!/usr/bin/env bash
# Builds the parser fuzzers with libFuzzer + AddressSanitizer and runs each.
# usage: tools/fuzz/run.sh [seconds per target=60]
#        tools/fuzz/run.sh --smoke    (CI: a fixed seed, at most a million runs and at most 40 s per target;
#                                      the slower targets stop at the time cap, so CI stays within its budget)
#   fuzz-http: request/response heads, chunked bodies, target and host normalization, WebSocket handshakes, X-Request-ID values,
#              Accept-Encoding, HTTP dates (all three formats), Range, Structured Field dictionaries,
#              CDN-Loop lists
#   fuzz-sni:  the ClientHello server_name extension reader
#   fuzz-protect: the PROXY protocol header (split points agree), address and prefix text (round trips),
#              prefix lists (against a brute-force most-specific-prefix model), rates, rule text matchers
#              (glob against a recursive model), redirect templates, attack-signature normalization and scans
#   fuzz-h2:   HTTP/2 frames through the connection machine (split points agree) and HPACK (re-encoding round-trips)
# Crashes land in tools/fuzz/crashes/; keep each in regressions/ (committed; every run replays it).
set -euo pipefail
cd "$(dirname "$0")"
SECS=${1:-60}
LIMIT=(-max_total_time="$SECS")
if [ "$SECS" = --smoke ]; then LIMIT=(-seed=1 -runs=1000000 -max_total_time=40); fi
mkdir -p corpus corpus-sni corpus-h2 corpus-protect corpus-disk crashes .out
printf 'GET / HTTP/1.1\r\nHost: a\r\n\r\n' > corpus/get
printf 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' > corpus/chunked
printf 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi' > corpus/resp
printf 'GET /chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n' > corpus/ws
printf 'gzip;q=0.5, br;q=1.0, *;q=0' > corpus/ae
printf 'Sun, 06 Nov 1994 08:49:37 GMT' > corpus/date
printf 'Sunday, 06-Nov-94 08:49:37 GMT' > corpus/date850
printf 'bytes=0-499' > corpus/range
printf 'trace-0af7651916cd43dd:x/y+z=' > corpus/requestid
printf 'other-cdn, edged; node=edge-1, edged;node="n1"' > corpus/cdnloop
printf 'Sun Nov  6 08:49:37 1994' > corpus/dateasc
printf 'max-age=600;x=1, private="set-cookie", a=(1 "b" c), d=:aGk=:, e=?1' > corpus/sfdict
printf 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n' > corpus/ws101
printf 'GET http://A.Test.:8080/x HTTP/1.1\r\nHost: [::1]:443\r\nX_Forwarded_For: 1\r\nX-Original-URL: /a\r\n\r\n' > corpus/hosts
printf '\x00\x09\x00\x00\x06a.test' > corpus-sni/one
printf '\x00\x00\x11\x01\x05\x00\x00\x00\x01\x82\x86\x84\x41\x8c\xf1\xe3\xc2\xe5\xf2\x3a\x6b\xa0\xab\x90\xf4\xff' > corpus-h2/get
printf '\x00\x00\x08\x06\x00\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x00\x00\x01' > corpus-h2/ping
printf '\x00\x00\x05\x01\x00\x00\x00\x00\x03\x82\x87\x85\xbf\x40\x00\x00\x02\x09\x04\x00\x00\x00\x03\x41\x8c' > corpus-h2/continuation
printf '\x00\x12\x07\x00\x03abc\x00\x00\x09B.Example' > corpus-sni/two
printf 'PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n' > corpus-protect/v1
printf 'PROXY TCP6 2001:db8::7 2001:db8::1 65535 8443\r\n' > corpus-protect/v1six
printf '\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x0a\xc6\x33\x64\x01\xdc\x04\x01\xbb' > corpus-protect/v2
printf '10.0.0.0/8\n10.1.2.0/24\n10.1.2.128/25\n2001:db8::/32\n::/0\n192.0.2.1' > corpus-protect/lists
printf '600r/m' > corpus-protect/rate
cp regressions/disk-journal-prefix corpus-disk/journal
printf '/img/*.p?g\x00/img/a/b.png' > corpus-protect/glob
printf "q=1%%27%%20or%%201%%3D1&x=\${\${lower:j}ndi:ldap://a}&f=..%%2f..%%2fetc%%2fpasswd" > corpus-protect/attack
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name FuzzHTTP \
  ../../Sources/EdgeHTTP/*.swift ../../Tests/EdgeHTTPTests/HTTPProperties.swift FuzzHTTP.swift -o .out/fuzz-http
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name FuzzSNI \
  ../../Sources/EdgeTLS/ClientHello.swift FuzzSNI.swift -o .out/fuzz-sni
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name FuzzH2 \
  ../../Sources/EdgeHTTP2/*.swift ../../Tests/EdgeHTTP2Tests/H2Properties.swift FuzzH2.swift -o .out/fuzz-h2
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name FuzzProtect \
  ../../Sources/EdgeHTTP/*.swift ../../Sources/EdgeProtect/*.swift ../../Tests/EdgeProtectTests/ProtectProperties.swift FuzzProtect.swift -o .out/fuzz-protect
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name FuzzDisk \
  ../../Sources/EdgeHTTP/*.swift ../../Sources/EdgeCache/*.swift ../../Sources/EdgeDisk/Record.swift ../../Tests/EdgeDiskTests/DiskProperties.swift FuzzDisk.swift -o .out/fuzz-disk
.out/fuzz-http "${LIMIT[@]}" -artifact_prefix=crashes/ corpus regressions
.out/fuzz-sni "${LIMIT[@]}" -artifact_prefix=crashes/ corpus-sni regressions
.out/fuzz-h2 "${LIMIT[@]}" -artifact_prefix=crashes/ corpus-h2 regressions
.out/fuzz-protect "${LIMIT[@]}" -artifact_prefix=crashes/ corpus-protect regressions
.out/fuzz-disk "${LIMIT[@]}" -artifact_prefix=crashes/ corpus-disk regressions
