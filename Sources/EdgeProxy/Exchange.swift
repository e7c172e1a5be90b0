// One request being served, apart from the connection it came on: what was
// asked (method, normalized target and host), where it goes (tenant, route,
// origin leg), what the cache and the coder did, how the response is framed,
// and what the access log and counters will say. A transport makes a fresh
// one for each request it parses (nothing is reset by hand); a background
// refresh or an orphaned fill keeps its exchange after the client has gone.
// Thread rules: see Worker.swift (the worker that made it owns it).
import EdgeHTTP
import EdgeCache
import EdgeProtect

/// Who a request came from, as every phase sees it whatever the transport:
/// the peer's address, whether it is a trusted proxy, whether the connection
/// is TLS, and the tenant its handshake (SNI) chose.
struct Peer {
    var ip: [UInt8] = []
    var trusted = false
    var https = false
    var sniTenant: String?
    var sni: [UInt8] = []
}

/// How far a request body got towards the origin; its framing state (bytes
/// left, the chunk decoder) rides along while it is read.
enum BodyProgress {
    /// No body, or none (more) will be read: answered from the cache with its
    /// keyed body, or given up on (an error, a timeout; the connection closes).
    case none
    /// To come; none of it sent on yet.
    case unread(RequestBody)
    /// Partly sent on.
    case streaming(RequestBody)
    /// All of it sent on.
    case complete
}

/// How far the response got: nothing sent, its head out, or cut short after
/// the head (the client sees a truncated message, never a complete one).
enum ResponseProgress { case notStarted, started, cut }

final class Exchange {
    /// Unique on its worker: what a Waiter names (Collapsing.swift).
    var id: UInt64 = 0
    /// In the worker's `waiting` table (a follower that may be woken).
    var waiting = false
    /// Parked while a storage tier read the response from disk (its hit says `detail=disk`).
    var readFromDisk = false
    /// A range's disk answer (blocks as sent) was not usable as it is: the
    /// record is read whole, to be revalidated (Cache.swift, cacheLookup).
    var readWhole = false
    /// A leader whose fill's disk tier is behind (a full write queue): it reads
    /// no more of the origin's body until woken (Collapsing.swift, heldForDisk).
    var heldByDisk = false
    // What was asked.
    /// The request head as parsed, its length, and, for an exchange that waits
    /// and runs on later (a parked follower, a cached POST waiting for its
    /// body), a copy of its bytes the exchange owns (field offsets point into
    /// it): that request outlives the connection's buffer, and a woken follower
    /// runs again from it without parsing anything (Phases.keepHead).
    var head = RequestHead()
    var headLength = 0
    var headBytes: IOBuffer?
    var method = Method.other   // (until a head is parsed: what a refused unparsable request logs)
    /// The method's bytes when it is not one of the known ones.
    var methodText: [UInt8] = []
    /// The target, normalized once (EdgeHTTP.TargetNormalizer); `pathLength` bytes are the path.
    var target: [UInt8]
    var pathLength = 0
    /// The host, normalized once (EdgeHTTP.Authority): tenant, cache key and what the origin sees.
    var host: [UInt8] = []

    /// Who asked (set by the transport when the exchange begins).
    var peer = Peer()
    /// What the access log and the live tail report of the request head, kept
    /// before the head's bytes go (AccessLog.captureRequestFacts): User-Agent,
    /// Referer and a client's request id as ranges of `logText`, a byte store
    /// that moves on from exchange to exchange like `target`'s.
    var logText: [UInt8] = []
    var userAgent = 0..<0
    var referer = 0..<0
    var requestID = 0..<0
    /// The request id edge made (when the client gave none worth keeping): 128
    /// bits, written as 32 hex digits wherever the id goes; (0, 0) until made.
    var madeID: (UInt64, UInt64) = (0, 0)
    @inline(__always) var hasRequestID: Bool { !requestID.isEmpty || madeID != (0, 0) }
    /// The client a trusted proxy named (its X-Forwarded-For entry), as text;
    /// nil: the peer itself.
    var realClient: [UInt8]?
    /// The origin's final status, and the bytes read from and written to origins.
    var originStatus = 0
    var originBytesIn: Int64 = 0
    var originBytesOut: Int64 = 0

