// The cryptography an ACME client (RFC 8555) needs, over OpenSSL 3: account
// and certificate keys (EC P-256 or RSA 2048) kept as PEM, the account key's
// JWK (RFC 7517) and thumbprint (RFC 7638), JWS signatures (ES256, RS256;
// RFC 7518 §3.4 wants ECDSA as the raw r||s pair, not DER), CSRs with every
// host name as a subjectAltName, and the tls-alpn-01 (RFC 8737) challenge
// certificate with its critical acmeIdentifier extension.
//
// Concurrency: an ACMEKey is immutable after it is made; OpenSSL allows
// concurrent signing with one EVP_PKEY.
import Glibc
import COpenSSL
import CEdgeShims
import EdgeHTTP
import EdgeIO

/// RFC 4648 §5 base64url without padding (what JWS uses everywhere).
public func base64url(_ bytes: [UInt8]) -> String { String(decoding: base64(bytes, url: true), as: UTF8.self) }

/// SHA-256 of `bytes` (32 bytes).
public func sha256(_ bytes: [UInt8]) -> [UInt8] {
    var md = [UInt8](repeating: 0, count: 32)
    var len: UInt32 = 0
    _ = bytes.withUnsafeBytes { b in md.withUnsafeMutableBufferPointer { EVP_Digest(b.baseAddress, b.count, $0.baseAddress, &len, EVP_sha256(), nil) } }
    return md
}

public enum ACMEKeyType: String, Sendable, Equatable { case ecdsaP256 = "ecdsa-p256", rsa2048 = "rsa-2048" }

/// A private key for an ACME account or a certificate.
public final class ACMEKey: @unchecked Sendable {
    let pkey: OpaquePointer
    public let type: ACMEKeyType

    init(pkey: OpaquePointer, type: ACMEKeyType) { self.pkey = pkey; self.type = type }
    deinit { EVP_PKEY_free(pkey) }

    public static func generate(_ type: ACMEKeyType) throws -> ACMEKey {
        let k = type == .ecdsaP256 ? edge_ec_p256_key() : edge_rsa_key(2048)
        guard let k else { throw TLSConfigError(file: "acme", message: "key generation failed: \(opensslErrors())") }
        return ACMEKey(pkey: k, type: type)
    }

