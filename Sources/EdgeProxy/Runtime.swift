// Runtime tables built once from the validated config and then shared,
// read-only, by every worker thread. Everything here is immutable after init,
// which is what makes the `Sendable` conformances true.
import EdgeConfig
import EdgeHTTP
import EdgeIO
import EdgeUpstream
import EdgeTLS
import EdgeCache
import EdgeProtect
import Glibc

/// A route's cache settings in the form the policy functions take.
/// (A class: the data path passes it around several times a request, and a
/// struct of this size was copied, and its arrays retained, each time.)
final class RouteCache: Sendable {
    let options: CacheOptions
    let query: QueryOptions
    let grace: Int64
    let deceptionArmor: Bool
    let debug: Bool
    /// Names the route adds to every stored response's Vary list (its key
    /// fields and cookies; CacheKey.variant), and the one Accept-Language
    /// becomes when the route lists its languages.
    let keyNames: [String]
    let languageName: String?
    let bypass: BypassRules
    let staleIfDisconnected: Int64
    /// Slice size for objects too large to store whole (0: off; Slices.swift).
    let slice: Int64
    /// POST responses are stored too, keyed on a SHA-256 of bodies up to `bodyKeyLimit`.
    let cachePost: Bool
    let bodyKeyLimit: Int

    init(options: CacheOptions, query: QueryOptions, grace: Int64, deceptionArmor: Bool, debug: Bool, keyNames: [String] = [],
         languageName: String? = nil, bypass: BypassRules = BypassRules(), staleIfDisconnected: Int64 = 0, slice: Int64 = 0,
         cachePost: Bool = false, bodyKeyLimit: Int = 16 * 1024) {
        self.options = options; self.query = query; self.grace = grace; self.deceptionArmor = deceptionArmor; self.debug = debug
        self.keyNames = keyNames; self.languageName = languageName; self.bypass = bypass; self.staleIfDisconnected = staleIfDisconnected
        self.slice = slice; self.cachePost = cachePost; self.bodyKeyLimit = bodyKeyLimit
    }
}

/// One origin server, shared by all workers (its health is atomic).
public final class OriginServer: Sendable {
    public let id: Int
    public let address: SocketAddress
    /// "host:port" for logs.
    let label: [UInt8]
    public let health: ServerHealth
    /// TLS towards this server (https:// origins), and the name it must prove.
    let tls: OriginTLSContext?
    let serverName: String
    /// "tenant/group/host:port": names its counters (stats, metrics).
    public let statsName: String

    init(id: Int, address: SocketAddress, label: String, health: ServerHealth, tls: OriginTLSContext? = nil, serverName: String = "",
         statsName: String = "") {
        self.id = id; self.address = address; self.label = Array(label.utf8); self.health = health
        self.statsName = statsName.isEmpty ? label : statsName
        self.tls = tls; self.serverName = serverName
    }
}

enum GroupKind: Sendable {
    case http(servers: [Int])               // ids into RuntimeConfig.servers
    case directory(DirectoryRoot)
}

/// A directory origin's root, held open (O_PATH) so every file is opened
/// beneath it (edge_open_beneath): no path or link resolves outside it.
/// Shared read-only by the workers; the descriptor closes with the config.
final class DirectoryRoot: Sendable {
    let path: String
    let fd: Int32
    let index: String
    let symlinksInside: Bool

    init(path: String, index: String, symlinksInside: Bool) {
        self.path = path; self.index = index; self.symlinksInside = symlinksInside
        fd = sysOpenDirectory(path)
    }

    deinit { if fd >= 0 { sysClose(fd) } }
}

final class OriginGroup: Sendable {
    let id: Int
    let name: String
    let kind: GroupKind
    /// Policy, weights, ring and key (shared; each worker's Balancer keeps its own counters).
    let balance: BalanceSetup
    /// The field (lowercase) or cookie name a hash group keys on.
    let hashKeyName: [UInt8]
    /// Active health check (HealthChecks.swift), if configured.
    let check: RuntimeHealthCheck?
    /// Retry tokens each request earns (OriginPools.retryTokens), and the
    /// statuses retried on another server.
    let retryBudget: Double
    let retryOn: Set<Int>
    /// A read timeout before any response byte is retried (idempotent requests).
    let retryOnTimeout: Bool
    let keepAlive: Int
    /// Health of the group's servers, in group order (for the balancer).
    let health: [ServerHealth]
    /// The group (RuntimeConfig.groups index) requests go to when every
    /// server here is tried or out of rotation (Origin.connectOrigin).
    let fallbackID: Int?

