// RFC 3339 timestamps (Sources/EdgeHTTP/Timestamp.swift), against Foundation's
// ISO8601DateFormatter, which the ACME client used before.
import Testing
import Foundation
@testable import EdgeHTTP

@Suite struct TimestampTests {
    @Test func writtenAsISO8601DateFormatterWritesThem() {
        var rng = SystemRandomNumberGenerator()
        let f = ISO8601DateFormatter()
        for s in [Int64(0), 951_782_400, 1_765_000_000, 4_102_444_799, 253_402_300_799] + (0..<2000).map({ _ in Int64.random(in: 0...4_102_444_800, using: &rng) }) {
            #expect(HTTPDate.rfc3339(s) == f.string(from: Date(timeIntervalSince1970: Double(s))), "\(s)")
            #expect(HTTPDate.parseRFC3339(HTTPDate.rfc3339(s)) == s)
        }
    }

    @Test func readsOffsetsFractionsAndRefusesWhatIsNotOne() {
        #expect(HTTPDate.parseRFC3339("2025-01-02T03:04:05Z") == 1_735_787_045)
        #expect(HTTPDate.parseRFC3339("2025-01-02t03:04:05z") == 1_735_787_045)
        #expect(HTTPDate.parseRFC3339("2025-01-02T03:04:05.123456Z") == 1_735_787_045)
        #expect(HTTPDate.parseRFC3339("2025-01-02T04:04:05+01:00") == 1_735_787_045)
        #expect(HTTPDate.parseRFC3339("2025-01-01T22:04:05-05:00") == 1_735_787_045)
        #expect(HTTPDate.parseRFC3339("2024-02-29T00:00:00Z") == 1_709_164_800)
        for bad in ["", "2025-01-02", "2025-01-02T03:04:05", "2025-01-02 03:04:05Z", "2025-13-02T03:04:05Z", "2025-02-29T00:00:00Z",
                    "2025-01-02T24:00:00Z", "2025-01-02T03:04:05.Z", "2025-01-02T03:04:05+0100", "2025-01-02T03:04:05Zx", "25-01-02T03:04:05Z",
                    "2025-01-02T03:04:05+24:00", "２025-01-02T03:04:05Z"] {
            #expect(HTTPDate.parseRFC3339(bad) == nil, "\(bad)")
        }
        // Foundation reads the same ones the same.
        let f = ISO8601DateFormatter()
        for ok in ["2025-01-02T03:04:05Z", "2025-01-02T04:04:05+01:00", "2024-02-29T00:00:00Z"] {
            #expect(HTTPDate.parseRFC3339(ok) == f.date(from: ok).map { Int64($0.timeIntervalSince1970) })
        }
    }
}
