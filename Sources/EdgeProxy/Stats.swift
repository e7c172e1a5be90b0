// Counters for `edgectl stats` and `/metrics`.
//
// Concurrency and ownership: every counter block has exactly one writer, the
// worker thread it belongs to, which updates it with a relaxed load and store
// (no read-modify-write, no lock, no shared cache line with other workers).
// The admin thread reads all blocks with relaxed loads and sums them; a sum
// may be a few requests behind, never torn. Blocks are kept in `Stats` by
// tenant name and origin server, so they survive reloads ("since start").
import Synchronization
import EdgeIO
import EdgeHTTP

/// A fixed number of single-writer counters.
public final class CounterBlock: @unchecked Sendable {
    let slots: UnsafeMutablePointer<Atomic<Int>>
    public let count: Int

    init(count: Int) {
        self.count = count
        slots = .allocate(capacity: count)
        for i in 0..<count { (slots + i).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }

    /// Owner thread only.
    @inline(__always) func add(_ i: Int, _ v: Int) {
        slots[i].store(slots[i].load(ordering: .relaxed) &+ v, ordering: .relaxed)
    }

    @inline(__always) func set(_ i: Int, _ v: Int) { slots[i].store(v, ordering: .relaxed) }

    /// Any thread.
    public func load(_ i: Int) -> Int { slots[i].load(ordering: .relaxed) }
}

/// The latency histogram's bucket upper bounds, in microseconds: 25 µs times
/// powers of √2, up to about 74 s (plus an overflow bucket).
public let latencyBounds: [Int64] = (0..<44).map { k in Int64((25.0 * pow2half(k)).rounded()) }

func pow2half(_ k: Int) -> Double {
    var v = 1.0
    for _ in 0..<(k / 2) { v *= 2 }
    return k % 2 == 1 ? v * 1.4142135623730951 : v
}

/// What became of a request, for the cache-status counters.
public enum CacheOutcome: Int, CaseIterable, Sendable {
    /// Served from the cache fresh; served from the cache stale (swr, stale-if-error,
    /// max-stale); revalidated with the origin; a miss; a pass (uncacheable); not
    /// looked up at all (unsafe method, route without cache).
    case hit, staleHit, revalidated, miss, pass, bypass
    public var name: String { ["hit", "stale", "revalidated", "miss", "pass", "bypass"][rawValue] }
}

/// Slots of a tenant's block.
public enum TenantSlot {
    public static let statusClass = 0        // 5 slots: 1xx … 5xx
    public static let cache = 5              // CacheOutcome.allCases.count (6) slots
    public static let bytesOut = 11
    public static let originRequests = 12
    public static let originErrors = 13
    public static let latencySumMicros = 14
    public static let latency = 15           // latencyBounds.count + 1 slots
    /// Requests refused by the tenant's access list, and by its rate limits (not dry runs).
    public static let accessDenied = latency + latencyBounds.count + 1
    public static let rateLimited = accessDenied + 1
    /// Refused by a rule (deny) or an attack signature.
    public static let ruleDenied = rateLimited + 1
    /// Requests by protocol, in EdgeHTTP.protocolNames' order.
    public static let proto = ruleDenied + 1
    public static let count = proto + protocolNames.count
}

/// Slots of an origin server's block.
public enum OriginSlot {
    public static let requests = 0
    public static let errors = 1
    public static let count = 2
}

/// Slots of a rate limit's block ("tenant/limit").
/// A rule's (or a signature category's) counters: matches that took the
/// action, and matches of a rule in log mode.
public enum RuleSlot {
    public static let matched = 0
    public static let logged = 1
    public static let count = 2
}

/// The keys a limit refused most (space-saving: the 32 heaviest, counts an
/// upper bound), kept on the refusing path only.
public struct TopKeys: Sendable {
    public static let capacity = 32
    var counts: [String: Int] = [:]

    mutating func note(_ key: String) {
        if counts[key] != nil { counts[key]! += 1; return }
        if counts.count < TopKeys.capacity { counts[key] = 1; return }
        let (minKey, minCount) = counts.min { $0.value < $1.value }!
        counts[minKey] = nil
        counts[key] = minCount + 1
    }

