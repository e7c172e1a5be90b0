// The origin side: connection pools, connecting with failover, reading and
// relaying responses. Thread rules: see Worker.swift.
import Glibc
import EdgeConfig
import EdgeHTTP
import EdgeIO
import EdgeUpstream
import EdgeTLS

enum OriginTimeout { case connect, read, idle }
enum OriginStage { case connecting, handshaking, ready, closed }
enum ResponseBody { case none, length(Int64), chunked(ChunkedDecoder), untilClose }
enum OriginFailure {
    case connect, connectTimeout, tls, readTimeout, closed, broken

    /// The access log's "error" for it.
    var logText: StaticString {
        switch self {
        case .connect: return "connect failed"
        case .connectTimeout: return "connect timeout"
        case .tls: return "TLS handshake failed"
        case .readTimeout: return "read timeout"
        case .closed: return "closed before the response"
        case .broken: return "malformed response"
        }
    }
}

/// One worker's origin state for one config generation: idle pools, balancers,
/// active counts and saved TLS sessions, all indexed by the ids of that config.
/// A reload gives the worker a new one; connections keep theirs until they end.
final class OriginPools {
    var idle: [[OriginConnection]]
    var groupActive: [[Int]]
    var balancers: [Balancer]
    var sessions: [TLSSession?]
    /// Per group: retries this worker may still make. Each request earns the
    /// group's budget fraction (up to a cap); each retry spends one.
    var retryTokens: [Double]
    static let retryReserve = 3.0, retryCap = 100.0

    init(config: RuntimeConfig) {
        idle = Array(repeating: [], count: config.servers.count)
        groupActive = config.groups.map { g in Array(repeating: 0, count: g.health.count) }
        balancers = config.groups.map { Balancer($0.balance, seed: UInt64(UInt(bitPattern: ObjectIdentifier($0).hashValue)) &+ UInt64(monotonicMillis())) }
        sessions = Array(repeating: nil, count: config.servers.count)
        retryTokens = Array(repeating: OriginPools.retryReserve, count: config.groups.count)
    }

    /// A request's first attempt earns its group's budget fraction.
    @inline(__always) func earnRetry(_ g: OriginGroup) {
        retryTokens[g.id] = min(OriginPools.retryCap, retryTokens[g.id] + g.retryBudget)
    }

    /// Whether a retry is within the budget (and takes its token).
    @inline(__always) func spendRetry(_ g: OriginGroup) -> Bool {
        guard retryTokens[g.id] >= 1 else { return false }
        retryTokens[g.id] -= 1
        return true
    }
}

final class OriginConnection {
    /// The socket (see EdgeIO/OwnedFD.swift).
    var socket: OwnedFD
    @inline(__always) var fd: Int32 { socket.fd }
    let gen: UInt32
    let pools: OriginPools
    let server: OriginServer
    let group: OriginGroup
    let groupIndex: Int
    var inBuf: IOBuffer?
    var outBuf: IOBuffer?
    var readable = false
    var writable = false
    var hangup = false
    /// Connecting (TCP), shaking hands (https origins), ready for HTTP bytes, or closed.
    var stage = OriginStage.connecting
    /// TCP is up (TLS may still be shaking hands).
    @inline(__always) var tcpConnected: Bool { stage == .handshaking || stage == .ready }
    /// Ready for HTTP bytes: TCP up and, for https origins, the handshake done.
    @inline(__always) var connected: Bool { stage == .ready }
    @inline(__always) var closed: Bool { stage == .closed }
    var tls: TLSConnection?
    var eof = false
    var client: ClientConnection?
    var head = ResponseHead()
    var scan = HeadScan()
    var headDone = false
    var requestWasHead = false
    var body = ResponseBody.none
    var keepAlive = true
    var requests = 0
    var gotBytes = false
    var deadline: Int64 = 0
    var timeout = OriginTimeout.connect
    var idleTimeoutMillis: Int64 = 30_000

    init(fd: Int32, gen: UInt32, pools: OriginPools, server: OriginServer, group: OriginGroup, groupIndex: Int) {
        self.socket = OwnedFD(fd); self.gen = gen; self.pools = pools; self.server = server; self.group = group; self.groupIndex = groupIndex
    }
}

