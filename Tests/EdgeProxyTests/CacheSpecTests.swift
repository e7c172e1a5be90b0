// Runs the declarative HTTP-cache cases in cache-spec/ against a real edge
// server and a scripted python origin on loopback. Time is scripted with
// CacheClock (the cache's clock) instead of sleeping.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy

struct SpecCase: Sendable, CustomStringConvertible {
    let name: String
    let file: String
    let json: Data
    var description: String { name }
}

func loadSpecCases() -> [SpecCase] {
    let dir = repoRoot.appendingPathComponent("cache-spec")
    let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    var out: [SpecCase] = []
    for f in files {
        guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent(f).path),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let cases = obj["cases"] as? [[String: Any]] else {
            out.append(SpecCase(name: "\(f): unreadable", file: f, json: Data()))
            continue
        }
        for c in cases {
            let name = c["name"] as? String ?? "?"
            out.append(SpecCase(name: name, file: f, json: (try? JSONSerialization.data(withJSONObject: c)) ?? Data()))
        }
    }
    return out
}

/// What each file holds: a file or case that goes missing fails the suite.
let specManifest: [String: Int] = [
    "b-ranges.json": 23, "f-freshness.json": 57, "i-invalidation.json": 10, "k-key.json": 16, "m-methods.json": 7, "n-interim.json": 7, "o-operator.json": 16, "p-privacy.json": 24,
    "q-requests.json": 18, "r-revalidation.json": 32, "s-stale.json": 18, "t-tenants.json": 5, "v-vary.json": 13,
]

/// The case schema: every key known, every value of its type. Returns what is wrong.
func specSchemaErrors(_ c: [String: Any]) -> [String] {
    var errors: [String] = []
    func check(_ o: [String: Any], _ at: String, _ allowed: [String: (Any) -> Bool]) {
        for (k, v) in o {
            guard let ok = allowed[k] else { errors.append("\(at): unknown key \"\(k)\""); continue }
            if !ok(v) { errors.append("\(at): \"\(k)\" has the wrong type") }
        }
    }
    let isString: (Any) -> Bool = { $0 is String }
    let isInt: (Any) -> Bool = { v in (v as? NSNumber).map { String(cString: $0.objCType) == "q" || String(cString: $0.objCType) == "i" || String(cString: $0.objCType) == "s" } ?? false }
    let isObject: (Any) -> Bool = { $0 is [String: Any] }
    let isStringMap: (Any) -> Bool = { $0 is [String: String] }
    let isStringList: (Any) -> Bool = { $0 is [String] }
    check(c, "case", ["name": isString, "route_cache": isObject, "server_cache": isObject, "steps": { $0 is [[String: Any]] }])
    if c["name"] == nil { errors.append("case: no \"name\"") }
    // A cache case is about what reaches the origin: at least one step says.
    let steps = c["steps"] as? [[String: Any]] ?? []
    if !steps.contains(where: { s in ["origin_requests", "origin_saw", "origin_did_not_see"].contains { (s["expect"] as? [String: Any])?[$0] != nil } }) {
        errors.append("case: no step asserts origin traffic (origin_requests, origin_saw or origin_did_not_see)")
    }
    for (i, step) in (c["steps"] as? [[String: Any]] ?? []).enumerated() {
        let at = "step \(i + 1)"
        check(step, at, ["script": isObject, "advance": isInt, "request": isObject, "expect": isObject,
                         "wait_log": isObject, "origin": { ($0 as? String) == "stop" }])
        if step["expect"] != nil && step["request"] == nil { errors.append("\(at): \"expect\" without a \"request\"") }
        if let r = step["request"] as? [String: Any] {
            check(r, at + ".request", ["method": isString, "path": isString, "host": isString, "headers": isStringMap, "body": isString,
                                       "version": { ($0 as? String) == "1.0" || ($0 as? String) == "1.1" }])
        }
        if let w = step["wait_log"] as? [String: Any] {
            check(w, at + ".wait_log", ["target": isString, "lines": isInt])
            if w["target"] == nil || w["lines"] == nil { errors.append("\(at).wait_log: needs \"target\" and \"lines\"") }
        }
        if let e = step["expect"] as? [String: Any] {
            check(e, at + ".expect", ["status": isInt, "body": isString, "body_text": { v in (v as? [Any]).map { $0.count == 3 && $0.allSatisfy(isInt) } ?? false },
                "body_seed": isInt, "headers": { v in
                (v as? [String: Any])?.values.allSatisfy { $0 is String || $0 is NSNull } ?? false },
                "header_contains": isStringMap, "header_lacks": isStringMap, "age_at_least": isInt, "age_at_most": isInt, "origin_path": isString,
                "origin_requests": isInt, "origin_saw": isStringMap, "origin_did_not_see": isStringList,
                "interim": { ($0 as? [Any])?.allSatisfy(isInt) ?? false }, "interim_header_contains": isStringMap])
            if e["origin_path"] != nil && e["origin_requests"] == nil && e["origin_saw"] == nil && e["origin_did_not_see"] == nil {
                errors.append("\(at).expect: \"origin_path\" with nothing to check there")
            }
        }
    }
    return errors
}

