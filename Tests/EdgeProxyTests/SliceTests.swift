// Sliced objects with real clients: a 5 MB file from an origin that answers
// Range as a file server does, on a route with 1 MiB slices. Ranges over TLS
// (curl, HTTP/2) and plain HTTP/1.1, whole GETs combined from slices, and
// purge by URL; and slices kept by a real edged's disk tier alone (its memory
// tier too small for them), read back byte-exact before and after a restart.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy

@Suite(.serialized, .timeLimit(.minutes(3))) struct SliceTests {
    static let size = 5_000_000
    let text = Array(originText(SliceTests.size).utf8)

    func tenant(_ o: Origin) -> String {
        tenantJSON(name: "s", hosts: ["s.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                   routes: #"[{"prefix": "/", "origin": "o", "cache": {"slice": "1MiB"}}]"#, extra: #""tls": "internal""#)
    }

    /// What the origin was asked for /ranged/5000000: each request's Range (or "-" for none).
    func ranges(_ o: Origin) throws -> [String] {
        let log = try request(o.port, "/__log?path=/ranged/5000000", host: "o")
        let entries = try JSONSerialization.jsonObject(with: Data(log.body)) as? [[[String]]] ?? []
        return entries.map { e in e.first { $0.first?.lowercased() == "range" }?.last ?? "-" }
    }

    @Test func rangesAndWholeGetsAreCombinedFromSlicesByteExact() throws {
        let o = try Origin()
        let a = try AdminEdge(tenants: [tenant(o)], server: #"{"cache": {"max_object": "2MiB"}}"#)
        defer { a.stop() }
        let edge = a.edge
        let file = edge.dir.appendingPathComponent("body").path
        func curl(_ range: String?) throws -> (head: String, body: [UInt8]) {
            let r = range.map { "-r \($0)" } ?? ""
            let (status, out) = try shell("curl -s -m 30 \(r) -D '\(file).h' -o '\(file)' --cacert '\(edge.stateDir)/ca.pem' --resolve s.test:\(edge.httpsPort):127.0.0.1 https://s.test:\(edge.httpsPort)/ranged/5000000")
            #expect(status == 0, "\(out)")
            return (try String(contentsOfFile: file + ".h", encoding: .utf8).lowercased(), try [UInt8](Data(contentsOf: URL(fileURLWithPath: file))))
        }
        // A range across three slices, over TLS: the origin is asked for whole slices.
        let first = try curl("2500000-3600000")
        #expect(first.head.contains("content-range: bytes 2500000-3600000/5000000"), "\(first.head)")
        #expect(first.body == Array(text[2_500_000...3_600_000]))
        #expect(try ranges(o) == ["bytes=2097152-4194303"])
        // Inside those slices: a hit.
        let inside = try curl("2097152-2097161")
        #expect(inside.head.contains("cache-status: edge; hit"), "\(inside.head)")
        #expect(inside.body == Array(text[2_097_152...2_097_161]))
        // A whole GET while slices are missing goes to the origin whole and stores every slice.
        let whole = try curl(nil)
        #expect(whole.body == text)
        #expect(try ranges(o) == ["bytes=2097152-4194303", "-"])
        // Now every answer comes from the slices: the whole body, its end.
        let again = try curl(nil)
        #expect(again.head.contains("cache-status: edge; hit"), "\(again.head)")
        #expect(again.body == text)
        #expect(try curl("-100").body == Array(text[(SliceTests.size - 100)...]))
        #expect(try ranges(o).count == 2)
        // Plain HTTP keys its own entries (the scheme is in the key): one whole GET
        // fills them, then ranges pipelined on one connection and a HEAD are hits.
        #expect(try request(edge.port, "/ranged/5000000", host: "s.test").body == text)
        let c = try Client(port: edge.port)
        c.send("GET /ranged/5000000 HTTP/1.1\r\nHost: s.test\r\nRange: bytes=1048570-2097161\r\n\r\nGET /ranged/5000000 HTTP/1.1\r\nHost: s.test\r\nRange: bytes=4194290-\r\n\r\n")
        for want in [1_048_570...2_097_161, 4_194_290...(SliceTests.size - 1)] {
            let r = try c.readResponse()
            #expect(r.status == 206 && r.body == Array(text[want]))
            #expect(r.header("Cache-Status")?.contains("hit") == true)
        }
        let head = try request(edge.port, "HEAD", "/ranged/5000000", host: "s.test")
        #expect(head.header("Content-Length") == "5000000" && head.header("ETag") == "\"ranged-5000000-1\"")
        #expect(try ranges(o) == ["bytes=2097152-4194303", "-", "-"])
        // A purge by URL takes the slices: the next range is fetched again.
        let (_, out) = try a.ctl("purge http://s.test/ranged/5000000")
        #expect(out.contains("purged"), "\(out)")
        let (_, outs) = try a.ctl("purge https://s.test/ranged/5000000")
        #expect(outs.contains("purged"), "\(outs)")
        #expect(try request(edge.port, "/ranged/5000000", host: "s.test", headers: ["Range: bytes=10-19"]).body == Array(text[10...19]))
        #expect(try ranges(o).last == "bytes=0-1048575")
    }

    @Test func slicesInTheDiskTierAloneAreReadBackByteExact() throws {
        let o = try Origin()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edged-slices-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/tenants", withIntermediateDirectories: true)
        try writeFile(dir + "/tenants/s.json", #"{"hosts": ["s.test"], "origins": {"o": {"servers": ["\#(o.address)"]}}, "routes": [{"prefix": "/", "origin": "o", "cache": {"slice": "1MiB"}}]}"#)
        // 4 MiB of memory in 16 shards holds nothing over 256 KiB: the 1 MiB slices live on disk only.
        try writeFile(dir + "/server.json", #"{"cache": {"memory": "4MiB", "max_object": "2MiB", "disks": [{"path": "\#(dir)/cache", "size": "64MiB"}]}}"#)
        func start() throws -> (ChildProcess, Int) {
            let child = try ChildProcess(["/bin/sh", "-c", "exec '\(try edgedPath())' --config '\(dir)/server.json' --tenants '\(dir)/tenants' --http 127.0.0.1:0 --workers 2 --access-log off --state '\(dir)/state' 2>&1"])
            return (child, listeningPorts(child.read(until: "tenant(s)\n")).http)
        }
        func metric(_ prefix: String) throws -> Int {
            let (_, out) = try shell("'\(try builtBinary("edgectl"))' --state '\(dir)/state' metrics")
            return out.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.split(separator: " ").last ?? "") } ?? -1
        }
        func diskObjects() throws -> Int { try metric("edge_cache_objects{tier=\"disk\"") }
        var (child, port) = try start()
        #expect(try request(port, "/ranged/5000000", host: "s.test").body == text)
        // The writes are behind the response: wait until the disk has the five slices.
        try waitUntil("five slices on disk") { try diskObjects() >= 5 }
        func check() throws {
            for range in [0...99, 1_048_500...1_048_700, 3_000_000...4_999_999] {
                let r = try request(port, "/ranged/5000000", host: "s.test", headers: ["Range: bytes=\(range.lowerBound)-\(range.upperBound)"])
                #expect(r.status == 206 && r.body == Array(text[range]), "\(range)")
                #expect(r.header("Cache-Status")?.contains("hit; detail=disk") == true, "\(r.header("Cache-Status") ?? "")")
            }
            #expect(try request(port, "/ranged/5000000", host: "s.test").body == text)
        }
        try check()
        // One read per slice used (1 + 2 + 3 for the ranges, 5 for the whole body): a
        // lookup that waits for one read after another keeps what it read before.
        let reads = try metric("edge_cache_disk_reads_total{")
        #expect(reads == 11, "\(reads) disk reads")
        // kill -9 and back: the slices are found again on disk.
        kill(child.pid, SIGKILL)
        child.wait()
        (child, port) = try start()
        defer { child.stop() }
        try waitUntil("the disk index loaded") { try diskObjects() >= 5 }
        try check()
        #expect(try ranges(o) == ["-"])
    }
}
