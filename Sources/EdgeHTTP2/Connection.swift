// The server side of one HTTP/2 connection as a state machine (RFC 9113):
// bytes in, events and bytes to send out; the caller does the I/O and serves
// the requests. Stream states are a value enum (§5.1); flow control is
// tracked both ways (§5.2, §6.9); and the defences of the 2023–2024 attacks are
// on by default (H2Limits): Rapid Reset (CVE-2023-44487), CONTINUATION floods,
// HPACK bombs, control-frame floods. Pure: every call that counts rates takes
// `now` (milliseconds); nothing reads a clock. Owned by the one worker that
// owns the connection's socket; no locks.

/// The defences and settings, each with a safe default.
public struct H2Limits: Sendable, Equatable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS: more open at once are refused (REFUSED_STREAM).
    public var maxConcurrentStreams = 100
    /// SETTINGS_INITIAL_WINDOW_SIZE: what a client may send on a stream before edge reads it.
    public var initialWindow = 65_535
    /// The connection's receive window (raised from 65,535 by a WINDOW_UPDATE at the start).
    public var connectionWindow = 1 << 20
    /// SETTINGS_MAX_FRAME_SIZE we accept.
    public var maxFrameSize = 16_384
    /// SETTINGS_HEADER_TABLE_SIZE: the most the client's encoder may put in our decoder's table.
    public var headerTableSize = 4_096
    /// SETTINGS_MAX_HEADER_LIST_SIZE: decoded fields (names, values, 32 each); larger is answered 431.
    public var maxHeaderListSize = 64 * 1024
    /// A header block's encoded bytes across HEADERS and CONTINUATION, capped before
    /// any decoding: more is a CONTINUATION flood (GOAWAY ENHANCE_YOUR_CALM).
    public var maxHeaderBlockBytes = 64 * 1024
    /// Streams the client resets (RST_STREAM) per `window`: more is Rapid Reset (GOAWAY ENHANCE_YOUR_CALM).
    public var maxResetsPerWindow = 100
    /// SETTINGS, PING, WINDOW_UPDATE, PRIORITY, empty DATA and empty header fragments per `window`.
    public var maxControlFramesPerWindow = 1_000
    public var windowMillis: Int64 = 10_000
    /// Advertise RFC 8441 extended CONNECT (WebSocket over HTTP/2).
    public var enableConnectProtocol = true
    public init() {}
}

/// A stream's state (RFC 9113 §5.1); edge never pushes, so the reserved states never occur.
public enum StreamState: Equatable, Sendable {
    case idle, open, halfClosedLocal, halfClosedRemote, closed

    /// The client ended its side (END_STREAM received).
    func remoteEnded() -> StreamState {
        switch self {
        case .idle, .open: return .halfClosedRemote
        case .halfClosedLocal, .halfClosedRemote, .closed: return .closed
        }
    }
    /// Edge ended its side (END_STREAM sent).
    func localEnded() -> StreamState {
        switch self {
        case .idle, .open: return .halfClosedLocal
        case .halfClosedLocal, .halfClosedRemote, .closed: return .closed
        }
    }
    var remoteMaySend: Bool { self == .open || self == .halfClosedLocal }
}

/// A request head as the client sent it, checked against RFC 9113 §8.
public struct H2Request: Equatable, Sendable {
    public var method: [UInt8] = []
    public var scheme: [UInt8] = []
    public var authority: [UInt8] = []
    public var path: [UInt8] = []
    /// `:protocol` of an extended CONNECT (RFC 8441), e.g. "websocket".
    public var connectProtocol: [UInt8]?
    /// The regular fields, in order; cookie crumbs kept apart (joined by `http1Head`).
    public var fields: [HeaderField] = []
    /// content-length, when given: the DATA must add up to it.
    public var contentLength: Int64?
}

public enum H2Event: Equatable, Sendable {
    /// A complete, valid request head on a new stream.
    case request(UInt32, H2Request, endStream: Bool)
    /// Request body bytes: the range of the input given to `receive`.
    case data(UInt32, Range<Int>, endStream: Bool)
    /// Trailer fields ending the request.
    case trailers(UInt32, [HeaderField])
    /// The decoded head was larger than maxHeaderListSize: answer 431 on it.
    case headersTooLarge(UInt32)
    /// The client reset the stream (or edge did, for a malformed request): stop serving it.
    case reset(UInt32, H2Error)
    /// The client's window grew (0: the connection's): more may be sent.
    case windowOpened(UInt32)
    /// The client is going away: streams above this id will not be served.
    case goaway(UInt32, H2Error)
}

