// The pure parts of the ACME client: renewal and retry times, base64url, the
// JWK and its thumbprint, signatures and CSRs checked by the openssl tool.
import Foundation
import Testing
@testable import EdgeACME
import EdgeTLS

@Suite struct ACMEScheduleTests {
    @Test func renewsTwoThirdsIntoTheLifetimeWithABoundedJitter() {
        let nb: Int64 = 1_000_000, na = nb + 90 * 86400
        var seen = Set<Int64>()
        for seed in 0..<UInt64(200) {
            let r = ACMESchedule.renewAt(notBefore: nb, notAfter: na, seed: seed &* 0x9e37_79b9_7f4a_7c15)
            #expect(r <= nb + 60 * 86400)
            #expect(r >= nb + 60 * 86400 - 3 * 86400)
            seen.insert(r)
        }
        #expect(seen.count > 100)   // spread, not one instant
    }

    @Test func retriesBackOffExponentiallyAndHonourRetryAfter() {
        let d1 = ACMESchedule.retryDelay(failures: 1, minMillis: 1000, maxMillis: 60_000, retryAfterSeconds: nil, seed: 0)
        let d2 = ACMESchedule.retryDelay(failures: 2, minMillis: 1000, maxMillis: 60_000, retryAfterSeconds: nil, seed: 0)
        let d5 = ACMESchedule.retryDelay(failures: 5, minMillis: 1000, maxMillis: 60_000, retryAfterSeconds: nil, seed: 0)
        let d30 = ACMESchedule.retryDelay(failures: 30, minMillis: 1000, maxMillis: 60_000, retryAfterSeconds: nil, seed: 0)
        #expect(d1 == 1000 && d2 == 2000 && d5 == 16_000 && d30 == 60_000)
        #expect(ACMESchedule.retryDelay(failures: 1, minMillis: 1000, maxMillis: 60_000, retryAfterSeconds: 3600, seed: 0) == 3_600_000)
        let j = ACMESchedule.retryDelay(failures: 2, minMillis: 1000, maxMillis: 60_000, retryAfterSeconds: nil, seed: 150)
        #expect(j == 2150)
        #expect(ACMESchedule.firstTry(spreadMillis: 0, seed: 99) == 0)
        #expect(ACMESchedule.firstTry(spreadMillis: 1000, seed: 1234) == 234)
    }

    @Test func base64urlMatchesRFC4648Vectors() {
        let v: [(String, String)] = [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy")]
        for (i, o) in v { #expect(base64url(Array(i.utf8)) == o) }
        #expect(base64url([0xfb, 0xff]) == "-_8")
    }

    @Test func jwkThumbprintAndSignaturesVerifyWithOpenSSL() throws {
        for type in [ACMEKeyType.ecdsaP256, .rsa2048] {
            let k = try ACMEKey.generate(type)
            let jwk = k.jwk
            #expect(jwk.hasPrefix(type == .ecdsaP256 ? "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" : "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\""))
            #expect(!jwk.contains(" ") && !jwk.contains("="))
            #expect(k.thumbprint == base64url(sha256(Array(jwk.utf8))))
            #expect(k.thumbprint.count == 43)
            let msg = Array("header.payload".utf8)
            let sig = try k.sign(msg)
            #expect(sig.count == (type == .ecdsaP256 ? 64 : 256))
            // The openssl tool verifies the signature (ES256 back in DER form).
            let dir = NSTemporaryDirectory() + "acme-sig-\(getpid())-\(type.rawValue)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try k.pem.write(toFile: dir + "/k.pem", atomically: true, encoding: .utf8)
            try Data(msg).write(to: URL(fileURLWithPath: dir + "/m"))
            try Data(type == .ecdsaP256 ? derSignature(sig) : sig).write(to: URL(fileURLWithPath: dir + "/s"))
            #expect(run("openssl", ["dgst", "-sha256", "-verify", "/dev/stdin", "-signature", dir + "/s", dir + "/m"],
                        stdin: run("openssl", ["pkey", "-in", dir + "/k.pem", "-pubout"]).out).out.contains("Verified OK"))
        }
    }

    @Test func csrNamesEveryHost() throws {
        let k = try ACMEKey.generate(.ecdsaP256)
        let der = try k.csr(hosts: ["a.test", "www.a.test"])
        let path = NSTemporaryDirectory() + "acme-csr-\(getpid()).der"
        try Data(der).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let text = run("openssl", ["req", "-inform", "DER", "-in", path, "-noout", "-text", "-verify"])
        #expect(text.err.contains("verify OK") || text.out.contains("verify OK"))
        #expect(text.out.contains("DNS:a.test, DNS:www.a.test"))
        #expect(text.out.contains("CN = a.test") || text.out.contains("CN=a.test"))
    }

