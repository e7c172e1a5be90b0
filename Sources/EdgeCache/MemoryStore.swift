// The memory tier: a bytes-bounded store shared by all worker threads.
//
// Concurrency and ownership: keys hash to one of `shardCount` shards, each a
// Mutex around its own table and queues, so hits on different keys rarely
// meet on a lock and no lock is global. A lock is held only for a table
// lookup or an insert/evict step; never across I/O. Stored responses are
// immutable objects: a reader that got one keeps a reference and streams it
// without holding any lock, even if it is evicted meanwhile (ARC frees it when
// the last reader is done).
//
// Eviction is S3-FIFO (Yang et al., SOSP'23): new objects enter a small FIFO
// (10% of the bytes); those hit again move to the main FIFO, the rest leave and
// are remembered in a ghost list, so a returning key goes straight to main.
// One-hit wonders (a crawler's scan) therefore pass through the small queue
// without pushing out the working set.
import Synchronization
#if canImport(EdgeHTTP)
import EdgeHTTP
#endif

/// A stored body, the handle a lookup gives the transport: ordinary memory,
/// or a region of a file (a memory file for large bodies; a disk segment) that
/// hits send with sendfile from the right offset, no copy. Immutable.
public final class BodyStorage: @unchecked Sendable {
    let array: [UInt8]
    let owner: AnyObject?
    let base: UnsafeRawPointer?
    /// The file the bytes are in (-1 for ordinary memory), and where in it
    /// they start: a transport sends `count` bytes from `offset` with sendfile.
    public let fd: Int32
    public let offset: Int
    public let count: Int

    public init(_ bytes: [UInt8]) {
        array = bytes; owner = nil; base = nil; fd = -1; offset = 0; count = bytes.count
    }

    /// Bytes mapped at `base` from `fd` at `offset` (a memory file, or a disk
    /// tier's segment); `owner` keeps the mapping alive and unmaps it when freed.
    public init(mapped owner: AnyObject, base: UnsafeRawPointer, count: Int, fd: Int32, offset: Int = 0) {
        array = []; self.owner = owner; self.base = base; self.fd = fd; self.offset = offset; self.count = count
    }

    @inline(__always) public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let base { return try body(UnsafeRawBufferPointer(start: base, count: count)) }
        return try array.withUnsafeBytes(body)
    }

    /// The bytes as an array (copies a mapped body).
    public var bytes: [UInt8] { base == nil ? array : withBytes { Array($0) } }

    /// The memory the bytes take: an array's capacity, or whole pages of a
    /// memory file (a disk tier's region is not memory: it charges its own).
    public var chargedBytes: Int { base == nil ? array.capacity : (count + 4095) & ~4095 }
}

/// One stored response (a variant of a primary key). Immutable.
///
/// Kept small, since a memory tier of small objects is mostly these: the
/// fields live once, serialized in `headBytes` (exact capacity; Content-Type
/// lines last, so a 304's head is a prefix of it), and `headers` is parsed
/// from there on the rare paths that need a list (revalidation, derived
/// codings). What every hit reads is kept beside it, decided once.
public final class StoredResponse: Sendable {
    public let key: String
    /// The secondary key (from the response's Vary and the request that stored it).
    public let variant: String
    public let vary: [String]
    public let tenant: String
    public let status: Int
    public let storage: BodyStorage
    /// The body as an array (copies a mapped body; the data path uses `storage`).
    public var body: [UInt8] { storage.bytes }
    public let freshness: Freshness
    /// Bytes charged against the store's capacity: what the object really
    /// takes (body, fields, key and the bookkeeping around them; see `overhead`).
    public let cost: Int
    /// The stored fields serialized ("Name: value\r\n"…), ready to copy into a response.
    public let headBytes: [UInt8]
    /// How much of `headBytes` a 304 sends (all but the Content-Type lines).
    let notModifiedCount: Int32
    public let hasDate: Bool
    public let noTransform: Bool
    public let hasContentRange: Bool
    public let varyHasAcceptEncoding: Bool
    public let etag: String?
    /// Last-Modified as seconds, parsed once (conditionals on every hit compare it).
    public let lastModifiedTime: Int64?
    /// What compression decides on, read once here instead of on every hit:
    /// the Content-Type's essence ("text/html"; see mediaTypeEssence).
    public let mediaType: String?
    public let contentEncoding: String?
    /// Surrogate keys / cache tags the origin gave it (purge --tag).
    public let tags: [String]
    /// A representation edge made from another (its key has the coding after a NUL).
    public let isDerived: Bool

