// The disk tier with real edged processes, real files, SIGTERM and kill -9.
import Testing
import Foundation
import Glibc
import Synchronization
@testable import EdgeIO
import EdgeDisk
import EdgeProxy
import EdgeConfig

@Suite(.serialized, .timeLimit(.minutes(5))) struct DiskTierTests {
    /// A body for path i: distinct bytes and sizes (up to 200 KiB, some in memory files).
    func body(_ i: Int) -> String {
        let unit = "object \(i) " + String(repeating: Character(UnicodeScalar(UInt8(97 + i % 26))), count: 40) + ". "
        return String(repeating: unit, count: 1 + (i * 397) % 4000)
    }

    func scripted(_ n: Int) throws -> Origin {
        let o = try Origin(name: "disk-tier")
        for i in 0..<n {
            try script(o, "/o/\(i)", #"[{"status": 200, "headers": {"Cache-Control": "max-age=3600", "Content-Type": "text/plain"}, "body": "\#(body(i))"}]"#)
        }
        return o
    }

    func start(_ o: Origin, _ state: String, extra: String = "") throws -> (ChildProcess, Int) {
        let child = try ChildProcess(["/bin/sh", "-c", "exec '\(try edgedPath())' --origin http://\(o.address) --http 127.0.0.1:0 --workers 2 --access-log off --state '\(state)' --cache-disk 64MiB \(extra) 2>&1"])
        return (child, listeningPorts(child.read(until: "tenant(s)\n")).http)
    }

    /// Waits until every disk directory has rebuilt its index (a lookup before that
    /// is a miss by design, like nginx's cache loader): what an operator checks with
    /// `edgectl metrics` (edge_cache_disk_loading) before counting on disk hits.
    func waitLoaded(_ state: String) throws {
        try waitUntil("the disk index loaded") {
            let (status, out) = try shell("'\(try builtBinary("edgectl"))' --state '\(state)' metrics")
            let lines = out.split(separator: "\n").filter { $0.hasPrefix("edge_cache_disk_loading{") }
            return status == 0 && !lines.isEmpty && lines.allSatisfy { $0.hasSuffix(" 0") }
        }
    }

    func newState() -> String { FileManager.default.temporaryDirectory.appendingPathComponent("edged-disk-\(UUID().uuidString)").path }

    @Test func aRestartKeepsTheHits() throws {
        let o = try scripted(20)
        let state = newState()
        var (child, port) = try start(o, state)
        for i in 0..<20 { #expect(try request(port, "/o/\(i)", host: "x.test").text == body(i)) }
        kill(child.pid, SIGTERM)             // a graceful stop writes what is queued
        child.wait()
        (child, port) = try start(o, state)
        defer { child.stop() }
        try waitLoaded(state)
        for i in 0..<20 {
            let r = try request(port, "/o/\(i)", host: "x.test")
            #expect(r.text == body(i))
            #expect(r.header("Cache-Status")?.contains("hit; detail=disk") == true, "\(i): \(r.headers)")
        }
        for i in 0..<20 { #expect(try originHits(o, "/o/\(i)") == 1, "/o/\(i) went to the origin again") }
    }

    /// kill -9 at any moment (here: in the middle of writes still queued or
    /// under way), again and again: every byte served is the right one, the
    /// store opens without repair, and what was written before stays.
    /// Twice: as deployed, and with a 1 MiB memory tier (its largest object
    /// 64 KiB), where the larger bodies are written as they arrive and read
    /// back block by block: killed mid-stream, nothing wrong is ever served.
    @Test(arguments: [("", 50), ("--cache-size 1MiB", 30)])
    func killNineLoopNeverServesAWrongByte(extra: String, rounds: Int) throws {
        let n = 30
        let o = try scripted(n)
        let state = newState()
        for round in 0..<rounds {
            let (child, port) = try start(o, state, extra: extra)
            // Two clients at once, in different orders, then kill -9 without waiting.
            let bad = Mutex(0)
            let other = OSThread.spawn(name: "test-disk") { [self] in
                for i in stride(from: n - 1, through: 0, by: -1) where (i + round) % 2 == 0 {
                    if let r = try? request(port, "/o/\(i)", host: "x.test"), r.status == 200, r.text != body(i) { bad.withLock { $0 += 1 } }
                }
            }
            for i in 0..<n where (i + round) % 3 != 0 {
                let r = try request(port, "/o/\(i)", host: "x.test")
                #expect(r.status == 200 && r.text == body(i), "round \(round) /o/\(i): \(r.status) \(r.headers)")
            }
            other.join()
            #expect(bad.withLock { $0 } == 0, "round \(round): wrong bytes served")
            child.stop()                     // SIGKILL
        }
        // After the loop, a graceful run: everything is served right, and the
        // origin saw far fewer requests than the rounds made.
        let (child, port) = try start(o, state, extra: extra)
        defer { child.stop() }
        try waitLoaded(state)
        var fromDisk = 0
        for i in 0..<n {
            let r = try request(port, "/o/\(i)", host: "x.test")
            #expect(r.text == body(i))
            if r.header("Cache-Status")?.contains("detail=disk") == true { fromDisk += 1 }
        }
        #expect(fromDisk == n, "only \(fromDisk) of \(n) came back from disk (restarts reclaim nothing)")
        var total = 0
        for i in 0..<n { total += try originHits(o, "/o/\(i)") }
        #expect(total < n * 4, "origin requests \(total)")
        if !extra.isEmpty {
            // A body over 64 KiB, purged and fetched again: written as it arrived.
            let big = (0..<n).first { body($0).utf8.count > 65_536 }!
            #expect(try shell("'\(try builtBinary("edgectl"))' --state '\(state)' purge http://x.test/o/\(big)").0 == 0)
            #expect(try request(port, "/o/\(big)", host: "x.test").text == body(big))
            try waitUntil("the fill written as it arrived (edge_cache_disk_streamed_writes_total)") {
                let out = try shell("'\(try builtBinary("edgectl"))' --state '\(state)' metrics").1
                let line = out.split(separator: "\n").first { $0.hasPrefix("edge_cache_disk_streamed_writes_total{") }
                return line != nil && !line!.hasSuffix(" 0")
            }
        }
    }

    /// Large objects read back from disk (their answers sent from the segment's
    /// pages with sendfile on plain sockets, encrypted from the bytes read
    /// under TLS) are byte-exact on every transport: HTTP/1.1 whole and by
    /// Range, HTTP/1.1 over TLS, HTTP/2; and again from memory afterwards.
    @Test func largeDiskHitsAreByteExactOnEveryTransport() throws {
        let o = try scripted(0)
        defer { o.stop() }
        // Four distinct bodies of 60-140 KB, one per transport (each is a disk hit once).
        func big(_ i: Int) -> String {
            var s = ""
            for k in 0..<(1500 + i * 500) { s += "line \(k) of \(i) " + String(repeating: Character(UnicodeScalar(UInt8(97 + (k + i) % 26))), count: 40 + k % 37) + "|" }
            return s
        }
        for i in 0..<4 {
            try script(o, "/big/\(i)", #"[{"status": 200, "headers": {"Cache-Control": "max-age=3600", "Content-Type": "application/octet-stream"}, "body": "\#(big(i))"}]"#)
        }
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("edge-disk-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: cache) }
        // The store as edged makes it from `"cache": {"memory": "8MiB", "disks": [{"path": …, "size": "64MiB"}]}`.
        func store() throws -> TieredStore {
            var sc = ServerConfig()
            sc.cacheMemoryBytes = 8 << 20
            return try TieredStore(memory: RuntimeConfig.memoryStore(sc), disks: [(cache, 64 << 20)], maxObjectBytes: Int(sc.cacheMaxObjectBytes))
        }
        let tenant = tenantJSON(name: "d", hosts: ["d.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                routes: #"[{"prefix": "/", "origin": "o"}]"#, extra: #""tls": "internal""#)
        var e = try Edge(tenants: [tenant], store: try store())
        // (The scheme is part of the key: the TLS ones are filled over TLS.)
        func curl(_ e: Edge, _ i: Int, _ version: String) throws -> (ok: Bool, head: String) {
            let out = e.dir.appendingPathComponent("body\(i)").path
            let (st, head) = try shell("curl -s -m 30 \(version) -D - -o '\(out)' --cacert '\(e.stateDir)/ca.pem' --resolve d.test:\(e.httpsPort):127.0.0.1 https://d.test:\(e.httpsPort)/big/\(i)")
            let got = FileManager.default.contents(atPath: out).map { Array($0) } ?? []
            return (st == 0 && got == Array(big(i).utf8), head)
        }
        for i in 0..<2 { #expect(try request(e.port, "/big/\(i)", host: "d.test").text == big(i)) }
        for i in 2..<4 { #expect(try curl(e, i, "--http1.1").ok) }
        e.stop()
        (e.server.config.store as? TieredStore)?.close()   // what edged does at a graceful stop: writes what is queued
        e = try Edge(tenants: [tenant], store: try store())
        defer { e.stop(); (e.server.config.store as? TieredStore)?.close() }
        try waitUntil("the disk index loaded") { e.server.config.store.tiers.allSatisfy { !$0.loading } }
        func fromDisk(_ head: String) -> Bool { head.lowercased().contains("cache-status: edge; hit; detail=disk") }
        // HTTP/1.1 on a plain socket: the whole body.
        var r = try request(e.port, "/big/0", host: "d.test")
        #expect(r.status == 200 && r.text == big(0) && fromDisk("cache-status: " + (r.header("Cache-Status") ?? "")), "\(r.headers)")
        // A Range of a disk hit (its blocks, read as sent), then the whole of it (read and promoted).
        r = try request(e.port, "/big/1", host: "d.test", headers: ["Range: bytes=1000-50999"])
        let whole = Array(big(1).utf8)
        #expect(r.status == 206 && r.body == Array(whole[1000...50999]), "\(r.status) \(r.headers)")
        #expect(fromDisk("cache-status: " + (r.header("Cache-Status") ?? "")), "\(r.headers)")
        r = try request(e.port, "/big/1", host: "d.test")
        #expect(r.status == 200 && r.body == whole && fromDisk("cache-status: " + (r.header("Cache-Status") ?? "")), "\(r.status) \(r.headers)")
        // HTTP/1.1 and HTTP/2 over TLS.
        for (i, version) in [(2, "--http1.1"), (3, "--http2")] {
            let (ok, head) = try curl(e, i, version)
            #expect(ok, "\(version): \(head)")
            #expect(fromDisk(head), "\(version): \(head)")
        }
        // Then from memory (promoted), the same bytes.
        for i in 0..<2 {
            let m = try request(e.port, "/big/\(i)", host: "d.test")
            let status = m.header("Cache-Status") ?? ""
            #expect(m.text == big(i) && status.hasPrefix("edge; hit;") && !status.contains("disk"), "\(m.headers)")
        }
        for (i, version) in [(2, "--http2"), (3, "--http1.1")] {
            let (ok, head) = try curl(e, i, version)
            #expect(ok && head.lowercased().contains("cache-status: edge; hit; ttl"), "\(version): \(head)")
        }
        for i in 0..<4 { #expect(try originHits(o, "/big/\(i)") == 1) }
    }

    @Test func aPurgeBeforeKillNineHoldsAfterRestart() throws {
        let o = try scripted(3)
        let state = newState()
        var (child, port) = try start(o, state)
        for i in 0..<3 { _ = try request(port, "/o/\(i)", host: "x.test") }
        kill(child.pid, SIGTERM); child.wait()
        (child, port) = try start(o, state)
        let (status, out) = try shell("'\(try builtBinary("edgectl"))' --state '\(state)' purge http://x.test/o/1")
        #expect(status == 0, "\(out)")
        child.stop()                         // kill -9 right after the purge
        (child, port) = try start(o, state)
        defer { child.stop() }
        let r = try request(port, "/o/1", host: "x.test")
        #expect(r.text == body(1))
        #expect(r.header("Cache-Status")?.contains("fwd=") == true, "purged, yet served from disk: \(r.headers)")
        #expect(try request(port, "/o/2", host: "x.test").header("Cache-Status")?.contains("detail=disk") == true)
        #expect(try originHits(o, "/o/1") == 2)
    }

    /// What edgectl and /metrics say of the disk tier after a restart: the
    /// directory in service, the objects it loaded, the tier of each variant.
    @Test func statsMetricsAndExplainShowTheDiskTier() throws {
        let o = try scripted(4)
        let state = newState()
        var (child, port) = try start(o, state)
        for i in 0..<4 { _ = try request(port, "/o/\(i)", host: "x.test") }
        kill(child.pid, SIGTERM); child.wait()
        (child, port) = try start(o, state)
        defer { child.stop() }
        let ctl = "'\(try builtBinary("edgectl"))' --state '\(state)'"
        // Before any hit: all four are on disk only.
        var (status, out) = try shell("\(ctl) explain http://x.test/o/2")
        #expect(status == 0, "\(out)")
        #expect(out.contains("* selected: on disk"), "\(out)")
        (status, out) = try shell("\(ctl) stats")
        #expect(status == 0, "\(out)")
        #expect(out.contains("cache disk \(state)/cache: in service"), "\(out)")
        #expect(out.contains("loaded 4 objects"), "\(out)")
        #expect(out.contains("on disk"), "per-tenant disk bytes: \(out)")
        (status, out) = try shell("\(ctl) stats --json")
        let stats = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        let disks = (stats?["cache"] as? [String: Any])?["disks"] as? [[String: Any]] ?? []
        #expect(disks.count == 1 && disks.first?["objects"] as? Int == 4 && disks.first?["in_service"] as? Bool == true, "\(out)")
        // A hit reads it back into memory; explain then says memory.
        #expect(try request(port, "/o/2", host: "x.test").header("Cache-Status")?.contains("detail=disk") == true)
        (status, out) = try shell("\(ctl) explain http://x.test/o/2")
        #expect(out.contains("* selected: status 200"), "\(out)")
        (status, out) = try shell("\(ctl) metrics")
        #expect(out.contains("edge_cache_objects{tier=\"disk\",path=\"\(state)/cache\"} 4"), "\(out)")
        #expect(out.contains("edge_cache_disk_in_service{tier=\"disk\",path=\"\(state)/cache\"} 1"), "\(out)")
        // Two reads: explain's (it reads to check the record, and does not promote) and the hit's.
        #expect(out.contains("edge_cache_disk_reads_total{tier=\"disk\",path=\"\(state)/cache\"} 2"), "\(out)")
        #expect(out.contains("edge_cache_disk_loaded_objects{tier=\"disk\",path=\"\(state)/cache\"} 4"), "\(out)")
    }

    /// A disk hit whose record the page cache holds is read by the worker itself
    /// (RWF_NOWAIT, no trip through the reader pool); one whose pages were
    /// dropped goes to the pool. Both byte-exact, both counted.
    @Test func pageCacheRecordsAreReadOnTheWorkerOthersByThePool() throws {
        let o = try scripted(6)
        let state = newState()
        var (child, port) = try start(o, state)
        for i in 0..<6 { _ = try request(port, "/o/\(i)", host: "x.test") }
        kill(child.pid, SIGTERM); child.wait()   // (a graceful stop writes and syncs what is queued)
        // The segments' pages leave the page cache (clean after the stop's sync).
        // Readahead still in flight can bring some back after the advice: it is
        // given again until mincore finds none of them resident (under a loaded
        // suite that can take a while: up to 5 s).
        func dropPages() throws -> Bool {
            let dir = state + "/cache"
            for _ in 0..<250 {
                var resident = 0
                for f in try FileManager.default.contentsOfDirectory(atPath: dir) {
                    let fd = open(dir + "/" + f, O_RDONLY)
                    guard fd >= 0 else { continue }
                    _ = fdatasync(fd)
                    _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED))
                    resident += residentPages(fd)
                    close(fd)
                }
                if resident == 0 { return true }
                usleep(20_000)
            }
            return false
        }
        #expect(try dropPages())
        (child, port) = try start(o, state)
        defer { child.stop() }
        try waitLoaded(state)
        let ctl = "'\(try builtBinary("edgectl"))' --state '\(state)'"
        func counts() throws -> (reads: Int, pageCache: Int) {
            let (_, out) = try shell("\(ctl) stats --json")
            let stats = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
            let d = ((stats?["cache"] as? [String: Any])?["disks"] as? [[String: Any]])?.first ?? [:]
            return (d["reads"] as? Int ?? -1, d["page_cache_reads"] as? Int ?? -1)
        }
        // Not in the page cache: the pool reads it. (Pages dropped just before
        // each try; on a loaded machine something can bring a record's pages
        // back in between, once in a fresh-clone CI run: then that hit was
        // the worker's, and the next object is tried, up to three.)
        var c = (reads: 0, pageCache: 0)
        var byPool = false
        for i in 1...3 where !byPool {
            #expect(try dropPages(), "the segments' pages stayed in the page cache")
            let r = try request(port, "/o/\(i)", host: "x.test")
            #expect(r.text == body(i) && r.header("Cache-Status")?.contains("detail=disk") == true, "\(r.headers)")
            let before = c
            c = try counts()
            #expect(c.reads == before.reads + 1, "\(c)")
            byPool = c.pageCache == before.pageCache
        }
        #expect(byPool, "every hit was read from the page cache: \(c)")
        // The segment read into the page cache (as a busy server's would be): the worker reads it.
        for f in try FileManager.default.contentsOfDirectory(atPath: state + "/cache") {
            _ = FileManager.default.contents(atPath: state + "/cache/" + f)
        }
        let r = try request(port, "/o/4", host: "x.test")
        #expect(r.text == body(4) && r.header("Cache-Status")?.contains("detail=disk") == true, "\(r.headers)")
        let before = c
        c = try counts()
        #expect(c.reads == before.reads + 1 && c.pageCache == before.pageCache + 1, "\(c)")
        let (_, human) = try shell("\(ctl) stats")
        #expect(human.contains("reads \(c.reads) (\(c.pageCache) from the page cache on a worker)"), "\(human)")
        for i in 0..<6 { #expect(try originHits(o, "/o/\(i)") == 1) }
    }

    /// A full disk (a 384 KiB tmpfs under a 64 MiB cache, in a mount
    /// namespace of the test's own): the writes fail with ENOSPC, the
    /// directory goes out of service, and every request is still served
    /// right, from memory and the origin.
    @Test func aFullDiskNeverFailsARequest() throws {
        let n = 24
        let o = try scripted(n)
        let state = newState()
        try FileManager.default.createDirectory(atPath: state + "/cache", withIntermediateDirectories: true)
        let child = try ChildProcess(["/usr/bin/unshare", "-m", "/bin/sh", "-c",
            "mount -t tmpfs -o size=384k edge-full '\(state)/cache' && exec '\(try edgedPath())' --origin http://\(o.address) --http 127.0.0.1:0 --workers 2 --access-log off --state '\(state)' --cache-disk 64MiB 2>&1"])
        defer { child.stop() }
        let port = listeningPorts(child.read(until: "tenant(s)\n")).http
        let ctl = "'\(try builtBinary("edgectl"))' --state '\(state)'"
        var full = false
        for round in 0..<3 {
            for i in 0..<n {
                let r = try request(port, "/o/\(i)", host: "x.test")
                #expect(r.status == 200 && r.text == body(i), "round \(round) /o/\(i): \(r.status)")
            }
            usleep(1_200_000)                // the writer's turn
            let (_, out) = try shell("\(ctl) stats")
            if out.contains("OUT OF SERVICE: ") && out.contains("No space left on device") { full = true; break }
        }
        #expect(full, "the directory never went out of service on a full disk")
        let (_, metrics) = try shell("\(ctl) metrics")
        #expect(metrics.contains("edge_cache_disk_in_service{tier=\"disk\",path=\"\(state)/cache\"} 0"))
        // Still served, and the ones memory holds are hits.
        for i in 0..<n { #expect(try request(port, "/o/\(i)", host: "x.test").text == body(i)) }
        #expect(try request(port, "/o/0", host: "x.test").header("Cache-Status")?.contains("hit") == true)
    }
}

/// Pages of a file in the page cache (mmap and mincore; 0 for an empty file).
func residentPages(_ fd: Int32) -> Int {
    var st = stat()
    guard fstat(fd, &st) == 0, st.st_size > 0 else { return 0 }
    let size = Int(st.st_size), page = Int(sysconf(Int32(_SC_PAGESIZE)))
    guard let m = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), m != MAP_FAILED else { return 0 }
    defer { munmap(m, size) }
    var vec = [UInt8](repeating: 0, count: (size + page - 1) / page)
    guard mincore(m, size, &vec) == 0 else { return 0 }
    return vec.reduce(0) { $0 + Int($1 & 1) }
}
