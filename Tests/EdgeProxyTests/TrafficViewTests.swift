// Seeing the traffic: access log fields and formats, request ids, the live
// tail (`edgectl log`), `edgectl top` under tmux and the dashboard in a real
// headless Chromium; real origins, real sockets, the real edgectl binary.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy
import EdgeAdmin
import EdgeIO

@Suite(.serialized, .timeLimit(.minutes(3))) struct TrafficViewTests {
    /// The origin's /echo answer: the request fields it got, by lowercase name.
    func echoedHeaders(_ r: Response) -> [String: String] {
        let o = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
        var out: [String: String] = [:]
        if let h = o["headers"] as? [String: String] { for (k, v) in h { out[k.lowercased()] = v } }
        if let h = o["headers"] as? [[String]] { for p in h where p.count == 2 { out[p[0].lowercased()] = p[1] } }
        return out
    }

    func isGeneratedID(_ s: String?) -> Bool {
        guard let s else { return false }
        return s.utf8.count == 32 && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    @Test func logLinesSayWhoAskedWhatAndHowTheOriginAnswered() throws {
        let o = try Origin()
        defer { o.stop() }
        let edge = try Edge(tenants: [cacheTenant("t", o, extra: #""tls": "internal""#)], server: #"{"trusted_proxies": ["127.0.0.5"]}"#)
        defer { edge.stop() }
        try script(o, "/rid", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600", "X-Request-ID": "origin-1"}, "body": "r"}]"#)

        // A client's own valid id is kept: the origin gets it, the client gets it back.
        let a = try request(edge.port, "/echo/a", host: "t.test", headers: ["User-Agent: Probe/1.0 \"quoted\"", "Referer: http://ref.test/p", "X-Request-ID: trace-42"])
        #expect(a.status == 200)
        #expect(a.headers("X-Request-ID") == ["trace-42"])
        #expect(echoedHeaders(a)["x-request-id"] == "trace-42", "\(a.text)")
        // An invalid one is replaced by a new id, the same at the origin, in the answer and in the log.
        let b = try request(edge.port, "/echo/b", host: "t.test", headers: ["X-Request-ID: has spaces, and a comma"])
        let made = b.header("X-Request-ID")
        #expect(isGeneratedID(made), "\(b.headers)")
        #expect(echoedHeaders(b)["x-request-id"] == made)
        // Behind a trusted proxy: the client it names, and the proxy as the peer.
        _ = try request(edge.port, "/echo/c", host: "t.test", headers: ["X-Forwarded-For: 203.0.113.7"], from: "127.0.0.5")
        // An untrusted peer's claim changes nothing.
        _ = try request(edge.port, "/echo/d", host: "t.test", headers: ["X-Forwarded-For: 203.0.113.8"], from: "127.0.0.6")
        // The origin's X-Request-ID is neither relayed nor stored: a hit gets its own request's id.
        let r1 = try request(edge.port, "/rid", host: "t.test")
        let r2 = try request(edge.port, "/rid", host: "t.test")
        #expect(r2.header("Cache-Status")?.contains("hit") == true, "\(r2.headers)")
        for r in [r1, r2] { #expect(r.headers("X-Request-ID").count == 1 && isGeneratedID(r.header("X-Request-ID")), "\(r.headers)") }
        #expect(r1.header("X-Request-ID") != r2.header("X-Request-ID"))
        // Over TLS (HTTP/1.1 and HTTP/2): scheme, TLS version, SNI, protocol.
        let ca = edge.stateDir + "/ca.pem"
        for proto in ["--http1.1", "--http2"] {
            let (s, out) = try shell("curl -s -m 20 \(proto) -o /dev/null -w '%{http_code}' --cacert '\(ca)' --resolve t.test:\(edge.httpsPort):127.0.0.1 https://t.test:\(edge.httpsPort)/echo/tls")
            #expect(s == 0 && out == "200", "\(proto): \(out)")
        }

        try waitUntil("the lines logged") { edge.accessLog().count == 8 }
        let log = edge.accessLog()
        func line(_ target: String) -> [String: Any] { log.first { $0["target"] as? String == target } ?? [:] }
        let la = line("/echo/a")
        #expect(la["host"] as? String == "t.test")
        #expect(la["scheme"] as? String == "http")
        #expect(la["protocol"] as? String == "HTTP/1.1")
        #expect(la["user_agent"] as? String == "Probe/1.0 \"quoted\"")
        #expect(la["referer"] as? String == "http://ref.test/p")
        #expect(la["request_id"] as? String == "trace-42")
        #expect(la["client"] as? String == "127.0.0.1" && la["peer"] as? String == "127.0.0.1")
        #expect(la["origin_status"] as? Int == 200)
        #expect((la["origin_bytes_out"] as? Int ?? 0) > 60, "the request head went to the origin: \(la)")
        #expect((la["origin_bytes_in"] as? Int ?? 0) > (la["origin_bytes_out"] as? Int ?? 0) / 2, "\(la)")
        #expect(la["cache"] as? String != nil && la["tier"] == nil, "a miss has no tier: \(la)")
        #expect(line("/echo/b")["request_id"] as? String == made)
        #expect(line("/echo/c")["client"] as? String == "203.0.113.7" && line("/echo/c")["peer"] as? String == "127.0.0.5")
        #expect(line("/echo/d")["client"] as? String == "127.0.0.6" && line("/echo/d")["peer"] as? String == "127.0.0.6")
        let hits = log.filter { $0["target"] as? String == "/rid" }
        #expect(hits.last?["tier"] as? String == "memory" && hits.last?["origin_status"] == nil, "\(hits)")
        #expect(hits.last?["request_id"] as? String == r2.header("X-Request-ID"))
        let tls = log.filter { $0["target"] as? String == "/echo/tls" }
        #expect(Set(tls.compactMap { $0["protocol"] as? String }) == ["HTTP/1.1", "HTTP/2"], "\(tls)")
        for l in tls {
            #expect(l["scheme"] as? String == "https" && l["sni"] as? String == "t.test", "\(l)")
            #expect((l["tls"] as? String)?.hasPrefix("TLSv1.") == true, "\(l)")
        }
    }

    @Test func requestIDsCanBeSwitchedOff() throws {
        let o = try Origin()
        defer { o.stop() }
        let edge = try Edge(tenants: [cacheTenant("t", o)], server: #"{"request_id": false}"#)
        defer { edge.stop() }
        let r = try request(edge.port, "/echo/x", host: "t.test", headers: ["X-Request-ID: kept as is"])
        #expect(r.header("X-Request-ID") == nil)
        #expect(echoedHeaders(r)["x-request-id"] == "kept as is", "the client's field passes untouched")
        try waitUntil("logged") { edge.accessLog().count == 1 }
        #expect(edge.accessLog()[0]["request_id"] == nil)
    }

    @Test func combinedLinesParseWithTheUsualRegexAndFieldListsChooseFields() throws {
        let o = try Origin()
        defer { o.stop() }
        let edge = try Edge(tenants: [cacheTenant("t", o)], server: #"{"log_format": "combined"}"#)
        defer { edge.stop() }
        _ = try request(edge.port, "/echo/x?q=1", host: "t.test", headers: ["User-Agent: UA \"with\" quotes", "Referer: http://r.test/"])
        _ = try request(edge.port, "/status/404", host: "t.test")
        try waitUntil("two lines") { ((try? String(contentsOfFile: edge.logPath, encoding: .utf8)) ?? "").split(separator: "\n").count == 2 }
        let lines = try String(contentsOfFile: edge.logPath, encoding: .utf8).split(separator: "\n").map(String.init)
        // The regex log tools use for nginx's and Apache's combined format.
        let re = try NSRegularExpression(pattern: #"^(\S+) \S+ \S+ \[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "(\S+) (\S+) (HTTP/\d\.\d)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$"#)
        var parsed: [[String]] = []
        for l in lines {
            guard let m = re.firstMatch(in: l, range: NSRange(l.startIndex..., in: l)) else { Issue.record("not combined: \(l)"); continue }
            parsed.append((1..<m.numberOfRanges).map { String(l[Range(m.range(at: $0), in: l)!]) })
        }
        #expect(parsed.count == 2)
        #expect(parsed.first?[0] == "127.0.0.1" && parsed.first?[2] == "GET" && parsed.first?[3] == "/echo/x?q=1" && parsed.first?[5] == "200")
        #expect(parsed.first?[7] == "http://r.test/" && parsed.first?[8] == #"UA \x22with\x22 quotes"#, "\(parsed)")
        #expect(parsed.last?[5] == "404" && parsed.last?[7] == "-" && parsed.last?[8] == "-")

        let chosen = try Edge(tenants: [cacheTenant("t", o)], server: #"{"log_format": ["status", "target", "request_id"]}"#)
        defer { chosen.stop() }
        _ = try request(chosen.port, "/echo/y", host: "t.test")
        try waitUntil("logged") { chosen.accessLog().count == 1 }
        #expect(Set(chosen.accessLog()[0].keys) == ["status", "target", "request_id"], "\(chosen.accessLog())")
    }

    @Test func edgectlLogFollowsOnlyWhatItsFiltersAskFor() throws {
        let o = try Origin()
        defer { o.stop() }
        let a = try AdminEdge(tenants: [cacheTenant("t", o), cacheTenant("u", o)])
        defer { a.stop() }
        let ctl = try builtBinary("edgectl")
        #expect(!a.edge.server.tap.listening, "nobody follows the tail yet")
        let errors = try ChildProcess([ctl, "--state", a.edge.stateDir, "log", "--status", "4xx", "--tenant", "t", "--json", "--count", "2"])
        defer { errors.stop() }
        let misses = try ChildProcess([ctl, "--state", a.edge.stateDir, "log", "--path-prefix", "/p/", "--cache", "miss", "--host", "U.test"])
        defer { misses.stop() }
        try waitUntil("both readers attached") { a.edge.server.tap.listeners.load(ordering: .relaxed) == 2 }

        _ = try request(a.port, "/echo/ok", host: "t.test")
        _ = try request(a.port, "/status/404", host: "u.test")          // 4xx, but tenant u
        _ = try request(a.port, "/status/404", host: "t.test")          // the first match
        try script(o, "/p/1", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600"}, "body": "p"}]"#)
        _ = try request(a.port, "/p/1", host: "t.test")                 // a miss on t
        _ = try request(a.port, "/p/1", host: "u.test")                 // the miss on u
        _ = try request(a.port, "/p/1", host: "u.test")                 // a hit on u
        _ = try request(a.port, "/status/410", host: "t.test")          // the second match
        let e1 = errors.readLine(), e2 = errors.readLine()
        for (l, status) in [(e1, 404), (e2, 410)] {
            let j = (try? JSONSerialization.jsonObject(with: Data(l.utf8))) as? [String: Any] ?? [:]
            #expect(j["status"] as? Int == status && j["tenant"] as? String == "t", "\(l)")
        }
        #expect(errors.readLine(seconds: 5).isEmpty, "--count 2 ends the stream")
        let m = misses.readLine()
        #expect(m.contains(" 200 GET http://u.test/p/1 [fwd=uri-miss; fwd-status=200; stored]") && m.contains(" u 127.0.0.1"), "line: \(m)")
        #expect(misses.readLine(seconds: 2).isEmpty, "the hit and t's miss are not shown")
        misses.stop()
        try waitUntil("the readers detached") { !a.edge.server.tap.listening }

        // A filter edged cannot apply is refused with its reason.
        let (status, out) = try shell("'\(ctl)' --state '\(a.edge.stateDir)' log --status 9zz 2>&1")
        #expect(status == 2 && out.contains("a status (404) or a class (5xx)"), "\(out)")
        let (st2, out2) = try shell("'\(ctl)' --state '\(a.edge.stateDir)' log --tenant nobody 2>&1")
        #expect(st2 == 1 && out2.contains("no tenant named nobody"), "\(out2)")
    }

    @Test func aReaderThatReadsNothingSlowsNoRequest() throws {
        let o = try Origin()
        defer { o.stop() }
        let a = try AdminEdge(tenants: [cacheTenant("t", o)])
        defer { a.stop() }
        try script(o, "/h", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600"}, "body": "h"}]"#)
        // A raw reader that asks for the tail and then never reads a byte.
        let fd = try UnixSocket.connect(path: a.edge.stateDir + "/admin.sock")
        defer { close(fd) }
        let ask = Array("GET /v1/log HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        #expect(ask.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == ask.count)
        try waitUntil("the reader attached") { a.edge.server.tap.listening }
        // Far more lines than the socket buffers hold (hits with a long User-Agent,
        // about 2 KB a line): every request is still answered.
        let long = String(repeating: "x", count: 1500)
        var ok = 0
        for i in 0..<800 { if try request(a.port, "/h", host: "t.test", headers: ["User-Agent: \(long)", "X-Request-ID: n\(i)"]).status == 200 { ok += 1 } }
        #expect(ok == 800)
        // What the reader gets when it reads at last: the oldest lines, in order.
        setSocketTimeouts(fd, millis: 5000)
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while got.count < 200_000 {
            let r = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if r <= 0 { break }
            got += buf[0..<r]
        }
        let text = String(decoding: got, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n") && text.contains("\"request_id\":\"n0\""), "\(text.prefix(300))")
    }

    @Test func edgectlTopInTmuxShowsTenantsAndChangingNumbers() throws {
        let o = try Origin()
        defer { o.stop() }
        let a = try AdminEdge(tenants: [cacheTenant("shop", o), cacheTenant("blog", o)])
        defer { a.stop() }
        try script(o, "/hot", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600"}, "body": "hot"}]"#)
        let session = "edge-top-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        let ctl = try builtBinary("edgectl")
        let (st, out) = try shell("tmux new-session -d -s \(session) -x 150 -y 45 \"'\(ctl)' --state '\(a.edge.stateDir)' top\"")
        #expect(st == 0, "\(out)")
        defer { _ = try? shell("tmux kill-session -t \(session)") }
        func screen() throws -> String { try shell("tmux capture-pane -p -t \(session)").1 }
        try waitUntil("top drew its first screen") { try screen().contains("TOP URLS") }
        #expect(try screen().contains("shop") && screen().contains("blog"))
        // Traffic on shop: its requests per second and its top URL show up, blog stays idle.
        var seen: Set<String> = []
        let deadline = monotonicMillis() + 20_000
        var i = 0
        while monotonicMillis() < deadline {
            _ = try request(a.port, "/hot", host: "shop.test")
            if i % 5 == 0 { _ = try request(a.port, "/miss/\(i)", host: "shop.test") }
            i += 1
            if i % 50 == 0 {
                let s = try screen()
                if let row = s.split(separator: "\n").first(where: { $0.hasPrefix("shop ") }) {
                    seen.insert(String(row.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? ""))
                }
                if s.contains("shop.test/hot") && s.contains("shop.test/miss/") && seen.count >= 2 { break }
            }
        }
        let s = try screen()
        #expect(s.contains("shop.test/hot"), "the hot URL in the top list:\n\(s)")
        #expect(s.contains("shop.test/miss/"), "a missed URL in the top misses:\n\(s)")
        #expect(seen.count >= 2, "shop's requests/s changed between screens: \(seen)\n\(s)")
        let blog = s.split(separator: "\n").first { $0.hasPrefix("blog ") }.map(String.init) ?? ""
        #expect(blog.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first == "0", "\(blog)")
    }

    @Test func theDashboardRunsInARealBrowserAndCountsTraffic() throws {
        let o = try Origin()
        defer { o.stop() }
        let a = try AdminEdge(tenants: [cacheTenant("shop", o)], tcpToken: "dashboard-test-token-0123456789")
        defer { a.stop() }
        try script(o, "/hot", #"[{"status": 200, "headers": {"Cache-Control": "max-age=600"}, "body": "hot"}]"#)
        for _ in 0..<5 { _ = try request(a.port, "/hot", host: "shop.test") }

        // The TCP admin listener: the page needs no token, its data does.
        let tcp = "http://127.0.0.1:\(a.tcpPort)"
        #expect(try shell("curl -s -o /dev/null -w '%{http_code}' \(tcp)/").1 == "200")
        #expect(try shell("curl -s -o /dev/null -w '%{http_code}' '\(tcp)/v1/live'").1 == "401")
        #expect(try shell("curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer dashboard-test-token-0123456789' '\(tcp)/v1/live'").1 == "200")

        // edgectl dashboard forwards a loopback port to the socket, under a secret prefix only.
        let fwd = try ChildProcess([try builtBinary("edgectl"), "--state", a.edge.stateDir, "dashboard"])
        defer { fwd.stop() }
        let line = fwd.readLine()
        guard let url = line.split(separator: " ").first(where: { $0.hasPrefix("http://127.0.0.1:") }).map(String.init) else {
            Issue.record("no URL printed: \(line)"); return
        }
        let base = url.components(separatedBy: "/").prefix(3).joined(separator: "/")   // http://127.0.0.1:PORT
        #expect(try shell("curl -s -o /dev/null -w '%{http_code}' \(base)/v1/live").1 == "404", "without the prefix")
        #expect(try shell("curl -s -o /dev/null -w '%{http_code}' -X POST \(url)v1/reload").1 == "405")

        let shot = a.edge.dir.appendingPathComponent("dashboard.png").path
        let browser = try ChildProcess(["/usr/bin/python3", repoRoot.appendingPathComponent("tools/testclient/dashboard_check.py").path, url, shot], stdin: true)
        defer { browser.stop() }
        let first = browser.readLine(seconds: 60)
        let before = Int(first.dropFirst(6)) ?? -1
        #expect(first.hasPrefix("count ") && before >= 5, "the page shows the requests so far: \(first)")
        for i in 0..<40 { _ = try request(a.port, i % 4 == 0 ? "/miss/\(i)" : "/hot", host: "shop.test") }
        browser.write("\n")
        let second = browser.readLine(seconds: 60)
        #expect((Int(second.dropFirst(6)) ?? -1) >= before + 40, "the counter moved after the traffic: \(first) → \(second)")
        var errors: [String] = []
        while true {
            let l = browser.readLine(seconds: 60)
            if l == "done" || l.isEmpty { break }
            errors.append(l)
        }
        #expect(errors.isEmpty, "JavaScript errors: \(errors)")
        // The script ends by itself once it said "done", taking its browser's processes with it.
        #expect(browser.wait() == 0)
        let png = (try? Data(contentsOf: URL(fileURLWithPath: shot))) ?? Data()
        #expect(png.count > 10_000 && png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "a screenshot: \(png.count) bytes")
    }
}
