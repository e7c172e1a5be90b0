import Testing
@testable import EdgeProtect

@Suite struct RateLimitTests {
    let second: Int64 = 1_000_000

    @Test func ratesParse() {
        #expect(RateSpec(rate: "10/s", burst: 0)?.interval == 100_000)
        #expect(RateSpec(rate: "10r/s", burst: 0)?.interval == 100_000)
        #expect(RateSpec(rate: "60/m", burst: 0)?.interval == 1_000_000)
        #expect(RateSpec(rate: "2/10s", burst: 0)?.interval == 5_000_000)
        #expect(RateSpec(rate: "1/h", burst: 3)?.quota == 4)
        for bad in ["10", "0/s", "-1/s", "10/x", "10/0s", "/s", "10/", "ten/s", "10/s/s"] {
            #expect(RateSpec(rate: bad, burst: 0) == nil, "\(bad)")
        }
        #expect(RateSpec(rate: "1/s", burst: -1) == nil)
        // Periods or depths that would overflow the microsecond arithmetic (a fuzzer find).
        #expect(RateSpec(rate: "6/3333333313333300200m", burst: 0) == nil)
        #expect(RateSpec(rate: "1/1000000d", burst: 1_000_000) == nil)
        #expect(RateSpec(rate: "1/d", burst: 1_000_000) != nil)
    }

    /// nginx `rate=10r/s burst=5 nodelay`: six at once, then one per 100 ms.
    @Test func burstThenSteadyRate() {
        let spec = RateSpec(rate: "10/s", burst: 5)!
        var tat: Int64 = 0
        let t0: Int64 = 50 * second
        var allowed = 0
        for i in 0..<10 {
            let (d, next) = gcra(spec, storedTAT: tat, now: t0)
            if case .allowed(let remaining, _) = d { allowed += 1; #expect(remaining == 5 - i); tat = next }
            else if case .limited(let after) = d { #expect(after == 100_000) }   // tat stays put while limited
        }
        #expect(allowed == 6)
        // 100 ms later one more passes, and then not the next.
        if case .allowed = gcra(spec, storedTAT: tat, now: t0 + 100_000).0 {} else { Issue.record("one after an interval") }
        let (d1, t1) = gcra(spec, storedTAT: tat, now: t0 + 100_000)
        if case .limited(let after) = gcra(spec, storedTAT: t1, now: t0 + 100_000).0 { #expect(after == 100_000) }
        else { Issue.record("the second after an interval") }
        _ = d1
        // Idle for a whole window: the full burst is back.
        let (d2, _) = gcra(spec, storedTAT: tat, now: t0 + 10 * second)
        #expect(d2 == .allowed(remaining: 5, resetMicros: 100_000))
    }

    @Test func aTableKeepsKeysApart() {
        let table = RateTable(keys: 1024)
        let spec = RateSpec(rate: "1/s", burst: 1)!
        let now: Int64 = 10 * second
        for k in 1...100 as ClosedRange<UInt64> {
            #expect(table.take(k &* 0x9E37_79B9_7F4A_7C15, spec, now: now) == .allowed(remaining: 1, resetMicros: second))
            #expect(table.take(k &* 0x9E37_79B9_7F4A_7C15, spec, now: now) == .allowed(remaining: 0, resetMicros: 2 * second))
            #expect(table.take(k &* 0x9E37_79B9_7F4A_7C15, spec, now: now) == .limited(retryAfterMicros: second))
        }
        #expect(table.evictions == 0)
        #expect(table.activeKeys(now: now) == 100)
        #expect(table.activeKeys(now: now + 3 * second) == 0)
    }

    @Test func memoryIsBoundedAndEvictsTheNearestToExpiry() {
        let table = RateTable(keys: 1)   // the smallest: one set of 4 per stripe
        #expect(table.capacity == 4 * 256)
        let spec = RateSpec(rate: "1/m", burst: 0)!
        // Five keys into one set (same low byte, same set): the fifth evicts the oldest.
        let keys: [UInt64] = (0..<5).map { UInt64($0) << 8 | 0x42 }
        for (i, k) in keys.enumerated() { _ = table.take(k, spec, now: Int64(i) * second) }
        #expect(table.evictions == 1)
        // The first key was evicted: it passes again; the others are still limited.
        if case .allowed = table.take(keys[0], spec, now: 5 * second) {} else { Issue.record("evicted key") }
        if case .limited = table.take(keys[4], spec, now: 5 * second) {} else { Issue.record("kept key") }
        // 1 M keys take 16 MiB.
        #expect(RateTable(keys: 1 << 20).capacity == 1 << 20)
    }

    @Test func expiredEntriesAreReusedWithoutEviction() {
        let table = RateTable(keys: 1)
        let spec = RateSpec(rate: "10/s", burst: 0)!
        for round in 0..<50 {
            let k = UInt64(round) << 8 | 0x07
            _ = table.take(k, spec, now: Int64(round) * second)
        }
        #expect(table.evictions == 0)
    }

    @Test func threadsShareOneLimit() async {
        let table = RateTable(keys: 4096)
        let spec = RateSpec(rate: "100/m", burst: 99)!   // 100 at once
        let passed = await withTaskGroup(of: Int.self) { g in
            for _ in 0..<4 {
                g.addTask {
                    var n = 0
                    for _ in 0..<100 { if case .allowed = table.take(12345, spec, now: 1000 * 1_000_000) { n += 1 } }
                    return n
                }
            }
            return await g.reduce(0, +)
        }
        #expect(passed == 100)
    }

    @Test func keysSeparateTheirParts() {
        func key(_ parts: [String]) -> UInt64 {
            var k = RateKey(limit: 1)
            for p in parts { Array(p.utf8).withUnsafeBytes { k.add($0) } }
            return k.value
        }
        #expect(key(["ab", "c"]) != key(["a", "bc"]))
        #expect(key(["a"]) == key(["a"]))
        var other = RateKey(limit: 2)
        Array("a".utf8).withUnsafeBytes { other.add($0) }
        #expect(other.value != key(["a"]))
    }
}
