// A second, deliberately plain reading of RFC 9112's request-head grammar and of
// the framing policy edged states in HeadParser.swift, written for the differential
// fuzz target (tools/fuzz/FuzzDiff.swift) and replayed by `swift test`
// (ReferenceHeadTests). It shares no code with the parser: it splits the bytes
// into lines, the lines into parts, and checks each part against the ABNF with
// plain comparisons. Speed is no goal here; being obviously right is.
#if canImport(EdgeHTTP)
import EdgeHTTP
#endif

enum ReferenceHead {
    enum Verdict: Equatable {
        case needMore
        case reject
        case accept(Accepted)
    }

    struct Accepted: Equatable {
        var consumed: Int
        var minorVersion: Int
        var fieldCount: Int
        var framing: BodyFraming
        var keepAlive: Bool
        var expectContinue: Bool
        var hasHost: Bool
    }

    // RFC 9110 §5.6.2: tchar.
    static func isTchar(_ c: UInt8) -> Bool {
        if c >= 0x30 && c <= 0x39 { return true }
        if c >= 0x41 && c <= 0x5A { return true }
        if c >= 0x61 && c <= 0x7A { return true }
        return Array("!#$%&'*+-.^_`|~".utf8).contains(c)
    }

    static func lower(_ b: [UInt8]) -> [UInt8] { b.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 32 : $0 } }
    static func named(_ b: [UInt8], _ s: String) -> Bool { lower(b) == Array(s.utf8) }

    /// RFC 9110 §5.6.1 list elements: split at commas, OWS trimmed, empty ones dropped.
    static func elements(_ v: [UInt8]) -> [[UInt8]] {
        v.split(separator: 0x2C, omittingEmptySubsequences: false).map { trim(Array($0)) }.filter { !$0.isEmpty }
    }

    static func trim(_ v: [UInt8]) -> [UInt8] {
        var s = v[...]
        while let f = s.first, f == 0x20 || f == 0x09 { s = s.dropFirst() }
        while let l = s.last, l == 0x20 || l == 0x09 { s = s.dropLast() }
        return Array(s)
    }

    static func parse(_ b: [UInt8], limits: HeadLimits) -> Verdict {
        // §2.2: a few empty lines before the request line are ignored (edged: at most four).
        var start = 0
        var skipped = 0
        while skipped < 4 && start + 1 < b.count && b[start] == 13 && b[start + 1] == 10 { start += 2; skipped += 1 }

        // Lines end in CRLF; a bare CR or LF, or a NUL, anywhere in a line is refused.
        var lines: [[UInt8]] = []
        var pos = start
        var end = -1
        while true {
            guard let lf = b[pos...].firstIndex(of: 10) else { return .needMore }
            guard lf > pos, b[lf - 1] == 13 else { return .reject }
            let line = Array(b[pos..<(lf - 1)])
            if line.contains(13) || line.contains(0) { return .reject }
            pos = lf + 1
            if line.isEmpty {
                if lines.isEmpty { return .reject }   // no request line
                end = pos
                break
            }
            lines.append(line)
        }
        if end - start > limits.maxHeadBytes { return .reject }

        // request-line = method SP request-target SP HTTP-version
        let requestLine = lines[0]
        if requestLine.count > limits.maxRequestLine { return .reject }
        let parts = requestLine.split(separator: 0x20, omittingEmptySubsequences: false).map { Array($0) }
        guard parts.count == 3 else { return .reject }
        let (method, target, version) = (parts[0], parts[1], parts[2])
        guard !method.isEmpty, method.count <= 32, method.allSatisfy(isTchar) else { return .reject }
        guard !target.isEmpty, target.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else { return .reject }
        guard version.count == 8, Array(version[0..<5]) == Array("HTTP/".utf8), version[6] == 0x2E,
              (0x30...0x39).contains(version[5]), (0x30...0x39).contains(version[7]) else { return .reject }
        guard version[5] == 0x31, version[7] <= 0x31 else { return .reject }   // 505: only HTTP/1.0 and 1.1
        let minor = Int(version[7] - 0x30)

        // field-line = field-name ":" OWS field-value OWS
        var fields: [(name: [UInt8], value: [UInt8])] = []
        for line in lines.dropFirst() {
            if line.count > limits.maxFieldLine { return .reject }
            guard let colon = line.firstIndex(of: 0x3A) else { return .reject }
            let name = Array(line[..<colon])
            guard !name.isEmpty, name.allSatisfy(isTchar) else { return .reject }   // also: no obs-fold, no space before ':'
            let value = trim(Array(line[(colon + 1)...]))
            guard value.allSatisfy({ ($0 >= 0x21 && $0 != 0x7F) || $0 == 0x20 || $0 == 0x09 }) else { return .reject }
            // An underscore spelling of a framing field is refused (a hop that maps "_" to "-" would frame differently).
            let dashed = name.map { $0 == 0x5F ? 0x2D : $0 }
            if name.contains(0x5F) && (named(dashed, "content-length") || named(dashed, "transfer-encoding")) { return .reject }
            fields.append((name, value))
        }
        if fields.count > limits.maxFields { return .reject }

        func values(_ n: String) -> [[UInt8]] { fields.filter { named($0.name, n) }.map(\.value) }

        // Host: at most one, of host characters; required in HTTP/1.1.
        let hosts = values("host")
        if hosts.count > 1 { return .reject }
        let hostBytes = Array("-._~!$&'()*+,;=:[]%".utf8)
        for h in hosts where !h.allSatisfy({ isAlnum($0) || hostBytes.contains($0) }) { return .reject }
        if minor == 1 && hosts.isEmpty { return .reject }

        // Content-Length: one field, 1 to 18 digits.
        let lengths = values("content-length")
        if lengths.count > 1 { return .reject }
        var length: Int64 = -1
        if let l = lengths.first {
            guard !l.isEmpty, l.count <= 18, l.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return .reject }
            length = l.reduce(Int64(0)) { $0 * 10 + Int64($1 - 0x30) }
        }
        // Transfer-Encoding: only the single coding "chunked", never with Content-Length, never in HTTP/1.0.
        let codings = values("transfer-encoding")
        var chunked = false
        if !codings.isEmpty {
            if length >= 0 || minor == 0 { return .reject }
            let all = codings.flatMap(elements)
            guard all.count == 1, named(all[0], "chunked") else { return .reject }
            chunked = true
        }
        // Expect: only 100-continue (417 otherwise).
        let expects = values("expect")
        for e in expects where !named(e, "100-continue") { return .reject }
        // Connection: may not name a field that frames or routes the message.
        let tokens = values("connection").flatMap(elements)
        if tokens.contains(where: { named($0, "content-length") || named($0, "transfer-encoding") || named($0, "host") }) { return .reject }
        let close = tokens.contains { named($0, "close") }
        let keepAlive = tokens.contains { named($0, "keep-alive") }

        let framing: BodyFraming = chunked ? .chunked : (length > 0 ? .length(length) : .none)
        return .accept(Accepted(consumed: end, minorVersion: minor, fieldCount: fields.count, framing: framing,
                                keepAlive: minor == 1 ? !close : (keepAlive && !close), expectContinue: !expects.isEmpty, hasHost: !hosts.isEmpty))
    }

    static func isAlnum(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) }
}

