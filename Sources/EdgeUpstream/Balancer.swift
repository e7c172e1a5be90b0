// Origin selection and passive health. Pure policy: time is passed in.
//
// Concurrency: `ServerHealth` is shared by every worker thread; its state is
// two atomics, so a failure seen by one worker takes the server out for all.
// `Balancer` is a value owned by one worker (per origin group); it is never
// shared, so round-robin order and least-connection counts are per worker.
import Synchronization
#if canImport(EdgeHTTP)   // (the config fuzzer compiles these modules as one: tools/fuzz/run.sh)
import EdgeHTTP
#endif

/// Health of one origin server. Passive: `maxFails` consecutive failures
/// take it out of rotation for `backoffMillis`. Active (when its group has a
/// health check): the prober's verdict, which keeps it out until probes pass.
public final class ServerHealth: Sendable {
    public let maxFails: Int
    public let backoffMillis: Int64
    let failures = Atomic<Int>(0)
    let downUntil = Atomic<Int64>(0)
    let probeDown = Atomic<Bool>(false)
    /// When (monotonic ms) a probe last brought it back (0: never).
    let probedUpAt = Atomic<Int64>(0)
    let change = Mutex<HealthChange?>(nil)

    public init(maxFails: Int, backoffMillis: Int64) {
        self.maxFails = max(1, maxFails)
        self.backoffMillis = backoffMillis
    }

    /// Whether the server may take requests at monotonic time `now` (ms).
    @inline(__always) public func isAvailable(now: Int64) -> Bool {
        !probeDown.load(ordering: .relaxed) && downUntil.load(ordering: .relaxed) <= now
    }

    /// When the server comes back, if it is out (a failed probe: not before
    /// a probe passes, so it is the last resort).
    public func availableAt() -> Int64 {
        probeDown.load(ordering: .relaxed) ? Int64.max / 2 : downUntil.load(ordering: .relaxed)
    }

    /// The prober's verdict changed: `up`, because `why`, at wall time `at`
    /// (s) and monotonic time `now` (ms).
    public func setProbed(up: Bool, why: String, at: Int64, now: Int64) {
        if up { probedUpAt.store(now, ordering: .relaxed) }
        probeDown.store(!up, ordering: .relaxed)
        change.withLock { $0 = HealthChange(up: up, at: at, why: why) }
    }

    /// When it last came back into rotation: a probe passing, or a passive
    /// back-off running out (0: it has been in since the start).
    @inline(__always) public func recoveredAt() -> Int64 {
        max(probedUpAt.load(ordering: .relaxed), downUntil.load(ordering: .relaxed))
    }

    /// Whether the last probe verdict was down.
    public var probedDown: Bool { probeDown.load(ordering: .relaxed) }

    /// The prober's last change of verdict (nil: none since start or reload).
    public var lastChange: HealthChange? { change.withLock { $0 } }

    /// Counts a failure (connect error, reset, timeout); returns true if this took the server out.
    @discardableResult
    public func recordFailure(now: Int64) -> Bool {
        let n = failures.add(1, ordering: .relaxed).newValue
        if n >= maxFails {
            failures.store(0, ordering: .relaxed)
            downUntil.store(now + backoffMillis, ordering: .relaxed)
            return true
        }
        return false
    }

    /// A success clears the failure count.
    @inline(__always) public func recordSuccess() {
        if failures.load(ordering: .relaxed) != 0 { failures.store(0, ordering: .relaxed) }
    }
}

public enum BalancePolicy: String, Sendable, CaseIterable {
    /// Smooth weighted round-robin (nginx's): with weights 5,1,1 the order is
    /// a a b a c a a, never five in a row.
    case roundRobin = "round-robin"
    /// Fewest active requests (counting this one) per unit of weight (this worker's counts).
    case leastConnections = "least-connections"
    /// Power of two choices: two servers drawn by weight, the less loaded
    /// one wins. Close to least-connections without herding after a change.
    case randomTwo = "random-two"
    /// Consistent hashing of a request key (see HashRing), with bounded load.
    case hash
}

