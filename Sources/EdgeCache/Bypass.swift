// A route's bypass rules: requests that go to the origin without a lookup
// and whose answers are not stored (a session cookie, an Authorization-like
// header, an admin path). Pure: the request's path and fields in, the reason out.

public struct BypassRules: Sendable, Equatable {
    public enum Reason: Sendable, Equatable { case cookie, header, path }
    public var cookies: [String] = []
    /// Field names, lowercased.
    public var headers: [String] = []
    /// Path patterns: `*` matches any run of characters (slashes too), everything else itself.
    public var paths: [String] = []
    public init() {}
    public init(cookies: [String], headers: [String], paths: [String]) {
        self.cookies = cookies; self.headers = headers.map { $0.lowercased() }; self.paths = paths
    }
    public var isEmpty: Bool { cookies.isEmpty && headers.isEmpty && paths.isEmpty }

    /// Why this request bypasses the cache, or nil. `path` is the normalized path (no query).
    public func check(path: Substring, request: HeaderList) -> Reason? {
        for p in paths where BypassRules.glob(Substring(p), path) { return .path }
        for h in headers where request.contains(h) { return .header }
        for c in cookies where CacheKey.cookie(c, in: request) != nil { return .cookie }
        return nil
    }

    /// `*`-only glob over bytes, iterative (no backtracking blow-up: the last star is retried only).
    public static func glob(_ pattern: Substring, _ text: Substring) -> Bool {
        let p = Array(pattern.utf8), t = Array(text.utf8)
        var i = 0, j = 0, star = -1, mark = 0
        while j < t.count {
            if i < p.count && p[i] != 42 && p[i] == t[j] { i += 1; j += 1 }
            else if i < p.count && p[i] == 42 { star = i; mark = j; i += 1 }
            else if star >= 0 { i = star + 1; mark += 1; j = mark }
            else { return false }
        }
        while i < p.count && p[i] == 42 { i += 1 }
        return i == p.count
    }
}
