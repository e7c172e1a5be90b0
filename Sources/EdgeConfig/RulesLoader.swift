// A tenant's request rules and attack-signature settings, from its file:
//
//   "rules": [RULE, ...]   or   "rules": {"mode": "log", "rules": [RULE, ...]}
//   RULE: {"id": "block-admin", "match": MATCH, "action": "deny", "status": 403, "body": "...",
//          "tag": "...", "mode": "log"}
//   MATCH: {"method": "POST" | [...], "host": TEXT, "path": TEXT, "sni": TEXT,
//           "query": {"name": N, "value": TEXT} | [...], "header": {"name": N, "value": TEXT} | [...],
//           "client": "10.0.0.0/8" | [...], "tls": true, "all": [MATCH...], "any": [MATCH...], "not": MATCH}
//          (several keys in one object: all of them must match)
//   TEXT: "exact text" | {"exact" | "prefix" | "suffix" | "contains" | "glob" | "regex": "...", "case_insensitive": true}
//   actions: deny (status, body), allow, redirect (status, location with $scheme $host $path $query),
//            headers (set {NAME: VALUE}, remove [NAME]), limit (limit: a rate_limits name), tag (tag)
//   "signatures": true | {"categories": [...], "fields": [...], "mode": "log", "status": 403}
#if canImport(EdgeJSON)   // (the config and admin fuzzers compile these sources as one module: tools/fuzz/run.sh)
import EdgeJSON
#endif
#if canImport(EdgeHTTP)   // (the config fuzzer compiles these modules as one: tools/fuzz/run.sh)
import EdgeHTTP
import EdgeProtect
#endif

/// Fields a rule may not set or remove: edge writes them itself from the
/// request's framing and target (Forward.swift).
let ruleReservedFields: Set<String> = ["host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer",
                                       "keep-alive", "proxy-connection", "expect"]

func loadRules(_ root: Node, limits: [RateLimitConfig]) throws -> RuleSet {
    guard let v = root.dict["rules"] else { return RuleSet() }
    var setLogOnly = false
    var list: [Node]
    if v.array != nil {
        list = try root.objects("rules") ?? []
    } else {
        guard let o = try root.object("rules") else { return RuleSet() }
        try o.allowOnly(["mode", "rules"])
        setLogOnly = try loadMode(o)
        list = try o.objects("rules") ?? []
    }
    var rules: [Rule] = []
    var ids: Set<String> = []
    for n in list {
        try n.allowOnly(["id", "match", "action", "status", "body", "location", "set", "remove", "limit", "tag", "mode"])
        let id = try n.requiredString("id")
        guard id.utf8.allSatisfy({ isTokenChar($0) }) else { throw n.fail("id", "a rule's id is a token (letters, digits, -_.)") }
        guard ids.insert(id).inserted else { throw n.fail("id", "\"\(id)\" names two rules") }
        guard let m = try n.object("match") else { throw n.fail("match", "is required (an object of conditions; {} matches every request)") }
        let cond = try loadCondition(m)
        let actionName = try n.requiredString("action")
        let allowed: [String: Set<String>] = [
            "deny": ["status", "body"], "allow": [], "redirect": ["status", "location"], "headers": ["set", "remove"],
            "limit": ["limit"], "tag": [],
        ]
        guard let params = allowed[actionName] else {
            throw n.fail("action", "\"\(actionName)\" is not an action (one of: \(allowed.keys.sorted().joined(separator: ", ")))")
        }
        for k in ["status", "body", "location", "set", "remove", "limit"] where n.dict[k] != nil && !params.contains(k) {
            throw n.fail(k, "does not go with action \"\(actionName)\"")
        }
        let action: Rule.Action
        switch actionName {
        case "deny":
            let body = try n.string("body") ?? ""
            guard body.utf8.count <= 64 * 1024 else { throw n.fail("body", "is longer than 64KiB") }
            action = .deny(status: try n.int("status", min: 400, max: 599) ?? 403, body: body)
        case "allow":
            action = .allow
        case "redirect":
            let status = try n.int("status", min: 300, max: 399) ?? 302
            guard [301, 302, 303, 307, 308].contains(status) else { throw n.fail("status", "a redirect is 301, 302, 303, 307 or 308") }
            let loc = try n.requiredString("location")
            guard loc.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw n.fail("location", "must be visible ASCII without spaces") }
            if let bad = LocationTemplate.unknownVariable(loc) { throw n.fail("location", "\(bad) is not one of $scheme, $host, $path, $query") }
            action = .redirect(status: status, location: LocationTemplate(loc))
        case "headers":
            var set: [Rule.HeaderSet] = []
            if let s = try n.object("set") {
                for k in s.dict.keys.sorted() {
                    guard !k.isEmpty, k.utf8.allSatisfy({ isTokenChar($0) }) else { throw s.fail(k, "is not a header field name") }
                    guard !ruleReservedFields.contains(k.lowercased()) else { throw s.fail(k, "edge writes this field itself") }
                    guard let val = try s.string(k), val.utf8.allSatisfy({ $0 == 9 || ($0 >= 0x20 && $0 != 0x7F) }) else {
                        throw s.fail(k, "expected a field value (a string without control characters)")
                    }
                    set.append(.init(name: k, value: val))
                }
            }
            let remove = try n.strings("remove") ?? []
            for (i, k) in remove.enumerated() {
                guard !k.isEmpty, k.utf8.allSatisfy({ isTokenChar($0) }) else { throw n.fail("remove[\(i)]", "\"\(k)\" is not a header field name") }
                guard !ruleReservedFields.contains(k.lowercased()) else { throw n.fail("remove[\(i)]", "edge writes this field itself") }
            }
            guard !set.isEmpty || !remove.isEmpty else { throw n.fail("set", "action \"headers\" needs \"set\" or \"remove\"") }
            action = .headers(set: set, remove: remove.map { $0.lowercased() })
        case "limit":
            let name = try n.requiredString("limit")
            guard limits.contains(where: { $0.name == name }) else {
                throw n.fail("limit", "no rate limit named \"\(name)\" (rate_limits: \(limits.map(\.name).joined(separator: ", ")))")
            }
            action = .limit(name)
        default:
            guard n.dict["tag"] != nil else { throw n.fail("tag", "is required with action \"tag\"") }
            action = .tag
        }
        var r = Rule(id: id, condition: cond, action: action)
        if let t = try n.string("tag") {
            guard !t.isEmpty, t.utf8.allSatisfy({ isTokenChar($0) }) else { throw n.fail("tag", "a tag is a token (letters, digits, -_.)") }
            r.tag = t
        }
        r.logOnly = n.dict["mode"] != nil ? try loadMode(n) : setLogOnly
        rules.append(r)
    }
    return RuleSet(rules)
}

