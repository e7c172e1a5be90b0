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

/// One worker's last lines: their bytes in a fixed byte ring (a line never
/// wraps: one that does not fit before the end starts over at the beginning),
/// and per line where it starts, its length, status and cache outcome, in a
/// fixed ring of `LogTap.capacity` entries. Lines are numbered from 0; a line
/// is still there while both rings have not gone round past it. Plain memory
/// (no per-line arrays): a line costs one copy in and one out.
struct TapRing: @unchecked Sendable {   // (its memory is its RingBox's, touched only under the box's Mutex)
    struct Entry { var at: UInt64; var length: Int32; var status: Int16; var outcome: UInt8 }
    let bytes: UnsafeMutablePointer<UInt8>
    let entries: UnsafeMutablePointer<Entry>
    /// The number the next line gets (lines 0..<next were written), and the
    /// byte position (counted from the start, never wrapped) the next one goes to.
    var next: UInt64 = 0
    var end: UInt64 = 0

    init() {
        bytes = .allocate(capacity: LogTap.ringBytes)
        entries = .allocate(capacity: LogTap.capacity)
    }

    /// The oldest line still whole.
    var oldest: UInt64 {
        var first = next > UInt64(LogTap.capacity) ? next - UInt64(LogTap.capacity) : 0
        let floor = end > UInt64(LogTap.ringBytes) ? end - UInt64(LogTap.ringBytes) : 0
        while first < next && entries[Int(first % UInt64(LogTap.capacity))].at < floor { first += 1 }
        return first
    }

    mutating func append(_ line: UnsafeRawBufferPointer, status: Int, outcome: CacheOutcome) {
        let n = min(line.count, LogTap.ringBytes / 4)
        let cap = UInt64(LogTap.ringBytes)
        if end % cap + UInt64(n) > cap { end += cap - end % cap }   // start over at the beginning
        if n > 0 { (bytes + Int(end % cap)).update(from: line.baseAddress!.assumingMemoryBound(to: UInt8.self), count: n) }
        entries[Int(next % UInt64(LogTap.capacity))] = Entry(at: end, length: Int32(n), status: Int16(clamping: status), outcome: UInt8(outcome.rawValue))
        end += UInt64(n)
        next += 1
    }

    func line(_ k: UInt64) -> (UnsafeRawBufferPointer, Entry) {
        let e = entries[Int(k % UInt64(LogTap.capacity))]
        return (UnsafeRawBufferPointer(start: bytes + Int(e.at % UInt64(LogTap.ringBytes)), count: Int(e.length)), e)
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

    /// Bytes of lines kept per worker (1 MiB, allocated with the tap).
    public static let ringBytes = 1 << 20

    final class RingBox: @unchecked Sendable {
        let m = Mutex(TapRing())
        @inline(__always) func withLock<R>(_ body: (inout TapRing) -> R) -> R { m.withLock { body(&$0) } }
        deinit { m.withLock { r in r.bytes.deallocate(); r.entries.deallocate() } }
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
        rings[worker % rings.count].withLock { $0.append(UnsafeRawBufferPointer(rebasing: line[0..<n]), status: status, outcome: outcome) }
    }

    /// Visits the lines written since `cursors` (from `attach` or the last
    /// read), oldest first per worker, under that worker's lock (so `body`
    /// copies what it keeps and does no I/O); the cursors move on. With
    /// `atMost`, a worker with more waiting lines is sampled evenly: every k-th
    /// line is visited, with `weight` k. Returns the lines overwritten before
    /// this reader got to them (`dropped`).
    public func visit(_ cursors: inout [UInt64], atMost: Int = .max,
                      _ body: (_ line: UnsafeRawBufferPointer, _ status: Int, _ outcome: CacheOutcome, _ weight: Int) -> Void) -> Int {
        var dropped = 0
        for (w, ring) in rings.enumerated() {
            ring.withLock { r in
                var from = cursors[w]
                let oldest = r.oldest
                if from < oldest {
                    dropped += Int(oldest - from)
                    from = oldest
                }
                let waiting = Int(r.next - from)
                let step = waiting <= atMost ? 1 : (waiting + atMost - 1) / max(1, atMost)
                while from < r.next {
                    let (bytes, e) = r.line(from)
                    body(bytes, Int(e.status), CacheOutcome(rawValue: Int(e.outcome)) ?? .bypass, step)
                    from += UInt64(step)
                }
                cursors[w] = r.next
            }
        }
        return dropped
    }

    /// The same as events (each line copied; for tests and small reads).
    public func read(_ cursors: inout [UInt64]) -> (events: [TapEvent], dropped: Int) {
        var out: [TapEvent] = []
        let dropped = visit(&cursors) { line, status, outcome, _ in out.append(TapEvent(line: Array(line), status: status, outcome: outcome)) }
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
        e.line.withUnsafeBytes { matches($0, status: e.status, outcome: e.outcome) }
    }

    public func matches(_ line: UnsafeRawBufferPointer, status: Int, outcome: CacheOutcome) -> Bool {
        if let s = self.status, status != s { return false }
        if let k = statusClass, status / 100 != k { return false }
        if let c = cache, outcome != c { return false }
        if let t = tenant, jsonStringRange(line, LogKey.tenant).map({ line[$0].elementsEqual(t.utf8) }) != true { return false }
        if let h = host, jsonStringRange(line, LogKey.host).map({ line[$0].elementsEqual(h.lowercased().utf8) }) != true { return false }
        if let p = pathPrefix, jsonStringRange(line, LogKey.target).map({ line[$0].starts(with: p.utf8) }) != true { return false }
        return true
    }
}

/// Keys of edge's JSON log lines as they appear before a string value (`"tenant":"`).
public enum LogKey {
    public static let tenant = Array(#""tenant":""#.utf8)
    public static let host = Array(#""host":""#.utf8)
    public static let target = Array(#""target":""#.utf8)
}

/// Where the raw (still escaped) text of the string field whose `key` (as
/// `LogKey` spells it) stands in one of edge's JSON log lines; nil when the
/// line has none. A key cannot be forged inside a value: values escape every quote.
public func jsonStringRange(_ line: UnsafeRawBufferPointer, _ key: [UInt8]) -> Range<Int>? {
    let n = key.count
    guard line.count > n, let first = key.first else { return nil }
    var i = 0
    outer: while i + n <= line.count {
        if line[i] != first { i += 1; continue }
        for k in 1..<n where line[i + k] != key[k] { i += 1; continue outer }
        let start = i + n
        var j = start
        while j < line.count && line[j] != 34 { j += line[j] == 92 ? 2 : 1 }
        return start..<min(j, line.count)
    }
    return nil
}

/// The same for a line in an array, by key name ("tenant").
public func jsonStringField(_ line: [UInt8], _ key: String) -> ArraySlice<UInt8>? {
    let pattern = Array("\"\(key)\":\"".utf8)
    guard let r = line.withUnsafeBytes({ jsonStringRange($0, pattern) }) else { return nil }
    return line[r]
}
