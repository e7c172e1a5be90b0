// The HTTP/2 fuzz target's properties (H2Properties.swift) over every input the
// fuzzers ever found (tools/fuzz/regressions/) and over frame shapes that matter.
import Foundation
import Testing
@testable import EdgeHTTP2

@Suite struct H2FuzzReplayTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools/fuzz/regressions")

    @Test func regressionsHold() throws {
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: Self.dir.path)) ?? []).sorted() {
            let data = try Data(contentsOf: Self.dir.appendingPathComponent(name))
            Array(data).withUnsafeBytes { checkH2Properties($0) }
        }
    }

    @Test func theChecksHoldForKnownShapes() {
        let get = Peer.block(Peer.get)
        let shapes: [[UInt8]] = [
            Peer.frame(.headers, flags: FrameFlag.endHeaders, stream: 1, get) + Peer.frame(.data, flags: FrameFlag.endStream, stream: 1, [1, 2, 3]),
            Peer.frame(.headers, flags: FrameFlag.padded | FrameFlag.priority, stream: 1, [3, 0, 0, 0, 0, 9] + get + [0, 0, 0])
                + Peer.frame(.continuation, flags: FrameFlag.endHeaders, stream: 1, []),
            Peer.frame(.ping, [UInt8](repeating: 0, count: 8)) + Peer.frame(.windowUpdate, [0, 0, 0, 1]) + Peer.frame(.rstStream, stream: 1, [0, 0, 0, 8]),
            hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
        ]
        for s in shapes { s.withUnsafeBytes { checkH2Properties($0) } }
    }
}
