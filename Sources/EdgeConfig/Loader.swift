// Reads tenant files and the server file (JSON). This runs at start and on
// reload, never per request. Every error names the file and the field path
// ("routes[1].origin").
#if canImport(EdgeJSON)   // (the config and admin fuzzers compile these sources as one module: tools/fuzz/run.sh)
import EdgeJSON
import EdgeIO
#endif
#if canImport(EdgeHTTP)   // (the config fuzzer compiles these modules as one: tools/fuzz/run.sh)
import EdgeHTTP
import EdgeProtect
#endif

/// `"access": {"allow": [...], "deny": [...], "allow_file": F, "deny_file": F, "default": "allow" | "deny"}`:
/// prefixes inline or one per line in files (relative to the config's directory).
func loadAccess(_ a: Node, baseDir: String) throws -> PrefixList {
    try a.allowOnly(["allow", "deny", "allow_file", "deny_file", "default"])
    var lists: [String: [Prefix]] = ["allow": [], "deny": []]
    for which in ["allow", "deny"] {
        for (i, text) in (try a.strings(which) ?? []).enumerated() {
            guard let p = Prefix(text) else { throw a.fail("\(which)[\(i)]", "\"\(text)\" is not an address or prefix (like 10.0.0.0/8 or 2001:db8::/32, no host bits set)") }
            lists[which]!.append(p)
        }
        if let f = try a.string("\(which)_file") {
            let full = Path.resolve(f, against: baseDir)
            guard let data = Files.read(full) else { throw a.fail("\(which)_file", "cannot read \"\(full)\"") }
            let lines = PrefixList.lines([UInt8](data))
            lists[which]!.reserveCapacity(lists[which]!.count + lines.count)
            for (line, bytes) in lines {
                guard let p = Prefix(bytes: bytes) else {
                    throw a.fail("\(which)_file", "\(full) line \(line): \"\(String(decoding: bytes, as: UTF8.self))\" is not an address or prefix")
                }
                lists[which]!.append(p)
            }
        }
    }
    var explicit: PrefixList.Verdict?
    if let d = try a.string("default") {
        guard let v = PrefixList.Verdict(name: d) else { throw a.fail("default", "expected \"allow\" or \"deny\"") }
        explicit = v
    }
    do {
        return try PrefixList(allow: lists["allow"]!, deny: lists["deny"]!, default: explicit)
    } catch .inBoth(let p) {
        throw a.fail("allow", "\(p) is in both allow and deny (the most specific prefix decides; the same one cannot say both)")
    } catch {
        throw a.fail("allow", "\(error)")
    }
}

/// `"rate": "10/s"` with `"burst": N` (0 by default), or just the rate string.
func loadRate(_ n: Node, _ key: String) throws -> RateSpec {
    if let s = n.dict[key]?.string {
        guard let r = RateSpec(rate: s, burst: 0) else { throw n.fail(key, "expected a rate like \"10/s\", \"600/m\" or \"2/10s\"") }
        return r
    }
    guard let o = try n.object(key) else { throw n.fail(key, "expected a rate") }
    try o.allowOnly(["rate", "burst"])
    let burst = try o.int("burst", min: 0, max: 1_000_000) ?? 0
    guard let text = try o.string("rate") else { throw o.fail("rate", "is required (like \"10/s\")") }
    guard let r = RateSpec(rate: text, burst: burst) else { throw o.fail("rate", "expected a rate like \"10/s\", \"600/m\" or \"2/10s\"") }
    return r
}

/// `"rate_limits": {"NAME": {"rate": "10/s", "burst": 20, "key": ["client", "header:X-Api-Key", "cookie:session", "tenant", "route"],
/// "routes": ["/api/"], "status": 429, "dry_run": false}}`, checked in name order.
func loadRateLimits(_ rl: Node, routes: [RouteConfig]) throws -> [RateLimitConfig] {
    var out: [RateLimitConfig] = []
    for name in rl.dict.keys.sorted() {
        guard let n = try rl.object(name) else { continue }
        guard !name.isEmpty, name.utf8.allSatisfy({ isTokenChar($0) }) else { throw rl.fail(name, "a limit's name is a token (letters, digits, -_.)") }
        try n.allowOnly(["rate", "burst", "key", "routes", "status", "dry_run"])
        guard n.dict["rate"] != nil else { throw n.fail("rate", "is required (like \"10/s\")") }
        let burst = try n.int("burst", min: 0, max: 1_000_000) ?? 0
        guard let text = try n.string("rate"), let spec = RateSpec(rate: text, burst: burst) else {
            throw n.fail("rate", "expected a rate like \"10/s\", \"600/m\" or \"2/10s\"")
        }
        var c = RateLimitConfig(name: name, spec: spec)
        if n.dict["key"] != nil {
            let parts: [String]
            if let one = n.dict["key"]?.string { parts = [one] } else { parts = try n.strings("key") ?? [] }
            guard !parts.isEmpty else { throw n.fail("key", "needs at least one part (client, header:NAME, cookie:NAME, tenant, route)") }
            c.key = try parts.enumerated().map { i, p in
                switch p {
                case "client": return .client
                case "tenant": return .tenant
                case "route": return .route
                default:
                    if p.hasPrefix("header:"), case let f = String(p.dropFirst(7)), !f.isEmpty, f.utf8.allSatisfy({ isTokenChar($0) }) { return .header(f.lowercased()) }
                    if p.hasPrefix("cookie:"), case let f = String(p.dropFirst(7)), !f.isEmpty, f.utf8.allSatisfy({ isTokenChar($0) }) { return .cookie(f) }
                    throw n.fail("key[\(i)]", "\"\(p)\" is not a key part (client, header:NAME, cookie:NAME, tenant, route)")
                }
            }
        }
        if let rs = try n.strings("routes") {
            for (i, r) in rs.enumerated() where !routes.contains(where: { $0.prefix == r }) {
                throw n.fail("routes[\(i)]", "no route has the prefix \"\(r)\" (routes: \(routes.map(\.prefix).joined(separator: ", ")))")
            }
            c.routes = rs
        }
        if let v = try n.int("status", min: 400, max: 599) { c.status = v }
        c.dryRun = try n.bool("dry_run") ?? false
        out.append(c)
    }
    return out
}