/// Where a `hash` group takes its key from (the pipeline extracts it).
public enum HashKey: Sendable, Equatable {
    /// The request target: path and query as sent (HAProxy's `balance uri`).
    case uri
    /// The cache key's host and target, scheme left out (a shield group:
    /// http and https requests for one URL share a home).
    case cacheKey
    /// A request field's value (lowercase name); absent: round-robin.
    case header(String)
    /// A cookie's value; absent: round-robin.
    case cookie(String)
    /// The client's address (after the PROXY protocol, when trusted).
    case client
}

/// A consistent-hash ring: every server owns `pointsPerWeight` x weight
/// points, placed by hashing its name (not its position in the list), so a
/// server leaving or returning moves only the keys between its points and
/// their predecessors: about 1/N of them. A ring rather than Maglev because
/// bounded load needs "the next server for this key" when the first is
/// full, which on a ring is the next point, for every key the same order.
/// Immutable; shared by every worker.
public struct HashRing: Sendable {
    public let points: [UInt64]
    public let owners: [UInt8]
    /// By a hash's top `indexBits` bits: the first point at or above that
    /// bucket's start, so a lookup scans a point or two, not a binary search.
    let index: [UInt32]
    static let indexBits: UInt64 = 12

    public init(names: [String], weights: [Int], pointsPerWeight: Int = 160) {
        var pairs: [(UInt64, UInt8)] = []
        for (i, name) in names.enumerated() {
            let seed = fnv1a(name.utf8)
            for k in 0..<(pointsPerWeight * max(1, weights[i])) {
                pairs.append((mix64(seed ^ UInt64(k) &* 0x9e37_79b9_7f4a_7c15), UInt8(i)))
            }
        }
        pairs.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        points = pairs.map { $0.0 }
        owners = pairs.map { $0.1 }
        var index = [UInt32](repeating: 0, count: 1 << Int(HashRing.indexBits))
        var j = 0
        for b in index.indices {
            let start = UInt64(b) << (64 - HashRing.indexBits)
            while j < pairs.count && pairs[j].0 < start { j += 1 }
            index[b] = UInt32(j)
        }
        self.index = index
    }

    /// The first point at or after `h` (wrapping to 0).
    @inline(__always) public func first(atOrAfter h: UInt64) -> Int {
        points.withUnsafeBufferPointer { p in
            var i = Int(index[Int(h >> (64 - HashRing.indexBits))])
            while i < p.count && p[i] < h { i += 1 }
            return i == p.count ? 0 : i
        }
    }
}

/// What a group balances with; built once per config, shared read-only.
public struct BalanceSetup: Sendable {
    public let policy: BalancePolicy
    public let weights: [Int]
    public let ring: HashRing?
    public let key: HashKey
    /// Bounded load (Mirrokni et al., HAProxy's `hash-balance-factor`): no
    /// server takes a request that would put it above factor x its weighted
    /// share of the active requests. 0: off (pure consistent hashing).
    public let loadFactor: Double
    /// A server back in rotation ramps from almost nothing to its full
    /// weight over this long (HAProxy's `slowstart`; not for `hash`, whose
    /// keys stay put). 0: off.
    public let slowStartMillis: Int64

    public init(policy: BalancePolicy, weights: [Int], names: [String] = [], key: HashKey = .uri, loadFactor: Double = 1.25,
                slowStartMillis: Int64 = 0) {
        self.policy = policy
        self.slowStartMillis = slowStartMillis
        self.weights = weights.map { max(1, $0) }
        self.key = key
        self.loadFactor = loadFactor
        ring = policy == .hash ? HashRing(names: names.isEmpty ? weights.indices.map { "#\($0)" } : names, weights: self.weights) : nil
    }
}

/// Picks a server of a group for one worker.
public struct Balancer: Sendable {
    public let setup: BalanceSetup
    public var policy: BalancePolicy { setup.policy }
    var next = 0
    var current: [Int]
    var rng: UInt64

