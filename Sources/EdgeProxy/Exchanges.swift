// An exchange's life on a client connection: parsing the next request and
// starting its exchange, refusals and edge's own answers, timeouts, the end of
// an exchange (logged, then the next request or the close), and the exchanges
// that go on without their client (an orphaned fill, a background refresh).
// Thread rules: see Worker.swift (one worker owns it all).
import Glibc
import EdgeConfig
import EdgeProtect
import EdgeHTTP
import EdgeIO
import EdgeUpstream
import EdgeTLS
import EdgeCache

extension Worker {
    // MARK: Requests

    func processClient(_ c: ClientConnection) {
        if c.inProcess { return }
        c.inProcess = true
        defer { c.inProcess = false }
        while !c.closed {
            switch c.phase {
            case .head:
                guard let b = c.inBuf, !b.isEmpty else { return }
                if let o = c.outBuf, o.readableBytes >= highWater { return }
                if c.pendingBody != nil { return }   // the previous response is still going out
                if c.timeout != .header {
                    c.timeout = .header
                    c.deadline = now + server.headerTimeoutMillis
                }
                if server.h2c && c.requests == 0 && c.tls == nil && c.h2Parent == nil && c.sink == nil && b.readView[0] == 0x50 {   // "P"RI
                    var waiting = false
                    if startH2cIfPreface(c, b, waiting: &waiting) { return }
                    if waiting { if c.eof { closeClient(c) }; return }
                }
                swap(&c.head.fields, &scratchFields)
                let result = HeadParser.parseRequest(b.readView, limits: limits, into: &c.head, scan: &c.scan)
                switch result {
                case .needMore:
                    swap(&c.head.fields, &scratchFields)
                    if c.eof { closeClient(c) }
                    return
                case .error(let e):
                    swap(&c.head.fields, &scratchFields)
                    beginExchange(c, headLength: 0)
                    c.keepAlive = false
                    b.clear()
                    respondError(c, e.status)
                case .complete(let n):
                    startRequest(c, headLength: n)
                    // The field storage goes back to the scratch array (an exchange
                    // that waits kept a copy of its head: Phases.keepHead).
                    swap(&c.head.fields, &scratchFields)
                }
            case .awaitBody:
                // A cached POST: once its body is all here, it goes on to the cache lookup.
                guard (c.inBuf?.readableBytes ?? 0) >= c.awaitBytes else { return }
                c.awaitBytes = 0
                c.phase = .head
                continueKeptRequest(c)
            case .proxy:
                pumpRequestBody(c)
                return
            case .file, .parked, .stream, .tunnel, .closing:
                return
            }
        }
    }

    /// A fresh exchange for the request now starting (its target buffer reused).
    func beginExchange(_ c: ClientConnection, headLength: Int) {
        // Debug builds (the test suite) check that nothing wrote to the idle
        // connections' placeholder exchange.
        assert(!idleExchange.inExchange && idleExchange.status == 0 && idleExchange.cache.key == nil && idleExchange.origin == nil
               && idleExchange.target.isEmpty && idleExchange.route == nil, "the idle placeholder exchange was written to")
        // The byte stores move on (unshared, so clearing them keeps their capacity):
        // from the previous exchange, or after an idle spell from the worker's spares.
        var target: [UInt8] = []
        var host: [UInt8] = []
        var logText: [UInt8] = []
        if c.ex === idleExchange {
            keepForReuse(nil)
            swap(&target, &spareTarget)
            swap(&host, &spareHost)
            swap(&logText, &spareLogText)
        } else {
            swap(&target, &c.ex.target)
            swap(&host, &c.ex.host)
            swap(&logText, &c.ex.logText)
            c.ex.cache.releaseDeferred(into: &spareDeferred)
        }
        target.removeAll(keepingCapacity: true)
        host.removeAll(keepingCapacity: true)
        logText.removeAll(keepingCapacity: true)
        retireHead(c.ex)
        let e = Exchange(target: target)
        e.host = host
        e.logText = logText
        exchangeCounter &+= 1
        e.id = exchangeCounter
        e.inExchange = true
        e.startMicros = monotonicMicros()
        e.sentAtStart = c.sent + Int64(c.outBuf?.readableBytes ?? 0)
        e.bytesIn = Int64(headLength)
        e.peer = c.peer
        c.ex = e
        c.timeout = .idle
        c.deadline = 0
        c.rateDeadline = 0
    }

    /// Answers a request we refuse before reading its body: the body (if any)
    /// is never read, so the connection closes after the answer.
    func refuse(_ c: ClientConnection, _ status: Int) {
        refuseUnread(c, status, closing: status == 400)
    }

    /// The same with fields and a body of its own (the request filter's
    /// answers); `closing`: close even when the request had no body.
    func refuseUnread(_ c: ClientConnection, _ status: Int, extra: [UInt8] = [], body: [UInt8]? = nil, closing: Bool = false, contentType: [UInt8]? = nil) {
        if c.ex.head.framing != .none || closing { c.keepAlive = false }
        respondError(c, status, extra: extra, body: body, contentType: contentType)
    }

