// edgectl log, top and dashboard: watching the traffic as it happens.
// `log` follows GET /v1/log; `top` redraws GET /v1/live once a second;
// `dashboard` forwards a loopback port to the admin socket so a browser can
// open edged's page (GET requests for the page and /v1/live only, under a
// secret path prefix, so another local user cannot use the port).
import Foundation
import Glibc
import EdgeIO
import EdgeHTTP
import EdgeAdminClient

let liveHelp: [String: String] = [
    "log": """
    usage: edgectl log [--tenant T] [--status 5xx|404] [--cache hit|stale|revalidated|miss|pass|bypass]
                       [--host H] [--path-prefix /P] [--json] [--count N]
    Follows the access events as they happen (from edged's memory, never its log file): one
    line each with time, status, method, URL, cache outcome, duration and tenant, or the whole
    JSON line with --json. Only events matching every filter given are shown. Stops after N
    events with --count, else on Ctrl-C. A reader slower than the traffic misses events and is
    told how many ("dropped"); edged never waits for it.
    """,
    "top": """
    usage: edgectl top [--tenant T] [--count N]
    A view redrawn every second: per tenant requests/s, hit ratio, bandwidth, status classes,
    p50/p99 latency and origin errors for the last second, then the URLs asked for most and
    missed most lately (rates smoothed over about ten seconds). Ctrl-C ends it; --count N
    after N screens.
    """,
    "dashboard": """
    usage: edgectl dashboard [--listen 127.0.0.1:PORT]
    Serves edged's dashboard page to a browser on this machine: listens on loopback (PORT 0,
    the default, picks a free one) and prints the URL to open, which carries a secret path
    prefix. Only the page and its data (GET) are forwarded to the admin socket. Over ssh:
    ssh -L 9902:127.0.0.1:PORT host, then open the printed path on localhost:9902.
    The TCP admin listener (--admin) serves the same page at / and asks for its token.
    """,
]

/// Writes bytes to the terminal as they are (the screen control `top` needs);
/// every text from a node still goes through `clean` first.
func writeRaw(_ s: String) { FileHandle.standardOutput.write(Data(s.utf8)) }

