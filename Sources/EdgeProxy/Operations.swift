// What the admin API does, over the running server: purge, explain, stats,
// tenants, metrics. Called from the admin thread; touches only shared state
// that is safe from any thread (the config box, the store's shard locks, the
// counters' atomics). Results are plain Encodable values; the admin module
// turns them into JSON.
import EdgeCache
import EdgeConfig
import EdgeHTTP
import EdgeIO

/// A request the admin API cannot act on (answered 400 or 404 with the message).
public struct OperationError: Error, CustomStringConvertible {
    public let status: Int
    public let message: String
    public var description: String { message }
    init(_ status: Int, _ message: String) { self.status = status; self.message = message }
}

/// A URL resolved the way a request for it would be: tenant, route, key.
struct ResolvedURL {
    let tenant: Tenant
    let route: Route?
    let https: Bool
    let host: String
    let target: String
    var query: QueryOptions { route?.cache?.query ?? QueryOptions() }
    var key: String { CacheKey.primary(tenant: tenant.name, https: https, host: host, target: target, query: query) }
}

public struct PurgeResult: Encodable, Sendable {
    /// Objects removed (or, soft, marked stale).
    public var purged = 0
    public var soft = false
    /// What was selected, one line per scope.
    public var scopes: [String] = []
}

public struct ExplainResult: Encodable, Sendable {
    public struct Variant: Encodable, Sendable {
        public var vary: [String]
        /// The secondary key (request field values the variant was stored under).
        public var variant: String
        public var selected: Bool
        public var status: Int
        public var bytes: Int
        public var age: Int64
        public var freshnessLifetime: Int64
        public var freshnessSource: String
        public var fresh: Bool
        public var staleWhileRevalidate: Int64?
        public var staleIfError: Int64?
        public var mustRevalidate: Bool
        public var noCache: Bool
        public var tags: [String]
        /// Where it is: "memory", or a tier below ("disk": a disk hit would promote it).
        public var tier: String
    }
    public var url: String
    public var tenant: String
    public var route: String?
    public var cacheable: Bool
    public var key: String?
    public var stored: Bool
    /// Which stored variant a request with the given headers selects (nil: none).
    public var selects: String?
    public var variants: [Variant] = []
    /// Codings edge made from the stored representation and keeps next to it (compressing routes).
    public var codingsStored: [String] = []
    /// When nothing stored matches: why (not stored, or no variant for these headers).
    public var reason: String?
    /// What the route adds to the key beyond the URL: request fields, cookies
    /// (`cookie:NAME`), its languages, and its query rules.
    public var routeKey: [String] = []
    /// The route's own lifetimes in seconds (ttl_override by status, negative_ttl,
    /// default_ttl, ttl_min, ttl_max); a stored variant's `freshnessSource` says which set it.
    public var routeLifetimes: [String: Int64] = [:]
    /// The route's bypass rule these request headers and this path match, if any.
    public var bypass: String?
    /// What the request filter would do (access list, rules, signatures, limits).
    public var protection: ProtectionExplain?
}

/// What `/v1/stats` says of the cache as a whole.
public struct CacheSummary: Encodable, Sendable {
    public struct Memory: Encodable, Sendable {
        public var objects: Int
        public var bytes: Int
        public var capacity: Int
    }
    public var memory: Memory
    /// Each disk directory: in service or not (and why), loading, counters.
    public var disks: [StorageTierStatus]
}

