// The client side of a connection: reading and parsing requests, choosing the
// tenant and route, streaming the request body to the origin, and writing
// responses back. Thread rules: see Worker.swift (one worker owns it all).
import Glibc
import EdgeConfig
import EdgeHTTP
import EdgeIO
import EdgeUpstream
import EdgeTLS
import EdgeCache

/// head: reading or between requests; proxy: exchanging with an origin;
/// file: streaming a file; parked: a collapsed follower waiting for its
/// leader (request unread); closing: flushing before close.
/// `stream`: a collapsed follower copying the leader's response as it arrives.
/// `tunnel`: an upgraded (WebSocket) exchange relaying bytes both ways (Tunnel.swift).
/// `awaitBody`: a cached POST waiting for the body its cache key needs.
enum ClientPhase { case head, awaitBody, proxy, file, parked, stream, tunnel, closing }
enum ClientTimeout { case idle, header, body, parked, tunnel }
enum RequestBody { case none, length(Int64), chunked(ChunkedDecoder) }
/// How the response body is framed towards the client.
enum ClientFraming { case asIs, chunked, close }

final class ClientConnection {
    /// The socket (see EdgeIO/OwnedFD.swift); -1 once closed or for an exchange with no client.
    var socket: OwnedFD
    /// The fd number while the socket is open (the slot it occupies).
    @inline(__always) var fd: Int32 { socket.fd }
    let gen: UInt32
    let peerIP: [UInt8]
    let trusted: Bool
    /// Counted in the worker's AddressLimits (released when the socket closes).
    var countedByAddress = false
    var inBuf: IOBuffer?
    var outBuf: IOBuffer?
    /// TLS state when the connection came in on the HTTPS listener.
    var tls: TLSConnection?
    var handshaking = false
    /// The tenant the TLS handshake (SNI) selected, by name (stable across
    /// reloads): requests for other tenants get 421.
    var sniTenant: String?
    var readable = false
    var writable = true
    /// The peer half-closed or hung up (EPOLLRDHUP/EPOLLHUP seen): read to EOF.
    var hangup = false
    var eof = false
    var closed = false
    var inProcess = false
    var phase = ClientPhase.head
    var scan = HeadScan()
    var head = RequestHead()
    var deadline: Int64 = 0
    var timeout = ClientTimeout.idle
    var sendDeadline: Int64 = 0
    /// The request body's minimum rate (ServerConfig.bodyMinRate): when it runs out (0: not measured).
    var rateDeadline: Int64 = 0
    var sent: Int64 = 0
    /// A stored body to write after `outBuf` without copying it (cache hits, plain sockets).
    var pendingBody: StoredResponse?
    var pendingFrom = 0
    var pendingTo = 0

    /// Whether the connection stays open after this exchange (the request's
    /// wish, edge's limits, and how the response was framed).
    var keepAlive = true
    /// A request whose body is part of its cache key (a cached POST) waits
    /// (phase .awaitBody) until this many body bytes have arrived.
    var awaitBytes = 0
    /// The client went away but the origin response goes on into the cache
    /// for the followers reading it (see Worker.orphan); the fd is not ours any more.
    var orphaned = false
    /// The request being served (Exchange.swift); a fresh one per request.
    var ex = Exchange()
    /// An in-memory transport (no socket): what would be written is appended
    /// here instead, all at once. For unit tests of the phases and the writer.
    var sink: IOBuffer?

    init(fd: Int32, gen: UInt32, peerIP: [UInt8], trusted: Bool) {
        self.socket = OwnedFD(fd); self.gen = gen; self.peerIP = peerIP; self.trusted = trusted
    }
}

extension Worker {
    // MARK: Events

