// The cache's storage as the pipeline calls it: one interface for every tier
// (the memory store today; a disk segment store under it next). Every call is
// safe from any worker thread; none blocks on I/O in the memory tier.
//
// - lookup gives the stored response: metadata (status, fields, freshness,
//   variant) and a body handle (BodyStorage: bytes, or a file region by
//   descriptor, offset and length, which the transport sends with sendfile);
// - a miss is filled through a CacheFill (body bytes appended as they
//   arrive) and then committed, or aborted; derived bodies (another coding)
//   are kept with `storage(for:)` and inserted;
// - update replaces a stored response's metadata (a 304's merged fields);
// - purge, remove, quotas and the accounting the admin API shows.
//
// A tier whose reads may block (a disk) answers a request's lookup `.pending`
// and reads on a thread of its own; when the answer is ready it calls
// `waking.wake(waiter)` (the pipeline's mailboxes), and the exchange, parked
// meanwhile, asks again. A worker's loop never waits for storage.
#if canImport(EdgeHTTP)
import EdgeHTTP
#endif

/// A request's lookup: the answer, or a read under way (ask again when woken).
public enum StorageLookup: Sendable {
    case found(StoredResponse)
    /// Read from a disk tier for this request (Cache-Status `detail=disk`).
    case disk(StoredResponse)
    /// A disk tier's object too large for memory: its head (the response's
    /// body is empty) now, its body read a block at a time as it is sent,
    /// from the first byte the answer needs (Cache-Status `detail=disk`).
    case diskStream(StoredResponse, any StreamedBody)
    case absent, pending
}

/// A body that reaches the client as it becomes readable: a fill that
/// followers read while it arrives (FillStream), or a disk tier's large body
/// read block by block. One exchange reads it, on its worker; what becomes
/// readable later wakes that exchange (`Waking`).
public protocol StreamedBody: AnyObject, Sendable {
    /// The body's length.
    var length: Int { get }
    /// Copies up to `max` bytes from `offset` into `out`; `.wait` when none
    /// are readable yet (`w` is woken when they are); `.failed` when the body
    /// can never be read whole (what was sent is all the client gets).
    func read(from offset: Int, max: Int, into out: IOBuffer, waiter w: Waiter) -> StreamRead
    /// The same bytes as a file span to send as they lie (`.copy`: read them
    /// instead); `.wait` and `.failed` as for `read`.
    func span(from offset: Int, max: Int, waiter w: Waiter) -> StreamSpan
    /// `n` bytes of a `.file` span were sent (counted where the tier counts).
    func sentFromFile(_ n: Int)
}

public enum StreamRead: Equatable { case copied(Int), wait, failed }

/// Where a streamed body's next bytes lie in a file, for a plain socket to
/// send them with sendfile (no copy through memory).
public enum StreamSpan: Equatable {
    /// `count` bytes at `offset` in `fd`, checked: send them (the body keeps
    /// the file open while it lives).
    case file(fd: Int32, offset: Int, count: Int)
    /// Not from a file this time: `read` them (copied).
    case copy
    case wait, failed

    /// Bodies from this size on are sent from their file pages when they lie
    /// in one (a disk tier's); smaller ones are copied, in one write with their head.
    public static let sendfileMin = 16 * 1024
}

extension StreamedBody {
    /// Bodies in memory are copied (`read`).
    public func span(from offset: Int, max: Int, waiter w: Waiter) -> StreamSpan { .copy }
    public func sentFromFile(_ n: Int) {}
}

