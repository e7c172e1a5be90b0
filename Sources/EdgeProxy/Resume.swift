// An answer that breaks off after its head went out, finished from the
// origin instead of cut short.
//
// Two kinds of answer can end before their length:
// - a body streamed as it is read (phase .stream: a collapsed follower reading
//   its leader's fill, a disk tier's object too large for memory): the disk
//   tier gave the fill up part way (its directory failed, or it was held past
//   the origin's read timeout), a disk block failed its check, or the
//   leader's origin broke off;
// - a body relayed from the origin as it arrives (a miss, a pass; 64 KiB or
//   more, a 200 to a GET sent as it came): the origin closed, reset or
//   stalled mid-body. A fill storing it goes on with the rest (RFC 9111 §3.4
//   lets a cache combine parts of one representation), so its collapsed
//   followers never see the break.
// The client has the head and some of the body; nothing else can be said to
// it. When the response carries a strong entity tag, the bytes still owed are
// asked of the origin, the way a download manager resumes (RFC 9110 §14.2,
// §13.1.5):
//
//     Range: bytes=FROM-LAST
//     If-Range: "the stored tag"
//
// and spliced onto what was sent, when the answer is provably the same
// representation:
// - a 206 with that tag, Content-Length LAST - FROM + 1 and Content-Range
//   `bytes FROM-LAST/TOTAL` (TOTAL: the length the stream was answered with);
// - or a 200 with that tag and Content-Length TOTAL (an origin that ignores
//   Range): its bytes before FROM are skipped, and after LAST it is not read on.
// Anything else (another tag, no tag, another length or range, an error, an
// origin that cannot be reached) is not spliced: the answer is cut short after
// the bytes it had, with the connection closed, as before. A stream is asked
// for once; a relay up to three times, each again only after an ask that
// brought bytes (an origin that breaks every answer cannot keep it going). HEAD, bodies sent through a coder, a client's range cut from a 200,
// and requests that carried a Range of their own are not resumed. A stream's
// resume is one client's missing bytes (not stored, not collapsed); a relay's
// is the rest of its fill.
// Counters: edge_stream_resumes_total{outcome="asked"|"spliced"}.
// Thread rules: as Worker.swift (the exchange's worker does all of it).
import EdgeCache
import EdgeHTTP
import EdgeIO

/// What an exchange needs to finish its answer from the origin.
final class StreamResume {
    /// The response's strong entity tag (its quotes included).
    let tag: String
    /// The representation's length (the whole body).
    let total: Int64
    /// The bytes last asked of the origin, `first...last` (set when asked).
    var first: Int64 = 0
    var last: Int64 = 0
    /// Asks made; one is in flight or was answered when it is not 0.
    var attempts = 0
    @inline(__always) var asked: Bool { attempts > 0 }
    /// A relay's request as the client's exchange sent it, without its blank
    /// line: each ask is this, the ask's fields, and the blank line.
    var request: [UInt8]?
    /// At most this many asks per answer, each after one that made progress.
    static let maxAttempts = 3

    init(tag: String, total: Int64) { self.tag = tag; self.total = total }

    /// For a GET answered with a body of `total` bytes and entity tag `etag`;
    /// nil when it could not be resumed (no tag, or a weak one).
    static func make(_ method: Method, etag: String?, total: Int) -> StreamResume? {
        guard method == .get, let t = etag, t.utf8.first == 34, t.utf8.count >= 2 else { return nil }
        return StreamResume(tag: t, total: Int64(total))
    }
}

extension Worker {
    /// At the start of a streamed answer: what a resume needs, the request's
    /// head among it (the connection's buffer moves on).
    func mayResume(_ c: ClientConnection, _ p: UnsafeRawBufferPointer, etag: @autoclosure () -> String?, total: Int) {
        guard c.ex.route != nil, let r = StreamResume.make(c.ex.method, etag: etag(), total: total) else { return }
        c.ex.resume = r
        keepHead(c, p)
    }

    /// The stream broke off at `streamOffset`: asks the origin for the rest.
    /// False when it cannot (then the answer is cut short).
    func resumeFromOrigin(_ c: ClientConnection) -> Bool {
        let e = c.ex
        guard let r = e.resume, !r.asked, e.coder == nil, e.streamOffset < e.streamEnd, let hb = e.headBytes,
              let group = e.group, case .http = group.kind, !c.closed else { return false }
        r.attempts = 1
        r.first = Int64(e.streamOffset)
        r.last = Int64(e.streamEnd) - 1
        workerCounters.add(WorkerSlot.resumesAsked, 1)
        e.stream = nil
        noLongerWaiting(c)
        e.cache.slice = nil
        e.cache.sliceOffset = 0
        c.timeout = .idle
        c.deadline = 0
        upstreamPhase(c, hb.readView)
        return true
    }

    /// A body relayed from the origin as it arrives of at least this many bytes
    /// may be resumed (below it a broken answer is cheap to ask again whole).
    static let resumeRelayMin: Int64 = 64 << 10

