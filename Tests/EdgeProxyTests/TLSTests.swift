// TLS termination with real handshakes: the openssl command-line client and curl.
import Foundation
import Glibc
import Testing
@testable import EdgeProxy

/// Makes a self-signed certificate with the openssl CLI; returns (cert, key) paths.
func makeCertificate(in dir: String, name: String, cn: String, sans: [String], rsa: Bool = false) throws -> (String, String) {
    let cert = "\(dir)/\(name).crt", key = "\(dir)/\(name).key"
    let alg = rsa ? "rsa:2048" : "ec -pkeyopt ec_paramgen_curve:P-256"
    let (status, out) = try shell("openssl req -x509 -newkey \(alg) -nodes -keyout '\(key)' -out '\(cert)' -days 30 -subj '/CN=\(cn)' -addext 'subjectAltName=\(sans.map { "DNS:" + $0 }.joined(separator: ","))'")
    guard status == 0 else { throw HarnessError(description: "openssl req failed: \(out)") }
    return (cert, key)
}

/// `openssl s_client` against 127.0.0.1:port with the given extra arguments.
func sClient(_ port: Int, _ args: String, input: String = "") throws -> String {
    let feed = input.isEmpty ? "</dev/null" : "<<'EOF'\n\(input)\nEOF\n"
    return try shell("openssl s_client -connect 127.0.0.1:\(port) \(args) \(feed)").1
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct TLSTests {
    let certDir: String
    init() throws {
        certDir = FileManager.default.temporaryDirectory.appendingPathComponent("edge-certs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: certDir, withIntermediateDirectories: true)
    }

    func tenant(_ name: String, _ hosts: [String], _ origin: Origin, certs: [(String, String)], extra: String = "") -> String {
        let list = certs.map { #"{"cert": "\#($0.0)", "key": "\#($0.1)"}"# }.joined(separator: ",")
        return tenantJSON(name: name, hosts: hosts, origins: #"{"o": {"servers": ["\#(origin.address)"]}}"#,
                          routes: #"[{"prefix": "/", "origin": "o"}]"#,
                          extra: #""tls": {"certificates": [\#(list)]}"# + (extra.isEmpty ? "" : ", " + extra))
    }

    @Test func sniPicksEachTenantsCertificate() throws {
        let o = try Origin()
        let a = try makeCertificate(in: certDir, name: "a", cn: "a.test", sans: ["a.test"])
        let b = try makeCertificate(in: certDir, name: "b", cn: "b.test", sans: ["b.test"], rsa: true)
        let w = try makeCertificate(in: certDir, name: "w", cn: "*.w.test", sans: ["*.w.test"])
        let edge = try Edge(tenants: [tenant("a", ["a.test"], o, certs: [a]), tenant("b", ["b.test"], o, certs: [b]),
                                      tenant("w", ["*.w.test"], o, certs: [w])])
        defer { edge.stop() }
        #expect(try sClient(edge.httpsPort, "-servername a.test -brief").contains("Peer certificate: CN = a.test"))
        let rsa = try sClient(edge.httpsPort, "-servername b.test -brief")
        #expect(rsa.contains("Peer certificate: CN = b.test"))
        #expect(rsa.contains("Signature type: RSA"))
        #expect(try sClient(edge.httpsPort, "-servername x.w.test -brief").contains("Peer certificate: CN = *.w.test"))
        // A wildcard covers one label only; unknown names and no SNI fail without a default.
        #expect(try sClient(edge.httpsPort, "-servername x.y.w.test -brief").contains("unrecognized name"))
        #expect(try sClient(edge.httpsPort, "-brief").contains("unrecognized name"))
        // Requests over TLS reach the right tenant, with X-Forwarded-Proto https.
        let (st, out) = try shell("curl -s -m 30 --cacert '\(a.0)' --resolve a.test:\(edge.httpsPort):127.0.0.1 https://a.test:\(edge.httpsPort)/echo/tls")
        #expect(st == 0, "\(out)")
        #expect(out.contains("\"X-Forwarded-Proto\", \"https\""))
        // The access log records handshake failures, with the SNI name.
        edge.stop()
        #expect(edge.accessLog().contains { ($0["event"] as? String) == "tls_handshake_failed" && ($0["sni"] as? String) == "x.y.w.test" })
    }

    @Test func rsaAndECDSAServedByWhatTheClientSupports() throws {
        let o = try Origin()
        let ec = try makeCertificate(in: certDir, name: "dual-ec", cn: "dual-ec", sans: ["dual.test"])
        let rsa = try makeCertificate(in: certDir, name: "dual-rsa", cn: "dual-rsa", sans: ["dual.test"], rsa: true)
        let edge = try Edge(tenants: [tenant("dual", ["dual.test"], o, certs: [rsa, ec])])
        defer { edge.stop() }
        #expect(try sClient(edge.httpsPort, "-servername dual.test -brief -sigalgs ECDSA+SHA256").contains("CN = dual-ec"))
        #expect(try sClient(edge.httpsPort, "-servername dual.test -brief -sigalgs RSA-PSS+SHA256:RSA+SHA256").contains("CN = dual-rsa"))
        #expect(try sClient(edge.httpsPort, "-servername dual.test -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256 -brief").contains("CN = dual-rsa"))
    }

    @Test func defaultCertificateForNoOrUnknownSNI() throws {
        let o = try Origin()
        let a = try makeCertificate(in: certDir, name: "d", cn: "main.test", sans: ["main.test"])
        let edge = try Edge(tenants: [tenant("main", ["main.test"], o, certs: [a], extra: #""default": true"#)])
        defer { edge.stop() }
        #expect(try sClient(edge.httpsPort, "-brief").contains("Peer certificate: CN = main.test"))
        #expect(try sClient(edge.httpsPort, "-servername other.test -brief").contains("Peer certificate: CN = main.test"))
    }

    @Test func onlyModernProtocolsAndForwardSecretCiphers() throws {
        let o = try Origin()
        let a = try makeCertificate(in: certDir, name: "m", cn: "m.test", sans: ["m.test"])
        let edge = try Edge(tenants: [tenant("m", ["m.test"], o, certs: [a])])
        defer { edge.stop() }
        #expect(try sClient(edge.httpsPort, "-servername m.test -tls1_1 -brief").contains("alert protocol version"))
        #expect(try sClient(edge.httpsPort, "-servername m.test -tls1 -brief").contains("alert protocol version"))
        #expect(try sClient(edge.httpsPort, "-servername m.test -tls1_2 -cipher AES128-GCM-SHA256 -brief").contains("handshake failure"))
        #expect(try sClient(edge.httpsPort, "-servername m.test -tls1_2 -cipher ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA -brief").contains("handshake failure"))
        #expect(try sClient(edge.httpsPort, "-servername m.test -tls1_2 -brief").contains("Protocol version: TLSv1.2"))
        #expect(try sClient(edge.httpsPort, "-servername m.test -brief").contains("Protocol version: TLSv1.3"))
        // ALPN by the server's preference: h2, then http/1.1; nothing else.
        #expect(try sClient(edge.httpsPort, "-servername m.test -alpn http/1.1,h2").contains("ALPN protocol: h2"))
        #expect(try sClient(edge.httpsPort, "-servername m.test -alpn http/1.1").contains("ALPN protocol: http/1.1"))
        #expect(try sClient(edge.httpsPort, "-servername m.test -alpn spdy/3").contains("No ALPN negotiated"))
    }

    @Test func sessionsResume() throws {
        let o = try Origin()
        let a = try makeCertificate(in: certDir, name: "r", cn: "r.test", sans: ["r.test"])
        let edge = try Edge(tenants: [tenant("r", ["r.test"], o, certs: [a])])
        defer { edge.stop() }
        let s12 = certDir + "/s12", s13 = certDir + "/s13"
        _ = try sClient(edge.httpsPort, "-servername r.test -tls1_2 -sess_out \(s12)")
        #expect(try sClient(edge.httpsPort, "-servername r.test -tls1_2 -sess_in \(s12)").contains("Reused, TLSv1.2"))
        // TLS 1.3 tickets arrive after the handshake: keep the connection for a request.
        _ = try shell("printf 'GET /echo HTTP/1.1\\r\\nHost: r.test\\r\\nConnection: close\\r\\n\\r\\n' | openssl s_client -connect 127.0.0.1:\(edge.httpsPort) -servername r.test -sess_out \(s13) -quiet")
        #expect(try shell("openssl s_client -connect 127.0.0.1:\(edge.httpsPort) -servername r.test -sess_in \(s13) </dev/null").1.contains("Reused, TLSv1.3"))
    }

    @Test func closingConnectionsNeverWriteToAnotherConnection() throws {
        // Audit: the fd was closed before close_notify went out, so the alert reached
        // whichever connection the kernel gave that number next. Two workers, TLS and
        // plain connections opened and closed side by side, every byte checked.
        let o = try Origin()
        let a = try makeCertificate(in: certDir, name: "storm", cn: "storm.test", sans: ["storm.test"])
        let edge = try Edge(tenants: [tenant("s", ["storm.test"], o, certs: [a])], workers: 2)
        defer { edge.stop() }
        let script = repoRoot.appendingPathComponent("tools/testclient/storm.py").path
        let (st, out) = try shell("timeout 120 python3 '\(script)' \(edge.port) \(edge.httpsPort) storm.test '\(a.0)' 300 2")
        #expect(st == 0, "\(out)")
        let r = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "\(out)")
        #expect(r["ok"] as? Int == 600, "\(out)")
        #expect(r["handshake_errors"] as? Int == 0, "\(out)")
        #expect(r["bad"] as? Int == 0, "\(out)")
    }

    @Test func sessionsNeverResumeAcrossTenants() throws {
        // A session made with one tenant's name must not resume under another's:
        // over TLS 1.3 that connection would be served as the other tenant without
        // its certificate ever being presented.
        let o = try Origin()
        let a = try makeCertificate(in: certDir, name: "xa", cn: "a.test", sans: ["a.test", "www.a.test"])
        let b = try makeCertificate(in: certDir, name: "xb", cn: "b.test", sans: ["b.test"])
        let edge = try Edge(tenants: [tenant("a", ["a.test", "www.a.test"], o, certs: [a]), tenant("b", ["b.test"], o, certs: [b])])
        defer { edge.stop() }
        let port = edge.httpsPort
        // TLS 1.2 with a session id (no ticket), TLS 1.2 with a ticket.
        for (name, flags) in [("id12", "-tls1_2 -no_ticket"), ("tk12", "-tls1_2")] {
            let file = certDir + "/" + name
            _ = try shell("timeout 10 openssl s_client -connect 127.0.0.1:\(port) -servername a.test \(flags) -sess_out \(file) </dev/null")
            let same = try shell("timeout 10 openssl s_client -connect 127.0.0.1:\(port) -servername a.test \(flags) -sess_in \(file) </dev/null").1
            #expect(same.contains("Reused, TLSv1.2"), "\(name): the same name resumes")
            let sibling = try shell("timeout 10 openssl s_client -connect 127.0.0.1:\(port) -servername www.a.test \(flags) -sess_in \(file) </dev/null").1
            #expect(sibling.contains("Reused, TLSv1.2"), "\(name): another name of the same tenant resumes")
            let other = try shell("timeout 10 openssl s_client -connect 127.0.0.1:\(port) -servername b.test \(flags) -sess_in \(file) </dev/null").1
            #expect(!other.contains("Reused"), "\(name): \(other)")
            #expect(other.contains("CN = b.test") || other.contains("CN=b.test"), "\(name): b's certificate is presented: \(other)")
        }
        // TLS 1.3 tickets arrive after the handshake: read a response before saving the session.
        let file = certDir + "/tk13"
        _ = try shell("printf 'GET /echo HTTP/1.1\\r\\nHost: a.test\\r\\nConnection: close\\r\\n\\r\\n' | timeout 10 openssl s_client -connect 127.0.0.1:\(port) -servername a.test -sess_out \(file) -quiet")
        let same = try shell("timeout 10 openssl s_client -connect 127.0.0.1:\(port) -servername a.test -sess_in \(file) </dev/null").1
        #expect(same.contains("Reused, TLSv1.3"), "1.3: the same name resumes: \(same)")
        let other = try shell("printf 'GET /echo HTTP/1.1\\r\\nHost: b.test\\r\\nConnection: close\\r\\n\\r\\n' | timeout 10 openssl s_client -connect 127.0.0.1:\(port) -servername b.test -sess_in \(file)").1
        #expect(!other.contains("Reused"), "1.3: \(other)")
        #expect(other.contains("CN = b.test") || other.contains("CN=b.test"), "1.3: b's certificate is presented: \(other)")
    }

    @Test func ticketsResumeOnEveryWorker() throws {
        let o = try Origin()
        let a = try makeCertificate(in: certDir, name: "k", cn: "k.test", sans: ["k.test"])
        let edge = try Edge(tenants: [tenant("k", ["k.test"], o, certs: [a])], workers: 2)
        defer { edge.stop() }
        let s = certDir + "/k13"
        _ = try shell("printf 'GET /echo HTTP/1.1\\r\\nHost: k.test\\r\\nConnection: close\\r\\n\\r\\n' | openssl s_client -connect 127.0.0.1:\(edge.httpsPort) -servername k.test -sess_out \(s) -quiet")
        // New connections land on either worker (SO_REUSEPORT hashes the client's port);
        // the shared key ring decrypts on both: each worker's resumption counter says so.
        let workers = edge.server.stats.workers
        var tries = 0
        while tries < 40 && !workers.allSatisfy({ $0.load(WorkerSlot.tlsResumed) > 0 }) {
            #expect(try shell("openssl s_client -connect 127.0.0.1:\(edge.httpsPort) -servername k.test -sess_in \(s) </dev/null").1.contains("Reused, TLSv1.3"))
            tries += 1
        }
        #expect(workers.allSatisfy { $0.load(WorkerSlot.tlsResumed) > 0 }, "resumed per worker: \(workers.map { $0.load(WorkerSlot.tlsResumed) }) after \(tries) connections")
    }

    @Test func hostOfAnotherTenantGets421WithoutOriginContact() throws {
        let oa = try Origin(name: "a")
        let ob = try Origin(name: "b")
        let a = try makeCertificate(in: certDir, name: "fa", cn: "a.test", sans: ["a.test"])
        let b = try makeCertificate(in: certDir, name: "fb", cn: "b.test", sans: ["b.test"])
        let edge = try Edge(tenants: [tenant("a", ["a.test"], oa, certs: [a]), tenant("b", ["b.test"], ob, certs: [b])])
        defer { edge.stop() }
        let (_, fronted) = try shell("curl -s -m 30 -o /dev/null -w '%{http_code}' --cacert '\(a.0)' --resolve a.test:\(edge.httpsPort):127.0.0.1 -H 'Host: b.test' https://a.test:\(edge.httpsPort)/echo")
        #expect(fronted == "421")
        let (_, ok) = try shell("curl -s -m 30 -o /dev/null -w '%{http_code}' --cacert '\(b.0)' --resolve b.test:\(edge.httpsPort):127.0.0.1 https://b.test:\(edge.httpsPort)/echo")
        #expect(ok == "200")
        #expect(try oa.stats().requests == 0)
        #expect(try ob.stats().requests == 1)
    }

    @Test func errorsBeforeATenantIsKnownUseTheHandshakesTenantsPages() throws {
        let oa = try Origin(name: "a"), ob = try Origin(name: "b")
        let a = try makeCertificate(in: certDir, name: "pa", cn: "a.test", sans: ["a.test"])
        let b = try makeCertificate(in: certDir, name: "pb", cn: "b.test", sans: ["b.test"])
        let edge = try Edge(tenants: [tenant("a", ["a.test"], oa, certs: [a], extra: #""error_pages": {"421": "e/421.html", "400": "e/400.html"}"#),
                                      tenant("b", ["b.test"], ob, certs: [b])],
                            files: ["e/421.html": "<p>a: misdirected</p>\n", "e/400.html": "<p>a: bad request</p>\n"])
        defer { edge.stop() }
        // Another tenant's host on a's connection: a's page (the tenant the handshake chose).
        for proto in ["--http1.1", "--http2"] {
            let (_, body) = try shell("curl -s -m 30 \(proto) --cacert '\(a.0)' --resolve a.test:\(edge.httpsPort):127.0.0.1 -H 'Host: b.test' -w ' %{http_code}' https://a.test:\(edge.httpsPort)/echo")
            #expect(body == "<p>a: misdirected</p>\n 421", "\(proto): \(body)")
        }
        // A malformed head, before any host is read: a's page too.
        let out = try sClient(edge.httpsPort, "-servername a.test -quiet -crlf", input: "GET / HTTP/1.1\nHost: a.test\nBad Field: x\n")
        #expect(out.contains("HTTP/1.1 400") && out.contains("<p>a: bad request</p>"), "\(out)")
        #expect(try oa.stats().requests == 0 && ob.stats().requests == 0)
    }

    @Test func internalCAIssuesCertificatesCurlTrusts() throws {
        let o = try Origin()
        let edge = try Edge(tenants: [tenantJSON(name: "dev", hosts: ["dev.test", "*.dev.test"], origins: #"{"o": {"servers": ["\#(o.address)"]}}"#,
                                                 routes: #"[{"prefix": "/", "origin": "o"}]"#, extra: #""tls": "internal""#)])
        defer { edge.stop() }
        let ca = edge.stateDir + "/ca.pem"
        var st = stat()
        #expect(stat(edge.stateDir + "/ca.key", &st) == 0 && st.st_mode & 0o777 == 0o600)
        for host in ["dev.test", "api.dev.test"] {
            let (status, out) = try shell("curl -s -m 30 --cacert '\(ca)' --resolve \(host):\(edge.httpsPort):127.0.0.1 https://\(host):\(edge.httpsPort)/echo/ca")
            #expect(status == 0, "\(host): \(out)")
            #expect(out.contains("/echo/ca"))
        }
    }

    @Test func plainHTTPRedirectsAndHSTSOnlyOverTLS() throws {
        let o = try Origin()
        let a = try makeCertificate(in: certDir, name: "h", cn: "h.test", sans: ["h.test"])
        let edge = try Edge(tenants: [
            tenant("h", ["h.test"], o, certs: [a], extra: #""https_redirect": true, "hsts": "max-age=63072000; includeSubDomains""#),
            tenant("p", ["p.test"], o, certs: [try makeCertificate(in: certDir, name: "p", cn: "p.test", sans: ["p.test"])]),
        ])
        defer { edge.stop() }
        let get = try request(edge.port, "/a/../b?x=1", host: "h.test:\(edge.port)")
        #expect(get.status == 301)
        #expect(get.header("Location") == "https://h.test:\(edge.httpsPort)/b?x=1")
        #expect(get.header("Strict-Transport-Security") == nil)
        let post = try request(edge.port, "POST", "/form", host: "h.test", body: "x=1")
        #expect(post.status == 308)
        #expect(try o.stats().requests == 0)
        let (_, headers) = try shell("curl -s -m 30 -D - -o /dev/null --cacert '\(a.0)' --resolve h.test:\(edge.httpsPort):127.0.0.1 https://h.test:\(edge.httpsPort)/echo")
        #expect(headers.lowercased().contains("strict-transport-security: max-age=63072000; includesubdomains"), "\(headers)")
        // A tenant without the redirect still answers plain HTTP.
        #expect(try request(edge.port, "/echo", host: "p.test").status == 200)
    }

    @Test func requestsAreReadWhereverTheirRecordsBreak() throws {
        // Edge stops reading a TLS connection once OpenSSL's last socket read came
        // back short and it holds nothing (one read per request, not a second that
        // would block). Bytes that arrive in any shape must still all be read:
        // requests split across records sent apart, three in one record, a record
        // split across TCP writes, two records in one write (lost when edge trusted
        // a short decrypted read alone).
        let o = try Origin()
        let cert = try makeCertificate(in: certDir, name: "split", cn: "split.test", sans: ["split.test"])
        let edge = try Edge(tenants: [tenant("s", ["split.test"], o, certs: [cert])])
        defer { edge.stop() }
        let script = repoRoot.appendingPathComponent("tools/testclient/tls_split.py").path
        let (status, out) = try shell("python3 '\(script)' \(edge.httpsPort) split.test /bytes/100")
        #expect(status == 0, "\(out)")
        #expect(out.components(separatedBy: "ok ").count - 1 == 4, "\(out)")
    }

    @Test func largeBodiesCrossTLSOnBothSides() throws {
        // OpenSSL's partial writes return after each record with the socket still
        // writable; a stall there once cut every TLS response near 128 KB.
        let cert = try makeCertificate(in: certDir, name: "big", cn: "big.test", sans: ["big.test", "origin.test"])
        let o = try Origin(name: "bigtls", extra: ["--tls", cert.0, cert.1])
        let edge = try Edge(tenants: [tenantJSON(name: "b", hosts: ["big.test"],
            origins: #"{"o": {"servers": ["https://127.0.0.1:\#(o.port)"], "tls": {"ca": "\#(cert.0)", "server_name": "origin.test"}}}"#,
            routes: #"[{"prefix": "/", "origin": "o", "cache": false}]"#,
            extra: #""tls": {"certificates": [{"cert": "\#(cert.0)", "key": "\#(cert.1)"}]}"#)])
        defer { edge.stop() }
        let base = "--cacert '\(cert.0)' --resolve big.test:\(edge.httpsPort):127.0.0.1 https://big.test:\(edge.httpsPort)"
        let (s1, size) = try shell("curl -s -m 20 \(base)/bytes/3000000 | wc -c")
        #expect(s1 == 0 && size.trimmingCharacters(in: .whitespacesAndNewlines) == "3000000", "\(size)")
        let file = edge.dir.appendingPathComponent("upload").path
        #expect(try shell("head -c 2000000 /dev/urandom > '\(file)'").0 == 0)
        let (_, digest) = try shell("sha256sum '\(file)'")
        let (s2, out) = try shell("curl -s -m 20 --data-binary @'\(file)' \(base)/upload")
        #expect(s2 == 0 && out.contains(String(digest.prefix(64))) && out.contains("2000000"), "\(out)")
    }

    @Test func httpsOriginsAreVerified() throws {
        let good = try makeCertificate(in: certDir, name: "og", cn: "origin.test", sans: ["origin.test"])
        let wrong = try makeCertificate(in: certDir, name: "ow", cn: "elsewhere.test", sans: ["elsewhere.test"])
        let client = try makeCertificate(in: certDir, name: "oc", cn: "edge-client", sans: ["edge-client"])
        let o1 = try Origin(name: "secure", extra: ["--tls", good.0, good.1])
        let o2 = try Origin(name: "impostor", extra: ["--tls", wrong.0, wrong.1])
        let o3 = try Origin(name: "mutual", extra: ["--tls", good.0, good.1, "--client-ca", client.0])
        func group(_ o: Origin, _ extra: String = "", ca: String? = nil) -> String {
            #"{"servers": ["https://127.0.0.1:\#(o.port)"], "max_fails": 100, "tls": {"ca": "\#(ca ?? good.0)", "server_name": "origin.test"\#(extra)}}"#
        }
        let edge = try Edge(tenants: [tenantJSON(name: "t", hosts: ["t.test"],
            origins: #"{"good": \#(group(o1)), "bad": \#(group(o2)), "mtls": \#(group(o3, #", "client_cert": "\#(client.0)", "client_key": "\#(client.1)""#)), "nocert": \#(group(o3)), "mismatch": \#(group(o2, ca: wrong.0))}"#,
            routes: #"[{"prefix": "/", "origin": "good"}, {"prefix": "/bad/", "origin": "bad"}, {"prefix": "/mtls/", "origin": "mtls"}, {"prefix": "/nocert/", "origin": "nocert"}, {"prefix": "/mismatch/", "origin": "mismatch"}]"#)])
        defer { edge.stop() }
        let c = try Client(port: edge.port)
        for i in 0..<3 {
            c.send("GET /echo/\(i) HTTP/1.1\r\nHost: t.test\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.status == 200)
            #expect(r.json["origin"] as? String == "secure")
        }
        #expect(try o1.stats().connections == 1)   // TLS origin connections are pooled too
        #expect(try request(edge.port, "/bad/x", host: "t.test").status == 502)
        #expect(try request(edge.port, "/mtls/echo", host: "t.test").json["origin"] as? String == "mutual")
        #expect(try request(edge.port, "/nocert/echo", host: "t.test").status == 502)
        #expect(try request(edge.port, "/mismatch/echo", host: "t.test").status == 502)
        edge.stop()
        let failures = edge.accessLog().filter { ($0["event"] as? String) == "origin_tls_failed" }
        let errors = failures.filter { ($0["origin"] as? String) == "127.0.0.1:\(o2.port)" }.compactMap { $0["error"] as? String }
        #expect(errors.contains("self-signed certificate"), "\(failures)")     // not signed by the configured CA
        #expect(errors.contains("hostname mismatch"), "\(failures)")           // signed, but for another name
    }

    @Test func badCertificatesAreConfigErrorsNamingTheFile() throws {
        let o = try Origin()
        let a = try makeCertificate(in: certDir, name: "x", cn: "x.test", sans: ["x.test"])
        let b = try makeCertificate(in: certDir, name: "y", cn: "y.test", sans: ["y.test"])
        // Key of another certificate.
        do {
            _ = try Edge(tenants: [tenant("x", ["x.test"], o, certs: [(a.0, b.1)])])
            Issue.record("mismatched key accepted")
        } catch {
            #expect("\(error)".contains("y.key") && "\(error)".contains("does not match"), "\(error)")
        }
        // Not a certificate at all.
        let junk = certDir + "/junk.pem"
        try "not pem".write(toFile: junk, atomically: false, encoding: .utf8)
        do {
            _ = try Edge(tenants: [tenant("x", ["x.test"], o, certs: [(junk, a.1)])])
            Issue.record("junk certificate accepted")
        } catch {
            #expect("\(error)".contains("junk.pem"), "\(error)")
        }
    }
}
