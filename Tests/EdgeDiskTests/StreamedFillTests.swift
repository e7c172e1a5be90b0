// A fill too large for memory, written to disk as it arrives (StreamedFill.swift).
import Testing
import Glibc
import EdgeCache
import EdgeHTTP
@testable import EdgeDisk

@Suite(.serialized) struct StreamedFillTests {
    static let key = "4:shop|https|shop.test|/video"

    func fill(_ s: TieredStore, _ key: String = StreamedFillTests.key, length: Int) -> CacheFill {
        let r = sample(key, body: [])
        return CacheFill(key: r.key, variant: "", vary: [], tenant: "shop", status: 200, headers: r.headers, freshness: r.freshness,
                         limit: s.maxObjectBytes, tags: r.tags, startedAt: s.purges.epoch)
    }

    /// A fill with the sink the store gives it (written to disk as it arrives).
    func streamed(_ s: TieredStore, _ key: String = StreamedFillTests.key, length: Int) -> CacheFill {
        let f = fill(s, key, length: length)
        f.sink = s.fillSink(for: f, length: length)
        return f
    }

    /// Feeds `body` in uneven pieces, as an origin's reads come; the sink never holds more than one piece.
    func feed(_ f: CacheFill, _ body: [UInt8], upTo: Int? = nil, maxHeld: inout Int) {
        var at = 0
        var step = 1
        let end = upTo ?? body.count
        while at < end {
            let n = min(end - at, 1000 + (step * 7919) % 40_000)
            body.withUnsafeBytes { f.append($0.baseAddress! + at, n) }
            maxHeld = max(maxHeld, (f.sink as? DiskFillSink)?.buffered ?? 0, f.body.count)
            at += n
            step += 1
        }
    }

