// Open client connections per peer address, across every worker (SO_REUSEPORT
// spreads one address's connections over all of them, so a per-worker count
// would let N workers take N times the cap).
//
// Concurrency: one Mutex-protected table shared by the workers; it is touched
// twice per connection (accept and close), never per request. An entry goes
// when its count reaches zero, so the table holds only addresses with open
// connections.
import Synchronization

final class AddressLimits: Sendable {
    let counts = Mutex<[[UInt8]: Int32]>([:])

    /// Counts a new connection from `ip`; false (nothing counted) when it already has `limit` open.
    func admit(_ ip: [UInt8], limit: Int) -> Bool {
        counts.withLock { t in
            let n = t[ip, default: 0]
            guard Int(n) < limit else { return false }
            t[ip] = n + 1
            return true
        }
    }

    /// A connection `admit` counted has closed.
    func release(_ ip: [UInt8]) {
        counts.withLock { t in
            guard let n = t[ip] else { return }
            if n <= 1 { t[ip] = nil } else { t[ip] = n - 1 }
        }
    }

    func open(_ ip: [UInt8]) -> Int { counts.withLock { Int($0[ip] ?? 0) } }
}
