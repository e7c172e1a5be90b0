// Request fields that claim to override what the request itself says: its
// URL, method, scheme, host, port or the client's address. Some origin
// frameworks honour them, and none of them is part of a cache key, so a
// client that sends one can get another URL's answer (say /admin's) stored
// under its own URL for everyone. edge removes them from requests of
// untrusted peers; a tenant may list those its origins need
// (`pass_request_headers`). Pure.

public enum OverrideFields {
    /// The names, lowercase.
    public static let names: [String] = [
        "x-original-url", "x-rewrite-url", "x-original-uri", "x-forwarded-uri", "x-forwarded-path",
        "x-http-method-override", "x-http-method", "x-method-override",
        "x-forwarded-scheme", "x-forwarded-port", "x-forwarded-prefix", "x-forwarded-ssl", "x-forwarded-server",
        "x-host", "x-original-host", "front-end-https", "x-url-scheme",
        "x-real-ip", "x-client-ip", "true-client-ip", "cf-connecting-ip", "x-cluster-client-ip", "fastly-client-ip",
        "client-ip",
    ]
    static let table: [[UInt8]] = names.map { Array($0.utf8) }

    /// True when `p[start..<end]` is one of `names` (case-insensitive).
    @inline(__always) public static func contains(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        let n = end - start
        guard n >= 6 && n <= 22 else { return false }
        let first = asciiLower(p[start])
        guard first == 120 || first == 102 || first == 116 || first == 99 else { return false }   // x f t c
        for name in table where name.count == n && name[0] == first {
            var same = true
            for k in 1..<n where asciiLower(p[start + k]) != name[k] { same = false; break }
            if same { return true }
        }
        return false
    }
}
