// HTTP/1.1 request and response head parsers (RFC 9112 §2-§6).
//
// Pure and copy-free: bytes in, `.complete(consumed)` / `.needMore` / `.error`
// out. A parsed head is a set of offsets into the caller's buffer; nothing is
// allocated once the head's field array has grown to its working size. The
// parsers are strict on purpose: anything that could let two parties disagree
// on where a message ends (request smuggling) is an error, not a guess.

/// Limits on a message head. The defaults follow what trusted proxies ship.
public struct HeadLimits: Sendable, Equatable {
    /// Longest request line (414 beyond it) or status line.
    public var maxRequestLine: Int = 8 * 1024
    /// Longest single field line (431 beyond it).
    public var maxFieldLine: Int = 8 * 1024
    /// Largest whole head including the request line (431 beyond it).
    public var maxHeadBytes: Int = 32 * 1024
    /// Most field lines (431 beyond it).
    public var maxFields: Int = 100
    public init() {}
}

/// Why a head was refused, with the status to answer.
public struct HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    public var status: Int
    public var reason: String
    public init(_ status: Int, _ reason: String) { self.status = status; self.reason = reason }
    public var description: String { "\(status) \(reason)" }
}

public enum ParseResult: Equatable, Sendable {
    /// The head is complete and occupies this many bytes (including any skipped leading CRLFs).
    case complete(Int)
    case needMore
    case error(HTTPParseError)
}

/// How a message body is delimited (RFC 9112 §6.3).
public enum BodyFraming: Equatable, Sendable {
    case none
    case length(Int64)
    case chunked
    case untilClose

    /// A response's body framing (RFC 9112 §6.3): none for HEAD, 1xx, 204 and
    /// 304; chunked over a length; a length; else to the connection's close.
    @inline(__always) public static func of(status: Int, requestWasHead: Bool, chunked: Bool, contentLength: Int64) -> BodyFraming {
        if requestWasHead || (status >= 100 && status < 200) || status == 204 || status == 304 { return .none }
        if chunked { return .chunked }
        if contentLength >= 0 { return contentLength == 0 ? .none : .length(contentLength) }
        return .untilClose
    }
}

/// A parsed request head: offsets into the parsed buffer plus derived framing.
public struct RequestHead: Sendable {
    public var method: Method = .other
    public var methodRange: Range<Int> = 0..<0
    public var targetRange: Range<Int> = 0..<0
    public var minorVersion = 1
    public var fields: [Field] = []
    /// Index into `fields` of the Host field, or -1.
    public var hostField = -1
    /// Declared Content-Length, or -1 when none.
    public var contentLength: Int64 = -1
    public var chunked = false
    public var keepAlive = true
    public var expectContinue = false
    /// The Connection field names fields other than close/keep-alive (to be stripped too).
    public var connectionNamesFields = false

    public init() {}

    public var framing: BodyFraming {
        if chunked { return .chunked }
        if contentLength > 0 { return .length(contentLength) }
        return .none
    }
}

/// A parsed response head.
public struct ResponseHead: Sendable {
    public var status = 0
    public var minorVersion = 1
    public var reasonRange: Range<Int> = 0..<0
    public var fields: [Field] = []
    public var contentLength: Int64 = -1
    public var chunked = false
    public var keepAlive = true
    public var connectionNamesFields = false

    public init() { fields.reserveCapacity(24) }
    /// A head that reserves no field storage until it parses one (a head held
    /// by every connection, most of which never parse one: HTTP2.swift).
    public init(reservingFields n: Int) { if n > 0 { fields.reserveCapacity(n) } }

    /// Body framing given the request method (RFC 9112 §6.3).
    public func framing(requestWasHead: Bool) -> BodyFraming {
        BodyFraming.of(status: status, requestWasHead: requestWasHead, chunked: chunked, contentLength: contentLength)
    }
}

