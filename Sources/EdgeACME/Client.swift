// An ACME client (RFC 8555): directory, nonces, the account, orders,
// authorizations and their challenges, finalization and the certificate
// download, each request a JWS (flattened JSON serialization, §6.2) over its
// own HTTPS connection. Blocking I/O: it runs on the ACME manager's threads,
// never on a worker.
//
// Concurrency: one ACMEClient belongs to one issuance at a time.
import Glibc
import EdgeJSON
import EdgeHTTP
import EdgeIO
import EdgeTLS

public struct ACMEError: Error, CustomStringConvertible {
    public var message: String
    /// The problem document's type (RFC 8555 §6.7), e.g. urn:ietf:params:acme:error:rateLimited.
    public var type: String?
    /// Seconds the server asked us to wait (Retry-After on a rate limit).
    public var retryAfter: Int64?
    public init(_ m: String, type: String? = nil, retryAfter: Int64? = nil) { message = m; self.type = type; self.retryAfter = retryAfter }
    public var description: String { message }
}

struct HTTPAnswer {
    var status: Int
    var fields: [(String, String)]
    var body: [UInt8]
    func field(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }
    /// The body as JSON; an empty object when it is not JSON.
    var json: JSON { (try? JSON.parse(body)) ?? [:] }
}

/// HTTPS/1.1 requests, one connection each, verified against `caFile` (or the system's roots).
final class HTTPSClient {
    let tls: OriginTLSContext
    let timeoutMillis: Int

    init(caFile: String?, timeoutMillis: Int = 30_000) throws {
        tls = try OriginTLSContext(caFile: caFile, clientCert: nil, clientKey: nil)
        self.timeoutMillis = timeoutMillis
    }

    func send(_ method: String, _ url: String, body: [UInt8]? = nil, contentType: String? = nil) throws -> HTTPAnswer {
        guard url.hasPrefix("https://") else { throw ACMEError("\(url): not an https:// URL") }
        let rest = url.dropFirst(8)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = String(rest[..<slash])
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        var host = authority, port = "443"
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            host = String(authority[..<colon]); port = String(authority[authority.index(after: colon)...])
        }
        host = host.trimmingBrackets
        let fd = try connect(host: host, port: port)
        defer { close(fd) }
        var probe = in6_addr()
        let literal = inet_pton(AF_INET, host, &probe) == 1 || inet_pton(AF_INET6, host, &probe) == 1
        let made = literal ? TLSConnection(origin: tls, fd: fd, ip: host) : TLSConnection(origin: tls, fd: fd, serverName: host, resume: nil)
        guard let conn = made else { throw ACMEError("\(url): TLS setup failed") }
        if case .failed(let why) = conn.handshake() {
            throw ACMEError("\(url): TLS handshake failed: \(conn.verifyError.map { "certificate: \($0)" } ?? why)")
        }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(authority)\r\nUser-Agent: edged-acme\r\nAccept: application/json\r\nConnection: close\r\n"
        if let body { head += "Content-Type: \(contentType ?? "application/jose+json")\r\nContent-Length: \(body.count)\r\n" }
        let out = Array((head + "\r\n").utf8) + (body ?? [])
        var off = 0
        while off < out.count {
            guard case .bytes(let n) = out[off...].withUnsafeBytes({ conn.write($0.baseAddress!, $0.count) }) else { throw ACMEError("\(url): write failed") }
            off += n
        }
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            if let done = try complete(got, url: url, requestWasHead: method == "HEAD") { conn.shutdown(); return done }
            let r = buf.withUnsafeMutableBytes { conn.read($0.baseAddress!, $0.count) }
            switch r {
            case .bytes(let n): got += buf[0..<n]
            case .eof, .error, .wouldBlock:
                // The server closed (with or without close_notify): what arrived must be whole.
                if let done = try complete(got, url: url, requestWasHead: method == "HEAD", closed: true) { return done }
                throw ACMEError("\(url): the answer was cut short")
            }
            if got.count > 1 << 20 { throw ACMEError("\(url): answer larger than 1 MiB") }
        }
    }

    func connect(host: String, port: String) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, port, &hints, &list)
        guard rc == 0, let first = list else { throw ACMEError("\(host): cannot resolve: \(String(cString: gai_strerror(rc)))") }
        defer { freeaddrinfo(list) }
        var why = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            let fd = socket(a.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd >= 0 {
                setSocketTimeouts(fd, millis: timeoutMillis)
                if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
                why = String(cString: strerror(errno))
                close(fd)
            }
            ai = a.pointee.ai_next
        }
        throw ACMEError("\(host):\(port): cannot connect: \(why)")
    }

    /// The answer in `bytes` when it is complete (by its framing), else nil.
    func complete(_ bytes: [UInt8], url: String, requestWasHead: Bool, closed: Bool = false) throws -> HTTPAnswer? {
        var head = ResponseHead()
        var scan = HeadScan()
        let parsed = bytes.withUnsafeBytes { HeadParser.parseResponse($0, limits: HeadLimits(), into: &head, scan: &scan) }
        guard case .complete(let n) = parsed else {
            if case .error(let e) = parsed { throw ACMEError("\(url): malformed answer (\(e.reason))") }
            return nil
        }
        var fields: [(String, String)] = []
        for f in head.fields {
            fields.append((String(decoding: bytes[f.name], as: UTF8.self).lowercased(), String(decoding: bytes[f.value], as: UTF8.self)))
        }
        var body: [UInt8] = []
        switch head.framing(requestWasHead: requestWasHead) {
        case .none: break
        case .length(let len):
            guard bytes.count - n >= Int(len) else { return nil }
            body = Array(bytes[n..<(n + Int(len))])
        case .chunked:
            var d = ChunkedDecoder()
            var at = n
            var ended = false
            try bytes.withUnsafeBytes { p in
                loop: while true {
                    let (event, next) = d.decode(p, from: at)
                    switch event {
                    case .data(let r): body += p[r]; at = next
                    case .needMore: break loop
                    case .end: ended = true; break loop
                    case .error(let why): throw ACMEError("\(url): bad chunked body (\(why))")
                    }
                }
            }
            guard ended else { return nil }
        case .untilClose:
            guard closed else { return nil }
            body = Array(bytes[n...])
        }
        return HTTPAnswer(status: head.status, fields: fields, body: body)
    }
}

