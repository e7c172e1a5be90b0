// The cache in the pipeline: lookup before the origin, hits served from the
// memory store, misses stored while they stream to the client, stale entries
// revalidated with a conditional request, unsafe methods invalidating.
// Policy decisions all come from EdgeCache.CachePolicy; this file only wires
// them to connections. Thread rules: see Worker.swift (the store is shared and
// locks per shard; everything else here is the worker's own).
import EdgeCache
import EdgeHTTP
import EdgeIO
import EdgeTLS

/// Per-exchange cache state on a client connection.
struct ExchangeCache {
    var key: String?
    var host = ""
    var target = ""
    /// The request's fields as the cache policy reads them, made only when
    /// it needs them: a plain request (no directives, conditionals, ranges or
    /// credentials: cacheLookup) has none of the fields it reads while
    /// looking up, and one going to the origin keeps a copy of its head
    /// (`deferred`) until storing the answer needs them all (Vary): a
    /// no-store answer (a pass-through on a caching route) never makes them.
    var request = HeaderList()
    var deferred: DeferredFields?
    /// Makes the deferred fields (before storing an answer).
    mutating func makeRequest() {
        if let d = deferred { request = d.make(); deferred = nil }
    }
    /// Hands the deferred fields' storage (unused: the exchange is over) to
    /// `spare`, for the next exchange's (DeferredFields.init) when it is larger.
    mutating func releaseDeferred(into spare: inout [UInt8]) {
        guard var d = deferred else { return }
        deferred = nil
        if d.storage.capacity > spare.capacity { swap(&d.storage, &spare) }
    }
    var clientConditional = false
    var revalidating: StoredResponse?
    var fill: CacheFill?
    /// What the cache did (Cache-Status, RFC 9211; the log; the counters).
    var status = CacheStatus()
    var requestTime: Int64 = 0
    /// This request leads a collapsed miss on this key.
    var leaderKey: String?
    /// `key`'s hashes (CacheKey.hashes), made once by the lookup.
    var keyHashes: KeyHashes?
    /// May this request collapse behind another (false after waiting too long)?
    var collapse = true
    /// The origin's response was judged not storable (followers then go alone).
    var uncacheable = false
    /// The client already has its answer (stale-while-revalidate); the origin
    /// exchange only refreshes the cache and writes nothing to the client.
    var background = false
    /// The store's purge epoch when the request left for the origin.
    var purgeEpoch: UInt64 = 0
    /// Remaining freshness of what was served or stored (Cache-Status ttl, RFC 9211 §2.5).
    var ttl: Int64?
    /// A Range miss fetches the whole object (the origin gets no Range) to store
    /// it, and the client gets its range cut from the stream: `slice`, the
    /// bytes it asked for, and how far the origin's body has come.
    var rangeFromFull = false
    var slice: ClosedRange<Int64>?
    var sliceOffset: Int64 = 0
    /// A slicing exchange's state (Slices.swift); nil on every other (one
    /// reference: a hit copies this struct and pays nothing for slices).
    var slices: SliceState?
}

/// A request head's bytes and fields, kept to make its HeaderList later.
///
/// One array: the head's bytes up to the end of its last field value, then the
/// fields themselves (`Field` is plain data). The array is the worker's spare,
/// handed from exchange to exchange (releaseDeferred), so a keep-alive client's
/// misses allocate none. The fields are never the parser's array itself:
/// holding that would share the storage the connection parses its next head
/// into, and that parse would then allocate a new array of the same capacity
/// (copy on write) on every miss. Those allocations, made while the memory tier
/// evicts, were carved out of the holes evicted objects left, so new objects no
/// longer fit them: a full tier of 1 KiB objects took 9% more memory than it
/// holds (anon 281 MiB for 256 MiB; tools/bench/memory.sh).
struct DeferredFields {
    var storage: [UInt8]
    /// Where the fields start in `storage` (the head's bytes end there), and how many.
    let end: Int
    let count: Int
    /// Copies into `spare`'s storage (taken; `spare` is left empty).
    init(_ p: UnsafeRawBufferPointer, _ fields: [Field], reusing spare: inout [UInt8]) {
        var end = 0
        for f in fields { end = max(end, f.valueEnd) }
        var s: [UInt8] = []
        swap(&s, &spare)
        s.removeAll(keepingCapacity: true)
        s.reserveCapacity(end + fields.count * MemoryLayout<Field>.stride)
        s.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[0..<end]))
        fields.withUnsafeBytes { s.append(contentsOf: $0) }
        storage = s
        self.end = end
        self.count = fields.count
    }
    func make() -> HeaderList {
        storage.withUnsafeBytes { raw in
            let stride = MemoryLayout<Field>.stride
            let fields = (0..<count).map { raw.loadUnaligned(fromByteOffset: end + $0 * stride, as: Field.self) }
            return HeaderList(parsed: UnsafeRawBufferPointer(rebasing: raw[0..<end]), fields)
        }
    }
}

