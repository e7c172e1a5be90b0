// HTTP/2 framing (RFC 9113 §4, §6): the 9-byte frame header, each frame
// type's payload checks, and the frames edge writes. Pure and copy-free:
// bytes in, `needMore / frame(header, payload range) / error` out.

public enum FrameType: UInt8, Sendable {
    case data = 0x0, headers = 0x1, priority = 0x2, rstStream = 0x3, settings = 0x4, pushPromise = 0x5, ping = 0x6,
         goaway = 0x7, windowUpdate = 0x8, continuation = 0x9
}

/// Error codes (RFC 9113 §7).
public enum H2Error: UInt32, Error, Sendable {
    case noError = 0x0, protocolError = 0x1, internalError = 0x2, flowControlError = 0x3, settingsTimeout = 0x4,
         streamClosed = 0x5, frameSizeError = 0x6, refusedStream = 0x7, cancel = 0x8, compressionError = 0x9,
         connectError = 0xa, enhanceYourCalm = 0xb, inadequateSecurity = 0xc, http11Required = 0xd
}

public enum FrameFlag {
    public static let endStream: UInt8 = 0x1
    public static let ack: UInt8 = 0x1
    public static let endHeaders: UInt8 = 0x4
    public static let padded: UInt8 = 0x8
    public static let priority: UInt8 = 0x20
}

public struct FrameHeader: Equatable, Sendable {
    public var length: Int
    /// nil: a type this implementation does not know (ignored, §4.1 / §5.5).
    public var type: FrameType?
    public var rawType: UInt8
    public var flags: UInt8
    public var stream: UInt32
    public init(length: Int, type: FrameType, flags: UInt8 = 0, stream: UInt32 = 0) {
        self.length = length; self.type = type; self.rawType = type.rawValue; self.flags = flags; self.stream = stream
    }
    init(length: Int, rawType: UInt8, flags: UInt8, stream: UInt32) {
        self.length = length; self.type = FrameType(rawValue: rawType); self.rawType = rawType; self.flags = flags; self.stream = stream
    }
    @inline(__always) public func has(_ flag: UInt8) -> Bool { flags & flag != 0 }
}

public enum FrameParse: Equatable, Sendable {
    case needMore
    /// A whole frame: its header and the range of its payload in the input.
    case frame(FrameHeader, Range<Int>)
    /// A connection error (§5.4.1).
    case error(H2Error)
}

public enum Frames {
    public static let headerSize = 9
    /// The connection preface a client sends first (§3.4).
    public static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    /// The next frame at the start of `p`, no longer than `maxFrameSize` (our
    /// SETTINGS_MAX_FRAME_SIZE: a larger one is FRAME_SIZE_ERROR, §4.2).
    public static func next(_ p: UnsafeRawBufferPointer, maxFrameSize: Int) -> FrameParse {
        guard p.count >= headerSize else { return .needMore }
        let length = Int(p[0]) << 16 | Int(p[1]) << 8 | Int(p[2])
        guard length <= maxFrameSize else { return .error(.frameSizeError) }
        guard p.count >= headerSize + length else { return .needMore }
        let stream = (UInt32(p[5]) << 24 | UInt32(p[6]) << 16 | UInt32(p[7]) << 8 | UInt32(p[8])) & 0x7FFF_FFFF
        return .frame(FrameHeader(length: length, rawType: p[3], flags: p[4], stream: stream), headerSize..<(headerSize + length))
    }

    /// The part of a DATA or HEADERS payload after its padding is taken off
    /// (§6.1, §6.2); nil when the padding is as long as the payload or longer
    /// (PROTOCOL_ERROR). `skip`: bytes after the pad length before the content
    /// (HEADERS with PRIORITY carries 5).
    public static func unpadded(_ h: FrameHeader, _ payload: Range<Int>, _ p: UnsafeRawBufferPointer, skip: Int = 0) -> Range<Int>? {
        var start = payload.lowerBound
        var end = payload.upperBound
        if h.has(FrameFlag.padded) {
            guard payload.count >= 1 else { return nil }
            let pad = Int(p[start])
            start += 1
            guard pad <= end - start - skip else { return nil }
            end -= pad
        }
        guard end - start >= skip else { return nil }
        return (start + skip)..<end
    }

    @inline(__always) static func u32(_ p: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(p[at]) << 24 | UInt32(p[at + 1]) << 16 | UInt32(p[at + 2]) << 8 | UInt32(p[at + 3])
    }

    // MARK: Writing

