// Every input in tools/fuzz/regressions/ through the Cache-Control family's
// property checks (CacheControlProperties.swift), as a plain test.
import Foundation
import Testing

@Suite struct CacheFuzzReplayTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools/fuzz/regressions")

    @Test func regressionsReplay() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.dir.path).sorted()
        #expect(!names.isEmpty)
        for n in names {
            let data = try Data(contentsOf: Self.dir.appendingPathComponent(n))
            Array(data).withUnsafeBytes { checkCacheControlProperties($0) }
        }
    }

    @Test func theChecksHoldForKnownShapes() {
        for text in ["max-age=600, s-maxage=60, stale-while-revalidate=30", "no-store, must-understand", "private=\"set-cookie, x\", no-cache=a",
                     "max-age=\"10000\", &&&&", "max-age=600;x=1, private=\"set-cookie\", a=(1 \"b\" c), d=:aGk=:, e=?1",
                     "MAX-AGE=5, max-age=6", "max-age=99999999999999999999", "no-store=?0", "a=\"unterminated, no-store"] {
            Array(text.utf8).withUnsafeBytes { checkCacheControlProperties($0) }
        }
    }
}
