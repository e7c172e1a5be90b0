// HTTP/2 to clients, the second transport (RFC 9113). A TLS connection whose
// ALPN chose "h2" is a carrier: its bytes go through EdgeHTTP2's connection
// machine, and each stream becomes a stream connection: a ClientConnection
// with no socket whose request is the stream's head in HTTP/1 form (H2Request.
// http1Head) and whose output lands in its in-memory transport (`sink`). The
// phases, the cache, compression and the origin code serve it unchanged, and
// the one writer (HTTP1Writer.swift) writes its response; here that response
// is read back (its head by WrittenHead, which trusts the writer's bytes) into
// HEADERS and DATA frames, within the client's flow-control
// windows, and its body waits in the stream's buffer (counted by sendRoom, so a
// slow HTTP/2 reader holds back its origin like a slow HTTP/1 one).
// Thread rules: see Worker.swift (the carrier's worker owns its streams).
import EdgeHTTP
import EdgeHTTP2
import EdgeIO

/// The HTTP/2 side of a carrier connection: the machine, what waits to be
/// written to the socket, and the streams being served.
final class H2Session {
    /// The connection whose socket carries it (which owns this session).
    weak var carrier: ClientConnection?
    var conn: H2Connection
    /// Bytes for the socket (frames), and how much of them was written.
    var out: [UInt8] = []
    var outSent = 0
    var streams: [UInt32: ClientConnection] = [:]
    /// A connection error or the end: the GOAWAY goes out, then the socket closes.
    var closing = false
    /// Closing: the client's input is read and dropped until it stops or a deadline.
    var lingering = false
    /// Since when a response has waited for a window the client keeps shut (0: none does).
    var stalledSince: Int64 = 0
    /// Frames were made this loop turn (in the worker's h2Dirty list).
    var dirty = false
    /// Streams h2Pump left with more to do this turn (pumped again at its end).
    var pendingPump: [ClientConnection] = []
    /// GOAWAY sent for a stop: the streams it counted finish, then the socket closes.
    var draining = false
    var pumping = false
    init(limits: H2Limits) { conn = H2Connection(limits: limits) }
    var pendingOut: Int { out.count - outSent }
}

/// A stream connection's response on its way back into frames.
struct H2StreamOut {
    var headSent = false
    /// The body as the writer framed it: its length left, or its chunks.
    var length: Int64 = 0
    var chunks: ChunkedDecoder?
    var bodyDone = false
    /// De-framed body bytes waiting for the client's window.
    var data: [UInt8] = []
    var dataSent = 0
    var ended = false
    /// Request body bytes taken from DATA and not yet credited back.
    var uncredited = 0
}

/// The most frame bytes queued for a carrier before edge stops reading it
/// (a client that sends PINGs and never reads holds no more than this).
let h2OutLimit = 256 * 1024

extension Worker {
    /// After the handshake: a carrier when ALPN chose h2.
    func startH2IfNegotiated(_ c: ClientConnection) -> H2Session? {
        guard let t = c.tls, t.negotiatedH2 else { return nil }
        return startH2(c)
    }

    /// h2c with prior knowledge (the server's `h2c`, RFC 9113 §3.3): a plain
    /// connection whose first bytes are (a prefix of) the HTTP/2 preface.
    /// Returns true once it is a carrier, with what it sent already processed;
    /// false with `waiting` while the bytes so far could still be the preface.
    func startH2cIfPreface(_ c: ClientConnection, _ b: IOBuffer, waiting: inout Bool) -> Bool {
        let preface = Frames.preface
        let n = min(b.readableBytes, preface.count)
        for i in 0..<n where b.readView[i] != preface[i] { return false }
        if n < preface.count { waiting = true; return false }
        let h = startH2(c)
        h2Receive(c, h, b)
        if h.closing { endH2(c, h); return true }
        h2ReadAndProcess(c, h)
        return true
    }

    func startH2(_ c: ClientConnection) -> H2Session {
        // Extended CONNECT (RFC 8441): WebSocket over HTTP/2, relayed to the origin as an HTTP/1.1 upgrade.
        let h = H2Session(limits: H2Limits())
        h.carrier = c
        h.conn.start(into: &h.out)
        c.h2 = h
        c.timeout = .idle
        c.deadline = now + server.keepAliveTimeoutMillis
        workerCounters.add(WorkerSlot.h2Connections, 1)
        return h
    }

