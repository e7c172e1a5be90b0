import Testing
import EdgeCache
import EdgeHTTP
@testable import EdgeDisk

func sample(_ key: String = "4:shop|https|shop.test|/a", body: [UInt8] = Array("hello, disk".utf8), vary: [String] = [], variant: String = "",
            tags: [String] = ["t1"]) -> StoredResponse {
    StoredResponse(key: key, variant: variant, vary: vary, tenant: "shop", status: 200,
                   headers: HeaderList([("ETag", "\"x\""), ("Content-Type", "text/plain"), ("Cache-Control", "max-age=60")]), body: body,
                   freshness: Freshness(lifetime: 60, source: .maxAge, correctedInitialAge: 3, responseTime: 1_700_000_000, mustRevalidate: false,
                                        noCache: false, staleWhileRevalidate: 30, staleIfError: nil), tags: tags)
}

@Suite struct RecordTests {
    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(CRC32C.of(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.of([]) == 0)
        #expect(Array("123456789".utf8).withUnsafeBytes { CRC32C.software(0, $0) } == 0xE306_9283)
    }

    /// The instruction path (this machine has SSE4.2) gives the tables' checksum for
    /// every length and alignment, also continued across pieces.
    @Test func theInstructionAgreesWithTheTables() {
        #expect(CRC32C.hardware, "this machine has SSE4.2: the instruction path is the one measured")
        var bytes = [UInt8](repeating: 0, count: 300)
        var x: UInt64 = 99
        for i in bytes.indices { x = x &* 6364136223846793005 &+ 1; bytes[i] = UInt8(truncatingIfNeeded: x >> 56) }
        bytes.withUnsafeBytes { all in
            for start in 0..<9 {
                for n in 0...(all.count - start) where n < 40 || n % 7 == 0 {
                    let p = UnsafeRawBufferPointer(rebasing: all[start..<(start + n)])
                    let soft = CRC32C.software(0, p)
                    #expect(CRC32C.update(0, p) == soft, "start \(start) length \(n)")
                    let cut = n / 3
                    let two = CRC32C.update(CRC32C.update(0, UnsafeRawBufferPointer(rebasing: p[0..<cut])), UnsafeRawBufferPointer(rebasing: p[cut...]))
                    #expect(two == soft, "start \(start) length \(n) in two pieces")
                }
            }
        }
    }

    /// Long buffers go as three interleaved streams joined by zero-append
    /// operators: still the tables' checksum, at every length around the
    /// stretch boundaries (3 x 256 and 3 x 8192 bytes), any alignment, and
    /// continued from any state.
    @Test func theInterleavedInstructionPathAgreesWithTheTables() {
        var bytes = [UInt8](repeating: 0, count: 3 * 8192 * 2 + 3 * 256 * 3 + 100)
        var x: UInt64 = 7
        for i in bytes.indices { x = x &* 6364136223846793005 &+ 1; bytes[i] = UInt8(truncatingIfNeeded: x >> 56) }
        var lengths: [Int] = []
        for base in [3 * 256, 3 * 256 * 2, 3 * 8192, 3 * 8192 + 3 * 256, 2 * 3 * 8192] {
            for d in -9...9 { lengths.append(base + d) }
        }
        lengths += [1000, 5000, 65536, bytes.count - 8]
        bytes.withUnsafeBytes { all in
            for n in lengths {
                for start in [0, 1, 3, 7] where start + n <= all.count {
                    let p = UnsafeRawBufferPointer(rebasing: all[start..<(start + n)])
                    #expect(CRC32C.update(0, p) == CRC32C.software(0, p), "length \(n) at \(start)")
                    #expect(CRC32C.update(0x1234_5678, p) == CRC32C.software(0x1234_5678, p), "length \(n) at \(start) from a state")
                }
            }
        }
    }

