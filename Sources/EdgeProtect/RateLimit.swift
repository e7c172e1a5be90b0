// Rate limits as GCRA (the generic cell rate algorithm: a token bucket kept as
// one number, the theoretical arrival time), in one fixed-size table shared by
// every worker, so a client spread over workers is limited as one.
//
// Semantics are nginx's `limit_req ... burst=B nodelay`: at most 1 + B requests
// at once, then one per interval (period / count); a request over that is
// refused at once, never queued. GCRA keeps, per key, only the time at which
// its bucket is full again (`tat`); a key whose tat has passed is the same as
// an absent one, so stale entries are simply overwritten.
//
// Concurrency: the table is split into 256 stripes, each a Mutex over its own
// slots; a request takes one stripe's lock once per limit that applies to it.
// Memory is fixed at creation: 16 bytes a slot (key hash and tat), slots in
// sets of 4 (a key lives in one set); a full set evicts the entry nearest to
// expiry (it forgets the least), counted in `evictions`. Keys are 64-bit
// hashes: two keys that collide share a bucket (at 1 M keys, odds ~1 in 10^7).
// Every function takes `now` (microseconds, monotonic); none reads a clock.
import Synchronization

public struct RateSpec: Sendable, Equatable {
    /// `count` requests per `periodMicros`, with `burst` more at once.
    public var count: Int
    public var periodMicros: Int64
    public var burst: Int
    public init(count: Int, periodMicros: Int64, burst: Int) {
        self.count = count; self.periodMicros = periodMicros; self.burst = burst
    }
    /// The emission interval: one request earns back this many microseconds.
    @inline(__always) public var interval: Int64 { max(1, periodMicros / Int64(max(count, 1))) }
    @inline(__always) var tolerance: Int64 { interval * Int64(burst) }
    /// Requests a full bucket lets through at once (the quota the RateLimit fields announce).
    public var quota: Int { burst + 1 }
    /// The window that quota refills over, in whole seconds (at least 1).
    public var windowSeconds: Int64 { max(1, (interval * Int64(quota) + 999_999) / 1_000_000) }

    /// "10/s", "600/m", "5/h", "100/d", nginx's "10r/s", or "2/10s" (per 10 seconds).
    public init?(rate: String, burst: Int) {
        let parts = rate.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, burst >= 0 else { return nil }
        var n = Substring(parts[0])
        if n.hasSuffix("r") { n.removeLast() }
        guard let c = Int(n), c > 0 else { return nil }
        var unit = Substring(parts[1])
        var times: Int64 = 1
        let digits = unit.prefix { $0 >= "0" && $0 <= "9" }
        if !digits.isEmpty { guard let t = Int64(digits), t > 0, t <= 1_000_000 else { return nil }; times = t; unit = unit.dropFirst(digits.count) }
        let per: Int64
        switch unit {
        case "s": per = 1_000_000
        case "m": per = 60_000_000
        case "h": per = 3_600_000_000
        case "d": per = 86_400_000_000
        default: return nil
        }
        // A bucket's whole depth, interval × (burst + 1), stays far from overflowing
        // the microsecond arithmetic (gcra adds it to `now`): at most 2^60 µs.
        let (period, o1) = per.multipliedReportingOverflow(by: times)
        guard !o1 else { return nil }
        self.init(count: c, periodMicros: period, burst: burst)
        let (depth, o2) = interval.multipliedReportingOverflow(by: Int64(burst) + 1)
        guard !o2, depth <= 1 << 60 else { return nil }
    }
}

public enum RateDecision: Equatable, Sendable {
    /// Let through; `remaining` more would be now, and the bucket is full again in `resetMicros`.
    case allowed(remaining: Int, resetMicros: Int64)
    /// Over the limit; the next request would pass in `retryAfterMicros`.
    case limited(retryAfterMicros: Int64)
}

/// The GCRA step for one key: the decision and the key's new tat (unchanged when limited).
@inline(__always) public func gcra(_ spec: RateSpec, storedTAT: Int64, now: Int64) -> (RateDecision, Int64) {
    let t = spec.interval
    let tat = max(storedTAT, now)
    if tat - now > spec.tolerance { return (.limited(retryAfterMicros: tat - now - spec.tolerance), storedTAT) }
    let next = tat + t
    let remaining = Int((spec.tolerance + t - (next - now)) / t)
    return (.allowed(remaining: max(remaining, 0), resetMicros: next - now), next)
}

public final class RateTable: Sendable {
    static let stripeCount = 256
    static let ways = 4

    struct Entry {
        var key: UInt64
        var tat: Int64
    }

    struct Slots {
        var entries: [Entry] = []
        var evictions = 0
    }

