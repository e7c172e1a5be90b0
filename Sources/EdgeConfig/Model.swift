// The configuration model: plain values, validated at load time. Nothing here
// touches sockets; the proxy turns these values into runtime tables.
import Glibc
#if canImport(EdgeHTTP)   // (the config fuzzer compiles these modules as one: tools/fuzz/run.sh)
import EdgeHTTP
import EdgeProtect
#endif

/// One directory of the disk tier.
public struct CacheDisk: Sendable, Equatable {
    public var path: String
    public var size: Int64
    public init(path: String, size: Int64) { self.path = path; self.size = size }
    /// The smallest size a directory may have (four 1 MiB segments).
    public static let minimumSize: Int64 = 4 << 20
}

/// Server-wide settings: listeners, limits that apply before a tenant is known.
public struct ServerConfig: Sendable, Equatable {
    public var httpListen = ":8080"
    /// HTTPS listener; nil means ":8443" when any tenant has TLS, none otherwise.
    public var httpsListen: String?
    /// Where edged keeps state (pid file, internal CA, ACME account and certificates).
    public var stateDir = "state"
    /// ACME defaults for tenants with `"tls": "acme"`.
    public var acme = ACMEServerConfig()
    /// Memory cache size (bytes, all tenants) and the largest object it keeps.
    public var cacheMemoryBytes: Int64 = 256 << 20
    public var cacheMaxObjectBytes: Int64 = 8 << 20
    /// The disk tier's directories (each with its size); nil: the default,
    /// `STATE/cache` of 1 GiB (less on a small filesystem); empty: no disk tier.
    public var cacheDisks: [CacheDisk]?
    /// Which stored objects the disk tier writes: "all", or "second_request"
    /// (objects asked for a second time: one-hit wonders never wear the disk).
    public var cacheDiskAdmission = "all"
    /// How often the session ticket key rotates (older keys still decrypt for two more periods).
    public var ticketRotationMillis: Int64 = 12 * 3_600_000
    public var workers = 0                       // 0 = one per core
    public var head = HeadLimits()
    /// Whole request head must arrive within this (408).
    public var headerTimeoutMillis: Int64 = 10_000
    /// Longest pause between two reads of a request body (408).
    public var bodyIdleTimeoutMillis: Int64 = 30_000
    /// Slowest request body accepted, in bytes per second (0: off), after a
    /// grace period: each byte received earns 1/rate seconds, banked up to the
    /// grace period; when the bank runs dry, 408 (time spent waiting on the
    /// origin's backpressure never counts). Like Apache's mod_reqtimeout MinRate.
    public var bodyMinRate: Int64 = 500
    public var bodyRateGraceMillis: Int64 = 20_000
    /// Idle keep-alive connection lifetime.
    public var keepAliveTimeoutMillis: Int64 = 30_000
    /// Longest pause writing to a client before giving up.
    public var sendTimeoutMillis: Int64 = 60_000
    /// Open client connections per worker beyond which new ones are closed at once.
    public var maxConnectionsPerWorker = 16_384
    /// Open client connections from one address (all workers together) beyond
    /// which new ones from it are closed at once; trusted proxies are exempt; 0: no cap.
    public var maxConnectionsPerIP = 1000
    /// New connections per second from one address (all workers together),
    /// beyond which they are closed before any TLS or HTTP work (nil: no limit).
    public var newConnectionsPerIP: RateSpec?
    /// Requests served on one connection before it is closed (like nginx's
    /// keepalive_requests; the last response says `Connection: close`). 0: no cap.
    public var maxRequestsPerConnection = 10_000
    /// Keys the rate-limit table holds (all limits, all tenants; 16 bytes each).
    public var rateLimitKeys = 1 << 20
    /// Every connection on the listeners starts with a PROXY protocol header
    /// (v1 or v2; edged behind an L4 balancer), which names the client; it
    /// must arrive within `proxyProtocolTimeoutMillis`, or the connection closes.
    public var proxyProtocol = false
    public var proxyProtocolTimeoutMillis: Int64 = 5_000
    /// Addresses refused at accept, before TLS (server-wide; tenants have their own).
    public var access = PrefixList()
    /// Graceful stop: in-flight requests get this long to finish.
    public var shutdownTimeoutMillis: Int64 = 30_000
    /// Peers whose X-Forwarded-* fields are kept and extended instead of replaced.
    public var trustedProxies: [String] = []
    /// "stdout", "off", or a file path.
    public var accessLog = "stdout"
    /// What an access log line says: JSON with every field (the default) or
    /// with chosen ones, or nginx/Apache's `combined` / `common` text.
    public var logFormat = LogFormat.json(.all)
    /// Each request carries an id: a valid `X-Request-ID` from the client is
    /// kept, else one is made (32 hex digits); it goes to the origin, back to
    /// the client and into the log.
    public var requestID = true
    /// HTTP/2 with prior knowledge on the plain listener (RFC 9113 §3.3): a
    /// connection that opens with the HTTP/2 preface is served as HTTP/2.
    /// Off by default (`Upgrade: h2c` is never honoured).
    public var h2c = false
    /// The admin API's optional loopback TCP listener ("127.0.0.1:PORT") and the
    /// file holding its bearer token. The Unix socket STATE/admin.sock is always on.
    public var adminListen: String?
    public var adminTokenFile: String?
    /// This node's name in `Via`, `Cache-Status` and `CDN-Loop` (a token;
    /// default: the host name).
    public var nodeName = ServerConfig.hostName()
    /// The fleet this node belongs to (shields, peers, loop detection).
    public var fleet = FleetConfig()
    public init() {}

