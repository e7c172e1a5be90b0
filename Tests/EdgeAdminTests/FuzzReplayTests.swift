// Every input in tools/fuzz/regressions/ through the admin API's property checks
// (AdminProperties.swift), as a plain test, and the body shapes the API documents.
import Foundation
import Testing
@testable import EdgeAdmin
import EdgeJSON

@Suite struct AdminFuzzReplayTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools/fuzz/regressions")

    @Test func regressionsReplay() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.dir.path).sorted()
        #expect(names.contains { $0.hasPrefix("admin-") })
        for n in names {
            let data = try Data(contentsOf: Self.dir.appendingPathComponent(n))
            Array(data).withUnsafeBytes { checkAdminProperties($0) }
        }
    }

    @Test func aQueryOfBareEqualsSignsIsReadNotTrappedOn() {
        guard case .complete(let r) = AdminRequest.parse(Array("GET /v1/stats?=&a&=b&c=d= HTTP/1.1\r\nHost: a\r\n\r\n".utf8)) else {
            Issue.record("refused"); return
        }
        #expect(r.path == "/v1/stats" && r.query == ["": "b", "a": "", "c": "d="])
    }

    func purge(_ json: String) -> PurgeRequest? {
        guard let o = (try? JSON.parse(json))?.object else { return nil }
        return try? PurgeRequest(o)
    }

    @Test func purgeBodies() {
        #expect(purge("{\"urls\": [\"http://a/x\"]}") == PurgeRequest(scope: .urls(["http://a/x"]), soft: false))
        #expect(purge("{\"tags\": [\"t\"], \"tenant\": \"a\", \"soft\": true}") == PurgeRequest(scope: .tags(["t"], tenant: "a"), soft: true))
        #expect(purge("{\"tenant\": \"a\", \"all\": true}") == PurgeRequest(scope: .tenant("a"), soft: false))
        for bad in ["{}", "{\"urls\": []}", "{\"urls\": [\"u\"], \"prefix\": \"p\"}", "{\"all\": true}", "{\"tenant\": \"a\", \"all\": 1}",
                    "{\"urls\": [\"u\"], \"soft\": 1}", "{\"urls\": [\"u\"], \"tenant\": \"a\"}", "{\"prefix\": 3}", "{\"urls\": [\"u\"], \"x\": 1}"] {
            #expect(purge(bad) == nil, "\(bad) accepted")
        }
        for text in ["{\"urls\": [\"http://a/x\"], \"soft\": true}", "{\"tags\": [\"t\"]}", "{\"tenant\": \"a\", \"all\": true}", "{\"prefix\": \"http://a/\"}",
                     "POST /v1/purge HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"] {
            Array(text.utf8).withUnsafeBytes { checkAdminProperties($0) }
        }
    }

    @Test func explainBodies() throws {
        let o = try #require(try JSON.parse("{\"url\": \"http://a/\", \"headers\": [\"Accept: x\"], \"method\": \"HEAD\"}").object)
        let x = try ExplainRequest(o)
        #expect(x.url == "http://a/" && x.method == "HEAD" && x.client == "127.0.0.1" && x.headers.count == 1 && x.headers[0] == ("Accept", "x"))
        for bad in ["{}", "{\"url\": \"u\", \"headers\": [\"NoColon\"]}", "{\"url\": \"u\", \"headers\": [\": empty\"]}", "{\"url\": \"u\", \"method\": \"G T\"}",
                    "{\"url\": \"u\", \"headers\": \"Accept: x\"}", "{\"url\": \"u\", \"client\": 7}"] {
            let b = try #require(try JSON.parse(bad).object)
            #expect(throws: (any Error).self, "\(bad)") { try ExplainRequest(b) }
        }
    }
}