/// Whether field `f` (by name) is listed in any Connection field of `fields`.
public func isNamedByConnection(_ p: UnsafeRawBufferPointer, _ fields: [Field], _ f: Field) -> Bool {
    for c in fields where c.known == .connection {
        var found = false
        forEachListElement(p, c.valueStart, c.valueEnd) { s, e in
            if !found && equalsIgnoringCase(p, s..<e, p, f.name) { found = true }
        }
        if found { return true }
    }
    return false
}

/// Scanning progress kept between calls for one message head: a head that
/// arrives in pieces is not read again from its start at each piece.
public struct HeadScan: Sendable {
    /// Where the first line not yet whole starts.
    public var resume = 0
    /// The whole lines before it (the start line among them), every one checked.
    public var lines = 0
    public init() {}
}

public enum HeadParser {
    /// The head a client would send for `method target` with these fields
    /// (Host first), and its parse: a request built from text (edgectl
    /// explain), seen exactly as the parser sees a real one.
    public static func synthesize(method: String, target: String, host: String, fields: [(String, String)], limits: HeadLimits) -> ([UInt8], RequestHead, ParseResult) {
        var text = method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n"
        for (n, v) in fields { text += n + ": " + v + "\r\n" }
        text += "\r\n"
        let bytes = Array(text.utf8)
        var head = RequestHead()
        var scan = HeadScan()
        let r = bytes.withUnsafeBytes { parseRequest($0, limits: limits, into: &head, scan: &scan) }
        return (bytes, head, r)
    }

    /// Longest request method accepted (the longest registered one, UPDATEREDIRECTREF, has 17 bytes).
    public static let maxMethodLength = 32
    // MARK: Shared scanning

    /// The end of the line that starts at `i`: its first CR, LF or NUL (a tab
    /// or another control is stepped over), or `n`.
    @inline(__always)
    static func lineEnd(_ p: UnsafeRawBufferPointer, _ i: Int, _ n: Int) -> Int {
        var j = firstControl(p, i, n, del: false)
        while j < n {
            let c = p[j]
            if c == 13 || c == 10 || c == 0 { break }
            j = firstControl(p, j + 1, n, del: false)
        }
        return j
    }

    /// The start line (request or status line) from `start`: the index of its
    /// CR (an LF follows), or -1 when more bytes are needed.
    @inline(__always)
    static func startLine(_ p: UnsafeRawBufferPointer, _ start: Int, limit: Int, limits: HeadLimits, tooLong: HTTPParseError,
                          tooLarge: HTTPParseError, bad: (String) -> HTTPParseError) -> Result<Int, HTTPParseError> {
        let n = p.count
        let j = lineEnd(p, start, n)
        if j - start > limit { return .failure(tooLong) }
        if j == n || (p[j] == 13 && j + 1 == n) {
            if n - start > limits.maxHeadBytes { return .failure(tooLarge) }
            return .success(-1)
        }
        if p[j] == 0 { return .failure(bad("NUL in head")) }
        if p[j] == 10 { return .failure(bad("bare LF in head")) }
        if p[j + 1] != 10 { return .failure(bad("bare CR in head")) }
        if j == start { return .failure(bad("empty start line")) }
        if j + 2 - start > limits.maxHeadBytes { return .failure(tooLarge) }
        return .success(j)
    }

