import Testing
@testable import EdgeProtect

@Suite struct IPAddressTests {
    @Test func textRoundTripsInCanonicalForm() {
        let cases: [(String, String)] = [
            ("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "0.0.0.0"), ("255.255.255.255", "255.255.255.255"),
            ("::1", "::1"), ("::", "::"), ("2001:DB8::1", "2001:db8::1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),          // the first of two equal runs
            ("2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:db8::ff00:42:8329"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),         // one zero group stays
            ("fe80::", "fe80::"), ("1::", "1::"), ("::2:3", "::2:3"),
            ("::ffff:192.0.2.1", "192.0.2.1"),                        // IPv4-mapped is IPv4
            ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ]
        for (input, canonical) in cases {
            let a = IPAddress(input)
            #expect(a != nil, "\(input)")
            #expect(a?.description == canonical, "\(input)")
            #expect(IPAddress(canonical) == a, "\(input)")
        }
    }

    @Test func malformedTextIsRefused() {
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4", "1..2.3", "1.2.3.-4",
                    ":", ":::", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::", "1:2:3:4:5:6:7", ":1::", "1::2:",
                    "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4", "[::1]", "fe80::1%eth0", "1.2.3.4/8"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func ipv4IsMappedAndLimitKeysAreSlash64ForIPv6() {
        let a = IPAddress("10.1.2.3")!
        #expect(a.isV4)
        #expect(a.value == (0xffff << 32 | 0x0a010203))
        #expect(a.limitKey == a.value)
        let b = IPAddress("2001:db8:1:2:aaaa::1")!, c = IPAddress("2001:db8:1:2:bbbb::9")!
        #expect(!b.isV4)
        #expect(b.limitKey == c.limitKey)
        #expect(b.limitKey != IPAddress("2001:db8:1:3::1")!.limitKey)
    }
}
