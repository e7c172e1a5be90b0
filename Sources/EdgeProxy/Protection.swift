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
    /// "tenant/limit".
    let statsName: String

    init(tenant: String, _ c: RateLimitConfig) {
        statsName = tenant + "/" + c.name
        id = fnv1a(tenant.utf8 + [0] + c.name.utf8)
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
    /// A rule denied, redirected or allowed it; a rule in log mode matched.
    case ruleDenied, redirected, allowed, ruleLog
    /// An attack signature matched: refused, or (log mode) only counted.
    case signature, signatureLog

    var token: StaticString {
        switch self {
        case .none: return ""
        case .denied: return "deny"
        case .limited: return "limit"
        case .dryRun: return "limit-dry-run"
        case .ruleDenied: return "deny"
        case .redirected: return "redirect"
        case .allowed: return "allow"
        case .ruleLog: return "log"
        case .signature: return "signature"
        case .signatureLog: return "signature-log"
        }
    }
}

/// A tenant's rule, ready for the request path: what its action does, its
/// counters' name, and its id and tag as log text.
final class RuntimeRule: Sendable {
    enum Kind: Sendable {
        case deny(status: Int, body: [UInt8])
        case allow
        case redirect(status: Int, location: LocationTemplate)
        case headers(Edits)
        case limit(RuntimeRateLimit)
        case tag
    }
    /// Unique across tenants and reloads that keep the rule (its counters' key).
    let id: UInt64
    let ruleID: String
    let idJSON: [UInt8]
    let tagJSON: [UInt8]?
    let logOnly: Bool
    let isFinal: Bool
    let kind: Kind
    /// "tenant/rule-id".
    let statsName: String