    /// Field lines from `scan.resume` to the blank line that ends the head, in
    /// one pass: each line is checked as it is read (its name, its value, its
    /// CRLF) and, with `record`, kept in `fields`. Returns the index after the
    /// blank line, or -1 when the bytes end first: `scan` then holds the start
    /// of the unfinished line, every line before it having passed every check.
    ///
    /// The limits are checked wherever a byte decides something, before that
    /// byte is read (and on the bytes seen when more are needed): a head is
    /// refused for its size, or for the first wrong byte within its limits, the
    /// same way whether it arrives whole or in pieces.
    @inline(__always)
    static func parseFieldLines(_ p: UnsafeRawBufferPointer, start: Int, scan: inout HeadScan, limits: HeadLimits, fields: inout [Field],
                                record: Bool, tooLarge: HTTPParseError, bad: (String) -> HTTPParseError) -> Result<Int, HTTPParseError> {
        let n = p.count
        var i = scan.resume
        var lines = scan.lines
        return byteClasses.withUnsafeBufferPointer { cls -> Result<Int, HTTPParseError> in
            while true {
                let lineStart = i
                // Past a limit at `at`: the line's bytes before it, or the head's?
                @inline(__always) func over(_ at: Int) -> Bool { at - lineStart > limits.maxFieldLine || at - start > limits.maxHeadBytes }
                // The bytes end before the line does (`seen`: its bytes so far, a trailing CR not counted).
                @inline(__always) func needMore(_ seen: Int) -> Result<Int, HTTPParseError> {
                    if over(seen) { return .failure(tooLarge) }
                    scan.resume = lineStart
                    scan.lines = lines
                    return .success(-1)
                }
                guard i < n else { return needMore(i) }
                let first = p[i]
                if first == 13 {   // the blank line
                    guard i + 1 < n else { return needMore(i) }
                    if over(i) { return .failure(tooLarge) }
                    guard p[i + 1] == 10 else { return .failure(bad("bare CR in head")) }
                    if i + 2 - start > limits.maxHeadBytes { return .failure(tooLarge) }
                    return .success(i + 2)
                }
                if first == 0x20 || first == 0x09 {
                    if over(i) { return .failure(tooLarge) }
                    return .failure(bad("obsolete line folding"))
                }
                let ns = i
                var plain = true
                i = fieldNameEnd(p, i, n, classes: cls, plain: &plain)
                guard i < n else { return needMore(i) }
                let ne = i
                if p[i] != 58 {  // ':'
                    if over(i) { return .failure(tooLarge) }
                    switch p[i] {
                    case 10: return .failure(bad("bare LF in head"))
                    case 0: return .failure(bad("NUL in head"))
                    case 0x20, 0x09 where ne > ns: return .failure(bad("whitespace before colon"))
                    default: return .failure(bad("invalid field name"))
                    }
                }
                if ne == ns {
                    if over(i) { return .failure(tooLarge) }
                    return .failure(bad("empty field name"))
                }
                i += 1
                while i < n && (p[i] == 0x20 || p[i] == 0x09) { i += 1 }
                let vs = i
                // To the CR that ends the line: from one byte below 0x20 or 0x7F to
                // the next (obs-text, 0x80 and up, is allowed); a tab is stepped
                // over, another control refused.
                while true {
                    i = firstControl(p, i, n, del: true)
                    guard i < n else { return needMore(i) }
                    let c = p[i]
                    if c == 9 { i += 1; continue }
                    if c == 13 && i + 1 == n { return needMore(i) }
                    if over(i) { return .failure(tooLarge) }
                    if c == 13 { break }
                    switch c {
                    case 10: return .failure(bad("bare LF in head"))
                    case 0: return .failure(bad("NUL in head"))
                    default: return .failure(bad("invalid byte in field value"))
                    }
                }
                guard p[i + 1] == 10 else { return .failure(bad("bare CR in head")) }
                // The name is read once the line is known whole.
                var known = KnownField.classify(p, ns, ne)
                if known == .other && !plain {
                    var k = ns
                    while k < ne && p[k] != 95 { k += 1 }
                    if k < ne {
                        // "_" spellings of framing fields are refused; of other fields edge acts on, dropped.
                        if KnownField.dashed(p, ns, ne, in: KnownField.framingNames) { return .failure(bad("underscore in a framing field name")) }
                        if KnownField.dashed(p, ns, ne, in: KnownField.aliasedNames) { known = .underscoreAlias }
                    }
                }
                // Trailing whitespace is not part of the value.
                var ve = i
                while ve > vs && (p[ve - 1] == 0x20 || p[ve - 1] == 0x09) { ve -= 1 }
                if lines - 1 >= limits.maxFields { return .failure(tooLarge) }
                if record { fields.append(Field(nameStart: ns, nameEnd: ne, valueStart: vs, valueEnd: ve, known: known)) }
                lines += 1
                i += 2
                if i - start > limits.maxHeadBytes { return .failure(tooLarge) }
            }
        }
    }

