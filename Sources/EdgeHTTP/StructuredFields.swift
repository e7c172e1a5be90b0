// Structured Field dictionaries (RFC 8941 §3.2, parsed per §4.2.2): what
// targeted cache fields such as CDN-Cache-Control are (RFC 9213 §2.1). Strict:
// any syntax error fails the whole field, and the caller ignores it. Pure:
// bytes in, members out.

/// One member's value. Parameters are checked for syntax and dropped (RFC 9213
/// §2.1 ignores them); an inner list is only counted.
public enum StructuredItem: Equatable, Sendable {
    case boolean(Bool)
    case integer(Int64)
    case decimal(Double)
    case string(String)
    case token(String)
    case bytes
    case innerList(Int)
}

public enum StructuredFields {
    /// The members of a dictionary field (all its lines, joined with commas as
    /// RFC 8941 §4.2 says), in order; a key given twice keeps its last value in
    /// the first one's place. nil on any syntax error or when it is empty.
    public static func dictionary(_ lines: [String]) -> [(key: String, value: StructuredItem)]? {
        var joined: [UInt8] = []
        for (i, l) in lines.enumerated() {
            if i > 0 { joined.append(44) }
            joined.append(contentsOf: l.utf8)
        }
        return joined.withUnsafeBytes { dictionary($0) }
    }

    public static func dictionary(_ p: UnsafeRawBufferPointer) -> [(key: String, value: StructuredItem)]? {
        var r = Reader(p: p)
        var out: [(key: String, value: StructuredItem)] = []
        r.skipSP()
        guard !r.atEnd else { return nil }
        while !r.atEnd {
            guard let key = r.key() else { return nil }
            var value = StructuredItem.boolean(true)
            if r.take(61) {
                guard let v = r.itemOrInnerList() else { return nil }
                value = v
            } else {
                guard r.parameters() else { return nil }
            }
            if let i = out.firstIndex(where: { $0.key == key }) { out[i].value = value } else { out.append((key, value)) }
            r.skipOWS()
            if r.atEnd { break }
            guard r.take(44) else { return nil }
            r.skipOWS()
            if r.atEnd { return nil }   // a trailing comma
        }
        return out
    }

    struct Reader {
        let p: UnsafeRawBufferPointer
        var i = 0
        init(p: UnsafeRawBufferPointer) { self.p = p }
        var atEnd: Bool { i >= p.count }
        var peek: UInt8 { p[i] }
        mutating func take(_ c: UInt8) -> Bool { if !atEnd && p[i] == c { i += 1; return true }; return false }
        mutating func skipSP() { while !atEnd && p[i] == 32 { i += 1 } }
        mutating func skipOWS() { while !atEnd && (p[i] == 32 || p[i] == 9) { i += 1 } }

        static func lcalpha(_ c: UInt8) -> Bool { c >= 97 && c <= 122 }
        static func alpha(_ c: UInt8) -> Bool { (c | 0x20) >= 97 && (c | 0x20) <= 122 }
        static func digit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

        /// key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )
        mutating func key() -> String? {
            guard !atEnd, Reader.lcalpha(peek) || peek == 42 else { return nil }
            let s = i
            while !atEnd, Reader.lcalpha(peek) || Reader.digit(peek) || peek == 95 || peek == 45 || peek == 46 || peek == 42 { i += 1 }
            return String(decoding: UnsafeRawBufferPointer(rebasing: p[s..<i]), as: UTF8.self)
        }

        mutating func itemOrInnerList() -> StructuredItem? {
            if take(40) {
                var n = 0
                while true {
                    skipSP()
                    if take(41) { return parameters() ? .innerList(n) : nil }
                    guard bareItem() != nil, parameters() else { return nil }
                    n += 1
                    guard !atEnd, peek == 32 || peek == 41 else { return nil }
                }
            }
            guard let v = bareItem(), parameters() else { return nil }
            return v
        }

        mutating func parameters() -> Bool {
            while take(59) {
                skipSP()
                guard key() != nil else { return false }
                if take(61) { guard bareItem() != nil else { return false } }
            }
            return true
        }

        mutating func bareItem() -> StructuredItem? {
            guard !atEnd else { return nil }
            let c = peek
            if c == 45 || Reader.digit(c) { return number() }
            if c == 34 { return string() }
            if c == 58 {
                i += 1
                while !atEnd, peek != 58 {
                    guard Reader.alpha(peek) || Reader.digit(peek) || peek == 43 || peek == 47 || peek == 61 else { return nil }
                    i += 1
                }
                return take(58) ? .bytes : nil
            }
            if c == 63 {
                i += 1
                if take(49) { return .boolean(true) }
                if take(48) { return .boolean(false) }
                return nil
            }
            if Reader.alpha(c) || c == 42 {
                let s = i
                i += 1
                while !atEnd, isTokenChar(peek) || peek == 58 || peek == 47 { i += 1 }
                return .token(String(decoding: UnsafeRawBufferPointer(rebasing: p[s..<i]), as: UTF8.self))
            }
            return nil
        }

        mutating func number() -> StructuredItem? {
            let negative = take(45)
            var intDigits = 0, fracDigits = 0, decimal = false
            var v: Int64 = 0
            var frac = 0.0, scale = 1.0
            while !atEnd {
                let c = peek
                if Reader.digit(c) {
                    if decimal { fracDigits += 1; scale /= 10; frac += Double(c - 48) * scale }
                    else { intDigits += 1; v = v * 10 + Int64(c - 48) }
                    i += 1
                } else if c == 46 && !decimal {
                    guard intDigits <= 12 else { return nil }
                    decimal = true; i += 1
                } else { break }
                if !decimal && intDigits > 15 { return nil }
                if decimal && fracDigits > 3 { return nil }
            }
            guard intDigits > 0 else { return nil }
            if decimal {
                guard fracDigits > 0 else { return nil }
                return .decimal((Double(v) + frac) * (negative ? -1 : 1))
            }
            return .integer(negative ? -v : v)
        }

        mutating func string() -> StructuredItem? {
            i += 1
            var out: [UInt8] = []
            while !atEnd {
                let c = peek
                i += 1
                if c == 92 {
                    guard !atEnd, peek == 34 || peek == 92 else { return nil }
                    out.append(peek); i += 1
                } else if c == 34 {
                    return .string(String(decoding: out, as: UTF8.self))
                } else if c < 0x20 || c > 0x7E {
                    return nil
                } else {
                    out.append(c)
                }
            }
            return nil
        }
    }
}