    /// Replaces the target's path by the route's rewrite of it (the query stays).
    func rewritePath(_ c: ClientConnection, _ rw: PathRewrite) {
        let e = c.ex
        let end = min(e.pathLength, e.target.count)
        guard let path = e.target.withUnsafeBytes({ rw.apply(UnsafeRawBufferPointer(rebasing: $0[..<end])) }) else { return }
        e.target.replaceSubrange(0..<end, with: path.first == 47 ? path : [47] + path)
        e.pathLength = path.first == 47 ? path.count : path.count + 1
    }

    /// An exchange's copy of its head goes back to the buffer pool at the end of
    /// this loop turn (callers up the stack may still read it until then).
    @inline(__always) func retireHead(_ e: Exchange) {
        guard let hb = e.headBytes else { return }
        e.headBytes = nil
        retiredHeads.append(hb)
        e.head.fields = []
    }

    /// 301 (GET/HEAD) or 308 (other methods, which must keep their body) to the same URL over HTTPS.
    func redirectToHTTPS(_ c: ClientConnection) {
        if c.ex.head.framing != .none { c.keepAlive = false }
        let status = (c.ex.method == .get || c.ex.method == .head) ? 301 : 308
        let b = generatedHead(c, status)
        b.append("Location: https://")
        // The normalized host (no port), then ours.
        b.append(c.ex.host)
        if httpsPort != 443 { b.append(byte: 58); b.append(decimal: Int64(httpsPort)) }
        b.append(c.ex.target)
        b.append("\r\n")
        headEnd(c, b, body: .length(0))
        finishExchange(c)
    }

    /// Removes the route prefix from the normalized target (keeping a leading "/").
    func stripPrefix(_ c: ClientConnection, _ route: Route) {
        var cut = route.prefix.count
        if route.prefix.last == 47 { cut -= 1 }
        guard cut > 0 else { return }
        c.ex.target.removeSubrange(0..<cut)
        c.ex.pathLength -= cut
        if c.ex.pathLength == 0 || c.ex.target[0] != 47 {
            c.ex.target.insert(47, at: 0)
            c.ex.pathLength += 1
        }
    }

    func clientTimedOut(_ c: ClientConnection) {
        switch c.timeout {
        case .idle:
            closeClient(c)
        case .header:
            c.keepAlive = false
            if c.inBuf?.isEmpty ?? true { closeClient(c); return }
            beginExchange(c, headLength: 0)
            c.inBuf?.clear()
            respondError(c, 408)
        case .parked:
            // The leader is taking too long: go to the origin alone.
            resume(c, alone: true)
        case .tunnel:
            endTunnel(c, "idle timeout")
        case .body:
            if let o = c.ex.origin { detachOrigin(c, o); closeOrigin(o) }
            c.keepAlive = false
            c.ex.bodyState = .none
            if c.ex.responseStarted { abortClient(c) } else { c.inBuf?.clear(); respondError(c, 408) }
        }
    }

    // MARK: Responses

    /// Whose error pages an error uses: the request's tenant; before one is
    /// known (a malformed head, a host no tenant serves or another tenant's
    /// on this TLS connection: 400, 421), the tenant the TLS handshake's name
    /// chose, else the default tenant.
    func pageTenant(_ c: ClientConnection) -> Tenant? {
        if let t = c.ex.tenant { return t }
        if let name = c.ex.peer.sniTenant ?? c.sniTenant, let t = config.tenants.first(where: { $0.name == name }) { return t }
        return config.defaultTenant >= 0 ? config.tenants[config.defaultTenant] : nil
    }

    /// Sends a short error response generated by edge itself, then finishes the exchange.
    /// `body` replaces the status text (a rule's deny body).
    func respondError(_ c: ClientConnection, _ status: Int, extra: [UInt8] = [], body: [UInt8]? = nil, contentType: [UInt8]? = nil) {
        // The tenant's page for this status, when it has one and no body was given.
        if body == nil, status >= 400, let page = pageTenant(c)?.errorPages[status] {
            return respondError(c, status, extra: extra, body: page, contentType: Array("text/html; charset=utf-8".utf8))
        }
        let reason = HTTPStatus.reason(status)
        let b = generatedHead(c, status)
        if let t = contentType {
            b.append("Content-Type: ")
            b.append(t)
            b.append("\r\n")
        } else {
            b.append("Content-Type: text/plain; charset=utf-8\r\n")
        }
        if !extra.isEmpty { b.append(extra) }
        if status == 405 { b.append("Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\n") }
        if let body {
            headEnd(c, b, body: .length(Int64(body.count)))
            if c.ex.method != .head { b.append(body) }
            finishExchange(c)
            return
        }
        headEnd(c, b, body: .length(Int64(reason.utf8CodeUnitCount + 5)))
        if c.ex.method != .head {
            b.append(decimal: Int64(status))
            b.append(byte: 32)
            b.append(reason)
            b.append("\n")
        }
        finishExchange(c)
    }

