// Every input the fuzzers ever found (tools/fuzz/regressions/) replayed through the HTTP
// fuzz target's property checks (HTTPProperties.swift) as a plain test: a regression
// traps here without a fuzzer.
import Foundation
import Testing
@testable import EdgeHTTP

@Suite struct FuzzRegressionTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools/fuzz/regressions")

    static var inputs: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
    }

    @Test func thereAreRegressionsToReplay() {
        #expect(!Self.inputs.isEmpty, "tools/fuzz/regressions/ is empty or missing")
    }

    @Test(arguments: inputs) func replays(_ name: String) throws {
        let data = try Data(contentsOf: Self.dir.appendingPathComponent(name))
        Array(data).withUnsafeBytes { checkHTTPProperties($0) }
    }

    @Test func theChecksHoldForKnownShapes() {
        for text in ["GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", "Sun, 06 Nov 1994 08:49:37 GMT",
                     "bytes=0-499", "gzip;q=0.5, br", "5\r\nhello\r\n0\r\n\r\n", "A.Test.:8080"] {
            Array(text.utf8).withUnsafeBytes { checkHTTPProperties($0) }
        }
    }
}
