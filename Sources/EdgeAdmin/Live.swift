// What the dashboard and `edgectl top` show: per-tenant time series at one
// point a second for the last 15 minutes, and the URLs asked for most (and
// missed most) lately, from the live tail.
//
// Concurrency and ownership: the sampler's thread alone writes `state`; the
// admin API's connection threads read it under the same Mutex (a snapshot
// copied out, then encoded outside the lock). The counters it samples are the
// workers' single-writer blocks (Stats.swift), read with relaxed loads. The
// tail is followed only while someone asked for the live view within the
// last `leaseSeconds` (the dashboard polls every second), so an unwatched
// edged pays nothing for top URLs.
import Glibc
import Synchronization
import EdgeIO
import EdgeProxy

/// One second of a tenant's traffic.
struct LivePoint {
    var t: Int64
    var requests: Int32
    /// Requests that consulted the cache, and the hits (fresh or stale) among them.
    var lookups: Int32
    var hits: Int32
    var bytes: Int64
    /// 1xx … 5xx.
    var classes: (Int32, Int32, Int32, Int32, Int32)
    var originErrors: Int32
    /// Latency quantiles of the second's requests, in milliseconds (-1: none).
    var p50: Float
    var p99: Float
}

/// A tenant's last `LiveSampler.points` seconds, oldest first once full.
struct LiveSeries {
    var ring: [LivePoint] = []
    var head = 0

    mutating func append(_ p: LivePoint) {
        if ring.count < LiveSampler.points { ring.append(p); return }
        ring[head] = p
        head = (head + 1) % ring.count
    }

    func points(after t: Int64) -> [LivePoint] {
        let ordered = ring.count < LiveSampler.points ? ring : Array(ring[head...] + ring[..<head])
        return ordered.filter { $0.t > t }
    }
}

/// Request rates per URL, smoothed (an exponentially weighted per-second rate),
/// at most `LiveSampler.urlsPerTenant` kept: the lightest go first.
struct URLRates {
    var counts: [String: (requests: Double, misses: Double)] = [:]
    var pending: [String: (requests: Int, misses: Int)] = [:]

    mutating func note(_ url: String, miss: Bool, weight: Int = 1) {
        var p = pending[url] ?? (0, 0)
        p.requests += weight
        if miss { p.misses += weight }
        pending[url] = p
    }

    /// Once a second: the rates move a tenth of the way to this second's counts.
    mutating func tick() {
        for (k, v) in counts { counts[k] = (v.requests * 0.9, v.misses * 0.9) }
        for (k, p) in pending {
            let v = counts[k] ?? (0, 0)
            counts[k] = (v.requests + Double(p.requests) * 0.1, v.misses + Double(p.misses) * 0.1)
        }
        pending.removeAll(keepingCapacity: true)
        counts = counts.filter { $0.value.requests >= 0.01 }
        if counts.count > LiveSampler.urlsPerTenant {
            let keep = counts.sorted { $0.value.requests > $1.value.requests }.prefix(LiveSampler.urlsPerTenant / 2)
            counts = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        }
    }

    func top(_ n: Int, misses: Bool) -> [LiveBody.URLRate] {
        var rates: [LiveBody.URLRate] = []
        for (url, v) in counts {
            let r: Double = misses ? v.misses : v.requests
            if r >= 0.01 { rates.append(LiveBody.URLRate(url: url, rate: (r * 100).rounded() / 100)) }
        }
        rates.sort { a, b in a.rate != b.rate ? a.rate > b.rate : a.url < b.url }
        return Array(rates.prefix(n))
    }
}

final class LiveSampler: @unchecked Sendable {
    /// 15 minutes at one point a second (64 bytes each: about 58 KB per tenant).
    static let points = 900
    static let urlsPerTenant = 2000
    /// The tail is followed this long after the last live request.
    static let leaseSeconds: Int64 = 30
    /// Lines per worker the top-URL count reads at most per read (five reads a second: 250 lines a second per worker).
    static let tailSample = 50

