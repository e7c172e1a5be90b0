// One worker: one thread, one epoll loop, one SO_REUSEPORT listener.
//
// Ownership and concurrency rules for everything in this module:
// - A Worker and every connection object it creates (ClientConnection,
//   OriginConnection, their IOBuffers) belong to the worker's thread alone.
//   Connections never move between workers, so none of this state is locked.
// - The only cross-thread touches are `stopRequested` (an Atomic written by
//   the signal thread) and the `wake` eventfd, and the shared read-only
//   `RuntimeConfig` whose mutable parts (origin health) are atomics.
// - Sockets are registered edge-triggered for read and write once; the
//   `readable` / `writable` flags on a connection remember readiness until a
//   syscall answers EAGAIN, so interest never has to be modified.
import Glibc
import Synchronization
import EdgeConfig
import EdgeHTTP
import EdgeIO
import EdgeUpstream
import EdgeTLS
import EdgeCache
import EdgeProtect

enum Slot {
    case free
    case listener
    case wake
    case client(ClientConnection)
    case origin(OriginConnection)
    /// An idle plain keep-alive connection, parked (see `park`): its record is
    /// `Worker.parked[fd]`, and the fd table owns the fd. (No payload here:
    /// a slot stays 8 bytes for every fd, parked or not.)
    case parked
}

/// What is left of a plain keep-alive connection idle for Worker.parkAfterMillis
/// (parked at a sweep): its ClientConnection (with its address text, head, scan
/// and HTTP/2 state, ~350 bytes) is freed, and this record (32 bytes) plus its
/// slot (8) are all it costs until its next byte arrives (`unpark`) or its idle
/// deadline passes. The fd table owns the fd meanwhile (OwnedFD.handOver).
/// (Field order packs it into 32 bytes: the address's 16, the generation, the
/// request count and the flags, then the deadline.)
struct ParkedClient {
    var addr: IPAddress
    var gen: UInt32
    /// Requests served so far (saturating: the config's cap is at most 65,535).
    var requests: UInt16
    var flags: UInt8
    var deadline: Int64

    static let trusted: UInt8 = 1, countedByAddress: UInt8 = 2, writable: UInt8 = 4
    @inline(__always) func has(_ f: UInt8) -> Bool { flags & f != 0 }
}

/// Pending output above which producers pause (backpressure).
let highWater = 64 * 1024
/// Size of pooled buffers.
let bufferSize = 16 * 1024

public final class Worker: @unchecked Sendable {
    /// Interim (1xx) responses an origin may send before its final one; more is broken.
    static let maxInterim = 16
    /// A plain connection idle this long is parked at the next sweep (one in
    /// steady use between requests is not parked and brought back each time).
    static let parkAfterMillis: Int64 = 1000
    let index: Int
    var config: RuntimeConfig
    let epoll: Epoll
    let wake: EventFD
    /// Collapsing: the shared in-flight table and every worker's mailbox.
    let inFlight: InFlight
    let mailboxes: Mailboxes
    /// Open connections per client address, shared by every worker.
    let addressLimits: AddressLimits
    /// Rate-limit buckets (tenant limits, new connections per address), shared by every worker.
    let rateTable: RateTable
    /// Counter blocks of the rate limits this worker has counted, by limit id.
    var limitBlocks: [UInt64: CounterBlock] = [:]
    var ruleBlocks: [UInt64: CounterBlock] = [:]
    /// By tenant index and signature category (reset with the config, like the others).
    var signatureBlocks: [Int: CounterBlock] = [:]
    /// The attack signatures' normalized text (Signatures.check), reused.
    var signatureScratch: [UInt8] = []
    /// Where PROXY headers are peeked into (made on first use).
    var proxyScratch: [UInt8] = []
    let clock: CacheClock
    /// Counters (see Stats.swift): this worker's blocks for the current config.
    let stats: Stats
    var tenantCounters: [CounterBlock] = []
    var noTenantCounters: CounterBlock
    var originCounters: [CounterBlock] = []
    var workerCounters: CounterBlock
    var listenFD: Int32
    var httpsFD: Int32
    /// The HTTPS port redirects point at.
    let httpsPort: UInt16
    var slots: [Slot] = []
    /// Parked idle connections' records, by fd (valid where `slots` says `.parked`).
    var parked: [ParkedClient] = []
    var parkedSinceTrim = 0
    var generation: UInt32 = 0
    var clientCount = 0
    let stopRequested = Atomic<Bool>(false)
    var stopping = false
    var stopDeadline: Int64 = 0
    var now: Int64 = 0
    var nextSweep: Int64 = 0

