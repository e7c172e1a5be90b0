// A tenant's `tls` (certificate files, the internal CA, or ACME) and the
// server file's `acme` defaults. Part of ConfigLoader (Loader.swift reads the
// files and the rest of a tenant and of the server).
#if canImport(EdgeJSON)   // (the config and admin fuzzers compile these sources as one module: tools/fuzz/run.sh)
import EdgeIO
#endif

extension ConfigLoader {
    /// `"tls": "internal"`, `"tls": "acme"`, `"tls": {"acme": {...}}` or
    /// `"tls": {"certificates": [{"cert": "a.pem", "key": "a.key"}]}`.
    static func loadTLS(_ root: Node, baseDir: String) throws -> TenantTLSConfig {
        guard let v = root.dict["tls"] else { return .none }
        if let s = v.string {
            if s == "acme" { return .acme(ACMETenantSettings()) }
            guard s == "internal" else { throw root.fail("tls", "expected \"internal\", \"acme\" or an object with \"certificates\" or \"acme\"") }
            return .internalCA
        }
        guard let node = try root.object("tls") else { return .none }
        if node.dict["acme"] != nil {
            try node.allowOnly(["acme"])
            guard let a = try node.object("acme") else { return .acme(ACMETenantSettings()) }
            try a.allowOnly(["directory", "email", "challenge", "key_type"])
            var t = ACMETenantSettings()
            if let d = try a.string("directory") { t.directory = try acmeDirectory(a, d) }
            t.email = try a.string("email").map { try acmeEmail(a, $0) }
            if let c = try a.string("challenge") { t.challenge = try acmeChallenge(a, c) }
            if let k = try a.string("key_type") { t.keyType = try acmeKeyType(a, k) }
            return .acme(t)
        }
        try node.allowOnly(["certificates"])
        guard let certs = try node.objects("certificates"), !certs.isEmpty else { throw node.fail("certificates", "needs at least one {\"cert\", \"key\"}") }
        var out: [CertificateFiles] = []
        for c in certs {
            try c.allowOnly(["cert", "key"])
            func path(_ k: String) throws -> String {
                let p = try c.requiredString(k)
                let full = Path.resolve(p, against: baseDir)
                guard Files.isReadable(full) else { throw c.fail(k, "cannot read \"\(full)\"") }
                return full
            }
            out.append(CertificateFiles(cert: try path("cert"), key: try path("key")))
        }
        return .files(out)
    }

    /// The server file's `acme`: directory, email, challenge, key_type, account_key_type, ca_file,
    /// parallelism, until_issued ("internal" | "reject"), retry_min, retry_max, start_spread.
    static func loadACME(_ a: Node, baseDir: String) throws -> ACMEServerConfig {
        try a.allowOnly(["directory", "email", "challenge", "key_type", "account_key_type", "ca_file", "parallelism", "until_issued", "retry_min", "retry_max", "start_spread"])
        var c = ACMEServerConfig()
        if let d = try a.string("directory") { c.directory = try acmeDirectory(a, d) }
        c.email = try a.string("email").map { try acmeEmail(a, $0) }
        if let v = try a.string("challenge") { c.challenge = try acmeChallenge(a, v) }
        if let v = try a.string("key_type") { c.keyType = try acmeKeyType(a, v) }
        if let v = try a.string("account_key_type") { c.accountKeyType = try acmeKeyType(a, v, field: "account_key_type") }
        if let v = try a.string("ca_file") {
            let full = Path.resolve(v, against: baseDir)
            guard Files.isReadable(full) else { throw a.fail("ca_file", "cannot read \"\(full)\"") }
            c.caFile = full
        }
        if let v = try a.int("parallelism", min: 1, max: 64) { c.parallelism = v }
        if let v = try a.string("until_issued") {
            guard v == "internal" || v == "reject" else { throw a.fail("until_issued", "expected \"internal\" or \"reject\"") }
            c.internalUntilIssued = v == "internal"
        }
        if let v = try a.millis("retry_min") {
            guard v >= 100 else { throw a.fail("retry_min", "must be at least 100ms") }
            c.retryMinMillis = v
        }
        if let v = try a.millis("retry_max") {
            guard v >= c.retryMinMillis else { throw a.fail("retry_max", "must not be below retry_min") }
            c.retryMaxMillis = v
        }
        if let v = try a.millis("start_spread") { c.startSpreadMillis = v }
        return c
    }

    static func acmeDirectory(_ a: Node, _ d: String) throws -> String {
        guard d.hasPrefix("https://"), d.count > 8 else { throw a.fail("directory", "\"\(d)\" is not an https:// URL") }
        return d
    }

    static func acmeEmail(_ a: Node, _ e: String) throws -> String {
        guard let at = e.firstIndex(of: "@"), at != e.startIndex, e.index(after: at) != e.endIndex,
              !e.contains(where: { $0 == " " || $0 == "," || $0 == "\"" }) else { throw a.fail("email", "\"\(e)\" is not an email address") }
        return e
    }

    static func acmeChallenge(_ a: Node, _ v: String) throws -> ACMEChallengeType {
        guard let c = ACMEChallengeType(rawValue: v) else { throw a.fail("challenge", "expected \"http-01\" or \"tls-alpn-01\"") }
        return c
    }

    static func acmeKeyType(_ a: Node, _ v: String, field: String = "key_type") throws -> String {
        guard v == "ecdsa-p256" || v == "rsa-2048" else { throw a.fail(field, "expected \"ecdsa-p256\" or \"rsa-2048\"") }
        return v
    }
}
