// The memory tier: a bytes-bounded store shared by all worker threads.
//
// Concurrency and ownership: keys hash to one of `shardCount` shards, each a
// Mutex around its own index and queues, so hits on different keys rarely
// meet on a lock and no lock is global. A lock is held only for an index
// lookup or an insert/evict step; never across I/O. Stored responses are
// immutable blocks: a reader that got one keeps a reference and streams it
// without holding any lock, even if it is evicted meanwhile (ARC frees it when
// the last reader is done). The shard owns the index fields of the blocks it
// holds (StoredResponse.swift): its index holds each block once, strongly;
// its queues link the same blocks through unretained pointers, and a block
// leaves its queue before it leaves the index.
//
// Eviction is S3-FIFO (Yang et al., SOSP'23): new objects enter a small FIFO
// (10% of the bytes); those hit again move to the main FIFO, the rest leave and
// are remembered in a ghost list, so a returning key goes straight to main.
// One-hit wonders (a crawler's scan) therefore pass through the small queue
// without pushing out the working set.
//
// Memory per object beyond its block (tools/bench/memory.sh): an index slot
// (8 bytes; the index is an open-addressed array kept between 0.35 and 0.7
// full), the queue links inside the block, and a ghost fingerprint (4 bytes).
import Synchronization
#if canImport(EdgeHTTP)
import EdgeHTTP
#endif

extension StoredBox {
    @inline(__always) var hp: UnsafeMutablePointer<StoredHead> { withUnsafeMutablePointerToHeader { $0 } }
    @inline(__always) var response: StoredResponse { StoredResponse(box: self) }
}

extension Unmanaged where Instance == StoredBox {
    @inline(__always) var hp: UnsafeMutablePointer<StoredHead> { _withUnsafeGuaranteedRef { $0.hp } }
}

public final class MemoryStore: CacheStorage {
    /// The blocks of a shard by their whole key's hash: open addressing with
    /// linear probing, removal by shifting back (no tombstones). The variants
    /// of one key sit in one probe run in the order they were stored.
    struct Index {
        var slots: [StoredBox?] = []
        var count = 0

        @inline(__always) static func home(_ b: StoredBox, _ mask: Int) -> Int { Int(truncatingIfNeeded: b.hp.pointee.hash) & mask }

        /// Calls `body` with each block whose hash is `hash`, in the order they
        /// were stored, until it returns false.
        @inline(__always) func forEach(hash: UInt64, _ body: (StoredBox) -> Bool) {
            guard !slots.isEmpty else { return }
            let mask = slots.count - 1
            var i = Int(truncatingIfNeeded: hash) & mask
            while let b = slots[i] {
                if b.hp.pointee.hash == hash && !body(b) { return }
                i = (i + 1) & mask
            }
        }

        mutating func insert(_ b: StoredBox) {
            if (count + 1) * 10 > slots.count * 7 { resize(max(16, slots.count * 2)) }
            let mask = slots.count - 1
            var i = Int(truncatingIfNeeded: b.hp.pointee.hash) & mask
            while slots[i] != nil { i = (i + 1) & mask }
            slots[i] = b
            count += 1
        }

        /// Takes `b` out (it must be in).
        mutating func remove(_ b: StoredBox) {
            let mask = slots.count - 1
            var i = Index.home(b, mask)
            while slots[i] !== b { i = (i + 1) & mask }
            // Shift back the blocks after the hole that may move into it.
            slots[i] = nil
            var j = i
            while true {
                j = (j + 1) & mask
                guard let m = slots[j] else { break }
                let k = Index.home(m, mask)
                if (i - k) & mask < (j - k) & mask {
                    slots[i] = m
                    slots[j] = nil
                    i = j
                }
            }
            count -= 1
            if slots.count > 64 && count * 20 < slots.count { resize(slots.count / 4) }
        }

        /// Puts `new` in `old`'s slot (the same key: the same hash).
        mutating func replace(_ old: StoredBox, with new: StoredBox) {
            let mask = slots.count - 1
            var i = Index.home(old, mask)
            while slots[i] !== old { i = (i + 1) & mask }
            slots[i] = new
        }

