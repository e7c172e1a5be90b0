// RFC 9111 policy in one place: may a response be stored, how long is it
// fresh, how old is it, and what may a request be answered with. Pure: every
// function takes `now` (seconds since the epoch) and header lists; nothing here
// reads a clock or touches I/O.
#if canImport(EdgeHTTP)
import EdgeHTTP
#endif

/// Header fields as (name, value) pairs, names compared case-insensitively
/// (lowercased once, when the list is built).
public struct HeaderList: Equatable, Sendable {
    public private(set) var fields: [(name: String, value: String)]
    /// `fields[i].name` lowercased.
    public private(set) var lowerNames: [String]

    public init(_ fields: [(String, String)] = []) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
        lowerNames = fields.map { $0.0.lowercased() }
    }

    /// Builds from names already lowercased (saves the work on hot paths).
    public init(lowercased: [(String, String)], original: [String]) {
        fields = zip(original, lowercased).map { (name: $0, value: $1.1) }
        lowerNames = lowercased.map { $0.0 }
    }

    public static func == (a: HeaderList, b: HeaderList) -> Bool {
        a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
    /// Every line's value of a field, in order (`name` must be lowercase).
    public func values(_ name: String) -> [String] {
        var out: [String] = []
        for i in lowerNames.indices where lowerNames[i] == name { out.append(fields[i].value) }
        return out
    }
    public func first(_ name: String) -> String? {
        for i in lowerNames.indices where lowerNames[i] == name { return fields[i].value }
        return nil
    }
    public func contains(_ name: String) -> Bool { lowerNames.contains(name) }
    /// Adds a line (`name` as given is its lowercase form too).
    public mutating func append(name: String, value: String) {
        fields.append((name: name, value: value))
        lowerNames.append(name)
    }
    /// Elements of a list-valued field across all its lines, trimmed, lowercased.
    public func listElements(_ name: String) -> [String] {
        values(name).flatMap { $0.split(separator: ",") }.map { $0.trimmedOWS().lowercased() }.filter { !$0.isEmpty }
    }
}

/// Choices a route makes about caching; the defaults are safe for a shared cache.
public struct CacheOptions: Sendable, Equatable {
    /// Honour a client's `Cache-Control: no-cache` / `Pragma: no-cache` (revalidate).
    public var honorRequestNoCache = true
    /// Store responses that set cookies (they are still never served with the cookie to others).
    public var storeSetCookie = false
    /// Use CDN-Cache-Control and Surrogate-Control ahead of Cache-Control.
    public var useTargetedFields = true
    /// Heuristic freshness: this fraction of the time since Last-Modified, at most `heuristicCap`.
    public var heuristicFraction = 0.1
    public var heuristicCap: Int64 = 86_400
    /// The operator's lifetimes, applied in this order (like nginx's
    /// `proxy_cache_valid` and Varnish's default TTL); each is said in `explain`
    /// as the freshness source:
    /// - `ttlOverride`: by status (an exact code, or a class under 1...5 for
    ///   `1xx`...`5xx`), whatever the origin's fields say; it also makes that
    ///   status storable without explicit freshness. Storing rules (no-store,
    ///   private, Set-Cookie, Authorization) still apply.
    /// - `negativeTTL`: 404 and 410 without explicit freshness (0: none).
    /// - `defaultTTL`: other responses without explicit freshness, instead of
    ///   the heuristic (heuristically cacheable statuses only).
    /// - `ttlMin`/`ttlMax`: the lifetime clamped, whatever set it (not an
    ///   invalid one, which stays stale).
    public var ttlOverride: [Int: Int64] = [:]
    public var negativeTTL: Int64 = 10
    public var defaultTTL: Int64?
    public var ttlMin: Int64?
    public var ttlMax: Int64?
    public init() {}

    /// The override for `status`: its own, else its class's.
    @inline(__always) public func override(_ status: Int) -> Int64? {
        if ttlOverride.isEmpty { return nil }
        return ttlOverride[status] ?? ttlOverride[status / 100]
    }
}

/// Why a response was not stored (for Cache-Status and `edgectl explain`).
public enum NotStored: String, Sendable, Equatable {
    case method = "method not cacheable"
    case status = "status not cacheable"
    case requestNoStore = "request no-store"
    case responseNoStore = "response no-store"
    case isPrivate = "response private"
    case authorization = "request had Authorization"
    case setCookie = "response sets a cookie"
    case varyStar = "Vary: *"
    case noFreshness = "no explicit freshness and not heuristically cacheable"
    case partial = "partial content"
}

