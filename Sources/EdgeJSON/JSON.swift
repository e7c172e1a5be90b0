// JSON (RFC 8259) for the config files, the admin API and the ACME client:
// a value type, a strict parser, and a writer. Pure: no I/O, no Foundation
// (which edged no longer links: its runtime and ICU data cost about 6 MB of
// resident memory in every process, for work done at start and reload).
//
// The parser is strict but for one thing: one value with optional whitespace
// around it, no comments, strings in valid UTF-8 with their escapes
// checked (a lone surrogate is refused), and nesting at most `maxDepth`
// deep (the parser recurses). A repeated object key keeps its last value.
// Numbers without a fraction or exponent that fit in 64 bits are kept
// exactly (`.int`); every other number is a `.double` (one too large for a
// double, like 1e400, is refused rather than read as infinity, which JSON
// cannot write back). The leniencies: a leading UTF-8 byte order mark, and a
// comma after an array's last element or an object's last member, both as
// Foundation's JSONSerialization (which read edged's config files before)
// allows them, so that files written for it keep loading.

public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    // MARK: reading a value

    /// An object's member; nil for a missing key or when this is not an object.
    public subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var array: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var object: [String: JSON]? { if case .object(let o) = self { return o }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }
    /// An array of strings only; nil when anything in it is not a string.
    public var strings: [String]? {
        guard case .array(let a) = self else { return nil }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for e in a { guard case .string(let s) = e else { return nil }; out.append(s) }
        return out
    }

    /// Any number, as a Double.
    public var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// A whole number: an integer, or a double with no fraction (5.0) that fits.
    public var int64: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d): return d.rounded(.towardZero) == d && d >= -9.2e18 && d <= 9.2e18 ? Int64(d) : nil
        default: return nil
        }
    }

    /// `int64` as an Int.
    public var int: Int? { int64.map { Int($0) } }

    // MARK: making a value

    public init(_ s: String) { self = .string(s) }
    public init(_ b: Bool) { self = .bool(b) }
    public init(_ i: Int) { self = .int(Int64(i)) }
    public init(_ i: Int64) { self = .int(i) }
    public init(_ d: Double) { self = .double(d) }
    public init(_ a: [String]) { self = .array(a.map(JSON.string)) }
    /// A string or null.
    public init(_ s: String?) { self = s.map(JSON.string) ?? .null }
    /// A number or null.
    public init(_ i: Int64?) { self = i.map(JSON.int) ?? .null }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral,
                ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral s: String) { self = .string(s) }
    public init(integerLiteral i: Int64) { self = .int(i) }
    public init(floatLiteral d: Double) { self = .double(d) }
    public init(booleanLiteral b: Bool) { self = .bool(b) }
    public init(arrayLiteral a: JSON...) { self = .array(a) }
    public init(dictionaryLiteral pairs: (String, JSON)...) {
        var o: [String: JSON] = [:]
        for (k, v) in pairs { o[k] = v }
        self = .object(o)
    }
    public init(nilLiteral: ()) { self = .null }
}

/// Why a text is not JSON: what was wrong, and where (a byte offset, and the
/// line and column, counted from 1, for people).
public struct JSONError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public let offset: Int
    public let line: Int
    public let column: Int
    public var description: String { "line \(line), column \(column): \(message)" }
}

extension JSON {
    /// How deep arrays and objects may nest (each level is a stack frame).
    public static let defaultMaxDepth = 128

    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSON {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }

    public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSON {
        try bytes.withUnsafeBytes { b in Result { () throws(JSONError) -> JSON in try parse(b, maxDepth: maxDepth) } }.get()
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSON {
        var p = JSONParser(bytes, maxDepth: maxDepth)
        // A UTF-8 byte order mark (some editors write one) is skipped, as Foundation did.
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { p.i = 3 }
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        if p.i < bytes.count { throw p.error("unexpected text after the value") }
        return v
    }
}

struct JSONParser {
    let b: UnsafeRawBufferPointer
    let maxDepth: Int
    var i = 0

    init(_ b: UnsafeRawBufferPointer, maxDepth: Int) { self.b = b; self.maxDepth = maxDepth }

    func error(_ message: String, at: Int? = nil) -> JSONError {
        let at = min(at ?? i, b.count)
        var line = 1, lineStart = 0
        for k in 0..<at where b[k] == 10 { line += 1; lineStart = k + 1 }
        return JSONError(message: message, offset: at, line: line, column: at - lineStart + 1)
    }

    mutating func skipSpace() {
        while i < b.count, b[i] == 32 || b[i] == 10 || b[i] == 13 || b[i] == 9 { i += 1 }
    }