extension Worker {
    // MARK: Choosing and connecting

    /// Sends the current request of `c` to a server of its group: a pooled
    /// connection when there is one, else a new one; on a connect error the
    /// next server is tried. Answers 502 when every server failed.
    func connectOrigin(_ c: ClientConnection, ids: [Int]) {
        var group = c.ex.group!
        var ids = ids
        while true {
            // Every server tried or out of rotation: the fallback group, if
            // any (a shield group's origin), with a fresh start there.
            if let fid = group.fallbackID, !hasCandidate(group, tried: c.ex.tried), case .http(let fids) = config.groups[fid].kind {
                let fb = config.groups[fid]
                if fb.balance.key != group.balance.key || fb.balance.policy != .hash { c.ex.balanceKey = nil }
                group = fb
                ids = fids
                c.ex.group = fb
                c.ex.tried = 0
                c.ex.attempts = 0
            }
            // The first attempt earns retry budget; every other one spends it.
            if c.ex.attempts == 0 { pools.earnRetry(group) } else if !pools.spendRetry(group) {
                return originUnavailable(c, timeout: c.ex.originTimedOut)
            }
            guard c.ex.attempts <= ids.count,
                  let gi = pools.balancers[group.id].pick(health: group.health, active: pools.groupActive[group.id], tried: c.ex.tried, now: now,
                                                          key: c.ex.balanceKey) else {
                return originUnavailable(c, timeout: c.ex.originTimedOut)
            }
            c.ex.attempts += 1
            let server = config.servers[ids[gi]]
            while let o = pools.idle[server.id].popLast() {
                if o.closed || o.eof { closeOrigin(o); continue }
                attach(c, o)
                sendRequest(c, o)
                return
            }
            c.ex.tried |= 1 << UInt64(gi)
            switch TCP.connect(server.address) {
            case .connected(let fd), .inProgress(let fd):
                let o = OriginConnection(fd: fd, gen: nextGeneration(), pools: pools, server: server, group: group, groupIndex: gi)
                if let ctx = server.tls {
                    guard let t = TLSConnection(origin: ctx, fd: fd, serverName: server.serverName, resume: pools.sessions[server.id]) else {
                        o.socket.close()
                        return originUnavailable(c, timeout: false)
                    }
                    o.tls = t
                }
                guard register(fd, gen: o.gen, .origin(o)) else { o.tls = nil; o.socket.close(); return originUnavailable(c, timeout: false) }
                o.timeout = .connect
                o.deadline = now + (c.ex.tenant?.limits.originConnectTimeoutMillis ?? 3500)
                attach(c, o)
                sendRequest(c, o)
                return
            case .failed:
                countOriginAttempt(c, server)
                countOriginError(c, server)
                c.ex.originError = OriginFailure.connect.logText
                server.health.recordFailure(now: now)
                continue
            }
        }
    }

    /// Whether a server of `group` is untried and in rotation now.
    func hasCandidate(_ group: OriginGroup, tried: UInt64) -> Bool {
        for (i, h) in group.health.enumerated() where tried & (1 << UInt64(i & 63)) == 0 && h.isAvailable(now: now) { return true }
        return false
    }

    /// The key a `hash` group balances this request on: its target, the
    /// client's address, or a field's or cookie's value (nil when absent:
    /// the group then goes round-robin for it, as HAProxy does).
    func balanceKey(_ c: ClientConnection, _ p: UnsafeRawBufferPointer, _ group: OriginGroup) -> UInt64? {
        switch group.balance.key {
        case .uri:
            return fnv1a(c.ex.target)
        case .cacheKey:
            return mix64(fnv1a(c.ex.host)) ^ fnv1a(c.ex.target)
        case .client:
            let v = clientAddress(c, p).value
            return mix64(UInt64(truncatingIfNeeded: v)) ^ UInt64(truncatingIfNeeded: v >> 64)
        case .header:
            return fieldValue(p, c.ex.head, group.hashKeyName).map { fnv1a(p[$0]) }
        case .cookie:
            return cookieValue(p, c.ex.head, group.hashKeyName).map { fnv1a(p[$0]) }
        }
    }

