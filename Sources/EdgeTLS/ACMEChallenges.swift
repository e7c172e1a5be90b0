// The ACME challenges being answered right now, for every listener of the
// process: http-01 tokens (answered by the proxy's acme phase on the plain
// listener) and tls-alpn-01 certificates (chosen in the ClientHello callback
// when the client offers only "acme-tls/1").
//
// Concurrency: written by the ACME manager's threads, read by the workers.
// The table sits behind a Mutex; `pending` (how many challenges of each kind
// are up) is an atomic the workers read first, so a worker takes the lock only
// while a challenge of that kind is up and the request asks for one.
import Synchronization
import COpenSSL

public final class ACMEChallenges: Sendable {
    public static let shared = ACMEChallenges()

    struct Table {
        /// token → (host it was issued for, the key authorization to answer).
        var http: [String: (host: String, answer: [UInt8])] = [:]
        var alpn: [String: ACMEChallengeContext] = [:]
    }
    let table = Mutex(Table())
    let httpCount = Atomic<Int>(0)
    let alpnCount = Atomic<Int>(0)

    /// http-01 challenges are up (a relaxed read: the workers' cheap test).
    @inline(__always) public var httpPending: Bool { httpCount.load(ordering: .relaxed) > 0 }
    @inline(__always) var alpnPending: Bool { alpnCount.load(ordering: .relaxed) > 0 }

    public func addHTTP(token: String, host: String, keyAuthorization: String) {
        table.withLock { t in
            t.http[token] = (host, Array(keyAuthorization.utf8))
            httpCount.store(t.http.count, ordering: .relaxed)
        }
    }

    public func removeHTTP(token: String) {
        table.withLock { t in
            t.http[token] = nil
            httpCount.store(t.http.count, ordering: .relaxed)
        }
    }

    /// The answer for `token` when it was issued for `host` (lowercase, no port).
    public func httpAnswer(token: String, host: String) -> [UInt8]? {
        table.withLock { t in
            guard let e = t.http[token], e.host == host else { return nil }
            return e.answer
        }
    }

    public func addALPN(host: String, _ ctx: ACMEChallengeContext) {
        table.withLock { t in
            t.alpn[host] = ctx
            alpnCount.store(t.alpn.count, ordering: .relaxed)
        }
    }

    public func removeALPN(host: String) {
        table.withLock { t in
            t.alpn[host] = nil
            alpnCount.store(t.alpn.count, ordering: .relaxed)
        }
    }

    /// Switches `ssl` to the challenge context for `host`, if one is up. Done
    /// under the lock: SSL_set_SSL_CTX takes its own reference before a removal
    /// could free the context.
    func useALPNContext(host: String, ssl: OpaquePointer) -> Bool {
        table.withLock { t in
            guard let c = t.alpn[host] else { return false }
            SSL_set_SSL_CTX(ssl, c.ctx)
            return true
        }
    }
}
