// One cache directory: a ring of segment files and the in-memory index over
// them (see Record.swift for the formats, TieredStore.swift for how the
// pipeline reaches it).
//
// Layout: `seg-NNNN.edge`, `slots` files of `segmentBytes` each. Records are
// appended to the open segment; when it is full the writer moves to the
// slot with the oldest generation and reclaims it whole (its index entries
// go, and a new file with a new header is renamed over the slot's), so space
// is reused FIFO with no per-object files and no fragmentation. A reclaimed
// file is never written again: a response still being sent from its pages
// (sendfile) holds its descriptor, and the kernel frees it when that ends.
// A start continues the newest segment after its last valid record, so
// restarts reclaim nothing.
//
// Index: per shard a `[UInt64: Loc]`. A key without Vary maps fnv1a(key) to
// its record; a key with Vary maps fnv1a(key) to a marker naming its Vary
// list (interned), and fnv1a(key, variant) to each variant's record. A Loc is
// 16 bytes (offset, length, slot, tenant, vary list, kind); with the
// dictionary's 8-byte key and its load factor that is 32-43 bytes per object.
// Hash collisions are harmless: every read checks the record's key and variant.
//
// Concurrency and ownership: the writer thread alone appends, rolls and
// reclaims, and alone changes `gens` and `files` (under `files`' lock); it
// first scans the segment it continues, whose entries replace any indexed
// (they are the newest). The loader thread scans the others and only adds
// entries if the slot was not reclaimed meanwhile and the key is not
// already indexed (it scans newest first, and the writer's entries are
// newer than any it finds); reader threads (the
// TieredStore's pool) read with pread, never through a mapping, so a slot
// reclaimed under a read gives a record that fails its checks (a miss), not
// a fault. Shard locks are held for a table step only; no lock is held
// across I/O. A descriptor is a SegmentFile, closed when the last holder
// lets go: the slot table, a read in progress, or a response whose body is
// sent from the file.
//
// Writes never delay a request: the pipeline enqueues a stored response and
// returns; a full queue (`queueBudget` bytes) drops the write (counted).
// fsync policy: the open segment is fdatasync'ed once a second when written
// and at each roll; a power loss can lose the last second of objects or tear
// them (their checksums then fail: misses), never make a wrong answer.
// Faults: a failed write (ENOSPC, EIO) or a missing directory takes the
// directory out of service (logged, counted, in `status`); the memory tier
// and the origins keep serving, and the writer tries again after `retryMillis`.
import Glibc
import CEdgeIO
import Synchronization
import EdgeCache
import EdgeHTTP
import EdgeIO

/// Writes all of `p` at `offset`; 0, or the errno that stopped it.
func pwriteAll(_ fd: Int32, _ p: UnsafeRawBufferPointer, _ offset: Int) -> Int32 {
    var done = 0
    while done < p.count {
        let k = pwrite(fd, p.baseAddress! + done, p.count - done, off_t(offset + done))
        if k < 0 && errno == EINTR { continue }
        if k < 0 { return errno }
        if k == 0 { return EIO }
        done += k
    }
    return 0
}

/// One segment file's descriptor, closed when the last holder lets go: the
/// slot table, a read, a sendfile call in progress (bodies in memory refer to
/// it weakly, so a reclaimed file's space goes back as soon as no call holds it).
public final class SegmentFile: PageCacheFile, @unchecked Sendable {
    public let fd: Int32
    static let page = Int(sysconf(Int32(_SC_PAGESIZE)))

    init(_ fd: Int32) { self.fd = fd }
    deinit { Glibc.close(fd) }

    /// cachestat(2) over the pages the range touches. (Not mincore: that needs
    /// the segments mapped, and with them mapped POSIX_FADV_DONTNEED left pages
    /// in the page cache now and then.) False where the kernel cannot say
    /// (before 6.5): the body is sent from memory.
    public func resident(offset: Int, count: Int) -> Bool {
        guard count > 0, offset >= 0 else { return false }
        let page = SegmentFile.page
        let start = offset & ~(page - 1)
        let pages = (offset + count - start + page - 1) / page
        return edge_cached_pages(fd, Int64(start), Int64(pages * page)) == Int64(pages)
    }
}

