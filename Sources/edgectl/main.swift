// edgectl: the operator's command line over edged's admin API (see README).
// Thin: argument parsing, one HTTP request per node, output formatting.
//
// A node may be broken or hostile: answers are bounded (`maxAnswer`), each node
// has one overall deadline (--timeout), and every text that came from a node
// is stripped of control characters before it reaches the terminal (`print`,
// `emit` and `die` below all clean what they write).
import Foundation
import Glibc
import EdgeIO
import EdgeHTTP
import EdgeAdminClient
import EdgeJSON
import Synchronization

let usage = """
usage: edgectl [connection] [--json] COMMAND [arguments]

commands:
  purge URL...                      remove every stored variant of each URL
  purge --prefix URL                remove everything under a path (https://host/path/)
  purge --tag KEY... [--tenant T]   remove objects tagged KEY (Surrogate-Key / Cache-Tag)
  purge --tenant NAME --all         remove everything a tenant has stored
        --soft                      (any purge) mark stale instead of removing
        --nodes FILE                (any purge) send it to every node in FILE, in parallel
  stats [--tenant NAME]             requests, hit ratio, bytes, origin requests/errors, p50/p99,
                                    rule matches and the keys rate limits refused most
  tenants                           tenants, hosts, certificate expiry, origin health
  explain URL [-H 'Name: value']... [--client IP] [-X METHOD]
                                    key, stored variants, what a request with these headers gets,
                                    and which rules, signatures and limits it would meet
  reload                            re-read the configuration (like SIGHUP)
  acme                              ACME tenants: certificate state, expiry, renewal, last error
  renew TENANT                      order a new ACME certificate for TENANT now
  metrics                           Prometheus text from /metrics
  log [--tenant T] [--status 5xx] [--cache miss] [--host H] [--path-prefix /P] [--json]
                                    follow the access events as they happen
  top [--tenant T]                  a live view: requests/s, hit ratio, latency, top URLs and misses
  dashboard [--listen 127.0.0.1:PORT]
                                    forward a loopback port to edged's dashboard page

connection (default: --state state):
  --state DIR                       edged's state directory (its admin socket is DIR/admin.sock)
  --socket PATH                     the admin socket itself
  --url http://127.0.0.1:PORT       the TCP admin listener, with --token-file FILE (loopback only)
  --timeout SECONDS                 give each node this long to answer (default 5)

  --json                            print the API's JSON instead of text
  COMMAND --help                    help for one command

A nodes file has one node per line: a socket path, or a URL followed by an
optional token file (else --token-file applies); a line starting with the word
"shield" is a shield (purged before every other node). Lines starting with # are ignored.
"""

let commandHelp: [String: String] = [
    "purge": """
    usage: edgectl purge URL... | --prefix URL | --tag KEY... [--tenant NAME] | --tenant NAME --all
                         [--soft] [--nodes FILE]
    Prints how many objects each purge removed (or, with --soft, marked stale so that
    stale-while-revalidate / stale-if-error can still serve them). A URL purge covers
    both schemes and every Vary variant. A response already on its way from the origin
    when the purge runs is not stored afterwards.
    With --nodes, a fleet purge: shields first, then the other nodes (each in parallel),
    each node reported as
      applied  the node purged (N objects);
      queued   the node did not answer, but other nodes applied the purge: the node pulls
               it from its fleet peers before it serves again (its server file must list
               them under "fleet": {"peers": [...]});
      failed   the node refused the purge, or no node applied it.
    Exit status 1 when any node failed.
    """,
    "stats": "usage: edgectl stats [--tenant NAME]\nPer-tenant counters since edged started.",
    "acme": "usage: edgectl acme\nEach ACME tenant: state (waiting, ordering, valid, failing), expiry, when it renews,\nthe next try and the last error.",
    "renew": "usage: edgectl renew TENANT\nOrders a new certificate for an ACME tenant now; the current one serves until the new\none is in place (see edgectl acme and edged's log for the outcome).",
    "tenants": "usage: edgectl tenants\nTenants, their hosts, certificate expiry dates and origin health.",
    "explain": """
    usage: edgectl explain URL [-H 'Name: value']... [--client IP] [-X METHOD]
    The cache key for URL, its stored variants (age, freshness lifetime and the field that
    set it), which variant a request with these headers selects, and if none, why.
    Then what the request filter would do with the request from IP (default 127.0.0.1):
    the access list, each rule that matches and its action, the attack signature that
    matches, each rate limit with its key and whether that key is over now (nothing is
    counted), and the outcome.
    """,
    "reload": "usage: edgectl reload\nRe-reads every tenant file; on an error the running config keeps serving and the error (file and field) is printed.",
    "metrics": "usage: edgectl metrics\nPrints /metrics (Prometheus text format).",
]

