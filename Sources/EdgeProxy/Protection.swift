// Protection on the request path: the PROXY protocol header that names a
// connection's client, address checks at accept (the server's access list,
// new connections per second, open connections per address), and the request
// filter's tenant access list and rate limits (EdgeProtect holds the policy).
//
// Where each check runs, and what it costs when nothing is configured:
// - accept: an empty access list and no connection rate are one branch each;
//   with the PROXY protocol on, these run once the header has named the client.
// - request filter (Phases.swift, phase 4): an empty tenant list is one branch,
//   a route with no limits one more; a limit is one hash and one stripe lock.
// Thread rules: see Worker.swift. The RateTable is the one structure shared
// across workers here (its own locks, RateLimit.swift).
import Glibc
import EdgeConfig
import EdgeHTTP
import EdgeIO
import EdgeProtect
import EdgeTLS

/// A tenant's rate limit, ready for the request path.
final class RuntimeRateLimit: Sendable {
    enum Part: Sendable {
        case client, tenant, route
        case header([UInt8])      // lowercase name
        case cookie([UInt8])
    }
    /// The limiter key's seed: the tenant and the limit's name, so buckets
    /// survive a reload that keeps them and two tenants' limits never share one.
    let id: UInt64
    let name: String
    let nameJSON: [UInt8]
    let spec: RateSpec
    let parts: [Part]
    let status: Int
    let dryRun: Bool
    /// "RateLimit-Policy: \"NAME\";q=Q;w=W\r\n" (draft-ietf-httpapi-ratelimit-headers).
    let policyLine: [UInt8]

    init(tenant: String, _ c: RateLimitConfig) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in tenant.utf8 + [0] + c.name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        id = h
        name = c.name
        nameJSON = jsonEscaped(Array(c.name.utf8))
        spec = c.spec
        parts = c.key.map {
            switch $0 {
            case .client: return .client
            case .tenant: return .tenant
            case .route: return .route
            case .header(let n): return .header(Array(n.utf8))
            case .cookie(let n): return .cookie(Array(n.utf8))
            }
        }
        status = c.status
        dryRun = c.dryRun
        policyLine = Array("RateLimit-Policy: \"\(c.name)\";q=\(c.spec.quota);w=\(c.spec.windowSeconds)\r\n".utf8)
    }
}

/// What the request filter did to an exchange (for the log).
enum ProtectionAction: UInt8 {
    case none
    /// Refused by the tenant's access list (403).
    case denied
    /// Over a rate limit: refused, or (dry run) only counted.
    case limited, dryRun

    var token: StaticString {
        switch self {
        case .none: return ""
        case .denied: return "deny"
        case .limited: return "limit"
        case .dryRun: return "limit-dry-run"
        }
    }
}

extension SocketAddress {
    /// The peer's address as EdgeProtect's value (IPv4 as IPv4, also when a
    /// dual-stack socket shows it IPv4-mapped).
    var ipAddress: IPAddress {
        withSockaddr { sa, _ in
            if sa.pointee.sa_family == sa_family_t(AF_INET) {
                let a = UnsafeRawPointer(sa).load(as: sockaddr_in.self).sin_addr.s_addr
                return IPAddress(v4: UInt32(bigEndian: a))
            }
            var a6 = UnsafeRawPointer(sa).load(as: sockaddr_in6.self).sin6_addr
            return withUnsafeBytes(of: &a6) { IPAddress(v6: $0) }
        }
    }
}

extension Worker {
    // MARK: Accept

    /// The server's checks on a new connection's client, before any TLS or
    /// HTTP work: the access list, new connections per second, and open
    /// connections per address (counted: released when the connection closes).
    /// False: the caller closes it.
    func admitClient(_ c: ClientConnection) -> Bool {
        if !server.access.isEmpty, server.access.verdict(c.addr) == .deny {
            workerCounters.add(WorkerSlot.refusedAccess, 1)
            return false
        }
        if !c.trusted, let spec = server.newConnectionsPerIP {
            var k = RateKey(limit: 0)   // (tenant limits' ids are hashes of names: never 0 in practice)
            k.add(c.addr.limitKey)
            if case .limited = rateTable.take(k.value, spec, now: monotonicMicros()) {
                workerCounters.add(WorkerSlot.refusedConnectionRate, 1)
                return false
            }
        }
        if !c.trusted && server.maxConnectionsPerIP > 0 {
            guard addressLimits.admit(c.peerIP, limit: server.maxConnectionsPerIP) else {
                workerCounters.add(WorkerSlot.refusedPerIP, 1)
                return false
            }
            c.countedByAddress = true
        }
        return true
    }

