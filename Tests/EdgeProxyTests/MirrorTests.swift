import Foundation
import Testing
import Glibc
import EdgeIO
@testable import EdgeProxy

/// Mirroring (shadowing) with real origins: copies reach the shadow group
/// with their bodies, a share is a share, and a dead or stuck shadow changes
/// nothing for clients.
@Suite(.serialized, .timeLimit(.minutes(3))) struct MirrorTests {
    func edge(_ main: Origin, shadow: String, mirror: String, cache: String = #"{"default_ttl": 60}"#) throws -> Edge {
        try Edge(tenants: [
            tenantJSON(name: "m", hosts: ["m.test"],
                       origins: #"{"main": {"servers": ["\#(main.address)"]}, "shadow": {"servers": ["\#(shadow)"]}}"#,
                       routes: #"[{"prefix": "/", "origin": "main", "cache": \#(cache), "mirror": \#(mirror)}, {"prefix": "/plain/", "origin": "main"}]"#),
        ])
    }

    /// What the origin's default handler answered so far.
    func seen(_ o: Origin) throws -> [[String: Any]] {
        let r = try request(o.port, "/__seen", host: "o")
        return (try JSONSerialization.jsonObject(with: Data(r.body)) as? [[String: Any]]) ?? []
    }

    /// Waits (up to 10 s) until `cond` holds on the shadow's requests.
    func waitSeen(_ o: Origin, _ cond: ([[String: Any]]) -> Bool) throws -> [[String: Any]] {
        var s = try seen(o)
        for _ in 0..<100 where !cond(s) {
            usleep(100_000)
            s = try seen(o)
        }
        return s
    }

    func counts(_ e: Edge) throws -> TenantStats.MirrorCount? {
        try e.server.tenantStats("m")[0].mirrors.first
    }

    @Test func copiesReachTheShadowWithTheirBodiesHitsIncluded() throws {
        let main = try Origin(name: "main"), shadow = try Origin(name: "shadow")
        defer { main.stop(); shadow.stop() }
        let e = try edge(main, shadow: shadow.address, mirror: #"{"origin": "shadow", "max_body": "4KiB"}"#)
        defer { e.stop() }
        // A GET twice: a miss, then a hit; both are the route's traffic, both copied.
        for _ in 0..<2 {
            let r = try request(e.port, "/m/get?q=1", host: "m.test", headers: ["X-Trace: t1"])
            #expect(r.status == 200 && r.json["origin"] as? String == "main")
        }
        // Bodies: one with a length, one chunked, one over max_body (not copied).
        let body = String(repeating: "mirror-body-", count: 200)   // 2,400 bytes
        #expect(try request(e.port, "POST", "/m/post", host: "m.test", body: body).status == 200)
        let c = try Client(port: e.port)
        c.send("PUT /m/chunked HTTP/1.1\r\nHost: m.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        #expect(try c.readResponse().status == 200)
        #expect(try request(e.port, "POST", "/m/big", host: "m.test", body: String(repeating: "b", count: 5000)).status == 200)
        // The route without a mirror sends no copies.
        #expect(try request(e.port, "/plain/x", host: "m.test").status == 200)

        let got = try waitSeen(shadow) { $0.count >= 4 }
        usleep(300_000)
        let all = try seen(shadow)
        #expect(all.count == 4, "two GETs, the POST and the chunked PUT: \(all.map { $0["path"] ?? "?" })")
        #expect(got.filter { $0["path"] as? String == "/m/get?q=1" && $0["method"] as? String == "GET" }.count == 2)
        let headers = (got.first { $0["path"] as? String == "/m/get?q=1" }?["headers"] as? [[String]]) ?? []
        #expect(headers.contains { $0[0].lowercased() == "x-trace" && $0[1] == "t1" }, "the client's fields go along: \(headers)")
        #expect(headers.contains { $0[0].lowercased() == "host" && $0[1] == "m.test" })
        #expect(headers.contains { $0[0].lowercased() == "x-forwarded-for" })
        let mainSeen = try seen(main)
        for path in ["/m/post", "/m/chunked"] {
            let s = got.first { $0["path"] as? String == path }, m = mainSeen.first { $0["path"] as? String == path }
            #expect(s != nil && s?["sha256"] as? String == m?["sha256"] as? String, "\(path): the shadow got the body the origin got")
        }
        #expect(got.first { $0["path"] as? String == "/m/chunked" }?["body_length"] as? Int == 11)
        #expect(got.first { $0["path"] as? String == "/m/post" }?["body_length"] as? Int == 2400)
        #expect(!all.contains { $0["path"] as? String == "/m/big" || $0["path"] as? String == "/plain/x" })
        #expect(mainSeen.filter { $0["path"] as? String == "/m/get?q=1" }.count == 1, "the second GET was a hit")

        let n = try #require(try counts(e))
        #expect(n.route == "/" && n.group == "shadow")
        #expect(n.queued == 4 && n.answered == 4 && n.failed == 0 && n.dropped == 1, "\(n)")
        let metrics = e.server.metricsText()
        #expect(metrics.contains(#"edge_mirror_requests_total{tenant="m",route="/",group="shadow",result="answered"} 4"#), "\(metrics.split(separator: "\n").filter { $0.contains("mirror") })")
    }

    @Test func aShareIsCopied() throws {
        let main = try Origin(name: "main"), shadow = try Origin(name: "shadow")
        defer { main.stop(); shadow.stop() }
        let e = try edge(main, shadow: shadow.address, mirror: #"{"origin": "shadow", "percent": 25}"#, cache: #"{"enabled": false}"#)
        defer { e.stop() }
        let c = try Client(port: e.port)
        for i in 0..<400 {
            c.send("GET /share/\(i) HTTP/1.1\r\nHost: m.test\r\n\r\n")
            #expect(try c.readResponse().status == 200)
        }
        var n = try #require(try counts(e))
        for _ in 0..<100 where n.answered < n.queued { usleep(100_000); n = try #require(try counts(e)) }
        #expect((60...140).contains(n.queued), "about 100 of 400: \(n)")
        #expect(n.answered == n.queued && n.dropped == 0 && n.failed == 0, "\(n)")
        #expect(try seen(shadow).count == n.queued)
        #expect(try seen(main).count == 400)
        // Copies travel on kept-alive connections, not one each.
        let conns = try shadow.stats().connections
        #expect(conns >= 1 && conns <= 10, "\(conns) connections for \(n.queued) copies")
    }

    @Test func aDeadShadowChangesNothingForClients() throws {
        let main = try Origin(name: "main")
        defer { main.stop() }
        let dead = try freePort()   // nothing listens there
        let e = try edge(main, shadow: "127.0.0.1:\(dead)", mirror: #"{"origin": "shadow"}"#, cache: #"{"enabled": false}"#)
        defer { e.stop() }
        for i in 0..<50 {
            let r = try request(e.port, "/dead/\(i)", host: "m.test")
            #expect(r.status == 200 && r.json["origin"] as? String == "main")
        }
        var n = try #require(try counts(e))
        for _ in 0..<100 where n.failed + n.dropped < 50 { usleep(100_000); n = try #require(try counts(e)) }
        #expect(n.failed + n.dropped == 50 && n.answered == 0, "\(n)")
    }

    @Test func aStuckShadowNeverHoldsTheMainPath() throws {
        let main = try Origin(name: "main")
        defer { main.stop() }
        // A shadow that accepts connections (the kernel's backlog) and never answers.
        let stuck = try TCP.listen(SocketAddress("127.0.0.1:0")!, reusePort: false)
        defer { close(stuck) }
        let port = Int(TCP.localAddress(stuck)!.port)
        let e = try edge(main, shadow: "127.0.0.1:\(port)", mirror: #"{"origin": "shadow"}"#, cache: #"{"enabled": false}"#)
        defer { e.stop() }
        // Well past what the sender keeps in flight: every request is answered
        // by the main origin while the copies wait on the shadow.
        let c = try Client(port: e.port)
        for i in 0..<300 {
            c.send("POST /stuck/\(i) HTTP/1.1\r\nHost: m.test\r\nContent-Length: 3\r\n\r\nabc")
            let r = try c.readResponse()
            #expect(r.status == 200 && r.json["origin"] as? String == "main")
        }
        let n = try #require(try counts(e))
        #expect(n.queued + n.dropped == 300 && n.answered == 0, "\(n)")
        #expect(try seen(main).count == 300)
    }
}

/// A port nothing listens on (bound, then closed).
func freePort() throws -> Int {
    let fd = try TCP.listen(SocketAddress("127.0.0.1:0")!, reusePort: false)
    let port = Int(TCP.localAddress(fd)!.port)
    close(fd)
    return port
}