    /// Bytes an object takes beyond its body, fields and key: this instance,
    /// its body's handle, the array and string headers, the store's node,
    /// table slot, queue slot and ghost, and the allocator's own headers
    /// (measured with tools/bench/memory.sh; see MemoryStore).
    public static let overhead = 700

    /// The stored fields as a list (parsed from `headBytes`; not for every hit).
    public var headers: HeaderList {
        var lower: [(String, String)] = [], original: [String] = []
        forEachField { name, value in
            let n = String(decoding: name, as: UTF8.self)
            original.append(n)
            lower.append((n.lowercased(), String(decoding: value, as: UTF8.self)))
        }
        return HeaderList(lowercased: lower, original: original)
    }

    /// Each stored field line a response (`notModified`: a 304) sends, in
    /// order: the whole line with its CRLF, and where in it the name ends (the colon).
    public func forEachLine(notModified: Bool = false, _ body: (UnsafeRawBufferPointer, Int) throws -> Void) rethrows {
        try withHead(notModified: notModified) { p in
            var i = 0
            while i < p.count {
                var colon = i
                while p[colon] != 58 { colon += 1 }
                var end = colon + 2
                while p[end] != 10 { end += 1 }
                try body(UnsafeRawBufferPointer(rebasing: p[i...end]), colon - i)
                i = end + 1
            }
        }
    }

    /// Each stored field's name and value bytes, in order.
    public func forEachField(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) rethrows {
        try forEachLine { line, colon in
            try body(UnsafeRawBufferPointer(rebasing: line[..<colon]), UnsafeRawBufferPointer(rebasing: line[(colon + 2)..<(line.count - 2)]))
        }
    }

    /// The serialized fields a response (`notModified`: a 304) sends.
    @inline(__always) public func withHead<R>(notModified: Bool, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try headBytes.withUnsafeBytes { p in try body(notModified ? UnsafeRawBufferPointer(rebasing: p[..<Int(notModifiedCount)]) : p) }
    }

    /// Last-Modified as stored (the validator a revalidation sends).
    public var lastModified: String? {
        var out: String?
        forEachField { name, value in
            if out == nil, equalsLowercase(name, 0, name.count, "last-modified") { out = String(decoding: value, as: UTF8.self) }
        }
        return out
    }

    /// Its Date, or when it was received if it had none (what If-Modified-Since
    /// is compared with when there is no Last-Modified: RFC 9111 §4.3.2).
    public var dateTime: Int64 {
        var out: Int64?
        forEachField { name, value in
            if out == nil, equalsLowercase(name, 0, name.count, "date") { out = HTTPDate.parse(value, 0, value.count, now: freshness.responseTime) }
        }
        return out ?? freshness.responseTime
    }

    public convenience init(key: String, variant: String, vary: [String], tenant: String, status: Int, headers: HeaderList, body: [UInt8],
                            freshness: Freshness, tags: [String] = []) {
        self.init(key: key, variant: variant, vary: vary, tenant: tenant, status: status, headers: headers, storage: BodyStorage(body),
                  freshness: freshness, tags: tags)
    }

    public init(key: String, variant: String, vary: [String], tenant: String, status: Int, headers: HeaderList, storage: BodyStorage,
                freshness: Freshness, tags: [String] = []) {
        self.key = key; self.variant = variant; self.vary = vary; self.tenant = tenant; self.tags = tags
        self.status = status; self.storage = storage; self.freshness = freshness
        isDerived = key.utf8.contains(0)
        // Serialized once, at its exact size, Content-Type lines last.
        var size = 0
        for f in headers.fields { size += f.name.utf8.count + f.value.utf8.count + 4 }
        var head: [UInt8] = []
        head.reserveCapacity(size)
        var typeLines: [Int] = []
        func line(_ i: Int) {
            let f = headers.fields[i]
            head.append(contentsOf: f.name.utf8); head.append(58); head.append(32)
            head.append(contentsOf: f.value.utf8); head.append(13); head.append(10)
        }
        for i in headers.fields.indices {
            if headers.lowerNames[i] == "content-type" { typeLines.append(i) } else { line(i) }
        }
        notModifiedCount = Int32(head.count)
        for i in typeLines { line(i) }
        headBytes = head
        hasDate = headers.contains("date")
        etag = headers.first("etag")
        lastModifiedTime = headers.first("last-modified").flatMap { HTTPDate.parse($0, now: freshness.responseTime) }
        mediaType = headers.first("content-type").map(mediaTypeEssence)
        let ce = headers.values("content-encoding")
        contentEncoding = ce.isEmpty ? nil : ce.joined(separator: ",")
        noTransform = CacheControl.parse(headers.values("cache-control")).noTransform
        hasContentRange = headers.contains("content-range")
        varyHasAcceptEncoding = headers.listElements("vary").contains { $0 == "accept-encoding" || $0 == "*" }
        var c = storage.chargedBytes + key.utf8.count + variant.utf8.count + size + StoredResponse.overhead
        for t in tags { c += t.utf8.count + 32 }
        for v in vary { c += v.utf8.count + 32 }
        cost = c
    }