/// What `receive` leaves the caller to do with the connection.
public enum H2Outcome: Equatable, Sendable {
    /// Read on; `consumed` bytes of the input are done with (the rest is an incomplete frame).
    case consumed(Int)
    /// A connection error: the GOAWAY is in the output; send it, then close.
    case close(H2Error)
}

/// Streams by id: a dictionary whose key hashes with one multiply instead of
/// SipHash (a stream is looked up about ten times per request). The ids are
/// the client's, but a connection holds at most a few hundred streams
/// (forgetClosed), so even colliding ids cost only a short probe.
struct StreamTable<Value> {
    struct Key: Hashable {
        let id: UInt32
        func hash(into h: inout Hasher) { h.combine(id) }
        func _rawHashValue(seed: Int) -> Int {
            let x = (UInt64(id) ^ UInt64(UInt(bitPattern: seed))) &* 0x9e37_79b9_7f4a_7c15
            return Int(truncatingIfNeeded: x ^ (x >> 29))
        }
    }
    var table: [Key: Value] = [:]
    subscript(id: UInt32) -> Value? {
        get { table[Key(id: id)] }
        set { table[Key(id: id)] = newValue }
    }
    var count: Int { table.count }
    var keys: [UInt32] { table.keys.map { $0.id } }
    /// Drops the entries `gone` says (one pass, no lookups).
    mutating func removeAll(where gone: (Value) -> Bool) { table = table.filter { !gone($0.value) } }
}

public struct H2Connection {
    public let limits: H2Limits
    var decoder: HPACKDecoder
    public var encoder = HPACKEncoder()

    struct Stream {
        var state = StreamState.idle
        /// What edge may still send on it (the client's SETTINGS_INITIAL_WINDOW_SIZE, WINDOW_UPDATEs).
        var sendWindow: Int
        /// What the client may still send before edge gives more credit.
        var recvWindow: Int
        var contentLength: Int64?
        var received: Int64 = 0
        /// The request head has been delivered (later HEADERS are trailers).
        var headDone = false
    }
    var streams = StreamTable<Stream>()
    /// The highest stream id the client opened (ids only go up, §5.1.1).
    public private(set) var lastStream: UInt32 = 0
    /// Streams open or half-closed (kept by `put`, so refusing a stream needs no scan).
    public private(set) var openStreams = 0

    /// Stores a stream's new state, counting it in or out of `openStreams`.
    @inline(__always) mutating func put(_ id: UInt32, _ s: Stream) {
        @inline(__always) func counts(_ st: StreamState) -> Bool { st != .closed && st != .idle }
        let was = streams[id].map { counts($0.state) } ?? false
        let now = counts(s.state)
        if was != now { openStreams += now ? 1 : -1 }
        streams[id] = s
    }

    // Where the input is: before the preface, waiting for the client's first SETTINGS, or framing.
    enum Phase { case preface, firstSettings, frames }
    var phase = Phase.preface
    /// A header block in progress (HEADERS without END_HEADERS): its stream, flags, bytes.
    var block: (stream: UInt32, endStream: Bool, bytes: [UInt8])?

    /// The client's settings as they apply to what edge sends.
    public private(set) var peerMaxFrameSize = 16_384
    var peerInitialWindow = 65_535
    public private(set) var connectionSendWindow = 65_535
    var connectionRecvWindow = 65_535
    /// GOAWAY sent: no stream above this id is served.
    public private(set) var goawaySent: UInt32?

    // Rate counters over `limits.windowMillis`.
    var windowStart: Int64 = 0
    var resets = 0
    var controlFrames = 0

    public init(limits: H2Limits = H2Limits()) {
        self.limits = limits
        decoder = HPACKDecoder(maxTableSize: limits.headerTableSize)
    }

    /// What edge sends first: its SETTINGS and the connection window it offers (§3.4).
    public mutating func start(into out: inout [UInt8]) {
        var s: [(Setting, UInt32)] = [(.maxConcurrentStreams, UInt32(limits.maxConcurrentStreams)), (.initialWindowSize, UInt32(limits.initialWindow)),
                                      (.maxFrameSize, UInt32(limits.maxFrameSize)), (.maxHeaderListSize, UInt32(limits.maxHeaderListSize)),
                                      (.enablePush, 0)]
        if limits.headerTableSize != 4096 { s.append((.headerTableSize, UInt32(limits.headerTableSize))) }
        if limits.enableConnectProtocol { s.append((.enableConnectProtocol, 1)) }
        Frames.appendSettings(s, into: &out)
        if limits.connectionWindow > 65_535 {
            Frames.appendWindowUpdate(0, UInt32(limits.connectionWindow - 65_535), into: &out)
            connectionRecvWindow = limits.connectionWindow
        }
    }

