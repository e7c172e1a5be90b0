// libFuzzer target for the HTTP/1.1 parsers and the chunked decoder. Built by
// run.sh together with Sources/EdgeHTTP; every input is fed whole and split at
// one input-chosen point, and the parsers must agree with themselves.

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
    if case .complete(let n) = whole {
        precondition(n <= size)
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
    _ = HeadParser.parseResponse(bytes, limits: limits, into: &resp, scan: &rscan)

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
