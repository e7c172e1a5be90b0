// One line per request: JSON (every field, or the server's `log_format`
// list) or nginx/Apache's combined/common text. Each worker appends to its own
// buffer and writes whole lines (at most 4 KiB per write, so lines from
// different workers never interleave, even on a pipe) once per loop
// iteration. While anyone follows the live tail (LogTap.swift) the JSON line
// also goes to this worker's ring there.
import Glibc
import EdgeHTTP
import EdgeIO
import EdgeConfig

final class AccessLog {
    let fd: Int32
    let buf = IOBuffer(capacity: 8192)
    /// The JSON line for the live tail when the file gets another format (or none).
    let tapLine = IOBuffer(capacity: 1024)
    /// TLS handshake failures: at most `tlsLinesPerSecond` lines a second per
    /// worker; the rest are counted and reported on the next line.
    var tlsWindow: Int64 = 0
    var tlsLinesInWindow = 0
    var tlsSuppressed = 0
    var tlsFailures = 0
    let tlsLinesPerSecond = 10

    init(fd: Int32) { self.fd = fd }

    var enabled: Bool { fd >= 0 }

    func flush() {
        guard fd >= 0 else { return }
        var p = buf.readPointer
        var left = buf.readableBytes
        while left > 0 {
            var n = min(left, 4096)
            if n < left {
                // Cut at the last newline inside the first 4 KiB.
                while n > 0 && p[n - 1] != 10 { n -= 1 }
                if n == 0 { n = min(left, 4096) }
            }
            var off = 0
            while off < n {
                let w = Glibc.write(fd, p + off, n - off)
                if w < 0 { if errno == EINTR { continue }; buf.clear(); return }
                off += w
            }
            p += n
            left -= n
        }
        buf.clear()
    }
}

extension Worker {
    /// Keeps what the log reports of the request head before its bytes go (the
    /// connection's buffer moves on): User-Agent and Referer when a log line or
    /// the live tail will say them, the request id (the client's X-Request-ID
    /// when valid, else one made here) when `request_id` is on, and behind a
    /// trusted proxy the client it names. Once per parsed head (startRequest).
    @inline(__always) func captureRequestFacts(_ c: ClientConnection, _ p: UnsafeRawBufferPointer) {
        let e = c.ex
        let text = (log.enabled && server.logFormat.saysRequestText) || tap.listening
        guard text || server.requestID else { return }
        for f in e.head.fields {
            switch f.known {
            case .userAgent where text && e.userAgent.isEmpty: e.userAgent = keepLogText(e, p, f.value)
            case .referer where text && e.referer.isEmpty: e.referer = keepLogText(e, p, f.value)
            case .xRequestID where server.requestID && e.requestID.isEmpty:
                if RequestID.isValid(UnsafeRawBufferPointer(rebasing: p[f.value])) { e.requestID = keepLogText(e, p, f.value) }
            default: continue
            }
        }
        if e.peer.trusted, text || log.enabled {
            let a = clientAddress(c, p)
            if a != c.addr { e.realClient = a.text }
        }
    }

