// Starts the workers, each on its own thread with its own SO_REUSEPORT
// listener, and stops them gracefully.
import Glibc
import EdgeConfig
import EdgeIO
import EdgeProtect
import Synchronization
import EdgeCache

/// The current RuntimeConfig and its generation. Workers read the generation
/// (one atomic load per loop turn) and take the lock only when it changed.
final class ConfigBox: Sendable {
    let generation = Atomic<Int>(0)
    let value: Mutex<RuntimeConfig>
    init(_ c: RuntimeConfig) { value = Mutex(c) }
    func current() -> (Int, RuntimeConfig) {
        value.withLock { (generation.load(ordering: .acquiring), $0) }
    }
    func replace(_ c: RuntimeConfig) {
        value.withLock {
            $0 = c
            generation.add(1, ordering: .releasing)
        }
    }
}

public final class EdgeServer: @unchecked Sendable {
    let box: ConfigBox
    /// The config new requests use.
    public var config: RuntimeConfig { box.current().1 }
    let workers: [Worker]
    var threads: [OSThread] = []
    /// The current config's health-check prober (started, swapped on reload, stopped).
    let prober = Mutex<HealthProber?>(nil)
    /// Mirror copies' queue and sender (its thread starts with the first copy).
    let mirror = MirrorSender()
    /// The bound HTTP address (the port is known even when 0 was asked for).
    public let httpAddress: SocketAddress
    /// The bound HTTPS address, when any tenant has TLS.
    public let httpsAddress: SocketAddress?
    let logFD: Int32
    let ownsLog: Bool
    /// The cache's clock (tests advance it).
    public let clock = CacheClock { wallClock().seconds }
    /// Request, cache and origin counters (edgectl stats, /metrics).
    public let stats: Stats
    /// Rate-limit buckets, shared by the workers and kept across reloads.
    public let rateTable: RateTable
    /// The live tail of access events (edgectl log, the dashboard's top URLs).
    public let tap: LogTap

    /// Binds the listeners. Throws when the address cannot be bound or the log opened.
    public init(config: RuntimeConfig) throws {
        raiseFileLimit()
        self.box = ConfigBox(config)
        guard var addr = SocketAddress(config.server.httpListen) else {
            throw ConfigError(file: "--http", field: "", message: "\"\(config.server.httpListen)\" is not ADDR:PORT")
        }
        switch config.server.accessLog {
        case "off": logFD = -1; ownsLog = false
        case "stdout", "": logFD = 1; ownsLog = false
        default:
            let fd = open(config.server.accessLog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw IOError("open access log \(config.server.accessLog)") }
            logFD = fd; ownsLog = true
        }
        var n = config.server.workers
        if n <= 0 { n = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
        var secure: SocketAddress? = nil
        if config.tls != nil, let h = config.httpsListen {
            guard let a = SocketAddress(h) else { throw ConfigError(file: "--https", field: "", message: "\"\(h)\" is not ADDR:PORT") }
            secure = a
        }
        var ws: [Worker] = []
        let inFlight = InFlight()
        let addressLimits = AddressLimits()
        let rateTable = RateTable(keys: config.server.rateLimitKeys)
        self.rateTable = rateTable
        let mailboxes = try Mailboxes(count: n)
        stats = Stats(workers: n)
        let tap = LogTap(workers: n)
        self.tap = tap
        for i in 0..<n {
            let fd = try TCP.listen(addr, reusePort: true)
            if i == 0, let bound = TCP.localAddress(fd) { addr = bound }
            var sfd: Int32 = -1
            if let s = secure {
                sfd = try TCP.listen(s, reusePort: true)
                if i == 0, let bound = TCP.localAddress(sfd) { secure = bound }
            }
            ws.append(try Worker(index: i, box: box, listenFD: fd, httpsFD: sfd, httpsPort: secure?.port ?? 443, logFD: logFD,
                                 inFlight: inFlight, mailboxes: mailboxes, clock: clock, stats: stats, addressLimits: addressLimits,
                                 rateTable: rateTable, tap: tap, mirror: mirror))
        }
        workers = ws
        httpAddress = addr
        httpsAddress = secure
    }

    public var workerCount: Int { workers.count }

    /// Reopens the access log file (SIGUSR1, after rotation): the new file takes
    /// the old descriptor's number, so workers keep writing without noticing.
    public func reopenLog() throws {
        guard ownsLog else { return }
        let path = config.server.accessLog
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOError("open access log \(path)") }
        defer { sysClose(fd) }
        guard dup2(fd, logFD) >= 0 else { throw IOError("dup2 access log") }
        _ = fcntl(logFD, F_SETFD, FD_CLOEXEC)
    }

    /// Swaps in a new config (already loaded and validated): new requests and
    /// new TLS handshakes use it; connections and requests in flight carry on.
    /// Listener addresses and the worker count stay as they are (restart to change them).
    public func reload(_ newConfig: RuntimeConfig) {
        let before = Set(config.tenantNames)
        box.replace(newConfig)
        swapProber(newConfig)
        // A removed tenant's cache entries go with it; unchanged tenants keep theirs.
        for gone in before.subtracting(newConfig.tenantNames) { newConfig.store.remove(tenant: gone) }
        for w in workers { w.wake.signal() }
    }

    /// Stops the prober of the config before and starts the new one's
    /// (health starts afresh with the new config's servers).
    func swapProber(_ c: RuntimeConfig?) {
        let next = c.flatMap { HealthProber(config: $0, log: { line in let b = Array((line + "\n").utf8); _ = b.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) } }) }
        let old = prober.withLock { p -> HealthProber? in let o = p; p = next; return o }
        old?.stop()
        next?.start()
    }

    /// Starts one thread per worker, and the health-check prober.
    public func start() {
        ignoreSIGPIPE()
        swapProber(config)
        for (i, w) in workers.enumerated() {
            threads.append(OSThread.spawn(name: "edge-worker-\(i)") { w.run() })
        }
    }

    /// Asks every worker to stop: listeners close at once, idle connections
    /// close, in-flight requests finish (up to the shutdown timeout).
    public func stop() {
        for w in workers { w.requestStop() }
        swapProber(nil)
        mirror.stop()
    }

    /// Waits until every worker has stopped.
    public func wait() {
        guard !threads.isEmpty else { return }
        for t in threads { t.join() }
        threads.removeAll()
        if ownsLog { sysClose(logFD) }
    }
}
