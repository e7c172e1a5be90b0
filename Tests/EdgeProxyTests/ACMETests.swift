// ACME against a real ACME server: Debian's pebble (RFC 8555 test server)
// validating against edged's own listeners, with pebble-challtestsrv as its
// DNS server (every name resolves to 127.0.0.1, where edged listens). Both
// challenge types are really exercised: pebble's VA fetches the http-01 token
// from edged's plain listener and makes the tls-alpn-01 handshake with edged's
// TLS listener (PEBBLE_VA_ALWAYS_VALID is not set). PEBBLE_VA_NOSLEEP only
// removes pebble's random 0-15 s pauses. Pebble listens on 127.0.0.31.
import Foundation
import Glibc
import Testing

@Suite(.serialized, .timeLimit(.minutes(4))) struct ACMETests {
    final class Pebble {
        let dir: String
        var pebble: ChildProcess?
        let dns: ChildProcess
        init(dir: String, httpPort: Int, tlsPort: Int) throws {
            self.dir = dir
            try """
            {"pebble": {"listenAddress": "127.0.0.31:14000", "managementListenAddress": "127.0.0.31:15000",
             "certificate": "\(dir)/pebble.pem", "privateKey": "\(dir)/pebble.key", "httpPort": \(httpPort), "tlsPort": \(tlsPort),
             "ocspResponderURL": "", "externalAccountBindingRequired": false}}
            """.write(toFile: dir + "/pebble.json", atomically: true, encoding: .utf8)
            dns = try ChildProcess(["/bin/sh", "-c", "exec pebble-challtestsrv -dns01 127.0.0.31:18053 -http01 '' -https01 '' -tlsalpn01 '' -management 127.0.0.31:18055 -defaultIPv4 127.0.0.1 -defaultIPv6 '' > '\(dir)/dns.log' 2>&1"])
            try start()
        }
        func start() throws {
            pebble = try ChildProcess(["/bin/sh", "-c", "PEBBLE_VA_NOSLEEP=1 exec pebble -config '\(dir)/pebble.json' -dnsserver 127.0.0.31:18053 -strict false >> '\(dir)/pebble.log' 2>&1"])
            try waitUntil("pebble listening") { ((try? String(contentsOfFile: dir + "/pebble.log", encoding: .utf8)) ?? "").contains("Listening on: 127.0.0.31:14000") }
        }
        func stop() { pebble?.stop(); pebble = nil }
        deinit { stop(); dns.stop() }
    }

    /// A fresh directory with tenants/, www/index.html ("hello") and pebble's own
    /// HTTPS certificate (pebble.pem, .key; for 127.0.0.31 and the ARI front's
    /// 127.0.0.32), which edged's ACME client must verify (ca_file).
    func scratch(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("edged-acme-\(name)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/tenants", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/www", withIntermediateDirectories: true)
        try "hello\n".write(toFile: dir + "/www/index.html", atomically: true, encoding: .utf8)
        let (made, why) = try shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '\(dir)/pebble.key' -out '\(dir)/pebble.pem' -days 2 -subj /CN=pebble -addext subjectAltName=IP:127.0.0.31,IP:127.0.0.32 2>&1")
        guard made == 0 else { throw HarnessError(description: "openssl: \(why)") }
        return dir
    }

    /// edged on DIR/server.json and DIR/tenants, logging to `log`, once it listens: (process, HTTP port, HTTPS port).
    func startEdged(_ dir: String, log: String) throws -> (ChildProcess, http: Int, https: Int) {
        let p = try ChildProcess(["/bin/sh", "-c", "exec '\(try edgedPath())' --config '\(dir)/server.json' --tenants '\(dir)/tenants' --workers 1 --access-log off > '\(log)' 2>&1"])
        try waitUntil("edged listening") { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("admin API on") }
        let ports = listeningPorts((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        guard let https = ports.https else { p.stop(); throw HarnessError(description: "edged has no HTTPS listener") }
        return (p, ports.http, https)
    }

    /// GET over TLS through curl, verified against `ca` for `host`: (status, body, certificate serial).
    func fetch(_ host: String, port: Int, ca: String) throws -> (Int32, String, String) {
        let (status, out) = try shell("curl -sS --max-time 10 --cacert '\(ca)' --resolve \(host):\(port):127.0.0.1 https://\(host):\(port)/index.html")
        let (_, serial) = try shell("echo | openssl s_client -connect 127.0.0.1:\(port) -servername \(host) 2>/dev/null | openssl x509 -noout -serial")
        return (status, out, normalSerial(serial.replacingOccurrences(of: "serial=", with: "")))
    }

    /// Serials compared as hex without leading zeros (tools print them padded differently).
    func normalSerial(_ s: String) -> String {
        String(s.trimmingCharacters(in: .whitespacesAndNewlines).uppercased().drop { $0 == "0" })
    }

    func acmeStatus(_ ctl: String, _ state: String) throws -> [String: [String: Any]] {
        let (_, out) = try shell("'\(ctl)' --state '\(state)' --json acme")
        let list = ((try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [String: Any])?["tenants"] as? [[String: Any]] ?? []
        var m: [String: [String: Any]] = [:]
        for t in list { m[t["tenant"] as? String ?? ""] = t }
        return m
    }

    @Test func certificatesFromPebbleThroughBothChallengesRenewAndSurviveAnOutage() throws {
        let dir = try scratch("two")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func tenant(_ name: String, _ tls: String, extra: String = "") throws {
            try """
            {"name": "\(name)", "hosts": ["\(name).test"], "tls": \(tls), \(extra)
             "origins": {"o": {"directory": "\(dir)/www"}}, "routes": [{"prefix": "/", "origin": "o"}]}
            """.write(toFile: "\(dir)/tenants/\(name).json", atomically: true, encoding: .utf8)
        }
        // a: http-01 (and an HTTPS redirect, which the challenge answer comes before); b: tls-alpn-01.
        try tenant("a", "\"acme\"", extra: "\"https_redirect\": true,")
        try tenant("b", "{\"acme\": {\"challenge\": \"tls-alpn-01\"}}")
        try """
        {"http": "127.0.0.1:0", "https": "127.0.0.1:0", "state": "\(dir)/state",
         "acme": {"directory": "https://127.0.0.31:14000/dir", "ca_file": "\(dir)/pebble.pem", "email": "ops@example.org", "retry_min": "300ms", "retry_max": "2s"}}
        """.write(toFile: dir + "/server.json", atomically: true, encoding: .utf8)
        let log = dir + "/edged.log"
        let (edged, http, https) = try startEdged(dir, log: log)
        defer { edged.stop() }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        let state = dir + "/state", ctl = try builtBinary("edgectl")

        // Before any ACME server answers: the internal CA's placeholder serves, and the failure is retried.
        let placeholder = try fetch("a.test", port: https, ca: state + "/ca.pem")
        #expect(placeholder.0 == 0 && placeholder.1 == "hello\n", "\(placeholder)")
        try waitUntil("a retry logged") { logText().contains("acme: a: order failed") && logText().contains("retry 1 in") }

        let pebble = try Pebble(dir: dir, httpPort: http, tlsPort: https)
        try waitUntil("both certificates issued", seconds: 60) {
            let s = try acmeStatus(ctl, state)
            return s["a"]?["state"] as? String == "valid" && s["b"]?["state"] as? String == "valid"
        }
        // Pebble's VA really fetched the token from edged (the http-01 answer) and handshook for b.
        let pebbleLog = try String(contentsOfFile: dir + "/pebble.log", encoding: .utf8)
        #expect(pebbleLog.contains("Issued certificate"))
        let (rs, rootPEM) = try shell("curl -sS --cacert '\(dir)/pebble.pem' https://127.0.0.31:15000/roots/0")
        #expect(rs == 0 && rootPEM.contains("BEGIN CERTIFICATE"))
        try rootPEM.write(toFile: dir + "/root.pem", atomically: true, encoding: .utf8)
        let root = dir + "/root.pem"
        var serials: [String: String] = [:]
        for name in ["a", "b"] {
            // The served chain verifies against pebble's root for the tenant's name.
            let got = try fetch("\(name).test", port: https, ca: root)
            #expect(got.0 == 0 && got.1 == "hello\n", "\(name): \(got)")
            let s = normalSerial(try acmeStatus(ctl, state)[name]?["serial"] as? String ?? "?")
            #expect(got.2 == s, "\(name) serves \(got.2), ACME issued \(s)")
            serials[name] = got.2
        }
        let mode = try FileManager.default.attributesOfItem(atPath: state + "/acme/account.key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let (_, metrics) = try shell("'\(ctl)' --state '\(state)' metrics")
        #expect(metrics.contains("edge_tls_certificate_expiry_seconds{tenant=\"a\"}"))

        // Forced renewal while a connection stays open: new handshakes get the new
        // certificate, the open connection keeps working on its old one.
        let holder = try ChildProcess(["python3", "-u", "-c", """
        import socket, ssl, sys
        ctx = ssl.create_default_context(cafile=sys.argv[1])
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[2]))), server_hostname="a.test")
        print("%X" % int(s.getpeercert()["serialNumber"], 16))
        def get():
            s.sendall(b"GET /index.html HTTP/1.1\\r\\nHost: a.test\\r\\n\\r\\n")
            data = b""
            while b"hello" not in data:
                data += s.recv(4096)
            print(data.split(b"\\r\\n")[0].decode())
        get()
        sys.stdin.readline()
        get()
        """, root, "\(https)"], stdin: true)
        defer { holder.stop() }
        #expect(normalSerial(holder.readLine()) == serials["a"])
        #expect(holder.readLine().hasPrefix("HTTP/1.1 200"))
        let (rn, rout) = try shell("'\(ctl)' --state '\(state)' renew a")
        #expect(rn == 0, "\(rout)")
        try waitUntil("a renewed", seconds: 60) { (try acmeStatus(ctl, state)["a"]?["serial"] as? String).map { normalSerial($0) != serials["a"] } ?? false }
        let renewedSerial = normalSerial(try acmeStatus(ctl, state)["a"]?["serial"] as? String ?? "?")
        try waitUntil("the renewed certificate served") { try fetch("a.test", port: https, ca: root).2 == renewedSerial }
        holder.write("\n")
        #expect(holder.readLine().hasPrefix("HTTP/1.1 200"), "the connection opened before the renewal still serves")

        // A tenant added by reload gets its certificate; the others keep theirs.
        try tenant("c", "\"acme\"")
        let (rl, rlout) = try shell("'\(ctl)' --state '\(state)' reload")
        #expect(rl == 0, "\(rlout)")
        try waitUntil("c issued", seconds: 60) { try acmeStatus(ctl, state)["c"]?["state"] as? String == "valid" }
        #expect(try fetch("c.test", port: https, ca: root).1 == "hello\n")
        #expect(try fetch("a.test", port: https, ca: root).2 == renewedSerial)
        #expect(try fetch("b.test", port: https, ca: root).2 == serials["b"])

        // The ACME server gone: a renewal fails, is retried and logged, and the
        // current certificate keeps serving.
        pebble.stop()
        #expect(try shell("'\(ctl)' --state '\(state)' renew a").0 == 0)
        try waitUntil("the failed renewal logged and retried") {
            let l = logText()
            return l.contains("the current certificate keeps serving; retry 2 in")
        }
        let still = try fetch("a.test", port: https, ca: root)
        #expect(still.0 == 0 && still.1 == "hello\n" && still.2 == renewedSerial)
        #expect(try acmeStatus(ctl, state)["a"]?["state"] as? String == "renewal failing")
    }

    /// Many tenants: orders run at most `parallelism` at once, through an RSA
    /// account key (RS256 JWS, against a real server); a restart with every
    /// certificate on disk orders nothing; tenants new at a start are spread
    /// over `start_spread`.
    @Test func manyTenantsWithinTheParallelismAndNoHerdAfterARestart() throws {
        let dir = try scratch("many")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func tenant(_ name: String) throws {
            try """
            {"name": "\(name)", "hosts": ["\(name).test"], "tls": "acme", "origins": {"o": {"directory": "\(dir)/www"}}, "routes": [{"prefix": "/", "origin": "o"}]}
            """.write(toFile: "\(dir)/tenants/\(name).json", atomically: true, encoding: .utf8)
        }
        let names = (0..<40).map { "t" + String($0 + 100).dropFirst() }
        for n in names { try tenant(n) }
        func server(spread: String) throws {
            try """
            {"http": "127.0.0.1:0", "https": "127.0.0.1:0", "state": "\(dir)/state",
             "acme": {"directory": "https://127.0.0.31:14000/dir", "ca_file": "\(dir)/pebble.pem", "account_key_type": "rsa-2048",
                      "parallelism": 3, "retry_min": "300ms", "retry_max": "2s", "start_spread": "\(spread)"}}
            """.write(toFile: dir + "/server.json", atomically: true, encoding: .utf8)
        }
        try server(spread: "0s")
        let state = dir + "/state", ctl = try builtBinary("edgectl")
        // The ports stay the same across the restart only by chance, so pebble
        // is started against the first run's ports and the restart is checked
        // without it.
        let log1 = dir + "/edged1.log"
        let (first, http, https) = try startEdged(dir, log: log1)
        defer { first.stop() }
        let pebble = try Pebble(dir: dir, httpPort: http, tlsPort: https)
        defer { pebble.stop() }
        try waitUntil("40 certificates issued", seconds: 150) {
            let s = try acmeStatus(ctl, state)
            return names.allSatisfy { s[$0]?["state"] as? String == "valid" }
        }
        // The log, in order: never more than 3 orders open at once, and 3 at some point.
        let lines = try String(contentsOfFile: log1, encoding: .utf8).split(separator: "\n")
        var open = 0, most = 0, ordered = 0
        for l in lines where l.contains("edged: acme: t") {
            if l.contains(": ordering a certificate for") { open += 1; ordered += 1; most = max(most, open) }
            if l.contains(" issued, valid until ") || l.contains(": order failed (") { open -= 1 }
        }
        #expect(most == 3, "at most 3 orders at once, and all 3 used: \(most)")
        #expect(ordered >= 40)
        let reloads = lines.filter { $0.contains("edged: reloaded (") }.count
        #expect(reloads >= 1 && reloads <= 40, "installs: \(reloads)")
        print("acme many: \(ordered) orders, \(reloads) installing reloads, at most \(most) at once")
        let (rs, rootPEM) = try shell("curl -sS --cacert '\(dir)/pebble.pem' https://127.0.0.31:15000/roots/0")
        #expect(rs == 0)
        try rootPEM.write(toFile: dir + "/root.pem", atomically: true, encoding: .utf8)
        for n in ["t00", "t17", "t39"] {
            let got = try fetch("\(n).test", port: https, ca: dir + "/root.pem")
            #expect(got.0 == 0 && got.1 == "hello\n", "\(n): \(got)")
        }
        // The account key is RSA (RS256 JWS): pebble accepted every order signed with it.
        let (_, keyText) = try shell("openssl pkey -in '\(state)/acme/account.key' -noout -text 2>&1 | head -1")
        #expect(keyText.contains("Private-Key: (2048 bit"), "\(keyText)")

        // Restart with 10 more tenants and a 30 s start spread: the 40 with
        // certificates order nothing and serve theirs at once; the 10 new ones
        // wait, each at its own moment within the spread.
        first.stop()
        let added = (40..<50).map { "t" + String($0 + 100).dropFirst() }
        for n in added { try tenant(n) }
        try server(spread: "30s")
        let started = Date()
        let log2 = dir + "/edged2.log"
        let (second, _, https2) = try startEdged(dir, log: log2)
        defer { second.stop() }
        let got = try fetch("t17.test", port: https2, ca: dir + "/root.pem")
        #expect(got.0 == 0 && got.1 == "hello\n", "served from the stored certificate: \(got)")
        let s = try acmeStatus(ctl, state)
        #expect(names.allSatisfy { s[$0]?["state"] as? String == "valid" })
        let iso = ISO8601DateFormatter()
        let tries = added.compactMap { (s[$0]?["next_try"] as? String).flatMap { iso.date(from: $0) } }
        #expect(tries.count == 10 && added.allSatisfy { s[$0]?["state"] as? String == "waiting" })
        #expect(tries.allSatisfy { $0 >= started.addingTimeInterval(-1) && $0 <= started.addingTimeInterval(32) })
        #expect(Set(tries.map { Int($0.timeIntervalSince1970) }).count >= 5, "spread, not one instant: \(tries)")
        Thread.sleep(forTimeInterval: 1)
        let log2Text = try String(contentsOfFile: log2, encoding: .utf8)
        #expect(!names.contains { log2Text.contains("acme: \($0): ordering") }, "a restart orders nothing that is on disk")
    }

    /// ACME Renewal Information (RFC 9773). Debian's pebble 2.4 has no ARI, so
    /// a small HTTPS front on 127.0.0.32 serves pebble's directory with a
    /// `renewalInfo` URL added and answers it: a window ten days out, or one
    /// already past for the certificate ID written to `renew-now`. Orders go
    /// to pebble itself (the front never sees a signed request).
    @Test func renewalInformationMovesTheRenewalAndReplacesTheCertificate() throws {
        let dir = try scratch("ari")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "".write(toFile: dir + "/renew-now", atomically: true, encoding: .utf8)
        let front = try ChildProcess(["python3", "-u", "-c", """
        import datetime, http.server, json, ssl, sys, time, urllib.request
        cert, key, ca, renew_now = sys.argv[1:5]
        upstream = ssl.create_default_context(cafile=ca)
        def stamp(t): return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        class H(http.server.BaseHTTPRequestHandler):
            def answer(self, body, extra={}):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in extra.items(): self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
            def do_GET(self):
                if self.path == "/dir":
                    d = json.load(urllib.request.urlopen("https://127.0.0.31:14000/dir", context=upstream))
                    d["renewalInfo"] = "https://127.0.0.32:14443/ari/"
                    self.answer(json.dumps(d).encode())
                elif self.path.startswith("/ari/"):
                    cid = self.path[5:]
                    print("ari " + cid, flush=True)
                    now = time.time()
                    past = cid == open(renew_now).read().strip()
                    s, e = (now - 7200, now - 3600) if past else (now + 10 * 86400, now + 11 * 86400)
                    self.answer(json.dumps({"suggestedWindow": {"start": stamp(s), "end": stamp(e)}}).encode(), {"Retry-After": "1"})
                else:
                    self.send_error(404)
            def log_message(self, *a): pass
        srv = http.server.ThreadingHTTPServer(("127.0.0.32", 14443), H)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        srv.socket = tls.wrap_socket(srv.socket, server_side=True)
        print("ready", flush=True)
        srv.serve_forever()
        """, dir + "/pebble.pem", dir + "/pebble.key", dir + "/pebble.pem", dir + "/renew-now"])
        defer { front.stop() }
        #expect(front.readLine() == "ready")
        try """
        {"name": "r", "hosts": ["r.test"], "tls": "acme", "origins": {"o": {"directory": "\(dir)/www"}}, "routes": [{"prefix": "/", "origin": "o"}]}
        """.write(toFile: "\(dir)/tenants/r.json", atomically: true, encoding: .utf8)
        try """
        {"http": "127.0.0.1:0", "https": "127.0.0.1:0", "state": "\(dir)/state",
         "acme": {"directory": "https://127.0.0.32:14443/dir", "ca_file": "\(dir)/pebble.pem", "retry_min": "300ms", "retry_max": "2s"}}
        """.write(toFile: dir + "/server.json", atomically: true, encoding: .utf8)
        let log = dir + "/edged.log"
        let (edged, http, https) = try startEdged(dir, log: log)
        defer { edged.stop() }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        let pebble = try Pebble(dir: dir, httpPort: http, tlsPort: https)
        defer { pebble.stop() }
        let state = dir + "/state", ctl = try builtBinary("edgectl")
        try waitUntil("issued, and its renewal information read", seconds: 60) {
            let r = try acmeStatus(ctl, state)["r"]
            return r?["state"] as? String == "valid" && r?["renewal_info"] is [String: Any]
        }
        // The identifier edged asked about is the certificate's (authority key id . serial).
        let certFile = state + "/acme/certs/r.pem"
        let (_, akiText) = try shell("openssl x509 -in '\(certFile)' -noout -ext authorityKeyIdentifier | tail -1")
        let (_, serialText) = try shell("openssl x509 -in '\(certFile)' -noout -serial")
        func bytes(_ hex: String) -> [UInt8] {
            let h = Array(hex.filter(\.isHexDigit))
            return stride(from: 0, to: h.count - 1, by: 2).map { UInt8(String(h[$0...$0 + 1]), radix: 16)! }
        }
        var serialBytes = bytes(serialText.replacingOccurrences(of: "serial=", with: ""))
        while serialBytes.count > 1 && serialBytes[0] == 0 && serialBytes[1] & 0x80 == 0 { serialBytes.removeFirst() }
        if serialBytes[0] & 0x80 != 0 { serialBytes.insert(0, at: 0) }
        let b64 = { (b: [UInt8]) in Data(b).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "") }
        let id = b64(bytes(akiText.replacingOccurrences(of: "keyid:", with: ""))) + "." + b64(serialBytes)
        var asked: [String] = []
        while asked.isEmpty { let l = front.readLine(); if l.hasPrefix("ari ") { asked.append(String(l.dropFirst(4))) } else if l.isEmpty { break } }
        #expect(asked == [id], "edged asked about \(asked), the certificate is \(id)")
        // The renewal moved into the suggested window, ten days out (not 2/3 of pebble's five years).
        let iso = ISO8601DateFormatter()
        let renews = try #require((try acmeStatus(ctl, state)["r"]?["renews"] as? String).flatMap { iso.date(from: $0) })
        #expect(renews > Date().addingTimeInterval(10 * 86400 - 120) && renews < Date().addingTimeInterval(11 * 86400 + 120), "\(renews)")
        let first = try acmeStatus(ctl, state)["r"]?["serial"] as? String ?? "?"

        // The server now suggests a window already past for this certificate: edged
        // renews at its next question, naming the certificate it replaces.
        try id.write(toFile: dir + "/renew-now", atomically: true, encoding: .utf8)
        try waitUntil("renewed on the server's suggestion", seconds: 60) {
            let r = try acmeStatus(ctl, state)["r"]
            return r?["state"] as? String == "valid" && (r?["serial"] as? String).map { $0 != first } == true
        }
        #expect(logText().contains("renewal information suggests"))
        #expect(logText().contains(", replacing \(id):"), "the order names the certificate it replaces")
        let (rs, rootPEM) = try shell("curl -sS --cacert '\(dir)/pebble.pem' https://127.0.0.31:15000/roots/0")
        #expect(rs == 0)
        try rootPEM.write(toFile: dir + "/root.pem", atomically: true, encoding: .utf8)
        let served = try fetch("r.test", port: https, ca: dir + "/root.pem")
        let now = normalSerial(try acmeStatus(ctl, state)["r"]?["serial"] as? String ?? "?")
        #expect(served.0 == 0 && served.1 == "hello\n" && served.2 == now, "\(served) vs \(now)")
        // The new certificate is not in a past window: its renewal is ten days out again.
        try waitUntil("the new certificate's renewal information read") {
            let r = try acmeStatus(ctl, state)["r"]
            return (r?["renews"] as? String).flatMap { iso.date(from: $0) }.map { $0 > Date().addingTimeInterval(9 * 86400) } ?? false
        }
    }
}