/// A record as read: memory of its own holding all its bytes, and (weakly)
/// the file it was read from, whose pages the answer that read it sends its
/// body from with sendfile (the reclaim of a slot never writes into a file
/// again, see `roll`).
public final class RecordBytes: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    public let count: Int
    /// (Weak: the memory tier keeps these bytes; it must not keep a reclaimed file.)
    public private(set) weak var file: SegmentFile?
    /// Where in the file the record starts.
    public let offset: Int
    init(count: Int, file: SegmentFile, offset: Int) {
        base = UnsafeMutableRawPointer.allocate(byteCount: max(1, count), alignment: 16)
        self.count = count; self.file = file; self.offset = offset
    }
    deinit { base.deallocate() }
    @inline(__always) public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(UnsafeRawBufferPointer(start: base, count: count)) }
    }
}

/// One index entry (16 bytes).
struct Loc {
    var offset: UInt32
    var length: UInt32
    var slot: UInt16
    var tenant: UInt16
    var vary: UInt16
    /// 0: a record; 1: a Vary marker (offset, length and slot unused).
    var kind: UInt8
}

/// FNV-1a over a key, continued over a variant after a 0x02 byte.
@inline(__always) func indexHash(_ key: String, variant: String? = nil) -> UInt64 {
    var h = MemoryStore.keyHash(key, stopAtSeparator: false)
    if let variant {
        h = (h ^ 2) &* 0x100000001b3
        h = MemoryStore.keyHash(variant, stopAtSeparator: false, seed: h)
    }
    return h
}

/// A directory's state as stats and metrics show it.
public struct DiskDirectory: Sendable {
    public var path: String
    public var inService: Bool
    public var loading: Bool
    public var lastError: String?
}

public final class DiskStore: @unchecked Sendable {
    public let path: String
    public let capacity: Int64
    let segmentBytes: Int
    let slots: Int
    /// Records larger than this are not written.
    public let maxObjectBytes: Int
    let queueBudget: Int
    let retryMillis: Int64

    struct Shard {
        var table: [UInt64: Loc] = [:]
        var bytes = 0
        var objects = 0
        var tenantBytes: [UInt16: Int] = [:]
    }
    final class ShardBox: Sendable { let m = Mutex(Shard()) }
    let shards: [ShardBox]

    /// Values numbered in the order first seen (an index entry holds the number).
    struct Interned<T: Hashable> {
        var values: [T] = []
        var ids: [T: UInt16] = [:]
        init(_ first: [T] = []) { for v in first { _ = id(v) } }
        mutating func id(_ v: T) -> UInt16? {
            if let id = ids[v] { return id }
            guard values.count < Int(UInt16.max) else { return nil }
            values.append(v)
            ids[v] = UInt16(values.count - 1)
            return UInt16(values.count - 1)
        }
    }
    struct Names {
        var tenants = Interned<String>()
        /// Vary lists; 0 is the empty one.
        var vary = Interned<[String]>([[]])
        var quotas: [String: Int] = [:]
    }
    let names = Mutex(Names())

    struct Files {
        var fds: [SegmentFile]
        var gens: [UInt64]
        /// The lowest sequence number of a record in each slot (UInt64.max:
        /// none known): what the purge journal still has to answer for.
        var minSeq: [UInt64]
    }
    let files: Mutex<Files>

    struct Health {
        var inService = true
        var loading = true
        var lastError: String?
        var retryAt: Int64 = 0
    }
    let health = Mutex(Health())
    /// Called with a line to log (the directory's faults and recoveries).
    let log: @Sendable (String) -> Void