        private mutating func resize(_ n: Int) {
            let old = slots
            slots = [StoredBox?](repeating: nil, count: n)
            count = 0
            // In probe order (from an empty slot, wrapping), so the blocks of
            // one key keep the order they were stored in.
            guard let empty = old.firstIndex(where: { $0 == nil }) else { return }
            for i in 1...old.count { if let b = old[(empty + i) & (old.count - 1)] { insert(b) } }
        }

        /// Every block (a copy of the list: the caller may change the index).
        var all: [StoredBox] { slots.compactMap { $0 } }
    }

    /// An intrusive FIFO through the blocks' `older`/`newer` links.
    struct Queue {
        var oldest: Unmanaged<StoredBox>?
        var newest: Unmanaged<StoredBox>?
        var count = 0

        mutating func append(_ b: StoredBox) {
            let u = Unmanaged.passUnretained(b), p = b.hp
            p.pointee.older = newest
            p.pointee.newer = nil
            if let n = newest { n.hp.pointee.newer = u } else { oldest = u }
            newest = u
            count += 1
        }

        mutating func remove(_ b: StoredBox) {
            let p = b.hp
            let older = p.pointee.older, newer = p.pointee.newer
            if let o = older { o.hp.pointee.newer = newer } else { oldest = newer }
            if let n = newer { n.hp.pointee.older = older } else { newest = older }
            p.pointee.older = nil
            p.pointee.newer = nil
            count -= 1
        }

        /// Puts `new` in `old`'s place.
        mutating func replace(_ old: StoredBox, with new: StoredBox) {
            let p = old.hp, q = new.hp, u = Unmanaged.passUnretained(new)
            q.pointee.older = p.pointee.older
            q.pointee.newer = p.pointee.newer
            if let o = p.pointee.older { o.hp.pointee.newer = u } else { oldest = u }
            if let n = p.pointee.newer { n.hp.pointee.older = u } else { newest = u }
            p.pointee.older = nil
            p.pointee.newer = nil
        }
    }

    /// Keys recently evicted from the small queue, as 32-bit fingerprints of
    /// their hash in buckets of four (the oldest of a full bucket is
    /// forgotten). Sized to the shard's objects; a key's string is not kept.
    struct Ghost {
        var slots: [UInt32] = []

        @inline(__always) static func fingerprint(_ hash: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: hash >> 32) | 1 }
        @inline(__always) func bucket(_ f: UInt32) -> Int { (Int(f >> 1) & (slots.count / 4 - 1)) * 4 }

        mutating func remember(_ hash: UInt64, objects: Int) {
            let want = max(64, objects)
            if slots.count < want { grow(want) }
            let f = Ghost.fingerprint(hash), b = bucket(f)
            if slots[b] == f || slots[b + 1] == f || slots[b + 2] == f || slots[b + 3] == f { return }
            slots[b + 3] = slots[b + 2]; slots[b + 2] = slots[b + 1]; slots[b + 1] = slots[b]; slots[b] = f
        }

        /// Was the key remembered? It is forgotten then.
        mutating func take(_ hash: UInt64) -> Bool {
            guard !slots.isEmpty else { return false }
            let f = Ghost.fingerprint(hash), b = bucket(f)
            for i in b..<(b + 4) where slots[i] == f {
                var j = i
                while j < b + 3 { slots[j] = slots[j + 1]; j += 1 }
                slots[b + 3] = 0
                return true
            }
            return false
        }