    /// A 900 KB fill over a memory tier whose largest object is 64 KiB goes to
    /// disk as it arrives, holding at most one 256 KiB piece, and is then read
    /// back block by block, byte-exact; the record's checksums are the ones a
    /// whole write would have made.
    @Test func aFillTooLargeForMemoryIsWrittenAsItArrives() throws {
        let dir = tempDir()
        let s = try open(dir, size: 16 << 20, memory: 1 << 20)
        settle(s)
        let body = (0..<900_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 10) }
        let f = streamed(s, length: body.count)
        #expect(f.sink != nil)
        #expect(s.fillSink(for: fill(s, length: 60_000), length: 60_000) == nil, "one that fits memory is not streamed")
        var held = 0
        feed(f, body, maxHeld: &held)
        #expect(held <= DiskFillSink.pieceSize && f.body.isEmpty, "held \(held)")
        f.complete = true
        #expect(s.commit(f))
        settle(s)
        let d = s.disks[0]
        #expect(d.streamedWrites.load(ordering: .relaxed) == 1 && d.objectCount == 1)
        let w = Wakes()
        guard let (r, b) = stream(s, Self.key, exchange: 1, w) else { Issue.record("not stored"); s.close(); return }
        #expect(r.status == 200 && b.length == body.count)
        var waits = 0, got: [UInt8] = []
        #expect(drain(b, w, from: 0, to: body.count, waits: &waits, got: &got))
        #expect(same(got, body))
        // The record on disk is the one a whole write makes (same head, same block checksums).
        guard let (loc, _, _) = d.locate(Self.key, request: { HeaderList() }) else { Issue.record("not indexed"); s.close(); return }
        var rec = [UInt8](repeating: 0, count: Int(loc.length))
        let fd = d.files.withLock { $0.fds[Int(loc.slot)] }.fd
        _ = rec.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(loc.length), off_t(loc.offset)) }
        let expected = DiskRecord.encode(f.stored(BodyStorage(body)), seq: s.seqBase + f.startedAt)
        #expect(same(rec, expected), "the streamed record differs from a whole write")
        s.close()
    }

    /// The fill's followers read it from its region while it is written: a
    /// reader made before any byte waits, is woken once the first piece is
    /// in the file, and reads exactly the blocks written (the piece being
    /// gathered is not readable yet); at the end every byte is right, for a
    /// reader that kept up and for one that starts after the last write.
    /// A fill given up part way lets its readers have the blocks written and
    /// ends them short after those, never leaving them waiting.
    @Test func followersReadAStreamedFillAsItIsWritten() throws {
        let dir = tempDir()
        let s = try open(dir, size: 16 << 20, memory: 1 << 20)
        settle(s)
        let body = (0..<900_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
        let f = streamed(s, length: body.count)
        guard let shared = f.sink?.followers else { Issue.record("no followers' reader"); s.close(); return }
        #expect(shared.length == body.count && shared.response.key == Self.key)
        let w = Wakes()
        let early = shared.reader(waking: w)
        let me = Waiter(worker: 0, exchange: 5)
        let out = IOBuffer(capacity: 1 << 16)
        #expect(early.read(from: 0, max: 1000, into: out, waiter: me) == .wait, "nothing written yet")
        var held = 0
        let piece = DiskFillSink.pieceSize
        feed(f, body, upTo: piece + 1000, maxHeld: &held)
        var got: [UInt8] = [], waits = 0
        #expect(drain(early, w, from: 0, to: piece, waits: &waits, got: &got))
        #expect(same(got, Array(body[0..<piece])))
        #expect(early.read(from: piece, max: 1000, into: out, waiter: me) == .wait, "the piece being gathered is not in the file")
        feed(f, Array(body[(piece + 1000)...]), maxHeld: &held)   // (feed takes the rest as a body of its own)
        f.complete = true
        #expect(s.commit(f))
        #expect(drain(early, w, from: piece, to: body.count, waits: &waits, got: &got))
        #expect(same(got, body))
        settle(s)
        var late: [UInt8] = []
        #expect(drain(shared.reader(waking: w), w, from: 0, to: body.count, waits: &waits, got: &late))
        #expect(same(late, body))

        // Given up after two pieces.
        let key = "4:shop|https|shop.test|/given-up"
        let g = streamed(s, key, length: body.count)
        let reader = g.sink!.followers!.reader(waking: w)
        feed(g, body, upTo: 2 * piece + 5000, maxHeld: &held)
        var part: [UInt8] = []
        #expect(drain(reader, w, from: 0, to: 2 * piece, waits: &waits, got: &part))
        s.abort(g)
        var rest: [UInt8] = []
        #expect(!drain(reader, w, from: 2 * piece, to: body.count, waits: &waits, got: &rest), "a block never written")
        #expect(same(part, Array(body[0..<(2 * piece)])) && rest.isEmpty)
        #expect(s.disks[0].readFailures.load(ordering: .relaxed) == 0, "not counted as a bad block")
        s.close()
    }

    /// A lookup between a fill's end and its last write (the record's head,
    /// then the index) waits for it and is woken: it is never a miss (the
    /// fill's collapsed followers would fetch it all again).
    @Test func aLookupAsAStreamedFillEndsWaitsForItsLastWrite() throws {
        let dir = tempDir()
        let s = try open(dir, size: 64 << 20, memory: 1 << 20)
        settle(s)
        let body = [UInt8](repeating: 42, count: 200_000)
        for i in 0..<20 {
            let key = "4:shop|https|shop.test|/f\(i)"
            let f = streamed(s, key, length: body.count)
            var held = 0
            feed(f, body, maxHeld: &held)
            f.complete = true
            #expect(s.commit(f))
            let w = Wakes()
            let me = Waiter(worker: 0, exchange: UInt64(100 + i))
            let first = s.lookup(key: key, request: { HeaderList() }, waiter: me, waking: w)
            switch first {
            case .diskStream: break
            case .pending:
                while w.woken.withLock({ $0.isEmpty }) { usleep(500) }
                guard case .diskStream = s.lookup(key: key, request: { HeaderList() }, waiter: me, waking: w) else {
                    Issue.record("round \(i): woken, and still not stored"); continue
                }
            default:
                Issue.record("round \(i): \(first) right after the fill ended (\(s.disks[0].finishingCount.load(ordering: .relaxed)) finishing)")
            }
        }
        #expect(s.disks[0].finishing.isEmpty && s.disks[0].finishingCount.load(ordering: .relaxed) == 0)
        s.close()
    }

    /// The index rebuild reads the heads of large records, not their bodies,
    /// and still finds a head longer than its small read, and the small
    /// records among them.
    @Test func aRestartReadsTheHeadsOfLargeRecordsOnly() throws {
        let dir = tempDir()
        var s = try open(dir, size: 64 << 20, memory: 1 << 20)
        settle(s)
        let big = [UInt8](repeating: 9, count: 300_000)
        let tags = (0..<2000).map { "a-rather-long-tag-name-\($0)" }    // a head of about 60 KB
        for i in 0..<12 {
            s.insert(sample("4:shop|https|shop.test|/big\(i)", body: big), startedAt: nil)
            if i % 4 == 1 { s.insert(sample("4:shop|https|shop.test|/tags\(i)", body: [1, 2, 3], tags: tags), startedAt: nil) }
            s.insert(sample("4:shop|https|shop.test|/small\(i)", body: [UInt8(i)]), startedAt: nil)
            s.flush()
        }
        s.close()
        s = try open(dir, size: 64 << 20, memory: 1 << 20)
        settle(s)
        let d = s.disks[0]
        #expect(d.objectCount == 27, "\(d.objectCount) objects indexed")
        for i in 0..<12 {
            #expect(get(s, "4:shop|https|shop.test|/small\(i)", exchange: UInt64(i))?.body == [UInt8(i)])
            if i % 4 == 1 { #expect(get(s, "4:shop|https|shop.test|/tags\(i)", exchange: UInt64(100 + i))?.tags.count == 2000) }
        }
        let scanned = d.scannedBytes.load(ordering: .relaxed)
        #expect(scanned < 12 * big.count / 2, "the scan read \(scanned) bytes for 3.6 MB of bodies")
        s.close()
    }

    /// Killed (or dropped) half way: the region stays an open record. A record
    /// written after it in the same segment is found after a restart, the
    /// unfinished one never is; an aborted or purged fill indexes nothing.
    @Test func anUnfinishedFillIsSteppedOverAndLosesNothingAfterIt() throws {
        let dir = tempDir()
        var s = try open(dir, size: 16 << 20, memory: 1 << 20)
        settle(s)
        let body = (0..<500_000).map { UInt8(truncatingIfNeeded: $0 &* 5) }
        var held = 0
        // Half of it, then another object behind it in the segment; then the process "dies".
        var f: CacheFill? = fill(s, length: body.count)
        f!.sink = s.fillSink(for: f!, length: body.count)
        feed(f!, body, upTo: 300_000, maxHeld: &held)
        s.insert(sample("4:shop|https|shop.test|/after", body: Array(repeating: 7, count: 5000)), startedAt: nil)
        settle(s)
        // (What kill -9 leaves: the open head and the pieces written; nothing is dropped or ended.)
        (f!.sink as? DiskFillSink)?.closed = true
        f = nil
        s.close()
        s = try open(dir, size: 16 << 20, memory: 1 << 20)
        settle(s)
        #expect(get(s, "4:shop|https|shop.test|/after")?.body == Array(repeating: 7, count: 5000), "the record after the open one was lost")
        let w = Wakes()
        if case .absent = s.lookup(key: Self.key, request: { HeaderList() }, waiter: Waiter(worker: 0, exchange: 9), waking: w) {} else {
            Issue.record("an unfinished fill was indexed")
        }
        #expect(s.disks[0].readFailures.load(ordering: .relaxed) == 0)
        // Aborted half way: nothing; the next store goes on after its region.
        let g = streamed(s, length: body.count)
        feed(g, body, upTo: 100_000, maxHeld: &held)
        s.abort(g)
        // Purged while it arrived: not stored.
        let h = streamed(s, length: body.count)
        feed(h, body, maxHeld: &held)
        s.purge(.key(Self.key), soft: false, now: 1_700_000_100)
        h.complete = true
        #expect(!s.commit(h))
        // Too short or too long: not stored.
        let k = streamed(s, length: body.count)
        feed(k, body, upTo: body.count - 1, maxHeld: &held)
        k.complete = true
        #expect(!s.commit(k))
        settle(s)
        #expect(s.disks[0].streamedWrites.load(ordering: .relaxed) == 0)
        if case .absent = s.lookup(key: Self.key, request: { HeaderList() }, waiter: Waiter(worker: 0, exchange: 10), waking: w) {} else {
            Issue.record("an aborted, purged or short fill was indexed")
        }
        #expect(s.disks[0].streams.isEmpty, "every stream let go")
        #expect(get(s, "4:shop|https|shop.test|/after")?.body.count == 5000)
        s.close()
    }
}
