// The live tail's rings and filters, without sockets.
import Testing
@testable import EdgeProxy

@Suite(.timeLimit(.minutes(3))) struct LogTapTests {
    func line(_ s: String) -> [UInt8] { Array(s.utf8) }

    func publish(_ tap: LogTap, _ worker: Int, _ text: String, status: Int = 200, outcome: CacheOutcome = .hit) {
        let b = Array((text + "\n").utf8)
        b.withUnsafeBytes { tap.publish(worker: worker, line: $0, status: status, outcome: outcome) }
    }

    @Test func readersGetWhatCameAfterThemAndLearnWhatTheyMissed() {
        let tap = LogTap(workers: 2)
        #expect(!tap.listening)
        publish(tap, 0, "before")
        var cursors = tap.attach()
        #expect(tap.listening)
        publish(tap, 0, "a")
        publish(tap, 1, "b")
        var (events, dropped) = tap.read(&cursors)
        #expect(events.map { String(decoding: $0.line, as: UTF8.self) } == ["a", "b"] && dropped == 0)
        (events, dropped) = tap.read(&cursors)
        #expect(events.isEmpty && dropped == 0, "nothing twice")
        // A reader more than a ring behind loses the oldest lines, and is told how many.
        for i in 0..<(LogTap.capacity + 100) { publish(tap, 0, "n\(i)") }
        (events, dropped) = tap.read(&cursors)
        #expect(dropped == 100 && events.count == LogTap.capacity)
        #expect(events.first.map { String(decoding: $0.line, as: UTF8.self) } == "n100")
        // A second reader has cursors of its own.
        var other = tap.attach()
        publish(tap, 1, "c")
        #expect(tap.read(&other).events.count == 1 && tap.read(&cursors).events.count == 1)
        tap.detach(); tap.detach()
        #expect(!tap.listening)
    }

    @Test func longLinesOverwriteByBytesAndNoneIsTorn() {
        let tap = LogTap(workers: 1)
        var cursors = tap.attach()
        // 300 lines of 7,000 bytes: about 2 MiB through a 1 MiB ring.
        for i in 0..<300 { publish(tap, 0, String(repeating: Character(UnicodeScalar(UInt8(65 + i % 26))), count: 7000) + "\(i)") }
        let (events, dropped) = tap.read(&cursors)
        #expect(dropped + events.count == 300 && dropped > 100 && events.count > 100, "\(dropped) dropped, \(events.count) read")
        for (k, e) in events.enumerated() {
            let i = dropped + k
            let text = String(decoding: e.line, as: UTF8.self)
            #expect(text == String(repeating: Character(UnicodeScalar(UInt8(65 + i % 26))), count: 7000) + "\(i)", "line \(i) torn")
        }
        tap.detach()
    }

    @Test func filtersMatchEveryConditionGiven() {
        let l = line(#"{"time":"t","tenant":"shop","host":"shop.test","target":"/a/b?x=1","status":404,"user_agent":"x\",\"tenant\":\"evil"}"#)
        let e = TapEvent(line: l, status: 404, outcome: .miss)
        var f = LogFilter()
        #expect(f.matches(e))
        #expect(f.setStatus("4xx") && f.matches(e))
        #expect(f.setStatus("404") && f.matches(e))
        #expect(!f.setStatus("9xx") && !f.setStatus("abc") && !f.setStatus("99"))
        f = LogFilter(); _ = f.setStatus("5XX")
        #expect(!f.matches(e))
        f = LogFilter(); f.tenant = "shop"; f.host = "SHOP.test"; f.pathPrefix = "/a/"; f.cache = .miss
        #expect(f.matches(e))
        f.cache = .hit
        #expect(!f.matches(e))
        f = LogFilter(); f.pathPrefix = "/b"
        #expect(!f.matches(e))
        // A value cannot forge a key: the user agent's "tenant" is escaped text.
        f = LogFilter(); f.tenant = "evil"
        #expect(!f.matches(e))
        #expect(jsonStringField(l, "tenant").map { String(decoding: $0, as: UTF8.self) } == "shop")
        #expect(jsonStringField(l, "user_agent").map { String(decoding: $0, as: UTF8.self) } == #"x\",\"tenant\":\"evil"#)
        #expect(jsonStringField(l, "referer") == nil)
    }
}