    public let writes = Atomic<Int>(0)
    /// Of the writes, fills written as they streamed in (StreamedFill.swift).
    public let streamedWrites = Atomic<Int>(0)
    public let writeDrops = Atomic<Int>(0)
    public let writeErrors = Atomic<Int>(0)
    public let reads = Atomic<Int>(0)
    /// Bytes read from the segments (records, heads, and blocks of bodies sent as they are read).
    public let readBytes = Atomic<Int>(0)
    /// Reads that found a torn, corrupt or replaced record (a miss, logged).
    public let readFailures = Atomic<Int>(0)
    /// Reads a worker made itself, the page cache holding the whole record (RWF_NOWAIT).
    public let pageCacheReads = Atomic<Int>(0)
    /// Of the bodies read block by block (too large for memory, or a range),
    /// the bytes sent to plain sockets from the segments' pages (sendfile), not copied.
    public let sentFromPages = Atomic<Int>(0)
    /// Times a fill too large for memory found the write queue full and waited for room (StreamedFill.swift).
    public let fillHolds = Atomic<Int>(0)
    public let loadedObjects = Atomic<Int>(0)
    /// Bytes the index rebuild read (SegmentLoading.swift).
    public let scannedBytes = Atomic<Int>(0)
    public let loadMillis = Atomic<Int>(0)
    let scansLeft = Atomic<Int>(2)          // the loader's and the writer's resume
    let loadStarted = monotonicMillis()

    struct Job {
        enum Kind {
            case record(StoredResponse)
            /// A fill written as it streams in (StreamedFill.swift): its region is
            /// taken, its pieces are written into it, its head is written again whole.
            case open(StreamRegion), piece(StreamRegion, [UInt8]), end(StreamRegion, StoredResponse), drop(StreamRegion)
        }
        let kind: Kind
        let seq: UInt64
        /// What it charges the write queue.
        let size: Int
        /// What a record charges the write queue (and is checked against maxObjectBytes).
        static func size(_ r: StoredResponse) -> Int { r.bodyCount + r.headCount + r.key.utf8.count + 128 }
    }
    let queueGate = Gate()
    var queue: [Job] = []            // under queueGate
    var queuedBytes = 0              // under queueGate
    var writing = false              // under queueGate: a job taken and not yet written
    var writingSeq = UInt64.max      // under queueGate: the lowest sequence number among those
    var stopping = false             // under queueGate
    /// Fills streaming in (opened, not yet ended or dropped; StreamedFill.swift).
    var streams: [ObjectIdentifier: StreamRegion] = [:]   // under queueGate
    /// Keys of streamed fills complete and queued for their last write, with
    /// the lookups waiting for them to be indexed (StreamedFill.swift).
    var finishing: [String: [(Waiter, any Waking)]] = [:]   // under queueGate
    let finishingCount = Atomic<Int>(0)
    /// Microseconds the writer waits before each job: tests' stand-in for a slow device.
    public let writeDelayMicros = Atomic<Int>(0)
    /// Streamed fills held back by a full queue, woken when it has room again
    /// (or the directory fails): StreamedFill.swift.
    var roomWaiters: [(Waiter, any Waking)] = []   // under queueGate
    var threads: [OSThread] = []

    /// Opens (creating what is missing) a directory of `capacity` bytes.
    /// Segments are capacity/16, from 1 MiB to 64 MiB.
    /// Tenants whose records the loader indexes (nil: all); the names of
    /// others it found go to `dropped` when it is done (tenants removed from
    /// the config while edged was stopped).
    let allowed: Set<String>?
    let dropped: @Sendable (Set<String>) -> Void

    public init(path: String, capacity: Int64, maxObjectBytes: Int, queueBudget: Int = 32 << 20, retryMillis: Int64 = 30_000,
                tenants: Set<String>? = nil, dropped: @escaping @Sendable (Set<String>) -> Void = { _ in },
                log: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.path = path
        allowed = tenants
        self.dropped = dropped
        self.capacity = capacity
        self.log = log
        self.queueBudget = queueBudget
        self.retryMillis = retryMillis
        segmentBytes = Int(min(64 << 20, max(1 << 20, capacity / 16)))
        slots = max(2, Int(capacity / Int64(segmentBytes)))
        self.maxObjectBytes = min(maxObjectBytes, segmentBytes - SegmentHeader.size - DiskRecord.fixedSize - (DiskRecord.maxKey + 4096))
        shards = (0..<16).map { _ in ShardBox() }
        let (fds, gens) = try DiskStore.openSlots(path, slots)
        files = Mutex(Files(fds: fds, gens: gens, minSeq: gens.map { _ in .max }))
    }

