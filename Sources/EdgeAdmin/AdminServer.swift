// The admin API: HTTP/1.1 + JSON on a Unix socket in the state directory
// (mode 0600) and, optionally, a loopback TCP port that requires a bearer token.
//
// Threads: the admin thread only accepts. Each connection is served on a
// thread of its own with blocking sockets, at most `maxPerListener` at once per
// listener (a listener over its bound answers 503 at once), so slow or idle TCP
// peers can neither delay the Unix socket nor each other. Nothing here runs
// on, or blocks, a worker: what the handlers call (EdgeServer's operations)
// only takes the store's shard locks briefly, and reloads are serialized
// inside EdgeServer. `active` (the open connections, under a Mutex) lets
// `stop()` (any thread; it writes the wake-up eventfd) cut them short and wait
// for their threads to finish.
import EdgeJSON
import Glibc
import Synchronization
import EdgeIO
import EdgeHTTP
import EdgeProxy
import EdgeProtect
import EdgeAdminClient
import EdgeACME

public final class AdminServer: @unchecked Sendable {
    let edge: EdgeServer
    let unixFD: Int32
    let tcpFD: Int32
    let token: [UInt8]?
    public let socketPath: String
    /// The bound TCP address, when the TCP listener is on.
    public let tcpAddress: SocketAddress?
    let wake: EventFD
    let reload: @Sendable () throws -> String
    var thread: OSThread?
    /// Connections being served: fd → which listener (true: TCP).
    let active = Mutex<[Int32: Bool]>([:])
    /// Fleet purges applied here (Fleet.swift), and the pull from the peers.
    let journal: FleetJournal
    var sync: FleetSync?
    /// The ACME manager (edged sets it before `start`; nil in processes without one).
    public var acme: ACMEManager?
    /// Per-second series and top URLs for the dashboard and edgectl top (Live.swift).
    let live: LiveSampler

    /// Connections served at once per listener.
    public static let maxPerListener = 16
    /// An unauthenticated TCP peer has this long to send its whole request head.
    public static let tcpHeadMillis: Int64 = 2000
    /// A whole request (head and body) within this, on either listener.
    public static let requestMillis: Int64 = 10_000

    /// - Parameters:
    ///   - socketPath: the Unix socket (created 0600; a stale one is replaced).
    ///   - tcp: "127.0.0.1:PORT" for the optional TCP listener (loopback or a private network).
    ///   - tokenFile: the bearer token for TCP (required with `tcp`).
    ///   - reload: reads and swaps in the config (SIGHUP's work); throws with file and field.
    public init(edge: EdgeServer, socketPath: String, tcp: String? = nil, tokenFile: String? = nil,
                reload: @escaping @Sendable () throws -> String) throws {
        self.edge = edge
        self.socketPath = socketPath
        self.reload = reload
        live = LiveSampler(edge: edge)
        let server = edge.config.server
        journal = FleetJournal(stateDir: server.stateDir)
        var token: [UInt8]?
        var tcpFD: Int32 = -1
        var bound: SocketAddress?
        if let tcp {
            guard let file = tokenFile else { throw AdminError("the TCP admin listener needs a token file (--admin-token-file)") }
            guard let text = Files.readText(file) else { throw AdminError("\(file): cannot read the admin token") }
            let t = text.trimmedWhitespace()
            guard t.utf8.count >= 16 else { throw AdminError("\(file): the admin token must be at least 16 characters") }
            token = Array(t.utf8)
            guard let addr = SocketAddress(tcp) else { throw AdminError("\"\(tcp)\" is not ADDR:PORT") }
            guard isAdminAddress(addr.ipString) else {
                throw AdminError("the TCP admin listener must be on loopback or a private network (10/8, 172.16/12, 192.168/16, fc00::/7), not \(tcp)")
            }
            tcpFD = try TCP.listen(addr, reusePort: false, backlog: 64)
            bound = TCP.localAddress(tcpFD)
        }
        self.token = token
        self.tcpFD = tcpFD
        self.tcpAddress = bound
        do { unixFD = try UnixSocket.listen(path: socketPath) } catch {
            if tcpFD >= 0 { close(tcpFD) }
            throw error
        }
        wake = try EventFD()
        let fleet = server.fleet
        if !fleet.peers.isEmpty {
            let token = try fleet.peerTokenFile.map { f in
                do { return try readToken(f) } catch { throw AdminError("fleet: token_file: \(error)") }
            }
            let peers = fleet.peers.map { p in
                p.hasPrefix("http://") ? AdminNode(name: p, url: p, token: token, timeoutMillis: Int(fleet.syncTimeoutMillis))
                                       : AdminNode(name: p, socket: p, timeoutMillis: Int(fleet.syncTimeoutMillis))
            }
            sync = try FleetSync(peers: peers, journal: journal, stateDir: server.stateDir, intervalMillis: fleet.syncIntervalMillis) { [weak self] body in
                guard let self else { return 0 }
                return try self.purge(body).purged
            }
        }
    }