    init(id: Int, name: String, kind: GroupKind, balance: BalanceSetup, keepAlive: Int, health: [ServerHealth], check: HealthCheckConfig? = nil,
         retryBudget: Double = 0.2, retryOn: [Int] = [], retryOnTimeout: Bool = false, fallbackID: Int? = nil) {
        self.fallbackID = fallbackID
        self.retryOnTimeout = retryOnTimeout
        self.retryBudget = retryBudget
        self.retryOn = Set(retryOn)
        self.id = id; self.name = name; self.kind = kind; self.balance = balance; self.keepAlive = keepAlive; self.health = health
        self.check = check.map(RuntimeHealthCheck.init)
        switch balance.key {
        case .header(let n), .cookie(let n): hashKeyName = Array(n.utf8)
        case .uri, .client, .cacheKey: hashKeyName = []
        }
    }
}

/// Pre-serialized header edits: added lines are ready to copy.
struct Edits: Sendable {
    let addLines: [UInt8]          // "Name: value\r\n"...
    let remove: [[UInt8]]          // lowercase names

    init(_ e: HeaderEdits) {
        var lines: [UInt8] = []
        for (k, v) in e.add { lines += Array(k.utf8) + [58, 32] + Array(v.utf8) + [13, 10] }
        addLines = lines
        remove = e.remove.map { Array($0.utf8) }
    }

    @inline(__always) func removes(_ p: UnsafeRawBufferPointer, _ name: Range<Int>) -> Bool {
        nameIsListed(remove, p, name)
    }
}

/// True when the field name at `p[name]` is in `list` (lowercase names), case-insensitively.
@inline(__always) func nameIsListed(_ list: [[UInt8]], _ p: UnsafeRawBufferPointer, _ name: Range<Int>) -> Bool {
    if list.isEmpty { return false }
    for r in list where nameIs(p, name, r) { return true }
    return false
}

final class Route: Sendable {
    let prefix: [UInt8]
    let group: OriginGroup
    let stripPrefix: Bool
    let hostRewrite: [UInt8]?
    let request: Edits
    let response: Edits
    /// nil when caching is off for the route (or its origin is a directory).
    let cache: RouteCache?
    /// nil when compression is off for the route (or its origin is a directory).
    let compress: RouteCompress?
    /// WebSocket upgrades are tunnelled (false: answered 403), and a tunnel's idle timeout.
    let websocket: Bool
    let websocketIdleMillis: Int64
    /// The tenant's rate limits that apply to this route, in the order they are checked.
    let rateLimits: [RuntimeRateLimit]
    /// Attack signatures (nil: off), and the fields they check (lowercase).
    let signatures: SignatureConfig?
    let signatureFields: [[UInt8]]
    /// Answered by edged itself (routeActionPhase), and the origin path's rewrite.
    let action: Action?
    let rewrite: PathRewrite?
    /// A canary/weighted split across groups (nil: all to `group`).
    let split: Split?
    /// Copies of a share of the requests to a shadow group (Mirror.swift).
    let mirror: Mirror?

    struct Mirror: Sendable {
        let group: OriginGroup
        /// A draw below this (of 1,000,000) is copied.
        let threshold: UInt64
        let maxBody: Int
        /// "tenant", "route prefix", "group": what its counts are filed under.
        let name: MirrorName
    }

    /// The sides in order (the first is `group`, the cached one), weights, and
    /// how a request picks its side (routePhase).
    struct Split: Sendable {
        enum Sticky: Sendable { case none, client, cookie([UInt8]) }
        let groups: [OriginGroup]
        let weights: [Int]
        let total: Int
        let sticky: Sticky
        /// Lowercase field name; its value names a side's group.
        let forceHeader: [UInt8]?
        let names: [[UInt8]]
        /// Every side caches, its group's name in the key (RouteSplit.keyed).
        var keyed = false
        /// A sticky cookie missing from a request is set by edged (RouteSplit.setCookie).
        var setCookie = false