    mutating func value(depth: Int) throws(JSONError) -> JSON {
        guard i < b.count else { throw error("unexpected end of text, expected a value") }
        switch b[i] {
        case 123: // {
            guard depth < maxDepth else { throw error("nested more than \(maxDepth) deep") }
            i += 1
            var o: [String: JSON] = [:]
            skipSpace()
            if i < b.count, b[i] == 125 { i += 1; return .object(o) }
            while true {
                skipSpace()
                if i < b.count, b[i] == 125, !o.isEmpty { i += 1; return .object(o) }   // a trailing comma
                guard i < b.count, b[i] == 34 else { throw error("expected a string key") }
                let k = try string()
                skipSpace()
                guard i < b.count, b[i] == 58 else { throw error("expected ':' after a key") }
                i += 1
                skipSpace()
                o[k] = try value(depth: depth + 1)
                skipSpace()
                guard i < b.count else { throw error("unexpected end of text, expected ',' or '}'") }
                if b[i] == 44 { i += 1; continue }
                if b[i] == 125 { i += 1; return .object(o) }
                throw error("expected ',' or '}'")
            }
        case 91: // [
            guard depth < maxDepth else { throw error("nested more than \(maxDepth) deep") }
            i += 1
            var a: [JSON] = []
            skipSpace()
            if i < b.count, b[i] == 93 { i += 1; return .array(a) }
            while true {
                skipSpace()
                if i < b.count, b[i] == 93, !a.isEmpty { i += 1; return .array(a) }   // a trailing comma
                a.append(try value(depth: depth + 1))
                skipSpace()
                guard i < b.count else { throw error("unexpected end of text, expected ',' or ']'") }
                if b[i] == 44 { i += 1; continue }
                if b[i] == 93 { i += 1; return .array(a) }
                throw error("expected ',' or ']'")
            }
        case 34: return .string(try string())
        case 116: try word("true"); return .bool(true)
        case 102: try word("false"); return .bool(false)
        case 110: try word("null"); return .null
        case 45, 48...57: return try number()
        default: throw error("unexpected character, expected a value")
        }
    }

    mutating func word(_ w: StaticString) throws(JSONError) {
        let n = w.utf8CodeUnitCount
        guard i + n <= b.count else { throw error("unexpected end of text in \(w)") }
        for k in 0..<n where b[i + k] != w.utf8Start[k] { throw error("unexpected character, expected a value") }
        i += n
    }

