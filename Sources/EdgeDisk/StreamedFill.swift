// A fill too large for the memory tier, written to disk as it arrives: the
// fill's body never sits in memory whole, only the piece being gathered
// (256 KiB) and the pieces queued for the writer (within the write budget).
//
// The writer takes the record's region in the open segment at once and
// writes its head there marked open (Record.swift: a scan steps over an
// open record, a read never accepts one), with the region's last byte, so
// the records appended after it in the same segment stay reachable whatever
// happens to this one. The pieces are written into the region as they
// come, each block's checksum taken on the way; at the end the head is
// written again, whole and no longer open, and the record is indexed. A fill
// that stops short, is purged, or loses its slot to a reclaim is dropped:
// its region stays an open record until the slot is reclaimed. A crash at
// any point leaves an open record (skipped) or a whole one.
//
// The fill's collapsed followers read the body from the region while it is
// written (RegionFill): once a piece is in the file, the writer publishes its
// blocks' checksums and wakes the readers waiting for them; each reader
// (a DiskBlockBody of its own) reads and checks a block as for any disk hit.
// A reader that needs a block the fill will never write (dropped, purged,
// reclaimed, the directory failed) is told so (`.failed`), as followers of a
// leader whose origin broke off are: the pipeline asks the origin for the rest
// of the answer (EdgeProxy/Resume.swift) or ends it short.
//
// A full write queue holds the fill back instead of dropping it: the piece
// that did not fit waits in the sink, and the fill takes no more bytes (the
// pipeline stops reading the origin) until the writer has room and wakes it.
// So a disk slower than the origin slows the fill to the disk's pace; it
// never loses the object, nor cuts off the followers reading it.
//
// Concurrency and ownership: a DiskFillSink belongs to its fill's worker; a
// StreamRegion is made by that worker and then changed by the writer thread
// alone (its `var`s), the queue's lock handing each job over. What readers
// see of it (`visible`) is behind its own Mutex, written by the writer and
// read by readers on any worker, held for the copy of a few fields; the
// readers it wakes are woken after it is released.
import Glibc
import Synchronization
import EdgeCache
import EdgeHTTP
import EdgeIO

/// A streamed record's place and progress (the writer's).
final class StreamRegion: @unchecked Sendable {
    let openHead: [UInt8]
    let length: Int
    let padding: Int
    let seq: UInt64
    var total: Int { openHead.count + length + padding }
    // The writer's:
    var file: SegmentFile?
    var slot = 0
    var gen: UInt64 = 0
    var offset = 0
    var written = 0
    var checksums: [UInt32] = []
    var dead = false

    init(openHead: [UInt8], length: Int, padding: Int, seq: UInt64) {
        self.openHead = openHead; self.length = length; self.padding = padding; self.seq = seq
    }

    /// What the fill's followers may read: the blocks written so far.
    struct Visible {
        var file: SegmentFile?
        /// Where the body starts in the file, and the record's place.
        var bodyOffset = 0
        var loc = Loc(offset: 0, length: 0, slot: 0, tenant: 0, vary: 0, kind: 0)
        /// One per block written (pieces are whole blocks, the last may end short).
        var checksums: [UInt32] = []
        /// No more blocks will come (the record is whole, or it was given up).
        var over = false
        var waiting: [(Waiter, any Waking)] = []
    }
    let visible = Mutex(Visible())

    enum Block { case ready(SegmentFile, bodyOffset: Int, loc: Loc), wait, failed }

    /// A reader's block `i`: in the file (its checksum published), or not yet (`w`
    /// is woken when more is written), or never.
    func block(_ i: Int, _ w: Waiter, _ waking: any Waking) -> Block {
        visible.withLock { v in
            if i < v.checksums.count, let f = v.file { return .ready(f, bodyOffset: v.bodyOffset, loc: v.loc) }
            if v.over { return .failed }
            v.waiting.append((w, waking))
            return .wait
        }
    }

