// Socket addresses and non-blocking TCP sockets.
import Glibc
import CEdgeIO

/// An IPv4 or IPv6 socket address.
public struct SocketAddress: Sendable, CustomStringConvertible, Equatable {
    public var storage: sockaddr_storage
    public var length: socklen_t

    public static func == (a: SocketAddress, b: SocketAddress) -> Bool { a.description == b.description }

    /// Parses `host:port`, `[v6]:port`, or `:port` (all interfaces). The host
    /// must be a literal address or resolve with getaddrinfo (config time only).
    public init?(_ text: String, defaultPort: UInt16? = nil) {
        var host = text
        var port: UInt16? = defaultPort
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.hasPrefix(":") { port = UInt16(rest.dropFirst()) } else if !rest.isEmpty { return nil }
        } else if let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon {
            host = String(text[..<colon])
            port = UInt16(text[text.index(after: colon)...])
            if port == nil { return nil }
        }
        guard let p = port else { return nil }
        if host.isEmpty { host = "0.0.0.0" }
        var st = sockaddr_storage()
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = p.bigEndian
            withUnsafeBytes(of: v4) { src in withUnsafeMutableBytes(of: &st) { $0.copyMemory(from: src) } }
            self.storage = st
            self.length = socklen_t(MemoryLayout<sockaddr_in>.size)
            return
        }
        if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = p.bigEndian
            withUnsafeBytes(of: v6) { src in withUnsafeMutableBytes(of: &st) { $0.copyMemory(from: src) } }
            self.storage = st
            self.length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            return
        }
        // Name: resolve once (config load, never on the data path).
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(p), &hints, &res) == 0, let ai = res else { return nil }
        defer { freeaddrinfo(res) }
        withUnsafeMutableBytes(of: &st) { $0.copyMemory(from: UnsafeRawBufferPointer(start: ai.pointee.ai_addr, count: Int(ai.pointee.ai_addrlen))) }
        self.storage = st
        self.length = ai.pointee.ai_addrlen
    }

    public init(storage: sockaddr_storage, length: socklen_t) {
        self.storage = storage
        self.length = length
    }

    public var family: Int32 { Int32(storage.ss_family) }

    public var port: UInt16 {
        withUnsafeBytes(of: storage) { raw in
            if family == AF_INET { return UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port) }
            return UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
        }
    }

    /// The address without the port, as text ("127.0.0.1", "::1").
    public var ipString: String {
        var buf = [CChar](repeating: 0, count: 64)
        withUnsafeBytes(of: storage) { raw in
            if family == AF_INET {
                var a = raw.load(as: sockaddr_in.self).sin_addr
                _ = inet_ntop(AF_INET, &a, &buf, 64)
            } else {
                var a = raw.load(as: sockaddr_in6.self).sin6_addr
                _ = inet_ntop(AF_INET6, &a, &buf, 64)
            }
        }
        return String(cString: buf)
    }

    public var description: String {
        family == AF_INET6 ? "[\(ipString)]:\(port)" : "\(ipString):\(port)"
    }

    @inline(__always) public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }
    }
}

public enum TCP {
    static func setInt(_ fd: Int32, _ level: Int32, _ opt: Int32, _ v: Int32) {
        var v = v
        _ = setsockopt(fd, level, opt, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    /// A non-blocking listening socket; `reusePort` lets one per worker bind the same address.
    public static func listen(_ addr: SocketAddress, reusePort: Bool, backlog: Int32 = 4096) throws -> Int32 {
        let fd = socket(addr.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError("socket") }
        setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        if reusePort { setInt(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
        let r = addr.withSockaddr { bind(fd, $0, $1) }
        guard r == 0 else { let e = IOError("bind \(addr)"); sysClose(fd); throw e }
        guard Glibc.listen(fd, backlog) == 0 else { let e = IOError("listen \(addr)"); sysClose(fd); throw e }
        return fd
    }

    /// The address a socket is bound to (to learn an ephemeral port).
    public static func localAddress(_ fd: Int32) -> SocketAddress? {
        var st = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &st) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return r == 0 ? SocketAddress(storage: st, length: len) : nil
    }

    public enum AcceptResult {
        case accepted(Int32, SocketAddress)
        case wouldBlock
        case error(Int32)
    }

    @inline(__always) public static func accept(_ lfd: Int32) -> AcceptResult {
        var st = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        while true {
            let fd = withUnsafeMutablePointer(to: &st) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    edge_accept(lfd, $0, &len)
                }
            }
            if fd >= 0 {
                setInt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
                return .accepted(fd, SocketAddress(storage: st, length: len))
            }
            let e = errno
            if e == EINTR || e == ECONNABORTED { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            return .error(e)
        }
    }

    public enum ConnectResult {
        case connected(Int32)
        case inProgress(Int32)
        case failed(Int32)
    }

    /// Starts a non-blocking connect.
    public static func connect(_ addr: SocketAddress) -> ConnectResult {
        let fd = socket(addr.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failed(errno) }
        setInt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        while true {
            let r = addr.withSockaddr { Glibc.connect(fd, $0, $1) }
            if r == 0 { return .connected(fd) }
            let e = errno
            if e == EINTR { continue }
            if e == EINPROGRESS { return .inProgress(fd) }
            sysClose(fd)
            return .failed(e)
        }
    }

    /// The pending error of a socket (after a non-blocking connect completes).
    public static func socketError(_ fd: Int32) -> Int32 {
        var v: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len)
        return v
    }
}

/// Unix domain stream sockets (the admin API), blocking.
public enum UnixSocket {
    static func address(_ path: String) throws -> sockaddr_un {
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: a.sun_path) else { throw IOError("socket path too long: \(path)", errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &a.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return a
    }

    /// Binds and listens on `path` with file mode `mode`; a stale socket file is replaced.
    public static func listen(path: String, mode: mode_t = 0o600) throws -> Int32 {
        var a = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError("socket") }
        unlink(path)
        // Created with no permissions for others from the start (no window before chmod).
        let old = umask(0o177)
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        umask(old)
        guard r == 0 else { let e = IOError("bind \(path)"); close(fd); throw e }
        chmod(path, mode)
        guard Glibc.listen(fd, 64) == 0 else { let e = IOError("listen \(path)"); close(fd); throw e }
        return fd
    }

    public static func connect(path: String) throws -> Int32 {
        var a = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError("socket") }
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard r == 0 else { let e = IOError("connect \(path)"); close(fd); throw e }
        return fd
    }
}

/// Accepts a connection as a blocking, close-on-exec socket (-1 on error):
/// a process spawned meanwhile must not inherit it.
public func acceptBlocking(_ fd: Int32) -> Int32 {
    let lfd = fd
    let c = edge_accept_blocking(lfd)
    if c >= 0 { _ = fcntl(c, F_SETFL, fcntl(c, F_GETFL) & ~O_NONBLOCK) }
    return c
}

/// A pipe whose ends are close-on-exec (children get them only through dup2).
public func pipeCloseOnExec(_ fds: inout [Int32]) -> Int32 {
    fds.withUnsafeMutableBufferPointer { edge_pipe_cloexec($0.baseAddress!) }
}

/// Sets send and receive timeouts on a blocking socket.
public func setSocketTimeouts(_ fd: Int32, millis: Int) {
    var tv = timeval(tv_sec: millis / 1000, tv_usec: (millis % 1000) * 1000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
}
