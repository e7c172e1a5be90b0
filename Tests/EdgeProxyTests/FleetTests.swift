import Foundation
import Glibc
import Testing
@testable import EdgeProxy

/// Shields and fleets: node identity, loops, a shield tier in front of the
/// origin (Age, Cache-Status, revalidation through it), and fleet purges that
/// reach a node that was down. In-process edges for the single-hop rules;
/// real edged processes on their own loopback addresses for the fleet.
@Suite(.serialized, .timeLimit(.minutes(4))) struct FleetTests {
    func server(_ node: String, _ extra: String = "") -> String {
        #"{"node_name": "\#(node)", "trusted_proxies": ["127.0.0.0/8"]\#(extra)}"#
    }

    func tenant(_ origins: String, route: String = #""origin": "o""#) -> String {
        tenantJSON(name: "z", hosts: ["z.test"], origins: origins, routes: #"[{"prefix": "/", \#(route)}]"#)
    }

    @Test func aLoopBetweenTwoNodesIsAnswered508OnTheFirstRepeat() throws {
        let a = try Edge(tenants: [tenant(#"{"o": {"servers": ["127.0.0.1:1"]}}"#)], server: server("node-a"))
        defer { a.stop() }
        let b = try Edge(tenants: [tenant(#"{"o": {"servers": ["127.0.0.1:\#(a.port)"]}}"#)], server: server("node-b"))
        defer { b.stop() }
        try a.reload(tenants: [tenant(#"{"o": {"servers": ["127.0.0.1:\#(b.port)"]}}"#)])
        let r = try request(a.port, "/loop", host: "z.test")
        #expect(r.status == 508, "\(r.status)")
        // a → b → a: b forwarded once, and a refused the request that came back.
        try waitUntil("the access logs") { a.accessLog().count == 2 && b.accessLog().count == 1 }
        #expect(a.accessLog().map { $0["status"] as? Int } == [508, 508])
        #expect(b.accessLog().first?["status"] as? Int == 508)
    }

    @Test func forwardedRequestsCarryTheNodeAndTooManyFleetHopsAre508() throws {
        let o = try Origin(name: "loop")
        defer { o.stop() }
        let e = try Edge(tenants: [tenant(#"{"o": {"servers": ["\#(o.address)"]}}"#)], server: server("edge-7", #", "fleet": {"name": "acme", "max_hops": 3}"#))
        defer { e.stop() }
        let r = try request(e.port, "/echo/x", host: "z.test", headers: ["CDN-Loop: other-cdn, acme; node=edge-1"])
        #expect(r.status == 200)
        // The client's entries stay, this node's is added (RFC 8586); Via names the node.
        #expect(r.echoedHeader("CDN-Loop") == ["other-cdn, acme; node=edge-1", "acme; node=edge-7"], "\(r.echoedHeader("CDN-Loop"))")
        #expect(r.echoedHeader("Via").last == "1.1 edge-7")
        #expect(r.header("Via") == "1.1 edge-7")
        // Three of the fleet's entries already: 508, nothing forwarded.
        let before = try o.stats().requests
        #expect(try request(e.port, "/echo/y", host: "z.test", headers: ["CDN-Loop: acme; node=a, ACME;node=\"b\"", "CDN-Loop: acme"]).status == 508)
        // Its own entry, even once: 508 (the request came back).
        #expect(try request(e.port, "/echo/y", host: "z.test", headers: ["CDN-Loop: acme; x=1; node=edge-7"]).status == 508)
        #expect(try o.stats().requests == before)
        // Another fleet's tokens do not count.
        #expect(try request(e.port, "/echo/y", host: "z.test", headers: ["CDN-Loop: edged; node=edge-7, b, c, d"]).status == 200)
    }

    /// origin ← shield-1 ← edge-1, the edge's group a shield group falling back on the origin.
    func twoTiers(_ o: Origin) throws -> (shield: Edge, edge: Edge) {
        let shield = try Edge(tenants: [tenant(#"{"o": {"servers": ["\#(o.address)"]}}"#)], server: server("shield-1"))
        let edge = try Edge(tenants: [tenant(#"{"shields": {"servers": ["127.0.0.1:\#(shield.port)"], "shield": true, "fallback": "o"}, "o": {"servers": ["\#(o.address)"]}}"#,
                                             route: #""origin": "shields""#)], server: server("edge-1"))
        return (shield, edge)
    }

    @Test func throughAShieldAgeCountsOnceAndEachCacheAddsItsStatus() throws {
        let o = try Origin(name: "tiers")
        defer { o.stop() }
        let (shield, edge) = try twoTiers(o)
        defer { edge.stop(); shield.stop() }
        try script(o, "/aged", #"[{"status": 200, "headers": {"Cache-Control": "max-age=100", "Age": "30"}, "body": "aged"}]"#)
        let miss = try request(edge.port, "/aged", host: "z.test")
        #expect(miss.status == 200 && String(decoding: miss.body, as: UTF8.self) == "aged")
        let hit = try request(edge.port, "/aged", host: "z.test")
        // The origin's 30 s, counted once through two caches (RFC 9111 §4.2.3), not 60.
        let age = Int(hit.header("Age") ?? "") ?? -1
        #expect((30...33).contains(age), "Age \(age)")
        let statuses = hit.headers("Cache-Status")
        #expect(statuses.count == 2 && statuses[0].hasPrefix("shield-1; fwd=uri-miss") && statuses[1].hasPrefix("edge-1; hit"), "\(statuses)")
        #expect(hit.headers("Via") == ["1.1 shield-1", "1.1 edge-1"], "\(hit.headers("Via"))")
        if let ttl = statuses[1].split(separator: "=").last.flatMap({ Int($0) }) { #expect((66...70).contains(ttl), "\(statuses[1])") }
        #expect(try originRequests(o, "/aged") == 1)
    }

    @Test func revalidationGoesThroughTheShieldAnd304IsMergedAtBothTiers() throws {
        let o = try Origin(name: "reval")
        defer { o.stop() }
        let (shield, edge) = try twoTiers(o)
        defer { edge.stop(); shield.stop() }
        try script(o, "/rv", #"[{"status": 200, "headers": {"Cache-Control": "max-age=1", "ETag": "\"v1\""}, "body": "rv-body"}, {"status": 304, "headers": {"Cache-Control": "max-age=100", "ETag": "\"v1\""}}]"#)
        #expect(try request(edge.port, "/rv", host: "z.test").status == 200)
        usleep(2_100_000)   // both copies stale
        let r = try request(edge.port, "/rv", host: "z.test")
        #expect(r.status == 200 && String(decoding: r.body, as: UTF8.self) == "rv-body", "\(r.status)")
        let statuses = r.headers("Cache-Status")
        #expect(statuses.contains { $0.hasPrefix("edge-1; fwd=stale") } && statuses.contains { $0.hasPrefix("shield-1; fwd=stale") }, "\(statuses)")
        // The origin saw the shield's conditional request, and both tiers are fresh again.
        let log = try originLog(o, "/rv")
        #expect(log.count == 2 && (log.last ?? []).contains { $0[0].lowercased() == "if-none-match" && $0[1] == "\"v1\"" }, "\(log)")
        let again = try request(edge.port, "/rv", host: "z.test")
        #expect(again.header("Cache-Status")?.contains("edge-1; hit") == true || again.headers("Cache-Status").last?.hasPrefix("edge-1; hit") == true)
        #expect(try originRequests(o, "/rv") == 2)
    }

    @Test func aShieldGroupWithEveryShieldDownFallsBackOnTheOrigin() throws {
        let o = try Origin(name: "fallback")
        defer { o.stop() }
        let edge = try Edge(tenants: [tenant(#"{"shields": {"servers": ["127.0.0.1:1", "127.0.0.1:2"], "shield": true, "fallback": "o"}, "o": {"servers": ["\#(o.address)"]}}"#,
                                             route: #""origin": "shields""#)], server: server("edge-1"))
        defer { edge.stop() }
        for i in 0..<5 {
            let r = try request(edge.port, "/echo/f\(i)", host: "z.test")
            #expect(r.status == 200, "\(i): \(r.status)")
        }
    }

    /// The request heads the origin got for a scripted path, each a list of [name, value].
    func originLog(_ o: Origin, _ path: String) throws -> [[[String]]] {
        let r = try request(o.port, "GET", "/__log?path=\(path)", host: "o")
        return (try JSONSerialization.jsonObject(with: Data(r.body)) as? [[[String]]]) ?? []
    }

    func originRequests(_ o: Origin, _ path: String) throws -> Int { try originLog(o, path).count }
}

/// One edged process of a fleet: its own loopback address, state directory
/// (with its disk tier) and server file; it can be stopped and started again.
final class FleetNode: @unchecked Sendable {
    let name: String
    let address: String
    let dir: String
    var child: ChildProcess?
    var port = 0
    var output = ""
    var adminSocket: String { dir + "/state/admin.sock" }

    init(name: String, address: String, root: String, tenant: String, peers: [String]) throws {
        self.name = name; self.address = address
        dir = root + "/" + name
        try FileManager.default.createDirectory(atPath: dir + "/tenants", withIntermediateDirectories: true)
        try writeFile(dir + "/tenants/z.json", tenant)
        let peerList = peers.map { "\"\($0)\"" }.joined(separator: ", ")
        try writeFile(dir + "/server.json", """
            {"http": "\(address):0", "node_name": "\(name)", "state": "\(dir)/state", "workers": 1, "access_log": "off",
             "trusted_proxies": ["127.0.0.0/8"], "cache": {"disks": [{"path": "\(dir)/cache", "size": "16MiB"}]},
             "fleet": {"peers": [\(peerList)], "sync_interval": "1h", "sync_timeout": "2s"}}
            """)
    }

    func start() throws {
        let c = try ChildProcess(["/bin/sh", "-c", "exec '\(try edgedPath())' --config '\(dir)/server.json' --tenants '\(dir)/tenants' 2>&1"])
        output = c.read(until: "admin API on")
        port = listeningPorts(output).http
        guard port > 0 else { throw HarnessError(description: "\(name) did not start: \(output)") }
        child = c
    }

    func stop() { child?.stop(); child = nil }

    /// Until its disk index is whole (it answers before that: keys not yet indexed are misses).
    func waitIndexed() {
        if !output.contains("index loaded"), let c = child { output += c.read(until: "index loaded") }
    }

    func get(_ path: String) throws -> Response {
        let c = try Client(port: port, to: address)
        c.send("GET \(path) HTTP/1.1\r\nHost: z.test\r\nConnection: close\r\n\r\n")
        return try c.readResponse()
    }
}

@Suite(.serialized, .timeLimit(.minutes(4))) struct FleetProcessTests {
    /// Deterministic Zipf(1) draws over `n` objects.
    struct Zipf {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let cumulative: [Double]
        init(_ n: Int) {
            var c: [Double] = [], sum = 0.0
            for k in 1...n { sum += 1 / Double(k); c.append(sum) }
            cumulative = c.map { $0 / sum }
        }
        mutating func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = Double(state >> 11) / Double(1 << 53)
            return cumulative.firstIndex { $0 >= u } ?? cumulative.count - 1
        }
    }

    @Test func threeEdgesTwoShieldsOneOrigin() throws {
        let o = try Origin(name: "fleet")
        defer { o.stop() }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let n = 60
        for i in 0..<n { try script(o, "/z/\(i)", #"[{"status": 200, "headers": {"Cache-Control": "max-age=3600"}, "body": "z\#(i)"}]"#) }
        try script(o, "/p", #"[{"status": 200, "headers": {"Cache-Control": "max-age=3600"}, "body": "p-v1"}, {"status": 200, "headers": {"Cache-Control": "max-age=3600"}, "body": "p-v2"}]"#)
        try script(o, "/q", #"[{"status": 200, "headers": {"Cache-Control": "max-age=3600"}, "body": "q"}]"#)

        let names = ["shield-a", "shield-b", "edge-1", "edge-2", "edge-3"]
        let addresses = ["127.0.0.11", "127.0.0.12", "127.0.0.21", "127.0.0.22", "127.0.0.23"]
        let sockets = names.map { "\(root)/\($0)/state/admin.sock" }
        let shieldTenant = tenantJSON(name: "z", hosts: ["z.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#, routes: #"[{"prefix": "/", "origin": "o"}]"#)
        var shields: [FleetNode] = []
        for i in 0..<2 {
            let s = try FleetNode(name: names[i], address: addresses[i], root: root, tenant: shieldTenant, peers: sockets.enumerated().filter { $0.offset != i }.map(\.element))
            try s.start()
            shields.append(s)
        }
        defer { for s in shields { s.stop() } }
        let shieldServers = shields.map { "\"\($0.address):\($0.port)\"" }.joined(separator: ", ")
        let edgeTenant = tenantJSON(name: "z", hosts: ["z.test"], origins: """
            {"shields": {"servers": [\(shieldServers)], "shield": true, "fallback": "o", "max_fails": 1, "fail_backoff": "60s"},
             "o": {"servers": ["\(o.address)"]}}
            """, routes: #"[{"prefix": "/", "origin": "shields"}]"#)
        var edges: [FleetNode] = []
        for i in 2..<5 {
            let e = try FleetNode(name: names[i], address: addresses[i], root: root, tenant: edgeTenant, peers: sockets.enumerated().filter { $0.offset != i }.map(\.element))
            try e.start()
            edges.append(e)
        }
        defer { for e in edges { e.stop() } }

        // A Zipf mix through all edges: every object leaves the origin once.
        var zipf = Zipf(n)
        var home: [Int: String] = [:]
        for k in 0..<400 {
            let i = zipf.next()
            let r = try edges[k % 3].get("/z/\(i)")
            #expect(r.status == 200 && String(decoding: r.body, as: UTF8.self) == "z\(i)", "\(k): \(r.status)")
            if let via = r.headers("Via").first, via.hasPrefix("1.1 shield-") { home[i] = String(via.dropFirst(4)) }
        }
        for i in home.keys.sorted() { #expect(try originRequests(o, "/z/\(i)") == 1, "/z/\(i)") }
        let onA = home.values.filter { $0 == "shield-a" }.count
        #expect(home.count > 20 && onA > 0 && onA < home.count, "each shield is home to some objects: \(onA) of \(home.count)")

        // /p and /q on every node; then edge-3 goes down.
        for e in edges { #expect(try e.get("/p").status == 200); #expect(try e.get("/q").status == 200) }
        #expect(try originRequests(o, "/p") == 1)
        edges[2].stop()

        // A fleet purge while edge-3 is down: shields first, edge-3 queued.
        let nodesFile = root + "/nodes"
        try writeFile(nodesFile, "shield \(sockets[0])\nshield \(sockets[1])\n\(sockets[2])\n\(sockets[3])\n\(sockets[4])\n")
        let (status, out) = try shell("'\(try builtBinary("edgectl"))' purge --nodes '\(nodesFile)' http://z.test/p")
        #expect(status == 0 && out.contains("\(sockets[4]): queued") && out.components(separatedBy: ": applied").count == 5, "\(out)")

        // edge-3 comes back: it pulled the purge before serving, so /p is the new
        // version, while /q (not purged) is still a hit from its disk.
        try edges[2].start()
        #expect(edges[2].output.contains("fleet: 1 missed purge(s) applied"), "\(edges[2].output)")
        edges[2].waitIndexed()
        let q = try edges[2].get("/q")
        #expect(q.headers("Cache-Status").last?.hasPrefix("edge-3; hit") == true, "\(q.headers("Cache-Status"))")
        let p = try edges[2].get("/p")
        #expect(String(decoding: p.body, as: UTF8.self) == "p-v2", "edge-3 served the purged object: \(p.headers("Cache-Status"))")
        for e in edges[0..<2] { #expect(String(decoding: try e.get("/p").body, as: UTF8.self) == "p-v2") }
        #expect(try originRequests(o, "/p") == 2, "one refill for the whole fleet")

        // shield-a stops: its objects move to shield-b (refetched once), shield-b's stay put.
        shields[0].stop()
        let (ps, pout) = try shell("'\(try builtBinary("edgectl"))' --socket '\(sockets[2])' purge --prefix http://z.test/z/")
        #expect(ps == 0, "\(pout)")
        for i in home.keys.sorted() {
            let r = try edges[0].get("/z/\(i)")
            #expect(r.status == 200 && r.headers("Via").first == "1.1 shield-b", "/z/\(i): \(r.status) \(r.headers("Via"))")
            #expect(try originRequests(o, "/z/\(i)") == (home[i] == "shield-a" ? 2 : 1), "/z/\(i) homed on \(home[i]!)")
        }
    }

    func originRequests(_ o: Origin, _ path: String) throws -> Int {
        let r = try request(o.port, "GET", "/__log?path=\(path)", host: "o")
        return ((try JSONSerialization.jsonObject(with: Data(r.body)) as? [Any]) ?? []).count
    }
}
