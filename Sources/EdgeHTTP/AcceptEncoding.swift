// Content codings and Accept-Encoding negotiation (RFC 9110 §8.4, §12.5.3). Pure.

/// The content codings edge produces or understands.
public enum ContentCoding: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case identity, gzip, br

    public var token: String {
        switch self {
        case .identity: return "identity"
        case .gzip: return "gzip"
        case .br: return "br"
        }
    }
    public var description: String { token }

    /// The coding a Content-Encoding value names: nil for an unknown coding or
    /// a list of several (edge passes those through untouched).
    public static func parse(contentEncoding value: String?) -> ContentCoding? {
        guard let value else { return .identity }
        let parts = value.split(separator: ",").map { $0.trimmedOWS().lowercased() }.filter { !$0.isEmpty }
        if parts.isEmpty { return .identity }
        guard parts.count == 1 else { return nil }
        switch parts[0] {
        case "identity": return .identity
        case "gzip", "x-gzip": return .gzip
        case "br": return .br
        default: return nil
        }
    }
}

/// q-values (0…1000) for the codings edge knows. A value type: no allocation per request.
public struct CodingWeights: Equatable, Sendable {
    public var identity = 0, gzip = 0, br = 0
    public subscript(_ c: ContentCoding) -> Int {
        get { c == .identity ? identity : c == .gzip ? gzip : br }
        set { switch c { case .identity: identity = newValue; case .gzip: gzip = newValue; case .br: br = newValue } }
    }
}

public enum AcceptEncoding {
    /// The q-value each coding gets (`*` covers the rest; identity is
    /// acceptable unless excluded, §12.5.3). A missing field would accept
    /// anything, but clients that send none (scripts, old bots) rarely decode
    /// anything: like nginx, edge treats it as identity only, which §12.5.3
    /// allows. An empty field accepts identity only. Parses the bytes in place.
    public static func weights(_ value: String?) -> CodingWeights {
        guard var value else { return CodingWeights(identity: 1000, gzip: 0, br: 0) }
        return value.withUTF8 { weights(bytes: $0) }
    }

    public static func weights(bytes v: UnsafeBufferPointer<UInt8>) -> CodingWeights {
        var explicit = CodingWeights(identity: -1, gzip: -1, br: -1)
        var star = -1
        var i = 0
        let n = v.count
        @inline(__always) func isOWS(_ b: UInt8) -> Bool { b == 32 || b == 9 }
        while i < n {
            // One list element: token [OWS ; OWS param]* up to a comma.
            while i < n && (isOWS(v[i]) || v[i] == 44) { i += 1 }
            let start = i
            while i < n && v[i] != 44 && v[i] != 59 && !isOWS(v[i]) { i += 1 }
            let name = UnsafeBufferPointer(rebasing: v[start..<i])
            var q = 1000
            while i < n && v[i] != 44 {
                if v[i] == 59 {
                    i += 1
                    while i < n && isOWS(v[i]) { i += 1 }
                    if i + 1 < n && (v[i] | 0x20) == 113 && v[i + 1] == 61 {   // "q="
                        i += 2
                        let qs = i
                        while i < n && v[i] != 44 && v[i] != 59 && !isOWS(v[i]) { i += 1 }
                        q = parseQ(UnsafeBufferPointer(rebasing: v[qs..<i])) ?? 0
                        continue
                    }
                }
                i += 1
            }
            if name.isEmpty { continue }
            if name.count == 1 && name[0] == 42 { star = max(star, q); continue }
            let coding: ContentCoding?
            if equalsToken(name, "gzip") || equalsToken(name, "x-gzip") { coding = .gzip }
            else if equalsToken(name, "br") { coding = .br }
            else if equalsToken(name, "identity") { coding = .identity }
            else { coding = nil }
            if let coding { explicit[coding] = max(explicit[coding], q) }
        }
        var out = CodingWeights()
        for c in ContentCoding.allCases {
            if explicit[c] >= 0 { out[c] = explicit[c] }
            else if star >= 0 { out[c] = star }
            else { out[c] = c == .identity ? 1 : 0 }   // identity: acceptable, least preferred
        }
        return out
    }

    @inline(__always) static func equalsToken(_ b: UnsafeBufferPointer<UInt8>, _ s: StaticString) -> Bool {
        guard b.count == s.utf8CodeUnitCount else { return false }
        let p = s.utf8Start
        for j in 0..<b.count where (b[j] | 0x20) != p[j] { return false }
        return true
    }

    /// The coding to send, among `offered` (in the server's order of preference):
    /// the highest q-value wins, ties go to the server's order. nil when the
    /// client accepts none of them (the caller may still send identity, §12.5.3).
    public static func choose(_ value: String?, offered: [ContentCoding]) -> ContentCoding? {
        let w = weights(value)
        var best: ContentCoding?
        var bestQ = 0
        for c in offered {
            let q = w[c]
            if q > bestQ { best = c; bestQ = q }
        }
        return best
    }

    /// The request's Accept-Encoding reduced to the value that decides what edge
    /// sends (br, gzip or identity), so the many spellings browsers use share
    /// one cache variant each instead of one per spelling.
    public static func bucket(_ value: String?) -> ContentCoding {
        choose(value, offered: [.br, .gzip, .identity]) ?? .identity
    }

    /// "q=0.5" → 500; nil when malformed (RFC 9110 §12.4.2: at most three decimals).
    static func parseQ(_ t: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let first = t.first else { return nil }
        if first == 49 {   // "1", "1.", "1.0", "1.00", "1.000"
            guard t.count <= 5, t.count == 1 || t[1] == 46, t.dropFirst(2).allSatisfy({ $0 == 48 }) else { return nil }
            return 1000
        }
        guard first == 48 else { return nil }
        if t.count == 1 { return 0 }
        guard t[1] == 46, t.count <= 5 else { return nil }
        var v = 0, digits = 0
        for d in t.dropFirst(2) {
            guard d >= 48 && d <= 57 else { return nil }
            v = v * 10 + Int(d - 48)
            digits += 1
        }
        while digits < 3 { v *= 10; digits += 1 }
        return v
    }
}