    mutating func number() throws(JSONError) -> JSON {
        let start = i
        func digits(_ p: inout JSONParser) -> Int {
            let s = p.i
            while p.i < p.b.count, p.b[p.i] >= 48, p.b[p.i] <= 57 { p.i += 1 }
            return p.i - s
        }
        if b[i] == 45 { i += 1 }
        guard i < b.count, b[i] >= 48, b[i] <= 57 else { throw error("expected a digit") }
        if b[i] == 48 {
            i += 1
            if i < b.count, b[i] >= 48, b[i] <= 57 { throw error("a number has no leading zeros") }
        } else {
            _ = digits(&self)
        }
        var integral = true
        if i < b.count, b[i] == 46 {
            i += 1
            integral = false
            guard digits(&self) > 0 else { throw error("expected a digit after '.'") }
        }
        if i < b.count, b[i] == 101 || b[i] == 69 {
            i += 1
            integral = false
            if i < b.count, b[i] == 43 || b[i] == 45 { i += 1 }
            guard digits(&self) > 0 else { throw error("expected a digit in the exponent") }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        if integral, let v = Int64(text) { return .int(v) }
        guard let d = Double(text) else { throw error("unreadable number", at: start) }
        guard d.isFinite else { throw error("a number too large", at: start) }
        return .double(d)
    }

    /// A string at `i` (its opening quote), escapes resolved.
    mutating func string() throws(JSONError) -> String {
        i += 1
        var out: [UInt8] = []
        var runStart = i
        while true {
            guard i < b.count else { throw error("unexpected end of text in a string") }
            let c = b[i]
            if c == 34 {
                if out.isEmpty {
                    let s = try utf8(runStart, i)
                    i += 1
                    return s
                }
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[runStart..<i]))
                i += 1
                return try utf8Array(out, at: runStart)
            }
            if c < 0x20 { throw error("a control character in a string (escape it)") }
            if c != 92 { i += 1; continue }
            // An escape: keep the run before it.
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[runStart..<i]))
            i += 1
            guard i < b.count else { throw error("unexpected end of text in a string") }
            let e = b[i]
            i += 1
            switch e {
            case 34: out.append(34)
            case 92: out.append(92)
            case 47: out.append(47)
            case 98: out.append(8)
            case 102: out.append(12)
            case 110: out.append(10)
            case 114: out.append(13)
            case 116: out.append(9)
            case 117:
                var u = try hex4()
                if u >= 0xD800 && u < 0xDC00 {
                    guard i + 1 < b.count, b[i] == 92, b[i + 1] == 117 else { throw error("a lone surrogate in \\u escapes") }
                    i += 2
                    let lo = try hex4()
                    guard lo >= 0xDC00 && lo < 0xE000 else { throw error("a lone surrogate in \\u escapes") }
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)
                } else if u >= 0xDC00 && u < 0xE000 {
                    throw error("a lone surrogate in \\u escapes")
                }
                var scalar = Unicode.UTF8.encode(Unicode.Scalar(u)!)!.makeIterator()
                while let x = scalar.next() { out.append(x) }
            default: throw error("an unknown escape in a string", at: i - 2)
            }
            runStart = i
        }
    }

    mutating func hex4() throws(JSONError) -> UInt32 {
        guard i + 4 <= b.count else { throw error("unexpected end of text in a \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 65...70: d = UInt32(c - 55)
            case 97...102: d = UInt32(c - 87)
            default: throw error("expected four hex digits after \\u")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    func utf8(_ s: Int, _ e: Int) throws(JSONError) -> String {
        let r = UnsafeRawBufferPointer(rebasing: b[s..<e])
        guard let v = String(validating: r, as: UTF8.self) else { throw error("a string is not valid UTF-8", at: s) }
        return v
    }

    func utf8Array(_ a: [UInt8], at: Int) throws(JSONError) -> String {
        guard let v = String(validating: a, as: UTF8.self) else { throw error("a string is not valid UTF-8", at: at) }
        return v
    }
}

// MARK: writing

extension JSON {
    /// The text: keys sorted (the same value always gives the same bytes),
    /// "/" not escaped, other characters as RFC 8259 requires (quote,
    /// backslash and controls escaped; the rest as UTF-8). `pretty`: one member
    /// or element a line, indented two spaces, `"key" : value`. A number that
    /// is not finite (JSON has none) is written as null.
    public func serialized(pretty: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        write(into: &out, pretty: pretty, indent: 0)
        return out
    }

    /// `serialized` as a String.
    public func text(pretty: Bool = false) -> String { String(decoding: serialized(pretty: pretty), as: UTF8.self) }

    func write(into out: inout [UInt8], pretty: Bool, indent: Int) {
        func newline(_ n: Int) {
            out.append(10)
            for _ in 0..<n { out.append(32); out.append(32) }
        }
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let v): out.append(contentsOf: (v ? "true" : "false").utf8)
        case .int(let v): out.append(contentsOf: String(v).utf8)
        case .double(let d): JSON.writeDouble(d, into: &out)
        case .string(let s): JSON.writeString(s, into: &out)
        case .array(let a):
            if a.isEmpty { out.append(contentsOf: "[]".utf8); return }
            out.append(91)
            for (k, v) in a.enumerated() {
                if k > 0 { out.append(44) }
                if pretty { newline(indent + 1) }
                v.write(into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { newline(indent) }
            out.append(93)
        case .object(let o):
            if o.isEmpty { out.append(contentsOf: "{}".utf8); return }
            out.append(123)
            for (k, key) in o.keys.sorted(by: JSON.keyOrder).enumerated() {
                if k > 0 { out.append(44) }
                if pretty { newline(indent + 1) }
                JSON.writeString(key, into: &out)
                out.append(contentsOf: (pretty ? " : " : ":").utf8)
                o[key]!.write(into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { newline(indent) }
            out.append(125)
        }
    }

    /// Keys in the order of their UTF-8 bytes.
    static func keyOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    /// A whole double within 2^53 as an integer ("3", not "3.0"); any other
    /// finite one as Swift's shortest text that reads back to it.
    static func writeDouble(_ d: Double, into out: inout [UInt8]) {
        guard d.isFinite else { out.append(contentsOf: "null".utf8); return }
        if d.rounded(.towardZero) == d && abs(d) < 9_007_199_254_740_992 {
            out.append(contentsOf: String(Int64(d)).utf8)
        } else {
            out.append(contentsOf: d.description.utf8)
        }
    }

    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(34)
        for c in s.utf8 {
            switch c {
            case 34: out.append(92); out.append(34)
            case 92: out.append(92); out.append(92)
            case 10: out.append(92); out.append(110)
            case 13: out.append(92); out.append(114)
            case 9: out.append(92); out.append(116)
            case 8: out.append(92); out.append(98)
            case 12: out.append(92); out.append(102)
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(c >> 4)]); out.append(hex[Int(c & 15)])
            default: out.append(c)
            }
        }
        out.append(34)
    }
}
