// The admin API's request parser: bytes in, complete / needMore / error out.
import Testing
@testable import EdgeAdmin

@Suite(.timeLimit(.minutes(3))) struct AdminRequestTests {
    let raw = Array("POST /v1/purge?x=a%20b HTTP/1.1\r\nHost: localhost\r\nContent-Length: 16\r\nAuthorization: Bearer t\r\n\r\n{\"urls\": [\"u\"]}\n".utf8)

    @Test func everySplitPointNeedsMoreUntilTheLastByte() {
        for cut in 0..<raw.count {
            guard case .needMore = AdminRequest.parse(Array(raw[0..<cut])) else {
                Issue.record("complete or error after \(cut) of \(raw.count) bytes")
                return
            }
        }
        guard case .complete(let r) = AdminRequest.parse(raw) else { Issue.record("not complete"); return }
        #expect(r.method == "POST")
        #expect(r.path == "/v1/purge")
        #expect(r.query["x"] == "a b")
        #expect(r.headers["authorization"] == "Bearer t")
        #expect(String(decoding: r.body, as: UTF8.self) == "{\"urls\": [\"u\"]}\n")
        #expect((try? r.jsonObject())?["urls"]?.strings == ["u"])
    }

    @Test func badInputGetsAStatus() {
        func status(_ s: String) -> Int? {
            if case .error(let st, _) = AdminRequest.parse(Array(s.utf8)) { return st }
            return nil
        }
        #expect(status("nonsense\r\n\r\n") == 400)
        #expect(status("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n") == 400)
        #expect(status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n") == 411)
        #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n") == 400)
        #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n") == 413)
        #expect(status("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 20_000)) == 431)
        // The data path's parser, with its strictness: no Host, bare LF, two lengths.
        #expect(status("GET / HTTP/1.1\r\n\r\n") == 400)
        #expect(status("GET / HTTP/1.1\nHost: a\r\n\r\n") == 400)
        #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") == 400)
        guard case .complete(let r) = AdminRequest.parse(Array("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n{".utf8)) else {
            Issue.record("a complete request with a one-byte body did not parse")
            return
        }
        #expect(throws: OperationError400.self) { try r.jsonObject() }
    }

    @Test func theHeadIsReadableBeforeTheBody() throws {
        let end = try #require(raw.firstRange(of: [13, 10, 13, 10])).upperBound
        for cut in 0..<end { #expect(AdminRequest.parseHead(Array(raw[0..<cut])) == nil, "head after \(cut) bytes") }
        for cut in end...raw.count {
            #expect(AdminRequest.parseHead(Array(raw[0..<cut]))?.headers["authorization"] == "Bearer t", "cut \(cut)")
        }
    }
}
