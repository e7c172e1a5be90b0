// Every json-* input in tools/fuzz/regressions/ through the JSON properties
// (JSONProperties.swift), and the example tenants and some hard cases.
import Foundation
import Testing
@testable import EdgeJSON

@Suite struct JSONFuzzReplayTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func regressionsAndExamplesHoldTheProperties() throws {
        let dir = Self.root.appendingPathComponent("tools/fuzz/regressions")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("json-") }
        #expect(!names.isEmpty)
        var inputs = try names.map { Array(try Data(contentsOf: dir.appendingPathComponent($0))) }
        for t in ["example.json", "api.json"] { inputs.append(Array(try Data(contentsOf: Self.root.appendingPathComponent("tenants/\(t)")))) }
        inputs += ["-0", "1e400", "-1e400", "-1e-400", "[1.0, 2.50, 1e2, 123456789012345678901234567890]", "\"\\ud834\\udd1e\"", "{\"a\":1,\"a\":{}}",
                   "[" + String(repeating: "{\"k\":[", count: 60) + String(repeating: "]}", count: 60) + "]"].map { Array($0.utf8) }
        for b in inputs { b.withUnsafeBytes { checkJSONProperties($0) } }
    }
}