    public init(_ setup: BalanceSetup, seed: UInt64 = 0x2545_f491_4f6c_dd1d) {
        self.setup = setup
        current = Array(repeating: 0, count: setup.weights.count)
        rng = seed | 1
    }

    /// Equal weights (the tests of the unweighted policies).
    public init(policy: BalancePolicy, servers: Int = 64) {
        self.init(BalanceSetup(policy: policy, weights: Array(repeating: 1, count: servers)))
    }

    @inline(__always) static func bit(_ i: Int) -> UInt64 { 1 << UInt64(i & 63) }

    /// Server `i`'s weight now, in 64ths (so a slow start can ramp a weight of 1).
    @inline(__always) func weight(_ i: Int, _ health: [ServerHealth], _ now: Int64) -> Int {
        let full = setup.weights[i] << 6
        let ramp = setup.slowStartMillis
        guard ramp > 0 else { return full }
        let since = now - health[i].recoveredAt()
        guard since < ramp else { return full }
        return max(1, Int(Int64(full) * max(0, since) / ramp))
    }

    /// Picks among `health.count` servers, skipping those in `tried` (a bit per
    /// server) and those out of rotation. When every untried server is out, the
    /// one that comes back soonest is tried anyway: a back-off is a guess, and
    /// trying beats a certain 502. Returns nil when every server was tried.
    /// `key`: the request's hash for a `hash` group (nil: no key, round-robin).
    public mutating func pick(health: [ServerHealth], active: [Int], tried: UInt64, now: Int64, key: UInt64? = nil) -> Int? {
        let n = health.count
        var best = -1
        switch setup.policy {
        case .hash where key != nil && setup.ring != nil:
            best = pickHashed(key!, health: health, active: active, tried: tried, now: now)
        case .roundRobin, .hash:
            best = pickSmooth(health: health, tried: tried, now: now)
        case .leastConnections:
            var wBest = 0
            for k in 0..<n {
                let i = (next + k) % n
                if tried & Balancer.bit(i) != 0 || !health[i].isAvailable(now: now) { continue }
                // (active + 1) / weight, the load after this request (HAProxy's
                // rule: an idle server still weighs by its weight), without division
                let wi = weight(i, health, now)
                if best < 0 || (active[i] + 1) * wBest < (active[best] + 1) * wi { best = i; wBest = wi }
            }
            if best >= 0 { next = (best + 1) % n }
        case .randomTwo:
            let a = pickByWeight(health: health, tried: tried, now: now, except: -1)
            if a >= 0 {
                let b = pickByWeight(health: health, tried: tried, now: now, except: a)
                best = b < 0 || (active[a] + 1) * weight(b, health, now) <= (active[b] + 1) * weight(a, health, now) ? a : b
            }
        }
        if best >= 0 { return best }
        var soonest = Int64.max
        for i in 0..<n where tried & Balancer.bit(i) == 0 {
            let at = health[i].availableAt()
            if at < soonest { soonest = at; best = i }
        }
        return best >= 0 ? best : nil
    }

    /// Smooth weighted round-robin: each eligible server gains its weight,
    /// the highest is picked and pays back the total.
    mutating func pickSmooth(health: [ServerHealth], tried: UInt64, now: Int64) -> Int {
        var best = -1, total = 0
        for i in 0..<health.count where tried & Balancer.bit(i) == 0 && health[i].isAvailable(now: now) {
            let w = weight(i, health, now)
            current[i] += w
            total += w
            if best < 0 || current[i] > current[best] { best = i }
        }
        if best >= 0 { current[best] -= total }
        return best
    }

    /// A server drawn with probability proportional to its weight among the
    /// eligible ones (-1: none).
    mutating func pickByWeight(health: [ServerHealth], tried: UInt64, now: Int64, except: Int) -> Int {
        var total = 0
        for i in 0..<health.count where i != except && tried & Balancer.bit(i) == 0 && health[i].isAvailable(now: now) { total += weight(i, health, now) }
        guard total > 0 else { return -1 }
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17          // xorshift64
        var r = Int(rng % UInt64(total))
        for i in 0..<health.count where i != except && tried & Balancer.bit(i) == 0 && health[i].isAvailable(now: now) {
            r -= weight(i, health, now)
            if r < 0 { return i }
        }
        return -1
    }