    func attach(_ c: ClientConnection, _ o: OriginConnection) {
        c.ex.origin = o
        o.client = c
        o.pools.groupActive[o.group.id][o.groupIndex] += 1
        c.ex.serverLabel = o.server.label
        countOriginAttempt(c, o.server)
        c.ex.originStartMicros = monotonicMicros()
        o.idleTimeoutMillis = c.ex.tenant?.limits.originIdleTimeoutMillis ?? 30_000
    }

    func detachOrigin(_ c: ClientConnection, _ o: OriginConnection) {
        guard o.client === c else { return }
        c.ex.origin = nil
        o.client = nil
        o.pools.groupActive[o.group.id][o.groupIndex] -= 1
    }

    func sendRequest(_ c: ClientConnection, _ o: OriginConnection) {
        if o.outBuf == nil { o.outBuf = takeBuffer() }
        if o.inBuf == nil { o.inBuf = takeBuffer() }
        o.outBuf!.append(c.ex.fwd!.readView)
        o.headDone = false
        o.scan = HeadScan()
        o.gotBytes = false
        o.requestWasHead = c.ex.method == .head
        o.requests += 1
        if o.connected {
            o.timeout = .read
            o.deadline = originReadDeadline(c)
            flushOrigin(o)
            if !o.closed && o.client === c { pumpRequestBody(c) }
        }
    }

    // MARK: Events

    func onOriginEvent(_ o: OriginConnection, _ ev: UInt32) {
        if let c = o.client, c.phase == .tunnel {
            if ev & (Epoll.readable | Epoll.hangup | Epoll.error) != 0 { o.readable = true }
            if ev & (Epoll.hangup | Epoll.error) != 0 { o.hangup = true }
            if ev & Epoll.writable != 0 { o.writable = true }
            return pumpTunnel(c)
        }
        guard let c = o.client else {
            // Idle in the pool: data or a hang-up means the origin is done with it.
            if ev & (Epoll.readable | Epoll.hangup | Epoll.error) != 0 {
                if let i = o.pools.idle[o.server.id].firstIndex(where: { $0 === o }) { o.pools.idle[o.server.id].remove(at: i) }
                closeOrigin(o)
            }
            return
        }
        if !o.connected {
            if !o.tcpConnected {
                guard ev & (Epoll.writable | Epoll.error | Epoll.hangup) != 0 else { return }
                if TCP.socketError(o.fd) != 0 || ev & Epoll.error != 0 { return originFailed(o, .connect) }
                o.stage = .handshaking
            }
            if let t = o.tls {
                switch t.handshake() {
                case .done:
                    o.pools.sessions[o.server.id] = t.session()
                case .wantRead, .wantWrite:
                    return
                case .failed(let why):
                    logOriginTLSFailure(o, t.verifyError ?? why)
                    return originFailed(o, .tls)
                }
            }
            do {
                o.stage = .ready
                o.writable = true
                o.timeout = .read
                o.deadline = originReadDeadline(c)
                flushOrigin(o)
                if o.closed || o.client !== c { return }
                pumpRequestBody(c)
                if o.closed || o.client !== c { return }
            }
        } else if ev & Epoll.writable != 0 {
            o.writable = true
            flushOrigin(o)
            if o.closed || o.client !== c { return }
            pumpRequestBody(c)
            if o.closed || o.client !== c { return }
        }
        if ev & (Epoll.readable | Epoll.hangup | Epoll.error) != 0 {
            o.readable = true
            if ev & (Epoll.hangup | Epoll.error) != 0 { o.hangup = true }
            originReadable(o)
        }
    }

    /// When an origin read for `c`'s exchange times out, counted from now (its
    /// tenant's origin read timeout; 60 s without a tenant).
    @inline(__always) func originReadDeadline(_ c: ClientConnection) -> Int64 {
        now + (c.ex.tenant?.limits.originReadTimeoutMillis ?? 60_000)
    }

