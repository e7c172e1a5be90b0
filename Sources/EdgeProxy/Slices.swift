// Sliced objects in the pipeline (the rules are EdgeCache.Slices'). On a
// route with a `slice` size:
// - lookup (after the URL's own entry missed): the slice holding the first
//   byte asked for gives the length and entity tag; when every slice the
//   answer needs is stored, usable now and of that same tag and length, the
//   answer (200, 206, 304 or 416) is written from them; else it is a miss.
// - a Range miss asks the origin for whole slices (`Range: bytes=A-B`, A and
//   B + 1 on slice boundaries); the client gets its own range cut from the
//   206, as it arrives (a suffix range goes to the origin as it is).
// - storing: a 206 for such a request, or a 200 too large to store whole, is
//   cut into slices as it streams (SliceFill), each stored once complete, so
//   a response cut short keeps the slices it completed (RFC 9111 §3.3). A 206
//   that holds the whole representation is stored whole, as its 200.
// - never sliced: responses with Vary, without a strong ETag or a freshness
//   lifetime (slices are not revalidated: a stale slice is fetched again), or
//   that a 200 with the same fields could not store.
// Thread rules: as Cache.swift (the store is shared; the rest is the worker's).
import EdgeCache
import EdgeHTTP
import EdgeIO

enum SliceAnswer { case served, pending, miss }

/// What a slicing exchange carries (ExchangeCache.slices).
final class SliceState {
    /// A Range miss asking the origin for whole slices: `ask` (nil: the
    /// client's own Range goes as is, a suffix range); `fill` stores the
    /// slices as they arrive.
    var fetch = false
    var ask: (first: Int64, last: Int64?)?
    var fill: SliceFill?
    /// Slices found by earlier passes of a lookup that waited for a disk read
    /// (each pass reads one more; the answer needs them all at once).
    var held: [Int64: StoredResponse] = [:]

    /// What a lookup run again (after a disk read) starts from: the slices
    /// held, nothing else (nil when none are).
    static func carried(_ s: SliceState?) -> SliceState? {
        guard let s, !s.held.isEmpty else { return nil }
        let next = SliceState()
        next.held = s.held
        return next
    }
}

extension Worker {
    /// Answers from stored slices when they cover the request.
    func serveSlices(_ c: ClientConnection, _ x: inout ExchangeCache, _ rc: RouteCache, key: String, now wall: Int64,
                     p: UnsafeRawBufferPointer) -> SliceAnswer {
        let size = rc.slice
        var anchorIndex: Int64 = 0
        if let r = x.request.first("range"), case .span(let a, _) = Slices.asked(r) { anchorIndex = a / size }
        var fromDisk = !(x.slices?.held.isEmpty ?? true)
        let request = x.request
        var held = x.slices?.held ?? [:]
        /// The slice, nil when there is none to use, or .none when a disk read is under way.
        func entry(_ index: Int64) -> StoredResponse?? {
            if let s = held[index] { return usableSlice(s, request, rc, now: wall) ? s : .some(nil) }
            switch config.store.lookup(key: Slices.key(key, index), request: { request }, waiter: Waiter(worker: self.index, exchange: c.ex.id),
                                       waking: mailboxes) {
            case .found(let s): return usableSlice(s, request, rc, now: wall) ? s : .some(nil)
            case .disk(let s):
                // Kept for the next pass: a slice too large for memory is not found there again.
                fromDisk = true
                held[index] = s
                return usableSlice(s, request, rc, now: wall) ? s : .some(nil)
            case .absent, .diskStream: return .some(nil)   // (a slice is never too large for memory)
            case .pending: return nil
            }
        }
        func wait() -> SliceAnswer {
            let state = c.ex.cache.slices ?? SliceState()
            state.held = held
            c.ex.cache.slices = state
            c.ex.readFromDisk = true
            park(c, p)
            return .pending
        }
        guard var lookedUp = entry(anchorIndex) else { return wait() }
        if lookedUp == nil && anchorIndex > 0 {
            // No slice there (maybe none is: a range past the end); the first slice tells.
            anchorIndex = 0
            guard let first = entry(0) else { return wait() }
            lookedUp = first
        }
        guard let anchor = lookedUp, let info = anchor.slice else { return .miss }
        let outcome = storedPreconditions(c, anchor, request: request, size: info.complete, now: wall)
        var parts: [(StoredResponse, Int, Int)] = []
        if c.ex.method != .head {
            var first: Int64 = 0, last: Int64 = -1
            switch outcome {
            case .full: last = info.complete - 1
            case .partial(let a, let b): (first, last) = (a, b)
            case .notModified, .unsatisfiable: break
            }
            for (i, from, to) in Slices.plan(first: first, last: last, size: size) {
                var s = anchor
                if i != anchorIndex {
                    guard let found = entry(i) else { return wait() }
                    guard let f = found else { return .miss }
                    s = f
                }
                let bounds = Slices.bounds(i, size: size, complete: info.complete)
                guard let si = s.slice, si.etag == info.etag, si.complete == info.complete, si.first == bounds.lowerBound,
                      si.last == bounds.upperBound, s.bodyCount == bounds.count else { return .miss }
                parts.append((s, from, to))
            }
        }
        x.status = CacheStatus(.hit, fromDisk ? .disk : .none)
        x.slices = nil
        c.ex.cache = x
        writeStoredHead(c, anchor, outcome, size: info.complete, now: wall)
        for (s, from, to) in parts { sendStoredAfter(c, s, from: from, to: to) }
        finishExchange(c)
        return .served
    }