    /// The host name as a token (characters outside [A-Za-z0-9._-] dropped); "edge" if none.
    public static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "edge" }
        let name = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).filter(isNodeNameCharacter)
        return name.isEmpty ? "edge" : name
    }

    public static func isNodeNameCharacter(_ ch: Character) -> Bool {
        ch.isASCII && (ch.isLetter || ch.isNumber || ch == "." || ch == "-" || ch == "_")
    }
}

/// Nodes of one fleet (edges and shields): loop detection through
/// `CDN-Loop` (RFC 8586) and purges that reach a node that was down.
public struct FleetConfig: Sendable, Equatable {
    /// The fleet's token in `CDN-Loop` (every node of a fleet shares it).
    public var name = "edged"
    /// A request already carrying the fleet's token this many times is
    /// answered 508 (a request carrying this node's own entry always is).
    public var maxHops = 8
    /// Other nodes' admin APIs ("http://ADDR:PORT" on loopback or a private
    /// network, or a Unix socket path), from which this node pulls the purges
    /// it missed: before it starts serving, then every `syncIntervalMillis`.
    public var peers: [String] = []
    /// The bearer token for the peers' TCP admin APIs.
    public var peerTokenFile: String?
    public var syncIntervalMillis: Int64 = 10_000
    /// How long a start waits on each peer before serving without it.
    public var syncTimeoutMillis: Int64 = 3_000
    public init() {}
}

/// One tenant: its host names, origins, routes and limits.
public struct TenantConfig: Sendable, Equatable {
    public var name: String
    public var file: String
    public var hosts: [String]
    public var isDefault = false
    public var origins: [OriginGroupConfig]
    public var routes: [RouteConfig]
    public var limits = TenantLimits()
    public var tls = TenantTLSConfig.none
    /// Plain-HTTP requests are redirected to HTTPS (301 for GET/HEAD, 308 otherwise).
    public var httpsRedirect = false
    /// `Strict-Transport-Security` value sent on HTTPS responses (nil: none).
    public var hsts: String?
    /// Response fields whose values tag a stored object for `edgectl purge --tag`.
    public var purgeTagFields = ["Surrogate-Key", "Cache-Tag"]
    /// The routes' compression unless a route sets its own.
    public var compress = CompressConfig()
    /// Offer HTTP/2 ("h2" in ALPN, the server's preference) on the TLS listener.
    public var http2 = true
    /// Client addresses refused (403) or let through, by prefix.
    public var access = PrefixList()
    /// Rate limits, in the order they are checked.
    public var rateLimits: [RateLimitConfig] = []
    /// Request rules, in order (RulesLoader.swift).
    public var rules = RuleSet()
    /// Attack signatures for every route (nil: off), unless a route says otherwise.
    public var signatures: SignatureConfig?
    /// URL, method, scheme, host and client-address override fields (EdgeHTTP.OverrideFields)
    /// forwarded from untrusted clients too; by default they are removed.
    public var passRequestHeaders: [String] = []