    public func state(_ stream: UInt32) -> StreamState {
        if let s = streams[stream] { return s.state }
        return stream <= lastStream ? .closed : .idle
    }

    /// Takes as many whole frames from `p` as there are.
    public mutating func receive(_ p: UnsafeRawBufferPointer, now: Int64, events: inout [H2Event], out: inout [UInt8]) -> H2Outcome {
        var at = 0
        if phase == .preface {
            let n = min(p.count, Frames.preface.count)
            guard p.prefix(n).elementsEqual(Frames.preface.prefix(n)) else { return fail(.protocolError, &out) }
            guard n == Frames.preface.count else { return .consumed(0) }
            at = n
            phase = .firstSettings
        }
        while at < p.count {
            let rest = UnsafeRawBufferPointer(rebasing: p[at...])
            switch Frames.next(rest, maxFrameSize: limits.maxFrameSize) {
            case .needMore: return .consumed(at)
            case .error(let e): return fail(e, &out)
            case .frame(let h, let r):
                let payload = (r.lowerBound + at)..<(r.upperBound + at)
                if let e = frame(h, payload, p, now: now, events: &events, out: &out) { return fail(e, &out) }
                at = payload.upperBound
            }
        }
        return .consumed(at)
    }

    mutating func fail(_ e: H2Error, _ out: inout [UInt8]) -> H2Outcome {
        Frames.appendGoaway(lastStream: lastStream, e, into: &out)
        goawaySent = lastStream
        return .close(e)
    }

    /// Counts a frame against a per-window budget; true when the budget is spent.
    mutating func overBudget(_ counter: WritableKeyPath<H2Connection, Int>, _ limit: Int, now: Int64) -> Bool {
        if now - windowStart >= limits.windowMillis { windowStart = now; resets = 0; controlFrames = 0 }
        self[keyPath: counter] += 1
        return self[keyPath: counter] > limit
    }

    mutating func controlFrame(now: Int64) -> H2Error? {
        overBudget(\.controlFrames, limits.maxControlFramesPerWindow, now: now) ? .enhanceYourCalm : nil
    }

