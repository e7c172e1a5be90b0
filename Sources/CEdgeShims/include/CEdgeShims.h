#ifndef C_EDGE_SHIMS_H
#define C_EDGE_SHIMS_H
// Static-inline wrappers for C library macros that Swift cannot import, and
// version queries used by `edged --version`. Nothing here holds state.
#include <openssl/ssl.h>
#include <openssl/crypto.h>
#include <zlib.h>
#include <brotli/encode.h>
#include <brotli/decode.h>

/// OpenSSL's runtime version text, e.g. "OpenSSL 3.0.19 ...".
static inline const char *edge_openssl_version(void) { return OpenSSL_version(OPENSSL_VERSION); }
/// zlib's runtime version text.
static inline const char *edge_zlib_version(void) { return zlibVersion(); }
/// brotli encoder version packed as 0xMMMmmmppp.
static inline unsigned int edge_brotli_version(void) { return (unsigned int)BrotliEncoderVersion(); }

/// deflateInit2 is a macro; wrap it once (gzip window when windowBits is 16+15).
static inline int edge_deflate_init2(z_streamp s, int level, int windowBits, int memLevel) {
    return deflateInit2(s, level, Z_DEFLATED, windowBits, memLevel, Z_DEFAULT_STRATEGY);
}
/// inflateInit2 is a macro; wrap it once.
static inline int edge_inflate_init2(z_streamp s, int windowBits) {
    return inflateInit2(s, windowBits);
}

// ---- OpenSSL macros and variadic calls, wrapped once ----
#include <openssl/x509v3.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/err.h>

static inline int edge_ssl_ctx_set_min_tls12(SSL_CTX *ctx) { return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); }
static inline long edge_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long edge_ssl_ctx_session_cache_server(SSL_CTX *ctx, long size) {
    SSL_CTX_sess_set_cache_size(ctx, size);
    return SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
}
static inline void edge_ssl_ctx_read_ahead(SSL_CTX *ctx) { SSL_CTX_set_read_ahead(ctx, 1); }

/// Watches the socket reads under an SSL: after each one, *drained is 1 when it
/// came back short, empty or would block (the kernel had nothing more: new
/// bytes raise a new edge-triggered event) and 0 when it filled what was asked.
static long edge_bio_watch_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl, int ret, size_t *processed) {
    (void)argp; (void)argi; (void)argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
        unsigned char *drained = (unsigned char *)BIO_get_callback_arg(b);
        if (drained) *drained = (ret <= 0 || (processed && *processed < len)) ? 1 : 0;
    }
    return ret;
}
/// Installs that watch on the SSL's read BIO (set it up with SSL_set_fd first).
static inline void edge_ssl_watch_reads(SSL *ssl, unsigned char *drained) {
    BIO *b = SSL_get_rbio(ssl);
    if (!b) return;
    BIO_set_callback_arg(b, (char *)drained);
    BIO_set_callback_ex(b, edge_bio_watch_cb);
}
static inline int edge_ssl_ctx_set_groups(SSL_CTX *ctx, const char *list) { return (int)SSL_CTX_set1_groups_list(ctx, list); }
static inline void edge_ssl_ctx_set_servername_cb(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *), void *arg) {
    SSL_CTX_set_tlsext_servername_callback(ctx, cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}
static inline int edge_ssl_set_host_name(SSL *s, const char *name) { return (int)SSL_set_tlsext_host_name(s, name); }
static inline long edge_mode_partial_write(void) {
    return SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS;
}
static inline uint64_t edge_server_options(void) {
    return SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
}
/// Adds an intermediate to the current certificate's chain; takes ownership of x on success.
static inline int edge_ssl_ctx_add_chain_cert(SSL_CTX *ctx, X509 *x) { return (int)SSL_CTX_add0_chain_cert(ctx, x); }
#include <openssl/core_names.h>
/// Sets up ticket encryption (AES-256-CBC) and authentication (HMAC-SHA256)
/// with the given 32-byte keys; `enc` 1 encrypts (iv is filled first by the caller).
static inline int edge_ticket_crypt_init(int enc, EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx,
                                         const unsigned char *aes, unsigned char *hmac, const unsigned char *iv) {
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, hmac, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"sha256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(hctx, params) != 1) return -1;
    if (enc) return EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, aes, iv) == 1 ? 1 : -1;
    return EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, aes, iv) == 1 ? 1 : -1;
}
/// A fresh EC P-256 key (EVP_EC_gen is a variadic macro).
static inline EVP_PKEY *edge_ec_p256_key(void) { return EVP_EC_gen("P-256"); }
/// A fresh RSA key of `bits` (EVP_RSA_gen is a macro).
static inline EVP_PKEY *edge_rsa_key(unsigned int bits) { return EVP_RSA_gen(bits); }
#include <openssl/x509v3.h>
/// Adds one extension to a CSR (X509_REQ_add_extensions takes a stack; the
/// stack macros cannot be imported). Returns 1 on success.
static inline int edge_req_add_extension(X509_REQ *req, X509_EXTENSION *ext) {
    STACK_OF(X509_EXTENSION) *st = sk_X509_EXTENSION_new_null();
    if (st == NULL) return 0;
    if (sk_X509_EXTENSION_push(st, ext) <= 0) { sk_X509_EXTENSION_free(st); return 0; }
    int r = X509_REQ_add_extensions(req, st);
    sk_X509_EXTENSION_free(st);
    return r;
}
#endif