    /// The same response with some parts replaced (a 304's merged fields and new
    /// freshness, a derived coding's key, fields and body, a soft purge's
    /// lifetime): the one way a stored response is made from another.
    public func with(key: String? = nil, headers: HeaderList? = nil, storage: BodyStorage? = nil, freshness: Freshness? = nil) -> StoredResponse {
        StoredResponse(key: key ?? self.key, variant: variant, vary: vary, tenant: tenant, status: status, headers: headers ?? self.headers,
                       storage: storage ?? self.storage, freshness: freshness ?? self.freshness, tags: tags)
    }
}

/// What every storage tier offers (the disk tier implements it too).
public final class MemoryStore: CacheStorage {
    final class Node {
        /// Replaced in place (under the shard lock) by a soft purge.
        var object: StoredResponse
        var freq: UInt8 = 0
        /// Charged to the small queue's bytes.
        var inSmall = false
        var removed = false
        init(_ o: StoredResponse) { object = o }
    }

    struct Shard {
        var table: [String: [Node]] = [:]
        var small = FIFO<Node>()
        var main = FIFO<Node>()
        /// Keys recently evicted from the small queue, by hash (a key's string
        /// is not kept alive for it).
        var ghost: Set<UInt64> = []
        var ghostOrder = FIFO<UInt64>()
        var bytes = 0
        var smallBytes = 0
        var objects = 0
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
    /// the memory tier replaces the object (its body is shared, not copied).
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
        // FNV-1a: stable across runs (the disk tier will share it). Hashing
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
    public func lookup(key: String, request: () -> HeaderList) -> StoredResponse? { find(key, derived: nil, request) }

    /// The representation edge derived from `key` in `coding`, if one is stored.
    /// A base with no derived coding stored (most objects of types never
    /// compressed) is answered from its hash, without making the derived key.
    public func lookupDerived(key: String, _ coding: ContentCoding, request: () -> HeaderList) -> StoredResponse? {
        find(key, derived: coding, request)
    }

    /// The stored variant of `key` (or of its derived key in `coding`) that the
    /// request selects: one hash and one lock either way.
    @inline(__always)
    func find(_ key: String, derived coding: ContentCoding?, _ request: () -> HeaderList) -> StoredResponse? {
        let h = MemoryStore.keyHash(key, stopAtSeparator: true)
        return shards[shard(hash: h)].m.withLock { s in
            var k = key
            if let coding {
                guard !s.derivedBases.isEmpty, s.derivedBases[h] != nil else { return nil }
                k = CacheKey.derived(key, coding)
            }
            guard let nodes = s.table[k] else { return nil }
            var fields: HeaderList?
            for n in nodes {
                if !n.object.vary.isEmpty {
                    if fields == nil { fields = request() }
                    guard let v = CacheKey.variant(vary: n.object.vary, request: fields!), v == n.object.variant else { continue }
                }
                if n.freq < 3 { n.freq += 1 }
                return n.object
            }
            return nil
        }
    }

    /// Memory never has to read: the answer is always at hand.
    public func lookup(key: String, request: () -> HeaderList, waiter: Waiter, waking: any Waking) -> StorageLookup {
        lookup(key: key, request: request).map { .found($0) } ?? .absent
    }

    /// Every stored variant of a key (for explain and purge).
    public func variants(key: String) -> [StoredResponse] {
        shards[shard(key)].m.withLock { s in (s.table[key] ?? []).map(\.object) }
    }

