import Testing
@testable import EdgeCache
import EdgeHTTP

@Suite struct InFlightTests {
    let a = Waiter(worker: 0, exchange: 1), b = Waiter(worker: 1, exchange: 7)

    @Test func theFirstLeadsTheRestFollowAndAreWokenAtTheEnd() {
        let t = InFlight()
        guard case .leader = t.join("k", a, now: 0, canStream: true) else { Issue.record("first is not the leader"); return }
        guard case .follower = t.join("k", b, now: 0, canStream: true) else { Issue.record("second does not follow"); return }
        guard case .leader = t.join("other", b, now: 0, canStream: true) else { Issue.record("keys are apart"); return }
        #expect(t.finish("k", uncacheable: false, now: 0) == [b])
        // Done: the next request leads again.
        guard case .leader = t.join("k", a, now: 0, canStream: true) else { Issue.record("no leader after finish"); return }
    }

    /// The pipeline hands join the key's hash made for the lookup: the same entry as the key's own.
    @Test func aKeyJoinedWithItsHashIsTheSameEntry() {
        let t = InFlight()
        let key = "tenant\u{1}http\u{1}a.test\u{1}/x?y=1\u{0}gzip"
        guard case .leader = t.join(key, a, now: 0, canStream: false, hash: MemoryStore.keyHashes(key).full) else { Issue.record("not the leader"); return }
        guard case .follower = t.join(key, b, now: 0, canStream: false) else { Issue.record("the key's own hash finds another entry"); return }
        #expect(t.finish(key, uncacheable: true, now: 0) == [b])
        guard case .pass = t.join(key, a, now: 1, canStream: false, hash: MemoryStore.keyHashes(key).full) else { Issue.record("pass not found by hash"); return }
        // The store's note, made with the same hashes, is found by the key.
        let store = MemoryStore(capacity: 1 << 20, shardCount: 4)
        store.noteNotStored(key: key, hashes: MemoryStore.keyHashes(key), .responseNoStore, status: 200)
        #expect(store.whyNotStored(key: key) != nil)
    }

    @Test func anUncacheableKeyIsNotCollapsedForAWhile() {
        let t = InFlight()
        _ = t.join("k", a, now: 1000, canStream: false)
        _ = t.finish("k", uncacheable: true, now: 1000)
        guard case .pass = t.join("k", b, now: 1000 + t.passMillis - 1, canStream: false) else { Issue.record("not passed"); return }
        guard case .leader = t.join("k", b, now: 1000 + t.passMillis, canStream: false) else { Issue.record("pass never ends"); return }
    }

    @Test func followersJoinAPublishedStream() {
        let t = InFlight()
        _ = t.join("k", a, now: 0, canStream: true)
        _ = t.join("k", b, now: 0, canStream: true)
        let s = FillStream(response: object("k", size: 0), length: 4)
        #expect(t.publish("k", s) == [b])   // the parked one is woken to join the stream
        guard case .stream(let got) = t.join("k", b, now: 0, canStream: true), got === s else { Issue.record("stream not joined"); return }
        // One that cannot take the stream as it is waits as before.
        guard case .follower = t.join("k", Waiter(worker: 0, exchange: 9), now: 0, canStream: false) else { Issue.record("no follower"); return }
    }
}

@Suite struct FillStreamTests {
    func stream(length: Int) -> FillStream {
        FillStream(response: object("k", size: 0), length: length)
    }

    @Test func readersCopyWhatArrivedAndWaitForTheRest() {
        let s = stream(length: 6)
        let w = Waiter(worker: 1, exchange: 3)
        let out = IOBuffer(capacity: 16)
        guard case .wait = s.read(from: 0, max: 6, into: out, waiter: w) else { Issue.record("read before any byte"); return }
        #expect(Array("abc".utf8).withUnsafeBytes { s.append($0.baseAddress!, 3) } == [w])   // woken by the bytes
        guard case .copied(3) = s.read(from: 0, max: 6, into: out, waiter: w) else { Issue.record("bytes not copied"); return }
        #expect(Array("def".utf8).withUnsafeBytes { s.append($0.baseAddress!, 3) }.isEmpty)    // nobody waiting
        let (body, woken) = s.end(ok: true)
        #expect(body == Array("abcdef".utf8) && woken.isEmpty)
        guard case .copied(3) = s.read(from: 3, max: 6, into: out, waiter: w) else { Issue.record("rest not copied"); return }
        #expect(Array(out.readView) == Array("abcdef".utf8))
    }

    @Test func aStreamEndingShortFailsItsReaders() {
        let s = stream(length: 10)
        _ = Array("abc".utf8).withUnsafeBytes { s.append($0.baseAddress!, 3) }
        _ = s.end(ok: true)   // complete by the leader's account, but short of the length
        guard case .failed = s.read(from: 0, max: 10, into: IOBuffer(capacity: 16), waiter: Waiter(worker: 0, exchange: 1)) else {
            Issue.record("a short stream was readable"); return
        }
    }
}