/// Bodies at least this large are kept in a memory file, so that hits on plain
/// connections send them with sendfile instead of copying them (see MappedBytes).
let mappedBodyThreshold = 64 * 1024

func storedBody(_ bytes: [UInt8]) -> BodyStorage {
    if bytes.count >= mappedBodyThreshold, let m = bytes.withUnsafeBytes({ MappedBytes($0) }) {
        let b = BodyStorage(mapped: m, base: m.base, count: m.count, fd: m.fd)
        b.charge(handles: heapBytes(b, m))
        return b
    }
    return BodyStorage(bytes)
}

/// The pseudo-field a keyed split's side is in the cache key by (a name no
/// real field can have: it ends in a colon); its value is the side's group.
let splitKeyName = "split:"

/// Fields never stored with a response or never replayed from the cache.
let unstoredFields: Set<String> = ["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "content-length",
                                   "set-cookie", "age", "cdn-cache-control", "surrogate-control", "proxy-connection", "proxy-authenticate",
                                   "x-request-id"]

extension Worker {
    /// Serves the stale response being revalidated when the origin failed and
    /// stale-if-error (response or request) or the route's grace allows it.
    /// Returns true when it did.
    /// `disconnected`: the origin could not be reached at all (refused, reset or
    /// timed out before a response), where the route's stale_if_disconnected
    /// may allow more (RFC 9111 §4.2.4).
    func serveStaleOnError(_ c: ClientConnection, disconnected: Bool = false) -> Bool {
        if c.ex.cache.background {
            // The client already has the stale response; just end the refresh.
            if let o = c.ex.origin { detachOrigin(c, o); closeOrigin(o) }
            finishExchange(c)
            return true
        }
        guard let stored = c.ex.cache.revalidating, let rc = c.ex.route?.cache, !c.ex.responseStarted else { return false }
        // (Serving picks a representation by the request's fields, as a hit does.)
        c.ex.cache.makeRequest()
        let wall = clock.now()
        var detail = CacheStatus.Detail.staleIfError
        if !CachePolicy.mayServeStaleOnError(stored.freshness, request: c.ex.cache.request, now: wall, grace: rc.grace) {
            guard disconnected, rc.staleIfDisconnected > 0,
                  CachePolicy.mayServeStaleOnError(stored.freshness, request: c.ex.cache.request, now: wall, grace: rc.staleIfDisconnected) else { return false }
            detail = .disconnected
        }
        if let o = c.ex.origin { detachOrigin(c, o); closeOrigin(o) }
        c.ex.cache.status = CacheStatus(.hit, detail)
        c.phase = .proxy
        serveNegotiated(c, stored, now: wall)
        return true
    }

    /// The request's fields, built on the first call (a plain GET whose stored
    /// response does not vary never needs them); `asked` records that a lookup did.
    @inline(__always)
    static func requestFields(_ x: inout ExchangeCache, _ plain: inout Bool, _ asked: inout Bool, _ p: UnsafeRawBufferPointer, _ fields: [Field]) -> HeaderList {
        asked = true
        if plain { x.request = HeaderList(parsed: p, fields); plain = false }
        return x.request
    }

