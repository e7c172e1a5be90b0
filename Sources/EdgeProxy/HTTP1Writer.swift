// The one writer of client responses, HTTP/1.1 on the wire. Every response,
// whatever made it (an origin relay, a cache hit, a collapsed follower's
// stream, a directory file, a compressed body, an error or redirect edge
// generates), leaves through these calls:
//
//   headStart / generatedHead   the status line (and Date, Server for edge's own)
//   (fields)                    the producer appends its field lines, "Name: value\r\n"
//   headEnd(body:)              the framing this writer chooses for the body the
//                               producer announces (none, a length, a stream), the
//                               Connection field, the end of the head
//   sendBody / sendStored       body bytes in that framing; a stored body without a copy
//   endBody                     the end of the body (the last chunk, when chunked)
//   sendContinue                the interim 100 for Expect: 100-continue
//   sendInterim                 an origin's other 1xx (103 Early Hints, 102), relayed
//
// Only this file decides Content-Length vs chunked vs close-delimited and
// what Connection says; the HTTP/1.1 syntax itself is EdgeHTTP's
// (HTTP1Serializer, ChunkFramer). A second transport (HTTP/2) implements the
// same calls over its own framing. Thread rules: see Worker.swift.
import EdgeHTTP
import EdgeIO
import EdgeCache

/// The most plaintext one TLS record carries (RFC 8446 §5.1).
let tlsRecordPayload = 16 * 1024

/// The body that follows a response head, as its producer knows it.
enum BodyLength {
    /// No body (HEAD, 304, 204, or a length-0 answer that says so itself).
    case none
    /// Exactly this many bytes.
    case length(Int64)
    /// Bytes of a length not known yet (relayed, compressed on the way).
    case stream
}

extension Worker {
    /// Starts the exchange's response head with its status line, in the
    /// client's output (or in `held`, a head kept back until its body is known).
    @inline(__always) func headStart(_ c: ClientConnection, _ status: Int, reason: UnsafeRawBufferPointer? = nil, held: IOBuffer? = nil) -> IOBuffer {
        if c.outBuf == nil { c.outBuf = takeBuffer() }
        let b = held ?? c.outBuf!
        HTTP1Serializer.appendStatusLine(status, reason: reason, to: b)
        return b
    }

    /// Starts a response edge generates itself: the status line, Date and `Server: edge`.
    @inline(__always) func generatedHead(_ c: ClientConnection, _ status: Int) -> IOBuffer {
        let e = c.ex
        e.status = status
        e.response = .started
        let b = headStart(c, status)
        b.append(date.line.readView)
        b.append("Server: edge\r\n")
        return b
    }

    /// Ends the head in `b`: the framing fields for `body`, then Connection and
    /// the blank line. A stream is chunked for HTTP/1.1 clients and delimited by
    /// closing the connection for HTTP/1.0 ones. `headOnly`: the answer to a
    /// HEAD, with the framing fields a GET would get and no body.
    func headEnd(_ c: ClientConnection, _ b: IOBuffer, body: BodyLength, headOnly: Bool = false) {
        let e = c.ex
        let http10 = e.head.minorVersion == 0
        switch body {
        case .none:
            e.framing = .asIs
        case .length(let n):
            e.framing = .asIs
            HTTP1Serializer.appendContentLength(n, to: b)
        case .stream:
            if !http10 {
                e.framing = .chunked
                HTTP1Serializer.appendChunkedField(to: b)
            } else if !headOnly {
                e.framing = .close
                c.keepAlive = false
            }
        }
        if headOnly { e.framing = .asIs }
        if server.requestID { appendRequestID(e, b) }
        if let cookie = e.stickyCookie { b.append(cookie) }
        if stopping { c.keepAlive = false }
        HTTP1Serializer.appendEndOfHead(close: !c.keepAlive, http10: http10, to: b)
        e.response = .started
    }

