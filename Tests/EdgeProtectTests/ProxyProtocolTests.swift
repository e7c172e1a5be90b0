import Testing
@testable import EdgeProtect

@Suite struct ProxyProtocolTests {
    static func v2(command: UInt8 = 1, family: UInt8, addresses: [UInt8], tlvs: [UInt8] = [], version: UInt8 = 2) -> [UInt8] {
        let body = addresses + tlvs
        return ProxyHeader.v2Signature + [version << 4 | command, family, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
    }

    /// Every prefix of a complete header asks for more (at least one byte
    /// more than it has), and the whole, with anything after it, is one answer.
    func expectAtEverySplit(_ header: [UInt8], _ answer: ProxyHeader, sourceLocation: SourceLocation = #_sourceLocation) {
        for n in 0..<header.count {
            let r = ProxyHeader.parse(Array(header[0..<n]))
            guard case .needMore(let want) = r else { Issue.record("prefix \(n): \(r)", sourceLocation: sourceLocation); continue }
            #expect(want > n && want <= header.count, "prefix \(n) wants \(want)", sourceLocation: sourceLocation)
        }
        #expect(ProxyHeader.parse(header) == answer, sourceLocation: sourceLocation)
        #expect(ProxyHeader.parse(header + Array("GET / HTTP/1.1\r\n".utf8)) == answer, sourceLocation: sourceLocation)
    }

    @Test func version1() {
        let tcp4 = Array("PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n".utf8)
        expectAtEverySplit(tcp4, .done(consumed: tcp4.count, source: IPAddress("192.0.2.10"), port: 56324))
        let tcp6 = Array("PROXY TCP6 2001:db8::7 2001:db8::1 65535 8443\r\n".utf8)
        expectAtEverySplit(tcp6, .done(consumed: tcp6.count, source: IPAddress("2001:db8::7"), port: 65535))
        let unknown = Array("PROXY UNKNOWN ffff:f...f:ffff 0 0\r\n".utf8)
        expectAtEverySplit(unknown, .done(consumed: unknown.count, source: nil, port: 0))
        let bare = Array("PROXY UNKNOWN\r\n".utf8)
        expectAtEverySplit(bare, .done(consumed: bare.count, source: nil, port: 0))
        let mapped = Array("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n".utf8)
        #expect(ProxyHeader.parse(mapped) == .done(consumed: mapped.count, source: IPAddress("192.0.2.1"), port: 1))
    }

    @Test func version1Refusals() {
        for bad in [
            "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\n",     // LF alone
            "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\r",
            "PROXY TCP4  192.0.2.10 198.51.100.1 56324 443\r\n",  // two spaces
            "PROXY TCP4 192.0.2.10 198.51.100.1 56324\r\n",       // a word short
            "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443 x\r\n",
            "PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",        // IPv6 under TCP4
            "PROXY TCP6 192.0.2.10 2001:db8::1 1 2\r\n",          // a dotted quad under TCP6
            "PROXY TCP4 192.0.2.10 198.51.100.1 65536 443\r\n",
            "PROXY TCP4 192.0.2.10 198.51.100.1 0443 443\r\n",
            "PROXY TCP4 192.0.2.10 198.51.100.1 -1 443\r\n",
            "PROXY TCP4 192.0.2.010 198.51.100.1 1 443\r\n",
            "PROXY UDP4 192.0.2.10 198.51.100.1 1 2\r\n",
            "proxy TCP4 192.0.2.10 198.51.100.1 1 2\r\n",
            "PROXY\tTCP4 192.0.2.10 198.51.100.1 1 2\r\n",
            "GET / HTTP/1.1\r\n",
            "\u{16}\u{03}\u{01}",                                 // a TLS ClientHello without a header
        ] {
            #expect(ProxyHeader.parse(Array(bad.utf8)) == .invalid, "\(bad.debugDescription)")
        }
        // No CRLF within 107 bytes.
        let long = Array(("PROXY UNKNOWN " + String(repeating: "a", count: 100)).utf8)
        #expect(ProxyHeader.parse(long) == .invalid)
        #expect(ProxyHeader.parse(Array(long.prefix(106))) == .needMore(107))
        // A control byte in the line.
        #expect(ProxyHeader.parse(Array("PROXY TCP4 1.2.3.4\u{0} 1.2.3.4 1 2\r\n".utf8)) == .invalid)
    }

    @Test func version2() {
        let four = Self.v2(family: 0x11, addresses: [192, 0, 2, 10, 198, 51, 100, 1, 0xdc, 0x04, 0x01, 0xbb])
        expectAtEverySplit(four, .done(consumed: 28, source: IPAddress("192.0.2.10"), port: 0xdc04))
        var six: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [7]
        six += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1] + [0, 80, 1, 187]
        expectAtEverySplit(Self.v2(family: 0x21, addresses: six), .done(consumed: 52, source: IPAddress("2001:db8::7"), port: 80))
        // TLVs after the addresses (an ALPN and a NOOP), skipped.
        let withTLVs = Self.v2(family: 0x11, addresses: [10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2], tlvs: [0x01, 0, 2, 0x68, 0x32, 0x04, 0, 0])
        expectAtEverySplit(withTLVs, .done(consumed: withTLVs.count, source: IPAddress("10.0.0.1"), port: 1))
        // LOCAL: the balancer's own connection; whatever address block it has is ignored.
        let local = Self.v2(command: 0, family: 0x00, addresses: [])
        expectAtEverySplit(local, .done(consumed: 16, source: nil, port: 0))
        let unspec = Self.v2(family: 0x00, addresses: [1, 2, 3])
        expectAtEverySplit(unspec, .done(consumed: 19, source: nil, port: 0))
        let unix = Self.v2(family: 0x31, addresses: [UInt8](repeating: 0x2f, count: 216))
        expectAtEverySplit(unix, .done(consumed: 232, source: nil, port: 0))
    }

    @Test func version2Refusals() {
        let addrs: [UInt8] = [192, 0, 2, 10, 198, 51, 100, 1, 0, 1, 0, 2]
        #expect(ProxyHeader.parse(Self.v2(family: 0x11, addresses: addrs, version: 1)) == .invalid)
        #expect(ProxyHeader.parse(Self.v2(command: 2, family: 0x11, addresses: addrs)) == .invalid)
        #expect(ProxyHeader.parse(Self.v2(family: 0x11, addresses: Array(addrs.prefix(11)))) == .invalid)   // short address block
        #expect(ProxyHeader.parse(Self.v2(family: 0x13, addresses: addrs)) == .invalid)                      // unknown protocol
        #expect(ProxyHeader.parse(Self.v2(family: 0x11, addresses: addrs, tlvs: [0x01, 0, 5, 1])) == .invalid)  // TLV overruns
        #expect(ProxyHeader.parse(Self.v2(family: 0x11, addresses: addrs, tlvs: [0x01, 0])) == .invalid)        // a torn TLV head
        var sig = Self.v2(family: 0x11, addresses: addrs)
        sig[5] = 0x0e
        #expect(ProxyHeader.parse(sig) == .invalid)
        #expect(ProxyHeader.parse(Array(sig.prefix(6))) == .invalid)   // wrong early: no waiting for the rest
        // Longer than the limit: refused from its first 16 bytes.
        let huge = ProxyHeader.v2Signature + [0x21, 0x11, 0x04, 0x01]
        #expect(ProxyHeader.parse(huge) == .invalid)
    }
}