    /// Looks the request up. Returns true when it was answered (a hit, or 504
    /// for only-if-cached); false to go on to the origin (maybe to revalidate).
    func cacheLookup(_ c: ClientConnection, _ rc: RouteCache, tenant: Tenant, p: UnsafeRawBufferPointer) -> Bool {
        let e = c.ex
        let wall = clock.now()
        // Built here, then moved into the exchange with swap(&e.cache, &x)
        // wherever the lookup ends (not assigned: a copy of the struct retains
        // every field it holds); x is left with what the exchange held, dropped on return.
        var x = ExchangeCache()
        x.collapse = e.cache.collapse
        x.slices = SliceState.carried(e.cache.slices)
        // Build the request's fields as strings only when the policy needs them:
        // directives, conditionals, ranges, credentials. A plain GET skips this.
        var plain = true, ranged = false
        for f in e.head.fields {
            switch f.known {
            case .cacheControl, .pragma, .authorization, .ifNoneMatch, .ifModifiedSince, .ifRange: plain = false
            case .range: plain = false; ranged = true
            default: break
            }
        }
        // A keyed split's side is a field of the request as the cache sees it
        // (splitKeyName; the route's key names list it, so it varies every entry).
        let keyedSide = e.route?.split.flatMap { $0.keyed ? $0.names[e.splitSide] : nil }
        if keyedSide != nil { plain = false }
        let plainRequest = plain
        if !plain {
            x.request = HeaderList(parsed: p, e.head.fields)
            if let side = keyedSide { x.request.append(name: splitKeyName, value: String(decoding: side, as: UTF8.self)) }
        }
        x.host = String(decoding: e.host, as: UTF8.self)
        x.target = String(decoding: e.target, as: UTF8.self)
        x.requestTime = wall
        x.clientConditional = x.request.contains("if-none-match") || x.request.contains("if-modified-since")
        guard e.method == .get || e.method == .head || e.bodyKeyed else {
            // Unsafe methods are not looked up; a success invalidates (see cacheResponseFinished).
            x.status = CacheStatus(.bypass)
            swap(&e.cache, &x)
            return false
        }
        if e.splitSide > 0 && keyedSide == nil {
            // A split's other sides never share the cache with the first.
            x.status = CacheStatus(.bypass)
            swap(&e.cache, &x)
            return false
        }
        if !rc.bypass.isEmpty {
            // The route's bypass rules: to the origin, nothing looked up or stored.
            if plain { x.request = HeaderList(parsed: p, e.head.fields); plain = false }
            let path = x.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            if let why = rc.bypass.check(path: path, request: x.request) {
                x.status = CacheStatus(.bypass, why == .cookie ? .bypassCookie : why == .header ? .bypassHeader : .bypassPath)
                swap(&e.cache, &x)
                return false
            }
        }
        var key = CacheKey.primary(tenant: tenant.name, https: c.ex.peer.https, host: x.host, target: x.target, query: rc.query)
        // A cached POST: the method and its body (complete in the buffer) are part of the key.
        var bodyLength = 0
        if e.bodyKeyed, case .length(let len) = e.head.framing {
            bodyLength = Int(len)
            // The body is complete at the start of the input buffer (the head is the exchange's).
            key += CacheKey.bodySeparator + "POST:" + sha256Hex(UnsafeRawBufferPointer(rebasing: c.inBuf!.readView[0..<bodyLength]))
        }
        /// The request is answered from the cache: a keyed body is used up.
        func consumeRequest() {
            if bodyLength > 0 { c.inBuf!.consume(bodyLength); e.bodyState = .none }
        }
        x.key = key
        // The lookups ask for the request's fields only when a stored response
        // varies. (Closure literals, not a local function: what a non-escaping
        // literal captures stays on the stack; a local function's vars are boxed.)
        var askedForFields = false
        // A compressing route, for a client that takes a coding edge makes, looks
        // for that representation first (one lookup when it was made before);
        // everyone else looks up the stored response first (see serveNegotiated).
        if let cmp = e.route?.compress, !e.rangeRequested, e.acceptEncoding != nil,
           let want = AcceptEncoding.choose(e.acceptEncoding, offered: cmp.offered),
           want != .identity, let d = config.store.lookupDerived(key: key, want, request: { Worker.requestFields(&x, &plain, &askedForFields, p, e.head.fields) }),
           CachePolicy.decide(d.freshness, request: x.request, now: wall, options: rc.options) == .fresh {
            x.status = CacheStatus(.hit)
            swap(&e.cache, &x)
            consumeRequest()
            serveStored(c, d, now: wall)
            return true
        }
        let found: StoredResponse?
        var fromDisk = e.readFromDisk
        // A Range of a GET reads only the blocks it covers of a body on disk
        // (not the whole record, to promote it), unless what that finds is not
        // usable as it is: then the record is read whole, to be revalidated.
        let partial = ranged && e.method == .get && !e.readWhole
        // The key's hashes, once: the lookup, collapsing and the not-stored note use them.
        let hashes = CacheKey.hashes(key)
        x.keyHashes = hashes
        var answer = config.store.lookup(key: key, hashes: hashes, request: { Worker.requestFields(&x, &plain, &askedForFields, p, e.head.fields) },
                                         partial: partial, waiter: Waiter(worker: index, exchange: e.id), waking: mailboxes)
        if partial, case .diskStream(let s, _) = answer {
            switch CachePolicy.decide(s.freshness, request: x.request, now: wall, options: rc.options) {
            case .fresh, .staleAllowedByClient: break
            default:
                e.readWhole = true
                answer = config.store.lookup(key: key, request: { Worker.requestFields(&x, &plain, &askedForFields, p, e.head.fields) }, partial: false,
                                             waiter: Waiter(worker: index, exchange: e.id), waking: mailboxes)
            }
        }
        switch answer {
        case .found(let s): found = s
        case .disk(let s): found = s; fromDisk = true
        case .diskStream(let s, let body):
            // Too large for memory (or a range of it asked for): its body is read
            // from disk as it is sent. Served when usable as it is; otherwise
            // fetched again whole (it is not revalidated: a 304 could not
            // refresh a body that is not held).
            switch CachePolicy.decide(s.freshness, request: x.request, now: wall, options: rc.options) {
            case .fresh, .staleAllowedByClient:
                x.status = CacheStatus(.hit, .disk)
                swap(&e.cache, &x)
                consumeRequest()
                mayResume(c, p, etag: s.etag, total: body.length)
                serveStreamed(c, s, body, now: wall)
                return true
            default:
                found = nil
            }
        case .absent: found = nil
        case .pending:
            // A tier is reading it (off this thread): wait, woken through the mailbox, and look again.
            e.readFromDisk = true
            park(c, p)
            return true
        }
        if let stored = found {
            var decision = CachePolicy.decide(stored.freshness, request: x.request, now: wall, options: rc.options)
            // A stale POST answer is fetched again, not revalidated or refreshed behind.
            if e.bodyKeyed && (decision == .staleWhileRevalidate || decision == .revalidate) { decision = .revalidate }
            switch decision {
            case .fresh, .staleAllowedByClient:
                x.status = CacheStatus(.hit, fromDisk ? .disk : .none)
                swap(&e.cache, &x)
                consumeRequest()
                serveNegotiated(c, stored, now: wall)
                return true
            case .staleWhileRevalidate:
                // Answer now with the stale response; one request per key refreshes it
                // in the background, detached from this connection (RFC 5861 §3).
                x.revalidating = stored
                x.status = CacheStatus(.hit, .staleWhileRevalidate)
                let leads = e.method == .get && inFlight.tryLead(key)
                // The refresh stores what the origin sends: it needs the request's fields.
                if leads && plain { x.request = HeaderList(parsed: p, e.head.fields); plain = false }
                swap(&e.cache, &x)
                consumeRequest()
                // The refresh is built from this request, then detached (startRequest).
                if leads { c.phase = .proxy }
                serveNegotiated(c, stored, now: wall, finish: !leads)
                if !leads { return true }
                // The refresh fetches the whole object, whatever range this client asked for.
                e.cache.rangeFromFull = e.cache.request.contains("range")
                e.cache.leaderKey = key
                e.cache.purgeEpoch = config.store.purges.epoch
                e.cache.background = true
                return false
            case .revalidate:
                if !e.bodyKeyed { x.revalidating = stored }
                x.status = CacheStatus(.stale)
            }
        } else {
            if rc.slice > 0, !e.bodyKeyed {
                if plain { x.request = HeaderList(parsed: p, e.head.fields); plain = false }
                switch serveSlices(c, &x, rc, key: key, now: wall, p: p) {
                case .served: return true
                case .pending: return true
                case .miss: break
                }
            }
            if CacheControl.parse(x.request.values("cache-control")).onlyIfCached {
                swap(&e.cache, &x)
                e.cache.status = CacheStatus(.miss)
                consumeRequest()
                respondError(c, 504)
                return true
            }
            // Not asked for the request's fields: no variant is stored (see CacheStorage.lookup).
            x.status = CacheStatus(!askedForFields || config.store.variants(key: key).isEmpty ? .uriMiss : .varyMiss)
        }
        // Going to the origin: storing its answer needs the request's fields
        // (Vary, directives); a plain request's are made only if it is stored.
        if plain { x.deferred = DeferredFields(p, e.head.fields, reusing: &spareDeferred) }
        // A Range of a GET (no If-Range, no conditional of the client's own) fetches the
        // whole object to store it, unless the range starts past the largest object stored
        // (that one could not be stored anyway: the Range goes to the origin).
        if found == nil, planSliceFetch(c, &x, rc) {
            // A slicing route asks for whole slices instead (Slices.swift).
        } else if e.method == .get, !e.bodyKeyed, !x.clientConditional, !x.request.contains("if-range"), let r = x.request.first("range"),
           rangeStart(r).map({ $0 < Int64(config.store.maxObjectBytes) }) ?? false {
            x.rangeFromFull = true
        }
        // Collapse concurrent misses (and revalidations) of GETs on this key.
        if e.method == .get && x.collapse {
            let me = Waiter(worker: index, exchange: e.id)
            // Only a plain request can take the leader's response as it is.
            let canStream = plainRequest && e.route?.compress == nil
            switch inFlight.join(key, me, now: now, canStream: canStream, hash: hashes.full) {
            case .leader:
                // The lookup above and this join are two steps: a leader on another
                // worker may have stored the response and left in between. Look once
                // more now that no one else can lead this key (it stays this miss's).
                if found == nil, let s = config.store.lookup(key: key, request: { Worker.requestFields(&x, &plain, &askedForFields, p, e.head.fields) }),
                   CachePolicy.decide(s.freshness, request: x.request, now: wall, options: rc.options) == .fresh {
                    let waiters = inFlight.finish(key, uncacheable: false, now: now)
                    if !waiters.isEmpty { mailboxes.deliver(waiters) }
                    x.status = CacheStatus(.hit)
                    swap(&e.cache, &x)
                    consumeRequest()
                    serveNegotiated(c, s, now: wall)
                    return true
                }
                x.leaderKey = key
            case .follower:
                swap(&e.cache, &x)
                park(c, p)
                return true
            case .stream(let stream):
                let r = stream.response
                if r.vary.isEmpty || CacheKey.variant(vary: r.vary, request: x.request) == r.variant {
                    swap(&e.cache, &x)
                    mayResume(c, p, etag: r.etag, total: stream.length)
                    serveFromStream(c, stream)
                    return true
                }
                if inFlight.follow(key, me) {
                    swap(&e.cache, &x)
                    park(c, p)
                    return true
                }
            case .pass:
                x.status.detail = .pass
            }
        }
        x.purgeEpoch = config.store.purges.epoch
        swap(&e.cache, &x)
        return false
    }