/// `"compress": true | false | {…}` on a tenant or route; nil when absent.
func loadCompress(_ parent: Node, base: CompressConfig) throws -> CompressConfig? {
    guard let v = parent.dict["compress"] else { return nil }
    var c = base
    if let b = v.bool {
        c.enabled = b
        return c
    }
    guard let n = try parent.object("compress") else { return nil }
    try n.allowOnly(["enabled", "types", "min_size", "encodings", "gzip_level", "gzip_window", "brotli_quality", "brotli_window", "decode_limit"])
    c.enabled = try n.bool("enabled") ?? true
    if let t = try n.strings("types") {
        for (i, ty) in t.enumerated() where !ty.contains("/") { throw n.fail("types[\(i)]", "\"\(ty)\" is not a media type (type/subtype or type/*)") }
        c.types = t.map { $0.lowercased() }
    }
    if let v = try n.bytes("min_size") { c.minBytes = v }
    if let e = try n.strings("encodings") {
        for (i, x) in e.enumerated() where x != "br" && x != "gzip" { throw n.fail("encodings[\(i)]", "\"\(x)\" is not one of br, gzip") }
        c.encodings = e
    }
    if let v = try n.int("gzip_level", min: 1, max: 9) { c.gzipLevel = v }
    if let v = try n.int("gzip_window", min: 9, max: 15) { c.gzipWindowBits = v }
    if let v = try n.int("brotli_quality", min: 0, max: 11) { c.brotliQuality = v }
    if let v = try n.int("brotli_window", min: 10, max: 24) { c.brotliWindowBits = v }
    if let v = try n.bytes("decode_limit") {
        guard v >= 1024 else { throw n.fail("decode_limit", "must be at least 1KiB") }
        c.decodeLimit = v
    }
    return c
}

/// A route's cache controls beyond the RFC's: lifetimes, the key, bypass rules, languages.
func loadCacheControls(_ cn: Node, into c: inout RouteCacheConfig) throws {
    func seconds(_ key: String) throws -> Int64? { try cn.millis(key).map { $0 / 1000 } }
    if let o = try cn.object("ttl_override") {
        for (k, v) in o.dict.sorted(by: { $0.key < $1.key }) {
            let u = Array(k.utf8)
            let exact = u.count == 3 && u.allSatisfy { $0 >= 48 && $0 <= 57 } && (100...599).contains(Int(k) ?? 0)
            let klass = u.count == 3 && u[0] >= 49 && u[0] <= 53 && (u[1] | 0x20) == 120 && (u[2] | 0x20) == 120
            guard exact || klass else { throw o.fail(k, "expected a status (\"200\") or a class (\"5xx\")") }
            _ = v
            guard let secs = try o.millis(k) else { continue }
            c.ttlOverride[k.lowercased()] = secs / 1000
        }
    }
    if let v = try seconds("negative_ttl") { c.negativeTTLSeconds = v }
    c.defaultTTLSeconds = try seconds("default_ttl")
    c.ttlMinSeconds = try seconds("ttl_min")
    c.ttlMaxSeconds = try seconds("ttl_max")
    if let a = c.ttlMinSeconds, let b = c.ttlMaxSeconds, a > b { throw cn.fail("ttl_min", "is larger than ttl_max") }
    func fieldNames(_ key: String, _ node: Node) throws -> [String] {
        let names = try node.strings(key) ?? []
        for (i, n) in names.enumerated() {
            guard !n.isEmpty, n.utf8.allSatisfy({ isTokenChar($0) }) else { throw node.fail("\(key)[\(i)]", "\"\(n)\" is not a field name") }
        }
        return names.map { $0.lowercased() }
    }
    func cookieNames(_ key: String, _ node: Node) throws -> [String] {
        let names = try node.strings(key) ?? []
        for (i, n) in names.enumerated() {
            guard !n.isEmpty, n.utf8.allSatisfy({ isTokenChar($0) }) else { throw node.fail("\(key)[\(i)]", "\"\(n)\" is not a cookie name") }
        }
        return names
    }
    c.keyHeaders = try fieldNames("key_headers", cn)
    for (i, n) in c.keyHeaders.enumerated() where ["cookie", "host", "connection", "te", "transfer-encoding", "upgrade", "keep-alive"].contains(n) {
        throw cn.fail("key_headers[\(i)]", "\"\(n)\" cannot key the cache (use key_cookies for cookies; the host always keys it)")
    }
    c.keyCookies = try cookieNames("key_cookies", cn)
    c.keepQuery = try cn.strings("keep_query")
    if c.keepQuery != nil && cn.dict["ignore_query"] != nil { throw cn.fail("keep_query", "cannot be used with ignore_query (one is the allow-list, the other the deny-list)") }
    if let b = try cn.object("bypass") {
        try b.allowOnly(["cookies", "headers", "paths"])
        c.bypassCookies = try cookieNames("cookies", b)
        c.bypassHeaders = try fieldNames("headers", b)
        c.bypassPaths = try b.strings("paths") ?? []
        for (i, p) in c.bypassPaths.enumerated() where !p.hasPrefix("/") && !p.hasPrefix("*") {
            throw b.fail("paths[\(i)]", "\"\(p)\" must start with / (or *)")
        }
    }
    c.languages = try cn.strings("languages")?.map { $0.lowercased() } ?? []
    for (i, l) in c.languages.enumerated() where l.isEmpty || !l.utf8.allSatisfy({ ($0 | 0x20) >= 97 && ($0 | 0x20) <= 122 || $0 == 45 || ($0 >= 48 && $0 <= 57) }) {
        throw cn.fail("languages[\(i)]", "\"\(l)\" is not a language tag")
    }
    if let v = try seconds("stale_if_disconnected") { c.staleIfDisconnectedSeconds = v }
    if let v = try cn.bytes("slice") {
        guard RouteCacheConfig.sliceSizes.contains(v) else { throw cn.fail("slice", "must be between 64KiB and 64MiB") }
        c.sliceBytes = v
    }
}

