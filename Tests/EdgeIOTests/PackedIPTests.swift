import Testing
import EdgeIO

@Suite struct PackedIPTests {
    @Test(arguments: ["127.0.0.1", "0.0.0.0", "255.255.255.255", "10.1.2.3", "::1", "::", "2001:db8::8a2e:370:7334",
                      "fe80::1", "::ffff:192.0.2.128", "2001:db8:0:1:1:1:1:1"])
    func anAddressPacksAndComesBackAsItsText(_ text: String) throws {
        let p = try #require(PackedIP(text: Array(text.utf8)))
        #expect(String(decoding: p.text, as: UTF8.self) == text)
    }

    @Test func differentAddressesPackDifferently() throws {
        let a = try #require(PackedIP(text: Array("10.0.0.1".utf8)))
        let b = try #require(PackedIP(text: Array("10.0.0.2".utf8)))
        let c = try #require(PackedIP(text: Array("::a00:1".utf8)))
        #expect(a != b && a != c)
    }

    @Test(arguments: ["", "localhost", "1.2.3", "1.2.3.4.5", "::g", "127.0.0.1:80", "unix:/tmp/s"])
    func textThatIsNoAddressDoesNotPack(_ text: String) {
        #expect(PackedIP(text: Array(text.utf8)) == nil)
    }
}