    static func slotPath(_ dir: String, _ i: Int) -> String {
        var n = String(i)
        while n.utf8.count < 4 { n = "0" + n }
        return dir + "/seg-" + n + ".edge"
    }

    /// Opens every slot's file and reads its generation (0: empty or invalid).
    static func openSlots(_ dir: String, _ slots: Int) throws -> ([SegmentFile], [UInt64]) {
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw IOError("cache directory \(dir)") }
        var fds: [SegmentFile] = [], gens: [UInt64] = []
        for i in 0..<slots {
            // A reclaim a crash cut short leaves its new file beside the slot's.
            unlink(slotPath(dir, i) + ".new")
            let fd = open(slotPath(dir, i), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            if fd < 0 { throw IOError("cache segment \(slotPath(dir, i))") }
            var h = [UInt8](repeating: 0, count: SegmentHeader.size)
            let n = h.withUnsafeMutableBytes { pread(fd, $0.baseAddress, SegmentHeader.size, 0) }
            fds.append(SegmentFile(fd))
            gens.append(n == SegmentHeader.size ? h.withUnsafeBytes { SegmentHeader.parse($0) } ?? 0 : 0)
        }
        // Slots beyond a smaller size than before are dropped.
        var i = slots
        while unlink(slotPath(dir, i)) == 0 { i += 1 }
        return (fds, gens)
    }

    /// Starts the writer and the loader (the index fills while requests are served).
    public func start() {
        // The writer continues the newest segment (none: it takes slot 0).
        let (gens, startSlot) = files.withLock { f -> ([UInt64], Int) in
            (f.gens, f.gens.indices.max { f.gens[$0] < f.gens[$1] }!)
        }
        threads.append(OSThread.spawn(name: "edge-disk-write") { [self] in writerLoop(startSlot: startSlot) })
        threads.append(OSThread.spawn(name: "edge-disk-load") { [self] in load(gens, skip: startSlot) })
    }

    // MARK: names and shards

    @inline(__always) func shard(_ h: UInt64) -> Int { Int((h >> 32) % 16) }

    func tenantID(_ t: String) -> UInt16? { names.withLock { $0.tenants.id(t) } }
    func varyID(_ v: [String]) -> UInt16? { names.withLock { $0.vary.id(v) } }

    @inline(__always) static func account(_ s: inout Shard, _ l: Loc, _ sign: Int) {
        guard l.kind == 0 else { return }
        s.bytes += sign * Int(l.length)
        s.objects += sign
        s.tenantBytes[l.tenant, default: 0] += sign * Int(l.length)
    }

    // MARK: lookups

    /// Where the record for `key` that the request selects is, if indexed:
    /// its location, its variant, and the request's fields when they were
    /// needed (Vary). `request` is called only for a key with Vary.
    func locate(_ key: String, request: () -> HeaderList) -> (loc: Loc, variant: String, fields: HeaderList?)? {
        locate(key, hash: indexHash(key), request: request)
    }

    /// The same with the key's index hash made already (`indexHash(key)`).
    func locate(_ key: String, hash h: UInt64, request: () -> HeaderList) -> (loc: Loc, variant: String, fields: HeaderList?)? {
        guard let e = shards[shard(h)].m.withLock({ $0.table[h] }) else { return nil }
        if e.kind == 0 { return (e, "", nil) }
        let vary = names.withLock { $0.vary.values[Int(e.vary)] }
        let fields = request()
        guard let v = CacheKey.variant(vary: vary, request: fields) else { return nil }
        let hv = indexHash(key, variant: v)
        guard let l = shards[shard(h)].m.withLock({ $0.table[hv] }), l.kind == 0 else { return nil }
        return (l, v, fields)
    }

    /// Is anything indexed under `key`?
    func contains(_ key: String) -> Bool {
        let h = indexHash(key)
        return shards[shard(h)].m.withLock { $0.table[h] != nil }
    }

