// Cache keys: primary key (tenant, scheme, host, normalized target) and the
// secondary key from Vary (RFC 9111 §4.1). Pure.

#if canImport(EdgeHTTP)
import EdgeHTTP
#endif

public struct QueryOptions: Sendable, Equatable {
    /// Sort parameters so `?a=1&b=2` and `?b=2&a=1` share an entry.
    public var sort = false
    /// Parameters left out of the key (tracking parameters and the like).
    public var ignore: Set<String> = []
    /// Only these parameters key (an allow-list); nil: all but `ignore`.
    public var keep: Set<String>?
    public init() {}
}

/// A key's two FNV-1a hashes (MemoryStore.keyHashes): its base key's (the
/// shard) and the whole key's (the index, the ghost, collapsing's table).
public typealias KeyHashes = (base: UInt64, full: UInt64)

public enum CacheKey {
    /// The key of every hit and miss on a route without query options, built
    /// in one allocation (the same bytes as the general path below): nil when
    /// the host needs normalizing (a capital, a trailing dot, an IPv6 literal,
    /// a port after anything Authority.normalize would change or refuse).
    @inline(__always)
    static func plainPrimary(tenant: String, https: Bool, host: String, target: String) -> String? {
        let made = host.utf8.withContiguousStorageIfAvailable { whole -> String? in
            guard let n = plainHostLength(whole) else { return nil }
            let h = UnsafeBufferPointer(rebasing: whole[..<n])
            return tenant.utf8.withContiguousStorageIfAvailable { t -> String? in
                target.utf8.withContiguousStorageIfAvailable { g -> String in
                    let scheme: StaticString = https ? "|https|" : "|http|"
                    var digits = 1, n = t.count
                    while n >= 10 { digits += 1; n /= 10 }
                    let total = digits + 1 + t.count + scheme.utf8CodeUnitCount + h.count + 1 + g.count
                    return String(unsafeUninitializedCapacity: total) { out in
                        let base = out.baseAddress!
                        var v = t.count, at = digits
                        repeat { at -= 1; base[at] = UInt8(48 + v % 10); v /= 10 } while v > 0
                        base[digits] = 58
                        var i = put(UnsafeRawBufferPointer(t), base, digits + 1)
                        i = put(UnsafeRawBufferPointer(start: scheme.utf8Start, count: scheme.utf8CodeUnitCount), base, i)
                        i = put(UnsafeRawBufferPointer(h), base, i)
                        base[i] = 124
                        return put(UnsafeRawBufferPointer(g), base, i + 1)
                    }
                }
            } ?? nil
        }
        return made ?? nil
    }

    /// How much of a host is its key as it is (the port, if any, dropped), or
    /// nil when the general path must normalize it. Without a port: no
    /// capital and no trailing dot. With one: only the characters
    /// Authority.normalize keeps unchanged before it, and a port it accepts
    /// (1 to 65535, or none after the colon).
    @inline(__always)
    static func plainHostLength(_ h: UnsafeBufferPointer<UInt8>) -> Int? {
        var i = 0
        while i < h.count {
            let b = h[i]
            if b == 58 { break }
            if b >= 65 && b <= 90 { return nil }
            i += 1
        }
        if i == h.count { return h.last == 46 ? nil : h.count }
        let colon = i
        guard colon > 0, h[colon - 1] != 46, h.count - colon - 1 <= 5 else { return nil }
        for j in 0..<colon {
            let b = h[j]
            guard (b >= 48 && b <= 57) || (b >= 97 && b <= 122) || b == 45 || b == 46 || b == 95 || b == 126 else { return nil }
        }
        var port = 0
        for j in (colon + 1)..<h.count {
            let b = h[j]
            guard b >= 48 && b <= 57 else { return nil }
            port = port * 10 + Int(b - 48)
        }
        return h.count == colon + 1 || (port >= 1 && port <= 65535) ? colon : nil
    }

    /// Copies `p` to `base + at`; returns where the next bytes go.
    @inline(__always) static func put(_ p: UnsafeRawBufferPointer, _ base: UnsafeMutablePointer<UInt8>, _ at: Int) -> Int {
        if p.count > 0 { UnsafeMutableRawPointer(base + at).copyMemory(from: p.baseAddress!, byteCount: p.count) }
        return at + p.count
    }

