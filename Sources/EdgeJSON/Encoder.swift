// Encodable values to JSON (the admin API's answers): the same shape
// Foundation's JSONEncoder gives (nil optionals left out, enums with raw
// values as their raw value), optionally with keys in snake_case.

extension JSON {
    /// `value` as JSON. `snakeCase` writes `cacheBytes` as `cache_bytes`.
    public static func encode<T: Encodable>(_ value: T, snakeCase: Bool = false) throws -> JSON {
        let root = JSONNode()
        try value.encode(to: JSONValueEncoder(root, path: [], snakeCase: snakeCase))
        return root.value
    }

    /// A Swift property name in snake_case, word by word: a word starts at an
    /// upper-case letter after a lower-case one or a digit, and at the last
    /// capital of a run followed by a lower-case letter ("myURLRate" is
    /// "my_url_rate"), and at a second letter that is a capital; leading and
    /// trailing underscores are kept. (Foundation's convertToSnakeCase, which
    /// the admin API's answers were written with.)
    public static func snakeCase(_ key: String) -> String {
        let s = Array(key.unicodeScalars)
        guard let first = s.firstIndex(where: { $0 != "_" }) else { return key }
        let last = s.lastIndex(where: { $0 != "_" })!
        func upper(_ c: Unicode.Scalar) -> Bool { c.properties.isUppercase }
        var out = String.UnicodeScalarView()
        for k in s.indices where k < first { out.append(s[k]) }
        for k in first...last {
            let c = s[k]
            if k > first && upper(c) {
                let prev = s[k - 1]
                let nextLower = k + 1 <= last && s[k + 1].properties.isLowercase
                // (JSONEncoder's reading, kept: a capital second letter always starts a word, "URL" is "u_rl".)
                if !upper(prev) || nextLower || k == first + 1 { out.append("_") }
            }
            out.append(contentsOf: String(c).lowercased().unicodeScalars)
        }
        for k in s.indices where k > last { out.append(s[k]) }
        return String(out)
    }
}

/// A value being built: the encoder's containers write into these.
final class JSONNode {
    enum Kind { case empty, value(JSON), object([String: JSONNode]), array([JSONNode]) }
    var kind: Kind = .empty

    var value: JSON {
        switch kind {
        case .empty: return .object([:])
        case .value(let v): return v
        case .object(let o): return .object(o.mapValues(\.value))
        case .array(let a): return .array(a.map(\.value))
        }
    }

    func child(_ key: String) -> JSONNode {
        let n = JSONNode()
        var o: [String: JSONNode] = [:]
        if case .object(let e) = kind { o = e }
        o[key] = n
        kind = .object(o)
        return n
    }

    func append() -> JSONNode {
        let n = JSONNode()
        var a: [JSONNode] = []
        if case .array(let e) = kind { a = e }
        a.append(n)
        kind = .array(a)
        return n
    }
}

struct JSONKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) { stringValue = String(intValue); self.intValue = intValue }
}

struct JSONValueEncoder: Encoder {
    let node: JSONNode
    let codingPath: [any CodingKey]
    let snakeCase: Bool
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(_ node: JSONNode, path: [any CodingKey], snakeCase: Bool) { self.node = node; codingPath = path; self.snakeCase = snakeCase }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object = node.kind {} else { node.kind = .object([:]) }
        return KeyedEncodingContainer(Keyed(encoder: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array = node.kind {} else { node.kind = .array([]) }
        return Unkeyed(encoder: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { Single(encoder: self) }

    /// Encodes `v` into `n`: scalars directly, anything else through its encode(to:).
    func encode<T: Encodable>(_ v: T, into n: JSONNode, at path: [any CodingKey]) throws {
        if let j = JSONValueEncoder.scalar(v) { n.kind = .value(j); return }
        try v.encode(to: JSONValueEncoder(n, path: path, snakeCase: snakeCase))
    }

    static func scalar<T: Encodable>(_ v: T) -> JSON? {
        switch v {
        case let s as String: return .string(s)
        case let b as Bool: return .bool(b)
        case let i as Int: return .int(Int64(i))
        case let i as Int64: return .int(i)
        case let i as Int32: return .int(Int64(i))
        case let i as UInt64: return i <= UInt64(Int64.max) ? .int(Int64(i)) : .double(Double(i))
        case let i as UInt32: return .int(Int64(i))
        case let i as UInt16: return .int(Int64(i))
        case let i as UInt8: return .int(Int64(i))
        case let i as UInt: return i <= UInt(Int64.max) ? .int(Int64(i)) : .double(Double(i))
        case let d as Double: return .double(d)
        case let f as Float: return .double(Double(f))
        case let j as JSON: return j
        default: return nil
        }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let encoder: JSONValueEncoder
        var codingPath: [any CodingKey] { encoder.codingPath }
        func name(_ key: Key) -> String { encoder.snakeCase ? JSON.snakeCase(key.stringValue) : key.stringValue }
        mutating func encodeNil(forKey key: Key) throws { encoder.node.child(name(key)).kind = .value(.null) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try encoder.encode(value, into: encoder.node.child(name(key)), at: codingPath + [key])
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            JSONValueEncoder(encoder.node.child(name(key)), path: codingPath + [key], snakeCase: encoder.snakeCase).container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            JSONValueEncoder(encoder.node.child(name(key)), path: codingPath + [key], snakeCase: encoder.snakeCase).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder {
            JSONValueEncoder(encoder.node.child("super"), path: codingPath, snakeCase: encoder.snakeCase)
        }
        mutating func superEncoder(forKey key: Key) -> any Encoder {
            JSONValueEncoder(encoder.node.child(name(key)), path: codingPath + [key], snakeCase: encoder.snakeCase)
        }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let encoder: JSONValueEncoder
        var codingPath: [any CodingKey] { encoder.codingPath }
        var count: Int { if case .array(let a) = encoder.node.kind { return a.count }; return 0 }
        var nextPath: [any CodingKey] { codingPath + [JSONKey(intValue: count)] }
        mutating func encodeNil() throws { encoder.node.append().kind = .value(.null) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            let path = nextPath
            try encoder.encode(value, into: encoder.node.append(), at: path)
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            let path = nextPath
            return JSONValueEncoder(encoder.node.append(), path: path, snakeCase: encoder.snakeCase).container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let path = nextPath
            return JSONValueEncoder(encoder.node.append(), path: path, snakeCase: encoder.snakeCase).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder {
            let path = nextPath
            return JSONValueEncoder(encoder.node.append(), path: path, snakeCase: encoder.snakeCase)
        }
    }

    struct Single: SingleValueEncodingContainer {
        let encoder: JSONValueEncoder
        var codingPath: [any CodingKey] { encoder.codingPath }
        mutating func encodeNil() throws { encoder.node.kind = .value(.null) }
        mutating func encode<T: Encodable>(_ value: T) throws { try encoder.encode(value, into: encoder.node, at: codingPath) }
    }
}

extension JSON: Encodable {
    public func encode(to encoder: any Encoder) throws {
        if let e = encoder as? JSONValueEncoder { e.node.kind = .value(self); return }
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}
