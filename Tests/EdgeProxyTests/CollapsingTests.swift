// Request collapsing with real concurrent clients and a slow scripted origin.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy

@Suite(.serialized, .timeLimit(.minutes(3))) struct CollapsingTests {
    func setUp(_ origin: Origin, workers: Int = 2) throws -> Edge {
        try Edge(tenants: [tenantJSON(name: "c", hosts: ["c.test"], origins: #"{"o": {"servers": ["\#(origin.address)"]}}"#,
                                      routes: #"[{"prefix": "/", "origin": "o"}]"#)], workers: workers)
    }

    func script(_ origin: Origin, _ path: String, _ responses: String) throws {
        #expect(try request(origin.port, "POST", "/__script", host: "o", body: #"{"path": "\#(path)", "responses": \#(responses)}"#).status == 200)
    }

    func originRequests(_ origin: Origin, _ path: String) throws -> Int {
        let r = try request(origin.port, "GET", "/__log?path=\(path)", host: "o")
        return ((try JSONSerialization.jsonObject(with: Data(r.body)) as? [Any]) ?? []).count
    }

    @Test func twoHundredConcurrentMissesMakeOneOriginRequest() throws {
        let origin = try Origin()
        let edge = try setUp(origin)
        defer { edge.stop() }
        try script(origin, "/hot", #"[{"status": 200, "headers": {"Cache-Control": "max-age=60"}, "body": "hot body", "delay_ms": 500}]"#)
        var clients: [Client] = []
        for _ in 0..<200 {
            let c = try Client(port: edge.port)
            c.send("GET /hot HTTP/1.1\r\nHost: c.test\r\n\r\n")
            clients.append(c)
        }
        var ok = 0
        for c in clients {
            let r = try c.readResponse()
            if r.status == 200 && r.text == "hot body" { ok += 1 }
        }
        #expect(ok == 200)
        let seen = try originRequests(origin, "/hot")
        #expect(seen == 1, "origin saw \(seen): \(Dictionary(grouping: edge.accessLog().compactMap { $0["cache"] as? String }, by: { $0 }).mapValues(\.count))")
    }

    @Test func uncacheableResponsesDoNotSerializeFollowers() throws {
        let origin = try Origin()
        let edge = try setUp(origin)
        defer { edge.stop() }
        try script(origin, "/mine", #"[{"status": 200, "headers": {"Cache-Control": "private"}, "body": "personal", "delay_ms": 300}]"#)
        var clients: [Client] = []
        for _ in 0..<20 {
            let c = try Client(port: edge.port)
            c.send("GET /mine HTTP/1.1\r\nHost: c.test\r\n\r\n")
            clients.append(c)
        }
        for c in clients { #expect(try c.readResponse().text == "personal") }
        #expect(try originRequests(origin, "/mine") == 20)
        // Not one after another: once the leader's answer says private, the waiting
        // followers go to the origin together (serialized fetches would peak at 1).
        let peak = try origin.peakConcurrency()
        #expect(peak >= 3, "at most \(peak) request(s) at the origin at once")
        // The key is remembered as pass: later requests do not wait for each other either.
        let later = try request(edge.port, "/mine", host: "c.test")
        #expect(later.header("Cache-Status")?.contains("detail=pass") == true)
    }

    /// Sends the gated request on fresh connections (the origin holds the second half back).
    func gatedClients(_ edge: Edge, _ path: String, count: Int) throws -> [Client] {
        try (0..<count).map { _ in
            // A short receive timeout: a stall fails fast (as ClientTimedOut, never as an end of stream).
            let c = try Client(port: edge.port, timeoutSeconds: 10)
            c.send("GET \(path) HTTP/1.1\r\nHost: c.test\r\n\r\n")
            return c
        }
    }

    /// Reads until the response head and `bytes` of body are in `c.buf`; false if the stream stops first.
    func readBody(_ c: Client, atLeast bytes: Int) throws -> Bool {
        while find(c.buf, [13, 10, 13, 10]).map({ c.buf.count - $0 - 4 }) ?? -1 < bytes {
            guard try c.fill() else { return false }
        }
        return true
    }

    @Test func followersReadTheBodyWhileTheLeaderWritesIt() throws {
        let origin = try Origin()
        let edge = try setUp(origin)
        defer { edge.stop() }
        let leader = try gatedClients(edge, "/gate/300000/g1", count: 1)[0]
        try waitUntil("the leader's request reaches the origin") { try origin.stats().requests >= 1 }
        let followers = try gatedClients(edge, "/gate/300000/g1", count: 4)
        // The origin has sent only the first half and waits: a follower can have
        // it only by reading the leader's response while it is being written.
        for f in followers {
            try #require(try readBody(f, atLeast: 150_000), "follower got \(f.buf.count) bytes, then nothing")
            #expect(String(decoding: f.buf.prefix(15), as: UTF8.self) == "HTTP/1.1 200 OK")
        }
        #expect(try request(origin.port, "POST", "/__release/g1", host: "o").status == 200)
        for c in [leader] + followers {
            let r = try c.readResponse()
            #expect(r.status == 200 && r.body.count == 300_000)
            #expect(r.body.first == UInt8(ascii: "g") && r.body.last == UInt8(ascii: "h"))
        }
        #expect(try origin.stats().requests == 1)
        // Followers said where their answer came from; the object is stored whole.
        let again = try request(edge.port, "/gate/300000/g1", host: "c.test")
        #expect(again.header("Cache-Status")?.hasPrefix("edge; hit; ttl=") == true && again.body.count == 300_000)
    }

    @Test func aLeaderWhoseClientLeavesStillFillsTheCacheForItsFollowers() throws {
        let origin = try Origin()
        let edge = try setUp(origin)
        defer { edge.stop() }
        let leader = try gatedClients(edge, "/gate/3000000/g3", count: 1)[0]
        try waitUntil("the leader's request reaches the origin") { try origin.stats().requests >= 1 }
        let follower = try gatedClients(edge, "/gate/3000000/g3", count: 1)[0]
        try #require(try readBody(follower, atLeast: 1_000_000), "no streamed bytes")
        // The leader's client goes away (reset), then the origin sends the rest.
        var lin = linger(l_onoff: 1, l_linger: 0)
        setsockopt(leader.fd, SOL_SOCKET, SO_LINGER, &lin, socklen_t(MemoryLayout<linger>.size))
        // Closing with linger 0 sends a reset; /dev/null takes the descriptor's place for deinit.
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        dup2(null, leader.fd)
        close(null)
        #expect(try request(origin.port, "POST", "/__release/g3", host: "o").status == 200)
        let r = try follower.readResponse()
        #expect(r.status == 200 && r.body.count == 3_000_000 && r.body.last == UInt8(ascii: "h"))
        let again = try request(edge.port, "/gate/3000000/g3", host: "c.test")
        #expect(again.header("Cache-Status")?.hasPrefix("edge; hit") == true && again.body.count == 3_000_000)
        #expect(try origin.stats().requests == 1)
    }

    @Test func followersStreamingFromALeaderThatBreaksAreCutOff() throws {
        let origin = try Origin()
        let edge = try setUp(origin)
        defer { edge.stop() }
        let leader = try gatedClients(edge, "/gate/300000/g2", count: 1)[0]
        try waitUntil("the leader's request reaches the origin") { try origin.stats().requests >= 1 }
        let followers = try gatedClients(edge, "/gate/300000/g2", count: 2)
        for f in followers {
            try #require(try readBody(f, atLeast: 150_000), "no streamed bytes")
        }
        origin.stop()   // the origin dies half way: no response may look complete
        for c in [leader] + followers {
            #expect(throws: HarnessError.self) { _ = try c.readResponse() }
        }
        let o2 = try Origin()
        try edge.reload(tenants: [tenantJSON(name: "c", hosts: ["c.test"], origins: #"{"o": {"servers": ["\#(o2.address)"]}}"#,
                                             routes: #"[{"prefix": "/", "origin": "o"}]"#)])
        #expect(try request(o2.port, "POST", "/__release/g2", host: "o").status == 200)
        // Nothing half-done was stored.
        let r = try request(edge.port, "/gate/300000/g2", host: "c.test")
        #expect(r.status == 200 && r.body.count == 300_000)
        #expect(r.header("Cache-Status")?.contains("fwd=uri-miss") == true)
    }

    /// The same, and the response has a strong ETag and the origin is still up
    /// (its connection closed half way): nobody is cut off. The leader asks for
    /// the rest (Range from where it broke, If-Range the tag) on a new
    /// connection and relays it on, into the fill its followers read; the
    /// object is stored whole (RFC 9111 §3.4) and the next request is a hit.
    @Test func aLeaderWhoseOriginBreaksOffResumesAndTheObjectIsStoredWhole() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let edge = try setUp(origin)
        defer { edge.stop() }
        let path = "/rgate/300000/g4"
        let leader = try gatedClients(edge, path, count: 1)[0]
        try waitUntil("the leader's request reaches the origin") { try origin.stats().requests >= 1 }
        let followers = try gatedClients(edge, path, count: 2)
        for c in [leader] + followers {
            try #require(try readBody(c, atLeast: 150_000), "no streamed bytes")
        }
        #expect(try request(origin.port, "POST", "/__break/g4", host: "o").status == 200)
        let whole = [UInt8](repeating: 103, count: 150_000) + [UInt8](repeating: 104, count: 150_000)
        for c in [leader] + followers {
            let r = try c.readResponse()
            #expect(r.status == 200 && r.body == whole, "\(r.status) \(r.body.count) bytes")
        }
        let asks = try originLog(origin, path).dropFirst()
        #expect(asks.count == 1 && asks.allSatisfy { $0["range"] == "bytes=150000-299999" && $0["if-range"] == "\"rgate-300000\"" }, "\(asks)")
        let again = try request(edge.port, path, host: "c.test")
        #expect(again.header("Cache-Status")?.hasPrefix("edge; hit") == true && again.body == whole, "\(again.headers)")
        #expect(try originLog(origin, path).count == 2)
    }

    /// An origin that stalls mid-body past the read timeout, on a route that
    /// does not cache: the relay asks for the rest (Range from where it stalled,
    /// If-Range the tag) on a new connection and the client gets every byte.
    @Test func aRelayWhoseOriginStallsMidBodyIsResumed() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let edge = try Edge(tenants: [tenantJSON(name: "c", hosts: ["c.test"], origins: #"{"o": {"servers": ["\#(origin.address)"]}}"#,
                                                 routes: #"[{"prefix": "/", "origin": "o", "cache": false}]"#,
                                                 extra: #""limits": {"origin_read_timeout": "300ms"}"#)])
        defer { edge.stop() }
        let path = "/rgate/300000/g6"
        let r = try request(edge.port, path, host: "c.test")
        let whole = [UInt8](repeating: 103, count: 150_000) + [UInt8](repeating: 104, count: 150_000)
        #expect(r.status == 200 && r.body == whole, "\(r.status) \(r.body.count) bytes")
        let asks = try originLog(origin, path)
        #expect(asks.count == 2 && asks[1]["range"] == "bytes=150000-299999", "\(asks)")
        #expect(edge.server.metricsText().contains("edge_stream_resumes_total{outcome=\"spliced\"} 1"))
    }

    /// A relay is asked for again while each ask brings bytes, at most three
    /// times: an origin that breaks its first two answers half way (the 200,
    /// then the first 206) is spliced whole from the third; one that breaks
    /// four is cut short after the third ask, with every byte it had right.
    @Test func aRelayIsResumedAgainWhileEachAskBringsBytes() throws {
        let origin = try Origin()
        defer { origin.stop() }
        let edge = try Edge(tenants: [tenantJSON(name: "c", hosts: ["c.test"], origins: #"{"o": {"servers": ["\#(origin.address)"]}}"#,
                                                 routes: #"[{"prefix": "/", "origin": "o", "cache": false}]"#)])
        defer { edge.stop() }
        let whole = try request(origin.port, "/text/300000", host: "o").body
        func ranges(_ path: String) throws -> [String] { try originLog(origin, path).map { $0["range"] ?? "" } }
        let twice = "/breaks/300000/2/twice"
        let r = try request(edge.port, twice, host: "c.test")
        #expect(r.status == 200 && r.body == whole, "\(r.status) \(r.body.count) bytes")
        #expect(try ranges(twice) == ["", "bytes=150000-299999", "bytes=225000-299999"])

        let always = "/breaks/300000/9/always"
        let c = try Client(port: edge.port)
        c.send("GET \(always) HTTP/1.1\r\nHost: c.test\r\n\r\n")
        let headEnd = try c.readUntil([13, 10, 13, 10], "no head")
        while try c.fill() {}
        let body = Array(c.buf[(headEnd + 4)...])
        // 150,000 + 75,000 + 37,500 + 18,750: the first answer's half and the three asks' halves.
        #expect(body.count == 281_250 && body == Array(whole[0..<body.count]), "\(body.count) bytes")
        #expect(try ranges(always) == ["", "bytes=150000-299999", "bytes=225000-299999", "bytes=262500-299999"])
    }

    @Test func aBackgroundRefreshDoesNotHoldTheConnectionThatTriggeredIt() throws {
        let origin = try Origin()
        let edge = try setUp(origin, workers: 1)
        defer { edge.stop() }
        try script(origin, "/swr2", #"[{"status": 200, "headers": {"Cache-Control": "max-age=1, stale-while-revalidate=600"}, "body": "one"}, {"status": 200, "headers": {"Cache-Control": "max-age=60, stale-while-revalidate=600"}, "body": "two", "delay_ms": 1500}]"#)
        #expect(try request(edge.port, "/swr2", host: "c.test").text == "one")
        edge.server.clock.advance(by: 30)
        #expect(try request(origin.port, "POST", "/__clock", host: "o", body: #"{"offset": 30}"#).status == 200)
        // Pipelined: the stale hit (which starts the refresh), then another request.
        let c = try Client(port: edge.port)
        c.send("GET /swr2 HTTP/1.1\r\nHost: c.test\r\n\r\nGET /echo/next HTTP/1.1\r\nHost: c.test\r\n\r\n")
        let stale = try c.readResponse()
        #expect(stale.text == "one" && stale.header("Cache-Status")?.contains("stale-while-revalidate") == true)
        #expect(try c.readResponse().json["path"] as? String == "/echo/next")
        // The second answer did not wait for the refresh: the origin is still holding it.
        #expect(try request(edge.port, "/swr2", host: "c.test").text == "one")
        try waitUntil("the background refresh stores \"two\"") { try request(edge.port, "/swr2", host: "c.test").text == "two" }
        let seen = try originRequests(origin, "/swr2")
        #expect(seen == 2, "origin saw \(seen)")
    }

    @Test func aFollowerTakesOverWhenTheLeaderFails() throws {
        let origin = try Origin()
        let edge = try setUp(origin)
        defer { edge.stop() }
        // The leader's fetch fails (503, not stored); then the origin recovers.
        try script(origin, "/flaky", #"[{"status": 503, "headers": {}, "body": "down", "delay_ms": 400}, {"status": 200, "headers": {"Cache-Control": "max-age=60"}, "body": "made it", "delay_ms": 200}]"#)
        let leader = try Client(port: edge.port)
        leader.send("GET /flaky HTTP/1.1\r\nHost: c.test\r\n\r\n")
        try waitUntil("the leader's request reaches the origin") { try originRequests(origin, "/flaky") >= 1 }
        var followers: [Client] = []
        for _ in 0..<3 {
            let f = try Client(port: edge.port)
            f.send("GET /flaky HTTP/1.1\r\nHost: c.test\r\n\r\n")
            followers.append(f)
        }
        #expect(try leader.readResponse().status == 503)
        for f in followers {
            let r = try f.readResponse()
            #expect(r.status == 200 && r.text == "made it")
        }
        // One failed leader, one new leader; the other followers were served from its response.
        let seen = try originRequests(origin, "/flaky")
        #expect(seen == 2, "origin saw \(seen) requests")
    }

    @Test func largeHitsArePipelinedInOrderAndByteExact() throws {
        let origin = try Origin()
        let edge = try setUp(origin, workers: 1)
        defer { edge.stop() }
        let letters = Array("abcdefghij")
        let big = String((0..<300_000).map { i in letters[(i * 7 + i / 3) % letters.count] })
        try script(origin, "/big", #"[{"status": 200, "headers": {"Cache-Control": "max-age=60", "ETag": "\"b\""}, "body": "\#(big)"}]"#)
        try script(origin, "/small", #"[{"status": 200, "headers": {"Cache-Control": "max-age=60"}, "body": "small"}]"#)
        #expect(try request(edge.port, "/big", host: "c.test").text == big)
        #expect(try request(edge.port, "/small", host: "c.test").text == "small")
        let c = try Client(port: edge.port)
        var pipeline = ""
        for i in 0..<6 { pipeline += "GET \(i % 2 == 0 ? "/big" : "/small") HTTP/1.1\r\nHost: c.test\r\n\r\n" }
        pipeline += "GET /big HTTP/1.1\r\nHost: c.test\r\nRange: bytes=1000-1999\r\n\r\n"
        c.send(pipeline)
        for i in 0..<6 {
            let r = try c.readResponse()
            #expect(r.header("Cache-Status")?.contains("hit") == true)
            #expect(r.text == (i % 2 == 0 ? big : "small"), "response \(i) out of order or corrupt")
        }
        let part = try c.readResponse()
        #expect(part.status == 206)
        #expect(part.text == String(Array(big.utf8)[1000..<2000].map { Character(UnicodeScalar($0)) }))
        #expect(try originRequests(origin, "/big") == 1)
    }
}
