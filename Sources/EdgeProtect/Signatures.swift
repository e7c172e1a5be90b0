// Attack signatures: a built-in check for common attacks in a request's path,
// query and selected header fields. Opt-in per tenant or route. Each piece of
// text is first normalized the way the attacks hide themselves (percent
// decoding twice, `+` as a space in the query, lowercase, tabs and line breaks
// dropped, SQL comments as spaces, backslashes as slashes), then checked
// by category. The checks look for syntax an ordinary request does not carry
// (a quote closing a string then a tautology, a tag with an event handler, a
// separator then a command with an argument), not for single words: "select",
// "script", "cat" or "union" in a search query do not match. What still can:
// a product search for `' or 1=1` (it is one), a forum post quoting an attack,
// a path segment `..` sent percent-encoded. Documented in the README, with the
// must-match and must-not-match table in the tests.
#if canImport(EdgeHTTP)   // (the fuzzer compiles EdgeHTTP and this module as one: tools/fuzz/run.sh)
import EdgeHTTP
#endif

public enum SignatureCategory: Int, Sendable, CaseIterable {
    case sqli, xss, traversal, command, deserialization, log4shell, scanner

    public var name: String {
        switch self {
        case .sqli: return "sqli"
        case .xss: return "xss"
        case .traversal: return "traversal"
        case .command: return "command"
        case .deserialization: return "deserialization"
        case .log4shell: return "log4shell"
        case .scanner: return "scanner"
        }
    }

    public init?(name: String) {
        guard let c = SignatureCategory.allCases.first(where: { $0.name == name }) else { return nil }
        self = c
    }
}

/// A tenant's or route's signature settings.
public struct SignatureConfig: Sendable, Equatable {
    public var categories: Set<SignatureCategory> = Set(SignatureCategory.allCases)
    /// Request fields checked besides the path and query (lowercase). Every
    /// field is checked for log4shell lookups.
    public var fields: [String] = ["user-agent", "referer", "cookie"]
    /// Only count and log matches.
    public var logOnly = false
    public var status = 403
    public init() {}
}

/// Where a signature matched.
public enum SignaturePlace: UInt8, Sendable { case path, query, field }

public struct SignatureHit: Sendable, Equatable {
    public var category: SignatureCategory
    public var place: SignaturePlace
}

public enum Signatures {
    /// Longest piece of text checked (the rest of a longer one is not looked at).
    public static let maxText = 16 * 1024

    /// The first match in the request's path, query and fields (`fields`:
    /// lowercase names), or nil. `scratch` is reused between calls.
    public static func check(_ r: RuleInput, _ c: SignatureConfig, fields: [[UInt8]], scratch: inout [UInt8]) -> SignatureHit? {
        if let k = scan(r.path, query: false, c.categories, &scratch) { return SignatureHit(category: k, place: .path) }
        if r.query.count > 0, let k = scan(r.query, query: true, c.categories, &scratch) { return SignatureHit(category: k, place: .query) }
        for f in r.fields {
            let v = UnsafeRawBufferPointer(rebasing: r.bytes[f.value])
            var listed = false
            for n in fields where nameIs(r.bytes, f.name, n) { listed = true; break }
            if listed {
                var cats = c.categories
                if !nameIs(r.bytes, f.name, userAgent) { cats.remove(.scanner) }
                if let k = scan(v, query: false, cats, &scratch) { return SignatureHit(category: k, place: .field) }
            } else if c.categories.contains(.log4shell) {
                normalize(v, query: false, into: &scratch)
                if scratch.withUnsafeBufferPointer({ log4shell($0) }) { return SignatureHit(category: .log4shell, place: .field) }
            }
        }
        return nil
    }

    static let userAgent: [UInt8] = Array("user-agent".utf8)

    /// The first category of `cats` that `text` matches.
    public static func scan(_ text: UnsafeRawBufferPointer, query: Bool, _ cats: Set<SignatureCategory>, _ scratch: inout [UInt8]) -> SignatureCategory? {
        normalize(text, query: query, into: &scratch)
        return scratch.withUnsafeBufferPointer { t -> SignatureCategory? in
            for c in SignatureCategory.allCases where cats.contains(c) {
                let hit: Bool
                switch c {
                case .sqli: hit = sqli(t)
                case .xss: hit = xss(t)
                case .traversal: hit = traversal(t)
                case .command: hit = command(t)
                case .deserialization: hit = deserialization(t)
                case .log4shell: hit = log4shell(t)
                case .scanner: hit = scanner(t)
                }
                if hit { return c }
            }
            return nil
        }
    }