    init(tenant: String, _ r: Rule, limits: [RuntimeRateLimit]) {
        statsName = tenant + "/" + r.id
        id = fnv1a(statsName.utf8)
        ruleID = r.id
        idJSON = jsonEscaped(Array(r.id.utf8))
        tagJSON = r.tag.map { jsonEscaped(Array($0.utf8)) }
        logOnly = r.logOnly
        isFinal = r.isFinal
        switch r.action {
        case .deny(let status, let body): kind = .deny(status: status, body: Array(body.utf8))
        case .allow: kind = .allow
        case .redirect(let status, let loc): kind = .redirect(status: status, location: loc)
        case .headers(let set, let remove):
            var e = HeaderEdits()
            e.add = set.map { ($0.name, $0.value) }
            // A set field replaces the client's.
            e.remove = remove + set.map { $0.name.lowercased() }
            kind = .headers(Edits(e))
        case .limit(let name): kind = .limit(limits.first { $0.name == name }!)
        case .tag: kind = .tag
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

    /// Phase 4's checks (see requestFilterPhase), in this order: the tenant's
    /// access list; its rules (the first final action ends them: deny,
    /// redirect, allow); the route's attack signatures (not after an allow);
    /// the route's rate limits, in order (the first limit over refuses).
    func protect(_ c: ClientConnection, _ p: UnsafeRawBufferPointer, _ tenant: Tenant, _ route: Route) -> PhaseResult {
        let e = c.ex
        let a = clientAddress(c, p)
        if !tenant.access.isEmpty, tenant.access.verdict(a) == .deny {
            e.protection = .denied
            tenantCounters[tenant.index].add(TenantSlot.accessDenied, 1)
            refuse(c, 403)
            return .done
        }
        if !tenant.rules.isEmpty || route.signatures != nil {
            switch applyRules(c, p, tenant, route, a) {
            case .done: return .done
            case .next: break
            }
        }
        for l in route.rateLimits {
            if applyLimit(c, p, tenant, route, l, a) == .done { return .done }
        }
        return .next
    }

    /// The request as the rules see it, for `body`.
    @inline(__always) func withRuleInput<R>(_ c: ClientConnection, _ p: UnsafeRawBufferPointer, _ a: IPAddress, _ body: (RuleInput) -> R) -> R {
        let e = c.ex
        return e.target.withUnsafeBytes { t in
            e.host.withUnsafeBytes { h in
                e.peer.sni.withUnsafeBytes { sni in
                    let pathEnd = min(e.pathLength, t.count)
                    let query = pathEnd < t.count ? UnsafeRawBufferPointer(rebasing: t[(pathEnd + 1)...]) : UnsafeRawBufferPointer(rebasing: t[pathEnd...])
                    let input = RuleInput(bytes: p, fields: e.head.fields, method: UnsafeRawBufferPointer(rebasing: p[e.head.methodRange]), host: h,
                                          path: UnsafeRawBufferPointer(rebasing: t[..<pathEnd]), query: query, client: a, tls: e.peer.https, sni: sni)
                    return body(input)
                }
            }
        }
    }

    /// The tenant's rules, then the route's signatures.
    func applyRules(_ c: ClientConnection, _ p: UnsafeRawBufferPointer, _ tenant: Tenant, _ route: Route, _ a: IPAddress) -> PhaseResult {
        let e = c.ex
        enum Outcome { case next, allowed, deny(RuntimeRule), redirect(RuntimeRule) }
        // Matching reads the request in place; the actions that answer run after it.
        var limits: [(RuntimeRule, RuntimeRateLimit)] = []
        var sigHit: SignatureHit?
        let outcome: Outcome = withRuleInput(c, p, a) { input in
            var result = Outcome.next
            _ = tenant.ruleSet.evaluate(input) { m in
                let r = tenant.rules[m]
                ruleCounters(r).add(r.logOnly ? RuleSlot.logged : RuleSlot.matched, 1)
                if let t = r.tagJSON {
                    if !e.tags.isEmpty { e.tags.append(44) }
                    e.tags += t
                }
                if r.logOnly {
                    if e.rule == nil { e.rule = r; e.protection = .ruleLog }
                    return
                }
                switch r.kind {
                case .deny: result = .deny(r)
                case .redirect: result = .redirect(r)
                case .allow: e.rule = r; e.protection = .allowed; result = .allowed
                case .headers(let ed): e.ruleEdits.append(ed)
                case .limit(let l): limits.append((r, l))
                case .tag: break
                }
            }
            if case .allowed = result { return result }
            if case .next = result, let sc = route.signatures {
                sigHit = Signatures.check(input, sc, fields: route.signatureFields, scratch: &signatureScratch)
            }
            return result
        }
        // Limits the rules applied come first (they matched before any final action).
        for (r, l) in limits where applyLimit(c, p, tenant, route, l, a, rule: r) == .done { return .done }
        switch outcome {
        case .deny(let r):
            e.rule = r
            e.protection = .ruleDenied
            tenantCounters[tenant.index].add(TenantSlot.ruleDenied, 1)
            if case .deny(let status, let body) = r.kind { refuseUnread(c, status, body: body.isEmpty ? nil : body) }
            return .done
        case .redirect(let r):
            e.rule = r
            e.protection = .redirected
            guard case .redirect(let status, let template) = r.kind else { return .done }
            let location = withRuleInput(c, p, a) { template.expand(https: $0.tls, host: $0.host, path: $0.path, query: $0.query) }
            refuseUnread(c, status, extra: Array("Location: ".utf8) + location + [13, 10])
            return .done
        case .allowed:
            return .next
        case .next:
            break
        }
        if let hit = sigHit, let sc = route.signatures {
            e.signature = hit.category
            signatureCounters(tenant, hit.category).add(sc.logOnly ? RuleSlot.logged : RuleSlot.matched, 1)
            if sc.logOnly {
                if e.protection == .none { e.protection = .signatureLog }
                return .next
            }
            e.protection = .signature
            tenantCounters[tenant.index].add(TenantSlot.ruleDenied, 1)
            refuseUnread(c, sc.status)
            return .done
        }
        return .next
    }

    /// One rate limit: its key from the request, one take from the shared table.
    /// `rule`: the rule that applied it (nil: the route's own limit), for the log.
    func applyLimit(_ c: ClientConnection, _ p: UnsafeRawBufferPointer, _ tenant: Tenant, _ route: Route, _ l: RuntimeRateLimit, _ a: IPAddress,
                    rule: RuntimeRule? = nil) -> PhaseResult {
        let e = c.ex
        guard let key = limitKey(p, e.head, route.prefix, l, a) else { return .next }
        guard case .limited(let after) = rateTable.take(key, l.spec, now: e.startMicros) else { return .next }
        e.limit = l
        limitCounters(tenant, l).add(l.dryRun ? LimitSlot.dryRun : LimitSlot.limited, 1)
        stats.noteLimited(l.statsName, key: describeLimitKey(p, e.head, route.prefix, l, a))
        if l.dryRun { e.protection = .dryRun; return .next }
        e.protection = .limited
        e.rule = rule   // (a rule in log mode may have matched first; the limit decided)
        tenantCounters[tenant.index].add(TenantSlot.rateLimited, 1)
        respondLimited(c, l, retryAfterMicros: after)
        return .done
    }

    /// Over a limit: its status (429 by default) with Retry-After (whole
    /// seconds, rounded up) and the RateLimit-Policy and RateLimit fields.
    func respondLimited(_ c: ClientConnection, _ l: RuntimeRateLimit, retryAfterMicros: Int64) {
        let secs = max(1, (retryAfterMicros + 999_999) / 1_000_000)
        var extra: [UInt8] = Array("Retry-After: \(secs)\r\n".utf8)
        extra += l.policyLine
        extra += Array("RateLimit: \"\(l.name)\";r=0;t=\(secs)\r\n".utf8)
        refuseUnread(c, l.status, extra: extra)
    }

    func limitCounters(_ t: Tenant, _ l: RuntimeRateLimit) -> CounterBlock {
        if let b = limitBlocks[l.id] { return b }
        let b = stats.limit(l.statsName, worker: index)
        limitBlocks[l.id] = b
        return b
    }

    func ruleCounters(_ r: RuntimeRule) -> CounterBlock {
        if let b = ruleBlocks[r.id] { return b }
        let b = stats.rule(r.statsName, worker: index)
        ruleBlocks[r.id] = b
        return b
    }

    func signatureCounters(_ t: Tenant, _ k: SignatureCategory) -> CounterBlock {
        let slot = t.index * SignatureCategory.allCases.count + k.rawValue
        if let b = signatureBlocks[slot] { return b }
        let b = stats.rule(t.name + "/signature:" + k.name, worker: index)
        signatureBlocks[slot] = b
        return b
    }

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

/// The limiter key of `l` for this request (nil: a part it is keyed on is absent).
func limitKey(_ p: UnsafeRawBufferPointer, _ head: RequestHead, _ routePrefix: [UInt8], _ l: RuntimeRateLimit, _ a: IPAddress) -> UInt64? {
    var k = RateKey(limit: l.id)
    for part in l.parts {
        switch part {
        case .client: k.add(a.limitKey)
        case .tenant: break   // the id already names the tenant
        case .route: routePrefix.withUnsafeBytes { k.add($0) }
        case .header(let name):
            guard let v = fieldValue(p, head, name) else { return nil }
            k.add(UnsafeRawBufferPointer(rebasing: p[v]))
        case .cookie(let name):
            guard let v = cookieValue(p, head, name) else { return nil }
            k.add(UnsafeRawBufferPointer(rebasing: p[v]))
        }
    }
    return k.value
}

/// A readable form of a limited request's key, for `edgectl stats` (the
/// table itself keeps only hashes). On the refusing path only.
func describeLimitKey(_ p: UnsafeRawBufferPointer, _ head: RequestHead, _ routePrefix: [UInt8], _ l: RuntimeRateLimit, _ a: IPAddress) -> String {
    var parts: [String] = []
    for part in l.parts {
        switch part {
        case .client: parts.append(String(decoding: a.text, as: UTF8.self) + (a.isV4 ? "" : " (/64)"))
        case .tenant: parts.append("tenant")
        case .route: parts.append("route " + String(decoding: routePrefix, as: UTF8.self))
        case .header(let name):
            let v = fieldValue(p, head, name).map { String(decoding: p[$0].prefix(64), as: UTF8.self) } ?? ""
            parts.append(String(decoding: name, as: UTF8.self) + "=" + v)
        case .cookie(let name):
            let v = cookieValue(p, head, name).map { String(decoding: p[$0].prefix(64), as: UTF8.self) } ?? ""
            parts.append("cookie " + String(decoding: name, as: UTF8.self) + "=" + v)
        }
    }
    return parts.joined(separator: " ")
}
