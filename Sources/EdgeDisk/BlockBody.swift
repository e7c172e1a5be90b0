// A disk object too large for the memory tier, sent as it is read: the
// lookup reads and checks only the record's head (key, meta, block table),
// and the answer's body is read one block (64 KiB) at a time as the client
// takes it, each block checked against its checksum before a byte of it is
// copied out or, to a plain socket, sent from the pages just checked
// (sendfile). A Range reads just the blocks it covers; a large hit holds one
// block of memory, not the object.
//
// Reads never wait on a worker: a block the page cache holds is read there
// (preadv2 with RWF_NOWAIT); any other is read by the TieredStore's reader
// pool, which wakes the exchange through its mailbox (phase .stream asks
// again). A block that fails its check ends the answer short (the client
// never gets a wrong byte), is logged and counted, and the record leaves the
// index (the next request is a miss).
//
// The same reader serves a collapsed follower of a fill still being written
// (StreamedFill.swift): its blocks and their checksums come from the fill's
// region as the writer publishes them; a block not written yet waits.
//
// Concurrency and ownership: one exchange reads a DiskBlockBody, on its
// worker; a reader thread fills its buffer while `state.loading` is set, and
// the worker touches the buffer only while it is not. A region's reader
// learns its file and place on its worker, before it first hands a block to
// a reader thread (the pool's queue lock orders the two). The body holds its
// SegmentFile while it lives: a reclaim renames a new file over the slot, and
// this one's pages stay until the answer ends.
import Glibc
import CEdgeIO
import Synchronization
import EdgeCache
import EdgeHTTP
import EdgeIO

extension DiskStore {
    enum HeadRead {
        /// The checked head of a record whose body has blocks: its view, the
        /// head's bytes (from the record's start), the file.
        case head(RecordView, [UInt8], SegmentFile)
        /// A record without blocks (from before them): read it whole.
        case whole
        case failed, wouldBlock
    }

    /// The largest head read at first; a longer one is read again whole.
    static let headGuess = 16 * 1024

    /// Reads and checks a record's head without its body. `nowait` (on a
    /// worker): only from the page cache, else `.wouldBlock`.
    func readHead(_ l: Loc, key: String, variant: String, nowait: Bool) -> HeadRead {
        if nowait && !nowaitWorks.load(ordering: .relaxed) { return .wouldBlock }
        guard let file = files.withLock({ $0.fds.count > Int(l.slot) ? $0.fds[Int(l.slot)] : nil }) else { return .failed }
        var want = min(Int(l.length), DiskStore.headGuess)
        while true {
            var buf = [UInt8](repeating: 0, count: want)
            let got = buf.withUnsafeMutableBytes { readAt(file.fd, $0.baseAddress!, want, Int(l.offset), nowait: nowait) }
            if nowait && got != want { return .wouldBlock }
            readBytes.add(max(0, got), ordering: .relaxed)
            guard got == want else { return headFailed(key, variant, l) }
            switch buf.withUnsafeBytes({ DiskRecord.parse($0, limit: Int(l.length)) }) {
            case .needMore(let n) where n > want && n <= Int(l.length):
                want = n
            case .record(let v):
                guard v.length == Int(l.length), !v.open, buf[v.keyRange].elementsEqual(key.utf8) else { return headFailed(key, variant, l) }
                guard v.hasBlocks else { return .whole }
                reads.add(1, ordering: .relaxed)
                return .head(v, Array(buf[0..<v.bodyRange.lowerBound]), file)
            default:
                return headFailed(key, variant, l)
            }
        }
    }

    func headFailed(_ key: String, _ variant: String, _ l: Loc) -> HeadRead {
        recordFailed(key, variant, l)
        return .failed
    }

    /// A record that failed a check: counted, logged, and unindexed (the next request is a miss).
    func recordFailed(_ key: String, _ variant: String, _ l: Loc) {
        readFailures.add(1, ordering: .relaxed)
        log("edged: cache \(path): record at segment \(l.slot) offset \(l.offset) failed its checks; treated as a miss")
        forget(key, variant: variant, l)
    }

    /// `n` bytes at `offset` into `p`: from the page cache only (`nowait`:
    /// anything short means "not all there"), or waiting for the disk.
    /// Returns how many were read (-1: an error).
    func readAt(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int, _ offset: Int, nowait: Bool) -> Int {
        if nowait {
            let r = edge_pread_nowait(fd, p, n, Int64(offset))
            if r < 0 && errno == EOPNOTSUPP { nowaitWorks.store(false, ordering: .relaxed) }
            return r
        }
        var got = 0
        while got < n {
            let r = pread(fd, p + got, n - got, off_t(offset + got))
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { break }
            got += r
        }
        return got
    }
}