    /// Writer: blocks up to `checksums` are in the file; their readers go on.
    func publish() {
        let c = checksums, f = file, at = offset + openHead.count
        let l = Loc(offset: UInt32(offset), length: UInt32(total), slot: UInt16(slot), tenant: 0, vary: 0, kind: 0)
        let woken = visible.withLock { v -> [(Waiter, any Waking)] in
            if v.file == nil { v.file = f; v.bodyOffset = at; v.loc = l }
            if c.count > v.checksums.count { v.checksums.append(contentsOf: c[v.checksums.count...]) }
            let w = v.waiting
            v.waiting = []
            return w
        }
        for (w, waking) in woken { waking.wake(w) }
    }

    /// No more blocks will be written: readers past them end short.
    func close() {
        let woken = visible.withLock { v -> [(Waiter, any Waking)] in
            v.over = true
            let w = v.waiting
            v.waiting = []
            return w
        }
        for (w, waking) in woken { waking.wake(w) }
    }
}

/// A streamed fill as its collapsed followers read it: the head now, and for
/// each follower a reader of the blocks as they are written.
final class RegionFill: SharedFill, @unchecked Sendable {
    let response: StoredResponse
    let region: StreamRegion
    let disk: DiskStore
    weak var store: TieredStore?
    var length: Int { region.length }

    init(response: StoredResponse, region: StreamRegion, disk: DiskStore, store: TieredStore?) {
        self.response = response; self.region = region; self.disk = disk; self.store = store
    }

    func reader(waking: any Waking) -> any StreamedBody {
        DiskBlockBody(region: region, disk: disk, key: response.key, variant: response.variant, store: store, waking: waking)
    }
}

/// The fill's side: gathers the body into pieces of whole blocks and queues them.
final class DiskFillSink: FillSink, @unchecked Sendable {
    static let pieceSize = 4 * DiskRecord.blockSize
    let disk: DiskStore
    let region: StreamRegion
    let purges: PurgeLog
    var piece: [UInt8] = []
    /// A whole piece the full queue did not take yet (the fill is held back meanwhile).
    var held: [UInt8]?
    var appended = 0
    var closed = false
    let followers: (any SharedFill)?

    init(disk: DiskStore, region: StreamRegion, purges: PurgeLog, head: StoredResponse, store: TieredStore?) {
        self.disk = disk; self.region = region; self.purges = purges
        followers = RegionFill(response: head, region: region, disk: disk, store: store)
        piece.reserveCapacity(DiskFillSink.pieceSize)
    }

    deinit { if !closed { disk.dropStream(region) } }

    /// Bytes held here now (the piece being gathered, and one the queue did not take yet).
    var buffered: Int { piece.count + (held?.count ?? 0) }

