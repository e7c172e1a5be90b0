// What the cache did with one request, as a value: it is written into the
// Cache-Status field (RFC 9211) and the access log, and it decides the counter
// outcome, without a String built or parsed per request. Pure.
#if canImport(EdgeHTTP)
import EdgeHTTP
#endif

public struct CacheStatus: Equatable, Sendable {
    /// The first parameter: a hit, or why the request was forwarded (`fwd=`).
    public enum Kind: UInt8, Sendable { case none, hit, bypass, miss, uriMiss, varyMiss, stale }
    /// `detail=`: more about how the answer came about.
    public enum Detail: UInt8, Sendable {
        case none, staleIfError, staleWhileRevalidate, collapsed, backgroundRefresh, pass, contentTypeMismatch, decodeFailed
        /// Disconnected from the origin, served stale (a route's stale_if_disconnected).
        case disconnected
        /// A route's bypass rule matched: a cookie, a header field, the path.
        case bypassCookie, bypassHeader, bypassPath
        /// Read from the disk tier.
        case disk
    }

    public var kind = Kind.none
    public var detail = Detail.none
    /// `fwd-status=`: the origin's status for a forwarded request (0: not said).
    public var fwdStatus = 0
    /// `stored`: the origin's answer is being stored.
    public var stored = false

    public init() {}
    public init(_ kind: Kind, _ detail: Detail = .none) { self.kind = kind; self.detail = detail }

    /// Served from the cache (fresh or stale), not from an origin exchange.
    public var isHit: Bool { kind == .hit }

    /// The parameters after "edge; ", e.g. `hit; detail=collapsed` or
    /// `fwd=uri-miss; fwd-status=200; stored`. Nothing at all reads as `fwd=bypass`.
    public func append(to b: IOBuffer) {
        switch kind {
        case .none, .bypass: b.append("fwd=bypass")
        case .hit: b.append("hit")
        case .miss: b.append("fwd=miss")
        case .uriMiss: b.append("fwd=uri-miss")
        case .varyMiss: b.append("fwd=vary-miss")
        case .stale: b.append("fwd=stale")
        }
        if fwdStatus > 0 {
            b.append("; fwd-status=")
            b.append(decimal: Int64(fwdStatus))
        }
        switch detail {
        case .none: break
        case .staleIfError: b.append("; detail=stale-if-error")
        case .staleWhileRevalidate: b.append("; detail=stale-while-revalidate")
        case .collapsed: b.append("; detail=collapsed")
        case .backgroundRefresh: b.append("; detail=background-refresh")
        case .pass: b.append("; detail=pass")
        case .contentTypeMismatch: b.append("; detail=content-type-mismatch")
        case .decodeFailed: b.append("; detail=decode-failed")
        case .disconnected: b.append("; detail=disconnected")
        case .bypassCookie: b.append("; detail=bypass-cookie")
        case .bypassHeader: b.append("; detail=bypass-header")
        case .bypassPath: b.append("; detail=bypass-path")
        case .disk: b.append("; detail=disk")
        }
        if stored { b.append("; stored") }
    }
}
