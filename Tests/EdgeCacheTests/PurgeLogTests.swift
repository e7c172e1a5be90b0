import Testing
@testable import EdgeCache

@Suite(.timeLimit(.minutes(3))) struct PurgeLogTests {
    @Test func aFillIsRefusedOnlyForPurgesMadeAfterItLeftThatSelectIt() {
        let log = PurgeLog()
        let a = object("k-a"), b = object("k-b")
        let before = log.epoch
        #expect(!log.purgedSince(before, a), "no purge yet")
        log.record(.key("k-a"))
        #expect(log.purgedSince(before, a))
        #expect(!log.purgedSince(before, b), "another key's purge does not touch b")
        // A fill that left after the purge is not affected by it.
        #expect(!log.purgedSince(log.epoch, a))
        log.record(.prefix("k-"))
        #expect(log.purgedSince(before, b))
        let tagged = StoredResponse(key: "k-t", variant: "", vary: [], tenant: "t", status: 200, headers: HeaderList([]), body: [],
                                    freshness: a.freshness, tags: ["red"])
        let mark = log.epoch
        log.record(.tag("red", tenant: "other"))
        #expect(!log.purgedSince(mark, tagged), "a tag purge of another tenant")
        log.record(.tag("red", tenant: nil))
        #expect(log.purgedSince(mark, tagged))
        let t = log.epoch
        log.record(.tenant("u"))
        #expect(!log.purgedSince(t, a))
        log.record(.tenant("t"))
        #expect(log.purgedSince(t, a))
    }

    @Test func aFillOlderThanEveryRememberedPurgeIsRefused() {
        let log = PurgeLog()
        let start = log.epoch
        for i in 0..<(log.keep + 10) { log.record(.key("other-\(i)")) }
        // The purges right after `start` are forgotten: one of them might have selected it.
        #expect(log.purgedSince(start, object("k")))
        #expect(!log.purgedSince(log.epoch - 5, object("k")))
    }
}