/// `text` without terminal control characters: C0 (but newline and tab), DEL
/// and C1 become "?", so a node's answer cannot move the cursor, retitle the
/// terminal or hide lines.
func clean(_ text: String) -> String {
    var out = String.UnicodeScalarView()
    for u in text.unicodeScalars {
        let v = u.value
        if (v < 0x20 && v != 10 && v != 9) || (v >= 0x7F && v < 0xA0) { out.append("?") } else { out.append(u) }
    }
    return String(out)
}

/// Every line edgectl prints goes through here (it shadows the standard one).
func print(_ text: String, terminator: String = "\n") {
    FileHandle.standardOutput.write(Data((clean(text) + terminator).utf8))
}

func die(_ message: String, code: Int32 = 2) -> Never {
    FileHandle.standardError.write(Data("edgectl: \(clean(message))\n".utf8))
    exit(code)
}

// MARK: Arguments

var stateDir = "state"
var socketPath: String?
var url: String?
var tokenFile: String?
var json = false
var timeoutMillis = 5_000
var rest: [String] = []

/// Walks an argument list; `value` takes the argument after a flag.
struct ArgCursor {
    let list: [String]
    let context: String
    var at = 0
    mutating func next() -> String? {
        guard at < list.count else { return nil }
        at += 1
        return list[at - 1]
    }
    mutating func value(_ flag: String) -> String {
        guard let v = next() else { die("\(context)\(flag) needs a value") }
        return v
    }
}

var top = ArgCursor(list: Array(CommandLine.arguments.dropFirst()), context: "")
while let a = top.next() {
    switch a {
    case "--state": stateDir = top.value(a)
    case "--socket": socketPath = top.value(a)
    case "--url": url = top.value(a)
    case "--token-file": tokenFile = top.value(a)
    case "--timeout":
        guard let s = Double(top.value(a)), s > 0, s <= 3600 else { die("--timeout needs seconds between 0 and 3600") }
        timeoutMillis = Int(s * 1000)
    case "--json": json = true
    case "--help" where rest.isEmpty, "-h" where rest.isEmpty: print(usage); exit(0)
    default: rest.append(a)
    }
}
guard let command = rest.first else { print(usage); exit(2) }
let cmdArgs = Array(rest.dropFirst())
if cmdArgs.contains("--help") || cmdArgs.contains("-h") {
    guard let h = commandHelp[command] ?? liveHelp[command] else { die("unknown command \(command)\n\(usage)") }
    print(h)
    exit(0)
}

// MARK: Nodes and requests (the client itself: EdgeAdminClient)

typealias Node = AdminNode
typealias CtlError = AdminClientError


@MainActor func defaultNode() throws -> Node {
    if let u = url {
        guard let f = tokenFile else { throw CtlError("--url needs --token-file") }
        return Node(name: u, url: u, token: try readToken(f), timeoutMillis: timeoutMillis)
    }
    let s = socketPath ?? (stateDir as NSString).appendingPathComponent("admin.sock")
    return Node(name: s, socket: s, timeoutMillis: timeoutMillis)
}