    /// Writes a stored response (or a 304 for a matching conditional request) and ends the exchange.
    /// `varyAcceptEncoding`: the route compresses this response for other clients.
    /// `bodyLength`: a collapsed follower's head; the body (that long) comes from its stream.
    func serveStored(_ c: ClientConnection, _ s: StoredResponse, now wall: Int64, finish: Bool = true, varyAcceptEncoding: Bool = false,
                     bodyLength: Int? = nil) {
        let e = c.ex
        var outcome = Preconditions.Outcome.full
        if s.status == 200 { outcome = storedPreconditions(c, s, request: e.cache.request, size: Int64(s.bodyCount), now: wall) }
        writeStoredHead(c, s, outcome, size: Int64(s.bodyCount), now: wall, varyAcceptEncoding: varyAcceptEncoding, bodyLength: bodyLength)
        if bodyLength != nil { return }   // the caller streams the body
        if e.method != .head {
            switch outcome {
            case .partial(let first, let last): sendStored(c, s, from: Int(first), to: Int(last) + 1)
            case .full: sendStored(c, s, from: 0, to: s.bodyCount)
            case .notModified, .unsatisfiable: break
            }
        }
        if finish { finishExchange(c) } else { flushClient(c) }
    }

    /// A stored head whose body comes from `body` as it is read (a disk tier's
    /// object too large for memory): the head as serveStored writes it, then
    /// phase .stream copies just the bytes the answer needs (pumpStream).
    /// Served as stored: never compressed on the way.
    func serveStreamed(_ c: ClientConnection, _ s: StoredResponse, _ body: any StreamedBody, now wall: Int64) {
        let e = c.ex
        let size = body.length
        var outcome = Preconditions.Outcome.full
        if s.status == 200 { outcome = storedPreconditions(c, s, request: e.cache.request, size: Int64(size), now: wall) }
        writeStoredHead(c, s, outcome, size: Int64(size), now: wall)
        var from = 0, to = 0
        if e.method != .head {
            switch outcome {
            case .partial(let first, let last): (from, to) = (Int(first), Int(last) + 1)
            case .full: to = size
            case .notModified, .unsatisfiable: break
            }
        }
        guard to > from else { return finishExchange(c) }
        e.stream = body
        e.streamOffset = from
        e.streamEnd = to
        mayBeWoken(c)
        c.phase = .stream
        c.timeout = .body
        c.deadline = 0          // the send timeout covers the client
        pumpStream(c)
    }

