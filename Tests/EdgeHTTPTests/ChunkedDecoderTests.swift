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
        "5\r\nhelloX\r\n0\r\n\r\n",          // missing CRLF after data
        "g\r\n",                              // bad size
        "\r\n",                               // empty size
        "5\nhello\r\n0\r\n\r\n",             // bare LF
        "5\rhello\r\n0\r\n\r\n",             // bare CR
        "ffffffffffffffffff\r\n",            // overflow
        "0\r\nX: y\n\r\n",                   // bare LF in trailer
        "-1\r\n",
    ])
    func rejects(_ s: String) {
        let input = Array(s.utf8)
        for k in 0...input.count {
            if case .success = decodeChunked(input, splitAt: k) { Issue.record("accepted \(s.debugDescription) split at \(k)") }
        }
    }
}
