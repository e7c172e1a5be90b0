// One JSON line per request. Each worker appends to its own buffer and writes
// whole lines (at most 4 KiB per write, so lines from different workers never
// interleave, even on a pipe) once per loop iteration.
import Glibc
import EdgeHTTP
import EdgeIO

final class AccessLog {
    let fd: Int32
    let buf = IOBuffer(capacity: 8192)
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
    func logExchange(_ c: ClientConnection) {
        let e = c.ex
        let done = monotonicMicros()
        let pending = c.pendingBody == nil ? 0 : Int64(c.pendingTo - c.pendingFrom)
        let bytesOut = max(0, c.sent + Int64(c.outBuf?.readableBytes ?? 0) + pending - e.sentAtStart)
        if !e.isRefresh { recordStats(c, micros: done - e.startMicros, bytesOut: bytesOut) }
        guard log.enabled else { return }
        let b = log.buf
        let (_, ms) = wallClock()
        b.append("{\"time\":\"")
        b.append(date.iso)
        b.append(byte: 46)
        b.append(byte: UInt8(48 + ms / 100)); b.append(byte: UInt8(48 + ms / 10 % 10)); b.append(byte: UInt8(48 + ms % 10))
        b.append("Z\",\"tenant\":\"")
        if let t = e.tenant { b.append(t.nameJSON) } else { b.append(byte: 45) }
        b.append("\",\"client\":\"")
        b.append(c.ex.peer.ip)
        // The client's protocol: an HTTP/2 stream, or the version its HTTP/1 request line gave.
        if c.h2Parent != nil { b.append("\",\"protocol\":\"HTTP/2") } else {
            b.append("\",\"protocol\":\"HTTP/1.")
            b.append(byte: UInt8(48 + min(max(e.head.minorVersion, 0), 1)))
        }
        b.append("\",\"method\":\"")
        if e.method == .other { b.append(jsonEscaped(e.methodText)) } else { b.append(e.method.token) }
        b.append("\",\"target\":\"")
        appendEscaped(b, e.target)
        b.append("\",\"status\":")
        b.append(decimal: Int64(e.status))
        b.append(",\"bytes_in\":")
        b.append(decimal: e.bytesIn)
        b.append(",\"bytes_out\":")
        b.append(decimal: bytesOut)
        if e.cache.status.kind != .none {
            b.append(",\"cache\":\"")
            e.cache.status.append(to: b)   // fixed tokens: nothing to escape
            b.append("\"")
        }
        b.append(",\"duration_ms\":")
        appendMillis(b, done - e.startMicros)
        if let s = e.serverLabel {
            b.append(",\"origin\":\"")
            b.append(s)
            b.append("\"")
            if e.originMicros >= 0 {
                b.append(",\"origin_ms\":")
                appendMillis(b, e.originMicros)
            }
        } else if e.status != 0, case .directory? = e.route.map({ $0.group.kind }) {
            b.append(",\"origin\":\"directory\"")
        }
        if let e = e.originError {
            b.append(",\"error\":\"")
            b.append(e)
            b.append("\"")
        }
        if e.protection != .none {
            b.append(",\"action\":\"")
            b.append(e.protection.token)
            b.append("\"")
            if let l = e.limit {
                b.append(",\"limit\":\"")
                b.append(l.nameJSON)
                b.append("\"")
            }
            if let r = e.rule {
                b.append(",\"rule\":\"")
                b.append(r.idJSON)
                b.append("\"")
            } else if let k = e.signature {
                b.append(",\"rule\":\"signature:")
                b.append(string: k.name)
                b.append("\"")
            }
        }
        if !e.tags.isEmpty {
            b.append(",\"tags\":\"")
            b.append(e.tags)
            b.append("\"")
        }
        if e.responseCut { b.append(",\"complete\":false") }
        if let t = e.tunnelEnd {
            b.append(",\"closed_by\":\"")
            b.append(t)
            b.append("\"")
        }
        b.append("}\n")
        if b.readableBytes > 64 * 1024 { log.flush() }
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

    func appendEscaped(_ b: IOBuffer, _ bytes: [UInt8]) {
        for ch in bytes {
            if ch == 34 || ch == 92 { b.append(byte: 92) }
            if ch < 0x20 || ch >= 0x7F { b.append(byte: 63); continue }
            b.append(byte: ch)
        }
    }
}
