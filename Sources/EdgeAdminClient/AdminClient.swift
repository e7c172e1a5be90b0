// A client of edged's admin API (HTTP/1.1 + JSON over its Unix socket or its
// TCP listener), shared by edgectl and by a node pulling purges from its peers
// (EdgeAdmin's FleetSync). Blocking sockets; no state.
//
// A node may be broken or hostile: answers are bounded (`maxAnswer`), each call
// has one overall deadline (`AdminNode.timeoutMillis`), and the answer's head
// goes through EdgeHTTP's response parser.
import Glibc
import EdgeIO
import EdgeHTTP
import EdgeProtect
import EdgeJSON

/// The largest answer read from a node.
public let maxAnswer = 16 << 20

/// Where an admin API is.
public struct AdminNode: Sendable {
    public var name: String
    public var socket: String?
    public var url: String?
    public var token: String?
    /// The whole exchange with this node (edgectl's --timeout).
    public var timeoutMillis = 30_000
    public init(name: String, socket: String? = nil, url: String? = nil, token: String? = nil, timeoutMillis: Int = 30_000) {
        self.name = name; self.socket = socket; self.url = url; self.token = token; self.timeoutMillis = timeoutMillis
    }
}

public func readToken(_ file: String) throws -> String {
    guard let t = Files.readText(file) else { throw AdminClientError("cannot read token file \(file)") }
    let token = t.trimmedWhitespace()
    // A CR or LF inside would end the Authorization line and inject fields of its own.
    guard !token.isEmpty, token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
        throw AdminClientError("token file \(file): the token must be one line of printable characters (no CR, LF or spaces)")
    }
    return token
}

/// The admin URL's ADDR:PORT, refused unless it is on loopback or a private
/// network (EdgeProtect.isAdminAddress): the TCP admin API speaks plain HTTP,
/// so a token sent across the internet would travel in clear.
@Sendable public func adminHTTPAddress(_ u: String) throws -> (String, SocketAddress) {
    if u.hasPrefix("https://") {
        throw AdminClientError("\(u): the admin API is plain HTTP on loopback or a private network; reach a remote node through its admin socket (for example over ssh)")
    }
    guard u.hasPrefix("http://") else { throw AdminClientError("\(u): expected http://127.0.0.1:PORT") }
    let hostPort = String(u.dropFirst(7).prefix { $0 != "/" })
    guard let addr = SocketAddress(hostPort) else { throw AdminClientError("\(u): expected http://ADDR:PORT") }
    guard isAdminAddress(addr.ipString) else {
        throw AdminClientError("\(u): not a loopback or private address; the token would cross the network in clear")
    }
    return (hostPort, addr)
}

public struct AdminClientError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A connection to a node's admin API, and the Host its requests name.
func adminConnect(_ node: AdminNode) throws -> (fd: Int32, host: String) {
    if let s = node.socket {
        do { return (try UnixSocket.connect(path: s), "localhost") } catch {
            throw AdminClientError("cannot reach edged at \(s): \(error) (is edged running with this --state?)")
        }
    }
    let u = node.url!
    let (hostPort, addr) = try adminHTTPAddress(u)
    let fd = socket(addr.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw AdminClientError("socket failed") }
    let r = addr.withSockaddr { Glibc.connect(fd, $0, $1) }
    if r != 0 { let e = String(cString: strerror(errno)); close(fd); throw AdminClientError("cannot reach edged at \(u): \(e)") }
    return (fd, hostPort)
}

