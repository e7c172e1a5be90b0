// Keeps every ACME tenant's certificate: issues the missing ones, renews at
// two thirds of the lifetime or when the server's renewal information (ARI,
// RFC 9773) suggests, retries failures with exponential back-off (and the
// server's Retry-After), and after new certificates asks edged to reload,
// which serves them on new handshakes (open connections keep theirs).
//
// Files (STATE/acme, 0700): account.key (the account's P-256 key, 0600, made
// once), certs/TENANT.pem (the chain, then the certificate's key; 0600; replaced
// by a rename). Until a tenant's file exists, edged serves a placeholder
// certificate from the internal CA, or none (`until_issued`).
//
// Concurrency: one scheduler thread, and up to `parallelism` issuance threads.
// `jobs`, `running`, `stopping`, `written`, `installPending` and `account` are
// behind `lock` (a Gate: a mutex and the condition the scheduler waits on); an
// issuance runs without it and reports back under it. Only the scheduler
// installs (reloads), so certificates issued close together are served by one
// reload, not one each. The challenge table is ACMEChallenges.shared (its own lock).
import Glibc
import EdgeJSON
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
        /// The running job is an order (else a renewal-information check).
        var ordering = false
        /// edgectl renew asked: the next run is an order whatever the schedule.
        var forced = false
        /// The certificate's ARI identifier, and when to ask the server about
        /// it next (wall clock, ms; nil: the server offers no ARI).
        var renewalID: String?
        var renewalInfoAt: Int64?
        var window: (Int64, Int64)?

        /// Whether the next run orders (else it asks for renewal information).
        func orders(now: Int64) -> Bool {
            if notAfter == nil || forced || failures > 0 || renewalID == nil || renewalInfoAt == nil { return true }
            return (renewAt ?? 0) * 1000 <= now
        }
        /// The next moment something is due: the renewal or the next ARI question.
        var nextDue: Int64? {
            guard let r = renewAt else { return nil }
            return min(r * 1000, renewalInfoAt ?? Int64.max)
        }
    }

    let stateDir: String
    let settings: ACMEServerConfig
    let log: @Sendable (String) -> Void
    /// Loads the new certificate (edged: a reload); false when that failed.
    let install: @Sendable () -> Bool
    let lock = Gate()
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

    static func wallMillis() -> Int64 { let (s, ms) = wallClock(); return s * 1000 + Int64(ms) }

    /// The tenants to keep certificates for (at start and after each reload): new
    /// ones are scheduled (at once, or spread over `start_spread`), removed ones
    /// forgotten, changed host lists re-issued.
    public func update(_ tenants: [ACMETenant]) {
        let now = Self.wallMillis()
        lock.lock()
        defer { lock.broadcast(); lock.unlock() }
        var next: [String: Job] = [:]
        for t in tenants {
            if let j = jobs[t.name], j.tenant == t { next[t.name] = j; continue }
            let seed = mix64(fnv1a(Array(t.name.utf8)))
            var j = Job(tenant: t, seed: seed)
            if let info = currentCertificate(t.name), Set(info.names) == Set(t.hosts), info.notAfter * 1000 > now {
                j.notAfter = info.notAfter
                j.serial = info.serial
                j.renewAt = ACMESchedule.renewAt(notBefore: info.notBefore, notAfter: info.notAfter, seed: seed)
                j.renewalID = info.renewalID
                if info.renewalID != nil { j.renewalInfoAt = now + ACMESchedule.firstTry(spreadMillis: settings.startSpreadMillis, seed: seed) }
                j.due = j.nextDue
            } else {
                j.due = now + ACMESchedule.firstTry(spreadMillis: settings.startSpreadMillis, seed: seed)
            }
            if let old = jobs[t.name], old.running { j.running = true; j.ordering = old.ordering }
            next[t.name] = j
        }
        jobs = next
    }

    func currentCertificate(_ tenant: String) -> CertificateInfo? {
        let path = ACMEServerConfig.certificatePath(stateDir: stateDir, tenant: tenant)
        guard let bytes = Files.read(path) else { return nil }
        return CertificateInfo(pem: String(decoding: bytes, as: UTF8.self))
    }

    /// Renews `tenant` now (edgectl renew). Returns why not when it cannot.
    public func renew(_ tenant: String) -> String? {
        lock.lock()
        defer { lock.broadcast(); lock.unlock() }
        guard var j = jobs[tenant] else { return "no ACME tenant \(tenant)" }
        if j.running && j.ordering { return "\(tenant): an order is already running" }
        j.due = 0
        j.failures = 0
        j.forced = true   // a renewal-information check under way is followed by the order
        jobs[tenant] = j
        log("acme: \(tenant): renewal asked for")
        return nil
    }

    /// Per tenant: its state, for /v1/acme and edgectl.
    public func status() -> [JSON] {
        lock.lock()
        defer { lock.unlock() }
        func iso(_ ms: Int64?) -> JSON { JSON(ms.map { HTTPDate.rfc3339($0 / 1000) }) }
        func window(_ w: (Int64, Int64)?) -> JSON { w.map { ["start": iso($0.0 * 1000), "end": iso($0.1 * 1000)] } ?? .null }
        return jobs.values.sorted { $0.tenant.name < $1.tenant.name }.map { j in
            let state = j.running && j.ordering ? "ordering" : (j.notAfter == nil ? (j.failures > 0 ? "failing" : "waiting")
                                                  : (j.failures > 0 ? "renewal failing" : (j.writtenAt > 0 ? "installing" : "valid")))
            return ["tenant": JSON(j.tenant.name), "hosts": JSON(j.tenant.hosts), "challenge": JSON(j.tenant.challenge.rawValue),
                    "directory": JSON(j.tenant.directory), "state": JSON(state),
                    "expires": iso(j.notAfter.map { $0 * 1000 }), "renews": iso(j.renewAt.map { $0 * 1000 }), "next_try": iso(j.due),
                    "failures": JSON(j.failures), "last_error": JSON(j.lastError), "serial": JSON(j.serial),
                    "renewal_info": window(j.window), "next_renewal_info": iso(j.renewalInfoAt)]
        }
    }

    public func start() {
        thread = OSThread.spawn(name: "edge-acme") { [self] in run() }
    }

    public func stop() {
        lock.lock()
        stopping = true
        lock.broadcast()
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
                j.ordering = j.orders(now: now)
                jobs[name] = j
                running += 1
                let tenant = j.tenant
                if j.ordering {
                    let replaces = j.notAfter != nil ? j.renewalID : nil
                    OSThread.detached(name: "edge-acme-issue") { [self] in issue(tenant, replaces: replaces) }
                } else {
                    let id = j.renewalID!   // orders() is true without one
                    OSThread.detached(name: "edge-acme-ari") { [self] in askRenewalInfo(tenant, id: id) }
                }
            }
            lock.wait(millis: Int(max(soonest, now + 50) - now))
        }
        lock.unlock()
    }

    /// One order for `t`, start to end, off the lock. `replaces`: the ARI
    /// identifier of the certificate it renews.
    func issue(_ t: ACMETenant, replaces: String?) {
        log("acme: \(t.name): ordering a certificate for \(t.hosts.joined(separator: ", ")) from \(t.directory) (\(t.challenge.rawValue))")
        var outcome: Result<CertificateInfo, ACMEError>
        do {
            let dir = stateDir + "/acme"
            guard Files.makeDirectories(dir + "/certs", mode: 0o700) else { throw ACMEError("cannot make \(dir)/certs: \(String(cString: strerror(errno)))") }
            let account = try accountKey(dir + "/account.key")
            let client = try ACMEClient(directory: t.directory, caFile: settings.caFile, accountKey: account) { [log] in log("acme: \(t.name): " + $0) }
            try client.account(email: t.email)
            let certKey = try ACMEKey.generate(t.keyType)
            let chain = try client.obtain(hosts: t.hosts, challenge: t.challenge.rawValue, certKey: certKey, replaces: replaces) { host, token, keyAuth in
                switch t.challenge {
                case .http01:
                    ACMEChallenges.shared.addHTTP(token: token, host: host, keyAuthorization: keyAuth)
                    return { ACMEChallenges.shared.removeHTTP(token: token) }
                case .tlsALPN01:
                    let ctx = try ACMEChallengeContext(host: host, keyAuthorization: keyAuth, now: wallClock().seconds)
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
                j.forced = false
                j.lastError = nil
                j.notAfter = info.notAfter
                j.serial = info.serial
                j.renewAt = ACMESchedule.renewAt(notBefore: info.notBefore, notAfter: info.notAfter, seed: j.seed)
                // Ask the server's renewal information at once (it may suggest another time).
                j.renewalID = info.renewalID
                j.renewalInfoAt = info.renewalID != nil ? now : nil
                j.window = nil
                j.due = j.nextDue
                log("acme: \(t.name): certificate \(info.serial) issued, valid until \(HTTPDate.rfc3339(info.notAfter)), renews at \(HTTPDate.rfc3339(j.renewAt!))")
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
        lock.broadcast()
        lock.unlock()
    }

    /// Asks the server when to renew `t`'s certificate `id` (RFC 9773) and
    /// moves the renewal into the suggested window; off the lock. A failure
    /// only delays the next question: the renewal time stays as it was.
    func askRenewalInfo(_ t: ACMETenant, id: String) {
        var outcome: Result<RenewalInfo?, ACMEError>
        do {
            let client = try ACMEClient(directory: t.directory, caFile: settings.caFile, accountKey: try accountKey(stateDir + "/acme/account.key")) { [log] in log("acme: \(t.name): " + $0) }
            outcome = .success(try client.renewalInfo(id))
        } catch let e as ACMEError {
            outcome = .failure(e)
        } catch {
            outcome = .failure(ACMEError("\(error)"))
        }
        lock.lock()
        defer { lock.broadcast(); lock.unlock() }
        running -= 1
        guard var j = jobs[t.name] else { return }
        j.running = false
        defer { jobs[t.name] = j }
        guard j.renewalID == id else { return }   // replaced meanwhile
        let now = Self.wallMillis()
        switch outcome {
        case .success(nil):
            j.renewalInfoAt = nil
        case .success(let info?):
            let at = ACMESchedule.renewalInfoAt(windowStart: info.start, windowEnd: info.end, seed: j.seed)
            let poll = ACMESchedule.renewalInfoPoll(retryAfterSeconds: info.retryAfter, floorMillis: settings.retryMinMillis)
            if j.window.map({ $0 != (info.start, info.end) }) ?? true {
                func day(_ s: Int64) -> String { HTTPDate.rfc3339(s) }
                let when = at * 1000 <= now ? "renewing now" : "renewing at \(day(at))"
                log("acme: \(t.name): renewal information suggests \(day(info.start)) to \(day(info.end)); \(when)\(info.explanation.map { " (\($0))" } ?? "")")
            }
            j.window = (info.start, info.end)
            j.renewAt = at
            j.renewalInfoAt = now + poll
        case .failure(let e):
            let retry = ACMESchedule.renewalInfoPoll(retryAfterSeconds: e.retryAfter, floorMillis: settings.retryMinMillis)
            j.renewalInfoAt = now + min(retry, settings.retryMaxMillis)
            log("acme: \(t.name): renewal information unavailable (\(e.message)); the renewal stays as planned, next question in \(Double(j.renewalInfoAt! - now) / 1000) s")
        }
        j.due = j.forced ? 0 : j.nextDue
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