    /// Reads a record (on a reader thread): its view and bytes, when the head
    /// checks, it is `key`'s `variant`, and its body checks; nil otherwise.
    func read(_ l: Loc, key: String, variant: String) -> (RecordView, RecordBytes)? {
        if case .record(let v, let b) = read(l, key: key, variant: variant, nowait: false) { return (v, b) }
        return nil
    }

    enum ReadOutcome { case record(RecordView, RecordBytes), failed, wouldBlock }

    /// Whether this directory's file system answers RWF_NOWAIT reads (cleared the first time it says it cannot).
    let nowaitWorks = Atomic<Bool>(true)

    /// Reads and checks a record. `nowait` (on a worker): only when the page
    /// cache holds all of it (preadv2 with RWF_NOWAIT), else `.wouldBlock` and
    /// the reader pool reads it.
    func read(_ l: Loc, key: String, variant: String, nowait: Bool) -> ReadOutcome {
        if nowait && !nowaitWorks.load(ordering: .relaxed) { return .wouldBlock }
        guard let file = files.withLock({ $0.fds.count > Int(l.slot) ? $0.fds[Int(l.slot)] : nil }) else { return .failed }
        let n = Int(l.length)
        let buf = RecordBytes(count: n, file: file, offset: Int(l.offset))
        let got = max(0, readAt(file.fd, buf.base, n, Int(l.offset), nowait: nowait))
        if nowait {
            // Partly or not in the page cache (or the file system cannot say): the pool reads it.
            guard got == n else { return .wouldBlock }
            pageCacheReads.add(1, ordering: .relaxed)
        }
        // (Bytes past what was read are never looked at: got < n fails the checks below.)
        if got < n { memset(buf.base + got, 0, n - got) }
        reads.add(1, ordering: .relaxed)
        readBytes.add(got, ordering: .relaxed)
        let ok: RecordView? = buf.withBytes { p in
            guard got == n, case .record(let v) = DiskRecord.parse(p, limit: n), v.length == n,
                  p[v.keyRange].elementsEqual(key.utf8), DiskRecord.bodyChecks(p, v) else { return nil }
            return v
        }
        guard let v = ok else {
            recordFailed(key, variant, l)
            return .failed
        }
        return .record(v, buf)
    }

    /// Drops the entry for a record that failed (if it is still that one).
    func forget(_ key: String, variant: String, _ l: Loc) {
        let h = indexHash(key)
        let hv = variant.isEmpty ? h : indexHash(key, variant: variant)
        shards[shard(h)].m.withLock { s in
            guard let e = s.table[hv], e.slot == l.slot, e.offset == l.offset else { return }
            s.table[hv] = nil
            DiskStore.account(&s, e, -1)
        }
    }

    /// Unindexes `key` (its Vary marker or record); true if there was one.
    @discardableResult func remove(key: String) -> Bool {
        let h = indexHash(key)
        return shards[shard(h)].m.withLock { s in
            guard let e = s.table.removeValue(forKey: h) else { return false }
            DiskStore.account(&s, e, -1)
            return true
        }
    }

    /// Unindexes every record of a tenant.
    func remove(tenant: String) {
        guard let id = names.withLock({ $0.tenants.ids[tenant] }) else { return }
        for sh in shards {
            sh.m.withLock { s in
                for (h, l) in s.table where l.tenant == id && l.kind == 0 { s.table[h] = nil; DiskStore.account(&s, l, -1) }
                s.tenantBytes[id] = nil
            }
        }
    }

    public var bytesUsed: Int { shards.reduce(0) { $0 + $1.m.withLock { $0.bytes } } }
    public var objectCount: Int { shards.reduce(0) { $0 + $1.m.withLock { $0.objects } } }
    func bytes(tenantID id: UInt16) -> Int { shards.reduce(0) { $0 + $1.m.withLock { $0.tenantBytes[id] ?? 0 } } }
    public func bytes(tenant: String) -> Int { names.withLock { $0.tenants.ids[tenant] }.map { bytes(tenantID: $0) } ?? 0 }

    public var directory: DiskDirectory {
        health.withLock { DiskDirectory(path: path, inService: $0.inService, loading: $0.loading, lastError: $0.lastError) }
    }