    /// Ends the head of a 101 that switches the connection to a WebSocket tunnel
    /// (Tunnel.swift): after the blank line the bytes are the tunnel's.
    func headEndSwitching(_ c: ClientConnection, _ b: IOBuffer) {
        if server.requestID { appendRequestID(c.ex, b) }
        b.append("Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        c.ex.framing = .asIs
        c.ex.response = .started
    }

    /// How many more response bytes this exchange may queue before its producer
    /// (the origin relay, a follower's stream, a file) pauses until the writer
    /// drains: backpressure is the exchange's. HTTP/1 serves one exchange at a
    /// time, so its room is what the connection's output has left; a
    /// multiplexed transport answers per stream.
    @inline(__always) func sendRoom(_ c: ClientConnection) -> Int {
        let room = highWater - (c.outBuf?.readableBytes ?? 0)
        // An HTTP/2 stream also counts what waits for the client's window (HTTP2.swift).
        return c.h2Parent == nil ? room : min(room, h2Room(c, c.h2Out))
    }

    /// Response body bytes in the framing the head chose.
    @inline(__always) func sendBody(_ c: ClientConnection, _ bytes: UnsafeRawBufferPointer, to ob: IOBuffer) {
        if c.ex.framing == .chunked { ChunkFramer.appendChunk(bytes, to: ob) } else { ob.append(bytes) }
    }

    /// Bytes `from..<to` of a stored body after the head (a head announced with
    /// their length). From `copyBodyBelow` bytes on they are not copied: the
    /// transport writes them from the stored body itself (writev, sendfile, or
    /// TLS from the bytes in place; see flushClient).
    @inline(__always) func sendStored(_ c: ClientConnection, _ s: StoredResponse, from: Int, to: Int) {
        guard to > from else { return }
        // Over TLS a body that fits in one record with its head is copied after
        // the head: one SSL_write, one record, one syscall (not two of each).
        let oneRecord = c.tls != nil && to - from + (c.outBuf?.readableBytes ?? 0) <= tlsRecordPayload
        if to - from >= Worker.copyBodyBelow && !oneRecord {
            c.pendingBody = s
            c.pendingFrom = from
            c.pendingTo = to
            c.pendingFirst = true
        } else {
            s.withBody { c.outBuf!.append(UnsafeRawBufferPointer(rebasing: $0[from..<to])) }
        }
    }

    /// A stored body to go out after what is already pending (the slices of
    /// one response, in order: Slices.swift).
    func sendStoredAfter(_ c: ClientConnection, _ s: StoredResponse, from: Int, to: Int) {
        if c.pendingBody == nil && c.pendingMore.isEmpty { sendStored(c, s, from: from, to: to) } else { c.pendingMore.append((s, from, to)) }
    }

    /// A stored body shorter than this is copied after its head and goes in one
    /// send; a longer one is written in place with the head (one writev). The
    /// copy costs less than writev's second segment up to a few KiB.
    static let copyBodyBelow = 4096

    /// The stored body written after the one just finished (nil when none is queued).
    func nextPendingBody(_ c: ClientConnection) {
        if c.pendingMore.isEmpty { c.pendingBody = nil; return }
        let (s, from, to) = c.pendingMore.removeFirst()
        c.pendingBody = s; c.pendingFrom = from; c.pendingTo = to; c.pendingFirst = true
    }

    /// The end of the response body: the last chunk when chunked, nothing otherwise.
    @inline(__always) func endBody(_ c: ClientConnection) {
        let e = c.ex
        if e.framing == .chunked, let ob = c.outBuf { ChunkFramer.appendEnd(to: ob) }
        e.framing = .asIs
    }

    /// `100 Continue`, before a request body the client holds back for it.
    func sendContinue(_ c: ClientConnection) {
        if c.outBuf == nil { c.outBuf = takeBuffer() }
        HTTP1Serializer.appendContinue(to: c.outBuf!)
        flushClient(c)
    }

    /// An origin's interim response (`head`, parsed from `p`) relayed ahead of
    /// the final one (RFC 9110 §15.2), with its fields but no hop-by-hop ones,
    /// and sent at once (Early Hints are worth something only before the final
    /// response). The exchange's response has not started: what follows is
    /// still a whole response, a 502 included.
    func sendInterim(_ c: ClientConnection, _ head: ResponseHead, _ p: UnsafeRawBufferPointer) {
        let b = headStart(c, head.status, reason: UnsafeRawBufferPointer(rebasing: p[head.reasonRange]))
        for f in head.fields {
            if f.known.isHopByHop || (head.connectionNamesFields && isNamedByConnection(p, head.fields, f)) { continue }
            b.append(UnsafeRawBufferPointer(rebasing: p[f.nameStart..<f.valueEnd]))
            b.append("\r\n")
        }
        b.append("\r\n")
        flushClient(c)
    }
}
