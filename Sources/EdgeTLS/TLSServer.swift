// SNI routing: the ClientHello's server name picks the tenant's SSL_CTX.
import COpenSSL
import CEdgeShims
import EdgeIO

/// Every tenant's TLS context behind one listener, chosen by SNI.
public final class TLSServer: @unchecked Sendable {
    /// The context handshakes start on; it holds the default certificate, if any.
    let entry: OpaquePointer
    let contexts: [TenantTLS]
    let tenantOf: [Int]
    let tenantNames: [String]
    let exact: [String: Int]
    let wildcard: [String: Int]
    let defaultContext: Int
    /// Each tenant's session id context (see `sessionIDContext`).
    let sessionContexts: [[UInt8]]

    /// - Parameters:
    ///   - tenants: for each TLS tenant: its index (returned by `TLSConnection.tenant`), host names, certificates.
    ///   - defaultTenant: index into `tenants` whose certificate answers a ClientHello with no or an unknown SNI;
    ///     nil to fail such handshakes with `unrecognized_name`.
    public init(tenants: [(tenant: Int, name: String, hosts: [String], tls: TenantTLS)], defaultTenant: Int?, defaultPairs: [CertificatePair]) throws {
        entry = try makeServerContext(sessionContext: "edge:entry")
        var exact: [String: Int] = [:]
        var wildcard: [String: Int] = [:]
        for (i, t) in tenants.enumerated() {
            for h in t.hosts {
                if h.hasPrefix("*.") { wildcard[String(h.dropFirst(2))] = i } else { exact[h] = i }
            }
        }
        contexts = tenants.map(\.tls)
        tenantOf = tenants.map(\.tenant)
        tenantNames = tenants.map(\.name)
        self.exact = exact
        self.wildcard = wildcard
        var d = -1
        if let dt = defaultTenant, let i = tenants.firstIndex(where: { $0.tenant == dt }) {
            d = i
            for p in defaultPairs {
                let (x, k, file) = try loadPair(p)
                defer { X509_free(x); EVP_PKEY_free(k) }
                guard SSL_CTX_use_certificate(entry, x) == 1, SSL_CTX_use_PrivateKey(entry, k) == 1 else {
                    throw TLSConfigError(file: file, message: opensslErrors())
                }
            }
        }
        defaultContext = d
        sessionContexts = tenants.map { sessionIDContext("edge:tenant:" + $0.name) }
        SSL_CTX_set_client_hello_cb(entry, clientHelloCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit { SSL_CTX_free(entry) }

    /// Index into `contexts` for a server name (lowercase, no trailing dot; wildcards cover one label).
    func lookup(_ n: String) -> Int? {
        if let i = exact[n] { return i }
        if let dot = n.firstIndex(of: "."), let i = wildcard[String(n[n.index(after: dot)...])] { return i }
        return nil
    }
}

/// Chooses the tenant from the ClientHello's server name before OpenSSL looks
/// for a session to resume, and gives the connection that tenant's context and
/// session id context. OpenSSL resumes only sessions made under the same
/// context (session ids and tickets, TLS 1.2 and 1.3 alike; another tenant's
/// session is a cache miss and a full handshake with this tenant's certificate
/// follows), so a session from one tenant never resumes under another's name.
/// Stores the chosen context index + 1 as the SSL's app data (0 = none chosen).
let clientHelloCallback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?, UnsafeMutableRawPointer?) -> Int32 = { ssl, alert, arg in
    guard let ssl, let arg else { return 0 }
    let server = Unmanaged<TLSServer>.fromOpaque(arg).takeUnretainedValue()
    var ext: UnsafePointer<UInt8>?
    var extLength = 0
    var name: String?
    if SSL_client_hello_get0_ext(ssl, UInt32(TLSEXT_TYPE_server_name), &ext, &extLength) == 1, let ext {
        name = ServerNameExtension.hostName(UnsafeRawBufferPointer(start: ext, count: extLength))
        // Remembered for the log even when this handshake fails here.
        if let me = SSL_get_ex_data(ssl, 1) { Unmanaged<TLSConnection>.fromOpaque(me).takeUnretainedValue().requestedName = name }
        if name == nil {
            alert?.pointee = Int32(SSL_AD_DECODE_ERROR)
            return 0
        }
    }
    var chosen = -1
    // tls-alpn-01 (RFC 8737): a client offering "acme-tls/1" for a name with a
    // challenge up gets the challenge certificate (any tenant, even one whose
    // certificate does not exist yet); it speaks no HTTP afterwards.
    if ACMEChallenges.shared.alpnPending, let name,
       SSL_client_hello_get0_ext(ssl, UInt32(TLSEXT_TYPE_application_layer_protocol_negotiation), &ext, &extLength) == 1, let ext,
       extLength > 2, alpnOffer(UnsafeRawBufferPointer(start: ext + 2, count: extLength - 2), "acme-tls/1") != nil,
       ACMEChallenges.shared.useALPNContext(host: name, ssl: ssl) {
        return 1
    }
    if let name, let i = server.lookup(name) {
        chosen = i
        SSL_set_SSL_CTX(ssl, server.contexts[i].ctx)
    } else if server.defaultContext >= 0 {
        chosen = server.defaultContext
    } else {
        alert?.pointee = Int32(SSL_AD_UNRECOGNIZED_NAME)
        return 0
    }
    let sid = server.sessionContexts[chosen]
    guard SSL_set_session_id_context(ssl, sid, UInt32(sid.count)) == 1 else { return 0 }
    SSL_set_ex_data(ssl, 0, UnsafeMutableRawPointer(bitPattern: chosen + 1))
    return 1
}

/// One TLS connection over a non-blocking socket.
public final class TLSConnection {
    let ssl: OpaquePointer
    let server: TLSServer?