/// `"mode": "block" | "log"`: true for log.
func loadMode(_ n: Node) throws -> Bool {
    guard let m = try n.string("mode") else { return false }
    guard m == "log" || m == "block" else { throw n.fail("mode", "expected \"block\" or \"log\"") }
    return m == "log"
}

func loadCondition(_ m: Node) throws -> Condition {
    try m.allowOnly(["method", "host", "path", "query", "header", "client", "tls", "sni", "all", "any", "not"])
    var parts: [Condition] = []
    for key in m.dict.keys.sorted() {
        switch key {
        case "method":
            let ms: [String]
            if let one = m.dict[key]?.string { ms = [one] } else { ms = try m.strings(key) ?? [] }
            guard !ms.isEmpty else { throw m.fail(key, "needs at least one method") }
            for (i, x) in ms.enumerated() where x.isEmpty || !x.utf8.allSatisfy({ isTokenChar($0) }) {
                throw m.fail("\(key)[\(i)]", "\"\(x)\" is not a method")
            }
            parts.append(.method(ms.map { Array($0.utf8) }))
        case "host":
            parts.append(.host(try loadText(m, key, lowercase: true)))
        case "path":
            parts.append(.path(try loadText(m, key, lowercase: false)))
        case "sni":
            parts.append(.sni(try loadText(m, key, lowercase: true)))
        case "query", "header":
            let nodes: [Node]
            if m.dict[key]?.array != nil { nodes = try m.objects(key) ?? [] } else { nodes = [try m.object(key)!] }
            guard !nodes.isEmpty else { throw m.fail(key, "needs at least one {\"name\": ...}") }
            for q in nodes {
                try q.allowOnly(["name", "value"])
                let name = try q.requiredString("name")
                if key == "header" { guard name.utf8.allSatisfy({ isTokenChar($0) }) else { throw q.fail("name", "\"\(name)\" is not a header field name") } }
                let value = q.dict["value"] != nil ? try loadText(q, "value", lowercase: false) : nil
                parts.append(key == "query" ? .query(name: Array(name.utf8), value: value) : .header(name: Array(name.lowercased().utf8), value: value))
            }
        case "client":
            let texts: [String]
            if let one = m.dict[key]?.string { texts = [one] } else { texts = try m.strings(key) ?? [] }
            guard !texts.isEmpty else { throw m.fail(key, "needs at least one address or prefix") }
            var ps: [Prefix] = []
            for (i, t) in texts.enumerated() {
                guard let p = Prefix(t) else { throw m.fail("\(key)[\(i)]", "\"\(t)\" is not an address or prefix (like 10.0.0.0/8 or 2001:db8::/32, no host bits set)") }
                ps.append(p)
            }
            guard let list = try? PrefixList(allow: ps, deny: [], default: .deny) else { throw m.fail(key, "a prefix is listed twice") }
            parts.append(.client(list))
        case "tls":
            guard let b = try m.bool(key) else { continue }
            parts.append(.tls(b))
        case "all", "any":
            guard let subs = try m.objects(key), !subs.isEmpty else { throw m.fail(key, "needs at least one condition object") }
            let cs = try subs.map { try loadCondition($0) }
            parts.append(key == "all" ? .all(cs) : .any(cs))
        default:   // "not"
            guard let sub = try m.object(key) else { throw m.fail(key, "expected a condition object") }
            parts.append(.not(try loadCondition(sub)))
        }
    }
    return parts.count == 1 ? parts[0] : .all(parts)
}

