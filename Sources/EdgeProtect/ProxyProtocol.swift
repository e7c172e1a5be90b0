// The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2):
// what an L4 balancer in front of edged sends first on each connection to say
// whose it is. Parsed strictly, as bytes in and `needMore / done / invalid`
// out, at any split. The caller reads with MSG_PEEK and then takes exactly
// `consumed` bytes, so whatever follows (a TLS ClientHello) stays in the socket.
// Pure: no I/O.

public enum ProxyHeader: Equatable, Sendable {
    /// Not all of it yet; at least this many bytes in all are needed to go on.
    case needMore(Int)
    /// A header of `consumed` bytes. `source` is the client's address and port;
    /// nil for v2 LOCAL (the balancer's own health check), v1 UNKNOWN, and
    /// families other than TCP over IPv4/IPv6: the connection's own address stands.
    case done(consumed: Int, source: IPAddress?, port: UInt16)
    /// Not a PROXY header, or a broken one: the connection is closed.
    case invalid

    /// Longest v1 line (the spec's 107 bytes, CRLF included).
    public static let v1Max = 107
    /// Longest v2 header accepted (16 bytes and the addresses and TLVs after them).
    public static let v2Max = 16 + 1024
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Start: [UInt8] = Array("PROXY ".utf8)

    public static func parse(_ b: UnsafeRawBufferPointer) -> ProxyHeader {
        if b.isEmpty { return .needMore(8) }
        if b[0] == 0x0D { return parseV2(b) }
        if b[0] == 0x50 { return parseV1(b) }
        return .invalid
    }

    public static func parse(_ bytes: [UInt8]) -> ProxyHeader {
        bytes.withUnsafeBytes { parse($0) }
    }

    static func parseV2(_ b: UnsafeRawBufferPointer) -> ProxyHeader {
        let n = min(b.count, 12)
        for i in 0..<n where b[i] != v2Signature[i] { return .invalid }
        guard b.count >= 16 else { return .needMore(16) }
        let verCmd = b[12], fam = b[13]
        guard verCmd >> 4 == 2 else { return .invalid }
        let command = verCmd & 0x0F
        guard command <= 1 else { return .invalid }
        let len = Int(b[14]) << 8 | Int(b[15])
        guard 16 + len <= v2Max else { return .invalid }
        guard b.count >= 16 + len else { return .needMore(16 + len) }
        let total = 16 + len
        // TLVs (after the addresses) must tile the rest exactly.
        func tlvsTile(from start: Int) -> Bool {
            var i = start
            while i < total {
                guard i + 3 <= total else { return false }
                let l = Int(b[i + 1]) << 8 | Int(b[i + 2])
                i += 3 + l
            }
            return i == total
        }
        if command == 0 {   // LOCAL: the balancer speaking for itself; any address block is ignored
            return .done(consumed: total, source: nil, port: 0)
        }
        switch fam {
        case 0x11:   // TCP over IPv4: src 4, dst 4, src port, dst port
            guard len >= 12, tlvsTile(from: 16 + 12) else { return .invalid }
            let v4 = UInt32(b[16]) << 24 | UInt32(b[17]) << 16 | UInt32(b[18]) << 8 | UInt32(b[19])
            let port = UInt16(b[24]) << 8 | UInt16(b[25])
            return .done(consumed: total, source: IPAddress(v4: v4), port: port)
        case 0x21:   // TCP over IPv6
            guard len >= 36, tlvsTile(from: 16 + 36) else { return .invalid }
            let a = IPAddress(v6: UnsafeRawBufferPointer(rebasing: b[16..<32]))
            let port = UInt16(b[48]) << 8 | UInt16(b[49])
            return .done(consumed: total, source: a, port: port)
        case 0x00, 0x12, 0x22, 0x31, 0x32:   // UNSPEC, UDP, AF_UNIX: no TCP client address to take
            return .done(consumed: total, source: nil, port: 0)
        default:
            return .invalid
        }
    }

    static func parseV1(_ b: UnsafeRawBufferPointer) -> ProxyHeader {
        let n = min(b.count, v1Start.count)
        for i in 0..<n where b[i] != v1Start[i] { return .invalid }
        // The line ends at the first CR, which must be followed by LF.
        var end = -1
        for i in 0..<min(b.count, v1Max) {
            let c = b[i]
            if c == 0x0D { end = i; break }
            if c < 0x20 || c > 0x7E { return .invalid }
        }
        if end < 0 { return b.count >= v1Max ? .invalid : .needMore(b.count + 1) }
        guard end + 1 < b.count else { return .needMore(end + 2) }
        guard b[end + 1] == 0x0A else { return .invalid }
        let consumed = end + 2
        let words = Array(b[6..<end]).split(separator: 0x20, omittingEmptySubsequences: false)
        guard let proto = words.first else { return .invalid }
        if proto.elementsEqual("UNKNOWN".utf8) {   // anything may follow UNKNOWN
            return .done(consumed: consumed, source: nil, port: 0)
        }
        let v4 = proto.elementsEqual("TCP4".utf8)
        guard v4 || proto.elementsEqual("TCP6".utf8), words.count == 5,
              let src = address(words[1], v4: v4), address(words[2], v4: v4) != nil,
              let sport = port(words[3]), port(words[4]) != nil else { return .invalid }
        return .done(consumed: consumed, source: src, port: sport)
    }

    /// TCP4 takes a dotted quad, TCP6 IPv6 text (an IPv4-mapped one too).
    static func address(_ w: ArraySlice<UInt8>, v4: Bool) -> IPAddress? {
        if v4 { return IPAddress.parseV4(w).map { IPAddress(v4: $0) } }
        return IPAddress.parseV6(w).map { IPAddress(value: $0) }
    }

    /// 0…65535 in decimal, no sign, no leading zero.
    static func port(_ w: ArraySlice<UInt8>) -> UInt16? {
        guard !w.isEmpty, w.count <= 5, w.first != 48 || w.count == 1 else { return nil }
        var n = 0
        for c in w {
            guard c >= 48, c <= 57 else { return nil }
            n = n * 10 + Int(c - 48)
        }
        return n <= 65535 ? UInt16(n) : nil
    }
}