    func onClientEvent(_ c: ClientConnection, _ ev: UInt32) {
        if c.handshaking {
            if ev & (Epoll.readable | Epoll.hangup | Epoll.error) != 0 { c.readable = true }
            if ev & Epoll.writable != 0 { c.writable = true }
            if !continueHandshake(c) { return }
        }
        if c.phase == .tunnel {
            if ev & (Epoll.readable | Epoll.hangup | Epoll.error) != 0 { c.readable = true }
            if ev & (Epoll.hangup | Epoll.error) != 0 { c.hangup = true }
            if ev & Epoll.writable != 0 { c.writable = true }
            return pumpTunnel(c)
        }
        if ev & (Epoll.readable | Epoll.hangup | Epoll.error) != 0 {
            c.readable = true
            if ev & (Epoll.hangup | Epoll.error) != 0 { c.hangup = true }
            clientReadable(c)
        }
        if c.closed { return }
        if ev & Epoll.writable != 0 {
            c.writable = true
            clientWritable(c)
        }
    }

    @inline(__always) func wantsClientRead(_ c: ClientConnection) -> Bool {
        switch c.phase {
        case .head: return (c.inBuf?.readableBytes ?? 0) <= limits.maxHeadBytes + 8
        case .awaitBody: return (c.inBuf?.readableBytes ?? 0) < c.awaitBytes
        case .proxy: return !c.ex.bodyDone && (c.inBuf?.readableBytes ?? 0) < highWater
        case .file, .parked, .stream, .tunnel, .closing: return false
        }
    }

    func clientReadable(_ c: ClientConnection) {
        while !c.closed {
            var didRead = false
            while c.readable && wantsClientRead(c) {
                if c.inBuf == nil { c.inBuf = takeBuffer() }
                let b = c.inBuf!
                b.reserve(4096)
                let space = b.writableBytes
                switch clientRead(c, b.writePointer, space) {
                case .bytes(let k):
                    b.writeIndex += k
                    didRead = true
                    if c.rateDeadline != 0 { creditBodyRate(c, k) }
                    // Edge-triggered: a short read drained the socket, and new
                    // data raises a new edge, so skip the read that would EAGAIN.
                    // (Not under TLS: OpenSSL may hold decrypted bytes.)
                    if k < space && !c.hangup && c.tls == nil { c.readable = false }
                case .wouldBlock:
                    c.readable = false
                case .eof:
                    c.eof = true
                    c.readable = false
                case .error:
                    c.eof = true
                    c.readable = false
                }
            }
            processClient(c)
            if !didRead || !c.readable || c.closed { break }
        }
        if c.closed { return }
        if c.eof {
            switch c.phase {
            case .head:
                if c.inBuf?.isEmpty ?? true { c.keepAlive = false; if c.outBuf?.isEmpty ?? true { closeClient(c) } else { c.phase = .closing } }
            case .proxy:
                if !c.ex.bodyDone && (c.inBuf?.isEmpty ?? true) { abortClient(c) } else { c.keepAlive = false }
            case .file, .stream:
                c.keepAlive = false
            case .parked, .awaitBody:
                closeClient(c)
            case .tunnel, .closing:
                break
            }
        }
    }

    func clientWritable(_ c: ClientConnection) {
        flushClient(c)
        if c.closed { return }
        guard (c.outBuf?.readableBytes ?? 0) < highWater, c.pendingBody == nil else { return }
        switch c.phase {
        case .proxy:
            if let o = c.ex.origin, o.headDone { originReadable(o) }
        case .file:
            pumpFile(c)
        case .stream:
            pumpStream(c)
        case .tunnel:
            pumpTunnel(c)
        case .head:
            if c.readable { clientReadable(c) } else { processClient(c) }
        case .awaitBody, .parked, .closing:
            break
        }
    }