    // Where it goes.
    var tenant: Tenant?
    var route: Route?
    /// The origin group this request goes to: the route's, or its split's side
    /// (`splitSide`, 0: the first, cached one).
    var group: OriginGroup?
    var splitSide = 0
    /// "Set-Cookie: ...\r\n" for a split's sticky cookie edged gave this client (pickSide).
    var stickyCookie: [UInt8]?
    /// A mirror copy waiting for the request body (Mirror.swift).
    var mirror: MirrorCopy?
    /// A WebSocket upgrade the route allows: forwarded with its upgrade fields,
    /// and a tunnel once the origin answers 101 (Tunnel.swift).
    var upgrade = false
    /// What the request filter did (Protection.swift), and the limit it hit.
    var protection = ProtectionAction.none
    var limit: RuntimeRateLimit?
    /// The rule (or signature) behind `protection`, tags of the rules that
    /// matched ("a,b"), and header edits rules made for the origin request.
    var rule: RuntimeRule?
    var signature: SignatureCategory?
    var tags: [UInt8] = []
    var ruleEdits: [Edits] = []

    // The request body.
    var bodyState = BodyProgress.none
    /// Nothing (more) of the request body is to be read.
    @inline(__always) var bodyDone: Bool {
        switch bodyState { case .none, .complete: return true; case .unread, .streaming: return false }
    }
    /// Some of it went on to the origin (a retry would send it twice).
    @inline(__always) var bodyStarted: Bool {
        switch bodyState { case .streaming, .complete: return true; case .none, .unread: return false }
    }
    /// The framing still to be followed (what the forward head announces).
    @inline(__always) var body: RequestBody {
        switch bodyState { case .unread(let b), .streaming(let b): return b; case .none, .complete: return .none }
    }
    var bodyBytes: Int64 = 0
    /// This request's body is complete in the input buffer and keys the cache.
    var bodyKeyed = false

    // The origin leg.
    /// The request head as the origin gets it (kept so a retry can send it again).
    var fwd: IOBuffer?
    var origin: OriginConnection?
    /// Servers of the group tried (bits) and attempts made.
    var tried: UInt64 = 0
    var attempts = 0
    /// A `hash` group's key for this request (nil: none, round-robin).
    var balanceKey: UInt64?
    var originStartMicros: Int64 = 0
    var originMicros: Int64 = -1
    var serverLabel: [UInt8]?
    /// Origin requests made and failed for this exchange (stats).
    var originAttempts = 0
    var originErrors = 0
    /// The last origin failure of this exchange (logged as "error").
    var originError: StaticString?
    /// An attempt of this exchange timed out (connect or read): when no server is
    /// left to try, the answer is 504, not 502.
    var originTimedOut = false

    // The cache, collapsing, compression, the directory origin.
    var cache = ExchangeCache()
    /// The body phase .stream copies (a collapsed follower's leader's fill, a
    /// disk tier's large body), how far it has copied, and where it stops.
    var stream: (any StreamedBody)?
    var streamOffset = 0
    var streamEnd = 0
    /// A GET with a strong entity tag whose answer is streamed, or relayed
    /// from the origin at 64 KiB or more: how to finish it from the origin if
    /// it breaks off after its head (Resume.swift).
    var resume: StreamResume?
    /// Compression: the request's Accept-Encoding and Range (routes that
    /// compress only), and the codec of a body being transformed.
    var acceptEncoding: String?
    var rangeRequested = false
    var coder: BodyCoder?
    var file = StaticFile()

    // The response.
    var status = 0
    var response = ResponseProgress.notStarted
    /// Interim (1xx) responses the origin sent before its final one.
    var interimCount = 0
    /// Its head has gone out (to the writer): edge cannot answer otherwise any more.
    @inline(__always) var responseStarted: Bool { response != .notStarted }
    /// It was cut short after its head went out (logged "complete": false).
    @inline(__always) var responseCut: Bool { response == .cut }
    /// How the HTTP/1 writer frames this response's body (HTTP1Writer.headEnd).
    var framing = ClientFraming.asIs
    /// Why a tunnel ended (the access log's "closed_by").
    var tunnelEnd: StaticString?

    // The log and the counters.
    /// Between the request's head and the end of its response (the access log line not yet written).
    var inExchange = false
    /// A background refresh's own exchange (not a client request: not counted in stats).
    var isRefresh = false
    var bytesIn: Int64 = 0
    /// The connection's bytes sent when this exchange began (bytes_out is the difference).
    var sentAtStart: Int64 = 0
    var startMicros: Int64 = 0

    init(target: [UInt8] = []) { self.target = target }
}
