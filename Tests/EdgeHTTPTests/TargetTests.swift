import Testing
@testable import EdgeHTTP

func normalized(_ s: String) -> String? {
    let b = Array(s.utf8)
    var out: [UInt8] = []
    guard b.withUnsafeBytes({ TargetNormalizer.normalize($0, 0..<b.count, into: &out) }) != nil else { return nil }
    return String(decoding: out, as: UTF8.self)
}

@Suite(.timeLimit(.minutes(3))) struct TargetTests {
    @Test(arguments: [
        ("/", "/"),
        ("/a/b/c", "/a/b/c"),
        ("/a/./b", "/a/b"),
        ("/a/../b", "/b"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/a/%2E%2E/b", "/b"),
        ("/a/%2e./b", "/b"),
        ("/%7Euser/%41", "/~user/A"),
        ("/a%2fb", "/a%2Fb"),
        ("/a%252e%252e/b", "/a%252e%252e/b"),
        ("/p?q=%7e&r=%2f", "/p?q=~&r=%2F"),
        ("/p?/../x", "/p?/../x"),
        ("http://example.com/a/../b?x", "/b?x"),
        ("http://example.com", "/"),
        ("http://example.com?x=1", "/?x=1"),
        ("*", "*"),
    ])
    func normalizes(_ input: String, _ expected: String) {
        #expect(normalized(input) == expected)
    }

    @Test(arguments: ["/a%2", "/a%zz", "/a#frag", "ftp://x/", "http://user@host/", "http:///x", "a/b"])
    func rejects(_ input: String) {
        #expect(normalized(input) == nil)
    }

    @Test func absoluteFormAuthority() {
        let b = Array("HTTPS://Example.com:8443/x".utf8)
        var out: [UInt8] = []
        let r = b.withUnsafeBytes { TargetNormalizer.normalize($0, 0..<b.count, into: &out) }
        guard case .absolute(let a, let https)? = r?.form else { Issue.record("not absolute"); return }
        #expect(https)
        #expect(String(decoding: b[a], as: UTF8.self) == "Example.com:8443")
    }
}

@Suite(.timeLimit(.minutes(3))) struct HTTPDateTests {
    @Test func formatAndParse() {
        #expect(HTTPDate.string(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.string(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        let now: Int64 = 1_700_000_000   // 2023
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: now) == 784111777)
        for t: Int64 in [0, 951782400, 1_700_000_000, 4_102_444_799] {
            #expect(HTTPDate.parse(HTTPDate.string(t), now: now) == t)
        }
    }

    /// RFC 9110 §5.6.7: recipients take all three formats; names in any case (RFC 9111 §4.2).
    @Test func obsoleteFormatsAndCase() {
        let now: Int64 = 1_700_000_000   // 2023
        for text in ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "sun, 06 nov 1994 08:49:37 gmt",
                     "SUN, 06 NOV 1994 08:49:37 GMT", "sunday, 06-NOV-94 08:49:37 Gmt", "Sun Nov 06 08:49:37 1994"] {
            #expect(HTTPDate.parse(text, now: now) == 784111777, "\(text)")
        }
        // A two-digit year more than 50 years ahead is in the past century.
        #expect(HTTPDate.parse("Tuesday, 01-Jan-80 00:00:00 GMT", now: now) == 315_532_800)
        #expect(HTTPDate.parse("Tuesday, 01-Jan-70 00:00:00 GMT", now: now) == HTTPDate.parse("Tue, 01 Jan 2070 00:00:00 GMT", now: now))
        #expect(HTTPDate.parse("Monday, 01-Jan-29 00:00:00 GMT", now: now) == HTTPDate.parse("Mon, 01 Jan 2029 00:00:00 GMT", now: now))
        for bad in ["Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT", "Sun Nov 6 08:49:37 1994", "Sunday, 06-Nov-1994 08:49:37 GMT",
                    "Sun, 06 Nov 1994 08:49:37 GMT ", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT", "S, 06 Nov 1994 08:49:37 GMT",
                    "Sun Nov  6 08:49:37 94", "", "Sun,"] {
            #expect(HTTPDate.parse(bad, now: now) == nil, "\(bad)")
        }
    }
}
