// Request rules: a tenant's ordered list of conditions over a request, each
// with an action (deny, allow, redirect, header edits, a named rate limit, a
// tag). This file decides which rules match; the request filter (EdgeProxy,
// Protection.swift) carries out the actions. Matching reads the request where
// it lies (the head's bytes, the normalized target and host): nothing is
// copied, no clock is read.
//
// Text matchers: exact, prefix, suffix, contains, glob (`*` any run of bytes,
// `?` one byte; nothing else is special) and POSIX extended regular
// expressions (regcomp; unanchored unless the pattern anchors itself).
// Compiled expressions are shared read-only by every worker (regexec on one
// regex_t from several threads is safe in glibc).
import Glibc
#if canImport(EdgeHTTP)   // (the fuzzer compiles EdgeHTTP and this module as one: tools/fuzz/run.sh)
import EdgeHTTP
#endif

/// A compiled POSIX extended regular expression.
public final class Regex: @unchecked Sendable, Equatable {
    public let pattern: String
    public let nocase: Bool
    let re: UnsafeMutablePointer<regex_t>

    /// Longest pattern taken (a guard on compile time and memory).
    public static let maxPattern = 1024

    /// nil and `error` set when the pattern does not compile.
    public init?(_ pattern: String, nocase: Bool = false, error: inout String) {
        self.pattern = pattern
        self.nocase = nocase
        // `re` is set last: a failed init returns before every property is, so deinit does not run.
        guard pattern.utf8.count <= Regex.maxPattern else {
            error = "longer than \(Regex.maxPattern) bytes"
            return nil
        }
        let compiled = UnsafeMutablePointer<regex_t>.allocate(capacity: 1)
        let flags = REG_EXTENDED | REG_NOSUB | (nocase ? REG_ICASE : 0)
        let rc = regcomp(compiled, pattern, flags)
        if rc != 0 {
            var msg = [CChar](repeating: 0, count: 256)
            regerror(rc, compiled, &msg, msg.count)
            error = String(decoding: msg.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            compiled.deallocate()
            return nil
        }
        re = compiled
    }

    deinit {
        regfree(re)
        re.deallocate()
    }

    /// True when the expression matches somewhere in `s` (REG_STARTEND: the
    /// bytes need no terminating NUL, and a NUL inside them is matched as a byte).
    public func matches(_ s: UnsafeRawBufferPointer) -> Bool {
        var m = regmatch_t(rm_so: 0, rm_eo: regoff_t(s.count))
        if let base = s.baseAddress {
            return regexec(re, base.assumingMemoryBound(to: CChar.self), 1, &m, REG_STARTEND) == 0
        }
        return regexec(re, "", 1, &m, REG_STARTEND) == 0
    }

    public static func == (a: Regex, b: Regex) -> Bool { a.pattern == b.pattern && a.nocase == b.nocase }
}

/// How a rule compares a piece of text.
public struct TextMatch: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case exact, prefix, suffix, contains, glob
        case regex(Regex)
    }
    public let kind: Kind
    /// Lowercased when `nocase` (regular expressions keep theirs in the Regex).
    public let pattern: [UInt8]
    public let nocase: Bool

    public init(_ kind: Kind, _ pattern: String, nocase: Bool = false) {
        self.kind = kind
        self.nocase = nocase
        self.pattern = nocase ? Array(pattern.utf8).map(asciiLower) : Array(pattern.utf8)
    }

    @inline(__always) func same(_ a: UInt8, _ b: UInt8) -> Bool { nocase ? asciiLower(a) == b : a == b }

    /// True when `s[start..<end]` begins with the pattern at `at`.
    @inline(__always) func matchesAt(_ s: UnsafeRawBufferPointer, _ at: Int) -> Bool {
        var i = at
        for b in pattern {
            if !same(s[i], b) { return false }
            i += 1
        }
        return true
    }

    public func matches(_ s: UnsafeRawBufferPointer) -> Bool {
        let n = pattern.count
        switch kind {
        case .exact: return s.count == n && matchesAt(s, 0)
        case .prefix: return s.count >= n && matchesAt(s, 0)
        case .suffix: return s.count >= n && matchesAt(s, s.count - n)
        case .contains:
            if n > s.count { return false }
            if n == 0 { return true }
            for i in 0...(s.count - n) where same(s[i], pattern[0]) && matchesAt(s, i) { return true }
            return false
        case .glob: return glob(s)
        case .regex(let r): return r.matches(s)
        }
    }

    /// `*` and `?` over bytes; linear in practice: a mismatch after a star
    /// retries from one byte further on (the last star only, which suffices
    /// for patterns without character classes).
    func glob(_ s: UnsafeRawBufferPointer) -> Bool {
        var i = 0, j = 0
        var star = -1, mark = 0
        while i < s.count {
            if j < pattern.count && pattern[j] == 42 {           // '*'
                star = j; mark = i; j += 1
            } else if j < pattern.count && (pattern[j] == 63 || same(s[i], pattern[j])) {   // '?' or the byte
                i += 1; j += 1
            } else if star >= 0 {
                mark += 1; i = mark; j = star + 1
            } else {
                return false
            }
        }
        while j < pattern.count && pattern[j] == 42 { j += 1 }
        return j == pattern.count
    }
}

