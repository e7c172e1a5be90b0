// The header names the proxy acts on, recognised once at parse time so that
// later phases switch on a small enum instead of comparing strings.

/// A field name the proxy gives meaning to; `.other` for the rest.
public enum KnownField: UInt8, Sendable {
    case other
    case host
    case contentLength
    case transferEncoding
    case connection
    case keepAlive
    case te
    case trailer
    case upgrade
    case proxyAny          // Proxy-Connection, Proxy-Authorization, Proxy-Authenticate, ...
    case expect
    case xForwardedFor
    case xForwardedProto
    case xForwardedHost
    case forwarded
    case via
    case date
    case http2Settings
    case ifNoneMatch
    case ifModifiedSince
    case range
    case ifRange
    case cacheControl
    case pragma
    case authorization
    case acceptEncoding
    case cdnLoop
    /// Fields the access log reports (and X-Request-ID, which edge sets itself).
    case userAgent
    case referer
    case xRequestID
    /// A name with "_" whose "-" spelling is a field edge acts on or removes
    /// (`X_Forwarded_For`, `X_Real_IP`): gateways that map both spellings to
    /// one variable (CGI, WSGI) would take it for the real one. Never forwarded.
    case underscoreAlias

    /// Hop-by-hop fields (RFC 9110 §7.6.1) that a proxy never forwards.
    @inline(__always) public var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .te, .trailer, .upgrade, .proxyAny, .transferEncoding, .http2Settings:
            return true
        default:
            return false
        }
    }

    /// Classifies `p[start..<end]`, compared case-insensitively.
    /// The field named by `p[start..<end]`, by its first letter (case folded),
    /// then its length, then one compare: a name edge does not act on costs
    /// a load and a switch, most often.
    @inline(__always) public static func classify(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> KnownField {
        let n = end - start
        guard n > 0 else { return .other }
        @inline(__always) func named(_ lit: StaticString) -> Bool { equalsLowercase(p, start, end, lit) }
        switch p[start] | 0x20 {
        case 0x61:   // a
            if n == 13 { return named("authorization") ? .authorization : .other }
            if n == 15 { return named("accept-encoding") ? .acceptEncoding : .other }
        case 0x63:   // c
            switch n {
            case 8: return named("cdn-loop") ? .cdnLoop : .other
            case 10: return named("connection") ? .connection : .other
            case 13: return named("cache-control") ? .cacheControl : .other
            case 14: return named("content-length") ? .contentLength : .other
            default: break
            }
        case 0x64:   // d
            if n == 4 { return named("date") ? .date : .other }
        case 0x65:   // e
            if n == 6 { return named("expect") ? .expect : .other }
        case 0x66:   // f
            if n == 9 { return named("forwarded") ? .forwarded : .other }
        case 0x68:   // h
            if n == 4 { return named("host") ? .host : .other }
            if n == 14 { return named("http2-settings") ? .http2Settings : .other }
        case 0x69:   // i
            switch n {
            case 8: return named("if-range") ? .ifRange : .other
            case 13: return named("if-none-match") ? .ifNoneMatch : .other
            case 17: return named("if-modified-since") ? .ifModifiedSince : .other
            default: break
            }
        case 0x6B:   // k
            if n == 10 { return named("keep-alive") ? .keepAlive : .other }
        case 0x70:   // p
            if n >= 6 && equalsLowercase(p, start, start + 6, "proxy-") { return .proxyAny }
            if n == 6 { return named("pragma") ? .pragma : .other }
        case 0x72:   // r
            if n == 5 { return named("range") ? .range : .other }
            if n == 7 { return named("referer") ? .referer : .other }
        case 0x74:   // t
            switch n {
            case 2: return named("te") ? .te : .other
            case 7: return named("trailer") ? .trailer : .other
            case 17: return named("transfer-encoding") ? .transferEncoding : .other
            default: break
            }
        case 0x75:   // u
            if n == 7 { return named("upgrade") ? .upgrade : .other }
            if n == 10 { return named("user-agent") ? .userAgent : .other }
        case 0x76:   // v
            if n == 3 { return named("via") ? .via : .other }
        case 0x78:   // x
            switch n {
            case 12: return named("x-request-id") ? .xRequestID : .other
            case 15: return named("x-forwarded-for") ? .xForwardedFor : .other
            case 16: return named("x-forwarded-host") ? .xForwardedHost : .other
            case 17: return named("x-forwarded-proto") ? .xForwardedProto : .other
            default: break
            }
        default: break
        }
        return .other
    }
}

extension KnownField {
    /// Names whose "_" spelling is refused outright: they decide framing.
    static let framingNames: [[UInt8]] = ["content-length", "transfer-encoding"].map { Array($0.utf8) }
    /// Names whose "_" spelling is dropped (`.underscoreAlias`).
    static let aliasedNames: [[UInt8]] = (["keep-alive", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "if-none-match",
                                           "if-modified-since", "if-range", "cache-control", "accept-encoding", "http2-settings",
                                           "proxy-connection", "proxy-authorization"] + OverrideFields.names).map { Array($0.utf8) }

    /// For a field name containing "_": true when its "-" spelling is in `names`.
    static func dashed(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int, in names: [[UInt8]]) -> Bool {
        outer: for n in names where n.count == e - s {
            for k in 0..<n.count {
                var b = asciiLower(p[s + k])
                if b == 95 { b = 45 }
                if b != n[k] { continue outer }
            }
            return true
        }
        return false
    }
}

/// One parsed field line: byte offsets into the buffer the head was parsed from.
public struct Field: Sendable, Equatable {
    public var nameStart: Int
    public var nameEnd: Int
    public var valueStart: Int
    public var valueEnd: Int
    public var known: KnownField
    @inline(__always) public var name: Range<Int> { nameStart..<nameEnd }
    @inline(__always) public var value: Range<Int> { valueStart..<valueEnd }
}

/// Request methods the proxy distinguishes.
public enum Method: UInt8, Sendable {
    case get, head, post, put, delete, options, patch, trace, connect, other

    /// Safe and idempotent methods may be retried on another connection (RFC 9110 §9.2.2).
    public var isIdempotent: Bool {
        switch self {
        case .get, .head, .put, .delete, .options, .trace: return true
        default: return false
        }
    }

    /// The method's token; empty for `.other` (its bytes live with the request).
    public var token: StaticString {
        switch self {
        case .get: return "GET"
        case .head: return "HEAD"
        case .post: return "POST"
        case .put: return "PUT"
        case .delete: return "DELETE"
        case .options: return "OPTIONS"
        case .patch: return "PATCH"
        case .trace: return "TRACE"
        case .connect: return "CONNECT"
        case .other: return ""
        }
    }

    static func classify(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> Method {
        // Methods are case-sensitive (RFC 9110 §9.1).
        func eq(_ lit: StaticString) -> Bool {
            let n = lit.utf8CodeUnitCount
            guard e - s == n else { return false }
            for i in 0..<n where p[s + i] != lit.utf8Start[i] { return false }
            return true
        }
        switch e - s {
        case 3: return eq("GET") ? .get : eq("PUT") ? .put : .other
        case 4: return eq("HEAD") ? .head : eq("POST") ? .post : .other
        case 5: return eq("PATCH") ? .patch : eq("TRACE") ? .trace : .other
        case 6: return eq("DELETE") ? .delete : .other
        case 7: return eq("OPTIONS") ? .options : eq("CONNECT") ? .connect : .other
        default: return .other
        }
    }
}
