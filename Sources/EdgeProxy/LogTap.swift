// The live tail: access events for `edgectl log` and the dashboard's top URLs,
// kept in memory only while someone follows them.
//
// Concurrency and ownership: one ring per worker, written by that worker alone
// and read by the admin API's threads, each ring under its own Mutex (held for
// one line's copy by the writer, for a batch's copy by a reader; never while
// doing I/O). `listeners` (an Atomic) counts the readers attached: while it is
// 0 a worker's whole cost is one relaxed load per request (AccessLog
// .logExchange), and nothing is copied. A reader that falls more than a ring
// behind loses the oldest lines and is told how many (`dropped`): workers
// never wait for readers.
import Synchronization
import EdgeHTTP

/// One worker's last `LogTap.capacity` lines, numbered.
struct TapRing {
    var lines: [[UInt8]]
    var status: [Int16]
    var outcome: [UInt8]
    /// The number the next line gets (lines 0..<next were written).
    var next: UInt64 = 0

    init(capacity: Int) {
        lines = Array(repeating: [], count: capacity)
        status = Array(repeating: 0, count: capacity)
        outcome = Array(repeating: 0, count: capacity)
    }
}

/// One access event as a reader gets it: its JSON line (no newline) and the
/// facts filters use without parsing it.
public struct TapEvent: Sendable {
    public var line: [UInt8]
    public var status: Int
    public var outcome: CacheOutcome
}

public final class LogTap: Sendable {
    /// Lines kept per worker for readers that have not yet read them.
    public static let capacity = 4096
    let listeners = Atomic<Int>(0)
    let rings: [RingBox]

    final class RingBox: Sendable {
        let m = Mutex(TapRing(capacity: LogTap.capacity))
        @inline(__always) func withLock<R>(_ body: (inout TapRing) -> R) -> R { m.withLock { body(&$0) } }
    }

    public init(workers: Int) {
        rings = (0..<max(1, workers)).map { _ in RingBox() }
    }

    /// Someone follows the tail (one relaxed load).
    @inline(__always) public var listening: Bool { listeners.load(ordering: .relaxed) > 0 }

    /// A reader starts following: returns where each worker's ring is now (only
    /// lines from here on are read).
    public func attach() -> [UInt64] {
        listeners.add(1, ordering: .relaxed)
        return rings.map { r in r.withLock { $0.next } }
    }

    public func detach() {
        listeners.subtract(1, ordering: .relaxed)
    }

    /// Worker `worker`'s line (its own ring; the trailing newline is dropped).
    func publish(worker: Int, line: UnsafeRawBufferPointer, status: Int, outcome: CacheOutcome) {
        var n = line.count
        if n > 0 && line[n - 1] == 10 { n -= 1 }
        rings[worker % rings.count].withLock { r in
            let i = Int(r.next % UInt64(LogTap.capacity))
            r.lines[i].removeAll(keepingCapacity: true)
            r.lines[i].append(contentsOf: UnsafeRawBufferPointer(rebasing: line[0..<n]))
            r.status[i] = Int16(clamping: status)
            r.outcome[i] = UInt8(outcome.rawValue)
            r.next += 1
        }
    }

    /// The lines written since `cursors` (from `attach` or the last read),
    /// oldest first per worker; the cursors move on. `dropped`: lines that
    /// were overwritten before this reader got to them.
    public func read(_ cursors: inout [UInt64]) -> (events: [TapEvent], dropped: Int) {
        var out: [TapEvent] = []
        var dropped = 0
        for (w, ring) in rings.enumerated() {
            ring.withLock { r in
                var from = cursors[w]
                if r.next > from + UInt64(LogTap.capacity) {
                    dropped += Int(r.next - UInt64(LogTap.capacity) - from)
                    from = r.next - UInt64(LogTap.capacity)
                }
                while from < r.next {
                    let i = Int(from % UInt64(LogTap.capacity))
                    out.append(TapEvent(line: r.lines[i], status: Int(r.status[i]), outcome: CacheOutcome(rawValue: Int(r.outcome[i])) ?? .bypass))
                    from += 1
                }
                cursors[w] = from
            }
        }
        return (out, dropped)
    }
}

/// What `edgectl log` asks for: every condition given must hold.
public struct LogFilter: Sendable {
    public var tenant: String?
    /// An exact status (404) or a class (5 for 5xx).
    public var status: Int?
    public var statusClass: Int?
    public var cache: CacheOutcome?
    public var host: String?
    public var pathPrefix: String?

    public init() {}

    /// Parses `5xx`, `404` or `4XX`.
    public mutating func setStatus(_ s: String) -> Bool {
        let b = Array(s.utf8)
        if b.count == 3, (49...53).contains(b[0]), b[1] | 0x20 == 120, b[2] | 0x20 == 120 { statusClass = Int(b[0] - 48); return true }
        guard let n = Int(s), (100...999).contains(n) else { return false }
        status = n
        return true
    }

    public func matches(_ e: TapEvent) -> Bool {
        if let s = status, e.status != s { return false }
        if let k = statusClass, e.status / 100 != k { return false }
        if let c = cache, e.outcome != c { return false }
        if let t = tenant, jsonStringField(e.line, "tenant").map({ $0.elementsEqual(t.utf8) }) != true { return false }
        if let h = host, jsonStringField(e.line, "host").map({ $0.elementsEqual(h.lowercased().utf8) }) != true { return false }
        if let p = pathPrefix, jsonStringField(e.line, "target").map({ $0.starts(with: p.utf8) }) != true { return false }
        return true
    }
}

/// The raw (still escaped) text of the string field `key` in one of edge's
/// JSON log lines, nil when the line has none. A key cannot be forged inside
/// a value: values escape every quote.
public func jsonStringField(_ line: [UInt8], _ key: String) -> ArraySlice<UInt8>? {
    let pattern = Array("\"\(key)\":\"".utf8)
    guard line.count > pattern.count else { return nil }
    var i = 0
    outer: while i + pattern.count <= line.count {
        for k in 0..<pattern.count where line[i + k] != pattern[k] { i += 1; continue outer }
        let start = i + pattern.count
        var j = start
        while j < line.count && line[j] != 34 { j += line[j] == 92 ? 2 : 1 }
        return line[start..<min(j, line.count)]
    }
    return nil
}
