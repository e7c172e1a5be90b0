// epoll and eventfd. Each loop thread owns one Epoll; the eventfd is the one
// thing other threads touch (to wake it), and eventfd writes are thread-safe.
import Glibc
import CEdgeIO

public final class Epoll {
    public let fd: Int32
    public let tokens: UnsafeMutablePointer<UInt64>
    public let events: UnsafeMutablePointer<UInt32>
    public let capacity: Int

    public init(capacity: Int = 512) throws {
        fd = edge_epoll_create()
        guard fd >= 0 else { throw IOError("epoll_create1") }
        self.capacity = capacity
        tokens = .allocate(capacity: capacity)
        events = .allocate(capacity: capacity)
    }

    deinit {
        tokens.deallocate()
        events.deallocate()
        sysClose(fd)
    }

    public static let readable = UInt32(EDGE_EPOLLIN)
    public static let writable = UInt32(EDGE_EPOLLOUT)
    public static let hangup = UInt32(EDGE_EPOLLRDHUP) | UInt32(EDGE_EPOLLHUP)
    public static let error = UInt32(EDGE_EPOLLERR)
    public static let edge = UInt32(truncatingIfNeeded: EDGE_EPOLLET)

    /// Registers `fd`; `token` comes back with its events.
    public func add(_ fd: Int32, token: UInt64, events mask: UInt32) throws {
        guard edge_epoll_add(self.fd, fd, mask, token) == 0 else { throw IOError("epoll_ctl add") }
    }

    public func remove(_ fd: Int32) {
        _ = edge_epoll_del(self.fd, fd)
    }

    /// Waits up to `timeoutMillis`; returns how many entries of `tokens`/`events` are filled.
    public func wait(timeoutMillis: Int32) -> Int {
        while true {
            let n = edge_epoll_wait(fd, tokens, events, Int32(capacity), timeoutMillis)
            if n >= 0 { return Int(n) }
            if errno == EINTR { continue }
            return 0
        }
    }
}

/// A wake-up channel into a loop thread.
public final class EventFD: @unchecked Sendable {
    public let fd: Int32
    public init() throws {
        fd = edge_eventfd()
        guard fd >= 0 else { throw IOError("eventfd") }
    }
    deinit { sysClose(fd) }
    public func signal() {
        var one: UInt64 = 1
        _ = Glibc.write(fd, &one, 8)
    }
    public func drain() {
        var v: UInt64 = 0
        _ = Glibc.read(fd, &v, 8)
    }
}
