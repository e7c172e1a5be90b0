// A storage tier whose reads block (as a disk's do), through a real edge
// server: a lookup it cannot answer at once is `.pending`, the exchange waits
// parked, other requests on the same worker go on, and the tier's wake-up
// (through the worker's mailbox) brings the answer.
import Foundation
import Glibc
import Synchronization
import EdgeIO
import Testing
@testable import EdgeProxy
@testable import EdgeCache

/// A memory store with a slow second tier: objects put "on disk" are read on a
/// thread of the tier's own, which waits until the test opens the gate.
final class GatedTier: CacheStorage, @unchecked Sendable {
    let memory = MemoryStore(capacity: 8 << 20, shardCount: 1)
    let onDisk = Mutex<[String: StoredResponse]>([:])
    let gate = Mutex(false)
    let reads = Atomic<Int>(0)

    func putOnDisk(_ r: StoredResponse) { onDisk.withLock { $0[r.key] = r } }
    func open() { gate.withLock { $0 = true } }

    func lookup(key: String, request: () -> HeaderList, waiter: Waiter, waking: any Waking) -> StorageLookup {
        if let r = memory.lookup(key: key, request: request) { return .found(r) }
        guard let r = onDisk.withLock({ $0.removeValue(forKey: key) }) else { return .absent }
        reads.add(1, ordering: .relaxed)
        OSThread.detached(name: "test-storage") { [self] in
            while !gate.withLock({ $0 }) { usleep(2000) }
            memory.insert(r, startedAt: nil)      // read: now at hand
            waking.wake(waiter)
        }
        return .pending
    }

    // Everything else is the memory tier's.
    func lookup(key: String, request: () -> HeaderList) -> StoredResponse? { memory.lookup(key: key, request: request) }
    func variants(key: String) -> [StoredResponse] { memory.variants(key: key) }
    func insert(_ r: StoredResponse, startedAt: UInt64?) -> Bool { memory.insert(r, startedAt: startedAt) }
    func commit(_ fill: CacheFill) -> Bool { memory.commit(fill) }
    func abort(_ fill: CacheFill) { memory.abort(fill) }
    func update(_ r: StoredResponse, startedAt: UInt64?) -> Bool { memory.update(r, startedAt: startedAt) }
    func storage(for body: [UInt8]) -> BodyStorage { memory.storage(for: body) }
    func remove(key: String) -> Int { memory.remove(key: key) }
    func remove(tenant: String) -> Int { memory.remove(tenant: tenant) }
    func purge(_ scope: PurgeScope, soft: Bool, now: Int64) -> Int { memory.purge(scope, soft: soft, now: now) }
    var purges: PurgeLog { memory.purges }
    func keys(prefix: String) -> [String] { memory.keys(prefix: prefix) }
    func noteNotStored(key: String, reason: String) { memory.noteNotStored(key: key, reason: reason) }
    func whyNotStored(key: String) -> String? { memory.whyNotStored(key: key) }
    func setQuotas(_ q: [String: Int]) { memory.setQuotas(q) }
    func bytes(tenant: String) -> Int { memory.bytes(tenant: tenant) }
    var bytesUsed: Int { memory.bytesUsed }
    var objectCount: Int { memory.objectCount }
    var storedBytes: Int { memory.storedBytes }
    var maxObjectBytes: Int { memory.maxObjectBytes }
    var capacity: Int { memory.capacity }
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct StorageTierTests {
    @Test func aSlowReadParksOnlyItsOwnExchange() throws {
        let o = try Origin()
        let tier = GatedTier()
        let edge = try Edge(tenants: [tenantJSON(name: "t", hosts: ["t.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                 routes: #"[{"prefix": "/", "origin": "o"}]"#)], store: tier)
        defer { edge.stop() }
        let query = edge.server.config.tenants[0].routes[0].cache!.query
        func object(_ target: String, _ body: String) -> StoredResponse {
            StoredResponse(key: CacheKey.primary(tenant: "t", https: false, host: "t.test", target: target, query: query), variant: "", vary: [],
                           tenant: "t", status: 200, headers: HeaderList([("Content-Type", "text/plain")]), body: Array(body.utf8),
                           freshness: Freshness(lifetime: 3600, source: .maxAge, correctedInitialAge: 0, responseTime: edge.server.clock.now(),
                                                mustRevalidate: false, noCache: false, staleWhileRevalidate: nil, staleIfError: nil))
        }
        tier.putOnDisk(object("/slow", "from the slow tier"))
        tier.memory.insert(object("/fast", "from memory"), startedAt: nil)

        let a = try Client(port: edge.port)
        a.send("GET /slow HTTP/1.1\r\nHost: t.test\r\n\r\n")
        try waitUntil("the tier to start reading") { tier.reads.load(ordering: .relaxed) == 1 }
        // One worker: while that read is under way, its loop serves others.
        let fast = try request(edge.port, "/fast", host: "t.test")
        #expect(fast.status == 200 && String(decoding: fast.body, as: UTF8.self) == "from memory")
        #expect(a.isOpenWithNothingToRead(), "answered before the read finished")
        tier.open()
        let slow = try a.readResponse()
        #expect(slow.status == 200 && String(decoding: slow.body, as: UTF8.self) == "from the slow tier")
        #expect(slow.header("Cache-Status")?.contains("hit") == true, "\(slow.headers)")
        #expect(try o.stats().requests == 0, "the origin was never asked")
        // The same connection goes on.
        a.send("GET /fast HTTP/1.1\r\nHost: t.test\r\n\r\n")
        #expect(try a.readResponse().status == 200)
    }
}
