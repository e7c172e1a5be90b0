#!/usr/bin/env bash
# Builds the parser fuzzers with libFuzzer + AddressSanitizer, runs each, and prints
# one summary row per target (runs, executions per second, findings).
# usage: tools/fuzz/run.sh [seconds per target=60] [target...]
#        tools/fuzz/run.sh --smoke    (CI: a fixed seed, at most a million runs and at most 25 s per target;
#                                      the slower targets stop at the time cap, so CI stays within its budget)
#   http:    request/response heads, chunked bodies, target and host normalization, WebSocket handshakes, X-Request-ID values,
#            Accept-Encoding, HTTP dates (all three formats), Range, Structured Field dictionaries, CDN-Loop lists
#   diff:    the request head parser against a plain reference reading of RFC 9112 (Tests/EdgeHTTPTests/ReferenceHead.swift):
#            any disagreement on accept/reject, the head's end or the body's framing
#   sni:     the ClientHello server_name extension reader
#   h2:      HTTP/2 frames through the connection machine (split points agree) and HPACK (re-encoding round-trips)
#   protect: the PROXY protocol header (split points agree), address and prefix text (round trips),
#            prefix lists (against a brute-force most-specific-prefix model), rates, rule text matchers
#            (glob against a recursive model), redirect templates, attack-signature normalization and scans
#   disk:    segment records and their meta (re-encoding round-trips), segment headers, the purge journal
#   cache:   Cache-Control (byte checks agree with the parser, split lines agree), CDN-Cache-Control, Surrogate-Control
#   config:  tenant and server files (load twice alike, or refused naming the file and the field)
#   admin:   admin API requests (prefixes agree), purge bodies (survive JSON and back), explain bodies
#   json:    the JSON parser and writer (what parses writes out and reads back the same, stably; refusals say where)
# Findings land in tools/fuzz/crashes/; keep each in regressions/ (committed; `swift test` replays every one
# through the same property checks, and every fuzz run starts from them).
set -uo pipefail
cd "$(dirname "$0")"
SECS=${1:-60}
[ $# -gt 0 ] && shift
LIMIT=(-max_total_time="$SECS")
if [ "$SECS" = --smoke ]; then LIMIT=(-seed=1 -runs=1000000 -max_total_time=25); fi
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(http diff sni h2 protect disk cache config admin json)
S=../../Sources
T=../../Tests
mkdir -p crashes .out
for t in "${TARGETS[@]}"; do mkdir -p "corpus-$t"; done

# Seeds (written each run; the corpora grow beside them and are not committed).
seed() { [ -d "corpus-$1" ] && printf "$3" > "corpus-$1/$2"; }
seed http get 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'
seed http chunked 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
seed http resp 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi'
seed http ws 'GET /chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n'
seed http ae 'gzip;q=0.5, br;q=1.0, *;q=0'
seed http date 'Sun, 06 Nov 1994 08:49:37 GMT'
seed http date850 'Sunday, 06-Nov-94 08:49:37 GMT'
seed http dateasc 'Sun Nov  6 08:49:37 1994'
seed http range 'bytes=0-499'
seed http requestid 'trace-0af7651916cd43dd:x/y+z='
seed http cdnloop 'other-cdn, edged; node=edge-1, edged;node="n1"'
seed http sfdict 'max-age=600;x=1, private="set-cookie", a=(1 "b" c), d=:aGk=:, e=?1'
seed http ws101 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'
seed http hosts 'GET http://A.Test.:8080/x HTTP/1.1\r\nHost: [::1]:443\r\nX_Forwarded_For: 1\r\nX-Original-URL: /a\r\n\r\n'
seed diff get 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n'
seed diff ten '\r\nPOST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, close\r\nExpect: 100-continue\r\n\r\n'
seed diff te 'PUT /x HTTP/1.1\r\nHost: [::1]:80\r\nTransfer-Encoding: gzip, chunked\r\nContent_Length: 3\r\n\r\n'
seed sni one '\x00\x09\x00\x00\x06a.test'
seed sni two '\x00\x12\x07\x00\x03abc\x00\x00\x09B.Example'
seed h2 get '\x00\x00\x11\x01\x05\x00\x00\x00\x01\x82\x86\x84\x41\x8c\xf1\xe3\xc2\xe5\xf2\x3a\x6b\xa0\xab\x90\xf4\xff'
seed h2 ping '\x00\x00\x08\x06\x00\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x00\x00\x01'
seed h2 continuation '\x00\x00\x05\x01\x00\x00\x00\x00\x03\x82\x87\x85\xbf\x40\x00\x00\x02\x09\x04\x00\x00\x00\x03\x41\x8c'
seed protect v1 'PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n'
seed protect v1six 'PROXY TCP6 2001:db8::7 2001:db8::1 65535 8443\r\n'
seed protect v2 '\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x0a\xc6\x33\x64\x01\xdc\x04\x01\xbb'
seed protect lists '10.0.0.0/8\n10.1.2.0/24\n10.1.2.128/25\n2001:db8::/32\n::/0\n192.0.2.1'
seed protect rate '600r/m'
seed protect glob '/img/*.p?g\x00/img/a/b.png'
seed protect attack "q=1%%27%%20or%%201%%3D1&x=\${\${lower:j}ndi:ldap://a}&f=..%%2f..%%2fetc%%2fpasswd"
[ -d corpus-disk ] && cp regressions/disk-journal-prefix corpus-disk/journal
seed cache cc 'max-age=600, s-maxage=60, no-cache="set-cookie", stale-while-revalidate=30, must-understand, no-store'
seed cache cdn 'max-age=600;x=1, private="set-cookie", a=(1 "b" c), no-store=?0'
seed cache bad 'max-age="10000", &&&&, =x, a="unterminated'
if [ -d corpus-config ]; then
  cp ../../tenants/*.json corpus-config/
  seed config server '{"http": "127.0.0.1:8080", "https": "127.0.0.1:8443", "workers": 2, "limits": {"header_timeout": "10s"}, "cache": {"memory": "256MiB"}, "log_format": ["status", "path"], "request_id": true, "trusted_proxies": ["10.0.0.0/8"]}'
  seed config origins '{"name": "api", "hosts": ["api.test"], "origins": {"app": {"servers": ["http://127.0.0.1:9000"], "balance": "least-connections", "fail_backoff": "10s"}}, "routes": [{"prefix": "/v1", "origin": "app", "strip_prefix": true}], "rate_limits": {"c": {"rate": "50/s", "burst": 100}}}'
fi
seed admin req 'POST /v1/purge?x=a%%20b HTTP/1.1\r\nHost: localhost\r\nContent-Length: 16\r\nAuthorization: Bearer t\r\n\r\n{"urls": ["u"]}\n'
seed admin tags '{"tags": ["a", "b"], "tenant": "t", "soft": true}'
seed admin all '{"tenant": "a", "all": true}'
seed json nested '{"a": [1, -2.5e-3, true, null, "\\u00e9\\n"], "b": {"c": {}}, "d": []}'
seed json trailing '[1, 2,]'
seed admin explain '{"url": "http://a/x", "headers": ["Accept: x", "Cookie: a=b"], "method": "GET", "client": "::1"}'

# What each target compiles (one module: sources of several targets together), and its dictionary.
sources() {
  case $1 in
    http)    echo $S/EdgeHTTP/*.swift $T/EdgeHTTPTests/HTTPProperties.swift ;;
    diff)    echo $S/EdgeHTTP/*.swift $T/EdgeHTTPTests/ReferenceHead.swift ;;
    sni)     echo $S/EdgeTLS/ClientHello.swift ;;
    h2)      echo $S/EdgeHTTP/*.swift $S/EdgeHTTP2/*.swift $T/EdgeHTTP2Tests/H2Properties.swift ;;
    protect) echo $S/EdgeHTTP/*.swift $S/EdgeProtect/*.swift $T/EdgeProtectTests/ProtectProperties.swift ;;
    disk)    echo $S/EdgeHTTP/*.swift $S/EdgeCache/*.swift $S/EdgeDisk/Record.swift $T/EdgeDiskTests/DiskProperties.swift ;;
    cache)   echo $S/EdgeHTTP/*.swift $S/EdgeCache/*.swift $T/EdgeCacheTests/CacheControlProperties.swift ;;
    config)  echo $S/EdgeHTTP/*.swift $S/EdgeProtect/*.swift $S/EdgeUpstream/*.swift $S/EdgeJSON/*.swift $S/EdgeIO/Files.swift $S/EdgeConfig/*.swift $T/EdgeConfigTests/ConfigProperties.swift ;;
    admin)   echo $S/EdgeHTTP/*.swift $S/EdgeJSON/*.swift $S/EdgeAdmin/AdminRequest.swift $T/EdgeAdminTests/AdminProperties.swift ;;
    json)    echo $S/EdgeJSON/*.swift $T/EdgeJSONTests/JSONProperties.swift ;;
  esac
}
dict() {
  case $1 in
    http|diff) echo -dict=dict/http.dict ;;
    cache|config|admin|protect|h2) echo -dict=dict/$1.dict ;;
  esac
}
main() { case $1 in http) echo FuzzHTTP ;; sni) echo FuzzSNI ;; h2) echo FuzzH2 ;; json) echo FuzzJSON ;; *) echo "Fuzz${1^}" ;; esac; }

status=0
rows=()
for t in "${TARGETS[@]}"; do
  m=$(main "$t")
  # shellcheck disable=SC2046
  if ! swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name "$m" -I "$S/CEdgeCRC/include" $(sources "$t") "$m.swift" -o ".out/fuzz-$t" > ".out/build-$t.log" 2>&1; then
    echo "fuzz-$t: build failed (tools/fuzz/.out/build-$t.log)"; status=1; continue
  fi
  before=$(ls crashes | wc -l)
  # shellcheck disable=SC2046
  ".out/fuzz-$t" "${LIMIT[@]}" $(dict "$t") -artifact_prefix=crashes/ "corpus-$t" regressions > ".out/run-$t.log" 2>&1
  rc=$?
  found=$(( $(ls crashes | wc -l) - before ))
  done_line=$(grep -E '^Done [0-9]+ runs' ".out/run-$t.log" | tail -1)
  runs=$(echo "$done_line" | awk '{print $2}')
  secs=$(echo "$done_line" | awk '{print $5}')
  rate=$(grep -oE 'exec/s: [0-9]+' ".out/run-$t.log" | tail -1 | awk '{print $2}')
  # A target done within its first second reports 0 exec/s: say at least its runs.
  if [ "${secs:-}" = 0 ] && [ -n "${runs:-}" ]; then rate=">$runs"; fi
  cov=$(grep -oE 'cov: [0-9]+' ".out/run-$t.log" | tail -1 | awk '{print $2}')
  if [ $rc -ne 0 ] || [ $found -gt 0 ]; then status=1; fi
  rows+=("$(printf '%-8s %10s %6s %9s %6s %8s %s' "$t" "${runs:--}" "${secs:--}" "${rate:--}" "${cov:--}" "$found" "$([ $rc -eq 0 ] && echo ok || echo "FAILED (.out/run-$t.log)")")")
done
printf '%-8s %10s %6s %9s %6s %8s %s\n' target runs secs exec/s cov findings result
printf '%s\n' "${rows[@]}"
exit $status
