// X-Request-ID: which client values are kept, the form of the ones edge makes,
// and the field names the access log reads at parse time.
import Testing
@testable import EdgeHTTP

@Suite(.timeLimit(.minutes(3))) struct RequestIDTests {
    func valid(_ s: String) -> Bool { Array(s.utf8).withUnsafeBytes { RequestID.isValid($0) } }

    @Test func clientValuesKeptOnlyWhenTheyStayOneToken() {
        for ok in ["abc", "trace-42", "0af7651916cd43dd8448eb211c80319c", "a.b_c:d/e+f=", String(repeating: "x", count: 128)] {
            #expect(valid(ok), "\(ok)")
        }
        for bad in ["", "has space", "a,b", "a;b", "quo\"te", "back\\slash", "tab\there", "nul\u{0}", "é", String(repeating: "x", count: 129)] {
            #expect(!valid(bad), "\(bad)")
        }
    }

    @Test func madeIDsAre32LowercaseHexDigitsOfTheBits() {
        let out = IOBuffer(capacity: 8)
        RequestID.append(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, to: out)
        RequestID.append(0, 15, to: out)
        #expect(String(decoding: out.readView, as: UTF8.self) == "0123456789abcdeffedcba9876543210" + String(repeating: "0", count: 31) + "f")
        // Any bits: the digits String(radix:) writes, zero-padded to 16 each.
        var r = SplitMix64(seed: 9)
        for _ in 0..<10_000 {
            let (hi, lo) = (r.next() >> (r.next() % 64), r.next())
            out.clear()
            RequestID.append(hi, lo, to: out)
            func padded(_ v: UInt64) -> String { let s = String(v, radix: 16); return String(repeating: "0", count: 16 - s.count) + s }
            #expect(String(decoding: out.readView, as: UTF8.self) == padded(hi) + padded(lo))
        }
        var g = SplitMix64(seed: 42)
        var seen = Set<UInt64>()
        for _ in 0..<10_000 { seen.insert(g.next()) }
        #expect(seen.count == 10_000)
        var a = SplitMix64(seed: 7), b = SplitMix64(seed: 7)
        #expect(a.next() == b.next(), "a seed gives one sequence")
    }

    @Test func theLoggedFieldsAreKnownAtParseTime() {
        for (name, known) in [("User-Agent", KnownField.userAgent), ("referer", .referer), ("X-REQUEST-ID", .xRequestID), ("Referrer", .other)] {
            let b = Array(name.utf8)
            #expect(b.withUnsafeBytes { KnownField.classify($0, 0, b.count) } == known, "\(name)")
        }
    }
}