/// A text matcher: a string (exact), or {"KIND": "...", "case_insensitive": bool}.
func loadText(_ n: Node, _ key: String, lowercase: Bool) throws -> TextMatch {
    if let s = n.dict[key]?.string { return TextMatch(.exact, lowercase ? s.lowercased() : s, nocase: lowercase) }
    guard let o = try n.object(key) else { throw n.fail(key, "expected a string or an object") }
    let kinds = ["exact", "prefix", "suffix", "contains", "glob", "regex"]
    try o.allowOnly(Set(kinds + ["case_insensitive"]))
    let present = kinds.filter { o.dict[$0] != nil }
    guard present.count == 1, let kind = present.first else {
        throw o.fail(present.count > 1 ? present[1] : "exact", "needs exactly one of: \(kinds.joined(separator: ", "))")
    }
    let pattern = try o.string(kind) ?? ""
    let nocase = try o.bool("case_insensitive") ?? lowercase
    switch kind {
    case "regex":
        var error = ""
        guard let re = Regex(pattern, nocase: nocase, error: &error) else { throw o.fail(kind, "\"\(pattern)\" is not a POSIX extended regular expression: \(error)") }
        return TextMatch(.regex(re), pattern, nocase: nocase)
    case "exact": return TextMatch(.exact, pattern, nocase: nocase)
    case "prefix": return TextMatch(.prefix, pattern, nocase: nocase)
    case "suffix": return TextMatch(.suffix, pattern, nocase: nocase)
    case "contains": return TextMatch(.contains, pattern, nocase: nocase)
    default: return TextMatch(.glob, pattern, nocase: nocase)
    }
}

/// `"signatures": true | false | {...}`; nil when absent, `.some(nil)` when false.
func loadSignatures(_ parent: Node) throws -> SignatureConfig?? {
    guard let v = parent.dict["signatures"] else { return nil }
    if let b = v.bool { return b ? .some(SignatureConfig()) : .some(nil) }
    guard let o = try parent.object("signatures") else { return nil }
    try o.allowOnly(["categories", "fields", "mode", "status"])
    var c = SignatureConfig()
    if let cats = try o.strings("categories") {
        var set = Set<SignatureCategory>()
        for (i, x) in cats.enumerated() {
            guard let k = SignatureCategory(name: x) else {
                throw o.fail("categories[\(i)]", "\"\(x)\" is not a category (one of: \(SignatureCategory.allCases.map(\.name).joined(separator: ", ")))")
            }
            set.insert(k)
        }
        guard !set.isEmpty else { throw o.fail("categories", "needs at least one category") }
        c.categories = set
    }
    if let fs = try o.strings("fields") {
        for (i, f) in fs.enumerated() where f.isEmpty || !f.utf8.allSatisfy({ isTokenChar($0) }) {
            throw o.fail("fields[\(i)]", "\"\(f)\" is not a header field name")
        }
        c.fields = fs.map { $0.lowercased() }
    }
    c.logOnly = try loadMode(o)
    if let s = try o.int("status", min: 400, max: 599) { c.status = s }
    return .some(c)
}