/// A server's renewal suggestion for one certificate (RFC 9773 §4.2).
public struct RenewalInfo: Sendable, Equatable {
    /// The suggested window, seconds since the epoch.
    public var start: Int64
    public var end: Int64
    /// Seconds until the next question, when the server said.
    public var retryAfter: Int64?
    public var explanation: String?

    /// From the JSON body and the Retry-After field; nil when the window is missing or unreadable.
    public init?(json: JSON, retryAfter: String?) {
        guard let w = json["suggestedWindow"],
              let s = w["start"]?.string.flatMap(HTTPDate.parseRFC3339), let e = w["end"]?.string.flatMap(HTTPDate.parseRFC3339) else { return nil }
        start = s
        end = e
        self.retryAfter = retryAfter.flatMap { Int64($0.trimmedOWS()) }.map { max($0, 0) }
        explanation = json["explanationURL"]?.string
    }
}

/// One ACME server session: its directory, a nonce, the account's URL.
final class ACMEClient {
    let http: HTTPSClient
    let directoryURL: String
    let key: ACMEKey
    var directory: [String: JSON] = [:]
    var nonce: String?
    var kid: String?
    let log: (String) -> Void

    init(directory: String, caFile: String?, accountKey: ACMEKey, log: @escaping (String) -> Void) throws {
        http = try HTTPSClient(caFile: caFile)
        directoryURL = directory
        key = accountKey
        self.log = log
    }

    func endpoint(_ name: String) throws -> String {
        if directory.isEmpty {
            let a = try http.send("GET", directoryURL)
            guard a.status == 200 else { throw ACMEError("directory \(directoryURL): status \(a.status)") }
            directory = a.json.object ?? [:]
        }
        guard let u = directory[name]?.string else { throw ACMEError("directory \(directoryURL) has no \(name)") }
        return u
    }

