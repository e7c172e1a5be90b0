// The live view's arithmetic: points from counter growth, smoothed URL rates.
import Testing
@testable import EdgeAdmin
@testable import EdgeProxy

@Suite(.timeLimit(.minutes(3))) struct LiveTests {
    @Test func aPointIsTheSecondsGrowth() {
        var d = [Int](repeating: 0, count: TenantSlot.count)
        d[TenantSlot.statusClass + 1] = 90        // 2xx
        d[TenantSlot.statusClass + 4] = 10        // 5xx
        d[TenantSlot.cache + CacheOutcome.hit.rawValue] = 60
        d[TenantSlot.cache + CacheOutcome.staleHit.rawValue] = 10
        d[TenantSlot.cache + CacheOutcome.miss.rawValue] = 30
        d[TenantSlot.cache + CacheOutcome.bypass.rawValue] = 0
        d[TenantSlot.bytesOut] = 123_456
        d[TenantSlot.originErrors] = 3
        d[TenantSlot.latency + 4] = 100            // all in one bucket
        let p = LiveSampler.point(1000, d)
        #expect(p.t == 1000 && p.requests == 100 && p.hits == 70 && p.lookups == 100 && p.bytes == 123_456 && p.originErrors == 3)
        #expect(p.classes.1 == 90 && p.classes.4 == 10)
        #expect(p.p50 > Float(latencyBounds[3]) / 1000 && p.p99 <= Float(latencyBounds[4]) / 1000)
        let row = LiveBody.row(p)
        #expect(row.count == LiveBody.columns.count && row[2] == 0.7)
        #expect(LiveBody.row(LiveSampler.point(1, [Int](repeating: 0, count: TenantSlot.count)))[2] == -1, "no lookups: no ratio")
    }

    @Test func seriesKeepFifteenMinutesInOrder() {
        var s = LiveSeries()
        for t in 0..<(LiveSampler.points + 10) { s.append(LivePoint(t: Int64(t), requests: 1, lookups: 0, hits: 0, bytes: 0, classes: (0, 0, 0, 0, 0), originErrors: 0, p50: -1, p99: -1)) }
        let all = s.points(after: -1)
        #expect(all.count == LiveSampler.points && all.first?.t == 10 && all.last?.t == Int64(LiveSampler.points + 9))
        #expect(s.points(after: Int64(LiveSampler.points + 7)).map(\.t) == [Int64(LiveSampler.points + 8), Int64(LiveSampler.points + 9)])
    }

    @Test func urlRatesFollowTheTrafficAndStayBounded() {
        var r = URLRates()
        for _ in 0..<30 {
            for _ in 0..<10 { r.note("/hot", miss: false) }
            r.note("/cold", miss: true)
            r.tick()
        }
        let top = r.top(10, misses: false)
        #expect(top.map(\.url) == ["/hot", "/cold"])
        #expect(top[0].rate > 9 * (1 - 0.5) && top[0].rate <= 10, "about ten a second: \(top)")
        #expect(r.top(10, misses: true).map(\.url) == ["/cold"])
        // Quiet URLs fade out.
        for _ in 0..<120 { r.tick() }
        #expect(r.top(10, misses: false).isEmpty)
        // Bounded: at most urlsPerTenant kept.
        for i in 0..<(LiveSampler.urlsPerTenant * 2) { r.note("/u\(i)", miss: false) }
        r.tick()
        #expect(r.counts.count <= LiveSampler.urlsPerTenant)
    }
}
