// Header rewriting on the way to the origin and back (RFC 9110 §7.6):
// hop-by-hop fields are dropped, Via and X-Forwarded-* are added, framing
// fields are written by edge itself from the framing it actually uses.
import EdgeHTTP
import EdgeIO

extension Worker {
    /// Serializes the request head for the origin into `c.ex.fwd` (kept until the
    /// exchange ends, so a retry can send it again).
    func buildForwardHead(_ c: ClientConnection, p: UnsafeRawBufferPointer, route: Route) {
        if c.ex.fwd == nil { c.ex.fwd = takeBuffer() }
        let b = c.ex.fwd!
        b.clear()
        appendForwardFields(c, p: p, route: route, to: b)
        switch c.ex.body {
        case .none: break
        case .length(let n):
            b.append("Content-Length: ")
            b.append(decimal: n)
            b.append("\r\n")
        case .chunked:
            b.append("Transfer-Encoding: chunked\r\n")
        }
        b.append("\r\n")
    }

    /// The request line and fields the origin gets, all but the framing
    /// fields and the blank line (a mirror copy frames its body itself).
    func appendForwardFields(_ c: ClientConnection, p: UnsafeRawBufferPointer, route: Route, to b: IOBuffer) {
        let e = c.ex   // (bound once: nothing here replaces the connection's exchange)
        if e.method == .other { b.append(e.methodText) } else { b.append(UnsafeRawBufferPointer(rebasing: p[e.head.methodRange])) }
        b.append(byte: 32)
        b.append(e.target)
        b.append(" HTTP/1.1\r\nHost: ")
        if let h = route.hostRewrite { b.append(h) } else { b.append(e.host) }
        b.append("\r\n")
        var priorXFF: Range<Int>? = nil
        var realIP = false
        let pass = e.tenant?.passOverrides ?? []
        for f in e.head.fields {
            switch f.known {
            case .host, .contentLength, .expect, .underscoreAlias:
                continue
            case .xForwardedFor:
                if e.peer.trusted { priorXFF = priorXFF ?? f.value }
                continue
            case .xForwardedProto, .xForwardedHost, .forwarded:
                if !e.peer.trusted { continue }
            case .range, .ifRange:
                // The whole object is fetched (Cache.swift), or whole slices (Slices.swift),
                // or the rest of a broken stream (Resume.swift).
                if e.cache.rangeFromFull || e.cache.slices?.ask != nil || e.resume?.asked == true { continue }
            case .ifNoneMatch, .ifModifiedSince:
                if e.resume?.asked == true { continue }   // (its own If-Range says what it wants)
            case .xRequestID:
                if server.requestID { continue }   // the exchange's id (kept or made) is written below
            case .other:
                // URL, method, scheme, host and client-address claims (OverrideFields).
                if OverrideFields.contains(p, f.nameStart, f.nameEnd) {
                    if equalsLowercase(p, f.nameStart, f.nameEnd, "x-real-ip") {
                        // edge sets X-Real-IP; a trusted proxy's (first) value stands instead.
                        if !e.peer.trusted || realIP { continue }
                        realIP = true
                    } else if !e.peer.trusted && !nameIsListed(pass, p, f.name) {
                        continue
                    }
                }
            default:
                if f.known.isHopByHop { continue }
            }
            if e.head.connectionNamesFields && isNamedByConnection(p, e.head.fields, f) { continue }
            if route.request.removes(p, f.name) { continue }
            if !e.ruleEdits.isEmpty && e.ruleEdits.contains(where: { $0.removes(p, f.name) }) { continue }
            b.append(UnsafeRawBufferPointer(rebasing: p[f.nameStart..<f.valueEnd]))
            b.append("\r\n")
        }
        b.append("X-Forwarded-For: ")
        if let x = priorXFF {
            b.append(UnsafeRawBufferPointer(rebasing: p[x]))
            b.append(", ")
        }
        b.append(e.peer.ip)
        if !realIP {
            b.append("\r\nX-Real-IP: ")
            b.append(e.peer.ip)
        }
        if !e.peer.trusted || !e.head.fields.contains(where: { $0.known == .xForwardedProto }) {
            b.append(!e.peer.https ? "\r\nX-Forwarded-Proto: http" : "\r\nX-Forwarded-Proto: https")
        }
        if !e.peer.trusted || !e.head.fields.contains(where: { $0.known == .xForwardedHost }) {
            b.append("\r\nX-Forwarded-Host: ")
            b.append(e.host)
        }
        b.append("\r\n")
        b.append(config.viaLine)
        b.append(config.cdnLoopLine)
        if server.requestID { appendRequestID(e, b) }
        if e.cache.slices?.ask != nil { appendSliceAsk(c, b) }
        if let r = e.resume, r.asked { appendResumeAsk(r, b) }
        if let stored = e.cache.revalidating, !e.cache.clientConditional {
            // Revalidate what we hold (RFC 9111 §4.3.1).
            if let e = stored.etag { b.append("If-None-Match: "); b.append(string: e); b.append("\r\n") }
            if let lm = stored.lastModified { b.append("If-Modified-Since: "); b.append(string: lm); b.append("\r\n") }
        }
        b.append(route.request.addLines)
        for ed in e.ruleEdits { b.append(ed.addLines) }
        // The one hop-by-hop pair that is passed on: the origin decides the upgrade.
        if e.upgrade { b.append("Connection: Upgrade\r\nUpgrade: websocket\r\n") }
    }

