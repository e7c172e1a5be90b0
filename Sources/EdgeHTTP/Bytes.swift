// Byte classes and comparisons shared by the parsers. Pure; no state.

@usableFromInline let classTchar: UInt8 = 1
@usableFromInline let classFieldValue: UInt8 = 2
@usableFromInline let classTarget: UInt8 = 4
@usableFromInline let classHex: UInt8 = 8
@usableFromInline let classUnreserved: UInt8 = 16
@usableFromInline let classHost: UInt8 = 32

/// Per-byte class flags (RFC 9110 §5.6.2 tchar, §5.5 field-vchar, RFC 3986).
@usableFromInline let byteClasses: [UInt8] = {
    var t = [UInt8](repeating: 0, count: 256)
    for b in 0..<256 {
        let c = UInt8(b)
        var f: UInt8 = 0
        let alpha = (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
        let digit = c >= 48 && c <= 57
        if alpha || digit || "!#$%&'*+-.^_`|~".utf8.contains(c) { f |= classTchar }
        if (c >= 0x21 && c <= 0x7E) || c == 0x20 || c == 0x09 || c >= 0x80 { f |= classFieldValue }
        if c >= 0x21 && c <= 0x7E { f |= classTarget }
        if digit || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) { f |= classHex }
        if alpha || digit || c == 45 || c == 46 || c == 95 || c == 126 { f |= classUnreserved }
        if alpha || digit || "-._~!$&'()*+,;=:[]%".utf8.contains(c) { f |= classHost }
        t[b] = f
    }
    return t
}()

/// FNV-1a's 64-bit offset basis (the hash of nothing) and one step of it.
@inlinable public var fnv1aBasis: UInt64 { 0xcbf2_9ce4_8422_2325 }
@inline(__always) @inlinable public func fnv1aStep(_ h: UInt64, _ b: UInt8) -> UInt64 { (h ^ UInt64(b)) &* 0x100_0000_01b3 }

/// FNV-1a, 64 bits: ids of counter blocks and limiter buckets, balancer keys.
@inlinable public func fnv1a<S: Sequence>(_ bytes: S, seed: UInt64 = fnv1aBasis) -> UInt64 where S.Element == UInt8 {
    var h = seed
    for b in bytes { h = fnv1aStep(h, b) }
    return h
}

/// The same over bytes in place (not generic: a debug build iterates it
/// without allocating; the hot path hashes every cache key with it).
@inlinable public func fnv1a(_ bytes: UnsafeBufferPointer<UInt8>, seed: UInt64 = fnv1aBasis) -> UInt64 {
    var h = seed
    var i = 0
    while i < bytes.count { h = fnv1aStep(h, bytes[i]); i += 1 }
    return h
}

/// A 64-bit finalizer (splitmix64's): spreads FNV's weak low-entropy
/// outputs over the whole range, for rings and tables keyed by hash.
@inlinable public func mix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9e37_79b9_7f4a_7c15
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
}

@inline(__always) public func asciiLower(_ b: UInt8) -> UInt8 {
    (b >= 65 && b <= 90) ? b | 0x20 : b
}

@inline(__always) public func hexValue(_ b: UInt8) -> Int {
    switch b {
    case 48...57: return Int(b - 48)
    case 65...70: return Int(b - 55)
    case 97...102: return Int(b - 87)
    default: return -1
    }
}

/// Eight bytes at once through asciiLower: each byte in "A"..."Z" gets 0x20,
/// every other byte (0x80 and up too) stays as it is.
@inline(__always) public func asciiLower(word w: UInt64) -> UInt64 {
    let low7 = w & 0x7F7F_7F7F_7F7F_7F7F
    let atLeastA = low7 &+ 0x3F3F_3F3F_3F3F_3F3F     // bit 7 set where the byte is >= 0x41 (no carry out: 0x7F + 0x3F < 0x100)
    let pastZ = low7 &+ 0x2525_2525_2525_2525        // bit 7 set where the byte is > 0x5A
    let upper = atLeastA & ~pastZ & ~w & 0x8080_8080_8080_8080
    return w | (upper >> 2)
}

