import Testing
@testable import EdgeHTTP

/// Feeds `text` to the request parser in two pieces at every split point (and
/// byte by byte with one scan state), and checks all ways agree.
func parseRequestEverySplit(_ text: String, limits: HeadLimits = HeadLimits()) -> (ParseResult, RequestHead) {
    let bytes = Array(text.utf8)
    var fullHead = RequestHead()
    var scan = HeadScan()
    let full = bytes.withUnsafeBytes { HeadParser.parseRequest($0, limits: limits, into: &fullHead, scan: &scan) }
    // Incremental: one growing buffer, one scan state.
    var incHead = RequestHead()
    var incScan = HeadScan()
    var incResult = ParseResult.needMore
    for k in 1...bytes.count {
        incResult = bytes[0..<k].withUnsafeBytes { HeadParser.parseRequest($0, limits: limits, into: &incHead, scan: &incScan) }
        if incResult != .needMore { break }
    }
    #expect(incResult == full, "byte-by-byte result differs for \(text.debugDescription)")
    // Two pieces: prefix then whole, fresh scan state each time.
    for k in 0..<bytes.count {
        var h = RequestHead()
        var s = HeadScan()
        let first = bytes[0..<k].withUnsafeBytes { HeadParser.parseRequest($0, limits: limits, into: &h, scan: &s) }
        if case .complete = first { Issue.record("complete on a prefix of \(k) bytes"); continue }
        if first != .needMore {
            #expect(first == full, "prefix \(k) gave \(first), whole gave \(full)")
            continue
        }
        let second = bytes.withUnsafeBytes { HeadParser.parseRequest($0, limits: limits, into: &h, scan: &s) }
        #expect(second == full, "split at \(k) gave \(second), whole gave \(full)")
    }
    return (full, fullHead)
}

func status(_ r: ParseResult) -> Int? {
    if case .error(let e) = r { return e.status }
    return nil
}

