// HTTP/1.1 chunked framing on the way out (RFC 9112 §7.1): the one place that
// writes chunk-size lines. The decoder is ChunkedDecoder. Pure.

public enum ChunkFramer {
    /// Appends `data` as one chunk. Empty data appends nothing: an empty chunk
    /// is the last-chunk and would end the body.
    @inlinable @inline(__always) public static func appendChunk(_ data: UnsafeRawBufferPointer, to b: IOBuffer) {
        guard !data.isEmpty else { return }
        b.append(hex: data.count)
        b.append("\r\n")
        b.append(data)
        b.append("\r\n")
    }

    /// Appends the last-chunk and the empty trailer section that end a chunked body.
    @inlinable @inline(__always) public static func appendEnd(to b: IOBuffer) {
        b.append("0\r\n\r\n")
    }
}
