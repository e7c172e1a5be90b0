// EdgeJSON (Sources/EdgeJSON) checked against Foundation, which edged used
// before and which the tests may still use as the reference: the parser
// accepts and refuses what JSONSerialization does and reads the same values,
// the writer's text reads back the same, and the encoder writes what
// JSONEncoder writes (keys sorted, snake_case, pretty printing).
import Testing
import Foundation
@testable import EdgeJSON
import EdgeHTTP   // (SplitMix64)

@Suite struct JSONTests {
    /// Foundation's reading of `bytes` as our value (nil: refused).
    static func reference(_ bytes: [UInt8]) -> JSON? {
        guard let o = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else { return nil }
        return convert(o)
    }

    static func convert(_ o: Any) -> JSON {
        switch o {
        case is NSNull: return .null
        case let n as NSNumber:
            if type(of: n) == type(of: NSNumber(value: true)) { return .bool(n.boolValue) }
            let t = String(cString: n.objCType)
            if t == "d" || t == "f" { return .double(n.doubleValue) }
            return .int(n.int64Value)
        case let s as String: return .string(s)
        case let a as [Any]: return .array(a.map(convert))
        case let d as [String: Any]: return .object(d.mapValues(convert))
        default: return .string("?\(o)")
        }
    }

    /// Numbers compared by value (Foundation keeps 1.0 as a double, so do we; 1e2 is a double in both).
    /// `close`: doubles within a relative 1e-14 (Foundation's reading of a long
    /// decimal is not always the nearest double; ours is, and reads back exactly).
    static func same(_ a: JSON, _ b: JSON, close: Bool = false) -> Bool {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x == y
        case (.double(let x), .double(let y)): return x == y || (close && abs(x - y) <= abs(x) * 1e-14)
        case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1, close: close) }
        case (.object(let x), .object(let y)): return x.count == y.count && x.allSatisfy { k, v in y[k].map { same(v, $0, close: close) } ?? false }
        default: return a == b
        }
    }

    static let samples: [String] = [
        "{}", "[]", "0", "-0", "1", "-1", "12345678901234567", "9223372036854775807", "-9223372036854775808",
        "1.5", "-1.5e3", "1E+2", "1e-7", "0.1", "3.0", "true", "false", "null",
        "\"\"", "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", "\"\\u00e9\\u20AC\\ud83d\\ude00\"", "\"héllo €\"",
        "{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\"}", " \t\r\n{ \"k\" : [ ] } \n", "[[[[[]]]]]",
        "{\"a\": 1, \"a\": 2}", "[1,]", "{\"a\":1,}", "[[1,],]",
        // refused
        "", " ", "{", "}", "[,]", "{,}", "[1,,]", "[1 2]", "{\"a\" 1}", "{a: 1}", "'a'", "01", "-", "1.", ".5", "1e", "1e+",
        "+1", "tru", "nulll", "[1] 2", "\"\\x\"", "\"\\u12\"", "\"\\ud83d\"", "\"\\ude00\"", "\"a\nb\"", "\"\u{1}\"",
        "NaN", "Infinity", "1e400", "[-1e400]", "[1,,2]", "{\"a\":}", "//c\n1", "\"unterminated",
    ]

    @Test func acceptsAndReadsWhatFoundationDoes() {
        for s in JSONTests.samples {
            let bytes = Array(s.utf8)
            let ours = try? JSON.parse(bytes)
            let theirs = JSONTests.reference(bytes)
            #expect((ours == nil) == (theirs == nil), "\(s): ours \(String(describing: ours)), Foundation \(String(describing: theirs))")
            if let ours, let theirs { #expect(JSONTests.same(ours, theirs), "\(s)") }
        }
    }

    /// (Foundation wraps it around to Int64.min.)
    @Test func anIntegerPastSixtyFourBitsIsADouble() throws {
        #expect(try JSON.parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(try JSON.parse("-9223372036854775809") == .double(-9_223_372_036_854_775_809))
    }

    /// Infinity has no JSON text to be written back as: refused, not read.
    @Test func aNumberPastTheLargestDoubleIsRefused() throws {
        for t in ["1e400", "-1e400", "[1, 2e308]", String(repeating: "9", count: 400)] {
            #expect(throws: JSONError.self, "\(t)") { try JSON.parse(t) }
        }
        #expect(try JSON.parse("1e-400") == .double(0))
    }

    @Test func aLeadingByteOrderMarkIsSkippedAsFoundationSkipsIt() throws {
        let text: [UInt8] = [0xEF, 0xBB, 0xBF] + Array(" {\"a\": [1]}".utf8)
        #expect(try JSON.parse(text) == ["a": [1]])
        #expect(JSONTests.reference(text).map { JSONTests.same($0, ["a": [1]]) } == true)
        // Only at the start.
        #expect(throws: JSONError.self) { try JSON.parse([0x5B] + [0xEF, 0xBB, 0xBF] + [0x5D]) }
    }

    @Test func refusesInvalidUTF8InStrings() {
        for bad: [UInt8] in [[0x22, 0xff, 0x22], [0x22, 0xc3, 0x22], [0x22, 0xed, 0xa0, 0x80, 0x22], [0x22, 0xc0, 0xaf, 0x22]] {
            #expect(throws: JSONError.self) { try JSON.parse(bad) }
            #expect(JSONTests.reference(bad) == nil)
        }
    }

    @Test func errorsSayWhereWithLineAndColumn() {
        do {
            _ = try JSON.parse("{\n  \"a\": 1,\n  \"b\" 2\n}")
            Issue.record("accepted")
        } catch {
            #expect(error.line == 3 && error.column == 7, "\(error)")
            #expect(error.description == "line 3, column 7: expected ':' after a key")
        }
    }

    @Test func nestingDeeperThanTheLimitIsRefusedNotRecursedInto() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONError.self) { try JSON.parse(deep) }
        let ok = String(repeating: "[", count: JSON.defaultMaxDepth) + String(repeating: "]", count: JSON.defaultMaxDepth)
        #expect((try? JSON.parse(ok)) != nil)
        let over = "[" + ok + "]"
        #expect(throws: JSONError.self) { try JSON.parse(over) }
    }

    /// Random values: written, read back by us and by Foundation, the same.
    @Test func writtenTextReadsBackTheSame() throws {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let v = JSONTests.random(&rng, depth: 0)
            for pretty in [false, true] {
                let text = v.serialized(pretty: pretty)
                let back = try JSON.parse(text)
                #expect(JSONTests.same(back, v), "\(String(decoding: text, as: UTF8.self))")
                let f = try #require(JSONTests.reference(text), "\(String(decoding: text, as: UTF8.self))")
                #expect(JSONTests.same(f, v, close: true))
            }
        }
    }

    @Test func writesLikeFoundationSortedAndUnescapedSlashes() throws {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<500 {
            // (Keys of lower-case letters and "/": Foundation sorts keys ignoring case and
            // controls, we by their bytes; for these the orders agree.)
            let v = JSON.object(["a": JSONTests.random(&rng, depth: 1, lower: true), "/b": JSONTests.random(&rng, depth: 1, lower: true),
                                 "z": .string("x/y\u{7}é")])
            let any = try JSONSerialization.jsonObject(with: Data(v.serialized()))
            for (pretty, options) in [(false, JSONSerialization.WritingOptions([.sortedKeys, .withoutEscapingSlashes])),
                                      (true, [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted])] {
                // (Foundation writes an empty array or object over lines, "[\n\n  ]": we write "[]".)
                let theirs = String(decoding: try JSONSerialization.data(withJSONObject: any, options: options), as: UTF8.self)
                    .replacingOccurrences(of: #"\[\s*\]"#, with: "[]", options: .regularExpression)
                    .replacingOccurrences(of: #"\{\s*\}"#, with: "{}", options: .regularExpression)
                let ours = v.text(pretty: pretty)
                // Foundation may write a double 2.0 as "2.0" where we write "2", or a long fraction differently: compare only without doubles.
                if !JSONTests.hasDouble(v) { #expect(ours == theirs) }
            }
        }
    }

    struct Inner: Encodable { var cacheBytes: Int64; var hitRatio: Double; var myURLRate: Int; var name: String?; var p99Millis: Int }
    enum Kind: String, Encodable { case memory, disk }
    struct Outer: Encodable {
        var tenants: [Inner]
        var kind: Kind
        var byName: [String: Int]
        var flags: [Bool]
        var optionalMissing: Int?
        var nested: [[String]]
        var _leading: Int
        var value: JSON
    }

    @Test func encodesLikeJSONEncoder() throws {
        let v = Outer(tenants: [Inner(cacheBytes: 1 << 40, hitRatio: 0.25, myURLRate: 3, name: "a/b", p99Millis: 7),
                                Inner(cacheBytes: 0, hitRatio: 1, myURLRate: 0, name: nil, p99Millis: 0)],
                      kind: .disk, byName: ["x": 1, "y": 2], flags: [true, false], optionalMissing: nil,
                      nested: [["a"], []], _leading: 1, value: ["k": [1, "two", nil, 2.5]])
        for snake in [false, true] {
            for pretty in [false, true] {
                let e = JSONEncoder()
                if snake { e.keyEncodingStrategy = .convertToSnakeCase }
                e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
                let theirs = try JSON.parse(Array(try e.encode(v)))
                let ours = try JSON.encode(v, snakeCase: snake)
                #expect(JSONTests.same(ours, theirs), "snake \(snake): \(ours.text()) against \(theirs.text())")
            }
        }
        let text = try JSON.encode(v, snakeCase: true).text()
        #expect(text.contains("\"my_url_rate\":3") && text.contains("\"p99_millis\":7") && text.contains("\"cache_bytes\":1099511627776"))
        #expect(!text.contains("optional"))
    }

    @Test func snakeCaseSplitsWordsLikeJSONEncoder() throws {
        for key in ["a", "cacheBytes", "myURLRate", "URL", "aB", "ABc", "x2URLs", "p99Millis", "_leading", "trailing_", "__x__Y__",
                    "already_snake", "HTTPStatus", "http2Streams", "a_B", "eTag", "IDs",
                    "aBCdEF", "aBcDEfG", "ABC", "AbCD", "x_URLValue"] {
            struct One: Encodable {
                let key: String
                func encode(to e: Encoder) throws {
                    var c = e.container(keyedBy: JSONKey.self)
                    try c.encode(1, forKey: JSONKey(stringValue: key))
                }
            }
            let e = JSONEncoder()
            e.keyEncodingStrategy = .convertToSnakeCase
            let theirs = try JSON.parse(Array(try e.encode(One(key: key))))
            #expect(theirs.object?.keys.first == JSON.snakeCase(key), "\(key)")
        }
    }

    static func hasDouble(_ v: JSON) -> Bool {
        switch v {
        case .double: return true
        case .array(let a): return a.contains(where: hasDouble)
        case .object(let o): return o.values.contains(where: hasDouble)
        default: return false
        }
    }

    static func random(_ rng: inout SplitMix64, depth: Int, lower: Bool = false) -> JSON {
        switch rng.next() % (depth > 3 ? 5 : 7) {
        case 0: return .null
        case 1: return .bool(rng.next() & 1 == 0)
        case 2: return .int(Int64(bitPattern: rng.next()) >> Int64(rng.next() % 64))
        case 3:
            let d = Double(bitPattern: rng.next())
            return .double(d.isFinite ? d : 0.5)
        case 4: return .string(randomString(&rng))
        case 5: return .array((0..<Int(rng.next() % 4)).map { _ in random(&rng, depth: depth + 1, lower: lower) })
        default:
            var o: [String: JSON] = [:]
            for _ in 0..<Int(rng.next() % 4) { o[lower ? randomKey(&rng) : randomString(&rng)] = random(&rng, depth: depth + 1, lower: lower) }
            return .object(o)
        }
    }

    static func randomKey(_ rng: inout SplitMix64) -> String {
        String((0..<Int(rng.next() % 4)).map { _ in Array("abc/")[Int(rng.next() % 4)] })
    }

    static func randomString(_ rng: inout SplitMix64) -> String {
        let pool: [Unicode.Scalar] = ["a", "Z", "/", "\"", "\\", "\n", "\t", "\u{1}", "\u{1f}", " ", "é", "€", "😀", "\u{7f}", "0", "\u{2028}"]
        return String(String.UnicodeScalarView((0..<Int(rng.next() % 6)).map { _ in pool[Int(rng.next() % UInt64(pool.count))] }))
    }
}
