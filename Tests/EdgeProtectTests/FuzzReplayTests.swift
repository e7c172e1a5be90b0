// Every input in tools/fuzz/regressions/ through EdgeProtect's property checks
// (ProtectProperties.swift) as a plain test: a regression traps here without a fuzzer.
import Foundation
import Testing
@testable import EdgeProtect

@Suite struct ProtectFuzzReplayTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools/fuzz/regressions")

    @Test func regressionsReplay() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.dir.path).sorted()
        #expect(names.contains { $0.hasPrefix("protect-") })
        for n in names {
            let data = try Data(contentsOf: Self.dir.appendingPathComponent(n))
            Array(data).withUnsafeBytes { checkProtectProperties($0) }
        }
    }

    @Test func theChecksHoldForKnownShapes() {
        for text in ["PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nGET / HTTP/1.1\r\n", "PROXY UNKNOWN\r\n", "10.0.0.0/8\n10.1.0.0/16\n::/0\n2001:db8::/32",
                     "::ffff:1.2.3.4", "10/s", "2/10s", "\r\n\r\n\0\r\nQUIT\n\u{21}\u{11}\0\u{0c}abcdefghijkl"] {
            Array(text.utf8).withUnsafeBytes { checkProtectProperties($0) }
        }
    }
}