    // Origin state, per worker, for the current config generation.
    var pools: OriginPools
    /// Where reloads arrive from (see EdgeServer.reload).
    let box: ConfigBox
    var configGeneration: Int

    /// Exchanges that may be woken (collapsed followers, parked or reading a
    /// leader's stream), by exchange id; `exchangeCounter` names the next one.
    var waiting: [UInt64: ClientConnection] = [:]
    var exchangeCounter: UInt64 = 0
    /// Kept head copies of exchanges that ended: back to the buffer pool after
    /// this loop turn (callers up the stack may read them until then).
    var retiredHeads: [IOBuffer] = []
    /// Origin connections to read again after this loop turn (an orphaned leader's).
    var resumeOrigins: [OriginConnection] = []
    /// HTTP/2 sessions with frames written this turn: flushed once at its end (HTTP2.swift).
    var h2Dirty: [H2Session] = []
    /// The HTTP/2 streams' response heads, read back from the writer's bytes (reused).
    var h2Head = WrittenHead()
    /// A stream's request head in HTTP/1 form on its way into the stream's input (reused).
    var h2Scratch: [UInt8] = []
    var bufferPool: [IOBuffer] = []
    /// File bytes on their way into a codec (directory origin, compressing routes).
    let fileScratch = IOBuffer(capacity: 64 * 1024)
    /// Field array lent to the connection whose head is being parsed, so an
    /// idle connection holds no field storage.
    var scratchFields: [Field] = []
    /// What connections between requests hold as their exchange (see
    /// ClientConnection.ex): this worker's own, so only its thread touches it.
    let idleExchange = Exchange()
    /// The byte stores of the last exchange let go while idle (target, host, log
    /// text), handed to the next exchange this worker begins: a keep-alive
    /// request reuses them instead of growing new ones (beginExchange).
    var spareTarget: [UInt8] = []
    var spareHost: [UInt8] = []
    var spareLogText: [UInt8] = []
    /// The same for a plain miss's deferred request fields (DeferredFields).
    var spareDeferred: [UInt8] = []
    /// The exchange let go last, its stores not yet taken (keepForReuse).
    var lastDropped: Exchange?
    /// The last host the tenant phase looked up and the tenant it names in
    /// `config` (nil: none kept; a new config clears it): keep-alive requests
    /// for one host find their tenant without making a String of it.
    var lastHost: [UInt8] = []
    var lastHostTenant: Tenant?
    /// Draws for split routes without stickiness (this worker's own sequence).
    var splitDraws: UInt64 = 0
    var mirrorDraws: UInt64 = 0
    /// Sends mirror copies (shared by the server's workers).
    let mirror: MirrorSender
    let date = DateCache()
    let log: AccessLog
    /// The live tail's rings (shared with the admin API's readers).
    let tap: LogTap
    /// Request ids this worker makes (AccessLog.makeRequestID).
    var requestIDs: SplitMix64 = { var g = SystemRandomNumberGenerator(); return SplitMix64(seed: g.next()) }()
    var limits: HeadLimits
    var server: ServerConfig

    init(index: Int, box: ConfigBox, listenFD: Int32, httpsFD: Int32, httpsPort: UInt16, logFD: Int32,
         inFlight: InFlight, mailboxes: Mailboxes, clock: CacheClock, stats: Stats, addressLimits: AddressLimits,
         rateTable: RateTable = RateTable(keys: 1024), tap: LogTap? = nil, mirror: MirrorSender = MirrorSender()) throws {
        self.tap = tap ?? LogTap(workers: index + 1)
        self.mirror = mirror
        self.addressLimits = addressLimits
        self.rateTable = rateTable
        self.clock = clock
        self.stats = stats
        self.noTenantCounters = stats.tenant("-", worker: index)
        self.workerCounters = stats.workers[index]
        self.inFlight = inFlight
        self.mailboxes = mailboxes
        self.httpsPort = httpsPort
        self.index = index
        self.box = box
        let (generation, config) = box.current()
        self.configGeneration = generation
        self.config = config
        self.server = config.server
        self.limits = config.server.head
        self.epoll = try Epoll(capacity: 512)
        self.wake = mailboxes.boxes[index].wake
        self.listenFD = listenFD
        self.httpsFD = httpsFD
        self.log = AccessLog(fd: logFD)
        pools = OriginPools(config: config)
        scratchFields.reserveCapacity(limits.maxFields)
        bindCounters()
        if listenFD >= 0 {   // (none for a worker that only serves in-memory connections: unit tests)
            setSlot(Int(listenFD), .listener)
            try epoll.add(listenFD, token: UInt64(listenFD), events: Epoll.readable)
        }
        if httpsFD >= 0 {
            setSlot(Int(httpsFD), .listener)
            try epoll.add(httpsFD, token: UInt64(httpsFD), events: Epoll.readable)
        }
        setSlot(Int(wake.fd), .wake)
        try epoll.add(wake.fd, token: UInt64(wake.fd), events: Epoll.readable)
    }

