// TLS termination over OpenSSL 3: per-tenant SSL_CTX objects, SNI selection,
// non-blocking handshakes and record I/O on an already non-blocking socket.
//
// Concurrency: every SSL_CTX is built once at load time and then only read
// (SSL_new) from the worker threads, which OpenSSL allows; the session cache
// inside it has its own lock. A TLSConnection (one SSL*) belongs to the worker
// thread that accepted its socket, like the socket itself.
import COpenSSL
import CEdgeShims
import EdgeIO

public struct TLSConfigError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var message: String
    public init(file: String, message: String) { self.file = file; self.message = message }
    public var description: String { "\(file): \(message)" }
}

/// The OpenSSL error queue as text (and cleared).
func opensslErrors() -> String {
    var parts: [String] = []
    while true {
        let e = ERR_get_error()
        if e == 0 { break }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(e, &buf, 256)
        parts.append(String(cString: buf))
    }
    return parts.isEmpty ? "unknown OpenSSL error" : parts.joined(separator: "; ")
}

/// Selects from the client's ALPN list by the server's preference: "h2" when
/// the context allows it (its callback argument is non-nil), then "http/1.1";
/// with no match, no ALPN is negotiated.
let alpnSelect: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
                                UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?) -> Int32 = { _, out, outLen, input, inLen, arg in
    guard let input else { return SSL_TLSEXT_ERR_NOACK }
    let prefs: [[UInt8]] = arg != nil ? [Array("h2".utf8), Array("http/1.1".utf8)] : [Array("http/1.1".utf8)]
    for want in prefs {
        var i = 0
        while i < Int(inLen) {
            let n = Int(input[i])
            if n == want.count && i + 1 + n <= Int(inLen) {
                var same = true
                for k in 0..<n where input[i + 1 + k] != want[k] { same = false; break }
                if same {
                    out?.pointee = input + i + 1
                    outLen?.pointee = UInt8(n)
                    return SSL_TLSEXT_ERR_OK
                }
            }
            i += 1 + n
        }
    }
    return SSL_TLSEXT_ERR_NOACK
}

/// The (never dereferenced) callback argument that turns "h2" on for a context.
nonisolated(unsafe) let alpnAllowsH2 = UnsafeMutableRawPointer(bitPattern: 1)

/// A server SSL_CTX with edge's defaults: TLS 1.2 and 1.3 only, forward-secret
/// AEAD ciphers only, no renegotiation or compression, ALPN http/1.1, a server
/// session cache, and a session id context that keeps tenants' sessions apart.
func makeServerContext(sessionContext: String, http2: Bool = true) throws -> OpaquePointer {
    guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw TLSConfigError(file: "", message: opensslErrors()) }
    _ = edge_ssl_ctx_set_min_tls12(ctx)
    _ = SSL_CTX_set_options(ctx, edge_server_options())
    _ = SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")
    _ = edge_ssl_ctx_set_groups(ctx, "X25519:P-256:P-384")
    _ = edge_ssl_ctx_set_mode(ctx, edge_mode_partial_write())
    // Read whole socket buffers, not record header then body (half the read calls).
    edge_ssl_ctx_read_ahead(ctx)
    let sid = sessionIDContext(sessionContext)
    _ = SSL_CTX_set_session_id_context(ctx, sid, UInt32(sid.count))
    _ = edge_ssl_ctx_session_cache_server(ctx, 20_480)
    SSL_CTX_set_alpn_select_cb(ctx, alpnSelect, http2 ? alpnAllowsH2 : nil)
    // Tickets (TLS 1.3 and 1.2) from the shared, rotating key ring.
    _ = SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticketCallback)
    return ctx
}

/// A session id context for a name: its SHA-256, so names of any length fill
/// OpenSSL's 32 bytes without two tenants sharing one (a plain prefix would
/// let long names collide).
func sessionIDContext(_ name: String) -> [UInt8] {
    var md = [UInt8](repeating: 0, count: 32)
    var len: UInt32 = 0
    let bytes = Array(name.utf8)
    _ = bytes.withUnsafeBytes { b in md.withUnsafeMutableBufferPointer { EVP_Digest(b.baseAddress, b.count, $0.baseAddress, &len, EVP_sha256(), nil) } }
    return md
}

/// A certificate chain and its private key, loaded from PEM files or issued in memory.
public struct CertificatePair: Sendable {
    public enum Source: Sendable { case files(cert: String, key: String), memory(cert: PEMBlob, key: PEMBlob) }
    public var source: Source
    public init(certFile: String, keyFile: String) { source = .files(cert: certFile, key: keyFile) }
    public init(certPEM: PEMBlob, keyPEM: PEMBlob) { source = .memory(cert: certPEM, key: keyPEM) }
}

