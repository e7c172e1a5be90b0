// Purge: what a purge selects, and the log that keeps a response which was
// already on its way from the origin when a purge ran from being stored as if
// it were newer than the purge. Pure data; MemoryStore applies it.
import Synchronization

/// The objects one purge selects.
public enum PurgeScope: Sendable, Equatable, CustomStringConvertible {
    /// Every variant of one primary key.
    case key(String)
    /// Every key that starts with this primary-key prefix (a path prefix).
    case prefix(String)
    /// Every object whose origin response carried this surrogate key / cache tag
    /// (of one tenant, or of all when nil).
    case tag(String, tenant: String?)
    /// Every object of a tenant.
    case tenant(String)

    public func matches(_ r: StoredResponse) -> Bool {
        switch self {
        case .key(let k): return CacheKey.base(r.key) == k
        case .prefix(let p): return r.keyHasPrefix(p)
        case .tag(let t, let tenant): return (tenant == nil || r.tenant == tenant) && r.hasTag(t)
        case .tenant(let t): return r.tenant == t
        }
    }

    public var description: String {
        switch self {
        case .key(let k): return "key \(k)"
        case .prefix(let p): return "prefix \(p)"
        case .tag(let t, let tenant): return "tag \(t)" + (tenant.map { " of \($0)" } ?? "")
        case .tenant(let t): return "tenant \(t)"
        }
    }
}

/// Recent purges, numbered. A fill records the number current when its request
/// left for the origin; storing it later checks the purges made since.
public final class PurgeLog: Sendable {
    struct State {
        var epoch: UInt64 = 0
        var entries: [(epoch: UInt64, scope: PurgeScope)] = []
    }
    let state = Mutex(State())
    /// Purges remembered; a fill older than all of them is refused outright.
    let keep = 4096

    public init() {}

    public var epoch: UInt64 { state.withLock { $0.epoch } }

    /// Logs a purge (a tier that removes objects outside `purge` logs it too).
    public func record(_ scope: PurgeScope) {
        state.withLock { s in
            s.epoch += 1
            s.entries.append((s.epoch, scope))
            if s.entries.count > keep { s.entries.removeFirst(s.entries.count - keep) }
        }
    }

    /// Did a purge made after `since` select `r`?
    public func purgedSince(_ since: UInt64, _ r: StoredResponse) -> Bool {
        state.withLock { s in
            guard s.epoch > since else { return false }
            guard let first = s.entries.first, first.epoch <= since + 1 else { return true }
            for e in s.entries.reversed() {
                if e.epoch <= since { break }
                if e.scope.matches(r) { return true }
            }
            return false
        }
    }
}

extension StoredResponse {
    /// The same response, stale from `now` on (a soft purge): it may still be
    /// served under stale-while-revalidate / stale-if-error, and is otherwise
    /// revalidated before use.
    public func markedStale(now: Int64) -> StoredResponse {
        var f = freshness
        f.lifetime = min(f.lifetime, f.age(now: now))
        return with(freshness: f)
    }
}

/// Tags from an origin response's tag fields: `Surrogate-Key` lists are
/// space-separated, `Cache-Tag` lists comma-separated; both are accepted in each.
public func cacheTags(_ response: HeaderList, fields: [String]) -> [String] {
    var tags: [String] = []
    for f in fields {
        for v in response.values(f) {
            for t in v.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }) where !t.isEmpty {
                let s = String(t)
                if !tags.contains(s) { tags.append(s) }
            }
        }
    }
    return tags
}
