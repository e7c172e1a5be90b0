// Claims the README makes that no other test covered: each one exercised here
// with real sockets, a real origin, and (where it matters) a real TLS client.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy
import EdgeIO

/// A loopback listener that never accepts and whose queue is full: a connect to it
/// hangs until the connecting side gives up (how an origin behind a dead route looks).
final class Blackhole {
    let fd: Int32
    var queued: [Int32] = []
    let port: Int

    init() throws {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0, listen(s, 0) == 0, let bound = TCP.localAddress(s) else {
            close(s)
            throw HarnessError(description: "blackhole listener failed")
        }
        fd = s
        port = Int(bound.port)
        // Fill the accept queue; later SYNs are dropped, so connects hang.
        for _ in 0..<4 {
            let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var to = sockaddr_in()
            to.sin_family = sa_family_t(AF_INET)
            to.sin_port = UInt16(port).bigEndian
            to.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            queued.append(c)
        }
    }

    deinit {
        for c in queued { close(c) }
        close(fd)
    }
}

func oneRoute(_ name: String, _ hosts: [String], _ origins: String, route: String = #"{"prefix": "/", "origin": "o"}"#, extra: String = "") -> String {
    tenantJSON(name: name, hosts: hosts, origins: origins, routes: "[\(route)]", extra: extra)
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct ReadmeClaimsTests {
    @Test func aRequestInFlightCarriesOnAcrossAReload() throws {
        let before = try Origin(name: "before")
        let after = try Origin(name: "after")
        func config(_ o: Origin, _ tag: String) -> String {
            oneRoute("t", ["t.test"], #"{"o": {"servers": ["\#(o.address)"]}}"#,
                     route: #"{"prefix": "/", "origin": "o", "response_headers": {"add": {"X-Config": "\#(tag)"}}}"#)
        }
        let edge = try Edge(tenants: [config(before, "one")], workers: 2)
        defer { edge.stop() }
        let slow = try Client(port: edge.port)
        slow.send("GET /slow/800 HTTP/1.1\r\nHost: t.test\r\n\r\n")
        try waitUntil("the slow request reaches the first origin") { try before.stats().requests >= 1 }
        try edge.reload(tenants: [config(after, "two")])
        // New requests, on another connection, use the new config at once...
        let fresh = try request(edge.port, "/echo/new", host: "t.test")
        #expect(fresh.header("X-Config") == "two" && fresh.json["origin"] as? String == "after")
        // ...while the one in flight finishes on the old one, untouched.
        let r = try slow.readResponse()
        #expect(r.status == 200 && r.text == "slow done")
        #expect(r.header("X-Config") == "one")
    }

    @Test func aTenantsCacheBytesComeFromItsFile() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [
            oneRoute("small", ["small.test"], #"{"o": {"servers": ["\#(o.address)"]}}"#, extra: #""limits": {"cache_bytes": "20KiB"}"#),
            oneRoute("big", ["big.test"], #"{"o": {"servers": ["\#(o.address)"]}}"#),
        ])
        defer { edge.stop() }
        for i in 0..<8 {
            try script(o, "/obj\(i)", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600"}, "body": "\#(String(repeating: "x", count: 8000))"}]"#)
            for host in ["small.test", "big.test"] { #expect(try request(edge.port, "/obj\(i)", host: host).status == 200) }
        }
        let store = edge.server.config.store
        #expect(store.bytes(tenant: "small") <= 20 * 1024, "small holds \(store.bytes(tenant: "small")) bytes")
        #expect(store.bytes(tenant: "small") > 0)
        #expect(store.bytes(tenant: "big") >= 8 * 8000, "the other tenant keeps all eight (\(store.bytes(tenant: "big")) bytes)")
    }

    @Test func staleIsServedWhenTheOriginStalls() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [oneRoute("t", ["t.test"], #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                               extra: #""limits": {"origin_read_timeout": "300ms"}"#)])
        defer { edge.stop() }
        try script(o, "/st", #"[{"status": 200, "headers": {"Cache-Control": "max-age=10, stale-if-error=600"}, "body": "kept"}, {"status": 200, "headers": {"Cache-Control": "max-age=10"}, "body": "late", "delay_ms": 3000}]"#)
        #expect(try request(edge.port, "/st", host: "t.test").text == "kept")
        edge.server.clock.advance(by: 60)
        let r = try request(edge.port, "/st", host: "t.test")
        #expect(r.status == 200 && r.text == "kept", "\(r.status) \(r.text)")
        #expect(r.header("Cache-Status")?.contains("stale-if-error") == true, "\(r.header("Cache-Status") ?? "")")
        #expect(try originHits(o, "/st") == 2)
    }

    @Test func staleIsServedWhenTheOriginsPortIsDead() throws {
        let o = try Origin()
        let cfg = { (addr: String) in oneRoute("t", ["t.test"], #"{"o": {"servers": ["\#(addr)"]}}"#) }
        let edge = try Edge(tenants: [cfg(o.address)])
        defer { edge.stop() }
        try script(o, "/dp", #"[{"status": 200, "headers": {"Cache-Control": "max-age=10, stale-if-error=600"}, "body": "kept"}]"#)
        #expect(try request(edge.port, "/dp", host: "t.test").text == "kept")
        // The same tenant, now pointing at a port nobody listens on (kept bound, never listening).
        let dead = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(dead) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(dead, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let port = try #require(TCP.localAddress(dead)).port
        try edge.reload(tenants: [cfg("127.0.0.1:\(port)")])
        edge.server.clock.advance(by: 60)
        let r = try request(edge.port, "/dp", host: "t.test")
        #expect(r.status == 200 && r.text == "kept", "\(r.status) \(r.text)")
        #expect(r.header("Cache-Status")?.contains("stale-if-error") == true, "\(r.header("Cache-Status") ?? "")")
    }

    @Test func collapsedFollowersSayWhereTheirAnswerCameFromAndConditionalsWait() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [oneRoute("c", ["c.test"], #"{"o": {"servers": ["\#(o.address)"]}}"#)])
        defer { edge.stop() }
        let path = "/gate/200000/cf"
        let leader = try Client(port: edge.port)
        leader.send("GET \(path) HTTP/1.1\r\nHost: c.test\r\n\r\n")
        try waitUntil("the leader reaches the origin") { try o.stats().requests >= 1 }
        // A plain follower reads the leader's fill as it arrives...
        let plain = try Client(port: edge.port)
        plain.send("GET \(path) HTTP/1.1\r\nHost: c.test\r\n\r\n")
        let headEnd = try plain.readUntil([13, 10, 13, 10], "no head for the plain follower")
        let head = String(decoding: plain.buf[0..<headEnd], as: UTF8.self)
        #expect(head.contains("detail=collapsed"), "\(head)")
        // ...a Range follower waits for the stored object: nothing while the origin holds back.
        let ranged = try Client(port: edge.port)
        ranged.send("GET \(path) HTTP/1.1\r\nHost: c.test\r\nRange: bytes=0-9\r\n\r\n")
        try waitUntil("the plain follower has the first half") { try plain.buf.count - headEnd - 4 >= 100_000 || !plain.fill() }
        #expect(ranged.isOpenWithNothingToRead(), "the Range follower was answered before the object was complete")
        #expect(try request(o.port, "POST", "/__release/cf", host: "o").status == 200)
        #expect(try plain.readResponse().body.count == 200_000)
        let part = try ranged.readResponse()
        #expect(part.status == 206 && part.body.count == 10)
        #expect(try leader.readResponse().body.count == 200_000)
        #expect(try o.stats().requests == 1)
    }

    @Test func trustedProxiesExtendXForwardedFor() throws {
        let o = try Origin()
        let t = oneRoute("t", ["t.test"], #"{"o": {"servers": ["\#(o.address)"]}}"#)
        let trusted = try Edge(tenants: [t], server: #"{"trusted_proxies": ["127.0.0.1"]}"#)
        defer { trusted.stop() }
        let r = try request(trusted.port, "/echo", host: "t.test", headers: ["X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https"])
        #expect(r.echoedHeader("X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"])
        #expect(r.echoedHeader("X-Forwarded-Proto") == ["https"])
        trusted.stop()
        let plain = try Edge(tenants: [t])
        defer { plain.stop() }
        let p = try request(plain.port, "/echo", host: "t.test", headers: ["X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https"])
        #expect(p.echoedHeader("X-Forwarded-For") == ["127.0.0.1"])
        #expect(p.echoedHeader("X-Forwarded-Proto") == ["http"])
    }

    @Test func connectionLimitsAndTimeoutsFromTheServerFile() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [oneRoute("t", ["t.test"], #"{"o": {"servers": ["\#(o.address)"]}}"#)],
                            server: #"{"limits": {"body_idle_timeout": "300ms", "body_min_rate": 0, "keepalive_timeout": "300ms", "send_timeout": "300ms", "max_connections": 3}}"#)
        defer { edge.stop() }
        // body_idle_timeout: a body that stops.
        let b = try Client(port: edge.port)
        b.send("POST /upload HTTP/1.1\r\nHost: t.test\r\nContent-Length: 10\r\n\r\nabc")
        #expect(try b.readResponse().status == 408)
        #expect(b.closedByPeer())
        // keepalive_timeout: an idle connection after its response is closed.
        let k = try Client(port: edge.port)
        k.send("GET /echo HTTP/1.1\r\nHost: t.test\r\n\r\n")
        #expect(try k.readResponse().status == 200)
        #expect(k.closedByPeer())
        // send_timeout: a client that stops reading a large response is dropped.
        // (The socket buffers hold a few MiB; the rest can only go out if the client reads.)
        let s = try Client(port: edge.port)
        s.send("GET /bytes/50000000 HTTP/1.1\r\nHost: t.test\r\n\r\n")
        try waitUntil("edge gives up on the stalled client") {
            edge.accessLog().contains { ($0["target"] as? String) == "/bytes/50000000" }
        }
        let line = try #require(edge.accessLog().first { ($0["target"] as? String) == "/bytes/50000000" })
        #expect((line["bytes_out"] as? Int ?? Int.max) < 50_000_000, "\(line)")
        #expect(line["status"] as? Int == 200)
        // max_connections (per worker): the fourth open connection is closed at once.
        let open = try answeredConnections(edge.port, 3, host: "t.test")
        try withExtendedLifetime(open) {
            let extra = try Client(port: edge.port)
            extra.send("GET /echo/x HTTP/1.1\r\nHost: t.test\r\n\r\n")
            #expect(extra.closedByPeer())
        }
    }

    @Test func connectTimeoutsFailOverAndOtherwiseAre504() throws {
        let hole = try Blackhole()
        let live = try Origin(name: "live")
        let edge = try Edge(tenants: [tenantJSON(name: "t", hosts: ["t.test"],
            origins: #"{"pair": {"servers": ["127.0.0.1:\#(hole.port)", "\#(live.address)"], "balance": "round-robin"}, "hole": {"servers": ["127.0.0.1:\#(hole.port)"]}}"#,
            routes: #"[{"prefix": "/", "origin": "pair"}, {"prefix": "/hole/", "origin": "hole"}]"#,
            extra: #""limits": {"origin_connect_timeout": "300ms"}"#)])
        defer { edge.stop() }
        // Whichever server the balancer picks first, every request ends at the live one.
        for i in 0..<4 {
            let r = try request(edge.port, "/echo/\(i)", host: "t.test")
            #expect(r.status == 200 && r.json["origin"] as? String == "live", "\(r.status)")
        }
        let h = try request(edge.port, "/hole/x", host: "t.test")
        #expect(h.status == 504, "\(h.status) \(h.text)")
        edge.stop()
        // The reason reaches the access log.
        #expect(edge.accessLog().contains { ($0["target"] as? String) == "/hole/x" && ($0["error"] as? String) == "connect timeout" })
    }

    @Test func countersSurviveAReload() throws {
        let o = try Origin()
        let t = cacheTenant("t", o)
        let a = try AdminEdge(tenants: [t])
        defer { a.stop() }
        for i in 0..<3 { #expect(try request(a.port, "/echo/\(i)", host: "t.test").status == 200) }
        func requests() throws -> Int {
            let s = try a.ctlJSON("stats --tenant t")
            let tenants = try #require(s["tenants"] as? [[String: Any]])
            return try #require(tenants.first?["requests"] as? Int)
        }
        try waitUntil("three requests counted") { try requests() == 3 }
        #expect(try a.ctl("reload").0 == 0)
        for i in 0..<2 { #expect(try request(a.port, "/echo/after\(i)", host: "t.test").status == 200) }
        try waitUntil("five requests counted across the reload") { try requests() == 5 }
    }

    @Test func ifRangeWithADate() throws {
        let e = try Edge(tenants: [tenantJSON(name: "s", hosts: ["s.test"], origins: #"{"files": {"directory": "site"}}"#,
                                              routes: #"[{"prefix": "/", "origin": "files"}]"#)],
                         files: ["site/data.txt": String(repeating: "0123456789", count: 100)])
        defer { e.stop() }
        let full = try request(e.port, "/data.txt", host: "s.test")
        let lm = try #require(full.header("Last-Modified"))
        let same = try request(e.port, "/data.txt", host: "s.test", headers: ["Range: bytes=0-4", "If-Range: \(lm)"])
        #expect(same.status == 206 && same.text == "01234")
        let older = try request(e.port, "/data.txt", host: "s.test", headers: ["Range: bytes=0-4", "If-Range: Thu, 01 Jan 2015 00:00:00 GMT"])
        #expect(older.status == 200 && older.body.count == 1000)
    }

    @Test func handshakeFailureLinesAreCappedAndCountTheRest() throws {
        let o = try Origin()
        let certDir = FileManager.default.temporaryDirectory.appendingPathComponent("edge-cap-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: certDir, withIntermediateDirectories: true)
        let cert = try makeCertificate(in: certDir, name: "cap", cn: "cap.test", sans: ["cap.test"])
        let edge = try Edge(tenants: [oneRoute("cap", ["cap.test"], #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                               extra: #""tls": {"certificates": [{"cert": "\#(cert.0)", "key": "\#(cert.1)"}]}"#)])
        defer { edge.stop() }
        // Handshakes that fail (unknown name, no default tenant), as fast as python makes them.
        let script = """
        import socket, ssl, sys
        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        for i in range(int(sys.argv[2])):
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
            try: ctx.wrap_socket(s, server_hostname="nobody.test").close()
            except (ssl.SSLError, OSError): pass
            finally: s.close()
        """
        let file = certDir + "/fail.py"
        try writeFile(file, script)
        var attempts = 0
        func lines() -> [[String: Any]] { edge.accessLog().filter { ($0["event"] as? String) == "tls_handshake_failed" } }
        // A burst, then single failures until one line reports the suppressed rest.
        #expect(try shell("python3 '\(file)' \(edge.httpsPort) 40").0 == 0)
        attempts += 40
        try waitUntil("a line that counts suppressed failures", seconds: 30) {
            if lines().contains(where: { ($0["suppressed"] as? Int ?? 0) > 0 }) { return true }
            _ = try shell("python3 '\(file)' \(edge.httpsPort) 1")
            attempts += 1
            usleep(100_000)
            return false
        }
        try waitUntil("every failure accounted for") {
            let l = lines()
            return l.count + l.reduce(0) { $0 + ($1["suppressed"] as? Int ?? 0) } == attempts
        }
        // The burst of 40 cannot have been written whole: at most 10 lines a second.
        #expect(lines().count < attempts, "\(lines().count) lines for \(attempts) failures")
    }
}
