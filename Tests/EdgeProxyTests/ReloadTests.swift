// Live reload: new config for new requests and handshakes, nothing dropped.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy

@Suite(.serialized, .timeLimit(.minutes(3))) struct ReloadTests {
    @Test func reloadUnderAClientLoopDropsNothing() throws {
        let o1 = try Origin(name: "before")
        let o2 = try Origin(name: "after")
        func config(_ o: Origin, _ tag: String) -> String {
            tenantJSON(name: "t", hosts: ["t.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                       routes: #"[{"prefix": "/", "origin": "o", "response_headers": {"add": {"X-Config": "\#(tag)"}}}]"#)
        }
        let edge = try Edge(tenants: [config(o1, "one")], workers: 2)
        defer { edge.stop() }
        let c = try Client(port: edge.port)
        var seen: [String] = []
        for i in 0..<60 {
            if i == 20 { try edge.reload(tenants: [config(o2, "two")]) }
            c.send("GET /echo/\(i) HTTP/1.1\r\nHost: t.test\r\n\r\n")
            let r = try c.readResponse()       // throws if the connection were dropped
            #expect(r.status == 200)
            seen.append(r.header("X-Config") ?? "?")
        }
        // A worker adopts a new config before it handles the events of its next loop
        // turn: every request sent after reload() returned is served by the new one.
        #expect(seen[0..<20].allSatisfy { $0 == "one" }, "\(seen)")
        #expect(seen[20...].allSatisfy { $0 == "two" }, "\(seen)")
        // A removed tenant is gone for new requests.
        try edge.reload(tenants: [tenantJSON(name: "u", hosts: ["u.test"], origins: #"{"o": {"servers": ["\#(o2.address)"]}}"#,
                                             routes: #"[{"prefix": "/", "origin": "o"}]"#)])
        #expect(try request(edge.port, "/echo", host: "t.test").status == 421)
        #expect(try request(edge.port, "/echo", host: "u.test").status == 200)
    }

    @Test func reloadKeepsTheCacheOfKeptTenantsAndDropsRemovedOnes() throws {
        let o = try Origin()
        func tenant(_ name: String) -> String {
            tenantJSON(name: name, hosts: ["\(name).test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#, routes: #"[{"prefix": "/", "origin": "o"}]"#)
        }
        let edge = try Edge(tenants: [tenant("keep"), tenant("gone")])
        defer { edge.stop() }
        #expect(try request(o.port, "POST", "/__script", host: "o", body: #"{"path": "/c", "responses": [{"status": 200, "headers": {"Cache-Control": "max-age=600"}, "body": "cached"}]}"#).status == 200)
        _ = try request(edge.port, "/c", host: "keep.test")
        _ = try request(edge.port, "/c", host: "gone.test")
        let store = edge.server.config.store
        #expect(store.bytes(tenant: "gone") > 0)
        try edge.reload(tenants: [tenant("keep")])
        #expect(store.bytes(tenant: "gone") == 0)
        #expect(try request(edge.port, "/c", host: "keep.test").header("Cache-Status")?.contains("hit") == true)
    }

    @Test func certificateSwappedByReloadWhileAConnectionStaysOpen() throws {
        let o = try Origin()
        let certDir = FileManager.default.temporaryDirectory.appendingPathComponent("edge-reload-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: certDir, withIntermediateDirectories: true)
        let old = try makeCertificate(in: certDir, name: "old", cn: "old-cert", sans: ["r.test"])
        let new = try makeCertificate(in: certDir, name: "new", cn: "new-cert", sans: ["r.test"])
        func config(_ cert: (String, String)) -> String {
            tenantJSON(name: "r", hosts: ["r.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                       routes: #"[{"prefix": "/", "origin": "o"}]"#, extra: #""tls": {"certificates": [{"cert": "\#(cert.0)", "key": "\#(cert.1)"}]}"#)
        }
        let edge = try Edge(tenants: [config(old)])
        defer { edge.stop() }
        let open = try ChildProcess(["openssl", "s_client", "-connect", "127.0.0.1:\(edge.httpsPort)", "-servername", "r.test", "-quiet"], stdin: true)
        defer { open.stop() }
        open.write("GET /echo/1 HTTP/1.1\r\nHost: r.test\r\n\r\n")
        #expect(open.read(until: "/echo/1").contains("HTTP/1.1 200"))
        #expect(try sClient(edge.httpsPort, "-servername r.test -brief").contains("CN = old-cert"))
        try edge.reload(tenants: [config(new)])
        #expect(try sClient(edge.httpsPort, "-servername r.test -brief").contains("CN = new-cert"))
        // The connection opened before the reload still works.
        open.write("GET /echo/2 HTTP/1.1\r\nHost: r.test\r\n\r\n")
        #expect(open.read(until: "/echo/2").contains("HTTP/1.1 200"))
    }
}
