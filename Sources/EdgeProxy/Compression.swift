// Compression in the pipeline: which responses are compressed (or decoded)
// for which clients, the fields that change with the coding, and the cache's
// derived entries (each coding made once, stored under the same primary key
// plus the coding, and served at hit speed).
//
// Choice (issue #6): on a miss the client's preferred coding is produced while
// the body streams, and stored next to the origin's representation; on a hit
// for a coding not stored yet, the stored body is compressed once, right away,
// on the worker that needs it (measured: 2.4 ms for 64 KiB of text at brotli 5,
// 2.8 ms at gzip 6), stored, and served. A background job would save that one
// client those milliseconds but cost
// a second code path and a window where every hit compresses.
//
// Thread rules: as Worker.swift; codecs and their buffers belong to one connection.
import EdgeCache
import EdgeCompress
import EdgeConfig
import EdgeHTTP

/// A route's compression settings, ready for the data path (a class, like
/// RouteCache: passed around, not copied).
final class RouteCompress: Sendable {
    /// Codings edge produces, in order of preference, then identity.
    let offered: [ContentCoding]
    let settings: CodecSettings
    let minBytes: Int64
    let decodeLimit: Int
    /// Exact media types, and "text/" for "text/*", as bytes: every hit on a
    /// compressing route asks (serveNegotiated), and a scan of these ten-odd short
    /// types by length costs a fraction of hashing the type for a Set.
    let exactTypes: [[UInt8]]
    let typePrefixes: [[UInt8]]

    init?(_ c: CompressConfig) {
        guard c.enabled else { return nil }
        offered = c.encodings.compactMap { $0 == "br" ? .br : $0 == "gzip" ? .gzip : nil } + [.identity]
        var s = CodecSettings()
        s.gzipLevel = c.gzipLevel
        s.gzipWindowBits = c.gzipWindowBits
        s.brotliQuality = c.brotliQuality
        s.brotliWindowBits = c.brotliWindowBits
        settings = s
        minBytes = c.minBytes
        decodeLimit = Int(clamping: c.decodeLimit)
        exactTypes = c.types.filter { !$0.hasSuffix("/*") }.map { Array($0.utf8) }
        typePrefixes = c.types.filter { $0.hasSuffix("/*") }.map { Array($0.utf8.dropLast()) }
    }

    /// `mediaType`: a Content-Type's essence (mediaTypeEssence, lowercase).
    func compressible(_ mediaType: String?) -> Bool {
        guard var t = mediaType, !t.isEmpty else { return false }
        return t.withUTF8 { compressible(essence: UnsafeRawBufferPointer($0), lowercase: true) }
    }

    /// The same from a Content-Type field's value as it came (its essence
    /// found in place: no string is made for it).
    func compressible(contentType p: UnsafeRawBufferPointer) -> Bool {
        let (start, end) = mediaTypeEssenceBounds(p)
        return end > start && compressible(essence: UnsafeRawBufferPointer(rebasing: p[start..<end]), lowercase: false)
    }

    /// `lowercase`: the bytes are lowercase already (else compared folded).
    func compressible(essence u: UnsafeRawBufferPointer, lowercase: Bool) -> Bool {
        guard !u.isEmpty else { return false }
        var i = 0
        while i < exactTypes.count {
            if exactTypes[i].count == u.count && RouteCompress.starts(u, with: exactTypes[i], lowercase: lowercase) { return true }
            i += 1
        }
        i = 0
        while i < typePrefixes.count {
            if typePrefixes[i].count <= u.count && RouteCompress.starts(u, with: typePrefixes[i], lowercase: lowercase) { return true }
            i += 1
        }
        return false
    }

    /// Index loops, no iterators: allocation-free in debug builds too (AllocationTests).
    @inline(__always) static func starts(_ u: UnsafeRawBufferPointer, with p: [UInt8], lowercase: Bool) -> Bool {
        var i = 0
        while i < p.count {
            if (lowercase ? u[i] : asciiLower(u[i])) != p[i] { return false }
            i += 1
        }
        return true
    }

