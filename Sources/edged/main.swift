// edged: parse flags, load and check the config, run the workers, stop on
// SIGTERM/SIGINT. Everything else lives in the libraries.
import Glibc
import CEdgeShims
import EdgeConfig
import EdgeIO
import EdgeProxy
import EdgeCache
import EdgeDisk
import EdgeAdmin
import EdgeACME
import Synchronization

let usage = """
usage: edged [options]

  --tenants DIR        tenant files, one *.json per tenant (default: tenants)
  --config FILE        server settings file (JSON: http, workers, limits, trusted_proxies, access_log)
  --http ADDR:PORT     plain HTTP listener (default :8080)
  --https ADDR:PORT    TLS listener for tenants with "tls" (default :8443 when any has it)
  --workers N          worker threads, each with its own listener (default: one per core)
  --state DIR          state directory; edged writes edged.pid there (default: state)
  --access-log WHERE   stdout (default), off, or a file path (reopened on SIGUSR1)
  --admin ADDR:PORT    also serve the admin API on loopback TCP (needs --admin-token-file);
                       it is always on the Unix socket STATE/admin.sock (mode 0600)
  --admin-token-file F the bearer token for --admin
  --origin URL         no-file mode: proxy every request to this origin (http://host:port)
  --host NAME          with --origin: only these host names (repeatable; default: every host);
                       with --https too, they get certificates from the internal CA
  --compress           with --origin: compress responses (br, gzip) for clients that take them
  --default-ttl DUR    with --origin: how long responses without explicit freshness stay
                       fresh (e.g. 60s, 10m, 1h; instead of the Last-Modified heuristic)
  --cache-dir DIR      the disk tier's directory (default: STATE/cache, 1GiB or less on a small
                       filesystem; "off": memory only)
  --cache-disk SIZE    the disk tier's size (with --cache-dir or the default directory)
  --cache-size SIZE    memory cache size for every tenant together (e.g. 512MiB, 2GiB; default 256MiB)
  --check              validate the configuration and exit (like nginx -t)
  --version            print versions and exit
  --help               this text
"""

func fail(_ message: String) -> Never {
    writeStandardError("edged: \(message)\n")
    exit(1)
}

var tenantsDir = "tenants"
var configFile: String?
var httpListen: String?
var httpsListen: String?
var workers: Int?
var stateDir: String?
var accessLog: String?
var originURL: String?
var originHosts: [String] = []
var adminListen: String?
var adminTokenFile: String?
var checkOnly = false
var compress = false
var defaultTTL: String?
var cacheSize: String?
var cacheDir: String?
var cacheDisk: String?

var args = CommandLine.arguments.dropFirst()
@MainActor func value(_ flag: String) -> String {
    guard let v = args.popFirst() else { fail("\(flag) needs a value\n\(usage)") }
    return v
}
while let a = args.popFirst() {
    switch a {
    case "--tenants": tenantsDir = value(a)
    case "--config": configFile = value(a)
    case "--http": httpListen = value(a)
    case "--https": httpsListen = value(a)
    case "--workers":
        guard let n = Int(value(a)), n > 0, n <= 1024 else { fail("--workers takes a number from 1 to 1024") }
        workers = n
    case "--state": stateDir = value(a)
    case "--access-log": accessLog = value(a)
    case "--origin": originURL = value(a)
    case "--host": originHosts.append(value(a))
    case "--admin": adminListen = value(a)
    case "--admin-token-file": adminTokenFile = value(a)
    case "--check": checkOnly = true
    case "--compress": compress = true
    case "--default-ttl": defaultTTL = value(a)
    case "--cache-size": cacheSize = value(a)
    case "--cache-dir": cacheDir = value(a)
    case "--cache-disk": cacheDisk = value(a)
    case "--version":
        print("edged 0.1.0")
        print("OpenSSL: \(String(cString: edge_openssl_version()))")
        print("zlib: \(String(cString: edge_zlib_version()))")
        let b = edge_brotli_version()
        print("brotli: \(b >> 24).\((b >> 12) & 0xFFF).\(b & 0xFFF)")
        exit(0)
    case "--help", "-h": print(usage); exit(0)
    default: fail("unknown option \(a)\n\(usage)")
    }
}

if !originHosts.isEmpty && originURL == nil { fail("--host goes with --origin") }
if (compress || defaultTTL != nil) && originURL == nil { fail("--compress and --default-ttl go with --origin (a tenant file says \"compress\" and \"default_ttl\")") }

/// Every config source given on the command line (read again by each reload).
struct Options: Sendable {
    var tenantsDir: String
    var configFile: String?
    var httpListen, httpsListen, stateDir, accessLog, originURL, adminListen, adminTokenFile: String?
    var workers: Int?
    var originHosts: [String]
    var compress = false
    var defaultTTL, cacheSize: String?
    var cacheDir, cacheDisk: String?

