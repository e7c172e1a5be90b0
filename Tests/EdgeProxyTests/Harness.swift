// Real parts for the integration tests: a python origin process, an edge
// server on a loopback ephemeral port, and a raw-socket HTTP client that
// shows exactly what went over the wire.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy
import EdgeConfig
import EdgeIO
import EdgeCache

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

struct HarnessError: Error, CustomStringConvertible { var description: String }
/// The server went quiet: neither bytes nor an end of stream within the client's timeout.
struct ClientTimedOut: Error, CustomStringConvertible { var description: String }

/// A child process started with posix_spawn; its stdout comes back on a pipe.
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    let stdoutFD: Int32
    let isTLS: Bool
    /// The child's stdin, when asked for.
    let stdinFD: Int32

    init(_ argv: [String], stdin wantStdin: Bool = false) throws {
        var fds: [Int32] = [0, 0]
        // Close-on-exec: a child another test spawns meanwhile must not inherit these
        // (it would hold the pipe open, and a reader would wait for its exit).
        guard pipeCloseOnExec(&fds) == 0 else { throw HarnessError(description: "pipe failed") }
        var inFDs: [Int32] = [-1, -1]
        if wantStdin { guard pipeCloseOnExec(&inFDs) == 0 else { throw HarnessError(description: "pipe failed") } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        if wantStdin {
            posix_spawn_file_actions_adddup2(&actions, inFDs[0], 0)
            posix_spawn_file_actions_addclose(&actions, inFDs[1])
        }
        // Start with no signals blocked, whatever this thread has blocked.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var def = sigset_t()
        sigemptyset(&def)
        sigaddset(&def, SIGTERM); sigaddset(&def, SIGINT); sigaddset(&def, SIGPIPE)
        posix_spawnattr_setsigdefault(&attr, &def)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var cargs = argv.map { strdup($0) } + [nil]
        var p: pid_t = 0
        let r = posix_spawnp(&p, argv[0], &actions, &attr, &cargs, environ)
        for a in cargs { free(a) }
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attr)
        close(fds[1])
        if wantStdin { close(inFDs[0]) }
        stdinFD = inFDs[1]
        guard r == 0 else { close(fds[0]); throw HarnessError(description: "spawn \(argv[0]) failed: \(r)") }
        pid = p
        stdoutFD = fds[0]
        isTLS = argv.contains("--tls")
    }

    /// Reads one line from the child's stdout; what arrived so far after `seconds`.
    func readLine(seconds: Int = 30) -> String {
        var line: [UInt8] = []
        var c: UInt8 = 0
        let deadline = monotonicMillis() + Int64(seconds) * 1000
        while true {
            var p = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            let left = deadline - monotonicMillis()
            guard left > 0, poll(&p, 1, Int32(left)) == 1, Glibc.read(stdoutFD, &c, 1) == 1, c != 10 else { break }
            line.append(c)
        }
        return String(decoding: line, as: UTF8.self)
    }

    func signal(_ sig: Int32) { kill(pid, sig) }

    func write(_ text: String) {
        let b = Array(text.utf8)
        _ = b.withUnsafeBytes { Glibc.write(stdinFD, $0.baseAddress, $0.count) }
    }

    /// Reads stdout until `marker` appears (or EOF, or `seconds` pass); returns what was read.
    func read(until marker: String, seconds: Int = 30) -> String {
        var out: [UInt8] = []
        var c: UInt8 = 0
        let deadline = monotonicMillis() + Int64(seconds) * 1000
        while true {
            var p = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            let left = deadline - monotonicMillis()
            guard left > 0, poll(&p, 1, Int32(left)) == 1, Glibc.read(stdoutFD, &c, 1) == 1 else { break }
            out.append(c)
            if out.count >= marker.utf8.count && String(decoding: out.suffix(marker.utf8.count), as: UTF8.self) == marker { break }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Waits for the child; returns its exit status (or 128+signal).
    @discardableResult
    func wait() -> Int32 {
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        if st & 0x7F == 0 { return (st >> 8) & 0xFF }
        return 128 + (st & 0x7F)
    }

    var stopped = false
    func stop() {
        guard !stopped else { return }
        stopped = true
        kill(pid, SIGKILL)
        wait()
        close(stdoutFD)
        if stdinFD >= 0 { close(stdinFD) }
    }

    deinit { stop() }
}

/// tools/testorigin/origin.py as a child process.
final class Origin: @unchecked Sendable {
    let child: ChildProcess
    let port: Int
    let name: String

    /// `port`: 0 for any (a restarted origin asks for its old one).
    init(name: String = "o1", extra: [String] = [], port wanted: Int = 0) throws {
        self.name = name
        child = try ChildProcess(["python3", repoRoot.appendingPathComponent("tools/testorigin/origin.py").path, String(wanted), name] + extra)
        guard let p = Int(child.readLine()) else { throw HarnessError(description: "origin did not start") }
        port = p
    }

    var address: String { "127.0.0.1:\(port)" }

    func stop() { child.stop() }

    /// The most requests the origin was serving at once.
    func peakConcurrency() throws -> Int { try statsJSON()["peak"] ?? -1 }

    /// Connections accepted and requests served so far.
    func stats() throws -> (connections: Int, requests: Int) {
        let j = try statsJSON()
        return (try #require(j["connections"]), try #require(j["requests"]))
    }

    func statsJSON() throws -> [String: Int] {
        var body: [UInt8]
        if child.isTLS {
            body = Array(try shell("curl -sk -m 30 https://127.0.0.1:\(port)/stats").1.utf8)
        } else {
            let c = try Client(port: port)
            c.send("GET /stats HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n")
            body = try c.readResponse().body
        }
        return try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Int], "origin /stats: \(String(decoding: body, as: UTF8.self))")
    }
}

