// Cached POST answers (routes that opt in): the body arrives after the head,
// Expect: 100-continue, and purge by URL. The cache-spec `m` cases cover the rules.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy

@Suite(.serialized, .timeLimit(.minutes(3))) struct PostCacheTests {
    func postTenant(_ o: Origin) -> String {
        tenantJSON(name: "g", hosts: ["g.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                   routes: #"[{"prefix": "/", "origin": "o", "cache": {"methods": ["POST"]}}]"#)
    }

    @Test func aBodyThatArrivesLaterIsWaitedForThenKeyed() throws {
        let o = try Origin()
        let a = try AdminEdge(tenants: [postTenant(o)])
        defer { a.stop() }
        try script(o, "/graphql", #"[{"status": 200, "headers": {"Cache-Control": "max-age=60"}, "body": "data"}]"#)
        let body = #"{"query": "{ items { id } }"}"#
        let c = try Client(port: a.port)
        for round in 0..<2 {
            // The head, a pause, then the body in two pieces.
            c.send("POST /graphql HTTP/1.1\r\nHost: g.test\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
            usleep(100_000)
            c.send(String(body.prefix(10)))
            usleep(50_000)
            c.send(String(body.dropFirst(10)))
            let r = try c.readResponse()
            #expect(r.status == 200 && r.text == "data")
            #expect(r.header("Cache-Status")?.contains(round == 0 ? "stored" : "hit") == true, "\(r.header("Cache-Status") ?? "")")
        }
        // The same connection goes on with a GET: nothing of the POST body is left over.
        c.send("GET /echo/after HTTP/1.1\r\nHost: g.test\r\n\r\n")
        #expect(try c.readResponse().json["path"] as? String == "/echo/after")
        #expect(try originHits(o, "/graphql") == 1)
        // The origin saw the whole body.
        let log = try request(o.port, "/__log?path=/graphql", host: "o")
        #expect(String(decoding: log.body, as: UTF8.self).contains("\(body.utf8.count)"))
        // Expect: 100-continue is not waited on for a body: it goes to the origin as it comes.
        let e = try Client(port: a.port)
        e.send("POST /graphql HTTP/1.1\r\nHost: g.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        let cont = try e.readResponse()
        #expect(cont.status == 100)
        e.send("abcd")
        #expect(try e.readResponse().status == 200)
        // A URL purge removes the cached POST answers too.
        let (_, out) = try a.ctl("purge http://g.test/graphql")
        #expect(out.contains("purged 1 object"), "\(out)")
        #expect(try request(a.port, "POST", "/graphql", host: "g.test", body: body).header("Cache-Status")?.contains("fwd=uri-miss") == true)
    }
}