    public static func appendHeader(_ h: FrameHeader, into out: inout [UInt8]) {
        var b = bytes(h)
        withUnsafeBytes(of: &b) { out.append(contentsOf: $0) }
    }

    /// Writes a frame header over the nine bytes at `at` (room kept for it earlier).
    public static func writeHeader(_ h: FrameHeader, at: Int, in out: inout [UInt8]) {
        var b = bytes(h)
        withUnsafeBytes(of: &b) { src in out.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: at).copyMemory(from: src.baseAddress!, byteCount: 9) } }
    }

    /// A frame header's nine bytes (§4.1), made in registers.
    @inline(__always) static func bytes(_ h: FrameHeader) -> (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) {
        let id = h.stream & 0x7FFF_FFFF
        return (UInt8(truncatingIfNeeded: h.length >> 16), UInt8(truncatingIfNeeded: h.length >> 8), UInt8(truncatingIfNeeded: h.length),
                h.rawType, h.flags,
                UInt8(truncatingIfNeeded: id >> 24), UInt8(truncatingIfNeeded: id >> 16), UInt8(truncatingIfNeeded: id >> 8), UInt8(truncatingIfNeeded: id))
    }

    @inline(__always) static func appendU32(_ v: UInt32, into out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: v >> 24)); out.append(UInt8(truncatingIfNeeded: v >> 16))
        out.append(UInt8(truncatingIfNeeded: v >> 8)); out.append(UInt8(truncatingIfNeeded: v))
    }

    public static func appendSettings(_ settings: [(Setting, UInt32)], into out: inout [UInt8]) {
        appendHeader(FrameHeader(length: settings.count * 6, type: .settings), into: &out)
        for (id, v) in settings {
            out.append(UInt8(id.rawValue >> 8)); out.append(UInt8(id.rawValue & 0xFF))
            appendU32(v, into: &out)
        }
    }

    public static func appendSettingsAck(into out: inout [UInt8]) {
        appendHeader(FrameHeader(length: 0, type: .settings, flags: FrameFlag.ack), into: &out)
    }

    public static func appendPing(ack: Bool, _ opaque: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        appendHeader(FrameHeader(length: 8, type: .ping, flags: ack ? FrameFlag.ack : 0), into: &out)
        out.append(contentsOf: opaque.prefix(8))
    }

    public static func appendGoaway(lastStream: UInt32, _ code: H2Error, into out: inout [UInt8]) {
        appendHeader(FrameHeader(length: 8, type: .goaway), into: &out)
        appendU32(lastStream & 0x7FFF_FFFF, into: &out)
        appendU32(code.rawValue, into: &out)
    }

    public static func appendRstStream(_ stream: UInt32, _ code: H2Error, into out: inout [UInt8]) {
        appendHeader(FrameHeader(length: 4, type: .rstStream, stream: stream), into: &out)
        appendU32(code.rawValue, into: &out)
    }

    public static func appendWindowUpdate(_ stream: UInt32, _ increment: UInt32, into out: inout [UInt8]) {
        appendHeader(FrameHeader(length: 4, type: .windowUpdate, stream: stream), into: &out)
        appendU32(increment & 0x7FFF_FFFF, into: &out)
    }

    /// A header block as HEADERS and as many CONTINUATION frames as `maxFrameSize` needs.
    public static func appendHeaderBlock(_ stream: UInt32, _ block: [UInt8], endStream: Bool, maxFrameSize: Int, into out: inout [UInt8]) {
        var at = 0
        var first = true
        repeat {
            let n = min(maxFrameSize, block.count - at)
            let last = at + n == block.count
            var flags: UInt8 = last ? FrameFlag.endHeaders : 0
            if first && endStream { flags |= FrameFlag.endStream }
            appendHeader(FrameHeader(length: n, type: first ? .headers : .continuation, flags: flags, stream: stream), into: &out)
            out.append(contentsOf: block[at..<(at + n)])
            at += n
            first = false
        } while at < block.count
    }

    public static func appendData(_ stream: UInt32, _ bytes: UnsafeRawBufferPointer, endStream: Bool, into out: inout [UInt8]) {
        appendHeader(FrameHeader(length: bytes.count, type: .data, flags: endStream ? FrameFlag.endStream : 0, stream: stream), into: &out)
        out.append(contentsOf: bytes)
    }
}

/// SETTINGS parameters (§6.5.2).
public enum Setting: UInt16, Sendable {
    case headerTableSize = 0x1, enablePush = 0x2, maxConcurrentStreams = 0x3, initialWindowSize = 0x4, maxFrameSize = 0x5,
         maxHeaderListSize = 0x6, enableConnectProtocol = 0x8
}
