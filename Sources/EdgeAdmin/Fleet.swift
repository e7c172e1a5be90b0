// Fleet purges that hold: a node that was down (or cut off) while a purge was
// sent to the fleet gets it later from its peers, before it serves again.
//
// The mechanism (README, "Shields and fleets"):
// - `edgectl purge --nodes FILE` gives each fleet purge an id and a time, and
//   sends it to the shields first, then to the edges.
// - Every node that applies a fleet purge appends it to its journal,
//   STATE/fleet-purges.jsonl (one JSON object per line, fsync'ed before the
//   answer), and serves the journal to peers: GET /v1/purges?since=T.
// - A node with `fleet.peers` pulls from each peer what it has not applied
//   (by id): once before it starts serving (each peer gets
//   `fleet.sync_timeout`, the peers in parallel), then every
//   `fleet.sync_interval`. Each peer's watermark is the peer's own clock as it
//   last answered (STATE/fleet-sync.json), so clock skew between nodes
//   cannot skip a purge; a minute of overlap covers purges in flight.
// - Applying a purge twice is harmless (it removes what it selects); the id
//   only saves the work.
//
// Threads: the admin connection threads (a purge arriving), the sync thread
// and the start (syncBeforeServing) all go through `FleetJournal`, whose
// state is behind one lock held for a step; the journal file is appended
// under it.
import Glibc
import Synchronization
import EdgeIO
import EdgeAdminClient
import EdgeJSON

/// One fleet purge as the journal and the peers' API carry it.
struct FleetPurge: Sendable {
    var id: String
    /// Wall seconds on the node that journaled it.
    var time: Int64
    /// The purge request's body (urls / prefix / tags / tenant, soft).
    var request: [String: JSON]

    var json: JSON { ["id": .string(id), "time": .int(time), "request": .object(request)] }

    init(id: String, time: Int64, request: [String: JSON]) { self.id = id; self.time = time; self.request = request }

    init?(json o: JSON) {
        guard let id = o["id"]?.string, FleetPurge.validID(id), let t = o["time"]?.int64,
              let r = o["request"]?.object else { return nil }
        self.init(id: id, time: t, request: r)
    }

    /// 1 to 64 of A-Z a-z 0-9 . _ : -
    static func validID(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64 && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 58) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 46 || $0 == 95 }
    }
}

/// The purges this node applied as fleet purges, kept for its peers.
final class FleetJournal: @unchecked Sendable {
    struct State {
        var entries: [FleetPurge] = []
        var ids: Set<String> = []
        var fd: Int32 = -1
    }
    let state = Mutex(State())
    func withState<R: Sendable>(_ body: (inout State) -> R) -> R { state.withLock { body(&$0) } }
    let path: String
    /// Entries kept (older ones are dropped when the journal is rewritten at start).
    static let keep = 10_000
    static let keepSeconds: Int64 = 7 * 86_400

    init(stateDir: String) {
        path = Path.join(stateDir, "fleet-purges.jsonl")
        var entries: [FleetPurge] = []
        if let bytes = Files.read(path) {
            for line in bytes.split(separator: 10) {
                // A torn last line (a crash mid-append) does not parse and is dropped.
                guard let o = try? JSON.parse(Array(line)), let p = FleetPurge(json: o) else { continue }
                entries.append(p)
            }
        }
        let cutoff = wallSeconds() - FleetJournal.keepSeconds
        entries = Array(entries.filter { $0.time >= cutoff }.suffix(FleetJournal.keep))
        // Rewritten whole (compacted) once per start, then appended to.
        Files.replace(path, entries.flatMap(FleetJournal.line), mode: 0o600)
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        withState { s in
            s.entries = entries
            s.ids = Set(entries.map(\.id))
            s.fd = fd
        }
    }

    deinit { withState { if $0.fd >= 0 { close($0.fd) } } }

    static func line(_ p: FleetPurge) -> [UInt8] { p.json.serialized() + [10] }

    func contains(_ id: String) -> Bool { withState { $0.ids.contains(id) } }

    /// Records an applied purge (durably) unless its id is there already; false then.
    @discardableResult
    func record(_ p: FleetPurge) -> Bool {
        withState { s in
            guard s.ids.insert(p.id).inserted else { return false }
            s.entries.append(p)
            if s.fd >= 0 {
                let bytes = FleetJournal.line(p)
                _ = bytes.withUnsafeBytes { write(s.fd, $0.baseAddress, $0.count) }
                fdatasync(s.fd)
            }
            return true
        }
    }