    /// The server name the ClientHello asked for (set during the handshake).
    var requestedName: String?

    /// Set by the read BIO's watch (edge_ssl_watch_reads): the last socket read
    /// came back short, so the kernel had nothing more (see `drained`).
    let lastReadShort = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)

    public init?(server: TLSServer, fd: Int32) {
        guard let ssl = SSL_new(server.entry) else { ERR_clear_error(); lastReadShort.deallocate(); return nil }
        SSL_set_fd(ssl, fd)
        SSL_set_accept_state(ssl)
        lastReadShort.pointee = 0
        edge_ssl_watch_reads(ssl, lastReadShort)
        self.ssl = ssl
        self.server = server
        // For the ClientHello callback; this object outlives the SSL it frees.
        SSL_set_ex_data(ssl, 1, Unmanaged.passUnretained(self).toOpaque())
    }

    init(ssl: OpaquePointer) {
        self.ssl = ssl
        self.server = nil
        lastReadShort.pointee = 0
    }

    deinit {
        SSL_free(ssl)   // (first: the BIO's watch writes through the flag until then)
        lastReadShort.deallocate()
    }

    /// Nothing more can be read without new bytes from the peer: the last
    /// socket read came back short and OpenSSL holds no bytes unprocessed or
    /// unread. An edge-triggered reader may then wait for the next event instead
    /// of reading again to see it would block (one read syscall per request saved).
    @inline(__always) public var drained: Bool { lastReadShort.pointee != 0 && SSL_has_pending(ssl) == 0 }

    public enum Progress: Equatable { case done, wantRead, wantWrite, failed(String) }

    public func handshake() -> Progress {
        ERR_clear_error()
        let r = SSL_do_handshake(ssl)
        if r == 1 { return .done }
        switch SSL_get_error(ssl, r) {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_SYSCALL:
            ERR_clear_error()
            return .failed("connection closed during handshake")
        default:
            return .failed(opensslErrors())
        }
    }

    /// The tenant index chosen by SNI (or the default), once the handshake passed the ClientHello.
    public var tenant: Int? {
        let v = Int(bitPattern: SSL_get_ex_data(ssl, 0))
        guard v > 0, let server else { return nil }
        return server.tenantOf[v - 1]
    }

    /// The name of the tenant chosen by SNI (or the default).
    public var tenantName: String? {
        let v = Int(bitPattern: SSL_get_ex_data(ssl, 0))
        guard v > 0, let server else { return nil }
        return server.tenantNames[v - 1]
    }

