// The properties the HTTP fuzz target checks on every input (tools/fuzz/FuzzHTTP.swift),
// kept here so that `swift test` replays every input in tools/fuzz/regressions/ through
// the same checks (FuzzRegressionTests) without a fuzzer. run.sh compiles this file into
// the fuzzer together with Sources/EdgeHTTP (one module there, hence the conditional import).
#if canImport(EdgeHTTP)
import EdgeHTTP
#endif

/// A head in two pieces, cut at `split` (the second call resumes with the
/// first's scan state), reads as it does whole: a piece is refused only for
/// what the whole is refused for. Returns the head when the pieces completed it.
func checkSplit<Head>(_ bytes: UnsafeRawBufferPointer, at split: Int, whole: ParseResult, _ fresh: Head,
                      _ parse: (UnsafeRawBufferPointer, inout Head, inout HeadScan) -> ParseResult) -> Head? {
    var head = fresh
    var scan = HeadScan()
    var result = parse(UnsafeRawBufferPointer(rebasing: bytes[0..<split]), &head, &scan)
    if result == .needMore { result = parse(bytes, &head, &scan) }
    precondition(result == whole, "a head in two pieces reads otherwise than whole")
    if case .complete = result { return head }
    return nil
}

/// Traps (precondition) on the first property `bytes` breaks: the HTTP/1.1 parsers, the
/// chunked decoder, the host normalizer, the override-field table, the WebSocket handshake
/// checks, and the Accept-Encoding, HTTP-date, Range and Structured Field dictionary value
/// parsers; every input is fed
/// whole and split at one input-chosen point, and the parsers must agree with themselves.
func checkHTTPProperties(_ bytes: UnsafeRawBufferPointer) {
    let size = bytes.count
    var limits = HeadLimits()
    limits.maxHeadBytes = 4096
    limits.maxRequestLine = 1024
    limits.maxFieldLine = 1024

    var req = RequestHead()
    var scan = HeadScan()
    let whole = HeadParser.parseRequest(bytes, limits: limits, into: &req, scan: &scan)
    if size > 1, let r = checkSplit(bytes, at: Int(bytes[0]) % size, whole: whole, RequestHead(), {
        HeadParser.parseRequest($0, limits: limits, into: &$1, scan: &$2)
    }) {
        precondition(r.fields == req.fields && r.targetRange == req.targetRange, "split request fields differ")
    }
    // CDN-Loop: members counted are at most the commas + 1; our node only in a
    // counted member; our entry appended to a quote-free value is counted and found.
    let fleet = Array("edged".utf8), node = Array("n1".utf8)
    let loop = CDNLoop.scan(bytes, 0..<size, fleet: fleet, node: node)
    precondition(loop.count <= bytes.filter { $0 == 44 }.count + 1 && (!loop.mine || loop.count >= 1), "CDN-Loop counts")
    if !bytes.contains(34) && !bytes.contains(92) {
        let appended = Array(bytes) + Array(", edged; node=n1".utf8)
        let again = appended.withUnsafeBytes { CDNLoop.scan($0, 0..<$0.count, fleet: fleet, node: node) }
        precondition(again.count == loop.count + 1 && again.mine, "CDN-Loop: an appended entry is not seen")
    }
    // The host normalizer on the raw bytes: what it accepts is a fixed point.
    var host: [UInt8] = []
    if Authority.normalize(bytes, 0..<size, into: &host) {
        precondition(host.count <= size)
        var again: [UInt8] = []
        let ok = host.withUnsafeBytes { Authority.normalize($0, 0..<host.count, into: &again) }
        precondition(ok && again == host, "host normalization is not idempotent")
    }
    if case .complete(let n) = whole {
        precondition(n <= size)
        if req.hostField >= 0 { _ = Authority.normalize(bytes, req.fields[req.hostField].value, into: &host) }
        for f in req.fields {
            if OverrideFields.contains(bytes, f.nameStart, f.nameEnd) {
                let name = String(decoding: bytes[f.nameStart..<f.nameEnd], as: UTF8.self).lowercased()
                precondition(OverrideFields.names.contains(name), "override table matched \(name)")
            }
        }
        // The WebSocket checks read the parsed fields only; an upgrade is a bodiless HTTP/1.1 GET.
        if WebSocketHandshake.isRequest(bytes, req) { precondition(req.method == .get && req.minorVersion == 1) }
        var out: [UInt8] = []
        if let r = TargetNormalizer.normalize(bytes, req.targetRange, into: &out) {
            precondition(r.pathLength <= out.count)
            // Normalizing twice changes nothing.
            var again: [UInt8] = []
            let r2 = out.withUnsafeBytes { TargetNormalizer.normalize($0, 0..<out.count, into: &again) }
            if case .origin? = r2?.form { precondition(again == out, "normalization is not idempotent") }
        }
    }
    // X-Request-ID: a value kept as valid goes to the origin as one field whose value
    // is exactly those bytes (and the parser knows the field by name).
    if RequestID.isValid(bytes) {
        precondition(size >= 1 && size <= RequestID.maxLength && !bytes.contains(44) && !bytes.contains(32), "request id accepted")
        let head = Array("GET / HTTP/1.1\r\nHost: a\r\nX-Request-ID: ".utf8) + Array(bytes) + Array("\r\n\r\n".utf8)
        var h = RequestHead()
        var hs = HeadScan()
        let r = head.withUnsafeBytes { HeadParser.parseRequest($0, limits: HeadLimits(), into: &h, scan: &hs) }
        guard case .complete = r, let f = h.fields.first(where: { $0.known == .xRequestID }) else { preconditionFailure("a valid request id breaks the head") }
        precondition(Array(head[f.value]) == Array(bytes), "a valid request id changed on the way")
    }
    var resp = ResponseHead()
    var rscan = HeadScan()
    let parsedResponse = HeadParser.parseResponse(bytes, limits: limits, into: &resp, scan: &rscan)
    // The same response head in two pieces (the second call resumes) reads alike.
    if size > 1, let r = checkSplit(bytes, at: Int(bytes[size - 1]) % size, whole: parsedResponse, ResponseHead(), {
        HeadParser.parseResponse($0, limits: limits, into: &$1, scan: &$2)
    }) {
        precondition(r.fields == resp.fields && r.status == resp.status, "split response fields differ")
    }
    if case .complete = parsedResponse, WebSocketHandshake.isAccept(bytes, resp) {
        precondition(resp.status == 101)
    }
    // WrittenHead (the writer's heads read back for HTTP/2) on any bytes stays in
    // them; on a head the strict parser accepts, it agrees with it: the end, the
    // status, the end-to-end fields in order and (without other codings) the framing.
    var written = WrittenHead()
    let wn = written.read(bytes)
    if let wn { precondition(wn <= size && written.ranges.allSatisfy { $0 >= 0 && $0 <= wn }, "WrittenHead out of bounds") }
    if case .complete(let n) = parsedResponse {
        precondition(wn == n && written.status == resp.status, "WrittenHead: end or status differ")
        let kept = resp.fields.filter { !$0.known.isHopByHop }
        precondition(kept.count == written.fieldCount, "WrittenHead: other fields kept")
        for (k, f) in kept.enumerated() {
            let (name, value) = written.field(k, in: bytes)
            precondition(Array(name) == Array(bytes[f.nameStart..<f.nameEnd]) && Array(value) == Array(bytes[f.valueStart..<f.valueEnd]),
                         "WrittenHead: field \(k) differs")
        }
        if resp.chunked || !resp.fields.contains(where: { $0.known == .transferEncoding }) {
            precondition(written.framing(requestWasHead: false) == resp.framing(requestWasHead: false), "WrittenHead: framing differs")
        }
    }

    var dec = ChunkedDecoder()
    var at = 0
    while at < size {
        let (ev, next) = dec.decode(bytes, from: at)
        precondition(next >= at && next <= size)
        if case .data(let r) = ev { precondition(r.lowerBound >= at && r.upperBound <= size) }
        if case .needMore = ev { break }
        if case .end = ev { break }
        if case .error = ev { break }
        at = next
    }
    // Field-value parsers on the raw bytes: Accept-Encoding, HTTP dates, Range.
    let text = String(decoding: bytes, as: UTF8.self)
    let offered: [ContentCoding] = [.br, .gzip, .identity]
    let chosen = AcceptEncoding.choose(text, offered: offered)
    precondition(chosen == nil || offered.contains(chosen!))
    precondition(AcceptEncoding.bucket(text) == (chosen ?? .identity), "bucket is choose with identity as the fallback")
    if let t = HTTPDate.parse(bytes, 0, size, now: 1_700_000_000), t >= 0, t < 253_402_300_800 {
        // A date that parses formats to an IMF-fixdate that parses back to the same second.
        let out = IOBuffer(capacity: 64)
        HTTPDate.format(t, into: out)
        precondition(HTTPDate.parse(out.readView, 0, out.readableBytes, now: 1_700_000_000) == t, "date round trip")
    }
    switch Preconditions.byteRange(bytes, size: 1000) {
    case .range(let first, let last): precondition(0 <= first && first <= last && last < 1000, "range outside the representation")
    case .ignore, .unsatisfiable: break
    }
    // Structured Field dictionaries (CDN-Cache-Control): an accepted field has
    // unique, well-formed keys, and reads the same split into two lines at any
    // top-level comma (RFC 8941 §4.2 joins lines with commas).
    if let members = StructuredFields.dictionary(bytes) {
        precondition(!members.isEmpty && Set(members.map(\.key)).count == members.count, "dictionary keys not unique")
        for m in members {
            precondition(m.key.utf8.first.map { ($0 >= 97 && $0 <= 122) || $0 == 42 } ?? false, "a key that is not lowercase")
        }
        if let comma = bytes.firstIndex(of: 44), !bytes[..<comma].contains(34), !bytes[..<comma].contains(40) {
            let a = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<comma]), as: UTF8.self)
            let b = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(comma + 1)...]), as: UTF8.self)
            if let split = StructuredFields.dictionary([a, b]) {
                precondition(split.map(\.key) == members.map(\.key) && split.map(\.value) == members.map(\.value), "split lines read differently")
            }
        }
    }
}