    @Test func aRecordRoundTrips() throws {
        let r = sample()
        let bytes = DiskRecord.encode(r, seq: 42)
        #expect(bytes.count % 8 == 0)
        guard case .record(let v) = bytes.withUnsafeBytes({ DiskRecord.parse($0) }) else { Issue.record("not parsed"); return }
        #expect(v.seq == 42 && v.length == bytes.count)
        let back = try #require(bytes.withUnsafeBytes { p in
            DiskRecord.decode(key: String(decoding: p[v.keyRange], as: UTF8.self), meta: UnsafeRawBufferPointer(rebasing: p[v.metaRange]),
                              storage: BodyStorage(Array(p[v.bodyRange])))
        })
        #expect(back.key == r.key && back.variant == r.variant && back.tenant == r.tenant && back.status == 200)
        #expect(back.headBytes == r.headBytes && back.body == r.body && back.freshness == r.freshness && back.tags == r.tags)
        #expect(back.etag == "\"x\"")
        #expect(bytes.withUnsafeBytes { CRC32C.update(0, UnsafeRawBufferPointer(rebasing: $0[v.bodyRange])) } == v.bodyCRC)
    }

    /// Every prefix of a record is "need more" or invalid, never a record.
    @Test func everySplitPointIsIncomplete() {
        let bytes = DiskRecord.encode(sample(), seq: 1)
        guard case .record(let whole) = bytes.withUnsafeBytes({ DiskRecord.parse($0) }) else { Issue.record("not parsed"); return }
        for n in 0..<whole.bodyRange.lowerBound {
            let r = bytes.withUnsafeBytes { DiskRecord.parse(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            if case .record = r { Issue.record("a record from \(n) bytes") }
        }
    }

    /// A flipped bit anywhere in the head makes it invalid; in the body its checksum fails.
    @Test func everyFlippedBitIsCaught() {
        let bytes = DiskRecord.encode(sample(), seq: 1)
        guard case .record(let v) = bytes.withUnsafeBytes({ DiskRecord.parse($0) }) else { Issue.record("not parsed"); return }
        for i in 0..<v.bodyRange.upperBound {
            for bit in [0, 3, 7] {
                var b = bytes
                b[i] ^= UInt8(1 << bit)
                let r = b.withUnsafeBytes { DiskRecord.parse($0) }
                if case .record(let w) = r {
                    #expect(i >= v.bodyRange.lowerBound && !b.withUnsafeBytes { DiskRecord.bodyChecks($0, w) }, "byte \(i) bit \(bit) went unnoticed")
                }
            }
        }
    }

    /// A body over one block is checked block by block: the table is in the
    /// head (its checksum covers it), each block's checksum catches a flip in
    /// that block alone, and a record from before blocks still reads.
    @Test func aLargeBodyIsCheckedByBlocks() throws {
        var body = [UInt8](repeating: 0, count: 3 * DiskRecord.blockSize + 8000)
        for i in body.indices { body[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 9) }
        let bytes = DiskRecord.encode(sample(body: body), seq: 5)
        guard case .record(let v) = bytes.withUnsafeBytes({ DiskRecord.parse($0) }) else { Issue.record("not parsed"); return }
        #expect(v.hasBlocks && v.blockCount == 4 && v.tableRange.count == 16 && !v.open && v.bodyCRC == 0)
        #expect(v.block(3) == (3 * DiskRecord.blockSize)..<body.count)
        bytes.withUnsafeBytes { p in
            for i in 0..<4 {
                #expect(v.blockCRC(p, i) == body.withUnsafeBytes { CRC32C.update(0, UnsafeRawBufferPointer(rebasing: $0[v.block(i)])) })
            }
            #expect(DiskRecord.bodyChecks(p, v))
        }
        // A flip in block 2 fails that block's checksum and no other's.
        var flipped = bytes
        flipped[v.bodyRange.lowerBound + 2 * DiskRecord.blockSize + 77] ^= 4
        flipped.withUnsafeBytes { p in
            #expect(!DiskRecord.bodyChecks(p, v))
            for i in 0..<4 {
                let at = v.bodyRange.lowerBound
                let ok = CRC32C.update(0, UnsafeRawBufferPointer(rebasing: p[(at + v.block(i).lowerBound)..<(at + v.block(i).upperBound)])) == v.blockCRC(p, i)
                #expect(ok == (i != 2), "block \(i)")
            }
        }
        // A flip in the table fails the head.
        var table = bytes
        table[v.tableRange.lowerBound + 5] ^= 1
        #expect(table.withUnsafeBytes { DiskRecord.parse($0) } == .invalid)
        // Every prefix short of the table is incomplete.
        for n in stride(from: 0, to: v.bodyRange.lowerBound, by: 3) {
            if case .record = bytes.withUnsafeBytes({ DiskRecord.parse(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }) { Issue.record("a record from \(n) bytes") }
        }
        // An open record parses (a scan steps over it) and never checks.
        let r = sample(body: body)
        let (openHead, _) = DiskRecord.encodeHead(r, seq: 5, bodyLength: body.count, checksum: .blocks([0, 0, 0, 0]), open: true)
        let open = openHead + body + [UInt8](repeating: 0, count: v.length - openHead.count - body.count)
        guard case .record(let o) = open.withUnsafeBytes({ DiskRecord.parse($0) }) else { Issue.record("open record not parsed"); return }
        #expect(o.open && o.length == v.length && o.bodyRange == v.bodyRange)
        #expect(!open.withUnsafeBytes { DiskRecord.bodyChecks($0, o) })
        // A large body checked whole (written before blocks) still reads.
        let meta = DiskRecord.encodeMeta(r)
        var legacy: [UInt8] = []
        put32(&legacy, DiskRecord.magic); put32(&legacy, 0); put32(&legacy, CRC32C.of(body))
        put32(&legacy, UInt32(r.key.utf8.count)); put32(&legacy, UInt32(meta.count)); put32(&legacy, 0)
        put64(&legacy, UInt64(body.count)); put64(&legacy, 5)
        legacy += Array(r.key.utf8) + meta
        set32(&legacy, 4, legacy.withUnsafeBytes { CRC32C.update(0, UnsafeRawBufferPointer(rebasing: $0[8...])) })
        legacy += body + [UInt8](repeating: 0, count: DiskRecord.padded(legacy.count + body.count) - legacy.count - body.count)
        guard case .record(let l) = legacy.withUnsafeBytes({ DiskRecord.parse($0) }) else { Issue.record("legacy record not parsed"); return }
        #expect(!l.hasBlocks && l.blockCount == 1 && legacy.withUnsafeBytes { DiskRecord.bodyChecks($0, l) })
        // Flags other than those defined, or open without blocks, are invalid.
        for bad: UInt32 in [2, 4, 8, 0x100] {
            var b = DiskRecord.encode(sample(), seq: 1)
            set32(&b, 20, bad)
            #expect(b.withUnsafeBytes { DiskRecord.parse($0) } == .invalid, "flags \(bad)")
        }
    }

    @Test func segmentHeadersCheck() {
        var h = SegmentHeader.encode(generation: 7, created: 1)
        #expect(h.withUnsafeBytes { SegmentHeader.parse($0) } == 7)
        h[9] ^= 1
        #expect(h.withUnsafeBytes { SegmentHeader.parse($0) } == nil)
        #expect([UInt8](repeating: 0, count: 64).withUnsafeBytes { SegmentHeader.parse($0) } == nil)
    }

    @Test func theJournalRoundTripsAndStopsAtATornTail() {
        let entries = [DurablePurge(seq: 5, time: 10, soft: false, scope: .key("k")), DurablePurge(seq: 6, time: 11, soft: true, scope: .prefix("4:shop|")),
                       DurablePurge(seq: 7, time: 12, soft: false, scope: .tag("t", tenant: "shop")), DurablePurge(seq: 8, time: 13, soft: false, scope: .tag("u", tenant: nil)),
                       DurablePurge(seq: 9, time: 14, soft: false, scope: .tenant("shop"))]
        let bytes = entries.flatMap(PurgeJournal.encode)
        let (back, used) = bytes.withUnsafeBytes { PurgeJournal.decode($0) }
        #expect(back == entries && used == bytes.count)
        for cut in 0..<bytes.count {
            let (some, n) = bytes.withUnsafeBytes { PurgeJournal.decode(UnsafeRawBufferPointer(rebasing: $0[0..<cut])) }
            #expect(some == Array(entries.prefix(some.count)) && n <= cut)
        }
    }
}

/// The index's hashes are FNV-1a over the key's bytes (then 2, then the
/// variant's): hashed in place now, they must stay the values earlier versions
/// computed byte by byte, or keys would move between directories.
@Suite struct IndexHashTests {
    func reference(_ key: String, variant: String? = nil) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in key.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        if let variant {
            h = (h ^ 2) &* 0x100000001b3
            for b in variant.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        }
        return h
    }

    @Test func inPlaceHashesEqualTheByteByByteOnes() {
        let keys = ["4:shop|https|shop.test|/a", "1:x|http|é.test|/ü?q=1", "4:shop|https|shop.test|/a\u{0}br", "4:shop|https|shop.test|/a\u{1}POST 1f", ""]
        for k in keys {
            #expect(indexHash(k) == reference(k), "\(k.debugDescription)")
            #expect(indexHash(k, variant: "accept-encoding=br") == reference(k, variant: "accept-encoding=br"))
            // A directory is chosen by the base key (up to a NUL or SOH): the same as hashing that prefix.
            #expect(MemoryStore.keyHash(k, stopAtSeparator: true) == reference(String(CacheKey.base(k))), "\(k.debugDescription)")
        }
        #expect(CacheKey.base("a|b\u{0}gzip") == "a|b" && CacheKey.base("a|b\u{1}x") == "a|b" && CacheKey.base("plain") == "plain")
    }
}