    /// Before the listeners serve: pulls the fleet purges this node missed
    /// while it was down (each peer gets `fleet.sync_timeout`). Returns a line
    /// for the log (nil without peers).
    public func syncBeforeServing() -> String? {
        guard let sync else { return nil }
        let results = sync.syncAll()
        let applied = results.values.reduce(0) { n, r in if case .success(let k) = r { return n + k } else { return n } }
        let failed = results.compactMap { k, r -> String? in if case .failure(let e) = r { return "\(k) (\(e))" } else { return nil } }
        var line = "fleet: \(applied) missed purge(s) applied from \(results.count - failed.count) of \(results.count) peer(s)"
        if !failed.isEmpty { line += "; unreachable: " + failed.sorted().joined(separator: ", ") }
        return line
    }

    public func start() {
        thread = OSThread.spawn(name: "edge-admin") { [self] in run() }
        sync?.start()
        live.start()
    }

    public func stop() {
        sync?.stop()
        live.stop()
        wake.signal()
        thread?.join()
        thread = nil
        // Cut the connections still being served short, and wait for their threads.
        active.withLock { for fd in $0.keys { _ = shutdown(fd, Int32(SHUT_RDWR)) } }
        while !active.withLock({ $0.isEmpty }) { usleep(1000) }
        close(unixFD)
        if tcpFD >= 0 { close(tcpFD) }
        unlink(socketPath)
    }