    /// Reads a PEM private key (EC P-256 or RSA).
    public static func load(pem: String, file: String) throws -> ACMEKey {
        let bytes = Array(pem.utf8)
        guard let bio = BIO_new(BIO_s_mem()) else { throw TLSConfigError(file: file, message: opensslErrors()) }
        defer { BIO_free(bio) }
        _ = bytes.withUnsafeBytes { BIO_write(bio, $0.baseAddress, Int32($0.count)) }
        guard let k = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
            ERR_clear_error()
            throw TLSConfigError(file: file, message: "no PEM private key in file")
        }
        let type: ACMEKeyType = EVP_PKEY_get_base_id(k) == EVP_PKEY_EC ? .ecdsaP256 : .rsa2048
        return ACMEKey(pkey: k, type: type)
    }

    /// The account key at `path`: read when there (whatever its type), else
    /// made as `type` and written 0600.
    public static func loadOrCreate(path: String, type: ACMEKeyType) throws -> ACMEKey {
        if let bytes = Files.read(path) { return try load(pem: String(decoding: bytes, as: UTF8.self), file: path) }
        let k = try generate(type)
        try writeFile(path, k.pem, mode: 0o600, what: "ACME account key")
        return k
    }

    /// The private key as PKCS#8 PEM.
    public var pem: String { EdgeTLS.pem { PEM_write_bio_PrivateKey($0, pkey, nil, nil, 0, nil, nil) } }

    /// The JWS algorithm this key signs with.
    public var alg: String { type == .ecdsaP256 ? "ES256" : "RS256" }

    func bigNumber(_ name: String, pad: Int32) -> [UInt8] {
        var bn: OpaquePointer?
        guard EVP_PKEY_get_bn_param(pkey, name, &bn) == 1, let bn else { ERR_clear_error(); return [] }
        defer { BN_free(bn) }
        let n = pad > 0 ? pad : (BN_num_bits(bn) + 7) / 8
        var out = [UInt8](repeating: 0, count: Int(n))
        _ = BN_bn2binpad(bn, &out, n)
        return out
    }

    /// The public JWK with its members in lexicographic order and no spaces,
    /// which is also the RFC 7638 thumbprint input.
    public var jwk: String {
        if type == .ecdsaP256 {
            return "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\(base64url(bigNumber("qx", pad: 32)))\",\"y\":\"\(base64url(bigNumber("qy", pad: 32)))\"}"
        }
        return "{\"e\":\"\(base64url(bigNumber("e", pad: 0)))\",\"kty\":\"RSA\",\"n\":\"\(base64url(bigNumber("n", pad: 0)))\"}"
    }

    /// RFC 7638 thumbprint: base64url(SHA-256(canonical JWK)).
    public var thumbprint: String { base64url(sha256(Array(jwk.utf8))) }

    /// A JWS signature over `input`: RS256 as is, ES256 as r||s (32 bytes each).
    public func sign(_ input: [UInt8]) throws -> [UInt8] {
        guard let md = EVP_MD_CTX_new() else { throw TLSConfigError(file: "acme", message: opensslErrors()) }
        defer { EVP_MD_CTX_free(md) }
        guard EVP_DigestSignInit(md, nil, EVP_sha256(), nil, pkey) == 1 else { throw TLSConfigError(file: "acme", message: opensslErrors()) }
        var len = 0
        guard input.withUnsafeBytes({ EVP_DigestSign(md, nil, &len, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count) }) == 1 else {
            throw TLSConfigError(file: "acme", message: opensslErrors())
        }
        var sig = [UInt8](repeating: 0, count: len)
        guard input.withUnsafeBytes({ i in sig.withUnsafeMutableBufferPointer { EVP_DigestSign(md, $0.baseAddress, &len, i.baseAddress?.assumingMemoryBound(to: UInt8.self), i.count) } }) == 1 else {
            throw TLSConfigError(file: "acme", message: opensslErrors())
        }
        sig.removeLast(sig.count - len)
        guard type == .ecdsaP256 else { return sig }
        // DER ECDSA-Sig-Value → r||s.
        let es: OpaquePointer? = sig.withUnsafeBufferPointer { b in
            var p: UnsafePointer<UInt8>? = b.baseAddress
            return d2i_ECDSA_SIG(nil, &p, b.count)
        }
        guard let es else { throw TLSConfigError(file: "acme", message: "unreadable ECDSA signature") }
        defer { ECDSA_SIG_free(es) }
        var raw = [UInt8](repeating: 0, count: 64)
        raw.withUnsafeMutableBufferPointer { out in
            _ = BN_bn2binpad(ECDSA_SIG_get0_r(es), out.baseAddress, 32)
            _ = BN_bn2binpad(ECDSA_SIG_get0_s(es), out.baseAddress! + 32, 32)
        }
        return raw
    }

    /// A DER CSR for `hosts` (the first also as the subject's CN), signed by this key.
    public func csr(hosts: [String]) throws -> [UInt8] {
        guard let req = X509_REQ_new() else { throw TLSConfigError(file: "acme", message: opensslErrors()) }
        defer { X509_REQ_free(req) }
        X509_REQ_set_version(req, 0)
        let cn = Array((hosts.first ?? "").utf8)
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC, cn, Int32(cn.count), -1, 0)
        X509_REQ_set_pubkey(req, pkey)
        guard let san = X509V3_EXT_conf_nid(nil, nil, NID_subject_alt_name, hosts.map { "DNS:" + $0 }.joined(separator: ",")) else {
            throw TLSConfigError(file: "acme", message: "subjectAltName: \(opensslErrors())")
        }
        defer { X509_EXTENSION_free(san) }
        guard edge_req_add_extension(req, san) == 1, X509_REQ_sign(req, pkey, EVP_sha256()) > 0 else {
            throw TLSConfigError(file: "acme", message: "CSR: \(opensslErrors())")
        }
        let n = i2d_X509_REQ(req, nil)
        guard n > 0 else { throw TLSConfigError(file: "acme", message: opensslErrors()) }
        var der = [UInt8](repeating: 0, count: Int(n))
        der.withUnsafeMutableBufferPointer { b in
            var p: UnsafeMutablePointer<UInt8>? = b.baseAddress
            _ = i2d_X509_REQ(req, &p)
        }
        return der
    }
}

/// The validity window and serial number of the first certificate in a PEM text.
public struct CertificateInfo: Sendable, Equatable {
    public var notBefore: Int64
    public var notAfter: Int64
    public var serial: String
    /// The subjectAltName DNS names.
    public var names: [String]
    /// The ACME Renewal Information certificate identifier (RFC 9773 §4.1):
    /// base64url(authority key identifier) "." base64url(serial's DER value
    /// octets); nil when the certificate names no authority key identifier.
    public var renewalID: String?