/// Case-insensitive compare of `p[start..<end]` with a lowercase literal:
/// eight bytes a step (the last step overlapping the one before) when the
/// literal has eight or more, byte by byte below that.
@inline(__always) public func equalsLowercase(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ lit: StaticString) -> Bool {
    let n = lit.utf8CodeUnitCount
    guard end - start == n else { return false }
    let l = lit.utf8Start
    if n < 8 {
        for i in 0..<n where asciiLower(p[start + i]) != l[i] { return false }
        return true
    }
    let a = p.baseAddress! + start
    let b = UnsafeRawPointer(l)
    var i = 0
    while true {
        if asciiLower(word: a.loadUnaligned(fromByteOffset: i, as: UInt64.self)) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
        if i + 8 == n { return true }
        i = min(i + 8, n - 8)
    }
}

/// The index of the first byte in `p[start..<end]` below 0x20 (a CR, LF, NUL,
/// tab or another control) or, with `del`, equal to 0x7F; `end` when there is
/// none. Sixteen bytes a step (SIMD: compare, then the first set lane of the
/// mask as two words), then eight (SWAR), then one by one.
@inline(__always) public func firstControl(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int, del: Bool) -> Int {
    var i = start
    let space = SIMD16<UInt8>(repeating: 0x20), rubout = SIMD16<UInt8>(repeating: 0x7F)
    while i + 16 <= end {
        let v = p.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt8>.self)
        let hit = del ? (v .< space) .| (v .== rubout) : v .< space
        let lanes = unsafeBitCast(SIMD16<UInt8>(repeating: 0).replacing(with: 0xFF, where: hit), to: SIMD2<UInt64>.self)
        let lo = UInt64(littleEndian: lanes[0]), hi = UInt64(littleEndian: lanes[1])
        if lo != 0 { return i + lo.trailingZeroBitCount >> 3 }
        if hi != 0 { return i + 8 + hi.trailingZeroBitCount >> 3 }
        i += 16
    }
    if i + 8 <= end {
        let w = p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        var found = (w &- 0x2020_2020_2020_2020) & ~w & 0x8080_8080_8080_8080
        if del { let d = w ^ 0x7F7F_7F7F_7F7F_7F7F; found |= (d &- 0x0101_0101_0101_0101) & ~d & 0x8080_8080_8080_8080 }
        if found == 0 { i += 8 }
    }
    while i < end {
        let c = p[i]
        if c < 0x20 || (del && c == 0x7F) { return i }
        i += 1
    }
    return end
}

/// The end of a field name (RFC 9110 §5.1: a token) that starts at `start`:
/// the first byte before `end` that is not a tchar, or `end`. Letters, digits
/// and "-" (what names are made of) are passed eight at a step (SWAR: each
/// byte's range checks in its own lane, no carry crossing lanes); from the
/// first other byte on, one by one. `plain` is false when the name has a tchar
/// other than those (an "_" among them). `classes`: byteClasses, read by the
/// caller once for a whole head (not once for each name).
@inline(__always) public func fieldNameEnd(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int, classes cls: UnsafeBufferPointer<UInt8>,
                                           plain: inout Bool) -> Int {
    var i = start
    let high: UInt64 = 0x8080_8080_8080_8080
    while i + 8 <= end {
        let w = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        let x = w & 0x7F7F_7F7F_7F7F_7F7F                       // each lane < 0x80: the sums below stay in it
        let f = x | 0x2020_2020_2020_2020                       // letters folded to lowercase
        let letter = (f &+ 0x1F1F_1F1F_1F1F_1F1F) & (0xFAFA_FAFA_FAFA_FAFA &- f)   // 0x61 <= f <= 0x7A
        let digit = (x &+ 0x5050_5050_5050_5050) & (0xB9B9_B9B9_B9B9_B9B9 &- x)    // 0x30 <= x <= 0x39
        let dash = ~((x ^ 0x2D2D_2D2D_2D2D_2D2D) &+ 0x7F7F_7F7F_7F7F_7F7F)         // x == 0x2D
        let other = ~(letter | digit | dash) & high | (w & high)
        if other != 0 { i += other.trailingZeroBitCount >> 3; break }
        i += 8
    }
    while i < end {
        let c = p[i]
        if cls[Int(c)] & classTchar == 0 { return i }
        if c == 0x2D || (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A) {} else { plain = false }
        i += 1
    }
    return end
}

/// True when the field name at `p[range]` is `lower` (lowercase), case-insensitively.
@inline(__always) public func nameIs(_ p: UnsafeRawBufferPointer, _ range: Range<Int>, _ lower: [UInt8]) -> Bool {
    guard range.count == lower.count else { return false }
    var j = range.lowerBound
    for b in lower { if asciiLower(p[j]) != b { return false }; j += 1 }
    return true
}

