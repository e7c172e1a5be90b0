// Sliced objects: a representation too large to store whole (over the store's
// largest object) is kept as fixed-size slices on routes that set a slice
// size, each slice its own entry under the base key, like nginx's slice
// module, and ranges are answered by combining slices (RFC 9111 §3.4).
//
// A slice is stored as the 206 it is: the representation's fields plus
// `Content-Range: bytes A-B/L`, where A is a multiple of the slice size and B
// the end of that slice (or L - 1 for the last one). Slices are combined only
// when they share one strong entity tag and one length, so slices of two
// versions of a resource never make one response; a slice stored from
// another version is simply not combined (and is replaced when fetched again).
//
// Slice keys are the base key, SOH, `slice:` and the index: they live in the
// base key's shard and a purge by URL, tag or prefix takes them with it (see
// CacheKey.base and MemoryStore.purge). Pure; no I/O, no clock.
#if canImport(EdgeHTTP)
import EdgeHTTP
#endif

public enum Slices {
    /// The entry of slice `index` of the object stored under `base`.
    public static func key(_ base: String, _ index: Int64) -> String { keyPrefix(base) + String(index) }

    /// What every slice key of `base` starts with.
    public static func keyPrefix(_ base: String) -> String { base + CacheKey.bodySeparator + "slice:" }

    /// A Content-Range of a 206, `bytes A-B/L`: nil unless A <= B < L
    /// (an unknown length `*` or any other unit is nil).
    public static func contentRange(_ value: String) -> (first: Int64, last: Int64, complete: Int64)? {
        var v = value
        return v.withUTF8 { u -> (Int64, Int64, Int64)? in
            let p = UnsafeRawBufferPointer(u)
            guard p.count > 6, equalsLowercase(p, 0, 6, "bytes ") else { return nil }
            var i = 6
            func number() -> Int64? { digits(p, &i) }
            guard let a = number(), i < p.count, p[i] == 45 else { return nil }
            i += 1
            guard let b = number(), i < p.count, p[i] == 47 else { return nil }
            i += 1
            guard let l = number(), i == p.count, a <= b, b < l else { return nil }
            return (a, b, l)
        }
    }

    /// The decimal number at `i` (advanced past it); nil when there is none or it overflows.
    static func digits(_ p: UnsafeRawBufferPointer, _ i: inout Int) -> Int64? {
        let start = i
        var n: Int64 = 0
        while i < p.count, p[i] >= 48, p[i] <= 57 {
            guard n <= (Int64.max - 9) / 10 else { return nil }
            n = n * 10 + Int64(p[i] - 48)
            i += 1
        }
        return i > start ? n : nil
    }

    /// A request's Range when it is one range: `span(first, last)` (`last` nil:
    /// to the end) or `suffix(n)`, the last n bytes; nil for several ranges,
    /// other units and anything malformed (those go to the origin as they are).
    public enum Asked: Equatable, Sendable { case span(Int64, Int64?), suffix(Int64) }

    public static func asked(_ value: String) -> Asked? {
        var v = value
        return v.withUTF8 { u -> Asked? in
            let p = UnsafeRawBufferPointer(u)
            guard p.count > 7, equalsLowercase(p, 0, 6, "bytes="), !p.contains(44) else { return nil }
            var i = 6
            func number() -> Int64? { digits(p, &i) }
            if p[i] == 45 {
                i += 1
                guard let n = number(), n > 0, i == p.count else { return nil }
                return .suffix(n)
            }
            guard let a = number(), i < p.count, p[i] == 45 else { return nil }
            i += 1
            if i == p.count { return .span(a, nil) }
            guard let b = number(), i == p.count, a <= b else { return nil }
            return .span(a, b)
        }
    }

    /// The range asked of the origin for a client's `first...last` (`last`
    /// nil: to the end): widened to whole slices.
    public static func aligned(first: Int64, last: Int64?, size: Int64) -> (first: Int64, last: Int64?) {
        let a = first / size * size
        guard let last else { return (a, nil) }
        let (end, over) = (last / size).multipliedReportingOverflow(by: size)
        return (a, over || end > Int64.max - size ? nil : end + size - 1)
    }

