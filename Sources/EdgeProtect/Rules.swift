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
    /// Groups the pattern has (counted only with `captures`).
    public let groups: Int

    public init?(_ pattern: String, nocase: Bool = false, captures: Bool = false, error: inout String) {
        self.pattern = pattern
        self.nocase = nocase
        // `re` is set last: a failed init returns before every property is, so deinit does not run.
        guard pattern.utf8.count <= Regex.maxPattern else {
            error = "longer than \(Regex.maxPattern) bytes"
            return nil
        }
        let compiled = UnsafeMutablePointer<regex_t>.allocate(capacity: 1)
        let flags = REG_EXTENDED | (captures ? 0 : REG_NOSUB) | (nocase ? REG_ICASE : 0)
        let rc = regcomp(compiled, pattern, flags)
        if rc != 0 {
            var msg = [CChar](repeating: 0, count: 256)
            regerror(rc, compiled, &msg, msg.count)
            error = String(decoding: msg.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            compiled.deallocate()
            return nil
        }
        groups = captures ? Int(compiled.pointee.re_nsub) : 0
        re = compiled
    }

    deinit {
        regfree(re)
        re.deallocate()
    }

    /// True when the expression matches somewhere in `s` (REG_STARTEND: a NUL
    /// inside the bytes is matched as a byte). The bytes are passed with a NUL
    /// after them all the same, copied on the stack up to 4 KiB: glibc honours
    /// REG_STARTEND, but the sanitizers' regexec interceptors (and libcs that
    /// ignore the flag) read the subject up to its NUL.
    public func matches(_ s: UnsafeRawBufferPointer) -> Bool {
        var m = regmatch_t(rm_so: 0, rm_eo: regoff_t(s.count))
        guard s.count < 4096 else {
            let z = [UInt8](s) + [0]
            return z.withUnsafeBytes { regexec(re, $0.baseAddress!.assumingMemoryBound(to: CChar.self), 1, &m, REG_STARTEND) == 0 }
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: s.count + 1) { z in
            if let base = s.baseAddress { z.baseAddress!.initialize(from: base.assumingMemoryBound(to: UInt8.self), count: s.count) }
            z[s.count] = 0
            return z.withMemoryRebound(to: CChar.self) { regexec(re, $0.baseAddress!, 1, &m, REG_STARTEND) == 0 }
        }
    }

    /// Where the expression first matches in `s`: the whole match and each
    /// group (nil: a group that took no part); nil when it does not match.
    /// Only for an expression compiled with `captures`.
    public func match(_ s: UnsafeRawBufferPointer) -> [Range<Int>?]? {
        var m = [regmatch_t](repeating: regmatch_t(rm_so: -1, rm_eo: -1), count: groups + 1)
        m[0] = regmatch_t(rm_so: 0, rm_eo: regoff_t(s.count))
        // A NUL-terminated copy: glibc honours REG_STARTEND, but sanitizers'
        // regexec interceptors read the string up to its NUL (a path is short).
        var z = [UInt8](s)
        z.append(0)
        let rc = m.withUnsafeMutableBufferPointer { mb in
            z.withUnsafeBytes { regexec(re, $0.baseAddress!.assumingMemoryBound(to: CChar.self), mb.count, mb.baseAddress, REG_STARTEND) }
        }
        guard rc == 0 else { return nil }
        return m.map { $0.rm_so < 0 ? nil : Int($0.rm_so)..<Int($0.rm_eo) }
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

    func glob(_ s: UnsafeRawBufferPointer) -> Bool {
        pattern.withUnsafeBufferPointer { TextMatch.glob(s, $0, nocase: nocase) }
    }

    /// `*` and `?` over bytes (`pattern` lowercase when `nocase`); linear in
    /// practice: a mismatch after a star retries from one byte further on
    /// (the last star only, which suffices without character classes).
    static func glob(_ s: UnsafeRawBufferPointer, _ pattern: UnsafeBufferPointer<UInt8>, nocase: Bool) -> Bool {
        var i = 0, j = 0
        var star = -1, mark = 0
        while i < s.count {
            if j < pattern.count && pattern[j] == 42 {           // '*'
                star = j; mark = i; j += 1
            } else if j < pattern.count && (pattern[j] == 63 || (nocase ? asciiLower(s[i]) : s[i]) == pattern[j]) {   // '?' or the byte
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

/// A tenant's rules in order, with their compiled form (RuleProgram), which
/// is what the request path runs.
public struct RuleSet: Sendable, Equatable {
    public let rules: [Rule]
    public let program: RuleProgram
    public init(_ rules: [Rule] = []) {
        self.rules = rules
        program = RuleProgram(rules)
    }
    public var isEmpty: Bool { rules.isEmpty }
    public static func == (a: RuleSet, b: RuleSet) -> Bool { a.rules == b.rules }

    /// The rules that apply to a request, in order: `matched` sees each match
    /// (log-mode rules too) up to and including the first final rule not in
    /// log mode, whose index is returned (nil: evaluation ran to the end).
    /// The one statement of the order rules run in, for the request filter
    /// and for `edgectl explain` alike.
    @inline(__always) public func evaluate(_ r: RuleInput, _ matched: (Int) -> Void) -> Int? {
        var i = 0
        while let m = program.firstMatch(r, from: i) {
            matched(m)
            if program.heads[m].stops { return m }
            i = m + 1
        }
        return nil
    }

    /// The index of the first rule at or after `from` whose condition matches.
    public func firstMatch(_ r: RuleInput, from: Int) -> Int? { program.firstMatch(r, from: from) }
}

/// Rules compiled for the request path: every condition one flat array of
/// plain-value operations (no references, so walking them retains nothing),
/// their strings in one byte pool, and per rule a literal the path must
/// start with when the condition requires one (a path exact or prefix, the
/// head of a glob, an anchored regular expression's literal head), checked
/// before anything else. Inside `all`, regular expressions run last.
/// Condition.matches is the definition; tests hold this to it.
public struct RuleProgram: Sendable {
    enum Kind: UInt8, Sendable { case method, host, path, sni, query, header, client, tls, all, any, not }
    enum Text: UInt8, Sendable { case exact, prefix, suffix, contains, glob, regex, none }
    struct Op: Sendable {
        var kind: Kind
        var text = Text.none
        var nocase = false
        var flag = false
        /// Text ops: the pattern in the pool; query/header: the name; method: the list; all/any: children in `kids`.
        var off: Int32 = 0
        var len: Int32 = 0
        /// The regex index, the prefix list index, the value op of query/header (-1: presence), the child of not.
        var ref: Int32 = -1
    }
    public struct Head: Sendable {
        var root: Int32
        /// The path must start with pool[litOff..<litOff+litLen] (and be it, when exact).
        var litOff: Int32
        var litLen: Int32 = -1
        var litExact = false
        /// A final rule not in log mode: evaluation ends with it.
        public var stops: Bool
        /// The condition needs a query, or a field whose name hashes to this bit (0: none).
        var needsQuery = false
        var headerBit: UInt64 = 0
        /// The methods it can match, by their bits (0: any).
        var methodBits: UInt64 = 0
    }
    var ops: [Op] = []
    var kids: [Int32] = []
    var pool: [UInt8] = []
    var regexes: [Regex] = []
    var lists: [PrefixList] = []
    public private(set) var heads: [Head] = []
    /// Candidates by the path's second byte: rules whose path literal is at
    /// least two bytes long are listed under its second byte, merged in rule
    /// order with every other rule (bucketItems[bucketStart[b]..<bucketStart[b + 1]]);
    /// a byte no literal has uses `always` alone. A request walks one list.
    var always: [Int32] = []
    var bucketStart: [Int32] = []
    var bucketItems: [Int32] = []
    /// Some rule needs a field (the request's field names are hashed once).
    var anyHeaderBit = false

    init(_ rules: [Rule]) {
        var buckets = [[Int32]](repeating: [], count: 256)
        for (i, r) in rules.enumerated() {
            let root = compile(r.condition)
            var h = Head(root: Int32(root), litOff: 0, stops: r.isFinal && !r.logOnly)
            if let (lit, exact) = RuleProgram.pathLiteral(r.condition) {
                h.litOff = Int32(pool.count); h.litLen = Int32(lit.count); h.litExact = exact
                pool += lit
            }
            let (q, bit) = RuleProgram.needs(r.condition)
            h.needsQuery = q
            h.headerBit = bit
            if bit != 0 { anyHeaderBit = true }
            h.methodBits = RuleProgram.methods(r.condition)
            if h.methodBits != 0 { anyMethodBits = true }
            heads.append(h)
            if h.litLen >= 2 { buckets[Int(pool[Int(h.litOff) + 1])].append(Int32(i)) } else { always.append(Int32(i)) }
        }
        for b in buckets {
            bucketStart.append(Int32(bucketItems.count))
            if !b.isEmpty { bucketItems += (b + always).sorted() }
        }
        bucketStart.append(Int32(bucketItems.count))
    }

    /// Some rule needs one of a few methods.
    var anyMethodBits = false

    /// The methods `c` can match (at its top, or in an `all`), as bits; 0: not limited.
    static func methods(_ c: Condition) -> UInt64 {
        switch c {
        case .method(let ms):
            var bits: UInt64 = 0
            for m in ms { bits |= m.withUnsafeBytes { headerBit($0, 0, m.count) } }
            return bits == 0 ? ~0 : bits   // (an empty list: every bit, so the rule is evaluated, and its op says no)
        case .all(let cs):
            for x in cs { let b = methods(x); if b != 0 { return b } }
            return 0
        default: return 0
        }
    }

    @inline(__always) static func headerBit(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UInt64 {
        let n = end - start
        guard n > 0 else { return 1 }
        let h = UInt64(n) &* 31 &+ UInt64(asciiLower(p[start])) &* 7 &+ UInt64(asciiLower(p[end - 1]))
        return 1 << (h & 63)
    }

    /// What `c` cannot match without: a query, a field (by its name's bit).
    static func needs(_ c: Condition) -> (query: Bool, headerBit: UInt64) {
        switch c {
        case .query: return (true, 0)
        case .header(let name, _): return (false, name.withUnsafeBytes { headerBit($0, 0, name.count) })
        case .all(let cs):
            var q = false, bit: UInt64 = 0
            for x in cs {
                let (xq, xb) = needs(x)
                q = q || xq
                if bit == 0 { bit = xb }
            }
            return (q, bit)
        default: return (false, 0)
        }
    }

    mutating func text(_ kind: Kind, _ t: TextMatch) -> Op {
        var op = Op(kind: kind, nocase: t.nocase, off: Int32(pool.count), len: Int32(t.pattern.count))
        pool += t.pattern
        switch t.kind {
        case .exact: op.text = .exact
        case .prefix: op.text = .prefix
        case .suffix: op.text = .suffix
        case .contains: op.text = .contains
        case .glob: op.text = .glob
        case .regex(let re): op.text = .regex; op.ref = Int32(regexes.count); regexes.append(re)
        }
        return op
    }

    /// Appends the ops of `c`; returns its index.
    mutating func compile(_ c: Condition) -> Int {
        var op: Op
        switch c {
        case .method(let ms):
            op = Op(kind: .method, off: Int32(pool.count), len: Int32(ms.count))
            for m in ms { pool.append(UInt8(min(m.count, 255))); pool += m.prefix(255) }
        case .host(let t): op = text(.host, t)
        case .path(let t): op = text(.path, t)
        case .sni(let t): op = text(.sni, t)
        case .query(let name, let value), .header(let name, let value):
            var isQuery = false
            if case .query = c { isQuery = true }
            op = Op(kind: isQuery ? .query : .header, off: Int32(pool.count), len: Int32(name.count))
            pool += name
            if let v = value { let vi = compileValue(v); op.ref = Int32(vi) }
        case .client(let l): op = Op(kind: .client, ref: Int32(lists.count)); lists.append(l)
        case .tls(let b): op = Op(kind: .tls, flag: b)
        case .not(let sub):
            let i = ops.count
            ops.append(Op(kind: .not))
            ops[i].ref = Int32(compile(sub))
            return i
        case .all(let cs), .any(let cs):
            var isAll = false
            if case .all = c { isAll = true }
            let i = ops.count
            ops.append(Op(kind: isAll ? .all : .any))
            // Cheap tests first, regular expressions last (conditions have no effects: order is free).
            let ordered = cs.enumerated().sorted { (RuleProgram.cost($0.element), $0.offset) < (RuleProgram.cost($1.element), $1.offset) }.map(\.element)
            let children = ordered.map { Int32(compile($0)) }
            ops[i].off = Int32(kids.count); ops[i].len = Int32(children.count)
            kids += children
            return i
        }
        ops.append(op)
        return ops.count - 1
    }

    mutating func compileValue(_ t: TextMatch) -> Int {
        ops.append(text(.path, t))   // (a text op; its kind is not looked at)
        return ops.count - 1
    }

    /// A rough order of what a test costs, for all/any.
    static func cost(_ c: Condition) -> Int {
        if usesRegex(c) { return 9 }
        switch c {
        case .tls: return 0
        case .method: return 1
        case .path, .host, .sni: return 2
        case .client: return 3
        case .query, .header: return 4
        case .not, .all, .any: return 5
        }
    }

    static func usesRegex(_ c: Condition) -> Bool {
        switch c {
        case .host(let t), .path(let t), .sni(let t): if case .regex = t.kind { return true }; return false
        case .query(_, let v), .header(_, let v): if let t = v, case .regex = t.kind { return true }; return false
        case .all(let cs), .any(let cs): return cs.contains { usesRegex($0) }
        case .not(let x): return usesRegex(x)
        default: return false
        }
    }

    /// A literal the path must start with for `c` to match (and equal, when exact).
    static func pathLiteral(_ c: Condition) -> ([UInt8], Bool)? {
        switch c {
        case .path(let t) where !t.nocase:
            switch t.kind {
            case .exact: return (t.pattern, true)
            case .prefix: return t.pattern.isEmpty ? nil : (t.pattern, false)
            case .glob:
                let head = Array(t.pattern.prefix { $0 != 42 && $0 != 63 })
                return head.isEmpty ? nil : (head, head.count == t.pattern.count)
            case .regex(let re) where !re.nocase:
                // "^" then literal bytes; a byte a quantifier follows is not required.
                let b = Array(re.pattern.utf8)
                guard b.first == 94 else { return nil }
                var lit: [UInt8] = []
                var i = 1
                while i < b.count, !Array("\\.[]()|^$*+?{".utf8).contains(b[i]) {
                    lit.append(b[i]); i += 1
                }
                if i < b.count, Array("*+?{".utf8).contains(b[i]), !lit.isEmpty { lit.removeLast() }
                if b.contains(124) { return nil }   // an alternation anywhere: the head may not be required
                return lit.isEmpty ? nil : (lit, false)
            default: return nil
            }
        case .all(let cs):
            for x in cs { if let l = pathLiteral(x) { return l } }
            return nil
        default: return nil
        }
    }

    /// The index of the first rule at or after `from` whose condition matches.
    public func firstMatch(_ r: RuleInput, from: Int) -> Int? {
        var fieldBits: UInt64 = 0
        if anyHeaderBit { for f in r.fields { fieldBits |= RuleProgram.headerBit(r.bytes, f.nameStart, f.nameEnd) } }
        let methodBit = anyMethodBits ? RuleProgram.headerBit(r.method, 0, r.method.count) : 0
        return ops.withUnsafeBufferPointer { ops in kids.withUnsafeBufferPointer { kids in pool.withUnsafeBufferPointer { pool in
            heads.withUnsafeBufferPointer { heads in always.withUnsafeBufferPointer { always in bucketItems.withUnsafeBufferPointer { items -> Int? in
                let m = Machine(ops: ops, kids: kids, pool: pool, program: self, r: r)
                // The rules that can match, in order: the path's bucket, or `always`.
                var list = always
                if r.path.count >= 2 {
                    let byte = Int(r.path[1])
                    let lo = Int(bucketStart[byte]), hi = Int(bucketStart[byte + 1])
                    if hi > lo { list = UnsafeBufferPointer(rebasing: items[lo..<hi]) }
                }
                for k in list.indices {
                    let i = Int(list[k])
                    if i < from { continue }
                    let h = heads[i]
                    if h.needsQuery && r.query.count == 0 { continue }
                    if h.headerBit != 0 && fieldBits & h.headerBit == 0 { continue }
                    if h.methodBits != 0 && methodBit & h.methodBits == 0 { continue }
                    if h.litLen >= 0 {
                        let n = Int(h.litLen)
                        if r.path.count < n || (h.litExact && r.path.count != n) || !m.equal(r.path, 0, Int(h.litOff), n, nocase: false) { continue }
                    }
                    if m.run(Int(h.root)) { return i }
                }
                return nil
            } } }
        } } }
    }

    /// One evaluation: the program's arrays as buffers, and the request.
    struct Machine {
        let ops: UnsafeBufferPointer<Op>
        let kids: UnsafeBufferPointer<Int32>
        let pool: UnsafeBufferPointer<UInt8>
        let program: RuleProgram
        let r: RuleInput

        @inline(__always) func equal(_ s: UnsafeRawBufferPointer, _ at: Int, _ off: Int, _ n: Int, nocase: Bool) -> Bool {
            var k = 0
            if nocase {
                while k < n { if asciiLower(s[at + k]) != pool[off + k] { return false }; k += 1 }
            } else {
                while k < n { if s[at + k] != pool[off + k] { return false }; k += 1 }
            }
            return true
        }

        func text(_ op: Op, _ s: UnsafeRawBufferPointer) -> Bool {
            let off = Int(op.off), n = Int(op.len)
            switch op.text {
            case .exact: return s.count == n && equal(s, 0, off, n, nocase: op.nocase)
            case .prefix: return s.count >= n && equal(s, 0, off, n, nocase: op.nocase)
            case .suffix: return s.count >= n && equal(s, s.count - n, off, n, nocase: op.nocase)
            case .contains:
                if n > s.count { return false }
                if n == 0 { return true }
                for i in 0...(s.count - n) where equal(s, i, off, n, nocase: op.nocase) { return true }
                return false
            case .glob:
                return TextMatch.glob(s, UnsafeBufferPointer(rebasing: pool[off..<(off + n)]), nocase: op.nocase)
            case .regex: return program.regexes[Int(op.ref)].matches(s)
            case .none: return false
            }
        }

        func run(_ i: Int) -> Bool {
            let op = ops[i]
            switch op.kind {
            case .method:
                var at = Int(op.off)
                for _ in 0..<Int(op.len) {
                    let n = Int(pool[at])
                    if n == r.method.count && equal(r.method, 0, at + 1, n, nocase: false) { return true }
                    at += 1 + n
                }
                return false
            case .host: return text(op, r.host)
            case .path: return text(op, r.path)
            case .sni: return r.sni.count > 0 && text(op, r.sni)
            case .query:
                let q = r.query, name = UnsafeBufferPointer(rebasing: pool[Int(op.off)..<Int(op.off + op.len)])
                var s = 0
                while s <= q.count {
                    var end = s
                    while end < q.count && q[end] != 38 { end += 1 }
                    var eq = s
                    while eq < end && q[eq] != 61 { eq += 1 }
                    if eq - s == name.count && equal(q, s, Int(op.off), name.count, nocase: false) {
                        if op.ref < 0 { return true }
                        let vs = eq < end ? eq + 1 : end
                        if text(ops[Int(op.ref)], UnsafeRawBufferPointer(rebasing: q[vs..<end])) { return true }
                    }
                    s = end + 1
                }
                return false
            case .header:
                let n = Int(op.len), off = Int(op.off)
                for f in r.fields where f.nameEnd - f.nameStart == n && equal(r.bytes, f.nameStart, off, n, nocase: true) {
                    if op.ref < 0 { return true }
                    if text(ops[Int(op.ref)], UnsafeRawBufferPointer(rebasing: r.bytes[f.value])) { return true }
                }
                return false
            case .client: return program.lists[Int(op.ref)].verdict(r.client) == .allow
            case .tls: return r.tls == op.flag
            case .all:
                for k in Int(op.off)..<Int(op.off + op.len) where !run(Int(kids[k])) { return false }
                return true
            case .any:
                for k in Int(op.off)..<Int(op.off + op.len) where run(Int(kids[k])) { return true }
                return false
            case .not: return !run(Int(op.ref))
            }
        }
    }
}
