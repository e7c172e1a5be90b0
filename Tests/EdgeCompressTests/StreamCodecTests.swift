// The codecs on their own: round trips fed in pieces of every size class,
// truncated and corrupt input, and the decoder's output limit.
import Testing
import EdgeHTTP
@testable import EdgeCompress

/// Text-like bytes that compress the way pages do.
func sampleText(_ n: Int) -> [UInt8] {
    let words = ["edge", "cache", "tenant", "origin", "vary", "brotli", "gzip", "{\"id\": ", "</div>", "\n"]
    var out: [UInt8] = []
    var x: UInt32 = 12345
    while out.count < n {
        x = x &* 1103515245 &+ 12345
        out += Array(words[Int(x >> 16) % words.count].utf8) + [32]
    }
    return Array(out.prefix(n))
}

/// Feeds `body` to `c` in pieces of `piece` bytes, then finishes; returns the output.
func feedInPieces(_ c: StreamCodec, _ body: [UInt8], piece: Int) throws -> [UInt8] {
    let out = IOBuffer(capacity: 1024)
    var i = 0
    while i < body.count {
        let j = min(body.count, i + piece)
        try body[i..<j].withUnsafeBytes { p in try c.feed(p, finish: false, into: out) }
        i = j
    }
    try c.feed(UnsafeRawBufferPointer(start: nil, count: 0), finish: true, into: out)
    #expect(c.isFinished)
    return Array(out.readView)
}

func encodeInPieces(_ body: [UInt8], _ coding: ContentCoding, piece: Int) throws -> [UInt8] {
    try feedInPieces(StreamCodec(encoding: coding), body, piece: piece)
}

func decodeInPieces(_ body: [UInt8], _ coding: ContentCoding, piece: Int, limit: Int = 1 << 30) throws -> [UInt8] {
    try feedInPieces(StreamCodec(decoding: coding, limit: limit), body, piece: piece)
}

@Suite(.timeLimit(.minutes(3))) struct StreamCodecTests {
    @Test(arguments: [ContentCoding.gzip, .br])
    func roundTripsInPiecesOfAnySize(_ coding: ContentCoding) throws {
        for size in [0, 1, 100, 70_000, 300_000] {
            let body = sampleText(size)
            for piece in [1, 7, 4096, 1 << 20] where piece <= max(1, size) * 2 && !(piece == 1 && size > 100) {
                let enc = try encodeInPieces(body, coding, piece: piece)
                if size >= 70_000 { #expect(enc.count < size / 3, "\(coding) should compress text") }
                for dpiece in [1, 13, 1 << 20] where !(dpiece == 1 && enc.count > 20_000) {
                    #expect(try decodeInPieces(enc, coding, piece: dpiece) == body)
                }
            }
            #expect(try StreamCodec.decode(StreamCodec.encode(body, as: coding), from: coding, limit: 1 << 30) == body)
        }
    }

    @Test(arguments: [ContentCoding.gzip, .br])
    func aBombStopsAtTheLimit(_ coding: ContentCoding) throws {
        let zeros = [UInt8](repeating: 0, count: 20 << 20)
        let bomb = try StreamCodec.encode(zeros, as: coding)
        #expect(bomb.count < 100_000)
        #expect(throws: CodecError.tooLarge) { _ = try decodeInPieces(bomb, coding, piece: 4096, limit: 1 << 20) }
        // The decoder never produced much more than the limit before stopping.
        let c = try StreamCodec(decoding: coding, limit: 1 << 20)
        let out = IOBuffer(capacity: 1024)
        #expect(throws: CodecError.tooLarge) { try bomb.withUnsafeBytes { try c.feed($0, finish: true, into: out) } }
        #expect(out.readableBytes < (1 << 20) + (64 << 10))
    }

    @Test(arguments: [ContentCoding.gzip, .br])
    func truncatedAndCorruptInputAreErrors(_ coding: ContentCoding) throws {
        let enc = try StreamCodec.encode(sampleText(50_000), as: coding)
        #expect(throws: CodecError.corrupt) { _ = try StreamCodec.decode(Array(enc.prefix(enc.count / 2)), from: coding, limit: 1 << 30) }
        #expect(throws: CodecError.corrupt) { _ = try StreamCodec.decode(Array("this is not compressed at all".utf8), from: coding, limit: 1 << 30) }
        #expect(throws: CodecError.corrupt) { _ = try StreamCodec.decode(enc + [1, 2, 3], from: coding, limit: 1 << 30) }
    }

    @Test func identityIsNotACodec() {
        #expect(throws: CodecError.setup) { _ = try StreamCodec(encoding: .identity) }
    }
}