    /// What to do with a response body for a client with this Accept-Encoding,
    /// and whether the response must say `Vary: Accept-Encoding` (it was, or
    /// could have been, negotiated). Pure.
    func decide(status: Int, _ f: ResponseFacts, acceptEncoding: String?) -> (transform: BodyTransform, vary: Bool) {
        guard status == 200, !f.noTransform, !f.contentRange, f.compressibleType,
              let coding = ContentCoding.parse(contentEncoding: f.contentEncoding) else { return (.none, false) }
        switch coding {
        case .identity:
            if let n = f.length, n < minBytes { return (.none, false) }
            let want = AcceptEncoding.choose(acceptEncoding, offered: offered) ?? .identity
            return (want == .identity ? .none : .encode(want), true)
        case .gzip, .br:
            // The origin's coding goes through to clients that take it; the others get it decoded.
            if AcceptEncoding.weights(acceptEncoding)[coding] > 0 { return (.none, true) }
            return (.decode(coding), true)
        }
    }
}

enum BodyTransform: Equatable {
    case none, encode(ContentCoding), decode(ContentCoding)
    /// The coding of what the client gets.
    var produced: ContentCoding? {
        switch self {
        case .none: return nil
        case .encode(let c): return c
        case .decode: return .identity
        }
    }
}

/// The response fields compression reads, for one route.
struct ResponseFacts {
    /// The route compresses the Content-Type's essence (mediaTypeEssence).
    var compressibleType = false
    var contentEncoding: String?
    var noTransform = false
    var contentRange = false
    var varyHasAcceptEncoding = false
    /// Where the ETag's value is in the origin's head (read only when a coding is made).
    var etagRange: Range<Int>?
    var length: Int64?

    /// A stored response's facts, computed when it was stored (nothing is parsed per hit).
    init(_ s: StoredResponse, _ cmp: RouteCompress) {
        compressibleType = cmp.compressible(s.mediaType)
        contentEncoding = s.contentEncoding
        noTransform = s.noTransform
        contentRange = s.hasContentRange
        varyHasAcceptEncoding = s.varyHasAcceptEncoding
        length = Int64(s.bodyCount)   // (its ETag is read only where a coding is made: not on every hit)
    }

    /// An origin's response head's facts, read in place (a string only for a
    /// Content-Encoding). The Content-Type is read first: for a type the route
    /// does not compress, `decide` answers `.none` whatever the other facts say,
    /// so they are not read (left as for a head without those fields).
    init(_ p: UnsafeRawBufferPointer, _ fields: [Field], length: Int64?, _ cmp: RouteCompress) {
        self.length = length
        for f in fields where f.known == .other && f.nameEnd - f.nameStart == 12 && p[f.nameStart] | 0x20 == 0x63   // "c"
            && equalsLowercase(p, f.nameStart, f.nameEnd, "content-type") {
            compressibleType = cmp.compressible(contentType: UnsafeRawBufferPointer(rebasing: p[f.valueStart..<f.valueEnd]))
        }
        guard compressibleType else { return }
        var ce: [String] = []
        for f in fields {
            if f.known == .cacheControl {
                if !noTransform && CacheControl.has(p, f.valueStart, f.valueEnd, "no-transform") { noTransform = true }
                continue
            }
            if f.known != .other { continue }
            // (The first letter, then the name: most fields are none of these.)
            switch (f.nameEnd - f.nameStart, p[f.nameStart] | 0x20) {
            case (4, 0x65) where equalsLowercase(p, f.nameStart, f.nameEnd, "etag"): if etagRange == nil { etagRange = f.valueStart..<f.valueEnd }
            case (4, 0x76) where equalsLowercase(p, f.nameStart, f.nameEnd, "vary"):
                let v = String(decoding: p[f.valueStart..<f.valueEnd], as: UTF8.self).lowercased()
                if v.contains("accept-encoding") || v.contains("*") { varyHasAcceptEncoding = true }
            case (13, 0x63) where equalsLowercase(p, f.nameStart, f.nameEnd, "content-range"): contentRange = true
            case (16, 0x63) where equalsLowercase(p, f.nameStart, f.nameEnd, "content-encoding"):
                ce.append(String(decoding: p[f.valueStart..<f.valueEnd], as: UTF8.self))
            default: break
            }
        }
        contentEncoding = ce.isEmpty ? nil : ce.joined(separator: ",")
    }

    /// The ETag of the coding made, from the origin's head `p`.
    func codingETag(_ p: UnsafeRawBufferPointer, for coding: ContentCoding) -> String? {
        etagRange.map { etag(String(decoding: p[$0], as: UTF8.self), for: coding) }
    }
}

