// Time for cache decisions. Thread-safe (an atomic offset); read once per request.
import Synchronization

/// The cache's clock: wall-clock seconds plus an offset that tests advance
/// (cache-spec cases script time without sleeping). One per server; every
/// cache decision reads time here, once per request, and passes it into
/// EdgeCache's policy.
public final class CacheClock: Sendable {
    /// `seconds`: the wall clock (Unix seconds) this clock offsets.
    public init(seconds: @escaping @Sendable () -> Int64) { self.seconds = seconds }
    let seconds: @Sendable () -> Int64
    let offset = Atomic<Int64>(0)
    public func advance(by seconds: Int64) { offset.add(seconds, ordering: .relaxed) }
    public func reset() { offset.store(0, ordering: .relaxed) }
    public var offsetSeconds: Int64 { offset.load(ordering: .relaxed) }
    public func now() -> Int64 { seconds() + offset.load(ordering: .relaxed) }
}

