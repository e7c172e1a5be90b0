// The directory origin, through a real edge server and real files.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy
import EdgeConfig

@Suite(.serialized, .timeLimit(.minutes(3))) struct DirectoryOriginTests {
    func edge() throws -> Edge {
        try Edge(tenants: [tenantJSON(name: "s", hosts: ["s.test"], origins: #"{"files": {"directory": "site"}}"#,
                                      routes: #"[{"prefix": "/", "origin": "files"}, {"prefix": "/static/", "origin": "files", "strip_prefix": true}]"#)],
                 files: ["site/index.html": "<h1>home</h1>", "site/a b.txt": "spaced", "site/data.json": "{\"k\": 1}",
                         "site/sub/index.html": "sub", "site/.env": "SECRET=1", "site/.well-known/security.txt": "contact",
                         "site/big.bin": String(repeating: "0123456789", count: 100_000)])
    }

    @Test func servesFilesWithTypesAndValidators() throws {
        let e = try edge()
        defer { e.stop() }
        let r = try request(e.port, "/", host: "s.test")
        #expect(r.status == 200)
        #expect(r.text == "<h1>home</h1>")
        #expect(r.header("Content-Type") == "text/html; charset=utf-8")
        #expect(r.header("ETag") != nil)
        #expect(r.header("Last-Modified") != nil)
        #expect(try request(e.port, "/data.json", host: "s.test").header("Content-Type") == "application/json")
        #expect(try request(e.port, "/a%20b.txt", host: "s.test").text == "spaced")
        #expect(try request(e.port, "/static/data.json", host: "s.test").text == "{\"k\": 1}")
        #expect(try request(e.port, "/sub/", host: "s.test").text == "sub")
        let redirect = try request(e.port, "/sub?x=1", host: "s.test")
        #expect(redirect.status == 301)
        #expect(redirect.header("Location") == "/sub/?x=1")
        let head = try request(e.port, "HEAD", "/data.json", host: "s.test")
        #expect(head.status == 200 && head.body.isEmpty && head.header("Content-Length") == "8")
    }

    @Test func slashRedirectsStayOnThisSite() throws {
        // Audit: `//evil.example/../sub` answered `Location: //evil.example/../sub/`.
        let e = try edge()
        defer { e.stop() }
        for (target, location) in [("//evil.example/../sub", "/sub/"), ("//evil.example/%2E%2E/sub?q=1", "/sub/?q=1"),
                                   ("///sub", "/sub/"), ("/static/sub", "/static/sub/"), ("/static//sub", "/static//sub/")] {
            let c = try Client(port: e.port)
            c.send("GET \(target) HTTP/1.1\r\nHost: s.test\r\nConnection: close\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.status == 301, "\(target)")
            #expect(r.header("Location") == location, "\(target)")
        }
    }

    @Test func linksNeverLeadOutOfTheRoot() throws {
        // Audit: a symlink in the root served /etc/passwd and the state directory's CA key.
        let e = try edge()
        defer { e.stop() }
        let site = e.dir.appendingPathComponent("tenants/site").path
        let outside = e.dir.appendingPathComponent("secret.txt").path
        try writeFile(outside, "TOP SECRET")
        #expect(symlink(outside, site + "/leak.txt") == 0)
        #expect(symlink("../secret.txt", site + "/relative-leak.txt") == 0)
        #expect(symlink(e.dir.path, site + "/up") == 0)
        #expect(symlink("data.json", site + "/inside.json") == 0)
        for path in ["/leak.txt", "/relative-leak.txt", "/up/secret.txt", "/inside.json"] {
            let r = try request(e.port, path, host: "s.test")
            #expect(r.status == 404, "\(path)")
            #expect(!r.text.contains("SECRET"), "\(path)")
        }
        e.stop()
        // "symlinks": "inside" follows links that stay in the root, and still no others.
        let inside = try Edge(tenants: [tenantJSON(name: "s", hosts: ["s.test"], origins: #"{"files": {"directory": "site", "symlinks": "inside"}}"#,
                                                   routes: #"[{"prefix": "/", "origin": "files"}]"#)],
                              files: ["site/data.json": "{\"k\": 1}", "site/sub/x.txt": "x"])
        defer { inside.stop() }
        let root = inside.dir.appendingPathComponent("tenants/site").path
        let secret = inside.dir.appendingPathComponent("secret.txt").path
        try writeFile(secret, "TOP SECRET")
        #expect(symlink("data.json", root + "/inside.json") == 0)
        #expect(symlink("../data.json", root + "/sub/up.json") == 0)
        #expect(symlink(secret, root + "/leak.txt") == 0)
        #expect(symlink("../secret.txt", root + "/relative-leak.txt") == 0)
        #expect(try request(inside.port, "/inside.json", host: "s.test").text == "{\"k\": 1}")
        #expect(try request(inside.port, "/sub/up.json", host: "s.test").text == "{\"k\": 1}")
        for path in ["/leak.txt", "/relative-leak.txt"] {
            let r = try request(inside.port, path, host: "s.test")
            #expect(r.status == 404 && !r.text.contains("SECRET"), "\(path)")
        }
    }

    @Test func conditionalAndRangeRequests() throws {
        let e = try edge()
        defer { e.stop() }
        let first = try request(e.port, "/big.bin", host: "s.test")
        #expect(first.body.count == 1_000_000)
        let etag = try #require(first.header("ETag"))
        let lm = try #require(first.header("Last-Modified"))
        #expect(try request(e.port, "/big.bin", host: "s.test", headers: ["If-None-Match: \"nope\", \(etag)"]).status == 304)
        #expect(try request(e.port, "/big.bin", host: "s.test", headers: ["If-None-Match: W/\(etag)"]).status == 304)
        #expect(try request(e.port, "/big.bin", host: "s.test", headers: ["If-Modified-Since: \(lm)"]).status == 304)
        #expect(try request(e.port, "/big.bin", host: "s.test", headers: ["If-None-Match: \"other\"", "If-Modified-Since: \(lm)"]).status == 200)
        let part = try request(e.port, "/big.bin", host: "s.test", headers: ["Range: bytes=10-19"])
        #expect(part.status == 206)
        #expect(part.text == "0123456789")
        #expect(part.header("Content-Range") == "bytes 10-19/1000000")
        let tail = try request(e.port, "/big.bin", host: "s.test", headers: ["Range: bytes=-5"])
        #expect(tail.text == "56789")
        #expect(try request(e.port, "/big.bin", host: "s.test", headers: ["Range: bytes=2000000-"]).status == 416)
        #expect(try request(e.port, "/big.bin", host: "s.test", headers: ["Range: bytes=0-1", "If-Range: \"stale\""]).status == 200)
        #expect(try request(e.port, "/big.bin", host: "s.test", headers: ["Range: bytes=0-1", "If-Range: \(etag)"]).status == 206)
    }

    @Test func compressesFilesAndPrefersPrecompressedSiblings() throws {
        let page = originText(40_000)
        let e = try Edge(tenants: [tenantJSON(name: "z", hosts: ["z.test"], origins: #"{"files": {"directory": "site"}}"#,
                                              routes: #"[{"prefix": "/", "origin": "files"}]"#, extra: #""compress": true"#)],
                         files: ["site/page.html": page, "site/app.js": page, "site/app.js.br": "precompressed-br",
                                 "site/logo.png": page, "site/tiny.txt": "tiny"])
        defer { e.stop() }
        let c = try Client(port: e.port)
        for coding in ["gzip", "br"] {
            // page.html has no sibling: compressed while it streams.
            c.send("GET /page.html HTTP/1.1\r\nHost: z.test\r\nAccept-Encoding: \(coding)\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.status == 200 && r.header("Content-Encoding") == coding && r.header("Vary") == "Accept-Encoding")
            #expect(r.header("Transfer-Encoding") == "chunked" && r.header("Accept-Ranges") == nil)
            #expect(r.header("ETag")?.hasSuffix("-\(coding)\"") == true)
            #expect(try decodeWithTool(r.body, coding) == page)
            // Its conditional matches only its own coding.
            c.send("GET /page.html HTTP/1.1\r\nHost: z.test\r\nAccept-Encoding: \(coding)\r\nIf-None-Match: \(try #require(r.header("ETag")))\r\n\r\n")
            #expect(try c.readResponse().status == 304)
        }
        // app.js.br is served as it is for br; gzip clients get app.js compressed now.
        let br = try request(e.port, "/app.js", host: "z.test", headers: ["Accept-Encoding: gzip, br"])
        #expect(br.header("Content-Encoding") == "br" && br.text == "precompressed-br" && br.header("Content-Length") == "16")
        let gz = try request(e.port, "/app.js", host: "z.test", headers: ["Accept-Encoding: gzip"])
        #expect(gz.header("Content-Encoding") == "gzip")
        #expect(try decodeWithTool(gz.body, "gzip") == page)
        // Plain clients, images, small files and ranges get the bytes as they are.
        let plain = try request(e.port, "/page.html", host: "z.test")
        #expect(plain.header("Content-Encoding") == nil && plain.text == page && plain.header("Vary") == "Accept-Encoding")
        #expect(try request(e.port, "/logo.png", host: "z.test", headers: ["Accept-Encoding: br"]).header("Content-Encoding") == nil)
        #expect(try request(e.port, "/tiny.txt", host: "z.test", headers: ["Accept-Encoding: br"]).header("Content-Encoding") == nil)
        let part = try request(e.port, "/page.html", host: "z.test", headers: ["Accept-Encoding: br", "Range: bytes=0-9"])
        #expect(part.status == 206 && part.header("Content-Encoding") == nil && part.text == String(page.prefix(10)))
        // HTTP/1.0: close-delimited.
        let old = try Client(port: e.port)
        old.send("GET /page.html HTTP/1.0\r\nHost: z.test\r\nAccept-Encoding: gzip\r\n\r\n")
        #expect(try decodeWithTool(old.readResponse().body, "gzip") == page)
    }

    @Test func refusesTraversalDotFilesAndOtherMethods() throws {
        let e = try edge()
        defer { e.stop() }
        #expect(try request(e.port, "/../../../../etc/passwd", host: "s.test").status == 404)
        #expect(try request(e.port, "/%2e%2e/%2e%2e/etc/passwd", host: "s.test").status == 404)
        #expect(try request(e.port, "/..%2f..%2fetc/passwd", host: "s.test").status == 404)
        #expect(try request(e.port, "/.env", host: "s.test").status == 404)
        #expect(try request(e.port, "/.well-known/security.txt", host: "s.test").text == "contact")
        #expect(try request(e.port, "/missing", host: "s.test").status == 404)
        #expect(try request(e.port, "DELETE", "/index.html", host: "s.test").status == 405)
    }
}

@Suite(.timeLimit(.minutes(3))) struct DirectoryRootTests {
    @Test func configsLetGoOfTheirRootDescriptors() throws {
        // Each config holds its directory roots open (O_PATH); a reload must not leak them.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edge-root-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("site"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeFile(dir.appendingPathComponent("t.json").path, tenantJSON(name: "s", hosts: ["s.test"], origins: #"{"files": {"directory": "site"}}"#,
                                                                          routes: #"[{"prefix": "/", "origin": "files"}]"#))
        let tenants = try ConfigLoader.loadTenants(directory: dir.path)
        // Descriptors of this process open on this test's own site directory (other
        // suites open files meanwhile, so count only ours, by where they point).
        let site = dir.appendingPathComponent("site").path
        func openOnSite() -> Int {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
            return fds.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == site }.count
        }
        var server = ServerConfig()
        server.stateDir = dir.appendingPathComponent("state").path
        var held: RuntimeConfig? = try RuntimeConfig(server: server, tenants: tenants)
        #expect(openOnSite() == 1, "a live config holds its root open")
        for _ in 0..<50 { _ = try RuntimeConfig(server: server, tenants: tenants) }
        #expect(openOnSite() == 1, "\(openOnSite()) descriptors on the root after 50 configs came and went")
        held = nil
        #expect(held == nil && openOnSite() == 0)
    }
}