    @inline(__always) func setSlot(_ fd: Int, _ s: Slot) {
        if fd >= slots.count { slots.append(contentsOf: repeatElement(.free, count: max(fd + 1 - slots.count, 1024))) }
        slots[fd] = s
    }

    /// Puts a connection in the fd table and registers it edge-triggered for
    /// reads and writes; on failure the slot is freed and false returned (the
    /// connection's OwnedFD still holds the fd: its owner closes it).
    func register(_ fd: Int32, gen: UInt32, _ slot: Slot) -> Bool {
        setSlot(Int(fd), slot)
        do {
            try epoll.add(fd, token: UInt64(fd) | UInt64(gen) << 32,
                          events: Epoll.readable | Epoll.writable | Epoll.hangup | Epoll.edge)
            return true
        } catch {
            slots[Int(fd)] = .free
            return false
        }
    }

    @inline(__always) func nextGeneration() -> UInt32 {
        generation &+= 1
        if generation == 0 { generation = 1 }
        return generation
    }

    // MARK: Buffers

    @inline(__always) func takeBuffer() -> IOBuffer {
        if let b = bufferPool.popLast() { return b }
        return IOBuffer(capacity: bufferSize)
    }

    @inline(__always) func giveBuffer(_ b: IOBuffer) {
        guard bufferPool.count < 256 else { return }
        b.clear()
        b.shrink(to: bufferSize)
        bufferPool.append(b)
    }

    // MARK: Loop

    /// Asks the worker to stop gracefully (any thread).
    func requestStop() {
        stopRequested.store(true, ordering: .releasing)
        wake.signal()
    }

    func run() {
        now = monotonicMillis()
        date.refresh()
        while true {
            let n = epoll.wait(timeoutMillis: 250)
            now = monotonicMillis()
            date.refresh()
            // A reload that returned before these events happened is in force for them:
            // the new config is adopted before any of this turn's events is handled.
            if box.generation.load(ordering: .acquiring) != configGeneration { adoptNewConfig() }
            for i in 0..<n { dispatch(epoll.tokens[i], epoll.events[i]) }
            drainMailbox()
            if !resumeOrigins.isEmpty {
                let list = resumeOrigins
                resumeOrigins = []
                for o in list where !o.closed && o.client != nil { originReadable(o) }
            }
            if !h2Dirty.isEmpty { flushDirtyH2() }
            if !retiredHeads.isEmpty {
                for b in retiredHeads { giveBuffer(b) }
                retiredHeads.removeAll(keepingCapacity: true)
            }
            log.flush()
            if now >= nextSweep {
                nextSweep = now + 250
                sweep()
            }
            if !stopping && stopRequested.load(ordering: .acquiring) { beginStop() }
            if stopping && (clientCount == 0 || now >= stopDeadline) { break }
        }
        // Close whatever is left.
        for fd in 0..<slots.count {
            switch slots[fd] {
            case .client(let c):
                if c.phase == .tunnel { endTunnel(c, "stop") }
                closeClient(c)
            case .origin(let o): closeOrigin(o)
            case .parked: closeParked(Int32(fd), parked[fd])
            default: break
            }
        }
        log.flush()
    }

    @inline(__always) func dispatch(_ token: UInt64, _ ev: UInt32) {
        let fd = Int(token & 0xFFFF_FFFF)
        let gen = UInt32(truncatingIfNeeded: token >> 32)
        guard fd < slots.count else { return }
        switch slots[fd] {
        case .client(let c):
            guard c.gen == gen else { return }
            onClientEvent(c, ev)
        case .origin(let o):
            guard o.gen == gen else { return }
            onOriginEvent(o, ev)
        case .parked:
            guard parked[fd].gen == gen else { return }
            onClientEvent(unpark(Int32(fd), parked[fd]), ev)
        case .listener:
            acceptAll(Int32(fd))
        case .wake:
            wake.drain()
        case .free:
            return
        }
    }

