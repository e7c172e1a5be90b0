// The edged executable itself: flags, --check, no-file mode, SIGTERM.
import Foundation
import Glibc
import Testing

/// The edged binary built next to this test bundle.
func edgedPath() throws -> String {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [dir.appendingPathComponent("edged"), dir.deletingLastPathComponent().appendingPathComponent("edged")] {
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
    }
    throw HarnessError(description: "edged binary not found next to \(dir.path); build it with `swift build`")
}

/// Runs edged to completion and returns (status, stdout+stderr).
func runEdged(_ args: [String]) throws -> (Int32, String) {
    try shell(([try edgedPath()] + args).map { "'\($0)'" }.joined(separator: " "))
}

/// The ports edged says it listens on ("listening on http://127.0.0.1:P and https://127.0.0.1:Q").
/// edged is started on port 0 and asked: a port picked beforehand and closed could be taken by
/// another test's origin (port 0 too) before edged binds it.
func listeningPorts(_ text: String) -> (http: Int, https: Int?) {
    func port(after scheme: String) -> Int? {
        guard let r = text.range(of: "listening on " + scheme) ?? text.range(of: " and " + scheme) else { return nil }
        let rest = text[r.upperBound...]
        guard let colon = rest.firstIndex(of: ":") else { return nil }
        return Int(rest[rest.index(after: colon)...].prefix { $0.isNumber })
    }
    return (port(after: "http://") ?? -1, port(after: "https://"))
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct EdgedProcessTests {
    @Test func sighupReloadsAndABadFileKeepsTheRunningConfig() throws {
        let origin = try Origin(name: "hup")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edged-hup-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/tenants", withIntermediateDirectories: true)
        func write(_ hosts: String) throws {
            try #"{"hosts": [\#(hosts)], "origins": {"o": {"servers": ["\#(origin.address)"]}}, "routes": [{"prefix": "/", "origin": "o"}]}"#
                .write(toFile: dir + "/tenants/site.json", atomically: false, encoding: .utf8)
        }
        try write(#""a.test""#)
        let child = try ChildProcess(["/bin/sh", "-c", "exec '\(try edgedPath())' --tenants '\(dir)/tenants' --http 127.0.0.1:0 --workers 1 --access-log off --state '\(dir)/state' 2>&1"])
        defer { child.stop() }
        let started = child.read(until: "tenant(s)\n")
        #expect(started.contains("listening on"))
        let port = listeningPorts(started).http
        let keep = try Client(port: port)
        keep.send("GET /echo HTTP/1.1\r\nHost: a.test\r\n\r\n")
        #expect(try keep.readResponse().status == 200)
        // A broken file: the reload is refused, with the file and field named, and a.test keeps working.
        try #"{"hosts": ["b.test"], "origins": {"o": {"servers": ["\#(origin.address)"]}}, "routes": [{"prefix": "/", "origin": "nope"}]}"#
            .write(toFile: dir + "/tenants/site.json", atomically: false, encoding: .utf8)
        child.signal(SIGHUP)
        let refused = child.read(until: "previous configuration: ")
        #expect(refused.contains("reload failed"))
        #expect(child.read(until: "\n").contains("site.json: routes[0].origin"))
        keep.send("GET /echo HTTP/1.1\r\nHost: a.test\r\n\r\n")
        #expect(try keep.readResponse().status == 200)
        // A good change is picked up; the open connection survives it.
        try write(#""a.test", "b.test""#)
        child.signal(SIGHUP)
        #expect(child.read(until: "use it\n").contains("reloaded"))
        #expect(try request(port, "/echo", host: "b.test").status == 200)
        keep.send("GET /echo HTTP/1.1\r\nHost: a.test\r\n\r\n")
        #expect(try keep.readResponse().status == 200)
    }

    @Test func noFileModeServesHTTPSFromTheInternalCA() throws {
        let origin = try Origin(name: "nofile-tls")
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("edged-nofile-\(UUID().uuidString)").path
        let child = try ChildProcess(["/bin/sh", "-c", "exec '\(try edgedPath())' --origin http://\(origin.address) --host app.test --http 127.0.0.1:0 --https 127.0.0.1:0 --workers 1 --access-log off --state '\(state)' 2>&1"])
        defer { child.stop() }
        let started = child.read(until: "(curl --cacert")
        #expect(started.contains("internal CA certificate"))
        let https = listeningPorts(started).https ?? -1
        let (status, out) = try shell("curl -s -m 30 --cacert '\(state)/ca.pem' --resolve app.test:\(https):127.0.0.1 https://app.test:\(https)/echo/x")
        #expect(status == 0, "\(out)")
        #expect(out.contains("/echo/x"))
    }

    @Test func checkAcceptsTheExampleTenants() throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("edged-check-\(UUID().uuidString)").path
        let (status, out) = try runEdged(["--check", "--tenants", repoRoot.appendingPathComponent("tenants").path, "--state", state])
        #expect(status == 0, "\(out)")
        #expect(out.contains("configuration OK (2 tenants: api, example)"))
    }

    @Test func checkRejectsABadTenantNamingFileAndField() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edged-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try #"{"hosts": ["a.test"], "origins": {"o": {"servers": ["127.0.0.1:1"]}}, "routes": [{"prefix": "/", "origin": "missing"}]}"#
            .write(to: dir.appendingPathComponent("shop.json"), atomically: false, encoding: .utf8)
        let (status, out) = try runEdged(["--check", "--tenants", dir.path])
        #expect(status == 1)
        #expect(out.contains("shop.json: routes[0].origin: unknown origin group \"missing\""), "\(out)")
        let (s2, o2) = try runEdged(["--bogus"])
        #expect(s2 == 1 && o2.contains("unknown option --bogus"))
    }

    /// No-file mode's cache flags: --compress, --default-ttl, --cache-size.
    @Test func noFileModeFlagsCompressAndGiveADefaultLifetime() throws {
        let origin = try Origin(name: "nofile-flags")
        try script(origin, "/page", #"[{"status": 200, "headers": {"Content-Type": "text/html"}, "body": "\#(String(repeating: "edge cache ", count: 300))"}]"#)
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("edged-state-\(UUID().uuidString)").path
        let child = try ChildProcess(["/bin/sh", "-c", "exec '\(try edgedPath())' --origin http://\(origin.address) --compress --default-ttl 10m --cache-size 64MiB --http 127.0.0.1:0 --workers 1 --access-log off --state '\(state)' 2>&1"])
        defer { child.stop() }
        let port = listeningPorts(child.read(until: "tenant(s)\n")).http
        let first = try request(port, "/page", host: "x.test", headers: ["Accept-Encoding: gzip"])
        #expect(first.status == 200 && first.header("Content-Encoding") == "gzip")
        let second = try request(port, "/page", host: "x.test")
        #expect(second.header("Cache-Status")?.contains("hit") == true, "\(second.headers)")
        #expect(second.header("Cache-Status")?.contains("ttl=") == true)
        #expect(try originHits(origin, "/page") == 1)
        // Bad values are refused, naming the flag.
        let (status, out) = try runEdged(["--origin", "http://\(origin.address)", "--cache-size", "1k", "--check"])
        #expect(status != 0 && out.contains("--cache-size"), "\(out)")
        let (status2, out2) = try runEdged(["--origin", "http://\(origin.address)", "--default-ttl", "soon", "--check"])
        #expect(status2 != 0 && out2.contains("--default-ttl"), "\(out2)")
        let (status3, out3) = try runEdged(["--compress", "--check"])
        #expect(status3 != 0 && out3.contains("go with --origin"), "\(out3)")
    }

    @Test func noFileModeProxiesAndSIGTERMStopsGracefully() throws {
        let origin = try Origin(name: "nofile")
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("edged-state-\(UUID().uuidString)").path
        let child = try ChildProcess(["/bin/sh", "-c", "exec '\(try edgedPath())' --origin http://\(origin.address) --http 127.0.0.1:0 --workers 2 --access-log off --state '\(state)' 2>&1"])
        defer { child.stop() }
        let port = listeningPorts(child.read(until: "tenant(s)\n")).http
        var r: Response?
        for _ in 0..<100 {
            if let c = try? Client(port: port) {
                c.send("GET /echo/hi HTTP/1.1\r\nHost: anything.example\r\n\r\n")
                r = try c.readResponse()
                break
            }
            usleep(50_000)
        }
        #expect(r?.status == 200)
        #expect(r?.json["path"] as? String == "/echo/hi")
        #expect(FileManager.default.fileExists(atPath: state + "/edged.pid"))
        // An in-flight slow request survives SIGTERM.
        let busy = try Client(port: port)
        busy.send("GET /slow/700 HTTP/1.1\r\nHost: x\r\n\r\n")
        try waitUntil("the slow request reaches the origin") { try origin.stats().requests >= 2 }
        child.signal(SIGTERM)
        let slow = try busy.readResponse()
        #expect(slow.status == 200 && slow.text == "slow done")
        #expect(child.wait() == 0)
        child.stopped = true
        #expect(!FileManager.default.fileExists(atPath: state + "/edged.pid"))
    }

    @Test func sigusr1ReopensTheAccessLogAfterRotationAndEdgectlReaches() throws {
        let origin = try Origin(name: "rotate")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edged-rotate-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = dir + "/access.log"
        let child = try ChildProcess(["/bin/sh", "-c", "exec '\(try edgedPath())' --origin http://\(origin.address) --http 127.0.0.1:0 --workers 1 --access-log '\(log)' --state '\(dir)/state' 2>&1"])
        defer { child.stop() }
        let started = child.read(until: "admin API on")
        #expect(started.contains("listening on"))
        let port = listeningPorts(started).http
        #expect(try request(port, "/echo/before", host: "x").status == 200)
        // The worker writes its log lines at the end of its loop turn.
        try waitUntil("the first log line") { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("/echo/before") }
        #expect(rename(log, log + ".1") == 0)
        child.signal(SIGUSR1)
        // Reopening creates the file again under its name.
        try waitUntil("the access log reopened") { FileManager.default.fileExists(atPath: log) }
        #expect(try request(port, "/echo/after", host: "x").status == 200)
        try waitUntil("the second log line") { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("/echo/after") }
        let after = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(!after.contains("/echo/before"))
        let before = try String(contentsOfFile: log + ".1", encoding: .utf8)
        #expect(before.contains("/echo/before") && !before.contains("/echo/after"))
        // edgectl finds the running edged through the same state directory.
        let (status, out) = try shell("'\(try builtBinary("edgectl"))' --state '\(dir)/state' stats")
        #expect(status == 0 && out.contains("origin"), "\(out)")
    }
}