        /// The side a draw `h` (any 64-bit value) falls on, by weight.
        func side(_ h: UInt64) -> Int {
            var r = Int(h % UInt64(total))
            for (i, w) in weights.enumerated() {
                r -= w
                if r < 0 { return i }
            }
            return 0
        }
    }

    enum Action: Sendable {
        case respond(status: Int, body: [UInt8], contentType: [UInt8])
        /// `pattern`: only a matching path is redirected (its groups fill
        /// $0-$9); others go on to the origin, or get 404 (`orNotFound`).
        case redirect(status: Int, location: LocationTemplate, pattern: Regex?, orNotFound: Bool)
    }

    init(prefix: [UInt8], group: OriginGroup, stripPrefix: Bool, hostRewrite: [UInt8]?, request: Edits, response: Edits, cache: RouteCache? = nil,
         compress: RouteCompress? = nil, websocket: Bool = true, websocketIdleMillis: Int64 = 3_600_000, rateLimits: [RuntimeRateLimit] = [],
         signatures: SignatureConfig? = nil, action: Action? = nil, split: Split? = nil, rewrite: PathRewrite? = nil, mirror: Mirror? = nil) {
        self.action = action; self.rewrite = rewrite; self.split = split; self.mirror = mirror
        self.rateLimits = rateLimits
        self.signatures = signatures
        self.signatureFields = (signatures?.fields ?? []).map { Array($0.utf8) }
        self.prefix = prefix; self.group = group; self.stripPrefix = stripPrefix; self.hostRewrite = hostRewrite
        self.request = request; self.response = response; self.cache = cache; self.compress = compress
        self.websocket = websocket; self.websocketIdleMillis = websocketIdleMillis
    }
}

final class Tenant: Sendable {
    let index: Int
    let name: String
    let nameJSON: [UInt8]
    /// Longest prefix first.
    let routes: [Route]
    let limits: TenantLimits
    let httpsRedirect: Bool
    /// "Strict-Transport-Security: ...\r\n", sent on HTTPS responses only.
    let hstsLine: [UInt8]
    /// Response fields whose values tag a stored object (lowercase).
    let tagFields: [String]
    /// The tenant's config as loaded (hosts, TLS files) for the admin API.
    let config: TenantConfig
    /// Override fields (EdgeHTTP.OverrideFields) this tenant's origins get from any client (lowercase).
    let passOverrides: [[UInt8]]
    /// Client addresses this tenant refuses (403).
    let access: PrefixList
    /// Request rules in order; `ruleSet` is their conditions (EdgeProtect matches them).
    let rules: [RuntimeRule]
    let ruleSet: RuleSet
    /// The operator's pages for errors edged answers itself, by status.
    let errorPages: [Int: [UInt8]]

    init(index: Int, name: String, routes: [Route], limits: TenantLimits, httpsRedirect: Bool = false, hsts: String? = nil,
         tagFields: [String] = ["surrogate-key", "cache-tag"], config: TenantConfig, rules: [RuntimeRule] = []) {
        self.index = index
        self.rules = rules
        self.ruleSet = config.rules
        self.errorPages = config.errorPages.mapValues { Array($0.utf8) }
        self.tagFields = tagFields.map { $0.lowercased() }
        self.config = config
        self.passOverrides = config.passRequestHeaders.map { Array($0.lowercased().utf8) }
        self.access = config.access
        self.httpsRedirect = httpsRedirect
        self.hstsLine = hsts.map { Array("Strict-Transport-Security: \($0)\r\n".utf8) } ?? []
        self.name = name
        self.nameJSON = jsonEscaped(Array(name.utf8))
        self.routes = routes.sorted { $0.prefix.count > $1.prefix.count }
        self.limits = limits
    }

    /// The most specific route whose prefix starts `path`.
    @inline(__always) func route(for path: UnsafeBufferPointer<UInt8>) -> Route? {
        outer: for r in routes where r.prefix.count <= path.count {
            var i = 0
            for b in r.prefix { if path[i] != b { continue outer }; i += 1 }
            return r
        }
        return nil
    }
}

