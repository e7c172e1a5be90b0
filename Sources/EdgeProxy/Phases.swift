// The request path as one ordered list of phases over the exchange (in the
// spirit of pingora's ProxyHttp and Varnish's cnt_* states). Each phase either
// answers the request itself (`.done`: a refusal, a redirect, a hit) or hands
// it to the next (`.next`). What each does by default is written at it.
//
//   1. normalize      the target and the host, once
//   1b. loop          CDN-Loop: 508 when the request came back to this node
//   2. tenant         by host; the TLS name must agree; HTTPS redirect
//   2b. acme          an ACME http-01 challenge for this tenant's host (before the HTTPS redirect)
//   3. route          the longest prefix; what compression will need
//   4. requestFilter  the tenant's access list (403) and rate limits (429)
//   4b. routeAction   a route's own answer: respond or redirect (none by default)
//   5. body           framing and size limit; a cached POST waits for its body
//   5b. mirror        a copy of the request to a shadow group (none by default; Mirror.swift)
//   6. cacheLookup    a hit, a collapsed follower, only-if-cached, or on
//   7. upstream       the directory origin, or the origin exchange
//
// On the way back: the response head is rewritten in Forward.writeResponseHead
// (response filter), bodies pass Compression's coder (body filter), and
// finishExchange logs and counts (logging). Thread rules: see Worker.swift.
import EdgeHTTP
import EdgeIO
import EdgeTLS

enum PhaseResult { case next, done }

let acmeChallengePrefix = Array("/.well-known/acme-challenge/".utf8)

extension Worker {
    /// Runs a parsed request head (`headLength` bytes at the start of the input
    /// buffer) through the phases. The buffer moves past the head at once, so
    /// what it holds next is the body, or the next request; `p`, the head's
    /// bytes, stays valid while the phases run without waiting (nothing reads
    /// into the buffer meanwhile). An exchange that waits and runs on later (a
    /// parked follower, a cached POST waiting for its body) first keeps a copy
    /// of its head (keepHead): its request outlives the buffer.
    func startRequest(_ c: ClientConnection, headLength n: Int) {
        let ib = c.inBuf!
        beginExchange(c, headLength: n)
        let e = c.ex
        swap(&e.head, &c.head)   // the parsed head moves to the exchange (no copy)
        e.headLength = n
        let p = UnsafeRawBufferPointer(rebasing: ib.readView[0..<n])
        ib.consume(n)
        c.scan = HeadScan()
        c.awaitBytes = 0
        e.method = e.head.method
        if e.method == .other { e.methodText = Array(p[e.head.methodRange]) }
        c.keepAlive = e.head.keepAlive && !stopping
        c.requests += 1
        if server.maxRequestsPerConnection > 0 && c.requests >= server.maxRequestsPerConnection && c.h2Parent == nil { c.keepAlive = false }
        captureRequestFacts(c, p)
        if normalizePhase(c, p) == .next, loopPhase(c, p) == .next, tenantPhase(c) == .next, routePhase(c, p) == .next,
           requestFilterPhase(c, p) == .next, routeActionPhase(c, p) == .next, bodyPhase(c, p) == .next {
            mirrorPhase(c, p)
            continueRequest(c, p)
        }
        // Past the phases only the head's scalars are read (version, framing):
        // an exchange that kept no copy gives the field storage back for the next parse.
        if e.headBytes == nil { swap(&c.head.fields, &e.head.fields) }
    }

    /// Phases 6 and 7: after the first five, and where a woken follower and a
    /// cached POST whose body has arrived carry on (from their kept head).
    func continueRequest(_ c: ClientConnection, _ p: UnsafeRawBufferPointer) {
        guard cacheLookupPhase(c, p) == .next else { return }
        upstreamPhase(c, p)
    }

    /// Runs phases 6 and 7 of an exchange that waited, from its own copy of the head.
    func continueKeptRequest(_ c: ClientConnection) {
        continueRequest(c, c.ex.headBytes!.readView)
    }

    /// The exchange will wait and run on later: it keeps a copy of its head
    /// (`p`, the view the phases got), since the connection's buffer moves on.
    func keepHead(_ c: ClientConnection, _ p: UnsafeRawBufferPointer) {
        let e = c.ex
        guard e.headBytes == nil else { return }
        let hb = takeBuffer()
        hb.append(UnsafeRawBufferPointer(rebasing: p[0..<e.headLength]))
        e.headBytes = hb
    }

