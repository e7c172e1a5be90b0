import Foundation
import Testing
import Synchronization
import EdgeIO
@testable import EdgeProxy

/// Traffic steering with real origin processes: weights, consistent hashing
/// by URL, header and cookie, and what happens when a server goes away.
@Suite(.serialized, .timeLimit(.minutes(3))) struct SteeringTests {
    func edge(_ origins: [Origin], _ group: String) throws -> Edge {
        try Edge(tenants: [
            tenantJSON(name: "s", hosts: ["s.test"], origins: #"{"o": \#(group)}"#,
                       routes: #"[{"prefix": "/", "origin": "o", "cache": {"enabled": false}}]"#),
        ])
    }

    func origin(_ port: Int, _ path: String, _ headers: [String] = []) throws -> String {
        let r = try request(port, path, host: "s.test", headers: headers)
        #expect(r.status == 200, "\(path): \(r.status)")
        return r.json["origin"] as? String ?? "?"
    }

    @Test func weightsSplitTrafficByWeight() throws {
        let os = try ["a", "b", "c"].map { try Origin(name: $0) }
        defer { for o in os { o.stop() } }
        let e = try edge(os, #"{"servers": [{"url": "\#(os[0].address)", "weight": 3}, "\#(os[1].address)", {"url": "\#(os[2].address)", "weight": 1}]}"#)
        defer { e.stop() }
        var n: [String: Int] = [:]
        for i in 0..<100 { n[try origin(e.port, "/w/\(i)"), default: 0] += 1 }
        #expect(n == ["a": 60, "b": 20, "c": 20], "smooth weighted round-robin on one worker is exact: \(n)")
    }

    @Test func hashByURLKeepsEachPathOnOneServerAndAStoppedServerMovesOnlyItsOwn() throws {
        let os = try ["a", "b", "c", "d"].map { try Origin(name: $0) }
        defer { for o in os { o.stop() } }
        let servers = os.map { "\"\($0.address)\"" }.joined(separator: ", ")
        let e = try edge(os, #"{"servers": [\#(servers)], "balance": "hash", "max_fails": 1, "fail_backoff": "60s"}"#)
        defer { e.stop() }
        let paths = (0..<81).map { "/item/\($0)" }   // not a multiple of 4: round-robin cannot pass
        var home: [String: String] = [:]
        for p in paths { home[p] = try origin(e.port, p) }
        for p in paths { #expect(try origin(e.port, p) == home[p], "\(p) stays on its server") }
        #expect(Set(home.values).count == 4, "every server has keys: \(home.values)")
        // One server stops: its paths still answer 200 (retried elsewhere),
        // and no other path moves.
        os[1].stop()
        var moved = 0
        for p in paths {
            let now = try origin(e.port, p)
            if home[p] == "b" { #expect(now != "b"); moved += 1 } else { #expect(now == home[p], "\(p) moved from \(home[p]!) to \(now)") }
        }
        #expect(moved > 0)
    }

    @Test func hashByHeaderAndCookieFollowsTheValueNotThePath() throws {
        let os = try ["a", "b", "c"].map { try Origin(name: $0) }
        defer { for o in os { o.stop() } }
        let servers = os.map { "\"\($0.address)\"" }.joined(separator: ", ")
        let byHeader = try edge(os, #"{"servers": [\#(servers)], "balance": "hash", "hash_key": "header:X-User"}"#)
        var seen: [String: Set<String>] = [:]
        for u in 0..<12 {
            for i in 0..<5 { seen["u\(u)", default: []].insert(try origin(byHeader.port, "/p/\(u)/\(i)", ["X-User: u\(u)"])) }
        }
        byHeader.stop()
        #expect(seen.values.allSatisfy { $0.count == 1 }, "each user on one server: \(seen)")
        #expect(Set(seen.values.map { $0.first! }).count > 1, "users spread over servers: \(seen)")

        let byCookie = try edge(os, #"{"servers": [\#(servers)], "balance": "hash", "hash_key": "cookie:sid"}"#)
        defer { byCookie.stop() }
        var bySid: [String: Set<String>] = [:]
        for u in 0..<12 {
            for i in 0..<5 { bySid["s\(u)", default: []].insert(try origin(byCookie.port, "/c/\(i)", ["Cookie: theme=dark; sid=s\(u)"])) }
        }
        #expect(bySid.values.allSatisfy { $0.count == 1 }, "each session on one server: \(bySid)")
        // Without the cookie: round-robin, so all three servers answer.
        var none: Set<String> = []
        for i in 0..<6 { none.insert(try origin(byCookie.port, "/c/\(i)")) }
        #expect(none.count == 3, "\(none)")
    }

    @Test func randomTwoUsesEveryServer() throws {
        let os = try ["a", "b"].map { try Origin(name: $0) }
        defer { for o in os { o.stop() } }
        let e = try edge(os, #"{"servers": ["\#(os[0].address)", "\#(os[1].address)"], "balance": "random-two"}"#)
        defer { e.stop() }
        var n: Set<String> = []
        for i in 0..<40 { n.insert(try origin(e.port, "/r/\(i)")) }
        #expect(n == ["a", "b"])
    }
}

/// Active health checks against real origin processes.
@Suite(.serialized, .timeLimit(.minutes(3))) struct HealthCheckTests {
    func state(_ e: Edge, _ server: String) -> TenantInfo.Origin? {
        e.server.tenants().flatMap(\.origins).first { $0.server == server }
    }

    /// Waits (up to 10 s) until `server` is up or down as asked.
    func waitFor(_ e: Edge, _ server: String, healthy: Bool) -> Bool {
        for _ in 0..<200 {
            if state(e, server)?.healthy == healthy { return true }
            usleep(50_000)
        }
        return false
    }

    @Test func aProbeTakesAStoppedOriginOutBeforeAnyRequestFailsAndRiseBringsItBack() throws {
        let a = try Origin(name: "a")
        var b = try Origin(name: "b")
        defer { a.stop(); b.stop() }
        let bAddress = b.address, bPort = b.port
        // Passive health would need 1000 failures: only the probe can take b out.
        let e = try Edge(tenants: [
            tenantJSON(name: "h", hosts: ["h.test"],
                       origins: #"{"o": {"servers": ["\#(a.address)", "\#(bAddress)"], "max_fails": 1000, "health_check": {"path": "/health", "interval": "100ms", "timeout": "500ms", "rise": 2, "fall": 2}}}"#,
                       routes: #"[{"prefix": "/", "origin": "o", "cache": {"enabled": false}}]"#),
        ])
        defer { e.stop() }
        var seen: Set<String> = []
        for i in 0..<4 { seen.insert(try request(e.port, "/x/\(i)", host: "h.test").json["origin"] as? String ?? "?") }
        #expect(seen == ["a", "b"])
        #expect(state(e, bAddress)?.checked == true)

        b.stop()
        #expect(waitFor(e, bAddress, healthy: false), "the probe takes b out")
        let down = state(e, bAddress)
        #expect(down?.down == "probe")
        #expect(down?.why?.contains("connect") == true, "\(String(describing: down?.why))")
        #expect(down?.changed != nil)
        for i in 0..<20 {
            let r = try request(e.port, "/y/\(i)", host: "h.test")
            #expect(r.status == 200 && r.json["origin"] as? String == "a")
        }

        b = try Origin(name: "b", port: bPort)
        #expect(waitFor(e, bAddress, healthy: true), "two passing probes bring b back")
        #expect(state(e, bAddress)?.why?.contains("passed") == true)
        seen = []
        for i in 0..<4 { seen.insert(try request(e.port, "/z/\(i)", host: "h.test").json["origin"] as? String ?? "?") }
        #expect(seen == ["a", "b"])
        e.stop()
        // No client request ever went to b while it was stopped.
        let failed = e.accessLog().filter { $0["error"] != nil }
        #expect(failed.isEmpty, "\(failed)")
    }

    @Test func aServerBackFromAFailedProbeRampsUpUnderSlowStart() throws {
        let a = try Origin(name: "a")
        var b = try Origin(name: "b")
        defer { a.stop(); b.stop() }
        let bAddress = b.address, bPort = b.port
        let e = try Edge(tenants: [
            tenantJSON(name: "h", hosts: ["h.test"],
                       origins: #"{"o": {"servers": ["\#(a.address)", "\#(bAddress)"], "max_fails": 1000, "slow_start": "60s", "health_check": {"path": "/health", "interval": "100ms", "timeout": "500ms", "rise": 2, "fall": 2}}}"#,
                       routes: #"[{"prefix": "/", "origin": "o", "cache": {"enabled": false}}]"#),
        ])
        defer { e.stop() }
        func shares(_ n: Int, _ tag: String) throws -> [String: Int] {
            var got: [String: Int] = [:]
            let c = try Client(port: e.port)
            for i in 0..<n {
                c.send("GET /\(tag)/\(i) HTTP/1.1\r\nHost: h.test\r\n\r\n")
                got[try c.readResponse().json["origin"] as? String ?? "?", default: 0] += 1
            }
            return got
        }
        // Equal weights at the start (not ramping: never out of rotation).
        let before = try shares(100, "a")
        #expect((35...65).contains(before["b"] ?? 0), "\(before)")
        b.stop()
        #expect(waitFor(e, bAddress, healthy: false))
        b = try Origin(name: "b", port: bPort)
        #expect(waitFor(e, bAddress, healthy: true))
        // Back in rotation, b starts at 1/64 of its weight and ramps up over
        // the minute: within the first seconds it gets a small share, not half.
        let after = try shares(100, "b")
        #expect((1...20).contains(after["b"] ?? 0), "b ramps up from a small share: \(after)")
    }

    @Test func statusAndBodyDecideAProbe() throws {
        let os = try ["o", "p", "q"].map { try Origin(name: $0) }
        defer { for o in os { o.stop() } }
        let (bad, body, good) = (os[0].address, os[1].address, os[2].address)
        let e = try Edge(tenants: [
            tenantJSON(name: "h", hosts: ["h.test"],
                       origins: #"""
                       {"bad": {"servers": ["\#(bad)"], "health_check": {"path": "/status/503", "interval": "100ms", "fall": 1}},
                        "body": {"servers": ["\#(body)"], "health_check": {"path": "/health", "body": "\"origin\": \"nope\"", "interval": "100ms", "fall": 1}},
                        "good": {"servers": ["\#(good)"], "health_check": {"path": "/health", "body": "\"origin\": \"q\"", "interval": "100ms", "fall": 1}}}
                       """#,
                       routes: #"[{"prefix": "/bad/", "origin": "bad"}, {"prefix": "/body/", "origin": "body"}, {"prefix": "/", "origin": "good"}]"#),
        ])
        defer { e.stop() }
        #expect(waitFor(e, bad, healthy: false))
        #expect(state(e, bad)?.why?.contains("status 503") == true, "\(String(describing: state(e, bad)))")
        #expect(waitFor(e, body, healthy: false))
        #expect(state(e, body)?.why?.contains("body lacks") == true, "\(String(describing: state(e, body)))")
        usleep(500_000)
        #expect(state(e, good)?.healthy == true)
        #expect(state(e, good)?.changed == nil, "never changed: up from the start")
        // A group whose only server is out still tries it (a last resort), so the client gets the origin's answer.
        #expect(try request(e.port, "/bad/x", host: "h.test").status == 200)
    }
}

/// Routes edged answers itself, and path rewrites, table-tested against a real origin.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RouteActionTests {
    @Test func respondRedirectAndRewrite() throws {
        let o = try Origin(name: "o")
        defer { o.stop() }
        let e = try Edge(tenants: [
            tenantJSON(name: "r", hosts: ["r.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                       routes: #"""
                       [{"prefix": "/", "origin": "o", "cache": {"enabled": false}},
                        {"prefix": "/healthz", "respond": {"status": 200, "body": "ok\n"}},
                        {"prefix": "/teapot", "respond": {"status": 418, "body": "{\"short\": true}", "content_type": "application/json"}},
                        {"prefix": "/old/", "redirect": {"status": 301, "location": "https://$host/new$path$query"}},
                        {"prefix": "/moved", "redirect": {"status": 308, "location": "https://elsewhere.test/"}},
                        {"prefix": "/blog/", "redirect": {"status": 301, "pattern": "^/blog/([0-9]{4})/([a-z-]+)$", "location": "https://$host/posts/$2?year=$1&was=$0$$"}},
                        {"prefix": "/docs/", "origin": "o", "cache": {"enabled": false}, "redirect": {"pattern": "^/docs/v1/(.*)$", "location": "/docs/v2/$1$query"}},
                        {"prefix": "/api/", "origin": "o", "cache": {"enabled": false}, "rewrite": {"pattern": "^/api/v1/([a-z]+)/([0-9]+)$", "replacement": "/v2/$1?id=$2&"}},
                        {"prefix": "/strip/", "origin": "o", "strip_prefix": true, "cache": {"enabled": false}, "rewrite": {"pattern": "\\.php$", "replacement": ".html"}}]
                       """#),
        ])
        defer { e.stop() }
        let cases: [(method: String, path: String, status: Int, header: (String, String)?, body: String?, originPath: String?)] = [
            ("GET", "/healthz", 200, ("Content-Type", "text/plain; charset=utf-8"), "ok\n", nil),
            ("HEAD", "/healthz", 200, ("Content-Length", "3"), "", nil),
            ("GET", "/teapot", 418, ("Content-Type", "application/json"), #"{"short": true}"#, nil),
            ("GET", "/old/a/b?x=1&y=2", 301, ("Location", "https://r.test/new/old/a/b?x=1&y=2"), "", nil),
            ("GET", "/old/", 301, ("Location", "https://r.test/new/old/"), "", nil),
            ("POST", "/moved/x", 308, ("Location", "https://elsewhere.test/"), "", nil),
            ("GET", "/blog/2024/hello-world", 301, ("Location", "https://r.test/posts/hello-world?year=2024&was=/blog/2024/hello-world$"), "", nil),
            ("GET", "/blog/2024/Hello", 404, nil, nil, nil),        // not the pattern's, and no origin
            ("GET", "/docs/v1/a/b?x=1", 302, ("Location", "/docs/v2/a/b?x=1"), "", nil),
            ("GET", "/docs/v2/a/b", 200, nil, nil, "/docs/v2/a/b"),  // not the pattern's: on to the origin
            ("GET", "/api/v1/users/42", 200, nil, nil, "/v2/users?id=42&"),
            ("GET", "/api/v1/users/42?page=3", 200, nil, nil, "/v2/users?id=42&?page=3"),
            ("GET", "/api/v1/Users/x", 200, nil, nil, "/api/v1/Users/x"),
            ("GET", "/strip/index.php?a=1", 200, nil, nil, "/index.html?a=1"),
            ("GET", "/plain", 200, nil, nil, "/plain"),
        ]
        for t in cases {
            let r = try request(e.port, t.method, t.path, host: "r.test", body: t.method == "POST" ? "abc" : nil)
            #expect(r.status == t.status, "\(t.method) \(t.path): \(r.status)")
            if let (k, v) = t.header { #expect(r.header(k) == v, "\(t.method) \(t.path): \(k) \(String(describing: r.header(k)))") }
            if let b = t.body { #expect(r.text == b, "\(t.method) \(t.path): \(r.text)") }
            if let op = t.originPath { #expect(r.json["path"] as? String == op, "\(t.path) reached the origin as \(String(describing: r.json["path"]))") }
        }
        // Answered by edged: the origin never saw them.
        e.stop()
        let reached = cases.filter { $0.originPath != nil }.count
        #expect(try request(o.port, "/stats", host: "x").json["requests"] as? Int == reached)
    }
}

/// A tenant's own pages for the errors edged answers itself.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ErrorPageTests {
    @Test func errorsEdgedAnswersUseTheTenantsPages() throws {
        let dead = try TCPProbe.bindEphemeral().1
        let e = try Edge(tenants: [
            tenantJSON(name: "p", hosts: ["p.test"],
                       origins: #"{"gone": {"servers": ["127.0.0.1:\#(dead)"]}, "files": {"directory": "www"}}"#,
                       routes: #"[{"prefix": "/", "origin": "files"}, {"prefix": "/api/", "origin": "gone"}]"#,
                       extra: #""error_pages": {"502": "errors/502.html", "404": "errors/404.html"}"#),
        ], files: ["www/index.html": "home", "errors/502.html": "<h1>We will be right back</h1>\n", "errors/404.html": "<h1>No such page</h1>\n"])
        defer { e.stop() }
        let bad = try request(e.port, "/api/x", host: "p.test")
        #expect(bad.status == 502)
        #expect(bad.text == "<h1>We will be right back</h1>\n")
        #expect(bad.header("Content-Type") == "text/html; charset=utf-8")
        let missing = try request(e.port, "/nope.html", host: "p.test")
        #expect(missing.status == 404 && missing.text == "<h1>No such page</h1>\n", "\(missing.status) \(missing.text)")
        // A status without a page keeps edged's plain one.
        let post = try request(e.port, "POST", "/index.html", host: "p.test", body: "x")
        #expect(post.status == 405 && post.text.hasPrefix("405"), "\(post.status) \(post.text)")
        #expect(try request(e.port, "/", host: "p.test").text == "home")
    }

    @Test func aMalformedHeadOnPlainHTTPGetsTheDefaultTenantsPage() throws {
        let e = try Edge(tenants: [
            tenantJSON(name: "d", hosts: ["d.test"], origins: #"{"files": {"directory": "www"}}"#, routes: #"[{"prefix": "/", "origin": "files"}]"#,
                       extra: #""default": true, "error_pages": {"400": "errors/400.html"}"#),
        ], files: ["www/index.html": "home", "errors/400.html": "<h1>That was not HTTP</h1>\n"])
        defer { e.stop() }
        let c = try Client(port: e.port)
        c.send("GET / HTTP/1.1\r\nHost: d.test\r\nBad Field: x\r\n\r\n")
        let r = try c.readResponse()
        #expect(r.status == 400 && r.text == "<h1>That was not HTTP</h1>\n", "\(r.status) \(r.text)")
        #expect(r.header("Connection") == "close")
    }
}

/// Canary and weighted splits across origin groups.
@Suite(.serialized, .timeLimit(.minutes(3))) struct SplitTests {
    func edge(_ stable: Origin, _ canary: Origin, _ split: String) throws -> Edge {
        try Edge(tenants: [
            tenantJSON(name: "c", hosts: ["c.test"],
                       origins: #"{"stable": {"servers": ["\#(stable.address)"]}, "canary": {"servers": ["\#(canary.address)"]}}"#,
                       routes: #"[{"prefix": "/", "origin": "stable", "cache": {"default_ttl": 60}, "split": \#(split)}]"#),
        ])
    }

    func side(_ e: Edge, _ path: String, _ headers: [String] = []) throws -> String {
        let r = try request(e.port, path, host: "c.test", headers: headers)
        #expect(r.status == 200)
        return r.json["origin"] as? String ?? "?"
    }

    @Test func weightsForceHeaderAndCacheIsolation() throws {
        let s = try Origin(name: "stable"), k = try Origin(name: "canary")
        defer { s.stop(); k.stop() }
        let e = try edge(s, k, #"{"sides": [{"origin": "stable", "weight": 80}, {"origin": "canary", "weight": 20}], "force_header": "X-Canary"}"#)
        defer { e.stop() }
        var n: [String: Int] = [:]
        for i in 0..<300 { n[try side(e, "/w/\(i)"), default: 0] += 1 }
        #expect((30...95).contains(n["canary"] ?? 0), "about 60 of 300 to the canary: \(n)")
        for i in 0..<5 { #expect(try side(e, "/f/\(i)", ["X-Canary: canary"]) == "canary") }
        for i in 0..<5 { #expect(try side(e, "/f/\(i)", ["X-Canary: stable"]) == "stable") }
        // The stable side's cached copy is never served to the canary side, and the canary's is never stored.
        for o in [s, k] {
            try script(o, "/iso", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600", "Content-Type": "application/json"}, "body": "{\"origin\": \"\#(o.name)\"}"}]"#)
        }
        #expect(try side(e, "/iso", ["X-Canary: stable"]) == "stable")
        let hit = try request(e.port, "/iso", host: "c.test", headers: ["X-Canary: stable"])
        #expect(hit.header("Cache-Status")?.contains("hit") == true, "\(hit.headers)")
        #expect(try side(e, "/iso", ["X-Canary: canary"]) == "canary")
        #expect(try side(e, "/iso", ["X-Canary: canary"]) == "canary")
        #expect(try originHits(k, "/iso") == 2, "each canary request went to the canary")
        #expect(try originHits(s, "/iso") == 1, "the stable copy stayed cached")
        // Stats count each side apart (what a promote-or-roll-back decision reads).
        let groups = try e.server.tenantStats("c")[0].groups
        #expect(groups.map(\.group) == ["canary", "stable"], "\(groups)")
        #expect(groups.first { $0.group == "canary" }?.requests == (n["canary"] ?? 0) + 5 + 2, "\(groups)")
    }

    @Test func aKeyedSplitCachesEachSideApartAndAPurgeDropsBoth() throws {
        let s = try Origin(name: "stable"), k = try Origin(name: "canary")
        defer { s.stop(); k.stop() }
        let e = try edge(s, k, #"{"sides": [{"origin": "stable", "weight": 1}, {"origin": "canary", "weight": 1}], "force_header": "X-Canary", "cache": "keyed"}"#)
        defer { e.stop() }
        for o in [s, k] {
            try script(o, "/iso", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600", "Content-Type": "application/json"}, "body": "{\"origin\": \"\#(o.name)\"}"}]"#)
        }
        for round in 0..<3 {
            for name in ["stable", "canary"] {
                let r = try request(e.port, "/iso", host: "c.test", headers: ["X-Canary: \(name)"])
                #expect(r.json["origin"] as? String == name, "round \(round): \(name) got \(r.json)")
                if round > 0 { #expect(r.header("Cache-Status")?.contains("hit") == true, "\(name) is cached: \(r.headers)") }
            }
        }
        #expect(try originHits(s, "/iso") == 1 && originHits(k, "/iso") == 1, "each side fetched once and then served from its own copy")
        // A purge by URL drops every side's copy.
        #expect(try e.server.purge(urls: ["http://c.test/iso"], soft: false).purged == 2)
        for name in ["stable", "canary"] { #expect(try side(e, "/iso", ["X-Canary: \(name)"]) == name) }
        #expect(try originHits(s, "/iso") == 2 && originHits(k, "/iso") == 2)
    }

    @Test func aStickyCookieEdgedSetsKeepsANewClientOnItsSide() throws {
        let s = try Origin(name: "stable"), k = try Origin(name: "canary")
        defer { s.stop(); k.stop() }
        let e = try edge(s, k, #"{"sides": [{"origin": "stable", "weight": 1}, {"origin": "canary", "weight": 1}], "sticky": "cookie:edge_side", "set_cookie": true}"#)
        defer { e.stop() }
        var sides: [String: Int] = [:]
        for u in 0..<30 {
            let first = try request(e.port, "/n/\(u)", host: "c.test")
            let side = first.json["origin"] as? String ?? "?"
            let set = try #require(first.header("Set-Cookie"), "a new client gets the cookie")
            #expect(set.hasPrefix("edge_side=") && set.hasSuffix("; Path=/; HttpOnly; SameSite=Lax"), "\(set)")
            let cookie = String(set.prefix { $0 != ";" })
            #expect(cookie.count == "edge_side=".count + 32)
            for i in 0..<4 {
                let r = try request(e.port, "/n/\(u)/\(i)", host: "c.test", headers: ["Cookie: theme=x; \(cookie)"])
                #expect(r.json["origin"] as? String == side, "client \(u) stays on \(side)")
                #expect(r.header("Set-Cookie") == nil, "a client with the cookie is not given another")
            }
            sides[side, default: 0] += 1
        }
        #expect(sides.keys.sorted() == ["canary", "stable"], "new clients are drawn by weight: \(sides)")
    }

    @Test func stickySplitsKeepAClientOnItsSideAndWeightZeroDrainsIt() throws {
        let s = try Origin(name: "stable"), k = try Origin(name: "canary")
        defer { s.stop(); k.stop() }
        let e = try edge(s, k, #"{"sides": [{"origin": "stable", "weight": 1}, {"origin": "canary", "weight": 1}], "sticky": "cookie:sid"}"#)
        var seen: [String: Set<String>] = [:]
        for u in 0..<30 { for i in 0..<4 { seen["u\(u)", default: []].insert(try side(e, "/s/\(u)/\(i)", ["Cookie: sid=u\(u)"])) } }
        #expect(seen.values.allSatisfy { $0.count == 1 }, "\(seen)")
        #expect(Set(seen.values.map { $0.first! }) == ["stable", "canary"])
        // Promote or roll back by reload: weight 0 sends nothing to the canary.
        try e.reload(tenants: [
            tenantJSON(name: "c", hosts: ["c.test"],
                       origins: #"{"stable": {"servers": ["\#(s.address)"]}, "canary": {"servers": ["\#(k.address)"]}}"#,
                       routes: #"[{"prefix": "/", "origin": "stable", "split": {"sides": [{"origin": "stable", "weight": 1}, {"origin": "canary", "weight": 0}], "sticky": "cookie:sid"}}]"#),
        ])
        for u in 0..<30 { #expect(try side(e, "/s/\(u)/x", ["Cookie: sid=u\(u)"]) == "stable") }
        // Without set_cookie edged never sets the (application's) cookie.
        #expect(try request(e.port, "/s/new", host: "c.test").header("Set-Cookie") == nil)
        e.stop()
    }
}

/// Retries to another server, within a budget.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RetryTests {
    @Test func aServerKilledMidRequestFailsNoIdempotentRequest() throws {
        let a = try Origin(name: "a"), b = try Origin(name: "b")
        defer { a.stop(); b.stop() }
        let e = try Edge(tenants: [
            tenantJSON(name: "r", hosts: ["r.test"], origins: #"{"o": {"servers": ["\#(a.address)", "\#(b.address)"], "max_fails": 1}}"#,
                       routes: #"[{"prefix": "/", "origin": "o", "cache": {"enabled": false}}]"#),
        ])
        defer { e.stop() }
        let statuses = Mutex<[Int]>([])
        let clients = (0..<10).map { i in
            OSThread.spawn(name: "test-steering") {
                let r = try? request(e.port, "/slow/800?c=\(i)", host: "r.test")
                statuses.withLock { $0.append(r?.status ?? -1) }
            }
        }
        usleep(300_000)
        b.stop()                       // kill -9 with five requests in flight on it
        for t in clients { t.join() }
        #expect(statuses.withLock { $0 }.allSatisfy { $0 == 200 }, "\(statuses.withLock { $0 })")
        #expect(try e.server.tenantStats("r")[0].originErrors >= 1, "b's requests failed and were retried on a")
    }

    @Test func retryOnStatusesTriesAnotherServerForIdempotentRequests() throws {
        let a = try Origin(name: "a"), b = try Origin(name: "b")
        defer { a.stop(); b.stop() }
        try script(a, "/r", #"[{"status": 503, "body": "a is busy"}]"#)
        try script(b, "/r", #"[{"status": 200, "body": "b answered"}]"#)
        func edge(_ retry: String) throws -> Edge {
            try Edge(tenants: [
                tenantJSON(name: "r", hosts: ["r.test"], origins: #"{"o": {"servers": ["\#(a.address)", "\#(b.address)"]\#(retry)}}"#,
                           routes: #"[{"prefix": "/", "origin": "o", "cache": {"enabled": false}}]"#),
            ])
        }
        let e = try edge(#", "retry_on": [503]"#)
        for _ in 0..<6 { #expect(try request(e.port, "/r", host: "r.test").text == "b answered") }
        // Not for a POST: a's answer is relayed when a is picked.
        var posts: Set<Int> = []
        for _ in 0..<4 { posts.insert(try request(e.port, "POST", "/r", host: "r.test", body: "x").status) }
        #expect(posts == [200, 503])
        e.stop()
        // Without retry_on, a's 503 reaches the client when a is picked.
        let plain = try edge("")
        defer { plain.stop() }
        var seen: Set<String> = []
        for _ in 0..<4 { seen.insert(try request(plain.port, "/r", host: "r.test").text) }
        #expect(seen == ["a is busy", "b answered"])
    }

    @Test func retryOnTimeoutTriesAnotherServerWhenOneNeverAnswers() throws {
        let b = try Origin(name: "b")
        defer { b.stop() }
        // a accepts connections (the kernel's backlog) and never answers.
        let stuck = try TCP.listen(SocketAddress("127.0.0.1:0")!, reusePort: false)
        defer { close(stuck) }
        let a = "127.0.0.1:\(TCP.localAddress(stuck)!.port)"
        func edge(_ retry: String) throws -> Edge {
            try Edge(tenants: [
                tenantJSON(name: "r", hosts: ["r.test"], origins: #"{"o": {"servers": ["\#(a)", "\#(b.address)"], "max_fails": 1000\#(retry)}}"#,
                           routes: #"[{"prefix": "/", "origin": "o", "cache": {"enabled": false}}]"#,
                           extra: #""limits": {"origin_read_timeout": "300ms"}"#),
            ])
        }
        let e = try edge(#", "retry_on": ["timeout", 503]"#)
        for i in 0..<6 {
            let r = try request(e.port, "/t/\(i)", host: "r.test")
            #expect(r.status == 200 && r.json["origin"] as? String == "b", "\(i): \(r.status)")
        }
        // Not for a POST: its timeout is the client's 504 when a is picked.
        var posts: Set<Int> = []
        for _ in 0..<4 { posts.insert(try request(e.port, "POST", "/t/p", host: "r.test", body: "x").status) }
        #expect(posts == [200, 504])
        e.stop()
        // Without "timeout" in retry_on, a GET that lands on a gets 504.
        let plain = try edge("")
        defer { plain.stop() }
        var statuses: Set<Int> = []
        for i in 0..<4 { statuses.insert(try request(plain.port, "/u/\(i)", host: "r.test").status) }
        #expect(statuses == [200, 504])
    }

    @Test func whenEveryServerAnswersARetriedStatusTheLastAnswerIsRelayed() throws {
        let a = try Origin(name: "a")
        defer { a.stop() }
        try script(a, "/r", #"[{"status": 503, "body": "busy"}]"#)
        let e = try Edge(tenants: [
            tenantJSON(name: "r", hosts: ["r.test"], origins: #"{"o": {"servers": ["\#(a.address)"], "retry_on": [502, 503]}}"#,
                       routes: #"[{"prefix": "/", "origin": "o", "cache": {"enabled": false}}]"#),
        ])
        defer { e.stop() }
        let r = try request(e.port, "/r", host: "r.test")
        #expect(r.status == 503 && r.text == "busy")
        #expect(try originHits(a, "/r") == 1)
    }

    @Test func theRetryBudgetBoundsRetriesInATotalOutage() throws {
        let d1 = try TCPProbe.bindEphemeral().1, d2 = try TCPProbe.bindEphemeral().1
        func attempts(budget: Double) throws -> Int {
            let e = try Edge(tenants: [
                tenantJSON(name: "r", hosts: ["r.test"],
                           origins: #"{"o": {"servers": ["127.0.0.1:\#(d1)", "127.0.0.1:\#(d2)"], "retry_budget": \#(budget)}}"#,
                           routes: #"[{"prefix": "/", "origin": "o", "cache": {"enabled": false}}]"#),
            ])
            defer { e.stop() }
            for i in 0..<40 { #expect(try request(e.port, "/x/\(i)", host: "r.test").status == 502) }
            return try e.server.tenantStats("r")[0].originRequests
        }
        // Each request tries both servers when the budget allows it all.
        #expect(try attempts(budget: 1) == 80)
        // 20%: 40 first attempts, at most 40 x 0.2 + 3 retries.
        let bounded = try attempts(budget: 0.2)
        #expect(bounded >= 40 && bounded <= 51, "\(bounded)")
    }
}
