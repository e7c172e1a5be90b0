// Media types (RFC 9110 §8.3.1): what compression and the cache-deception
// check compare. Pure.

/// The essence of a Content-Type value: type "/" subtype, lowercased, without
/// parameters or surrounding whitespace ("Text/HTML; charset=utf-8" → "text/html").
public func mediaTypeEssence(_ contentType: String) -> String {
    (contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first.map { $0.trimmedOWS() } ?? "").lowercased()
}
