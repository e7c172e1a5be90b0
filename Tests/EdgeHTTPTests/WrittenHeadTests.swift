// WrittenHead: the writer's own response heads read back for HTTP/2.
import Testing
@testable import EdgeHTTP

@Suite(.timeLimit(.minutes(3))) struct WrittenHeadTests {
    static let head = Array(("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sun, 06 Dec 2026 22:03:39 GMT\r\nConnection: keep-alive\r\n"
        + "Keep-Alive: timeout=5\r\nCache-Status: edge; hit; ttl=3598\r\nTransfer-Encoding: chunked\r\nProxy-Foo: x\r\n"
        + "Content-Length:  1024 \r\nx-request-id: abc\r\n\r\nBODY").utf8)

    func fields(_ w: WrittenHead, _ p: UnsafeRawBufferPointer) -> [String] {
        (0..<w.fieldCount).map { k in
            let (n, v) = w.field(k, in: p)
            return String(decoding: n, as: UTF8.self) + "=" + String(decoding: v, as: UTF8.self)
        }
    }

    /// Every cut short of the blank line is incomplete; the whole head gives the
    /// status, the end-to-end fields in order (hop-by-hop ones left out, values
    /// trimmed) and the framing fields.
    @Test func readsAtEverySplit() {
        let end = WrittenHeadTests.head.count - 4
        var w = WrittenHead()
        for cut in 0..<end {
            let got = Array(WrittenHeadTests.head[0..<cut]).withUnsafeBytes { w.read($0) }
            #expect(got == nil, "cut at \(cut)")
        }
        WrittenHeadTests.head.withUnsafeBytes { p in
            #expect(w.read(p) == end)
            #expect(w.status == 200)
            #expect(fields(w, p) == ["Server=nginx", "Date=Sun, 06 Dec 2026 22:03:39 GMT", "Cache-Status=edge; hit; ttl=3598",
                                     "Content-Length=1024", "x-request-id=abc"])
            #expect(w.chunked && w.contentLength == 1024)
            #expect(w.framing(requestWasHead: false) == .chunked)
            #expect(w.framing(requestWasHead: true) == .none)
        }
    }

    @Test func framingFollowsTheStatusAndFields() {
        func framing(_ text: String, head: Bool = false) -> BodyFraming? {
            var w = WrittenHead()
            return Array(text.utf8).withUnsafeBytes { p in w.read(p).map { _ in w.framing(requestWasHead: head) } }
        }
        #expect(framing("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n") == BodyFraming.none)
        #expect(framing("HTTP/1.1 304 Not Modified\r\n\r\n") == BodyFraming.none)
        #expect(framing("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n") == BodyFraming.none)
        #expect(framing("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") == BodyFraming.none)
        #expect(framing("HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n") == .length(12345))
        #expect(framing("HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n", head: true) == BodyFraming.none)
        #expect(framing("HTTP/1.1 500 Oops\r\n\r\n") == .untilClose)
    }

    /// The word-at-a-time search finds the first byte wherever it is, with
    /// bytes at or above 0x80 and the sought byte's neighbours around it.
    @Test func findIsTheFirstOccurrence() {
        var rng: UInt64 = 1
        for _ in 0..<2000 {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            let n = Int(rng >> 58)
            var bytes = (0..<n).map { i in UInt8(truncatingIfNeeded: (rng >> UInt64(i % 56)) | 0x80) }
            let target: UInt8 = (rng & 1) == 0 ? 10 : 58
            for k in 0..<n where (rng >> UInt64(k % 60)) & 7 == 0 { bytes[k] = [target, target &+ 1, target &- 1, 0][k % 4] }
            let from = n == 0 ? 0 : Int(rng % UInt64(n))
            let want = bytes[from..<n].firstIndex(of: target)
            let got = bytes.withUnsafeBytes { WrittenHead.find(target, $0, from: from, to: n) }
            #expect(got == want, "\(bytes) from \(from)")
        }
    }
}