    /// Conditionals, then Range / If-Range, for a stored representation `size`
    /// bytes long (EdgeHTTP.Preconditions).
    func storedPreconditions(_ c: ClientConnection, _ s: StoredResponse, request req: HeaderList, size: Int64, now wall: Int64) -> Preconditions.Outcome {
        let ims = req.first("if-modified-since")
        return Preconditions.evaluate(ifNoneMatch: req.first("if-none-match"), ifModifiedSince: ims,
                                      range: req.first("range"), ifRange: req.first("if-range"), etag: s.etag,
                                      lastModified: s.lastModifiedTime, date: ims != nil && s.lastModifiedTime == nil ? s.dateTime : nil,
                                      size: size, rangeAllowed: c.ex.method == .get, now: wall)
    }

    /// The head of a response from the store: `s`'s fields (a slice's own
    /// Content-Range left out), then Date, Age, Cache-Status, Via, the route's
    /// fields and the framing for `outcome` of a representation `size` long.
    func writeStoredHead(_ c: ClientConnection, _ s: StoredResponse, _ outcome: Preconditions.Outcome, size: Int64, now wall: Int64,
                         varyAcceptEncoding: Bool = false, bodyLength: Int? = nil) {
        let e = c.ex
        let notModified = outcome == .notModified
        e.cache.ttl = s.freshness.lifetime - s.freshness.age(now: wall)
        var status = s.status == 206 ? 200 : s.status
        switch outcome {
        case .notModified: status = 304
        case .partial: status = 206
        case .unsatisfiable: status = 416
        case .full: break
        }
        e.status = status
        e.response = .started
        let b = headStart(c, status)
        let route = e.route!
        if route.response.remove.isEmpty && !s.hasContentRange {
            s.withHead(notModified: notModified) { b.append($0) }
        } else {
            s.forEachLine(notModified: notModified) { line, colon in
                if s.hasContentRange && equalsLowercase(line, 0, colon, "content-range") { return }
                if !route.response.removes(line, 0..<colon) { b.append(line) }
            }
        }
        if !s.hasDate { b.append(date.line.readView) }
        b.append("Age: ")
        b.append(decimal: min(s.freshness.age(now: wall), CacheControl.deltaCap))
        b.append("\r\n")
        appendCacheStatus(c, b)
        b.append(config.viaLine)
        if varyAcceptEncoding { b.append("Vary: Accept-Encoding\r\n") }
        if c.ex.peer.https, let t = e.tenant { b.append(t.hstsLine) }
        b.append(route.response.addLines)
        switch outcome {
        case .partial(let first, let last):
            b.append("Content-Range: bytes ")
            b.append(decimal: first); b.append(byte: 45); b.append(decimal: last)
            b.append(byte: 47); b.append(decimal: size)
            b.append("\r\n")
            headEnd(c, b, body: .length(last - first + 1))
        case .unsatisfiable:
            b.append("Content-Range: bytes */")
            b.append(decimal: size)
            b.append("\r\n")
            headEnd(c, b, body: .length(0))
        case .notModified:
            headEnd(c, b, body: .none)
        case .full:
            headEnd(c, b, body: .length(bodyLength.map(Int64.init) ?? size))
        }
    }

