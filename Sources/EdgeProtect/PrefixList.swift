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
    public init?(_ s: String) { self.init(bytes: Array(s.utf8)[...]) }

    /// The same from bytes (list files are read this way: no String per line).
    public init?(bytes s: ArraySlice<UInt8>) {
        let slash = s.firstIndex(of: 47)
        guard let a = IPAddress(bytes: s[s.startIndex..<(slash ?? s.endIndex)]) else { return nil }
        // Written as IPv4, the length counts IPv4 bits; written as IPv6 (an IPv4-mapped one too), IPv6 bits.
        let width = a.isV4 && !s[s.startIndex..<(slash ?? s.endIndex)].contains(58) ? 32 : 128
        var len = width
        if let slash {
            let digits = s[(slash + 1)...]
            guard !digits.isEmpty, digits.count <= 3, digits.first != 48 || digits.count == 1 else { return nil }
            var n = 0
            for c in digits {
                guard c >= 48 && c <= 57 else { return nil }
                n = n * 10 + Int(c - 48)
            }
            guard n <= width else { return nil }
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
    @usableFromInline var starts: [UInt128] = [0]
    @usableFromInline var verdicts: [UInt8] = [2]
    /// The same function on the IPv4 addresses alone (the mapped /96), as 32-bit
    /// starts: most lookups are IPv4, and a search over UInt32s is a quarter of the memory.
    @usableFromInline var v4Starts: [UInt32] = [0]
    @usableFromInline var v4Verdicts: [UInt8] = [2]
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

    /// From parsed prefixes (the config loader's, which named each bad one already).
    public init(allow: [Prefix], deny: [Prefix], default explicit: Verdict? = nil) throws(BuildError) {
        try self.init(prefixes: allow.map { ($0, 0) } + deny.map { ($0, 1) })
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
        // The IPv4 slice: the range holding ::ffff:0.0.0.0, then every start inside the mapped /96.
        let base = IPAddress(v4: 0).value, top = IPAddress(v4: .max).value
        var i = PrefixList.lastStart(starts, atOrBelow: base)
        v4Verdicts = [verdicts[i]]
        i += 1
        while i < starts.count && starts[i] <= top {
            v4Starts.append(UInt32(truncatingIfNeeded: starts[i] - base))
            v4Verdicts.append(verdicts[i])
            i += 1
        }
    }

    /// The verdict for an address (the default when no prefix holds it).
    @inlinable public func verdict(_ a: IPAddress) -> Verdict {
        if prefixCount == 0 { return defaultVerdict }
        let v: UInt8
        if a.isV4 {
            v = v4Verdicts[PrefixList.lastStart(v4Starts, atOrBelow: UInt32(truncatingIfNeeded: a.value))]
        } else {
            v = verdicts[PrefixList.lastStart(starts, atOrBelow: a.value)]
        }
        switch v {
        case 0: return .allow
        case 1: return .deny
        default: return defaultVerdict
        }
    }

    /// The index of the last element <= x in ascending `a` (whose first element is 0, so there is one).
    @inlinable @inline(__always) static func lastStart<T: FixedWidthInteger>(_ a: [T], atOrBelow x: T) -> Int {
        a.withUnsafeBufferPointer { s in
            var lo = 0, n = s.count   // the answer lies in [lo, lo + n)
            while n > 1 {
                let half = n >> 1
                if s[lo + half] <= x { lo += half; n -= half } else { n = half }
            }
            return lo
        }
    }

    /// Ranges in the table (for tests and stats).
    public var rangeCount: Int { starts.count }

    /// The prefixes of a list file: one per line, `#` starts a comment, blank
    /// lines skipped; each with its line number (for errors), as bytes.
    public static func lines(_ text: [UInt8]) -> [(line: Int, prefix: ArraySlice<UInt8>)] {
        var out: [(Int, ArraySlice<UInt8>)] = []
        var n = 0, i = 0
        while i < text.count {
            n += 1
            var end = i
            while end < text.count && text[end] != 10 { end += 1 }
            var e = end
            if let h = text[i..<end].firstIndex(of: 35) { e = h }
            var s = i
            while s < e && (text[s] == 32 || text[s] == 9 || text[s] == 13) { s += 1 }
            while e > s && (text[e - 1] == 32 || text[e - 1] == 9 || text[e - 1] == 13) { e -= 1 }
            if s < e { out.append((n, text[s..<e])) }
            i = end + 1
        }
        return out
    }

    public static func lines(_ text: String) -> [(line: Int, prefix: String)] {
        lines(Array(text.utf8)).map { ($0.line, String(decoding: $0.prefix, as: UTF8.self)) }
    }
}

/// Loopback or a private network (RFC 1918, RFC 4193): where edged's admin
/// API, plain HTTP with a bearer token, may listen and be called (a token
/// sent across the internet in clear would be anyone's).
public func isAdminAddress(_ ip: String) -> Bool {
    guard let a = IPAddress(ip) else { return false }
    return adminNetworks.contains { $0.contains(a) }
}

let adminNetworks = ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"].compactMap(Prefix.init)
