// `GET /v1/log`: the live tail of access events, one JSON line each, from the
// moment of the request until the client goes away (`edgectl log`).
//
// Threads: runs on the connection's own admin thread (AdminServer.acceptOne),
// never on a worker. It reads the workers' rings (LogTap) ten times a second;
// a reader slower than the traffic misses lines and is told so
// (`{"dropped":N}`), the workers never wait for it. A write that cannot go out
// within 5 s ends the stream.
import Glibc
import EdgeIO
import EdgeHTTP
import EdgeProxy

extension AdminServer {
    /// The filter a `/v1/log` query asks for, or the reason it is refused.
    func logFilter(_ q: [String: String]) -> Result<LogFilter, AdminResponseError> {
        var f = LogFilter()
        let allowed: Set<String> = ["tenant", "status", "cache", "host", "path_prefix"]
        if let bad = q.keys.sorted().first(where: { !allowed.contains($0) }) {
            return .failure(.init(400, "unknown parameter \"\(bad)\" (tenant, status, cache, host, path_prefix)"))
        }
        if let t = q["tenant"] {
            guard edge.config.tenantNames.contains(t) || t == "-" else { return .failure(.init(404, "no tenant named \(t)")) }
            f.tenant = t
        }
        if let s = q["status"], !f.setStatus(s) { return .failure(.init(400, "\"status\" must be a status (404) or a class (5xx)")) }
        if let c = q["cache"] {
            guard let o = CacheOutcome.allCases.first(where: { $0.name == c }) else {
                return .failure(.init(400, "\"cache\" must be one of \(CacheOutcome.allCases.map(\.name).joined(separator: ", "))"))
            }
            f.cache = o
        }
        f.host = q["host"]
        if let p = q["path_prefix"] {
            guard p.hasPrefix("/") else { return .failure(.init(400, "\"path_prefix\" must start with /")) }
            f.pathPrefix = p
        }
        return .success(f)
    }

    func streamLog(_ fd: Int32, _ req: AdminRequest) {
        let filter: LogFilter
        switch logFilter(req.query) {
        case .failure(let e): send(fd, AdminResponse.error(e.status, e.message).serialized()); return
        case .success(let f): filter = f
        }
        setSocketTimeouts(fd, millis: 5000)
        guard sendAll(fd, AdminResponse.streamHead(contentType: "application/x-ndjson")) else { return }
        var cursors = edge.tap.attach()
        defer { edge.tap.detach() }
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20)
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var scratch = [UInt8](repeating: 0, count: 512)
        var lastWrite = monotonicMillis()
        while true {
            pfd.revents = 0
            let n = poll(&pfd, 1, 100)
            if n > 0 {
                // The client sends nothing more: readable means it closed (or broke the protocol).
                let r = scratch.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if r <= 0 { return }
            }
            out.removeAll(keepingCapacity: true)
            let dropped = edge.tap.visit(&cursors) { line, status, outcome, _ in
                if filter.matches(line, status: status, outcome: outcome) {
                    out.append(contentsOf: line.bindMemory(to: UInt8.self))
                    out.append(10)
                }
            }
            if dropped > 0 { out += Array("{\"dropped\":\(dropped)}\n".utf8) }
            let now = monotonicMillis()
            // An empty line now and then: a reader that went away is noticed even when nothing matches.
            if out.isEmpty && now - lastWrite >= 5000 { out = [10] }
            if !out.isEmpty {
                guard sendAll(fd, out) else { return }
                lastWrite = now
            }
        }
    }

    /// Writes all of `bytes`; false when the peer is gone or took nothing for the socket's timeout.
    func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let w = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if w < 0 && errno == EINTR { continue }
            if w <= 0 { return false }
            off += w
        }
        return true
    }
}

struct AdminResponseError: Error {
    let status: Int
    let message: String
    init(_ status: Int, _ message: String) { self.status = status; self.message = message }
}
