// Templates that build bytes from a request: a route's path rewrite (a
// regular expression's first match replaced) and a redirect's Location
// (request parts and, after a route's pattern matched, its groups). Pure.
import Glibc

/// A route's path rewrite: the first match of `regex` in the path is
/// replaced by `replacement`, where `$0` is the whole match and `$1`-`$9`
/// its groups (a group that took no part: nothing); `$$` is a `$`.
public struct PathRewrite: Sendable, Equatable {
    public enum Part: Sendable, Equatable { case literal([UInt8]), group(Int) }
    public let regex: Regex
    public let parts: [Part]

    /// nil and `error` set when the pattern does not compile or the
    /// replacement names a group the pattern does not have.
    public init?(pattern: String, replacement: String, error: inout String) {
        guard let r = Regex(pattern, captures: true, error: &error) else { return nil }
        var parts: [Part] = []
        var lit: [UInt8] = []
        let b = Array(replacement.utf8)
        var i = 0
        while i < b.count {
            if b[i] == 36, i + 1 < b.count {
                if b[i + 1] == 36 { lit.append(36); i += 2; continue }
                if b[i + 1] >= 48 && b[i + 1] <= 57 {
                    let g = Int(b[i + 1] - 48)
                    guard g <= r.groups else { error = "$\(g): the pattern has \(r.groups) group(s)"; return nil }
                    if !lit.isEmpty { parts.append(.literal(lit)); lit = [] }
                    parts.append(.group(g))
                    i += 2
                    continue
                }
            }
            lit.append(b[i]); i += 1
        }
        if !lit.isEmpty { parts.append(.literal(lit)) }
        regex = r
        self.parts = parts
    }

    /// The rewritten path, or nil when the pattern does not match it.
    public func apply(_ path: UnsafeRawBufferPointer) -> [UInt8]? {
        guard let m = regex.match(path), let whole = m[0] else { return nil }
        var out = Array(path[..<whole.lowerBound])
        for p in parts {
            switch p {
            case .literal(let l): out += l
            case .group(let g): if let r = m[g] { out += path[r] }
            }
        }
        out += path[whole.upperBound...]
        return out
    }
}

/// A redirect's Location, with `$scheme`, `$host`, `$path` and `$query`
/// (the query with its `?`, or nothing when there is none) filled in; a
/// route's redirect with a `pattern` also takes `$0`-`$9`, the pattern's
/// match and groups in the path (a group that took no part: nothing), and
/// `$$` for a dollar.
public struct LocationTemplate: Sendable, Equatable {
    public enum Part: Sendable, Equatable { case literal([UInt8]), scheme, host, path, query, group(Int) }
    public let parts: [Part]

    /// `groups`: `$0`-`$9` and `$$` are read (after a pattern); without it
    /// they are literal text (a rule's redirect has no pattern).
    public init(_ text: String, groups: Bool = false) {
        var parts: [Part] = []
        var lit: [UInt8] = []
        let b = Array(text.utf8)
        var i = 0
        outer: while i < b.count {
            if b[i] == 36 {   // '$'
                if groups, i + 1 < b.count {
                    if b[i + 1] == 36 { lit.append(36); i += 2; continue }
                    if b[i + 1] >= 48 && b[i + 1] <= 57 {
                        if !lit.isEmpty { parts.append(.literal(lit)); lit = [] }
                        parts.append(.group(Int(b[i + 1] - 48)))
                        i += 2
                        continue
                    }
                }
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

    /// A `$` followed by a name that is not one of the four (a config error);
    /// with `groups` (a pattern's group count), `$$` and `$0`-`$groups` too.
    public static func unknownVariable(_ text: String, groups: Int? = nil) -> String? {
        let b = Array(text.utf8)
        var i = 0
        while i < b.count {
            if b[i] == 36 {
                if let g = groups, i + 1 < b.count {
                    if b[i + 1] == 36 { i += 2; continue }
                    if b[i + 1] >= 48 && b[i + 1] <= 57 {
                        if Int(b[i + 1] - 48) > g { return "$" + String(UnicodeScalar(b[i + 1])) }
                        i += 2
                        continue
                    }
                }
                var j = i + 1
                while j < b.count && ((b[j] | 0x20) >= 97 && (b[j] | 0x20) <= 122 || b[j] == 95) { j += 1 }
                let name = String(decoding: b[(i + 1)..<j], as: UTF8.self)
                if !["scheme", "host", "path", "query"].contains(where: { name.hasPrefix($0) }) { return "$" + name }
                i = j
            } else { i += 1 }
        }
        return nil
    }

    /// `groups`: a pattern's match in `path` (Regex.match), for `$0`-`$9`.
    public func expand(https: Bool, host: UnsafeRawBufferPointer, path: UnsafeRawBufferPointer, query: UnsafeRawBufferPointer,
                       groups: [Range<Int>?] = []) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + host.count + path.count + query.count)
        for p in parts {
            switch p {
            case .literal(let l): out += l
            case .scheme: out += https ? Array("https".utf8) : Array("http".utf8)
            case .host: out += host
            case .path: out += path
            case .query: if query.count > 0 { out.append(63); out += query }
            case .group(let g): if g < groups.count, let r = groups[g] { out += path[r] }
            }
        }
        return out
    }
}
