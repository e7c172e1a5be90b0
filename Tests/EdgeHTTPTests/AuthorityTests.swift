import Testing
@testable import EdgeHTTP

func normalizedHost(_ s: String) -> String? {
    let b = Array(s.utf8)
    var out: [UInt8] = []
    guard b.withUnsafeBytes({ Authority.normalize($0, 0..<b.count, into: &out) }) else { return nil }
    return String(decoding: out, as: UTF8.self)
}

@Suite(.timeLimit(.minutes(3))) struct AuthorityTests {
    @Test(arguments: [
        ("a.test", "a.test"),
        ("A.TEST.", "a.test"),
        ("a.test:1337", "a.test"),
        ("A.Test.:443", "a.test"),
        ("a.test:", "a.test"),
        ("a.test:65535", "a.test"),
        ("a.test:1", "a.test"),
        ("a-b_c~d.test", "a-b_c~d.test"),
        ("127.0.0.1:8080", "127.0.0.1"),
        ("[::1]", "[::1]"),
        ("[2001:DB8::1]:443", "[2001:db8::1]"),
        ("", ""),
    ])
    func normalizes(_ input: String, _ expected: String) {
        #expect(normalizedHost(input) == expected)
    }

    @Test(arguments: ["a.test:0", "a.test:65536", "a.test:99999999999999999999", "a.test:-1", "a.test:8o", "a.test:80:80",
                      ":80", ".", "0..", "a.test..:80", "[::1", "[]", "[::1]x", "[::g]", "a.test%2f", "a.test/", "a b", "a@b", "a,b", "a;b"])
    func rejects(_ input: String) {
        #expect(normalizedHost(input) == nil)
    }
}
