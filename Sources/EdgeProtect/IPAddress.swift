// Client addresses as values: IPv4 and IPv6 in one 128-bit space (an IPv4
// address is its IPv4-mapped form, ::ffff:a.b.c.d, RFC 4291 §2.5.5.2), so one
// prefix table and one limiter key serve both. Text in and out, parsed here
// (no libc): the PROXY protocol's v1 line and the config's lists are text.
// Pure: no I/O, no clock.
#if canImport(EdgeHTTP)   // (the fuzzer compiles EdgeHTTP and this module as one: tools/fuzz/run.sh)
import EdgeHTTP
#endif

public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The address as a 128-bit number (network order: the first byte is the top).
    public var value: UInt128

    static let mappedPrefix: UInt128 = 0xffff << 32

    public init(value: UInt128) { self.value = value }
    /// An IPv4 address from its 32-bit number (a.b.c.d is a<<24 | b<<16 | c<<8 | d).
    public init(v4: UInt32) { value = IPAddress.mappedPrefix | UInt128(v4) }
    /// From 16 bytes in network order.
    public init(v6 bytes: UnsafeRawBufferPointer) {
        var v: UInt128 = 0
        for i in 0..<16 { v = v << 8 | UInt128(bytes[i]) }
        value = v
    }

    @inlinable public var isV4: Bool { value >> 32 == 0xffff }
    public static func < (a: IPAddress, b: IPAddress) -> Bool { a.value < b.value }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (`::`, an embedded IPv4
    /// tail); nothing else (no zone, no brackets, no leading zeros in IPv4).
    public init?<C: Collection>(text: C) where C.Element == UInt8 {
        self.init(bytes: Array(text)[...])
    }

    public init?(bytes: ArraySlice<UInt8>) {
        if let v4 = IPAddress.parseV4(bytes) { self.init(v4: v4); return }
        guard let v6 = IPAddress.parseV6(bytes) else { return nil }
        self.init(value: v6)
    }
    public init?(_ s: String) { self.init(text: s.utf8) }

    static func parseV4(_ b: ArraySlice<UInt8>) -> UInt32? {
        var out: UInt32 = 0, parts = 0, i = b.startIndex
        while parts < 4 {
            var n = 0, digits = 0
            while i < b.endIndex, b[i] >= 48, b[i] <= 57 {
                if digits > 0 && n == 0 { return nil }   // leading zero
                n = n * 10 + Int(b[i] - 48); digits += 1; i += 1
                if n > 255 { return nil }
            }
            guard digits > 0 else { return nil }
            out = out << 8 | UInt32(n)
            parts += 1
            if parts < 4 {
                guard i < b.endIndex, b[i] == 46 else { return nil }
                i += 1
            }
        }
        return i == b.endIndex ? out : nil
    }

    static func parseV6(_ whole: ArraySlice<UInt8>) -> UInt128? {
        guard whole.count >= 2, whole.count <= 45 else { return nil }
        return whole.withUnsafeBufferPointer { parseV6($0) }
    }

    static func parseV6(_ b: UnsafeBufferPointer<UInt8>) -> UInt128? {
        var groups: [UInt16] = []
        groups.reserveCapacity(8)
        var gap = -1            // index in groups where "::" stands
        var i = 0
        if b[0] == 58 {         // leading "::"
            guard b[1] == 58 else { return nil }
            gap = 0; i = 2
            if i == b.count { return 0 }
        }
        while i < b.count {
            // An IPv4 tail: the rest has a dot.
            if !b[i...].contains(58), b[i...].contains(46) {
                guard groups.count <= 6, let v4 = parseV4(ArraySlice(b[i...])) else { return nil }
                groups.append(UInt16(v4 >> 16)); groups.append(UInt16(v4 & 0xffff))
                i = b.count
                break
            }
            var n = 0, digits = 0
            while i < b.count {
                let h = hexValue(b[i])   // (EdgeHTTP's: -1 for a byte that is no hex digit)
                if h < 0 { break }
                n = n << 4 | h; digits += 1; i += 1
                if digits > 4 { return nil }
            }
            guard digits > 0 else { return nil }
            groups.append(UInt16(n))
            if i == b.count { break }
            guard b[i] == 58 else { return nil }
            i += 1
            if i < b.count && b[i] == 58 {
                guard gap < 0 else { return nil }
                gap = groups.count; i += 1
                if i == b.count { break }
            } else if i == b.count {
                return nil      // trailing single ':'
            }
        }
        if gap < 0 {
            guard groups.count == 8 else { return nil }
        } else {
            guard groups.count <= 7 else { return nil }
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: gap)
        }
        var v: UInt128 = 0
        for g in groups { v = v << 16 | UInt128(g) }
        return v
    }

    /// Dotted quad for IPv4; RFC 5952 text for IPv6 (lower case, the longest
    /// run of two or more zero groups as "::", the first such run on a tie).
    public var text: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(39)
        if isV4 {
            let v = UInt32(truncatingIfNeeded: value)
            for k in 0..<4 {
                if k > 0 { out.append(46) }
                appendDecimal(Int(v >> UInt32(24 - 8 * k) & 0xff), &out)
            }
            return out
        }
        var g = [Int](repeating: 0, count: 8)
        for k in 0..<8 { g[k] = Int(value >> UInt128(112 - 16 * k) & 0xffff) }
        var bestAt = -1, bestLen = 1, k = 0
        while k < 8 {
            if g[k] == 0 {
                var e = k
                while e < 8 && g[e] == 0 { e += 1 }
                if e - k > bestLen { bestAt = k; bestLen = e - k }
                k = e
            } else { k += 1 }
        }
        k = 0
        while k < 8 {
            if k == bestAt {
                out.append(58); out.append(58)
                k += bestLen
                continue
            }
            if k > 0 && k != bestAt + bestLen { out.append(58) }   // after "::" no second colon
            appendHex(g[k], &out)
            k += 1
        }
        return out
    }

    public var description: String { String(decoding: text, as: UTF8.self) }

    /// The key a per-client limit counts under: the address itself for IPv4,
    /// its /64 for IPv6 (one subscriber's usual allocation).
    @inlinable public var limitKey: UInt128 { isV4 ? value : (value >> 64) << 64 }
}

@inline(__always) func appendDecimal(_ n: Int, _ out: inout [UInt8]) {
    if n >= 100 { out.append(UInt8(48 + n / 100)) }
    if n >= 10 { out.append(UInt8(48 + n / 10 % 10)) }
    out.append(UInt8(48 + n % 10))
}

@inline(__always) func appendHex(_ n: Int, _ out: inout [UInt8]) {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    var started = false
    for shift in stride(from: 12, through: 0, by: -4) {
        let d = n >> shift & 0xf
        if d != 0 || started || shift == 0 { out.append(digits[d]); started = true }
    }
}
