// Cache-Control and its CDN-targeted variants (RFC 9111 §5.2, RFC 9213), parsed
// into a value. Pure: strings in, directives out.
#if canImport(EdgeHTTP)
import EdgeHTTP
#endif

/// The directives of one Cache-Control-like field (all its lines together).
public struct CacheControl: Equatable, Sendable {
    // Response directives (§5.2.2)
    public var maxAge: Int64?
    public var sMaxAge: Int64?
    public var noCache = false
    /// `no-cache="field"`: the listed fields must not be sent without revalidation.
    public var noCacheFields: [String] = []
    public var noStore = false
    public var isPrivate = false
    public var privateFields: [String] = []
    public var isPublic = false
    public var mustRevalidate = false
    public var proxyRevalidate = false
    public var mustUnderstand = false
    public var noTransform = false
    public var immutable = false
    // RFC 5861
    public var staleWhileRevalidate: Int64?
    public var staleIfError: Int64?
    // Request directives (§5.2.1)
    /// `max-stale` with no value means any staleness: `Int64.max`.
    public var maxStale: Int64?
    public var minFresh: Int64?
    public var onlyIfCached = false
    /// A freshness directive was present but unusable (bad number, or repeated
    /// with different values): the response is treated as stale (§4.2.1).
    public var invalidFreshness = false

    public init() {}

    /// delta-seconds larger than this are taken as this (§1.2.2).
    public static let deltaCap: Int64 = 2_147_483_648

    /// Parses all lines of one field.
    public static func parse(_ lines: [String]) -> CacheControl {
        var cc = CacheControl()
        for line in lines {
            for (name, value) in directives(line) {
                cc.apply(name, value)
            }
        }
        return cc
    }

    public static func parse(_ line: String) -> CacheControl { parse([line]) }

    /// A targeted field (CDN-Cache-Control, RFC 9213 §2.1): a Structured Field
    /// dictionary. nil when it does not parse as one, or is empty: the field is
    /// then ignored as a whole. A directive whose value has the wrong type
    /// (`max-age="60"`, `max-age=1.5`, `no-store=3`) is not used; `?0` turns a
    /// flag off; parameters are ignored.
    public static func parseTargeted(_ lines: [String]) -> CacheControl? {
        guard let members = StructuredFields.dictionary(lines) else { return nil }
        var cc = CacheControl()
        for (key, item) in members {
            switch (key, item) {
            case ("max-age", .integer(let n)), ("s-maxage", .integer(let n)),
                 ("stale-while-revalidate", .integer(let n)), ("stale-if-error", .integer(let n)):
                if n >= 0 { cc.apply(key, String(min(n, deltaCap))) }
            case ("no-cache", .string(let s)), ("private", .string(let s)):
                cc.apply(key, s)
            case ("no-store", .boolean(true)), ("public", .boolean(true)), ("must-revalidate", .boolean(true)),
                 ("proxy-revalidate", .boolean(true)), ("must-understand", .boolean(true)), ("no-transform", .boolean(true)),
                 ("immutable", .boolean(true)), ("no-cache", .boolean(true)), ("private", .boolean(true)):
                cc.apply(key, nil)
            default: break   // off (?0), the wrong type, or not a response directive of ours
            }
        }
        return cc
    }

    /// Surrogate-Control (Edge Architecture 1.0) uses Cache-Control's syntax,
    /// `#( token [ "=" ( token / quoted-string ) ] )`; a field that breaks it (a
    /// bare `=`, an unterminated string, a character no token has) is ignored as
    /// a whole: nil.
    public static func parseStrict(_ lines: [String]) -> CacheControl? {
        for line in lines where !wellFormed(line) { return nil }
        return parse(lines)
    }

    static func wellFormed(_ s: String) -> Bool {
        let u = Array(s.utf8)
        var i = 0, members = 0
        func ows() { while i < u.count && (u[i] == 32 || u[i] == 9) { i += 1 } }
        while i < u.count {
            ows()
            if i < u.count && u[i] == 44 { i += 1; continue }   // empty list elements are allowed
            if i == u.count { break }
            let s = i
            while i < u.count && isTokenChar(u[i]) { i += 1 }
            guard i > s else { return false }
            members += 1
            ows()
            if i < u.count && u[i] == 61 {
                i += 1
                ows()
                if i < u.count && u[i] == 34 {
                    i += 1
                    while i < u.count && u[i] != 34 {
                        if u[i] == 92 { i += 1 }
                        guard i < u.count, u[i] == 9 || (u[i] >= 0x20 && u[i] != 0x7F) else { return false }
                        i += 1
                    }
                    guard i < u.count else { return false }
                    i += 1
                } else {
                    let vs = i
                    while i < u.count && isTokenChar(u[i]) { i += 1 }
                    guard i > vs else { return false }
                }
                ows()
            }
            guard i == u.count || u[i] == 44 else { return false }
        }
        return members > 0
    }

    /// Where one directive lies in a field's bytes: its name, and its value
    /// (nil: none), quoted or not (a quoted value's range is inside the quotes,
    /// escapes still in it).
    struct DirectiveSpan {
        var name: Range<Int>
        var value: Range<Int>?
        var quoted = false
    }

