// Origin groups in a tenant file: their servers (with weights), balancing,
// passive and active health, retries, keep-alive and TLS towards them, or a
// local directory; and the one parser of origin addresses. Part of
// ConfigLoader (Loader.swift reads the files and the rest of a tenant).
#if canImport(EdgeJSON)   // (the config and admin fuzzers compile these sources as one module: tools/fuzz/run.sh)
import EdgeJSON
import EdgeIO
#endif
#if canImport(EdgeUpstream)   // (the config fuzzer compiles these modules as one: tools/fuzz/run.sh)
import EdgeUpstream
#endif

extension ConfigLoader {
    /// One entry of a tenant's `origins`: servers or a directory, and how they are used.
    static func loadOrigin(name: String, _ g: Node, baseDir: String) throws -> OriginGroupConfig {
        try g.allowOnly(["servers", "directory", "index", "symlinks", "balance", "hash_key", "hash_balance_factor", "max_fails", "fail_backoff",
                         "keepalive", "tls", "health_check", "slow_start", "retry_budget", "retry_on", "shield", "fallback"])
        // Each server: "host:port" (or a URL), or {"url": ..., "weight": N}.
        var weights: [Int] = []
        var servers: [String]?
        if let v = g.dict["servers"] {
            guard let a = v.array else { throw g.fail("servers", "expected a list of servers") }
            servers = try a.enumerated().map { i, e in
                let at = "\(g.field("servers"))[\(i)]"
                if let s = e.string { weights.append(1); return s }
                guard let d = e.object else {
                    throw ConfigError(file: g.file, field: at, message: "expected \"host:port\" or {\"url\": ..., \"weight\": N}")
                }
                let n = Node(dict: d, file: g.file, path: at)
                try n.allowOnly(["url", "weight"])
                let url = try n.requiredString("url")
                weights.append(try n.int("weight", min: 1, max: 1000) ?? 1)
                return url
            }
        }
        let dir = try g.string("directory")
        var o: OriginGroupConfig
        switch (servers, dir) {
        case (let s?, nil):
            guard !s.isEmpty else { throw g.fail("servers", "needs at least one server") }
            guard s.count <= 64 else { throw g.fail("servers", "at most 64 servers per group") }
            var list: [String] = []
            let https = s[0].hasPrefix("https://")
            for (i, raw) in s.enumerated() {
                if raw.hasPrefix("https://") != https {
                    throw ConfigError(file: g.file, field: "\(g.field("servers"))[\(i)]", message: "a group's servers are all https:// or all http://")
                }
                guard let (a, _) = originAddress(raw) else {
                    throw ConfigError(file: g.file, field: "\(g.field("servers"))[\(i)]", message: "\"\(raw)\" is not host:port or http://host:port")
                }
                list.append(a)
            }
            o = OriginGroupConfig(name: name, kind: .http(servers: list))
            if g.dict["symlinks"] != nil { throw g.fail("symlinks", "only for directory origins") }
            if https {
                var t = OriginTLSConfig()
                if let n = try g.object("tls") {
                    try n.allowOnly(["ca", "server_name", "client_cert", "client_key"])
                    func file(_ k: String) throws -> String? {
                        guard let p = try n.string(k) else { return nil }
                        let full = Path.resolve(p, against: baseDir)
                        guard Files.isReadable(full) else { throw n.fail(k, "cannot read \"\(full)\"") }
                        return full
                    }
                    t.caFile = try file("ca")
                    t.serverName = try n.string("server_name")
                    t.clientCert = try file("client_cert")
                    t.clientKey = try file("client_key")
                    if (t.clientCert == nil) != (t.clientKey == nil) { throw n.fail("client_cert", "client_cert and client_key go together") }
                }
                o.tls = t
            } else if g.dict["tls"] != nil {
                throw g.fail("tls", "only for https:// servers")
            }
        case (nil, let d?):
            let root = Path.resolve(d, against: baseDir)
            guard Files.isDirectory(root) else {
                throw g.fail("directory", "\"\(root)\" is not a readable directory")
            }
            let index = try g.string("index") ?? "index.html"
            guard !index.contains("/") else { throw g.fail("index", "must be a file name") }
            o = OriginGroupConfig(name: name, kind: .directory(root: Path.standardize(root), index: index))
            if let s = try g.string("symlinks") {
                guard s == "refuse" || s == "inside" else { throw g.fail("symlinks", "expected \"refuse\" (the default) or \"inside\"") }
                o.symlinksInside = s == "inside"
            }
        case (.some, .some):
            throw g.fail("servers", "an origin group has either servers or a directory, not both")
        case (nil, nil):
            throw g.fail("servers", "is required (or \"directory\" for a local directory)")
        }
        o.weights = weights
        if let v = try g.bool("shield"), v {
            guard case .http = o.kind else { throw g.fail("shield", "only for groups of servers (the shields' addresses)") }
            o.shield = true
            o.balance = "hash"
            o.hashKey = "key"
            o.hashBalanceFactor = 0
        }
        if let v = try g.string("fallback") {
            guard case .http = o.kind else { throw g.fail("fallback", "only for groups of servers") }
            o.fallback = v
        }
        if let b = try g.string("balance") {
            guard !o.shield || b == "hash" else { throw g.fail("balance", "a shield group balances by \"hash\" (each object has one home shield)") }
            let known = ["round-robin", "least-connections", "random-two", "hash"]
            guard known.contains(b) else { throw g.fail("balance", "expected one of: \(known.map { "\"\($0)\"" }.joined(separator: ", "))") }
            o.balance = b
        }
        if let k = try g.string("hash_key") {
            guard o.balance == "hash" else { throw g.fail("hash_key", "only with \"balance\": \"hash\"") }
            let ok = k == "uri" || k == "key" || k == "client" || (k.hasPrefix("header:") && k.count > 7) || (k.hasPrefix("cookie:") && k.count > 7)
            guard ok else { throw g.fail("hash_key", "expected \"uri\", \"key\", \"client\", \"header:NAME\" or \"cookie:NAME\"") }
            o.hashKey = k
        }
        if let v = g.dict["hash_balance_factor"] {
            guard o.balance == "hash" else { throw g.fail("hash_balance_factor", "only with \"balance\": \"hash\"") }
            guard let n = v.number, n == 0 || (n >= 1 && n <= 100) else {
                throw g.fail("hash_balance_factor", "expected 0 (off) or a number from 1 to 100 (1.25: no server above 125% of its share)")
            }
            o.hashBalanceFactor = n
        }
        if let v = try g.int("max_fails", min: 1, max: 1000) { o.maxFails = v }
        if let v = try g.millis("fail_backoff") { o.failBackoffMillis = v }
        if let v = try g.int("keepalive", min: 0, max: 10_000) { o.keepAlive = v }
        if let v = g.dict["retry_budget"] {
            guard let n = v.number, n >= 0, n <= 1 else {
                throw g.fail("retry_budget", "expected a fraction from 0 to 1 (0.2: retries add at most 20% to the requests)")
            }
            o.retryBudget = n
        }
        if let v = g.dict["retry_on"] {
            guard let a = v.array, !a.isEmpty else { throw g.fail("retry_on", "expected a list of statuses, e.g. [502, 503, 504, \"timeout\"]") }
            for (i, e) in a.enumerated() {
                if e.string == "timeout" { o.retryOnTimeout = true; continue }
                guard let n = e.number, let st = Int(exactly: n), (500...599).contains(st) || st == 429 else {
                    throw ConfigError(file: g.file, field: "\(g.field("retry_on"))[\(i)]", message: "expected a 5xx status (or 429), or \"timeout\"")
                }
                o.retryOn.append(st)
            }
        }
        if let v = try g.millis("slow_start") {
            guard o.balance != "hash" else { throw g.fail("slow_start", "not with \"balance\": \"hash\" (its keys stay on their servers)") }
            o.slowStartMillis = v
        }
        if let h = try g.object("health_check") {
            guard case .http = o.kind else { throw g.fail("health_check", "only for groups of servers") }
            o.healthCheck = try loadHealthCheck(h)
        }
        return o
    }

