// edged: parse flags, load and check the config, run the workers, stop on
// SIGTERM/SIGINT. Everything else lives in the libraries.
import Foundation
import CEdgeShims
import EdgeConfig
import EdgeIO
import EdgeProxy
import EdgeCache

let usage = """
usage: edged [options]

  --tenants DIR        tenant files, one *.json per tenant (default: tenants)
  --config FILE        server settings file (JSON: http, workers, limits, trusted_proxies, access_log)
  --http ADDR:PORT     plain HTTP listener (default :8080)
  --https ADDR:PORT    TLS listener for tenants with "tls" (default :8443 when any has it)
  --workers N          worker threads, each with its own listener (default: one per core)
  --state DIR          state directory; edged writes edged.pid there (default: state)
  --access-log WHERE   stdout (default), off, or a file path
  --origin URL         no-file mode: proxy every request to this origin (http://host:port)
  --host NAME          with --origin: only these host names (repeatable; default: every host);
                       with --https too, they get certificates from the internal CA
  --check              validate the configuration and exit (like nginx -t)
  --version            print versions and exit
  --help               this text
"""

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("edged: \(message)\n".utf8))
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
var checkOnly = false

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
    case "--check": checkOnly = true
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

/// Reads every config source (server file, flags, tenants) into a runtime config.
/// `store`: the running cache, handed on by a reload so entries survive it.
@MainActor func loadRuntime(store: MemoryStore? = nil) throws -> (RuntimeConfig, [TenantConfig]) {
    var server = ServerConfig()
    if let f = configFile { server = try ConfigLoader.loadServer(file: f) }
    if let h = httpListen { server.httpListen = h }
    if let h = httpsListen { server.httpsListen = h }
    if let d = stateDir { server.stateDir = d }
    if let w = workers { server.workers = w }
    if let l = accessLog { server.accessLog = l }
    let tenants: [TenantConfig]
    if let url = originURL {
        tenants = [try ConfigLoader.singleOriginTenant(origin: url, hosts: originHosts, https: httpsListen != nil)]
    } else {
        if !originHosts.isEmpty { fail("--host goes with --origin") }
        tenants = try ConfigLoader.loadTenants(directory: tenantsDir)
    }
    return (try RuntimeConfig(server: server, tenants: tenants, store: store), tenants)
}

let runtime: RuntimeConfig
let tenants: [TenantConfig]
do { (runtime, tenants) = try loadRuntime() } catch { fail("configuration error: \(error)") }
let server = runtime.server
if checkOnly {
    print("edged: configuration OK (\(tenants.count) tenant\(tenants.count == 1 ? "" : "s"): \(tenants.map(\.name).joined(separator: ", ")))")
    exit(0)
}

// Block the signals we handle before any worker thread exists, so only the
// main thread receives them (through sigwait).
let handled: [Int32] = [SIGTERM, SIGINT, SIGHUP]
blockSignals(handled)

let edge: EdgeServer
do { edge = try EdgeServer(config: runtime) } catch { fail("\(error)") }
let pidFile = (server.stateDir as NSString).appendingPathComponent("edged.pid")
do {
    try FileManager.default.createDirectory(atPath: server.stateDir, withIntermediateDirectories: true)
    try "\(getpid())\n".write(toFile: pidFile, atomically: false, encoding: .utf8)
} catch {
    fail("state directory \(server.stateDir): \(error)")
}
edge.start()
var listening = "http://\(edge.httpAddress)"
if let s = edge.httpsAddress { listening += " and https://\(s)" }
FileHandle.standardError.write(Data("edged: listening on \(listening) with \(edge.workerCount) worker(s), \(tenants.count) tenant(s)\n".utf8))
if let ca = runtime.internalCAPath {
    FileHandle.standardError.write(Data("edged: internal CA certificate: \(ca) (curl --cacert \(ca) ...)\n".utf8))
}

while true {
    let sig = waitForSignal(handled)
    if sig == SIGHUP {
        // Reload: validate everything first; on any error keep serving the running config.
        do {
            let (next, nextTenants) = try loadRuntime(store: edge.config.store)
            edge.reload(next)
            FileHandle.standardError.write(Data("edged: reloaded (\(nextTenants.count) tenant(s)); new connections and requests use it\n".utf8))
        } catch {
            FileHandle.standardError.write(Data("edged: reload failed, still serving the previous configuration: \(error)\n".utf8))
        }
        continue
    }
    FileHandle.standardError.write(Data("edged: stopping (in-flight requests may finish)\n".utf8))
    edge.stop()
    edge.wait()
    try? FileManager.default.removeItem(atPath: pidFile)
    exit(0)
}