/// The nodes of a nodes file, and which of them (indexes) are shields.
@MainActor func loadNodes(_ file: String) throws -> (nodes: [Node], shields: Set<Int>) {
    guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw CtlError("cannot read nodes file \(file)") }
    var nodes: [Node] = []
    var shields: Set<Int> = []
    for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let line = raw.trimmingCharacters(in: .whitespaces)
        if line.isEmpty || line.hasPrefix("#") { continue }
        var parts = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let shield = parts[0] == "shield"
        if shield {
            parts.removeFirst()
            guard !parts.isEmpty else { throw CtlError("\(file):\(n + 1): \"shield\" needs a node after it") }
        }
        defer { if shield { shields.insert(nodes.count - 1) } }
        if parts[0].hasPrefix("http://") {
            let tf = parts.count > 1 ? parts[1] : tokenFile
            guard let tf else { throw CtlError("\(file):\(n + 1): \(parts[0]) needs a token file (on the line or --token-file)") }
            nodes.append(Node(name: parts[0], url: parts[0], token: try readToken(tf), timeoutMillis: timeoutMillis))
        } else {
            let path = parts[0].hasPrefix("unix:") ? String(parts[0].dropFirst(5)) : parts[0]
            nodes.append(Node(name: path, socket: path, timeoutMillis: timeoutMillis))
        }
    }
    guard !nodes.isEmpty else { throw CtlError("\(file): no nodes") }
    return (nodes, shields)
}


@Sendable func object(_ d: Data) -> [String: Any] { ((try? JSONSerialization.jsonObject(with: d)) as? [String: Any]) ?? [:] }

/// A request body built of Swift values, or of what JSONSerialization read
/// (NSNumber: its type says bool, double or integer), as the admin client sends it.
@Sendable func jsonValue(_ o: Any) -> JSON {
    if type(of: o) is NSNumber.Type, let n = o as? NSNumber {
        switch String(cString: n.objCType) {
        case "c", "B": return .bool(n.boolValue)
        case "d", "f": return .double(n.doubleValue)
        default: return .int(n.int64Value)
        }
    }
    switch o {
    case let b as Bool: return .bool(b)   // (a Swift Int never casts to Bool)
    case let i as Int: return .int(Int64(i))
    case let i as Int64: return .int(i)
    case let d as Double: return .double(d)
    case let s as String: return .string(s)
    case let a as [Any]: return .array(a.map(jsonValue))
    case let d as [String: Any]: return .object(d.mapValues(jsonValue))
    default: return .null
    }
}

/// Calls one node and fails (exit 1) with the API's message on an error status.
@MainActor func single(_ method: String, _ path: String, body: [String: Any]? = nil) -> Data {
    do {
        let (status, bytes) = try adminCall(try defaultNode(), method, path, body: body.map(jsonValue))
        let data = Data(bytes)
        if status != 200 {
            if json { FileHandle.standardOutput.write(data) }
            die((object(data)["error"] as? String) ?? "HTTP \(status)", code: 1)
        }
        return data
    } catch {
        die("\(error)", code: 1)
    }
}

func emit(_ data: Data) { print(String(decoding: data, as: UTF8.self), terminator: "") }

// MARK: Commands