    // MARK: Normalization

    /// Percent-decoded twice (`+` a space in a query), lowercased, tabs, CR
    /// and LF dropped, NUL dropped, `/**/` comments as one space, `\` as `/`.
    public static func normalize(_ s: UnsafeRawBufferPointer, query: Bool, into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        let n = min(s.count, maxText)
        var i = 0
        while i < n {
            var b = s[i]
            if b == 37, i + 2 < n, let d = decodePercent(s, i, n) {
                b = d.byte; i = d.next
                // Twice: %252e is %2e is '.'.
                if b == 37, i + 1 < n, hexValue(s[i]) >= 0, hexValue(s[i + 1]) >= 0 {
                    b = UInt8(hexValue(s[i]) << 4 | hexValue(s[i + 1])); i += 2
                }
            } else {
                i += 1
                if b == 43 && query { b = 32 }
            }
            switch b {
            case 9, 10, 13, 0: continue
            case 92: out.append(47)
            case 42 where out.last == 47:   // "/*" ... "*/" → " "
                out.removeLast()
                var j = i
                var closed = false
                while j + 1 < n { if s[j] == 42 && s[j + 1] == 47 { closed = true; break }; j += 1 }
                if closed { i = j + 2; out.append(32) } else { out.append(47); out.append(42) }
            default: out.append(asciiLower(b))
            }
        }
    }

    @inline(__always) static func decodePercent(_ s: UnsafeRawBufferPointer, _ i: Int, _ n: Int) -> (byte: UInt8, next: Int)? {
        let h = hexValue(s[i + 1]), l = hexValue(s[i + 2])
        if h >= 0 && l >= 0 { return (UInt8(h << 4 | l), i + 3) }
        // %u002e (IIS)
        if (s[i + 1] | 0x20) == 117, i + 5 < n {
            var v = 0
            for k in 2...5 { let x = hexValue(s[i + k]); if x < 0 { return nil }; v = v << 4 | x }
            return (v < 0x80 ? UInt8(v) : 0x80, i + 6)
        }
        return nil
    }

    // MARK: Helpers over the normalized text

    @inline(__always) static func has(_ t: UnsafeBufferPointer<UInt8>, _ at: Int, _ lit: StaticString) -> Bool {
        let n = lit.utf8CodeUnitCount
        guard at >= 0, at + n <= t.count else { return false }
        let l = lit.utf8Start
        for k in 0..<n where t[at + k] != l[k] { return false }
        return true
    }

    @inline(__always) static func find(_ t: UnsafeBufferPointer<UInt8>, _ lit: StaticString, from: Int = 0) -> Int? {
        let n = lit.utf8CodeUnitCount
        guard t.count >= n else { return nil }
        let first = lit.utf8Start[0]
        var i = from
        while i <= t.count - n {
            if t[i] == first && has(t, i, lit) { return i }
            i += 1
        }
        return nil
    }

    @inline(__always) static func contains(_ t: UnsafeBufferPointer<UInt8>, _ lit: StaticString) -> Bool { find(t, lit) != nil }

