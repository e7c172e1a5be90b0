// A disk object too large for memory: answered from its head, its body read
// a block at a time as it is sent (BlockBody.swift).
import Testing
import Glibc
import EdgeCache
import EdgeHTTP
@testable import EdgeDisk

/// Looks `key` up until its streamed answer comes (nil: any other answer).
func stream(_ s: TieredStore, _ key: String, exchange: UInt64, _ w: Wakes) -> (StoredResponse, any StreamedBody)? {
    let me = Waiter(worker: 0, exchange: exchange)
    for _ in 0..<2000 {
        switch s.lookup(key: key, request: { HeaderList() }, waiter: me, waking: w) {
        case .diskStream(let r, let b): return (r, b)
        case .found, .disk, .absent: return nil
        case .pending:
            while w.woken.withLock({ $0.isEmpty }) { usleep(1000) }
            w.woken.withLock { $0.removeAll() }
        }
    }
    return nil
}

/// Reads `from..<to` of a streamed body as pumpStream does, `piece` bytes at a
/// time, waiting when told; nil when it failed (what came before is in `got`).
func drain(_ b: any StreamedBody, _ w: Wakes, from: Int, to: Int, piece: Int = 20_000, waits: inout Int, got: inout [UInt8]) -> Bool {
    let out = IOBuffer(capacity: 1 << 16)
    var at = from
    let me = Waiter(worker: 0, exchange: 77)
    while at < to {
        out.clear()
        switch b.read(from: at, max: min(piece, to - at), into: out, waiter: me) {
        case .copied(let n):
            got += Array(out.readView)
            at += n
        case .wait:
            waits += 1
            while w.woken.withLock({ $0.isEmpty }) { usleep(1000) }
            w.woken.withLock { $0.removeAll() }
        case .failed:
            return false
        }
    }
    return true
}

/// Drops a segment's pages from the page cache until cachestat finds none of
/// the first `blocks` blocks of a body at `bodyAt` (readahead in flight, or a
/// loaded machine, can keep some for a while: given again for up to 5 s).
func dropPages(_ slot: SegmentFile, _ bodyAt: Int, blocks: Int) -> Bool {
    for _ in 0..<250 {
        _ = posix_fadvise(slot.fd, 0, 0, Int32(POSIX_FADV_DONTNEED))
        if !(0..<blocks).contains(where: { slot.resident(offset: bodyAt + $0 * DiskRecord.blockSize, count: 1) }) { return true }
        usleep(20_000)
    }
    return false
}

/// (A Bool, so that a failure does not print half a megabyte.)
func same(_ a: [UInt8], _ b: [UInt8]) -> Bool { a == b }