        private mutating func grow(_ want: Int) {
            var n = 64
            while n < want { n *= 2 }
            let old = slots
            slots = [UInt32](repeating: 0, count: n)
            // Newest first in each old bucket: put them back oldest first.
            var i = old.count - 1
            while i >= 0 {
                let f = old[i]
                if f != 0 {
                    let b = bucket(f)
                    slots[b + 3] = slots[b + 2]; slots[b + 2] = slots[b + 1]; slots[b + 1] = slots[b]; slots[b] = f
                }
                i -= 1
            }
        }
    }

    /// (Sendable: it lives in its Mutex and is only touched under the lock;
    /// its blocks are not Sendable only because ManagedBuffer is not.)
    struct Shard: @unchecked Sendable {
        var index = Index()
        var small = Queue()
        var main = Queue()
        var ghost = Ghost()
        var bytes = 0
        /// Of `bytes`, the objects' own bytes (StoredResponse.storedBytes).
        var stored = 0
        var smallBytes = 0
        var objects: Int { index.count }
        /// POST keys stored in this shard (a URL purge scans for them only when there are some).
        var postKeys = 0
        /// Why the last response for a key of this shard was not stored (for
        /// explain); bounded (MemoryStore.notStoredPerShard), cleared when full.
        /// (Keyed by the key's 64-bit FNV-1a: a no-store miss notes its reason
        /// without hashing and keeping the key's String; a collision could
        /// only make explain name another key's reason.)
        var notStored: [UInt64: NotStoredNote] = [:]
        /// Derived codings stored, by their base key's hash (fnv1a up to the
        /// separator): a base with none is never looked for under a derived key.
        var derivedBases: [UInt64: UInt32] = [:]
    }

    final class ShardBox: Sendable {
        let m = Mutex(Shard())
    }

    let shards: [ShardBox]
    let shardCapacity: Int
    public let maxObjectBytes: Int
    public let capacity: Int
    /// Variants kept per primary key; a new one beyond this replaces the oldest.
    public let maxVariants: Int
    /// Bytes each tenant may hold (nil: no quota). A tenant at its quota gets no
    /// new objects admitted until its own age out, so its flood cannot take more
    /// than that share from the others.
    let quotas: Mutex<[String: Int]>
    let tenantBytes = Mutex<[String: Int]>([:])
    /// Recent purges (see PurgeLog): a response whose request left before a
    /// purge that selects it is not stored when it completes after the purge.
    public let purges = PurgeLog()
    /// Reasons kept per shard for explain (4096 in all with 16 shards).
    static let notStoredPerShard = 256
    let keepBody: @Sendable ([UInt8]) -> BodyStorage

    public func storage(for body: [UInt8]) -> BodyStorage { keepBody(body) }

    /// A fill complete: stored with its body kept as this tier keeps bodies.
    @discardableResult
    public func commit(_ fill: CacheFill) -> Bool {
        guard fill.complete, !fill.tooLarge else { return false }
        return insert(fill.stored(keepBody(fill.exactBody)), startedAt: fill.startedAt)
    }

    /// A fill that will not complete: the memory tier reserved nothing for it.
    public func abort(_ fill: CacheFill) {}

    /// New metadata for a stored response (a 304's merged fields and freshness):
    /// the memory tier replaces the object.
    @discardableResult
    public func update(_ r: StoredResponse, startedAt: UInt64?) -> Bool { insert(r, startedAt: startedAt) }

    /// - Parameters:
    ///   - capacity: bytes for all shards together.
    ///   - maxObjectBytes: larger responses are not stored here.
    ///   - keepBody: how a body is kept (the pipeline puts large ones in memory
    ///     files, which is I/O this module does not do).
    public init(capacity: Int, maxObjectBytes: Int = 8 << 20, shardCount: Int = 16, maxVariants: Int = 32, quotas: [String: Int] = [:],
                keepBody: @escaping @Sendable ([UInt8]) -> BodyStorage = { BodyStorage($0) }) {
        self.keepBody = keepBody
        self.capacity = capacity
        self.maxVariants = max(1, maxVariants)
        self.quotas = Mutex(quotas)
        self.maxObjectBytes = min(maxObjectBytes, capacity / shardCount)
        shardCapacity = capacity / shardCount
        shards = (0..<shardCount).map { _ in ShardBox() }
    }

    @inline(__always) func shard(_ key: String) -> Int {
        // FNV-1a: stable across runs (the disk tier shares it). Hashing
        // stops at NUL or SOH, so derived and POST keys share their base key's shard.
        shard(hash: MemoryStore.keyHash(key, stopAtSeparator: true))
    }

    /// The shard of a base key's hash (fnv1a up to the separator).
    @inline(__always) func shard(hash h: UInt64) -> Int {
        Int(h % UInt64(shards.count))
    }

    public func lookup(key: String, request: HeaderList) -> StoredResponse? {
        lookup(key: key) { request }
    }

    /// Like `lookup(key:request:)`, asking for the request's fields only when a
    /// stored variant has Vary (most objects have none: no fields are built).
    public func lookup(key: String, request: () -> HeaderList) -> StoredResponse? { find(key, MemoryStore.keyHashes(key), derived: nil, request) }

    /// The same with the key's hashes made already (MemoryStore.keyHashes: a
    /// tier below hashes the key once for both).
    public func lookup(key: String, hashes: KeyHashes, request: () -> HeaderList) -> StoredResponse? {
        find(key, hashes, derived: nil, request)
    }

    /// The representation edge derived from `key` in `coding`, if one is stored.
    /// A base with no derived coding stored (most objects of types never
    /// compressed) is answered from its hash, without making the derived key.
    public func lookupDerived(key: String, _ coding: ContentCoding, request: () -> HeaderList) -> StoredResponse? {
        find(key, MemoryStore.keyHashes(key), derived: coding, request)
    }

    /// The stored variant of `key` (or of its derived key in `coding`) that the
    /// request selects: one pass over the key's bytes and one lock either way.
    @inline(__always)
    func find(_ key: String, _ hashes: (base: UInt64, full: UInt64), derived coding: ContentCoding?, _ request: () -> HeaderList) -> StoredResponse? {
        var (base, full) = hashes
        var firstHit = false
        let r = shards[shard(hash: base)].m.withLock { s -> StoredResponse? in
            var k = key
            if let coding {
                guard !s.derivedBases.isEmpty, s.derivedBases[base] != nil else { return nil }
                k = CacheKey.derived(key, coding)
                full = MemoryStore.keyHash(k, stopAtSeparator: false)
            }
            var fields: HeaderList?
            var found: StoredResponse?
            MemoryStore.forEach(&s, hash: full, key: &k) { b in
                let r = b.response
                if !r.varyIsEmpty {
                    if fields == nil { fields = request() }
                    guard let v = CacheKey.variant(vary: r.vary, request: fields!), r.variantEquals(v) else { return true }
                }
                let p = b.hp
                if p.pointee.freq < 3 { p.pointee.freq += 1 }
                if p.pointee.awaitingHit != 0 { p.pointee.awaitingHit = 0; firstHit = true }
                found = r
                return false
            }
            return found
        }
        if firstHit, let r { onFirstHit?(r) }
        return r
    }

    /// Calls `body` with each block stored under `key` (whose whole hash is
    /// `hash`), in the order they were stored, until it returns false.
    @inline(__always)
    static func forEach(_ s: inout Shard, hash: UInt64, key: inout String, _ body: (StoredBox) -> Bool) {
        key.withUTF8 { k in
            s.index.forEach(hash: hash) { b in
                let r = b.response
                guard r.keyEquals(UnsafeRawBufferPointer(k)) else { return true }
                return body(b)
            }
        }
    }

    /// The blocks stored under `key`, oldest first.
    static func blocks(_ s: inout Shard, _ key: String) -> [StoredBox] {
        var k = key
        var out: [StoredBox] = []
        forEach(&s, hash: keyHash(key, stopAtSeparator: false), key: &k) { out.append($0); return true }
        return out
    }

    /// Memory never has to read: the answer is always at hand.
    public func lookup(key: String, request: () -> HeaderList, waiter: Waiter, waking: any Waking) -> StorageLookup {
        lookup(key: key, request: request).map { .found($0) } ?? .absent
    }

    public func lookup(key: String, hashes: KeyHashes, request: () -> HeaderList, partial: Bool, waiter: Waiter, waking: any Waking) -> StorageLookup {
        lookup(key: key, hashes: hashes, request: request).map { .found($0) } ?? .absent
    }

    /// Every stored variant of a key (for explain and purge).
    public func variants(key: String) -> [StoredResponse] {
        shards[shard(key)].m.withLock { s in MemoryStore.blocks(&s, key).map(\.response) }
    }

    /// Removes every object of a tenant (a tenant dropped by a reload); returns how many.
    @discardableResult
    public func remove(tenant: String) -> Int {
        var removed = 0
        for box in shards {
            box.m.withLock { s in
                for b in s.index.all where b.response.tenant == tenant {
                    MemoryStore.detach(b, &s)
                    removed += 1
                }
            }
        }
        tenantBytes.withLock { $0[tenant] = nil }
        return removed
    }

    /// Replaces the per-tenant quotas (config load and reload).
    public func setQuotas(_ q: [String: Int]) { quotas.withLock { $0 = q } }

    /// Bytes a tenant holds now.
    public func bytes(tenant: String) -> Int { tenantBytes.withLock { $0[tenant] ?? 0 } }

    @discardableResult
    public func insert(_ r: StoredResponse) -> Bool { insert(r, startedAt: nil) }

    /// Called (outside the shard lock) with an object stored with `holdForHit`
    /// on its first hit: a tier below admits objects on their second request
    /// (TieredStore's `second_request` disk admission). Set once, before the
    /// store is shared.
    public nonisolated(unsafe) var onFirstHit: (@Sendable (StoredResponse) -> Void)?

    @discardableResult
    public func insert(_ r: StoredResponse, startedAt: UInt64?) -> Bool {
        var seen = false
        return insert(r, startedAt: startedAt, holdForHit: false, seenBefore: &seen)
    }

    /// Stores `r` unless a purge recorded after `startedAt` (the purge epoch
    /// when its request left for the origin) selects it. The check is made
    /// under the shard lock, and a purge records itself before it visits the
    /// shards, so either the purge sees the object or the insert sees the purge.
    /// `holdForHit`: the object waits for its first hit (onFirstHit), unless
    /// its key was requested before (the ghost remembers it, evicted since):
    /// then `seenBefore` is set instead.
    @discardableResult
    public func insert(_ r: StoredResponse, startedAt: UInt64?, holdForHit: Bool, seenBefore: inout Bool) -> Bool {
        var r = r
        let cost = r.cost
        guard cost <= maxObjectBytes else { noteNotStored(key: r.key, reason: "larger than the largest object stored"); return false }
        if let q = quotas.withLock({ $0[r.tenant] }), bytes(tenant: r.tenant) + cost > q {
            noteNotStored(key: r.key, reason: "tenant at its cache quota")
            return false
        }
        let cap = shardCapacity
        let (base, full) = r.keyBytes.withMemoryRebound(to: UInt8.self) { MemoryStore.keyHashes($0) }
        var freed: [StoredResponse] = []
        let ok = shards[shard(hash: base)].m.withLock { s -> Bool in
            if let since = startedAt, purges.purgedSince(since, r) { return false }
            // The same variant is replaced; beyond maxVariants the oldest goes.
            var same: [StoredBox] = []
            s.index.forEach(hash: full) { b in
                if b.response.keyEquals(r.keyBytes) { same.append(b) }
                return true
            }
            for b in same where b.response.variantEquals(r.variantBytes) {
                freed.append(MemoryStore.detach(b, &s))
                same.removeAll { $0 === b }
            }
            if same.count >= maxVariants { freed.append(MemoryStore.detach(same[0], &s)) }
            // A block another store holds (the same response stored twice) is copied.
            if r.box.hp.pointee.queue != 0 { r = r.with() }
            let b = r.box, p = b.hp
            p.pointee.hash = full
            p.pointee.freq = 0
            s.index.insert(b)
            if r.isPostKey { s.postKeys += 1 }
            // A new base representation outdates what edge derived from the old one.
            if r.isDerived {
                s.derivedBases[base, default: 0] += 1
            } else if s.derivedBases[base] != nil {
                for d in CacheKey.allDerived(r.key) {
                    for o in MemoryStore.blocks(&s, d) { freed.append(MemoryStore.detach(o, &s)) }
                }
            }
            s.bytes += cost
            s.stored += r.storedBytes
            if !s.notStored.isEmpty { s.notStored[full] = nil }
            p.pointee.awaitingHit = 0
            if s.ghost.take(full) {
                p.pointee.queue = 2
                s.main.append(b)
                seenBefore = true
            } else {
                p.pointee.queue = 1
                s.small.append(b)
                s.smallBytes += cost
                if holdForHit { p.pointee.awaitingHit = 1 }
            }
            MemoryStore.evict(&s, capacity: cap, freed: &freed)
            return true
        }
        // Tenant accounting outside the shard lock (its own lock; never both held).
        tenantBytes.withLock { t in
            if ok { t[r.tenant, default: 0] += cost }
            for f in freed { t[f.tenant, default: 0] -= f.cost }
        }
        if !ok { noteNotStored(key: r.key, reason: "purged while it was being fetched") }
        return ok
    }

    /// Remembers why a response for `key` was not stored (edgectl explain).
    public func noteNotStored(key: String, reason: String) { note(key, .text(reason)) }

    /// The same, for a policy reason: kept as it is, under the key's shard lock.
    public func noteNotStored(key: String, _ why: NotStored, status: Int) { note(key, .policy(why, status: status)) }

    public func noteNotStored(key: String, hashes: KeyHashes, _ why: NotStored, status: Int) {
        note(key, .policy(why, status: status), hashes: hashes)
    }

    func note(_ key: String, _ n: NotStoredNote, hashes: KeyHashes? = nil) {
        let (base, h) = hashes ?? MemoryStore.keyHashes(key)
        shards[shard(hash: base)].m.withLock { s in
            // A pass-through notes the same reason at every request: read before writing.
            if s.notStored[h] == n { return }
            if s.notStored.count >= MemoryStore.notStoredPerShard { s.notStored.removeAll(keepingCapacity: true) }
            s.notStored[h] = n
        }
    }

    /// Why the last response for `key` was not stored, if it was not.
    public func whyNotStored(key: String) -> String? {
        let h = MemoryStore.ghostHash(key)
        return shards[shard(key)].m.withLock { $0.notStored[h]?.text }
    }

    /// Removes (or, `soft`, marks stale at `now`) every object `scope` selects;
    /// returns how many. The purge is logged first, so a response already in
    /// flight from the origin is not stored afterwards as if it were newer.
    @discardableResult
    public func purge(_ scope: PurgeScope, soft: Bool, now: Int64) -> Int {
        purges.record(scope)
        var count = 0
        var gone: [StoredResponse] = []
        let visit: [ShardBox]
        if case .key(let k) = scope { visit = [shards[shard(k)]] } else { visit = shards }
        for box in visit {
            box.m.withLock { s in
                var candidates: [StoredBox]
                switch scope {
                case .key(let k):
                    candidates = ([k] + CacheKey.allDerived(k)).flatMap { MemoryStore.blocks(&s, $0) }
                    // Cached POST answers for the URL (rare: only routes that cache POST make them).
                    if s.postKeys > 0 {
                        let post = k + CacheKey.bodySeparator
                        candidates += s.index.all.filter { $0.response.isPostKey && $0.response.keyHasPrefix(post) }
                    }
                default: candidates = s.index.all
                }
                for b in candidates where scope.matches(b.response) {
                    count += 1
                    if soft {
                        MemoryStore.replace(b, with: b.response.markedStale(now: now).box, &s)
                    } else {
                        gone.append(MemoryStore.detach(b, &s))
                    }
                }
            }
        }
        if !gone.isEmpty { tenantBytes.withLock { t in for f in gone { t[f.tenant, default: 0] -= f.cost } } }
        return count
    }

    /// Primary keys stored for a tenant with this prefix (explain, tests).
    public func keys(prefix: String) -> [String] {
        var out: Set<String> = []
        for box in shards {
            box.m.withLock { s in for b in s.index.all where b.response.keyHasPrefix(prefix) { out.insert(b.response.key) } }
        }
        return out.sorted()
    }

    @discardableResult
    public func remove(key: String) -> Int {
        let gone = shards[shard(key)].m.withLock { s -> [StoredResponse] in
            var out: [StoredResponse] = []
            var blocks = ([key] + CacheKey.allDerived(key)).flatMap { MemoryStore.blocks(&s, $0) }
            // A URL's slices go with it (its cached POST answers stay: each is keyed on its own body).
            if s.postKeys > 0 && !key.utf8.contains(1) {
                let slices = Slices.keyPrefix(key)
                blocks += s.index.all.filter { $0.response.keyHasPrefix(slices) }
            }
            for b in blocks { out.append(MemoryStore.detach(b, &s)) }
            return out
        }
        if !gone.isEmpty { tenantBytes.withLock { t in for f in gone { t[f.tenant, default: 0] -= f.cost } } }
        return gone.count
    }

    public var bytesUsed: Int { shards.reduce(0) { t, b in t + b.m.withLock { $0.bytes } } }
    public var objectCount: Int { shards.reduce(0) { t, b in t + b.m.withLock { $0.objects } } }
    public var storedBytes: Int { shards.reduce(0) { t, b in t + b.m.withLock { $0.stored } } }

    /// Takes a block out of its queue and the index and un-charges it; returns
    /// it (the shard lets go of it: it is freed when its last reader is done).
    @discardableResult
    static func detach(_ b: StoredBox, _ s: inout Shard) -> StoredResponse {
        let r = b.response, p = b.hp, cost = r.cost
        switch p.pointee.queue {
        case 1: s.small.remove(b); s.smallBytes -= cost
        case 2: s.main.remove(b)
        default: break
        }
        p.pointee.queue = 0
        s.index.remove(b)
        s.bytes -= cost
        s.stored -= r.storedBytes
        if r.isDerived {
            let h = keyHash(r.key, stopAtSeparator: true)
            if let n = s.derivedBases[h], n > 1 { s.derivedBases[h] = n - 1 } else { s.derivedBases[h] = nil }
        }
        if r.isPostKey { s.postKeys -= 1 }
        return r
    }

    /// Puts `new` (the same key and variant) where `old` is, in the index and its queue.
    static func replace(_ old: StoredBox, with new: StoredBox, _ s: inout Shard) {
        let p = old.hp, q = new.hp, delta = new.response.cost - old.response.cost
        q.pointee.hash = p.pointee.hash
        q.pointee.freq = p.pointee.freq
        q.pointee.queue = p.pointee.queue
        switch p.pointee.queue {
        case 1: s.small.replace(old, with: new); s.smallBytes += delta
        default: s.main.replace(old, with: new)
        }
        p.pointee.queue = 0
        s.index.replace(old, with: new)
        s.bytes += delta
        s.stored += new.response.storedBytes - old.response.storedBytes
    }

    static func evict(_ s: inout Shard, capacity: Int, freed: inout [StoredResponse]) {
        while s.bytes > capacity {
            let useSmall = s.smallBytes > capacity / 10 || s.main.count == 0
            if useSmall, let u = s.small.oldest {
                let b = u.takeUnretainedValue(), p = b.hp
                // Leaving the small queue: hit again → main, else out (and remembered).
                if p.pointee.freq >= 1 {
                    s.small.remove(b)
                    s.smallBytes -= b.response.cost
                    p.pointee.freq = 0
                    p.pointee.queue = 2
                    s.main.append(b)
                } else {
                    s.ghost.remember(p.pointee.hash, objects: s.objects)
                    freed.append(detach(b, &s))
                }
            } else if let u = s.main.oldest {
                let b = u.takeUnretainedValue(), p = b.hp
                if p.pointee.freq > 0 {
                    p.pointee.freq -= 1
                    s.main.remove(b)
                    s.main.append(b)
                } else {
                    freed.append(detach(b, &s))
                }
            } else {
                break
            }
        }
    }

    /// A key's FNV-1a, 64 bits; `stopAtSeparator`: only the base key (up to a NUL or SOH).
    /// (Over the key's bytes in place: the UTF-8 view's iterator cost about
    /// 25 instructions a byte, and every lookup hashes its key.)
    /// `seed`: the hash so far (the disk index hashes a key, then its variant).
    public static func keyHash(_ key: String, stopAtSeparator: Bool, seed: UInt64 = fnv1aBasis) -> UInt64 {
        let inPlace = key.utf8.withContiguousStorageIfAvailable { p -> UInt64 in
            var n = 0
            if stopAtSeparator { while n < p.count && p[n] > 1 { n += 1 } } else { n = p.count }
            return fnv1a(UnsafeBufferPointer(rebasing: p[..<n]), seed: seed)
        }
        return inPlace ?? (stopAtSeparator ? fnv1a(key.utf8.prefix { $0 > 1 }, seed: seed) : fnv1a(key.utf8, seed: seed))
    }

    /// Both hashes of a key in one pass: its base key's (up to a NUL or SOH:
    /// picks the shard) and the whole key's (the index and the ghost).
    @inline(__always)
    public static func keyHashes(_ key: String) -> KeyHashes {
        if let h = key.utf8.withContiguousStorageIfAvailable({ keyHashes($0) }) { return h }
        return (keyHash(key, stopAtSeparator: true), keyHash(key, stopAtSeparator: false))
    }

    /// (One FNV-1a pass: the whole key's hash goes on from the state at the
    /// separator, which is the base key's hash.)
    @inline(__always)
    static func keyHashes(_ p: UnsafeBufferPointer<UInt8>) -> (base: UInt64, full: UInt64) {
        var h = fnv1aBasis
        var i = 0
        while i < p.count {
            let b = p[i]
            if b <= 1 { break }
            h = fnv1aStep(h, b)
            i += 1
        }
        let base = h
        while i < p.count { h = fnv1aStep(h, p[i]); i += 1 }
        return (base, h)
    }

    /// The ghost list's hash of a key (all of it).
    static func ghostHash(_ key: String) -> UInt64 { keyHash(key, stopAtSeparator: false) }
}
