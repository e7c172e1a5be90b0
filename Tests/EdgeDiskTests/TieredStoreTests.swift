import Testing
import Glibc
import Synchronization
import EdgeCache
import EdgeHTTP
@testable import EdgeDisk

final class Wakes: Waking, @unchecked Sendable {
    let woken = Mutex<[Waiter]>([])
    func wake(_ w: Waiter) { woken.withLock { $0.append(w) } }
}

func tempDir() -> String {
    var t = Array("/tmp/edge-disk-XXXXXX".utf8CString)
    return t.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

func open(_ dir: String, size: Int64 = 16 << 20, memory: Int = 8 << 20) throws -> TieredStore {
    try TieredStore(memory: MemoryStore(capacity: memory), disks: [(dir, size)], maxObjectBytes: 4 << 20)
}

/// Looks `key` up as the pipeline does: pending, woken, asked again.
func get(_ s: TieredStore, _ key: String, exchange: UInt64 = 1) -> StoredResponse? {
    let w = Wakes()
    let me = Waiter(worker: 0, exchange: exchange)
    for _ in 0..<2000 {
        switch s.lookup(key: key, request: { HeaderList() }, waiter: me, waking: w) {
        case .found(let r), .disk(let r): return r
        case .absent, .diskStream: return nil
        case .pending:
            while w.woken.withLock({ $0.isEmpty }) { usleep(1000) }
            w.woken.withLock { $0.removeAll() }
        }
    }
    return nil
}

/// Waits until the directory's loader is done and its writes are on disk.
func settle(_ s: TieredStore) {
    s.flush()
    while s.disks.contains(where: { $0.directory.loading }) { usleep(1000) }
}

@Suite(.serialized) struct TieredStoreTests {
    /// A tenant's disk quota of its own (a tenant file's `disk_cache_bytes`) bounds
    /// what it writes to disk, whatever its memory quota; another tenant's writes go
    /// on; without one, the memory quota scaled by disk over memory size applies
    /// (and only what memory admits is written).
    @Test func diskQuotasBoundEachTenantsWrites() throws {
        func object(_ tenant: String, _ i: Int) -> StoredResponse {
            StoredResponse(key: "4:\(tenant)|https|\(tenant).test|/o\(i)", variant: "", vary: [], tenant: tenant, status: 200,
                           headers: HeaderList([("Content-Type", "application/octet-stream")]), body: [UInt8](repeating: UInt8(i), count: 20_000),
                           freshness: Freshness(lifetime: 600, source: .maxAge, correctedInitialAge: 0, responseTime: 1_700_000_000,
                                                mustRevalidate: false, noCache: false, staleWhileRevalidate: nil, staleIfError: nil), tags: [])
        }
        let dir = tempDir()
        let s = try open(dir, size: 16 << 20, memory: 8 << 20)
        settle(s)
        s.setQuotas([:], lower: ["shop": 64 << 10])
        for i in 0..<10 {
            s.insert(object("shop", i), startedAt: nil)
            s.insert(object("blog", i), startedAt: nil)
            s.flush()
        }
        let d = s.disks[0]
        #expect(d.bytes(tenant: "shop") > 40_000 && d.bytes(tenant: "shop") <= 64 << 10, "\(d.bytes(tenant: "shop"))")
        #expect(d.bytes(tenant: "blog") >= 200_000, "\(d.bytes(tenant: "blog"))")
        #expect(s.memory.bytes(tenant: "shop") >= 200_000, "no memory quota: memory keeps them all")
        // No disk quota of its own: the memory quota (32 KiB) scaled by 16 MiB / 8 MiB bounds it.
        s.setQuotas(["news": 32 << 10], lower: [:])
        for i in 0..<10 { s.insert(object("news", i), startedAt: nil); s.flush() }
        #expect(d.bytes(tenant: "news") > 0 && d.bytes(tenant: "news") <= 64 << 10, "\(d.bytes(tenant: "news"))")
        s.close()
    }

    @Test func objectsSurviveReopeningFromDisk() throws {
        let dir = tempDir()
        var s = try open(dir)
        settle(s)
        for i in 0..<50 { s.insert(sample("k\(i)", body: Array(repeating: UInt8(i), count: 100 + i * 37)), startedAt: nil) }
        s.close()
        s = try open(dir)
        settle(s)
        #expect(s.memory.objectCount == 0)
        for i in 0..<50 {
            let r = get(s, "k\(i)", exchange: UInt64(i))
            #expect(r?.body == Array(repeating: UInt8(i), count: 100 + i * 37), "k\(i)")
        }
        #expect(s.memory.objectCount == 50, "disk hits are promoted to memory")
        #expect(get(s, "missing") == nil)
        s.close()
    }

    @Test func aCorruptByteIsAMissNeverWrongBytes() throws {
        let dir = tempDir()
        var s = try open(dir)
        settle(s)
        let body = Array(repeating: UInt8(65), count: 5000)
        s.insert(sample("victim", body: body), startedAt: nil)
        s.insert(sample("bystander", body: body), startedAt: nil)
        s.close()
        // Flip one byte in the middle of the first record's body.
        let path = dir + "/seg-0000.edge"
        let fd = Glibc.open(path, O_RDWR)
        var b: UInt8 = 0
        let at = off_t(SegmentHeader.size + 2000)
        _ = pread(fd, &b, 1, at); b ^= 0x20; _ = pwrite(fd, &b, 1, at)
        Glibc.close(fd)
        s = try open(dir)
        settle(s)
        #expect(get(s, "victim") == nil)
        #expect(s.tiers[0].readFailures == 1)
        #expect(get(s, "bystander", exchange: 2)?.body == body)
        s.close()
    }

    @Test func restartsReclaimNothing() throws {
        let dir = tempDir()
        let body = Array(repeating: UInt8(3), count: 100_000)
        var s = try open(dir, size: 4 << 20)          // four 1 MiB segments
        settle(s)
        for i in 0..<5 { s.insert(sample("first\(i)", body: body), startedAt: nil) }
        s.close()
        for run in 0..<10 {
            s = try open(dir, size: 4 << 20)
            settle(s)
            s.insert(sample("run\(run)", body: body), startedAt: nil)
            s.close()
        }
        s = try open(dir, size: 4 << 20)
        settle(s)
        #expect(s.disks[0].objectCount == 15)
        for i in 0..<5 { #expect(get(s, "first\(i)", exchange: UInt64(i))?.body == body ? true : false, "first\(i)") }
        for run in 0..<10 { #expect(get(s, "run\(run)", exchange: UInt64(100 + run))?.body == body ? true : false, "run\(run)") }
        s.close()
    }

    /// A torn tail: what is whole is kept, the torn record is a miss, the
    /// tail is cut off the segment the start continues, and new records
    /// follow the last whole one and read back after the next start.
    @Test func aTornTailIsCutAndWritingGoesOnAfterIt() throws {
        let dir = tempDir()
        var s = try open(dir)
        settle(s)
        for i in 0..<10 { s.insert(sample("t\(i)", body: Array(repeating: 1, count: 1000)), startedAt: nil) }
        s.close()
        let path = dir + "/seg-0000.edge"
        var st = stat()
        stat(path, &st)
        let torn = st.st_size - 500
        truncate(path, torn)
        s = try open(dir)
        settle(s)
        for i in 0..<9 { #expect(get(s, "t\(i)", exchange: UInt64(i))?.body.count == 1000) }
        #expect(get(s, "t9", exchange: 9) == nil)
        stat(path, &st)
        #expect(st.st_size < torn, "the torn record's bytes are gone")
        #expect(st.st_size > torn - 1500, "and only those")
        s.insert(sample("after", body: Array(repeating: 2, count: 1000)), startedAt: nil)
        s.close()
        s = try open(dir)
        settle(s)
        for i in 0..<9 { #expect(get(s, "t\(i)", exchange: UInt64(i))?.body.count == 1000, "t\(i)") }
        #expect(get(s, "t9", exchange: 9) == nil)
        #expect(get(s, "after", exchange: 10)?.body == Array(repeating: 2, count: 1000))
        s.close()
    }

    @Test func purgesHoldAcrossReopening() throws {
        let dir = tempDir()
        var s = try open(dir)
        settle(s)
        s.insert(sample("4:shop|https|shop.test|/a"), startedAt: nil)
        s.insert(sample("4:shop|https|shop.test|/b", tags: ["sale"]), startedAt: nil)
        s.insert(sample("4:shop|https|shop.test|/c", tags: []), startedAt: nil)
        s.insert(sample("4:shop|https|shop.test|/d", tags: []), startedAt: nil)
        settle(s)
        s.purge(.key("4:shop|https|shop.test|/a"), soft: false, now: 1_700_000_100)
        s.purge(.tag("sale", tenant: nil), soft: false, now: 1_700_000_100)
        s.purge(.prefix("4:shop|https|shop.test|/c"), soft: true, now: 1_700_000_100)
        s.close()
        s = try open(dir)
        settle(s)
        #expect(get(s, "4:shop|https|shop.test|/a") == nil)
        #expect(get(s, "4:shop|https|shop.test|/b", exchange: 2) == nil)
        let soft = try #require(get(s, "4:shop|https|shop.test|/c", exchange: 3))
        #expect(!soft.freshness.isFresh(now: 1_700_000_100), "a soft purge leaves it stale")
        #expect(get(s, "4:shop|https|shop.test|/d", exchange: 4) != nil)
        // Stored after the purges (a later run): not selected by them.
        s.insert(sample("4:shop|https|shop.test|/a", body: [1, 2, 3]), startedAt: nil)
        s.close()
        s = try open(dir)
        settle(s)
        #expect(get(s, "4:shop|https|shop.test|/a")?.body == [1, 2, 3])
        s.close()
    }

    /// The purge journal keeps what can still select a record on disk: a
    /// compaction (at 1,024 purges, then at twice what the last one kept)
    /// drops purges numbered at or below every directory's oldest record
    /// once they are older than the margin, and keeps the rest, across a
    /// restart too.
    @Test func theJournalKeepsOnlyPurgesThatCanStillSelectARecord() throws {
        let dir = tempDir()
        // 4 MiB: four 1 MiB segments.
        var s = try open(dir, size: 4 << 20)
        settle(s)
        let body = Array(repeating: UInt8(7), count: 100_000)
        s.insert(sample("live", body: [1]), startedAt: nil)
        settle(s)
        // A purge of "live" long ago (now: 1,000), then more, up past 1,024:
        // "live" is on disk and older than all of them, so none is dropped,
        // though the first is far older than the margin.
        s.purge(.key("live"), soft: false, now: 1_000)
        for i in 0..<1100 { s.purge(.key("gone\(i)"), soft: false, now: 2_000_000) }
        #expect(s.purgeList.withLock { $0.count } == 1101)
        #expect(s.compactAt == 2048, "nothing dropped at 1,024: the next attempt at twice that")
        // The ring turns over: every record from before is reclaimed.
        for i in 0..<60 { s.insert(sample("r\(i)", body: body), startedAt: nil); if i % 5 == 4 { s.flush() } }
        settle(s)
        #expect(get(s, "live") == nil)
        // Later purges (now: 3,000,000) up to the next compaction; one selects a record on disk.
        s.purge(.key("r59"), soft: false, now: 3_000_000)
        for i in 0..<1100 { s.purge(.key("later\(i)"), soft: false, now: 3_000_000) }
        let kept = s.purgeList.withLock { $0 }
        #expect(kept.count == 1101, "the 1,101 from before the turn are gone, the 1,101 after it kept")
        #expect(kept.allSatisfy { $0.time == 3_000_000 })
        let fd = Glibc.open(dir + "/purges", O_RDONLY)
        let onDisk = TieredStore.readAll(fd).withUnsafeBytes { PurgeJournal.decode($0) }
        Glibc.close(fd)
        #expect(onDisk.entries == kept, "the journal holds what the list holds")
        #expect(!FileManagerless.exists(dir + "/purges.new"))
        s.close()
        s = try open(dir, size: 4 << 20)
        settle(s)
        #expect(s.purgeList.withLock { $0.count } == 1101)
        #expect(get(s, "r59") == nil, "a kept purge holds after the restart")
        #expect(get(s, "r58", exchange: 2)?.body == body)
        s.close()
    }

    @Test func theRingReclaimsTheOldestSegment() throws {
        let dir = tempDir()
        // 4 MiB: four 1 MiB segments.
        var s = try open(dir, size: 4 << 20)
        settle(s)
        let body = Array(repeating: UInt8(7), count: 100_000)
        for i in 0..<60 { s.insert(sample("r\(i)", body: body), startedAt: nil); if i % 5 == 4 { s.flush() } }
        s.close()
        s = try open(dir, size: 4 << 20)
        settle(s)
        #expect(get(s, "r0") == nil, "the oldest went with its segment")
        #expect(get(s, "r59", exchange: 2)?.body == body)
        #expect(s.disks[0].bytesUsed <= 4 << 20)
        s.close()
    }

    /// A large body read from disk stays in the memory it was read into and
    /// keeps a weak link to its segment: the answer that read it sends it from
    /// the segment's pages (sendfile), later hits from memory; the page cache
    /// check says when the pages are gone. A small one is copied. A reclaim
    /// makes a new file and never writes the old one, so a send in progress
    /// (which holds the file) keeps its bytes; once none does, the file closes
    /// and the link is gone.
    @Test func aLargeDiskBodyIsSentFromItsSegmentWhileItLives() throws {
        let dir = tempDir()
        // 4 MiB: four 1 MiB segments.
        var s = try open(dir, size: 4 << 20)
        settle(s)
        let body = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        s.insert(sample("big", body: body), startedAt: nil)
        s.insert(sample("small", body: Array(repeating: 1, count: 1000)), startedAt: nil)
        s.close()
        // A reclaim a crash cut short left its new file: opening removes it.
        let stray = DiskStore.slotPath(dir, 1) + ".new"
        Glibc.close(Glibc.open(stray, O_CREAT | O_WRONLY, 0o600))
        s = try open(dir, size: 4 << 20)
        settle(s)
        #expect(!FileManagerless.exists(stray))
        guard let r = get(s, "big") else { Issue.record("no disk hit"); s.close(); return }
        let asRead = r.body == body
        #expect(asRead)
        #expect(r.bodyFD >= 0, "a large disk body keeps its segment")
        #expect(s.memory.lookup(key: "big", request: { HeaderList() })?.bodyFD == r.bodyFD, "memory's copy is the same")
        #expect(get(s, "small", exchange: 2)?.bodyFD == -1)
        // Just read: the answer sends it from the file; later hits write it from memory.
        #expect(r.bodyFile(0, body.count, justRead: false) == nil)
        do {
            guard let f = r.bodyFile(0, body.count, justRead: true) else { Issue.record("not sent from the segment"); s.close(); return }
            // (A Bool, so a failure does not print 100,000 bytes.)
            func fileHoldsBody() -> Bool {
                var b = [UInt8](repeating: 0, count: body.count)
                let n = b.withUnsafeMutableBytes { pread(f.fd, $0.baseAddress, body.count, off_t(f.offset)) }
                return n == body.count && b == body
            }
            #expect(fileHoldsBody())
            // Out of the page cache: the check says so (a send held back by its
            // client resumes from memory then: a send never waits for the disk).
            #expect(r.bodySegmentResident(0, body.count))
            var dropped = false
            for _ in 0..<100 where !dropped {
                _ = posix_fadvise(f.fd, 0, 0, Int32(POSIX_FADV_DONTNEED))
                dropped = !r.bodySegmentResident(0, body.count)
                if !dropped { usleep(20_000) }
            }
            #expect(dropped, "pages the page cache does not hold are seen as gone")
            #expect(fileHoldsBody())
            #expect(r.bodySegmentResident(0, body.count), "read back into the page cache")
            // Turn the ring over while a send holds the file: every slot is reclaimed.
            let filler = Array(repeating: UInt8(9), count: 100_000)
            for i in 0..<60 { s.insert(sample("f\(i)", body: filler), startedAt: nil); if i % 5 == 4 { s.flush() } }
            #expect(s.disks[0].locate("big", request: { HeaderList() }) == nil, "its slot was reclaimed")
            #expect(fileHoldsBody(), "a reclaimed file is not written again")
        }
        // No send holds it now: closed, and the body is sent from memory.
        #expect(r.bodyFD == -1 && r.bodyFile(0, body.count, justRead: true) == nil, "a body in memory does not keep a reclaimed file")
        let stillRight = r.body == body
        #expect(stillRight)
        s.close()
    }

    /// `second_request` admission: an object is written to disk on its first
    /// hit in memory, or when it is stored again after memory evicted it (the
    /// ghost remembers its key); one requested once is never written, one hit
    /// twice is written once, and one read back from disk is not written again.
    @Test func secondRequestAdmissionWritesOnlyWhatIsAskedForAgain() throws {
        func store(_ dir: String, memory: Int = 8 << 20) throws -> TieredStore {
            try TieredStore(memory: MemoryStore(capacity: memory), disks: [(dir, 16 << 20)], maxObjectBytes: 4 << 20, admission: .secondRequest)
        }
        let dir = tempDir()
        var s = try store(dir)
        settle(s)
        func writes() -> Int { s.flush(); return s.disks[0].writes.load(ordering: .relaxed) }
        for i in 0..<10 { s.insert(sample("k\(i)"), startedAt: nil) }
        #expect(writes() == 0, "requested once: nothing written")
        for i in 0..<3 { #expect(get(s, "k\(i)", exchange: UInt64(i)) != nil) }
        #expect(writes() == 3, "the first hit writes")
        _ = get(s, "k0", exchange: 20)
        #expect(writes() == 3, "a second hit does not write again")
        s.close()
        s = try store(dir)
        settle(s)
        for i in 0..<3 { #expect(get(s, "k\(i)", exchange: UInt64(30 + i))?.body == Array("hello, disk".utf8), "k\(i) came back from disk") }
        for i in 3..<10 { #expect(get(s, "k\(i)", exchange: UInt64(30 + i)) == nil, "k\(i) was asked for once") }
        _ = get(s, "k1", exchange: 40)
        #expect(writes() == 0, "read back from disk and hit in memory: not written again")
        s.close()
        // Stored, evicted unread (its key goes to the ghost), stored again: written at once.
        s = try store(tempDir(), memory: 1 << 20)
        settle(s)
        s.insert(sample("again", body: Array(repeating: 1, count: 20_000)), startedAt: nil)
        var i = 0
        while !s.memory.keys(prefix: "again").isEmpty && i < 1000 {
            s.insert(sample("f\(i)", body: Array(repeating: 2, count: 20_000)), startedAt: nil)
            i += 1
        }
        #expect(s.memory.keys(prefix: "again").isEmpty, "evicted")
        #expect(writes() == 0)
        s.insert(sample("again", body: Array(repeating: 1, count: 20_000)), startedAt: nil)
        #expect(writes() == 1, "stored a second time: written")
        s.close()
    }

    @Test func varyVariantsAreKeptApart() throws {
        let dir = tempDir()
        var s = try open(dir)
        settle(s)
        func variant(_ lang: String) -> String { CacheKey.variant(vary: ["accept-language"], request: HeaderList([("Accept-Language", lang)]))! }
        s.insert(sample("v", body: [1], vary: ["accept-language"], variant: variant("en")), startedAt: nil)
        s.insert(sample("v", body: [2], vary: ["accept-language"], variant: variant("de")), startedAt: nil)
        s.close()
        s = try open(dir)
        settle(s)
        let w = Wakes()
        func ask(_ lang: String, _ id: UInt64) -> [UInt8]? {
            let me = Waiter(worker: 0, exchange: id)
            for _ in 0..<100 {
                switch s.lookup(key: "v", request: { HeaderList([("Accept-Language", lang)]) }, waiter: me, waking: w) {
                case .found(let r), .disk(let r): return r.body
                case .absent, .diskStream: return nil
                case .pending: usleep(5000)
                }
            }
            return nil
        }
        #expect(ask("de", 1) == [2])
        #expect(ask("en", 2) == [1])
        #expect(ask("fr", 3) == nil)
        s.close()
    }

    /// A write that fails (the directory's segment cannot be written) takes
    /// the directory out of service; storing and looking up go on from memory.
    @Test func aFailingDirectoryLeavesMemoryServing() throws {
        let dir = tempDir()
        let s = try open(dir)
        settle(s)
        // One write opens a segment (a reclaim makes its file anew), then every
        // segment is made read-only underneath the store: writes fail with EBADF.
        s.insert(sample("first"), startedAt: nil)
        s.flush()
        s.disks[0].files.withLock { f in
            for i in f.fds.indices {
                let ro = Glibc.open(DiskStore.slotPath(dir, i), O_RDONLY)
                dup2(ro, f.fds[i].fd); Glibc.close(ro)
            }
        }
        s.insert(sample("m"), startedAt: nil)
        s.flush()
        #expect(s.tiers[0].inService == false && s.tiers[0].writeErrors >= 1)
        #expect(s.tiers[0].lastError != nil)
        #expect(get(s, "m")?.body == Array("hello, disk".utf8))
        s.insert(sample("n"), startedAt: nil)
        #expect(get(s, "n", exchange: 2) != nil)
        s.close()
    }
}

/// (Glibc's stat, without Foundation.)
enum FileManagerless {
    static func exists(_ path: String) -> Bool { var st = stat(); return stat(path, &st) == 0 }
}