    @inline(__always) func isTrusted(_ a: IPAddress) -> Bool {
        !config.trusted.isEmpty && config.trusted.verdict(a) == .allow
    }

    /// A connection past its admission: TLS begins (the HTTPS listener's), and
    /// the whole request head must come within the header timeout.
    func beginClient(_ c: ClientConnection, secure: Bool) -> Bool {
        if secure {
            guard let server = config.tls, let t = TLSConnection(server: server, fd: c.fd) else { return false }
            c.tls = t
            c.stage = .handshaking
        } else {
            c.stage = .open
        }
        c.timeout = .idle
        c.deadline = now + server.headerTimeoutMillis
        c.idleSince = now
        return true
    }

    // MARK: PROXY protocol

    /// Reads the PROXY header of a connection in `.proxyHeader`: peeks, and
    /// takes exactly the header's bytes once all of it is there (what follows,
    /// a ClientHello or a request, stays in the socket). True once the client
    /// is named and admitted and the connection goes on as any other; false
    /// while waiting, or when it was closed (bad header, EOF, refused).
    func readProxyHeader(_ c: ClientConnection) -> Bool {
        if proxyScratch.isEmpty { proxyScratch = [UInt8](repeating: 0, count: ProxyHeader.v2Max) }
        let fd = c.fd
        let answer: ProxyHeader
        var got = 0
        (answer, got) = proxyScratch.withUnsafeMutableBytes { buf -> (ProxyHeader, Int) in
            let n = recv(fd, buf.baseAddress, buf.count, Int32(MSG_PEEK))
            if n == 0 { return (.invalid, 0) }
            if n < 0 { return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? (.needMore(1), -1) : (.invalid, 0) }
            return (ProxyHeader.parse(UnsafeRawBufferPointer(rebasing: buf[0..<n])), n)
        }
        switch answer {
        case .needMore:
            if got < 0 { c.readable = false; return false }   // nothing (more) yet
            if c.hangup { workerCounters.add(WorkerSlot.proxyHeaderInvalid, 1); closeClient(c); return false }
            c.readable = false
            return false
        case .invalid:
            workerCounters.add(WorkerSlot.proxyHeaderInvalid, 1)
            closeClient(c)
            return false
        case .done(let consumed, let source, _):
            let taken = proxyScratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, consumed, 0) }
            guard taken == consumed else { closeClient(c); return false }
            if let a = source {
                c.addr = a
                c.peerIP = a.text
                c.trusted = isTrusted(a)
            }
            guard admitClient(c), beginClient(c, secure: c.secureAfterHeader) else { closeClient(c); return false }
            c.readable = true   // the request (or ClientHello) may be in already
            return true
        }
    }

    // MARK: Request filter

    /// The client a request counts as: the connection's (or its PROXY header's)
    /// address, or for a trusted proxy the last X-Forwarded-For entry it added
    /// (nginx's real_ip without recursion), when that is an address.
    func clientAddress(_ c: ClientConnection, _ p: UnsafeRawBufferPointer) -> IPAddress {
        guard c.ex.peer.trusted else { return c.addr }
        var last: Range<Int>?
        for f in c.ex.head.fields where f.known == .xForwardedFor { last = f.value }
        guard let v = last else { return c.addr }
        var start = v.lowerBound
        if let comma = p[v].lastIndex(of: 44) { start = comma + 1 }
        var s = start, e = v.upperBound
        while s < e && (p[s] == 32 || p[s] == 9) { s += 1 }
        while e > s && (p[e - 1] == 32 || p[e - 1] == 9) { e -= 1 }
        return IPAddress(text: p[s..<e]) ?? c.addr
    }

    /// Phase 4's checks (see requestFilterPhase): the tenant's access list, then
    /// each of the route's rate limits in order; the first limit over refuses.
    func protect(_ c: ClientConnection, _ p: UnsafeRawBufferPointer, _ tenant: Tenant, _ route: Route) -> PhaseResult {
        let e = c.ex
        let a = clientAddress(c, p)
        if !tenant.access.isEmpty, tenant.access.verdict(a) == .deny {
            e.protection = .denied
            tenantCounters[tenant.index].add(TenantSlot.accessDenied, 1)
            refuse(c, 403)
            return .done
        }
        for l in route.rateLimits {
            var k = RateKey(limit: l.id)
            var applies = true
            for part in l.parts {
                switch part {
                case .client: k.add(a.limitKey)
                case .tenant: break   // the id already names the tenant
                case .route: route.prefix.withUnsafeBytes { k.add($0) }
                case .header(let name):
                    guard let v = fieldValue(p, e.head, name) else { applies = false; break }
                    k.add(UnsafeRawBufferPointer(rebasing: p[v]))
                case .cookie(let name):
                    guard let v = cookieValue(p, e.head, name) else { applies = false; break }
                    k.add(UnsafeRawBufferPointer(rebasing: p[v]))
                }
                if !applies { break }
            }
            guard applies else { continue }
            guard case .limited(let after) = rateTable.take(k.value, l.spec, now: e.startMicros) else { continue }
            e.limit = l
            limitCounters(tenant, l).add(l.dryRun ? LimitSlot.dryRun : LimitSlot.limited, 1)
            if l.dryRun { e.protection = .dryRun; continue }
            e.protection = .limited
            tenantCounters[tenant.index].add(TenantSlot.rateLimited, 1)
            respondLimited(c, l, retryAfterMicros: after)
            return .done
        }
        return .next
    }

    /// Over a limit: its status (429 by default) with Retry-After (whole
    /// seconds, rounded up) and the RateLimit-Policy and RateLimit fields.
    func respondLimited(_ c: ClientConnection, _ l: RuntimeRateLimit, retryAfterMicros: Int64) {
        let secs = max(1, (retryAfterMicros + 999_999) / 1_000_000)
        var extra: [UInt8] = Array("Retry-After: \(secs)\r\n".utf8)
        extra += l.policyLine
        extra += Array("RateLimit: \"\(l.name)\";r=0;t=\(secs)\r\n".utf8)
        if c.ex.head.framing != .none { c.keepAlive = false }
        respondError(c, l.status, extra: extra)
    }

    func limitCounters(_ t: Tenant, _ l: RuntimeRateLimit) -> CounterBlock {
        if let b = limitBlocks[l.id] { return b }
        let b = stats.limit(t.name + "/" + l.name, worker: index)
        limitBlocks[l.id] = b
        return b
    }
}