    func flushOrigin(_ o: OriginConnection) {
        guard o.connected, let b = o.outBuf else { return }
        if !writePending(o, b) {
            // The origin may have answered and closed; read what it sent first.
            o.readable = true
            originReadable(o)
        }
    }

    /// Writes `b` to the origin while it takes bytes; false when the socket
    /// failed (the rest of `b` is dropped and nothing more can be written).
    func writePending(_ o: OriginConnection, _ b: IOBuffer) -> Bool {
        while o.writable && !b.isEmpty {
            let want = b.readableBytes
            switch (o.tls.map { $0.write(b.readPointer, want) } ?? o.socket.write(b.readPointer, want)) {
            case .bytes(let k):
                b.consume(k)
                o.client?.ex.originBytesOut += Int64(k)
                if k < want && o.tls == nil { o.writable = false }   // see flushClient
            case .wouldBlock, .eof:
                o.writable = false
            case .error:
                o.writable = false
                b.clear()
                return false
            }
        }
        return true
    }

    // MARK: Responses

    /// One read from the origin into `b` (a pooled buffer's worth reserved):
    /// readiness and EOF noted. Returns how many bytes came (0: none).
    @inline(__always) func readOriginOnce(_ o: OriginConnection, _ b: IOBuffer) -> Int {
        b.reserve(bufferSize)
        let space = b.writableBytes
        switch (o.tls.map { $0.read(b.writePointer, space) } ?? o.socket.read(b.writePointer, space)) {
        case .bytes(let k):
            b.writeIndex += k
            o.gotBytes = true
            o.client?.ex.originBytesIn += Int64(k)
            if k < space && !o.hangup && o.tls == nil { o.readable = false }   // see readClientOnce
            return k
        case .wouldBlock:
            o.readable = false
        case .eof, .error:
            o.eof = true
            o.readable = false
        }
        return 0
    }

    func originReadable(_ o: OriginConnection) {
        if let c = o.client, c.phase == .tunnel { return pumpTunnel(c) }
        while !o.closed, let c = o.client {
            var didRead = false
            let ib = o.inBuf!
            while o.readable && ib.readableBytes < highWater && sendRoom(c) > 0 {
                if readOriginOnce(o, ib) > 0 { didRead = true }
            }
            let pending = ib.readableBytes
            processOrigin(o, c)
            if o.closed || o.client !== c || c.ex.heldByDisk { return }
            if sendRoom(c) <= 0 {
                o.deadline = 0  // the client's send timeout governs while it is slow
                return
            }
            o.deadline = originReadDeadline(c)
            // Go on while bytes move: more was read, or buffered bytes were relayed.
            let moved = ib.readableBytes != pending
            if !(didRead || moved) || (!o.readable && ib.isEmpty) { return }
        }
    }