/// A tier below memory as stats and metrics show it.
public struct StorageTierStatus: Sendable, Encodable {
    public var name: String
    public var path: String
    public var inService: Bool
    public var loading: Bool
    public var lastError: String?
    public var objects: Int
    public var bytes: Int
    public var capacity: Int
    public var writes: Int
    /// Writes not made: the queue was full (the write budget).
    public var writeDrops: Int
    public var writeErrors: Int
    public var reads: Int
    /// Reads that found a torn or corrupt record (served as misses).
    public var readFailures: Int
    /// Bytes read from the tier (whole records, and the blocks of large bodies read as they are sent).
    public var readBytes: Int
    /// Of the writes, fills too large for memory written as they arrived.
    public var streamedWrites: Int
    /// Of the reads, those a worker made itself because the page cache held the record (RWF_NOWAIT).
    public var pageCacheReads: Int
    /// Of the bodies read block by block (too large for memory, or a range),
    /// the bytes sent to plain sockets from the segments' pages (sendfile), not copied.
    public var sentFromPages: Int
    /// Times a fill too large for memory found the write queue full and
    /// waited for room (reading no more of its origin meanwhile).
    public var fillHolds: Int
    public var loadedObjects: Int
    public var loadMillis: Int
    public init(name: String, path: String, inService: Bool, loading: Bool, lastError: String?, objects: Int, bytes: Int, capacity: Int,
                writes: Int, writeDrops: Int, writeErrors: Int, reads: Int, readFailures: Int, readBytes: Int = 0, streamedWrites: Int = 0, loadedObjects: Int, loadMillis: Int,
                pageCacheReads: Int = 0, sentFromPages: Int = 0, fillHolds: Int = 0) {
        self.name = name; self.path = path; self.inService = inService; self.loading = loading; self.lastError = lastError
        self.objects = objects; self.bytes = bytes; self.capacity = capacity; self.writes = writes; self.writeDrops = writeDrops
        self.writeErrors = writeErrors; self.reads = reads; self.readFailures = readFailures; self.readBytes = readBytes; self.streamedWrites = streamedWrites; self.loadedObjects = loadedObjects
        self.loadMillis = loadMillis
        self.pageCacheReads = pageCacheReads
        self.sentFromPages = sentFromPages
        self.fillHolds = fillHolds
    }
}

/// Whoever wakes parked exchanges (the pipeline's per-worker mailboxes).
public protocol Waking: AnyObject, Sendable {
    func wake(_ w: Waiter)
}

extension CacheStorage {
    /// A tier whose bodies are all at hand reads no less for a part of one.
    public func lookup(key: String, request: () -> HeaderList, partial: Bool, waiter: Waiter, waking: any Waking) -> StorageLookup {
        lookup(key: key, request: request, waiter: waiter, waking: waking)
    }

    /// A tier that keys nothing by the hashes makes its own.
    public func lookup(key: String, hashes: KeyHashes, request: () -> HeaderList, partial: Bool, waiter: Waiter, waking: any Waking) -> StorageLookup {
        lookup(key: key, request: request, partial: partial, waiter: waiter, waking: waking)
    }

    public func noteNotStored(key: String, hashes: KeyHashes, _ why: NotStored, status: Int) {
        noteNotStored(key: key, why, status: status)
    }
}