/// Everything the workers need, built from config and shared read-only.
public final class RuntimeConfig: Sendable {
    public let server: ServerConfig
    let tenants: [Tenant]
    let exactHosts: [String: Int]
    let wildcardHosts: [String: Int]   // "example.com" for "*.example.com"
    let defaultTenant: Int
    public let servers: [OriginServer]
    let groups: [OriginGroup]
    /// Peers whose X-Forwarded-* fields are kept (an allow-list of prefixes).
    let trusted: PrefixList
    /// SNI routing and certificates, when any tenant has TLS.
    let tls: TLSServer?
    /// The HTTPS listener address, when there is one.
    public let httpsListen: String?
    /// The internal CA's certificate file, when a tenant uses `"tls": "internal"`.
    public let internalCAPath: String?
    /// Earliest certificate expiry per tenant with TLS (seconds since the epoch).
    public let certificateExpiry: [String: Int64]
    /// ACME tenants served with the certificate ACME obtained (the others with a placeholder or none).
    public let acmeCertificates: Set<String>
    /// This node in responses and forwarded requests, ready to copy:
    /// "Via: 1.1 NODE\r\n", "Cache-Status: NODE; " and
    /// "CDN-Loop: FLEET; node=NODE\r\n" (Phases.loopPhase checks the last).
    let viaLine: [UInt8]
    let cacheStatusStart: [UInt8]
    let cdnLoopLine: [UInt8]
    let fleetToken: [UInt8]
    let nodeToken: [UInt8]

    /// Tenant names, in config order.
    public var tenantNames: [String] { tenants.map(\.name) }

    /// The cache's storage (EdgeCache.CacheStorage): the memory tier alone,
    /// or over the disk tier (EdgeDisk.TieredStore, which edged makes); a
    /// reload passes the running one on so entries survive.
    public let store: any CacheStorage

    /// The memory tier as the server config sizes it (large bodies in memory files).
    public static func memoryStore(_ server: ServerConfig) -> MemoryStore {
        MemoryStore(capacity: Int(server.cacheMemoryBytes), maxObjectBytes: Int(server.cacheMaxObjectBytes), keepBody: storedBody)
    }