    func onH2Event(_ c: ClientConnection, _ h: H2Session, _ ev: UInt32) {
        if ev & (Epoll.readable | Epoll.hangup | Epoll.error) != 0 { c.readable = true }
        if ev & (Epoll.hangup | Epoll.error) != 0 { c.hangup = true }
        if ev & Epoll.writable != 0 { c.writable = true }
        h2ReadAndProcess(c, h)
    }

    func h2ReadAndProcess(_ c: ClientConnection, _ h: H2Session) {
        if h.lingering { return h2Linger(c, h) }
        while !c.closed && !h.closing {
            if h.pendingOut >= h2OutLimit { flushH2(c, h) }
            if c.closed { return }
            guard c.readable, h.pendingOut < h2OutLimit else { break }
            if c.inBuf == nil { c.inBuf = takeBuffer() }
            let ib = c.inBuf!
            if readClientOnce(c, ib) == 0 && !c.eof { continue }
            h2Receive(c, h, ib)
            if c.eof { h.closing = true }
        }
        if h.closing { return endH2(c, h) }
        // Written with the streams' answers at the end of the loop turn.
        if !h.dirty { h.dirty = true; h2Dirty.append(h) }
    }

    /// Runs the client's bytes in `ib` through the machine and serves its events.
    func h2Receive(_ c: ClientConnection, _ h: H2Session, _ ib: IOBuffer) {
        var events: [H2Event] = []
        let outcome = h.conn.receive(ib.readView, now: now, events: &events, out: &h.out)
        // Events may point into the input: handle them before it moves.
        for e in events { h2Handle(c, h, e, ib.readView) }
        switch outcome {
        case .consumed(let n): ib.consume(n); ib.compact()
        case .close(let e):
            h.closing = true
            if e != .noError { workerCounters.add(WorkerSlot.h2ConnectionErrors, 1) }
        }
    }

    /// A graceful stop (RFC 9113 §6.8): GOAWAY with the last stream id; the
    /// streams up to it finish, then the connection closes.
    func h2Stop(_ c: ClientConnection, _ h: H2Session) {
        h.conn.goAway(into: &h.out)
        h.draining = true
        flushH2(c, h)
        _ = h2Drained(c, h)
    }

    /// Closes a draining carrier once its last stream and its GOAWAY are out.
    func h2Drained(_ c: ClientConnection, _ h: H2Session) -> Bool {
        guard h.draining, h.streams.isEmpty, h.pendingOut == 0, !c.closed else { return false }
        closeClient(c)
        return true
    }

    /// No stream in progress: the keep-alive timeout applies to the carrier. A
    /// stream with a response waiting for a window the client keeps shut: the
    /// send timeout does (a zero-window stall closes the connection, its exchanges
    /// with it). Streams waiting on their origins: that leg's timeouts.
    func h2IdleDeadline(_ c: ClientConnection, _ h: H2Session) {
        c.timeout = .idle
        if h.streams.isEmpty {
            if c.deadline == 0 || h.stalledSince != 0 { c.deadline = now + server.keepAliveTimeoutMillis }
            h.stalledSince = 0
            // Idle: the buffers go back (an idle connection keeps its HPACK tables only).
            if let b = c.inBuf, b.isEmpty { c.inBuf = nil; giveBuffer(b) }
            if h.pendingOut == 0 && h.out.capacity > 0 { h.out = []; h.outSent = 0 }
        } else if h.streams.values.contains(where: { h2Waiting(bytes: $0) > 0 && h.conn.sendable($0.h2Stream) == 0 }) {
            if h.stalledSince == 0 { h.stalledSince = now }
            c.deadline = h.stalledSince + server.sendTimeoutMillis
        } else {
            h.stalledSince = 0
            c.deadline = 0
        }
    }