    func run() {
        var fds = [pollfd(fd: unixFD, events: Int16(POLLIN), revents: 0), pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0)]
        if tcpFD >= 0 { fds.append(pollfd(fd: tcpFD, events: Int16(POLLIN), revents: 0)) }
        while true {
            for i in fds.indices { fds[i].revents = 0 }
            let n = poll(&fds, nfds_t(fds.count), -1)
            if n < 0 { if errno == EINTR { continue }; return }
            if fds[1].revents != 0 { return }
            if fds[0].revents != 0 { acceptOne(unixFD, tcp: false) }
            if fds.count > 2 && fds[2].revents != 0 { acceptOne(tcpFD, tcp: true) }
        }
    }

    /// Accepts one connection and hands it to a thread of its own (or 503 when
    /// its listener already serves `maxPerListener`).
    func acceptOne(_ lfd: Int32, tcp: Bool) {
        let fd = acceptBlocking(lfd)
        guard fd >= 0 else { return }
        let admitted = active.withLock { a -> Bool in
            guard a.values.filter({ $0 == tcp }).count < Self.maxPerListener else { return false }
            a[fd] = tcp
            return true
        }
        guard admitted else {
            setSocketTimeouts(fd, millis: 1000)
            send(fd, AdminResponse.error(503, "too many admin connections; try again").serialized())
            close(fd)
            return
        }
        OSThread.detached(name: "edge-admin-conn") { [self] in
            serve(fd, needsToken: tcp)
            // Closed under the lock: stop() never shuts down a number reused meanwhile.
            active.withLock { a in a[fd] = nil; close(fd) }
        }
    }

    /// Reads one request and answers it. An unauthenticated TCP peer must send
    /// its whole head within `tcpHeadMillis`, and its token is checked as soon
    /// as the head is in (a wrong one is answered without reading the body).
    func serve(_ fd: Int32, needsToken: Bool) {
        let start = monotonicMillis()
        let headDeadline = start + (needsToken ? Self.tcpHeadMillis : Self.requestMillis)
        let deadline = start + Self.requestMillis
        var buf: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        var headChecked = false
        var response: AdminResponse
        while true {
            let now = monotonicMillis()
            let parsed = AdminRequest.parse(buf)
            if case .needMore = parsed, !headChecked, needsToken, let head = AdminRequest.parseHead(buf) {
                headChecked = true
                if !authorized(head) && !head.isDashboardPage { response = .error(401, "missing or wrong bearer token"); break }
            }
            switch parsed {
            case .needMore:
                let limit = headChecked || !needsToken ? deadline : headDeadline
                guard now < limit else { return }   // too slow: nothing to answer
                setSocketTimeouts(fd, millis: Int(min(5000, limit - now)))
                let r = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if r <= 0 { return }   // closed, or no byte within the time left
                buf += chunk[0..<r]
                continue
            case .error(let status, let message):
                response = .error(status, message)
            case .complete(let req):
                if needsToken && !authorized(req) && !req.isDashboardPage {
                    response = .error(401, "missing or wrong bearer token")
                } else if req.method == "GET" && req.path == "/v1/log" {
                    return streamLog(fd, req)
                } else {
                    response = handle(req)
                }
            }
            break
        }
        setSocketTimeouts(fd, millis: 5000)
        send(fd, response.serialized())
    }

    func send(_ fd: Int32, _ bytes: [UInt8]) { _ = sendAll(fd, bytes) }

    func authorized(_ req: AdminRequest) -> Bool {
        guard let token, let h = req.headers["authorization"], h.lowercased().hasPrefix("bearer ") else { return false }
        let given = Array(h.utf8.dropFirst(7))
        // Constant time in the token's length.
        var diff = given.count == token.count ? 0 : 1
        for i in 0..<token.count { diff |= Int(token[i] ^ (i < given.count ? given[i] : 0)) }
        return diff == 0
    }

    func handle(_ req: AdminRequest) -> AdminResponse {
        do {
            switch (req.method, req.path) {
            case ("GET", "/v1/stats"):
                return try .json(StatsBody(tenants: edge.tenantStats(req.query["tenant"]), cache: edge.cacheStatus()))
            case ("GET", "/"), ("GET", "/dashboard"):
                return AdminResponse(status: 200, contentType: "text/html; charset=utf-8", body: Array(dashboardPage.utf8))
            case ("GET", "/v1/live"):
                let since = Int64(req.query["since"] ?? "0")
                guard let since else { throw OperationError400("\"since\" must be wall-clock seconds") }
                let top = Int(req.query["top"] ?? "10")
                guard let top, (0...100).contains(top) else { throw OperationError400("\"top\" must be 0 to 100") }
                let tenant = req.query["tenant"]
                if let t = tenant, !edge.config.tenantNames.contains(t), !edge.stats.tenantNames.contains(t) {
                    return .error(404, "no tenant named \(t)")
                }
                return try .json(live.body(since: since, tenant: tenant, top: top), compact: true)
            case ("GET", "/v1/tenants"):
                return try .json(["tenants": edge.tenants()])
            case ("GET", "/metrics"), ("GET", "/v1/metrics"):
                return AdminResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: Array(edge.metricsText().utf8))
            case ("POST", "/v1/purge"):
                var o = try req.jsonObject()
                guard let id = o.removeValue(forKey: "id") else { return try .json(purge(o)) }
                // A fleet purge (edgectl purge --nodes): applied once, journaled for the peers.
                guard let id = id.string, FleetPurge.validID(id) else { throw OperationError400("\"id\" must be 1 to 64 of A-Z a-z 0-9 . _ : -") }
                if journal.contains(id) { return try .json(FleetPurgeResult(purged: 0, duplicate: true)) }
                let r = try purge(o)
                journal.record(FleetPurge(id: id, time: wallSeconds(), request: o))
                return try .json(FleetPurgeResult(purged: r.purged, duplicate: false))
            case ("GET", "/v1/purges"):
                guard let t = Int64(req.query["since"] ?? "0") else { throw OperationError400("\"since\" must be wall-clock seconds") }
                let body: JSON = ["now": .int(wallSeconds()), "purges": .array(journal.since(t).map(\.json))]
                return AdminResponse(status: 200, body: body.serialized() + [10])
            case ("POST", "/v1/explain"):
                let x = try ExplainRequest(req.jsonObject())
                return try .json(edge.explain(url: x.url, headers: x.headers, method: x.method, client: x.client))
            case ("POST", "/v1/reload"):
                do { return try .json(["reloaded": true, "message": .string(reload())] as JSON) }
                catch { return .error(422, "reload failed, still serving the previous configuration: \(error)") }
            case ("GET", "/v1/acme"):
                let body: JSON = ["tenants": .array(acme?.status() ?? [])]
                return AdminResponse(status: 200, body: body.serialized() + [10])
            case ("POST", "/v1/acme/renew"):
                let o = try req.jsonObject()
                guard let t = o["tenant"]?.string else { throw OperationError400("\"tenant\" (a string) is required") }
                guard let acme else { return .error(404, "no tenant uses ACME") }
                if let why = acme.renew(t) { return .error(why.hasPrefix("no ACME") ? 404 : 409, why) }
                return try .json(["renewing": .string(t)] as JSON)
            case (_, "/"), (_, "/dashboard"), (_, "/v1/live"), (_, "/v1/log"), (_, "/v1/stats"), (_, "/v1/tenants"), (_, "/metrics"), (_, "/v1/metrics"), (_, "/v1/purge"), (_, "/v1/explain"), (_, "/v1/reload"), (_, "/v1/purges"),
                 (_, "/v1/acme"), (_, "/v1/acme/renew"):
                return .error(405, "\(req.method) is not allowed on \(req.path)")
            default:
                return .error(404, "no such endpoint \(req.path) (see README: /, /v1/live, /v1/log, /v1/purge, /v1/purges, /v1/stats, /v1/tenants, /v1/explain, /v1/reload, /v1/acme, /v1/acme/renew, /metrics)")
            }
        } catch let e as OperationError {
            return .error(e.status, e.message)
        } catch let e as OperationError400 {
            return .error(400, e.message)
        } catch {
            return .error(500, "\(error)")
        }
    }

    /// Applies a purge body (PurgeRequest says which shapes there are).
    func purge(_ o: [String: JSON]) throws -> PurgeResult {
        let r = try PurgeRequest(o)
        switch r.scope {
        case .urls(let urls): return try edge.purge(urls: urls, soft: r.soft)
        case .prefix(let p): return try edge.purge(prefix: p, soft: r.soft)
        case .tags(let tags, let tenant): return try edge.purge(tags: tags, tenant: tenant, soft: r.soft)
        case .tenant(let t): return try edge.purge(tenant: t, soft: r.soft)
        }
    }
}

