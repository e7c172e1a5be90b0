// Every disk-* input in tools/fuzz/regressions/ through the disk formats'
// property checks (DiskProperties.swift), as a plain test.
import Foundation
import Testing
import EdgeCache
import EdgeHTTP
@testable import EdgeDisk

@Suite struct DiskFuzzReplayTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools/fuzz/regressions")

    @Test func regressionsReplay() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.dir.path).sorted()
        #expect(names.contains { $0.hasPrefix("disk-") })
        for n in names {
            let data = try Data(contentsOf: Self.dir.appendingPathComponent(n))
            Array(data).withUnsafeBytes { checkDiskProperties($0) }
        }
        // The block and open record heads are records (the fuzzer starts past the head checksum).
        for (n, open) in [("disk-block-head", false), ("disk-open-head", true)] {
            let data = Array(try Data(contentsOf: Self.dir.appendingPathComponent(n)))
            guard case .record(let v) = data.withUnsafeBytes({ DiskRecord.parse($0) }) else { Issue.record("\(n) is not a record"); continue }
            #expect(v.hasBlocks && v.blockCount == 4 && v.open == open, "\(n)")
        }
    }

    @Test func theChecksHoldForRealRecordsAndJournals() {
        var rec = DiskRecord.encode(sample(vary: ["accept-language"], variant: "de"), seq: 9)
        rec.withUnsafeBytes { checkDiskProperties($0) }
        rec[50] ^= 1
        rec.withUnsafeBytes { checkDiskProperties($0) }
        PurgeJournal.encode(DurablePurge(seq: 1, time: 2, soft: true, scope: .tag("a", tenant: "b"))).withUnsafeBytes { checkDiskProperties($0) }
    }
}
