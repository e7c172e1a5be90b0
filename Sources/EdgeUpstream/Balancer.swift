// Origin selection and passive health. Pure policy: time is passed in.
//
// Concurrency: `ServerHealth` is shared by every worker thread; its state is
// two atomics, so a failure seen by one worker takes the server out for all.
// `Balancer` is a value owned by one worker (per origin group); it is never
// shared, so round-robin order and least-connection counts are per worker.
import Synchronization

/// Passive health of one origin server: `maxFails` consecutive failures take
/// it out of rotation for `backoffMillis`.
public final class ServerHealth: Sendable {
    public let maxFails: Int
    public let backoffMillis: Int64
    let failures = Atomic<Int>(0)
    let downUntil = Atomic<Int64>(0)

    public init(maxFails: Int, backoffMillis: Int64) {
        self.maxFails = max(1, maxFails)
        self.backoffMillis = backoffMillis
    }

    /// Whether the server may take requests at monotonic time `now` (ms).
    @inline(__always) public func isAvailable(now: Int64) -> Bool {
        downUntil.load(ordering: .relaxed) <= now
    }

    /// When the server comes back, if it is out.
    public func availableAt() -> Int64 { downUntil.load(ordering: .relaxed) }

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

public enum BalancePolicy: String, Sendable {
    case roundRobin = "round-robin"
    case leastConnections = "least-connections"
}

/// Picks a server of a group for one worker.
public struct Balancer: Sendable {
    public let policy: BalancePolicy
    var next = 0

    public init(policy: BalancePolicy) { self.policy = policy }

    /// Picks among `health.count` servers, skipping those in `tried` (a bit per
    /// server) and those out of rotation. When every untried server is out, the
    /// one that comes back soonest is tried anyway: a back-off is a guess, and
    /// trying beats a certain 502. Returns nil when every server was tried.
    public mutating func pick(health: [ServerHealth], active: [Int], tried: UInt64, now: Int64) -> Int? {
        let n = health.count
        var best = -1
        switch policy {
        case .roundRobin:
            for k in 0..<n {
                let i = (next + k) % n
                if tried & (1 << UInt64(i & 63)) != 0 { continue }
                if health[i].isAvailable(now: now) { best = i; break }
            }
            if best >= 0 { next = (best + 1) % n }
        case .leastConnections:
            var bestActive = Int.max
            for k in 0..<n {
                let i = (next + k) % n
                if tried & (1 << UInt64(i & 63)) != 0 { continue }
                if health[i].isAvailable(now: now) && active[i] < bestActive { best = i; bestActive = active[i] }
            }
            if best >= 0 { next = (best + 1) % n }
        }
        if best >= 0 { return best }
        var soonest = Int64.max
        for i in 0..<n where tried & (1 << UInt64(i & 63)) == 0 {
            let at = health[i].availableAt()
            if at < soonest { soonest = at; best = i }
        }
        return best >= 0 ? best : nil
    }
}
