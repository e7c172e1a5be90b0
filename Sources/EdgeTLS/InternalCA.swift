// `"tls": "internal"`: a development CA kept in the state directory (created on
// first start; key file mode 0600) that issues leaf certificates for tenant
// host names at load time, like Caddy's internal issuer.
import Glibc
import COpenSSL
import CEdgeShims

public final class InternalCA: @unchecked Sendable {
    let cert: OpaquePointer   // X509*
    let key: OpaquePointer    // EVP_PKEY*
    public let certPath: String

    init(cert: OpaquePointer, key: OpaquePointer, certPath: String) {
        self.cert = cert; self.key = key; self.certPath = certPath
    }

    deinit { X509_free(cert); EVP_PKEY_free(key) }

    /// Loads `<dir>/ca.pem` and `<dir>/ca.key`, creating them when absent.
    public static func loadOrCreate(stateDir dir: String, now: Int64) throws -> InternalCA {
        let certPath = dir + "/ca.pem", keyPath = dir + "/ca.key"
        if access(certPath, R_OK) == 0 && access(keyPath, R_OK) == 0 {
            let (x, k, _) = try loadPair(CertificatePair(certFile: certPath, keyFile: keyPath))
            return InternalCA(cert: x, key: k, certPath: certPath)
        }
        mkdir(dir, 0o700)
        guard let k = edge_ec_p256_key() else { throw TLSConfigError(file: keyPath, message: opensslErrors()) }
        let x = try build(subjectCN: "edge internal CA", hosts: [], key: k, issuer: nil, issuerKey: k, isCA: true,
                          notBefore: now - 3600, notAfter: now + 10 * 365 * 86400)
        try writeFile(keyPath, pem { PEM_write_bio_PrivateKey($0, k, nil, nil, 0, nil, nil) }, mode: 0o600, what: "CA key")
        try writeFile(certPath, pem { PEM_write_bio_X509($0, x) }, mode: 0o644, what: "CA certificate")
        return InternalCA(cert: x, key: k, certPath: certPath)
    }

    /// Issues a leaf for `hosts` (DNS names, wildcards allowed) valid from
    /// `notBefore` to `notAfter` (seconds since the epoch).
    public func issue(hosts: [String], notBefore: Int64, notAfter: Int64) throws -> CertificatePair {
        guard let k = edge_ec_p256_key() else { throw TLSConfigError(file: certPath, message: opensslErrors()) }
        defer { EVP_PKEY_free(k) }
        let x = try InternalCA.build(subjectCN: hosts.first ?? "edge", hosts: hosts, key: k, issuer: cert, issuerKey: key, isCA: false,
                                     notBefore: notBefore, notAfter: notAfter)
        defer { X509_free(x) }
        let certPEM = pem { PEM_write_bio_X509($0, x) }
        let keyPEM = pem { PEM_write_bio_PrivateKey($0, k, nil, nil, 0, nil, nil) }
        return CertificatePair(certPEM: PEMBlob(certPEM), keyPEM: PEMBlob(keyPEM))
    }

    static func build(subjectCN: String, hosts: [String], key: OpaquePointer, issuer: OpaquePointer?, issuerKey: OpaquePointer,
                      isCA: Bool, notBefore: Int64, notAfter: Int64, extra: [OpaquePointer] = []) throws -> OpaquePointer {
        guard let x = X509_new() else { throw TLSConfigError(file: "internal CA", message: opensslErrors()) }
        X509_set_version(x, 2)
        var serial: UInt64 = 0
        withUnsafeMutableBytes(of: &serial) { _ = RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), 8) }
        let bn = BN_new()
        BN_set_word(bn, UInt(serial >> 1))
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))
        BN_free(bn)
        ASN1_TIME_set(X509_getm_notBefore(x), time_t(notBefore))
        ASN1_TIME_set(X509_getm_notAfter(x), time_t(notAfter))
        X509_set_pubkey(x, key)
        let name = X509_get_subject_name(x)
        // Explicit lengths: a Swift array is not NUL-terminated (-1 would make OpenSSL strlen past its end).
        let org = Array("edge".utf8), cn = Array(subjectCN.utf8)
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, org, Int32(org.count), -1, 0)
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, cn, Int32(cn.count), -1, 0)
        X509_set_issuer_name(x, issuer.map { X509_get_subject_name($0) } ?? name)
        var v3 = X509V3_CTX()
        X509V3_set_ctx(&v3, issuer ?? x, x, nil, nil, 0)
        var exts: [(Int32, String)] = []
        // Subject and authority key identifiers on both (RFC 5280 §4.2.1.1-2; strict
        // verifiers require the AKI): the SKI first, so a self-signed CA's AKI can name it.
        if isCA {
            exts = [(NID_basic_constraints, "critical,CA:TRUE"), (NID_key_usage, "critical,keyCertSign,cRLSign"),
                    (NID_subject_key_identifier, "hash"), (NID_authority_key_identifier, "keyid:always")]
        } else {
            exts = [(NID_basic_constraints, "critical,CA:FALSE"), (NID_key_usage, "critical,digitalSignature"),
                    (NID_ext_key_usage, "serverAuth"), (NID_subject_alt_name, hosts.map { "DNS:" + $0 }.joined(separator: ",")),
                    (NID_subject_key_identifier, "hash"), (NID_authority_key_identifier, "keyid:always")]
        }
        for (nid, value) in exts {
            guard let e = X509V3_EXT_conf_nid(nil, &v3, nid, value) else {
                X509_free(x)
                throw TLSConfigError(file: "internal CA", message: "extension \(value): \(opensslErrors())")
            }
            X509_add_ext(x, e, -1)
            X509_EXTENSION_free(e)
        }
        // Extensions the caller built (and frees), e.g. tls-alpn-01's acmeIdentifier.
        for e in extra { X509_add_ext(x, e, -1) }
        guard X509_sign(x, issuerKey, EVP_sha256()) > 0 else {
            X509_free(x)
            throw TLSConfigError(file: "internal CA", message: opensslErrors())
        }
        return x
    }
}

/// Runs a PEM writer against a memory BIO and returns the text.
func pem(_ write: (OpaquePointer) -> Int32) -> String {
    guard let bio = BIO_new(BIO_s_mem()) else { return "" }
    defer { BIO_free(bio) }
    _ = write(bio)
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = BIO_read(bio, &buf, 4096)
        if n <= 0 { break }
        out += buf[0..<Int(n)]
    }
    return String(decoding: out, as: UTF8.self)
}

func writeFile(_ path: String, _ text: String, mode: mode_t, what: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw TLSConfigError(file: path, message: "cannot write \(what): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    fchmod(fd, mode)
    let bytes = Array(text.utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { throw TLSConfigError(file: path, message: "cannot write \(what)") }
        off += n
    }
}
