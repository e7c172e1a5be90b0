#ifndef C_EDGE_CRC_H
#define C_EDGE_CRC_H
// CRC32C (Castagnoli) with the SSE4.2 crc32 instruction, for the disk tier's
// record checksums. Swift has no way to emit the instruction itself. The
// result is the same as EdgeDisk's table-driven CRC32C.update for the same
// state; callers check edge_crc32c_hw_available() once and keep the tables
// for machines without SSE4.2 (and for other architectures).
//
// The instruction takes 3 cycles but can start one every cycle, so one
// stream of it runs at a third of its speed. Long buffers are checksummed as
// three interleaved streams (each a third of a stretch), and the three
// registers are joined with "append this many zero bytes" operators: the raw
// register is linear, so crc(A B) = zeros(|B|)(crc(A)) ^ crc_from_0(B). The
// operators for the two stretch lengths are tables of 4 x 256 entries, made
// once (pthread_once; the only state in this file).
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>

/// 1 when this CPU has SSE4.2 (and with it the crc32 instruction).
static inline int edge_crc32c_hw_available(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & bit_SSE4_2) != 0;
}

// Stretch lengths (bytes per stream): a long one for large bodies, a short one for what is left.
#define EDGE_CRC_LONG 8192
#define EDGE_CRC_SHORT 256

typedef uint32_t edge_crc_table[2][4][256];

/// The zero-append operators as tables: [0] for EDGE_CRC_LONG bytes, [1] for
/// EDGE_CRC_SHORT. (Function-local statics: Swift's importer emits those
/// with the inline function that uses them, not file-scope ones.)
static inline edge_crc_table *edge_crc_storage(void) {
    static edge_crc_table zeros;
    return &zeros;
}

/// An operator on the 32-bit register as its 32 columns: the image of each bit.
static inline uint32_t edge_crc_apply(const uint32_t op[32], uint32_t v) {
    uint32_t out = 0;
    for (int i = 0; v != 0; i++, v >>= 1) if (v & 1) out ^= op[i];
    return out;
}

/// `op` applied twice (op := op o op).
static inline void edge_crc_square(uint32_t op[32]) {
    uint32_t sq[32];
    for (int i = 0; i < 32; i++) sq[i] = edge_crc_apply(op, op[i]);
    memcpy(op, sq, sizeof sq);
}

/// Makes the tables (once, through edge_crc_tables).
static void edge_crc_make_tables(void) {
    edge_crc_table *z = edge_crc_storage();
    // One zero bit into the reflected register: shift right, fold the polynomial in on a carry.
    uint32_t op[32];
    op[0] = 0x82F63B78u;
    for (int i = 1; i < 32; i++) op[i] = 1u << (i - 1);
    for (int i = 0; i < 3; i++) edge_crc_square(op);            // 8 bits: one byte
    const int lengths[2] = { EDGE_CRC_LONG, EDGE_CRC_SHORT };    // both powers of two
    for (int t = 0; t < 2; t++) {
        uint32_t m[32];
        memcpy(m, op, sizeof m);
        for (int n = 1; n < lengths[t]; n <<= 1) edge_crc_square(m);
        for (int k = 0; k < 4; k++)
            for (uint32_t b = 0; b < 256; b++) (*z)[t][k][b] = edge_crc_apply(m, b << (8 * k));
    }
}

static inline const edge_crc_table *edge_crc_tables(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, edge_crc_make_tables);
    return edge_crc_storage();
}

static inline uint32_t edge_crc_shift(const edge_crc_table *z, int t, uint32_t c) {
    return (*z)[t][0][c & 0xFF] ^ (*z)[t][1][(c >> 8) & 0xFF] ^ (*z)[t][2][(c >> 16) & 0xFF] ^ (*z)[t][3][c >> 24];
}

/// The CRC32C register after `n` bytes at `p`, from `state` (the register,
/// not the finished checksum: callers invert before and after, as the tables do).
__attribute__((target("sse4.2")))
static inline uint32_t edge_crc32c_hw(uint32_t state, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    uint64_t c0 = state;
    if (n >= 3 * EDGE_CRC_SHORT) {
        const edge_crc_table *z = edge_crc_tables();
        for (int t = 0; t < 2; t++) {
            const size_t len = t == 0 ? EDGE_CRC_LONG : EDGE_CRC_SHORT;
            while (n >= 3 * len) {
                uint64_t c1 = 0, c2 = 0;
                const unsigned char *end = b + len;
                while (b < end) {
                    uint64_t w0, w1, w2;
                    memcpy(&w0, b, 8); memcpy(&w1, b + len, 8); memcpy(&w2, b + 2 * len, 8);
                    c0 = __builtin_ia32_crc32di(c0, w0);
                    c1 = __builtin_ia32_crc32di(c1, w1);
                    c2 = __builtin_ia32_crc32di(c2, w2);
                    b += 8;
                }
                c0 = edge_crc_shift(z, t, (uint32_t)c0) ^ (uint32_t)c1;
                c0 = edge_crc_shift(z, t, (uint32_t)c0) ^ (uint32_t)c2;
                b += 2 * len;
                n -= 3 * len;
            }
        }
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        c0 = __builtin_ia32_crc32di(c0, w);
        b += 8; n -= 8;
    }
    uint32_t c32 = (uint32_t)c0;
    while (n > 0) { c32 = __builtin_ia32_crc32qi(c32, *b); b++; n--; }
    return c32;
}
#else
static inline int edge_crc32c_hw_available(void) { return 0; }
static inline uint32_t edge_crc32c_hw(uint32_t state, const void *p, size_t n) { (void)p; (void)n; return state; }
#endif
#endif
