// Properties of the admin API's input side on any bytes: the request parser
// (AdminRequest.parse) and the bodies of purge and explain, shared by the fuzz
// target (tools/fuzz/FuzzAdmin.swift) and the replay test (AdminFuzzReplayTests).
// run.sh compiles this file with EdgeHTTP, EdgeJSON and
// EdgeAdmin/AdminRequest.swift as one module, hence the conditional import.
#if canImport(EdgeAdmin)
@testable import EdgeAdmin
import EdgeHTTP
import EdgeJSON
#endif

func checkAdminProperties(_ p: UnsafeRawBufferPointer) {
    let bytes = Array(p)
    // The request: a prefix that parses whole parses to what the whole input does
    // (the body is the Content-Length bytes after the head, no more), and a prefix
    // refused means the whole input is refused.
    let whole = AdminRequest.parse(bytes)
    if case .complete(let r) = whole {
        precondition(!r.method.isEmpty && r.method.utf8.allSatisfy { isTokenChar($0) }, "a method that is no token")
        precondition(!r.path.contains("?") && r.body.count <= AdminRequest.maxBody, "path or body")
        precondition(r.headers.keys.allSatisfy { $0 == $0.lowercased() }, "field names are kept lowercase")
    }
    if bytes.count > 1 {
        let cut = Int(bytes[0]) % bytes.count
        switch AdminRequest.parse(Array(bytes[0..<cut])) {
        case .complete(let r):
            guard case .complete(let w) = whole else { preconditionFailure("a prefix completes, the whole does not") }
            precondition(r.method == w.method && r.path == w.path && r.query == w.query && r.headers == w.headers && r.body == w.body, "prefix and whole differ")
        case .error:
            guard case .error = whole else { preconditionFailure("a prefix is refused, the whole is not") }
        case .needMore:
            break
        }
    }
    // The bytes as a body: what purge accepts survives the trip to JSON and back
    // (what a fleet peer receives), and what explain accepts is a request to build.
    var req = AdminRequest()
    req.body = bytes
    guard let o = try? req.jsonObject() else { return }
    if let purge = try? PurgeRequest(o) {
        let data = JSON.object(purge.json).serialized()
        let again = (try? JSON.parse(data))?.object
        precondition(again.flatMap { try? PurgeRequest($0) } == purge, "a purge does not survive JSON")
        switch purge.scope {
        case .urls(let u): precondition(!u.isEmpty)
        case .tags(let t, _): precondition(!t.isEmpty)
        case .prefix, .tenant: break
        }
    }
    if let x = try? ExplainRequest(o) {
        precondition(!x.method.isEmpty && x.method.utf8.allSatisfy { isTokenChar($0) }, "explain method")
        precondition(x.headers.allSatisfy { !$0.0.isEmpty && $0.0.utf8.allSatisfy { isTokenChar($0) } }, "explain field names")
    }
}