/// A path as the value of the origin's `/__log?path=` parameter.
func logQuery(_ path: String) -> String {
    var out = ""
    for b in path.utf8 {
        switch b {
        case 0x25, 0x26, 0x3D, 0x3F, 0x23, 0x2B, 0x20: out += String(format: "%%%02X", b)
        default: out.unicodeScalars.append(Unicode.Scalar(b))
        }
    }
    return out
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct CacheSpecTests {
    @Test func everyFileAndCaseIsThere() {
        let cases = loadSpecCases()
        let perFile = Dictionary(grouping: cases, by: \.file).mapValues(\.count)
        #expect(perFile == specManifest, "cache-spec files and their case counts changed: \(perFile)")
        #expect(Set(cases.map(\.name)).count == cases.count, "case names must be unique")
        for c in cases {
            let prefix = c.file.prefix(1)
            #expect(c.name.hasPrefix(prefix), "\(c.name) is in \(c.file): a case's name starts with its file's prefix")
        }
    }

    @Test(arguments: loadSpecCases())
    func run(_ spec: SpecCase) throws {
        let c = try #require(try JSONSerialization.jsonObject(with: spec.json) as? [String: Any], "\(spec.file): case is not an object")
        let schema = specSchemaErrors(c)
        #expect(schema.isEmpty, "\(spec.file): \(spec.name): \(schema.joined(separator: "; "))")
        guard schema.isEmpty else { return }
        let origin = try Origin(name: "spec")
        let routeCache = (c["route_cache"] as? [String: Any]).flatMap { (try? JSONSerialization.data(withJSONObject: $0)).flatMap { String(data: $0, encoding: .utf8) } }
        let route = routeCache.map { #"[{"prefix": "/", "origin": "o", "cache": \#($0)}]"# } ?? #"[{"prefix": "/", "origin": "o"}]"#
        var tenants = [tenantJSON(name: "c", hosts: ["c.test", "www.c.test"], origins: #"{"o": {"servers": ["\#(origin.address)"]}}"#, routes: route)]
        tenants.append(tenantJSON(name: "d", hosts: ["d.test"], origins: #"{"o": {"servers": ["\#(origin.address)"]}}"#, routes: route))
        let serverCache = (c["server_cache"] as? [String: Any]).flatMap { (try? JSONSerialization.data(withJSONObject: $0)).flatMap { String(data: $0, encoding: .utf8) } }
        let edge = try Edge(tenants: tenants, server: serverCache.map { #"{"cache": \#($0)}"# })
        defer { edge.stop() }
        let clock = edge.server.clock      // the cache and the origin share one scripted clock
        let steps = c["steps"] as? [[String: Any]] ?? []
        for (i, step) in steps.enumerated() {
            let at = "\(spec.name) step \(i + 1)"
            if let script = step["script"] {
                let body = try JSONSerialization.data(withJSONObject: script)
                let r = try request(origin.port, "POST", "/__script", host: "origin", body: String(decoding: body, as: UTF8.self))
                #expect(r.status == 200, "\(at): origin script refused")
            }
            if let secs = step["advance"] as? Int {
                clock.advance(by: Int64(secs))
                _ = try request(origin.port, "POST", "/__clock", host: "origin", body: #"{"offset": \#(clock.offsetSeconds)}"#)
            }
            if step["origin"] as? String == "stop" { origin.stop() }
            if let w = step["wait_log"] as? [String: Any], let target = w["target"] as? String, let lines = w["lines"] as? Int {
                // Something edge does in the background (a refresh) has finished: its access log line is written.
                try waitUntil("\(at): \(lines) access log lines for \(target)") {
                    edge.accessLog().filter { ($0["target"] as? String) == target }.count >= lines
                }
            }
            guard let req = step["request"] as? [String: Any] else { continue }
            let method = req["method"] as? String ?? "GET"
            let path = req["path"] as? String ?? "/"
            let host = req["host"] as? String ?? "c.test"
            let headers = (req["headers"] as? [String: String] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
            // Interim (1xx) responses are read and kept apart from the final one.
            let client = try Client(port: edge.port)
            var s = "\(method) \(path) HTTP/\(req["version"] as? String ?? "1.1")\r\nHost: \(host)\r\n"
            for h in headers { s += h + "\r\n" }
            if let b = req["body"] as? String { s += "Content-Length: \(b.utf8.count)\r\n" }
            s += "Connection: close\r\n\r\n" + (req["body"] as? String ?? "")
            client.send(s)
            var interim: [Response] = []
            var r = try client.readResponse(headRequest: method == "HEAD")
            while r.status < 200 { interim.append(r); r = try client.readResponse(headRequest: method == "HEAD") }
            let expect = step["expect"] as? [String: Any] ?? [:]
            if let statuses = expect["interim"] as? [Int] { #expect(interim.map(\.status) == statuses, "\(at): interim responses \(interim.map(\.status))") }
            for (k, v) in expect["interim_header_contains"] as? [String: String] ?? [:] {
                #expect((interim.first?.header(k) ?? "").contains(v), "\(at): the first interim response's \(k) is \(interim.first?.header(k) ?? "absent"), expected to contain \(v)")
            }
            if let s = expect["status"] as? Int { #expect(r.status == s, "\(at): status \(r.status)") }
            if let b = expect["body"] as? String { #expect(r.text == b, "\(at): body \(r.text.prefix(80).debugDescription)") }
            if let t = expect["body_text"] as? [Int] {
                // Bytes first...last of the origin's generated text of that length (script "body_text").
                let text = Array(originText(t[0], seed: expect["body_seed"] as? Int ?? 12345).utf8)
                #expect(r.body == Array(text[t[1]...t[2]]), "\(at): body of \(r.body.count) bytes is not bytes \(t[1])-\(t[2]) of the text")
            }
            for (k, v) in expect["headers"] as? [String: Any] ?? [:] {
                if v is NSNull { #expect(r.header(k) == nil, "\(at): \(k) should be absent, is \(r.header(k) ?? "")") }
                else { #expect(r.header(k) == v as? String, "\(at): \(k) is \(r.header(k) ?? "absent")") }
            }
            for (k, v) in expect["header_contains"] as? [String: String] ?? [:] {
                #expect((r.header(k) ?? "").contains(v), "\(at): \(k) is \(r.header(k) ?? "absent"), expected to contain \(v)")
            }
            for (k, v) in expect["header_lacks"] as? [String: String] ?? [:] {
                #expect(!(r.header(k) ?? "").contains(v), "\(at): \(k) is \(r.header(k) ?? "absent"), expected not to contain \(v)")
            }
            if let minAge = expect["age_at_least"] as? Int { #expect(Int(r.header("Age") ?? "") ?? -1 >= minAge, "\(at): Age \(r.header("Age") ?? "absent")") }
            if let maxAge = expect["age_at_most"] as? Int { #expect((Int(r.header("Age") ?? "") ?? Int.max) <= maxAge, "\(at): Age \(r.header("Age") ?? "absent")") }
            // The origin's log is keyed by the target the origin received, query included.
            let logPath = expect["origin_path"] as? String ?? path
            if let rec = ProcessInfo.processInfo.environment["EDGE_SPEC_RECORD"], !origin.child.stopped {
                // Writing cases (not run in CI): what the origin saw after each request.
                let log = try request(origin.port, "GET", "/__log?path=\(logQuery(logPath))", host: "origin")
                let n = ((try? JSONSerialization.jsonObject(with: Data(log.body))) as? [Any])?.count ?? -1
                let line = "\(spec.name)\t\(i)\t\(n)\n"
                if let h = FileHandle(forWritingAtPath: rec) { h.seekToEndOfFile(); h.write(Data(line.utf8)); h.closeFile() }
            }
            if expect["origin_requests"] != nil || expect["origin_saw"] != nil || expect["origin_did_not_see"] != nil {
                let log = try request(origin.port, "GET", "/__log?path=\(logQuery(logPath))", host: "origin")
                let entries = try #require(try JSONSerialization.jsonObject(with: Data(log.body)) as? [[[String]]], "\(at): origin log")
                if let n = expect["origin_requests"] as? Int { #expect(entries.count == n, "\(at): origin saw \(entries.count) requests for \(logPath), expected \(n)") }
                if expect["origin_saw"] != nil || expect["origin_did_not_see"] != nil {
                    // Fields of the origin's last request for the path; there must be one.
                    #expect(!entries.isEmpty, "\(at): the origin saw no request for \(logPath) to check fields of")
                    let last = entries.last ?? []
                    func seen(_ name: String) -> String? { last.first { $0.first?.lowercased() == name.lowercased() }?.last }
                    for (k, v) in expect["origin_saw"] as? [String: String] ?? [:] { #expect(seen(k) == v, "\(at): origin saw \(k): \(seen(k) ?? "nothing")") }
                    for k in expect["origin_did_not_see"] as? [String] ?? [] { #expect(seen(k) == nil, "\(at): origin saw \(k): \(seen(k) ?? "")") }
                }
            }
        }
    }
}