/// PEM text held in memory (internal CA leaves).
public struct PEMBlob: Sendable { public var text: String; public init(_ t: String) { text = t } }

/// One tenant's certificates in one SSL_CTX (RSA and ECDSA may both be loaded;
/// OpenSSL serves the one the client supports).
public final class TenantTLS: @unchecked Sendable {
    public let ctx: OpaquePointer
    /// Earliest expiry among the loaded certificates (seconds since the epoch).
    public let notAfter: Int64

    /// `http2`: offer "h2" in ALPN to this tenant's clients (else only http/1.1).
    public init(tenant: String, pairs: [CertificatePair], now: Int64, http2: Bool = true) throws {
        let ctx = try makeServerContext(sessionContext: "edge:tenant:" + tenant, http2: http2)
        var earliest = Int64.max
        for pair in pairs {
            let (x509, key, file) = try loadPair(pair)
            defer { X509_free(x509); EVP_PKEY_free(key) }
            let expiry = try x509Expiry(x509, file: file)
            if expiry <= now { SSL_CTX_free(ctx); throw TLSConfigError(file: file, message: "certificate expired") }
            earliest = min(earliest, expiry)
            guard SSL_CTX_use_certificate(ctx, x509) == 1 else { SSL_CTX_free(ctx); throw TLSConfigError(file: file, message: opensslErrors()) }
            if case .files(let certFile, _) = pair.source {
                // The rest of the chain, if the file has one.
                try addChain(ctx, certFile)
            }
            guard SSL_CTX_use_PrivateKey(ctx, key) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
                SSL_CTX_free(ctx)
                let keyFile: String
                if case .files(_, let k) = pair.source { keyFile = k } else { keyFile = file }
                throw TLSConfigError(file: keyFile, message: "private key does not match the certificate in \(file)")
            }
        }
        self.ctx = ctx
        self.notAfter = earliest
    }

    deinit { SSL_CTX_free(ctx) }
}

func readBIO(_ pair: CertificatePair, cert: Bool) throws -> (OpaquePointer, String) {
    switch pair.source {
    case .files(let c, let k):
        let path = cert ? c : k
        guard let bio = BIO_new_file(path, "r") else {
            ERR_clear_error()
            throw TLSConfigError(file: path, message: "cannot read file")
        }
        return (bio, path)
    case .memory(let c, let k):
        let text = cert ? c.text : k.text
        let bytes = Array(text.utf8)
        guard let bio = BIO_new(BIO_s_mem()) else { throw TLSConfigError(file: "internal CA", message: opensslErrors()) }
        _ = bytes.withUnsafeBytes { BIO_write(bio, $0.baseAddress, Int32($0.count)) }
        return (bio, "internal CA")
    }
}

func loadPair(_ pair: CertificatePair) throws -> (OpaquePointer, OpaquePointer, String) {
    let (cb, certName) = try readBIO(pair, cert: true)
    defer { BIO_free(cb) }
    guard let x509 = PEM_read_bio_X509(cb, nil, nil, nil) else {
        ERR_clear_error()
        throw TLSConfigError(file: certName, message: "no PEM certificate in file")
    }
    let (kb, keyName) = try readBIO(pair, cert: false)
    defer { BIO_free(kb) }
    guard let key = PEM_read_bio_PrivateKey(kb, nil, nil, nil) else {
        ERR_clear_error()
        X509_free(x509)
        throw TLSConfigError(file: keyName, message: "no PEM private key in file (encrypted keys are not supported)")
    }
    return (x509, key, certName)
}

func addChain(_ ctx: OpaquePointer, _ certFile: String) throws {
    guard let bio = BIO_new_file(certFile, "r") else { return }
    defer { BIO_free(bio) }
    // Skip the leaf, add the rest.
    guard let leaf = PEM_read_bio_X509(bio, nil, nil, nil) else { ERR_clear_error(); return }
    X509_free(leaf)
    while let extra = PEM_read_bio_X509(bio, nil, nil, nil) {
        guard edge_ssl_ctx_add_chain_cert(ctx, extra) == 1 else {
            X509_free(extra)
            throw TLSConfigError(file: certFile, message: "cannot add chain certificate: \(opensslErrors())")
        }
    }
    ERR_clear_error()   // end of file
}

/// notAfter as seconds since the epoch.
func x509Expiry(_ x: OpaquePointer, file: String) throws -> Int64 {
    guard let t = X509_get0_notAfter(x) else { throw TLSConfigError(file: file, message: "certificate has no expiry") }
    var tmv = tm()
    guard ASN1_TIME_to_tm(t, &tmv) == 1 else { throw TLSConfigError(file: file, message: "unreadable certificate expiry") }
    return Int64(timegm(&tmv))
}