public struct TenantStats: Encodable, Sendable {
    public var tenant: String
    public var requests = 0
    public var byStatus: [String: Int] = [:]
    /// Requests by protocol ("HTTP/1.0", "HTTP/1.1", "HTTP/2").
    public var byProtocol: [String: Int] = [:]
    public var byCache: [String: Int] = [:]
    /// Hits (fresh and stale) over requests that consulted the cache.
    public var hitRatio: Double = 0
    public var bytesServed = 0
    public var originRequests = 0
    public var originErrors = 0
    public var p50Millis: Double?
    public var p99Millis: Double?
    /// Bytes the tenant holds in memory, and in the tiers below (disk).
    public var cacheBytes = 0
    public var diskBytes = 0
    /// Requests and errors per origin group (a split's sides: promote or roll back on these).
    public var groups: [GroupCount] = []
    public struct GroupCount: Encodable, Sendable {
        public var group: String
        public var requests: Int
        public var errors: Int
    }
    public struct RuleCount: Encodable, Sendable {
        /// A rule id, or "signature:CATEGORY".
        public var rule: String
        public var matched: Int
        /// Matches while in log mode (counted, not acted on).
        public var logged: Int
    }
    public struct KeyCount: Encodable, Sendable {
        public var key: String
        /// An upper bound (the heaviest keys are kept, space-saving).
        public var count: Int
    }
    public struct LimitTop: Encodable, Sendable {
        public var limit: String
        public var limited: Int
        public var dryRun: Int
        public var topKeys: [KeyCount]
    }
    /// Mirror copies per route and shadow group.
    public var mirrors: [MirrorCount] = []
    public struct MirrorCount: Encodable, Sendable {
        public var route: String
        public var group: String
        /// Handed to the sender's queue; not sent (queue full, body too large,
        /// client gone, no shadow server); answered by the shadow; failed there.
        public var queued: Int
        public var dropped: Int
        public var answered: Int
        public var failed: Int
    }
    /// Rules and signature categories that matched anything.
    public var rules: [RuleCount] = []
    /// Each rate limit that counted anything, with the keys it refused (or counted) most.
    public var limits: [LimitTop] = []
}

public struct TenantInfo: Encodable, Sendable {
    public struct Origin: Encodable, Sendable {
        public var group: String
        public var server: String
        public var healthy: Bool
        /// Why it is out: "probe" (the health check) or "passive" (failed requests).
        public var down: String?
        /// The health check's last change of verdict: when (ISO 8601) and why.
        public var changed: String?
        public var why: String?
        /// Whether its group has an active health check.
        public var checked = false
    }
    public var name: String
    public var hosts: [String]
    public var isDefault: Bool
    public var tls: String
    /// ISO 8601 date of the earliest certificate expiry (TLS tenants).
    public var certificateExpires: String?
    public var origins: [Origin]
}

extension EdgeServer {
    /// Resolves "http(s)://host[:port]/path?query" to the tenant and key a request would get.
    func resolve(_ url: String) throws -> ResolvedURL {
        let https: Bool
        var rest: Substring
        if url.hasPrefix("https://") { https = true; rest = url.dropFirst(8) }
        else if url.hasPrefix("http://") { https = false; rest = url.dropFirst(7) }
        else { throw OperationError(400, "\(url): expected an http:// or https:// URL") }
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let host = String(rest[..<slash])
        rest = rest[slash...]
        // The same normalization requests get (EdgeHTTP.Authority).
        var scratch: [UInt8] = []
        let hostBytes = Array(host.utf8)
        guard !host.isEmpty, hostBytes.withUnsafeBytes({ Authority.normalize($0, 0..<hostBytes.count, into: &scratch) }) else {
            throw OperationError(400, "\(url): bad host")
        }
        let config = self.config
        guard let tenant = config.tenant(forHost: scratch) else {
            throw OperationError(404, "\(url): no tenant serves host \(host)")
        }
        let raw = Array((rest.isEmpty ? "/" : rest.first == "?" ? "/" + rest : rest).utf8)
        var out: [UInt8] = []
        guard let (_, pathLength) = raw.withUnsafeBytes({ TargetNormalizer.normalize($0, 0..<raw.count, into: &out) }) else {
            throw OperationError(400, "\(url): bad path")
        }
        let route = out.withUnsafeBufferPointer { tenant.route(for: UnsafeBufferPointer(rebasing: $0[0..<pathLength])) }
        return ResolvedURL(tenant: tenant, route: route, https: https, host: String(decoding: scratch, as: UTF8.self),
                           target: String(decoding: out, as: UTF8.self))
    }

    /// Purges every variant of each URL (both schemes: the same resource).
    public func purge(urls: [String], soft: Bool) throws -> PurgeResult {
        let resolved = try urls.map { try resolve($0) }
        var r = PurgeResult(soft: soft)
        let now = clock.now()
        for u in resolved {
            for https in [false, true] {
                let key = CacheKey.primary(tenant: u.tenant.name, https: https, host: u.host, target: u.target, query: u.query)
                r.purged += config.store.purge(.key(key), soft: soft, now: now)
                r.scopes.append(PurgeScope.key(key).description)
            }
        }
        return r
    }