    /// A head an earlier call saw part of (`scan.lines` > 0): the lines that
    /// came since are checked, not kept; once the head is whole the caller reads
    /// it again from its start. Returns nil when it is whole.
    @inline(__always)
    static func resumeCheck(_ p: UnsafeRawBufferPointer, start: Int, scan: inout HeadScan, limits: HeadLimits, fields: inout [Field],
                            tooLarge: HTTPParseError, bad: (String) -> HTTPParseError) -> ParseResult? {
        switch parseFieldLines(p, start: start, scan: &scan, limits: limits, fields: &fields, record: false, tooLarge: tooLarge, bad: bad) {
        case .failure(let e): return .error(e)
        case .success(let e):
            if e < 0 { return .needMore }
            scan = HeadScan()
            return nil
        }
    }

    /// Parses `Content-Length`: one value of digits only. Lists and repeats are errors.
    @inline(__always)
    static func parseLength(_ p: UnsafeRawBufferPointer, _ f: Field) -> Int64? {
        let n = f.valueEnd - f.valueStart
        guard n > 0 && n <= 18 else { return nil }
        var v: Int64 = 0
        for i in f.valueStart..<f.valueEnd {
            let c = p[i]
            guard c >= 48 && c <= 57 else { return nil }
            v = v * 10 + Int64(c - 48)
        }
        return v
    }

    /// Checks that Transfer-Encoding lists exactly `chunked`. Returns nil when
    /// it does, else the error to answer.
    static func checkTransferEncoding(_ p: UnsafeRawBufferPointer, _ fields: [Field], request: Bool) -> HTTPParseError? {
        var count = 0
        var lastIsChunked = false
        var sawOther = false
        for f in fields where f.known == .transferEncoding {
            forEachListElement(p, f.valueStart, f.valueEnd) { s, e in
                count += 1
                if equalsLowercase(p, s, e, "chunked") { lastIsChunked = true } else { lastIsChunked = false; sawOther = true }
            }
        }
        let status = request ? 400 : 502
        if count == 0 { return HTTPParseError(status, "empty Transfer-Encoding") }
        if !lastIsChunked { return HTTPParseError(status, "Transfer-Encoding does not end in chunked") }
        if count > 1 && !sawOther { return HTTPParseError(status, "chunked applied twice") }
        if sawOther { return HTTPParseError(request ? 501 : 502, "unsupported transfer coding") }
        return nil
    }

    /// What the Connection fields say, read as the semantic pass meets each
    /// (no second pass over the fields). `namesFraming`: one names a field that
    /// frames or routes the message (Content-Length, Transfer-Encoding, Host):
    /// a hop that honoured that would strip it and see another message than the
    /// next hop does.
    struct ConnectionTokens {
        var close = false, keepAlive = false, others = false, namesFraming = false

        @inline(__always) mutating func read(_ p: UnsafeRawBufferPointer, _ f: Field) {
            forEachListElement(p, f.valueStart, f.valueEnd) { s, e in
                if equalsLowercase(p, s, e, "close") { close = true }
                else if equalsLowercase(p, s, e, "keep-alive") { keepAlive = true }
                else {
                    others = true
                    switch KnownField.classify(p, s, e) {
                    case .contentLength, .transferEncoding, .host: namesFraming = true
                    default: break
                    }
                }
            }
        }
    }

    // MARK: Requests