    /// The heaviest first.
    public func top(_ n: Int) -> [(String, Int)] {
        counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(n).map { ($0.key, $0.value) }
    }
}

public enum LimitSlot {
    /// Requests over the limit: refused, or let through in a dry run.
    public static let limited = 0
    public static let dryRun = 1
    public static let count = 2
}

/// Slots of a worker's own block.
public enum WorkerSlot {
    public static let openConnections = 0
    public static let tlsHandshakes = 1
    public static let tlsFailures = 2
    /// Connections closed at accept: their address already had max_connections_per_ip open.
    public static let refusedPerIP = 3
    /// Completed client handshakes that resumed a session (ticket or id).
    public static let tlsResumed = 4
    /// WebSocket tunnels opened (origin answered 101), and open now.
    public static let tunnelsOpened = 5
    public static let tunnelsOpen = 6
    /// HTTP/2: connections that chose h2, streams (requests) served, and connections
    /// ended by a connection error edge detected (GOAWAY with an error code: the floods
    /// and resets of H2Limits among them).
    public static let h2Connections = 7
    public static let h2Streams = 8
    public static let h2ConnectionErrors = 9
    /// Idle keep-alive connections parked as a small record (Worker.park).
    public static let parkedConnections = 10
    /// Connections closed before any TLS or HTTP: the server's access list refused the
    /// address, it opened connections too fast, or its PROXY header was broken or never came.
    public static let refusedAccess = 11
    public static let refusedConnectionRate = 12
    public static let proxyHeaderInvalid = 13
    /// Answers that broke off after their head and asked the origin for the
    /// rest, and those whose rest was spliced on (Resume.swift).
    public static let resumesAsked = 14
    public static let resumesSpliced = 15
    public static let count = 16
}

/// Every counter block, by owner. Lookups take the lock; they happen when a
/// worker adopts a config, never per request.
public final class Stats: Sendable {
    struct Tables {
        var tenants: [String: [CounterBlock]] = [:]
        var origins: [String: [CounterBlock]] = [:]
        var limits: [String: [CounterBlock]] = [:]
        var rules: [String: [CounterBlock]] = [:]
        var topLimited: [String: TopKeys] = [:]
    }
    let tables = Mutex(Tables())
    let workers: [CounterBlock]
    public let startedAt: Int64

    init(workers n: Int) {
        workers = (0..<n).map { _ in CounterBlock(count: WorkerSlot.count) }
        startedAt = wallClock().seconds
    }

    func tenant(_ name: String, worker: Int) -> CounterBlock {
        tables.withLock { t in
            if t.tenants[name] == nil { t.tenants[name] = (0..<workers.count).map { _ in CounterBlock(count: TenantSlot.count) } }
            return t.tenants[name]![worker]
        }
    }

    func origin(_ label: String, worker: Int) -> CounterBlock {
        tables.withLock { t in
            if t.origins[label] == nil { t.origins[label] = (0..<workers.count).map { _ in CounterBlock(count: OriginSlot.count) } }
            return t.origins[label]![worker]
        }
    }

    func limit(_ name: String, worker: Int) -> CounterBlock {
        tables.withLock { t in
            if t.limits[name] == nil { t.limits[name] = (0..<workers.count).map { _ in CounterBlock(count: LimitSlot.count) } }
            return t.limits[name]![worker]
        }
    }

    func rule(_ name: String, worker: Int) -> CounterBlock {
        tables.withLock { t in
            if t.rules[name] == nil { t.rules[name] = (0..<workers.count).map { _ in CounterBlock(count: RuleSlot.count) } }
            return t.rules[name]![worker]
        }
    }

    /// Rules (and signature categories, "tenant/signature:NAME") that matched anything, and their summed counters.
    public func ruleTotals() -> [(String, [Int])] {
        let all = tables.withLock { $0.rules }
        return all.keys.sorted().map { ($0, Stats.sum(all[$0]!, RuleSlot.count)) }
    }

    /// A request `limit` ("tenant/limit") refused or counted, by its key's readable form.
    func noteLimited(_ limit: String, key: String) {
        tables.withLock { t in t.topLimited[limit, default: TopKeys()].note(key) }
    }

    /// Each limit's heaviest keys.
    public func topLimited(_ n: Int) -> [(String, [(String, Int)])] {
        let all = tables.withLock { $0.topLimited }
        return all.keys.sorted().map { ($0, all[$0]!.top(n)) }
    }

    /// Rate limits that have counted anything ("tenant/limit") and their summed counters.
    public func limitTotals() -> [(String, [Int])] {
        let all = tables.withLock { $0.limits }
        return all.keys.sorted().map { ($0, Stats.sum(all[$0]!, LimitSlot.count)) }
    }

