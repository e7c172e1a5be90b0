// One place for syscall error handling: EINTR is retried, EAGAIN becomes
// `.wouldBlock`, everything else is an `IOError` with the errno.
import Glibc

public struct IOError: Error, CustomStringConvertible, Sendable {
    public var errno: Int32
    public var what: String
    public init(_ what: String, errno: Int32 = Glibc.errno) { self.what = what; self.errno = errno }
    public var description: String { "\(what): \(String(cString: strerror(errno)))" }
}

public enum IOResult: Equatable {
    case bytes(Int)
    case wouldBlock
    case eof
    case error(Int32)
}

@inline(__always) public func sysRead(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> IOResult {
    while true {
        let r = Glibc.read(fd, p, n)
        if r > 0 { return .bytes(r) }
        if r == 0 { return .eof }
        let e = errno
        if e == EINTR { continue }
        if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
        return .error(e)
    }
}

@inline(__always) public func sysWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> IOResult {
    while true {
        let r = Glibc.send(fd, p, n, Int32(MSG_NOSIGNAL))
        if r >= 0 { return .bytes(r) }
        let e = errno
        if e == EINTR { continue }
        if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
        if e == ENOTSOCK { // plain files and pipes (tests, logs)
            let w = Glibc.write(fd, p, n)
            if w >= 0 { return .bytes(w) }
            return .error(errno)
        }
        return .error(e)
    }
}

/// Writes two pieces with one writev (a response head and a stored body).
@inline(__always) public func sysWritev(_ fd: Int32, _ a: UnsafeRawPointer, _ na: Int, _ b: UnsafeRawPointer, _ nb: Int) -> IOResult {
    var iov = (iovec(iov_base: UnsafeMutableRawPointer(mutating: a), iov_len: na),
               iovec(iov_base: UnsafeMutableRawPointer(mutating: b), iov_len: nb))
    while true {
        let r = withUnsafePointer(to: &iov) { $0.withMemoryRebound(to: iovec.self, capacity: 2) { Glibc.writev(fd, $0, 2) } }
        if r >= 0 { return .bytes(r) }
        let e = errno
        if e == EINTR { continue }
        if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
        return .error(e)
    }
}

@inline(__always) public func sysClose(_ fd: Int32) {
    _ = Glibc.close(fd)
}

/// Monotonic milliseconds, for deadlines.
@inline(__always) public func monotonicMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Monotonic microseconds, for durations in logs.
@inline(__always) public func monotonicMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
}

/// Wall-clock seconds and milliseconds since the epoch (Date header, logs).
@inline(__always) public func wallClock() -> (seconds: Int64, millis: Int) {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return (Int64(ts.tv_sec), Int(ts.tv_nsec / 1_000_000))
}