@Suite(.timeLimit(.minutes(3))) struct RequestParserTests {
    @Test func simpleGet() {
        let text = "GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"
        let (r, h) = parseRequestEverySplit(text)
        #expect(r == .complete(text.utf8.count))
        #expect(h.method == .get)
        #expect(h.minorVersion == 1)
        #expect(h.fields.count == 2)
        #expect(h.hostField == 0)
        #expect(h.keepAlive)
        #expect(h.framing == .none)
        let bytes = Array(text.utf8)
        #expect(String(decoding: bytes[h.targetRange], as: UTF8.self) == "/a/b?x=1")
        #expect(String(decoding: bytes[h.fields[0].value], as: UTF8.self) == "example.com")
    }

    @Test func trailingWhitespaceTrimmedAndBodyFraming() {
        let text = "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length:  12 \t\r\n\r\n"
        let (r, h) = parseRequestEverySplit(text)
        #expect(r == .complete(text.utf8.count))
        #expect(h.contentLength == 12)
        #expect(h.framing == .length(12))
    }

    @Test func chunkedRequest() {
        let (r, h) = parseRequestEverySplit("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        guard case .complete = r else { Issue.record("\(r)"); return }
        #expect(h.framing == .chunked)
    }

    @Test func leadingEmptyLineIgnored() {
        let text = "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"
        let (r, _) = parseRequestEverySplit(text)
        #expect(r == .complete(text.utf8.count))
    }

    @Test func http10KeepAliveRules() {
        let (_, a) = parseRequestEverySplit("GET / HTTP/1.0\r\n\r\n")
        #expect(!a.keepAlive)
        let (_, b) = parseRequestEverySplit("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(b.keepAlive)
        let (_, c) = parseRequestEverySplit("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n")
        #expect(!c.keepAlive)
        #expect(c.connectionNamesFields)
    }

    @Test(arguments: [
        // Smuggling: framing in doubt.
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400),          // obs-fold
        ("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400),                  // bare CR
        ("GET / HTTP/1.1\nHost: h\r\n\r\n", 400),                            // bare LF
        ("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),                         // whitespace before colon
        ("GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", 400),                         // bad name byte
        ("GET / HTTP/1.1\r\nHost: h\r\nX: a\u{0}b\r\n\r\n", 400),           // NUL
        ("GET / HTTP/1.1\r\nHost: h\r\nX: a\u{1}b\r\n\r\n", 400),           // CTL in value
        ("GET / HTTP/1.1\r\n\r\n", 400),                                     // missing Host
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),               // two Hosts
        ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),                        // bad Host
        ("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
        ("GET / HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\n\r\n", 417),
        // Audit: leniencies another hop could read differently.
        ("POST / HTTP/1.1\r\nHost: h\r\nContent_Length: 5\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\ncontent_length: 5\r\nContent-Length: 5\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: Content-Length\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, transfer-encoding\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nConnection: HOST\r\n\r\n", 400),
        (String(repeating: "A", count: 33) + " / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ])
    func rejects(_ text: String, _ expected: Int) {
        let (r, _) = parseRequestEverySplit(text)
        #expect(status(r) == expected, "\(text.debugDescription) -> \(r)")
    }

    @Test func underscoreSpellingsOfFieldsEdgeActsOnAreMarkedAndOthersKept() {
        let text = "GET / HTTP/1.1\r\nHost: h\r\nX_Forwarded_For: 6.6.6.6\r\nx_real_ip: 6.6.6.6\r\nX_Api_Key: k\r\n\r\n"
        let (r, h) = parseRequestEverySplit(text)
        #expect(r == .complete(text.utf8.count))
        #expect(h.fields.map(\.known) == [.host, .underscoreAlias, .underscoreAlias, .other])
        // A 32-byte method is still a method.
        let long = String(repeating: "A", count: 32) + " / HTTP/1.1\r\nHost: h\r\n\r\n"
        #expect(parseRequestEverySplit(long).0 == .complete(long.utf8.count))
    }

    @Test func limits() {
        var limits = HeadLimits()
        limits.maxRequestLine = 64
        limits.maxFieldLine = 64
        limits.maxHeadBytes = 256
        limits.maxFields = 3
        let longTarget = "GET /" + String(repeating: "a", count: 100) + " HTTP/1.1\r\nHost: h\r\n\r\n"
        #expect(status(parseRequestEverySplit(longTarget, limits: limits).0) == 414)
        let longField = "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "b", count: 100) + "\r\n\r\n"
        #expect(status(parseRequestEverySplit(longField, limits: limits).0) == 431)
        let many = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
        #expect(status(parseRequestEverySplit(many, limits: limits).0) == 431)
        let big = "GET / HTTP/1.1\r\nHost: h\r\n" + String(repeating: "Xxxxxxxxxx: 1234567890123456789012345\r\n", count: 8)
        var h = RequestHead(); var s = HeadScan()
        let r = Array(big.utf8).withUnsafeBytes { HeadParser.parseRequest($0, limits: limits, into: &h, scan: &s) }
        #expect(status(r) == 431)
        // An unterminated request line past the limit is refused before the head ends.
        let partial = Array(("GET /" + String(repeating: "a", count: 100)).utf8)
        var s2 = HeadScan()
        let r2 = partial.withUnsafeBytes { HeadParser.parseRequest($0, limits: limits, into: &h, scan: &s2) }
        #expect(status(r2) == 414)
    }

    /// Each line is checked as it is read: a wrong line is refused while the
    /// rest of the head is still to come (not once it has all arrived).
    @Test func aWrongLineIsRefusedBeforeTheHeadEnds() {
        for text in ["GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\nAccept: */*",
                     "GET / HTTP/1.1\r\nHost: h\r\nX: a\u{1}b\r\n",
                     "GET / HTTP/1.1\r\nHost: h\r\n folded\r\nAccept:",
                     "GET / HTTP/1.1\r\nHost: h\r\nContent_Length: 5\r\n"] {
            var h = RequestHead(); var s = HeadScan()
            let r = Array(text.utf8).withUnsafeBytes { HeadParser.parseRequest($0, limits: HeadLimits(), into: &h, scan: &s) }
            #expect(status(r) == 400, "\(text.debugDescription) -> \(r)")
            // And the same when the good lines came in an earlier piece.
            var h2 = RequestHead(); var s2 = HeadScan()
            let cut = Array("GET / HTTP/1.1\r\nHost: h\r\n".utf8)
            #expect(cut.withUnsafeBytes { HeadParser.parseRequest($0, limits: HeadLimits(), into: &h2, scan: &s2) } == .needMore)
            #expect(s2.lines == 2)
            let r2 = Array(text.utf8).withUnsafeBytes { HeadParser.parseRequest($0, limits: HeadLimits(), into: &h2, scan: &s2) }
            #expect(r2 == r)
        }
    }

    /// Lines and heads exactly at their limits pass and one byte more is refused,
    /// however the bytes are split (a limit never depends on where a read ended).
    @Test func limitsHoldAtTheirEdgesHoweverTheHeadIsSplit() {
        var limits = HeadLimits()
        limits.maxRequestLine = 40
        limits.maxFieldLine = 24
        limits.maxHeadBytes = 120
        limits.maxFields = 4
        let line = "GET / HTTP/1.1\r\nHost: h\r\n"   // 25 bytes
        // A field line of 24 bytes (its CRLF not counted), then 25; with a wrong byte past the limit, and before it.
        let at = "X: " + String(repeating: "v", count: 21)
        #expect(parseRequestEverySplit(line + at + "\r\n\r\n", limits: limits).0 == .complete(25 + 24 + 4))
        #expect(status(parseRequestEverySplit(line + at + "v\r\n\r\n", limits: limits).0) == 431)
        #expect(status(parseRequestEverySplit(line + at + "v\u{1}\r\n\r\n", limits: limits).0) == 431)
        #expect(status(parseRequestEverySplit(line + "X: v\u{1}" + String(repeating: "v", count: 30) + "\r\n\r\n", limits: limits).0) == 400)
        #expect(status(parseRequestEverySplit(line + String(repeating: "N", count: 25) + " : v\r\n\r\n", limits: limits).0) == 431)
        #expect(status(parseRequestEverySplit(line + String(repeating: "N", count: 24) + " : v\r\n\r\n", limits: limits).0) == 400)
        // A head of 120 bytes, then 121 (the same lines, one a byte longer).
        var wide = limits
        wide.maxFieldLine = 64
        let fill = "A: " + String(repeating: "a", count: 50) + "\r\nD: "
        let head120 = line + fill + String(repeating: "d", count: 33) + "\r\n\r\n"
        #expect(head120.utf8.count == 120)
        #expect(parseRequestEverySplit(head120, limits: wide).0 == .complete(120))
        #expect(status(parseRequestEverySplit(line + fill + String(repeating: "d", count: 34) + "\r\n\r\n", limits: wide).0) == 431)
        // Four fields pass, five are refused.
        #expect(parseRequestEverySplit(line + "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits).0 == .complete(25 + 18 + 2))
        #expect(status(parseRequestEverySplit(line + "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", limits: limits).0) == 431)
    }

    @Test func hopByHopAndConnectionNamedFields() {
        let text = "GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nProxy-Authorization: a\r\n\r\n"
        let (_, h) = parseRequestEverySplit(text)
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { p in
            #expect(h.fields[1].known == .connection)
            #expect(isNamedByConnection(p, h.fields, h.fields[2]))
            #expect(!isNamedByConnection(p, h.fields, h.fields[0]))
            #expect(h.fields[3].known.isHopByHop)
            #expect(h.fields[4].known == .proxyAny)
        }
    }
}

@Suite(.timeLimit(.minutes(3))) struct ResponseParserTests {
    /// Parses `text` whole, then from every prefix, then byte by byte with one
    /// scan state (a head that comes in pieces): all must agree.
    func parse(_ text: String, head: Bool = false, limits: HeadLimits = HeadLimits()) -> (ParseResult, ResponseHead) {
        let bytes = Array(text.utf8)
        var h = ResponseHead()
        var s = HeadScan()
        let full = bytes.withUnsafeBytes { HeadParser.parseResponse($0, limits: limits, into: &h, scan: &s) }
        for k in 0..<bytes.count {
            var h2 = ResponseHead(); var s2 = HeadScan()
            let r = bytes[0..<k].withUnsafeBytes { HeadParser.parseResponse($0, limits: limits, into: &h2, scan: &s2) }
            if r != .needMore {
                #expect(r == full, "prefix \(k): \(r) vs \(full)")
                continue
            }
            let second = bytes.withUnsafeBytes { HeadParser.parseResponse($0, limits: limits, into: &h2, scan: &s2) }
            #expect(second == full, "split at \(k): \(second) vs \(full)")
        }
        var incHead = ResponseHead(), incScan = HeadScan(), inc = ParseResult.needMore
        for k in 1...max(bytes.count, 1) where k <= bytes.count {
            inc = bytes[0..<k].withUnsafeBytes { HeadParser.parseResponse($0, limits: limits, into: &incHead, scan: &incScan) }
            if inc != .needMore { break }
        }
        #expect(inc == full, "byte by byte: \(inc) vs \(full)")
        if case .complete = full { #expect(incHead.fields == h.fields && incHead.status == h.status) }
        return (full, h)
    }

    @Test func framing() {
        let (r1, h1) = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        #expect(r1 == .complete(39))
        #expect(h1.framing(requestWasHead: false) == .length(10))
        #expect(h1.framing(requestWasHead: true) == .none)
        let (_, h2) = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(h2.framing(requestWasHead: false) == .chunked)
        let (_, h3) = parse("HTTP/1.1 200 OK\r\n\r\n")
        #expect(h3.framing(requestWasHead: false) == .untilClose)
        let (_, h4) = parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n")
        #expect(h4.framing(requestWasHead: false) == .none)
        let (_, h5) = parse("HTTP/1.0 200\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
        #expect(h5.keepAlive)
        #expect(h5.status == 200)
    }

    @Test func aWrongLineIsRefusedBeforeTheHeadEndsAndLimitsHoldAtTheirEdges() {
        var h = ResponseHead(); var s = HeadScan()
        let early = Array("HTTP/1.1 200 OK\r\nX: a\u{1}b\r\nContent-".utf8)
        #expect(status(early.withUnsafeBytes { HeadParser.parseResponse($0, limits: HeadLimits(), into: &h, scan: &s) }) == 502)
        var limits = HeadLimits()
        limits.maxFieldLine = 24
        limits.maxHeadBytes = 100
        let status = "HTTP/1.1 200 OK\r\n"   // 17 bytes
        let at = "X: " + String(repeating: "v", count: 21)
        #expect(parse(status + at + "\r\n\r\n", limits: limits).0 == .complete(17 + 24 + 4))
        #expect(parse(status + at + "v\r\n\r\n", limits: limits).0 == .error(HTTPParseError(502, "response head too large")))
        let fill = (0..<3).map { "F\($0): " + String(repeating: "f", count: 18) }.joined(separator: "\r\n")   // 3 x 22 + 2 x 2
        let head100 = status + fill + "\r\nG: " + String(repeating: "g", count: 4) + "\r\n\r\n"
        #expect(head100.utf8.count == 100)
        let (r, h100) = parse(head100, limits: limits)
        #expect(r == .complete(100))
        #expect(h100.fields.count == 4)
        #expect(parse(status + fill + "\r\nG: " + String(repeating: "g", count: 5) + "\r\n\r\n", limits: limits).0
                == .error(HTTPParseError(502, "response head too large")))
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\u{0}\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nConnection: close, Transfer-Encoding\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent_Length: 1\r\n\r\n",
    ])
    func brokenFramingIsBadGateway(_ text: String) {
        #expect(status(parse(text).0) == 502)
    }
}
