import Testing
@testable import EdgeHTTP

@Suite struct CDNLoopTests {
    func scan(_ v: String, fleet: String = "edged", node: String = "n1") -> (Int, Bool) {
        let b = Array(v.utf8)
        let r = b.withUnsafeBytes { CDNLoop.scan($0, 0..<$0.count, fleet: Array(fleet.utf8), node: Array(node.utf8)) }
        return (r.count, r.mine)
    }

    @Test func countsTheFleetAndFindsTheNode() {
        #expect(scan("") == (0, false))
        #expect(scan("edged") == (1, false))
        #expect(scan("EDGED; node=n1") == (1, true))
        #expect(scan("foo, edged;node=n2 , edged ; v=1 ; NODE=\"n1\"") == (2, true))
        #expect(scan("cdn.example:443; node=n1, edged; node=n1x") == (1, false))
        // Another fleet's entry naming our node is not ours.
        #expect(scan("other; node=n1") == (0, false))
    }

    @Test func quotedCommasAndMalformedMembersStayInTheirMember() {
        #expect(scan("x; note=\"a, edged\", edged") == (1, false))
        #expect(scan("x; note=\"a \\\" , edged\", edged; node=n1") == (1, true))
        #expect(scan(";;;, ,,edged;=;node") == (1, false))
        #expect(scan("edged; node=\"n1") == (1, true))   // an unterminated quote still ends at the value's end
        #expect(scan("\"edged\"") == (0, false))
    }

    @Test func anySliceOfAValueScansWithoutReadingPastIt() {
        let v = Array("a, edged; node=\"n1, x\" ; y=z, edged;node=n1".utf8)
        for cut in 0...v.count {
            let r = v.withUnsafeBytes { CDNLoop.scan($0, 0..<cut, fleet: Array("edged".utf8), node: Array("n1".utf8)) }
            #expect(r.count <= 2)
        }
    }
}
