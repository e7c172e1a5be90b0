import Testing
@testable import EdgeHTTP

@Suite(.timeLimit(.minutes(3))) struct PreconditionsTests {
    let lm: Int64 = 1_700_000_000                       // Tue, 14 Nov 2023 22:13:20 GMT
    let lmText = "Tue, 14 Nov 2023 22:13:20 GMT"

    func eval(inm: String? = nil, ims: String? = nil, range: String? = nil, ifRange: String? = nil,
              etag: String? = "\"v1\"", allowed: Bool = true) -> Preconditions.Outcome {
        Preconditions.evaluate(ifNoneMatch: inm, ifModifiedSince: ims, range: range, ifRange: ifRange,
                               etag: etag, lastModified: lm, size: 100, rangeAllowed: allowed, now: lm)
    }

    @Test func conditionals() {
        #expect(eval() == .full)
        #expect(eval(inm: "\"v1\"") == .notModified)
        #expect(eval(inm: "W/\"v1\"") == .notModified)                       // weak comparison
        #expect(eval(inm: "\"x\", \"v1\"") == .notModified)
        #expect(eval(inm: "*") == .notModified)
        #expect(eval(inm: "\"x\"") == .full)
        #expect(eval(inm: "\"v1\"", etag: nil) == .full)
        #expect(eval(ims: lmText) == .notModified)                            // equal is not modified
        #expect(eval(ims: "Wed, 15 Nov 2023 00:00:00 GMT") == .notModified)
        #expect(eval(ims: "Mon, 13 Nov 2023 00:00:00 GMT") == .full)
        #expect(eval(ims: "yesterday") == .full)                              // invalid: ignored
        #expect(eval(inm: "\"x\"", ims: lmText) == .full)                      // If-None-Match wins
        #expect(eval(ims: "Tuesday, 14-Nov-23 22:13:20 GMT") == .notModified)   // RFC 850
        #expect(eval(ims: "Tue Nov 14 22:13:19 2023") == .full)                // asctime, a second before
        #expect(eval(ims: "tue, 14 NOV 2023 22:13:20 gmt") == .notModified)    // names case-insensitively
    }

    @Test func ranges() {
        #expect(eval(range: "bytes=0-9") == .partial(0, 9))
        #expect(eval(range: "bytes=90-") == .partial(90, 99))
        #expect(eval(range: "bytes=-10") == .partial(90, 99))
        #expect(eval(range: "bytes=50-500") == .partial(50, 99))
        #expect(eval(range: "bytes=100-") == .unsatisfiable)
        #expect(eval(range: "bytes=0-1,5-6") == .full)                       // several: the whole answers
        #expect(eval(range: "items=0-1") == .full)
        #expect(eval(range: "bytes=5-1") == .full)
        #expect(eval(range: "bytes=0-9", allowed: false) == .full)
        #expect(eval(inm: "\"v1\"", range: "bytes=0-9") == .notModified)      // a match comes first
        // If-Range: a strong tag or the exact date, else the whole representation.
        #expect(eval(range: "bytes=0-9", ifRange: "\"v1\"") == .partial(0, 9))
        #expect(eval(range: "bytes=0-9", ifRange: "W/\"v1\"") == .full)
        #expect(eval(range: "bytes=0-9", ifRange: "\"v2\"") == .full)
        #expect(eval(range: "bytes=0-9", ifRange: lmText) == .partial(0, 9))
        #expect(eval(range: "bytes=0-9", ifRange: "Wed, 15 Nov 2023 00:00:00 GMT") == .full)
    }
}