/// What a rule asks of a request. `all` / `any` / `not` combine the others.
public indirect enum Condition: Sendable, Equatable {
    /// The method is one of these (as sent: methods are case-sensitive).
    case method([[UInt8]])
    /// The normalized host (lowercase, no port).
    case host(TextMatch)
    /// The normalized path (no query).
    case path(TextMatch)
    /// A query parameter is present (value nil) or has a matching value (as
    /// it appears in the normalized target: not percent-decoded).
    case query(name: [UInt8], value: TextMatch?)
    /// A request field (lowercase name) is present, or one with that name has a matching value.
    case header(name: [UInt8], value: TextMatch?)
    /// The client address (after the PROXY protocol and trusted proxies) is in the list.
    case client(PrefixList)
    /// The request came over TLS (true) or plain HTTP (false).
    case tls(Bool)
    /// The TLS server name the client sent (no match on plain HTTP or without SNI).
    case sni(TextMatch)
    case all([Condition])
    case any([Condition])
    case not(Condition)
}

/// The request as the rules see it. The buffers are valid for the call that
/// evaluates the rules.
public struct RuleInput {
    /// The request head's bytes, and its fields (offsets into them).
    public var bytes: UnsafeRawBufferPointer
    public var fields: [Field]
    public var method: UnsafeRawBufferPointer
    public var host: UnsafeRawBufferPointer
    public var path: UnsafeRawBufferPointer
    /// The query, without its `?` (empty: none).
    public var query: UnsafeRawBufferPointer
    public var client: IPAddress
    public var tls: Bool
    /// The TLS server name (empty: none).
    public var sni: UnsafeRawBufferPointer

    public init(bytes: UnsafeRawBufferPointer, fields: [Field], method: UnsafeRawBufferPointer, host: UnsafeRawBufferPointer,
                path: UnsafeRawBufferPointer, query: UnsafeRawBufferPointer, client: IPAddress, tls: Bool, sni: UnsafeRawBufferPointer) {
        self.bytes = bytes; self.fields = fields; self.method = method; self.host = host
        self.path = path; self.query = query; self.client = client; self.tls = tls; self.sni = sni
    }
}

extension Condition {
    public func matches(_ r: RuleInput) -> Bool {
        switch self {
        case .method(let list):
            for m in list where m.count == r.method.count && m.elementsEqual(r.method) { return true }
            return false
        case .host(let t): return t.matches(r.host)
        case .path(let t): return t.matches(r.path)
        case .query(let name, let value):
            return Condition.queryMatches(r.query, name, value)
        case .header(let name, let value):
            for f in r.fields where nameIs(r.bytes, f.name, name) {
                guard let v = value else { return true }
                if v.matches(UnsafeRawBufferPointer(rebasing: r.bytes[f.value])) { return true }
            }
            return false
        case .client(let list): return list.verdict(r.client) == .allow
        case .tls(let want): return r.tls == want
        case .sni(let t): return r.sni.count > 0 && t.matches(r.sni)
        case .all(let cs):
            for c in cs where !c.matches(r) { return false }
            return true
        case .any(let cs):
            for c in cs where c.matches(r) { return true }
            return false
        case .not(let c): return !c.matches(r)
        }
    }

    /// `name[=value]` pairs separated by `&`; any pair named `name` whose value matches.
    static func queryMatches(_ q: UnsafeRawBufferPointer, _ name: [UInt8], _ value: TextMatch?) -> Bool {
        var i = 0
        while i <= q.count {
            var end = i
            while end < q.count && q[end] != 38 { end += 1 }    // '&'
            var eq = i
            while eq < end && q[eq] != 61 { eq += 1 }            // '='
            if eq - i == name.count && name.elementsEqual(UnsafeRawBufferPointer(rebasing: q[i..<eq])) {
                guard let v = value else { return true }
                let vs = eq < end ? eq + 1 : end
                if v.matches(UnsafeRawBufferPointer(rebasing: q[vs..<end])) { return true }
            }
            i = end + 1
        }
        return false
    }
}

