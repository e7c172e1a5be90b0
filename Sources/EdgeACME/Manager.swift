// Keeps every ACME tenant's certificate: issues the missing ones, renews at
// two thirds of the lifetime, retries failures with exponential back-off (and
// the server's Retry-After), and after each new certificate asks edged to
// reload, which serves it on new handshakes (open connections keep theirs).
//
// Files (STATE/acme, 0700): account.key (the account's P-256 key, 0600, made
// once), certs/TENANT.pem (the chain, then the certificate's key; 0600; replaced
// by a rename). Until a tenant's file exists, edged serves a placeholder
// certificate from the internal CA, or none (`until_issued`).
//
// Concurrency: one scheduler thread, and up to `parallelism` issuance threads.
// `jobs`, `running`, `stopping`, `written`, `installPending` and `account` are
// behind `lock` (an NSCondition, which the scheduler also waits on); an
// issuance runs without it and reports back under it. Only the scheduler
// installs (reloads), so certificates issued close together are served by one
// reload, not one each. The challenge table is ACMEChallenges.shared (its own lock).
import Foundation
import EdgeConfig
import EdgeHTTP
import EdgeIO
import EdgeTLS

/// One tenant as the manager sees it (from its config, at start and each reload).
public struct ACMETenant: Sendable, Equatable {
    public var name: String
    public var hosts: [String]
    public var directory: String
    public var email: String?
    public var challenge: ACMEChallengeType
    public var keyType: ACMEKeyType

    public init(name: String, hosts: [String], directory: String, email: String?, challenge: ACMEChallengeType, keyType: ACMEKeyType) {
        self.name = name; self.hosts = hosts; self.directory = directory; self.email = email; self.challenge = challenge; self.keyType = keyType
    }

    /// The ACME tenants of a config, each with the server's defaults filled in.
    public static func from(_ tenants: [TenantConfig], server: ServerConfig) -> [ACMETenant] {
        tenants.compactMap { t in
            guard case .acme(let s) = t.tls else { return nil }
            let a = server.acme
            return ACMETenant(name: t.name, hosts: t.hosts, directory: s.directory ?? a.directory, email: s.email ?? a.email,
                              challenge: s.challenge ?? a.challenge, keyType: ACMEKeyType(rawValue: s.keyType ?? a.keyType) ?? .ecdsaP256)
        }
    }
}

public final class ACMEManager: @unchecked Sendable {
    struct Job {
        var tenant: ACMETenant
        /// When to try next (wall clock, milliseconds); nil: nothing due.
        var due: Int64?
        var running = false
        var failures = 0
        var lastError: String?
        var notAfter: Int64?
        var renewAt: Int64?
        var serial: String?
        var seed: UInt64
        /// `written` when this tenant's newest certificate was written (0: none
        /// written by this run, or already served).
        var writtenAt = 0
    }

    let stateDir: String
    let settings: ACMEServerConfig
    let log: @Sendable (String) -> Void
    /// Loads the new certificate (edged: a reload); false when that failed.
    let install: @Sendable () -> Bool
    let lock = NSCondition()
    var jobs: [String: Job] = [:]
    var running = 0
    var stopping = false
    /// Certificates written so far by this run; a job is served once an
    /// install that began at or after its `writtenAt` succeeded.
    var written = 0
    /// A certificate was written and no install since has served it (a failed
    /// reload is retried each tick).
    var installPending = false
    /// The account key, read or made once (the first order), shared by all orders.
    var account: ACMEKey?
    var thread: OSThread?

    public init(stateDir: String, settings: ACMEServerConfig, log: @escaping @Sendable (String) -> Void, install: @escaping @Sendable () -> Bool) {
        self.stateDir = stateDir
        self.settings = settings
        self.log = log
        self.install = install
    }

