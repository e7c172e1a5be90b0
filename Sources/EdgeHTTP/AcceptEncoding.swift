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

public enum AcceptEncoding {
    /// The q-value (0…1000) the field gives each coding (`*` covers the rest;
    /// identity is acceptable unless excluded, §12.5.3). A missing field would
    /// accept anything, but clients that send none (scripts, old bots) rarely
    /// decode anything: like nginx, edge treats it as identity only, which
    /// §12.5.3 allows. An empty field accepts identity only.
    public static func weights(_ value: String?) -> [ContentCoding: Int] {
        guard let value else { return [.identity: 1000, .gzip: 0, .br: 0] }
        var explicit: [ContentCoding: Int] = [:]
        var star: Int?
        for item in value.split(separator: ",") {
            let parts = item.split(separator: ";")
            guard let first = parts.first else { continue }
            let name = first.trimmedOWS().lowercased()
            if name.isEmpty { continue }
            var q = 1000
            for p in parts.dropFirst() {
                let kv = p.trimmedOWS()
                if kv.count >= 2, kv.lowercased().hasPrefix("q=") { q = parseQ(kv.dropFirst(2)) ?? 0 }
            }
            switch name {
            case "*": star = max(star ?? 0, q)
            case "identity": explicit[.identity] = max(explicit[.identity] ?? 0, q)
            case "gzip", "x-gzip": explicit[.gzip] = max(explicit[.gzip] ?? 0, q)
            case "br": explicit[.br] = max(explicit[.br] ?? 0, q)
            default: continue
            }
        }
        var out: [ContentCoding: Int] = [:]
        for c in ContentCoding.allCases {
            if let q = explicit[c] { out[c] = q }
            else if let s = star { out[c] = s }
            else { out[c] = c == .identity ? 1 : 0 }   // identity: acceptable, least preferred
        }
        return out
    }

    /// The coding to send, among `offered` (in the server's order of preference):
    /// the highest q-value wins, ties go to the server's order. nil when the
    /// client accepts none of them (the caller may still send identity, §12.5.3).
    public static func choose(_ value: String?, offered: [ContentCoding]) -> ContentCoding? {
        let w = weights(value)
        var best: ContentCoding?
        var bestQ = 0
        for c in offered {
            let q = w[c] ?? 0
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
    static func parseQ(_ s: Substring) -> Int? {
        let t = s.trimmedOWS()
        guard let first = t.first else { return nil }
        if first == "1" {
            guard t.dropFirst().allSatisfy({ $0 == "." || $0 == "0" }) else { return nil }
            return 1000
        }
        guard first == "0" else { return nil }
        let rest = t.dropFirst()
        if rest.isEmpty { return 0 }
        guard rest.first == ".", rest.count <= 4 else { return nil }
        var v = 0, digits = 0
        for ch in rest.dropFirst() {
            guard let d = ch.wholeNumberValue else { return nil }
            v = v * 10 + d
            digits += 1
        }
        while digits < 3 { v *= 10; digits += 1 }
        return v
    }
}