    /// A stored slice this request may use: a slice, fresh (or stale as the client allows).
    func usableSlice(_ s: StoredResponse, _ request: HeaderList, _ rc: RouteCache, now wall: Int64) -> Bool {
        guard s.status == 206 else { return false }
        switch CachePolicy.decide(s.freshness, request: request, now: wall, options: rc.options) {
        case .fresh, .staleAllowedByClient: return true
        default: return false
        }
    }

    /// A Range miss on a slicing route (a GET without conditionals or If-Range):
    /// the origin is asked for whole slices, and the exchange goes alone (no
    /// collapsing: each slice is its own entry). Returns true when it is one.
    func planSliceFetch(_ c: ClientConnection, _ x: inout ExchangeCache, _ rc: RouteCache) -> Bool {
        guard rc.slice > 0, c.ex.method == .get, !c.ex.bodyKeyed, !x.clientConditional, !x.request.contains("if-range"),
              let r = x.request.first("range"), let asked = Slices.asked(r) else { return false }
        let state = x.slices ?? SliceState()
        state.fetch = true
        x.collapse = false
        switch asked {
        case .span(let a, let b): state.ask = Slices.aligned(first: a, last: b, size: rc.slice)
        case .suffix: state.ask = nil
        }
        x.slices = state
        return true
    }

    /// "Range: bytes=A-B" (or "A-") and CRLF, for a slice fetch.
    func appendSliceAsk(_ c: ClientConnection, _ b: IOBuffer) {
        guard let (first, last) = c.ex.cache.slices?.ask else { return }
        b.append("Range: bytes=")
        b.append(decimal: first)
        b.append(byte: 45)
        if let last { b.append(decimal: last) }
        b.append("\r\n")
    }

