// The admin API's input side, pure: a request parsed from bytes (head through
// EdgeHTTP's parser, body by Content-Length) and the bodies of the endpoints that
// take one, validated into values. No side effects and no server state here, so
// the admin fuzz target (tools/fuzz/FuzzAdmin.swift) can build it with EdgeHTTP alone.
#if canImport(EdgeHTTP)   // (the admin fuzzer compiles this file with EdgeHTTP's and EdgeJSON's sources as one: tools/fuzz/run.sh)
import EdgeHTTP
import EdgeJSON
#endif

/// A 400 answer with its message.
struct OperationError400: Error { let message: String; init(_ m: String) { message = m } }

/// One admin request. Parsed from bytes without side effects.
struct AdminRequest {
    var method = ""
    var path = ""
    var query: [String: String] = [:]
    var headers: [String: String] = [:]
    var body: [UInt8] = []

    enum Parse { case complete(AdminRequest), needMore, error(Int, String) }

    static let maxHead = 16 * 1024
    static let maxBody = 1 << 20

    /// The request line and fields alone, once the head is complete (nil before,
    /// or when it is malformed: `parse` says why).
    static func parseHead(_ b: [UInt8]) -> AdminRequest? {
        guard case .complete(let r) = parse(b, headOnly: true) else { return nil }
        return r
    }

    static let headLimits: HeadLimits = {
        var l = HeadLimits()
        l.maxHeadBytes = maxHead
        l.maxRequestLine = 8 * 1024
        l.maxFieldLine = maxHead
        return l
    }()

    /// The head through EdgeHTTP's parser (the data path's one, strict: a missing
    /// Host, bad framing, bare LF and the rest are refused the same way), then
    /// the body by its Content-Length.
    static func parse(_ b: [UInt8], headOnly: Bool = false) -> Parse {
        var head = RequestHead()
        var scan = HeadScan()
        let result = b.withUnsafeBytes { HeadParser.parseRequest($0, limits: headLimits, into: &head, scan: &scan) }
        let headEnd: Int
        switch result {
        case .needMore: return .needMore
        case .error(let e):
            if e.status == 431 || e.status == 414 { return .error(431, "request head too large") }
            if head.chunked || e.reason.contains("Transfer-Encoding") { return .error(411, "send the body with Content-Length") }
            return .error(400, "bad request: \(e.reason)")
        case .complete(let n): headEnd = n
        }
        if head.chunked { return .error(411, "send the body with Content-Length") }
        func text(_ r: Range<Int>) -> String { String(decoding: b[r], as: UTF8.self) }
        var r = AdminRequest()
        r.method = text(head.methodRange)
        let target = text(head.targetRange)
        if let q = target.firstIndex(of: "?") {
            r.path = String(target[..<q])
            for pair in target[target.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let k = kv[0].percentDecoded ?? String(kv[0])
                r.query[k] = kv.count > 1 ? (kv[1].percentDecoded ?? String(kv[1])) : ""
            }
        } else {
            r.path = target
        }
        for f in head.fields { r.headers[text(f.name).lowercased()] = text(f.value) }
        if headOnly { return .complete(r) }
        let length = Int(max(0, head.contentLength))
        guard length <= maxBody else { return .error(413, "body larger than 1 MiB") }
        guard b.count - headEnd >= length else { return .needMore }
        r.body = Array(b[headEnd..<(headEnd + length)])
        return .complete(r)
    }

    /// The dashboard page itself: served without a token (it holds no data;
    /// what it fetches needs one on the TCP listener).
    var isDashboardPage: Bool { method == "GET" && (path == "/" || path == "/dashboard") }

    func jsonObject() throws -> [String: JSON] {
        if body.isEmpty { return [:] }
        guard let o = (try? JSON.parse(body))?.object else {
            throw OperationError400("the body is not a JSON object")
        }
        return o
    }
}

/// `POST /v1/purge`: `{"urls": [...]}` | `{"prefix": "..."}` | `{"tags": [...], "tenant"?: "..."}` |
/// `{"tenant": "...", "all": true}`, each with `"soft"?: bool`. Exactly one scope; unknown fields refused.
struct PurgeRequest: Equatable {
    enum Scope: Equatable {
        case urls([String])
        case prefix(String)
        case tags([String], tenant: String?)
        case tenant(String)
    }
    var scope: Scope
    var soft: Bool

