// Active health checks: one prober thread per config probes every server of
// every group that has a `health_check`, on its interval, all probes in
// flight at once (non-blocking sockets, one poll). A verdict goes into the
// server's ServerHealth, which every worker's balancer reads, so a stopped
// origin leaves rotation before any client request fails on it, and comes
// back after `rise` passing probes. Passive health still applies on top.
//
// A probe: TCP connect, `METHOD PATH HTTP/1.1` with Host and
// `Connection: close`, then the status line (and, with `body`, the body up
// to 64 KiB, read to the end) within `timeout`. https:// groups are probed
// with a TCP connect only.
//
// Concurrency and ownership: the prober thread alone opens, polls and
// closes its probes' sockets (each closed exactly once, by `finish` or when
// the thread ends); workers only read ServerHealth (atomics and a mutex).
// `stop()` sets an atomic flag and joins: the loop notices within 50 ms.
import Glibc
import Synchronization
import EdgeConfig
import EdgeHTTP
import EdgeIO
import EdgeUpstream

/// A group's check, ready for the prober.
struct RuntimeHealthCheck: Sendable {
    let config: HealthCheckConfig
    let expect: StatusSet
    let body: [UInt8]?

    init(_ c: HealthCheckConfig) {
        config = c
        expect = StatusSet(c.expect) ?? StatusSet(["2xx", "3xx"])!
        body = c.bodyContains.map { Array($0.utf8) }
    }

    /// The probe's request bytes for one server (written where every origin request head is: Forward.swift).
    func request(host: [UInt8]) -> [UInt8] {
        probeRequestHead(method: config.method, path: config.path, host: config.host.map { Array($0.utf8) } ?? host)
    }
}

final class HealthProber: @unchecked Sendable {
    struct Probe {
        var fd: Int32
        var deadline: Int64
        var connecting: Bool
        var sent = 0
        var got: [UInt8] = []
    }

    struct Target {
        let server: OriginServer
        let check: RuntimeHealthCheck
        let request: [UInt8]
        let tcpOnly: Bool
        var counter: ProbeCounter
        var next: Int64
        var probe: Probe?
    }

    static let maxResponse = 64 << 10
    private let stopping = Atomic<Bool>(false)
    private var thread: OSThread?
    private var targets: [Target]       // the prober thread's alone once started
    private let log: @Sendable (String) -> Void

    /// Nil when no group of the config has a health check.
    init?(config: RuntimeConfig, log: @escaping @Sendable (String) -> Void) {
        var t: [Target] = []
        let now = monotonicMillis()
        for g in config.groups {
            guard let check = g.check, case .http(let ids) = g.kind else { continue }
            for (k, id) in ids.enumerated() {
                let s = config.servers[id]
                // Staggered over the first quarter interval, so a large group does not probe in one burst.
                let first = now + check.config.intervalMillis * Int64(k) / Int64(max(1, ids.count)) / 4
                t.append(Target(server: s, check: check, request: check.request(host: s.label), tcpOnly: s.tls != nil,
                                counter: ProbeCounter(rise: check.config.rise, fall: check.config.fall), next: first))
            }
        }
        guard !t.isEmpty else { return nil }
        targets = t
        self.log = log
    }

    func start() {
        thread = OSThread.spawn(name: "edge-health") { [self] in run() }
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        thread?.join()
        thread = nil
    }

