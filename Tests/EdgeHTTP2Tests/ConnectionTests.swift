import Testing
@testable import EdgeHTTP2

/// A scripted client: builds frames, feeds the server machine, reads what it sends.
struct Peer {
    var conn: H2Connection
    var events: [H2Event] = []
    var out: [UInt8] = []
    var outcome = H2Outcome.consumed(0)
    var now: Int64 = 0

    init(_ limits: H2Limits = H2Limits(), preface: Bool = true) {
        conn = H2Connection(limits: limits)
        conn.start(into: &out)
        if preface { send(Frames.preface + Peer.frame(.settings, [])) }
        out = []
    }

    static func frame(_ t: FrameType, flags: UInt8 = 0, stream: UInt32 = 0, _ payload: [UInt8]) -> [UInt8] {
        var b: [UInt8] = []
        Frames.appendHeader(FrameHeader(length: payload.count, type: t, flags: flags, stream: stream), into: &b)
        return b + payload
    }

    static func block(_ fields: [(String, String)]) -> [UInt8] {
        var b: [UInt8] = []
        var e = HPACKEncoder()
        for (n, v) in fields {
            if n.utf8.contains(where: { $0 >= 65 && $0 <= 90 }) {
                // A name with capitals, as no conforming encoder (ours lowercases) would send it.
                b.append(0x00)
                HPACK.appendInteger(n.utf8.count, prefix: 7, flags: 0, into: &b); b += Array(n.utf8)
                HPACK.appendInteger(v.utf8.count, prefix: 7, flags: 0, into: &b); b += Array(v.utf8)
            } else {
                e.encode(HeaderField(n, v), into: &b)
            }
        }
        return b
    }

    static let get: [(String, String)] = [(":method", "GET"), (":scheme", "https"), (":path", "/a"), (":authority", "a.test")]

    mutating func send(_ bytes: [UInt8]) {
        events = []
        outcome = bytes.withUnsafeBytes { conn.receive($0, now: now, events: &events, out: &out) }
    }

    mutating func headers(_ id: UInt32, _ fields: [(String, String)] = Peer.get, endStream: Bool = true) {
        send(Peer.frame(.headers, flags: FrameFlag.endHeaders | (endStream ? FrameFlag.endStream : 0), stream: id, Peer.block(fields)))
    }

    /// The frames edge wrote since the last call: (type, flags, stream, payload).
    mutating func written() -> [(FrameType?, UInt8, UInt32, [UInt8])] {
        var r: [(FrameType?, UInt8, UInt32, [UInt8])] = []
        var at = 0
        while at < out.count {
            guard case .frame(let h, let p) = out[at...].withUnsafeBytes({ Frames.next($0, maxFrameSize: 1 << 24) }) else { break }
            r.append((h.type, h.flags, h.stream, Array(out[(at + p.lowerBound)..<(at + p.upperBound)])))
            at += p.upperBound
        }
        out = []
        return r
    }

    var closedWith: H2Error? { if case .close(let e) = outcome { return e }; return nil }
}

func u32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }

@Suite(.timeLimit(.minutes(3))) struct H2ConnectionTests {
    @Test func startSendsSettingsAndTheConnectionWindow() {
        var conn = H2Connection()
        var out: [UInt8] = []
        conn.start(into: &out)
        var p = Peer(preface: false)
        p.out = out
        let frames = p.written()
        #expect(frames.map(\.0) == [.settings, .windowUpdate])
        #expect(frames[0].3.count % 6 == 0)
        #expect(frames[0].3.contains(0x08))   // ENABLE_CONNECT_PROTOCOL is advertised
        #expect(frames[1].3 == u32(UInt32((1 << 20) - 65_535)))
    }

    @Test func aBadPrefaceOrAFirstFrameOtherThanSettingsIsAProtocolError() {
        var p = Peer(preface: false)
        p.send(Array("GET / HTTP/1.1\r\n\r\n".utf8) + [UInt8](repeating: 0, count: 10))
        #expect(p.closedWith == .protocolError)
        #expect(p.written().last?.0 == .goaway)
        var q = Peer(preface: false)
        q.send(Frames.preface + Peer.frame(.ping, [UInt8](repeating: 0, count: 8)))
        #expect(q.closedWith == .protocolError)
        // The preface may arrive in pieces.
        var r = Peer(preface: false)
        r.send(Array(Frames.preface[0..<5]))
        #expect(r.outcome == .consumed(0))
    }

    @Test func anExtendedConnectForAWebSocketTranslatesToTheHTTP1Handshake() {
        let fields = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/chat?room=1"),
                      (":authority", "a.test"), ("sec-websocket-version", "13"), ("sec-websocket-protocol", "chat")].map { HeaderField($0.0, $0.1) }
        let req = H2Connection.request(fields, connectProtocol: true)
        #expect(req?.isWebSocket == true)
        let head = req.map { String(decoding: $0.http1Head(chunked: false, websocketKey: Array("dGhlIHNhbXBsZSBub25jZQ==".utf8)), as: UTF8.self) }
        #expect(head == "GET /chat?room=1 HTTP/1.1\r\nhost: a.test\r\nsec-websocket-version: 13\r\nsec-websocket-protocol: chat\r\n"
                      + "connection: upgrade\r\nupgrade: websocket\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        // Without the setting, :protocol is malformed; other protocols are not WebSockets.
        #expect(H2Connection.request(fields, connectProtocol: false) == nil)
        var other = fields
        other[1] = HeaderField(":protocol", "connect-udp")
        #expect(H2Connection.request(other, connectProtocol: true)?.isWebSocket == false)
        // A server that enables it says so in its SETTINGS (RFC 8441 §3).
        var fresh = H2Connection(limits: H2Limits())
        var first: [UInt8] = []
        fresh.start(into: &first)
        #expect(first[3] == 0x4, "SETTINGS first")
        let settings = Array(first[9..<(9 + (Int(first[0]) << 16 | Int(first[1]) << 8 | Int(first[2])))])
        let pairs = stride(from: 0, to: settings.count - 5, by: 6).map { (Int(settings[$0]) << 8 | Int(settings[$0 + 1]), settings[($0 + 2)...($0 + 5)].reduce(0) { $0 << 8 | Int($1) }) }
        #expect(pairs.contains { $0 == (0x8, 1) }, "SETTINGS_ENABLE_CONNECT_PROTOCOL: \(pairs)")
        var p = Peer()
        p.headers(1, fields.map { (String(decoding: $0.name, as: UTF8.self), String(decoding: $0.value, as: UTF8.self)) }, endStream: false)
        guard case .request(1, let r, endStream: false)? = p.events.first else { Issue.record("\(p.events)"); return }
        #expect(r.isWebSocket)
    }

    @Test func aRequestIsDeliveredAndItsHeadTranslatesToHTTP1() {
        var p = Peer()
        p.headers(1, Peer.get + [("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2")])
        guard case .request(1, let req, endStream: true)? = p.events.first else { Issue.record("\(p.events)"); return }
        #expect(p.conn.state(1) == .halfClosedRemote)
        #expect(String(decoding: req.http1Head(chunked: false), as: UTF8.self) == "GET /a HTTP/1.1\r\nhost: a.test\r\naccept: */*\r\ncookie: a=1; b=2\r\n\r\n")
        // A response: HEADERS then DATA, ending the stream.
        p.conn.sendHeaders(1, [HeaderField(":status", "200"), HeaderField("content-length", "2")], endStream: false, into: &p.out)
        let n = Array("hi".utf8).withUnsafeBytes { p.conn.sendData(1, $0, endStream: true, into: &p.out) }
        #expect(n == 2)
        #expect(p.conn.state(1) == .closed)
        #expect(p.written().map(\.0) == [.headers, .data])
    }

    @Test func headerBlocksSpanContinuationFrames() {
        var p = Peer()
        let block = Peer.block(Peer.get)
        p.send(Peer.frame(.headers, flags: FrameFlag.endStream, stream: 1, Array(block[0..<3]))
               + Peer.frame(.continuation, stream: 1, Array(block[3..<6])) + Peer.frame(.continuation, flags: FrameFlag.endHeaders, stream: 1, Array(block[6...])))
        #expect(p.events.count == 1)
        // Another frame inside a block is a protocol error.
        var q = Peer()
        q.send(Peer.frame(.headers, stream: 1, Array(block[0..<3])) + Peer.frame(.ping, [UInt8](repeating: 0, count: 8)))
        #expect(q.closedWith == .protocolError)
    }

    /// A response head larger than the client's frame size goes out as HEADERS
    /// (END_STREAM, no END_HEADERS) and CONTINUATION frames, the last with
    /// END_HEADERS; one that fits is one HEADERS frame. Both decode to the fields.
    @Test func largeResponseHeadsSpanContinuationFrames() throws {
        var p = Peer()
        p.headers(1)
        p.headers(3)
        _ = p.written()
        let big = (0..<40).map { HeaderField("x-big-\($0)", String(repeating: "v", count: 900)) }
        p.conn.sendHeaders(1, [HeaderField(":status", "200")] + big, endStream: true, into: &p.out)
        p.conn.sendHeaders(3, [HeaderField(":status", "204"), HeaderField("x-small", "1")], endStream: true, into: &p.out)
        let frames = p.written()
        let first = try #require(frames.first)
        #expect(first.0 == .headers && first.1 & FrameFlag.endStream != 0 && first.1 & FrameFlag.endHeaders == 0 && first.2 == 1)
        let continuations = frames.dropFirst().prefix { $0.0 == .continuation }
        #expect(continuations.count >= 2 && continuations.allSatisfy { $0.2 == 1 && $0.3.count <= 16_384 })
        #expect(continuations.last.map { $0.1 & FrameFlag.endHeaders != 0 } == true)
        var d = HPACKDecoder()
        let block = first.3 + continuations.flatMap(\.3)
        let fields = try decodeBlock(&d, block, maxList: 1 << 20)
        #expect(same(fields, [(":status", "200")] + big.map { (String(decoding: $0.name, as: UTF8.self), String(decoding: $0.value, as: UTF8.self)) }))
        let small = frames.dropFirst(1 + continuations.count)
        #expect(small.count == 1 && small.first?.0 == .headers && small.first?.2 == 3
                && small.first.map { $0.1 & FrameFlag.endHeaders != 0 && $0.1 & FrameFlag.endStream != 0 } == true)
        #expect(same(try decodeBlock(&d, small.first!.3), [(":status", "204"), ("x-small", "1")]))
    }

    /// The CONTINUATION flood (2024): the block's bytes are capped before any decoding.
    @Test func aContinuationFloodIsCutOff() {
        var p = Peer()
        p.send(Peer.frame(.headers, stream: 1, Array(Peer.block(Peer.get))))
        var flood: [UInt8] = []
        for _ in 0..<8 { flood += Peer.frame(.continuation, stream: 1, [UInt8](repeating: 0x40, count: 16_000)) }
        p.send(flood)
        #expect(p.closedWith == .enhanceYourCalm)
        // Empty CONTINUATION frames count as control frames.
        var q = Peer()
        q.send(Peer.frame(.headers, stream: 1, Array(Peer.block(Peer.get))))
        var empties: [UInt8] = []
        for _ in 0..<1_100 { empties += Peer.frame(.continuation, stream: 1, []) }
        q.send(empties)
        #expect(q.closedWith == .enhanceYourCalm)
    }

    /// Rapid Reset (CVE-2023-44487): open and reset streams faster than the budget.
    @Test func rapidResetGetsGoawayEnhanceYourCalm() {
        var p = Peer()
        var burst: [UInt8] = []
        for i in 0..<150 {
            let id = UInt32(2 * i + 1)
            burst += Peer.frame(.headers, flags: FrameFlag.endHeaders | FrameFlag.endStream, stream: id, Peer.block(Peer.get))
            burst += Peer.frame(.rstStream, stream: id, u32(H2Error.cancel.rawValue))
        }
        p.send(burst)
        #expect(p.closedWith == .enhanceYourCalm)
        #expect(p.written().last.map { $0.0 == .goaway && Array($0.3[4..<8]) == u32(H2Error.enhanceYourCalm.rawValue) } == true)
        // The same resets spread over time are fine.
        var q = Peer()
        for i in 0..<150 {
            q.now = Int64(i) * 1_000
            let id = UInt32(2 * i + 1)
            q.send(Peer.frame(.headers, flags: FrameFlag.endHeaders | FrameFlag.endStream, stream: id, Peer.block(Peer.get))
                   + Peer.frame(.rstStream, stream: id, u32(H2Error.cancel.rawValue)))
            #expect(q.closedWith == nil)
        }
    }

    /// Closed streams are forgotten once there are more than twice the
    /// concurrent limit (plus 16): a long connection's table stays small,
    /// and what is still open stays.
    @Test func closedStreamsAreForgotten() {
        var l = H2Limits(); l.maxConcurrentStreams = 10
        var p = Peer(l)
        p.headers(1, endStream: false)   // stays open throughout
        var id: UInt32 = 3
        for _ in 0..<500 {
            p.headers(id)
            p.conn.sendHeaders(id, [HeaderField(":status", "204")], endStream: true, into: &p.out)
            id += 2
        }
        #expect(p.conn.streams.count <= 2 * 10 + 16)
        #expect(p.conn.state(1) == .open && p.conn.openStreams == 1)
        #expect(p.closedWith == nil)
    }

    @Test func streamsBeyondTheLimitAreRefused() {
        var l = H2Limits(); l.maxConcurrentStreams = 2
        var p = Peer(l)
        for id: UInt32 in [1, 3, 5] { p.headers(id, endStream: false) }
        let rst = p.written().filter { $0.0 == .rstStream }
        #expect(rst.count == 1 && rst[0].2 == 5 && rst[0].3 == u32(H2Error.refusedStream.rawValue))
        #expect(p.conn.openStreams == 2)
        #expect(p.closedWith == nil)
        // A stream that ends frees its place (both sides ended, or reset): the next one is served.
        p.send(Peer.frame(.data, flags: FrameFlag.endStream, stream: 1, []))
        #expect(p.conn.openStreams == 2)                              // half-closed (remote) still counts
        p.conn.sendHeaders(1, [HeaderField(":status", "204")], endStream: true, into: &p.out)
        p.send(Peer.frame(.rstStream, stream: 3, u32(H2Error.cancel.rawValue)))
        #expect(p.conn.openStreams == 0)
        _ = p.written()
        p.headers(7, endStream: false)
        #expect(p.conn.openStreams == 1 && !p.written().contains { $0.0 == .rstStream })
    }

    @Test func pingSettingsAndWindowUpdateFloodsAreCutOff() {
        for make in [{ Peer.frame(.ping, [UInt8](repeating: 1, count: 8)) }, { Peer.frame(.settings, []) },
                     { Peer.frame(.windowUpdate, u32(1)) }, { Peer.frame(.priority, stream: 9, u32(0) + [0]) }] {
            var p = Peer()
            var flood: [UInt8] = []
            for _ in 0..<1_100 { flood += make() }
            p.send(flood)
            #expect(p.closedWith == .enhanceYourCalm)
        }
        var p = Peer()
        p.send(Peer.frame(.ping, [1, 2, 3, 4, 5, 6, 7, 8]))
        let pong = p.written()
        #expect(pong.count == 1 && pong[0].1 == FrameFlag.ack && pong[0].3 == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    /// RFC 9113 §8: malformed requests are stream errors (PROTOCOL_ERROR), never delivered.
    @Test(arguments: [
        [(":method", "GET"), (":path", "/a"), (":authority", "a.test")],                                  // no :scheme
        [(":method", "GET"), (":scheme", "https"), (":path", "/a"), (":path", "/b")],                     // twice
        [(":method", "GET"), (":scheme", "https"), ("accept", "*/*"), (":path", "/a")],                   // pseudo after regular
        [(":method", "GET"), (":scheme", "https"), (":path", "/a"), (":status", "200")],                  // a response pseudo-header
        Peer.get + [("Accept", "*/*")],                                                                   // uppercase name
        Peer.get + [("connection", "keep-alive")],                                                        // connection-specific
        Peer.get + [("transfer-encoding", "chunked")],
        Peer.get + [("te", "gzip")],                                                                      // te other than trailers
        Peer.get + [("x-a", "one\r\ntwo")],                                                               // CR LF in a value
        Peer.get + [("x-a", " padded")],                                                                  // leading space
        Peer.get + [("content-length", "12x")],
        [(":method", "GET"), (":scheme", "https"), (":path", "a"), (":authority", "a.test")],             // path without /
        [(":method", "CONNECT"), (":scheme", "https"), (":path", "/"), (":authority", "a.test")],         // plain CONNECT with path
        Peer.get + [(":protocol", "websocket")],                                                          // :protocol on a GET
    ])
    func malformedRequestsAreStreamErrors(_ fields: [(String, String)]) {
        var p = Peer()
        p.headers(1, fields)
        #expect(p.closedWith == nil)
        #expect(!p.events.contains { if case .request = $0 { return true }; return false })
        let rst = p.written().filter { $0.0 == .rstStream }
        #expect(rst.count == 1 && rst[0].3 == u32(H2Error.protocolError.rawValue))
    }

    @Test func extendedConnectAndTEtrailersAreAccepted() {
        var p = Peer()
        p.headers(1, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/chat"), (":authority", "a.test"),
                      ("te", "trailers")], endStream: false)
        guard case .request(1, let r, endStream: false)? = p.events.first else { Issue.record("\(p.events)"); return }
        #expect(r.connectProtocol == Array("websocket".utf8))
    }

    @Test func contentLengthMustMatchTheData() {
        var p = Peer()
        p.headers(1, Peer.get + [("content-length", "5")], endStream: false)
        p.send(Peer.frame(.data, flags: FrameFlag.endStream, stream: 1, Array("abc".utf8)))
        #expect(p.written().contains { $0.0 == .rstStream && $0.3 == u32(H2Error.protocolError.rawValue) })
        var q = Peer()
        q.headers(1, Peer.get + [("content-length", "3")], endStream: false)
        q.send(Peer.frame(.data, flags: FrameFlag.endStream, stream: 1, Array("abc".utf8)))
        guard case .data(1, let r, endStream: true)? = q.events.first else { Issue.record("\(q.events)"); return }
        #expect(r.count == 3)
    }

    /// A client that sends more than its window is a flow-control error; consumed
    /// bytes are credited back, so a slow consumer holds the client to its window.
    @Test func flowControlBothWays() {
        var l = H2Limits(); l.initialWindow = 10
        var p = Peer(l)
        p.headers(1, endStream: false)
        p.send(Peer.frame(.data, stream: 1, [UInt8](repeating: 1, count: 10)))
        #expect(p.events.count == 1)
        _ = p.written()
        p.send(Peer.frame(.data, stream: 1, [1]))
        #expect(p.written().contains { $0.0 == .rstStream && $0.3 == u32(H2Error.flowControlError.rawValue) })
        var q = Peer(l)
        q.headers(1, endStream: false)
        q.send(Peer.frame(.data, stream: 1, [UInt8](repeating: 1, count: 10)))
        _ = q.written()
        q.conn.consumed(1, 10, into: &q.out)
        let credit = q.written()
        #expect(credit.contains { $0.0 == .windowUpdate && $0.2 == 1 && $0.3 == u32(10) })
        q.send(Peer.frame(.data, flags: FrameFlag.endStream, stream: 1, [UInt8](repeating: 1, count: 10)))
        #expect(q.events.count == 1)
        // Sending: at most the client's window; a WINDOW_UPDATE opens more.
        var r = Peer()
        r.send(Peer.frame(.settings, [0, 4] + u32(5)))   // SETTINGS_INITIAL_WINDOW_SIZE = 5
        r.headers(1)
        let big = [UInt8](repeating: 7, count: 20)
        #expect(big.withUnsafeBytes { r.conn.sendData(1, $0, endStream: true, into: &r.out) } == 5)
        #expect(r.conn.sendable(1) == 0)
        r.send(Peer.frame(.windowUpdate, stream: 1, u32(100)))
        #expect(r.events == [.windowOpened(1)])
        #expect(r.conn.sendable(1) == 100)
        // A window pushed past 2^31-1 is a flow-control error.
        r.send(Peer.frame(.windowUpdate, u32(0x7FFF_FFFF)))
        #expect(r.closedWith == .flowControlError)
    }

    @Test func framesOnTheWrongStreamsAreErrors() {
        var p = Peer()
        p.send(Peer.frame(.data, stream: 3, [1]))                      // an idle stream
        #expect(p.closedWith == .protocolError)
        var q = Peer()
        q.headers(2)                                                   // an even id
        #expect(q.closedWith == .protocolError)
        var r = Peer()
        r.headers(5); r.headers(3)                                     // ids go up
        #expect(r.closedWith == .protocolError)
        var s = Peer()
        s.send(Peer.frame(.pushPromise, stream: 1, u32(2)))
        #expect(s.closedWith == .protocolError)
        var t = Peer()
        t.send(Peer.frame(.data, stream: 0, [1]))
        #expect(t.closedWith == .protocolError)
        var u = Peer()
        u.send(Peer.frame(.settings, [0, 5] + u32(100)))               // max frame size below 16384
        #expect(u.closedWith == .protocolError)
        var v = Peer()
        v.send([0, 0x40, 1, 0, 0, 0, 0, 0, 1] + [UInt8](repeating: 0, count: 16_385))   // a frame over our max size
        #expect(v.closedWith == .frameSizeError)
        var w = Peer()
        w.headers(1)                                                   // END_STREAM: half-closed (remote)
        _ = w.written()
        w.send(Peer.frame(.data, stream: 1, [1]))
        #expect(w.written().contains { $0.0 == .rstStream && $0.3 == u32(H2Error.streamClosed.rawValue) })
        #expect(w.closedWith == nil)
        var x = Peer()
        x.send(Peer.frame(.headers, flags: FrameFlag.endHeaders, stream: 1, [0x80]))   // HPACK index 0
        #expect(x.closedWith == .compressionError)
    }

    @Test func trailersEndTheRequest() {
        var p = Peer()
        p.headers(1, endStream: false)
        p.send(Peer.frame(.headers, flags: FrameFlag.endHeaders | FrameFlag.endStream, stream: 1, Peer.block([("x-checksum", "abc")])))
        #expect(p.events == [.trailers(1, [HeaderField("x-checksum", "abc")])])
        #expect(p.conn.state(1) == .halfClosedRemote)
    }

    @Test func tooLargeHeadersAreReportedForA431() {
        var l = H2Limits(); l.maxHeaderListSize = 200
        var p = Peer(l)
        p.headers(1, Peer.get + [("x-big", String(repeating: "a", count: 300))])
        #expect(p.events == [.headersTooLarge(1)])
        #expect(p.closedWith == nil)
    }

    @Test func gracefulGoawayServesOnlyStreamsItCounted() {
        var p = Peer()
        p.headers(1, endStream: false)
        p.conn.goAway(into: &p.out)
        let g = p.written()
        #expect(g.count == 1 && g[0].0 == .goaway && Array(g[0].3[0..<4]) == u32(1) && Array(g[0].3[4..<8]) == u32(0))
        p.headers(3)
        #expect(p.events.isEmpty)                                      // above the last id: ignored
        p.send(Peer.frame(.data, flags: FrameFlag.endStream, stream: 1, [1]))
        #expect(p.events.count == 1)                                   // stream 1 goes on
    }

    /// Every split of a valid client stream gives the same events (the parser never
    /// needs more than one frame, and never reads past what it was given).
    @Test func everySplitPointGivesTheSameEvents() {
        let stream = Frames.preface + Peer.frame(.settings, [0, 4] + u32(1000)) + Peer.frame(.headers, flags: FrameFlag.endHeaders, stream: 1, Peer.block(Peer.get))
            + Peer.frame(.data, flags: FrameFlag.padded | FrameFlag.endStream, stream: 1, [2] + Array("body".utf8) + [0, 0])
            + Peer.frame(.ping, [UInt8](repeating: 9, count: 8))
        func run(_ cut: Int) -> [String] {
            var conn = H2Connection()
            var out: [UInt8] = []
            var events: [H2Event] = []
            var buffer: [UInt8] = []
            var seen: [String] = []
            for piece in [Array(stream[0..<cut]), Array(stream[cut...])] {
                buffer += piece
                events = []
                guard case .consumed(let n) = buffer.withUnsafeBytes({ conn.receive($0, now: 0, events: &events, out: &out) }) else { return ["closed"] }
                for e in events {
                    if case .data(let id, let r, let end) = e { seen.append("data \(id) \(String(decoding: buffer[r], as: UTF8.self)) \(end)") } else { seen.append("\(e)") }
                }
                buffer.removeFirst(n)
            }
            return seen
        }
        let whole = run(stream.count)
        #expect(whole.count == 2 && whole[1] == "data 1 body true")
        for cut in 0..<stream.count { #expect(run(cut) == whole, "cut at \(cut)") }
    }
}
