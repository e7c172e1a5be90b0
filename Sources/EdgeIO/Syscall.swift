// One place for syscall error handling: EINTR is retried, EAGAIN becomes
// `.wouldBlock`, everything else is an `IOError` with the errno.
import Glibc
import CEdgeIO
import Synchronization

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

/// Reads with recv(2): on a socket it skips the file layer read(2) goes
/// through (position lock, access check: 20-90 ns a call on this machine,
/// tools/bench/syscalls.c: read 389-484 ns, recv 360-393 ns). Other descriptors
/// (pipes, files) fall back to read(2), as sysWrite falls back to write(2).
@inline(__always) public func sysRead(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> IOResult {
    while true {
        var r = Glibc.recv(fd, p, n, 0)
        if r < 0 && errno == ENOTSOCK { r = Glibc.read(fd, p, n) }
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

/// sendfile(2) from `fd` at `offset` (advanced by what was sent) to a socket.
@inline(__always) public func sysSendfile(_ sock: Int32, _ fd: Int32, _ offset: inout Int, _ n: Int) -> IOResult {
    while true {
        var off = offset
        let r = edge_sendfile(sock, fd, &off, UInt(n))
        if r >= 0 { offset = off; return .bytes(Int(r)) }
        let e = errno
        if e == EINTR { continue }
        if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
        return .error(e)
    }
}

/// Bytes copied once into an anonymous memory file and mapped read-only: the
/// same pages serve reads through `base` and zero-copy sends with sendfile.
public final class MappedBytes: @unchecked Sendable {
    /// Memory files alive now, and how many may be: a quarter of the
    /// descriptor limit, so that they never starve connections of descriptors.
    static let live = Atomic<Int>(0)
    static let budget: Int = {
        var r = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &r)
        return Int(min(r.rlim_cur, 1 << 20)) / 4
    }()

    public let fd: Int32
    public let base: UnsafeRawPointer
    public let count: Int

    /// nil when a memory file cannot be made (out of descriptors or memory):
    /// the caller keeps the bytes in ordinary memory instead.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0, let src = bytes.baseAddress else { return nil }
        guard MappedBytes.live.add(1, ordering: .relaxed).newValue <= MappedBytes.budget else {
            MappedBytes.live.subtract(1, ordering: .relaxed)
            return nil
        }
        let fd = edge_memfd("edge-body")
        guard fd >= 0 else { MappedBytes.live.subtract(1, ordering: .relaxed); return nil }
        var off = 0
        while off < bytes.count {
            let w = Glibc.write(fd, src + off, bytes.count - off)
            if w < 0 {
                if errno == EINTR { continue }
                Glibc.close(fd)
                MappedBytes.live.subtract(1, ordering: .relaxed)
                return nil
            }
            off += w
        }
        guard let p = mmap(nil, bytes.count, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            Glibc.close(fd)
            MappedBytes.live.subtract(1, ordering: .relaxed)
            return nil
        }
        self.fd = fd
        base = UnsafeRawPointer(p)
        count = bytes.count
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), count)
        Glibc.close(fd)
        MappedBytes.live.subtract(1, ordering: .relaxed)
    }
}

/// Raises the soft descriptor limit to the hard one (like nginx's
/// worker_rlimit_nofile); returns the limit now in force.
@discardableResult public func raiseFileLimit() -> Int {
    var r = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &r)
    if r.rlim_cur < r.rlim_max {
        r.rlim_cur = r.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &r)
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &r)
    }
    return Int(min(r.rlim_cur, UInt(Int.max)))
}

/// Opens a NUL-terminated relative `path` beneath the directory `dirFD`, never
/// resolving outside it (see edge_open_beneath): symbolic links are refused
/// unless `allowLinks`, and then only those that stay inside. -1 and errno on failure.
public func sysOpenBeneath(_ dirFD: Int32, _ path: UnsafePointer<CChar>, flags: Int32, allowLinks: Bool) -> Int32 {
    edge_open_beneath(dirFD, path, flags, allowLinks ? 1 : 0)
}

/// An O_PATH descriptor for a directory, for `sysOpenBeneath`; -1 on failure.
public func sysOpenDirectory(_ path: String) -> Int32 { edge_open_directory(path) }

/// Returns memory that was freed back to the system (not only to malloc's
/// free lists, where it still counts in RSS). Takes the allocator's locks:
/// for rare moments, never per request.
public func releaseFreedMemory() { _ = edge_malloc_trim() }

/// What the allocator holds for these Swift objects: each one's chunk, its
/// usable size and glibc's 8-byte header (Swift allocates objects with malloc).
public func heapBytes(_ objects: AnyObject...) -> Int {
    objects.reduce(0) { $0 + edge_malloc_usable_size(Unmanaged.passUnretained($1).toOpaque()) + 8 }
}
