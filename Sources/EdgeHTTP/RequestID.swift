// X-Request-ID: which values edge passes on, and the form of the ones it makes.
// Pure: the random bits come from the caller.

public enum RequestID {
    /// Longest client value kept; a longer one is replaced by a new id.
    public static let maxLength = 128

    /// A client's X-Request-ID worth keeping: 1 to 128 visible ASCII characters
    /// with no space, quote, backslash, comma or semicolon (so it stays one token
    /// in logs, in the origin's head and in any list it is copied into).
    public static func isValid(_ v: UnsafeRawBufferPointer) -> Bool {
        guard !v.isEmpty, v.count <= maxLength else { return false }
        for ch in v {
            if ch <= 0x20 || ch >= 0x7F || ch == 34 || ch == 92 || ch == 44 || ch == 59 { return false }
        }
        return true
    }

    /// Appends 32 lowercase hex digits for 128 bits (the form of nginx's $request_id).
    @inlinable public static func append(_ hi: UInt64, _ lo: UInt64, to b: IOBuffer) {
        b.append(hex16: hi)
        b.append(hex16: lo)
    }
}

/// SplitMix64 (a counter through `mix64`): a fast, well-mixed 64-bit
/// sequence; each worker seeds its own from the kernel's random source. Not for secrets.
public struct SplitMix64: Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    @inline(__always) public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        return mix64(state)
    }
}
