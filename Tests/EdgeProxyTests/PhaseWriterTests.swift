// The phases and the response writer with an in-memory transport: no socket,
// no origin process. A worker with no listeners serves a connection whose
// output goes to a buffer (ClientConnection.sink); requests are bytes put in
// its input buffer. What these answer never needs an origin: refusals,
// redirects, cache hits from a store filled here, directory files.
import Foundation
import Testing
@testable import EdgeProxy
@testable import EdgeCache
import EdgeConfig
import EdgeHTTP
import EdgeIO
import EdgeProtect

/// A worker serving in-memory connections with the given tenants.
final class MemoryEdge {
    let worker: Worker
    let dir: String

    init(_ tenants: [String], files: [String: String] = [:]) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("edge-mem-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/tenants", withIntermediateDirectories: true)
        for (path, text) in files {
            let full = dir + "/tenants/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try writeFile(full, text)
        }
        for (i, t) in tenants.enumerated() { try writeFile(dir + "/tenants/t\(i).json", t) }
        var server = ServerConfig()
        server.nodeName = "edge"
        server.stateDir = dir + "/state"
        let config = try RuntimeConfig(server: server, tenants: try ConfigLoader.loadTenants(directory: dir + "/tenants"))
        worker = try Worker(index: 0, box: ConfigBox(config), listenFD: -1, httpsFD: -1, httpsPort: 443, logFD: -1,
                            inFlight: InFlight(), mailboxes: try Mailboxes(count: 1), clock: CacheClock { wallClock().seconds },
                            stats: Stats(workers: 1), addressLimits: AddressLimits())
        worker.now = monotonicMillis()
        worker.date.refresh()
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    /// Feeds `bytes` to a fresh in-memory connection; returns everything it wrote and whether it closed.
    func run(_ bytes: String) -> (out: String, closed: Bool) {
        let (out, c) = serve(bytes)
        return (out, c.closed)
    }

    /// The same, returning the connection.
    func serve(_ bytes: String) -> (out: String, connection: ClientConnection) {
        let c = ClientConnection(fd: -1, gen: 1, addr: IPAddress(v4: 0x7f00_0001), peerIP: Array("127.0.0.1".utf8), trusted: false)
        c.sink = IOBuffer(capacity: 1024)
        c.inBuf = IOBuffer(capacity: 4096)
        c.inBuf!.append(Array(bytes.utf8))
        worker.processClient(c)
        return (String(decoding: c.sink!.readView, as: UTF8.self), c)
    }

    /// Stores a 200 for `target` on tenant `tenant` (host `host`), fresh for an hour.
    func store(tenant: String, host: String, target: String, body: String, fields: [(String, String)] = []) {
        let t = worker.config.tenants.first { $0.name == tenant }!
        let route = t.routes.first { $0.cache != nil }!
        let key = CacheKey.primary(tenant: tenant, https: false, host: host, target: target, query: route.cache!.query)
        let now = worker.clock.now()
        let headers = HeaderList([("Content-Type", "text/plain"), ("ETag", "\"v1\"")] + fields)
        let f = Freshness(lifetime: 3600, source: .maxAge, correctedInitialAge: 0, responseTime: now, mustRevalidate: false, noCache: false,
                          staleWhileRevalidate: nil, staleIfError: nil)
        worker.config.store.insert(StoredResponse(key: key, variant: "", vary: [], tenant: tenant, status: 200, headers: headers,
                                                  body: Array(body.utf8), freshness: f), startedAt: nil)
    }
}

/// Splits what a connection wrote into responses (heads and Content-Length bodies).
func responses(_ out: String, headRequests: Set<Int> = []) -> [(head: String, body: String)] {
    var rest = Substring(out)
    var list: [(String, String)] = []
    while let end = rest.range(of: "\r\n\r\n") {
        let head = String(rest[..<end.lowerBound])
        rest = rest[end.upperBound...]
        var n = 0
        for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            n = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
        }
        if headRequests.contains(list.count) || head.hasPrefix("HTTP/1.1 304") { n = 0 }
        let body = String(rest.utf8.prefix(n))!
        rest = rest.dropFirst(body.count)
        list.append((head, body))
    }
    return list
}

@Suite struct PhaseWriterTests {
    static let origin = #"{"o": {"servers": ["127.0.0.1:9"]}}"#