    /// Reads every config source (server file, flags, tenants) into a runtime config.
    /// `store`: the running cache, handed on by a reload so entries survive it.
    func load(store: (any CacheStorage)? = nil,
              makeStore: ((ServerConfig, Set<String>) throws -> any CacheStorage)? = nil) throws -> (RuntimeConfig, [TenantConfig]) {
        var server = ServerConfig()
        if let f = configFile { server = try ConfigLoader.loadServer(file: f) }
        if let h = httpListen { server.httpListen = h }
        if let h = httpsListen { server.httpsListen = h }
        if let d = stateDir { server.stateDir = d }
        if let w = workers { server.workers = w }
        if let l = accessLog { server.accessLog = l }
        if let a = adminListen { server.adminListen = a }
        if let f = adminTokenFile { server.adminTokenFile = f }
        if let s = cacheSize {
            guard let b = ConfigLoader.size(s), b >= 1 << 20 else { throw ConfigError(file: "--cache-size", field: "", message: "expected a size of at least 1MiB, like 512MiB or 2GiB") }
            server.cacheMemoryBytes = b
        }
        if let d = cacheDir {
            server.cacheDisks = d == "off" ? [] : [CacheDisk(path: d, size: 1 << 30)]
        }
        if let s = cacheDisk {
            guard let b = ConfigLoader.size(s), b >= CacheDisk.minimumSize else {
                throw ConfigError(file: "--cache-disk", field: "", message: "expected a size of at least 4MiB, like 512MiB or 20GiB")
            }
            if server.cacheDisks == nil { server.cacheDisks = [defaultDisk(server)] }
            for i in server.cacheDisks!.indices { server.cacheDisks![i].size = b }
        }
        if server.cacheDisks == nil { server.cacheDisks = [defaultDisk(server)] }
        let tenants: [TenantConfig]
        if let url = originURL {
            var t = try ConfigLoader.singleOriginTenant(origin: url, hosts: originHosts, https: httpsListen != nil)
            if compress { t.compress.enabled = true; for i in t.routes.indices { t.routes[i].compress = nil } }
            if let d = defaultTTL {
                guard let ms = ConfigLoader.duration(d) else { throw ConfigError(file: "--default-ttl", field: "", message: "expected a duration like 60s, 10m or 1h") }
                for i in t.routes.indices { t.routes[i].cache.defaultTTLSeconds = ms / 1000 }
            }
            tenants = [t]
        } else {
            tenants = try ConfigLoader.loadTenants(directory: tenantsDir)
        }
        let made = try store ?? makeStore?(server, Set(tenants.map(\.name)))
        return (try RuntimeConfig(server: server, tenants: tenants, store: made), tenants)
    }
}
let options = Options(tenantsDir: tenantsDir, configFile: configFile, httpListen: httpListen, httpsListen: httpsListen, stateDir: stateDir,
                      accessLog: accessLog, originURL: originURL, adminListen: adminListen, adminTokenFile: adminTokenFile,
                      workers: workers, originHosts: originHosts, compress: compress, defaultTTL: defaultTTL, cacheSize: cacheSize,
                      cacheDir: cacheDir, cacheDisk: cacheDisk)

/// The default disk tier: STATE/cache, 1 GiB, or a quarter of what the
/// filesystem has free when that is less (none below 4 MiB).
func defaultDisk(_ server: ServerConfig) -> CacheDisk {
    let dir = Path.join(server.stateDir, "cache")
    var st = statvfs()
    var probe = server.stateDir
    while statvfs(probe, &st) != 0 && probe != "/" && !probe.isEmpty { probe = Path.directory(of: probe) }
    let free = Int64(st.f_bavail) * Int64(st.f_frsize)
    return CacheDisk(path: dir, size: free > 0 ? min(1 << 30, free / 4) : 1 << 30)
}

/// The memory tier over the configured directories (each made if missing).
func openStore(_ server: ServerConfig, tenants: Set<String>) throws -> any CacheStorage {
    let memory = RuntimeConfig.memoryStore(server)
    let disks = (server.cacheDisks ?? []).filter { $0.size >= CacheDisk.minimumSize }
    if disks.isEmpty { return memory }
    for d in disks {
        guard Files.makeDirectories(d.path) else {
            throw ConfigError(file: "cache", field: "disks", message: "cannot create \(d.path): \(String(cString: strerror(errno)))")
        }
    }
    return try TieredStore(memory: memory, disks: disks.map { ($0.path, $0.size) }, maxObjectBytes: Int(server.cacheMaxObjectBytes),
                           tenants: tenants, admission: DiskAdmission(rawValue: server.cacheDiskAdmission) ?? .all,
                           log: { line in writeStandardError(line + "\n") })
}