/// Which field and directive gave the freshness lifetime.
public enum FreshnessSource: String, Sendable, Equatable {
    case cdnCacheControl = "CDN-Cache-Control"
    case surrogateControl = "Surrogate-Control"
    case sMaxAge = "s-maxage"
    case maxAge = "max-age"
    case expires = "Expires"
    case heuristic = "heuristic (Last-Modified)"
    case ttlOverride = "route ttl_override"
    case negativeTTL = "route negative_ttl"
    case defaultTTL = "route default_ttl"
    case ttlMin = "route ttl_min"
    case ttlMax = "route ttl_max"
    case invalid = "invalid freshness information"
    case none = "none"

    /// Each source as a number, fixed for good (the disk tier's records store
    /// it; a new source goes at the end).
    public static let codes: [FreshnessSource] = [.cdnCacheControl, .surrogateControl, .sMaxAge, .maxAge, .expires, .heuristic, .ttlOverride,
                                                  .negativeTTL, .defaultTTL, .ttlMin, .ttlMax, .invalid, .none]
    /// This source's number in `codes`.
    public static func code(_ s: FreshnessSource) -> UInt8 { UInt8(codes.firstIndex(of: s) ?? codes.count - 1) }
}

/// What the cache keeps about a stored response's freshness (§4.2).
public struct Freshness: Sendable, Equatable {
    public var lifetime: Int64
    public var source: FreshnessSource
    /// corrected_initial_age (§4.2.3).
    public var correctedInitialAge: Int64
    /// When the response was received.
    public var responseTime: Int64
    /// must-revalidate, proxy-revalidate or s-maxage: never served stale without validation.
    public var mustRevalidate: Bool
    /// Unqualified no-cache: validate before every use.
    public var noCache: Bool
    public var staleWhileRevalidate: Int64?
    public var staleIfError: Int64?

    public init(lifetime: Int64, source: FreshnessSource, correctedInitialAge: Int64, responseTime: Int64, mustRevalidate: Bool, noCache: Bool,
                staleWhileRevalidate: Int64?, staleIfError: Int64?) {
        self.lifetime = lifetime; self.source = source; self.correctedInitialAge = correctedInitialAge; self.responseTime = responseTime
        self.mustRevalidate = mustRevalidate; self.noCache = noCache; self.staleWhileRevalidate = staleWhileRevalidate; self.staleIfError = staleIfError
    }

    /// current_age at `now` (§4.2.3).
    public func age(now: Int64) -> Int64 { correctedInitialAge + max(0, now - responseTime) }
    public func isFresh(now: Int64) -> Bool { lifetime > age(now: now) }
    /// Seconds past the freshness lifetime (0 while fresh).
    public func staleness(now: Int64) -> Int64 { max(0, age(now: now) - lifetime) }
}

/// What a request may be answered with, given a stored response.
public enum CacheDecision: Equatable, Sendable {
    /// Serve it as is.
    case fresh
    /// Serve it stale because the client allowed it (max-stale).
    case staleAllowedByClient
    /// Serve it stale now and revalidate in the background (stale-while-revalidate).
    case staleWhileRevalidate
    /// Validate with the origin first (conditional request).
    case revalidate
}

public enum CachePolicy {
    /// Statuses a cache may store with heuristic freshness (RFC 9110 §15.1).
    public static let heuristicallyCacheable: Set<Int> = [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]
    /// Final statuses this cache understands (for must-understand, §5.2.2.3):
    /// those RFC 9110 defines, and 428, 429, 431, 511 (RFC 6585) and 451 (RFC 7725).
    public static let understood: Set<Int> = [
        200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303, 304, 305, 307, 308,
        400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426,
        428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 511,
    ]

    /// The Cache-Control that governs this cache: the first valid, non-empty
    /// one of CDN-Cache-Control and Surrogate-Control, else Cache-Control
    /// (RFC 9213 §2.2). A targeted field in charge also sets Expires aside.
    public static func governing(_ h: HeaderList, options: CacheOptions) -> (CacheControl, FreshnessSource?) {
        if options.useTargetedFields {
            let cdn = h.values("cdn-cache-control")
            if !cdn.isEmpty, let cc = CacheControl.parseTargeted(cdn) { return (cc, .cdnCacheControl) }
            let sur = h.values("surrogate-control")
            if !sur.isEmpty, let cc = CacheControl.parseStrict(sur) { return (cc, .surrogateControl) }
        }
        return (CacheControl.parse(h.values("cache-control")), nil)
    }