/// A redirect's Location, with `$scheme`, `$host`, `$path` and `$query`
/// (the query with its `?`, or nothing when there is none) filled in.
public struct LocationTemplate: Sendable, Equatable {
    public enum Part: Sendable, Equatable { case literal([UInt8]), scheme, host, path, query }
    public let parts: [Part]

    public init(_ text: String) {
        var parts: [Part] = []
        var lit: [UInt8] = []
        let b = Array(text.utf8)
        var i = 0
        outer: while i < b.count {
            if b[i] == 36 {   // '$'
                for (name, part) in [("scheme", Part.scheme), ("host", .host), ("path", .path), ("query", .query)] {
                    let n = Array(name.utf8)
                    if i + 1 + n.count <= b.count, Array(b[(i + 1)..<(i + 1 + n.count)]) == n {
                        if !lit.isEmpty { parts.append(.literal(lit)); lit = [] }
                        parts.append(part)
                        i += 1 + n.count
                        continue outer
                    }
                }
            }
            lit.append(b[i]); i += 1
        }
        if !lit.isEmpty { parts.append(.literal(lit)) }
        self.parts = parts
    }

    /// A `$` followed by a name that is not one of the four (a config error).
    public static func unknownVariable(_ text: String) -> String? {
        let b = Array(text.utf8)
        var i = 0
        while i < b.count {
            if b[i] == 36 {
                var j = i + 1
                while j < b.count && ((b[j] | 0x20) >= 97 && (b[j] | 0x20) <= 122 || b[j] == 95) { j += 1 }
                let name = String(decoding: b[(i + 1)..<j], as: UTF8.self)
                if !["scheme", "host", "path", "query"].contains(where: { name.hasPrefix($0) }) { return "$" + name }
                i = j
            } else { i += 1 }
        }
        return nil
    }

    public func expand(https: Bool, host: UnsafeRawBufferPointer, path: UnsafeRawBufferPointer, query: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + host.count + path.count + query.count)
        for p in parts {
            switch p {
            case .literal(let l): out += l
            case .scheme: out += https ? Array("https".utf8) : Array("http".utf8)
            case .host: out += host
            case .path: out += path
            case .query: if query.count > 0 { out.append(63); out += query }
            }
        }
        return out
    }
}

/// One rule of a tenant.
public struct Rule: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        /// Answer `status` (403 by default) with `body` (text/plain; empty: the status's own page).
        case deny(status: Int, body: String)
        /// Stop evaluating rules (and the attack signatures); rate limits still apply.
        case allow
        case redirect(status: Int, location: LocationTemplate)
        /// Request fields set (replacing any the client sent) and removed on the way to the origin.
        case headers(set: [HeaderSet], remove: [String])
        /// Apply the tenant's rate limit of this name.
        case limit(String)
        /// Only tag the request in the log.
        case tag
    }
    public struct HeaderSet: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(name: String, value: String) { self.name = name; self.value = value }
    }
    public var id: String
    public var condition: Condition
    public var action: Action
    /// Written to the access log's `tags` when the rule matches.
    public var tag: String?
    /// Matches are counted and logged; the action is not taken.
    public var logOnly = false

    public init(id: String, condition: Condition, action: Action) {
        self.id = id; self.condition = condition; self.action = action
    }

    /// True for actions that end evaluation.
    public var isFinal: Bool {
        switch action {
        case .deny, .allow, .redirect: return true
        case .headers, .limit, .tag: return false
        }
    }
}

/// A tenant's rules in order.
public struct RuleSet: Sendable, Equatable {
    public var rules: [Rule]
    public init(_ rules: [Rule] = []) { self.rules = rules }
    public var isEmpty: Bool { rules.isEmpty }

    /// The rules that apply to a request, in order: `matched` sees each match
    /// (log-mode rules too) up to and including the first final rule not in
    /// log mode, whose index is returned (nil: evaluation ran to the end).
    /// The one statement of the order rules run in, for the request filter
    /// and for `edgectl explain` alike.
    @inline(__always) public func evaluate(_ r: RuleInput, _ matched: (Int) -> Void) -> Int? {
        var i = 0
        while let m = firstMatch(r, from: i) {
            matched(m)
            if rules[m].isFinal && !rules[m].logOnly { return m }
            i = m + 1
        }
        return nil
    }

    /// The index of the first rule at or after `from` whose condition matches.
    public func firstMatch(_ r: RuleInput, from: Int) -> Int? {
        var i = from
        while i < rules.count {
            if rules[i].condition.matches(r) { return i }
            i += 1
        }
        return nil
    }
}