    /// Parses a request head from the start of `p`.
    ///
    /// - Parameter scan: progress kept between `.needMore` calls on the same
    ///   message; start each message with `HeadScan()`.
    public static func parseRequest(_ p: UnsafeRawBufferPointer, limits: HeadLimits, into head: inout RequestHead, scan: inout HeadScan) -> ParseResult {
        let bad = { (r: String) in HTTPParseError(400, r) }
        // RFC 9112 §2.2: ignore at least one empty line before the request line.
        var start = 0
        while start + 1 < p.count && p[start] == 13 && p[start + 1] == 10 && start < 8 { start += 2 }
        if start < p.count && p[start] == 10 { return .error(bad("bare LF in head")) }
        let tooLarge = HTTPParseError(431, "request header fields too large")
        if scan.lines > 0, let r = resumeCheck(p, start: start, scan: &scan, limits: limits, fields: &head.fields, tooLarge: tooLarge, bad: bad) { return r }

        let lineEnd: Int
        switch startLine(p, start, limit: limits.maxRequestLine, limits: limits, tooLong: HTTPParseError(414, "request line too long"),
                         tooLarge: tooLarge, bad: bad) {
        case .failure(let e): return .error(e)
        case .success(let e): if e < 0 { return .needMore }; lineEnd = e
        }

        head.fields.removeAll(keepingCapacity: true)
        head.hostField = -1
        head.contentLength = -1
        head.chunked = false
        head.expectContinue = false
        head.connectionNamesFields = false

        // Request line: method SP request-target SP HTTP-version CRLF
        var i = start
        let ms = i
        byteClasses.withUnsafeBufferPointer { cls in
            while cls[Int(p[i])] & classTchar != 0 { i += 1 }
        }
        if i == ms || p[i] != 0x20 { return .error(bad("malformed request line")) }
        if i - ms > maxMethodLength { return .error(bad("method too long")) }
        head.methodRange = ms..<i
        head.method = Method.classify(p, ms, i)
        i += 1
        let ts = i
        byteClasses.withUnsafeBufferPointer { cls in
            while cls[Int(p[i])] & classTarget != 0 { i += 1 }
        }
        if i == ts || p[i] != 0x20 { return .error(bad("malformed request target")) }
        head.targetRange = ts..<i
        i += 1
        // "HTTP/" DIGIT "." DIGIT CRLF
        guard lineEnd - i == 8, p[i] == 72, p[i + 1] == 84, p[i + 2] == 84, p[i + 3] == 80, p[i + 4] == 47,
              p[i + 5] >= 48, p[i + 5] <= 57, p[i + 6] == 46, p[i + 7] >= 48, p[i + 7] <= 57,
              p[i + 8] == 13 else {
            return .error(bad("malformed HTTP version"))
        }
        if p[i + 5] != 49 { return .error(HTTPParseError(505, "HTTP version not supported")) }
        head.minorVersion = Int(p[i + 7] - 48)
        if head.minorVersion > 1 { return .error(HTTPParseError(505, "HTTP version not supported")) }
        scan.lines = 1
        scan.resume = lineEnd + 2
        let headEnd: Int
        switch parseFieldLines(p, start: start, scan: &scan, limits: limits, fields: &head.fields, record: true, tooLarge: tooLarge, bad: bad) {
        case .failure(let e): return .error(e)
        case .success(let e): if e < 0 { return .needMore }; headEnd = e
        }

        // Semantics that decide framing (RFC 9112 §6) and routing.
        var sawTE = false
        var connection = ConnectionTokens()
        for (idx, f) in head.fields.enumerated() {
            switch f.known {
            case .connection:
                connection.read(p, f)
            case .host:
                if head.hostField >= 0 { return .error(bad("duplicate Host")) }
                byteClasses.withUnsafeBufferPointer { cls in
                    for j in f.valueStart..<f.valueEnd where cls[Int(p[j])] & classHost == 0 { head.hostField = -2 }
                }
                if head.hostField == -2 { return .error(bad("invalid Host")) }
                head.hostField = idx
            case .contentLength:
                if head.contentLength >= 0 { return .error(bad("duplicate Content-Length")) }
                guard let v = parseLength(p, f) else { return .error(bad("invalid Content-Length")) }
                head.contentLength = v
            case .transferEncoding:
                sawTE = true
            case .expect:
                if equalsLowercase(p, f.valueStart, f.valueEnd, "100-continue") { head.expectContinue = true }
                else { return .error(HTTPParseError(417, "unsupported expectation")) }
            default:
                break
            }
        }
        if sawTE {
            if head.contentLength >= 0 { return .error(bad("both Content-Length and Transfer-Encoding")) }
            if head.minorVersion == 0 { return .error(bad("Transfer-Encoding in HTTP/1.0")) }
            if let e = checkTransferEncoding(p, head.fields, request: true) { return .error(e) }
            head.chunked = true
        }
        if head.minorVersion == 1 && head.hostField < 0 { return .error(bad("missing Host")) }
        if connection.namesFraming { return .error(bad("Connection names a framing field")) }
        head.connectionNamesFields = connection.others
        head.keepAlive = head.minorVersion == 1 ? !connection.close : (connection.keepAlive && !connection.close)
        return .complete(headEnd)
    }

