// Request collapsing across all workers.
//
// Rule: the first miss on a key (the leader) goes to the origin; concurrent
// misses on the same key (followers) wait for it.
//
// Read-while-write: once the leader has a storable response head with a known
// length (≤ the largest object stored), it publishes it (a SharedFill);
// followers (parked ones, woken, and those arriving later) answer at once
// from it and take the body as it arrives, so a slow large object holds
// nobody back: from memory (FillStream), or, for an object too large for the
// memory tier, from the disk tier's record as it is written (a reader of its
// blocks, each checked, as for any disk hit). A
// follower that needs something else (a conditional, a range, another coding
// or Vary variant) parks instead. If the leader fails after publishing (or the
// disk tier gives its fill up), a follower's response, which has started, is
// finished from the origin where that is provably right (Resume.swift), else
// cut off and its connection closed.
//
// Parked followers keep their request unread until the leader is done, and
// then run it again from the top:
// - the leader stored the response → the followers are hits;
// - the response was not cacheable → the key is remembered as "pass" for a
//   short time, and the followers (and later requests) go to the origin on
//   their own, so nobody queues behind an uncacheable URL;
// - the leader failed (origin error, client gone) → nothing is remembered;
//   the first follower to run again becomes the new leader, the rest follow it.
// A follower that waits longer than its tenant's origin read timeout stops
// waiting and goes to the origin itself.
//
// Concurrency: the table is one Mutex (held for a dictionary update only). A
// FillStream has its own Mutex, held to append or copy one piece; the leader
// appends, followers on any worker copy, and whoever finds no new bytes leaves
// a Waiter that the next append (or the end) delivers to its worker's mailbox.
// Waking a follower on another worker goes through that worker's mailbox (a
// Mutex'd list) and its eventfd; the follower's worker then resumes it on its
// own thread. Connections are named by (fd, generation), so a follower that
// closed meanwhile is simply not found.
import Synchronization
import EdgeIO
import EdgeCache
import EdgeHTTP

/// Each worker's inbox of parked exchanges to resume, and its wake-up fd
/// (collapsed followers; exchanges waiting for a storage read).
final class Mailboxes: Waking {
    func wake(_ w: Waiter) { deliver([w]) }

    final class Box: Sendable {
        let queue = Mutex<[Waiter]>([])
        let wake: EventFD
        init() throws { wake = try EventFD() }
    }
    let boxes: [Box]

    init(count: Int) throws { boxes = try (0..<count).map { _ in try Box() } }

    func deliver(_ waiters: [Waiter]) {
        for w in waiters where w.worker < boxes.count {
            boxes[w.worker].queue.withLock { $0.append(w) }
            boxes[w.worker].wake.signal()
        }
    }
}

extension Worker {
    /// Parks a follower until woken; it keeps its exchange (and its copy of the request).
    func park(_ c: ClientConnection, _ p: UnsafeRawBufferPointer) {
        keepHead(c, p)
        mayBeWoken(c)
        c.phase = .parked
        c.ex.inExchange = false
        c.timeout = .parked
        c.deadline = originReadDeadline(c)
    }

    /// Resumes parked connections that other workers (or this one) woke.
    func drainMailbox() {
        let woken = mailboxes.boxes[index].queue.withLock { q -> [Waiter] in
            let all = q
            q.removeAll()
            return all
        }
        for w in woken {
            // Not found: that exchange ended meanwhile (its client went away).
            guard let c = waiting[w.exchange], c.ex.id == w.exchange, !c.closed else { continue }
            resume(c, alone: false)
        }
    }

    /// Puts the exchange in the table its wake-ups are looked up in.
    @inline(__always) func mayBeWoken(_ c: ClientConnection) {
        c.ex.waiting = true
        waiting[c.ex.id] = c
    }

    /// Takes the exchange out of that table (it ended, or runs again as a new one).
    @inline(__always) func noLongerWaiting(_ c: ClientConnection) {
        let e = c.ex
        guard e.waiting else { return }
        e.waiting = false
        waiting[e.id] = nil
    }

    /// A woken follower goes on: a stream reader copies what arrived; a parked
    /// one runs its request again (a hit now, or a leader or follower anew).
    func resume(_ c: ClientConnection, alone: Bool) {
        if c.ex.heldByDisk { return diskHasRoom(c) }
        if c.phase == .stream { return pumpStream(c) }
        guard c.phase == .parked else { return }
        noLongerWaiting(c)
        // The same exchange runs again from its own copy of the request, from
        // the cache lookup on (`alone`: the leader took too long; no collapsing).
        var fresh = ExchangeCache()
        fresh.collapse = !alone
        fresh.slices = SliceState.carried(c.ex.cache.slices)   // what a slice lookup read from disk so far (Slices.swift)
        c.ex.cache = fresh
        c.ex.inExchange = true
        c.phase = .head
        c.timeout = .idle
        c.deadline = 0
        continueKeptRequest(c)
        // Requests pipelined behind it.
        if !c.closed && c.phase == .head && !(c.inBuf?.isEmpty ?? true) { processClient(c) }
    }

    /// A follower answers from the leader's stream: the stored head now, the
    /// body as it arrives (see pumpStream).
    func serveFromStream(_ c: ClientConnection, _ stream: any SharedFill) {
        c.ex.cache.status = CacheStatus(.hit, .collapsed)
        c.ex.stream = stream.reader(waking: mailboxes)
        c.ex.streamOffset = 0
        c.ex.streamEnd = stream.length
        mayBeWoken(c)
        c.phase = .stream
        c.timeout = .body
        c.deadline = 0          // the leader's origin timeouts govern; the send timeout covers the client
        // The head as for any hit, with no body yet (serveStored writes the length).
        serveStored(c, stream.response, now: clock.now(), finish: false, bodyLength: stream.length)
        pumpStream(c)
    }