public protocol CacheStorage: AnyObject, Sendable {
    /// The stored variant of `key` matching the request (its fields are asked
    /// for only when a variant has Vary, so a lookup that finds nothing without
    /// asking means no variant of the key is stored: a miss by URI).
    func lookup(key: String, request: () -> HeaderList) -> StoredResponse?
    /// A request's lookup, which may be `.pending` on a tier that has to read:
    /// `waking.wake(waiter)` follows when the answer is ready.
    func lookup(key: String, request: () -> HeaderList, waiter: Waiter, waking: any Waking) -> StorageLookup
    /// The same for a request that needs part of the body (a Range): a tier
    /// that keeps bodies in checked blocks may answer `.diskStream` for any
    /// of them, reading only the blocks the range covers, where it would read
    /// a record that fits memory whole (and promote it) for a full request.
    func lookup(key: String, request: () -> HeaderList, partial: Bool, waiter: Waiter, waking: any Waking) -> StorageLookup
    /// The same with the key's hashes made already (`MemoryStore.keyHashes`):
    /// the pipeline makes them once a request, for the lookup, collapsing and
    /// the not-stored note.
    func lookup(key: String, hashes: KeyHashes, request: () -> HeaderList, partial: Bool, waiter: Waiter, waking: any Waking) -> StorageLookup
    /// Every stored variant of `key` (explain, purge, uri-miss vs vary-miss).
    func variants(key: String) -> [StoredResponse]
    /// Stores a response unless a purge since `startedAt` selects it (nil: none
    /// is checked); false when not admitted.
    @discardableResult func insert(_ r: StoredResponse, startedAt: UInt64?) -> Bool
    /// Stores a completed fill with its body kept as this tier keeps bodies.
    @discardableResult func commit(_ fill: CacheFill) -> Bool
    /// A fill that will not complete (the origin broke off, the client left).
    func abort(_ fill: CacheFill)
    /// New metadata for a stored response (304 merge, RFC 9111 §4.3.4).
    @discardableResult func update(_ r: StoredResponse, startedAt: UInt64?) -> Bool
    /// How this tier keeps a body made here (a derived coding).
    func storage(for body: [UInt8]) -> BodyStorage
    /// Removes every variant of `key` (and what was derived from it); returns how many.
    @discardableResult func remove(key: String) -> Int
    /// Removes a tenant's objects (a tenant a reload dropped).
    @discardableResult func remove(tenant: String) -> Int
    /// Removes, or (`soft`) marks stale at `now`, what `scope` selects; logged so
    /// that a response in flight is not stored after it. Returns how many.
    @discardableResult func purge(_ scope: PurgeScope, soft: Bool, now: Int64) -> Int
    /// The purge log responses in flight are checked against.
    var purges: PurgeLog { get }
    /// Stored primary keys starting with `prefix` (prefix purges, explain).
    func keys(prefix: String) -> [String]
    /// Why a response for `key` was not stored, for explain.
    func noteNotStored(key: String, reason: String)
    /// The same for a policy reason and the origin's status (nothing formatted
    /// per response: explain formats it when asked).
    func noteNotStored(key: String, _ why: NotStored, status: Int)
    /// The same with the key's hashes made already.
    func noteNotStored(key: String, hashes: KeyHashes, _ why: NotStored, status: Int)
    /// The representation derived from `key` in `coding` (CacheKey.derived), if
    /// stored: a tier may answer "none" for a base with no derived coding without
    /// making the derived key (a hit on a type never compressed pays nothing more).
    func lookupDerived(key: String, _ coding: ContentCoding, request: () -> HeaderList) -> StoredResponse?
    func whyNotStored(key: String) -> String?
    /// Bytes each tenant may hold.
    func setQuotas(_ q: [String: Int])
    /// Bytes each tenant may hold in memory, and in a lower tier where that
    /// tenant has a quota of its own there (a tier without one ignores `lower`).
    func setQuotas(_ q: [String: Int], lower: [String: Int])
    func bytes(tenant: String) -> Int
    var bytesUsed: Int { get }
    /// Of those, the bytes of keys, fields and bodies themselves (the rest of
    /// `bytesUsed` is what keeping them costs: tools/bench/memory.sh).
    var storedBytes: Int { get }
    var objectCount: Int { get }
    /// Bytes the memory tier may hold.
    var capacity: Int { get }
    /// Larger responses are not stored.
    var maxObjectBytes: Int { get }
    /// The tiers below memory (none for the memory store alone).
    var tiers: [StorageTierStatus] { get }
    /// Bytes a tenant holds in the tiers below memory.
    func lowerBytes(tenant: String) -> Int
    /// For explain (off the data path: it may read synchronously): the
    /// response a tier below memory holds for `key` that the request
    /// selects, with the tier's name, when memory has none.
    func lowerTierLookup(key: String, request: () -> HeaderList) -> (tier: String, response: StoredResponse)?
    /// Where the body of `fill`, `length` bytes long, goes as it arrives when
    /// it is too large for memory (a disk tier writes it as it streams in);
    /// nil: into the fill's own buffer, stored at commit as before.
    func fillSink(for fill: CacheFill, length: Int) -> (any FillSink)?
}

extension CacheStorage {
    public var tiers: [StorageTierStatus] { [] }
    public func setQuotas(_ q: [String: Int], lower: [String: Int]) { setQuotas(q) }
    public func lowerBytes(tenant: String) -> Int { 0 }
    public func lowerTierLookup(key: String, request: () -> HeaderList) -> (tier: String, response: StoredResponse)? { nil }
    public func fillSink(for fill: CacheFill, length: Int) -> (any FillSink)? { nil }

    /// A tier with no faster way looks the derived key up.
    public func lookupDerived(key: String, _ coding: ContentCoding, request: () -> HeaderList) -> StoredResponse? {
        lookup(key: CacheKey.derived(key, coding), request: request)
    }

    public func noteNotStored(key: String, _ why: NotStored, status: Int) {
        noteNotStored(key: key, reason: NotStoredNote.policy(why, status: status).text)
    }
}

/// Why a response was not stored, as kept for explain: a policy reason and
/// the status (formatted only when asked), or a sentence.
public enum NotStoredNote: Sendable, Equatable {
    case policy(NotStored, status: Int)
    case text(String)

    public var text: String {
        switch self {
        case .policy(let why, let status): return why.rawValue + " (status " + String(status) + ")"
        case .text(let s): return s
        }
    }
}