@Suite(.serialized) struct BlockBodyTests {
    /// Memory's largest object is 64 KiB here (1 MiB over 16 shards), so a
    /// 600 KB object lives on disk alone: the lookup reads its head, the body
    /// comes block by block (from the page cache on the worker, or from the
    /// reader pool with a wake when it is not there), a range reads only the
    /// blocks it covers, and a block that fails its check ends the body there
    /// and unindexes the record.
    @Test func aBodyTooLargeForMemoryIsReadBlockByBlockAsItIsSent() throws {
        let dir = tempDir()
        let s = try open(dir, size: 16 << 20, memory: 1 << 20)
        settle(s)
        #expect(s.memory.maxObjectBytes == 64 << 10)
        let body = (0..<600_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
        s.insert(sample("4:shop|https|shop.test|/big", body: body), startedAt: nil)
        s.insert(sample("4:shop|https|shop.test|/small", body: Array(repeating: 3, count: 30_000)), startedAt: nil)
        settle(s)
        let d = s.disks[0]
        let w = Wakes()
        // A small object is read whole, as before.
        if case .diskStream = s.lookup(key: "4:shop|https|shop.test|/small", request: { HeaderList() }, waiter: Waiter(worker: 0, exchange: 1), waking: w) {
            Issue.record("a small object streamed")
        }
        // The whole body, byte-exact; the head is all the lookup read.
        var before = d.readBytes.load(ordering: .relaxed)
        guard let (r, b) = stream(s, "4:shop|https|shop.test|/big", exchange: 2, w) else { Issue.record("not streamed"); s.close(); return }
        #expect(r.status == 200 && r.bodyCount == 0 && b.length == body.count && r.etag == "\"x\"")
        #expect(d.readBytes.load(ordering: .relaxed) - before <= DiskStore.headGuess, "the lookup read the head only")
        #expect(s.memory.lookup(key: "4:shop|https|shop.test|/big", request: { HeaderList() }) == nil, "not promoted")
        var waits = 0, got: [UInt8] = []
        #expect(drain(b, w, from: 0, to: body.count, waits: &waits, got: &got))
        #expect(got.count == body.count && same(got, body))
        // A range in the middle reads one block (and the head).
        before = d.readBytes.load(ordering: .relaxed)
        guard let (_, b2) = stream(s, "4:shop|https|shop.test|/big", exchange: 3, w) else { Issue.record("not streamed"); s.close(); return }
        got = []
        #expect(drain(b2, w, from: 300_000, to: 301_000, waits: &waits, got: &got))
        #expect(same(got, Array(body[300_000..<301_000])))
        let rangeRead = d.readBytes.load(ordering: .relaxed) - before
        #expect(rangeRead <= DiskStore.headGuess + DiskRecord.blockSize, "a range read \(rangeRead) bytes")
        // Out of the page cache: the pool reads the blocks and wakes the reader.
        let slot = d.files.withLock { $0.fds[0] }
        guard let (_, b3) = stream(s, "4:shop|https|shop.test|/big", exchange: 4, w) else { Issue.record("not streamed"); s.close(); return }
        // (Given again until cachestat finds none of the body's pages: readahead in
        // flight, or a loaded machine, can keep some for a while.)
        #expect(dropPages(slot, (b3 as! DiskBlockBody).bodyOffset, blocks: 10), "the body's pages stayed in the page cache")
        waits = 0; got = []
        #expect(drain(b3, w, from: 0, to: body.count, piece: 70_000, waits: &waits, got: &got))
        #expect(same(got, body))
        #expect(waits > 0, "no block came from the reader pool")
        // A flipped byte in block 5: blocks 0-4 go out, block 5 fails, the record leaves the index.
        guard let loc = d.locate("4:shop|https|shop.test|/big", request: { HeaderList() })?.loc,
              let (_, b4) = stream(s, "4:shop|https|shop.test|/big", exchange: 5, w) else { Issue.record("not streamed"); s.close(); return }
        let at = (b4 as! DiskBlockBody).bodyOffset + 5 * DiskRecord.blockSize + 10
        var byte: UInt8 = 0
        _ = pread(slot.fd, &byte, 1, off_t(at))
        byte ^= 0x40
        _ = pwrite(slot.fd, &byte, 1, off_t(at))
        let failures = d.readFailures.load(ordering: .relaxed)
        got = []
        #expect(!drain(b4, w, from: 0, to: body.count, waits: &waits, got: &got))
        #expect(same(got, Array(body[0..<(5 * DiskRecord.blockSize)])), "blocks before the bad one, not a byte of it (\(got.count) bytes)")
        #expect(d.readFailures.load(ordering: .relaxed) == failures + 1)
        #expect(d.locate("4:shop|https|shop.test|/big", request: { HeaderList() }) == nil && loc.length > 0, "unindexed")
        if case .diskStream = s.lookup(key: "4:shop|https|shop.test|/big", request: { HeaderList() }, waiter: Waiter(worker: 0, exchange: 6), waking: w) {
            Issue.record("still answered")
        }
        s.close()
    }

    /// To a plain socket a block goes from the segment's pages (sendfile): a
    /// span names the file, offset and length of checked bytes, those the
    /// check just read, or, for a block checked before, only while the page
    /// cache still holds them (else `.copy`: the checked bytes in memory); a
    /// block that fails its check gives no span.
    @Test func spansNameOnlyCheckedPagesOfTheSegment() throws {
        let dir = tempDir()
        let s = try open(dir, size: 16 << 20, memory: 1 << 20)
        settle(s)
        let body = (0..<600_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 9) }
        s.insert(sample("4:shop|https|shop.test|/big", body: body), startedAt: nil)
        settle(s)
        let d = s.disks[0], w = Wakes(), me = Waiter(worker: 0, exchange: 1)
        let slot = d.files.withLock { $0.fds[0] }
        guard let (_, b) = stream(s, "4:shop|https|shop.test|/big", exchange: 1, w) else { Issue.record("not streamed"); s.close(); return }
        let bodyAt = (b as! DiskBlockBody).bodyOffset
        /// The file's bytes a span names.
        func bytes(_ fd: Int32, _ offset: Int, _ n: Int) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: n)
            _ = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, n, off_t(offset)) }
            return out
        }
        // Block 0, read and checked now: to its end.
        guard case .file(let fd, let offset, let n) = b.span(from: 0, max: body.count, waiter: me) else { Issue.record("no span"); s.close(); return }
        #expect(fd == slot.fd && offset == bodyAt && n == DiskRecord.blockSize)
        #expect(same(bytes(fd, offset, n), Array(body[0..<n])))
        // Within block 1, at most `max`.
        guard case .file(_, let o1, let n1) = b.span(from: 70_000, max: 1000, waiter: me) else { Issue.record("no span"); s.close(); return }
        #expect(o1 == bodyAt + 70_000 && n1 == 1000 && same(bytes(slot.fd, o1, n1), Array(body[70_000..<71_000])))
        // Block 1 again, its pages gone from the page cache: copied from the checked buffer.
        #expect(dropPages(slot, bodyAt, blocks: 10), "the body's pages stayed in the page cache")
        #expect(b.span(from: 71_000, max: 1000, waiter: me) == .copy)
        let out = IOBuffer(capacity: 4096)
        #expect(b.read(from: 71_000, max: 1000, into: out, waiter: me) == .copied(1000) && same(Array(out.readView), Array(body[71_000..<72_000])))
        // Sent bytes are counted where the tier counts them.
        let sent = d.sentFromPages.load(ordering: .relaxed)
        b.sentFromFile(5000)
        #expect(d.sentFromPages.load(ordering: .relaxed) == sent + 5000)
        // A flipped byte in block 5: no span of it, ever.
        let at = bodyAt + 5 * DiskRecord.blockSize + 99
        var byte: UInt8 = 0
        _ = pread(slot.fd, &byte, 1, off_t(at))
        byte ^= 0x01
        _ = pwrite(slot.fd, &byte, 1, off_t(at))
        var answer = b.span(from: 5 * DiskRecord.blockSize, max: 100, waiter: me)
        while answer == .wait {   // (a block out of the page cache comes from the pool)
            while w.woken.withLock({ $0.isEmpty }) { usleep(1000) }
            w.woken.withLock { $0.removeAll() }
            answer = b.span(from: 5 * DiskRecord.blockSize, max: 100, waiter: me)
        }
        #expect(answer == .failed)
        s.close()
    }
}