public final class DiskBlockBody: StreamedBody, @unchecked Sendable {
    public let length: Int
    /// nil until a region's first block is written.
    var file: SegmentFile?
    /// Where the body starts in the file.
    var bodyOffset: Int
    /// A stored record's block checksums (a region's come from it).
    let checksums: [UInt32]
    /// A fill still being written, read as it is (nil: a stored record).
    let region: StreamRegion?
    let disk: DiskStore
    let key: String, variant: String
    var loc: Loc
    weak var store: TieredStore?
    let waking: any Waking
    /// One block's bytes (whoever `state` says owns it).
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: DiskRecord.blockSize, alignment: 16)
    struct State {
        /// The block the buffer holds, checked (-1: none).
        var block = -1
        var loading = false
        var failed = false
    }
    let state = Mutex(State())

    init(view v: RecordView, head: [UInt8], file: SegmentFile, disk: DiskStore, key: String, variant: String, loc: Loc,
         store: TieredStore, waking: any Waking) {
        length = v.bodyRange.count
        self.file = file
        bodyOffset = Int(loc.offset) + v.bodyRange.lowerBound
        checksums = head.withUnsafeBytes { p in (0..<v.blockCount).map { v.blockCRC(p, $0) } }
        self.disk = disk; self.key = key; self.variant = variant; self.loc = loc
        self.store = store; self.waking = waking
        region = nil
    }

    /// A reader of a fill's region as it is written.
    init(region: StreamRegion, disk: DiskStore, key: String, variant: String, store: TieredStore?, waking: any Waking) {
        length = region.length
        bodyOffset = 0
        checksums = []
        self.region = region
        self.disk = disk; self.key = key; self.variant = variant
        loc = Loc(offset: 0, length: 0, slot: 0, tenant: 0, vary: 0, kind: 0)
        self.store = store; self.waking = waking
    }
    deinit { buffer.deallocate() }

    @inline(__always) func span(_ i: Int) -> (start: Int, count: Int) {
        let start = i * DiskRecord.blockSize
        return (start, min(DiskRecord.blockSize, length - start))
    }

    public func read(from offset: Int, max: Int, into out: IOBuffer, waiter w: Waiter) -> StreamRead {
        guard offset < length, max > 0 else { return .copied(0) }
        let i = offset / DiskRecord.blockSize
        switch ready(i, w) {
        case .failed: return .failed
        case .wait: return .wait
        case .ready:
            let (start, n) = span(i)
            let k = min(max, start + n - offset)
            out.append(UnsafeRawBufferPointer(start: buffer + (offset - start), count: k))
            return .copied(k)
        }
    }

    /// The bytes from `offset` to the end of their block (at most `max`), as
    /// they lie in the segment: the pages the block's check just read (a
    /// block read now on the worker), or, for a block read before (by the
    /// pool, or by an earlier call when the client held back), pages the
    /// page cache still holds; else `.copy` (the checked bytes in the buffer).
    /// Segment files are never written again where records lie (see `roll`).
    public func span(from offset: Int, max: Int, waiter w: Waiter) -> StreamSpan {
        guard offset < length, max > 0 else { return .copy }
        let i = offset / DiskRecord.blockSize
        switch ready(i, w) {
        case .failed: return .failed
        case .wait: return .wait
        case .ready(let justRead):
            let (start, n) = span(i)
            let k = min(max, start + n - offset)
            guard let file, justRead || file.resident(offset: bodyOffset + offset, count: k) else { return .copy }
            return .file(fd: file.fd, offset: bodyOffset + offset, count: k)
        }
    }

    public func sentFromFile(_ n: Int) { disk.sentFromPages.add(n, ordering: .relaxed) }

    enum Readiness { case ready(justRead: Bool), wait, failed }

    /// Block `i` checked in the buffer: read now from the page cache
    /// (`justRead`), or already; else the pool reads it (`.wait`, `w` woken).
    @inline(__always) func ready(_ i: Int, _ w: Waiter) -> Readiness {
        let now = state.withLock { $0 }
        if now.failed { return .failed }
        if now.loading { return .wait }       // the reader pool wakes `w` when it is in
        if now.block == i { return .ready(justRead: false) }
        if let g = region {
            switch g.block(i, w, waking) {
            case .wait: return .wait
            case .failed: return .failed     // the fill will not write it: not a bad block
            case .ready(let f, let at, let l):
                if file == nil { file = f; bodyOffset = at; loc = l }
            }
        }
        guard let file else { return .failed }
        let (start, n) = span(i)
        // The page cache first, without waiting; else the pool reads it.
        if disk.readAt(file.fd, buffer, n, bodyOffset + start, nowait: true) == n {
            disk.readBytes.add(n, ordering: .relaxed)
            guard checks(i) else { fail(); return .failed }
            state.withLock { $0.block = i }
            return .ready(justRead: true)
        }
        guard let store else { return .failed }
        state.withLock { $0.loading = true }
        store.enqueueBlock(self, i, w)
        return .wait
    }

    /// On a reader thread: reads block `i` (waiting for the disk as needed),
    /// checks it, and wakes the exchange.
    func load(_ i: Int, _ w: Waiter) {
        let (start, n) = span(i)
        let got = file.map { disk.readAt($0.fd, buffer, n, bodyOffset + start, nowait: false) } ?? -1
        disk.readBytes.add(max(0, got), ordering: .relaxed)
        let ok = got == n && checks(i)
        state.withLock { s in
            s.loading = false
            if ok { s.block = i } else { s.failed = true }
        }
        if !ok { fail() }
        waking.wake(w)
    }

    @inline(__always) func checks(_ i: Int) -> Bool {
        CRC32C.update(0, UnsafeRawBufferPointer(start: buffer, count: span(i).count)) == checksum(i)
    }

    /// Block `i`'s checksum (a region's: one it has published, as `ready` made sure).
    @inline(__always) func checksum(_ i: Int) -> UInt32 {
        guard let g = region else { return checksums[i] }
        return g.visible.withLock { $0.checksums.count > i ? $0.checksums[i] : ~0 }
    }

    func fail() {
        state.withLock { $0.failed = true }
        disk.readFailures.add(1, ordering: .relaxed)
        disk.log("edged: cache \(disk.path): a block of the record at segment \(loc.slot) offset \(loc.offset) failed its check; the answer ends short, the next request is a miss")
        disk.forget(key, variant: variant, loc)
    }
}
