// Request rules and attack signatures over real sockets: every action as a
// client sees it and as the origin sees it, log mode, the counters and the
// access log fields, TLS and SNI matchers with curl over a real handshake,
// a limit applied by a rule, and a reload that swaps rules.
import Foundation
import Testing
import Glibc
@testable import EdgeProxy
import EdgeIO
import EdgeConfig

@Suite(.serialized, .timeLimit(.minutes(3))) struct RuleTests {
    func tenant(_ origin: Origin, _ extra: String, routes: String? = nil) -> String {
        tenantJSON(name: "r", hosts: ["r.test", "www.r.test"], origins: #"{"o": {"servers": ["\#(origin.address)"]}}"#,
                   routes: routes ?? #"[{"prefix": "/", "origin": "o", "cache": false}, {"prefix": "/api/", "origin": "o", "cache": false}]"#, extra: extra)
    }

    func metric(_ edge: Edge, _ line: String) -> Int? {
        edge.server.metricsText().split(separator: "\n").first { $0.hasPrefix(line) }.flatMap { Int($0.split(separator: " ").last!) }
    }

    static let rules = #"""
        "rate_limits": {"login": {"rate": "1/m"}},
        "rules": [
          {"id": "health", "match": {"path": "/healthz"}, "action": "allow"},
          {"id": "no-admin", "match": {"path": {"prefix": "/admin"}, "not": {"client": "127.0.0.9"}}, "action": "deny", "status": 404, "body": "no admin here\n"},
          {"id": "old-blog", "match": {"path": {"regex": "^/blog/[0-9]{4}/"}}, "action": "redirect", "status": 301, "location": "$scheme://$host/posts$path$query"},
          {"id": "no-php", "match": {"path": {"glob": "*.php"}, "method": ["GET", "POST"]}, "action": "deny"},
          {"id": "debug-off", "match": {"query": {"name": "debug"}}, "action": "deny", "status": 400},
          {"id": "beta", "match": {"header": {"name": "X-Beta", "value": {"exact": "on", "case_insensitive": true}}}, "action": "headers",
           "set": {"X-Beta-User": "1"}, "remove": ["X-Beta", "Cookie"], "tag": "beta"},
          {"id": "www", "match": {"host": "www.r.test"}, "action": "tag", "tag": "www"},
          {"id": "login", "match": {"path": "/api/login", "method": "POST"}, "action": "limit", "limit": "login"},
          {"id": "curl", "match": {"header": {"name": "user-agent", "value": {"prefix": "curl/"}}}, "action": "deny", "status": 403, "mode": "log"}
        ]
        """#

    @Test func everyActionAsTheClientAndOriginSeeIt() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let edge = try Edge(tenants: [tenant(origin, Self.rules)])
        defer { edge.stop() }
        // deny with a status and body; the carve-out by client address
        let admin = try request(edge.port, "/admin/users", host: "r.test", from: "127.0.0.2")
        #expect(admin.status == 404 && admin.text == "no admin here\n")
        #expect(try request(edge.port, "/admin/users", host: "r.test", from: "127.0.0.9").status == 200)
        // redirect with the template filled in
        let old = try request(edge.port, "/blog/2019/hello?ref=x", host: "r.test")
        #expect(old.status == 301 && old.header("Location") == "http://r.test/posts/blog/2019/hello?ref=x")
        #expect(try request(edge.port, "/blog/about", host: "r.test").status == 200)
        // glob plus method; query presence
        #expect(try request(edge.port, "/wp/index.php", host: "r.test").status == 403)
        #expect(try request(edge.port, "HEAD", "/wp/index.php", host: "r.test").status == 200)
        #expect(try request(edge.port, "/echo?debug", host: "r.test").status == 400)
        #expect(try request(edge.port, "/echo?nodebug=1", host: "r.test").status == 200)
        // header edits reach the origin: set, and removed fields gone
        let beta = try request(edge.port, "/echo/b", host: "r.test", headers: ["X-Beta: ON", "Cookie: s=1", "X-Beta-User: forged"])
        #expect(beta.status == 200)
        #expect(beta.echoedHeader("X-Beta-User") == ["1"])
        #expect(beta.echoedHeader("X-Beta").isEmpty && beta.echoedHeader("Cookie").isEmpty)
        let plain = try request(edge.port, "/echo/p", host: "r.test", headers: ["Cookie: s=1"])
        #expect(plain.echoedHeader("Cookie") == ["s=1"] && plain.echoedHeader("X-Beta-User").isEmpty)
        // allow ends the rules: /healthz?debug passes the debug rule
        #expect(try request(edge.port, "/healthz?debug=1", host: "r.test").status == 200)
        // a limit applied by a rule: POST /api/login only
        #expect(try request(edge.port, "POST", "/api/login", host: "r.test", body: "a").status == 200)
        let limited = try request(edge.port, "POST", "/api/login", host: "r.test", body: "a")
        #expect(limited.status == 429 && limited.header("RateLimit-Policy") == #""login";q=1;w=60"#)
        #expect(try request(edge.port, "GET", "/api/login", host: "r.test").status == 200)
        #expect(try request(edge.port, "POST", "/api/other", host: "r.test", body: "a").status == 200)   // the limit is the rule's, not every route's
        // log mode: counted and logged, not refused
        #expect(try request(edge.port, "/echo/c", host: "www.r.test", headers: ["User-Agent: curl/8.5"]).status == 200)

        try waitUntil("all logged") { edge.accessLog().count == 16 }
        let log = edge.accessLog()
        func entry(_ target: String) -> [String: Any]? { log.first { ($0["target"] as? String) == target } }
        #expect(entry("/admin/users")?["rule"] as? String == "no-admin" && entry("/admin/users")?["action"] as? String == "deny")
        #expect(entry("/blog/2019/hello?ref=x")?["action"] as? String == "redirect")
        #expect(entry("/echo/b")?["tags"] as? String == "beta")
        #expect(log.filter { ($0["status"] as? Int) == 429 }.first?["rule"] as? String == "login")
        let c = entry("/echo/c")
        #expect(c?["action"] as? String == "log" && c?["rule"] as? String == "curl" && c?["tags"] as? String == "www")
        #expect(metric(edge, #"edge_rule_matches_total{rule="r/no-admin",mode="block"}"#) == 1)
        #expect(metric(edge, #"edge_rule_matches_total{rule="r/curl",mode="log"}"#) == 1)
        #expect(metric(edge, #"edge_requests_refused_total{tenant="r",reason="rule"}"#) == 3)
    }

    @Test func tlsAndSNIMatchersOverARealHandshake() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let rules = #"""
            "tls": "internal",
            "rules": [
              {"id": "plain-login", "match": {"path": "/login", "tls": false}, "action": "redirect", "status": 308, "location": "https://$host$path$query"},
              {"id": "sni-mismatch", "match": {"host": "r.test", "not": {"sni": "r.test"}, "tls": true}, "action": "deny", "status": 421},
              {"id": "www-sni", "match": {"sni": {"glob": "www.*"}}, "action": "tag", "tag": "www-sni"}
            ]
            """#
        let edge = try Edge(tenants: [tenant(origin, rules)])
        defer { edge.stop() }
        let login = try request(edge.port, "/login?x=1", host: "r.test")
        #expect(login.status == 308 && login.header("Location") == "https://r.test/login?x=1")
        func curl(_ sni: String, _ host: String, _ path: String) throws -> String {
            let (rc, out) = try shell("curl -s -o /dev/null -w '%{http_code}' --cacert '\(edge.stateDir)/ca.pem' --resolve \(sni):\(edge.httpsPort):127.0.0.1 -H 'Host: \(host)' https://\(sni):\(edge.httpsPort)\(path)")
            #expect(rc == 0, "\(out)")
            return out
        }
        #expect(try curl("r.test", "r.test", "/login") == "200")          // over TLS: not redirected
        #expect(try curl("www.r.test", "r.test", "/echo/s") == "421")     // same tenant, another SNI name
        #expect(try curl("www.r.test", "www.r.test", "/echo/w") == "200")
        try waitUntil("logged") { edge.accessLog().count == 4 }
        #expect(edge.accessLog().first { ($0["target"] as? String) == "/echo/w" }?["tags"] as? String == "www-sni")
    }

    @Test func signaturesRefuseAttacksAndLetOrdinaryRequestsThrough() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let routes = #"[{"prefix": "/", "origin": "o", "cache": false}, {"prefix": "/api/", "origin": "o", "cache": false, "signatures": {"mode": "log"}}, "#
            + #"{"prefix": "/plain/", "origin": "o", "cache": false, "signatures": false}]"#
        let edge = try Edge(tenants: [tenant(origin, #""signatures": true"#, routes: routes)])
        defer { edge.stop() }
        #expect(try request(edge.port, "/echo?q=1%27%20or%20%271%27%3D%271", host: "r.test").status == 403)
        #expect(try request(edge.port, "/echo?q=%3Cscript%3Ealert(1)%3C/script%3E", host: "r.test").status == 403)
        #expect(try request(edge.port, "/echo/a", host: "r.test", headers: ["X-Api-Version: ${jndi:ldap://127.0.0.1/a}"]).status == 403)
        #expect(try request(edge.port, "/echo/b", host: "r.test", headers: ["User-Agent: sqlmap/1.7"]).status == 403)
        #expect(try request(edge.port, "/echo?file=..%2f..%2fetc%2fpasswd", host: "r.test").status == 403)
        // Ordinary requests pass.
        #expect(try request(edge.port, "/echo?q=select+a+union+rep", host: "r.test").status == 200)
        #expect(try request(edge.port, "/echo?q=O%27Reilly", host: "r.test", headers: ["User-Agent: Mozilla/5.0 (X11; Linux x86_64)"]).status == 200)
        // Log mode on /api/, off on /plain/.
        #expect(try request(edge.port, "/api/echo?q=1%27%20or%201%3D1", host: "r.test").status == 200)
        let raw = try request(edge.port, "/plain/echo?q=1%27%20or%201%3D1", host: "r.test")
        #expect(raw.status == 200, "\(raw.status) \(raw.text)")
        #expect(try origin.stats().requests == 4)
        try waitUntil("logged") { edge.accessLog().count == 9 }
        let log = edge.accessLog()
        #expect(log.filter { ($0["action"] as? String) == "signature" }.compactMap { $0["rule"] as? String }.sorted()
                == ["signature:log4shell", "signature:scanner", "signature:sqli", "signature:traversal", "signature:xss"])
        #expect(log.first { ($0["target"] as? String)?.hasPrefix("/api/") == true }?["action"] as? String == "signature-log")
        #expect(metric(edge, #"edge_rule_matches_total{rule="r/signature:sqli",mode="block"}"#) == 1)
        #expect(metric(edge, #"edge_rule_matches_total{rule="r/signature:sqli",mode="log"}"#) == 1)
    }

    @Test func aReloadSwapsRulesAndABadOneKeepsTheOld() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let first = tenant(origin, #""rules": [{"id": "a", "match": {"path": "/a"}, "action": "deny"}]"#)
        let edge = try Edge(tenants: [first])
        defer { edge.stop() }
        let kept = try Client(port: edge.port)
        kept.send("GET /a HTTP/1.1\r\nHost: r.test\r\n\r\n")
        #expect(try kept.readResponse().status == 403)
        try edge.reload(tenants: [tenant(origin, #""rules": [{"id": "b", "match": {"path": "/b"}, "action": "deny"}]"#)])
        kept.send("GET /a HTTP/1.1\r\nHost: r.test\r\n\r\n")
        #expect(try kept.readResponse().status == 200)   // the same connection, the new rules
        kept.send("GET /b HTTP/1.1\r\nHost: r.test\r\n\r\n")
        #expect(try kept.readResponse().status == 403)
        // A bad regex is refused with file and field; /b stays denied.
        #expect(throws: ConfigError.self) {
            try edge.reload(tenants: [tenant(origin, #""rules": [{"id": "c", "match": {"path": {"regex": "(("}}, "action": "deny"}]"#)])
        }
        kept.send("GET /b HTTP/1.1\r\nHost: r.test\r\n\r\n")
        #expect(try kept.readResponse().status == 403)
    }
}

/// What operators see through edgectl (the real binary): explain --client
/// names the rules, signature and limits a request would meet without
/// counting anything; stats shows rule matches and the keys limits refused most.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RuleVisibilityTests {
    static let extra = #"""
        "rate_limits": {"per-client": {"rate": "1/m", "burst": 1}, "login": {"rate": "1/m"}},
        "signatures": true,
        "rules": [
          {"id": "office", "match": {"path": {"prefix": "/admin"}, "not": {"client": "10.0.0.0/8"}}, "action": "deny"},
          {"id": "login", "match": {"path": "/login", "method": "POST"}, "action": "limit", "limit": "login"},
          {"id": "ua-log", "match": {"header": {"name": "user-agent", "value": {"prefix": "curl"}}}, "action": "deny", "mode": "log"}
        ]
        """#

    @Test func explainNamesRulesSignaturesAndLimitsForAClient() throws {
        let o = try Origin()
        defer { o.stop() }
        let a = try AdminEdge(tenants: [cacheTenant("v", o, extra: Self.extra)])
        defer { a.stop() }
        let denied = try a.ctlJSON("explain http://v.test/admin/x --client 192.0.2.7")
        let p = denied["protection"] as? [String: Any] ?? [:]
        #expect((p["rules"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["office"], "\(p)")
        #expect(p["outcome"] as? String == "403 (rule office)")
        let office = try a.ctlJSON("explain http://v.test/admin/x --client 10.1.1.1 -H 'User-Agent: curl/8'")
        let po = office["protection"] as? [String: Any] ?? [:]
        #expect((po["rules"] as? [[String: Any]])?.map { "\($0["id"]!) \($0["mode"]!)" } == ["ua-log log"])
        #expect(po["outcome"] as? String == "forwarded")
        let attack = try a.ctlJSON("explain 'http://v.test/echo?q=%3Cscript%3E' --client 10.1.1.1")
        #expect((attack["protection"] as? [String: Any])?["signature"] as? String == "xss")
        #expect((attack["protection"] as? [String: Any])?["outcome"] as? String == "403 (signature xss)")

        // Two requests use the client's bucket; explain then says the third is over, and counts nothing itself.
        for _ in 0..<2 { #expect(try request(a.port, "/echo/k", host: "v.test", from: "127.0.0.21").status == 200) }
        for _ in 0..<2 {
            let over = try a.ctlJSON("explain http://v.test/echo/k --client 127.0.0.21")
            let limits = (over["protection"] as? [String: Any])?["limits"] as? [[String: Any]] ?? []
            #expect(limits.first { $0["limit"] as? String == "per-client" }?["over"] as? Bool == true, "\(limits)")
            #expect(limits.first?["key"] as? String == "127.0.0.21")
            #expect((over["protection"] as? [String: Any])?["outcome"] as? String == "429 (limit per-client)")
        }
        let fresh = try a.ctlJSON("explain http://v.test/echo/k --client 127.0.0.22")
        #expect((fresh["protection"] as? [String: Any])?["outcome"] as? String == "forwarded")
        // The login limit applies through its rule: POST only.
        let login = try a.ctlJSON("explain http://v.test/login -X POST --client 127.0.0.22")
        #expect(((login["protection"] as? [String: Any])?["limits"] as? [[String: Any]])?.compactMap { $0["rule"] as? String } == ["login"])
        let text = try a.ctl("explain http://v.test/admin/x --client 192.0.2.7").1
        #expect(text.contains("rule office: deny 403") && text.contains("outcome:  403 (rule office)"), "\(text)")
        // explain took nothing from the bucket of 127.0.0.22.
        #expect(try request(a.port, "/echo/k", host: "v.test", from: "127.0.0.22").status == 200)
        #expect(try request(a.port, "/echo/k", host: "v.test", from: "127.0.0.22").status == 200)
    }

    @Test func statsShowRuleMatchesAndTheTopLimitedKeys() throws {
        let o = try Origin()
        defer { o.stop() }
        let a = try AdminEdge(tenants: [cacheTenant("v", o, extra: Self.extra)])
        defer { a.stop() }
        // 127.0.0.31 goes over 5 times, 127.0.0.32 once.
        for _ in 0..<7 { _ = try request(a.port, "/echo/s", host: "v.test", from: "127.0.0.31") }
        for _ in 0..<3 { _ = try request(a.port, "/echo/s", host: "v.test", from: "127.0.0.32") }
        _ = try request(a.port, "/admin/", host: "v.test")
        let s = try a.ctlJSON("stats --tenant v")
        let t = (s["tenants"] as? [[String: Any]])?.first ?? [:]
        let limit = (t["limits"] as? [[String: Any]])?.first { $0["limit"] as? String == "per-client" } ?? [:]
        #expect(limit["limited"] as? Int == 6)
        let keys = (limit["top_keys"] as? [[String: Any]] ?? []).map { "\($0["key"]!)=\($0["count"]!)" }
        #expect(keys == ["127.0.0.31=5", "127.0.0.32=1"], "\(limit)")
        #expect((t["rules"] as? [[String: Any]])?.first { $0["rule"] as? String == "office" }?["matched"] as? Int == 1)
        let text = try a.ctl("stats --tenant v").1
        #expect(text.contains("limit per-client: 6 refused") && text.contains("127.0.0.31"), "\(text)")
    }
}