    func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !closed else { return false }
        guard appended + bytes.count <= region.length else { abort(); return false }
        appended += bytes.count
        var at = 0
        while at < bytes.count {
            let take = min(bytes.count - at, DiskFillSink.pieceSize - piece.count)
            piece.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + take)]))
            at += take
            if piece.count == DiskFillSink.pieceSize && !send() { abort(); return false }
        }
        return true
    }

    /// Queues the piece gathered, or holds it while the queue is full (false:
    /// the directory is out of service, or a piece is held already: the
    /// caller did not wait for `ready`).
    func send() -> Bool {
        guard held == nil, disk.inService else { return false }
        let p = piece
        piece = []
        piece.reserveCapacity(DiskFillSink.pieceSize)
        switch disk.enqueue(pieceJob(p), orWait: nil) {
        case .queued: return true
        case .full:
            held = p
            disk.fillHolds.add(1, ordering: .relaxed)
            return true
        case .closed: return false
        }
    }

    /// The writer's job for a piece of this fill's body.
    @inline(__always) func pieceJob(_ p: [UInt8]) -> DiskStore.Job {
        DiskStore.Job(kind: .piece(region, p), seq: region.seq, size: p.count)
    }

    func ready(_ w: Waiter, _ waking: any Waking) -> Bool {
        guard let p = held, !closed else { return true }
        // Out of service or stopping: given up (the next append fails: not stored).
        guard disk.inService else { abort(); return true }
        switch disk.enqueue(pieceJob(p), orWait: (w, waking)) {
        case .queued: held = nil; return true
        case .full: return false
        case .closed: abort(); return true
        }
    }

    func finish(_ r: StoredResponse, startedAt: UInt64) -> Bool {
        guard !closed else { return false }
        guard appended == region.length, !purges.purgedSince(startedAt, r), disk.inService else { abort(); return false }
        // The last piece, and one still held, go past the budget (at most two
        // pieces; refusing them would waste the body queued before them).
        for p in [held ?? [], piece] where !p.isEmpty {
            guard disk.enqueue(pieceJob(p), budgeted: false) else { abort(); return false }
        }
        held = nil
        piece = []
        closed = true
        // Lookups of the key from now until it is indexed wait for it (the
        // fill's collapsed followers, woken as it ends, would otherwise miss
        // and fetch it all again).
        disk.beginFinishing(r.key)
        // (Unbudgeted: it holds no body, and refusing it would waste the body queued before it.)
        guard disk.enqueue(DiskStore.Job(kind: .end(region, r), seq: region.seq, size: 0), budgeted: false) else {
            disk.endFinishing(r.key)
            disk.dropStream(region)
            return false
        }
        return true
    }

    func abort() {
        guard !closed else { return }
        closed = true
        piece = []
        held = nil
        disk.dropStream(region)
    }
}

extension DiskStore {
    var inService: Bool { health.withLock { $0.inService } }

    /// A sink for a fill of `r` (its head) with a body `length` bytes long,
    /// written as it arrives; nil when this directory cannot take it (too
    /// large, out of service, over its tenant's quota, a full queue).
    func openStream(_ r: StoredResponse, length: Int, seq: UInt64, purges: PurgeLog, store: TieredStore? = nil) -> DiskFillSink? {
        guard length > DiskRecord.blockSize else { return nil }
        let size = length + r.headCount + r.key.utf8.count + 128
        guard size <= maxObjectBytes, inService else { return nil }
        if let q = names.withLock({ $0.quotas[r.tenant] }), bytes(tenant: r.tenant) + size > q { return nil }
        let zeros = [UInt32](repeating: 0, count: DiskRecord.blocks(length))
        let (head, pad) = DiskRecord.encodeHead(r, seq: seq, bodyLength: length, checksum: .blocks(zeros), open: true)
        let region = StreamRegion(openHead: head, length: length, padding: pad, seq: seq)
        guard region.total <= segmentBytes - SegmentHeader.size else { return nil }
        queueGate.lock()
        streams[ObjectIdentifier(region)] = region
        queueGate.unlock()
        guard enqueue(Job(kind: .open(region), seq: seq, size: head.count)) else { dropStream(region); return nil }
        return DiskFillSink(disk: self, region: region, purges: purges, head: r, store: store)
    }

    /// The fill is over without a record: the writer lets its region go.
    func dropStream(_ g: StreamRegion) {
        if !enqueue(Job(kind: .drop(g), seq: g.seq, size: 0), budgeted: false) { forgetStream(g) }
    }

    func beginFinishing(_ key: String) {
        queueGate.lock()
        if finishing[key] == nil { finishing[key] = []; finishingCount.add(1, ordering: .relaxed) }
        queueGate.unlock()
    }

    /// The key's last write is done (indexed, or not): its waiting lookups go on.
    func endFinishing(_ key: String) {
        queueGate.lock()
        let waiting = finishing.removeValue(forKey: key)
        if waiting != nil { finishingCount.subtract(1, ordering: .relaxed) }
        queueGate.unlock()
        for (w, waking) in waiting ?? [] { waking.wake(w) }
    }

