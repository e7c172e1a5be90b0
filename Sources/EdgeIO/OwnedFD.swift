// The one owner of a socket descriptor.
//
// Ownership rule: a connection's fd is held in exactly one `OwnedFD`, which is
// noncopyable, so there is no second copy of the number to write through. It
// closes the fd exactly once (`close()`, or when dropped), and afterwards `fd`
// is -1 and every read or write through it traps: once closed, the kernel may
// hand the same number to another connection, and a late write (a TLS
// close_notify, a buffered response) would go to that stranger.
// The one exception is a parked idle connection (EdgeProxy Worker.park): its
// fd is handed over (`handOver`) to the worker's fd table, which is then its
// one owner until it closes it or wraps it in a new OwnedFD.
// Whoever layers TLS over the fd sends close_notify and frees the SSL first,
// then closes this last.
import Glibc

public struct OwnedFD: ~Copyable {
    public private(set) var fd: Int32

    public init(_ fd: Int32) { self.fd = fd }

    @inline(__always) public var isOpen: Bool { fd >= 0 }

    /// Closes the descriptor; it must still be open (closing twice is a bug).
    public mutating func close() {
        precondition(fd >= 0, "socket closed twice")
        sysClose(fd)
        fd = -1
    }

    /// Hands the descriptor to another owner without closing it (a parked
    /// idle connection's record in its worker's table, which closes it or
    /// gives it to a new OwnedFD); afterwards this one is closed (-1).
    public mutating func handOver() -> Int32 {
        precondition(fd >= 0, "handing over a closed socket")
        let n = fd
        fd = -1
        return n
    }

    @inline(__always) public func read(_ p: UnsafeMutableRawPointer, _ n: Int) -> IOResult {
        precondition(fd >= 0, "read from a closed socket")
        return sysRead(fd, p, n)
    }

    @inline(__always) public func write(_ p: UnsafeRawPointer, _ n: Int) -> IOResult {
        precondition(fd >= 0, "write to a closed socket")
        return sysWrite(fd, p, n)
    }

    @inline(__always) public func writev(_ a: UnsafeRawPointer, _ na: Int, _ b: UnsafeRawPointer, _ nb: Int) -> IOResult {
        precondition(fd >= 0, "write to a closed socket")
        return sysWritev(fd, a, na, b, nb)
    }

    @inline(__always) public func sendfile(from file: Int32, offset: inout Int, _ n: Int) -> IOResult {
        precondition(fd >= 0, "write to a closed socket")
        return sysSendfile(fd, file, &offset, n)
    }

    deinit { if fd >= 0 { sysClose(fd) } }
}
