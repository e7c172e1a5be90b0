import Foundation
import Testing
@testable import EdgeConfig

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Writes files into a fresh directory and returns its path.
func scratch(_ files: [String: String]) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edge-config-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (name, text) in files {
        let u = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: u, atomically: false, encoding: .utf8)
    }
    return dir.path
}

func loadError(_ files: [String: String]) throws -> ConfigError? {
    let dir = try scratch(files)
    do { _ = try ConfigLoader.loadTenants(directory: dir); return nil } catch let e as ConfigError { return e }
}

let good = #"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:9000"]}}, "routes": [{"prefix": "/", "origin": "o"}]}"#

@Suite(.timeLimit(.minutes(3))) struct LoaderTests {
    @Test func repositoryExampleTenantsLoad() throws {
        let tenants = try ConfigLoader.loadTenants(directory: repoRoot.appendingPathComponent("tenants").path)
        #expect(tenants.map(\.name).sorted() == ["api", "example"])
        let api = tenants.first { $0.name == "api" }!
        #expect(api.routes.count == 2)
        #expect(api.limits.originConnectTimeoutMillis == 3500)
        #expect(api.origins.first { $0.name == "backend" }?.balance == "least-connections")
    }

    @Test func parsesEveryField() throws {
        let dir = try scratch(["site/index.html": "x", "shop.json": #"""
        { "name": "shop", "hosts": ["Shop.Test.", "*.shop.test"], "default": true,
          "origins": {
            "app": {"servers": ["http://127.0.0.1:9000/", "localhost:9001"], "balance": "least-connections",
                    "max_fails": 2, "fail_backoff": "1.5s", "keepalive": 8},
            "files": {"directory": "site", "index": "home.html"} },
          "routes": [ {"prefix": "/api/", "origin": "app", "strip_prefix": true, "host": "internal.app",
                       "request_headers": {"add": {"X-A": "1"}, "remove": ["Cookie"]},
                       "response_headers": {"remove": ["Server"]}},
                      {"prefix": "/", "origin": "files"} ],
          "limits": {"max_body": "2MiB", "origin_connect_timeout": "250ms", "origin_read_timeout": 5, "origin_idle_timeout": "1m",
                     "cache_bytes": "64MiB", "disk_cache_bytes": "2GiB"} }
        """#])
        let t = try ConfigLoader.loadTenants(directory: dir)[0]
        #expect(t.hosts == ["shop.test", "*.shop.test"])
        #expect(t.isDefault)
        let app = t.origins.first { $0.name == "app" }!
        #expect(app.kind == .http(servers: ["127.0.0.1:9000", "localhost:9001"]))
        #expect(app.maxFails == 2 && app.failBackoffMillis == 1500 && app.keepAlive == 8)
        #expect(t.routes[0].stripPrefix && t.routes[0].hostRewrite == "internal.app")
        #expect(t.routes[0].requestHeaders.remove == ["cookie"])
        #expect(t.limits.maxBodyBytes == 2 << 20)
        #expect(t.limits.originConnectTimeoutMillis == 250)
        #expect(t.limits.originReadTimeoutMillis == 5000)
        #expect(t.limits.originIdleTimeoutMillis == 60_000)
        #expect(t.limits.cacheBytes == 64 << 20 && t.limits.diskCacheBytes == 2 << 30)
    }

    @Test func routeCacheControls() throws {
        let dir = try scratch(["a.json": #"""
        { "hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}},
          "routes": [{"prefix": "/", "origin": "o", "cache": {
            "ttl_override": {"200": "1h", "5XX": 30}, "negative_ttl": "5s", "default_ttl": "2m", "ttl_min": "1s", "ttl_max": "1d",
            "key_headers": ["X-Device"], "key_cookies": ["lang"], "keep_query": ["id"],
            "bypass": {"cookies": ["sessionid"], "headers": ["X-Preview"], "paths": ["/admin/*"]},
            "languages": ["en", "de-CH"], "stale_if_disconnected": "1h", "slice": "1MiB"}}] }
        """#])
        let c = try ConfigLoader.loadTenants(directory: dir)[0].routes[0].cache
        #expect(c.ttlOverride == ["200": 3600, "5xx": 30])
        #expect(c.negativeTTLSeconds == 5 && c.defaultTTLSeconds == 120 && c.ttlMinSeconds == 1 && c.ttlMaxSeconds == 86_400)
        #expect(c.keyHeaders == ["x-device"] && c.keyCookies == ["lang"] && c.keepQuery == ["id"])
        #expect(c.bypassCookies == ["sessionid"] && c.bypassHeaders == ["x-preview"] && c.bypassPaths == ["/admin/*"])
        #expect(c.languages == ["en", "de-ch"] && c.staleIfDisconnectedSeconds == 3600)
        #expect(c.sliceBytes == 1024 * 1024)
    }

    @Test(arguments: [
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:9000"]}}, "routes": [{"prefix": "/", "origin": "nope"}]}"#, "routes[0].origin"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1"]}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.servers[0]"),
        (#"{"hosts": ["a b"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "hosts[0]"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "balanse": "x"}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.balanse"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "x", "origin": "o"}]}"#, "routes[0].prefix"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o"}], "limits": {"origin_read_timeout": "soon"}}"#, "limits.origin_read_timeout"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o"}], "limits": {"disk_cache_bytes": "lots"}}"#, "limits.disk_cache_bytes"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"directory": "/no/such/dir"}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.directory"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["https://x:443", "http://y:80"]}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.servers[1]"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["http://y:80"], "tls": {}}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.tls"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["https://y:443"], "tls": {"ca": "/no/ca.pem"}}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.tls.ca"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["y:80"]}}, "routes": [{"prefix": "/", "origin": "o"}], "hsts": "max-age=1"}"#, "hsts"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["y:80"]}}, "routes": [{"prefix": "/", "origin": "o"}], "tls": {"certificates": [{"cert": "/no/c.pem", "key": "/no/k.pem"}]}}"#, "tls.certificates[0].cert"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "request_headers": {"add": {"Bad Name": "v"}}}]}"#, "routes[0].request_headers.add.Bad Name"),
        (#"{"origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "hosts"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o"}], "default": "yes"}"#, "default"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"methods": ["PUT"]}}]}"#, "routes[0].cache.methods[0]"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"body_key_limit": "1MiB"}}]}"#, "routes[0].cache.body_key_limit"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o"}], "purge_tag_headers": ["Bad Name"]}"#, "purge_tag_headers[0]"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o"}], "compress": {"types": ["html"]}}"#, "compress.types[0]"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o"}], "compress": {"gzip_level": 10}}"#, "compress.gzip_level"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "compress": {"level": 1}}]}"#, "routes[0].compress.level"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o"}], "pass_request_headers": ["X-Original-URL", "Cookie"]}"#, "pass_request_headers[1]"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "websocket": {"idle": "1m"}}]}"#, "routes[0].websocket.idle"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "websocket": {"idle_timeout": 0}}]}"#, "routes[0].websocket.idle_timeout"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "websocket": "yes"}]}"#, "routes[0].websocket"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"ttl_override": {"2000": "1h"}}}]}"#, "routes[0].cache.ttl_override.2000"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"ttl_override": {"6xx": "1h"}}}]}"#, "routes[0].cache.ttl_override.6xx"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"ttl_override": {"200": "forever"}}}]}"#, "routes[0].cache.ttl_override.200"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"ttl_min": "1h", "ttl_max": "1m"}}]}"#, "routes[0].cache.ttl_min"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"default_ttl": -5}}]}"#, "routes[0].cache.default_ttl"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"key_headers": ["Cookie"]}}]}"#, "routes[0].cache.key_headers[0]"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"key_headers": ["X A"]}}]}"#, "routes[0].cache.key_headers[0]"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"key_cookies": ["a;b"]}}]}"#, "routes[0].cache.key_cookies[0]"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"keep_query": ["id"], "ignore_query": ["utm"]}}]}"#, "routes[0].cache.keep_query"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"bypass": {"paths": ["admin/*"]}}}]}"#, "routes[0].cache.bypass.paths[0]"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"bypass": {"cookie": ["s"]}}}]}"#, "routes[0].cache.bypass.cookie"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"languages": ["en_US"]}}]}"#, "routes[0].cache.languages[0]"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"stale_if_disconnected": "a while"}}]}"#, "routes[0].cache.stale_if_disconnected"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"slice": "4KiB"}}]}"#, "routes[0].cache.slice"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"slice": "1GiB"}}]}"#, "routes[0].cache.slice"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1", {"url": "127.0.0.1:2", "weight": 0}]}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.servers[1].weight"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": [{"weight": 2}]}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.servers[0].url"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": [{"url": "127.0.0.1:2", "wieght": 2}]}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.servers[0].wieght"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": [7]}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.servers[0]"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "balance": "random"}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.balance"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "hash_key": "uri"}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.hash_key"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "balance": "hash", "hash_key": "header:"}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.hash_key"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "balance": "hash", "hash_balance_factor": 0.5}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.hash_balance_factor"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "health_check": {"path": "health"}}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.health_check.path"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "health_check": {"expect": ["2xy"]}}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.health_check.expect"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "health_check": {"interval": "10ms"}}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.health_check.interval"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "health_check": {"method": "HEAD", "body": "ok"}}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.health_check.body"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "health_check": {"rise": 0}}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.health_check.rise"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "health_check": {"uri": "/"}}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.health_check.uri"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "balance": "hash", "slow_start": "30s"}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.slow_start"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "retry_budget": 1.5}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.retry_budget"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "retry_on": [404]}}, "routes": [{"prefix": "/", "origin": "o"}]}"#, "origins.o.retry_on[0]"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o"}], "error_pages": {"200": "x.html"}}"#, "error_pages.200"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}, "c": {"servers": ["127.0.0.1:2"]}}, "routes": [{"prefix": "/", "origin": "o", "split": {"sides": [{"origin": "o"}]}}]}"#, "routes[0].split.sides"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}, "c": {"servers": ["127.0.0.1:2"]}}, "routes": [{"prefix": "/", "origin": "o", "split": {"sides": [{"origin": "o"}, {"origin": "x"}]}}]}"#, "routes[0].split.sides[1].origin"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}, "c": {"servers": ["127.0.0.1:2"]}}, "routes": [{"prefix": "/", "origin": "o", "split": {"sides": [{"origin": "c"}, {"origin": "o"}]}}]}"#, "routes[0].split.sides"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}, "c": {"servers": ["127.0.0.1:2"]}}, "routes": [{"prefix": "/", "origin": "o", "split": {"sides": [{"origin": "o", "weight": 0}, {"origin": "c", "weight": 0}]}}]}"#, "routes[0].split.sides"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}, "c": {"servers": ["127.0.0.1:2"]}}, "routes": [{"prefix": "/", "origin": "o", "split": {"sides": [{"origin": "o"}, {"origin": "c", "weight": -1}]}}]}"#, "routes[0].split.sides[1].weight"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}, "c": {"servers": ["127.0.0.1:2"]}}, "routes": [{"prefix": "/", "origin": "o", "split": {"sides": [{"origin": "o"}, {"origin": "c"}], "sticky": "ip"}}]}"#, "routes[0].split.sticky"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o"}], "error_pages": {"502": "missing.html"}}"#, "error_pages.502"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "rewrite": {"pattern": "(", "replacement": "/"}}]}"#, "routes[0].rewrite.pattern"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "rewrite": {"pattern": "^/(a)$", "replacement": "/$2"}}]}"#, "routes[0].rewrite.replacement"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "rewrite": {"pattern": "a"}}]}"#, "routes[0].rewrite.replacement"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "redirect": {"status": 200, "location": "/x"}}]}"#, "routes[0].redirect.status"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "redirect": {"location": "https://$hots/"}}]}"#, "routes[0].redirect.location"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "redirect": {"location": "/a"}, "respond": {}}]}"#, "routes[0].redirect"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "respond": {"status": 99}}]}"#, "routes[0].respond.status"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/"}]}"#, "routes[0].origin"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}, "c": {"servers": ["127.0.0.1:2"]}}, "routes": [{"prefix": "/", "origin": "o", "split": {"sides": [{"origin": "o"}, {"origin": "c"}], "cache": "both"}}]}"#, "routes[0].split.cache"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "mirror": {"origin": "x"}}]}"#, "routes[0].mirror.origin"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}, "c": {"servers": ["127.0.0.1:2"]}}, "routes": [{"prefix": "/", "origin": "o", "split": {"sides": [{"origin": "o"}, {"origin": "c"}], "sticky": "client", "set_cookie": true}}]}"#, "routes[0].split.set_cookie"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "redirect": {"pattern": "(", "location": "/"}}]}"#, "routes[0].redirect.pattern"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "redirect": {"pattern": "^/(a)$", "location": "/$2"}}]}"#, "routes[0].redirect.location"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "redirect": {"location": "/$1"}}]}"#, "routes[0].redirect.location"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "o", "mirror": {"origin": "o"}}]}"#, "routes[0].mirror.origin"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}, "s": {"servers": ["127.0.0.1:2"]}}, "routes": [{"prefix": "/", "origin": "o", "mirror": {"origin": "s", "percent": 0}}]}"#, "routes[0].mirror.percent"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}, "s": {"servers": ["127.0.0.1:2"]}}, "routes": [{"prefix": "/", "origin": "o", "mirror": {"origin": "s", "percent": 101}}]}"#, "routes[0].mirror.percent"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}, "s": {"servers": ["127.0.0.1:2"]}}, "routes": [{"prefix": "/", "origin": "o", "mirror": {"origin": "s", "max_body": "2MiB"}}]}"#, "routes[0].mirror.max_body"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}, "s": {"servers": ["127.0.0.1:2"]}}, "routes": [{"prefix": "/", "origin": "o", "mirror": {"origin": "s", "queue": 5}}]}"#, "routes[0].mirror.queue"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}, "s": {"servers": ["https://127.0.0.1:2"]}}, "routes": [{"prefix": "/", "origin": "o", "mirror": {"origin": "s"}}]}"#, "routes[0].mirror.origin"),
        (#"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}, "s": {"servers": ["127.0.0.1:2"]}}, "routes": [{"prefix": "/", "respond": {"status": 204}, "mirror": {"origin": "s"}}]}"#, "routes[0].mirror"),
    ])
    func errorsNameFileAndField(_ json: String, _ field: String) throws {
        let e = try loadError(["bad.json": json])
        #expect(e?.field == field, "\(String(describing: e))")
        #expect(e?.file.hasSuffix("bad.json") == true)
    }

    @Test func serversTakeWeightsAndHashGroupsTheirKey() throws {
        let dir = try scratch(["w.json": #"""
        { "hosts": ["w.test"],
          "origins": {"o": {"servers": ["127.0.0.1:1", {"url": "http://127.0.0.1:2", "weight": 5}], "balance": "hash",
                            "hash_key": "cookie:sid", "hash_balance_factor": 1.5}},
          "routes": [{"prefix": "/", "origin": "o"}] }
        """#])
        let g = try ConfigLoader.loadTenants(directory: dir)[0].origins[0]
        #expect(g.kind == .http(servers: ["127.0.0.1:1", "127.0.0.1:2"]))
        #expect(g.weights == [1, 5])
        #expect(g.balance == "hash" && g.hashKey == "cookie:sid" && g.hashBalanceFactor == 1.5)
        #expect(g.retryOn == [] && !g.retryOnTimeout)
        let retry = try scratch(["r.json": #"{"hosts": ["r.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "retry_on": [502, "timeout", 504]}}, "routes": [{"prefix": "/", "origin": "o"}]}"#])
        let r = try ConfigLoader.loadTenants(directory: retry)[0].origins[0]
        #expect(r.retryOn == [502, 504] && r.retryOnTimeout)
        let bad = try loadError(["bad.json": #"{"hosts": ["r.test"], "origins": {"o": {"servers": ["127.0.0.1:1"], "retry_on": [502, "timeouts"]}}, "routes": [{"prefix": "/", "origin": "o"}]}"#])
        #expect(bad?.field == "origins.o.retry_on[1]", "\(String(describing: bad))")
    }

    @Test func mirrorsAndKeyedSplitsLoadWithTheirDefaults() throws {
        let dir = try scratch(["m.json": #"""
        { "hosts": ["m.test"],
          "origins": {"o": {"servers": ["127.0.0.1:1"]}, "c": {"servers": ["127.0.0.1:2"]}, "s": {"servers": ["127.0.0.1:3"]}},
          "routes": [{"prefix": "/", "origin": "o", "mirror": {"origin": "s"},
                      "split": {"sides": [{"origin": "o"}, {"origin": "c"}], "cache": "keyed"}},
                     {"prefix": "/a/", "origin": "o", "mirror": {"origin": "s", "percent": 2.5, "max_body": "8KiB"},
                      "split": {"sides": [{"origin": "o"}, {"origin": "c"}], "cache": "first"}}] }
        """#])
        let routes = try ConfigLoader.loadTenants(directory: dir)[0].routes
        #expect(routes[0].mirror == RouteMirror(origin: "s"))
        #expect(routes[0].mirror?.percent == 100 && routes[0].mirror?.maxBody == 64 << 10)
        #expect(routes[0].split?.keyed == true)
        #expect(routes[1].mirror?.percent == 2.5 && routes[1].mirror?.maxBody == 8192)
        #expect(routes[1].split?.keyed == false)
    }

    @Test func invalidJSONNamesTheFile() throws {
        let e = try loadError(["ok.json": good, "broken.json": "{\"hosts\": [\"x\",]"])
        #expect(e?.file.hasSuffix("broken.json") == true)
        #expect(e?.message.hasPrefix("invalid JSON") == true)
    }

    @Test func tenantsAreCheckedAgainstEachOther() throws {
        let e = try loadError(["a.json": good, "b.json": good.replacingOccurrences(of: "\"hosts\"", with: "\"name\": \"b\", \"hosts\"")])
        #expect(e?.file.hasSuffix("b.json") == true)
        #expect(e?.field == "hosts[0]")
        #expect(e?.message.contains("already belongs to") == true)
        let twoDefaults = try loadError([
            "a.json": good.replacingOccurrences(of: "\"routes\"", with: "\"default\": true, \"routes\""),
            "b.json": good.replacingOccurrences(of: "a.test", with: "b.test").replacingOccurrences(of: "\"routes\"", with: "\"default\": true, \"routes\""),
        ])
        #expect(twoDefaults?.field == "default")
        #expect(try loadError([:])?.message.contains("no tenant files") == true)
    }

    @Test func serverFile() throws {
        let dir = try scratch(["server.json": #"{"http": "127.0.0.1:8088", "workers": 3, "trusted_proxies": ["10.0.0.1"], "access_log": "off", "limits": {"request_line": "4KiB", "field": 4096, "header_block": "16KiB", "fields": 50, "header_timeout": "5s", "keepalive_timeout": "75s", "max_connections": 100}}"#,
                               "bad.json": #"{"limits": {"header_timeout": true}}"#])
        let s = try ConfigLoader.loadServer(file: dir + "/server.json")
        #expect(s.httpListen == "127.0.0.1:8088" && s.workers == 3 && s.accessLog == "off")
        #expect(s.head.maxRequestLine == 4096 && s.head.maxFieldLine == 4096 && s.head.maxHeadBytes == 16384 && s.head.maxFields == 50)
        #expect(s.headerTimeoutMillis == 5000 && s.keepAliveTimeoutMillis == 75_000 && s.maxConnectionsPerWorker == 100)
        #expect(throws: ConfigError(file: dir + "/bad.json", field: "limits.header_timeout", message: "expected a duration like \"10s\", \"500ms\" or \"2m\"")) {
            try ConfigLoader.loadServer(file: dir + "/bad.json")
        }
        let admin = try scratch(["s.json": #"{"admin": {"listen": "127.0.0.1:9901"}}"#])
        #expect(throws: ConfigError.self) { try ConfigLoader.loadServer(file: admin + "/s.json") }
        do { _ = try ConfigLoader.loadServer(file: admin + "/s.json") } catch let e as ConfigError { #expect(e.field == "admin.token_file") }
        let defaults = ServerConfig()
        #expect(defaults.head.maxRequestLine == 8192 && defaults.head.maxHeadBytes == 32768 && defaults.head.maxFields == 100)
        #expect(defaults.headerTimeoutMillis == 10_000 && defaults.keepAliveTimeoutMillis == 30_000)
    }

    @Test func logFormatAndRequestIDs() throws {
        func server(_ json: String) throws -> ServerConfig { try ConfigLoader.loadServer(file: try scratch(["s.json": json]) + "/s.json") }
        func error(_ json: String) throws -> ConfigError? {
            do { _ = try server(json); return nil } catch let e as ConfigError { return e }
        }
        #expect(ServerConfig().logFormat == .json(.all) && ServerConfig().requestID)
        #expect(try server(#"{"log_format": "combined", "request_id": false}"#).logFormat == .combined)
        #expect(try server(#"{"request_id": false}"#).requestID == false)
        #expect(try server(#"{"log_format": "common"}"#).logFormat == .common)
        let chosen = try server(#"{"log_format": ["time", "status", "user_agent", "origin_bytes_in"]}"#).logFormat
        #expect(chosen == .json(LogFieldSet([.time, .status, .userAgent, .originBytesIn])))
        if case .json(let f) = chosen { #expect(f.has(.userAgent) && !f.has(.referer)) }
        // Every key round-trips, and each is what a line says.
        for f in LogField.allCases { #expect(LogField(key: f.key) == f) }
        #expect(LogField.allCases.map(\.key).contains("request_id") && LogField.allCases.map(\.key).contains("protocol"))
        let bad = try error(#"{"log_format": ["status", "agent"]}"#)
        #expect(bad?.field == "log_format[1]" && bad?.message.contains("not a log field") == true, "\(String(describing: bad))")
        #expect(try error(#"{"log_format": "apache"}"#)?.field == "log_format")
        #expect(try error(#"{"log_format": []}"#)?.field == "log_format")
        #expect(try error(#"{"request_id": "yes"}"#)?.field == "request_id")
    }

    /// The disk tier's admission rule: "all" by default, "second_request" on
    /// request, anything else refused naming `cache.disk_admission`.
    @Test func diskAdmission() throws {
        func server(_ json: String) throws -> ServerConfig { try ConfigLoader.loadServer(file: try scratch(["s.json": json]) + "/s.json") }
        #expect(ServerConfig().cacheDiskAdmission == "all")
        #expect(try server(#"{"cache": {"disk_admission": "second_request"}}"#).cacheDiskAdmission == "second_request")
        #expect(try server(#"{"cache": {"disk_admission": "all"}}"#).cacheDiskAdmission == "all")
        do {
            _ = try server(#"{"cache": {"disk_admission": "twice"}}"#)
            Issue.record("accepted \"twice\"")
        } catch let e as ConfigError {
            #expect(e.field == "cache.disk_admission" && e.message.contains("second_request"), "\(e)")
        }
    }

    @Test func nodeNameFleetAndShieldGroups() throws {
        func serverError(_ json: String) throws -> ConfigError? {
            let dir = try scratch(["s.json": json])
            do { _ = try ConfigLoader.loadServer(file: dir + "/s.json"); return nil } catch let e as ConfigError { return e }
        }
        let dir = try scratch(["s.json": #"{"node_name": "edge-fra.1", "fleet": {"name": "acme", "max_hops": 3, "peers": ["http://10.0.0.2:9901", "/run/edged/admin.sock"], "token_file": "tok", "sync_interval": "30s"}}"#])
        let s = try ConfigLoader.loadServer(file: dir + "/s.json")
        #expect(s.nodeName == "edge-fra.1" && s.fleet.name == "acme" && s.fleet.maxHops == 3 && s.fleet.syncIntervalMillis == 30_000)
        #expect(s.fleet.peers.count == 2 && s.fleet.peerTokenFile == dir + "/tok")
        // The default is the host name, as a token.
        #expect(!ServerConfig().nodeName.isEmpty && ServerConfig().nodeName.allSatisfy(ServerConfig.isNodeNameCharacter))
        #expect(try serverError(#"{"node_name": "a b"}"#)?.field == "node_name")
        #expect(try serverError(#"{"fleet": {"name": ""}}"#)?.field == "fleet.name")
        #expect(try serverError(#"{"fleet": {"peers": ["http://8.8.8.8:9901"], "token_file": "t"}}"#)?.field == "fleet.peers[0]")
        #expect(try serverError(#"{"fleet": {"peers": ["relative.sock"]}}"#)?.field == "fleet.peers[0]")
        #expect(try serverError(#"{"fleet": {"peers": ["http://127.0.0.1:9901"]}}"#)?.field == "fleet.token_file")
        #expect(try serverError(#"{"fleet": {"sync_interval": "10ms"}}"#)?.field == "fleet.sync_interval")
        #expect(try serverError(#"{"fleet": {"peer": []}}"#)?.field == "fleet.peer")

        let shield = #"{"hosts": ["a.test"], "origins": {"s": {"servers": ["127.0.0.1:9001"], "shield": true, "fallback": "o"}, "o": {"servers": ["127.0.0.1:9000"]}}, "routes": [{"prefix": "/", "origin": "s"}]}"#
        let t = try ConfigLoader.loadTenants(directory: try scratch(["a.json": shield]))[0]
        let g = try #require(t.origins.first { $0.name == "s" })
        #expect(g.shield && g.balance == "hash" && g.hashKey == "key" && g.hashBalanceFactor == 0 && g.fallback == "o")
        #expect(try loadError(["a.json": shield.replacingOccurrences(of: #""fallback": "o""#, with: #""fallback": "s""#)])?.field == "origins.s.fallback")
        #expect(try loadError(["a.json": shield.replacingOccurrences(of: #""fallback": "o""#, with: #""fallback": "x""#)])?.field == "origins.s.fallback")
        #expect(try loadError(["a.json": shield.replacingOccurrences(of: #""shield": true"#, with: #""shield": true, "balance": "round-robin""#)])?.field == "origins.s.balance")
        #expect(try loadError(["a.json": shield.replacingOccurrences(of: #""o": {"servers": ["127.0.0.1:9000"]}"#, with: #""o": {"servers": ["127.0.0.1:9000"], "fallback": "s"}"#)])?.field == "origins.o.fallback")
    }

    @Test func acmeTenantsAndServerDefaults() throws {
        func tenant(_ tls: String, hosts: String = #"["a.test", "www.a.test"]"#) -> String {
            #"{"hosts": \#(hosts), "tls": \#(tls), "origins": {"o": {"servers": ["127.0.0.1:9000"]}}, "routes": [{"prefix": "/", "origin": "o"}]}"#
        }
        let t = try ConfigLoader.loadTenants(directory: try scratch(["a.json": tenant(#"{"acme": {"directory": "https://ca.test/dir", "email": "ops@a.test", "challenge": "tls-alpn-01", "key_type": "rsa-2048"}}"#)]))[0]
        guard case .acme(let a) = t.tls else { Issue.record("not acme: \(t.tls)"); return }
        #expect(a.directory == "https://ca.test/dir" && a.email == "ops@a.test" && a.challenge == .tlsALPN01 && a.keyType == "rsa-2048")
        let plain = try ConfigLoader.loadTenants(directory: try scratch(["a.json": tenant(#""acme""#)]))[0]
        #expect(plain.tls == .acme(ACMETenantSettings()))
        // Wildcards need dns-01, which edged does not answer.
        #expect(try loadError(["a.json": tenant(#""acme""#, hosts: #"["*.a.test"]"#)])?.field == "tls")
        #expect(try loadError(["a.json": tenant(#"{"acme": {"challenge": "dns-01"}}"#)])?.field == "tls.acme.challenge")
        #expect(try loadError(["a.json": tenant(#"{"acme": {"directory": "http://ca.test/dir"}}"#)])?.field == "tls.acme.directory")
        #expect(try loadError(["a.json": tenant(#"{"acme": {"email": "nobody"}}"#)])?.field == "tls.acme.email")
        #expect(try loadError(["a.json": tenant(#"{"acme": {"key_type": "ed25519"}}"#)])?.field == "tls.acme.key_type")
        #expect(try loadError(["a.json": tenant(#"{"acme": {"eab": "x"}}"#)])?.field == "tls.acme.eab")
        #expect(try loadError(["a.json": tenant(#""letsencrypt""#)])?.field == "tls")

        func serverError(_ json: String) throws -> ConfigError? {
            let dir = try scratch(["s.json": json])
            do { _ = try ConfigLoader.loadServer(file: dir + "/s.json"); return nil } catch let e as ConfigError { return e }
        }
        let d = ServerConfig().acme
        #expect(d.directory == ACMEServerConfig.letsEncrypt && d.parallelism == 4 && d.internalUntilIssued && d.accountKeyType == "ecdsa-p256")
        let dir = try scratch(["s.json": #"{"acme": {"account_key_type": "rsa-2048", "parallelism": 8, "until_issued": "reject", "retry_min": "5s", "retry_max": "1h", "start_spread": "10m", "challenge": "tls-alpn-01"}}"#])
        let s = try ConfigLoader.loadServer(file: dir + "/s.json").acme
        #expect(s.accountKeyType == "rsa-2048" && s.parallelism == 8 && !s.internalUntilIssued && s.challenge == .tlsALPN01)
        #expect(s.retryMinMillis == 5000 && s.retryMaxMillis == 3_600_000 && s.startSpreadMillis == 600_000)
        #expect(try serverError(#"{"acme": {"retry_min": "5s", "retry_max": "1s"}}"#)?.field == "acme.retry_max")
        #expect(try serverError(#"{"acme": {"retry_min": "10ms"}}"#)?.field == "acme.retry_min")
        #expect(try serverError(#"{"acme": {"parallelism": 0}}"#)?.field == "acme.parallelism")
        #expect(try serverError(#"{"acme": {"account_key_type": "dsa"}}"#)?.field == "acme.account_key_type")
        #expect(try serverError(#"{"acme": {"until_issued": "wait"}}"#)?.field == "acme.until_issued")
        #expect(try serverError(#"{"acme": {"ca_file": "/no/ca.pem"}}"#)?.field == "acme.ca_file")
        #expect(try serverError(#"{"acme": {"parallel": 2}}"#)?.field == "acme.parallel")
    }

    @Test func noFileMode() throws {
        let t = try ConfigLoader.singleOriginTenant(origin: "http://127.0.0.1:9000", hosts: [])
        #expect(t.isDefault)
        #expect(t.origins[0].kind == .http(servers: ["127.0.0.1:9000"]))
        let named = try ConfigLoader.singleOriginTenant(origin: "127.0.0.1:9000/", hosts: ["A.test"])
        #expect(!named.isDefault && named.hosts == ["a.test"])
        #expect(throws: ConfigError.self) { try ConfigLoader.singleOriginTenant(origin: "http://x/y", hosts: []) }
    }
}