    /// `"health_check": {"method", "path", "host", "interval", "timeout", "expect", "body", "rise", "fall"}`.
    static func loadHealthCheck(_ h: Node) throws -> HealthCheckConfig {
        try h.allowOnly(["method", "path", "host", "interval", "timeout", "expect", "body", "rise", "fall"])
        var c = HealthCheckConfig()
        if let m = try h.string("method") {
            guard ["GET", "HEAD", "OPTIONS"].contains(m) else { throw h.fail("method", "expected \"GET\", \"HEAD\" or \"OPTIONS\"") }
            c.method = m
        }
        if let p = try h.string("path") {
            guard p.hasPrefix("/"), p.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else { throw h.fail("path", "expected a path starting with / (no spaces)") }
            c.path = p
        }
        if let v = try h.string("host") {
            guard !v.isEmpty, v.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else { throw h.fail("host", "expected a host name") }
            c.host = v
        }
        if let v = try h.millis("interval") {
            guard v >= 100 else { throw h.fail("interval", "at least 100ms") }
            c.intervalMillis = v
        }
        if let v = try h.millis("timeout") {
            guard v >= 10 else { throw h.fail("timeout", "at least 10ms") }
            c.timeoutMillis = v
        }
        if let e = try h.strings("expect") {
            guard StatusSet(e) != nil else { throw h.fail("expect", "expected statuses like \"200\", \"2xx\" or \"200-399\"") }
            c.expect = e
        }
        if let b = try h.string("body") {
            guard !b.isEmpty else { throw h.fail("body", "must not be empty") }
            if c.method == "HEAD" { throw h.fail("body", "a HEAD probe has no body to check") }
            c.bodyContains = b
        }
        if let v = try h.int("rise", min: 1, max: 100) { c.rise = v }
        if let v = try h.int("fall", min: 1, max: 100) { c.fall = v }
        return c
    }

    /// An origin server as written in a config: `host:port`, `http://host:port` or
    /// `https://host:port`, an optional trailing `/`, no path; a port of 1–65535 and a
    /// non-empty host. Returns "host:port" and whether it said https; nil otherwise.
    /// The one parser for origin addresses (tenant files and `--origin`).
    static func originAddress(_ raw: String) -> (String, https: Bool)? {
        var a = Substring(raw)
        var https = false
        if a.hasPrefix("https://") { a = a.dropFirst(8); https = true } else if a.hasPrefix("http://") { a = a.dropFirst(7) }
        if a.hasSuffix("/") { a = a.dropLast() }
        guard !a.contains("/"), let colon = a.lastIndex(of: ":"), colon > a.startIndex,
              let port = UInt16(a[a.index(after: colon)...]), port > 0 else { return nil }
        return (String(a), https)
    }
}