    public init?(pem text: String) {
        let bytes = Array(text.utf8)
        guard let bio = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free(bio) }
        _ = bytes.withUnsafeBytes { BIO_write(bio, $0.baseAddress, Int32($0.count)) }
        guard let x = PEM_read_bio_X509(bio, nil, nil, nil) else { ERR_clear_error(); return nil }
        defer { X509_free(x) }
        guard let after = try? x509Expiry(x, file: ""), let nb = X509_get0_notBefore(x) else { return nil }
        var tmv = tm()
        guard ASN1_TIME_to_tm(nb, &tmv) == 1 else { return nil }
        notBefore = Int64(timegm(&tmv))
        notAfter = after
        let bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), nil)
        defer { BN_free(bn) }
        if let hex = BN_bn2hex(bn) { serial = String(cString: hex); CRYPTO_free(hex, nil, 0) } else { serial = "" }
        if let aki = X509_get0_authority_key_id(x), let bn {
            let keyID = Array(UnsafeBufferPointer(start: ASN1_STRING_get0_data(aki), count: Int(ASN1_STRING_length(aki))))
            var value = [UInt8](repeating: 0, count: Int((BN_num_bits(bn) + 7) / 8))
            _ = BN_bn2bin(bn, &value)
            // A DER INTEGER is two's complement: a positive value whose top bit is set gets a 0x00 first.
            if value.isEmpty || value[0] & 0x80 != 0 { value.insert(0, at: 0) }
            renewalID = base64url(keyID) + "." + base64url(value)
        }
        var list: [String] = []
        let text = EdgeTLS.pem { bio in
            guard let ext = X509_get_ext(x, X509_get_ext_by_NID(x, NID_subject_alt_name, -1)) else { return 0 }
            return X509V3_EXT_print(bio, ext, 0, 0)
        }
        for part in text.split(separator: ",") {
            let t = part.trimmedWhitespace()
            if t.hasPrefix("DNS:") { list.append(String(t.dropFirst(4))) }
        }
        names = list
        ERR_clear_error()
    }
}

/// Writes `text` to `path` through a temporary file and a rename, so a reader
/// (or a crash) sees the old file or the new one, never part of one.
public func writeFileAtomically(_ path: String, _ text: String, mode: mode_t) throws {
    let tmp = path + ".tmp"
    try writeFile(tmp, text, mode: mode, what: "file")
    let fd = open(tmp, O_RDONLY | O_CLOEXEC)
    if fd >= 0 { fsync(fd); close(fd) }
    guard rename(tmp, path) == 0 else { throw TLSConfigError(file: path, message: "rename: \(String(cString: strerror(errno)))") }
}

/// ALPN for a tls-alpn-01 challenge handshake: only "acme-tls/1" (RFC 8737 §3).
let acmeALPNSelect: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
                                    UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?) -> Int32 = { _, out, outLen, input, inLen, _ in
    guard let input, let at = alpnOffer(UnsafeRawBufferPointer(start: input, count: Int(inLen)), "acme-tls/1") else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    out?.pointee = input + at
    outLen?.pointee = 10
    return SSL_TLSEXT_ERR_OK
}

/// Where `name` starts in an ALPN protocol list (RFC 7301 §3.1, length-prefixed names), or nil.
func alpnOffer(_ list: UnsafeRawBufferPointer, _ name: String) -> Int? {
    let want = Array(name.utf8)
    var i = 0
    while i < list.count {
        let n = Int(list[i])
        if i + 1 + n > list.count { return nil }
        if n == want.count && want.indices.allSatisfy({ list[i + 1 + $0] == want[$0] }) { return i + 1 }
        i += 1 + n
    }
    return nil
}

/// A tls-alpn-01 challenge: a self-signed certificate for `host` carrying
/// SHA-256(keyAuthorization) in a critical acmeIdentifier extension
/// (id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31), in a context that negotiates
/// only "acme-tls/1".
public final class ACMEChallengeContext: @unchecked Sendable {
    let ctx: OpaquePointer

    public init(host: String, keyAuthorization: String, now: Int64) throws {
        let key = try ACMEKey.generate(.ecdsaP256)
        // extnValue: the DER of an OCTET STRING holding the 32-byte digest.
        let value = [0x04, 0x20] + sha256(Array(keyAuthorization.utf8))
        guard let oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1), let data = ASN1_OCTET_STRING_new() else {
            throw TLSConfigError(file: "acme", message: opensslErrors())
        }
        defer { ASN1_OBJECT_free(oid); ASN1_OCTET_STRING_free(data) }
        _ = value.withUnsafeBufferPointer { ASN1_OCTET_STRING_set(data, $0.baseAddress, Int32($0.count)) }
        guard let ext = X509_EXTENSION_create_by_OBJ(nil, oid, 1, data) else { throw TLSConfigError(file: "acme", message: opensslErrors()) }
        defer { X509_EXTENSION_free(ext) }
        let x = try InternalCA.build(subjectCN: host, hosts: [host], key: key.pkey, issuer: nil, issuerKey: key.pkey, isCA: false,
                                     notBefore: now - 3600, notAfter: now + 7 * 86400, extra: [ext])
        defer { X509_free(x) }
        let ctx = try makeServerContext(sessionContext: "edge:acme-tls/1:" + host, http2: false)
        SSL_CTX_set_alpn_select_cb(ctx, acmeALPNSelect, nil)
        guard SSL_CTX_use_certificate(ctx, x) == 1, SSL_CTX_use_PrivateKey(ctx, key.pkey) == 1 else {
            SSL_CTX_free(ctx)
            throw TLSConfigError(file: "acme", message: opensslErrors())
        }
        self.ctx = ctx
    }

    deinit { SSL_CTX_free(ctx) }
}