/// Case-insensitive compare of two byte ranges.
@inline(__always) public func equalsIgnoringCase(_ a: UnsafeRawBufferPointer, _ ra: Range<Int>, _ b: UnsafeRawBufferPointer, _ rb: Range<Int>) -> Bool {
    guard ra.count == rb.count else { return false }
    var i = ra.lowerBound, j = rb.lowerBound
    while i < ra.upperBound {
        if asciiLower(a[i]) != asciiLower(b[j]) { return false }
        i += 1; j += 1
    }
    return true
}

/// Iterates the comma-separated tokens of a list-valued field (RFC 9110 §5.6.1),
/// trimming OWS and skipping empty elements.
@inline(__always) public func forEachListElement(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ body: (Int, Int) -> Void) {
    var i = start
    while i < end {
        while i < end && (p[i] == 0x20 || p[i] == 0x09 || p[i] == 0x2C) { i += 1 }
        let s = i
        while i < end && p[i] != 0x2C { i += 1 }
        var e = i
        while e > s && (p[e - 1] == 0x20 || p[e - 1] == 0x09) { e -= 1 }
        if e > s { body(s, e) }
    }
}

/// Is `b` a tchar (RFC 9110 §5.6.2: the bytes of a token such as a field name)?
@inline(__always) public func isTokenChar(_ b: UInt8) -> Bool { byteClasses[Int(b)] & classTchar != 0 }

extension StringProtocol {
    /// The string without the leading and trailing bytes `drop` says.
    @inline(__always) func trimming(_ drop: (UInt8) -> Bool) -> String {
        var s = Substring(self)
        while let f = s.utf8.first, drop(f) { s = s.dropFirst() }
        while let l = s.utf8.last, drop(l) { s = s.dropLast() }
        return String(s)
    }

    /// The string without leading and trailing spaces and tabs (OWS).
    public func trimmedOWS() -> String { trimming { $0 == 32 || $0 == 9 } }

    /// The string without leading and trailing spaces, tabs, CRs and LFs (a token file's line).
    public func trimmedWhitespace() -> String { trimming { $0 == 32 || $0 == 9 || $0 == 13 || $0 == 10 } }

    /// The text with its %XX escapes decoded (a query parameter's); nil when
    /// an escape is malformed or the bytes decoded are not UTF-8.
    public var percentDecoded: String? {
        let b = Array(utf8)
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            if b[i] != 37 { out.append(b[i]); i += 1; continue }
            guard i + 2 < b.count, hexValue(b[i + 1]) >= 0, hexValue(b[i + 2]) >= 0 else { return nil }
            out.append(UInt8(hexValue(b[i + 1]) << 4 | hexValue(b[i + 2])))
            i += 3
        }
        return String(validating: out, as: UTF8.self)
    }

    /// Without the square brackets around it (an IPv6 literal's: "[::1]" is "::1").
    public var trimmingBrackets: String { trimming { $0 == 91 || $0 == 93 } }
}
/// Base64 (RFC 4648 §4, padded), or with `url` base64url (§5, unpadded: what
/// JWS uses). A WebSocket key is base64 of 16 random bytes (RFC 6455 §4.1).
public func base64(_ bytes: [UInt8], url: Bool = false) -> [UInt8] {
    let table = Array((url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                           : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/").utf8)
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var i = 0
    while i + 2 < bytes.count {
        let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
        out += [table[Int(v >> 18)], table[Int(v >> 12 & 63)], table[Int(v >> 6 & 63)], table[Int(v & 63)]]
        i += 3
    }
    if bytes.count - i == 1 {
        let v = UInt32(bytes[i]) << 16
        out += [table[Int(v >> 18)], table[Int(v >> 12 & 63)]]
        if !url { out += [61, 61] }
    } else if bytes.count - i == 2 {
        let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
        out += [table[Int(v >> 18)], table[Int(v >> 12 & 63)], table[Int(v >> 6 & 63)]]
        if !url { out.append(61) }
    }
    return out
}

/// The protocols a client request arrives over, as the access log and the
/// counters name them (by index: HTTP/1.0, HTTP/1.1, HTTP/2).
public let protocolNames = ["HTTP/1.0", "HTTP/1.1", "HTTP/2"]