public enum ConfigLoader {
    /// A duration as config files and flags spell it ("10s", "500ms", "2m", "1h", "1d"), in milliseconds.
    public static func duration(_ s: String) -> Int64? { parseDuration(s) }
    /// A size as config files and flags spell it ("8KiB", "512MiB", "2GiB", a number of bytes).
    public static func size(_ s: String) -> Int64? { parseSize(s) }
    /// Loads the server file (from `contents` when given: the file's bytes, read already).
    public static func loadServer(file: String, contents: [UInt8]? = nil) throws -> ServerConfig {
        let root = Node(dict: try readJSON(file, contents: contents), file: file, path: "")
        try root.allowOnly(["http", "https", "workers", "limits", "trusted_proxies", "access_log", "state", "tls_ticket_rotation", "cache", "admin",
                            "proxy_protocol", "access", "node_name", "fleet", "acme", "log_format", "request_id", "h2c"])
        let baseDir = Path.directory(of: file)
        var c = ServerConfig()
        if let v = try root.millis("tls_ticket_rotation") {
            guard v >= 1000 else { throw root.fail("tls_ticket_rotation", "must be at least 1s") }
            c.ticketRotationMillis = v
        }
        if let v = try root.string("http") { c.httpListen = v }
        if let cn = try root.object("cache") {
            try cn.allowOnly(["memory", "max_object", "disks", "disk_admission"])
            if let v = try cn.string("disk_admission") {
                guard ["all", "second_request"].contains(v) else {
                    throw cn.fail("disk_admission", "expected \"all\" (every stored object is written to disk) or \"second_request\" (only what is asked for again)")
                }
                c.cacheDiskAdmission = v
            }
            if let v = try cn.bytes("memory") { c.cacheMemoryBytes = max(v, 1 << 20) }
            if let v = try cn.bytes("max_object") { c.cacheMaxObjectBytes = v }
            if let list = cn.dict["disks"] {
                guard let items = list.array else { throw cn.fail("disks", "expected a list of {\"path\": DIR, \"size\": SIZE}") }
                var disks: [CacheDisk] = []
                for (i, item) in items.enumerated() {
                    guard let d = item.object else { throw cn.fail("disks[\(i)]", "expected {\"path\": DIR, \"size\": SIZE}") }
                    let dn = Node(dict: d, file: file, path: cn.field("disks[\(i)]"))
                    try dn.allowOnly(["path", "size"])
                    guard let path = try dn.string("path"), !path.isEmpty else { throw dn.fail("path", "is required (the cache directory)") }
                    guard let size = try dn.bytes("size") else { throw dn.fail("size", "is required (like \"10GiB\")") }
                    guard size >= CacheDisk.minimumSize else { throw dn.fail("size", "must be at least 4MiB") }
                    let full = Path.resolve(path, against: baseDir)
                    guard !disks.contains(where: { $0.path == full }) else { throw dn.fail("path", "\"\(path)\" is listed twice") }
                    disks.append(CacheDisk(path: full, size: size))
                }
                c.cacheDisks = disks
            }
        }
        if let v = try root.string("https") { c.httpsListen = v }
        if let v = try root.string("state") { c.stateDir = v }
        if let v = try root.int("workers", min: 0, max: 1024) { c.workers = v }
        if let v = try root.strings("trusted_proxies") {
            for (i, p) in v.enumerated() where Prefix(p) == nil {
                throw root.fail("trusted_proxies[\(i)]", "\"\(p)\" is not an address or prefix (like 10.0.0.1 or 10.0.0.0/8)")
            }
            c.trustedProxies = v
        }
        if let v = try root.string("access_log") { c.accessLog = v }
        if root.dict["log_format"] != nil { c.logFormat = try loadLogFormat(root) }
        if let v = try root.bool("request_id") { c.requestID = v }
        if let v = try root.bool("h2c") { c.h2c = v }
        if let v = try root.bool("proxy_protocol") { c.proxyProtocol = v }
        if let a = try root.object("access") { c.access = try loadAccess(a, baseDir: baseDir) }
        if let a = try root.object("admin") {
            try a.allowOnly(["listen", "token_file"])
            c.adminListen = try a.string("listen")
            c.adminTokenFile = try a.string("token_file")
            if c.adminListen != nil && c.adminTokenFile == nil { throw a.fail("token_file", "is required with \"listen\" (the TCP admin API needs a bearer token)") }
        }
        if let v = try root.string("node_name") {
            guard !v.isEmpty, v.utf8.count <= 64, v.allSatisfy(ServerConfig.isNodeNameCharacter) else {
                throw root.fail("node_name", "\"\(v)\" must be 1 to 64 of A-Z a-z 0-9 . - _ (it goes into Via and Cache-Status)")
            }
            c.nodeName = v
        }
        if let f = try root.object("fleet") { c.fleet = try loadFleet(f, baseDir: baseDir) }
        if let a = try root.object("acme") { c.acme = try loadACME(a, baseDir: baseDir) }
        if let l = try root.object("limits") {
            try l.allowOnly(["request_line", "field", "header_block", "fields", "header_timeout", "body_idle_timeout", "body_min_rate", "body_rate_grace",
                             "keepalive_timeout", "send_timeout", "max_connections", "max_connections_per_ip", "shutdown_timeout",
                             "new_connections_per_ip", "max_requests_per_connection", "rate_limit_keys", "proxy_protocol_timeout"])
            if l.dict["new_connections_per_ip"] != nil { c.newConnectionsPerIP = try loadRate(l, "new_connections_per_ip") }
            if let v = try l.int("max_requests_per_connection", min: 0, max: 65_535) { c.maxRequestsPerConnection = v }
            if let v = try l.int("rate_limit_keys", min: 1024, max: 1 << 28) { c.rateLimitKeys = v }
            if let v = try l.millis("proxy_protocol_timeout") {
                guard v >= 100 else { throw l.fail("proxy_protocol_timeout", "must be at least 100ms") }
                c.proxyProtocolTimeoutMillis = v
            }
            if let v = try l.bytes("request_line") { c.head.maxRequestLine = Int(clamping: v) }
            if let v = try l.bytes("field") { c.head.maxFieldLine = Int(clamping: v) }
            if let v = try l.bytes("header_block") { c.head.maxHeadBytes = Int(clamping: v) }
            if let v = try l.int("fields", min: 1, max: 10_000) { c.head.maxFields = v }
            if let v = try l.millis("header_timeout") { c.headerTimeoutMillis = v }
            if let v = try l.millis("body_idle_timeout") { c.bodyIdleTimeoutMillis = v }
            if let v = try l.bytes("body_min_rate") { c.bodyMinRate = v }
            if let v = try l.millis("body_rate_grace") { c.bodyRateGraceMillis = v }
            if let v = try l.millis("keepalive_timeout") { c.keepAliveTimeoutMillis = v }
            if let v = try l.millis("send_timeout") { c.sendTimeoutMillis = v }
            if let v = try l.int("max_connections", min: 1) { c.maxConnectionsPerWorker = v }
            if let v = try l.int("max_connections_per_ip", min: 0) { c.maxConnectionsPerIP = v }
            if let v = try l.millis("shutdown_timeout") { c.shutdownTimeoutMillis = v }
            if c.head.maxHeadBytes < c.head.maxRequestLine {
                throw l.fail("header_block", "must be at least request_line")
            }
        }
        return c
    }