    /// Pages (HTML, read at load) for the errors edged itself answers, by status.
    public var errorPages: [Int: String] = [:]
    public init(name: String, file: String, hosts: [String], origins: [OriginGroupConfig], routes: [RouteConfig]) {
        self.name = name; self.file = file; self.hosts = hosts; self.origins = origins; self.routes = routes
    }
}

/// A named rate limit of a tenant (like nginx's limit_req with nodelay).
public struct RateLimitConfig: Sendable, Equatable {
    public enum KeyPart: Sendable, Equatable {
        /// The client's address (IPv4) or its /64 (IPv6).
        case client
        /// A request field's value (lowercase name); a request without it is not limited by this limit.
        case header(String)
        /// A cookie's value; a request without it is not limited by this limit.
        case cookie(String)
        case tenant
        case route
    }
    public var name: String
    public var spec: RateSpec
    /// What one bucket counts: the parts together (a limit per client per route, say).
    public var key: [KeyPart] = [.client]
    /// Route prefixes it applies to (as written in `routes`); nil: every route.
    public var routes: [String]?
    /// The answer over the limit.
    public var status = 429
    /// Count and log what would be limited; let it through.
    public var dryRun = false
    public init(name: String, spec: RateSpec) { self.name = name; self.spec = spec }
}

/// A tenant's certificates.
public enum TenantTLSConfig: Sendable, Equatable {
    /// Plain HTTP only.
    case none
    /// PEM files: each a full chain and its key (RSA and ECDSA may both be given).
    case files([CertificateFiles])
    /// Leaf certificates issued by edged's internal CA (development).
    case internalCA
    /// Certificates obtained and renewed through ACME (RFC 8555).
    case acme(ACMETenantSettings)
}

/// A tenant's ACME settings; unset fields take the server's `acme` defaults.
public struct ACMETenantSettings: Sendable, Equatable {
    public var directory: String?
    public var email: String?
    public var challenge: ACMEChallengeType?
    public var keyType: String?
    public init() {}
}

public enum ACMEChallengeType: String, Sendable, Equatable { case http01 = "http-01", tlsALPN01 = "tls-alpn-01" }

/// Server-wide ACME settings (the `acme` object of the server file).
public struct ACMEServerConfig: Sendable, Equatable {
    /// Let's Encrypt's production directory; its staging directory is
    /// https://acme-staging-v02.api.letsencrypt.org/directory.
    public static let letsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"
    public var directory = ACMEServerConfig.letsEncrypt
    public var email: String?
    public var challenge = ACMEChallengeType.http01
    /// "ecdsa-p256" or "rsa-2048": the certificates' key.
    public var keyType = "ecdsa-p256"
    /// "ecdsa-p256" (JWS ES256) or "rsa-2048" (RS256): the account key, when
    /// one is made; an existing account key is kept whatever its type.
    public var accountKeyType = "ecdsa-p256"
    /// CA certificates that verify the ACME server's own HTTPS (nil: the system's).
    public var caFile: String?
    /// Orders run at once (all tenants).
    public var parallelism = 4
    /// Until a tenant's certificate exists: serve one from the internal CA
    /// (true), or fail its handshakes with unrecognized_name (false).
    public var internalUntilIssued = true
    /// First retry after a failure; doubles per failure up to `retryMaxMillis`.
    public var retryMinMillis: Int64 = 60_000
    public var retryMaxMillis: Int64 = 24 * 3_600_000
    /// Issuance of tenants without a certificate at start is spread over this.
    public var startSpreadMillis: Int64 = 0
    public init() {}

    /// Where a tenant's ACME certificate lives: the chain, then its key, in one
    /// file (0600), replaced by a rename so it never changes half-way.
    public static func certificatePath(stateDir: String, tenant: String) -> String {
        stateDir + "/acme/certs/" + tenant + ".pem"
    }
}

public struct CertificateFiles: Sendable, Equatable {
    public var cert: String
    public var key: String
    public init(cert: String, key: String) { self.cert = cert; self.key = key }
}

