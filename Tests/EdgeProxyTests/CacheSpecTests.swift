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

@Suite(.serialized, .timeLimit(.minutes(3))) struct CacheSpecTests {
    @Test func thereAreCases() {
        let cases = loadSpecCases()
        #expect(cases.count >= 30, "cache-spec has \(cases.count) cases")
        #expect(Set(cases.map(\.name)).count == cases.count, "case names must be unique")
    }

    @Test(arguments: loadSpecCases())
    func run(_ spec: SpecCase) throws {
        guard let c = try JSONSerialization.jsonObject(with: spec.json) as? [String: Any] else {
            Issue.record("\(spec.file): case is not an object"); return
        }
        let origin = try Origin(name: "spec")
        let routeCache = (c["route_cache"] as? [String: Any]).flatMap { (try? JSONSerialization.data(withJSONObject: $0)).flatMap { String(data: $0, encoding: .utf8) } }
        let route = routeCache.map { #"[{"prefix": "/", "origin": "o", "cache": \#($0)}]"# } ?? #"[{"prefix": "/", "origin": "o"}]"#
        var tenants = [tenantJSON(name: "c", hosts: ["c.test", "www.c.test"], origins: #"{"o": {"servers": ["\#(origin.address)"]}}"#, routes: route)]
        tenants.append(tenantJSON(name: "d", hosts: ["d.test"], origins: #"{"o": {"servers": ["\#(origin.address)"]}}"#, routes: route))
        let edge = try Edge(tenants: tenants)
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
            if let ms = step["sleep_ms"] as? Int { usleep(UInt32(ms) * 1000) }
            guard let req = step["request"] as? [String: Any] else { continue }
            let method = req["method"] as? String ?? "GET"
            let path = req["path"] as? String ?? "/"
            let host = req["host"] as? String ?? "c.test"
            let headers = (req["headers"] as? [String: String] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
            let r = try request(edge.port, method, path, host: host, headers: headers, body: req["body"] as? String)
            let expect = step["expect"] as? [String: Any] ?? [:]
            if let s = expect["status"] as? Int { #expect(r.status == s, "\(at): status") }
            if let b = expect["body"] as? String { #expect(r.text == b, "\(at): body") }
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
            let logPath = expect["origin_path"] as? String ?? path.components(separatedBy: "?")[0]
            if expect["origin_requests"] != nil || expect["origin_saw"] != nil || expect["origin_did_not_see"] != nil {
                let log = try request(origin.port, "GET", "/__log?path=\(logPath)", host: "origin")
                let entries = (try JSONSerialization.jsonObject(with: Data(log.body)) as? [[[String]]]) ?? []
                if let n = expect["origin_requests"] as? Int { #expect(entries.count == n, "\(at): origin saw \(entries.count) requests, expected \(n)") }
                let last = entries.last ?? []
                func seen(_ name: String) -> String? { last.first { $0[0].lowercased() == name.lowercased() }?[1] }
                for (k, v) in expect["origin_saw"] as? [String: String] ?? [:] { #expect(seen(k) == v, "\(at): origin saw \(k): \(seen(k) ?? "nothing")") }
                for k in expect["origin_did_not_see"] as? [String] ?? [] { #expect(seen(k) == nil, "\(at): origin saw \(k): \(seen(k) ?? "")") }
            }
        }
    }
}