    static func loadFleet(_ f: Node, baseDir: String) throws -> FleetConfig {
        try f.allowOnly(["name", "max_hops", "peers", "token_file", "sync_interval", "sync_timeout"])
        var c = FleetConfig()
        if let v = try f.string("name") {
            guard !v.isEmpty, v.utf8.count <= 64, v.allSatisfy(ServerConfig.isNodeNameCharacter) else {
                throw f.fail("name", "\"\(v)\" must be 1 to 64 of A-Z a-z 0-9 . - _ (the fleet's CDN-Loop token)")
            }
            c.name = v
        }
        if let v = try f.int("max_hops", min: 1, max: 64) { c.maxHops = v }
        if let v = try f.strings("peers") {
            for (i, p) in v.enumerated() {
                if p.hasPrefix("http://") {
                    guard let (hostPort, _) = originAddress(p), let colon = hostPort.lastIndex(of: ":") else {
                        throw f.fail("peers[\(i)]", "\"\(p)\" is not http://ADDR:PORT")
                    }
                    let ip = String(hostPort[..<colon]).trimmingBrackets
                    guard isAdminAddress(ip) else {
                        throw f.fail("peers[\(i)]", "\(p) is not on loopback or a private network (the admin API is plain HTTP with a bearer token)")
                    }
                } else if !p.hasPrefix("/") {
                    throw f.fail("peers[\(i)]", "\"\(p)\" is neither http://ADDR:PORT nor an absolute admin socket path")
                }
            }
            c.peers = v
        }
        if let v = try f.string("token_file") { c.peerTokenFile = Path.resolve(v, against: baseDir) }
        if c.peers.contains(where: { $0.hasPrefix("http://") }) && c.peerTokenFile == nil {
            throw f.fail("token_file", "is required when a peer is an http:// admin API")
        }
        if let v = try f.millis("sync_interval") {
            guard v >= 1000 else { throw f.fail("sync_interval", "must be at least 1s") }
            c.syncIntervalMillis = v
        }
        if let v = try f.millis("sync_timeout") {
            guard v >= 100 && v <= 60_000 else { throw f.fail("sync_timeout", "must be between 100ms and 60s") }
            c.syncTimeoutMillis = v
        }
        return c
    }

