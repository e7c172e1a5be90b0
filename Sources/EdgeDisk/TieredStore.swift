// The cache of record: the memory tier (MemoryStore, S3-FIFO) as the hot set
// over disk directories (DiskStore), behind the one CacheStorage interface.
//
// - Every stored object (fill, derived coding, 304 update) goes to memory as
//   before and is queued for its directory (chosen by key hash); the write
//   happens on that directory's writer thread, never delaying the response.
//   Admission (`DiskAdmission`): everything the memory tier admits (`all`,
//   the default), or only what is requested a second time (`second_request`:
//   its first hit in memory, or a store of a key the memory tier's ghost
//   remembers), plus objects too large for memory either way, as long as the
//   directory's write queue has room (a write budget: a burst beyond it is
//   dropped, not queued without end).
// - A lookup memory cannot answer and a directory has indexed reads the
//   record at once when the page cache holds it (RWF_NOWAIT: never waiting;
//   `.disk`), and otherwise answers `.pending`: a reader thread reads and
//   checks the record (head and body checksums, key, variant; purges since
//   it was stored), promotes it to
//   memory (S3-FIFO admits it like any new object) with the base's derived
//   codings, leaves the answer for that exchange and wakes it; it asks again
//   and gets it (`.disk`, Cache-Status `detail=disk`).
// - Purges are written to each directory's journal (fdatasync'ed) before the
//   memory tier applies them, and checked against every record read from
//   disk: a record stored before a purge that selects it is never served as
//   fresh after a restart, whichever scope the purge had. Sequence numbers
//   order them: a record carries base + the purge epoch its request left
//   under, a purge base + its own epoch; each start takes a base past all
//   the previous run's (persisted in `seq` before anything is written).
//
// Concurrency and ownership: every method is safe from any worker thread.
// `purging` serializes purges (epochs and journal order agree); `handoff`
// and `purgeList` are Mutexes held for a step; the reader pool's queue is a
// Gate. Reader threads do the reads that may wait for the disk; a worker
// reads a record itself only when the page cache holds all of it (preadv2
// with RWF_NOWAIT, which never waits: anything else goes to the pool).
import Glibc
import Synchronization
import EdgeCache
import EdgeHTTP
import EdgeIO

/// Which stored objects the disk tier writes.
public enum DiskAdmission: String, Sendable, CaseIterable {
    /// Every object memory stores (nginx's way: a restart keeps everything served).
    case all
    /// Objects requested a second time (hit in memory, or stored again after
    /// memory evicted them): one-hit wonders never wear the disk.
    case secondRequest = "second_request"
}

public final class TieredStore: CacheStorage, @unchecked Sendable {
    public let memory: MemoryStore
    public let admission: DiskAdmission
    public let disks: [DiskStore]
    let seqBase: UInt64
    /// Each directory's journal (replaced by a compaction: under `purging`).
    var journalFDs: [Int32]
    /// The journal is compacted when it holds this many purges (doubling
    /// past what a compaction keeps; under `purging`).
    var compactAt = TieredStore.compactMin
    static let compactMin = 1024
    /// Purges younger than this (seconds) are kept by a compaction whatever
    /// the directories hold: a fill checked against the memory tier's purge
    /// log just before it is queued for writing is covered either way.
    static let compactMargin: Int64 = 60
    let purging = Mutex(())
    let purgeList: Mutex<[DurablePurge]>
    /// Disk answers waiting for the exchange that asked (taken by its next lookup).
    /// Keyed by exchange and key: an exchange may wait for several reads in
    /// turn (the slices of one answer), and each answer waits for its own lookup.
    let handoff = Mutex<[Handoff: (StorageLookup, Int64)]>([:])
    struct Handoff: Hashable { let waiter: Waiter; let key: String }
    let log: @Sendable (String) -> Void