    struct State {
        var series: [String: LiveSeries] = [:]
        var previous: [String: [Int]] = [:]
        var urls: [String: URLRates] = [:]
        var leaseUntil: Int64 = 0
        var cursors: [UInt64]?
        var tailDropped = 0
        var tailLines = 0
        var tailVisited = 0
    }

    let edge: EdgeServer
    let state = Mutex(State())
    let stopping = Atomic<Bool>(false)
    var thread: OSThread?

    init(edge: EdgeServer) { self.edge = edge }

    func start() { thread = OSThread.spawn(name: "edge-live") { [self] in run() } }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        thread?.join()
        thread = nil
        state.withLock { s in if s.cursors != nil { s.cursors = nil; edge.tap.detach() } }
    }

    /// Samples at each wall-clock second; between, follows the tail five times a second while leased.
    func run() {
        var last = wallSeconds()
        sample(at: last, first: true)
        while !stopping.load(ordering: .relaxed) {
            usleep(200_000)
            followTail()
            let now = wallSeconds()
            if now != last {
                last = now
                sample(at: now, first: false)
            }
        }
    }

    /// Someone looks at the live view: follow the tail for the next `leaseSeconds`.
    func lease() {
        let until = wallSeconds() + Self.leaseSeconds
        state.withLock { $0.leaseUntil = until }
    }

    func followTail() {
        let now = wallSeconds()
        let tap = edge.tap
        var cursors: [UInt64]? = state.withLock { s in
            if s.leaseUntil >= now {
                if s.cursors == nil { s.cursors = tap.attach() }
            } else if s.cursors != nil {
                s.cursors = nil
                s.urls = [:]
                tap.detach()
            }
            return s.cursors
        }
        guard var c = cursors else { return }
        // Top URLs are a sample at high rates: at most `tailSample` lines per
        // worker per read (five reads a second), each counted for the lines it stands for.
        var notes: [(String, String, Bool, Int)] = []
        var lines = 0
        let dropped = tap.visit(&c, atMost: Self.tailSample) { line, _, outcome, weight in
            lines += weight
            func text(_ key: [UInt8]) -> String { jsonStringRange(line, key).map { String(decoding: line[$0], as: UTF8.self) } ?? "" }
            notes.append((text(LogKey.tenant), text(LogKey.host) + text(LogKey.target), outcome == .miss || outcome == .pass, weight))
        }
        cursors = c
        state.withLock { s in
            guard s.cursors != nil else { return }
            s.cursors = cursors
            s.tailDropped += dropped
            s.tailLines += lines
            s.tailVisited += notes.count
            for (t, url, miss, w) in notes { s.urls[t, default: URLRates()].note(url, miss: miss, weight: w) }
        }
    }

    /// One point per tenant: the counters' growth since the last sample.
    func sample(at t: Int64, first: Bool) {
        let stats = edge.stats
        var totals: [String: [Int]] = [:]
        for name in stats.tenantNames { if let v = stats.tenantTotals(name) { totals[name] = v } }
        state.withLock { s in
            for (name, now) in totals {
                let before = s.previous[name]
                s.previous[name] = now
                guard !first, let before else { continue }
                let d = zip(now, before).map { $0 - $1 }
                s.series[name, default: LiveSeries()].append(LiveSampler.point(t, d))
            }
            for k in s.urls.keys { s.urls[k]!.tick() }
        }
    }

    static func point(_ t: Int64, _ d: [Int]) -> LivePoint {
        func c(_ i: Int) -> Int32 { Int32(clamping: d[i]) }
        let cache = (0..<CacheOutcome.allCases.count).map { d[TenantSlot.cache + $0] }
        let hits = cache[CacheOutcome.hit.rawValue] + cache[CacheOutcome.staleHit.rawValue]
        let lookups = cache.reduce(0, +) - cache[CacheOutcome.bypass.rawValue]
        let buckets = d[TenantSlot.latency..<(TenantSlot.latency + latencyBounds.count + 1)]
        let p50 = Stats.quantile(0.5, buckets: buckets).map { Float($0 / 1000) } ?? -1
        let p99 = Stats.quantile(0.99, buckets: buckets).map { Float($0 / 1000) } ?? -1
        let cls = TenantSlot.statusClass
        return LivePoint(t: t, requests: Int32(clamping: (0..<5).reduce(0) { $0 + d[cls + $1] }), lookups: Int32(clamping: lookups),
                         hits: Int32(clamping: hits), bytes: Int64(d[TenantSlot.bytesOut]),
                         classes: (c(cls), c(cls + 1), c(cls + 2), c(cls + 3), c(cls + 4)),
                         originErrors: c(TenantSlot.originErrors), p50: p50, p99: p99)
    }

    /// The live view: points after `since` (wall seconds) for each tenant (or one), its top URLs.
    func body(since: Int64, tenant: String?, top n: Int) throws -> LiveBody {
        // (the caller checked that `tenant` names one)
        lease()
        let (series, urls, dropped, lines, visited, following) = state.withLock { s in
            (s.series, s.urls, s.tailDropped, s.tailLines, s.tailVisited, s.cursors != nil)
        }
        let names = edge.stats.tenantNames.filter { tenant == nil || $0 == tenant }
        let tenants = names.map { name in
            LiveBody.Tenant(tenant: name,
                            points: (series[name]?.points(after: since) ?? []).map(LiveBody.row),
                            top: urls[name]?.top(n, misses: false) ?? [],
                            topMisses: urls[name]?.top(n, misses: true) ?? [])
        }
        return LiveBody(now: wallSeconds(), columns: LiveBody.columns, tenants: tenants,
                        tail: .init(following: following, lines: lines, read: visited, dropped: dropped),
                        totals: try edge.tenantStats().filter { tenant == nil || $0.tenant == tenant },
                        health: edge.tenants().filter { tenant == nil || $0.name == tenant }, cache: edge.cacheStatus())
    }
}