    /// One frame; a returned error is a connection error.
    mutating func frame(_ h: FrameHeader, _ payload: Range<Int>, _ p: UnsafeRawBufferPointer, now: Int64,
                        events: inout [H2Event], out: inout [UInt8]) -> H2Error? {
        if phase == .firstSettings {
            guard h.type == .settings, !h.has(FrameFlag.ack) else { return .protocolError }
            phase = .frames
        }
        // Inside a header block only its CONTINUATION may come (§6.10).
        if let b = block {
            guard h.type == .continuation, h.stream == b.stream else { return .protocolError }
            if payload.isEmpty && !h.has(FrameFlag.endHeaders), let e = controlFrame(now: now) { return e }
            guard b.bytes.count + payload.count <= limits.maxHeaderBlockBytes else { return .enhanceYourCalm }
            block!.bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[payload]))
            if h.has(FrameFlag.endHeaders) {
                let done = block!
                block = nil
                return done.bytes.withUnsafeBytes { headerBlock(done.stream, $0, endStream: done.endStream, events: &events, out: &out) }
            }
            return nil
        }
        guard let type = h.type else { return nil }   // unknown types are ignored (§5.5)
        switch type {
        case .data:
            return dataFrame(h, payload, p, now: now, events: &events, out: &out)
        case .headers:
            guard h.stream != 0, h.stream & 1 == 1 else { return .protocolError }
            guard let content = Frames.unpadded(h, payload, p, skip: h.has(FrameFlag.priority) ? 5 : 0) else { return .protocolError }
            if h.has(FrameFlag.priority), Frames.u32(p, content.lowerBound - 5) & 0x7FFF_FFFF == h.stream { return streamError(h.stream, .protocolError, &events, &out) }
            if content.isEmpty && !h.has(FrameFlag.endHeaders), let e = controlFrame(now: now) { return e }
            guard content.count <= limits.maxHeaderBlockBytes else { return .enhanceYourCalm }
            // A whole block in one frame is decoded where it lies; only one that
            // continues is copied (it must outlive this input).
            let bytes = UnsafeRawBufferPointer(rebasing: p[content])
            if h.has(FrameFlag.endHeaders) { return headerBlock(h.stream, bytes, endStream: h.has(FrameFlag.endStream), events: &events, out: &out) }
            block = (h.stream, h.has(FrameFlag.endStream), Array(bytes))
            return nil
        case .priority:
            // Accepted and ignored (RFC 9218 replaces it); a stream may not depend on itself.
            guard h.stream != 0 else { return .protocolError }
            guard payload.count == 5 else { return streamError(h.stream, .frameSizeError, &events, &out) }
            if let e = controlFrame(now: now) { return e }
            if Frames.u32(p, payload.lowerBound) & 0x7FFF_FFFF == h.stream { return streamError(h.stream, .protocolError, &events, &out) }
            return nil
        case .rstStream:
            guard h.stream != 0 else { return .protocolError }
            guard payload.count == 4 else { return .frameSizeError }
            guard h.stream <= lastStream else { return .protocolError }   // an idle stream (§6.4)
            if overBudget(\.resets, limits.maxResetsPerWindow, now: now) { return .enhanceYourCalm }
            if var s = streams[h.stream], s.state != .closed {
                s.state = .closed
                put(h.stream, s)
                events.append(.reset(h.stream, H2Error(rawValue: Frames.u32(p, payload.lowerBound)) ?? .internalError))
            }
            forgetClosed()
            return nil
        case .settings:
            guard h.stream == 0 else { return .protocolError }
            if let e = controlFrame(now: now) { return e }
            if h.has(FrameFlag.ack) { return payload.isEmpty ? nil : .frameSizeError }
            guard payload.count % 6 == 0 else { return .frameSizeError }
            var i = payload.lowerBound
            while i < payload.upperBound {
                let id = UInt16(p[i]) << 8 | UInt16(p[i + 1])
                let v = Frames.u32(p, i + 2)
                i += 6
                switch Setting(rawValue: id) {
                case .enablePush: guard v <= 1 else { return .protocolError }
                case .initialWindowSize:
                    guard v <= 0x7FFF_FFFF else { return .flowControlError }
                    // §6.9.2: every stream's send window moves by the difference.
                    let delta = Int(v) - peerInitialWindow
                    peerInitialWindow = Int(v)
                    // (In stream order, so the events do not depend on the table's layout.)
                    for id in streams.keys.sorted() {
                        guard var s = streams[id], s.state != .closed else { continue }
                        s.sendWindow += delta
                        guard s.sendWindow <= 0x7FFF_FFFF else { return .flowControlError }
                        put(id, s)
                        if delta > 0 { events.append(.windowOpened(id)) }
                    }
                case .maxFrameSize:
                    guard v >= 16_384, v <= 16_777_215 else { return .protocolError }
                    peerMaxFrameSize = Int(v)
                case .headerTableSize:
                    encoder.setMaxTableSize(Int(v))
                case .maxConcurrentStreams, .maxHeaderListSize, .enableConnectProtocol, nil:
                    break   // edge never opens streams; unknown ids are ignored
                }
            }
            Frames.appendSettingsAck(into: &out)
            return nil
        case .pushPromise:
            return .protocolError   // a client never pushes (§8.4)
        case .ping:
            guard h.stream == 0 else { return .protocolError }
            guard payload.count == 8 else { return .frameSizeError }
            if h.has(FrameFlag.ack) { return nil }
            if let e = controlFrame(now: now) { return e }
            Frames.appendPing(ack: true, UnsafeRawBufferPointer(rebasing: p[payload]), into: &out)
            return nil
        case .goaway:
            guard h.stream == 0 else { return .protocolError }
            guard payload.count >= 8 else { return .frameSizeError }
            events.append(.goaway(Frames.u32(p, payload.lowerBound) & 0x7FFF_FFFF, H2Error(rawValue: Frames.u32(p, payload.lowerBound + 4)) ?? .internalError))
            return nil
        case .windowUpdate:
            guard payload.count == 4 else { return .frameSizeError }
            if let e = controlFrame(now: now) { return e }
            let inc = Int(Frames.u32(p, payload.lowerBound) & 0x7FFF_FFFF)
            if h.stream == 0 {
                guard inc > 0 else { return .protocolError }
                connectionSendWindow += inc
                guard connectionSendWindow <= 0x7FFF_FFFF else { return .flowControlError }
                events.append(.windowOpened(0))
                return nil
            }
            guard h.stream <= lastStream else { return .protocolError }   // idle
            guard var s = streams[h.stream], s.state != .closed else { return nil }   // closed: ignored (§6.9)
            guard inc > 0 else { return streamError(h.stream, .protocolError, &events, &out) }
            s.sendWindow += inc
            guard s.sendWindow <= 0x7FFF_FFFF else { return streamError(h.stream, .flowControlError, &events, &out) }
            put(h.stream, s)
            events.append(.windowOpened(h.stream))
            return nil
        case .continuation:
            return .protocolError   // without a HEADERS before it
        }
    }

    mutating func dataFrame(_ h: FrameHeader, _ payload: Range<Int>, _ p: UnsafeRawBufferPointer, now: Int64,
                            events: inout [H2Event], out: inout [UInt8]) -> H2Error? {
        guard h.stream != 0 else { return .protocolError }
        guard h.stream <= lastStream else { return .protocolError }   // idle
        // Flow control counts the whole payload, padding included (§6.9.1).
        connectionRecvWindow -= payload.count
        guard connectionRecvWindow >= 0 else { return .flowControlError }
        guard let content = Frames.unpadded(h, payload, p) else { return .protocolError }
        if content.isEmpty && !h.has(FrameFlag.endStream), let e = controlFrame(now: now) { return e }
        guard var s = streams[h.stream], s.state.remoteMaySend else {
            // Closed, or its side already ended: the stream is done with (§5.1); the
            // connection window is given back so other streams are not starved.
            giveBack(0, payload.count, &out)
            return streamError(h.stream, .streamClosed, &events, &out)
        }
        s.recvWindow -= payload.count
        guard s.recvWindow >= 0 else { put(h.stream, s); return streamError(h.stream, .flowControlError, &events, &out) }
        s.received += Int64(content.count)
        let end = h.has(FrameFlag.endStream)
        if let cl = s.contentLength, s.received > cl || (end && s.received != cl) {
            put(h.stream, s)
            return streamError(h.stream, .protocolError, &events, &out)
        }
        if end { s.state = s.state.remoteEnded() }
        put(h.stream, s)
        // Padding is credited back at once; the content when the caller has used it (consumed).
        if payload.count > content.count { giveBack(h.stream, payload.count - content.count, &out) }
        events.append(.data(h.stream, content, endStream: end))
        return nil
    }

    /// A complete header block: a new request, or trailers.
    mutating func headerBlock(_ id: UInt32, _ bytes: UnsafeRawBufferPointer, endStream: Bool, events: inout [H2Event], out: inout [UInt8]) -> H2Error? {
        var fields: [HeaderField] = []
        fields.reserveCapacity(16)
        let fits: Bool
        do {
            fits = try decoder.decode(bytes, maxListSize: limits.maxHeaderListSize) { fields.append($0) }
        } catch {
            return .compressionError
        }
        if var s = streams[id], s.headDone {
            // Trailers: they end the stream and carry no pseudo-header (§8.1).
            guard s.state.remoteMaySend else { return streamError(id, .streamClosed, &events, &out) }
            guard endStream, fits, fields.allSatisfy({ $0.name.first != 58 && H2Connection.validField($0) }) else {
                return streamError(id, .protocolError, &events, &out)
            }
            if let cl = s.contentLength, s.received != cl { return streamError(id, .protocolError, &events, &out) }
            s.state = s.state.remoteEnded()
            put(id, s)
            events.append(.trailers(id, fields))
            return nil
        }
        // A new stream: ids go up (§5.1.1); one at or below the last is a closed stream's.
        guard id > lastStream else { return .protocolError }
        lastStream = id
        if let g = goawaySent, id > g { return nil }   // after GOAWAY: ignored (§6.8)
        if openStreams >= limits.maxConcurrentStreams {
            put(id, Stream(state: .closed, sendWindow: 0, recvWindow: 0))
            Frames.appendRstStream(id, .refusedStream, into: &out)
            forgetClosed()
            return nil
        }
        var s = Stream(state: .open, sendWindow: peerInitialWindow, recvWindow: limits.initialWindow)
        s.headDone = true
        if endStream { s.state = s.state.remoteEnded() }
        guard fits else {
            put(id, s)
            events.append(.headersTooLarge(id))
            return nil
        }
        guard let req = H2Connection.request(fields, connectProtocol: limits.enableConnectProtocol) else {
            put(id, s)
            return streamError(id, .protocolError, &events, &out)
        }
        s.contentLength = req.contentLength
        if endStream, let cl = req.contentLength, cl != 0 { put(id, s); return streamError(id, .protocolError, &events, &out) }
        put(id, s)
        events.append(.request(id, req, endStream: endStream))
        return nil
    }

    /// A stream error (§5.4.2): RST_STREAM, the stream closed, the caller told.
    mutating func streamError(_ id: UInt32, _ e: H2Error, _ events: inout [H2Event], _ out: inout [UInt8]) -> H2Error? {
        Frames.appendRstStream(id, e, into: &out)
        if var s = streams[id], s.state != .closed {
            s.state = .closed
            put(id, s)
            events.append(.reset(id, e))
        } else if streams[id] == nil {
            put(id, Stream(state: .closed, sendWindow: 0, recvWindow: 0))
        }
        forgetClosed()
        return nil
    }

    /// Closed streams are kept only while they may still matter (a few hundred).
    mutating func forgetClosed() {
        guard streams.count > 2 * limits.maxConcurrentStreams + 16 else { return }
        streams.removeAll { $0.state == .closed }
    }

    mutating func giveBack(_ stream: UInt32, _ n: Int, _ out: inout [UInt8]) {
        guard n > 0 else { return }
        if stream == 0 {
            connectionRecvWindow += n
            Frames.appendWindowUpdate(0, UInt32(n), into: &out)
        } else if var s = streams[stream] {
            s.recvWindow += n
            put(stream, s)
            connectionRecvWindow += n
            Frames.appendWindowUpdate(0, UInt32(n), into: &out)
            if s.state.remoteMaySend { Frames.appendWindowUpdate(stream, UInt32(n), into: &out) }
        }
    }

    // MARK: The caller's side

    /// The caller used `n` bytes of a stream's body (sent them on to the origin):
    /// the client may send that much more. Until then a slow origin holds the
    /// client to its window, never more buffered than that.
    public mutating func consumed(_ stream: UInt32, _ n: Int, into out: inout [UInt8]) {
        giveBack(stream, n, &out)
    }

    /// How much of a response body may be sent on `stream` now (both windows).
    public func sendable(_ stream: UInt32) -> Int {
        guard let s = streams[stream], s.state == .open || s.state == .halfClosedRemote else { return 0 }
        return max(0, min(s.sendWindow, connectionSendWindow))
    }

    /// Writes a response head (edge's fields, HPACK-encoded) as HEADERS/CONTINUATION.
    public mutating func sendHeaders(_ stream: UInt32, _ fields: [HeaderField], endStream: Bool, into out: inout [UInt8]) {
        let start = beginHeaders(into: &out)
        for f in fields { encoder.encode(f, into: &out) }
        endHeaders(stream, from: start, endStream: endStream, into: &out)
    }

    /// A response head whose fields are given as raw bytes (any case; sent
    /// lowercase), `fields` calling back once per field: no copies of them.
    public mutating func sendHeaders(_ stream: UInt32, status: Int, endStream: Bool, into out: inout [UInt8],
                                     fields: (_ emit: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) -> Void) {
        let start = beginHeaders(into: &out)
        var digits: (UInt8, UInt8, UInt8) = (UInt8(48 + status / 100 % 10), UInt8(48 + status / 10 % 10), UInt8(48 + status % 10))
        withUnsafeBytes(of: &digits) { d in
            H2Connection.statusName.withUnsafeBytes { n in encoder.encode(name: n, value: d, into: &out) }
        }
        fields { name, value in encoder.encode(name: name, value: value, into: &out) }
        endHeaders(stream, from: start, endStream: endStream, into: &out)
    }

    /// A header block is encoded straight into the output after room for its
    /// frame header (the frame header is written once its length is known).
    mutating func beginHeaders(into out: inout [UInt8]) -> Int {
        let start = out.count
        out.append(contentsOf: H2Connection.nineZeros)
        encoder.beginBlock(into: &out)
        return start
    }

    /// The block after `start` becomes a HEADERS frame, or HEADERS and
    /// CONTINUATIONs when it is larger than the client's frame size.
    mutating func endHeaders(_ stream: UInt32, from start: Int, endStream: Bool, into out: inout [UInt8]) {
        let n = out.count - start - 9
        if n <= peerMaxFrameSize {
            Frames.writeHeader(FrameHeader(length: n, type: .headers, flags: FrameFlag.endHeaders | (endStream ? FrameFlag.endStream : 0),
                                           stream: stream), at: start, in: &out)
        } else {
            let block = Array(out[(start + 9)...])
            out.removeSubrange(start...)
            Frames.appendHeaderBlock(stream, block, endStream: endStream, maxFrameSize: peerMaxFrameSize, into: &out)
        }
        if endStream { ended(stream) }
    }

    static let nineZeros = [UInt8](repeating: 0, count: 9)

    /// Writes body bytes as DATA (at most `sendable`, in frames of the peer's
    /// maximum size); returns how many were taken.
    public mutating func sendData(_ stream: UInt32, _ bytes: UnsafeRawBufferPointer, endStream: Bool, into out: inout [UInt8]) -> Int {
        let n = min(bytes.count, sendable(stream))
        var at = 0
        repeat {
            let k = min(peerMaxFrameSize, n - at)
            let last = at + k == n
            Frames.appendData(stream, UnsafeRawBufferPointer(rebasing: bytes[at..<(at + k)]), endStream: endStream && last && n == bytes.count, into: &out)
            at += k
        } while at < n
        connectionSendWindow -= n
        streams[stream]?.sendWindow -= n
        if endStream && n == bytes.count { ended(stream) }
        return n
    }

    mutating func ended(_ stream: UInt32) {
        guard var s = streams[stream] else { return }
        s.state = s.state.localEnded()
        put(stream, s)
        forgetClosed()
    }

    /// Edge gives up a stream (the exchange failed, the client went quiet).
    public mutating func reset(_ stream: UInt32, _ e: H2Error, into out: inout [UInt8]) {
        var ignored: [H2Event] = []
        _ = streamError(stream, e, &ignored, &out)
    }

    /// A graceful stop (reload, shutdown): GOAWAY with the last stream id; the
    /// streams up to it finish, newer ones are not served (§6.8).
    public mutating func goAway(into out: inout [UInt8]) {
        guard goawaySent == nil else { return }
        goawaySent = lastStream
        Frames.appendGoaway(lastStream: lastStream, .noError, into: &out)
    }

    static let statusName: [UInt8] = Array(":status".utf8)

    // MARK: Request semantics (RFC 9113 §8)

    /// Connection-specific fields never allowed in HTTP/2 (§8.2.2).
    /// Names compared as bytes (made once, not per request).
    enum Names {
        static let method = Array(":method".utf8), scheme = Array(":scheme".utf8), authority = Array(":authority".utf8)
        static let path = Array(":path".utf8), `protocol` = Array(":protocol".utf8)
        static let connect = Array("CONNECT".utf8), options = Array("OPTIONS".utf8)
        static let te = Array("te".utf8), trailers = Array("trailers".utf8), contentLength = Array("content-length".utf8)
        static let connectionSpecific = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"].map { Array($0.utf8) }
    }

    /// A connection-specific field (§8.2.2), which makes a request malformed (names are lowercase here).
    static func isConnectionSpecific(_ name: [UInt8]) -> Bool {
        switch name.count {
        case 7, 10, 16, 17: return Names.connectionSpecific.contains(name)
        default: return false
        }
    }

    /// Lowercase token name, and a value without CR, LF, NUL or edge whitespace (§8.2.1).
    static func validField(_ f: HeaderField) -> Bool {
        guard !f.name.isEmpty else { return false }
        for (i, c) in f.name.enumerated() {
            if c == 58 && i == 0 { continue }
            guard c > 0x20, c < 0x7F, !(c >= 65 && c <= 90), c != 58 || i == 0 else { return false }
        }
        for c in f.value where c == 0 || c == 10 || c == 13 { return false }
        if let first = f.value.first, first == 32 || first == 9 { return false }
        if let last = f.value.last, last == 32 || last == 9 { return false }
        return true
    }

    /// The request head from its decoded fields, or nil when it is malformed.
    public static func request(_ fields: [HeaderField], connectProtocol: Bool) -> H2Request? {
        var r = H2Request()
        r.fields.reserveCapacity(fields.count)
        var seen: UInt8 = 0   // pseudo-headers met, one bit each
        var regular = false
        for f in fields {
            guard validField(f) else { return nil }
            if f.name.first == 58 {
                guard !regular else { return nil }   // pseudo-headers come first
                let bit: UInt8
                switch f.name {
                case Names.method: bit = 1; r.method = f.value
                case Names.scheme: bit = 2; r.scheme = f.value
                case Names.authority: bit = 4; r.authority = f.value
                case Names.path: bit = 8; r.path = f.value
                case Names.protocol where connectProtocol: bit = 16; r.connectProtocol = f.value
                default: return nil
                }
                guard seen & bit == 0 else { return nil }
                seen |= bit
                continue
            }
            regular = true
            if isConnectionSpecific(f.name) { return nil }
            if f.name == Names.te && f.value != Names.trailers { return nil }
            if f.name == Names.contentLength {
                guard !f.value.isEmpty, f.value.count <= 18, f.value.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
                let v = f.value.reduce(Int64(0)) { $0 * 10 + Int64($1 - 48) }
                if let old = r.contentLength, old != v { return nil }
                r.contentLength = v
            }
            r.fields.append(f)
        }
        guard !r.method.isEmpty else { return nil }
        if r.method == Names.connect {
            if let proto = r.connectProtocol {
                // Extended CONNECT (RFC 8441 §4): all four pseudo-headers and a protocol.
                guard !proto.isEmpty, !r.scheme.isEmpty, !r.path.isEmpty, !r.authority.isEmpty else { return nil }
            } else {
                guard r.scheme.isEmpty, r.path.isEmpty, !r.authority.isEmpty else { return nil }
            }
            return r
        }
        guard r.connectProtocol == nil, !r.scheme.isEmpty, !r.path.isEmpty else { return nil }
        // :path is "/..." or "*" for OPTIONS (§8.3.1).
        guard r.path.first == 47 || (r.path == [42] && r.method == Names.options) else { return nil }
        return r
    }
}

