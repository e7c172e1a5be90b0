import Foundation
import Testing
@testable import EdgeCache

func object(_ key: String, variant: String = "", vary: [String] = [], size: Int = 100, tenant: String = "t") -> StoredResponse {
    StoredResponse(key: key, variant: variant, vary: vary, tenant: tenant, status: 200, headers: HeaderList([("Content-Type", "text/plain")]),
                   body: [UInt8](repeating: 120, count: size),
                   freshness: Freshness(lifetime: 60, source: .maxAge, correctedInitialAge: 0, responseTime: 0, mustRevalidate: false,
                                        noCache: false, staleWhileRevalidate: nil, staleIfError: nil))
}

@Suite(.timeLimit(.minutes(3))) struct MemoryStoreTests {
    @Test func variantsAreSelectedByTheirVaryFields() throws {
        let store = MemoryStore(capacity: 1 << 20, shardCount: 1)
        let vary = ["Accept-Encoding"]
        let gz = try #require(CacheKey.variant(vary: vary, request: HeaderList([("Accept-Encoding", "gzip")])))
        let id = try #require(CacheKey.variant(vary: vary, request: HeaderList()))
        store.insert(object("k", variant: gz, vary: vary, size: 10))
        store.insert(object("k", variant: id, vary: vary, size: 20))
        #expect(store.lookup(key: "k", request: HeaderList([("accept-encoding", "GZIP")]))?.body.count == 10)
        #expect(store.lookup(key: "k", request: HeaderList())?.body.count == 20)
        #expect(store.lookup(key: "k", request: HeaderList([("Accept-Encoding", "br")])) == nil)
        // Same variant again replaces it; removal takes every variant.
        store.insert(object("k", variant: gz, vary: vary, size: 30))
        #expect(store.objectCount == 2)
        #expect(store.lookup(key: "k", request: HeaderList([("Accept-Encoding", "gzip")]))?.body.count == 30)
        #expect(store.remove(key: "k") == 2)
        #expect(store.objectCount == 0 && store.bytesUsed == 0)
    }

    @Test func staysWithinCapacityAndRefusesHugeObjects() {
        let store = MemoryStore(capacity: 100_000, maxObjectBytes: 20_000, shardCount: 4)
        for i in 0..<500 { store.insert(object("k\(i)", size: 1000)) }
        #expect(store.bytesUsed <= 100_000)
        #expect(store.objectCount > 40)
        #expect(!store.insert(object("huge", size: 50_000)))
        #expect(store.lookup(key: "huge", request: HeaderList()) == nil)
    }

    @Test func aScanDoesNotEvictTheWorkingSet() {
        let store = MemoryStore(capacity: 200 * 1128, shardCount: 1)
        let hot = (0..<50).map { "hot\($0)" }
        for k in hot { store.insert(object(k, size: 1000)) }
        for _ in 0..<3 { for k in hot { _ = store.lookup(key: k, request: HeaderList()) } }
        // A crawler walks 2,000 URLs once each, with the hot set still in use.
        for i in 0..<20000 {
            store.insert(object("scan\(i)", size: 1000))
            if i % 20 == 0 { for k in hot { _ = store.lookup(key: k, request: HeaderList()) } }
        }
        let survivors = hot.filter { store.lookup(key: $0, request: HeaderList()) != nil }.count
        #expect(survivors >= 45, "only \(survivors) of 50 hot objects survived the scan")
        #expect(store.bytesUsed <= 200 * 1128)
    }

    @Test func aReturningKeyGoesStraightToMain() {
        let store = MemoryStore(capacity: 20 * 1128, shardCount: 1)
        store.insert(object("once", size: 1000))
        for i in 0..<40 { store.insert(object("fill\(i)", size: 1000)) }
        #expect(store.lookup(key: "once", request: HeaderList()) == nil)      // evicted, now a ghost
        store.insert(object("once", size: 1000))
        for i in 40..<60 { store.insert(object("fill\(i)", size: 1000)) }
        #expect(store.lookup(key: "once", request: HeaderList()) != nil)      // in main, survives the fill
    }
}

