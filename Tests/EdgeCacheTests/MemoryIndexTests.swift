import Testing
@testable import EdgeCache

/// The memory tier's own structures: the open-addressed index, the intrusive
/// queues and the ghost, each held to a plain model.
@Suite(.timeLimit(.minutes(3))) struct MemoryIndexTests {
    /// A small deterministic generator (the same run every time).
    struct Rand {
        var s: UInt64
        mutating func next(_ n: Int) -> Int {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Int((s >> 33) % UInt64(n))
        }
    }

    @Test func theIndexFindsEveryBlockThroughCollisionsAndRemovals() {
        var index = MemoryStore.Index()
        var model: [ObjectIdentifier: (StoredBox, UInt64)] = [:]
        var rng = Rand(s: 7)
        // Hashes from a few low-bit groups, so probe runs are long and wrap.
        func hash() -> UInt64 { UInt64(rng.next(6)) | UInt64(rng.next(1 << 20)) << 40 }
        for step in 0..<6000 {
            if model.isEmpty || rng.next(3) > 0 {
                let r = object("k\(step)", size: 1)
                r.box.hp.pointee.hash = hash()
                index.insert(r.box)
                model[ObjectIdentifier(r.box)] = (r.box, r.box.hp.pointee.hash)
            } else {
                let victim = model.values[model.index(model.startIndex, offsetBy: rng.next(model.count))].0
                index.remove(victim)
                model[ObjectIdentifier(victim)] = nil
            }
            if step % 250 == 0 || step == 5999 {
                #expect(index.count == model.count)
                #expect(index.all.count == model.count)
                for (b, h) in model.values {
                    var seen = false
                    index.forEach(hash: h) { if $0 === b { seen = true }; return true }
                    #expect(seen, "a block is reachable from its hash after \(step) steps")
                }
            }
        }
        // Emptied, it shrinks and still works.
        for (b, _) in model.values { index.remove(b) }
        #expect(index.count == 0 && index.slots.count <= 64)
    }

    @Test func blocksOfOneHashComeInTheOrderStored() {
        var index = MemoryStore.Index()
        let rs = (0..<40).map { i -> StoredResponse in
            let r = object("k\(i)", size: 1)
            r.box.hp.pointee.hash = i % 2 == 0 ? 5 : 5 + 16   // two hashes, one home slot
            return r
        }
        for r in rs { index.insert(r.box) }
        for i in stride(from: 0, to: 40, by: 6) { index.remove(rs[i].box) }
        var order: [Int] = []
        index.forEach(hash: 5) { b in order.append(rs.firstIndex { $0.box === b }!); return true }
        #expect(order == Array(stride(from: 0, to: 40, by: 2)).filter { $0 % 6 != 0 })
    }

    @Test func bothHashesOfAKeyComeFromOnePass() {
        let base = CacheKey.primary(tenant: "t", https: true, host: "a.test", target: "/x?y=1")
        for k in [base, CacheKey.derived(base, .gzip), base + CacheKey.bodySeparator + "POST:ab", "", "\u{0}x"] {
            let h = MemoryStore.keyHashes(k)
            #expect(h.base == MemoryStore.keyHash(k, stopAtSeparator: true))
            #expect(h.full == MemoryStore.keyHash(k, stopAtSeparator: false), "the disk index's hash of \(k.debugDescription)")
        }
    }

    @Test func queuesUnlinkFromAnyPlace() {
        var q = MemoryStore.Queue()
        let rs = (0..<10).map { object("q\($0)", size: 1) }
        for r in rs { q.append(r.box) }
        q.remove(rs[0].box); q.remove(rs[9].box); q.remove(rs[4].box)
        let fresh = object("new", size: 1)
        q.replace(rs[5].box, with: fresh.box)
        var order: [String] = []
        var at = q.oldest
        while let u = at { order.append(u.takeUnretainedValue().response.key); at = u.hp.pointee.newer }
        #expect(order == ["q1", "q2", "q3", "new", "q6", "q7", "q8"])
        #expect(q.count == 7 && q.newest?.takeUnretainedValue() === rs[8].box)
    }

    @Test func theGhostRemembersRecentKeysAndForgetsTheOldestOfABucket() {
        var g = MemoryStore.Ghost()
        for h in 0..<64 as Range<UInt64> { g.remember(h << 32 | 1, objects: 10) }
        #expect(g.slots.count == 64)
        #expect(g.take(5 << 32 | 1) && !g.take(5 << 32 | 1), "taken once")
        // Five keys of one bucket: the first is forgotten.
        var h2 = MemoryStore.Ghost()
        let same = (0..<5).map { UInt64($0) * 32 << 33 }   // fingerprints differing above the bucket bits
        for h in same { h2.remember(h, objects: 0) }
        #expect(!h2.take(same[0]) && same[1...].allSatisfy { h2.take($0) })
        // Growing keeps what it held.
        var h3 = MemoryStore.Ghost()
        let keys = (0..<40).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }
        for k in keys { h3.remember(k, objects: 0) }
        var before = h3
        let held = keys.filter { before.take($0) }
        #expect(held.count > 30)
        h3.remember(0xABCD_EF01_2345_6789, objects: 1000)
        #expect(h3.slots.count == 1024)
        #expect(keys.filter { h3.take($0) } == held)
    }

    /// A store held to a dictionary through random inserts, variants,
    /// removals and purges (no eviction: the capacity holds everything).
    @Test func theStoreAgreesWithAModel() {
        let store = MemoryStore(capacity: 1 << 30, shardCount: 2, maxVariants: 3)
        var model: [String: [String: Int]] = [:]   // key -> variant -> size, in order stored
        var order: [String: [String]] = [:]
        var rng = Rand(s: 11)
        let vary = ["Accept-Language"]
        for step in 0..<3000 {
            let key = "/k\(rng.next(120))"
            switch rng.next(10) {
            case 0:
                store.remove(key: key)
                model[key] = nil; order[key] = nil
            case 1:
                let p = "/k\(rng.next(12))"
                store.purge(.prefix(p), soft: false, now: 0)
                for k in model.keys where k.hasPrefix(p) { model[k] = nil; order[k] = nil }
            default:
                let lang = ["en", "de", "fr", "nl"][rng.next(4)]
                let v = CacheKey.variant(vary: vary, request: HeaderList([("Accept-Language", lang)]))!
                let size = 1 + rng.next(300)
                #expect(store.insert(object(key, variant: v, vary: vary, size: size)))
                var vs = model[key] ?? [:], o = order[key] ?? []
                o.removeAll { $0 == v }
                if vs[v] == nil && o.count >= 3 { vs[o.removeFirst()] = nil }
                vs[v] = size; o.append(v)
                model[key] = vs; order[key] = o
            }
            if step % 300 == 299 {
                #expect(store.objectCount == model.values.reduce(0) { $0 + $1.count })
                for (k, vs) in model {
                    let got = store.variants(key: k)
                    #expect(got.map(\.variant) == order[k]!, "variants of \(k) in the order stored")
                    for r in got { #expect(r.bodyCount == vs[r.variant]) }
                }
            }
        }
        let total = store.bytesUsed
        #expect(total == model.keys.flatMap { store.variants(key: $0) }.reduce(0) { $0 + $1.cost })
    }
}
