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
#endif