    /// Called with the origin's response head. Returns true when the cache
    /// answered the client itself (a 304 that freshened the stored response).
    func cacheResponseHead(_ c: ClientConnection, _ o: OriginConnection, p: UnsafeRawBufferPointer, headLength n: Int) -> Bool {
        let e = c.ex   // (the exchange as the response starts; read once for the no-store check)
        guard let rc = e.route?.cache else { return false }
        let status = o.head.status
        if let key = e.cache.key, status < 500, e.method == .get || e.bodyKeyed,
           !(status == 304 && e.cache.revalidating != nil && !e.cache.clientConditional),
           e.cache.deferred != nil || !e.cache.request.contains("cache-control"),   // (deferred: a plain request, none)
           CachePolicy.plainlyNoStore(p, o.head.fields, useTargetedFields: rc.options.useTargetedFields) {
            // The origin said no-store (a pass-through on a caching route): what
            // `storable` would say, known from the bytes; no fields made as strings.
            if !e.cache.background { e.cache.status.fwdStatus = status }
            notStored(c, key, .responseNoStore, status: status)
            return false
        }
        c.ex.cache.makeRequest()
        let response = HeaderList(parsed: p, o.head.fields)
        let wall = clock.now()
        if c.ex.cache.key == nil {
            // Bypassed (an unsafe method, a route's bypass rule): nothing stored.
            c.ex.cache.status.fwdStatus = status
            // An unsafe method: a success invalidates the target and same-host Location/Content-Location.
            for path in CachePolicy.invalidated(method: methodName(c), status: status, host: c.ex.cache.host, target: c.ex.cache.target, response: response) {
                for https in [false, true] {
                    config.store.remove(key: CacheKey.primary(tenant: c.ex.tenant!.name, https: https, host: c.ex.cache.host, target: path, query: rc.query))
                }
            }
            return false
        }
        let key = c.ex.cache.key!
        if status == 304, let old = c.ex.cache.revalidating, !c.ex.cache.clientConditional {
            // Freshen the stored response with the 304's fields (§4.3.4) and serve it.
            let merged = CachePolicy.updatedHeaders(stored: old.headers, from: storableFields(response))
            let f = CachePolicy.freshness(status: old.status, response: merged, requestTime: c.ex.cache.requestTime, responseTime: wall, options: rc.options)
            let updated = old.with(headers: merged, freshness: f)
            config.store.update(updated, startedAt: c.ex.cache.purgeEpoch)
            o.inBuf!.consume(n)
            o.headDone = true
            o.body = .none
            o.keepAlive = o.head.keepAlive
            o.server.health.recordSuccess()
            c.ex.originMicros = monotonicMicros() - c.ex.originStartMicros
            detachOrigin(c, o)
            releaseOrigin(o)
            if c.ex.cache.background {
                c.ex.status = 304
                finishExchange(c)
            } else {
                c.ex.cache.status = CacheStatus(.stale)
                c.ex.cache.status.fwdStatus = 304
                serveNegotiated(c, updated, now: wall)
            }
            return true
        }
        if status >= 500, serveStaleOnError(c) { return true }
        if rc.slice > 0, beginSlices(c, o, rc, key: key, response: response, now: wall) { return false }
        if !c.ex.cache.background { c.ex.cache.status.fwdStatus = status }
        let why = c.ex.method == .get || c.ex.bodyKeyed
            ? CachePolicy.storable(method: "GET", request: c.ex.cache.request, status: status, response: response, options: rc.options)
            : .method
        if let why {
            notStored(c, key, why, status: status)
            return false
        }
        if rc.deceptionArmor && !contentTypeFitsPath(c.ex.cache.target, response.first("content-type")) {
            c.ex.cache.status.detail = .contentTypeMismatch
            c.ex.cache.uncacheable = true
            config.store.noteNotStored(key: key, reason: "Content-Type does not match the path's extension")
            return false
        }
        let f = CachePolicy.freshness(status: status, response: response, requestTime: c.ex.cache.requestTime, responseTime: wall, options: rc.options)
        if c.ex.bodyKeyed && (f.lifetime <= 0 || f.source == .heuristic) {
            // A POST answer is reused only when the origin said for how long (RFC 9110 §9.3.3).
            c.ex.cache.uncacheable = true
            config.store.noteNotStored(key: key, reason: "a POST response needs explicit freshness")
            return false
        }
        let useful = f.lifetime > 0 || response.contains("etag") || response.contains("last-modified")
            || f.staleIfError != nil || f.staleWhileRevalidate != nil
        let vary = storedVary(response, rc)
        guard useful, let variant = CacheKey.variant(vary: vary, request: c.ex.cache.request) else {
            c.ex.cache.uncacheable = true
            config.store.noteNotStored(key: key, reason: useful ? "Vary: *" : "no freshness lifetime and no validator")
            return false
        }
        c.ex.cache.fill = CacheFill(key: key, variant: variant, vary: vary, tenant: c.ex.tenant!.name, status: status,
                                 headers: storableFields(response), freshness: f, limit: config.store.maxObjectBytes,
                                 tags: cacheTags(response, fields: c.ex.tenant!.tagFields), startedAt: c.ex.cache.purgeEpoch)
        if !c.ex.cache.background {
            c.ex.cache.status.stored = true
            c.ex.cache.ttl = f.lifetime - f.age(now: wall)
        }
        guard case .length(let n) = o.head.framing(requestWasHead: o.requestWasHead), n > 0, n <= Int64(config.store.maxObjectBytes) else { return false }
        let fill = c.ex.cache.fill!
        // Read-while-write: followers of this leader answer from the fill as it arrives.
        let leads = c.ex.cache.leaderKey == key && !c.ex.cache.background && status == 200
        var shared: (any SharedFill)?
        if let sink = config.store.fillSink(for: fill, length: Int(n)) {
            // Too large for memory: a lower tier writes the body as it arrives (the
            // fill holds a small piece of it at a time); followers read it there.
            fill.sink = sink
            shared = sink.followers
        } else if leads {
            let stream = FillStream(response: fill.stored(BodyStorage([])), length: Int(n))
            fill.stream = stream
            shared = stream
        }
        if leads, let shared {
            let waiting = inFlight.publish(key, shared)
            if !waiting.isEmpty { mailboxes.deliver(waiting) }
        }
        return false
    }

