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
    @inline(__always) public static func classify(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> KnownField {
        let n = end - start
        if n >= 6 && equalsLowercase(p, start, start + 6, "proxy-") { return .proxyAny }
        switch n {
        case 2: return equalsLowercase(p, start, end, "te") ? .te : .other
        case 3: return equalsLowercase(p, start, end, "via") ? .via : .other
        case 4:
            if equalsLowercase(p, start, end, "host") { return .host }
            if equalsLowercase(p, start, end, "date") { return .date }
            return .other
        case 5: return equalsLowercase(p, start, end, "range") ? .range : .other
        case 6:
            if equalsLowercase(p, start, end, "expect") { return .expect }
            if equalsLowercase(p, start, end, "pragma") { return .pragma }
            return .other
        case 7:
            if equalsLowercase(p, start, end, "upgrade") { return .upgrade }
            if equalsLowercase(p, start, end, "trailer") { return .trailer }
            if equalsLowercase(p, start, end, "referer") { return .referer }
            return .other
        case 8:
            if equalsLowercase(p, start, end, "if-range") { return .ifRange }
            if equalsLowercase(p, start, end, "cdn-loop") { return .cdnLoop }
            return .other
        case 9: return equalsLowercase(p, start, end, "forwarded") ? .forwarded : .other
        case 10:
            if equalsLowercase(p, start, end, "connection") { return .connection }
            if equalsLowercase(p, start, end, "keep-alive") { return .keepAlive }
            if equalsLowercase(p, start, end, "user-agent") { return .userAgent }
            return .other
        case 12: return equalsLowercase(p, start, end, "x-request-id") ? .xRequestID : .other
        case 13:
            if equalsLowercase(p, start, end, "if-none-match") { return .ifNoneMatch }
            if equalsLowercase(p, start, end, "cache-control") { return .cacheControl }
            if equalsLowercase(p, start, end, "authorization") { return .authorization }
            return .other
        case 14:
            if equalsLowercase(p, start, end, "content-length") { return .contentLength }
            if equalsLowercase(p, start, end, "http2-settings") { return .http2Settings }
            return .other
        case 15:
            if equalsLowercase(p, start, end, "x-forwarded-for") { return .xForwardedFor }
            if equalsLowercase(p, start, end, "accept-encoding") { return .acceptEncoding }
            return .other
        case 16:
            if equalsLowercase(p, start, end, "x-forwarded-host") { return .xForwardedHost }
            return .other
        case 17:
            if equalsLowercase(p, start, end, "transfer-encoding") { return .transferEncoding }
            if equalsLowercase(p, start, end, "x-forwarded-proto") { return .xForwardedProto }
            if equalsLowercase(p, start, end, "if-modified-since") { return .ifModifiedSince }
            return .other
        default: return .other
        }
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