    func edge() throws -> MemoryEdge {
        try MemoryEdge([
            tenantJSON(name: "t", hosts: ["t.test"], origins: Self.origin,
                       routes: #"[{"prefix": "/ws/", "origin": "o", "websocket": false}, {"prefix": "/", "origin": "o"}]"#,
                       extra: #""limits": {"max_body": 10}"#),
            tenantJSON(name: "r", hosts: ["r.test"], origins: Self.origin, routes: #"[{"prefix": "/only/", "origin": "o"}]"#,
                       extra: #""https_redirect": true, "tls": "internal""#),
        ])
    }

    @Test func refusalsAnswerWithoutAnOrigin() throws {
        let e = try edge()
        func first(_ request: String) -> (head: String, body: String, closed: Bool) {
            let (out, closed) = e.run(request)
            let r = responses(out).first ?? ("", "")
            return (r.head, r.body, closed)
        }
        let unknown = first("GET / HTTP/1.1\r\nHost: nobody.test\r\n\r\n")
        #expect(unknown.head.hasPrefix("HTTP/1.1 421 Misdirected Request\r\n"), "\(unknown)")
        #expect(unknown.body == "421 Misdirected Request\n")
        #expect(!unknown.head.contains("Connection: close") && !unknown.closed, "no framing doubt: the connection stays")
        let trace = first("TRACE / HTTP/1.1\r\nHost: t.test\r\n\r\n")
        #expect(trace.head.hasPrefix("HTTP/1.1 405 ") && trace.head.contains("\r\nAllow: GET, HEAD, POST"), "\(trace)")
        let bad = first("GET nope HTTP/1.1\r\nHost: t.test\r\n\r\n")
        #expect(bad.head.hasPrefix("HTTP/1.1 400 ") && bad.head.contains("Connection: close") && bad.closed, "\(bad)")
        let big = first("POST / HTTP/1.1\r\nHost: t.test\r\nContent-Length: 11\r\n\r\n")
        #expect(big.head.hasPrefix("HTTP/1.1 413 ") && big.head.contains("Connection: close") && big.closed, "body unread: closed: \(big)")
        let route = first("GET /elsewhere HTTP/1.1\r\nHost: r.test\r\n\r\n")
        #expect(route.head.hasPrefix("HTTP/1.1 301 ") && route.head.contains("\r\nLocation: https://r.test/elsewhere"), "redirect first: \(route)")
        let ws = first("GET /ws/chat HTTP/1.1\r\nHost: t.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        #expect(ws.head.hasPrefix("HTTP/1.1 403 "), "\(ws)")
        let parse = first("GET / HTTP/1.1\r\nHost: t.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        #expect(parse.head.hasPrefix("HTTP/1.1 400 ") && parse.closed, "\(parse)")
        // Every generated answer carries Date and Server, and a length.
        for r in [unknown, trace, bad, big, route, ws] {
            #expect(r.head.contains("\r\nDate: ") && r.head.contains("\r\nServer: edge\r\n") && r.head.contains("\r\nContent-Length: "), "\(r.head)")
        }
    }

    @Test func hitsAreWrittenWithTheirLengthAndPipelinedInOrder() throws {
        let e = try edge()
        let body = String(repeating: "x", count: 1500)   // over 512 bytes: written from the stored body in place
        e.store(tenant: "t", host: "t.test", target: "/a", body: body)
        e.store(tenant: "t", host: "t.test", target: "/b", body: "bee")
        let (out, closed) = e.run("GET /a HTTP/1.1\r\nHost: t.test\r\n\r\nGET /b HTTP/1.1\r\nHost: t.test\r\n\r\nHEAD /a HTTP/1.1\r\nHost: t.test\r\n\r\n")
        let rs = responses(out, headRequests: [2])
        try #require(rs.count == 3, "\(out)")
        #expect(rs[0].head.hasPrefix("HTTP/1.1 200 OK\r\n") && rs[0].head.contains("\r\nContent-Length: 1500") && rs[0].body == body)
        #expect(rs[0].head.contains("\r\nCache-Status: edge; hit") && rs[0].head.contains("\r\nAge: "), "\(rs[0].head)")
        #expect(rs[1].body == "bee" && rs[1].head.contains("\r\nContent-Length: 3"))
        // HEAD: the fields a GET gets, no body (nothing after its head).
        #expect(rs[2].head.contains("\r\nContent-Length: 1500") && out.hasSuffix("\r\n\r\n"))
        #expect(!closed && !out.contains("Transfer-Encoding"))
    }

    @Test func anIdleConnectionHoldsNoExchangeOrBuffers() throws {
        let e = try edge()
        e.store(tenant: "t", host: "t.test", target: "/a", body: "aye")
        let (out, c) = e.serve("GET /a HTTP/1.1\r\nHost: t.test\r\n\r\n")
        #expect(out.hasPrefix("HTTP/1.1 200 OK\r\n") && out.hasSuffix("aye") && !c.closed)
        #expect(c.ex === e.worker.idleExchange && c.inBuf == nil && c.outBuf == nil, "idle keep-alive connections cost no exchange or buffer memory")
        // Nor field storage (its request head's reserved fields were about 1.2 KB per
        // connection before this was checked; HTTP/2 response heads are read back into
        // the worker's one WrittenHead, not one per connection).
        #expect(c.head.fields.capacity == 0, "an idle connection holds field storage")
        // The next request on it is served as usual.
        c.inBuf = IOBuffer(capacity: 4096)
        c.inBuf!.append(Array("GET /a HTTP/1.1\r\nHost: t.test\r\n\r\n".utf8))
        e.worker.processClient(c)
        #expect(String(decoding: c.sink!.readView, as: UTF8.self).components(separatedBy: "HTTP/1.1 200 OK").count == 3)
        #expect(c.ex === e.worker.idleExchange && !e.worker.idleExchange.inExchange && e.worker.idleExchange.status == 0)
    }

    @Test func conditionalsAndRangesOnHits() throws {
        let e = try edge()
        e.store(tenant: "t", host: "t.test", target: "/c", body: "0123456789")
        let nm = responses(e.run("GET /c HTTP/1.1\r\nHost: t.test\r\nIf-None-Match: \"v1\"\r\n\r\n").out)
        #expect(nm.first?.head.hasPrefix("HTTP/1.1 304 ") == true && nm.first?.head.contains("Content-Length") == false, "\(nm)")
        let part = responses(e.run("GET /c HTTP/1.1\r\nHost: t.test\r\nRange: bytes=2-4\r\n\r\n").out)
        #expect(part.first?.head.hasPrefix("HTTP/1.1 206 ") == true && part.first?.head.contains("\r\nContent-Range: bytes 2-4/10") == true)
        #expect(part.first?.body == "234")
        let none = responses(e.run("GET /c HTTP/1.1\r\nHost: t.test\r\nRange: bytes=20-30\r\n\r\n").out)
        #expect(none.first?.head.hasPrefix("HTTP/1.1 416 ") == true && none.first?.head.contains("\r\nContent-Range: bytes */10") == true)
        // only-if-cached without an entry: 504 from the cache, no origin.
        let miss = responses(e.run("GET /nothing HTTP/1.1\r\nHost: t.test\r\nCache-Control: only-if-cached\r\n\r\n").out)
        #expect(miss.first?.head.hasPrefix("HTTP/1.1 504 ") == true, "\(miss)")
    }

    @Test func hitsLeaveOutTheFieldsTheRouteRemoves() throws {
        let e = try MemoryEdge([
            tenantJSON(name: "t", hosts: ["t.test"], origins: Self.origin,
                       routes: #"[{"prefix": "/", "origin": "o", "response_headers": {"remove": ["x-secret"]}}]"#),
        ])
        e.store(tenant: "t", host: "t.test", target: "/s", body: "ok", fields: [("X-Secret", "1"), ("X-Kept", "2")])
        let hit = responses(e.run("GET /s HTTP/1.1\r\nHost: t.test\r\n\r\n").out)
        #expect(hit.first?.head.contains("\r\nX-Kept: 2\r\n") == true && hit.first?.head.contains("Content-Type: text/plain\r\n") == true)
        #expect(hit.first?.head.lowercased().contains("x-secret") == false && hit.first?.body == "ok", "\(hit)")
        // A 304 leaves out the removed field and Content-Type, and keeps the rest.
        let nm = responses(e.run("GET /s HTTP/1.1\r\nHost: t.test\r\nIf-None-Match: \"v1\"\r\n\r\n").out)
        #expect(nm.first?.head.hasPrefix("HTTP/1.1 304 ") == true && nm.first?.head.contains("\r\nX-Kept: 2\r\n") == true)
        #expect(nm.first?.head.lowercased().contains("x-secret") == false && nm.first?.head.contains("Content-Type") == false, "\(nm)")
    }

    @Test func http10GetsKeepAliveOnlyWhenItAsks() throws {
        let e = try edge()
        e.store(tenant: "t", host: "t.test", target: "/d", body: "dee")
        let kept = e.run("GET /d HTTP/1.0\r\nHost: t.test\r\nConnection: keep-alive\r\n\r\n")
        #expect(kept.out.contains("\r\nConnection: keep-alive\r\n") && !kept.closed, "\(kept)")
        let plain = e.run("GET /d HTTP/1.0\r\nHost: t.test\r\n\r\n")
        #expect(plain.out.contains("\r\nConnection: close\r\n") && plain.closed, "\(plain)")
    }

    @Test func directoryFilesThroughTheWriter() throws {
        let e = try MemoryEdge([tenantJSON(name: "s", hosts: ["s.test"], origins: #"{"files": {"directory": "site"}}"#,
                                           routes: #"[{"prefix": "/", "origin": "files"}]"#)],
                               files: ["site/index.html": "<h1>hi</h1>", "site/docs/a.txt": "aaa"])
        let rs = responses(e.run("GET /docs/a.txt HTTP/1.1\r\nHost: s.test\r\n\r\nGET /docs HTTP/1.1\r\nHost: s.test\r\n\r\nGET /missing HTTP/1.1\r\nHost: s.test\r\n\r\n").out)
        try #require(rs.count == 3, "\(rs)")
        #expect(rs[0].head.hasPrefix("HTTP/1.1 200 ") && rs[0].body == "aaa" && rs[0].head.contains("\r\nETag: ") && rs[0].head.contains("\r\nContent-Type: text/plain"))
        #expect(rs[1].head.hasPrefix("HTTP/1.1 301 ") && rs[1].head.contains("\r\nLocation: /docs/\r\n"), "\(rs[1])")
        #expect(rs[2].head.hasPrefix("HTTP/1.1 404 "))
    }
}
