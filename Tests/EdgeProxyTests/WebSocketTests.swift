// WebSocket tunnels through edge with a real client and a real origin (the
// `websockets` python package: tools/testclient/ws_client.py and
// tools/testorigin/ws_origin.py), over HTTP and HTTPS.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy

/// A python that has the `websockets` package (.ci/run installs Debian's python3-websockets).
func websocketPython() throws -> String {
    for p in ["python3", "/usr/bin/python3"] where (try? shell("\(p) -c 'import websockets'").0) == 0 { return p }
    throw HarnessError(description: "no python3 with the websockets package (apt install python3-websockets)")
}

/// tools/testorigin/ws_origin.py as a child process.
final class WebSocketOrigin: @unchecked Sendable {
    let child: ChildProcess
    let port: Int
    init() throws {
        child = try ChildProcess([try websocketPython(), repoRoot.appendingPathComponent("tools/testorigin/ws_origin.py").path, "0"])
        guard let p = Int(child.readLine()) else { throw HarnessError(description: "websocket origin did not start") }
        port = p
    }
    var address: String { "127.0.0.1:\(port)" }
    deinit { child.stop() }
}

/// Runs tools/testclient/ws_client.py and returns its JSON answer.
func wsClient(_ port: Int, _ host: String, _ path: String, _ mode: String, cafile: String? = nil) throws -> [String: Any] {
    let script = repoRoot.appendingPathComponent("tools/testclient/ws_client.py").path
    let ca = cafile.map { " --cafile '\($0)'" } ?? ""
    let (_, out) = try shell("\(try websocketPython()) '\(script)' \(port) \(host) \(path) \(mode)\(ca)", seconds: 150)
    let line = out.split(separator: "\n").last.map(String.init) ?? ""
    return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "ws_client: \(out)")
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct WebSocketTests {
    let certDir: String
    init() throws {
        certDir = FileManager.default.temporaryDirectory.appendingPathComponent("edge-ws-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: certDir, withIntermediateDirectories: true)
    }

    func tenant(_ o: WebSocketOrigin, routes: String = #"[{"prefix": "/", "origin": "o"}]"#, cert: (String, String)? = nil) -> String {
        let tls = cert.map { #""tls": {"certificates": [{"cert": "\#($0.0)", "key": "\#($0.1)"}]}"# } ?? ""
        return tenantJSON(name: "ws", hosts: ["ws.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#, routes: routes, extra: tls)
    }

    @Test func textAndBinaryFramesEchoOverHTTPAndHTTPS() throws {
        let o = try WebSocketOrigin()
        let cert = try makeCertificate(in: certDir, name: "ws", cn: "ws.test", sans: ["ws.test"])
        let edge = try Edge(tenants: [tenant(o, cert: cert)])
        defer { edge.stop() }
        let plain = try wsClient(edge.port, "ws.test", "/echo", "echo")
        #expect(plain["text"] as? Bool == true && plain["binary"] as? Bool == true, "\(plain)")
        let secure = try wsClient(edge.httpsPort, "ws.test", "/echo", "echo", cafile: cert.0)
        #expect(secure["text"] as? Bool == true && secure["binary"] as? Bool == true, "\(secure)")
        // The origin saw the upgrade (and edge's forwarding fields), not a plain GET.
        let seen = try wsClient(edge.port, "ws.test", "/headers", "headers")
        let fields = (seen["headers"] as? [[String]] ?? []).map { ($0.first?.lowercased() ?? "", $0.last ?? "") }
        #expect(fields.contains { $0 == ("upgrade", "websocket") }, "\(seen)")
        #expect(fields.contains { $0.0 == "connection" && $0.1.lowercased().contains("upgrade") }, "\(seen)")
        #expect(fields.contains { $0.0 == "sec-websocket-key" }, "\(seen)")
        #expect(fields.contains { $0 == ("x-forwarded-for", "127.0.0.1") }, "\(seen)")
        #expect(edge.server.metricsText().contains("edge_websocket_tunnels_total 3"))
        edge.stop()
        // Each tunnel is logged when it closes: 101, bytes both ways, who closed it.
        let lines = edge.accessLog().filter { ($0["status"] as? Int) == 101 }
        #expect(lines.count == 3, "\(edge.accessLog())")
        #expect(lines.allSatisfy { ($0["bytes_in"] as? Int ?? 0) > 100 && ($0["bytes_out"] as? Int ?? 0) > 100 && $0["closed_by"] != nil }, "\(lines)")
        #expect(lines.allSatisfy { $0["cache"] == nil }, "a tunnel never touches the cache: \(lines)")
    }

    @Test func sixteenMiBEachWayWithBoundedMemory() throws {
        // The RSS of an edged child process (the test process runs other suites meanwhile).
        let o = try WebSocketOrigin()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edged-ws-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/tenants", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeFile(dir + "/tenants/t.json", tenant(o))
        let child = try ChildProcess(["/bin/sh", "-c", "exec '\(try edgedPath())' --tenants '\(dir)/tenants' --http 127.0.0.1:0 --workers 1 --access-log off --state '\(dir)/state' 2>&1"])
        defer { child.stop() }
        let port = listeningPorts(child.read(until: "tenant(s)\n")).http
        try #require(port > 0)
        let warm = try wsClient(port, "ws.test", "/echo", "echo")
        #expect(warm["text"] as? Bool == true, "\(warm)")
        let before = rssKiB(pid: child.pid)
        try #require(before > 0)
        let bulk = try wsClient(port, "ws.test", "/echo", "bulk 16")
        #expect(bulk["bytes"] as? Int == 16 << 20 && bulk["same"] as? Bool == true, "\(bulk)")
        let after = rssKiB(pid: child.pid)
        // Far below the 32 MiB that crossed: the tunnel holds a few buffers, never a message.
        #expect(after - before < 8 * 1024, "RSS grew \(after - before) KiB for 16 MiB each way")
    }

    @Test func sixteenMiBEachWayOverTLS() throws {
        let o = try WebSocketOrigin()
        let cert = try makeCertificate(in: certDir, name: "ws", cn: "ws.test", sans: ["ws.test"])
        let edge = try Edge(tenants: [tenant(o, cert: cert)])
        defer { edge.stop() }
        let bulk = try wsClient(edge.httpsPort, "ws.test", "/echo", "bulk 16", cafile: cert.0)
        #expect(bulk["bytes"] as? Int == 16 << 20 && bulk["same"] as? Bool == true, "\(bulk)")
    }

    @Test func anIdleTunnelIsClosedAfterTheRoutesTimeout() throws {
        let o = try WebSocketOrigin()
        let edge = try Edge(tenants: [tenant(o, routes: #"[{"prefix": "/", "origin": "o", "websocket": {"idle_timeout": "1s"}}]"#)])
        defer { edge.stop() }
        let r = try wsClient(edge.port, "ws.test", "/echo", "idle")
        #expect(r["closed_after"] != nil, "\(r)")
        try waitUntil("the tunnel's log line") { edge.accessLog().contains { ($0["status"] as? Int) == 101 } }
        let line = edge.accessLog().first { ($0["status"] as? Int) == 101 }
        #expect(line?["closed_by"] as? String == "idle timeout", "\(edge.accessLog())")
        #expect(edge.server.metricsText().contains("edge_websocket_tunnels_open 0"))
    }

    @Test func anOriginsRefusalIsPassedOn() throws {
        let o = try WebSocketOrigin()
        let edge = try Edge(tenants: [tenant(o)])
        defer { edge.stop() }
        #expect(try wsClient(edge.port, "ws.test", "/refuse", "handshake")["status"] as? Int == 403)
        // Its whole answer, on a connection that stays usable.
        let c = try Client(port: edge.port)
        c.send("GET /refuse HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        let r = try c.readResponse()
        #expect(r.status == 403)
        #expect(r.header("X-Origin") == "ws")
        #expect(String(decoding: r.body, as: UTF8.self) == "no websockets here\n")
        #expect(r.header("Upgrade") == nil)
    }

    @Test func aRouteCanRefuseUpgrades() throws {
        let o = try WebSocketOrigin()
        let edge = try Edge(tenants: [tenant(o, routes: #"[{"prefix": "/", "origin": "o", "websocket": false}]"#)])
        defer { edge.stop() }
        #expect(try wsClient(edge.port, "ws.test", "/echo", "handshake")["status"] as? Int == 403)
        edge.stop()
        let line = edge.accessLog().first
        #expect(line?["status"] as? Int == 403 && line?["origin"] == nil, "refused by edge, the origin never asked: \(edge.accessLog())")
    }

    @Test func openTunnelsKeepRunningThroughReloadAndGracefulStop() throws {
        let o = try WebSocketOrigin()
        let edge = try Edge(tenants: [tenant(o)])
        let script = repoRoot.appendingPathComponent("tools/testclient/ws_client.py").path
        // 12 messages, 250 ms apart: the tunnel is open across the reload and the stop below.
        let client = try ChildProcess([try websocketPython(), script, "\(edge.port)", "ws.test", "/echo", "paced", "12"])
        try waitUntil("the tunnel to open") { edge.server.metricsText().contains("edge_websocket_tunnels_open 1") }
        try edge.reload(tenants: [tenant(o, routes: #"[{"prefix": "/", "origin": "o", "websocket": false}]"#)])
        // New upgrades follow the new config; the open tunnel keeps its own.
        #expect(try wsClient(edge.port, "ws.test", "/echo", "handshake")["status"] as? Int == 403)
        edge.stop()   // graceful: waits for the open tunnel (up to the shutdown timeout)
        let out = client.readLine(seconds: 60)
        let r = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "\(out)")
        #expect(r["echoed"] as? Int == 12, "\(r)")
    }
}

/// WebSocket over HTTP/2 (RFC 8441): tools/testclient/h2_ws.py (Python's `h2`)
/// through edged to the same real WebSocket origin.
@Suite(.serialized, .timeLimit(.minutes(3))) struct WebSocketOverHTTP2Tests {
    func h2ws(_ port: Int, _ ca: String, _ path: String, _ extra: String = "") throws -> [String: Any] {
        let script = repoRoot.appendingPathComponent("tools/testclient/h2_ws.py").path
        let (_, out) = try shell("/usr/bin/python3 '\(script)' \(port) '\(ca)' ws.test \(path) \(extra)", seconds: 60)
        let line = out.split(separator: "\n").last.map(String.init) ?? ""
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "h2_ws: \(out)")
    }

    @Test func extendedConnectTunnelsToAnHTTP1WebSocketOrigin() throws {
        let o = try WebSocketOrigin()
        let e = try Edge(tenants: [
            tenantJSON(name: "ws", hosts: ["ws.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                       routes: #"[{"prefix": "/", "origin": "o"}, {"prefix": "/closed/", "origin": "o", "websocket": false}]"#,
                       extra: #""tls": "internal""#),
        ], server: #"{"h2c": true}"#)
        defer { e.stop() }
        let ca = "\(e.stateDir)/ca.pem"
        let r = try h2ws(e.httpsPort, ca, "/echo")
        #expect(r["enable_connect_protocol"] as? Int == 1, "edged advertises extended CONNECT: \(r)")
        #expect(r["status"] as? Int == 200, "\(r)")
        let fields = (r["fields"] as? [[String]] ?? []).map { $0[0] }
        #expect(!fields.contains("sec-websocket-accept") && !fields.contains("upgrade") && !fields.contains("connection"), "\(fields)")
        #expect(r["text"] as? String == "hello over h2", "\(r)")
        #expect(r["binary_ok"] as? Bool == true, "a message larger than the windows both ways: \(r)")
        #expect(r["close"] as? Bool == true && r["ended"] as? Bool == true, "\(r)")
        // Over h2c too.
        let plain = try h2ws(e.port, ca, "/echo", "--plain")
        #expect(plain["status"] as? Int == 200 && plain["text"] as? String == "hello over h2" && plain["binary_ok"] as? Bool == true, "\(plain)")
        // The origin refuses: its answer is the stream's; a route without WebSocket: 403; another protocol: 501.
        let refused = try h2ws(e.httpsPort, ca, "/refuse")
        #expect(refused["status"] as? Int == 403, "\(refused)")
        #expect(try h2ws(e.httpsPort, ca, "/closed/x")["status"] as? Int == 403)
        #expect(try h2ws(e.httpsPort, ca, "/echo", "connect-udp")["status"] as? Int == 501)
        e.stop()
        let tunnels = e.accessLog().filter { ($0["status"] as? Int) == 101 && ($0["protocol"] as? String) == "HTTP/2" }
        #expect(tunnels.count == 2, "both tunnels logged with status 101: \(tunnels)")
    }

    @Test func anIdleTunnelOnAStreamIsClosedAfterItsIdleTimeout() throws {
        let o = try WebSocketOrigin()
        let e = try Edge(tenants: [
            tenantJSON(name: "ws", hosts: ["ws.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                       routes: #"[{"prefix": "/", "origin": "o", "websocket": {"idle_timeout": "1s"}}]"#, extra: #""tls": "internal""#),
        ])
        defer { e.stop() }
        let r = try h2ws(e.httpsPort, "\(e.stateDir)/ca.pem", "/echo", "--idle")
        #expect(r["status"] as? Int == 200 && r["ended"] as? Bool == true, "the idle tunnel's stream ends: \(r)")
        e.stop()
        #expect(e.accessLog().contains { ($0["status"] as? Int) == 101 && ($0["closed_by"] as? String) == "idle timeout" }, "\(e.accessLog())")
    }
}