    func setQuotas(_ q: [String: Int]) { names.withLock { $0.quotas = q } }

    // MARK: writing

    /// Queues `r` to be written (false: dropped: out of service, too large,
    /// over its tenant's disk quota, or the queue is full).
    @discardableResult func enqueue(_ r: StoredResponse, seq: UInt64) -> Bool {
        let size = Job.size(r)
        guard size <= maxObjectBytes, health.withLock({ $0.inService }) else { return false }
        if let q = names.withLock({ $0.quotas[r.tenant] }), bytes(tenant: r.tenant) + size > q { return false }
        return enqueue(Job(kind: .record(r), seq: seq, size: size))
    }

    /// Queues a job within the write budget (`budgeted`: else always, for jobs
    /// that free rather than hold memory). False: dropped.
    func enqueue(_ job: Job, budgeted: Bool = true) -> Bool {
        queueGate.lock()
        defer { queueGate.unlock() }
        guard !stopping, !budgeted || queuedBytes + job.size <= queueBudget else {
            if budgeted { writeDrops.add(1, ordering: .relaxed) }
            return false
        }
        queue.append(job)
        queuedBytes += job.size
        queueGate.broadcast()
        return true
    }

    enum Enqueued { case queued, full, closed }

    /// Queues a job within the write budget, or, when the queue is full,
    /// leaves `waiter` to be woken once it has room (nil: none). Not counted
    /// as a drop: the caller holds the job and asks again.
    func enqueue(_ job: Job, orWait waiter: (Waiter, any Waking)?) -> Enqueued {
        queueGate.lock()
        defer { queueGate.unlock() }
        guard !stopping else { return .closed }
        guard queuedBytes + job.size <= queueBudget else {
            if let waiter { roomWaiters.append(waiter) }
            return .full
        }
        queue.append(job)
        queuedBytes += job.size
        queueGate.broadcast()
        return .queued
    }

    /// Waits until everything queued is written and synced (a graceful stop).
    public func flush() {
        queueGate.lock()
        while !queue.isEmpty || writing { queueGate.wait(millis: 50) }
        queueGate.unlock()
        let fds = files.withLock { $0.fds }
        for f in fds { fdatasync(f.fd) }
    }

    /// Stops the threads (after a flush) and closes the files.
    public func close() {
        flush()
        queueGate.lock(); stopping = true; queueGate.broadcast(); queueGate.unlock()
        for t in threads { t.join() }
        threads = []
        // (Each closes when the last response sent from it lets go.)
        files.withLock { $0.fds = [] }
    }

    func writerLoop(startSlot: Int) {
        var slot = startSlot
        var offset = resume(startSlot, gen: files.withLock { $0.gens[startSlot] })   // 0: the slot is not open for writing yet
        var dirty = false
        var lastSync = monotonicMillis()
        var lastCheck = lastSync
        while true {
            queueGate.lock()
            while queue.isEmpty && !stopping { queueGate.wait(millis: 1000); if queue.isEmpty { break } }
            if stopping && queue.isEmpty { queueGate.unlock(); break }
            let batch = queue
            queue.removeAll()
            writing = !batch.isEmpty
            writingSeq = batch.reduce(UInt64.max) { min($0, $1.seq) }
            queueGate.unlock()

            let now = monotonicMillis()
            if now - lastCheck >= 1000 {
                lastCheck = now
                checkDirectory(now)
            }
            let inService = health.withLock { h -> Bool in
                if !h.inService && now >= h.retryAt { h.inService = true; offset = 0; log("edged: cache \(path): trying the directory again") }
                return h.inService
            }
            for job in batch where inService {
                if case let d = writeDelayMicros.load(ordering: .relaxed), d > 0 { usleep(UInt32(d)) }
                let ok: Bool
                if case .record(let r) = job.kind { ok = write(r, seq: job.seq, &slot, &offset) } else { ok = writeStream(job.kind, &slot, &offset) }
                if !ok { break }
                dirty = true
            }
            // Out of service: a streamed fill's end or drop is not written, and lets go all the same.
            if !inService {
                for job in batch {
                    if case .end(let g, let r) = job.kind { forgetStream(g); endFinishing(r.key) }
                    if case .drop(let g) = job.kind { forgetStream(g) }
                }
            }
            if dirty && (now - lastSync >= 1000 || batch.isEmpty) {
                if let f = files.withLock({ $0.fds.isEmpty ? nil : $0.fds[slot] }) { fdatasync(f.fd) }
                dirty = false
                lastSync = now
            }
            queueGate.lock()
            queuedBytes = max(0, queuedBytes - batch.reduce(0) { $0 + $1.size })
            writing = false
            writingSeq = .max
            let room = roomWaiters
            roomWaiters = []
            queueGate.broadcast()
            queueGate.unlock()
            for (w, waking) in room { waking.wake(w) }
        }
    }