@MainActor func purgeCommand() {
    var urls: [String] = []
    var prefix: String?
    var tags: [String] = []
    var tenant: String?
    var all = false
    var soft = false
    var nodesFile: String?
    var taggingMode = false
    var c = ArgCursor(list: cmdArgs, context: "purge: ")
    while let a = c.next() {
        switch a {
        case "--prefix": prefix = c.value(a); taggingMode = false
        case "--tag": tags.append(c.value(a)); taggingMode = true
        case "--tenant": tenant = c.value(a); taggingMode = false
        case "--all": all = true
        case "--soft": soft = true
        case "--nodes": nodesFile = c.value(a)
        default:
            if a.hasPrefix("-") { die("purge: unknown option \(a)\n\(commandHelp["purge"]!)") }
            if taggingMode { tags.append(a) } else { urls.append(a) }
        }
    }
    var body: [String: Any] = ["soft": soft]
    let kinds = [!urls.isEmpty, prefix != nil, !tags.isEmpty, all].filter { $0 }.count
    guard kinds == 1 else { die("purge: give URLs, or --prefix, or --tag, or --tenant NAME --all\n\(commandHelp["purge"]!)") }
    if !urls.isEmpty { body["urls"] = urls }
    if let p = prefix { body["prefix"] = p }
    if !tags.isEmpty { body["tags"] = tags; if let t = tenant { body["tenant"] = t } }
    if all {
        guard let t = tenant else { die("purge: --all needs --tenant NAME") }
        body["tenant"] = t
        body["all"] = true
    } else if tenant != nil && tags.isEmpty {
        die("purge: --tenant goes with --all or --tag")
    }
    let verb = soft ? "marked stale" : "purged"
    guard let nf = nodesFile else {
        let data = single("POST", "/v1/purge", body: body)
        if json { return emit(data) }
        let n = object(data)["purged"] as? Int ?? 0
        print("\(verb) \(n) object\(n == 1 ? "" : "s")")
        return
    }
    // Fan-out: shields first, then the rest, each tier in parallel; the purge
    // carries a fleet id (a node that missed it pulls it from its peers).
    let nodes: [Node], shields: Set<Int>
    do { (nodes, shields) = try loadNodes(nf) } catch { die("\(error)") }
    body["id"] = UUID().uuidString.lowercased()
    // Each node's answer, filled from the concurrent calls under an NSLock (a pthread
    // mutex: ThreadSanitizer sees it, where Synchronization.Mutex's futex it cannot).
    final class Results: @unchecked Sendable {
        let lock = NSLock()
        var byNode: [Int: Result<Data, CtlError>] = [:]
        /// Whether the node answered at all (an error status is an answer).
        var answered: Set<Int> = []
        func set(_ i: Int, _ r: Result<Data, CtlError>, answered a: Bool) { lock.lock(); byNode[i] = r; if a { answered.insert(i) }; lock.unlock() }
    }
    let results = Results()
    let payload = jsonValue(body)
    for tier in [nodes.indices.filter { shields.contains($0) }, nodes.indices.filter { !shields.contains($0) }] where !tier.isEmpty {
        DispatchQueue.concurrentPerform(iterations: tier.count) { k in
            let idx = tier[k]
            do {
                let (status, bytes) = try adminCall(nodes[idx], "POST", "/v1/purge", body: payload)
                let data = Data(bytes)
                results.set(idx, status == 200 ? .success(data) : .failure(CtlError((object(data)["error"] as? String) ?? "HTTP \(status)")), answered: true)
            } catch {
                results.set(idx, .failure(error as? CtlError ?? CtlError("\(error)")), answered: false)
            }
        }
    }
    let appliedSomewhere = results.byNode.values.contains { if case .success = $0 { return true } else { return false } }
    var failed: [String] = [], queued: [String] = []
    var jsonNodes: [[String: Any]] = []
    for (idx, node) in nodes.enumerated() {
        let role = shields.contains(idx) ? "shield" : "node"
        switch results.byNode[idx]! {
        case .success(let d):
            let n = object(d)["purged"] as? Int ?? 0
            jsonNodes.append(["node": node.name, "role": role, "outcome": "applied", "purged": n])
            if !json { print("\(node.name): applied: \(verb) \(n) object\(n == 1 ? "" : "s")") }
        case .failure(let e) where !results.answered.contains(idx) && appliedSomewhere:
            queued.append(node.name)
            jsonNodes.append(["node": node.name, "role": role, "outcome": "queued", "error": e.description])
            if !json { print("\(node.name): queued (it pulls the purge from its fleet peers before serving again): \(e)") }
        case .failure(let e):
            failed.append(node.name)
            jsonNodes.append(["node": node.name, "role": role, "outcome": "failed", "error": e.description])
            if !json { print("\(node.name): FAILED: \(e)") }
        }
    }
    if json {
        let d = try! JSONSerialization.data(withJSONObject: ["nodes": jsonNodes, "id": body["id"]!], options: [.prettyPrinted, .sortedKeys])
        emit(d + Data([10]))
    }
    if !failed.isEmpty { die("purge failed on \(failed.count) of \(nodes.count) node(s): \(failed.joined(separator: ", "))", code: 1) }
}