    /// Writes pending output; closes a `.closing` connection once drained.
    func flushClient(_ c: ClientConnection) {
        if c.orphaned { return }
        if let sink = c.sink { return flushToSink(c, sink) }
        guard let b = c.outBuf else {
            if c.phase == .closing { closeClient(c) }
            return
        }
        while c.writable && (!b.isEmpty || c.pendingBody != nil) {
            let result: IOResult
            var want = b.readableBytes
            if let s = c.pendingBody {
                let n = c.pendingTo - c.pendingFrom
                if (s.storage.fd >= 0 || c.tls != nil) && b.isEmpty {
                    want = n
                    if c.tls != nil {
                        // TLS encrypts straight from the stored body.
                        result = s.storage.withBytes { clientWrite(c, $0.baseAddress! + c.pendingFrom, n) }
                    } else {
                        // A body in a file goes from its pages to the socket (sendfile), no copy.
                        var off = s.storage.offset + c.pendingFrom
                        result = c.socket.sendfile(from: s.storage.fd, offset: &off, n)
                    }
                } else if s.storage.fd >= 0 || c.tls != nil {
                    result = clientWrite(c, b.readPointer, want)   // the head first
                } else {
                    // The head from outBuf and the stored body in place, in one writev.
                    want += n
                    result = s.storage.withBytes { raw in
                        c.socket.writev(b.readPointer, b.readableBytes, raw.baseAddress! + c.pendingFrom, n)
                    }
                }
            } else {
                result = clientWrite(c, b.readPointer, want)
            }
            switch result {
            case .bytes(let k):
                let fromHead = min(k, b.readableBytes)
                b.consume(fromHead)
                if c.pendingBody != nil {
                    c.pendingFrom += k - fromHead
                    if c.pendingFrom >= c.pendingTo { c.pendingBody = nil }
                }
                c.sent += Int64(k)
                // A short plain write means the socket buffer is full (EPOLLOUT follows).
                // Not under TLS: with partial writes OpenSSL returns after each record,
                // with room left; only WANT_WRITE (.wouldBlock) means full there.
                if k < want && c.tls == nil { c.writable = false }
            case .wouldBlock, .eof:
                c.writable = false
            case .error:
                abortClient(c)
                return
            }
        }
        if b.isEmpty && c.pendingBody == nil {
            c.sendDeadline = 0
            if c.phase == .closing { closeClient(c); return }
            if c.phase == .head && (c.inBuf?.isEmpty ?? true) {
                // Idle between requests: hand the buffers back (an idle connection costs no buffer memory).
                c.outBuf = nil
                giveBuffer(b)
                if let i = c.inBuf { c.inBuf = nil; giveBuffer(i) }
                if c.ex.target.capacity > 0 { c.ex.target = [] }
            }
        } else if c.sendDeadline == 0 {
            c.sendDeadline = now + server.sendTimeoutMillis
        }
    }