    init(scope: Scope, soft: Bool) { self.scope = scope; self.soft = soft }

    init(_ o: [String: JSON]) throws {
        let allowed: Set<String> = ["urls", "prefix", "tags", "tenant", "all", "soft"]
        if let bad = o.keys.sorted().first(where: { !allowed.contains($0) }) { throw OperationError400("unknown field \"\(bad)\"") }
        if o["soft"] != nil && o["soft"]?.bool == nil { throw OperationError400("\"soft\" must be true or false") }
        soft = o["soft"]?.bool ?? false
        let tenant = o["tenant"]?.string
        if o["tenant"] != nil && tenant == nil { throw OperationError400("\"tenant\" must be a string") }
        let kinds = ["urls", "prefix", "tags", "all"].filter { o[$0] != nil }
        guard kinds.count == 1 else { throw OperationError400("give exactly one of \"urls\", \"prefix\", \"tags\" or \"all\"") }
        switch kinds[0] {
        case "urls":
            guard let urls = o["urls"]?.strings, !urls.isEmpty else { throw OperationError400("\"urls\" must be a non-empty list of URLs") }
            if tenant != nil { throw OperationError400("\"tenant\" goes with \"tags\" or \"all\" (a URL names its tenant by host)") }
            scope = .urls(urls)
        case "prefix":
            guard let p = o["prefix"]?.string else { throw OperationError400("\"prefix\" must be a URL") }
            if tenant != nil { throw OperationError400("\"tenant\" goes with \"tags\" or \"all\" (a URL names its tenant by host)") }
            scope = .prefix(p)
        case "tags":
            guard let tags = o["tags"]?.strings, !tags.isEmpty else { throw OperationError400("\"tags\" must be a non-empty list") }
            scope = .tags(tags, tenant: tenant)
        default:
            guard o["all"]?.bool == true, let tenant else { throw OperationError400("\"all\": true needs \"tenant\"") }
            scope = .tenant(tenant)
        }
    }

    /// The body that asks for this purge, in its shortest form (the admin fuzz target
    /// checks that it reads back as the same purge; fleet journals keep the body as sent).
    var json: [String: JSON] {
        var o: [String: JSON] = soft ? ["soft": true] : [:]
        switch scope {
        case .urls(let u): o["urls"] = JSON(u)
        case .prefix(let p): o["prefix"] = .string(p)
        case .tags(let t, let tenant): o["tags"] = JSON(t); if let tenant { o["tenant"] = .string(tenant) }
        case .tenant(let t): o["tenant"] = .string(t); o["all"] = true
        }
        return o
    }
}

/// `POST /v1/explain`: `{"url": "...", "headers"?: ["Name: value", ...], "method"?: "GET", "client"?: "127.0.0.1"}`.
struct ExplainRequest {
    var url: String
    var headers: [(String, String)] = []
    var method = "GET"
    var client = "127.0.0.1"

    init(_ o: [String: JSON]) throws {
        let allowed: Set<String> = ["url", "headers", "method", "client"]
        if let bad = o.keys.sorted().first(where: { !allowed.contains($0) }) { throw OperationError400("unknown field \"\(bad)\"") }
        guard let url = o["url"]?.string else { throw OperationError400("\"url\" (a string) is required") }
        self.url = url
        if o["headers"] != nil && o["headers"]?.strings == nil { throw OperationError400("\"headers\" must be a list of \"Name: value\" strings") }
        for line in o["headers"]?.strings ?? [] {
            guard let colon = line.firstIndex(of: ":") else { throw OperationError400("header \"\(line)\" is not \"Name: value\"") }
            let name = line[..<colon].trimmedOWS()
            guard !name.isEmpty, name.utf8.allSatisfy({ isTokenChar($0) }) else { throw OperationError400("header \"\(line)\" has no valid field name") }
            headers.append((name, line[line.index(after: colon)...].trimmedOWS()))
        }
        if o["method"] != nil && o["method"]?.string == nil { throw OperationError400("\"method\" must be a string") }
        method = o["method"]?.string ?? "GET"
        guard !method.isEmpty, method.utf8.allSatisfy({ isTokenChar($0) }) else { throw OperationError400("\"method\" is not a method") }
        if o["client"] != nil && o["client"]?.string == nil { throw OperationError400("\"client\" must be an address") }
        client = o["client"]?.string ?? "127.0.0.1"
    }
}
