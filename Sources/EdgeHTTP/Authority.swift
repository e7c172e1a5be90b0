// The request's host (Host field or absolute-form authority), normalized once:
// lowercase, no trailing dot, no port. That one form picks the tenant, keys the
// cache and is what the origin sees in Host and X-Forwarded-Host, so a variant
// spelling (`A.TEST.`, `a.test:1337`) can never be keyed like `a.test` yet
// reach the origin as sent. Pure.

public enum Authority {
    /// Writes the normalized host of `p[range]` into `out` (cleared first).
    /// Returns false for a malformed authority (answer 400): a port that is not
    /// 1–65535 in decimal, an empty host before a port, two trailing dots, an unclosed or invalid
    /// IPv6 literal, or a byte outside the reg-name / IP-literal grammar. An
    /// empty range (no Host, HTTP/1.0) gives an empty host.
    public static func normalize(_ p: UnsafeRawBufferPointer, _ range: Range<Int>, into out: inout [UInt8]) -> Bool {
        out.removeAll(keepingCapacity: true)
        guard !range.isEmpty else { return true }
        var i = range.lowerBound
        let end = range.upperBound
        if p[i] == 91 { // '[' IPv6 literal
            out.append(91)
            i += 1
            while i < end && p[i] != 93 {
                let b = p[i]
                let hex = (b >= 48 && b <= 57) || (b >= 97 && b <= 102) || (b >= 65 && b <= 70)
                guard hex || b == 58 || b == 46 else { return false }
                out.append(asciiLower(b))
                i += 1
            }
            guard i < end, out.count > 1 else { return false }
            out.append(93)
            i += 1
        } else {
            // Checked to the port, then copied at once (and lowercased if it has a capital).
            let start = i
            var capital = false
            while i < end && p[i] != 58 {
                let b = p[i]
                let ok = (b >= 48 && b <= 57) || (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || b == 45 || b == 46 || b == 95 || b == 126
                guard ok else { return false }
                if b >= 65 && b <= 90 { capital = true }
                i += 1
            }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[start..<i]))
            if capital { out.withUnsafeMutableBufferPointer { o in for k in o.indices { o[k] = asciiLower(o[k]) } } }
            // One trailing dot (the root label) goes; a name still ending in one had an empty label.
            if out.last == 46 { out.removeLast() }
            guard !out.isEmpty, out.last != 46 else { return false }
        }
        guard i < end else { return true }
        guard p[i] == 58 else { return false }
        i += 1
        guard i < end else { return true }   // "host:" (an empty port, RFC 3986 §3.2.3)
        var port = 0
        while i < end {
            let b = p[i]
            guard b >= 48 && b <= 57 else { return false }
            port = port * 10 + Int(b - 48)
            guard port <= 65535 else { return false }
            i += 1
        }
        return port >= 1
    }
}