@MainActor func statsCommand() {
    var path = "/v1/stats"
    if let k = cmdArgs.firstIndex(of: "--tenant") {
        guard k + 1 < cmdArgs.count else { die("stats: --tenant needs a name") }
        path += "?tenant=" + (cmdArgs[k + 1].addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? cmdArgs[k + 1])
    }
    let data = single("GET", path)
    if json { return emit(data) }
    let tenants = object(data)["tenants"] as? [[String: Any]] ?? []
    func ms(_ v: Any?) -> String { (v as? Double).map { String(format: "%.2f", $0) } ?? "-" }
    print("TENANT".padding(toLength: 16, withPad: " ", startingAt: 0) + "  REQUESTS  HIT%    BYTES        ORIGIN  ORIGIN-ERR  P50-MS   P99-MS")
    for t in tenants {
        let name = (t["tenant"] as? String ?? "?").padding(toLength: 16, withPad: " ", startingAt: 0)
        let req = t["requests"] as? Int ?? 0
        let hit = (t["hit_ratio"] as? Double ?? 0) * 100
        let bytes = t["bytes_served"] as? Int ?? 0
        func right(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        let line = name + "  " + String(format: "%8d  %5.1f  %11d  %6d  %10d", req, hit, bytes,
                                        t["origin_requests"] as? Int ?? 0, t["origin_errors"] as? Int ?? 0)
            + "  " + right(ms(t["p50_millis"]), 7) + "  " + right(ms(t["p99_millis"]), 7)
        print(line)
        // Requests by protocol, when more than one was used.
        let protos = (t["by_protocol"] as? [String: Int] ?? [:]).filter { $0.value > 0 }.sorted { $0.key < $1.key }
        if protos.count > 1 { print("  protocols: " + protos.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) }
        for r in t["rules"] as? [[String: Any]] ?? [] {
            let logged = r["logged"] as? Int ?? 0
            print("  rule \(r["rule"] as? String ?? "?"): \(r["matched"] as? Int ?? 0) matched" + (logged > 0 ? ", \(logged) in log mode" : ""))
        }
        for l in t["limits"] as? [[String: Any]] ?? [] {
            let dry = l["dry_run"] as? Int ?? 0
            print("  limit \(l["limit"] as? String ?? "?"): \(l["limited"] as? Int ?? 0) refused" + (dry > 0 ? ", \(dry) counted in a dry run" : ""))
            for k in l["top_keys"] as? [[String: Any]] ?? [] {
                print("    " + right("\(k["count"] as? Int ?? 0)", 8) + "  \(k["key"] as? String ?? "")")
            }
        }
        if let d = t["disk_bytes"] as? Int, d > 0 { print("  cache: \(t["cache_bytes"] as? Int ?? 0) bytes in memory, \(d) on disk") }
        let groups = t["groups"] as? [[String: Any]] ?? []
        if groups.count > 1 {
            for g in groups { print("  origin \(g["group"] as? String ?? "?"): \(g["requests"] as? Int ?? 0) requests, \(g["errors"] as? Int ?? 0) errors") }
        }
        for m in t["mirrors"] as? [[String: Any]] ?? [] {
            let n = { (k: String) in m[k] as? Int ?? 0 }
            print("  mirror \(m["route"] as? String ?? "?") -> \(m["group"] as? String ?? "?"): \(n("queued")) queued, \(n("answered")) answered, \(n("failed")) failed, \(n("dropped")) dropped")
        }
    }
    guard let cache = object(data)["cache"] as? [String: Any] else { return }
    if let m = cache["memory"] as? [String: Any] {
        print("cache memory: \(m["objects"] as? Int ?? 0) objects, \(m["bytes"] as? Int ?? 0) of \(m["capacity"] as? Int ?? 0) bytes")
    }
    for d in cache["disks"] as? [[String: Any]] ?? [] {
        func n(_ k: String) -> Int { d[k] as? Int ?? 0 }
        let state = d["loading"] as? Bool == true ? "loading"
            : d["in_service"] as? Bool == true ? "in service"
            : "OUT OF SERVICE" + ((d["last_error"] as? String).map { ": " + $0 } ?? "")
        print("cache disk \(d["path"] as? String ?? "?"): \(state)")
        print("  \(n("objects")) objects, \(n("bytes")) of \(n("capacity")) bytes; writes \(n("writes")), dropped \(n("write_drops")), "
              + "errors \(n("write_errors")), large fills held for room \(n("fill_holds")); reads \(n("reads")) (\(n("page_cache_reads")) from the page cache on a worker), failed \(n("read_failures")); "
              + "\(n("sent_from_pages")) bytes of block-read bodies sent from its pages; "
              + "loaded \(n("loaded_objects")) objects in \(n("load_millis")) ms")
    }
}

@MainActor func tenantsCommand() {
    let data = single("GET", "/v1/tenants")
    if json { return emit(data) }
    for t in object(data)["tenants"] as? [[String: Any]] ?? [] {
        var line = "\(t["name"] as? String ?? "?")\(t["is_default"] as? Bool == true ? " (default)" : "")"
        line += "\n  hosts: \((t["hosts"] as? [String] ?? []).joined(separator: ", "))"
        line += "\n  tls: \(t["tls"] as? String ?? "none")"
        if let e = t["certificate_expires"] as? String { line += ", certificate expires \(e)" }
        for o in t["origins"] as? [[String: Any]] ?? [] {
            line += "\n  origin \(o["group"] as? String ?? "?") \(o["server"] as? String ?? "?"): \(o["healthy"] as? Bool == true ? "up" : "DOWN")"
            if let d = o["down"] as? String { line += d == "probe" ? " (health check)" : " (failed requests; back after fail_backoff)" }
            if let c = o["changed"] as? String { line += ", since \(c): \(o["why"] as? String ?? "")" }
            else if o["checked"] as? Bool == true { line += ", health check: no change since start" }
        }
        print(line)
    }
}

@MainActor func explainCommand() {
    var target: String?
    var headers: [String] = []
    var client = "127.0.0.1", method = "GET"
    var c = ArgCursor(list: cmdArgs, context: "explain: ")
    while let a = c.next() {
        if a == "-H" || a == "--header" {
            headers.append(c.value(a))
        } else if a == "--client" {
            client = c.value(a)
        } else if a == "-X" || a == "--method" {
            method = c.value(a)
        } else if target == nil && !a.hasPrefix("-") {
            target = a
        } else {
            die("explain: unexpected \(a)\n\(commandHelp["explain"]!)")
        }
    }
    guard let target else { die("explain: which URL?\n\(commandHelp["explain"]!)") }
    let data = single("POST", "/v1/explain", body: ["url": target, "headers": headers, "client": client, "method": method])
    if json { return emit(data) }
    let e = object(data)
    print("url:      \(target)")
    print("tenant:   \(e["tenant"] as? String ?? "?")    route: \(e["route"] as? String ?? "(none)")")
    if let k = e["key"] as? String { print("key:      \(k.replacingOccurrences(of: "\u{0}", with: "∅"))") }
    print("stored:   \(e["stored"] as? Bool == true ? "yes" : "no")")
    if let r = e["reason"] as? String { print("why:      \(r)") }
    if let b = e["bypass"] as? String { print("bypass:   this request would bypass the cache (\(b))") }
    if let k = e["route_key"] as? [String], !k.isEmpty { print("keyed on: \(k.joined(separator: "; ")) (the route's, beyond the URL)") }
    if let l = e["route_lifetimes"] as? [String: Any], !l.isEmpty {
        print("route ttl: " + l.keys.sorted().map { "\($0) \(l[$0] as? Int ?? 0)s" }.joined(separator: ", "))
    }
    if let codings = e["codings_stored"] as? [String], !codings.isEmpty { print("codings:  \(codings.joined(separator: ", ")) (made by edge, stored next to it)") }
    for v in e["variants"] as? [[String: Any]] ?? [] {
        let vary = (v["vary"] as? [String] ?? []).joined(separator: ", ")
        let mark = v["selected"] as? Bool == true ? "* selected" : "  variant"
        let tier = v["tier"] as? String ?? "memory"
        let line: String = "\(mark): \(tier == "memory" ? "" : "on \(tier) (a hit reads it back into memory), ")"
              + "status \(v["status"] as? Int ?? 0), \(v["bytes"] as? Int ?? 0) bytes, age \(v["age"] as? Int ?? 0)s, "
              + "freshness lifetime \(v["freshness_lifetime"] as? Int ?? 0)s from \(v["freshness_source"] as? String ?? "?"), "
              + (v["fresh"] as? Bool == true ? "fresh" : "stale")
              + (vary.isEmpty ? "" : "; Vary: \(vary) = \((v["variant"] as? String ?? "").replacingOccurrences(of: "\u{0}", with: "(absent)"))")
              + ((v["tags"] as? [String]).map { $0.isEmpty ? "" : "; tags: " + $0.joined(separator: " ") } ?? "")
        print(line)
    }
    if let p = e["protection"] as? [String: Any] {
        print("client:   \(p["client"] as? String ?? "?") (access list: \(p["access_list"] as? String ?? "?"))")
        for r in p["rules"] as? [[String: Any]] ?? [] {
            print("  rule \(r["id"] as? String ?? "?"): \(r["action"] as? String ?? "?")\(r["mode"] as? String == "log" ? " (log mode: counted only)" : "")")
        }
        if let s = p["signature"] as? String { print("  signature \(s)\(p["signature_mode"] as? String == "log" ? " (log mode: counted only)" : "")") }
        for l in p["limits"] as? [[String: Any]] ?? [] {
            let by = (l["rule"] as? String).map { ", applied by rule \($0)" } ?? ""
            let state = l["key"] is String ? (l["over"] as? Bool == true ? "OVER" : "under") + " for key \(l["key"] as? String ?? "")" : "not applied (no key)"
            print("  limit \(l["limit"] as? String ?? "?")\(by): \(state)\(l["dry_run"] as? Bool == true ? " (dry run)" : "")")
        }
        print("outcome:  \(p["outcome"] as? String ?? "?")")
    }
}

switch command {
case "purge": purgeCommand()
case "stats": statsCommand()
case "tenants": tenantsCommand()
case "explain": explainCommand()
case "log": logCommand()
case "top": topCommand()
case "dashboard": dashboardCommand()
case "reload":
    let data = single("POST", "/v1/reload")
    if json { emit(data) } else { print(object(data)["message"] as? String ?? "reloaded") }
case "metrics":
    emit(single("GET", "/metrics"))
case "acme":
    let data = single("GET", "/v1/acme")
    if json { emit(data) } else {
        let list = object(data)["tenants"] as? [[String: Any]] ?? []
        if list.isEmpty { print("no tenant uses ACME") }
        for t in list {
            func v(_ k: String) -> String { t[k] as? String ?? "-" }
            print("\(v("tenant")): \(v("state")) (\((t["hosts"] as? [String] ?? []).joined(separator: ", ")); \(v("challenge")))")
            print("  expires \(v("expires"))  renews \(v("renews"))  next try \(v("next_try"))  serial \(v("serial"))")
            if let e = t["last_error"] as? String { print("  failures \(t["failures"] as? Int ?? 0), last: \(e)") }
        }
    }
case "renew":
    guard cmdArgs.count == 1, !cmdArgs[0].hasPrefix("-") else { die("renew: which tenant?\n\(commandHelp["renew"]!)") }
    let data = single("POST", "/v1/acme/renew", body: ["tenant": cmdArgs[0]])
    if json { emit(data) } else { print("\(cmdArgs[0]): ordering a new certificate (edgectl acme shows the outcome)") }
default:
    die("unknown command \(command)\n\(usage)")
}
