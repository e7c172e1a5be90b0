// The client side of a connection, the HTTP/1 transport: the socket and its
// TLS, reading, the buffers, writing what the writer (HTTP1Writer.swift) put
// out (writev and sendfile of stored bodies), readiness and closing.
// Requests and their exchanges: Exchanges.swift, RequestBody.swift.
// Thread rules: see Worker.swift (one worker owns it all).
import Glibc
import EdgeConfig
import EdgeHTTP
import EdgeIO
import EdgeUpstream
import EdgeTLS
import EdgeCache
import EdgeProtect

/// head: reading or between requests; proxy: exchanging with an origin;
/// file: streaming a file; parked: a collapsed follower waiting for its
/// leader (request unread); closing: flushing before close.
/// `stream`: a collapsed follower copying the leader's response as it arrives.
/// `tunnel`: an upgraded (WebSocket) exchange relaying bytes both ways (Tunnel.swift).
/// `awaitBody`: a cached POST waiting for the body its cache key needs.
enum ClientPhase { case head, awaitBody, proxy, file, parked, stream, tunnel, closing }
enum ClientTimeout { case idle, header, body, parked, tunnel }
enum RequestBody { case none, length(Int64), chunked(ChunkedDecoder) }
/// Where a client connection's socket is: shaking hands (TLS), open for
/// HTTP, given up while its exchange goes on without it (an orphaned fill:
/// Worker.orphan), or closed. One value; the Booleans below are views of it.
/// `proxyHeader`: waiting for the PROXY protocol header that names the client
/// (ServerConfig.proxyProtocol), before TLS or HTTP.
enum SocketStage { case proxyHeader, handshaking, open, orphaned, closed }
/// How the response body is framed towards the client.
enum ClientFraming { case asIs, chunked, close }

final class ClientConnection {
    /// The socket (see EdgeIO/OwnedFD.swift); -1 once closed or for an exchange with no client.
    var socket: OwnedFD
    /// The fd number while the socket is open (the slot it occupies).
    @inline(__always) var fd: Int32 { socket.fd }
    let gen: UInt32
    /// The client's address as text (logs, X-Forwarded-For) and as a value
    /// (access lists, limits); a PROXY header replaces both.
    var peerIP: [UInt8]
    var addr: IPAddress
    var trusted: Bool
    /// Requests begun on this connection (ServerConfig.maxRequestsPerConnection).
    var requests = 0
    /// In `.proxyHeader`: the connection came in on the HTTPS listener (TLS follows the header).
    var secureAfterHeader = false
    /// Counted in the worker's AddressLimits (released when the socket closes).
    var countedByAddress = false
    var inBuf: IOBuffer?
    var outBuf: IOBuffer?
    /// TLS state when the connection came in on the HTTPS listener.
    var tls: TLSConnection?
    var stage = SocketStage.open
    @inline(__always) var handshaking: Bool { stage == .handshaking }
    /// The client went away but the origin response goes on into the cache
    /// for the followers reading it (see Worker.orphan); the fd is not ours any more.
    @inline(__always) var orphaned: Bool { stage == .orphaned }
    @inline(__always) var closed: Bool { stage == .closed }
    /// The tenant the TLS handshake (SNI) selected, by name (stable across
    /// reloads): requests for other tenants get 421.
    var sniTenant: String?
    /// The server name the client's handshake sent (empty: none), for rules.
    var sniName: [UInt8] = []
    var readable = false
    var writable = true
    /// The peer half-closed or hung up (EPOLLRDHUP/EPOLLHUP seen): read to EOF.
    var hangup = false
    var eof = false
    var inProcess = false
    var phase = ClientPhase.head
    var scan = HeadScan()
    var head = RequestHead()
    var deadline: Int64 = 0
    var timeout = ClientTimeout.idle
    /// When it last went idle (accepted, or its last response written): a
    /// connection idle for Worker.parkAfterMillis is parked.
    var idleSince: Int64 = 0
    var sendDeadline: Int64 = 0
    /// The request body's minimum rate (ServerConfig.bodyMinRate): when it runs out (0: not measured).
    var rateDeadline: Int64 = 0
    var sent: Int64 = 0
    /// A stored body to write after `outBuf` without copying it (cache hits, plain sockets).
    var pendingBody: StoredResponse?
    var pendingFrom = 0
    var pendingTo = 0
    /// No write of `pendingBody` was tried yet (its pages, when a disk read
    /// just brought them in, are in the page cache: see flushClient).
    var pendingFirst = false
    /// Stored bodies to write after `pendingBody`, in order (a response
    /// combined from slices: EdgeProxy/Slices.swift). Empty for every other.
    var pendingMore: [(StoredResponse, Int, Int)] = []
    /// A checked span of a streamed body for flushClient's next send, from its
    /// file by sendfile (plain sockets: pumpStream sets it, once `outBuf` is
    /// out; the exchange's stream keeps the file open). One send takes it,
    /// whole or not: the rest is asked of the stream again, pages checked again.
    var spanFD: Int32 = -1
    var spanOffset = 0
    var spanLeft = 0