/// The constant pieces of the HTTP/1.1 heads streams become (made once).
enum H1Pieces {
    static let get = Array("GET".utf8), version = Array(" HTTP/1.1\r\n".utf8), host = Array("host".utf8), cookie = Array("cookie".utf8)
    static let hostColon = Array("host: ".utf8), cookieColon = Array("cookie: ".utf8)
    static let upgrade = Array("connection: upgrade\r\nupgrade: websocket\r\nsec-websocket-key: ".utf8)
    static let chunked = Array("transfer-encoding: chunked\r\n".utf8), close = Array("connection: close\r\n".utf8)
}

extension H2Request {
    /// An extended CONNECT (RFC 8441) for a WebSocket.
    public var isWebSocket: Bool {
        guard let p = connectProtocol, p.count == 9 else { return false }
        return zip(p, "websocket".utf8).allSatisfy { $0 | 0x20 == $1 }
    }

    /// The request as an HTTP/1.1 head (what the pipeline parses and the origin
    /// gets): the method, path and authority (as Host, §8.3.1: when both are
    /// given, :authority wins and a different Host is dropped), the fields in
    /// order, cookie crumbs joined with "; " (§8.2.3). `chunked`: the body's
    /// length is unknown (no content-length), so it is framed chunked. `close`:
    /// one request only (a stream carries one exchange). `websocketKey`: an
    /// extended CONNECT for `websocket` (RFC 8441 §5) becomes the HTTP/1.1
    /// opening handshake: a GET with `Connection: upgrade`, `Upgrade:
    /// websocket` and this `Sec-WebSocket-Key` (HTTP/2 has none; RFC 6455's
    /// origin needs one), the client's other fields (its version, protocols
    /// and extensions) as they came.
    public func http1Head(chunked: Bool, close: Bool = false, websocketKey: [UInt8]? = nil) -> [UInt8] {
        var out: [UInt8] = []
        appendHTTP1Head(into: &out, chunked: chunked, close: close, websocketKey: websocketKey)
        return out
    }