    /// The answer `storable` gives a plain request (one with no Cache-Control
    /// or Authorization of its own) when it is `.responseNoStore`, found from
    /// the parsed response head without building its fields as strings: its
    /// Cache-Control says `no-store`, nothing there can override that
    /// (`must-understand`), and no targeted field this cache heeds is present
    /// (it would be in charge instead). False means: ask `storable`.
    /// `useTargetedFields`: the route's CacheOptions.useTargetedFields (the one
    /// option this reads; the whole options value is not copied per response).
    public static func plainlyNoStore(_ p: UnsafeRawBufferPointer, _ fields: [Field], useTargetedFields: Bool) -> Bool {
        var noStore = false
        for f in fields {
            if f.known == .cacheControl {
                let flags = CacheControl.noStoreFlags(p, f.valueStart, f.valueEnd)
                if flags.mustUnderstand { return false }
                if flags.noStore { noStore = true }
            } else if useTargetedFields, f.known == .other, f.nameEnd - f.nameStart == 17,
                      equalsLowercase(p, f.nameStart, f.nameEnd, "cdn-cache-control") || equalsLowercase(p, f.nameStart, f.nameEnd, "surrogate-control") {
                return false
            }
        }
        return noStore
    }

    /// May this response be stored (§3)? Returns the reason when not.
    public static func storable(method: String, request: HeaderList, status: Int, response: HeaderList,
                                options: CacheOptions) -> NotStored? {
        guard method == "GET" else { return .method }
        let req = CacheControl.parse(request.values("cache-control"))
        if req.noStore { return .requestNoStore }
        let (cc, targeted) = governing(response, options: options)
        if cc.mustUnderstand {
            guard understood.contains(status) else { return .status }
        } else if cc.noStore {
            return .responseNoStore
        }
        // Any final status may be stored (§3), whether or not it is understood:
        // one the cache does not know needs explicit freshness or `public`
        // (it is not heuristically cacheable); a 304 never stands for the
        // representation, and a 206 is part of one.
        guard status >= 200, status <= 999, status != 304 else { return .status }
        if status == 206 { return .partial }
        // A 416 answers the request's Range, not the URL (RFC 9110 §15.5.17).
        if status == 416 && request.contains("range") { return .partial }
        if cc.isPrivate { return .isPrivate }
        if request.contains("authorization") && !(cc.mustRevalidate || cc.isPublic || cc.sMaxAge != nil) {
            return .authorization
        }
        if response.contains("set-cookie") && !options.storeSetCookie { return .setCookie }
        if response.listElements("vary").contains("*") { return .varyStar }
        let explicit = cc.isPublic || cc.maxAge != nil || cc.sMaxAge != nil || (targeted == nil && response.contains("expires")) || cc.invalidFreshness
        if !explicit && !heuristicallyCacheable.contains(status) && options.override(status) == nil { return .noFreshness }
        return nil
    }

    /// Freshness of a response received at `responseTime` for a request sent at `requestTime` (§4.2).
    public static func freshness(status: Int, response: HeaderList, requestTime: Int64, responseTime: Int64,
                                 options: CacheOptions) -> Freshness {
        let (cc, targeted) = governing(response, options: options)
        let date = response.first("date").flatMap { HTTPDate.parse($0, now: responseTime) } ?? responseTime
        // Age (§4.2.3): of a list (`Age: 7200, 0`, or several lines) the first
        // member counts (§5.1); a value that is not delta-seconds is ignored.
        let ageValue = response.first("age").flatMap { v in CacheControl.seconds(v.split(separator: ",", omittingEmptySubsequences: false).first.map { String($0).trimmedOWS() }) } ?? 0
        let apparentAge = max(0, responseTime - date)
        let responseDelay = max(0, responseTime - requestTime)
        let correctedAgeValue = ageValue + responseDelay
        let correctedInitialAge = max(apparentAge, correctedAgeValue)

        var lifetime: Int64 = 0
        var source = FreshnessSource.none
        if cc.invalidFreshness {
            source = .invalid
        } else if let s = cc.sMaxAge {
            lifetime = s; source = targeted ?? .sMaxAge
        } else if let m = cc.maxAge {
            lifetime = m; source = targeted ?? .maxAge
        } else if targeted == nil, let e = response.values("expires").first {
            // Invalid Expires (including "0") means already expired; repeats with different values too.
            let all = Set(response.values("expires"))
            if all.count == 1, let t = HTTPDate.parse(e, now: responseTime) { lifetime = max(0, t - date) }
            source = .expires
        } else if !cc.noCache, heuristicallyCacheable.contains(status),
                  let lm = response.first("last-modified").flatMap({ HTTPDate.parse($0, now: responseTime) }), lm < date {
            lifetime = min(Int64(Double(date - lm) * options.heuristicFraction), options.heuristicCap)
            source = .heuristic
        }
        // The route's lifetimes (CacheOptions says the order).
        if let o = options.override(status) {
            lifetime = o; source = .ttlOverride
        } else if source == .none || source == .heuristic {
            if status == 404 || status == 410 {
                if options.negativeTTL > 0 { lifetime = options.negativeTTL; source = .negativeTTL }
            } else if let d = options.defaultTTL, heuristicallyCacheable.contains(status) {
                lifetime = d; source = .defaultTTL
            }
        }
        if source != .invalid {
            if let m = options.ttlMax, lifetime > m { lifetime = m; source = .ttlMax }
            if let m = options.ttlMin, lifetime < m { lifetime = m; source = .ttlMin }
        }
        return Freshness(lifetime: lifetime, source: source, correctedInitialAge: correctedInitialAge, responseTime: responseTime,
                         mustRevalidate: cc.mustRevalidate || cc.proxyRevalidate || cc.sMaxAge != nil,
                         noCache: cc.noCache, staleWhileRevalidate: cc.staleWhileRevalidate, staleIfError: cc.staleIfError)
    }

