// Media types (RFC 9110 §8.3.1): what compression and the cache-deception
// check compare. Pure.

/// The essence of a Content-Type value: type "/" subtype, lowercased, without
/// parameters or surrounding whitespace ("Text/HTML; charset=utf-8" → "text/html").
public func mediaTypeEssence(_ contentType: String) -> String {
    var s = contentType
    return s.withUTF8 { mediaTypeEssence(UnsafeRawBufferPointer($0)) }
}

/// The same from a field value's bytes (one pass, one allocation at most).
public func mediaTypeEssence(_ p: UnsafeRawBufferPointer) -> String {
    let (start, end) = mediaTypeEssenceBounds(p)
    return String(unsafeUninitializedCapacity: end - start) { out in
        for i in 0..<(end - start) { out[i] = asciiLower(p[start + i]) }
        return end - start
    }
}

/// Where the essence is in a Content-Type value (before any parameter, without
/// surrounding whitespace); not yet lowercased.
@inline(__always) public func mediaTypeEssenceBounds(_ p: UnsafeRawBufferPointer) -> (start: Int, end: Int) {
    var start = 0
    while start < p.count && (p[start] == 32 || p[start] == 9) { start += 1 }
    var end = start
    while end < p.count && p[end] != 59 { end += 1 }
    while end > start && (p[end - 1] == 32 || p[end - 1] == 9) { end -= 1 }
    return (start, end)
}
