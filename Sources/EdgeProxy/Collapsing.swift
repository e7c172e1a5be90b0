// Request collapsing across all workers.
//
// Rule: the first miss on a key (the leader) goes to the origin; concurrent
// misses on the same key (followers) wait for it.
//
// Read-while-write: once the leader has a storable response head with a known
// length (≤ the largest object stored), it publishes a FillStream; followers
// (parked ones, woken, and those arriving later) answer at once from it and
// copy the body as it arrives, so a slow large object holds nobody back. A
// follower that needs something else (a conditional, a range, another coding
// or Vary variant) parks instead. If the leader fails after publishing, the
// followers' responses are cut off (they had started) and their connections closed.
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

struct Waiter: Sendable {
    let worker: Int
    let fd: Int32
    let gen: UInt32
}

final class InFlight: Sendable {
    struct State {
        var leaders: [String: [Waiter]] = [:]
        var streams: [String: FillStream] = [:]
        var pass: [String: Int64] = [:]
    }
    let state = Mutex(State())
    /// How long an uncacheable key is not collapsed (monotonic milliseconds).
    let passMillis: Int64 = 10_000

    enum Join { case leader, follower, pass, stream(FillStream) }

    /// `now` is monotonic milliseconds (the pass timer is operational, not HTTP time).
    /// `canStream`: the request may be answered from the leader's stream.
    func join(_ key: String, _ w: Waiter, now: Int64, canStream: Bool) -> Join {
        state.withLock { s in
            if let until = s.pass[key] {
                if until > now { return .pass }
                s.pass[key] = nil
            }
            if s.leaders[key] != nil {
                if canStream, let stream = s.streams[key] { return .stream(stream) }
                s.leaders[key]!.append(w)
                return .follower
            }
            s.leaders[key] = []
            return .leader
        }
    }

    /// Waits as a parked follower after all (the stream did not fit the request);
    /// false when the leader is already done (run the request again).
    func follow(_ key: String, _ w: Waiter) -> Bool {
        state.withLock { s in
            guard s.leaders[key] != nil else { return false }
            s.leaders[key]!.append(w)
            return true
        }
    }

    /// The leader's response can be streamed: returns the followers parked so
    /// far (woken, they join again and find the stream).
    func publish(_ key: String, _ stream: FillStream) -> [Waiter] {
        state.withLock { s in
            guard s.leaders[key] != nil else { return [] }
            s.streams[key] = stream
            let waiting = s.leaders[key]!
            s.leaders[key] = []
            return waiting
        }
    }

    /// Becomes the leader for `key` if nobody is; never waits (background refreshes).
    func tryLead(_ key: String) -> Bool {
        state.withLock { s in
            if s.leaders[key] != nil { return false }
            s.leaders[key] = []
            return true
        }
    }

    /// The leader is done; returns the followers to wake.
    func finish(_ key: String, uncacheable: Bool, now: Int64) -> [Waiter] {
        state.withLock { s in
            let waiters = s.leaders.removeValue(forKey: key) ?? []
            s.streams[key] = nil
            if uncacheable {
                if s.pass.count > 10_000 { s.pass = s.pass.filter { $0.value > now } }
                s.pass[key] = now + passMillis
            }
            return waiters
        }
    }
}

/// A response on its way into the cache that followers read while it is written.
final class FillStream: Sendable {
    let response: StoredResponse          // head fields and freshness; its body is empty
    /// The body's length (from Content-Length).
    let length: Int
    struct State {
        var body: [UInt8] = []
        var done = false
        var failed = false
        var waiters: [Waiter] = []
    }
    let state = Mutex(State())

    init(response: StoredResponse, length: Int) {
        self.response = response
        self.length = length
        state.withLock { $0.body.reserveCapacity(length) }
    }

    /// Leader: more body bytes. Returns the followers to wake.
    func append(_ p: UnsafeRawPointer, _ n: Int) -> [Waiter] {
        state.withLock { s in
            s.body.append(contentsOf: UnsafeRawBufferPointer(start: p, count: min(n, length - s.body.count)))
            guard !s.waiters.isEmpty else { return [] }
            let w = s.waiters
            s.waiters = []
            return w
        }
    }

    /// Leader: the body is complete (`ok`) or will never be. Returns the body
    /// and the followers to wake.
    func end(ok: Bool) -> ([UInt8], [Waiter]) {
        state.withLock { s in
            s.done = true
            s.failed = !ok || s.body.count != length
            let w = s.waiters
            s.waiters = []
            return (s.body, w)
        }
    }