/// Limits small enough that a fuzzer reaches every one of them.
let differentialLimits: HeadLimits = {
    var l = HeadLimits()
    l.maxRequestLine = 64
    l.maxFieldLine = 96
    l.maxHeadBytes = 512
    l.maxFields = 8
    return l
}()

/// Traps when HeadParser and the reference disagree on `bytes`: on accept or
/// reject of a complete head, on where it ends, or on how its body is framed. An
/// incomplete head may be refused early by the parser (it sees a bad byte before
/// the end), but the parser may not wait for more where the reference has decided.
func checkRequestHeadAgreement(_ bytes: UnsafeRawBufferPointer) {
    let reference = ReferenceHead.parse(Array(bytes), limits: differentialLimits)
    var head = RequestHead()
    var scan = HeadScan()
    let real = HeadParser.parseRequest(bytes, limits: differentialLimits, into: &head, scan: &scan)
    switch (real, reference) {
    case (.needMore, .needMore), (.error, .needMore), (.error, .reject):
        return
    case (.complete(let n), .accept(let a)):
        let seen = ReferenceHead.Accepted(consumed: n, minorVersion: head.minorVersion, fieldCount: head.fields.count, framing: head.framing,
                                          keepAlive: head.keepAlive, expectContinue: head.expectContinue, hasHost: head.hostField >= 0)
        precondition(seen == a, "parser and reference read the head differently: \(seen) vs \(a)")
    default:
        preconditionFailure("parser says \(real), reference says \(reference)")
    }
}
