import Testing
@testable import EdgeTLS

@Suite(.timeLimit(.minutes(3))) struct ServerNameExtensionTests {
    func ext(_ entries: [(UInt8, [UInt8])], listLength: Int? = nil) -> [UInt8] {
        var body: [UInt8] = []
        for (t, n) in entries { body += [t, UInt8(n.count >> 8), UInt8(n.count & 255)] + n }
        let l = listLength ?? body.count
        return [UInt8(l >> 8), UInt8(l & 255)] + body
    }

    func name(_ b: [UInt8]) -> String? { b.withUnsafeBytes { ServerNameExtension.hostName($0) } }

    @Test func readsTheHostNameLowercasedWithoutTrailingDot() {
        #expect(name(ext([(0, Array("A.Test.".utf8))])) == "a.test")
        #expect(name(ext([(7, Array("other".utf8)), (0, Array("b.test".utf8))])) == "b.test")
    }

    @Test func malformedBodiesAreRejected() {
        let good = ext([(0, Array("a.test".utf8))])
        // Every truncation is malformed (the list length no longer fits).
        for cut in 0..<good.count { #expect(name(Array(good[0..<cut])) == nil, "cut at \(cut)") }
        #expect(name(ext([(0, Array("a.test".utf8))], listLength: 3)) == nil)
        #expect(name(ext([(0, [])])) == nil)
        #expect(name(ext([(0, Array("a\u{0}b".utf8))])) == nil)
        #expect(name(ext([(0, Array("a b".utf8))])) == nil)
        #expect(name(ext([(0, Array(".".utf8))])) == nil)
        #expect(name(ext([(0, Array("a..".utf8))])) == nil)   // found by the fuzzer
        #expect(name(ext([(1, Array("a.test".utf8))])) == nil)
    }
}
