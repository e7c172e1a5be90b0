// One cache directory's index rebuilt from its segments at start (see
// Segments.swift for the layout and the concurrency rules: the loader thread
// scans the older segments newest first, the writer scans the one it
// continues; entries go in under the shard locks, only while the slot still
// has the generation scanned).
import Glibc
import Synchronization
import EdgeCache
import EdgeHTTP
import EdgeIO

extension DiskStore {
    /// Rebuilds the index from the segments other than the writer's (it
    /// scans that one itself), newest first, while requests are served.
    func load(_ gens: [UInt64], skip: Int) {
        let started = monotonicMillis()
        let order = gens.indices.filter { $0 != skip && gens[$0] > 0 }.sorted { gens[$0] > gens[$1] }
        var found = 0
        var unknown: Set<String> = []
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        for slot in order {
            guard let (_, n) = scan(slot, gen: gens[slot], replace: false, &buf, &unknown) else { break }
            found += n
        }
        loadedObjects.add(found, ordering: .relaxed)
        finishLoading()
        if !unknown.isEmpty { dropped(unknown) }
        log("edged: cache \(path): \(found) objects indexed in \(monotonicMillis() - started) ms")
    }

    /// The loader and the writer's own scan each call this once; the second
    /// ends the loading state (and says so: the index is whole).
    func finishLoading() {
        if scansLeft.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
            let ms = Int(monotonicMillis() - loadStarted)
            loadMillis.store(ms, ordering: .relaxed)
            health.withLock { $0.loading = false }
            log("edged: cache \(path): index loaded, \(loadedObjects.load(ordering: .relaxed)) objects in \(ms) ms")
        }
    }

    /// Indexes the records of one slot in order, up to the first that does
    /// not check (a torn tail or the end of what was written). `replace`
    /// (the writer resuming its segment, the newest): every record found
    /// replaces what is indexed. Otherwise (the loader, on older segments)
    /// an entry is added only if its key is not indexed yet or is indexed
    /// from earlier in the same slot, and only while the slot still has the
    /// generation scanned. Returns where the valid records end and how many
    /// were indexed; nil when the slot is gone (reclaimed, or no files).
    func scan(_ slot: Int, gen: UInt64, replace: Bool, _ buf: inout [UInt8], _ unknown: inout Set<String>) -> (end: Int, found: Int)? {
        guard let file = files.withLock({ $0.fds.isEmpty ? nil : $0.fds[slot] }) else { return nil }
        let fd = file.fd
        defer { withExtendedLifetime(file) {} }
        var size = stat()
        guard fstat(fd, &size) == 0 else { return (SegmentHeader.size, 0) }
        let fileSize = Int(size.st_size)
        let chunk = buf.count
        var pos = SegmentHeader.size
        var end = pos
        var found = 0
        var pending: [(UInt64, UInt64?, Loc, String, [String])] = []   // hash, variant hash, loc, tenant, vary
        var lowestSeq = UInt64.max
        func flushPending() -> Bool {
            let same = files.withLock { f -> Bool in
                guard f.gens.count > slot && f.gens[slot] == gen else { return false }
                f.minSeq[slot] = min(f.minSeq[slot], lowestSeq)
                return true
            }
            guard same else { return false }
            for (h, hv, l0, tenant, vary) in pending {
                if let allowed, !allowed.contains(tenant) { unknown.insert(tenant); continue }
                guard let t = tenantID(tenant), let vid = varyID(vary) else { continue }
                var l = l0
                l.tenant = t
                shards[shard(h)].m.withLock { s in
                    func mayReplace(_ e: Loc?) -> Bool { replace || e == nil || (e!.kind == 0 && e!.slot == l.slot && e!.offset < l.offset) }
                    func put(_ k: UInt64) {
                        let e = s.table[k]
                        guard mayReplace(e) else { return }
                        if let e { DiskStore.account(&s, e, -1) }
                        s.table[k] = l
                        DiskStore.account(&s, l, 1)
                    }
                    if let hv {
                        let m = s.table[h]
                        let marker = Loc(offset: 0, length: 0, slot: UInt16.max, tenant: t, vary: vid, kind: 1)
                        if m == nil || (m!.kind == 1 && m!.vary == vid) {
                            if m == nil { s.table[h] = marker }
                            put(hv)
                        } else if replace {
                            if let m { DiskStore.account(&s, m, -1) }
                            s.table[h] = marker
                            put(hv)
                        }
                    } else {
                        put(h)
                    }
                }
            }
            found += pending.count
            pending.removeAll(keepingCapacity: true)
            return true
        }
        // Among large records (64 KiB and more) the reads are just a head's
        // worth: a scan reads their heads, not their bodies, until a read finds
        // small records packed again (2 GiB of 64 KiB objects: 0.29 s -> 0.15-0.22 s
        // with the page cache warm, 1.3-4.4 s -> 1.0 s with it dropped; regions of
        // small records are read in large chunks as before).
        var headsOnly = false
        var nextWant = chunk
        scan: while pos < fileSize {
            let want = min(nextWant, fileSize - pos)
            let got = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(pos)) }
            guard got > 0 else { break }
            scannedBytes.add(got, ordering: .relaxed)
            var i = 0
            var stop = false
            var longHead = 0
            var parsed = 0, sawLarge = false
            inner: while i < got {
                let res = buf.withUnsafeBytes { p in DiskRecord.parse(UnsafeRawBufferPointer(rebasing: p[i..<got]), limit: segmentBytes) }
                switch res {
                case .invalid:
                    stop = true              // a torn tail, or the end of what was written
                    break inner
                case .needMore(let n):
                    if i == 0 {
                        // A head longer than this read: read again, all of it; else the
                        // file ends inside a head (or the head is larger than the buffer).
                        if got == want && n > got && n <= chunk && pos + n <= fileSize { longHead = n } else { stop = true }
                    }
                    break inner
                case .record(let v):
                    if pos + i + v.length > fileSize { stop = true; break inner }
                    parsed += 1
                    if v.length >= 4 * DiskStore.headGuess { sawLarge = true }
                    // A streamed record never finished (a crash, or its fill gave up): stepped over.
                    if v.open { i += v.length; end = pos + i; continue inner }
                    buf.withUnsafeBytes { p in
                        let base = UnsafeRawBufferPointer(rebasing: p[i...])
                        let key = String(decoding: UnsafeRawBufferPointer(rebasing: base[v.keyRange]), as: UTF8.self)
                        lowestSeq = min(lowestSeq, v.seq)
                        if let m = DiskRecord.decodeIndexMeta(UnsafeRawBufferPointer(rebasing: base[v.metaRange])) {
                            let l = Loc(offset: UInt32(pos + i), length: UInt32(v.length), slot: UInt16(slot), tenant: 0, vary: 0, kind: 0)
                            pending.append((indexHash(key), m.vary.isEmpty ? nil : indexHash(key, variant: m.variant), l, m.tenant, m.vary))
                        }
                    }
                    i += v.length
                    end = pos + i
                }
            }
            if !pending.isEmpty && !flushPending() { return nil }   // the writer reclaimed this slot meanwhile
            if stop { break }
            if longHead > 0 { nextWant = longHead; continue scan }
            if sawLarge { headsOnly = true } else if parsed >= 8 { headsOnly = false }
            nextWant = headsOnly ? DiskStore.headGuess : chunk
            pos += i
        }
        if !pending.isEmpty && !flushPending() { return nil }
        return (end, found)
    }

    /// The writer's first step: continue the newest segment rather than
    /// reclaim one (a restart keeps the whole ring). Its records are
    /// indexed, and anything after the last one that checks is cut off, so
    /// a torn tail can never be read back as a record later. Returns the
    /// offset to append at (0: roll first).
    func resume(_ slot: Int, gen: UInt64) -> Int {
        defer { finishLoading() }
        guard gen > 0 else { return 0 }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var unknown: Set<String> = []
        guard let (end, n) = scan(slot, gen: gen, replace: true, &buf, &unknown) else { return 0 }
        loadedObjects.add(n, ordering: .relaxed)
        if !unknown.isEmpty { dropped(unknown) }
        let file = files.withLock { $0.fds[slot] }
        guard ftruncate(file.fd, off_t(end)) == 0 else {
            fail("cutting segment \(slot) at \(end): \(String(cString: strerror(errno)))")
            return 0
        }
        return end
    }
}