/// An in-process edge server with the given tenant files.
final class Edge: @unchecked Sendable {
    let server: EdgeServer
    let dir: URL
    var port: Int { Int(server.httpAddress.port) }
    var httpsPort: Int { Int(server.httpsAddress?.port ?? 0) }
    var stateDir: String { dir.appendingPathComponent("state").path }
    var logPath: String { dir.appendingPathComponent("access.log").path }

    init(tenants: [String], server serverJSON: String? = nil, workers: Int = 1, files: [String: String] = [:],
         store: (any CacheStorage)? = nil) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("edge-test-\(UUID().uuidString)")
        let tdir = dir.appendingPathComponent("tenants")
        try FileManager.default.createDirectory(at: tdir, withIntermediateDirectories: true)
        for (path, content) in files {
            let u = tdir.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: u, atomically: false, encoding: .utf8)
        }
        for (i, t) in tenants.enumerated() {
            try writeFile(tdir.appendingPathComponent("t\(i).json").path, t)
        }
        var sc = ServerConfig()
        if let s = serverJSON {
            let f = dir.appendingPathComponent("server.json")
            try s.write(to: f, atomically: false, encoding: .utf8)
            sc = try ConfigLoader.loadServer(file: f.path)
        }
        // The tests' node is "edge" (Via, Cache-Status) unless the server file names it.
        if !(serverJSON ?? "").contains("\"node_name\"") { sc.nodeName = "edge" }
        sc.httpListen = "127.0.0.1:0"
        sc.httpsListen = "127.0.0.1:0"
        sc.stateDir = dir.appendingPathComponent("state").path
        sc.workers = workers
        sc.accessLog = dir.appendingPathComponent("access.log").path
        let rt = try RuntimeConfig(server: sc, tenants: try ConfigLoader.loadTenants(directory: tdir.path), store: store)
        server = try EdgeServer(config: rt)
        server.start()
    }

    func stop() {
        server.stop()
        server.wait()
    }

    /// Rewrites the tenant files and swaps the new config in, as SIGHUP does.
    func reload(tenants: [String]) throws {
        let tdir = dir.appendingPathComponent("tenants")
        for f in (try? FileManager.default.contentsOfDirectory(atPath: tdir.path)) ?? [] where f.hasSuffix(".json") {
            try FileManager.default.removeItem(at: tdir.appendingPathComponent(f))
        }
        for (i, t) in tenants.enumerated() {
            try writeFile(tdir.appendingPathComponent("t\(i).json").path, t)
        }
        let rt = try RuntimeConfig(server: server.config.server, tenants: try ConfigLoader.loadTenants(directory: tdir.path),
                                   store: server.config.store)
        server.reload(rt)
    }

    deinit {
        try? FileManager.default.removeItem(at: dir)
    }

    func accessLog() -> [[String: Any]] {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
}

struct Response {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    func headers(_ name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    /// Request headers as the origin's /echo saw them.
    func echoedHeader(_ name: String) -> [String] {
        ((json["headers"] as? [[String]]) ?? []).filter { $0[0].lowercased() == name.lowercased() }.map { $0[1] }
    }
}

/// A blocking loopback client that writes raw bytes and parses responses itself.
final class Client {
    let fd: Int32
    var buf: [UInt8] = []
    /// The start of the last request sent (for failure messages).
    var lastSent = ""