@Suite(.timeLimit(.minutes(3))) struct MemoryStoreLimitsTests {
    @Test func variantsPerKeyAreCapped() {
        let store = MemoryStore(capacity: 1 << 20, shardCount: 1, maxVariants: 3)
        for i in 0..<5 { store.insert(object("k", variant: "v\(i)", vary: ["X-V"], size: 10)) }
        #expect(store.variants(key: "k").map(\.variant) == ["v2", "v3", "v4"])
        #expect(store.objectCount == 3)
    }

    @Test func aTenantAtItsQuotaCannotTakeMore() {
        let one = object("flood0", size: 1000, tenant: "flood").cost
        let store = MemoryStore(capacity: 1 << 20, shardCount: 4, quotas: ["flood": 10 * one + one / 2])
        for i in 0..<50 { store.insert(object("quiet\(i)", size: 1000, tenant: "quiet")) }
        var admitted = 0
        for i in 0..<200 where store.insert(object("flood\(i)", size: 1000, tenant: "flood")) { admitted += 1 }
        #expect(admitted == 10 && store.bytes(tenant: "flood") <= 10 * one + one / 2)
        // The quiet tenant kept everything it had.
        let quiet = (0..<50).flatMap { store.variants(key: "quiet\($0)") }
        #expect(quiet.count == 50)
        #expect(store.bytes(tenant: "quiet") == quiet.reduce(0) { $0 + $1.cost })
        // Removing frees quota again.
        for i in 0..<200 { store.remove(key: "flood\(i)") }
        #expect(store.bytes(tenant: "flood") == 0)
        #expect(store.insert(object("flood-again", size: 1000, tenant: "flood")))
    }
}

/// The eviction policy's justification, measured: hit ratio of the store
/// (S3-FIFO) against plain LRU on the same seeded trace, a Zipf(0.9) working
/// set interleaved with a crawler's one-off URLs. Deterministic, so the
/// comparison is a behaviour, not a timing. tools/bench/eviction.sh prints it.
@Suite(.timeLimit(.minutes(3))) struct EvictionMeasurement {
    /// Least-recently-used over a fixed number of equal objects (the reference).
    struct LRU {
        let capacity: Int
        var last: [String: Int] = [:]
        var order: [(String, Int)] = []   // (key, stamp), oldest first; stale stamps skipped
        var head = 0
        var clock = 0
        mutating func access(_ k: String) -> Bool {
            clock += 1
            let hit = last[k] != nil
            last[k] = clock
            order.append((k, clock))
            while last.count > capacity {
                let (old, stamp) = order[head]
                head += 1
                if last[old] == stamp { last[old] = nil }
            }
            return hit
        }
    }

    static func trace() -> [(key: String, counted: Bool)] {
        var x: UInt64 = 0x9E3779B97F4A7C15
        func rand() -> Double {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return Double(x % 1_000_000_007) / 1_000_000_007
        }
        // Zipf(0.9) over 5,000 keys by inverse CDF.
        let n = 5000
        var cdf: [Double] = []
        var total = 0.0
        for i in 1...n { total += 1 / pow(Double(i), 0.9); cdf.append(total) }
        var out: [(String, Bool)] = []
        var scan = 0
        for _ in 0..<200_000 {
            if rand() < 0.3 {
                out.append(("scan\(scan)", false)); scan += 1
            } else {
                let r = rand() * total
                var lo = 0, hi = n - 1
                while lo < hi { let m = (lo + hi) / 2; if cdf[m] < r { lo = m + 1 } else { hi = m } }
                out.append(("z\(lo)", true))
            }
        }
        return out
    }

    @Test func s3fifoKeepsMoreOfTheWorkingSetThanLRUUnderAScan() {
        let objects = 500
        // Room for exactly as many objects as the LRU holds (what one of these costs, as charged).
        let store = MemoryStore(capacity: objects * object("k0000", size: 1000).cost, shardCount: 1)
        var lru = LRU(capacity: objects)
        var hits = (s3: 0, lru: 0), counted = 0
        for (k, c) in Self.trace() {
            let s3hit = store.lookup(key: k, request: HeaderList()) != nil
            if !s3hit { store.insert(object(k, size: 1000)) }
            let lruHit = lru.access(k)
            if c { counted += 1; if s3hit { hits.s3 += 1 }; if lruHit { hits.lru += 1 } }
        }
        let s3 = Double(hits.s3) / Double(counted), l = Double(hits.lru) / Double(counted)
        print("eviction: Zipf(0.9) 5000 keys + 30% one-off scan, 500 objects: hit ratio S3-FIFO \((s3 * 1000).rounded() / 10)%, LRU \((l * 1000).rounded() / 10)%")
        #expect(s3 > l + 0.03, "S3-FIFO \(s3) vs LRU \(l)")
    }
}