    /// Whether the connection stays open after this exchange (the request's
    /// wish, edge's limits, and how the response was framed).
    var keepAlive = true
    /// A request whose body is part of its cache key (a cached POST) waits
    /// (phase .awaitBody) until this many body bytes have arrived.
    var awaitBytes = 0
    /// The request being served (Exchange.swift); a fresh one per request
    /// (beginExchange). A connection between requests holds its worker's
    /// placeholder instead (Worker.idleExchange: never in an exchange, its
    /// fields never set), not its last exchange: an exchange is ~700 bytes,
    /// with its strings more, and an idle keep-alive connection keeps none.
    var ex: Exchange

    /// Lets go of a finished exchange when the connection goes idle (nothing
    /// of it is still in use: no origin, file, stream, fill or forward buffer).
    func dropFinishedExchange(for placeholder: Exchange) {
        let e = ex
        guard e !== placeholder, !e.inExchange, e.origin == nil, e.fwd == nil, e.file.fd < 0, e.stream == nil, e.cache.fill == nil,
              e.headBytes == nil else { return }
        ex = placeholder
    }
    /// An in-memory transport (no socket): what would be written is appended
    /// here instead, all at once. For unit tests of the phases and the writer.
    var sink: IOBuffer?
    /// HTTP/2 (HTTP2.swift): the session this TLS connection carries, or, for a
    /// stream connection, the session and stream it serves and its response
    /// on the way back into frames.
    var h2: H2Session?
    var h2Parent: H2Session?
    var h2Stream: UInt32 = 0
    var h2Out = H2StreamOut()
    /// The exchange found no room and waits for the client's window.
    var h2Waiting = false
    /// A stream connection whose carrier is TLS (not h2c on the plain listener).
    var h2OverTLS = false
    /// A WebSocket over HTTP/2 stream (RFC 8441), and whether the client ended its side.
    var h2Tunnel = false
    var h2InputEnded = false

    /// What its exchanges know of where they came from (Exchange.Peer).
    var peer: Peer { Peer(ip: peerIP, trusted: trusted, https: tls != nil || h2OverTLS, sniTenant: sniTenant, sni: sniName) }

    init(fd: Int32, gen: UInt32, addr: IPAddress, peerIP: [UInt8], trusted: Bool, exchange: Exchange = Exchange()) {
        self.socket = OwnedFD(fd); self.gen = gen; self.addr = addr; self.peerIP = peerIP; self.trusted = trusted; ex = exchange
    }
}

extension Worker {
    // MARK: Events