    /// `from`: the loopback address to connect from (127.0.0.2, 127.0.0.3, …:
    /// all of 127/8 is loopback), so one test can be many clients.
    /// `to`: the loopback address to connect to (a node of a fleet test).
    init(port: Int, timeoutSeconds: Int = 15, from source: String? = nil, to address: String = "127.0.0.1") throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if let source {
            var b = sockaddr_in()
            b.sin_family = sa_family_t(AF_INET)
            b.sin_addr.s_addr = inet_addr(source)
            let r = withUnsafePointer(to: &b) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard r == 0 else { throw HarnessError(description: "bind to \(source) failed: errno \(errno)") }
        }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = UInt16(port).bigEndian
        a.sin_addr.s_addr = inet_addr(address)
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        // No close(fd) here: `self` is fully initialized, so throwing runs deinit,
        // which closes it. Closing twice could close another thread's new socket.
        guard r == 0 else { throw HarnessError(description: "connect to \(port) failed: errno \(errno)") }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ s: String) {
        lastSent = String(s.prefix(60))
        send(Array(s.utf8))
    }

    func send(_ b: [UInt8]) {
        var off = 0
        while off < b.count {
            let n = b[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    /// Reads more bytes: true when some arrived, false on EOF or a reset. A
    /// receive timeout is no end of stream: it throws `ClientTimedOut`, so a
    /// stalled server can never pass for one that closed.
    func fill() throws -> Bool {
        var tmp = [UInt8](repeating: 0, count: 65536)
        let n = tmp.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
        if n > 0 {
            buf.append(contentsOf: tmp[0..<n])
            return true
        }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
            throw ClientTimedOut(description: "no byte within the receive timeout (have \(buf.count)) after sending \(lastSent.debugDescription)")
        }
        return false
    }

    /// Sends `byte` every `micros` until the server answers or closes, at most `limit`
    /// times; how many were sent (a server that lets the trickle run out sends `limit`).
    func trickle(_ byte: String, limit: Int, everyMicros micros: UInt32) -> Int {
        var sent = 0
        while sent < limit && isOpenWithNothingToRead() {
            send(byte)
            sent += 1
            usleep(micros)
        }
        return sent
    }

    /// True when the connection is open and nothing has arrived (a non-blocking peek).
    func isOpenWithNothingToRead() -> Bool {
        guard buf.isEmpty else { return false }
        var b: UInt8 = 0
        let n = recv(fd, &b, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
    }

    /// True when the server closed the connection (EOF) with nothing more to read.
    func closedByPeer() -> Bool {
        while true {
            if !buf.isEmpty { return false }
            var tmp = [UInt8](repeating: 0, count: 4096)
            let n = tmp.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 4096, 0) }
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
            buf.append(contentsOf: tmp[0..<n])
            return false
        }
    }

    /// Reads until `needle` is in the buffer; its offset. Throws at EOF (`what` names the place).
    func readUntil(_ needle: [UInt8], _ what: @autoclosure () -> String) throws -> Int {
        while true {
            if let r = find(buf, needle) { return r }
            guard try fill() else { throw HarnessError(description: what()) }
        }
    }

    func readResponse(headRequest: Bool = false, discardBody: Bool = false) throws -> Response {
        let end = try readUntil([13, 10, 13, 10], "connection closed before a response head (have \(buf.count) bytes) after sending \(lastSent.debugDescription)")
        let headText = String(decoding: buf[0..<end], as: UTF8.self)
        buf.removeFirst(end + 4)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { throw HarnessError(description: "bad status line \(statusLine)") }
        var headers: [(String, String)] = []
        for l in lines {
            guard let c = l.firstIndex(of: ":") else { continue }
            headers.append((String(l[..<c]), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)))
        }
        var r = Response(status: status, headers: headers, body: [])
        if status < 200 { return r }
        if headRequest || status == 204 || status == 304 { return r }
        if let te = r.header("transfer-encoding"), te.lowercased().contains("chunked") {
            while true {
                let lineEnd = try readUntil([13, 10], "eof in chunk size")
                let sizeText = String(decoding: buf[0..<lineEnd], as: UTF8.self).split(separator: ";", omittingEmptySubsequences: false)[0]
                guard let size = Int(sizeText, radix: 16) else { throw HarnessError(description: "bad chunk size \(sizeText)") }
                buf.removeFirst(lineEnd + 2)
                if size == 0 {
                    while true {
                        let e = try readUntil([13, 10], "eof in trailers")
                        buf.removeFirst(e + 2)
                        let blank = e == 0
                        if blank { break }
                    }
                    break
                }
                while buf.count < size + 2 { guard try fill() else { throw HarnessError(description: "eof in chunk") } }
                if !discardBody { r.body.append(contentsOf: buf[0..<size]) }
                buf.removeFirst(size + 2)
            }
        } else if let cl = r.header("content-length"), let n = Int(cl) {
            var left = n
            while left > 0 {
                if buf.isEmpty { guard try fill() else { throw HarnessError(description: "eof with \(left) body bytes left") } }
                let take = min(left, buf.count)
                if !discardBody { r.body.append(contentsOf: buf[0..<take]) }
                buf.removeFirst(take)
                left -= take
            }
        } else {
            while try fill() {}
            r.body = buf
            buf = []
        }
        return r
    }
}

