// Mirroring (shadowing): a share of a route's requests is copied to a shadow
// origin group, fire-and-forget. The client's request never waits for a copy
// and never fails because of one: a worker hands the copy (the request as the
// origin would get it, `Connection: close`, its body when small enough) to the
// sender's bounded queue and goes on; a full queue drops the copy (counted).
// One sender thread per server sends the copies: a new connection each, up to
// `maxInFlight` at once, on non-blocking sockets and one poll; it reads the
// answer's head, counts it, and closes. Its responses are discarded.
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

    struct Job {
        let address: SocketAddress
        let bytes: [UInt8]
        let name: MirrorName
    }

    private struct Shared {
        var jobs: [Job] = []
        var head = 0
        var bytes = 0
        var counts: [MirrorName: MirrorCounts] = [:]
        var started = false
    }

    private struct Copy {
        var fd: Int32
        var job: Job
        var deadline: Int64
        var connecting: Bool
        var sent = 0
        var got: [UInt8] = []
    }

    private let shared = Mutex(Shared())
    private let stopping = Atomic<Bool>(false)
    private let wake: EventFD?
    private var thread: OSThread?     // set once under `shared`'s lock, read by stop()

    init() { wake = try? EventFD() }

    /// Queues a copy; false (counted as dropped) when the queue is full.
    @discardableResult
    func submit(_ job: Job) -> Bool {
        let (accepted, start) = shared.withLock { s -> (Bool, Bool) in
            let queued = s.jobs.count - s.head
            guard !stopping.load(ordering: .relaxed), queued < MirrorSender.maxQueued,
                  s.bytes + job.bytes.count <= MirrorSender.maxQueuedBytes else {
                s.counts[job.name, default: MirrorCounts()].dropped += 1
                return (false, false)
            }
            s.jobs.append(job)
            s.bytes += job.bytes.count
            s.counts[job.name, default: MirrorCounts()].queued += 1
            let start = !s.started
            s.started = true
            return (true, start)
        }
        if start {
            let t = OSThread.spawn(name: "edge-mirror") { [self] in run() }
            shared.withLock { _ in thread = t }
        }
        if accepted { wake?.signal() }
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
        var fds: [pollfd] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while !stopping.load(ordering: .relaxed) {
            var now = monotonicMillis()
            for job in take(MirrorSender.maxInFlight - copies.count) {
                switch TCP.connect(job.address) {
                case .connected(let fd): copies.append(Copy(fd: fd, job: job, deadline: now + MirrorSender.timeoutMillis, connecting: false))
                case .inProgress(let fd): copies.append(Copy(fd: fd, job: job, deadline: now + MirrorSender.timeoutMillis, connecting: true))
                case .failed: count(job.name, answered: false)
                }
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
                if let answered = step(&copies[i], fds[i + 1].revents, now, &buf) {
                    sysClose(copies[i].fd)
                    count(copies[i].job.name, answered: answered)
                    copies.remove(at: i)
                }
            }
        }
        for c in copies { sysClose(c.fd) }
    }

    private func count(_ name: MirrorName, answered: Bool) {
        shared.withLock { s in
            if answered { s.counts[name, default: MirrorCounts()].answered += 1 } else { s.counts[name, default: MirrorCounts()].failed += 1 }
        }
    }

    /// Moves one copy along; its outcome (answered or not) once it is over.
    private func step(_ c: inout Copy, _ revents: Int16, _ now: Int64, _ buf: inout [UInt8]) -> Bool? {
        if c.connecting {
            guard revents != 0 else { return now >= c.deadline ? false : nil }
            if TCP.socketError(c.fd) != 0 { return false }
            c.connecting = false
        }
        if c.sent < c.job.bytes.count {
            let r = c.job.bytes.withUnsafeBytes { sysWrite(c.fd, $0.baseAddress! + c.sent, $0.count - c.sent) }
            switch r {
            case .bytes(let n): c.sent += n
            case .wouldBlock: break
            case .eof, .error: return false
            }
            return now >= c.deadline ? false : nil
        }
        if revents != 0 {
            while c.got.count < MirrorSender.maxResponseHead {
                let r = buf.withUnsafeMutableBytes { sysRead(c.fd, $0.baseAddress!, $0.count) }
                guard case .bytes(let n) = r else {
                    if case .wouldBlock = r { break }
                    return c.got.isEmpty ? false : responseHeadComplete(c.got)
                }
                c.got += buf[0..<n]
                if responseHeadComplete(c.got) { return true }
            }
            if c.got.count >= MirrorSender.maxResponseHead { return false }
        }
        return now >= c.deadline ? false : nil
    }

    private func responseHeadComplete(_ got: [UInt8]) -> Bool {
        var head = ResponseHead()
        var scan = HeadScan()
        let r = got.withUnsafeBytes { HeadParser.parseResponse($0, limits: HeadLimits(), into: &head, scan: &scan) }
        if case .complete = r { return true }   // any answer, an interim one too
        return false
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
    var body: [UInt8] = []
    private var handedOver = false

    init(sender: MirrorSender, name: MirrorName, address: SocketAddress, maxBody: Int, head: [UInt8], hasBody: Bool) {
        self.sender = sender; self.name = name; self.address = address; self.maxBody = maxBody; self.head = head; self.hasBody = hasBody
    }

    deinit { if !handedOver { sender.drop(name) } }

    /// Framing of our own (the body is whole: a length), then to the queue.
    func send() {
        handedOver = true
        sender.submit(MirrorSender.Job(address: address, bytes: mirrorRequest(fields: head, body: hasBody ? body : nil), name: name))
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
                              head: Array(b.readView), hasBody: hasBody)
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