    /// Purges everything under a URL prefix (both schemes).
    public func purge(prefix: String, soft: Bool) throws -> PurgeResult {
        let u = try resolve(prefix)
        var r = PurgeResult(soft: soft)
        let now = clock.now()
        for https in [false, true] {
            // The primary key of the prefix itself, as a key prefix (no query options apply).
            let p = CacheKey.primary(tenant: u.tenant.name, https: https, host: u.host, target: u.target)
            r.purged += config.store.purge(.prefix(p), soft: soft, now: now)
            r.scopes.append(PurgeScope.prefix(p).description)
        }
        return r
    }

    /// Purges every object tagged with any of `tags` (of one tenant, or all).
    public func purge(tags: [String], tenant: String?, soft: Bool) throws -> PurgeResult {
        if let t = tenant, !config.tenantNames.contains(t) { throw OperationError(404, "no tenant named \(t)") }
        var r = PurgeResult(soft: soft)
        let now = clock.now()
        for tag in tags {
            r.purged += config.store.purge(.tag(tag, tenant: tenant), soft: soft, now: now)
            r.scopes.append(PurgeScope.tag(tag, tenant: tenant).description)
        }
        return r
    }

    /// Purges everything a tenant has stored.
    public func purge(tenant: String, soft: Bool) throws -> PurgeResult {
        guard config.tenantNames.contains(tenant) else { throw OperationError(404, "no tenant named \(tenant)") }
        let n = config.store.purge(.tenant(tenant), soft: soft, now: clock.now())
        return PurgeResult(purged: n, soft: soft, scopes: [PurgeScope.tenant(tenant).description])
    }

    /// What the cache holds for `url` and what a request with `headers` would get.
    /// `client` and `method`: the request the protection section is about (default 127.0.0.1, GET).
    public func explain(url: String, headers: [(String, String)], method: String = "GET", client: String = "127.0.0.1") throws -> ExplainResult {
        let u = try resolve(url)
        var e = ExplainResult(url: url, tenant: u.tenant.name, route: u.route.map { String(decoding: $0.prefix, as: UTF8.self) },
                              cacheable: u.route?.cache != nil, key: nil, stored: false)
        e.protection = try explainProtection(u, headers: headers, method: method, client: client)
        guard u.route?.cache != nil else {
            e.reason = u.route == nil ? "no route matches the path" : "caching is off for this route"
            return e
        }
        let key = u.key
        e.key = key
        var request = HeaderList(headers)
        // A keyed split: what the first (stable) side holds.
        if let sp = u.route!.split, sp.keyed { request.append(name: splitKeyName, value: String(decoding: sp.names[0], as: UTF8.self)) }
        let rc = u.route!.cache!
        e.routeKey = rc.keyNames + (rc.languageName.map { [$0] } ?? [])
            + (rc.query.keep.map { ["query: only " + $0.sorted().joined(separator: ", ")] } ?? [])
            + (rc.query.ignore.isEmpty ? [] : ["query: without " + rc.query.ignore.sorted().joined(separator: ", ")])
            + (rc.query.sort ? ["query: sorted"] : [])
        let o = rc.options
        for (status, secs) in o.ttlOverride { e.routeLifetimes["ttl_override " + (status < 10 ? "\(status)xx" : "\(status)")] = secs }
        e.routeLifetimes["negative_ttl"] = o.negativeTTL
        if let d = o.defaultTTL { e.routeLifetimes["default_ttl"] = d }
        if let m = o.ttlMin { e.routeLifetimes["ttl_min"] = m }
        if let m = o.ttlMax { e.routeLifetimes["ttl_max"] = m }
        let path = u.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        if let why = rc.bypass.check(path: path, request: request) {
            e.bypass = why == .cookie ? "a bypass cookie" : why == .header ? "a bypass header field" : "a bypass path"
        }
        let now = clock.now()
        var variants: [(StoredResponse, String)] = config.store.variants(key: key).map { ($0, "memory") }
        if let below = config.store.lowerTierLookup(key: key, request: { request }) { variants.append((below.response, below.tier)) }
        var selected: String?
        for (v, tier) in variants {
            let matches = CacheKey.variant(vary: v.vary, request: request) == v.variant
            if matches && selected == nil { selected = v.variant }
            let f = v.freshness
            e.variants.append(.init(vary: v.vary, variant: v.variant.replacingNewlines(), selected: matches && selected == v.variant,
                                    status: v.status, bytes: v.bodyCount, age: f.age(now: now), freshnessLifetime: f.lifetime,
                                    freshnessSource: f.source.rawValue, fresh: f.isFresh(now: now),
                                    staleWhileRevalidate: f.staleWhileRevalidate, staleIfError: f.staleIfError,
                                    mustRevalidate: f.mustRevalidate, noCache: f.noCache, tags: v.tags, tier: tier))
        }
        e.stored = selected != nil
        e.selects = selected?.replacingNewlines()
        e.codingsStored = ContentCoding.allCases.filter {
            let dk = CacheKey.derived(key, $0)
            return !config.store.variants(key: dk).isEmpty || config.store.lowerTierLookup(key: dk, request: { request }) != nil
        }.map(\.token)
        if selected == nil {
            if !variants.isEmpty {
                e.reason = "\(variants.count) variant(s) stored, none for these request headers (Vary: \(variants[0].0.vary.joined(separator: ", ")))"
            } else {
                e.reason = config.store.whyNotStored(key: key).map { "not stored: \($0)" } ?? "not stored: not requested since start, evicted, or purged"
            }
        }
        return e
    }