    /// A stripe's slots are made on its first use: a table no limit uses costs nothing.
    final class Stripe: Sendable {
        let slots = Mutex(Slots())
    }

    let stripes: [Stripe]
    /// Sets per stripe, a power of two (a mask picks one).
    let setMask: UInt64
    /// Keys the table holds at most (whole sets of 4, a power of two of them per stripe, 256 stripes).
    public let capacity: Int

    /// A table for about `keys` keys (16 bytes each, allocated a stripe at a time as keys arrive).
    public init(keys: Int) {
        let perStripe = max(RateTable.ways, (keys + RateTable.stripeCount - 1) / RateTable.stripeCount)
        var sets = 1
        while sets * RateTable.ways < perStripe { sets <<= 1 }
        setMask = UInt64(sets - 1)
        capacity = sets * RateTable.ways * RateTable.stripeCount
        stripes = (0..<RateTable.stripeCount).map { _ in Stripe() }
    }

    /// Counts one request against `spec` under the key `hash` (never 0: see RateKey).
    public func take(_ hash: UInt64, _ spec: RateSpec, now: Int64) -> RateDecision {
        let stripe = stripes[Int(hash & 0xFF)]
        let base = Int((hash >> 8) & setMask) * RateTable.ways
        let size = (Int(setMask) + 1) * RateTable.ways
        return stripe.slots.withLock { s in
            if s.entries.isEmpty { s.entries = [Entry](repeating: Entry(key: 0, tat: 0), count: size) }
            let (d, evicted) = s.entries.withUnsafeMutableBufferPointer { e -> (RateDecision, Bool) in
                var free = -1, oldest = base
                for i in base..<base + RateTable.ways {
                    if e[i].key == hash {
                        let (d, tat) = gcra(spec, storedTAT: e[i].tat, now: now)
                        e[i].tat = tat
                        return (d, false)
                    }
                    if free < 0 && (e[i].key == 0 || e[i].tat <= now) { free = i }
                    if e[i].tat < e[oldest].tat { oldest = i }
                }
                let i = free >= 0 ? free : oldest
                let (d, tat) = gcra(spec, storedTAT: 0, now: now)
                e[i] = Entry(key: hash, tat: tat)
                return (d, free < 0)
            }
            if evicted { s.evictions += 1 }
            return d
        }
    }

    /// What `take` would answer now, without counting anything (explain).
    public func peek(_ hash: UInt64, _ spec: RateSpec, now: Int64) -> RateDecision {
        let stripe = stripes[Int(hash & 0xFF)]
        let base = Int((hash >> 8) & setMask) * RateTable.ways
        let stored: Int64 = stripe.slots.withLock { s in
            guard !s.entries.isEmpty else { return 0 }
            for i in base..<base + RateTable.ways where s.entries[i].key == hash { return s.entries[i].tat }
            return 0
        }
        return gcra(spec, storedTAT: stored, now: now).0
    }

    /// Live entries evicted to make room (the table is too small for the keys).
    public var evictions: Int { stripes.reduce(0) { $0 + $1.slots.withLock { $0.evictions } } }

    /// Keys whose bucket is not full at `now` (for stats; walks the table).
    public func activeKeys(now: Int64) -> Int {
        stripes.reduce(0) { n, st in n + st.slots.withLock { s in s.entries.reduce(0) { $0 + ($1.key != 0 && $1.tat > now ? 1 : 0) } } }
    }

}

/// A limiter key: FNV-1a over a limit's id and its key's parts, never 0 (0
/// marks a free slot). Built in place per request, nothing allocated.
public struct RateKey {
    @usableFromInline var hash: UInt64
    @inlinable public init(limit: UInt64) { hash = (0xcbf2_9ce4_8422_2325 ^ limit) &* 0x100_0000_01b3 }
    @inlinable public mutating func add(_ p: UnsafeRawBufferPointer) {
        for b in p { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        hash = (hash ^ 0xff) &* 0x100_0000_01b3   // part boundary
    }
    /// A 128-bit part (an address), two multiply-xor steps instead of sixteen.
    @inlinable public mutating func add(_ v: UInt128) {
        hash = (hash ^ UInt64(truncatingIfNeeded: v >> 64)) &* 0x100_0000_01b3
        hash = (hash ^ (hash >> 29)) &* 0x9E37_79B9_7F4A_7C15
        hash = (hash ^ UInt64(truncatingIfNeeded: v)) &* 0x100_0000_01b3
        hash = (hash ^ (hash >> 29)) &* 0x9E37_79B9_7F4A_7C15
    }
    @inlinable public var value: UInt64 { hash == 0 ? 1 : hash }
}
