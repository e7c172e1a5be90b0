// Request-target normalization (RFC 3986 §6.2.2, RFC 9112 §3.2).
//
// The target is normalized once, and that one form is used for routing, for
// the cache key and for what is forwarded, so no two stages can disagree on
// which resource a request names:
// - percent-encoded unreserved characters are decoded (`%7E` -> `~`), other
//   escapes keep their encoding with uppercase hex (`%2f` -> `%2F`);
// - decoding happens exactly once (`%252e` stays `%252E`, never `.`);
// - dot-segments are removed after that decoding (`/a/%2E%2E/b` -> `/b`).

public enum TargetForm: Equatable, Sendable {
    /// `/path?query`
    case origin
    /// `http://authority/path?query`; the authority range is in the input.
    case absolute(authority: Range<Int>, https: Bool)
    /// `*` (OPTIONS only)
    case asterisk
}

public enum TargetNormalizer {
    /// Normalizes the target at `p[range]`, writing `path[?query]` into `out`
    /// (cleared first). Returns the form and the length of the path part, or
    /// nil when the target is malformed (answer 400).
    public static func normalize(_ p: UnsafeRawBufferPointer, _ range: Range<Int>, into out: inout [UInt8]) -> (form: TargetForm, pathLength: Int)? {
        out.removeAll(keepingCapacity: true)
        var i = range.lowerBound
        let end = range.upperBound
        guard i < end else { return nil }
        var form = TargetForm.origin
        if p[i] != 47 { // '/'
            if end - i == 1 && p[i] == 42 { out.append(42); return (.asterisk, 1) }
            // absolute-form: scheme "://" authority path-abempty [ "?" query ]
            var https = false
            if end - i >= 7 && equalsLowercase(p, i, i + 7, "http://") { i += 7 }
            else if end - i >= 8 && equalsLowercase(p, i, i + 8, "https://") { i += 8; https = true }
            else { return nil }
            let a = i
            while i < end && p[i] != 47 && p[i] != 63 && p[i] != 35 { i += 1 }
            guard i > a else { return nil }
            for k in a..<i where p[k] == 64 { return nil } // no userinfo
            form = .absolute(authority: a..<i, https: https)
            if i == end || p[i] != 47 {
                out.append(47)
                if i == end { return (form, 1) }
            }
        }
        // Path: decode once.
        let pathStart = out.count
        guard copyNormalizingEscapes(p, &i, end, stopAtQuery: true, into: &out) else { return nil }
        removeDotSegments(&out, from: pathStart)
        let pathLength = out.count
        if i < end {
            // Query: the same escape normalization, no segment logic.
            out.append(63)
            i += 1
            guard copyNormalizingEscapes(p, &i, end, stopAtQuery: false, into: &out) else { return nil }
        }
        return (form, pathLength)
    }

    /// Copies `p[i..<end]` (up to a "?" when `stopAtQuery`) with escapes
    /// normalized; false on a fragment or a broken escape.
    @inline(__always) static func copyNormalizingEscapes(_ p: UnsafeRawBufferPointer, _ i: inout Int, _ end: Int,
                                                        stopAtQuery: Bool, into out: inout [UInt8]) -> Bool {
        while i < end {
            // A run of bytes that are copied as they are goes in at once.
            var j = i
            while j < end {
                let c = p[j]
                if c == 37 || c == 35 || (c == 63 && stopAtQuery) { break }
                j += 1
            }
            if j > i { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[i..<j])); i = j }
            guard i < end else { return true }
            let c = p[i]
            if c == 63 { return true }   // (stopAtQuery: the run stops at "?" only then)
            if c == 35 { return false }
            guard i + 2 < end, let v = decodeEscape(p[i + 1], p[i + 2]) else { return false }
            appendNormalizedEscape(v, &out)
            i += 3
        }
        return true
    }

    @inline(__always) static func decodeEscape(_ a: UInt8, _ b: UInt8) -> UInt8? {
        let h = hexValue(a), l = hexValue(b)
        guard h >= 0, l >= 0 else { return nil }
        return UInt8(h << 4 | l)
    }

    @inline(__always) static func appendNormalizedEscape(_ v: UInt8, _ out: inout [UInt8]) {
        if byteClasses[Int(v)] & classUnreserved != 0 {
            out.append(v)
        } else {
            let hex: StaticString = "0123456789ABCDEF"
            out.append(37)
            out.append(hex.utf8Start[Int(v >> 4)])
            out.append(hex.utf8Start[Int(v & 0xF)])
        }
    }

    /// RFC 3986 §5.2.4 on `out[from...]`, which starts with "/".
    static func removeDotSegments(_ out: inout [UInt8], from: Int) {
        let n = out.count
        // Fast path: no "." segment can exist without "/." in the path.
        var hasDot = false
        var k = from
        while k + 1 < n { if out[k] == 47 && out[k + 1] == 46 { hasDot = true; break }; k += 1 }
        guard hasDot else { return }
        let input = Array(out[from..<n])
        out.removeSubrange(from..<n)
        out.append(47)
        var starts: [Int] = []
        var i = 1
        while i <= input.count {
            var j = i
            while j < input.count && input[j] != 47 { j += 1 }
            let isLast = j >= input.count
            let len = j - i
            if len == 1 && input[i] == 46 {
                // "." : drop
            } else if len == 2 && input[i] == 46 && input[i + 1] == 46 {
                if let s = starts.popLast() { out.removeSubrange(s..<out.count) }
            } else {
                starts.append(out.count)
                out.append(contentsOf: input[i..<j])
                if !isLast { out.append(47) }
            }
            i = j + 1
        }
    }
}
