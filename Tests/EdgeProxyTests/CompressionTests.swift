// Compression through real clients (curl --compressed, python's gzip, the
// brotli command-line tool) against a real origin: negotiation, what is never
// compressed, ETags per coding, cached variants, purge, and decompression bombs.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy
import EdgeAdmin
import EdgeConfig

/// The /text/N body the test origin sends (same generator as tools/testorigin/origin.py).
func originText(_ n: Int, seed: Int = 12345) -> String {
    let words = ["edge", "cache", "tenant", "origin", "<div class=item>", "</div>", "brotli", "gzip", "\n"]
    var out = "", x = seed
    while out.utf8.count < n {
        x = (x * 1103515245 + 12345) % (1 << 31)
        out += words[(x >> 16) % words.count] + " "
    }
    return String(decoding: out.utf8.prefix(n), as: UTF8.self)
}

/// Decodes with an outside tool: python's gzip module or the brotli CLI.
func decodeWithTool(_ body: [UInt8], _ coding: String) throws -> String {
    let f = FileManager.default.temporaryDirectory.appendingPathComponent("edge-z-\(UUID().uuidString)").path
    defer { unlink(f) }
    try Data(body).write(to: URL(fileURLWithPath: f))
    let cmd = coding == "br" ? "brotli -dc '\(f)'" : "python3 -c \"import gzip,sys; sys.stdout.buffer.write(gzip.decompress(open('\(f)','rb').read()))\""
    let (status, out) = try shell(cmd)
    #expect(status == 0, "\(cmd): \(out)")
    return out
}

