// Objects too large for the memory tier, served from disk as they are read
// (EdgeDisk/BlockBody.swift), with real sockets, curl over TLS and HTTP/2.
import Testing
import Foundation
import Glibc
import Synchronization
@testable import EdgeIO
import EdgeDisk
import EdgeProxy
import EdgeConfig

@Suite(.serialized, .timeLimit(.minutes(5))) struct DiskStreamTests {
    /// 1.5 MB of distinct lines.
    static let huge: String = {
        var s = ""
        for k in 0..<30_000 { s += "line \(k) " + String(repeating: Character(UnicodeScalar(UInt8(97 + k % 26))), count: 30 + k % 17) + "|" }
        return s
    }()

    /// A directory for a test's disk tier (the test removes it).
    static func cacheDir() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("edge-stream-\(UUID().uuidString)").path
    }

    /// The store edged makes from `"cache": {"memory": memory, "disks": [{"path": dir, "size": disk}]}`.
    static func store(_ dir: String, memory: Int64, disk: Int64, queueBudget: Int = 32 << 20) throws -> TieredStore {
        var sc = ServerConfig()
        sc.cacheMemoryBytes = memory
        return try TieredStore(memory: RuntimeConfig.memoryStore(sc), disks: [(dir, disk)], maxObjectBytes: Int(sc.cacheMaxObjectBytes),
                               queueBudget: queueBudget)
    }

    /// An edged for `tenant` over a store of `memory` and `disk` bytes in a
    /// directory of its own; `stop` ends the three.
    struct DiskEdge {
        let e: Edge, store: TieredStore, cache: String
        init(_ tenant: String, memory: Int64, disk: Int64, queueBudget: Int = 32 << 20, server: String? = nil) throws {
            cache = DiskStreamTests.cacheDir()
            store = try DiskStreamTests.store(cache, memory: memory, disk: disk, queueBudget: queueBudget)
            e = try Edge(tenants: [tenant], server: server, store: store)
        }
        func stop() { e.stop(); store.close(); try? FileManager.default.removeItem(atPath: cache) }
    }

    /// `n` clients at once for `path` (of `huge`): each one's status, whether
    /// its body was `huge` exactly, and its Cache-Status.
    static func atOnce(_ n: Int, _ port: Int, _ path: String) -> [(Int, Bool, String)] {
        let whole = Array(huge.utf8)
        let results = Mutex<[(Int, Bool, String)]>([])
        let clients = (0..<n).map { i in
            OSThread.spawn(name: "client-\(i)") {
                let r = try? request(port, path, host: "d.test")
                results.withLock { $0.append((r?.status ?? 0, r?.body == whole, r?.header("Cache-Status") ?? "")) }
            }
        }
        for t in clients { t.join() }
        return results.withLock { $0 }
    }

    /// Tenant d.test, one route to `o`.
    static func tenant(_ o: Origin, extra: String = "") -> String {
        tenantJSON(name: "d", hosts: ["d.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#, routes: #"[{"prefix": "/", "origin": "o"}]"#, extra: extra)
    }

    /// A memory tier of 1 MiB (its largest object 64 KiB) over a 64 MiB
    /// directory: a 1.5 MB object lives on disk alone (its fill is written
    /// there as it arrives), and every hit on it
    /// reads its head, then its body a block at a time as it is sent:
    /// byte-exact over HTTP/1.1, TLS and HTTP/2; a Range reads just the
    /// block it needs; HEAD and a conditional read no body at all.
    @Test func anObjectTooLargeForMemoryIsSentFromDiskAsItIsRead() throws {
        let o = try Origin(name: "disk-stream")
        defer { o.stop() }
        try script(o, "/huge", #"[{"status": 200, "headers": {"Cache-Control": "max-age=3600", "Content-Type": "application/octet-stream", "ETag": "\"h1\""}, "body": "\#(Self.huge)"}]"#)
        let tenant = tenantJSON(name: "d", hosts: ["d.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                routes: #"[{"prefix": "/", "origin": "o", "compress": true}]"#, extra: #""tls": "internal""#)
        let d = try DiskEdge(tenant, memory: 1 << 20, disk: 64 << 20)
        defer { d.stop() }
        let (e, store) = (d.e, d.store)
        #expect(store.memory.maxObjectBytes == 64 << 10)
        let whole = Array(Self.huge.utf8)
        // The miss stores it (on disk: too large for memory).
        var r = try request(e.port, "/huge", host: "d.test")
        #expect(r.status == 200 && r.body.count == whole.count)
        store.flush()
        #expect(store.disks[0].objectCount == 1 && store.memory.objectCount == 0)
        #expect(store.disks[0].streamedWrites.load(ordering: .relaxed) == 1, "the fill was written as it arrived")
        func fromDisk(_ r: Response) -> Bool { (r.header("Cache-Status") ?? "").contains("hit; detail=disk") }
        func readBytes() -> Int { store.tiers[0].readBytes }
        // HTTP/1.1, plain: the whole body, as it is read.
        var before = readBytes()
        r = try request(e.port, "/huge", host: "d.test", headers: ["Accept-Encoding: gzip"])
        let exact = r.body == whole
        #expect(r.status == 200 && exact && fromDisk(r), "\(r.status) \(r.headers)")
        #expect(r.header("Content-Encoding") == nil && r.header("Content-Length") == String(whole.count))
        #expect(readBytes() - before >= whole.count && readBytes() - before < whole.count + 32_768)
        // To a plain socket, every byte from the segment's pages (sendfile), none copied.
        #expect(store.tiers[0].sentFromPages == whole.count, "\(store.tiers[0].sentFromPages) of \(whole.count) bytes sent from the pages")
        // A Range reads the head and the one block it falls in.
        before = readBytes()
        r = try request(e.port, "/huge", host: "d.test", headers: ["Range: bytes=700000-700999"])
        let part = r.body == Array(whole[700_000...700_999])
        #expect(r.status == 206 && part && fromDisk(r), "\(r.status) \(r.headers)")
        #expect(r.header("Content-Range") == "bytes 700000-700999/\(whole.count)")
        #expect(readBytes() - before <= 16_384 + 65_536, "a 1,000-byte range read \(readBytes() - before) bytes")
        // A suffix range, across a block boundary at the end.
        r = try request(e.port, "/huge", host: "d.test", headers: ["Range: bytes=-70000"])
        let tail = r.body == Array(whole[(whole.count - 70_000)...])
        #expect(r.status == 206 && tail, "\(r.status) \(r.headers)")
        // HEAD and If-None-Match: the head alone.
        before = readBytes()
        r = try request(e.port, "HEAD", "/huge", host: "d.test")
        #expect(r.status == 200 && r.body.isEmpty && r.header("Content-Length") == String(whole.count) && fromDisk(r))
        r = try request(e.port, "/huge", host: "d.test", headers: ["If-None-Match: \"h1\""])
        #expect(r.status == 304 && r.body.isEmpty)
        #expect(readBytes() - before <= 2 * 16_384, "HEAD and 304 read no body")
        // TLS (the scheme is part of the key: filled over TLS first), then HTTP/1.1 and HTTP/2 (curl).
        func curl(_ version: String) throws -> (ok: Bool, head: String) {
            let out = e.dir.appendingPathComponent("huge\(version)").path
            let (st, head) = try shell("curl -s -m 30 \(version) -D - -o '\(out)' --cacert '\(e.stateDir)/ca.pem' --resolve d.test:\(e.httpsPort):127.0.0.1 https://d.test:\(e.httpsPort)/huge")
            let got = FileManager.default.contents(atPath: out).map { Array($0) } ?? []
            return (st == 0 && got == whole, head)
        }
        #expect(try curl("--http1.1").ok)
        store.flush()
        for version in ["--http1.1", "--http2"] {
            let (ok, head) = try curl(version)
            #expect(ok, "\(version): \(head)")
            #expect(head.lowercased().contains("hit; detail=disk"), "\(version): \(head)")
        }
        #expect(store.memory.objectCount == 0, "never promoted to memory")
        #expect(try originHits(o, "/huge") == 2)
    }

    /// An object that fits memory, on disk alone after a restart: a Range of
    /// it reads the head and the block it falls in (not the whole record),
    /// and promotes nothing; a full request then reads it whole and promotes
    /// it, and the next Range comes from memory. Stale, a Range reads the
    /// record whole after all, so that it is revalidated: the origin gets a
    /// conditional request and its 304 refreshes the object.
    @Test func aRangeOfADiskObjectThatFitsMemoryReadsOnlyItsBlocks() throws {
        let o = try Origin(name: "disk-range")
        defer { o.stop() }
        try script(o, "/huge", #"[{"status": 200, "headers": {"Cache-Control": "max-age=3600", "Content-Type": "application/octet-stream", "ETag": "\"h1\""}, "body": "\#(Self.huge)"}]"#)
        try script(o, "/soon", #"[{"status": 200, "headers": {"Cache-Control": "max-age=2", "Content-Type": "application/octet-stream", "ETag": "\"s1\""}, "body": "\#(Self.huge)"}, {"status": 304, "headers": {"Cache-Control": "max-age=600", "ETag": "\"s1\""}}]"#)
        let cache = Self.cacheDir()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        func store() throws -> TieredStore { try Self.store(cache, memory: 64 << 20, disk: 64 << 20) }
        let tenant = Self.tenant(o)
        let whole = Array(Self.huge.utf8)
        var s = try store()
        #expect(s.memory.maxObjectBytes > whole.count, "it fits memory")
        var e = try Edge(tenants: [tenant], store: s)
        let filled = Date()
        for path in ["/huge", "/soon"] { #expect(try request(e.port, path, host: "d.test").body == whole) }
        e.stop(); s.close()   // (a graceful stop writes what is queued)
        s = try store()
        e = try Edge(tenants: [tenant], store: s)
        defer { e.stop(); s.close() }
        try waitUntil("the disk index loaded") { s.tiers.allSatisfy { !$0.loading } }
        #expect(s.disks[0].objectCount == 2 && s.memory.objectCount == 0)
        func status(_ r: Response) -> String { r.header("Cache-Status") ?? "" }
        func readBytes() -> Int { s.tiers[0].readBytes }
        // A Range: the head and one block, from disk; nothing promoted.
        var before = readBytes()
        var r = try request(e.port, "/huge", host: "d.test", headers: ["Range: bytes=700000-700999"])
        var part = r.body == Array(whole[700_000...700_999])
        #expect(r.status == 206 && part && status(r).contains("hit; detail=disk"), "\(r.status) \(r.headers)")
        #expect(readBytes() - before <= 16_384 + 65_536, "a 1,000-byte range read \(readBytes() - before) bytes")
        #expect(s.memory.objectCount == 0)
        // The whole object: read whole and promoted; then a Range from memory.
        before = readBytes()
        r = try request(e.port, "/huge", host: "d.test")
        let exact = r.body == whole
        #expect(r.status == 200 && exact && status(r).contains("hit; detail=disk"), "\(r.status) \(r.headers)")
        #expect(readBytes() - before >= whole.count && s.memory.objectCount == 1)
        before = readBytes()
        r = try request(e.port, "/huge", host: "d.test", headers: ["Range: bytes=-70000"])
        part = r.body == Array(whole[(whole.count - 70_000)...])
        #expect(r.status == 206 && part && status(r).hasPrefix("edge; hit;") && !status(r).contains("disk"), "\(r.status) \(r.headers)")
        #expect(readBytes() == before)
        #expect(try originHits(o, "/huge") == 1)
        // Stale: the Range reads it whole, and it is revalidated.
        let wait = 2.3 - Date().timeIntervalSince(filled)
        if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
        r = try request(e.port, "/soon", host: "d.test", headers: ["Range: bytes=1000-1999"])
        part = r.body == Array(whole[1000...1999])
        #expect(r.status == 206 && part, "\(r.status) \(r.headers)")
        let log = try request(o.port, "GET", "/__log?path=/soon", host: "o")
        let heads = (try JSONSerialization.jsonObject(with: Data(log.body)) as? [[[String]]]) ?? []
        #expect(heads.count == 2 && (heads.last ?? []).contains { $0[0].lowercased() == "if-none-match" && $0[1] == "\"s1\"" }, "\(heads)")
        r = try request(e.port, "/soon", host: "d.test")
        #expect(r.body == whole && status(r).hasPrefix("edge; hit;") && !status(r).contains("disk"), "\(r.headers)")
    }

    /// A slow reader of an 8 MB disk hit (a 4 KiB receive buffer; edged's send
    /// buffer tops out at 4 MiB, so its sends come up short): each send goes on
    /// after EPOLLOUT from the pages the page cache still holds, and every byte
    /// arrives right.
    @Test func aSlowReaderOfALargeDiskHitIsSentFromThePagesStillCached() throws {
        let o = try Origin(name: "disk-slow")
        defer { o.stop() }
        let d = try DiskEdge(Self.tenant(o), memory: 1 << 20, disk: 256 << 20, server: #"{"limits": {"send_timeout": "60s"}}"#)
        defer { d.stop() }
        let (e, store) = (d.e, d.store)
        let size = 8_000_000
        let whole = try request(e.port, "/text/\(size)", host: "d.test").body
        #expect(whole.count == size)
        store.flush()
        #expect(store.disks[0].objectCount == 1 && store.memory.objectCount == 0)
        let reader = e.dir.appendingPathComponent("slow.py").path, out = e.dir.appendingPathComponent("slow.out").path
        try Data("""
            import socket, sys, time
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", int(sys.argv[1])))
            s.sendall(b"GET /text/\(size) HTTP/1.1\\r\\nHost: d.test\\r\\nConnection: close\\r\\n\\r\\n")
            data = bytearray()
            while True:
                d = s.recv(65536)
                if not d: break
                data += d
                time.sleep(0.0002)
            sys.stdout.buffer.write(data[data.find(b"\\r\\n\\r\\n") + 4:])
            """.utf8).write(to: URL(fileURLWithPath: reader))
        let before = store.tiers[0].sentFromPages
        let (st, msg) = try shell("python3 '\(reader)' \(e.port) > '\(out)'")
        let exact = FileManager.default.contents(atPath: out).map { Array($0) == whole } ?? false
        #expect(st == 0 && exact, "\(msg)")
        // (All but a few blocks: a block whose pages leave the page cache while
        // the client holds back goes from the checked copy instead. Under a loaded
        // suite that happened once, to 1 block of 123; with the continuation's
        // page-cache check off, about half of them go so.)
        let fromPages = store.tiers[0].sentFromPages - before
        #expect(fromPages >= size - 4 * 65_536, "\(fromPages) of \(size) bytes sent from the pages")
        #expect(try o.stats().requests == 1, "the origin was asked once")
    }

    /// Six clients at once for an object too large for memory, from a slow
    /// origin: one fetch, written to disk as it arrives; the collapsed
    /// followers read it from disk as it is written, or, parked until its end
    /// (a follower that came before its head), wait for its last write and
    /// are answered from disk (none fetches it again).
    @Test func collapsedFollowersOfAStreamedFillAreAnsweredFromDisk() throws {
        let o = try Origin(name: "disk-stream-collapse")
        defer { o.stop() }
        try script(o, "/slow", #"[{"status": 200, "delay_ms": 300, "headers": {"Cache-Control": "max-age=3600", "Content-Type": "application/octet-stream"}, "body": "\#(Self.huge)"}]"#)
        let d = try DiskEdge(Self.tenant(o), memory: 1 << 20, disk: 64 << 20)
        defer { d.stop() }
        let (e, store) = (d.e, d.store)
        let all = Self.atOnce(6, e.port, "/slow")
        #expect(all.count == 6 && all.allSatisfy { $0.0 == 200 && $0.1 }, "\(all.map { ($0.0, $0.1, $0.2) })")
        #expect(try originHits(o, "/slow") == 1, "\(all.map { $0.2 })")
        #expect(store.disks[0].streamedWrites.load(ordering: .relaxed) == 1)
    }

    /// A leader for `path` (an origin /gate or /rgate of `size` bytes, holding
    /// back half way) that has the first half, and a collapsed follower answered
    /// at once (its head checked) that has the blocks written to disk so far.
    static func followerReadingWhileWritten(_ port: Int, _ path: String, _ size: Int) throws -> (leader: Client, follower: Client) {
        let leader = try Client(port: port)
        leader.send("GET \(path) HTTP/1.1\r\nHost: d.test\r\n\r\n")
        // The leader takes the first half (so the fill has it, whatever the socket buffers).
        try waitUntil("the leader has the first half") { try leader.buf.count >= size / 2 || !leader.fill() }
        let follower = try Client(port: port)
        follower.send("GET \(path) HTTP/1.1\r\nHost: d.test\r\n\r\n")
        let headEnd = try follower.readUntil([13, 10, 13, 10], "no head for the follower while the origin holds back")
        let head = String(decoding: follower.buf[0..<headEnd], as: UTF8.self)
        #expect(head.contains("detail=collapsed") && head.contains("Content-Length: \(size)"), "\(head)")
        // The origin sent the first half: the whole pieces of it written so far
        // (256 KiB each, three of them) reach the follower before the rest exists.
        try waitUntil("the follower has the blocks written so far") { try follower.buf.count - headEnd - 4 >= 3 * 262_144 || !follower.fill() }
        #expect(follower.buf.count - headEnd - 4 >= 3 * 262_144)
        return (leader, follower)
    }

    /// A fill too large for memory whose origin holds back half way: a
    /// collapsed follower is answered at once and gets the blocks already
    /// written to disk while the origin holds back (read from the record as
    /// it is written, each block checked), then the rest; one origin request,
    /// every byte right. A Range follower waits for the stored object.
    @Test func collapsedFollowersReadALargeFillFromDiskWhileItIsWritten() throws {
        let o = try Origin(name: "disk-rww")
        defer { o.stop() }
        let d = try DiskEdge(Self.tenant(o), memory: 1 << 20, disk: 64 << 20)
        defer { d.stop() }
        let (e, store) = (d.e, d.store)
        let size = 2_000_000, path = "/gate/2000000/rww"
        let whole = [UInt8](repeating: 103, count: size / 2) + [UInt8](repeating: 104, count: size - size / 2)
        let (leader, follower) = try Self.followerReadingWhileWritten(e.port, path, size)
        let ranged = try Client(port: e.port)
        ranged.send("GET \(path) HTTP/1.1\r\nHost: d.test\r\nRange: bytes=0-9\r\n\r\n")
        usleep(100_000)
        #expect(ranged.isOpenWithNothingToRead(), "the Range follower was answered before the object was complete")
        #expect(try request(o.port, "POST", "/__release/rww", host: "o").status == 200)
        let r = try follower.readResponse()
        #expect(r.status == 200 && r.body.count == size && r.body == whole)
        let l = try leader.readResponse()
        #expect(l.status == 200 && l.body == whole)
        let part = try ranged.readResponse()
        #expect(part.status == 206 && part.body == Array(whole[0...9]))
        #expect(try o.stats().requests == 1, "one origin request")
        store.flush()
        #expect(store.disks[0].streamedWrites.load(ordering: .relaxed) == 1 && store.memory.objectCount == 0)
        #expect(store.tiers[0].readFailures == 0)
    }

    /// A disk slower than the origin (the writer waits 30 ms before each
    /// write; a write queue with room for one 256 KiB piece): a 1.5 MB fill
    /// too large for memory is held back to the disk's pace, not dropped.
    /// Three clients at once get every byte, from one origin request; the
    /// object is stored with no write dropped, and is a disk hit afterwards.
    @Test func aFillFasterThanItsDiskWaitsForTheDiskInsteadOfBeingDropped() throws {
        let o = try Origin(name: "disk-slow-writes")
        defer { o.stop() }
        try script(o, "/big", #"[{"status": 200, "headers": {"Cache-Control": "max-age=3600", "Content-Type": "application/octet-stream"}, "body": "\#(Self.huge)"}]"#)
        let d = try DiskEdge(Self.tenant(o), memory: 1 << 20, disk: 64 << 20, queueBudget: 320 << 10)
        defer { d.stop() }
        let (e, store) = (d.e, d.store)
        store.disks[0].writeDelayMicros.store(30_000, ordering: .relaxed)
        let whole = Array(Self.huge.utf8)
        let all = Self.atOnce(3, e.port, "/big")
        #expect(all.count == 3 && all.allSatisfy { $0.0 == 200 && $0.1 }, "\(all)")
        #expect(try originHits(o, "/big") == 1, "\(all.map { $0.2 })")
        store.disks[0].writeDelayMicros.store(0, ordering: .relaxed)
        store.flush()
        #expect(store.disks[0].streamedWrites.load(ordering: .relaxed) == 1, "the fill was stored")
        #expect(store.disks[0].writeDrops.load(ordering: .relaxed) == 0, "no write dropped")
        #expect(store.tiers[0].fillHolds > 0, "the fill waited for room")
        #expect(e.server.metricsText().contains("edge_cache_disk_fill_holds_total{tier=\"disk\",path=\"\(d.cache)\"} \(store.tiers[0].fillHolds)"))
        let r = try request(e.port, "/big", host: "d.test")
        #expect(r.body == whole && (r.header("Cache-Status") ?? "").contains("detail=disk"), "\(r.headers)")
    }

    /// A disk that does not catch up within the origin's read timeout (the
    /// writer waits 1 s before each write; the tenant's origin read timeout is
    /// 300 ms): the fill gives up storing and the response goes on, whole.
    @Test func aFillHeldBackPastTheOriginReadTimeoutIsServedWholeAndNotStored() throws {
        let o = try Origin(name: "disk-stuck-writes")
        defer { o.stop() }
        try script(o, "/big", #"[{"status": 200, "headers": {"Cache-Control": "max-age=3600", "Content-Type": "application/octet-stream"}, "body": "\#(Self.huge)"}]"#)
        let d = try DiskEdge(Self.tenant(o, extra: #""limits": {"origin_read_timeout": "300ms"}"#), memory: 1 << 20, disk: 64 << 20, queueBudget: 320 << 10)
        defer { d.stop() }
        let (e, store) = (d.e, d.store)
        store.disks[0].writeDelayMicros.store(1_000_000, ordering: .relaxed)
        let r = try request(e.port, "/big", host: "d.test")
        #expect(r.status == 200 && r.body == Array(Self.huge.utf8), "\(r.status) \(r.body.count) bytes")
        store.disks[0].writeDelayMicros.store(0, ordering: .relaxed)
        store.flush()
        #expect(store.disks[0].streamedWrites.load(ordering: .relaxed) == 0 && store.disks[0].objectCount == 0, "not stored")
    }

    /// Flips a byte of the stored copy of `body` in `dir`'s segments, `offset`
    /// bytes into it (the first copy of the 64 bytes there that is still intact).
    static func flip(_ dir: String, at body: [UInt8], _ offset: Int) throws -> Bool {
        let marker = Array(body[offset..<(offset + 64)])
        for name in try FileManager.default.contentsOfDirectory(atPath: dir).filter({ $0.hasPrefix("seg-") }).sorted() {
            let fd = open(dir + "/" + name, O_RDWR)
            defer { close(fd) }
            var st = stat()
            fstat(fd, &st)
            var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
            _ = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
            guard let at = find(bytes, marker) else { continue }
            var b: UInt8 = bytes[at] ^ 0x20
            _ = pwrite(fd, &b, 1, off_t(at))
            return true
        }
        return false
    }

    /// A collapsed follower reading a large fill from disk while it is written,
    /// and the disk tier gives that fill up part way (its writes held back past
    /// the origin's read timeout): the follower is not cut off. The bytes it has
    /// not had are asked of the origin (`Range` from where it stopped, `If-Range`
    /// the response's tag) and spliced on: every byte right, for both clients.
    @Test func aFollowerWhoseFillTheDiskGaveUpIsFinishedFromTheOrigin() throws {
        let o = try Origin(name: "disk-resume")
        defer { o.stop() }
        let d = try DiskEdge(Self.tenant(o, extra: #""limits": {"origin_read_timeout": "300ms"}"#), memory: 1 << 20, disk: 64 << 20,
                             queueBudget: 320 << 10)
        defer { d.stop() }
        let (e, store) = (d.e, d.store)
        let size = 2_000_000, path = "/rgate/2000000/resume"
        let whole = [UInt8](repeating: 103, count: size / 2) + [UInt8](repeating: 104, count: size - size / 2)
        let (leader, follower) = try Self.followerReadingWhileWritten(e.port, path, size)
        // From here the disk does not keep up: the fill is held back past the
        // origin's read timeout and given up, and its record with it.
        store.disks[0].writeDelayMicros.store(1_000_000, ordering: .relaxed)
        defer { store.disks[0].writeDelayMicros.store(0, ordering: .relaxed) }
        #expect(try request(o.port, "POST", "/__release/resume", host: "o").status == 200)
        let l = try leader.readResponse()
        #expect(l.status == 200 && l.body == whole, "leader: \(l.status), \(l.body.count) bytes")
        let r = try follower.readResponse()
        #expect(r.status == 200 && r.body.count == size && r.body == whole, "follower: \(r.status), \(r.body.count) bytes")
        let log = try originLog(o, path)
        #expect(log.count == 2, "\(log)")
        if log.count == 2 {
            let ask = log[1]["range"] ?? ""
            let from = Int(ask.dropFirst("bytes=".count).split(separator: "-").first ?? "") ?? -1
            #expect(ask.hasPrefix("bytes=") && ask.hasSuffix("-\(size - 1)") && from >= 3 * 262_144 && from < size, "\(ask)")
            #expect(log[1]["if-range"] == "\"rgate-\(size)\"", "\(log[1])")
        }
        #expect(e.server.metricsText().contains("edge_stream_resumes_total{outcome=\"spliced\"} 1"))
        store.flush()
        #expect(store.disks[0].streamedWrites.load(ordering: .relaxed) == 0, "the fill was given up")
    }

    /// A large object on disk alone with a byte flipped far into its body: a
    /// hit sends the blocks before it, then its check fails. The rest is asked
    /// of the origin and spliced on (every byte right), and the object is a
    /// miss afterwards; from an origin that ignores Range too (its 200 is
    /// spliced on from where the client stopped), over TLS and HTTP/2, and for
    /// a Range across that block. An origin whose answer to that ask carries another tag
    /// is not spliced on: the answer ends short and the connection closes.
    @Test func aDiskHitWhoseBlockFailsItsCheckIsFinishedFromTheOrigin() throws {
        let o = try Origin(name: "disk-resume-flip")
        defer { o.stop() }
        let tenant = tenantJSON(name: "d", hosts: ["d.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                routes: #"[{"prefix": "/", "origin": "o"}]"#, extra: #""tls": "internal""#)
        let d = try DiskEdge(tenant, memory: 1 << 20, disk: 64 << 20)
        defer { d.stop() }
        let (e, store) = (d.e, d.store)
        let whole = Array(Self.huge.utf8)
        /// /flip over TLS by curl (`version`): whether it came whole.
        func curl(_ version: String) throws -> Bool {
            let out = e.dir.appendingPathComponent("flip\(version)").path
            let (st, head) = try shell("curl -s -m 30 \(version) -D - -o '\(out)' --cacert '\(e.stateDir)/ca.pem' --resolve d.test:\(e.httpsPort):127.0.0.1 https://d.test:\(e.httpsPort)/flip")
            let got = FileManager.default.contents(atPath: out).map { Array($0) } ?? []
            if got != whole { print("curl \(version): exit \(st), \(got.count) bytes, \(head)") }
            return st == 0 && got == whole
        }
        /// /flip answers with tag `first`, then `then` (a Range with a 206 when `ranges`, else ignored).
        func scriptTags(_ first: String, _ then: String, ranges: Bool = true) throws {
            try script(o, "/flip", #"[{"status": 200, "ranges": true, "headers": {"Cache-Control": "max-age=3600", "ETag": "\"\#(first)\"", "Content-Type": "application/octet-stream"}, "body": "\#(Self.huge)"}, {"status": 200, "ranges": \#(ranges), "headers": {"Cache-Control": "max-age=3600", "ETag": "\"\#(then)\"", "Content-Type": "application/octet-stream"}, "body": "\#(Self.huge)"}]"#)
        }
        /// Stores /flip on disk (one origin request; over TLS when `tls`), then flips a byte 1 MB into its body there.
        func storeAndFlip(tls: Bool = false) throws {
            if tls { #expect(try curl("--http1.1")) } else { #expect(try request(e.port, "/flip", host: "d.test").body == whole) }
            store.flush()
            #expect(try Self.flip(d.cache, at: whole, 1_000_000), "the body's bytes were not found on disk")
        }
        try scriptTags("v1", "v1")
        try storeAndFlip()
        let r = try request(e.port, "/flip", host: "d.test")
        #expect(r.status == 200 && r.body == whole && (r.header("Cache-Status") ?? "").contains("detail=disk"), "\(r.status) \(r.body.count) bytes, \(r.headers)")
        let log = try originLog(o, "/flip")
        #expect(log.count == 2 && (log.last?["range"] ?? "").hasSuffix("-\(whole.count - 1)") && log.last?["if-range"] == "\"v1\"", "\(log)")
        #expect(store.tiers[0].readFailures >= 1)
        #expect(e.server.metricsText().contains("edge_stream_resumes_total{outcome=\"spliced\"} 1"))

        // An origin that ignores Range answers the ask with the whole body: the bytes sent already are skipped.
        try scriptTags("v1", "v1", ranges: false)
        try storeAndFlip()
        let whole200 = try request(e.port, "/flip", host: "d.test")
        #expect(whole200.status == 200 && whole200.body == whole, "\(whole200.status) \(whole200.body.count) bytes")
        #expect(try originLog(o, "/flip").last?["range"] != nil)
        #expect(e.server.metricsText().contains("edge_stream_resumes_total{outcome=\"spliced\"} 2"))

        // Over TLS and HTTP/2 (the scheme is part of the key: filled over TLS).
        try scriptTags("v1", "v1")
        try storeAndFlip(tls: true)
        #expect(try curl("--http2"))
        // A Range across the flipped block: from where its check failed to the range's end.
        try scriptTags("v1", "v1")
        try storeAndFlip()
        let ranged = try request(e.port, "/flip", host: "d.test", headers: ["Range: bytes=900000-1099999"])
        #expect(ranged.status == 206 && ranged.body == Array(whole[900_000...1_099_999]), "\(ranged.status) \(ranged.body.count) bytes")
        #expect(try originLog(o, "/flip").last?["range"] == "bytes=983040-1099999")
        #expect(e.server.metricsText().contains("edge_stream_resumes_total{outcome=\"spliced\"} 4"))

        // Again, and the origin's object has changed meanwhile (another tag).
        try scriptTags("v2", "v3")
        try storeAndFlip()
        let c = try Client(port: e.port)
        c.send("GET /flip HTTP/1.1\r\nHost: d.test\r\n\r\n")
        #expect(throws: (any Error).self, "an answer spliced from another representation") { try c.readResponse() }
        #expect(c.closedByPeer())
        // The origin answered, so it is no origin error (its health is not marked down).
        let errors = e.server.metricsText().split(separator: "\n").filter { $0.hasPrefix("edge_origin_errors_total{") }
        #expect(!errors.isEmpty && errors.allSatisfy { $0.hasSuffix(" 0") }, "\(errors)")
        #expect(e.server.metricsText().contains("edge_stream_resumes_total{outcome=\"asked\"} 5"))
        #expect(e.server.metricsText().contains("edge_stream_resumes_total{outcome=\"spliced\"} 4"))
    }

    /// A fill too large for memory, written to disk as it arrives, whose
    /// origin connection closes half way (the origin still up): the leader asks
    /// for the rest (Range, If-Range) and its fill goes on with it, so the
    /// follower reading the record while it is written never sees the break;
    /// the object is stored whole and is a byte-exact disk hit afterwards.
    @Test func aDiskFillWhoseOriginBreaksOffGoesOnWithTheRest() throws {
        let o = try Origin(name: "disk-relay-resume")
        defer { o.stop() }
        let d = try DiskEdge(Self.tenant(o), memory: 1 << 20, disk: 64 << 20)
        defer { d.stop() }
        let (e, store) = (d.e, d.store)
        let size = 2_000_000, path = "/rgate/2000000/relay"
        let whole = [UInt8](repeating: 103, count: size / 2) + [UInt8](repeating: 104, count: size - size / 2)
        let (leader, follower) = try Self.followerReadingWhileWritten(e.port, path, size)
        #expect(try request(o.port, "POST", "/__break/relay", host: "o").status == 200)
        for (name, c) in [("leader", leader), ("follower", follower)] {
            let r = try c.readResponse()
            #expect(r.status == 200 && r.body == whole, "\(name): \(r.status), \(r.body.count) bytes")
        }
        let log = try originLog(o, path)
        #expect(log.count == 2 && log.last?["range"] == "bytes=1000000-1999999" && log.last?["if-range"] == "\"rgate-\(size)\"", "\(log)")
        store.flush()
        #expect(store.disks[0].streamedWrites.load(ordering: .relaxed) == 1, "the fill was stored")
        let hit = try request(e.port, path, host: "d.test")
        #expect(hit.body == whole && (hit.header("Cache-Status") ?? "").contains("detail=disk"), "\(hit.headers)")
        #expect(try originLog(o, path).count == 2)
    }

    /// A disk hit whose block fails its check when its origin is down (out of
    /// rotation after three failures): the answer is cut short after the bytes
    /// before that block, every one of them right, with nothing after them
    /// (no error head in the middle of a body), and the connection closes.
    @Test func aBrokenDiskHitWhoseOriginIsDownEndsShortWithNoWrongByte() throws {
        let o = try Origin(name: "disk-resume-down")
        defer { o.stop() }
        let d = try DiskEdge(Self.tenant(o), memory: 1 << 20, disk: 64 << 20)
        defer { d.stop() }
        let (e, store) = (d.e, d.store)
        let whole = Array(Self.huge.utf8)
        try script(o, "/down", #"[{"status": 200, "ranges": true, "headers": {"Cache-Control": "max-age=3600", "ETag": "\"d1\"", "Content-Type": "application/octet-stream"}, "body": "\#(Self.huge)"}]"#)
        #expect(try request(e.port, "/down", host: "d.test").body == whole)
        store.flush()
        #expect(try Self.flip(d.cache, at: whole, 1_000_000), "the body's bytes were not found on disk")
        o.stop()
        for i in 0..<3 { #expect(try request(e.port, "/other/\(i)", host: "d.test").status == 502) }
        let c = try Client(port: e.port)
        c.send("GET /down HTTP/1.1\r\nHost: d.test\r\n\r\n")
        let headEnd = try c.readUntil([13, 10, 13, 10], "no head")
        while try c.fill() {}
        let body = Array(c.buf[(headEnd + 4)...])
        #expect(body.count >= 65_536 && body.count < whole.count && body == Array(whole[0..<body.count]), "\(body.count) bytes, a prefix: \(body == Array(whole.prefix(body.count)))")
        #expect(e.server.metricsText().contains("edge_stream_resumes_total{outcome=\"asked\"} 1"))
    }
}