let runtime: RuntimeConfig
let tenants: [TenantConfig]
let makeStore: ((ServerConfig, Set<String>) throws -> any CacheStorage)? = checkOnly ? nil : { try openStore($0, tenants: $1) }
do { (runtime, tenants) = try options.load(makeStore: makeStore) } catch { fail("configuration error: \(error)") }
let server = runtime.server
if checkOnly {
    // The disk tier's directories: there, or makeable, and writable.
    for d in server.cacheDisks ?? [] where d.size >= CacheDisk.minimumSize {
        var dir = d.path
        while !Files.exists(dir) && dir != "/" && !dir.isEmpty { dir = Path.directory(of: dir) }
        if dir.isEmpty { dir = "." }
        guard Files.isWritable(dir) else { fail("configuration error: cache: disks: \(d.path): \(dir) is not writable") }
    }
    print("edged: configuration OK (\(tenants.count) tenant\(tenants.count == 1 ? "" : "s"): \(tenants.map(\.name).joined(separator: ", ")))")
    exit(0)
}

// Block the signals we handle before any worker thread exists, so only the
// main thread receives them (through sigwait).
let handled: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGUSR1]
blockSignals(handled)

let edge: EdgeServer
do { edge = try EdgeServer(config: runtime) } catch { fail("\(error)") }
let pidFile = Path.join(server.stateDir, "edged.pid")
guard Files.makeDirectories(server.stateDir), Files.write(pidFile, Array("\(getpid())\n".utf8)) else {
    fail("state directory \(server.stateDir): \(String(cString: strerror(errno)))")
}

/// Reload (SIGHUP or the admin API, one at a time): validate everything first;
/// on any error keep serving the running config and report the error.
let reloading = Mutex(())
/// Keeps ACME tenants' certificates (set below, before anything reloads).
nonisolated(unsafe) var acme: ACMEManager?
@Sendable func reload() throws -> String {
    try reloading.withLock { _ in
        do {
            let (next, nextTenants) = try options.load(store: edge.config.store)
            edge.reload(next)
            acme?.update(ACMETenant.from(nextTenants, server: next.server))
            let message = "reloaded (\(nextTenants.count) tenant(s)); new connections and requests use it"
            writeStandardError("edged: \(message)\n")
            return message
        } catch {
            writeStandardError("edged: reload failed, still serving the previous configuration: \(error)\n")
            throw error
        }
    }
}
let admin: AdminServer
do {
    admin = try AdminServer(edge: edge, socketPath: Path.join(server.stateDir, "admin.sock"),
                            tcp: server.adminListen, tokenFile: server.adminTokenFile, reload: reload)
} catch {
    fail("admin API: \(error)")
}
// ACME: the manager issues what is missing and renews; a new certificate is
// served after a reload (new handshakes; open connections keep theirs).
// Always made (a thread that sleeps while nothing is due), so a tenant that a
// reload turns to ACME gets its certificate too.
do {
    let m = ACMEManager(stateDir: server.stateDir, settings: server.acme,
                        log: { line in writeStandardError("edged: \(line)\n") },
                        install: { (try? reload()) != nil })
    m.update(ACMETenant.from(tenants, server: server))
    acme = m
    admin.acme = m
}
// Fleet purges missed while this node was down are applied before it serves.
if let line = admin.syncBeforeServing() { writeStandardError("edged: \(line)\n") }
edge.start()
admin.start()
acme?.start()
var listening = "http://\(edge.httpAddress)"
if let s = edge.httpsAddress { listening += " and https://\(s)" }
writeStandardError("edged: listening on \(listening) with \(edge.workerCount) worker(s), \(tenants.count) tenant(s)\n")
var adminWhere = admin.socketPath
if let a = admin.tcpAddress { adminWhere += " and http://\(a)" }
writeStandardError("edged: admin API on \(adminWhere) (edgectl --state \(server.stateDir) ...)\n")
if let ca = runtime.internalCAPath {
    writeStandardError("edged: internal CA certificate: \(ca) (curl --cacert \(ca) ...)\n")
}

while true {
    let sig = waitForSignal(handled)
    if sig == SIGHUP {
        _ = try? reload()
        continue
    }
    if sig == SIGUSR1 {
        do { try edge.reopenLog() } catch { writeStandardError("edged: reopening the access log failed: \(error)\n") }
        continue
    }
    writeStandardError("edged: stopping (in-flight requests may finish)\n")
    acme?.stop()
    admin.stop()
    edge.stop()
    edge.wait()
    (edge.config.store as? TieredStore)?.close()
    Files.remove(pidFile)
    exit(0)
}