    /// The cache's tiers: memory, and each disk directory below it.
    public func cacheStatus() -> CacheSummary {
        let s = config.store
        return CacheSummary(memory: .init(objects: s.objectCount, bytes: s.bytesUsed, capacity: s.capacity), disks: s.tiers)
    }

    /// Per-tenant counters since start (one tenant, or all).
    public func tenantStats(_ only: String? = nil) throws -> [TenantStats] {
        let names = only.map { [$0] } ?? config.tenantNames
        if let t = only, !config.tenantNames.contains(t) { throw OperationError(404, "no tenant named \(t)") }
        let tops = Dictionary(uniqueKeysWithValues: stats.topLimited(10))
        let mirrorCounts = mirror.counts().sorted { ($0.key.route, $0.key.group) < ($1.key.route, $1.key.group) }
        return names.map { name in
            var s = TenantStats(tenant: name)
            s.cacheBytes = config.store.bytes(tenant: name)
            s.diskBytes = config.store.lowerBytes(tenant: name)
            let mine = name + "/"
            var byGroup: [String: (Int, Int)] = [:]
            for (n, c) in stats.originTotals() where n.hasPrefix(mine) {
                let g = String(n.dropFirst(mine.count).prefix { $0 != "/" })
                byGroup[g, default: (0, 0)].0 += c[OriginSlot.requests]
                byGroup[g, default: (0, 0)].1 += c[OriginSlot.errors]
            }
            s.groups = byGroup.keys.sorted().map { .init(group: $0, requests: byGroup[$0]!.0, errors: byGroup[$0]!.1) }
            for (n, m) in mirrorCounts where n.tenant == name {
                s.mirrors.append(.init(route: n.route, group: n.group, queued: m.queued, dropped: m.dropped, answered: m.answered, failed: m.failed))
            }
            for (n, c) in stats.ruleTotals() where n.hasPrefix(mine) {
                s.rules.append(.init(rule: String(n.dropFirst(mine.count)), matched: c[RuleSlot.matched], logged: c[RuleSlot.logged]))
            }
            for (n, c) in stats.limitTotals() where n.hasPrefix(mine) {
                s.limits.append(.init(limit: String(n.dropFirst(mine.count)), limited: c[LimitSlot.limited], dryRun: c[LimitSlot.dryRun],
                                      topKeys: (tops[n] ?? []).map { .init(key: $0.0, count: $0.1) }))
            }
            guard let t = stats.tenantTotals(name) else { return s }
            for i in 0..<5 { s.byStatus["\(i + 1)xx"] = t[TenantSlot.statusClass + i] }
            for (i, name) in protocolNames.enumerated() { s.byProtocol[name] = t[TenantSlot.proto + i] }
            s.requests = s.byStatus.values.reduce(0, +)
            for o in CacheOutcome.allCases { s.byCache[o.name] = t[TenantSlot.cache + o.rawValue] }
            let hits = t[TenantSlot.cache + CacheOutcome.hit.rawValue] + t[TenantSlot.cache + CacheOutcome.staleHit.rawValue]
            let consulted = hits + t[TenantSlot.cache + CacheOutcome.revalidated.rawValue] + t[TenantSlot.cache + CacheOutcome.miss.rawValue]
                + t[TenantSlot.cache + CacheOutcome.pass.rawValue]
            s.hitRatio = consulted == 0 ? 0 : Double(hits) / Double(consulted)
            s.bytesServed = t[TenantSlot.bytesOut]
            s.originRequests = t[TenantSlot.originRequests]
            s.originErrors = t[TenantSlot.originErrors]
            let buckets = t[TenantSlot.latency..<(TenantSlot.latency + latencyBounds.count + 1)]
            s.p50Millis = Stats.quantile(0.5, buckets: buckets).map { ($0 / 10).rounded() / 100 }
            s.p99Millis = Stats.quantile(0.99, buckets: buckets).map { ($0 / 10).rounded() / 100 }
            return s
        }
    }