    /// Loads every `*.json` file of a directory as one tenant each, and checks
    /// them against each other (names and host names unique, one default).
    public static func loadTenants(directory: String) throws -> [TenantConfig] {
        guard let names = Files.list(directory) else {
            throw ConfigError(file: directory, field: "", message: "cannot read tenants directory")
        }
        var tenants: [TenantConfig] = []
        for n in names.sorted() where n.hasSuffix(".json") {
            tenants.append(try loadTenant(file: Path.join(directory, n)))
        }
        guard !tenants.isEmpty else { throw ConfigError(file: directory, field: "", message: "no tenant files (*.json)") }
        try checkTogether(tenants)
        return tenants
    }

    public static func checkTogether(_ tenants: [TenantConfig]) throws {
        var names: [String: String] = [:]
        var hosts: [String: String] = [:]
        var defaultTenant: String?
        for t in tenants {
            if let other = names[t.name] { throw ConfigError(file: t.file, field: "name", message: "tenant \"\(t.name)\" is also defined in \(other)") }
            names[t.name] = t.file
            for (i, h) in t.hosts.enumerated() {
                if let other = hosts[h] { throw ConfigError(file: t.file, field: "hosts[\(i)]", message: "host \"\(h)\" already belongs to \(other)") }
                hosts[h] = t.file
            }
            if t.isDefault {
                if let d = defaultTenant { throw ConfigError(file: t.file, field: "default", message: "only one tenant may be the default (also \(d))") }
                defaultTenant = t.file
            }
        }
    }

    /// Normalizes a configured host name: lowercase, no trailing dot.
    static func normalizeHost(_ h: String) -> String {
        var s = h.lowercased()
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    static func validHostPattern(_ h: String) -> Bool {
        var s = Substring(h)
        if s.hasPrefix("*.") { s = s.dropFirst(2) }
        guard !s.isEmpty, s.count <= 253 else { return false }
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        }
    }

