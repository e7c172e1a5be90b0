import Testing
@testable import EdgeUpstream
import EdgeHTTP

@Suite(.timeLimit(.minutes(3))) struct BalancerTests {
    func servers(_ n: Int) -> [ServerHealth] { (0..<n).map { _ in ServerHealth(maxFails: 2, backoffMillis: 1000) } }

    @Test func roundRobinCycles() {
        var b = Balancer(policy: .roundRobin)
        let s = servers(3)
        let picks = (0..<6).compactMap { _ in b.pick(health: s, active: [0, 0, 0], tried: 0, now: 0) }
        #expect(picks == [0, 1, 2, 0, 1, 2])
    }

    @Test func failuresTakeServerOutThenBackIn() {
        var b = Balancer(policy: .roundRobin)
        let s = servers(2)
        #expect(!s[0].recordFailure(now: 100))
        #expect(s[0].recordFailure(now: 100))
        #expect(!s[0].isAvailable(now: 500))
        let picks = (0..<4).compactMap { _ in b.pick(health: s, active: [0, 0], tried: 0, now: 500) }
        #expect(picks == [1, 1, 1, 1])
        #expect(s[0].isAvailable(now: 1100))
        let later = Set((0..<4).compactMap { _ in b.pick(health: s, active: [0, 0], tried: 0, now: 1100) })
        #expect(later == [0, 1])
    }

    @Test func successResetsFailureCount() {
        let s = ServerHealth(maxFails: 2, backoffMillis: 1000)
        s.recordFailure(now: 0)
        s.recordSuccess()
        #expect(!s.recordFailure(now: 0))
        #expect(s.isAvailable(now: 0))
    }

    @Test func triedServersAreSkippedAndAllDownStillTries() {
        var b = Balancer(policy: .roundRobin)
        let s = servers(2)
        #expect(b.pick(health: s, active: [0, 0], tried: 0b01, now: 0) == 1)
        #expect(b.pick(health: s, active: [0, 0], tried: 0b11, now: 0) == nil)
        s[0].recordFailure(now: 0); s[0].recordFailure(now: 0)       // out until 1000
        s[1].recordFailure(now: 500); s[1].recordFailure(now: 500)   // out until 1500
        #expect(b.pick(health: s, active: [0, 0], tried: 0, now: 600) == 0)
    }

    @Test func leastConnectionsPrefersIdle() {
        var b = Balancer(policy: .leastConnections)
        let s = servers(3)
        #expect(b.pick(health: s, active: [5, 1, 3], tried: 0, now: 0) == 1)
        #expect(b.pick(health: s, active: [0, 1, 3], tried: 0, now: 0) == 0)
        #expect(b.pick(health: s, active: [2, 2, 2], tried: 0b010, now: 0) != 1)
    }
}

/// Weights, power of two choices and consistent hashing with bounded load.
@Suite struct SteeringTests {
    func servers(_ n: Int) -> [ServerHealth] { (0..<n).map { _ in ServerHealth(maxFails: 1, backoffMillis: 1_000_000) } }
    func counts(_ picks: [Int], _ n: Int) -> [Int] { var c = Array(repeating: 0, count: n); for p in picks { c[p] += 1 }; return c }

    @Test func smoothWeightedRoundRobinSpreadsTheHeavyServer() {
        var b = Balancer(BalanceSetup(policy: .roundRobin, weights: [5, 1, 1]))
        let s = servers(3)
        let picks = (0..<7).compactMap { _ in b.pick(health: s, active: [0, 0, 0], tried: 0, now: 0) }
        #expect(picks == [0, 0, 1, 0, 2, 0, 0], "nginx's smooth order: never five in a row")
        let many = (0..<7000).compactMap { _ in b.pick(health: s, active: [0, 0, 0], tried: 0, now: 0) }
        #expect(counts(many, 3) == [5000, 1000, 1000])
    }

    @Test func weightsSkipAServerThatIsOut() {
        var b = Balancer(BalanceSetup(policy: .roundRobin, weights: [3, 1, 1]))
        let s = servers(3)
        s[0].recordFailure(now: 0)
        let many = (0..<1000).compactMap { _ in b.pick(health: s, active: [0, 0, 0], tried: 0, now: 1) }
        #expect(counts(many, 3) == [0, 500, 500])
    }