    /// A key's hashes, for a caller that hands them to several steps (the
    /// pipeline: the store's lookup, collapsing, the not-stored note).
    @inline(__always) public static func hashes(_ key: String) -> KeyHashes { MemoryStore.keyHashes(key) }

    /// The primary key. `target` is the already-normalized path and query
    /// (see EdgeHTTP.TargetNormalizer); the host is lowercased, without port or trailing dot.
    public static func primary(tenant: String, https: Bool, host: String, target: String, query: QueryOptions = QueryOptions()) -> String {
        // Fast path: a lowercase host without port or trailing dot, and no query options to apply.
        if query.sort == false && query.ignore.isEmpty && query.keep == nil,
           let k = plainPrimary(tenant: tenant, https: https, host: host, target: target) {
            return k
        }
        return generalPrimary(tenant: tenant, https: https, host: host, target: target, query: query)
    }

    /// The primary key by the general rule (what the fast path must equal).
    static func generalPrimary(tenant: String, https: Bool, host: String, target: String, query: QueryOptions) -> String {
        // No port: the tenant's listeners (and the ports clients spell) share
        // entries, and a purge by URL need not know them. The scheme stays keyed.
        // The one host normalization (EdgeHTTP.Authority); a host it refuses is keyed lowercased as given.
        var bytes = Array(host.utf8), normalized: [UInt8] = []
        let ok = bytes.withUnsafeBytes { Authority.normalize($0, 0..<$0.count, into: &normalized) }
        if !ok { normalized = bytes.map(asciiLower) }
        bytes = normalized
        let h = String(decoding: bytes, as: UTF8.self)
        var t = target
        if let q = target.firstIndex(of: "?") {
            let path = target[..<q]
            var params = target[target.index(after: q)...].split(separator: "&", omittingEmptySubsequences: true).map(String.init)
            if !query.ignore.isEmpty {
                params = params.filter { p in !query.ignore.contains(String(p.split(separator: "=", maxSplits: 1).first ?? "")) }
            }
            if let keep = query.keep {
                params = params.filter { p in keep.contains(String(p.split(separator: "=", maxSplits: 1).first ?? "")) }
            }
            if query.sort { params.sort() }
            t = params.isEmpty ? String(path) : String(path) + "?" + params.joined(separator: "&")
        }
        // Length-prefixed parts: no two different tuples make the same key.
        return "\(tenant.utf8.count):\(tenant)|\(https ? "https" : "http")|\(h)|\(t)"
    }

    /// The secondary key for a request, given the stored response's Vary; nil
    /// when Vary is `*` (never matches). Field values are normalized: lines
    /// joined, whitespace around commas removed, and lowercased for fields whose
    /// values are case-insensitive; Accept-Encoding is reduced to its bucket,
    /// Accept-Language to its languages in preference order (q-values dropped).
    /// A route adds names of its own to a stored response's list (never
    /// field names: they hold a character no token has): `cookie:NAME`, the
    /// value of that cookie (its name compared exactly), and
    /// `accept-language;en;de`, the best of those languages the request takes.
    public static func variant(vary: [String], request: HeaderList) -> String? {
        if vary.isEmpty { return "" }
        let names = vary.flatMap { $0.split(separator: ",") }.map { s -> String in
            let t = s.trimmedOWS()
            return t.utf8.count > 7 && t.lowercased().hasPrefix("cookie:") ? "cookie:" + t.dropFirst(7) : t.lowercased()
        }.filter { !$0.isEmpty }
        if names.contains("*") { return nil }
        var parts: [String] = []
        for n in Set(names).sorted() {
            if n.hasPrefix("cookie:") {
                parts.append(n + "=" + (cookie(String(n.dropFirst(7)), in: request) ?? "\u{0}"))
                continue
            }
            if n.hasPrefix("accept-language") {
                let langs = request.values("accept-language")
                let supported = n.split(separator: ";").dropFirst().map(String.init)
                let ranked = rankedLanguages(langs.joined(separator: ","))
                // Absent is its own variant without a list (as for any field); with one, the first language.
                let value = supported.isEmpty ? (langs.isEmpty ? "\u{0}" : ranked.joined(separator: ",")) : bestLanguage(ranked, of: supported)
                parts.append("accept-language=" + value)
                continue
            }
            let lines = request.values(n)
            var v = lines.joined(separator: ",").split(separator: ",").map { $0.trimmedOWS() }.filter { !$0.isEmpty }.joined(separator: ",")
            if n == "accept-encoding" {
                // Reduced to what decides the response (br, gzip or identity): a
                // handful of variants, not one per browser's spelling.
                parts.append("\(n)=\(AcceptEncoding.bucket(lines.isEmpty ? nil : v).token)")
                continue
            }
            if caseInsensitive.contains(n) { v = v.lowercased() }
            parts.append("\(n)=\(lines.isEmpty ? "\u{0}" : v)")
        }
        return parts.joined(separator: "\n")
    }

