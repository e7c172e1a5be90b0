// The disk tier's index rebuild, measured: writes N small objects through the
// tiered store (as edged stores them), closes it, then reopens the directory
// and times the loader until every object is indexed; prints objects/s and the
// index's memory per object (resident memory before and after the load).
//
// usage: edge-disk-bench fill DIR N [BODY-BYTES=200]
//        edge-disk-bench load DIR            (run after `fill`; tools/bench/disk.sh drops the page cache between)
import Glibc
import EdgeCache
import EdgeHTTP
import EdgeDisk
import EdgeIO

func die(_ s: String) -> Never { print(s); exit(2) }

func residentBytes() -> Int {
    let fd = open("/proc/self/statm", O_RDONLY)
    defer { close(fd) }
    var buf = [UInt8](repeating: 0, count: 128)
    let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, 128) }
    let fields = String(decoding: buf[0..<max(0, n)], as: UTF8.self).split(separator: " ")
    return (fields.count > 1 ? Int(fields[1]) ?? 0 : 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

let args = CommandLine.arguments
guard args.count >= 3 else { die("usage: edge-disk-bench fill DIR N [BODY-BYTES] | load DIR") }
let dir = args[2]
let capacity: Int64 = 4 << 30        // the ring must hold them all (sparse files: only what is written takes space)

switch args[1] {
case "fill":
    guard args.count >= 4, let n = Int(args[3]) else { die("fill DIR N") }
    let bodyBytes = args.count > 4 ? Int(args[4]) ?? 200 : 200
    let s = try TieredStore(memory: MemoryStore(capacity: 16 << 20), disks: [(dir, capacity)], maxObjectBytes: 1 << 20, tenants: ["bench"])
    while s.disks.contains(where: { $0.directory.loading }) { usleep(1000) }
    let body = [UInt8](repeating: 120, count: bodyBytes)
    let fresh = Freshness(lifetime: 86_400, source: .maxAge, correctedInitialAge: 0, responseTime: wallClock().seconds, mustRevalidate: false,
                          noCache: false, staleWhileRevalidate: nil, staleIfError: nil)
    let headers = HeaderList([("Content-Type", "text/plain"), ("Cache-Control", "max-age=86400"), ("ETag", "\"bench\"")])
    let every = max(1, min(20_000, (16 << 20) / (bodyBytes + 300)))
    let started = monotonicMillis()
    for i in 0..<n {
        let r = StoredResponse(key: "5:bench|https|bench.test|/objects/\(i)", variant: "", vary: [], tenant: "bench", status: 200,
                               headers: headers, body: body, freshness: fresh)
        s.insert(r, startedAt: nil)
        if i % every == every - 1 { s.flush() }     // the write queue has a budget (32 MiB): let it drain
    }
    s.flush()
    let t = s.tiers[0]
    s.close()
    print("filled \(t.objects) objects (\(t.bytes) bytes, \(t.writeDrops) dropped) in \(monotonicMillis() - started) ms")
case "load":
    let before = residentBytes()
    let started = monotonicMillis()
    let s = try TieredStore(memory: MemoryStore(capacity: 16 << 20), disks: [(dir, capacity)], maxObjectBytes: 1 << 20, tenants: ["bench"])
    while s.disks.contains(where: { $0.directory.loading }) { usleep(200) }
    let ms = monotonicMillis() - started
    let t = s.tiers[0]
    let after = residentBytes()
    print("indexed \(t.loadedObjects) objects in \(ms) ms (\(t.loadedObjects * 1000 / Int(max(1, ms))) objects/s); "
          + "index \((after - before) / max(1, t.loadedObjects)) bytes per object (resident \(before >> 20) -> \(after >> 20) MiB)")
    s.close()
default:
    die("usage: edge-disk-bench fill DIR N [BODY-BYTES] | load DIR")
}
