// Protection over real sockets: clients are distinct loopback addresses
// (127.0.0.2, 127.0.0.3, … all of 127/8 is loopback), origins are real processes.
import Foundation
import Testing
import Glibc
@testable import EdgeProxy
import EdgeIO
import EdgeProtect

@Suite(.serialized, .timeLimit(.minutes(3))) struct ProtectionTests {
    func tenant(_ origin: Origin, _ extra: String) -> String {
        tenantJSON(name: "p", hosts: ["p.test"], origins: #"{"o": {"servers": ["\#(origin.address)"]}}"#,
                   routes: #"[{"prefix": "/", "origin": "o", "cache": false}, {"prefix": "/api/", "origin": "o", "cache": false}]"#, extra: extra)
    }

    func metric(_ edge: Edge, _ prefix: String) -> Int? {
        edge.server.metricsText().split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.split(separator: " ").last!) }
    }

    @Test func aClientOverItsLimitGets429AndOthersDoNot() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let edge = try Edge(tenants: [tenant(origin, #""rate_limits": {"per-client": {"rate": "1/m", "burst": 2}}"#)])
        defer { edge.stop() }
        for i in 0..<3 { #expect(try request(edge.port, "/echo/\(i)", host: "p.test", from: "127.0.0.2").status == 200) }
        let over = try request(edge.port, "/echo/3", host: "p.test", from: "127.0.0.2")
        #expect(over.status == 429)
        #expect(over.header("Retry-After") == "60")
        #expect(over.header("RateLimit-Policy") == #""per-client";q=3;w=180"#)
        #expect(over.header("RateLimit") == #""per-client";r=0;t=60"#)
        // Another client has its own bucket.
        #expect(try request(edge.port, "/echo/x", host: "p.test", from: "127.0.0.3").status == 200)
        // The origin saw only what was let through.
        #expect(try origin.stats().requests == 4)
        try waitUntil("the refusal logged") { edge.accessLog().count == 5 }
        let limited = edge.accessLog().filter { ($0["status"] as? Int) == 429 }
        #expect(limited.count == 1)
        #expect(limited.first?["action"] as? String == "limit")
        #expect(limited.first?["limit"] as? String == "per-client")
        #expect(limited.first?["client"] as? String == "127.0.0.2")
        #expect(metric(edge, #"edge_rate_limited_total{limit="p/per-client",dry_run="false"}"#) == 1)
        #expect(metric(edge, #"edge_requests_refused_total{tenant="p",reason="rate_limit"}"#) == 1)
    }

    @Test func oneLimitAcrossWorkers() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let edge = try Edge(tenants: [tenant(origin, #""rate_limits": {"l": {"rate": "1/m", "burst": 4}}"#)], workers: 2)
        defer { edge.stop() }
        // 30 connections from one address spread over both workers (SO_REUSEPORT);
        // per-worker buckets would let up to 10 through.
        var passed = 0
        for i in 0..<30 { if try request(edge.port, "/echo/\(i)", host: "p.test", from: "127.0.0.4").status == 200 { passed += 1 } }
        #expect(passed == 5)
    }

    @Test func keysRoutesAndDryRuns() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let edge = try Edge(tenants: [tenant(origin, #"""
            "rate_limits": {"key": {"rate": "1/m", "key": ["header:X-Api-Key"], "routes": ["/api/"]},
                            "watch": {"rate": "1/m", "key": "cookie:session", "dry_run": true}}
            """#)])
        defer { edge.stop() }
        // Keyed by the header, on /api/ only; a request without it is not counted.
        #expect(try request(edge.port, "/api/echo", host: "p.test", headers: ["X-Api-Key: k1"]).status == 200)
        #expect(try request(edge.port, "/api/echo", host: "p.test", headers: ["X-Api-Key: k1"]).status == 429)
        #expect(try request(edge.port, "/api/echo", host: "p.test", headers: ["X-Api-Key: k2"]).status == 200)
        #expect(try request(edge.port, "/api/echo", host: "p.test").status == 200)
        #expect(try request(edge.port, "/api/echo", host: "p.test").status == 200)
        #expect(try request(edge.port, "/echo", host: "p.test", headers: ["X-Api-Key: k1"]).status == 200)   // not an /api/ route
        // The dry run lets everything through and counts what it would have refused.
        for _ in 0..<3 { #expect(try request(edge.port, "/echo", host: "p.test", headers: ["Cookie: a=1; session=s1"]).status == 200) }
        #expect(metric(edge, #"edge_rate_limited_total{limit="p/watch",dry_run="true"}"#) == 2)
        try waitUntil("all logged") { edge.accessLog().count == 9 }
        let dry = edge.accessLog().filter { ($0["action"] as? String) == "limit-dry-run" }
        #expect(dry.count == 2 && dry.allSatisfy { ($0["status"] as? Int) == 200 && ($0["limit"] as? String) == "watch" })
    }

    @Test func tenantAccessListsRefuseWith403() throws {
        let origin = try Origin()
        defer { origin.stop() }
        var list = "# generated\n"
        for i in 0..<100_000 { list += "10.\(i >> 16).\(i >> 8 & 0xff).\(i & 0xff)\n" }   // 100 k host prefixes
        list += "127.0.0.5\n"
        let edge = try Edge(tenants: [tenant(origin, #""access": {"deny_file": "deny.txt", "deny": ["127.0.1.0/24"], "allow": ["127.0.1.9"]}"#)],
                            files: ["deny.txt": list])
        defer { edge.stop() }
        #expect(try request(edge.port, "/echo", host: "p.test", from: "127.0.0.5").status == 403)
        #expect(try request(edge.port, "/echo", host: "p.test", from: "127.0.0.6").status == 200)
        #expect(try request(edge.port, "/echo", host: "p.test", from: "127.0.1.8").status == 403)
        #expect(try request(edge.port, "/echo", host: "p.test", from: "127.0.1.9").status == 200)   // the more specific allow
        #expect(try origin.stats().requests == 2)
        #expect(metric(edge, #"edge_requests_refused_total{tenant="p",reason="access_list"}"#) == 2)
        try waitUntil("all logged") { edge.accessLog().count == 4 }
        #expect(edge.accessLog().filter { ($0["action"] as? String) == "deny" }.count == 2)
    }

    @Test func aReloadSwapsTheRulesUnderOpenConnections() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let edge = try Edge(tenants: [tenant(origin, "")])
        defer { edge.stop() }
        let c = try Client(port: edge.port, from: "127.0.0.12")
        c.send("GET /echo/1 HTTP/1.1\r\nHost: p.test\r\n\r\n")
        #expect(try c.readResponse().status == 200)
        try edge.reload(tenants: [tenant(origin, #""access": {"deny": ["127.0.0.12"]}"#)])
        c.send("GET /echo/2 HTTP/1.1\r\nHost: p.test\r\n\r\n")
        #expect(try c.readResponse().status == 403)   // same connection, new rules
        try edge.reload(tenants: [tenant(origin, "")])
        c.send("GET /echo/3 HTTP/1.1\r\nHost: p.test\r\n\r\n")
        #expect(try c.readResponse().status == 200)
    }

    @Test func serverListsAndConnectionRatesCloseBeforeAnyHTTP() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let edge = try Edge(tenants: [tenant(origin, "")], server: #"""
            {"access": {"deny": ["127.0.0.7"]}, "limits": {"new_connections_per_ip": {"rate": "1/m", "burst": 2}, "max_requests_per_connection": 3}}
            """#)
        defer { edge.stop() }
        let refused = try Client(port: edge.port, from: "127.0.0.7")
        refused.send("GET /echo HTTP/1.1\r\nHost: p.test\r\n\r\n")
        #expect(refused.closedByPeer())
        // Three new connections from 127.0.0.8 within the burst; the fourth is closed.
        var kept: [Client] = []
        for _ in 0..<3 {
            let c = try Client(port: edge.port, from: "127.0.0.8")
            c.send("GET /echo HTTP/1.1\r\nHost: p.test\r\n\r\n")
            #expect(try c.readResponse().status == 200)
            kept.append(c)
        }
        let fourth = try Client(port: edge.port, from: "127.0.0.8")
        fourth.send("GET /echo HTTP/1.1\r\nHost: p.test\r\n\r\n")
        #expect(fourth.closedByPeer())
        // Requests per connection: the third response closes it.
        let c = kept[0]
        c.send("GET /echo/2 HTTP/1.1\r\nHost: p.test\r\n\r\n")
        #expect(try c.readResponse().header("Connection") == nil)
        c.send("GET /echo/3 HTTP/1.1\r\nHost: p.test\r\n\r\n")
        #expect(try c.readResponse().header("Connection") == "close")
        #expect(c.closedByPeer())
        #expect(metric(edge, #"edge_connections_refused_total{reason="access_list"}"#) == 1)
        #expect(metric(edge, #"edge_connections_refused_total{reason="connection_rate"}"#) == 1)
    }

    @Test func theProxyProtocolNamesTheClient() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let edge = try Edge(tenants: [tenant(origin, #""access": {"deny": ["198.51.100.66"]}, "rate_limits": {"l": {"rate": "1/m"}}"#)],
                            server: #"{"proxy_protocol": true, "limits": {"proxy_protocol_timeout": "300ms"}}"#)
        defer { edge.stop() }
        // v1, then a keep-alive request after it on the same connection.
        let v1 = try Client(port: edge.port)
        v1.send("PROXY TCP4 203.0.113.9 127.0.0.1 40000 80\r\nGET /echo HTTP/1.1\r\nHost: p.test\r\n\r\n")
        let r = try v1.readResponse()
        #expect(r.status == 200)
        #expect(r.echoedHeader("X-Forwarded-For") == ["203.0.113.9"])
        v1.send("GET /echo HTTP/1.1\r\nHost: p.test\r\n\r\n")
        #expect(try v1.readResponse().status == 429)   // limited as 203.0.113.9
        // v2 over IPv6, with its request in the same write: another client, its own bucket.
        var six: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [7] + [UInt8](repeating: 0, count: 15) + [1] + [0x9c, 0x40, 0, 80]
        let v2 = try Client(port: edge.port)
        v2.send([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x21, 0, UInt8(six.count)] + six
                + Array("GET /echo HTTP/1.1\r\nHost: p.test\r\nConnection: close\r\n\r\n".utf8))
        let r2 = try v2.readResponse()
        #expect(r2.status == 200 && r2.echoedHeader("X-Forwarded-For") == ["2001:db8::7"])
        six.removeAll()
        // The tenant's list sees the named client.
        let denied = try Client(port: edge.port)
        denied.send("PROXY TCP4 198.51.100.66 127.0.0.1 1 80\r\nGET /echo HTTP/1.1\r\nHost: p.test\r\nConnection: close\r\n\r\n")
        #expect(try denied.readResponse().status == 403)
        // LOCAL (the balancer's health check): the connection's own address stands.
        let local = try Client(port: edge.port)
        local.send([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0, 0]
                   + Array("GET /echo HTTP/1.1\r\nHost: p.test\r\nConnection: close\r\n\r\n".utf8))
        #expect(try local.readResponse().echoedHeader("X-Forwarded-For") == ["127.0.0.1"])
        // No header, a broken one, or none in time: closed without a byte.
        let plain = try Client(port: edge.port)
        plain.send("GET /echo HTTP/1.1\r\nHost: p.test\r\n\r\n")
        #expect(plain.closedByPeer())
        let broken = try Client(port: edge.port)
        broken.send("PROXY TCP4 203.0.113.9 127.0.0.1 40000\r\nGET /echo HTTP/1.1\r\nHost: p.test\r\n\r\n")
        #expect(broken.closedByPeer())
        let slow = try Client(port: edge.port)
        slow.send("PROXY TCP4 203.0.113.9")
        #expect(slow.closedByPeer())   // after proxy_protocol_timeout
        #expect(metric(edge, #"edge_connections_refused_total{reason="proxy_header"}"#) == 2)
        try waitUntil("all logged") { edge.accessLog().count == 5 }
        let log = edge.accessLog()
        #expect(log.contains { ($0["client"] as? String) == "203.0.113.9" })
        #expect(log.contains { ($0["client"] as? String) == "2001:db8::7" })
    }

    /// TLS after the header: curl sends a v1 header, then its ClientHello.
    @Test func theProxyProtocolBeforeTLS() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let t = tenantJSON(name: "p", hosts: ["p.test"], origins: #"{"o": {"servers": ["\#(origin.address)"]}}"#,
                           routes: #"[{"prefix": "/", "origin": "o"}]"#, extra: #""tls": "internal""#)
        let edge = try Edge(tenants: [t], server: #"{"proxy_protocol": true}"#)
        defer { edge.stop() }
        let (rc, out) = try shell("curl -sk --haproxy-protocol --interface 127.0.0.13 --resolve p.test:\(edge.httpsPort):127.0.0.1 https://p.test:\(edge.httpsPort)/echo")
        #expect(rc == 0, "\(out)")
        #expect(out.contains("127.0.0.13"), "\(out)")   // the header's source, as X-Forwarded-For
        let (rc2, _) = try shell("curl -sk -m 5 --resolve p.test:\(edge.httpsPort):127.0.0.1 https://p.test:\(edge.httpsPort)/echo")
        #expect(rc2 != 0)   // a ClientHello without the header is refused
    }

    @Test func aTrustedProxysForwardedClientIsTheOneLimited() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let edge = try Edge(tenants: [tenant(origin, #""rate_limits": {"l": {"rate": "1/m"}}, "access": {"deny": ["192.0.2.66"]}"#)],
                            server: #"{"trusted_proxies": ["127.0.0.0/24"]}"#)
        defer { edge.stop() }
        // Each forwarded client has its own bucket behind the one proxy address.
        #expect(try request(edge.port, "/echo", host: "p.test", headers: ["X-Forwarded-For: 10.9.9.9, 192.0.2.1"], from: "127.0.0.20").status == 200)
        #expect(try request(edge.port, "/echo", host: "p.test", headers: ["X-Forwarded-For: 192.0.2.2"], from: "127.0.0.20").status == 200)
        #expect(try request(edge.port, "/echo", host: "p.test", headers: ["X-Forwarded-For: 192.0.2.1"], from: "127.0.0.20").status == 429)
        #expect(try request(edge.port, "/echo", host: "p.test", headers: ["X-Forwarded-For: 192.0.2.66"], from: "127.0.0.20").status == 403)
        // An untrusted peer's X-Forwarded-For counts for nothing: it is limited as itself.
        #expect(try request(edge.port, "/echo", host: "p.test", headers: ["X-Forwarded-For: 192.0.2.3"], from: "127.0.1.20").status == 200)
        #expect(try request(edge.port, "/echo", host: "p.test", headers: ["X-Forwarded-For: 192.0.2.4"], from: "127.0.1.20").status == 429)
    }

    @Test func socketAddressesBecomeTheSameValues() throws {
        for text in ["127.0.0.1", "10.1.2.3", "::1", "2001:db8::8a2e:370:7334", "fe80::1", "2001:db8:0:1:1:1:1:1"] {
            let a = try #require(SocketAddress(text.contains(":") ? "[\(text)]:80" : "\(text):80"))
            #expect(a.ipAddress == IPAddress(text))
            #expect(a.ipAddress.description == a.ipString)   // our text is glibc's for these
        }
    }
}