    /// Serializes the client's response head from the origin's.
    /// With a transform (see Compression.swift) the coding fields change, the
    /// length goes (the body is chunked), and a decoded body's head is held
    /// back in the coder until the body is complete.
    func writeResponseHead(_ c: ClientConnection, _ o: OriginConnection, framing: BodyFraming, p: UnsafeRawBufferPointer,
                           transform: BodyTransform = .none, varyAcceptEncoding: Bool = false, etag: String? = nil, upgrade: Bool = false) {
        let held = c.ex.coder?.heldHead
        let transforming = transform != .none
        let route = c.ex.route!
        // A Range miss that fetched the whole object (or whole slices) answers 206 with the client's range.
        let cut = transforming || held != nil || o.requestWasHead ? nil : clientCut(c, o, p: p, framing: framing)
        c.ex.cache.slice = cut?.range
        c.ex.cache.sliceOffset = cut?.offset ?? 0
        if cut != nil { c.ex.status = 206 }
        let b = cut != nil ? headStart(c, 206) : headStart(c, o.head.status, reason: UnsafeRawBufferPointer(rebasing: p[o.head.reasonRange]), held: held)
        var sawDate = false
        let caching = route.cache != nil
        for f in o.head.fields {
            if f.known.isHopByHop { continue }
            // (Both names have 17 bytes: the length is checked here, once, before either compare.)
            if caching && f.known == .other && f.nameEnd - f.nameStart == 17
                && (equalsLowercase(p, f.nameStart, f.nameEnd, "cdn-cache-control") || equalsLowercase(p, f.nameStart, f.nameEnd, "surrogate-control")) {
                continue   // targeted at this cache, not the client's
            }
            if f.known == .contentLength && (framing != .none || transforming) { continue }
            if cut != nil && o.head.status == 206 && equalsLowercase(p, f.nameStart, f.nameEnd, "content-range") { continue }   // the client's own follows
            if transforming && f.known == .other && (equalsLowercase(p, f.nameStart, f.nameEnd, "content-encoding") || equalsLowercase(p, f.nameStart, f.nameEnd, "etag")) {
                continue
            }
            if f.known == .date { sawDate = true }
            if f.known == .xRequestID && server.requestID { continue }   // the exchange's own goes out (headEnd)
            if o.head.connectionNamesFields && isNamedByConnection(p, o.head.fields, f) { continue }
            if route.response.removes(p, f.name) { continue }
            b.append(UnsafeRawBufferPointer(rebasing: p[f.nameStart..<f.valueEnd]))
            b.append("\r\n")
        }
        if !sawDate { b.append(date.line.readView) }
        b.append(config.viaLine)
        if upgrade { return headEndSwitching(c, b) }
        if caching { appendCacheStatus(c, b) }
        if c.ex.peer.https, let t = c.ex.tenant { b.append(t.hstsLine) }
        b.append(route.response.addLines)
        if varyAcceptEncoding { b.append("Vary: Accept-Encoding\r\n") }
        if transforming {
            if case .encode(let coding) = transform {
                b.append("Content-Encoding: ")
                b.append(string: coding.token)
                b.append("\r\n")
            }
            if let etag {
                b.append("ETag: ")
                b.append(string: etag)
                b.append("\r\n")
            }
            // Held: Content-Length and the end of the head come with the body (finishCoder).
            if held != nil { return }
            if o.requestWasHead {
                // No body: the fields a GET would have, minus the length it cannot know.
                if case .encode = transform { return headEnd(c, b, body: .stream, headOnly: true) }
                return headEnd(c, b, body: .none)
            }
            return headEnd(c, b, body: .stream)
        }
        if let (s, complete, _) = cut {
            b.append("Content-Range: bytes ")
            b.append(decimal: s.lowerBound); b.append(byte: 45); b.append(decimal: s.upperBound); b.append(byte: 47); b.append(decimal: complete)
            b.append("\r\n")
            return headEnd(c, b, body: .length(s.upperBound - s.lowerBound + 1))
        }
        switch framing {
        case .none: headEnd(c, b, body: .none)
        case .length(let n): headEnd(c, b, body: .length(n))
        case .chunked, .untilClose: headEnd(c, b, body: .stream)
        }
    }

    /// Request body bytes on their way to the origin, re-framed as one chunk
    /// (the forward head says chunked), and the end of such a body.
    @inline(__always) func forwardChunk(_ bytes: UnsafeRawBufferPointer, to ob: IOBuffer) { ChunkFramer.appendChunk(bytes, to: ob) }
    @inline(__always) func forwardChunkedEnd(to ob: IOBuffer) { ChunkFramer.appendEnd(to: ob) }

    /// "X-Request-ID: ID" and CRLF: the exchange's id, made now if it has none
    /// (a request refused before its head was read through).
    @inline(__always) func appendRequestID(_ e: Exchange, _ b: IOBuffer) {
        b.append("X-Request-ID: ")
        appendRequestIDValue(e, to: b)
        b.append("\r\n")
    }
}

/// A mirror copy (Mirror.swift): the forward fields and the body (nil: none)
/// framed by its length (a keep-alive request: the sender reuses connections).
func mirrorRequest(fields: [UInt8], body: [UInt8]?) -> [UInt8] {
    var r = fields
    if let body {
        r += Array("Content-Length: \(body.count)\r\n\r\n".utf8)
        r += body
    } else {
        r += [13, 10]
    }
    return r
}

/// A health probe's request head (HealthChecks.swift): one request on its own
/// connection, closed after the answer.
func probeRequestHead(method: String, path: String, host: [UInt8]) -> [UInt8] {
    var r = Array("\(method) \(path) HTTP/1.1\r\nHost: ".utf8)
    r += host
    r += Array("\r\nUser-Agent: edged-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n".utf8)
    return r
}
