// libFuzzer target for the HTTP/1.1 parsers, the chunked decoder, the host
// normalizer, the override-field table and the WebSocket handshake checks. Built by run.sh together with
// Sources/EdgeHTTP; every input is fed whole and split at one input-chosen
// point, and the parsers must agree with themselves.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    var limits = HeadLimits()
    limits.maxHeadBytes = 4096
    limits.maxRequestLine = 1024
    limits.maxFieldLine = 1024

    var req = RequestHead()
    var scan = HeadScan()
    let whole = HeadParser.parseRequest(bytes, limits: limits, into: &req, scan: &scan)
    if size > 1 {
        let split = Int(bytes[0]) % size
        var req2 = RequestHead()
        var scan2 = HeadScan()
        let first = HeadParser.parseRequest(UnsafeRawBufferPointer(rebasing: bytes[0..<split]), limits: limits, into: &req2, scan: &scan2)
        if first == .needMore {
            let second = HeadParser.parseRequest(bytes, limits: limits, into: &req2, scan: &scan2)
            precondition(second == whole, "split parse disagrees")
        }
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
    var resp = ResponseHead()
    var rscan = HeadScan()
    if case .complete = HeadParser.parseResponse(bytes, limits: limits, into: &resp, scan: &rscan), WebSocketHandshake.isAccept(bytes, resp) {
        precondition(resp.status == 101)
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
    return 0
}
