// Mirroring (shadowing): a share of a route's requests is copied to a shadow
// origin group, fire-and-forget. The client's request never waits for a copy
// and never fails because of one: a worker hands the copy (the request as the
// origin would get it, `Connection: close`, its body when small enough) to the
// sender's bounded queue and goes on; a full queue drops the copy (counted).
// One sender thread per server sends the copies, up to `maxInFlight` at once,
// on non-blocking sockets and one poll, over keep-alive connections to the
// shadow servers (a connection the shadow closed before answering is retried
// once on a new one); it reads each answer through by its framing, counts it
// and discards it.
//
// Concurrency and ownership: workers call `submit` (the queue and the counts
// are under one Mutex); the sender thread alone opens, polls and closes the
// copies' sockets (each closed exactly once, by `finish` or when the thread
// ends). The thread is started by the first copy and stopped by `stop()`
// (an atomic flag and a wake; the thread is joined).
import Glibc
import Synchronization
import EdgeHTTP
import EdgeIO

/// Where a route's copies are counted: tenant, route prefix, shadow group.
struct MirrorName: Hashable, Sendable {
    let tenant: String
    let route: String
    let group: String
}

/// A route's copies so far.
public struct MirrorCounts: Sendable, Equatable {
    /// Handed to the queue.
    public var queued = 0
    /// Not sent: the queue was full, the body too large, the client went
    /// away before its body was read, or no shadow server was in rotation.
    public var dropped = 0
    /// Answered by the shadow (any status), and failed (connect error, reset,
    /// no response head within the timeout).
    public var answered = 0
    public var failed = 0
}

final class MirrorSender: @unchecked Sendable {
    static let maxQueued = 1024
    static let maxQueuedBytes = 32 << 20
    static let maxInFlight = 64
    static let timeoutMillis: Int64 = 10_000
    static let maxResponseHead = 16 << 10
    /// Keep-alive connections to shadow servers, kept idle this long at most.
    static let idleMillis: Int64 = 2_000

    struct Job {
        let address: SocketAddress
        let bytes: [UInt8]
        let name: MirrorName
        /// A HEAD: its answer has no body whatever its fields say.
        let head: Bool
    }

    private struct Shared {
        var jobs: [Job] = []
        var head = 0
        var bytes = 0
        var counts: [MirrorName: MirrorCounts] = [:]
        var started = false
    }

    /// Where reading a copy's answer is.
    private enum Answer { case head, length(Int64), chunked(ChunkedDecoder), untilClose }

    private struct Copy {
        var fd: Int32
        var job: Job
        var deadline: Int64
        var connecting: Bool
        /// On a kept-alive connection: a close before any answer byte is retried once on a new one.
        var reused: Bool
        var sent = 0
        var got: [UInt8] = []
        var answer = Answer.head
        var keepAlive = true
    }

    /// How a copy ended: answered (and whether its connection can carry the
    /// next), failed, or to be sent again on a new connection.
    private enum Outcome { case answered(reuse: Bool), failed, retry }

    private let shared = Mutex(Shared())
    private let stopping = Atomic<Bool>(false)
    private let wake: EventFD?
    private var thread: OSThread?     // set once under `shared`'s lock, read by stop()

    init() { wake = try? EventFD() }

    /// Queues a copy; false (counted as dropped) when the queue is full.
    @discardableResult
    func submit(_ job: Job) -> Bool {
        let (accepted, wasEmpty, start) = shared.withLock { s -> (Bool, Bool, Bool) in
            let queued = s.jobs.count - s.head
            guard !stopping.load(ordering: .relaxed), queued < MirrorSender.maxQueued,
                  s.bytes + job.bytes.count <= MirrorSender.maxQueuedBytes else {
                s.counts[job.name, default: MirrorCounts()].dropped += 1
                return (false, false, false)
            }
            s.jobs.append(job)
            s.bytes += job.bytes.count
            s.counts[job.name, default: MirrorCounts()].queued += 1
            let start = !s.started
            s.started = true
            return (true, queued == 0, start)
        }
        if start {
            let t = OSThread.spawn(name: "edge-mirror") { [self] in run() }
            shared.withLock { _ in thread = t }
        }
        // The sender takes every queued copy it has room for when it wakes, so
        // only the first copy into an empty queue needs to wake it.
        if accepted && wasEmpty { wake?.signal() }
        return accepted
    }

    /// Counts a copy that never reached the queue.
    func drop(_ name: MirrorName) {
        shared.withLock { $0.counts[name, default: MirrorCounts()].dropped += 1 }
    }

    /// Every route's counts (stats and /metrics).
    func counts() -> [MirrorName: MirrorCounts] { shared.withLock { $0.counts } }

