// The byte comparisons every parser leans on (Sources/EdgeHTTP/Bytes.swift),
// checked against the plain byte-by-byte rule they must agree with.
import Testing
@testable import EdgeHTTP

@Suite struct BytesTests {
    /// The rule: byte by byte through asciiLower.
    static func reference(_ p: [UInt8], _ start: Int, _ end: Int, _ lit: [UInt8]) -> Bool {
        guard end - start == lit.count else { return false }
        for i in 0..<lit.count where asciiLower(p[start + i]) != lit[i] { return false }
        return true
    }

    /// (HPACK's encoder compares and hashes names with it too.)
    @Test func wordLowercasingAgreesWithTheByteRuleForEveryByteInEveryLane() {
        var rng = SystemRandomNumberGenerator()
        for lane in 0..<8 {
            for b in 0..<256 {
                // Around the byte: random neighbours, so carries between lanes would show.
                var bytes = (0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) }
                bytes[lane] = UInt8(b)
                let w = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                let lowered = asciiLower(word: w)
                let expected = bytes.map(asciiLower).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                #expect(lowered == expected, "byte \(b) in lane \(lane) of \(bytes)")
            }
        }
    }

    @Test func equalsLowercaseAgreesWithTheByteRuleAtEveryLengthAndPosition() {
        // Literals of 2 to 25 bytes: below, at and past the eight-byte steps.
        let literals: [(StaticString, [UInt8])] = [
            ("te", Array("te".utf8)), ("via", Array("via".utf8)), ("host", Array("host".utf8)), ("range", Array("range".utf8)),
            ("expect", Array("expect".utf8)), ("upgrade", Array("upgrade".utf8)), ("if-range", Array("if-range".utf8)),
            ("forwarded", Array("forwarded".utf8)), ("connection", Array("connection".utf8)), ("x-request-id", Array("x-request-id".utf8)),
            ("cache-control", Array("cache-control".utf8)), ("content-length", Array("content-length".utf8)),
            ("accept-encoding", Array("accept-encoding".utf8)), ("x-forwarded-host", Array("x-forwarded-host".utf8)),
            ("transfer-encoding", Array("transfer-encoding".utf8)), ("strict-transport-security", Array("strict-transport-security".utf8)),
        ]
        var rng = SystemRandomNumberGenerator()
        var checked = 0
        for (lit, bytes) in literals {
            for offset in [0, 1, 7] {
                // The name at `offset` in a buffer with bytes after it (a compare must not read them as its own).
                var buf = (0..<(offset + bytes.count + 9)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                // Every case mix matches.
                for _ in 0..<8 {
                    for (i, b) in bytes.enumerated() {
                        buf[offset + i] = (b >= 97 && b <= 122 && Bool.random(using: &rng)) ? b - 32 : b
                    }
                    let got = buf.withUnsafeBytes { equalsLowercase($0, offset, offset + bytes.count, lit) }
                    #expect(got, "\(buf[offset..<(offset + bytes.count)]) is \(lit)")
                }
                // Any one byte changed to any value: the same answer as the rule.
                for i in 0..<bytes.count {
                    let keep = buf[offset + i]
                    for v in 0..<256 {
                        buf[offset + i] = UInt8(v)
                        let got = buf.withUnsafeBytes { equalsLowercase($0, offset, offset + bytes.count, lit) }
                        let want = BytesTests.reference(buf, offset, offset + bytes.count, bytes)
                        if got != want { Issue.record("\(lit): byte \(i) = \(v): \(got), the rule says \(want)") }
                        checked += 1
                    }
                    buf[offset + i] = keep
                }
                // Another length never matches.
                #expect(!buf.withUnsafeBytes { equalsLowercase($0, offset, offset + bytes.count + 1, lit) })
                #expect(!buf.withUnsafeBytes { equalsLowercase($0, offset, offset + bytes.count - 1, lit) })
            }
        }
        #expect(checked > 100_000)
    }

    @Test func fieldNameEndStopsAtTheFirstNonTcharAtEveryLengthAndPosition() {
        func isTchar(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || Array("!#$%&'*+-.^_`|~".utf8).contains(c)
        }
        func reference(_ b: [UInt8], _ s: Int, _ e: Int) -> (Int, Bool) {
            var plain = true
            for i in s..<e {
                if !isTchar(b[i]) { return (i, plain) }
                if !(b[i] == 0x2D || (b[i] >= 0x30 && b[i] <= 0x39) || (b[i] >= 0x41 && b[i] <= 0x5A) || (b[i] >= 0x61 && b[i] <= 0x7A)) { plain = false }
            }
            return (e, plain)
        }
        var rng = SystemRandomNumberGenerator()
        let usual = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-".utf8)
        var checked = 0
        for length in 0..<40 {
            for start in [0, 3] {
                var buf = (0..<(start + length + 20)).map { _ in usual.randomElement(using: &rng)! }
                for at in start..<(start + length) {
                    for v in UInt8(0)...UInt8(255) {
                        let keep = buf[at]
                        buf[at] = v
                        var plain = true
                        let got = buf.withUnsafeBytes { b in byteClasses.withUnsafeBufferPointer { fieldNameEnd(b, start, start + length, classes: $0, plain: &plain) } }
                        let want = reference(buf, start, start + length)
                        if got != want.0 || plain != want.1 { Issue.record("length \(length) start \(start) byte \(v) at \(at - start): \(got) \(plain), want \(want)") }
                        buf[at] = keep
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 100_000)
    }

    @Test func firstControlFindsTheFirstControlByteAtEveryLengthAndPosition() {
        func reference(_ b: [UInt8], _ s: Int, _ e: Int, del: Bool) -> Int {
            for i in s..<e where b[i] < 0x20 || (del && b[i] == 0x7F) { return i }
            return e
        }
        var rng = SystemRandomNumberGenerator()
        // Every byte value a control could be confused with: all below 0x20, 0x7F, and their neighbours.
        let specials: [UInt8] = Array(0..<0x21) + [0x7E, 0x7F, 0x80, 0x9F, 0xA0, 0xFF]
        var checked = 0
        for length in 0..<50 {
            for start in [0, 1, 5] {
                // Printable or high bytes (never a control) around and in the range; controls after it must not count.
                var buf = (0..<(start + length + 20)).map { _ in UInt8.random(in: 0x21...0x7E, using: &rng) | (Bool.random(using: &rng) ? 0x80 : 0) }
                for i in (start + length)..<buf.count { buf[i] = 0 }
                for del in [false, true] {
                    #expect(buf.withUnsafeBytes { firstControl($0, start, start + length, del: del) } == start + length)
                    for at in start..<(start + length) {
                        for v in specials {
                            let keep = buf[at]
                            buf[at] = v
                            // and, sometimes, a second one later in the range
                            let second = at + 1 < start + length && Bool.random(using: &rng) ? Int.random(in: (at + 1)..<(start + length), using: &rng) : nil
                            let keep2 = second.map { buf[$0] }
                            if let second { buf[second] = 0x0D }
                            let got = buf.withUnsafeBytes { firstControl($0, start, start + length, del: del) }
                            let want = reference(buf, start, start + length, del: del)
                            if got != want { Issue.record("length \(length) start \(start) byte \(v) at \(at - start) del \(del): \(got), want \(want)") }
                            if let second, let keep2 { buf[second] = keep2 }
                            buf[at] = keep
                            checked += 1
                        }
                    }
                }
            }
        }
        #expect(checked > 100_000)
    }
}

/// KnownField.classify against a table of every name it knows: each in random
/// letter case is that field, and each with one byte changed, one added or one
/// dropped is another (or none).
@Suite struct KnownFieldTests {
    static let names: [(String, KnownField)] = [
        ("host", .host), ("content-length", .contentLength), ("transfer-encoding", .transferEncoding), ("connection", .connection),
        ("keep-alive", .keepAlive), ("te", .te), ("trailer", .trailer), ("upgrade", .upgrade), ("expect", .expect),
        ("x-forwarded-for", .xForwardedFor), ("x-forwarded-proto", .xForwardedProto), ("x-forwarded-host", .xForwardedHost),
        ("forwarded", .forwarded), ("via", .via), ("date", .date), ("http2-settings", .http2Settings), ("if-none-match", .ifNoneMatch),
        ("if-modified-since", .ifModifiedSince), ("range", .range), ("if-range", .ifRange), ("cache-control", .cacheControl),
        ("pragma", .pragma), ("authorization", .authorization), ("accept-encoding", .acceptEncoding), ("cdn-loop", .cdnLoop),
        ("user-agent", .userAgent), ("referer", .referer), ("x-request-id", .xRequestID),
        ("proxy-connection", .proxyAny), ("proxy-authorization", .proxyAny), ("proxy-authenticate", .proxyAny), ("proxy-", .proxyAny),
    ]

    func reference(_ b: [UInt8]) -> KnownField {
        let lower = String(decoding: b.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }, as: UTF8.self)
        if lower.hasPrefix("proxy-") { return .proxyAny }
        return Self.names.first { $0.0 == lower }?.1 ?? .other
    }

    @Test func everyKnownNameInAnyCaseAndEveryNearMiss() {
        var rng = SplitMix64(seed: 3)
        let bytes: [UInt8] = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#".utf8) + [0x40, 0x5B, 0x5E, 0x60, 0x7E]
        var checked = 0
        for (name, known) in Self.names {
            for _ in 0..<8 {
                let b = Array(name.utf8).map { rng.next() & 1 == 0 && $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }
                #expect(b.withUnsafeBytes { KnownField.classify($0, 0, b.count) } == known, "\(name)")
                var near: [[UInt8]] = []
                let at = Int(rng.next() % UInt64(b.count))
                var changed = b; changed[at] = bytes[Int(rng.next() % UInt64(bytes.count))]; near.append(changed)
                var added = b; added.insert(bytes[Int(rng.next() % UInt64(bytes.count))], at: Int(rng.next() % UInt64(b.count + 1))); near.append(added)
                var dropped = b; dropped.remove(at: at); near.append(dropped)
                for n in near where !n.isEmpty {
                    // (Placed inside a larger buffer: classify reads only its range.)
                    let padded = [0x41, 0x42] + n + [0x43]
                    #expect(padded.withUnsafeBytes { KnownField.classify($0, 2, 2 + n.count) } == reference(n), "\(String(decoding: n, as: UTF8.self))")
                    checked += 1
                }
            }
        }
        #expect(checked > 700)
    }
}
