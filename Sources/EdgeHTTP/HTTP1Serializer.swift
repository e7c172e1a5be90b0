// HTTP/1.1 message syntax edge writes (RFC 9112): status lines, the framing
// fields, the Connection field and the end of a head. Pure: bytes appended to
// an IOBuffer. The pipeline's one user is the HTTP/1 response writer
// (Sources/EdgeProxy/HTTP1Writer.swift); the admin API uses it too. Field
// lines themselves are "Name: value\r\n", the form heads are kept in.

public enum HTTP1Serializer {
    /// "HTTP/1.1 NNN Reason\r\n": `reason` as the origin gave it, else edge's for the status.
    @inlinable @inline(__always) public static func appendStatusLine(_ status: Int, reason: UnsafeRawBufferPointer? = nil, to b: IOBuffer) {
        if status == 200 && (reason == nil || reason!.isEmpty || (reason!.count == 2 && reason![0] == 79 && reason![1] == 75)) {
            b.append("HTTP/1.1 200 OK\r\n")   // the common one, without formatting
            return
        }
        b.append("HTTP/1.1 ")
        b.append(decimal: Int64(status))
        b.append(byte: 32)
        if let reason, !reason.isEmpty { b.append(reason) } else { b.append(HTTPStatus.reason(status)) }
        b.append("\r\n")
    }

    @inlinable @inline(__always) public static func appendContentLength(_ n: Int64, to b: IOBuffer) {
        b.append("Content-Length: ")
        b.append(decimal: n)
        b.append("\r\n")
    }

    @inlinable @inline(__always) public static func appendChunkedField(to b: IOBuffer) {
        b.append("Transfer-Encoding: chunked\r\n")
    }

    /// The Connection field (close, or keep-alive for an HTTP/1.0 peer that keeps
    /// the connection) and the blank line that ends the head.
    @inlinable @inline(__always) public static func appendEndOfHead(close: Bool, http10: Bool, to b: IOBuffer) {
        if close { b.append("Connection: close\r\n\r\n") }
        else if http10 { b.append("Connection: keep-alive\r\n\r\n") }
        else { b.append("\r\n") }
    }

    /// The interim answer to `Expect: 100-continue`.
    @inlinable @inline(__always) public static func appendContinue(to b: IOBuffer) {
        b.append("HTTP/1.1 100 Continue\r\n\r\n")
    }
}