    /// The value of cookie `name` in the request's Cookie lines; nil when absent.
    public static func cookie(_ name: String, in request: HeaderList) -> String? {
        for line in request.values("cookie") {
            for pair in line.split(separator: ";") {
                let t = pair.trimmedOWS()
                guard let eq = t.firstIndex(of: "=") else { continue }
                if t[..<eq] == name { return String(t[t.index(after: eq)...]) }
            }
        }
        return nil
    }

    /// Accept-Language's ranges, lowercased, best first (a stable sort by
    /// q-value; q=0 and malformed q-values dropped).
    public static func rankedLanguages(_ value: String) -> [String] {
        var out: [(String, Double, Int)] = []
        for (i, item) in value.split(separator: ",").enumerated() {
            let parts = item.split(separator: ";")
            guard let tag = parts.first?.trimmedOWS().lowercased(), !tag.isEmpty else { continue }
            var q = 1.0
            for p in parts.dropFirst() {
                let kv = p.trimmedOWS().lowercased()
                if kv.hasPrefix("q=") { q = Double(kv.dropFirst(2)) ?? -1 }
            }
            guard q > 0, q <= 1 else { continue }
            out.append((tag, q, i))
        }
        return out.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.2 < $1.2 }.map(\.0)
    }

    /// The first of `supported` the ranked ranges take (RFC 4647 lookup: a
    /// range matches a language it equals or is a prefix of, `de` takes
    /// `de-ch`; `de-ch` falls back to `de`; `*` takes the first); else the first.
    public static func bestLanguage(_ ranked: [String], of supported: [String]) -> String {
        for r in ranked {
            if r == "*" { return supported[0] }
            var range = Substring(r)
            while !range.isEmpty {
                if let s = supported.first(where: { $0 == range || $0.hasPrefix(range + "-") }) { return s }
                guard let dash = range.lastIndex(of: "-") else { break }
                range = range[..<dash]
            }
        }
        return supported[0]
    }

    /// The key of a representation edge made from the one stored under `key`
    /// (compressed, or decoded): same primary key, then NUL and the coding.
    /// It lives in the same shard as `key`, is dropped whenever `key` is stored
    /// again or removed, and is purged with it.
    public static func derived(_ key: String, _ coding: ContentCoding) -> String { key + "\u{0}" + coding.token }

    /// Every derived key `key` can have.
    public static func allDerived(_ key: String) -> [String] { ContentCoding.allCases.map { derived(key, $0) } }

    /// Separates a primary key from the method and body digest of a cached
    /// POST (its own entry, in the same shard, purged with the URL).
    public static let bodySeparator = "\u{1}"

    /// The primary key a derived or POST key belongs to (itself for a primary key).
    public static func base(_ key: String) -> Substring {
        // (The separator found in the bytes in place: the UTF-8 view's iterator is slow.)
        let n = key.utf8.withContiguousStorageIfAvailable { p -> Int in
            var i = 0
            while i < p.count && p[i] > 1 { i += 1 }
            return i
        }
        guard let n else { return key.utf8.firstIndex(where: { $0 <= 1 }).map { key[..<$0] } ?? Substring(key) }
        return key[..<key.utf8.index(key.utf8.startIndex, offsetBy: n)]
    }

    static let caseInsensitive: Set<String> = ["accept-encoding", "accept", "accept-language", "accept-charset", "origin", "host"]
}