    /// Removes every object of a tenant (a tenant dropped by a reload); returns how many.
    @discardableResult
    public func remove(tenant: String) -> Int {
        var removed = 0
        for box in shards {
            box.m.withLock { s in
                for (key, nodes) in s.table {
                    let mine = nodes.filter { $0.object.tenant == tenant }
                    guard !mine.isEmpty else { continue }
                    for n in mine { MemoryStore.drop(n, &s) }
                    let rest = nodes.filter { $0.object.tenant != tenant }
                    s.table[key] = rest.isEmpty ? nil : rest
                    removed += mine.count
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

    /// Stores `r` unless a purge recorded after `startedAt` (the purge epoch
    /// when its request left for the origin) selects it. The check is made
    /// under the shard lock, and a purge records itself before it visits the
    /// shards, so either the purge sees the object or the insert sees the purge.
    @discardableResult
    public func insert(_ r: StoredResponse, startedAt: UInt64?) -> Bool {
        guard r.cost <= maxObjectBytes else { noteNotStored(key: r.key, reason: "larger than the largest object stored"); return false }
        if let q = quotas.withLock({ $0[r.tenant] }), bytes(tenant: r.tenant) + r.cost > q {
            noteNotStored(key: r.key, reason: "tenant at its cache quota")
            return false
        }
        let cap = shardCapacity
        var freed: [StoredResponse] = []
        let ok = shards[shard(r.key)].m.withLock { s -> Bool in
            if let since = startedAt, purges.purgedSince(since, r) { return false }
            var nodes = s.table[r.key] ?? []
            if let i = nodes.firstIndex(where: { $0.object.variant == r.variant }) {
                if let o = MemoryStore.drop(nodes[i], &s) { freed.append(o) }
                nodes.remove(at: i)
            }
            if nodes.count >= maxVariants {
                if let o = MemoryStore.drop(nodes[0], &s) { freed.append(o) }
                nodes.removeFirst()
            }
            let n = Node(r)
            nodes.append(n)
            s.table[r.key] = nodes
            if r.key.utf8.contains(1) { s.postKeys += 1 }
            // A new base representation outdates what edge derived from the old one.
            if !r.key.utf8.contains(0) {
                for d in CacheKey.allDerived(r.key) {
                    guard let old = s.table.removeValue(forKey: d) else { continue }
                    for o in old { if let gone = MemoryStore.drop(o, &s) { freed.append(gone) } }
                }
            }
            s.bytes += r.cost
            s.objects += 1
            if r.isDerived { s.derivedBases[MemoryStore.keyHash(r.key, stopAtSeparator: true), default: 0] += 1 }
            if !s.notStored.isEmpty { s.notStored[MemoryStore.ghostHash(r.key)] = nil }
            if s.ghost.remove(MemoryStore.ghostHash(r.key)) != nil {
                s.main.append(n)
            } else {
                n.inSmall = true
                s.small.append(n)
                s.smallBytes += r.cost
            }
            MemoryStore.evict(&s, capacity: cap, freed: &freed)
            return true
        }
        // Tenant accounting outside the shard lock (its own lock; never both held).
        tenantBytes.withLock { t in
            if ok { t[r.tenant, default: 0] += r.cost }
            for f in freed { t[f.tenant, default: 0] -= f.cost }
        }
        if !ok { noteNotStored(key: r.key, reason: "purged while it was being fetched") }
        return ok
    }

    /// Remembers why a response for `key` was not stored (edgectl explain).
    public func noteNotStored(key: String, reason: String) { note(key, .text(reason)) }

    /// The same, for a policy reason: kept as it is, under the key's shard lock.
    public func noteNotStored(key: String, _ why: NotStored, status: Int) { note(key, .policy(why, status: status)) }

    func note(_ key: String, _ n: NotStoredNote) {
        let h = MemoryStore.ghostHash(key)
        shards[shard(key)].m.withLock { s in
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
                var keys: [String] = []
                switch scope {
                case .key(let k):
                    keys = ([k] + CacheKey.allDerived(k)).filter { s.table[$0] != nil }
                    // Cached POST answers for the URL (rare: only routes that cache POST make them).
                    let post = k + CacheKey.bodySeparator
                    if s.postKeys > 0 { keys += s.table.keys.filter { $0.hasPrefix(post) } }
                default: keys = Array(s.table.keys)
                }
                for key in keys {
                    guard let nodes = s.table[key] else { continue }
                    var kept: [Node] = []
                    for n in nodes {
                        guard scope.matches(n.object) else { kept.append(n); continue }
                        count += 1
                        if soft {
                            n.object = n.object.markedStale(now: now)
                            kept.append(n)
                        } else if let o = MemoryStore.drop(n, &s) {
                            gone.append(o)
                        }
                    }
                    s.table[key] = kept.isEmpty ? nil : kept
                }
            }
        }
        if !gone.isEmpty { tenantBytes.withLock { t in for f in gone { t[f.tenant, default: 0] -= f.cost } } }
        return count
    }

    /// Primary keys stored for a tenant with this prefix (explain, tests).
    public func keys(prefix: String) -> [String] {
        var out: [String] = []
        for box in shards { box.m.withLock { s in out += s.table.keys.filter { $0.hasPrefix(prefix) } } }
        return out.sorted()
    }

    @discardableResult
    public func remove(key: String) -> Int {
        let gone = shards[shard(key)].m.withLock { s -> [StoredResponse] in
            var out: [StoredResponse] = []
            var keys = [key] + CacheKey.allDerived(key)
            // A URL's slices go with it (its cached POST answers stay: each is keyed on its own body).
            if s.postKeys > 0 && !key.utf8.contains(1) {
                let slices = Slices.keyPrefix(key)
                keys += s.table.keys.filter { $0.hasPrefix(slices) }
            }
            for k in keys {
                guard let nodes = s.table.removeValue(forKey: k) else { continue }
                for n in nodes { if let o = MemoryStore.drop(n, &s) { out.append(o) } }
            }
            return out
        }
        if !gone.isEmpty { tenantBytes.withLock { t in for f in gone { t[f.tenant, default: 0] -= f.cost } } }
        return gone.count
    }

    public var bytesUsed: Int { shards.reduce(0) { t, b in t + b.m.withLock { $0.bytes } } }
    public var objectCount: Int { shards.reduce(0) { t, b in t + b.m.withLock { $0.objects } } }

    /// What a removed node holds: its object is released at once, though
    /// the node waits in its queue until eviction reaches it.
    static let tombstone = StoredResponse(key: "", variant: "", vary: [], tenant: "", status: 0, headers: HeaderList(), body: [],
                                          freshness: Freshness(lifetime: 0, source: .heuristic, correctedInitialAge: 0, responseTime: 0,
                                                               mustRevalidate: false, noCache: false, staleWhileRevalidate: nil,
                                                               staleIfError: nil))

    /// Marks a node gone, un-charges it and lets go of its object, which it
    /// returns (nil when it was gone already).
    @discardableResult
    static func drop(_ n: Node, _ s: inout Shard) -> StoredResponse? {
        guard !n.removed else { return nil }
        let o = n.object
        n.removed = true
        n.object = tombstone
        s.bytes -= o.cost
        s.objects -= 1
        if o.isDerived {
            let h = keyHash(o.key, stopAtSeparator: true)
            if let n = s.derivedBases[h], n > 1 { s.derivedBases[h] = n - 1 } else { s.derivedBases[h] = nil }
        }
        if o.key.utf8.contains(1) { s.postKeys -= 1 }
        if n.inSmall { s.smallBytes -= o.cost; n.inSmall = false }
        return o
    }

    static func unlink(_ n: Node, _ s: inout Shard) {
        guard var nodes = s.table[n.object.key] else { return }
        nodes.removeAll { $0 === n }
        s.table[n.object.key] = nodes.isEmpty ? nil : nodes
    }

    static func evict(_ s: inout Shard, capacity: Int, freed: inout [StoredResponse]) {
        while s.bytes > capacity {
            let useSmall = s.smallBytes > capacity / 10 || s.main.isEmpty
            if useSmall, let n = s.small.popFirst() {
                if n.removed { continue }
                // Leaving the small queue: hit again → main, else out (and remembered).
                s.smallBytes -= n.object.cost
                n.inSmall = false
                if n.freq >= 1 {
                    n.freq = 0
                    s.main.append(n)
                } else {
                    unlink(n, &s)
                    remember(n.object.key, &s)
                    if let o = drop(n, &s) { freed.append(o) }
                }
            } else if let n = s.main.popFirst() {
                if n.removed { continue }
                if n.freq > 0 {
                    n.freq -= 1
                    s.main.append(n)
                } else {
                    unlink(n, &s)
                    if let o = drop(n, &s) { freed.append(o) }
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
    public static func keyHash(_ key: String, stopAtSeparator: Bool, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        let inPlace = key.utf8.withContiguousStorageIfAvailable { p -> UInt64 in
            var n = 0
            if stopAtSeparator { while n < p.count && p[n] > 1 { n += 1 } } else { n = p.count }
            return fnv1a(UnsafeBufferPointer(rebasing: p[..<n]), seed: seed)
        }
        return inPlace ?? (stopAtSeparator ? fnv1a(key.utf8.prefix { $0 > 1 }, seed: seed) : fnv1a(key.utf8, seed: seed))
    }

    /// The ghost list's hash of a key (all of it).
    static func ghostHash(_ key: String) -> UInt64 { keyHash(key, stopAtSeparator: false) }

    static func remember(_ key: String, _ s: inout Shard) {
        let h = ghostHash(key)
        guard s.ghost.insert(h).inserted else { return }
        s.ghostOrder.append(h)
        let limit = max(64, s.objects)
        while s.ghost.count > limit, let old = s.ghostOrder.popFirst() { s.ghost.remove(old) }
    }
}
