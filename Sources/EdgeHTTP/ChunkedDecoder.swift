// Incremental chunked transfer-coding decoder (RFC 9112 §7.1).
//
// A value-type state machine: feed it bytes, it reports what they were
// (payload slices of the input, or nothing yet) and how many it consumed. It
// never copies payload; trailers are checked for framing and dropped.

public struct ChunkedDecoder: Sendable, Equatable {
    enum State: Equatable, Sendable {
        case size
        case ext
        case sizeLF
        case data
        case dataCR
        case dataLF
        case trailerLineStart
        case trailerLine
        case trailerLF(blank: Bool)
        case done
    }

    public enum Event: Equatable, Sendable {
        /// Payload bytes at this range of the input.
        case data(Range<Int>)
        /// All input was consumed without payload; feed more.
        case needMore
        /// The last chunk and trailers are complete.
        case end
        case error(String)
    }

    var state: State = .size
    var size: Int64 = 0        // chunk size being read, then bytes left in the chunk
    var digits = 0
    var lineLength = 0
    /// Longest chunk extension or trailer line accepted.
    public var maxLineLength = 4096

    public init() {}

    public var isDone: Bool { state == .done }

    /// Decodes from `p[start...]`. Returns the event and the index just past the
    /// bytes it accounts for; call again from there until `.needMore` or `.end`.
    public mutating func decode(_ p: UnsafeRawBufferPointer, from start: Int) -> (event: Event, next: Int) {
        var i = start
        let n = p.count
        while i < n {
            let c = p[i]
            switch state {
            case .size:
                let h = hexValue(c)
                if h >= 0 {
                    if digits >= 15 { return (.error("chunk size too large"), i) }
                    size = size << 4 | Int64(h)
                    digits += 1
                    i += 1
                } else if digits == 0 {
                    return (.error("missing chunk size"), i)
                } else if c == 13 {
                    state = .sizeLF; i += 1
                } else if c == 59 || c == 0x20 || c == 0x09 {
                    state = .ext; lineLength = 0; i += 1
                } else {
                    return (.error("invalid chunk size"), i)
                }
            case .ext:
                if c == 13 { state = .sizeLF; i += 1; continue }
                if c == 10 || c == 0 { return (.error("bad chunk extension"), i) }
                lineLength += 1
                if lineLength > maxLineLength { return (.error("chunk extension too long"), i) }
                i += 1
            case .sizeLF:
                guard c == 10 else { return (.error("bare CR in chunk header"), i) }
                i += 1
                digits = 0
                state = size == 0 ? .trailerLineStart : .data
            case .data:
                let take = Int(min(size, Int64(n - i)))
                size -= Int64(take)
                if size == 0 { state = .dataCR }
                return (.data(i..<(i + take)), i + take)
            case .dataCR:
                guard c == 13 else { return (.error("missing CRLF after chunk data"), i) }
                state = .dataLF; i += 1
            case .dataLF:
                guard c == 10 else { return (.error("missing CRLF after chunk data"), i) }
                state = .size; size = 0; digits = 0; i += 1
            case .trailerLineStart:
                if c == 13 { state = .trailerLF(blank: true); i += 1; continue }
                if c == 10 || c == 0 || c == 0x20 || c == 0x09 { return (.error("bad trailer"), i) }
                state = .trailerLine; lineLength = 1; i += 1
            case .trailerLine:
                if c == 13 { state = .trailerLF(blank: false); i += 1; continue }
                if c == 10 || c == 0 { return (.error("bad trailer"), i) }
                lineLength += 1
                if lineLength > maxLineLength { return (.error("trailer line too long"), i) }
                i += 1
            case .trailerLF(let blank):
                guard c == 10 else { return (.error("bare CR in trailer"), i) }
                i += 1
                if blank { state = .done; return (.end, i) }
                state = .trailerLineStart
            case .done:
                return (.end, i)
            }
        }
        if state == .done { return (.end, i) }
        return (.needMore, i)
    }
}