    /// 1. The target normalized once (EdgeHTTP.TargetNormalizer) and the host
    /// (EdgeHTTP.Authority): the forms every later phase uses. By default: 400 for
    /// a malformed target or host and for `*`, 405 for TRACE and CONNECT.
    func normalizePhase(_ c: ClientConnection, _ p: UnsafeRawBufferPointer) -> PhaseResult {
        let e = c.ex
        guard let (form, pathLength) = TargetNormalizer.normalize(p, e.head.targetRange, into: &e.target) else {
            e.target = Array(p[e.head.targetRange])
            refuse(c, 400)
            return .done
        }
        e.pathLength = pathLength
        if e.method == .trace || e.method == .connect { refuse(c, 405); return .done }
        if form == .asterisk { refuse(c, 400); return .done }
        var hostRange = 0..<0
        if case .absolute(let a, _) = form { hostRange = a }
        else if e.head.hostField >= 0 { hostRange = e.head.fields[e.head.hostField].value }
        guard Authority.normalize(p, hostRange, into: &e.host) else { refuse(c, 400); return .done }
        return .next
    }

    /// 1b. Loops (RFC 8586). Every request forwarded gets this node's entry,
    /// `CDN-Loop: FLEET; node=NODE` (Forward.swift). By default: 508 when an
    /// arriving request already carries this node's entry (it came back, the
    /// first repeat) or the fleet's token `fleet.max_hops` (8) times.
    func loopPhase(_ c: ClientConnection, _ p: UnsafeRawBufferPointer) -> PhaseResult {
        var count = 0
        for f in c.ex.head.fields where f.known == .cdnLoop {
            let r = CDNLoop.scan(p, f.value, fleet: config.fleetToken, node: config.nodeToken)
            count += r.count
            if r.mine || count >= server.fleet.maxHops {
                c.ex.originError = r.mine ? "loop: the request came back to this node" : "loop: too many hops in the fleet"
                refuse(c, 508)
                return .done
            }
        }
        return .next
    }

    /// 2. The tenant for the host (or the default tenant). By default: 421 when
    /// none serves it, 421 when the TLS handshake's name chose another tenant (no
    /// domain fronting), and for a tenant with `https_redirect` a plain-HTTP
    /// request gets 301 (GET/HEAD) or 308 to the same URL over HTTPS.
    func tenantPhase(_ c: ClientConnection) -> PhaseResult {
        let e = c.ex
        let tenant: Tenant
        if let t = lastHostTenant, e.host == lastHost {
            tenant = t
        } else {
            guard let t = config.tenant(forHost: e.host) else { refuse(c, 421); return .done }
            tenant = t
            // A copy (not e.host's storage, which the next exchange clears and reuses).
            lastHost.removeAll(keepingCapacity: true)
            lastHost.append(contentsOf: e.host)
            lastHostTenant = t
        }
        if let sni = c.ex.peer.sniTenant, sni != tenant.name { refuse(c, 421); return .done }
        e.tenant = tenant
        if acmePhase(c) == .done { return .done }
        if tenant.httpsRedirect && !c.ex.peer.https { redirectToHTTPS(c); return .done }
        return .next
    }

    /// 2b. ACME http-01 (RFC 8555 §8.3): while edged's ACME client has a
    /// challenge up, a plain-HTTP GET of /.well-known/acme-challenge/TOKEN for
    /// the host it was issued for is answered with the key authorization. It runs
    /// from the tenant phase, before the HTTPS redirect: a name still without a
    /// certificate cannot be validated over HTTPS. By default (no challenge up,
    /// another host, another token) the request goes on to the routes.
    @inline(__always) func acmePhase(_ c: ClientConnection) -> PhaseResult {
        guard ACMEChallenges.shared.httpPending else { return .next }
        return acmeAnswer(c)
    }

    func acmeAnswer(_ c: ClientConnection) -> PhaseResult {
        let e = c.ex
        let prefix = acmeChallengePrefix
        guard !e.peer.https, e.method == .get || e.method == .head, e.pathLength > prefix.count else { return .next }
        let path = e.target[0..<e.pathLength]
        guard path.starts(with: prefix) else { return .next }
        let token = String(decoding: path[prefix.count...], as: UTF8.self)
        guard let answer = ACMEChallenges.shared.httpAnswer(token: token, host: String(decoding: e.host, as: UTF8.self)) else { return .next }
        refuseUnread(c, 200, body: answer, contentType: Array("application/octet-stream".utf8))
        return .done
    }

