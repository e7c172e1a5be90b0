import Foundation
import Glibc
import Testing
@testable import EdgeTLS

@Suite(.timeLimit(.minutes(3))) struct CertificateTests {
    let dir: String
    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("edge-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    func write(_ pair: CertificatePair, _ name: String) throws -> CertificatePair {
        guard case .memory(let c, let k) = pair.source else { throw CancellationError() }
        try c.text.write(toFile: "\(dir)/\(name).crt", atomically: false, encoding: .utf8)
        try k.text.write(toFile: "\(dir)/\(name).key", atomically: false, encoding: .utf8)
        return CertificatePair(certFile: "\(dir)/\(name).crt", keyFile: "\(dir)/\(name).key")
    }

    @Test func internalCAIsCreatedOnceAndReused() throws {
        let now = Int64(time(nil))
        let ca = try InternalCA.loadOrCreate(stateDir: dir + "/state", now: now)
        let pem1 = try String(contentsOfFile: ca.certPath, encoding: .utf8)
        let again = try InternalCA.loadOrCreate(stateDir: dir + "/state", now: now)
        #expect(try String(contentsOfFile: again.certPath, encoding: .utf8) == pem1)
        var st = stat()
        #expect(stat(dir + "/state/ca.key", &st) == 0 && st.st_mode & 0o777 == 0o600)
        let leaf = try ca.issue(hosts: ["a.test", "*.a.test"], notBefore: now - 60, notAfter: now + 3600)
        let t = try TenantTLS(tenant: "a", pairs: [leaf], now: now)
        #expect(t.notAfter == now + 3600)
        // The openssl CLI agrees that the CA signed the leaf for those names.
        // -x509_strict: a leaf without an Authority Key Identifier fails here (the audit's finding).
        let files = try write(leaf, "leaf")
        guard case .files(let crt, _) = files.source else { Issue.record("not written to files"); return }
        func openssl(_ args: [String]) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            p.arguments = args
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return text
        }
        let text = try openssl(["verify", "-x509_strict", "-CAfile", ca.certPath, "-verify_hostname", "x.a.test", crt])
        #expect(text.contains(": OK"), "\(text)")
        for cert in [crt, ca.certPath] {
            let dump = try openssl(["x509", "-noout", "-text", "-in", cert])
            #expect(dump.contains("X509v3 Authority Key Identifier"), "\(cert): \(dump)")
            #expect(dump.contains("X509v3 Subject Key Identifier"), "\(cert): \(dump)")
        }
    }

    @Test func expiredCertificateIsRefusedAtLoad() throws {
        let now = Int64(time(nil))
        let ca = try InternalCA.loadOrCreate(stateDir: dir + "/state2", now: now)
        let old = try write(try ca.issue(hosts: ["old.test"], notBefore: now - 7200, notAfter: now - 3600), "old")
        #expect(throws: TLSConfigError(file: "\(dir)/old.crt", message: "certificate expired")) {
            _ = try TenantTLS(tenant: "old", pairs: [old], now: now)
        }
    }

    @Test func missingFilesAreNamed() throws {
        #expect(throws: TLSConfigError(file: "/no/such.crt", message: "cannot read file")) {
            _ = try TenantTLS(tenant: "x", pairs: [CertificatePair(certFile: "/no/such.crt", keyFile: "/no/such.key")], now: 0)
        }
    }
}

@Suite(.timeLimit(.minutes(3))) struct TicketKeyRingTests {
    @Test func rotatesOnScheduleAndKeepsOldKeysForDecryption() throws {
        var counter: UInt8 = 0
        let random = { () -> [UInt8] in counter &+= 1; return [UInt8](repeating: counter, count: 32) }
        var ring = TicketKeyRing(rotationSeconds: 100, keep: 3)
        ring.rotateIfDue(now: 1000, random: random)
        let first = try #require(ring.current)
        ring.rotateIfDue(now: 1099, random: random)
        #expect(ring.current == first)                      // not due yet
        ring.rotateIfDue(now: 1100, random: random)
        #expect(ring.current != first)
        // The old key still decrypts, but is not current (OpenSSL then reissues the ticket).
        let old = first.name.withUnsafeBufferPointer { $0.baseAddress.flatMap { ring.lookup(name: $0) } }
        #expect(old?.0 == first && old?.isCurrent == false)
        let cur = try #require(ring.current).name.withUnsafeBufferPointer { $0.baseAddress.flatMap { ring.lookup(name: $0) } }
        #expect(cur?.isCurrent == true)
        ring.rotateIfDue(now: 1200, random: random)
        ring.rotateIfDue(now: 1300, random: random)
        #expect(ring.keys.count == 3)
        #expect(first.name.withUnsafeBufferPointer { $0.baseAddress.flatMap { ring.lookup(name: $0) } } == nil)   // aged out
    }
}