    public var serverName: String? {
        SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) } ?? requestedName
    }

    public var resumed: Bool { SSL_session_reused(ssl) == 1 }

    /// ALPN chose "h2" (RFC 9113 §3.2): the connection speaks HTTP/2.
    public var negotiatedH2: Bool {
        var p: UnsafePointer<UInt8>?
        var n: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &p, &n)
        return n == 2 && p?[0] == 104 && p?[1] == 50
    }

    public var version: String { String(cString: SSL_get_version(ssl)) }
    /// The negotiated protocol as the access log names it (no String made).
    public var versionToken: StaticString {
        switch SSL_version(ssl) {
        case 0x0304: return "TLSv1.3"
        case 0x0303: return "TLSv1.2"
        case 0x0302: return "TLSv1.1"
        case 0x0301: return "TLSv1"
        default: return "unknown"
        }
    }

    @inline(__always) public func read(_ p: UnsafeMutableRawPointer, _ n: Int) -> IOResult {
        var got = 0
        if SSL_read_ex(ssl, p, n, &got) == 1 { return .bytes(got) }
        switch SSL_get_error(ssl, 0) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wouldBlock
        case SSL_ERROR_ZERO_RETURN: return .eof
        default:
            ERR_clear_error()
            return .error(0)
        }
    }

    @inline(__always) public func write(_ p: UnsafeRawPointer, _ n: Int) -> IOResult {
        var put = 0
        if SSL_write_ex(ssl, p, n, &put) == 1 { return .bytes(put) }
        switch SSL_get_error(ssl, 0) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wouldBlock
        default:
            ERR_clear_error()
            return .error(0)
        }
    }

    /// Bytes decrypted and buffered inside OpenSSL, not yet read.
    public var pending: Int { Int(SSL_pending(ssl)) }

    /// Sends close_notify without waiting for the peer's.
    public func shutdown() {
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }
}

/// Client-side TLS towards an origin group: verification against the system
/// CA bundle or a configured file, SNI, optional client certificate.
public final class OriginTLSContext: @unchecked Sendable {
    let ctx: OpaquePointer

    public init(caFile: String?, clientCert: String?, clientKey: String?) throws {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw TLSConfigError(file: "", message: opensslErrors()) }
        _ = edge_ssl_ctx_set_min_tls12(ctx)
        _ = edge_ssl_ctx_set_mode(ctx, edge_mode_partial_write())
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        if let ca = caFile {
            guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1 else {
                SSL_CTX_free(ctx)
                throw TLSConfigError(file: ca, message: "cannot load CA certificates: \(opensslErrors())")
            }
        } else {
            _ = SSL_CTX_set_default_verify_paths(ctx)
        }
        if let cert = clientCert, let key = clientKey {
            guard SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 else {
                SSL_CTX_free(ctx)
                throw TLSConfigError(file: cert, message: "cannot load client certificate: \(opensslErrors())")
            }
            guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
                SSL_CTX_free(ctx)
                throw TLSConfigError(file: key, message: "client key does not match \(cert)")
            }
        }
        self.ctx = ctx
    }

    deinit { SSL_CTX_free(ctx) }
}

/// A saved origin session for resumption (refcounted by OpenSSL).
public final class TLSSession {
    let session: OpaquePointer
    init(_ s: OpaquePointer) { session = s }
    deinit { SSL_SESSION_free(session) }
}

extension TLSConnection {
    /// A client connection to an origin, verifying `serverName` and sending it as SNI.
    public convenience init?(origin: OriginTLSContext, fd: Int32, serverName: String, resume: TLSSession?) {
        guard let ssl = SSL_new(origin.ctx) else { ERR_clear_error(); return nil }
        SSL_set_fd(ssl, fd)
        SSL_set_connect_state(ssl)
        _ = edge_ssl_set_host_name(ssl, serverName)
        _ = SSL_set1_host(ssl, serverName)
        if let r = resume { _ = SSL_set_session(ssl, r.session) }
        self.init(ssl: ssl)
    }

    /// A client connection to a server named by its IP address (`ip`, text):
    /// the certificate must carry that address; no SNI (RFC 6066 §3 forbids literals).
    public convenience init?(origin: OriginTLSContext, fd: Int32, ip: String) {
        guard let ssl = SSL_new(origin.ctx) else { ERR_clear_error(); return nil }
        SSL_set_fd(ssl, fd)
        SSL_set_connect_state(ssl)
        guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip) == 1 else { SSL_free(ssl); ERR_clear_error(); return nil }
        self.init(ssl: ssl)
    }

    /// The session to offer on the next connection to the same origin.
    public func session() -> TLSSession? {
        SSL_get1_session(ssl).map { TLSSession($0) }
    }

    /// Why certificate verification failed, if it did.
    public var verifyError: String? {
        let r = SSL_get_verify_result(ssl)
        return r == X509_V_OK ? nil : String(cString: X509_verify_cert_error_string(r))
    }
}