    @inline(__always) static func isWord(_ b: UInt8) -> Bool {
        (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b == 95
    }

    @inline(__always) static func skipSpace(_ t: UnsafeBufferPointer<UInt8>, _ i: Int) -> Int {
        var i = i
        while i < t.count && (t[i] == 32 || t[i] == 40 || t[i] == 41) { i += 1 }   // spaces and parentheses
        return i
    }

    /// `lit` at `at` as a whole word.
    @inline(__always) static func word(_ t: UnsafeBufferPointer<UInt8>, _ at: Int, _ lit: StaticString) -> Bool {
        let n = lit.utf8CodeUnitCount
        return has(t, at, lit) && (at == 0 || !isWord(t[at - 1])) && (at + n == t.count || !isWord(t[at + n]))
    }

    // MARK: Categories

    /// SQL injection: `union [all|distinct] select`; a quote (or a closing
    /// parenthesis) then `or`/`and`/`||`/`&&` and a comparison or a bare
    /// number; a quote then a comment (`--`, `#`); a quote or number then `;`
    /// and a statement; time and file functions (`sleep(`, `benchmark(`,
    /// `waitfor delay`, `load_file(`, `into outfile`), `information_schema`.
    static func sqli(_ t: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        while let u = find(t, "union", from: i) {
            if word(t, u, "union") {
                var j = skipSpace(t, u + 5)
                if word(t, j, "all") { j = skipSpace(t, j + 3) } else if word(t, j, "distinct") { j = skipSpace(t, j + 8) }
                if j > u + 5 && word(t, j, "select") { return true }
            }
            i = u + 5
        }
        for (k, b) in t.enumerated() where b == 39 || b == 34 || b == 96 {   // ' " `
            var j = k + 1
            while j < t.count && (t[j] == 32 || t[j] == 41) { j += 1 }   // spaces, ')'
            // quote then a comment: admin'--, 1' #
            if has(t, j, "--") || (j < t.count && t[j] == 35) { return true }
            // quote then ; and a statement
            if j < t.count && t[j] == 59 && statementFollows(t, j + 1) { return true }
            // quote then a boolean operator and a comparison
            var op = -1
            if word(t, j, "or") { op = j + 2 } else if word(t, j, "and") { op = j + 3 } else if has(t, j, "||") || has(t, j, "&&") { op = j + 2 } else if word(t, j, "xor") { op = j + 3 }
            if op > 0 && comparisonFollows(t, op) { return true }
        }
        for (k, b) in t.enumerated() where b == 59 && k > 0 && (t[k - 1] >= 48 && t[k - 1] <= 57 || t[k - 1] == 41) {
            if statementFollows(t, k + 1) { return true }
        }
        for lit: StaticString in ["sleep(", "benchmark(", "pg_sleep(", "waitfor delay", "load_file(", "into outfile", "into dumpfile",
                                  "information_schema", "xp_cmdshell", "extractvalue(", "updatexml(", "@@version", "sys.sysobjects"] {
            guard let at = find(t, lit) else { continue }
            // sleep( and benchmark( as functions, not parts of words (asleep(...) is text).
            if at > 0 && isWord(t[at - 1]) && lit.utf8Start[0] != 64 { continue }
            return true
        }
        return false
    }

    /// After a boolean operator: within a few words, `=`, `<`, `>`, `like`,
    /// `is null`, `between`, or a bare number or `true`.
    static func comparisonFollows(_ t: UnsafeBufferPointer<UInt8>, _ from: Int) -> Bool {
        let j = skipSpace(t, from)
        guard j > from || (from < t.count && (t[from] == 39 || t[from] == 34)) else { return false }
        // A bare number or constant counts when a comparison, a comment or the end follows it.
        var n = j
        if word(t, j, "true") || word(t, j, "null") { n = j + 4 } else if word(t, j, "false") { n = j + 5 } else {
            while n < t.count && t[n] >= 48 && t[n] <= 57 { n += 1 }
        }
        if n > j {
            while n < t.count && t[n] == 32 { n += 1 }
            if n == t.count || [61, 60, 62, 45, 35, 41, 39, 34, 59].contains(t[n]) { return true }
        }
        var k = j, words = 0
        while k < t.count && k < j + 40 && words < 3 {
            let b = t[k]
            if b == 61 || b == 60 || b == 62 { return true }
            if word(t, k, "like") || word(t, k, "between") || word(t, k, "is") || word(t, k, "in") && k > j { return true }
            if b == 32 { words += 1 }
            k += 1
        }
        return false
    }

    static func statementFollows(_ t: UnsafeBufferPointer<UInt8>, _ from: Int) -> Bool {
        let j = skipSpace(t, from)
        for lit: StaticString in ["drop", "delete", "insert", "update", "select", "exec", "execute", "shutdown", "declare", "create", "alter", "truncate"]
        where word(t, j, lit) {
            let after = j + lit.utf8CodeUnitCount
            return after < t.count && t[after] == 32
        }
        return false
    }

    /// Cross-site scripting: `<script`, a tag with an `on…=` handler, a
    /// `javascript:` / `vbscript:` / `data:text/html` URL, `<iframe`, `<object`,
    /// `<embed`, `srcdoc=`, `document.cookie`.
    static func xss(_ t: UnsafeBufferPointer<UInt8>) -> Bool {
        for lit: StaticString in ["<script", "</script", "javascript:", "vbscript:", "data:text/html", "<iframe", "<object", "<embed", "srcdoc=",
                                  "document.cookie", "<svg/on", "<base href", "<meta http-equiv"]
        where contains(t, lit) { return true }
        // <tag ... on<letters>= before the tag closes
        for (k, b) in t.enumerated() where b == 60 && k + 1 < t.count && t[k + 1] >= 97 && t[k + 1] <= 122 {
            var j = k + 1
            while j < t.count && t[j] != 62 && j < k + 512 {
                if (t[j] == 32 || t[j] == 47 || t[j] == 34 || t[j] == 39) && has(t, j + 1, "on") {
                    var e = j + 3
                    while e < t.count && t[e] >= 97 && t[e] <= 122 { e += 1 }
                    while e < t.count && t[e] == 32 { e += 1 }
                    if e > j + 4 && e < t.count && t[e] == 61 { return true }
                }
                j += 1
            }
        }
        return false
    }

    /// Path traversal: `../` (or `..` at the end, `..;/`), an overlong-UTF-8
    /// dot or slash, and the files it is for (`/etc/passwd`, `/proc/self/`,
    /// `c:/windows/`, `win.ini`, `boot.ini`).
    static func traversal(_ t: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        while let d = find(t, "..", from: i) {
            let after = d + 2
            if after == t.count || t[after] == 47 || (t[after] == 59 && has(t, after + 1, "/")) {
                if d == 0 || t[d - 1] == 47 || t[d - 1] == 61 || t[d - 1] == 32 { return true }
            }
            i = d + 1
        }
        // %c0%ae %c0%af %e0%80%ae (overlong '.' and '/')
        for (k, b) in t.enumerated() where b == 0xc0 && k + 1 < t.count && (t[k + 1] == 0xae || t[k + 1] == 0xaf) { return true }
        // The files, as whole names (/docs/etc/passwd-policy.html is a page).
        for lit: StaticString in ["/etc/passwd", "/etc/shadow", "/etc/hosts", "/proc/self/", "c:/windows/", "win.ini", "boot.ini", "/windows/system32"] {
            var i = 0
            while let at = find(t, lit, from: i) {
                let e = at + lit.utf8CodeUnitCount
                if e == t.count || t[e - 1] == 47 || !(isWord(t[e]) || t[e] == 45) { return true }
                i = at + 1
            }
        }
        return false
    }

    /// Shell and command injection: `$(`, a backtick pair, `${ifs}`; a separator
    /// (`;`, `|`, `&&`, a line break) then a command and an argument that
    /// looks like one (a path, an option, a variable, an address) or nothing;
    /// `/bin/sh`, `/dev/tcp/`, `bash -i`, `nc -e`.
    static func command(_ t: UnsafeBufferPointer<UInt8>) -> Bool {
        for lit: StaticString in ["${ifs", "/bin/sh", "/bin/bash", "/dev/tcp/", "bash -i", "nc -e", "powershell -", "cmd.exe", "/usr/bin/"]
        where contains(t, lit) { return true }
        // $(command ...) and `command ...` (a backtick at the start of a value: markdown's `ls -la` in prose is not)
        var i = 0
        while let d = find(t, "$(", from: i) {
            if commandAt(t, d + 2, strict: false) { return true }
            i = d + 2
        }
        if let a = find(t, "`"), a == 0 || t[a - 1] == 61 || t[a - 1] == 59 || t[a - 1] == 124 || t[a - 1] == 38,
           find(t, "`", from: a + 1) != nil, commandAt(t, a + 1, strict: false) { return true }
        for (k, b) in t.enumerated() where b == 59 || b == 124 || (b == 38 && k + 1 < t.count && t[k + 1] == 38) {
            var j = k + 1
            if b == 124 && j < t.count && t[j] == 124 { j += 1 }
            if b == 38 { j += 1 }
            while j < t.count && t[j] == 32 { j += 1 }
            if commandAt(t, j, strict: true) { return true }
        }
        return false
    }

    static let commands: [StaticString] = ["cat", "ls", "id", "whoami", "uname", "wget", "curl", "nc", "ncat", "netcat", "bash", "sh", "zsh",
                                           "python", "python3", "perl", "php", "ruby", "ping", "nslookup", "sleep", "rm", "chmod", "busybox",
                                           "echo", "telnet", "ifconfig", "passwd", "env", "sudo"]

    /// A command name at `j`; strict: followed by nothing, or a space and an
    /// argument starting with `/`, `-`, `$`, `.`, `~`, a digit or a quote.
    static func commandAt(_ t: UnsafeBufferPointer<UInt8>, _ j: Int, strict: Bool) -> Bool {
        for c in commands where has(t, j, c) {
            let e = j + c.utf8CodeUnitCount
            if e == t.count { return true }
            if isWord(t[e]) { continue }
            if !strict { return true }
            if t[e] == 59 || t[e] == 124 || t[e] == 38 || t[e] == 96 { return true }
            guard t[e] == 32, e + 1 < t.count else { continue }
            let a = t[e + 1]
            if a == 47 || a == 45 || a == 36 || a == 46 || a == 126 || a == 39 || a == 34 || (a >= 48 && a <= 57) || has(t, e + 1, "http") || has(t, e + 1, "ftp") {
                return true
            }
        }
        return false
    }

    /// Serialized objects: Java's stream magic (raw or base64, `ro0ab` once
    /// lowercased), gadget class names, PHP's `o:N:"` and `a:N:{s:`.
    static func deserialization(_ t: UnsafeBufferPointer<UInt8>) -> Bool {
        for lit: StaticString in ["ro0ab", "java.lang.runtime", "java.lang.processbuilder", "org.apache.commons.collections", "ysoserial",
                                  "com.sun.rowset.jdbcrowsetimpl", "__proto__[", "constructor.prototype"]
        where contains(t, lit) { return true }
        // 0xaced0005 (normalizing drops the NUL)
        for (k, b) in t.enumerated() where b == 0xac && k + 2 < t.count && t[k + 1] == 0xed && t[k + 2] == 5 { return true }
        // PHP: o:8:"stdclass":1:{  a:2:{s:
        for (k, b) in t.enumerated() where (b == 111 || b == 97 || b == 99) && k + 2 < t.count && t[k + 1] == 58 && (k == 0 || !isWord(t[k - 1])) {
            var j = k + 2
            let s = j
            while j < t.count && t[j] >= 48 && t[j] <= 57 { j += 1 }
            guard j > s, j + 1 < t.count, t[j] == 58 else { continue }
            if (b == 111 || b == 99) && t[j + 1] == 34 { return true }
            if b == 97 && has(t, j + 1, "{s:") || b == 97 && has(t, j + 1, "{i:") { return true }
        }
        return false
    }

    /// Log4Shell-style lookups: `${jndi:` once nested lookups that spell it
    /// are resolved (`${lower:j}`, `${::-j}`, `${env:X:-j}`); also `${ctx:`,
    /// `${sys:` and `${env:` themselves, which no ordinary request carries.
    static func log4shell(_ t: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        while let s = find(t, "${", from: i) {
            var out: [UInt8] = []
            var pos = s
            evaluateLookup(t, &pos, depth: 0, into: &out)
            if lookupNames.contains(where: { out.starts(with: $0) }) { return true }
            i = s + 2
        }
        return false
    }

    static let lookupNames: [[UInt8]] = ["jndi:", "ctx:", "sys:", "env:", "java:", "main:"].map { Array($0.utf8) }

    /// Evaluates the lookup starting at `pos` (`${`): appends what it expands
    /// to, and its inner text when it is an outer lookup (so `${jndi:x}`
    /// gives `jndi:x`). Stops at a depth of 8 or 256 bytes.
    static func evaluateLookup(_ t: UnsafeBufferPointer<UInt8>, _ pos: inout Int, depth: Int, into out: inout [UInt8]) {
        pos += 2
        var inner: [UInt8] = []
        while pos < t.count && inner.count < 256 {
            if depth < 8 && has(t, pos, "${") {
                evaluateLookup(t, &pos, depth: depth + 1, into: &inner)
                continue
            }
            if t[pos] == 125 { pos += 1; break }   // '}'
            inner.append(t[pos]); pos += 1
        }
        if depth == 0 { out += inner; return }
        // A nested lookup resolves: X:-DEFAULT gives DEFAULT; lower:/upper:V gives V.
        if let d = (0..<max(0, inner.count - 1)).first(where: { inner[$0] == 58 && inner[$0 + 1] == 45 }) {
            out += inner[(d + 2)...]
        } else if let c = inner.firstIndex(of: 58), ["lower", "upper"].contains(String(decoding: inner[..<c], as: UTF8.self)) {
            out += inner[(c + 1)...]
        } else {
            out += inner
        }
    }

    /// User agents of attack tools (not of crawlers or ordinary HTTP libraries).
    static func scanner(_ t: UnsafeBufferPointer<UInt8>) -> Bool {
        for lit: StaticString in ["sqlmap", "nikto", "nmap scripting engine", "masscan", "zgrab", "nuclei", "dirbuster", "gobuster", "wpscan",
                                  "acunetix", "nessus", "openvas", "w3af", "havij", "fimap", "netsparker", "appscan", "jaeles", "wfuzz",
                                  "feroxbuster", "commix", "zmeu", "morfeus", "dirsearch", "arachni", "skipfish", "whatweb"]
        where contains(t, lit) { return true }
        return false
    }
}
