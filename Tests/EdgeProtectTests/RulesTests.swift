// Request-rule matching (EdgeProtect.Rules): every matcher, the combinators,
// rule order, and the redirect template.
import Testing
@testable import EdgeProtect

@Suite struct RulesTests {
    func text(_ k: TextMatch.Kind, _ p: String, nocase: Bool = false, _ s: String) -> Bool {
        Array(s.utf8).withUnsafeBytes { TextMatch(k, p, nocase: nocase).matches($0) }
    }

    func regex(_ p: String, nocase: Bool = false) -> Regex {
        var e = ""
        return Regex(p, nocase: nocase, error: &e)!
    }

    @Test func textMatchers() {
        #expect(text(.exact, "/a", "/a"))
        #expect(!text(.exact, "/a", "/ab"))
        #expect(!text(.exact, "/A", "/a"))
        #expect(text(.exact, "/a", nocase: true, "/A"))
        #expect(text(.prefix, "/api/", "/api/v1"))
        #expect(!text(.prefix, "/api/", "/api"))
        #expect(text(.suffix, ".php", "/x/index.php"))
        #expect(!text(.suffix, ".php", "/x/index.php5"))
        #expect(text(.contains, "admin", "/x/admin/y"))
        #expect(text(.contains, "", "/"))
        #expect(!text(.contains, "admin", "/adm"))
        #expect(text(.contains, "ADMIN", nocase: true, "/x/Admin"))
    }