    @inline(__always) func keepLogText(_ e: Exchange, _ p: UnsafeRawBufferPointer, _ r: Range<Int>) -> Range<Int> {
        let start = e.logText.count
        e.logText.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[r]).bindMemory(to: UInt8.self))   // (typed: one memcpy)
        return start..<e.logText.count
    }

    /// The exchange's request id (the client's, or one made now from this
    /// worker's random sequence) appended to `b`.
    @inline(__always) func appendRequestIDValue(_ e: Exchange, to b: IOBuffer) {
        if !e.requestID.isEmpty {
            e.logText.withUnsafeBytes { b.append(UnsafeRawBufferPointer(rebasing: $0[e.requestID])) }
            return
        }
        if e.madeID == (0, 0) { e.madeID = (requestIDs.next(), requestIDs.next() | 1) }
        RequestID.append(e.madeID.0, e.madeID.1, to: b)
    }

    func logExchange(_ c: ClientConnection) {
        let e = c.ex
        let done = monotonicMicros()
        var pending = c.pendingBody == nil ? 0 : Int64(c.pendingTo - c.pendingFrom)
        for (_, from, to) in c.pendingMore { pending += Int64(to - from) }
        let bytesOut = max(0, c.sent + Int64(c.outBuf?.readableBytes ?? 0) + pending - e.sentAtStart)
        if !e.isRefresh { recordStats(c, micros: done - e.startMicros, bytesOut: bytesOut) }
        let tapping = tap.listening
        guard log.enabled || tapping else { return }
        let (_, ms) = wallClock()
        let line = LogLine(bytesOut: bytesOut, micros: done - e.startMicros, millis: ms)
        switch server.logFormat {
        case .json(let fields):
            if log.enabled {
                let start = log.buf.readableBytes
                appendJSONLine(c, line, fields, to: log.buf)
                if tapping && fields == .all { publish(c, UnsafeRawBufferPointer(rebasing: log.buf.readView[start...])) }
                else if tapping { publishJSON(c, line) }
            } else {
                publishJSON(c, line)
            }
        case .combined, .common:
            if log.enabled { appendCLFLine(c, line, combined: server.logFormat == .combined, to: log.buf) }
            if tapping { publishJSON(c, line) }
        }
        if log.buf.readableBytes > 64 * 1024 { log.flush() }
    }

    /// The live tail always gets the whole JSON line, whatever the file's format.
    func publishJSON(_ c: ClientConnection, _ line: LogLine) {
        let b = log.tapLine
        b.clear()
        appendJSONLine(c, line, .all, to: b)
        publish(c, b.readView)
    }

    @inline(__always) func publish(_ c: ClientConnection, _ line: UnsafeRawBufferPointer) {
        tap.publish(worker: index, line: line, status: c.ex.status, outcome: cacheOutcome(c))
    }

    /// One JSON object and a newline: the fields in `fields` that apply.
    func appendJSONLine(_ c: ClientConnection, _ line: LogLine, _ fields: LogFieldSet, to b: IOBuffer) {
        let e = c.ex
        // Every key is written with a leading comma (one copy of one literal);
        // the first one's comma becomes the opening brace at the end.
        let start = b.writeIndex
        @inline(__always) func key(_ k: StaticString) { b.append(k) }
        if fields.has(.time) {
            key(",\"time\":")
            b.append(byte: 34)
            b.append(date.iso)
            b.append(byte: 46)
            let ms = line.millis
            b.append(byte: UInt8(48 + ms / 100)); b.append(byte: UInt8(48 + ms / 10 % 10)); b.append(byte: UInt8(48 + ms % 10))
            b.append("Z\"")
        }
        if fields.has(.tenant) {
            key(",\"tenant\":")
            b.append(byte: 34)
            if let t = e.tenant { b.append(t.nameJSON) } else { b.append(byte: 45) }
            b.append(byte: 34)
        }
        if fields.has(.host) && !e.host.isEmpty { key(",\"host\":"); quoted(b, e.host) }
        if fields.has(.scheme) { key(",\"scheme\":"); b.append(e.peer.https ? "\"https\"" : "\"http\"") }
        if fields.has(.protocol) {
            // The client's protocol: an HTTP/2 stream, or the version its HTTP/1 request line gave.
            key(",\"protocol\":")
            if c.h2Parent != nil { b.append("\"HTTP/2\"") } else {
                b.append("\"HTTP/1.")
                b.append(byte: UInt8(48 + min(max(e.head.minorVersion, 0), 1)))
                b.append(byte: 34)
            }
        }
        if e.peer.https {
            if fields.has(.tls), let t = c.tls ?? c.h2Parent?.carrier?.tls {
                key(",\"tls\":"); b.append(byte: 34); b.append(t.versionToken); b.append(byte: 34)
            }
            if fields.has(.sni) && !e.peer.sni.isEmpty { key(",\"sni\":"); quoted(b, e.peer.sni) }
        }
        if fields.has(.client) { key(",\"client\":"); b.append(byte: 34); b.append(e.realClient ?? e.peer.ip); b.append(byte: 34) }
        if fields.has(.peer) { key(",\"peer\":"); b.append(byte: 34); b.append(e.peer.ip); b.append(byte: 34) }
        if fields.has(.method) {
            key(",\"method\":")
            b.append(byte: 34)
            if e.method == .other { appendEscaped(b, e.methodText) } else { b.append(e.method.token) }
            b.append(byte: 34)
        }
        if fields.has(.target) { key(",\"target\":"); quoted(b, e.target) }
        if fields.has(.status) { key(",\"status\":"); b.append(decimal: Int64(e.status)) }
        if fields.has(.bytesIn) { key(",\"bytes_in\":"); b.append(decimal: e.bytesIn) }
        if fields.has(.bytesOut) { key(",\"bytes_out\":"); b.append(decimal: line.bytesOut) }
        if e.cache.status.kind != .none {
            if fields.has(.cache) {
                key(",\"cache\":")
                b.append(byte: 34)
                e.cache.status.append(to: b)   // fixed tokens: nothing to escape
                b.append(byte: 34)
            }
            if fields.has(.tier) && e.cache.status.kind == .hit {
                key(",\"tier\":")
                b.append(e.readFromDisk ? "\"disk\"" : "\"memory\"")
            }
        }
        if fields.has(.durationMs) { key(",\"duration_ms\":"); appendMillis(b, line.micros) }
        if let s = e.serverLabel {
            if fields.has(.origin) { key(",\"origin\":"); b.append(byte: 34); b.append(s); b.append(byte: 34) }
            if fields.has(.originMs) && e.originMicros >= 0 { key(",\"origin_ms\":"); appendMillis(b, e.originMicros) }
        } else if fields.has(.origin), e.status != 0, case .directory? = e.route.map({ $0.group.kind }) {
            key(",\"origin\":"); b.append("\"directory\"")
        }
        if fields.has(.originStatus) && e.originStatus != 0 { key(",\"origin_status\":"); b.append(decimal: Int64(e.originStatus)) }
        if e.originBytesIn != 0 || e.originBytesOut != 0 {
            if fields.has(.originBytesIn) { key(",\"origin_bytes_in\":"); b.append(decimal: e.originBytesIn) }
            if fields.has(.originBytesOut) { key(",\"origin_bytes_out\":"); b.append(decimal: e.originBytesOut) }
        }
        if fields.has(.error), let err = e.originError { key(",\"error\":"); b.append(byte: 34); b.append(err); b.append(byte: 34) }
        if fields.has(.action) && e.protection != .none {
            key(",\"action\":"); b.append(byte: 34); b.append(e.protection.token); b.append(byte: 34)
            if let l = e.limit { key(",\"limit\":"); b.append(byte: 34); b.append(l.nameJSON); b.append(byte: 34) }
            if let r = e.rule {
                key(",\"rule\":"); b.append(byte: 34); b.append(r.idJSON); b.append(byte: 34)
            } else if let k = e.signature {
                key(",\"rule\":"); b.append("\"signature:"); b.append(string: k.name); b.append(byte: 34)
            }
        }
        if fields.has(.tags) && !e.tags.isEmpty { key(",\"tags\":"); b.append(byte: 34); b.append(e.tags); b.append(byte: 34) }
        if fields.has(.complete) && e.responseCut { key(",\"complete\":"); b.append("false") }
        if fields.has(.closedBy), let t = e.tunnelEnd { key(",\"closed_by\":"); b.append(byte: 34); b.append(t); b.append(byte: 34) }
        if fields.has(.userAgent) && !e.userAgent.isEmpty { key(",\"user_agent\":"); quotedLogText(b, e, e.userAgent) }
        if fields.has(.referer) && !e.referer.isEmpty { key(",\"referer\":"); quotedLogText(b, e, e.referer) }
        if fields.has(.requestID) && e.hasRequestID { key(",\"request_id\":"); b.append(byte: 34); appendRequestIDValue(e, to: b); b.append(byte: 34) }
        if b.writeIndex == start { b.append("{}\n"); return }
        (b.writePointer - (b.writeIndex - start)).pointee = 123   // "{"
        b.append("}\n")
    }

    /// nginx's and Apache's `combined` (and `common`) line: the client, the
    /// local time, the request line, status, bytes sent, then "referer" "user agent";
    /// `"`, `\\` and bytes outside printable ASCII written as \xHH, as nginx does.
    func appendCLFLine(_ c: ClientConnection, _ line: LogLine, combined: Bool, to b: IOBuffer) {
        let e = c.ex
        b.append(e.realClient ?? e.peer.ip)
        b.append(" - - [")
        b.append(date.clf)
        b.append("] \"")
        if e.method == .other { clfEscaped(b, e.methodText) } else { b.append(e.method.token) }
        b.append(byte: 32)
        clfEscaped(b, e.target)
        if c.h2Parent != nil { b.append(" HTTP/2.0\" ") } else {
            b.append(" HTTP/1.")
            b.append(byte: UInt8(48 + min(max(e.head.minorVersion, 0), 1)))
            b.append("\" ")
        }
        b.append(decimal: Int64(e.status))
        b.append(byte: 32)
        b.append(decimal: line.bytesOut)
        if combined {
            b.append(" \"")
            if e.referer.isEmpty { b.append(byte: 45) } else { e.logText.withUnsafeBytes { clfEscaped(b, UnsafeRawBufferPointer(rebasing: $0[e.referer])) } }
            b.append("\" \"")
            if e.userAgent.isEmpty { b.append(byte: 45) } else { e.logText.withUnsafeBytes { clfEscaped(b, UnsafeRawBufferPointer(rebasing: $0[e.userAgent])) } }
            b.append(byte: 34)
        }
        b.append(byte: 10)
    }

    @inline(__always) func quoted(_ b: IOBuffer, _ bytes: [UInt8]) {
        b.append(byte: 34)
        appendEscaped(b, bytes)
        b.append(byte: 34)
    }

    @inline(__always) func quotedLogText(_ b: IOBuffer, _ e: Exchange, _ r: Range<Int>) {
        b.append(byte: 34)
        e.logText.withUnsafeBytes { appendEscaped(b, UnsafeRawBufferPointer(rebasing: $0[r])) }
        b.append(byte: 34)
    }

    func logHandshakeFailure(sni: String?, tenant: String?, client: [UInt8], error: String) {
        log.tlsFailures += 1
        guard log.enabled else { return }
        if now - log.tlsWindow >= 1000 { log.tlsWindow = now; log.tlsLinesInWindow = 0 }
        guard log.tlsLinesInWindow < log.tlsLinesPerSecond else { log.tlsSuppressed += 1; return }
        log.tlsLinesInWindow += 1
        let b = log.buf
        b.append("{\"time\":\"")
        b.append(date.iso)
        b.append("Z\",\"event\":\"tls_handshake_failed\",\"tenant\":\"")
        appendEscaped(b, Array((tenant ?? "-").utf8))
        b.append("\",\"sni\":\"")
        appendEscaped(b, Array((sni ?? "").utf8))
        b.append("\",\"client\":\"")
        b.append(client)
        b.append("\",\"error\":\"")
        appendEscaped(b, Array(error.utf8))
        b.append("\",\"suppressed\":")
        b.append(decimal: Int64(log.tlsSuppressed))
        b.append("}\n")
        log.tlsSuppressed = 0
    }

    /// One line per failed TLS handshake with an origin (names the server and the reason).
    func logOriginTLSFailure(_ o: OriginConnection, _ error: String) {
        guard log.enabled else { return }
        let b = log.buf
        b.append("{\"time\":\"")
        b.append(date.iso)
        b.append("Z\",\"event\":\"origin_tls_failed\",\"origin\":\"")
        b.append(o.server.label)
        b.append("\",\"server_name\":\"")
        appendEscaped(b, Array(o.server.serverName.utf8))
        b.append("\",\"error\":\"")
        appendEscaped(b, Array(error.utf8))
        b.append("\"}\n")
    }

    func appendMillis(_ b: IOBuffer, _ micros: Int64) {
        let us = max(0, micros)
        b.append(decimal: us / 1000)
        b.append(byte: 46)
        let frac = us % 1000
        b.append(byte: UInt8(48 + frac / 100)); b.append(byte: UInt8(48 + frac / 10 % 10)); b.append(byte: UInt8(48 + frac % 10))
    }

    func appendEscaped<C: Collection<UInt8>>(_ b: IOBuffer, _ bytes: C) {
        for ch in bytes {
            if ch == 34 || ch == 92 { b.append(byte: 92) }
            if ch < 0x20 || ch >= 0x7F { b.append(byte: 63); continue }
            b.append(byte: ch)
        }
    }

    func clfEscaped<C: Collection<UInt8>>(_ b: IOBuffer, _ bytes: C) {
        for ch in bytes {
            if ch == 34 || ch == 92 || ch < 0x20 || ch >= 0x7F {
                b.append("\\x")
                let hex: StaticString = "0123456789ABCDEF"
                b.append(byte: hex.utf8Start[Int(ch >> 4)]); b.append(byte: hex.utf8Start[Int(ch & 15)])
                continue
            }
            b.append(byte: ch)
        }
    }
}

/// What a finished exchange's log line needs beyond the exchange.
struct LogLine {
    var bytesOut: Int64
    var micros: Int64
    var millis: Int
}

extension LogFormat {
    /// The file's lines say User-Agent or Referer.
    var saysRequestText: Bool {
        switch self {
        case .json(let f): return f.has(.userAgent) || f.has(.referer)
        case .combined: return true
        case .common: return false
        }
    }
}