    /// Ends the current exchange: logs it, then either waits for the next
    /// request on this connection or closes it once the output is flushed.
    func finishExchange(_ c: ClientConnection) {
        let e = c.ex   // (the next request, started below, gets a new one)
        noLongerWaiting(c)
        if c.orphaned {
            if let o = e.origin { detachOrigin(c, o); if e.bodyDone { releaseOrigin(o) } else { closeOrigin(o) } }
            cacheResponseFinished(c)
            logExchange(c)
            e.inExchange = false
            return retireOrphan(c)
        }
        if let o = e.origin {
            detachOrigin(c, o)
            // An origin that answered before the whole request body was sent
            // cannot take another request on this connection.
            if e.bodyDone { releaseOrigin(o) } else { closeOrigin(o) }
        }
        endBody(c)
        cacheResponseFinished(c)
        e.coder = nil
        releaseLeader(c)
        if e.file.fd >= 0 { e.file.close() }
        if let f = e.fwd { e.fwd = nil; giveBuffer(f) }
        if !e.bodyDone { c.keepAlive = false }
        logExchange(c)
        e.inExchange = false
        retireHead(e)
        if c.keepAlive && !stopping {
            c.phase = .head
            c.timeout = .idle
            c.deadline = now + server.keepAliveTimeoutMillis
            flushClient(c)
            if c.closed { return }
            if !(c.inBuf?.isEmpty ?? true) || c.readable {
                if c.readable { clientReadable(c) } else { processClient(c) }
            }
        } else {
            c.phase = .closing
            c.deadline = 0
            flushClient(c)
        }
    }

    /// Drops the connection at once (client gone, or a response we cannot complete).
    func abortClient(_ c: ClientConnection) {
        // Followers may be reading this response as it is stored: finish it without the client.
        if !c.orphaned, !c.closed, c.ex.coder == nil, let f = c.ex.cache.fill, f.stream != nil, let o = c.ex.origin, o.headDone {
            return orphan(c)
        }
        if let f = c.ex.cache.fill { abandonFill(f) }
        c.ex.cache.fill = nil
        c.ex.stream = nil
        if c.phase == .tunnel && c.ex.tunnelEnd == nil { c.ex.tunnelEnd = "client error" }
        c.ex.coder = nil
        releaseLeader(c)
        if c.ex.inExchange {
            if c.ex.status == 0 { c.ex.status = 499 }
            logExchange(c)
            c.ex.inExchange = false
        }
        closeClient(c)
    }

    /// The leader's client is gone while followers read its response from the
    /// fill: its socket closes now, and the exchange carries on as a background
    /// fill (nothing is written anywhere) until the origin's body is complete.
    func orphan(_ c: ClientConnection) {
        c.stage = .orphaned
        c.ex.cache.background = true
        c.keepAlive = false
        releaseSocket(c, notify: false)
        c.pendingBody = nil
        c.pendingMore = []
        if let b = c.inBuf { c.inBuf = nil; giveBuffer(b) }
        if let b = c.outBuf { c.outBuf = nil; giveBuffer(b) }
        if let b = c.ex.fwd { c.ex.fwd = nil; giveBuffer(b) }
        // The origin may be paused for the client's sake: read on (from the loop, not from here).
        if let o = c.ex.origin {
            o.deadline = originReadDeadline(c)
            resumeOrigins.append(o)
        }
    }

    /// Moves a background refresh off the client's connection into an exchange
    /// of its own: no socket (orphaned from the start), the forward head, the
    /// cache state (the key it leads, the stale entry it revalidates).
    func detachRefresh(from c: ClientConnection) -> ClientConnection {
        let g = ClientConnection(fd: -1, gen: 0, addr: c.addr, peerIP: c.peerIP, trusted: c.trusted)
        g.stage = .orphaned
        g.phase = .proxy
        g.keepAlive = false
        let e = g.ex
        e.head = c.ex.head
        e.isRefresh = true
        e.peer = c.ex.peer
        e.inExchange = true
        e.startMicros = monotonicMicros()
        e.tenant = c.ex.tenant
        e.route = c.ex.route
        e.group = c.ex.group
        e.method = c.ex.method
        e.methodText = c.ex.methodText
        e.host = c.ex.host
        e.target = c.ex.target
        e.pathLength = c.ex.pathLength
        e.balanceKey = c.ex.balanceKey
        e.fwd = c.ex.fwd
        c.ex.fwd = nil
        e.cache = c.ex.cache
        e.cache.status = CacheStatus(.stale, .backgroundRefresh)
        // The client's exchange ends as the stale hit it was.
        c.ex.cache.leaderKey = nil
        c.ex.cache.background = false
        c.ex.cache.revalidating = nil
        return g
    }

    /// The end of an orphaned exchange: whatever it still holds goes.
    func retireOrphan(_ c: ClientConnection) {
        noLongerWaiting(c)
        c.stage = .closed
        if let f = c.ex.cache.fill { c.ex.cache.fill = nil; abandonFill(f) }
        releaseLeader(c)
        if let o = c.ex.origin { detachOrigin(c, o); closeOrigin(o) }
        if let b = c.outBuf { c.outBuf = nil; giveBuffer(b) }
    }
}
