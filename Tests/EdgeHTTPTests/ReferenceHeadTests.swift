// The differential target's check (ReferenceHead.swift) as plain tests: the reference
// reads the shapes that matter the way RFC 9112 and edged's policy say, the parser
// agrees with it on each, and every input in tools/fuzz/regressions/ replays.
import Foundation
import Testing
@testable import EdgeHTTP

@Suite struct ReferenceHeadTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools/fuzz/regressions")

    func verdict(_ s: String) -> ReferenceHead.Verdict { ReferenceHead.parse(Array(s.utf8), limits: differentialLimits) }

    @Test func theReferenceReadsTheGrammar() {
        guard case .accept(let a) = verdict("\r\nPOST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello") else {
            Issue.record("refused a plain POST"); return
        }
        #expect(a.consumed == 69 && a.framing == .length(5) && !a.keepAlive && a.fieldCount == 3)
        guard case .accept(let c) = verdict("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n") else { Issue.record("chunked"); return }
        #expect(c.framing == .chunked)
        for bad in ["GET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n x: folded\r\n\r\n",
                    "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                    "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nContent_Length: 3\r\n\r\n",
                    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, Host\r\n\r\n", "GET / HTTP/1.1\nHost: a\r\n\r\n", "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
                    "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
                    "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n",
                    "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"] {
            #expect(verdict(bad) == .reject, "\(bad.debugDescription) accepted")
        }
        #expect(verdict("GET / HTTP/1.1\r\nHost: a\r\n") == .needMore)
    }

    @Test func theParserAgreesOnKnownShapes() {
        let shapes = ["GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 1\r\n\r\n",
                      "GET / HTTP/1.1\r\nHost: [::1]:80\r\nExpect: 100-Continue\r\nContent-Length: 0\r\n\r\n",
                      "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0012\r\nX: \u{80}\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n",
                      "GET /\u{7F} HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost:\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\n\r\n",
                      "GET /" + String(repeating: "a", count: 60) + " HTTP/1.1\r\nHost: a\r\n\r\n"]
        for s in shapes { Array(s.utf8).withUnsafeBytes { checkRequestHeadAgreement($0) } }
    }

    @Test func regressionsReplay() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.dir.path).sorted()
        #expect(!names.isEmpty)
        for n in names {
            let data = try Data(contentsOf: Self.dir.appendingPathComponent(n))
            Array(data).withUnsafeBytes { checkRequestHeadAgreement($0) }
        }
    }
}