    func h2Handle(_ c: ClientConnection, _ h: H2Session, _ e: H2Event, _ input: UnsafeRawBufferPointer) {
        switch e {
        case .request(let id, let req, let endStream):
            // An extended CONNECT for another protocol than WebSocket: not implemented here.
            if req.connectProtocol != nil && !req.isWebSocket {
                h.conn.sendHeaders(id, [HeaderField(":status", "501"), HeaderField("content-length", "0")], endStream: true, into: &h.out)
                return
            }
            let s = ClientConnection(fd: -1, gen: c.gen, addr: c.addr, peerIP: c.peerIP, trusted: c.trusted, exchange: idleExchange)
            s.sink = takeBuffer()
            s.h2Parent = h
            s.h2Stream = id
            s.h2OverTLS = c.tls != nil
            s.sniTenant = c.sniTenant
            s.sniName = c.sniName
            s.inBuf = takeBuffer()
            h2Scratch.removeAll(keepingCapacity: true)
            if req.isWebSocket {
                // RFC 8441: the stream becomes a tunnel once the origin accepts (Tunnel.swift).
                s.h2Tunnel = true
                let key = withUnsafeBytes(of: (requestIDs.next(), requestIDs.next())) { Array($0) }   // 16 random bytes
                req.appendHTTP1Head(into: &h2Scratch, chunked: false, websocketKey: base64(key))
            } else {
                req.appendHTTP1Head(into: &h2Scratch, chunked: !endStream && req.contentLength == nil, close: true)
            }
            s.inBuf!.append(h2Scratch)
            h.streams[id] = s
            c.deadline = 0
            workerCounters.add(WorkerSlot.h2Streams, 1)
            processClient(s)
            h2Pump(h, s)
        case .data(let id, let r, let endStream):
            guard let s = h.streams[id], !s.closed, let ib = s.inBuf else {
                h.conn.consumed(id, r.count, into: &h.out)
                return
            }
            let chunked = s.ex.body.isChunked
            // The stream's body as its HTTP/1 head framed it (the origin leg's chunk framing).
            if chunked && !r.isEmpty { forwardChunk(UnsafeRawBufferPointer(rebasing: input[r]), to: ib) } else { ib.append(UnsafeRawBufferPointer(rebasing: input[r])) }
            if chunked && endStream { forwardChunkedEnd(to: ib) }
            s.h2Out.uncredited += r.count
            if s.h2Tunnel {
                // A WebSocket stream: its DATA are the tunnel's bytes; END_STREAM is the client's close.
                if endStream { s.h2InputEnded = true }
                if s.phase == .tunnel { pumpTunnel(s); h2Credit(h, s); return }
            }
            processClient(s)
            h2Credit(h, s)
        case .trailers(let id, _):
            // Trailers end the body; the origin gets the body without them.
            guard let s = h.streams[id], !s.closed, let ib = s.inBuf else { return }
            if s.ex.body.isChunked { forwardChunkedEnd(to: ib) }
            processClient(s)
        case .headersTooLarge(let id):
            h.conn.sendHeaders(id, [HeaderField(":status", "431"), HeaderField("content-length", "0")], endStream: true, into: &h.out)
        case .reset(let id, _):
            if let s = h.streams.removeValue(forKey: id), !s.closed { abortClient(s) }
        case .windowOpened(let id):
            if id == 0 {
                for s in h.streams.values { h2Pump(h, s) }
            } else if let s = h.streams[id] {
                h2Pump(h, s)
            }
        case .goaway:
            break   // the client stops opening streams; those it has finish
        }
    }

    /// Request body bytes the stream's exchange took from its input are credited
    /// back to the client (its window opens only as fast as the origin reads).
    func h2Credit(_ h: H2Session, _ s: ClientConnection) {
        let buffered = s.inBuf?.readableBytes ?? 0
        let n = s.closed ? s.h2Out.uncredited : min(s.h2Out.uncredited, max(0, highWater - buffered))
        guard n > 0 else { return }
        s.h2Out.uncredited -= n
        h.conn.consumed(s.h2Stream, n, into: &h.out)
    }

    /// What the stream's exchange wrote, as frames: its head once whole, then
    /// its body within the windows. Ends or resets the stream when it is done.
    func h2Pump(_ h: H2Session, _ s: ClientConnection) {
        guard !h.pumping else { return }
        h.pumping = true
        defer { h.pumping = false }
        // Resuming the exchange writes more into the stream's buffer (its writes while
        // this runs are not pumped from inside): go round while that happens, at most
        // 64 rounds (4 MiB) per turn for fairness; the rest is pumped at the turn's end.
        var rounds = 0
        while h2PumpOnce(h, s) {
            rounds += 1
            if rounds == 64 {
                if !h.pendingPump.contains(where: { $0 === s }) { h.pendingPump.append(s) }
                if !h.dirty { h.dirty = true; h2Dirty.append(h) }
                break
            }
        }
    }

