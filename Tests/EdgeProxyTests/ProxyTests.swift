// Integration tests: a real edge server, real python origins, real sockets.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy
import EdgeHTTP

@Suite(.serialized, .timeLimit(.minutes(3))) struct RoutingTests {
    @Test func hostVariantsReachTheOriginNormalized() throws {
        // Audit: `A.TEST.:1337` was keyed like `a.test` but forwarded as sent, so an
        // origin building links from Host poisoned the shared entry.
        let o = try Origin()
        let edge = try Edge(tenants: [tenantJSON(name: "h", hosts: ["a.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                 routes: #"[{"prefix": "/", "origin": "o"}]"#)])
        defer { edge.stop() }
        for host in ["A.TEST.:1337", "a.test:", "a.Test"] {
            let r = try request(edge.port, "/echo/h", host: host)
            #expect(r.status == 200, "\(host)")
            #expect(r.echoedHeader("Host") == ["a.test"], "\(host)")
            #expect(r.echoedHeader("X-Forwarded-Host") == ["a.test"], "\(host)")
        }
        // The absolute form's authority is the host too.
        let c = try Client(port: edge.port)
        c.send("GET http://A.test.:99/echo/abs HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n")
        let abs = try c.readResponse()
        #expect(abs.echoedHeader("Host") == ["a.test"])
        for bad in ["a.test:0", "a.test:65536", "a.test:123456789012345678901", "a.test:80:80", "a.test%2f"] {
            #expect(try request(edge.port, "/echo/bad", host: bad).status == 400, "\(bad)")
        }
        #expect(try o.stats().requests == 4)
    }

    @Test func overrideClaimsFromUntrustedClientsNeverReachTheOrigin() throws {
        // Audit: X-Original-URL and friends passed through; an origin honouring them
        // served /admin's body under a public URL's cache entry.
        let o = try Origin()
        let plain = tenantJSON(name: "p", hosts: ["p.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                               routes: #"[{"prefix": "/", "origin": "o"}]"#)
        let allowing = tenantJSON(name: "q", hosts: ["q.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                  routes: #"[{"prefix": "/", "origin": "o"}]"#, extra: #""pass_request_headers": ["X-Original-URL"]"#)
        let claims = OverrideFields.names.map { name in "\(name): claim" }
        let edge = try Edge(tenants: [plain, allowing])
        defer { edge.stop() }
        let r = try request(edge.port, "/echo/o", host: "p.test", headers: claims + ["X-Kept: yes", "X_Forwarded_For: 6.6.6.6", "X_Real_IP: 6.6.6.6", "X_Api_Key: k"])
        #expect(r.status == 200)
        // "_" spellings of fields edge sets or removes are dropped (a CGI-style gateway maps both to one name); others pass.
        #expect(r.echoedHeader("X_Forwarded_For").isEmpty && r.echoedHeader("X_Real_IP").isEmpty)
        #expect(r.echoedHeader("X_Api_Key") == ["k"])
        for name in OverrideFields.names where name != "x-real-ip" {
            #expect(r.echoedHeader(name).isEmpty, "\(name) reached the origin")
        }
        #expect(r.echoedHeader("X-Real-IP") == ["127.0.0.1"])   // set by edge, the client's claim dropped
        #expect(r.echoedHeader("X-Kept") == ["yes"])
        let q = try request(edge.port, "/echo/q", host: "q.test", headers: claims)
        #expect(q.echoedHeader("X-Original-URL") == ["claim"])   // the tenant's allow-list
        #expect(q.echoedHeader("X-Rewrite-URL").isEmpty)
        #expect(q.echoedHeader("X-Real-IP") == ["127.0.0.1"])
        edge.stop()
        // A trusted proxy in front of edge speaks for its clients.
        let trusted = try Edge(tenants: [plain], server: #"{"trusted_proxies": ["127.0.0.1"]}"#)
        defer { trusted.stop() }
        let t = try request(trusted.port, "/echo/t", host: "p.test", headers: claims)
        #expect(t.echoedHeader("X-Original-URL") == ["claim"])
        #expect(t.echoedHeader("X-Real-IP") == ["claim"])
    }

    @Test func routesByHostAndPathAndRewritesHeaders() throws {
        let api = try Origin(name: "api")
        let web = try Origin(name: "web")
        let edge = try Edge(tenants: [
            tenantJSON(name: "shop", hosts: ["shop.test", "*.shop.test"],
                       origins: #"{"web": {"servers": ["\#(web.address)"]}, "api": {"servers": ["http://\#(api.address)"]}}"#,
                       routes: #"""
                       [{"prefix": "/", "origin": "web"},
                        {"prefix": "/api/", "origin": "api", "strip_prefix": true,
                         "request_headers": {"add": {"X-Route": "api"}, "remove": ["Cookie"]},
                         "response_headers": {"add": {"X-Edge": "1"}, "remove": ["X-Origin-Name"]}}]
                       """#),
            tenantJSON(name: "blog", hosts: ["blog.test"],
                       origins: #"{"o": {"servers": ["\#(api.address)"]}}"#,
                       routes: #"[{"prefix": "/", "origin": "o"}]"#),
        ])
        defer { edge.stop() }

        let r1 = try request(edge.port, "/index?x=1", host: "shop.test")
        #expect(r1.status == 200)
        #expect(r1.json["origin"] as? String == "web")
        #expect(r1.json["path"] as? String == "/index?x=1")

        let r2 = try request(edge.port, "/api/users/7", host: "www.shop.test", headers: ["Cookie: a=b", "X-Forwarded-For: 6.6.6.6", "X-Forwarded-Host: evil"])
        #expect(r2.status == 200)
        #expect(r2.json["origin"] as? String == "api")
        #expect(r2.json["path"] as? String == "/users/7")
        #expect(r2.echoedHeader("Host") == ["www.shop.test"])
        #expect(r2.echoedHeader("X-Route") == ["api"])
        #expect(r2.echoedHeader("Cookie").isEmpty)
        #expect(r2.echoedHeader("X-Forwarded-For") == ["127.0.0.1"])   // client's value replaced, not trusted
        #expect(r2.echoedHeader("X-Forwarded-Host") == ["www.shop.test"])
        #expect(r2.echoedHeader("X-Forwarded-Proto") == ["http"])
        #expect(r2.echoedHeader("Via") == ["1.1 edge"])
        #expect(r2.header("X-Edge") == "1")
        #expect(r2.header("X-Origin-Name") == nil)

        // Most specific prefix wins; "/api" without the slash is not under "/api/".
        let r3 = try request(edge.port, "/api", host: "shop.test")
        #expect(r3.json["origin"] as? String == "web")

        // Host matching ignores case, port and a trailing dot; wildcards cover one label only.
        #expect(try request(edge.port, "/x", host: "BLOG.test.:8080").json["origin"] as? String == "api")
        #expect(try request(edge.port, "/x", host: "a.b.shop.test").status == 421)

        // Dot-segments are resolved before routing: this is not an /api/ request.
        let r4 = try request(edge.port, "/api/../secret", host: "shop.test")
        #expect(r4.json["origin"] as? String == "web")
        #expect(r4.json["path"] as? String == "/secret")
        let r5 = try request(edge.port, "/%61pi/%2e%2e/api/x", host: "shop.test")
        #expect(r5.json["origin"] as? String == "api")
        #expect(r5.json["path"] as? String == "/x")
    }

    @Test func unknownHostGets421WithoutOriginContact() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [tenantJSON(name: "a", hosts: ["a.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                 routes: #"[{"prefix": "/", "origin": "o"}]"#)])
        defer { edge.stop() }
        let r = try request(edge.port, "/", host: "other.test")
        #expect(r.status == 421)
        let r2 = try request(edge.port, "http://other.test/", host: "a.test")   // absolute-form wins over Host
        #expect(r2.status == 421)
        let s = try o.stats()
        #expect(s.requests == 0)
        #expect(s.connections == 0)
    }

    @Test func defaultTenantCatchesUnknownHosts() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [tenantJSON(name: "a", hosts: ["a.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                 routes: #"[{"prefix": "/", "origin": "o"}]"#, extra: #""default": true"#)])
        defer { edge.stop() }
        let r = try request(edge.port, "/", host: "whatever.test")
        #expect(r.status == 200, "\(r.status) \(r.text)")
    }
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct ConnectionTests {
    func singleOrigin(_ o: Origin, limits: String = "", server: String? = nil) throws -> Edge {
        try Edge(tenants: [tenantJSON(name: "t", hosts: ["t.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                      routes: #"[{"prefix": "/", "origin": "o"}]"#, extra: limits)], server: server)
    }

    @Test func oneAddressGetsAtMostItsShareOfConnections() throws {
        // Audit: 15,000 idle sockets from one address were all accepted.
        let o = try Origin()
        let edge = try Edge(tenants: [tenantJSON(name: "t", hosts: ["t.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                 routes: #"[{"prefix": "/", "origin": "o"}]"#)],
                            server: #"{"limits": {"max_connections_per_ip": 5}}"#, workers: 2)
        defer { edge.stop() }
        // Five connections, each proven accepted by an answer; across both workers.
        var open = try answeredConnections(edge.port, 5, host: "t.test")
        try withExtendedLifetime(open) {
            let sixth = try Client(port: edge.port)
            sixth.send("GET /echo/6 HTTP/1.1\r\nHost: t.test\r\n\r\n")
            #expect(sixth.closedByPeer(), "a sixth connection from the same address was served")
        }
        // One closes; a new one is accepted again.
        open.removeFirst()
        try waitUntil("a new connection is served again") { (try? answeredConnections(edge.port, 1, host: "t.test")) != nil }
        edge.stop()
        // Trusted proxies carry many clients: no cap for them.
        let trusted = try Edge(tenants: [tenantJSON(name: "t", hosts: ["t.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                    routes: #"[{"prefix": "/", "origin": "o"}]"#)],
                               server: #"{"limits": {"max_connections_per_ip": 2}, "trusted_proxies": ["127.0.0.1"]}"#)
        defer { trusted.stop() }
        #expect(try answeredConnections(trusted.port, 6, host: "t.test").count == 6)
    }

    /// The count in `edge_connections_parked_total`.
    func parkedTotal(_ edge: Edge) -> Int {
        let line = edge.server.metricsText().split(separator: "\n").first { $0.hasPrefix("edge_connections_parked_total ") }
        return line.flatMap { Int($0.split(separator: " ")[1]) } ?? -1
    }

    @Test func aParkedConnectionCostsItsRecordAndAFdSlot() {
        // What an idle keep-alive connection costs once parked: its record and its
        // fd slot (a payload on Slot would have made every fd's slot 40 bytes).
        #expect(MemoryLayout<ParkedClient>.stride <= 32)
        #expect(MemoryLayout<Slot>.stride == 8)
    }

    @Test func idleConnectionsParkAndComeBackAsTheyWere() throws {
        // An idle keep-alive connection is parked as a small record after a sweep
        // (its object freed); its next request brings it back, and its address's
        // count, its idle deadline and its place are kept.
        let o = try Origin()
        let edge = try singleOrigin(o, server: #"{"limits": {"max_connections_per_ip": 3, "keepalive_timeout": "2s"}}"#)
        defer { edge.stop() }
        let open = try answeredConnections(edge.port, 3, host: "t.test")
        try waitUntil("the three idle connections to be parked") { parkedTotal(edge) >= 3 }
        // Parked, they still count against their address: a fourth is refused.
        let fourth = try Client(port: edge.port)
        fourth.send("GET /echo/4 HTTP/1.1\r\nHost: t.test\r\n\r\n")
        #expect(fourth.closedByPeer(), "a fourth connection from the address was served while three were parked")
        // Each parked connection answers its next requests, pipelined ones too.
        for (i, c) in open.enumerated() {
            c.send("GET /echo/again-\(i) HTTP/1.1\r\nHost: t.test\r\n\r\nGET /bytes/7 HTTP/1.1\r\nHost: t.test\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.status == 200)
            #expect(r.json["path"] as? String == "/echo/again-\(i)")
            let r2 = try c.readResponse()
            #expect(r2.status == 200 && r2.body.count == 7)
        }
        // Parked again, they time out as idle connections do (closed by edge), and
        // their address's count is given back: three new connections are served.
        try waitUntil("the connections to be parked again") { parkedTotal(edge) >= 6 }
        for c in open { #expect(c.closedByPeer(), "a parked connection outlived its keep-alive timeout") }
        try waitUntil("the address's connections to be given back") { (try? answeredConnections(edge.port, 3, host: "t.test")) != nil }
    }

    @Test func keepAliveReusesOriginConnections() throws {
        let o = try Origin()
        let edge = try singleOrigin(o)
        defer { edge.stop() }
        let c = try Client(port: edge.port)
        for i in 0..<20 {
            c.send("GET /echo/\(i) HTTP/1.1\r\nHost: t.test\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.status == 200)
            #expect(r.json["path"] as? String == "/echo/\(i)")
        }
        for _ in 0..<5 { #expect(try request(edge.port, "/bytes/10", host: "t.test").status == 200) }
        let s = try o.stats()
        #expect(s.requests == 25)
        #expect(s.connections == 1)
    }

    @Test func pipelinedRequestsAnswerInOrder() throws {
        let o = try Origin()
        let edge = try singleOrigin(o)
        defer { edge.stop() }
        let c = try Client(port: edge.port)
        c.send("GET /echo/1 HTTP/1.1\r\nHost: t.test\r\n\r\nGET /bytes/5 HTTP/1.1\r\nHost: t.test\r\n\r\nHEAD /echo/3 HTTP/1.1\r\nHost: t.test\r\n\r\nGET /chunked/2500 HTTP/1.1\r\nHost: t.test\r\n\r\nGET /echo/5 HTTP/1.1\r\nHost: t.test\r\n\r\n")
        let r1 = try c.readResponse()
        let r2 = try c.readResponse()
        let r3 = try c.readResponse(headRequest: true)
        let r4 = try c.readResponse()
        let r5 = try c.readResponse()
        #expect(r1.json["path"] as? String == "/echo/1")
        #expect(r2.text == "xxxxx")
        #expect(r3.status == 200 && r3.body.isEmpty && r3.header("Content-Length") != nil)
        #expect(r4.body.count == 2500 && r4.header("Transfer-Encoding") == "chunked")
        #expect(r5.json["path"] as? String == "/echo/5")
    }

    @Test func responseFramingIsRewritten() throws {
        let o = try Origin()
        let edge = try singleOrigin(o)
        defer { edge.stop() }
        // Origin closes to delimit: an HTTP/1.1 client gets chunked and keeps its connection.
        let c = try Client(port: edge.port)
        c.send("GET /close/3000 HTTP/1.1\r\nHost: t.test\r\n\r\n")
        let r = try c.readResponse()
        #expect(r.body.count == 3000)
        #expect(r.header("Transfer-Encoding") == "chunked")
        c.send("GET /bytes/3 HTTP/1.1\r\nHost: t.test\r\n\r\n")
        #expect(try c.readResponse().text == "xxx")
        // An HTTP/1.0 client gets the body delimited by close.
        let c2 = try Client(port: edge.port)
        c2.send("GET /chunked/1500 HTTP/1.0\r\nHost: t.test\r\n\r\n")
        let r2 = try c2.readResponse()
        #expect(r2.header("Transfer-Encoding") == nil)
        #expect(r2.body.count == 1500)
    }

    @Test func requestBodiesStreamBothFramings() throws {
        let o = try Origin()
        let edge = try singleOrigin(o)
        defer { edge.stop() }
        let c = try Client(port: edge.port)
        let payload = String(repeating: "p", count: 100_000)
        c.send("POST /upload HTTP/1.1\r\nHost: t.test\r\nContent-Length: \(payload.utf8.count)\r\n\r\n" + payload)
        let r = try c.readResponse()
        #expect(r.json["length"] as? Int == 100_000)
        c.send("PUT /upload HTTP/1.1\r\nHost: t.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: v\r\n\r\n")
        let r2 = try c.readResponse()
        #expect(r2.json["length"] as? Int == 11)
        // Expect: 100-continue is answered by edge before the body is sent.
        c.send("POST /upload HTTP/1.1\r\nHost: t.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        let interim = try c.readResponse()
        #expect(interim.status == 100)
        c.send("abcd")
        let r3 = try c.readResponse()
        #expect(r3.status == 200)
        #expect(r3.json["length"] as? Int == 4)
    }

    @Test func largeBodiesStreamWithBoundedMemory() throws {
        // The RSS of an edged child process (the test process runs other suites meanwhile).
        let o = try Origin()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edged-rss-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/tenants", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeFile(dir + "/tenants/t.json", tenantJSON(name: "t", hosts: ["t.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                           routes: #"[{"prefix": "/", "origin": "o"}]"#, extra: #""limits": {"max_body": "1GiB"}"#))
        let child = try ChildProcess(["/bin/sh", "-c", "exec '\(try edgedPath())' --tenants '\(dir)/tenants' --http 127.0.0.1:0 --workers 1 --access-log off --state '\(dir)/state' 2>&1"])
        defer { child.stop() }
        let port = listeningPorts(child.read(until: "tenant(s)\n")).http
        try #require(port > 0)
        func rss() -> Int { rssKiB(pid: child.pid) }
        let c = try Client(port: port, timeoutSeconds: 60)
        c.send("GET /echo/warm HTTP/1.1\r\nHost: t.test\r\n\r\n")
        #expect(try c.readResponse().status == 200)
        let before = rss()
        try #require(before > 0)
        // 256 MiB download.
        c.send("GET /stream/268435456 HTTP/1.1\r\nHost: t.test\r\n\r\n")
        let r = try c.readResponse(discardBody: true)
        #expect(r.status == 200)
        #expect(r.header("Content-Length") == "268435456")
        let afterDownload = rss()
        // 64 MiB upload, sent in pieces while edge streams it on.
        c.send("POST /upload HTTP/1.1\r\nHost: t.test\r\nContent-Length: 67108864\r\n\r\n")
        let block = [UInt8](repeating: 117, count: 1 << 20)
        for _ in 0..<64 { c.send(block) }
        let up = try c.readResponse()
        #expect(up.json["length"] as? Int == 67_108_864)
        let afterUpload = rss()
        // Far below the bodies' sizes: nothing buffered whole.
        #expect(afterDownload - before < 32 * 1024, "RSS grew \(afterDownload - before) KiB for a 256 MiB download")
        #expect(afterUpload - before < 32 * 1024, "RSS grew \(afterUpload - before) KiB after a 64 MiB upload")
    }

    @Test func smugglingAttemptsAreRefusedAndClosed() throws {
        let o = try Origin()
        let edge = try singleOrigin(o)
        defer { edge.stop() }
        let cases = [
            "POST / HTTP/1.1\r\nHost: t.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: t.test\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: t.test\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd",
            "POST / HTTP/1.1\r\nHost: t.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: t.test\r\nX: a\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: t.test\r\nX : a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: t.test\r\nX: a\rb\r\n\r\n",
            "GET /a#frag HTTP/1.1\r\nHost: t.test\r\n\r\n",
            "GET /%zz HTTP/1.1\r\nHost: t.test\r\n\r\n",
        ]
        for text in cases {
            let c = try Client(port: edge.port)
            c.send(text)
            let r = try c.readResponse()
            #expect(r.status == 400, "\(text.debugDescription)")
            #expect(r.header("Connection") == "close")
            #expect(c.closedByPeer(), "connection stays open after \(text.debugDescription)")
        }
        #expect(try o.stats().requests == 0)
        // A bad chunk arrives after the head was already streamed on: still 400 and close.
        let c = try Client(port: edge.port)
        c.send("POST /upload HTTP/1.1\r\nHost: t.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        let r = try c.readResponse()
        #expect(r.status == 400)
        #expect(c.closedByPeer())
    }

    @Test func limitsAnswerWithTheRightStatus() throws {
        let o = try Origin()
        let edge = try singleOrigin(o, limits: #""limits": {"max_body": "1KiB"}"#,
                                    server: #"{"limits": {"request_line": "1KiB", "header_block": "4KiB", "field": "2KiB"}}"#)
        defer { edge.stop() }
        #expect(try request(edge.port, "/" + String(repeating: "a", count: 2000), host: "t.test").status == 414)
        #expect(try request(edge.port, "/", host: "t.test", headers: ["X-Big: " + String(repeating: "b", count: 3000)]).status == 431)
        #expect(try request(edge.port, "/", host: "t.test", headers: (0..<10).map { "X-\($0): " + String(repeating: "c", count: 1000) }).status == 431)
        #expect(try request(edge.port, "POST", "/upload", host: "t.test", body: String(repeating: "d", count: 2000)).status == 413)
        #expect(try request(edge.port, "TRACE", "/", host: "t.test").status == 405)
        #expect(try request(edge.port, "/", host: "t.test", headers: ["Expect: something"]).status == 417)
        let c = try Client(port: edge.port)
        c.send("GET / HTTP/2.0\r\nHost: t.test\r\n\r\n")
        #expect(try c.readResponse().status == 505)
        let chunkedTooBig = try Client(port: edge.port)
        chunkedTooBig.send("POST /upload HTTP/1.1\r\nHost: t.test\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + String(repeating: "e", count: 2048) + "\r\n0\r\n\r\n")
        #expect(try chunkedTooBig.readResponse().status == 413)
    }

    @Test func slowHeadersGet408() throws {
        let o = try Origin()
        let edge = try singleOrigin(o, server: #"{"limits": {"header_timeout": "400ms"}}"#)
        defer { edge.stop() }
        let c = try Client(port: edge.port)
        c.send("GET / HTTP/1.1\r\nHost: t.test\r\n")
        // A header byte every 50 ms for up to 10 s: progress must not reset the
        // whole-head deadline (a per-read timer would let the trickle run to its end).
        #expect(c.trickle("X", limit: 200, everyMicros: 50_000) < 200, "the whole trickle was accepted")
        let r = try c.readResponse()
        #expect(r.status == 408)
        #expect(c.closedByPeer())
    }

    @Test func tricklingBodiesGet408BeforeTheTrickleEnds() throws {
        // Audit: a byte every 1.2 s held a request and an origin connection for a minute
        // (each read restarted the idle timer). Now a body must keep a minimum rate.
        let o = try Origin()
        let edge = try singleOrigin(o, server: #"{"limits": {"body_min_rate": 1000, "body_rate_grace": "500ms"}}"#)
        defer { edge.stop() }
        let c = try Client(port: edge.port)
        c.send("POST /upload HTTP/1.1\r\nHost: t.test\r\nContent-Length: 100\r\n\r\n")
        #expect(c.trickle("x", limit: 100, everyMicros: 100_000) < 100, "the whole trickle was accepted")
        let r = try c.readResponse()
        #expect(r.status == 408)
        #expect(c.closedByPeer())
        // A body that keeps the rate is fine.
        let ok = try request(edge.port, "POST", "/upload", host: "t.test", body: String(repeating: "y", count: 100_000))
        #expect(ok.status == 200 && ok.text.contains("100000"))
    }

    @Test func hopByHopFieldsAreNotForwarded() throws {
        let o = try Origin()
        let edge = try singleOrigin(o)
        defer { edge.stop() }
        let r = try request(edge.port, "/echo", host: "t.test",
                            headers: ["Connection: X-Secret, keep-alive", "X-Secret: s", "Keep-Alive: 10", "TE: trailers",
                                      "Upgrade: h2c", "HTTP2-Settings: AAA", "Proxy-Authorization: Basic x", "X-Kept: yes"])
        #expect(r.status == 200)
        for h in ["X-Secret", "Keep-Alive", "TE", "Upgrade", "HTTP2-Settings", "Proxy-Authorization"] {
            #expect(r.echoedHeader(h).isEmpty, "\(h) forwarded")
        }
        #expect(r.echoedHeader("X-Kept") == ["yes"])
        #expect(r.echoedHeader("Connection").allSatisfy { !$0.lowercased().contains("x-secret") })
    }
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct OriginFailureTests {
    /// A loopback port with nothing listening. The bound socket stays open (until
    /// the process ends) so that no other test's origin can be given the port.
    func deadPort() throws -> Int {
        try TCPProbe.bindEphemeral().1
    }

    @Test func deadOriginGives502AndFailoverUsesTheHealthyServer() throws {
        let live = try Origin(name: "live")
        let dead = try deadPort()
        let edge = try Edge(tenants: [
            tenantJSON(name: "f", hosts: ["f.test"],
                       origins: #"{"pair": {"servers": ["127.0.0.1:\#(dead)", "\#(live.address)"], "max_fails": 1, "fail_backoff": "30s"}, "gone": {"servers": ["127.0.0.1:\#(dead)"]}}"#,
                       routes: #"[{"prefix": "/", "origin": "pair"}, {"prefix": "/gone/", "origin": "gone"}]"#),
        ])
        defer { edge.stop() }
        for _ in 0..<6 {
            let r = try request(edge.port, "/echo", host: "f.test")
            #expect(r.status == 200)
            #expect(r.json["origin"] as? String == "live")
        }
        // POST is retried too when the connect itself failed (nothing was sent).
        #expect(try request(edge.port, "POST", "/upload", host: "f.test", body: "abc").json["length"] as? Int == 3)
        #expect(try request(edge.port, "/gone/x", host: "f.test").status == 502)
        edge.stop()   // flushes the access log
        let log = edge.accessLog()
        #expect(log.contains { ($0["status"] as? Int) == 502 && ($0["target"] as? String) == "/gone/x" && ($0["error"] as? String) == "connect failed" }, "\(log)")
    }

    @Test func originDyingBetweenRequestsIsRetriedOnAFreshConnection() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [tenantJSON(name: "t", hosts: ["t.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                 routes: #"[{"prefix": "/", "origin": "o"}]"#)])
        defer { edge.stop() }
        let c = try Client(port: edge.port)
        // A keep-alive 200: the origin connection goes back to the pool, alive as far
        // as edge can tell; the origin closes it when the next request arrives on it.
        c.send("GET /hangup-next HTTP/1.1\r\nHost: t.test\r\n\r\n")
        #expect(try c.readResponse().text == "bye")
        #expect(try o.stats().connections == 1)
        // The GET meets the dead pooled connection and is retried once on a fresh one.
        c.send("GET /echo/retried HTTP/1.1\r\nHost: t.test\r\n\r\n")
        let r = try c.readResponse()
        #expect(r.status == 200 && r.json["path"] as? String == "/echo/retried")
        #expect(try o.stats().connections == 2)
        // A POST whose body went out on a connection that then died is not retried.
        c.send("GET /hangup-next HTTP/1.1\r\nHost: t.test\r\n\r\n")
        #expect(try c.readResponse().text == "bye")
        let before = try o.stats()
        c.send("POST /upload HTTP/1.1\r\nHost: t.test\r\nContent-Length: 3\r\n\r\nabc")
        #expect(try c.readResponse().status == 502)
        let after = try o.stats()
        #expect(after.requests == before.requests, "the POST was sent again")
        #expect(after.connections == before.connections, "a new connection was opened for the POST")
    }

    @Test func brokenOriginFramingBecomes502() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [tenantJSON(name: "t", hosts: ["t.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                 routes: #"[{"prefix": "/", "origin": "o"}]"#)])
        defer { edge.stop() }
        for name in ["cl-te", "two-cl", "bare-lf", "nul", "garbage"] {
            let r = try request(edge.port, "/raw/\(name)", host: "t.test")
            #expect(r.status == 502, "\(name)")
            #expect(!r.text.contains("hello"), "\(name) leaked origin bytes")
        }
        // Truncated body: the client sees a broken message (connection closed early), not a short one.
        let c = try Client(port: edge.port, timeoutSeconds: 10)
        c.send("GET /raw/truncated HTTP/1.1\r\nHost: t.test\r\n\r\n")
        #expect(throws: HarnessError.self) { try c.readResponse() }
        // A chunk size overflow after the head went out (audit): the client's chunked
        // body ends without its last chunk, the log says origin error, nothing is stored.
        for _ in 0..<2 {
            let k = try Client(port: edge.port, timeoutSeconds: 10)
            k.send("GET /raw/chunk-overflow HTTP/1.1\r\nHost: t.test\r\n\r\n")
            var got = ""
            while try k.fill() { got = String(decoding: k.buf, as: UTF8.self) }
            #expect(got.hasPrefix("HTTP/1.1 200"), "\(got)")
            #expect(got.contains("Transfer-Encoding: chunked"), "\(got)")
            #expect(got.contains("\r\n5\r\nhello\r\n"), "\(got)")
            #expect(!got.contains("\r\n0\r\n\r\n"), "the client was given a complete body: \(got)")
        }
        edge.stop()
        let lines = edge.accessLog().filter { ($0["target"] as? String) == "/raw/chunk-overflow" }
        #expect(lines.count == 2)
        for l in lines {
            #expect(l["error"] as? String == "malformed chunk from the origin", "\(l)")
            #expect(l["complete"] as? Bool == false, "\(l)")
        }
        // Not stored: the second request went to the origin too.
        #expect(try o.stats().requests == 8)
    }

    @Test func slowOriginGives504() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [tenantJSON(name: "t", hosts: ["t.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                 routes: #"[{"prefix": "/", "origin": "o"}]"#,
                                                 extra: #""limits": {"origin_read_timeout": "300ms"}"#)])
        defer { edge.stop() }
        #expect(try request(edge.port, "/slow/2000", host: "t.test").status == 504)
        #expect(try request(edge.port, "/slow/10", host: "t.test").status == 200)
    }
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct LifecycleTests {
    @Test func gracefulStopFinishesInFlightRequests() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [tenantJSON(name: "t", hosts: ["t.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                 routes: #"[{"prefix": "/", "origin": "o"}]"#)])
        let idleClient = try Client(port: edge.port)
        idleClient.send("GET /echo HTTP/1.1\r\nHost: t.test\r\n\r\n")
        #expect(try idleClient.readResponse().status == 200)
        let busy = try Client(port: edge.port)
        busy.send("GET /slow/800 HTTP/1.1\r\nHost: t.test\r\n\r\n")
        try waitUntil("the slow request reaches the origin") { try o.stats().requests >= 2 }
        edge.server.stop()
        // The idle keep-alive connection is closed; the busy one gets its answer, then close.
        #expect(idleClient.closedByPeer())
        let r = try busy.readResponse()
        #expect(r.status == 200)
        #expect(r.text == "slow done")
        #expect(r.header("Connection") == "close")
        edge.server.wait()
        #expect(throws: HarnessError.self) { _ = try Client(port: edge.port) }
    }
}

enum TCPProbe {
    /// Binds (without listening) an ephemeral loopback port: connects to it are refused.
    static func bindEphemeral() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = 0
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, Int(UInt16(bigEndian: a.sin_port)))
    }
}
