// A miss on its way into the cache: the response's stored form (key, variant,
// fields, freshness, tags) and its body as it arrives, up to a limit, with the
// purge epoch it started under. The pipeline appends body bytes while it
// relays them and, once complete, stores `stored(...)`; an aborted fill is
// just dropped. Owned by one worker (no locks); a stream (Collapsing.swift)
// carries the body instead when followers read it while it is written, and
// a sink (a disk tier) when the object is too large for the memory tier.

/// Where a fill's body goes instead of memory: a lower tier that writes it
/// as it arrives, so a fill too large for the memory tier never holds more
/// than a small buffer of it. Called by the fill's worker only.
public protocol FillSink: AnyObject, Sendable {
    /// More of the body; false when the tier gave up on it (not stored).
    /// Called only after `ready` said true.
    func append(_ bytes: UnsafeRawBufferPointer) -> Bool
    /// Can the tier take more now? False when it is behind (a full write
    /// queue): the fill takes no more bytes until `w` is woken, then asks again.
    func ready(_ w: Waiter, _ waking: any Waking) -> Bool
    /// The body is complete: `r` (its head; the body is what was appended)
    /// is stored, unless a purge since `startedAt` selects it. False when not.
    func finish(_ r: StoredResponse, startedAt: UInt64) -> Bool
    /// Not stored after all (the origin stopped short, the client left).
    func abort()
    /// The fill's collapsed followers read its body here while it is written
    /// (nil: they wait for it to be stored).
    var followers: (any SharedFill)? { get }
}

/// A response being stored while it streams to the client.
public final class CacheFill {
    public let key: String
    public let variant: String
    public let vary: [String]
    public let tenant: String
    public let status: Int
    public let headers: HeaderList
    public let freshness: Freshness
    public let limit: Int
    public let tags: [String]
    /// The purge epoch when the request left for the origin (see PurgeLog).
    public let startedAt: UInt64
    /// Followers read the body from here while it arrives (see Collapsing.swift);
    /// the body then lives in the stream, not in `body`.
    public var stream: FillStream?
    /// The origin's body arrived completely (only then is it stored).
    public var complete = false
    public var body: [UInt8] = []
    public var tooLarge = false
    /// The body goes here instead of `body` (see FillSink); nil after it gave up.
    public var sink: (any FillSink)?
    /// The sink gave up (a full write queue, a directory out of service).
    public var sinkFailed = false

    public init(key: String, variant: String, vary: [String], tenant: String, status: Int, headers: HeaderList, freshness: Freshness, limit: Int,
         tags: [String], startedAt: UInt64) {
        self.key = key; self.variant = variant; self.vary = vary; self.tenant = tenant
        self.status = status; self.headers = headers; self.freshness = freshness; self.limit = limit
        self.tags = tags; self.startedAt = startedAt
    }

    @inline(__always) public func append(_ p: UnsafeRawPointer, _ n: Int) {
        guard !tooLarge else { return }
        if let s = sink {
            if !s.append(UnsafeRawBufferPointer(start: p, count: n)) { sink = nil; sinkFailed = true; tooLarge = true }
            return
        }
        if body.count + n > limit { tooLarge = true; body = []; return }
        body.append(contentsOf: UnsafeRawBufferPointer(start: p, count: n))
    }

    /// The body at its exact size (grown by appends, its array may hold up to
    /// twice what it needs, and a stored object is charged its capacity).
    public var exactBody: [UInt8] {
        body.capacity > body.count + body.count / 8 + 64 ? body.withUnsafeBufferPointer { Array($0) } : body
    }

    /// The stored response this fill makes, its body kept in `storage` (the
    /// bytes it collected, or others: an empty body for the head that
    /// read-while-write followers start from).
    public func stored(_ storage: BodyStorage) -> StoredResponse {
        StoredResponse(key: key, variant: variant, vary: vary, tenant: tenant, status: status, headers: headers, storage: storage,
                       freshness: freshness, tags: tags)
    }
}