func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
    guard hay.count >= needle.count else { return nil }
    var i = 0
    while i + needle.count <= hay.count {
        if hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
        i += 1
    }
    return nil
}

/// `count` connections kept open, each proven accepted by a 200 to a request on it.
func answeredConnections(_ port: Int, _ count: Int, host: String) throws -> [Client] {
    try (0..<count).map { i in
        let c = try Client(port: port)
        c.send("GET /echo/open-\(i) HTTP/1.1\r\nHost: \(host)\r\n\r\n")
        let r = try c.readResponse()
        guard r.status == 200 else { throw HarnessError(description: "connection \(i) got \(r.status)") }
        return c
    }
}

/// One request on a fresh connection.
func request(_ port: Int, _ path: String, host: String, headers: [String] = [], from source: String? = nil) throws -> Response {
    try request(port, "GET", path, host: host, headers: headers, from: source)
}

func request(_ port: Int, _ method: String, _ path: String, host: String, headers: [String] = [], body: String? = nil, from source: String? = nil) throws -> Response {
    let c = try Client(port: port, from: source)
    var s = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n"
    for h in headers { s += h + "\r\n" }
    if let b = body { s += "Content-Length: \(b.utf8.count)\r\n" }
    s += "Connection: close\r\n\r\n"
    if let b = body { s += b }
    c.send(s)
    return try c.readResponse(headRequest: method == "HEAD")
}

func tenantJSON(name: String, hosts: [String], origins: String, routes: String, extra: String = "") -> String {
    """
    { "name": "\(name)", "hosts": [\(hosts.map { "\"\($0)\"" }.joined(separator: ","))],
      "origins": \(origins), "routes": \(routes) \(extra.isEmpty ? "" : ", " + extra) }
    """
}

/// The resident set of process `pid` in KiB (from /proc), or -1.
func rssKiB(pid: pid_t) -> Int {
    let s = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    for l in s.split(separator: "\n") where l.hasPrefix("VmRSS:") {
        return Int(l.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
    }
    return -1
}

/// Polls `condition` every 10 ms until it holds; throws after `seconds`
/// (every wait in the tests has a deadline, and none is a fixed sleep).
func waitUntil(_ what: String, seconds: Double = 20, _ condition: () throws -> Bool) throws {
    let deadline = monotonicMillis() + Int64(seconds * 1000)
    while try !condition() {
        guard monotonicMillis() < deadline else { throw HarnessError(description: "timed out after \(seconds) s waiting for: \(what)") }
        usleep(10_000)
    }
}

/// Runs a shell command to completion; returns (exit status, stdout+stderr).
/// It is killed after `seconds` (status 124, or 137 when it ignored SIGTERM).
func shell(_ command: String, seconds: Int = 120) throws -> (Int32, String) {
    let child = try ChildProcess(["timeout", "-k", "5", String(seconds), "/bin/sh", "-c", command + " 2>&1"])
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(child.stdoutFD, &buf, 4096)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    let status = child.wait()
    child.stopped = true
    close(child.stdoutFD)
    return (status, String(decoding: out, as: UTF8.self))
}

/// Writes a file with plain write(2) calls.
func writeFile(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw HarnessError(description: "cannot write \(path)") }
    defer { close(fd) }
    let b = Array(text.utf8)
    var off = 0
    while off < b.count {
        let n = b[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { throw HarnessError(description: "short write to \(path)") }
        off += n
    }
}
