// Resume.swift's pure pieces: which forwarded requests carried a Range of
// their own (a relay of those is not resumed), and which tags can resume.
// The resumes themselves run against real edged, origin and disk in
// DiskStreamTests and CollapsingTests.
import Testing
@testable import EdgeProxy
import EdgeHTTP

@Suite struct ResumeTests {
    func names(_ head: String) -> Bool {
        Array(head.utf8).withUnsafeBytes { Worker.namesRange($0) }
    }

    @Test func aForwardedHeadNamesARangeOnlyInAFieldName() {
        #expect(names("GET /a HTTP/1.1\r\nHost: h\r\nRange: bytes=0-9\r\n\r\n"))
        #expect(names("GET /a HTTP/1.1\r\nHost: h\r\nif-range: \"t\"\r\n\r\n"))
        #expect(names("GET /a HTTP/1.1\r\nRANGE:bytes=5-\r\n\r\n"))
        // A value, a path or a longer name that holds the word is no Range field.
        #expect(!names("GET /range: HTTP/1.1\r\nHost: h\r\nX-Range: 1\r\nAccept-Ranges: bytes\r\nX: Range: 1\r\n\r\n"))
        #expect(!names("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
        // Cut short at the end of the buffer: no read past it.
        #expect(!names("GET / HTTP/1.1\r\nRang"))
        #expect(!names("\n"))
    }

    @Test func onlyAStrongTagOnAGetCanResume() {
        #expect(StreamResume.make(.get, etag: "\"v1\"", total: 10)?.tag == "\"v1\"")
        #expect(StreamResume.make(.get, etag: "W/\"v1\"", total: 10) == nil)
        #expect(StreamResume.make(.get, etag: nil, total: 10) == nil)
        #expect(StreamResume.make(.head, etag: "\"v1\"", total: 10) == nil)
        #expect(StreamResume.make(.get, etag: "\"", total: 10) == nil)
    }
}