public struct TenantLimits: Sendable, Equatable {
    /// Largest request body (413 beyond it).
    public var maxBodyBytes: Int64 = 100 * 1024 * 1024
    public var originConnectTimeoutMillis: Int64 = 3_500
    /// Longest wait for the origin's response head, and longest pause inside its body (504).
    public var originReadTimeoutMillis: Int64 = 60_000
    /// Idle pooled origin connections are closed after this.
    public var originIdleTimeoutMillis: Int64 = 30_000
    /// Most bytes this tenant may hold in the memory cache (nil: no quota).
    public var cacheBytes: Int64?
    /// Most bytes this tenant may hold in the disk tier, all directories
    /// together (nil: its memory quota scaled by disk size over memory size).
    public var diskCacheBytes: Int64?
    public init() {}
}

public enum OriginKind: Sendable, Equatable {
    /// Plain HTTP/1.1 servers, each "host:port".
    case http(servers: [String])
    /// A local directory served as files.
    case directory(root: String, index: String)
}

/// TLS towards an origin group whose servers are `https://`.
public struct OriginTLSConfig: Sendable, Equatable {
    /// CA bundle to verify the origin with; nil means the system's.
    public var caFile: String?
    /// Name sent as SNI and verified in the certificate; nil means each server's host.
    public var serverName: String?
    /// Client certificate and key for mutual TLS.
    public var clientCert: String?
    public var clientKey: String?
    public init() {}
}

public struct OriginGroupConfig: Sendable, Equatable {
    public var name: String
    public var kind: OriginKind
    /// Set when the servers are https://.
    public var tls: OriginTLSConfig?
    /// "round-robin" (smooth, weighted), "least-connections", "random-two"
    /// (power of two choices) or "hash" (consistent, with bounded load).
    public var balance: String = "round-robin"
    /// Per server, in order (empty: all 1).
    public var weights: [Int] = []
    /// A hash group's key: "uri", "key" (the cache key's host and target),
    /// "client", "header:NAME" or "cookie:NAME".
    public var hashKey = "uri"
    /// A shield group: other edged nodes in front of the origin, each object's
    /// home chosen by consistent hash of its cache key (balance "hash",
    /// hash_key "key", no load bound unless hash_balance_factor is set).
    public var shield = false
    /// When every server of this group is tried or out of rotation, the
    /// request goes to this group of the same tenant (a shield group's
    /// origin, reached directly). nil: none.
    public var fallback: String?
    /// No server above this factor of its weighted share of the active
    /// requests (HAProxy's hash-balance-factor / 100); 0: off.
    public var hashBalanceFactor = 1.25
    /// A server back in rotation (a probe passed, a back-off ran out) ramps
    /// up to its weight over this long (0: at once).
    public var slowStartMillis: Int64 = 0
    /// Retries (to another server, after a failure before any response byte)
    /// may add at most this fraction of the group's requests, plus a reserve
    /// of 3 (Envoy's retry budget), so retries cannot multiply an outage.
    public var retryBudget = 0.2
    /// Response statuses that are retried on another server (idempotent
    /// requests whose body was not sent; the last server's answer is relayed).
    public var retryOn: [Int] = []
    /// `"timeout"` in `retry_on`: an idempotent request whose server did not
    /// answer within the read timeout (no response byte) is retried on
    /// another one (nginx's `proxy_next_upstream timeout`). Off by default:
    /// a slow origin then costs the client the timeout once, not per server.
    public var retryOnTimeout = false
    public var maxFails = 3
    public var failBackoffMillis: Int64 = 10_000
    /// Idle keep-alive connections kept per server per worker.
    public var keepAlive = 64
    /// Active health checks (nil: passive health only).
    public var healthCheck: HealthCheckConfig?
    /// Directory origins: follow symbolic links that stay inside the root
    /// (`"symlinks": "inside"`). By default every link is refused (404), and a
    /// path never resolves outside the root either way.
    public var symlinksInside = false
    public init(name: String, kind: OriginKind) { self.name = name; self.kind = kind }
}

