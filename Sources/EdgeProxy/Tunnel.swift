// WebSocket tunnels (RFC 6455 through an HTTP/1.1 proxy). A request the route
// phase marked `upgrade` goes to the origin with `Connection: Upgrade` and
// `Upgrade: websocket`; when the origin answers 101 with the same, the 101 is
// relayed and the exchange becomes a tunnel: bytes move both ways untouched
// (never cached, never compressed) with backpressure (neither side is read
// while the other's pending output is at the high-water mark, so a tunnel holds
// at most about two buffers each way whatever it carries), and an idle timeout
// (the route's `websocket.idle_timeout`, default 1 h) that any byte resets.
//
// A tunnel ends as nginx ends one: when either side has closed and what it sent
// has been written to the other, both close; the access log line (status 101,
// bytes each way, duration, "closed_by") is written then. Graceful stop and
// reload leave open tunnels running until the stop deadline.
// Thread rules: see Worker.swift.
import EdgeHTTP
import EdgeIO

extension Worker {
    /// The origin accepted the upgrade: relays its 101, then turns the exchange into a tunnel.
    func beginTunnel(_ c: ClientConnection, _ o: OriginConnection, headLength n: Int) {
        let ib = o.inBuf!
        o.headDone = true
        o.keepAlive = false
        o.body = .untilClose
        o.deadline = 0                 // the tunnel's idle timer governs both sides
        o.server.health.recordSuccess()
        c.ex.status = 101
        c.ex.originMicros = monotonicMicros() - c.ex.originStartMicros
        c.keepAlive = false
        c.ex.bodyState = .none
        writeResponseHead(c, o, framing: .none, p: ib.readView, upgrade: true)
        ib.consume(n)
        // Bytes that came with the 101, and any the client sent early, go on now.
        let ob = c.outBuf!
        if !ib.isEmpty { ob.append(ib.readView); ib.clear() }
        if let cb = c.inBuf, !cb.isEmpty {
            if o.outBuf == nil { o.outBuf = takeBuffer() }
            c.ex.bytesIn += Int64(cb.readableBytes)
            o.outBuf!.append(cb.readView)
            cb.clear()
        }
        c.phase = .tunnel
        c.timeout = .tunnel
        c.deadline = now + c.ex.route!.websocketIdleMillis
        c.rateDeadline = 0
        workerCounters.add(WorkerSlot.tunnelsOpened, 1)
        workerCounters.add(WorkerSlot.tunnelsOpen, 1)
        pumpTunnel(c)
    }

    /// Moves bytes both ways until neither side can go on, then ends the tunnel
    /// if a side has closed and its bytes are delivered.
    func pumpTunnel(_ c: ClientConnection) {
        guard c.phase == .tunnel, !c.closed, !c.inProcess, let o = c.ex.origin, !o.closed else {
            if c.phase == .tunnel && !c.inProcess && !c.closed && (c.ex.origin?.closed ?? true) { endTunnel(c, "origin") }
            return
        }
        c.inProcess = true
        if o.outBuf == nil { o.outBuf = takeBuffer() }
        if o.inBuf == nil { o.inBuf = takeBuffer() }
        if c.outBuf == nil { c.outBuf = takeBuffer() }
        let up = o.outBuf!, down = c.outBuf!
        var moved = false
        var progressed = true
        while progressed && !c.closed && !o.closed {
            progressed = false
            // Client → origin (an HTTP/2 stream's bytes are its DATA, already in its input).
            if c.h2Parent != nil {
                if let ib = c.inBuf, !ib.isEmpty, up.readableBytes < highWater {
                    let k = min(ib.readableBytes, highWater - up.readableBytes)
                    up.append(ib.readPointer, count: k)
                    ib.consume(k)
                    c.ex.bytesIn += Int64(k)
                    progressed = true
                    h2BodyTaken(c)   // the client's window opens as the origin takes its bytes
                }
                if c.h2InputEnded && (c.inBuf?.isEmpty ?? true) { c.eof = true }
            }
            while c.readable && !c.eof && c.h2Parent == nil && up.readableBytes < highWater {
                let k = readClientOnce(c, up)
                if k > 0 { c.ex.bytesIn += Int64(k); progressed = true }
            }
            if !up.isEmpty {
                let before = up.readableBytes
                if !writePending(o, up) { o.eof = true; break }
                if up.readableBytes != before { progressed = true }
            }
            // Origin → client.
            while o.readable && !o.eof && down.readableBytes < highWater && (c.h2Parent == nil || sendRoom(c) > 0) {
                if readOriginOnce(o, down) > 0 { progressed = true }
            }
            if !down.isEmpty {
                let before = down.readableBytes
                flushClient(c)
                if c.closed { break }
                if down.readableBytes != before { progressed = true }
            }
            if progressed { moved = true }
        }
        c.inProcess = false
        if c.closed { return }
        if moved { c.deadline = now + c.ex.route!.websocketIdleMillis }
        if o.closed || (o.eof && down.isEmpty) { return endTunnel(c, "origin") }
        if c.eof && up.isEmpty { return endTunnel(c, "client") }
    }

    /// Closes the origin side, logs the tunnel, and closes the client once its output is written.
    func endTunnel(_ c: ClientConnection, _ why: StaticString) {
        guard c.phase == .tunnel else { return }
        if let o = c.ex.origin { detachOrigin(c, o); closeOrigin(o) }
        leaveTunnel(c)
        c.ex.tunnelEnd = why
        logExchange(c)
        c.ex.inExchange = false
        c.keepAlive = false
        c.phase = .closing
        c.deadline = 0
        flushClient(c)
    }

    /// The tunnel is no longer open (ended, or its client connection closed).
    func leaveTunnel(_ c: ClientConnection) {
        c.phase = .closing
        workerCounters.add(WorkerSlot.tunnelsOpen, -1)
    }
}