    /// Loads a tenant file (from `contents` when given: the file's bytes, read already).
    public static func loadTenant(file: String, contents: [UInt8]? = nil) throws -> TenantConfig {
        let root = Node(dict: try readJSON(file, contents: contents), file: file, path: "")
        try root.allowOnly(["name", "hosts", "default", "origins", "routes", "limits", "tls", "https_redirect", "hsts", "purge_tag_headers", "compress", "pass_request_headers", "http2",
                            "access", "rate_limits", "rules", "signatures", "error_pages"])
        let name = try root.string("name") ?? Path.deletingExtension(Path.lastComponent(file))
        guard let rawHosts = try root.strings("hosts") else { throw root.fail("hosts", "is required (a list of host names)") }
        var hosts: [String] = []
        for (i, h) in rawHosts.enumerated() {
            let n = normalizeHost(h)
            guard validHostPattern(n) else {
                throw ConfigError(file: file, field: "hosts[\(i)]", message: "\"\(h)\" is not a host name or *.wildcard")
            }
            hosts.append(n)
        }
        let baseDir = Path.directory(of: file)

        guard let originsNode = try root.object("origins") else { throw root.fail("origins", "is required") }
        var origins: [OriginGroupConfig] = []
        for key in originsNode.dict.keys.sorted() {
            guard let g = try originsNode.object(key) else { continue }
            origins.append(try loadOrigin(name: key, g, baseDir: baseDir))
        }
        guard !origins.isEmpty else { throw root.fail("origins", "needs at least one origin group") }
        for o in origins {
            guard let fb = o.fallback else { continue }
            let at = "origins.\(o.name)"
            guard fb != o.name else { throw ConfigError(file: file, field: at + ".fallback", message: "a group cannot fall back on itself") }
            guard let target = origins.first(where: { $0.name == fb }) else {
                throw ConfigError(file: file, field: at + ".fallback", message: "unknown origin group \"\(fb)\" (defined: \(origins.map(\.name).joined(separator: ", ")))")
            }
            guard case .http = target.kind, target.fallback == nil else {
                throw ConfigError(file: file, field: at + ".fallback", message: "\"\(fb)\" must be a group of servers without a fallback of its own")
            }
        }

        let tenantCompress = try loadCompress(root, base: CompressConfig()) ?? CompressConfig()
        guard let routeNodes = try root.objects("routes") else { throw root.fail("routes", "is required") }
        var routes: [RouteConfig] = []
        for r in routeNodes {
            try r.allowOnly(["prefix", "origin", "strip_prefix", "host", "request_headers", "response_headers", "cache", "compress", "websocket", "signatures",
                             "respond", "redirect", "rewrite", "split", "mirror"])
            let prefix = try r.requiredString("prefix")
            guard prefix.hasPrefix("/") else { throw r.fail("prefix", "must start with \"/\"") }
            let action = try loadRouteAction(r)
            // A route edged answers itself needs no origin (it is given the first group, never used).
            let origin = action != nil && r.dict["origin"] == nil ? origins[0].name : try r.requiredString("origin")
            guard origins.contains(where: { $0.name == origin }) else {
                throw r.fail("origin", "unknown origin group \"\(origin)\" (defined: \(origins.map(\.name).joined(separator: ", ")))")
            }
            var rc = RouteConfig(prefix: prefix, origin: origin)
            rc.action = action
            rc.hasOrigin = r.dict["origin"] != nil
            if let sp = try r.object("split") {
                guard action == nil else { throw r.fail("split", "a route that responds or redirects has no origin to split") }
                try sp.allowOnly(["sides", "sticky", "force_header", "cache", "set_cookie"])
                guard let sides = try sp.objects("sides"), sides.count >= 2, sides.count <= 16 else { throw sp.fail("sides", "expected 2 to 16 sides") }
                var split = RouteSplit(sides: [])
                for n in sides {
                    try n.allowOnly(["origin", "weight"])
                    let o = try n.requiredString("origin")
                    guard let g = origins.first(where: { $0.name == o }) else { throw n.fail("origin", "unknown origin group \"\(o)\"") }
                    guard case .http = g.kind else { throw n.fail("origin", "a split side is a group of servers") }
                    guard !split.sides.contains(where: { $0.origin == o }) else { throw n.fail("origin", "\"\(o)\" is already a side") }
                    split.sides.append(.init(origin: o, weight: try n.int("weight", min: 0, max: 10_000) ?? 1))
                }
                guard split.sides.contains(where: { $0.weight > 0 }) else { throw sp.fail("sides", "at least one side needs a weight above 0") }
                guard split.sides[0].origin == origin else { throw sp.fail("sides", "the first side is the route's origin (\"\(origin)\")") }
                if let st = try sp.string("sticky") {
                    guard st == "client" || (st.hasPrefix("cookie:") && st.count > 7) else { throw sp.fail("sticky", "expected \"client\" or \"cookie:NAME\"") }
                    split.sticky = st
                }
                if let h = try sp.string("force_header") {
                    guard !h.isEmpty, h.utf8.allSatisfy(isTokenChar) else { throw sp.fail("force_header", "expected a field name") }
                    split.forceHeader = h
                }
                if try sp.bool("set_cookie") == true {
                    guard split.sticky?.hasPrefix("cookie:") == true else { throw sp.fail("set_cookie", "goes with \"sticky\": \"cookie:NAME\"") }
                    guard split.sticky!.dropFirst(7).utf8.allSatisfy(isTokenChar) else { throw sp.fail("sticky", "a cookie name edged sets is a token") }
                    split.setCookie = true
                }
                switch try sp.string("cache") {
                case nil, "first": break
                case "keyed": split.keyed = true
                default: throw sp.fail("cache", "expected \"first\" (only the first side is cached) or \"keyed\" (each side cached apart)")
                }
                rc.split = split
            }
            if let m = try r.object("mirror") {
                guard action == nil else { throw r.fail("mirror", "a route that responds or redirects sends nothing to copy") }
                try m.allowOnly(["origin", "percent", "max_body"])
                let o = try m.requiredString("origin")
                guard let g = origins.first(where: { $0.name == o }) else {
                    throw m.fail("origin", "unknown origin group \"\(o)\" (defined: \(origins.map(\.name).joined(separator: ", ")))")
                }
                guard case .http = g.kind, g.tls == nil else { throw m.fail("origin", "a shadow group is a group of plain http:// servers") }
                guard o != origin else { throw m.fail("origin", "the shadow group is the route's own origin") }
                var mirror = RouteMirror(origin: o)
                if let v = m.dict["percent"] {
                    guard let n = v.number, n > 0, n <= 100 else {
                        throw m.fail("percent", "expected a number above 0 and at most 100")
                    }
                    mirror.percent = n
                }
                if let b = try m.bytes("max_body") {
                    guard b <= 1 << 20 else { throw m.fail("max_body", "at most 1MiB") }
                    mirror.maxBody = b
                }
                rc.mirror = mirror
            }
            if let w = try r.object("rewrite") {
                try w.allowOnly(["pattern", "replacement"])
                let pattern = try w.requiredString("pattern")
                guard let replacement = try w.string("replacement") else { throw w.fail("replacement", "is required") }
                var why = ""
                guard PathRewrite(pattern: pattern, replacement: replacement, error: &why) != nil else {
                    throw w.fail(why.hasPrefix("$") ? "replacement" : "pattern", why)
                }
                rc.rewrite = (pattern, replacement)
            }
            rc.stripPrefix = try r.bool("strip_prefix") ?? false
            // "websocket": true | false | {"idle_timeout": "1h"}
            if let b = r.dict["websocket"]?.bool {
                rc.websocket = b
            } else if let w = try r.object("websocket") {
                try w.allowOnly(["idle_timeout"])
                if let v = try w.millis("idle_timeout") {
                    guard v > 0 else { throw w.fail("idle_timeout", "must be more than 0") }
                    rc.websocketIdleTimeoutMillis = v
                }
            }
            if let h = try r.string("host") {
                guard validHostPattern(h.split(separator: ":").first.map(String.init) ?? ""), !h.hasPrefix("*") else { throw r.fail("host", "\"\(h)\" is not a host name") }
                rc.hostRewrite = h
            }
            if let e = try r.object("request_headers") { rc.requestHeaders = try loadEdits(e) }
            if let e = try r.object("response_headers") { rc.responseHeaders = try loadEdits(e) }
            if let b = r.dict["cache"]?.bool {
                rc.cache.enabled = b
            } else if let cn = try r.object("cache") {
                try cn.allowOnly(["enabled", "ignore_client_no_cache", "store_set_cookie", "sort_query", "ignore_query", "grace", "deception_armor", "debug",
                                  "methods", "body_key_limit", "ttl_override", "negative_ttl", "default_ttl", "ttl_min", "ttl_max", "key_headers",
                                  "key_cookies", "keep_query", "bypass", "languages", "stale_if_disconnected", "slice"])
                try loadCacheControls(cn, into: &rc.cache)
                if let ms = try cn.strings("methods") {
                    for (i, m) in ms.enumerated() where m != "POST" {
                        throw cn.fail("methods[\(i)]", "\"\(m)\" cannot be cached (GET and HEAD always are; only POST may be added)")
                    }
                    rc.cache.methods = ms
                }
                if let v = try cn.bytes("body_key_limit") {
                    guard v >= 1, v <= 64 * 1024 else { throw cn.fail("body_key_limit", "must be between 1 byte and 64KiB") }
                    rc.cache.bodyKeyLimit = v
                }
                rc.cache.deceptionArmor = try cn.bool("deception_armor") ?? false
                rc.cache.debug = try cn.bool("debug") ?? false
                rc.cache.enabled = try cn.bool("enabled") ?? true
                rc.cache.ignoreClientNoCache = try cn.bool("ignore_client_no_cache") ?? false
                rc.cache.storeSetCookie = try cn.bool("store_set_cookie") ?? false
                rc.cache.sortQuery = try cn.bool("sort_query") ?? false
                rc.cache.ignoreQuery = try cn.strings("ignore_query") ?? []
                rc.cache.graceSeconds = (try cn.millis("grace") ?? 0) / 1000
            }
            rc.compress = try loadCompress(r, base: tenantCompress)
            rc.signatures = try loadSignatures(r)
            if routes.contains(where: { $0.prefix == prefix }) { throw r.fail("prefix", "\"\(prefix)\" is routed twice") }
            routes.append(rc)
        }
        guard !routes.isEmpty else { throw root.fail("routes", "needs at least one route") }

        var t = TenantConfig(name: name, file: file, hosts: hosts, origins: origins, routes: routes)
        t.compress = tenantCompress
        t.isDefault = try root.bool("default") ?? false
        t.tls = try loadTLS(root, baseDir: baseDir)
        if case .acme = t.tls {
            guard !hosts.isEmpty else { throw root.fail("tls", "\"acme\" needs the tenant's host names in \"hosts\"") }
            if let w = hosts.first(where: { $0.hasPrefix("*.") }) {
                throw root.fail("tls", "\"acme\" answers http-01 and tls-alpn-01, which cannot validate the wildcard \(w) (that needs dns-01): list the names, or use certificate files")
            }
        }
        t.httpsRedirect = try root.bool("https_redirect") ?? false
        t.http2 = try root.bool("http2") ?? true
        // "error_pages": {"404": "errors/404.html", "502": ...}: statuses edged answers itself.
        if let pages = try root.object("error_pages") {
            for key in pages.dict.keys.sorted() {
                guard let status = Int(key), (400...599).contains(status) else { throw pages.fail(key, "expected a status from 400 to 599") }
                guard let f = try pages.string(key), !f.isEmpty else { throw pages.fail(key, "expected a file name") }
                let full = Path.resolve(f, against: baseDir)
                guard let data = Files.read(full) else { throw pages.fail(key, "cannot read \"\(full)\"") }
                guard data.count <= 64 << 10 else { throw pages.fail(key, "\"\(full)\" is larger than 64 KiB") }
                t.errorPages[status] = String(decoding: data, as: UTF8.self)
            }
        }
        if let h = try root.string("hsts") {
            guard h.lowercased().hasPrefix("max-age="), h.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
                throw root.fail("hsts", "expected a Strict-Transport-Security value like \"max-age=31536000; includeSubDomains\"")
            }
            t.hsts = h
        }
        if let tags = try root.strings("purge_tag_headers") {
            for (i, f) in tags.enumerated() where f.isEmpty || !f.utf8.allSatisfy({ isTokenChar($0) }) {
                throw root.fail("purge_tag_headers[\(i)]", "\"\(f)\" is not a header field name")
            }
            t.purgeTagFields = tags
        }
        if let names = try root.strings("pass_request_headers") {
            for (i, f) in names.enumerated() {
                let lower = f.lowercased()
                guard OverrideFields.names.contains(lower), lower != "x-real-ip" else {
                    throw root.fail("pass_request_headers[\(i)]", "\"\(f)\" is not an override field edge removes (one of \(OverrideFields.names.filter { $0 != "x-real-ip" }.joined(separator: ", ")))")
                }
            }
            t.passRequestHeaders = names
        }
        if let a = try root.object("access") { t.access = try loadAccess(a, baseDir: baseDir) }
        if let rl = try root.object("rate_limits") { t.rateLimits = try loadRateLimits(rl, routes: routes) }
        t.rules = try loadRules(root, limits: t.rateLimits)
        if let s = try loadSignatures(root) { t.signatures = s }
        if t.tls == .none && (t.httpsRedirect || t.hsts != nil) {
            throw root.fail(t.httpsRedirect ? "https_redirect" : "hsts", "needs \"tls\" on this tenant")
        }
        if let l = try root.object("limits") {
            try l.allowOnly(["max_body", "origin_connect_timeout", "origin_read_timeout", "origin_idle_timeout", "cache_bytes", "disk_cache_bytes"])
            if let v = try l.bytes("cache_bytes") { t.limits.cacheBytes = v }
            if let v = try l.bytes("disk_cache_bytes") { t.limits.diskCacheBytes = v }
            if let v = try l.bytes("max_body") { t.limits.maxBodyBytes = v }
            if let v = try l.millis("origin_connect_timeout") { t.limits.originConnectTimeoutMillis = v }
            if let v = try l.millis("origin_read_timeout") { t.limits.originReadTimeoutMillis = v }
            if let v = try l.millis("origin_idle_timeout") { t.limits.originIdleTimeoutMillis = v }
        }
        return t
    }

    /// A route's `respond` or `redirect` (at most one).
    static func loadRouteAction(_ r: Node) throws -> RouteAction? {
        if r.dict["respond"] != nil && r.dict["redirect"] != nil { throw r.fail("redirect", "a route either responds or redirects") }
        if let n = try r.object("respond") {
            try n.allowOnly(["status", "body", "content_type"])
            let status = try n.int("status", min: 200, max: 599) ?? 200
            let body = try n.string("body") ?? ""
            guard body.utf8.count <= 64 << 10 else { throw n.fail("body", "at most 64 KiB") }
            let type = try n.string("content_type") ?? "text/plain; charset=utf-8"
            guard !type.isEmpty, type.utf8.allSatisfy({ $0 >= 32 && $0 < 127 }) else { throw n.fail("content_type", "expected a media type") }
            return .respond(status: status, body: body, contentType: type)
        }
        if let n = try r.object("redirect") {
            try n.allowOnly(["status", "location", "pattern"])
            let status = try n.int("status") ?? 302
            guard [301, 302, 303, 307, 308].contains(status) else { throw n.fail("status", "a redirect is 301, 302, 303, 307 or 308") }
            let loc = try n.requiredString("location")
            var groups: Int?
            let pattern = try n.string("pattern")
            if let pattern {
                var why = ""
                guard let re = Regex(pattern, captures: true, error: &why) else { throw n.fail("pattern", why) }
                groups = re.groups
            }
            if let bad = LocationTemplate.unknownVariable(loc, groups: groups) {
                throw n.fail("location", "unknown variable \(bad) (expected $scheme, $host, $path, $query\(groups.map { ", $$ or $0-$\($0)" } ?? ""))")
            }
            guard loc.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else { throw n.fail("location", "no spaces or control characters") }
            return .redirect(status: status, location: loc, pattern: pattern)
        }
        return nil
    }

    static func loadEdits(_ e: Node) throws -> HeaderEdits {
        try e.allowOnly(["add", "remove"])
        var h = HeaderEdits()
        if let add = try e.object("add") {
            for k in add.dict.keys.sorted() {
                guard let v = add.dict[k]?.string else { throw add.fail(k, "expected a string value") }
                guard isToken(k) else { throw add.fail(k, "not a valid field name") }
                guard v.utf8.allSatisfy({ $0 == 9 || ($0 >= 0x20 && $0 != 0x7F) }) else { throw add.fail(k, "value has control characters") }
                h.add.append((k, v))
            }
        }
        if let rm = try e.strings("remove") {
            for (i, k) in rm.enumerated() where !isToken(k) {
                throw ConfigError(file: e.file, field: "\(e.field("remove"))[\(i)]", message: "not a valid field name")
            }
            h.remove = rm.map { $0.lowercased() }
        }
        return h
    }

    static func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }
}

