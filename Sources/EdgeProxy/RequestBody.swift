// The request body on its way to the origin: framing (length or chunked,
// re-chunked towards the origin), backpressure both ways, the idle and
// minimum-rate timers, and failures mid-body. Thread rules: see Worker.swift.
import Glibc
import EdgeConfig
import EdgeHTTP
import EdgeIO
import EdgeUpstream
import EdgeTLS
import EdgeCache

extension Worker {
    /// Moves request body bytes from the client buffer to the origin buffer.
    func pumpRequestBody(_ c: ClientConnection) {
        guard let o = c.ex.origin, o.connected, !c.ex.bodyDone, let ib = c.inBuf else { return }
        if o.outBuf == nil { o.outBuf = takeBuffer() }
        let ob = o.outBuf!
        var progressed = true
        while progressed && !c.ex.bodyDone && !c.closed && o.client === c {
            progressed = false
            while ob.readableBytes < highWater && !ib.isEmpty && !c.ex.bodyDone {
                switch c.ex.body {
                case .none:
                    c.ex.bodyState = .complete
                case .length(let rem):
                    let take = Int(min(rem, Int64(ib.readableBytes), Int64(highWater)))
                    ob.append(ib.readPointer, count: take)
                    if c.ex.mirror != nil { teeMirror(c, UnsafeRawBufferPointer(start: ib.readPointer, count: take), end: rem == Int64(take)) }
                    ib.consume(take)
                    c.ex.bytesIn += Int64(take)
                    let left = rem - Int64(take)
                    c.ex.bodyState = left == 0 ? .complete : .streaming(.length(left))
                    progressed = true
                case .chunked(var dec):
                    let (ev, next) = dec.decode(ib.readView, from: 0)
                    c.ex.bodyState = .streaming(.chunked(dec))
                    switch ev {
                    case .data(let r):
                        c.ex.bodyBytes += Int64(r.count)
                        if c.ex.bodyBytes > (c.ex.tenant?.limits.maxBodyBytes ?? 0) { return requestBodyFailed(c, 413) }
                        // Re-framed towards the origin (the forward head says chunked).
                        forwardChunk(UnsafeRawBufferPointer(rebasing: ib.readView[r]), to: ob)
                        if c.ex.mirror != nil { teeMirror(c, UnsafeRawBufferPointer(rebasing: ib.readView[r]), end: false) }
                    case .end:
                        forwardChunkedEnd(to: ob)
                        if c.ex.mirror != nil { teeMirror(c, UnsafeRawBufferPointer(start: nil, count: 0), end: true) }
                        c.ex.bodyState = .complete
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
                    if readClientOnce(c, ib) > 0 { readAny = true }
                }
                if readAny { progressed = true }
            }
        }
        if c.h2Parent != nil { h2BodyTaken(c) }
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
        c.ex.bodyState = .none
        c.inBuf?.clear()
        if c.ex.responseStarted { abortClient(c) } else { respondError(c, status) }
    }
}
