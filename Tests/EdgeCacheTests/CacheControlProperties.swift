// Properties of the Cache-Control family of parsers on any bytes (Cache-Control,
// CDN-Cache-Control as a Structured Field dictionary, Surrogate-Control with its
// strict syntax) and of the slice parsers (Content-Range, one asked Range), shared by the fuzz target (tools/fuzz/FuzzCache.swift) and the
// replay test (CacheFuzzReplayTests). run.sh compiles this file into one module with
// Sources/EdgeHTTP and Sources/EdgeCache, hence the conditional imports.
#if canImport(EdgeCache)
import EdgeHTTP
@testable import EdgeCache
#endif

func checkCacheControlProperties(_ p: UnsafeRawBufferPointer) {
    let text = String(decoding: p, as: UTF8.self)
    let cc = CacheControl.parse(text)
    // Freshness values are delta-seconds, capped.
    for v in [cc.maxAge, cc.sMaxAge, cc.staleWhileRevalidate, cc.staleIfError, cc.minFresh] {
        if let v { precondition(v >= 0 && v <= CacheControl.deltaCap, "delta-seconds out of range") }
    }
    precondition(cc.noCacheFields.allSatisfy { !$0.isEmpty && $0 == $0.lowercased() }, "no-cache field names")
    // The byte checks the hot path uses (no strings) agree with the string parser.
    if p.allSatisfy({ $0 < 0x80 }) {
        let flags = CacheControl.noStoreFlags(p, 0, p.count)
        precondition(flags.noStore == cc.noStore && flags.mustUnderstand == cc.mustUnderstand, "noStoreFlags disagrees with parse")
        precondition(CacheControl.has(p, 0, p.count, "private") == CacheControl.directives(text).contains { $0.0 == "private" },
                     "has(private) disagrees with parse")
    }
    // One field line split into two lines at a comma outside any quoted string
    // means the same (RFC 9110 §5.3: lines of a list field combine with commas).
    if let comma = p.firstIndex(of: 44), !p[..<comma].contains(34) {
        let a = String(decoding: UnsafeRawBufferPointer(rebasing: p[..<comma]), as: UTF8.self)
        let b = String(decoding: UnsafeRawBufferPointer(rebasing: p[(comma + 1)...]), as: UTF8.self)
        precondition(CacheControl.parse([a, b]) == cc, "split lines read differently")
    }
    // Surrogate-Control: a well-formed field reads as Cache-Control does; an
    // ill-formed one is ignored whole.
    if let strict = CacheControl.parseStrict([text]) {
        precondition(strict == cc, "strict parse differs")
        precondition(CacheControl.directives(text).allSatisfy { d in d.0.utf8.allSatisfy { isTokenChar($0) } }, "a well-formed field with a non-token name")
    }
    // CDN-Cache-Control: only a Structured Field dictionary is used, and only
    // its well-typed members.
    if let targeted = CacheControl.parseTargeted([text]) {
        guard let members = StructuredFields.dictionary([text]) else { preconditionFailure("targeted parse of a non-dictionary") }
        for v in [targeted.maxAge, targeted.sMaxAge, targeted.staleWhileRevalidate, targeted.staleIfError] {
            if let v { precondition(v >= 0 && v <= CacheControl.deltaCap) }
        }
        if targeted.noStore { precondition(members.contains { $0.key == "no-store" }, "no-store from nowhere") }
        if targeted.maxAge != nil { precondition(members.contains { $0.key == "max-age" }, "max-age from nowhere") }
        precondition(!targeted.invalidFreshness, "a dictionary has one value per key")
    } else {
        precondition(StructuredFields.dictionary([text]).map { $0.isEmpty } ?? true, "a dictionary refused")
    }
    // Slices: a Content-Range read back is in order and within its length, and
    // prints back as itself; one asked range agrees with the stored-body rule
    // (Preconditions.byteRange) on what it asks for.
    if let (a, b, l) = Slices.contentRange(text) {
        precondition(a >= 0 && a <= b && b < l, "content-range out of order")
        precondition(Slices.contentRange("bytes \(a)-\(b)/\(l)").map { $0 == (a, b, l) } ?? false, "content-range does not print back")
        let plan = Slices.plan(first: a, last: b, size: 65536)
        precondition(plan.reduce(0) { $0 + $1.to - $1.from } == Int(b - a + 1), "slice plan does not cover the range")
    }
    if let asked = Slices.asked(text) {
        let size: Int64 = 1000
        switch (asked, Preconditions.byteRange(p, size: size)) {
        case (.span(let a, let b), .range(let x, let y)): precondition(a == x && min(b ?? size - 1, size - 1) == y, "span disagrees")
        case (.span(let a, _), .unsatisfiable): precondition(a >= size, "span refused")
        case (.suffix(let n), .range(let x, let y)): precondition(x == max(0, size - n) && y == size - 1, "suffix disagrees")
        default: preconditionFailure("asked range the stored-body rule ignores: \(asked)")
        }
    }
}
