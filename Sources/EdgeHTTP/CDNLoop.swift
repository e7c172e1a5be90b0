// CDN-Loop (RFC 8586): each CDN node that forwards a request appends its
// entry, `cdn-id *( OWS ";" OWS parameter )`, to a comma-separated list. A
// fleet of edged nodes shares one cdn-id (the fleet's name) and tells its
// nodes apart by a `node` parameter: `CDN-Loop: edged; node=edge-1`.
// Pure: bytes in, counts out; never throws, never allocates.

public enum CDNLoop {
    /// Scans one field value: how many members carry `fleet` as their cdn-id,
    /// and whether one of them also has `node=<node>` (a token or a quoted
    /// string). Names and ids compare case-insensitively; a member that does
    /// not parse is skipped up to the next comma outside a quoted string.
    public static func scan(_ p: UnsafeRawBufferPointer, _ range: Range<Int>, fleet: [UInt8], node: [UInt8]) -> (count: Int, mine: Bool) {
        var i = range.lowerBound
        let end = range.upperBound
        var count = 0, mine = false
        while i < end {
            skipOWS(p, &i, end)
            // cdn-id: up to ";" "," or whitespace (host[:port] or a token)
            let idStart = i
            while i < end, p[i] != 59, p[i] != 44, p[i] != 32, p[i] != 9, p[i] != 34 { i += 1 }
            let ours = i > idStart && equalsIgnoringCase(p, idStart, i, fleet)
            var named = false
            // parameters
            while true {
                skipOWS(p, &i, end)
                guard i < end, p[i] == 59 else { break }
                i += 1
                skipOWS(p, &i, end)
                let nameStart = i
                while i < end, isTokenChar(p[i]) { i += 1 }
                let nameEnd = i
                guard i < end, p[i] == 61 else { break }
                i += 1
                var vStart = i, vEnd = i
                if i < end, p[i] == 34 {
                    i += 1
                    vStart = i
                    while i < end, p[i] != 34 { if p[i] == 92 { i += 1 }; i += 1 }
                    vEnd = min(i, end)
                    if i < end { i += 1 }
                } else {
                    while i < end, isTokenChar(p[i]) { i += 1 }
                    vEnd = i
                }
                if ours && nameEnd - nameStart == 4 && equalsIgnoringCase(p, nameStart, nameEnd, nodeName) && vEnd - vStart == node.count
                    && equalsIgnoringCase(p, vStart, vEnd, node) {
                    named = true
                }
            }
            // anything left of this member (malformed) up to the next comma outside quotes
            var quoted = false
            while i < end, quoted || p[i] != 44 {
                if p[i] == 34 { quoted.toggle() } else if quoted && p[i] == 92 { i += 1 }
                i += 1
            }
            if ours { count += 1; if named { mine = true } }
            if i < end { i += 1 }   // the comma
        }
        return (count, mine)
    }

    static let nodeName: [UInt8] = Array("node".utf8)

    @inline(__always) static func skipOWS(_ p: UnsafeRawBufferPointer, _ i: inout Int, _ end: Int) {
        while i < end, p[i] == 32 || p[i] == 9 { i += 1 }
    }

    @inline(__always) static func equalsIgnoringCase(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int, _ w: [UInt8]) -> Bool {
        guard e - s == w.count else { return false }
        for k in 0..<w.count where asciiLower(p[s + k]) != asciiLower(w[k]) { return false }
        return true
    }
}