    @Test func certificateInfoReadsDatesSerialAndNames() throws {
        let path = NSTemporaryDirectory() + "acme-cert-\(getpid())"
        defer { unlink(path + ".pem"); unlink(path + ".key") }
        _ = run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path + ".key", "-out", path + ".pem",
                            "-days", "30", "-subj", "/CN=x.test", "-addext", "subjectAltName=DNS:x.test,DNS:y.test", "-set_serial", "0x1234"])
        let info = try #require(CertificateInfo(pem: try String(contentsOfFile: path + ".pem", encoding: .utf8)))
        #expect(info.names == ["x.test", "y.test"])
        #expect(info.serial == "1234")
        #expect(info.notAfter - info.notBefore == 30 * 86400)
        #expect(CertificateInfo(pem: "not a certificate") == nil)
    }

    /// RFC 9773 §4.1's example: key identifier 69:88:5B:…:C8:D4 and serial 0x87654321.
    @Test func renewalIdentifierFollowsRFC9773() throws {
        let path = NSTemporaryDirectory() + "acme-ari-\(getpid())"
        defer { unlink(path + ".pem"); unlink(path + ".key") }
        _ = run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path + ".key", "-out", path + ".pem",
                            "-days", "2", "-subj", "/CN=ari.test", "-set_serial", "0x87654321", "-addext", "subjectAltName=DNS:ari.test",
                            "-addext", "2.5.29.35=DER:3016801469885B6B87464041E1B37B847BA0AE2CDE01C8D4"])
        let info = try #require(CertificateInfo(pem: try String(contentsOfFile: path + ".pem", encoding: .utf8)))
        #expect(info.renewalID == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
    }

    @Test func renewalInformationPicksATimeInTheWindowAndPollsWithinBounds() throws {
        let info = try #require(RenewalInfo(json: ["suggestedWindow": ["start": "2026-01-02T04:00:00Z", "end": "2026-01-03T04:00:00.5Z"],
                                                   "explanationURL": "https://ca.test/why"], retryAfter: "21600"))
        #expect(info.start == 1_767_326_400 && info.end == 1_767_412_800 && info.retryAfter == 21600 && info.explanation == "https://ca.test/why")
        #expect(RenewalInfo(json: ["suggestedWindow": ["start": "soon"]], retryAfter: nil) == nil)
        #expect(RenewalInfo(json: [:], retryAfter: nil) == nil)
        var seen = Set<Int64>()
        for seed in 0..<UInt64(100) {
            let t = ACMESchedule.renewalInfoAt(windowStart: info.start, windowEnd: info.end, seed: seed &* 0x9e37_79b9_7f4a_7c15)
            #expect(t >= info.start && t < info.end)
            seen.insert(t)
        }
        #expect(seen.count > 50)
        #expect(ACMESchedule.renewalInfoAt(windowStart: 100, windowEnd: 50, seed: 7) == 100)
        #expect(ACMESchedule.renewalInfoPoll(retryAfterSeconds: nil, floorMillis: 60_000) == 6 * 3_600_000)
        #expect(ACMESchedule.renewalInfoPoll(retryAfterSeconds: 1, floorMillis: 60_000) == 60_000)
        #expect(ACMESchedule.renewalInfoPoll(retryAfterSeconds: 7 * 86400, floorMillis: 60_000) == 86_400_000)
    }
}

/// r||s (32 bytes each) as a DER ECDSA-Sig-Value.
func derSignature(_ raw: [UInt8]) -> [UInt8] {
    func integer(_ b: ArraySlice<UInt8>) -> [UInt8] {
        var v = Array(b.drop { $0 == 0 })
        if v.isEmpty { v = [0] }
        if v[0] & 0x80 != 0 { v.insert(0, at: 0) }
        return [0x02, UInt8(v.count)] + v
    }
    let body = integer(raw[0..<32]) + integer(raw[32..<64])
    return [0x30, UInt8(body.count)] + body
}

@discardableResult
func run(_ tool: String, _ args: [String], stdin: String? = nil) -> (out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [tool] + args
    let o = Pipe(), e = Pipe(), i = Pipe()
    p.standardOutput = o; p.standardError = e; p.standardInput = i
    try? p.run()
    if let stdin { i.fileHandleForWriting.write(Data(stdin.utf8)) }
    try? i.fileHandleForWriting.close()
    let out = o.fileHandleForReading.readDataToEndOfFile(), err = e.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
}