    /// One pass of h2Pump; true when it let the exchange write more and there is
    /// something new to pump.
    func h2PumpOnce(_ h: H2Session, _ s: ClientConnection) -> Bool {
        // (A stream that ended has given its buffer back: nothing is left to pump.)
        guard let sink = s.sink else { return false }
        let id = s.h2Stream
        var o = s.h2Out
        defer { s.h2Out = o }
        // The head (and any interim ones before it).
        headLoop: while !o.headSent && !o.ended && !sink.isEmpty {
            let p = sink.readView
            // (The writer's own bytes: read back without the parser's checks, WrittenHead.swift.)
            guard let n = h2Head.read(p) else { break headLoop }
            let status = h2Head.status
            let head = h2Head
            // The fields straight from the writer's bytes (HPACK lowercases the names);
            // hop-by-hop ones were left out by the reader (RFC 9113 §8.2.2).
            func emitFields(_ emit: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
                for k in 0..<head.fieldCount {
                    let (name, value) = head.field(k, in: p)
                    emit(name, value)
                }
            }
            if status == 101 && s.h2Tunnel {
                // The origin accepted the WebSocket: 200 on the stream (RFC 8441 §5), without
                // the HTTP/1.1 handshake's accept value; the tunnel's bytes follow as DATA.
                h.conn.sendHeaders(id, status: 200, endStream: false, into: &h.out) { emit in
                    emitFields { name, value in if !equalsLowercase(name, 0, name.count, "sec-websocket-accept") { emit(name, value) } }
                }
                o.headSent = true
                o.length = Int64.max
                sink.consume(n)
                continue headLoop
            }
            if status < 200 {
                h.conn.sendHeaders(id, status: status, endStream: false, into: &h.out, fields: emitFields)
                sink.consume(n)
                continue headLoop
            }
            o.headSent = true
            switch head.framing(requestWasHead: s.ex.method == .head) {
            case .none: o.bodyDone = true
            case .length(let len): o.length = len
            case .chunked: o.chunks = ChunkedDecoder()
            case .untilClose: o.length = Int64.max
            }
            h.conn.sendHeaders(id, status: status, endStream: o.bodyDone, into: &h.out, fields: emitFields)
            sink.consume(n)
            if o.bodyDone { o.ended = true }
        }
        // The body, de-framed.
        if o.headSent && !o.bodyDone {
            if var dec = o.chunks {
                var at = 0
                loop: while at < sink.readableBytes {
                    let (ev, next) = dec.decode(sink.readView, from: at)
                    switch ev {
                    case .data(let r): o.data.append(contentsOf: UnsafeRawBufferPointer(rebasing: sink.readView[r])); at = next
                    case .needMore: at = next; break loop
                    case .end: at = next; o.bodyDone = true; break loop
                    case .error: o.ended = true; h.conn.reset(id, .internalError, into: &h.out); break loop
                    }
                }
                sink.consume(at)
                o.chunks = dec
            } else if o.data.count == o.dataSent {
                // Straight from the stream's buffer into DATA frames, as far as the windows
                // allow (no staging copy); what the windows hold back waits in the buffer.
                let k = Int(min(Int64(sink.readableBytes), o.length))
                let last = o.length != Int64.max && Int64(k) == o.length
                let n = k == 0 ? 0 : h.conn.sendData(id, UnsafeRawBufferPointer(rebasing: sink.readView[0..<k]), endStream: last, into: &h.out)
                sink.consume(n)
                if o.length != Int64.max {
                    o.length -= Int64(n)
                    if o.length == 0 { o.bodyDone = true; o.ended = n > 0 }
                }
            } else {
                let k = Int(min(Int64(sink.readableBytes), o.length))
                o.data.append(contentsOf: UnsafeRawBufferPointer(rebasing: sink.readView[0..<k]))
                sink.consume(k)
                if o.length != Int64.max { o.length -= Int64(k); if o.length == 0 { o.bodyDone = true } }
            }
            // A close-delimited body ends with its exchange (once its buffer is sent).
            if o.length == Int64.max && s.closed && sink.isEmpty { o.bodyDone = true }
        }
        if o.headSent && !o.ended {
            let left = o.data.count - o.dataSent
            if left > 0 || o.bodyDone {
                let n = o.data.withUnsafeBytes { h.conn.sendData(id, UnsafeRawBufferPointer(rebasing: $0[o.dataSent...]), endStream: o.bodyDone, into: &h.out) }
                o.dataSent += n
                if o.dataSent == o.data.count { o.data.removeAll(keepingCapacity: true); o.dataSent = 0; if o.bodyDone { o.ended = true } }
                else if o.dataSent > 64 * 1024 { o.data.removeFirst(o.dataSent); o.dataSent = 0 }
            }
        }
        // The exchange is over without a whole response: the stream is reset.
        if (s.closed || s.orphaned) && !o.ended && sink.isEmpty && !(o.headSent && o.bodyDone) {
            o.ended = true
            h.conn.reset(id, .internalError, into: &h.out)
        }
        if o.ended {
            h.streams.removeValue(forKey: id)
            if !s.closed && !s.orphaned { s.h2Out = o; closeClient(s) }
            if s.closed, let b = s.sink { s.sink = nil; giveBuffer(b) }   // (a stream closed only once: nothing writes to it again)
        } else if !s.closed, s.writable == false || s.h2Waiting, h2Room(s, o) > 0 {
            // Room again: the exchange goes on writing (as after EPOLLOUT).
            s.h2Waiting = false
            s.h2Out = o
            let before = sink.readableBytes
            clientWritable(s)
            o = s.h2Out
            if h2Room(s, o) <= 0 { s.h2Waiting = true }
            return sink.readableBytes != before || s.closed
        }
        return false
    }