    /// May this request be answered from a stored response with this freshness (§4, §5.2.1, RFC 5861)?
    public static func decide(_ f: Freshness, request: HeaderList, now: Int64, options: CacheOptions) -> CacheDecision {
        if f.noCache { return .revalidate }
        // Most requests carry neither field: skip the parsing.
        if !request.contains("cache-control") && !request.contains("pragma") {
            if f.isFresh(now: now) { return .fresh }
            if f.mustRevalidate { return .revalidate }
            if let swr = f.staleWhileRevalidate, f.staleness(now: now) <= swr { return .staleWhileRevalidate }
            return .revalidate
        }
        let rcc = CacheControl.parse(request.values("cache-control"))
        if options.honorRequestNoCache {
            if rcc.noCache { return .revalidate }
            // Pragma: no-cache counts only without Cache-Control (§5.4).
            if request.values("cache-control").isEmpty && request.listElements("pragma").contains("no-cache") { return .revalidate }
        }
        let age = f.age(now: now)
        if let ma = rcc.maxAge, age > ma { return .revalidate }
        if let mf = rcc.minFresh, f.lifetime - age < mf { return .revalidate }
        if f.isFresh(now: now) { return .fresh }
        if f.mustRevalidate { return .revalidate }
        let stale = f.staleness(now: now)
        if let ms = rcc.maxStale, stale <= ms { return .staleAllowedByClient }
        if let swr = f.staleWhileRevalidate, stale <= swr { return .staleWhileRevalidate }
        return .revalidate
    }

    /// May a stale response be served because the origin failed (RFC 5861 §4,
    /// plus a route's grace period)? must-revalidate forbids it (§4.2.4).
    public static func mayServeStaleOnError(_ f: Freshness, request: HeaderList, now: Int64, grace: Int64) -> Bool {
        if f.mustRevalidate || f.noCache { return false }
        let stale = f.staleness(now: now)
        let rcc = CacheControl.parse(request.values("cache-control"))
        if let sie = rcc.staleIfError, stale <= sie { return true }
        if let sie = f.staleIfError, stale <= sie { return true }
        return stale <= grace
    }

    /// Header fields of a stored response updated by a 304 or HEAD (§3.2):
    /// fields in the new response replace the stored ones of the same name,
    /// except those that describe the stored content's framing.
    public static func updatedHeaders(stored: HeaderList, from fresh: HeaderList) -> HeaderList {
        let keep: Set<String> = ["content-length", "content-encoding", "transfer-encoding", "content-range", "trailer"]
        var replace = Set<String>()
        for f in fresh.fields where !keep.contains(f.name.lowercased()) { replace.insert(f.name.lowercased()) }
        var out = stored.fields.filter { !replace.contains($0.name.lowercased()) }
        out += fresh.fields.filter { replace.contains($0.name.lowercased()) }
        return HeaderList(out.map { ($0.name, $0.value) })
    }

    /// URIs a successful unsafe request invalidates (§4.4): its target, and
    /// Location / Content-Location when they name the same host. Returns
    /// origin-relative paths.
    public static func invalidated(method: String, status: Int, host: String, target: String, response: HeaderList) -> [String] {
        guard !["GET", "HEAD", "OPTIONS", "TRACE"].contains(method), (200..<400).contains(status) else { return [] }
        var out = [target]
        for name in ["location", "content-location"] {
            guard let v = response.first(name) else { continue }
            if v.hasPrefix("/") { out.append(v); continue }
            for scheme in ["http://", "https://"] where v.lowercased().hasPrefix(scheme) {
                let rest = v.dropFirst(scheme.count)
                let slash = rest.firstIndex(of: "/") ?? rest.endIndex
                if rest[..<slash].lowercased() == host.lowercased() { out.append(slash == rest.endIndex ? "/" : String(rest[slash...])) }
            }
        }
        return out
    }
}