/// An origin group's active health check: an HTTP probe of every server,
/// every `intervalMillis`, from one prober thread shared by all workers.
public struct HealthCheckConfig: Sendable, Equatable {
    public var method = "GET"
    public var path = "/"
    /// Host sent (nil: the server's host:port).
    public var host: String?
    public var intervalMillis: Int64 = 2_000
    public var timeoutMillis: Int64 = 1_000
    /// Statuses that pass: "200", "2xx", "200-399".
    public var expect = ["2xx", "3xx"]
    /// The body must contain this (nil: not checked).
    public var bodyContains: String?
    public var rise = 2
    public var fall = 3
    public init() {}
}

/// Header edits applied on the way to the origin or to the client.
public struct HeaderEdits: Sendable, Equatable {
    public var add: [(String, String)] = []
    public var remove: [String] = []
    public init() {}
    public static func == (a: HeaderEdits, b: HeaderEdits) -> Bool {
        a.remove == b.remove && a.add.count == b.add.count && zip(a.add, b.add).allSatisfy { $0 == $1 }
    }
    public var isEmpty: Bool { add.isEmpty && remove.isEmpty }
}

/// A route's caching choices (RFC 9111 rules always apply; these tune them).
public struct RouteCacheConfig: Sendable, Equatable {
    public var enabled = true
    /// Ignore a client's `Cache-Control: no-cache` / `Pragma: no-cache` (CDN style).
    public var ignoreClientNoCache = false
    public var storeSetCookie = false
    public var sortQuery = false
    public var ignoreQuery: [String] = []
    /// Serve stale content this long past expiry when the origin fails.
    public var graceSeconds: Int64 = 0
    /// Refuse to store a response whose Content-Type contradicts the path's
    /// extension (web cache deception: `/account/x.css` answered with HTML).
    public var deceptionArmor = false
    /// Add the cache key to Cache-Status (`key="…"`, RFC 9211 §2.8), for debugging.
    public var debug = false
    /// Methods besides GET and HEAD whose responses are stored (only "POST"):
    /// keyed on the method and a SHA-256 of the request body (at most `bodyKeyLimit`
    /// bytes, with Content-Length), and only with explicit freshness from the origin.
    public var methods: [String] = []
    public var bodyKeyLimit: Int64 = 16 * 1024
    /// Lifetimes the operator sets (seconds; see EdgeCache.CacheOptions for the
    /// order they apply in): by status ("200", "404", or a class "5xx"),
    /// whatever the origin says; for 404/410 without explicit freshness; for
    /// other responses without it (instead of the heuristic); and clamps.
    public var ttlOverride: [String: Int64] = [:]
    public var negativeTTLSeconds: Int64 = 10
    public var defaultTTLSeconds: Int64?
    public var ttlMinSeconds: Int64?
    public var ttlMaxSeconds: Int64?
    /// The cache key beyond the URL: these request fields' values, these
    /// cookies' values (a secondary key, like Vary, so a purge by URL takes
    /// every one), and only these query parameters (`keepQuery`, an allow-list;
    /// `ignoreQuery` is the deny-list).
    public var keyHeaders: [String] = []
    public var keyCookies: [String] = []
    public var keepQuery: [String]?
    /// Pass to the origin without looking up or storing when the request has
    /// one of these cookies or header fields, or its path matches one of these
    /// patterns (`*` matches any run of characters).
    public var bypassCookies: [String] = []
    public var bypassHeaders: [String] = []
    public var bypassPaths: [String] = []
    /// Languages the origin has: a `Vary: Accept-Language` keys on the best of
    /// these the request accepts (the first when none), not on its spelling.
    /// Empty: keyed on the request's languages in preference order, q-values dropped.
    public var languages: [String] = []
    /// When the origin cannot be reached (refused, reset or timed out before
    /// a response), a stale entry up to this far past its lifetime is served,
    /// beyond what stale-if-error and grace allow (RFC 9111 §4.2.4). 0: off.
    public var staleIfDisconnectedSeconds: Int64 = 0
    /// Objects larger than the store's largest object are stored as slices
    /// this large (each its own entry), and Range misses ask the origin for
    /// whole slices (EdgeCache.Slices). 0: off (such objects are not stored).
    public var sliceBytes: Int64 = 0
    public static let sliceSizes: ClosedRange<Int64> = 64 * 1024...64 * 1024 * 1024
    public init() {}
}