    static func wallMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// The tenants to keep certificates for (at start and after each reload): new
    /// ones are scheduled (at once, or spread over `start_spread`), removed ones
    /// forgotten, changed host lists re-issued.
    public func update(_ tenants: [ACMETenant]) {
        let now = Self.wallMillis()
        lock.lock()
        defer { lock.signal(); lock.unlock() }
        var next: [String: Job] = [:]
        for t in tenants {
            if var j = jobs[t.name], j.tenant == t { j.tenant = t; next[t.name] = j; continue }
            let seed = mix64(fnv1a(Array(t.name.utf8)))
            var j = Job(tenant: t, seed: seed)
            if let info = currentCertificate(t.name), Set(info.names) == Set(t.hosts), info.notAfter * 1000 > now {
                j.notAfter = info.notAfter
                j.serial = info.serial
                j.renewAt = ACMESchedule.renewAt(notBefore: info.notBefore, notAfter: info.notAfter, seed: seed)
                j.due = j.renewAt! * 1000
            } else {
                j.due = now + ACMESchedule.firstTry(spreadMillis: settings.startSpreadMillis, seed: seed)
            }
            if jobs[t.name]?.running == true { j.running = true }
            next[t.name] = j
        }
        jobs = next
    }

    func currentCertificate(_ tenant: String) -> CertificateInfo? {
        let path = ACMEServerConfig.certificatePath(stateDir: stateDir, tenant: tenant)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return CertificateInfo(pem: text)
    }

    /// Renews `tenant` now (edgectl renew). Returns why not when it cannot.
    public func renew(_ tenant: String) -> String? {
        lock.lock()
        defer { lock.signal(); lock.unlock() }
        guard var j = jobs[tenant] else { return "no ACME tenant \(tenant)" }
        if j.running { return "\(tenant): an order is already running" }
        j.due = 0
        j.failures = 0
        jobs[tenant] = j
        log("acme: \(tenant): renewal asked for")
        return nil
    }