/// An entity tag for another coding of the same resource: `"x"` → `"x-br"`,
/// `W/"x"` → `W/"x-br"`, so validators never match across codings.
func etag(_ tag: String, for coding: ContentCoding) -> String {
    if tag.hasSuffix("\"") && tag.count >= 2 { return String(tag.dropLast()) + "-" + coding.token + "\"" }
    return tag + "-" + coding.token
}

/// The stored fields of a representation edge made: the coding, its ETag, Vary.
func transformedFields(_ h: HeaderList, produced: ContentCoding, addVary: Bool) -> HeaderList {
    var out: [(String, String)] = []
    for (i, f) in h.fields.enumerated() {
        switch h.lowerNames[i] {
        case "content-encoding", "content-length": continue
        case "etag": out.append((f.name, etag(f.value, for: produced)))
        default: out.append((f.name, f.value))
        }
    }
    if produced != .identity { out.append(("Content-Encoding", produced.token)) }
    if addVary { out.append(("Vary", "Accept-Encoding")) }
    return HeaderList(out)
}

/// A body being transformed on its way to the client (one exchange).
final class BodyCoder {
    let codec: StreamCodec
    let transform: BodyTransform
    /// The codec's output for one step.
    let out = IOBuffer(capacity: 16 * 1024)
    /// Decoding: the response head and body are held until the body is
    /// complete, so that a body past the limit can still become a 502.
    let heldHead: IOBuffer?
    let heldBody: IOBuffer?
    /// The transformed representation, stored next to the origin's.
    var derived: CacheFill?

    init(_ codec: StreamCodec, _ transform: BodyTransform) {
        self.codec = codec
        self.transform = transform
        if case .decode = transform {
            heldHead = IOBuffer(capacity: 1024)
            heldBody = IOBuffer(capacity: 16 * 1024)
        } else {
            heldHead = nil
            heldBody = nil
        }
    }
}

extension Worker {
    /// Decides the transform for an origin response about to be relayed, sets
    /// up the codec (and the derived cache entry), and returns what the head needs.
    func beginTransform(_ c: ClientConnection, _ o: OriginConnection, p: UnsafeRawBufferPointer, framing: BodyFraming) -> (BodyTransform, vary: Bool, etag: String?) {
        // (Only a 200 is transformed: `decide`.)
        guard o.head.status == 200, let cmp = c.ex.route?.compress, !c.ex.cache.background, c.ex.method == .get || c.ex.method == .head else {
            return (.none, false, nil)
        }
        if o.requestWasHead {
            // HEAD: the fields a GET would get (coding, ETag, Vary), and no body or codec.
            let facts = ResponseFacts(p, o.head.fields, length: nil, cmp)
            var (t, vary) = cmp.decide(status: o.head.status, facts, acceptEncoding: c.ex.acceptEncoding)
            if facts.varyHasAcceptEncoding { vary = false }
            guard let produced = t.produced else { return (.none, vary, nil) }
            return (t, vary, facts.codingETag(p, for: produced))
        }
        guard framing != .none else { return (.none, false, nil) }
        var length: Int64?
        if case .length(let n) = framing { length = n }
        let facts = ResponseFacts(p, o.head.fields, length: length, cmp)
        var (t, vary) = cmp.decide(status: o.head.status, facts, acceptEncoding: c.ex.acceptEncoding)
        if facts.varyHasAcceptEncoding { vary = false }   // the origin's Vary says it already
        let codec: StreamCodec?
        switch t {
        case .none: codec = nil
        case .encode(let coding): codec = try? StreamCodec(encoding: coding, settings: cmp.settings)
        case .decode(let coding): codec = try? StreamCodec(decoding: coding, limit: cmp.decodeLimit)
        }
        guard let codec, let produced = t.produced else { return (.none, vary, nil) }
        let coder = BodyCoder(codec, t)
        if let f = c.ex.cache.fill {
            coder.derived = CacheFill(key: CacheKey.derived(f.key, produced), variant: f.variant, vary: f.vary, tenant: f.tenant,
                                      status: f.status, headers: transformedFields(f.headers, produced: produced, addVary: vary),
                                      freshness: f.freshness, limit: f.limit, tags: f.tags, startedAt: f.startedAt)
        }
        c.ex.coder = coder
        return (t, vary, facts.codingETag(p, for: produced))
    }

