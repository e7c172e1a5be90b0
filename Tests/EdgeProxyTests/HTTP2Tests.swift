// HTTP/2 to clients over TLS with real clients: curl --http2, nghttp, h2load,
// and Python's h2 package for frame sequences no client sends.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy
import EdgeCache

@Suite(.serialized, .timeLimit(.minutes(3))) struct HTTP2Tests {
    func edge(_ o: Origin, extra: String = "", more: [String] = [], server: String? = nil) throws -> Edge {
        try Edge(tenants: [tenantJSON(name: "h", hosts: ["h.test", "localhost"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                      routes: #"[{"prefix": "/", "origin": "o", "compress": {"enabled": true}}]"#,
                                      extra: #""tls": "internal""# + (extra.isEmpty ? "" : ", " + extra))] + more, server: server)
    }

    func curl(_ e: Edge, _ args: String, host: String = "h.test") throws -> (Int32, String) {
        try shell("curl -s -m 30 --http2 --cacert '\(e.stateDir)/ca.pem' --resolve \(host):\(e.httpsPort):127.0.0.1 \(args)")
    }

    @Test func h2cWithPriorKnowledgeOnThePlainListenerWhenTurnedOn() throws {
        let o = try Origin()
        defer { o.stop() }
        let on = try edge(o, server: #"{"h2c": true}"#)
        // curl and nghttp speak HTTP/2 from their first byte; HTTP/1.1 still works beside them.
        let (st, out) = try shell("curl -s -m 30 --http2-prior-knowledge -H 'Host: h.test' -w ' %{http_version} %{http_code}' http://127.0.0.1:\(on.port)/echo/h2c")
        #expect(st == 0 && out.hasSuffix(" 2 200") && out.contains("/echo/h2c"), "\(out)")
        #expect(out.contains(#"["X-Forwarded-Proto", "http"]"#), "h2c is not https: \(out)")
        let (ns, nout) = try shell("nghttp -n -s -m 20 -H ':authority: h.test' http://127.0.0.1:\(on.port)/bytes/1000")
        let rows = nout.split(separator: "\n").filter { $0.contains(" 200 1000 /bytes/1000") }
        #expect(ns == 0 && rows.count == 20, "20 streams on one connection: \(nout)")
        #expect(try request(on.port, "/echo/h1", host: "h.test").status == 200)
        // A preface sent a byte at a time is still a preface.
        let c = try Client(port: on.port)
        for b in Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) { c.send([b]); usleep(2000) }
        c.send([0, 0, 0, 4, 0, 0, 0, 0, 0])   // an empty SETTINGS
        #expect(try c.fill(), "the server's SETTINGS")
        // Stats count each protocol apart (edgectl stats, /metrics).
        let byProtocol = try on.server.tenantStats("h")[0].byProtocol
        #expect(byProtocol == ["HTTP/1.0": 0, "HTTP/1.1": 1, "HTTP/2": 21], "\(byProtocol)")
        #expect(on.server.metricsText().contains(#"edge_requests_by_protocol_total{tenant="h",protocol="HTTP/2"} 21"#))
        on.stop()
        #expect(on.accessLog().filter { ($0["protocol"] as? String) == "HTTP/2" }.count >= 21, "curl's one and nghttp's 20 requests over h2c")
        // Off (the default): the preface is not a request, and an Upgrade: h2c is not honoured.
        let off = try edge(o)
        defer { off.stop() }
        let (_, refused) = try shell("curl -s -m 30 --http2-prior-knowledge -H 'Host: h.test' -w ' %{http_code}' http://127.0.0.1:\(off.port)/echo/h2c")
        #expect(!refused.hasSuffix(" 200"), "\(refused)")
        let up = try request(off.port, "/echo/up", host: "h.test", headers: ["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"])
        #expect(up.status == 200 && up.header("Upgrade") == nil)
    }

    @Test func curlGetsMissThenHitOverHTTP2() throws {
        let o = try Origin()
        let e = try edge(o)
        defer { e.stop() }
        let url = "https://h.test:\(e.httpsPort)/text/5000"
        let (s1, out1) = try curl(e, "-D - -o /dev/null \(url)")
        #expect(s1 == 0, "\(out1)")
        #expect(out1.hasPrefix("HTTP/2 200"), "\(out1)")
        #expect(out1.contains("cache-status: edge; fwd=uri-miss"), "\(out1)")
        let file = e.dir.appendingPathComponent("h2-body").path
        let (s2, out2) = try curl(e, "-D - -o '\(file)' \(url)")
        #expect(s2 == 0 && out2.hasPrefix("HTTP/2 200") && out2.contains("cache-status: edge; hit"), "\(out2)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == Data(originText(5000).utf8))
        // Compressed for a client that asks, decoded by curl.
        let (s3, out3) = try curl(e, "--compressed -D - -o '\(file)' \(url)")
        #expect(s3 == 0 && out3.contains("content-encoding: br"), "\(out3)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == Data(originText(5000).utf8))
        #expect(try o.stats().requests == 1)
        #expect(e.accessLog().contains { $0["protocol"] as? String == "HTTP/2" && ($0["target"] as? String) == "/text/5000" })
    }

    @Test func uploadsAndLargeDownloadsAreByteExact() throws {
        let o = try Origin()
        let e = try edge(o)
        defer { e.stop() }
        let up = e.dir.appendingPathComponent("up").path
        _ = try shell("head -c 67108864 /dev/urandom > '\(up)'")   // 64 MiB each way
        let (st, out) = try curl(e, "--data-binary @'\(up)' https://h.test:\(e.httpsPort)/upload")
        let (_, sum) = try shell("sha256sum '\(up)' | cut -d' ' -f1")
        #expect(st == 0 && out.contains(sum.trimmingCharacters(in: .whitespacesAndNewlines)) && out.contains("67108864"), "\(out.prefix(300))")
        let down = e.dir.appendingPathComponent("down").path
        let (s2, o2) = try curl(e, "-o '\(down)' -w '%{http_version} %{size_download}' https://h.test:\(e.httpsPort)/bytes/67108864")
        #expect(s2 == 0 && o2 == "2 67108864", "\(o2)")
        let (_, xs) = try shell("tr -d x < '\(down)' | wc -c")
        #expect(xs.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "the body is the origin's bytes")
    }

    @Test func manyStreamsOnOneConnectionWithNghttp() throws {
        let o = try Origin()
        let e = try edge(o)
        defer { e.stop() }
        // nghttp opens one connection and sends every request on it at once.
        let urls = (0..<20).map { "https://localhost:\(e.httpsPort)/echo/\($0)" }.joined(separator: " ")
        let (st, out) = try shell("nghttp -nv --no-verify-peer \(urls) 2>&1")
        #expect(st == 0, "\(out.suffix(2000))")
        #expect(out.components(separatedBy: ":status: 200").count - 1 == 20, "\(out.suffix(3000))")
        #expect(Set(out.components(separatedBy: "\n").filter { $0.contains("recv HEADERS frame") }.map { $0.components(separatedBy: "stream_id=").last ?? "" }).count == 20)
        #expect(!out.contains("recv RST_STREAM") && !out.contains("recv GOAWAY"), "\(out.suffix(2000))")
    }

    @Test func anotherTenantsHostOnTheConnectionGets421() throws {
        let o = try Origin()
        let other = tenantJSON(name: "g", hosts: ["g.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                               routes: #"[{"prefix": "/", "origin": "o"}]"#, extra: #""tls": "internal""#)
        let e = try edge(o, more: [other])
        defer { e.stop() }
        let (_, code) = try curl(e, "-o /dev/null -w '%{http_code}' -H 'Host: g.test' https://h.test:\(e.httpsPort)/echo")
        #expect(code == "421")
    }

    @Test func h2CanBeTurnedOffPerTenant() throws {
        let o = try Origin()
        let e = try edge(o, extra: #""http2": false"#)
        defer { e.stop() }
        let (st, out) = try curl(e, "-o /dev/null -w '%{http_version}' https://h.test:\(e.httpsPort)/echo")
        #expect(st == 0 && out == "1.1", "\(out)")
    }

    func hostile(_ e: Edge, _ mode: String, _ extra: String = "") throws -> String {
        let script = repoRoot.appendingPathComponent("tools/testclient/h2_hostile.py").path
        return try shell("/usr/bin/python3 '\(script)' \(mode) \(e.httpsPort) h.test '\(e.stateDir)/ca.pem' \(extra) 2>&1").1
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The attacks of 2023–2024, from a real client library: each one is answered
    /// GOAWAY ENHANCE_YOUR_CALM (0xb), and edge goes on serving other connections.
    @Test func hostileClientsGetEnhanceYourCalmAndOthersAreServed() throws {
        let o = try Origin()
        let e = try edge(o)
        defer { e.stop() }
        for mode in ["rapid-reset", "continuation", "ping-flood"] {
            let r = try hostile(e, mode)
            #expect(r == "goaway 11", "\(mode): \(r)")
            let (st, code) = try curl(e, "-o /dev/null -w '%{http_version} %{http_code}' https://h.test:\(e.httpsPort)/echo")
            #expect(st == 0 && code == "2 200", "after \(mode): \(code)")
        }
        // The counters say so: six connections chose h2, three ended with an error.
        let metrics = e.server.metricsText()
        #expect(metrics.contains("edge_http2_connections_total 6"), "\(metrics)")
        #expect(metrics.contains("edge_http2_connection_errors_total 3"))
    }

    /// A client that opens a 1 KiB window and reads nothing more gets about that much
    /// of a 20 MB body, and holds only its stream: others are served meanwhile; once
    /// the stall lasts the send timeout, the connection is closed.
    @Test func aSlowReaderHoldsOnlyItsStream() throws {
        let o = try Origin()
        let e = try edge(o, server: #"{"limits": {"send_timeout": "1s"}}"#)
        defer { e.stop() }
        let script = repoRoot.appendingPathComponent("tools/testclient/h2_hostile.py").path
        let slow = try ChildProcess(["/bin/sh", "-c", "exec /usr/bin/python3 '\(script)' slow-read \(e.httpsPort) h.test '\(e.stateDir)/ca.pem' /bytes/20000000 2>&1"])
        defer { slow.stop() }
        let (st, code) = try curl(e, "-o /dev/null -w '%{http_code}' https://h.test:\(e.httpsPort)/echo")
        #expect(st == 0 && code == "200")
        let got = slow.read(until: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = got.split(separator: " ")
        let n = parts.count == 3 ? Int(parts[1]) ?? -1 : -1
        #expect(n >= 0 && n <= 1024, "\(got)")
        #expect(parts.last == "closed", "\(got)")
    }

    /// Slow readers of a large cached object hold what their windows allow plus
    /// the stream's buffer, not the object: stored bytes are copied into a stream
    /// only as it has room.
    @Test func slowReadersOfALargeHitHoldNoCopyOfIt() throws {
        // The RSS of an edged child process (the test process runs other suites meanwhile,
        // and their memory, or a sanitizer's quarantine of it, is not edged's).
        let o = try Origin()
        defer { o.stop() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edged-h2-rss-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/tenants", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeFile(dir + "/tenants/h.json", tenantJSON(name: "h", hosts: ["h.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                           routes: #"[{"prefix": "/", "origin": "o", "cache": {"default_ttl": 600}}]"#, extra: #""tls": "internal""#))
        try writeFile(dir + "/server.json", #"{"limits": {"send_timeout": "60s"}}"#)
        let child = try ChildProcess(["/bin/sh", "-c", "exec '\(try edgedPath())' --tenants '\(dir)/tenants' --config '\(dir)/server.json' --http 127.0.0.1:0 --https 127.0.0.1:0 --workers 1 --access-log off --state '\(dir)/state' 2>&1"])
        defer { child.stop() }
        let port = try #require(listeningPorts(child.read(until: "tenant(s)\n")).https)
        func curl(_ args: String) throws -> (Int32, String) {
            try shell("curl -s -m 30 --http2 --cacert '\(dir)/state/ca.pem' --resolve h.test:\(port):127.0.0.1 \(args)")
        }
        let size = 8_000_000
        let (st, got) = try curl("-o /dev/null -w '%{size_download}' https://h.test:\(port)/bytes/\(size)")
        #expect(st == 0 && got == "\(size)", "the object is fetched whole: \(got)")
        let (_, hit) = try curl("-s -D - -o /dev/null https://h.test:\(port)/bytes/\(size)")
        #expect(hit.lowercased().contains("; hit; ttl="), "then cached: \(hit)")   // (the node is named for the host)
        let before = rssKiB(pid: child.pid)
        try #require(before > 0)
        let script = repoRoot.appendingPathComponent("tools/testclient/h2_hostile.py").path
        let slow = try ChildProcess(["/bin/sh", "-c", "exec /usr/bin/python3 '\(script)' slow-many \(port) h.test '\(dir)/state/ca.pem' /bytes/\(size) 12 2>&1"])
        defer { slow.stop() }
        let line = slow.read(until: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = line.split(separator: " ")
        #expect(parts.count == 3 && parts[0] == "stalled" && (Int(parts[2]) ?? -1) <= 12 * 1024, "each stream got at most its window: \(line)")
        let grown = rssKiB(pid: child.pid) - before
        // Copies of the object per stream would be 12 x 8 MB; the streams' buffers are 12 x 64 KiB.
        #expect(grown < 32 * 1024, "edged grew by \(grown) KiB for 12 stalled streams of an 8 MB hit")
        // Others are served meanwhile.
        let (st2, code) = try curl("-o /dev/null -w '%{http_code}' https://h.test:\(port)/echo")
        #expect(st2 == 0 && code == "200")
    }

    /// On stop, GOAWAY names the last stream; a request in flight completes.
    @Test func stopSendsGoawayAndInFlightStreamsFinish() throws {
        let o = try Origin()
        let e = try edge(o)
        let started = try ChildProcess(["/bin/sh", "-c", "exec nghttp -v --no-verify-peer https://localhost:\(e.httpsPort)/slow/800 2>&1"])
        defer { started.stop() }
        try waitUntil("the slow request reaches the origin") { try o.stats().requests >= 1 }
        e.stop()
        let out = started.read(until: "slow done")
        #expect(out.contains("recv GOAWAY") && out.contains("last_stream_id=13") && out.contains("error_code=NO_ERROR"), "\(out)")
        #expect(out.contains(":status: 200"), "\(out)")
    }
}