struct FleetPurgeResult: Encodable {
    var purged: Int
    /// The fleet purge with this id was applied here already.
    var duplicate: Bool
}

public struct AdminError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

struct AdminResponse {
    var status: Int
    var contentType = "application/json"
    var body: [UInt8]

    /// An Encodable answer: keys in snake_case, sorted; pretty unless `compact` (the live view's frequent polls).
    static func json<T: Encodable>(_ v: T, compact: Bool = false) throws -> AdminResponse {
        AdminResponse(status: 200, body: try JSON.encode(v, snakeCase: true).serialized(pretty: !compact) + [10])
    }

    static func error(_ status: Int, _ message: String) -> AdminResponse {
        AdminResponse(status: status, body: JSON.object(["error": .string(message)]).serialized() + [10])
    }

    /// The head of an answer whose body runs until the connection closes (the live tail).
    static func streamHead(contentType: String) -> [UInt8] {
        let b = IOBuffer(capacity: 256)
        HTTP1Serializer.appendStatusLine(200, to: b)
        b.append(string: "Content-Type: \(contentType)\r\nCache-Control: no-store\r\n")
        HTTP1Serializer.appendEndOfHead(close: true, http10: false, to: b)
        return Array(b.readView)
    }

    /// The whole answer on the wire (EdgeHTTP's HTTP/1.1 syntax; the connection closes after it).
    func serialized() -> [UInt8] {
        let b = IOBuffer(capacity: 256 + body.count)
        HTTP1Serializer.appendStatusLine(status, to: b)
        b.append("Content-Type: ")
        b.append(string: contentType)
        b.append("\r\n")
        HTTP1Serializer.appendContentLength(Int64(body.count), to: b)
        HTTP1Serializer.appendEndOfHead(close: true, http10: false, to: b)
        body.withUnsafeBytes { b.append($0) }
        return Array(b.readView)
    }
}

/// `GET /v1/stats`: per-tenant counters and the cache's tiers.
struct StatsBody: Encodable {
    var tenants: [TenantStats]
    var cache: CacheSummary
}
