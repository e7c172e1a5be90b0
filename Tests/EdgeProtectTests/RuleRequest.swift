// A request for the rule and signature tests: a real head, parsed by
// EdgeHTTP's parser, seen through RuleInput the way the request filter sees it.
import EdgeHTTP
@testable import EdgeProtect

struct RuleRequest {
    var method = "GET"
    var host = "a.test"
    var path = "/"
    var query = ""
    var fields: [(String, String)] = []
    var client = "192.0.2.1"
    var tls = false
    var sni = ""

    func with<R>(_ body: (RuleInput) -> R) -> R {
        // (The target goes in as path and query below; the request line carries a plain one.)
        let (bytes, head, parsed) = HeadParser.synthesize(method: method, target: "/", host: host, fields: fields, limits: HeadLimits())
        guard case .complete = parsed else { fatalError("test request does not parse: \(fields)") }
        return bytes.withUnsafeBytes { p in
            let m = Array(method.utf8), h = Array(host.utf8), pa = Array(path.utf8), q = Array(query.utf8), s = Array(sni.utf8)
            return m.withUnsafeBytes { mb in h.withUnsafeBytes { hb in pa.withUnsafeBytes { pb in q.withUnsafeBytes { qb in s.withUnsafeBytes { sb in
                body(RuleInput(bytes: p, fields: head.fields, method: mb, host: hb, path: pb, query: qb,
                               client: IPAddress(text: Array(client.utf8))!, tls: tls, sni: sb))
            } } } } }
        }
    }
}