    /// One tenant's counters summed over workers (nil when it never had any).
    public func tenantTotals(_ name: String) -> [Int]? {
        guard let blocks = tables.withLock({ $0.tenants[name] }) else { return nil }
        return Stats.sum(blocks, TenantSlot.count)
    }

    public var tenantNames: [String] { tables.withLock { Array($0.tenants.keys) }.sorted() }

    /// Origin servers ("tenant/group/host:port") and their summed counters.
    public func originTotals() -> [(String, [Int])] {
        let all = tables.withLock { $0.origins }
        return all.keys.sorted().map { ($0, Stats.sum(all[$0]!, OriginSlot.count)) }
    }

    public func workerTotals() -> [Int] { Stats.sum(workers, WorkerSlot.count) }

    static func sum(_ blocks: [CounterBlock], _ n: Int) -> [Int] {
        var out = [Int](repeating: 0, count: n)
        for b in blocks { for i in 0..<n { out[i] += b.load(i) } }
        return out
    }

    /// The q-quantile (0…1) of a latency histogram in microseconds,
    /// interpolated inside the bucket it falls in; nil without samples.
    public static func quantile(_ q: Double, buckets: ArraySlice<Int>) -> Double? {
        let total = buckets.reduce(0, +)
        guard total > 0 else { return nil }
        let rank = q * Double(total)
        var seen = 0
        for (j, n) in buckets.enumerated() where n > 0 {
            if Double(seen + n) >= rank {
                let lo = j == 0 ? 0 : Double(latencyBounds[j - 1])
                let hi = j < latencyBounds.count ? Double(latencyBounds[j]) : lo * 2
                return lo + (hi - lo) * max(0, min(1, (rank - Double(seen)) / Double(n)))
            }
            seen += n
        }
        return Double(latencyBounds.last!)
    }
}

extension Worker {
    /// Binds this worker's counter blocks to the tenants and servers of the current config.
    func bindCounters() {
        tenantCounters = config.tenants.map { stats.tenant($0.name, worker: index) }
        noTenantCounters = stats.tenant("-", worker: index)
        originCounters = config.servers.map { stats.origin($0.statsName, worker: index) }
        workerCounters = stats.workers[index]
        limitBlocks = [:]
        ruleBlocks = [:]
        signatureBlocks = [:]
    }

    /// Counts a finished exchange (called once per exchange, with the access log line).
    @inline(__always) func recordStats(_ c: ClientConnection, micros: Int64, bytesOut: Int64) {
        let e = c.ex
        let b = e.tenant.map { tenantCounters[$0.index] } ?? noTenantCounters
        let cls = min(max(e.status / 100, 1), 5) - 1
        b.add(TenantSlot.statusClass + cls, 1)
        b.add(TenantSlot.proto + (c.h2Parent != nil ? 2 : e.head.minorVersion == 0 ? 0 : 1), 1)
        b.add(TenantSlot.cache + cacheOutcome(c).rawValue, 1)
        b.add(TenantSlot.bytesOut, Int(bytesOut))
        if e.originAttempts > 0 { b.add(TenantSlot.originRequests, e.originAttempts) }
        if e.originErrors > 0 { b.add(TenantSlot.originErrors, e.originErrors) }
        let us = max(0, micros)
        b.add(TenantSlot.latencySumMicros, Int(us))
        // Binary search over the bucket bounds.
        var lo = 0, hi = latencyBounds.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if latencyBounds[mid] < us { lo = mid + 1 } else { hi = mid }
        }
        b.add(TenantSlot.latency + lo, 1)
    }

    @inline(__always) func cacheOutcome(_ c: ClientConnection) -> CacheOutcome {
        let e = c.ex
        let s = e.cache.status
        switch s.kind {
        case .none, .bypass: return .bypass
        case .hit: return s.detail == .staleIfError || s.detail == .staleWhileRevalidate ? .staleHit : .hit
        case .stale: return .revalidated
        case .miss, .uriMiss, .varyMiss: return s.detail == .pass || e.cache.uncacheable ? .pass : .miss
        }
    }

    @inline(__always) func countOriginAttempt(_ c: ClientConnection, _ server: OriginServer) {
        c.ex.originAttempts += 1
        originCounters[server.id].add(OriginSlot.requests, 1)
    }

    @inline(__always) func countOriginError(_ c: ClientConnection?, _ server: OriginServer) {
        c?.ex.originErrors += 1
        originCounters[server.id].add(OriginSlot.errors, 1)
    }
}