    enum Read { case copied(Int), wait, failed }

    /// Follower: copies up to `max` bytes from `offset` into `out`; when there
    /// are none yet, leaves `w` to be woken and answers `.wait`.
    func read(from offset: Int, max: Int, into out: IOBuffer, waiter w: Waiter) -> Read {
        state.withLock { s in
            if s.failed { return .failed }
            let n = min(max, s.body.count - offset)
            if n > 0 {
                s.body.withUnsafeBytes { out.append(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + n)])) }
                return .copied(n)
            }
            if s.done { return .failed }   // ended short of the length
            s.waiters.append(w)
            return .wait
        }
    }
}

/// Each worker's inbox of parked connections to resume, and its wake-up fd.
final class Mailboxes: Sendable {
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
    /// Parks a follower: its request stays unread in its buffer until woken.
    func park(_ c: ClientConnection) {
        c.phase = .parked
        c.ex.inExchange = false
        c.timeout = .parked
        c.deadline = now + (c.ex.tenant?.limits.originReadTimeoutMillis ?? 60_000)
    }

    /// Resumes parked connections that other workers (or this one) woke.
    func drainMailbox() {
        let woken = mailboxes.boxes[index].queue.withLock { q -> [Waiter] in
            let all = q
            q.removeAll()
            return all
        }
        for w in woken { resumeParked(fd: w.fd, gen: w.gen, alone: false) }
    }

    func resumeParked(fd: Int32, gen: UInt32, alone: Bool) {
        guard Int(fd) < slots.count, case .client(let c) = slots[Int(fd)], c.gen == gen else { return }
        if c.phase == .stream { return pumpStream(c) }
        guard c.phase == .parked else { return }
        c.phase = .head
        c.skipCollapse = alone
        c.timeout = .header
        c.deadline = now + server.headerTimeoutMillis
        processClient(c)
    }

    /// A follower answers from the leader's stream: the stored head now, the
    /// body as it arrives (see pumpStream).
    func serveFromStream(_ c: ClientConnection, _ stream: FillStream, headLength n: Int) {
        c.inBuf!.consume(n)
        c.ex.cache.status = CacheStatus(.hit, .collapsed)
        c.ex.stream = stream
        c.ex.streamOffset = 0
        c.phase = .stream
        c.timeout = .body
        c.deadline = 0          // the leader's origin timeouts govern; the send timeout covers the client
        // The head as for any hit, with no body yet (serveStored writes the length).
        serveStored(c, stream.response, now: clock.now(), finish: false, bodyLength: stream.length)
        pumpStream(c)
    }

    /// Copies what has arrived of the stream to the client, up to the high-water mark.
    func pumpStream(_ c: ClientConnection) {
        guard let stream = c.ex.stream, let b = c.outBuf else { return }
        while !c.closed {
            while b.readableBytes < highWater && c.ex.streamOffset < stream.length {
                let max = min(stream.length - c.ex.streamOffset, highWater - b.readableBytes)
                switch stream.read(from: c.ex.streamOffset, max: max, into: b, waiter: Waiter(worker: index, fd: c.fd, gen: c.gen)) {
                case .copied(let k):
                    c.ex.streamOffset += k
                case .wait:
                    flushClient(c)
                    return
                case .failed:
                    // The leader's response broke off: so does this one.
                    c.ex.stream = nil
                    c.keepAlive = false
                    flushClient(c)
                    if !c.closed { abortClient(c) }
                    return
                }
            }
            if c.ex.streamOffset >= stream.length {
                c.ex.stream = nil
                return finishExchange(c)
            }
            flushClient(c)
            if !c.writable { return }
        }
    }

    /// Leader: body bytes for the fill (and its stream's followers).
    @inline(__always) func appendFill(_ c: ClientConnection, _ p: UnsafeRawPointer, _ n: Int) {
        guard let f = c.ex.cache.fill else { return }
        if let s = f.stream {
            let w = s.append(p, n)
            if !w.isEmpty { mailboxes.deliver(w) }
        } else {
            f.append(p, n)
        }
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
        guard let key = c.ex.cache.leaderKey else { return }
        c.ex.cache.leaderKey = nil
        let waiters = inFlight.finish(key, uncacheable: c.ex.cache.uncacheable, now: now)
        if !waiters.isEmpty { mailboxes.deliver(waiters) }
    }
}