    /// Tenants, hosts, certificate expiry, origin health.
    public func tenants() -> [TenantInfo] {
        let config = self.config
        let now = monotonicMillis()
        return config.tenants.map { t in
            var origins: [TenantInfo.Origin] = []
            for g in t.config.origins {
                switch g.kind {
                case .http(let list):
                    for s in list {
                        let server = config.servers.first { $0.statsName == "\(t.name)/\(g.name)/\(s)" }
                        var o = TenantInfo.Origin(group: g.name, server: s, healthy: server?.health.isAvailable(now: now) ?? false)
                        if let h = server?.health {
                            o.checked = g.healthCheck != nil
                            if !o.healthy { o.down = h.probedDown ? "probe" : "passive" }
                            if let c = h.lastChange { o.changed = String(decoding: isoSeconds(c.at), as: UTF8.self) + "Z"; o.why = c.why }
                        }
                        origins.append(o)
                    }
                case .directory(let root, _):
                    origins.append(.init(group: g.name, server: "directory:" + root, healthy: true))
                }
            }
            let tls: String
            switch t.config.tls {
            case .none: tls = "none"
            case .files: tls = "files"
            case .internalCA: tls = "internal"
            case .acme: tls = config.acmeCertificates.contains(t.name) ? "acme" : (config.server.acme.internalUntilIssued ? "acme (internal until issued)" : "acme (none until issued)")
            }
            return TenantInfo(name: t.name, hosts: t.config.hosts, isDefault: t.config.isDefault, tls: tls,
                              certificateExpires: config.certificateExpiry[t.name].map { String(decoding: isoSeconds($0), as: UTF8.self) + "Z" },
                              origins: origins)
        }
    }