    /// Where a record of `total` bytes goes: at `offset` in `slot`, rolling
    /// to the next slot first when this one has no room. False when the
    /// directory failed (it is then out of service).
    func reserve(_ total: Int, _ slot: inout Int, _ offset: inout Int) -> Bool {
        if offset == 0 || offset + total > segmentBytes {
            if offset != 0 {
                fdatasync(files.withLock { $0.fds[slot] }.fd)
                slot = next(after: slot)
            }
            guard roll(slot) else { return false }
            offset = SegmentHeader.size
        }
        return true
    }

    /// Appends one record, rolling to the next slot when this one is full.
    /// False when the directory failed (it is then out of service).
    func write(_ r: StoredResponse, seq: UInt64, _ slot: inout Int, _ offset: inout Int) -> Bool {
        guard let tenant = tenantID(r.tenant), let vary = varyID(r.vary) else { return true }
        let sum = r.withBody { BodyChecksum.of($0) }
        let (head, pad) = DiskRecord.encodeHead(r, seq: seq, bodyLength: r.bodyCount, checksum: sum)
        let total = head.count + r.bodyCount + pad
        guard total <= segmentBytes - SegmentHeader.size else { return true }
        guard reserve(total, &slot, &offset) else { return false }
        let file = files.withLock { $0.fds[slot] }
        let fd = file.fd
        let zeros = [UInt8](repeating: 0, count: 8)
        var n = head.withUnsafeBytes { pwriteAll(fd, $0, offset) }
        if n == 0 { n = r.withBody { pwriteAll(fd, $0, offset + head.count) } }
        if n == 0 { n = zeros.withUnsafeBytes { pwriteAll(fd, UnsafeRawBufferPointer(rebasing: $0[..<pad]), offset + head.count + r.bodyCount) } }
        guard n == 0 else { fail("writing segment \(slot): \(String(cString: strerror(n)))"); return false }
        writes.add(1, ordering: .relaxed)
        files.withLock { f in if f.minSeq.count > slot { f.minSeq[slot] = min(f.minSeq[slot], seq) } }
        index(r, Loc(offset: UInt32(offset), length: UInt32(total), slot: UInt16(slot), tenant: tenant, vary: 0, kind: 0), vary: vary)
        offset += total
        return true
    }

    /// Puts a record just written in the index (the newest for its key and variant).
    func index(_ r: StoredResponse, _ loc: Loc, vary: UInt16) {
        let tenant = loc.tenant
        let h = indexHash(r.key)
        shards[shard(h)].m.withLock { s in
            if r.vary.isEmpty {
                if let old = s.table.updateValue(loc, forKey: h) { DiskStore.account(&s, old, -1) }
            } else {
                let marker = Loc(offset: 0, length: 0, slot: UInt16.max, tenant: tenant, vary: vary, kind: 1)
                if let old = s.table.updateValue(marker, forKey: h) { DiskStore.account(&s, old, -1) }
                if let old = s.table.updateValue(loc, forKey: indexHash(r.key, variant: r.variant)) { DiskStore.account(&s, old, -1) }
            }
            DiskStore.account(&s, loc, 1)
        }
    }