    // MARK: Responses

    /// Parses a response head from the start of `p`. Errors carry status 502:
    /// a malformed response never reaches the client.
    public static func parseResponse(_ p: UnsafeRawBufferPointer, limits: HeadLimits, into head: inout ResponseHead, scan: inout HeadScan) -> ParseResult {
        let bad = { (r: String) in HTTPParseError(502, r) }
        let tooLarge = HTTPParseError(502, "response head too large")
        if scan.lines > 0, let r = resumeCheck(p, start: 0, scan: &scan, limits: limits, fields: &head.fields, tooLarge: tooLarge, bad: bad) { return r }
        let lineEnd: Int
        switch startLine(p, 0, limit: limits.maxRequestLine, limits: limits, tooLong: tooLarge, tooLarge: tooLarge, bad: bad) {
        case .failure(let e): return .error(e)
        case .success(let e): if e < 0 { return .needMore }; lineEnd = e
        }
        head.fields.removeAll(keepingCapacity: true)
        head.contentLength = -1
        head.chunked = false
        head.connectionNamesFields = false

        // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
        guard lineEnd >= 9, p[0] == 72, p[1] == 84, p[2] == 84, p[3] == 80, p[4] == 47, p[5] == 49, p[6] == 46,
              p[7] >= 48, p[7] <= 57, p[8] == 0x20 else {
            return .error(bad("malformed status line"))
        }
        head.minorVersion = Int(p[7] - 48)
        var status = 0
        for j in 9..<12 {
            let c = p[j]
            guard c >= 48 && c <= 57 else { return .error(bad("malformed status code")) }
            status = status * 10 + Int(c - 48)
        }
        guard status >= 100 && status <= 599 else { return .error(bad("status code out of range")) }
        head.status = status
        var i = 12
        if p[i] == 0x20 {
            i += 1
            let rs = i
            while p[i] != 13 {
                let c = p[i]
                if c < 0x20 && c != 0x09 || c == 0x7F { return .error(bad("invalid byte in reason phrase")) }
                i += 1
            }
            head.reasonRange = rs..<i
        } else if p[i] == 13 {
            head.reasonRange = i..<i
        } else {
            return .error(bad("malformed status line"))
        }
        scan.lines = 1
        scan.resume = i + 2
        let headEnd: Int
        switch parseFieldLines(p, start: 0, scan: &scan, limits: limits, fields: &head.fields, record: true, tooLarge: tooLarge, bad: bad) {
        case .failure(let e): return .error(e)
        case .success(let e): if e < 0 { return .needMore }; headEnd = e
        }
        var sawTE = false
        var connection = ConnectionTokens()
        for f in head.fields {
            switch f.known {
            case .connection:
                connection.read(p, f)
            case .contentLength:
                if head.contentLength >= 0 { return .error(bad("two Content-Length fields")) }
                guard let v = parseLength(p, f) else { return .error(bad("invalid Content-Length")) }
                head.contentLength = v
            case .transferEncoding:
                sawTE = true
            default: break
            }
        }
        if sawTE {
            if head.contentLength >= 0 { return .error(bad("both Content-Length and Transfer-Encoding")) }
            if let e = checkTransferEncoding(p, head.fields, request: false) { return .error(e) }
            head.chunked = true
        }
        if connection.namesFraming { return .error(bad("Connection names a framing field")) }
        head.connectionNamesFields = connection.others
        head.keepAlive = head.minorVersion >= 1 ? !connection.close : (connection.keepAlive && !connection.close)
        return .complete(headEnd)
    }
}