    /// Stops the thread: queued copies are dropped, copies in flight cut off.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        wake?.signal()
        let t = shared.withLock { _ in thread }
        t?.join()
        shared.withLock { _ in thread = nil }
    }

    private func take(_ n: Int) -> [Job] {
        shared.withLock { s -> [Job] in
            let k = min(n, s.jobs.count - s.head)
            guard k > 0 else { return [] }
            let out = Array(s.jobs[s.head..<(s.head + k)])
            s.head += k
            for j in out { s.bytes -= j.bytes.count }
            if s.head == s.jobs.count || s.head > 256 {
                s.jobs.removeFirst(s.head)
                s.head = 0
            }
            return out
        }
    }

    private func run() {
        var copies: [Copy] = []
        var idle: [(fd: Int32, address: SocketAddress, since: Int64)] = []
        var fds: [pollfd] = []
        var buf = [UInt8](repeating: 0, count: 16 << 10)
        func begin(_ job: Job, _ now: Int64, fresh: Bool = false) {
            if !fresh, let k = idle.lastIndex(where: { $0.address == job.address }) {
                let fd = idle.remove(at: k).fd
                copies.append(Copy(fd: fd, job: job, deadline: now + MirrorSender.timeoutMillis, connecting: false, reused: true))
                return
            }
            switch TCP.connect(job.address) {
            case .connected(let fd): copies.append(Copy(fd: fd, job: job, deadline: now + MirrorSender.timeoutMillis, connecting: false, reused: false))
            case .inProgress(let fd): copies.append(Copy(fd: fd, job: job, deadline: now + MirrorSender.timeoutMillis, connecting: true, reused: false))
            case .failed: count(job.name, answered: false)
            }
        }
        while !stopping.load(ordering: .relaxed) {
            var now = monotonicMillis()
            for job in take(MirrorSender.maxInFlight - copies.count) { begin(job, now) }
            // Idle connections past their time, or beyond what may be in flight, are closed.
            while let first = idle.first, now - first.since > MirrorSender.idleMillis || idle.count > MirrorSender.maxInFlight {
                sysClose(first.fd)
                idle.removeFirst()
            }
            fds.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wake?.fd ?? -1, events: Int16(POLLIN), revents: 0))
            for c in copies {
                let out = c.connecting || c.sent < c.job.bytes.count
                fds.append(pollfd(fd: c.fd, events: Int16(out ? POLLOUT : POLLIN), revents: 0))
            }
            _ = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), 200) }
            if fds[0].revents != 0 { wake?.drain() }
            now = monotonicMillis()
            var i = copies.count
            while i > 0 {
                i -= 1
                guard let outcome = step(&copies[i], fds[i + 1].revents, now, &buf) else { continue }
                let c = copies.remove(at: i)
                switch outcome {
                case .answered(let reuse):
                    count(c.job.name, answered: true)
                    if reuse { idle.append((c.fd, c.job.address, now)) } else { sysClose(c.fd) }
                case .failed:
                    sysClose(c.fd)
                    count(c.job.name, answered: false)
                case .retry:
                    sysClose(c.fd)
                    begin(c.job, now, fresh: true)
                }
            }
        }
        for c in copies { sysClose(c.fd) }
        for c in idle { sysClose(c.fd) }
    }

    private func count(_ name: MirrorName, answered: Bool) {
        shared.withLock { s in
            if answered { s.counts[name, default: MirrorCounts()].answered += 1 } else { s.counts[name, default: MirrorCounts()].failed += 1 }
        }
    }

    /// Moves one copy along; its outcome once it is over.
    private func step(_ c: inout Copy, _ revents: Int16, _ now: Int64, _ buf: inout [UInt8]) -> Outcome? {
        if c.connecting {
            guard revents != 0 else { return now >= c.deadline ? .failed : nil }
            if TCP.socketError(c.fd) != 0 { return .failed }
            c.connecting = false
        }
        if c.sent < c.job.bytes.count {
            let r = c.job.bytes.withUnsafeBytes { sysWrite(c.fd, $0.baseAddress! + c.sent, $0.count - c.sent) }
            switch r {
            case .bytes(let n): c.sent += n
            case .wouldBlock: break
            case .eof, .error: return c.reused && c.sent == 0 ? .retry : .failed
            }
            return now >= c.deadline ? .failed : nil
        }
        guard revents != 0 else { return now >= c.deadline ? .failed : nil }
        var answeredAny = !c.got.isEmpty
        while true {
            let r = buf.withUnsafeMutableBytes { sysRead(c.fd, $0.baseAddress!, $0.count) }
            switch r {
            case .bytes(let n):
                answeredAny = true
                c.got += buf[0..<n]
                if let done = consume(&c) { return done }
            case .wouldBlock:
                return now >= c.deadline ? .failed : nil
            case .eof, .error:
                if case .untilClose = c.answer { return .answered(reuse: false) }
                return !answeredAny && c.reused ? .retry : .failed
            }
        }
    }

    /// Reads what arrived of the answer: its head (interim ones skipped),
    /// then its body by its framing, discarded. Nil: more to come.
    private func consume(_ c: inout Copy) -> Outcome? {
        while true {
            switch c.answer {
            case .head:
                var head = ResponseHead()
                var scan = HeadScan()
                let r = c.got.withUnsafeBytes { HeadParser.parseResponse($0, limits: HeadLimits(), into: &head, scan: &scan) }
                switch r {
                case .needMore: return c.got.count > MirrorSender.maxResponseHead ? .failed : nil
                case .error: return .failed
                case .complete(let n):
                    c.got.removeFirst(n)
                    if head.status < 200 { continue }   // an interim answer; the final one follows
                    c.keepAlive = head.keepAlive
                    if c.job.head || head.status == 204 || head.status == 304 {
                        return .answered(reuse: c.keepAlive && c.got.isEmpty)
                    }
                    c.answer = head.chunked ? .chunked(ChunkedDecoder()) : head.contentLength >= 0 ? .length(head.contentLength) : .untilClose
                }
            case .length(let left):
                let k = min(left, Int64(c.got.count))
                c.got.removeFirst(Int(k))
                if left == k { return .answered(reuse: c.keepAlive && c.got.isEmpty) }
                c.answer = .length(left - k)
                return nil
            case .chunked(var dec):
                var at = 0
                while true {
                    let (ev, next) = c.got.withUnsafeBytes { dec.decode($0, from: at) }
                    at = next
                    switch ev {
                    case .end:
                        c.got.removeFirst(at)
                        return .answered(reuse: c.keepAlive && c.got.isEmpty)
                    case .error: return .failed
                    case .needMore:
                        c.got.removeFirst(at)
                        c.answer = .chunked(dec)
                        return nil
                    case .data: continue
                    }
                }
            case .untilClose:
                c.got.removeAll(keepingCapacity: true)
                return nil
            }
        }
    }
}

