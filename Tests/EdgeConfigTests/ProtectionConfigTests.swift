import Foundation
import Testing
@testable import EdgeConfig
import EdgeProtect

@Suite struct ProtectionConfigTests {
    static let base = #"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o"}, {"prefix": "/api/", "origin": "o"}]"#

    @Test func tenantAccessAndRateLimits() throws {
        let dir = try scratch(["blocked.txt": "# scanners\n198.51.100.0/24\n\n2001:db8::/32 # a range\n", "t.json": Self.base + #"""
        , "access": {"deny": ["203.0.113.0/24"], "deny_file": "blocked.txt", "allow": ["203.0.113.7"]},
          "rate_limits": {
            "per-client": {"rate": "10/s", "burst": 20},
            "api-key": {"rate": "600/m", "key": ["header:X-Api-Key", "route"], "routes": ["/api/"], "status": 503, "dry_run": true},
            "by-cookie": {"rate": "1/10s", "key": "cookie:session"} } }
        """#])
        let t = try ConfigLoader.loadTenants(directory: dir)[0]
        #expect(t.access.verdict(IPAddress("203.0.113.9")!) == .deny)
        #expect(t.access.verdict(IPAddress("203.0.113.7")!) == .allow)
        #expect(t.access.verdict(IPAddress("198.51.100.200")!) == .deny)
        #expect(t.access.verdict(IPAddress("2001:db8::1")!) == .deny)
        #expect(t.access.verdict(IPAddress("192.0.2.1")!) == .allow)
        #expect(t.rateLimits.map(\.name) == ["api-key", "by-cookie", "per-client"])
        let api = t.rateLimits[0]
        #expect(api.key == [.header("x-api-key"), .route] && api.routes == ["/api/"] && api.status == 503 && api.dryRun)
        #expect(api.spec.interval == 100_000)
        #expect(t.rateLimits[1].key == [.cookie("session")] && t.rateLimits[1].spec.interval == 10_000_000)
        #expect(t.rateLimits[2].key == [.client] && t.rateLimits[2].spec.burst == 20 && t.rateLimits[2].routes == nil && t.rateLimits[2].status == 429)
    }

    @Test(arguments: [
        (#", "access": {"deny": ["10.0.0.1/8"]}}"#, "access.deny[0]"),
        (#", "access": {"deny": ["10.0.0.0/8"], "allow": ["10.0.0.0/8"]}}"#, "access.allow"),
        (#", "access": {"deny_file": "missing.txt"}}"#, "access.deny_file"),
        (#", "access": {"deny_file": "bad.txt"}}"#, "access.deny_file"),
        (#", "access": {"default": "maybe"}}"#, "access.default"),
        (#", "access": {"block": []}}"#, "access.block"),
        (#", "rate_limits": {"x": {"burst": 3}}}"#, "rate_limits.x.rate"),
        (#", "rate_limits": {"x": {"rate": "10 per second"}}}"#, "rate_limits.x.rate"),
        (#", "rate_limits": {"x": {"rate": "10/s", "burst": -1}}}"#, "rate_limits.x.burst"),
        (#", "rate_limits": {"x": {"rate": "10/s", "key": ["ip"]}}}"#, "rate_limits.x.key[0]"),
        (#", "rate_limits": {"x": {"rate": "10/s", "key": ["header:"]}}}"#, "rate_limits.x.key[0]"),
        (#", "rate_limits": {"x": {"rate": "10/s", "key": []}}}"#, "rate_limits.x.key"),
        (#", "rate_limits": {"x": {"rate": "10/s", "routes": ["/nope/"]}}}"#, "rate_limits.x.routes[0]"),
        (#", "rate_limits": {"x": {"rate": "10/s", "status": 200}}}"#, "rate_limits.x.status"),
        (#", "rate_limits": {"x": {"rate": "10/s", "delay": 3}}}"#, "rate_limits.x.delay"),
        (#", "rate_limits": {"a b": {"rate": "10/s"}}}"#, "rate_limits.a b"),
    ])
    func errorsNameTheField(_ tail: String, _ field: String) throws {
        let e = try loadError(["bad.json": Self.base + tail, "bad.txt": "10.0.0.0/8\nnot-an-address\n"])
        #expect(e?.field == field, "\(String(describing: e))")
        #expect(e?.file.hasSuffix("bad.json") == true)
        if field == "access.deny_file" && tail.contains("bad.txt") { #expect(e?.message.contains("line 2") == true) }
    }

    @Test func serverProtection() throws {
        let dir = try scratch(["s.json": #"""
        {"proxy_protocol": true, "trusted_proxies": ["10.0.0.0/8", "::1"], "access": {"deny": ["192.0.2.0/24"]},
         "limits": {"new_connections_per_ip": {"rate": "20/s", "burst": 40}, "max_requests_per_connection": 500,
                    "rate_limit_keys": 65536, "proxy_protocol_timeout": "2s"}}
        """#, "bad1.json": #"{"trusted_proxies": ["10.0.0.0/33"]}"#, "bad2.json": #"{"limits": {"new_connections_per_ip": "fast"}}"#,
               "bad3.json": #"{"limits": {"max_requests_per_connection": 100000}}"#, "bad4.json": #"{"access": {"allow": ["x"]}}"#])
        let s = try ConfigLoader.loadServer(file: dir + "/s.json")
        #expect(s.proxyProtocol && s.proxyProtocolTimeoutMillis == 2000)
        #expect(s.trustedProxies == ["10.0.0.0/8", "::1"])
        #expect(s.access.verdict(IPAddress("192.0.2.5")!) == .deny && s.access.verdict(IPAddress("192.0.3.5")!) == .allow)
        #expect(s.newConnectionsPerIP == RateSpec(rate: "20/s", burst: 40))
        #expect(s.maxRequestsPerConnection == 500 && s.rateLimitKeys == 65536)
        for (f, field) in [("bad1", "trusted_proxies[0]"), ("bad2", "limits.new_connections_per_ip"), ("bad3", "limits.max_requests_per_connection"), ("bad4", "access.allow[0]")] {
            do { _ = try ConfigLoader.loadServer(file: dir + "/\(f).json"); Issue.record("\(f) loaded") } catch let e as ConfigError { #expect(e.field == field) }
        }
        let d = ServerConfig()
        #expect(!d.proxyProtocol && d.access.isEmpty && d.newConnectionsPerIP == nil && d.maxRequestsPerConnection == 10_000)
    }

    /// 100,000 prefixes from a file load well under a second (not timed here: see tools/bench).
    @Test func aLargeListLoads() throws {
        var text = ""
        for i in 0..<100_000 { text += "10.\(i >> 8 & 0xff).\(i & 0xff).0/24\n" }
        let dir = try scratch(["big.txt": text, "t.json": Self.base + #", "access": {"deny_file": "big.txt"}}"#])
        let t = try ConfigLoader.loadTenants(directory: dir)[0]
        #expect(t.access.prefixCount == 100_000)
        #expect(t.access.verdict(IPAddress("10.3.4.5")!) == .deny)
        #expect(t.access.verdict(IPAddress("11.0.0.1")!) == .allow)
    }
}