    /// The server's renewal suggestion for the certificate `id` (RFC 9773: an
    /// unauthenticated GET of renewalInfo/ID); nil when the server offers no ARI.
    func renewalInfo(_ id: String) throws -> RenewalInfo? {
        _ = try endpoint("newNonce")   // loads the directory
        guard let base = directory["renewalInfo"]?.string else { return nil }
        let url = (base.hasSuffix("/") ? base : base + "/") + id
        let a = try http.send("GET", url)
        guard a.status == 200 else { throw ACMEError("\(url): status \(a.status)", retryAfter: a.field("retry-after").flatMap { Int64($0) }) }
        guard let info = RenewalInfo(json: a.json, retryAfter: a.field("retry-after")) else { throw ACMEError("\(url): no readable suggestedWindow") }
        return info
    }

    func freshNonce() throws -> String {
        if let n = nonce { nonce = nil; return n }
        let a = try http.send("HEAD", try endpoint("newNonce"))
        guard let n = a.field("replay-nonce") else { throw ACMEError("newNonce: no Replay-Nonce (status \(a.status))") }
        return n
    }

    /// A signed POST (payload nil: POST-as-GET, §6.3). `jwk`: sign with the key
    /// itself (newAccount) instead of the account URL. A badNonce is retried
    /// with the nonce the error carried (§6.5), up to 5 times.
    func post(_ url: String, _ payload: JSON?, jwk: Bool = false) throws -> HTTPAnswer {
        for _ in 0..<5 {
            var protected: [String: JSON] = ["alg": .string(key.alg), "nonce": .string(try freshNonce()), "url": .string(url)]
            if jwk { protected["jwk"] = try JSON.parse(key.jwk) } else {
                guard let kid else { throw ACMEError("no account yet") }
                protected["kid"] = .string(kid)
            }
            let body = payload.map { base64url($0.serialized()) } ?? ""
            let p64 = base64url(JSON.object(protected).serialized())
            let sig = base64url(try key.sign(Array((p64 + "." + body).utf8)))
            let jws = "{\"protected\":\"\(p64)\",\"payload\":\"\(body)\",\"signature\":\"\(sig)\"}"
            let a = try http.send("POST", url, body: Array(jws.utf8))
            if let n = a.field("replay-nonce") { nonce = n }
            if a.status >= 400 {
                let problem = a.json
                let type = problem["type"]?.string
                if type == "urn:ietf:params:acme:error:badNonce" { continue }
                let detail = problem["detail"]?.string ?? String(decoding: a.body.prefix(200), as: UTF8.self)
                throw ACMEError("\(url): \(a.status) \(type ?? "") \(detail)", type: type, retryAfter: a.field("retry-after").flatMap { Int64($0) })
            }
            return a
        }
        throw ACMEError("\(url): the server refused 5 nonces in a row")
    }

    /// Registers the account (or finds it: the same key returns the same account, §7.3.1).
    func account(email: String?) throws {
        var payload: [String: JSON] = ["termsOfServiceAgreed": true]
        if let email { payload["contact"] = JSON(["mailto:" + email]) }
        let a = try post(try endpoint("newAccount"), .object(payload), jwk: true)
        guard let loc = a.field("location") else { throw ACMEError("newAccount: no Location") }
        kid = loc
    }

    /// Polls `url` (POST-as-GET) until its status leaves `waiting`, honouring
    /// Retry-After (capped at 10 s between polls), for at most `limitMillis`.
    func poll(_ url: String, while waiting: Set<String>, limitMillis: Int64 = 120_000) throws -> JSON {
        let deadline = monotonicMillis() + limitMillis
        var delay: Int64 = 200
        while true {
            let a = try post(url, nil)
            let obj = a.json
            let status = obj["status"]?.string ?? ""
            if !waiting.contains(status) { return obj }
            guard monotonicMillis() < deadline else { throw ACMEError("\(url): still \(status) after \(limitMillis / 1000) s") }
            let ask = a.field("retry-after").flatMap { Int64($0) }.map { $0 * 1000 } ?? delay
            usleep(UInt32(min(ask, 10_000) * 1000))
            delay = min(delay * 2, 2000)
        }
    }

