// Conditional requests and byte ranges for a GET or HEAD of a stored or local
// representation (RFC 9110 §13.2.2, §14): the one copy of these rules, used by
// cache hits and by the directory origin. Pure: values in, an outcome out.

/// One `bytes=` range resolved against a representation's size.
public enum ByteRange: Equatable, Sendable { case ignore, unsatisfiable, range(Int64, Int64) }

public enum Preconditions {
    public enum Outcome: Equatable, Sendable {
        /// The whole representation (200).
        case full
        /// 304: a validator matched.
        case notModified
        /// 206 for bytes first...last (inclusive).
        case partial(Int64, Int64)
        /// 416: the range starts past the end.
        case unsatisfiable
    }

    /// Decides a response in the RFC's order: If-None-Match (weak comparison,
    /// `*` matches) and, only when it is absent, If-Modified-Since against
    /// `lastModified` (or, for a stored response without one, its `date`:
    /// RFC 9111 §4.3.2); then, when nothing matched and `rangeAllowed`, Range,
    /// honoured only if If-Range is absent or matches (a strong entity tag equal
    /// to `etag`, or a date equal to `lastModified`). An invalid date is ignored;
    /// several ranges are ignored (the whole representation answers them).
    /// Dates in any HTTP-date format (`now` places an RFC 850 two-digit year).
    public static func evaluate(ifNoneMatch: String?, ifModifiedSince: String?, range: String?, ifRange: String?,
                                etag etagOf: @autoclosure () -> String?, lastModified: Int64?, date: Int64? = nil, size: Int64, rangeAllowed: Bool,
                                now: Int64) -> Outcome {
        // Most requests carry none of these: nothing to compare (and the
        // stored entity tag is not made into a string: `etag` is asked for late).
        if ifNoneMatch == nil && ifModifiedSince == nil && range == nil { return .full }
        let etag = etagOf()
        if let inm = ifNoneMatch {
            if let etag, weakMatch(inm, etag) { return .notModified }
        } else if let ims = ifModifiedSince.flatMap({ HTTPDate.parse($0, now: now) }), let lm = lastModified ?? date, lm <= ims {
            return .notModified
        }
        guard rangeAllowed, let range else { return .full }
        if let ir = ifRange {
            // Strong comparison only: a weak tag never matches (RFC 9110 §13.1.5).
            let honoured = ir.hasPrefix("\"") ? (etag == ir) : (lastModified != nil && HTTPDate.parse(ir, now: now) == lastModified)
            if !honoured { return .full }
        }
        var v = range
        switch v.withUTF8({ byteRange(UnsafeRawBufferPointer($0), size: size) }) {
        case .ignore: return .full
        case .unsatisfiable: return .unsatisfiable
        case .range(let a, let b): return .partial(a, b)
        }
    }

    /// If-None-Match's list against one entity tag, weakly: `W/` ignored on both sides; `*` matches.
    public static func weakMatch(_ list: String, _ etag: String) -> Bool {
        func strip(_ s: Substring) -> Substring { s.hasPrefix("W/") ? s.dropFirst(2) : s }
        let want = strip(Substring(etag))
        for item in list.split(separator: ",") {
            let t = item.trimmedOWS()
            if t == "*" || strip(Substring(t)) == want { return true }
        }
        return false
    }

    /// One `bytes=` range (RFC 9110 §14.1.2) against `size` bytes.
    public static func byteRange(_ v: UnsafeRawBufferPointer, size: Int64) -> ByteRange {
        guard v.count > 6, equalsLowercase(v, 0, 6, "bytes=") else { return .ignore }
        if v.contains(44) { return .ignore }
        var i = 6
        func num() -> Int64? {
            var n: Int64 = 0
            let s = i
            while i < v.count, v[i] >= 48, v[i] <= 57 {
                if n > Int64.max / 10 - 10 { return nil }
                n = n * 10 + Int64(v[i] - 48); i += 1
            }
            return i > s ? n : nil
        }
        let first = num()
        guard i < v.count, v[i] == 45 else { return .ignore }
        i += 1
        let last = num()
        guard i == v.count else { return .ignore }
        switch (first, last) {
        case (let a?, let b?):
            guard a <= b else { return .ignore }
            if a >= size { return .unsatisfiable }
            return .range(a, min(b, size - 1))
        case (let a?, nil):
            if a >= size { return .unsatisfiable }
            return .range(a, size - 1)
        case (nil, let n?):
            if n == 0 || size == 0 { return .unsatisfiable }
            return .range(max(0, size - n), size - 1)
        default:
            return .ignore
        }
    }
}