    func processOrigin(_ o: OriginConnection, _ c: ClientConnection) {
        let ib = o.inBuf!
        while !o.headDone {
            if ib.isEmpty {
                if o.eof { originFailed(o, .closed) }
                return
            }
            switch HeadParser.parseResponse(ib.readView, limits: limits, into: &o.head, scan: &o.scan) {
            case .needMore:
                if o.eof { originFailed(o, .broken) }
                return
            case .error:
                return originFailed(o, .broken)
            case .complete(let n):
                let status = o.head.status
                if status < 200 {
                    if status == 101 {
                        // Only an asked-for WebSocket may switch protocols.
                        if c.ex.upgrade && WebSocketHandshake.isAccept(ib.readView, o.head) { return beginTunnel(c, o, headLength: n) }
                        return originFailed(o, .broken)
                    }
                    // Other interim responses go on to HTTP/1.1 clients (RFC 9110 §15.2),
                    // never to HTTP/1.0 ones, and are never stored; a 100 is not relayed
                    // (edge answers Expect: 100-continue itself). An origin that sends
                    // more than `maxInterim` of them is broken.
                    c.ex.interimCount += 1
                    if c.ex.interimCount > Worker.maxInterim { return originFailed(o, .broken) }
                    if status != 100, !c.ex.cache.background, !c.orphaned, c.ex.head.minorVersion >= 1, c.ex.response == .notStarted {
                        sendInterim(c, o.head, ib.readView)
                        if c.closed || o.client !== c { return }
                    }
                    ib.consume(n)
                    o.scan = HeadScan()
                    continue
                }
                c.ex.originStatus = status
                if retryStatus(c, o, status) { return }
                if let r = c.ex.resume, r.asked {
                    // The rest of a broken stream: spliced on, or the answer is cut short.
                    guard acceptResumed(c, o, r, p: ib.readView) else { return resumeRefused(c, o) }
                    ib.consume(n)
                    continue
                }
                if c.ex.route?.cache != nil && cacheResponseHead(c, o, p: ib.readView, headLength: n) { return }
                o.headDone = true
                o.server.health.recordSuccess()
                c.ex.status = status
                c.ex.originMicros = monotonicMicros() - c.ex.originStartMicros
                o.keepAlive = o.head.keepAlive
                let framing = o.head.framing(requestWasHead: o.requestWasHead)
                if case .length(let n) = framing, n >= Worker.resumeRelayMin { mayResumeRelay(c, o, total: n, p: ib.readView) }
                if !c.ex.cache.background {      // (else the client's response is already complete)
                    let (t, vary, etag) = beginTransform(c, o, p: ib.readView, framing: framing)
                    writeResponseHead(c, o, framing: framing, p: ib.readView, transform: t, varyAcceptEncoding: vary, etag: etag)
                }
                ib.consume(n)
                switch framing {
                case .none: o.body = .none
                case .length(let len): o.body = .length(len)
                case .chunked: o.body = .chunked(ChunkedDecoder())
                case .untilClose: o.body = .untilClose; o.keepAlive = false
                }
            }
        }
        pumpResponseBody(o, c)
    }

    func pumpResponseBody(_ o: OriginConnection, _ c: ClientConnection) {
        let ib = o.inBuf!
        if c.outBuf == nil { c.outBuf = takeBuffer() }
        let ob = c.outBuf!
        let quiet = c.ex.cache.background
        var done = false
        if case .none = o.body { done = true }
        loop: while !done && !ib.isEmpty && sendRoom(c) > 0 {
            if c.ex.cache.fill?.sink != nil && heldForDisk(c) { break loop }
            switch o.body {
            case .none:
                done = true
            case .length(let rem):
                let take = Int(min(rem, Int64(ib.readableBytes)))
                appendFill(c, ib.readPointer, take)
                if let coder = c.ex.coder {
                    guard feedCoder(c, coder, UnsafeRawBufferPointer(start: ib.readPointer, count: take), finish: false, ob) else {
                        return transformFailed(c, o)
                    }
                } else if let s = c.ex.cache.slice {
                    // The client's range of a whole object being fetched; once it is sent and
                    // nothing is being stored, the rest is not waited for (the origin connection closes).
                    if sendSlice(c, s, ib.readPointer, take, to: ob), c.ex.cache.fill?.tooLarge ?? true, c.ex.cache.slices?.fill == nil, rem > Int64(take) {
                        ib.consume(take)
                        o.body = .length(rem - Int64(take))
                        o.keepAlive = false
                        done = true
                        break loop
                    }
                } else if !quiet {
                    ob.append(ib.readPointer, count: take)
                }
                ib.consume(take)
                o.body = .length(rem - Int64(take))
                if rem == Int64(take) { done = true }
            case .chunked(var dec):
                let (ev, next) = dec.decode(ib.readView, from: 0)
                o.body = .chunked(dec)
                switch ev {
                case .data(let r):
                    if let base = ib.readView.baseAddress { appendFill(c, base + r.lowerBound, r.count) }
                    if let coder = c.ex.coder {
                        guard feedCoder(c, coder, UnsafeRawBufferPointer(rebasing: ib.readView[r]), finish: false, ob) else {
                            return transformFailed(c, o)
                        }
                    } else if quiet {
                        // refreshing in the background: nothing goes to the client
                    } else {
                        sendBody(c, UnsafeRawBufferPointer(rebasing: ib.readView[r]), to: ob)
                    }
                    ib.consume(next)
                case .needMore:
                    ib.consume(next)
                    break loop
                case .end:
                    ib.consume(next)
                    done = true
                case .error:
                    return originBrokeMidBody(c, o, "malformed chunk from the origin")
                }
            case .untilClose:
                let k = ib.readableBytes
                appendFill(c, ib.readPointer, k)
                if let coder = c.ex.coder {
                    guard feedCoder(c, coder, ib.readView, finish: false, ob) else { return transformFailed(c, o) }
                } else if quiet {
                    // refreshing in the background
                } else {
                    sendBody(c, ib.readView, to: ob)
                }
                ib.consume(k)
            }
        }
        if !done && o.eof && ib.isEmpty {
            if case .untilClose = o.body {
                done = true
            } else {
                return originBrokeMidBody(c, o, "origin closed mid-body")
            }
        }
        if done {
            c.ex.cache.fill?.complete = true
            if let coder = c.ex.coder, !finishCoder(c, coder, ob) { return transformFailed(c, o) }
            if !ib.isEmpty || o.eof { o.keepAlive = false }
            finishExchange(c)
        } else {
            flushClient(c)
        }
    }