/// Compression of responses on their way to clients (per tenant, per route).
public struct CompressConfig: Sendable, Equatable {
    /// Off unless a tenant or route turns it on (like nginx's `gzip`, Caddy's `encode`).
    public var enabled = false
    /// Media types compressed: exact types, or `text/*`-style wildcards.
    public var types = CompressConfig.defaultTypes
    /// Smaller bodies (when their length is known) are sent as they are.
    public var minBytes: Int64 = 1024
    /// Codings edge produces, in order of preference.
    public var encodings = ["br", "gzip"]
    public var gzipLevel = 6
    public var gzipWindowBits = 15
    public var brotliQuality = 5
    public var brotliWindowBits = 18
    /// Most bytes decoded from a gzip/br origin response for a client that cannot
    /// take it; past this the client gets a 502 (decompression bombs).
    public var decodeLimit: Int64 = 16 << 20

    public static let defaultTypes = [
        "text/*", "application/json", "application/javascript", "application/xml", "application/xhtml+xml",
        "application/rss+xml", "application/atom+xml", "application/ld+json", "application/manifest+json",
        "application/wasm", "image/svg+xml", "image/x-icon", "font/ttf", "font/otf", "application/vnd.ms-fontobject",
    ]
    public init() {}
}

public struct RouteConfig: Sendable, Equatable {
    public var cache = RouteCacheConfig()
    /// nil: the tenant's setting.
    public var compress: CompressConfig?
    public var prefix: String
    public var origin: String
    public var stripPrefix = false
    /// Host sent to the origin instead of the client's.
    public var hostRewrite: String?
    public var requestHeaders = HeaderEdits()
    public var responseHeaders = HeaderEdits()
    /// WebSocket upgrades (RFC 6455) are tunnelled to the origin; false answers them 403.
    public var websocket = true
    /// A tunnel with no byte moving either way for this long is closed.
    public var websocketIdleTimeoutMillis: Int64 = 3_600_000
    /// Attack signatures on this route: nil, the tenant's; .some(nil), off.
    public var signatures: SignatureConfig??
    /// Answered by edged itself (after the request filter): a fixed response
    /// or a redirect. Such a route needs no origin.
    public var action: RouteAction?
    /// The path the origin gets: the first match of a regular expression
    /// replaced (after strip_prefix; the cache key keeps the client's URL).
    public var rewrite: (pattern: String, replacement: String)?
    /// A canary or weighted split of the route's requests across origin groups.
    public var split: RouteSplit?
    /// False for a route edged answers itself with no `origin` given.
    public var hasOrigin = true
    /// A share of the route's requests copied to a shadow group (responses discarded).
    public var mirror: RouteMirror?
    public init(prefix: String, origin: String) { self.prefix = prefix; self.origin = origin }

    public static func == (a: RouteConfig, b: RouteConfig) -> Bool {
        a.cache == b.cache && a.compress == b.compress && a.prefix == b.prefix && a.origin == b.origin && a.stripPrefix == b.stripPrefix
            && a.hostRewrite == b.hostRewrite && a.requestHeaders == b.requestHeaders && a.responseHeaders == b.responseHeaders
            && a.websocket == b.websocket && a.websocketIdleTimeoutMillis == b.websocketIdleTimeoutMillis && a.signatures == b.signatures
            && a.action == b.action && a.rewrite?.pattern == b.rewrite?.pattern && a.rewrite?.replacement == b.rewrite?.replacement
            && a.split == b.split && a.mirror == b.mirror && a.hasOrigin == b.hasOrigin
    }
}

/// Mirroring (shadowing): `percent` of the route's requests (drawn per
/// request, hits included: the route's traffic as clients send it) are copied
/// to the group `origin`, fire-and-forget. Each copy is the request as the
/// origin would get it, with `Connection: close`; a body is copied only up to
/// `maxBody` (a larger one is not mirrored). Copies wait in a bounded queue
/// and are dropped, never delayed for, when it is full or the shadow is slow.
public struct RouteMirror: Sendable, Equatable {
    public var origin: String
    public var percent: Double = 100
    public var maxBody: Int64 = 64 << 10
    public init(origin: String) { self.origin = origin }
}