    /// The origin's response head on a slicing route, before the usual storing
    /// rules: a 206 of one range (for a slice fetch or not), or a 200 too large to
    /// store whole, starts storing slices (or, a 206 of the whole representation,
    /// a whole entry).
    /// Returns true when it decided what is stored (then nothing else is).
    func beginSlices(_ c: ClientConnection, _ o: OriginConnection, _ rc: RouteCache, key: String, response: HeaderList, now wall: Int64) -> Bool {
        let status = o.head.status
        guard c.ex.method == .get, !c.ex.bodyKeyed, !c.ex.cache.background,
              case .length(let n) = o.head.framing(requestWasHead: o.requestWasHead), n > 0 else { return false }
        var first: Int64 = 0, complete = n
        if status == 206 {
            // A slice fetch's answer, or any other 206 of one range (one the origin sent for a
            // whole GET it could not serve whole): its whole slices are stored (RFC 9111 §3.4).
            guard let cr = response.first("content-range").flatMap(Slices.contentRange), cr.last - cr.first + 1 == n else { return false }
            (first, complete) = (cr.first, cr.complete)
        } else if status != 200 || n <= Int64(config.store.maxObjectBytes) {
            return false
        }
        c.ex.cache.status.fwdStatus = status
        // Stored as its 200 would be: the same policy, the fields without Content-Range.
        var why: String?
        if let no = CachePolicy.storable(method: "GET", request: c.ex.cache.request, status: 200, response: response, options: rc.options) {
            config.store.noteNotStored(key: key, no, status: status)
            c.ex.cache.uncacheable = true
            return true
        }
        let f = CachePolicy.freshness(status: 200, response: response, requestTime: c.ex.cache.requestTime, responseTime: wall, options: rc.options)
        // A slice is stored with its fields and bookkeeping: its body must leave room under the largest object.
        if rc.slice + 64 * 1024 > Int64(config.store.maxObjectBytes) { why = "the route's slice size is not 64KiB below the largest object stored (max_object)" }
        else if !Slices.strong(response.first("etag")) { why = "a sliced object needs a strong ETag" }
        else if f.lifetime <= 0 { why = "a sliced object needs a freshness lifetime" }
        else if !storedVary(response, rc).isEmpty { why = "a sliced object cannot vary" }
        else if rc.deceptionArmor && !contentTypeFitsPath(c.ex.cache.target, response.first("content-type")) {
            c.ex.cache.status.detail = .contentTypeMismatch
            why = "Content-Type does not match the path's extension"
        }
        if let why {
            config.store.noteNotStored(key: key, reason: why)
            c.ex.cache.uncacheable = true
            return true
        }
        let stored = storableFields(response)
        let fields = HeaderList(stored.fields.enumerated().filter { stored.lowerNames[$0.offset] != "content-range" }.map { ($0.element.name, $0.element.value) })
        let tags = cacheTags(response, fields: c.ex.tenant!.tagFields)
        c.ex.cache.status.stored = true
        c.ex.cache.ttl = f.lifetime - f.age(now: wall)
        // What was stored for the URL before is another version now.
        if c.ex.cache.revalidating != nil { config.store.remove(key: key) }
        if first == 0 && complete == n && n <= Int64(config.store.maxObjectBytes) {
            c.ex.cache.fill = CacheFill(key: key, variant: "", vary: [], tenant: c.ex.tenant!.name, status: 200, headers: fields, freshness: f,
                                        limit: config.store.maxObjectBytes, tags: tags, startedAt: c.ex.cache.purgeEpoch)
            return true
        }
        let state = c.ex.cache.slices ?? SliceState()
        c.ex.cache.slices = state
        state.fill = SliceFill(key: key, tenant: c.ex.tenant!.name, headers: fields, freshness: f, tags: tags,
                               startedAt: c.ex.cache.purgeEpoch, size: rc.slice, complete: complete, offset: first)
        // Followers of a whole-object miss go on alone: the slices are not one entry they could wait for.
        c.ex.cache.uncacheable = true
        releaseLeader(c)
        return true
    }

    /// Stores the slices `fill` completed with these body bytes.
    @inline(__always) func appendSlices(_ fill: SliceFill, _ p: UnsafeRawPointer, _ n: Int) {
        for (index, body, headers) in fill.append(p, n) {
            config.store.insert(StoredResponse(key: Slices.key(fill.key, index), variant: "", vary: [], tenant: fill.tenant, status: 206,
                                               headers: headers, storage: config.store.storage(for: body), freshness: fill.freshness,
                                               tags: fill.tags), startedAt: fill.startedAt)
        }
    }

    /// A slice fetch's 206 (or any range fetch's 200): the client's own range
    /// of it, the representation's length, and the offset of the origin's first
    /// byte; nil to relay the origin's response as it is.
    func clientCut(_ c: ClientConnection, _ o: OriginConnection, p: UnsafeRawBufferPointer, framing: BodyFraming)
        -> (range: ClosedRange<Int64>, complete: Int64, offset: Int64)? {
        // (Read in place: a copy of the exchange's cache state would retain all it holds, on every response.)
        let e = c.ex
        guard e.cache.rangeFromFull || e.cache.slices?.fetch == true, case .length(let n) = framing, n > 0,
              var r = e.cache.request.first("range") else { return nil }
        var complete = n, offset: Int64 = 0, last = n - 1
        if o.head.status == 206 {
            guard e.cache.slices?.fetch == true, let f = o.head.fields.first(where: { equalsLowercase(p, $0.nameStart, $0.nameEnd, "content-range") }),
                  let cr = Slices.contentRange(String(decoding: p[f.value], as: UTF8.self)), cr.last - cr.first + 1 == n else { return nil }
            (offset, last, complete) = (cr.first, cr.last, cr.complete)
        } else if o.head.status != 200 {
            return nil
        }
        guard case .range(let a, let b) = r.withUTF8({ Preconditions.byteRange(UnsafeRawBufferPointer($0), size: complete) }),
              a >= offset, b <= last else { return nil }
        return (a...b, complete, offset)
    }
}
