// A miss keeps a plain request's head to make its fields later (DeferredFields,
// Cache.swift): it must not hold on to the parser's own field storage, which
// the connection reuses for its next head.
import Testing
@testable import EdgeProxy
import EdgeHTTP

@Suite struct DeferredFieldsTests {
    @Test func keepingARequestsFieldsLeavesTheParsersStorageToTheParser() {
        let head = Array("GET /a?k=1 HTTP/1.1\r\nHost: bench\r\nUser-Agent: t\r\n\r\n".utf8)
        var parsed = RequestHead()
        var scan = HeadScan()
        let result = head.withUnsafeBytes { HeadParser.parseRequest($0, limits: HeadLimits(), into: &parsed, scan: &scan) }
        guard case .complete = result else { Issue.record("not parsed: \(result)"); return }
        let storage = parsed.fields.withUnsafeBufferPointer { $0.baseAddress }
        var spare: [UInt8] = []
        let kept = head.withUnsafeBytes { DeferredFields($0, parsed.fields, reusing: &spare) }
        // The next parse empties the array, keeping its capacity: the same storage,
        // not a copy made because the kept head still refers to it.
        parsed.fields.removeAll(keepingCapacity: true)
        #expect(parsed.fields.withUnsafeBufferPointer { $0.baseAddress } == storage)
        // The kept head still makes the fields it was given.
        let fields = kept.make()
        #expect(fields.first("host") == "bench")
        #expect(fields.first("user-agent") == "t")
    }

    /// The worker's spare array carries the kept fields from one miss to the
    /// next: filled in place, handed back when the exchange is over.
    @Test func theWorkersSpareCarriesTheKeptFieldsFromMissToMiss() {
        let head = Array("GET /a HTTP/1.1\r\nHost: bench\r\nAccept: */*\r\n\r\n".utf8)
        var parsed = RequestHead()
        var scan = HeadScan()
        guard case .complete = head.withUnsafeBytes({ HeadParser.parseRequest($0, limits: HeadLimits(), into: &parsed, scan: &scan) }) else {
            Issue.record("not parsed"); return
        }
        var spare: [UInt8] = []
        spare.reserveCapacity(1024)
        let base = spare.withUnsafeBufferPointer { $0.baseAddress }
        var cache = ExchangeCache()
        cache.deferred = head.withUnsafeBytes { DeferredFields($0, parsed.fields, reusing: &spare) }
        #expect(spare.capacity == 0)
        #expect(cache.deferred?.storage.withUnsafeBufferPointer { $0.baseAddress } == base)
        #expect(cache.deferred?.make().first("accept") == "*/*")
        cache.releaseDeferred(into: &spare)
        #expect(cache.deferred == nil)
        #expect(spare.withUnsafeBufferPointer { $0.baseAddress } == base)
    }
}
