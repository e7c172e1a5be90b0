// `edgectl explain --client IP`: what the request filter would do with a
// request, without doing it: the tenant's access list, each rule that would
// match and its action, the attack signatures, and each rate limit with its
// key and whether that key is over now (read from the shared table, nothing
// counted). The same functions the request path calls (RuleSet.evaluate,
// Signatures.check, limitKey), over a request head built from the URL and
// headers and parsed by the real parser. Admin thread; reads shared state only.
import EdgeHTTP
import EdgeIO
import EdgeProtect

public struct ProtectionExplain: Encodable, Sendable {
    public struct RuleMatch: Encodable, Sendable {
        public var id: String
        public var action: String
        /// "block", or "log" (counted and logged only).
        public var mode: String
    }
    public struct LimitState: Encodable, Sendable {
        public var limit: String
        /// The rule that applies it (nil: the route's own).
        public var rule: String?
        /// The key's readable form (nil: a part it is keyed on is absent, so it does not apply).
        public var key: String?
        /// This key is over the limit now (the next request would be refused, or counted in a dry run).
        public var over: Bool
        public var dryRun: Bool
    }
    public var client: String
    /// "allow" or "deny" (the tenant's list; "allow" when it has none).
    public var accessList: String
    public var rules: [RuleMatch] = []
    /// The category that would match, and whether the route blocks or logs it (nil: none matches, or off).
    public var signature: String?
    public var signatureMode: String?
    public var limits: [LimitState] = []
    /// What would happen, in words: "forwarded", "403 (access list)", "404 (rule no-admin)", …
    public var outcome: String
}

extension EdgeServer {
    func explainProtection(_ u: ResolvedURL, headers: [(String, String)], method: String, client: String) throws -> ProtectionExplain {
        guard let a = IPAddress(text: Array(client.utf8)) else { throw OperationError(400, "client \"\(client)\" is not an IPv4 or IPv6 address") }
        let tenant = u.tenant
        var x = ProtectionExplain(client: client, accessList: "allow", outcome: "forwarded")
        if !tenant.access.isEmpty, tenant.access.verdict(a) == .deny {
            x.accessList = "deny"
            x.outcome = "403 (the tenant's access list)"
            return x
        }
        guard let route = u.route else { x.outcome = "404 (no route)"; return x }
        // The request as a client would send it, parsed by the request parser.
        let (bytes, head, parsed) = HeadParser.synthesize(method: method, target: u.target, host: u.host, fields: headers, limits: config.server.head)
        guard case .complete = parsed else { throw OperationError(400, "these headers do not make a valid request (\(parsed))") }
        let target = Array(u.target.utf8), host = Array(u.host.utf8), sni = u.https ? host : []
        let pathEnd = target.firstIndex(of: 63) ?? target.count
        var final: Int?
        var matched: [Int] = []
        var sig: SignatureHit?
        var scratch: [UInt8] = []
        var limits: [(RuntimeRateLimit, RuntimeRule?)] = []
        bytes.withUnsafeBytes { p in target.withUnsafeBytes { t in host.withUnsafeBytes { h in sni.withUnsafeBytes { s in
            let query = pathEnd < t.count ? UnsafeRawBufferPointer(rebasing: t[(pathEnd + 1)...]) : UnsafeRawBufferPointer(rebasing: t[pathEnd...])
            let input = RuleInput(bytes: p, fields: head.fields, method: UnsafeRawBufferPointer(rebasing: p[head.methodRange]), host: h,
                                  path: UnsafeRawBufferPointer(rebasing: t[..<pathEnd]), query: query, client: a, tls: u.https, sni: s)
            final = tenant.ruleSet.evaluate(input) { matched.append($0) }
            // Signatures run unless a final rule (deny, redirect, allow) ended the rules.
            if final == nil, let sc = route.signatures {
                sig = Signatures.check(input, sc, fields: route.signatureFields, scratch: &scratch)
            }
            for m in matched where !tenant.rules[m].logOnly {
                if case .limit(let l) = tenant.rules[m].kind { limits.append((l, tenant.rules[m])) }
            }
            for l in route.rateLimits { limits.append((l, nil)) }
            let now = monotonicMicros()
            for (l, r) in limits {
                let key = limitKey(p, head, route.prefix, l, a)
                var over = false
                if let k = key, case .limited = rateTable.peek(k, l.spec, now: now) { over = true }
                x.limits.append(.init(limit: l.name, rule: r?.ruleID, key: key.map { _ in describeLimitKey(p, head, route.prefix, l, a) },
                                      over: over, dryRun: l.dryRun))
            }
        } } } }
        for m in matched {
            let r = tenant.rules[m]
            x.rules.append(.init(id: r.ruleID, action: r.kind.name, mode: r.logOnly ? "log" : "block"))
        }
        if let hit = sig, let sc = route.signatures {
            x.signature = hit.category.name
            x.signatureMode = sc.logOnly ? "log" : "block"
        }
        // The outcome, in the order the request filter decides (Protection.swift).
        for (i, (l, r)) in limits.enumerated() where r != nil && x.limits[i].over && !l.dryRun {
            x.outcome = "\(l.status) (limit \(l.name), applied by rule \(r!.ruleID))"
            return x
        }
        if let f = final {
            let r = tenant.rules[f]
            switch r.kind {
            case .deny(let status, _): x.outcome = "\(status) (rule \(r.ruleID))"; return x
            case .redirect(let status, _): x.outcome = "\(status) redirect (rule \(r.ruleID))"; return x
            case .allow: x.outcome = "allowed by rule \(r.ruleID), then the route's limits"
            default: break
            }
        }
        if let s = x.signature, x.signatureMode == "block", let sc = route.signatures { x.outcome = "\(sc.status) (signature \(s))"; return x }
        if let i = limits.indices.first(where: { limits[$0].1 == nil && x.limits[$0].over && !limits[$0].0.dryRun }) {
            x.outcome = "\(limits[i].0.status) (limit \(limits[i].0.name))"
        }
        return x
    }
}

extension RuntimeRule.Kind {
    var name: String {
        switch self {
        case .deny(let status, _): return "deny \(status)"
        case .allow: return "allow"
        case .redirect(let status, _): return "redirect \(status)"
        case .headers: return "headers"
        case .limit(let l): return "limit \(l.name)"
        case .tag: return "tag"
        }
    }
}