    /// A lookup, before it looks in the index: if the key's streamed fill is
    /// about to be indexed, it waits (true: woken when it is).
    func waitIfFinishing(_ key: String, _ w: Waiter, _ waking: any Waking) -> Bool {
        guard finishingCount.load(ordering: .relaxed) > 0 else { return false }
        queueGate.lock()
        defer { queueGate.unlock() }
        guard finishing[key] != nil else { return false }
        finishing[key]!.append((w, waking))
        return true
    }

    /// The stream no longer holds back the journal's compaction (oldestSeq).
    func forgetStream(_ g: StreamRegion) {
        queueGate.lock()
        streams[ObjectIdentifier(g)] = nil
        queueGate.unlock()
        g.close()
    }

    /// Is the region still there to write into (not dropped, its slot not reclaimed)?
    func live(_ g: StreamRegion) -> Bool {
        guard !g.dead, g.file != nil else { return false }
        return files.withLock { $0.gens.count > g.slot && $0.gens[g.slot] == g.gen }
    }

    /// The writer's part of a streamed fill. False when the directory failed.
    func writeStream(_ kind: Job.Kind, _ slot: inout Int, _ offset: inout Int) -> Bool {
        switch kind {
        case .record:
            return true
        case .open(let g):
            guard reserve(g.total, &slot, &offset) else { return false }
            let file = files.withLock { $0.fds[slot] }
            // The open head, and the region's last byte: the file reaches past the
            // region even before its body is in (a scan needs all of a record there).
            var n = g.openHead.withUnsafeBytes { pwriteAll(file.fd, $0, offset) }
            if n == 0 { n = [UInt8(0)].withUnsafeBytes { pwriteAll(file.fd, $0, offset + g.total - 1) } }
            guard n == 0 else { fail("writing segment \(slot): \(String(cString: strerror(n)))"); return false }
            g.file = file
            g.slot = slot
            g.gen = files.withLock { f in
                if f.minSeq.count > slot { f.minSeq[slot] = min(f.minSeq[slot], g.seq) }
                return f.gens[slot]
            }
            g.offset = offset
            offset += g.total
            g.publish()
            return true
        case .piece(let g, let bytes):
            guard live(g), g.written + bytes.count <= g.length else { g.dead = true; g.close(); return true }
            let n = bytes.withUnsafeBytes { pwriteAll(g.file!.fd, $0, g.offset + g.openHead.count + g.written) }
            guard n == 0 else { fail("writing segment \(g.slot): \(String(cString: strerror(n)))"); return false }
            // Pieces are whole blocks (the last may end short): a checksum per block.
            bytes.withUnsafeBytes { p in
                var i = 0
                while i < p.count {
                    let end = min(i + DiskRecord.blockSize, p.count)
                    g.checksums.append(CRC32C.update(0, UnsafeRawBufferPointer(rebasing: p[i..<end])))
                    i = end
                }
            }
            g.written += bytes.count
            g.publish()
            return true
        case .end(let g, let r):
            defer { forgetStream(g); endFinishing(r.key) }
            guard live(g), g.written == g.length, let tenant = tenantID(r.tenant), let vary = varyID(r.vary) else { g.dead = true; return true }
            let (head, _) = DiskRecord.encodeHead(r, seq: g.seq, bodyLength: g.length, checksum: .blocks(g.checksums))
            guard head.count == g.openHead.count else { g.dead = true; return true }
            let n = head.withUnsafeBytes { pwriteAll(g.file!.fd, $0, g.offset) }
            guard n == 0 else { fail("writing segment \(g.slot): \(String(cString: strerror(n)))"); return false }
            writes.add(1, ordering: .relaxed)
            streamedWrites.add(1, ordering: .relaxed)
            index(r, Loc(offset: UInt32(g.offset), length: UInt32(g.total), slot: UInt16(g.slot), tenant: tenant, vary: 0, kind: 0), vary: vary)
            g.file = nil
            return true
        case .drop(let g):
            g.dead = true
            g.file = nil
            forgetStream(g)
            return true
        }
    }
}