    private func run() {
        var fds: [pollfd] = []
        var which: [Int] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while !stopping.load(ordering: .relaxed) {
            var now = monotonicMillis()
            for i in targets.indices where targets[i].probe == nil && now >= targets[i].next { begin(i, now) }
            fds.removeAll(keepingCapacity: true)
            which.removeAll(keepingCapacity: true)
            for i in targets.indices {
                guard let p = targets[i].probe else { continue }
                let out = p.connecting || p.sent < targets[i].request.count
                fds.append(pollfd(fd: p.fd, events: Int16(out ? POLLOUT : POLLIN), revents: 0))
                which.append(i)
            }
            _ = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), 50) }
            now = monotonicMillis()
            for (k, i) in which.enumerated() { step(i, fds[k].revents, now, &buf) }
        }
        for i in targets.indices { if let p = targets[i].probe { sysClose(p.fd); targets[i].probe = nil } }
    }

    private func begin(_ i: Int, _ now: Int64) {
        let deadline = now + targets[i].check.config.timeoutMillis
        switch TCP.connect(targets[i].server.address) {
        case .connected(let fd): targets[i].probe = Probe(fd: fd, deadline: deadline, connecting: false)
        case .inProgress(let fd): targets[i].probe = Probe(fd: fd, deadline: deadline, connecting: true)
        case .failed(let e): finish(i, passed: false, why: "connect: " + String(cString: strerror(e)), now)
        }
    }

    private func step(_ i: Int, _ revents: Int16, _ now: Int64, _ buf: inout [UInt8]) {
        guard var p = targets[i].probe else { return }
        if p.connecting {
            if revents != 0 {
                let e = TCP.socketError(p.fd)
                if e != 0 { return finish(i, passed: false, why: "connect: " + String(cString: strerror(e)), now) }
                p.connecting = false
                if targets[i].tcpOnly { targets[i].probe = p; return finish(i, passed: true, why: "connected", now) }
            }
        } else if targets[i].tcpOnly {
            targets[i].probe = p
            return finish(i, passed: true, why: "connected", now)
        } else if p.sent < targets[i].request.count {
            if revents != 0 {
                let r = targets[i].request.withUnsafeBytes { sysWrite(p.fd, $0.baseAddress! + p.sent, $0.count - p.sent) }
                switch r {
                case .bytes(let n): p.sent += n
                case .wouldBlock: break
                case .eof, .error: targets[i].probe = p; return finish(i, passed: false, why: "connection reset while sending", now)
                }
            }
        } else if revents != 0 {
            var ended = false
            while p.got.count < HealthProber.maxResponse {
                let r = buf.withUnsafeMutableBytes { sysRead(p.fd, $0.baseAddress!, $0.count) }
                if case .bytes(let n) = r { p.got += buf[0..<n]; continue }
                if case .wouldBlock = r { break }
                ended = true
                break
            }
            if p.got.count >= HealthProber.maxResponse { ended = true }
            targets[i].probe = p
            if let (passed, why) = judge(p.got, ended: ended, targets[i].check) { return finish(i, passed: passed, why: why, now) }
            p = targets[i].probe!
        }
        targets[i].probe = p
        if now >= p.deadline {
            finish(i, passed: false, why: "no answer within \(targets[i].check.config.timeoutMillis)ms", now)
        }
    }

    /// The verdict on what arrived so far (nil: wait for more).
    private func judge(_ got: [UInt8], ended: Bool, _ check: RuntimeHealthCheck) -> (Bool, String)? {
        var head = ResponseHead()
        var scan = HeadScan()
        let r = got.withUnsafeBytes { HeadParser.parseResponse($0, limits: HeadLimits(), into: &head, scan: &scan) }
        switch r {
        case .needMore:
            return ended ? (false, got.isEmpty ? "connection closed without a response" : "incomplete response head") : nil
        case .error:
            return (false, "not an HTTP response")
        case .complete(let n):
            guard check.expect.contains(head.status) else { return (false, "status \(head.status)") }
            guard let want = check.body else { return (true, "status \(head.status)") }
            if contains(got[n...], want) { return (true, "status \(head.status), body matches") }
            return ended ? (false, "body lacks \"\(String(decoding: want, as: UTF8.self))\"") : nil
        }
    }

    private func contains(_ hay: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard needle.count <= hay.count else { return false }
        var i = hay.startIndex
        while i + needle.count <= hay.endIndex {
            if hay[i] == needle[0] && hay[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }

    private func finish(_ i: Int, passed: Bool, why: String, _ now: Int64) {
        if let p = targets[i].probe { sysClose(p.fd); targets[i].probe = nil }
        targets[i].next = now + targets[i].check.config.intervalMillis
        guard let up = targets[i].counter.record(passed: passed) else { return }
        let s = targets[i].server
        let reason = up ? "\(targets[i].check.config.rise) probe(s) passed (\(why))" : "\(targets[i].check.config.fall) probe(s) failed (last: \(why))"
        s.health.setProbed(up: up, why: reason, at: wallClock().seconds, now: now)
        log("edged: origin \(s.statsName) is \(up ? "up" : "DOWN"): \(reason)")
    }
}
