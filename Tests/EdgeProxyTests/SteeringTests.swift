import Foundation
import Testing

/// Traffic steering with real origin processes: weights, consistent hashing
/// by URL, header and cookie, and what happens when a server goes away.
@Suite(.serialized, .timeLimit(.minutes(3))) struct SteeringTests {
    func edge(_ origins: [Origin], _ group: String) throws -> Edge {
        try Edge(tenants: [
            tenantJSON(name: "s", hosts: ["s.test"], origins: #"{"o": \#(group)}"#,
                       routes: #"[{"prefix": "/", "origin": "o", "cache": {"enabled": false}}]"#),
        ])
    }

    func origin(_ port: Int, _ path: String, _ headers: [String] = []) throws -> String {
        let r = try request(port, path, host: "s.test", headers: headers)
        #expect(r.status == 200, "\(path): \(r.status)")
        return r.json["origin"] as? String ?? "?"
    }

    @Test func weightsSplitTrafficByWeight() throws {
        let os = try ["a", "b", "c"].map { try Origin(name: $0) }
        defer { for o in os { o.stop() } }
        let e = try edge(os, #"{"servers": [{"url": "\#(os[0].address)", "weight": 3}, "\#(os[1].address)", {"url": "\#(os[2].address)", "weight": 1}]}"#)
        defer { e.stop() }
        var n: [String: Int] = [:]
        for i in 0..<100 { n[try origin(e.port, "/w/\(i)"), default: 0] += 1 }
        #expect(n == ["a": 60, "b": 20, "c": 20], "smooth weighted round-robin on one worker is exact: \(n)")
    }

    @Test func hashByURLKeepsEachPathOnOneServerAndAStoppedServerMovesOnlyItsOwn() throws {
        let os = try ["a", "b", "c", "d"].map { try Origin(name: $0) }
        defer { for o in os { o.stop() } }
        let servers = os.map { "\"\($0.address)\"" }.joined(separator: ", ")
        let e = try edge(os, #"{"servers": [\#(servers)], "balance": "hash", "max_fails": 1, "fail_backoff": "60s"}"#)
        defer { e.stop() }
        let paths = (0..<81).map { "/item/\($0)" }   // not a multiple of 4: round-robin cannot pass
        var home: [String: String] = [:]
        for p in paths { home[p] = try origin(e.port, p) }
        for p in paths { #expect(try origin(e.port, p) == home[p], "\(p) stays on its server") }
        #expect(Set(home.values).count == 4, "every server has keys: \(home.values)")
        // One server stops: its paths still answer 200 (retried elsewhere),
        // and no other path moves.
        os[1].stop()
        var moved = 0
        for p in paths {
            let now = try origin(e.port, p)
            if home[p] == "b" { #expect(now != "b"); moved += 1 } else { #expect(now == home[p], "\(p) moved from \(home[p]!) to \(now)") }
        }
        #expect(moved > 0)
    }

    @Test func hashByHeaderAndCookieFollowsTheValueNotThePath() throws {
        let os = try ["a", "b", "c"].map { try Origin(name: $0) }
        defer { for o in os { o.stop() } }
        let servers = os.map { "\"\($0.address)\"" }.joined(separator: ", ")
        let byHeader = try edge(os, #"{"servers": [\#(servers)], "balance": "hash", "hash_key": "header:X-User"}"#)
        var seen: [String: Set<String>] = [:]
        for u in 0..<12 {
            for i in 0..<5 { seen["u\(u)", default: []].insert(try origin(byHeader.port, "/p/\(u)/\(i)", ["X-User: u\(u)"])) }
        }
        byHeader.stop()
        #expect(seen.values.allSatisfy { $0.count == 1 }, "each user on one server: \(seen)")
        #expect(Set(seen.values.map { $0.first! }).count > 1, "users spread over servers: \(seen)")

        let byCookie = try edge(os, #"{"servers": [\#(servers)], "balance": "hash", "hash_key": "cookie:sid"}"#)
        defer { byCookie.stop() }
        var bySid: [String: Set<String>] = [:]
        for u in 0..<12 {
            for i in 0..<5 { bySid["s\(u)", default: []].insert(try origin(byCookie.port, "/c/\(i)", ["Cookie: theme=dark; sid=s\(u)"])) }
        }
        #expect(bySid.values.allSatisfy { $0.count == 1 }, "each session on one server: \(bySid)")
        // Without the cookie: round-robin, so all three servers answer.
        var none: Set<String> = []
        for i in 0..<6 { none.insert(try origin(byCookie.port, "/c/\(i)")) }
        #expect(none.count == 3, "\(none)")
    }

    @Test func randomTwoUsesEveryServer() throws {
        let os = try ["a", "b"].map { try Origin(name: $0) }
        defer { for o in os { o.stop() } }
        let e = try edge(os, #"{"servers": ["\#(os[0].address)", "\#(os[1].address)"], "balance": "random-two"}"#)
        defer { e.stop() }
        var n: Set<String> = []
        for i in 0..<40 { n.insert(try origin(e.port, "/r/\(i)")) }
        #expect(n == ["a", "b"])
    }
}
