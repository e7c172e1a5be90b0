// Slices: the pure rules (ranges asked and answered, alignment, the plan of
// which slices answer a range) and the fill that cuts a body into slices, fed
// at every split point.
import Testing
@testable import EdgeCache
import EdgeHTTP

@Suite struct SlicesTests {
    @Test func contentRangeIsStrict() {
        #expect(Slices.contentRange("bytes 0-9/10")! == (0, 9, 10))
        #expect(Slices.contentRange("BYTES 65536-131071/300000")! == (65536, 131071, 300000))
        for bad in ["bytes 0-9/*", "bytes */10", "bytes 5-4/10", "bytes 0-10/10", "bytes 0-9/10 ", "items 0-9/10", "bytes 0-9", "bytes -9/10",
                    "bytes 0-99999999999999999999/1", ""] {
            #expect(Slices.contentRange(bad) == nil, "\(bad)")
        }
    }

    @Test func askedRanges() {
        #expect(Slices.asked("bytes=5-9") == .span(5, 9))
        #expect(Slices.asked("bytes=5-") == .span(5, nil))
        #expect(Slices.asked("bytes=-5") == .suffix(5))
        for bad in ["bytes=9-5", "bytes=-0", "bytes=0-1,5-6", "bytes=-", "bytes= 1-2", "items=1-2", "bytes=x-1", "bytes=1-2x"] {
            #expect(Slices.asked(bad) == nil, "\(bad)")
        }
    }

    @Test func alignedToWholeSlices() {
        #expect(Slices.aligned(first: 70000, last: 70099, size: 65536) == (65536, 131071))
        #expect(Slices.aligned(first: 60000, last: 70000, size: 65536) == (0, 131071))
        #expect(Slices.aligned(first: 131072, last: nil, size: 65536) == (131072, nil))
        #expect(Slices.aligned(first: 0, last: Int64.max - 1, size: 65536).last == nil)
    }

    @Test func planCoversExactlyTheRange() {
        let plan = Slices.plan(first: 60000, last: 140000, size: 65536)
        #expect(plan.map(\.index) == [0, 1, 2])
        #expect(plan[0].from == 60000 && plan[0].to == 65536)
        #expect(plan[1].from == 0 && plan[1].to == 65536)
        #expect(plan[2].from == 0 && plan[2].to == 140001 - 131072)
        #expect(Slices.plan(first: 0, last: -1, size: 10).isEmpty)
        #expect(Slices.bounds(4, size: 65536, complete: 300000) == 262144...299999)
    }

    @Test func fillCutsSlicesAtEverySplit() {
        let body = (0..<250).map { UInt8($0 % 251) }
        let fields = HeaderList([("ETag", "\"a\""), ("Content-Type", "text/plain")])
        let fresh = Freshness(lifetime: 60, source: .maxAge, correctedInitialAge: 0, responseTime: 0, mustRevalidate: false, noCache: false,
                              staleWhileRevalidate: nil, staleIfError: nil)
        for offset in [0, 37, 100] {
            for split in 1..<(body.count - offset) {
                let f = SliceFill(key: "k", tenant: "t", headers: fields, freshness: fresh, tags: [], startedAt: 0, size: 100, complete: 250,
                                  offset: Int64(offset))
                var got: [(Int64, [UInt8], HeaderList)] = []
                body[offset...].withUnsafeBytes { p in
                    got += f.append(p.baseAddress!, split)
                    got += f.append(p.baseAddress! + split, p.count - split)
                }
                // Only slices seen from their first byte are kept.
                let want: [Int64] = offset == 0 ? [0, 1, 2] : [1, 2]
                #expect(got.map(\.0) == want, "offset \(offset) split \(split)")
                for (i, bytes, h) in got {
                    let r = Slices.bounds(i, size: 100, complete: 250)
                    #expect(bytes == Array(body[Int(r.lowerBound)...Int(r.upperBound)]))
                    #expect(h.first("content-range") == "bytes \(r.lowerBound)-\(r.upperBound)/250")
                    #expect(h.first("etag") == "\"a\"")
                }
            }
        }
    }

    @Test func aStoredSliceKnowsWhatItIs() {
        let fresh = Freshness(lifetime: 60, source: .maxAge, correctedInitialAge: 0, responseTime: 0, mustRevalidate: false, noCache: false,
                              staleWhileRevalidate: nil, staleIfError: nil)
        let s = StoredResponse(key: Slices.key("k", 1), variant: "", vary: [], tenant: "t", status: 206,
                               headers: HeaderList([("ETag", "\"a\""), ("Content-Range", "bytes 100-199/250")]), body: [], freshness: fresh)
        #expect(s.slice == SliceInfo(first: 100, last: 199, complete: 250, etag: "\"a\""))
        #expect(CacheKey.base(s.key) == "k")
        let weak = StoredResponse(key: "k", variant: "", vary: [], tenant: "t", status: 206,
                                  headers: HeaderList([("ETag", "W/\"a\""), ("Content-Range", "bytes 100-199/250")]), body: [], freshness: fresh)
        #expect(weak.slice == nil)
    }
}