    /// The slot written after `slot`: the one with the oldest generation.
    func next(after slot: Int) -> Int {
        files.withLock { f in f.gens.indices.filter { $0 != slot }.min { f.gens[$0] < f.gens[$1] } ?? slot }
    }

    /// Reclaims `slot` for writing: its entries leave the index, and a new
    /// file with a header of the next generation is made beside the slot's,
    /// synced, and renamed over it (the directory synced too, so a power loss
    /// cannot bring back what the reclaim dropped). The old file is never
    /// written again: a response still sent from its pages keeps its bytes.
    func roll(_ slot: Int) -> Bool {
        let gen = files.withLock { f -> UInt64 in
            let g = (f.gens.max() ?? 0) + 1
            f.gens[slot] = g
            f.minSeq[slot] = .max
            return g
        }
        let s16 = UInt16(slot)
        for sh in shards {
            sh.m.withLock { s in
                for (h, l) in s.table where l.kind == 0 && l.slot == s16 { s.table[h] = nil; DiskStore.account(&s, l, -1) }
            }
        }
        let final = DiskStore.slotPath(path, slot), tmp = final + ".new"
        let fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { fail("making segment \(slot): \(String(cString: strerror(errno)))"); return false }
        let file = SegmentFile(fd)
        let header = SegmentHeader.encode(generation: gen, created: wallClock().seconds)
        let n = header.withUnsafeBytes { pwriteAll(fd, $0, 0) }
        guard n == 0 else { unlink(tmp); fail("writing segment \(slot)'s header: \(String(cString: strerror(n)))"); return false }
        guard fdatasync(fd) == 0, rename(tmp, final) == 0 else {
            let e = errno
            unlink(tmp)
            fail("replacing segment \(slot): \(String(cString: strerror(e)))")
            return false
        }
        let dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { fsync(dir); Glibc.close(dir) }
        files.withLock { $0.fds[slot] = file }
        return true
    }

    /// The lowest sequence number a record this directory may still read can
    /// have (written, queued, or being written), or nil while it is loading
    /// (a slot not scanned yet could hold anything). A purge numbered at or
    /// below it selects nothing here (DurablePurge.selects).
    public var oldestSeq: UInt64? {
        guard !health.withLock({ $0.loading }) else { return nil }
        let written = files.withLock { $0.minSeq.min() ?? .max }
        queueGate.lock()
        let queued = streams.values.reduce(queue.reduce(writingSeq) { min($0, $1.seq) }) { min($0, $1.seq) }
        queueGate.unlock()
        return min(written, queued)
    }

    /// Takes the directory out of service until `retryMillis` from now.
    func fail(_ why: String) {
        writeErrors.add(1, ordering: .relaxed)
        let retry = retryMillis
        health.withLock { h in
            h.inService = false
            h.lastError = why
            h.retryAt = monotonicMillis() + retry
        }
        queueGate.lock()
        queue.removeAll()
        queuedBytes = 0
        // Streams lose the pieces just dropped: none of them is finished (the writer's, as `fail` is).
        let lost = Array(streams.values)
        for g in lost { g.dead = true }
        streams.removeAll()
        let waiting = finishing.values.flatMap { $0 } + roomWaiters
        finishing.removeAll()
        finishingCount.store(0, ordering: .relaxed)
        roomWaiters = []
        queueGate.unlock()
        for g in lost { g.close() }
        for (w, waking) in waiting { waking.wake(w) }
        log("edged: cache \(path): \(why); out of service, serving from memory and the origins; retrying in \(retry / 1000)s")
    }

    /// Once a second: is the directory still there? If it went, its index
    /// is dropped and the directory is made again with fresh files.
    func checkDirectory(_ now: Int64) {
        var st = stat()
        guard stat(path, &st) != 0 else { return }
        for sh in shards { sh.m.withLock { $0 = Shard() } }
        fail("the directory is gone")
        guard let (fds, gens) = try? DiskStore.openSlots(path, slots) else { return }
        files.withLock { f in
            // (The old files close when the last read or response of theirs ends.)
            f.fds = fds
            f.gens = gens.map { _ in 0 }
            f.minSeq = gens.map { _ in .max }
        }
    }
}