    /// The in-memory transport's flush: everything pending is "written" at once.
    func flushToSink(_ c: ClientConnection, _ sink: IOBuffer) {
        if let b = c.outBuf { sink.append(b.readView); b.clear() }
        if let s = c.pendingBody {
            s.storage.withBytes { sink.append(UnsafeRawBufferPointer(rebasing: $0[c.pendingFrom..<c.pendingTo])) }
            c.pendingBody = nil
        }
        c.sendDeadline = 0
        if c.phase == .closing { closeClient(c) }
    }

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
                    // The exchange has its own copy of the head; give the parse storage back.
                    swap(&c.head.fields, &scratchFields)
                }
            case .awaitBody:
                // A cached POST: once its body is all here, it goes on to the cache lookup.
                guard (c.inBuf?.readableBytes ?? 0) >= c.awaitBytes else { return }
                c.awaitBytes = 0
                c.phase = .head
                continueRequest(c)
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
        // The target's storage moves on (unshared, so clearing it keeps it).
        var target: [UInt8] = []
        swap(&target, &c.ex.target)
        target.removeAll(keepingCapacity: true)
        retireHead(c.ex)
        let e = Exchange(target: target)
        exchangeCounter &+= 1
        e.id = exchangeCounter
        e.inExchange = true
        e.startMicros = monotonicMicros()
        e.sentAtStart = c.sent + Int64(c.outBuf?.readableBytes ?? 0)
        e.bytesIn = Int64(headLength)
        c.ex = e
        c.timeout = .idle
        c.deadline = 0
        c.rateDeadline = 0
    }

    /// Answers a request we refuse before reading its body: the body (if any)
    /// is never read, so the connection closes after the answer.
    func refuse(_ c: ClientConnection, _ status: Int) {
        if c.ex.head.framing != .none || status == 400 { c.keepAlive = false }
        respondError(c, status)
    }

    /// An exchange's copy of its head goes back to the buffer pool at the end of
    /// this loop turn (callers up the stack may still read it until then).
    @inline(__always) func retireHead(_ e: Exchange) {
        guard let hb = e.headBytes else { return }
        e.headBytes = nil
        retiredHeads.append(hb)
        retiredFields.append(e.head.fields)
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

    /// Moves request body bytes from the client buffer to the origin buffer.
    func pumpRequestBody(_ c: ClientConnection) {
        guard let o = c.ex.origin, o.connected, !c.ex.bodyDone, let ib = c.inBuf else { return }
        if o.outBuf == nil { o.outBuf = takeBuffer() }
        let ob = o.outBuf!
        var progressed = true
        while progressed && !c.ex.bodyDone && !c.closed && o.client === c {
            progressed = false
            while ob.readableBytes < highWater && !ib.isEmpty && !c.ex.bodyDone {
                c.ex.bodyStarted = true
                switch c.ex.body {
                case .none:
                    c.ex.bodyDone = true
                case .length(let rem):
                    let take = Int(min(rem, Int64(ib.readableBytes), Int64(highWater)))
                    ob.append(ib.readPointer, count: take)
                    ib.consume(take)
                    c.ex.bytesIn += Int64(take)
                    let left = rem - Int64(take)
                    c.ex.body = .length(left)
                    if left == 0 { c.ex.bodyDone = true }
                    progressed = true
                case .chunked(var dec):
                    let (ev, next) = dec.decode(ib.readView, from: 0)
                    c.ex.body = .chunked(dec)
                    switch ev {
                    case .data(let r):
                        c.ex.bodyBytes += Int64(r.count)
                        if c.ex.bodyBytes > (c.ex.tenant?.limits.maxBodyBytes ?? 0) { return requestBodyFailed(c, 413) }
                        // Re-framed towards the origin (the forward head says chunked).
                        forwardChunk(UnsafeRawBufferPointer(rebasing: ib.readView[r]), to: ob)
                    case .end:
                        forwardChunkedEnd(to: ob)
                        c.ex.bodyDone = true
                    case .error:
                        return requestBodyFailed(c, 400)
                    case .needMore:
                        break
                    }
                    ib.consume(next)
                    c.ex.bytesIn += Int64(next)
                    progressed = next > 0
                    if case .needMore = ev { progressed = false }
                }
            }
            flushOrigin(o)
            if o.closed || c.closed { return }
            if c.readable && !c.ex.bodyDone && ib.readableBytes < highWater {
                // Read more body now that there is room.
                var readAny = false
                while c.readable && ib.readableBytes < highWater {
                    ib.reserve(4096)
                    let space = ib.writableBytes
                    switch clientRead(c, ib.writePointer, space) {
                    case .bytes(let k):
                        ib.writeIndex += k
                        readAny = true
                        if c.rateDeadline != 0 { creditBodyRate(c, k) }
                        if k < space && !c.hangup && c.tls == nil { c.readable = false }
                    case .wouldBlock: c.readable = false
                    case .eof, .error: c.readable = false; c.eof = true
                    }
                }
                if readAny { progressed = true }
            }
        }
        if c.ex.bodyDone {
            if c.timeout == .body { c.deadline = 0 }
            c.rateDeadline = 0
        } else {
            c.timeout = .body
            c.deadline = now + server.bodyIdleTimeoutMillis
            if c.eof && ib.isEmpty { abortClient(c) }
        }
    }

    /// Body bytes earn time at the minimum rate, banked up to the grace period.
    @inline(__always) func creditBodyRate(_ c: ClientConnection, _ bytes: Int) {
        let earned = Int64(bytes) * 1000 / server.bodyMinRate
        c.rateDeadline = min(c.rateDeadline + earned, now + server.bodyRateGraceMillis)
    }

    /// Called by the sweep for a body still arriving: 408 once the client has
    /// sent too little for too long. While edge itself is not reading (the
    /// origin pushes back and the input buffer is full) the clock does not run.
    func checkBodyRate(_ c: ClientConnection) {
        guard c.phase == .proxy, !c.ex.bodyDone else { c.rateDeadline = 0; return }
        if (c.inBuf?.readableBytes ?? 0) >= highWater {
            c.rateDeadline = max(c.rateDeadline, now + server.bodyRateGraceMillis)
        } else if now >= c.rateDeadline {
            c.rateDeadline = 0
            c.timeout = .body
            clientTimedOut(c)
        }
    }

    /// The request body was malformed or too large mid-stream.
    func requestBodyFailed(_ c: ClientConnection, _ status: Int) {
        if let o = c.ex.origin { detachOrigin(c, o); closeOrigin(o) }
        c.keepAlive = false
        c.ex.bodyDone = true
        c.inBuf?.clear()
        if c.ex.responseStarted { abortClient(c) } else { respondError(c, status) }
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
            c.ex.bodyDone = true
            if c.ex.responseStarted { abortClient(c) } else { c.inBuf?.clear(); respondError(c, 408) }
        }
    }

    // MARK: Responses

    /// Sends a short error response generated by edge itself, then finishes the exchange.
    func respondError(_ c: ClientConnection, _ status: Int) {
        let reason = HTTPStatus.reason(status)
        let b = generatedHead(c, status)
        b.append("Content-Type: text/plain; charset=utf-8\r\n")
        if status == 405 { b.append("Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\n") }
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
        noLongerWaiting(c)
        if c.orphaned {
            if let o = c.ex.origin { detachOrigin(c, o); if c.ex.bodyDone { releaseOrigin(o) } else { closeOrigin(o) } }
            cacheResponseFinished(c)
            logExchange(c)
            c.ex.inExchange = false
            return retireOrphan(c)
        }
        if let o = c.ex.origin {
            detachOrigin(c, o)
            // An origin that answered before the whole request body was sent
            // cannot take another request on this connection.
            if c.ex.bodyDone { releaseOrigin(o) } else { closeOrigin(o) }
        }
        endBody(c)
        cacheResponseFinished(c)
        c.ex.coder = nil
        releaseLeader(c)
        if c.ex.file.fd >= 0 { c.ex.file.close() }
        if let f = c.ex.fwd { c.ex.fwd = nil; giveBuffer(f) }
        if !c.ex.bodyDone { c.keepAlive = false }
        logExchange(c)
        c.ex.inExchange = false
        retireHead(c.ex)
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

    func closeClient(_ c: ClientConnection) {
        guard !c.closed else { return }
        noLongerWaiting(c)
        if c.orphaned { return retireOrphan(c) }
        c.closed = true
        if c.phase == .tunnel { leaveTunnel(c) }
        releaseLeader(c)
        if let o = c.ex.origin { detachOrigin(c, o); closeOrigin(o) }
        if c.ex.file.fd >= 0 { c.ex.file.close() }
        releaseSocket(c, notify: true)
        if let b = c.inBuf { c.inBuf = nil; giveBuffer(b) }
        if let b = c.outBuf { c.outBuf = nil; giveBuffer(b) }
        if let b = c.ex.fwd { c.ex.fwd = nil; giveBuffer(b) }
        c.pendingBody = nil
    }

    /// Gives up the client's socket in the one safe order: the slot freed, TLS
    /// close_notify sent (`notify`) while the fd is still this connection's, the
    /// SSL freed, and the fd closed last. Nothing can write through it after.
    func releaseSocket(_ c: ClientConnection, notify: Bool) {
        if c.sink != nil { return }   // an in-memory connection has no socket
        slots[Int(c.fd)] = .free
        if let t = c.tls {
            if notify && !c.handshaking { t.shutdown() }
            c.tls = nil
        }
        c.socket.close()
        if c.countedByAddress { addressLimits.release(c.peerIP) }
        clientCount -= 1
        workerCounters.set(WorkerSlot.openConnections, clientCount)
    }

    /// The leader's client is gone while followers read its response from the
    /// fill: its socket closes now, and the exchange carries on as a background
    /// fill (nothing is written anywhere) until the origin's body is complete.
    func orphan(_ c: ClientConnection) {
        c.orphaned = true
        c.ex.cache.background = true
        c.keepAlive = false
        releaseSocket(c, notify: false)
        c.pendingBody = nil
        if let b = c.inBuf { c.inBuf = nil; giveBuffer(b) }
        if let b = c.outBuf { c.outBuf = nil; giveBuffer(b) }
        if let b = c.ex.fwd { c.ex.fwd = nil; giveBuffer(b) }
        // The origin may be paused for the client's sake: read on (from the loop, not from here).
        if let o = c.ex.origin {
            o.deadline = now + (c.ex.tenant?.limits.originReadTimeoutMillis ?? 60_000)
            resumeOrigins.append(o)
        }
    }

    /// Moves a background refresh off the client's connection into an exchange
    /// of its own: no socket (orphaned from the start), the forward head, the
    /// cache state (the key it leads, the stale entry it revalidates).
    func detachRefresh(from c: ClientConnection) -> ClientConnection {
        let g = ClientConnection(fd: -1, gen: 0, peerIP: c.peerIP, trusted: c.trusted)
        g.orphaned = true
        g.phase = .proxy
        g.keepAlive = false
        let e = g.ex
        e.head = c.ex.head
        e.isRefresh = true
        e.inExchange = true
        e.startMicros = monotonicMicros()
        e.tenant = c.ex.tenant
        e.route = c.ex.route
        e.method = c.ex.method
        e.methodText = c.ex.methodText
        e.host = c.ex.host
        e.target = c.ex.target
        e.pathLength = c.ex.pathLength
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
        c.closed = true
        if let f = c.ex.cache.fill { c.ex.cache.fill = nil; abandonFill(f) }
        releaseLeader(c)
        if let o = c.ex.origin { detachOrigin(c, o); closeOrigin(o) }
        if let b = c.outBuf { c.outBuf = nil; giveBuffer(b) }
    }

    // MARK: TLS

    @inline(__always) func clientRead(_ c: ClientConnection, _ p: UnsafeMutableRawPointer, _ n: Int) -> IOResult {
        if let t = c.tls { precondition(c.socket.isOpen); return t.read(p, n) }
        return c.socket.read(p, n)
    }

    @inline(__always) func clientWrite(_ c: ClientConnection, _ p: UnsafeRawPointer, _ n: Int) -> IOResult {
        if let t = c.tls { precondition(c.socket.isOpen); return t.write(p, n) }
        return c.socket.write(p, n)
    }

    /// Drives the TLS handshake; true once it is done and requests may be read.
    func continueHandshake(_ c: ClientConnection) -> Bool {
        guard let t = c.tls else { return true }
        switch t.handshake() {
        case .done:
            workerCounters.add(WorkerSlot.tlsHandshakes, 1)
            if t.resumed { workerCounters.add(WorkerSlot.tlsResumed, 1) }
            c.handshaking = false
            c.sniTenant = t.tenantName
            c.readable = true   // records may already be buffered
            return true
        case .wantRead:
            c.readable = false
            return false
        case .wantWrite:
            c.writable = false
            return false
        case .failed(let why):
            workerCounters.add(WorkerSlot.tlsFailures, 1)
            logHandshakeFailure(sni: t.serverName, tenant: t.tenantName, client: c.peerIP, error: why)
            c.tls = nil   // no close_notify after a failed handshake
            closeClient(c)
            return false
        }
    }
}