extension ConfigLoader {
    /// The no-file mode (`edged --origin URL [--host NAME…]`): one tenant that
    /// sends everything to one origin, for the given hosts or, with none, for
    /// every host (it is then the default tenant).
    /// With `https`, the tenant gets certificates from the internal CA for its host names.
    public static func singleOriginTenant(origin: String, hosts: [String], https: Bool = false) throws -> TenantConfig {
        let file = "--origin"
        guard let (a, secure) = originAddress(origin), !secure else {
            if origin.hasPrefix("https://") { throw ConfigError(file: file, field: "", message: "https origins are not supported yet") }
            throw ConfigError(file: file, field: "", message: "\"\(origin)\" is not http://host:port")
        }
        var names: [String] = []
        for h in hosts {
            let n = normalizeHost(h)
            guard validHostPattern(n) else { throw ConfigError(file: "--host", field: "", message: "\"\(h)\" is not a host name") }
            names.append(n)
        }
        var t = TenantConfig(name: "origin", file: file, hosts: names,
                             origins: [OriginGroupConfig(name: "origin", kind: .http(servers: [a]))],
                             routes: [RouteConfig(prefix: "/", origin: "origin")])
        t.isDefault = names.isEmpty
        if https {
            guard !names.isEmpty else { throw ConfigError(file: "--https", field: "", message: "the internal CA needs host names: add --host NAME") }
            t.tls = .internalCA
        }
        return t
    }
}