    /// Prometheus text exposition format (version 0.0.4).
    public func metricsText() -> String {
        let config = self.config
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func label(_ v: String) -> String {
            var s = ""
            for ch in v.unicodeScalars {
                switch ch {
                case "\\": s += "\\\\"
                case "\"": s += "\\\""
                case "\n": s += "\\n"
                default: s.unicodeScalars.append(ch)
                }
            }
            return s
        }
        let names = stats.tenantNames
        let totals = names.map { ($0, stats.tenantTotals($0)!) }
        family("edge_requests_total", "counter", "Requests by tenant and status class.")
        for (n, t) in totals { for i in 0..<5 { out += "edge_requests_total{tenant=\"\(label(n))\",code=\"\(i + 1)xx\"} \(t[TenantSlot.statusClass + i])\n" } }
        family("edge_requests_by_protocol_total", "counter", "Requests by tenant and protocol (HTTP/1.0, 1.1 or 2).")
        for (n, t) in totals {
            for (i, p) in protocolNames.enumerated() { out += "edge_requests_by_protocol_total{tenant=\"\(label(n))\",protocol=\"\(p)\"} \(t[TenantSlot.proto + i])\n" }
        }
        family("edge_cache_requests_total", "counter", "Requests by tenant and cache outcome.")
        for (n, t) in totals {
            for o in CacheOutcome.allCases { out += "edge_cache_requests_total{tenant=\"\(label(n))\",cache=\"\(o.name)\"} \(t[TenantSlot.cache + o.rawValue])\n" }
        }
        family("edge_requests_refused_total", "counter", "Requests refused by a tenant's access list (403), rate limits, or rules and attack signatures.")
        for (n, t) in totals {
            out += "edge_requests_refused_total{tenant=\"\(label(n))\",reason=\"access_list\"} \(t[TenantSlot.accessDenied])\n"
            out += "edge_requests_refused_total{tenant=\"\(label(n))\",reason=\"rate_limit\"} \(t[TenantSlot.rateLimited])\n"
            out += "edge_requests_refused_total{tenant=\"\(label(n))\",reason=\"rule\"} \(t[TenantSlot.ruleDenied])\n"
        }
        family("edge_rule_matches_total", "counter", "Requests each rule (tenant/id) or signature category (tenant/signature:NAME) matched, by its mode.")
        for (n, t) in stats.ruleTotals() {
            out += "edge_rule_matches_total{rule=\"\(label(n))\",mode=\"block\"} \(t[RuleSlot.matched])\n"
            out += "edge_rule_matches_total{rule=\"\(label(n))\",mode=\"log\"} \(t[RuleSlot.logged])\n"
        }
        family("edge_rate_limited_total", "counter", "Requests over each rate limit (tenant/limit), refused or, in a dry run, only counted.")
        for (n, t) in stats.limitTotals() {
            out += "edge_rate_limited_total{limit=\"\(label(n))\",dry_run=\"false\"} \(t[LimitSlot.limited])\n"
            out += "edge_rate_limited_total{limit=\"\(label(n))\",dry_run=\"true\"} \(t[LimitSlot.dryRun])\n"
        }
        family("edge_response_bytes_total", "counter", "Bytes sent to clients by tenant.")
        for (n, t) in totals { out += "edge_response_bytes_total{tenant=\"\(label(n))\"} \(t[TenantSlot.bytesOut])\n" }
        family("edge_tenant_origin_requests_total", "counter", "Origin requests by tenant.")
        for (n, t) in totals { out += "edge_tenant_origin_requests_total{tenant=\"\(label(n))\"} \(t[TenantSlot.originRequests])\n" }
        family("edge_tenant_origin_errors_total", "counter", "Failed origin requests by tenant.")
        for (n, t) in totals { out += "edge_tenant_origin_errors_total{tenant=\"\(label(n))\"} \(t[TenantSlot.originErrors])\n" }
        family("edge_request_duration_seconds", "histogram", "Time from request head to the end of the response, by tenant.")
        for (n, t) in totals {
            var cum = 0
            for (j, bound) in latencyBounds.enumerated() {
                cum += t[TenantSlot.latency + j]
                out += "edge_request_duration_seconds_bucket{tenant=\"\(label(n))\",le=\"\(Double(bound) / 1_000_000)\"} \(cum)\n"
            }
            cum += t[TenantSlot.latency + latencyBounds.count]
            out += "edge_request_duration_seconds_bucket{tenant=\"\(label(n))\",le=\"+Inf\"} \(cum)\n"
            out += "edge_request_duration_seconds_sum{tenant=\"\(label(n))\"} \(Double(t[TenantSlot.latencySumMicros]) / 1_000_000)\n"
            out += "edge_request_duration_seconds_count{tenant=\"\(label(n))\"} \(cum)\n"
        }
        let origins = stats.originTotals()
        family("edge_origin_requests_total", "counter", "Requests sent to each origin server (tenant/group/host:port).")
        for (n, t) in origins { out += "edge_origin_requests_total{origin=\"\(label(n))\"} \(t[OriginSlot.requests])\n" }
        family("edge_origin_errors_total", "counter", "Failed requests to each origin server.")
        for (n, t) in origins { out += "edge_origin_errors_total{origin=\"\(label(n))\"} \(t[OriginSlot.errors])\n" }
        family("edge_mirror_requests_total", "counter", "Mirror copies per tenant, route and shadow group, by result (queued, dropped, answered, failed).")
        for (n, m) in mirror.counts().sorted(by: { ($0.key.tenant, $0.key.route, $0.key.group) < ($1.key.tenant, $1.key.route, $1.key.group) }) {
            let l = "tenant=\"\(label(n.tenant))\",route=\"\(label(n.route))\",group=\"\(label(n.group))\""
            for (r, v) in [("queued", m.queued), ("dropped", m.dropped), ("answered", m.answered), ("failed", m.failed)] {
                out += "edge_mirror_requests_total{\(l),result=\"\(r)\"} \(v)\n"
            }
        }
        family("edge_origin_up", "gauge", "1 when the server is in rotation (active health checks and passive failure counts).")
        let now = monotonicMillis()
        for s in config.servers { out += "edge_origin_up{origin=\"\(label(s.statsName))\"} \(s.health.isAvailable(now: now) ? 1 : 0)\n" }
        let disks = config.store.tiers
        func perDisk(_ name: String, _ type: String, _ help: String, _ value: (StorageTierStatus) -> Int) {
            family(name, type, help)
            for d in disks { out += "\(name){tier=\"\(d.name)\",path=\"\(label(d.path))\"} \(value(d))\n" }
        }
        family("edge_cache_objects", "gauge", "Objects stored, by tier (a disk tier by directory).")
        out += "edge_cache_objects{tier=\"memory\"} \(config.store.objectCount)\n"
        for d in disks { out += "edge_cache_objects{tier=\"\(d.name)\",path=\"\(label(d.path))\"} \(d.objects)\n" }
        family("edge_cache_bytes", "gauge", "Bytes stored, by tier.")
        out += "edge_cache_bytes{tier=\"memory\"} \(config.store.bytesUsed)\n"
        for d in disks { out += "edge_cache_bytes{tier=\"\(d.name)\",path=\"\(label(d.path))\"} \(d.bytes)\n" }
        family("edge_cache_stored_bytes", "gauge", "Of the memory tier's bytes, the objects' own (keys, fields, bodies); the rest is what keeping them costs.")
        out += "edge_cache_stored_bytes{tier=\"memory\"} \(config.store.storedBytes)\n"
        family("edge_cache_capacity_bytes", "gauge", "Bytes each tier may hold.")
        out += "edge_cache_capacity_bytes{tier=\"memory\"} \(config.store.capacity)\n"
        for d in disks { out += "edge_cache_capacity_bytes{tier=\"\(d.name)\",path=\"\(label(d.path))\"} \(d.capacity)\n" }
        perDisk("edge_cache_disk_in_service", "gauge", "1 while a disk directory is used; 0 for a while after a write or read error.") { $0.inService ? 1 : 0 }
        perDisk("edge_cache_disk_loading", "gauge", "1 while the index of a disk directory is being rebuilt from its segments.") { $0.loading ? 1 : 0 }
        perDisk("edge_cache_disk_writes_total", "counter", "Objects written to a disk directory.") { $0.writes }
        perDisk("edge_cache_disk_streamed_writes_total", "counter", "Of those, objects too large for memory written as they arrived.") { $0.streamedWrites }
        perDisk("edge_cache_disk_fill_holds_total", "counter", "Times a fill too large for memory found the write queue full and waited for room, reading no more of its origin meanwhile (a disk slower than the origins).") { $0.fillHolds }
        perDisk("edge_cache_disk_write_drops_total", "counter", "Objects not written: the write queue was over its budget.") { $0.writeDrops }
        perDisk("edge_cache_disk_write_errors_total", "counter", "Failed writes (the directory goes out of service).") { $0.writeErrors }
        perDisk("edge_cache_disk_reads_total", "counter", "Objects read from a disk directory.") { $0.reads }
        perDisk("edge_cache_disk_read_failures_total", "counter", "Reads that found a torn or corrupt record (served as a miss).") { $0.readFailures }
        perDisk("edge_cache_disk_read_bytes_total", "counter", "Bytes read from the directory's segments.") { $0.readBytes }
        perDisk("edge_cache_disk_page_cache_reads_total", "counter", "Reads a worker made itself from the page cache (RWF_NOWAIT), without the reader pool.") { $0.pageCacheReads }
        perDisk("edge_cache_disk_sendfile_bytes_total", "counter", "Of the bodies read block by block (too large for memory, or a range), the bytes sent to plain sockets from the directory's pages (sendfile), not copied.") { $0.sentFromPages }
        perDisk("edge_cache_disk_loaded_objects", "gauge", "Objects the index rebuild found at start.") { $0.loadedObjects }
        family("edge_cache_disk_load_seconds", "gauge", "How long the index rebuild took.")
        for d in disks { out += "edge_cache_disk_load_seconds{tier=\"\(d.name)\",path=\"\(label(d.path))\"} \(Double(d.loadMillis) / 1000)\n" }
        family("edge_cache_tenant_bytes", "gauge", "Bytes stored per tenant, by tier.")
        for n in config.tenantNames {
            out += "edge_cache_tenant_bytes{tenant=\"\(label(n))\",tier=\"memory\"} \(config.store.bytes(tenant: n))\n"
            if !disks.isEmpty { out += "edge_cache_tenant_bytes{tenant=\"\(label(n))\",tier=\"disk\"} \(config.store.lowerBytes(tenant: n))\n" }
        }
        let w = stats.workerTotals()
        family("edge_tls_certificate_expiry_seconds", "gauge", "When each tenant's served certificate expires (Unix time; the earliest of its certificates).")
        for (name, at) in config.certificateExpiry.sorted(by: { $0.key < $1.key }) {
            out += "edge_tls_certificate_expiry_seconds{tenant=\"\(label(name))\"} \(at)\n"
        }
        family("edge_tls_handshakes_total", "counter", "Completed TLS handshakes with clients.")
        out += "edge_tls_handshakes_total \(w[WorkerSlot.tlsHandshakes])\n"
        family("edge_tls_resumed_total", "counter", "Client TLS handshakes that resumed a session.")
        out += "edge_tls_resumed_total \(w[WorkerSlot.tlsResumed])\n"
        family("edge_tls_handshake_failures_total", "counter", "Failed TLS handshakes with clients.")
        out += "edge_tls_handshake_failures_total \(w[WorkerSlot.tlsFailures])\n"
        family("edge_connections_refused_total", "counter", "Client connections closed at accept, by reason.")
        out += "edge_connections_refused_total{reason=\"per_ip_limit\"} \(w[WorkerSlot.refusedPerIP])\n"
        out += "edge_connections_refused_total{reason=\"access_list\"} \(w[WorkerSlot.refusedAccess])\n"
        out += "edge_connections_refused_total{reason=\"connection_rate\"} \(w[WorkerSlot.refusedConnectionRate])\n"
        out += "edge_connections_refused_total{reason=\"proxy_header\"} \(w[WorkerSlot.proxyHeaderInvalid])\n"
        family("edge_stream_resumes_total", "counter", "Answers that broke off after their head (an origin breaking mid-body, a fill given up, a disk block failing its check) and asked the origin for the rest; spliced: the rest was sent.")
        out += "edge_stream_resumes_total{outcome=\"asked\"} \(w[WorkerSlot.resumesAsked])\n"
        out += "edge_stream_resumes_total{outcome=\"spliced\"} \(w[WorkerSlot.resumesSpliced])\n"
        family("edge_connections_parked_total", "counter", "Idle keep-alive connections parked as a small record until their next request.")
        out += "edge_connections_parked_total \(w[WorkerSlot.parkedConnections])\n"
        family("edge_websocket_tunnels_total", "counter", "WebSocket tunnels opened (the origin accepted the upgrade).")
        out += "edge_websocket_tunnels_total \(w[WorkerSlot.tunnelsOpened])\n"
        family("edge_websocket_tunnels_open", "gauge", "WebSocket tunnels open now.")
        out += "edge_websocket_tunnels_open \(w[WorkerSlot.tunnelsOpen])\n"
        family("edge_http2_connections_total", "counter", "Client connections that chose HTTP/2.")
        out += "edge_http2_connections_total \(w[WorkerSlot.h2Connections])\n"
        family("edge_http2_streams_total", "counter", "HTTP/2 requests (streams) from clients.")
        out += "edge_http2_streams_total \(w[WorkerSlot.h2Streams])\n"
        family("edge_http2_connection_errors_total", "counter", "HTTP/2 connections edge ended with an error GOAWAY (floods, resets, malformed framing).")
        out += "edge_http2_connection_errors_total \(w[WorkerSlot.h2ConnectionErrors])\n"
        family("edge_open_connections", "gauge", "Client connections open now.")
        out += "edge_open_connections \(w[WorkerSlot.openConnections])\n"
        family("edge_start_time_seconds", "gauge", "When edged started (Unix time).")
        out += "edge_start_time_seconds \(stats.startedAt)\n"
        return out
    }
}

extension String {
    /// Variant strings separate fields with newlines; shown with "; " instead.
    func replacingNewlines() -> String { split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "; ") }
}