    struct ReadJob {
        let disk: DiskStore
        let key: String
        let loc: Loc
        let variant: String
        let fields: HeaderList?
        let epoch: UInt64
        let waiter: Waiter
        let waking: any Waking
        /// Set: the base was read on the worker (its sequence number); only its
        /// derived codings are read, and nobody waits for them.
        var derivedAfter: UInt64? = nil
        /// A record too large for memory: only its head is read (BlockBody.swift).
        var headOnly = false
    }
    let readGate = Gate()
    var readQueue: [ReadJob] = []     // under readGate
    /// Blocks of large bodies the page cache did not hold (BlockBody.swift).
    var blockQueue: [(body: DiskBlockBody, block: Int, waiter: Waiter)] = []   // under readGate
    var stopping = false              // under readGate
    var readers: [OSThread] = []

    /// `disks`: (directory, size); the memory store is the pipeline's.
    /// `tenants`: the configured ones; records of others found on disk are
    /// dropped (and journaled as purged, so they never come back).
    public init(memory: MemoryStore, disks specs: [(path: String, size: Int64)], maxObjectBytes: Int, readerThreads: Int = 2,
                tenants: Set<String>? = nil, admission: DiskAdmission = .all, queueBudget: Int = 32 << 20,
                log: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.memory = memory
        self.admission = admission
        self.log = log
        var disks: [DiskStore] = []
        let forward = Forward()
        for s in specs {
            disks.append(try DiskStore(path: s.path, capacity: s.size, maxObjectBytes: maxObjectBytes, queueBudget: queueBudget, tenants: tenants,
                                       dropped: { names in forward.store?.dropTenants(names) }, log: log))
        }
        self.disks = disks
        largestObject = disks.reduce(memory.maxObjectBytes) { max($0, $1.maxObjectBytes) }
        // The journals: every purge is in each; the list is their union.
        var purges: [UInt64: DurablePurge] = [:]
        var fds: [Int32] = []
        var floor: UInt64 = 0
        for d in disks {
            let fd = open(d.path + "/purges", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw IOError("purge journal \(d.path)/purges") }
            let (entries, consumed) = TieredStore.readAll(fd).withUnsafeBytes { PurgeJournal.decode($0) }
            _ = ftruncate(fd, off_t(consumed))        // a torn tail goes
            _ = lseek(fd, 0, SEEK_END)
            for e in entries { purges[e.seq] = e; floor = max(floor, e.seq) }
            fds.append(fd)
            let seqFD = open(d.path + "/seq", O_RDONLY | O_CLOEXEC)
            if seqFD >= 0 {
                let text = String(decoding: TieredStore.readAll(seqFD), as: UTF8.self)
                Glibc.close(seqFD)
                floor = max(floor, UInt64(text.split(separator: "\n").first ?? "") ?? 0)
            }
        }
        journalFDs = fds
        purgeList = Mutex(purges.values.sorted { $0.seq < $1.seq })
        // Each run numbers within its own 2^32 (purge epochs count up from 0).
        seqBase = (floor >> 32 + 1) << 32
        for d in disks {
            let tmp = d.path + "/seq.new"
            let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw IOError("sequence file \(tmp)") }
            let text = Array("\(seqBase)\n".utf8)
            let ok = text.withUnsafeBytes { pwriteAll(fd, $0, 0) } == 0 && fsync(fd) == 0
            Glibc.close(fd)
            guard ok, rename(tmp, d.path + "/seq") == 0 else { throw IOError("sequence file \(d.path)/seq") }
        }
        forward.store = self
        if admission == .secondRequest && !disks.isEmpty {
            // A held object's first hit: written now, under the purge epoch of now
            // (a purge since it was stored would have removed it from memory).
            memory.onFirstHit = { r in forward.store?.toDisk(r, epoch: nil) }
        }
        for d in disks { d.start() }
        for _ in 0..<(disks.isEmpty ? 0 : max(1, readerThreads)) {
            readers.append(OSThread.spawn(name: "edge-disk-read") { [self] in readLoop() })
        }
    }

    /// Lets the loaders reach the store that owns them (set before they start).
    final class Forward: @unchecked Sendable { weak var store: TieredStore? }

    func dropTenants(_ names: Set<String>) {
        for t in names.sorted() {
            purging.withLock { _ in
                journal(.tenant(t), soft: false, now: wallClock().seconds, sync: true)
                memory.purges.record(.tenant(t))
            }
            log("edged: cache: dropped the disk objects of tenant \(t) (no longer configured)")
        }
    }

    static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        var off = 0
        while true {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(off)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buf[0..<n]
            off += n
        }
        return out
    }

    /// Writes what is queued and stops the disk threads (a graceful stop).
    public func close() {
        readGate.lock(); stopping = true; readGate.broadcast(); readGate.unlock()
        for t in readers { t.join() }
        readers = []
        for d in disks { d.close() }
        for fd in journalFDs { Glibc.close(fd) }
    }

    /// Waits until the queued writes are on disk.
    public func flush() { for d in disks { d.flush() } }

    @inline(__always) func disk(for key: String) -> DiskStore? {
        if disks.count < 2 { return disks.first }
        // (The hash of the base key, its bytes in place: indexHash(CacheKey.base(key)) without a copy.)
        return disks[Int(MemoryStore.keyHash(key, stopAtSeparator: true) % UInt64(disks.count))]
    }

    /// The same from the base key's hash (MemoryStore.keyHashes).
    @inline(__always) func disk(forBase h: UInt64) -> DiskStore? {
        disks.count < 2 ? disks.first : disks[Int(h % UInt64(disks.count))]
    }

    @inline(__always) func seq(_ epoch: UInt64?) -> UInt64 { seqBase + (epoch ?? memory.purges.epoch) }

    // MARK: lookups

    public func lookup(key: String, request: () -> HeaderList) -> StoredResponse? { memory.lookup(key: key, request: request) }

    public func lookupDerived(key: String, _ coding: ContentCoding, request: () -> HeaderList) -> StoredResponse? {
        memory.lookupDerived(key: key, coding, request: request)
    }

    public func lookup(key: String, request: () -> HeaderList, waiter: Waiter, waking: any Waking) -> StorageLookup {
        lookup(key: key, request: request, partial: false, waiter: waiter, waking: waking)
    }

    public func lookup(key: String, request: () -> HeaderList, partial: Bool, waiter: Waiter, waking: any Waking) -> StorageLookup {
        // One pass over the key for every hash below (the memory tier's shard
        // and index, the directory, the disk index).
        lookup(key: key, hashes: MemoryStore.keyHashes(key), request: request, partial: partial, waiter: waiter, waking: waking)
    }

    public func lookup(key: String, hashes: KeyHashes, request: () -> HeaderList, partial: Bool, waiter: Waiter, waking: any Waking) -> StorageLookup {
        if let r = memory.lookup(key: key, hashes: hashes, request: request) { return .found(r) }
        guard let d = disk(forBase: hashes.base) else { return .absent }
        if let answer = handoff.withLock({ $0.isEmpty ? nil : $0.removeValue(forKey: Handoff(waiter: waiter, key: key)) }) {
            return answer.0
        }
        // A streamed fill of it just completed: wait for its last write. (Asked
        // before the index: its last write indexes it before it stops waiting.)
        if d.waitIfFinishing(key, waiter, waking) { return .pending }
        guard let (loc, variant, fields) = d.locate(key, hash: hashes.full, request: request) else { return .absent }
        let epoch = memory.purges.epoch
        // Too large for memory, or a range of a body kept in blocks: its head
        // now, its body (the blocks the answer needs) as it is sent.
        if streams(key, loc, partial: partial) {
            switch d.readHead(loc, key: key, variant: variant, nowait: true) {
            case .head(let v, let head, let file):
                return streamAnswer(d, key, loc, variant, v, head, file, epoch: epoch, waking: waking)
            case .whole: break
            case .failed: return .absent
            case .wouldBlock:
                enqueue(ReadJob(disk: d, key: key, loc: loc, variant: variant, fields: fields, epoch: epoch, waiter: waiter, waking: waking,
                                headOnly: true))
                return .pending
            }
        }
        // What the page cache holds is read here without waiting (RWF_NOWAIT):
        // no trip through the reader pool and back for a hot record.
        switch d.read(loc, key: key, variant: variant, nowait: true) {
        case .record(let v, let bytes):
            guard let base = load(d, key, loc, variant, epoch: epoch, read: (v, bytes)) else { return .absent }
            // Its derived codings, when any is indexed, are read by the pool (they may wait for the disk).
            if !key.utf8.contains(0) && CacheKey.allDerived(key).contains(where: { d.contains($0) }) {
                enqueue(ReadJob(disk: d, key: key, loc: loc, variant: variant, fields: fields, epoch: epoch, waiter: waiter, waking: waking,
                                derivedAfter: base.seq))
            }
            return .disk(base.response)
        case .failed:
            return .absent
        case .wouldBlock:
            enqueue(ReadJob(disk: d, key: key, loc: loc, variant: variant, fields: fields, epoch: epoch, waiter: waiter, waking: waking))
            return .pending
        }
    }

    func enqueue(_ job: ReadJob) {
        readGate.lock()
        readQueue.append(job)
        readGate.broadcast()
        readGate.unlock()
    }

    func enqueueBlock(_ body: DiskBlockBody, _ block: Int, _ w: Waiter) {
        readGate.lock()
        blockQueue.append((body, block, w))
        readGate.broadcast()
        readGate.unlock()
    }

    func readLoop() {
        while true {
            readGate.lock()
            while readQueue.isEmpty && blockQueue.isEmpty && !stopping { readGate.wait(millis: 1000) }
            if stopping { readGate.unlock(); return }
            // A block first: a client is waiting in the middle of its answer.
            if !blockQueue.isEmpty {
                let b = blockQueue.removeFirst()
                readGate.unlock()
                b.body.load(b.block, b.waiter)
                continue
            }
            let job = readQueue.removeFirst()
            readGate.unlock()
            if let seq = job.derivedAfter { loadDerived(job, baseSeq: seq); continue }
            var answer: StorageLookup? = nil
            var head = DiskStore.HeadRead.whole
            if job.headOnly { head = job.disk.readHead(job.loc, key: job.key, variant: job.variant, nowait: false) }
            switch head {
            case .head(let v, let bytes, let file):
                answer = streamAnswer(job.disk, job.key, job.loc, job.variant, v, bytes, file, epoch: job.epoch, waking: job.waking)
            case .failed, .wouldBlock:
                answer = .absent      // (counted, logged and unindexed already: not read again whole)
            case .whole:
                // Any other job, or a large record without blocks (written before them): read whole.
                let (r, promoted) = read(job)
                // Promoted: the next lookup finds it in memory. Otherwise (a
                // miss, or too large for memory) the answer waits for it here.
                if !promoted { answer = r.map { .disk($0) } ?? .absent }
            }
            if let answer {
                let now = wallClock().seconds
                handoff.withLock { h in
                    // Answers nobody took (the exchange ended) do not pile up.
                    if h.count > 1024 { h = h.filter { now - $0.value.1 < 10 } }
                    h[Handoff(waiter: job.waiter, key: job.key)] = (answer, now)
                }
            }
            job.waking.wake(job.waiter)
        }
    }

    /// Is this record answered by its head and a body read as it is sent?
    /// One too large for memory, or one whose body may be kept in blocks when
    /// only part of it is asked for (`partial`: a record without blocks is
    /// then read whole after all), under a plain key (a derived coding, slice
    /// or POST answer is read whole as before).
    @inline(__always) func streams(_ key: String, _ loc: Loc, partial: Bool) -> Bool {
        (Int(loc.length) > memory.maxObjectBytes || partial && Int(loc.length) > DiskRecord.blockSize)
            && !key.utf8.contains(where: { $0 < 0x20 })
    }

    /// The answer for a checked head: the stored response (no body) and its
    /// body to read block by block; absent when a purge selects it.
    func streamAnswer(_ disk: DiskStore, _ key: String, _ loc: Loc, _ variant: String, _ v: RecordView, _ head: [UInt8],
                      _ file: SegmentFile, epoch: UInt64, waking: any Waking) -> StorageLookup {
        let decoded = head.withUnsafeBytes { p in DiskRecord.decode(key: key, meta: UnsafeRawBufferPointer(rebasing: p[v.metaRange]), storage: BodyStorage([])) }
        guard let r0 = decoded, r0.variant == variant, let r = purged(disk, key, loc, variant, r0, seq: v.seq),
              !memory.purges.purgedSince(epoch, r) else { return .absent }
        return .diskStream(r, DiskBlockBody(view: v, head: head, file: file, disk: disk, key: key, variant: variant, loc: loc,
                                            store: self, waking: waking))
    }

    /// A record read, checked and promoted to memory, with its base's
    /// derived codings; nil when it failed a check or a purge selects it.
    func read(_ job: ReadJob) -> (StoredResponse?, promoted: Bool) {
        guard let base = load(job.disk, job.key, job.loc, job.variant, epoch: job.epoch) else { return (nil, false) }
        loadDerived(job, baseSeq: base.seq)
        return (base.response, base.promoted)
    }

    /// The derived codings (gzip, br) stored for the base `job` read.
    func loadDerived(_ job: ReadJob, baseSeq: UInt64) {
        guard !job.key.utf8.contains(0) else { return }
        for dk in CacheKey.allDerived(job.key) {
            guard let (loc, variant, _) = job.disk.locate(dk, request: { job.fields ?? HeaderList() }) else { continue }
            // One made from an older base is not this one's (notBefore).
            _ = load(job.disk, dk, loc, variant, epoch: job.epoch, notBefore: baseSeq)
        }
    }

    /// Bodies from this size on stay in the memory they were read into (no
    /// copy into the stored response's block) with a weak link to their
    /// segment, which the answer that read one sends it from (sendfile, plain
    /// sockets: Client.swift's flushClient); smaller ones are copied.
    static let sendFromSegmentMin = StreamSpan.sendfileMin

    /// A record read and checked (checksums, key, variant), with the purges
    /// since it was stored applied (a hard one unindexes it).
    func decodeChecked(_ disk: DiskStore, _ key: String, _ loc: Loc, _ variant: String,
                       read: (RecordView, RecordBytes)? = nil) -> (response: StoredResponse, seq: UInt64)? {
        guard let (v, bytes) = read ?? disk.read(loc, key: key, variant: variant) else { return nil }
        // In ordinary memory, not the memory file the pipeline keeps a large fill
        // in: a memory file per promotion (memfd_create, write, mmap, and munmap
        // at eviction) halved the disk tier's hits per CPU-second with 64 KiB
        // objects churning through a smaller memory tier (14.4 k -> 26.8 k).
        let body = UnsafeRawPointer(bytes.base + v.bodyRange.lowerBound), n = v.bodyRange.count
        let large = n >= TieredStore.sendFromSegmentMin
        // (What malloc hands out for the record: its bytes, 8 of its own, rounded to 16.)
        let held = (bytes.count + 8 + 15) & ~15
        let storage = large ? BodyStorage(held: bytes, ownerBytes: held, base: body, count: n, segment: bytes.file,
                                          offset: bytes.offset + v.bodyRange.lowerBound)
                            : BodyStorage(Array(UnsafeRawBufferPointer(start: body, count: n)))
        if large { storage.charge(handles: heapBytes(storage, bytes)) }
        let decoded = bytes.withBytes { p in DiskRecord.decode(key: key, meta: UnsafeRawBufferPointer(rebasing: p[v.metaRange]), storage: storage) }
        guard let r0 = decoded, r0.variant == variant, let r = purged(disk, key, loc, variant, r0, seq: v.seq) else { return nil }
        return (r, v.seq)
    }

    /// `r` after the journal's purges since it was stored (`seq`): nil when a
    /// hard one selects it (it leaves the index), stale after a soft one.
    func purged(_ disk: DiskStore, _ key: String, _ loc: Loc, _ variant: String, _ r0: StoredResponse, seq: UInt64) -> StoredResponse? {
        var r = r0
        for p in purgeList.withLock({ $0 }) where p.selects(r, seq: seq) {
            if !p.soft { disk.forget(key, variant: variant, loc); return nil }
            r = r.markedStale(now: p.time)
        }
        return r
    }

    func load(_ disk: DiskStore, _ key: String, _ loc: Loc, _ variant: String, epoch: UInt64, notBefore: UInt64 = 0,
              read: (RecordView, RecordBytes)? = nil) -> (response: StoredResponse, seq: UInt64, promoted: Bool)? {
        guard let (r, seq) = decodeChecked(disk, key, loc, variant, read: read), seq >= notBefore else { return nil }
        let promoted = r.cost <= memory.maxObjectBytes && memory.insert(r, startedAt: epoch)
        // A purge while it was read.
        if !promoted && memory.purges.purgedSince(epoch, r) { return nil }
        return (r, seq, promoted)
    }

    // MARK: storing

    func toDisk(_ r: StoredResponse, epoch: UInt64?) {
        disk(for: r.key)?.enqueue(r, seq: seq(epoch))
    }

    /// Stores in memory (when it fits there) and queues for disk, unless a
    /// purge since `startedAt` selects it.
    @discardableResult
    public func insert(_ r: StoredResponse, startedAt: UInt64?) -> Bool {
        if r.cost > memory.maxObjectBytes {
            guard let d = disk(for: r.key), r.bodyCount <= d.maxObjectBytes else { return memory.insert(r, startedAt: startedAt) }
            if let s = startedAt, memory.purges.purgedSince(s, r) { return false }
            return d.enqueue(r, seq: seq(startedAt))
        }
        if admission == .secondRequest && !disks.isEmpty {
            var seenBefore = false
            guard memory.insert(r, startedAt: startedAt, holdForHit: true, seenBefore: &seenBefore) else { return false }
            if seenBefore { toDisk(r, epoch: startedAt) }
            return true
        }
        guard memory.insert(r, startedAt: startedAt) else { return false }
        toDisk(r, epoch: startedAt)
        return true
    }

    @discardableResult
    public func commit(_ fill: CacheFill) -> Bool {
        guard fill.complete, !fill.tooLarge else { return false }
        // Written as it arrived (StreamedFill.swift): its head ends it.
        if let sink = fill.sink { return sink.finish(fill.stored(BodyStorage([])), startedAt: fill.startedAt) }
        return insert(fill.stored(memory.storage(for: fill.exactBody)), startedAt: fill.startedAt)
    }

    public func abort(_ fill: CacheFill) { fill.sink?.abort() }

    /// A fill too large for memory, under a plain key, is written to its
    /// directory as it arrives (StreamedFill.swift).
    public func fillSink(for fill: CacheFill, length: Int) -> (any FillSink)? {
        guard length > memory.maxObjectBytes, !fill.key.utf8.contains(where: { $0 < 0x20 }), let d = disk(for: fill.key) else { return nil }
        return d.openStream(fill.stored(BodyStorage([])), length: length, seq: seq(fill.startedAt), purges: memory.purges, store: self)
    }

    @discardableResult
    public func update(_ r: StoredResponse, startedAt: UInt64?) -> Bool { insert(r, startedAt: startedAt) }

    public func storage(for body: [UInt8]) -> BodyStorage { memory.storage(for: body) }

    /// The largest of the tiers' (fixed when the store opens: every miss reads it).
    public var maxObjectBytes: Int { largestObject }
    let largestObject: Int

    // MARK: removing

    /// Writes a purge to every journal (`sync`: and to the device) and to
    /// the list disk reads are checked against.
    func journal(_ scope: PurgeScope, soft: Bool, now: Int64, sync: Bool) {
        guard !disks.isEmpty else { return }
        let p = DurablePurge(seq: seq(memory.purges.epoch + 1), time: now, soft: soft, scope: scope)
        let bytes = PurgeJournal.encode(p)
        for fd in journalFDs {
            let end = lseek(fd, 0, SEEK_END)
            if bytes.withUnsafeBytes({ pwriteAll(fd, $0, Int(end)) }) != 0 { log("edged: cache: writing the purge journal failed: \(String(cString: strerror(errno)))") }
            if sync { fdatasync(fd) }
        }
        let count = purgeList.withLock { $0.append(p); return $0.count }
        if count >= compactAt { compactJournal(now: now) }
    }

    /// Drops the purges no record on any directory can be selected by (a
    /// purge selects records numbered below it: one at or below every
    /// directory's oldest record, written or queued, selects nothing), and
    /// any younger than `compactMargin`, from the list disk reads are
    /// checked against and from the journals. Each journal is rewritten
    /// beside itself, synced, and renamed over the old one, so a crash
    /// leaves one or the other whole. Nothing is dropped while a directory
    /// is loading. Called under `purging`.
    func compactJournal(now: Int64) {
        var floor = UInt64.max
        for d in disks {
            guard let s = d.oldestSeq else { return }
            floor = min(floor, s)
        }
        let all = purgeList.withLock { $0 }
        let keep = all.filter { $0.seq > floor || $0.time > now - TieredStore.compactMargin }
        compactAt = max(TieredStore.compactMin, keep.count * 2)
        guard keep.count < all.count else { return }
        var bytes: [UInt8] = []
        for p in keep { bytes += PurgeJournal.encode(p) }
        for (i, d) in disks.enumerated() {
            let path = d.path + "/purges", tmp = path + ".new"
            let fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { log("edged: cache: compacting the purge journal \(path) failed: \(String(cString: strerror(errno)))"); return }
            guard bytes.withUnsafeBytes({ pwriteAll(fd, $0, 0) }) == 0, fdatasync(fd) == 0, rename(tmp, path) == 0 else {
                log("edged: cache: compacting the purge journal \(path) failed: \(String(cString: strerror(errno)))")
                Glibc.close(fd)
                unlink(tmp)
                return
            }
            // The rename itself is made durable with the directory.
            let dir = open(d.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dir >= 0 { fsync(dir); Glibc.close(dir) }
            Glibc.close(journalFDs[i])
            journalFDs[i] = fd
        }
        purgeList.withLock { list in
            // (Purges appended meanwhile: none, `purging` is held; the list is replaced whole.)
            list = keep
        }
        log("edged: cache: purge journal compacted: \(all.count) -> \(keep.count) purges")
    }

    @discardableResult
    public func purge(_ scope: PurgeScope, soft: Bool, now: Int64) -> Int {
        purging.withLock { _ in
            journal(scope, soft: soft, now: now, sync: true)
            var n = memory.purge(scope, soft: soft, now: now)
            // A hard URL purge unindexes at once; every other purge is applied
            // as disk records are read (their count is the memory tier's).
            if case .key(let k) = scope, !soft, let d = disk(for: k) {
                for dk in CacheKey.allDerived(k) { d.remove(key: dk) }
                if d.remove(key: k) && n == 0 { n = 1 }
            }
            return n
        }
    }

    /// Unsafe-method invalidation (RFC 9111 §4.4): journaled, not synced
    /// (a crash may forget it; it was never a promise to the operator).
    @discardableResult
    public func remove(key: String) -> Int {
        var n = memory.remove(key: key)
        if let d = disk(for: key), d.contains(key) || d.contains(Slices.key(key, 0)) || d.directory.loading {
            purging.withLock { _ in
                journal(.key(String(CacheKey.base(key))), soft: false, now: wallClock().seconds, sync: false)
                memory.purges.record(.key(String(CacheKey.base(key))))
            }
            for k in [key] + CacheKey.allDerived(key) where d.remove(key: k) { n += 1 }
        }
        return n
    }

    @discardableResult
    public func remove(tenant: String) -> Int {
        purging.withLock { _ in
            journal(.tenant(tenant), soft: false, now: wallClock().seconds, sync: true)
            memory.purges.record(.tenant(tenant))
        }
        for d in disks { d.remove(tenant: tenant) }
        return memory.remove(tenant: tenant)
    }

    // MARK: the rest is the memory tier's

    public var purges: PurgeLog { memory.purges }
    public func variants(key: String) -> [StoredResponse] { memory.variants(key: key) }
    public func keys(prefix: String) -> [String] { memory.keys(prefix: prefix) }
    public func noteNotStored(key: String, reason: String) { memory.noteNotStored(key: key, reason: reason) }
    public func noteNotStored(key: String, _ why: NotStored, status: Int) { memory.noteNotStored(key: key, why, status: status) }
    public func noteNotStored(key: String, hashes: KeyHashes, _ why: NotStored, status: Int) {
        memory.noteNotStored(key: key, hashes: hashes, why, status: status)
    }
    public func whyNotStored(key: String) -> String? { memory.whyNotStored(key: key) }
    public func bytes(tenant: String) -> Int { memory.bytes(tenant: tenant) }
    public var bytesUsed: Int { memory.bytesUsed }
    public var objectCount: Int { memory.objectCount }
    public var storedBytes: Int { memory.storedBytes }
    public var capacity: Int { memory.capacity }

    /// Quotas apply to each tier: memory as given, each directory the same
    /// share of its size as of the memory tier's.
    public func setQuotas(_ q: [String: Int]) { setQuotas(q, lower: [:]) }

    /// Memory quotas, and disk quotas (all directories together, shared by
    /// capacity, as keys spread over them); a tenant without a disk quota of
    /// its own gets its memory quota scaled by disk size over memory size.
    public func setQuotas(_ q: [String: Int], lower: [String: Int]) {
        memory.setQuotas(q)
        let total = Double(max(1, disks.reduce(Int64(0)) { $0 + $1.capacity }))
        for d in disks {
            let scale = Double(d.capacity) / Double(max(1, memory.capacity))
            var mine = q.mapValues { Int(Double($0) * scale) }
            for (tenant, bytes) in lower { mine[tenant] = Int(Double(bytes) * Double(d.capacity) / total) }
            d.setQuotas(mine)
        }
    }

    public func lowerBytes(tenant: String) -> Int { disks.reduce(0) { $0 + $1.bytes(tenant: tenant) } }

    /// Reads on the caller's thread and does not promote: explain looks, it
    /// does not change what is cached. The same checks as a served read.
    public func lowerTierLookup(key: String, request: () -> HeaderList) -> (tier: String, response: StoredResponse)? {
        guard memory.lookup(key: key, request: request) == nil, let d = disk(for: key),
              let (loc, variant, _) = d.locate(key, request: request),
              let r = decodeChecked(d, key, loc, variant) else { return nil }
        return ("disk", r.response)
    }

    public var tiers: [StorageTierStatus] {
        disks.map { d in
            let dir = d.directory
            return StorageTierStatus(name: "disk", path: d.path, inService: dir.inService, loading: dir.loading, lastError: dir.lastError,
                                     objects: d.objectCount, bytes: d.bytesUsed, capacity: Int(d.capacity),
                                     writes: d.writes.load(ordering: .relaxed), writeDrops: d.writeDrops.load(ordering: .relaxed),
                                     writeErrors: d.writeErrors.load(ordering: .relaxed), reads: d.reads.load(ordering: .relaxed),
                                     readFailures: d.readFailures.load(ordering: .relaxed), readBytes: d.readBytes.load(ordering: .relaxed),
                                     streamedWrites: d.streamedWrites.load(ordering: .relaxed),
                                     loadedObjects: d.loadedObjects.load(ordering: .relaxed),
                                     loadMillis: d.loadMillis.load(ordering: .relaxed), pageCacheReads: d.pageCacheReads.load(ordering: .relaxed),
                                     sentFromPages: d.sentFromPages.load(ordering: .relaxed), fillHolds: d.fillHolds.load(ordering: .relaxed))
        }
    }
}