    /// Switches to the newest config: new requests use it, requests in flight
    /// finish on the objects they hold, idle origin connections of the old one close.
    func adoptNewConfig() {
        let (generation, newConfig) = box.current()
        configGeneration = generation
        config = newConfig
        lastHostTenant = nil
        server = newConfig.server
        limits = newConfig.server.head
        let old = pools
        pools = OriginPools(config: newConfig)
        for list in old.idle { for o in list { closeOrigin(o) } }
        old.idle = []
        bindCounters()
    }

    func beginStop() {
        stopping = true
        stopDeadline = now + server.shutdownTimeoutMillis
        for fd in [listenFD, httpsFD] where fd >= 0 {
            epoll.remove(fd)
            slots[Int(fd)] = .free
            sysClose(fd)
        }
        listenFD = -1
        httpsFD = -1
        // Idle keep-alive connections close now; busy ones after their response.
        for fd in 0..<slots.count {
            if case .parked = slots[fd] { closeParked(Int32(fd), parked[fd]); continue }
            if case .client(let c) = slots[fd] {
                if let h = c.h2 { h2Stop(c, h); continue }
                if c.phase == .head && (c.inBuf?.isEmpty ?? true) && (c.outBuf?.isEmpty ?? true) { closeClient(c) }
                else { c.keepAlive = false }
            }
        }
    }

    func acceptAll(_ lfd: Int32) {
        let secure = lfd == httpsFD
        while true {
            switch TCP.accept(lfd) {
            case .accepted(let fd, let addr):
                if clientCount >= server.maxConnectionsPerWorker || stopping {
                    sysClose(fd)
                    continue
                }
                let a = addr.ipAddress
                let c = ClientConnection(fd: fd, gen: nextGeneration(), addr: a, peerIP: a.text, trusted: isTrusted(a), exchange: idleExchange)
                if server.proxyProtocol {
                    // The balancer's connection: the client is named by its header (readProxyHeader).
                    c.stage = .proxyHeader
                    c.secureAfterHeader = secure
                } else if !admitClient(c) || !beginClient(c, secure: secure) {
                    dropAccepted(c)
                    continue
                }
                guard register(fd, gen: c.gen, .client(c)) else { dropAccepted(c); continue }
                clientCount += 1
                workerCounters.set(WorkerSlot.openConnections, clientCount)
                if c.stage == .proxyHeader {
                    c.timeout = .idle
                    c.deadline = now + server.proxyProtocolTimeoutMillis
                    c.idleSince = now
                }
            case .wouldBlock:
                return
            case .error:
                return  // EMFILE and friends: try again on the next event
            }
        }
    }

    /// A connection accepted but never registered: its socket closes and, if it
    /// was counted against its address's cap, that count is given back.
    func dropAccepted(_ c: ClientConnection) {
        c.tls = nil
        c.socket.close()
        if c.countedByAddress { addressLimits.release(c.peerIP) }
    }

    func sweep() {
        for fd in 0..<slots.count {
            switch slots[fd] {
            case .client(let c):
                // A carrier's WebSocket streams (RFC 8441) keep their tunnels' idle timers.
                if let h = c.h2, !h.streams.isEmpty {
                    for s in h.streams.values where s.phase == .tunnel && s.deadline != 0 && now >= s.deadline { clientTimedOut(s) }
                }
                if c.sendDeadline != 0 && now >= c.sendDeadline {
                    abortClient(c)
                } else if c.deadline != 0 && now >= c.deadline {
                    clientTimedOut(c)
                } else if c.rateDeadline != 0 {
                    checkBodyRate(c)
                } else if let r = parkable(c) {
                    park(c, r)
                }
            case .parked:
                if now >= parked[fd].deadline { closeParked(Int32(fd), parked[fd]) }
            case .origin(let o):
                if o.deadline != 0 && now >= o.deadline { originTimedOut(o) }
            default:
                break
            }
        }
        // Once 256 connections have parked since the last time (a crowd gone
        // idle), the memory their objects held goes back to the system, not only
        // to the allocator's free lists: what idle connections cost in RSS is
        // what they hold. (At most once a sweep.)
        if parkedSinceTrim >= 256 {
            parkedSinceTrim = 0
            releaseFreedMemory()
        }
    }
}

// MARK: Parked idle connections