    /// The whole order for `hosts`: authorizations through `challenge`, the
    /// CSR signed by `certKey`, and the certificate chain (PEM).
    /// `provision(host, token, keyAuthorization)` puts a challenge up and
    /// returns what takes it down.
    /// `replaces`: the ARI identifier of the certificate this one renews (RFC
    /// 9773 §5), sent when the server offers ARI; an order the server refuses
    /// as alreadyReplaced is placed again without it.
    func obtain(hosts: [String], challenge: String, certKey: ACMEKey, replaces: String? = nil,
                provision: (String, String, String) throws -> () -> Void) throws -> String {
        let identifiers = JSON.array(hosts.map { ["type": "dns", "value": .string($0)] })
        var payload: [String: JSON] = ["identifiers": identifiers]
        if let replaces, (try? endpoint("renewalInfo")) != nil { payload["replaces"] = .string(replaces) }
        let created: HTTPAnswer
        do {
            created = try post(try endpoint("newOrder"), .object(payload))
        } catch let e as ACMEError where e.type == "urn:ietf:params:acme:error:alreadyReplaced" && payload["replaces"] != nil {
            log("the server says \(replaces!) was already replaced; ordering without replaces")
            payload["replaces"] = nil
            created = try post(try endpoint("newOrder"), .object(payload))
        }
        guard let orderURL = created.field("location") else { throw ACMEError("newOrder: no Location") }
        var order = created.json
        log("order \(orderURL) for \(hosts.joined(separator: ", "))\(payload["replaces"]?.string.map { ", replacing " + $0 } ?? ""): \(order["status"]?.string ?? "?")")
        for authzURL in order["authorizations"]?.strings ?? [] {
            let authz = try post(authzURL, nil).json
            let host = authz["identifier"]?["value"]?.string ?? ""
            if authz["status"]?.string == "valid" { log("\(host): already authorized"); continue }
            guard let ch = (authz["challenges"]?.array ?? []).first(where: { $0["type"]?.string == challenge }),
                  let chURL = ch["url"]?.string, let token = ch["token"]?.string else {
                throw ACMEError("\(host): the server offers no \(challenge) challenge")
            }
            // A token is base64url; anything else could reach paths or file names.
            guard !token.isEmpty, token.utf8.allSatisfy({ isBase64url($0) }) else { throw ACMEError("\(host): malformed challenge token") }
            let takeDown = try provision(host, token, token + "." + key.thumbprint)
            defer { takeDown() }
            _ = try post(chURL, [:])
            log("\(host): \(challenge) challenge up, asked the server to validate")
            let done = try poll(authzURL, while: ["pending", "processing"])
            guard done["status"]?.string == "valid" else {
                let err = (done["challenges"]?.array ?? []).compactMap { $0["error"]?["detail"]?.string }.first
                throw ACMEError("\(host): authorization \(done["status"]?.string ?? "?")\(err.map { ": " + $0 } ?? "")")
            }
            log("\(host): authorized")
        }
        order = try poll(orderURL, while: ["pending"])
        guard order["status"]?.string == "ready", let finalize = order["finalize"]?.string else {
            throw ACMEError("order \(orderURL): \(order["status"]?.string ?? "?") (expected ready)")
        }
        _ = try post(finalize, ["csr": .string(base64url(try certKey.csr(hosts: hosts)))])
        order = try poll(orderURL, while: ["ready", "processing"])
        guard order["status"]?.string == "valid", let certURL = order["certificate"]?.string else {
            throw ACMEError("order \(orderURL): \(order["status"]?.string ?? "?") after finalize")
        }
        let cert = try post(certURL, nil)
        let pem = String(decoding: cert.body, as: UTF8.self)
        guard pem.contains("-----BEGIN CERTIFICATE-----") else { throw ACMEError("\(certURL): no PEM certificate chain") }
        return pem
    }
}

func isBase64url(_ c: UInt8) -> Bool {
    (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 45 || c == 95
}
