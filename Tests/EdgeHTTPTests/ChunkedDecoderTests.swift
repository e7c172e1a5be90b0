import Testing
@testable import EdgeHTTP

/// Decodes `input` delivered in pieces split at `splits`; returns the payload or the error.
func decodeChunked(_ input: [UInt8], splitAt k: Int?) -> Result<[UInt8], ChunkedTestError> {
    var d = ChunkedDecoder()
    var out: [UInt8] = []
    var pending: [UInt8] = []
    let pieces: [ArraySlice<UInt8>] = k.map { [input[0..<$0], input[$0...]] } ?? [input[...]]
    for piece in pieces {
        pending.append(contentsOf: piece)
        var next = 0
        loop: while true {
            let (ev, n) = pending.withUnsafeBytes { d.decode($0, from: next) }
            switch ev {
            case .data(let r): out.append(contentsOf: pending[r]); next = n
            case .needMore: next = n; break loop
            case .end: return .success(out)
            case .error(let e): return .failure(ChunkedTestError(reason: e))
            }
        }
        pending.removeFirst(next)
    }
    return .failure(ChunkedTestError(reason: "incomplete"))
}

struct ChunkedTestError: Error, Equatable { var reason: String }

@Suite(.timeLimit(.minutes(3))) struct ChunkedDecoderTests {
    @Test func decodesAtEverySplit() throws {
        let input = Array("5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n".utf8)
        for k in 0...input.count {
            #expect(try decodeChunked(input, splitAt: k).get() == Array("hello 0123456789".utf8), "split \(k)")
        }
    }

    @Test(arguments: [
        ("5\r\nhelloX\r\n0\r\n\r\n", "missing CRLF after chunk data"),
        ("g\r\n", "missing chunk size"),
        ("\r\n", "missing chunk size"),
        ("5\nhello\r\n0\r\n\r\n", "invalid chunk size"),        // bare LF after the size
        ("5\rhello\r\n0\r\n\r\n", "bare CR in chunk header"),
        ("ffffffffffffffffff\r\n", "chunk size too large"),
        ("0\r\nX: y\n\r\n", "bad trailer"),                         // bare LF in a trailer
        ("-1\r\n", "missing chunk size"),
    ])
    func rejects(_ s: String, _ reason: String) {
        // A real rejection with its reason at every split: running out of input
        // ("incomplete") is not one, and would pass if the decoder only waited.
        let input = Array(s.utf8)
        for k in 0...input.count {
            #expect(decodeChunked(input, splitAt: k) == .failure(ChunkedTestError(reason: reason)), "\(s.debugDescription) split at \(k)")
        }
    }
}

@Suite(.timeLimit(.minutes(3))) struct ChunkFramerTests {
    @Test func framedPiecesDecodeToTheSameBytesAtEverySplit() throws {
        let pieces: [[UInt8]] = [Array("hello".utf8), [], Array(repeating: 0x61, count: 300), Array("\r\n0\r\n".utf8)]
        let b = IOBuffer(capacity: 64)
        for p in pieces { p.withUnsafeBytes { ChunkFramer.appendChunk($0, to: b) } }
        ChunkFramer.appendEnd(to: b)
        let wire = Array(b.readView)
        #expect(!String(decoding: wire, as: UTF8.self).hasPrefix("5\r\nhello\r\n0\r\n"), "an empty piece must not end the body")
        for k in 0...wire.count {
            #expect(try decodeChunked(wire, splitAt: k).get() == pieces.flatMap { $0 }, "split \(k)")
        }
    }
}