    /// 3. The route: the longest prefix of the normalized path. By default: 404
    /// when none matches. A WebSocket upgrade to an origin group is let through
    /// (403 on a route with `"websocket": false`); on a directory route it is
    /// an ordinary GET. On compressing routes the Accept-Encoding and Range
    /// the coder will need are read here.
    func routePhase(_ c: ClientConnection, _ p: UnsafeRawBufferPointer) -> PhaseResult {
        let e = c.ex
        let route: Route? = e.target.withUnsafeBufferPointer { t in
            e.tenant!.route(for: UnsafeBufferPointer(rebasing: t[0..<e.pathLength]))
        }
        guard let route else { refuse(c, 404); return .done }
        e.route = route
        e.group = route.group
        if let sp = route.split { pickSide(c, p, sp) }
        // (An upgrade's Connection names "upgrade", so connectionNamesFields is set:
        // other requests skip the check, and the copy of the head it takes.)
        if case .http = route.group.kind, e.head.connectionNamesFields, WebSocketHandshake.isRequest(p, e.head) {
            guard route.websocket else { refuse(c, 403); return .done }
            e.upgrade = true
        }
        if route.compress != nil {
            for f in e.head.fields {
                if f.known == .acceptEncoding {
                    let v = String(decoding: p[f.valueStart..<f.valueEnd], as: UTF8.self)
                    e.acceptEncoding = e.acceptEncoding.map { $0 + "," + v } ?? v
                } else if f.known == .range {
                    e.rangeRequested = true
                }
            }
        }
        return .next
    }

    /// A split route's side for this request: the one its force header
    /// names; else by weight, drawn from the client's address or cookie when
    /// sticky (the same client, the same side, while the weights stay), at
    /// random otherwise. Sides after the first bypass the cache.
    func pickSide(_ c: ClientConnection, _ p: UnsafeRawBufferPointer, _ sp: Route.Split) {
        let e = c.ex
        var side = -1
        if let name = sp.forceHeader, let v = fieldValue(p, e.head, name) {
            side = sp.names.firstIndex { $0.elementsEqual(p[v]) } ?? -1
        }
        if side < 0 {
            var draw: UInt64?
            switch sp.sticky {
            case .none: break
            case .client:
                let v = clientAddress(c, p).value
                draw = mix64(UInt64(truncatingIfNeeded: v) ^ mix64(UInt64(truncatingIfNeeded: v >> 64)))
            case .cookie(let name):
                draw = cookieValue(p, e.head, name).map { mix64(fnv1a(p[$0])) }
                if draw == nil && sp.setCookie {
                    // A new client: a value of its own, set on the response; its
                    // next requests draw from it and land on the same side.
                    let b = takeBuffer()
                    b.append("Set-Cookie: ")
                    b.append(name)
                    b.append(byte: 61)
                    let at = b.readableBytes
                    RequestID.append(requestIDs.next(), requestIDs.next() | 1, to: b)   // 32 random hex digits
                    draw = mix64(fnv1a(UnsafeRawBufferPointer(rebasing: b.readView[at...]).bindMemory(to: UInt8.self)))
                    b.append("; Path=/; HttpOnly; SameSite=Lax\r\n")
                    e.stickyCookie = Array(b.readView)
                    giveBuffer(b)
                }
            }
            splitDraws &+= 1
            side = sp.side(draw ?? mix64(splitDraws &+ UInt64(bitPattern: now) &* 0x9e37_79b9))
        }
        e.splitSide = side
        e.group = sp.groups[side]
    }

    /// 4. Request filter: checks on a routed request before anything is read or
    /// fetched (Protection.swift). By default none: a tenant without an access
    /// list and a route without rate limits let every request through. The
    /// tenant's `access` list refuses addresses with 403; the route's rate
    /// limits, in order, answer the first one over with 429 (or its status),
    /// Retry-After and the RateLimit fields; a dry-run limit only counts and logs.
    @inline(__always) func requestFilterPhase(_ c: ClientConnection, _ p: UnsafeRawBufferPointer) -> PhaseResult {
        let t = c.ex.tenant!, r = c.ex.route!
        if t.access.isEmpty && r.rateLimits.isEmpty && t.rules.isEmpty && r.signatures == nil { return .next }
        return protect(c, p, t, r)
    }

    /// 4b. A route edged answers itself, after its protections applied
    /// (unlike nginx's `return`, which runs before `deny`): a fixed
    /// response, or a redirect whose Location fills in $scheme $host $path
    /// $query (and, with a pattern that matched the path, $0-$9). By default
    /// none: the request goes on to its origin.
    @inline(__always) func routeActionPhase(_ c: ClientConnection, _ p: UnsafeRawBufferPointer) -> PhaseResult {
        guard let action = c.ex.route!.action else { return .next }
        switch action {
        case .respond(let status, let body, let type):
            refuseUnread(c, status, body: body, contentType: type)
        case .redirect(let status, let template, let pattern, let orNotFound):
            let location = withRuleInput(c, p, c.addr) { i -> [UInt8]? in
                var groups: [Range<Int>?] = []
                if let re = pattern {
                    guard let m = re.match(i.path) else { return nil }
                    groups = m
                }
                return template.expand(https: i.tls, host: i.host, path: i.path, query: i.query, groups: groups)
            }
            if let location {
                refuseUnread(c, status, extra: Array("Location: ".utf8) + location + [13, 10], body: [])
            } else if orNotFound {
                refuseUnread(c, 404)
            } else {
                return .next   // not the pattern's: on to the route's origin
            }
        }
        return .done
    }