    /// Runs body bytes through the connection's codec and relays what comes
    /// out. False when the codec failed (corrupt input, or past the decode limit).
    func feedCoder(_ c: ClientConnection, _ coder: BodyCoder, _ input: UnsafeRawBufferPointer, finish: Bool, _ ob: IOBuffer) -> Bool {
        coder.out.clear()
        do { try coder.codec.feed(input, finish: finish, into: coder.out) } catch { return false }
        let n = coder.out.readableBytes
        guard n > 0 else { return true }
        coder.derived?.append(coder.out.readPointer, n)
        if let held = coder.heldBody {
            held.append(coder.out.readView)
        } else {
            sendBody(c, coder.out.readView, to: ob)
        }
        return true
    }

    /// The origin's body ended: flush the codec; a held (decoded) response is written now.
    func finishCoder(_ c: ClientConnection, _ coder: BodyCoder, _ ob: IOBuffer) -> Bool {
        guard feedCoder(c, coder, UnsafeRawBufferPointer(start: nil, count: 0), finish: true, ob) else { return false }
        if let head = coder.heldHead, let body = coder.heldBody {
            ob.append(head.readView)
            headEnd(c, ob, body: .length(Int64(body.readableBytes)))
            sendBody(c, body.readView, to: ob)
        }
        return true
    }

    /// The codec failed: a held response becomes a 502; a streaming one is cut off.
    func transformFailed(_ c: ClientConnection, _ o: OriginConnection) {
        let held = c.ex.coder?.heldHead != nil
        c.ex.coder = nil
        if let f = c.ex.cache.fill { abandonFill(f) }
        c.ex.cache.fill = nil
        o.keepAlive = false
        detachOrigin(c, o)
        closeOrigin(o)
        countOriginError(c, o.server)
        if held && !c.ex.responseStarted {
            c.phase = .proxy
            if !c.ex.bodyDone { c.keepAlive = false; c.ex.bodyState = .none }
            respondError(c, 502)
        } else {
            c.keepAlive = false
            flushClient(c)
            if !c.closed { abortClient(c) }
        }
    }

    /// Serves a stored response in the coding this client should get: as
    /// stored, or a derived representation made now (once) and stored too.
    func serveNegotiated(_ c: ClientConnection, _ s: StoredResponse, now wall: Int64, finish: Bool = true) {
        let e = c.ex
        // A type this route never compresses is served as stored, without Vary.
        guard let cmp = e.route?.compress, cmp.compressible(s.mediaType) else { return serveStored(c, s, now: wall, finish: finish) }
        let facts = ResponseFacts(s, cmp)
        var (t, vary) = cmp.decide(status: s.status, facts, acceptEncoding: e.acceptEncoding)
        if facts.varyHasAcceptEncoding || s.isDerived { vary = false }   // a derived entry says Vary already
        // Ranges are served from the stored representation (never a compressed one).
        if e.rangeRequested { t = .none }
        guard let produced = t.produced else { return serveStored(c, s, now: wall, finish: finish, varyAcceptEncoding: vary) }
        // Made before from this same response (found here when the client takes
        // identity, or the lookup for its coding came before this one was fresh).
        if let d = config.store.lookup(key: CacheKey.derived(s.key, produced), request: { e.cache.request }), d.freshness == s.freshness {
            return serveStored(c, d, now: wall, finish: finish)
        }
        let epoch = config.store.purges.epoch
        let body: [UInt8]
        do {
            switch t {
            case .encode(let coding): body = try StreamCodec.encode(s.body, as: coding, settings: cmp.settings)
            case .decode(let coding): body = try StreamCodec.decode(s.body, from: coding, limit: cmp.decodeLimit)
            case .none: body = s.body
            }
        } catch {
            e.cache.status.detail = .decodeFailed
            return respondError(c, 502)
        }
        let d = s.with(key: CacheKey.derived(s.key, produced), headers: transformedFields(s.headers, produced: produced, addVary: vary),
                       storage: config.store.storage(for: body))
        config.store.insert(d, startedAt: epoch)
        serveStored(c, d, now: wall, finish: finish)
    }
}
