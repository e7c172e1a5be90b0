import Testing
@testable import EdgeProtect
import EdgeHTTP   // (SplitMix64)

@Suite struct PrefixListTests {
    func verdict(_ l: PrefixList, _ a: String) -> PrefixList.Verdict { l.verdict(IPAddress(a)!) }

    @Test func prefixesParseStrictly() {
        #expect(Prefix("10.0.0.0/8")?.text == "10.0.0.0/8")
        #expect(Prefix("10.1.2.3")?.text == "10.1.2.3/32")
        #expect(Prefix("2001:db8::/32")?.text == "2001:db8::/32")
        #expect(Prefix("::/0")?.text == "::/0")
        #expect(Prefix("0.0.0.0/0")?.text == "0.0.0.0/0")
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/+8", "10.0.0.0/08", "x/8", "2001:db8::1/32", "::/129", "1.2.3.4/8/9"] {
            #expect(Prefix(bad) == nil, "\(bad)")
        }
    }

    @Test func theMostSpecificPrefixDecides() throws {
        let l = try PrefixList(allow: ["10.1.2.0/24", "10.1.2.128/32"], deny: ["10.0.0.0/8", "10.1.2.128/25", "2001:db8::/32"])
        #expect(verdict(l, "10.1.2.3") == .allow)
        #expect(verdict(l, "10.1.2.200") == .deny)     // the /25 inside the allowed /24
        #expect(verdict(l, "10.1.2.128") == .allow)    // the /32 inside that /25
        #expect(verdict(l, "10.1.3.1") == .deny)
        #expect(verdict(l, "10.255.255.255") == .deny)
        #expect(verdict(l, "11.0.0.0") == .allow)      // outside: the default (deny is given, so allow)
        #expect(verdict(l, "9.255.255.255") == .allow)
        #expect(verdict(l, "2001:db8:ffff::1") == .deny)
        #expect(verdict(l, "2001:db9::1") == .allow)
        #expect(verdict(l, "::ffff:10.1.2.3") == .allow)
    }

    @Test func anAllowListAloneDeniesEverythingElse() throws {
        let l = try PrefixList(allow: ["192.168.0.0/16", "::1"], deny: [])
        #expect(verdict(l, "192.168.4.4") == .allow)
        #expect(verdict(l, "::1") == .allow)
        #expect(verdict(l, "192.169.0.0") == .deny)
        #expect(verdict(l, "::2") == .deny)
        let explicit = try PrefixList(allow: ["192.168.0.0/16"], deny: [], default: .allow)
        #expect(verdict(explicit, "8.8.8.8") == .allow)
        let none = PrefixList()
        #expect(verdict(none, "8.8.8.8") == .allow)
    }

    @Test func edgesOfTheSpaceAndAdjacentRanges() throws {
        let l = try PrefixList(allow: [], deny: ["::/1", "8000::/1"])   // everything, in two halves
        #expect(verdict(l, "::") == .deny)
        #expect(verdict(l, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == .deny)
        #expect(l.rangeCount == 1)   // merged into one range
        // An IPv6 prefix over the whole space holds the IPv4 addresses too (their mapped form).
        let wide = try PrefixList(allow: ["10.0.0.0/8"], deny: ["::/0"])
        #expect(verdict(wide, "10.1.1.1") == .allow)
        #expect(verdict(wide, "11.0.0.1") == .deny)
        #expect(verdict(wide, "0.0.0.0") == .deny)
        #expect(verdict(wide, "::1") == .deny)
        let mappedEdge = try PrefixList(allow: [], deny: ["::ffff:0:0/97"])   // the lower half of IPv4, written as IPv6
        #expect(verdict(mappedEdge, "127.255.255.255") == .deny)
        #expect(verdict(mappedEdge, "128.0.0.0") == .allow)
        let adj = try PrefixList(allow: [], deny: ["10.0.0.0/25", "10.0.0.128/25", "10.0.0.5/32"])
        #expect(verdict(adj, "10.0.0.200") == .deny)
        #expect(verdict(adj, "10.0.1.0") == .allow)
        #expect(verdict(adj, "9.255.255.255") == .allow)
    }

    @Test func duplicatesAndConflicts() throws {
        let dup = try PrefixList(allow: [], deny: ["1.2.3.0/24", "1.2.3.0/24"])
        #expect(verdict(dup, "1.2.3.9") == .deny)
        #expect(throws: PrefixList.BuildError.inBoth("1.2.3.0/24")) { try PrefixList(allow: ["1.2.3.0/24"], deny: ["1.2.3.0/24"]) }
        #expect(throws: PrefixList.BuildError.bad("1.2.3.4/33")) { try PrefixList(allow: [], deny: ["1.2.3.4/33"]) }
    }

    /// A brute-force model: the most specific holding prefix, over random nested lists.
    @Test func agreesWithAModelOnRandomLists() throws {
        var rng = SplitMix64(seed: 7)
        for round in 0..<200 {
            var allow: [String] = [], deny: [String] = []
            var seen: [Prefix: Bool] = [:]
            var all: [(Prefix, PrefixList.Verdict)] = []
            for _ in 0..<Int(rng.next() % 12) {
                let len = Int(rng.next() % 9) + 24           // small space: 10.0.0.0/24 and below
                let host = UInt32(rng.next() % 256)
                let net = ((0x0a00_0000 | host) >> UInt32(32 - len)) << UInt32(32 - len)
                let text = IPAddress(v4: net).description + "/\(len)"
                let p = Prefix(text)!
                let isDeny = rng.next() % 2 == 0
                if let was = seen[p], was != isDeny { continue }
                seen[p] = isDeny
                if isDeny { deny.append(text) } else { allow.append(text) }
                all.append((p, isDeny ? .deny : .allow))
            }
            let l = try PrefixList(allow: allow, deny: deny)
            let fallback: PrefixList.Verdict = deny.isEmpty && !allow.isEmpty ? .deny : .allow
            for host in UInt32(0x0a00_0000 - 2)..<UInt32(0x0a00_0100 + 2) {
                let a = IPAddress(v4: host)
                let best = all.filter { $0.0.contains(a) }.max { $0.0.bits < $1.0.bits }
                #expect(l.verdict(a) == (best?.1 ?? fallback), "round \(round) \(a) allow \(allow) deny \(deny)")
            }
        }
    }

    @Test func listFilesSkipCommentsAndBlankLines() {
        let lines = PrefixList.lines("# scanners\n10.0.0.0/8\n\n  192.0.2.1  # one host\r\n\t\n")
        #expect(lines.map(\.line) == [2, 4])
        #expect(lines.map(\.prefix) == ["10.0.0.0/8", "192.0.2.1"])
    }
}
