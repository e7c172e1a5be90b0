// Request collapsing's shared state (RFC 9111 §4 leaves it to the cache): the
// in-flight table that makes one request per key the leader and parks the
// others, and the stream a leader's response is read from while it arrives.
// Which worker wakes whom is the pipeline's (EdgeProxy/Collapsing.swift);
// nothing here does I/O.
//
// Concurrency: every worker thread calls in; each structure keeps its state
// behind its own Mutex, held only for the table or buffer operation itself.
// What a call returns (waiters to wake) is acted on after the lock is released.
import Synchronization
#if canImport(EdgeHTTP)
import EdgeHTTP
#endif

/// Who to wake: an exchange parked on a worker (a collapsed follower waiting
/// for its leader, or reading the leader's stream). Named by the exchange,
/// not by a connection, so any transport's exchanges can wait.
public struct Waiter: Sendable, Hashable {
    public let worker: Int
    public let exchange: UInt64
    public init(worker: Int, exchange: UInt64) { self.worker = worker; self.exchange = exchange }
}

public final class InFlight: Sendable {
    public init() {}
    /// A key with its FNV-1a made once per call: the tables hash those 8
    /// bytes, not the whole key, at each of their several steps a call takes.
    struct Key: Hashable {
        let key: String
        let h: UInt64
        /// `full`: the key's whole hash when made already (CacheKey.hashes).
        init(_ key: String, full: UInt64? = nil) { self.key = key; h = full ?? MemoryStore.keyHash(key, stopAtSeparator: false) }
        func hash(into hasher: inout Hasher) { hasher.combine(h) }
        static func == (a: Key, b: Key) -> Bool { a.h == b.h && a.key == b.key }
    }
    struct State {
        var leaders: [Key: [Waiter]] = [:]
        var streams: [Key: any SharedFill] = [:]
        var pass: [Key: Int64] = [:]
    }
    let state = Mutex(State())
    /// How long an uncacheable key is not collapsed (monotonic milliseconds).
    let passMillis: Int64 = 10_000

    public enum Join { case leader, follower, pass, stream(any SharedFill) }

    /// `now` is monotonic milliseconds (the pass timer is operational, not HTTP time).
    /// `canStream`: the request may be answered from the leader's stream.
    /// `hash`: the key's whole hash when the caller has it (CacheKey.hashes's `full`).
    public func join(_ key: String, _ w: Waiter, now: Int64, canStream: Bool, hash: UInt64? = nil) -> Join {
        let key = Key(key, full: hash)
        return state.withLock { s in
            if let until = s.pass[key] {
                if until > now { return .pass }
                s.pass[key] = nil
            }
            if s.leaders[key] != nil {
                if canStream, let stream = s.streams[key] { return .stream(stream) }
                s.leaders[key]!.append(w)
                return .follower
            }
            s.leaders[key] = []
            return .leader
        }
    }

    /// Waits as a parked follower after all (the stream did not fit the request);
    /// false when the leader is already done (run the request again).
    public func follow(_ key: String, _ w: Waiter) -> Bool {
        let key = Key(key)
        return state.withLock { s in
            guard s.leaders[key] != nil else { return false }
            s.leaders[key]!.append(w)
            return true
        }
    }

    /// The leader's response can be streamed: returns the followers parked so
    /// far (woken, they join again and find the stream).
    public func publish(_ key: String, _ stream: any SharedFill) -> [Waiter] {
        let key = Key(key)
        return state.withLock { s in
            guard s.leaders[key] != nil else { return [] }
            s.streams[key] = stream
            let waiting = s.leaders[key]!
            s.leaders[key] = []
            return waiting
        }
    }

    /// Becomes the leader for `key` if nobody is; never waits (background refreshes).
    public func tryLead(_ key: String) -> Bool {
        let key = Key(key)
        return state.withLock { s in
            if s.leaders[key] != nil { return false }
            s.leaders[key] = []
            return true
        }
    }

    /// The leader is done; returns the followers to wake.
    public func finish(_ key: String, uncacheable: Bool, now: Int64) -> [Waiter] {
        let key = Key(key)
        return state.withLock { s in
            let waiters = s.leaders.removeValue(forKey: key) ?? []
            s.streams[key] = nil
            if uncacheable {
                if s.pass.count > 10_000 { s.pass = s.pass.filter { $0.value > now } }
                s.pass[key] = now + passMillis
            }
            return waiters
        }
    }
}

/// A leader's response that its followers answer from while it arrives: the
/// stored head now, and for each follower a reader of the body as it is
/// written (in memory: FillStream; on disk, for a fill too large for memory:
/// the disk tier's region of it).
public protocol SharedFill: AnyObject, Sendable {
    /// Head fields and freshness; its body is empty.
    var response: StoredResponse { get }
    /// The body's length (from Content-Length).
    var length: Int { get }
    /// A follower's reader (woken through `waking` when more is readable).
    func reader(waking: any Waking) -> any StreamedBody
}

/// A response on its way into the cache that followers read while it is written.
public final class FillStream: StreamedBody, SharedFill {
    public let response: StoredResponse          // head fields and freshness; its body is empty
    /// The body's length (from Content-Length).
    public let length: Int
    struct State {
        var body: [UInt8] = []
        var done = false
        var failed = false
        var waiters: [Waiter] = []
    }
    let state = Mutex(State())

    public init(response: StoredResponse, length: Int) {
        self.response = response
        self.length = length
        state.withLock { $0.body.reserveCapacity(length) }
    }

    /// Every follower reads this one (each from its own offset).
    public func reader(waking: any Waking) -> any StreamedBody { self }

    /// Leader: more body bytes. Returns the followers to wake.
    public func append(_ p: UnsafeRawPointer, _ n: Int) -> [Waiter] {
        state.withLock { s in
            s.body.append(contentsOf: UnsafeRawBufferPointer(start: p, count: min(n, length - s.body.count)))
            guard !s.waiters.isEmpty else { return [] }
            let w = s.waiters
            s.waiters = []
            return w
        }
    }

    /// Leader: the body is complete (`ok`) or will never be. Returns the body
    /// and the followers to wake.
    public func end(ok: Bool) -> ([UInt8], [Waiter]) {
        state.withLock { s in
            s.done = true
            s.failed = !ok || s.body.count != length
            let w = s.waiters
            s.waiters = []
            return (s.body, w)
        }
    }

    /// Follower: copies up to `max` bytes from `offset` into `out`; when there
    /// are none yet, leaves `w` to be woken and answers `.wait`.
    public func read(from offset: Int, max: Int, into out: IOBuffer, waiter w: Waiter) -> StreamRead {
        state.withLock { s in
            if s.failed { return .failed }
            let n = min(max, s.body.count - offset)
            if n > 0 {
                s.body.withUnsafeBytes { out.append(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + n)])) }
                return .copied(n)
            }
            if s.done { return .failed }   // ended short of the length
            s.waiters.append(w)
            return .wait
        }
    }
}

