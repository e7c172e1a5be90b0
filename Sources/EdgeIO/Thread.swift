// Starting and joining OS threads without Foundation.
import Glibc
import CEdgeIO

final class ThreadBox {
    let name: String
    let body: () -> Void
    init(_ name: String, _ body: @escaping () -> Void) { self.name = name; self.body = body }
}

public struct OSThread: @unchecked Sendable {
    let handle: pthread_t

    /// Starts `body` on a new thread named `name` (at most 15 bytes: what `top -H`,
    /// `ps -L` and debuggers show, e.g. "edge-worker-0"; longer names are cut).
    public static func spawn(name: String, _ body: @escaping @Sendable () -> Void) -> OSThread {
        let box = Unmanaged.passRetained(ThreadBox(name, body)).toOpaque()
        var t = pthread_t()
        let r = pthread_create(&t, nil, { arg in
            let b = Unmanaged<ThreadBox>.fromOpaque(arg!).takeRetainedValue()
            _ = edge_name_thread(b.name)
            b.body()
            return nil
        }, box)
        precondition(r == 0, "pthread_create failed: \(r)")
        return OSThread(handle: t)
    }

    /// Starts `body` on a detached thread (nothing joins it; it ends with `body`).
    public static func detached(name: String, _ body: @escaping @Sendable () -> Void) {
        let t = spawn(name: name, body)
        _ = pthread_detach(t.handle)
    }

    public func join() {
        _ = pthread_join(handle, nil)
    }

    /// Pins the calling thread to one CPU (benchmarks).
    public static func pinCurrent(to cpu: Int) {
        _ = edge_pin_to_cpu(Int32(cpu))
    }
}

/// Blocks the signals edged handles on a dedicated thread; call before spawning workers.
public func blockSignals(_ signals: [Int32]) {
    var set = sigset_t()
    sigemptyset(&set)
    for s in signals { sigaddset(&set, s) }
    pthread_sigmask(SIG_BLOCK, &set, nil)
}

/// Waits for one of `signals` (blocked beforehand); returns which.
public func waitForSignal(_ signals: [Int32]) -> Int32 {
    var set = sigset_t()
    sigemptyset(&set)
    for s in signals { sigaddset(&set, s) }
    var sig: Int32 = 0
    sigwait(&set, &sig)
    return sig
}

public func ignoreSIGPIPE() {
    signal(SIGPIPE, SIG_IGN)
}

/// A mutex and condition variable (pthread): the disk threads' queues, the
/// ACME scheduler, the fleet journal. Lock around every wait and state change.
public final class Gate: @unchecked Sendable {
    let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    let c = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    public init() {
        pthread_mutex_init(m, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(c, &attr)
    }
    deinit { pthread_cond_destroy(c); pthread_mutex_destroy(m); m.deallocate(); c.deallocate() }
    public func lock() { pthread_mutex_lock(m) }
    public func unlock() { pthread_mutex_unlock(m) }
    public func broadcast() { pthread_cond_broadcast(c) }
    /// `body` with the mutex held.
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock()
        defer { unlock() }
        return try body()
    }
    /// Waits (locked) until signalled or `millis` pass.
    public func wait(millis: Int) {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let ns = Int(ts.tv_nsec) + (millis % 1000) * 1_000_000
        ts.tv_sec += millis / 1000 + ns / 1_000_000_000
        ts.tv_nsec = ns % 1_000_000_000
        pthread_cond_timedwait(c, m, &ts)
    }
}