    /// The bytes slice `index` holds of a representation `complete` long.
    public static func bounds(_ index: Int64, size: Int64, complete: Int64) -> ClosedRange<Int64> {
        index * size...min((index + 1) * size, complete) - 1
    }

    /// The slices bytes `first...last` need, and which of each slice's bytes
    /// (offsets within the slice) go out, in order.
    public static func plan(first: Int64, last: Int64, size: Int64) -> [(index: Int64, from: Int, to: Int)] {
        guard first <= last, first >= 0 else { return [] }
        var out: [(Int64, Int, Int)] = []
        var i = first / size
        while i * size <= last {
            let start = i * size
            out.append((i, Int(max(first, start) - start), Int(min(last + 1, start + size) - start)))
            i += 1
        }
        return out
    }

    /// A strong entity tag: the one validator slices are combined under
    /// (RFC 9110 §13.1.5: a weak tag does not promise identical bytes).
    public static func strong(_ etag: String?) -> Bool {
        guard let e = etag else { return false }
        return e.utf8.first == 34 && e.utf8.count >= 2 && e.utf8.last == 34
    }
}

/// What a stored slice is: its place and the representation it belongs to.
public struct SliceInfo: Equatable, Sendable {
    public let first: Int64
    public let last: Int64
    public let complete: Int64
    public let etag: String
}

extension StoredResponse {
    /// The slice this entry is (a stored 206 with its Content-Range and a strong tag), else nil.
    public var slice: SliceInfo? {
        guard status == 206, hasContentRange, let etag, Slices.strong(etag) else { return nil }
        var range: String?
        forEachField { name, value in
            if range == nil, equalsLowercase(name, 0, name.count, "content-range") { range = String(decoding: value, as: UTF8.self) }
        }
        guard let r = range.flatMap(Slices.contentRange) else { return nil }
        return SliceInfo(first: r.first, last: r.last, complete: r.complete, etag: etag)
    }
}

/// A representation's body on its way through, cut into slices as it arrives
/// (from `offset`, the first byte the origin sends): each complete slice is
/// handed back to be stored. Bytes before the first slice boundary (a range
/// that does not start on one) are not stored. Owned by one exchange.
public final class SliceFill {
    public let key: String
    public let tenant: String
    /// The representation's fields (no Content-Range, no framing).
    public let headers: HeaderList
    public let freshness: Freshness
    public let tags: [String]
    public let startedAt: UInt64
    public let size: Int64
    public let complete: Int64
    /// The absolute offset of the next byte.
    public private(set) var offset: Int64
    var current: [UInt8] = []
    /// Slices made so far (stats, tests).
    public private(set) var made = 0

    public init(key: String, tenant: String, headers: HeaderList, freshness: Freshness, tags: [String], startedAt: UInt64,
                size: Int64, complete: Int64, offset: Int64) {
        self.key = key; self.tenant = tenant; self.headers = headers; self.freshness = freshness; self.tags = tags
        self.startedAt = startedAt; self.size = size; self.complete = complete; self.offset = offset
    }

    /// Takes `n` body bytes; returns the slices they completed (index, bytes, the entry's fields).
    public func append(_ p: UnsafeRawPointer, _ n: Int) -> [(index: Int64, body: [UInt8], headers: HeaderList)] {
        var out: [(Int64, [UInt8], HeaderList)] = []
        var at = 0
        while at < n {
            let sliceStart = offset / size * size
            let sliceEnd = min(sliceStart + size, complete)   // exclusive
            let take = Int(min(Int64(n - at), sliceEnd - offset))
            guard take > 0 else { break }
            // A slice is kept only when it was seen from its first byte.
            if offset == sliceStart || !current.isEmpty {
                if current.isEmpty { current.reserveCapacity(Int(sliceEnd - sliceStart)) }
                current.append(contentsOf: UnsafeRawBufferPointer(start: p + at, count: take))
            }
            offset += Int64(take)
            at += take
            if offset == sliceEnd {
                if Int64(current.count) == sliceEnd - sliceStart {
                    let index = sliceStart / size
                    var fields = headers.fields.map { ($0.name, $0.value) }
                    fields.append(("Content-Range", "bytes \(sliceStart)-\(sliceEnd - 1)/\(complete)"))
                    out.append((index, current, HeaderList(fields)))
                    made += 1
                }
                current = []
            }
        }
        return out
    }
}