func compressTenant(_ o: Origin, compress: String = "true", cache: String = "true") -> String {
    tenantJSON(name: "z", hosts: ["z.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
               routes: #"[{"prefix": "/", "origin": "o", "cache": \#(cache), "compress": \#(compress)}]"#)
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct CompressionTests {
    @Test func eachCodingRoundTripsThroughRealClientsAndIsMadeOnce() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [compressTenant(o)])
        defer { edge.stop() }
        let text = originText(65536)
        for coding in ["br", "gzip"] {
            for round in 0..<2 {
                let r = try request(edge.port, "/text/65536", host: "z.test", headers: ["Accept-Encoding: \(coding)"])
                #expect(r.status == 200)
                #expect(r.header("Content-Encoding") == coding)
                #expect(r.header("Vary") == "Accept-Encoding")
                #expect(r.header("ETag") == "\"text-65536-\(coding)\"")
                #expect(r.body.count < 65536 / 2)
                #expect(try decodeWithTool(r.body, coding) == text)
                if round == 1 { #expect(r.header("Cache-Status")?.hasPrefix("edge; hit; ttl=") == true) }
            }
            // curl decodes it too (it asks with its own Accept-Encoding list, br first).
            let (status, out) = try shell("curl -s -m 30 --compressed -H 'Accept-Encoding: \(coding)' -H 'Host: z.test' http://127.0.0.1:\(edge.port)/text/65536")
            #expect(status == 0 && out == text)
        }
        // A client that asks for nothing gets the origin's bytes, and the same Vary.
        let plain = try request(edge.port, "/text/65536", host: "z.test")
        #expect(plain.header("Content-Encoding") == nil)
        #expect(plain.header("ETag") == "\"text-65536\"")
        #expect(plain.header("Vary") == "Accept-Encoding")
        #expect(String(decoding: plain.body, as: UTF8.self) == text)
        // One origin request in all: each coding was made once from the stored copy.
        #expect(try o.stats().requests == 1)
        // brotli output is no larger than the brotli CLI's at the same quality (5).
        let br = try request(edge.port, "/text/65536", host: "z.test", headers: ["Accept-Encoding: br"]).body
        let f = FileManager.default.temporaryDirectory.appendingPathComponent("edge-q5-\(UUID().uuidString)").path
        defer { unlink(f); unlink(f + ".br") }
        try text.write(toFile: f, atomically: false, encoding: .utf8)
        #expect(try shell("brotli -q 5 -f -o '\(f).br' '\(f)'").0 == 0)
        let cli = (try FileManager.default.attributesOfItem(atPath: f + ".br")[.size] as? Int) ?? 0
        #expect(br.count <= cli, "edge br \(br.count) bytes, brotli -q 5 \(cli) bytes")
    }

    @Test func qValuesDecideTheCoding() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [compressTenant(o)])
        defer { edge.stop() }
        let table: [(String, String?)] = [
            ("gzip, deflate, br", "br"), ("br;q=0.5, gzip", "gzip"), ("*", "br"), ("br;q=0, *", "gzip"),
            ("identity;q=0", nil), ("deflate", nil), ("GZIP;q=0.3, identity;q=0.2", "gzip"), ("gzip;q=0", nil),
        ]
        for (ae, want) in table {
            let r = try request(edge.port, "/text/4096", host: "z.test", headers: ["Accept-Encoding: \(ae)"])
            #expect(r.status == 200)
            #expect(r.header("Content-Encoding") == want, "Accept-Encoding: \(ae)")
            if let want { #expect(try decodeWithTool(r.body, want) == originText(4096)) }
        }
    }

    @Test func whatIsNeverCompressed() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [compressTenant(o)])
        defer { edge.stop() }
        let big = String(repeating: "a", count: 5000)
        try script(o, "/img.png", #"[{"status": 200, "headers": {"Content-Type": "image/png", "Cache-Control": "max-age=60"}, "body": "\#(big)"}]"#)
        try script(o, "/small", #"[{"status": 200, "headers": {"Content-Type": "text/plain", "Cache-Control": "max-age=60"}, "body": "tiny"}]"#)
        try script(o, "/nt", #"[{"status": 200, "headers": {"Content-Type": "text/plain", "Cache-Control": "max-age=60, no-transform"}, "body": "\#(big)"}]"#)
        for path in ["/img.png", "/small", "/nt"] {
            for _ in 0..<2 {
                let r = try request(edge.port, path, host: "z.test", headers: ["Accept-Encoding: br, gzip"])
                #expect(r.status == 200)
                #expect(r.header("Content-Encoding") == nil, "\(path)")
            }
        }
        // A range is served from the identity representation, even when a compressed one is stored.
        _ = try request(edge.port, "/text/8192", host: "z.test", headers: ["Accept-Encoding: br"])
        let ranged = try request(edge.port, "/text/8192", host: "z.test", headers: ["Accept-Encoding: br", "Range: bytes=0-9"])
        #expect(ranged.status == 206)
        #expect(ranged.header("Content-Encoding") == nil)
        #expect(String(decoding: ranged.body, as: UTF8.self) == String(originText(8192).prefix(10)))
        // An origin's gzip goes through untouched to a client that takes gzip.
        let gz = try request(edge.port, "/gzipped/text/20000", host: "z.test", headers: ["Accept-Encoding: gzip"])
        #expect(gz.header("Content-Encoding") == "gzip")
        #expect(try decodeWithTool(gz.body, "gzip") == originText(20000))
    }

    @Test func headGetsTheFieldsAGetWouldGet() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [compressTenant(o, cache: "false")])
        defer { edge.stop() }
        let c = try Client(port: edge.port)
        c.send("HEAD /text/5000 HTTP/1.1\r\nHost: z.test\r\nAccept-Encoding: br\r\n\r\n")
        let head = try c.readResponse(headRequest: true)
        c.send("GET /text/5000 HTTP/1.1\r\nHost: z.test\r\nAccept-Encoding: br\r\n\r\n")
        let get = try c.readResponse()
        for name in ["Content-Encoding", "ETag", "Vary", "Content-Length", "Transfer-Encoding"] {
            #expect(head.header(name) == get.header(name), "\(name): HEAD \(head.header(name) ?? "-"), GET \(get.header(name) ?? "-")")
        }
        // Equal because both have them, not because both lack them.
        #expect(head.header("Content-Encoding") == "br")
        #expect(head.header("ETag") == "\"text-5000-br\"")
        #expect(head.header("Vary")?.contains("Accept-Encoding") == true)
        #expect(head.header("Transfer-Encoding") == "chunked")
    }

    @Test func etagsDifferPerCodingAndConditionalsMatchTheirOwn() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [compressTenant(o)])
        defer { edge.stop() }
        _ = try request(edge.port, "/text/5000", host: "z.test", headers: ["Accept-Encoding: br"])
        let br304 = try request(edge.port, "/text/5000", host: "z.test", headers: ["Accept-Encoding: br", "If-None-Match: \"text-5000-br\""])
        #expect(br304.status == 304)
        #expect(br304.header("ETag") == "\"text-5000-br\"")
        // The br tag does not validate the gzip representation, nor the plain one.
        let gz = try request(edge.port, "/text/5000", host: "z.test", headers: ["Accept-Encoding: gzip", "If-None-Match: \"text-5000-br\""])
        #expect(gz.status == 200 && gz.header("Content-Encoding") == "gzip")
        let gz304 = try request(edge.port, "/text/5000", host: "z.test", headers: ["Accept-Encoding: gzip", "If-None-Match: \"text-5000-gzip\""])
        #expect(gz304.status == 304)
        let plain = try request(edge.port, "/text/5000", host: "z.test", headers: ["If-None-Match: \"text-5000-br\""])
        #expect(plain.status == 200 && plain.header("Content-Encoding") == nil)
        let plain304 = try request(edge.port, "/text/5000", host: "z.test", headers: ["If-None-Match: \"text-5000\""])
        #expect(plain304.status == 304)
    }

    @Test func everyCodingIsPurgedTogether() throws {
        let o = try Origin()
        let a = try AdminEdge(tenants: [compressTenant(o)])
        defer { a.stop() }
        for ae in ["br", "gzip", "identity"] { _ = try request(a.port, "/text/3000", host: "z.test", headers: ["Accept-Encoding: \(ae)"]) }
        #expect(try o.stats().requests == 1)
        #expect(try a.ctlJSON("explain http://z.test/text/3000")["codings_stored"] as? [String] == ["gzip", "br"])
        let (_, out) = try a.ctl("purge http://z.test/text/3000")
        #expect(out.contains("purged 3 objects"), "\(out)")
        let r = try request(a.port, "/text/3000", host: "z.test", headers: ["Accept-Encoding: br"])
        #expect(r.header("Cache-Status")?.contains("fwd=uri-miss") == true)
        #expect(r.header("Content-Encoding") == "br")
        #expect(try o.stats().requests == 2)
        #expect(try a.ctlJSON("explain http://z.test/text/3000")["codings_stored"] as? [String] == ["br"])
        // A new origin representation outdates the stored compressed ones: after a soft
        // purge the entry is revalidated, the origin answers 200 (it sends no 304), and
        // the br copy made from the old body goes with it.
        #expect(try a.ctl("purge --soft http://z.test/text/3000").1.contains("marked stale 2 objects"))
        let fresh = try request(a.port, "/text/3000", host: "z.test")
        #expect(fresh.status == 200 && fresh.header("Cache-Status")?.contains("fwd=stale") == true, "\(fresh.header("Cache-Status") ?? "")")
        #expect(try o.stats().requests == 3)
        #expect(try a.ctlJSON("explain http://z.test/text/3000")["codings_stored"] as? [String] == [])
        let again = try request(a.port, "/text/3000", host: "z.test", headers: ["Accept-Encoding: br"])
        #expect(try decodeWithTool(again.body, "br") == originText(3000))
        #expect(try a.ctlJSON("explain http://z.test/text/3000")["codings_stored"] as? [String] == ["br"])
        #expect(try o.stats().requests == 3)
    }

    @Test func originGzipIsDecodedForIdentityClientsAndABombIsA502() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [compressTenant(o, compress: #"{"decode_limit": "1MiB"}"#)])
        defer { edge.stop() }
        for round in 0..<2 {
            let r = try request(edge.port, "/gzipped/text/50000", host: "z.test")
            #expect(r.status == 200)
            #expect(r.header("Content-Encoding") == nil)
            #expect(r.header("Content-Length") == "50000")
            #expect(String(decoding: r.body, as: UTF8.self) == originText(50000))
            if round == 1 { #expect(r.header("Cache-Status")?.hasPrefix("edge; hit; ttl=") == true) }
        }
        // 64 MiB of zeros in about 64 KiB of gzip: the identity client gets a 502 at the 1 MiB cap.
        let bomb = try request(edge.port, "/gzipped/zeros/67108864", host: "z.test")
        #expect(bomb.status == 502)
        #expect(bomb.body.count < 100)
        // A gzip client gets the gzip bytes as they are.
        let ok = try request(edge.port, "/gzipped/zeros/67108864", host: "z.test", headers: ["Accept-Encoding: gzip"])
        #expect(ok.status == 200 && ok.header("Content-Encoding") == "gzip")
        #expect(ok.body.count < 200_000)
        // The stored gzip bomb is not decoded on a hit either.
        #expect(try request(edge.port, "/gzipped/zeros/67108864", host: "z.test").status == 502)
    }

    @Test func uncachedResponsesAreCompressedWhileTheyStream() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [compressTenant(o, cache: "false")])
        defer { edge.stop() }
        let c = try Client(port: edge.port)
        for coding in ["gzip", "br", "gzip"] {
            c.send("GET /text/300000 HTTP/1.1\r\nHost: z.test\r\nAccept-Encoding: \(coding)\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.status == 200)
            #expect(r.header("Transfer-Encoding") == "chunked")
            #expect(r.header("Content-Length") == nil)
            #expect(r.header("Content-Encoding") == coding)
            #expect(try decodeWithTool(r.body, coding) == originText(300000))
        }
        // HTTP/1.0: the end of the body is the end of the connection.
        let old = try Client(port: edge.port)
        old.send("GET /text/20000 HTTP/1.0\r\nHost: z.test\r\nAccept-Encoding: br\r\n\r\n")
        let r = try old.readResponse()
        #expect(r.header("Content-Encoding") == "br")
        #expect(try decodeWithTool(r.body, "br") == originText(20000))
        #expect(try o.stats().requests == 4)
    }

    @Test func badCompressSettingsNameFileAndField() throws {
        let o = try Origin()
        do {
            _ = try Edge(tenants: [compressTenant(o, compress: #"{"brotli_quality": 12}"#)])
            Issue.record("accepted brotli_quality 12")
        } catch {
            #expect("\(error)".contains("t0.json") && "\(error)".contains("compress.brotli_quality"), "\(error)")
        }
        do {
            _ = try Edge(tenants: [compressTenant(o, compress: #"{"encodings": ["zstd"]}"#)])
            Issue.record("accepted an unknown coding")
        } catch {
            #expect("\(error)".contains("t0.json") && "\(error)".contains("routes[0].compress.encodings[0]"), "\(error)")
        }
    }
}

/// Which Content-Types a route compresses, read from an origin's field value in place.
@Suite struct CompressibleTypeTests {
    @Test func anOriginsContentTypeIsMatchedByItsEssenceInAnyCase() throws {
        var cfg = CompressConfig()
        cfg.enabled = true
        cfg.types = ["application/json", "text/*"]
        let cmp = try #require(RouteCompress(cfg))
        func check(_ value: String) -> Bool {
            var v = value
            return v.withUTF8 { cmp.compressible(contentType: UnsafeRawBufferPointer($0)) }
        }
        #expect(check("application/json"))
        #expect(check("  Application/JSON ; charset=utf-8"))
        #expect(check("TEXT/html;q"))
        #expect(check("text/"))
        #expect(!check("application/jsonx"))
        #expect(!check("application/js"))
        #expect(!check("image/png"))
        #expect(!check(""))
        #expect(!check(" ; charset=utf-8"))
        // The stored form (an essence, lowercase) agrees.
        for v in ["application/json", "text/html", "image/png", "application/jsonx"] {
            #expect(cmp.compressible(v) == check(v))
        }
    }
}