func percentEncoded(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~/"))) ?? s }

@MainActor func logCommand() {
    var query: [String] = []
    var count = -1
    var c = ArgCursor(list: cmdArgs, context: "log: ")
    while let a = c.next() {
        switch a {
        case "--tenant": query.append("tenant=" + percentEncoded(c.value(a)))
        case "--status": query.append("status=" + percentEncoded(c.value(a)))
        case "--cache": query.append("cache=" + percentEncoded(c.value(a)))
        case "--host": query.append("host=" + percentEncoded(c.value(a)))
        case "--path-prefix": query.append("path_prefix=" + percentEncoded(c.value(a)))
        case "--json": json = true
        case "--count":
            guard let n = Int(c.value(a)), n > 0 else { die("log: --count needs a positive number") }
            count = n
        default: die("log: unknown argument \(a)\n\(liveHelp["log"]!)")
        }
    }
    let path = "/v1/log" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
    do {
        try adminStream(try defaultNode(), path, status: { status, body in
            guard status == 200 else {
                die((object(Data(body))["error"] as? String) ?? "HTTP \(status)", code: status == 400 ? 2 : 1)
            }
        }, line: { raw in
            if raw.isEmpty { return true }   // the stream's keep-alive
            if json && !raw.starts(with: Array(#"{"dropped""#.utf8)) {
                print(String(decoding: raw, as: UTF8.self))   // as it came (no parse: a reader keeps up longer)
                if count > 0 { count -= 1; if count == 0 { return false } }
                return true
            }
            let o = object(Data(raw))
            if let d = o["dropped"] as? Int {
                FileHandle.standardError.write(Data("edgectl: \(d) event(s) dropped (the reader fell behind)\n".utf8))
                return true
            }
            print(json ? String(decoding: raw, as: UTF8.self) : logText(o))
            if count > 0 { count -= 1; if count == 0 { return false } }
            return true
        })
    } catch {
        die("\(error)", code: 1)
    }
}

/// One event as a short line: time, status, method, URL, cache, duration, tenant.
func logText(_ o: [String: Any]) -> String {
    let time = (o["time"] as? String).map { String($0.dropFirst(11).prefix(12)) } ?? "-"
    let url = (o["scheme"] as? String ?? "http") + "://" + (o["host"] as? String ?? "-") + (o["target"] as? String ?? "")
    let cache = (o["cache"] as? String).map { " [\($0)]" } ?? ""
    let err = (o["error"] as? String).map { " error=\"\($0)\"" } ?? ""
    let ms = (o["duration_ms"] as? Double).map { String(format: "%.3fms", $0) } ?? "-"
    return "\(time) \(o["status"] as? Int ?? 0) \(o["method"] as? String ?? "-") \(url)\(cache) \(ms) \(o["tenant"] as? String ?? "-") \(o["client"] as? String ?? "-")\(err)"
}

@MainActor func topCommand() {
    var tenant: String?
    var count = -1
    var c = ArgCursor(list: cmdArgs, context: "top: ")
    while let a = c.next() {
        switch a {
        case "--tenant": tenant = c.value(a)
        case "--count":
            guard let n = Int(c.value(a)), n > 0 else { die("top: --count needs a positive number") }
            count = n
        default: die("top: unknown argument \(a)\n\(liveHelp["top"]!)")
        }
    }
    let tty = isatty(1) != 0
    while count != 0 {
        let since = Int64(time(nil)) - 5
        let data = single("GET", "/v1/live?since=\(since)&top=10" + (tenant.map { "&tenant=" + percentEncoded($0) } ?? ""))
        let screen = topScreen(object(data))
        writeRaw(tty ? "\u{1B}[H\u{1B}[2J" : "\n")
        print(screen, terminator: "")
        if count > 0 { count -= 1; if count == 0 { break } }
        sleep(1)
    }
}

func topScreen(_ d: [String: Any]) -> String {
    let columns = d["columns"] as? [String] ?? []
    func col(_ row: [Double], _ name: String) -> Double { columns.firstIndex(of: name).map { $0 < row.count ? row[$0] : -1 } ?? -1 }
    func pad(_ s: String, _ w: Int, right: Bool = true) -> String {
        let t = s.count > w ? String(s.prefix(w)) : s
        let fill = String(repeating: " ", count: max(0, w - t.count))
        return right ? fill + t : t + fill
    }
    func human(_ v: Double, _ unit: String = "") -> String {
        if v < 0 { return "-" }
        var x = v, i = 0
        let suffix = ["", "k", "M", "G", "T"]
        let base = unit == "B" ? 1024.0 : 1000.0
        while x >= base && i < suffix.count - 1 { x /= base; i += 1 }
        return (i == 0 && x == x.rounded() ? String(Int(x)) : String(format: x < 10 ? "%.2f" : "%.1f", x)) + suffix[i] + unit
    }
    let now = d["now"] as? Int ?? 0
    var out = "edged top   \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(now))))   (last second; Ctrl-C quits)\n\n"
    out += pad("TENANT", 16, right: false) + pad("REQ/S", 9) + pad("HIT%", 7) + pad("BW/S", 10) + pad("2XX", 7) + pad("3XX", 7)
        + pad("4XX", 7) + pad("5XX", 7) + pad("P50MS", 9) + pad("P99MS", 9) + pad("ORIG-ERR", 9) + "\n"
    let tenants = d["tenants"] as? [[String: Any]] ?? []
    var topURLs: [(String, String, Double)] = []
    var topMisses: [(String, String, Double)] = []
    for t in tenants {
        let name = t["tenant"] as? String ?? "?"
        let points = (t["points"] as? [[Any]] ?? []).map { $0.map { ($0 as? NSNumber)?.doubleValue ?? -1 } }
        let last = points.last ?? []
        let hit = col(last, "hit_ratio")
        out += pad(name == "-" ? "(none)" : name, 16, right: false) + pad(human(col(last, "requests")), 9)
            + pad(hit < 0 ? "-" : String(format: "%.1f", hit * 100), 7) + pad(human(col(last, "bytes"), "B"), 10)
            + pad(human(col(last, "s2xx")), 7) + pad(human(col(last, "s3xx")), 7) + pad(human(col(last, "s4xx")), 7) + pad(human(col(last, "s5xx")), 7)
            + pad(col(last, "p50_ms") < 0 ? "-" : String(format: "%.3f", col(last, "p50_ms")), 9)
            + pad(col(last, "p99_ms") < 0 ? "-" : String(format: "%.3f", col(last, "p99_ms")), 9)
            + pad(human(col(last, "origin_errors")), 9) + "\n"
        for u in t["top"] as? [[String: Any]] ?? [] { topURLs.append((name, u["url"] as? String ?? "", u["rate"] as? Double ?? 0)) }
        for u in t["top_misses"] as? [[String: Any]] ?? [] { topMisses.append((name, u["url"] as? String ?? "", u["rate"] as? Double ?? 0)) }
    }
    for (title, list) in [("TOP URLS", topURLs), ("TOP MISSES", topMisses)] {
        out += "\n" + pad(title, 60, right: false) + pad("REQ/S", 9) + "  TENANT\n"
        let sorted = list.sorted { $0.2 > $1.2 }.prefix(10)
        if sorted.isEmpty { out += "(none lately)\n" }
        for (t, u, r) in sorted { out += pad(u, 60, right: false) + pad(String(format: "%.2f", r), 9) + "  \(t)\n" }
    }
    if let tail = d["tail"] as? [String: Any] {
        let all = (tail["lines"] as? Int ?? 0) + (tail["dropped"] as? Int ?? 0), read = tail["read"] as? Int ?? 0
        if read < all { out += "\n(top URLs are a sample: \(read) of \(all) requests read)\n" }
    }
    return out
}

@MainActor func dashboardCommand() {
    var listen = "127.0.0.1:0"
    var c = ArgCursor(list: cmdArgs, context: "dashboard: ")
    while let a = c.next() {
        switch a {
        case "--listen": listen = c.value(a)
        default: die("dashboard: unknown argument \(a)\n\(liveHelp["dashboard"]!)")
        }
    }
    guard let addr = SocketAddress(listen), ["127.0.0.1", "::1"].contains(addr.ipString) || addr.ipString.hasPrefix("127.") else {
        die("dashboard: --listen must be a loopback ADDR:PORT (the forwarded page needs no token)")
    }
    let node: Node
    do { node = try defaultNode() } catch { die("\(error)", code: 1) }
    let lfd: Int32
    do { lfd = try TCP.listen(addr, reusePort: false, backlog: 64) } catch { die("dashboard: cannot listen on \(listen): \(error)", code: 1) }
    _ = fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) & ~O_NONBLOCK)
    let bound = TCP.localAddress(lfd) ?? addr
    var g = SystemRandomNumberGenerator()
    let secret = IOBuffer(capacity: 32)
    RequestID.append(g.next(), g.next(), to: secret)
    let prefix = "/" + String(decoding: secret.readView, as: UTF8.self)
    let host = bound.ipString.contains(":") ? "[\(bound.ipString)]" : bound.ipString
    print("dashboard: open http://\(host):\(bound.port)\(prefix)/   (Ctrl-C to stop)")
    while true {
        let fd = acceptBlocking(lfd)
        if fd < 0 { continue }
        OSThread.detached(name: "edgectl-fwd") { forwardDashboard(fd, node: node, prefix: prefix) }
    }
}