    /// Walks the directives of `u[start..<end]` (`a, b=1, c="x, y"`): the one
    /// splitting rule for Cache-Control-like fields, used by the string parser
    /// (`directives`) and by the byte checks (`saysNoStore`). Empty names are skipped.
    @inline(__always)
    static func forEachDirective(_ u: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ visit: (DirectiveSpan) -> Void) {
        var i = start
        func skipOWS() { while i < end && (u[i] == 32 || u[i] == 9) { i += 1 } }
        while i < end {
            skipOWS()
            let ns = i
            while i < end && u[i] != 61 && u[i] != 44 { i += 1 }
            var ne = i
            while ne > ns && (u[ne - 1] == 32 || u[ne - 1] == 9) { ne -= 1 }
            var span = DirectiveSpan(name: ns..<ne)
            if i < end && u[i] == 61 {
                i += 1
                skipOWS()
                if i < end && u[i] == 34 {
                    i += 1
                    let vs = i
                    while i < end && u[i] != 34 {
                        if u[i] == 92 && i + 1 < end { i += 1 }
                        i += 1
                    }
                    span.value = vs..<min(i, end)
                    span.quoted = true
                    i += 1
                    while i < end && u[i] != 44 { i += 1 }
                } else {
                    let vs = i
                    while i < end && u[i] != 44 { i += 1 }
                    var ve = i
                    while ve > vs && (u[ve - 1] == 32 || u[ve - 1] == 9) { ve -= 1 }
                    span.value = vs..<ve
                }
            }
            if i < end && u[i] == 44 { i += 1 }
            if ne > ns { visit(span) }
        }
    }

    /// Splits `a, b=1, c="x, y"` into (lowercased name, unquoted value) pairs.
    static func directives(_ s: String) -> [(String, String?)] {
        var out: [(String, String?)] = []
        var s = s
        s.withUTF8 { b in
            let u = UnsafeRawBufferPointer(b)
            forEachDirective(u, 0, u.count) { d in
                let name = String(decoding: u[d.name], as: UTF8.self).lowercased()
                var value: String?
                if let r = d.value {
                    if d.quoted {
                        var v: [UInt8] = []
                        var i = r.lowerBound
                        while i < r.upperBound {
                            if u[i] == 92 && i + 1 < r.upperBound { i += 1 }
                            v.append(u[i]); i += 1
                        }
                        value = String(decoding: v, as: UTF8.self)
                    } else {
                        value = String(decoding: u[r], as: UTF8.self)
                    }
                }
                out.append((name, value))
            }
        }
        return out
    }

    /// Whether the field value `p[start..<end]` has directive `name` (lowercase),
    /// by the same splitting as `parse`, without making a string.
    public static func has(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ name: StaticString) -> Bool {
        var found = false
        forEachDirective(p, start, end) { d in
            if !found && equalsLowercase(p, d.name.lowerBound, d.name.upperBound, name) { found = true }
        }
        return found
    }

    /// Whether the field value `p[start..<end]` has `no-store`, and whether it
    /// has `must-understand` (which may override it), by the same splitting as
    /// `parse`, without making a string.
    public static func noStoreFlags(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> (noStore: Bool, mustUnderstand: Bool) {
        var noStore = false, mustUnderstand = false
        forEachDirective(p, start, end) { d in
            if equalsLowercase(p, d.name.lowerBound, d.name.upperBound, "no-store") { noStore = true }
            else if equalsLowercase(p, d.name.lowerBound, d.name.upperBound, "must-understand") { mustUnderstand = true }
        }
        return (noStore, mustUnderstand)
    }

    /// delta-seconds: digits only; capped; nil when invalid.
    static func seconds(_ v: String?) -> Int64? {
        guard let v, !v.isEmpty, v.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        if v.utf8.count > 10 { return deltaCap }
        return min(Int64(v) ?? deltaCap, deltaCap)
    }

    /// A freshness directive's value merged with an earlier one; invalid or
    /// conflicting values mark the freshness information invalid.
    static func merge(_ old: Int64?, _ v: String?, _ invalid: inout Bool) -> Int64? {
        guard let s = seconds(v) else { invalid = true; return old }
        if let o = old, o != s { invalid = true }
        return old.map { min($0, s) } ?? s
    }

    static func fieldList(_ v: String?) -> [String] {
        guard let v else { return [] }
        return v.split(separator: ",").map { $0.trimmedOWS().lowercased() }.filter { !$0.isEmpty }
    }

    mutating func apply(_ name: String, _ value: String?) {
        switch name {
        case "max-age": maxAge = CacheControl.merge(maxAge, value, &invalidFreshness)
        case "s-maxage": sMaxAge = CacheControl.merge(sMaxAge, value, &invalidFreshness)
        case "no-cache":
            if let v = value { noCacheFields += CacheControl.fieldList(v) } else { noCache = true }
        case "no-store": noStore = true
        case "private":
            if let v = value { privateFields += CacheControl.fieldList(v) } else { isPrivate = true }
        case "public": isPublic = true
        case "must-revalidate": mustRevalidate = true
        case "proxy-revalidate": proxyRevalidate = true
        case "must-understand": mustUnderstand = true
        case "no-transform": noTransform = true
        case "immutable": immutable = true
        case "stale-while-revalidate":
            if let s = CacheControl.seconds(value) { staleWhileRevalidate = staleWhileRevalidate.map { min($0, s) } ?? s }
        case "stale-if-error":
            if let s = CacheControl.seconds(value) { staleIfError = staleIfError.map { min($0, s) } ?? s }
        case "max-stale":
            if value == nil { maxStale = Int64.max } else if let s = CacheControl.seconds(value) { maxStale = s }
        case "min-fresh":
            if let s = CacheControl.seconds(value) { minFresh = s }
        case "only-if-cached": onlyIfCached = true
        default: break   // unknown extensions are ignored (§5.2.3)
        }
    }
}