    /// The first eligible server clockwise from the key's point whose load
    /// stays within the bound; when all are over it, the first eligible.
    func pickHashed(_ key: UInt64, health: [ServerHealth], active: [Int], tried: UInt64, now: Int64) -> Int {
        guard let ring = setup.ring else { return -1 }
        let n = health.count
        var j = ring.first(atOrAfter: mix64(key))
        // Without a load bound, the first point's server is the answer when it is eligible (the usual case).
        let first = Int(ring.owners[j])
        if setup.loadFactor <= 0 && tried & Balancer.bit(first) == 0 && health[first].isAvailable(now: now) { return first }
        let w = setup.weights
        // The bound: a server's active requests, this one counted, at most
        // ceil(factor x (all active + 1) x its weight share) (HAProxy's rule;
        // the ceiling lets an idle server always take one).
        var total = 0.0               // factor x (sum + 1) / total weight (0: no bound)
        if setup.loadFactor > 0 {
            var sum = 0, totalWeight = 0
            for i in 0..<n where tried & Balancer.bit(i) == 0 && health[i].isAvailable(now: now) { sum += active[i]; totalWeight += w[i] }
            total = totalWeight == 0 ? 0 : setup.loadFactor * Double(sum + 1) / Double(totalWeight)
        }
        var seen: UInt64 = 0, seenCount = 0
        var fallback = -1
        return ring.owners.withUnsafeBufferPointer { owners in
            for _ in 0..<owners.count {
                let s = Int(owners[j])
                j += 1
                if j == owners.count { j = 0 }
                if seen & Balancer.bit(s) != 0 { continue }
                seen |= Balancer.bit(s)
                seenCount += 1
                if tried & Balancer.bit(s) == 0 && health[s].isAvailable(now: now) {
                    if total == 0 || Double(active[s] + 1) <= (total * Double(w[s])).rounded(.up) { return s }
                    if fallback < 0 { fallback = s }
                }
                if seenCount == n { break }
            }
            return fallback
        }
    }
}

/// A change of a server's probed state, for operators.
public struct HealthChange: Sendable, Equatable {
    public var up: Bool
    /// Wall-clock seconds.
    public var at: Int64
    public var why: String
}

/// Rise and fall: `rise` passing probes in a row bring a server in, `fall`
/// failing ones take it out (HAProxy's counts). A value the prober owns.
public struct ProbeCounter: Sendable, Equatable {
    public let rise: Int
    public let fall: Int
    public private(set) var up = true
    var streak = 0

    public init(rise: Int, fall: Int) { self.rise = max(1, rise); self.fall = max(1, fall) }

    /// Counts one probe; returns the new state when this one changed it.
    public mutating func record(passed: Bool) -> Bool? {
        if passed == up { streak = 0; return nil }
        streak += 1
        guard streak >= (up ? fall : rise) else { return nil }
        up = passed
        streak = 0
        return up
    }
}

/// Statuses a probe accepts: "200", "2xx", "200-399".
public struct StatusSet: Sendable, Equatable {
    public let ranges: [ClosedRange<Int>]

    public init?(_ specs: [String]) {
        var r: [ClosedRange<Int>] = []
        for s in specs {
            if s.count == 3, s.hasSuffix("xx"), let d = Int(s.prefix(1)), (1...5).contains(d) {
                r.append((d * 100)...(d * 100 + 99))
            } else if let dash = s.firstIndex(of: "-"), let a = Int(s[..<dash]), let b = Int(s[s.index(after: dash)...]),
                      (100...599).contains(a), (a...599).contains(b) {
                r.append(a...b)
            } else if let v = Int(s), (100...599).contains(v) {
                r.append(v...v)
            } else {
                return nil
            }
        }
        guard !r.isEmpty else { return nil }
        ranges = r
    }

    public func contains(_ status: Int) -> Bool { ranges.contains { $0.contains(status) } }
}