/// A copy being made by a worker: the request's head as the origin gets it
/// (without framing fields), then its body as the worker reads it through;
/// Forward.mirrorRequest frames it.
/// One that is let go before it was handed over (the body outgrew
/// `maxBody`, the client went away) counts as dropped.
final class MirrorCopy {
    let sender: MirrorSender
    let name: MirrorName
    let address: SocketAddress
    let maxBody: Int
    var head: [UInt8]
    let hasBody: Bool
    let isHead: Bool
    var body: [UInt8] = []
    private var handedOver = false

    init(sender: MirrorSender, name: MirrorName, address: SocketAddress, maxBody: Int, head: [UInt8], hasBody: Bool, isHead: Bool) {
        self.sender = sender; self.name = name; self.address = address; self.maxBody = maxBody; self.head = head; self.hasBody = hasBody
        self.isHead = isHead
    }

    deinit { if !handedOver { sender.drop(name) } }

    /// Framing of our own (the body is whole: a length), then to the queue.
    func send() {
        handedOver = true
        sender.submit(MirrorSender.Job(address: address, bytes: mirrorRequest(fields: head, body: hasBody ? body : nil), name: name, head: isHead))
    }
}

extension Worker {
    /// 5b. Mirror: a route's `mirror` copies its share of requests (drawn
    /// per request) to the shadow group. By default none. Never answers and
    /// never waits: the copy is handed to the sender now (no body) or once the
    /// body has been read through (pumpRequestBody), else dropped.
    @inline(__always) func mirrorPhase(_ c: ClientConnection, _ p: UnsafeRawBufferPointer) {
        guard let m = c.ex.route?.mirror else { return }
        mirrorDraws &+= 1
        guard mix64(mirrorDraws &+ UInt64(bitPattern: now) &* 0x9e37_79b9) % 1_000_000 < m.threshold else { return }
        beginMirror(c, p, m)
    }

    func beginMirror(_ c: ClientConnection, _ p: UnsafeRawBufferPointer, _ m: Route.Mirror) {
        let e = c.ex
        // Tunnels are not copied, nor bodies known to be too large.
        if e.upgrade { return mirror.drop(m.name) }
        if case .length(let n) = e.body, n > Int64(m.maxBody) { return mirror.drop(m.name) }
        guard case .http(let ids) = m.group.kind,
              let gi = pools.balancers[m.group.id].pick(health: m.group.health, active: pools.groupActive[m.group.id], tried: 0, now: now, key: nil) else {
            return mirror.drop(m.name)
        }
        let b = takeBuffer()
        appendForwardFields(c, p: p, route: e.route!, to: b)
        var hasBody = true
        if case .none = e.body { hasBody = false }
        let copy = MirrorCopy(sender: mirror, name: m.name, address: config.servers[ids[gi]].address, maxBody: m.maxBody,
                              head: Array(b.readView), hasBody: hasBody, isHead: e.method == .head)
        giveBuffer(b)
        if hasBody { e.mirror = copy } else { copy.send() }
    }

    /// Request body bytes on their way to the origin, copied into the mirror
    /// copy (let go once over its limit); `end`: the body is complete.
    @inline(__always) func teeMirror(_ c: ClientConnection, _ bytes: UnsafeRawBufferPointer, end: Bool) {
        guard let copy = c.ex.mirror else { return }
        if copy.body.count + bytes.count > copy.maxBody { c.ex.mirror = nil; return }
        copy.body.append(contentsOf: bytes)
        if end {
            c.ex.mirror = nil
            copy.send()
        }
    }
}