    /// 5. The request body's framing. By default: 413 past the tenant's
    /// `max_body` (a chunked body is counted as it streams). On a route that
    /// caches POST, a POST small enough to key by its body waits here until all
    /// of it has arrived.
    func bodyPhase(_ c: ClientConnection, _ p: UnsafeRawBufferPointer) -> PhaseResult {
        let e = c.ex
        switch e.head.framing {
        case .none, .untilClose: e.bodyState = .none
        case .length(let len):
            if len > e.tenant!.limits.maxBodyBytes { refuse(c, 413); return .done }
            e.bodyState = .unread(.length(len))
        case .chunked:
            e.bodyState = .unread(.chunked(ChunkedDecoder()))
        }
        if let rc = e.route!.cache, rc.cachePost, e.method == .post, !e.head.expectContinue,
           case .length(let len) = e.head.framing, len > 0, len <= Int64(rc.bodyKeyLimit) {
            e.bodyKeyed = true
            if c.inBuf!.readableBytes < Int(len) {
                // The rest of phases 6 and 7 run when it has (Client.swift, .awaitBody).
                c.awaitBytes = Int(len)
                keepHead(c, p)
                c.phase = .awaitBody
                return .done
            }
        }
        return .next
    }

    /// 6. Cache lookup on the client's target (before any prefix is stripped),
    /// on routes that cache. By default (Cache.swift): a fresh hit is served, a
    /// stale one under stale-while-revalidate too (its refresh leaves in the
    /// next phase), a miss may wait behind another request for the same key,
    /// only-if-cached without an entry is a 504; anything else goes on. A
    /// WebSocket upgrade is never looked up (nor stored, nor collapsed).
    func cacheLookupPhase(_ c: ClientConnection, _ p: UnsafeRawBufferPointer) -> PhaseResult {
        guard let rc = c.ex.route!.cache, !c.ex.upgrade, c.ex.bodyDone || (c.ex.method != .get && c.ex.method != .head) else { return .next }
        return cacheLookup(c, rc, tenant: c.ex.tenant!, p: p) ? .done : .next
    }

    /// 7. Upstream: the route's prefix is stripped if it says so, then the
    /// directory origin serves a file (GET/HEAD only, else 405), or the request
    /// head is rewritten (Forward.swift) and sent to a server of the origin group
    /// (Origin.swift: pooled connections, balancing, failover), with 100 Continue
    /// and the body's idle and rate timers when a body follows. A background
    /// refresh (stale-while-revalidate) is detached so this connection goes on.
    func upstreamPhase(_ c: ClientConnection, _ p: UnsafeRawBufferPointer) {
        let route = c.ex.route!
        let b = c.inBuf!
        let group = c.ex.group!
        if group.balance.policy == .hash { c.ex.balanceKey = balanceKey(c, p, group) }
        if route.stripPrefix { stripPrefix(c, route) }
        if let rw = route.rewrite { rewritePath(c, rw) }
        switch group.kind {
        case .directory(let root):
            if c.ex.method != .get && c.ex.method != .head { return refuse(c, 405) }
            if !c.ex.bodyDone { c.keepAlive = false; c.ex.bodyState = .none }
            serveFile(c, root: root, p: p)
        case .http(let ids):
            buildForwardHead(c, p: p, route: route)
            if c.ex.cache.background {
                // stale-while-revalidate: the client has its answer; the refresh goes
                // on detached and this connection is free for its next request.
                let refresh = detachRefresh(from: c)
                finishExchange(c)
                connectOrigin(refresh, ids: ids)
                return
            }
            c.phase = .proxy
            if c.ex.head.expectContinue && !c.ex.bodyDone && b.isEmpty {
                sendContinue(c)
            }
            if !c.ex.bodyDone {
                c.timeout = .body
                c.deadline = now + server.bodyIdleTimeoutMillis
                if server.bodyMinRate > 0 { c.rateDeadline = now + server.bodyRateGraceMillis }
            }
            connectOrigin(c, ids: ids)
        }
    }
}