    /// Copies what is readable of the stream to the client, up to the high-water
    /// mark; to a plain socket, what lies checked in a file (a disk body's
    /// blocks) is handed to flushClient as a span to send by sendfile instead.
    func pumpStream(_ c: ClientConnection) {
        guard let stream = c.ex.stream, let b = c.outBuf else { return }
        let plain = c.tls == nil && c.sink == nil && c.ex.framing != .chunked
            && c.ex.streamEnd - c.ex.streamOffset >= StreamSpan.sendfileMin
        while !c.closed {
            if plain && c.writable && c.ex.streamOffset < c.ex.streamEnd {
                switch stream.span(from: c.ex.streamOffset, max: c.ex.streamEnd - c.ex.streamOffset, waiter: Waiter(worker: index, exchange: c.ex.id)) {
                case .file(let fd, let offset, let n):
                    // What is queued (the head) goes first, on its own; then
                    // flushClient sends the span and moves the stream on.
                    if !b.isEmpty {
                        flushClient(c)
                        if c.closed || !b.isEmpty { return }   // (EPOLLOUT resumes)
                    }
                    c.spanFD = fd
                    c.spanOffset = offset
                    c.spanLeft = n
                    flushClient(c)
                    if c.closed { return }
                    if !c.writable {
                        // The rest when the client takes more (its pages checked again then).
                        if c.sendDeadline == 0 { c.sendDeadline = now + server.sendTimeoutMillis }
                        return
                    }
                    continue
                case .copy:
                    break
                case .wait:
                    flushClient(c)
                    return
                case .failed:
                    return streamBroke(c)
                }
            }
            while sendRoom(c) > 0 && c.ex.streamOffset < c.ex.streamEnd {
                let max = min(c.ex.streamEnd - c.ex.streamOffset, sendRoom(c))
                switch stream.read(from: c.ex.streamOffset, max: max, into: b, waiter: Waiter(worker: index, exchange: c.ex.id)) {
                case .copied(let k):
                    c.ex.streamOffset += k
                case .wait:
                    flushClient(c)
                    return
                case .failed:
                    return streamBroke(c)
                }
            }
            if c.ex.streamOffset >= c.ex.streamEnd {
                c.ex.stream = nil
                return finishExchange(c)
            }
            flushClient(c)
            if !c.writable { return }
        }
    }

    /// A leader's fill is written to disk as it arrives, and the disk tier's
    /// write queue is full: the exchange reads no more of the origin's body
    /// (what is buffered stays there) until the writer has room and wakes it,
    /// so the fill goes at the disk's pace instead of being dropped. The
    /// origin's read timeout still runs: if it fires first, the fill gives up
    /// storing and the response goes on (Origin.swift, originTimedOut).
    func heldForDisk(_ c: ClientConnection) -> Bool {
        guard let sink = c.ex.cache.fill?.sink, !sink.ready(Waiter(worker: index, exchange: c.ex.id), mailboxes) else { return false }
        c.ex.heldByDisk = true
        mayBeWoken(c)
        // (A slow client may have stopped the origin's clock: it runs while held.)
        if let o = c.ex.origin, o.deadline == 0 { o.deadline = originReadDeadline(c) }
        return true
    }

    /// The disk tier has room again (or the wait is over): the origin's body flows on.
    func diskHasRoom(_ c: ClientConnection) {
        c.ex.heldByDisk = false
        noLongerWaiting(c)
        guard let o = c.ex.origin, !o.closed else { return }
        o.deadline = originReadDeadline(c)
        originReadable(o)
    }

    /// The leader's response broke off, or a disk block failed its check: so
    /// does this answer, after what is queued.
    func streamBroke(_ c: ClientConnection) {
        if resumeFromOrigin(c) { return }
        c.ex.stream = nil
        c.keepAlive = false
        flushClient(c)
        if !c.closed { abortClient(c) }
    }

    /// Leader: body bytes for the fill (and its stream's followers).
    @inline(__always) func appendFill(_ c: ClientConnection, _ p: UnsafeRawPointer, _ n: Int) {
        if let s = c.ex.cache.slices?.fill { appendSlices(s, p, n) }
        guard let f = c.ex.cache.fill else { return }
        if let s = f.stream {
            let w = s.append(p, n)
            if !w.isEmpty { mailboxes.deliver(w) }
        } else {
            f.append(p, n)
        }
    }

    /// A fill that will not complete: its followers are cut off, its store forgets it.
    func abandonFill(_ f: CacheFill) {
        _ = endStream(f, ok: false)
        config.store.abort(f)
    }

    /// Leader: the fill ends (`ok`: completely). Returns the body when streamed.
    func endStream(_ f: CacheFill, ok: Bool) -> [UInt8]? {
        guard let s = f.stream else { return nil }
        let (body, w) = s.end(ok: ok)
        if !w.isEmpty { mailboxes.deliver(w) }
        return body
    }

    /// The leader's exchange ended (stored, uncacheable, or failed): wake its followers.
    func releaseLeader(_ c: ClientConnection) {
        let e = c.ex
        guard let key = e.cache.leaderKey else { return }
        e.cache.leaderKey = nil
        let waiters = inFlight.finish(key, uncacheable: e.cache.uncacheable, now: now)
        if !waiters.isEmpty { mailboxes.deliver(waiters) }
    }
}