    /// The policy said the origin's response is not to be stored: a stored
    /// response it answered for is gone (unless the origin failed), followers
    /// go on alone, and explain will say why.
    func notStored(_ c: ClientConnection, _ key: String, _ why: NotStored, status: Int) {
        let e = c.ex
        if status < 500 && e.cache.revalidating != nil { config.store.remove(key: key) }
        if status < 500 { e.cache.uncacheable = true }
        if let h = e.cache.keyHashes, e.cache.key == key {
            config.store.noteNotStored(key: key, hashes: h, why, status: status)
        } else {
            config.store.noteNotStored(key: key, why, status: status)
        }
    }

    /// The first byte a single `bytes=A-B` or `bytes=A-` range asks for (0 for a
    /// suffix range `bytes=-N`); nil for anything else, which goes to the origin as is.
    func rangeStart(_ v: String) -> Int64? {
        var v = v
        return v.withUTF8 { u -> Int64? in
            let p = UnsafeRawBufferPointer(u)
            guard p.count > 6, equalsLowercase(p, 0, 6, "bytes="), !p.contains(44) else { return nil }
            var i = 6, n: Int64 = 0
            if i < p.count, p[i] == 45 { return 0 }
            while i < p.count, p[i] >= 48, p[i] <= 57, n < Int64.max / 10 - 10 { n = n * 10 + Int64(p[i] - 48); i += 1 }
            return i > 6 && i < p.count && p[i] == 45 ? n : nil
        }
    }