/// One browser request: GET PREFIX/, PREFIX/dashboard or PREFIX/v1/live?… to the admin socket.
func forwardDashboard(_ fd: Int32, node: Node, prefix: String) {
    defer { close(fd) }
    setSocketTimeouts(fd, millis: 5000)
    var buf: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 8192)
    var head = RequestHead()
    var scan = HeadScan()
    var limits = HeadLimits()
    limits.maxHeadBytes = 16 * 1024
    func answer(_ status: Int, _ type: String, _ body: [UInt8]) {
        let b = IOBuffer(capacity: 256 + body.count)
        HTTP1Serializer.appendStatusLine(status, to: b)
        b.append(string: "Content-Type: \(type)\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n")
        HTTP1Serializer.appendContentLength(Int64(body.count), to: b)
        HTTP1Serializer.appendEndOfHead(close: true, http10: false, to: b)
        body.withUnsafeBytes { b.append($0) }
        let out = Array(b.readView)
        _ = out.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
    while true {
        let r = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if r <= 0 { return }
        buf += chunk[0..<r]
        switch buf.withUnsafeBytes({ HeadParser.parseRequest($0, limits: limits, into: &head, scan: &scan) }) {
        case .needMore: continue
        case .error(let e): return answer(e.status, "text/plain", Array("bad request\n".utf8))
        case .complete: break
        }
        break
    }
    let method = String(decoding: buf[head.methodRange], as: UTF8.self)
    let target = String(decoding: buf[head.targetRange], as: UTF8.self)
    guard method == "GET" || method == "HEAD" else { return answer(405, "text/plain", Array("only GET\n".utf8)) }
    guard target.hasPrefix(prefix + "/") else { return answer(404, "text/plain", Array("not found\n".utf8)) }
    let path = String(target.dropFirst(prefix.count))
    let bare = String(path.prefix { $0 != "?" })
    guard ["/", "/dashboard", "/v1/live"].contains(bare) else { return answer(404, "text/plain", Array("not found\n".utf8)) }
    do {
        let (status, data) = try adminCall(node, "GET", path)
        answer(status, bare == "/v1/live" || status != 200 ? "application/json" : "text/html; charset=utf-8", Array(data))
    } catch {
        answer(502, "application/json", Array("{\"error\":\"edged did not answer\"}\n".utf8))
    }
}