extension Worker {
    /// The record `c` parks as, when it is a plain HTTP/1 connection idle
    /// between requests with nothing held: no bytes in or out, no exchange,
    /// no TLS or HTTP/2, no pending readiness (nil otherwise).
    func parkable(_ c: ClientConnection) -> ParkedClient? {
        guard c.phase == .head, c.timeout == .idle, c.stage == .open, c.sink == nil, c.tls == nil, c.h2 == nil, c.h2Parent == nil,
              !c.readable, !c.hangup, !c.eof, c.inBuf == nil, c.outBuf == nil, c.pendingBody == nil, c.ex === idleExchange,
              c.deadline != 0, now - c.idleSince >= Worker.parkAfterMillis, !c.inProcess, c.sendDeadline == 0, c.rateDeadline == 0 else { return nil }
        let flags = (c.trusted ? ParkedClient.trusted : 0) | (c.countedByAddress ? ParkedClient.countedByAddress : 0) | (c.writable ? ParkedClient.writable : 0)
        return ParkedClient(addr: c.addr, gen: c.gen, requests: UInt16(clamping: c.requests), flags: flags, deadline: c.deadline)
    }

    /// Frees an idle connection's object, keeping only its record (the fd
    /// table takes the fd: nothing else refers to an idle connection).
    func park(_ c: ClientConnection, _ r: ParkedClient) {
        let fd = Int(c.socket.handOver())
        c.stage = .closed
        if fd >= parked.count {
            let empty = ParkedClient(addr: r.addr, gen: 0, requests: 0, flags: 0, deadline: 0)
            parked.append(contentsOf: repeatElement(empty, count: max(fd + 1 - parked.count, 1024)))
        }
        parked[fd] = r
        slots[fd] = .parked
        parkedSinceTrim += 1
        workerCounters.add(WorkerSlot.parkedConnections, 1)
    }

    /// A parked connection's next event: it becomes a connection again, as it
    /// was (same fd, generation, address, deadline), and handles the event.
    func unpark(_ fd: Int32, _ r: ParkedClient) -> ClientConnection {
        let c = ClientConnection(fd: fd, gen: r.gen, addr: r.addr, peerIP: r.addr.text, trusted: r.has(ParkedClient.trusted), exchange: idleExchange)
        c.countedByAddress = r.has(ParkedClient.countedByAddress)
        c.writable = r.has(ParkedClient.writable)
        c.requests = Int(r.requests)
        c.timeout = .idle
        c.deadline = r.deadline
        slots[Int(fd)] = .client(c)
        return c
    }

    /// Closes a parked connection (idle timeout, stop) as closeClient would an idle one.
    func closeParked(_ fd: Int32, _ r: ParkedClient) {
        slots[Int(fd)] = .free
        sysClose(fd)
        if r.has(ParkedClient.countedByAddress) { addressLimits.release(r.addr.text) }
        clientCount -= 1
        workerCounters.set(WorkerSlot.openConnections, clientCount)
    }
}

/// The Date header, formatted at most once a second.
final class DateCache {
    var seconds: Int64 = -1
    let line = IOBuffer(capacity: 64)     // "Date: ...\r\n"
    var iso: [UInt8] = []                  // "2026-11-27T07:22:38"
    var clf: [UInt8] = []                  // "27/Nov/2026:07:22:38 +0000" (combined log format)

    func refresh() {
        let (s, _) = wallClock()
        guard s != seconds else { return }
        seconds = s
        line.clear()
        line.append("Date: ")
        HTTPDate.format(s, into: line)
        line.append("\r\n")
        iso = isoSeconds(s)
        clf = clfSeconds(s)
    }
}

/// "06/Dec/2026:06:40:00 +0000": the time as nginx's and Apache's logs write it (UTC).
func clfSeconds(_ s: Int64) -> [UInt8] {
    let day = s / 86400
    let secs = Int(s - day * 86400)
    let (y, m, d) = HTTPDate.civil(day)
    func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    return Array("\(two(d))/\(months[m - 1])/\(y):\(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60)) +0000".utf8)
}

func isoSeconds(_ s: Int64) -> [UInt8] {
    let day = s / 86400
    let secs = Int(s - day * 86400)
    let (y, m, d) = HTTPDate.civil(day)
    func two(_ v: Int) -> [UInt8] { [UInt8(48 + v / 10 % 10), UInt8(48 + v % 10)] }
    var out: [UInt8] = two(Int(y) / 100) + two(Int(y) % 100)
    out += [45] + two(m) + [45] + two(d) + [84] + two(secs / 3600) + [58] + two(secs / 60 % 60) + [58] + two(secs % 60)
    return out
}