    /// Returns a finished origin connection to its pool, or closes it.
    func releaseOrigin(_ o: OriginConnection) {
        let ok = o.keepAlive && o.headDone && !o.eof && !o.closed && (o.outBuf?.isEmpty ?? true) && (o.inBuf?.isEmpty ?? true)
        var done = false
        if case .none = o.body { done = true }
        if case .length(0) = o.body { done = true }
        if case .chunked(let d) = o.body, d.isDone { done = true }
        // A connection from before a reload is not pooled: its server may be gone.
        guard ok, done, !stopping, o.pools === pools, pools.idle[o.server.id].count < o.group.keepAlive else { return closeOrigin(o) }
        if let b = o.inBuf { o.inBuf = nil; giveBuffer(b) }
        if let b = o.outBuf { o.outBuf = nil; giveBuffer(b) }
        o.timeout = .idle
        o.deadline = now + o.idleTimeoutMillis
        pools.idle[o.server.id].append(o)
    }

    func closeOrigin(_ o: OriginConnection) {
        guard !o.closed else { return }
        let wasReady = o.connected
        o.stage = .closed
        if let c = o.client { detachOrigin(c, o) }
        // The one safe order: TLS close_notify while the fd is ours, SSL freed, fd closed last.
        slots[Int(o.fd)] = .free
        if let t = o.tls { if wasReady { t.shutdown() }; o.tls = nil }
        o.socket.close()
        if let b = o.inBuf { o.inBuf = nil; giveBuffer(b) }
        if let b = o.outBuf { o.outBuf = nil; giveBuffer(b) }
    }

    func originTimedOut(_ o: OriginConnection) {
        switch o.timeout {
        case .idle:
            if let i = o.pools.idle[o.server.id].firstIndex(where: { $0 === o }) { o.pools.idle[o.server.id].remove(at: i) }
            closeOrigin(o)
        case .connect:
            originFailed(o, .connectTimeout)
        case .read:
            // Held back by the disk tier all this time: the fill gives up storing, the response goes on.
            if let c = o.client, c.ex.heldByDisk {
                c.ex.cache.fill?.sink?.abort()
                return diskHasRoom(c)
            }
            originFailed(o, .readTimeout)
        }
    }

    /// The origin broke its response after the head went to the client (a
    /// malformed chunk, a close before the declared length): counted and logged
    /// as an origin error. The rest is asked for again where that is provably
    /// right (Resume.swift: a strong tag, a known length); else it is never
    /// stored (followers reading the fill finish from the origin or are cut off
    /// too), and the client's body ends without its last chunk or bytes, with the
    /// connection closed, so it sees a truncated message, never a complete one.
    func originBrokeMidBody(_ c: ClientConnection, _ o: OriginConnection, _ why: StaticString) {
        o.keepAlive = false
        countOriginError(c, o.server)
        o.server.health.recordFailure(now: now)
        c.ex.originError = why
        detachOrigin(c, o)
        closeOrigin(o)
        if resumeRelay(c, o) { return }
        c.ex.response = .cut
        if let f = c.ex.cache.fill { c.ex.cache.fill = nil; abandonFill(f) }
        c.keepAlive = false
        flushClient(c)
        if !c.closed { abortClient(c) }
    }