    /// At the head of a relayed answer (`p` its bytes): a 200 to a GET, `total`
    /// bytes long, with a strong entity tag, relayed as it is (no coder, no
    /// cut of a range), can be resumed if its origin breaks off.
    func mayResumeRelay(_ c: ClientConnection, _ o: OriginConnection, total: Int64, p: UnsafeRawBufferPointer) {
        let e = c.ex
        guard e.resume == nil, o.head.status == 200, !o.requestWasHead, !e.cache.background, e.fwd != nil else { return }
        for f in o.head.fields where f.known == .other && equalsLowercase(p, f.nameStart, f.nameEnd, "etag") {
            e.resume = StreamResume.make(e.method, etag: String(decoding: p[f.value], as: UTF8.self), total: Int(total))
            return
        }
    }

    /// The origin broke off a relayed body (closed, reset, timed out; `o`, detached
    /// and closed): asks for the rest on another connection, its answer spliced on
    /// as for a stream (the fill, if any, goes on with it: RFC 9111 §3.4 lets a
    /// cache combine parts of one representation). False when it cannot.
    func resumeRelay(_ c: ClientConnection, _ o: OriginConnection) -> Bool {
        let e = c.ex
        guard let r = e.resume, r.attempts < StreamResume.maxAttempts, e.coder == nil, e.cache.slice == nil, !c.closed, let fwd = e.fwd,
              case .length(let rem) = o.body, rem > 0, case .http(let ids) = e.group?.kind else { return false }
        let from = r.total - rem
        if r.asked {
            // Again only after an ask of this relay's own that brought bytes.
            guard r.request != nil, from > r.first else { return false }
        } else {
            // Not when the request sent carried a Range of its own (a client's, passed on).
            let sent = fwd.readView
            guard sent.count >= 4, !Worker.namesRange(sent) else { return false }
            r.request = Array(sent[0..<(sent.count - 2)])
        }
        r.attempts += 1
        r.first = from
        r.last = r.total - 1
        workerCounters.add(WorkerSlot.resumesAsked, 1)
        fwd.clear()
        fwd.append(r.request!)
        appendResumeAsk(r, fwd)
        fwd.append("\r\n")
        e.tried = 0
        e.attempts = 0
        connectOrigin(c, ids: ids)
        return true
    }

    /// Whether request head `h` has a Range or If-Range field.
    static func namesRange(_ h: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i + 1 < h.count {
            if h[i] == 10 && (equalsLowercase(h, i + 1, min(h.count, i + 7), "range:") || equalsLowercase(h, i + 1, min(h.count, i + 10), "if-range:")) {
                return true
            }
            i += 1
        }
        return false
    }

    /// The resume's ask, after the forwarded fields (the client's own Range,
    /// If-Range and conditionals are not passed on with it).
    func appendResumeAsk(_ r: StreamResume, _ b: IOBuffer) {
        b.append("Range: bytes=")
        b.append(decimal: r.first)
        b.append(byte: 45)
        b.append(decimal: r.last)
        b.append("\r\nIf-Range: ")
        b.append(string: r.tag)
        b.append("\r\n")
    }

    /// The origin's head for a resume (parsed, `p` its bytes): true when its
    /// body can be spliced on (see the top of this file); the origin
    /// connection is then set to relay it, and nothing of the head is sent.
    func acceptResumed(_ c: ClientConnection, _ o: OriginConnection, _ r: StreamResume, p: UnsafeRawBufferPointer) -> Bool {
        let h = o.head
        guard !o.requestWasHead, case .length(let n) = h.framing(requestWasHead: false) else { return false }
        var tagged = false, range: (first: Int64, last: Int64, complete: Int64)?
        for f in h.fields where f.known == .other {
            if equalsLowercase(p, f.nameStart, f.nameEnd, "etag") {
                // (Compared byte for byte: the strong comparison, RFC 9110 §8.8.3.2.)
                tagged = String(decoding: p[f.value], as: UTF8.self) == r.tag
                if !tagged { return false }
            } else if equalsLowercase(p, f.nameStart, f.nameEnd, "content-range") {
                range = Slices.contentRange(String(decoding: p[f.value], as: UTF8.self))
            }
        }
        guard tagged else { return false }
        switch h.status {
        case 206:
            guard let cr = range, cr.first == r.first, cr.last == r.last, cr.complete == r.total, n == r.last - r.first + 1 else { return false }
        case 200:
            guard n == r.total else { return false }
            // The bytes before `first` went out already; the relay skips them (Cache.sendSlice).
            c.ex.cache.slice = r.first...r.last
            c.ex.cache.sliceOffset = 0
            // A fill it was storing has those bytes already: it is given up (its followers resume on their own).
            if let f = c.ex.cache.fill { c.ex.cache.fill = nil; abandonFill(f) }
        default:
            return false
        }
        o.headDone = true
        o.server.health.recordSuccess()
        o.keepAlive = h.keepAlive
        o.body = .length(n)
        c.ex.originMicros = monotonicMicros() - c.ex.originStartMicros
        workerCounters.add(WorkerSlot.resumesSpliced, 1)
        return true
    }

    /// The origin's answer does not continue the response (another tag, range
    /// or length: the object changed, or the origin does not do ranges): the
    /// answer ends short after what it had, as it would have without a resume.
    /// Not an origin failure (its health is not marked down); its connection
    /// closes, its body unread.
    func resumeRefused(_ c: ClientConnection, _ o: OriginConnection) {
        o.keepAlive = false
        c.ex.originError = "resume: the origin's answer does not continue the response"
        detachOrigin(c, o)
        closeOrigin(o)
        streamBroke(c)   // (asked already: the answer is cut)
    }
}
