// Allow and deny lists of address prefixes (CIDR, IPv4 and IPv6), as one
// sorted table of ranges: built once at config load, then a binary search per
// lookup (100,000 prefixes: 17 comparisons, no allocation).
//
// Which list wins: the most specific prefix that holds the address, so
// `deny 10.0.0.0/8` with `allow 10.1.2.0/24` lets 10.1.2.x through and no other
// 10.x (the carve-out operators write in nginx as `allow` before `deny`). An
// address no prefix holds gets the list's default: deny when only `allow`
// prefixes are given (an allow-list), allow otherwise; `default` may say so
// explicitly. One prefix in both lists is an error (no order decides it).
// Pure: no I/O.

public struct Prefix: Hashable, Sendable {
    public var first: UInt128
    public var last: UInt128
    public var bits: Int   // in the 128-bit space (an IPv4 /24 is 120)

    /// `a.b.c.d/len`, `x::y/len`, or a bare address (a host: /32 or /128).
    /// Bits set past the length are an error (a typo, not a network).
    public init?(_ s: String) {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let a = IPAddress(text: parts[0].utf8) else { return nil }
        let width = a.isV4 ? 32 : 128
        var len = width
        if parts.count == 2 {
            guard let n = Int(parts[1]), n >= 0, n <= width, parts[1].first != "+",
                  parts[1].count == String(n).count else { return nil }
            len = n
        }
        bits = len + (128 - width)
        let hostMask: UInt128 = bits == 128 ? 0 : (UInt128.max >> UInt128(bits))
        guard a.value & hostMask == 0 else { return nil }
        first = a.value
        last = a.value | hostMask
    }

    public func contains(_ a: IPAddress) -> Bool { a.value >= first && a.value <= last }

    /// `address/length` as an operator writes it.
    public var text: String {
        let a = IPAddress(value: first)
        return a.description + "/" + String(a.isV4 ? bits - 96 : bits)
    }
}

public struct PrefixList: Sendable, Equatable {
    public enum Verdict: UInt8, Sendable {
        case allow, deny
        public init?(name: String) {
            switch name { case "allow": self = .allow; case "deny": self = .deny; default: return nil }
        }
    }
    public enum BuildError: Error, Equatable {
        case bad(String)
        case inBoth(String)
    }

    /// Range starts, ascending, from 0: address x has verdict[i] for the last
    /// starts[i] <= x (0 allow, 1 deny, 2 no prefix holds it).
    var starts: [UInt128] = [0]
    var verdicts: [UInt8] = [2]
    public private(set) var defaultVerdict = Verdict.allow
    public private(set) var prefixCount = 0

    public init() {}

    public var isEmpty: Bool { prefixCount == 0 }

    /// Builds from prefix text (`allow` and `deny` lists) and an optional
    /// explicit default ("allow" / "deny").
    public init(allow: [String], deny: [String], default explicit: Verdict? = nil) throws(BuildError) {
        var all: [(Prefix, UInt8)] = []
        all.reserveCapacity(allow.count + deny.count)
        for s in allow { guard let p = Prefix(s) else { throw .bad(s) }; all.append((p, 0)) }
        for s in deny { guard let p = Prefix(s) else { throw .bad(s) }; all.append((p, 1)) }
        try self.init(prefixes: all)
        defaultVerdict = explicit ?? (deny.isEmpty && !allow.isEmpty ? .deny : .allow)
    }

    init(prefixes input: [(Prefix, UInt8)]) throws(BuildError) {
        var all = input
        prefixCount = all.count
        // Outer before inner at the same start; prefixes nest or are disjoint.
        all.sort { a, b in a.0.first != b.0.first ? a.0.first < b.0.first : a.0.last > b.0.last }
        var stack: [(last: UInt128, verdict: UInt8)] = []
        func set(_ x: UInt128, _ v: UInt8) {
            if starts.last == x {
                verdicts[verdicts.count - 1] = v
                if verdicts.count >= 2 && verdicts[verdicts.count - 2] == v { starts.removeLast(); verdicts.removeLast() }
            } else if verdicts.last != v {
                starts.append(x); verdicts.append(v)
            }
        }
        func close(_ top: (last: UInt128, verdict: UInt8)) {
            if top.last != .max { set(top.last + 1, stack.last?.verdict ?? 2) }
        }
        var previous: (Prefix, UInt8)?
        for (p, v) in all {
            if let (q, w) = previous, q == p {
                if w != v { throw .inBoth(p.text) }
                continue
            }
            previous = (p, v)
            while let top = stack.last, top.last < p.first { stack.removeLast(); close(top) }
            set(p.first, v)
            stack.append((p.last, v))
        }
        while let top = stack.popLast() { close(top) }
    }

    /// The verdict for an address (the default when no prefix holds it).
    @inline(__always) public func verdict(_ a: IPAddress) -> Verdict {
        if prefixCount == 0 { return defaultVerdict }
        let x = a.value
        var lo = 0, hi = starts.count   // the last start <= x lies in [lo, hi)
        while hi - lo > 1 {
            let mid = (lo + hi) >> 1
            if starts[mid] <= x { lo = mid } else { hi = mid }
        }
        switch verdicts[lo] {
        case 0: return .allow
        case 1: return .deny
        default: return defaultVerdict
        }
    }

    /// Ranges in the table (for tests and stats).
    public var rangeCount: Int { starts.count }

    /// Prefix text from a list file: one per line, `#` starts a comment,
    /// blank lines skipped. Returns the prefixes and, for an error, its line.
    public static func lines(_ text: String) -> [(line: Int, prefix: String)] {
        var out: [(Int, String)] = []
        var n = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            n += 1
            var l = raw
            if let h = l.firstIndex(of: "#") { l = l[..<h] }
            let t = l.trimmingWhitespace()
            if !t.isEmpty { out.append((n, String(t))) }
        }
        return out
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return s
    }
}