    /// A final status the group retries (`retry_on`): when the request is
    /// idempotent, its body unsent, nothing relayed yet, another server is left
    /// and the budget allows, this answer is dropped (its connection closed)
    /// and the request goes to another server. Else the answer is relayed.
    func retryStatus(_ c: ClientConnection, _ o: OriginConnection, _ status: Int) -> Bool {
        guard let g = c.ex.group, g.retryOn.contains(status), c.ex.method.isIdempotent, !c.ex.bodyStarted,
              c.ex.response == .notStarted, !c.ex.cache.background, case .http(let ids) = g.kind else { return false }
        c.ex.tried |= 1 << UInt64(o.groupIndex)
        let left = (0..<ids.count).contains { c.ex.tried & (1 << UInt64($0)) == 0 }
        guard left, c.ex.attempts < ids.count, pools.retryTokens[g.id] >= 1 else { return false }
        countOriginError(c, o.server)
        detachOrigin(c, o)
        closeOrigin(o)
        connectOrigin(c, ids: ids)
        return true
    }

    /// The origin failed this request. Retries where that is safe, else answers 502/504.
    func originFailed(_ o: OriginConnection, _ why: OriginFailure) {
        guard let c = o.client else { return closeOrigin(o) }
        let reused = o.requests > 1
        detachOrigin(c, o)
        closeOrigin(o)
        countOriginError(c, o.server)
        c.ex.originError = why.logText
        if why == .connectTimeout || why == .readTimeout { c.ex.originTimedOut = true }
        switch why {
        case .connect, .connectTimeout, .tls, .readTimeout, .broken:
            o.server.health.recordFailure(now: now)
        case .closed:
            if !reused { o.server.health.recordFailure(now: now) }
        }
        if c.ex.cache.background { return finishExchange(c) }   // the client has its answer already
        if c.ex.responseStarted {
            if resumeRelay(c, o) { return }   // (a relay cut off mid-body: Resume.swift)
            return abortClient(c)
        }
        // Safe to retry on another server: nothing reached the origin (connect
        // failed), or, for an idempotent request whose body was not sent, the
        // connection closed or was reset before any response byte (nginx's
        // `proxy_next_upstream error`). A reused keep-alive connection found
        // closed may try the same server again, on a fresh connection, without
        // spending the retry budget (it says nothing about the server).
        // With "timeout" in the group's retry_on, a read timeout before any
        // response byte counts as lost too (nginx's `proxy_next_upstream timeout`).
        let nothingSent = why == .connect || why == .connectTimeout || why == .tls
        let lostBeforeAnswer = (why == .closed || (why == .readTimeout && o.group.retryOnTimeout)) && !o.gotBytes
        if !c.ex.bodyStarted && (nothingSent || (lostBeforeAnswer && c.ex.method.isIdempotent)),
           case .http(let ids) = c.ex.group!.kind {
            if why == .closed && lostBeforeAnswer && reused {
                c.ex.tried &= ~(1 << UInt64(o.groupIndex))
                pools.retryTokens[c.ex.group!.id] += 1
            }
            return connectOrigin(c, ids: ids)
        }
        originUnavailable(c, timeout: c.ex.originTimedOut, disconnected: why != .broken)
    }

    /// No response from the origin: stale content where allowed, else 502/504.
    /// `disconnected`: it could not be reached or answered nothing (not a malformed answer).
    func originUnavailable(_ c: ClientConnection, timeout: Bool, disconnected: Bool = true) {
        // A response that started (a streamed answer asking the origin for its
        // rest: Resume.swift) can only be cut short, never given an error head.
        if c.ex.responseStarted && !c.ex.cache.background { return abortClient(c) }
        if serveStaleOnError(c, disconnected: disconnected) { return }
        if c.ex.origin != nil { detachOrigin(c, c.ex.origin!) }
        c.phase = .proxy
        if !c.ex.bodyDone { c.keepAlive = false; c.ex.bodyState = .none }
        respondError(c, timeout ? 504 : 502)
    }
}
