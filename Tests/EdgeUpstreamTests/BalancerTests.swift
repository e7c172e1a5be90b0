import Testing
@testable import EdgeUpstream

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