    func onClientEvent(_ c: ClientConnection, _ ev: UInt32) {
        if c.stage == .proxyHeader {
            if ev & (Epoll.readable | Epoll.hangup | Epoll.error) != 0 { c.readable = true }
            if ev & (Epoll.hangup | Epoll.error) != 0 { c.hangup = true }
            if ev & Epoll.writable != 0 { c.writable = true }
            guard readProxyHeader(c) else { return }
        }
        if c.handshaking {
            if ev & (Epoll.readable | Epoll.hangup | Epoll.error) != 0 { c.readable = true }
            if ev & Epoll.writable != 0 { c.writable = true }
            if !continueHandshake(c) { return }
            if let h = startH2IfNegotiated(c) { return onH2Event(c, h, ev) }
        }
        if let h = c.h2 { return onH2Event(c, h, ev) }
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
                if readClientOnce(c, c.inBuf!) > 0 { didRead = true }
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

    /// One read from the client into `b` (4 KiB reserved at least): the bytes
    /// are credited to the body's minimum rate, readiness and EOF noted.
    /// Returns how many bytes came (0: none).
    @inline(__always) func readClientOnce(_ c: ClientConnection, _ b: IOBuffer) -> Int {
        b.reserve(4096)
        let space = b.writableBytes
        switch clientRead(c, b.writePointer, space) {
        case .bytes(let k):
            b.writeIndex += k
            if c.rateDeadline != 0 { creditBodyRate(c, k) }
            // Edge-triggered: a short read drained the socket, and new
            // data raises a new edge, so skip the read that would EAGAIN.
            // Under TLS, only when OpenSSL's own last socket read was short and
            // it holds nothing back (TLSConnection.drained).
            if k < space && !c.hangup && (c.tls?.drained ?? true) { c.readable = false }
            return k
        case .wouldBlock:
            c.readable = false
        case .eof, .error:
            c.eof = true
            c.readable = false
        }
        return 0
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
        while c.writable && (!b.isEmpty || c.pendingBody != nil || c.spanLeft > 0) {
            let result: IOResult
            var want = b.readableBytes
            var spanSend = false
            if let s = c.pendingBody {
                let n = c.pendingTo - c.pendingFrom
                // A body in a file goes from its pages to a plain socket (sendfile),
                // no copy: a memory file always; the disk segment an answer read
                // it from, by its first write (the pages were just read) or, when
                // the client held it back, while the page cache still holds them.
                var justRead = false
                if c.tls == nil && c.ex.cache.status.detail == .disk {
                    justRead = c.pendingFirst || s.bodySegmentResident(c.pendingFrom, n)
                }
                let file = c.tls == nil ? s.bodyFile(c.pendingFrom, n, justRead: justRead) : nil
                if (file != nil || c.tls != nil) && b.isEmpty {
                    want = n
                    if let file {
                        var off = file.offset
                        c.pendingFirst = false
                        result = withExtendedLifetime(file.holder) { c.socket.sendfile(from: file.fd, offset: &off, n) }
                    } else {
                        // TLS encrypts straight from the stored body.
                        result = s.withBody { clientWrite(c, $0.baseAddress! + c.pendingFrom, n) }
                    }
                } else if file != nil {
                    // The head first, on its own: held back for the body with
                    // MSG_MORE it cost the sendfile that followed a third more
                    // CPU on loopback (64 KiB disk hits 17-18.6 k -> 23-25 k
                    // req/cpu-s, 256 KiB memory-file hits 18.5 k -> 21-22 k).
                    result = c.socket.write(b.readPointer, want)
                } else if c.tls != nil {
                    result = clientWrite(c, b.readPointer, want)   // the head first
                } else {
                    // The head from outBuf and the stored body in place, in one writev.
                    want += n
                    result = s.withBody { raw in
                        c.socket.writev(b.readPointer, b.readableBytes, raw.baseAddress! + c.pendingFrom, n)
                    }
                }
            } else if c.spanLeft > 0 && b.isEmpty {
                // A streamed body's checked span, from its file's pages (the head went first, on its own).
                want = c.spanLeft
                spanSend = true
                var off = c.spanOffset
                result = c.socket.sendfile(from: c.spanFD, offset: &off, want)
            } else {
                result = clientWrite(c, b.readPointer, want)
            }
            switch result {
            case .bytes(let k):
                let fromHead = min(k, b.readableBytes)
                b.consume(fromHead)
                if c.pendingBody != nil {
                    c.pendingFrom += k - fromHead
                    if c.pendingFrom >= c.pendingTo { nextPendingBody(c) }
                } else if spanSend {
                    c.spanLeft = 0
                    if k == 0 { abortClient(c); return }   // the file ended under us
                    c.ex.streamOffset += k
                    c.ex.stream?.sentFromFile(k)
                }
                c.sent += Int64(k)
                // A short plain write means the socket buffer is full (EPOLLOUT follows).
                // Not under TLS: with partial writes OpenSSL returns after each record,
                // with room left; only WANT_WRITE (.wouldBlock) means full there.
                if k < want && c.tls == nil { c.writable = false }
            case .wouldBlock, .eof:
                c.spanLeft = 0
                c.writable = false
            case .error:
                abortClient(c)
                return
            }
        }
        if b.isEmpty && c.pendingBody == nil {
            c.sendDeadline = 0
            if c.phase == .closing { closeClient(c); return }
            if c.phase == .head && (c.inBuf?.isEmpty ?? true) { wentIdle(c) }
        } else if c.sendDeadline == 0 {
            c.sendDeadline = now + server.sendTimeoutMillis
        }
    }

    /// The in-memory transport's flush: everything pending is "written" at once,
    /// except that an HTTP/2 stream takes a stored body only as far as its room
    /// (what waits for the client's window counted): a large hit to a slow
    /// reader is copied from the store as the window opens (h2PumpOnce comes
    /// back here), never whole into the stream's buffer.
    func flushToSink(_ c: ClientConnection, _ sink: IOBuffer) {
        if let b = c.outBuf { sink.append(b.readView); b.clear() }
        var room = c.h2Parent == nil ? Int.max : h2Room(c, c.h2Out)
        while let s = c.pendingBody, room > 0 {
            let to = c.pendingTo - c.pendingFrom > room ? c.pendingFrom + room : c.pendingTo
            s.withBody { sink.append(UnsafeRawBufferPointer(rebasing: $0[c.pendingFrom..<to])) }
            room -= to - c.pendingFrom
            c.pendingFrom = to
            if to == c.pendingTo { nextPendingBody(c) }
        }
        c.sendDeadline = 0
        if c.pendingBody == nil {
            if c.phase == .closing { closeClient(c) }
            if c.phase == .head && (c.inBuf?.isEmpty ?? true) { wentIdle(c) }
        } else {
            c.h2Waiting = true   // the rest when the stream has room again (h2PumpOnce)
        }
        if c.h2Parent != nil { h2StreamWrote(c) }   // an HTTP/2 stream: into frames
    }

    /// Idle between requests, everything written: the buffers go back to the
    /// pool and the finished exchange is let go (an idle connection costs
    /// neither buffer nor exchange memory).
    func wentIdle(_ c: ClientConnection) {
        c.idleSince = now
        if let b = c.outBuf { c.outBuf = nil; giveBuffer(b) }
        if let i = c.inBuf { c.inBuf = nil; giveBuffer(i) }
        let finished = c.ex
        c.dropFinishedExchange(for: idleExchange)
        if finished !== c.ex { keepForReuse(finished) }
    }

    /// An exchange let go: its byte stores (target, host, log text) become the
    /// worker's spares once nothing else holds it. Frames up the stack may still
    /// hold it now, so it waits here until the next exchange begins or the next
    /// one is let go (a later loop turn), and is checked for other holders then.
    func keepForReuse(_ e: Exchange?) {
        if var d = lastDropped.take(), isKnownUniquelyReferenced(&d) {
            if d.target.capacity > spareTarget.capacity { swap(&d.target, &spareTarget) }
            if d.host.capacity > spareHost.capacity { swap(&d.host, &spareHost) }
            if d.logText.capacity > spareLogText.capacity { swap(&d.logText, &spareLogText) }
            d.cache.releaseDeferred(into: &spareDeferred)
        }
        lastDropped = e
    }

    func closeClient(_ c: ClientConnection) {
        guard !c.closed else { return }
        noLongerWaiting(c)
        if c.orphaned { return retireOrphan(c) }
        let notify = !c.handshaking   // no close_notify in the middle of a handshake
        c.stage = .closed
        if let h = c.h2 {
            // A carrier: its streams' exchanges end with it.
            c.h2 = nil
            let streams = h.streams
            h.streams = [:]
            for s in streams.values where !s.closed { abortClient(s) }
        }
        if c.phase == .tunnel { leaveTunnel(c) }
        releaseLeader(c)
        if let o = c.ex.origin { detachOrigin(c, o); closeOrigin(o) }
        if c.ex.file.fd >= 0 { c.ex.file.close() }
        releaseSocket(c, notify: notify)
        if let b = c.inBuf { c.inBuf = nil; giveBuffer(b) }
        if let b = c.outBuf { c.outBuf = nil; giveBuffer(b) }
        if let b = c.ex.fwd { c.ex.fwd = nil; giveBuffer(b) }
        c.pendingBody = nil
        c.pendingMore = []
    }

    /// Gives up the client's socket in the one safe order: the slot freed, TLS
    /// close_notify sent (`notify`) while the fd is still this connection's, the
    /// SSL freed, and the fd closed last. Nothing can write through it after.
    func releaseSocket(_ c: ClientConnection, notify: Bool) {
        if c.sink != nil { return }   // an in-memory connection has no socket
        slots[Int(c.fd)] = .free
        if let t = c.tls {
            if notify { t.shutdown() }
            c.tls = nil
        }
        c.socket.close()
        if c.countedByAddress { addressLimits.release(c.peerIP) }
        clientCount -= 1
        workerCounters.set(WorkerSlot.openConnections, clientCount)
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
            c.stage = .open
            c.sniTenant = t.tenantName
            c.sniName = t.serverName.map { Array($0.utf8) } ?? []
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
