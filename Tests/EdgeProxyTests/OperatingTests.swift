// Operating edge: the admin API and edgectl (the real binary) against an edge
// with a real origin; every purge is checked through real requests afterwards.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy
import EdgeAdmin

/// An in-process edge with its admin API on STATE/admin.sock.
final class AdminEdge: @unchecked Sendable {
    let edge: Edge
    let admin: AdminServer

    /// With `tcpToken`, the loopback TCP listener is on too, with that token in a file of the edge's directory.
    init(tenants: [String], server: String? = nil, workers: Int = 1, tcpToken: String? = nil) throws {
        let e = try Edge(tenants: tenants, server: server, workers: workers)
        edge = e
        try FileManager.default.createDirectory(atPath: e.stateDir, withIntermediateDirectories: true)
        var tcp: String?, tokenFile: String?
        if let t = tcpToken {
            tokenFile = e.dir.appendingPathComponent("admin.token").path
            try writeFile(tokenFile ?? "", t + "\n")
            tcp = "127.0.0.1:0"
        }
        self.tokenFile = tokenFile
        admin = try AdminServer(edge: e.server, socketPath: e.stateDir + "/admin.sock", tcp: tcp, tokenFile: tokenFile) {
            // What edged does on reload: read every tenant file again, keep the cache.
            let tenants = try ConfigLoader.loadTenants(directory: e.dir.appendingPathComponent("tenants").path)
            e.server.reload(try RuntimeConfig(server: e.server.config.server, tenants: tenants, store: e.server.config.store))
            return "reloaded (\(tenants.count) tenant(s))"
        }
        admin.start()
    }

    var port: Int { edge.port }
    /// The token file, when the TCP listener is on.
    let tokenFile: String?
    /// The TCP listener's port (0 when off).
    var tcpPort: Int { Int(admin.tcpAddress?.port ?? 0) }

    func stop() {
        admin.stop()
        edge.stop()
    }

    /// Runs edgectl --state STATE ARGS…; returns (exit status, output).
    func ctl(_ args: String) throws -> (Int32, String) {
        try shell("'\(try builtBinary("edgectl"))' --state '\(edge.stateDir)' \(args)")
    }

    func ctlJSON(_ args: String) throws -> [String: Any] {
        let (status, out) = try ctl("--json " + args)
        #expect(status == 0, "\(args): \(out)")
        return (try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]) ?? [:]
    }
}

import EdgeConfig

/// A binary built next to this test bundle (edged, edgectl).
func builtBinary(_ name: String) throws -> String {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [dir.appendingPathComponent(name), dir.deletingLastPathComponent().appendingPathComponent(name)] {
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
    }
    throw HarnessError(description: "\(name) binary not found next to \(dir.path); build it with `swift build`")
}