    @Test func globs() {
        let cases: [(String, String, Bool)] = [
            ("/img/*.png", "/img/a.png", true), ("/img/*.png", "/img/a/b.png", true), ("/img/*.png", "/img/a.png.txt", false),
            ("*", "", true), ("*", "/anything", true), ("", "", true), ("", "/", false),
            ("/a?c", "/abc", true), ("/a?c", "/ac", false), ("/*/x/*", "/p/x/q", true), ("/*/x/*", "/p/y/q", false),
            ("*.example.com", "www.example.com", true), ("*.example.com", "example.com", false),
            ("a*b*c", "aXbYbZc", true), ("a*b*c", "aXbYbZ", false), ("**a", "xa", true),
        ]
        for (p, s, want) in cases { #expect(text(.glob, p, s) == want, "\(p) on \(s)") }
        #expect(text(.glob, "/IMG/*", nocase: true, "/img/x"))
    }

    @Test func regularExpressions() {
        #expect(text(.regex(regex("^/user/[0-9]+$")), "", "/user/42"))
        #expect(!text(.regex(regex("^/user/[0-9]+$")), "", "/user/42/x"))
        #expect(text(.regex(regex("wp-(login|admin)")), "", "/blog/wp-login.php"))   // unanchored
        #expect(text(.regex(regex("^/ADMIN", nocase: true)), "", "/admin"))
        // Bytes past the buffer's end are not read (REG_STARTEND): the same
        // memory with a shorter length does not match what lies beyond.
        let bytes = Array("/abc/secret".utf8)
        bytes.withUnsafeBytes { b in
            #expect(!regex("secret").matches(UnsafeRawBufferPointer(rebasing: b[0..<5])))
            #expect(regex("secret").matches(b))
        }
        var e = ""
        #expect(Regex("a(b", error: &e) == nil)
        #expect(!e.isEmpty)
        #expect(Regex(String(repeating: "a", count: 2000), error: &e) == nil)
    }

    @Test func conditions() {
        var r = RuleRequest(method: "POST", host: "api.a.test", path: "/v1/users", query: "debug=1&x=&flag",
                            fields: [("X-Api-Key", "k-123"), ("User-Agent", "curl/8")], client: "10.1.2.3", tls: true, sni: "api.a.test")
        func m(_ c: Condition) -> Bool { r.with { c.matches($0) } }
        #expect(m(.method([Array("GET".utf8), Array("POST".utf8)])))
        #expect(!m(.method([Array("post".utf8)])))
        #expect(m(.host(TextMatch(.suffix, ".a.test"))))
        #expect(m(.path(TextMatch(.prefix, "/v1/"))))
        #expect(m(.query(name: Array("debug".utf8), value: nil)))
        #expect(m(.query(name: Array("debug".utf8), value: TextMatch(.exact, "1"))))
        #expect(!m(.query(name: Array("debug".utf8), value: TextMatch(.exact, "0"))))
        #expect(m(.query(name: Array("x".utf8), value: TextMatch(.exact, ""))))
        #expect(m(.query(name: Array("flag".utf8), value: nil)))
        #expect(!m(.query(name: Array("de".utf8), value: nil)))
        #expect(m(.header(name: Array("x-api-key".utf8), value: nil)))
        #expect(m(.header(name: Array("user-agent".utf8), value: TextMatch(.prefix, "curl/"))))
        #expect(!m(.header(name: Array("authorization".utf8), value: nil)))
        let tenNet = try! PrefixList(allow: ["10.0.0.0/8"], deny: [], default: .deny)
        #expect(m(.client(tenNet)))
        #expect(m(.tls(true)))
        #expect(!m(.tls(false)))
        #expect(m(.sni(TextMatch(.exact, "api.a.test"))))
        #expect(m(.all([.tls(true), .client(tenNet)])))
        #expect(!m(.all([.tls(true), .tls(false)])))
        #expect(m(.any([.tls(false), .client(tenNet)])))
        #expect(!m(.any([])))
        #expect(m(.all([])))
        #expect(m(.not(.tls(false))))
        r.client = "192.0.2.9"
        r.sni = ""
        r.tls = false
        #expect(!m(.client(tenNet)))
        #expect(!m(.sni(TextMatch(.glob, "*"))))   // no SNI: never matches
    }

    @Test func firstMatchInOrder() {
        let rules = RuleSet([
            Rule(id: "a", condition: .path(TextMatch(.prefix, "/x")), action: .tag),
            Rule(id: "b", condition: .tls(true), action: .allow),
            Rule(id: "c", condition: .path(TextMatch(.prefix, "/")), action: .deny(status: 403, body: "")),
        ])
        let r = RuleRequest(path: "/x/y")
        #expect(r.with { rules.firstMatch($0, from: 0) } == 0)
        #expect(r.with { rules.firstMatch($0, from: 1) } == 2)
        #expect(r.with { rules.firstMatch($0, from: 3) } == nil)
        #expect(rules.rules[1].isFinal && !rules.rules[0].isFinal)
    }

    @Test func locationTemplates() {
        func expand(_ t: String, https: Bool, query: String) -> String {
            let h = Array("a.test".utf8), p = Array("/old/x".utf8), q = Array(query.utf8)
            return h.withUnsafeBytes { hb in p.withUnsafeBytes { pb in q.withUnsafeBytes { qb in
                String(decoding: LocationTemplate(t).expand(https: https, host: hb, path: pb, query: qb), as: UTF8.self)
            } } }
        }
        #expect(expand("$scheme://$host/new$path$query", https: true, query: "a=1") == "https://a.test/new/old/x?a=1")
        #expect(expand("$scheme://$host$path$query", https: false, query: "") == "http://a.test/old/x")
        #expect(expand("https://b.test/$$x", https: false, query: "") == "https://b.test/$$x")
        #expect(LocationTemplate.unknownVariable("https://$host$uri") == "$uri")
        #expect(LocationTemplate.unknownVariable("$scheme://$host$path$query") == nil)
    }

    /// The compiled program (RuleProgram, what requests run) agrees with the
    /// definition (Condition.matches) on random rules and requests, the path
    /// literal prefilter and the regex-last order included.
    @Test func theCompiledProgramAgreesWithTheDefinition() {
        var rng = SystemRandomNumberGenerator()
        let words = ["/a", "/ab", "/a/b", "/b", "/A", "", "/a/", "x", "/a?", "/*", "b*", "/a*c"]
        func word() -> String { words.randomElement(using: &rng)! }
        func textMatch() -> TextMatch {
            let nocase = Bool.random(using: &rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: return TextMatch(.exact, word(), nocase: nocase)
            case 1: return TextMatch(.prefix, word(), nocase: nocase)
            case 2: return TextMatch(.suffix, word(), nocase: nocase)
            case 3: return TextMatch(.contains, word(), nocase: nocase)
            case 4: return TextMatch(.glob, word(), nocase: nocase)
            default:
                let p = ["^/a", "^/a/b", "^/ab*", "b$", "^/(a|b)", "^/a+b", "a{2}", "^/A/?b"].randomElement(using: &rng)!
                return TextMatch(.regex(regex(p, nocase: nocase)), p, nocase: nocase)
            }
        }
        func condition(_ depth: Int) -> Condition {
            switch Int.random(in: 0..<(depth > 2 ? 8 : 11), using: &rng) {
            case 0: return .method([Array("GET".utf8), Array("POST".utf8)].filter { _ in Bool.random(using: &rng) })
            case 1: return .host(textMatch())
            case 2, 3: return .path(textMatch())
            case 4: return .query(name: Array(["a", "b", "ab"].randomElement(using: &rng)!.utf8), value: Bool.random(using: &rng) ? textMatch() : nil)
            case 5: return .header(name: Array(["x-a", "x-b"].randomElement(using: &rng)!.utf8), value: Bool.random(using: &rng) ? textMatch() : nil)
            case 6: return .tls(Bool.random(using: &rng))
            case 7: return .client(try! PrefixList(allow: [["10.0.0.0/8"], ["192.0.2.0/24", "::1"], []].randomElement(using: &rng)!, deny: [], default: .deny))
            case 8: return .all((0..<Int.random(in: 0..<4, using: &rng)).map { _ in condition(depth + 1) })
            case 9: return .any((0..<Int.random(in: 0..<4, using: &rng)).map { _ in condition(depth + 1) })
            default: return .not(condition(depth + 1))
            }
        }
        for _ in 0..<300 {
            let rules = (0..<8).map { i in Rule(id: "r\(i)", condition: condition(0), action: .tag) }
            let set = RuleSet(rules)
            for _ in 0..<20 {
                let paths = ["/a", "/ab", "/a/b", "/A/B", "/b", "/", "/aab", "/abc", "/aac"]
                let req = RuleRequest(method: ["GET", "POST", "PUT"].randomElement(using: &rng)!, host: ["a.test", "ab"].randomElement(using: &rng)!,
                                      path: paths.randomElement(using: &rng)!, query: ["", "a=1", "ab=/a&b", "b=x&a=/ab"].randomElement(using: &rng)!,
                                      fields: [("X-A", "/a"), ("x-b", "B")].filter { _ in Bool.random(using: &rng) },
                                      client: ["10.1.1.1", "192.0.2.5", "::1", "2001:db8::1"].randomElement(using: &rng)!, tls: Bool.random(using: &rng))
                req.with { input in
                    var naive: [Int] = []
                    for (i, r) in rules.enumerated() where r.condition.matches(input) { naive.append(i) }
                    var compiled: [Int] = []
                    var i = 0
                    while let m = set.firstMatch(input, from: i) { compiled.append(m); i = m + 1 }
                    #expect(compiled == naive, "\(rules.map(\.condition)) on \(req)")
                }
            }
        }
    }
}

@Suite struct PathRewriteTests {
    func rewrite(_ pattern: String, _ replacement: String, _ path: String) -> String? {
        var why = ""
        let rw = PathRewrite(pattern: pattern, replacement: replacement, error: &why)!
        return Array(path.utf8).withUnsafeBytes { rw.apply($0) }.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func replacesTheFirstMatchWithGroups() {
        #expect(rewrite("^/old/(.*)$", "/new/$1", "/old/a/b") == "/new/a/b")
        #expect(rewrite("^/old/(.*)$", "/new/$1", "/other") == nil)
        #expect(rewrite("\\.php$", ".html", "/x/index.php") == "/x/index.html", "only the match is replaced")
        #expect(rewrite("/v([0-9])/", "/version-$1/", "/api/v1/v2/") == "/api/version-1/v2/", "the first match only")
        #expect(rewrite("^/(a)|(b)$", "[$1$2]", "/a") == "[a]", "a group that took no part is empty")
        #expect(rewrite("^/price$", "/cost$$", "/price") == "/cost$")
        #expect(rewrite("^/(x)$", "$0-$1", "/x") == "/x-x")
    }

    @Test func refusesWhatCannotWork() {
        var why = ""
        #expect(PathRewrite(pattern: "(", replacement: "/", error: &why) == nil && !why.isEmpty)
        why = ""
        #expect(PathRewrite(pattern: "^/(a)$", replacement: "/$2", error: &why) == nil)
        #expect(why.contains("$2"))
    }
}