    /// `http1Head` appended to `out` (made of constant pieces: nothing allocated but `out`'s growth).
    public func appendHTTP1Head(into out: inout [UInt8], chunked: Bool, close: Bool = false, websocketKey: [UInt8]? = nil) {
        typealias L = H1Pieces
        var size = method.count + path.count + authority.count + 64
        for f in fields { size += f.name.count + f.value.count + 4 }
        out.reserveCapacity(out.count + size)
        out.append(contentsOf: websocketKey == nil ? method : L.get); out.append(32); out.append(contentsOf: path); out.append(contentsOf: L.version)
        var hostValue = authority
        if hostValue.isEmpty, let h = fields.first(where: { $0.name == L.host }) { hostValue = h.value }
        out.append(contentsOf: L.hostColon); out.append(contentsOf: hostValue); out.append(13); out.append(10)
        var cookies = 0
        for f in fields {
            if f.name == L.host { continue }
            if f.name == L.cookie { cookies += 1; continue }
            out.append(contentsOf: f.name); out.append(58); out.append(32); out.append(contentsOf: f.value); out.append(13); out.append(10)
        }
        if cookies > 0 {
            out.append(contentsOf: L.cookieColon)
            var first = true
            for f in fields where f.name == L.cookie {
                if !first { out.append(59); out.append(32) }
                out.append(contentsOf: f.value)
                first = false
            }
            out.append(13); out.append(10)
        }
        if let key = websocketKey {
            out.append(contentsOf: L.upgrade); out.append(contentsOf: key); out.append(13); out.append(10)
        } else {
            if chunked { out.append(contentsOf: L.chunked) }
            if close { out.append(contentsOf: L.close) }
        }
        out.append(13); out.append(10)
    }
}
