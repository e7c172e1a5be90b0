// A response head edge's own writer serialized (HTTP1Writer), read back by
// the HTTP/2 transport to become a HEADERS frame. The bytes were made by this
// process from fields already checked (an origin's parsed head, edge's own
// fields), so this reader only finds lines, names and values: it does not
// validate, and it keeps no state between calls (a head is read again whole
// when more bytes arrive; heads are written in one piece almost always).
// Pure: bytes in, ranges out; no allocation once its array has grown.

public struct WrittenHead {
    public private(set) var status = 0
    /// The framing fields: Content-Length's value (-1: none) and chunked coding.
    public private(set) var contentLength: Int64 = -1
    public private(set) var chunked = false
    /// The end-to-end fields (hop-by-hop ones left out, RFC 9113 §8.2.2), four
    /// offsets each: name start, name end, value start, value end.
    public private(set) var ranges: [Int] = []

    public init() { ranges.reserveCapacity(64) }

    public var fieldCount: Int { ranges.count / 4 }

    /// Reads the head at the start of `p`; returns its length (through the blank
    /// line), or nil while the blank line has not arrived.
    public mutating func read(_ p: UnsafeRawBufferPointer) -> Int? {
        ranges.removeAll(keepingCapacity: true)
        contentLength = -1
        chunked = false
        guard p.count >= 14, let first = WrittenHead.lineEnd(p, from: 0) else { return nil }
        // "HTTP/1.1 200 ..."
        status = Int(p[9] &- 48) * 100 + Int(p[10] &- 48) * 10 + Int(p[11] &- 48)
        var at = first
        while true {
            guard let end = WrittenHead.lineEnd(p, from: at) else { return nil }
            // The line without its CRLF (or a bare LF: not written here, but any bytes are read safely).
            var le = end - 1
            if le > at && p[le - 1] == 13 { le -= 1 }
            if le == at { return end }   // the blank line
            let colon = WrittenHead.find(58, p, from: at, to: le) ?? le
            var vs = min(colon + 1, le)
            while vs < le && (p[vs] == 0x20 || p[vs] == 0x09) { vs += 1 }
            var ve = le
            while ve > vs && (p[ve - 1] == 0x20 || p[ve - 1] == 0x09) { ve -= 1 }
            let known = WrittenHead.mayBeFraming(p, at, colon) ? KnownField.classify(p, at, colon) : .other
            switch known {
            case .contentLength:
                var n: Int64 = 0
                for i in vs..<ve { n = n &* 10 &+ Int64(p[i] &- 48) }
                contentLength = n
                keep(at, colon, vs, ve)
            case .transferEncoding:
                chunked = true
            default:
                if !known.isHopByHop { keep(at, colon, vs, ve) }
            }
            at = end
        }
    }

    @inline(__always) mutating func keep(_ a: Int, _ b: Int, _ c: Int, _ d: Int) {
        ranges.append(a); ranges.append(b); ranges.append(c); ranges.append(d)
    }

    /// The framing of the body after the head.
    public func framing(requestWasHead: Bool) -> BodyFraming {
        BodyFraming.of(status: status, requestWasHead: requestWasHead, chunked: chunked, contentLength: contentLength)
    }

    /// Field `k`'s name and value within `p`.
    @inline(__always) public func field(_ k: Int, in p: UnsafeRawBufferPointer) -> (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let r = 4 * k
        return (UnsafeRawBufferPointer(rebasing: p[ranges[r]..<ranges[r + 1]]), UnsafeRawBufferPointer(rebasing: p[ranges[r + 2]..<ranges[r + 3]]))
    }

    /// The offset just past the LF ending the line at `from`, or nil.
    @inline(__always) static func lineEnd(_ p: UnsafeRawBufferPointer, from: Int) -> Int? {
        find(10, p, from: from, to: p.count).map { $0 + 1 }
    }

    /// The first `byte` in `from..<to`, eight bytes a step (a word with a zero
    /// byte after XOR has the high bit of its first such byte set by the
    /// subtract-and-mask test; bits above it may be wrong, the lowest is not).
    @inline(__always) static func find(_ byte: UInt8, _ p: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        var i = from
        let pattern = UInt64(byte) &* 0x0101_0101_0101_0101
        while i + 8 <= to {
            let w = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self)) ^ pattern
            let t = (w &- 0x0101_0101_0101_0101) & ~w & 0x8080_8080_8080_8080
            if t != 0 { return i + t.trailingZeroBitCount >> 3 }
            i += 8
        }
        while i < to {
            if p[i] == byte { return i }
            i += 1
        }
        return nil
    }

    /// Could the name at `s..<e` be a hop-by-hop or framing field (te, trailer,
    /// upgrade, connection, keep-alive, content-length, http2-settings,
    /// transfer-encoding, proxy-*)? Only those are classified.
    @inline(__always) static func mayBeFraming(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> Bool {
        switch e - s {
        case 2, 7, 10, 14, 17: return true
        default: return e - s >= 6 && p[s] | 0x20 == 112   // "p"
        }
    }
}