    /// Entries journaled at or after `since` (this node's clock), oldest first.
    func since(_ t: Int64) -> [FleetPurge] { withState { $0.entries.filter { $0.time >= t } } }
}

/// Pulls missed purges from the peers (see the top of this file).
final class FleetSync: @unchecked Sendable {
    let peers: [AdminNode]
    let journal: FleetJournal
    let apply: @Sendable ([String: JSON]) throws -> Int
    let intervalMillis: Int64
    let watermarkPath: String
    /// Each peer's clock as it last answered (peer name → wall seconds).
    let watermarks: Mutex<[String: Int64]>
    let stopping = Atomic<Bool>(false)
    /// Held while a pulled purge is checked, applied and journaled.
    let applying = Gate()
    let wake: EventFD
    var thread: OSThread?
    /// How far before a watermark a pull reaches back.
    static let overlapSeconds: Int64 = 60

    init(peers: [AdminNode], journal: FleetJournal, stateDir: String, intervalMillis: Int64,
         apply: @escaping @Sendable ([String: JSON]) throws -> Int) throws {
        self.peers = peers; self.journal = journal; self.apply = apply; self.intervalMillis = intervalMillis
        watermarkPath = Path.join(stateDir, "fleet-sync.json")
        var marks: [String: Int64] = [:]
        if let d = Files.read(watermarkPath), let o = (try? JSON.parse(d))?.object {
            for (k, v) in o { if let t = v.int64 { marks[k] = t } }
        }
        watermarks = Mutex(marks)
        wake = try EventFD()
    }

    /// One round over every peer, in parallel. Returns per peer: purges
    /// applied, or the error that stopped the pull.
    @discardableResult
    func syncAll() -> [String: Result<Int, AdminClientError>] {
        let results = Mutex<[String: Result<Int, AdminClientError>]>([:])
        let threads = peers.map { peer in
            OSThread.spawn(name: "edge-fleet-pull") { [self] in
                let r = pull(peer)
                results.withLock { $0[peer.name] = r }
            }
        }
        for t in threads { t.join() }
        saveWatermarks()
        return results.withLock { $0 }
    }

    func pull(_ peer: AdminNode) -> Result<Int, AdminClientError> {
        let since = max(0, (watermarks.withLock { $0[peer.name] } ?? 0) - FleetSync.overlapSeconds)
        do {
            let (status, data) = try adminCall(peer, "GET", "/v1/purges?since=\(since)")
            guard status == 200, let o = try? JSON.parse(data), let list = o["purges"]?.array, let now = o["now"]?.int64 else {
                return .failure(AdminClientError("\(peer.name): HTTP \(status) to GET /v1/purges"))
            }
            var applied = 0
            for item in list {
                guard let p = FleetPurge(json: item) else { continue }
                // One peer's pull at a time past this point: two peers offering
                // the same purge apply it once.
                applying.lock(); defer { applying.unlock() }
                if journal.contains(p.id) { continue }
                do {
                    _ = try apply(p.request)
                    journal.record(FleetPurge(id: p.id, time: wallSeconds(), request: p.request))
                    applied += 1
                } catch {
                    // A purge this node cannot apply (a tenant it does not have): noted, not retried.
                    journal.record(FleetPurge(id: p.id, time: wallSeconds(), request: p.request))
                    writeStandardError("edged: fleet purge \(p.id) from \(peer.name) not applied: \(error)\n")
                }
            }
            if applied > 0 { writeStandardError("edged: applied \(applied) fleet purge(s) missed, from \(peer.name)\n") }
            watermarks.withLock { $0[peer.name] = now }
            return .success(applied)
        } catch {
            return .failure(error as? AdminClientError ?? AdminClientError("\(error)"))
        }
    }

    func saveWatermarks() {
        let marks = watermarks.withLock { $0 }
        Files.replace(watermarkPath, JSON.object(marks.mapValues(JSON.int)).serialized())
    }

    func start() {
        thread = OSThread.spawn(name: "edge-fleet") { [self] in
            while !stopping.load(ordering: .relaxed) {
                var pfd = pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&pfd, 1, Int32(clamping: intervalMillis))
                if stopping.load(ordering: .relaxed) { break }
                syncAll()
            }
        }
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        wake.signal()
        thread?.join()
        thread = nil
    }
}

@inline(__always) func wallSeconds() -> Int64 { Int64(time(nil)) }
