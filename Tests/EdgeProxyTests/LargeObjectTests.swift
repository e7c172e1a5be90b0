// Large stored bodies live in memory files and go out with sendfile: hits,
// ranges, pipelining and TLS must all still be byte-exact.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy
import EdgeCache

@Suite(.serialized, .timeLimit(.minutes(3))) struct LargeObjectTests {
    @Test func mappedBodiesServeHitsRangesAndTLSByteExact() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [tenantJSON(name: "l", hosts: ["l.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                 routes: #"[{"prefix": "/", "origin": "o"}]"#, extra: #""tls": "internal""#)])
        defer { edge.stop() }
        let text = Array(originText(300_000).utf8)
        let miss = try request(edge.port, "/text/300000", host: "l.test")
        #expect(miss.body == text)
        let stored = edge.server.config.store.variants(key: CacheKey.primary(tenant: "l", https: false, host: "l.test", target: "/text/300000"))
        #expect(stored.first?.storage.fd ?? -1 >= 0, "a 300 KB body should be kept in a memory file")
        // Charged its whole pages and the two objects holding them (the handle, the mapping).
        let body = try #require(stored.first?.storage)
        #expect(body.handleBytes >= 96 && body.chargedBytes == 303_104 + body.handleBytes, "\(body.handleBytes), \(body.chargedBytes)")
        // Hits, pipelined three deep on one connection.
        let c = try Client(port: edge.port)
        c.send(String(repeating: "GET /text/300000 HTTP/1.1\r\nHost: l.test\r\n\r\n", count: 3))
        for _ in 0..<3 {
            let r = try c.readResponse()
            #expect(r.header("Cache-Status")?.hasPrefix("edge; hit; ttl=") == true)
            #expect(r.body == text)
        }
        // A range in the middle comes from the file at its offset.
        let part = try request(edge.port, "/text/300000", host: "l.test", headers: ["Range: bytes=150000-150099"])
        #expect(part.status == 206)
        #expect(part.body == Array(text[150000..<150100]))
        // TLS reads the same pages through the mapping.
        // Over TLS: the miss, then hits encrypted straight from the stored body (large and small).
        let file = edge.dir.appendingPathComponent("tls-body").path
        for (path, want) in [("/text/300000", text), ("/text/300000", text), ("/text/2000", Array(originText(2000).utf8)),
                             ("/text/2000", Array(originText(2000).utf8))] {
            let (status, out) = try shell("curl -s -m 30 -D '\(file).h' -o '\(file)' --cacert '\(edge.stateDir)/ca.pem' --resolve l.test:\(edge.httpsPort):127.0.0.1 https://l.test:\(edge.httpsPort)\(path)")
            #expect(status == 0, "\(out)")
            #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: file))) == want, "\(path)")
        }
        #expect(try String(contentsOfFile: file + ".h", encoding: .utf8).lowercased().contains("cache-status: edge; hit"))
        #expect(try o.stats().requests == 3)   // the plain miss, and the TLS misses (https keys)
    }

    /// A Range miss fetches the whole object: byte-exact slices of a large body
    /// (stored, later ranges from the memory file) and of one too large to store
    /// (the slice is sent and the origin connection given up; edge goes on serving).
    @Test func rangeMissesAreCutFromTheWholeObjectByteExact() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [tenantJSON(name: "l", hosts: ["l.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                 routes: #"[{"prefix": "/", "origin": "o"}]"#)],
                            server: #"{"cache": {"max_object": "1MiB"}}"#)
        defer { edge.stop() }
        let text = Array(originText(300_000).utf8)
        let part = try request(edge.port, "/text/300000", host: "l.test", headers: ["Range: bytes=123456-200000"])
        #expect(part.status == 206 && part.header("Content-Range") == "bytes 123456-200000/300000")
        #expect(part.body == Array(text[123456...200000]))
        let later = try request(edge.port, "/text/300000", host: "l.test", headers: ["Range: bytes=299990-"])
        #expect(later.header("Cache-Status")?.contains("hit") == true)
        #expect(later.body == Array(text[299990...]))
        let big = Array(originText(3_000_000).utf8)
        let c = try Client(port: edge.port)
        c.send("GET /text/3000000 HTTP/1.1\r\nHost: l.test\r\nRange: bytes=1000-1999\r\n\r\n")
        let slice = try c.readResponse()
        #expect(slice.status == 206 && slice.body == Array(big[1000...1999]))
        // The same connection goes on, and the too-large object was not stored.
        c.send("GET /text/2000 HTTP/1.1\r\nHost: l.test\r\n\r\n")
        #expect(try c.readResponse().body == Array(originText(2000).utf8))
        // A range starting past the largest object stored goes to the origin as is (this one
        // ignores Range: its whole answer comes through).
        let again = try request(edge.port, "/text/3000000", host: "l.test", headers: ["Range: bytes=2999000-2999999"])
        #expect(again.status == 200 && again.body == big)
        #expect(try o.stats().requests == 4)
    }
}
