// Session ticket keys: one process-wide ring shared by every worker thread,
// so a ticket issued by one worker resumes on any other, rotated on a schedule.
//
// Concurrency: the ring is a Mutex-protected value; OpenSSL calls the ticket
// callback from whichever worker thread runs the handshake. The lock is held
// for a key lookup or a rotation only (no I/O).
import Synchronization
import COpenSSL
import CEdgeShims
import Glibc

/// The key ring's policy, pure: which key encrypts, which keys still decrypt.
public struct TicketKeyRing: Sendable {
    public struct Key: Sendable, Equatable {
        public var name: [UInt8]    // 16 bytes, sent in the ticket
        public var aes: [UInt8]     // 32 bytes
        public var hmac: [UInt8]    // 32 bytes
        public var created: Int64
    }
    /// Newest last. The newest encrypts; all of them decrypt.
    public private(set) var keys: [Key] = []
    public var rotationSeconds: Int64 { didSet { rotationSeconds = max(1, rotationSeconds) } }
    /// How many keys are kept (the current one plus older ones for decryption).
    public let keep: Int

    public init(rotationSeconds: Int64, keep: Int = 3) {
        self.rotationSeconds = max(1, rotationSeconds)
        self.keep = max(1, keep)
    }

    /// Adds a new current key when the current one is older than the rotation period.
    public mutating func rotateIfDue(now: Int64, random: () -> [UInt8]) {
        if let last = keys.last, now - last.created < rotationSeconds { return }
        keys.append(Key(name: Array(random().prefix(16)), aes: Array(random().prefix(32)), hmac: Array(random().prefix(32)), created: now))
        if keys.count > keep { keys.removeFirst(keys.count - keep) }
    }

    public var current: Key? { keys.last }

    /// The key for a ticket's key name, and whether it is the current one.
    public func lookup(name: UnsafePointer<UInt8>) -> (Key, isCurrent: Bool)? {
        for (i, k) in keys.enumerated().reversed() {
            var same = true
            for j in 0..<16 where k.name[j] != name[j] { same = false; break }
            if same { return (k, i == keys.count - 1) }
        }
        return nil
    }
}

func randomBytes(_ n: Int) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: n)
    _ = RAND_bytes(&b, Int32(n))
    return b
}

/// The process-wide ring used by every server SSL_CTX.
public final class TicketKeys: Sendable {
    public static let shared = TicketKeys()
    let ring = Mutex(TicketKeyRing(rotationSeconds: 12 * 3600))

    /// Sets the rotation period. Keys already issued stay, so a config reload
    /// never invalidates the tickets clients hold.
    public func configure(rotationSeconds: Int64) {
        ring.withLock { $0.rotationSeconds = rotationSeconds }
    }

    func encryptionKey(now: Int64) -> TicketKeyRing.Key? {
        ring.withLock { r in
            r.rotateIfDue(now: now) { randomBytes(32) }
            return r.current
        }
    }

    func decryptionKey(name: UnsafePointer<UInt8>) -> (TicketKeyRing.Key, Bool)? {
        ring.withLock { r in r.lookup(name: name).map { ($0.0, $0.isCurrent) } }
    }
}

/// OpenSSL's ticket callback: 1 = done, 2 = done but reissue with the current key, 0 = unknown key.
let ticketCallback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt8>?, OpaquePointer?, OpaquePointer?, Int32) -> Int32 = {
    _, name, iv, cctx, hctx, enc in
    guard let name, let iv, let cctx, let hctx else { return -1 }
    if enc == 1 {
        guard let k = TicketKeys.shared.encryptionKey(now: Int64(time(nil))) else { return -1 }
        guard RAND_bytes(iv, 16) == 1 else { return -1 }
        for j in 0..<16 { name[j] = k.name[j] }
        var hmac = k.hmac
        return edge_ticket_crypt_init(1, cctx, hctx, k.aes, &hmac, iv)
    }
    guard let (k, isCurrent) = TicketKeys.shared.decryptionKey(name: name) else { return 0 }
    var hmac = k.hmac
    guard edge_ticket_crypt_init(0, cctx, hctx, k.aes, &hmac, iv) == 1 else { return -1 }
    return isCurrent ? 1 : 2
}