/// A route's split: each request goes to one side, by weight. The first
/// side is the stable one and uses the cache as usual; the others bypass it
/// (nothing looked up, nothing stored), or, `keyed`, cache under their own
/// keys, so no side is ever served the other's response. `sticky`: "client" (the client's address) or "cookie:NAME" keep
/// a client on its side (nil: each request drawn anew). A request whose
/// `forceHeader` field names a side's origin goes to that side.
public struct RouteSplit: Sendable, Equatable {
    public var sides: [Side]
    public var sticky: String?
    public var forceHeader: String?
    /// `"cache": "keyed"`: every side uses the cache, the side being part of
    /// each stored response's key (a Vary-like pseudo-field), so sides never
    /// share a copy and a purge by URL drops them all. false (the default,
    /// `"first"`): only the first side uses the cache.
    public var keyed = false
    /// With `sticky: "cookie:NAME"`: a client without the cookie gets one
    /// from edged (a random value, `Path=/; HttpOnly; SameSite=Lax`) on the
    /// response, so its next requests stay on the side it drew (HAProxy's
    /// `cookie ... insert`). Off by default: NAME may be the application's
    /// own session cookie, which edged must not overwrite.
    public var setCookie = false
    public struct Side: Sendable, Equatable {
        public var origin: String
        public var weight: Int
        public init(origin: String, weight: Int) { self.origin = origin; self.weight = weight }
    }
    public init(sides: [Side]) { self.sides = sides }
}

/// What a route without an origin answers.
public enum RouteAction: Sendable, Equatable {
    /// A fixed status, body and Content-Type (e.g. `/healthz`).
    case respond(status: Int, body: String, contentType: String)
    /// A redirect; the location may use $scheme $host $path $query. With a
    /// `pattern` (POSIX extended, on the path) only matching paths are
    /// redirected, and the location may use its match and groups ($0-$9);
    /// other paths go to the route's origin, or get 404 when it names none.
    case redirect(status: Int, location: String, pattern: String? = nil)
}

/// The access log's line format (server file `log_format`).
public enum LogFormat: Sendable, Equatable {
    /// One JSON object per line, with these fields (when they apply).
    case json(LogFieldSet)
    /// `client - - [time] "request" status bytes "referer" "user-agent"` (nginx and Apache's combined).
    case combined
    /// The same without referer and user agent (Common Log Format).
    case common
}

/// A JSON access log field, by its key in the line.
@frozen public enum LogField: Int, CaseIterable, Sendable {
    case time, tenant, host, scheme, `protocol`, tls, sni, client, peer, method, target, status,
         bytesIn, bytesOut, cache, tier, durationMs, origin, originMs, originStatus, originBytesIn,
         originBytesOut, error, action, tags, complete, closedBy, userAgent, referer, requestID

    /// The key as it appears in a line and in `log_format`.
    public var key: String {
        switch self {
        case .bytesIn: return "bytes_in"
        case .bytesOut: return "bytes_out"
        case .durationMs: return "duration_ms"
        case .originMs: return "origin_ms"
        case .originStatus: return "origin_status"
        case .originBytesIn: return "origin_bytes_in"
        case .originBytesOut: return "origin_bytes_out"
        case .closedBy: return "closed_by"
        case .userAgent: return "user_agent"
        case .requestID: return "request_id"
        default: return "\(self)"
        }
    }

    public init?(key: String) {
        guard let f = LogField.allCases.first(where: { $0.key == key }) else { return nil }
        self = f
    }
}

/// A set of JSON log fields (one bit each).
@frozen public struct LogFieldSet: Sendable, Equatable {
    public var bits: UInt64
    @inlinable public init(bits: UInt64) { self.bits = bits }
    public init(_ fields: [LogField]) { bits = fields.reduce(0) { $0 | 1 << UInt64($1.rawValue) } }
    public static let all = LogFieldSet(LogField.allCases)
    /// (Inlined into the log writer: one test per field per line.)
    @inlinable @inline(__always) public func has(_ f: LogField) -> Bool { bits & (1 << UInt64(f.rawValue)) != 0 }
}