/// A streamed answer (`GET /v1/log`): its status once the head is in, then
/// each line of the body as it arrives, until the node closes or `line`
/// returns false. The head must come within the node's timeout; the body may
/// take as long as it likes.
public func adminStream(_ node: AdminNode, _ path: String, status: (Int, [UInt8]) throws -> Void, line: ([UInt8]) -> Bool) throws {
    let (fd, host) = try adminConnect(node)
    defer { close(fd) }
    setSocketTimeouts(fd, millis: node.timeoutMillis)
    var head = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
    if let t = node.token { head += "Authorization: Bearer \(t)\r\n" }
    let out = Array((head + "\r\n").utf8)
    guard out.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == out.count else { throw AdminClientError("\(node.name): write failed") }
    var buf: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    var bodyStart = -1
    while true {
        let r = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if r < 0 && errno == EINTR { continue }
        if r < 0 && bodyStart < 0 { throw AdminClientError("\(node.name): no answer within \(Double(node.timeoutMillis) / 1000) s") }
        if r <= 0 { break }
        buf += chunk[0..<r]
        if bodyStart < 0 {
            var answer = ResponseHead()
            var scan = HeadScan()
            switch buf.withUnsafeBytes({ HeadParser.parseResponse($0, limits: HeadLimits(), into: &answer, scan: &scan) }) {
            case .needMore:
                if buf.count > maxAnswer { throw AdminClientError("\(node.name): answer head too large") }
                continue
            case .error(let e): throw AdminClientError("\(node.name): malformed answer (\(e.reason))")
            case .complete(let n):
                bodyStart = n
                let rest = Array(buf[n...])
                buf = []
                if answer.status != 200 {
                    // An error is a small JSON body: read it whole.
                    var body = rest
                    while body.count < 65536 {
                        let k = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                        if k <= 0 { break }
                        body += chunk[0..<k]
                    }
                    try status(answer.status, body)
                    return
                }
                try status(200, [])
                setSocketTimeouts(fd, millis: 0)   // the body: no deadline
                buf = rest
            }
        }
        while let nl = buf.firstIndex(of: 10) {
            let l = Array(buf[..<nl])
            buf.removeSubrange(...nl)
            if !line(l) { return }
        }
        if buf.count > maxAnswer { throw AdminClientError("\(node.name): a line larger than \(maxAnswer >> 20) MiB") }
    }
    if bodyStart < 0 { throw AdminClientError("\(node.name): closed before answering") }
}

/// One request to one node: (status, body).
@Sendable public func adminCall(_ node: AdminNode, _ method: String, _ path: String, body: JSON? = nil) throws -> (Int, [UInt8]) {
    let (fd, host) = try adminConnect(node)
    defer { close(fd) }
    // One deadline for the whole exchange with this node.
    let deadline = monotonicMillis() + Int64(node.timeoutMillis)
    func remaining() throws -> Int {
        let left = deadline - monotonicMillis()
        guard left > 0 else { throw AdminClientError("\(node.name): no answer within \(Double(node.timeoutMillis) / 1000) s") }
        return Int(left)
    }
    setSocketTimeouts(fd, millis: try remaining())
    let payload = body?.serialized() ?? []
    var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n"
    if let t = node.token { head += "Authorization: Bearer \(t)\r\n" }
    if body != nil { head += "Content-Type: application/json\r\n" }
    let out = Array(head.utf8) + [13, 10] + payload
    var off = 0
    while off < out.count {
        let w = out[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if w <= 0 { throw AdminClientError("\(node.name): write failed") }
        off += w
    }
    var resp: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        setSocketTimeouts(fd, millis: try remaining())
        let r = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if r < 0 {
            if errno == ECONNRESET { throw AdminClientError("\(node.name): connection reset by the node") }
            if errno == EAGAIN || errno == EWOULDBLOCK { _ = try remaining(); continue }
            throw AdminClientError("\(node.name): read failed: \(String(cString: strerror(errno)))")
        }
        if r == 0 { break }
        resp += buf[0..<r]
        if resp.count > maxAnswer { throw AdminClientError("\(node.name): answer larger than \(maxAnswer >> 20) MiB, refused") }
    }
    // The head through EdgeHTTP's response parser (the one the data path uses for origins).
    var answer = ResponseHead()
    var scan = HeadScan()
    switch resp.withUnsafeBytes({ HeadParser.parseResponse($0, limits: HeadLimits(), into: &answer, scan: &scan) }) {
    case .complete(let n):
        var body = resp[n...]
        if answer.contentLength >= 0 {
            guard body.count >= Int(answer.contentLength) else { throw AdminClientError("\(node.name): answer cut short") }
            body = body.prefix(Int(answer.contentLength))
        }
        return (answer.status, Array(body))
    case .needMore: throw AdminClientError("\(node.name): answer cut short before its head ended")
    case .error(let e): throw AdminClientError("\(node.name): malformed answer (\(e.reason))")
    }
}