    @Test func leastConnectionsCountsPerUnitOfWeight() {
        var b = Balancer(BalanceSetup(policy: .leastConnections, weights: [4, 1]))
        let s = servers(2)
        #expect(b.pick(health: s, active: [3, 1], tried: 0, now: 0) == 0, "(3+1)/4 < (1+1)/1")
        #expect(b.pick(health: s, active: [8, 1], tried: 0, now: 0) == 1, "(8+1)/4 > (1+1)/1")
        #expect(b.pick(health: s, active: [0, 0], tried: 0, now: 0) == 0, "idle: the heavier")
    }

    @Test func randomTwoFollowsWeightsAndPrefersTheLessLoaded() {
        var b = Balancer(BalanceSetup(policy: .randomTwo, weights: [1, 1, 1, 1]), seed: 42)
        let s = servers(4)
        // Equal load: a fair spread.
        let c = counts((0..<40_000).compactMap { _ in b.pick(health: s, active: [0, 0, 0, 0], tried: 0, now: 0) }, 4)
        for x in c { #expect(abs(x - 10_000) < 800, "\(c)") }
        // One server busy: of two drawn, it wins only when drawn with itself (never).
        let busy = counts((0..<10_000).compactMap { _ in b.pick(health: s, active: [50, 0, 0, 0], tried: 0, now: 0) }, 4)
        #expect(busy[0] == 0, "\(busy)")
        var w = Balancer(BalanceSetup(policy: .randomTwo, weights: [3, 1]), seed: 7)
        let two = servers(2)
        // Both drawn every time (two servers): the lower (active+1)/weight wins.
        #expect(w.pick(health: two, active: [2, 1], tried: 0, now: 0) == 0)
        #expect(w.pick(health: two, active: [6, 1], tried: 0, now: 0) == 1)
    }

    func names(_ n: Int) -> [String] { (0..<n).map { "10.0.0.\($0):8080" } }
    func key(_ i: Int) -> UInt64 { fnv1a("/item/\(i)".utf8) }

    @Test func hashingIsStickyAndEven() {
        let n = 8
        var b = Balancer(BalanceSetup(policy: .hash, weights: Array(repeating: 1, count: n), names: names(n), loadFactor: 0))
        let s = servers(n)
        let idle = Array(repeating: 0, count: n)
        let first = (0..<20_000).map { b.pick(health: s, active: idle, tried: 0, now: 0, key: key($0))! }
        let again = (0..<20_000).map { b.pick(health: s, active: idle, tried: 0, now: 0, key: key($0))! }
        #expect(first == again)
        let c = counts(first, n)
        for x in c { #expect(abs(x - 2500) < 2500 / 4, "within 25% of the mean with 160 points each: \(c)") }
    }

    @Test func aServerLeavingMovesAboutOneNthOfTheKeys() {
        let n = 8
        let keys = 20_000
        var b = Balancer(BalanceSetup(policy: .hash, weights: Array(repeating: 1, count: n), names: names(n), loadFactor: 0))
        let s = servers(n)
        let idle = Array(repeating: 0, count: n)
        let before = (0..<keys).map { b.pick(health: s, active: idle, tried: 0, now: 0, key: key($0))! }
        s[3].recordFailure(now: 0)                    // out
        let during = (0..<keys).map { b.pick(health: s, active: idle, tried: 0, now: 1, key: key($0))! }
        var moved = 0
        for i in 0..<keys where before[i] != during[i] {
            moved += 1
            #expect(before[i] == 3, "only the keys of the server that left move")
        }
        let share = Double(moved) / Double(keys)
        #expect(share > 0.8 / Double(n) && share < 1.25 / Double(n), "moved \(share), expected about 1/\(n)")
        // It comes back: every key returns to where it was.
        let after = (0..<keys).map { b.pick(health: s, active: idle, tried: 0, now: 2_000_000, key: key($0))! }
        #expect(after == before)
        // The same holds for a ring built without it (a reload removing it).
        var seven = Balancer(BalanceSetup(policy: .hash, weights: Array(repeating: 1, count: n - 1),
                                          names: names(n).enumerated().filter { $0.offset != 3 }.map { $0.element }, loadFactor: 0))
        let rebuilt = (0..<keys).map { seven.pick(health: servers(n - 1), active: Array(repeating: 0, count: n - 1), tried: 0, now: 0, key: key($0))! }
        let unmoved = (0..<keys).filter { before[$0] != 3 }.allSatisfy { i in names(n)[before[i]] == names(n).enumerated().filter { $0.offset != 3 }.map { $0.element }[rebuilt[i]] }
        #expect(unmoved, "servers are placed by name, not position")
    }

    @Test func boundedLoadCapsAHotKey() {
        let n = 4
        var b = Balancer(BalanceSetup(policy: .hash, weights: Array(repeating: 1, count: n), names: names(n), loadFactor: 1.25))
        let s = servers(n)
        var active = Array(repeating: 0, count: n)
        // A skewed key set: 90% of requests for one key, all held open.
        for i in 0..<1000 {
            let k = i % 10 == 0 ? key(i) : key(0)
            let p = b.pick(health: s, active: active, tried: 0, now: 0, key: k)!
            active[p] += 1
            let total = active.reduce(0, +)
            #expect(Double(active.max()!) <= (1.25 * Double(total) / Double(n)).rounded(.up) + 1, "\(active)")
        }
        // Without the bound the hot key's server takes nearly everything.
        var pure = Balancer(BalanceSetup(policy: .hash, weights: Array(repeating: 1, count: n), names: names(n), loadFactor: 0))
        var a2 = Array(repeating: 0, count: n)
        for i in 0..<1000 { a2[pure.pick(health: s, active: a2, tried: 0, now: 0, key: i % 10 == 0 ? key(i) : key(0))!] += 1 }
        #expect(a2.max()! > 850, "\(a2)")
        // With idle servers the key still goes to its own server.
        let home = pure.pick(health: s, active: [0, 0, 0, 0], tried: 0, now: 0, key: key(0))
        #expect(b.pick(health: s, active: [0, 0, 0, 0], tried: 0, now: 0, key: key(0)) == home)
    }

    @Test func hashWithoutAKeyFallsBackToRoundRobinAndRetriesSkipTried() {
        var b = Balancer(BalanceSetup(policy: .hash, weights: [1, 1, 1], names: names(3)))
        let s = servers(3)
        let picks = (0..<6).compactMap { _ in b.pick(health: s, active: [0, 0, 0], tried: 0, now: 0, key: nil) }
        #expect(counts(picks, 3) == [2, 2, 2])
        let home = b.pick(health: s, active: [0, 0, 0], tried: 0, now: 0, key: key(1))!
        let next = b.pick(health: s, active: [0, 0, 0], tried: 1 << UInt64(home), now: 0, key: key(1))!
        #expect(next != home)
        #expect(b.pick(health: s, active: [0, 0, 0], tried: 0b111, now: 0, key: key(1)) == nil)
    }
}

@Suite struct SlowStartTests {
    /// Server 1 comes back at t = 10 s with a 10 s slow start: its share of
    /// round-robin grows from almost nothing to its full half.
    @Test func aRecoveredServerRampsUpToItsWeight() {
        let s = (0..<2).map { _ in ServerHealth(maxFails: 1, backoffMillis: 10_000) }
        s[1].recordFailure(now: 0)                              // out until 10 s
        var b = Balancer(BalanceSetup(policy: .roundRobin, weights: [1, 1], slowStartMillis: 10_000))
        func share(at now: Int64) -> Double {
            let picks = (0..<1000).compactMap { _ in b.pick(health: s, active: [0, 0], tried: 0, now: now) }
            return Double(picks.filter { $0 == 1 }.count) / 1000
        }
        #expect(share(at: 5_000) == 0, "out")
        #expect(share(at: 10_100) < 0.05)
        let mid = share(at: 15_000)
        #expect(mid > 0.25 && mid < 0.4, "half its weight: a third of the picks (\(mid))")
        #expect(share(at: 20_000) == 0.5)
        // Without slow start it is back at full weight at once.
        var plain = Balancer(BalanceSetup(policy: .roundRobin, weights: [1, 1]))
        let picks = (0..<1000).compactMap { _ in plain.pick(health: s, active: [0, 0], tried: 0, now: 10_100) }
        #expect(picks.filter { $0 == 1 }.count == 500)
    }

    @Test func aProbedRecoveryRampsLeastConnectionsToo() {
        let s = (0..<2).map { _ in ServerHealth(maxFails: 1, backoffMillis: 1) }
        s[1].setProbed(up: false, why: "down", at: 0, now: 0)
        s[1].setProbed(up: true, why: "up", at: 0, now: 50_000)
        var b = Balancer(BalanceSetup(policy: .leastConnections, weights: [1, 1], slowStartMillis: 10_000))
        // Just back, idle, and still not preferred over a server with a few requests.
        #expect(b.pick(health: s, active: [3, 0], tried: 0, now: 50_500) == 0)
        #expect(b.pick(health: s, active: [3, 0], tried: 0, now: 60_000) == 1)
    }
}
