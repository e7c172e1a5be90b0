// Accept-Encoding negotiation (RFC 9110 §12.5.3) as a table.
import Testing
@testable import EdgeHTTP

@Suite(.timeLimit(.minutes(3))) struct AcceptEncodingTests {
    static let table: [(String?, ContentCoding?)] = [
        (nil, .identity),                         // no field: identity (see AcceptEncoding.weights)
        ("", .identity),                          // empty: identity only
        ("gzip", .gzip),
        ("br", .br),
        ("gzip, deflate, br", .br),               // ties go to the server's order: br > gzip
        ("gzip, deflate, br, zstd", .br),
        ("br;q=0.5, gzip", .gzip),                // q-values beat the server's order
        ("br;q=1.0, gzip;q=0.999", .br),
        ("GZIP", .gzip),                          // codings are case-insensitive
        ("x-gzip", .gzip),
        ("*", .br),
        ("*;q=0.1, gzip;q=0.5", .gzip),
        ("br;q=0, *", .gzip),                     // br refused, the rest by *
        ("deflate", .identity),
        ("identity;q=0", nil),                    // nothing acceptable
        ("*;q=0", nil),
        ("gzip;q=0, identity;q=0", nil),
        ("br;q=0.2, identity;q=0.5", .identity),
        ("gzip;q=0.001", .gzip),
        ("gzip;q=1.5", .identity),               // malformed q: 0
        ("gzip;q=0.0001", .identity),            // more than three decimals: malformed
        ("gzip ; q=0.8 , br ; q=0.9", .br),
    ]

    @Test func negotiationTable() {
        for (field, want) in Self.table {
            #expect(AcceptEncoding.choose(field, offered: [.br, .gzip, .identity]) == want, "Accept-Encoding: \(field ?? "(none)")")
        }
    }

    @Test func offeredSetLimitsTheChoice() {
        // An origin that sent gzip: br cannot be offered, identity means decoding.
        #expect(AcceptEncoding.choose("br, gzip", offered: [.gzip, .identity]) == .gzip)
        #expect(AcceptEncoding.choose("br", offered: [.gzip, .identity]) == .identity)
    }

    @Test func bucketsMapManySpellingsToThree() {
        let spellings = ["gzip, deflate, br", "br, gzip", "gzip,br", "br;q=1, gzip;q=0.8, *;q=0.1", "deflate, gzip, br, zstd"]
        #expect(Set(spellings.map { AcceptEncoding.bucket($0) }) == [.br])
        #expect(AcceptEncoding.bucket("gzip, deflate") == .gzip)
        #expect(AcceptEncoding.bucket(nil) == .identity)
        #expect(AcceptEncoding.bucket("identity;q=0") == .identity)
    }

    @Test func contentEncodingValues() {
        #expect(ContentCoding.parse(contentEncoding: nil) == .identity)
        #expect(ContentCoding.parse(contentEncoding: "GZIP") == .gzip)
        #expect(ContentCoding.parse(contentEncoding: "br") == .br)
        #expect(ContentCoding.parse(contentEncoding: "deflate") == nil)
        #expect(ContentCoding.parse(contentEncoding: "gzip, br") == nil)
    }
}