    /// Body bytes a stream holds for the client's window: staged (chunked
    /// bodies, de-framed) or still in its buffer (sent from there).
    @inline(__always) func h2Waiting(bytes s: ClientConnection) -> Int {
        let o = s.h2Out
        return o.data.count - o.dataSent + (o.headSent && o.chunks == nil ? (s.sink?.readableBytes ?? 0) : 0)
    }

    /// Bytes a stream connection may still have written before it waits.
    @inline(__always) func h2Room(_ s: ClientConnection, _ o: H2StreamOut) -> Int {
        highWater - (s.sink?.readableBytes ?? 0) - (o.data.count - o.dataSent)
    }

    /// Writes the carrier's frames; once the GOAWAY of a closing session is out, closes.
    func flushH2(_ c: ClientConnection, _ h: H2Session) {
        while c.writable && h.pendingOut > 0 {
            let r = h.out.withUnsafeBytes { clientWrite(c, $0.baseAddress! + h.outSent, h.pendingOut) }
            switch r {
            case .bytes(let k):
                h.outSent += k
            case .wouldBlock, .eof:
                c.writable = false
            case .error:
                h.closing = true
                c.writable = false
            }
        }
        if h.pendingOut == 0 {
            h.out.removeAll(keepingCapacity: h.out.capacity <= 64 * 1024)
            h.outSent = 0
            c.sendDeadline = 0
        } else if c.sendDeadline == 0 {
            c.sendDeadline = now + server.sendTimeoutMillis
        }
    }

    /// The session ends: its streams' exchanges are given up and its GOAWAY
    /// written; then, like nginx's lingering close, what the client still sends
    /// is read and dropped for a moment before the socket closes (closing with
    /// unread input would reset the connection and could lose the GOAWAY).
    func endH2(_ c: ClientConnection, _ h: H2Session) {
        let streams = h.streams
        h.streams = [:]
        for s in streams.values where !s.closed { abortClient(s) }
        h.lingering = true
        c.timeout = .idle
        c.deadline = now + 2_000
        h2Linger(c, h)
    }

    func h2Linger(_ c: ClientConnection, _ h: H2Session) {
        flushH2(c, h)
        if c.closed { return }
        if c.inBuf == nil { c.inBuf = takeBuffer() }
        let ib = c.inBuf!
        while c.readable && !c.eof {
            _ = readClientOnce(c, ib)
            ib.clear()
        }
        if c.eof || (h.pendingOut == 0 && c.hangup) { closeClient(c) }
    }

    /// A stream connection wrote (flushToSink): its frames are made now and
    /// written with every other stream's at the end of the loop turn (one TLS
    /// write for many responses, not one each).
    func h2StreamWrote(_ s: ClientConnection) {
        guard let h = s.h2Parent else { return }
        h2Pump(h, s)
        if h2Room(s, s.h2Out) <= 0 { s.h2Waiting = true }
        h2Credit(h, s)
        if !h.dirty { h.dirty = true; h2Dirty.append(h) }
    }

    func flushDirtyH2() {
        let list = h2Dirty
        h2Dirty.removeAll(keepingCapacity: true)
        for h in list {
            h.dirty = false
            guard let c = h.carrier, !c.closed else { continue }
            let again = h.pendingPump
            h.pendingPump.removeAll()
            for s in again where !s.closed { h2Pump(h, s) }
            flushH2(c, h)
            if !h2Drained(c, h) { h2IdleDeadline(c, h) }
        }
    }

    /// The exchange took request body bytes from a stream connection's input.
    func h2BodyTaken(_ s: ClientConnection) {
        guard let h = s.h2Parent else { return }
        h2Credit(h, s)
        if let c = h.carrier { flushH2(c, h) }
    }
}

extension RequestBody {
    var isChunked: Bool { if case .chunked = self { return true }; return false }
}