/// The configured size bounds memory only if what leaves the store is freed at once.
@Suite struct MemoryStoreLifetimeTests {
    @Test func evictedObjectsAreFreedWhenTheyLeave() {
        let store = MemoryStore(capacity: 64 << 10, shardCount: 4)
        var weak: [WeakBox] = []
        for i in 0..<5000 {
            let o = object("/k\(i)", size: 1000)
            weak.append(WeakBox(o))
            store.insert(o)
        }
        let alive = weak.filter { $0.o != nil }.count
        #expect(alive == store.objectCount, "alive \(alive), stored \(store.objectCount)")
    }

    @Test func removedAndReplacedObjectsAreFreedAtOnce() {
        let store = MemoryStore(capacity: 1 << 20, shardCount: 1)
        var a: StoredResponse? = object("/a")
        var b: StoredResponse? = object("/b")
        let wa = WeakBox(a!), wb = WeakBox(b!)
        store.insert(a!); store.insert(b!)
        a = nil; b = nil
        store.remove(key: "/a")
        store.insert(object("/b"))   // the same key again replaces the old object
        #expect(wa.o == nil && wb.o == nil)
        #expect(store.objectCount == 1)
    }
}

/// Watches a stored response's block: nil once it is freed.
final class WeakBox { weak var o: AnyObject?; init(_ o: StoredResponse) { self.o = o.box } }

@Suite struct DerivedLookupTests {
    @Test func aDerivedCodingIsFoundOnlyWhileOneIsStored() {
        let store = MemoryStore(capacity: 1 << 20, shardCount: 4)
        let base = CacheKey.primary(tenant: "t", https: false, host: "a.test", target: "/x")
        #expect(store.insert(object(base)))
        #expect(store.lookupDerived(key: base, .gzip, request: { HeaderList() }) == nil, "no coding stored yet")
        #expect(store.insert(object(CacheKey.derived(base, .gzip))))
        #expect(store.insert(object(CacheKey.derived(base, .br))))
        #expect(store.lookupDerived(key: base, .gzip, request: { HeaderList() })?.key == CacheKey.derived(base, .gzip))
        #expect(store.lookupDerived(key: base, .br, request: { HeaderList() })?.key == CacheKey.derived(base, .br))
        // A new base representation drops what was derived from the old one: none is found after.
        #expect(store.insert(object(base, size: 120)))
        #expect(store.lookupDerived(key: base, .gzip, request: { HeaderList() }) == nil)
        #expect(store.lookupDerived(key: base, .br, request: { HeaderList() }) == nil)
        // Stored again, then removed with its base: gone again, and another base is unaffected.
        let other = CacheKey.primary(tenant: "t", https: false, host: "a.test", target: "/y")
        #expect(store.insert(object(other)) && store.insert(object(CacheKey.derived(other, .gzip))))
        #expect(store.insert(object(CacheKey.derived(base, .gzip))))
        store.remove(key: base)
        #expect(store.lookupDerived(key: base, .gzip, request: { HeaderList() }) == nil)
        #expect(store.lookupDerived(key: other, .gzip, request: { HeaderList() }) != nil)
    }
}