/// True when the field name at `p[range]` is `lower` (lowercase), case-insensitively.
@inline(__always) func nameIs(_ p: UnsafeRawBufferPointer, _ range: Range<Int>, _ lower: [UInt8]) -> Bool {
    guard range.count == lower.count else { return false }
    var j = range.lowerBound
    for b in lower { if asciiLower(p[j]) != b { return false }; j += 1 }
    return true
}

let cookieName: [UInt8] = Array("cookie".utf8)

/// The first field named `name` (lowercase), case-insensitively.
func fieldValue(_ p: UnsafeRawBufferPointer, _ head: RequestHead, _ name: [UInt8]) -> Range<Int>? {
    for f in head.fields where nameIs(p, f.name, name) { return f.value }
    return nil
}

/// The value of cookie `name` in the request's Cookie fields (RFC 6265 §5.4
/// pairs, `; `-separated; the first with that exact name).
func cookieValue(_ p: UnsafeRawBufferPointer, _ head: RequestHead, _ name: [UInt8]) -> Range<Int>? {
    for f in head.fields where nameIs(p, f.name, cookieName) {
        var i = f.valueStart
        while i < f.valueEnd {
            while i < f.valueEnd && (p[i] == 32 || p[i] == 59) { i += 1 }
            var end = i
            while end < f.valueEnd && p[end] != 59 { end += 1 }
            // name=value at i..<end
            if end - i > name.count, p[i + name.count] == 61 {
                var same = true
                for (j, b) in name.enumerated() where p[i + j] != b { same = false; break }
                if same { return (i + name.count + 1)..<end }
            }
            i = end
        }
    }
    return nil
}