    public init(server: ServerConfig, tenants configs: [TenantConfig], store: (any CacheStorage)? = nil) throws {
        self.server = server
        self.store = store ?? RuntimeConfig.memoryStore(server)
        viaLine = Array("Via: 1.1 \(server.nodeName)\r\n".utf8)
        cacheStatusStart = Array("Cache-Status: \(server.nodeName); ".utf8)
        cdnLoopLine = Array("CDN-Loop: \(server.fleet.name); node=\(server.nodeName)\r\n".utf8)
        fleetToken = Array(server.fleet.name.utf8)
        nodeToken = Array(server.nodeName.utf8)
        var servers: [OriginServer] = []
        var groups: [OriginGroup] = []
        var tenants: [Tenant] = []
        var exact: [String: Int] = [:]
        var wild: [String: Int] = [:]
        var def = -1
        for (ti, t) in configs.enumerated() {
            var byName: [String: OriginGroup] = [:]
            let tenantGroups = groups.count
            for (gi, g) in t.origins.enumerated() {
                let kind: GroupKind
                var health: [ServerHealth] = []
                var names: [String] = []
                switch g.kind {
                case .http(let list):
                    var ids: [Int] = []
                    var originTLS: OriginTLSContext?
                    if let tc = g.tls {
                        do {
                            originTLS = try OriginTLSContext(caFile: tc.caFile, clientCert: tc.clientCert, clientKey: tc.clientKey)
                        } catch let e as TLSConfigError {
                            throw ConfigError(file: t.file, field: "origins.\(g.name).tls", message: "\(e.file): \(e.message)")
                        }
                    }
                    for (si, s) in list.enumerated() {
                        guard let addr = SocketAddress(s) else {
                            throw ConfigError(file: t.file, field: "origins.\(g.name).servers[\(si)]", message: "cannot resolve \"\(s)\"")
                        }
                        let h = ServerHealth(maxFails: g.maxFails, backoffMillis: g.failBackoffMillis)
                        health.append(h)
                        names.append(s)
                        ids.append(servers.count)
                        var host = String(s[..<(s.lastIndex(of: ":") ?? s.endIndex)])
                        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
                        servers.append(OriginServer(id: servers.count, address: addr, label: s, health: h, tls: originTLS,
                                                    serverName: g.tls?.serverName ?? host, statsName: "\(t.name)/\(g.name)/\(s)"))
                    }
                    kind = .http(servers: ids)
                case .directory(let root, let index):
                    let dr = DirectoryRoot(path: root, index: index, symlinksInside: g.symlinksInside)
                    guard dr.fd >= 0 else { throw ConfigError(file: t.file, field: "origins.\(g.name).directory", message: "cannot open \"\(root)\"") }
                    kind = .directory(dr)
                }
                _ = gi
                let key: HashKey
                switch g.hashKey {
                case "client": key = .client
                case "key": key = .cacheKey
                case let k where k.hasPrefix("header:"): key = .header(String(k.dropFirst(7)).lowercased())
                case let k where k.hasPrefix("cookie:"): key = .cookie(String(k.dropFirst(7)))
                default: key = .uri
                }
                let balance = BalanceSetup(policy: BalancePolicy(rawValue: g.balance) ?? .roundRobin,
                                           weights: g.weights.count == health.count ? g.weights : Array(repeating: 1, count: health.count),
                                           names: names, key: key, loadFactor: g.hashBalanceFactor, slowStartMillis: g.slowStartMillis)
                let og = OriginGroup(id: groups.count, name: g.name, kind: kind, balance: balance, keepAlive: g.keepAlive, health: health,
                                     check: g.healthCheck, retryBudget: g.retryBudget, retryOn: g.retryOn, retryOnTimeout: g.retryOnTimeout,
                                     fallbackID: g.fallback.flatMap { fb in t.origins.firstIndex { $0.name == fb } }.map { tenantGroups + $0 })
                groups.append(og)
                byName[g.name] = og
            }
            let limits = t.rateLimits.map { RuntimeRateLimit(tenant: t.name, $0) }
            // A limit a rule applies runs where its rules match, not on every
            // route, unless it names routes of its own.
            let ruleLimits = Set(t.rules.rules.compactMap { r -> String? in if case .limit(let n) = r.action { return n } else { return nil } })
            func routeApplies(_ l: RateLimitConfig, _ prefix: String, _ byRules: Set<String>) -> Bool {
                if let rs = l.routes { return rs.contains(prefix) }
                return !byRules.contains(l.name)
            }
            let routes = try t.routes.map { r in
                let group = byName[r.origin]!
                var cache: RouteCache? = nil
                var compress: RouteCompress? = nil
                compress = RouteCompress(r.compress ?? t.compress)
                if r.cache.enabled, case .http = group.kind {
                    var o = CacheOptions()
                    o.honorRequestNoCache = !r.cache.ignoreClientNoCache
                    o.storeSetCookie = r.cache.storeSetCookie
                    o.negativeTTL = r.cache.negativeTTLSeconds
                    o.defaultTTL = r.cache.defaultTTLSeconds
                    o.ttlMin = r.cache.ttlMinSeconds
                    o.ttlMax = r.cache.ttlMaxSeconds
                    for (k, v) in r.cache.ttlOverride {
                        // "404" as 404; a class "4xx" under 4 (CacheOptions.override).
                        if let code = Int(k) { o.ttlOverride[code] = v } else { o.ttlOverride[Int(String(k.prefix(1)))!] = v }
                    }
                    var q = QueryOptions()
                    q.sort = r.cache.sortQuery
                    q.ignore = Set(r.cache.ignoreQuery)
                    q.keep = r.cache.keepQuery.map(Set.init)
                    cache = RouteCache(options: o, query: q, grace: r.cache.graceSeconds, deceptionArmor: r.cache.deceptionArmor, debug: r.cache.debug,
                                       keyNames: r.cache.keyHeaders + r.cache.keyCookies.map { "cookie:" + $0 } + (r.split?.keyed == true ? [splitKeyName] : []),
                                       languageName: r.cache.languages.isEmpty ? nil : (["accept-language"] + r.cache.languages).joined(separator: ";"),
                                       bypass: BypassRules(cookies: r.cache.bypassCookies, headers: r.cache.bypassHeaders, paths: r.cache.bypassPaths),
                                       staleIfDisconnected: r.cache.staleIfDisconnectedSeconds, slice: r.cache.sliceBytes,
                                       cachePost: r.cache.methods.contains("POST"), bodyKeyLimit: Int(r.cache.bodyKeyLimit))
                }
                return Route(prefix: Array(r.prefix.utf8), group: group, stripPrefix: r.stripPrefix,
                             hostRewrite: r.hostRewrite.map { Array($0.utf8) }, request: Edits(r.requestHeaders), response: Edits(r.responseHeaders),
                             cache: cache, compress: compress, websocket: r.websocket, websocketIdleMillis: r.websocketIdleTimeoutMillis,
                             rateLimits: zip(t.rateLimits, limits).filter { routeApplies($0.0, r.prefix, ruleLimits) }.map(\.1),
                             signatures: { switch r.signatures { case .none: return t.signatures; case .some(let own): return own } }(),
                             action: r.action.map { a -> Route.Action in
                                 switch a {
                                 case .respond(let status, let body, let type): return .respond(status: status, body: Array(body.utf8), contentType: Array(type.utf8))
                                 case .redirect(let status, let location, let pattern):
                                     var why = ""
                                     return .redirect(status: status, location: LocationTemplate(location, groups: pattern != nil),
                                                      pattern: pattern.flatMap { Regex($0, captures: true, error: &why) }, orNotFound: !r.hasOrigin)
                                 }
                             },
                             split: r.split.map { sp in
                                 let sticky: Route.Split.Sticky
                                 switch sp.sticky {
                                 case "client": sticky = .client
                                 case let k? where k.hasPrefix("cookie:"): sticky = .cookie(Array(k.dropFirst(7).utf8))
                                 default: sticky = .none
                                 }
                                 return Route.Split(groups: sp.sides.map { byName[$0.origin]! }, weights: sp.sides.map(\.weight),
                                                    total: sp.sides.reduce(0) { $0 + $1.weight }, sticky: sticky,
                                                    forceHeader: sp.forceHeader.map { Array($0.lowercased().utf8) },
                                                    names: sp.sides.map { Array($0.origin.utf8) }, keyed: sp.keyed, setCookie: sp.setCookie)
                             },
                             rewrite: try r.rewrite.map { rw in
                                 var why = ""
                                 guard let x = PathRewrite(pattern: rw.pattern, replacement: rw.replacement, error: &why) else {
                                     throw ConfigError(file: t.file, field: "routes.rewrite", message: why)
                                 }
                                 return x
                             },
                             mirror: r.mirror.map { m in
                                 Route.Mirror(group: byName[m.origin]!, threshold: UInt64((m.percent * 10_000).rounded()), maxBody: Int(m.maxBody),
                                              name: MirrorName(tenant: t.name, route: r.prefix, group: m.origin))
                             })
            }
            let rules = t.rules.rules.map { RuntimeRule(tenant: t.name, $0, limits: limits) }
            tenants.append(Tenant(index: ti, name: t.name, routes: routes, limits: t.limits, httpsRedirect: t.httpsRedirect, hsts: t.hsts,
                                  tagFields: t.purgeTagFields, config: t, rules: rules))
            for h in t.hosts {
                if h.hasPrefix("*.") { wild[String(h.dropFirst(2))] = ti } else { exact[h] = ti }
            }
            if t.isDefault { def = ti }
        }
        self.servers = servers
        self.groups = groups
        self.tenants = tenants
        self.exactHosts = exact
        self.wildcardHosts = wild
        self.defaultTenant = def
        do { self.trusted = try PrefixList(allow: server.trustedProxies, deny: []) } catch {
            throw ConfigError(file: "server", field: "trusted_proxies", message: "\(error)")
        }
        var quotas: [String: Int] = [:], diskQuotas: [String: Int] = [:]
        for t in configs {
            if let q = t.limits.cacheBytes { quotas[t.name] = Int(q) }
            if let q = t.limits.diskCacheBytes { diskQuotas[t.name] = Int(q) }
        }
        self.store.setQuotas(quotas, lower: diskQuotas)

        // TLS: one context per tenant, routed by SNI.
        var tlsTenants: [(tenant: Int, name: String, hosts: [String], tls: TenantTLS)] = []
        var ca: InternalCA?
        var defaultTLS: Int?
        var defaultPairs: [CertificatePair] = []
        var expiry: [String: Int64] = [:]
        let now = Int64(time(nil))
        var acmeIssued: Set<String> = []
        func internalPair(_ t: TenantConfig) throws -> CertificatePair {
            do {
                if ca == nil { ca = try InternalCA.loadOrCreate(stateDir: server.stateDir, now: now) }
                return try ca!.issue(hosts: t.hosts, notBefore: now - 3600, notAfter: now + 7 * 86400)
            } catch let e as TLSConfigError {
                throw ConfigError(file: t.file, field: "tls", message: "internal CA: \(e)")
            }
        }
        for (ti, t) in configs.enumerated() {
            var pairs: [CertificatePair] = []
            switch t.tls {
            case .none: continue
            case .files(let list): pairs = list.map { CertificatePair(certFile: $0.cert, keyFile: $0.key) }
            case .internalCA:
                pairs = [try internalPair(t)]
            case .acme:
                // The certificate ACME obtained, while it is valid; until then the
                // internal CA's (or none: handshakes for its names fail).
                let path = ACMEServerConfig.certificatePath(stateDir: server.stateDir, tenant: t.name)
                let pair = CertificatePair(certFile: path, keyFile: path)
                if access(path, R_OK) == 0, let tt = try? TenantTLS(tenant: t.name, pairs: [pair], now: now, http2: t.http2) {
                    expiry[t.name] = tt.notAfter
                    acmeIssued.insert(t.name)
                    tlsTenants.append((ti, t.name, t.hosts, tt))
                    if t.isDefault { defaultTLS = ti; defaultPairs = [pair] }
                    continue
                }
                guard server.acme.internalUntilIssued else { continue }
                pairs = [try internalPair(t)]
            }
            do {
                let tt = try TenantTLS(tenant: t.name, pairs: pairs, now: now, http2: t.http2)
                expiry[t.name] = tt.notAfter
                tlsTenants.append((ti, t.name, t.hosts, tt))
            } catch let e as TLSConfigError {
                throw ConfigError(file: t.file, field: "tls", message: "\(e.file): \(e.message)")
            }
            if t.isDefault { defaultTLS = ti; defaultPairs = pairs }
        }
        TicketKeys.shared.configure(rotationSeconds: server.ticketRotationMillis / 1000)
        if tlsTenants.isEmpty {
            tls = nil
            httpsListen = server.httpsListen
        } else {
            do {
                tls = try TLSServer(tenants: tlsTenants, defaultTenant: defaultTLS, defaultPairs: defaultPairs)
            } catch let e as TLSConfigError {
                throw ConfigError(file: e.file, field: "tls", message: e.message)
            }
            httpsListen = server.httpsListen ?? ":8443"
        }
        internalCAPath = ca?.certPath
        certificateExpiry = expiry
        acmeCertificates = acmeIssued
    }

    /// The tenant for a Host value (any case, optional port, optional trailing
    /// dot). A wildcard matches exactly one label. Falls back to the default tenant.
    /// The tenant for a normalized host (EdgeHTTP.Authority: lowercase, no port, no trailing dot).
    func tenant(forHost scratch: [UInt8]) -> Tenant? {
        let host = String(decoding: scratch, as: UTF8.self)
        if let t = exactHosts[host] { return tenants[t] }
        if let dot = scratch.firstIndex(of: 46) {
            let parent = String(decoding: scratch[(dot + 1)...], as: UTF8.self)
            if let t = wildcardHosts[parent] { return tenants[t] }
        }
        return defaultTenant >= 0 ? tenants[defaultTenant] : nil
    }
}

/// JSON string escaping for log fields.
func jsonEscaped(_ b: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    for c in b {
        switch c {
        case 34: out += [92, 34]
        case 92: out += [92, 92]
        case 0..<0x20, 0x7F...:
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            out += [92, 117, 48, 48, hex[Int(c >> 4)], hex[Int(c & 15)]]
        default: out.append(c)
        }
    }
    return out
}