/// Scripts one path on a test origin.
func script(_ o: Origin, _ path: String, _ responses: String) throws {
    let r = try request(o.port, "POST", "/__script", host: "o", body: #"{"path": "\#(path)", "responses": \#(responses)}"#)
    #expect(r.status == 200)
}

func cacheTenant(_ name: String, _ o: Origin, extra: String = "") -> String {
    tenantJSON(name: name, hosts: ["\(name).test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
               routes: #"[{"prefix": "/", "origin": "o"}]"#, extra: extra)
}

/// The requests the origin logged for `path`: each one's header fields (names
/// lowercased; the first of a repeated name), in order.
func originLog(_ o: Origin, _ path: String) throws -> [[String: String]] {
    let r = try request(o.port, "/__log?path=\(path)", host: "o")
    let entries = try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [[[String]]])
    return entries.map { Dictionary($0.map { ($0[0].lowercased(), $0[1]) }, uniquingKeysWith: { a, _ in a }) }
}

/// How many requests for `path` the origin has seen.
func originHits(_ o: Origin, _ path: String) throws -> Int {
    let r = try request(o.port, "/__log?path=\(path)", host: "o")
    return ((try? JSONSerialization.jsonObject(with: Data(r.body))) as? [Any])?.count ?? -1
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct OperatingTests {
    @Test func purgeURLRemovesEveryVariantOfBothSchemes() throws {
        let o = try Origin()
        let a = try AdminEdge(tenants: [cacheTenant("t", o, extra: #""tls": "internal""#)])
        defer { a.stop() }
        try script(o, "/v", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600", "Vary": "Accept-Language"}, "body": "v"}]"#)
        for lang in ["en", "de", "en", "de"] { _ = try request(a.port, "/v", host: "t.test", headers: ["Accept-Language: \(lang)"]) }
        // The https scheme is keyed apart: one more entry, over a real TLS connection.
        let https = "curl -s -m 20 -D - -o /dev/null --cacert '\(a.edge.stateDir)/ca.pem' --resolve t.test:\(a.edge.httpsPort):127.0.0.1 -H 'Accept-Language: en' https://t.test:\(a.edge.httpsPort)/v"
        #expect(try shell(https).1.lowercased().contains("cache-status: edge; fwd=uri-miss"))
        #expect(try shell(https).1.lowercased().contains("cache-status: edge; hit"))
        #expect(try originHits(o, "/v") == 3)
        let (status, out) = try a.ctl("purge http://t.test/v")
        #expect(status == 0)
        #expect(out.contains("purged 3 objects"), "\(out)")
        let r = try request(a.port, "/v", host: "t.test", headers: ["Accept-Language: en"])
        #expect(r.header("Cache-Status")?.contains("fwd=uri-miss") == true)
        #expect(try shell(https).1.lowercased().contains("cache-status: edge; fwd=uri-miss"), "the https entry was not purged")
        #expect(try originHits(o, "/v") == 5)
        // A host the edge does not serve is a clear error, exit status 1.
        let (bad, msg) = try a.ctl("purge http://nobody.test/v")
        #expect(bad == 1)
        #expect(msg.contains("no tenant serves host nobody.test"))
    }

    @Test func purgeByPrefixTagAndTenant() throws {
        let o = try Origin()
        let a = try AdminEdge(tenants: [cacheTenant("t", o), cacheTenant("u", o)])
        defer { a.stop() }
        try script(o, "/a/1", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600", "Surrogate-Key": "p1 all"}, "body": "a1"}]"#)
        try script(o, "/a/2", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600", "Cache-Tag": "p2,all"}, "body": "a2"}]"#)
        try script(o, "/b/1", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600", "Surrogate-Key": "all"}, "body": "b1"}]"#)
        func fill() throws { for p in ["/a/1", "/a/2", "/b/1"] { _ = try request(a.port, p, host: "t.test") } }
        func hit(_ p: String, _ host: String = "t.test") throws -> Bool {
            try request(a.port, p, host: host).header("Cache-Status")?.hasPrefix("edge; hit") == true
        }
        try fill()
        #expect(try a.ctl("purge --prefix http://t.test/a/").1.contains("purged 2 objects"))
        #expect(try !hit("/a/1"))
        #expect(try !hit("/a/2"))
        #expect(try hit("/b/1"))

        #expect(try a.ctl("purge --tag p1").1.contains("purged 1 object"))
        #expect(try !hit("/a/1"))
        #expect(try hit("/a/2"))
        #expect(try a.ctlJSON("purge --tag all")["purged"] as? Int == 3)
        for p in ["/a/1", "/a/2", "/b/1"] { #expect(try !hit(p)) }

        // Tenant purge leaves the other tenant alone.
        _ = try request(a.port, "/b/1", host: "u.test")
        #expect(try a.ctl("purge --tenant t --all").1.contains("purged 3 objects"))
        #expect(try hit("/b/1", "u.test"))
        #expect(try !hit("/b/1"))
        // Usage errors exit 2 with a message.
        let (status, out) = try a.ctl("purge --all")
        #expect(status == 2)
        #expect(out.contains("--all needs --tenant"))
    }

    @Test func softPurgeServesStaleWhileTheOriginRefreshes() throws {
        let o = try Origin()
        let a = try AdminEdge(tenants: [cacheTenant("t", o)])
        defer { a.stop() }
        try script(o, "/swr", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600, stale-while-revalidate=60"}, "body": "one"}, {"status": 200, "headers": {"Cache-Control": "max-age=600, stale-while-revalidate=60"}, "body": "two"}]"#)
        try script(o, "/etag", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600", "ETag": "\"e1\""}, "body": "tagged"}, {"status": 304, "headers": {"Cache-Control": "max-age=600", "ETag": "\"e1\""}}]"#)
        _ = try request(a.port, "/swr", host: "t.test")
        _ = try request(a.port, "/etag", host: "t.test")
        let (_, out) = try a.ctl("purge --soft http://t.test/swr http://t.test/etag")
        #expect(out.contains("marked stale 2 objects"), "\(out)")
        // stale-while-revalidate: the stale copy at once, the origin refreshes it behind.
        let r1 = try request(a.port, "/swr", host: "t.test")
        #expect(String(decoding: r1.body, as: UTF8.self) == "one")
        #expect(r1.header("Cache-Status")?.contains("stale-while-revalidate") == true)
        try waitUntil("the background refresh stores \"two\"") {
            String(decoding: try request(a.port, "/swr", host: "t.test").body, as: UTF8.self) == "two"
        }
        // Without a stale window: revalidated with the stored validator, body kept.
        let r2 = try request(a.port, "/etag", host: "t.test")
        #expect(String(decoding: r2.body, as: UTF8.self) == "tagged")
        #expect(r2.header("Cache-Status")?.contains("fwd=stale") == true)
        let log = try request(o.port, "/__log?path=/etag", host: "o")
        #expect(String(decoding: log.body, as: UTF8.self).contains("If-None-Match"))
    }

    @Test func aResponseInFlightDuringAPurgeIsNotStored() throws {
        let o = try Origin()
        let a = try AdminEdge(tenants: [cacheTenant("t", o)])
        defer { a.stop() }
        // The origin sends half the body and holds the rest until released: the fill
        // is certainly in flight, and certainly not stored, when the purge runs.
        let path = "/gate/2000/inflight"
        let client = try Client(port: a.port)
        client.send("GET \(path) HTTP/1.1\r\nHost: t.test\r\n\r\n")
        try waitUntil("the request reaches the origin") { try o.stats().requests >= 1 }
        let (st, out) = try a.ctl("purge http://t.test\(path)")
        #expect(st == 0 && out.contains("purged 0 objects"), "\(out)")
        #expect(try request(o.port, "POST", "/__release/inflight", host: "o").status == 200)
        let first = try client.readResponse()
        #expect(first.status == 200 && first.body.count == 2000)
        // Stored after the purge it would be a hit now: it must be a miss.
        let r = try request(a.port, path, host: "t.test")
        #expect(r.status == 200 && r.body.count == 2000)
        #expect(r.header("Cache-Status")?.contains("fwd=") == true, "\(r.header("Cache-Status") ?? "no Cache-Status")")
        #expect(try o.stats().requests == 2)
        let e = try a.ctlJSON("explain http://t.test\(path)")
        #expect(e["stored"] as? Bool == true)
    }

    @Test func purgeFansOutToNodesAndNamesTheOnesQueuedAndFailed() throws {
        let o = try Origin()
        let a = try AdminEdge(tenants: [cacheTenant("t", o)])
        defer { a.stop() }
        let b = try AdminEdge(tenants: [cacheTenant("t", o)])
        defer { b.stop() }
        try script(o, "/f", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600"}, "body": "f"}]"#)
        _ = try request(a.port, "/f", host: "t.test")
        _ = try request(b.port, "/f", host: "t.test")
        let nodes = a.edge.dir.appendingPathComponent("nodes").path
        let down = a.edge.dir.appendingPathComponent("down.sock").path
        try writeFile(nodes, "# the fleet\nshield \(a.edge.stateDir)/admin.sock\nunix:\(b.edge.stateDir)/admin.sock\n\(down)\n")
        let (status, out) = try a.ctl("purge --nodes '\(nodes)' http://t.test/f")
        // The unreachable node is queued: the others applied it, and it pulls from them.
        #expect(status == 0, "\(out)")
        #expect(out.contains("\(a.edge.stateDir)/admin.sock: applied: purged 1 object"), "\(out)")
        #expect(out.contains("\(b.edge.stateDir)/admin.sock: applied: purged 1 object"), "\(out)")
        #expect(out.contains("\(down): queued"), "\(out)")
        for e in [a, b] { #expect(try request(e.port, "/f", host: "t.test").header("Cache-Status")?.contains("fwd=uri-miss") == true) }
        // Each applied fleet purge is journaled for the peers, under one id.
        let ja = try String(contentsOfFile: a.edge.stateDir + "/fleet-purges.jsonl", encoding: .utf8)
        let jb = try String(contentsOfFile: b.edge.stateDir + "/fleet-purges.jsonl", encoding: .utf8)
        let id = { (t: String) in (try? JSONSerialization.jsonObject(with: Data(t.utf8))) as? [String: Any] }
        #expect(id(ja)?["id"] as? String != nil && id(ja)?["id"] as? String == id(jb)?["id"] as? String, "\(ja) \(jb)")
        // A node that refuses (a tenant it does not have) fails; so does a purge no node applied.
        let (s2, out2) = try a.ctl("purge --nodes '\(nodes)' --tenant nosuch --all")
        #expect(s2 == 1 && out2.contains("\(down): FAILED") && out2.contains("admin.sock: FAILED"), "\(out2)")
    }

    @Test func statsTenantsAndMetrics() throws {
        let o = try Origin()
        let a = try AdminEdge(tenants: [cacheTenant("t", o), cacheTenant("u", o)], workers: 2)
        defer { a.stop() }
        try script(o, "/s", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600"}, "body": "0123456789"}]"#)
        for _ in 0..<5 { #expect(try request(a.port, "/s", host: "t.test").status == 200) }
        #expect(try request(a.port, "/status/500", host: "t.test").status == 500)
        let s = try a.ctlJSON("stats --tenant t")
        let t = (s["tenants"] as? [[String: Any]])?.first ?? [:]
        #expect(t["tenant"] as? String == "t")
        #expect(t["requests"] as? Int == 6)
        #expect((t["by_status"] as? [String: Int])?["5xx"] == 1)
        #expect((t["by_cache"] as? [String: Int])?["hit"] == 4)
        #expect(t["origin_requests"] as? Int == 2)
        #expect(abs((t["hit_ratio"] as? Double ?? 0) - 4.0 / 6.0) < 0.01)
        #expect((t["bytes_served"] as? Int ?? 0) >= 50)
        #expect(t["p99_millis"] as? Double != nil)
        let text = try a.ctl("stats").1
        #expect(text.contains("TENANT") && text.contains("\nt ") && text.contains("\nu "), "\(text)")
        #expect(try a.ctl("stats --tenant nope").0 == 1)

        let tenants = try a.ctlJSON("tenants")["tenants"] as? [[String: Any]] ?? []
        #expect(tenants.map { $0["name"] as? String } == ["t", "u"])
        #expect((tenants[0]["origins"] as? [[String: Any]])?.first?["healthy"] as? Bool == true)

        // Prometheus text: every line a comment or `name{labels} value`.
        let (status, metrics) = try a.ctl("metrics")
        #expect(status == 0)
        let sample = try Regex(#"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[-0-9.e+Inf]+$"#)
        for line in metrics.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(line.wholeMatch(of: sample) != nil, "not Prometheus text: \(line)")
        }
        #expect(metrics.contains("edge_requests_total{tenant=\"t\",code=\"2xx\"} 5"))
        #expect(metrics.contains("edge_cache_requests_total{tenant=\"t\",cache=\"hit\"} 4"))
        #expect(metrics.contains("edge_request_duration_seconds_count{tenant=\"t\"} 6"))
        #expect(metrics.contains("edge_origin_requests_total{origin=\"t/o/\(o.address)\"} 2"))
        #expect(metrics.contains("edge_cache_objects{tier=\"memory\"} 1"))
        #expect(metrics.contains("# TYPE edge_request_duration_seconds histogram"))
    }

    @Test func explainStoredVaryMissedAndUncacheable() throws {
        let o = try Origin()
        let a = try AdminEdge(tenants: [cacheTenant("t", o)])
        defer { a.stop() }
        try script(o, "/e", #"[{"status": 200, "headers": {"Cache-Control": "s-maxage=300, max-age=60", "Vary": "Accept-Encoding", "Surrogate-Key": "k1"}, "body": "e"}]"#)
        try script(o, "/n", #"[{"status": 200, "headers": {"Cache-Control": "no-store"}, "body": "n"}]"#)
        _ = try request(a.port, "/e", host: "t.test", headers: ["Accept-Encoding: gzip"])
        _ = try request(a.port, "/n", host: "t.test")

        let stored = try a.ctlJSON("explain http://t.test/e -H 'Accept-Encoding: gzip'")
        #expect(stored["stored"] as? Bool == true)
        let v = (stored["variants"] as? [[String: Any]])?.first ?? [:]
        #expect(v["freshness_source"] as? String == "s-maxage")
        #expect(v["freshness_lifetime"] as? Int == 300)
        #expect(v["selected"] as? Bool == true)
        #expect(v["tags"] as? [String] == ["k1"])
        let text = try a.ctl("explain http://t.test/e -H 'Accept-Encoding: gzip'").1
        #expect(text.contains("stored:   yes") && text.contains("from s-maxage"), "\(text)")

        let missed = try a.ctlJSON("explain http://t.test/e -H 'Accept-Encoding: br'")
        #expect(missed["stored"] as? Bool == false)
        #expect((missed["reason"] as? String)?.contains("none for these request headers") == true)

        let uncacheable = try a.ctlJSON("explain http://t.test/n")
        #expect(uncacheable["stored"] as? Bool == false)
        #expect((uncacheable["reason"] as? String)?.contains("response no-store") == true)
    }

    /// The route's own lifetimes, key and bypass rules show in explain, and a
    /// lifetime a route rule set names it as the source.
    @Test func explainShowsTheRoutesKeyLifetimesAndBypass() throws {
        let o = try Origin()
        let cache = #"{"default_ttl": "2m", "ttl_override": {"404": "30s"}, "key_headers": ["X-Device"], "key_cookies": ["lang"], "keep_query": ["id"], "bypass": {"cookies": ["sessionid"]}}"#
        let t = tenantJSON(name: "t", hosts: ["t.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                           routes: #"[{"prefix": "/", "origin": "o", "cache": \#(cache)}]"#)
        let a = try AdminEdge(tenants: [t])
        defer { a.stop() }
        try script(o, "/d", #"[{"status": 200, "headers": {}, "body": "d"}]"#)
        _ = try request(a.port, "/d", host: "t.test", headers: ["X-Device: phone", "Cookie: lang=de"])
        let e = try a.ctlJSON("explain http://t.test/d -H 'X-Device: phone' -H 'Cookie: lang=de'")
        #expect(e["stored"] as? Bool == true)
        #expect(e["route_key"] as? [String] == ["x-device", "cookie:lang", "query: only id"])
        let l = e["route_lifetimes"] as? [String: Int] ?? [:]
        #expect(l["default_ttl"] == 120 && l["ttl_override 404"] == 30 && l["negative_ttl"] == 10, "\(l)")
        let v = (e["variants"] as? [[String: Any]])?.first ?? [:]
        #expect(v["freshness_source"] as? String == "route default_ttl")
        #expect(v["vary"] as? [String] == ["x-device", "cookie:lang"])
        let other = try a.ctlJSON("explain http://t.test/d -H 'X-Device: tablet' -H 'Cookie: lang=de'")
        #expect(other["stored"] as? Bool == false)
        let bypassed = try a.ctlJSON("explain http://t.test/d -H 'Cookie: sessionid=1'")
        #expect(bypassed["bypass"] as? String == "a bypass cookie")
        let text = try a.ctl("explain http://t.test/d -H 'X-Device: phone' -H 'Cookie: lang=de'").1
        #expect(text.contains("keyed on: x-device; cookie:lang") && text.contains("default_ttl 120s"), "\(text)")
    }

    @Test func reloadThroughTheAPIKeepsServingOnABadFile() throws {
        let o = try Origin()
        let a = try AdminEdge(tenants: [cacheTenant("t", o)])
        defer { a.stop() }
        let c = try Client(port: a.port)
        func ok() throws -> Bool {
            c.send("GET /echo HTTP/1.1\r\nHost: t.test\r\n\r\n")
            return try c.readResponse().status == 200
        }
        #expect(try ok())
        let bad = a.edge.dir.appendingPathComponent("tenants/t9.json").path
        try writeFile(bad, #"{"name": "x", "hosts": ["x.test"], "origins": {"o": {"servers": ["\#(o.address)"]}}, "routes": [{"prefix": "/", "origin": "nope"}]}"#)
        let (status, out) = try a.ctl("reload")
        #expect(status == 1)
        #expect(out.contains("t9.json") && out.contains("routes[0].origin"), "\(out)")
        #expect(try ok())
        try writeFile(bad, cacheTenant("x", o))
        let (status2, out2) = try a.ctl("reload")
        #expect(status2 == 0, "\(out2)")
        #expect(try ok())   // same connection, across both reloads
        let x = try request(a.port, "/echo", host: "x.test")
        #expect(x.status == 200, "x.test after reload: \(x.status) \(x.text)")
    }

    @Test func everyCommandHasHelpAndAMissingEdgedIsAClearError() throws {
        let ctl = try builtBinary("edgectl")
        for command in ["purge", "stats", "tenants", "explain", "reload", "metrics"] {
            let (status, out) = try shell("'\(ctl)' \(command) --help")
            #expect(status == 0 && out.hasPrefix("usage: edgectl \(command)"), "\(command): \(out)")
        }
        let (status, out) = try shell("'\(ctl)' --state /nonexistent-edge-state stats")
        #expect(status == 1 && out.contains("cannot reach edged at /nonexistent-edge-state/admin.sock"), "\(out)")
        #expect(try shell("'\(ctl)' frobnicate").0 == 2)
    }

    @Test func edgectlFacingABrokenOrHostileNode() throws {
        let ctl = try builtBinary("edgectl")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edge-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let token = dir.appendingPathComponent("token").path
        try writeFile(token, "s3cret-token-0123456789\n")
        let script = repoRoot.appendingPathComponent("tools/testclient/hostile_admin.py").path
        func node(_ mode: String) throws -> ChildProcess {
            let p = try ChildProcess(["python3", script, mode])
            return p
        }
        func run(_ mode: String, _ extra: String = "") throws -> (Int32, String) {
            let p = try node(mode)
            defer { p.stop() }
            let port = p.readLine()
            return try shell("timeout 60 '\(ctl)' --url http://127.0.0.1:\(port) --token-file '\(token)' \(extra) stats")
        }
        // Terminal escapes in the node's message never reach the terminal.
        let (s1, ansi) = try run("ansi")
        #expect(s1 == 1 && ansi.contains("gone"), "\(ansi)")
        #expect(!ansi.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x9B }, "\(ansi.debugDescription)")
        // A huge answer is refused, not read into memory.
        let (s2, big) = try run("big")
        #expect(s2 == 1 && big.contains("larger than 16 MiB"), "\(big)")
        // A node that never answers, or answers a byte at a time forever, meets one overall deadline.
        let (s3, silent) = try run("silent", "--timeout 1")
        #expect(s3 == 1 && silent.contains("no answer within 1.0 s"), "\(silent)")
        let (s4, trickle) = try run("trickle", "--timeout 2")
        #expect(s4 == 1 && trickle.contains("no answer within 2.0 s"), "\(trickle)")
        // A reset is reported as one.
        let (s5, reset) = try run("reset")
        #expect(s5 == 1 && reset.contains("connection reset by the node"), "\(reset)")
        // A token file with a line break inside would inject fields: refused before connecting.
        let bad = dir.appendingPathComponent("bad-token").path
        try writeFile(bad, "s3cret-token-0123456789\r\nX-Evil: 1\n")
        let (s6, inj) = try shell("'\(ctl)' --url http://127.0.0.1:1 --token-file '\(bad)' stats")
        #expect(s6 == 1 && inj.contains("one line of printable characters"), "\(inj)")
        // Only loopback or private URLs: a token is never sent in clear across the internet.
        for addr in ["0.0.0.0:1", "8.8.8.8:1", "172.32.0.1:1"] {
            let (s7, remote) = try shell("'\(ctl)' --url http://\(addr) --token-file '\(token)' stats")
            #expect(s7 == 1 && remote.contains("not a loopback or private address"), "\(remote)")
        }
        let (s8, tls) = try shell("'\(ctl)' --url https://127.0.0.1:1 --token-file '\(token)' stats")
        #expect(s8 == 1 && tls.contains("plain HTTP on loopback or a private network"), "\(tls)")
    }

    @Test func slowTCPPeersNeverHoldTheAdminAPI() throws {
        // Audit: one connection at a time, read before the token check: an idle TCP
        // peer delayed edgectl on the Unix socket by 5 s, ten made calls time out.
        let o = try Origin()
        let a = try AdminEdge(tenants: [cacheTenant("t", o)], tcpToken: "s3cret-token-0123456789")
        defer { a.stop() }
        let port = a.tcpPort
        let tokenFile = try #require(a.tokenFile)
        let auth = "Authorization: Bearer s3cret-token-0123456789"
        // Eight authenticated peers whose bodies never come (each may take the 10 s a
        // request has), and four unauthenticated ones that send nothing (together
        // with the calls below, fewer than the 16 a listener serves at once).
        var held: [Client] = []
        for _ in 0..<8 {
            let c = try Client(port: port)
            c.send("POST /v1/purge HTTP/1.1\r\nHost: admin\r\n\(auth)\r\nContent-Length: 100\r\n\r\n")
            held.append(c)
        }
        var idle: [Client] = []
        for _ in 0..<4 { idle.append(try Client(port: port)) }
        // The Unix socket and another authenticated TCP call are answered while all of them are held.
        let (st, out) = try a.ctl("stats")
        #expect(st == 0, "\(out)")
        #expect(try request(port, "GET", "/v1/stats", host: "admin", headers: [auth]).status == 200)
        for c in held { #expect(c.isOpenWithNothingToRead(), "a held connection was answered or dropped early") }
        // A wrong token is answered once the head is in, without waiting for the body.
        let w = try Client(port: port)
        w.send("POST /v1/purge HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer nope\r\nContent-Length: 100\r\n\r\n")
        let denied = try w.readResponse()
        #expect(denied.status == 401, "\(denied.status) \(denied.text)")
        // Unauthenticated peers that send no head are dropped (their short head deadline).
        for c in idle { #expect(c.closedByPeer()) }
    }

    @Test func adminAPIRejectsBadInputAndRequiresATokenOnTCP() throws {
        let o = try Origin()
        let a = try AdminEdge(tenants: [cacheTenant("t", o)], tcpToken: "s3cret-token-0123456789")
        defer { a.stop() }
        let port = a.tcpPort
        let tokenFile = try #require(a.tokenFile)
        let noToken = try request(port, "GET", "/v1/stats", host: "admin")
        #expect(noToken.status == 401)
        // A query of bare "=" signs, before any token is checked, is read, not crashed on
        // (the admin fuzz target's first finding), and the API keeps answering.
        #expect(try request(port, "GET", "/v1/stats?=&=x&a", host: "admin").status == 401)
        let wrong = try request(port, "GET", "/v1/stats", host: "admin", headers: ["Authorization: Bearer nope"])
        #expect(wrong.status == 401)
        let good = try request(port, "GET", "/v1/stats", host: "admin", headers: ["Authorization: Bearer s3cret-token-0123456789"])
        #expect(good.status == 200)
        let auth = "Authorization: Bearer s3cret-token-0123456789"
        #expect(try request(port, "POST", "/v1/purge", host: "admin", headers: [auth], body: "{").status == 400)
        #expect(try request(port, "POST", "/v1/purge", host: "admin", headers: [auth], body: #"{"urls": "x"}"#).status == 400)
        #expect(try request(port, "POST", "/v1/purge", host: "admin", headers: [auth], body: #"{"urls": ["ftp://t.test/"]}"#).status == 400)
        #expect(try request(port, "POST", "/v1/purge", host: "admin", headers: [auth], body: #"{"bogus": 1}"#).status == 400)
        #expect(try request(port, "GET", "/v1/purge", host: "admin", headers: [auth]).status == 405)
        #expect(try request(port, "GET", "/v2/nothing", host: "admin", headers: [auth]).status == 404)
        // edgectl over TCP with the token file.
        let (status, out) = try shell("'\(try builtBinary("edgectl"))' --url http://127.0.0.1:\(port) --token-file '\(tokenFile)' tenants")
        #expect(status == 0 && out.contains("hosts: t.test"), "\(out)")
        // The Unix socket is the operator's only: mode 0600.
        var st = stat()
        #expect(stat(a.edge.stateDir + "/admin.sock", &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        // The TCP listener refuses non-loopback addresses.
        #expect(throws: AdminError.self) { _ = try AdminServer(edge: a.edge.server, socketPath: a.edge.dir.appendingPathComponent("x.sock").path,
                                                                tcp: "0.0.0.0:0", tokenFile: tokenFile) { "" } }
    }
}
