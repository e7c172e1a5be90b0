// Request collapsing across all workers.
//
// Rule: the first miss on a key (the leader) goes to the origin; concurrent
// misses on the same key (followers) park their connection, request unread,
// until the leader is done, and then run their request again from the top:
// - the leader stored the response → the followers are hits;
// - the response was not cacheable → the key is remembered as "pass" for a
//   short time, and the followers (and later requests) go to the origin on
//   their own, so nobody queues behind an uncacheable URL;
// - the leader failed (origin error, client gone) → nothing is remembered;
//   the first follower to run again becomes the new leader, the rest follow it.
// A follower that waits longer than its tenant's origin read timeout stops
// waiting and goes to the origin itself.
//
// Concurrency: the table is one Mutex (held for a dictionary update only).
// Waking a follower on another worker goes through that worker's mailbox (a
// Mutex'd list) and its eventfd; the follower's worker then resumes it on its
// own thread. Connections are named by (fd, generation), so a follower that
// closed meanwhile is simply not found.
import Synchronization
import EdgeIO

struct Waiter: Sendable {
    let worker: Int
    let fd: Int32
    let gen: UInt32
}

final class InFlight: Sendable {
    struct State {
        var leaders: [String: [Waiter]] = [:]
        var pass: [String: Int64] = [:]
    }
    let state = Mutex(State())
    /// How long an uncacheable key is not collapsed (monotonic milliseconds).
    let passMillis: Int64 = 10_000

    enum Join { case leader, follower, pass }

    /// `now` is monotonic milliseconds (the pass timer is operational, not HTTP time).
    func join(_ key: String, _ w: Waiter, now: Int64) -> Join {
        state.withLock { s in
            if let until = s.pass[key] {
                if until > now { return .pass }
                s.pass[key] = nil
            }
            if s.leaders[key] != nil {
                s.leaders[key]!.append(w)
                return .follower
            }
            s.leaders[key] = []
            return .leader
        }
    }

    /// Becomes the leader for `key` if nobody is; never waits (background refreshes).
    func tryLead(_ key: String) -> Bool {
        state.withLock { s in
            if s.leaders[key] != nil { return false }
            s.leaders[key] = []
            return true
        }
    }

    /// The leader is done; returns the followers to wake.
    func finish(_ key: String, uncacheable: Bool, now: Int64) -> [Waiter] {
        state.withLock { s in
            let waiters = s.leaders.removeValue(forKey: key) ?? []
            if uncacheable {
                if s.pass.count > 10_000 { s.pass = s.pass.filter { $0.value > now } }
                s.pass[key] = now + passMillis
            }
            return waiters
        }
    }
}

/// Each worker's inbox of parked connections to resume, and its wake-up fd.
final class Mailboxes: Sendable {
    final class Box: Sendable {
        let queue = Mutex<[Waiter]>([])
        let wake: EventFD
        init() throws { wake = try EventFD() }
    }
    let boxes: [Box]

    init(count: Int) throws { boxes = try (0..<count).map { _ in try Box() } }

    func deliver(_ waiters: [Waiter]) {
        for w in waiters where w.worker < boxes.count {
            boxes[w.worker].queue.withLock { $0.append(w) }
            boxes[w.worker].wake.signal()
        }
    }
}

extension Worker {
    /// Parks a follower: its request stays unread in its buffer until woken.
    func park(_ c: ClientConnection) {
        c.phase = .parked
        c.inExchange = false
        c.timeout = .parked
        c.deadline = now + (c.tenant?.limits.originReadTimeoutMillis ?? 60_000)
    }

    /// Resumes parked connections that other workers (or this one) woke.
    func drainMailbox() {
        let woken = mailboxes.boxes[index].queue.withLock { q -> [Waiter] in
            let all = q
            q.removeAll()
            return all
        }
        for w in woken { resumeParked(fd: w.fd, gen: w.gen, alone: false) }
    }

    func resumeParked(fd: Int32, gen: UInt32, alone: Bool) {
        guard Int(fd) < slots.count, case .client(let c) = slots[Int(fd)], c.gen == gen, c.phase == .parked else { return }
        c.phase = .head
        c.skipCollapse = alone
        c.timeout = .header
        c.deadline = now + server.headerTimeoutMillis
        processClient(c)
    }

    /// The leader's exchange ended (stored, uncacheable, or failed): wake its followers.
    func releaseLeader(_ c: ClientConnection) {
        guard let key = c.cache.leaderKey else { return }
        c.cache.leaderKey = nil
        let waiters = inFlight.finish(key, uncacheable: c.cache.uncacheable, now: now)
        if !waiters.isEmpty { mailboxes.deliver(waiters) }
    }
}
