import Testing
@testable import EdgeHTTP2

func hex(_ s: String) -> [UInt8] {
    let digits = Array(s.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

func decodeBlock(_ d: inout HPACKDecoder, _ bytes: [UInt8], maxList: Int = 1 << 20) throws -> [(String, String)] {
    var out: [(String, String)] = []
    _ = try bytes.withUnsafeBytes { p throws(HPACKError) in
        try d.decode(p, maxListSize: maxList) { out.append((String(decoding: $0.name, as: UTF8.self), String(decoding: $0.value, as: UTF8.self))) }
    }
    return out
}

func same(_ a: [(String, String)], _ b: [(String, String)]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { $0 == $1 } }

/// RFC 7541 Appendix C: every example, with the dynamic table size after each block.
@Suite(.timeLimit(.minutes(3))) struct HPACKVectorTests {
    @Test func integers() throws {   // C.1
        var out: [UInt8] = []
        HPACK.appendInteger(10, prefix: 5, flags: 0, into: &out); #expect(out == [0x0a])
        out = []; HPACK.appendInteger(1337, prefix: 5, flags: 0, into: &out); #expect(out == [0x1f, 0x9a, 0x0a])
        out = []; HPACK.appendInteger(42, prefix: 8, flags: 0, into: &out); #expect(out == [0x2a])
        for (bytes, prefix, value) in [([UInt8](arrayLiteral: 0x0a), 5, 10), ([0x1f, 0x9a, 0x0a], 5, 1337), ([0x2a], 8, 42)] {
            var i = 0
            #expect(try bytes.withUnsafeBytes { p throws(HPACKError) in try HPACK.integer(p, &i, prefix: prefix) } == value)
            #expect(i == bytes.count)
        }
    }

    @Test func fieldRepresentations() throws {   // C.2
        var d = HPACKDecoder()
        #expect(same(try decodeBlock(&d, hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")), [("custom-key", "custom-header")]))
        #expect(d.dynamicTableSize == 55)
        d = HPACKDecoder()
        #expect(same(try decodeBlock(&d, hex("040c 2f73 616d 706c 652f 7061 7468")), [(":path", "/sample/path")]))
        #expect(d.dynamicTableSize == 0)
        #expect(same(try decodeBlock(&d, hex("1008 7061 7373 776f 7264 0673 6563 7265 74")), [("password", "secret")]))
        #expect(d.dynamicTableSize == 0)
        #expect(same(try decodeBlock(&d, hex("82")), [(":method", "GET")]))
    }

    static let first: [(String, String)] = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")]
    static let second = first + [("cache-control", "no-cache")]
    static let third: [(String, String)] = [(":method", "GET"), (":scheme", "https"), (":path", "/index.html"), (":authority", "www.example.com"),
                                            ("custom-key", "custom-value")]

    @Test(arguments: [
        ["8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", "8286 84be 5808 6e6f 2d63 6163 6865",
         "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"],                       // C.3
        ["8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", "8286 84be 5886 a8eb 1064 9cbf",
         "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"],                                      // C.4 (Huffman)
    ])
    func requests(_ blocks: [String]) throws {
        var d = HPACKDecoder()
        for (i, (block, (want, size))) in zip(blocks, [(Self.first, 57), (Self.second, 110), (Self.third, 164)]).enumerated() {
            #expect(same(try decodeBlock(&d, hex(block)), want), "block \(i + 1)")
            #expect(d.dynamicTableSize == size, "block \(i + 1)")
        }
    }

    static let r1: [(String, String)] = [(":status", "302"), ("cache-control", "private"), ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                                         ("location", "https://www.example.com")]
    static let r2: [(String, String)] = [(":status", "307"), ("cache-control", "private"), ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                                         ("location", "https://www.example.com")]
    static let r3: [(String, String)] = [(":status", "200"), ("cache-control", "private"), ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                                         ("location", "https://www.example.com"), ("content-encoding", "gzip"),
                                         ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")]

    /// C.5 and C.6: responses with a 256-byte table, so entries are evicted.
    @Test(arguments: [
        ["4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
         "4803 3330 37c1 c0bf",
         "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31"],
        ["4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
         "4883 640e ffc1 c0bf",
         "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07"],
    ])
    func responses(_ blocks: [String]) throws {
        var d = HPACKDecoder(maxTableSize: 256)
        for (i, (block, (want, size))) in zip(blocks, [(Self.r1, 222), (Self.r2, 222), (Self.r3, 215)]).enumerated() {
            #expect(same(try decodeBlock(&d, hex(block)), want), "block \(i + 1)")
            #expect(d.dynamicTableSize == size, "block \(i + 1)")
        }
    }

    /// Huffman strings of C.4 and C.6 encode back to the RFC's bytes.
    @Test func huffmanEncodesToTheVectors() {
        for (text, code) in [("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"), ("no-cache", "a8eb 1064 9cbf"), ("custom-key", "25a8 49e9 5ba9 7d7f"),
                             ("custom-value", "25a8 49e9 5bb8 e8b4 bf"), ("302", "6402"), ("private", "aec3 771a 4b"),
                             ("Mon, 21 Oct 2013 20:13:21 GMT", "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"),
                             ("https://www.example.com", "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3")] {
            var out: [UInt8] = []
            Huffman.encode(Array(text.utf8), into: &out)
            #expect(out == hex(code), "\(text)")
            #expect((try? out.withUnsafeBytes { p throws(HPACKError) in try Huffman.decode(p) }) == Array(text.utf8))
        }
    }
}

@Suite(.timeLimit(.minutes(3))) struct HPACKLimitTests {
    func fails(_ bytes: [UInt8], table: Int = 4096) -> Bool {
        var d = HPACKDecoder(maxTableSize: table)
        return (try? decodeBlock(&d, bytes)) == nil
    }

    @Test func malformedBlocksAreCompressionErrors() {
        #expect(fails([0x80]))                                  // index 0
        #expect(fails([0xff, 0x00]))                            // index 127: beyond both tables
        #expect(fails([0xbe]))                                  // an empty dynamic table's first entry
        #expect(fails([0x41]))                                  // truncated string
        #expect(fails([0x40, 0x85, 0xff]))                      // Huffman string longer than the block
        #expect(fails([0x40, 0x81, 0x00, 0x00]))                // Huffman: padding that is not all ones
        #expect(fails([0x40, 0x82, 0xff, 0xff, 0x00]))          // Huffman: padding longer than 7 bits
        #expect(fails([0x40, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00]))   // Huffman: EOS in the string
        #expect(fails([0x3f, 0xe2, 0x1f]))                      // table size update to 4097, above the advertised 4096
        #expect(!fails([0x3f, 0xe1, 0x1f]))                     // to 4096: fine
        #expect(fails([0x82, 0x20]))                            // table size update after a field
        #expect(fails([0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f]))    // integer overflow
        #expect(fails([0x1f, 0x85] + [UInt8](repeating: 0x80, count: 8) + [0xff, 0xff, 0xff, 0xfe, 0x01]))   // zero-padded continuation bytes (fuzz-h2 found it)
        #expect(!fails([0x20, 0x82]))                           // size update to 0 first: fine
    }

    /// An HPACK bomb: one big entry referenced many times decodes to a huge list;
    /// past the list limit nothing is kept, and the table stays in step.
    @Test func theDecodedListIsBounded() throws {
        var block: [UInt8] = [0x40]
        HPACK.appendString(Array("x-big".utf8), into: &block)
        HPACK.appendString([UInt8](repeating: 97, count: 4000), into: &block)
        block += [UInt8](repeating: 0xbe, count: 1000)   // 1000 references: ~4 MB decoded
        var d = HPACKDecoder()
        var kept = 0
        let fits = try block.withUnsafeBytes { p throws(HPACKError) in try d.decode(p, maxListSize: 64 * 1024) { _ in kept += 1 } }
        #expect(!fits)
        #expect(kept == 16)                               // 16 × 4,037 bytes fit in 64 KiB
        #expect(d.dynamicTableCount == 1)
        #expect(same(try decodeBlock(&d, [0xbe]).map { ($0.0, String($0.1.prefix(1))) }, [("x-big", "a")]))
    }

    @Test func entriesAreEvictedOldestFirstAndTooLargeOnesEmptyTheTable() throws {
        var d = HPACKDecoder(maxTableSize: 100)
        var b: [UInt8] = []
        for name in ["a", "b"] { b.append(0x40); HPACK.appendString(Array(name.utf8), into: &b); HPACK.appendString(Array(repeating: 120, count: 20), into: &b) }
        _ = try decodeBlock(&d, b)           // two entries of 53: the first is evicted
        #expect(d.dynamicTableCount == 1)
        #expect(try decodeBlock(&d, [0xbe]).first?.0 == "b")
        var big: [UInt8] = [0x40]
        HPACK.appendString(Array("c".utf8), into: &big); HPACK.appendString(Array(repeating: 120, count: 200), into: &big)
        _ = try decodeBlock(&d, big)
        #expect(d.dynamicTableCount == 0 && d.dynamicTableSize == 0)
    }

    /// Encoder output decodes to the same fields, with whole static entries as one byte.
    @Test func encoderRoundTrips() throws {
        let fields: [(String, String)] = [(":status", "200"), ("content-type", "text/html"), ("cache-status", "edge; hit; ttl=59"),
                                          ("set-cookie", "a=b"), ("x-binary", "\u{7f}~"), ("content-length", "1234")]
        var block: [UInt8] = []
        var e = HPACKEncoder()
        for (n, v) in fields { e.encode(HeaderField(n, v), into: &block) }
        #expect(block.first == 0x88)
        var d = HPACKDecoder()
        #expect(same(try decodeBlock(&d, block), fields))
        // The encoder indexed what repeats (not set-cookie): the decoder's table mirrors it,
        // and the same head again is a few bytes.
        #expect(d.dynamicTableCount == 4)
        var again: [UInt8] = []
        for (n, v) in fields { e.encode(HeaderField(n, v), into: &again) }
        #expect(again.count < 20, "\(again.count) bytes")
        #expect(same(try decodeBlock(&d, again), fields))
        // Mixed-case names are sent lowercase.
        var mixed: [UInt8] = []
        Array("X-Custom".utf8).withUnsafeBytes { n in Array("v".utf8).withUnsafeBytes { v in e.encode(name: n, value: v, into: &mixed) } }
        #expect(same(try decodeBlock(&d, mixed), [("x-custom", "v")]))
        // A smaller table from the peer: a size update starts the next block.
        e.setMaxTableSize(0)
        var shrunk: [UInt8] = []
        e.beginBlock(into: &shrunk)
        e.encode(HeaderField("cache-status", "edge; hit"), into: &shrunk)
        #expect(shrunk.first == 0x20)
        #expect(same(try decodeBlock(&d, shrunk), [("cache-status", "edge; hit")]))
        #expect(d.dynamicTableCount == 0)
    }

    /// The encoder's table stays in step with the decoder's through evictions,
    /// hash bucket collisions and table size changes: 3,000 blocks of fields drawn
    /// from a vocabulary larger than the table decode to what was encoded, the
    /// two tables always holding as many entries.
    @Test func encoderStaysInStepThroughEvictions() throws {
        var state: UInt64 = 7
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        let names = (0..<40).map { "x-field-\($0)" } + ["content-type", "ETag", "date", "age", "via", "cache-status"]
        var e = HPACKEncoder()
        var d = HPACKDecoder()
        for round in 0..<3000 {
            if round % 700 == 699 {
                // The peer shrinks or restores the table: the next block says so first.
                let n = [0, 256, 4096][Int(next() % 3)]
                e.setMaxTableSize(n)
            }
            var block: [UInt8] = []
            e.beginBlock(into: &block)
            var fields: [(String, String)] = []
            for _ in 0..<(1 + Int(next() % 8)) {
                let name = names[Int(next() % UInt64(names.count))]
                let value = String(repeating: "v", count: Int(next() % 40)) + String(next() % 6)
                fields.append((name, value))
                e.encode(HeaderField(name, value), into: &block)
            }
            let got = try decodeBlock(&d, block)
            #expect(same(got, fields.map { ($0.0.lowercased(), $0.1) }), "round \(round)")
            #expect(d.dynamicTableCount == e.dynamicTableCount, "round \(round)")
        }
    }

    /// Past 65,536 insertions the buckets' 16-bit entry numbers wrap: a field sent
    /// again is still found (as its index) and every block still decodes to what
    /// was encoded.
    @Test func entryNumbersWrapSafely() throws {
        var e = HPACKEncoder()
        var d = HPACKDecoder()
        for i in 0..<70_000 {
            var block: [UInt8] = []
            let f = HeaderField("x-n\(i % 7)", "v\(i)")
            e.encode(f, into: &block)
            let before = block.count
            e.encode(f, into: &block)   // again: now one byte, its index (the newest entry: 62)
            if block.count != before + 1 || block[before] != 0x80 | 62 { Issue.record("round \(i): a repeat was not indexed"); return }
            e.encode(HeaderField("x-n\(i % 7)", "v\(max(0, i - 3))"), into: &block)
            let got = try decodeBlock(&d, block)
            if !same(got, [("x-n\(i % 7)", "v\(i)"), ("x-n\(i % 7)", "v\(i)"), ("x-n\(i % 7)", "v\(max(0, i - 3))")]) {
                Issue.record("round \(i): \(got)"); return
            }
        }
    }

    /// A field in the same place as in the previous block is checked against what
    /// was sent there, byte for byte: repeats go out as one-byte indexes, changed
    /// fields and entries evicted since (a small table) are encoded afresh, and
    /// every block decodes to its fields.
    @Test func fieldsRepeatedInTheirPlacesAreIndexes() throws {
        var e = HPACKEncoder()
        var d = HPACKDecoder()
        e.setMaxTableSize(200)
        var previous: [(String, String)] = []
        for round in 0..<300 {
            let fields = [(":status", round % 7 == 0 ? "404" : "200"), ("server", "edge"), ("x-a", "value \(round % 3)"),
                          ("date", "d\(round / 10)"), ("x-b", round % 5 == 0 ? "Some Longer Value \(round)" : "short")]
            var block: [UInt8] = []
            e.beginBlock(into: &block)
            for (n, v) in fields { e.encode(HeaderField(n, v), into: &block) }
            let got = try decodeBlock(&d, block)
            if !same(got, fields) { Issue.record("round \(round): \(got)"); return }
            #expect(d.dynamicTableCount == e.dynamicTableCount)
            if round > 0, same(fields, previous), block.count != fields.count {
                Issue.record("round \(round): a block equal to the previous one took \(block.count) bytes"); return
            }
            previous = fields
        }
        // Two fields whose hashes share a bucket (the bucket keeps the newer): sent
        // again in their places, both are found, the older one by its place alone.
        func bucket(_ n: String, _ v: String) -> UInt64 {
            Array(n.utf8).withUnsafeBytes { nb in Array(v.utf8).withUnsafeBytes { vb in
                HPACKEncoder.hashValue(vb, seed: HPACKEncoder.hashName(nb)) & HPACKEncoder.bucketMask } }
        }
        let twin = try #require((1..<10_000).first { bucket("x-pair", "v\($0)") == bucket("x-pair", "v0") })
        var f = HPACKEncoder()
        var g = HPACKDecoder()
        for round in 0..<2 {
            var block: [UInt8] = []
            f.beginBlock(into: &block)
            f.encode(HeaderField("x-pair", "v0"), into: &block)
            f.encode(HeaderField("x-pair", "v\(twin)"), into: &block)
            #expect(same(try decodeBlock(&g, block), [("x-pair", "v0"), ("x-pair", "v\(twin)")]))
            if round == 1 { #expect(block.count == 2, "\(block.count) bytes: the older field of the bucket was not found in its place") }
        }
        // Mixed-case names match their lowercase entries in place too.
        var a: [UInt8] = [], b: [UInt8] = []
        e.beginBlock(into: &a); e.encode(HeaderField("X-Case", "v"), into: &a)
        e.beginBlock(into: &b); e.encode(HeaderField("x-case", "v"), into: &b)
        let first = try decodeBlock(&d, a), second = try decodeBlock(&d, b)
        #expect(same(first, [("x-case", "v")]) && same(second, [("x-case", "v")]) && b.count == 1)
    }

    /// A request id (new in every response) is sent without indexing, and
    /// credentials never indexed (§7.1.3), so neither takes a table entry.
    @Test func requestIDsAndCredentialsTakeNoEntry() throws {
        var e = HPACKEncoder()
        var d = HPACKDecoder()
        var block: [UInt8] = []
        e.encode(HeaderField("x-request-id", "0123456789abcdef"), into: &block)
        e.encode(HeaderField("Set-Cookie", "a=b"), into: &block)
        e.encode(HeaderField("proxy-authorization", "Basic x"), into: &block)
        #expect(same(try decodeBlock(&d, block), [("x-request-id", "0123456789abcdef"), ("set-cookie", "a=b"), ("proxy-authorization", "Basic x")]))
        #expect(d.dynamicTableCount == 0 && e.dynamicTableCount == 0)
        // The cookie went as never indexed (0x10 with set-cookie's static name index 55).
        // The cookie and the credentials went as never indexed (§6.2.3: 0001, then the
        // static name index 55 or 49 past the 4-bit prefix: 0x1f and 55 - 15 or 49 - 15).
        #expect(block.firstIndex(of: 0x1f).map { block[$0 + 1] } == 40)
        #expect(block.lastIndex(of: 0x1f).map { block[$0 + 1] } == 34)
    }

    /// Every prefix of a valid block is refused or decodes (no read past the end), and
    /// decoding the whole block after any refused prefix still works (no state left behind
    /// by a failure is relied on: each connection error ends the connection).
    @Test func everyPrefixIsSafe() {
        let block = hex("88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335")
        for n in 0...block.count {
            var d = HPACKDecoder()
            _ = try? decodeBlock(&d, Array(block[0..<n]))
        }
    }
}

/// The nibble-step Huffman decoder against the code's tree walked a bit at a
/// time (the rule as §5.2 states it): the same bytes for every string it
/// accepts, and the same refusals (EOS inside, a code that does not exist,
/// padding over 7 bits or not all ones).
@Suite(.timeLimit(.minutes(3))) struct HuffmanStepTests {
    static func bitwise(_ p: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var node = 0, pending = 0, ones = true
        for byte in p {
            for shift in stride(from: 7, through: 0, by: -1) {
                let b = Int((byte >> UInt8(shift)) & 1)
                let next = Huffman.children[2 * node + b]
                if next < 0 {
                    if -next - 1 == 256 { return nil }
                    out.append(UInt8(-next - 1))
                    node = 0; pending = 0; ones = true
                } else {
                    if next == 0 { return nil }
                    node = Int(next); pending += 1
                    if b == 0 { ones = false }
                }
            }
        }
        return pending <= 7 && ones ? out : nil
    }

    static func stepped(_ p: [UInt8]) -> [UInt8]? {
        try? p.withUnsafeBytes { q throws(HPACKError) in try Huffman.decode(q) }
    }

    @Test func agreesWithTheTreeOnEncodedAndRandomBytes() {
        var seed: UInt64 = 0x5EED
        func next() -> UInt64 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return seed >> 33 }
        var accepted = 0
        for round in 0..<20_000 {
            let n = Int(next() % 24)
            var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) }
            if round % 2 == 0 {
                var code: [UInt8] = []
                Huffman.encode(bytes, into: &code)
                #expect(Self.stepped(code) == bytes)
                bytes = code
                // Now and then a flipped bit or a cut end.
                if round % 6 == 0, !bytes.isEmpty { bytes[Int(next()) % bytes.count] ^= UInt8(1 << (next() % 8)) }
                if round % 10 == 0, !bytes.isEmpty { bytes.removeLast() }
            }
            let want = Self.bitwise(bytes), got = Self.stepped(bytes)
            #expect(got == want, "\(bytes)")
            if want != nil { accepted += 1 }
        }
        #expect(accepted > 10_000)
        // Padding: seven ones end a string, eight do not; EOS itself is refused.
        #expect(Self.stepped([0xFF]) == nil && Self.bitwise([0xFF]) == nil)
        #expect(Self.stepped([0x1F]) == Array("a".utf8) && Self.bitwise([0x1F]) == Array("a".utf8), "'a' is 00011, then 111")
        #expect(Self.stepped([0xFF, 0xFF, 0xFF, 0xFF]) == nil)
    }
}