/// `GET /v1/live`.
struct LiveBody: Encodable {
    struct URLRate: Encodable { var url: String; var rate: Double }
    struct Tenant: Encodable {
        var tenant: String
        /// One row a second, in `columns` order.
        var points: [[Double]]
        var top: [URLRate]
        var topMisses: [URLRate]
    }
    /// Lines the tail gave, those read for top URLs (fewer: a sample), and those missed.
    struct Tail: Encodable { var following: Bool; var lines: Int; var read: Int; var dropped: Int }
    static let columns = ["t", "requests", "hit_ratio", "bytes", "s1xx", "s2xx", "s3xx", "s4xx", "s5xx", "p50_ms", "p99_ms", "origin_errors"]

    var now: Int64
    var columns: [String]
    var tenants: [Tenant]
    /// Whether the tail is followed (for top URLs), how many lines it gave and how many it missed.
    var tail: Tail
    /// Counters since start (edgectl stats), origin health (edgectl tenants), the cache tiers.
    var totals: [TenantStats]
    var health: [TenantInfo]
    var cache: CacheSummary

    static func row(_ p: LivePoint) -> [Double] {
        let ratio = p.lookups > 0 ? (Double(p.hits) / Double(p.lookups) * 1000).rounded() / 1000 : -1
        func ms(_ v: Float) -> Double { v < 0 ? -1 : (Double(v) * 1000).rounded() / 1000 }
        return [Double(p.t), Double(p.requests), ratio, Double(p.bytes), Double(p.classes.0), Double(p.classes.1), Double(p.classes.2),
                Double(p.classes.3), Double(p.classes.4), ms(p.p50), ms(p.p99), Double(p.originErrors)]
    }
}