    /// Per tenant: its state, for /v1/acme and edgectl.
    public func status() -> [[String: Any]] {
        lock.lock()
        defer { lock.unlock() }
        func iso(_ ms: Int64?) -> Any { ms.map { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double($0) / 1000)) } ?? NSNull() }
        return jobs.values.sorted { $0.tenant.name < $1.tenant.name }.map { j in
            ["tenant": j.tenant.name, "hosts": j.tenant.hosts, "challenge": j.tenant.challenge.rawValue, "directory": j.tenant.directory,
             "state": j.running ? "ordering" : (j.notAfter == nil ? (j.failures > 0 ? "failing" : "waiting")
                                                : (j.failures > 0 ? "renewal failing" : (j.writtenAt > 0 ? "installing" : "valid"))),
             "expires": iso(j.notAfter.map { $0 * 1000 }), "renews": iso(j.renewAt.map { $0 * 1000 }), "next_try": iso(j.due),
             "failures": j.failures, "last_error": j.lastError ?? NSNull(), "serial": j.serial ?? NSNull()] as [String: Any]
        }
    }

    public func start() {
        thread = OSThread.spawn { [self] in run() }
    }

    public func stop() {
        lock.lock()
        stopping = true
        lock.signal()
        lock.unlock()
        thread?.join()
        thread = nil
    }

    func run() {
        lock.lock()
        while !stopping {
            if installPending {
                let upTo = written
                installPending = false
                lock.unlock()
                let ok = install()
                lock.lock()
                if ok {
                    for (name, j) in jobs where j.writtenAt > 0 && j.writtenAt <= upTo { jobs[name]!.writtenAt = 0 }
                } else {
                    installPending = true
                }
            }
            let now = Self.wallMillis()
            var soonest = now + 1000
            for name in jobs.keys.sorted() {
                guard var j = jobs[name], !j.running, let due = j.due else { continue }
                if due > now { soonest = min(soonest, due); continue }
                guard running < settings.parallelism else { break }
                j.running = true
                jobs[name] = j
                running += 1
                let tenant = j.tenant
                OSThread.detached { [self] in issue(tenant) }
            }
            _ = lock.wait(until: Date(timeIntervalSince1970: Double(max(soonest, now + 50)) / 1000))
        }
        lock.unlock()
    }

    /// One order for `t`, start to end, off the lock.
    func issue(_ t: ACMETenant) {
        log("acme: \(t.name): ordering a certificate for \(t.hosts.joined(separator: ", ")) from \(t.directory) (\(t.challenge.rawValue))")
        var outcome: Result<CertificateInfo, ACMEError>
        do {
            let dir = stateDir + "/acme"
            try FileManager.default.createDirectory(atPath: dir + "/certs", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let account = try accountKey(dir + "/account.key")
            let client = try ACMEClient(directory: t.directory, caFile: settings.caFile, accountKey: account) { [log] in log("acme: \(t.name): " + $0) }
            try client.account(email: t.email)
            let certKey = try ACMEKey.generate(t.keyType)
            let chain = try client.obtain(hosts: t.hosts, challenge: t.challenge.rawValue, certKey: certKey) { host, token, keyAuth in
                switch t.challenge {
                case .http01:
                    ACMEChallenges.shared.addHTTP(token: token, host: host, keyAuthorization: keyAuth)
                    return { ACMEChallenges.shared.removeHTTP(token: token) }
                case .tlsALPN01:
                    let ctx = try ACMEChallengeContext(host: host, keyAuthorization: keyAuth, now: Int64(Date().timeIntervalSince1970))
                    ACMEChallenges.shared.addALPN(host: host, ctx)
                    return { ACMEChallenges.shared.removeALPN(host: host) }
                }
            }
            guard let info = CertificateInfo(pem: chain) else { throw ACMEError("the certificate chain does not parse") }
            var text = chain
            if !text.hasSuffix("\n") { text += "\n" }
            try writeFileAtomically(ACMEServerConfig.certificatePath(stateDir: stateDir, tenant: t.name), text + certKey.pem, mode: 0o600)
            outcome = .success(info)
        } catch let e as ACMEError {
            outcome = .failure(e)
        } catch {
            outcome = .failure(ACMEError("\(error)"))
        }
        lock.lock()
        running -= 1
        if var j = jobs[t.name] {
            j.running = false
            let now = Self.wallMillis()
            switch outcome {
            case .success(let info):
                j.failures = 0
                j.lastError = nil
                j.notAfter = info.notAfter
                j.serial = info.serial
                j.renewAt = ACMESchedule.renewAt(notBefore: info.notBefore, notAfter: info.notAfter, seed: j.seed)
                j.due = j.renewAt! * 1000
                log("acme: \(t.name): certificate \(info.serial) issued, valid until \(Date(timeIntervalSince1970: Double(info.notAfter))), renews at \(Date(timeIntervalSince1970: Double(j.renewAt!)))")
                written += 1
                j.writtenAt = written
                installPending = true
            case .failure(let e):
                j.failures += 1
                j.lastError = e.message
                let delay = ACMESchedule.retryDelay(failures: j.failures, minMillis: settings.retryMinMillis, maxMillis: settings.retryMaxMillis,
                                                    retryAfterSeconds: e.retryAfter, seed: j.seed &+ UInt64(j.failures))
                j.due = now + delay
                let keeps = j.notAfter != nil ? "the current certificate keeps serving; " : ""
                log("acme: \(t.name): order failed (\(e.message)); \(keeps)retry \(j.failures) in \(Double(delay) / 1000) s")
            }
            jobs[t.name] = j
        }
        lock.signal()
        lock.unlock()
    }

    /// The account key: read or made on the first order, then kept in memory.
    func accountKey(_ path: String) throws -> ACMEKey {
        lock.lock()
        defer { lock.unlock() }
        if let account { return account }
        let k = try ACMEKey.loadOrCreate(path: path, type: ACMEKeyType(rawValue: settings.accountKeyType) ?? .ecdsaP256)
        account = k
        return k
    }
}