    /// Relays `n` bytes of the origin's body at `p`: the part of them inside the
    /// client's slice. Returns true once the slice is complete.
    func sendSlice(_ c: ClientConnection, _ slice: ClosedRange<Int64>, _ p: UnsafeRawPointer, _ n: Int, to ob: IOBuffer) -> Bool {
        let start = c.ex.cache.sliceOffset, end = start + Int64(n)
        let from = max(start, slice.lowerBound), to = min(end, slice.upperBound + 1)
        if from < to { ob.append(p + Int(from - start), count: Int(to - from)) }
        c.ex.cache.sliceOffset = end
        return end > slice.upperBound
    }

    /// The Vary list a stored response keys its variants on: the origin's,
    /// with Accept-Language reduced to the route's languages when it lists
    /// them, and the route's key fields and cookies (CacheKey.variant).
    func storedVary(_ response: HeaderList, _ rc: RouteCache) -> [String] {
        let vary = response.values("vary")
        if rc.keyNames.isEmpty && rc.languageName == nil { return vary }
        var names = vary.flatMap { $0.split(separator: ",") }.map { $0.trimmedOWS() }.filter { !$0.isEmpty }
        if let ln = rc.languageName { names = names.map { $0.lowercased() == "accept-language" ? ln : $0 } }
        return names + rc.keyNames
    }

    /// "Cache-Status: NODE; …" (with the key when the route debugs) and CRLF.
    /// An upstream cache's entries (a shield's) came with the response and
    /// stay before this one (RFC 9211 §2: each cache appends its own).
    func appendCacheStatus(_ c: ClientConnection, _ b: IOBuffer) {
        let e = c.ex
        b.append(config.cacheStatusStart)
        e.cache.status.append(to: b)
        if let ttl = e.cache.ttl {
            b.append("; ttl=")
            if ttl < 0 { b.append(byte: 45) }
            b.append(decimal: min(abs(ttl), CacheControl.deltaCap))
        }
        if e.route?.cache?.debug == true, let k = e.cache.key {
            b.append("; key=\"")
            for ch in k.utf8 where ch >= 0x20 && ch < 0x7F {
                if ch == 34 || ch == 92 { b.append(byte: 92) }
                b.append(byte: ch)
            }
            b.append("\"")
        }
        b.append("\r\n")
    }

    /// The fields worth storing: no hop-by-hop fields (fixed ones and those the
    /// response's Connection names), no framing, no Set-Cookie, no Age.
    func storableFields(_ response: HeaderList) -> HeaderList {
        let named = Set(response.listElements("connection"))
        var out: [(String, String)] = []
        for (i, f) in response.fields.enumerated() {
            let n = response.lowerNames[i]
            if unstoredFields.contains(n) || named.contains(n) || n.hasPrefix("proxy-") { continue }
            out.append((f.name, f.value))
        }
        return HeaderList(out)
    }

    /// The response streamed completely: keep what was being stored.
    func cacheResponseFinished(_ c: ClientConnection) {
        let e = c.ex
        guard let f = e.cache.fill else { return }
        e.cache.fill = nil
        if !f.complete {
            // The origin stopped short (a background refresh that failed, a leader
            // whose client left): nothing partial is ever stored.
            abandonFill(f)
            config.store.noteNotStored(key: f.key, reason: "the origin's response was incomplete")
            return
        }
        if let streamed = endStream(f, ok: true) { f.body = streamed }
        if f.sinkFailed {
            config.store.noteNotStored(key: f.key, reason: "the disk tier could not take it as it arrived (its write queue was full, or it is out of service)")
        } else if f.tooLarge {
            config.store.noteNotStored(key: f.key, reason: "larger than the largest object stored")
        } else {
            config.store.commit(f)
            // After the origin's representation (storing that drops older derived ones).
            if let d = e.coder?.derived, !d.tooLarge {
                d.complete = true
                config.store.commit(d)
            }
        }
    }

    func methodName(_ c: ClientConnection) -> String {
        c.ex.method == .other ? String(decoding: c.ex.methodText, as: UTF8.self) : c.ex.method.token.description
    }
}

/// Whether a response's media type is what the path's extension promises.
/// Paths without a known extension always fit.
func contentTypeFitsPath(_ target: String, _ contentType: String?) -> Bool {
    let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
    guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return true }
    let expected = MediaTypes.table[path[path.index(after: dot)...].lowercased()]
    guard let expected else { return true }
    let want = mediaTypeEssence(expected.description)
    let got = mediaTypeEssence(contentType ?? "")
    if got == want { return true }
    // Equivalent spellings in the wild.
    let aliases: [String: Set<String>] = ["text/javascript": ["application/javascript", "application/x-javascript"],
                                          "application/json": ["text/json"], "application/xml": ["text/xml"]]
    return aliases[want]?.contains(got) ?? false
}
