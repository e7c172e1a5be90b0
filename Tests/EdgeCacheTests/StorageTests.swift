import Testing
@testable import EdgeCache

/// The storage interface as the pipeline uses it, on its first implementation.
@Suite struct StorageTests {
    func fill(_ key: String, limit: Int = 1 << 20) -> CacheFill {
        let o = object(key, size: 0)
        return CacheFill(key: key, variant: "", vary: [], tenant: "t", status: 200, headers: o.headers, freshness: o.freshness, limit: limit,
                         tags: [], startedAt: 0)
    }

    @Test func aFillIsCommittedOnlyWhenCompleteAndNotTooLarge() {
        let kept = MemoryStore(capacity: 1 << 20, shardCount: 1) { BodyStorage($0 + [33]) }   // marks the bodies it keeps
        let store: any CacheStorage = kept
        let f = fill("/a")
        Array("abc".utf8).withUnsafeBytes { f.append($0.baseAddress!, 3) }
        #expect(!store.commit(f), "incomplete")
        f.complete = true
        #expect(store.commit(f))
        #expect(store.lookup(key: "/a", request: { HeaderList() })?.body == Array("abc!".utf8), "kept as the tier keeps bodies")
        let big = fill("/big", limit: 2)
        Array("abc".utf8).withUnsafeBytes { big.append($0.baseAddress!, 3) }
        big.complete = true
        #expect(big.tooLarge && !store.commit(big))
        store.abort(big)
        #expect(store.lookup(key: "/big", request: { HeaderList() }) == nil)
        #expect(store.storage(for: [1, 2]).bytes == [1, 2, 33])
    }

    @Test func aStoredObjectIsChargedWhatItTakes() throws {
        let store = MemoryStore(capacity: 1 << 20, shardCount: 1)
        let f = fill("/grown")
        var one: UInt8 = 7
        for _ in 0..<1100 { f.append(&one, 1) }   // appends grow the array to more than it needs
        #expect(f.body.capacity >= 1400)
        f.complete = true
        #expect(store.commit(f))
        let got = try #require(store.lookup(key: "/grown", request: { HeaderList() }))
        // One block: the fixed head, then key, fields and body at their sizes (not the body's growth).
        let payload = "/grown".utf8.count + got.headCount + 1100
        #expect(got.cost == StoredResponse.blockBytes(payload) + StoredResponse.indexShare)
        #expect(got.cost < payload + 300, "charged \(got.cost) for \(payload) bytes")
        #expect(got.storage.chargedBytes == 0, "a body in the block is charged with it")
        #expect(store.bytesUsed == got.cost)
        // A memory file's body is charged whole pages, and what its maker says the handles take.
        let b = BodyStorage(mapped: store, base: UnsafeRawPointer(bitPattern: 4096)!, count: 5000, fd: 3)
        #expect(b.chargedBytes == 8192)
        b.charge(handles: 176)
        #expect(b.chargedBytes == 8192 + 176)
    }

    @Test func updateReplacesMetadataAndKeepsTheBody() {
        // (A body in memory is copied into the new block; a file's body is shared: LargeObjectTests.)
        let store: any CacheStorage = MemoryStore(capacity: 1 << 20, shardCount: 1)
        let o = object("/u", size: 10)
        store.insert(o, startedAt: nil)
        var fr = o.freshness
        fr.lifetime = 999
        #expect(store.update(o.with(headers: HeaderList([("Content-Type", "text/html")]), freshness: fr), startedAt: nil))
        let got = store.lookup(key: "/u", request: { HeaderList() })
        #expect(got?.freshness.lifetime == 999 && got?.mediaType == "text/html" && got?.body == o.body)
        // A purge since the request left wins over the update.
        let epoch = store.purges.epoch
        _ = store.purge(.key("/u"), soft: false, now: 0)
        #expect(!store.update(o, startedAt: epoch))
    }

    @Test func aFileBodyKnowsWhereItStarts() {
        final class Owner {}
        let bytes: [UInt8] = Array(0..<100)
        bytes.withUnsafeBytes { p in
            let s = BodyStorage(mapped: Owner(), base: p.baseAddress! + 10, count: 20, fd: 7, offset: 4096 + 10)
            #expect(s.fd == 7 && s.offset == 4106 && s.count == 20)
            #expect(s.withBytes { Array($0) } == Array(10..<30))
        }
    }
}
