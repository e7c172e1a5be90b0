// Loading request rules and signature settings from tenant files: every
// matcher and action, log mode, and each kind of mistake named by file and field.
import Foundation
import Testing
@testable import EdgeConfig
import EdgeProtect

@Suite struct RulesConfigTests {
    static let base = ProtectionConfigTests.base

    @Test func rulesLoad() throws {
        let dir = try scratch(["t.json": Self.base + #"""
        , "rate_limits": {"login": {"rate": "5/m"}},
          "rules": [
            {"id": "no-admin", "match": {"path": {"prefix": "/admin"}, "not": {"client": ["10.0.0.0/8", "::1"]}},
             "action": "deny", "status": 404, "body": "nothing here"},
            {"id": "health", "match": {"method": ["GET", "HEAD"], "path": "/healthz"}, "action": "allow"},
            {"id": "old", "match": {"path": {"regex": "^/old/[0-9]+$"}}, "action": "redirect", "status": 301, "location": "$scheme://$host/new$path$query"},
            {"id": "mark", "match": {"header": {"name": "X-Beta"}, "query": [{"name": "debug", "value": "1"}]}, "action": "headers",
             "set": {"X-Beta-User": "yes"}, "remove": ["Cookie"], "tag": "beta"},
            {"id": "login-rate", "match": {"all": [{"path": "/login"}, {"method": "POST"}]}, "action": "limit", "limit": "login"},
            {"id": "bots", "match": {"any": [{"header": {"name": "user-agent", "value": {"contains": "BOT", "case_insensitive": true}}}, {"tls": false}]},
             "action": "tag", "tag": "bot", "mode": "log"},
            {"id": "sni", "match": {"sni": {"glob": "*.A.test"}, "host": "WWW.a.test"}, "action": "deny"}
          ],
          "signatures": {"categories": ["sqli", "xss"], "mode": "log", "fields": ["X-Search"], "status": 406},
          "routes": [{"prefix": "/", "origin": "o"}, {"prefix": "/api/", "origin": "o", "signatures": false}] }
        """#.replacingOccurrences(of: #", "routes": [{"prefix": "/", "origin": "o"}, {"prefix": "/api/", "origin": "o"}]"#, with: "")])
        let t = try ConfigLoader.loadTenants(directory: dir)[0]
        let r = t.rules.rules
        #expect(r.map(\.id) == ["no-admin", "health", "old", "mark", "login-rate", "bots", "sni"])
        #expect(r[0].action == .deny(status: 404, body: "nothing here"))
        if case .all(let parts) = r[0].condition { #expect(parts.count == 2) } else { Issue.record("no-admin: \(r[0].condition)") }
        #expect(r[1].action == .allow)
        guard case .redirect(301, let loc) = r[2].action else { Issue.record("old: \(r[2].action)"); return }
        #expect(loc.parts == [.scheme, .literal(Array("://".utf8)), .host, .literal(Array("/new".utf8)), .path, .query])
        #expect(r[3].action == .headers(set: [.init(name: "X-Beta-User", value: "yes")], remove: ["cookie"]) && r[3].tag == "beta")
        #expect(r[4].action == .limit("login"))
        #expect(r[5].logOnly && r[5].tag == "bot" && !r[0].logOnly)
        #expect(r[6].action == .deny(status: 403, body: ""))
        // Conditions as loaded: host and SNI lowercase and case-insensitive, several keys in one object all required.
        let tenNet = try PrefixList(allow: ["10.0.0.0/8", "::1"], deny: [], default: .deny)
        #expect(r[0].condition == .all([.not(.client(tenNet)), .path(TextMatch(.prefix, "/admin"))]))
        #expect(r[1].condition == .all([.method([Array("GET".utf8), Array("HEAD".utf8)]), .path(TextMatch(.exact, "/healthz"))]))
        var e = ""
        #expect(r[2].condition == .path(TextMatch(.regex(Regex("^/old/[0-9]+$", error: &e)!), "^/old/[0-9]+$")))
        #expect(r[3].condition == .all([.header(name: Array("x-beta".utf8), value: nil), .query(name: Array("debug".utf8), value: TextMatch(.exact, "1"))]))
        #expect(r[5].condition == .any([.header(name: Array("user-agent".utf8), value: TextMatch(.contains, "BOT", nocase: true)), .tls(false)]))
        #expect(r[6].condition == .all([.host(TextMatch(.exact, "www.a.test", nocase: true)), .sni(TextMatch(.glob, "*.a.test", nocase: true))]))
        #expect(t.signatures?.categories == [.sqli, .xss] && t.signatures?.logOnly == true && t.signatures?.fields == ["x-search"] && t.signatures?.status == 406)
        #expect(t.routes[0].signatures == nil)            // the tenant's
        #expect(t.routes[1].signatures == .some(nil))     // off
    }

    @Test func aRuleSetInLogMode() throws {
        let dir = try scratch(["t.json": Self.base + #", "rules": {"mode": "log", "rules": [{"id": "a", "match": {}, "action": "deny"}, {"id": "b", "match": {}, "action": "deny", "mode": "block"}]}}"#])
        let t = try ConfigLoader.loadTenants(directory: dir)[0]
        #expect(t.rules.rules.map(\.logOnly) == [true, false])
        #expect(t.rules.rules[0].condition == .all([]))
    }

    @Test(arguments: [
        (#", "rules": [{"match": {}, "action": "deny"}]}"#, "rules[0].id"),
        (#", "rules": [{"id": "a b", "match": {}, "action": "deny"}]}"#, "rules[0].id"),
        (#", "rules": [{"id": "a", "match": {}, "action": "deny"}, {"id": "a", "match": {}, "action": "allow"}]}"#, "rules[1].id"),
        (#", "rules": [{"id": "a", "action": "deny"}]}"#, "rules[0].match"),
        (#", "rules": [{"id": "a", "match": {}, "action": "drop"}]}"#, "rules[0].action"),
        (#", "rules": [{"id": "a", "match": {"url": "/"}, "action": "deny"}]}"#, "rules[0].match.url"),
        (#", "rules": [{"id": "a", "match": {"client": ["10.0.0.1/8"]}, "action": "deny"}]}"#, "rules[0].match.client[0]"),
        (#", "rules": [{"id": "a", "match": {"path": {"regex": "a(b"}}, "action": "deny"}]}"#, "rules[0].match.path.regex"),
        (#", "rules": [{"id": "a", "match": {"path": {"prefix": "/", "glob": "*"}}, "action": "deny"}]}"#, "rules[0].match.path.glob"),
        (#", "rules": [{"id": "a", "match": {"path": {"starts": "/"}}, "action": "deny"}]}"#, "rules[0].match.path.starts"),
        (#", "rules": [{"id": "a", "match": {"any": []}, "action": "deny"}]}"#, "rules[0].match.any"),
        (#", "rules": [{"id": "a", "match": {"not": {"tls": "yes"}}, "action": "deny"}]}"#, "rules[0].match.not.tls"),
        (#", "rules": [{"id": "a", "match": {"header": {"value": "x"}}, "action": "deny"}]}"#, "rules[0].match.header.name"),
        (#", "rules": [{"id": "a", "match": {}, "action": "limit"}]}"#, "rules[0].limit"),
        (#", "rules": [{"id": "a", "match": {}, "action": "limit", "limit": "nope"}]}"#, "rules[0].limit"),
        (#", "rules": [{"id": "a", "match": {}, "action": "deny", "status": 200}]}"#, "rules[0].status"),
        (#", "rules": [{"id": "a", "match": {}, "action": "deny", "location": "/"}]}"#, "rules[0].location"),
        (#", "rules": [{"id": "a", "match": {}, "action": "redirect"}]}"#, "rules[0].location"),
        (#", "rules": [{"id": "a", "match": {}, "action": "redirect", "location": "/$uri"}]}"#, "rules[0].location"),
        (#", "rules": [{"id": "a", "match": {}, "action": "redirect", "location": "/", "status": 304}]}"#, "rules[0].status"),
        (#", "rules": [{"id": "a", "match": {}, "action": "headers"}]}"#, "rules[0].set"),
        (#", "rules": [{"id": "a", "match": {}, "action": "headers", "set": {"Content-Length": "1"}}]}"#, "rules[0].set.Content-Length"),
        (#", "rules": [{"id": "a", "match": {}, "action": "headers", "remove": ["Host"]}]}"#, "rules[0].remove[0]"),
        (#", "rules": [{"id": "a", "match": {}, "action": "tag"}]}"#, "rules[0].tag"),
        (#", "rules": [{"id": "a", "match": {}, "action": "deny", "mode": "warn"}]}"#, "rules[0].mode"),
        (#", "rules": {"mode": "log", "list": []}}"#, "rules.list"),
        (#", "signatures": {"categories": ["sqli", "csrf"]}}"#, "signatures.categories[1]"),
        (#", "signatures": {"mode": "off"}}"#, "signatures.mode"),
        (#", "signatures": "on"}"#, "signatures"),
    ])
    func errorsNameTheField(_ tail: String, _ field: String) throws {
        let e = try loadError(["bad.json": Self.base + tail])
        #expect(e?.field == field, "\(String(describing: e))")
        #expect(e?.file.hasSuffix("bad.json") == true)
    }
}
